"""Reminders by voice: set (「每天晚上九点提醒我吃降压药」), confirm a dose (「吃过了」), ask
(「我定了哪些提醒」, 「我今天还有什么药没吃」) and cancel (「把晚上那个提醒取消了」, confirmed first).

The scheduling itself belongs to :class:`assistant.scheduler.ReminderService` (the single owner of
the scheduler) and the dose conversation to :class:`assistant.dose_coach.DoseCoach`; this module
connects both to the dialogue. Every spoken word comes from ``voices/prompts.yaml``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assistant.dose_coach import DoseCoach
from assistant.errors import ReminderError
from assistant.reminders import Reminder, pick, reminder_from_slots
from assistant.scheduler import ReminderService
from intents.recognize import IntentResult
from voices.prompts import Prompts

if TYPE_CHECKING:
    from assistant.dialogue import Dialogue, Reply

logger = logging.getLogger(__name__)

DAYPART_HOURS = {"morning": range(4, 11), "noon": range(11, 14), "afternoon": range(13, 19),
                 "evening": range(18, 24)}
MAX_LISTED = 5  # reminders read out at once


class ReminderSkill:
    """The voice side of reminders for one home."""

    def __init__(self, service: ReminderService, coach: DoseCoach, prompts: Prompts, dialogue: Dialogue, *,
                 now: Callable[[], dt.datetime]) -> None:
        """Register the reminder intents with ``dialogue``."""
        self.service = service
        self.coach = coach
        self.prompts = prompts
        self.dialogue = dialogue
        self._now = now
        dialogue.register_flow("set_reminder", ("time",), self._confirm_new)
        dialogue.skills.register("medication_taken", self.taken)
        dialogue.skills.register("query_reminders", self.query)
        dialogue.skills.register("cancel_reminder", self.cancel)

    def _reply(self, *lines: str) -> Reply:
        from assistant.dialogue import Reply

        return Reply(tuple(lines))

    def describe(self, reminder: Reminder) -> str:
        """「每天晚上九点吃降压药」"""
        p = self.prompts
        times = p.text("list_joiner").join(
            p.speakable_time(int(at[:2]), int(at[3:])) for at in reminder.times)
        if reminder.once_at is not None:
            when = p.text("reminder_once", time=times)
        elif len(reminder.days) == 7:
            when = p.text("reminder_daily", time=times)
        else:
            days = p.text("list_joiner").join(p.name("weekday", str(d)) for d in reminder.days)
            when = p.text("reminder_weekly", days=days, time=times)
        what = reminder.medicine if reminder.kind == "medication" else (reminder.medicine or p.text("reminder_plain"))
        key = "reminder_describe_medicine" if reminder.kind == "medication" else "reminder_describe_other"
        return p.text(key, when=when, what=what)

    def _confirm_new(self, slots: dict[str, Any], utterance: str) -> Reply:
        if slots.get("kind") == "medication" and not slots.get("medicine"):
            slots = {**slots, "medicine": self.prompts.text("medicine_generic")}  # 「提醒我吃药」
        try:
            reminder = reminder_from_slots(slots, now=self._now())
        except ReminderError as exc:
            logger.info("reminder refused: %s", exc)
            return self._reply(self.prompts.text("reminder_refused"))
        line = self.prompts.text("confirm_set_reminder", reminder=self.describe(reminder))
        return self.dialogue.confirm("set_reminder", line, utterance, lambda: self._create(reminder))

    def _create(self, reminder: Reminder) -> Reply:
        try:
            self.service.add(reminder)
        except ReminderError as exc:
            logger.info("reminder refused: %s", exc)
            return self._reply(self.prompts.text("reminder_refused"))
        return self._reply(self.prompts.text("reminder_set", reminder=self.describe(reminder)))

    def taken(self, result: IntentResult) -> Reply:
        """「吃过了」 / 「降压药吃了」."""
        medicine = result.slots.get("medicine")
        return self._reply(*self.coach.taken(str(medicine) if medicine else None))

    def query(self, result: IntentResult) -> Reply:
        """Today's doses, or the list of reminders."""
        if result.slots.get("_ask") == "doses":
            return self._reply(*self.coach.today_summary())
        now = self._now()
        reminders = [r for r in self.service.list() if not r.paused and not r.finished(now)]
        if not reminders:
            return self._reply(self.prompts.text("reminders_none"))
        lines = [self.prompts.text("reminders_count", count=self.prompts.count(len(reminders)))]
        lines += [self.prompts.text("reminder_item", reminder=self.describe(r)) for r in reminders[:MAX_LISTED]]
        return self._reply(*lines)

    def cancel(self, result: IntentResult) -> Reply:
        """「把晚上那个提醒取消了」: find it, confirm, delete."""
        daypart = result.slots.get("_daypart")
        medicine = result.slots.get("medicine")
        now = self._now()
        live = [r for r in self.service.list() if not r.finished(now)]
        found = pick(live, medicine=str(medicine) if medicine else None,
                     hours=DAYPART_HOURS.get(str(daypart)) if daypart else None)
        if not found:
            return self._reply(self.prompts.text("reminder_not_found"))
        if len(found) > 1:
            names = self.prompts.text("list_joiner").join(self.describe(r) for r in found[:MAX_LISTED])
            return self._reply(self.prompts.text("reminder_which", count=self.prompts.count(len(found)),
                                                 reminders=names))
        (reminder,) = found
        line = self.prompts.text("confirm_cancel_reminder", reminder=self.describe(reminder))
        return self.dialogue.confirm("cancel_reminder", line, result.text, lambda: self._delete(reminder))

    def _delete(self, reminder: Reminder) -> Reply:
        try:
            self.service.delete(reminder.id)
        except ReminderError:
            return self._reply(self.prompts.text("reminder_not_found"))
        return self._reply(self.prompts.text("reminder_cancelled", reminder=self.describe(reminder)))
