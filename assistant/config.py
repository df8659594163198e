"""Configuration: one frozen tree built from the defaults, the home's file, the environment and flags.

Layering, lowest first:

1. ``config/default.toml`` shipped in the ``config`` package (lists every key);
2. the home's TOML file (``yinling --config FILE``);
3. ``YINLING_<SECTION>_<KEY>`` environment variables, e.g. ``YINLING_MQTT_PORT=1884``, converted to
   the key's type (variables whose section is unknown are ignored, so other tools may use the prefix);
4. ``overrides`` from command-line flags, as ``{"section": {"key": value}}`` or ``{"section.key": value}``.

Every problem raises :class:`~assistant.errors.ConfigError` whose message is one sentence naming
where it was found, the key, the bad value and what is allowed. There is no global instance: callers
pass the :class:`Config` returned by :func:`load` to whatever needs it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError
from assistant.incidents import EscalationConfig  # the ladder's timeouts and silence rules ([escalation])

logger = logging.getLogger(__name__)

ENV_PREFIX = "YINLING_"
"""Prefix of environment variables that override configuration keys."""

DEVICE_ROLES: tuple[str, ...] = (
    "sos", "door", "motion", "gas", "smoke", "water_leak", "bed",
    "light", "gas_valve", "tv", "air_conditioner", "curtain", "heater",
)
"""Allowed values of ``role`` in a ``[[devices]]`` table (CONTRACTS.md §5)."""

LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""Allowed values of ``[logging] level``."""

DEFAULT_MODEL_DIR = Path("~/.local/share/yinling/models/vosk-model-small-cn-0.22")
"""Where the Vosk model is looked for when ``[speech] model_dir`` is empty."""

_PORT = {"range": (1, 65535)}
_TOPIC_SAFE = {"pattern": (r"[^/+#\s]+", "a non-empty name without '/', '+', '#' or spaces")}


@dataclass(frozen=True)
class HomeConfig:
    """The home this assistant serves (``[home]``)."""

    id: str = field(metadata=_TOPIC_SAFE)
    """identifies the home in MQTT topics and platform calls"""
    elder_name: str = field(metadata={"pattern": (r"(?s).*\S.*", "a non-empty name")})
    """how the assistant addresses the elder"""
    family_contact: str = field(metadata={"choices": ("son", "daughter", "spouse", "family", "neighbor", "community")})
    """who the assistant offers to call when the elder is unwell or lonely"""


@dataclass(frozen=True)
class MqttConfig:
    """The home MQTT broker (``[mqtt]``); an empty host means no broker."""

    host: str
    """host name or IP address of the broker; "" = run without a broker"""
    port: int = field(metadata=_PORT)
    """TCP port of the broker (1..65535)"""
    tls: bool
    """encrypt the connection with TLS"""
    ca_certs: str
    """CA bundle file for TLS; "" = the system's certificates"""
    username: str
    """user name; "" = anonymous"""
    password: str
    """password of ``username``"""


@dataclass(frozen=True)
class PlatformConfig:
    """The community platform (``[platform]``); an empty url keeps orders and alerts in the outbox."""

    url: str = field(metadata={"pattern": (r"(https?://\S+)?", '"" or a URL starting with http:// or https://')})
    """base URL of the platform API, e.g. http://127.0.0.1:8321; "" = offline"""
    token: str
    """bearer token issued by the platform for this home"""
    poll_interval: float = field(metadata={"range": (0.1, 3600.0)})
    """seconds between reading back the status of our orders (accepted, dispatched …)"""
    drain_timeout: float = field(metadata={"range": (0.0, 600.0)})
    """seconds text mode waits at the end of input for orders and alerts to reach the platform"""


@dataclass(frozen=True)
class WebConfig:
    """The family page and family API (``[web]``)."""

    enabled: bool
    """serve the family page while ``yinling run`` runs"""
    port: int = field(metadata=_PORT)
    """TCP port of the family page (1..65535)"""


