"""The reference community platform: the HTTP API of CONTRACTS.md §4, the staff console and its CLI.

:func:`create_app` builds the FastAPI application over a :class:`~assistant.platform_store.PlatformStore`;
``yinling platform serve`` runs it with uvicorn, :class:`BackgroundServer` runs it in a thread (tests,
benchmarks). Every request body is checked by a pydantic model before anything is stored; a refused
request gets a 4xx answer ``{"error": "<one sentence>", "detail": [...]}``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from assistant.errors import ConflictError, NotFoundError, PlatformError
from assistant.http_common import install_json_errors
from assistant.platform_models import (
    ERRORS,
    HOME_ID_PATTERN,
    MAX_BODY,
    AckIn,
    AlertIn,
    AlertList,
    AlertOut,
    CatalogueIn,
    HomeList,
    OrderIn,
    OrderList,
    OrderOut,
    Service,
    Status,
    StatusIn,
)
from assistant.platform_store import PlatformStore, Principal

logger = logging.getLogger(__name__)

_CONSOLE = Path(__file__).with_name("console")
_bearer = HTTPBearer(auto_error=False, description="a home's token (`platform add-home`) or a staff token")


def _who(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """The caller, from the bearer token; 401 without a known token."""
    store: PlatformStore = request.app.state.store
    principal = store.authenticate(credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(401, "missing or unknown bearer token; send 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


Who = Annotated[Principal, Depends(_who)]


def create_app(store: PlatformStore) -> FastAPI:
    """The platform's ASGI application over ``store``."""
    app = FastAPI(title="yinling community platform", version="1",
                  description="Orders and alerts from yinling assistants (CONTRACTS.md §4) and the staff console.")
    app.state.store = store

    def visible(principal: Principal, record: Any, what: str) -> Any:
        """``record`` if ``principal`` may see it; another home's order or alert is reported as absent (404)."""
        if not principal.is_staff and record.home_id != principal.home_id:
            raise NotFoundError(f"there is no {what}.")
        return record

    def own_home(principal: Principal, home_id: str | None) -> str | None:
        """The home a request may see: staff any (None = all), a home only its own."""
        if principal.is_staff:
            return home_id
        if home_id is not None and home_id != principal.home_id:
            raise HTTPException(403, f"this token belongs to home {principal.home_id}, not {home_id}.")
        return principal.home_id

    def writer(principal: Principal, home_id: str) -> None:
        own_home(principal, home_id)
        if principal.is_staff and home_id not in store.homes():
            raise HTTPException(404, f"there is no home {home_id}; register it with 'platform add-home'.")

    def staff(principal: Principal) -> None:
        if not principal.is_staff:
            raise HTTPException(403, "only a staff token may do this.")

    install_json_errors(app, MAX_BODY)

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=409)

    @app.exception_handler(NotFoundError)
    async def missing(request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.post("/api/v1/orders", status_code=201, response_model=OrderOut, tags=["orders"],
              responses={200: {"model": OrderOut, "description": "this id was posted before"}, **ERRORS})
    def post_order(order: OrderIn, response: Response, principal: Who) -> dict[str, Any]:
        """Create an order; a repeat of the same id and body is answered 200 with the stored order."""
        writer(principal, order.home_id)
        record, created = store.create_order(order.id, order.home_id, order.service, order.details,
                                             order.utterance, order.created_at)
        if created:
            logger.info("order %s from %s: %s", record.id, record.home_id, record.service)
        else:
            response.status_code = 200
        return record.to_json()

    @app.get("/api/v1/orders", response_model=OrderList, tags=["orders"], responses=ERRORS)
    def list_orders(principal: Who, home_id: Annotated[str | None, Query(pattern=HOME_ID_PATTERN)] = None,
                    service: Service | None = None, status: Status | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Orders newest first; a home's token sees only that home's orders."""
        records = store.list_orders(own_home(principal, home_id), service, status, limit)
        return {"orders": [record.to_json() for record in records]}

    @app.get("/api/v1/orders/{order_id}", response_model=OrderOut, tags=["orders"], responses=ERRORS)
    def get_order(order_id: uuid.UUID, principal: Who) -> dict[str, Any]:
        """One order (404 also for another home's order)."""
        return visible(principal, store.get_order(str(order_id)), f"order {order_id}").to_json()

    @app.post("/api/v1/orders/{order_id}/status", response_model=OrderOut, tags=["staff"], responses=ERRORS)
    def post_status(order_id: uuid.UUID, change: StatusIn, principal: Who) -> dict[str, Any]:
        """Staff move an order on: accepted, dispatched (with an eta), done or cancelled."""
        staff(principal)
        record = store.set_status(str(order_id), change.status, change.eta)
        logger.info("order %s is now %s", record.id, record.status)
        return record.to_json()

    @app.post("/api/v1/alerts", status_code=201, response_model=AlertOut, tags=["alerts"],
              responses={200: {"model": AlertOut, "description": "this id was posted before"}, **ERRORS})
    def post_alert(alert: AlertIn, response: Response, principal: Who) -> dict[str, Any]:
        """Record an escalation; same id rule as orders."""
        writer(principal, alert.home_id)
        body = alert.model_dump(exclude={"id", "home_id", "created_at"})
        record, created = store.create_alert(alert.id, alert.home_id, body, alert.created_at)
        if created:
            logger.warning("alert %s from %s: %s", record.id, record.home_id, alert.kind)
        else:
            response.status_code = 200
        return record.to_json()

    @app.get("/api/v1/alerts", response_model=AlertList, tags=["alerts"], responses=ERRORS)
    def list_alerts(principal: Who, home_id: Annotated[str | None, Query(pattern=HOME_ID_PATTERN)] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Alerts newest first; a home's token sees only that home's alerts."""
        return {"alerts": [r.to_json() for r in store.list_alerts(own_home(principal, home_id), limit)]}

    @app.get("/api/v1/alerts/{alert_id}", response_model=AlertOut, tags=["alerts"], responses=ERRORS)
    def get_alert(alert_id: uuid.UUID, principal: Who) -> dict[str, Any]:
        """One alert (404 also for another home's alert)."""
        return visible(principal, store.get_alert(str(alert_id)), f"alert {alert_id}").to_json()

    @app.post("/api/v1/alerts/{alert_id}/ack", response_model=AlertOut, tags=["staff"], responses=ERRORS)
    def ack_alert(alert_id: uuid.UUID, ack: AckIn, principal: Who) -> dict[str, Any]:
        """Staff acknowledge an alert."""
        staff(principal)
        return store.ack_alert(str(alert_id), ack.by).to_json()

    @app.get("/api/v1/homes", response_model=HomeList, tags=["staff"], responses=ERRORS)
    def list_homes(principal: Who) -> dict[str, Any]:
        """Registered homes (staff)."""
        staff(principal)
        return {"homes": store.homes()}

    @app.put("/api/v1/catalogue", response_model=CatalogueIn, tags=["staff"], responses=ERRORS)
    def put_catalogue(catalogue: CatalogueIn, principal: Who) -> dict[str, Any]:
        """Publish the service catalogue (services, prices, hours, today's menu); replaces the last one."""
        staff(principal)
        body = catalogue.model_dump(mode="json")
        store.set_catalogue(body)
        logger.info("service catalogue published: %d services", len(catalogue.services))
        return body

    @app.get("/api/v1/catalogue", response_model=CatalogueIn, tags=["catalogue"], responses=ERRORS)
    def get_catalogue(principal: Who) -> dict[str, Any]:
        """The service catalogue as staff last published it (404 before the first)."""
        return store.catalogue()

    @app.get("/healthz", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: answers without a token."""
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(_CONSOLE / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/console", StaticFiles(directory=_CONSOLE), name="console")
    return app


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = a free port); PlatformError naming the address if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio sets TCP_NODELAY only then
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PlatformError(f"cannot listen on {host}:{port} ({exc.strerror}).") from None
    sock.listen(128)
    return sock


class BackgroundServer:
    """The platform app served by uvicorn in a background thread; ``url`` once :meth:`start` returned."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve ``app`` (usually :func:`create_app`'s) on ``host:port`` (port 0 = a free port)."""
        self.app, self.host, self.port = app, host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43125``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Bind, start serving and wait (at most ``timeout`` seconds) until requests are answered."""
        sock = listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=1, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="platform-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            time.sleep(0.01)  # uvicorn offers no event to wait on; bounded by ``timeout``
        raise PlatformError(f"the platform server did not start within {timeout} s.")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open connections are closed) and wait for the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
