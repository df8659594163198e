"""Speech recognition with Vosk: streaming results, grammar-mode keyword spotting, two-stage listening.

Audio is int16 little-endian mono PCM at 16 kHz in chunks of any length; times are seconds since the
start of the stream. Vosk 0.3.45 has no endpointer API (``SetEndpointerMode``/``SetEndpointerDelays``
came later), so utterances end by the ``--endpoint.*`` rules of the model's ``conf/model.conf``.
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import vosk

from assistant.errors import ConfigError, ModelError, SpeechError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Sample rate of all recogniser audio (hertz)."""
ENDPOINTER_API = hasattr(vosk.KaldiRecognizer, "SetEndpointerMode")
"""Whether this vosk can change endpointing per recogniser (False for vosk 0.3.45)."""
UNK = "[unk]"
"""How the unknown word appears in results, whatever the model's own symbol ("<UNK>" in the Korean one)."""
_BLOCK = 3200  # 0.1 s: Vosk looks for an endpoint once per AcceptWaveform call, so long chunks are cut
_BYTES_PER_SECOND = 2 * SAMPLE_RATE
_FST_MAGIC, _SYMBOLS_MAGIC = 2125659606, 2125658996  # OpenFst kFstMagicNumber, kSymbolTableMagicNumber
_NOT_WORDS = frozenset({"<eps>", "<s>", "</s>", "!SIL", "[unk]", "<UNK>", "<unk>", "<SPOKEN_NOISE>"})
_MAX_WORD_CHARS = 8


@dataclass(frozen=True)
class Word:
    """A recognised word: text, start and end (seconds since stream start), confidence (0..1)."""

    text: str
    start: float
    end: float
    conf: float


@dataclass(frozen=True)
class Partial:
    """The current guess while someone speaks; ``words`` only from recognisers with ``partial_words``."""

    text: str
    words: tuple[Word, ...] = ()
    utterance: int = 0


@dataclass(frozen=True)
class Final:
    """One utterance's result, at Vosk's endpoint or the end of the stream; ``utterance`` counts from 0."""

    text: str
    words: tuple[Word, ...]
    start_time: float
    end_time: float
    utterance: int = 0


RecognizerEvent = Partial | Final


def read_fst_output_symbols(path: Path) -> list[str] | None:
    """The output symbol table embedded in an OpenFst binary file, or None if it has none.

    Layout (OpenFst ``FstHeader``, ``SymbolTable``; little-endian): int32 magic; fst type and arc type
    as int32 length + bytes; int32 version, int32 flags, uint64 properties, int64 start, numstates,
    numarcs; then the input and output symbol tables (flag bits 1 and 2), each: int32 magic, name,
    int64 available key, int64 size, then size times (symbol, int64 key). Memory-mapped: only the
    header pages are read.
    """
    if path.stat().st_size < 4:
        return None
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0

        def take(fmt: str) -> tuple[int, ...]:
            nonlocal pos
            pos += struct.calcsize(fmt)
            return struct.unpack_from(fmt, data, pos - struct.calcsize(fmt))

        def string(skip: int = 0) -> str:
            nonlocal pos
            size = take("<i")[0]
            pos += size + skip
            if size < 0 or pos > len(data):
                raise struct.error("a string runs past the end of the file")
            return data[pos - size - skip : pos - skip].decode("utf-8", "replace")

        def table() -> list[str]:
            if take("<i")[0] != _SYMBOLS_MAGIC:
                raise ModelError("The symbol table in %s is not in OpenFst format; reinstall the model." % path)
            string()
            return [string(skip=8) for _ in range(take("<qq")[1])]

        try:
            if take("<i")[0] != _FST_MAGIC:
                return None
            string(), string()
            flags = take("<ii")[1]
            take("<Qqqq")
            if flags & 1:
                table()
            return table() if flags & 2 else None
        except struct.error as exc:
            raise ModelError("%s ends inside its header (%s); reinstall the model." % (path, exc)) from exc


