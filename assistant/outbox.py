"""The outbox: every order and community alert waits in SQLite until the platform acknowledged it.

:meth:`Outbox.put` stores an :class:`~assistant.events.OrderRequested`, an escalation
:class:`~assistant.incidents.Alert` or a :class:`~assistant.events.HelpRequested` durably (WAL, full
sync) before it returns; the event id is the primary key, so putting the same event twice is a no-op.
A worker thread (:meth:`Outbox.start`) POSTs pending items oldest first: 200/201 marks an item
delivered, another 4xx (except 408/429) marks it failed (kept, logged, not retried), everything else
is retried with exponential back-off and jitter.
An item posted but not yet marked when the process dies is posted again after the restart; the
platform answers the repeated id with 200, so it holds every order exactly once.

:meth:`Outbox.poll_status` reads the platform's order statuses back and returns what changed as
:class:`OrderStatusChanged` events; :meth:`Outbox.summary` answers 「我的饭订上了吗」.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from assistant.errors import PlatformError
from assistant.events import Event, HelpRequested, OrderRequested
from assistant.incidents import Alert
from assistant.platform_client import Outcome, PlatformClient

logger = logging.getLogger(__name__)

FINAL_STATUSES = frozenset({"done", "cancelled"})
"""Platform statuses after which an order no longer changes (no need to poll for it)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,            -- the event id: the platform's idempotency key
    kind TEXT NOT NULL,             -- 'order' or 'alert'
    service TEXT,                   -- orders only
    body TEXT NOT NULL,             -- the JSON posted to the platform
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    stored_at REAL NOT NULL,
    delivered_at REAL,
    platform_status TEXT,
    eta TEXT
);
CREATE INDEX IF NOT EXISTS items_due ON items (state, next_try);
"""
_PATHS = {"order": "/api/v1/orders", "alert": "/api/v1/alerts"}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter between delivery attempts while the platform is unreachable."""

    base: float = 1.0
    """delay after the first failure (seconds)"""
    factor: float = 2.0
    """each further failure multiplies the delay by this"""
    cap: float = 300.0
    """longest delay (seconds)"""

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures: between half and all of the ceiling."""
        ceiling = min(self.cap, self.base * self.factor ** min(max(failures - 1, 0), 64))
        return ceiling * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class OrderStatusChanged(Event):
    """The platform moved one of our orders on (accepted, dispatched, done, cancelled); ``eta`` is HH:MM."""

    kind: ClassVar[str] = "order_status"
    order_id: str
    service: str
    status: str
    eta: str | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """One order or alert as the outbox holds it."""

    id: str
    kind: str
    """'order' or 'alert'"""
    service: str | None
    body: dict[str, Any]
    """what is (or was) posted to the platform"""
    state: str
    """'pending' (not yet acknowledged), 'delivered' or 'failed' (refused by the platform for good)"""
    attempts: int
    last_error: str | None
    platform_status: str | None
    """the platform's status once read back (received, accepted, dispatched, done, cancelled)"""
    eta: str | None


def order_body(event: OrderRequested, home_id: str) -> dict[str, Any]:
    """Wire form of an order (CONTRACTS.md §4 ``POST /api/v1/orders``)."""
    return {"id": event.id, "home_id": home_id, "service": event.service, "details": dict(event.details),
            "utterance": event.utterance, "created_at": event.created_at}


def alert_body(event: HelpRequested | Alert, home_id: str) -> dict[str, Any]:
    """Wire form of an alert for the community (``POST /api/v1/alerts``).

    An escalation :class:`~assistant.incidents.Alert` goes as it is published on MQTT; a bare
    :class:`~assistant.events.HelpRequested` (no escalation engine in between) becomes a community-level alert.
    """
    if isinstance(event, Alert):
        body = {**event.to_json(), "home_id": home_id}
    else:
        kind = "fall" if event.reason == "fall" else ("emergency" if event.urgency == "emergency" else "help")
        body = {"id": event.id, "home_id": home_id, "kind": kind, "level": "community",
                "urgent": event.urgency == "emergency", "reason": event.reason, "contact": event.contact,
                "utterance": event.utterance, "created_at": event.created_at}
    body["created_at"] = _with_offset(str(body["created_at"]))
    return body


def _with_offset(stamp: str) -> str:
    """The platform wants an offset on every time; a naive one is local time, say so."""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp  # the platform will refuse it, and the outbox keeps it as failed with the reason
    return moment.astimezone().isoformat() if moment.tzinfo is None else stamp


