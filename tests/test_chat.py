"""Tests for assistant.chat: content packs, no repeats in a row, comfort with an offer to call family."""

import random

import pytest

from assistant.chat import PACKS, Chat, Rotation, load_items
from assistant.dialogue import Reply
from intents.recognize import IntentResult


def chat_with(offers: list) -> Chat:
    def offer_call(line: str, utterance: str) -> Reply:
        offers.append((line, utterance))
        return Reply((line,))

    return Chat(contact_name="儿子", offer_call=offer_call, rng=random.Random(7))


@pytest.mark.parametrize("pack", PACKS)
def test_packs_have_a_few_dozen_items_with_unique_ids(pack: str) -> None:
    items = load_items(pack)
    assert len(items) >= 24
    assert len({item.id for item in items}) == len(items)
    assert all(line.strip() and not any(c.isascii() and c.isalnum() for c in line)
               for item in items for line in item.lines)


def test_the_same_joke_is_never_told_twice_in_a_row() -> None:
    chat = chat_with([])
    told = [chat(IntentResult("讲个笑话", "chat", 1.0, {"topic": "joke"})).lines for _ in range(200)]
    assert all(a != b for a, b in zip(told, told[1:]))
    assert len(set(told)) == len(load_items("jokes"))  # every joke comes round


def test_rotation_never_repeats_across_rounds() -> None:
    rotation = Rotation([1, 2], random.Random(0))
    drawn = [rotation.next() for _ in range(50)]
    assert all(a != b for a, b in zip(drawn, drawn[1:]))


def test_loneliness_gets_comfort_and_an_offer_to_call() -> None:
    offers: list = []
    reply = chat_with(offers)(IntentResult("我好孤单", "chat", 1.0, {"topic": "lonely"}))
    (line,) = reply.lines
    assert "儿子" in line and offers == [(line, "我好孤单")]


@pytest.mark.parametrize(("slots", "pack_or_key"), [
    ({"topic": "story"}, "stories"), ({"topic": "opera"}, "opera"), ({"_say": "poem"}, "poems"),
])
def test_topics_pick_their_pack(slots: dict, pack_or_key: str) -> None:
    lines = chat_with([])(IntentResult("", "chat", 1.0, slots)).lines
    assert lines in {item.lines for item in load_items(pack_or_key)}


def test_small_talk_and_plain_chat() -> None:
    chat = chat_with([])
    assert "小铃" in "".join(chat(IntentResult("你是谁", "chat", 1.0, {"_say": "who_are_you"})).lines)
    assert len(chat(IntentResult("陪我聊聊", "chat", 1.0, {})).lines) == 1
