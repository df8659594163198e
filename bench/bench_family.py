"""Benchmark: does the family web API disturb the speech loop?

Run: ``.venv/bin/python bench/bench_family.py`` (from the repository root; ``--seconds`` sets the length
of each of the two phases, default 35 s, so the whole run stays under 90 s).

The assistant is built with the family API enabled (as ``yinling run`` does) and a phone is paired.
The speech loop's responsiveness is the latency of ``assistant.hear(text)`` (followed by a
``tick()``, as the loop does) for Mandarin sentences from ``/work/shared/eval/intents_dev.tsv``,
called ``--rate`` times a second on the main thread. Two phases:

1. baseline: no web load;
2. loaded: a separate load process (so the load generator does not share the assistant's GIL) runs
   100 "page users", each polling ``GET /alerts`` and ``GET /status`` every 2 s like the page does
   (~6,000 requests/min), plus an extra 1,000 requests/min mix (``GET /reminders``, ``GET /doses``,
   and a rare ``POST /messages`` — about 5/min, since messages are spoken).

Reported: hear() p50/p99/max for both phases, the API's p50/p99 latency, request and error counts,
and CPU use (the assistant process, the load process, the whole machine).

Criterion: loaded hear() p99 <= 2 x baseline p99 + 20 ms. Exit code 1 if it is missed or the API
returned errors.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENTENCES = Path("/work/shared/eval/intents_dev.tsv")
PAGE_USERS = 100
PAGE_PERIOD = 2.0
EXTRA_PER_MIN = 1000
MESSAGE_EVERY = 200  # one extra request in 200 is a spoken message (~5/min)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def cpu_total() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


# ---------------------------------------------------------------- load process

def worker(base: str, token: str, seconds: float) -> None:
    import requests

    auth = {"Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    counts = {"page": 0, "extra": 0, "messages": 0}
    start = time.monotonic() + 0.5
    stop_at = start + seconds

    def call(session: requests.Session, method: str, path: str, **kw: object) -> None:
        t0 = time.perf_counter()
        try:
            r = session.request(method, base + path, headers=auth, timeout=10, **kw)
            ok = r.status_code < 400
            status = str(r.status_code)
        except Exception as exc:  # noqa: BLE001 - counted as an error
            ok, status = False, type(exc).__name__
        dt_ = time.perf_counter() - t0
        with lock:
            latencies.append(dt_)
            if not ok:
                errors.append(f"{method} {path}: {status}")

    def page_user(i: int) -> None:
        session = requests.Session()
        next_at = start + PAGE_PERIOD * i / PAGE_USERS  # staggered, like real phones
        while True:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() >= stop_at:
                break
            call(session, "GET", "/alerts")
            call(session, "GET", "/status")
            with lock:
                counts["page"] += 2
            next_at += PAGE_PERIOD

    extra_threads = 4
    interval = 60.0 / EXTRA_PER_MIN * extra_threads

    def extra(i: int) -> None:
        session = requests.Session()
        n = i
        next_at = start + interval * i / extra_threads
        while True:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() >= stop_at:
                break
            if n % MESSAGE_EVERY == MESSAGE_EVERY - 1:
                call(session, "POST", "/messages", json={"text": "妈，我周末回来看您"})
                with lock:
                    counts["messages"] += 1
            elif n % 2:
                call(session, "GET", "/reminders")
            else:
                call(session, "GET", "/doses")
            with lock:
                counts["extra"] += 1
            n += extra_threads
            next_at += interval

    c0 = os.times()
    threads = [threading.Thread(target=page_user, args=(i,), daemon=True) for i in range(PAGE_USERS)]
    threads += [threading.Thread(target=extra, args=(i,), daemon=True) for i in range(extra_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    c1 = os.times()
    wall = min(time.monotonic(), stop_at) - start
    print(json.dumps({"latencies": latencies, "errors": errors, "counts": counts, "wall": wall,
                      "cpu": (c1.user - c0.user) + (c1.system - c0.system)}))


# ---------------------------------------------------------------- speech loop

def sentences() -> list[str]:
    lines = SENTENCES.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines[1:] if line.strip() and not line.startswith("#")]


def speech_phase(assistant, texts: list[str], seconds: float, rate: float, offset: int) -> list[float]:
    latencies = []
    period = 1.0 / rate
    next_at = time.monotonic()
    stop_at = next_at + seconds
    i = offset
    while time.monotonic() < stop_at:
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        text = texts[i % len(texts)]
        t0 = time.perf_counter()
        assistant.hear(text)
        assistant.tick()
        latencies.append(time.perf_counter() - t0)
        i += 1
        next_at += period
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=35.0, help="length of each phase (default 35)")
    parser.add_argument("--rate", type=float, default=2.0, help="hear() calls per second (default 2)")
    parser.add_argument("--worker", nargs=3, metavar=("BASE", "TOKEN", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], float(args.worker[2]))
        return 0

    import socket

    import requests

    from assistant import app, config, pairing
    from voices.speaker import TextSpeaker

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    texts = sentences()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        code = pairing.new_code(home)
        out = io.StringIO()
        cfg = config.load(env={}, overrides={"web": {"enabled": True, "port": port}})
        assistant = app.build_assistant(cfg, home, TextSpeaker(out))
        try:
            base = f"{assistant.family_url}/api/v1/family"
            token = requests.post(f"{base}/pair", json={"code": code, "name": "儿子"}, timeout=10).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            added = requests.post(f"{base}/reminders", headers=auth, timeout=10,
                                  json={"kind": "medication", "medicine": "降压药", "dose": "一片",
                                        "times": ["08:00", "20:00"], "days": [1, 2, 3, 4, 5, 6, 7]})
            assert added.status_code == 201, added.text
            speech_phase(assistant, texts, 2.0, args.rate, 0)  # warm-up (imports, caches)

            c0, m0 = os.times(), cpu_total()
            base_lat = speech_phase(assistant, texts, args.seconds, args.rate, 0)
            c1, m1 = os.times(), cpu_total()
            base_cpu = ((c1.user - c0.user) + (c1.system - c0.system)) / args.seconds
            base_sys = (m1[0] - m0[0]) / max(1.0, m1[1] - m0[1])

            load = subprocess.Popen([sys.executable, __file__, "--worker", base, token, str(args.seconds + 1)],
                                    stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)  # let the page users ramp up
            c0, m0 = os.times(), cpu_total()
            load_lat = speech_phase(assistant, texts, args.seconds, args.rate, 0)
            c1, m1 = os.times(), cpu_total()
            stdout, _ = load.communicate(timeout=120)
            load_cpu = ((c1.user - c0.user) + (c1.system - c0.system)) / args.seconds
            load_sys = (m1[0] - m0[0]) / max(1.0, m1[1] - m0[1])
            report = json.loads(stdout)
            assistant.tick()
        finally:
            assistant.close()

    api = report["latencies"]
    counts = report["counts"]
    ms = 1000.0
    bound = 2 * pct(base_lat, 99) + 0.020
    ok = pct(load_lat, 99) <= bound
    ncpu = os.cpu_count() or 1
    print(f"family API load benchmark ({args.seconds:.0f} s per phase, hear() {args.rate:g}/s, {ncpu} CPUs)")
    print(f"{'phase':<10}{'hear n':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'mean ms':>9}"
          f"{'asst CPU':>10}{'machine':>9}")
    for name, lat, cpu, machine in (("baseline", base_lat, base_cpu, base_sys), ("loaded", load_lat, load_cpu, load_sys)):
        print(f"{name:<10}{len(lat):>8}{pct(lat, 50) * ms:>9.1f}{pct(lat, 99) * ms:>9.1f}{max(lat) * ms:>9.1f}"
              f"{statistics.mean(lat) * ms:>9.1f}{cpu * 100:>9.0f}%{machine * 100:>8.0f}%")
    per_min = len(api) / report["wall"] * 60
    print(f"API: {len(api)} requests in {report['wall']:.1f} s ({per_min:,.0f}/min: {counts['page']} page polls "
          f"by {PAGE_USERS} users, {counts['extra']} extra incl. {counts['messages']} messages), "
          f"p50 {pct(api, 50) * ms:.1f} ms, p99 {pct(api, 99) * ms:.1f} ms, max {max(api) * ms:.1f} ms, "
          f"errors {len(report['errors'])}")
    if report["errors"]:
        print("  first errors:", report["errors"][:5])
    print(f"load process CPU {report['cpu'] / report['wall'] * 100:.0f}% (of one core); "
          f"assistant CPU is of one core, machine is % of all {ncpu} cores")
    print(f"criterion: loaded p99 <= 2 x baseline p99 + 20 ms = {bound * ms:.1f} ms -> "
          f"loaded p99 {pct(load_lat, 99) * ms:.1f} ms: {'PASS' if ok else 'FAIL'}")
    return 0 if ok and not report["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
