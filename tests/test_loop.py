"""End-to-end tests of `yinling run --text`: whole conversations, exact spoken lines and events, in order."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.loop import EVENT_PREFIX
from voices.speaker import SPOKEN_PREFIX


def run_text(tmp_path: Path, lines: list[str], *extra: str, config: str = "") -> tuple[list[str], list[dict]]:
    """Run the assistant in text mode; return the spoken lines and the events, each in order."""
    args = [sys.executable, "-m", "assistant", "run", "--text", "--events", "--home", str(tmp_path / "home"), *extra]
    if config:
        (tmp_path / "home.toml").write_text(config, encoding="utf-8")
        args += ["--config", str(tmp_path / "home.toml")]
    done = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    spoken = [line[len(SPOKEN_PREFIX):] for line in done.stdout.splitlines() if line.startswith(SPOKEN_PREFIX)]
    events = [json.loads(line[len(EVENT_PREFIX):]) for line in done.stdout.splitlines()
              if line.startswith(EVENT_PREFIX)]
    assert all(line.startswith((SPOKEN_PREFIX, EVENT_PREFIX)) for line in done.stdout.splitlines())
    return spoken, events


def test_order_lunch_conversation(tmp_path: Path) -> None:
    spoken, events = run_text(tmp_path, ["帮我订午饭", "两份", "对", "再说一遍"])
    assert spoken[1:] == ["给您订两份午饭，对吗？", "好的，午饭订好了，送到了我告诉您。", "好的，午饭订好了，送到了我告诉您。"]
    assert spoken[0] == "您要几份？"
    assert [(e["kind"], e["service"], e["details"]) for e in events] == [("order", "meal", {"meal": "lunch", "quantity": 2})]
    log = (tmp_path / "home" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in log] == [events[0]["id"]]


@pytest.mark.parametrize("answer", ["不对", "算了"])
def test_no_means_no_order(tmp_path: Path, answer: str) -> None:
    spoken, events = run_text(tmp_path, ["我要两份晚饭", answer])
    assert spoken[0] == "给您订两份晚饭，对吗？" and len(spoken) == 2
    assert events == []


def test_time_and_emergency(tmp_path: Path) -> None:
    spoken, events = run_text(tmp_path, ["现在几点了", "电视别关，救命啊"], config='[home]\nelder_name = "李大爷"\n')
    assert spoken[0].startswith("李大爷，现在是") or spoken[0].startswith("现在是")
    assert "点" in spoken[0]
    assert "李大爷" in spoken[1]
    assert [(e["kind"], e["urgency"]) for e in events] == [("help", "emergency")]


def test_unanswered_question_times_out_with_one_polite_line(tmp_path: Path) -> None:
    (tmp_path / "home.toml").write_text("[dialogue]\ntimeout = 1.0\n", encoding="utf-8")
    args = [sys.executable, "-m", "assistant", "run", "--text", "--home", str(tmp_path / "home"),
            "--config", str(tmp_path / "home.toml")]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("帮我订饭\n")
        proc.stdin.flush()
        started = time.monotonic()
        question = proc.stdout.readline()
        timeout_line = proc.stdout.readline()  # bounded: the assistant speaks after 1 s
        waited = time.monotonic() - started
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == 0
    assert question.startswith(SPOKEN_PREFIX) and timeout_line.startswith(SPOKEN_PREFIX)
    assert timeout_line.strip() in {f"{SPOKEN_PREFIX}您还在吗？有事您再叫我。", f"{SPOKEN_PREFIX}我先歇一会儿，您有事再叫我。"}
    assert 0.9 <= waited < 10
    assert rest == ""


def test_no_microphone_and_no_model_falls_back_to_text_mode(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "assistant", "run", "--home", str(tmp_path / "home")],
                          input="现在几点了\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    problem = [line for line in done.stderr.splitlines() if "falling back to text mode" in line]
    assert len(problem) == 1 and "yinling model install" in problem[0] and "未找到麦克风" in problem[0]
    assert done.stdout.startswith(SPOKEN_PREFIX) and "现在是" in done.stdout


def test_lunar_date_for_the_machines_date(tmp_path: Path) -> None:
    import datetime as dt

    from lunar_python import Solar

    today = dt.date.today()
    lunar = Solar.fromYmd(today.year, today.month, today.day).getLunar()
    spoken, _ = run_text(tmp_path, ["今天农历初几"])
    assert spoken[0] == f"今天是农历{lunar.getMonthInChinese()}月{lunar.getDayInChinese()}。"


def test_jokes_do_not_repeat_twice_in_a_row(tmp_path: Path) -> None:
    from assistant.chat import load_items

    jokes = [item.lines for item in load_items("jokes")]
    spoken, _ = run_text(tmp_path, ["讲个笑话"] * 4)
    told = []
    while spoken:
        joke = next(lines for lines in jokes if tuple(spoken[:len(lines)]) == lines)
        told.append(joke)
        spoken = spoken[len(joke):]
    assert len(told) == 4
    assert all(a != b for a, b in zip(told, told[1:]))


def test_reminders_by_voice_set_list_ask_and_cancel(tmp_path: Path) -> None:
    spoken, _ = run_text(tmp_path, ["每天晚上九点提醒我吃降压药", "对", "我定了哪些提醒", "吃过了",
                                    "把晚上那个提醒取消了", "对", "我定了哪些提醒"])
    assert spoken == [
        "每天晚上九点吃降压药，我到时候提醒您，对吗？",
        "好的，记下了：每天晚上九点吃降压药。",
        "您一共有一个提醒。", "每天晚上九点吃降压药。",
        "好的。现在没有该吃的药，我记着呢。",  # 「吃过了」 before any dose is due logs nothing
        "把每天晚上九点吃降压药这个提醒取消，对吗？",
        "好的，每天晚上九点吃降压药的提醒取消了。",
        "您现在没有定提醒。",
    ]


def test_reminder_survives_a_restart_and_bad_times_are_refused(tmp_path: Path) -> None:
    run_text(tmp_path, ["每天早上八点提醒我吃二甲双胍", "对"])
    spoken, _ = run_text(tmp_path, ["我定了哪些提醒", "二十五点提醒我吃药"])
    assert spoken[:2] == ["您一共有一个提醒。", "每天八点吃二甲双胍。"]
    assert spoken[2] == "几点提醒您？"  # 二十五点 is not a time: the question is asked, nothing stored


def test_is_my_meal_ordered(tmp_path: Path) -> None:
    spoken, events = run_text(tmp_path, ["我的饭订上了吗", "帮我订午饭", "一份", "对", "我的饭订上了吗"])
    assert spoken[0].startswith("您还没有订过饭")
    assert spoken[-1] == "饭的订单已经记下了，还没送到社区，网络好了我马上送过去。"  # no platform configured
    assert [e["kind"] for e in events] == ["order"]
