"""Incidents, their ladder and its settings, alerts and the audit log (SQLite ``incidents.db`` in the state dir).

An :class:`Incident` is one thing going wrong (an SOS press, a gas alarm, a silent morning). It
climbs the ladder of :data:`STEPS` — ``check_in`` (ask the elder by voice) → ``family`` →
``community`` → ``emergency`` (request emergency services) — until someone acknowledges it or the
elder says she is fine. Every step that reaches beyond the home sends one :class:`Alert`; the alert
id is derived from the incident and the step (:func:`alert_id`), so replaying a step after a crash
re-sends the *same* alert, which the MQTT outbox and the platform both deduplicate by id.

:class:`IncidentStore` persists open and closed incidents, an append-only ``audit`` table (one row
per step, repeat, acknowledgement and closure) and a small key/value ``state`` table the escalation
engine uses to remember activity across restarts. :class:`EscalationConfig` holds the ladder's
timeouts and the silence rules (the ``[escalation]`` section of the home configuration).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, EscalationError

logger = logging.getLogger(__name__)

STEPS: tuple[str, ...] = ("check_in", "family", "community", "emergency")
"""The ladder, lowest first; an alert's ``level`` is the step that sent it."""

AUDIENCE: dict[str, tuple[str, ...]] = {
    "family": ("family",), "community": ("family", "community"), "emergency": ("family", "community", "emergency"),
}
"""Who an alert of each level is meant for (the alert's ``notify`` field)."""

LADDERS: dict[str, tuple[str, str]] = {
    "emergency": ("community", "emergency"), "sos": ("community", "emergency"), "fall": ("community", "emergency"),
    "gas": ("community", "emergency"), "smoke": ("community", "emergency"), "water_leak": ("family", "community"),
    "help": ("family", "emergency"), "inactivity": ("check_in", "emergency"), "bathroom": ("check_in", "emergency"),
    "door_open": ("check_in", "community"), "missed_medication": ("family", "family"),
}
"""incident kind → (first step, highest step). Incidents that reach ``emergency`` stay open until acknowledged;
the others close as ``unanswered`` when their highest step times out."""

_NAMESPACE = uuid.UUID("4f6b1b0e-8c55-4c1e-9a57-6d2f0e2a7c11")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    step       TEXT NOT NULL,                  -- the step reached (its actions are done); '' = none yet
    top        TEXT NOT NULL,                  -- the highest step this incident may reach
    opened_at  TEXT NOT NULL,                  -- ISO 8601 with offset
    step_at    TEXT NOT NULL,                  -- when the current step was reached
    device     TEXT NOT NULL,
    room       TEXT NOT NULL,
    contact    TEXT NOT NULL,
    details    TEXT NOT NULL,                  -- JSON object
    status     TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    closed_at  TEXT,
    closed_by  TEXT,
    outcome    TEXT                            -- acknowledged | im_ok | unanswered
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (status, kind);
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    action      TEXT NOT NULL,                 -- opened | check_in | family | community | emergency | repeat | ...
    detail      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_incident ON audit (incident_id, seq);
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _clock_time(key: str, value: str, optional: bool) -> None:
    if optional and value == "":
        return
    try:
        dt.time.fromisoformat(value)
        ok = len(value) == 5
    except ValueError:
        ok = False
    if not ok:
        allowed = 'a time "HH:MM"' + (' or "" (rule off)' if optional else "")
        raise ConfigError("escalation.%s = %r is not allowed; expected %s." % (key, value, allowed))


