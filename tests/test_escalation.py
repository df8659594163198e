"""The escalation engine end to end: zigbee2mqtt-shaped messages through a real mosquitto, an injected clock.

Each test drives one home: a :class:`Home` wires the bridge, the engine, an SQLite state directory,
a platform sink (a list) and a speaker (a list); a :class:`Recorder` plays zigbee2mqtt and the family
app. Sensor messages are followed by a sync message, so when :meth:`Home.send` returns the engine has
handled everything sent before; :meth:`Home.settle` does the same for what the engine published.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from assistant.adherence import MissedMedication
from assistant.config import DeviceConfig
from assistant.errors import ConfigError
from assistant.escalation import PROMPT_KEYS, EscalationEngine
from assistant.events import HelpRequested
from assistant.incidents import (
    Alert,
    EscalationConfig,
    Incident,
    IncidentStore,
    alert_id,
)
from devices.bridge import BrokerSettings, MqttBridge
from devices.outbox import MqttOutbox
from devices.sensors import DeviceRegistry, SensorAdapter, SensorEvent
from tests.mqtt_broker import WAIT, Broker, Recorder, wait_until
from voices.prompts import Prompts

HOME = "home-t"
ALERTS = "yinling/%s/alert" % HOME
TZ = dt.timezone(dt.timedelta(hours=8))
DAWN = dt.datetime(2026, 11, 26, 5, 0, tzinfo=TZ)
DEVICES = (
    DeviceConfig("sos_button", "sos", "bedroom"),
    DeviceConfig("front_door", "door", "entrance"),
    DeviceConfig("bathroom_motion", "motion", "bathroom"),
    DeviceConfig("living_motion", "motion", "living_room"),
    DeviceConfig("kitchen_gas", "gas", "kitchen"),
    DeviceConfig("gas_valve", "gas_valve", "kitchen"),
    DeviceConfig("hall_smoke", "smoke", "hall"),
    DeviceConfig("bathroom_leak", "water_leak", "bathroom"),
    DeviceConfig("bed", "bed", "bedroom"),
)
SYNC = "sync"

# The sentences the engine needs; the bundled voices/prompts.yaml wins once it has them.
ESCALATION_PROMPTS = """
reassurance: "别着急，已经通知您{contact}和社区了。"
family_notified: "{elder}，您没回答我，我已经告诉您{contact}了。"
gas_valve_closed: "{elder}，家里燃气泄漏了，我已经把燃气阀门关上了。请打开窗户，不要开火，也不要开关电器。"
gas_alarm: "{elder}，家里燃气泄漏了！请马上关上燃气阀门，打开窗户，不要开火，也不要开关电器。"
smoke_alarm: "{elder}，烟雾报警响了！请先到门外安全的地方去。"
water_leak_alarm: "{elder}，家里好像漏水了，走路小心地滑。我已经告诉您{contact}了。"
"""


def escalation_prompts() -> Prompts:
    data = yaml.safe_load(resources.files("voices").joinpath("prompts.yaml").read_text("utf-8"))
    data["prompts"] = {**yaml.safe_load(ESCALATION_PROMPTS), **data["prompts"]}
    return Prompts.parse(yaml.safe_dump(data, allow_unicode=True), "prompts.yaml + escalation")


PROMPTS = escalation_prompts()
ARE_YOU_OK = PROMPTS.text("are_you_ok", elder="张阿姨")
REASSURE_SON = PROMPTS.text("reassurance", contact="儿子")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh mosquitto on a free port for one test."""
    with Broker(tmp_path / "broker") as server:
        yield server


