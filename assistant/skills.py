"""Everyday skills that answer without a conversation: time, date, weekday, lunar date and festivals.

A skill is a function ``IntentResult → Reply`` registered for an intent; :class:`Skills` holds them
and the home's device list. The lunar calendar, solar terms and festivals come from
``lunar_python`` (a maintained library); every spoken word comes from ``voices/prompts.yaml``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from lunar_python import Solar

from intents.recognize import IntentResult
from voices.prompts import Prompts

if TYPE_CHECKING:
    from assistant.dialogue import Reply

Handler = Callable[[IntentResult], "Reply"]


class Skills:
    """The registry of one-shot skills, plus what the home has (devices)."""

    def __init__(self, prompts: Prompts, *, elder: str, clock: Callable[[], dt.datetime],
                 devices: Mapping[str, str] | None = None) -> None:
        """``clock`` gives local wall time; ``devices`` maps a device kind (light, tv …) to its configured name."""
        self.prompts = prompts
        self.elder = elder
        self.clock = clock
        self.devices = dict(devices or {})
        self._handlers: dict[str, Handler] = {"query_time": self.query_time}

    def register(self, intent: str, handler: Handler) -> None:
        """Add (or replace) the skill answering ``intent``."""
        self._handlers[intent] = handler

    def handler(self, intent: str) -> Handler | None:
        """The skill for ``intent``, if there is one."""
        return self._handlers.get(intent)

    def device_name(self, device: str) -> str | None:
        """The configured device of this kind; None when the home has none (「没有找到空调」)."""
        return self.devices.get(device)

    def query_time(self, result: IntentResult) -> Reply:
        """现在几点 / 今天几号 / 星期几 / 农历初几 (with today's festival or solar term, if any)."""
        from assistant.dialogue import Reply

        now = self.clock()
        what = result.slots.get("what", "time")
        p = self.prompts
        if what == "time":
            line = p.text("time_now", elder=self.elder, time=p.speakable_time(now.hour, now.minute))
        elif what == "weekday":
            line = p.text("weekday_today", weekday=self.weekday(now.date()))
        elif what == "lunar":
            line = p.text("lunar_today", lunar=self.lunar_date(now.date()))
        else:
            line = p.text("date_today", month=p.count(now.month, measure=False),
                          day=p.count(now.day, measure=False), weekday=self.weekday(now.date()))
        return Reply((line, *self.special_day(now.date())))

    def weekday(self, day: dt.date) -> str:
        """星期四, from the names in prompts.yaml."""
        return self.prompts.name("weekday", str(day.isoweekday()))

    def lunar_date(self, day: dt.date) -> str:
        """The lunar date as people say it: 十月十八, 腊月初八, 闰四月初一."""
        lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
        return self.prompts.text("lunar_date", month=lunar.getMonthInChinese(), day=lunar.getDayInChinese())

    def special_day(self, day: dt.date) -> Iterable[str]:
        """A line for today's traditional festival or solar term (「今天是冬至」), if any."""
        lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
        names = [*lunar.getFestivals(), lunar.getJieQi()]
        return [self.prompts.text("special_day", name=name) for name in names if name][:1]
