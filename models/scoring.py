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

from dataclasses import dataclass

from models.actions import Action, recommend
from models.health import health
from models.lifecycle import stage_of
from models.model import ChurnModel
from models.reasons import reasons
from models.rfm import rfm_segment
from models.risk import churn_risk, combine, feature_vector, features_after, risk_probability
from models.signals import Signals, compute_signals
from models.state import DAY_S, Stage, UserState
from models.temperature import StaySource, p_stay, stay_after

__all__ = ["Action", "Assessment", "Scores", "SilentRisk", "assess", "features_at", "risk_after", "risk_at", "score", "scores_from"]

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
    risk = 1.0 if stage == "churned" else combine(p, leave)
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
    rounding while the stage is not churned, at a fraction of its cost (the engine evaluates it
    through :class:`SilentRisk`)."""
    return SilentRisk(a, model).at(t_s)


class SilentRisk:
    """:func:`risk_after` of one assessment at many times (the engine's crossing search): the
    risk formula itself (models.temperature.stay_after, models.risk.features_after and
    models.risk.churn_risk) evaluated on the assessment's signals."""

    __slots__ = ("_a", "_model")

    def __init__(self, a: Assessment, model: ChurnModel) -> None:
        self._a = a
        self._model = model

    def at(self, t_s: int) -> float:
        """Risk at ``t_s`` if the user stays silent until then."""
        a = self._a
        extra = (t_s - a.signals.now_s) / DAY_S
        if extra <= 0.0:
            return a.risk
        p, _ = stay_after(a.signals, extra, self._model)
        return churn_risk(features_after(a.signals, a.features, extra, p), p, self._model)


def features_at(st: UserState, now_s: int, model: ChurnModel) -> tuple[Stage, list[float]]:
    """The stage and the risk feature vector at ``now_s``: what ``train`` fits on, computed by
    the same code as ``score``."""
    sig = compute_signals(st, now_s, model)
    p, _ = p_stay(sig, model)
    return stage_of(st, sig, model), feature_vector(sig, p, st.revenue)
