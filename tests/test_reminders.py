"""Tests for assistant.reminders, assistant.reminder_store, assistant.reminder_jobs and assistant.scheduler.

Most tests use an injected clock and the pure occurrence computation; the service runs a real
APScheduler on SQLite in a temp dir. Two real-time tests run the service in a child process (this
module with ``child`` arguments), SIGKILL it between scheduling and firing, and restart it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from assistant.adherence import MissedMedication
from assistant.errors import ReminderError, UsageError
from assistant.reminders import (
    DoseDue,
    Reminder,
    due_between,
    last_due,
    medicine_matches,
    pick,
    reminder_from_slots,
)
from assistant.scheduler import ReminderService

from .shared import FakeClock

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
# A Thursday in the past: the real scheduler's jobs (real time) always lie after the fake clock's occurrences.
THURSDAY = dt.datetime(2026, 1, 1, 7, 0, tzinfo=TZ)




def pill(**fields: object) -> Reminder:
    """A daily medication reminder with overridable fields."""
    values = {"id": "bp", "kind": "medication", "medicine": "降压药", "dose": "一片", "times": ("08:00", "20:00")}
    return Reminder(**{**values, **fields})


def body(**fields: object) -> dict:
    """A family API POST body (CONTRACTS.md §7) with overridable fields."""
    return {"kind": "medication", "medicine": "降压药", "dose": "一片", "times": ["08:00", "20:00"],
            "days": [1, 2, 3, 4, 5, 6, 7], **fields}


class Recorder:
    """Collects fired doses and missed events; ``wait`` blocks (bounded) until enough fired."""

    def __init__(self) -> None:
        self.fired: list[DoseDue] = []
        self.missed: list[MissedMedication] = []
        self._event = threading.Condition()

    def fire(self, due: DoseDue) -> None:
        with self._event:
            self.fired.append(due)
            self._event.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> bool:
        with self._event:
            return self._event.wait_for(lambda: len(self.fired) >= count, timeout)


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def service(tmp_path: Path, recorder: Recorder):
    svc = ReminderService(tmp_path, recorder.fire, on_missed=recorder.missed.append, tz=TZ)
    svc.start()
    yield svc
    svc.shutdown()


# --- the model -------------------------------------------------------------------------------


def test_json_round_trip_of_a_repeating_and_a_one_off_reminder() -> None:
    daily = pill(days=(1, 3, 5), start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 31), created_by="family")
    once = Reminder(id="x", kind="other", medicine="量血压", times=("15:00",), days=(),
                    once_at=dt.datetime(2026, 11, 27, 15, 0, tzinfo=TZ))
    for reminder in (daily, once):
        wire = json.loads(json.dumps(reminder.to_json()))
        assert Reminder.from_json(wire, tz=TZ) == reminder
    assert {"kind", "medicine", "dose", "times", "days", "id", "paused"} <= daily.to_json().keys()
    assert daily.to_json()["times"] == ["08:00", "20:00"] and daily.to_json()["days"] == [1, 3, 5]


def test_family_body_is_normalised() -> None:
    reminder = Reminder.from_json(body(times=["20:00", "08:00", "08:00"], days=[7, 1, 1]), tz=TZ, id="r1")
    assert reminder.times == ("08:00", "20:00") and reminder.days == (1, 7) and reminder.id == "r1"
    assert reminder.created_by == "family"
    once = Reminder.from_json({"kind": "other", "medicine": "", "once_at": "2026-11-27T15:30"}, tz=TZ)
    assert once.once_at == dt.datetime(2026, 11, 27, 15, 30, tzinfo=TZ) and once.times == ("15:30",)


def test_dose_due_round_trip() -> None:
    due = DoseDue("bp", "降压药", "一片", "medication", THURSDAY.replace(hour=8))
    assert DoseDue.from_json(json.loads(json.dumps(due.to_json()))) == due
    assert due.at == "08:00"


@pytest.mark.parametrize(("fields", "words"), [
    ({"times": ["25:00"]}, "'25:00' is not a 24-hour HH:MM"),
    ({"times": ["8:5"]}, "'8:5' is not a 24-hour HH:MM"),
    ({"times": ["12:60"]}, "'12:60' is not a 24-hour HH:MM"),
    ({"times": []}, "at least one time of day"),
    ({"times": "08:00"}, "times must be a list"),
    ({"days": [0]}, "weekday 0 is not an ISO weekday"),
    ({"days": [1, 8]}, "weekday 8 is not an ISO weekday"),
    ({"days": ["Mon"]}, "weekday 'Mon' is not an ISO weekday"),
    ({"days": [True]}, "weekday True is not an ISO weekday"),
    ({"days": []}, "non-empty list of ISO weekdays"),
    ({"medicine": ""}, "needs the name of the medicine"),
    ({"medicine": "   "}, "needs the name of the medicine"),
    ({"kind": "alarm"}, "kind must be"),
    ({"start": "2026-12-01", "end": "2026-11-01"}, "end date 2026-11-01 is before the start date 2026-12-01"),
    ({"start": "December"}, "start must be a date YYYY-MM-DD"),
    ({"once_at": "tomorrow"}, "once_at must be a date and time"),
    ({"once_at": "2026-11-27T15:00", "times": ["08:00"]}, "rings only at its once_at time 15:00"),
    ({"paused": "yes"}, "paused must be true or false"),
])
def test_bad_requests_are_refused_with_one_clear_sentence(fields: dict, words: str) -> None:
    with pytest.raises(ReminderError, match=words.replace("(", r"\(")) as caught:
        Reminder.from_json(body(**fields), tz=TZ)
    message = str(caught.value)
    assert message.count(". ") == 0 and "\n" not in message


def test_bad_requests_store_nothing(service: ReminderService) -> None:
    now = dt.datetime.now(TZ)
    past = (now - dt.timedelta(minutes=1)).replace(microsecond=0)
    with pytest.raises(ReminderError, match="has already passed"):
        service.add(Reminder(id="late", kind="medication", medicine="钙片", times=(past.strftime("%H:%M"),),
                             days=(), once_at=past))
    with pytest.raises(ReminderError, match="end date .* is already past"):
        service.add(pill(end=now.date() - dt.timedelta(days=1)))
    for fields in ({"times": ["25:00"]}, {"days": [8]}, {"medicine": ""}):
        with pytest.raises(ReminderError):
            service.add(Reminder.from_json(body(**fields), tz=TZ))
    with pytest.raises(ReminderError):  # one bad reminder in a batch stores none of them
        service.add_many([pill(id="ok"), pill(id="late", once_at=past, times=(past.strftime("%H:%M"),), days=())])
    assert service.list() == [] and service.jobs() == {}
    service.add(pill())
    with pytest.raises(ReminderError, match="25:00"):
        service.update("bp", times=["25:00"])
    with pytest.raises(ReminderError, match="cannot be changed"):
        service.update("bp", id="other")
    with pytest.raises(ReminderError, match="no reminder with id"):
        service.delete("nope")
    assert service.get("bp").times == ("08:00", "20:00")
    assert set(service.jobs()) == {"reminder:bp:08:00", "reminder:bp:20:00"}


def test_reminder_from_voice_slots() -> None:
    now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=TZ)  # Thursday
    slots = {"kind": "medication", "medicine": "降压药", "time": "08:00", "dose": "一片"}
    daily = reminder_from_slots(slots, now=now)
    assert daily.days == (1, 2, 3, 4, 5, 6, 7) and daily.times == ("08:00",) and daily.created_by == "voice"
    weekly = reminder_from_slots({"medicine": "钙片", "time": "20:00", "repeat": "weekly"}, now=now)
    assert weekly.days == (4,) and weekly.kind == "medication"
    once = reminder_from_slots({"medicine": "买菜", "kind": "other", "time": "08:30", "repeat": "once"}, now=now)
    assert once.once_at == dt.datetime(2026, 11, 27, 8, 30, tzinfo=TZ)  # 08:30 today has passed
    with pytest.raises(ReminderError, match="needs a time"):
        reminder_from_slots({"medicine": "降压药"}, now=now)
    with pytest.raises(ReminderError, match="needs the name of the medicine"):
        reminder_from_slots({"kind": "medication", "time": "08:00"}, now=now)


def test_due_between_follows_weekdays_dates_since_and_pause() -> None:
    weekdays = pill(id="w", times=("08:00",), days=(1, 2, 3, 4, 5), end=dt.date(2026, 12, 1))
    paused = pill(id="p", paused=True)
    fresh = pill(id="f", times=("08:00", "20:00"), since=dt.datetime(2026, 11, 26, 9, 0, tzinfo=TZ))
    once = Reminder(id="o", kind="other", medicine="", times=("15:00",), days=(),
                    once_at=dt.datetime(2026, 11, 28, 15, 0, tzinfo=TZ))
    start = dt.datetime(2026, 11, 26, 0, 0, tzinfo=TZ)  # Thursday
    dues = due_between([weekdays, paused, fresh, once], start, start + dt.timedelta(days=7))
    got = [(d.reminder_id, d.scheduled.strftime("%a %m-%d %H:%M")) for d in dues]
    assert got == [
        ("w", "Thu 11-26 08:00"), ("f", "Thu 11-26 20:00"), ("f", "Fri 11-27 08:00"), ("w", "Fri 11-27 08:00"),
        ("f", "Fri 11-27 20:00"), ("f", "Sat 11-28 08:00"), ("o", "Sat 11-28 15:00"), ("f", "Sat 11-28 20:00"),
        ("f", "Sun 11-29 08:00"), ("f", "Sun 11-29 20:00"), ("f", "Mon 11-30 08:00"), ("w", "Mon 11-30 08:00"),
        ("f", "Mon 11-30 20:00"), ("f", "Tue 12-01 08:00"), ("w", "Tue 12-01 08:00"), ("f", "Tue 12-01 20:00"),
        ("f", "Wed 12-02 08:00"), ("f", "Wed 12-02 20:00"),
    ]
    # the window is half-open: (start, end]
    eight = start.replace(hour=8)
    assert [d.scheduled for d in due_between([weekdays], eight, eight)] == []
    assert [d.scheduled for d in due_between([weekdays], eight - dt.timedelta(seconds=1), eight)] == [eight]


def test_last_due_finds_the_occurrence_a_job_stands_for() -> None:
    reminder = pill(days=(1,))  # Mondays
    monday_eight = dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
    assert last_due(reminder, "08:00", monday_eight + dt.timedelta(minutes=20)) == monday_eight
    assert last_due(reminder, "08:00", monday_eight + dt.timedelta(days=3)) == monday_eight
    assert last_due(reminder, "08:00", monday_eight - dt.timedelta(seconds=1)) == monday_eight  # a hair early


def test_pick_and_medicine_matching() -> None:
    morning, evening = pill(id="m", times=("08:00",)), pill(id="e", medicine="钙片", times=("20:30",))
    assert pick([morning, evening], hours=range(17, 24)) == [evening]
    assert pick([morning, evening], medicine="降压") == [morning]
    assert medicine_matches("降压药", "降压") and medicine_matches("降压", "降压药")
    assert not medicine_matches("降压药", "") and not medicine_matches("钙片", "降压药")


def test_changed_keeps_identity_and_validates() -> None:
    reminder = pill(created_by="family")
    changed = reminder.changed({"times": ["09:00"], "end": dt.date(2026, 12, 31)}, tz=TZ)
    assert changed.times == ("09:00",) and changed.end == dt.date(2026, 12, 31) and changed.created_by == "family"
    once = reminder.changed({"once_at": "2026-11-27T07:45"}, tz=TZ)
    assert once.times == ("07:45",) and once.days == ()
    with pytest.raises(ReminderError, match="'colour' cannot be changed"):
        reminder.changed({"colour": "red"}, tz=TZ)


# --- the service -----------------------------------------------------------------------------


def test_add_update_pause_resume_delete_keep_jobs_in_step(service: ReminderService) -> None:
    stored = service.add(pill())
    assert stored.since is not None and service.get("bp") == stored
    assert set(service.jobs()) == {"reminder:bp:08:00", "reminder:bp:20:00"}
    service.update("bp", times=["09:00", "20:00"], dose="两片")
    assert set(service.jobs()) == {"reminder:bp:09:00", "reminder:bp:20:00"}
    assert service.get("bp").dose == "两片"
    service.update("bp", days=[6, 7])
    next_run = service.jobs()["reminder:bp:09:00"]
    assert next_run.isoweekday() in (6, 7) and next_run.strftime("%H:%M") == "09:00"
    assert service.pause("bp").paused and service.jobs() == {}
    assert not service.resume("bp").paused and len(service.jobs()) == 2
    assert service.delete("bp").id == "bp"
    assert service.list() == [] and service.jobs() == {}


def test_reminders_and_jobs_survive_a_restart(tmp_path: Path, recorder: Recorder) -> None:
    first = ReminderService(tmp_path, recorder.fire, tz=TZ)
    first.start()
    first.add(pill())
    first.add(pill(id="ca", medicine="钙片", times=("12:00",), days=(1, 3, 5), created_by="family"))
    jobs = first.jobs()
    first.shutdown()
    second = ReminderService(tmp_path, recorder.fire, tz=TZ)
    second.start()
    try:
        assert [r.id for r in second.list()] == ["bp", "ca"]
        assert second.get("ca").days == (1, 3, 5) and second.get("ca").created_by == "family"
        assert second.jobs() == jobs and all(when is not None for when in jobs.values())
    finally:
        second.shutdown()


def test_start_rebuilds_jobs_lost_from_the_job_store(tmp_path: Path, recorder: Recorder) -> None:
    first = ReminderService(tmp_path, recorder.fire, tz=TZ)
    first.start()
    first.add(pill())
    first.shutdown()
    (tmp_path / "jobs.db").unlink()  # e.g. a crash between the two databases, or a deleted file
    second = ReminderService(tmp_path, recorder.fire, tz=TZ)
    second.start()
    try:
        assert set(second.jobs()) == {"reminder:bp:08:00", "reminder:bp:20:00"}
    finally:
        second.shutdown()


def test_start_replaces_jobs_whose_trigger_is_stale(tmp_path: Path, recorder: Recorder) -> None:
    first = ReminderService(tmp_path, recorder.fire, tz=TZ)
    first.start()
    first.add(pill(times=("08:00",)))
    first.shutdown()
    moved = ReminderService(tmp_path, recorder.fire, tz=dt.timezone.utc)  # e.g. the device's zone was fixed
    moved.start()
    try:
        [when] = moved.jobs().values()
        assert (when.strftime("%H:%M"), when.utcoffset()) == ("08:00", dt.timedelta(0))
    finally:
        moved.shutdown()


def test_exactly_one_owner_per_home(tmp_path: Path, recorder: Recorder) -> None:
    first = ReminderService(tmp_path, recorder.fire, tz=TZ)
    first.start()
    second = ReminderService(tmp_path, recorder.fire, tz=TZ)
    with pytest.raises(UsageError, match="already runs the reminders of"):
        second.start()
    first.shutdown()
    second.start()  # the lock is free again
    second.shutdown()


def test_fire_logs_a_dose_once(service: ReminderService, recorder: Recorder) -> None:
    service.add(pill())
    due = DoseDue("bp", "降压药", "一片", "medication", dt.datetime.now(TZ).replace(second=0, microsecond=0))
    service.fire(due)
    service.fire(due)  # e.g. a catch-up racing APScheduler after a restart
    assert recorder.fired == [due]
    [dose] = service.adherence.doses_for_day(due.scheduled.date())
    assert dose.status == "pending" and dose.scheduled == due.scheduled


def test_restart_within_grace_rings_late_and_beyond_grace_records_missed(tmp_path: Path, recorder: Recorder) -> None:
    clock = FakeClock(THURSDAY)  # 07:00; the service is off from 07:00 to 08:10, then 08:10 to 09:00
    first = ReminderService(tmp_path, recorder.fire, now=clock, tz=TZ)
    first.start()
    first.add(pill(times=("08:00",)))
    first.add(Reminder(id="walk", kind="other", medicine="散步", times=("07:55",)))
    first.shutdown()
    clock.advance(minutes=70)
    second = ReminderService(tmp_path, recorder.fire, on_missed=recorder.missed.append, now=clock, tz=TZ)
    second.start()  # 08:10: the 08:00 dose is 10 min late, within the 30 min grace; 07:55 walk too
    assert recorder.wait(2)
    assert sorted((d.reminder_id, d.at) for d in recorder.fired) == [("bp", "08:00"), ("walk", "07:55")]
    assert recorder.missed == []
    second.shutdown()
    clock.advance(days=1, minutes=50)  # Friday 09:00: Friday 07:55 and 08:00 are beyond the grace
    third = ReminderService(tmp_path, recorder.fire, on_missed=recorder.missed.append, now=clock, tz=TZ)
    third.start()
    try:
        assert len(recorder.fired) == 2
        [event] = recorder.missed
        friday_eight = THURSDAY + dt.timedelta(days=1, hours=1)
        assert (event.reminder_id, event.scheduled) == ("bp", friday_eight)
        assert event.to_json()["kind"] == "missed_medication"
        doses = third.adherence.doses_for_day(friday_eight.date())
        assert [(d.scheduled, d.status) for d in doses] == [(friday_eight, "missed")]
    finally:
        third.shutdown()
    fourth = ReminderService(tmp_path, recorder.fire, on_missed=recorder.missed.append, now=clock, tz=TZ)
    fourth.start()  # nothing new is due: no second event for the same dose
    fourth.shutdown()
    assert len(recorder.missed) == 1


def test_doses_for_day_merges_the_log_with_what_is_still_to_come(tmp_path: Path, recorder: Recorder) -> None:
    clock = FakeClock(THURSDAY)
    svc = ReminderService(tmp_path, recorder.fire, now=clock, tz=TZ)
    svc.start()
    try:
        svc.add(pill())
        clock.advance(hours=1, minutes=1)
        [morning] = svc.due_between(THURSDAY, clock())
        svc.fire(morning)
        doses = svc.doses_for_day(THURSDAY.date())
        assert [(d.scheduled.hour, d.status) for d in doses] == [(8, "pending"), (20, "pending")]
        assert [d.to_json()["scheduled"] for d in doses] == ["2026-01-01T08:00:00+08:00", "2026-01-01T20:00:00+08:00"]
    finally:
        svc.shutdown()


# --- real time: SIGKILL between scheduling and firing ----------------------------------------


def _spawn(home: Path, mode: str, grace: int, wait: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.test_reminders", "child", str(home), mode, str(grace),
                             str(wait)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _schedule_then_kill(home: Path, grace: int) -> dt.datetime:
    """Run a child that adds a one-off ~2 s ahead; SIGKILL it before the fire time; return the time."""
    child = _spawn(home, "add", grace)
    try:
        line = child.stdout.readline()
        assert line.startswith("added "), line + child.stderr.read()
        once = dt.datetime.fromisoformat(line.split()[1])
        child.send_signal(signal.SIGKILL)
        killed = dt.datetime.now(TZ)
        child.wait(timeout=5)
    finally:
        child.kill()
    assert killed < once, "the child was killed after the fire time; the machine is too slow for this test"
    return once


def _wait_until(moment: dt.datetime) -> None:
    """Wait for the wall clock to pass ``moment`` (the scenario needs real time to pass, bounded by it)."""
    time.sleep(max(0.0, (moment - dt.datetime.now(TZ)).total_seconds()))


def test_sigkilled_reminder_fires_after_restart_within_grace(tmp_path: Path) -> None:
    once = _schedule_then_kill(tmp_path, grace=30)
    _wait_until(once + dt.timedelta(seconds=0.5))
    child = _spawn(tmp_path, "run", 30, wait=5)
    out, err = child.communicate(timeout=15)
    assert child.returncode == 0, err
    fired = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("fired ")]
    assert [(f["reminder_id"], f["scheduled"]) for f in fired] == [("pill", once.isoformat())]
    doses = json.loads(next(line for line in out.splitlines() if line.startswith("doses ")).split(" ", 1)[1])
    assert [d["status"] for d in doses] == ["pending"]
    assert "missed " not in out


def test_sigkilled_reminder_beyond_grace_is_recorded_missed(tmp_path: Path) -> None:
    once = _schedule_then_kill(tmp_path, grace=1)
    _wait_until(once + dt.timedelta(seconds=1.5))
    child = _spawn(tmp_path, "run", 1, wait=0.5)
    out, err = child.communicate(timeout=15)
    assert child.returncode == 0, err
    assert "fired " not in out
    missed = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("missed ")]
    assert [(m["kind"], m["reminder_id"], m["scheduled"]) for m in missed] == [
        ("missed_medication", "pill", once.isoformat())]
    doses = json.loads(next(line for line in out.splitlines() if line.startswith("doses ")).split(" ", 1)[1])
    assert [(d["scheduled"], d["status"]) for d in doses] == [(once.isoformat(), "missed")]


def _child(home: str, mode: str, grace: str, wait: str) -> None:
    """The child process of the real-time tests: ``add`` a one-off ~2 s ahead and idle, or ``run`` and report."""
    fired = threading.Event()

    def on_fire(due: DoseDue) -> None:
        print("fired", json.dumps(due.to_json()), flush=True)
        fired.set()

    def on_missed(event: MissedMedication) -> None:
        print("missed", json.dumps(event.to_json()), flush=True)

    service = ReminderService(Path(home), on_fire, on_missed=on_missed, tz=TZ, misfire_grace=int(grace))
    service.start()
    if mode == "add":
        now = dt.datetime.now(TZ)
        once = (now + dt.timedelta(seconds=3)).replace(microsecond=0)  # 2..3 s ahead
        service.add(Reminder(id="pill", kind="medication", medicine="降压药", dose="一片",
                             times=(once.strftime("%H:%M"),), days=(), once_at=once))
        print("added", once.isoformat(), flush=True)
        threading.Event().wait(30)  # until the parent kills us
        return
    fired.wait(float(wait))
    doses = service.adherence.doses_for_day(dt.datetime.now(TZ).date())
    print("doses", json.dumps([d.to_json() for d in doses]), flush=True)
    service.shutdown()


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    _child(*sys.argv[2:6])
