"""Wire models of the community platform API (CONTRACTS.md §4): what a request may carry and what it gets back.

Every request body is checked by one of these pydantic models before anything is stored. Strings are
free of NUL and lone surrogates, ``details`` are plain JSON of at most 4 KiB, timestamps carry an offset
and are kept in UTC, ids are UUIDs in their canonical lower-case form.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool,
                      field_validator)

SERVICES: tuple[str, ...] = ("meal", *yaml.safe_load(
    resources.files("intents").joinpath("data/slots/service.yaml").read_text(encoding="utf-8"))["values"])
"""Services an order may name: ``meal`` plus every ``order_service`` value (CONTRACTS.md §2)."""

MAX_BODY = 64 * 1024
"""Largest request body accepted (bytes)."""

HOME_ID_PATTERN = r"^[^/+#\s\x00-\x1f\x7f-\x9f]{1,64}$"  # control characters listed: regex dialects differ on \s

MAX_DETAILS = 4096
"""Largest ``details`` object (characters of its JSON)."""

_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
_NAME = r"^[a-z][a-z0-9_]{0,31}$"


def _only_str(value: Any) -> Any:
    """JSON strings only: keeps pydantic from reading numbers as timestamps or UUIDs."""
    if not isinstance(value, str):
        raise ValueError("must be a JSON string")
    return value


def _utc(value: dt.datetime) -> str:
    try:
        return value.astimezone(dt.timezone.utc).isoformat()
    except OverflowError:
        raise ValueError("is out of range") from None


def _unicode(text: str) -> str:
    """No lone surrogates: JSON can carry them, but they are not text and cannot be stored or answered."""
    if re.search("[\ud800-\udfff]", text):
        raise ValueError("contains an invalid code point (a lone surrogate)")
    return text


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    """``details``: plain JSON of at most 4 KiB and 16 levels, finite numbers, valid text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > 16:
            raise ValueError("is nested more than 16 levels deep")
        if isinstance(item, str):
            _unicode(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("contains a number that is not finite")
        elif isinstance(item, dict):
            stack.extend((_unicode(key), depth) for key in item)
            stack.extend((sub, depth + 1) for sub in item.values())
        elif isinstance(item, list):
            stack.extend((sub, depth + 1) for sub in item)
    if len(json.dumps(value, ensure_ascii=False)) > MAX_DETAILS:
        raise ValueError(f"is larger than {MAX_DETAILS} characters of JSON")
    return value


Uuid = Annotated[uuid.UUID, BeforeValidator(_only_str), AfterValidator(str)]
HomeId = Annotated[str, Field(pattern=HOME_ID_PATTERN, examples=["home-001"])]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_only_str), AfterValidator(_utc)]
Text = Annotated[str, Field(pattern=_NO_NUL), AfterValidator(_unicode)]
Details = Annotated[dict[str, Any], AfterValidator(_json_object)]
Service = Literal[SERVICES]  # type: ignore[valid-type]
Status = Literal["received", "accepted", "dispatched", "done", "cancelled"]


class OrderIn(BaseModel):
    """``POST /api/v1/orders``: an order created on a device; ``id`` is its idempotency key."""

    id: Uuid = Field(description="UUID chosen by the assistant; posting it again is answered 200")
    home_id: HomeId
    service: Service
    details: Details = Field(default_factory=dict,
                             description="meal, quantity, dish, time, notes, date, … (JSON, at most 4096 characters)")
    utterance: Text = Field("", max_length=500, description="what the elder said")
    created_at: Timestamp = Field(description="when the order was confirmed (ISO 8601 with offset)")


class OrderOut(BaseModel):
    """An order as the platform holds it."""

    id: str
    home_id: str
    service: str
    details: dict[str, Any]
    utterance: str
    created_at: str
    status: Status
    eta: str | None = Field(description="expected delivery time HH:MM, once staff set it")
    received_at: str
    updated_at: str


class OrderList(BaseModel):
    """Orders, newest first."""

    orders: list[OrderOut]


