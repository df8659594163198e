"""What the assistant decides to do, as typed events: help requests, orders, calls, device commands.

The dialogue emits these; the loop hands them to whoever acts on them (escalation, the platform
outbox, the MQTT bridge) and appends every one to the event log. Each event converts to its wire
form with :meth:`to_json`, and back with :func:`event_from_json`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Event:
    """Base of all events; ``kind`` names the event on the wire."""

    kind: ClassVar[str] = "event"
    id: str = field(default_factory=_new_id, kw_only=True)
    created_at: str = field(default_factory=_now, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        """Wire form: the fields plus ``kind``."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class HelpRequested(Event):
    """The elder needs help: starts the escalation ladder (urgency ``emergency`` starts it high)."""

    kind: ClassVar[str] = "help"
    urgency: str
    reason: str = ""
    contact: str = ""
    utterance: str = ""


@dataclass(frozen=True)
class CallRequested(Event):
    """The elder asked to reach a person (not an emergency): family, neighbour, community, doctor."""

    kind: ClassVar[str] = "call"
    contact: str
    utterance: str = ""


@dataclass(frozen=True)
class OrderRequested(Event):
    """A confirmed order for the community platform; ``service`` is ``meal`` or an order_service value."""

    kind: ClassVar[str] = "order"
    service: str
    details: dict[str, Any] = field(default_factory=dict)
    utterance: str = ""


@dataclass(frozen=True)
class DeviceCommand(Event):
    """Switch a home device (CONTRACTS.md §2 device_control)."""

    kind: ClassVar[str] = "device"
    device: str
    action: str
    name: str = ""  # the configured device (friendly name); empty when none is configured


@dataclass(frozen=True)
class MessagePlayed(Event):
    """A message from the family was read aloud."""

    kind: ClassVar[str] = "message_played"
    text: str = ""


EVENT_TYPES: dict[str, type[Event]] = {cls.kind: cls for cls in
                                       (HelpRequested, CallRequested, OrderRequested, DeviceCommand, MessagePlayed)}


def event_from_json(data: dict[str, Any]) -> Event:
    """Inverse of :meth:`Event.to_json`; unknown kinds raise KeyError, unknown fields are ignored."""
    cls = EVENT_TYPES[data["kind"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
