"""``reminders.db`` and ``scheduler.lock``: the reminder service's own storage in the home directory.

:class:`ReminderStore` keeps the reminders (as their JSON wire form), the last occurrence each
scheduler job rang for (so an occurrence never rings twice, even when a restart races a firing) and
the ``last_seen`` heartbeat. :func:`take_lock` makes sure a single process owns a home's reminders.
The adherence log shares the same SQLite file (its own table, see :mod:`assistant.adherence`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import IO

from assistant.errors import UsageError
from assistant.reminders import Reminder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fired (job_id TEXT PRIMARY KEY, scheduled_ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class ReminderStore:
    """The reminders, fired occurrences and heartbeat in one SQLite file; safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the store in the SQLite file ``path``."""
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def load(self, tz: dt.tzinfo) -> list[Reminder]:
        """Every stored reminder (naive times read in ``tz``)."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM reminders").fetchall()
        return [Reminder.from_json(json.loads(body), tz=tz) for (body,) in rows]

    def put(self, reminders: list[Reminder]) -> None:
        """Insert or replace ``reminders`` in one transaction."""
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO reminders (id, body) VALUES (?, ?)",
                                 [(r.id, json.dumps(r.to_json(), ensure_ascii=False)) for r in reminders])

    def remove(self, reminder_id: str) -> None:
        """Delete one reminder (no error if absent)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM reminders WHERE id = ?", (reminder_id,))

    def mark_fired(self, jid: str, scheduled: dt.datetime) -> bool:
        """Remember that ``jid`` rang for ``scheduled``; False if it already rang for it (or later)."""
        with self._lock, self._db:
            return self._db.execute(
                "INSERT INTO fired (job_id, scheduled_ts) VALUES (?, ?) ON CONFLICT (job_id) DO UPDATE"
                " SET scheduled_ts = excluded.scheduled_ts WHERE excluded.scheduled_ts > fired.scheduled_ts",
                (jid, scheduled.timestamp())).rowcount == 1

    def last_fired(self, jid: str) -> float | None:
        """The latest occurrence (Unix seconds) job ``jid`` rang for, or None."""
        with self._lock:
            row = self._db.execute("SELECT scheduled_ts FROM fired WHERE job_id = ?", (jid,)).fetchone()
        return row[0] if row else None

    def last_seen(self) -> dt.datetime | None:
        """When a running service last wrote its heartbeat, or None on a fresh home."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'last_seen'").fetchone()
        return dt.datetime.fromisoformat(row[0]) if row else None

    def set_last_seen(self, now: dt.datetime) -> None:
        """Write the heartbeat."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seen', ?)", (now.isoformat(),))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def take_lock(path: Path) -> IO[str]:
    """Hold an exclusive ``flock`` on ``path`` for as long as the returned file stays open."""
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError("another yinling process already runs the reminders of %s (%s is locked); stop it first"
                         % (path.parent, path)) from None
    handle.truncate(0)
    handle.write("%d\n" % os.getpid())
    handle.flush()
    return handle
