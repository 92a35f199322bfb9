"""A monthly burst rhythm: an account whose use comes in the same days of every month (QA23b F3).

Why: a developer platform's month-end batch customers (API calls and logins in the month's last
days, quiet the rest) got ``account_at_risk`` every month, 26 of 26 accounts: their developers
were "silent" two of their usual 6-8 day intervals after the batch, and the 2-week usage trend
fell after each burst. Such an account is healthy between its batches; it is news when a batch
does not come. The account learns the rhythm from its own activity, no declaration, no byte a user:

- *Where in the month.* Its activity (each member copy's gain, ``account_health.member_gain``)
  by the phase of the calendar month it came in, ``BUCKETS`` (6) parts of the month (a fifth of
  a 30-day month each: months of 28-31 days map alike), for the last ``MONTHS`` (4) calendar months
  (:func:`phase_bucket`, :func:`add_part`; kept in ``account_health.Trend``): whole sums, the same
  whatever order the copies come in; everything below is read from them.
- *A rhythm*: two adjacent parts (a third of the month, :class:`Cycle`, wrapping the month's end)
  hold ``BURST_SHARE`` (75%) of it or more, against a third for use spread over the month, once
  the account has been followed ``BURST_HELD_S`` (two months) and holds ``BURST_MIN`` events
  (:func:`burst_window`). A steady account's parts are within a few points of a sixth each.
- *Silence against the batch.* A member is silent only once a whole window after its last visit
  has passed without it, ``GRACE_S`` (2 days) after the window's end (:meth:`Cycle.due_s`); never
  before its own silence line.
- *Usage against the batch before.* Once a window has passed (its grace too), its two parts'
  activity against the window before's is what the usage trend rule reads (:func:`burst_usage`): a
  batch that did not come reads 0. (A batch a day or two late counts in neither window's parts.)

All times are event time (epoch seconds, UTC calendar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timezone
from typing import Final, Sequence

DAY_S: Final[int] = 86_400
BUCKETS: Final[int] = 6
HIST_TAU_S: Final[float] = 90.0 * DAY_S
#: Two adjacent parts (a third of the month) with this share of the activity or more: a burst rhythm.
#: Why 75%: QA23b's month-end accounts hold 85-97% of their activity in their month's last third;
#: use spread over the month holds a third, and a weekly or a light user's chance bunching stays
#: far under three quarters over three months of a steady account's events.
BURST_SHARE: Final[float] = 0.75
#: ... judged once the account has been followed two months (two windows seen) ...
BURST_HELD_S: Final[int] = 60 * DAY_S
#: ... and its kept activity holds this many events (the usage trend rule's least fortnight,
#: ``account_health.TREND_MIN_EVENTS``: fewer is no rhythm to read).
BURST_MIN: Final[float] = 20.0
#: A batch a day or two late is no missed batch: a window ends this long after its last part.
GRACE_S: Final[int] = 2 * DAY_S
#: The activity is kept by part of the month for the last 4 calendar months (:func:`add_part`): the
#: rhythm reads the two latest over, the batches' figures a window over and the one before it, which
#: for a window to the 5th read on the 6th of month M start in month M - 3 ...
MONTHS: Final[int] = 4
#: ... in whole quarters of an event: sums of whole numbers, exact in any order.
QUANTUM: Final[int] = 4


def _month(ts_s: int) -> int:
    """The calendar month of ``ts_s`` (UTC) as ``12 * year + month - 1``: integer arithmetic (the
    civil calendar from days, H. Hinnant's ``civil_from_days``), a tenth of a ``datetime``'s cost, as
    it runs for each member copy.

    >>> all(_month(t) == 12 * d.year + d.month - 1 for t in range(0, 4_000_000_000, 86_399 * 17)
    ...     for d in [datetime.fromtimestamp(t, timezone.utc)])
    True
    """
    return _month_of_day(ts_s // DAY_S)


@lru_cache(maxsize=1024)
def _month_of_day(day: int) -> int:
    """:func:`_month` of a day since the epoch (kept: copies come in a few days at a time)."""
    z = day + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return 12 * (yoe + era * 400 + (month <= 2)) + month - 1


@lru_cache(maxsize=256)
def month_start_s(k: int) -> int:
    """The first second of month ``k`` (:func:`_month`'s numbering), UTC (kept: a few months serve
    every copy).

    >>> month_start_s(_month(1_767_225_600)) == 1_767_225_600  # 2026-01-01
    True
    """
    return int(datetime(k // 12, k % 12 + 1, 1, tzinfo=timezone.utc).timestamp())


def _at(k: int, part: int) -> int:
    """The start of part ``part`` of month ``k``; parts past the last run into the next month."""
    k, part = k + part // BUCKETS, part % BUCKETS
    start = month_start_s(k)
    return start + (month_start_s(k + 1) - start) * part // BUCKETS


def phase_bucket(ts_s: int) -> int:
    """Which of the month's ``BUCKETS`` parts ``ts_s`` falls in (0: its first sixth).

    >>> [phase_bucket(month_start_s(_month(1_767_225_600)) + d * DAY_S) for d in (0, 5, 6, 25, 26, 30)]  # 31 days
    [0, 0, 1, 4, 5, 5]
    """
    k = _month(ts_s)
    start = month_start_s(k)
    return min(BUCKETS - 1, (ts_s - start) * BUCKETS // (month_start_s(k + 1) - start))


@dataclass(frozen=True, slots=True)
class Cycle:
    """An account's monthly window: parts ``first`` and ``first + 1`` of every month (wrapping)."""

    first: int

    def start_s(self, k: int) -> int:
        """When the window of month ``k`` starts."""
        return _at(k, self.first)

    def end_s(self, k: int) -> int:
        """When the window of month ``k`` is over: its last part's end and ``GRACE_S``."""
        return _at(k, self.first + 2) + GRACE_S

    def occurrence(self, ts_s: int) -> int:
        """The month whose window started last at or before ``ts_s``."""
        k = _month(ts_s)
        return k if ts_s >= self.start_s(k) else k - 1

    def done(self, now_s: int) -> int:
        """The month of the latest window over at ``now_s`` (:meth:`end_s`)."""
        k = self.occurrence(now_s)
        return k if now_s >= self.end_s(k) else k - 1

    def due_s(self, last_seen_s: int) -> int:
        """When a member last seen at ``last_seen_s`` has missed a whole window: the end of the first
        window that starts after it.

        >>> c = Cycle(4)  # the month's last third
        >>> jan30 = month_start_s(_month(1_767_225_600)) + 29 * DAY_S
        >>> datetime.fromtimestamp(c.due_s(jan30), timezone.utc).date().isoformat()
        '2026-03-03'
        """
        return self.end_s(self.occurrence(last_seen_s) + 1)

    def text(self) -> str:
        """The window in words, by a 30-day month: "the 21st to the month's end", "the 26th to the 5th".

        >>> [Cycle(b).text() for b in (0, 2, 4, 5)]
        ['the 1st to the 10th', 'the 11th to the 20th', "the 21st to the month's end", 'the 26th to the 5th']
        """
        last = (self.first + 2) * 5
        end = "the month's end" if last == 30 else f"the {_ordinal(last % 30)}"
        return f"the {_ordinal(self.first * 5 + 1)} to {end}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def burst_window(hist: Sequence[float]) -> int:
    """The first part of the two adjacent parts (wrapping) that hold the most of ``hist``, -1 when
    ``hist`` is empty or holds nothing.

    >>> burst_window([1, 1, 1, 1, 5, 6]), burst_window([5, 1, 1, 1, 1, 6]), burst_window([])
    (4, 5, -1)
    """
    if len(hist) != BUCKETS or not sum(hist) > 0:
        return -1
    pairs = [hist[b] + hist[b + 1] for b in range(BUCKETS - 1)] + [hist[-1] + hist[0]]
    return pairs.index(max(pairs))


def burst_share(hist: Sequence[float], first: int = -1) -> float:
    """The share of ``hist`` in the window of parts ``first`` and the next (its :func:`burst_window`
    when -1); 0 without one."""
    b = burst_window(hist) if first < 0 else first
    return (hist[b] + hist[(b + 1) % BUCKETS]) / sum(hist) if b >= 0 and len(hist) == BUCKETS and sum(hist) > 0 else 0.0


def add_part(month: int, parts: Sequence[int], gain: float, ts_s: int) -> tuple[int, tuple[int, ...]]:
    """The account's activity by part of the month ``(month, parts)`` once ``gain`` at ``ts_s`` is
    added: ``parts`` holds ``MONTHS`` (4) calendar months of ``BUCKETS`` (6) parts each, whole
    ``1 / QUANTUM`` events, the last month ``month`` (the latest month a copy added to; -1 none).
    A copy of a later month moves the months on; one of a month before the four is not kept.

    Why sums of whole numbers: the record is then a function of the SET of copies, not of the order
    different users' copies come in (the property of ``tests/test_account_alerts.py``: a window
    chosen as each copy came, and figures restarted when it moved, gave 0.7 against 0.4 for the same
    copies interleaved); the window and the batches' figures are read from it (:func:`burst_cycle`,
    :func:`burst_usage`).

    >>> jan = _month(1_767_225_600); m, p = add_part(-1, (), 2.0, 1_767_225_600 + 28 * DAY_S)
    >>> m == jan, p[18:], add_part(*add_part(m, p, 1.0, month_start_s(jan + 1)), 0.5, 1_767_225_600)[1][12:]
    (True, (0, 0, 0, 0, 0, 8), (2, 0, 0, 0, 0, 8, 4, 0, 0, 0, 0, 0))
    """
    q = round(gain * QUANTUM)
    if q <= 0:
        return month, tuple(parts)
    k = _month(ts_s)
    kept = list(parts) if len(parts) == MONTHS * BUCKETS and month >= 0 else [0] * (MONTHS * BUCKETS)
    month = k if len(parts) != MONTHS * BUCKETS or month < 0 else month
    if k > month:
        shift = min(k - month, MONTHS) * BUCKETS
        kept, month = kept[shift:] + [0] * shift, k
    j = k - month + MONTHS - 1
    if j >= 0:
        kept[j * BUCKETS + phase_bucket(ts_s)] += q
    return month, tuple(kept)


def _hist(month: int, parts: Sequence[int], now_s: int) -> list[int]:
    """The activity by part of the month (:func:`add_part`) of the two latest kept months over at
    ``now_s``, summed. Why whole months: with the month under way in, the parts still to come are
    missing from it (QA23b: a batch account's last third fell from 79% to 74.5% in the days before
    each batch, its rhythm lost)."""
    if len(parts) != MONTHS * BUCKETS:
        return []
    j = MONTHS - 2 if _month(now_s) > month else MONTHS - 3
    return [parts[j * BUCKETS + b] + parts[(j + 1) * BUCKETS + b] for b in range(BUCKETS)]


def window_volume(month: int, parts: Sequence[int], first: int, k: int) -> int | None:
    """The activity (``1 / QUANTUM`` events) in window ``first`` of month ``k`` (its two parts,
    wrapping into the next month), 0 for months after the kept ones, None when a part is of a month
    before them (not kept)."""
    out = 0
    for b in (first, first + 1):
        j = k + b // BUCKETS - month + MONTHS - 1
        if j < 0:
            return None
        out += parts[j * BUCKETS + b % BUCKETS] if j < MONTHS else 0
    return out


def burst_usage(month: int, parts: Sequence[int], cycle: Cycle, now_s: int, least: float) -> float:
    """The latest window over at ``now_s`` against the window before it (1.0 alike; 0.0: the batch
    did not come), or -1.0 when not judged: the window before not kept, or holding less than
    ``least`` events. When no copy came since the window before (both after the kept months), the
    base is the largest kept window's.

    >>> jan = _month(1_767_225_600); c = Cycle(4); feb_end = month_start_s(jan + 1) + 26 * DAY_S
    >>> m, p = add_part(*add_part(-1, (), 100.0, feb_end - 31 * DAY_S), 60.0, feb_end)
    >>> mid_mar = month_start_s(jan + 2) + 14 * DAY_S  # the latest window over: February's
    >>> burst_usage(m, p, c, mid_mar, 20.0), burst_usage(m, p, c, mid_mar + 31 * DAY_S, 20.0), burst_usage(m, p, c, mid_mar + 62 * DAY_S, 20.0)
    (0.6, 0.0, 0.0)
    >>> burst_usage(*add_part(-1, (), 10.0, feb_end - 31 * DAY_S), c, mid_mar - 31 * DAY_S, 20.0)
    -1.0
    """
    if len(parts) != MONTHS * BUCKETS or month < 0:
        return -1.0
    done = cycle.done(now_s)
    now = window_volume(month, parts, cycle.first, done)
    if done - 1 > month:  # no copy since the window before began: the batches missed
        kept = [v for k in range(month - MONTHS + 1, month + 1) if (v := window_volume(month, parts, cycle.first, k)) is not None]
        base = max(kept, default=0)
    else:
        base = window_volume(month, parts, cycle.first, done - 1)
    if now is None or base is None or base < least * QUANTUM:
        return -1.0
    return now / base


def burst_cycle(month: int, parts: Sequence[int], since_s: int, now_s: int) -> Cycle | None:
    """The account's monthly window when its kept activity of its two latest months over
    (:func:`add_part`, :func:`_hist`) is a burst rhythm (module docstring: followed
    ``BURST_HELD_S``, ``BURST_MIN`` events, decayed over ``HIST_TAU_S`` from the end of its last kept
    month, ``BURST_SHARE`` in the two adjacent parts that hold the most, :func:`burst_window`), else None.

    >>> jan = _month(1_767_225_600); p = (0,) * 18 + (16, 16, 16, 32, 640, 800); feb = month_start_s(jan + 1)
    >>> burst_cycle(jan, p, 0, feb), burst_cycle(jan, p, 0, feb - DAY_S), burst_cycle(jan, (16,) * 24, 0, feb)
    (Cycle(first=4), None, None)
    >>> burst_cycle(jan, p, feb - 59 * DAY_S, feb)
    """
    hist = _hist(month, parts, now_s)
    first = burst_window(hist)
    if first < 0 or now_s - since_s < BURST_HELD_S or burst_share(hist, first) < BURST_SHARE:
        return None
    if burst_share(hist, (first - 1) % BUCKETS) >= BURST_SHARE:  # the batch's part with the one before: its window ends sooner
        first = (first - 1) % BUCKETS
    if sum(hist) / QUANTUM * math.exp(-max(0, now_s - month_start_s(month + 1)) / HIST_TAU_S) < BURST_MIN:
        return None
    return Cycle(first)