class Outbox:
    """Durable queue of orders and alerts for the platform, with its delivery worker."""

    def __init__(self, path: Path, home_id: str, client: PlatformClient | None, *,
                 policy: RetryPolicy = RetryPolicy(), clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None, poll_interval: float = 30.0,
                 on_status: Callable[[OrderStatusChanged], None] | None = None) -> None:
        """Open (or create) the outbox in the SQLite file ``path``.

        ``client`` None means no platform is configured: items wait. ``clock`` returns seconds (Unix
        time); ``poll_interval`` is how often (seconds) the worker reads statuses back and hands each
        change to ``on_status`` (no polling without ``on_status``).
        """
        self.home_id = home_id
        self._client = client
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._poll_interval = poll_interval
        self._on_status = on_status
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a put() that returned survives power loss too
        self._db.executescript(_SCHEMA)
        self._failures = 0  # consecutive transient failures: the platform as a whole is unwell
        self._blocked_until = 0.0
        self._next_poll = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None

    @classmethod
    def in_dir(cls, state_dir: Path, home_id: str, client: PlatformClient | None, **options: Any) -> Outbox:
        """The outbox of the assistant whose state directory is ``state_dir`` (``outbox.db``)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(state_dir / "outbox.db", home_id, client, **options)

    # ---- storing -----------------------------------------------------------------------------

    def put(self, event: OrderRequested | HelpRequested | Alert) -> bool:
        """Store ``event`` durably for delivery; False if an item with its id is already there.

        Usable directly as the escalation engine's ``platform`` sink (it replays an alert with the same id).
        """
        if isinstance(event, OrderRequested):
            kind, service, body = "order", event.service, order_body(event, self.home_id)
        elif isinstance(event, HelpRequested | Alert):
            kind, service, body = "alert", None, alert_body(event, self.home_id)
        else:
            raise TypeError(f"the outbox takes OrderRequested, HelpRequested or Alert, not {type(event).__name__}")
        with self._lock:
            added = self._db.execute(
                "INSERT OR IGNORE INTO items (id, kind, service, body, stored_at) VALUES (?, ?, ?, ?, ?)",
                (event.id, kind, service, json.dumps(body, ensure_ascii=False), self._clock())).rowcount == 1
        if added:
            logger.info("%s %s stored in the outbox", kind, event.id)
            self._wake.set()
        return added

    def items(self, kind: str | None = None) -> list[OutboxEntry]:
        """Every item, oldest first (optionally only ``kind`` 'order' or 'alert')."""
        query = "SELECT * FROM items" + (" WHERE kind = ?" if kind else "") + " ORDER BY rowid"
        return [_entry(row) for row in self._select(query, (kind,) if kind else ())]

    def pending_count(self) -> int:
        """How many items still wait for the platform."""
        return int(self._select("SELECT count(*) FROM items WHERE state = 'pending'", ())[0][0])

    def summary(self, service: str | None = None) -> OutboxEntry | None:
        """The latest order (of ``service``, e.g. 'meal'), or None: answers 「我的饭订上了吗」."""
        query = "SELECT * FROM items WHERE kind = 'order'" + (" AND service = ?" if service else "")
        rows = self._select(query + " ORDER BY rowid DESC LIMIT 1", (service,) if service else ())
        return _entry(rows[0]) if rows else None

    def requeue_failed(self) -> int:
        """Make failed items pending again (e.g. after the home's token was fixed); returns how many."""
        with self._lock:
            count = self._db.execute("UPDATE items SET state = 'pending', next_try = 0 WHERE state = 'failed'").rowcount
        self._wake.set()
        return count

    # ---- delivering --------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """Post every due pending item, oldest first, until one fails transiently; returns how many were delivered.

        After a transient failure nothing is posted before the back-off delay has passed.
        """
        client = self._client
        if client is None:
            return 0
        delivered = 0
        while not self._stopping.is_set() and self._clock() >= self._blocked_until:
            due = self._select("SELECT * FROM items WHERE state = 'pending' AND next_try <= ? ORDER BY rowid LIMIT 50",
                               (self._clock(),))
            if not due:
                break
            for row in due:
                outcome = Outcome.RETRY if self._stopping.is_set() else self._deliver(client, _entry(row))
                if outcome is Outcome.RETRY:
                    return delivered
                delivered += outcome is Outcome.DELIVERED
        return delivered

    def _deliver(self, client: PlatformClient, entry: OutboxEntry) -> Outcome:
        """Post one item and record the outcome; RETRY also blocks further posts for the back-off delay."""
        result = client.post(_PATHS[entry.kind], entry.body)
        now = self._clock()
        if result.outcome is Outcome.DELIVERED:
            self._failures = 0
            self._update(entry.id, "state = 'delivered', delivered_at = ?, attempts = attempts + 1", (now,))
            logger.info("%s %s delivered (%s)", entry.kind, entry.id, result.status_code)
        elif result.outcome is Outcome.FAILED:
            self._update(entry.id, "state = 'failed', attempts = attempts + 1, last_error = ?",
                         (f"{result.status_code}: {result.message}",))
            logger.error("the platform refused %s %s for good (%s: %s); it stays in the outbox as failed",
                         entry.kind, entry.id, result.status_code, result.message)
        else:
            self._failures += 1
            wait = self._policy.delay(max(self._failures, entry.attempts + 1), self._rng)
            if result.retry_after is not None:
                wait = min(max(wait, result.retry_after), self._policy.cap)
            self._blocked_until = now + wait
            self._update(entry.id, "attempts = attempts + 1, next_try = ?, last_error = ?",
                         (now + wait, f"{result.status_code or '-'}: {result.message}"))
            logger.warning("%s %s not delivered (%s); next try in %.1f s", entry.kind, entry.id, result.message, wait)
            return result.outcome
        with self._progress:
            self._progress.notify_all()
        return result.outcome

    def poll_status(self) -> list[OrderStatusChanged]:
        """Read this home's orders from the platform; the status changes since last seen, oldest first.

        Only our own orders count; the first 'received' is recorded silently. Raises
        PlatformUnavailable when the platform cannot be reached (nothing is recorded then).
        """
        active = self._select("SELECT count(*) FROM items WHERE kind = 'order' AND state != 'failed'"
                              " AND (platform_status IS NULL OR platform_status NOT IN ('done', 'cancelled'))", ())
        if self._client is None or not active[0][0]:
            return []
        changes: list[OrderStatusChanged] = []
        for order in reversed(self._client.list_orders(self.home_id)):
            rows = self._select("SELECT service, state, platform_status, eta FROM items"
                                " WHERE id = ? AND kind = 'order'", (str(order.get("id")),))
            status, eta = order.get("status"), order.get("eta")
            if not rows or not isinstance(status, str) or (status, eta) == (rows[0][2], rows[0][3]):
                continue
            service, state = rows[0][0], rows[0][1]
            # the platform holds it, so a post whose answer was lost counts as delivered too
            self._update(str(order["id"]), "platform_status = ?, eta = ?, state = ?",
                         (status, eta, "delivered" if state == "pending" else state))
            if status != "received":
                changes.append(OrderStatusChanged(order_id=str(order["id"]), service=service, status=status, eta=eta))
        return changes

    # ---- the worker thread -------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery worker (a daemon thread); without a platform items just wait."""
        if self._client is None:
            logger.info("no platform configured; %d item(s) wait in the outbox", self.pending_count())
            return
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the worker after the request in flight (at most ``timeout`` seconds)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def close(self) -> None:
        """Stop the worker and close the database and the client."""
        self.stop()
        with self._lock:
            self._db.close()
        if self._client is not None:
            self._client.close()

    def drain(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until nothing is pending; True if the outbox is empty."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.pending_count():
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._progress.wait(min(left, 0.5))
        return True

    def _run(self) -> None:
        logger.debug("outbox worker started")
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
                if self._on_status is not None and self._clock() >= self._next_poll:
                    self._next_poll = self._clock() + self._poll_interval
                    for change in self._poll_quietly():
                        self._on_status(change)
            except Exception:  # outermost loop of the worker: log, keep the items, try again later
                logger.exception("outbox worker round failed")
                self._blocked_until = self._clock() + self._policy.delay(self._failures + 1, self._rng)
            self._wake.wait(self._idle_wait())
        logger.debug("outbox worker stopped")

    def _poll_quietly(self) -> list[OrderStatusChanged]:
        """:meth:`poll_status`, with an unreachable or refusing platform logged as a warning (try next time)."""
        try:
            return self.poll_status()
        except PlatformError as exc:
            logger.warning("order statuses not read back: %s", exc)
            return []

    def _idle_wait(self) -> float:
        """Seconds until the worker has something to do (bounded, so a changed clock is noticed)."""
        now = self._clock()
        rows = self._select("SELECT min(next_try) FROM items WHERE state = 'pending'", ())
        wake_at = [max(self._blocked_until, rows[0][0])] if rows[0][0] is not None else []
        if self._on_status is not None:
            wake_at.append(self._next_poll)
        return min([60.0, *(max(when - now, 0.01) for when in wake_at)])

    # ---- storage helpers ---------------------------------------------------------------------

    def _select(self, query: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(query, params).fetchall()

    def _update(self, item_id: str, assignments: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(f"UPDATE items SET {assignments} WHERE id = ?", (*params, item_id))


def _entry(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(id=row["id"], kind=row["kind"], service=row["service"], body=json.loads(row["body"]),
                       state=row["state"], attempts=row["attempts"], last_error=row["last_error"],
                       platform_status=row["platform_status"], eta=row["eta"])
