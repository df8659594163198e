"""The MQTT bridge: one connection to the home broker for sensors, alerts, intents and device commands.

What it does on the wire (CONTRACTS.md §3):

- connects with a Last Will (retained ``offline`` on ``yinling/<home_id>/status``) and, on every
  connect, publishes retained ``online``, the Home Assistant discovery configs and the SOS state,
  subscribes (QoS 1) to ``zigbee2mqtt/+``, ``zigbee2mqtt/+/availability``,
  ``yinling/<home_id>/sensor/+`` and ``yinling/<home_id>/alert/ack``, and republishes whatever the
  outbox still holds;
- reconnects by itself with exponential back-off (paho's network thread);
- turns sensor messages into :class:`~devices.sensors.SensorEvent` for ``on_sensor`` and acks into
  ``on_ack(alert_id, by)``; a handler that raises is logged and the next message is handled;
- publishes alerts through the SQLite :class:`~devices.outbox.MqttOutbox` (marked sent on PUBACK),
  Hermes intents, device commands (``zigbee2mqtt/<name>/set``) and the retained SOS state.

Publishing never blocks: while the broker is away paho queues QoS 1 messages in memory and the
outbox keeps alerts on disk, so a broker restart (or an assistant restart) loses no alert.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from assistant.config import MqttConfig
from assistant.errors import MqttError
from assistant.events import DeviceCommand, Event
from devices.discovery import alert_topic, discovery_configs, sos_topic, status_topic
from devices.hermes import hermes_payload, hermes_topic
from devices.outbox import MqttOutbox
from devices.sensors import SensorAdapter, SensorEvent
from intents.recognize import IntentResult

logger = logging.getLogger(__name__)

Z2M_SUBSCRIPTIONS = ("zigbee2mqtt/+", "zigbee2mqtt/+/availability")
"""zigbee2mqtt device states and availability (friendly names without '/')."""

_OK = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # NO_CONN: paho queued it for the next connection


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach the home broker."""

    host: str
    """host name or IP address of the broker"""
    port: int = 1883
    """TCP port of the broker"""
    tls: bool = False
    """encrypt the connection (TLS) with the system's CA certificates or ``ca_certs``"""
    ca_certs: str | None = None
    """CA bundle file for TLS; None = system default"""
    certfile: str | None = None
    """client certificate file for TLS client authentication"""
    keyfile: str | None = None
    """client key file for TLS client authentication"""
    username: str | None = None
    """user name; None = anonymous"""
    password: str | None = None
    """password of ``username``"""
    client_id: str = ""
    """MQTT client id; "" = yinling-<home_id> (stable, so the broker keeps our session)"""
    keepalive: int = 30
    """keep-alive interval (seconds); the broker sends the Last Will 1.5 keep-alives after we vanish"""
    min_delay: float = 1.0
    """first reconnect delay (seconds), doubled after every failed attempt"""
    max_delay: float = 30.0
    """longest reconnect delay (seconds)"""
    session_expiry: int = 3600
    """how long the broker keeps our session and queued QoS 1 messages while we are away (seconds)"""
    protocol: int = mqtt.MQTTv5
    """MQTT protocol version: paho's MQTTv5 (5) or MQTTv311 (4)"""

    @classmethod
    def from_config(cls, cfg: MqttConfig, **options: Any) -> BrokerSettings:
        """Settings for the ``[mqtt]`` section (host, port, TLS, user) plus timing ``options``."""
        found = {"tls": cfg.tls, "ca_certs": cfg.ca_certs or None, "username": cfg.username or None,
                 "password": cfg.password or None}
        return cls(host=cfg.host, port=cfg.port, **{**found, **options})


class Alert(Protocol):
    """What the bridge needs from an alert: an id (the outbox key) and its wire form."""

    id: str

    def to_json(self) -> dict[str, Any]:
        """The alert JSON (CONTRACTS.md §3)."""


