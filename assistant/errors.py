"""The one error hierarchy of yinling: every error we raise on purpose derives from YinlingError."""


class YinlingError(Exception):
    """Base class of all errors yinling raises deliberately; the message is one clear sentence."""


class ConfigError(YinlingError):
    """The configuration (file, environment or flags) is invalid; the CLI exits with code 2."""


class UsageError(YinlingError):
    """The command line was used wrongly; the CLI exits with code 2."""


class DataError(YinlingError):
    """A bundled data file (intents, lexicons, prompts) is malformed."""


class InputError(YinlingError):
    """Input from a user or another program cannot be processed (e.g. undecodable bytes)."""