class SpeechModel:
    """A loaded Vosk model and what it knows: vocabulary, ``unknown_word`` (its own symbol), endpoint rules."""

    def __init__(self, model: vosk.Model, path: Path) -> None:
        self.model, self.path = model, path
        self._vocabulary: frozenset[str] | None = None
        self._vocabulary_read = False
        known = (w for w in ("[unk]", "<UNK>", "<unk>") if model.vosk_model_find_word(w) >= 0)
        self.unknown_word = next(known, None)

    @classmethod
    def load(cls, path: str | Path) -> SpeechModel:
        """Load the model folder ``path``; raises ModelError (one sentence with the fix) if it is unusable."""
        root = Path(path)
        if not root.is_dir():
            raise ModelError("Speech model folder %s does not exist; install it with `yinling model install`." % root)
        graph = root / "graph"
        missing = [name for name in ("am/final.mdl", "conf/model.conf") if not (root / name).is_file()]
        if not ((graph / "HCLG.fst").is_file() or ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file())):
            missing.append("graph/HCLG.fst or graph/HCLr.fst + graph/Gr.fst")
        if missing:
            raise ModelError("Speech model folder %s is incomplete (missing %s); reinstall it with "
                             "`yinling model install`." % (root, ", ".join(missing)))
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(root))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise ModelError("Vosk could not load the speech model in %s (%s); reinstall it with "
                             "`yinling model install`." % (root, exc)) from exc
        logger.info("speech model loaded from %s", root)
        return cls(model, root)

    def knows(self, word: str) -> bool:
        """Whether ``word`` is in the vocabulary; asks Vosk's own symbol table, the one grammars are built from."""
        return word not in _NOT_WORDS and not word.startswith("#") and self.model.vosk_model_find_word(word) >= 0

    def vocabulary(self) -> frozenset[str] | None:
        """The words the model knows, from graph/words.txt or the table inside graph/Gr.fst; None if unknowable.

        Read on first call and cached (0.7 s and about 70 MB for the 503 345 words of the Korean model);
        :meth:`knows` and :meth:`tokenize` do not need it.
        """
        if not self._vocabulary_read:
            self._vocabulary_read = True
            words_txt, grammar_fst = self.path / "graph" / "words.txt", self.path / "graph" / "Gr.fst"
            symbols: Iterable[str] | None = None
            if words_txt.is_file():
                symbols = (line.split()[0] for line in words_txt.read_text("utf-8").splitlines() if line.strip())
            elif grammar_fst.is_file():
                symbols = read_fst_output_symbols(grammar_fst)
            if symbols is not None:
                self._vocabulary = frozenset(s for s in symbols if s not in _NOT_WORDS and not s.startswith("#"))
        return self._vocabulary

    def split(self, phrase: str) -> tuple[list[str], list[str]]:
        """Split ``phrase`` into vocabulary words; returns (words, parts not in the vocabulary).

        Space-separated parts are kept whole when known; unknown parts with Chinese characters are cut by
        greedy longest match over characters (Chinese is written without spaces).
        """
        words: list[str] = []
        missing: list[str] = []
        for part in phrase.split():
            known = self.knows(part)
            if known or not any("\u3400" <= char <= "\u9fff" for char in part):
                (words if known else missing).append(part)
                continue
            start = 0
            while start < len(part):
                end = next((e for e in range(min(len(part), start + _MAX_WORD_CHARS), start, -1)
                            if self.knows(part[start:e])), None)
                (words if end else missing).append(part[start : end or start + 1])
                start = end or start + 1
        return words, missing

    def tokenize(self, phrase: str) -> list[str] | None:
        """``phrase`` as a list of vocabulary words, or None if some part is not in the vocabulary."""
        words, missing = self.split(phrase)
        return None if missing or not words else words

    def endpoint_rules(self) -> dict[str, str]:
        """The ``--endpoint.*`` options of conf/model.conf, which decide when an utterance ends (vosk 0.3.45)."""
        conf = self.path / "conf" / "model.conf"
        options = conf.read_text("utf-8").split() if conf.is_file() else []
        return dict(o[2:].split("=", 1) for o in options if o.startswith("--endpoint.") and "=" in o)


