"""Tests for assistant.skills: time, date, weekday, lunar date and festivals from an injected clock."""

import datetime as dt

import pytest

from assistant.skills import Skills
from intents.recognize import IntentResult
from voices.prompts import Prompts


def skills_at(moment: dt.datetime) -> Skills:
    return Skills(Prompts.load(), elder="张阿姨", clock=lambda: moment, devices={"light": "客厅灯"})


def ask(skills: Skills, what: str) -> tuple[str, ...]:
    return skills.query_time(IntentResult("", "query_time", 1.0, {"what": what})).lines


def test_time_is_said_the_way_people_say_it() -> None:
    (line,) = ask(skills_at(dt.datetime(2026, 11, 26, 8, 30)), "time")
    assert "八点半" in line and "张阿姨" in line


@pytest.mark.parametrize(("day", "lunar"), [
    (dt.date(2026, 11, 26), "十月十八"),
    (dt.date(2026, 2, 17), "正月初一"),
    (dt.date(2027, 1, 15), "腊月初八"),
])
def test_lunar_date(day: dt.date, lunar: str) -> None:
    lines = ask(skills_at(dt.datetime.combine(day, dt.time(9))), "lunar")
    assert lunar in lines[0]


def test_festival_and_solar_term_are_mentioned() -> None:
    assert any("春节" in line for line in ask(skills_at(dt.datetime(2026, 2, 17, 9)), "date"))
    assert any("冬至" in line for line in ask(skills_at(dt.datetime(2026, 12, 22, 9)), "weekday"))
    assert len(ask(skills_at(dt.datetime(2026, 11, 26, 9)), "date")) == 1  # an ordinary day: one line


def test_date_and_weekday() -> None:
    skills = skills_at(dt.datetime(2026, 11, 26, 9))
    assert ask(skills, "weekday") == ("今天是星期四。",)
    assert ask(skills, "date")[0].startswith("今天是十一月二十六号")


def test_devices() -> None:
    skills = skills_at(dt.datetime(2026, 11, 26, 9))
    assert skills.device_name("light") == "客厅灯"
    assert skills.device_name("heater") is None