class StatusIn(BaseModel):
    """``POST /api/v1/orders/{id}/status`` (staff): move the order on."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["accepted", "dispatched", "done", "cancelled"]
    eta: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM")


class AlertIn(BaseModel):
    """``POST /api/v1/alerts``: an escalation step that reached the community; same id rule as orders.

    The fields are those of the MQTT alert (CONTRACTS.md §3, :class:`assistant.incidents.Alert`).
    """

    id: Uuid
    home_id: HomeId
    kind: str = Field(pattern=_NAME, examples=["emergency", "fall", "gas", "sos", "inactivity"])
    level: str = Field("community", pattern=_NAME, description="the ladder step that sent it: family, community, "
                                                                 "emergency")
    urgent: StrictBool = Field(False, description="someone must come now")
    reason: Text = Field("", max_length=200, examples=["fall", "chest_pain"])
    incident: Text = Field("", max_length=64, description="the incident this step belongs to")
    device: Text = Field("", max_length=64)
    room: Text = Field("", max_length=64)
    notify: list[Annotated[str, Field(pattern=_NAME)]] = Field(default_factory=list, max_length=8)
    contact: Text = Field("", max_length=64)
    utterance: Text = Field("", max_length=500)
    details: Details = Field(default_factory=dict)
    created_at: Timestamp


class AlertOut(BaseModel):
    """An alert as the platform holds it."""

    id: str
    home_id: str
    kind: str
    level: str
    urgent: bool
    reason: str
    incident: str
    device: str
    room: str
    notify: list[str]
    contact: str
    utterance: str
    details: dict[str, Any]
    created_at: str
    status: Literal["received", "acknowledged"]
    acked_by: str | None
    received_at: str
    updated_at: str


class AlertList(BaseModel):
    """Alerts, newest first."""

    alerts: list[AlertOut]


class AckIn(BaseModel):
    """``POST /api/v1/alerts/{id}/ack`` (staff)."""

    model_config = ConfigDict(extra="forbid")
    by: Text = Field(min_length=1, max_length=64)


class HomeList(BaseModel):
    """Registered homes."""

    homes: list[str]


_HOURS = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$"

Hours = Annotated[str, Field(pattern=_HOURS, examples=["10:30-13:00"],
                             description="HH:MM-HH:MM local time; an end not after the start runs past "
                                         "midnight (22:00-06:00), the same start and end mean round the clock")]
Weekday = Annotated[int, Field(ge=1, le=7, description="ISO weekday, 1 = Monday … 7 = Sunday")]
Dish = Annotated[Text, Field(min_length=1, max_length=32)]


class CatalogueService(BaseModel):
    """One service the community offers: its price and the hours in which it takes orders."""

    model_config = ConfigDict(extra="forbid")
    service: Service
    name: Text = Field(min_length=1, max_length=32, examples=["午饭"], description="what staff call it")
    price: float = Field(ge=0, le=100_000, allow_inf_nan=False, description="price (yuan)")
    hours: list[Hours] = Field(min_length=1, max_length=8, description="when orders are taken")
    days: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=7,
                                description="the weekdays on which the hours start")


class Menu(BaseModel):
    """The canteen's dishes of one day."""

    model_config = ConfigDict(extra="forbid")
    date: dt.date = Field(description="YYYY-MM-DD")
    dishes: list[Dish] = Field(min_length=1, max_length=30, examples=[["红烧肉", "青菜豆腐"]])

    @field_validator("date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("must be a date YYYY-MM-DD")
        return value


class CatalogueIn(BaseModel):
    """``PUT /api/v1/catalogue`` (staff) and its ``GET``: services, prices, hours and the canteen menu."""

    model_config = ConfigDict(extra="forbid")
    services: list[CatalogueService] = Field(max_length=64)
    menu: Menu | None = Field(None, description="today's canteen menu, if published")


class Problem(BaseModel):
    """Every refused request: one sentence, plus the fields at fault for a bad body."""

    error: str
    detail: list[dict[str, Any]] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text} for code, text in (
        (400, "body is not JSON"), (401, "missing or unknown bearer token"), (403, "not allowed for this token"),
        (404, "no such order, alert, home or catalogue"), (409, "id reused with another body, or a forbidden status change"),
        (413, "body too large"), (422, "invalid request"))}
