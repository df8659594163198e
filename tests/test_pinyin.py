"""Tests for intents.pinyin: per-character syllables, accent folding and character similarity."""

import pytest

from intents.pinyin import (FOLDED_STRICT, FOLDED_TOLERANT, SAME_CHAR, SAME_PINYIN, char_similarity,
                            fold, syllables)


def test_one_syllable_per_character() -> None:
    text = "我要2份abc饭😀"
    assert len(syllables(text)) == len(text)
    assert syllables("不行银行") == ("bu", "xing", "yin", "hang")  # polyphones from context


@pytest.mark.parametrize(("syllable", "folded"), [
    ("zhang", "zan"), ("chi", "ci"), ("shi", "si"), ("nai", "lai"), ("hu", "fu"),
    ("ying", "yin"), ("feng", "fen"), ("sheng", "sen"), ("zi", "zi"), ("er", "er"),
])
def test_fold(syllable: str, folded: str) -> None:
    assert fold(syllable) == folded


def test_similarity_levels() -> None:
    assert char_similarity("命", "ming", "命", "ming", tolerant=False) == SAME_CHAR
    assert char_similarity("命", "ming", "明", "ming", tolerant=False) == SAME_PINYIN
    assert char_similarity("是", "shi", "四", "si", tolerant=False) == FOLDED_STRICT
    assert char_similarity("是", "shi", "四", "si", tolerant=True) == FOLDED_TOLERANT
    assert char_similarity("儿", "er", "女", "nv", tolerant=True) < 0.5
    assert char_similarity("a", "a", "b", "b", tolerant=False) < 0.5