@dataclass(frozen=True)
class SpeechConfig:
    """Hearing and speaking (``[speech]``)."""

    wake_word: str = field(metadata={"pattern": (r"(?s).*\S.*", "a non-empty phrase")})
    """phrase that starts a conversation"""
    model_dir: str
    """Vosk model directory; "" = DEFAULT_MODEL_DIR (see :attr:`model_path`)"""
    tts_voice: str
    """espeak-ng voice id used by the speech synthesizer"""
    tts_rate: int = field(metadata={"range": (80, 400)})
    """speaking rate (words per minute)"""
    tts_volume: float = field(metadata={"range": (0.0, 1.0)})
    """speech volume (0.0 silent .. 1.0 full)"""
    input_device: str
    """microphone name or index as listed by sounddevice; "" = system default"""
    output_device: str
    """loudspeaker name or index as listed by sounddevice; "" = system default"""
    barge_in: str = field(metadata={"choices": ("keywords", "speech")})
    """what interrupts the assistant's own speech: "keywords" (wake word, emergency phrases) or any "speech"
    (only with echo cancellation, otherwise the assistant interrupts itself)"""
    emergency_phrases: tuple[str, ...]
    """phrases heard at any time, without the wake word, that start the help path at once"""
    decoys: tuple[str, ...]
    """phrases the keyword spotter listens for but never reports, to soak up ordinary speech that would
    otherwise be forced onto the keywords; empty = the bundled Mandarin list in voices/spotting.yaml"""
    request_timeout: float = field(metadata={"range": (1.0, 60.0)})
    """seconds of audio after the wake word in which the request must start"""

    @property
    def model_path(self) -> Path:
        """The Vosk model directory with ``~`` expanded and the default applied."""
        return Path(self.model_dir or DEFAULT_MODEL_DIR).expanduser()


@dataclass(frozen=True)
class IntentsConfig:
    """Understanding (``[intents]``)."""

    accent_tolerant: bool
    """also match by pinyin with merged initials/finals (zh=z, n=l, in=ing ...)"""
    min_confidence: float = field(metadata={"range": (0.0, 1.0)})
    """results below this confidence (0..1) count as intent "none\""""


@dataclass(frozen=True)
class DialogueConfig:
    """Conversation (``[dialogue]``)."""

    timeout: float = field(metadata={"range": (0.5, 3600.0)})
    """seconds an unanswered question waits before the assistant politely gives up"""


@dataclass(frozen=True)
class RemindersConfig:
    """Medication and other reminders (``[reminders]``)."""

    misfire_grace: int = field(metadata={"range": (1, 86400)})
    """seconds a reminder missed while the speaker was off may still ring late; older ones count as missed"""
    reprompt_every: float = field(metadata={"range": (10.0, 86400.0)})
    """seconds between reminders of a dose not yet confirmed with 「吃过了」"""
    max_reprompts: int = field(metadata={"range": (0, 20)})
    """reminders after the first before the dose is recorded missed and the family is told"""


@dataclass(frozen=True)
class LoggingConfig:
    """Diagnostics (``[logging]``); logs go to stderr."""

    level: str = field(metadata={"choices": LOG_LEVELS, "upper": True})
    """minimum level that is logged (DEBUG, INFO, WARNING, ERROR or CRITICAL)"""


@dataclass(frozen=True)
class DeviceConfig:
    """One sensor or actuator of the home (a ``[[devices]]`` table)."""

    name: str = field(metadata={"pattern": (r"(?=.*\S)[^+#]+", "a non-empty name without '+' or '#'")})
    """zigbee2mqtt friendly name, or the generic device id"""
    role: str = field(metadata={"choices": DEVICE_ROLES})
    """what the device is, one of DEVICE_ROLES"""
    room: str = ""
    """room the device is in (free text, optional)"""


