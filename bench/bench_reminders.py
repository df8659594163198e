"""Benchmark the reminder service: loading 10,000 reminders at start-up, and how punctually reminders ring.

Run: ``.venv/bin/python bench/bench_reminders.py`` (from the repository root; ``--count`` to change
the number of reminders). Steps, each in a fresh process:

1. create ``--count`` medication reminders (one or two times a day, random weekdays) in a temp home;
2. load them: the time from ``ReminderService.start()`` until every job is scheduled and the
   scheduler runs (imports excluded) — the bar is < 5 s;
3. in the loaded process, schedule 20 one-off reminders 3–6 s ahead and measure how late each
   callback runs after its scheduled time — the bar is < 1 s.

Exit code 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.reminders import ALL_DAYS, DoseDue, Reminder  # noqa: E402
from assistant.scheduler import ReminderService  # noqa: E402

LOAD_BAR = 5.0  # seconds from start() to all jobs scheduled
LATENESS_BAR = 1.0  # seconds between the scheduled time and the callback
PUNCTUAL = 20  # one-off reminders whose lateness is measured


def create(home: Path, count: int) -> dict:
    """Step 1: store ``count`` reminders; returns the number of jobs and the time it took."""
    rng = random.Random(7)
    reminders = []
    for number in range(count):
        times = sorted({"%02d:%02d" % (rng.randrange(24), rng.randrange(60)) for _ in range(rng.choice((1, 2)))})
        days = ALL_DAYS if rng.random() < 0.7 else tuple(sorted(rng.sample(ALL_DAYS, rng.randint(1, 6))))
        reminders.append(Reminder(id="r%05d" % number, kind="medication", medicine="药%d" % number, dose="一片",
                                  times=tuple(times), days=days, created_by="family"))
    service = ReminderService(home, lambda due: None)
    started = time.perf_counter()
    service.start()
    service.add_many(reminders)
    jobs = len(service.jobs())
    service.shutdown()
    return {"jobs": jobs, "create_s": time.perf_counter() - started}


def load_and_ring(home: Path) -> dict:
    """Steps 2 and 3 in one fresh process with the existing databases."""
    rang: dict[str, float] = {}
    done = threading.Event()

    def on_fire(due: DoseDue) -> None:
        if due.reminder_id.startswith("punctual"):
            rang[due.reminder_id] = time.time() - due.scheduled.timestamp()
            if len(rang) == PUNCTUAL:
                done.set()

    service = ReminderService(home, on_fire)
    started = time.perf_counter()
    service.start()
    load_s = time.perf_counter() - started
    jobs = len(service.jobs())
    now = dt.datetime.now(service.tz).replace(microsecond=0)
    punctual = []
    for number in range(PUNCTUAL):
        once = now + dt.timedelta(seconds=3 + number % 4)
        punctual.append(Reminder(id="punctual%02d" % number, kind="medication", medicine="钙片",
                                 times=(once.strftime("%H:%M"),), days=(), once_at=once))
    service.add_many(punctual)
    done.wait(15)
    service.shutdown()
    late = sorted(rang.values())
    return {"load_s": load_s, "jobs": jobs, "rang": len(late), "late_max_s": max(late, default=float("inf")),
            "late_mean_s": statistics.mean(late) if late else float("inf"),
            "late_p95_s": late[int(0.95 * (len(late) - 1))] if late else float("inf")}


def _in_child(step: str, home: Path, count: int) -> dict:
    """Run one step in a fresh interpreter and return its JSON figures."""
    done = subprocess.run([sys.executable, __file__, "--step", step, "--home", str(home), "--count", str(count)],
                          capture_output=True, text=True, timeout=600, check=True, stdin=subprocess.DEVNULL)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="number of reminders (default 10000)")
    parser.add_argument("--step", choices=("create", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "create":
        print(json.dumps(create(args.home, args.count)))
        return 0
    if args.step == "load":
        print(json.dumps(load_and_ring(args.home)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as home:
        made = _in_child("create", Path(home), args.count)
        print(f"created {args.count} reminders ({made['jobs']} jobs) in {made['create_s']:.1f} s")
        got = _in_child("load", Path(home), args.count)
    ok_load = got["load_s"] < LOAD_BAR and got["jobs"] == made["jobs"]
    ok_late = got["rang"] == PUNCTUAL and got["late_max_s"] < LATENESS_BAR
    print(f"load: start() → {got['jobs']} jobs scheduled in {got['load_s']:.2f} s "
          f"(bar < {LOAD_BAR:.0f} s) {'ok' if ok_load else 'FAIL'}")
    print(f"ringing: {got['rang']}/{PUNCTUAL} rang, late by mean {got['late_mean_s'] * 1000:.0f} ms, "
          f"p95 {got['late_p95_s'] * 1000:.0f} ms, max {got['late_max_s'] * 1000:.0f} ms "
          f"(bar < {LATENESS_BAR:.0f} s) {'ok' if ok_late else 'FAIL'}")
    return 0 if ok_load and ok_late else 1


if __name__ == "__main__":
    sys.exit(main())
