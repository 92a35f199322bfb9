"""A monthly burst rhythm: an account whose use comes in the same days of every month (QA23b F3).

Why: a developer platform's month-end batch customers (API calls and logins in the month's last
days, quiet the rest) got ``account_at_risk`` every month, 26 of 26 accounts: their developers
were "silent" two of their usual 6-8 day intervals after the batch, and the 2-week usage trend
fell after each burst. Such an account is healthy between its batches; it is news when a batch
does not come. The account learns the rhythm from its own activity, no declaration, no byte a user:

- *Where in the month.* Its activity (each member copy's gain, ``account_health.member_gain``)
  by the phase of the calendar month it came in, ``BUCKETS`` (6) parts of the month (a fifth of
  a 30-day month each: months of 28-31 days map alike), decayed over ``HIST_TAU_S`` (90 days, the
  3-month base's pace) (:func:`phase_bucket`; kept in ``account_health.Trend``).
- *A rhythm*: two adjacent parts (a third of the month, :class:`Cycle`, wrapping the month's end)
  hold ``BURST_SHARE`` (75%) of it or more, against a third for use spread over the month, once
  the account has been followed ``BURST_HELD_S`` (two months) and holds ``BURST_MIN`` events
  (:func:`burst_window`). A steady account's parts are within a few points of a sixth each.
- *Silence against the batch.* A member is silent only once a whole window after its last visit
  has passed without it, ``GRACE_S`` (2 days) after the window's end (:meth:`Cycle.due_s`); never
  before its own silence line.
- *Usage against the batch before.* The activity in each window (and its grace) is kept for the
  last three windows; once a window has passed, its figure against the window before is what the
  usage trend rule reads (:func:`burst_usage`): a batch that did not come reads 0.

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


def kept_window(hist: Sequence[float], kept: int) -> int:
    """The window the account's figures are kept for: the one kept before (``kept``, -1 none) while it
    still holds ``BURST_SHARE`` of ``hist``, else :func:`burst_window`. Why: a month-end batch of the
    last 3 days sits in the month's last part; the part before and the first of the next month hold
    its people's days around it, nearly alike, and a window moving between the two with each copy
    would start its figures again each time (QA23b: 3 of 26 batch accounts moved in a replay).

    >>> kept_window([2, 0, 0, 1, 3, 20], 5), kept_window([2, 0, 0, 1, 3, 20], -1), kept_window([9, 9, 0, 1, 1, 1], 4)
    (5, 4, 0)
    """
    return kept if kept >= 0 and burst_share(hist, kept) >= BURST_SHARE else burst_window(hist)


def add_phase(hist: Sequence[float], since_s: int, gain: float, ts_s: int) -> tuple[float, ...]:
    """``hist`` with ``gain`` at ``ts_s`` added to its part, to 6 significant digits (:func:`_digits`).
    The parts are kept grown from ``since_s`` rather than decayed to the latest time (``gain`` times
    ``exp((ts_s - since_s) / HIST_TAU_S)``): the same shares, one part touched a copy instead of six
    decayed (:func:`phase_total` reads them at a time; :func:`rebase` moves ``since_s``)."""
    hist = list(hist) if len(hist) == BUCKETS else [0.0] * BUCKETS
    b = phase_bucket(ts_s)
    hist[b] = _digits(hist[b] + gain * math.exp((ts_s - since_s) / HIST_TAU_S))
    return tuple(hist)


def rebase(hist: Sequence[float], since_s: int, to_s: int) -> tuple[float, ...]:
    """``hist`` grown from ``since_s`` (:func:`add_phase`) as grown from ``to_s`` instead."""
    if not hist or since_s == to_s:
        return tuple(hist)
    f = math.exp((since_s - to_s) / HIST_TAU_S)
    return tuple(_digits(h * f) for h in hist)


def phase_total(hist: Sequence[float], since_s: int, now_s: int) -> float:
    """The activity ``hist`` holds (grown from ``since_s``, :func:`add_phase`), decayed to ``now_s``."""
    return sum(hist) * math.exp(-(now_s - since_s) / HIST_TAU_S)


def _digits(x: float) -> float:
    """``x`` to 6 significant digits: the parts are read only as shares against a line (75%), and the
    account's record (``account_health.Trend.to_list``, JSON) keeps 6 numbers of 9 characters
    rather than of 18 (QA23b F3: 191 bytes against 80 before, 150 so)."""
    return float(f"{x:.6g}")


def add_volume(kept: Sequence[float], first: int, gain: float, ts_s: int) -> tuple[float, ...]:
    """The windows' activity ``(first part, month, this window, the one before, the one before
    that)`` once ``gain`` at ``ts_s`` is added: to its window's figure when it came in one (or its
    grace) of the last three; a later window starts a new figure. A record of another window (the
    rhythm moved) starts again. Activity between windows is not counted (a batch against a batch)."""
    cycle = Cycle(first)
    k = cycle.occurrence(ts_s)
    if ts_s >= cycle.end_s(k):
        return tuple(kept) if len(kept) == 5 and int(kept[0]) == first else (first, k, 0, 0, 0)
    if len(kept) != 5 or int(kept[0]) != first:
        return (first, k, gain, 0, 0)
    cur = int(kept[1])
    vols = list(kept[2:])
    if k > cur:
        shift = k - cur
        vols = [0.0] * min(shift, 3) + vols[: max(0, 3 - shift)]
        cur = k
    if 0 <= cur - k < 3:
        vols[cur - k] += gain
    return (first, cur, *vols)


def burst_usage(volumes: Sequence[float], cycle: Cycle, now_s: int, least: float) -> float:
    """The latest window over at ``now_s`` against the window before it (1.0 alike; 0.0: the batch
    did not come), or -1.0 when not judged: no record of this window, or the window before held
    less than ``least`` events.

    >>> c = Cycle(4); jan = _month(1_767_225_600)
    >>> mid_mar = month_start_s(jan + 2) + 14 * DAY_S  # the latest window over: February's
    >>> [burst_usage((4, jan + 1, 60.0, 100.0, 0.0), c, mid_mar, 20.0), burst_usage((4, jan, 100.0, 0.0, 0.0), c, mid_mar, 20.0)]
    [0.6, 0.0]
    >>> burst_usage((4, jan + 2, 5.0, 60.0, 100.0), c, mid_mar + 7 * DAY_S, 20.0), burst_usage((4, jan + 1, 60.0, 10.0, 0.0), c, mid_mar, 20.0)
    (0.6, -1.0)
    """
    if len(volumes) != 5 or int(volumes[0]) != cycle.first:
        return -1.0
    done, cur = cycle.done(now_s), int(volumes[1])
    vols = list(volumes[2:]) + [0.0, 0.0]
    if cur >= done:  # this window's figure and the one before, kept
        now, base = vols[cur - done], vols[cur - done + 1] if cur - done < 3 else 0.0
    else:  # no activity in a window since the kept one: the batch did not come
        now, base = 0.0, max(volumes[2:])
    return now / base if base >= least else -1.0


def burst_cycle(hist: Sequence[float], since_s: int, now_s: int, kept: int = -1) -> Cycle | None:
    """The account's monthly window when its kept activity ``hist`` (grown from ``since_s``,
    :func:`add_phase`) is a burst rhythm (module
    docstring: followed ``BURST_HELD_S``, ``BURST_MIN`` events, ``BURST_SHARE`` in one window: the
    one its figures are kept for, ``kept``, while it holds that share, :func:`kept_window`), else None.

    >>> burst_cycle([1, 1, 1, 2, 40, 50], 0, 61 * DAY_S), burst_cycle([1, 1, 1, 2, 40, 50], 0, 59 * DAY_S), burst_cycle([10] * 6, 0, 90 * DAY_S)
    (Cycle(first=4), None, None)
    """
    first = kept_window(hist, kept)
    if now_s - since_s < BURST_HELD_S or phase_total(hist, since_s, now_s) < BURST_MIN or burst_share(hist, first) < BURST_SHARE:
        return None
    return Cycle(first)
