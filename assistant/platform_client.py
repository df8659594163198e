"""The assistant's HTTP client of the community platform (CONTRACTS.md §4).

:meth:`PlatformClient.post` never raises for network trouble: it sorts every answer into delivered,
retry later or failed for good, which is what the outbox needs to decide. Reads
(:meth:`PlatformClient.list_orders`, :meth:`PlatformClient.catalogue`) raise
:class:`~assistant.errors.PlatformUnavailable` instead.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

import requests

from assistant.errors import PlatformError, PlatformUnavailable

logger = logging.getLogger(__name__)

RETRIED_4XX = frozenset({408, 429})
"""Client errors that are about timing, not about the request: retried like server errors."""


class Outcome(enum.Enum):
    """What became of one POST."""

    DELIVERED = "delivered"
    """the platform holds the item (201 created, or 200 for a repeat)"""
    RETRY = "retry"
    """not delivered for a passing reason (down, 5xx, timeout, 408, 429): try again later"""
    FAILED = "failed"
    """refused for good (another 4xx): retrying the same body cannot help"""


@dataclass(frozen=True)
class PostResult:
    """The outcome of one POST, with what the logs and the back-off need."""

    outcome: Outcome
    status_code: int | None
    """HTTP status, None when no answer arrived"""
    message: str
    """one line for the log: the platform's error text or the network error"""
    retry_after: float | None = None
    """seconds the platform asked us to wait (Retry-After), if any"""


class PlatformClient:
    """Talks to one platform as one home; the requests session is injectable."""

    def __init__(self, url: str, token: str, *, session: requests.Session | None = None,
                 connect_timeout: float = 3.05, read_timeout: float = 10.0) -> None:
        """``url`` is the base URL (``http://host:port``); timeouts are in seconds."""
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = session or requests.Session()
        self._timeout = (connect_timeout, read_timeout)

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def post(self, path: str, body: dict[str, Any]) -> PostResult:
        """POST ``body`` as JSON to ``path`` (e.g. ``/api/v1/orders``) and classify the answer."""
        try:
            response = self._session.post(self.url + path, json=body, headers=self._headers, timeout=self._timeout)
        except requests.Timeout as exc:
            return PostResult(Outcome.RETRY, None, f"timed out ({type(exc).__name__})")
        except requests.ConnectionError as exc:
            return PostResult(Outcome.RETRY, None, f"cannot connect ({_reason(exc)})")
        except requests.RequestException as exc:
            return PostResult(Outcome.RETRY, None, f"request failed ({_reason(exc)})")
        code = response.status_code
        if code in (200, 201):
            return PostResult(Outcome.DELIVERED, code, "ok")
        message = _error_text(response)
        if 400 <= code < 500 and code not in RETRIED_4XX:
            return PostResult(Outcome.FAILED, code, message)
        return PostResult(Outcome.RETRY, code, message, _retry_after(response))

    def list_orders(self, home_id: str) -> list[dict[str, Any]]:
        """``GET /api/v1/orders?home_id=…``: this home's orders as the platform reports them, newest first."""
        try:
            response = self._session.get(self.url + "/api/v1/orders", params={"home_id": home_id},
                                         headers=self._headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"the platform at {self.url} cannot be reached ({_reason(exc)}).") from None
        if response.status_code >= 500 or response.status_code in RETRIED_4XX:
            raise PlatformUnavailable(f"the platform answered {response.status_code}: {_error_text(response)}")
        if response.status_code != 200:
            raise PlatformError(f"the platform refused to list orders ({response.status_code}: "
                                f"{_error_text(response)}).")
        try:
            orders = response.json()["orders"]
        except (ValueError, KeyError, TypeError):
            raise PlatformError("the platform's order list is not the JSON of CONTRACTS.md §4.") from None
        if not isinstance(orders, list):
            raise PlatformError("the platform's order list is not a JSON array.")
        return [order for order in orders if isinstance(order, dict)]

    def catalogue(self) -> dict[str, Any] | None:
        """``GET /api/v1/catalogue``: the community's service catalogue, None when none is published yet."""
        try:
            response = self._session.get(self.url + "/api/v1/catalogue", headers=self._headers,
                                         timeout=self._timeout)
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"the platform at {self.url} cannot be reached ({_reason(exc)}).") from None
        if response.status_code >= 500 or response.status_code in RETRIED_4XX:
            raise PlatformUnavailable(f"the platform answered {response.status_code}: {_error_text(response)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise PlatformError(f"the platform refused the catalogue ({response.status_code}: "
                                f"{_error_text(response)}).")
        try:
            body = response.json()
        except ValueError:
            raise PlatformError("the platform's catalogue is not JSON.") from None
        if not isinstance(body, dict):
            raise PlatformError("the platform's catalogue is not a JSON object.")
        return body


def _reason(exc: Exception) -> str:
    """The innermost cause of a requests error, short enough for one log line."""
    inner: BaseException = exc
    for _ in range(10):  # urllib3 nests a few levels; the chain is never longer in practice
        if inner.__context__ is None:
            break
        inner = inner.__context__
    return (str(inner) or type(inner).__name__)[:200]


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason or str(response.status_code)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:200]
    return str(body)[:200]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
