"""Benchmark the escalation path through a real broker: sensor event → escalation decision, at 1,000 events/s.

Run: ``.venv/bin/python bench/bench_escalation.py`` (from the repository root; ``--rate`` and
``--seconds`` change the load). What happens:

1. mosquitto starts on a free loopback port; the assistant side is the real bridge, adapter,
   outbox, SQLite incident store and escalation engine, in a temp state directory, on the wall clock;
2. a "zigbee2mqtt" client publishes ``--rate`` valid zigbee2mqtt payloads per second for
   ``--seconds`` (motion, doors, batteries, and one SOS press per second), each with QoS 1; a second
   client adds 10 % malformed messages (non-JSON, wrong types, unknown devices);
3. a "family" client acknowledges every alert it receives, so each SOS press opens a new incident
   (incident row, audit rows, outbox row, MQTT alert, platform sink) instead of joining the last one;
4. latency = from just before the publish call until ``EscalationEngine.on_sensor`` returned for
   that event (messages of one publisher arrive in order, one event per valid message).

The bar: p99 ≤ 50 ms. Also reported: SOS press → alert received by the family client. Exit code 1
if the bar is missed or an event or alert went missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.config import DeviceConfig  # noqa: E402
from assistant.escalation import PROMPT_KEYS, EscalationEngine  # noqa: E402
from assistant.incidents import EscalationConfig, IncidentStore  # noqa: E402
from devices.bridge import BrokerSettings, MqttBridge  # noqa: E402
from devices.outbox import MqttOutbox  # noqa: E402
from devices.sensors import DeviceRegistry, SensorAdapter, SensorEvent  # noqa: E402
from tests.mqtt_broker import Broker, Recorder  # noqa: E402
from voices.prompts import Prompts  # noqa: E402

P99_BAR = 0.050  # seconds from publish to escalation decision
HOME = "bench-home"
DEVICES = tuple(DeviceConfig("motion_%d" % i, "motion", room) for i, room in
                enumerate(("living_room", "bedroom", "kitchen", "bathroom"))) + (
    DeviceConfig("front_door", "door", "entrance"), DeviceConfig("sos_button", "sos", "bedroom"))
MALFORMED = [("zigbee2mqtt/front_door", b"not json"), ("zigbee2mqtt/motion_0", b'{"occupancy": "yes"}'),
             ("zigbee2mqtt/unknown_plug", b'{"state": "ON"}'), ("yinling/%s/sensor/x" % HOME, b"[1, 2]")]


def prompts() -> Prompts:
    """The bundled prompts; keys the engine needs that are not bundled yet get a stand-in sentence."""
    data = yaml.safe_load(resources.files("voices").joinpath("prompts.yaml").read_text("utf-8"))
    for key in PROMPT_KEYS:
        data["prompts"].setdefault(key, "(%s {elder} {contact})" % key)
    return Prompts.parse(yaml.safe_dump(data, allow_unicode=True), "prompts.yaml")


def payload(number: int, rate: int) -> tuple[str, dict]:
    """The ``number``-th valid message: one SOS press per second, otherwise everyday traffic."""
    if number % rate == rate // 2:
        return "zigbee2mqtt/sos_button", {"action": "emergency"}
    kind = number % 10
    if kind < 7:
        return "zigbee2mqtt/motion_%d" % (number % 4), {"occupancy": number % 3 != 0}
    if kind < 9:
        return "zigbee2mqtt/front_door", {"contact": number % 2 == 0}
    return "yinling/%s/sensor/front_door" % HOME, {"battery": number % 100}


def run(rate: int, seconds: float) -> dict:
    """Run the load once and return the measurements."""
    total = int(rate * seconds)
    with tempfile.TemporaryDirectory() as temp:
        state = Path(temp)
        broker = Broker(state / "broker").start()
        now = lambda: dt.datetime.now().astimezone()  # noqa: E731 - the wall clock, as in production
        adapter = SensorAdapter(HOME, DeviceRegistry(DEVICES), now=now)
        bridge = MqttBridge(HOME, BrokerSettings(broker.host, broker.port, client_id="assistant"), adapter,
                            MqttOutbox(state / "mqtt_outbox.db"))
        store = IncidentStore(state / "incidents.db")
        platform: list[object] = []
        engine = EscalationEngine(EscalationConfig(), store, prompts(), home_id=HOME, elder="elder",
                                  family_contact="son", now=now, say=lambda lines: None, link=bridge,
                                  platform=platform.append, devices=DEVICES)
        decided: list[float] = []

        def on_sensor(event: SensorEvent) -> None:
            engine.on_sensor(event)
            decided.append(time.perf_counter())

        bridge.on_sensor, bridge.on_ack = on_sensor, engine.ack
        bridge.start()
        if not bridge.wait_connected(5):
            raise RuntimeError("the bridge could not connect to mosquitto")
        alerts_at: list[float] = []

        family = Recorder(broker, ("yinling/%s/alert" % HOME,), client_id="family")

        def on_alert(client: object, userdata: object, message: object) -> None:
            alerts_at.append(time.perf_counter())
            alert = json.loads(message.payload)  # type: ignore[attr-defined]
            family.client.publish("yinling/%s/alert/ack" % HOME, json.dumps({"id": alert["id"], "by": "bench"}), qos=1)

        family.client.message_callback_add("yinling/%s/alert" % HOME, on_alert)
        z2m = Recorder(broker, client_id="z2m")
        noise = Recorder(broker, client_id="noise")
        sent: list[float] = []
        sos_sent: list[float] = []
        started = time.perf_counter()
        last_tick = started
        for number in range(total):
            target = started + number / rate
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not waiting for a result
            topic, body = payload(number, rate)
            stamp = time.perf_counter()
            sent.append(stamp)
            if body.get("action"):
                sos_sent.append(stamp)
            z2m.client.publish(topic, json.dumps(body), qos=1)
            if number % 10 == 5:
                bad_topic, bad = MALFORMED[number % len(MALFORMED)]
                noise.client.publish(bad_topic, bad, qos=1)
            if stamp - last_tick >= 0.5:
                engine.tick()
                last_tick = stamp
        deadline = time.monotonic() + 10
        while (len(decided) < total or len(alerts_at) < len(sos_sent)) and time.monotonic() < deadline:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        latencies = sorted(d - s for s, d in zip(sent, decided))
        sos_latencies = sorted(a - s for s, a in zip(sos_sent, alerts_at))
        for client in (z2m, noise, family):
            client.close()
        bridge.stop()
        store.close()
        broker.stop()
    return {"sent": total, "decided": len(decided), "elapsed_s": elapsed, "sos": len(sos_sent),
            "alerts": len(alerts_at), "latencies": latencies, "sos_latencies": sos_latencies,
            "warnings": adapter.warnings.total}


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile of sorted ``values`` (nearest rank)."""
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="valid sensor messages per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the load (default 10)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the malformed messages' warnings are expected
    got = run(args.rate, args.seconds)
    lat = got["latencies"]
    print(f"{got['sent']} events at {args.rate}/s (+10 % malformed, {got['warnings']} warnings) in "
          f"{got['elapsed_s']:.1f} s; {got['decided']} decided")
    if lat:
        print(f"sensor event → escalation decision: p50 {percentile(lat, .5) * 1000:.1f} ms, "
              f"p95 {percentile(lat, .95) * 1000:.1f} ms, p99 {percentile(lat, .99) * 1000:.1f} ms, "
              f"max {lat[-1] * 1000:.1f} ms, mean {statistics.mean(lat) * 1000:.1f} ms (bar: p99 ≤ 50 ms)")
    sos = got["sos_latencies"]
    if sos:
        print(f"SOS press → alert at the family client: {got['alerts']}/{got['sos']} alerts, "
              f"p50 {percentile(sos, .5) * 1000:.1f} ms, max {sos[-1] * 1000:.1f} ms (bar: < 1 s)")
    ok = (got["decided"] == got["sent"] and got["alerts"] == got["sos"] and bool(lat)
          and percentile(lat, .99) <= P99_BAR and (not sos or sos[-1] < 1.0))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
