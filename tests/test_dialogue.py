"""Tests for assistant.dialogue: slot filling, confirmation, repeat, cancel, time-out, emergencies."""

import datetime as dt

import pytest

from assistant.dialogue import CONFIRM, Dialogue
from assistant.events import CallRequested, DeviceCommand, HelpRequested, OrderRequested
from assistant.skills import Skills
from intents.recognize import Recognizer
from voices.prompts import Prompts


class FakeClock:
    """Monotonic seconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def prompts() -> Prompts:
    return Prompts.load()


@pytest.fixture()
def dialogue(recognizer: Recognizer, prompts: Prompts, clock: FakeClock) -> Dialogue:
    skills = Skills(prompts, elder="张阿姨", clock=lambda: dt.datetime(2026, 11, 26, 8, 30),
                    devices={"light": "living_room_light"})
    return Dialogue(prompts, skills, recognizer.slot_value, elder="张阿姨", timeout=30, clock=clock)


def talk(dialogue: Dialogue, recognizer: Recognizer, text: str):
    return dialogue.handle(recognizer.parse(text))


def is_prompt(prompts: Prompts, key: str, line: str) -> bool:
    """``line`` is one of the variants of ``key`` (whatever the placeholders)."""
    import re
    for variant in prompts.variants(key):
        pattern = re.escape(variant)
        pattern = re.sub(r"\\\{[a-z_]+\\\}", ".*", pattern)
        if re.fullmatch(pattern, line):
            return True
    return False


def test_meal_order_asks_one_question_at_a_time_then_confirms(dialogue, recognizer, prompts) -> None:
    reply = talk(dialogue, recognizer, "帮我订午饭")
    assert is_prompt(prompts, "ask_order_meal_quantity", reply.lines[0]) and not reply.events
    reply = talk(dialogue, recognizer, "两份")
    assert reply.lines == ("给您订两份午饭，对吗？",)
    assert dialogue.pending.asking == CONFIRM
    reply = talk(dialogue, recognizer, "对")
    (event,) = reply.events
    assert isinstance(event, OrderRequested)
    assert (event.service, event.details) == ("meal", {"meal": "lunch", "quantity": 2})
    assert event.utterance == "帮我订午饭"
    assert dialogue.pending is None


def test_all_slots_at_once_go_straight_to_confirmation(dialogue, recognizer) -> None:
    reply = talk(dialogue, recognizer, "明天中午十二点送一份红烧肉盖饭")
    assert reply.lines == ("给您订一份午饭，红烧肉盖饭，十二点，对吗？",)


@pytest.mark.parametrize("answer", ["不对", "算了", "不要了", "取消"])
def test_no_cancels_the_order(dialogue, recognizer, prompts, answer: str) -> None:
    talk(dialogue, recognizer, "我要两份晚饭")
    reply = talk(dialogue, recognizer, answer)
    assert not reply.events and dialogue.pending is None
    assert is_prompt(prompts, "cancelled", reply.lines[0])


def test_repeat_says_the_last_line_again(dialogue, recognizer) -> None:
    first = talk(dialogue, recognizer, "我要两份晚饭")
    assert talk(dialogue, recognizer, "再说一遍").lines == first.lines
    assert dialogue.pending is not None  # repeating does not end the question
    assert talk(dialogue, recognizer, "对").events


def test_mumbling_while_confirming_asks_again(dialogue, recognizer, prompts) -> None:
    talk(dialogue, recognizer, "我要两份晚饭")
    reply = talk(dialogue, recognizer, "那个那个")
    assert is_prompt(prompts, "confirm_yes_no", reply.lines[0]) and dialogue.pending is not None


def test_unanswered_question_times_out_politely_once(dialogue, recognizer, prompts, clock) -> None:
    talk(dialogue, recognizer, "帮我订饭")
    clock.now += 29
    assert dialogue.tick().lines == ()
    clock.now += 2
    reply = dialogue.tick()
    assert len(reply.lines) == 1 and is_prompt(prompts, "timeout_idle", reply.lines[0])
    assert dialogue.pending is None
    clock.now += 100
    assert dialogue.tick().lines == ()


def test_emergency_interrupts_any_dialogue(dialogue, recognizer, prompts) -> None:
    talk(dialogue, recognizer, "帮我订午饭")
    reply = talk(dialogue, recognizer, "哎呀我摔倒了")
    (event,) = reply.events
    assert isinstance(event, HelpRequested) and (event.urgency, event.reason) == ("emergency", "fall")
    assert is_prompt(prompts, "help_on_the_way", reply.lines[0])
    assert dialogue.pending is None


def test_a_clear_new_request_replaces_the_question(dialogue, recognizer) -> None:
    talk(dialogue, recognizer, "帮我订饭")
    reply = talk(dialogue, recognizer, "现在几点了")
    assert "八点半" in reply.lines[0] and dialogue.pending is None


def test_call_is_confirmed_first(dialogue, recognizer) -> None:
    reply = talk(dialogue, recognizer, "打电话给我儿子")
    assert reply.lines == ("给您儿子打电话，好吗？",) and not reply.events
    (event,) = talk(dialogue, recognizer, "好的").events
    assert isinstance(event, CallRequested) and event.contact == "son"


def test_who_to_call_is_asked_and_answered(dialogue, recognizer) -> None:
    talk(dialogue, recognizer, "帮我打个电话")
    assert talk(dialogue, recognizer, "闺女").lines == ("给您女儿打电话，好吗？",)


def test_device_control(dialogue, recognizer) -> None:
    reply = talk(dialogue, recognizer, "把灯打开")
    assert reply.lines == ("好的，灯打开了。",)
    assert reply.events[0] == DeviceCommand(device="light", action="on", name="living_room_light",
                                            id=reply.events[0].id, created_at=reply.events[0].created_at)
    reply = talk(dialogue, recognizer, "开空调")
    assert reply.lines == ("家里没有找到空调，要请家里人装好才行。",) and not reply.events


def test_not_understood_offers_help_without_a_lecture(dialogue, recognizer, prompts) -> None:
    reply = talk(dialogue, recognizer, "外面那只猫真好看")
    assert len(reply.lines) == 1 and is_prompt(prompts, "not_understood", reply.lines[0])
