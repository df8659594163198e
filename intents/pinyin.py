"""Tone-less pinyin for matching, with the accent folds of southern Mandarin.

A recogniser's typical error is a homophone (救命 → 救明): identical once tones are dropped.
Speakers from the south also merge zh/z, ch/c, sh/s, n/l, f/h and the nasal finals
an/ang, en/eng, in/ing; :func:`fold` maps each syllable onto one representative of its merge
class so that 「四十」 and 「是时」 or 「牛奶」 and 「刘来」 compare equal in accent-tolerant mode.
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import lazy_pinyin
from rapidfuzz.distance import Levenshtein

# Similarity of two aligned characters, from exact to unrelated (see :func:`char_similarity`).
SAME_CHAR = 1.0
SAME_PINYIN = 0.96
FOLDED_STRICT = 0.6  # same syllable after accent folding, normal mode: one fold per phrase is fine
FOLDED_TOLERANT = 0.94  # same syllable after accent folding, accent-tolerant mode
NEAR_FACTOR = 0.55  # weight of the edit-distance similarity of unrelated syllables

_INITIAL_FOLDS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"), ("h", "f"))
_FINAL_FOLDS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def _char_list(run: str) -> list[str]:
    """pypinyin error callback: keep each non-Chinese character as its own token."""
    return list(run)


def syllables(text: str) -> tuple[str, ...]:
    """Tone-less pinyin of ``text``, one token per character (non-Chinese characters kept as is).

    Polyphones are resolved by pypinyin's phrase dictionary (不行 → bu xing, 银行 → yin hang).
    """
    return tuple(lazy_pinyin(text, errors=_char_list))


@lru_cache(maxsize=4096)
def fold(syllable: str) -> str:
    """Map a tone-less syllable onto its southern-accent merge class (``zhang`` → ``zan``)."""
    for src, dst in _INITIAL_FOLDS:
        if syllable.startswith(src) and len(syllable) > len(src):
            syllable = dst + syllable[len(src):]
            break
    for src, dst in _FINAL_FOLDS:
        if syllable.endswith(src):
            syllable = syllable[: -len(src)] + dst
            break
    return syllable


def char_similarity(char_a: str, syl_a: str, char_b: str, syl_b: str, *, tolerant: bool) -> float:
    """How likely ``char_b`` is a misrecognition (or accent variant) of ``char_a``, in 0..1."""
    if char_a == char_b:
        return SAME_CHAR
    if syl_a == syl_b and syl_a != char_a:  # never count two different symbols as homophones
        return SAME_PINYIN
    if fold(syl_a) == fold(syl_b) and syl_a.isascii() and syl_b.isascii():
        return FOLDED_TOLERANT if tolerant else FOLDED_STRICT
    return NEAR_FACTOR * Levenshtein.normalized_similarity(syl_a, syl_b)
