"""Reminders as data: the :class:`Reminder` model, its validation and JSON form, and when it is due.

A reminder rings at one or more local times of day (``"HH:MM"``) on some ISO weekdays (1 = Monday ..
7 = Sunday) between optional start and end dates, or once at ``once_at``. Every way of building one
(the constructor, :meth:`Reminder.from_json` for the family API, :func:`reminder_from_slots` for a
``set_reminder`` intent) validates it and raises :class:`~assistant.errors.ReminderError` with one
clear sentence, so nothing invalid is ever stored.

:func:`due_between` is the pure occurrence computation: the scheduler uses it to catch up after the
device was off, the adherence view uses it for the day's pending doses, and tests use it instead of
waiting for real time. :class:`DoseDue` is the message a firing reminder produces.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from assistant.errors import ReminderError

KINDS: tuple[str, ...] = ("medication", "other")
"""Allowed values of :attr:`Reminder.kind` (CONTRACTS.md §2 ``set_reminder`` ``kind``)."""

CREATORS: tuple[str, ...] = ("voice", "family")
"""Who can create a reminder: the elder by voice, or the family through the family API."""

ALL_DAYS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
"""Every ISO weekday, Monday (1) to Sunday (7)."""

MAX_TEXT = 100
"""Longest medicine name or dose text accepted (characters)."""

_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FIRE_TOLERANCE = dt.timedelta(seconds=2)  # a job may start a hair before our own clock says so


def new_id() -> str:
    """A fresh reminder id: 12 hex digits (safe in job ids and URLs)."""
    return uuid.uuid4().hex[:12]


def medicine_matches(name: str, wanted: str) -> bool:
    """True if the spoken ``wanted`` names the medicine ``name`` (either contains the other: 降压 ~ 降压药)."""
    name, wanted = name.strip(), wanted.strip()
    return bool(name and wanted) and (wanted in name or name in wanted)


@dataclass(frozen=True)
class DoseDue:
    """One occurrence of a reminder that has come due; handed to the ``on_fire`` callback."""

    reminder_id: str
    medicine: str
    """the medicine (for ``kind == "other"``: what to be reminded of, may be empty)"""
    dose: str
    """how much, as said (一片, 两粒); may be empty"""
    kind: str
    """``medication`` or ``other``"""
    scheduled: dt.datetime
    """the time the reminder was due (timezone-aware), not the time it actually rang"""

    @property
    def at(self) -> str:
        """The scheduled time of day as ``HH:MM``."""
        return self.scheduled.strftime("%H:%M")

    def to_json(self) -> dict[str, Any]:
        """Wire form; ``scheduled`` as ISO 8601 with offset."""
        return {"reminder_id": self.reminder_id, "medicine": self.medicine, "dose": self.dose,
                "kind": self.kind, "scheduled": self.scheduled.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoseDue:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["reminder_id"]), str(data["medicine"]), str(data["dose"]), str(data["kind"]),
                   dt.datetime.fromisoformat(data["scheduled"]))


@dataclass(frozen=True)
class Reminder:
    """A medication or other reminder; validated on construction (ReminderError, one sentence)."""

    id: str
    """stable id: letters, digits, ``_`` and ``-`` (it is part of the scheduler's job ids)"""
    kind: str
    """``medication`` or ``other``"""
    medicine: str
    """the medicine (required for medication); for ``other``, what to be reminded of"""
    dose: str = ""
    """how much, as said (一片); may be empty"""
    times: tuple[str, ...] = ()
    """local times of day, ``HH:MM`` 24-hour, sorted; a one-off has exactly its own time"""
    days: tuple[int, ...] = ALL_DAYS
    """ISO weekdays 1 (Monday) to 7 (Sunday), sorted; empty for a one-off"""
    start: dt.date | None = None
    """first day it rings (inclusive); None = from now on"""
    end: dt.date | None = None
    """last day it rings (inclusive); None = no end"""
    once_at: dt.datetime | None = None
    """timezone-aware moment of a one-off reminder; None for a repeating one"""
    paused: bool = False
    """a paused reminder keeps its settings but never rings and is never counted missed"""
    created_by: str = "voice"
    """``voice`` (the elder) or ``family`` (the family API)"""
    since: dt.datetime | None = None
    """set by the service when created, changed or resumed: occurrences at or before it are not due"""

    def __post_init__(self) -> None:
        # Lists from callers become tuples so equal reminders compare and hash alike.
        for name in ("times", "days"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        _check(self)

    def check_new(self, now: dt.datetime) -> None:
        """Refuse a reminder that could never ring again after ``now`` (past one-off, end date passed)."""
        if self.once_at is not None and self.once_at <= now:
            raise ReminderError("the one-off time %s has already passed; choose a time in the future"
                                % self.once_at.strftime("%Y-%m-%d %H:%M"))
        if self.end is not None and self.end < now.date():
            raise ReminderError("the end date %s is already past; choose today or a later day" % self.end)

    def finished(self, now: dt.datetime) -> bool:
        """True when the reminder will never ring again after ``now``."""
        if self.once_at is not None:
            return self.once_at <= now
        return self.end is not None and self.end < now.date()

    def due(self, scheduled: dt.datetime) -> DoseDue:
        """The :class:`DoseDue` of this reminder at ``scheduled``."""
        return DoseDue(self.id, self.medicine, self.dose, self.kind, scheduled)

    def changed(self, changes: Mapping[str, Any], *, tz: dt.tzinfo) -> Reminder:
        """This reminder with ``changes`` applied (Python or JSON values); ReminderError if invalid.

        ``id``, ``created_by`` and ``since`` cannot change; a new ``once_at`` brings its own time of day.
        """
        bad = ({"id", "created_by", "since"} & changes.keys()) | (changes.keys() - self.to_json().keys())
        if bad:
            raise ReminderError("the reminder field %r cannot be changed" % sorted(bad)[0])
        body = {**self.to_json(), **{key: _wire(value) for key, value in changes.items()}}
        if body["once_at"] and "once_at" in changes and "times" not in changes:
            body["times"] = []
        return Reminder.from_json(body, tz=tz, created_by=self.created_by)

    def to_json(self) -> dict[str, Any]:
        """Wire form (CONTRACTS.md §7): kind, medicine, dose, times, days plus id, dates, paused …"""
        return {
            "id": self.id, "kind": self.kind, "medicine": self.medicine, "dose": self.dose,
            "times": list(self.times), "days": list(self.days),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "once_at": self.once_at.isoformat() if self.once_at else None,
            "paused": self.paused, "created_by": self.created_by,
            "since": self.since.isoformat() if self.since else None,
        }

    @classmethod
    def from_json(cls, data: Any, *, tz: dt.tzinfo, id: str | None = None,
                  created_by: str | None = None) -> Reminder:
        """Build a reminder from its wire form (e.g. a family API POST body); ReminderError if bad.

        Missing ``id`` → ``id`` argument or a fresh id; missing ``days`` → every day; ``times`` and
        ``days`` are sorted and de-duplicated; a naive ``once_at`` is read in ``tz``; for a one-off,
        ``times`` may be left out. ``created_by`` (if given) overrides the body. Unknown keys are ignored.
        """
        if not isinstance(data, Mapping):
            raise ReminderError("a reminder must be a JSON object with kind, medicine, dose, times and days")
        once_at = _datetime(data.get("once_at"), "once_at", tz)
        times = _times(data.get("times") or [])
        if once_at is not None:
            own = once_at.strftime("%H:%M")
            if times not in ((), (own,)):
                raise ReminderError("a one-off reminder rings only at its once_at time %s; leave times empty"
                                    % own)
            times, days = (own,), ()
        else:
            days = _days(data.get("days", list(ALL_DAYS)))
        return cls(
            id=str(data.get("id") or id or new_id()),
            kind=data.get("kind", "medication"),
            medicine=_text(data.get("medicine", ""), "medicine"),
            dose=_text(data.get("dose", ""), "dose"),
            times=times, days=days,
            start=_date(data.get("start"), "start"), end=_date(data.get("end"), "end"),
            once_at=once_at, paused=data.get("paused", False),
            created_by=created_by or data.get("created_by", "family"),
            since=_datetime(data.get("since"), "since", tz),
        )


def reminder_from_slots(slots: Mapping[str, Any], *, now: dt.datetime, id: str | None = None) -> Reminder:
    """Build a voice reminder from ``set_reminder`` slots (CONTRACTS.md §2); ReminderError if bad.

    ``repeat`` ``once`` rings at the next ``time`` after ``now`` (today or tomorrow), ``daily``
    (the default) every day, ``weekly`` on today's weekday. ``kind`` defaults to ``medication``
    when a medicine is named, otherwise ``other``.
    """
    time = slots.get("time")
    if not time:
        raise ReminderError("a reminder needs a time of day such as 08:00")
    (at,) = _times([time])
    medicine = _text(slots.get("medicine", ""), "medicine")
    kind = slots.get("kind") or ("medication" if medicine else "other")
    repeat = slots.get("repeat") or "daily"
    common = {"id": id or new_id(), "kind": kind, "medicine": medicine,
              "dose": _text(slots.get("dose", ""), "dose"), "created_by": "voice"}
    if repeat == "once":
        hour, minute = (int(part) for part in at.split(":"))
        once_at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if once_at <= now:
            once_at += dt.timedelta(days=1)
        return Reminder(times=(at,), days=(), once_at=once_at, **common)
    if repeat not in ("daily", "weekly"):
        raise ReminderError("repeat must be once, daily or weekly, not %r" % repeat)
    days = ALL_DAYS if repeat == "daily" else (now.isoweekday(),)
    return Reminder(times=(at,), days=days, **common)


def due_between(reminders: Iterable[Reminder], start: dt.datetime, end: dt.datetime,
                tz: dt.tzinfo | None = None) -> list[DoseDue]:
    """Every occurrence with ``start < scheduled <= end`` of the reminders that are not paused, by time.

    Pure: no clock, no database. Times of day are read in ``tz`` (default: ``end``'s timezone);
    occurrences at or before a reminder's :attr:`~Reminder.since` are left out.
    """
    tz = tz or end.tzinfo
    if tz is None or start.tzinfo is None:
        raise ValueError("due_between needs timezone-aware start and end")
    found: list[DoseDue] = []
    for reminder in reminders:
        if reminder.paused:
            continue
        low = start if reminder.since is None else max(start, reminder.since)
        if reminder.once_at is not None:
            if low < reminder.once_at <= end:
                found.append(reminder.due(reminder.once_at))
            continue
        day, last = low.astimezone(tz).date(), end.astimezone(tz).date()
        if reminder.start is not None:
            day = max(day, reminder.start)
        if reminder.end is not None:
            last = min(last, reminder.end)
        clock = [tuple(int(part) for part in at.split(":")) for at in reminder.times]
        while day <= last:
            if day.isoweekday() in reminder.days:
                for hour, minute in clock:
                    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                    if low < moment <= end:
                        found.append(reminder.due(moment))
            day += dt.timedelta(days=1)
    found.sort(key=lambda due: (due.scheduled, due.reminder_id))
    return found


def last_due(reminder: Reminder, at: str, now: dt.datetime) -> dt.datetime | None:
    """The latest occurrence of ``reminder`` at time of day ``at`` no later than ``now`` (a job's run time)."""
    if reminder.once_at is not None:
        return reminder.once_at
    unbounded = replace(reminder, paused=False, since=None)
    week = due_between([unbounded], now - dt.timedelta(days=8), now + _FIRE_TOLERANCE)
    matching = [due.scheduled for due in week if due.at == at]
    return matching[-1] if matching else None


def pick(reminders: Iterable[Reminder], *, medicine: str | None = None,
         hours: range | None = None) -> list[Reminder]:
    """Reminders for 「把晚上那个提醒取消了」: naming ``medicine`` and/or ringing at an hour in ``hours``."""
    chosen = []
    for reminder in reminders:
        if medicine and not medicine_matches(reminder.medicine, medicine):
            continue
        if hours is not None and not any(int(at[:2]) in hours for at in reminder.times):
            continue
        chosen.append(reminder)
    return chosen


def _check(r: Reminder) -> None:
    """Validate a reminder's fields; ReminderError naming the first problem."""
    if not isinstance(r.id, str) or not _ID.fullmatch(r.id):
        raise ReminderError("reminder id %r must be 1..64 letters, digits, '_' or '-'" % (r.id,))
    if r.kind not in KINDS:
        raise ReminderError("kind must be \"medication\" or \"other\", not %r" % (r.kind,))
    _text(r.medicine, "medicine")
    _text(r.dose, "dose")
    if r.kind == "medication" and not r.medicine.strip():
        raise ReminderError("a medication reminder needs the name of the medicine")
    if r.created_by not in CREATORS:
        raise ReminderError("created_by must be \"voice\" or \"family\", not %r" % (r.created_by,))
    if not isinstance(r.paused, bool):
        raise ReminderError("paused must be true or false, not %r" % (r.paused,))
    _times(r.times)
    if len(set(r.times)) != len(r.times):
        raise ReminderError("times must not repeat a time: %s" % ", ".join(map(str, r.times)))
    if not r.times:
        raise ReminderError("a reminder needs at least one time of day such as 08:00")
    for value in (r.start, r.end):
        if value is not None and (not isinstance(value, dt.date) or isinstance(value, dt.datetime)):
            raise ReminderError("start and end must be dates (YYYY-MM-DD), not %r" % (value,))
    if r.start is not None and r.end is not None and r.end < r.start:
        raise ReminderError("the end date %s is before the start date %s" % (r.end, r.start))
    if r.since is not None and (not isinstance(r.since, dt.datetime) or r.since.tzinfo is None):
        raise ReminderError("since must be a timezone-aware date and time, not %r" % (r.since,))
    if r.once_at is None:
        _days(r.days)
        if len(set(r.days)) != len(r.days):
            raise ReminderError("days must not repeat a weekday: %s" % ", ".join(map(str, r.days)))
        return
    if not isinstance(r.once_at, dt.datetime) or r.once_at.tzinfo is None:
        raise ReminderError("once_at must be a timezone-aware date and time, not %r" % (r.once_at,))
    if r.times != (r.once_at.strftime("%H:%M"),) or r.days or r.start or r.end:
        raise ReminderError("a one-off reminder has only its once_at time: no other times, weekdays or dates")


def _times(values: Any) -> tuple[str, ...]:
    """Check ``HH:MM`` times (exactly two digits each, 00:00..23:59) and return them sorted, unique."""
    if not isinstance(values, (list, tuple)):
        raise ReminderError("times must be a list of HH:MM times such as [\"08:00\", \"20:00\"], not %r"
                            % (values,))
    for value in values:
        if not isinstance(value, str) or not _TIME.fullmatch(value):
            raise ReminderError("time %r is not a 24-hour HH:MM time such as 08:00 or 20:30" % (value,))
    return tuple(sorted(set(values)))


def _days(values: Any) -> tuple[int, ...]:
    """Check ISO weekdays 1..7 and return them sorted, unique."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ReminderError("days must be a non-empty list of ISO weekdays 1 (Monday) to 7 (Sunday)")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7:
            raise ReminderError("weekday %r is not an ISO weekday 1 (Monday) to 7 (Sunday)" % (value,))
    return tuple(sorted(set(values)))


def _text(value: Any, name: str) -> str:
    """A short free-text field, stripped."""
    if not isinstance(value, str):
        raise ReminderError("%s must be text, not %r" % (name, value))
    if len(value) > MAX_TEXT:
        raise ReminderError("%s is longer than %d characters" % (name, MAX_TEXT))
    return value.strip()


def _date(value: Any, name: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date or None."""
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ReminderError("%s must be a date YYYY-MM-DD, not %r" % (name, value)) from None


def _datetime(value: Any, name: str, tz: dt.tzinfo) -> dt.datetime | None:
    """An ISO 8601 date and time (naive → ``tz``), whole seconds, or None."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ReminderError("%s must be a date and time like 2026-11-26T15:00, not %r"
                                % (name, value)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.replace(microsecond=0)


def _wire(value: Any) -> Any:
    """A Python value in its JSON form (dates as ISO strings, tuples as lists)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return list(value) if isinstance(value, tuple) else value
