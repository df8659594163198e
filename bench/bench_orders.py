"""Soak the order path: 1,000 orders through the outbox while the platform goes down and the assistant is killed.

Run: ``.venv/bin/python bench/bench_orders.py`` (from the repository root; ``--count``, ``--kills``,
``--outages`` to change the load). What happens:

1. the real platform (uvicorn, SQLite in a temp dir) runs in this process on a free port;
2. the assistant side runs in a child process: it creates ``--count`` orders (``details.seq`` numbers
   them) into its outbox, a few milliseconds apart, while the outbox worker delivers them;
3. meanwhile the platform is stopped ``--outages`` times for a while and the child is killed with
   SIGKILL ``--kills`` times; each killed child is started again and carries on where its outbox is;
4. at the end every order in the outbox must be at the platform exactly once: no order missing, no
   order (``seq``) twice. Repeats the platform absorbed (a POST answered 200 because the id was
   already stored) are counted too: they are the deliveries a kill or a lost answer made the outbox repeat.

The child uses a short back-off (0.1 s up to 2 s) so the run takes seconds; the assistant's default
is 1 s up to 5 minutes. Exit code 1 if an order is missing or duplicated.
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.events import OrderRequested  # noqa: E402
from assistant.outbox import Outbox, RetryPolicy  # noqa: E402
from assistant.platform_client import PlatformClient  # noqa: E402
from assistant.platform_server import BackgroundServer, create_app  # noqa: E402
from assistant.platform_store import PlatformStore  # noqa: E402

HOME_ID = "home-bench"
PACE = 0.004  # seconds between two orders created by the child


class CountingApp:
    """ASGI wrapper counting the status codes the platform answered to POSTs."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.codes: collections.Counter[int] = collections.Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)

        async def counting(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.codes[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting)


def child(home: Path, url: str, token: str, count: int) -> int:
    """The assistant side: create orders until the outbox holds ``count``, then wait until all are delivered."""
    logging.basicConfig(level=logging.ERROR)  # the retries are expected here; failures still show
    outbox = Outbox.in_dir(home, HOME_ID, PlatformClient(url, token, read_timeout=5.0),
                           policy=RetryPolicy(base=0.1, factor=2.0, cap=2.0))
    outbox.start()
    for seq in range(len(outbox.items("order")), count):
        outbox.put(OrderRequested(service="meal", details={"meal": "lunch", "quantity": 1, "seq": seq},
                                  utterance="帮我订一份午饭"))
        time.sleep(PACE)  # an elder does not order a thousand lunches at once; spread them over the chaos
    drained = outbox.drain(120.0)
    outbox.close()
    return 0 if drained else 3


def _pending(home: Path) -> int:
    """Orders not yet delivered, read from the child's outbox while it runs."""
    outbox = Outbox.in_dir(home, HOME_ID, None)
    try:
        return outbox.pending_count()
    finally:
        outbox.close()


def spawn(home: Path, url: str, token: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--child", str(home), url, token, str(count)],
                            stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="orders to create (default 1000)")
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs of the assistant process (default 4)")
    parser.add_argument("--outages", type=int, default=2, help="times the platform goes down (default 2)")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--child", nargs=4, metavar=("HOME", "URL", "TOKEN", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        home, url, token, count = args.child
        return child(Path(home), url, token, int(count))

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    store = PlatformStore.in_dir(work / "platform")
    token = store.add_home(HOME_ID)
    app = CountingApp(create_app(store))
    server = BackgroundServer(app).start()
    port, url = server.port, server.url
    # the chaos: when (seconds from the start) the platform goes down and comes up, and the child is killed
    span = args.count * PACE * 1.5 + 2
    events: list[tuple[float, str]] = [(rng.uniform(0.5, span), "kill") for _ in range(args.kills)]
    for n in range(args.outages):
        start = span * (n + 0.3) / max(args.outages, 1)
        events += [(start, "down"), (start + rng.uniform(1.0, 2.5), "up")]
    events.sort()

    started = time.perf_counter()
    assistant = spawn(work / "assistant", url, token, args.count)
    kills = outages = restarts = 0
    waiting: list[int] = []  # orders waiting in the outbox when the platform came back
    for when, what in events:
        delay = started + when - time.perf_counter()
        if delay > 0:
            threading.Event().wait(delay)
        if what == "down":
            server.stop()
            outages += 1
        elif what == "up":
            waiting.append(_pending(work / "assistant"))
            server = BackgroundServer(app, port=port).start()
        elif assistant.poll() is None:
            assistant.send_signal(signal.SIGKILL)
            assistant.wait(10)
            kills += 1
            assistant = spawn(work / "assistant", url, token, args.count)
            restarts += 1
    code = assistant.wait(300)
    elapsed = time.perf_counter() - started
    server.stop()

    outbox = Outbox.in_dir(work / "assistant", HOME_ID, None)
    entries = outbox.items("order")
    outbox.close()
    local = {entry.id for entry in entries}
    orders = store.list_orders(HOME_ID, limit=args.count * 2)
    remote_ids = [order.id for order in orders]
    seqs = collections.Counter(order.details["seq"] for order in orders)
    duplicates = sum(n - 1 for n in seqs.values()) + len(remote_ids) - len(set(remote_ids))
    missing = len(local - set(remote_ids))
    unexpected = len(set(remote_ids) - local)
    store.close()
    shutil.rmtree(work, ignore_errors=True)

    print(f"orders created (in the outbox): {len(entries)} of {args.count}")
    print(f"delivered (at the platform):    {len(set(remote_ids))}")
    print(f"duplicates at the platform:     {duplicates}")
    print(f"missing at the platform:        {missing}")
    print(f"unknown at the platform:        {unexpected}")
    print(f"failed for good in the outbox:  {sum(entry.state == 'failed' for entry in entries)}")
    print(f"repeats absorbed (200 answers): {app.codes[200]}  (201 answers: {app.codes[201]})")
    print(f"waiting in the outbox when the platform came back: {', '.join(map(str, waiting)) or '-'}")
    print(f"platform outages: {outages}, assistant SIGKILLs: {kills} (restarted {restarts}), last exit code {code}")
    print(f"time: {elapsed:.1f} s until every order was delivered and the assistant exited")
    ok = len(entries) == args.count and duplicates == 0 and missing == 0 and unexpected == 0 and code == 0
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
