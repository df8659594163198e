"""Spoken prompts as data: the sentences the assistant says, and how it says a time aloud.

The sentences live in ``voices/prompts.yaml`` (key → one or more variants with ``{name}``
placeholders); this module loads and checks them, fills them in and rotates the variants so the
assistant does not sound like a recording. :func:`speakable_time` turns a clock time into the words
people use (08:30 → 八点半, 20:05 → 晚上八点零五分), with the words themselves taken from the YAML.
"""

from __future__ import annotations

import functools
import logging
import re
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import DataError, InputError

logger = logging.getLogger(__name__)

REQUIRED_KEYS: tuple[str, ...] = (
    "greeting", "wake_ack", "not_understood", "time_now", "help_on_the_way",
    "goodbye", "timeout_idle", "no_microphone", "no_model",
)
"""prompt keys the speech loop relies on; loading fails if one is missing"""

_KEY = re.compile(r"[a-z][a-z0-9_]*")
_FORMATTER = string.Formatter()


@dataclass(frozen=True)
class Clock:
    """The words for saying a time aloud (``clock`` in prompts.yaml)."""

    day_parts: tuple[str, ...]
    """word said before the hour, one per hour of the day 0..23 ("" = none)"""
    hour: str
    """template of the hour, with placeholder {hour}"""
    hour_words: Mapping[int, str]
    """numerals said differently before 点 (2 → 两), by hour 1..12"""
    minute_words: Mapping[int, str]
    """minutes said as words (0 → "", 15 → 一刻, 30 → 半 …)"""
    minute: str
    """template of other minutes 10..59, with placeholder {minute}"""
    minute_below_ten: str
    """template of other minutes 1..9, with placeholder {minute}"""


