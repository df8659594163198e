"""Pairing family phones with the home: one-time 6-digit codes and per-device bearer tokens.

Everything lives in the SQLite file ``family.db`` in the state directory:

- ``codes``: a code is 6 digits, valid :data:`CODE_TTL` seconds and single use (CONTRACTS.md §7);
- ``devices``: one row per paired phone; only the SHA-256 of its token is stored, so a stolen
  database does not reveal a usable token; a revoked device keeps its row (and gets 403, not 401).

Wrong codes are rate-limited per client (:data:`MAX_WRONG` within :data:`WRONG_WINDOW` seconds), so the
10⁶ codes cannot be tried out within a code's lifetime. The clock is injected for tests.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import InputError

CODE_TTL = 600
"""How long a pairing code is valid (seconds)."""

MAX_WRONG = 5
"""Wrong codes a client may enter within :data:`WRONG_WINDOW` before it is refused (429)."""

WRONG_WINDOW = 60.0
"""The rate-limit window for wrong codes (seconds)."""

DB_NAME = "family.db"
"""The pairing database's file name in the state directory."""

MAX_NAME = 40
"""Longest device name accepted (characters)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS codes (
    code       TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,               -- Unix seconds
    used_at    REAL                         -- NULL while unused
);
CREATE TABLE IF NOT EXISTS devices (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,        -- SHA-256 hex of the bearer token
    paired_at  REAL NOT NULL,
    revoked_at REAL                         -- NULL while the token is valid
);
"""


class PairingError(InputError):
    """A pairing code is wrong, already used or expired; no token was issued."""


class TooManyAttempts(PairingError):
    """This client entered too many wrong codes recently; it must wait before trying again."""


@dataclass(frozen=True)
class Device:
    """A paired family phone."""

    id: str
    name: str
    """what the family called it when pairing (儿子, 女儿的手机)"""
    paired_at: float
    """Unix seconds"""
    revoked: bool


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Pairing:
    """Pairing codes and device tokens in ``family.db``; thread-safe."""

    def __init__(self, path: Path, *, now: Callable[[], float] = time.time) -> None:
        """Open (or create) the database at ``path``; ``now`` returns Unix seconds."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._now = now
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        self._wrong: dict[str, deque[float]] = {}

    @classmethod
    def in_dir(cls, state_dir: Path, *, now: Callable[[], float] = time.time) -> Pairing:
        """The pairing database of the home whose state directory is ``state_dir``."""
        return cls(Path(state_dir) / DB_NAME, now=now)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def new_code(self) -> str:
        """A fresh 6-digit code, valid :data:`CODE_TTL` seconds; expired codes are forgotten."""
        with self._lock:
            now = self._now()
            self._db.execute("DELETE FROM codes WHERE expires_at <= ?", (now,))
            while True:
                code = f"{secrets.randbelow(1_000_000):06d}"
                cursor = self._db.execute("INSERT OR IGNORE INTO codes VALUES (?, ?, NULL)", (code, now + CODE_TTL))
                if cursor.rowcount == 1:
                    return code

    def pair(self, code: str, name: str, client: str = "") -> tuple[Device, str]:
        """Use ``code`` to pair the device ``name``; returns it and its token (shown only this once).

        TooManyAttempts if ``client`` entered :data:`MAX_WRONG` wrong codes within the window,
        PairingError if the code is wrong, used or expired (nothing is stored then).
        """
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            raise PairingError(f"the device name must be 1 to {MAX_NAME} characters")
        with self._lock:
            now = self._now()
            wrong = self._wrong.setdefault(client, deque())
            while wrong and wrong[0] <= now - WRONG_WINDOW:
                wrong.popleft()
            if len(wrong) >= MAX_WRONG:
                raise TooManyAttempts("too many wrong pairing codes; wait a minute and ask for a new code")
            row = self._db.execute("SELECT expires_at, used_at FROM codes WHERE code = ?", (code,)).fetchone()
            if row is None or row[1] is not None or row[0] <= now:
                wrong.append(now)
                raise PairingError("the pairing code is wrong, already used or expired; ask the speaker for a new one")
            token = secrets.token_urlsafe(32)
            device = Device(secrets.token_hex(8), name, now, False)
            self._db.execute("BEGIN")
            self._db.execute("UPDATE codes SET used_at = ? WHERE code = ?", (now, code))
            self._db.execute("INSERT INTO devices VALUES (?, ?, ?, ?, NULL)", (device.id, name, _hash(token), now))
            self._db.execute("COMMIT")
            wrong.clear()
            return device, token

    def authenticate(self, token: str) -> Device | None:
        """The device holding ``token`` (check ``revoked``), or None for an unknown token."""
        with self._lock:
            row = self._db.execute("SELECT id, name, paired_at, revoked_at FROM devices WHERE token_hash = ?",
                                   (_hash(token),)).fetchone()
        return None if row is None else Device(row[0], row[1], row[2], row[3] is not None)

    def revoke(self, device_id: str) -> bool:
        """Revoke a device's token; False if there is no such (unrevoked) device."""
        with self._lock:
            cursor = self._db.execute("UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                      (self._now(), device_id))
            return cursor.rowcount == 1

    def devices(self) -> list[Device]:
        """Every paired device, oldest first (revoked ones included)."""
        with self._lock:
            rows = self._db.execute("SELECT id, name, paired_at, revoked_at FROM devices ORDER BY paired_at").fetchall()
        return [Device(r[0], r[1], r[2], r[3] is not None) for r in rows]


def new_code(state_dir: Path) -> str:
    """A fresh pairing code for the home at ``state_dir`` (``yinling family code --home DIR``)."""
    pairing = Pairing.in_dir(state_dir)
    try:
        return pairing.new_code()
    finally:
        pairing.close()
