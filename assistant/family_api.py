"""The family API (CONTRACTS.md §7): what a paired phone may see and do in the elder's home.

:func:`create_family_app` builds the FastAPI application over a :class:`FamilyHome`, the services it
uses. Reminders go through the :class:`~assistant.scheduler.ReminderService` (the single scheduler
owner); alerts are the escalation engine's incidents. Every endpoint except ``pair`` needs
``Authorization: Bearer <token>`` (401 without a known token, 403 for a revoked one). A refused request
gets a 4xx answer ``{"error": "<one sentence>"}`` and changes nothing. Transcripts and audio are never
returned: incidents are sent without their ``details``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException

from assistant.errors import ReminderError
from assistant.escalation import EscalationEngine
from assistant.http_common import install_json_errors
from assistant.incidents import Incident
from assistant.pairing import Device, Pairing, PairingError, TooManyAttempts
from assistant.reminders import MAX_TEXT, Reminder
from assistant.scheduler import ReminderService
from devices.sensors import DeviceRegistry

logger = logging.getLogger(__name__)

MAX_BODY = 16_384
"""Largest request body accepted (bytes)."""

MAX_MESSAGE = 200
"""Longest family message read aloud (characters)."""

PREFIX = "/api/v1/family"

_bearer = HTTPBearer(auto_error=False, description="a paired phone's token (POST /api/v1/family/pair)")

Time = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Day = Annotated[int, Field(ge=1, le=7)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT)]


@dataclass
class FamilyHome:
    """The services the family API works with; tests pass real ones built on a temporary home."""

    reminders: ReminderService
    pairing: Pairing
    read_aloud: Callable[[str, str], None]
    """says a family message on the speaker (the caller adds 「儿子给您留言：」 or not)"""
    escalation: EscalationEngine | None = None
    devices: DeviceRegistry | None = None
    now: Callable[[], dt.datetime] | None = None
    """the clock for adherence ratios and status; defaults to the reminder service's time zone now"""

    def clock(self) -> dt.datetime:
        """The current time, timezone-aware."""
        return self.now() if self.now else dt.datetime.now(self.reminders.tz)


class PairIn(BaseModel):
    """``POST /pair`` body."""

    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class ReminderIn(BaseModel):
    """``POST /reminders`` body (CONTRACTS.md §7)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["medication", "other"] = "medication"
    medicine: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
    dose: Text = ""
    times: Annotated[list[Time], Field(min_length=1, max_length=12)]
    days: Annotated[list[Day], Field(min_length=1, max_length=7)] = [1, 2, 3, 4, 5, 6, 7]
    start: dt.date | None = None
    end: dt.date | None = None
    paused: bool = False


class ReminderPatch(BaseModel):
    """``PATCH /reminders/{id}`` body: only the fields to change."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["medication", "other"] | None = None
    medicine: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)] | None = None
    dose: Text | None = None
    times: Annotated[list[Time], Field(min_length=1, max_length=12)] | None = None
    days: Annotated[list[Day], Field(min_length=1, max_length=7)] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    paused: bool | None = None


class MessageIn(BaseModel):
    """``POST /messages`` body."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE)]


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as the family sees it; ``details`` is left out (it may hold the elder's words)."""
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None
    return {"id": incident.id, "kind": incident.kind, "reason": incident.reason, "step": incident.step,
            "top": incident.top, "status": incident.status, "opened_at": iso(incident.opened_at),
            "step_at": iso(incident.step_at), "device": incident.device, "room": incident.room,
            "closed_at": iso(incident.closed_at), "closed_by": incident.closed_by, "outcome": incident.outcome}


