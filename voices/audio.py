"""Audio in and out: microphone, loudspeaker and WAV files behind one small interface.

All audio is raw PCM, signed 16-bit little-endian, mono. Sources deliver chunks at 16 kHz (what the
recogniser expects); sinks play any rate (espeak-ng speaks at 22 050 Hz) and can be interrupted by
a ``threading.Event`` within :data:`PLAY_BLOCK_MS` (barge-in). sounddevice is imported only when a
sound card is opened, so WAV files, tests and text mode work without PortAudio (``libportaudio2``).
"""

from __future__ import annotations

import logging
import threading
import time
import wave
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, Self

from assistant.errors import AudioDeviceError, InputError

with warnings.catch_warnings():
    # Deprecated since Python 3.11 and removed in 3.13, where the audioop-lts package provides it.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # sample rate of the audio every source delivers (hertz)
SAMPLE_WIDTH = 2  # bytes per sample: signed 16-bit little-endian, mono
CHUNK_MS = 100  # default length of one chunk returned by AudioSource.read (milliseconds)
PLAY_BLOCK_MS = 50  # longest stretch a sink plays before checking its stop event again (milliseconds)
NO_MICROPHONE = "未找到麦克风 / no microphone found"  # start of the error message: no usable microphone
NO_SPEAKER = "未找到扬声器 / no speaker found"  # start of the error message: no usable loudspeaker


