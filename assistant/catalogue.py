"""The community's service catalogue on the speaker: services, prices, hours and the canteen menu.

Staff publish it on the platform (``PUT /api/v1/catalogue``); :meth:`CatalogueCache.refresh` fetches it
and keeps the last good copy in ``catalogue.json`` in the state directory, so the answers survive the
network being down::

    {"services": [{"service": "meal", "name": "午饭", "price": 12.0, "hours": ["10:30-13:00"],
                   "days": [1, 2, 3, 4, 5, 6, 7]}],
     "menu": {"date": "2026-11-26", "dishes": ["红烧肉", "青菜豆腐"]}}

:func:`catalogue_skill` answers 「今天食堂有什么」 (intent ``menu``); :func:`check_hours` gives the spoken
explanation when an order comes outside the service's hours, so it is explained, not silently queued.
Times are local wall-clock times of the home.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import InputError, PlatformError
from intents.recognize import IntentResult
from voices.prompts import Prompts

if TYPE_CHECKING:
    from assistant.dialogue import Reply
    from assistant.platform_client import PlatformClient

logger = logging.getLogger(__name__)

_WINDOW = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")
LOOKAHEAD_DAYS = 8  # a weekly schedule repeats within a week; one more day covers "later today"


@dataclass(frozen=True)
class Window:
    """Hours in which a service takes orders, from ``start`` up to (not including) ``end``.

    An ``end`` not after the ``start`` is on the next day (22:00-06:00); the same time for both
    means round the clock.
    """

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> Window:
        """``"10:30-13:00"`` → Window; InputError unless HH:MM-HH:MM."""
        match = _WINDOW.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InputError(f"catalogue: hours {text!r:.40} are not HH:MM-HH:MM")
        hour, minute, end_hour, end_minute = (int(part) for part in match.groups())
        return cls(dt.time(hour, minute), dt.time(end_hour, end_minute))

    def on(self, day: dt.date, tz: dt.tzinfo | None) -> tuple[dt.datetime, dt.datetime]:
        """The window starting on ``day``, as start and end moments in ``tz``."""
        start = dt.datetime.combine(day, self.start, tz)
        end = dt.datetime.combine(day, self.end, tz)
        return start, end if end > start else end + dt.timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class ServiceHours:
    """One offered service (``meal`` or an ``order_service`` value): its price (yuan) and hours."""

    service: str
    name: str
    price: float
    hours: tuple[Window, ...]
    days: tuple[int, ...]
    """ISO weekdays, 1 = Monday … 7 = Sunday"""


@dataclass(frozen=True)
class Menu:
    """The canteen's dishes of one day."""

    date: dt.date
    dishes: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    """What the community offers, as last published."""

    services: tuple[ServiceHours, ...]
    menu: Menu | None = None

    @classmethod
    def from_json(cls, data: Any) -> Catalogue:
        """Validate the wire form; InputError with one sentence on anything wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("services"), list):
            raise InputError("catalogue: expected an object with a list 'services'")
        services = []
        for entry in data["services"]:
            try:
                days = tuple(int(day) for day in entry.get("days", range(1, 8)))
                services.append(ServiceHours(service=str(entry["service"]), name=str(entry["name"]),
                                             price=float(entry["price"]),
                                             hours=tuple(Window.parse(text) for text in entry["hours"]), days=days))
            except (AttributeError, KeyError, TypeError, ValueError):
                raise InputError(f"catalogue: each service needs service, name, price and hours; "
                                 f"got {entry!r:.80}") from None
            if not all(1 <= day <= 7 for day in days):
                raise InputError(f"catalogue: days {list(days)} must be weekdays 1..7")
        menu = None
        if data.get("menu") is not None:
            try:
                menu = Menu(dt.date.fromisoformat(str(data["menu"]["date"])),
                            tuple(str(dish) for dish in data["menu"]["dishes"]))
            except (KeyError, TypeError, ValueError):
                raise InputError("catalogue: 'menu' needs a date YYYY-MM-DD and a list 'dishes'") from None
        return cls(tuple(services), menu)

    def to_json(self) -> dict[str, Any]:
        """Wire form (inverse of :meth:`from_json`)."""
        return {"services": [{"service": s.service, "name": s.name, "price": s.price,
                              "hours": [str(w) for w in s.hours], "days": list(s.days)} for s in self.services],
                "menu": None if self.menu is None else {"date": self.menu.date.isoformat(),
                                                        "dishes": list(self.menu.dishes)}}

    def offers(self, service: str) -> tuple[ServiceHours, ...]:
        """The entries of ``service`` (meal may have several: breakfast, lunch, dinner)."""
        return tuple(entry for entry in self.services if entry.service == service)


class CatalogueCache:
    """The catalogue on disk: refreshed from the platform, read at every question and order."""

    def __init__(self, path: Path) -> None:
        """``path`` is ``catalogue.json`` in the state directory."""
        self.path = path

    @classmethod
    def in_dir(cls, state_dir: Path) -> CatalogueCache:
        """The cache of the state directory ``state_dir``."""
        return cls(state_dir / "catalogue.json")

    def store(self, data: Any) -> Catalogue:
        """Validate and save a catalogue (atomically); InputError leaves the old one in place."""
        catalogue = Catalogue.from_json(data)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(catalogue.to_json(), ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, self.path)
        return catalogue

    def load(self) -> Catalogue | None:
        """The stored catalogue, or None when there is none (or it is unreadable)."""
        try:
            return Catalogue.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, InputError) as exc:
            logger.warning("ignoring unreadable catalogue cache %s: %s", self.path, exc)
            return None

    def refresh(self, client: PlatformClient) -> Catalogue | None:
        """Fetch the published catalogue and keep it; on any trouble log it and keep the cached one."""
        try:
            data = client.catalogue()
            if data is not None:
                return self.store(data)
            logger.info("the platform has no service catalogue yet")
        except (PlatformError, InputError) as exc:
            logger.warning("service catalogue not refreshed, keeping the cached one: %s", exc)
        return self.load()

    def menu_for(self, date: dt.date) -> tuple[str, ...] | None:
        """The canteen's dishes on ``date``; None when no menu for that day is known."""
        catalogue = self.load()
        if catalogue is None or catalogue.menu is None or catalogue.menu.date != date:
            return None
        return catalogue.menu.dishes

    def is_open(self, service: str, moment: dt.datetime) -> bool | None:
        """Whether ``service`` takes orders at ``moment``; None when unknown (no catalogue, or the
        catalogue does not list the service: the community may still take it, so nothing is refused)."""
        catalogue = self.load()
        if catalogue is None or not catalogue.offers(service):
            return None
        found = self.next_window(service, moment)
        return found is not None and found[0] == moment

    def next_opening(self, service: str, moment: dt.datetime) -> dt.datetime | None:
        """When ``service`` next takes orders: ``moment`` itself when open now; None when unknown."""
        found = self.next_window(service, moment)
        return found[0] if found else None

    def next_window(self, service: str, moment: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """Start (``moment`` itself when open now) and end of the first window ending after ``moment``;
        None when unknown."""
        catalogue = self.load()
        candidates = []
        for entry in catalogue.offers(service) if catalogue else ():
            for offset in range(-1, LOOKAHEAD_DAYS):  # yesterday's window may run past midnight
                day = moment.date() + dt.timedelta(days=offset)
                if day.isoweekday() not in entry.days:
                    continue
                for window in entry.hours:
                    start, end = window.on(day, moment.tzinfo)
                    if end > moment:
                        candidates.append((max(start, moment), end))
        return min(candidates) if candidates else None


def spoken_list(prompts: Prompts, items: tuple[str, ...]) -> str:
    """「红烧肉」, 「红烧肉和青菜豆腐」, 「红烧肉、鱼香肉丝和青菜豆腐」."""
    if len(items) < 2:
        return "".join(items)
    return prompts.text("list_joiner").join(items[:-1]) + prompts.text("list_last_joiner") + items[-1]


def _spoken_day(prompts: Prompts, day: dt.date, today: dt.date) -> str:
    """今天 / 明天 / 后天, or the weekday further ahead."""
    ahead = (day - today).days
    return prompts.name("day", str(ahead)) if 0 <= ahead <= 2 else prompts.name("weekday", str(day.isoweekday()))


def catalogue_skill(cache: CatalogueCache, prompts: Prompts,
                    clock: Callable[[], dt.datetime]) -> Callable[[IntentResult], Reply]:
    """The handler of intent ``menu``: 「今天食堂有什么」 → 「今天食堂有红烧肉和青菜豆腐。」.

    A ``date`` slot (ISO date, as for the weather) asks about another day; without a menu for that
    day the elder hears so honestly.
    """

    def menu(result: IntentResult) -> Reply:
        from assistant.dialogue import Reply

        today = clock().date()
        asked = dt.date.fromisoformat(result.slots["date"]) if result.slots.get("date") else today
        day = _spoken_day(prompts, asked, today)
        dishes = cache.menu_for(asked)
        if not dishes:
            return Reply((prompts.text("menu_unknown", day=day),))
        return Reply((prompts.text("menu_dishes", day=day, dishes=spoken_list(prompts, dishes)),))

    return menu


def check_hours(cache: CatalogueCache, prompts: Prompts, service: str, moment: dt.datetime) -> str | None:
    """What to say when ``service`` is ordered at ``moment`` outside its hours; None when open or unknown.

    「食堂现在不送餐，十点半到下午一点可以订。」: the next window is named, with its day unless it is today.
    """
    if cache.is_open(service, moment) is not False:
        return None
    found = cache.next_window(service, moment)
    if found is None:  # listed without any hours: nothing sensible to say, let the community decide
        return None
    start, end = found
    day = "" if start.date() == moment.date() else _spoken_day(prompts, start.date(), moment.date())
    when = prompts.text("hours_window", day=day, start=prompts.speakable_time(start.hour, start.minute),
                        end=prompts.speakable_time(end.hour, end.minute))
    key = "hours_closed_meal" if service == "meal" else "hours_closed_service"
    return prompts.text(key, service=prompts.name("service", service), when=when)
