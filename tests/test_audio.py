"""Tests of voices.audio: WAV sources and sinks, barge-in, and real sound devices through ALSA files."""

from __future__ import annotations

import json
import threading
import time
import wave
from pathlib import Path

import pytest

from assistant.errors import AudioDeviceError, InputError
from tests.shared import noise_pcm, played_files, run_python, tone_pcm, write_alsa_file_devices, write_wav
from voices.audio import (
    NO_MICROPHONE, NO_SPEAKER, NullSink, WavFileSink, WavFileSource, open_microphone, open_speaker,
)


def read_all(source: WavFileSource) -> list[bytes]:
    """Every chunk of ``source`` until its end."""
    chunks = []
    while (chunk := source.read()) is not None:
        chunks.append(chunk)
    return chunks


def wav_content(path: Path) -> tuple[int, int, int, bytes]:
    """(rate, channels, sample width, frames) of a WAV file."""
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.readframes(wav.getnframes())


# -- WAV files -------------------------------------------------------------------------------------


def test_wav_source_then_sink_round_trip_is_bit_exact(tmp_path: Path) -> None:
    pcm = noise_pcm(1.234, seed=1)
    write_wav(tmp_path / "in.wav", pcm)
    with WavFileSource(tmp_path / "in.wav") as source:
        chunks = read_all(source)
        assert source.read() is None
    assert [len(c) for c in chunks[:-1]] == [3200] * 12  # 100 ms chunks, the last one shorter
    assert b"".join(chunks) == pcm
    with WavFileSink(tmp_path / "out.wav") as sink:
        for chunk in chunks:
            assert sink.play(chunk, 16000) is True
    assert wav_content(tmp_path / "out.wav") == (16000, 1, 2, pcm)


def test_wav_source_chunk_length_follows_chunk_ms(tmp_path: Path) -> None:
    write_wav(tmp_path / "in.wav", noise_pcm(0.1))
    with WavFileSource(tmp_path / "in.wav", chunk_ms=20) as source:
        assert [len(c) for c in read_all(source)] == [640] * 5


def test_wav_sink_keeps_first_rate_and_resamples_later_audio(tmp_path: Path) -> None:
    with WavFileSink(tmp_path / "out.wav") as sink:
        sink.play(tone_pcm(0.5, rate=22050), 22050)
        sink.play(tone_pcm(0.5, rate=16000), 16000)
    rate, channels, width, frames = wav_content(tmp_path / "out.wav")
    assert (rate, channels, width) == (22050, 1, 2)
    assert abs(len(frames) / 2 / 22050 - 1.0) < 0.01


def test_wav_sink_with_nothing_played_writes_an_empty_16k_file(tmp_path: Path) -> None:
    WavFileSink(tmp_path / "out.wav").close()
    assert wav_content(tmp_path / "out.wav") == (16000, 1, 2, b"")


def test_wav_source_rejects_other_formats_naming_file_and_format(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "cd.wav", tone_pcm(0.1, rate=44100) * 2, rate=44100, channels=2)
    with pytest.raises(InputError) as caught:
        WavFileSource(path)
    assert str(path) in str(caught.value)
    assert "44100 Hz stereo 16-bit" in str(caught.value)
    assert "16000 Hz mono 16-bit" in str(caught.value)


def test_wav_source_converts_rate_and_channels_on_request(tmp_path: Path) -> None:
    mono = tone_pcm(1.0, rate=44100)
    stereo = b"".join(mono[i : i + 2] * 2 for i in range(0, len(mono), 2))
    path = write_wav(tmp_path / "cd.wav", stereo, rate=44100, channels=2)
    with WavFileSource(path, convert=True) as source:
        pcm = b"".join(read_all(source))
    assert abs(len(pcm) / 2 / 16000 - 1.0) < 0.01


def test_wav_source_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.wav"):
        WavFileSource(tmp_path / "missing.wav")
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(InputError, match=r"notes\.wav is not a PCM WAV file"):
        WavFileSource(tmp_path / "notes.wav")


def test_realtime_wav_source_is_paced_like_a_microphone(tmp_path: Path) -> None:
    write_wav(tmp_path / "in.wav", noise_pcm(0.5))
    started = time.monotonic()
    with WavFileSource(tmp_path / "in.wav", realtime=True) as source:
        read_all(source)
    assert 0.45 <= time.monotonic() - started < 1.5


def test_sinks_reject_odd_length_pcm(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="16-bit"):
        NullSink().play(b"\x00\x01\x02", 16000)


# -- barge-in --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wav", "null"])
def test_stop_event_interrupts_playback_within_100_ms(tmp_path: Path, kind: str) -> None:
    sink = WavFileSink(tmp_path / "out.wav", realtime=True) if kind == "wav" else NullSink(realtime=True)
    stop = threading.Event()
    result: list[bool] = []
    finished = threading.Event()

    def play() -> None:
        result.append(sink.play(tone_pcm(5.0), 16000, stop))
        finished.set()

    player = threading.Thread(target=play, daemon=True)
    player.start()
    assert not finished.wait(0.3)  # still speaking
    stop.set()
    stopped_at = time.monotonic()
    assert finished.wait(2.0)
    assert time.monotonic() - stopped_at < 0.1
    assert result == [False]
    sink.close()
    if kind == "wav":
        _, _, _, frames = wav_content(tmp_path / "out.wav")
        assert 0.25 <= len(frames) / 2 / 16000 <= 0.45  # what was heard before the interruption


