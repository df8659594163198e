"""Weather, read back from a local cache that the community platform or the family publishes.

The speaker has no internet. A forecast arrives as JSON — on the retained MQTT topic
``yinling/<home_id>/weather`` or through the family API — and is stored by :meth:`WeatherCache.store`
in ``weather.json`` in the state directory::

    {"updated_at": "2026-11-26T07:00:00+08:00",
     "days": [{"date": "2026-11-26", "condition": "rain", "low": 3, "high": 9, "wind": 3}, ...]}

:class:`WeatherSkill` answers ``query_weather`` in plain words with advice (「明天有雨，出门记得带伞」)
and says honestly when it has no forecast for the day asked, or only a stale one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import InputError
from intents.recognize import IntentResult
from voices.prompts import Prompts

if TYPE_CHECKING:
    from assistant.dialogue import Reply

logger = logging.getLogger(__name__)

CONDITIONS = ("sunny", "cloudy", "overcast", "rain", "snow", "fog", "haze", "storm")
MAX_AGE = dt.timedelta(hours=36)  # an older forecast is not read out
HOT, COLD, WINDY = 33, 0, 5  # °C, °C, Beaufort: thresholds of the advice
MAX_PAYLOAD = 64_000  # bytes of JSON accepted from the broker or the API


@dataclass(frozen=True)
class DayForecast:
    """One day of the forecast (temperatures in °C, wind in Beaufort)."""

    date: dt.date
    condition: str
    low: int
    high: int
    wind: int = 0


@dataclass(frozen=True)
class Forecast:
    """A published forecast."""

    updated_at: dt.datetime
    days: tuple[DayForecast, ...]

    @classmethod
    def from_json(cls, data: Any) -> Forecast:
        """Validate the wire form; InputError with one sentence on anything wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("days"), list):
            raise InputError("weather: expected an object with 'updated_at' and a list 'days'")
        try:
            updated = dt.datetime.fromisoformat(str(data["updated_at"]))
        except (KeyError, ValueError):
            raise InputError("weather: 'updated_at' must be an ISO date-time with time zone") from None
        if updated.tzinfo is None:
            raise InputError("weather: 'updated_at' needs a time zone, e.g. +08:00")
        days = []
        for entry in data["days"]:
            try:
                day = DayForecast(date=dt.date.fromisoformat(str(entry["date"])), condition=str(entry["condition"]),
                                  low=int(entry["low"]), high=int(entry["high"]), wind=int(entry.get("wind", 0)))
            except (KeyError, TypeError, ValueError):
                raise InputError(f"weather: each day needs date, condition, low and high; got {entry!r:.80}") from None
            if day.condition not in CONDITIONS:
                raise InputError(f"weather: condition {day.condition!r} is not one of {', '.join(CONDITIONS)}")
            if not -60 <= day.low <= day.high <= 60:
                raise InputError(f"weather: temperatures {day.low}..{day.high} °C are not plausible")
            days.append(day)
        return cls(updated_at=updated, days=tuple(days))

    def to_json(self) -> dict[str, Any]:
        """Wire form (inverse of :meth:`from_json`)."""
        return {"updated_at": self.updated_at.isoformat(),
                "days": [{"date": d.date.isoformat(), "condition": d.condition, "low": d.low, "high": d.high,
                          "wind": d.wind} for d in self.days]}


class WeatherCache:
    """The forecast on disk; written by whoever receives one, read at every question."""

    def __init__(self, path: Path) -> None:
        """``path`` is ``weather.json`` in the state directory."""
        self.path = path

    def store(self, payload: bytes | str) -> Forecast:
        """Validate and save a published forecast (atomically); InputError leaves the old one in place."""
        if len(payload) > MAX_PAYLOAD:
            raise InputError(f"weather: payload of {len(payload)} bytes is larger than {MAX_PAYLOAD}")
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"weather: payload is not JSON ({exc})") from None
        forecast = Forecast.from_json(data)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(forecast.to_json(), ensure_ascii=False), encoding="utf-8")
        os.replace(temporary, self.path)
        return forecast

    def load(self) -> Forecast | None:
        """The stored forecast, or None when there is none (or it is unreadable)."""
        try:
            return Forecast.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, InputError) as exc:
            logger.warning("ignoring unreadable weather cache %s: %s", self.path, exc)
            return None


class WeatherSkill:
    """Answers ``query_weather`` from the cache, with advice, or honestly says it does not know."""

    def __init__(self, cache: WeatherCache, prompts: Prompts, *, clock: Callable[[], dt.datetime]) -> None:
        """``clock`` gives aware local time."""
        self.cache = cache
        self.prompts = prompts
        self.clock = clock

    def __call__(self, result: IntentResult) -> Reply:
        """「明天会下雨吗」 → the day's weather and what to do about it."""
        from assistant.dialogue import Reply

        now = self.clock()
        asked = dt.date.fromisoformat(result.slots["date"]) if result.slots.get("date") else now.date()
        forecast = self.cache.load()
        day = next((d for d in forecast.days if d.date == asked), None) if forecast else None
        if forecast is None or day is None or now - forecast.updated_at > MAX_AGE:
            return Reply((self.prompts.text("weather_unknown"),))
        p = self.prompts
        when = p.name("day", str((asked - now.date()).days)) if 0 <= (asked - now.date()).days <= 2 else \
            p.text("weather_date", month=p.count(asked.month, measure=False), day=p.count(asked.day, measure=False))
        lines = [p.text("weather_day", day=when, condition=p.name("weather", day.condition),
                        low=self._degrees(day.low), high=self._degrees(day.high))]
        lines += [p.text(f"weather_advice_{key}") for key in self.advice(day)]
        return Reply(tuple(lines))

    def _degrees(self, value: int) -> str:
        return (self.prompts.text("minus") if value < 0 else "") + self.prompts.count(abs(value), measure=False)

    @staticmethod
    def advice(day: DayForecast) -> list[str]:
        """Which advice applies (keys of ``weather_advice_*`` prompts), most important first."""
        keys = []
        if day.condition in ("rain", "storm"):
            keys.append("umbrella")
        if day.condition == "snow":
            keys.append("slippery")
        if day.condition in ("haze", "fog"):
            keys.append("mask")
        if day.high >= HOT:
            keys.append("hot")
        if day.low <= COLD:
            keys.append("cold")
        if day.wind >= WINDY:
            keys.append("windy")
        return keys[:2]
