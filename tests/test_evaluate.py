"""Tests for intents.evaluate: reading labelled sets and scoring them."""

from pathlib import Path

import pytest

from assistant.errors import DataError
from intents.evaluate import evaluate, load_tsv
from intents.recognize import IntentResult

TSV = "text\tintent\tslots\n救命\tcall_help\t{\"urgency\":\"emergency\"}\n\n订午饭\torder_meal\t{\"meal\":\"lunch\"}\n"


def test_load_and_score(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(TSV, encoding="utf-8")
    examples = load_tsv(path)
    assert [e.intent for e in examples] == ["call_help", "order_meal"]
    answers = {"救命": IntentResult("救命", "call_help", 1.0, {"urgency": "emergency"}),
               "订午饭": IntentResult("订午饭", "order_meal", 1.0, {"meal": "dinner"})}
    report = evaluate(answers.__getitem__, examples)
    assert (report.intent_accuracy, report.slot_accuracy) == (1.0, 0.5)
    assert [m.example.text for m in report.misses] == ["订午饭"]
    assert not report.confusions()


@pytest.mark.parametrize("line", ["只有一列", "a\tb\t{not json"])
def test_malformed_lines_are_reported_with_their_number(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("header\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=":2:"):
        load_tsv(path)