def test_stop_set_beforehand_plays_nothing(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with WavFileSink(tmp_path / "out.wav") as sink:
        assert sink.play(tone_pcm(1.0), 16000, stop) is False
    assert wav_content(tmp_path / "out.wav")[3] == b""


# -- sound devices ---------------------------------------------------------------------------------


def test_open_microphone_with_no_such_device_says_so_in_both_languages() -> None:
    with pytest.raises(AudioDeviceError) as caught:
        open_microphone("no-such-microphone")
    assert str(caught.value).startswith("未找到麦克风 / no microphone found: ")
    assert "no-such-microphone" in str(caught.value)
    with pytest.raises(AudioDeviceError, match="^未找到扬声器 / no speaker found: "):
        open_speaker("no-such-speaker")


def test_no_default_microphone_on_a_machine_without_devices(tmp_path: Path) -> None:
    child = run_python(
        "import sounddevice, json\n"
        "from voices.audio import open_microphone, AudioDeviceError\n"
        "inputs = [d for d in sounddevice.query_devices() if d['max_input_channels'] > 0]\n"
        "try:\n    open_microphone(None); print(json.dumps([len(inputs), 'opened']))\n"
        "except AudioDeviceError as error:\n    print(json.dumps([len(inputs), str(error)]))\n",
        home=tmp_path,
    )
    inputs, outcome = json.loads(child.stdout)
    if inputs:  # a machine with a real sound card: the default microphone exists
        assert outcome == "opened"
    else:
        assert outcome.startswith(NO_MICROPHONE + ": the default input device is unavailable")


def test_missing_portaudio_is_reported_as_no_microphone() -> None:
    child = run_python(
        "import sys\nsys.modules['sounddevice'] = None  # as if libportaudio2 were not installed\n"
        "from voices.audio import open_microphone, open_speaker, AudioDeviceError\n"
        "for opener in (open_microphone, open_speaker):\n"
        "    try:\n        opener()\n    except AudioDeviceError as error:\n        print(error)\n"
    )
    lines = child.stdout.splitlines()
    assert lines[0].startswith(NO_MICROPHONE + ": ") and lines[1].startswith(NO_SPEAKER + ": ")


@pytest.fixture
def alsa_home(tmp_path: Path) -> Path:
    """A HOME whose .asoundrc declares a file-backed microphone and loudspeaker."""
    (tmp_path / "in.raw").write_bytes(noise_pcm(2.0, seed=7))
    write_alsa_file_devices(
        tmp_path / "home",
        {
            "yinling_mic": {"infile": tmp_path / "in.raw", "file": tmp_path / "mic-copy.raw"},
            "yinling_speaker": {"file": tmp_path / "out.raw"},
        },
    )
    return tmp_path


def test_microphone_captures_exactly_what_the_alsa_device_delivers(alsa_home: Path) -> None:
    child = run_python(
        "from voices.audio import open_microphone\n"
        "with open_microphone('yinling_mic') as mic:\n"
        "    chunks = [mic.read() for _ in range(10)]\n"
        "open(%r, 'wb').write(b''.join(chunks))\n"
        "print([len(c) for c in chunks])\n" % str(alsa_home / "captured.raw"),
        home=alsa_home / "home",
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str([3200] * 10)
    assert (alsa_home / "captured.raw").read_bytes() == (alsa_home / "in.raw").read_bytes()[:32000]


def test_speaker_writes_the_played_samples_to_the_alsa_device(alsa_home: Path) -> None:
    first, second = noise_pcm(0.5, seed=1), noise_pcm(0.75, seed=2)
    (alsa_home / "first.raw").write_bytes(first)
    (alsa_home / "second.raw").write_bytes(second)
    child = run_python(
        "from voices.audio import open_speaker\n"
        "first, second = open(%r, 'rb').read(), open(%r, 'rb').read()\n"
        "with open_speaker('yinling_speaker') as speaker:\n"
        "    print(speaker.play(first, 16000), speaker.play(second, 16000), speaker.play(first, 22050))\n"
        % (str(alsa_home / "first.raw"), str(alsa_home / "second.raw")),
        home=alsa_home / "home",
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["True", "True", "True"]
    # The device accepts 22050 Hz as it is, so all three are written unchanged and in order.
    assert played_files(alsa_home / "out.raw") == first + second + first


def test_speaker_resamples_for_a_device_rate_and_stops_between_50_ms_blocks(alsa_home: Path) -> None:
    child = run_python(
        "import threading\n"
        "from voices.audio import SpeakerSink\n"
        "from tests.shared import tone_pcm\n"
        "class StopAfter(threading.Event):\n"
        "    '''A stop event that becomes set after it has been looked at n times.'''\n"
        "    def __init__(self, n):\n        super().__init__(); self.n = n\n"
        "    def is_set(self):\n        self.n -= 1\n        return self.n < 0\n"
        "with SpeakerSink('yinling_speaker', device_rate=48000) as speaker:\n"
        "    print(speaker.play(tone_pcm(1.0), 16000))\n"
        "    print(speaker.play(tone_pcm(1.0), 16000, StopAfter(4)))\n",
        home=alsa_home / "home",
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["True", "False"]
    played = played_files(alsa_home / "out.raw")
    # one second at 48 kHz, then exactly four 50 ms blocks before the stop was seen
    assert abs(len(played) / 2 - 48000 * 1.2) <= 48
