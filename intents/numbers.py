"""Numbers, quantities, clock times and dates in normalised Mandarin text.

The input is one normalised utterance: simplified Chinese without punctuation or spaces, with
Arabic digits already spelled as Chinese numerals ("8点" arrives as "八点"). Arabic and full-width
digits are still accepted, defensively. Every finder returns the value together with its span
``(start, end)`` in the text so callers can cut the slot out of the utterance.

These functions run on every utterance, so all patterns are compiled once at import time and
numeral strings are converted through a small cache.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from functools import lru_cache

import cn2an

# Characters that may form a numeral string (positional Chinese numerals or digits).
NUMERAL_CHARS = "零〇一二两三四五六七八九十百千万0123456789０１２３４５６７８９"

# Colloquial numerals that cn2an does not know.
COLLOQUIAL_NUMBERS: dict[str, int] = {"俩": 2, "仨": 3}

# Measure words after which a numeral is a quantity, longest first so 人份 wins over 份.
MEASURE_WORDS: tuple[str, ...] = (
    "人份", "份", "碗", "个", "盒", "杯", "位", "斤", "袋", "笼", "屉", "盘", "碟", "瓶",
    "包", "串", "只", "根", "张", "片", "粒", "颗", "桌", "套",
)

# Half-day words, grouped by how they move a spoken hour onto the 24-hour clock.
MORNING_WORDS: tuple[str, ...] = (
    "早上", "早晨", "清早", "大早", "一早", "明早", "今早", "上午", "早",
)
NOON_WORDS: tuple[str, ...] = ("中午", "晌午")
AFTERNOON_WORDS: tuple[str, ...] = ("下午", "午后", "后晌", "晌午后", "傍晚")
EVENING_WORDS: tuple[str, ...] = (
    "晚上", "今晚", "明晚", "昨晚", "夜晚", "黑夜", "夜里", "晚",
)
LATE_NIGHT_WORDS: tuple[str, ...] = ("半夜", "深夜", "凌晨")

# Words before a bare "一点" that make it a clock time rather than "a little".
ONE_OCLOCK_CUES: tuple[str, ...] = ("在", "到", "于")

# Relative day words and their offset from today, longest first.
DAY_OFFSETS: dict[str, int] = {
    "大后天": 3, "后儿个": 2, "后天": 2, "后儿": 2,
    "明儿个": 1, "明天": 1, "明儿": 1, "明早": 1, "明晚": 1, "明个": 1, "明日": 1,
    "今儿个": 0, "今天": 0, "今儿": 0, "今早": 0, "今晚": 0, "今日": 0,
    "昨儿个": -1, "昨天": -1, "昨儿": -1, "昨晚": -1,
    "大前天": -3, "前天": -2,
}

# Weekday character after 周/星期/礼拜 → Python weekday (Monday = 0).
WEEKDAYS: dict[str, int] = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

_DIGIT = "0-9０-９"
_ONE_TO_NINE = "一二三四五六七八九"


def _alternation(words: tuple[str, ...] | list[str]) -> str:
    """Regex alternation of literal words, longest first so the longest word wins."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NUMERAL_RE = re.compile(f"[{NUMERAL_CHARS}]+")
# cn2an reads digit-by-digit runs (一八 → 18) and a trailing 两 (一两 → 12) leniently; in speech
# these are "one or two", ordinals after 星期, or weights, never a number.
_MALFORMED_RE = re.compile("[一二两三四五六七八九]{2}|两(?![百千万])")
_ARABIC_RE = re.compile(f"[{_DIGIT}]+")

# The numeral run is capped at 12 characters so a long run of numerals cannot make the search
# quadratic; "第" marks an ordinal (第一个), which is not a quantity.
_QUANTITY_RE = re.compile(
    f"(?<!第)(?P<num>俩|仨|[{NUMERAL_CHARS}]{{1,12}})(?:{_alternation(MEASURE_WORDS)})"
    "|(?P<alone>俩|仨)"
)

