"""A successor of the model in use, learnt from the stream's own later outcomes (``churnwatch learn``).

Labels come from event time only: a snapshot of a user's features as of date d is labelled once
d + horizon (plus the inactivity that defines churn) lies inside the history, by the rule
``churnwatch train --churn-after`` uses (``streams.offline.train.churn_times``: a cancel, or the
last activity before that much silence). No wall clock enters: "now" is the latest event read.
The fit is ``train(..., weights_only=True)``: the successor keeps the current model's
vocabulary, roles, horizon, population, calibration and thresholds, so workers can swap it under
their running state; only the risk weights, intercept and means move, and the RFM edges of a model
that has them are the history's own at its last event (they touch no state: QA12 F11).

The guard (:func:`beats`) is the comparison ``train`` reports (``versus_default``, computed
with the *current* model in the default's place): the successor is adopted only if its held-out
ROC AUC is above the current model's on the same held-out users and dates, by more than
``min_gain`` and, with ``beyond_noise`` (the command's default), by more than the noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from models.events import Event
from models.model import LEARNED_KEY, ChurnModel, learned_root
from streams.offline.evaluate import auc_verdict
from streams.offline.train import DEPENDS, train

__all__ = ["Proposal", "beats", "propose", "window"]


@dataclass(frozen=True, slots=True)
class Proposal:
    """A successor and the comparison that judged it; ``adopt``: it passed the guard."""

    successor: ChurnModel
    comparison: Mapping[str, Any]
    adopt: bool
    why: str


def beats(comparison: Mapping[str, Any], min_gain: float = 0.0, beyond_noise: bool = False) -> bool:
    """Does the successor beat the current model on held-out users? Its ROC AUC must be above the
    current one's by more than ``min_gain`` (AUC points), and with ``beyond_noise`` by more than
    the noise: ``evaluate.auc_verdict`` must say "better", the verdict ``train`` prints (two
    bootstrap standard errors of the difference, ``evaluate.within_noise``); an unknown AUC (one class held out, no held-out row) never passes,
    nor does a comparison whose earlier and later dates disagree beyond noise (``train.DEPENDS``).

    >>> beats({"trained_roc_auc": 0.71, "default_roc_auc": 0.70})
    True
    >>> beats({"trained_roc_auc": 0.70, "default_roc_auc": 0.70}), beats({}), beats({"trained_roc_auc": 0.8, "default_roc_auc": None})
    (False, False, False)
    >>> beats({"trained_roc_auc": 0.71, "default_roc_auc": 0.70}, min_gain=0.02)
    False
    >>> beats({"trained_roc_auc": 0.71, "default_roc_auc": 0.70, "difference_se": 0.006}, beyond_noise=True)
    False
    >>> beats({"trained_roc_auc": 0.75, "default_roc_auc": 0.70, "difference_se": 0.006, "verdict": "depends on the dates"})
    False
    """
    if min_gain < 0:
        raise ValueError(f"min_gain must be >= 0 AUC points, got {min_gain}")
    new, old = comparison.get("trained_roc_auc"), comparison.get("default_roc_auc")
    if new is None or old is None or comparison.get("verdict") == DEPENDS:  # halves that disagree: train says keep
        return False
    if beyond_noise and auc_verdict(new, old, comparison.get("difference_se")) != "better":
        return False
    return float(new) > float(old) + min_gain


def window(events: Sequence[Event], window_ms: int | None) -> list[Event]:
    """The events of the last ``window_ms`` of event time (all with None): what bounds the
    learner's memory besides the topic's retention.

    >>> [e.ts_ms for e in window([Event("u", t, "view") for t in (1, 5, 9)], 4)]
    [5, 9]
    """
    if window_ms is None or not events:
        return list(events)
    if window_ms <= 0:
        raise ValueError(f"window must be > 0 ms, got {window_ms}")
    start = max(ev.ts_ms for ev in events) - window_ms
    return [ev for ev in events if ev.ts_ms >= start]


def propose(events: Sequence[Event], current: ChurnModel, current_id: str, *, churn_after_ms: int | None = None,
            as_of_ms: Sequence[int] | None = None, holdout: float = 0.2, min_gain: float = 0.0,
            l2: float | None = None, beyond_noise: bool = False) -> Proposal:
    """Fit a successor of ``current`` (id ``current_id``) on ``events`` and judge it (module
    docstring). Raises ValueError when the history cannot label anything (too short for the
    horizon, one class only). ``l2``: as ``train``'s (None: chosen by cross-validation)."""
    fitted, report = train(events, base=current, churn_after_ms=churn_after_ms, as_of_ms=as_of_ms, holdout=holdout, l2=l2,
                           default=current, weights_only=True, version_prefix="learned",
                           notes=f"learned from the stream's own outcomes; succeeds {current_id}")
    comparison = dict(report.get("versus_default") or {})
    comparison.pop("default_version", None)
    comparison["current"] = current_id
    comparison["labels"] = report["labels"]
    comparison["snapshots"] = report["snapshots"]
    adopt = beats(comparison, min_gain, beyond_noise)
    training = dict(fitted.training)
    training[LEARNED_KEY] = {"base": current_id, "root": learned_root(current) or current_id,
                             "data_end_ms": max(ev.ts_ms for ev in events), "comparison": comparison}
    successor = fitted.with_(training=training)
    new, old, se = comparison.get("trained_roc_auc"), comparison.get("default_roc_auc"), comparison.get("difference_se")
    why = (f"held-out ROC AUC {new} vs {old} for the model in use on {comparison.get('rows', 0):,} rows of "
           f"{comparison.get('churning_users', 0)} churning users (difference standard error {se})"
           if comparison.get("rows") else "no held-out row could be scored by both models")
    return Proposal(successor, comparison, adopt, why)
