"""The MQTT bridge against a real mosquitto: status and Last Will, discovery, subscriptions, outbox, commands."""

from __future__ import annotations

import datetime as dt
import json
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import DeviceConfig, MqttConfig
from assistant.errors import MqttError
from assistant.events import DeviceCommand
from assistant.incidents import Alert
from devices.bridge import BrokerSettings, MqttBridge
from devices.hermes import from_hermes, to_hermes
from devices.outbox import MqttOutbox
from devices.sensors import DeviceRegistry, SensorAdapter, SensorEvent
from intents.recognize import IntentResult
from tests.mqtt_broker import WAIT, Broker, Recorder, wait_until

ROOT = Path(__file__).resolve().parent.parent
HOME = "home-t"
NOW = dt.datetime(2026, 11, 26, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
DEVICES = (
    DeviceConfig("front_door", "door", "entrance"),
    DeviceConfig("hall_light", "light", "hall"),
    DeviceConfig("bedroom_curtain", "curtain", "bedroom"),
    DeviceConfig("gas_valve", "gas_valve", "kitchen"),
    DeviceConfig("kitchen/gas", "gas", "kitchen"),
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free port for one test."""
    with Broker(tmp_path / "broker") as server:
        yield server


def make_bridge(broker: Broker, state: Path, *, client_id: str = "assistant", **handlers: object) -> MqttBridge:
    adapter = SensorAdapter(HOME, DeviceRegistry(DEVICES), now=lambda: NOW)
    settings = BrokerSettings(broker.host, broker.port, client_id=client_id, keepalive=5, min_delay=0.05,
                              max_delay=0.5)
    outbox = MqttOutbox(state / "mqtt_outbox.db")
    return MqttBridge(HOME, settings, adapter, outbox, **handlers)  # type: ignore[arg-type]


def alert(number: int = 1) -> Alert:
    return Alert("alert-%d" % number, "incident-1", HOME, "sos", "community", "sos_button", NOW.isoformat(),
                 "sos_button", "bedroom")


def settle(bridge: MqttBridge, recorder: Recorder, tag: str) -> None:
    """Everything the bridge published before this has reached the recorder (per-client order)."""
    bridge.publish("test/marker", tag.encode())
    recorder.wait_for("test/marker", lambda m: m.payload == tag.encode())


def test_connect_announces_online_and_home_assistant_discovery(broker: Broker, tmp_path: Path) -> None:
    bridge = make_bridge(broker, tmp_path)
    bridge.start()
    try:
        assert bridge.wait_connected(WAIT)
        recorder = Recorder(broker, ("yinling/%s/status" % HOME, "homeassistant/#"))
        (status,) = recorder.wait_for("yinling/%s/status" % HOME)
        assert status.payload == b"online" and status.retain
        configs = recorder.wait_for("homeassistant/#", count=3)
        bodies = {m.topic: m.json() for m in configs}
        assert all(m.retain for m in configs)
        assert {b["unique_id"] for b in bodies.values()} == {
            "yinling_home-t_status", "yinling_home-t_last_alert", "yinling_home-t_sos"}
        sos = bodies["homeassistant/binary_sensor/yinling_home-t/sos/config"]
        assert sos["state_topic"] == "yinling/home-t/sos" and sos["device_class"] == "safety"
        last = bodies["homeassistant/sensor/yinling_home-t/last_alert/config"]
        assert last["state_topic"] == "yinling/home-t/alert"
        recorder.close()
    finally:
        bridge.stop()


def test_clean_stop_says_offline(broker: Broker, tmp_path: Path) -> None:
    recorder = Recorder(broker, ("yinling/%s/status" % HOME,))
    bridge = make_bridge(broker, tmp_path)
    bridge.start()
    recorder.wait_for("yinling/+/status", lambda m: m.payload == b"online")
    bridge.stop()
    recorder.wait_for("yinling/+/status", lambda m: m.payload == b"offline")
    recorder.close()


KILLED = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from devices.bridge import BrokerSettings, MqttBridge
    from devices.outbox import MqttOutbox
    from devices.sensors import DeviceRegistry, SensorAdapter
    bridge = MqttBridge("home-t", BrokerSettings("127.0.0.1", int(sys.argv[1]), keepalive=5),
                        SensorAdapter("home-t", DeviceRegistry()), MqttOutbox(Path(sys.argv[2])))
    bridge.start()
    print("connected" if bridge.wait_connected(5) else "failed", flush=True)
    threading.Event().wait(30)
""")


def test_last_will_says_offline_when_the_assistant_is_killed(broker: Broker, tmp_path: Path) -> None:
    recorder = Recorder(broker, ("yinling/%s/status" % HOME,))
    process = subprocess.Popen([sys.executable, "-c", KILLED, str(broker.port), str(tmp_path / "o.db"), str(ROOT)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([process.stdout], [], [], 10)[0], "the assistant process did not start"
        assert process.stdout is not None and process.stdout.readline().strip() == "connected"
        recorder.wait_for("yinling/+/status", lambda m: m.payload == b"online")
        process.kill()
        process.wait(WAIT)
        recorder.wait_for("yinling/+/status", lambda m: m.payload == b"offline")
    finally:
        process.kill()
        recorder.close()


def test_sensor_messages_and_acks_reach_their_handlers(broker: Broker, tmp_path: Path) -> None:
    events: list[SensorEvent] = []
    acks: list[tuple[str, str]] = []
    bridge = make_bridge(broker, tmp_path, on_sensor=events.append, on_ack=lambda i, by: acks.append((i, by)))
    bridge.start()
    assert bridge.wait_connected(WAIT)
    z2m = Recorder(broker, client_id="z2m")
    try:
        z2m.publish("zigbee2mqtt/front_door", {"contact": False, "battery": 90, "linkquality": 100})
        z2m.publish("zigbee2mqtt/kitchen/gas", {"gas": True})  # a friendly name with '/' is subscribed exactly
        z2m.publish("zigbee2mqtt/front_door/availability", {"state": "offline"})
        z2m.publish("yinling/%s/sensor/radar" % HOME, {"fall": True})
        z2m.publish("yinling/%s/alert/ack" % HOME, b"{oops")  # malformed: ignored
        z2m.publish("yinling/%s/alert/ack" % HOME, {"id": "alert-1", "by": "son"})
        wait_until(lambda: acks, what="the ack")
        assert [(e.device, e.kind, e.value) for e in events] == [
            ("front_door", "contact", False), ("front_door", "battery", 90), ("kitchen/gas", "gas", True),
            ("front_door", "availability", False), ("radar", "fall", True)]
        assert acks == [("alert-1", "son")]
    finally:
        z2m.close()
        bridge.stop()


def test_a_failing_handler_does_not_stop_the_next_messages(broker: Broker, tmp_path: Path) -> None:
    seen: list[object] = []

    def handler(event: SensorEvent) -> None:
        seen.append(event.value)
        if event.value is False:
            raise RuntimeError("handler bug")

    bridge = make_bridge(broker, tmp_path, on_sensor=handler)
    bridge.start()
    assert bridge.wait_connected(WAIT)
    z2m = Recorder(broker, client_id="z2m")
    z2m.publish("zigbee2mqtt/front_door", {"contact": False})
    z2m.publish("zigbee2mqtt/front_door", {"contact": True})
    wait_until(lambda: True in seen, what="the second message")
    z2m.close()
    bridge.stop()


def test_reconnects_and_resubscribes_after_a_broker_restart(broker: Broker, tmp_path: Path) -> None:
    events: list[SensorEvent] = []
    bridge = make_bridge(broker, tmp_path, on_sensor=events.append)
    bridge.start()
    assert bridge.wait_connected(WAIT)
    broker.stop()
    wait_until(lambda: not bridge.connected.is_set(), what="the bridge to notice")
    broker.start()
    assert bridge.wait_connected(WAIT)
    z2m = Recorder(broker, ("yinling/%s/status" % HOME,), client_id="z2m")
    z2m.wait_for("yinling/+/status", lambda m: m.payload == b"online")  # retained again on the new broker
    z2m.publish("zigbee2mqtt/front_door", {"contact": True})
    wait_until(lambda: events, what="a sensor event after the restart")
    z2m.close()
    bridge.stop()


def test_alert_published_while_the_broker_is_down_arrives_once(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker", persistence=True).start()
    family = Recorder(broker, ("yinling/%s/alert" % HOME, "test/marker"), client_id="family", persistent=True)
    bridge = make_bridge(broker, tmp_path)
    bridge.start()
    try:
        assert bridge.wait_connected(WAIT)
        broker.stop()
        wait_until(lambda: not bridge.connected.is_set(), what="the bridge to notice")
        bridge.publish_alert(alert())
        assert [m.key for m in bridge.outbox.pending()] == ["alert-1"]
        broker.start()
        (got,) = family.wait_for("yinling/%s/alert" % HOME)
        assert Alert.from_json(got.json()) == alert()
        wait_until(lambda: bridge.outbox.is_sent("alert-1"), what="the PUBACK")
        settle(bridge, family, "after")
        assert len(family.on("yinling/%s/alert" % HOME)) == 1
    finally:
        family.close()
        bridge.stop()
        broker.stop()


def test_outbox_left_by_a_previous_run_is_published_once(broker: Broker, tmp_path: Path) -> None:
    family = Recorder(broker, ("yinling/%s/alert" % HOME, "test/marker"), client_id="family")
    MqttOutbox(tmp_path / "mqtt_outbox.db").add("alert-7", "yinling/%s/alert" % HOME, b'{"id": "alert-7"}')
    for run in range(2):
        bridge = make_bridge(broker, tmp_path)
        bridge.start()
        assert bridge.wait_connected(WAIT)
        bridge.publish_alert(alert(7))  # the engine replaying the same step: same id, not queued again
        wait_until(lambda b=bridge: b.outbox.is_sent("alert-7"), what="the PUBACK")
        settle(bridge, family, "run %d" % run)
        bridge.stop()
    assert [m.json()["id"] for m in family.on("yinling/%s/alert" % HOME)] == ["alert-7"]
    family.close()


def test_hermes_intent_is_published(broker: Broker, tmp_path: Path) -> None:
    recorder = Recorder(broker, ("hermes/intent/#",))
    bridge = make_bridge(broker, tmp_path)
    bridge.start()
    result = IntentResult("帮我订两份午饭", "order_meal", 0.93, {"meal": "lunch", "quantity": 2, "_raw": "x"})
    bridge.publish_intent(result, session_id="s1")
    (message,) = recorder.wait_for("hermes/intent/order_meal")
    data = message.json()
    assert data["intent"] == {"intentName": "order_meal", "confidenceScore": 0.93}
    assert data["input"] == "帮我订两份午饭" and data["siteId"] == HOME and data["sessionId"] == "s1"
    assert {"slotName": "quantity", "entity": "quantity", "rawValue": "2",
            "value": {"kind": "Number", "value": 2}} in data["slots"]
    assert from_hermes(data) == IntentResult("帮我订两份午饭", "order_meal", 0.93, {"meal": "lunch", "quantity": 2})
    recorder.close()
    bridge.stop()


def test_hermes_round_trip() -> None:
    result = IntentResult("关灯", "device_control", 0.8, {"device": "light", "action": "off"})
    assert from_hermes(json.loads(json.dumps(to_hermes(result, site_id="h")))) == result


def test_device_commands(broker: Broker, tmp_path: Path) -> None:
    z2m = Recorder(broker, ("zigbee2mqtt/+/set",), client_id="z2m")
    bridge = make_bridge(broker, tmp_path)
    bridge.start()
    assert bridge.wait_connected(WAIT)
    assert bridge.send_command(DeviceCommand(device="light", action="on", name="hall_light"))
    assert bridge.send_command(DeviceCommand(device="curtain", action="off"))  # found by role
    assert bridge.send_command(DeviceCommand(device="gas_valve", action="off", name="gas_valve"))
    assert not bridge.send_command(DeviceCommand(device="tv", action="on"))
    got = z2m.wait_for("zigbee2mqtt/+/set", count=3)
    assert [(m.topic, m.json()) for m in got] == [
        ("zigbee2mqtt/hall_light/set", {"state": "ON"}), ("zigbee2mqtt/bedroom_curtain/set", {"state": "CLOSE"}),
        ("zigbee2mqtt/gas_valve/set", {"state": "OFF"})]
    wait_until(lambda: not bridge.outbox.pending(), what="the valve command to be acknowledged")
    z2m.close()
    bridge.stop()


def test_settings_come_from_the_mqtt_section() -> None:
    settings = BrokerSettings.from_config(MqttConfig("broker.local", 8883, tls=True, ca_certs="", username="u",
                                                     password="p"))
    assert (settings.host, settings.port, settings.tls, settings.username) == ("broker.local", 8883, True, "u")
    assert (settings.ca_certs, settings.password) == (None, "p")
    anonymous = BrokerSettings.from_config(MqttConfig("h", 1883, tls=False, ca_certs="", username="", password=""))
    assert (anonymous.tls, anonymous.username, anonymous.password) == (False, None, None)


def test_tls_with_a_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = BrokerSettings("127.0.0.1", 8883, tls=True, ca_certs=str(tmp_path / "missing.pem"))
    with pytest.raises(MqttError, match="TLS"):
        MqttBridge(HOME, settings, SensorAdapter(HOME, DeviceRegistry()), MqttOutbox(tmp_path / "o.db"))
