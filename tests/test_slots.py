"""Tests for intents.slots: parsed slots (time, quantity, date, medicine, dose, kind) and meal inference."""

import pytest

from intents.recognize import Recognizer


@pytest.mark.parametrize(("text", "slots"), [
    ("每天早上七点半提醒我吃二甲双胍", {"time": "07:30", "repeat": "daily", "medicine": "二甲双胍",
                                        "kind": "medication"}),
    ("后晌四点提醒我吃胃药", {"time": "16:00", "medicine": "胃药"}),
    ("晚上九点提醒我吃一片降压药", {"time": "21:00", "dose": "一片", "medicine": "降压药"}),
    ("中午十二点一刻提醒我吃半片阿司匹林", {"time": "12:15", "dose": "半片", "medicine": "阿司匹林"}),
    ("下午两点半提醒我吃消心痛片", {"time": "14:30", "medicine": "消心痛片"}),   # not in the lexicon
    ("每周一上午九点零五提醒我量血压", {"time": "09:05", "repeat": "weekly", "kind": "other"}),
    ("明天下午三点提醒我去理发", {"time": "15:00", "repeat": "once", "kind": "other"}),
])
def test_reminder_slots(recognizer: Recognizer, text: str, slots: dict) -> None:
    result = recognizer.parse(text)
    assert result.intent == "set_reminder"
    for key, value in slots.items():
        assert result.slots.get(key) == value, key


@pytest.mark.parametrize(("text", "slots"), [
    ("明早送一碗豆浆油条", {"meal": "breakfast", "quantity": 1, "dish": "豆浆油条"}),
    ("晌午要三份饭，少放盐", {"meal": "lunch", "quantity": 3, "notes": "少盐"}),
    ("订2份晚饭", {"meal": "dinner", "quantity": 2}),
    ("十二点给我送份饭来", {"meal": "lunch", "time": "12:00"}),
    ("来两碗饺子当晚饭", {"meal": "dinner", "quantity": 2, "dish": "饺子"}),
])
def test_meal_slots(recognizer: Recognizer, text: str, slots: dict) -> None:
    result = recognizer.parse(text)
    assert result.intent == "order_meal"
    for key, value in slots.items():
        assert result.slots.get(key) == value, key


def test_only_the_intents_own_slots_are_returned(recognizer: Recognizer) -> None:
    # 儿子 is a contact, 午饭 a meal: an order carries no contact
    result = recognizer.parse("给我儿子也订一份午饭")
    assert result.intent == "order_meal"
    assert "contact" not in result.slots
    assert not any(key.startswith("_") for key in result.slots)


def test_curtain_open_is_on(recognizer: Recognizer) -> None:
    assert recognizer.parse("把窗帘拉开").slots == {"device": "curtain", "action": "on"}
    assert recognizer.parse("窗帘拉上").slots == {"device": "curtain", "action": "off"}


@pytest.mark.parametrize("text", ["我吃过药了", "吃了药了", "药吃完了", "我刚吃完药"])
def test_particles_are_not_medicine_names(recognizer: Recognizer, text: str) -> None:
    result = recognizer.parse(text)
    assert result.intent == "medication_taken"
    assert "medicine" not in result.slots
