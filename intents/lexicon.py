"""Load the understanding data (``intents/data``) into frozen structures and one phrase index.

Files: ``intents.yaml`` (intents, cues, weights, request words, negators, blockers),
``normalize.yaml`` (filler particles), ``slots/*.yaml`` (slot lexicons) and
``dialects/*.yaml`` (dialect words → Mandarin). Everything is validated here, so a broken data
file fails at start-up with one sentence naming the file and the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import DataError
from intents.matching import PhraseIndex
from intents.normalize import DialectWord, Normalizer

try:  # the C loader is ten times faster; fall back when libyaml is missing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

CUE_GROUPS = ("emergency", "top", "strong", "medium", "weak", "whole")


@dataclass(frozen=True)
class Cue:
    """Evidence for an intent: every phrase in ``parts`` must occur (or, if ``whole``, be the utterance)."""

    intent: str
    parts: tuple[str, ...]
    weight: float
    slots: tuple[tuple[str, str], ...] = ()
    emergency: bool = False
    whole: bool = False


@dataclass(frozen=True)
class SlotRule:
    """Slots that, found together, speak for an intent with ``score`` (``without_request`` if no request word)."""

    intent: str
    slots: tuple[str, ...]
    score: float
    without_request: float


@dataclass(frozen=True)
class Owner:
    """What a phrase in the index stands for: a cue part, a slot value, a request word, negator or blocker."""

    kind: str  # "cue", "slot", "request", "negator", "bridge", "blocker", "narrative"
    ref: int | str = 0  # cue number, or slot name
    value: str = ""  # slot value


@dataclass(frozen=True)
class Lexicon:
    """Everything the recogniser needs, built once."""

    intents: Mapping[str, tuple[str, ...]]  # intent → slots it may carry
    cues: tuple[Cue, ...]
    rules: tuple[SlotRule, ...]
    emergency_values: Mapping[str, frozenset[str]]  # slot → values that make an emergency
    index: PhraseIndex
    owners: tuple[tuple[Owner, ...], ...]  # phrase id → owners
    normalizer: Normalizer
    min_confidence: float
    narrative_factor: float  # evidence multiplier for non-emergency intents in narrative talk


def _load_yaml(path: Path | Any) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read intent data file {path}: {exc}") from exc


def _parse_cue(intent: str, text: str, weight: float, group: str, source: str) -> Cue:
    phrase_part, _, slot_part = str(text).partition("|")
    parts = tuple(p.strip() for p in phrase_part.split("+") if p.strip())
    if not parts:
        raise DataError(f"{source}: intent {intent} has an empty cue in group {group}")
    slots = []
    for assignment in filter(None, (a.strip() for a in slot_part.split(","))):
        key, sep, value = assignment.partition("=")
        if not sep:
            raise DataError(f"{source}: cue {text!r} of {intent} has a slot without '=': {assignment!r}")
        slots.append((key.strip(), value.strip()))
    if group == "emergency":
        slots.append(("urgency", "emergency"))
    return Cue(intent=intent, parts=parts, weight=weight, slots=tuple(slots),
               emergency=group == "emergency", whole=group == "whole")


class _Builder:
    """Collects phrases and their owners while the data files are read."""

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer
        self.phrase_ids: dict[str, int] = {}
        self.owners: list[list[Owner]] = []

    def normal(self, phrase: str) -> str:
        """Lexicon phrases go through the same normalisation as utterances, so both sides compare."""
        normal = self.normalizer.lexicon_form(phrase)
        if not normal:
            raise DataError(f"lexicon phrase {phrase!r} is empty after normalisation")
        return normal

    def add(self, phrase: str, owner: Owner) -> None:
        phrase = self.normal(phrase)
        pid = self.phrase_ids.setdefault(phrase, len(self.phrase_ids))
        if pid == len(self.owners):
            self.owners.append([])
        self.owners[pid].append(owner)


def load(data_dir: Path | None = None) -> Lexicon:
    """Read and validate all data files under ``data_dir`` (default: the bundled ``intents/data``)."""
    root: Any = data_dir if data_dir is not None else files("intents") / "data"
    spec = _load_yaml(root / "intents.yaml")
    if not isinstance(spec, dict) or not isinstance(spec.get("intents"), dict):
        raise DataError(f"{root}/intents.yaml must have a mapping 'intents'")
    weights = {**{g: 1.0 for g in CUE_GROUPS}, **spec.get("weights", {})}
    norm_spec = _load_yaml(root / "normalize.yaml") or {}
    dialect: list[DialectWord] = []
    for path in sorted((root / "dialects").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".yaml"):
            dialect.extend(_dialect_words(path))
    normalizer = Normalizer(norm_spec.get("fillers", ()), norm_spec.get("protected", ()), dialect)
    builder = _Builder(normalizer)
    cues: list[Cue] = []
    rules: list[SlotRule] = []
    intents: dict[str, tuple[str, ...]] = {}
    for name, body in spec["intents"].items():
        body = body or {}
        intents[name] = tuple(body.get("slots", ()))
        for group in CUE_GROUPS:
            for text in body.get(group, ()) or ():
                cue = _parse_cue(name, text, float(weights[group]), group, "intents.yaml")
                cue = replace(cue, parts=tuple(p if p.startswith("<") else builder.normal(p) for p in cue.parts))
                for part in cue.parts:
                    if not part.startswith("<"):
                        builder.add(part, Owner("cue", len(cues)))
                cues.append(cue)
        for rule in body.get("when_slots", ()) or ():
            score = float(rule["score"])
            rules.append(SlotRule(intent=name, slots=tuple(rule["all"]), score=score,
                                  without_request=float(rule.get("without_request", score))))
    for kind, key in (("request", "request_markers"), ("negator", "negators"), ("narrative", "narrative_markers"),
                      ("bridge", "negation_bridges"), ("blocker", "blockers")):
        for phrase in spec.get(key, ()) or ():
            builder.add(str(phrase), Owner(kind))

    emergency_values: dict[str, frozenset[str]] = {}
    for path in sorted((root / "slots").iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml"):
            continue
        data = _load_yaml(path)
        slot = data.get("slot") if isinstance(data, dict) else None
        if not slot or not isinstance(data.get("values"), dict):
            raise DataError(f"{path.name} must have 'slot' and a mapping 'values'")
        emergency_values[slot] = frozenset(data.get("emergency_values", ()))
        for value, phrases in data["values"].items():
            for phrase in phrases:
                builder.add(str(phrase), Owner("slot", slot, str(value)))

    known_slots = {s for slots in intents.values() for s in slots} | set(emergency_values)
    for cue in cues:
        unknown = [p for p in cue.parts if p.startswith("<") and p[1:-1] not in emergency_values]
        if unknown:
            raise DataError(f"intents.yaml: cue {'+'.join(cue.parts)} of {cue.intent} names unknown slots {unknown}")
    for rule in rules:
        missing = set(rule.slots) - known_slots
        if missing:
            raise DataError(f"intents.yaml: when_slots of {rule.intent} names unknown slots {sorted(missing)}")
    phrases = sorted(builder.phrase_ids, key=builder.phrase_ids.__getitem__)
    return Lexicon(intents=intents, cues=tuple(cues), rules=tuple(rules),
                   emergency_values=emergency_values, index=PhraseIndex(phrases),
                   owners=tuple(tuple(o) for o in builder.owners), normalizer=normalizer,
                   min_confidence=float(spec.get("min_confidence", 0.5)),
                   narrative_factor=float(spec.get("narrative_factor", 1.0)))


def _dialect_words(path: Any) -> list[DialectWord]:
    data = _load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("words"), list):
        raise DataError(f"dialect file {path.name} must have a list 'words'")
    group = str(data.get("group", path.name))
    words = []
    for entry in data["words"]:
        if not isinstance(entry, dict) or not entry.get("word") or "mandarin" not in entry:
            raise DataError(f"dialect file {path.name}: every entry needs 'word' and 'mandarin': {entry!r}")
        words.append(DialectWord(word=str(entry["word"]), mandarin=str(entry["mandarin"] or ""),
                                 group=group, whole=bool(entry.get("whole", False))))
    return words
