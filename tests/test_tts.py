"""Tests of voices.tts with the real espeak-ng engine (through pyttsx3)."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from assistant.errors import SpeechError
from tests.shared import pcm_rms
from voices.tts import DEFAULT_VOICE, Audio, EspeakSynthesizer

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "张阿姨，现在是八点半。"


@pytest.fixture(scope="module")
def synthesizer() -> EspeakSynthesizer:
    return EspeakSynthesizer()


def test_chinese_synthesis_is_speech_of_plausible_length(synthesizer: EspeakSynthesizer) -> None:
    audio = synthesizer.synthesize(PROMPT)
    assert audio.rate == 22050
    # 10 syllables at 120 words per minute, with pauses: a few seconds, not a blip and not a minute.
    assert 2.0 < audio.duration < 8.0
    assert pcm_rms(audio.pcm) > 500
    samples = memoryview(audio.pcm).cast("h")
    assert max(samples) > 5000 and min(samples) < -5000


def test_longer_text_gives_longer_speech(synthesizer: EspeakSynthesizer) -> None:
    short = synthesizer.synthesize("您好。")
    long = synthesizer.synthesize("您好，今天天气很好，我们一起去公园散散步吧。")
    assert long.duration > 2 * short.duration


def test_the_voice_is_mandarin_with_pinyin(synthesizer: EspeakSynthesizer) -> None:
    synthesizer.synthesize(PROMPT)
    assert synthesizer.voice == DEFAULT_VOICE == "sit/cmn-latn-pinyin"
    assert synthesizer.current_voice() == "sit/cmn-latn-pinyin"
    defaults = tomllib.loads((ROOT / "config" / "default.toml").read_text("utf-8"))
    assert defaults["speech"]["tts_voice"].lower() == DEFAULT_VOICE


def test_unknown_voice_is_a_speech_error_naming_it() -> None:
    with pytest.raises(SpeechError, match="'xx/no-such-voice' is not installed"):
        EspeakSynthesizer(voice="xx/no-such-voice")


def test_out_of_range_settings_are_speech_errors() -> None:
    with pytest.raises(SpeechError, match="rate"):
        EspeakSynthesizer(rate=20)
    with pytest.raises(SpeechError, match="volume"):
        EspeakSynthesizer(volume=1.5)


def test_other_settings_in_the_same_process_are_refused(synthesizer: EspeakSynthesizer) -> None:
    synthesizer.synthesize(PROMPT)
    with pytest.raises(SpeechError, match="cannot change them after the first utterance"):
        EspeakSynthesizer(rate=synthesizer.rate + 40)
    # The same settings are fine (espeak-ng's output varies by a few samples from one call to the next).
    same = EspeakSynthesizer(cache_size=0).synthesize(PROMPT)
    assert abs(same.duration - synthesizer.synthesize(PROMPT).duration) < 0.1


def test_repeated_prompts_come_from_the_cache(synthesizer: EspeakSynthesizer) -> None:
    first = synthesizer.synthesize("没听清楚，您再说一遍好吗？")
    started = time.perf_counter()
    again = synthesizer.synthesize("没听清楚，您再说一遍好吗？")
    assert again is first
    assert time.perf_counter() - started < 0.005


def test_synthesis_is_fast_enough_for_the_300_ms_budget(synthesizer: EspeakSynthesizer) -> None:
    started = time.perf_counter()
    synthesizer.synthesize("李大爷，现在是下午两点一刻。")
    assert time.perf_counter() - started < 0.3


def test_empty_text_is_empty_audio(synthesizer: EspeakSynthesizer) -> None:
    assert synthesizer.synthesize("  ") == Audio(b"", 22050)
