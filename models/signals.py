"""The behavioural signals of one user at one event time, derived from the O(1) state.

Every score (health, temperature, risk, stage, reasons) reads these numbers, so they are
computed once per scoring in plain float math (no numpy: the stream scores one user at a time).

What the decayed counters mean: ``act_7d`` at time t is about "events in the last 7 days" (an
exponentially weighted count with a 7-day mean life, models/state.py). A user seen for less
than a window has not filled it yet, so rates divide by the part of the window the user could
have filled, ``tau * (1 - exp(-age / tau))``: a 3-day-old account is not "up 200%" just because
its 4-week counter is young.

Every signal that changes with silence moves one way only (counts decay, silence and overdue
grow, the trend falls): scores built on them are then monotonic in silence, which the engine
relies on to find the next threshold crossing by bisection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from models.bgnbd import summary_from_state
from models.state import DAY_S, UserState

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = [
    "DEFAULT_PURCHASE_GAP_DAYS",
    "DEFAULT_VISIT_GAP_DAYS",
    "Signals",
    "compute_signals",
    "is_cancelled",
    "recent_gap_days",
    "trend_at",
    "trend_long_at",
    "visit_gap_days",
]

#: Usual interval between active days assumed for a user with one active day, until train
#: measures the population's (``population["visit_gap_days"]``).
DEFAULT_VISIT_GAP_DAYS: Final[float] = 7.0
#: Same for purchases (``population["purchase_gap_days"]``).
DEFAULT_PURCHASE_GAP_DAYS: Final[float] = 30.0
#: Weight, in intervals, of the population's typical interval in a user's own estimate: with
#: two active days an hour apart the user's "usual interval" is not one hour.
_PRIOR_INTERVALS: Final[float] = 1.0
_MIN_GAP_DAYS: Final[float] = 1.0  # active days are counted per UTC day: no cadence below a day
_INV_DAY: Final[float] = 1.0 / DAY_S


@dataclass(slots=True)
class Signals:
    """Signals at ``now_s``; all durations in days, activity counts decayed to ``now_s``."""

    now_s: int
    silence_days: float  # since the last activity (0 when now is before it: late events)
    age_days: float  # since first seen
    tenure_days: float  # first to last activity
    active_days: int
    act_7d: float
    act_28d: float
    act_90d: float
    view_28d: float
    click_28d: float
    message_28d: float
    trend: float  # 7-day daily rate / 4-week daily rate (1.0 with no activity at all)
    trend_long: float  # 4-week daily rate / 90-day daily rate (1.0 with no activity at all)
    recent_gap_days: float  # recent completed intervals between active days (usual one without two active days)
    visit_gap_days: float  # usual interval between active days (shrunk towards the population's)
    visit_overdue: float  # silence / visit_gap_days
    n_purchases: int
    purchase_x: int  # BG/NBD repeat purchases (distinct later days, see models.bgnbd)
    purchase_t_x: float  # days from first to last purchase
    purchase_T: float  # days from first purchase to now
    purchase_silence_days: float  # since the last purchase (0 without purchases)
    purchase_gap_days: float  # usual interval between purchases (0 without purchases)
    purchase_overdue: float  # purchase silence / purchase_gap_days (0 without purchases)
    breadth: float  # 0-1: how many kinds of activity (view, click, message, purchase) in 4 weeks
    cancelled: bool  # a cancellation and no activity on a later day
    cancelled_days: float  # since that cancellation (0 when not cancelled)


def is_cancelled(st: UserState) -> bool:
    """A cancellation stands until the user is active on a later UTC day than the cancellation
    (activity the same day is the cancel flow itself, not a return)."""
    return st.cancelled_s > 0 and (st.n_events == 0 or st.last_seen_s // DAY_S <= st.cancelled_s // DAY_S)


def visit_gap_days(st: UserState, population_gap: float) -> float:
    """Usual interval between active days: (last - first) / (active_days - 1), shrunk towards the
    population's typical interval with the weight of one interval, and never below a day.

    >>> round(visit_gap_days(UserState(first_seen_s=0, last_seen_s=30 * DAY_S, active_days=11), 7.0), 3)
    3.364
    >>> visit_gap_days(UserState(first_seen_s=0, last_seen_s=0, active_days=1), 7.0)
    7.0
    """
    intervals = max(st.active_days - 1, 0)
    span = max(st.last_seen_s - st.first_seen_s, 0) * _INV_DAY
    gap = (span + _PRIOR_INTERVALS * population_gap) / (intervals + _PRIOR_INTERVALS)
    return gap if gap > _MIN_GAP_DAYS else _MIN_GAP_DAYS


def _window_cover(age_days: float, tau_days: float) -> float:
    """The share of a tau-day decayed window a user ``age_days`` old could have filled, times tau."""
    return -tau_days * math.expm1(-age_days / tau_days)


def _decay_and_trends(st: UserState, now_s: int) -> tuple[float, float, float, float, float, float, float]:
    """(silence days, age days, f7, f28, f90, trend, trend_long) at ``now_s``: the decay factors
    of the 7/28/90-day counters and the two rate ratios, 1.0 where undefined. One function, so
    the engine's crossing search (:func:`trend_at`) sees bit-identical trends."""
    silence_s = now_s - st.last_seen_s
    silence = silence_s * _INV_DAY if silence_s > 0 else 0.0
    age_s = (now_s if now_s > st.last_seen_s else st.last_seen_s) - st.first_seen_s
    age = age_s * _INV_DAY if age_s > 0 and st.n_events else 0.0
    if silence > 0.0:
        f7 = math.exp(-silence / 7.0)
        f28 = math.exp(-silence / 28.0)
        f90 = math.exp(-silence / 90.0)
    else:
        f7 = f28 = f90 = 1.0
    a28 = st.act_28d * f28
    if age <= 0.0 or a28 <= 0.0:
        return silence, age, f7, f28, f90, 1.0, 1.0
    c7 = _window_cover(age, 7.0)
    c28 = _window_cover(age, 28.0)
    trend = (st.act_7d * f7 / a28) * (c28 / c7)
    a90 = st.act_90d * f90
    trend_long = (a28 / a90) * (_window_cover(age, 90.0) / c28) if a90 > 0.0 else 1.0
    return silence, age, f7, f28, f90, trend, trend_long


