"""Argument types of the commands: each parses one value or says, in one line, what was expected."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Callable

from streams.errors import UserError
from streams.settings import parse_duration_ms, topic_refusal
from streams.timefmt import parse_ts_ms

__all__ = ["check_output_file", "cli_duration_ms", "number_in", "parse_as_of", "parse_date_ms", "parse_start_ms", "persona_mix", "positive_int", "rate", "topic_name"]


def parse_date_ms(text: str, flag: str) -> int:
    """``2026-01-01`` or a full ISO-8601 time (UTC unless it says otherwise) given to ``flag``
    -> epoch ms; otherwise one line naming the flag and an example.

    >>> parse_date_ms("2026-01-01", "--from")
    1767225600000
    """
    try:
        return parse_ts_ms(text)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc} (example: 2026-01-01)") from None


def parse_start_ms(text: str) -> int:
    """``--start``: see :func:`parse_date_ms`."""
    return parse_date_ms(text, "--start")


def cli_duration_ms(text: str, name: str) -> int:
    """A duration given on the command line, in milliseconds; a bare number is refused.

    The settings read a bare number as milliseconds (their names say ``_MS``), but on a command
    line ``--churn-after 45`` means 45 days to its reader, not 45 ms: QA16 F8 trained for 40 s on
    "45 ms of silence is churn" and ended on "labels have one class only". A unit is required.

    >>> cli_duration_ms("45d", "--churn-after")
    3888000000
    >>> cli_duration_ms("45", "--churn-after")
    Traceback (most recent call last):
    ValueError: --churn-after 45: give a unit, such as 45d (or 12h, 90m); a bare number would be milliseconds
    """
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text):
        n = text.strip()
        raise ValueError(f"{name} {n}: give a unit, such as {n}d (or 12h, 90m); a bare number would be milliseconds")
    return parse_duration_ms(text, name=name)


def positive_int(unit: str, one: str | None = None, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number >= 1 of ``unit`` (plural; ``one``, the singular, when it
    is not ``unit`` without its final s), and at most ``most`` when given, with a message naming the unit."""
    singular = one or unit.removesuffix("s")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number of {unit}, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1 {singular}, got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most} {unit}, got {value}")
        return value

    return parse


def topic_name(text: str) -> str:
    """An argparse type: a Kafka topic name (``streams.settings.topic_refusal``), refused in one line."""
    why = topic_refusal(text)
    if why:
        raise argparse.ArgumentTypeError(why)
    return text


def persona_mix(text: str) -> dict[str, float]:
    """An argparse type: ``--mix`` of ``churnwatch simulate`` (``streams.offline.simulate.parse_mix``)."""
    from streams.offline.simulate import parse_mix

    try:
        return dict(parse_mix(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--mix ")) from None


def number_in(flag: str, low: float, high: float, *, low_open: bool = False, high_open: bool = True,
              unit: str = "") -> Callable[[str], float]:
    """An argparse type: a number in an interval (open or closed at each end; NaN is in none).

    >>> number_in("--holdout", 0, 1, low_open=True)("1.5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: --holdout must be in (0, 1), got 1.5
    """
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}{' ' + unit if unit else ''}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"{flag} must be in {interval}, got {text}")
        return value

    return parse


def rate(text: str) -> float:
    """An argparse type: events per second, 0 meaning as fast as possible."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of events per second, got {text!r}") from None
    if value < 0 or math.isnan(value):
        raise argparse.ArgumentTypeError(f"must be 0 (as fast as possible) or more events per second, got {text!r}")
    return value


def _parse_date_ms(text: str) -> int:
    """An ISO date or date-time (UTC unless it says otherwise) -> epoch ms."""
    try:
        return parse_ts_ms(text)
    except ValueError as exc:
        raise ValueError(f"--as-of: {exc} (examples: 2026-02-01, 2026-02-01T12:00:00Z)") from None


def parse_as_of(text: str) -> list[int]:
    """Comma-separated ISO dates, or ``START/END/STEP`` (END included when on a step) -> sorted epoch ms.

    >>> from streams.timefmt import format_day_or_time
    >>> [format_day_or_time(t) for t in parse_as_of("2026-02-01/2026-02-15/7d")]
    ['2026-02-01', '2026-02-08', '2026-02-15']
    >>> [format_day_or_time(t) for t in parse_as_of("2026-03-01, 2026-02-01T12:00:00Z")]
    ['2026-02-01T12:00:00Z', '2026-03-01']
    """
    text = text.strip()
    if not text:
        raise ValueError("--as-of is empty: give ISO dates separated by commas, or START/END/STEP such as 2026-02-01/2026-06-01/7d")
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 3:
            raise ValueError(f"--as-of {text!r}: a range is START/END/STEP, such as 2026-02-01/2026-06-01/7d")
        start, end = _parse_date_ms(parts[0]), _parse_date_ms(parts[1])
        step = cli_duration_ms(parts[2], "--as-of STEP")
        if step <= 0:
            raise ValueError(f"--as-of STEP must be a positive duration, got {parts[2]!r}")
        if end < start:
            raise ValueError(f"--as-of range ends ({parts[1]}) before it starts ({parts[0]})")
        return list(range(start, end + 1, step))
    dates = sorted({_parse_date_ms(part) for part in text.split(",") if part.strip()})
    if not dates:
        raise ValueError(f"--as-of {text!r} holds no date")
    return dates


def check_output_file(flag: str, path: str | Path | None) -> Path | None:
    """``path`` (None: not asked for) if a file can be written there: checked before the work, so a
    long simulation or training does not stop at its very end on a missing folder (QA3 #13).

    >>> check_output_file("--out", "/no-such-folder/x.json")
    Traceback (most recent call last):
    ...
    streams.errors.UserError: --out /no-such-folder/x.json: folder /no-such-folder does not exist
    """
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{flag} {p}: a folder; give a file name")
    if not p.parent.is_dir():
        raise UserError(f"{flag} {p}: folder {p.parent} does not exist")
    return p
