"""Tests for assistant.app: the wiring of scheduler, dose conversation, dialogue and speaker."""

import datetime as dt
import io
import json
import time
from pathlib import Path

from assistant import app, config
from assistant.reminders import DoseDue, Reminder
from voices.speaker import TextSpeaker

from .shared import free_port


def test_a_due_dose_is_spoken_then_confirmed_once(tmp_path: Path) -> None:
    out = io.StringIO()
    cfg = config.load(env={})
    assistant = app.build_assistant(cfg, tmp_path, TextSpeaker(out))
    try:
        service = assistant.reminders
        reminder = service.add(Reminder(id="bp", kind="medication", medicine="降压药", dose="一片", times=("08:00",),
                                        days=(1, 2, 3, 4, 5, 6, 7), created_by="family"))
        now = dt.datetime.now().astimezone()
        service.fire(DoseDue(reminder.id, "降压药", "一片", "medication", now - dt.timedelta(minutes=1)))
        assistant.tick()  # the scheduler thread hands the dose to the assistant's thread
        assistant.hear("吃过了")
        assistant.hear("吃过了")
    finally:
        assistant.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("说：张阿姨，") and "该吃降压药了，一片。" in lines[0]
    assert lines[1] == "说：好的，降压药记下吃过了。"
    assert lines[2].startswith("说：降压药您") and lines[2].endswith("已经吃过了，不用再吃了。")
    assert not (tmp_path / "events.jsonl").exists() or all(
        json.loads(line)["kind"] != "missed_medication" for line in (tmp_path / "events.jsonl").open())


def test_spoken_order_reaches_the_platform_once_and_its_status_is_spoken(tmp_path: Path) -> None:
    """「帮我订午饭」 in text mode → the real reference platform holds the order; staff accept → spoken."""
    from assistant.platform_server import BackgroundServer, create_app
    from assistant.platform_store import PlatformStore

    store = PlatformStore.in_dir(tmp_path / "platform")
    token = store.add_home("home-001")
    with BackgroundServer(create_app(store)) as server:
        out = io.StringIO()
        cfg = config.load(env={}, overrides={"platform": {"url": server.url, "token": token, "poll_interval": 0.2}})
        assistant = app.build_assistant(cfg, tmp_path / "home", TextSpeaker(out))
        try:
            for line in ["帮我订午饭", "两份", "对"]:
                assistant.hear(line)
            assert assistant.outbox.drain(timeout=10)
            (order,) = store.list_orders(home_id="home-001")
            assert order.service == "meal" and order.details == {"meal": "lunch", "quantity": 2}
            store.set_status(order.id, "accepted", eta="12:00")
            deadline = time.monotonic() + 10
            while "接了" not in out.getvalue() and time.monotonic() < deadline:
                assistant.tick()  # the loop ticks like this; the worker polls every 0.2 s
                time.sleep(0.05)
        finally:
            assistant.close()
    lines = out.getvalue().splitlines()
    assert lines[-2] == "说：好的，午饭订好了，送到了我告诉您。"
    assert lines[-1] == "说：社区已经接了您的饭订单，大约十二点到。"


def test_sos_button_alerts_the_family_and_reassures_through_the_running_assistant(tmp_path: Path) -> None:
    from tests.mqtt_broker import Broker, Recorder

    with Broker(tmp_path / "broker").start() as broker:
        recorder = Recorder(broker, ("yinling/home-001/alert",))
        out = io.StringIO()
        cfg = config.load(_home_file(tmp_path, broker.port), env={})
        assistant = app.build_assistant(cfg, tmp_path / "home", TextSpeaker(out))
        try:
            assert assistant.bridge.wait_connected(5)
            pressed = time.monotonic()
            recorder.publish("zigbee2mqtt/sos_button", {"action": "emergency"})
            (alert,) = recorder.wait_for("yinling/home-001/alert", timeout=5)
            assert time.monotonic() - pressed < 1.0
            assert alert.json()["kind"] == "sos"
            deadline = time.monotonic() + 5
            while "别着急" not in out.getvalue() and time.monotonic() < deadline:
                assistant.tick()
                time.sleep(0.02)
            assert "说：别着急，已经通知您儿子和社区了。" in out.getvalue().splitlines()
            recorder.publish("yinling/home-001/alert/ack", {"id": alert.json()["id"], "by": "儿子"})
            deadline = time.monotonic() + 5
            while assistant.escalation.open_incidents() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not assistant.escalation.open_incidents()
        finally:
            assistant.close()
            recorder.close()


