"""Scores of one user at one event time: health, temperature, risk, stage, segment, action, reasons.

``score`` is the one function the stream, the backtest and ``train`` call; it only combines the
parts, each in its own module:

- models.signals: activity windows, trend, cadence, overdue (computed once per call)
- models.health / models.temperature: the two 0-100 numbers
- models.risk: the calibrated churn probability within ``model.horizon_days``
- models.lifecycle: the stage, by written rules
- models.rfm: the RFM segment of purchasers
- models.actions / models.reasons: what to do and why, in plain words

Pure and cheap: plain float math, no numpy, no clock (``now_s`` is an event time argument).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from models.actions import Action, recommend
from models.health import health
from models.lifecycle import stage_of
from models.model import ChurnModel
from models.reasons import reasons
from models.rfm import rfm_segment
from models.risk import SILENCE_FEATURES, FEATURES, churn_risk, feature_vector, features_after, risk_probability, risk_terms
from models.signals import Signals, compute_signals
from models.state import DAY_S, Stage, UserState
from models.temperature import P_MIN, StaySource, calibration, p_stay, params

__all__ = ["Action", "Assessment", "Scores", "SilentRisk", "assess", "features_at", "risk_after", "risk_at", "score", "scores_from"]

_SILENCE_INDEX: Final[frozenset[int]] = frozenset(i for i, name in enumerate(FEATURES) if name in SILENCE_FEATURES)


@dataclass(frozen=True, slots=True)
class Scores:
    health: float  # 0-100: how much and how broadly the product is used
    temperature: float  # 0-100: how likely the user stays and keeps paying
    risk: float  # 0-1: probability of churning within the model's horizon
    stage: Stage
    segment: str | None  # RFM segment where purchases exist
    action: Action
    reasons: tuple[str, ...]  # plain words, most important first
    signals: Signals | None = None  # what the scores were computed from (for reports and tests)


@dataclass(slots=True)
class Assessment:
    """What a review needs to decide on alerts (stage and risk), and what the full scores are
    built from when an alert is raised: the engine assesses every review cheaply and formats
    health, reasons and the rest only for the alerts."""

    signals: Signals
    stage: Stage
    risk: float
    p_stay: float
    stay_source: StaySource
    features: list[float]
    leave: float  # P(leaves within the horizon | alive), the logistic part of the risk


def assess(st: UserState, now_s: int, model: ChurnModel) -> Assessment:
    """Stage and risk of ``st`` at ``now_s`` (and the signals and features behind them).

    A churned user's risk is 1: they are gone, which is more than "likely to go".
    """
    sig = compute_signals(st, now_s, model)
    p, source = p_stay(sig, model)
    values = feature_vector(sig, p, st.revenue)
    stage = stage_of(st, sig, model)
    leave = risk_probability(values, model)
    risk = 1.0 if stage == "churned" else 1.0 - p * (1.0 - leave)  # models.risk.churn_risk
    return Assessment(sig, stage, risk, p, source, values, leave)


def scores_from(st: UserState, a: Assessment, model: ChurnModel) -> Scores:
    """The full scores of an assessment of ``st`` (``st`` as it was when assessed)."""
    sig = a.signals
    h = health(sig, model.population)
    temperature = 100.0 * a.p_stay
    segment = rfm_segment(st, sig.now_s, model.population) if st.n_purchases else None
    action = recommend(a.stage, h, temperature, st.n_purchases > 0, model)
    why = reasons(st, sig, a.stage, a.features, a.p_stay, a.stay_source, model, a.leave)
    return Scores(h, temperature, a.risk, a.stage, segment, action, why, sig)


def score(st: UserState, now_s: int, model: ChurnModel) -> Scores:
    """All scores of ``st`` at event time ``now_s`` (seconds)."""
    return scores_from(st, assess(st, now_s, model), model)


def risk_at(st: UserState, now_s: int, model: ChurnModel) -> float:
    """``score(st, now_s, model).risk`` without the rest (the engine bisects on it)."""
    sig = compute_signals(st, now_s, model)
    if stage_of(st, sig, model) == "churned":
        return 1.0
    p, _ = p_stay(sig, model)
    return churn_risk(feature_vector(sig, p, st.revenue), p, model)


def risk_after(a: Assessment, t_s: int, model: ChurnModel) -> float:
    """The linear risk at ``t_s`` (>= the assessment's time) if the user stays silent, from the
    assessment alone (models.risk.features_after): ``risk_at(st, t_s, model)`` up to float
    rounding while the stage is not churned, at a quarter of its cost.

    Equal, bit for bit, to ``churn_risk(features_after(...), stay_after(...))``: the engine
    evaluates it through :class:`SilentRisk`, which does the same arithmetic."""
    return SilentRisk(a, model).at(t_s)


_terms_model: object = None
_terms: tuple[tuple[int, float, bool], ...] = ()


def _silence_terms(model: ChurnModel) -> tuple[tuple[int, float, bool], ...]:
    """models.risk.risk_terms with, per term, whether its feature moves with silence (cached
    per model object, as models.risk caches the weights)."""
    global _terms_model, _terms
    if model is not _terms_model:
        _terms = tuple((i, w, i in _SILENCE_INDEX) for i, w in risk_terms(model))
        _terms_model = model
    return _terms


class SilentRisk:
    """:func:`risk_after` of one assessment at many times (the engine's crossing search).

    Everything that does not change with silence is worked out once here: the parameters and
    the constant parts of both P(alive) formulas, and which weighted features move. Per time,
    only the moving features with a non-zero weight are computed, with the very expressions of
    models.risk.features_after and models.temperature.stay_after (same operations in the same
    order, so the same bits): subexpressions are cached, never rearranged, and the log-odds are
    summed in feature order as models.risk.risk_probability does.
    """

    __slots__ = ("_a", "_sig", "_now_s", "_terms", "_visit", "_buy", "_cal", "_intercept")

    def __init__(self, a: Assessment, model: ChurnModel) -> None:
        sig = a.signals
        self._a = a
        self._sig = sig
        self._now_s = sig.now_s
        self._terms = _silence_terms(model)
        self._intercept = model.risk_intercept
        visits, purchases = params(model)
        x = float(sig.active_days - 1 if sig.active_days > 1 else 0)  # as stay_after passes it
        t_x = sig.tenure_days
        # models.mbgnbd.p_alive: log(a/(b+x)) + (r+x) log((alpha+T)/(alpha+t_x)), T >= t_x
        self._visit = (t_x, visits.alpha, math.log(visits.a / (visits.b + x)), visits.r + x, visits.alpha + t_x, sig.age_days)
        self._buy: tuple[float, float, float, float, float] | None = None
        if purchases is not None and sig.n_purchases > 0 and sig.purchase_x != 0:
            # models.bgnbd.p_alive (scalar path) with x > 0; x == 0 gives 1.0, never below the
            # visit P(alive), so it cannot decide. T = purchase_T + extra >= t_x: no check needed.
            xf, txf = float(sig.purchase_x), float(sig.purchase_t_x)
            self._buy = (
                purchases.alpha, math.log(purchases.a / (purchases.b + xf - 1.0)), purchases.r + xf,
                purchases.alpha + txf, sig.purchase_T,
            )
        self._cal = calibration(model)

    def at(self, t_s: int) -> float:
        """Risk at ``t_s`` if the user stays silent until then."""
        extra = (t_s - self._now_s) / DAY_S
        if extra <= 0.0:
            return self._a.risk
        t_x, alpha, log_ab, rx, alpha_tx, age = self._visit
        T = age + extra
        T = T if T > t_x else t_x
        z = log_ab + rx * math.log((alpha + T) / alpha_tx)
        if z > 0.0:
            e = math.exp(-z)
            p = e / (1.0 + e)
        else:
            p = 1.0 / (1.0 + math.exp(z))
        buy = self._buy
        if buy is not None:
            b_alpha, b_log_ab, b_rx, b_alpha_tx, b_T = buy
            z = b_log_ab + b_rx * math.log((b_alpha + (b_T + extra)) / b_alpha_tx)
            if z > 0:
                e = math.exp(-z)
                q = e / (1.0 + e)
            else:
                q = 1.0 / (1.0 + math.exp(z))
            if q < p:
                p = q
        cal = self._cal
        if cal is not None:  # models.temperature.calibrated
            q = p if p > P_MIN else P_MIN
            q = q if q < 1.0 - P_MIN else 1.0 - P_MIN
            z = cal[0] * math.log(q / (1.0 - q)) + cal[1]
            if z >= 0.0:
                p = 1.0 / (1.0 + math.exp(-z))
            else:
                e = math.exp(z)
                p = e / (1.0 + e)
        z = self._intercept
        values = self._a.features
        for i, w, moves in self._terms:
            if not moves:
                z += w * values[i]
            elif i == 3:  # inactive_7d, the one silence feature fitted models weigh
                z += w * -math.log1p(self._sig.act_7d * math.exp(-extra / 7.0))
            else:
                z += w * self._silence_feature(i, extra, p)
        # models.risk.churn_risk of models.risk.sigmoid(z)
        if z >= 0.0:
            leave = 1.0 / (1.0 + math.exp(-z))
        else:
            e = math.exp(z)
            leave = e / (1.0 + e)
        return 1.0 - p * (1.0 - leave)

    def _silence_feature(self, i: int, x: float, p_stay_after: float) -> float:
        """Feature ``i`` of models.risk.features_after after ``x`` more days (same expressions)."""
        sig = self._sig
        if i == 9:
            return 1.0 - p_stay_after
        return features_after(sig, self._a.features, x, p_stay_after)[i]


def features_at(st: UserState, now_s: int, model: ChurnModel) -> tuple[Stage, list[float]]:
    """The stage and the risk feature vector at ``now_s``: what ``train`` fits on, computed by
    the same code as ``score``."""
    sig = compute_signals(st, now_s, model)
    p, _ = p_stay(sig, model)
    return stage_of(st, sig, model), feature_vector(sig, p, st.revenue)
