"""Event-time text <-> epoch milliseconds: the one parser and the formatters every part uses.

The stream's decoder, the CSV history reader (backtest, training, publishing a file) and the
commands all read timestamps here, so the same text is the same millisecond everywhere: a
fractional millisecond is *floored* (``...:26.1236Z`` is 123 ms, as Java's
``Instant.toEpochMilli`` and Kafka do), computed in integers (a float detour turns ``.001`` into
0.999... ms). ``tests/test_timefmt.py`` checks the fast path against the general one.

>>> parse_ts_ms("2026-01-02T03:04:05.1236Z"), parse_ts_ms("1767323045123")
(1767323045123, 1767323045123)
>>> format_ts(1767323045123)
'2026-01-02T03:04:05.123Z'
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Callable, Final

__all__ = [
    "DAY_MS",
    "MIN_EVENT_MS",
    "format_day_or_time",
    "format_gap",
    "format_minute",
    "format_ts",
    "parse_iso_ms",
    "parse_ts_ms",
    "ts_reader",
]

DAY_MS: Final[int] = 86_400_000
#: 2000-01-01T00:00:00Z: an earlier event time is almost surely epoch seconds or junk.
MIN_EVENT_MS: Final[int] = 946_684_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL: Final[int] = date(1970, 1, 1).toordinal()
_ONE_MS: Final = timedelta(milliseconds=1)


@lru_cache(maxsize=8192)
def _day_ms(day: str) -> int:
    """``YYYY-MM-DD`` -> epoch ms of its midnight UTC (cached: a stream has few distinct days)."""
    return (date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL) * DAY_MS


def _fast_iso_ms(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.fff]Z`` (what warehouses, SDKs and ``churnwatch simulate`` write)
    without building a datetime; None for any other shape, which the general path then reads."""
    n = len(text)
    if (n != 20 and n != 24) or text[-1] != "Z" or text[10] != "T" or text[13] != ":" or text[16] != ":":
        return None
    clock = text[11:13] + text[14:16] + text[17:19]
    if n == 24:
        if text[19] != ".":
            return None
        clock += text[20:23]
    if not (clock.isdigit() and clock.isascii()):
        return None
    hh, mm, ss = int(clock[0:2]), int(clock[2:4]), int(clock[4:6])
    if hh > 23 or mm > 59 or ss > 59:
        return None
    try:
        day_ms = _day_ms(text[:10])
    except ValueError:
        return None
    return day_ms + ((hh * 60 + mm) * 60 + ss) * 1000 + (int(clock[6:9]) if n == 24 else 0)


def _datetime_iso_ms(text: str) -> int:
    """The general path: any ISO-8601 shape ``datetime.fromisoformat`` reads, floored to the ms.

    A lower-case ``z`` is read as ``Z``: RFC 3339 (section 5.6, NOTE) allows ``t`` and ``z``, and
    ``fromisoformat`` takes ``t`` but not ``z`` (a producer writing them had every event in the DLQ).

    >>> _datetime_iso_ms("2026-11-28t00:00:00z"), _datetime_iso_ms("2026-11-28t00:00:00.5z")
    (1795824000000, 1795824000500)
    """
    if text[-1:] == "z":
        text = text[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text[:64]!r} is neither ISO-8601 nor epoch milliseconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return (parsed - _EPOCH) // _ONE_MS
    except OverflowError:
        raise ValueError(f"timestamp {text[:64]!r} is out of range") from None


def parse_iso_ms(text: str) -> int:
    """ISO-8601 text (``Z`` or an offset; naive text is UTC) -> epoch ms, floored.

    >>> parse_iso_ms("2026-01-02"), parse_iso_ms("2026-01-02T01:00:00+01:00")
    (1767312000000, 1767312000000)
    """
    fast = _fast_iso_ms(text)
    return fast if fast is not None else _datetime_iso_ms(text)


