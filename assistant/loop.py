"""The assistant's main loop: hear → understand → decide → speak, in text mode or voice mode.

:class:`Assistant` glues the parts: the intent recogniser, the dialogue and a speaker; every event
the dialogue emits goes to the event handlers (the event log, and later escalation, the outbox and
the MQTT bridge). The loop is a small state machine (:class:`State`):

    IDLE ──wake word──▶ LISTENING ──request──▶ UNDERSTANDING ──▶ SPEAKING ──▶ IDLE or CONFIRMING
    any state ──emergency phrase──▶ SPEAKING (help path; playback interrupted first)

Text mode (``yinling run --text``) and file mode (``--input FILE.wav``) drive the same Assistant.
"""

from __future__ import annotations

import enum
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from assistant.dialogue import Dialogue, Reply
from assistant.events import Event
from intents.recognize import IntentResult, Recognizer
from voices.speaker import Speaker

logger = logging.getLogger(__name__)

EVENT_PREFIX = "事件："
"""With ``--events``, text mode prints each event as this prefix plus its JSON."""

TICK_SECONDS = 0.5  # how often time-outs are checked while waiting for input


class State(enum.Enum):
    """Where the conversation is."""

    IDLE = "idle"
    LISTENING = "listening"
    UNDERSTANDING = "understanding"
    SPEAKING = "speaking"
    CONFIRMING = "confirming"


EventHandler = Callable[[Event], None]


class EventLog:
    """Appends every event as one JSON line to ``events.jsonl`` in the state directory."""

    def __init__(self, path: Path) -> None:
        """Create the directory if needed; the file is opened per event (events are rare)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def __call__(self, event: Event) -> None:
        """Append one event."""
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")


class EventPrinter:
    """Prints each event as ``事件：{json}`` (text mode with ``--events``; used by end-to-end tests)."""

    def __init__(self, out: TextIO) -> None:
        """Print to ``out``."""
        self.out = out

    def __call__(self, event: Event) -> None:
        """Print one event."""
        self.out.write(EVENT_PREFIX + json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self.out.flush()


class Assistant:
    """One home's assistant: understands utterances, keeps the dialogue, speaks, emits events."""

    def __init__(self, recognizer: Recognizer, dialogue: Dialogue, speaker: Speaker,
                 handlers: Iterable[EventHandler] = ()) -> None:
        """``handlers`` receive every event, in order, right after the reply is spoken."""
        self.recognizer = recognizer
        self.dialogue = dialogue
        self.speaker = speaker
        self.handlers = list(handlers)
        self.tickers: list[Callable[[], Reply]] = []  # background work that may speak (due doses …)
        self.closers: list[Callable[[], None]] = []  # run once by close(), last added first
        self.reminders: Any = None  # the home's ReminderService, once started (see assistant.app)
        self.outbox: Any = None  # the home's Outbox towards the community platform
        self.escalation: Any = None  # the home's EscalationEngine
        self.bridge: Any = None  # the home's MqttBridge, when a broker is configured
        self.family_url: str | None = None  # where the family API is served, when [web] enabled
        self.listeners: list[Callable[[IntentResult], None]] = []  # told of every understood utterance
        self.state = State.IDLE
        self._lock = threading.Lock()  # text lines, ticks and audio events may come from several threads

    def hear(self, text: str) -> IntentResult:
        """Handle one utterance (a recognised request, or a line typed in text mode)."""
        with self._lock:
            self.state = State.UNDERSTANDING
            result = self.recognizer.parse(text)
            logger.info("understood intent %s (%.2f)", result.intent, result.confidence)
            for listener in self.listeners:
                listener(result)
            self._act(self.dialogue.handle(result))
            return result

    def emergency(self, phrase: str) -> None:
        """An emergency phrase was spotted (no wake word needed): interrupt and start the help path."""
        self.speaker.stop()
        result = self.recognizer.parse(phrase)
        if result.intent != "call_help" or result.slots.get("urgency") != "emergency":
            result = IntentResult(text=phrase, intent="call_help", confidence=1.0, slots={"urgency": "emergency"})
        with self._lock:
            self._act(self.dialogue.handle(result))

    def say_prompt(self, key: str) -> None:
        """Speak one prompt outside any dialogue (e.g. the answer to the wake word)."""
        with self._lock:
            self.speaker.say(self.dialogue.say(key))

    def tick(self) -> None:
        """Check the dialogue's time-outs and let background work speak (a dose that is due …)."""
        with self._lock:
            self._act(self.dialogue.tick())
            for ticker in self.tickers:
                self._act(ticker())

    def close(self) -> None:
        """Stop background services (the reminder scheduler …)."""
        while self.closers:
            self.closers.pop()()

    def _act(self, reply: Reply) -> None:
        if reply.lines:
            self.state = State.SPEAKING
        for line in reply.lines:
            self.speaker.say(line)
        for event in reply.events:
            logger.info("event %s %s", event.kind, event.id)
            for handler in self.handlers:
                handler(event)
        self.state = State.CONFIRMING if self.dialogue.pending else State.IDLE


def run_text(assistant: Assistant, lines: Iterable[str], *, tick: float = TICK_SECONDS) -> None:
    """Text mode: one utterance per line; time-outs keep running while we wait for the next line."""
    inbox: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in lines:
            inbox.put(line)
        inbox.put(None)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    while True:
        try:
            line = inbox.get(timeout=tick)
        except queue.Empty:
            assistant.tick()
            continue
        if line is None:
            break
        if line.strip():
            assistant.hear(line.strip())
        assistant.tick()
    assistant.tick()
    assistant.speaker.wait(timeout=60)


def stdin_lines(stream: TextIO) -> Iterator[str]:
    """Lines of stdin; undecodable input has already been replaced by the stream's error handler."""
    yield from stream
