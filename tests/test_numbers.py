"""Tests for intents.numbers: numerals, quantities, clock times and dates."""

from __future__ import annotations

import datetime
import time

import pytest

from intents.numbers import (
    MEASURE_WORDS,
    ClockTime,
    find_clock_time,
    find_date,
    find_quantity,
    parse_number,
)

# A Wednesday in the middle of a 31-day month.
TODAY = datetime.date(2024, 5, 15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("一", 1), ("两", 2), ("俩", 2), ("仨", 3), ("十", 10), ("十二", 12), ("二十五", 25),
        ("一百", 100), ("一百零五", 105), ("〇", 0), ("零", 0), ("12", 12), ("１２", 12),
        ("两千", 2000),
    ],
)
def test_parse_number(text: str, expected: int) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["", "一点五", "负一", "百", "abc", "😀", "十二点", "几", "一两", "一八", "两十"])
def test_parse_number_rejects_non_numbers(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "value", "span"),
    [
        ("两份", 2, (0, 2)),
        ("三碗", 3, (0, 2)),
        ("一份", 1, (0, 2)),
        ("来一份红烧肉", 1, (1, 3)),
        ("俩", 2, (0, 1)),
        ("我们俩吃", 2, (2, 3)),
        ("仨人份", 3, (0, 3)),
        ("要两人份的饺子", 2, (1, 4)),
        ("十二个饺子", 12, (0, 3)),
        ("中午送二十份", 20, (3, 6)),
        ("星期一两份", 2, (3, 5)),
        ("快一点两碗", 2, (3, 5)),
        ("一斤鸡蛋", 1, (0, 2)),
        ("两袋牛奶", 2, (0, 2)),
        ("5杯", 5, (0, 2)),
    ],
)
def test_find_quantity(text: str, value: int, span: tuple[int, int]) -> None:
    assert find_quantity(text) == (value, *span)


@pytest.mark.parametrize(
    "text",
    ["一下", "等一下", "一点儿", "少放一点盐", "一会儿", "走一趟", "再说一遍", "摔了一跤",
     "一起吃", "第一个", "", "hello world", "😀😀", "八点", "零份"],
)
def test_find_quantity_rejects_non_quantities(text: str) -> None:
    assert find_quantity(text) is None


def test_measure_words_is_a_tuple_constant() -> None:
    assert isinstance(MEASURE_WORDS, tuple)
    assert "份" in MEASURE_WORDS and "人份" in MEASURE_WORDS


@pytest.mark.parametrize(
    ("text", "hhmm", "ambiguous"),
    [
        ("八点", "08:00", True),
        ("八点半", "08:30", True),
        ("八点一刻", "08:15", True),
        ("八点三刻", "08:45", True),
        ("十二点一刻", "12:15", False),
        ("九点零五", "09:05", True),
        ("九点〇五", "09:05", True),
        ("九点五分", "09:05", True),
        ("九点十五", "09:15", True),
        ("九点十五分", "09:15", True),
        ("九点五十", "09:50", True),
        ("两点", "02:00", True),
        ("十点钟", "10:00", True),
        ("八点整", "08:00", True),
        ("差五分八点", "07:55", True),
        ("八点差五分", "07:55", True),
        ("八点差一刻", "07:45", True),
        ("七点半", "07:30", True),
        ("一点钟", "01:00", True),
        ("一点半", "01:30", True),
        ("一点一刻", "01:15", True),
        ("一点三刻", "01:45", True),
        ("一点十分", "01:10", True),
        ("一点零五", "01:05", True),
        ("到一点叫我", "01:00", True),
        ("在一点", "01:00", True),
        ("十五点", "15:00", False),
        ("二十点半", "20:30", False),
        ("零点", "00:00", False),
        ("十二点", "12:00", False),
        ("8点", "08:00", True),
        ("8点30分", "08:30", True),
        ("早上九点", "09:00", False),
        ("早晨六点", "06:00", False),
        ("清早五点", "05:00", False),
        ("一早七点", "07:00", False),
        ("早八点", "08:00", False),
        ("明早八点", "08:00", False),
        ("上午十点", "10:00", False),
        ("中午十二点", "12:00", False),
        ("中午一点", "13:00", False),
        ("晌午一点", "13:00", False),
        ("下午两点", "14:00", False),
        ("下午两点半", "14:30", False),
        ("下午一点", "13:00", False),
        ("后晌四点", "16:00", False),
        ("晌午后三点", "15:00", False),
        ("傍晚六点", "18:00", False),
        ("晚上九点", "21:00", False),
        ("晚上十点", "22:00", False),
        ("晚上十二点", "00:00", False),
        ("今晚八点", "20:00", False),
        ("明晚七点", "19:00", False),
        ("晚八点", "20:00", False),
        ("夜里十一点", "23:00", False),
        ("夜里十二点", "00:00", False),
        ("夜里两点", "02:00", False),
        ("夜晚十点", "22:00", False),
        ("黑夜九点", "21:00", False),
        ("半夜两点", "02:00", False),
        ("半夜十二点", "00:00", False),
        ("凌晨三点", "03:00", False),
        ("下午十五点", "15:00", False),
        ("晚上八点差五分", "19:55", False),
        ("明天早上八点提醒我吃药", "08:00", False),
        ("提醒我下午三点吃药", "15:00", False),
        ("星期一八点", "08:00", True),
        ("星期二十点", "10:00", True),
        ("周二十一点", "11:00", True),
        ("快一点八点到", "08:00", True),
        ("现在一点了", "01:00", True),
        ("晚上差五分十二点", "23:55", False),
        ("零点一刻", "00:15", False),
    ],
)
def test_find_clock_time(text: str, hhmm: str, ambiguous: bool) -> None:
    found = find_clock_time(text)
    assert found is not None
    assert (found.hhmm, found.ambiguous_half_day) == (hhmm, ambiguous)


