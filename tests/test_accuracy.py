"""Accuracy bars of the recogniser on labelled sets (the figures themselves are printed by bench/bench_parse.py).

- the shared dev set: intent ≥ 97 %, checked slots ≥ 95 %, and intent ≥ 90 % with 10 % simulated
  character errors (mean over five seeds);
- our own development set (tests/data/intents_extra.tsv) and the held-out set (never tuned on):
  floors that guard against regressions.
"""

import statistics
from pathlib import Path

import pytest

from intents.evaluate import evaluate, load_tsv
from intents.recognize import Recognizer
from intents.simulate import ErrorSimulator

from .conftest import ROOT, SHARED

DEV = SHARED / "eval" / "intents_dev.tsv"
EXTRA = ROOT / "tests" / "data" / "intents_extra.tsv"
HELDOUT = ROOT / "bench" / "data" / "intents_heldout.tsv"


def _report_misses(report) -> str:
    return "\n".join(f"{m.example.text}: want {m.example.intent} {m.example.slots}, got {m.got.intent} {m.got.slots}"
                     for m in report.misses)


def test_dev_set(recognizer: Recognizer) -> None:
    report = evaluate(recognizer.parse, load_tsv(DEV))
    assert report.total >= 100
    assert report.intent_accuracy >= 0.97, _report_misses(report)
    assert report.slot_accuracy >= 0.95, _report_misses(report)


@pytest.mark.parametrize(("rate", "floor"), [(0.1, 0.90), (0.2, 0.85)])
def test_dev_set_with_simulated_recognition_errors(recognizer: Recognizer, rate: float, floor: float) -> None:
    examples = load_tsv(DEV)
    accuracies = [evaluate(recognizer.parse, examples, ErrorSimulator(rate, seed).corrupt).intent_accuracy
                  for seed in range(5)]
    assert statistics.mean(accuracies) >= floor, accuracies


@pytest.mark.parametrize(("path", "intent_floor", "slot_floor"), [(EXTRA, 0.93, 0.95), (HELDOUT, 0.85, 0.85)],
                         ids=["extra", "heldout"])
def test_own_sets(recognizer: Recognizer, path: Path, intent_floor: float, slot_floor: float) -> None:
    report = evaluate(recognizer.parse, load_tsv(path))
    assert report.total >= 150
    assert report.intent_accuracy >= intent_floor, _report_misses(report)
    assert report.slot_accuracy >= slot_floor, _report_misses(report)
