"""Seeded simulation of Mandarin speech-recognition errors, at the pinyin level.

Tests and benchmarks use this to measure how intent accuracy degrades when the
recogniser mishears. Real Mandarin ASR errors are mostly homophones (the same
toneless syllable, which also covers tone confusions), then near-homophones
(zh/z, ch/c, sh/s, n/l, f/h; an/ang, en/eng, in/ing and other similar finals),
and occasionally dropped characters. Replacements are drawn from the GB2312
level-1 characters (the 3755 most common hanzi), indexed by their most common
toneless reading; the index is built on first use, in memory, from pypinyin.

Manual use::

    python -m intents.simulate --rate 0.1 --seed 1 TEXT...
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from pypinyin import Style, lazy_pinyin
from rapidfuzz.distance import Levenshtein

from assistant.errors import InputError, YinlingError

__all__ = [
    "ErrorSimulator",
    "char_error_rate",
    "corpus_char_error_rate",
    "corrupt_corpus",
    "homophones",
    "main",
    "near_syllables",
]

# GB2312 level 1 occupies rows 0xB0..0xD7; the last row stops at cell 0xF9.
_LEVEL1_ROWS = range(0xB0, 0xD8)
_LAST_ROW_END = 0xF9

# Toneless initials, longest first so "zh" wins over "z". y/w count as initials
# so that final swaps (yan/yang, yin/ying, wan/wang) work on zero-initial syllables.
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k",
             "h", "j", "q", "x", "r", "z", "c", "s", "y", "w")

# Pairs that Mandarin recognisers (and southern speakers) confuse; symmetric.
_NEAR_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"), ("f", "h"))
_NEAR_FINALS = (("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"),
                ("uan", "uang"), ("eng", "ong"), ("ie", "ue"))

# Characters treated as Chinese: CJK unified ideographs (basic, extension A,
# compatibility block, supplementary planes). Everything else is kept as is.
_HANZI = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def _no_pinyin(chars: str) -> list[str]:
    """Give every character pypinyin cannot read an empty syllable, keeping alignment."""
    return [""] * len(chars)


@functools.cache
def _common_chars() -> tuple[str, ...]:
    """The GB2312 level-1 hanzi, in code order."""
    chars: list[str] = []
    for row in _LEVEL1_ROWS:
        end = _LAST_ROW_END if row == _LEVEL1_ROWS[-1] else 0xFE
        chars.extend(bytes((row, cell)).decode("gb2312") for cell in range(0xA1, end + 1))
    return tuple(chars)


@functools.cache
def _syllable_index() -> Mapping[str, tuple[str, ...]]:
    """Map each toneless syllable to the common characters whose main reading it is."""
    chars = _common_chars()
    # A list input is read as pre-segmented words, so each char gets its own main reading.
    syllables = lazy_pinyin(list(chars), style=Style.NORMAL, errors=_no_pinyin)
    index: dict[str, list[str]] = defaultdict(list)
    for char, syllable in zip(chars, syllables, strict=True):
        if syllable:
            index[syllable].append(char)
    return MappingProxyType({s: tuple(cs) for s, cs in index.items()})


def _split(syllable: str) -> tuple[str, str]:
    """Split a toneless syllable into (initial, final); the initial may be empty."""
    for initial in _INITIALS:
        if syllable.startswith(initial) and len(syllable) > len(initial):
            return initial, syllable[len(initial):]
    return "", syllable


def _swaps(pairs: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, ...]]:
    """Turn symmetric confusion pairs into a lookup from one part to its confusions."""
    table: dict[str, list[str]] = defaultdict(list)
    for a, b in pairs:
        table[a].append(b)
        table[b].append(a)
    return {k: tuple(v) for k, v in table.items()}


@functools.cache
def _near_syllables() -> Mapping[str, tuple[str, ...]]:
    """Map each syllable to the existing syllables one initial or final swap away."""
    index = _syllable_index()
    initial_swaps = _swaps(_NEAR_INITIALS)
    final_swaps = _swaps(_NEAR_FINALS)
    near: dict[str, tuple[str, ...]] = {}
    for syllable in index:
        initial, final = _split(syllable)
        candidates = [i + final for i in initial_swaps.get(initial, ())]
        candidates += [initial + f for f in final_swaps.get(final, ())]
        # Only syllables that really occur have characters to offer.
        found = tuple(dict.fromkeys(c for c in candidates if c in index and c != syllable))
        if found:
            near[syllable] = found
    return MappingProxyType(near)


def homophones(syllable: str) -> tuple[str, ...]:
    """The common characters whose main toneless reading is ``syllable`` (may be empty)."""
    return _syllable_index().get(syllable, ())


def near_syllables(syllable: str) -> tuple[str, ...]:
    """The existing syllables one confusable initial or final away from ``syllable``."""
    return _near_syllables().get(syllable, ())


def _check_share(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number in [0, 1], else raise InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number between 0 and 1, got {value!r}.")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{name} must be between 0 and 1, got {value!r}.")
    return float(value)


class ErrorSimulator:
    """Corrupts Chinese text the way a speech recogniser mishears it, reproducibly.

    Each Chinese character is independently replaced with probability ``rate``.
    A replaced character becomes, with probability ``near_share``, a character
    of a near syllable; with probability ``deletion_share`` it is dropped;
    otherwise it becomes another character with the same toneless pinyin.
    A homophone falls back to a near syllable when none exists and vice versa;
    a character with neither (给 gei, 日 ri: alone in their syllable with no near
    one) is kept. Non-Chinese characters are never touched.
    The output depends only on (rate, seed, shares) and the sequence of calls.
    """

    def __init__(self, rate: float, seed: int, *, near_share: float = 0.3,
                 deletion_share: float = 0.05) -> None:
        """Validate the probabilities and seed the private random generator."""
        self.rate = _check_share("rate", rate)
        self.near_share = _check_share("near_share", near_share)
        self.deletion_share = _check_share("deletion_share", deletion_share)
        if self.near_share + self.deletion_share > 1.0:
            raise InputError(
                f"near_share + deletion_share must not exceed 1, got "
                f"{self.near_share} + {self.deletion_share}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InputError(f"seed must be an integer, got {seed!r}.")
        self.seed = seed
        self._random = random.Random(seed)

    def __repr__(self) -> str:
        """Show the parameters, which with the call history fix the output."""
        return (f"ErrorSimulator(rate={self.rate}, seed={self.seed}, "
                f"near_share={self.near_share}, deletion_share={self.deletion_share})")

    def corrupt(self, text: str) -> str:
        """Return ``text`` with simulated recognition errors on its Chinese characters."""
        if not isinstance(text, str):
            raise InputError(f"corrupt() needs a str, got {type(text).__name__}.")
        if self.rate == 0.0 or not _HANZI.search(text):
            return text
        # Read the whole text at once so heteronyms get their in-context reading (银行 → hang).
        syllables = lazy_pinyin(text, style=Style.NORMAL, errors=_no_pinyin)
        if len(syllables) != len(text):
            syllables = [lazy_pinyin(c, style=Style.NORMAL, errors=_no_pinyin)[0] for c in text]
        out: list[str] = []
        for char, syllable in zip(text, syllables, strict=True):
            if _HANZI.match(char) and self._random.random() < self.rate:
                out.append(self._replace(char, syllable))
            else:
                out.append(char)
        return "".join(out)

    def _replace(self, char: str, syllable: str) -> str:
        """Pick the misheard form of one character: a homophone, a near one, or nothing."""
        roll = self._random.random()
        if roll < self.deletion_share:
            return ""
        if roll < self.deletion_share + self.near_share:
            return self._near(char, syllable) or self._homophone(char, syllable) or char
        return self._homophone(char, syllable) or self._near(char, syllable) or char

    def _homophone(self, char: str, syllable: str) -> str | None:
        """Another common character read ``syllable``, or None if there is none."""
        candidates = [c for c in homophones(syllable) if c != char]
        return self._random.choice(candidates) if candidates else None

    def _near(self, char: str, syllable: str) -> str | None:
        """A common character of a syllable near ``syllable``, or None if there is none."""
        near = near_syllables(syllable)
        if not near:
            return None
        # Choose the syllable first so rare syllables are not drowned by crowded ones.
        chosen = self._random.choice(near)
        candidates = [c for c in homophones(chosen) if c != char]
        return self._random.choice(candidates) if candidates else None


def corrupt_corpus(texts: Iterable[str], rate: float, seed: int, *,
                   near_share: float = 0.3, deletion_share: float = 0.05) -> list[str]:
    """Corrupt every text in order with one simulator, so the result is reproducible."""
    simulator = ErrorSimulator(rate, seed, near_share=near_share,
                               deletion_share=deletion_share)
    return [simulator.corrupt(text) for text in texts]


def char_error_rate(ref: str, hyp: str) -> float:
    """Character edit distance from ``ref`` to ``hyp`` divided by ``len(ref)``.

    An empty reference gives 0.0 when the hypothesis is empty too, else 1.0.
    """
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


def corpus_char_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Total character edits over total reference characters, for paired corpora."""
    if len(refs) != len(hyps):
        raise InputError(
            f"refs and hyps must be the same length, got {len(refs)} and {len(hyps)}.")
    edits = sum(Levenshtein.distance(r, h) for r, h in zip(refs, hyps, strict=True))
    total = sum(len(r) for r in refs)
    if total == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / total


def main(argv: Sequence[str] | None = None) -> int:
    """Print each TEXT (or each stdin line, if none are given) with simulated errors."""
    parser = argparse.ArgumentParser(
        prog="python -m intents.simulate",
        description="Corrupt Chinese text with seeded, pinyin-level recognition errors.")
    parser.add_argument("--rate", type=float, default=0.1,
                        help="probability that each Chinese character is misheard (0..1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--near-share", type=float, default=0.3,
                        help="share of errors using a near syllable (0..1)")
    parser.add_argument("--deletion-share", type=float, default=0.05,
                        help="share of errors that drop the character (0..1)")
    parser.add_argument("text", nargs="*", metavar="TEXT",
                        help="texts to corrupt; read lines from stdin when omitted")
    args = parser.parse_args(argv)
    try:
        simulator = ErrorSimulator(args.rate, args.seed, near_share=args.near_share,
                                   deletion_share=args.deletion_share)
    except YinlingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lines = args.text or (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        print(simulator.corrupt(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
