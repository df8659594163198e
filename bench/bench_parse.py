"""Benchmark the intent recogniser: accuracy (clean and with simulated recognition errors), speed, cold start.

Run: ``.venv/bin/python bench/bench_parse.py`` (from the repository root). Prints figures only;
the pass/fail bars of the accuracy live in tests/test_accuracy.py.

Labelled sets: ``../shared/eval/intents_dev.tsv`` (the shared dev set), ``tests/data/intents_extra.tsv``
(our own development sentences) and ``bench/data/intents_heldout.tsv`` (written by someone who
never saw the matcher's rules, and never tuned on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intents.evaluate import Example, Report, evaluate, load_tsv  # noqa: E402
from intents.recognize import Recognizer  # noqa: E402
from intents.simulate import ErrorSimulator, corpus_char_error_rate  # noqa: E402

SETS = {
    "dev (shared)": ROOT.parent / "shared" / "eval" / "intents_dev.tsv",
    "extra (ours)": ROOT / "tests" / "data" / "intents_extra.tsv",
    "held-out": ROOT / "bench" / "data" / "intents_heldout.tsv",
}
ERROR_RATES = (0.1, 0.2)
SEEDS = range(5)


def accuracy(recognizer: Recognizer, name: str, examples: list[Example], show_misses: bool) -> None:
    """Print clean accuracy, the confusion list and accuracy under simulated recognition errors."""
    report = evaluate(recognizer.parse, examples)
    print(f"\n## {name}: {report.total} utterances")
    print(f"intent accuracy        {report.intent_accuracy:6.1%}")
    print(f"checked-slot accuracy  {report.slot_accuracy:6.1%}  ({report.slots_checked} slots)")
    for (expected, got), count in report.confusions().most_common():
        print(f"  confusion {expected:>16} → {got:<16} ×{count}")
    if show_misses:
        for miss in report.misses:
            print(f"  miss: {miss.example.text}  want {miss.example.intent} {miss.example.slots}"
                  f"  got {miss.got.intent} {miss.got.slots}")
    for rate in ERROR_RATES:
        reports: list[Report] = []
        cers = []
        for seed in SEEDS:
            simulator = ErrorSimulator(rate, seed)
            corrupted = [simulator.corrupt(e.text) for e in examples]
            cers.append(corpus_char_error_rate([e.text for e in examples], corrupted))
            texts = iter(corrupted)
            reports.append(evaluate(recognizer.parse, examples, lambda _t: next(texts)))
        print(f"with {rate:.0%} simulated errors (realised CER {statistics.mean(cers):.1%}, "
              f"{len(SEEDS)} seeds): intent {statistics.mean(r.intent_accuracy for r in reports):6.1%}, "
              f"slots {statistics.mean(r.slot_accuracy for r in reports):6.1%}")


def speed(recognizer: Recognizer, texts: list[str]) -> None:
    """Throughput on one core and per-parse latency percentiles."""
    for text in texts[:50]:
        recognizer.parse(text)  # warm caches the way a running assistant has them
    latencies = []
    start = time.perf_counter()
    for _ in range(3):
        for text in texts:
            t0 = time.perf_counter()
            recognizer.parse(text)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(f"\n## speed ({len(latencies)} parses, one core)")
    print(f"throughput  {len(latencies) / elapsed:8.0f} utterances/s")
    print(f"latency     p50 {p(0.5):.3f} ms   p99 {p(0.99):.3f} ms   max {latencies[-1] * 1000:.3f} ms")


def cold_start(runs: int = 5) -> None:
    """Wall time of a whole ``yinling parse TEXT`` process."""
    exe = Path(sys.executable).with_name("yinling")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*command, "parse", "晌午饭给我送两份"], check=True, capture_output=True,
                       env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})
        times.append(time.perf_counter() - t0)
    print(f"\n## cold start of `yinling parse TEXT` ({runs} runs)")
    print(f"median {statistics.median(times):.3f} s   max {max(times):.3f} s")


def main() -> None:
    """Run every benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list every wrongly understood utterance")
    parser.add_argument("--accent-tolerant", action="store_true", help="fold southern accent merges")
    args = parser.parse_args()
    t0 = time.perf_counter()
    recognizer = Recognizer.load(accent_tolerant=args.accent_tolerant)
    print(f"recogniser load time {time.perf_counter() - t0:.3f} s")
    all_texts = []
    for name, path in SETS.items():
        if not path.exists():
            print(f"\n## {name}: {path} not found, skipped")
            continue
        examples = load_tsv(path)
        all_texts.extend(e.text for e in examples)
        accuracy(recognizer, name, examples, args.misses)
    simulator = ErrorSimulator(0.1, 99)
    speed(recognizer, all_texts + [simulator.corrupt(t) for t in all_texts])
    cold_start()


if __name__ == "__main__":
    main()
