"""The dialect lexicons in ``intents/data/dialects``: their shape, and that every example is understood.

Each group file maps dialect words onto Mandarin before intent matching and carries one everyday
elder sentence per word with the intent and canonical slots (CONTRACTS.md §2) it must produce.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from opencc import OpenCC

import intents
from intents.recognize import Recognizer

DATA_DIR = Path(intents.__file__).resolve().parent / "data"
DIALECT_DIR = DATA_DIR / "dialects"

GROUPS = {
    "northeast",
    "beijing_north",
    "henan_shandong",
    "sichuan_chongqing",
    "wu",
    "cantonese",
    "hunan_hubei",
    "min",
}
MIN_WORDS_PER_GROUP = 20

# CONTRACTS.md §2: every intent name (17) with the slots it may carry.
INTENT_SLOTS: dict[str, set[str]] = {
    "call_help": {"urgency", "contact", "reason"},
    "order_meal": {"meal", "quantity", "dish", "time", "notes"},
    "order_service": {"service", "time", "date"},
    "set_reminder": {"kind", "medicine", "time", "repeat", "dose"},
    "medication_taken": {"medicine"},
    "query_reminders": set(),
    "cancel_reminder": set(),
    "chat": {"topic"},
    "query_time": {"what"},
    "query_weather": set(),
    "device_control": {"device", "action"},
    "affirm": set(),
    "deny": set(),
    "im_ok": set(),
    "repeat": set(),
    "cancel": set(),
    "none": set(),
}
SLOT_VALUES: dict[str, set[str]] = {
    "urgency": {"emergency", "normal"},
    "contact": {"son", "daughter", "spouse", "family", "community", "doctor", "ambulance", "neighbor"},
    "reason": {"fall", "chest_pain", "breathing", "dizzy", "bleeding", "unwell"},
    "meal": {"breakfast", "lunch", "dinner"},
    "service": {"cleaning", "bathing", "medical", "escort", "repair", "errand", "legal", "laundry", "haircut"},
    "kind": {"medication", "other"},
    "repeat": {"once", "daily", "weekly"},
    "topic": {"joke", "story", "opera", "lonely"},
    "what": {"time", "date", "weekday", "lunar"},
    "device": {"light", "tv", "air_conditioner", "gas_valve", "curtain", "heater"},
    "action": {"on", "off"},
}
SLOT_PATTERNS: dict[str, re.Pattern[str]] = {
    "time": re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d"),
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
}
TEXT_SLOTS = {"dish", "notes", "medicine", "dose"}

ENTRY_KEYS = {"word", "mandarin", "test", "expect"}
OPTIONAL_ENTRY_KEYS = {"whole"}
# Normalisation strips filler particles (outside protected words) before the lexicon is applied,
# so a dialect word containing one could never match.
_NORMALIZE = yaml.safe_load((DATA_DIR / "normalize.yaml").read_text(encoding="utf-8"))
FILLERS = set("".join(_NORMALIZE["fillers"]))
PROTECTED = re.compile("|".join(map(re.escape, _NORMALIZE.get("protected") or ())) or "$^")
TO_SIMPLIFIED = OpenCC("t2s")
PLAIN_HANZI = re.compile(r"[\u3400-\u9fff\U00020000-\U0002ffff]+")


def load_groups() -> dict[str, dict[str, Any]]:
    """Every dialect file, parsed, keyed by its file stem."""
    return {path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
            for path in sorted(DIALECT_DIR.glob("*.yaml"))}


GROUP_DATA = load_groups()
ENTRIES: list[tuple[str, dict[str, Any]]] = [
    (group, entry) for group, data in GROUP_DATA.items() for entry in (data or {}).get("words") or []
]
ENTRY_IDS = [f"{group}/{entry.get('word')}" for group, entry in ENTRIES]


def test_exactly_the_eight_groups_exist() -> None:
    """One file per dialect group, its ``group`` field equal to the file name, with a display name."""
    assert set(GROUP_DATA) == GROUPS
    for stem, data in GROUP_DATA.items():
        assert isinstance(data, dict), stem
        assert data.get("group") == stem
        assert isinstance(data.get("name"), str) and data["name"].strip(), stem


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_has_enough_words(group: str) -> None:
    """Every group carries at least MIN_WORDS_PER_GROUP entries."""
    words = (GROUP_DATA.get(group) or {}).get("words") or []
    assert len(words) >= MIN_WORDS_PER_GROUP, f"{group}: {len(words)} words"


@pytest.mark.parametrize(("group", "entry"), ENTRIES, ids=ENTRY_IDS)
def test_entry_is_well_formed(group: str, entry: dict[str, Any]) -> None:
    """Keys, character set, example sentence and expected intent/slots follow the contract."""
    assert isinstance(entry, dict)
    assert ENTRY_KEYS <= set(entry) <= ENTRY_KEYS | OPTIONAL_ENTRY_KEYS, sorted(entry)
    word, mandarin, test = entry["word"], entry["mandarin"], entry["test"]
    assert isinstance(word, str) and PLAIN_HANZI.fullmatch(word), word
    unprotected = PROTECTED.sub("", word)
    assert not FILLERS & set(unprotected), f"{word} contains a filler that normalisation removes"
    assert TO_SIMPLIFIED.convert(word) == word, f"{word} is not in simplified characters"
    assert isinstance(mandarin, str) and (mandarin == "" or PLAIN_HANZI.fullmatch(mandarin)), mandarin
    assert mandarin != word
    assert isinstance(entry.get("whole", False), bool)
    assert isinstance(test, str) and word in test, f"{test!r} does not use {word!r}"
    if entry.get("whole"):
        assert test == word, "a whole-utterance word is tested on its own"

    expect = entry["expect"]
    assert isinstance(expect, dict) and set(expect) <= {"intent", "slots"}
    intent = expect.get("intent")
    assert intent in INTENT_SLOTS, intent
    slots = expect.get("slots") or {}
    assert isinstance(slots, dict)
    for slot, value in slots.items():
        assert slot in INTENT_SLOTS[intent], f"{intent} has no slot {slot}"
        if slot in SLOT_VALUES:
            assert value in SLOT_VALUES[slot], f"{slot}={value!r}"
        elif slot in SLOT_PATTERNS:
            assert isinstance(value, str) and SLOT_PATTERNS[slot].fullmatch(value), f"{slot}={value!r}"
        elif slot == "quantity":
            assert isinstance(value, int) and not isinstance(value, bool) and value > 0, value
        else:
            assert slot in TEXT_SLOTS and isinstance(value, str) and value, f"{slot}={value!r}"


def test_no_word_has_two_meanings() -> None:
    """A word listed more than once (in one file or several) is always rewritten the same way."""
    seen: dict[str, tuple[str, str, bool]] = {}
    conflicts = []
    for group, entry in ENTRIES:
        reading = (entry["mandarin"], bool(entry.get("whole", False)))
        first = seen.setdefault(entry["word"], (group, *reading))
        if first[1:] != reading:
            conflicts.append(f"{entry['word']}: {first[0]} → {first[1:]}, {group} → {reading}")
    assert not conflicts, conflicts


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    """The bundled recogniser, built once for all examples."""
    return Recognizer.load()


@pytest.mark.parametrize(("group", "entry"), ENTRIES, ids=ENTRY_IDS)
def test_example_is_understood(recognizer: Recognizer, group: str, entry: dict[str, Any]) -> None:
    """The example sentence yields the expected intent and every expected slot."""
    result = recognizer.parse(entry["test"])
    expect = entry["expect"]
    assert result.intent == expect["intent"], f"{entry['test']!r} → {result.to_json()}"
    for slot, value in (expect.get("slots") or {}).items():
        assert result.slots.get(slot) == value, f"{entry['test']!r} {slot}: {result.to_json()}"
