"""Tests for intents.lexicon: the bundled data loads, every slot phrase yields its value, bad data fails clearly."""

import shutil
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from assistant.errors import DataError
from intents import lexicon
from intents.matching import Utterance
from intents.recognize import Recognizer
from intents.slots import SlotFinder

DATA = Path(str(files("intents") / "data"))
CONTRACT_INTENTS = {"call_help", "order_meal", "order_service", "set_reminder", "medication_taken",
                    "query_reminders", "cancel_reminder", "chat", "query_time", "query_weather",
                    "device_control", "affirm", "deny", "im_ok", "repeat", "cancel"}


def _slot_phrases() -> list[tuple[str, str, str]]:
    rows = []
    for path in sorted((DATA / "slots").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for value, phrases in data["values"].items():
            rows.extend((data["slot"], str(value), str(p)) for p in phrases)
    return rows


def test_bundled_data_covers_the_contract() -> None:
    lex = lexicon.load()
    assert set(lex.intents) == CONTRACT_INTENTS
    assert all(cue.intent in CONTRACT_INTENTS for cue in lex.cues)


@pytest.mark.parametrize(("slot", "value", "phrase"), _slot_phrases(),
                         ids=[f"{s}={v}:{p}" for s, v, p in _slot_phrases()])
def test_every_slot_phrase_yields_its_value(recognizer: Recognizer, slot: str, value: str, phrase: str) -> None:
    lex = recognizer.lexicon
    utt = Utterance.of(lex.normalizer(phrase))
    hits = [(h, o) for h in lex.index.find(utt) for o in lex.owners[h.phrase]]
    best = SlotFinder(lex).slot_hits(hits)
    assert best[slot].value == value


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


@pytest.mark.parametrize(("relative", "content", "message"), [
    ("intents.yaml", "intents: [1, 2]", "mapping 'intents'"),
    ("intents.yaml", "intents: {chat: {strong: ['|topic=joke']}}", "empty cue"),
    ("intents.yaml", "intents: {chat: {strong: ['笑话 | topic']}}", "without '='"),
    ("intents.yaml", "intents: {chat: {when_slots: [{all: [colour], score: 1}]}}", "unknown slots"),
    ("slots/meal.yaml", "slot: meal\nvalues: [1]", "mapping 'values'"),
    ("dialects/extra.yaml", "group: x\nwords: [{word: 俺}]", "'word' and 'mandarin'"),
    ("intents.yaml", "intents: {chat: [unclosed", "cannot read"),
])
def test_bad_data_fails_with_one_clear_sentence(tmp_path: Path, relative: str, content: str, message: str) -> None:
    root = _copy_data(tmp_path)
    (root / relative).write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        lexicon.load(root)
