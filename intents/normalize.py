"""Normalise what the recogniser (or a typing family member) produced before matching.

Steps, in order: Unicode NFKC (full-width → half-width), traditional → simplified (OpenCC),
control characters and punctuation dropped, clock times and Arabic numerals written as Chinese
numerals (``8:30`` → 八点三十分, ``2份`` → 二份), filler particles removed (啊 呀 嘛 哈 …), and
dialect words rewritten into Mandarin (俺 → 我, 晌午饭 → 午饭). Word lists are data
(``data/normalize.yaml`` and ``data/dialects/*.yaml``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cn2an
import opencc

MAX_CHARS = 200  # longer input is truncated: nobody speaks a 200-character request
_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})")
_DIGITS = re.compile(r"\d+")
_REPEATS = re.compile(r"(.{2,4}?)\1+")  # 没事没事 → 没事, 收拾收拾 → 收拾 (not 奶奶, 天天)
_DROP = re.compile(r"[\W_]+", re.UNICODE)  # punctuation, symbols and spaces, after NFKC


@dataclass(frozen=True)
class DialectWord:
    """One dialect word and its Mandarin rewriting; ``whole`` words apply only to a whole utterance."""

    word: str
    mandarin: str
    group: str
    whole: bool = False


def _alternation(words: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted(set(words), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _digits_to_chinese(match: re.Match[str]) -> str:
    """Small numbers as counted (12 → 十二); three digits or more as read out (120 → 一二零, 2026 → 二零二六)."""
    digits = match.group()
    if len(digits) <= 2:
        return cn2an.an2cn(str(int(digits)))
    return "".join("零一二三四五六七八九"[int(d)] for d in digits)


def _clock_to_chinese(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    spoken = cn2an.an2cn(str(hour)) + "点"
    if minute:
        spoken += ("零" if minute < 10 else "") + cn2an.an2cn(str(minute)) + "分"
    return spoken


class Normalizer:
    """Turns raw text into the canonical form the matcher works on."""

    def __init__(self, fillers: Iterable[str], protected: Iterable[str],
                 dialect: Iterable[DialectWord]) -> None:
        """``protected`` words keep their filler characters (干嘛 keeps 嘛)."""
        self._t2s = opencc.OpenCC("t2s")
        self._fillers = re.compile("[" + re.escape("".join(set(fillers))) + "]") if fillers else None
        self._protected = _alternation(protected)
        words = list(dialect)
        self._whole: Mapping[str, str] = {w.word: w.mandarin for w in words if w.whole}
        self._inline: Mapping[str, str] = {w.word: w.mandarin for w in words if not w.whole}
        self._inline_re = _alternation(self._inline)

    def clean(self, text: str) -> str:
        """Width, script, punctuation and numerals: everything except the word-level rewrites."""
        # lone surrogates (from undecodable bytes) cannot be encoded for OpenCC: drop them
        text = text[: MAX_CHARS * 2].encode("utf-8", "ignore").decode("utf-8")
        text = unicodedata.normalize("NFKC", text)
        text = self._t2s.convert(text)
        text = _CLOCK.sub(_clock_to_chinese, text)
        text = _DROP.sub("", text).lower()
        text = _DIGITS.sub(_digits_to_chinese, text)
        return text[:MAX_CHARS]

    def drop_fillers(self, text: str) -> str:
        """Remove filler particles, except inside protected words and when nothing else is left."""
        if self._fillers is None:
            return text
        if self._protected is None:
            stripped = self._fillers.sub("", text)
        else:
            parts = []
            last = 0
            for match in self._protected.finditer(text):
                parts.append(self._fillers.sub("", text[last:match.start()]))
                parts.append(match.group())
                last = match.end()
            parts.append(self._fillers.sub("", text[last:]))
            stripped = "".join(parts)
        return stripped or text

    def rewrite_dialect(self, text: str) -> str:
        """Replace dialect words by their Mandarin equivalents (longest word first)."""
        if self._inline_re is None:
            return text
        return self._inline_re.sub(lambda m: self._inline[m.group()], text)

    def lexicon_form(self, phrase: str) -> str:
        """A lexicon phrase in the form utterances take (no whole-utterance rewrites)."""
        return self.rewrite_dialect(_REPEATS.sub(r"\1", self.drop_fillers(self.clean(phrase))))

    def __call__(self, text: str) -> str:
        """The full normalisation used before matching."""
        text = self.drop_fillers(self.clean(text))
        if text in self._whole:
            return self._whole[text]
        text = self.rewrite_dialect(_REPEATS.sub(r"\1", text))
        return self._whole.get(text, text)
