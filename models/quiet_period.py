"""An account's declared yearly quiet period: a month it is expected to go quiet (QA18 F3).

A B2B product's seasonal customers (schools in August, retailers after Christmas) fall silent every
year at the same time, and the account rules (``models.account_health``) read that as a fall: on
QA18's history every one of its 45 seasonal accounts got ``account_at_risk`` in its quiet August
("usage over the last 2 weeks down 41% against its 3-month rate", "the only user silent for 2
weeks"), open a median 33 days until September. The account manager knows the calendar; the
accounts table says it (``quiet``: ``08-01..08-31``, several ranges ``;``-separated, a range may wrap
the year end, ``12-20..01-05``; UTC, both days included).

Inside a declared period, and for the 2 weeks of silence after its end (:data:`AFTER_S`), the
users' silence and the usage trend open no at-risk alert: the account is judged as if every user
not already silent when the period began were seen at the time of the review, at its usual use
(:func:`quiet_members`: so silence is counted from the period's end, and a member not back 2 weeks
after it is silent); billing rules (a cancellation, a failed payment, a downgrade, a trial
ending, a renewal near while the users silent before the period made the use fall) still count. An alert already open when the period begins is not closed by it. The gate is
``streams.worker.account_alerts.account_rollup``; this module is pure (dates are arguments).

>>> p = parse_quiet("08-01..08-31; 12-20..01-05")
>>> [str(x) for x in p]
['08-01..08-31', '12-20..01-05']
>>> day = 86_400_000
>>> w = quiet_window(p, _ms(2026, 1, 3)); (str(w.period), _day(w.start_ms), _day(w.end_ms))
('12-20..01-05', '2025-12-20', '2026-01-06')
>>> quiet_window(p, _ms(2026, 9, 20)) is None, quiet_window(p, _ms(2026, 9, 14)).after
(True, True)
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from typing import Final, Sequence

from models.account_health import AccountRollup, Member, silent_after_s
from models.signals import SUSTAINED_AFTER_S
from models.reasons import _ago

__all__ = ["AFTER_S", "MAX_DAYS", "MAX_OFF_SEASON_DAYS", "SUSTAINED_AFTER_S", "QuietPeriod", "QuietWindow", "parse_quiet", "periods_overlap", "quiet_members", "quiet_rollup", "quiet_starts_ms",
           "quiet_text", "quiet_window", "next_quiet_end_ms"]

DAY_MS: Final[int] = 86_400_000
#: After the period's end, the 2 weeks a member's silence takes to count (models.account_health):
#: a member last seen inside or before the period is silent once it has not come back 14 days after
#: its end. The usage trend (a 2-week figure) is not judged in those 2 weeks either: what it holds then
#: is the quiet period.
AFTER_S: Final[int] = 14 * 86_400
#: ... and the account's 4-week figure holds the period for 8 weeks after its end (models.signals says why):
#: the sustained fall (``models.account_health.sustained_line``, QA23b F4) is not judged until then.
#: A quiet period is a season, not a way to switch the account's alerts off: at most 4 months.
MAX_DAYS: Final[int] = 122
#: ... except an account's own off-season (the accounts table's ``quiet`` cell, :func:`parse_quiet`'s
#: ``max_days``): a seasonal business (QA25b F3: a marketplace's sellers open only October-December)
#: is quiet most of the year, and its billing facts (a downgrade, a failed payment, a cancellation)
#: still alert in it. At most 9 months: an account quiet longer is not seasonal. Measured on QA25b's
#: 40 seasonal shops, one range 01-01..09-19: 0 alerted in their off-season (25 with it split in
#: two ranges under the 4-month cap), every other account alert unchanged.
MAX_OFF_SEASON_DAYS: Final[int] = 274


@dataclass(frozen=True, slots=True)
class QuietPeriod:
    """A yearly range of days, (month, day) to (month, day), both included; wraps the year end
    when the end comes before the start in the calendar."""

    start: tuple[int, int]
    end: tuple[int, int]

    def __str__(self) -> str:
        return f"{self.start[0]:02d}-{self.start[1]:02d}..{self.end[0]:02d}-{self.end[1]:02d}"

    def occurrence(self, year: int) -> tuple[int, int]:
        """The period beginning in ``year``: (first ms, ms after its last day). A 02-29 falls on
        the 28th in a year without one."""
        wraps = self.end < self.start
        return _ms(year, *self.start), _ms(year + wraps, *self.end) + DAY_MS


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """The occurrence of a period that judges the account now: ``start_ms`` to ``end_ms`` (the day
    after its last), ``after`` True in the 2 weeks after it (:data:`AFTER_S`)."""

    period: QuietPeriod
    start_ms: int
    end_ms: int
    after: bool


def _ms(year: int, month: int, day: int) -> int:
    if month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        day = 28
    return (_dt.date(year, month, day) - _dt.date(1970, 1, 1)).days * DAY_MS


def _day(ms: int) -> str:
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=ms // DAY_MS)).isoformat()


def _month_day(text: str) -> tuple[int, int]:
    parts = text.strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"{text.strip()!r} is not a day of the year MM-DD")
    month, day = int(parts[0]), int(parts[1])
    try:
        _dt.date(2000, month, day)  # a leap year: 02-29 is a day of the year
    except ValueError:
        raise ValueError(f"{text.strip()!r} is no day of the year (MM-DD)") from None
    return month, day


def parse_quiet(text: str, what: str = "quiet", max_days: int = MAX_DAYS) -> tuple[QuietPeriod, ...]:
    """The periods of an accounts table's ``quiet`` cell ("" -> none): ranges ``MM-DD..MM-DD``
    separated by ``;``. ValueError in one line saying what is wrong and what is expected.
    ``max_days``: the longest period (:data:`MAX_DAYS`; an account's own off-season,
    :data:`MAX_OFF_SEASON_DAYS`).
    ``what``: the period's name in that line, "quiet" or "peak" (the product's declared peak season,
    ``[calendar] peak``: models.state.peak_s), whose ranges may touch (nothing holds after its end).

    >>> parse_quiet(""), [str(p) for p in parse_quiet(" 07-25..08-31 ;12-20..01-05")]
    ((), ['07-25..08-31', '12-20..01-05'])
    >>> for bad in ("August", "08-01-08-31", "08-01..08-32", "01-01..06-30", "08-01..08-31;08-15..09-10"):
    ...     try:
    ...         parse_quiet(bad)
    ...     except ValueError as exc:
    ...         print(exc)
    quiet 'August' is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')
    quiet '08-01-08-31' is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')
    quiet 08-01..08-32: '08-32' is no day of the year (MM-DD)
    quiet 01-01..06-30 is 181 days long: a quiet period is at most 122 days (a season; an account's own off-season, in the accounts table, up to 274)
    quiet 08-15..09-10 overlaps 08-01..08-31
    >>> [str(p) for p in parse_quiet("01-01..09-19", max_days=MAX_OFF_SEASON_DAYS)]
    ['01-01..09-19']
    >>> parse_quiet("01-01..10-31", max_days=MAX_OFF_SEASON_DAYS)
    Traceback (most recent call last):
    ...
    ValueError: quiet 01-01..10-31 is 304 days long: an account's off-season is at most 274 days (9 months)
    >>> [str(p) for p in parse_quiet("11-01..11-30;12-01..12-31", "peak")]
    ['11-01..11-30', '12-01..12-31']
    >>> for bad in ("Nov", "11-15..12-32", "08-31..12-31", "11-15..12-31;12-20..01-05"):
    ...     try:
    ...         parse_quiet(bad, "peak")
    ...     except ValueError as exc:
    ...         print(exc)
    peak 'Nov' is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')
    peak 11-15..12-32: '12-32' is no day of the year (MM-DD)
    peak 08-31..12-31 is 123 days long: a peak period is at most 122 days
    peak 12-20..01-05 overlaps 11-15..12-31
    """
    out: list[QuietPeriod] = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if part.count("..") != 1:
            raise ValueError(f"{what} {part!r} is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')")
        a, b = part.split("..")
        try:
            period = QuietPeriod(_month_day(a), _month_day(b))
        except ValueError as exc:
            raise ValueError(f"{what} {part}: {exc}") from None
        start, end = period.occurrence(2001)  # a year without 02-29: a period's longest
        if (end - start) // DAY_MS > max_days:
            raise ValueError(f"{what} {period} is {(end - start) // DAY_MS} days long: " + (
                f"an account's off-season is at most {max_days} days (9 months)" if max_days == MAX_OFF_SEASON_DAYS else
                f"a {what} period is at most {max_days} days" + (
                    f" (a season; an account's own off-season, in the accounts table, up to {MAX_OFF_SEASON_DAYS})" if what == "quiet" else "")))
        clash = next((p for p in out if periods_overlap(p, period, AFTER_S if what == "quiet" else 0)), None)
        if clash is not None:
            raise ValueError(f"{what} {period} overlaps {clash}")
        out.append(period)
    return tuple(out)


def periods_overlap(a: QuietPeriod, b: QuietPeriod, after_s: int = AFTER_S) -> bool:
    """Whether two periods share a day (quiet ones with their 2 weeks after, ``after_s``: one window
    at a time; a peak has none, 0)."""
    for year in (2000, 2001):
        sa, ea = a.occurrence(year)
        for yb in (year - 1, year, year + 1):
            sb, eb = b.occurrence(yb)
            if sa < eb + after_s * 1000 and sb < ea + after_s * 1000:
                return True
    return False


def quiet_window(periods: Sequence[QuietPeriod], now_ms: int, after_s: int = AFTER_S) -> QuietWindow | None:
    """The occurrence whose days or 2 weeks after (:data:`AFTER_S`; ``after_s``) hold ``now_ms``, or None.

    >>> p = parse_quiet("08-01..08-31")
    >>> [quiet_window(p, _ms(2026, m, d)) is not None for m, d in ((7, 31), (8, 1), (9, 14), (9, 15))]
    [False, True, True, False]
    """
    if not periods:
        return None
    year = (_dt.date(1970, 1, 1) + _dt.timedelta(days=now_ms // DAY_MS)).year
    for p in periods:
        for y in (year - 1, year):
            start, end = p.occurrence(y)
            if start <= now_ms < end + after_s * 1000:
                return QuietWindow(p, start, end, now_ms >= end)
    return None


def quiet_starts_ms(periods: Sequence[QuietPeriod], lo_ms: int, hi_ms: int) -> list[int]:
    """The periods' first instants in ``(lo_ms, hi_ms]``: where the account's judged risk may fall
    without a copy (the worker's review of deadlines splits its stretches there)."""
    if not periods or hi_ms <= lo_ms:
        return []
    first = (_dt.date(1970, 1, 1) + _dt.timedelta(days=lo_ms // DAY_MS)).year
    last = (_dt.date(1970, 1, 1) + _dt.timedelta(days=hi_ms // DAY_MS)).year
    return sorted(s for p in periods for y in range(first, last + 1) if lo_ms < (s := p.occurrence(y)[0]) <= hi_ms)


def next_quiet_end_ms(periods: Sequence[QuietPeriod], now_ms: int) -> int:
    """The first end of a window (a period's end plus its 2 weeks after) after ``now_ms``, 0 without
    periods: the account is reviewed there (a member not back is silent from then on).

    >>> next_quiet_end_ms(parse_quiet("08-01..08-31"), _ms(2026, 8, 10)) == _ms(2026, 9, 15)
    True
    """
    if not periods:
        return 0
    year = (_dt.date(1970, 1, 1) + _dt.timedelta(days=now_ms // DAY_MS)).year
    return min(e for p in periods for y in (year - 1, year, year + 1) if (e := p.occurrence(y)[1] + AFTER_S * 1000) > now_ms)


def quiet_members(members: Sequence[Member], window: QuietWindow, now_s: int) -> list[Member]:
    """The members as the quiet window judges them: each one not already silent when the period began
    (seen within its silence line before the start, or since: 14 days, or its own rhythm's,
    models.account_health.silent_after_s) counts as seen at ``now_s`` at its usual
    4-week activity (at least its 13-week rate's), so neither its silence nor the season's fall of
    its use counts, in the silence rule, the usage trend or the renewal rule's "usage fell" (a
    first measurement kept the renewal rule on the members' own 4-week figures: 8 alerts were left
    on QA18's 45 seasonal accounts, e.g. "renewal in 13 days while usage fell 31%", the season's
    fall); one silent before the period stays as it was (the rules had their time to see it).
    ``models.account_health.Member`` records, unchanged otherwise.

    >>> w = quiet_window(parse_quiet("08-01..08-31"), _ms(2026, 8, 20))
    >>> aug20 = _ms(2026, 8, 20) // 1000
    >>> [(m.last_seen_s == aug20, m.act_28d) for m in quiet_members([Member(1, aug20 - 5 * 86_400, 1, 0.0, 3.0, 20.0),
    ...                                                                Member(2, aug20 - 40 * 86_400, 1, 0.0, 3.0, 20.0)], w, aug20)]
    [(True, 20.0), (False, 3.0)]
    """
    start_s = window.start_ms // 1000
    return [replace(m, last_seen_s=max(m.last_seen_s, now_s), act_28d=max(m.act_28d, m.base_28d))
            if m.last_seen_s > start_s - silent_after_s(m) else m for m in members]


def quiet_text(window: QuietWindow, now_ms: int) -> str:
    """The book's and the alert's words for the window: "in its quiet period (08-01..08-31)", or
    in the 2 weeks after it, "back from its quiet period (08-01..08-31) 5 days ago: silence counted
    from its end".

    >>> p = parse_quiet("08-01..08-31")
    >>> quiet_text(quiet_window(p, _ms(2026, 8, 9)), _ms(2026, 8, 9))
    'in its quiet period (08-01..08-31)'
    >>> quiet_text(quiet_window(p, _ms(2026, 9, 6)), _ms(2026, 9, 6))
    'its quiet period (08-01..08-31) ended 5 days ago: silence counted from its end'
    """
    if not window.after:
        return f"in its quiet period ({window.period})"
    return f"its quiet period ({window.period}) ended {_ago((now_ms - window.end_ms) // DAY_MS)}: silence counted from its end"


def quiet_rollup(real: AccountRollup, judged: AccountRollup, window: QuietWindow, now_ms: int) -> AccountRollup:
    """The account as its quiet window judges it: the risk, temperature, stage, reasons and action
    of ``judged`` (``models.account_health.rollup`` of :func:`quiet_members`, without the usage
    trend), its reasons followed by :func:`quiet_text`; its users, silent users, usage and health as
    they are (``real``: the facts the console shows beside it). The owner's book ranks the dip as
    the season it is, not as a fall."""
    return replace(real, risk=judged.risk, temperature=judged.temperature, stage=judged.stage,
                   reasons=(*judged.reasons, quiet_text(window, now_ms)), action=judged.action, trial=judged.trial,
                   still_silent=judged.still_silent)
