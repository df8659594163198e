"""The MQTT outbox: messages that must reach the broker, kept in SQLite until the broker acknowledges them.

paho keeps unacknowledged QoS 1 messages only in memory, so an alert published while the broker is
restarting, or just before the assistant is killed, would be lost. The bridge therefore writes
every alert here first (:meth:`MqttOutbox.add`), publishes it, and marks it sent when paho reports
the PUBACK (:meth:`MqttOutbox.mark_sent`); whatever is still pending when the bridge (re)connects
after a restart is published again. Each message has a unique ``key`` (the alert id), so adding the
same alert twice — e.g. when a step is replayed after a crash — queues it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

KEEP_SENT = dt.timedelta(days=30)
"""Sent messages are kept this long (for diagnosis), then pruned when the outbox opens."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    key        TEXT NOT NULL UNIQUE,          -- idempotency key, e.g. the alert id
    topic      TEXT NOT NULL,
    payload    BLOB NOT NULL,
    qos        INTEGER NOT NULL,
    retain     INTEGER NOT NULL,
    created_at TEXT NOT NULL,                 -- ISO 8601, UTC
    sent_at    TEXT                           -- NULL while the broker has not acknowledged it
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages (sent_at, seq);
"""


@dataclass(frozen=True)
class OutboxMessage:
    """One queued message."""

    key: str
    topic: str
    payload: bytes
    qos: int
    retain: bool


class MqttOutbox:
    """SQLite-backed queue of messages waiting for the broker's acknowledgement; thread-safe."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the outbox database at ``path`` and prune old sent messages."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        cutoff = (_utcnow() - KEEP_SENT).isoformat()
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE sent_at IS NOT NULL AND sent_at < ?", (cutoff,))

    def add(self, key: str, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message; False if a message with ``key`` was queued before (sent or not)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO messages (key, topic, payload, qos, retain, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, topic, payload, qos, int(retain), _utcnow().isoformat()))
        return cursor.rowcount == 1

    def pending(self) -> tuple[OutboxMessage, ...]:
        """Messages not yet acknowledged, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, topic, payload, qos, retain FROM messages WHERE sent_at IS NULL ORDER BY seq").fetchall()
        return tuple(OutboxMessage(key, topic, bytes(payload), qos, bool(retain))
                     for key, topic, payload, qos, retain in rows)

    def mark_sent(self, key: str) -> None:
        """The broker acknowledged the message ``key``."""
        with self._lock:
            self._db.execute("UPDATE messages SET sent_at = ? WHERE key = ? AND sent_at IS NULL",
                             (_utcnow().isoformat(), key))

    def is_sent(self, key: str) -> bool:
        """True once the message ``key`` was acknowledged."""
        with self._lock:
            row = self._db.execute("SELECT sent_at FROM messages WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] is not None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _utcnow() -> dt.datetime:
    # Wall-clock time is only used for housekeeping here, never for escalation decisions.
    return dt.datetime.now(dt.UTC)
