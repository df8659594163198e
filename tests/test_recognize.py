"""Tests for intents.recognize: every contract intent, emergency priority, negation, none, robustness."""

import pytest

from intents.recognize import IntentResult, Recognizer

# One line per intent of CONTRACTS.md §2 (more sentences live in the accuracy sets).
CONTRACT_CASES = [
    ("救命啊", "call_help", {"urgency": "emergency"}),
    ("给我儿子打个电话", "call_help", {"contact": "son", "urgency": "normal"}),
    ("晌午饭给我送两份", "order_meal", {"meal": "lunch", "quantity": 2}),
    ("帮我约个人来打扫卫生", "order_service", {"service": "cleaning"}),
    ("每天晚上九点提醒我吃降压药", "set_reminder",
     {"kind": "medication", "medicine": "降压药", "time": "21:00", "repeat": "daily"}),
    ("降压药吃过了", "medication_taken", {"medicine": "降压药"}),
    ("我今天还有什么药没吃", "query_reminders", {}),
    ("把晚上那个提醒取消了", "cancel_reminder", {}),
    ("给我讲个笑话", "chat", {"topic": "joke"}),
    ("今天农历初几", "query_time", {"what": "lunar"}),
    ("明天会不会下雨", "query_weather", {}),
    ("把客厅的灯打开", "device_control", {"device": "light", "action": "on"}),
    ("好的", "affirm", {}),
    ("不用了", "deny", {}),
    ("我没事", "im_ok", {}),
    ("你说啥我没听清", "repeat", {}),
    ("取消", "cancel", {}),
    ("我家猫昨天生了三只小猫", "none", {}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), CONTRACT_CASES, ids=[c[0] for c in CONTRACT_CASES])
def test_every_contract_intent(recognizer: Recognizer, text: str, intent: str, slots: dict) -> None:
    result = recognizer.parse(text)
    assert result.intent == intent
    for key, value in slots.items():
        assert result.slots.get(key) == value, key


@pytest.mark.parametrize("text", ["电视别关，救命啊", "帮我订饭，哎呀我摔倒了", "提醒我吃药……快来人啊", "救明啊"])
def test_emergency_wins_over_everything(recognizer: Recognizer, text: str) -> None:
    result = recognizer.parse(text)
    assert (result.intent, result.slots["urgency"]) == ("call_help", "emergency")


@pytest.mark.parametrize(("text", "intent"), [
    ("不用叫救护车，我没事", "im_ok"),
    ("别开灯", "none"),
    ("我没摔倒", "none"),
    ("我不太舒服", "call_help"),         # the negator belongs to the phrase
    ("没听清", "repeat"),
])
def test_negation(recognizer: Recognizer, text: str, intent: str) -> None:
    assert recognizer.parse(text).intent == intent


@pytest.mark.parametrize("text", ["今天的电视剧真好看", "我今天很开心", "外面那只猫真好看", "帮我炒股"])
def test_blockers_and_low_confidence_give_none(recognizer: Recognizer, text: str) -> None:
    assert recognizer.parse(text).intent == "none"


@pytest.mark.parametrize("text", [
    "", " ", "\n", "。。。", "😀😀😀", "hello, what time is it", "\x00\x01\x02\xff",
    "的" * 10_000, "救命" * 5_000, "\ud800", "🀄" * 300,
])
def test_garbage_never_raises(recognizer: Recognizer, text: str) -> None:
    result = recognizer.parse(text)
    assert result.intent in recognizer.lexicon.intents or result.intent == "none"
    assert 0.0 <= result.confidence <= 1.0
    assert result.text == text


def test_confidence_is_high_for_clear_requests(recognizer: Recognizer) -> None:
    assert recognizer.parse("帮我订一份午饭").confidence >= 0.85
    assert recognizer.parse("嗯嗯啊啊那个").intent in ("affirm", "none")


def test_relative_dates_use_the_injected_clock(recognizer: Recognizer) -> None:
    result = recognizer.parse("明天上午十点帮我约个理发")
    assert result.intent == "order_service"
    assert result.slots == {"service": "haircut", "time": "10:00", "date": "2026-11-27"}


def test_accent_tolerant_mode(recognizer: Recognizer, tolerant_recognizer: Recognizer) -> None:
    # zh→z, sh→s, ang→an on every character of 「降压药」 is too much for the strict mode
    text = "我的将压要吃过了"
    assert tolerant_recognizer.parse(text).intent == "medication_taken"


def test_json_round_trip(recognizer: Recognizer) -> None:
    result = recognizer.parse("晚上十点叫我吃药")
    wire = result.to_json()
    assert list(wire) == ["text", "intent", "confidence", "slots"]
    assert IntentResult.from_json(wire) == IntentResult(result.text, result.intent,
                                                        round(result.confidence, 3), result.slots)
