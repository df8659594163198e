"""The dialogue manager: one short, patient conversation at a time.

Every understood utterance (:class:`intents.recognize.IntentResult`) goes to :meth:`Dialogue.handle`,
which returns a :class:`Reply`: the lines to speak and the events to act on. An activity that needs
more (how many portions? which meal?) asks one short question at a time, and anything that spends
money or calls people is confirmed first (「给您订一份午饭，对吗？」). 「对」 completes it, 「不对」/「算了」
drops it, 「取消」 stops it, 「再说一遍」 repeats the last line; an emergency interrupts everything; a
question left unanswered for ``timeout`` seconds ends with one polite line (:meth:`Dialogue.tick`).
Every spoken word comes from ``voices/prompts.yaml``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.events import CallRequested, DeviceCommand, Event, HelpRequested, OrderRequested
from assistant.skills import Skills
from intents.recognize import IntentResult
from voices.prompts import Prompts

logger = logging.getLogger(__name__)

CONFIRM = "_confirm"  # the slot name used while waiting for yes/no
_ANSWERS = frozenset({"affirm", "deny", "cancel", "repeat"})
_NEW_REQUEST_CONFIDENCE = 0.8  # a clear new request replaces a pending question


@dataclass(frozen=True)
class Reply:
    """What to do after one utterance: lines to speak, in order, and events to act on."""

    lines: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()

    def __add__(self, other: Reply) -> Reply:
        return Reply(self.lines + other.lines, self.events + other.events)


@dataclass(frozen=True)
class Pending:
    """An activity waiting for the elder: ``asking`` is the slot asked for, or CONFIRM.

    ``on_yes``, when set, is what 「对」 does (a skill's own confirmation, e.g. creating a reminder).
    """

    intent: str
    slots: dict[str, Any]
    asking: str
    utterance: str
    since: float
    on_yes: Callable[[], Reply] | None = None


@dataclass(frozen=True)
class Flow:
    """A skill's multi-turn activity: the slots it needs, then its own confirmation."""

    required: tuple[str, ...]
    confirm: Callable[[dict[str, Any], str], Reply]


@dataclass
class _State:
    pending: Pending | None = None
    last_lines: tuple[str, ...] = ()
    history: list[str] = field(default_factory=list)


class Dialogue:
    """Turns understood utterances into replies; holds the conversation state of one home."""

    def __init__(self, prompts: Prompts, skills: Skills, slot_reader: Callable[[str, str], Any], *,
                 elder: str, family: str = "family", timeout: float = 30.0, clock: Callable[[], float]) -> None:
        """``slot_reader(text, slot)`` finds one slot in an answer (「两份」); ``clock`` gives seconds
        (monotonic) for the question time-out; ``elder`` is how we address her."""
        self.prompts = prompts
        self.skills = skills
        self._slot_reader = slot_reader
        self.elder = elder
        self.family = family  # who is offered when the elder is unwell or lonely (a contact value)
        self.timeout = timeout
        self._clock = clock
        self._state = _State()
        self._flows: dict[str, Flow] = {}
        self._gates: dict[str, Callable[[dict[str, Any]], str | None]] = {}
        self._handlers: dict[str, Callable[[IntentResult], Reply]] = {
            "call_help": self._call_help,
            "order_meal": self._activity,
            "order_service": self._activity,
            "device_control": self._device,
            "im_ok": lambda r: self._say("im_ok_reply"),
            "repeat": self._repeat,
            "affirm": lambda r: self._say("nothing_pending"),
            "deny": lambda r: self._say("nothing_pending"),
            "cancel": lambda r: self._say("cancelled_nothing"),
            "none": lambda r: self._say("not_understood"),
        }

    @property
    def pending(self) -> Pending | None:
        """The activity waiting for an answer, if any."""
        return self._state.pending

    def say(self, key: str, **values: Any) -> str:
        """One prompt line with the elder's name filled in."""
        return self.prompts.text(key, elder=self.elder, **values)

    def handle(self, result: IntentResult) -> Reply:
        """Answer one utterance."""
        if result.intent == "call_help" and result.slots.get("urgency") == "emergency":
            self._state.pending = None
            return self._remember(self._emergency(result))
        asked = self.skills.handler(f"ask:{result.slots.get('_ask')}")
        if asked is not None:  # 「我的饭订上了吗」, 「今天食堂有什么」: questions about orders, not orders
            return self._remember(asked(result))
        pending = self._state.pending
        if pending is not None:
            reply = self._continue(pending, result)
            if reply is not None:
                return self._remember(reply)
        handler = self._handlers.get(result.intent) or self.skills.handler(result.intent)
        reply = handler(result) if handler else self._say("not_yet")
        return self._remember(reply)

    def register_flow(self, intent: str, required: tuple[str, ...],
                      confirm: Callable[[dict[str, Any], str], Reply]) -> None:
        """Let a skill run ``intent`` as an activity: ask for ``required`` slots one by one, then call
        ``confirm(slots, utterance)``, which usually ends in :meth:`confirm`."""
        self._flows[intent] = Flow(required, confirm)
        self._handlers[intent] = self._activity

    def register_gate(self, intent: str, gate: Callable[[dict[str, Any]], str | None]) -> None:
        """Before ``intent`` is confirmed, ``gate(slots)`` may refuse it with a sentence (「食堂现在不送餐…」)."""
        self._gates[intent] = gate

    def confirm(self, intent: str, line: str, utterance: str, on_yes: Callable[[], Reply]) -> Reply:
        """Say ``line`` (a yes/no question) and run ``on_yes`` when the answer is yes."""
        self._state.pending = Pending(intent, {}, CONFIRM, utterance, self._clock(), on_yes)
        return Reply((line,))

    def offer_call(self, line: str, utterance: str) -> Reply:
        """Say ``line`` (which offers to call the family) and wait for yes/no (used by the chat skill)."""
        self._state.pending = Pending("call_help", {"contact": self.family}, CONFIRM, utterance, self._clock())
        return Reply((line,))

    def tick(self) -> Reply:
        """Called regularly: ends a question left unanswered for longer than the time-out."""
        pending = self._state.pending
        if pending is None or self._clock() - pending.since < self.timeout:
            return Reply()
        logger.info("question about %s timed out", pending.intent)
        self._state.pending = None
        return self._remember(self._say("timeout_idle"))

    # ---- activities -------------------------------------------------------------------------

    def _emergency(self, result: IntentResult) -> Reply:
        slots = result.slots
        event = HelpRequested(urgency="emergency", reason=str(slots.get("reason", "")),
                              contact=str(slots.get("contact", "")), utterance=result.text)
        return Reply((self.say("help_on_the_way"),), (event,))

    def _call_help(self, result: IntentResult) -> Reply:
        contact = result.slots.get("contact")
        if contact:
            return self._ask(result.intent, {"contact": contact}, CONFIRM, result.text)
        if result.slots.get("reason"):
            return self._ask(result.intent, {"contact": self.family}, CONFIRM, result.text, key="unwell_offer_call")
        return self._ask(result.intent, {}, "contact", result.text)

    def _activity(self, result: IntentResult) -> Reply:
        slots = {k: v for k, v in result.slots.items()}
        return self._next_step(result.intent, slots, result.text)

    def _device(self, result: IntentResult) -> Reply:
        device, action = result.slots.get("device"), result.slots.get("action")
        if not device or not action:
            return self._say("device_which")
        name = self.prompts.name("device", device)
        configured = self.skills.device_name(device)
        if configured is None:
            return self._say("device_missing", device=name)
        event = DeviceCommand(device=device, action=action, name=configured)
        return Reply((self.say(f"device_done_{action}", device=name),), (event,))

    def _repeat(self, result: IntentResult) -> Reply:
        if self._state.last_lines:
            return Reply(self._state.last_lines)
        return self._say("nothing_to_repeat")

    # ---- slot filling and confirmation ------------------------------------------------------

    def _required(self, intent: str, slots: dict[str, Any]) -> str | None:
        """The next slot to ask for, or None when the activity can be confirmed."""
        if intent == "order_meal":
            for name in ("meal", "quantity"):
                if name not in slots:
                    return name
        if intent == "order_service" and "service" not in slots:
            return "service"
        flow = self._flows.get(intent)
        return next((name for name in flow.required if name not in slots), None) if flow else None

    def _next_step(self, intent: str, slots: dict[str, Any], utterance: str) -> Reply:
        missing = self._required(intent, slots)
        if missing is None and intent in self._gates:
            refusal = self._gates[intent](slots)
            if refusal is not None:
                self._state.pending = None
                return Reply((refusal,))
        if missing is None and intent in self._flows:
            self._state.pending = None
            return self._flows[intent].confirm(slots, utterance)
        return self._ask(intent, slots, missing or CONFIRM, utterance)

    def _ask(self, intent: str, slots: dict[str, Any], asking: str, utterance: str, *,
             key: str | None = None) -> Reply:
        self._state.pending = Pending(intent, slots, asking, utterance, self._clock())
        if asking != CONFIRM:
            return self._say(key or f"ask_{intent}_{asking}")
        return Reply((self.say(key or f"confirm_{intent}", **self._spoken(slots)),))

    def _continue(self, pending: Pending, result: IntentResult) -> Reply | None:
        """Use the utterance as an answer to the pending question; None = not an answer, handle anew."""
        intent = result.intent
        if intent == "repeat":
            return self._repeat(result)
        if intent == "cancel" or (intent == "deny" and pending.asking == CONFIRM):
            self._state.pending = None
            return self._say("cancelled")
        if pending.asking == CONFIRM:
            if intent == "affirm":
                self._state.pending = None
                return pending.on_yes() if pending.on_yes is not None else self._complete(pending)
            if intent == pending.intent and pending.on_yes is None:  # 「要两份」 while confirming one: update
                return self._next_step(pending.intent, {**pending.slots, **result.slots}, pending.utterance)
            if intent in ("none", "deny") or result.confidence < _NEW_REQUEST_CONFIDENCE:
                return self._say("confirm_yes_no")
            self._state.pending = None
            return None
        value = self._answer(pending.asking, result)
        if value is not None:
            slots = {**pending.slots, **result.slots, pending.asking: value} \
                if intent == pending.intent else {**pending.slots, pending.asking: value}
            return self._next_step(pending.intent, slots, pending.utterance)
        if intent == pending.intent:
            return self._next_step(pending.intent, {**pending.slots, **result.slots}, pending.utterance)
        if intent in _ANSWERS or intent == "none" or result.confidence < _NEW_REQUEST_CONFIDENCE:
            self._state.pending = replace(pending, since=self._clock())
            return self._say(f"ask_{pending.intent}_{pending.asking}")
        self._state.pending = None
        return None

    def _answer(self, slot: str, result: IntentResult) -> Any:
        """The value of ``slot`` if the utterance answers the question (「两份」, 「午饭」, 「儿子」)."""
        if slot in result.slots:
            return result.slots[slot]
        value = self._slot_reader(result.text, slot)
        if slot == "quantity" and not (isinstance(value, int) and 0 < value < 100):
            return None
        return value

    def _complete(self, pending: Pending) -> Reply:
        slots = pending.slots
        if pending.intent == "call_help":
            event: Event = CallRequested(contact=str(slots.get("contact", "family")), utterance=pending.utterance)
            return Reply((self.say("calling", **self._spoken(slots)),), (event,))
        service = "meal" if pending.intent == "order_meal" else str(slots["service"])
        event = OrderRequested(service=service, details=dict(slots), utterance=pending.utterance)
        return Reply((self.say(f"done_{pending.intent}", **self._spoken(slots)),), (event,))

    def _spoken(self, slots: dict[str, Any]) -> dict[str, str]:
        """Slot values the way they are said: names from prompts.yaml, numbers and times in words."""
        spoken: dict[str, str] = {"dish": "", "when": ""}
        for key, value in slots.items():
            if key in ("meal", "service", "contact", "device"):
                spoken[key] = self.prompts.name(key, str(value))
            elif key == "quantity":
                spoken[key] = self.prompts.count(int(value))
            elif key == "dish":
                spoken[key] = self.prompts.text("dish_part", dish=value)
            elif key == "time":
                hour, minute = (int(x) for x in str(value).split(":"))
                spoken["when"] = self.prompts.text("when_part", time=self.prompts.speakable_time(hour, minute))
        return spoken

    # ---- helpers ----------------------------------------------------------------------------

    def _say(self, key: str, **values: Any) -> Reply:
        return Reply((self.say(key, **values),))

    def _remember(self, reply: Reply) -> Reply:
        if reply.lines:
            self._state.last_lines = reply.lines
        return reply


def local_now() -> dt.datetime:
    """The wall clock in local time (the default clock of the skills)."""
    return dt.datetime.now().astimezone()