def parse_ts_ms(text: str) -> int:
    """ISO-8601 text or epoch milliseconds written as ASCII digits (a fraction is floored) -> epoch ms.

    Range checks (``MIN_EVENT_MS``, clock skew) are the caller's: the decoder turns them into DLQ
    reasons, the CSV reader into an error naming the line. Only ASCII digits: ``str.isdigit``,
    ``int`` and ``float`` take any Unicode digit, so Arabic-Indic ``١٧٩٣...`` read as a time (QA7
    L3), against the contract's "a string of digits"; such text is no ISO-8601 either (refused).

    >>> parse_ts_ms(" 1767323045000.9 ")
    1767323045000
    >>> parse_ts_ms("١٧٦٧٣٢٣٠٤٥٠٠٠")
    Traceback (most recent call last):
    ...
    ValueError: timestamp '١٧٦٧٣٢٣٠٤٥٠٠٠' is neither ISO-8601 nor epoch milliseconds
    """
    value = text.strip()
    if not value:
        raise ValueError("empty timestamp")
    if value[0].isdigit() and value.isascii() and value.replace(".", "", 1).isdigit():
        ms = float(value) if "." in value else int(value)
        if not math.isfinite(ms):
            raise ValueError(f"timestamp {value[:64]!r} is out of range")
        return math.floor(ms)
    return parse_iso_ms(value)


#: ``"00:00"``..``"59:59"`` -> ms past the hour, ``"000"``..``"999"`` -> ms: a dict lookup both
#: checks the digits (ASCII only, as the fast path wants) and converts them.
_MINUTE_SECOND_MS: Final[dict[str, int]] = {f"{m:02d}:{s:02d}": (m * 60 + s) * 1000 for m in range(60) for s in range(60)}
_MILLI: Final[dict[str, int]] = {f"{i:03d}": i for i in range(1000)}
_MAX_HOURS: Final[int] = 1 << 17  # cached hours per reader (15 years): bounded for any input


def ts_reader() -> Callable[[str], int]:
    """A :func:`parse_ts_ms` for the many timestamps of one file: the same millisecond for every
    text (or the same ValueError), faster on the shapes history files are made of.

    A history has few distinct hours, so ``YYYY-MM-DDTHH:MM:SS[.fff]Z`` is read as a cached hour
    (checked and computed once by the fast path) plus three small table lookups, and plain epoch
    milliseconds as one ``int``; every other text goes to :func:`parse_ts_ms` itself.
    ``tests/test_timefmt.py`` compares the two on random texts.

    >>> read = ts_reader()
    >>> read("2026-01-02T03:04:05.123Z"), read("2026-01-02T03:59:00Z"), read("1767323045123")
    (1767323045123, 1767326340000, 1767323045123)
    """
    hours: dict[str, int] = {}
    minute_second_ms, milli = _MINUTE_SECOND_MS, _MILLI

    def read(text: str) -> int:
        n = len(text)
        if (n == 24 or n == 20) and text[-1] == "Z" and text[13] == ":":
            mmss = minute_second_ms.get(text[14:19])
            ms = milli.get(text[20:23]) if n == 24 and text[19] == "." else (0 if n == 20 else None)
            if mmss is not None and ms is not None:
                hour = hours.get(text[:13])
                if hour is None:
                    hour = _fast_iso_ms(text[:13] + ":00:00Z")
                    if hour is None:
                        return parse_ts_ms(text)
                    if len(hours) < _MAX_HOURS:
                        hours[text[:13]] = hour
                return hour + mmss + ms
        elif text.isdigit() and text.isascii():
            return int(text)
        return parse_ts_ms(text)

    return read


def format_ts(ms: int) -> str:
    """Epoch ms -> ISO-8601 UTC with milliseconds, the form :func:`parse_ts_ms` reads back exactly.

    >>> format_ts(1_767_225_600_123)
    '2026-01-01T00:00:00.123Z'
    """
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@lru_cache(maxsize=1024)  # the backtest formats one as-of date for every row of the date
def format_day_or_time(ms: int) -> str:
    """Epoch ms -> ``2026-02-01`` at midnight UTC, else ``2026-02-01T12:00:00Z`` (as-of dates).

    >>> format_day_or_time(1_769_904_000_000), format_day_or_time(1_769_947_200_000)
    ('2026-02-01', '2026-02-01T12:00:00Z')
    """
    moment = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d") if ms % DAY_MS == 0 else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_gap(ms: int) -> str:
    """A gap between two event times in the largest unit it reaches, one decimal (DLQ details,
    warnings: people compare it with the allowed lateness, not to the millisecond).

    >>> format_gap(23_683_761_625), format_gap(5_400_000), format_gap(90_000), format_gap(1_500)
    ('274.1 days', '1.5 h', '1.5 min', '1.5 s')
    """
    for unit, size in ((" days", DAY_MS), (" h", 3_600_000), (" min", 60_000)):
        if ms >= size:
            return f"{ms / size:.1f}{unit}"
    return f"{ms / 1000:.1f} s"


def format_minute(ms: int) -> str:
    """Epoch ms -> ``2026-02-01 12:00`` (UTC), for lines people read in a terminal."""
    return datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