# Hour and minute numerals are spelled out strictly so that "星期一八点" is not read as 18 o'clock.
_HOUR = f"[一二]?十[{_ONE_TO_NINE}]?|[零〇两{_ONE_TO_NINE}]|[{_DIGIT}]{{1,2}}"
_MINUTE_TWO = f"[零〇][{_ONE_TO_NINE}]|[二三四五六七八九]?十[{_ONE_TO_NINE}]?|[{_DIGIT}]{{2}}"
_MINUTE_ONE = f"[两{_ONE_TO_NINE}]|[{_DIGIT}]"
_MINUTES = f"{_MINUTE_TWO}|{_MINUTE_ONE}"
_HALF_WORDS = MORNING_WORDS + NOON_WORDS + AFTERNOON_WORDS + EVENING_WORDS + LATE_NIGHT_WORDS
# A lone 早/晚 after 最/稍/再… means "earliest/later", not a half of the day.
_HALF = "|".join(
    f"(?<![最稍再更太很提]){w}" if len(w) == 1 else re.escape(w)
    for w in sorted(_HALF_WORDS, key=len, reverse=True)
)
_CLOCK_RE = re.compile(
    f"(?P<half>{_HALF})?"
    f"(?:差(?:(?P<pre_quarter>一刻)|(?P<pre_minutes>{_MINUTES})分钟?))?"
    # 周/期/拜 before the hour: the numeral belongs to a weekday (星期二十点 is Tuesday 10:00).
    f"(?<![周期拜{_DIGIT}])(?P<hour>{_HOUR})点"
    "(?:"
    "(?P<oclock>钟)"
    "|(?P<half_hour>半)"
    "|(?P<quarter>[一三])刻"
    f"|差(?:(?P<post_quarter>一刻)|(?P<post_minutes>{_MINUTES})分?)"
    f"|过?(?:(?P<minutes>{_MINUTE_TWO})分?|(?P<minutes_one>{_MINUTE_ONE})分)"
    ")?"
    "(?P<sharp>整)?"
)

# Months are matched broadly and checked in code, so 十三月 is rejected rather than read as 三月.
_MONTH = f"[十{_ONE_TO_NINE}]{{1,3}}|[{_DIGIT}]{{1,2}}"
_DAY = f"[一二三]?十[{_ONE_TO_NINE}]?|[{_ONE_TO_NINE}]|[{_DIGIT}]{{1,2}}"
_WEEK_WORD = "(?:周|星期|礼拜)"
_DATE_RE = re.compile(
    f"(?P<rel>{_alternation(list(DAY_OFFSETS))})"
    f"|(?P<week>下个?|这个?|本){_WEEK_WORD}(?P<next_wd>[一二三四五六日天])"
    f"|{_WEEK_WORD}(?P<wd>[一二三四五六日天])"
    f"|(?:(?P<next_month>下个?月)|(?<![{NUMERAL_CHARS}])(?P<month>{_MONTH})月)?"
    f"(?<![周期拜{NUMERAL_CHARS}])(?P<day>{_DAY})[号日]"
    f"|(?<![{NUMERAL_CHARS}])(?P<in_days>{_MINUTES})天(?:以后|之后|后)"
)


@dataclass(frozen=True)
class ClockTime:
    """A clock time found in an utterance.

    ``hour`` is on the 24-hour clock when a half-day word fixed it; otherwise it is the hour
    as said and ``ambiguous_half_day`` tells whether it could equally be 12 hours later.
    """

    hour: int
    """hour of the day, 0..23"""
    minute: int
    """minute of the hour, 0..59"""
    start: int
    """index of the first character of the expression in the text"""
    end: int
    """index just past the expression in the text"""
    ambiguous_half_day: bool = False
    """True when no half-day word was said and the hour (1..11) could be a.m. or p.m."""

    @property
    def hhmm(self) -> str:
        """The time as zero-padded "HH:MM"."""
        return f"{self.hour:02d}:{self.minute:02d}"