@dataclass(frozen=True)
class EscalationConfig:
    """Ladder timeouts and silence rules (the ``[escalation]`` section); times of day are local "HH:MM"."""

    check_in_timeout: float = 180.0
    """seconds the elder has to answer the check-in (「我没事」) before the family is alerted"""
    family_timeout: float = 600.0
    """seconds without an acknowledgement after the family alert before the community is alerted"""
    community_timeout: float = 900.0
    """seconds without an acknowledgement after the community alert before emergency services are requested"""
    day_start: str = "06:00"
    """the day begins: activity from here on counts for the morning and daytime rules"""
    morning_deadline: str = "10:00"
    """no motion or voice since day_start by this time → check-in; "" = rule off"""
    day_end: str = "21:00"
    """the daytime inactivity rule applies from day_start until this time"""
    inactivity_hours: float = 4.0
    """hours without any activity in the daytime → check-in; 0 = rule off"""
    bed_deadline: str = "09:30"
    """bed sensor still occupied since before day_start at this time → check-in; "" = rule off"""
    bathroom_room: str = "bathroom"
    """room name ([[devices]] room) of the bathroom"""
    bathroom_minutes: float = 60.0
    """minutes in the bathroom without activity anywhere else → check-in; 0 = rule off"""
    front_door: str = ""
    """device name of the front door contact; "" = every device with role door"""
    night_start: str = "22:00"
    """the night begins (front door rule)"""
    night_end: str = "06:00"
    """the night ends (front door rule)"""
    door_open_minutes: float = 10.0
    """minutes the front door may stay open at night → check-in; 0 = rule off"""

    def __post_init__(self) -> None:
        """Check every value; ConfigError names the key, the value and what is allowed."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ConfigError("escalation.%s = %r is not allowed; expected a number >= 0." % (spec.name, value))
            if spec.type == "str" and not isinstance(value, str):
                raise ConfigError("escalation.%s = %r is not allowed; expected a string." % (spec.name, value))
        for key in ("check_in_timeout", "family_timeout", "community_timeout"):
            if getattr(self, key) <= 0:
                value = getattr(self, key)
                raise ConfigError("escalation.%s = %r is not allowed; expected seconds > 0." % (key, value))
        for key in ("day_start", "day_end", "night_start", "night_end"):
            _clock_time(key, getattr(self, key), optional=False)
        for key in ("morning_deadline", "bed_deadline"):
            _clock_time(key, getattr(self, key), optional=True)

    def timeout(self, step: str) -> dt.timedelta:
        """How long ``step`` waits before the next one."""
        seconds = {"check_in": self.check_in_timeout, "family": self.family_timeout}.get(step, self.community_timeout)
        return dt.timedelta(seconds=seconds)


def alert_id(incident_id: str, step: str) -> str:
    """The id of the alert ``step`` sends for ``incident_id``: the same on every replay."""
    return str(uuid.uuid5(_NAMESPACE, "%s/%s" % (incident_id, step)))


@dataclass(frozen=True)
class Incident:
    """One escalation, open until acknowledged, answered by the elder, or finished unanswered."""

    id: str
    kind: str
    """what happened: emergency, sos, fall, gas, smoke, water_leak, inactivity, bathroom, door_open, ..."""
    reason: str
    """why, as a code: the rule (no_activity_by_deadline ...), the sensor property or the spoken reason"""
    step: str
    """the step reached (its alert sent, its line said), one of STEPS; "" = opened, first step not yet taken"""
    top: str
    """the highest step this incident may reach"""
    opened_at: dt.datetime
    step_at: dt.datetime
    """when ``step`` was reached; its timeout counts from here"""
    device: str = ""
    room: str = ""
    contact: str = ""
    """who the elder asked for (a contact value), "" = the home's family contact"""
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "open"
    closed_at: dt.datetime | None = None
    closed_by: str = ""
    outcome: str = ""
    """acknowledged, im_ok or unanswered once closed"""


@dataclass(frozen=True)
class Alert:
    """What one ladder step tells the outside world (MQTT ``yinling/<home_id>/alert`` and the platform)."""

    id: str
    incident: str
    home_id: str
    kind: str
    level: str
    """the step that sent it: family, community or emergency"""
    reason: str
    created_at: str
    """ISO 8601 with offset"""
    device: str = ""
    room: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def urgent(self) -> bool:
        """Community and emergency alerts ask for someone to come now."""
        return self.level in ("community", "emergency")

    def to_json(self) -> dict[str, Any]:
        """Wire form (CONTRACTS.md §3): ``id``, ``kind``, ``level``, ``reason``, ``created_at`` and more."""
        return {"id": self.id, "kind": self.kind, "level": self.level, "reason": self.reason,
                "created_at": self.created_at, "incident": self.incident, "home_id": self.home_id,
                "device": self.device, "room": self.room, "notify": list(AUDIENCE.get(self.level, ())),
                "urgent": self.urgent, "details": dict(self.details)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["id"]), str(data["incident"]), str(data["home_id"]), str(data["kind"]),
                   str(data["level"]), str(data["reason"]), str(data["created_at"]), str(data.get("device", "")),
                   str(data.get("room", "")), dict(data.get("details", {})))


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    incident_id: str
    at: dt.datetime
    action: str
    detail: str


