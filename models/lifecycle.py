"""Lifecycle stage: new, active, declining, dormant, churned, reactivated, by written rules.

The rules, first match wins (durations in days, ``gap`` = the user's usual interval between
active days, models.signals.visit_gap_days):

1. **churned** - a cancellation with no activity on a later day (at once), or silence >=
   max(churned_days, churned_factor x gap).
2. **dormant** - silence >= max(dormant_days, dormant_factor x gap).
3. **reactivated** - the previous stage was churned and the user is back (rules 1-2 no longer
   hold), and for ``new_days`` after that return. A return is a win-back signal.
4. **new** - first seen less than ``new_days`` ago.
5. **declining** - silence >= overdue_factor x gap ("overdue"), or, for users who are active
   several times a week (gap <= 3.5 days, so that one week says something), the 7-day rate fell
   below decline_ratio x the 4-week rate. Once declining, the rate must recover to
   (1 + decline_ratio) / 2 of the baseline to leave (hysteresis: no active/declining flapping).
6. **active** - everything else.

Why personal thresholds: a monthly buyer silent for three weeks is on schedule; a daily user
silent for three weeks is gone. The fixed days are floors so that daily users are not called
dormant after three days.

The stage depends on the previous stage (rules 3 and 5), which the state carries; the engine
calls :func:`next_change_s` to know when a silent user's stage can change next.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Final

from models.signals import Signals, trend_at
from models.state import DAY_S, STAGES, Stage, UserState

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["TREND_MAX_GAP_DAYS", "churned_after_days", "dormant_after_days", "next_change_s", "stage_of"]

#: Users with a usual interval above this are judged by overdue only: a week of their activity
#: holds too few visits for a rate to mean anything.
TREND_MAX_GAP_DAYS: Final[float] = 3.5
_CHURNED: Final[int] = STAGES.index("churned")
_REACTIVATED: Final[int] = STAGES.index("reactivated")
_DECLINING: Final[int] = STAGES.index("declining")
_INV_DAY: Final[float] = 1.0 / DAY_S


def dormant_after_days(gap_days: float, model: "ChurnModel") -> float:
    """Silence, in days, after which this user is dormant."""
    personal = model.dormant_factor * gap_days
    return personal if personal > model.dormant_days else model.dormant_days


def churned_after_days(gap_days: float, model: "ChurnModel") -> float:
    """Silence, in days, after which this user is churned."""
    personal = model.churned_factor * gap_days
    return personal if personal > model.churned_days else model.churned_days


def _trend_exit(model: "ChurnModel") -> float:
    return (1.0 + model.decline_ratio) / 2.0


def stage_of(st: UserState, sig: Signals, model: "ChurnModel") -> Stage:
    """The stage at ``sig.now_s`` given the previous stage stored in ``st`` (module docstring).

    >>> from models.model import ChurnModel
    >>> from models.signals import compute_signals
    >>> st = UserState(first_seen_s=0, last_seen_s=60 * DAY_S, n_events=30, active_days=30)
    >>> [stage_of(st, compute_signals(st, (60 + d) * DAY_S, ChurnModel()), ChurnModel()) for d in (1, 5, 30, 60)]
    ['active', 'declining', 'dormant', 'churned']
    """
    if sig.cancelled or st.n_events == 0 and st.cancelled_s:
        return "churned"
    silence, gap = sig.silence_days, sig.visit_gap_days
    if silence >= churned_after_days(gap, model):
        return "churned"
    if silence >= dormant_after_days(gap, model):
        return "dormant"
    since = st.stage_since_s
    if since and st.stage == _CHURNED:
        return "reactivated"
    if since and st.stage == _REACTIVATED and sig.now_s - since < model.new_days * DAY_S:
        return "reactivated"
    if sig.age_days < model.new_days:
        return "new"
    if sig.visit_overdue >= model.overdue_factor:
        return "declining"
    if gap <= TREND_MAX_GAP_DAYS:
        limit = _trend_exit(model) if since and st.stage == _DECLINING else model.decline_ratio
        if sig.trend < limit:
            return "declining"
    return "active"


def _first_second(start_s: int, days: float, holds: Callable[[int], bool]) -> int:
    """The first whole second from ``start_s + days`` on at which ``holds`` (the very test
    :func:`stage_of` makes, same float arithmetic) is true: exact, not one second late."""
    t = start_s + int(math.ceil(days * DAY_S))
    while not holds(t):  # float rounding can leave the exact second one short
        t += 1
    while holds(t - 1) and t - 1 > start_s:
        t -= 1
    return t


def next_change_s(st: UserState, sig: Signals, model: "ChurnModel", tolerance_s: int = 60) -> int:
    """The earliest event time after ``sig.now_s`` at which the stage can change if the user stays
    silent, or 0 when it cannot (churned stays churned until an event).

    Each candidate is a threshold crossing: the end of "new" or "reactivated", overdue, dormant,
    churned, and the decline of the 7-day rate (found by bisection to ``tolerance_s``, the rate
    being non-increasing in silence). Later candidates are harmless: a review at one of them
    that changes nothing just schedules the next.
    """
    now = sig.now_s
    if sig.cancelled or st.n_events == 0:
        return 0
    last, first = st.last_seen_s, st.first_seen_s
    gap = sig.visit_gap_days
    dormant_days, churned_days = dormant_after_days(gap, model), churned_after_days(gap, model)
    overdue = model.overdue_factor

    def silence(t: int) -> float:
        return (t - last) * _INV_DAY  # as models.signals computes it

    churned_at = _first_second(last, churned_days, lambda t: silence(t) >= churned_days)
    candidates = [
        churned_at,
        _first_second(last, dormant_days, lambda t: silence(t) >= dormant_days),
        _first_second(last, overdue * gap, lambda t: silence(t) / gap >= overdue),
        _first_second(first, model.new_days, lambda t: (t - first) * _INV_DAY >= model.new_days),
    ]
    if st.stage_since_s and st.stage == _REACTIVATED:
        since = st.stage_since_s
        candidates.append(_first_second(since, model.new_days, lambda t: t - since >= model.new_days * DAY_S))
    best = min((c for c in candidates if c > now), default=0)
    if gap <= TREND_MAX_GAP_DAYS and not (st.stage_since_s and st.stage == _DECLINING):
        limit = model.decline_ratio
        hi = best if best else churned_at
        if hi > now and sig.trend >= limit and trend_at(st, hi) < limit:
            lo = now  # trend(lo) >= limit > trend(hi)
            while hi - lo > tolerance_s:
                mid = (lo + hi) // 2
                if trend_at(st, mid) < limit:
                    hi = mid
                else:
                    lo = mid
            best = hi
    return best
