"""Tests for assistant.weather: the forecast cache, the spoken answer with advice, honesty without data."""

import datetime as dt
import json
from pathlib import Path

import pytest

from assistant.errors import InputError
from assistant.weather import WeatherCache, WeatherSkill
from intents.recognize import IntentResult
from voices.prompts import Prompts

TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=TZ)


def forecast(**changes) -> str:
    data = {"updated_at": "2026-11-26T07:00:00+08:00",
            "days": [{"date": "2026-11-26", "condition": "sunny", "low": 3, "high": 12, "wind": 2},
                     {"date": "2026-11-27", "condition": "rain", "low": -2, "high": 6, "wind": 6}]}
    data.update(changes)
    return json.dumps(data)


def ask(tmp_path: Path, date: str | None = None, now: dt.datetime = NOW) -> tuple[str, ...]:
    skill = WeatherSkill(WeatherCache(tmp_path / "weather.json"), Prompts.load(), clock=lambda: now)
    slots = {"date": date} if date else {}
    return skill(IntentResult("天气怎么样", "query_weather", 1.0, slots)).lines


def test_today_in_plain_words(tmp_path: Path) -> None:
    WeatherCache(tmp_path / "weather.json").store(forecast())
    assert ask(tmp_path) == ("今天晴天，三到十二度。",)


def test_tomorrow_with_advice(tmp_path: Path) -> None:
    WeatherCache(tmp_path / "weather.json").store(forecast())
    assert ask(tmp_path, "2026-11-27") == ("明天有雨，零下二到六度。", "出门记得带伞。", "天冷，出门多穿点衣服。")


@pytest.mark.parametrize("setup", ["none", "stale", "other_day"])
def test_honest_without_data(tmp_path: Path, setup: str) -> None:
    cache = WeatherCache(tmp_path / "weather.json")
    if setup == "stale":
        cache.store(forecast(updated_at="2026-11-24T07:00:00+08:00"))
    if setup == "other_day":
        cache.store(forecast())
    date = "2026-11-30" if setup == "other_day" else None
    (line,) = ask(tmp_path, date)
    assert "不知道" in line


@pytest.mark.parametrize("payload", [
    b"not json", b"[]", b'{"days": []}', forecast(updated_at="2026-11-26T07:00:00").encode(),
    forecast(days=[{"date": "2026-11-26", "condition": "volcano", "low": 1, "high": 2}]).encode(),
    forecast(days=[{"date": "2026-11-26", "condition": "rain", "low": 30, "high": 2}]).encode(),
    b"{" + b" " * 70_000 + b"}",
])
def test_bad_payloads_are_refused_and_keep_the_old_forecast(tmp_path: Path, payload: bytes) -> None:
    cache = WeatherCache(tmp_path / "weather.json")
    cache.store(forecast())
    with pytest.raises(InputError):
        cache.store(payload)
    assert cache.load() is not None and cache.load().days[0].condition == "sunny"


def test_round_trip(tmp_path: Path) -> None:
    cache = WeatherCache(tmp_path / "weather.json")
    stored = cache.store(forecast())
    assert cache.load() == stored


def test_cli_stores_a_forecast_that_text_mode_reads_back(tmp_path: Path) -> None:
    import subprocess
    import sys

    today = dt.date.today().isoformat()
    now = dt.datetime.now().astimezone().isoformat()
    payload = json.dumps({"updated_at": now, "days": [{"date": today, "condition": "rain", "low": 3, "high": 9}]})
    home = str(tmp_path / "home")
    stored = subprocess.run([sys.executable, "-m", "assistant", "weather", "-", "--home", home],
                            input=payload, capture_output=True, text=True, timeout=60)
    assert stored.returncode == 0, stored.stderr
    spoken = subprocess.run([sys.executable, "-m", "assistant", "run", "--text", "--home", home],
                            input="今天天气怎么样\n", capture_output=True, text=True, timeout=60)
    assert spoken.stdout.splitlines() == ["说：今天有雨，三到九度。", "说：出门记得带伞。"]
    bad = subprocess.run([sys.executable, "-m", "assistant", "weather", "-", "--home", home],
                         input="{bad", capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
