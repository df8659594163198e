"""Speech synthesis: text in, PCM audio out, with espeak-ng through pyttsx3.

The default voice is espeak-ng's ``sit/cmn-latn-pinyin`` (Mandarin; its sibling ``sit/cmn`` reads
Latin letters as English). Synthesis goes to a temporary WAV file that is read back, because
pyttsx3's own playback shells out to ``aplay`` and fails silently; playing is the job of an
:class:`~voices.audio.AudioSink`.

pyttsx3 keeps a single espeak-ng engine per process, and espeak-ng ignores rate changes after the
first utterance, so voice, rate and volume are fixed once per process: a second
:class:`EspeakSynthesizer` must use the same settings (or it raises :class:`SpeechError`).
A short prompt takes about 10 ms to synthesise, so this path needs no streaming.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import threading
import wave
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assistant.errors import SpeechError

logger = logging.getLogger(__name__)

DEFAULT_VOICE = "sit/cmn-latn-pinyin"  # espeak-ng voice id: Mandarin, Latin letters read as pinyin
DEFAULT_RATE = 120  # speaking rate in words per minute (espeak-ng's default of 175 is too fast for elders)


@dataclass(frozen=True)
class Audio:
    """A piece of synthesised speech: mono signed 16-bit little-endian PCM."""

    pcm: bytes
    """the samples, mono int16 little-endian"""
    rate: int
    """sample rate of ``pcm`` (hertz)"""

    @property
    def duration(self) -> float:
        """Length of the audio (seconds)."""
        return len(self.pcm) / (2 * self.rate)


class Synthesizer(Protocol):
    """Turns text into speech audio."""

    def synthesize(self, text: str) -> Audio:
        """Return ``text`` spoken as audio; empty text gives empty audio. Raises SpeechError on failure."""


# One engine per process (pyttsx3 caches it weakly; losing it would reset espeak-ng's settings).
_engine: Any = None
_settings: tuple[str, int, float] | None = None
_lock = threading.Lock()


class EspeakSynthesizer(Synthesizer):
    """pyttsx3 with the espeak-ng driver, synthesising to a temporary WAV file (22 050 Hz mono)."""

    def __init__(
        self, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE, volume: float = 1.0, cache_size: int = 32
    ) -> None:
        """Prepare the engine with espeak-ng ``voice``, ``rate`` (words/min, 80..450) and ``volume`` (0..1).

        The last ``cache_size`` texts are kept synthesised (0 disables the cache). Raises
        SpeechError when espeak-ng or the voice is missing, a setting is out of range, or the
        process already speaks with other settings.
        """
        if not 80 <= rate <= 450:
            raise SpeechError("speech rate must be 80..450 words per minute (espeak-ng), not %r" % rate)
        if not 0.0 <= volume <= 1.0:
            raise SpeechError("speech volume must be between 0.0 and 1.0, not %r" % volume)
        self.voice, self.rate, self.volume = voice.lower(), rate, volume
        self._cache: OrderedDict[str, Audio] = OrderedDict()
        self._cache_size = cache_size
        global _engine, _settings
        with _lock:
            if _engine is None:
                _engine = _start_engine()
            voices = {v.id.lower() for v in _engine.getProperty("voices")}
            if self.voice not in voices:
                mandarin = sorted(v for v in voices if "cmn" in v) or ["none"]
                raise SpeechError(
                    "espeak-ng voice %r is not installed (Mandarin voices here: %s); set [speech] tts_voice"
                    % (voice, ", ".join(mandarin))
                )
            wanted = (self.voice, rate, volume)
            if _settings is not None and _settings != wanted:
                raise SpeechError(
                    "this process already speaks with voice %r at %d words/min, volume %.2f; espeak-ng "
                    "cannot change them after the first utterance, so all synthesizers must share them"
                    % _settings
                )
            if _settings is None:
                # Queued in order and applied before the first utterance: later rate changes are ignored.
                _engine.setProperty("voice", self.voice)
                _engine.setProperty("rate", rate)
                _engine.setProperty("volume", volume)
                _settings = wanted
        logger.debug("espeak-ng voice %s at %d words/min, volume %.2f", self.voice, rate, volume)

    def synthesize(self, text: str) -> Audio:
        """Return ``text`` spoken (22 050 Hz mono int16); cached texts come back at once."""
        text = text.strip()
        if not text:
            return Audio(b"", 22050)
        with _lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
            with tempfile.TemporaryDirectory(prefix="yinling-tts-") as folder:
                path = Path(folder) / "speech.wav"
                _engine.save_to_file(text, str(path))
                # pyttsx3 prints "Audio saved to …" on stdout, which belongs to the assistant's text mode.
                with contextlib.redirect_stdout(io.StringIO()):
                    _engine.runAndWait()
                audio = _read_wav(path, text)
            if self._cache_size > 0:
                self._cache[text] = audio
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return audio

    def current_voice(self) -> str:
        """The voice id the espeak-ng engine reports using right now."""
        with _lock:
            return str(_engine.getProperty("voice"))


def _start_engine() -> Any:
    """Start pyttsx3's espeak driver, or raise SpeechError saying how to install espeak-ng."""
    try:
        import pyttsx3

        return pyttsx3.init("espeak")
    except (ImportError, OSError, RuntimeError) as error:
        raise SpeechError(
            "espeak-ng cannot be started (%s); install it with `apt-get install espeak-ng`" % error
        ) from None


def _read_wav(path: Path, text: str) -> Audio:
    """Read the WAV pyttsx3 wrote for ``text`` as mono int16 Audio."""
    try:
        with wave.open(str(path), "rb") as wav:
            layout = (wav.getnchannels(), wav.getsampwidth())
            audio = Audio(wav.readframes(wav.getnframes()), wav.getframerate())
    except (OSError, EOFError, wave.Error) as error:
        raise SpeechError("espeak-ng gave no audio for %d characters (%s)" % (len(text), error)) from None
    if layout != (1, 2):
        raise SpeechError("espeak-ng gave %d-channel %d-byte audio instead of mono 16-bit" % layout)
    return audio