@pytest.mark.parametrize(
    ("text", "hour", "minute", "span"),
    [
        ("十二点一刻", 12, 15, (0, 5)),
        ("明天早上八点半吃药", 8, 30, (2, 7)),
        ("差五分八点", 7, 55, (0, 5)),
        ("提醒我晚上九点", 21, 0, (3, 7)),
    ],
)
def test_find_clock_time_fields_and_span(
    text: str, hour: int, minute: int, span: tuple[int, int]
) -> None:
    found = find_clock_time(text)
    assert found is not None
    assert (found.hour, found.minute, found.start, found.end) == (hour, minute, *span)


@pytest.mark.parametrize(
    "text",
    ["少放一点盐", "快一点", "好一点了", "早一点来", "晚一点再说", "一点点", "到一点点", "用到一点儿", "差一点摔倒", "再加一点",
     "一下", "", "二十五点", "八点七十分", "what time is it", "😀八", "几点了", "a" * 50],
)
def test_find_clock_time_rejects(text: str) -> None:
    assert find_clock_time(text) is None


def test_clock_time_is_frozen() -> None:
    found = ClockTime(hour=8, minute=5, start=0, end=2)
    assert found.hhmm == "08:05"
    with pytest.raises(AttributeError):
        found.hour = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected", "span"),
    [
        ("今天", datetime.date(2024, 5, 15), (0, 2)),
        ("今儿", datetime.date(2024, 5, 15), (0, 2)),
        ("今儿个", datetime.date(2024, 5, 15), (0, 3)),
        ("明天", datetime.date(2024, 5, 16), (0, 2)),
        ("明儿", datetime.date(2024, 5, 16), (0, 2)),
        ("明儿个", datetime.date(2024, 5, 16), (0, 3)),
        ("明早八点", datetime.date(2024, 5, 16), (0, 2)),
        ("明晚", datetime.date(2024, 5, 16), (0, 2)),
        ("明个", datetime.date(2024, 5, 16), (0, 2)),
        ("后天", datetime.date(2024, 5, 17), (0, 2)),
        ("后儿个", datetime.date(2024, 5, 17), (0, 3)),
        ("大后天", datetime.date(2024, 5, 18), (0, 3)),
        ("下周一", datetime.date(2024, 5, 20), (0, 3)),
        ("下周日", datetime.date(2024, 5, 26), (0, 3)),
        ("下星期三", datetime.date(2024, 5, 22), (0, 4)),
        ("下礼拜天", datetime.date(2024, 5, 26), (0, 4)),
        ("下个星期二", datetime.date(2024, 5, 21), (0, 5)),
        ("这周五", datetime.date(2024, 5, 17), (0, 3)),
        ("周五", datetime.date(2024, 5, 17), (0, 2)),
        ("星期五", datetime.date(2024, 5, 17), (0, 3)),
        ("礼拜五", datetime.date(2024, 5, 17), (0, 3)),
        ("星期三", datetime.date(2024, 5, 15), (0, 3)),
        ("周一", datetime.date(2024, 5, 20), (0, 2)),
        ("星期天", datetime.date(2024, 5, 19), (0, 3)),
        ("二十号", datetime.date(2024, 5, 20), (0, 3)),
        ("十五号", datetime.date(2024, 5, 15), (0, 3)),
        ("三号", datetime.date(2024, 6, 3), (0, 2)),
        ("二十日", datetime.date(2024, 5, 20), (0, 3)),
        ("下个月三号", datetime.date(2024, 6, 3), (0, 5)),
        ("六月一号", datetime.date(2024, 6, 1), (0, 4)),
        ("十二月三十一日", datetime.date(2024, 12, 31), (0, 7)),
        ("三月八号", datetime.date(2025, 3, 8), (0, 4)),
        ("三天后", datetime.date(2024, 5, 18), (0, 3)),
        ("请帮我约明天上午的理发", datetime.date(2024, 5, 16), (4, 6)),
        ("20号", datetime.date(2024, 5, 20), (0, 3)),
    ],
)
def test_find_date(text: str, expected: datetime.date, span: tuple[int, int]) -> None:
    assert find_date(text, TODAY) == (expected, *span)


def test_find_date_day_past_in_a_short_month_rolls_on() -> None:
    # On 2024-04-05, "31号" cannot be April; May 31 is the next such day.
    assert find_date("三十一号", datetime.date(2024, 4, 5)) == (datetime.date(2024, 5, 31), 0, 4)


def test_find_date_rolls_over_the_year() -> None:
    assert find_date("五号", datetime.date(2024, 12, 20)) == (datetime.date(2025, 1, 5), 0, 2)


@pytest.mark.parametrize(
    "text", ["", "二月三十号", "十三月一号", "三十九号", "hello", "😀", "生日快乐", "一会儿"],
)
def test_find_date_rejects(text: str) -> None:
    assert find_date(text, TODAY) is None


def test_long_input_returns_quickly() -> None:
    long_texts = ["一" * 10_000, "八" * 10_000, "一点" * 5_000, "啊" * 10_000, "周一" * 5_000]
    started = time.perf_counter()
    for text in long_texts:
        find_quantity(text)
        find_clock_time(text)
        find_date(text, TODAY)
    # Generous bound: a quadratic regex would take many seconds here.
    assert time.perf_counter() - started < 2.0
