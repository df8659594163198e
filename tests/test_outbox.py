"""The outbox against the real platform server on a free port: durability, retries, exactly-once delivery.

Faults are injected by a small HTTP proxy between the outbox and the platform: it answers 500 instead
of forwarding, forwards and then answers 500 (the order is stored but the answer is lost), forwards
and then holds the answer past the client's timeout, or answers 429. Time is a fake clock wherever
back-off would otherwise make the test wait.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from assistant.errors import PlatformUnavailable
from assistant.events import HelpRequested, OrderRequested
from assistant.incidents import Alert, alert_id
from assistant.outbox import Outbox, OrderStatusChanged, RetryPolicy, alert_body, order_body
from assistant.platform_client import PlatformClient
from assistant.platform_server import BackgroundServer, create_app
from assistant.platform_store import PlatformStore

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0  # seconds: the bound of every wait in these tests
FAST = RetryPolicy(base=0.02, factor=2.0, cap=0.2)


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Platform:
    """The real platform (uvicorn in a thread) with one home; can be stopped and started on the same port."""

    store: PlatformStore
    token: str
    staff: str
    server: BackgroundServer
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self.server.stop()

    def up(self) -> None:
        self.server = BackgroundServer(create_app(self.store), port=self.port).start()

    def set_status(self, order_id: str, status: str, eta: str | None = None) -> None:
        body = {"status": status, **({"eta": eta} if eta else {})}
        answer = requests.post(f"{self.url}/api/v1/orders/{order_id}/status", json=body,
                               headers={"Authorization": f"Bearer {self.staff}"}, timeout=TIMEOUT)
        answer.raise_for_status()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    store = PlatformStore.in_dir(tmp_path / "platform")
    server = BackgroundServer(create_app(store)).start()
    running = Platform(store, store.add_home("home-001"), store.add_staff(), server, server.port)
    yield running
    running.down()
    store.close()


@dataclass
class FaultProxy:
    """Forwards to the platform; each request takes the next planned fault ('ok' once the plan is used up)."""

    upstream: str
    plan: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fault = proxy.plan.pop(0) if proxy.plan else "ok"
                proxy.seen.append(fault)
                if fault in ("500", "429"):
                    return self._answer(int(fault), b'{"error": "injected"}', {"Retry-After": "3"})
                upstream = requests.request(self.command, proxy.upstream + self.path, data=body, timeout=TIMEOUT,
                                            headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                if fault == "stored-then-500":
                    return self._answer(500, b'{"error": "lost answer"}')
                if fault == "stored-then-slow":
                    proxy.release.wait(TIMEOUT)  # longer than the client's read timeout
                self._answer(upstream.status_code, upstream.content)

            do_GET = do_POST = _handle

            def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, which is the point of a slow answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def proxy(platform: Platform) -> Iterator[FaultProxy]:
    running = FaultProxy(platform.url).start()
    yield running
    running.stop()


def an_order(service: str = "meal", **details: Any) -> OrderRequested:
    return OrderRequested(service=service, details={"meal": "lunch", "quantity": 1, **details},
                          utterance="帮我订一份午饭")


def open_outbox(path: Path, url: str | None, token: str, clock: Any = None, **options: Any) -> Outbox:
    client = PlatformClient(url, token, read_timeout=1.5) if url else None  # the slow fault outlasts it
    extra = {"clock": clock} if clock is not None else {}
    return Outbox.in_dir(path, "home-001", client, policy=options.pop("policy", FAST), rng=random.Random(1),
                         **extra, **options)


def platform_ids(platform: Platform) -> list[str]:
    return [order.id for order in platform.store.list_orders(limit=1000)]


def test_put_is_durable_and_the_same_id_twice_is_a_no_op(tmp_path: Path) -> None:
    order = an_order()
    outbox = open_outbox(tmp_path, None, "")
    assert outbox.put(order) is True
    assert outbox.put(order) is False
    outbox.close()
    reopened = open_outbox(tmp_path, None, "")
    [entry] = reopened.items()
    assert (entry.id, entry.kind, entry.state, entry.service) == (order.id, "order", "pending", "meal")
    assert entry.body == order_body(order, "home-001")
    assert reopened.summary("meal") == entry and reopened.summary("cleaning") is None
    reopened.start()  # no platform configured: nothing to do, nothing lost
    assert reopened.drain(0.1) is False and reopened.pending_count() == 1
    with pytest.raises(TypeError):
        reopened.put("帮我订饭")  # type: ignore[arg-type]
    reopened.close()


def test_wire_forms_follow_the_contract() -> None:
    order = an_order(notes="少盐")
    assert order_body(order, "home-001") == {
        "id": order.id, "home_id": "home-001", "service": "meal", "details": {"meal": "lunch", "quantity": 1,
                                                                               "notes": "少盐"},
        "utterance": "帮我订一份午饭", "created_at": order.created_at}
    help_ = HelpRequested(urgency="emergency", reason="fall", utterance="我摔倒了")
    body = alert_body(help_, "home-001")
    assert (body["kind"], body["level"], body["urgent"]) == ("fall", "community", True)
    step = Alert(alert_id("inc-1", "community"), "inc-1", "home-001", "gas", "community", "gas",
                 "2026-11-26T10:31:00", device="gas_sensor", room="kitchen")
    body = alert_body(step, "home-001")
    assert body["created_at"] == dt.datetime(2026, 11, 26, 10, 31).astimezone().isoformat()  # naive = local time
    assert {k: body[k] for k in ("id", "kind", "level", "urgent", "room")} == {
        "id": step.id, "kind": "gas", "level": "community", "urgent": True, "room": "kitchen"}
    change = OrderStatusChanged(order_id=order.id, service="meal", status="dispatched", eta="12:00")
    assert change.to_json()["kind"] == "order_status" and change.to_json()["eta"] == "12:00"


def test_back_off_grows_with_jitter_up_to_the_cap() -> None:
    policy, rng = RetryPolicy(base=1.0, factor=2.0, cap=300.0), random.Random(7)
    delays = [policy.delay(failures, rng) for failures in range(1, 13)]
    for failures, delay in enumerate(delays, start=1):
        ceiling = min(300.0, 2.0 ** (failures - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(policy.delay(10_000, rng) for _ in range(50)) <= 300.0


def test_platform_down_then_up_delivers_every_order_exactly_once(tmp_path: Path, platform: Platform) -> None:
    clock = FakeClock()
    outbox = open_outbox(tmp_path, platform.url, platform.token, clock, policy=RetryPolicy(base=1.0, cap=300.0))
    orders = [an_order(quantity=n) for n in range(1, 4)]
    platform.down()
    for order in orders:
        outbox.put(order)
    assert outbox.deliver_due() == 0
    assert outbox.deliver_due() == 0  # backing off: not even tried
    assert [entry.attempts for entry in outbox.items()] == [1, 0, 0]
    assert "cannot connect" in (outbox.items()[0].last_error or "")
    platform.up()
    assert outbox.deliver_due() == 0  # still inside the back-off delay
    clock.advance(1.0)
    assert outbox.deliver_due() == 3
    assert outbox.deliver_due() == 0 and outbox.pending_count() == 0
    assert sorted(platform_ids(platform)) == sorted(order.id for order in orders)
    outbox.close()


def test_the_worker_thread_delivers_when_the_platform_comes_back(tmp_path: Path, platform: Platform) -> None:
    platform.down()
    outbox = open_outbox(tmp_path, platform.url, platform.token)
    outbox.start()
    orders = [an_order(quantity=n) for n in range(1, 6)]
    for order in orders:
        outbox.put(order)
    assert outbox.drain(0.3) is False
    platform.up()
    assert outbox.drain(TIMEOUT) is True
    outbox.close()
    assert sorted(platform_ids(platform)) == sorted(order.id for order in orders)


@pytest.mark.parametrize("plan", [["500", "500"], ["stored-then-500"], ["stored-then-slow"],
                                  ["500", "stored-then-500"]])
def test_server_errors_lost_answers_and_slow_answers_are_retried_and_stored_once(
        tmp_path: Path, platform: Platform, proxy: FaultProxy, plan: list[str]) -> None:
    clock = FakeClock()
    outbox = open_outbox(tmp_path, proxy.url, platform.token, clock)
    proxy.plan = list(plan)
    order = an_order()
    outbox.put(order)
    for _ in range(len(plan)):
        assert outbox.deliver_due() == 0
        assert outbox.items()[0].state == "pending"
        clock.advance(FAST.cap)
    assert outbox.deliver_due() == 1
    assert proxy.seen == [*plan, "ok"]
    assert platform_ids(platform) == [order.id]
    [entry] = outbox.items()
    assert (entry.state, entry.attempts) == ("delivered", len(plan) + 1)
    outbox.close()


def test_429_waits_at_least_as_long_as_the_platform_asks(tmp_path: Path, platform: Platform, proxy: FaultProxy) -> None:
    clock = FakeClock()
    outbox = open_outbox(tmp_path, proxy.url, platform.token, clock, policy=RetryPolicy(base=0.1, cap=60))
    proxy.plan = ["429"]
    outbox.put(an_order())
    assert outbox.deliver_due() == 0
    clock.advance(2.9)
    assert outbox.deliver_due() == 0 and proxy.seen == ["429"]  # Retry-After: 3
    clock.advance(0.2)
    assert outbox.deliver_due() == 1
    outbox.close()


def test_a_refused_item_is_kept_as_failed_and_not_retried(tmp_path: Path, platform: Platform,
                                                          proxy: FaultProxy) -> None:
    clock = FakeClock()
    outbox = open_outbox(tmp_path, proxy.url, "wrong-token", clock)
    outbox.put(an_order())
    outbox.put(an_order(service="spa"))
    assert outbox.deliver_due() == 0
    clock.advance(600)
    assert outbox.deliver_due() == 0
    assert proxy.seen == ["ok", "ok"]  # one attempt each, the second item was not blocked by the first
    entries = outbox.items()
    assert [entry.state for entry in entries] == ["failed", "failed"]
    assert (entries[0].last_error or "").startswith("401: missing or unknown bearer token")
    assert platform.store.counts()["orders"] == 0
    assert outbox.requeue_failed() == 2 and outbox.pending_count() == 2
    outbox.close()


def test_unknown_service_gets_422_and_fails_for_good(tmp_path: Path, platform: Platform) -> None:
    outbox = open_outbox(tmp_path, platform.url, platform.token, FakeClock())
    outbox.put(an_order(service="spa"))
    outbox.put(an_order())
    assert outbox.deliver_due() == 1
    failed, delivered = outbox.items()
    assert failed.state == "failed" and (failed.last_error or "").startswith("422: invalid request: body.service")
    assert delivered.state == "delivered"
    outbox.close()


def test_alerts_are_delivered_to_the_alerts_endpoint(tmp_path: Path, platform: Platform) -> None:
    outbox = open_outbox(tmp_path, platform.url, platform.token, FakeClock())
    help_ = HelpRequested(urgency="emergency", reason="chest_pain", utterance="胸口疼")
    step = Alert(alert_id("inc-7", "emergency"), "inc-7", "home-001", "fall", "emergency", "fall",
                 "2026-11-26T10:31:00+08:00", device="bed_sensor", room="bedroom", details={"lying_for_s": 120})
    outbox.put(help_)
    outbox.put(step)
    assert outbox.put(step) is False  # the escalation engine replays a step with the same id after a crash
    assert outbox.deliver_due() == 2
    stored = {alert.id: alert for alert in platform.store.list_alerts()}
    assert (stored[help_.id].body["kind"], stored[help_.id].body["reason"]) == ("emergency", "chest_pain")
    assert stored[step.id].body["level"] == "emergency" and stored[step.id].body["details"] == {"lying_for_s": 120}
    assert outbox.summary() is None  # alerts are not orders
    outbox.close()


def test_status_changes_are_read_back_once_each(tmp_path: Path, platform: Platform) -> None:
    outbox = open_outbox(tmp_path, platform.url, platform.token, FakeClock())
    lunch = an_order()
    outbox.put(lunch)
    outbox.deliver_due()
    assert outbox.summary("meal").state == "delivered"
    assert outbox.poll_status() == []  # 'received' is recorded silently
    assert outbox.summary("meal").platform_status == "received"
    platform.set_status(lunch.id, "accepted")
    assert [(c.order_id, c.service, c.status, c.eta) for c in outbox.poll_status()] == [
        (lunch.id, "meal", "accepted", None)]
    assert outbox.poll_status() == []
    platform.set_status(lunch.id, "dispatched", "12:00")
    [change] = outbox.poll_status()
    assert (change.status, change.eta) == ("dispatched", "12:00")
    summary = outbox.summary("meal")
    assert (summary.state, summary.platform_status, summary.eta) == ("delivered", "dispatched", "12:00")
    platform.set_status(lunch.id, "done")
    assert [c.status for c in outbox.poll_status()] == ["done"]
    platform.down()
    assert outbox.poll_status() == []  # nothing left that can change: the platform is not even asked
    outbox.put(an_order(quantity=2))
    with pytest.raises(PlatformUnavailable):
        outbox.poll_status()
    outbox.close()


def test_the_worker_reports_status_changes_to_on_status(tmp_path: Path, platform: Platform) -> None:
    heard: list[OrderStatusChanged] = []
    accepted = threading.Event()

    def on_status(change: OrderStatusChanged) -> None:
        heard.append(change)
        accepted.set()

    outbox = open_outbox(tmp_path, platform.url, platform.token, on_status=on_status, poll_interval=0.05)
    order = an_order()
    outbox.put(order)
    outbox.start()
    assert outbox.drain(TIMEOUT)
    platform.set_status(order.id, "accepted")
    assert accepted.wait(TIMEOUT)
    outbox.close()
    assert [(c.order_id, c.status) for c in heard] == [(order.id, "accepted")]


# The assistant side in a child process, so that it can be killed with SIGKILL at a chosen moment.
CHILD = """
import sys, threading
sys.path.insert(0, {root!r})
from pathlib import Path
from assistant.events import OrderRequested
from assistant.outbox import Outbox, RetryPolicy
from assistant.platform_client import PlatformClient
outbox = Outbox.in_dir(Path({home!r}), "home-001", PlatformClient({url!r}, {token!r}, read_timeout=30),
                       policy=RetryPolicy(base=0.05, cap=0.2))
