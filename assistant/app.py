"""``yinling run``: build the assistant from the configuration and run it in the right mode.

Modes, chosen once at start-up:
- text (``--text``): stdin → assistant → ``说：…`` lines on stdout;
- file (``--input FILE.wav``): the real Vosk loop on a recording, spoken lines synthesised into
  ``--output FILE.wav`` (or discarded) and echoed as ``说：…`` lines;
- voice (default): microphone and loudspeaker. With no microphone, no loudspeaker or no model the
  reason is printed in one line and the assistant falls back to text mode.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import sys
import threading
from collections.abc import Callable
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from assistant.config import Config
from assistant.adherence import MissedMedication
from assistant.catalogue import CatalogueCache, catalogue_skill, check_hours
from assistant.chat import Chat
from assistant.dialogue import Dialogue, Reply, local_now
from assistant.dose_coach import DoseCoach
from assistant.events import Event, HelpRequested, OrderRequested
from assistant.outbox import OrderStatusChanged, Outbox
from assistant.platform_client import PlatformClient
from assistant.reminder_skill import ReminderSkill
from assistant.reminders import DoseDue
from assistant.scheduler import ReminderService
from assistant.errors import YinlingError
from assistant.loop import Assistant, EventLog, EventPrinter, run_text
from assistant.skills import Skills
from assistant.weather import WeatherCache, WeatherSkill
from intents.recognize import IntentResult, Recognizer
from voices.prompts import Prompts
from voices.speaker import Speaker, TextSpeaker

logger = logging.getLogger(__name__)

ACTUATOR_ROLES = ("light", "tv", "air_conditioner", "gas_valve", "curtain", "heater")


@dataclass(frozen=True)
class RunOptions:
    """What ``yinling run`` was asked to do."""

    text: bool = False
    input_wav: Path | None = None
    output_wav: Path | None = None
    events: bool = False


def build_assistant(cfg: Config, state_dir: Path, speaker: Speaker, *, out: TextIO | None = None,
                    events: bool = False) -> Assistant:
    """Wire recogniser, prompts, skills, dialogue and event handlers for one home."""
    recognizer = Recognizer.load(accent_tolerant=cfg.intents.accent_tolerant,
                                 min_confidence=cfg.intents.min_confidence)
    prompts = Prompts.load()
    devices = {}
    for device in cfg.devices:
        if device.role in ACTUATOR_ROLES:
            devices.setdefault(device.role, device.name)
    elder = cfg.home.elder_name
    clock = local_now
    skills = Skills(prompts, elder=elder, clock=clock, devices=devices)
    dialogue = Dialogue(prompts, skills, recognizer.slot_value, elder=elder, family=cfg.home.family_contact,
                        timeout=cfg.dialogue.timeout, clock=time.monotonic)
    skills.register("chat", Chat(contact_name=prompts.name("contact", cfg.home.family_contact),
                                 offer_call=dialogue.offer_call))
    skills.register("query_weather", WeatherSkill(WeatherCache(state_dir / "weather.json"), prompts, clock=clock))
    handlers = [EventLog(state_dir / "events.jsonl")]
    if events and out is not None:
        handlers.append(EventPrinter(out))
    assistant = Assistant(recognizer, dialogue, speaker, handlers)
    _add_reminders(cfg, state_dir, assistant, prompts, clock)
    _add_outbox(cfg, state_dir, assistant, prompts)
    _add_escalation(cfg, state_dir, assistant, prompts, clock)
    if cfg.web.enabled:
        _add_family_api(cfg, state_dir, assistant, prompts)
    return assistant


def _add_family_api(cfg: Config, state_dir: Path, assistant: Assistant, prompts: Prompts) -> None:
    """Serve the family API (CONTRACTS.md §7) on 127.0.0.1:[web] port while the assistant runs."""
    from assistant.family_api import FamilyHome, create_family_app
    from assistant.pairing import Pairing
    from assistant.platform_server import BackgroundServer

    messages: queue.Queue[tuple[str, str]] = queue.Queue()  # (text, sender) from the web server's thread
    pairing = Pairing.in_dir(state_dir)
    registry = assistant.bridge.adapter.registry if assistant.bridge is not None else None
    home = FamilyHome(reminders=assistant.reminders, pairing=pairing, read_aloud=lambda text, sender: messages.put((text, sender)),
                      escalation=assistant.escalation, devices=registry)
    server = BackgroundServer(create_family_app(home), "127.0.0.1", cfg.web.port).start()

    def read_messages() -> Reply:
        lines = []
        while not messages.empty():
            text, sender = messages.get_nowait()
            lines.append(prompts.text("family_message", text=text, sender=sender))
        return Reply(tuple(lines))

    def pair(result: IntentResult) -> Reply:
        """「绑定家人」: say a fresh 6-digit code, digit by digit."""
        digits = prompts.text("digit_joiner").join(prompts.count(int(d), measure=False) for d in pairing.new_code())
        return Reply((prompts.text("family_code", digits=digits),))

    assistant.dialogue.skills.register("ask:pair", pair)
    assistant.tickers.append(read_messages)
    assistant.closers.append(pairing.close)
    assistant.closers.append(server.stop)
    assistant.family_url = server.url


def _add_escalation(cfg: Config, state_dir: Path, assistant: Assistant, prompts: Prompts,
                    clock: Callable[[], dt.datetime]) -> None:
    """Home sensors over MQTT (when a broker is configured) and the escalation ladder."""
    from assistant.escalation import EscalationEngine
    from assistant.incidents import IncidentStore

    spoken: queue.Queue[str] = queue.Queue()  # sensor triggers arrive on paho's thread
    bridge = None
    if cfg.mqtt.host:
        from devices.bridge import BrokerSettings, MqttBridge
        from devices.outbox import MqttOutbox
        from devices.sensors import DeviceRegistry, SensorAdapter

        bridge = MqttBridge(cfg.home.id, BrokerSettings.from_config(cfg.mqtt),
                            SensorAdapter(cfg.home.id, DeviceRegistry(cfg.devices)),
                            MqttOutbox(state_dir / "mqtt_outbox.db"))
    engine = EscalationEngine(cfg.escalation, IncidentStore(state_dir / "incidents.db"), prompts,
                              home_id=cfg.home.id, elder=cfg.home.elder_name, family_contact=cfg.home.family_contact,
                              now=clock, say=lambda lines: [spoken.put(line) for line in lines], link=bridge,
                              platform=assistant.outbox.put if assistant.outbox is not None else None,
                              devices=cfg.devices)

    def tick() -> Reply:
        engine.tick()
        lines = []
        while not spoken.empty():
            lines.append(spoken.get_nowait())
        return Reply(tuple(lines))

    def heard(result: IntentResult) -> None:
        engine.on_voice()
        if result.intent == "im_ok":
            engine.im_ok()
        if bridge is not None:
            bridge.publish_intent(result)

    assistant.handlers.append(engine.on_event)
    assistant.tickers.append(tick)
    assistant.listeners.append(heard)
    assistant.escalation = engine
    if bridge is not None:
        bridge.on_sensor, bridge.on_ack = engine.on_sensor, engine.ack
        assistant.handlers.append(bridge.handle)
        bridge.start()
        assistant.closers.append(bridge.stop)
        assistant.bridge = bridge


def _add_outbox(cfg: Config, state_dir: Path, assistant: Assistant, prompts: Prompts) -> None:
    """Orders and help requests go to the community platform through the durable outbox; status
    changes the platform reports are spoken when the assistant is idle."""
    client = PlatformClient(cfg.platform.url, cfg.platform.token) if cfg.platform.url else None
    changes: queue.Queue[OrderStatusChanged] = queue.Queue()
    outbox = Outbox.in_dir(state_dir, cfg.home.id, client, on_status=changes.put,
                           poll_interval=cfg.platform.poll_interval)

    def hand_over(event: Event) -> None:
        if isinstance(event, OrderRequested | HelpRequested):
            outbox.put(event)

    def tell() -> Reply:
        if assistant.dialogue.pending is not None or changes.empty():
            return Reply()  # never interrupt a question with news
        change = changes.get_nowait()
        values = {"service": prompts.name("order_service", change.service),
                  "eta": _spoken_eta(prompts, change.eta)}
        return Reply((prompts.text(f"order_{change.status}", **values),), (change,))

    def close() -> None:
        outbox.drain(timeout=cfg.platform.drain_timeout)
        outbox.close()

    def status(result: IntentResult) -> Reply:
        """「我的饭订上了吗」: the latest meal order as the outbox and the platform know it."""
        entry = outbox.summary("meal")
        service = prompts.name("order_service", "meal")
        if entry is None:
            return Reply((prompts.text("order_status_none", service=service),))
        if entry.state != "delivered":
            return Reply((prompts.text(f"order_status_{entry.state}", service=service),))
        key = f"order_{entry.platform_status or 'received'}"
        return Reply((prompts.text(key, service=service, eta=_spoken_eta(prompts, entry.eta)),))

    assistant.dialogue.skills.register("ask:status", status)
    _add_catalogue(cfg, state_dir, assistant, prompts, client)
    assistant.handlers.append(hand_over)
    assistant.tickers.append(tell)
    assistant.closers.append(close)
    assistant.outbox = outbox
    outbox.start()


def _add_catalogue(cfg: Config, state_dir: Path, assistant: Assistant, prompts: Prompts,
                   client: PlatformClient | None) -> None:
    """The community's services, hours and menu: answers 「今天食堂有什么」 and explains orders
    outside service hours instead of queueing them."""
    cache = CatalogueCache.in_dir(state_dir)
    assistant.dialogue.skills.register("ask:menu", catalogue_skill(cache, prompts, local_now))
    assistant.dialogue.register_gate("order_meal", lambda slots: check_hours(cache, prompts, "meal", local_now()))
    assistant.dialogue.register_gate(
        "order_service", lambda slots: check_hours(cache, prompts, str(slots.get("service", "")), local_now()))
    if client is None:
        return
    stop = threading.Event()

    def refresh() -> None:  # off the speech loop: the request may take the client's timeouts
        while not stop.is_set():
            cache.refresh(client)
            stop.wait(cfg.platform.poll_interval)

    threading.Thread(target=refresh, name="catalogue", daemon=True).start()
    assistant.closers.append(stop.set)


def _spoken_eta(prompts: Prompts, eta: str | None) -> str:
    if not eta:
        return ""
    hour, minute = (int(part) for part in eta.split(":"))
    return prompts.text("order_eta", time=prompts.speakable_time(hour, minute))


def _add_reminders(cfg: Config, state_dir: Path, assistant: Assistant, prompts: Prompts,
                   clock: Callable[[], dt.datetime]) -> None:
    """Start the reminder scheduler (the single owner for this home) and the dose conversation."""
    fired: queue.Queue[DoseDue] = queue.Queue()  # scheduler threads hand doses to the assistant's thread
    missed_outside: queue.Queue[MissedMedication] = queue.Queue()
    service = ReminderService(state_dir, fired.put, on_missed=missed_outside.put,
                              misfire_grace=cfg.reminders.misfire_grace)
    service.start()
    assistant.closers.append(service.shutdown)
    assistant.reminders = service  # the family API (and tests) manage reminders through the single owner
    elder = cfg.home.elder_name
    coach = DoseCoach(service.adherence, lambda key, values: prompts.text(key, elder=elder, **values), clock,
                      reprompt_every=cfg.reminders.reprompt_every, max_prompts=cfg.reminders.max_reprompts,
                      schedule=service.due_on, say_time=prompts.speakable_time)
    coach.restore()
    ReminderSkill(service, coach, prompts, assistant.dialogue, now=clock)

    def tick() -> Reply:
        lines: list[str] = []
        events: list[Event] = []
        while not fired.empty():
            lines += coach.due(fired.get_nowait())
        while not missed_outside.empty():
            events.append(missed_outside.get_nowait())
        more, missed = coach.tick()
        return Reply(tuple(lines + more), tuple(events + missed))

    assistant.tickers.append(tick)


def run(cfg: Config, state_dir: Path, options: RunOptions) -> int:
    """Run the assistant until end of input (text, file) or until interrupted (voice)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    if options.text:
        return _run_text(cfg, state_dir, options, out)
    from assistant import voice_mode  # imported here: text mode must not need audio libraries

    if options.input_wav is not None:
        return voice_mode.run_file(cfg, state_dir, options, out, build_assistant)
    try:
        return voice_mode.run_live(cfg, state_dir, options, out, build_assistant)
    except YinlingError as exc:
        print(f"{str(exc).rstrip('.。')}；改用文字模式 / falling back to text mode", file=sys.stderr)
        return _run_text(cfg, state_dir, options, out)


def _run_text(cfg: Config, state_dir: Path, options: RunOptions, out: TextIO) -> int:
    assistant = build_assistant(cfg, state_dir, TextSpeaker(out), out=out, events=options.events)
    try:
        run_text(assistant, sys.stdin)
    finally:
        assistant.close()
    return 0
