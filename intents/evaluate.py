"""Measure the recogniser on labelled utterances (TSV: text, intent, checked slots as JSON).

Used by the accuracy tests and by ``bench/bench_parse.py``; the format is that of
``../shared/eval/intents_dev.tsv``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import DataError
from intents.recognize import IntentResult


@dataclass(frozen=True)
class Example:
    """One labelled utterance; ``slots`` holds only the slots that are checked."""

    text: str
    intent: str
    slots: dict[str, Any]


@dataclass(frozen=True)
class Miss:
    """An utterance the recogniser got wrong, for the confusion list."""

    example: Example
    got: IntentResult


@dataclass(frozen=True)
class Report:
    """Accuracy figures for one labelled set."""

    total: int
    intent_correct: int
    slots_checked: int
    slots_correct: int
    misses: tuple[Miss, ...] = field(default=())

    @property
    def intent_accuracy(self) -> float:
        """Share of utterances with the right intent."""
        return self.intent_correct / self.total if self.total else 0.0

    @property
    def slot_accuracy(self) -> float:
        """Share of checked slot values that came out exactly right (wrong intent = wrong slots)."""
        return self.slots_correct / self.slots_checked if self.slots_checked else 1.0

    def confusions(self) -> Counter[tuple[str, str]]:
        """(expected, got) intent pairs of the misses with the wrong intent."""
        return Counter((m.example.intent, m.got.intent) for m in self.misses
                       if m.example.intent != m.got.intent)


def load_tsv(path: Path) -> list[Example]:
    """Read a labelled set; the first line is a header. Raises DataError on a malformed line."""
    examples = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        try:
            slots = json.loads(fields[2]) if fields[2].strip() else {}
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: slots are not valid JSON: {exc}") from exc
        examples.append(Example(text=fields[0], intent=fields[1].strip(), slots=slots))
    return examples


def evaluate(parse: Callable[[str], IntentResult], examples: Iterable[Example],
             transform: Callable[[str], str] | None = None) -> Report:
    """Parse every example (after ``transform``, e.g. simulated recognition errors) and score it."""
    total = intent_ok = checked = slot_ok = 0
    misses = []
    for example in examples:
        text = transform(example.text) if transform else example.text
        result = parse(text)
        total += 1
        right_intent = result.intent == example.intent
        intent_ok += right_intent
        good_slots = sum(1 for key, value in example.slots.items()
                         if right_intent and result.slots.get(key) == value)
        checked += len(example.slots)
        slot_ok += good_slots
        if not right_intent or good_slots < len(example.slots):
            misses.append(Miss(example, result))
    return Report(total=total, intent_correct=intent_ok, slots_checked=checked,
                  slots_correct=slot_ok, misses=tuple(misses))
