"""Temperature 0-100: how likely the user is back (and, for a repeat buyer, buys again) within
the model's horizon, from their own rhythm; and P(alive), the "already gone" part of the risk.

Two buy-till-you-die models, both "is the silence we see normal for this user's rhythm?":

- **purchases** (where the user bought again and the model file carries BG/NBD parameters):
  BG/NBD on (x, t_x, T), :mod:`models.bgnbd`, alpha in days.
- **visits** (everyone): MBG/NBD on active days (:mod:`models.mbgnbd`: x = active days after the
  first, t_x = first to last active day, T = first active day to now), with population
  parameters fitted by ``train`` (``population["visit_mbgnbd"]``) or :data:`DEFAULT_VISIT_PARAMS`.
  The modified model, because plain BG/NBD says P(alive) = 1 for anyone seen on one day only.

Each gives two numbers, and for each number the lower of the two rhythms counts (staying needs
both coming back and, for a purchaser, buying again: a regular buyer who still visits but stopped
buying cools down), the purchases only where :func:`purchases_speak` says they are a rhythm of
the user's (three purchase days or more) or all that is seen of them lately (no activity since
the last purchase): a buyer with two purchase days who kept using the product is judged by the
visits (QA22b F9, docs/SCORES.md "A single interval between purchases is no rhythm"), and so is a
subscriber whose own paid period runs while they keep coming (:func:`plan_carries`: the plan is
the paying relationship, the purchases besides it are add-ons; QA23a F4, docs/SCORES.md "A
subscriber who keeps coming is not cooled by their add-ons"):

- **the temperature** (:func:`p_back_within`), the one number shown as temperature everywhere
  (alerts, console, score history, ``top``) and read by the action and the reasons:
  100 x P(alive) x P(the next active day, or purchase, falls within the horizon | alive), the
  chance the user is back within ``model.horizon_days``. Uncalibrated (the calibration is fitted
  for P(alive)). Why not P(alive) alone: it ranks a one-time buyer of last month above a regular
  buyer silent for a while; being back within a window also needs the user's rate (the CDNOW
  check of benchmarks/quality.py: 0.7726 / 0.7720 default / trained for this, 0.7638 / 0.6849 for
  P(alive), 0.7725 for BG/NBD's own expected purchases).
- **P(alive)** (:func:`p_stay`), calibrated by ``alive_calibration`` (a monotonic map fitted by
  ``train`` against who in hindsight had already left): what the risk's "already gone" part and
  its ``cooling`` feature read (models.risk), and the engine's search for a risk crossing
  (:func:`stay_after`). Never shown as a number of its own.

Both fall with silence; the temperature is never above the uncalibrated P(alive).

**A cancellation.** While the user's cancellation stands (models.signals ``cancelled``: a
``cancel`` event and no activity on a later UTC day) the temperature is 0. Why: both models are
buy-till-you-die models for a *non-contractual* setting, where the moment a customer drops out
is never observed and P(alive) infers it from the silence (Schmittlein, Morrison & Colombo,
"Counting your customers", Management Science 33(1), 1987; Fader, Hardie & Lee 2005); a dropout
is permanent there (the "die" of buy-till-you-die). A cancellation is that dropout observed, as
in the contractual setting where churn is seen when it happens (Fader & Hardie, "Probability
models for customer-base analysis", J. Interactive Marketing 23(1), 2009): the model's own answer,
given the observation, is P(alive) = 0, so P(back within the horizon) = 0. Before, a user who
cancelled today after a daily rhythm was shown 83-98 ("back within 30 days": QA 2026-12), the
rhythm read as if the cancellation had not been said. No number is fitted: the effect is the
models' own conditional, monotone (a cancellation never raises the temperature) and it ends
with the cancellation: a return on a later day clears it (models.signals.is_cancelled), and the
rhythm speaks again (the stage says reactivated). A win-back of a cancelled user is still
possible, the model just has no rhythm to put a chance on it: ``top --win-back --share`` ranks
such users after those who drifted away, by value among themselves (models.ranking.win_back_key:
spend, active days, the latest leave); ``-n`` and the console read the at-risk index, keyed by the
same order (models.ranking.index_score: temperature 0, then the value), and list them only with
an at-risk alert open. P(alive)
in the risk (:func:`p_stay`) is not changed: a cancelled user is churned and its risk is 1
(models.scoring.assess), so nothing reads it there.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, Literal

from models import mbgnbd
from models.bgnbd import p_alive, p_buys_within
from models.compiled import DEFAULT_VISIT_PARAMS, VISIT_KEY, CompiledModel
from models.signals import REORDER_MIN_INTERVALS, Signals, bought_last, paid_period_passes_s
from models.state import DAY_S

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["DEFAULT_VISIT_PARAMS", "VISIT_KEY", "P_MIN", "StaySource", "calibrated", "p_back_within", "p_stay", "plan_carries", "purchases_speak",
           "stay_after"]

StaySource = Literal["visits", "purchases"]

#: P(alive) is clipped to [P_MIN, 1 - P_MIN] before calibration (log-odds stay finite).
P_MIN: Final[float] = 1e-12


def calibrated(p: float, model: "ChurnModel") -> float:
    """P(alive) after the model's calibration (``alive_calibration``), monotonic in ``p``.

    >>> from models.model import ChurnModel
    >>> m = ChurnModel(alive_calibration={"slope": 1.0, "intercept": 0.0})
    >>> round(calibrated(0.3, m), 12), calibrated(0.3, ChurnModel())
    (0.3, 0.3)
    """
    cal = model.compiled.calibration
    if cal is None:
        return p
    q = p if p > P_MIN else P_MIN
    q = q if q < 1.0 - P_MIN else 1.0 - P_MIN
    z = cal[0] * math.log(q / (1.0 - q)) + cal[1]
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def purchases_speak(sig: Signals) -> bool:
    """Whether the purchase rhythm counts beside the visits (QA22b F9): a repeat buyer (BG/NBD
    says P(alive) = 1 without a repeat purchase) with a rhythm, purchases on three UTC days or more
    (models.signals.REORDER_MIN_INTERVALS: one interval is a single gap, not a rhythm, as for the
    re-order rule), or one seen on no activity since the last purchase (the two rhythms then read
    the same silence: purchase-only data, CDNOW's, is judged as before). A buyer with two purchase
    days who kept using the product after the second is judged by the visits: a daily player with
    two small purchases months apart is not cold, nor "already gone", for not buying a third
    within the horizon. Fixed in silence (both silences grow alike), so the engine's search for a
    risk crossing (:func:`stay_after`) reads one rule."""
    if sig.purchase_x == 0 or sig.n_purchases == 0:
        return False
    return sig.purchase_x >= REORDER_MIN_INTERVALS or bought_last(sig)


def plan_carries(sig: Signals, at_s: int, back: float, c: CompiledModel) -> bool:
    """Whether a subscriber's own plan carries their paying relationship at ``at_s`` (epoch s), so
    that their purchases besides it, add-ons, do not count beside the visits (QA23a F4): their own
    paid period runs then (its end plus the renewal's grace after it: the latest statement is ``active`` with an
    MRR above 0, models.state PAYS_SUBSCRIPTION, its period not ended; the test of the re-order
    alert's gate, models.signals.paid_period_runs; not an account member's, models.state
    ACCOUNT_MEMBER, whose statements are its account's) and they keep coming: their visit rhythm
    says they are more likely than not back within the horizon (``back``, the visit temperature /
    100, at or above ``action_temperature``, the cut the action reads a temperature by).

    Why: the temperature asks whether the user stays and keeps paying; a subscriber pays by the
    plan, and while they keep coming their renewal is what says so, not a programme bought now and
    then (a fitness app's loyal monthly subscribers were at temperature 3-10 and 14 of its top 50
    for an add-on rhythm of 54 days, health 77-90). When their visits fall too, or the paid period
    ends unrenewed, the add-on rhythm counts again, as for anybody: both only fall in silence, so
    the rule is monotone (P(alive) only falls) and the engine's search for a risk crossing and the
    save-list bound, which read it at ``at_s`` (:func:`stay_after`), find the same second."""
    return paid_period_passes_s(sig) > at_s and not sig.member and 100.0 * back >= c.action_temperature


def p_stay(sig: Signals, model: "ChurnModel", c: CompiledModel | None = None) -> tuple[float, StaySource]:
    """P(alive), calibrated, and which rhythm decided it (the lower of the two): the risk's
    "already gone" part, not the temperature shown (:func:`p_back_within`). ``c``: ``model.compiled``
    where the caller holds it (a generic attribute lookup saved)."""
    return stay_after(sig, 0.0, model, c)


def stay_after(sig: Signals, extra_days: float, model: "ChurnModel", c: CompiledModel | None = None) -> tuple[float, StaySource]:
    """:func:`p_stay` after ``extra_days`` more silence, from the signals now (the engine's search
    for a risk crossing): only T grows, in both models. A negative ``extra_days`` (the save-list
    bound's look back to the last review, models.ranking.save_bound) never takes T below the last
    activity t_x: that time is not before it, and a rounding of T + extra must not say so."""
    compiled = model.compiled if c is None else c
    purchases = compiled.purchases
    T = sig.age_days + extra_days
    T = sig.tenure_days if T < sig.tenure_days else T
    # compiled.visits' parameters, from the compiled form's struct (models.mbgnbd.p_alive_of)
    p = mbgnbd.p_alive_of(compiled.visit_r, compiled.visit_alpha, compiled.visit_a, compiled.visit_b,
                          float(sig.active_days - 1 if sig.active_days > 1 else 0), sig.tenure_days, T)
    source: StaySource = "visits"
    # BG/NBD says 1.0 without a repeat purchase (x = 0), never below p: no need to ask it; nor
    # of a subscriber whose plan carries them (the visit temperature asked only with a period end)
    if purchases is not None and purchases_speak(sig) and not (
            sig.period_end_s > 0 and plan_carries(sig, sig.now_s + round(extra_days * DAY_S), _visits_back(sig, T, compiled), compiled)):
        T = sig.purchase_T + extra_days
        T = sig.purchase_t_x if T < sig.purchase_t_x else T
        q = p_alive(purchases, sig.purchase_x, sig.purchase_t_x, T)
        if q < p:
            p, source = q, "purchases"
    return (p if compiled.calibration is None else calibrated(p, model)), source


def _visits_back(sig: Signals, T: float, c: CompiledModel) -> float:
    """The visit rhythm's P(an active day within the horizon) at age ``T`` days (the temperature's
    visit part, :func:`p_back_within`): what :func:`plan_carries` reads at a later silence."""
    return mbgnbd.p_active_within_of(c.visit_r, c.visit_alpha, c.visit_a, c.visit_b,
                                     float(sig.active_days - 1 if sig.active_days > 1 else 0), sig.tenure_days, T, c.horizon_days)


def p_back_within(sig: Signals, model: "ChurnModel", c: CompiledModel | None = None) -> tuple[float, StaySource]:
    """The temperature / 100 and which rhythm decided it: P(an active day within the model's
    horizon) (models.mbgnbd.p_active_within), and for a repeat buyer the lower of that and
    P(a purchase within it) (models.bgnbd.p_buys_within). Uncalibrated (module docstring).

    Falls with silence (both factors do) and rises to P(alive) as the horizon grows: with the
    default's visit prior a user seen on one day only is at 17 after a month of silence. 0 while
    a cancellation stands (module docstring: the dropout is observed), said to come from the
    visit rhythm, which it ends (the reasons tell the cancellation itself, models.reasons).
    ``c``: ``model.compiled`` where the caller holds it (a generic attribute lookup saved).
    """
    if sig.cancelled:
        return 0.0, "visits"
    compiled = model.compiled if c is None else c
    h = compiled.horizon_days  # float(model.horizon_days): a struct read, not a generic attribute lookup
    p = _visits_back(sig, sig.age_days, compiled)
    source: StaySource = "visits"
    purchases = compiled.purchases
    if purchases is not None and purchases_speak(sig) and not plan_carries(sig, sig.now_s, p, compiled):
        q = p_buys_within(purchases, sig.purchase_x, sig.purchase_t_x, sig.purchase_T, h)
        if q < p:
            p, source = q, "purchases"
    return p, source