def parse_number(s: str) -> int | None:
    """Convert a whole numeral string (一, 两, 俩, 仨, 十二, 一百, 〇, 12 …) to an int.

    Returns None when ``s`` is not a non-negative whole number written with numerals only.
    """
    s = s.strip()
    if s in COLLOQUIAL_NUMBERS:
        return COLLOQUIAL_NUMBERS[s]
    if s == "两":
        return 2
    if not _NUMERAL_RE.fullmatch(s) or _MALFORMED_RE.search(s):
        return None
    return _convert_numeral(s)


@lru_cache(maxsize=2048)
def _convert_numeral(s: str) -> int | None:
    """cn2an conversion of a string already known to hold numeral characters only."""
    if _ARABIC_RE.fullmatch(s):
        return int(s)  # int() understands full-width digits too
    try:
        value = cn2an.cn2an(s, "smart")
    except ValueError:
        return None
    if value != int(value):
        return None
    return int(value)


def find_quantity(text: str) -> tuple[int, int, int] | None:
    """Find the first quantity: a numeral before a measure word (两份, 三碗), or 俩/仨 alone.

    Returns ``(value, start, end)`` where the span covers numeral and measure word, or None.
    Words like 一下, 一点儿, 一会儿 or 一起 are not quantities because 下/点/会/起 are not
    measure words.
    """
    pos = 0
    while (m := _QUANTITY_RE.search(text, pos)) is not None:
        numeral = m.group("num") or m.group("alone")
        value = parse_number(numeral)
        if value:
            return value, m.start(), m.end()
        # A run such as "一两份" does not parse as a whole; retry from its second character.
        pos = m.start() + 1
    return None


def find_clock_time(text: str) -> ClockTime | None:
    """Find the first clock time (八点半, 下午两点, 差五分八点, 十二点一刻 …).

    A half-day word directly before the time fixes the 24-hour reading. A bare "一点" is taken as
    a time only when the context says so (一点半, 一点钟, 下午一点, 到一点 …), because it usually
    means "a little". An impossible time (二十五点, 八点七十分) gives None.
    """
    for m in _CLOCK_RE.finditer(text):
        if _is_a_little(text, m):
            continue
        return _clock_from_match(m)
    return None


def _is_a_little(text: str, m: re.Match[str]) -> bool:
    """True when a matched "一点" means "a little" (少放一点盐, 快一点) rather than 1 o'clock."""
    if m.group("hour") != "一":
        return False
    has_tail = any(
        m.group(name)
        for name in ("oclock", "half_hour", "quarter", "post_quarter", "post_minutes",
                     "minutes", "minutes_one", "sharp", "pre_quarter", "pre_minutes")
    )
    if has_tail:
        return False
    half = m.group("half")
    if half and len(half) > 1:
        return False
    if text[m.end():m.end() + 1] in ("点", "儿"):  # 一点点, 一点儿
        return True
    # A lone 早/晚 before 一点 is "earlier/later" (早一点来), not a half of the day.
    before = m.start("half") if half else m.start()
    return text[before - 1:before] not in ONE_OCLOCK_CUES


def _clock_from_match(m: re.Match[str]) -> ClockTime | None:
    """Build a ClockTime from a regex match, or None when the time is impossible."""
    hour = parse_number(m.group("hour"))
    if hour is None or hour > 23:
        return None
    minute = 0
    if m.group("half_hour"):
        minute = 30
    elif m.group("quarter"):
        minute = 15 if m.group("quarter") == "一" else 45
    elif m.group("minutes") or m.group("minutes_one"):
        minute = parse_number(m.group("minutes") or m.group("minutes_one")) or 0
    minutes_before = _minutes_before(m)
    if minute > 59 or minutes_before is None:
        return None

    half = m.group("half")
    if half:
        hour = _to_24_hour(half, hour)
    ambiguous = half is None and 1 <= hour <= 11
    if minutes_before:
        total = (hour * 60 + minute - minutes_before) % (24 * 60)
        hour, minute = divmod(total, 60)
    return ClockTime(hour=hour, minute=minute, start=m.start(), end=m.end(),
                     ambiguous_half_day=ambiguous)


