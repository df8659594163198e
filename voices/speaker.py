"""Speaking the assistant's lines: printed in text mode, synthesised and played in voice mode.

:class:`VoiceSpeaker` speaks from its own thread so that the loop keeps listening while it talks:
the elder (or an emergency phrase) can interrupt it at any moment with :meth:`VoiceSpeaker.stop`
(barge-in). Lines are synthesised one by one and played through an :class:`voices.audio.AudioSink`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from voices.audio import AudioSink
from voices.tts import Synthesizer

logger = logging.getLogger(__name__)

SPOKEN_PREFIX = "说："
"""Text mode prints every spoken line with this prefix (CONTRACTS.md §1)."""


class Speaker(Protocol):
    """Where the assistant's lines go."""

    def say(self, text: str) -> None:
        """Speak ``text`` after whatever is already queued."""

    def stop(self) -> None:
        """Barge-in: stop the current line and drop the queued ones."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything queued was spoken (or stopped); False on time-out."""


class TextSpeaker:
    """Text mode: each line is printed as ``说：…`` on ``out`` (and flushed, for pipes)."""

    def __init__(self, out: TextIO) -> None:
        """Print to ``out``."""
        self.out = out

    def say(self, text: str) -> None:
        """Print the line."""
        self.out.write(f"{SPOKEN_PREFIX}{text}\n")
        self.out.flush()

    def stop(self) -> None:
        """Nothing to interrupt in text mode."""

    def wait(self, timeout: float | None = None) -> bool:
        """Printing is synchronous."""
        return True


class VoiceSpeaker:
    """Voice mode: synthesise each line and play it, in a background thread, interruptibly."""

    def __init__(self, synthesizer: Synthesizer, sink: AudioSink, *, echo: TextSpeaker | None = None,
                 on_first_audio: Callable[[str, float], None] | None = None) -> None:
        """``echo`` also prints each line (file mode, logs); ``on_first_audio(text, seconds)`` is told
        how long synthesis of each line took (for the latency benchmark)."""
        self.synthesizer = synthesizer
        self.sink = sink
        self.echo = echo
        self._on_first_audio = on_first_audio
        self._queue: queue.Queue[tuple[str, float] | None] = queue.Queue()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
        self._thread.start()

    @property
    def speaking(self) -> bool:
        """True while a line is being synthesised or played, or lines are queued."""
        return not self._idle.is_set()

    def say(self, text: str) -> None:
        """Queue a line; returns at once."""
        self._idle.clear()
        self._queue.put((text, time.perf_counter()))

    def stop(self) -> None:
        """Stop the current line within one audio block and drop the queued lines."""
        if not self.speaking:
            return
        self._stop.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        logger.info("playback interrupted (barge-in)")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until idle."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Finish the queued lines, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._idle.set()
                return
            text, queued_at = item
            self._stop.clear()
            try:
                self._speak(text, queued_at)
            except Exception:  # the speaker thread must survive one bad line
                logger.exception("could not speak a line")
            if self._queue.empty():
                self._idle.set()

    def _speak(self, text: str, queued_at: float) -> None:
        if self.echo is not None:
            self.echo.say(text)
        audio = self.synthesizer.synthesize(text)
        if self._on_first_audio is not None:
            self._on_first_audio(text, time.perf_counter() - queued_at)
        if self._stop.is_set():
            return
        completed = self.sink.play(audio.pcm, audio.rate, self._stop)
        if not completed:
            logger.debug("line interrupted")