@dataclass(frozen=True)
class Config:
    """The whole configuration of one home; build it with :func:`load`."""

    home: HomeConfig
    mqtt: MqttConfig
    platform: PlatformConfig
    web: WebConfig
    speech: SpeechConfig
    intents: IntentsConfig
    dialogue: DialogueConfig
    reminders: RemindersConfig
    escalation: EscalationConfig
    logging: LoggingConfig
    devices: tuple[DeviceConfig, ...] = ()
    """sensors and actuators, in the order the home file lists them"""


_SECTIONS: dict[str, type] = {
    "home": HomeConfig, "mqtt": MqttConfig, "platform": PlatformConfig, "web": WebConfig,
    "speech": SpeechConfig, "intents": IntentsConfig, "dialogue": DialogueConfig,
    "reminders": RemindersConfig, "escalation": EscalationConfig, "logging": LoggingConfig,
}
_STRINGS = tuple[str, ...]
_TYPE_WORDS: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                               _STRINGS: "a list of non-empty strings"}
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})

Sections = dict[str, dict[str, Any]]


def load(
    path: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration from the defaults, the home file ``path``, ``env`` and ``overrides``.

    ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment (tests).
    Raises ConfigError with one sentence naming the key, the bad value and what is allowed.
    """
    sections: Sections = {name: {} for name in _SECTIONS}
    devices: tuple[DeviceConfig, ...] = ()
    default_text = resources.files("config").joinpath("default.toml").read_text(encoding="utf-8")
    layers: list[tuple[Mapping[str, Any], str]] = [(_parse_toml(default_text, "default.toml"), "default.toml")]
    if path is not None:
        layers.append((_read_toml(Path(path)), str(path)))
    for layer, where in layers:
        listed = _apply(sections, layer, where)
        devices = devices if listed is None else listed
    _apply_env(sections, os.environ if env is None else env)
    if overrides:
        listed = _apply(sections, _nest(overrides), "command-line option")
        devices = devices if listed is None else listed
    built: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        missing = [f.name for f in fields(cls) if f.name not in sections[name]]
        if missing:
            raise ConfigError(f"default.toml lacks the key {name}.{missing[0]}; reinstall yinling.")
        built[name] = cls(**sections[name])
    config = Config(devices=devices, **built)
    logger.debug("configuration loaded from %s with %d devices", path or "defaults", len(devices))
    return config


def _read_toml(path: Path) -> dict[str, Any]:
    """Read and parse the home file, turning every OS, encoding and syntax problem into ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist; give an existing TOML file.") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory; give a TOML file.") from None
    except OSError as exc:
        raise ConfigError(f"configuration file {path} cannot be read ({exc.strerror}).") from None
    try:
        text = data.decode("utf-8-sig")  # editors on Windows add a BOM
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"configuration file {path} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8."
        ) from None
    return _parse_toml(text, str(path))


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text; the syntax error message of tomllib carries the line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}.") from None


