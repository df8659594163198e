"""The reminder service: the one owner of a home's reminders and of the scheduler that rings them.

State lives in the home directory:

- ``reminders.db`` (SQLite) is the truth: the reminders, the last occurrence each job fired, the
  ``last_seen`` heartbeat (written every minute and at shutdown) and the adherence log's ``doses``;
- ``jobs.db`` is APScheduler 3's ``SQLAlchemyJobStore`` (plus a rev column), derived from the
  reminders: one job per reminder and time of day, id ``reminder:<id>:<HH:MM>`` (a CronTrigger on
  the reminder's weekdays, or a DateTrigger for a one-off), reconciled with ``reminders.db`` at every start;
- ``scheduler.lock`` is held with ``flock`` while the service runs, so exactly one process rings.

A reminder due while the device was off rings at start-up if it is less than ``misfire_grace``
seconds late (APScheduler's misfire grace, default 30 minutes); an older medication dose is recorded
missed in the adherence log and reported through ``on_missed``. The service compares the
occurrences since ``last_seen`` (see :func:`~assistant.reminders.due_between`) with what fired and
what the log holds, so nothing is lost even when APScheduler coalesces several missed runs into one.
The APScheduler wiring (job function, triggers, job store) is in :mod:`assistant.reminder_jobs`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import tzlocal
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from assistant.adherence import AdherenceLog, Dose, MissedMedication
from assistant.errors import ReminderError
from assistant.reminder_jobs import JobStore, fire_job, job_id, job_rev, register, trigger_for, unregister
from assistant.reminder_store import ReminderStore, take_lock
from assistant.reminders import DoseDue, Reminder, due_between, last_due

logger = logging.getLogger(__name__)

DEFAULT_GRACE = 1800
"""Default misfire grace (seconds): a reminder up to this late after a restart still rings."""

HEARTBEAT_SECONDS = 60
"""How often ``last_seen`` is written while the service runs (seconds)."""

# last_seen is written this far behind the clock, so an occurrence being rung at that very moment is
# looked at again after a crash; the fired table and the adherence log make that harmless.
_SEEN_MARGIN = dt.timedelta(seconds=HEARTBEAT_SECONDS)

_JobRows = dict[str, tuple[dt.datetime | None, str | None]]  # job id → (next run time, rev)


class ReminderService:
    """Create, change and ring reminders for one home; the single owner of its scheduler.

    ``on_fire`` receives every :class:`DoseDue` (from a scheduler thread); ``on_missed`` every dose
    the service itself records missed (device off beyond the grace). ``now`` is the clock for all
    that the service computes; APScheduler itself runs on real time.
    """

    def __init__(self, home: Path, on_fire: Callable[[DoseDue], None], *,
                 on_missed: Callable[[MissedMedication], None] | None = None,
                 adherence: AdherenceLog | None = None, now: Callable[[], dt.datetime] | None = None,
                 tz: dt.tzinfo | None = None, misfire_grace: int = DEFAULT_GRACE) -> None:
        """Prepare the service for the state directory ``home``; nothing is opened before :meth:`start`.

        ``misfire_grace`` (seconds, >= 1) is how late a reminder may still ring after the device was
        off. ``adherence`` defaults to the log in ``home/reminders.db``.
        """
        if misfire_grace < 1:
            raise ValueError("misfire_grace must be at least 1 second, not %r" % misfire_grace)
        self.home = Path(home).expanduser().resolve()
        self.tz = tz or tzlocal.get_localzone()
        self._now = now or (lambda: dt.datetime.now(self.tz))
        self._on_fire, self._on_missed = on_fire, on_missed
        self._adherence = adherence
        self._owns_adherence = adherence is None
        self.grace = int(misfire_grace)
        self._key = str(self.home)
        self._lock = threading.RLock()
        self._reminders: dict[str, Reminder] = {}
        self._scheduler: BackgroundScheduler | None = None
        self._db: ReminderStore | None = None
        self._lock_file: IO[str] | None = None
        self._job_store: JobStore | None = None

    @property
    def adherence(self) -> AdherenceLog:
        """The adherence log the service records doses in (available after :meth:`start`)."""
        if self._adherence is None:
            raise RuntimeError("the reminder service has not been started")
        return self._adherence

    def start(self) -> None:
        """Take the home's scheduler lock, load reminders, reconcile jobs, catch up, start ringing.

        Raises UsageError if another process (or service) already runs this home's reminders.
        """
        with self._lock:
            if self._scheduler is not None:
                raise RuntimeError("the reminder service is already running")
            self.home.mkdir(parents=True, exist_ok=True)
            self._lock_file = take_lock(self.home / "scheduler.lock")
            try:
                self._start()
            except BaseException:
                if self._scheduler is not None:
                    self._scheduler.shutdown(wait=False)
                    self._scheduler = None
                self._close()
                raise

    def shutdown(self) -> None:
        """Stop ringing (waiting for callbacks in progress), write ``last_seen``, release the lock."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.shutdown(wait=True)  # outside the lock: running callbacks take it
        with self._lock:
            self._heartbeat()
            self._close()
        logger.info("reminder service for %s stopped", self.home)

    def add(self, reminder: Reminder) -> Reminder:
        """Store and schedule a new reminder; returns it as stored. ReminderError if it cannot ring."""
        return self.add_many([reminder])[0]

    def add_many(self, reminders: Iterable[Reminder]) -> list[Reminder]:
        """Store (in one transaction) and schedule several new reminders; all or nothing on a bad one."""
        with self._lock:
            db, now = self._running(), self._now()
            stored: dict[str, Reminder] = {}
            for reminder in reminders:
                reminder.check_new(now)
                if reminder.id in self._reminders or reminder.id in stored:
                    raise ReminderError("there is already a reminder with id %s" % reminder.id)
                stored[reminder.id] = replace(reminder, since=now.replace(microsecond=0))
            db.put(list(stored.values()))
            self._reminders.update(stored)
            bulk = len(stored) > 1
            if bulk:  # the scheduler thread would otherwise wake up (and contend) after every job
                self._scheduler.pause()
            try:
                for reminder in stored.values():
                    self._schedule(None, reminder, now)
            finally:
                if bulk:
                    self._scheduler.resume()
        logger.info("%d reminder(s) added", len(stored))
        return list(stored.values())

    def update(self, reminder_id: str, **changes: Any) -> Reminder:
        """Change fields of a reminder (Python or JSON values: ``times=["08:00"]``, ``end="2026-12-01"``).

        Changing when it rings restarts its schedule from now. ReminderError if the result is invalid
        (and nothing changes) or there is no such reminder.
        """
        with self._lock:
            db, now = self._running(), self._now()
            old = self._find(reminder_id)
            new = old.changed(changes, tz=self.tz)
            timing = ("times", "days", "start", "end", "once_at", "paused")
            if any(getattr(new, name) != getattr(old, name) for name in timing):
                if not new.paused:
                    new.check_new(now)
                new = replace(new, since=now.replace(microsecond=0))
            db.put([new])
            self._reminders[new.id] = new
            self._schedule(old, new, now)
        return new

    def pause(self, reminder_id: str) -> Reminder:
        """Stop a reminder ringing (it is kept, and never counted missed while paused)."""
        return self.update(reminder_id, paused=True)

    def resume(self, reminder_id: str) -> Reminder:
        """Let a paused reminder ring again from now on."""
        return self.update(reminder_id, paused=False)

    def delete(self, reminder_id: str) -> Reminder:
        """Remove a reminder and its jobs (its dose history stays in the adherence log); returns it."""
        with self._lock:
            db = self._running()
            old = self._find(reminder_id)
            db.remove(reminder_id)
            del self._reminders[reminder_id]
            self._schedule(old, None, self._now())
        return old

    def get(self, reminder_id: str) -> Reminder | None:
        """The reminder with this id, or None."""
        with self._lock:
            return self._reminders.get(reminder_id)

    def list(self) -> list[Reminder]:
        """All reminders (including paused and finished ones), by first time of day."""
        with self._lock:
            return sorted(self._reminders.values(), key=lambda r: (r.once_at is not None, r.times, r.id))

    def due_between(self, start: dt.datetime, end: dt.datetime) -> list[DoseDue]:
        """Occurrences of the current reminders with ``start < scheduled <= end``."""
        return due_between(self.list(), start, end, self.tz)

    def due_on(self, day: dt.date) -> list[DoseDue]:
        """Every occurrence on ``day`` (local)."""
        start = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return self.due_between(start - dt.timedelta(microseconds=1), start + dt.timedelta(days=1, microseconds=-1))

    def doses_for_day(self, day: dt.date) -> list[Dose]:
        """The day's medication doses: logged ones plus those still to come (pending)."""
        return self.adherence.doses_for_day(day, self.due_on(day))

    def jobs(self) -> dict[str, dt.datetime | None]:
        """Scheduled reminder jobs: job id → next run time (None = paused job)."""
        with self._lock:
            self._running()
            return {jid: when for jid, (when, _rev) in self._job_store.summary(self.tz).items()}

    def fire(self, due: DoseDue) -> None:
        """Ring one occurrence: log it (once — a repeat of the same occurrence is ignored), then ``on_fire``."""
        with self._lock:
            db = self._db  # not _running(): an occurrence ringing while shutdown waits for it still counts
            if db is None:
                raise RuntimeError("the reminder service is not running; call start() first")
            if not db.mark_fired(job_id(due.reminder_id, due.at), due.scheduled):
                logger.info("reminder %s due %s already rang", due.reminder_id, due.scheduled)
                return
            if due.kind == "medication":
                self.adherence.record_due(due)
        logger.info("reminder %s rings (due %s)", due.reminder_id, due.scheduled)
        self._on_fire(due)

    def _start(self) -> None:
        """:meth:`start` once the lock file is held."""
        now = self._now()
        self._db = db = ReminderStore(self.home / "reminders.db")
        if self._adherence is None:
            self._adherence = AdherenceLog(self.home / "reminders.db", self.tz)
        self._adherence.prune(now)
        self._reminders = {r.id: r for r in db.load(self.tz)}
        register(self._key, self)
        self._job_store = JobStore(self.home / "jobs.db")
        scheduler = BackgroundScheduler(
            jobstores={"default": self._job_store, "volatile": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(10)},
            job_defaults={"coalesce": True, "misfire_grace_time": self.grace, "max_instances": 1},
            timezone=self.tz)
        scheduler.add_listener(self._job_missed, EVENT_JOB_MISSED)
        scheduler.start(paused=True)  # jobs are loaded but nothing rings until reconciled and caught up
        self._scheduler = scheduler
        jobs = self._job_store.summary(self.tz)
        self._reconcile(jobs, now)
        late = self._catch_up(jobs, db.last_seen(), now)
        db.set_last_seen(now - _SEEN_MARGIN)
        scheduler.add_job(self._heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat",
                          jobstore="volatile", replace_existing=True)
        for due in late:  # rings now, in the scheduler's threads like any other fire
            scheduler.add_job(self.fire, args=[due], jobstore="volatile", misfire_grace_time=None)
        scheduler.resume()
        logger.info("reminder service for %s started: %d reminders, %d jobs",
                    self.home, len(self._reminders), len(jobs))

    def _reconcile(self, jobs: _JobRows, now: dt.datetime) -> None:
        """Make the job store match the reminders: add missing or stale jobs, remove orphans (in place)."""
        wanted: dict[str, tuple[Reminder, str, str]] = {}
        keep: set[str] = set()
        for reminder in self._reminders.values():
            if reminder.paused:
                continue
            for at in reminder.times:
                if reminder.finished(now):  # its last job may still be waiting to ring within the grace
                    keep.add(job_id(reminder.id, at))
                else:
                    wanted[job_id(reminder.id, at)] = (reminder, at, job_rev(self._key, self.tz, reminder, at))
        for stale in [jid for jid in jobs if jid not in wanted and jid not in keep]:
            self._scheduler.remove_job(stale, jobstore="default")
            del jobs[stale]
        for jid, (reminder, at, rev) in wanted.items():
            if jid not in jobs or jobs[jid][1] != rev:
                jobs[jid] = (self._add_job(reminder, at).next_run_time, rev)

    def _catch_up(self, jobs: _JobRows, last_seen: dt.datetime | None, now: dt.datetime) -> list[DoseDue]:
        """Occurrences since ``last_seen`` that never rang: record missed beyond the grace, else return to ring."""
        if last_seen is None:
            return []
        db, grace, late = self._running(), dt.timedelta(seconds=self.grace), []
        horizon = max(last_seen, now - dt.timedelta(days=self.adherence.keep_days))
        for due in due_between(self._reminders.values(), horizon, now, self.tz):
            jid = job_id(due.reminder_id, due.at)
            fired = db.last_fired(jid)
            if fired is not None and fired >= due.scheduled.timestamp():
                continue
            if due.kind == "medication" and self.adherence.get(due.reminder_id, due.scheduled) is not None:
                continue
            if now - due.scheduled > grace:
                self._missed(due, now)
            elif jid not in jobs or jobs[jid][0] is None or jobs[jid][0] > due.scheduled:
                late.append(due)  # within the grace, but APScheduler no longer holds this run
        return late

    def _schedule(self, old: Reminder | None, new: Reminder | None, now: dt.datetime) -> None:
        """Bring the jobs of one reminder from ``old`` to ``new`` (None = absent)."""
        wanted = {}
        if new is not None and not new.paused and not new.finished(now):
            wanted = {job_id(new.id, at): (at, job_rev(self._key, self.tz, new, at)) for at in new.times}
        for at in old.times if old is not None else ():
            if job_id(old.id, at) not in wanted:
                try:
                    self._scheduler.remove_job(job_id(old.id, at), jobstore="default")
                except JobLookupError:
                    pass  # it had already rung for the last time
        for jid, (at, rev) in wanted.items():
            if old is None or self._job_store.rev(jid) != rev:  # an unchanged job keeps its pending run
                self._add_job(new, at)

    def _add_job(self, reminder: Reminder, at: str) -> Job:
        """Add (or replace) the job ringing ``reminder`` at ``at``."""
        return self._scheduler.add_job(
            fire_job, trigger_for(reminder, at, self.tz), id=job_id(reminder.id, at),
            name="reminder %s %s" % (reminder.id, at), jobstore="default", replace_existing=True,
            kwargs={"home": self._key, "reminder_id": reminder.id, "at": at,
                    "rev": job_rev(self._key, self.tz, reminder, at)},
            misfire_grace_time=self.grace, coalesce=True, max_instances=1)

    def _job_ran(self, reminder_id: str, at: str) -> None:
        """A reminder job fired (scheduler thread): ring the occurrence it stands for."""
        with self._lock:
            reminder = self._reminders.get(reminder_id)
        if reminder is None or reminder.paused:
            logger.info("job %s fired for a deleted or paused reminder; ignored", job_id(reminder_id, at))
            return
        scheduled = last_due(reminder, at, self._now())
        if scheduled is None:
            logger.warning("job %s fired but no occurrence is due; ignored", job_id(reminder_id, at))
            return
        self.fire(reminder.due(scheduled))

    def _job_missed(self, ev: JobExecutionEvent) -> None:
        """APScheduler skipped a run beyond the grace (e.g. the machine slept): record the dose missed."""
        parts = ev.job_id.split(":")
        with self._lock:
            reminder = self._reminders.get(parts[1]) if len(parts) == 3 and parts[0] == "reminder" else None
        if reminder is not None and not reminder.paused:
            self._missed(reminder.due(ev.scheduled_run_time.astimezone(self.tz)), self._now())

    def _missed(self, due: DoseDue, now: dt.datetime) -> None:
        """Record an occurrence that never rang; a newly missed dose goes to ``on_missed``."""
        if due.kind != "medication":
            logger.info("reminder %s due %s was missed while the assistant was off", due.reminder_id, due.scheduled)
        elif self.adherence.mark_missed(due) and self._on_missed is not None:
            self._on_missed(MissedMedication.of(due, now))

    def _heartbeat(self) -> None:
        """Write ``last_seen``: occurrences after it were not seen by a running service."""
        if self._db is not None:
            self._db.set_last_seen(self._now() - _SEEN_MARGIN)

    def _running(self) -> ReminderStore:
        if self._db is None or self._scheduler is None:
            raise RuntimeError("the reminder service is not running; call start() first")
        return self._db

    def _find(self, reminder_id: str) -> Reminder:
        reminder = self._reminders.get(reminder_id)
        if reminder is None:
            raise ReminderError("there is no reminder with id %r" % (reminder_id,))
        return reminder

    def _close(self) -> None:
        """Forget the registry entry, close the databases and release the lock file."""
        unregister(self._key, self)
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._owns_adherence and self._adherence is not None:
            self._adherence.close()
            self._adherence = None
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file releases the flock
            self._lock_file = None

