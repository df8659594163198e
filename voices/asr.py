"""Speech recognition with Vosk: the loaded model and its vocabulary, streaming partial and final results.

Audio is int16 little-endian mono PCM at 16 kHz in chunks of any length; times are seconds since the
start of the stream. Vosk 0.3.45 has no endpointer API (``SetEndpointerMode``/``SetEndpointerDelays``
came later), so utterances end by the ``--endpoint.*`` rules of the model's ``conf/model.conf``.
Keyword spotting and two-stage listening, built on :class:`StreamingRecognizer`, are in ``voices/listen.py``.
"""

from __future__ import annotations

import json
import logging
import mmap
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vosk

from assistant.errors import ConfigError, ModelError, SpeechError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Sample rate of all recogniser audio (hertz)."""
ENDPOINTER_API = hasattr(vosk.KaldiRecognizer, "SetEndpointerMode")
"""Whether this vosk can change endpointing per recogniser (False for vosk 0.3.45)."""
UNK = "[unk]"
"""How the unknown word appears in results, whatever the model's own symbol ("<UNK>" in the Korean one)."""
BLOCK_BYTES = 3200
"""Longest audio block handed to Vosk at once (0.1 s): Vosk looks for an endpoint once per call, so long
chunks are cut."""
BYTES_PER_SECOND = 2 * SAMPLE_RATE
"""Bytes of int16 mono PCM per second of audio."""
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
        self._partial_words, self._partial_bytes = partial_words, int(partial_interval * BYTES_PER_SECOND)
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
        return self._fed / BYTES_PER_SECOND + self._offset

    def accept(self, pcm: bytes) -> list[RecognizerEvent]:
        """Feed audio; returns Partial events (when the partial changes) and a Final at each endpoint."""
        data = self._carry + pcm
        usable = len(data) - len(data) % 2
        self._carry = data[usable:]
        events: list[RecognizerEvent] = []
        for start in range(0, usable, BLOCK_BYTES):
            block = data[start : min(start + BLOCK_BYTES, usable)]
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
            self._offset = now - self._fed / BYTES_PER_SECOND

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