def _nest(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``{"mqtt.port": 1}`` as well as ``{"mqtt": {"port": 1}}``."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        section, dot, name = str(key).partition(".")
        if dot:
            nested.setdefault(section, {})[name] = value
        elif isinstance(value, Mapping) and isinstance(nested.get(section), dict):
            nested[section].update(value)
        else:
            nested[section] = dict(value) if isinstance(value, Mapping) else value
    return nested


def _apply(sections: Sections, layer: Mapping[str, Any], where: str) -> tuple[DeviceConfig, ...] | None:
    """Validate one layer and merge it into ``sections``; returns its devices if it lists any."""
    devices: tuple[DeviceConfig, ...] | None = None
    for section, table in layer.items():
        if section == "devices":
            devices = _devices(table, where)
            continue
        if section not in _SECTIONS:
            allowed = ", ".join([*_SECTIONS, "devices"])
            raise ConfigError(f"{where}: unknown section [{section}]; allowed sections are {allowed}.")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: {section} = {_show(table)} is not allowed; [{section}] must be a table.")
        for key, value in table.items():
            sections[section][key] = _field_value(_SECTIONS[section], f"{section}.{key}", value, where)
    return devices


def _apply_env(sections: Sections, env: Mapping[str, str]) -> None:
    """Merge ``YINLING_<SECTION>_<KEY>`` variables, converting their text to each key's type."""
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("_")
        where = f"environment variable {name}"
        if section == "devices":
            raise ConfigError(
                f"{where} is not allowed; devices can only be listed as [[devices]] tables in the home file."
            )
        if section not in _SECTIONS:
            logger.debug("ignoring %s: no configuration section %s", name, section)
            continue
        sections[section][key] = _field_value(_SECTIONS[section], f"{section}.{key}", env[name], where, from_text=True)


def _devices(value: Any, where: str) -> tuple[DeviceConfig, ...]:
    """Validate the ``[[devices]]`` array of tables."""
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ConfigError(f"{where}: devices = {_show(value)} is not allowed; list devices as [[devices]] tables.")
    devices: list[DeviceConfig] = []
    seen: set[str] = set()
    for number, table in enumerate(value, start=1):
        label = f"devices[{number}]"
        for required in ("name", "role"):
            if required not in table:
                raise ConfigError(
                    f"{where}: {label} lacks the key {required}; every [[devices]] table needs name and role."
                )
        values = {key: _field_value(DeviceConfig, f"{label}.{key}", item, where) for key, item in table.items()}
        if values["name"] in seen:
            raise ConfigError(
                f"{where}: {label}.name = {_show(values['name'])} is used twice; device names must be unique."
            )
        seen.add(values["name"])
        devices.append(DeviceConfig(**values))
    return tuple(devices)


def _field_value(cls: type, key: str, value: Any, where: str, *, from_text: bool = False) -> Any:
    """Check ``value`` against the field ``key`` of dataclass ``cls``; return it converted to the field's type."""
    table, _, name = key.rpartition(".")
    spec = {f.name: f for f in fields(cls)}.get(name)
    if spec is None:
        allowed = ", ".join(f.name for f in fields(cls))
        table = table if "[" in table else f"[{table}]"
        raise ConfigError(f"{where}: unknown key {key}; allowed keys in {table} are {allowed}.")
    kind = typing.get_type_hints(cls)[name]
    value = _convert_text(value, kind) if from_text else value
    if not _has_type(value, kind):
        raise ConfigError(f"{where}: {key} = {_show(value)} is not allowed; expected {_TYPE_WORDS[kind]}.")
    value = float(value) if kind is float else tuple(value) if kind == _STRINGS else value
    meta = spec.metadata
    if meta.get("upper"):
        value = value.upper()
    if "range" in meta:
        low, high = meta["range"]
        if not low <= value <= high:
            raise ConfigError(f"{where}: {key} = {_show(value)} is out of range; allowed is {low}..{high}.")
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(meta["choices"])
        raise ConfigError(f"{where}: {key} = {_show(value)} is not allowed; expected one of {allowed}.")
    if "pattern" in meta:
        pattern, description = meta["pattern"]
        if not re.fullmatch(pattern, value):
            raise ConfigError(f"{where}: {key} = {_show(value)} is not allowed; expected {description}.")
    return value


def _convert_text(text: str, kind: type) -> Any:
    """Convert an environment variable's text; leave it unchanged when it does not convert (reported by the caller)."""
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() in _TRUE_WORDS:
            return True
        if stripped.lower() in _FALSE_WORDS:
            return False
        return text
    if kind in (int, float):
        try:
            return kind(stripped)
        except ValueError:
            return text
    if kind == _STRINGS:  # YINLING_SPEECH_EMERGENCY_PHRASES="救命,来人啊"
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return text


def _has_type(value: Any, kind: Any) -> bool:
    """TOML-aware type check: a bool is not an integer, an integer is a number; lists of strings."""
    if kind == _STRINGS:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value)
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def _show(value: Any) -> str:
    """Render a value as it would be written in TOML, shortened for a one-line message."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    else:
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