def _home_file(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "home.toml"
    path.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n\n'
                    '[[devices]]\nname = "sos_button"\nrole = "sos"\nroom = "bedroom"\n', encoding="utf-8")
    return path


def test_catalogue_from_the_platform_answers_the_menu_and_explains_closed_hours(tmp_path: Path) -> None:
    import requests

    from assistant.platform_server import BackgroundServer, create_app
    from assistant.platform_store import PlatformStore

    store = PlatformStore.in_dir(tmp_path / "platform")
    token, staff = store.add_home("home-001"), store.add_staff()
    today = dt.date.today()
    closed = [w for w in ("00:00-00:01", "12:00-12:01") if not _inside(w)][0]  # a window we are not in now
    catalogue = {"services": [{"service": "meal", "name": "午饭", "price": 12, "hours": [closed]}],
                 "menu": {"date": today.isoformat(), "dishes": ["红烧肉", "青菜豆腐"]}}
    with BackgroundServer(create_app(store)) as server:
        answer = requests.put(f"{server.url}/api/v1/catalogue", json=catalogue,
                              headers={"Authorization": f"Bearer {staff}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        out = io.StringIO()
        cfg = config.load(env={}, overrides={"platform": {"url": server.url, "token": token, "poll_interval": 0.2}})
        home = tmp_path / "home"
        assistant = app.build_assistant(cfg, home, TextSpeaker(out))
        try:
            deadline = time.monotonic() + 10
            while not (home / "catalogue.json").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assistant.hear("今天食堂有什么")
            for line in ("帮我订一份午饭",):
                assistant.hear(line)
        finally:
            assistant.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "说：今天食堂有红烧肉和青菜豆腐。"
    assert lines[1].startswith("说：食堂现在不送餐，") and lines[1].endswith("可以订。")
    assert assistant.dialogue.pending is None and not store.list_orders(home_id="home-001")


def _inside(window: str) -> bool:
    start, end = window.split("-")
    now = dt.datetime.now().strftime("%H:%M")
    return start <= now < end


def test_family_api_served_while_running_pairs_and_reads_a_message_aloud(tmp_path: Path) -> None:
    import subprocess
    import sys

    import requests

    port = free_port()
    home = tmp_path / "home"
    printed = subprocess.run([sys.executable, "-m", "assistant", "family", "code", "--home", str(home)],
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    (code,) = printed.stdout.splitlines()
    assert len(code) == 6 and code.isdigit()
    out = io.StringIO()
    cfg = config.load(env={}, overrides={"web": {"enabled": True, "port": port}})
    assistant = app.build_assistant(cfg, home, TextSpeaker(out))
    try:
        base = f"{assistant.family_url}/api/v1/family"
        assert requests.get(f"{base}/reminders", timeout=10).status_code == 401
        token = requests.post(f"{base}/pair", json={"code": code, "name": "儿子"}, timeout=10).json()["token"]
        assert requests.post(f"{base}/pair", json={"code": code, "name": "儿子"}, timeout=10).status_code in (400, 403)
        auth = {"Authorization": f"Bearer {token}"}
        sent = requests.post(f"{base}/messages", json={"text": "妈，我周末回来看您"}, headers=auth, timeout=10)
        assert sent.status_code == 202
        assistant.tick()
        spoken_code = assistant.hear("绑定家人") and out.getvalue().splitlines()[-1]
        digits = "".join(str("零一二三四五六七八九".index(c)) for c in spoken_code if c in "零一二三四五六七八九")
        paired = requests.post(f"{base}/pair", json={"code": digits, "name": "女儿"}, timeout=10)
        assert paired.status_code == 200 and paired.json()["token"] != token
        added = requests.post(f"{base}/reminders", headers=auth, timeout=10,
                              json={"kind": "medication", "medicine": "降压药", "dose": "一片",
                                    "times": ["08:00", "20:00"], "days": [1, 2, 3, 4, 5, 6, 7]})
        assert added.status_code == 201
        assert [r.medicine for r in assistant.reminders.list()] == ["降压药"]
    finally:
        assistant.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "说：儿子给您留言：妈，我周末回来看您"  # the name given when pairing
    assert lines[1].startswith("说：绑定码是：") and lines[1].endswith("十分钟内有效，请家里人在手机上输入。")
