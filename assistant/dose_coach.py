"""The dose conversation, independent of speech: what to say when a dose is due, and what follows.

When a medication reminder rings, :meth:`DoseCoach.due` returns the line to say and starts watching
the dose. :meth:`DoseCoach.tick` (called regularly by the loop) re-prompts every ``reprompt_every``
seconds, at most ``max_prompts`` times after the first prompt; when the last re-prompt stays
unanswered for another interval the dose is recorded missed and exactly one
:class:`~assistant.adherence.MissedMedication` event is returned. 「吃过了」 (:meth:`taken`) confirms
the latest due dose — never twice — and 「我今天还有什么药没吃」 (:meth:`today_summary`) reads back
the day's doses.

Every line is a prompt key from ``voices/prompts.yaml`` filled by the injected ``prompts_text(key,
values)``; the caller's function adds ``elder`` (how the elder is addressed). Times are passed as
``say_time(hour, minute)`` words (default ``HH:MM``; the assistant passes ``Prompts.speakable_time``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from assistant.adherence import AdherenceLog, Dose, MissedMedication
from assistant.reminders import DoseDue

logger = logging.getLogger(__name__)

_LINE = frozenset({"time", "medicine", "dose_part"})
PROMPT_KEYS: dict[str, frozenset[str]] = {
    "dose_due": _LINE, "dose_reprompt": _LINE, "dose_part": frozenset({"dose"}),
    "dose_missed": frozenset({"time", "medicine"}), "dose_taken": frozenset({"medicine"}),
    "dose_already_taken": frozenset({"time", "medicine"}), "dose_none_due": frozenset(),
    "reminder_due": frozenset({"time", "what"}), "reminder_due_plain": frozenset({"time"}),
    "dose_item_taken": _LINE, "dose_item_missed": _LINE, "dose_item_due": _LINE, "dose_item_upcoming": _LINE,
    "doses_none_today": frozenset(), "doses_all_taken": frozenset(),
}
"""Every prompt key the coach says, with the values it passes (the caller's ``prompts_text`` adds ``elder``)."""

RESTORE_WINDOW = dt.timedelta(hours=24)
"""After a restart, doses left pending at most this long ago are coached again; older ones are closed as missed."""


@dataclass
class _Watch:
    """A due dose the coach is waiting on."""

    due: DoseDue
    prompts: int
    """prompts said so far (first prompt plus re-prompts)"""
    last_prompt: dt.datetime | None


class DoseCoach:
    """Say doses when due, re-prompt, record taken or missed; thread-safe, driven by an injected clock."""

    def __init__(self, adherence: AdherenceLog, prompts_text: Callable[[str, dict[str, Any]], str],
                 now: Callable[[], dt.datetime], *, reprompt_every: float = 600.0, max_prompts: int = 3,
                 schedule: Callable[[dt.date], Iterable[DoseDue]] | None = None,
                 say_time: Callable[[int, int], str] | None = None) -> None:
        """Coach doses logged in ``adherence``.

        ``reprompt_every`` is the pause between prompts (seconds); ``max_prompts`` how many
        re-prompts follow the first prompt before the dose counts as missed. ``schedule(day)``
        gives the day's expected doses (``ReminderService.due_on``) so :meth:`today_summary` can
        name those still to come.
        """
        if reprompt_every <= 0 or max_prompts < 0:
            raise ValueError("reprompt_every must be > 0 and max_prompts >= 0")
        self.adherence = adherence
        self.reprompt_every = dt.timedelta(seconds=reprompt_every)
        self.max_prompts = max_prompts
        self._text, self._now = prompts_text, now
        self._schedule = schedule
        self._say_time = say_time or (lambda hour, minute: "%02d:%02d" % (hour, minute))
        self._watching: dict[tuple[str, dt.datetime], _Watch] = {}
        self._lock = threading.Lock()

    @property
    def watching(self) -> list[DoseDue]:
        """Doses due and not yet confirmed, oldest first."""
        with self._lock:
            return sorted((w.due for w in self._watching.values()), key=lambda d: d.scheduled)

    def due(self, d: DoseDue) -> list[str]:
        """A reminder rang: the lines to say now (and, for a medication, start waiting for 「吃过了」)."""
        time = self._time(d.scheduled)
        if d.kind != "medication":
            if d.medicine:
                return [self._say("reminder_due", time=time, what=d.medicine)]
            return [self._say("reminder_due_plain", time=time)]
        self.adherence.record_due(d)
        logged = self.adherence.get(d.reminder_id, d.scheduled)
        with self._lock:
            if logged is None or logged.status != "pending" or self._key(d) in self._watching:
                return []  # already confirmed, closed, or being coached: ringing again would confuse
            self._watching[self._key(d)] = _Watch(d, 1, self._now())
        self.adherence.note_prompt(d)
        return [self._say("dose_due", time=time, medicine=d.medicine, dose_part=self._dose_part(d.dose))]

    def tick(self) -> tuple[list[str], list[MissedMedication]]:
        """Re-prompt doses whose interval passed; close as missed those out of re-prompts.

        Returns the lines to say and the new :class:`MissedMedication` events (one per dose, ever).
        """
        now, lines, missed = self._now(), [], []
        with self._lock:
            watches = list(self._watching.values())
        for watch in watches:
            logged = self.adherence.get(watch.due.reminder_id, watch.due.scheduled)
            if logged is None or logged.status != "pending":
                self._forget(watch.due)  # confirmed (or closed) elsewhere
                continue
            if watch.last_prompt is not None and now - watch.last_prompt < self.reprompt_every:
                continue
            d = watch.due
            if watch.prompts <= self.max_prompts:
                key = "dose_due" if watch.prompts == 0 else "dose_reprompt"
                lines.append(self._say(key, time=self._time(d.scheduled), medicine=d.medicine,
                                       dose_part=self._dose_part(d.dose)))
                watch.prompts, watch.last_prompt = watch.prompts + 1, now
                self.adherence.note_prompt(d)
                continue
            self._forget(d)
            if self.adherence.mark_missed(d):
                missed.append(MissedMedication.of(d, now))
                lines.append(self._say("dose_missed", time=self._time(d.scheduled), medicine=d.medicine))
        return lines, missed

    def taken(self, medicine: str | None = None) -> list[str]:
        """「吃过了」: confirm the latest due dose (of ``medicine`` if named) — never logging one twice."""
        now = self._now()
        before = self.adherence.latest_due(now, medicine)
        if before is None:
            return [self._say("dose_none_due")]
        if before.status == "taken":
            when = before.taken_at or before.scheduled
            return [self._say("dose_already_taken", medicine=before.medicine, time=self._time(when))]
        dose = self.adherence.confirm_taken(now, medicine)
        if dose is None:  # cannot happen under one coach; kept for a concurrent confirmation
            return [self._say("dose_none_due")]
        self._forget(dose.due)
        return [self._say("dose_taken", medicine=dose.medicine)]

    def today_summary(self) -> list[str]:
        """「我今天还有什么药没吃」: one line per dose of the day (taken / missed / not yet / to come)."""
        now = self._now()
        today = now.astimezone(self.adherence.tz).date()
        doses = self.adherence.doses_for_day(today, self._schedule(today) if self._schedule else ())
        if not doses:
            return [self._say("doses_none_today")]
        lines = [self._say(self._item_key(dose, now), time=self._time(dose.scheduled), medicine=dose.medicine,
                           dose_part=self._dose_part(dose.dose)) for dose in doses]
        if all(dose.status == "taken" for dose in doses):
            lines.append(self._say("doses_all_taken"))
        return lines

    def restore(self) -> None:
        """After a restart, watch again the doses still pending in the log (re-prompt or close them)."""
        now = self._now()
        for dose in self.adherence.pending(since=now - dt.timedelta(days=self.adherence.keep_days)):
            if dose.scheduled <= now - RESTORE_WINDOW:
                self.adherence.mark_missed(dose.due)  # too old to ask about or alert on
                continue
            sent = dose.prompts_sent
            last = dose.scheduled + self.reprompt_every * (sent - 1) if sent else None
            with self._lock:
                self._watching.setdefault(self._key(dose.due), _Watch(dose.due, sent, last))

    def _item_key(self, dose: Dose, now: dt.datetime) -> str:
        if dose.status == "taken":
            return "dose_item_taken"
        if dose.status == "missed":
            return "dose_item_missed"
        return "dose_item_due" if dose.scheduled <= now else "dose_item_upcoming"

    def _dose_part(self, dose: str) -> str:
        """The optional dose words (「，一片」), empty when the reminder names no dose."""
        return self._say("dose_part", dose=dose) if dose else ""

    def _time(self, moment: dt.datetime) -> str:
        local = moment.astimezone(self.adherence.tz)
        return self._say_time(local.hour, local.minute)

    def _say(self, key: str, **values: Any) -> str:
        return self._text(key, values)

    def _forget(self, d: DoseDue) -> None:
        with self._lock:
            self._watching.pop(self._key(d), None)

    @staticmethod
    def _key(d: DoseDue) -> tuple[str, dt.datetime]:
        return d.reminder_id, d.scheduled
