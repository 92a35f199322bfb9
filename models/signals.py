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

import bisect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Final

from models._native import init_args
from models.state import (ACCOUNT_MEMBER, DAY_S, GRIEVANCE, UserState, baseline_decay, in_trial, paused, purchase_summary, scheduled_cancel_s,
                          slot_lists, trial_lost)
from models.subscription import RENEWAL_GRACE_MS

if TYPE_CHECKING:  # pragma: no cover
    from models.compiled import CompiledModel
    from models.model import ChurnModel

__all__ = [
    "DEFAULT_PURCHASE_GAP_DAYS",
    "DEFAULT_VISIT_GAP_DAYS",
    "SILENT_CAP_S",
    "SILENT_INTERVALS",
    "SUSTAINED_AFTER_S",
    "Signals",
    "baseline_ahead",
    "calendar_hold_s",
    "compute_signals",
    "CREDIT_LATE_FACTOR",
    "credit_gap_days",
    "credit_late",
    "credit_late_at_s",
    "is_cancelled",
    "kinds_used",
    "late_at_days",
    "kinds_used_count",
    "paid_period_end_s",
    "renewal_days",
    "paid_period_passes_s",
    "paid_period_runs",
    "RENEWAL_GRACE_S",
    "recent_gap_days",
    "rate_ratio",
    "order_due_s",
    "order_gap_days",
    "reorder_late",
    "reorder_late_s",
    "reorder_late_opens_s",
    "days_overdue",
    "first_return_due_s",
    "grievance_stands",
    "order_overdue",
    "REORDER_LATE_CHANCE",
    "REORDER_LATE_FACTOR",
    "REORDER_MIN_INTERVALS",
    "bought_last",
    "silent_after",
    "still_pays",
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
_MIN_GAP_DAYS: Final[float] = 1.0  # active days are visit days (models.state): no cadence below a day
_INV_DAY: Final[float] = 1.0 / DAY_S
#: math.expm1 held once: mypyc has no primitive for it and looked it up on the math module at
#: every call (three per scoring); the same function, the same numbers.
_EXPM1: Final[Callable[[float], float]] = math.expm1
#: Not yet worked out (the memo fields of :class:`Signals`): a Final float, not ``math.nan``
#: (a module attribute the compiled core would look up at every use).
_NAN: Final[float] = float("nan")
#: A purchase counts as "used" in the reasons while its share of breadth, exp(-days / 28), is a
#: third or more, as a slot's n / (1 + n) is from n = 0.5.
_PURCHASE_USED_DAYS: Final[float] = 28.0 * math.log(3.0)
#: A slot's 4-week count from which its kind counts as "used" (n / (1 + n) a third).
_SLOT_USED: Final[float] = 0.5


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
    slot_7d: list[float]  # per slot (models.vocabulary): 7-day and 4-week counts
    slot_28d: list[float]
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
    breadth: float  # 0-1: share of the product's kinds of activity (models.compiled kinds) used in 4 weeks
    cancelled: bool  # a cancellation and no activity on a later day
    cancelled_days: float  # since that cancellation (0 when not cancelled)
    negative_28d: float  # negative-feedback events (models.vocabulary NEGATIVE), 4-week count
    # events since the user was first seen (the state's lifetime count; silence does not move it);
    # out of the repr: it is the state's own number (the golden digests hash the state and the
    # scores' repr, so a copy here would change a digest without changing any result)
    n_events: int = field(repr=False)
    # the end of the period paid for, epoch s (models.state period_end_day; 0 = unknown): the
    # risk's exit gate (models.risk.exit_open); out of the repr like n_events
    period_end_s: int = field(repr=False)
    # the end of a pause that runs, epoch s (a ``paused`` statement: models.state period_end_day
    # marked PAUSED; 0 = not paused): no silence counts against the user before it
    # (models.lifecycle rule 0, models.engine.alert_may_open; QA22a F1); out of the repr likewise
    paused_until_s: int = field(default=0, repr=False)
    # the latest statement is a trial (models.state.in_trial: the reasons say so), or the
    # cancellation of a trial that never paid (models.state.trial_lost: no save alert, action
    # win_back; QA23a F1); out of the repr likewise
    in_trial: bool = field(default=False, repr=False)
    trial_lost: bool = field(default=False, repr=False)
    # when a cancellation scheduled at the end of the paid period takes effect, epoch s (a cancel
    # request: models.state.scheduled_cancel_s; 0 = none pending): until then the user is a
    # customer asking to leave, not cancelled (QA23a F5); out of the repr likewise
    cancel_at_s: int = field(default=0, repr=False)
    # the user's events name a company account (models.state ACCOUNT_MEMBER): a subscription
    # stated on them is the account's, not the user's own plan (models.temperature
    # plan_carries, QA23a F4); out of the repr likewise
    member: bool = field(default=False, repr=False)
    # days from the last activity to the end of the period paid for, under a model that carries
    # the ``lifetime:`` volumes to the renewal (ChurnModel.lifetime_to_renewal, chosen by
    # ``train``; models.risk.by_renewal); 0 under any other model, without a known period end (none
    # stated, or a pause) or with the activity at or after it. Counted from what the user last
    # did, so silence does not move it; out of the repr likewise
    renewal_days: float = field(default=0.0, repr=False)
    # log1p of the signals the risk's features take it of (models.risk.feature_value), each worked
    # out at its first use and remembered here (NaN: not yet): a review's risk, its alert's reasons
    # and its look ahead read the same ones of the same signals (log1p is a generic call in the
    # compiled core, ~0.37k instructions with its boxing: docs/SCALING.md). A memo, no signal:
    # out of the repr (the golden digests hash it), comparisons and the constructor.
    _log_silence: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_visit_overdue: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_purchase_overdue: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_act_7d: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_act_28d: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_act_90d: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_tenure: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_active_days: float = field(default=math.nan, init=False, repr=False, compare=False)
    _log_purchases: float = field(default=math.nan, init=False, repr=False, compare=False)

    def __init__(
        self,
        now_s: int,
        silence_days: float,
        age_days: float,
        tenure_days: float,
        active_days: int,
        act_7d: float,
        act_28d: float,
        act_90d: float,
        slot_7d: list[float],
        slot_28d: list[float],
        trend: float,
        trend_long: float,
        recent_gap_days: float,
        visit_gap_days: float,
        visit_overdue: float,
        n_purchases: int,
        purchase_x: int,
        purchase_t_x: float,
        purchase_T: float,
        purchase_silence_days: float,
        purchase_gap_days: float,
        purchase_overdue: float,
        breadth: float,
        cancelled: bool,
        cancelled_days: float,
        negative_28d: float,
        n_events: int,
        period_end_s: int,
        paused_until_s: int = 0,
        in_trial: bool = False,
        trial_lost: bool = False,
        cancel_at_s: int = 0,
        member: bool = False,
        renewal_days: float = 0.0,
    ) -> None:
        # Written out, not generated by @dataclass: mypyc compiles this one (the generated one runs as Python).
        self.now_s = now_s
        self.silence_days = silence_days
        self.age_days = age_days
        self.tenure_days = tenure_days
        self.active_days = active_days
        self.act_7d = act_7d
        self.act_28d = act_28d
        self.act_90d = act_90d
        self.slot_7d = slot_7d
        self.slot_28d = slot_28d
        self.trend = trend
        self.trend_long = trend_long
        self.recent_gap_days = recent_gap_days
        self.visit_gap_days = visit_gap_days
        self.visit_overdue = visit_overdue
        self.n_purchases = n_purchases
        self.purchase_x = purchase_x
        self.purchase_t_x = purchase_t_x
        self.purchase_T = purchase_T
        self.purchase_silence_days = purchase_silence_days
        self.purchase_gap_days = purchase_gap_days
        self.purchase_overdue = purchase_overdue
        self.breadth = breadth
        self.cancelled = cancelled
        self.cancelled_days = cancelled_days
        self.negative_28d = negative_28d
        self.n_events = n_events
        self.period_end_s = period_end_s
        self.paused_until_s = paused_until_s
        self.in_trial = in_trial
        self.trial_lost = trial_lost
        self.cancel_at_s = cancel_at_s
        self.member = member
        self.renewal_days = renewal_days
        self._log_silence = self._log_visit_overdue = self._log_purchase_overdue = _NAN
        self._log_act_7d = self._log_act_28d = self._log_act_90d = _NAN
        self._log_tenure = self._log_active_days = self._log_purchases = _NAN

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return init_args(self)


def is_cancelled(st: UserState) -> bool:
    """A cancellation stands until the user is active on a later UTC day than the cancellation
    (activity the same day is the cancel flow itself, not a return)."""
    return st.cancelled_s > 0 and (st.n_events == 0 or st.last_seen_s // DAY_S <= st.cancelled_s // DAY_S)


def order_due_s(sig: Signals) -> int:
    """For a repeat buyer (purchases on two days or more: a purchase rhythm of their own), the
    first second at which their next order is overdue; 0 for everybody else. Overdue: purchase
    silence past their usual interval between purchases, the longer of their own mean interval
    (first to last purchase over the intervals, ``purchase_t_x / purchase_x``) and the
    signals' ``purchase_gap_days`` (models.signals), which shrinks the own one towards the
    population's typical interval by one interval's weight.

    Why the longer: the shrunk estimate alone put a 42-day buyer's order due at 36 days after
    two orders ((42 + 30) / 2 under the shipped default's 30-day prior; 38 after three): QA12 F1
    saw 120 live at-risk alerts on regular re-orderers at 0.81-1.00 of their own interval, and
    580 in a backtest with the shipped model, each against the README's "no at-risk alert before
    their next order is due". The prior is there for the opposite case, two orders a day apart
    that show no rhythm yet: it then lengthens the wait, and the longer of the two keeps that.

    Why: a repeat buyer is judged by the rhythm that carries the relationship, the orders, as
    the temperature's purchase rhythm does (BG/NBD: Fader, Hardie & Lee 2005). Their visits come
    around the orders, irregularly, so silence against the *visit* rhythm alone says little:
    before the next order is due, a monthly buyer silent for three weeks is on schedule (the
    lifecycle's own example). Measured (benchmarks.alert_breakdown, simulate-mix, shipped default):
    90% of the at-risk alerts on buyers who kept buying came before their next order was due.
    Monotone in silence (purchase silence only grows), so the engine schedules a review at that
    second (models.engine._next_review) and the alert opens then if the risk is still high.
    """
    if sig.purchase_x < 1:
        return 0
    gap = order_gap_days(sig)
    if gap > sig.purchase_gap_days:  # a rhythm slower than the population's: the order is due at the user's own
        if sig.purchase_silence_days >= gap:
            return 0
    elif sig.purchase_overdue >= 1.0:
        return 0
    # one second past the exact crossing, so float rounding cannot leave the review a hair early
    return sig.now_s + int(math.ceil((gap - sig.purchase_silence_days) * DAY_S)) + 1


def bought_last(sig: Signals) -> bool:
    """Whether a buyer was seen on no activity since their last purchase: their purchase silence is
    their silence, so their purchase rhythm and their visits read the same silence (purchase-only
    data, CDNOW's, always). Fixed in silence (both silences grow alike). The test of
    models.temperature.purchases_speak and models.lifecycle.lapse_floor_days for a buyer without a
    re-order rhythm (:data:`REORDER_MIN_INTERVALS`): one who kept using the product after their
    last order is judged by the visits (QA22b F9)."""
    return sig.n_purchases > 0 and sig.purchase_silence_days <= sig.silence_days


def order_gap_days(sig: Signals) -> float:
    """A repeat buyer's usual interval between orders, the one their next order is due at
    (:func:`order_due_s`): the longer of their own mean interval (``purchase_t_x / purchase_x``)
    and the shrunk ``purchase_gap_days``; 0 for a user without purchases on two days.
    One implementation: the due time, the re-order alert, its reason and ``top``'s column read it."""
    if sig.purchase_x < 1:
        return 0.0
    own = sig.purchase_t_x / sig.purchase_x
    return own if own > sig.purchase_gap_days else sig.purchase_gap_days


#: The re-order alert (QA12 F2; docs/SCORES.md "Re-order overdue: a save alert for repeat
#: buyers"). A customer who buys at their own steady rate buys as a Poisson process while they
#: are a customer (the purchase model of Pareto/NBD, Schmittlein, Morrison & Colombo 1987, and
#: BG/NBD, Fader, Hardie & Lee 2005): the chance of a silence of ``s`` days with no order from a
#: customer still buying at their rate is exp(-s / their usual interval). The alert opens where
#: that chance falls to this level, one in five: from then on "still buying, just a long gap" is
#: the less likely reading by four to one. A stated level, not fitted to any data.
REORDER_LATE_CHANCE: Final[float] = 0.2
#: The silence, in usual intervals, at which that chance is reached: ln(1 / 0.2) = 1.61.
REORDER_LATE_FACTOR: Final[float] = math.log(1.0 / REORDER_LATE_CHANCE)
#: Intervals (purchase days - 1) a buyer needs before the re-order alert reads their rhythm: one
#: interval is a single gap, not yet a rhythm (its mean has a standard error of 100% under the
#: same Poisson model, 1 / sqrt(intervals)); two show a gap repeated. QA12's naive rule used the same
#: (three orders).
REORDER_MIN_INTERVALS: Final[int] = 2


def late_at_days(sig: Signals) -> float:
    """The purchase silence (days) from which a buyer with a rhythm is late; 0 without one (the one
    line :func:`reorder_late` and the lifecycle's lapse of a user with a use of their own read)."""
    if sig.purchase_x < REORDER_MIN_INTERVALS:
        return 0.0
    return REORDER_LATE_FACTOR * order_gap_days(sig)


#: The renewal's grace in seconds (models.subscription.RENEWAL_GRACE_MS: why a day).
RENEWAL_GRACE_S: Final[int] = RENEWAL_GRACE_MS // 1000

_SILENT_S: Final[int] = 14 * DAY_S
#: A user is silent past its own rhythm after ``SILENT_INTERVALS`` of its usual intervals between
#: active days, if that is longer than 14 days, and at most after ``SILENT_CAP_S`` (:func:`silent_line_s`).
#: 2 is the lifecycle's ``overdue_factor`` (``models.model.ChurnModel``, models.lifecycle rule 5:
#: "declining" once a user's silence is 2 usual intervals), the user side's "silent past its own rhythm".
SILENT_INTERVALS: Final[float] = 2.0
#: ... and 30 days (a month, the model's horizon) at most (models.account_health.silent_after_s says why).
SILENT_CAP_S: Final[int] = 30 * DAY_S


def silent_line_s(gap_days: float) -> int:
    """The silence (seconds) past a user's own rhythm: the larger of 14 days and ``SILENT_INTERVALS``
    of ``gap_days`` (its usual interval between active days), at most ``SILENT_CAP_S``; 14 days
    when the rhythm is unknown. An account's silent member (models.account_health.silent_after_s)
    and the settling window after the product's quiet period (:func:`calendar_hold_s`).

    >>> [silent_line_s(g) // DAY_S for g in (0.0, 1.4, 7.0, 10.0, 20.0, float("nan"))]
    [14, 14, 14, 20, 30, 14]
    """
    if not gap_days > 0.0:  # unknown (or not a number: a damaged record)
        return _SILENT_S
    own = SILENT_INTERVALS * gap_days * DAY_S
    return _SILENT_S if own < _SILENT_S else SILENT_CAP_S if own > SILENT_CAP_S else int(own)


#: A 4-week figure holds a quiet period for 8 weeks after its end: the account's sustained fall
#: (models.quiet_period, ``models.account_health.sustained_line``, QA23b F4) is not judged until then,
#: nor a returned user's decline (:func:`calendar_hold_s`), or a season would read as a fall once its
#: settling window had passed. Why 8 weeks: two of the figure's time constants (28 days) leave at most
#: e^-2 (14%) of the season's hole in it, so a figure back at its usual rate reads 86% or more.
SUSTAINED_AFTER_S: Final[int] = 56 * 86_400


def calendar_hold_s(starts: tuple[int, ...], ends: tuple[int, ...], first_seen_s: int, last_seen_s: int, now_s: int,
                    gap_days: float) -> int:
    """Until when the product's declared quiet period holds a user's silence (0: it does not):
    the period whose first second ``starts[i]`` (sorted occurrences, ``ends[i]`` the second after
    its last day: models.compiled ``calendar_starts``/``calendar_ends``) is the latest at or before
    ``now_s``, while ``now_s`` is before its end plus the user's settling window, the user's silence
    line (:func:`silent_line_s`: 14 days, or 2 of its usual intervals, 30 days at most), and the
    user was not already silent past that line when the period began (the period explains no
    silence before it) and was first seen before its end (a newcomer after it has no season in its
    counters). A user back after the end is held while it keeps coming, until its own silence line
    after its latest visit, and 8 weeks after the end at most (:data:`SUSTAINED_AFTER_S`): its 4-week
    figures hold the season's hole until then (QA24b: 215 at-risk alerts on the settling window's
    last day, 177 of them users back since 09-01, "4-week activity down 56% against the 3-month
    rate"); silent again, its silence is counted from its return. The engine reads it as a pause (``Signals.paused_until_s``: stage held, no
    at-risk alert from silence or decline, a review at its end; models.lifecycle rule 0); facts
    still count (a cancellation churns, a cancellation request or a grievance opens the alert).

    >>> d = DAY_S; starts, ends = (181 * d, 535 * d), (243 * d, 597 * d)  # 07-01..08-31 in two years
    >>> [calendar_hold_s(starts, ends, 0, 175 * d, t * d, 1.0) // d for t in (180, 181, 250, 256, 257)]
    [0, 257, 257, 257, 0]
    >>> calendar_hold_s(starts, ends, 0, 160 * d, 200 * d, 1.0), calendar_hold_s(starts, ends, 0, 175 * d, 200 * d, 10.0) // d
    (0, 263)
    >>> [calendar_hold_s(starts, ends, 0, seen * d, 260 * d, 1.0) // d for seen in (246, 259, 300)], calendar_hold_s(starts, ends, 245 * d, 259 * d, 260 * d, 1.0)
    ([0, 273, 299], 0)
    """
    i = bisect.bisect_right(starts, now_s) - 1
    if i < 0 or first_seen_s >= ends[i]:
        return 0
    line = silent_line_s(gap_days)
    until = ends[i] + line
    if last_seen_s >= ends[i]:  # back after the period: held while it keeps coming, 8 weeks at most
        until = last_seen_s + line if last_seen_s + line < ends[i] + SUSTAINED_AFTER_S else ends[i] + SUSTAINED_AFTER_S
    return until if now_s < until and last_seen_s > starts[i] - line else 0


def paid_period_passes_s(sig: Signals) -> int:
    """The second from which the paid period ``sig`` knows counts as passed unrenewed: its end plus
    :data:`RENEWAL_GRACE_S` (the renewal statement's usual delay); the end itself once a
    cancellation stands (a cancellation scheduled at the end takes effect then: no renewal is
    awaited); 0 when no end is known."""
    end = sig.period_end_s
    return end + RENEWAL_GRACE_S if end > 0 and not sig.cancelled else end


def paid_period_runs(sig: Signals) -> bool:
    """Whether a paid period runs at ``sig.now_s``: the latest ``subscription`` statement is
    ``active`` with an MRR above 0 and its period end, plus the renewal's grace
    (:func:`paid_period_passes_s`), is after now (models.state keeps the end only for such a
    statement; a pause keeps its resume date apart, ``paused_until_s``). The one test of
    models.lifecycle rule 0 (a customer, not lapsed), of :func:`reorder_late` and of the save
    list's key (models.risk.savable: the subscriber has not left the contract)."""
    return paid_period_passes_s(sig) > sig.now_s


def still_pays(sig: Signals, pays: bool) -> bool:
    """Whether a user whose latest ``subscription`` statement pays (``pays``: models.state
    PAYS_SUBSCRIPTION) is paying at ``sig.now_s``, for the action (models.actions): while the
    stated period runs (:func:`paid_period_runs`, the lifecycle's test), or always when no period
    end is stated. QA25a F2 (2026-12-05): a prepaid bundle that lapsed with no statement after it
    told a dormant user, silent 47 days since the period ended, ``educate`` (paying, not using)."""
    return pays and (sig.period_end_s == 0 or paid_period_runs(sig))


def reorder_late(sig: Signals) -> bool:
    """Whether a repeat buyer with a rhythm (:data:`REORDER_MIN_INTERVALS`) has been silent on
    orders for :data:`REORDER_LATE_FACTOR` usual intervals (:func:`order_gap_days`): the chance a
    customer still buying at their own rate shows such a silence is :data:`REORDER_LATE_CHANCE`.
    Never while a paid period runs (``period_end_s`` after now, models.lifecycle rule 0's test):
    the subscription is the re-order, and the purchases besides it are add-ons whose pause says
    nothing of the plan (QA21 F3: 21 paying subscribers got re-order alerts on their add-on
    rhythm, #8 of ``top -n 20`` "usual re-order every 29 days, none for 130 days" while paying
    34.50 a month). From the period's end (a day later with no renewal stated:
    :func:`paid_period_passes_s`; a cancellation, a failed payment) the rhythm counts again. Monotone in silence: once true, true until the next order or a
    statement (an event)."""
    late = late_at_days(sig)
    return late > 0.0 and sig.purchase_silence_days >= late and not paid_period_runs(sig)


def reorder_late_s(sig: Signals) -> int:
    """The first second at which :func:`reorder_late` holds, when it does not yet at
    ``sig.now_s``; 0 when it already does or never can (no rhythm). The interval does not move
    in silence (no order, no new interval), so this second does not either: the engine reviews
    the user then (models.engine._next_review)."""
    late = late_at_days(sig)
    if late <= 0.0 or sig.purchase_silence_days >= late:
        return 0
    # one second past the exact crossing, as order_due_s: float rounding cannot leave it a hair early
    return sig.now_s + int(math.ceil((late - sig.purchase_silence_days) * DAY_S)) + 1


def reorder_late_opens_s(sig: Signals) -> int:
    """The first second at which :func:`reorder_late` itself holds, when it does not at
    ``sig.now_s``: the rhythm's (:func:`reorder_late_s`), or the end of a paid period running
    then (with its renewal's grace: :func:`paid_period_passes_s`), whichever is later; 0 when it already holds or never can (no rhythm). Fixed in
    silence (neither moves without an event), so the engine reviews the user then
    (models.engine._next_review). :func:`reorder_late_s` stays the rhythm's own second: before it
    no alert opens for a buyer with a rhythm (models.engine.alert_may_open), paying or not."""
    late = reorder_late_s(sig)
    end = paid_period_passes_s(sig)
    if end > sig.now_s and late < end and late_at_days(sig) > 0.0:
        return end
    return late


#: The recurring-credit alert (models.vocabulary ``recurring``: a salary, a pension, a weekly
#: report; docs/SCORES.md "A recurring credit overdue"). Such an event is no Poisson process, as
#: orders are (:data:`REORDER_LATE_FACTOR`): it comes on a calendar, and what moves it is the
#: calendar itself, a pay day on a weekend or a bank holiday paid a working day or two before or
#: after, months of 28 to 31 days: a monthly credit's interval runs from about 26 to 34 days, up
#: to a tenth of the month either side of its mean. It is late once the silence since the last
#: one passes the user's usual interval by a fifth (twice that): 36.5 days for a monthly salary,
#: 8.4 for a weekly report. A stated margin, not fitted to any data (QA19's one-line rule, "no
#: salary for 35 days", is a monthly salary's 1.15).
CREDIT_LATE_FACTOR: Final[float] = 1.2


def credit_gap_days(st: UserState) -> float:
    """A user's usual interval between their recurring events, days: the mean of the intervals
    from the first to the last (distinct UTC days, models.state ``n_recurring``); 0 without a
    rhythm yet (:data:`REORDER_MIN_INTERVALS` intervals, as for orders: a single gap is no rhythm)."""
    if st.n_recurring - 1 < REORDER_MIN_INTERVALS:
        return 0.0
    return (st.last_recurring_s - st.first_recurring_s) / DAY_S / (st.n_recurring - 1)


def credit_late_at_s(st: UserState) -> int:
    """The first second at which the user's next recurring event is late (the last one's time
    plus :data:`CREDIT_LATE_FACTOR` usual intervals, :func:`credit_gap_days`); 0 without a
    rhythm. Fixed while none comes (nothing else moves it), so the engine reviews the user then
    (models.engine._next_review), as at a re-order late (:func:`reorder_late_s`).

    >>> st = UserState(first_recurring_s=0, last_recurring_s=60 * DAY_S, n_recurring=3)
    >>> credit_late_at_s(st) == 96 * DAY_S, credit_late_at_s(UserState(last_recurring_s=30 * DAY_S, n_recurring=2))
    (True, 0)
    """
    gap = credit_gap_days(st)
    if gap <= 0.0:
        return 0
    return st.last_recurring_s + int(math.ceil(CREDIT_LATE_FACTOR * gap * DAY_S))


def credit_late(st: UserState, now_s: int) -> bool:
    """Whether the user's recurring event (a salary) is late at ``now_s`` (:func:`credit_late_at_s`):
    an at-risk alert opens whatever the risk (models.engine), with this fact first (models.reasons),
    and stays open until the next one comes. Monotone in silence."""
    late = credit_late_at_s(st)
    return late > 0 and now_s >= late


def _first_order_due_s(sig: Signals) -> int:
    """For a buyer with purchases on one day only, the first second at which their purchase
    silence passes the population's usual interval between purchases (``purchase_gap_days``,
    which is the population's for them: no interval of their own to shrink towards it); 0 once
    it has, and for everybody else."""
    if sig.purchase_x >= 1 or sig.n_purchases == 0:
        return 0
    silence, gap = sig.purchase_silence_days, sig.purchase_gap_days
    if silence >= gap:
        return 0
    # one second past the exact crossing, as order_due_s: float rounding cannot leave it a hair early
    return sig.now_s + int(math.ceil((gap - silence) * DAY_S)) + 1


def first_return_due_s(sig: Signals, first_return_days: float) -> int:
    """For a new customer, who has no rhythm of their own yet, the first second at which they
    have missed their first return by the population's usual interval (the model's, ``train``
    measures it); 0 once they have, and for everybody else. A buyer with purchases on one day
    only: their first re-order is due at the population's usual interval between purchases
    (:func:`_first_order_due_s`); a user active on a single day who never bought: their silence
    has reached ``first_return_days``, the product's first-return interval (models.compiled:
    the silence by which all but :data:`REORDER_LATE_CHANCE`, 1 in 5, of the customers who came
    back for a second active day had come back; ``train`` measures it; 0.0 until it has, and then
    the usual interval between active days stands in, ``visit_gap_days``: for them the
    population's plus the span of their one day; never below a day, ``_MIN_GAP_DAYS``: the
    customers of fightchurn's social apps come back within 0.65-0.74 days). A repeat buyer's next order is
    :func:`order_due_s`'s, anybody else's return is read by the risk itself.

    Why (QA17 F2): the first days are the riskiest of a customer's life (the tenure hazard), so
    a model whose alert line sits under that risk flagged every one-order customer as soon as
    they were a day old: 1,065 of 1,576 new customers of a coffee shop within 25 h of their first
    order, 468 of 595 future loyal regulars, whose next order was due weeks later. A day-old
    customer has not yet had the chance to come back; the alert waits until they have.
    Why a first-return interval of its own (QA19 F8): ``visit_gap_days`` is the median
    customer's mean interval, which a customer coming back at that rate passes in silence
    e^-1 = 37% of the time: a neobank whose customers are active every 1.6 days had 799 at-risk
    alerts on customers active on a single day, 531 of them on customers who stay (its customers
    who came back: 63% within 1.55 days, 80% within 2.4).
    Monotone in silence and fixed while silent (neither interval moves without an event), so the
    engine schedules a review at that second (models.engine._next_review_by_risk), as for
    :func:`order_due_s`."""
    if sig.n_purchases > 0:
        return _first_order_due_s(sig)
    if first_return_days <= 0.0:  # not measured
        gap = sig.visit_gap_days
    else:  # active days are visit days: no cadence below a day, as for the usual interval
        gap = first_return_days if first_return_days > _MIN_GAP_DAYS else _MIN_GAP_DAYS
    if sig.active_days > 1 or sig.silence_days >= gap:
        return 0
    return sig.now_s + int(math.ceil((gap - sig.silence_days) * DAY_S)) + 1


def order_overdue(sig: Signals) -> bool:
    """Whether a buyer's next order is overdue: a repeat buyer past the time :func:`order_due_s`
    gives, a one-order buyer past the one :func:`_first_order_due_s` gives (the population's
    interval). The action reads it (models.actions ``overdue``: their payment, the order, is
    late, so they are not paying by the temperature; QA17 F6)."""
    return sig.n_purchases > 0 and order_due_s(sig) <= sig.now_s and _first_order_due_s(sig) == 0


def grievance_stands(st: UserState, sig: Signals, horizon_days: float) -> bool:
    """Whether a paying customer's grievance stands at ``sig.now_s`` (models.state ``GRIEVANCE``:
    a complaint, a refund asked for, a chargeback since their last purchase, models.vocabulary)
    and has not faded: the 4-week negative-feedback count is still at least what one such event
    leaves after the risk's horizon (``horizon_days``: e^(-30 / 28) = 0.34 under a 30-day one), so
    a single grievance stands for the horizon, the time the risk looks ahead. The engine opens an
    at-risk alert for it whatever the risk, and does not close it as recovered while it stands
    (as for a re-order late, :func:`reorder_late`): a visit is no answer to a complaint, the next
    order is.

    Why (QA17 F8): the default risk weighs negative feedback as a share of 4-week activity, made
    for products where dislikes and unfriends are frequent; in a shop a complaint, then a refund
    request, is the moment to call, and 18 of 386 churners who complained got an at-risk alert
    within 14 days of it. The count is the role's (dislikes with grievances in a product that has
    both: a grievance among many dislikes fades later), monotone in silence (it only decays), so
    a grievance never comes back in silence."""
    return st.flags & GRIEVANCE != 0 and sig.negative_28d >= math.exp(-horizon_days / 28.0)


def days_overdue(sig: Signals) -> float | None:
    """Days a repeat buyer's next order is overdue against their usual interval
    (:func:`order_gap_days`; negative: days until it is due); None for a user without purchases
    on two days (no rhythm to be late against). ``churnwatch top`` shows it (QA12 F5)."""
    if sig.purchase_x < 1:
        return None
    return sig.purchase_silence_days - order_gap_days(sig)


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
    return -tau_days * _EXPM1(-age_days / tau_days)


def rate_ratio(a7: float, a28: float, age: float) -> float:
    """7-day daily rate over 4-week daily rate of two decayed counts of one activity, for a user
    ``age`` days old (the young-account correction of the module docstring); 1.0 when undefined.

    >>> round(rate_ratio(1.0, 4.0, 365.0), 4), rate_ratio(0.0, 0.0, 30.0)
    (1.0, 1.0)
    """
    if age <= 0.0 or a28 <= 0.0:
        return 1.0
    return (a7 / a28) * (_window_cover(age, 28.0) / _window_cover(age, 7.0))


def _trends(a7: float, a28: float, a90: float, age: float) -> tuple[float, float]:
    """(7-day rate / 4-week rate, 4-week rate / 90-day rate) of counts already decayed to the
    time of interest, for a user ``age`` days old; 1.0 where undefined."""
    if age <= 0.0 or a28 <= 0.0:
        return 1.0, 1.0
    c7 = _window_cover(age, 7.0)
    c28 = _window_cover(age, 28.0)
    trend = (a7 / a28) * (c28 / c7)
    trend_long = (a28 / a90) * (_window_cover(age, 90.0) / c28) if a90 > 0.0 else 1.0
    return trend, trend_long


def _breadth(slot_28d: list[float], g: float, n_purchases: int, purchase_silence: float, c: "CompiledModel") -> float:
    """0-1: the share of the product's kinds of activity the user used over about 4 weeks, each
    kind counting n / (1 + n) of its 4-week count n, purchases exp(-days since the last / 28)
    (breadth of use: Gold, *Fighting Churn with Data*, 2020, ch. 7 — users of more features churn
    less). Counted against the kinds the *product* has (models.compiled ``kinds``: those its
    history used, written by ``train``), not against every kind the model can tell apart: a
    product with three event types and no purchases is not "narrow" for a user of all three.
    Takes the compiled model its callers already hold (``model.compiled`` is a generic attribute
    lookup on the Python class ChurnModel, twice per review). Each count is ``slot_28d``'s times
    ``g``: 1.0 for counts already decayed to the time of interest (``n * 1.0`` is ``n``), a decay
    factor for a look ahead's (models.risk.leave_after: the products :func:`silent_after`'s list
    holds, without the list)."""
    breadth = 0.0
    if c.kinds_all and len(slot_28d) == len(c.kinds):
        # the kinds are the slots 0, 1, ... n - 1: the list walked in place, the same sum in the
        # same order (an index read per kind was a tuple item, a list item and a check each)
        for m in slot_28d:
            n = m * g
            if n > 0.0:
                breadth += n / (1.0 + n)
    else:
        for i in c.kinds:
            n = slot_28d[i] * g
            if n > 0.0:
                breadth += n / (1.0 + n)
    if n_purchases > 0 and c.purchase_kind:
        breadth += math.exp(-purchase_silence / 28.0)
    return breadth / c.n_kinds


def kinds_used(sig: Signals, model: "ChurnModel", c: "CompiledModel | None" = None) -> tuple[list[int], bool]:
    """(slots, purchases) among the product's kinds that the user used in about 4 weeks: those
    whose share in :func:`_breadth` is at least a third (a 4-week count of 0.5 or more, a purchase
    within 28 ln 3 = 31 days). The reasons' "uses N of M kinds" counts these, out of the same
    M as the breadth (``model.compiled.n_kinds``). ``c``: ``model.compiled`` where the caller
    holds it."""
    if c is None:
        c = model.compiled
    slots = [i for i in c.kinds if sig.slot_28d[i] >= _SLOT_USED]
    return slots, _bought(sig, c)


def _bought(sig: Signals, c: "CompiledModel") -> bool:
    return c.purchase_kind and sig.n_purchases > 0 and sig.purchase_silence_days <= _PURCHASE_USED_DAYS


def kinds_used_count(sig: Signals, c: "CompiledModel") -> int:
    """``len(slots) + bought`` of :func:`kinds_used`, without the list: the reasons' "narrow"
    test needs only the count, once or twice an alert, and the list of boxed slot indices cost
    ~0.9k instructions a call in the compiled core (callgrind, docs/SCALING.md)."""
    slot_28d = sig.slot_28d
    n = 0
    if c.kinds_all and len(slot_28d) == len(c.kinds):  # the kinds are the slots in order (as _breadth)
        for m in slot_28d:
            if m >= _SLOT_USED:
                n += 1
    else:
        for i in c.kinds:
            if slot_28d[i] >= _SLOT_USED:
                n += 1
    return n + 1 if _bought(sig, c) else n


def _decay_and_trends(st: UserState, now_s: int, peak_starts: tuple[int, ...] = (),
                      peak_ends: tuple[int, ...] = ()) -> tuple[float, float, float, float, float, float, float]:
    """(silence days, age days, f7, f28, f90, trend, trend_long) at ``now_s``: the decay factors
    of the 7/28/90-day counters and the two rate ratios, 1.0 where undefined. The 90-day counter
    does not decay inside the product's declared peaks (``peak_starts``/``peak_ends``: models.state.peak_s)."""
    silence_s = now_s - st.last_seen_s
    silence = silence_s * _INV_DAY if silence_s > 0 else 0.0
    age_s = (now_s if now_s > st.last_seen_s else st.last_seen_s) - st.first_seen_s
    age = age_s * _INV_DAY if age_s > 0 and st.n_events else 0.0
    if silence > 0.0:
        f7 = math.exp(-silence / 7.0)
        f28 = math.exp(-silence / 28.0)
        f90 = math.exp(-silence / 90.0) if not peak_starts else baseline_decay(st.last_seen_s, now_s, peak_starts, peak_ends)
    else:
        f7 = f28 = f90 = 1.0
    trend, trend_long = _trends(st.act_7d * f7, st.act_28d * f28, st.act_90d * f90, age)
    return silence, age, f7, f28, f90, trend, trend_long


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


def compute_signals(st: UserState, now_s: int, model: "ChurnModel", c: "CompiledModel | None" = None) -> Signals:
    """All signals of ``st`` at ``now_s`` (see :class:`Signals`). ``c``: ``model.compiled`` where
    the caller holds it (``model.compiled`` is a generic attribute lookup: models.scoring.assess)."""
    if c is None:
        c = model.compiled  # the population's priors as numbers (models.compiled: no dict lookup)
    silence, age, f7, f28, f90, trend, trend_long = _decay_and_trends(st, now_s, c.peak_starts, c.peak_ends)
    tenure = (st.last_seen_s - st.first_seen_s) * _INV_DAY if st.n_events else 0.0
    gap = visit_gap_days(st, c.visit_gap_days)
    behind = ((now_s if now_s > st.last_seen_s else st.last_seen_s) - st.slots_at_s) * _INV_DAY  # models.state._add_to_slot
    g7, g28 = math.exp(-behind / 7.0), math.exp(-behind / 28.0)
    n_slots = c.vocabulary.n_slots
    if len(st.slot_counts) == 8 * n_slots:
        slot_7d, slot_28d = slot_lists(st, g7, g28)  # none multiplied where the slots are kept at this very second
        negative = st.negative_28d * g28
    else:
        # Slots of another vocabulary (a state kept under another model, or one whose only
        # events are not activity, such as a cancellation): read as models.state.apply_event
        # restarts them at the next activity, empty, so the features match the model's slots.
        slot_7d = [0.0] * n_slots
        slot_28d = [0.0] * n_slots
        negative = 0.0

    n_p = st.n_purchases
    if n_p > 0:
        x, t_x, T = purchase_summary(st, now_s)  # models.bgnbd.summary_from_state's (x, t_x, T)
        p_silence_s = now_s - st.last_purchase_s
        p_silence = p_silence_s * _INV_DAY if p_silence_s > 0 else 0.0
        p_gap = (t_x + _PRIOR_INTERVALS * c.purchase_gap_days) / (x + _PRIOR_INTERVALS)
        if p_gap < _MIN_GAP_DAYS:
            p_gap = _MIN_GAP_DAYS
        p_overdue = p_silence / p_gap
    else:
        x, t_x, T = 0, 0.0, 0.0
        p_silence = p_gap = p_overdue = 0.0
    cancel_at = scheduled_cancel_s(st, now_s) if st.cancelled_s > now_s else 0  # (rare: a request pending)
    cancelled = cancel_at == 0 and is_cancelled(st)
    c_days = (now_s - st.cancelled_s) * _INV_DAY if cancelled and now_s > st.cancelled_s else 0.0
    if st.active_days < 2:
        recent = gap
    else:
        recent = st.gap_ewma_days if st.gap_ewma_days > _MIN_GAP_DAYS else _MIN_GAP_DAYS
    # Positional, in field order (keyword construction costs ~30% more on this hot path), and no
    # starred argument: with one, mypyc builds a list and a tuple and calls the class generically
    # (its __init__ parses the 30-odd boxed arguments, ~2.4k instructions a call: docs/SCALING.md).
    period_end, paused_until, trialing, lost_trial = _period_ends(st)
    if c.calendar_starts:  # the product's quiet period (``[calendar] quiet``): its silence is no news
        held = calendar_hold_s(c.calendar_starts, c.calendar_ends, st.first_seen_s, st.last_seen_s, now_s, gap)
        if held > paused_until:
            paused_until = held
    return Signals(
        now_s, silence, age, tenure, st.active_days,
        st.act_7d * f7, st.act_28d * f28, st.act_90d * f90,
        slot_7d, slot_28d,
        trend, trend_long, recent, gap, silence / gap,
        n_p, x, t_x, T, p_silence, p_gap, p_overdue,
        _breadth(slot_28d, 1.0, n_p, p_silence, c), cancelled, c_days,
        negative, st.n_events, period_end, paused_until, trialing, lost_trial, cancel_at, st.flags & ACCOUNT_MEMBER != 0,
        renewal_days(st) if c.lifetime_to_renewal else 0.0,
    )


def paid_period_end_s(st: UserState) -> int:
    """The end of the paid period ``st`` keeps, in seconds (0: none known, or a pause's resume date:
    :func:`_period_ends`): the renewal ``churnwatch top`` shows on the save list."""
    return _period_ends(st)[0]


def _period_ends(st: UserState) -> tuple[int, int, bool, bool]:
    """(period_end_s, paused_until_s, in_trial, trial_lost) of ``st``: its ``period_end_day`` is
    the end of its pause while the latest statement is ``paused`` (models.state.paused), with no
    paid period then (no exit gate), else the end of the paid period; and its trial
    (models.state.in_trial, trial_lost)."""
    end = st.period_end_day * DAY_S
    flags = st.flags
    if paused(flags):
        return 0, end, False, False
    return end, 0, in_trial(flags), trial_lost(flags)


def renewal_days(st: UserState) -> float:
    """Days from ``st``'s last activity to the end of its paid period (Signals.renewal_days, under
    a model that reads it): 0 without a known period end (none stated, or a pause), or with the
    activity at or after it. ``train`` reads it of every row to choose whether to."""
    if paused(st.flags) or st.period_end_day <= 0 or not st.n_events:
        return 0.0
    left_s = st.period_end_day * DAY_S - st.last_seen_s
    return left_s * _INV_DAY if left_s > 0 else 0.0


def _round_even(y: float) -> int:
    """``round(y)`` for a finite float (halves to even), in the compiled core's own arithmetic:
    ``round`` has no mypyc primitive and was a generic call (~0.7k instructions) per look ahead.

    >>> [_round_even(v) for v in (0.5, 1.5, 2.5, -0.5, -1.5, -2.6, 2.4999)]
    [0, 2, 2, 0, -2, -3, 2]
    """
    r = int(y)  # towards zero; y - r is exact (the fraction of a float is a float)
    if y >= 0.0:
        frac = y - r
        if frac > 0.5 or (frac == 0.5 and r & 1):
            return r + 1
        return r
    frac = r - y
    if frac > 0.5 or (frac == 0.5 and r & 1):
        return r - 1
    return r


def baseline_ahead(now_s: int, x: float, c: "CompiledModel") -> float:
    """The 90-day counter's decay factor ``x`` days after ``now_s`` in silence: ``exp(-x / 90)``, its
    clock stopped inside the product's declared peaks (models.state.peak_s), as compute_signals
    then decays it (the look aheads: :func:`silent_after`, models.risk)."""
    if not c.peak_starts:
        return math.exp(-x / 90.0)
    return baseline_decay(now_s, now_s + _round_even(x * DAY_S), c.peak_starts, c.peak_ends)


def silent_after(sig: Signals, extra_days: float, model: "ChurnModel", week_slots: bool = True,
                 c: "CompiledModel | None" = None) -> Signals:
    """The signals ``extra_days`` later if the user stays silent, from the signals now: what
    :func:`compute_signals` would give then, up to float rounding (the counters decay from
    their values now, not from the state), with the same formulas. The engine's search for a
    risk crossing evaluates many such points per review.

    ``week_slots=False`` leaves the per-slot 7-day counts out (an empty ``slot_7d``): for the
    risk's logistic part (models.risk.leave_probability reads the 4-week ones only), which is
    all a look ahead evaluates (models.scoring.SilentRisk)."""
    x = extra_days
    if c is None:
        c = model.compiled
    f7, f28, f90 = math.exp(-x / 7.0), math.exp(-x / 28.0), baseline_ahead(sig.now_s, x, c)
    a7, a28, a90 = sig.act_7d * f7, sig.act_28d * f28, sig.act_90d * f90
    age = sig.age_days + x
    silence = sig.silence_days + x
    trend, trend_long = _trends(a7, a28, a90, age)
    slot_7d = [n * f7 for n in sig.slot_7d] if week_slots else []
    slot_28d = [n * f28 for n in sig.slot_28d]
    n_p = sig.n_purchases
    if n_p > 0:
        p_silence = sig.purchase_silence_days + x
        p_overdue = p_silence / sig.purchase_gap_days
        p_T = sig.purchase_T + x
    else:
        p_silence = p_overdue = p_T = 0.0
    return Signals(
        sig.now_s + _round_even(x * DAY_S), silence, age, sig.tenure_days, sig.active_days,
        a7, a28, a90, slot_7d, slot_28d,
        trend, trend_long, sig.recent_gap_days, sig.visit_gap_days, silence / sig.visit_gap_days,
        n_p, sig.purchase_x, sig.purchase_t_x, p_T, p_silence, sig.purchase_gap_days, p_overdue,
        _breadth(slot_28d, 1.0, n_p, p_silence, c), sig.cancelled,
        sig.cancelled_days + x if sig.cancelled else 0.0,
        sig.negative_28d * f28, sig.n_events, sig.period_end_s, sig.paused_until_s, sig.in_trial, sig.trial_lost, sig.cancel_at_s,
        sig.member, sig.renewal_days,
    )
