"""Slot filling: pick the best lexicon value per slot and compute the slots that are parsed, not listed.

Listed slots (contact, reason, meal, service, device, action, medicine, …) come from the lexicon
hits; the best hit per slot wins (higher pinyin score, then longer, then earlier). Parsed slots
come from :mod:`intents.numbers` (time, quantity, date) and from small patterns (dose, 「X药」).
Only the slots an intent declares in ``intents.yaml`` are returned, in canonical form.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from intents import numbers
from intents.lexicon import Lexicon, Owner
from intents.matching import Hit, Utterance

# A medicine not in the lexicon: 「吃X药/片/丸」 takes X as said.
# (not 「吃过药」, 「吃了药」: a particle right after the verb is not part of a name)
_MEDICINE = re.compile(r"(?:吃|服用|服|喝)(?![过了完下的这那点个些上])((?:(?!吃|点)[\u4e00-\u9fff]){1,5}?"
                       r"(?:药|片|丸|胶囊|颗粒|口服液|药水))")
_DOSE = re.compile(r"(半|[一二两三四五六七八九十]+)(片|粒|颗|袋|包|支|勺|毫升|滴|丸|格|个)")
_MEAL_BY_HOUR = ((10, "breakfast"), (15, "lunch"), (24, "dinner"))


@dataclass(frozen=True)
class SlotHit:
    """The chosen value of one slot and where it was heard."""

    value: str
    score: float
    start: int
    end: int


def _better(new: SlotHit, old: SlotHit | None) -> bool:
    if old is None:
        return True
    return (new.score, new.end - new.start, -new.start) > (old.score, old.end - old.start, -old.start)


class SlotFinder:
    """Chooses slot values from hits and computes the parsed slots."""

    def __init__(self, lexicon: Lexicon) -> None:
        """Keep the lexicon for the intents' slot lists."""
        self.lexicon = lexicon

    def slot_hits(self, hits: Iterable[tuple[Hit, Owner]]) -> dict[str, SlotHit]:
        """The best value of every lexicon slot heard in the utterance."""
        best: dict[str, SlotHit] = {}
        for hit, owner, *_ in hits:
            if owner.kind != "slot":
                continue
            candidate = SlotHit(owner.value, hit.score, hit.start, hit.end)
            slot = str(owner.ref)
            if _better(candidate, best.get(slot)):
                best[slot] = candidate
        return best

    def fill(self, intent: str, utt: Utterance, slot_hits: dict[str, SlotHit],
             cue_slots: dict[str, str], today: dt.date) -> dict[str, Any]:
        """Canonical slots of ``intent`` for this utterance."""
        wanted = self.lexicon.intents.get(intent, ())
        if not wanted:
            return {}
        text = utt.text
        slots: dict[str, Any] = {}
        for name in wanted:  # a word heard for the slot beats the value a cue implies
            if name in slot_hits:
                slots[name] = slot_hits[name].value
            elif name in cue_slots:
                slots[name] = cue_slots[name]
        if "time" in wanted:
            clock = numbers.find_clock_time(text)
            if clock is not None:
                slots["time"] = clock.hhmm
        if "quantity" in wanted:
            quantity = numbers.find_quantity(text)
            if quantity is not None:
                slots["quantity"] = quantity[0]
        if "date" in wanted:
            found = numbers.find_date(text, today)
            if found is not None:
                slots["date"] = found[0].isoformat()
        if "medicine" in wanted and "medicine" not in slots:
            match = _MEDICINE.search(text)
            if match and len(match.group(1)) > 1:
                slots["medicine"] = match.group(1)
        if "dose" in wanted:
            match = _DOSE.search(text)
            if match:
                slots["dose"] = match.group()
        if intent == "set_reminder":
            slots["kind"] = "medication" if ("medicine" in slots or "药" in text) else "other"
        if intent == "order_meal" and "meal" not in slots:
            meal = self._meal_from_context(slots, slot_hits)
            if meal:
                slots["meal"] = meal
        return slots

    @staticmethod
    def parsed_slot(slot: str, utt: Utterance, today: dt.date) -> Any:
        """A slot that is parsed rather than listed (time, quantity, date), or None."""
        if slot == "time":
            clock = numbers.find_clock_time(utt.text)
            return clock.hhmm if clock else None
        if slot == "quantity":
            found = numbers.find_quantity(utt.text)
            return found[0] if found else numbers.parse_number(utt.text)
        if slot == "date":
            day = numbers.find_date(utt.text, today)
            return day[0].isoformat() if day else None
        return None

    @staticmethod
    def _meal_from_context(slots: dict[str, Any], slot_hits: dict[str, SlotHit]) -> str | None:
        """「明早送一碗豆浆」 is breakfast: infer the meal from the time of day or the clock time."""
        if "_meal_hint" in slot_hits:
            return slot_hits["_meal_hint"].value
        if "time" in slots:
            hour = int(slots["time"][:2])
            return next(meal for limit, meal in _MEAL_BY_HOUR if hour < limit)
        return None
