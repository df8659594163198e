"""Tests of voices.prompts: the bundled prompts, variant rotation, placeholders and spoken times."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.errors import DataError, InputError
from voices.prompts import REQUIRED_KEYS, Prompts, speakable_time

CLOCK = """
clock:
  day_parts:
    - {hours: [0, 11], word: "上午"}
    - {hours: [12, 23], word: "下午"}
  hour: "{hour}点"
  minute_words: {0: "", 30: "半"}
  minute: "{minute}分"
  minute_below_ten: "零{minute}分"
"""

REQUIRED = "".join('  %s: "好。"\n' % key for key in REQUIRED_KEYS if key not in ("wake_ack", "time_now"))


def prompts_from(body: str, clock: str = CLOCK) -> Prompts:
    """Prompts from a YAML fragment of ``prompts:`` entries, completed with the required keys."""
    return Prompts.parse("prompts:\n" + body + REQUIRED + clock, "test.yaml")


BASE = '  wake_ack: ["我在，您说。", "哎，我在。", "我在听。"]\n  time_now: "{elder}，现在是{time}。"\n'


def test_bundled_prompts_load_and_every_one_can_be_said() -> None:
    prompts = Prompts.load()
    assert set(REQUIRED_KEYS) <= set(prompts.keys())
    for key in prompts.keys():
        values = {name: "某某" for name in prompts.placeholders(key)}
        for _ in prompts.variants(key):
            sentence = prompts.text(key, **values)
            assert sentence.strip() and "{" not in sentence
            assert not re.search(r"[A-Za-z]", sentence)  # spoken Chinese only


def test_bundled_examples() -> None:
    prompts = Prompts.load()
    assert prompts.text("wake_ack") == "我在，您说。"
    assert prompts.text("not_understood") == "没听清楚，您再说一遍好吗？"
    assert prompts.text("time_now", elder="张阿姨", time=speakable_time(8, 30)) == "张阿姨，现在是八点半。"


def test_variants_rotate_and_never_repeat_in_a_row() -> None:
    prompts = prompts_from(BASE)
    said = [prompts.text("wake_ack") for _ in range(7)]
    assert said[:3] == ["我在，您说。", "哎，我在。", "我在听。"]
    assert said[3:6] == said[:3]
    assert all(a != b for a, b in zip(said, said[1:]))


def test_placeholders_are_filled_and_extra_values_ignored() -> None:
    prompts = prompts_from(BASE)
    assert prompts.placeholders("time_now") == {"elder", "time"}
    assert prompts.text("time_now", elder="李大爷", time="三点", unused=1) == "李大爷，现在是三点。"


def test_a_missing_value_names_the_placeholder() -> None:
    with pytest.raises(DataError, match=r"'time_now' in test.yaml needs a value for \{time\}"):
        prompts_from(BASE).text("time_now", elder="李大爷")


def test_an_unknown_prompt_is_named() -> None:
    with pytest.raises(DataError, match="no prompt 'sing_a_song'"):
        prompts_from(BASE).text("sing_a_song")


def test_a_missing_required_prompt_is_named() -> None:
    with pytest.raises(DataError, match="lacks the prompt wake_ack"):
        Prompts.parse("prompts:\n" + REQUIRED + '  time_now: "{elder}{time}"\n' + CLOCK, "test.yaml")


@pytest.mark.parametrize(
    "sentence, problem",
    [
        ("{elder，您好", "broken placeholder"),
        ("您好}", "broken placeholder"),
        ("{}您好", "only plain names"),
        ("{0}您好", "only plain names"),
        ("{elder!r}您好", "only plain names"),
        ("{elder:>5}您好", "only plain names"),
        ("{elder.name}您好", "only plain names"),
    ],
)
def test_malformed_placeholders_are_data_errors(sentence: str, problem: str) -> None:
    with pytest.raises(DataError, match="'greeting_x'.*" + problem):
        prompts_from(BASE + '  greeting_x: "%s"\n' % sentence)


def test_variants_must_share_placeholders() -> None:
    with pytest.raises(DataError, match="different placeholders"):
        prompts_from(BASE + '  hello: ["{elder}好", "您好"]\n')


def test_bad_entries_and_bad_yaml_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="must be a sentence"):
        prompts_from(BASE + "  hello: []\n")
    with pytest.raises(DataError, match="lower-case"):
        prompts_from(BASE + '  Hello: "您好"\n')
    with pytest.raises(DataError, match="not valid YAML"):
        Prompts.parse("prompts: [", "broken.yaml")
    with pytest.raises(DataError, match="cannot read prompts file"):
        Prompts.load(tmp_path / "absent.yaml")


def test_clock_must_cover_every_hour_once() -> None:
    gap = CLOCK.replace("[12, 23]", "[13, 23]")
    with pytest.raises(DataError, match="does not cover hour 12"):
        prompts_from(BASE, gap)
    overlap = CLOCK.replace("[12, 23]", "[11, 23]")
    with pytest.raises(DataError, match="hour 11 is repeated"):
        prompts_from(BASE, overlap)
    with pytest.raises(DataError, match=r"clock.minute must contain \{minute\}"):
        prompts_from(BASE, CLOCK.replace('"{minute}分"', '"分"'))


def test_clock_words_come_from_the_data() -> None:
    prompts = prompts_from(BASE)
    assert prompts.speakable_time(8, 30) == "上午八点半"
    assert prompts.speakable_time(14, 2) == "下午二点零二分"


@pytest.mark.parametrize(
    "hour, minute, spoken",
    [
        (8, 30, "八点半"),
        (12, 15, "十二点一刻"),
        (20, 5, "晚上八点零五分"),
        (0, 0, "夜里十二点"),
        (14, 0, "下午两点"),
        (2, 45, "夜里两点三刻"),
        (13, 10, "下午一点十分"),
        (23, 59, "晚上十一点五十九分"),
        (6, 20, "六点二十分"),
        (12, 0, "十二点"),
    ],
)
def test_speakable_time(hour: int, minute: int, spoken: str) -> None:
    assert speakable_time(hour, minute) == spoken


def test_slot_values_and_numbers_are_said_in_words() -> None:
    prompts = Prompts.load()
    assert prompts.name("meal", "lunch") == "午饭"
    assert prompts.name("weekday", "4") == "星期四"
    assert (prompts.count(2), prompts.count(2, measure=False), prompts.count(12)) == ("两", "二", "十二")


@pytest.mark.parametrize("hour, minute", [(24, 0), (-1, 0), (8, 60)])
def test_speakable_time_rejects_impossible_times(hour: int, minute: int) -> None:
    with pytest.raises(InputError, match="hour 0..23 and minute 0..59"):
        speakable_time(hour, minute)