class MqttBridge:
    """One home's connection to its broker; thread-safe, reconnects by itself."""

    def __init__(self, home_id: str, settings: BrokerSettings, adapter: SensorAdapter, outbox: MqttOutbox, *,
                 on_sensor: Callable[[SensorEvent], None] | None = None,
                 on_ack: Callable[[str, str], None] | None = None, version: str = "") -> None:
        """Prepare the client; nothing is sent before :meth:`start`.

        ``on_sensor`` receives every sensor event and ``on_ack(alert_id, by)`` every acknowledgement,
        both on paho's network thread; they may also be set as attributes before :meth:`start`.
        """
        self.home_id = home_id
        self.settings = settings
        self.adapter = adapter
        self.outbox = outbox
        self.on_sensor = on_sensor
        self.on_ack = on_ack
        self.status_topic = status_topic(home_id)
        self.alert_topic = alert_topic(home_id)
        self.ack_topic = self.alert_topic + "/ack"
        self.sos_topic = sos_topic(home_id)
        self._discovery = discovery_configs(home_id, version=version)
        self._warnings = adapter.warnings
        self.connected = threading.Event()
        """set while connected to the broker and subscribed"""
        self._lock = threading.Lock()  # never held while calling paho: paho calls on_publish under its own lock
        self._mid_key: dict[int, str | None] = {}
        self._early_acks: dict[int, Any] = {}  # mid → PUBACK reason, for acks that beat _publish
        self._claimed: set[str] = set()  # outbox keys paho holds in memory
        self._sos: bool | None = None
        self._subscribe_mid: int | None = None
        self._client = self._make_client()

    # ---- life cycle --------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client_id = s.client_id or "yinling-%s" % self.home_id
        if s.protocol == mqtt.MQTTv5:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                 protocol=mqtt.MQTTv311)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            try:
                client.tls_set(ca_certs=s.ca_certs, certfile=s.certfile, keyfile=s.keyfile,
                               cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError) as error:
                raise MqttError("cannot set up TLS for the MQTT broker %s:%d: %s" % (s.host, s.port, error)) from None
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=s.min_delay, max_delay=s.max_delay)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until the broker answers."""
        s = self.settings
        if s.protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = s.session_expiry
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive, clean_start=False,
                                       properties=properties)
        else:
            self._client.connect_async(s.host, s.port, keepalive=s.keepalive)
        self._client.loop_start()
        logger.info("connecting to the MQTT broker %s:%d", s.host, s.port)

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected and subscribed, or ``timeout`` seconds passed; True if connected."""
        return self.connected.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Say ``offline`` (a clean disconnect does not fire the Last Will) and disconnect."""
        if self.connected.is_set():
            info = self._client.publish(self.status_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # lost the connection meanwhile: the Last Will says it
                pass
        self.connected.clear()  # a wanted disconnect, not a lost broker
        self._client.disconnect()
        self._client.loop_stop()

    # ---- publishing --------------------------------------------------------------------------

    def publish_alert(self, alert: Alert) -> None:
        """Queue ``alert`` in the outbox and publish it (QoS 1); the same alert id is published once."""
        payload = json.dumps(alert.to_json(), ensure_ascii=False).encode("utf-8")
        self.publish_reliable(alert.id, self.alert_topic, payload)

    def publish_reliable(self, key: str, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish through the outbox: kept on disk until the broker acknowledges it; ``key`` deduplicates."""
        if self.outbox.add(key, topic, payload, qos=1, retain=retain):
            self._send_claimed(key, topic, payload, retain)
        else:
            logger.debug("outbox already holds %s", key)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Plain QoS 1 publish (not kept in the outbox); False if paho could not queue it."""
        return self._publish(topic, payload, retain=retain)

    def publish_intent(self, result: IntentResult, *, session_id: str | None = None) -> None:
        """Publish ``result`` on ``hermes/intent/<intent>`` (Hermes JSON, QoS 1)."""
        self._publish(hermes_topic(result), hermes_payload(result, site_id=self.home_id, session_id=session_id))

    def publish_sos(self, active: bool) -> None:
        """Retained ``ON`` / ``OFF`` on ``yinling/<home_id>/sos`` (republished on every connect)."""
        with self._lock:
            self._sos = active
        self._publish(self.sos_topic, b"ON" if active else b"OFF", retain=True)

    def handle(self, event: Event) -> None:
        """Event handler for the assistant loop: device commands are sent, other events ignored."""
        if isinstance(event, DeviceCommand):
            self.send_command(event)

    def send_command(self, command: DeviceCommand) -> bool:
        """Publish a zigbee2mqtt ``/set`` for ``command``; False if no device for it is configured.

        Closing the gas valve goes through the outbox, so it happens as soon as the broker is back.
        """
        name = command.name
        if not name:
            devices = self.adapter.registry.with_role(command.device)
            if not devices:
                logger.warning("no %s device is configured; cannot switch it %s", command.device, command.action)
                return False
            name = devices[0].name
        on = command.action == "on"
        state = ("OPEN" if on else "CLOSE") if command.device == "curtain" else ("ON" if on else "OFF")
        topic = "zigbee2mqtt/%s/set" % name
        payload = json.dumps({"state": state}).encode("utf-8")
        if command.device == "gas_valve" and not on:
            self.publish_reliable("command:" + command.id, topic, payload)
        else:
            self._publish(topic, payload)
        logger.info("switching %s %s", name, state)
        return True

    def flush(self) -> int:
        """Publish outbox messages paho does not hold yet (after a restart); returns how many."""
        count = 0
        for message in self.outbox.pending():
            if self._send_claimed(message.key, message.topic, message.payload, message.retain):
                count += 1
        if count:
            logger.info("republished %d queued MQTT messages", count)
        return count

    def _send_claimed(self, key: str, topic: str, payload: bytes, retain: bool) -> bool:
        """Publish an outbox message unless paho already holds it; True if published."""
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed.add(key)
        if not self._publish(topic, payload, retain=retain, key=key):
            with self._lock:
                self._claimed.discard(key)
            return False
        return True

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False, key: str | None = None) -> bool:
        """QoS 1 publish; True if paho sent or queued it. ``key`` is marked sent in the outbox on PUBACK."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in _OK:
            logger.warning("could not queue a message on %s: %s", topic, mqtt.error_string(info.rc))
            return False
        with self._lock:
            early = info.mid in self._early_acks
            reason = self._early_acks.pop(info.mid, None)
            if not early:
                self._mid_key[info.mid] = key
        if early and key is not None:
            self._acked(key, reason)
        return True

    def _acked(self, key: str, reason: Any) -> None:
        """The broker answered the outbox message ``key``: sent, or refused (kept for the next connect)."""
        with self._lock:
            self._claimed.discard(key)
        if getattr(reason, "is_failure", False):  # MQTT 5 broker refused it (e.g. not authorised)
            logger.warning("the MQTT broker refused %s (%s); it stays in the outbox", key, reason)
            return
        self.outbox.mark_sent(key)
        logger.debug("broker acknowledged %s", key)

    # ---- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            logger.warning("the MQTT broker refused the connection: %s", reason)
            return
        logger.info("connected to the MQTT broker %s:%d", self.settings.host, self.settings.port)
        topics = [*Z2M_SUBSCRIPTIONS, "yinling/%s/sensor/+" % self.home_id, self.ack_topic]
        for name in self.adapter.registry.names():
            if "/" in name:  # friendly names with '/' are not matched by zigbee2mqtt/+
                topics += ["zigbee2mqtt/" + name, "zigbee2mqtt/%s/availability" % name]
        result, mid = client.subscribe([(topic, 1) for topic in topics])
        with self._lock:
            self._subscribe_mid = mid if result == mqtt.MQTT_ERR_SUCCESS else None
        self._publish(self.status_topic, b"online", retain=True)
        for config in self._discovery:
            self._publish(config.topic, config.payload, retain=True)
        with self._lock:
            sos = self._sos
        if sos is not None:
            self._publish(self.sos_topic, b"ON" if sos else b"OFF", retain=True)
        self.flush()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        with self._lock:
            ours = mid == self._subscribe_mid
        if not ours:
            return
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            logger.warning("the MQTT broker refused %d subscriptions: %s", len(refused), ", ".join(refused))
        self.connected.set()  # only now do messages for our subscriptions arrive

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected.is_set():
            logger.warning("lost the MQTT broker (%s); reconnecting", reason)
        self.connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            if mid not in self._mid_key:  # the PUBACK beat _publish to its bookkeeping
                self._early_acks[mid] = reason
                return
            key = self._mid_key.pop(mid)
        if key is not None:
            self._acked(key, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # The outermost handler of the network thread: one bad message or handler must not stop the others.
        try:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                self._warnings.warn("topic", "ignoring a message whose topic is not UTF-8")
                return
            if topic == self.ack_topic:
                self._ack(message.payload)
                return
            for event in self.adapter.adapt(topic, message.payload):
                if self.on_sensor is not None:
                    self.on_sensor(event)
        except Exception:
            logger.exception("failed to handle an MQTT message")

    def _ack(self, payload: bytes) -> None:
        try:
            data = json.loads(payload) if len(payload) <= 4096 else None
        except ValueError:
            data = None
        alert_id = data.get("id") if isinstance(data, dict) else None
        by = data.get("by", "") if isinstance(data, dict) else ""
        if not isinstance(alert_id, str) or not alert_id or not isinstance(by, str):
            self._warnings.warn("ack", "ignoring an alert ack: expected {\"id\": ..., \"by\": ...}")
            return
        logger.info("alert %s acknowledged by %s", alert_id, by or "someone")
        if self.on_ack is not None:
            self.on_ack(alert_id, by)
