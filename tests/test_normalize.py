"""Tests for intents.normalize: width, script, punctuation, numerals, fillers and dialect words."""

import pytest

from intents.normalize import MAX_CHARS, DialectWord, Normalizer


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    dialect = [DialectWord("俺", "我", "henan"), DialectWord("晌午饭", "午饭", "henan"),
               DialectWord("晌午", "中午", "henan"), DialectWord("中", "好", "henan", whole=True)]
    return Normalizer(fillers="啊呀嘛哈吧", protected=["干嘛"], dialect=dialect)


@pytest.mark.parametrize(("raw", "expected"), [
    ("ＡＢＣ１２", "abc十二"),                      # full width → half width, digits → numerals
    ("電視別關，救命啊！", "电视别关救命"),          # traditional → simplified, punctuation, filler
    ("订 2 份 午饭", "订二份午饭"),
    ("8:30 提醒我", "八点三十分提醒我"),
    ("9:05", "九点零五分"),
    ("12:00", "十二点"),
    ("打120", "打一二零"),                          # hotlines and phone numbers are read digit by digit
    ("没事没事，好着吧", "没事好着"),                # repeated words collapse
    ("奶奶天天来", "奶奶天天来"),                    # … but not doubled characters
    ("你干嘛呀", "你干嘛"),                        # protected word keeps its filler
    ("啊", "啊"),                                  # a lone filler is the whole utterance (「啊？」)
    ("俺晌午饭要两份", "我午饭要两份"),              # longest dialect word first
    ("晌午吃啥", "中午吃啥"),
    ("中", "好"),                                  # whole-utterance dialect word
    ("中午", "中午"),                              # … is not applied inside other words
    ("😀🙂", ""),
    ("", ""),
])
def test_normalise(norm: Normalizer, raw: str, expected: str) -> None:
    assert norm(raw) == expected


def test_long_input_is_truncated(norm: Normalizer) -> None:
    text = "".join(chr(0x4E00 + i) for i in range(10_000))
    assert len(norm(text)) == MAX_CHARS


def test_control_characters_and_binary_are_dropped(norm: Normalizer) -> None:
    assert norm("\x00\x07救命\ufffd\x1b") == "救命"
