"""Home sensors: the device registry and the adapters from MQTT payloads to typed sensor events.

Two sources speak the same property names (CONTRACTS.md §3):

- zigbee2mqtt 2.x: ``zigbee2mqtt/<friendly_name>`` carries the device's JSON state and
  ``zigbee2mqtt/<friendly_name>/availability`` carries ``{"state": "online"}`` (older bridges send
  the bare word ``online``);
- the generic topic ``yinling/<home_id>/sensor/<device_id>`` for anything else (ESPHome, scripts).

Each property we understand becomes one frozen :class:`SensorEvent`; every other property
(``linkquality``, ``voltage`` …) is ignored. Payloads that are too large, not JSON, not an object or
have a property of the wrong type give a one-line warning, rate-limited per reason by
:class:`WarningLimiter`, and never an exception: one bad sensor must not silence the others.

:class:`DeviceRegistry` maps friendly names to the role and room from the home's ``[[devices]]``
tables and remembers when each device was last heard from. zigbee2mqtt only marks a battery
device offline after 25 hours, so the registry's ``last_seen`` is what the family page shows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from assistant.config import DeviceConfig

logger = logging.getLogger(__name__)

Z2M_PREFIX = "zigbee2mqtt/"
"""Topic prefix of zigbee2mqtt device states."""

AVAILABILITY_SUFFIX = "/availability"
"""Topic suffix of zigbee2mqtt availability messages."""

MAX_PAYLOAD = 64 * 1024
"""Largest sensor payload that is parsed (bytes); real device states are a few hundred bytes."""

WARNING_INTERVAL = 60.0
"""At most one warning per reason in this many seconds; the next one says how many were suppressed."""

SENSOR_KINDS: tuple[str, ...] = (
    "contact", "occupancy", "gas", "smoke", "water_leak", "fall", "action", "battery", "availability",
)
"""Kinds of :class:`SensorEvent`; ``contact`` True = closed, ``availability`` True = online."""

_BOOL_PROPERTIES: dict[str, str] = {
    "contact": "contact", "occupancy": "occupancy", "presence": "occupancy",
    "gas": "gas", "smoke": "smoke", "water_leak": "water_leak", "fall": "fall",
}
"""property name in the payload → event kind, for boolean properties"""

SensorValue = bool | int | float | str


@dataclass(frozen=True)
class SensorEvent:
    """One property reported by one device at one moment."""

    device: str
    """zigbee2mqtt friendly name or generic device id"""
    role: str
    """role from the home's [[devices]] table; "" for a device that is not configured"""
    room: str
    """room from the home's [[devices]] table; "" when unknown"""
    kind: str
    """one of SENSOR_KINDS"""
    value: SensorValue
    """bool for contact/occupancy/alarms/availability, str for action, number (percent) for battery"""
    at: dt.datetime
    """when the message was received (the bridge's clock)"""

    def to_json(self) -> dict[str, Any]:
        """Wire form with ``at`` as ISO 8601."""
        return {"device": self.device, "role": self.role, "room": self.room, "kind": self.kind,
                "value": self.value, "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SensorEvent:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["device"]), str(data["role"]), str(data["room"]), str(data["kind"]), data["value"],
                   dt.datetime.fromisoformat(data["at"]))


@dataclass(frozen=True)
class DeviceStatus:
    """What the registry knows about one device (for the family page)."""

    name: str
    role: str
    room: str
    last_seen: dt.datetime | None
    """last message of any kind from the device; None = never heard since start"""
    online: bool | None
    """last availability reported by zigbee2mqtt; None = not reported"""
    battery: float | None
    """last battery level (percent); None = not reported"""


