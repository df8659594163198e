"""The APScheduler side of reminders: the job function, job ids, triggers and the persistent job store.

Every reminder becomes one job per time of day, id ``reminder:<id>:<HH:MM>``: a CronTrigger on the
reminder's weekdays (between its start and end dates) or a DateTrigger for a one-off, stored by
APScheduler 3's ``SQLAlchemyJobStore`` in the home's ``jobs.db``.

Why a module-level job function and a registry: the SQLAlchemy job store pickles jobs, so the
callable must be importable by reference (``assistant.reminder_jobs:fire_job``); a bound method of a
live service (with its threads, locks and database handles) cannot be stored, and after a restart
it would belong to a service that no longer exists. Each job therefore carries only the home
directory, and :func:`fire_job` dispatches to the :class:`~assistant.scheduler.ReminderService` that
currently runs that home, registered here by its ``start()``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import utc_timestamp_to_datetime
from sqlalchemy import Column, Unicode, create_engine, event, select

from assistant.reminders import Reminder

logger = logging.getLogger(__name__)

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class JobOwner(Protocol):
    """What :func:`fire_job` needs from the service that runs a home."""

    def _job_ran(self, reminder_id: str, at: str) -> None: ...


_LIVE: dict[str, JobOwner] = {}
_LIVE_LOCK = threading.Lock()


def fire_job(home: str, reminder_id: str, at: str, rev: str = "") -> None:
    """The job function of every reminder job: ring ``reminder_id`` at ``at`` via the live owner of ``home``.

    ``rev`` is not used here: it is stored with the job so a restart can tell a stale one (:func:`job_rev`).
    """
    with _LIVE_LOCK:
        owner = _LIVE.get(home)
    if owner is None:
        logger.warning("no reminder service runs %s; job %s skipped", home, job_id(reminder_id, at))
        return
    owner._job_ran(reminder_id, at)


def register(home: str, owner: JobOwner) -> None:
    """Make ``owner`` receive the jobs of ``home`` (its resolved path)."""
    with _LIVE_LOCK:
        _LIVE[home] = owner


def unregister(home: str, owner: JobOwner) -> None:
    """Stop ``owner`` receiving the jobs of ``home`` (no-op if another owner took over)."""
    with _LIVE_LOCK:
        if _LIVE.get(home) is owner:
            del _LIVE[home]


def job_id(reminder_id: str, at: str) -> str:
    """The stable scheduler job id of ``reminder_id`` at time of day ``at``."""
    return "reminder:%s:%s" % (reminder_id, at)


def job_rev(home: str, tz: dt.tzinfo, reminder: Reminder, at: str) -> str:
    """Fingerprint of everything a job's trigger and arguments depend on (a changed one means a stale job)."""
    parts = [home, str(tz), at, reminder.once_at.isoformat() if reminder.once_at else None,
             list(reminder.days), str(reminder.start), str(reminder.end)]
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


def trigger_for(reminder: Reminder, at: str, tz: dt.tzinfo) -> Any:
    """The APScheduler trigger ringing ``reminder`` at time of day ``at`` (local time in ``tz``)."""
    if reminder.once_at is not None:
        return DateTrigger(run_date=reminder.once_at, timezone=tz)
    hour, minute = at.split(":")
    return CronTrigger(
        day_of_week=",".join(_DAY_NAMES[day - 1] for day in reminder.days), hour=int(hour), minute=int(minute),
        start_date=dt.datetime.combine(reminder.start, dt.time(0), tz) if reminder.start else None,
        end_date=dt.datetime.combine(reminder.end, dt.time(23, 59, 59), tz) if reminder.end else None,
        timezone=tz)


class JobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store on ``sqlite:///<path>``, plus a plain ``rev`` column per job.

    Start-up checks every job against its reminder. Reading ids, next run times and revs with one
    query (:meth:`summary`) avoids unpickling every job: unpickling 15,000 CronTriggers alone takes
    about 1.6 s. The rev is written right after APScheduler writes the job; if a crash falls in
    between, the rev is missing or older, and start-up simply replaces the job.
    """

    def __init__(self, path: Path) -> None:
        """Open (or create) the job store in the SQLite file ``path``."""
        engine = create_engine("sqlite:///%s" % path)
        # jobs.db is derived from reminders.db and checked at start, so it may skip fsync; WAL keeps it consistent.
        event.listen(engine, "connect", lambda connection, _: connection.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"))
        super().__init__(engine=engine)
        self.jobs_t.append_column(Column("rev", Unicode(32)))

    def add_job(self, job: Job) -> None:
        """Store a new job and its rev."""
        super().add_job(job)
        self._set_rev(job)

    def update_job(self, job: Job) -> None:
        """Store a changed job (a replaced trigger, or the next run time after a run) and its rev."""
        super().update_job(job)
        self._set_rev(job)

    def rev(self, jid: str) -> str | None:
        """The rev stored with job ``jid``; None if there is no such job."""
        with self.engine.begin() as connection:
            return connection.execute(select(self.jobs_t.c.rev).where(self.jobs_t.c.id == jid)).scalar()

    def summary(self, tz: dt.tzinfo) -> dict[str, tuple[dt.datetime | None, str | None]]:
        """Every job id → (next run time in ``tz`` or None if paused, rev), without unpickling jobs."""
        query = select(self.jobs_t.c.id, self.jobs_t.c.next_run_time, self.jobs_t.c.rev)
        with self.engine.begin() as connection:
            rows = connection.execute(query).all()
        return {jid: (when.astimezone(tz) if (when := utc_timestamp_to_datetime(ts)) else None, rev)
                for jid, ts, rev in rows}

    def _set_rev(self, job: Job) -> None:
        update = self.jobs_t.update().values(rev=job.kwargs.get("rev")).where(self.jobs_t.c.id == job.id)
        with self.engine.begin() as connection:
            connection.execute(update)
