"""Tests for assistant.adherence (the dose log) and assistant.dose_coach (the dose conversation).

Everything runs on an injected clock and SQLite in a temp dir; nothing sleeps. Spoken lines are
checked by prompt key and values (the sentences live in voices/prompts.yaml).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from assistant.adherence import AdherenceLog, Dose, MissedMedication
from assistant.dose_coach import PROMPT_KEYS, DoseCoach
from assistant.reminders import DoseDue, Reminder, due_between
from assistant.scheduler import ReminderService

from .shared import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
DAY = dt.date(2026, 1, 1)  # a Thursday in the past, so the real scheduler never rings these doses


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)




def fake_prompts(key: str, values: dict[str, Any]) -> str:
    """Render a line as ``key {values}`` so tests can read both; checks the key against PROMPT_KEYS."""
    assert set(values) == PROMPT_KEYS[key], (key, values)
    return "%s %s" % (key, json.dumps(values, ensure_ascii=False, sort_keys=True))


def keys(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[0] for line in lines]


def due(reminder_id: str, hour: int, medicine: str = "降压药", dose: str = "一片", day: dt.date = DAY) -> DoseDue:
    return DoseDue(reminder_id, medicine, dose, "medication", at(hour, day=day))


@pytest.fixture()
def log(tmp_path: Path) -> AdherenceLog:
    adherence = AdherenceLog(tmp_path / "reminders.db", TZ)
    yield adherence
    adherence.close()


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(at(7))


@pytest.fixture()
def coach(log: AdherenceLog, clock: FakeClock) -> DoseCoach:
    return DoseCoach(log, fake_prompts, clock)


# --- the log ---------------------------------------------------------------------------------


def test_dose_and_missed_event_json_round_trip() -> None:
    dose = Dose("bp", "降压药", "一片", at(8), "taken", at(8, 5), 2)
    assert Dose.from_json(json.loads(json.dumps(dose.to_json()))) == dose
    assert dose.to_json()["scheduled"] == "2026-01-01T08:00:00+08:00" and dose.to_json()["status"] == "taken"
    event = MissedMedication.of(due("bp", 8), at(8, 40))
    wire = json.loads(json.dumps(event.to_json()))
    assert wire["kind"] == "missed_medication" and wire["created_at"] == "2026-01-01T08:40:00+08:00"
    assert MissedMedication.from_json(wire) == event


def test_record_due_is_idempotent_and_mark_missed_changes_once(log: AdherenceLog) -> None:
    assert log.record_due(due("bp", 8)) and not log.record_due(due("bp", 8))
    assert log.mark_missed(due("bp", 8)) and not log.mark_missed(due("bp", 8))
    assert log.mark_missed(due("bp", 12))  # never recorded due (device off): inserted as missed
    assert [(d.scheduled.hour, d.status) for d in log.doses_for_day(DAY)] == [(8, "missed"), (12, "missed")]


def test_confirm_taken_never_double_logs(log: AdherenceLog) -> None:
    assert log.confirm_taken(at(7, 50)) is None  # 「吃过了」 before any reminder is due
    assert log.doses_for_day(DAY) == []
    log.record_due(due("bp", 8))
    first = log.confirm_taken(at(8, 5))
    assert (first.status, first.taken_at) == ("taken", at(8, 5))
    again = log.confirm_taken(at(8, 6))  # said twice: the same dose, unchanged
    assert again == first
    assert [(d.status, d.taken_at) for d in log.doses_for_day(DAY)] == [("taken", at(8, 5))]
    assert log.confirm_taken(at(11)) == first  # later, nothing new due: still no second dose
    assert log.confirm_taken(at(13)) is None  # beyond the 4 h window it no longer refers to the 08:00 dose


def test_confirm_taken_picks_the_latest_dose_of_the_named_medicine(log: AdherenceLog) -> None:
    log.record_due(due("bp", 8))
    log.record_due(due("ca", 9, medicine="钙片", dose="两粒"))
    log.record_due(due("bp", 12))
    assert log.confirm_taken(at(12, 1), "钙").reminder_id == "ca"
    assert log.confirm_taken(at(12, 2)).scheduled == at(12)  # no medicine named: the most recent dose
    statuses = {(d.reminder_id, d.scheduled.hour): d.status for d in log.doses_for_day(DAY)}
    assert statuses == {("bp", 8): "pending", ("ca", 9): "taken", ("bp", 12): "taken"}
    assert log.confirm_taken(at(12, 3), "阿司匹林") is None  # no such medicine due


def test_confirm_window_and_late_confirmation_of_a_missed_dose(log: AdherenceLog) -> None:
    log.record_due(due("bp", 8))
    log.mark_missed(due("bp", 8))
    late = log.confirm_taken(at(9))  # she took it after all: the truth wins over "missed"
    assert (late.status, late.taken_at) == ("taken", at(9))
    log.record_due(due("bp", 20, day=DAY))
    assert log.confirm_taken(at(7, 50, day=DAY + dt.timedelta(days=1))) is None  # yesterday evening is too old


def test_doses_for_day_adds_expected_doses_as_pending(log: AdherenceLog) -> None:
    log.record_due(due("bp", 8))
    expected = [due("bp", 8), due("bp", 20), DoseDue("walk", "散步", "", "other", at(16))]
    doses = log.doses_for_day(DAY, expected)
    assert [(d.scheduled.hour, d.status) for d in doses] == [(8, "pending"), (20, "pending")]
    assert log.doses_for_day(DAY + dt.timedelta(days=1), expected) == []


def test_ratio_over_seven_and_thirty_days(log: AdherenceLog) -> None:
    for days_ago in range(30):
        day = DAY - dt.timedelta(days=days_ago)
        log.record_due(due("bp", 8, day=day))
        if days_ago % 3 == 0:
            log.mark_missed(due("bp", 8, day=day))
        else:
            log.confirm_taken(at(8, 10, day=day))
    log.record_due(due("bp", 20))  # pending: not counted
    assert log.ratio(at(21), 7) == pytest.approx(4 / 7)  # missed 0, 3, 6 days ago
    assert log.ratio(at(21), 30) == pytest.approx(20 / 30)
    assert log.ratio(at(21, day=DAY + dt.timedelta(days=400)), 7) is None


def test_doses_are_kept_ninety_days(log: AdherenceLog) -> None:
    for days_ago in (0, 89, 90, 91, 200):
        log.record_due(due("bp", 8, day=DAY - dt.timedelta(days=days_ago)))
    assert log.prune(at(9)) == 2
    assert log.doses_for_day(DAY - dt.timedelta(days=90)) != []
    assert log.doses_for_day(DAY - dt.timedelta(days=91)) == []
    with pytest.raises(ValueError, match="at least 90 days"):
        AdherenceLog(Path(log._db.execute("PRAGMA database_list").fetchone()[2]), TZ, keep_days=30)


# --- the dose conversation -------------------------------------------------------------------


def test_a_day_with_a_confirmed_a_forgotten_and_a_future_dose(tmp_path: Path) -> None:
    clock = FakeClock(at(7))
    missed: list[MissedMedication] = []
    service = ReminderService(tmp_path, lambda d: None, on_missed=missed.append, now=clock, tz=TZ)
    service.start()
    try:
        service.add(Reminder(id="bp", kind="medication", medicine="降压药", dose="一片", times=("08:00", "20:00")))
        service.add(Reminder(id="ca", kind="medication", medicine="钙片", dose="", times=("12:00",)))
        coach = DoseCoach(service.adherence, fake_prompts, clock, schedule=service.due_on)
        said: list[str] = []

        def live_until(moment: dt.datetime) -> None:
            """Let the clock run minute by minute: fire what comes due, tick the coach."""
            while clock() < moment:
                before = clock()
                clock.advance(minutes=1)
                for d in service.due_between(before, clock()):
                    service.fire(d)
                    said.extend(coach.due(d))
                lines, events = coach.tick()
                said.extend(lines)
                missed.extend(events)

        live_until(at(8, 3))
        assert keys(said) == ["dose_due"] and '"medicine": "降压药", "time": "08:00"' in said[0]
        assert keys(coach.taken()) == ["dose_taken"]  # 「吃过了」 at 08:03
        live_until(at(13, 30))  # the 12:00 calcium is never confirmed
        assert keys(said) == ["dose_due", "dose_due", "dose_reprompt", "dose_reprompt", "dose_reprompt", "dose_missed"]
        assert [m.reminder_id for m in missed] == ["ca"] and missed[0].scheduled == at(12)
        live_until(at(14))  # ticking on adds nothing
        assert len(missed) == 1 and len(said) == 6

        doses = service.doses_for_day(DAY)
        assert [(d.medicine, d.scheduled.hour, d.status) for d in doses] == [
            ("降压药", 8, "taken"), ("钙片", 12, "missed"), ("降压药", 20, "pending")]
        assert doses[0].taken_at == at(8, 3)
        assert keys(coach.today_summary()) == ["dose_item_taken", "dose_item_missed", "dose_item_upcoming"]
        assert [d.to_json()["status"] for d in doses] == ["taken", "missed", "pending"]
    finally:
        service.shutdown()


def test_reprompts_every_ten_minutes_three_times_then_one_missed_event(coach: DoseCoach, clock: FakeClock) -> None:
    clock.now = at(8)
    assert keys(coach.due(due("bp", 8))) == ["dose_due"]
    timeline = []
    for minute in range(1, 61):
        clock.now = at(8) + dt.timedelta(minutes=minute)
        lines, events = coach.tick()
        if lines or events:
            timeline.append((minute, keys(lines), [e.kind for e in events]))
    assert timeline == [(10, ["dose_reprompt"], []), (20, ["dose_reprompt"], []), (30, ["dose_reprompt"], []),
                        (40, ["dose_missed"], ["missed_medication"])]
    [dose] = coach.adherence.doses_for_day(DAY)
    assert (dose.status, dose.prompts_sent) == ("missed", 4)
    assert coach.watching == []


def test_reprompt_interval_and_count_are_configurable(log: AdherenceLog, clock: FakeClock) -> None:
    coach = DoseCoach(log, fake_prompts, clock, reprompt_every=300, max_prompts=1)
    clock.now = at(8)
    coach.due(due("bp", 8))
    clock.now = at(8, 5)
    assert keys(coach.tick()[0]) == ["dose_reprompt"]
    clock.now = at(8, 10)
    lines, events = coach.tick()
    assert keys(lines) == ["dose_missed"] and len(events) == 1


def test_saying_taken_twice_or_too_early_never_double_logs(coach: DoseCoach, clock: FakeClock) -> None:
    clock.now = at(7, 50)
    assert keys(coach.taken()) == ["dose_none_due"]
    assert coach.adherence.doses_for_day(DAY) == []
    clock.now = at(8)
    coach.due(due("bp", 8))
    clock.now = at(8, 2)
    assert keys(coach.taken("降压药")) == ["dose_taken"]
    clock.now = at(8, 30)
    [line] = coach.taken()
    assert line.startswith("dose_already_taken") and '"time": "08:02"' in line and '"medicine": "降压药"' in line
    assert [(d.status, d.taken_at) for d in coach.adherence.doses_for_day(DAY)] == [("taken", at(8, 2))]
    assert coach.tick() == ([], [])  # confirmed: no more re-prompts


def test_a_dose_rung_twice_is_said_once(coach: DoseCoach, clock: FakeClock) -> None:
    clock.now = at(8)
    assert keys(coach.due(due("bp", 8))) == ["dose_due"]
    assert coach.due(due("bp", 8)) == []
    coach.taken()
    assert coach.due(due("bp", 8)) == []


def test_other_reminders_are_said_but_not_logged(coach: DoseCoach) -> None:
    walk = DoseDue("walk", "出去散步", "", "other", at(16))
    assert coach.due(walk) == ['reminder_due {"time": "16:00", "what": "出去散步"}']
    assert keys(coach.due(DoseDue("x", "", "", "other", at(16)))) == ["reminder_due_plain"]
    assert coach.adherence.doses_for_day(DAY) == [] and coach.watching == []


def test_today_summary_names_each_state(log: AdherenceLog, clock: FakeClock) -> None:
    reminders = [Reminder(id="bp", kind="medication", medicine="降压药", dose="一片", times=("08:00", "20:00")),
                 Reminder(id="ca", kind="medication", medicine="钙片", times=("12:00",))]

    def schedule(day: dt.date) -> list[DoseDue]:
        start = dt.datetime(day.year, day.month, day.day, tzinfo=TZ)
        return due_between(reminders, start - dt.timedelta(seconds=1), start + dt.timedelta(days=1))

    coach = DoseCoach(log, fake_prompts, clock, schedule=schedule, say_time=lambda h, m: "%d点" % h)
    assert keys(coach.today_summary()) == ["dose_item_upcoming"] * 3
    clock.now = at(12, 5)
    coach.due(due("bp", 8))
    coach.adherence.confirm_taken(at(8, 1))
    coach.due(due("ca", 12, medicine="钙片", dose=""))
    lines = coach.today_summary()
    assert keys(lines) == ["dose_item_taken", "dose_item_due", "dose_item_upcoming"]
    assert '"time": "12点"' in lines[1] and '"dose_part": ""' in lines[1]
    clock.now = at(12, 10)
    coach.taken("钙片")
    clock.now = at(21)
    log.record_due(due("bp", 20))
    coach.taken()
    assert keys(coach.today_summary())[-1] == "doses_all_taken"
    empty = DoseCoach(log, fake_prompts, lambda: at(9, day=DAY + dt.timedelta(days=5)))
    assert keys(empty.today_summary()) == ["doses_none_today"]


def test_restore_resumes_coaching_after_a_restart(log: AdherenceLog, clock: FakeClock) -> None:
    clock.now = at(8)
    before = DoseCoach(log, fake_prompts, clock)
    before.due(due("bp", 8))
    log.record_due(due("old", 8, day=DAY - dt.timedelta(days=3)))  # stale pending from a crash days ago
    clock.now = at(8, 25)  # the process restarted: a new coach with an empty memory
    after = DoseCoach(log, fake_prompts, clock)
    after.restore()
    assert [d.reminder_id for d in after.watching] == ["bp"]
    assert log.doses_for_day(DAY - dt.timedelta(days=3))[0].status == "missed"  # closed quietly, no alert
    lines, events = after.tick()  # first prompt was at 08:00, so a re-prompt is overdue
    assert keys(lines) == ["dose_reprompt"] and events == []
    clock.now = at(9)
    for _ in range(3):
        clock.advance(minutes=10)
        lines, events = after.tick()
    assert len(events) == 1 and events[0].reminder_id == "bp"