class Closable(Protocol):
    """Something holding a device or file: ``close()`` releases it, also on leaving a ``with`` block."""

    def close(self) -> None:
        """Release the device or file; a source then reads ``None``."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AudioSource(Closable, Protocol):
    """Delivers 16 kHz mono int16 PCM in chunks."""

    def read(self) -> bytes | None:
        """Return the next chunk (blocking until it is available), or ``None`` at the end of the stream."""


class AudioSink(Closable, Protocol):
    """Plays mono int16 PCM at a given rate."""

    def play(self, pcm: bytes, rate: int, stop: threading.Event | None = None) -> bool:
        """Play ``pcm`` (mono int16 at ``rate`` hertz) and block until done.

        Returns ``False`` when ``stop`` was set before the end (checked at least every
        :data:`PLAY_BLOCK_MS`), ``True`` when everything was played.
        """


class Resampler:
    """Converts a stream of mono int16 PCM from one rate to another, chunk by chunk."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        """Prepare a conversion from ``from_rate`` to ``to_rate`` hertz (identity when equal)."""
        self.from_rate, self.to_rate = from_rate, to_rate
        self._state: Any = None

    def __call__(self, pcm: bytes) -> bytes:
        """Return ``pcm`` converted; the filter state carries over to the next call."""
        if self.from_rate == self.to_rate or not pcm:
            return pcm
        pcm, self._state = audioop.ratecv(pcm, SAMPLE_WIDTH, 1, self.from_rate, self.to_rate, self._state)
        return pcm


def _play_blocks(
    pcm: bytes, rate: int, stop: threading.Event | None, write: Callable[[bytes], None], realtime: bool
) -> bool:
    """Hand ``pcm`` to ``write`` in blocks of PLAY_BLOCK_MS, checking ``stop`` before each; False if stopped.

    With ``realtime`` the call lasts as long as the audio, like a loudspeaker; it waits on ``stop``,
    so an interruption is noticed at once.
    """
    if len(pcm) % SAMPLE_WIDTH or rate <= 0:
        raise InputError("cannot play %d bytes at %r Hz: need 16-bit samples, rate > 0" % (len(pcm), rate))
    block = rate * PLAY_BLOCK_MS // 1000 * SAMPLE_WIDTH
    start = time.monotonic()
    for offset in range(0, len(pcm), block):
        if stop is not None and stop.is_set():
            return False
        write(pcm[offset : offset + block])
        if realtime:
            remaining = start + min(offset + block, len(pcm)) / (SAMPLE_WIDTH * rate) - time.monotonic()
            if remaining > 0 and stop is None:
                time.sleep(remaining)
            elif remaining > 0 and stop.wait(remaining):
                return False
    return True


class WavFileSource(AudioSource):
    """Reads a WAV file as 16 kHz mono int16 chunks; with ``realtime`` paced like a microphone."""

    def __init__(
        self, path: str | Path, chunk_ms: int = CHUNK_MS, realtime: bool = False, convert: bool = False
    ) -> None:
        """Open ``path``: 16 kHz mono 16-bit PCM, or with ``convert`` any rate, mono or stereo, 8 to 32 bits.

        Raises InputError naming the file when it is missing, not a PCM WAV file, or in another format.
        """
        if chunk_ms <= 0:
            raise InputError("chunk_ms must be a positive number of milliseconds, not %r" % chunk_ms)
        self.path, self.realtime = Path(path), realtime
        try:
            self._wav = wave.open(str(self.path), "rb")
        except (wave.Error, EOFError) as error:
            raise InputError("%s is not a PCM WAV file (%s)" % (self.path, error)) from None
        except OSError as error:
            raise InputError("cannot read WAV file %s: %s" % (self.path, error.strerror)) from None
        rate, channels, width = self._wav.getframerate(), self._wav.getnchannels(), self._wav.getsampwidth()
        self._format = (rate, channels, width)
        if self._format != (SAMPLE_RATE, 1, SAMPLE_WIDTH):
            layout = {1: "mono", 2: "stereo"}.get(channels, "%d-channel" % channels)
            found = "%d Hz %s %d-bit" % (rate, layout, 8 * width)
            if not convert or channels > 2:
                self._wav.close()
                raise InputError(
                    "%s is %s, but yinling needs 16000 Hz mono 16-bit WAV; convert it (for example "
                    "`sox IN.wav -r 16000 -c 1 -b 16 OUT.wav`)%s"
                    % (self.path, found, "" if convert else " or pass convert=True")
                )
            logger.info("converting %s from %s to 16000 Hz mono 16-bit", self.path, found)
        self._frames = max(1, rate * chunk_ms // 1000)
        self._resample = Resampler(rate, SAMPLE_RATE)
        self._delivered = 0
        self._started: float | None = None
        self._closed = False

    def read(self) -> bytes | None:
        """Return the next chunk (the last may be shorter), or None at the end of the file."""
        data = b"" if self._closed else self._wav.readframes(self._frames)
        if not data:
            return None
        _, channels, width = self._format
        if width == 1:
            data = audioop.bias(data, 1, -128)  # 8-bit WAV samples are unsigned
        if width != SAMPLE_WIDTH:
            data = audioop.lin2lin(data, width, SAMPLE_WIDTH)
        if channels == 2:
            data = audioop.tomono(data, SAMPLE_WIDTH, 0.5, 0.5)
        data = self._resample(data)
        if self.realtime:
            # A microphone hands over a chunk only once it has been spoken.
            now = time.monotonic()
            self._started = now if self._started is None else self._started
            self._delivered += len(data)
            time.sleep(max(0.0, self._started + self._delivered / (SAMPLE_WIDTH * SAMPLE_RATE) - now))
        return data

    def close(self) -> None:
        """Close the file."""
        if not self._closed:
            self._closed = True
            self._wav.close()


class WavFileSink(AudioSink):
    """Writes everything played, in order, into one mono 16-bit WAV file."""

    def __init__(self, path: str | Path, rate: int | None = None, realtime: bool = False) -> None:
        """Write to ``path`` at ``rate`` hertz (None: the rate first played, or 16 kHz if nothing is played).

        Audio played at another rate is resampled. With ``realtime`` each ``play`` lasts as long as
        the audio, like a loudspeaker, so barge-in can be exercised without a sound card.
        """
        self.path, self.rate, self.realtime = Path(path), rate, realtime
        self._wav: wave.Wave_write | None = None
        self._closed = False
        self._lock = threading.Lock()

    def play(self, pcm: bytes, rate: int, stop: threading.Event | None = None) -> bool:
        """Append ``pcm`` to the file; False if ``stop`` interrupted it (what was played so far stays)."""
        with self._lock:
            if self._closed:
                raise AudioDeviceError("WAV sink %s is closed" % self.path)
            wav = self._open(rate)
            resample = Resampler(rate, wav.getframerate())
            return _play_blocks(pcm, rate, stop, lambda data: wav.writeframes(resample(data)), self.realtime)

    def _open(self, rate: int) -> wave.Wave_write:
        """Create the WAV file on first use."""
        if self._wav is None:
            self.rate = self.rate or rate
            try:
                self._wav = wave.open(str(self.path), "wb")
            except OSError as error:
                raise InputError("cannot write WAV file %s: %s" % (self.path, error.strerror)) from None
            self._wav.setparams((1, SAMPLE_WIDTH, self.rate, 0, "NONE", "not compressed"))
        return self._wav

    def close(self) -> None:
        """Finish the file (an empty WAV when nothing was played)."""
        with self._lock:
            if not self._closed:
                self._open(self.rate or SAMPLE_RATE).close()
                self._closed = True


class NullSink(AudioSink):
    """Discards audio; with ``realtime`` each play lasts as long as the audio would."""

    def __init__(self, realtime: bool = False) -> None:
        """Create a sink that plays into the void."""
        self.realtime = realtime

    def play(self, pcm: bytes, rate: int, stop: threading.Event | None = None) -> bool:
        """Pretend to play ``pcm``; False if ``stop`` was set before the end."""
        return _play_blocks(pcm, rate, stop, lambda block: None, self.realtime)

    def close(self) -> None:
        """Nothing to release."""


# -- sound cards through sounddevice (PortAudio) ---------------------------------------------------


def _sounddevice(missing: str) -> ModuleType:
    """Import sounddevice, or raise AudioDeviceError starting with ``missing`` if PortAudio is absent."""
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise AudioDeviceError("%s: %s; install libportaudio2" % (missing, error)) from None
    return sounddevice


def available_devices(kind: str) -> list[str]:
    """Names of the devices sounddevice lists for ``kind`` ('input' or 'output'), e.g. for a doctor."""
    sd = _sounddevice(NO_MICROPHONE if kind == "input" else NO_SPEAKER)
    return [info["name"] for info in sd.query_devices() if info["max_%s_channels" % kind] > 0]


def _find_device(sd: ModuleType, device: str | int | None, kind: str) -> dict[str, Any]:
    """Describe the ``kind`` ('input'/'output') device: a name, an index, or ''/None for the default."""
    if isinstance(device, str):  # configuration gives devices as text
        device = int(device) if device.strip().isdigit() else (device.strip() or None)
    try:
        return dict(sd.query_devices(device, kind=kind))
    except (ValueError, sd.PortAudioError) as error:
        listed = ", ".join(repr(name) for name in available_devices(kind)) or "none"
        wanted = "the default %s device" % kind if device is None else "%s device %r" % (kind, device)
        problem = "%s is unavailable (%s); %s devices: %s" % (wanted, error, kind, listed)
    raise AudioDeviceError("%s: %s" % (NO_MICROPHONE if kind == "input" else NO_SPEAKER, problem))


def _device_rate(sd: ModuleType, info: dict[str, Any], kind: str, rate: int) -> int:
    """``rate`` if the device takes mono int16 at it, else the device's default rate (resampled to)."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    for candidate in (rate, int(info["default_samplerate"])):
        try:
            check(device=info["index"], samplerate=candidate, channels=1, dtype="int16")
            return candidate
        except (ValueError, sd.PortAudioError) as error:
            problem = error
    missing = NO_MICROPHONE if kind == "input" else NO_SPEAKER
    raise AudioDeviceError("%s: %r takes no mono 16-bit audio (%s)" % (missing, info["name"], problem))


