"""Scores of one user at one event time: health, temperature, risk, stage, segment, action, reasons.

Version 0: plain heuristics so the pipeline has real numbers to carry. The signals, BG/NBD
temperature, calibrated logistic risk, RFM and lifecycle rules replace these (issue 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from models.model import ChurnModel
from models.state import DAY_S, Stage, UserState, decayed

__all__ = ["Action", "Scores", "score"]

Action = Literal["educate", "check_in", "upsell", "win_back", "none"]


@dataclass(frozen=True, slots=True)
class Scores:
    health: float  # 0-100: how much and how broadly the product is used
    temperature: float  # 0-100: how likely the user stays and keeps paying
    risk: float  # 0-1: probability of churning within the model's horizon
    stage: Stage
    segment: str | None  # RFM segment where purchases exist
    action: Action
    reasons: tuple[str, ...]  # plain words, most important first


def score(st: UserState, now_s: int, model: ChurnModel) -> Scores:
    silence_days = max(0.0, (now_s - st.last_seen_s) / DAY_S)
    recent = decayed(st.act_7d, st.last_seen_s, now_s, 7) / 7.0
    baseline = decayed(st.act_90d, st.last_seen_s, now_s, 90) / 90.0
    ratio = recent / baseline if baseline > 0 else 1.0
    tenure_days = max(1.0, (st.last_seen_s - st.first_seen_s) / DAY_S)
    usual_gap = tenure_days / (st.active_days - 1) if st.active_days > 1 else 7.0
    overdue = silence_days / max(usual_gap, 1.0)
    health = 100.0 * (1.0 - math.exp(-decayed(st.act_28d, st.last_seen_s, now_s, 28) / 28.0))
    z = -2.0 + 1.2 * overdue + 2.5 * max(0.0, 1.0 - ratio) - 0.5 * min(st.active_days, 10) / 10
    risk = 1.0 / (1.0 + math.exp(-z))
    temperature = 100.0 * (1.0 - risk)
    if st.cancelled_s or silence_days >= model.churned_days:
        stage: Stage = "churned"
    elif silence_days >= model.dormant_days:
        stage = "dormant"
    elif st.stage == 4 and silence_days < model.dormant_days:
        stage = "reactivated"
    elif (st.last_seen_s - st.first_seen_s) < model.new_days * DAY_S:
        stage = "new"
    elif ratio < model.decline_ratio or overdue > model.overdue_factor:
        stage = "declining"
    else:
        stage = "active"
    reasons: list[str] = []
    if ratio < 1.0 and baseline > 0:
        reasons.append(f"activity down {100 * (1 - ratio):.0f}% against the user's own 90-day baseline")
    if overdue > 1.0:
        reasons.append(f"no visit for {overdue:.1f}x the usual interval of {usual_gap:.1f} days")
    action: Action = "win_back" if stage == "churned" else "check_in" if risk >= model.risk_enter else "none"
    return Scores(health, temperature, risk, stage, None, action, tuple(reasons))
