"""Tests for intents.simulate: the seeded pinyin-level recognition-error simulator."""

from __future__ import annotations

import itertools
import math
import re
import time

import pytest
import yaml
from pypinyin import Style, lazy_pinyin

from assistant.errors import InputError
from intents.simulate import (
    ErrorSimulator,
    char_error_rate,
    corpus_char_error_rate,
    corrupt_corpus,
    homophones,
    main,
    near_syllables,
)

# Templates expanded over every slot combination: 217 elder-assistant sentences.
CORPUS_YAML = """
templates:
  - "提醒我{time}{action}"
  - "{time}记得{action}"
  - "{person}，{time}记得{action}"
  - "帮我打电话给{person}"
  - "{person}什么时候来看我"
  - "打开{room}的{device}"
  - "关掉{room}的{device}"
slots:
  time: [明天早上八点, 今天下午三点, 晚上九点半, 中午十二点, 后天上午]
  action: [吃药, 量血压, 喝水, 去医院复查, 给花浇水]
  person: [儿子, 女儿, 老伴, 孙子, 社区医生]
  room: [客厅, 卧室, 厨房, 卫生间]
  device: [灯, 空调, 电视, 窗帘]
"""

HANZI = re.compile("[\u4e00-\u9fff]")


def build_corpus() -> list[str]:
    """Expand the YAML templates over all combinations of their slot values."""
    data = yaml.safe_load(CORPUS_YAML)
    sentences: list[str] = []
    for template in data["templates"]:
        names = re.findall(r"\{(\w+)\}", template)
        for values in itertools.product(*(data["slots"][n] for n in names)):
            sentences.append(template.format(**dict(zip(names, values))))
    return sentences


CORPUS = build_corpus()


def toneless(text: str) -> list[str]:
    """Toneless pinyin of each character, read in context."""
    return lazy_pinyin(text, style=Style.NORMAL)


def test_corpus_has_about_200_sentences() -> None:
    assert 190 <= len(CORPUS) <= 230


def test_rate_zero_is_identity() -> None:
    assert corrupt_corpus(CORPUS, rate=0.0, seed=7) == CORPUS


def test_rate_one_homophones_only_changes_every_char_keeping_pinyin() -> None:
    simulator = ErrorSimulator(1.0, seed=3, near_share=0.0, deletion_share=0.0)
    kept: set[str] = set()
    for sentence in CORPUS:
        corrupted = simulator.corrupt(sentence)
        assert len(corrupted) == len(sentence)
        for original, replaced, syllable in zip(sentence, corrupted, toneless(sentence)):
            if not HANZI.match(original):
                assert replaced == original
            elif replaced == original:
                kept.add(original)
            elif len(homophones(syllable)) > 1:
                assert toneless(replaced) == [syllable], (sentence, corrupted)
            else:
                # No other common homophone (女 nv): the documented fallback is a near syllable.
                assert toneless(replaced)[0] in near_syllables(syllable), (sentence, corrupted)
    # 给 (gei) and 么 (me) are alone in their syllable and have no near syllable.
    assert kept == {"给", "么"}


@pytest.mark.parametrize(("char", "syllable"), [("给", "gei"), ("么", "me")])
def test_lonely_syllable_is_kept(char: str, syllable: str) -> None:
    assert homophones(syllable) == (char,)
    assert near_syllables(syllable) == ()
    assert ErrorSimulator(1.0, seed=1, deletion_share=0.0).corrupt(char) == char


def test_lookup_helpers() -> None:
    assert "救" in homophones("jiu") and "就" in homophones("jiu")
    assert set(near_syllables("zhi")) == {"zi"}
    assert set(near_syllables("lan")) == {"nan", "lang"}
    assert homophones("xyz") == () and near_syllables("xyz") == ()


def test_homophone_of_jiuming() -> None:
    corrupted = ErrorSimulator(1.0, seed=1, near_share=0.0, deletion_share=0.0).corrupt("救命")
    assert corrupted != "救命"
    assert toneless(corrupted) == ["jiu", "ming"]


@pytest.mark.parametrize(("char", "allowed"), [
    ("命", {"min"}),             # ing -> in
    ("三", {"shan", "sang"}),    # s -> sh, an -> ang
    ("女", {"lv"}),              # n -> l
    ("风", {"heng", "fen"}),     # f -> h, eng -> en
])
def test_near_share_one_uses_near_syllables(char: str, allowed: set[str]) -> None:
    simulator = ErrorSimulator(1.0, seed=5, near_share=1.0, deletion_share=0.0)
    for _ in range(20):
        (syllable,) = toneless(simulator.corrupt(char))
        assert syllable in allowed