def _device(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Device:
    """The calling phone, from its bearer token: 401 unknown, 403 revoked."""
    home: FamilyHome = request.app.state.home
    device = home.pairing.authenticate(credentials.credentials) if credentials else None
    if device is None:
        raise HTTPException(401, "missing or unknown bearer token; pair this phone first.",
                            headers={"WWW-Authenticate": "Bearer"})
    if device.revoked:
        raise HTTPException(403, "this phone's token was revoked; pair it again with a new code.")
    return device


Caller = Annotated[Device, Depends(_device)]


def create_family_app(home: FamilyHome) -> FastAPI:
    """The family API's ASGI application over ``home``."""
    app = FastAPI(title="yinling family API", version="1",
                  description="Reminders, doses, alerts and messages for the elder's family (CONTRACTS.md §7).")
    app.state.home = home
    reminders = home.reminders

    install_json_errors(app, MAX_BODY)

    page_dir = Path(__file__).parent / "family_page"  # the Chinese phone page (static files)
    app.mount("/static", StaticFiles(directory=page_dir), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(page_dir / "index.html", media_type="text/html; charset=utf-8")

    @app.exception_handler(TooManyAttempts)
    async def too_many(request: Request, exc: TooManyAttempts) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": "60"})

    @app.exception_handler(PairingError)
    async def bad_code(request: Request, exc: PairingError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    @app.exception_handler(ReminderError)
    async def bad_reminder(request: Request, exc: ReminderError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=422)

    def find(reminder_id: str) -> Reminder:
        reminder = reminders.get(reminder_id)
        if reminder is None:
            raise HTTPException(404, f"there is no reminder {reminder_id}.")
        return reminder

    @app.post(f"{PREFIX}/pair", tags=["pairing"])
    def pair(body: PairIn, request: Request) -> dict[str, str]:
        """Exchange a spoken 6-digit code for this phone's token (shown only once)."""
        client = request.client.host if request.client else ""
        device, token = home.pairing.pair(body.code, body.name, client)
        logger.info("family device %s paired", device.id)
        return {"token": token}

    @app.get(f"{PREFIX}/reminders", tags=["reminders"])
    def list_reminders(caller: Caller) -> dict[str, Any]:
        """Every reminder, paused and finished ones included."""
        return {"reminders": [r.to_json() for r in reminders.list()]}

    @app.post(f"{PREFIX}/reminders", status_code=201, tags=["reminders"])
    def add_reminder(body: ReminderIn, caller: Caller) -> dict[str, Any]:
        """Add a reminder; the scheduler rings it from now on."""
        reminder = Reminder.from_json(body.model_dump(mode="json"), tz=reminders.tz, created_by="family")
        stored = reminders.add(reminder)
        logger.info("reminder %s added by family device %s", stored.id, caller.id)
        return stored.to_json()

    @app.patch(f"{PREFIX}/reminders/{{reminder_id}}", tags=["reminders"])
    def change_reminder(reminder_id: str, body: ReminderPatch, caller: Caller) -> dict[str, Any]:
        """Change some fields (``paused: true`` pauses it); 404 for an unknown id."""
        find(reminder_id)
        changes = body.model_dump(mode="json", exclude_unset=True)
        if not changes:
            raise HTTPException(422, "nothing to change; send at least one field.")
        if any(value is None for key, value in changes.items() if key not in ("start", "end")):
            raise HTTPException(422, "only start and end may be set to null.")
        changed = reminders.update(reminder_id, **changes)
        logger.info("reminder %s changed by family device %s", reminder_id, caller.id)
        return changed.to_json()

    @app.delete(f"{PREFIX}/reminders/{{reminder_id}}", tags=["reminders"])
    def delete_reminder(reminder_id: str, caller: Caller) -> dict[str, Any]:
        """Delete a reminder (its dose history stays); returns it."""
        find(reminder_id)
        deleted = reminders.delete(reminder_id)
        logger.info("reminder %s deleted by family device %s", reminder_id, caller.id)
        return deleted.to_json()

    @app.get(f"{PREFIX}/doses", tags=["doses"])
    def doses(caller: Caller, date: Annotated[dt.date | None, Query(description="YYYY-MM-DD; default today")] = None
              ) -> dict[str, Any]:
        """The day's doses (``taken``, ``missed``, ``pending``) and 7- and 30-day adherence."""
        now = home.clock()
        day = date or now.date()
        log = reminders.adherence
        return {"date": day.isoformat(), "doses": [d.to_json() for d in reminders.doses_for_day(day)],
                "adherence": {"7": log.ratio(now, 7), "30": log.ratio(now, 30)}}

    @app.get(f"{PREFIX}/alerts", tags=["alerts"])
    def alerts(caller: Caller, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """Recent incidents, newest first, open ones with the ladder step they reached."""
        if home.escalation is None:
            return {"alerts": []}
        return {"alerts": [incident_json(i) for i in home.escalation.store.recent(limit)]}

    @app.post(f"{PREFIX}/alerts/{{alert_id}}/ack", tags=["alerts"])
    def ack(alert_id: str, caller: Caller) -> dict[str, Any]:
        """「我来处理」: acknowledge an open incident (by incident or alert id); its ladder stops."""
        closed = home.escalation.ack(alert_id, by=f"family:{caller.name}") if home.escalation else None
        if closed is None:
            raise HTTPException(404, f"there is no open alert {alert_id}.")
        logger.warning("incident %s acknowledged by family device %s", closed.id, caller.id)
        return incident_json(closed)

    @app.post(f"{PREFIX}/messages", status_code=202, tags=["messages"])
    def message(body: MessageIn, caller: Caller) -> dict[str, Any]:
        """Have the speaker read ``text`` aloud."""
        home.read_aloud(body.text, caller.name)
        logger.info("family device %s left a message (%d characters)", caller.id, len(body.text))
        return {"status": "read", "from": caller.name}

    @app.get(f"{PREFIX}/status", tags=["status"])
    def status(caller: Caller) -> dict[str, Any]:
        """Assistant online, sensors online / last seen, the elder's last activity."""
        sensors = home.devices.status() if home.devices else ()
        last = home.escalation.activity.last_activity if home.escalation else None
        return {"assistant": {"online": True, "time": home.clock().isoformat()},
                "sensors": [{"name": s.name, "role": s.role, "room": s.room, "online": s.online,
                             "last_seen": s.last_seen.isoformat() if s.last_seen else None, "battery": s.battery}
                            for s in sensors],
                "last_activity": last.isoformat() if last else None}

    return app
