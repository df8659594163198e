"""Tests for intents.matching: fuzzy pinyin lookup of lexicon phrases in an utterance."""

import pytest

from intents.matching import PhraseIndex, Utterance


@pytest.fixture(scope="module")
def index() -> PhraseIndex:
    return PhraseIndex(["救命", "提醒", "降压药", "二甲双胍", "开", "儿子", "女儿", "牛奶"])


def found(index: PhraseIndex, text: str, tolerant: bool = False) -> dict[str, float]:
    return {index.phrases[h.phrase].text: h.score for h in index.find(Utterance.of(text), tolerant=tolerant)}


def test_exact_and_homophone(index: PhraseIndex) -> None:
    assert found(index, "救命")["救命"] == 1.0
    assert 0.9 < found(index, "救明啊")["救命"] < 1.0     # recognition error, same pinyin
    assert "提醒" in found(index, "题醒我吃药")
    assert "降压药" in found(index, "将压药吃了")


def test_one_wrong_character_in_a_long_phrase(index: PhraseIndex) -> None:
    assert "二甲双胍" in found(index, "二甲双瓜")             # homophone
    assert "二甲双胍" in found(index, "二价双胍")             # near syllable


def test_unrelated_characters_do_not_match(index: PhraseIndex) -> None:
    assert "救命" not in found(index, "就是")
    assert "儿子" not in found(index, "女儿")                 # rapidfuzz alone scores these 86
    assert "女儿" in found(index, "女儿")


def test_single_character_phrases_are_exact(index: PhraseIndex) -> None:
    assert "开" in found(index, "开灯")
    assert "开" not in found(index, "凯灯")


def test_accent_tolerant_mode_accepts_southern_merges(index: PhraseIndex) -> None:
    # n/l on both characters: 「牛奶」 said as 「刘来」
    assert "牛奶" not in found(index, "刘来")
    assert "牛奶" in found(index, "刘来", tolerant=True)
    # one merge is accepted in both modes, with a lower score than a homophone
    assert "女儿" not in found(index, "吕儿")          # strict mode: a merge on a short phrase is not enough
    assert found(index, "吕儿", tolerant=True)["女儿"] < found(index, "女耳")["女儿"]


def test_span_is_reported(index: PhraseIndex) -> None:
    (hit,) = [h for h in index.find(Utterance.of("快救命")) if index.phrases[h.phrase].text == "救命"]
    assert (hit.start, hit.end) == (1, 3)