class WarningLimiter:
    """Logs one-line warnings, at most one per reason per ``interval`` seconds."""

    def __init__(self, log: logging.Logger, interval: float = WARNING_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Warn on ``log``; ``clock`` gives seconds (monotonic)."""
        self._log = log
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()
        self.total = 0
        """warnings asked for since start, logged or suppressed"""

    def warn(self, reason: str, message: str, *args: object) -> None:
        """Log ``message % args`` unless a warning for ``reason`` was logged less than ``interval`` ago."""
        now = self._clock()
        with self._lock:
            self.total += 1
            last = self._last.get(reason)
            if last is not None and now - last < self.interval:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return
            self._last[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
        if suppressed:
            self._log.warning(message + " (%d similar warnings suppressed)", *args, suppressed)
        else:
            self._log.warning(message, *args)


class DeviceRegistry:
    """Friendly name → role and room, plus per-device last-seen tracking; thread-safe."""

    def __init__(self, devices: Iterable[DeviceConfig] = ()) -> None:
        """Register the home's configured devices."""
        self._devices = {device.name: device for device in devices}
        self._seen: dict[str, dt.datetime] = {}
        self._online: dict[str, bool] = {}
        self._battery: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> DeviceConfig | None:
        """The configured device called ``name``, or None."""
        return self._devices.get(name)

    def with_role(self, role: str) -> tuple[DeviceConfig, ...]:
        """Configured devices of ``role``, in configuration order."""
        return tuple(device for device in self._devices.values() if device.role == role)

    def names(self) -> tuple[str, ...]:
        """Names of all configured devices."""
        return tuple(self._devices)

    def record(self, event: SensorEvent) -> None:
        """Remember ``event`` for the device's status (an availability message is not a sign of life)."""
        with self._lock:
            if event.kind == "availability":
                self._online[event.device] = bool(event.value)
                return
            self._seen[event.device] = event.at
            if event.kind == "battery":
                self._battery[event.device] = float(event.value)

    def touch(self, name: str, at: dt.datetime) -> None:
        """``name`` sent a state message at ``at``."""
        with self._lock:
            self._seen[name] = at

    def last_seen(self, name: str) -> dt.datetime | None:
        """When ``name`` last sent a state message, or None."""
        with self._lock:
            return self._seen.get(name)

    def status(self) -> tuple[DeviceStatus, ...]:
        """Status of every configured device, then of unconfigured devices that were heard."""
        with self._lock:
            names = list(self._devices) + sorted(set(self._seen) - set(self._devices))
            return tuple(self._status(name) for name in names)

    def _status(self, name: str) -> DeviceStatus:
        device = self._devices.get(name)
        return DeviceStatus(name, device.role if device else "", device.room if device else "",
                            self._seen.get(name), self._online.get(name), self._battery.get(name))


class SensorAdapter:
    """Turns MQTT messages on the sensor topics into :class:`SensorEvent` tuples, never raising."""

    def __init__(self, home_id: str, registry: DeviceRegistry, *,
                 now: Callable[[], dt.datetime] | None = None, warnings: WarningLimiter | None = None) -> None:
        """Adapt messages for home ``home_id``; ``now`` stamps events (default: local time, aware)."""
        self.registry = registry
        self.generic_prefix = "yinling/%s/sensor/" % home_id
        self._now = now or (lambda: dt.datetime.now().astimezone())
        self.warnings = warnings or WarningLimiter(logger)

    def adapt(self, topic: str, payload: bytes) -> tuple[SensorEvent, ...]:
        """The events in one message; () for foreign, malformed or uninteresting messages (with a warning)."""
        if topic.startswith(Z2M_PREFIX):
            name = topic[len(Z2M_PREFIX):]
            if name.startswith("bridge/") or not name:
                return ()
            if name.endswith(AVAILABILITY_SUFFIX):
                return self._availability(name[:-len(AVAILABILITY_SUFFIX)], payload)
            return self._state(name, payload)
        if topic.startswith(self.generic_prefix):
            name = topic[len(self.generic_prefix):]
            if not name or "/" in name:
                self.warnings.warn("topic", "ignoring sensor message on %s: expected %s<device_id>",
                                   _short(topic), self.generic_prefix)
                return ()
            return self._state(name, payload)
        self.warnings.warn("topic", "ignoring message on unexpected topic %s", _short(topic))
        return ()

    def _state(self, name: str, payload: bytes) -> tuple[SensorEvent, ...]:
        data = self._json(name, payload)
        if not isinstance(data, dict):
            if data is not None:
                self.warnings.warn("not_object", "ignoring message from %s: expected a JSON object, got %s",
                                   _short(name), type(data).__name__)
            return ()
        at = self._now()
        device = self._device(name)
        events: list[SensorEvent] = []
        for prop, value in data.items():
            kind = _BOOL_PROPERTIES.get(prop)
            if kind is not None:
                if isinstance(value, bool):
                    events.append(SensorEvent(name, device.role, device.room, kind, value, at))
                elif value is not None:
                    self._wrong_type(name, prop, value, "true or false")
            elif prop == "action":
                if isinstance(value, str):
                    if value:  # zigbee2mqtt may send "" to reset the action
                        events.append(SensorEvent(name, device.role, device.room, "action", value, at))
                elif value is not None:
                    self._wrong_type(name, prop, value, "a string")
            elif prop == "battery":
                if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100:
                    events.append(SensorEvent(name, device.role, device.room, "battery", value, at))
                elif value is not None:
                    self._wrong_type(name, prop, value, "a number 0..100")
        self.registry.touch(name, at)  # a state without any property we use is still a sign of life
        for event in events:
            self.registry.record(event)
        return tuple(events)

    def _availability(self, name: str, payload: bytes) -> tuple[SensorEvent, ...]:
        if len(payload) > MAX_PAYLOAD:
            self._too_large(name, payload)
            return ()
        text = payload.decode("utf-8", errors="replace").strip()
        state: Any = text
        if text.startswith("{"):
            data = self._json(name, payload)
            state = data.get("state") if isinstance(data, dict) else None
        if state not in ("online", "offline"):
            self.warnings.warn("availability", "ignoring availability of %s: expected online or offline, got %s",
                               _short(name), _short(text))
            return ()
        device = self._device(name)
        event = SensorEvent(name, device.role, device.room, "availability", state == "online", self._now())
        self.registry.record(event)
        return (event,)

    def _json(self, name: str, payload: bytes) -> Any:
        """The decoded payload, or None after a warning."""
        if len(payload) > MAX_PAYLOAD:
            self._too_large(name, payload)
            return None
        try:
            return json.loads(payload)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            self.warnings.warn("not_json", "ignoring message from %s: not JSON (%s)", _short(name),
                               _short(payload.decode("utf-8", errors="replace")))
            return None

    def _device(self, name: str) -> DeviceConfig | _Unknown:
        device = self.registry.get(name)
        if device is None:
            self.warnings.warn("unknown_device", "message from %s, which is not listed in [[devices]]",
                               _short(name))
            return _UNKNOWN
        return device

    def _too_large(self, name: str, payload: bytes) -> None:
        self.warnings.warn("too_large", "ignoring message from %s: %d bytes is more than %d",
                           _short(name), len(payload), MAX_PAYLOAD)

    def _wrong_type(self, name: str, prop: str, value: Any, expected: str) -> None:
        self.warnings.warn("wrong_type", "ignoring %s of %s: expected %s, got %s",
                           prop, _short(name), expected, _short(repr(value)))


@dataclass(frozen=True)
class _Unknown:
    """Role and room of a device that is not configured."""

    role: str = ""
    room: str = ""


_UNKNOWN = _Unknown()


def _short(text: str, limit: int = 60) -> str:
    """One line, at most ``limit`` characters: device names and payloads come from the network."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[:limit - 3] + "..."
