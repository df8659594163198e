"""Tests of voices/listen.py (keyword spotting, two-stage listening, the bundled decoys) with the real Vosk
engine and the Korean model, on espeak-ng Korean speech; and of how assistant/voice_mode.py builds the
listener from the configuration (wake word, emergency phrases, decoys).

The model, the speech fixture and the Korean phrases come from tests/test_asr.py (see there why Korean).
"""

from __future__ import annotations

import logging

import pytest

from assistant.config import load
from assistant.voice_mode import build_listener
from intents.pinyin import syllables
from tests.shared import chunks, pcm_seconds, read_pcm16k, silence
from voices.asr import SpeechModel, StreamingRecognizer
from voices.listen import (
    Emergency,
    KeywordSpotter,
    ListenerState,
    Request,
    RequestTimeout,
    SpeechStarted,
    TwoStageListener,
    WakeWord,
    bundled_decoys,
)

from .test_asr import DECOYS, EMERGENCIES, OTHER_SPEECH, REAL_AUDIO, WAKE, Say, feed_all
from .test_asr import model, say  # noqa: F401 (fixtures shared with tests/test_asr.py)


def spotter(model: SpeechModel) -> KeywordSpotter:
    return KeywordSpotter(model, [WAKE], list(EMERGENCIES), decoys=DECOYS)


def listener(model: SpeechModel, timeout: float = 8.0) -> TwoStageListener:
    return TwoStageListener(spotter(model), StreamingRecognizer(model), request_timeout=timeout)


# --- keyword spotting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"), [(WAKE, "wake"), (EMERGENCIES[0], "emergency"), (EMERGENCIES[1], "emergency")]
)
def test_spotter_finds_the_wake_word_and_emergency_phrases(model: SpeechModel, say: Say, text: str, kind: str) -> None:
    speech = say(text)
    found = feed_all(spotter(model).accept, silence(0.5) + speech + silence(1.5))
    assert [(s.kind, s.phrase) for s in found] == [(kind, text)]
    assert found[0].conf >= 0.6 and 0.5 < found[0].end_time <= 0.5 + pcm_seconds(speech)


def test_spotter_ignores_other_speech(model: SpeechModel, say: Say) -> None:
    audio = b"".join(silence(1.0) + say(text) for text in OTHER_SPEECH) + silence(1.5)
    assert feed_all(spotter(model).accept, audio) == []


def test_emergency_is_reported_from_partials_before_a_long_utterance_ends(model: SpeechModel, say: Say) -> None:
    speech = say("도와줘 넘어졌어요 일어날 수가 없어요 빨리 와 주세요")
    keyword_spotter, heard_at = spotter(model), []
    for index, chunk in enumerate(chunks(silence(0.5) + speech + silence(1.5))):
        heard_at += [(index + 1) * 0.1 for _ in keyword_spotter.accept(chunk)]
    assert len(heard_at) == 1  # one utterance, one spotting
    assert heard_at[0] < 0.5 + pcm_seconds(speech) - 1.0


def test_real_mandarin_recordings_trigger_nothing(model: SpeechModel) -> None:
    recordings = sorted(REAL_AUDIO.glob("*.wav"))
    assert len(recordings) >= 5
    audio = b"".join(silence(0.7) + read_pcm16k(path) for path in recordings) + silence(1.5)
    assert feed_all(spotter(model).accept, audio) == []


# --- two-stage listening -------------------------------------------------------------------------------


def test_wake_word_then_one_request_then_idle_again(model: SpeechModel, say: Say) -> None:
    two_stage = listener(model)
    events = feed_all(two_stage.feed, silence(0.5) + say(WAKE) + silence(0.8) + say(OTHER_SPEECH[0]) + silence(1.5))
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, WakeWord, SpeechStarted, Request]
    wake, request = events[1], events[3]
    assert wake.phrase == WAKE and request.text and request.start_time > wake.time
    assert two_stage.state is ListenerState.IDLE
    # Back to idle: more speech without the wake word is not a request.
    after = feed_all(two_stage.feed, say(OTHER_SPEECH[1]) + silence(1.5))
    assert [type(e) for e in after] == [SpeechStarted]


def test_emergency_without_wake_word(model: SpeechModel, say: Say) -> None:
    events = feed_all(listener(model).feed, silence(0.5) + say(EMERGENCIES[1]) + silence(1.5))
    assert [e for e in events if not isinstance(e, SpeechStarted)] == [Emergency(EMERGENCIES[1], events[-1].time)]


def test_emergency_while_listening_for_a_request(model: SpeechModel, say: Say) -> None:
    two_stage = listener(model)
    audio = silence(0.5) + say(WAKE) + silence(1.0) + say(EMERGENCIES[0]) + silence(1.5)
    events = [e for e in feed_all(two_stage.feed, audio) if not isinstance(e, SpeechStarted)]
    assert [type(e) for e in events] == [WakeWord, Emergency] and events[1].phrase == EMERGENCIES[0]
    assert two_stage.state is ListenerState.IDLE


def test_silence_alone_gives_nothing_and_an_unanswered_wake_word_times_out(model: SpeechModel, say: Say) -> None:
    two_stage = listener(model, timeout=3.0)
    assert feed_all(two_stage.feed, silence(6.0)) == []
    events = feed_all(two_stage.feed, say(WAKE) + silence(5.0))
    assert [type(e) for e in events] == [SpeechStarted, WakeWord, RequestTimeout]
    assert events[2].waited == pytest.approx(3.0, abs=0.15) and two_stage.state is ListenerState.IDLE


# --- decoys: bundled list and configuration ------------------------------------------------------------


def test_bundled_decoys_are_common_words_sharing_no_syllable_with_the_default_keywords() -> None:
    decoys = bundled_decoys()
    assert 120 <= len(decoys) <= 200 and len(set(decoys)) == len(decoys)
    speech = load(env={}).speech
    keywords = [speech.wake_word, *speech.emergency_phrases]
    keyword_sounds = {sound for phrase in keywords for sound in syllables(phrase)}
    assert not [d for d in decoys if any(d in k for k in keywords)]
    # Homophones of a keyword's syllables (就 for 救, 明 for 命) would compete with the keyword itself.
    assert not [(d, syllables(d)) for d in decoys if keyword_sounds & set(syllables(d))]


def test_listener_takes_configured_decoys_the_model_can_spell(model: SpeechModel,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # "도와" is not a word of the model; "비" is inside the wake word and would compete with it.
    speech = {"wake_word": WAKE, "emergency_phrases": list(EMERGENCIES), "decoys": ["가", "나", "도와", "비"]}
    with caplog.at_level(logging.DEBUG, logger="assistant.voice_mode"):
        built = build_listener(load(env={}, overrides={"speech": speech}), model)
    assert set(built.spotter.recognizer.phrases) == {WAKE, *EMERGENCIES, "가", "나"}
    assert "2 of 4 decoy phrases dropped" in caplog.text


def test_listener_falls_back_to_the_bundled_mandarin_decoys(model: SpeechModel,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    speech = {"wake_word": WAKE, "emergency_phrases": list(EMERGENCIES)}
    with caplog.at_level(logging.DEBUG, logger="assistant.voice_mode"):
        built = build_listener(load(env={}, overrides={"speech": speech}), model)
    # The Korean model spells no Mandarin word, so every bundled decoy is dropped, none is fatal.
    assert set(built.spotter.recognizer.phrases) == {WAKE, *EMERGENCIES}
    assert "%d of %d decoy phrases dropped" % ((len(bundled_decoys()),) * 2) in caplog.text
