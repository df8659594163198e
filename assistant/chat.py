"""Company when the house is quiet: small talk, jokes, stories, opera and poems, comfort when lonely.

Content lives in YAML packs under ``voices/content/`` (our own writing and traditional public-domain
texts). Items of a kind are told in a shuffled order and the whole pack is used up before anything
comes back, so the same joke is never told twice in a row. Loneliness and sadness get an
empathetic answer and an offer to call family, which the elder can accept with 「好」.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from assistant.errors import DataError
from intents.recognize import IntentResult

if TYPE_CHECKING:
    from assistant.dialogue import Reply

TOPIC_KINDS = {"joke": "joke", "story": "story", "opera": "opera"}
PACKS = ("jokes", "stories", "opera", "poems")
REQUIRED_REPLIES = ("who_are_you", "how_are_you", "thanks", "comfort_lonely", "chat_open")


@dataclass(frozen=True)
class Item:
    """One joke, story, opera snippet or poem: the lines to speak, in order."""

    id: str
    kind: str
    title: str
    lines: tuple[str, ...]


class Rotation:
    """Hands out items in shuffled rounds; never the same item twice in a row, even across rounds."""

    def __init__(self, items: list[Any], rng: random.Random) -> None:
        """``rng`` is injected so tests are repeatable."""
        if not items:
            raise DataError("a content pack has no items")
        self._items = list(items)
        self._rng = rng
        self._queue: list[Any] = []
        self._last: Any = None

    def next(self) -> Any:
        """The next item."""
        if not self._queue:
            self._queue = self._items[:]
            self._rng.shuffle(self._queue)
            if len(self._queue) > 1 and self._queue[-1] is self._last:
                self._queue[0], self._queue[-1] = self._queue[-1], self._queue[0]
        self._last = self._queue.pop()
        return self._last


def _read(name: str) -> Any:
    try:
        text = resources.files("voices").joinpath("content", f"{name}.yaml").read_text("utf-8")
        return yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read content pack voices/content/{name}.yaml: {exc}") from exc


def load_items(name: str) -> list[Item]:
    """The items of one pack, validated."""
    data = _read(name)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise DataError(f"voices/content/{name}.yaml needs 'kind' and a list 'items'")
    items = []
    for entry in data["items"]:
        lines = entry.get("lines") if isinstance(entry, dict) else None
        if not lines or not all(isinstance(line, str) and line.strip() for line in lines):
            raise DataError(f"voices/content/{name}.yaml: item {entry!r} needs non-empty 'lines'")
        items.append(Item(id=str(entry.get("id", "")), kind=str(data.get("kind", name)),
                          title=str(entry.get("title", "")), lines=tuple(lines)))
    return items


class Chat:
    """The chat skill: answers the ``chat`` intent (topics joke, story, opera, lonely, or small talk)."""

    def __init__(self, *, contact_name: str, offer_call: Callable[[str, str], Reply],
                 rng: random.Random | None = None) -> None:
        """``contact_name`` is who is offered when the elder is lonely (「您儿子」); ``offer_call(line, utterance)``
        asks the dialogue to confirm a call to the family with that line."""
        rng = rng or random.Random()
        self.contact_name = contact_name
        self._offer_call = offer_call
        self._packs = {name: Rotation(load_items(name), rng) for name in PACKS}
        smalltalk = _read("smalltalk")
        replies = smalltalk.get("replies") if isinstance(smalltalk, dict) else None
        if not isinstance(replies, dict) or any(key not in replies for key in REQUIRED_REPLIES):
            raise DataError(f"voices/content/smalltalk.yaml needs replies for {', '.join(REQUIRED_REPLIES)}")
        self._replies: Mapping[str, Rotation] = {key: Rotation(list(values), rng) for key, values in replies.items()}

    def tell(self, pack: str) -> tuple[str, ...]:
        """The lines of the next item of a pack (jokes, stories, opera, poems)."""
        item: Item = self._packs[pack].next()
        return item.lines

    def reply(self, key: str) -> str:
        """The next small-talk reply of ``key``."""
        return str(self._replies[key].next())

    def __call__(self, result: IntentResult) -> Reply:
        """Answer a ``chat`` utterance."""
        from assistant.dialogue import Reply

        topic = result.slots.get("topic")
        text = result.text
        if topic == "lonely":
            line = self.reply("comfort_lonely").format(contact=self.contact_name)
            return self._offer_call(line, text)
        if topic in ("joke", "story", "opera"):
            return Reply(self.tell({"joke": "jokes", "story": "stories", "opera": "opera"}[topic]))
        say = result.slots.get("_say")
        if say == "poem":
            return Reply(self.tell("poems"))
        if say in self._replies:
            return Reply((self.reply(say),))
        return Reply((self.reply("chat_open"),))