class Prompts:
    """The assistant's spoken sentences; ``text(key, **values)`` picks the next variant and fills it in."""

    def __init__(self, variants: Mapping[str, tuple[str, ...]], clock: Clock, source: str,
                 names: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Wrap checked data; use :meth:`load` or :meth:`parse` to build one from YAML."""
        self._variants = dict(variants)
        self._names = {kind: dict(words) for kind, words in (names or {}).items()}
        self.clock = clock
        self.source = source
        self._turn: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None) -> Prompts:
        """Load prompts from ``path`` (default: the bundled voices/prompts.yaml); DataError if bad."""
        if path is None:
            source = "voices/prompts.yaml"
            text = resources.files("voices").joinpath("prompts.yaml").read_text("utf-8")
        else:
            try:
                text, source = Path(path).read_text("utf-8"), str(path)
            except (OSError, UnicodeDecodeError) as error:
                raise DataError("cannot read prompts file %s: %s" % (path, error)) from None
        return cls.parse(text, source)

    @classmethod
    def parse(cls, text: str, source: str = "<prompts>") -> Prompts:
        """Build prompts from YAML ``text``; ``source`` names it in error messages."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise DataError("%s is not valid YAML: %s" % (source, error)) from None
        if not isinstance(data, dict) or not isinstance(data.get("prompts"), dict):
            raise DataError("%s needs a mapping 'prompts' of key → sentence or list of sentences" % source)
        variants = {key: _variants(key, value, source) for key, value in data["prompts"].items()}
        missing = [key for key in REQUIRED_KEYS if key not in variants]
        if missing:
            raise DataError("%s lacks the prompt %s, needed by the assistant" % (source, ", ".join(missing)))
        names = data.get("names") or {}
        if not isinstance(names, dict) or not all(isinstance(v, dict) for v in names.values()):
            raise DataError("%s: 'names' must map a kind (meal, service …) to value → word" % source)
        names = {str(kind): {str(k): str(v) for k, v in words.items()} for kind, words in names.items()}
        return cls(variants, _clock(data.get("clock"), source), source, names)

    def keys(self) -> tuple[str, ...]:
        """All prompt keys, in file order."""
        return tuple(self._variants)

    def variants(self, key: str) -> tuple[str, ...]:
        """The sentences of ``key``, unfilled."""
        return self._variants[self._known(key)]

    def placeholders(self, key: str) -> frozenset[str]:
        """Names of the placeholders of ``key`` (the same in every variant)."""
        return _placeholders(self.variants(key)[0], key, self.source)

    def text(self, key: str, **values: object) -> str:
        """The next variant of prompt ``key`` filled with ``values`` (extra values are ignored).

        Variants are said in turn, so the same one never comes twice in a row. Raises DataError
        for an unknown key or a placeholder without a value.
        """
        needed = self.placeholders(key) - values.keys()
        if needed:
            names = ", ".join("{%s}" % name for name in sorted(needed))
            raise DataError("prompt %r in %s needs a value for %s" % (key, self.source, names))
        options = self._variants[key]
        with self._lock:
            turn = self._turn.get(key, 0)
            self._turn[key] = (turn + 1) % len(options)
        return options[turn].format(**values)

    def name(self, kind: str, value: str) -> str:
        """How a canonical value is said (``name("meal", "lunch")`` → 午饭); the value itself if unnamed."""
        return self._names.get(kind, {}).get(str(value), str(value))

    @staticmethod
    def count(number: int, *, measure: bool = True) -> str:
        """A number in words; before a measure word 2 is 两 (两份), otherwise 二 (十二月二日)."""
        import cn2an  # imported on first use: it takes about 0.1 s

        if measure and number == 2:
            return "两"
        return str(cn2an.an2cn(number))

    def _known(self, key: str) -> str:
        """Return ``key`` if it exists, else raise DataError naming it."""
        if key not in self._variants:
            known = ", ".join(self._variants)
            raise DataError("there is no prompt %r in %s (known: %s)" % (key, self.source, known))
        return key

    def speakable_time(self, hour: int, minute: int) -> str:
        """Say a 24-hour time as people do: (8, 30) → 八点半, (20, 5) → 晚上八点零五分, (0, 0) → 夜里十二点."""
        if not (isinstance(hour, int) and isinstance(minute, int) and 0 <= hour <= 23 and 0 <= minute <= 59):
            raise InputError("a time needs hour 0..23 and minute 0..59, not %r:%r" % (hour, minute))
        import cn2an  # imported on first use: it takes about 0.1 s

        clock = self.clock
        twelve = hour % 12 or 12
        spoken_hour = clock.hour.format(hour=clock.hour_words.get(twelve) or cn2an.an2cn(twelve))
        if minute in clock.minute_words:
            spoken_minute = clock.minute_words[minute]
        else:
            template = clock.minute_below_ten if minute < 10 else clock.minute
            spoken_minute = template.format(minute=cn2an.an2cn(minute))
        return clock.day_parts[hour] + spoken_hour + spoken_minute


def _variants(key: Any, value: Any, source: str) -> tuple[str, ...]:
    """Check one prompt entry: a snake_case key and non-empty sentences with the same placeholders."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise DataError("%s: prompt key %r must be lower-case letters, digits and _" % (source, key))
    options = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, list) else ()
    if not options or not all(isinstance(option, str) and option.strip() for option in options):
        raise DataError("%s: prompt %r must be a sentence or a list of sentences" % (source, key))
    first = _placeholders(options[0], key, source)
    for option in options[1:]:
        if _placeholders(option, key, source) != first:
            raise DataError(
                "%s: the variants of prompt %r use different placeholders (%r and %r)"
                % (source, key, options[0], option)
            )
    return options


def _placeholders(sentence: str, key: str, source: str) -> frozenset[str]:
    """Names of the ``{name}`` placeholders of ``sentence``; DataError for anything but plain names."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in _FORMATTER.parse(sentence)]
    except ValueError as error:
        problem = "%s: prompt %r has a broken placeholder in %r (%s)" % (source, key, sentence, error)
        raise DataError(problem) from None
    names = set()
    for name, spec, conversion in fields:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise DataError(
                "%s: prompt %r has the placeholder {%s}%s; only plain names like {elder} are allowed"
                % (source, key, name, " in %r" % sentence)
            )
        names.add(name)
    return frozenset(names)


def _clock(data: Any, source: str) -> Clock:
    """Check the ``clock`` section: day parts for every hour once, templates with the right placeholder."""
    if not isinstance(data, dict):
        raise DataError("%s needs a mapping 'clock' with the words for saying times" % source)
    try:
        parts: list[str | None] = [None] * 24
        for entry in data["day_parts"]:
            first, last = entry["hours"]
            word = entry["word"] or ""
            for hour in range(first, last + 1):
                if not 0 <= hour <= 23 or parts[hour] is not None or not isinstance(word, str):
                    problem = "hour %d is repeated, out of 0..23 or without a word" % hour
                    raise DataError("%s: clock.day_parts: %s" % (source, problem))
                parts[hour] = word
        templates = {name: str(data[name]) for name in ("hour", "minute", "minute_below_ten")}
        hour_words = {int(n): str(word) for n, word in (data.get("hour_words") or {}).items()}
        minute_words = {int(n): str(word) for n, word in (data.get("minute_words") or {}).items()}
    except (KeyError, TypeError, ValueError) as error:
        problem = "%s: the clock section is malformed (%s: %s)" % (source, type(error).__name__, error)
        raise DataError(problem) from None
    if None in parts:
        raise DataError("%s: clock.day_parts does not cover hour %d" % (source, parts.index(None)))
    for name, template in templates.items():
        wanted = {"hour": {"hour"}}.get(name, {"minute"})
        if _placeholders(template, "clock." + name, source) != wanted:
            raise DataError("%s: clock.%s must contain {%s}" % (source, name, next(iter(wanted))))
    if not all(1 <= n <= 12 for n in hour_words) or not all(0 <= n <= 59 for n in minute_words):
        raise DataError("%s: clock.hour_words need hours 1..12 and clock.minute_words minutes 0..59" % source)
    return Clock(tuple(p or "" for p in parts), templates["hour"], hour_words, minute_words,
                 templates["minute"], templates["minute_below_ten"])


@functools.cache
def _bundled() -> Prompts:
    """The prompts shipped in voices/prompts.yaml, loaded once."""
    return Prompts.load()


def speakable_time(hour: int, minute: int) -> str:
    """Say a 24-hour time with the bundled words: 08:30 → 八点半, 12:15 → 十二点一刻, 00:00 → 夜里十二点."""
    return _bundled().speakable_time(hour, minute)
