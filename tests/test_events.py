"""Tests for assistant.events: wire form round trip."""

import pytest

from assistant.events import (CallRequested, DeviceCommand, HelpRequested, MessagePlayed, OrderRequested,
                              event_from_json)


@pytest.mark.parametrize("event", [
    HelpRequested(urgency="emergency", reason="fall", utterance="我摔倒了"),
    CallRequested(contact="son"),
    OrderRequested(service="meal", details={"meal": "lunch", "quantity": 2}, utterance="订两份午饭"),
    DeviceCommand(device="light", action="on", name="living_room_light"),
    MessagePlayed(text="妈，我周末回来"),
])
def test_round_trip(event) -> None:
    wire = event.to_json()
    assert wire["kind"] == event.kind and wire["id"] and wire["created_at"]
    assert event_from_json(wire) == event


def test_ids_are_unique() -> None:
    assert CallRequested(contact="son").id != CallRequested(contact="son").id