class StreamingRecognizer:
    """Streaming recognition of one audio stream: Partial events while speaking, a Final per utterance.

    With ``grammar`` only those phrases (and the unknown word, reported as "[unk]") can be heard; a
    phrase with a word outside the vocabulary raises ModelError naming it, because Vosk would silently
    drop that word and keep the rest of the phrase. With ``partial_words`` a Partial also carries words
    with confidences, taken from Vosk's incrementally determinised lattice, so they lag the text (< ~1 s).
    ``endpointer_mode`` ("short", "long", ...) and ``endpointer_delays`` need vosk >= 0.3.50. Attributes:
    ``phrases`` (grammar phrase -> its words), ``utterance`` (index of the current utterance, grows at
    every endpoint, flush and reset), ``partial_text`` (latest partial, "" when nobody speaks).
    """

    def __init__(self, model: SpeechModel, grammar: Sequence[str] | None = None, *, partial_words: bool = False,
                 partial_interval: float = 0.1, endpointer_mode: str | None = None,
                 endpointer_delays: tuple[float, float, float] | None = None) -> None:
        self.model = model
        self.phrases: dict[str, tuple[str, ...]] = {}
        args = () if grammar is None else (self._grammar_json(grammar),)
        self._vosk = vosk.KaldiRecognizer(model.model, SAMPLE_RATE, *args)
        self._vosk.SetWords(True)
        if endpointer_mode is not None or endpointer_delays is not None:
            self._set_endpointer(endpointer_mode, endpointer_delays)
        self._partial_words, self._partial_bytes = partial_words, int(partial_interval * _BYTES_PER_SECOND)
        self._carry, self._fed, self._offset, self._since_partial = b"", 0, 0.0, 0
        self.utterance, self.partial_text = 0, ""
        self._last_partial: tuple[str, tuple[str, ...]] = ("", ())

    def _grammar_json(self, grammar: Sequence[str]) -> str:
        for phrase in (p for p in grammar if p != UNK):  # the unknown word is always added, as the model spells it
            words, missing = self.model.split(phrase)
            if missing or not words:
                raise ModelError("Grammar phrase %r cannot be recognised: %s not in the speech model's vocabulary."
                                 % (phrase, ", ".join(repr(m) for m in missing) or "it has no words"))
            self.phrases[phrase] = tuple(words)
        if not self.phrases:
            raise ModelError("A recognition grammar needs at least one phrase.")
        entries = list(dict.fromkeys(" ".join(words) for words in self.phrases.values()))
        return json.dumps(entries + ([self.model.unknown_word] if self.model.unknown_word else []), ensure_ascii=False)

    def _set_endpointer(self, mode: str | None, delays: tuple[float, float, float] | None) -> None:
        if not ENDPOINTER_API:
            raise ConfigError("Endpointer settings need vosk >= 0.3.50 (this vosk has no SetEndpointerMode); "
                              "leave them unset to use the model's conf/model.conf rules.")
        modes = {m.name.lower(): m for m in vosk.EndpointerMode}
        if mode is not None and mode not in modes:
            raise ConfigError("Endpointer mode %r is not one of %s." % (mode, ", ".join(modes)))
        if mode is not None:
            self._vosk.SetEndpointerMode(modes[mode])
        if delays is not None:
            self._vosk.SetEndpointerDelays(*delays)

    @property
    def now(self) -> float:
        """Stream time (seconds) of the next sample to be accepted."""
        return self._fed / _BYTES_PER_SECOND + self._offset

    def accept(self, pcm: bytes) -> list[RecognizerEvent]:
        """Feed audio; returns Partial events (when the partial changes) and a Final at each endpoint."""
        data = self._carry + pcm
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        events: list[RecognizerEvent] = []
        for start in range(0, usable, _BLOCK):
            block = data[start : min(start + _BLOCK, usable)]
            self._fed += len(block)
            self._since_partial += len(block)
            try:
                endpoint = self._vosk.AcceptWaveform(block)
            except Exception as exc:  # vosk raises a bare Exception("Failed to process waveform")
                raise SpeechError("Vosk failed to process audio: %s." % exc) from exc
            event = self._final(self._vosk.Result()) if endpoint else (
                self._partial() if self._since_partial >= self._partial_bytes else None)
            events += [event] if event else []
        return events

    def flush(self) -> Final | None:
        """End the stream: the last utterance's Final, or None if nothing was recognised."""
        self._carry = b""
        return self._final(self._vosk.FinalResult())

    def reset(self, now: float | None = None) -> None:
        """Drop the current utterance; ``now`` sets the stream time of the next accepted sample."""
        self._vosk.Reset()
        self._carry = b""
        self._end_utterance()
        if now is not None:
            self._offset = now - self._fed / _BYTES_PER_SECOND

    def _end_utterance(self) -> None:
        self.utterance += 1
        self.partial_text, self._last_partial = "", ("", ())

    def _words(self, items: list[dict[str, Any]]) -> tuple[Word, ...]:
        return tuple(Word(self._text(w["word"]), w["start"] + self._offset, w["end"] + self._offset,
                          w.get("conf", 1.0)) for w in items)

    def _text(self, text: str) -> str:
        return " ".join(UNK if w == self.model.unknown_word else w for w in text.split())

    def _final(self, raw: str) -> Final | None:
        result, utterance = json.loads(raw), self.utterance
        self._end_utterance()
        text, words = self._text(result.get("text", "")), self._words(result.get("result", []))
        if not text:
            return None
        start, end = (words[0].start, words[-1].end) if words else (self.now, self.now)
        return Final(text, words, start, end, utterance)

    def _partial(self) -> Partial | None:
        self._since_partial = 0
        self.partial_text = text = self._text(json.loads(self._vosk.PartialResult()).get("partial", ""))
        words: tuple[Word, ...] = ()
        if text and self._partial_words:  # text from the fast best path (prompt barge-in), words from the lattice
            self._vosk.SetPartialWords(True)
            words = self._words(json.loads(self._vosk.PartialResult()).get("partial_result", []))
            self._vosk.SetPartialWords(False)
        key = (text, tuple(w.text for w in words))
        if not text or key == self._last_partial:
            return None
        self._last_partial = key
        return Partial(text, words, self.utterance)


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
        for start in range(0, usable, _BLOCK):
            events += self._block(data[start : min(start + _BLOCK, usable)])
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
            events += self._listen(free_events, len(block) / _BYTES_PER_SECOND)
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
        skip = max(0, int((wake_end - self._recent_start) * _BYTES_PER_SECOND) // 2 * 2)
        self.free.reset(now=self._recent_start + skip / _BYTES_PER_SECOND)
        if any(isinstance(e, Final) for e in self.free.accept(self._recent[skip:])):
            self.free.reset(now=self.spotter.recognizer.now)  # the replay held only the wake word's tail
        logger.debug("listening for one request from %.2f s", wake_end)

    def _remember(self, block: bytes, now: float) -> None:
        if not self._recent:
            self._recent_start = now
        self._recent += block
        excess = len(self._recent) - 3 * _BYTES_PER_SECOND
        if excess > 0:
            self._recent = self._recent[excess:]
            self._recent_start += excess / _BYTES_PER_SECOND