class Clock:
    """The injected clock: aware datetimes that only move when the test says so."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    def to(self, clock: str) -> None:
        self.now = dt.datetime.combine(self.now.date(), dt.time.fromisoformat(clock), tzinfo=TZ)


class Home:
    """One assistant (bridge + engine + state directory) on the test broker."""

    def __init__(self, broker: Broker, state: Path, clock: Clock, world: Recorder,
                 config: EscalationConfig | None = None, devices: tuple[DeviceConfig, ...] = DEVICES) -> None:
        self.clock, self.world = clock, world
        self.spoken: list[str] = []
        self.platform: list[Alert] = []
        self._synced: set[int] = set()
        self._sync_number = 0
        self._changed = threading.Condition()
        adapter = SensorAdapter(HOME, DeviceRegistry(devices), now=clock)
        settings = BrokerSettings(broker.host, broker.port, client_id="assistant", keepalive=5, min_delay=0.05,
                                  max_delay=0.5)
        self.bridge = MqttBridge(HOME, settings, adapter, MqttOutbox(state / "mqtt_outbox.db"))
        self.store = IncidentStore(state / "incidents.db")
        self.engine = EscalationEngine(config or EscalationConfig(), self.store, PROMPTS, home_id=HOME, elder="张阿姨",
                                       family_contact="son", now=clock, say=self.spoken.extend, link=self.bridge,
                                       platform=self.platform.append, devices=devices)
        self.bridge.on_sensor = self._on_sensor
        self.bridge.on_ack = self.engine.ack
        self.bridge.start()
        assert self.bridge.wait_connected(WAIT)

    def _on_sensor(self, event: SensorEvent) -> None:
        if event.device == SYNC:
            with self._changed:
                self._synced.add(int(event.value))
                self._changed.notify_all()
            return
        self.engine.on_sensor(event)

    def send(self, topic: str, payload: object, *, qos: int = 1) -> None:
        """Publish as zigbee2mqtt and return once the engine has handled it."""
        self.world.publish(topic, payload, qos=qos)
        self.sync()

    def sync(self) -> None:
        self._sync_number += 1
        number = self._sync_number
        self.world.publish("yinling/%s/sensor/%s" % (HOME, SYNC), {"battery": number})
        with self._changed:
            assert self._changed.wait_for(lambda: number in self._synced, WAIT), "the bridge did not sync"

    def settle(self) -> list[dict]:
        """Everything the engine published has reached the world; returns the alerts seen so far."""
        tag = str(time.monotonic_ns()).encode()
        self.bridge.publish("test/marker", tag)
        self.world.wait_for("test/marker", lambda m: m.payload == tag)
        return [m.json() for m in self.world.on(ALERTS)]

    def tick_until(self, clock: str, step_minutes: float = 1.0) -> None:
        """Tick every ``step_minutes`` simulated minutes until ``clock`` today."""
        end = dt.datetime.combine(self.clock.now.date(), dt.time.fromisoformat(clock), tzinfo=TZ)
        while self.clock.now < end:
            self.clock.now = min(self.clock.now + dt.timedelta(minutes=step_minutes), end)
            self.engine.tick()

    def close(self) -> None:
        self.bridge.stop()
        self.store.close()
        self.bridge.outbox.close()


@pytest.fixture
def world(broker: Broker) -> Recorder:
    recorder = Recorder(broker, (ALERTS, "yinling/%s/sos" % HOME, "zigbee2mqtt/+/set", "test/marker"),
                        client_id="world")
    yield recorder
    recorder.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(DAWN)


@pytest.fixture
def make_home(broker: Broker, tmp_path: Path, clock: Clock, world: Recorder) -> Callable[..., Home]:
    """Build homes on the test broker (all in the same state directory), closed after the test."""
    homes: list[Home] = []

    def make(config: EscalationConfig | None = None, devices: tuple[DeviceConfig, ...] = DEVICES) -> Home:
        homes.append(Home(broker, tmp_path / "state", clock, world, config, devices))
        return homes[-1]

    yield make
    for home in homes:
        home.close()


@pytest.fixture
def home(make_home: Callable[..., Home]) -> Home:
    return make_home()


def levels(alerts: list[dict]) -> list[tuple[str, str]]:
    return [(a["kind"], a["level"]) for a in alerts]


# ---- triggers ----------------------------------------------------------------------------------

def test_sos_press_alerts_within_a_second_reassures_and_an_ack_stops_the_ladder(home: Home) -> None:
    started = time.monotonic()
    home.world.publish("zigbee2mqtt/sos_button", {"action": "emergency", "battery": 100, "linkquality": 87})
    (message,) = home.world.wait_for(ALERTS, timeout=1.0)
    assert time.monotonic() - started < 1.0
    alert = message.json()
    assert (alert["kind"], alert["level"], alert["reason"], alert["room"]) == ("sos", "community", "sos_button",
                                                                               "bedroom")
    assert alert["notify"] == ["family", "community"] and alert["urgent"] is True
    assert alert["created_at"] == DAWN.isoformat()
    wait_until(lambda: REASSURE_SON in home.spoken, 1.0, "the spoken reassurance")
    assert [a.id for a in home.platform] == [alert["id"]]
    home.world.wait_for("yinling/+/sos", lambda m: m.payload == b"ON")

    home.send("zigbee2mqtt/sos_button", {"action": "emergency"})  # pressed again: the same incident
    home.send("yinling/%s/alert/ack" % HOME, {"id": alert["id"], "by": "son"})
    assert home.engine.open_incidents() == ()
    home.world.wait_for("yinling/+/sos", lambda m: m.payload == b"OFF")
    home.clock.advance(hours=2)
    home.engine.tick()
    assert levels(home.settle()) == [("sos", "community")]
    actions = [e.action for e in home.store.audit_log(alert["incident"])]
    assert actions == ["opened", "community", "repeat", "acknowledged"]


def test_spoken_emergency_alerts_family_and_community_and_names_the_contact(home: Home) -> None:
    home.engine.on_event(HelpRequested(urgency="emergency", reason="fall", contact="daughter", utterance="我摔倒了"))
    (alert,) = home.settle()
    assert (alert["kind"], alert["level"], alert["reason"]) == ("emergency", "community", "fall")
    assert alert["details"] == {"utterance": "我摔倒了"}
    assert home.spoken == [PROMPTS.text("reassurance", contact="女儿")]


def test_fall_sensor_on_the_generic_topic(home: Home) -> None:
    home.send("yinling/%s/sensor/radar_bathroom" % HOME, {"fall": True})
    assert levels(home.settle()) == [("fall", "community")]


def test_gas_alarm_closes_the_valve_and_says_so(home: Home) -> None:
    for _ in range(5):  # the detector repeats its state: still one incident
        home.send("zigbee2mqtt/kitchen_gas", {"gas": True, "battery_low": False, "tamper": False})
    (command,) = home.world.wait_for("zigbee2mqtt/gas_valve/set")
    assert command.json() == {"state": "OFF"}
    assert levels(home.settle()) == [("gas", "community")]
    assert home.spoken == [PROMPTS.text("gas_valve_closed", elder="张阿姨"), REASSURE_SON]


def test_gas_alarm_without_a_valve_tells_her_what_to_do(make_home: Callable[..., Home]) -> None:
    home = make_home(devices=tuple(d for d in DEVICES if d.role != "gas_valve"))
    home.send("zigbee2mqtt/kitchen_gas", {"gas": True})
    assert home.spoken == [PROMPTS.text("gas_alarm", elder="张阿姨"), REASSURE_SON]


def test_smoke_and_water_leak(home: Home) -> None:
    home.send("zigbee2mqtt/hall_smoke", {"smoke": True, "battery": 90})
    home.send("zigbee2mqtt/bathroom_leak", {"water_leak": True, "battery": 91})
    assert levels(home.settle()) == [("smoke", "community"), ("water_leak", "family")]
    assert PROMPTS.text("smoke_alarm", elder="张阿姨") in home.spoken
    assert PROMPTS.text("water_leak_alarm", elder="张阿姨", contact="儿子") in home.spoken


def test_missed_medication_tells_the_family_once_and_goes_no_higher(home: Home) -> None:
    due = dt.datetime(2026, 11, 26, 8, 0, tzinfo=TZ)
    home.engine.on_event(MissedMedication("r1", "降压药", due, "一片"))
    home.engine.on_event(MissedMedication("r1", "降压药", due, "一片"))
    home.clock.advance(hours=1)
    home.engine.tick()
    (alert,) = home.settle()
    assert (alert["kind"], alert["level"]) == ("missed_medication", "family")
    assert alert["details"]["medicine"] == "降压药"
    assert home.engine.open_incidents() == () and home.spoken == []


# ---- the ladder --------------------------------------------------------------------------------

def test_each_ladder_step_waits_its_own_timeout(home: Home) -> None:
    cfg = home.engine.config
    incident = home.engine.trigger("inactivity", "test")
    assert home.spoken == [ARE_YOU_OK] and home.settle() == []
    for step, seconds in (("family", cfg.check_in_timeout), ("community", cfg.family_timeout),
                          ("emergency", cfg.community_timeout)):
        home.clock.advance(seconds=seconds - 1)
        home.engine.tick()
        assert home.engine.open_incidents()[0].step != step
        home.clock.advance(seconds=1)
        home.engine.tick()
        assert home.engine.open_incidents()[0].step == step
    home.clock.advance(hours=1)  # still before the morning deadline: nothing else happens
    home.engine.tick()
    alerts = home.settle()
    assert levels(alerts) == [("inactivity", "family"), ("inactivity", "community"), ("inactivity", "emergency")]
    assert {a["incident"] for a in alerts} == {incident.id}
    assert [a.level for a in home.platform] == ["family", "community", "emergency"]
    assert home.spoken == [ARE_YOU_OK, PROMPTS.text("family_notified", elder="张阿姨", contact="儿子")]
    assert home.engine.open_incidents()[0].step == "emergency"  # stays open until someone acknowledges
    actions = [e.action for e in home.store.audit_log(incident.id)]
    assert actions == ["opened", "check_in", "family", "community", "emergency"]


def test_im_ok_at_the_check_in_closes_it(home: Home) -> None:
    home.engine.trigger("bathroom", "test")
    (closed,) = home.engine.im_ok()
    assert closed.outcome == "im_ok"
    home.clock.advance(hours=1)
    home.engine.tick()
    assert home.settle() == [] and home.engine.open_incidents() == ()


def test_im_ok_does_not_cancel_an_sos(home: Home) -> None:
    home.send("zigbee2mqtt/sos_button", {"action": "sos"})
    assert home.engine.im_ok() == ()
    assert [i.kind for i in home.engine.open_incidents()] == ["sos"]


def test_ack_by_incident_id_and_unknown_acks(home: Home) -> None:
    incident = home.engine.trigger("water_leak", "test")
    home.send("yinling/%s/alert/ack" % HOME, {"id": "no-such-alert", "by": "son"})
    home.send("yinling/%s/alert/ack" % HOME, b"\xff not json")
    assert len(home.engine.open_incidents()) == 1
    home.send("yinling/%s/alert/ack" % HOME, {"id": incident.id, "by": "platform"})
    assert home.engine.open_incidents() == ()
    assert home.store.get(incident.id).closed_by == "platform"  # type: ignore[union-attr]


# ---- silence rules -----------------------------------------------------------------------------

def test_a_silent_morning_gives_one_check_in_and_one_family_alert(home: Home) -> None:
    # Sensors keep talking all morning (batteries, unchanged doors, availability), but nobody moves.
    while home.clock.now.hour < 10:
        home.send("zigbee2mqtt/front_door", {"contact": True, "battery": 100, "linkquality": 90})
        home.send("zigbee2mqtt/living_motion", {"occupancy": False, "battery": 97, "illuminance": 3})
        home.send("zigbee2mqtt/bed/availability", {"state": "online"})
        home.tick_until((home.clock.now + dt.timedelta(minutes=20)).strftime("%H:%M"))
    home.tick_until("10:00")
    assert home.spoken == [ARE_YOU_OK]
    home.tick_until("10:10")  # check-in timeout 3 min, family timeout 10 min
    alerts = home.settle()
    assert levels(alerts) == [("inactivity", "family")] and alerts[0]["reason"] == "no_activity_by_deadline"
    assert home.spoken == [ARE_YOU_OK, PROMPTS.text("family_notified", elder="张阿姨", contact="儿子")]


def test_a_morning_with_motion_gives_nothing(home: Home) -> None:
    home.clock.to("07:30")
    home.send("zigbee2mqtt/living_motion", {"occupancy": True, "battery": 97})
    home.tick_until("10:30", step_minutes=5)
    assert home.spoken == [] and home.settle() == []


def test_no_activity_for_hours_in_the_daytime(home: Home) -> None:
    home.clock.to("11:00")
    home.send("zigbee2mqtt/living_motion", {"occupancy": True})
    home.tick_until("14:59", step_minutes=5)
    assert home.spoken == []
    home.tick_until("15:00")
    assert home.spoken == [ARE_YOU_OK]
    assert home.engine.open_incidents()[0].reason == "no_activity_for_hours"


def test_bathroom_occupied_too_long(home: Home) -> None:
    home.clock.to("13:00")
    home.send("zigbee2mqtt/bathroom_motion", {"occupancy": True})
    home.clock.to("13:20")
    home.send("zigbee2mqtt/living_motion", {"occupancy": True})  # she came out
    home.send("zigbee2mqtt/bathroom_motion", {"occupancy": True})  # and went back in at 13:20
    home.tick_until("14:19")
    assert home.spoken == []
    home.tick_until("14:20")
    assert home.spoken == [ARE_YOU_OK]
    assert home.engine.open_incidents()[0].kind == "bathroom"


def test_front_door_open_at_night(make_home: Callable[..., Home]) -> None:
    home = make_home(EscalationConfig(morning_deadline="", inactivity_hours=0))
    home.clock.to("15:00")
    home.send("zigbee2mqtt/front_door", {"contact": False})
    home.tick_until("15:30")
    home.send("zigbee2mqtt/front_door", {"contact": True})
    assert home.spoken == []  # open in the daytime: fine
    home.clock.to("23:00")
    home.send("zigbee2mqtt/front_door", {"contact": False})
    home.tick_until("23:09")
    assert home.spoken == []
    home.tick_until("23:10")
    assert home.spoken == [ARE_YOU_OK]
    (incident,) = home.engine.open_incidents()
    assert (incident.kind, incident.device) == ("door_open", "front_door")


def test_bed_not_left_in_the_morning(make_home: Callable[..., Home], clock: Clock) -> None:
    clock.advance(hours=-7)  # 22:00 the evening before
    home = make_home(EscalationConfig(morning_deadline="", inactivity_hours=0))
    home.send("zigbee2mqtt/bed", {"presence": True})
    home.tick_until("23:59", step_minutes=30)
    clock.advance(days=1)
    home.clock.to("09:29")
    home.engine.tick()
    assert home.spoken == []
    home.tick_until("09:30")
    assert home.spoken == [ARE_YOU_OK]
    assert home.engine.open_incidents()[0].reason == "bed_not_left"


# ---- restarts and failures ---------------------------------------------------------------------

def test_restart_mid_ladder_continues_the_same_incident_without_a_duplicate(make_home: Callable[..., Home],
                                                                            clock: Clock) -> None:
    first = make_home()
    incident = first.engine.trigger("inactivity", "test")
    clock.advance(seconds=first.engine.config.check_in_timeout)
    first.engine.tick()
    assert levels(first.settle()) == [("inactivity", "family")]
    first.close()  # the assistant goes away mid-ladder

    clock.advance(seconds=30)
    second = make_home()
    second.engine.tick()
    (resumed,) = second.engine.open_incidents()
    assert (resumed.id, resumed.step) == (incident.id, "family")
    assert levels(second.settle()) == [("inactivity", "family")]  # not sent again
    clock.advance(seconds=second.engine.config.family_timeout)
    second.engine.tick()
    alerts = second.settle()
    assert levels(alerts) == [("inactivity", "family"), ("inactivity", "community")]
    assert {a["incident"] for a in alerts} == {incident.id}
    assert second.spoken == []  # the check-in is not repeated


def test_a_step_interrupted_by_a_crash_is_replayed_with_the_same_alert_id(make_home: Callable[..., Home],
                                                                          tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "state" / "incidents.db")  # the process died right after opening it
    store.create(Incident("crashed-1", "sos", "sos_button", "", "emergency", DAWN, DAWN, "sos_button", "bedroom"))
    store.close()
    home = make_home()
    home.engine.tick()
    home.engine.tick()
    (alert,) = home.settle()
    assert alert["id"] == alert_id("crashed-1", "community")
    assert home.spoken == [REASSURE_SON]


@pytest.mark.parametrize("while_down", ["spoken emergency", "next ladder step"])
def test_broker_restart_mid_incident_loses_nothing_and_sends_once(tmp_path: Path, clock: Clock,
                                                                  while_down: str) -> None:
    broker = Broker(tmp_path / "broker", persistence=True).start()  # the family app keeps its session
    family = Recorder(broker, (ALERTS, "test/marker"), client_id="family", persistent=True)
    home = Home(broker, tmp_path / "state", clock, family)
    try:
        if while_down == "next ladder step":
            home.engine.trigger("inactivity", "test")
        broker.stop()
        wait_until(lambda: not home.bridge.connected.is_set(), what="the bridge to notice")
        if while_down == "spoken emergency":
            home.engine.on_event(HelpRequested(urgency="emergency", reason="chest_pain"))
        else:
            clock.advance(seconds=home.engine.config.check_in_timeout)
            home.engine.tick()
        assert len(home.bridge.outbox.pending()) == 1
        broker.start()
        family.wait_for(ALERTS)
        wait_until(lambda: not home.bridge.outbox.pending(), what="the PUBACK")
        assert len(home.settle()) == 1
    finally:
        home.close()
        family.close()
        broker.stop()


def test_ten_thousand_malformed_messages_lose_no_alert(home: Home) -> None:
    junk: list[tuple[str, bytes]] = [
        ("zigbee2mqtt/front_door", b"not json"), ("zigbee2mqtt/front_door", b"\xff\xfe\xfa"),
        ("zigbee2mqtt/front_door", b"[1, 2, 3]"), ("zigbee2mqtt/living_motion", b'{"occupancy": "yes"}'),
        ("zigbee2mqtt/unknown_plug", b'{"state": "ON", "power": 3.5}'), ("zigbee2mqtt/sos_button", b'{"action": 7}'),
        ("yinling/%s/sensor/a" % HOME, b'{"battery": -5}'), ("zigbee2mqtt/front_door/availability", b"{}"),
        ("yinling/%s/alert/ack" % HOME, b'{"id": 5}'), ("zigbee2mqtt/bed", b"[" * 30000 + b"]" * 30000),
    ]
    huge = b'{"contact": true, "junk": "' + b"x" * 1_000_000 + b'"}'
    started = time.monotonic()
    for number in range(10_000):
        if number == 5_000:
            home.world.publish("zigbee2mqtt/sos_button", {"action": "emergency"}, wait=False)
        elif number % 2_500 == 1:
            home.world.publish("zigbee2mqtt/front_door", huge, wait=False)
        else:
            topic, payload = junk[number % len(junk)]
            home.world.publish(topic, payload, wait=False)
    (alert,) = home.world.wait_for(ALERTS, timeout=10.0)
    assert alert.json()["kind"] == "sos"
    home.send("zigbee2mqtt/living_motion", {"occupancy": True})  # still listening after the flood
    assert home.engine.activity.room == "living_room"
    assert home.bridge.adapter.warnings.total >= 9_000
    assert time.monotonic() - started < 20


def test_configuration_is_checked() -> None:
    assert EscalationConfig().timeout("family") == dt.timedelta(seconds=600)
    with pytest.raises(ConfigError, match="escalation.morning_deadline"):
        EscalationConfig(morning_deadline="25:00")
    with pytest.raises(ConfigError, match="escalation.family_timeout"):
        EscalationConfig(family_timeout=0)
    assert EscalationConfig(bed_deadline="").bed_deadline == ""


def test_alert_round_trip() -> None:
    alert = Alert("a1", "i1", HOME, "gas", "community", "gas_detected", DAWN.isoformat(), "kitchen_gas", "kitchen",
                  {"ppm": 3})
    assert Alert.from_json(json.loads(json.dumps(alert.to_json()))) == alert


def test_every_prompt_the_engine_says_exists_with_known_placeholders() -> None:
    for key in PROMPT_KEYS:
        assert PROMPTS.placeholders(key) <= {"elder", "contact"}, key
