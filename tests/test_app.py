"""Tests for assistant.app: the wiring of scheduler, dose conversation, dialogue and speaker."""

import datetime as dt
import io
import json
from pathlib import Path

from assistant import app, config
from assistant.reminders import DoseDue, Reminder
from voices.speaker import TextSpeaker


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