class IncidentStore:
    """Incidents, audit log and engine state in one SQLite file; thread-safe."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # ---- incidents ---------------------------------------------------------------------------

    def create(self, incident: Incident, detail: str = "") -> None:
        """Store a new open incident (``step`` "": its first step is not taken yet) and audit its opening."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO incidents (id, kind, reason, step, top, opened_at, step_at, device, room, contact,"
                " details, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                (incident.id, incident.kind, incident.reason, incident.step, incident.top,
                 incident.opened_at.isoformat(), incident.step_at.isoformat(), incident.device, incident.room,
                 incident.contact, json.dumps(incident.details, ensure_ascii=False)))
            self._audit(incident.id, incident.opened_at, "opened", detail or incident.reason)

    def advance(self, incident: Incident, step: str, at: dt.datetime, detail: str = "") -> Incident:
        """Record that ``incident`` reached ``step`` at ``at`` (its actions are done); audited."""
        if step not in STEPS:
            raise EscalationError("unknown escalation step %r; expected one of %s" % (step, ", ".join(STEPS)))
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE incidents SET step = ?, step_at = ? WHERE id = ?",
                             (step, at.isoformat(), incident.id))
            self._audit(incident.id, at, step, detail)
        return replace(incident, step=step, step_at=at)

    def close_incident(self, incident: Incident, at: dt.datetime, outcome: str, by: str = "") -> Incident:
        """Close ``incident`` with ``outcome`` (acknowledged, im_ok, unanswered); audited."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE incidents SET status = 'closed', closed_at = ?, closed_by = ?, outcome = ?"
                             " WHERE id = ? AND status = 'open'", (at.isoformat(), by, outcome, incident.id))
            self._audit(incident.id, at, outcome, by)
        return replace(incident, status="closed", closed_at=at, closed_by=by, outcome=outcome)

    def audit(self, incident_id: str, at: dt.datetime, action: str, detail: str = "") -> None:
        """Append one row to the audit log."""
        with self._lock:
            self._audit(incident_id, at, action, detail)

    def open_incidents(self) -> tuple[Incident, ...]:
        """Open incidents, oldest first."""
        return self._select("WHERE status = 'open' ORDER BY opened_at")

    def get(self, incident_id: str) -> Incident | None:
        """The incident ``incident_id``, open or closed."""
        found = self._select("WHERE id = ?", (incident_id,))
        return found[0] if found else None

    def recent(self, limit: int = 50) -> tuple[Incident, ...]:
        """The latest ``limit`` incidents, newest first (for the family page)."""
        return self._select("ORDER BY opened_at DESC LIMIT ?", (limit,))

    def audit_log(self, incident_id: str | None = None) -> tuple[AuditEntry, ...]:
        """Audit rows, oldest first, of one incident or of all."""
        query = "SELECT incident_id, at, action, detail FROM audit"
        args: tuple[Any, ...] = ()
        if incident_id is not None:
            query, args = query + " WHERE incident_id = ?", (incident_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return tuple(AuditEntry(i, dt.datetime.fromisoformat(at), action, detail) for i, at, action, detail in rows)

    # ---- engine state ------------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        """A remembered value, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        """Remember ``value`` under ``key``."""
        with self._lock:
            self._db.execute("INSERT INTO state (key, value) VALUES (?, ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # ---- helpers -----------------------------------------------------------------------------

    def _audit(self, incident_id: str, at: dt.datetime, action: str, detail: str) -> None:
        self._db.execute("INSERT INTO audit (incident_id, at, action, detail) VALUES (?, ?, ?, ?)",
                         (incident_id, at.isoformat(), action, detail))

    def _select(self, where: str, args: tuple[Any, ...] = ()) -> tuple[Incident, ...]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, reason, step, top, opened_at, step_at, device, room, contact, details, status,"
                " closed_at, closed_by, outcome FROM incidents " + where, args).fetchall()
        return tuple(_incident(row) for row in rows)


def _incident(row: tuple[Any, ...]) -> Incident:
    (id_, kind, reason, step, top, opened_at, step_at, device, room, contact, details, status,
     closed_at, closed_by, outcome) = row
    return Incident(id_, kind, reason, step, top, dt.datetime.fromisoformat(opened_at),
                    dt.datetime.fromisoformat(step_at), device, room, contact, json.loads(details), status,
                    dt.datetime.fromisoformat(closed_at) if closed_at else None, closed_by or "", outcome or "")
