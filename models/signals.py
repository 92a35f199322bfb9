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
    "trend_at",
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
    act_1d: float
    act_7d: float
    act_28d: float
    act_90d: float
    view_28d: float
    click_28d: float
    message_28d: float
    trend: float  # 7-day daily rate / 4-week daily rate (1.0 with no activity at all)
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


def trend_at(st: UserState, now_s: int) -> float:
    """7-day daily rate over 4-week daily rate at ``now_s``; 1.0 when undefined.

    Non-increasing in silence: the 7-day counter decays faster than the 4-week one, and the
    young-account correction moves by less than that difference (see module docstring).

    >>> st = UserState(first_seen_s=0, last_seen_s=0, n_events=1, active_days=1, act_7d=1.0, act_28d=1.0)
    >>> trend_at(st, 0), round(trend_at(st, 14 * DAY_S), 3)
    (1.0, 0.387)
    """
    if st.act_28d <= 0.0:
        return 1.0
    silence = now_s - st.last_seen_s
    silence_days = silence * _INV_DAY if silence > 0 else 0.0
    age_days = max(now_s, st.last_seen_s) - st.first_seen_s
    age_days = age_days * _INV_DAY if age_days > 0 else 0.0
    if age_days <= 0.0:
        return 1.0
    # a7(now)/a28(now) = a7/a28 * exp(-silence (1/7 - 1/28))
    ratio = st.act_7d / st.act_28d * math.exp(-silence_days * (1.0 / 7.0 - 1.0 / 28.0))
    return ratio * _window_cover(age_days, 28.0) / _window_cover(age_days, 7.0)


def compute_signals(st: UserState, now_s: int, model: "ChurnModel") -> Signals:
    """All signals of ``st`` at ``now_s`` (see :class:`Signals`)."""
    population = model.population
    silence_s = now_s - st.last_seen_s
    silence = silence_s * _INV_DAY if silence_s > 0 else 0.0
    age = (max(now_s, st.last_seen_s) - st.first_seen_s) * _INV_DAY if st.n_events else 0.0
    tenure = (st.last_seen_s - st.first_seen_s) * _INV_DAY if st.n_events else 0.0
    if silence > 0.0:
        f1 = math.exp(-silence)
        f7 = math.exp(-silence / 7.0)
        f28 = math.exp(-silence / 28.0)
        f90 = math.exp(-silence / 90.0)
    else:
        f1 = f7 = f28 = f90 = 1.0
    trend = trend_at(st, now_s)  # one definition, shared with the engine's crossing search
    gap = visit_gap_days(st, float(population.get("visit_gap_days", DEFAULT_VISIT_GAP_DAYS)))
    view, click, message = st.view_28d * f28, st.click_28d * f28, st.message_28d * f28
    breadth = view / (1.0 + view) + click / (1.0 + click) + message / (1.0 + message)

    n_p = st.n_purchases
    if n_p > 0:
        x_f, t_x, T = summary_from_state(st, now_s)  # type: ignore[misc]  # not None: n_purchases > 0
        x = int(x_f)
        p_silence_s = now_s - st.last_purchase_s
        p_silence = p_silence_s * _INV_DAY if p_silence_s > 0 else 0.0
        prior = float(population.get("purchase_gap_days", DEFAULT_PURCHASE_GAP_DAYS))
        p_gap = max((t_x + _PRIOR_INTERVALS * prior) / (x + _PRIOR_INTERVALS), _MIN_GAP_DAYS)
        p_overdue = p_silence / p_gap
        breadth += math.exp(-p_silence / 28.0)
    else:
        x, t_x, T = 0, 0.0, 0.0
        p_silence = p_gap = p_overdue = 0.0
    cancelled = is_cancelled(st)
    c_days = max(now_s - st.cancelled_s, 0) * _INV_DAY if cancelled else 0.0
    return Signals(
        now_s=now_s,
        silence_days=silence,
        age_days=age,
        tenure_days=tenure,
        active_days=st.active_days,
        act_1d=st.act_1d * f1,
        act_7d=st.act_7d * f7,
        act_28d=st.act_28d * f28,
        act_90d=st.act_90d * f90,
        view_28d=view,
        click_28d=click,
        message_28d=message,
        trend=trend,
        visit_gap_days=gap,
        visit_overdue=silence / gap,
        n_purchases=n_p,
        purchase_x=x,
        purchase_t_x=t_x,
        purchase_T=T,
        purchase_silence_days=p_silence,
        purchase_gap_days=p_gap,
        purchase_overdue=p_overdue,
        breadth=breadth / 4.0,
        cancelled=cancelled,
        cancelled_days=c_days,
    )
