"""Home Assistant MQTT discovery: the assistant appears in Home Assistant as one device with three entities.

- ``binary_sensor`` *status* (connectivity) from the retained ``yinling/<home_id>/status``;
- ``sensor`` *last alert* whose state is the ``kind`` of the latest alert on ``yinling/<home_id>/alert``
  (the whole alert JSON as attributes);
- ``binary_sensor`` *SOS* (safety) from the retained ``yinling/<home_id>/sos`` (``ON`` while an
  emergency incident is open).

The configs are published retained on every connect (a broker without persistence forgets them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

DISCOVERY_PREFIX = "homeassistant"
"""Home Assistant's default discovery prefix."""


@dataclass(frozen=True)
class DiscoveryConfig:
    """One retained discovery message."""

    topic: str
    payload: bytes


def status_topic(home_id: str) -> str:
    """Retained ``online`` / ``offline`` of the assistant (Last Will)."""
    return "yinling/%s/status" % home_id


def alert_topic(home_id: str) -> str:
    """Escalation alerts (QoS 1, not retained)."""
    return "yinling/%s/alert" % home_id


def sos_topic(home_id: str) -> str:
    """Retained ``ON`` / ``OFF``: an emergency incident is open."""
    return "yinling/%s/sos" % home_id


def discovery_configs(home_id: str, *, version: str = "") -> tuple[DiscoveryConfig, ...]:
    """The discovery messages for home ``home_id``."""
    node = "yinling_" + re.sub(r"[^a-zA-Z0-9_-]", "_", home_id)
    device = {"identifiers": [node], "name": "yinling %s" % home_id, "manufacturer": "yinling",
              "model": "voice assistant"}
    if version:
        device["sw_version"] = version
    availability = {"availability_topic": status_topic(home_id), "payload_available": "online",
                    "payload_not_available": "offline"}
    entities = {
        ("binary_sensor", "status"): {
            "name": "Status", "state_topic": status_topic(home_id), "payload_on": "online",
            "payload_off": "offline", "device_class": "connectivity"},
        ("sensor", "last_alert"): {
            "name": "Last alert", "state_topic": alert_topic(home_id), "value_template": "{{ value_json.kind }}",
            "json_attributes_topic": alert_topic(home_id), "icon": "mdi:alert", **availability},
        ("binary_sensor", "sos"): {
            "name": "SOS", "state_topic": sos_topic(home_id), "payload_on": "ON", "payload_off": "OFF",
            "device_class": "safety", **availability},
    }
    configs = []
    for (component, object_id), entity in entities.items():
        body = {**entity, "unique_id": "%s_%s" % (node, object_id), "device": device}
        topic = "%s/%s/%s/%s/config" % (DISCOVERY_PREFIX, component, node, object_id)
        configs.append(DiscoveryConfig(topic, json.dumps(body).encode("utf-8")))
    return tuple(configs)
