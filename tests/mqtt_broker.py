"""Test helpers for MQTT: a real mosquitto on a free loopback port, and a recording client.

:class:`Broker` starts ``mosquitto`` with a tiny config file in a temp directory; it can be stopped
and started again on the same port (broker-restart tests), optionally with persistence so that
subscribers' sessions survive the restart. :class:`Recorder` is a plain paho client standing in for
zigbee2mqtt and the family app: it publishes and records what arrives, and every wait is bounded.

A test module's fixture is ``with Broker(tmp_path / "broker") as server: yield server``.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.shared import free_port

HOST = "127.0.0.1"
WAIT = 5.0
"""default bound of every wait (seconds)"""


def wait_until(condition: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    """Poll ``condition`` every 5 ms until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.005)


class Broker:
    """A mosquitto process on ``127.0.0.1:port``; restartable on the same port."""

    def __init__(self, directory: Path, *, persistence: bool = False, port: int | None = None) -> None:
        """Keep config, log and persistence files in ``directory``."""
        if shutil.which("mosquitto") is None:
            pytest.fail("mosquitto is not installed: apt-get install mosquitto (.ci/run does)")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = HOST
        self.config = directory / "mosquitto.conf"
        # Started as root, mosquitto would switch to the user "mosquitto", who cannot write the temp directory.
        lines = ["user %s" % getpass.getuser(), "listener %d %s" % (self.port, HOST), "allow_anonymous true",
                 "max_queued_messages 100000",
                 "persistence %s" % ("true" if persistence else "false")]
        if persistence:
            lines.append("persistence_location %s/" % directory)
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = WAIT) -> Broker:
        """Start mosquitto and wait until it accepts connections."""
        log = (self.directory / "mosquitto.log").open("ab")
        self._process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=log, stderr=log)
        log.close()

        def listening() -> bool:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % (self.directory / "mosquitto.log").read_text())
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(listening, timeout, "mosquitto to listen on %d" % self.port)
        return self

    def stop(self, timeout: float = WAIT) -> None:
        """Stop mosquitto (SIGTERM: it saves its persistence file) and wait for it to exit."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)
        self._process = None

    def __enter__(self) -> Broker:
        """Start; stopped again when the ``with`` block ends."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop."""
        self.stop()

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self._process is not None and self._process.poll() is None


@dataclass(frozen=True)
class Received:
    """One message the recorder got."""

    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        """The payload as JSON."""
        return json.loads(self.payload)


class Recorder:
    """A paho client that publishes like zigbee2mqtt and records what it receives; thread-safe."""

    def __init__(self, broker: Broker, topics: tuple[str, ...] = (), *, client_id: str = "recorder",
                 persistent: bool = False) -> None:
        """Connect to ``broker`` and subscribe to ``topics`` (QoS 1); ``persistent`` keeps the session."""
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        properties = None
        if persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 600
        self.client.connect_async(broker.host, broker.port, keepalive=5, clean_start=not persistent,
                                  properties=properties)
        self.client.loop_start()
        if topics:
            assert self._subscribed.wait(WAIT), "recorder could not subscribe"
        else:
            wait_until(self.client.is_connected, what="recorder to connect")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._topics:
            client.subscribe([(topic, 1) for topic in self._topics])

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.received.append(Received(message.topic, message.payload, bool(message.retain)))
            self._changed.notify_all()

    def publish(self, topic: str, payload: Any, *, qos: int = 1, retain: bool = False, wait: bool = True) -> None:
        """Publish ``payload`` (bytes, str, or anything else as JSON); waits for the PUBACK unless ``wait`` is False."""
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload, ensure_ascii=False)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait:
            info.wait_for_publish(WAIT)
            assert info.is_published(), "broker did not acknowledge %s" % topic

    def on(self, topic: str) -> list[Received]:
        """Messages received on ``topic`` so far."""
        with self._changed:
            return [m for m in self.received if mqtt.topic_matches_sub(topic, m.topic)]

    def wait_for(self, topic: str, predicate: Callable[[Received], bool] = lambda m: True, *,
                 count: int = 1, timeout: float = WAIT) -> list[Received]:
        """Wait until ``count`` messages on ``topic`` match ``predicate``; returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in self.received if mqtt.topic_matches_sub(topic, m.topic) and predicate(m)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1f s waiting for %d message(s) on %s; got %d"
                                         % (timeout, count, topic, len(found)))
                self._changed.wait(left)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
