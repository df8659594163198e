"""Killing the whole assistant (SIGKILL) mid-ladder: the restarted process continues the same incident
at the step it had reached, without sending that step's alert again."""

import signal
import subprocess
import sys
from pathlib import Path

from tests.mqtt_broker import Broker, Recorder

HOME_TOML = """[mqtt]
host = "127.0.0.1"
port = {port}

[escalation]
community_timeout = 3.0

[[devices]]
name = "sos_button"
role = "sos"
room = "bedroom"
"""


def start_assistant(tmp_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "assistant", "run", "--text", "--config", str(tmp_path / "home.toml"),
                             "--home", str(tmp_path / "home")],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_quietly(recorder: Recorder, *, count: int, timeout: float) -> bool:
    """True if ``count`` alerts arrived within ``timeout`` seconds."""
    try:
        recorder.wait_for("yinling/home-001/alert", count=count, timeout=timeout)
    except AssertionError:
        return False
    return True


def test_sigkill_mid_ladder_then_restart_continues_without_duplicates(tmp_path: Path) -> None:
    with Broker(tmp_path / "broker").start() as broker:
        (tmp_path / "home.toml").write_text(HOME_TOML.format(port=broker.port), encoding="utf-8")
        recorder = Recorder(broker, ("yinling/home-001/alert", "yinling/home-001/status"))
        first = start_assistant(tmp_path)
        try:
            recorder.wait_for("yinling/home-001/status", lambda m: m.payload == b"online", timeout=15)
            # "online" goes out just before the subscriptions are acknowledged: press again until heard
            # (presses while the incident is open belong to the same incident)
            for _ in range(20):
                recorder.publish("zigbee2mqtt/sos_button", {"action": "emergency"})
                if wait_quietly(recorder, count=1, timeout=0.5):
                    break
            (community,) = recorder.wait_for("yinling/home-001/alert", timeout=5)
            assert community.json()["level"] == "community"
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        second = start_assistant(tmp_path)
        try:
            alerts = recorder.wait_for("yinling/home-001/alert", count=2, timeout=20)
            assert [a.json()["level"] for a in alerts] == ["community", "emergency"]
            assert alerts[0].json()["incident"] == alerts[1].json()["incident"]
            assert not wait_quietly(recorder, count=3, timeout=1.0)  # no repeated community alert follows
        finally:
            second.stdin.close()
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)
            recorder.close()
