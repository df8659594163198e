"""Find lexicon phrases inside an utterance by comparing tone-less pinyin, character by character.

Every phrase of every lexicon goes into one :class:`PhraseIndex`. Finding them in an utterance is
one pass over its syllables: each syllable (accent-folded) votes for the phrases that contain it at
a compatible offset, and only the alignments with enough votes are scored in full with
:func:`intents.pinyin.char_similarity`. A phrase of one character must match exactly; two characters
tolerate homophones (and, in accent-tolerant mode, southern merges); three tolerate one accent
merge; four, one wrong but similar-sounding character; from five on, any one wrong character.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from intents.pinyin import char_similarity, fold, syllables

# Minimum mean character similarity for a phrase of n characters to count as present.
_MIN_SCORE = {1: 1.0, 2: 0.85, 3: 0.82, 4: 0.8}
_MIN_SCORE_LONG = 0.76


@dataclass(frozen=True)
class Utterance:
    """A normalised utterance with its per-character pinyin, computed once and shared by all lookups."""

    text: str
    syls: tuple[str, ...]
    folds: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> Utterance:
        """Compute the pinyin views of ``text`` (already normalised)."""
        syls = syllables(text)
        return cls(text=text, syls=syls, folds=tuple(fold(s) for s in syls))


@dataclass(frozen=True)
class Hit:
    """A phrase found at ``text[start:end]`` with mean similarity ``score`` (1.0 = exact)."""

    phrase: int
    start: int
    end: int
    score: float


def _min_score(length: int) -> float:
    return _MIN_SCORE.get(length, _MIN_SCORE_LONG)


def _votes_needed(length: int) -> int:
    """Folded syllables that must agree before an alignment is worth scoring."""
    return length - length // 3


class PhraseIndex:
    """All phrases of the lexicons, indexed by folded syllable for fast fuzzy lookup."""

    def __init__(self, phrases: Sequence[str]) -> None:
        """Precompute the pinyin of every phrase (done once at load time)."""
        self.phrases: tuple[Utterance, ...] = tuple(Utterance.of(p) for p in phrases)
        self._by_fold: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._exact_only: set[int] = set()
        for pid, phrase in enumerate(self.phrases):
            if len(phrase.text) == 1:
                self._exact_only.add(pid)
            for pos, folded in enumerate(phrase.folds):
                self._by_fold[folded].append((pid, pos))

    def find(self, utt: Utterance, *, tolerant: bool = False) -> list[Hit]:
        """Every phrase occurrence in ``utt`` scoring at least its length's threshold."""
        votes: dict[tuple[int, int], int] = defaultdict(int)
        n = len(utt.folds)
        for i, folded in enumerate(utt.folds):
            for pid, pos in self._by_fold.get(folded, ()):
                votes[(pid, i - pos)] += 1
        hits: list[Hit] = []
        for (pid, start), count in votes.items():
            phrase = self.phrases[pid]
            length = len(phrase.text)
            end = start + length
            if start < 0 or end > n or count < _votes_needed(length):
                continue
            if pid in self._exact_only:
                if utt.text[start] == phrase.text:
                    hits.append(Hit(pid, start, end, 1.0))
                continue
            score = self._score(phrase, utt, start, tolerant)
            if score >= _min_score(length):
                hits.append(Hit(pid, start, end, score))
        return hits

    @staticmethod
    def _score(phrase: Utterance, utt: Utterance, start: int, tolerant: bool) -> float:
        total = 0.0
        for k, char in enumerate(phrase.text):
            total += char_similarity(char, phrase.syls[k], utt.text[start + k], utt.syls[start + k],
                                     tolerant=tolerant)
        return total / len(phrase.text)
