"""Tests of the ``yinling`` command line: the JSON format of ``parse``, batch mode, exit codes and errors.

Intents are not asserted here (that is tests/test_recognize.py); only the contract's format is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from assistant.__main__ import main

RESULT_KEYS = {"text", "intent", "confidence", "slots"}


@pytest.fixture(autouse=True)
def _no_yinling_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own YINLING_* variables must not change what the CLI does in these tests."""
    for name in list(os.environ):
        if name.startswith("YINLING_"):
            monkeypatch.delenv(name)


def clean_env() -> dict[str, str]:
    """Environment for subprocesses: the current one without YINLING_* variables."""
    return {name: value for name, value in os.environ.items() if not name.startswith("YINLING_")}


def run_cli(
    args: list[Any], stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m assistant`` as a real process (the same code the ``yinling`` script runs)."""
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True,
        env=env if env is not None else clean_env(), timeout=120, check=False,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Parse JSONL output, checking every line is one object in the contract's format."""
    assert stdout.endswith("\n")
    objects = [json.loads(line) for line in stdout.splitlines()]
    for obj in objects:
        assert set(obj) >= RESULT_KEYS, obj
        assert isinstance(obj["text"], str)
        assert isinstance(obj["intent"], str) and obj["intent"]
        assert isinstance(obj["confidence"], (int, float)) and 0 <= obj["confidence"] <= 1
        assert isinstance(obj["slots"], dict)
    return objects


def test_parse_prints_exactly_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "帮我打开电视"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    [result] = json_lines(out)
    assert result["text"] == "帮我打开电视"
    assert "\\u" not in out  # ensure_ascii=False: Chinese stays readable


def test_parse_joins_several_words(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "turn", "on", "the", "light"]) == 0
    [result] = json_lines(capsys.readouterr().out)
    assert result["text"] == "turn on the light"


def test_accent_tolerant_flag_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--accent-tolerant", "几点了"]) == 0
    assert len(json_lines(capsys.readouterr().out)) == 1


def test_batch_file_keeps_order_and_skips_blank_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "utterances.txt"
    batch.write_text("第一句\n\n   \n第二句\r\n第三句", encoding="utf-8")
    assert main(["parse", "--batch", str(batch)]) == 0
    results = json_lines(capsys.readouterr().out)
    assert [result["text"] for result in results] == ["第一句", "第二句", "第三句"]


def test_garbage_batch_gives_one_json_object_per_non_blank_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        b"\xff\xfe\x00\x80\xc3garbage\x1b[31m",
        "奶奶😀👵🏻🚑".encode(),
        ("长" * 10_000).encode(),
        b"turn on the light please",
        b"",
        b"\t ",
        "\u200b零宽\u0000字符".encode(),
    ]
    batch = tmp_path / "garbage.txt"
    batch.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["parse", "--batch", str(batch)]) == 0
    captured = capsys.readouterr()
    assert len(json_lines(captured.out)) == 5
    assert "Traceback" not in captured.err


def test_global_options_work_before_and_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home_file = tmp_path / "home.toml"
    home_file.write_text('[intents]\naccent_tolerant = true\n', encoding="utf-8")
    assert main(["--config", str(home_file), "--home", str(tmp_path), "parse", "你好"]) == 0
    assert main(["parse", "你好", "--config", str(home_file), "--home", str(tmp_path)]) == 0
    assert len(json_lines(capsys.readouterr().out)) == 2


@pytest.mark.parametrize(
    "text",
    ['[mqtt]\nport = "high"\n', "[mqtt\n", "[nonsense]\nx = 1\n", '[[devices]]\nname = "a"\nrole = "toaster"\n'],
    ids=["wrong_type", "syntax", "unknown_section", "bad_role"],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    home_file = tmp_path / "home.toml"
    home_file.write_text(text, encoding="utf-8")
    assert main(["--config", str(home_file), "parse", "你好"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert str(home_file) in captured.err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "你好", "--config", str(tmp_path / "absent.toml")]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_bad_env_variable_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("YINLING_MQTT_PORT", "not-a-port")
    assert main(["parse", "你好"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "YINLING_MQTT_PORT" in err


@pytest.mark.parametrize(
    "argv",
    [[], ["parse"], ["parse", "x", "--batch", "-"], ["frobnicate"], ["parse", "--no-such-flag", "x"]],
    ids=["no_command", "no_text", "text_and_batch", "unknown_command", "unknown_flag"],
)
def test_bad_usage_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1


def test_unreadable_batch_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--batch", str(tmp_path / "absent.txt")]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("yinling ")
    assert main(["parse", "--help"]) == 0
    assert "--batch" in capsys.readouterr().out


def test_run_rejects_text_together_with_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--text", "--input", "x.wav"]) == 2
    assert "not both" in capsys.readouterr().err


# --- as a real process ----------------------------------------------------------------------------


def test_subprocess_parse_text() -> None:
    done = run_cli(["parse", "明天早上八点提醒我吃药"])
    assert done.returncode == 0, done.stderr
    [result] = json_lines(done.stdout.decode("utf-8"))
    assert result["text"] == "明天早上八点提醒我吃药"


def test_subprocess_batch_from_stdin_keeps_order() -> None:
    stdin = "一\n\n二\n三\n".encode() + b"\xff\xfe\n" + "四\n".encode()
    done = run_cli(["parse", "--batch", "-"], stdin=stdin)
    assert done.returncode == 0, done.stderr
    texts = [result["text"] for result in json_lines(done.stdout.decode("utf-8"))]
    assert texts[:3] == ["一", "二", "三"] and texts[4] == "四" and len(texts) == 5
    assert b"Traceback" not in done.stderr


def test_subprocess_argument_that_is_not_utf8() -> None:
    done = run_cli(["parse", b"\xff\xfe\xfd"])
    assert done.returncode == 0, done.stderr
    assert len(json_lines(done.stdout.decode("utf-8"))) == 1


def test_subprocess_outputs_utf8_even_with_an_ascii_locale() -> None:
    env = {**clean_env(), "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    done = run_cli(["parse", "你好"], env=env)
    assert done.returncode == 0, done.stderr
    [result] = json_lines(done.stdout.decode("utf-8"))
    assert result["text"] == "你好"


def test_subprocess_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    home_file = tmp_path / "home.toml"
    home_file.write_text("[web]\nport = 99999\n", encoding="utf-8")
    done = run_cli(["parse", "--config", str(home_file), "你好"])
    assert done.returncode == 2
    assert done.stdout == b""
    err = done.stderr.decode("utf-8")
    assert len(err.splitlines()) == 1 and "web.port" in err and "Traceback" not in err


def test_installed_script_runs() -> None:
    script = Path(sys.executable).with_name("yinling")
    if not script.exists():
        pytest.skip("no yinling script next to the interpreter (not installed in a venv)")
    done = subprocess.run([str(script), "--version"], capture_output=True, env=clean_env(), timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.startswith(b"yinling ")


def test_parser_does_not_import_the_heavy_parts() -> None:
    """`yinling parse` starts in well under a second: building the CLI must not load servers or audio."""
    code = ("import sys; from assistant.__main__ import build_parser; build_parser(); "
            "heavy = [m for m in ('fastapi', 'uvicorn', 'vosk', 'sounddevice', 'paho', 'apscheduler') if m in sys.modules]; "
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
