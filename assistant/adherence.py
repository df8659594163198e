"""The adherence log: every medication dose that came due, and whether it was taken or missed.

One SQLite table ``doses`` (in the home's ``reminders.db``) holds a row per dose, unique by
``(reminder_id, scheduled_at)``: ``pending`` when it comes due, ``taken`` (with the time) when the
elder confirms it, ``missed`` when she never does or the device was off. Rows are kept at least
90 days. Recording is idempotent — a reminder that fires twice after a restart, or 「吃过了」 said
twice, never produces a second dose. :class:`MissedMedication` is the event a missed dose raises for
the family (the escalation path turns it into an alert).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from assistant.events import Event
from assistant.reminders import DoseDue, medicine_matches

logger = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("pending", "taken", "missed")
"""Dose states (CONTRACTS.md §7 ``status``)."""

KEEP_DAYS = 90
"""Doses are kept at least this many days; older rows are pruned at start-up."""

CONFIRM_WINDOW = dt.timedelta(hours=4)
"""「吃过了」 applies to the latest dose that came due at most this long ago (default 4 hours)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS doses (
    reminder_id  TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,              -- ISO 8601 local time with offset (the key)
    scheduled_ts REAL NOT NULL,              -- the same moment in Unix seconds, for range queries
    medicine     TEXT NOT NULL,
    dose         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'taken', 'missed')),
    taken_at     TEXT,
    prompts_sent INTEGER NOT NULL DEFAULT 0,
    UNIQUE (reminder_id, scheduled_at)
);
CREATE INDEX IF NOT EXISTS doses_by_time ON doses (scheduled_ts);
"""
_COLUMNS = "reminder_id, scheduled_at, medicine, dose, status, taken_at, prompts_sent"


@dataclass(frozen=True)
class Dose:
    """One dose in the log (or expected later today, as ``pending``)."""

    reminder_id: str
    medicine: str
    dose: str
    scheduled: dt.datetime
    """when it was (or is) due, timezone-aware"""
    status: str
    """``pending``, ``taken`` or ``missed``"""
    taken_at: dt.datetime | None = None
    """when the elder confirmed it; None unless taken"""
    prompts_sent: int = 0
    """how many times the assistant has said it (first prompt plus re-prompts)"""

    @property
    def due(self) -> DoseDue:
        """The occurrence this dose belongs to."""
        return DoseDue(self.reminder_id, self.medicine, self.dose, "medication", self.scheduled)

    def to_json(self) -> dict[str, Any]:
        """Wire form (CONTRACTS.md §7): ``scheduled``, ``status``, ``taken_at`` plus medicine, dose …"""
        return {"reminder_id": self.reminder_id, "medicine": self.medicine, "dose": self.dose,
                "scheduled": self.scheduled.isoformat(), "status": self.status,
                "taken_at": self.taken_at.isoformat() if self.taken_at else None,
                "prompts_sent": self.prompts_sent}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dose:
        """Inverse of :meth:`to_json`."""
        taken_at = data.get("taken_at")
        return cls(data["reminder_id"], data["medicine"], data["dose"], dt.datetime.fromisoformat(data["scheduled"]),
                   data["status"], dt.datetime.fromisoformat(taken_at) if taken_at else None,
                   int(data.get("prompts_sent", 0)))


@dataclass(frozen=True)
class MissedMedication(Event):
    """A dose was recorded missed: the family should hear about it (alert kind ``missed_medication``)."""

    kind: ClassVar[str] = "missed_medication"
    reminder_id: str
    medicine: str
    scheduled: dt.datetime
    """when the missed dose was due, timezone-aware"""
    dose: str = ""

    @classmethod
    def of(cls, due: DoseDue, now: dt.datetime) -> MissedMedication:
        """The event for the missed occurrence ``due``, created at ``now`` (the injected clock)."""
        return cls(due.reminder_id, due.medicine, due.scheduled, due.dose,
                   created_at=now.isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        """Wire form: ``kind``, ``id``, ``created_at``, ``reminder_id``, ``medicine``, ``dose``, ``scheduled``."""
        return {"kind": self.kind, "id": self.id, "created_at": self.created_at, "reminder_id": self.reminder_id,
                "medicine": self.medicine, "dose": self.dose, "scheduled": self.scheduled.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MissedMedication:
        """Inverse of :meth:`to_json`."""
        return cls(data["reminder_id"], data["medicine"], dt.datetime.fromisoformat(data["scheduled"]),
                   data.get("dose", ""), id=data["id"], created_at=data["created_at"])


class AdherenceLog:
    """Doses scheduled / taken / missed, in SQLite; safe to use from several threads."""

    def __init__(self, path: Path, tz: dt.tzinfo, *, keep_days: int = KEEP_DAYS) -> None:
        """Open (or create) the log in the SQLite file ``path``; times are reported in ``tz``."""
        if keep_days < KEEP_DAYS:
            raise ValueError("the adherence log keeps doses at least %d days, not %d" % (KEEP_DAYS, keep_days))
        self.tz = tz
        self.keep_days = keep_days
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # FULL sync (SQLite's default): a confirmed dose must survive a power cut.
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def record_due(self, due: DoseDue) -> bool:
        """Log ``due`` as pending; False (and no change) if that dose is already in the log."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO doses (reminder_id, scheduled_at, scheduled_ts, medicine, dose, status)"
                " VALUES (?, ?, ?, ?, ?, 'pending')",
                self._key(due) + (due.scheduled.timestamp(), due.medicine, due.dose))
            return cursor.rowcount == 1

    def note_prompt(self, due: DoseDue) -> None:
        """Count one more spoken prompt for the dose ``due``."""
        with self._lock, self._db:
            self._db.execute("UPDATE doses SET prompts_sent = prompts_sent + 1"
                             " WHERE reminder_id = ? AND scheduled_at = ?", self._key(due))

    def get(self, reminder_id: str, scheduled: dt.datetime) -> Dose | None:
        """The logged dose of ``reminder_id`` due at ``scheduled``, or None."""
        with self._lock:
            row = self._db.execute("SELECT %s FROM doses WHERE reminder_id = ? AND scheduled_at = ?" % _COLUMNS,
                                   (reminder_id, self._iso(scheduled))).fetchone()
        return self._dose(row) if row else None

    def latest_due(self, now: dt.datetime, medicine: str | None = None,
                   within: dt.timedelta = CONFIRM_WINDOW) -> Dose | None:
        """The dose 「吃过了」 refers to: the most recent one due in ``(now - within, now]`` (of ``medicine``).

        Among doses due at the same moment, one not yet taken comes first. None if nothing is due.
        """
        with self._lock:
            return self._latest(now, medicine, within)

    def confirm_taken(self, now: dt.datetime, medicine: str | None = None,
                      within: dt.timedelta = CONFIRM_WINDOW) -> Dose | None:
        """Mark the dose :meth:`latest_due` finds as taken at ``now`` and return it.

        Never double-logs: if that dose is already taken it is returned unchanged, and None is
        returned when no dose is due (「吃过了」 before the reminder). A missed dose becomes taken (late).
        """
        with self._lock, self._db:
            dose = self._latest(now, medicine, within)
            if dose is None or dose.status == "taken":
                return dose
            self._db.execute("UPDATE doses SET status = 'taken', taken_at = ?"
                             " WHERE reminder_id = ? AND scheduled_at = ?",
                             (self._iso(now), dose.reminder_id, self._iso(dose.scheduled)))
            logger.info("dose of reminder %s due %s confirmed taken", dose.reminder_id, dose.scheduled)
            return Dose(dose.reminder_id, dose.medicine, dose.dose, dose.scheduled, "taken",
                        now.astimezone(self.tz), dose.prompts_sent)

    def mark_missed(self, due: DoseDue) -> bool:
        """Record the dose ``due`` as missed unless it is already taken or missed; True if it changed.

        Callers raise exactly one :class:`MissedMedication` per dose by acting only on True.
        """
        with self._lock, self._db:
            key = self._key(due)
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO doses (reminder_id, scheduled_at, scheduled_ts, medicine, dose, status)"
                " VALUES (?, ?, ?, ?, ?, 'missed')", key + (due.scheduled.timestamp(), due.medicine, due.dose)).rowcount
            changed = inserted or self._db.execute(
                "UPDATE doses SET status = 'missed' WHERE reminder_id = ? AND scheduled_at = ? AND status = 'pending'",
                key).rowcount
        if changed:
            logger.info("dose of reminder %s due %s recorded missed", due.reminder_id, due.scheduled)
        return bool(changed)

    def doses_for_day(self, day: dt.date, expected: Iterable[DoseDue] = ()) -> list[Dose]:
        """The day's doses by time: those in the log, plus ``expected`` occurrences not logged yet as pending."""
        start = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        end = start + dt.timedelta(days=1)
        doses = {(d.reminder_id, d.scheduled): d for d in self._between(start, end)}
        for due in expected:
            key = (due.reminder_id, due.scheduled.astimezone(self.tz))
            if due.kind == "medication" and start <= due.scheduled < end and key not in doses:
                doses[key] = Dose(due.reminder_id, due.medicine, due.dose, key[1], "pending")
        return sorted(doses.values(), key=lambda d: (d.scheduled, d.medicine, d.reminder_id))

    def pending(self, since: dt.datetime) -> list[Dose]:
        """Doses still pending that came due after ``since`` (to resume coaching after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT %s FROM doses WHERE status = 'pending' AND scheduled_ts > ?"
                                    " ORDER BY scheduled_ts" % _COLUMNS, (since.timestamp(),)).fetchall()
        return [self._dose(row) for row in rows]

    def ratio(self, now: dt.datetime, days: int = 7) -> float | None:
        """Share of doses taken over the last ``days`` days including today (taken / (taken + missed)).

        Pending doses are left out; None when there was no dose to count.
        """
        today = now.astimezone(self.tz).date() - dt.timedelta(days=days - 1)
        start = dt.datetime(today.year, today.month, today.day, tzinfo=self.tz)
        counts = {"taken": 0, "missed": 0, "pending": 0}
        for dose in self._between(start, now + dt.timedelta(microseconds=1)):
            counts[dose.status] += 1
        counted = counts["taken"] + counts["missed"]
        return counts["taken"] / counted if counted else None

    def prune(self, now: dt.datetime) -> int:
        """Delete doses of days before the last ``keep_days`` whole days; returns how many."""
        oldest = now.astimezone(self.tz).date() - dt.timedelta(days=self.keep_days)
        limit = dt.datetime(oldest.year, oldest.month, oldest.day, tzinfo=self.tz).timestamp()
        with self._lock, self._db:
            removed = self._db.execute("DELETE FROM doses WHERE scheduled_ts < ?", (limit,)).rowcount
        if removed:
            logger.info("pruned %d doses older than %d days", removed, self.keep_days)
        return removed

    def _latest(self, now: dt.datetime, medicine: str | None, within: dt.timedelta) -> Dose | None:
        """:meth:`latest_due` without the lock."""
        rows = self._db.execute(
            "SELECT %s FROM doses WHERE scheduled_ts <= ? AND scheduled_ts > ?"
            " ORDER BY scheduled_ts DESC, status = 'taken'" % _COLUMNS,
            (now.timestamp(), (now - within).timestamp())).fetchall()
        for row in rows:
            dose = self._dose(row)
            if not medicine or medicine_matches(dose.medicine, medicine):
                return dose
        return None

    def _between(self, start: dt.datetime, end: dt.datetime) -> list[Dose]:
        """Logged doses with ``start <= scheduled < end``."""
        with self._lock:
            rows = self._db.execute("SELECT %s FROM doses WHERE scheduled_ts >= ? AND scheduled_ts < ?"
                                    " ORDER BY scheduled_ts" % _COLUMNS,
                                    (start.timestamp(), end.timestamp())).fetchall()
        return [self._dose(row) for row in rows]

    def _iso(self, moment: dt.datetime) -> str:
        """The stored form of a moment: ISO 8601 in the log's timezone (one spelling per moment)."""
        return moment.astimezone(self.tz).isoformat()

    def _key(self, due: DoseDue) -> tuple[str, str]:
        return due.reminder_id, self._iso(due.scheduled)

    def _dose(self, row: tuple[Any, ...]) -> Dose:
        reminder_id, scheduled, medicine, dose, status, taken_at, prompts = row
        return Dose(reminder_id, medicine, dose, dt.datetime.fromisoformat(scheduled), status,
                    dt.datetime.fromisoformat(taken_at) if taken_at else None, prompts)
