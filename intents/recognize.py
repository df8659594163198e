"""The intent matcher: normalised text → intent, confidence and canonical slots (CONTRACTS.md §2).

How a decision is made:
1. normalise (:mod:`intents.normalize`) and look up every lexicon phrase in one pass over the
   tone-less pinyin (:mod:`intents.matching`);
2. drop hits hidden inside a blocker word (电视剧 hides 电视) and hits right after a negator
   (「不用叫救护车」);
3. an emergency cue or an emergency slot value (摔倒, 胸口疼, 救护车) makes the answer
   ``call_help`` with urgency ``emergency``, whatever else was said;
4. otherwise every intent is scored from its cues and its slot rules; the best wins if it reaches
   ``min_confidence``, else the answer is ``none``;
5. the winner's slots are filled from the lexicon hits and from :mod:`intents.slots`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from intents import lexicon as lexicon_mod
from intents.lexicon import Lexicon
from intents.matching import Hit, Utterance
from intents.slots import SlotFinder, SlotHit

logger = logging.getLogger(__name__)

_LENGTH_BONUS = 0.004  # per matched character: the more specific cue wins a tie
_SUPPORT_BONUS = 0.05  # per extra piece of evidence for the same intent
_MAX_SUPPORT = 2
_FOCUS_BONUS = 0.1  # for the cue right after a request word (帮我, 给我 …)
_FOCUS_GAP = range(0, 3)  # characters allowed between the request word and the cue


@dataclass(frozen=True)
class IntentResult:
    """One understood utterance: intent name, confidence in 0..1 and canonical slots."""

    text: str
    intent: str
    confidence: float
    slots: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Wire form, exactly CONTRACTS.md §1; internal slots (leading ``_``) stay inside."""
        return {"text": self.text, "intent": self.intent, "confidence": round(self.confidence, 3),
                "slots": {k: v for k, v in self.slots.items() if not k.startswith("_")}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IntentResult:
        """Inverse of :meth:`to_json`."""
        return cls(text=str(data["text"]), intent=str(data["intent"]),
                   confidence=float(data["confidence"]), slots=dict(data.get("slots", {})))


class _Live(NamedTuple):
    """A lexicon hit that survived the blockers, with its owner; ``negated`` if a negator precedes it."""

    hit: Hit
    owner: lexicon_mod.Owner
    negated: bool


@dataclass
class _Evidence:
    score: float = 0.0
    support: int = 0
    slots: dict[str, str] = field(default_factory=dict)

    def add(self, score: float, slots: tuple[tuple[str, str], ...] = ()) -> None:
        if score > self.score:
            if self.score > 0:
                self.support += 1
            self.score = score
            self.slots.update(slots)
        else:
            self.support += 1
            for key, value in slots:
                self.slots.setdefault(key, value)

    @property
    def total(self) -> float:
        return self.score + _SUPPORT_BONUS * min(self.support, _MAX_SUPPORT)


class Recognizer:
    """Parses text into an :class:`IntentResult`; build once with :meth:`load`, then call :meth:`parse`."""

    def __init__(self, lexicon: Lexicon, *, accent_tolerant: bool = False,
                 min_confidence: float | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        """``today`` is injected so that relative dates (明天, 下周三) are testable.

        ``min_confidence`` overrides the data's threshold below which the answer is ``none``.
        """
        self.lexicon = lexicon
        self.accent_tolerant = accent_tolerant
        self.min_confidence = lexicon.min_confidence if min_confidence is None else min_confidence
        self._today = today
        self._slot_finder = SlotFinder(lexicon)
        negators = [p.text for pid, p in enumerate(lexicon.index.phrases)
                    if any(o.kind == "negator" for o in lexicon.owners[pid])]
        # Phrases that begin with a negator themselves (不舒服, 没听清) are never negated by it.
        self._negative_phrases = frozenset(
            pid for pid, p in enumerate(lexicon.index.phrases) if p.text.startswith(tuple(negators)))
        self._slot_only_cues = tuple(
            i for i, cue in enumerate(lexicon.cues) if all(part.startswith("<") for part in cue.parts))
        # Cues that contain a negator (「不要 + 提醒」) mean the negation; their parts are not negated.
        self._negating_cues = frozenset(
            i for i, cue in enumerate(lexicon.cues) if any(part.startswith(tuple(negators)) for part in cue.parts))

    @classmethod
    def load(cls, data_dir: Path | None = None, *, accent_tolerant: bool = False,
             min_confidence: float | None = None,
             today: Callable[[], dt.date] = dt.date.today) -> Recognizer:
        """Load the bundled intent data (or ``data_dir``) and precompute pinyin."""
        return cls(lexicon_mod.load(data_dir), accent_tolerant=accent_tolerant,
                   min_confidence=min_confidence, today=today)

    def parse(self, text: str) -> IntentResult:
        """Understand one utterance; never raises on odd text (empty, emoji, English → ``none``)."""
        norm = self.lexicon.normalizer(text)
        if not norm:
            return IntentResult(text=text, intent="none", confidence=0.0)
        utt = Utterance.of(norm)
        hits = self._live_hits(utt)
        slot_hits = self._slot_finder.slot_hits(hits)
        evidence = self._score(utt, hits, slot_hits)
        emergency = evidence.pop("_emergency", None)
        if emergency is not None:
            intent, best = "call_help", emergency
        elif evidence:
            intent, best = max(evidence.items(), key=lambda item: item[1].total)
            if best.total < self.min_confidence:
                intent, best = "none", _Evidence(score=max(0.0, 1.0 - best.total))
        else:
            intent, best = "none", _Evidence(score=1.0)
        slots = self._slot_finder.fill(intent, utt, slot_hits, best.slots, self._today())
        if intent == "call_help":
            slots.setdefault("urgency", "emergency" if emergency is not None else "normal")
        return IntentResult(text=text, intent=intent, confidence=min(1.0, best.total), slots=slots)

    def slot_value(self, text: str, slot: str) -> Any:
        """The value of one slot heard in ``text`` whatever the intent (「儿子」 answering 「给谁打电话？」)."""
        norm = self.lexicon.normalizer(text)
        if not norm:
            return None
        utt = Utterance.of(norm)
        found = self._slot_finder.slot_hits(self._live_hits(utt)).get(slot)
        if found is not None:
            return found.value
        return self._slot_finder.parsed_slot(slot, utt, self._today())

    def _live_hits(self, utt: Utterance) -> list[_Live]:
        """Lexicon hits with their owners, minus those hidden inside blockers; negation is marked."""
        owners = self.lexicon.owners
        raw = self.lexicon.index.find(utt, tolerant=self.accent_tolerant)
        blocked: list[Hit] = []
        negator_ends: set[int] = set()
        bridges: dict[int, int] = {}  # bridge end → bridge start
        for hit in raw:
            for owner in owners[hit.phrase]:
                if owner.kind == "blocker" and hit.score >= 0.95:
                    blocked.append(hit)
                elif owner.kind == "negator" and hit.score == 1.0:
                    negator_ends.add(hit.end)
                elif owner.kind == "bridge" and hit.score == 1.0:
                    bridges[hit.end] = hit.start
        live = []
        for hit in raw:
            if any(b.start <= hit.start and hit.end <= b.end and (b.end - b.start) > (hit.end - hit.start)
                   for b in blocked):
                continue
            before = hit.start
            negated = (before in negator_ends or (before in bridges and bridges[before] in negator_ends)) \
                and hit.phrase not in self._negative_phrases
            for owner in owners[hit.phrase]:
                if owner.kind == "cue" or (owner.kind in ("slot", "request", "narrative") and not negated):
                    live.append(_Live(hit, owner, negated))
        return live

    def _score(self, utt: Utterance, hits: list[_Live], slot_hits: dict[str, SlotHit]) -> dict[str, _Evidence]:
        lex = self.lexicon
        n = len(utt.text)
        has_request = any(live.owner.kind == "request" for live in hits)
        best_part: dict[tuple[int, str], _Live] = {}
        for live in hits:
            if live.owner.kind != "cue":
                continue
            key = (int(live.owner.ref), lex.index.phrases[live.hit.phrase].text)
            if key not in best_part or live.hit.score > best_part[key].hit.score:
                best_part[key] = live
        evidence: dict[str, _Evidence] = {}
        request_ends = {live.hit.end for live in hits  # 要, 想 alone are too common to point
                        if live.owner.kind == "request" and live.hit.end - live.hit.start > 1}
        for cue_id in {cue_id for cue_id, _ in best_part}.union(self._slot_only_cues):
            cue = lex.cues[cue_id]
            spans: list[tuple[float, int, int]] = []
            for part in cue.parts:
                if part.startswith("<"):
                    slot_hit = slot_hits.get(part[1:-1])
                    if slot_hit is None:
                        break
                    spans.append((slot_hit.score, slot_hit.start, slot_hit.end))
                    continue
                live = best_part.get((cue_id, part))
                if live is None or (live.negated and cue_id not in self._negating_cues):
                    break
                spans.append((live.hit.score, live.hit.start, live.hit.end))
            else:
                if cue.whole and not (spans[0][1] == 0 and spans[0][2] == n):
                    continue
                score = cue.weight * min(s for s, _, _ in spans)
                score += _LENGTH_BONUS * sum(end - start for _, start, end in spans)
                first = min(start for _, start, _ in spans)
                if any(first - end in _FOCUS_GAP for end in request_ends):
                    score += _FOCUS_BONUS  # 「你帮我联系他」: the request word points at this cue
                key = "_emergency" if cue.emergency else cue.intent
                evidence.setdefault(key, _Evidence()).add(score, cue.slots)
        for slot, slot_hit in slot_hits.items():
            if slot_hit.value in lex.emergency_values.get(slot, ()):
                evidence.setdefault("_emergency", _Evidence()).add(slot_hit.score, ((slot, slot_hit.value),))
        for rule in lex.rules:
            found_hits = [slot_hits.get(s) for s in rule.slots]
            if any(h is None for h in found_hits):
                continue
            base = rule.score if has_request else rule.without_request
            score = base * min(h.score for h in found_hits if h is not None)
            evidence.setdefault(rule.intent, _Evidence()).add(score)
        if any(live.owner.kind == "narrative" for live in hits):
            for key, found in evidence.items():
                if key != "_emergency":
                    found.score *= lex.narrative_factor
                    found.support = 0
        return evidence
