"""Hermes intent messages: every recognised intent, in the JSON that Rhasspy / Snips tools understand.

``hermes/intent/<intentName>`` carries::

    {"input": "帮我订一份午饭", "intent": {"intentName": "order_meal", "confidenceScore": 0.9},
     "slots": [{"slotName": "meal", "entity": "meal", "rawValue": "lunch",
                "value": {"kind": "Custom", "value": "lunch"}}, ...],
     "siteId": "home-001", "sessionId": "..."}

Internal slots (names starting with ``_``) stay inside the assistant. :func:`from_hermes` is the
inverse of :func:`to_hermes`, for tests and for tools that read the topic back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from intents.recognize import IntentResult

TOPIC_PREFIX = "hermes/intent/"
"""Topic prefix of intent messages; the intent name follows."""


def hermes_topic(result: IntentResult) -> str:
    """The topic of ``result``: ``hermes/intent/<intent>``."""
    return TOPIC_PREFIX + result.intent


def to_hermes(result: IntentResult, *, site_id: str, session_id: str | None = None) -> dict[str, Any]:
    """The Hermes JSON of ``result``; ``session_id`` defaults to a fresh UUID."""
    slots = []
    for name, value in result.slots.items():
        if name.startswith("_"):
            continue
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        slots.append({"slotName": name, "entity": name, "rawValue": str(value),
                      "value": {"kind": "Number" if is_number else "Custom", "value": value}})
    return {"input": result.text,
            "intent": {"intentName": result.intent, "confidenceScore": round(result.confidence, 3)},
            "slots": slots, "siteId": site_id, "sessionId": session_id or str(uuid.uuid4())}


def hermes_payload(result: IntentResult, *, site_id: str, session_id: str | None = None) -> bytes:
    """:func:`to_hermes` as UTF-8 JSON bytes (Chinese kept readable)."""
    return json.dumps(to_hermes(result, site_id=site_id, session_id=session_id), ensure_ascii=False).encode("utf-8")


def from_hermes(data: dict[str, Any]) -> IntentResult:
    """Inverse of :func:`to_hermes` (the session and site are dropped)."""
    intent = data["intent"]
    slots = {slot["slotName"]: slot["value"]["value"] for slot in data.get("slots", [])}
    return IntentResult(text=str(data["input"]), intent=str(intent["intentName"]),
                        confidence=float(intent["confidenceScore"]), slots=slots)