def _minutes_before(m: re.Match[str]) -> int | None:
    """Minutes subtracted by 差 (差五分八点, 八点差一刻); None when out of range."""
    if m.group("pre_quarter") or m.group("post_quarter"):
        return 15
    numeral = m.group("pre_minutes") or m.group("post_minutes")
    if not numeral:
        return 0
    value = parse_number(numeral)
    if value is None or not 1 <= value <= 59:
        return None
    return value


def _to_24_hour(half: str, hour: int) -> int:
    """Place an hour said after a half-day word on the 24-hour clock.

    Hours of 13 and above were already said on the 24-hour clock and are kept.
    """
    if hour >= 13:
        return hour
    if half in AFTERNOON_WORDS:
        return hour + 12 if 1 <= hour <= 11 else hour
    if half in NOON_WORDS:
        return hour + 12 if 1 <= hour <= 5 else hour
    if half in EVENING_WORDS:
        # 晚上十二点 is midnight; 夜里两点 is in the small hours, not 14:00.
        if hour == 12:
            return 0
        return hour + 12 if 5 <= hour <= 11 else hour
    if half in LATE_NIGHT_WORDS:
        if hour == 12:
            return 0
        return hour + 12 if half != "凌晨" and 9 <= hour <= 11 else hour
    return hour


def find_date(text: str, today: datetime.date) -> tuple[datetime.date, int, int] | None:
    """Find the first calendar date relative to ``today``.

    Understands 今天/明天/后天/大后天 (and 明儿, 明早, 后儿个 …), 下周三/下星期三/下礼拜天,
    周五/星期五/礼拜五 (the next such day, today included), N号/N日 (this month, or the next
    month once the day has passed), 下个月N号, N月N号 (this year, or next year once passed) and
    N天后. Returns ``(date, start, end)`` or None; an impossible date (二月三十号) gives None.
    """
    for m in _DATE_RE.finditer(text):
        date = _date_from_match(m, today)
        if date is not None:
            return date, m.start(), m.end()
    return None


def _date_from_match(m: re.Match[str], today: datetime.date) -> datetime.date | None:
    """Resolve one date match against ``today``."""
    if m.group("rel"):
        return today + datetime.timedelta(days=DAY_OFFSETS[m.group("rel")])
    if m.group("next_wd"):
        monday = today - datetime.timedelta(days=today.weekday())
        if m.group("week").startswith("下"):
            monday += datetime.timedelta(days=7)
        return monday + datetime.timedelta(days=WEEKDAYS[m.group("next_wd")])
    if m.group("wd"):
        ahead = (WEEKDAYS[m.group("wd")] - today.weekday()) % 7
        return today + datetime.timedelta(days=ahead)
    if m.group("in_days"):
        days = parse_number(m.group("in_days"))
        return None if days is None else today + datetime.timedelta(days=days)
    day = parse_number(m.group("day"))
    if day is None:
        return None
    if m.group("month"):
        month = parse_number(m.group("month"))
        if month is None or not 1 <= month <= 12:
            return None
        date = _safe_date(today.year, month, day)
        if date is not None and date < today:
            date = _safe_date(today.year + 1, month, day)
        return date
    if m.group("next_month"):
        year, month0 = divmod(today.month, 12)
        return _safe_date(today.year + year, month0 + 1, day)
    # The first month from now that has this day still ahead (31号 skips 30-day months).
    for months_ahead in range(3):
        year, month0 = divmod(today.month - 1 + months_ahead, 12)
        date = _safe_date(today.year + year, month0 + 1, day)
        if date is not None and date >= today:
            return date
    return None


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    """``datetime.date`` or None when the day does not exist in that month."""
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None
