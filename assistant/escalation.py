"""The escalation engine: tells a normal day from an abnormal one and climbs the ladder until help comes.

Triggers open an :class:`~assistant.incidents.Incident`, at most one per kind while it is open
(a gas sensor that reports every few seconds makes one incident, not hundreds):

- spoken emergencies (:class:`~assistant.events.HelpRequested`), SOS buttons (``action``
  ``emergency``/``sos``/``panic``, or any action of a ``sos`` device), fall sensors, gas, smoke and
  water-leak alarms, missed medication (an event of kind ``missed_medication``);
- silence rules, checked by :meth:`EscalationEngine.tick`: no motion or voice by the morning
  deadline, no activity for N hours in the daytime, the bed not left by the bed deadline (kind
  ``inactivity``), the bathroom occupied too long (``bathroom``), the front door open at night
  (``door_open``).

Each kind starts on its rung of the ladder (:data:`~assistant.incidents.LADDERS`): silence incidents
ask the elder first (「张阿姨，您还好吗？」), emergencies alert family and community at once and reassure
her, a gas alarm also closes the gas valve and says so. Every step has its own timeout
(:class:`~assistant.incidents.EscalationConfig`); an acknowledgement (:meth:`EscalationEngine.ack`)
closes the incident, and 「我没事」 (:meth:`EscalationEngine.im_ok`) closes the incidents that began by
asking her. Incidents live in
SQLite, so after a restart the ladder continues from the step reached, without re-sending its alert.

I/O is injected: ``now`` (aware datetimes), ``say(lines)``, the MQTT ``link`` (:class:`HomeLink`,
implemented by :class:`devices.bridge.MqttBridge`) and the ``platform`` sink for the family app.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from assistant.config import DeviceConfig
from assistant.errors import EscalationError
from assistant.events import DeviceCommand, Event, HelpRequested
from assistant.incidents import LADDERS, STEPS, Alert, EscalationConfig, Incident, IncidentStore, alert_id
from devices.activity import ActivityTracker
from devices.sensors import SensorEvent
from voices.prompts import Prompts

logger = logging.getLogger(__name__)

SOS_KINDS = frozenset({"emergency", "sos", "fall"})
"""Kinds that switch the retained SOS state (``yinling/<home_id>/sos``) on."""

SOS_ACTIONS = frozenset({"emergency", "sos", "panic"})
"""``action`` values that mean an SOS press on any device."""

PROMPT_KEYS: tuple[str, ...] = (
    "are_you_ok", "reassurance", "family_notified", "gas_valve_closed", "gas_alarm", "smoke_alarm", "water_leak_alarm",
)
"""Prompts (voices/prompts.yaml) the engine says; each may use {elder} and {contact}."""

ALARM_PROMPTS = {"smoke": "smoke_alarm", "water_leak": "water_leak_alarm"}
"""Prompt said when an alarm opens an incident (gas has its own: gas_valve_closed or gas_alarm)."""

_IGNORED_ACTIONS = frozenset({"release", "hold_release"})  # the second half of a press on a sos device
_SAVE_EVERY = dt.timedelta(seconds=60)  # activity and heartbeat are persisted at most this often
_RESTART_GAP = dt.timedelta(minutes=10)  # a restart within this keeps the observation continuous
_FAMILY_CONTACTS = ("son", "daughter", "spouse", "family", "neighbor")


class HomeLink(Protocol):
    """The home broker as the engine sees it (implemented by devices.bridge.MqttBridge)."""

    def publish_alert(self, alert: Alert) -> None:
        """Deliver ``alert`` on ``yinling/<home_id>/alert`` (QoS 1, at least once)."""

    def send_command(self, command: DeviceCommand) -> bool:
        """Switch a device; False if none is configured."""

    def publish_sos(self, active: bool) -> None:
        """Set the retained SOS state."""


class EscalationEngine:
    """Turns sensor events, spoken requests and silence into incidents and walks their ladders; thread-safe."""

    def __init__(self, config: EscalationConfig, store: IncidentStore, prompts: Prompts, *, home_id: str,
                 elder: str, family_contact: str, now: Callable[[], dt.datetime],
                 say: Callable[[Sequence[str]], None], link: HomeLink | None = None,
                 platform: Callable[[Alert], None] | None = None, devices: Iterable[DeviceConfig] = ()) -> None:
        """Resume the open incidents of ``store``; nothing is said or sent before the first call."""
        self.config = config
        self.store = store
        self.prompts = prompts
        self.home_id = home_id
        self.elder = elder
        self.family_contact = family_contact if family_contact in _FAMILY_CONTACTS else "family"
        self._now = now
        self._say = say
        self.link = link
        self.platform = platform
        devices = tuple(devices)
        self._valve = next((d.name for d in devices if d.role == "gas_valve"), "")
        self._lock = threading.RLock()
        self._open: dict[str, Incident] = {i.kind: i for i in store.open_incidents()}
        self._repeat_audited: dict[str, dt.datetime] = {}
        self._saved_at: dict[str, dt.datetime] = {}
        self._marks: dict[str, str | None] = {}  # cache of the _once marks
        self._sos: bool | None = None
        start = now()
        alive = self._load("alive_at")
        continuous = alive is not None and start - alive <= _RESTART_GAP
        self._observing_since = (self._load("observing_since") if continuous else None) or start
        self._save("observing_since", self._observing_since, force=True)
        doors = {d.name for d in devices if d.role == "door" and config.front_door in ("", d.name)}
        self.activity = ActivityTracker(start, doors=doors, last_activity=self._load("last_activity"))
        """what the sensors say about the elder's activity"""
        self._bathroom_fired: dt.datetime | None = None  # room_since of the visit that fired
        self._doors_fired: set[tuple[str, dt.datetime]] = set()
        if self._open:
            logger.info("resuming %d open incidents: %s", len(self._open), ", ".join(self._open))

    # ---- inputs ------------------------------------------------------------------------------

    def on_sensor(self, event: SensorEvent) -> Incident | None:
        """Handle one sensor event; returns the incident it opened or joined, or None."""
        lines: list[str] = []
        with self._lock:
            if self.activity.observe(event):
                self._save("last_activity", event.at)
            trigger = self._trigger(event)
            incident = None
            if trigger is not None:
                incident = self._raise(trigger[0], trigger[1], lines, device=event.device, room=event.room)
        self._speak(lines)
        return incident

    def on_event(self, event: Event) -> Incident | None:
        """Handle an assistant event: HelpRequested, or any event of kind ``missed_medication``."""
        lines: list[str] = []
        with self._lock:
            if isinstance(event, HelpRequested):
                self._voice(self._now())
                kind = "emergency" if event.urgency == "emergency" else "help"
                incident = self._raise(kind, event.reason or "spoken", lines, contact=event.contact,
                                       details={"utterance": event.utterance} if event.utterance else {})
            elif event.kind == "missed_medication":
                data = event.to_json()
                details = {k: data[k] for k in ("medicine", "dose", "scheduled") if k in data}
                incident = self._raise("missed_medication", "missed_medication", lines, details=details)
            else:
                return None
        self._speak(lines)
        return incident

    def on_voice(self) -> None:
        """The elder spoke to the assistant: a sign of life."""
        with self._lock:
            self._voice(self._now())

    def im_ok(self) -> tuple[Incident, ...]:
        """「我没事」: close the incidents that began with a check-in; returns them (empty: nothing to answer).

        Incidents that began higher (SOS, falls, alarms) stay open until someone acknowledges them.
        """
        with self._lock:
            now = self._now()
            self._voice(now)
            closed = []
            for incident in list(self._open.values()):
                if LADDERS[incident.kind][0] == "check_in":
                    closed.append(self._close(incident, now, "im_ok", "elder"))
                else:
                    self.store.audit(incident.id, now, "im_ok", "elder says she is fine; waiting for an ack")
            self._update_sos()
            return tuple(closed)

    def ack(self, alert_or_incident_id: str, by: str = "") -> Incident | None:
        """An acknowledgement (MQTT ``alert/ack`` or the platform): closes the incident; None if unknown."""
        with self._lock:
            for incident in list(self._open.values()):
                if alert_or_incident_id == incident.id or alert_or_incident_id in {
                        alert_id(incident.id, step) for step in STEPS}:
                    closed = self._close(incident, self._now(), "acknowledged", by)
                    self._update_sos()
                    return closed
        logger.info("ack for %s matches no open incident", alert_or_incident_id)
        return None

    def trigger(self, kind: str, reason: str, *, device: str = "", room: str = "", contact: str = "",
                details: dict[str, Any] | None = None) -> Incident:
        """Open (or join) an incident of ``kind`` directly, e.g. from the family page's test button."""
        if kind not in LADDERS:
            raise EscalationError("unknown incident kind %r; expected one of %s." % (kind, ", ".join(LADDERS)))
        lines: list[str] = []
        with self._lock:
            incident = self._raise(kind, reason, lines, device=device, room=room, contact=contact,
                                   details=details or {})
        self._speak(lines)
        return incident

    def tick(self) -> None:
        """Advance ladders whose step timed out and check the silence rules; call every second or so."""
        lines: list[str] = []
        with self._lock:
            now = self._now()
            for incident in list(self._open.values()):
                if incident.step == "":  # opened before a crash, first step never taken
                    self._enter(incident, LADDERS[incident.kind][0], now, lines)
                elif now - incident.step_at >= self.config.timeout(incident.step):
                    if incident.step != incident.top:
                        self._enter(incident, STEPS[STEPS.index(incident.step) + 1], now, lines)
                    elif incident.top != "emergency":
                        self._close(incident, now, "unanswered")
            self._silence_rules(now, lines)
            self._update_sos()
            self._save("alive_at", now)
        self._speak(lines)

    def open_incidents(self) -> tuple[Incident, ...]:
        """The open incidents, one per kind."""
        with self._lock:
            return tuple(self._open.values())

    # ---- the ladder --------------------------------------------------------------------------

    def _raise(self, kind: str, reason: str, lines: list[str], *, device: str = "", room: str = "",
               contact: str = "", details: dict[str, Any] | None = None) -> Incident:
        now = self._now()
        existing = self._open.get(kind)
        if existing is not None:
            last = self._repeat_audited.get(existing.id)
            if last is None or now - last >= _SAVE_EVERY:  # audit repeats, but not every sensor message
                self._repeat_audited[existing.id] = now
                self.store.audit(existing.id, now, "repeat", "%s %s" % (reason, device))
            return existing
        start, top = LADDERS[kind]
        incident = Incident(str(uuid.uuid4()), kind, reason, "", top, now, now, device, room, contact, details or {})
        self.store.create(incident, "%s %s" % (reason, device))
        self._open[kind] = incident
        logger.info("incident %s opened: %s (%s)", incident.id, kind, reason)
        self._enter(incident, start, now, lines)
        self._update_sos()
        return self._open[kind]

    def _enter(self, incident: Incident, step: str, now: dt.datetime, lines: list[str]) -> None:
        """Take ``step``: say or send what it needs, then record it (a crash before recording replays it)."""
        detail = ""
        if incident.step == "":
            self._first_words(incident, step, lines)  # closes the gas valve first: seconds matter
        elif step == "family" and incident.step == "check_in":
            lines.append(self._text("family_notified", contact=self._contact_name(incident)))
        if step == "check_in":
            lines.append(self._text("are_you_ok"))
        else:
            alert = Alert(alert_id(incident.id, step), incident.id, self.home_id, incident.kind, step,
                          incident.reason, now.isoformat(timespec="seconds"), incident.device, incident.room,
                          incident.details)
            if self.link is not None:
                self.link.publish_alert(alert)
            if self.platform is not None:
                self.platform(alert)
            detail = alert.id
        self._open[incident.kind] = self.store.advance(incident, step, now, detail)
        logger.info("incident %s (%s) reached %s", incident.id, incident.kind, step)

    def _first_words(self, incident: Incident, step: str, lines: list[str]) -> None:
        """What the elder hears when an alarm or emergency opens an incident."""
        if incident.kind == "gas":
            closed = self._valve != "" and self.link is not None and self.link.send_command(
                DeviceCommand(device="gas_valve", action="off", name=self._valve,
                              id=alert_id(incident.id, "gas_valve")))
            lines.append(self._text("gas_valve_closed" if closed else "gas_alarm"))
        elif incident.kind in ALARM_PROMPTS:
            lines.append(self._text(ALARM_PROMPTS[incident.kind], contact=self._contact_name(incident)))
        if step in ("community", "emergency"):
            lines.append(self._text("reassurance", contact=self._contact_name(incident)))

    def _close(self, incident: Incident, now: dt.datetime, outcome: str, by: str = "") -> Incident:
        closed = self.store.close_incident(incident, now, outcome, by)
        self._open.pop(incident.kind, None)
        self._repeat_audited.pop(incident.id, None)
        logger.info("incident %s (%s) closed: %s", incident.id, incident.kind, outcome)
        return closed

    def _update_sos(self) -> None:
        active = any(kind in SOS_KINDS for kind in self._open)
        if active != self._sos and self.link is not None:
            self.link.publish_sos(active)
        self._sos = active

    # ---- sensors and silence -----------------------------------------------------------------

    def _trigger(self, event: SensorEvent) -> tuple[str, str] | None:
        """(kind, reason) of the incident ``event`` raises, or None."""
        if event.kind in ("gas", "smoke", "water_leak", "fall") and event.value is True:
            return event.kind, "%s_detected" % event.kind
        if event.kind == "action" and isinstance(event.value, str):
            action = event.value.lower()
            if action == "fall":
                return "fall", "fall_detected"
            if action in SOS_ACTIONS or (event.role == "sos" and action not in _IGNORED_ACTIONS):
                return "sos", "sos_button"
        return None

    def _voice(self, at: dt.datetime) -> None:
        self.activity.voice(at)
        self._save("last_activity", at)

    def _silence_rules(self, now: dt.datetime, lines: list[str]) -> None:
        cfg, today, seen = self.config, now.date(), self.activity
        day_start = self._at(cfg.day_start, now)
        quiet_morning = (seen.last_activity is None or seen.last_activity < day_start) and (
            self._observing_since <= day_start)  # only if we watched the whole morning
        if (cfg.morning_deadline and now >= self._at(cfg.morning_deadline, now)
                and self._once("morning_done", today) and quiet_morning):
            self._raise("inactivity", "no_activity_by_deadline", lines)
        still_in_bed = seen.bed is not None and seen.bed[0] and seen.bed[1] < day_start
        if (cfg.bed_deadline and now >= self._at(cfg.bed_deadline, now)
                and self._once("bed_done", today) and still_in_bed):
            self._raise("inactivity", "bed_not_left", lines)
        if cfg.inactivity_hours > 0 and day_start <= now < self._at(cfg.day_end, now):
            quiet_since = max(seen.last_activity or self._observing_since, self._observing_since, day_start)
            if now - quiet_since >= dt.timedelta(hours=cfg.inactivity_hours) and self._once(
                    "quiet_fired", quiet_since.isoformat()):
                self._raise("inactivity", "no_activity_for_hours", lines)
        if (cfg.bathroom_minutes > 0 and seen.room == cfg.bathroom_room and self._bathroom_fired != seen.room_since
                and now - seen.room_since >= dt.timedelta(minutes=cfg.bathroom_minutes)):
            self._bathroom_fired = seen.room_since
            self._raise("bathroom", "bathroom_too_long", lines, room=seen.room)
        self._doors_fired &= set(seen.doors_open.items())
        if cfg.door_open_minutes > 0 and self._is_night(now):
            limit = dt.timedelta(minutes=cfg.door_open_minutes)
            for door, since in seen.doors_open.items():
                if (door, since) not in self._doors_fired and now - since >= limit:
                    self._doors_fired.add((door, since))
                    self._raise("door_open", "door_open_at_night", lines, device=door)

    def _is_night(self, now: dt.datetime) -> bool:
        start, end = dt.time.fromisoformat(self.config.night_start), dt.time.fromisoformat(self.config.night_end)
        t = now.time()
        return (start <= t or t < end) if start > end else start <= t < end

    def _once(self, key: str, mark: object) -> bool:
        """True the first time ``mark`` is seen for ``key`` (remembered across restarts)."""
        text = str(mark)
        if key not in self._marks:
            self._marks[key] = self.store.get_state(key)
        if self._marks[key] == text:
            return False
        self._marks[key] = text
        self.store.set_state(key, text)
        return True

    @staticmethod
    def _at(clock: str, now: dt.datetime) -> dt.datetime:
        return dt.datetime.combine(now.date(), dt.time.fromisoformat(clock), tzinfo=now.tzinfo)

    # ---- helpers -----------------------------------------------------------------------------

    def _contact_name(self, incident: Incident) -> str:
        contact = incident.contact if incident.contact in _FAMILY_CONTACTS else self.family_contact
        return self.prompts.name("contact", contact)

    def _text(self, key: str, **values: object) -> str:
        return self.prompts.text(key, elder=self.elder, **values)

    def _speak(self, lines: list[str]) -> None:
        if lines:
            self._say(tuple(lines))

    def _load(self, key: str) -> dt.datetime | None:
        text = self.store.get_state(key)
        return dt.datetime.fromisoformat(text) if text else None

    def _save(self, key: str, at: dt.datetime, *, force: bool = False) -> None:
        last = self._saved_at.get(key)
        if force or last is None or at - last >= _SAVE_EVERY:
            self._saved_at[key] = at
            self.store.set_state(key, at.isoformat())
