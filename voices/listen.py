"""Listening for the elder: keyword spotting (wake word, emergency phrases) and two-stage listening.

The :class:`KeywordSpotter` is an always-on grammar-mode recogniser; the :class:`TwoStageListener`
adds free recognition of one request after each wake word and turns everything into listener events
(:data:`ListenerEvent`). Audio and times are as in ``voices/asr.py``: int16 mono PCM at 16 kHz, times in
seconds since the start of the stream. The spotter's Mandarin decoy phrases are data, in
``voices/spotting.yaml`` (:func:`bundled_decoys`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from typing import Literal

import yaml

from assistant.errors import ConfigError, DataError
from voices.asr import BLOCK_BYTES, BYTES_PER_SECOND, Final, RecognizerEvent, SpeechModel, StreamingRecognizer, Word

logger = logging.getLogger(__name__)

DECOYS_FILE = "spotting.yaml"
"""The file in the ``voices`` package that lists the bundled Mandarin decoy phrases."""


@functools.cache
def bundled_decoys() -> tuple[str, ...]:
    """The Mandarin decoy phrases of ``voices/spotting.yaml``, in file order; DataError if the file is malformed."""
    try:
        data = yaml.safe_load(resources.files("voices").joinpath(DECOYS_FILE).read_text("utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError("voices/%s cannot be read (%s); reinstall yinling." % (DECOYS_FILE, error)) from None
    decoys = data.get("decoys") if isinstance(data, dict) else None
    if not isinstance(decoys, list) or not decoys or not all(isinstance(d, str) and d.strip() for d in decoys):
        raise DataError("voices/%s must hold a non-empty list `decoys:` of phrases; reinstall yinling." % DECOYS_FILE)
    return tuple(dict.fromkeys(d.strip() for d in decoys))


@dataclass(frozen=True)
class Spotted:
    """A keyword heard: its kind, the phrase as configured, its lowest word confidence, its end (s)."""

    kind: Literal["wake", "emergency"]
    phrase: str
    conf: float
    end_time: float


class KeywordSpotter:
    """Always-on first stage: grammar-mode recognition of wake words and emergency phrases.

    A wake word counts when an utterance's Final is exactly the phrase. An emergency phrase counts as
    soon as a Partial or Final ends with it and it begins the utterance or follows a pause of at least
    ``min_pause`` seconds, so "..., 救命" is not held back until a long utterance ends, while the same
    sounds inside running speech are ignored. Every word must reach ``threshold``; one utterance gives
    at most one Spotted. ``decoys`` are grammar phrases never reported: they soak up other speech, which
    a small grammar would otherwise force onto the keywords (measured: a large false-trigger cut).
    """

    def __init__(self, model: SpeechModel, wake_words: Sequence[str], emergency_phrases: Sequence[str], *,
                 decoys: Sequence[str] = (), threshold: float = 0.6, min_pause: float = 0.2) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ConfigError("Keyword threshold must be in (0, 1], got %r." % threshold)
        grammar = list(dict.fromkeys([*wake_words, *emergency_phrases, *decoys]))
        self.recognizer = StreamingRecognizer(model, grammar, partial_words=True)
        self.threshold, self.min_pause = threshold, min_pause
        self._wake = {self.recognizer.phrases[p]: p for p in wake_words}
        self._emergency = {self.recognizer.phrases[p]: p for p in emergency_phrases}
        self._done_utterance = -1

    def accept(self, pcm: bytes) -> list[Spotted]:
        """Feed audio; returns what was spotted in it."""
        return self._spot(self.recognizer.accept(pcm))

    def _spot(self, events: Iterable[RecognizerEvent]) -> list[Spotted]:
        spotted = []
        for event in events:
            if event.utterance == self._done_utterance:
                continue
            found = self._emergency_at_end(event.words)
            if found is None and isinstance(event, Final):
                found = self._whole_wake(event.words)
            if found is not None:
                self._done_utterance = event.utterance
                logger.info("spotted %s phrase %s (conf %.2f)", found.kind, found.phrase, found.conf)
                spotted.append(found)
        return spotted

    def _whole_wake(self, words: tuple[Word, ...]) -> Spotted | None:
        phrase = self._wake.get(tuple(w.text for w in words))
        conf = min((w.conf for w in words), default=0.0)
        return Spotted("wake", phrase, conf, words[-1].end) if phrase and conf >= self.threshold else None

    def _emergency_at_end(self, words: tuple[Word, ...]) -> Spotted | None:
        for tokens, phrase in self._emergency.items():
            run = words[-len(tokens) :]
            if len(words) < len(tokens) or tuple(w.text for w in run) != tokens:
                continue
            isolated = len(words) == len(tokens) or run[0].start - words[-len(tokens) - 1].end >= self.min_pause
            conf = min(w.conf for w in run)
            if isolated and conf >= self.threshold:
                return Spotted("emergency", phrase, conf, run[-1].end)
        return None


@dataclass(frozen=True)
class WakeWord:
    """The wake word ended at ``time`` (s); the listener now takes one request."""

    phrase: str
    time: float


@dataclass(frozen=True)
class Emergency:
    """An emergency phrase ended at ``time`` (s); heard in any state, no wake word needed."""

    phrase: str
    time: float


@dataclass(frozen=True)
class Request:
    """The one request spoken after the wake word."""

    text: str
    words: tuple[Word, ...]
    start_time: float
    end_time: float


@dataclass(frozen=True)
class RequestTimeout:
    """Nobody spoke for ``waited`` seconds of audio after the wake word."""

    waited: float


@dataclass(frozen=True)
class SpeechStarted:
    """Someone began to speak at ``time`` (s), first partial ``text``: stop playback (barge-in)."""

    text: str
    time: float


ListenerEvent = WakeWord | Emergency | Request | RequestTimeout | SpeechStarted


class ListenerState(Enum):
    """What the two-stage listener is doing."""

    IDLE = "idle"
    LISTENING = "listening"


class TwoStageListener:
    """Idle: only the keyword spotter runs. After a wake word: free recognition of ONE request, then idle.

    The spotter runs on every chunk in both states, so emergency phrases are always heard; its grammar
    decoding costs a few percent of free decoding (bench/bench_asr.py). The audio between the end of the
    wake word and its detection (Vosk's endpoint delay) is replayed to the free recogniser.
    """

    def __init__(self, spotter: KeywordSpotter, free: StreamingRecognizer, *, request_timeout: float = 8.0) -> None:
        self.spotter, self.free, self.request_timeout = spotter, free, request_timeout
        self.state = ListenerState.IDLE
        self._quiet, self._speaking, self._carry = 0.0, False, b""
        self._recent, self._recent_start = b"", 0.0  # the last 3 s of audio, replayed after a wake word

    def feed(self, pcm: bytes) -> list[ListenerEvent]:
        """Feed audio of any length; returns the events it caused, in order."""
        data = self._carry + pcm
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        events: list[ListenerEvent] = []
        for start in range(0, usable, BLOCK_BYTES):
            events += self._block(data[start : min(start + BLOCK_BYTES, usable)])
        return events

    def _block(self, block: bytes) -> list[ListenerEvent]:
        now = self.spotter.recognizer.now
        self._remember(block, now)
        listening = self.state is ListenerState.LISTENING
        free_events = self.free.accept(block) if listening else []
        events: list[ListenerEvent] = []
        for spotted in self.spotter.accept(block):
            if spotted.kind == "emergency":
                events.append(Emergency(spotted.phrase, spotted.end_time))
                self.state = ListenerState.IDLE
            elif self.state is ListenerState.IDLE:
                events.append(WakeWord(spotted.phrase, spotted.end_time))
                self._start_listening(spotted.end_time)
        heard = (self.free.partial_text if listening else "") or self.spotter.recognizer.partial_text
        if heard and not self._speaking:
            events.append(SpeechStarted(heard, now))
        self._speaking = bool(heard)
        if listening and self.state is ListenerState.LISTENING:
            events += self._listen(free_events, len(block) / BYTES_PER_SECOND)
        return events

    def _listen(self, free_events: list[RecognizerEvent], seconds: float) -> list[ListenerEvent]:
        final = next((e for e in free_events if isinstance(e, Final)), None)
        if final is not None:
            self.state = ListenerState.IDLE
            return [Request(final.text, final.words, final.start_time, final.end_time)]
        self._quiet = 0.0 if self.free.partial_text else self._quiet + seconds
        if self._quiet < self.request_timeout:
            return []
        self.state = ListenerState.IDLE
        return [RequestTimeout(self._quiet)]

    def _start_listening(self, wake_end: float) -> None:
        self.state, self._quiet = ListenerState.LISTENING, 0.0
        skip = max(0, int((wake_end - self._recent_start) * BYTES_PER_SECOND) // 2 * 2)
        self.free.reset(now=self._recent_start + skip / BYTES_PER_SECOND)
        if any(isinstance(e, Final) for e in self.free.accept(self._recent[skip:])):
            self.free.reset(now=self.spotter.recognizer.now)  # the replay held only the wake word's tail
        logger.debug("listening for one request from %.2f s", wake_end)

    def _remember(self, block: bytes, now: float) -> None:
        if not self._recent:
            self._recent_start = now
        self._recent += block
        excess = len(self._recent) - 3 * BYTES_PER_SECOND
        if excess > 0:
            self._recent = self._recent[excess:]
            self._recent_start += excess / BYTES_PER_SECOND
