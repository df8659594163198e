"""Family API and pairing: a real server on a free port, real ReminderService and SQLite in a temp home."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from assistant.escalation import EscalationEngine
from assistant.family_api import FamilyHome, create_family_app
from assistant.incidents import EscalationConfig, IncidentStore
from assistant.pairing import CODE_TTL, MAX_WRONG, Pairing, PairingError, new_code
from assistant.platform_server import BackgroundServer
from assistant.scheduler import ReminderService
from tests.test_escalation import PROMPTS

TZ = ZoneInfo("Asia/Shanghai")
API = "/api/v1/family"
TIMEOUT = 10
BODY = {"kind": "medication", "medicine": "降压药", "dose": "一片", "times": ["08:00", "20:00"],
        "days": [1, 2, 3, 4, 5, 6, 7]}


class Clock:
    """A settable Unix-seconds clock for the pairing store."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Family:
    url: str
    pairing: Pairing
    clock: Clock
    reminders: ReminderService
    engine: EscalationEngine
    spoken: list[str]

    def call(self, method: str, path: str, token: str | None = None, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, self.url + API + path, headers=headers, timeout=TIMEOUT, **kwargs)

    def token(self, name: str = "儿子") -> str:
        answer = self.call("POST", "/pair", json={"code": self.pairing.new_code(), "name": name})
        assert answer.status_code == 200, answer.text
        return answer.json()["token"]


@pytest.fixture
def family(tmp_path: Path) -> Iterator[Family]:
    clock = Clock()
    pairing = Pairing.in_dir(tmp_path, now=clock)
    reminders = ReminderService(tmp_path, lambda due: None, tz=TZ)
    reminders.start()
    spoken: list[str] = []
    store = IncidentStore(tmp_path / "incidents.db")
    engine = EscalationEngine(EscalationConfig(), store, PROMPTS, home_id="home-1", elder="张阿姨",
                              family_contact="son", now=lambda: dt.datetime.now(TZ), say=spoken.extend)
    home = FamilyHome(reminders, pairing, lambda text, sender: spoken.append(f"{sender}:{text}"), escalation=engine)
    server = BackgroundServer(create_family_app(home)).start()
    try:
        yield Family(server.url, pairing, clock, reminders, engine, spoken)
    finally:
        server.stop()
        reminders.shutdown()
        store.close()
        pairing.close()


def test_pairing_good_wrong_used_and_expired(family: Family) -> None:
    code = family.pairing.new_code()
    assert len(code) == 6 and code.isdigit()
    good = family.call("POST", "/pair", json={"code": code, "name": "儿子"})
    assert good.status_code == 200 and len(good.json()["token"]) >= 32
    used = family.call("POST", "/pair", json={"code": code, "name": "女儿"})
    assert used.status_code == 403 and "token" not in used.json()
    wrong = "000000" if code != "000000" else "111111"
    assert family.call("POST", "/pair", json={"code": wrong, "name": "女儿"}).status_code == 403
    old = family.pairing.new_code()
    family.clock.t += CODE_TTL + 1
    expired = family.call("POST", "/pair", json={"code": old, "name": "女儿"})
    assert expired.status_code == 403 and "error" in expired.json()
    assert family.call("POST", "/pair", json={"code": "12", "name": "x"}).status_code == 422
    assert [d.name for d in family.pairing.devices()] == ["儿子"]


def test_tokens_are_stored_hashed(family: Family, tmp_path: Path) -> None:
    token = family.token()
    assert token.encode() not in (tmp_path / "family.db").read_bytes()


def test_wrong_codes_are_rate_limited(family: Family) -> None:
    code = family.pairing.new_code()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(MAX_WRONG):
        assert family.call("POST", "/pair", json={"code": wrong, "name": "x"}).status_code == 403
    limited = family.call("POST", "/pair", json={"code": code, "name": "x"})
    assert limited.status_code == 429 and "error" in limited.json()
    family.clock.t += 61
    assert family.call("POST", "/pair", json={"code": code, "name": "x"}).status_code == 200


def test_without_or_with_revoked_token_nothing_changes(family: Family) -> None:
    token = family.token()
    assert family.call("POST", "/reminders", token, json=BODY).status_code == 201
    before = family.reminders.list()
    for bad in (None, "not-a-token"):
        assert family.call("GET", "/reminders", bad).status_code == 401
        assert family.call("POST", "/reminders", bad, json=BODY).status_code == 401
        assert family.call("DELETE", f"/reminders/{before[0].id}", bad).status_code == 401
        assert family.call("POST", "/messages", bad, json={"text": "你好"}).status_code == 401
    assert family.pairing.revoke(family.pairing.devices()[0].id)
    assert family.call("GET", "/status", token).status_code == 403
    assert family.call("POST", "/reminders", token, json=BODY).status_code == 403
    assert family.call("PATCH", f"/reminders/{before[0].id}", token, json={"dose": "两片"}).status_code == 403
    assert family.call("DELETE", f"/reminders/{before[0].id}", token).status_code == 403
    assert family.reminders.list() == before
    assert family.spoken == []


