"""Storage of the reference community platform: homes, bearer tokens, orders and alerts.

SQLAlchemy Core over SQLite by default (``platform.db`` in the platform's state directory) or any
database URL SQLAlchemy knows (``postgresql+psycopg://…`` when a community outgrows one box).
Tokens are kept only as SHA-256 hashes: they are 256-bit random strings, so a fast hash suffices.
Writes go through one lock: a single server process owns a database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from assistant.errors import ConflictError, NotFoundError

ORDER_STATUSES: tuple[str, ...] = ("received", "accepted", "dispatched", "done", "cancelled")
"""Every status an order can have (CONTRACTS.md §4), in the order an order normally moves through them."""

FINAL_STATUSES: frozenset[str] = frozenset({"done", "cancelled"})
"""Statuses an order never leaves."""

_metadata = sa.MetaData()

_tokens = sa.Table(
    "tokens", _metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(8), nullable=False),  # "home" or "staff"
    sa.Column("home_id", sa.String(64), nullable=True),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)
_homes = sa.Table(
    "homes", _metadata,
    sa.Column("home_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)
_orders = sa.Table(
    "orders", _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("home_id", sa.String(64), nullable=False, index=True),
    sa.Column("service", sa.String(32), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("utterance", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # canonical body: a repeat must match it exactly
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("eta", sa.String(5), nullable=True),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
_alerts = sa.Table(
    "alerts", _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("home_id", sa.String(64), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),  # kind, level, reason, … as JSON
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # "received" or "acknowledged"
    sa.Column("acked_by", sa.Text, nullable=True),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
_catalogue = sa.Table(
    "catalogue", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1: one catalogue per platform
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)


@dataclass(frozen=True)
class Principal:
    """Who a bearer token belongs to: community staff (``home_id`` None) or one home."""

    role: str
    home_id: str | None = None

    @property
    def is_staff(self) -> bool:
        """True for a staff token (sees every home, changes statuses)."""
        return self.role == "staff"


@dataclass(frozen=True)
class OrderRecord:
    """An order as the platform holds it."""

    id: str
    home_id: str
    service: str
    details: dict[str, Any]
    utterance: str
    created_at: str
    status: str
    eta: str | None
    received_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        """Wire form (CONTRACTS.md §4)."""
        return asdict(self)


@dataclass(frozen=True)
class AlertRecord:
    """An alert (an escalation that reached the community) as the platform holds it."""

    id: str
    home_id: str
    body: dict[str, Any]
    created_at: str
    status: str
    acked_by: str | None
    received_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        """Wire form: the alert's own fields (kind, level, reason, …) plus the platform's."""
        return {**self.body, "id": self.id, "home_id": self.home_id, "created_at": self.created_at,
                "status": self.status, "acked_by": self.acked_by, "received_at": self.received_at,
                "updated_at": self.updated_at}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def canonical(value: Any) -> str:
    """Canonical JSON text of ``value``: what two requests must share to count as the same body."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class PlatformStore:
    """All the platform's state in one database; safe to use from several threads of one process."""

    def __init__(self, url: str) -> None:
        """Open (or create) the database at the SQLAlchemy URL ``url``."""
        self.url = url
        if url.startswith("sqlite"):
            self._engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        else:
            self._engine = sa.create_engine(url, pool_pre_ping=True)
        _metadata.create_all(self._engine)
        self._lock = threading.Lock()

    @classmethod
    def in_dir(cls, state_dir: Path, url: str | None = None) -> PlatformStore:
        """The store for ``state_dir``: ``url`` if given, else SQLite ``platform.db`` in that directory."""
        if url:
            return cls(url)
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls("sqlite:///" + str((state_dir / "platform.db").resolve()))

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    # ---- homes and tokens --------------------------------------------------------------------

    def add_home(self, home_id: str) -> str:
        """Register ``home_id`` (if new) and issue a new bearer token for it; earlier tokens stay valid."""
        token = secrets.token_urlsafe(32)
        with self._lock, self._engine.begin() as db:
            if db.execute(sa.select(_homes.c.home_id).where(_homes.c.home_id == home_id)).first() is None:
                db.execute(_homes.insert().values(home_id=home_id, created_at=_now()))
            db.execute(_tokens.insert().values(token_hash=_hash(token), role="home", home_id=home_id,
                                               label=home_id, created_at=_now()))
        return token

    def add_staff(self, label: str = "staff") -> str:
        """Issue a new staff token (sees every home, changes order statuses)."""
        token = secrets.token_urlsafe(32)
        with self._lock, self._engine.begin() as db:
            db.execute(_tokens.insert().values(token_hash=_hash(token), role="staff", home_id=None,
                                               label=label[:64], created_at=_now()))
        return token

    def has_staff(self) -> bool:
        """True once a staff token exists."""
        with self._engine.connect() as db:
            return db.execute(sa.select(_tokens.c.role).where(_tokens.c.role == "staff")).first() is not None

    def homes(self) -> list[str]:
        """Every registered home id, sorted."""
        with self._engine.connect() as db:
            return [row[0] for row in db.execute(sa.select(_homes.c.home_id).order_by(_homes.c.home_id))]

    def authenticate(self, token: str) -> Principal | None:
        """Who ``token`` belongs to, or None for an unknown token."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(_tokens.c.role, _tokens.c.home_id)
                             .where(_tokens.c.token_hash == _hash(token))).first()
        return Principal(row.role, row.home_id) if row else None

    # ---- orders ------------------------------------------------------------------------------

    def create_order(self, order_id: str, home_id: str, service: str, details: dict[str, Any],
                     utterance: str, created_at: str) -> tuple[OrderRecord, bool]:
        """Store a new order; True if created, False if this exact order was already there.

        Raises ConflictError when ``order_id`` is taken by a different order.
        """
        payload = canonical({"id": order_id, "home_id": home_id, "service": service, "details": details,
                             "utterance": utterance, "created_at": created_at})
        now = _now()
        with self._lock:
            try:
                with self._engine.begin() as db:
                    db.execute(_orders.insert().values(
                        id=order_id, home_id=home_id, service=service, details=canonical(details),
                        utterance=utterance, created_at=created_at, payload=payload, status="received",
                        eta=None, received_at=now, updated_at=now))
                created = True
            except IntegrityError:
                created = False
            with self._engine.connect() as db:
                row = db.execute(sa.select(_orders).where(_orders.c.id == order_id)).one()
        if not created and row.payload != payload:
            raise ConflictError(f"order id {order_id} is already used by a different order.")
        return _order(row), created

    def get_order(self, order_id: str) -> OrderRecord:
        """The order ``order_id``; NotFoundError if there is none."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(_orders).where(_orders.c.id == order_id)).first()
        if row is None:
            raise NotFoundError(f"there is no order {order_id}.")
        return _order(row)

    def list_orders(self, home_id: str | None = None, service: str | None = None, status: str | None = None,
                    limit: int = 100) -> list[OrderRecord]:
        """The newest ``limit`` orders, newest first, optionally of one home, service and status."""
        query = sa.select(_orders).order_by(_orders.c.seq.desc()).limit(limit)
        for column, value in ((_orders.c.home_id, home_id), (_orders.c.service, service),
                              (_orders.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        with self._engine.connect() as db:
            return [_order(row) for row in db.execute(query)]

    def set_status(self, order_id: str, status: str, eta: str | None = None) -> OrderRecord:
        """Move an order forward to ``status`` (with an optional ``eta`` "HH:MM").

        Setting the current status again only updates the eta. Raises NotFoundError for an unknown
        order and ConflictError for a step backwards or out of done/cancelled.
        """
        if status not in ORDER_STATUSES:
            raise ConflictError(f"unknown status {status!r}; allowed: {', '.join(ORDER_STATUSES)}.")
        with self._lock, self._engine.begin() as db:
            row = db.execute(sa.select(_orders).where(_orders.c.id == order_id)).first()
            if row is None:
                raise NotFoundError(f"there is no order {order_id}.")
            if status != row.status:
                if row.status in FINAL_STATUSES:
                    raise ConflictError(f"order {order_id} is already {row.status}; it cannot become {status}.")
                if status != "cancelled" and ORDER_STATUSES.index(status) < ORDER_STATUSES.index(row.status):
                    raise ConflictError(f"order {order_id} is already {row.status}; it cannot go back to {status}.")
            values: dict[str, Any] = {"status": status, "updated_at": _now()}
            if eta is not None:
                values["eta"] = eta
            db.execute(_orders.update().where(_orders.c.id == order_id).values(**values))
            row = db.execute(sa.select(_orders).where(_orders.c.id == order_id)).one()
        return _order(row)

    # ---- alerts ------------------------------------------------------------------------------

    def create_alert(self, alert_id: str, home_id: str, body: dict[str, Any],
                     created_at: str) -> tuple[AlertRecord, bool]:
        """Store a new alert (``body``: kind, level, reason, …); same id rule as :meth:`create_order`."""
        payload = canonical({"id": alert_id, "home_id": home_id, "created_at": created_at, **body})
        now = _now()
        with self._lock:
            try:
                with self._engine.begin() as db:
                    db.execute(_alerts.insert().values(
                        id=alert_id, home_id=home_id, body=canonical(body), created_at=created_at,
                        payload=payload, status="received", acked_by=None, received_at=now, updated_at=now))
                created = True
            except IntegrityError:
                created = False
            with self._engine.connect() as db:
                row = db.execute(sa.select(_alerts).where(_alerts.c.id == alert_id)).one()
        if not created and row.payload != payload:
            raise ConflictError(f"alert id {alert_id} is already used by a different alert.")
        return _alert(row), created

    def get_alert(self, alert_id: str) -> AlertRecord:
        """The alert ``alert_id``; NotFoundError if there is none."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(_alerts).where(_alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFoundError(f"there is no alert {alert_id}.")
        return _alert(row)

    def list_alerts(self, home_id: str | None = None, limit: int = 100) -> list[AlertRecord]:
        """The newest ``limit`` alerts, newest first, optionally of one home."""
        query = sa.select(_alerts).order_by(_alerts.c.seq.desc()).limit(limit)
        if home_id is not None:
            query = query.where(_alerts.c.home_id == home_id)
        with self._engine.connect() as db:
            return [_alert(row) for row in db.execute(query)]

    def ack_alert(self, alert_id: str, by: str) -> AlertRecord:
        """Mark an alert acknowledged by ``by`` (a later ack keeps the first acknowledger)."""
        with self._lock, self._engine.begin() as db:
            row = db.execute(sa.select(_alerts).where(_alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFoundError(f"there is no alert {alert_id}.")
            if row.status != "acknowledged":
                db.execute(_alerts.update().where(_alerts.c.id == alert_id)
                           .values(status="acknowledged", acked_by=by, updated_at=_now()))
            row = db.execute(sa.select(_alerts).where(_alerts.c.id == alert_id)).one()
        return _alert(row)

    # ---- service catalogue -----------------------------------------------------------------

    def set_catalogue(self, body: dict[str, Any]) -> None:
        """Replace the published service catalogue (last write wins)."""
        values = {"body": canonical(body), "updated_at": _now()}
        with self._lock, self._engine.begin() as db:
            if db.execute(_catalogue.update().where(_catalogue.c.id == 1).values(**values)).rowcount == 0:
                db.execute(_catalogue.insert().values(id=1, **values))

    def catalogue(self) -> dict[str, Any]:
        """The published service catalogue; NotFoundError before staff published one."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(_catalogue.c.body).where(_catalogue.c.id == 1)).first()
        if row is None:
            raise NotFoundError("no service catalogue has been published yet; staff publish one with "
                                "PUT /api/v1/catalogue.")
        return json.loads(row.body)

    def counts(self) -> dict[str, int]:
        """Numbers of homes, orders and alerts (for logs and benchmarks)."""
        with self._engine.connect() as db:
            return {name: db.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                    for name, table in (("homes", _homes), ("orders", _orders), ("alerts", _alerts))}


def _order(row: Any) -> OrderRecord:
    return OrderRecord(id=row.id, home_id=row.home_id, service=row.service, details=json.loads(row.details),
                       utterance=row.utterance, created_at=row.created_at, status=row.status, eta=row.eta,
                       received_at=row.received_at, updated_at=row.updated_at)


def _alert(row: Any) -> AlertRecord:
    return AlertRecord(id=row.id, home_id=row.home_id, body=json.loads(row.body), created_at=row.created_at,
                       status=row.status, acked_by=row.acked_by, received_at=row.received_at,
                       updated_at=row.updated_at)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL and full sync: an order the platform answered 201 for survives a crash of the server."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()