def _failure(missing: str, doing: str, info: dict[str, Any], error: Exception) -> AudioDeviceError:
    """The error for a device that was found but failed while ``doing`` something."""
    return AudioDeviceError("%s: %s %r failed (%s)" % (missing, doing, info["name"], error))


class MicrophoneSource(AudioSource):
    """Captures 16 kHz mono int16 chunks from a sound card with sounddevice (blocking reads)."""

    def __init__(self, device: str | int | None = None, chunk_ms: int = CHUNK_MS) -> None:
        """Open the input ``device`` (name, index, or None/'' for the default) and start capturing.

        A device that cannot record at 16 kHz records at its default rate, resampled. Raises
        AudioDeviceError ("未找到麦克风 / no microphone found: …") when it cannot be used.
        """
        if chunk_ms <= 0:
            raise InputError("chunk_ms must be a positive number of milliseconds, not %r" % chunk_ms)
        self._sd = sd = _sounddevice(NO_MICROPHONE)
        self.device = _find_device(sd, device, "input")
        rate = _device_rate(sd, self.device, "input", SAMPLE_RATE)
        self._frames = max(1, rate * chunk_ms // 1000)
        self._resample = Resampler(rate, SAMPLE_RATE)
        self._lock = threading.Lock()
        self._stream: Any = None
        try:
            self._stream = sd.RawInputStream(rate, self._frames, self.device["index"], 1, "int16")
            self._stream.start()
        except sd.PortAudioError as error:
            self.close()
            raise _failure(NO_MICROPHONE, "opening", self.device, error) from None
        logger.info("microphone %r open at %d Hz", self.device["name"], rate)

    def read(self) -> bytes | None:
        """Block until the next chunk has been recorded and return it; None once closed."""
        with self._lock:
            if self._stream is None:
                return None
            try:
                data, overflowed = self._stream.read(self._frames)
            except self._sd.PortAudioError as error:
                raise _failure(NO_MICROPHONE, "reading", self.device, error) from None
        if overflowed:
            logger.debug("microphone overflow: some audio was lost")
        return self._resample(bytes(data))

    def close(self) -> None:
        """Stop capturing and release the device (waits for a read in progress)."""
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None


class SpeakerSink(AudioSink):
    """Plays PCM on a sound card with sounddevice, in blocks of at most 50 ms (barge-in aware)."""

    def __init__(self, device: str | int | None = None, device_rate: int | None = None) -> None:
        """Find the output ``device`` (name, index, or None/'' for the default).

        Audio is played at its own rate when the device accepts it, otherwise resampled to
        ``device_rate`` or the device's default rate. Raises AudioDeviceError
        ("未找到扬声器 / no speaker found: …") when no such device exists.
        """
        self._sd = sd = _sounddevice(NO_SPEAKER)
        self.device = _find_device(sd, device, "output")
        self.device_rate = device_rate
        # Probed once per audio rate: probing reopens an ALSA device, which truncates a file device.
        self._rates: dict[int, int] = {}
        self._stream: Any = None
        self._lock = threading.RLock()

    def play(self, pcm: bytes, rate: int, stop: threading.Event | None = None) -> bool:
        """Play ``pcm``, returning once it has been heard; False, dropping the rest, if ``stop`` is set."""
        with self._lock:
            stream = self._open(rate)
            resample = Resampler(rate, int(stream.samplerate))

            def write(block: bytes) -> None:
                if stream.write(resample(block)):
                    logger.debug("loudspeaker underflow")

            finished = False
            try:
                stream.start()
                finished = _play_blocks(pcm, rate, stop, write, realtime=False)
            except self._sd.PortAudioError as error:
                raise _failure(NO_SPEAKER, "playing on", self.device, error) from None
            finally:
                # Done: wait until the buffered audio has been heard. Barge-in or error: drop it at once.
                stream.stop() if finished else stream.abort()
            return finished

    def _open(self, rate: int) -> Any:
        """Return an output stream for audio at ``rate``, reusing the open one when its rate fits."""
        if rate not in self._rates:
            self._rates[rate] = self.device_rate or _device_rate(self._sd, self.device, "output", rate)
        wanted = self._rates[rate]
        if self._stream is not None and int(self._stream.samplerate) == wanted:
            return self._stream
        self.close()
        try:
            self._stream = self._sd.RawOutputStream(wanted, None, self.device["index"], 1, "int16")
        except self._sd.PortAudioError as error:
            raise _failure(NO_SPEAKER, "opening", self.device, error) from None
        logger.info("loudspeaker %r open at %d Hz", self.device["name"], wanted)
        return self._stream

    def close(self) -> None:
        """Release the device (waits for a play in progress)."""
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None


def open_microphone(device: str | int | None = None, chunk_ms: int = CHUNK_MS) -> MicrophoneSource:
    """Open microphone ``device`` ('' or None: default), or raise AudioDeviceError (no microphone found)."""
    return MicrophoneSource(device, chunk_ms=chunk_ms)


def open_speaker(device: str | int | None = None) -> SpeakerSink:
    """Open loudspeaker ``device`` ('' or None: default), or raise AudioDeviceError (no speaker found)."""
    return SpeakerSink(device)
