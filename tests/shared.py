"""Shared test helpers: synthetic speech with espeak-ng and 16 kHz mono PCM utilities.

Audio crosses these helpers as raw int16 little-endian mono PCM bytes at 16 kHz, the format every
recogniser in yinling accepts.
"""

from __future__ import annotations

import array
import datetime as dt
import math
import os
import random
import socket
import subprocess
import sys
import wave
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

RATE = 16000
"""Sample rate of all test PCM (hertz)."""

SAMPLE_WIDTH = 2
"""Bytes per sample of all test PCM (int16)."""


def synthesize_wav(text: str, voice: str, path: Path, speed: int = 140) -> Path:
    """Speak ``text`` with espeak-ng voice ``voice`` into the WAV file ``path`` and return the path.

    ``speed`` is espeak-ng's rate in words per minute. Raises ``RuntimeError`` with espeak-ng's
    message if the synthesis fails (unknown voice, missing program).
    """
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or not path.exists():
        raise RuntimeError("espeak-ng failed for voice %s: %s" % (voice, done.stderr.strip()))
    return path


def _to_int16_mono(frames: bytes, width: int, channels: int) -> array.array:
    """Decode WAV frames of 8/16/24/32-bit PCM into int16 mono samples (channels averaged)."""
    if width == 2:
        samples = array.array("h", frames)
        if sys.byteorder == "big":
            samples.byteswap()
    elif width == 1:
        samples = array.array("h", ((b - 128) << 8 for b in frames))
    elif width in (3, 4):
        samples = array.array(
            "h",
            (
                int.from_bytes(frames[i : i + width], "little", signed=True) >> (8 * (width - 2))
                for i in range(0, len(frames), width)
            ),
        )
    else:
        raise ValueError("unsupported WAV sample width: %d bytes" % width)
    if channels == 1:
        return samples
    return array.array(
        "h",
        (sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)),
    )


def resample(samples: array.array, rate_in: int, rate_out: int = RATE) -> array.array:
    """Resample int16 samples by linear interpolation (adequate for speech test material)."""
    if rate_in == rate_out or not samples:
        return array.array("h", samples)
    count = len(samples) * rate_out // rate_in
    step = rate_in / rate_out
    last = len(samples) - 1
    out = array.array("h", bytes(2 * count))
    for i in range(count):
        pos = i * step
        left = int(pos)
        right = left + 1 if left < last else last
        frac = pos - left
        out[i] = int(samples[left] + (samples[right] - samples[left]) * frac)
    return out


def read_pcm16k(path: Path) -> bytes:
    """Read a PCM WAV file of any rate and channel count as 16 kHz mono int16 little-endian bytes."""
    with wave.open(str(path), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        samples = _to_int16_mono(frames, wav.getsampwidth(), wav.getnchannels())
        samples = resample(samples, wav.getframerate(), RATE)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def write_pcm16k(pcm: bytes, path: Path) -> Path:
    """Write 16 kHz mono int16 PCM bytes to a WAV file (handy to listen to a failing test's input)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    return path


def silence(seconds: float) -> bytes:
    """Digital silence of ``seconds`` as 16 kHz mono int16 PCM bytes."""
    return bytes(SAMPLE_WIDTH * int(round(seconds * RATE)))


def pcm_seconds(pcm: bytes) -> float:
    """Duration of 16 kHz mono int16 PCM bytes in seconds."""
    return len(pcm) / (SAMPLE_WIDTH * RATE)


def chunks(pcm: bytes, size: int = 3200) -> Iterator[bytes]:
    """Split PCM into chunks of ``size`` bytes (the last may be shorter); 3200 bytes = 0.1 s."""
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


# -- generic PCM, WAV, ALSA file devices and subprocess helpers (audio and speech tests) ------------

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (so a child Python process imports this checkout)."""


def noise_pcm(seconds: float, rate: int = RATE, seed: int = 0, amplitude: int = 12000) -> bytes:
    """Reproducible pseudo-random int16 mono PCM: every sample differs, so bit-exact checks mean something."""
    generator = random.Random(seed)
    samples = array.array("h", (generator.randint(-amplitude, amplitude) for _ in range(int(seconds * rate))))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def tone_pcm(seconds: float, frequency: float = 440.0, rate: int = RATE, amplitude: int = 8000) -> bytes:
    """A sine tone as int16 mono PCM."""
    step = 2 * math.pi * frequency / rate
    samples = array.array("h", (int(amplitude * math.sin(step * i)) for i in range(int(seconds * rate))))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def pcm_rms(pcm: bytes) -> float:
    """Root-mean-square level of int16 PCM (0.0 for digital silence or no samples)."""
    samples = array.array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def write_wav(path: Path, frames: bytes, rate: int = RATE, channels: int = 1, width: int = 2) -> Path:
    """Write raw interleaved ``frames`` as a PCM WAV file of any rate, channel count and sample width."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return path


def write_alsa_file_devices(home: Path, devices: Mapping[str, Mapping[str, Path]]) -> Path:
    """Declare ALSA ``type file`` PCM devices in ``home/.asoundrc`` and return the file.

    ``devices`` maps a PCM name to ``{"file": Path, "infile": Path}``: what is played is written to
    ``file`` (raw samples, in the format the stream was opened with); capture reads ``infile``.
    Every (re)opening of a device starts a new output file (``file``, ``file.0001``, ...): with
    ``truncate false`` nothing is overwritten. The slave is ALSA's ``null`` device, so nothing is
    paced in real time. PortAudio reads the file at start-up: use it in a child process whose
    ``HOME`` is ``home`` (see :func:`run_python`).
    """
    blocks = []
    for name, files in devices.items():
        lines = ["pcm.%s {" % name, "    type file", '    slave.pcm "null"', '    format "raw"']
        lines += ["    truncate false", '    file "%s"' % files["file"]]
        if "infile" in files:
            lines.append('    infile "%s"' % files["infile"])
        blocks.append("\n".join(lines + ["}"]))
    home.mkdir(parents=True, exist_ok=True)
    asoundrc = home / ".asoundrc"
    asoundrc.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return asoundrc


def played_files(file: Path) -> bytes:
    """Everything an ALSA file device declared by :func:`write_alsa_file_devices` wrote, in order."""
    parts = sorted(file.parent.glob(file.name + "*"), key=lambda p: (len(p.name), p.name))
    return b"".join(part.read_bytes() for part in parts)


def run_python(code: str, home: Path | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python process from the repository root, with ``HOME`` set to ``home``.

    A fresh process matters for sound devices: PortAudio and ALSA read their configuration once.
    """
    env = dict(os.environ)
    if home is not None:
        env["HOME"] = str(home)
        env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


class FakeClock:
    """A settable, timezone-aware clock."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium; Playwright cannot download its own browser here."""
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def sync_playwright() -> Any:
    """Playwright's sync API, or a failure that says what is missing (browser tests never skip)."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]' (playwright>=1.40).")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-wqy-microhei (see .ci/run).")
    return start


def launch_chromium(playwright: Any) -> Any:
    """The system Chromium, headless, with the flags this machine's closed network needs."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