outbox.put(OrderRequested(service="meal", details={{"meal": "lunch"}}, utterance="订午饭", id={order_id!r}))
print("stored", flush=True)
if {deliver!r}:
    outbox.start()
threading.Event().wait(60)
"""


def run_child(home: Path, url: str, token: str, order_id: str, deliver: bool) -> subprocess.Popen[str]:
    script = CHILD.format(root=str(ROOT), home=str(home), url=url, token=token, order_id=order_id, deliver=deliver)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "stored"
    return child


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(TIMEOUT) == -signal.SIGKILL


def test_sigkill_after_put_before_any_post_delivers_exactly_once_after_restart(
        tmp_path: Path, platform: Platform) -> None:
    order_id = str(uuid.uuid4())
    kill(run_child(tmp_path, platform.url, platform.token, order_id, deliver=False))
    assert platform.store.counts()["orders"] == 0
    outbox = open_outbox(tmp_path, platform.url, platform.token)
    assert [entry.id for entry in outbox.items()] == [order_id] and outbox.pending_count() == 1
    outbox.start()
    assert outbox.drain(TIMEOUT)
    outbox.close()
    assert platform_ids(platform) == [order_id]


def test_sigkill_after_the_platform_stored_the_order_but_before_the_answer_delivers_exactly_once(
        tmp_path: Path, platform: Platform, proxy: FaultProxy) -> None:
    order_id = str(uuid.uuid4())
    proxy.plan = ["stored-then-slow"]  # the platform stores it; the answer is held until we kill the child
    child = run_child(tmp_path, proxy.url, platform.token, order_id, deliver=True)
    stored = threading.Event()
    for _ in range(int(TIMEOUT / 0.02)):
        if platform.store.counts()["orders"] == 1:
            stored.set()
            break
        stored.wait(0.02)
    assert stored.is_set()
    kill(child)
    outbox = open_outbox(tmp_path, proxy.url, platform.token)
    assert outbox.pending_count() == 1  # the child never heard the answer
    outbox.start()
    assert outbox.drain(TIMEOUT)
    outbox.close()
    assert proxy.seen == ["stored-then-slow", "ok"]
    assert platform_ids(platform) == [order_id]
    assert json.loads(json.dumps(platform.store.get_order(order_id).details)) == {"meal": "lunch"}
