"""Churn risk: the calibrated probability that a user has churned by the end of the horizon.

Two parts (:func:`churn_risk`): the user may already be gone without saying so, with probability
1 - P(alive) (models.temperature.p_stay; not the temperature shown); if not, they may leave within the horizon,
with the probability a logistic model gives from the signals (:func:`risk_probability`). So
risk = 1 - P(alive) x (1 - P(leave | alive)). ``churnwatch train`` fits the logistic part on
users who, in hindsight, were still there at each snapshot date, and calibrates P(alive) against
who was already gone; the held-out reliability of both is stored in the model file.

Why logistic regression: its output is a probability that is calibrated in the large by
construction (at the optimum the mean prediction equals the observed rate, and the same holds
per value of each feature), it trains in a second, explains itself feature by feature (the
reasons rank features by their share of the log-odds) and scores in plain float math.

Features are written so that each one either grows with silence or does not depend on it, and
the weights of the growing ones are kept >= 0 (a bound in the fit, a projection in
``learn_one``, a check when a model file is loaded); P(alive) only falls with silence. So risk
never falls while a user stays silent, whatever the training data: the engine finds the moment
risk crosses the alert threshold by bisection, and "more silence, less risk" is never shown to
a CRM. One exception, asked for by name: a model file of ``churnwatch train --signs free``
(``training["signs"] == "free"``, :func:`check_weights`) may weigh them < 0 (docs/SCORES.md,
"The sign bounds"); for it the engine looks at a silent user daily instead of bisecting, closes
an at-risk alert only at activity, and the reasons never state a silence fact weighed < 0.

The exit opportunity (docs/SCORES.md, "Renewal: the exit opportunity"): a subscription can only
end at the end of the period paid for. Where a known period end (models.state ``period_end_day``,
from ``subscription`` statements) lies after now + the horizon, the user cannot leave within the
horizon: P(leaves | alive) is 0 (:func:`exit_open`, applied in :func:`leave_probability`, the
one place every reader of the leave part takes it from). Only the leave part is gated: a paying
user who stopped using is still lost, and 1 - P(alive) says so. The gate only opens as time
passes (at :func:`exit_opens_s`), so risk stays non-decreasing in silence, with one upward step
there that the engine schedules a review at (models.engine._next_review). This is the
contractual setting of Fader & Hardie, "How to project customer retention", Journal of
Interactive Marketing 21(1), 2007 (churn only at renewal opportunities, the shifted-beta-geometric
model) and Schweidel, Fader & Bradlow, "Understanding service retention within and across
cohorts using limited information", Journal of Marketing 72(1), 2008.

The river-style object :class:`LogisticRisk` has ``learn_one``/``predict_proba_one`` for
incremental use and a batch ``fit`` (L2-penalised maximum likelihood, scipy L-BFGS-B on
standardised features) that ``churnwatch train`` uses.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Final, Mapping, Sequence

from models.signals import Signals, _breadth, _round_even, _trends, baseline_ahead
from models.state import _ZEROS, DAY_S

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from models.compiled import CompiledModel
    from models.model import ChurnModel

__all__ = [
    "COOLING",
    "FEATURES",
    "GROWING",
    "grows_with_time",
    "FREE_SIGNS",
    "at_cap",
    "NEUTRAL",
    "LogisticRisk",
    "NEGATIVE_SHARE_FULL",
    "PRIOR_INTERCEPT",
    "PRIOR_WEIGHTS",
    "SILENCE_FEATURES",
    "check_weights",
    "moves_with_silence",
    "FALLS_WITH_USE",
    "SHARE_CAP",
    "slot_features",
    "SLOT_PREFIXES",
    "feature_value",
    "feature_vector",
    "leave_after",
    "leave_probability",
    "lifetime_count",
    "by_renewal",
    "renewal_factor",
    "churn_risk",
    "combine",
    "exit_open",
    "exit_opens_s",
    "reference",
    "risk_probability",
    "weighted_features",
    "savable",
    "sigmoid",
]

#: Feature names, in the order of :func:`feature_vector`.
FEATURES: Final[tuple[str, ...]] = (
    "silence_log",  # log(1 + days since last activity)
    "visit_overdue_log",  # log(1 + silence / usual interval between active days)
    "purchase_overdue_log",  # log(1 + days since last purchase / usual purchase interval); 0 for non-buyers
    "inactive_7d",  # -log(1 + events in the last ~7 days)
    "inactive_28d",  # -log(1 + events in the last ~28 days)
    "inactive_90d",  # -log(1 + events in the last ~90 days)
    "decline",  # 1 - min(1, 7-day rate / 4-week rate)
    "decline_long",  # 1 - min(1, 4-week rate / 90-day rate)
    "narrowness",  # 1 - breadth of use over 4 weeks
    "cooling",  # 1 - temperature / 100
    "gap_trend",  # log(recent completed intervals between active days / usual interval)
    "tenure_log",  # log(1 + days from first to last activity)
    "active_days_log",  # log(1 + distinct active days)
    "buyer",  # 1 when the user ever purchased
    "purchases_log",  # log(1 + purchases)
    "revenue_log",  # log(1 + total purchase value)
    "negative_share",  # negative feedback's share of 4-week activity / NEGATIVE_SHARE_FULL, at most 1
)
#: Features that only grow with time (a user's history, never their silence): ``train`` records
#: the largest value its rows had of each (models.compiled CAPS_KEY) and the risk reads them no
#: further (docs/SCORES.md, "A trained model extrapolates no further than its history"); so do
#: the per-slot ``lifetime:`` volumes (:func:`grows_with_time`).
GROWING: Final[tuple[str, ...]] = ("tenure_log", "active_days_log", "purchases_log", "revenue_log")
#: Features that grow with silence: their weights must be >= 0 (module docstring).
#: math.log1p held once: mypyc has no primitive for it and looked it up on the math module at
#: every call (a few per risk); the same function, the same numbers.
_LOG1P: Final[Callable[[float], float]] = math.log1p


def _log1p(x: float) -> float:
    """``math.log1p(x)``, without the call where ``x`` is zero: log1p(+-0) is +-0 (IEEE 754), and
    many features read a zero (most slots' 4-week counts, a non-buyer's purchase ones, the
    overdue of a review on its event's second). The call is generic in the compiled core (no
    mypyc primitive: ~220 instructions with its boxing, against a compare). Takes a float (an
    int count as ``float(n)``: the pure Python would give back the int 0).

    >>> _log1p(0.0), _log1p(-0.0), _log1p(1.0) == math.log1p(1.0)
    (0.0, -0.0, True)
    """
    return x if x == 0.0 else _LOG1P(x)
_N_SILENCE: Final[int] = 10  # the first features move with silence, the others do not
#: ``cooling``'s index: the one feature that reads P(alive) (models.compiled ``reads_alive``)
COOLING: Final[int] = FEATURES.index("cooling")
#: ``negative_share``'s index: the one feature past the silence ones that reads decayed counts
_NEGATIVE: Final[int] = FEATURES.index("negative_share")
_REVENUE: Final[int] = 15
SILENCE_FEATURES: Final[frozenset[str]] = frozenset(FEATURES[:_N_SILENCE])
#: Share of a user's 4-week activity that is negative feedback at which ``negative_share``
#: reaches its end (1): stated a priori, not measured (PRIOR_WEIGHTS below).
NEGATIVE_SHARE_FULL: Final[float] = 0.2

#: Per-slot features (models.vocabulary), named ``<prefix>:<event name>`` (``kind<i>`` for a
#: hashed slot): ``inactive:`` = -log(1 + the type's 4-week count), which grows with silence
#: (weight >= 0); ``share:`` = the type's share of the user's 4-week activity, which silence
#: does not move (any sign: some activities mean leaving, an "unfriend" share among them);
#: ``lifetime:`` = log(1 + the type's events since the user was first seen), estimated as that
#: share x the state's lifetime event count (no per-type lifetime counter: zero bytes of state),
#: under a model that chose it (``lifetime_to_renewal``) for a subscriber carried on to the end
#: of the paid period at their rate so far (:func:`by_renewal`), which silence does not move either (any sign). Why the lifetime: how much of the product a
#: user has already had (posts written, friends made) is not what they did in the last 4 weeks,
#: and a satisfaction built up since signup is what a user weighs against the price; the
#: estimate is exact for a user whose mix of activities is stable, and only ``train`` weighs it
#: (the default has no opinion on a product's own types). docs/SCORES.md, "Lifetime volume".
SLOT_PREFIXES: Final[tuple[str, str, str]] = ("inactive:", "share:", "lifetime:")

#: The default risk: NO weight here was fitted on any data set. Each term is a monotone effect
#: whose direction the literature documents; its size follows one rule, *equal say*: one
#: log-odds unit across the feature's natural range, stated a priori (the "improper linear
#: model" of Dawes, "The robust beauty of improper linear models", American Psychologist 34(7),
#: 1979, and Wainer, "Estimating coefficients in linear models: it don't make no nevermind",
#: Psychological Bulletin 83(2), 1976: equal weights on comparable scales predict nearly as well
#: as fitted ones, and better on new populations):
#:
#: - activity level (``inactive_28d``, -log(1 + events in 4 weeks); range about 2 e-folds, so
#:   0.5): fewer events, more churn — Gold, *Fighting Churn with Data* (Manning 2020), ch. 3 and 5;
#: - silence against the user's own rhythm (``visit_overdue_log``, log(1 + silence / usual
#:   interval); range about 2, so 0.5), and P(alive) in the risk's "already gone" part: Fader,
#:   Hardie & Lee, "Counting your customers the easy way", Marketing Science 24(2), 2005
#:   (BG/NBD); Batislam, Denizel & Filiztekin 2007 (MBG/NBD);
#: - decline against the user's own baseline, over a week (``decline``: 1 - 7-day rate / 4-week
#:   rate) and over a month (``decline_long``: 1 - 4-week rate / 90-day rate), each from 0 to
#:   1, so 1.0 each: Gold 2020, ch. 7 (ratio and change metrics);
#: - breadth of use (``narrowness``: 1 - share of the kinds of activity used; about 0.4 between
#:   a one-kind and a many-kind user with 8 kinds, so 2.5): Gold 2020, ch. 7. The share is of
#:   the *product's* kinds when the model file names them (``population["kinds"]``,
#:   models.compiled, written by ``train``); the shipped default knows no product and counts its
#:   8 hashed kinds and purchases, the scale the 2.5 was stated for (docs/SCORES.md, "Breadth of
#:   use");
#: - churn hazard falling with tenure (``tenure_log`` < 0; log(1 + days) ranges about 4 between a
#:   week and a year, so -0.25): Fader & Hardie, "How to project customer retention", Journal of
#:   Interactive Marketing 21(1), 2007 (heterogeneity makes retention rise with tenure);
#: - negative feedback (``negative_share``: the share of the user's 4-week activity that is
#:   events of the ``negative`` role, models.vocabulary: dislikes, unfriends, complaints, refunds,
#:   downgrades, ...; divided by :data:`NEGATIVE_SHARE_FULL` and capped at 1, so 0 to 1, and 1.0):
#:   dissatisfaction precedes switching — Keaveney, "Customer switching behavior in service
#:   industries", Journal of Marketing 59(2), 1995 (core service and service-encounter failures,
#:   and failed responses to them, behind most switching); Reichheld, "The one number you need
#:   to grow", Harvard Business Review 81(12), 2003 (detractors defect); Gold 2020, ch. 7 (ratio
#:   metrics such as dislikes per post: the *share*, not the count, so a heavy user is not read
#:   as unhappy for acting a lot). A share, not a log-count: the count falls with silence and
#:   would let risk fall while a user stays away; the share does not move with silence. Its end,
#:   a fifth of the user's activity, is stated a priori: negative actions are a small minority of
#:   what users do in a product, so a user for whom one action in five is negative is at the far
#:   end of the range; a larger share, on a few events, says nothing more reliable. Users without
#:   such events get 0: most users who leave never complain (Keaveney 1995; TARP's complaint
#:   studies), so the absence of complaint is the norm and moves nobody's risk.
#:
#: The intercept only sets the scale (ranking does not depend on it). Measured failure of the
#: weights shipped before (fitted on ``churnwatch simulate`` seed 1: ``buyer`` +1.27,
#: ``gap_trend`` +1.44, ``active_days_log`` +0.34): ROC AUC 0.45 on fightchurn's simulator,
#: where ``-health`` alone gives 0.74, and risk rising with tenure while churn falls with it.
#: How these weights were chosen, and what was looked at: docs/SCORES.md.
PRIOR_WEIGHTS: Final[Mapping[str, float]] = {
    "visit_overdue_log": 0.5,
    "inactive_28d": 0.5,
    "decline": 1.0,
    "decline_long": 1.0,
    "narrowness": 2.5,
    "tenure_log": -0.25,
    "negative_share": 1.0,
}
PRIOR_INTERCEPT: Final[float] = -1.0

#: The reference user of a model without training means (models.reasons' module docstring): each
#: value is the edge of the fact its reason states, chosen with the facts, not measured.
NEUTRAL: Final[dict[str, float]] = {
    "visit_overdue_log": math.log1p(1.5),  # "no visit for 1.5x the usual interval"
    "purchase_overdue_log": math.log1p(1.5),
    "inactive_28d": -math.log1p(2.0),  # "only 2 events in the last 4 weeks"
    "decline": 0.3,  # "activity down 30% against the user's 4-week baseline"
    "decline_long": 0.3,
    "narrowness": 0.7,  # breadth 0.3: two or three kinds of activity
    "tenure_log": math.log1p(30.0),  # the first month, when churn hazard is highest
    "negative_share": 0.0,  # no complaint is the norm (models.risk PRIOR_WEIGHTS)
}


def reference(name: str, model: "ChurnModel") -> float:
    """The value of feature ``name`` that contributes nothing (models.reasons ranks the factors
    of the risk by their distance from it): the training mean, else :data:`NEUTRAL`."""
    means = model.risk_means
    if name in means:
        return float(means[name])
    return NEUTRAL.get(name, 0.0)


def slot_features(labels: Sequence[str]) -> tuple[str, ...]:
    """The per-slot feature names of a vocabulary whose slots are called ``labels``."""
    return tuple(f"{prefix}{label}" for prefix in SLOT_PREFIXES for label in labels)


def grows_with_time(name: str) -> bool:
    """Whether the feature ``name`` grows with the user's history (:data:`GROWING`, and the
    ``lifetime:`` volumes: events since first seen, which a steady user adds to every week)."""
    return name in GROWING or name.startswith(SLOT_PREFIXES[2])


def moves_with_silence(name: str) -> bool:
    """Whether the feature ``name`` grows with silence (its weight must then be >= 0)."""
    return name in SILENCE_FEATURES or name.startswith(SLOT_PREFIXES[0])


#: The features a bounded fit keeps <= 0: more use, lower hazard (Fader & Hardie 2007, Gold 2020
#: ch. 3; the default's ``tenure_log`` < 0 is the same effect in time). QA19 F3: a bank's fit with
#: the smallest penalty on its grid gave ``active_days_log`` +0.52 and its alerts read loyalty
#: as risk; bounded, the out-of-fold AUC moved 0.9886 -> 0.9884. Not the ``lifetime:`` volumes:
#: beside a type's recent count they measure the fall from the user's own history (+0.98 on
#: card payments there), and bounding them cost 0.011 of out-of-fold AUC and 26% of log-loss;
#: the reasons never tell such a volume above typical as a risk (models.reasons). docs/SCORES.md,
#: "The sign bounds of use".
FALLS_WITH_USE: Final[frozenset[str]] = frozenset({"active_days_log"})


#: The largest weight (either sign) a bounded fit gives a type's ``share:``, log-odds per unit
#: share: one log-odds unit across a fifth of the user's activity, the scale the default states
#: for negative feedback (:data:`NEGATIVE_SHARE_FULL`, equal say). A share weighs more than that
#: only where few users have any of the type, one event being most of their share: QA19 F3,
#: ``share:premium_cancelled`` +34.1 on a step 11% of users took once (capped: out-of-fold
#: AUC 0.9886 -> 0.9885).
SHARE_CAP: Final[float] = 1.0 / NEGATIVE_SHARE_FULL


#: What a model file's ``training["signs"]`` says of a fit with free signs (``churnwatch train
#: --signs free``): its weights on the features that grow with silence may be < 0.
FREE_SIGNS: Final[str] = "free"


def check_weights(weights: Mapping[str, float], intercept: float, free_signs: bool = False) -> None:
    """ValueError unless the weights name known features, are finite, and keep risk monotonic in
    silence. ``free_signs``: a model file ``churnwatch train --signs free`` wrote (its
    ``training["signs"]`` is :data:`FREE_SIGNS`) may weigh the features that grow with silence
    < 0 (docs/SCORES.md, "The sign bounds"): its risk may then fall in silence, which the engine
    and the reasons allow for (models.compiled ``silence_monotone``); the shipped default and
    every other file keep the bound."""
    unknown = {n for n in weights if n not in FEATURES and not n.startswith(SLOT_PREFIXES)}
    if unknown:
        raise ValueError(f"risk_weights name unknown features {sorted(unknown)}; known: {list(FEATURES)}")
    for name, w in weights.items():
        if not (isinstance(w, (int, float)) and math.isfinite(w)):
            raise ValueError(f"risk weight {name} must be a finite number (log-odds per unit), got {w!r}")
        if not free_signs and moves_with_silence(name) and w < 0:
            raise ValueError(f"risk weight {name} must be >= 0 log-odds per unit (it grows with silence), got {w}")
    if not (isinstance(intercept, (int, float)) and math.isfinite(intercept)):
        raise ValueError(f"risk_intercept must be a finite number (log-odds), got {intercept!r}")


def feature_vector(sig: Signals, p_stay: float, revenue: float) -> list[float]:
    """The values of :data:`FEATURES`, then of the slot features (``inactive:`` of every slot,
    then ``share:``, then ``lifetime:`` of every slot), for one user (plain floats):
    :func:`feature_value` of each."""
    return [feature_value(i, sig, p_stay, revenue) for i in range(len(FEATURES) + len(SLOT_PREFIXES) * len(sig.slot_28d))]


def weighted_features(sig: Signals, p_stay: float, revenue: float, c: "CompiledModel") -> list[float]:
    """:func:`feature_vector` with only the features the model weighs (``c.terms``) computed,
    0.0 for the rest: what an alert's reasons read (models.reasons reads a feature's value only
    where its weight gives it a contribution, and the risk only those), a handful of the 41
    formulas instead of all. Same length as the whole vector (the reasons tell a state kept in
    another vocabulary's slots by it). The zeros a slice of models.state's shared list (``[0.0] *
    n`` made a one-item list first), the weight and flag unpacked into typed names (a float
    unpacked into ``_`` is boxed: ~0.5k instructions an alert, both)."""
    n = len(FEATURES) + len(SLOT_PREFIXES) * len(sig.slot_28d)
    values = _ZEROS[:n] if n <= len(_ZEROS) else [0.0] * n
    for i, _w, _moves in c.terms:
        if i < n:
            values[i] = feature_value(i, sig, p_stay, revenue)
    return values


def feature_value(i: int, sig: Signals, p_stay: float, revenue: float) -> float:
    """Feature ``i`` of :func:`feature_vector` alone (the one formula of each feature): the risk
    reads only the features its model weighs (:func:`leave_probability`), a handful of the 41."""
    if i < _N_SILENCE:
        if i < 6:  # silence_log, the overdues, the inactive_* (-log1p of the decayed totals)
            return _signal_log(i, sig) if i < 3 else -_signal_log(i, sig)
        if i == 6:
            return 1.0 - sig.trend if sig.trend < 1.0 else 0.0
        if i == 7:
            return 1.0 - sig.trend_long if sig.trend_long < 1.0 else 0.0
        if i == 8:
            return 1.0 - sig.breadth
        return 1.0 - p_stay
    if i < len(FEATURES):
        if i == 10:
            return math.log(sig.recent_gap_days / sig.visit_gap_days)
        if i == 13:
            return 1.0 if sig.n_purchases > 0 else 0.0
        if i < _REVENUE:  # tenure_log, active_days_log, purchases_log
            return _signal_log(i, sig)
        if i == _REVENUE:
            return _log1p(revenue if revenue > 0.0 else 0.0)
        return _negative_share(sig)
    j = i - len(FEATURES)
    slots = sig.slot_28d
    n = len(slots)
    if j < n:
        return -_log1p(slots[j])
    a28 = sig.act_28d
    if j < 2 * n:
        return slots[j - n] / a28 if a28 > 0.0 else 0.0
    return _log1p(lifetime_count(sig, j - 2 * n) * by_renewal(sig))


def _signal_log(i: int, sig: Signals) -> float:
    """``log1p`` of the signal that feature ``i`` (0-5, 11, 12 or 14) takes it of, worked out once
    per signals and remembered on them (models.signals.Signals' memo fields, NaN until then; a NaN
    signal is simply worked out again): a review's risk (:func:`leave_probability`), its alert's
    reasons (:func:`weighted_features`) and its look aheads (:func:`leave_after`, the features
    silence does not move) read the same ones of the same signals, and ``log1p`` is a generic call
    in the compiled core (~0.37k instructions with its boxing, docs/SCALING.md). The same value."""
    if i == 0:
        v = sig._log_silence
        if v != v:
            v = sig._log_silence = _log1p(sig.silence_days)
    elif i == 1:
        v = sig._log_visit_overdue
        if v != v:
            v = sig._log_visit_overdue = _log1p(sig.visit_overdue)
    elif i == 2:
        v = sig._log_purchase_overdue
        if v != v:
            v = sig._log_purchase_overdue = _log1p(sig.purchase_overdue)
    elif i == 3:
        v = sig._log_act_7d
        if v != v:
            v = sig._log_act_7d = _log1p(sig.act_7d)
    elif i == 4:
        v = sig._log_act_28d
        if v != v:
            v = sig._log_act_28d = _log1p(sig.act_28d)
    elif i == 5:
        v = sig._log_act_90d
        if v != v:
            v = sig._log_act_90d = _log1p(sig.act_90d)
    elif i == 11:
        v = sig._log_tenure
        if v != v:
            v = sig._log_tenure = _log1p(sig.tenure_days)
    elif i == 12:
        v = sig._log_active_days
        if v != v:
            v = sig._log_active_days = _log1p(float(sig.active_days))
    else:
        v = sig._log_purchases
        if v != v:
            v = sig._log_purchases = _log1p(float(sig.n_purchases))
    return v


def lifetime_count(sig: Signals, slot: int) -> float:
    """Estimated events of ``slot`` since the user was first seen: the slot's share of the 4-week
    activity x every event so far (``lifetime:``, :data:`SLOT_PREFIXES`); 0 without 4-week
    activity to take the share from."""
    a28 = sig.act_28d
    return sig.slot_28d[slot] / a28 * sig.n_events if a28 > 0.0 else 0.0


def by_renewal(sig: Signals) -> float:
    """What :func:`lifetime_count` is multiplied by for ``lifetime:`` (:data:`SLOT_PREFIXES`):
    :func:`renewal_factor` of ``Signals.renewal_days`` (0, so 1, unless the model carries the
    volumes to the renewal and the user has a known period end) and the days of use so far."""
    days = sig.renewal_days
    return renewal_factor(days, sig.tenure_days) if days > 0.0 else 1.0


def renewal_factor(days_left: float, tenure_days: float) -> float:
    """1 + the days from the last activity to the end of the period paid for over the days of use
    so far (at least one): the volume the user will have had at the renewal where they decide, at
    their own rate so far. Why: a subscription ends only at a renewal (:func:`exit_open`, Fader &
    Hardie 2007), and what a user weighs there is all they have had of the product by then; a
    month-old subscriber a week before the renewal and one three weeks before it have the same
    count now but not then. Both inputs are fixed at the last activity: silence does not move
    it. Measured to help some products and not others (socialnet7 +0.004 AUC, QA22b's game
    -0.005), so ``train`` chooses it per product (docs/SCORES.md, "Lifetime volume by the renewal").

    >>> renewal_factor(10.0, 20.0), renewal_factor(0.0, 20.0), renewal_factor(3.0, 0.5)
    (1.5, 1.0, 4.0)
    """
    return 1.0 + days_left / (tenure_days if tenure_days > 1.0 else 1.0)


def _negative_share(sig: Signals) -> float:
    """``negative_share``: negative feedback's share of the 4-week activity over NEGATIVE_SHARE_FULL,
    at most 1 (both counts decay alike, so silence does not move it)."""
    return _negative_share_of(sig.negative_28d, sig.act_28d)


def _negative_share_of(negative_28d: float, act_28d: float) -> float:
    """:func:`_negative_share` of the two 4-week counts (:func:`leave_after` has them as numbers)."""
    if negative_28d <= 0.0 or act_28d <= 0.0:
        return 0.0
    share = negative_28d / (act_28d * NEGATIVE_SHARE_FULL)
    return share if share < 1.0 else 1.0


def sigmoid(z: float) -> float:
    """1 / (1 + exp(-z)) without overflow."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def churn_risk(values: Sequence[float], p_alive: float, model: "ChurnModel") -> float:
    """P(churned by the end of the horizon) = P(gone already) + P(alive) x P(leaves | alive)
    = 1 - p_alive x (1 - risk_probability(values)), with ``p_alive`` the calibrated P(alive)
    (models.temperature.p_stay), not the temperature shown, for a user whose exit is open (a
    feature vector does not carry the period end: :func:`leave_probability` gates)."""
    return combine(p_alive, risk_probability(values, model))


def combine(p_alive: float, leave: float) -> float:
    """Risk from its two parts: 1 - P(alive) x (1 - P(leaves | alive)) (module docstring)."""
    return 1.0 - p_alive * (1.0 - leave)


def exit_opens_s(period_end_s: int, horizon_days: float) -> int:
    """The first second at which the end of the paid period ``period_end_s`` (0: unknown) lies
    within ``horizon_days`` of now: from then on the subscription can end within the horizon
    (module docstring); 0 when the period end is unknown (always open).

    >>> exit_opens_s(100 * DAY_S, 30.0) == 70 * DAY_S, exit_opens_s(0, 30.0)
    (True, 0)
    """
    if period_end_s <= 0:
        return 0
    return period_end_s - int(horizon_days * DAY_S)  # now >= this <=> period end <= now + horizon


def exit_open(sig: Signals, model: "ChurnModel") -> bool:
    """Whether the user can leave within the horizon at ``sig.now_s``: the end of the paid period
    is unknown, within the horizon, or already past (a renewal not stated yet); False while a
    known period end lies after now + ``model.horizon_days`` (module docstring)."""
    return sig.period_end_s <= 0 or sig.now_s >= exit_opens_s(sig.period_end_s, model.horizon_days)


def savable(p_alive: float, leave: float, paid: bool = False) -> float:
    """The part of the risk a call can still act on: P(alive) x P(leaves | alive), the chance the
    user is still there *and* leaves within the horizon. The rest of the risk, 1 - P(alive), is
    a user probably gone already: win-back work, not a save (models.ranking). Never above the
    risk; unlike it, it falls in long silence, where P(alive) falls faster than the other part
    rises.

    While a paid period runs (``paid``: models.signals.paid_period_runs) the whole risk: a
    subscriber gone from the product has not left the contract, which ends only at the renewal,
    so a call before it can still save the plan (the lifecycle keeps such a user declining, on
    the save list, for the same reason: models.lifecycle rule 0). Why (QA23a F3): a fitness app's
    111 annual subscribers silent for weeks read savable 0.00 (P(alive) ~0, the leave part 0
    while the renewal is beyond the horizon) and sat at the bottom of the save list, ranks 77-187,
    those renewing in 1-25 days at 51-60.

    >>> savable(0.0, 0.0), savable(0.0, 0.0, paid=True), savable(0.5, 0.2), savable(0.5, 0.2, paid=True)
    (0.0, 1.0, 0.1, 0.6)
    """
    return combine(p_alive, leave) if paid else p_alive * leave


def at_cap(c: "CompiledModel", i: int, v: float) -> float:
    """Feature ``i``'s value ``v`` as a trained model reads it: at most the largest value its
    training rows had (models.compiled CAPS_KEY: a weight says what it saw within its history,
    QA18 F2). The one rule for the risk, its look-aheads and an alert's reasons; called only where
    ``c.capped`` (the shipped default has no cap: a flag test, no call)."""
    cap = c.caps[i]
    return cap if v > cap else v


def risk_probability(values: Sequence[float], model: "ChurnModel") -> float:
    """P(leaves within model.horizon_days | still a user now) of a feature vector: the logistic
    model itself (hot path: plain floats), each feature read at most at the model's cap
    (models.compiled CAPS_KEY: a trained model's history; none in the default)."""
    c = model.compiled
    z = c.risk_intercept
    capped = c.capped
    for i, w, _ in c.terms:
        v = values[i]
        if capped:
            v = at_cap(c, i, v)
        z += w * v
    return sigmoid(z)


def leave_probability(sig: Signals, p_stay: float, revenue: float, model: "ChurnModel",
                      c: "CompiledModel | None" = None) -> float:
    """P(leaves within the horizon | alive) of the user: 0 while the exit is closed
    (:func:`exit_open`), else ``risk_probability(feature_vector(sig, p_stay, revenue), model)``
    bit for bit, computing only the features the model weighs (:func:`feature_value`, in the
    same order): the engine scores every review and its crossing search this way, and builds
    the whole vector only for an alert's reasons. ``c``: ``model.compiled`` where the caller holds
    it (a generic attribute lookup saved)."""
    if sig.cancel_at_s:
        return 1.0  # a cancellation scheduled at the period end (QA23a F5): the user said they leave
    if sig.period_end_s > 0 and not exit_open(sig, model) or sig.paused_until_s > sig.now_s:
        return 0.0  # the exit closed, or a pause that runs (QA22a F1: its silence is no leaving)
    if c is None:
        c = model.compiled
    z = c.risk_intercept
    capped = c.capped
    for i, w, _ in c.terms:
        v = feature_value(i, sig, p_stay, revenue)
        if capped:
            v = at_cap(c, i, v)
        z += w * v
    return sigmoid(z)


def leave_after(sig: Signals, x: float, p_stay: float, revenue: float, model: "ChurnModel",
                c: "CompiledModel | None" = None) -> float:
    """``leave_probability(silent_after(sig, x, model, False, c), p_stay, revenue, model, c)``
    bit for bit (``x`` > 0 days of silence after ``sig``), without the silent signals.

    Why: the engine's look ahead (models.scoring.SilentRisk: the crossing search, the save-list
    bound at the next review) evaluates this at every review of an open at-risk alert and a few
    times per crossing search, and building the silent ``Signals`` (28 fields, a list of boxed
    per-slot counts, freed at once) cost more than the formulas the model weighs (callgrind:
    docs/SCALING.md). Here each weighed feature is computed from the numbers
    :func:`~models.signals.silent_after` would have put in its signals, in the same float
    operations: the decayed counts (``act * exp(-x / tau)``), the silences plus ``x``, the trends
    and the breadth by the very functions it calls (``_trends``; ``_breadth`` of the per-slot
    counts times the same factor), the per-slot counts as the same products; the features that
    silence does not move (tenure, active days, purchases, revenue, the gap trend) read the same
    inputs in ``sig``, so :func:`feature_value` of ``sig`` gives them. The formulas of the moving
    ones are :func:`feature_value`'s, spelled on these numbers; tests/test_models_risk.py checks
    both ways agree bit for bit on every feature (histories, and signals of any bits: NaN, -0.0,
    subnormals)."""
    if sig.cancel_at_s:
        return 1.0  # a cancellation scheduled at the period end (leave_probability)
    if c is None:
        c = model.compiled
    # silent_after's now_s, for the exit gate (exit_open), read only where a period end is known
    if sig.period_end_s > 0 and sig.now_s + _round_even(x * DAY_S) < exit_opens_s(sig.period_end_s, c.horizon_days):
        return 0.0
    if sig.paused_until_s > 0 and sig.now_s + _round_even(x * DAY_S) < sig.paused_until_s:
        return 0.0  # a pause that still runs then (leave_probability)
    f28 = math.exp(-x / 28.0)
    a7, a28, a90 = sig.act_7d * math.exp(-x / 7.0), sig.act_28d * f28, sig.act_90d * baseline_ahead(sig.now_s, x, c)
    silence = sig.silence_days + x
    n_p = sig.n_purchases
    p_silence = sig.purchase_silence_days + x if n_p > 0 else 0.0
    trend = trend_long = 1.0
    trends = False  # worked out at the first feature that reads them
    slots = sig.slot_28d
    n = len(slots)
    z = c.risk_intercept
    capped = c.capped
    for i, w, _ in c.terms:
        if i < _N_SILENCE:
            if i == 0:
                v = _log1p(silence)
            elif i == 1:
                v = _log1p(silence / sig.visit_gap_days)
            elif i == 2:
                v = _log1p(p_silence / sig.purchase_gap_days if n_p > 0 else 0.0)
            elif i == 3:
                v = -_log1p(a7)
            elif i == 4:
                v = -_log1p(a28)
            elif i == 5:
                v = -_log1p(a90)
            elif i < 8:
                if not trends:
                    trend, trend_long = _trends(a7, a28, a90, sig.age_days + x)
                    trends = True
                t = trend if i == 6 else trend_long
                v = 1.0 - t if t < 1.0 else 0.0
            elif i == 8:
                v = 1.0 - _breadth(slots, f28, n_p, p_silence, c)
            else:
                v = 1.0 - p_stay
        elif i < len(FEATURES):
            v = _negative_share_of(sig.negative_28d * f28, a28) if i == _NEGATIVE else feature_value(i, sig, p_stay, revenue)
        else:
            j = i - len(FEATURES)
            if j < n:
                v = -_log1p(slots[j] * f28)
            elif j < 2 * n:
                v = slots[j - n] * f28 / a28 if a28 > 0.0 else 0.0
            else:
                v = _log1p(slots[j - 2 * n] * f28 / a28 * sig.n_events * by_renewal(sig) if a28 > 0.0 else 0.0)
        if capped:
            v = at_cap(c, i, v)
        z += w * v
    return sigmoid(z)


class LogisticRisk:
    """Logistic regression with L2 penalty and sign constraints, river style.

    Penalty: ``l2`` per example on each weight (river's convention), so ``fit`` minimises the
    mean log-loss + l2/2 |w|^2 and ``learn_one`` steps on log-loss + l2/2 |w|^2.

    ``learn_one``/``predict_proba_one`` take a mapping feature -> value; ``fit`` takes a matrix
    whose columns follow ``features``. Weights named in ``nonnegative`` never go below 0, those
    in ``nonpositive`` never above 0, and those in ``caps`` (feature -> c > 0) stay in [-c, c].

    >>> m = LogisticRisk(features=("a", "b"), nonnegative=("a",), lr=0.5)
    >>> for _ in range(200):
    ...     _ = m.learn_one({"a": 1.0, "b": 0.0}, True).learn_one({"a": 0.0, "b": 1.0}, False)
    >>> m.predict_proba_one({"a": 1.0, "b": 0.0}) > 0.9 > 0.1 > m.predict_proba_one({"a": 0.0, "b": 1.0})
    True
    """

    def __init__(
        self,
        features: Sequence[str] = FEATURES,
        *,
        l2: float = 1e-3,
        nonnegative: Sequence[str] = tuple(SILENCE_FEATURES),
        nonpositive: Sequence[str] = (),
        caps: Mapping[str, float] | None = None,
        lr: float = 0.01,
    ) -> None:
        if l2 < 0 or not math.isfinite(l2):
            raise ValueError(f"l2 must be a finite penalty >= 0, got {l2}")
        if not lr > 0:
            raise ValueError(f"lr (learning rate per example) must be > 0, got {lr}")
        self.features: tuple[str, ...] = tuple(features)
        self.nonnegative = frozenset(nonnegative) & set(self.features)
        self.nonpositive = frozenset(nonpositive) & set(self.features)
        self.caps = {n: float(c) for n, c in (caps or {}).items() if n in self.features}
        if self.nonnegative & self.nonpositive or not all(c > 0 and math.isfinite(c) for c in self.caps.values()):
            raise ValueError("a weight is bounded one way (nonnegative or nonpositive), caps are finite and > 0")
        self.l2 = float(l2)
        self.lr = float(lr)
        self.weights: dict[str, float] = {name: 0.0 for name in self.features}
        self.intercept = 0.0
        self.n = 0  # examples learned (learn_one) or fitted (fit)

    @classmethod
    def from_model(cls, model: "ChurnModel") -> "LogisticRisk":
        out = cls()
        out.weights.update({k: float(v) for k, v in model.risk_weights.items()})
        out.intercept = float(model.risk_intercept)
        return out

    def model_fields(self) -> dict[str, object]:
        """``risk_weights``/``risk_intercept`` for ``ChurnModel.with_``."""
        return {"risk_weights": dict(self.weights), "risk_intercept": self.intercept}

    def _z(self, x: Mapping[str, float]) -> float:
        return self.intercept + sum(w * x.get(name, 0.0) for name, w in self.weights.items())

    def predict_proba_one(self, x: Mapping[str, float]) -> float:
        return sigmoid(self._z(x))

    def learn_one(self, x: Mapping[str, float], y: bool | int | float) -> "LogisticRisk":
        """One step of stochastic gradient descent on the penalised log-loss; returns self."""
        g = self.predict_proba_one(x) - float(y)
        lr = self.lr
        for name in self.features:
            w = self.weights[name]
            w -= lr * (g * x.get(name, 0.0) + self.l2 * w)
            self.weights[name] = self._bound(name, w)
        self.intercept -= lr * g
        self.n += 1
        return self

    def _bound(self, name: str, w: float) -> float:
        """``w`` within the bounds of feature ``name`` (its sign bound, its cap)."""
        if name in self.nonnegative:
            w = max(w, 0.0)
        elif name in self.nonpositive:
            w = min(w, 0.0)
        cap = self.caps.get(name)
        return w if cap is None else min(max(w, -cap), cap)

    def _raw_bounds(self, name: str) -> tuple[float | None, float | None]:
        """(lower, upper) bound of the raw weight of ``name`` (None: none)."""
        cap = self.caps.get(name)
        lo, hi = (None, None) if cap is None else (-cap, cap)
        if name in self.nonnegative:
            lo = 0.0
        elif name in self.nonpositive:
            hi = 0.0
        return lo, hi

    def predict_proba(self, X: "np.ndarray") -> "np.ndarray":
        """P(y = 1) per row of ``X`` (columns in ``features`` order)."""
        import numpy as np

        w = np.array([self.weights[name] for name in self.features])
        z = self.intercept + np.asarray(X, dtype=np.float64) @ w
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))

    def fit(self, X: "np.ndarray", y: "np.ndarray", sample_weight: "np.ndarray | None" = None,
            prior: Mapping[str, float] | None = None, l2_by_feature: Mapping[str, float] | None = None,
            held: Mapping[str, float] | None = None) -> "LogisticRisk":
        """Penalised maximum likelihood: mean log-loss + l2/2 * |w - prior|^2 on standardised
        columns (the same penalty per example as ``learn_one`` when there is no prior).

        Standardising makes one penalty fit every feature's scale; a positive scale keeps each
        weight's sign, so the bounds (>= 0 for ``nonnegative``, <= 0 for ``nonpositive``, a cap
        scaled by the column's spread) carry over to the raw weights.
        ``prior`` (raw weights, feature -> log-odds per unit; absent features 0) is where the
        penalty pulls the weights: ``churnwatch train`` passes the default's documented effects,
        so the data only has to pay for its corrections to them, and a small or noisy history
        stays near the default instead of near "no effect". Constant columns keep the prior's
        weight (0 without a prior): the history cannot speak to them.
        ``l2_by_feature`` (feature -> penalty >= 0) replaces ``l2`` for the features it names:
        a prior may be surer of some effects than of others (train: the default's general
        effects against the product's per-type ones, which it cannot know).
        ``held`` (feature -> raw weight): features not fitted, their weight given (an offset in
        the log-odds while the others are fitted): train holds the growing features at the
        default's effects on a history that starts after its users did (docs/SCORES.md).
        Raises ValueError on a single class, bad shapes, or a prior the bounds forbid.
        """
        import numpy as np
        from scipy import optimize

        Xa = np.asarray(X, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64).ravel()
        if Xa.ndim != 2 or Xa.shape[1] != len(self.features) or Xa.shape[0] != ya.shape[0]:
            raise ValueError(f"fit needs X of shape (n, {len(self.features)}) and y of n labels, got {Xa.shape} and {ya.shape}")
        if not (np.all(np.isfinite(Xa)) and np.all((ya == 0) | (ya == 1))):
            raise ValueError("fit needs finite features and labels 0/1")
        sw = np.ones_like(ya) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
        if sw.shape != ya.shape or np.any(sw < 0) or not np.all(np.isfinite(sw)):
            raise ValueError("sample_weight must be one finite weight >= 0 per row")
        total = float(sw.sum())
        pos = float((sw * ya).sum())
        if not 0 < pos < total:
            raise ValueError(f"fit needs both churned and retained examples, got {pos:.0f} churned of {total:.0f}")
        mu = (sw[:, None] * Xa).sum(axis=0) / total
        sd = np.sqrt((sw[:, None] * (Xa - mu) ** 2).sum(axis=0) / total)
        fixed = np.array([name in (held or {}) for name in self.features])
        live = (sd > 1e-12) & ~fixed
        Z = np.where(live, (Xa - mu) / np.where(live, sd, 1.0), 0.0)
        raw0 = np.array([float((prior or {}).get(name, 0.0)) for name in self.features])
        raw0 = np.where(fixed, [float((held or {}).get(name, 0.0)) for name in self.features], raw0)
        offset = Xa[:, fixed] @ raw0[fixed]  # the held features' log-odds, as scoring adds them
        if prior is not None:
            bad = [n for n, v in zip(self.features, raw0) if not math.isfinite(v) or (n in self.nonnegative and v < 0.0)]
            if bad or set(prior) - set(self.features) or set(held or {}) - set(self.features):
                raise ValueError(f"prior weights (log-odds per unit) must be finite, >= 0 for {sorted(self.nonnegative)} and name fitted features; "
                                 f"got {dict(prior)}")
        w0 = np.where(live, raw0 * sd, 0.0)  # the prior on the standardised scale
        lam = np.array([float((l2_by_feature or {}).get(name, self.l2)) for name in self.features])
        if not (np.all(np.isfinite(lam)) and np.all(lam >= 0.0)) or set(l2_by_feature or {}) - set(self.features):
            raise ValueError(f"l2_by_feature must give fitted features a finite penalty >= 0 (per example), got {dict(l2_by_feature or {})}")

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            b, w = theta[0], theta[1:]
            z = b + Z @ w + offset
            # log(1 + e^z) - y z, stable for any z
            d = w - w0
            loss = float(np.sum(sw * (np.logaddexp(0.0, z) - ya * z))) / total + 0.5 * float(d @ (lam * d))
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
            r = sw * (p - ya) / total
            grad = np.empty_like(theta)
            grad[0] = r.sum()
            grad[1:] = Z.T @ r + lam * d
            return loss, grad

        bounds: list[tuple[float | None, float | None]] = [(None, None)]
        for j, name in enumerate(self.features):
            if not live[j]:
                bounds.append((0.0, 0.0))
            else:
                lo, hi = self._raw_bounds(name)
                bounds.append((None if lo is None else lo * sd[j], None if hi is None else hi * sd[j]))
        theta0 = np.concatenate(([math.log(pos / (total - pos))], w0))
        res = optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                                options={"maxiter": 2000, "gtol": 1e-8})
        b, w = float(res.x[0]), res.x[1:]
        # a constant column says nothing: its weight stays the prior's (0 without one), so an
        # effect the history never showed (no negative feedback yet) keeps the default's say
        raw = np.where(live, w / np.where(live, sd, 1.0), raw0)
        self.weights = {name: float(v) for name, v in zip(self.features, raw)}
        for name in self.features:  # exact zeros and caps, not -0.0 or -1e-17 after the division
            self.weights[name] = self._bound(name, self.weights[name])
        self.intercept = b - float(np.sum(np.where(fixed, 0.0, raw) * mu))  # the offset was in z as is
        self.n = int(Xa.shape[0])
        return self
