"""Sensor adapters and the device registry: real zigbee2mqtt 2.x payloads in, typed events out, never a crash."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from assistant.config import DeviceConfig
from devices.sensors import MAX_PAYLOAD, DeviceRegistry, SensorAdapter, SensorEvent, WarningLimiter

NOW = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DEVICES = (
    DeviceConfig("front_door", "door", "entrance"),
    DeviceConfig("bathroom_motion", "motion", "bathroom"),
    DeviceConfig("kitchen_gas", "gas", "kitchen"),
    DeviceConfig("sos_button", "sos", "bedroom"),
    DeviceConfig("bed", "bed", "bedroom"),
    DeviceConfig("bathroom_leak", "water_leak", "bathroom"),
    DeviceConfig("hall_smoke", "smoke", "hall"),
)

# Payloads as zigbee2mqtt 2.x publishes them for common Aqara / Heiman / Tuya devices.
DOOR = {"battery": 100, "contact": False, "device_temperature": 26, "linkquality": 120,
        "power_outage_count": 7, "voltage": 3005}
MOTION = {"battery": 97, "illuminance": 6, "illuminance_lux": 6, "linkquality": 147, "occupancy": True,
          "voltage": 3055}
GAS = {"gas": True, "battery_low": False, "tamper": False, "linkquality": 90}
SOS = {"action": "emergency", "battery": 100, "battery_low": False, "linkquality": 80, "tamper": False}
SMOKE = {"smoke": True, "battery": 90, "battery_low": False, "tamper": False, "linkquality": 66}
LEAK = {"water_leak": True, "battery": 91, "device_temperature": 25, "linkquality": 102, "voltage": 3015}
BED = {"presence": True, "linkquality": 130}


@pytest.fixture
def adapter() -> SensorAdapter:
    return SensorAdapter("home-001", DeviceRegistry(DEVICES), now=lambda: NOW)


def kinds(events: tuple[SensorEvent, ...]) -> dict[str, object]:
    return {event.kind: event.value for event in events}


def test_door_contact_false_means_open_and_carries_role_and_room(adapter: SensorAdapter) -> None:
    events = adapter.adapt("zigbee2mqtt/front_door", json.dumps(DOOR).encode())
    assert kinds(events) == {"contact": False, "battery": 100}
    assert {(e.device, e.role, e.room, e.at) for e in events} == {("front_door", "door", "entrance", NOW)}


@pytest.mark.parametrize(("name", "payload", "expected"), [
    ("bathroom_motion", MOTION, {"occupancy": True, "battery": 97}),
    ("kitchen_gas", GAS, {"gas": True}),
    ("sos_button", SOS, {"action": "emergency", "battery": 100}),
    ("hall_smoke", SMOKE, {"smoke": True, "battery": 90}),
    ("bathroom_leak", LEAK, {"water_leak": True, "battery": 91}),
    ("bed", BED, {"occupancy": True}),
])
def test_zigbee2mqtt_payloads(adapter: SensorAdapter, name: str, payload: dict, expected: dict) -> None:
    assert kinds(adapter.adapt("zigbee2mqtt/" + name, json.dumps(payload).encode())) == expected


def test_generic_topic_uses_the_same_property_names(adapter: SensorAdapter) -> None:
    events = adapter.adapt("yinling/home-001/sensor/radar1", b'{"fall": true, "occupancy": true}')
    assert kinds(events) == {"fall": True, "occupancy": True}
    assert events[0].role == "" and events[0].device == "radar1"  # not configured: no role, still reported


def test_availability_json_and_legacy(adapter: SensorAdapter) -> None:
    (online,) = adapter.adapt("zigbee2mqtt/front_door/availability", b'{"state":"online"}')
    (offline,) = adapter.adapt("zigbee2mqtt/front_door/availability", b"offline")
    assert (online.kind, online.value, offline.value) == ("availability", True, False)
    status = {s.name: s for s in adapter.registry.status()}
    assert status["front_door"].online is False and status["front_door"].last_seen is None


def test_registry_tracks_last_seen_and_battery(adapter: SensorAdapter) -> None:
    adapter.adapt("zigbee2mqtt/front_door", json.dumps(DOOR).encode())
    adapter.adapt("zigbee2mqtt/bed", b'{"linkquality": 40}')  # nothing we use, still a sign of life
    status = {s.name: s for s in adapter.registry.status()}
    assert status["front_door"].last_seen == NOW and status["front_door"].battery == 100
    assert status["bed"].last_seen == NOW
    assert status["kitchen_gas"].last_seen is None
    assert adapter.registry.with_role("sos") == (DEVICES[3],)


def test_empty_action_is_a_reset_not_a_press(adapter: SensorAdapter) -> None:
    assert adapter.adapt("zigbee2mqtt/sos_button", b'{"action": "", "battery": 100}')[0].kind == "battery"


def test_sensor_event_round_trip() -> None:
    event = SensorEvent("front_door", "door", "entrance", "contact", True, NOW)
    assert SensorEvent.from_json(json.loads(json.dumps(event.to_json()))) == event


BAD = [
    ("zigbee2mqtt/front_door", b"not json at all"),
    ("zigbee2mqtt/front_door", b"\xff\xfe\x00garbage"),
    ("zigbee2mqtt/front_door", b"[1, 2, 3]"),
    ("zigbee2mqtt/front_door", b'"contact"'),
    ("zigbee2mqtt/front_door", b"null"),
    ("zigbee2mqtt/front_door", b""),
    ("zigbee2mqtt/front_door", b'{"contact": "closed", "battery": "full", "action": 5, "occupancy": 1}'),
    ("zigbee2mqtt/front_door", b'{"battery": 250}'),
    ("zigbee2mqtt/front_door", b"[" * 30000 + b"]" * 30000),
    ("zigbee2mqtt/front_door", b'{"contact": true' + b" " * (MAX_PAYLOAD + 1) + b"}"),
    ("zigbee2mqtt/front_door/availability", b'{"state": 1}'),
    ("zigbee2mqtt/front_door/availability", b"maybe"),
    ("yinling/home-001/sensor/", b"{}"),
    ("yinling/home-001/sensor/a/b", b"{}"),
    ("somewhere/else", b"{}"),
]


@pytest.mark.parametrize(("topic", "payload"), BAD)
def test_malformed_payloads_give_no_events_and_no_exception(adapter: SensorAdapter, topic: str,
                                                            payload: bytes) -> None:
    assert adapter.adapt(topic, payload) == ()


def test_wrong_typed_property_does_not_hide_the_good_ones(adapter: SensorAdapter) -> None:
    events = adapter.adapt("zigbee2mqtt/kitchen_gas", b'{"gas": true, "battery": "low"}')
    assert kinds(events) == {"gas": True}


def test_warnings_are_one_line_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    ticks = [0.0]
    limiter = WarningLimiter(logging.getLogger("devices.sensors"), interval=60.0, clock=lambda: ticks[0])
    adapter = SensorAdapter("home-001", DeviceRegistry(DEVICES), now=lambda: NOW, warnings=limiter)
    with caplog.at_level(logging.WARNING, logger="devices.sensors"):
        for _ in range(1000):
            adapter.adapt("zigbee2mqtt/front_door", b"{broken")
        ticks[0] = 61.0
        adapter.adapt("zigbee2mqtt/front_door", b"{broken")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and limiter.total == 1001
    assert "999 similar warnings suppressed" in messages[1]
    assert all("\n" not in m and len(m) < 200 for m in messages)
