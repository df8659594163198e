"""Tests for assistant.doctor: every part gets one plain line; broken parts name the fix."""

import socket
from pathlib import Path

from assistant import config, doctor
from assistant.doctor import BROKEN, OK, SKIPPED


def test_no_devices_no_model_here(tmp_path: Path) -> None:
    cfg = config.load(env={})
    assert doctor.check_microphone(cfg, tmp_path).mark == BROKEN
    assert "未找到麦克风" in doctor.check_microphone(cfg, tmp_path).detail
    assert doctor.check_model(cfg, tmp_path).mark == BROKEN
    assert doctor.check_voice(cfg, tmp_path).mark == OK
    assert doctor.check_broker(cfg, tmp_path).mark == SKIPPED
    assert doctor.check_platform(cfg, tmp_path).mark == SKIPPED


def test_broker_reachable_or_not(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        cfg = config.load(env={}, overrides={"mqtt": {"host": "127.0.0.1", "port": port}})
        assert doctor.check_broker(cfg, tmp_path).mark == OK
    finding = doctor.check_broker(cfg, tmp_path)
    assert finding.mark == BROKEN and "[mqtt]" in finding.detail


def test_run_prints_one_line_per_check_and_fails_when_broken(tmp_path: Path, capsys) -> None:
    import io

    out = io.StringIO()
    assert doctor.run(config.load(env={}), tmp_path, out) == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == len(doctor.CHECKS) + 1