def test_add_list_patch_delete_reminder(family: Family) -> None:
    token = family.token()
    added = family.call("POST", "/reminders", token, json=BODY)
    assert added.status_code == 201, added.text
    reminder = added.json()
    assert reminder["medicine"] == "降压药" and reminder["times"] == ["08:00", "20:00"]
    assert reminder["created_by"] == "family"
    listed = family.call("GET", "/reminders", token).json()["reminders"]
    assert [r["id"] for r in listed] == [reminder["id"]]
    patched = family.call("PATCH", f"/reminders/{reminder['id']}", token, json={"dose": "两片", "paused": True})
    assert patched.status_code == 200 and patched.json()["dose"] == "两片" and patched.json()["paused"]
    assert family.reminders.get(reminder["id"]).paused
    assert family.call("DELETE", f"/reminders/{reminder['id']}", token).status_code == 200
    assert family.reminders.list() == []
    assert family.call("DELETE", f"/reminders/{reminder['id']}", token).status_code == 404


def test_invalid_reminders_are_refused_and_change_nothing(family: Family) -> None:
    token = family.token()
    for bad in ({**BODY, "times": ["25:00"]}, {**BODY, "days": [0]}, {**BODY, "medicine": ""},
                {**BODY, "times": []}, {**BODY, "colour": "red"}):
        answer = family.call("POST", "/reminders", token, json=bad)
        assert answer.status_code == 422 and answer.json()["error"].startswith("invalid request"), bad
    rid = family.call("POST", "/reminders", token, json=BODY).json()["id"]
    before = family.reminders.list()
    assert family.call("PATCH", f"/reminders/{rid}", token, json={"times": ["8点"]}).status_code == 422
    assert family.call("PATCH", f"/reminders/{rid}", token, json={"id": "x"}).status_code == 422
    assert family.call("PATCH", f"/reminders/{rid}", token, json={}).status_code == 422
    assert family.call("PATCH", "/reminders/nope", token, json={"dose": "x"}).status_code == 404
    assert family.reminders.list() == before


def test_doses_for_a_day(family: Family) -> None:
    token = family.token()
    family.call("POST", "/reminders", token, json=BODY)
    tomorrow = dt.datetime.now(TZ).date() + dt.timedelta(days=1)
    answer = family.call("GET", "/doses", token, params={"date": tomorrow.isoformat()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["date"] == tomorrow.isoformat()
    assert [(d["scheduled"][11:16], d["status"], d["taken_at"]) for d in body["doses"]] == [
        ("08:00", "pending", None), ("20:00", "pending", None)]
    assert set(body["adherence"]) == {"7", "30"}
    assert family.call("GET", "/doses", token, params={"date": "2024-13-01"}).status_code == 422


def test_message_is_read_aloud(family: Family) -> None:
    token = family.token()
    answer = family.call("POST", "/messages", token, json={"text": "妈，周末我回来看您"})
    assert answer.status_code == 202
    assert family.spoken == ["儿子:妈，周末我回来看您"]  # the sender is the name given when pairing
    assert family.call("POST", "/messages", token, json={"text": "  "}).status_code == 422
    assert family.call("POST", "/messages", token, json={"text": "长" * 201}).status_code == 422
    assert family.spoken == ["儿子:妈，周末我回来看您"]  # refused messages are not read


def test_alerts_listed_without_details_and_acknowledged(family: Family) -> None:
    token = family.token()
    incident = family.engine.trigger("sos", "button", details={"utterance": "救命"})
    alerts = family.call("GET", "/alerts", token).json()["alerts"]
    assert [(a["id"], a["status"]) for a in alerts] == [(incident.id, "open")]
    assert "details" not in alerts[0] and "救命" not in str(alerts)
    acked = family.call("POST", f"/alerts/{incident.id}/ack", token)
    assert acked.status_code == 200 and acked.json()["outcome"] == "acknowledged"
    assert family.engine.open_incidents() == ()
    assert family.call("POST", f"/alerts/{incident.id}/ack", token).status_code == 404


def test_status(family: Family) -> None:
    body = family.call("GET", "/status", family.token()).json()
    assert body["assistant"]["online"] is True
    assert body["sensors"] == [] and "last_activity" in body


def test_new_code_for_the_cli(tmp_path: Path) -> None:
    code = new_code(tmp_path)
    pairing = Pairing.in_dir(tmp_path)
    try:
        device, token = pairing.pair(code, "儿子")
        assert pairing.authenticate(token) == device
        with pytest.raises(PairingError):
            pairing.pair(code, "女儿")
    finally:
        pairing.close()


def test_cli_lists_and_revokes_paired_phones(tmp_path) -> None:
    import subprocess
    import sys

    from assistant.pairing import Pairing

    pairing = Pairing.in_dir(tmp_path)
    device, token = pairing.pair(pairing.new_code(), "儿子", "127.0.0.1")
    pairing.close()
    run = lambda *args: subprocess.run([sys.executable, "-m", "assistant", "family", *args, "--home", str(tmp_path)],  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    listed = run("devices")
    assert listed.returncode == 0 and listed.stdout.split("\t")[:2] == [device.id, "儿子"]
    assert run("revoke", device.id).returncode == 0
    assert run("revoke", device.id).returncode == 2  # already revoked: one clear line, exit 2
    pairing = Pairing.in_dir(tmp_path)
    assert pairing.authenticate(token) is None or pairing.authenticate(token).revoked
    pairing.close()