def trend_at(st: UserState, now_s: int) -> float:
    """7-day daily rate over 4-week daily rate at ``now_s``; 1.0 when undefined.

    Non-increasing in silence: the 7-day counter decays faster than the 4-week one, and the
    young-account correction moves by less than that difference (see module docstring).

    >>> st = UserState(first_seen_s=0, last_seen_s=0, n_events=1, active_days=1, act_7d=1.0, act_28d=1.0)
    >>> trend_at(st, 0), round(trend_at(st, 14 * DAY_S), 3)
    (1.0, 0.406)
    """
    return _decay_and_trends(st, now_s)[5]


def trend_long_at(st: UserState, now_s: int) -> float:
    """4-week daily rate over 90-day daily rate at ``now_s`` (slow declines); 1.0 when undefined."""
    return _decay_and_trends(st, now_s)[6]


def recent_gap_days(st: UserState, usual_gap_days: float) -> float:
    """The recent interval between active days (``gap_ewma_days``, never below a day), or the
    usual one for a user without two active days. Does not change with silence (the open
    interval is what ``visit_overdue`` measures).

    >>> recent_gap_days(UserState(active_days=10, gap_ewma_days=2.5), 2.0), recent_gap_days(UserState(active_days=1), 7.0)
    (2.5, 7.0)
    """
    if st.active_days < 2:
        return usual_gap_days
    return st.gap_ewma_days if st.gap_ewma_days > _MIN_GAP_DAYS else _MIN_GAP_DAYS


def compute_signals(st: UserState, now_s: int, model: "ChurnModel") -> Signals:
    """All signals of ``st`` at ``now_s`` (see :class:`Signals`)."""
    population = model.population
    silence, age, f7, f28, f90, trend, trend_long = _decay_and_trends(st, now_s)
    tenure = (st.last_seen_s - st.first_seen_s) * _INV_DAY if st.n_events else 0.0
    gap = visit_gap_days(st, population.get("visit_gap_days", DEFAULT_VISIT_GAP_DAYS))
    view, click, message = st.view_28d * f28, st.click_28d * f28, st.message_28d * f28
    breadth = view / (1.0 + view) + click / (1.0 + click) + message / (1.0 + message)

    n_p = st.n_purchases
    if n_p > 0:
        x_f, t_x, T = summary_from_state(st, now_s)  # type: ignore[misc]  # not None: n_purchases > 0
        x = int(x_f)
        p_silence_s = now_s - st.last_purchase_s
        p_silence = p_silence_s * _INV_DAY if p_silence_s > 0 else 0.0
        prior = population.get("purchase_gap_days", DEFAULT_PURCHASE_GAP_DAYS)
        p_gap = (t_x + _PRIOR_INTERVALS * prior) / (x + _PRIOR_INTERVALS)
        if p_gap < _MIN_GAP_DAYS:
            p_gap = _MIN_GAP_DAYS
        p_overdue = p_silence / p_gap
        breadth += math.exp(-p_silence / 28.0)
    else:
        x, t_x, T = 0, 0.0, 0.0
        p_silence = p_gap = p_overdue = 0.0
    cancelled = is_cancelled(st)
    c_days = (now_s - st.cancelled_s) * _INV_DAY if cancelled and now_s > st.cancelled_s else 0.0
    if st.active_days < 2:
        recent = gap
    else:
        recent = st.gap_ewma_days if st.gap_ewma_days > _MIN_GAP_DAYS else _MIN_GAP_DAYS
    # Positional, in field order (keyword construction costs ~30% more on this hot path).
    return Signals(
        now_s, silence, age, tenure, st.active_days,
        st.act_7d * f7, st.act_28d * f28, st.act_90d * f90,
        view, click, message,
        trend, trend_long, recent, gap, silence / gap,
        n_p, x, t_x, T, p_silence, p_gap, p_overdue,
        breadth / 4.0, cancelled, c_days,
    )