def test_near_falls_back_to_homophone_when_no_near_syllable_exists() -> None:
    # "jiu" has no near syllable (no zh/ch/sh/n/f initial, no paired final).
    simulator = ErrorSimulator(1.0, seed=2, near_share=1.0, deletion_share=0.0)
    corrupted = simulator.corrupt("救")
    assert corrupted != "救"
    assert toneless(corrupted) == ["jiu"]


def test_deletion_share_one_drops_chinese_and_keeps_the_rest() -> None:
    simulator = ErrorSimulator(1.0, seed=4, near_share=0.0, deletion_share=1.0)
    assert simulator.corrupt("打开TV，好吗? 😀") == "TV，? 😀"


def test_ascii_and_emoji_untouched() -> None:
    text = "Call 110 now! 😀🙏 ok-123 ＡＢＣ"
    simulator = ErrorSimulator(1.0, seed=9)
    assert simulator.corrupt(text) == text


def test_mixed_text_keeps_non_chinese_in_place() -> None:
    text = "提醒我8:30吃药 💊 OK"
    corrupted = ErrorSimulator(1.0, seed=11, deletion_share=0.0).corrupt(text)
    assert len(corrupted) == len(text)
    for original, replaced in zip(text, corrupted):
        if not HANZI.match(original):
            assert replaced == original


def test_same_seed_same_output_over_a_sequence_of_calls() -> None:
    first = ErrorSimulator(0.3, seed=42)
    second = ErrorSimulator(0.3, seed=42)
    assert [first.corrupt(s) for s in CORPUS] == [second.corrupt(s) for s in CORPUS]
    assert corrupt_corpus(CORPUS, 0.3, 42) == corrupt_corpus(CORPUS, 0.3, 42)


def test_different_seed_different_output() -> None:
    assert corrupt_corpus(CORPUS, 0.3, 1) != corrupt_corpus(CORPUS, 0.3, 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_realised_cer_is_close_to_rate(seed: int) -> None:
    corrupted = corrupt_corpus(CORPUS, rate=0.1, seed=seed)
    cer = corpus_char_error_rate(CORPUS, corrupted)
    assert 0.07 <= cer <= 0.13


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan, math.inf, "0.1", None, True])
def test_invalid_rate_raises_input_error(rate: object) -> None:
    with pytest.raises(InputError, match="rate"):
        ErrorSimulator(rate, seed=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"near_share": -0.5}, "near_share"),
    ({"deletion_share": 2.0}, "deletion_share"),
    ({"near_share": 0.7, "deletion_share": 0.5}, "must not exceed 1"),
])
def test_invalid_shares_raise_input_error(kwargs: dict[str, float], word: str) -> None:
    with pytest.raises(InputError, match=word):
        ErrorSimulator(0.1, seed=1, **kwargs)


def test_invalid_seed_and_text_raise_input_error() -> None:
    with pytest.raises(InputError, match="seed"):
        ErrorSimulator(0.1, seed="one")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="str"):
        ErrorSimulator(0.1, seed=1).corrupt(b"abc")  # type: ignore[arg-type]


def test_error_message_is_one_sentence() -> None:
    with pytest.raises(InputError) as caught:
        ErrorSimulator(3, seed=1)
    message = str(caught.value)
    assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message


def test_ten_thousand_chars_is_fast() -> None:
    text = ("".join(CORPUS) * 10)[:10_000]
    simulator = ErrorSimulator(0.1, seed=8)
    start = time.perf_counter()
    corrupted = simulator.corrupt(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert 0.07 <= char_error_rate(text, corrupted) <= 0.13


def test_char_error_rate() -> None:
    assert char_error_rate("救命", "救命") == 0.0
    assert char_error_rate("救命", "救明") == 0.5
    assert char_error_rate("提醒我", "提醒") == pytest.approx(1 / 3)
    assert char_error_rate("", "") == 0.0
    assert char_error_rate("", "啊") == 1.0


def test_corpus_char_error_rate_weights_by_length() -> None:
    cer = corpus_char_error_rate(["救命", "提醒我吃药"], ["救明", "提醒我吃药"])
    assert cer == pytest.approx(1 / 7)
    with pytest.raises(InputError, match="same length"):
        corpus_char_error_rate(["救命"], [])


def test_cli_prints_one_line_per_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rate", "0", "--seed", "1", "救命", "提醒我吃药"]) == 0
    assert capsys.readouterr().out == "救命\n提醒我吃药\n"


def test_cli_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--rate", "0.5", "--seed", "3", *CORPUS[:5]])
    first = capsys.readouterr().out
    main(["--rate", "0.5", "--seed", "3", *CORPUS[:5]])
    assert capsys.readouterr().out == first
    assert len(first.splitlines()) == 5


def test_cli_rejects_bad_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rate", "2", "救命"]) == 2
    assert "rate" in capsys.readouterr().err
