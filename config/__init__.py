"""Configuration files shipped with yinling (``default.toml``); loaded by :mod:`assistant.config`."""
