"""The simulator's own churn probabilities as a scorer: how far any model could go (issue 11).

Why: the quality table asks every scorer to beat others by fixed margins (a trained model >=
the per-type regression + 0.02 AUC, alerts at 3.5x the base rate with recall 0.4). Whether a
margin is reachable at all depends on how much of the churn is noise. fightchurn decides churn
at each month end by a coin with a known probability, so the table can carry that ceiling:

- **oracle (decision)**: for a judged row (user, as-of ``d``), the probability with which the
  simulator ended the subscription at its month ends inside the label window ``(d, d + horizon]``,
  ``1 - prod(1 - h)`` over those month ends, ``h`` from the simulator's state just before each
  one (:func:`churn_hazard`). It knows the events of the month to come, so no model can reach
  it: an upper bound.
- **oracle at d**: the same, with each month end's utility computed by the simulator's own
  utility function from what exists at ``d`` (the user's cumulative counts before ``d``, plus
  the counts the user's true rates make expected until the month end) with the true
  satisfaction propensity, price and discount: what a perfect model of the simulator could
  know at ``d``. Computed where the simulator lives (``benchmarks.populations``).

Pure functions here; the probabilities themselves are recorded by ``benchmarks.populations``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["churn_hazard", "precision_at_recall", "window_probability"]


def churn_hazard(p_intent: float, renewal: bool, intents_before: int, bill_period: int) -> float:
    """P(the subscription ends at this month end | the simulator's state just before it).

    fightchurn's ``ChurnSimulation.customer_month_end``: each month end the customer forms a
    churn intent with probability ``p_intent`` (acausal churn, else ``churn_probability`` of the
    utility); at a renewal it leaves if any intent was formed since the last renewal; between
    renewals it leaves on its 2nd intent for bill periods of 2-6 months, its 3rd for longer ones.

    >>> churn_hazard(0.1, True, 0, 1)   # monthly plan: every month end renews
    0.1
    >>> churn_hazard(0.1, True, 1, 12)  # annual plan at renewal with an intent already formed
    1.0
    >>> churn_hazard(0.1, False, 1, 12), churn_hazard(0.1, False, 2, 12)  # mid-term: the 3rd intent ends it
    (0.0, 0.1)
    """
    if not 0.0 <= p_intent <= 1.0:
        raise ValueError(f"p_intent must be a probability in [0, 1], got {p_intent}")

    def leaves(intents: int) -> bool:
        if renewal:
            return intents > 0
        return (intents > 1 and 2 <= bill_period <= 6) or (intents > 2 and bill_period > 6)

    return p_intent * leaves(intents_before + 1) + (1.0 - p_intent) * leaves(intents_before)


def window_probability(decision_ms: Sequence[int], hazards: Sequence[float], as_of_ms: int, horizon_ms: int) -> float:
    """P(churn within ``(as_of, as_of + horizon]``) from the decisions at times ``decision_ms``
    with probabilities ``hazards``: ``1 - prod(1 - h)`` over the decisions inside the window (each
    one is reached only if the earlier ones kept the customer), 0 when none falls inside.

    >>> round(window_probability([10, 40, 70], [0.1, 0.5, 0.2], 30, 40), 12)   # only t=40 and t=70 in (30, 70]
    0.6
    >>> window_probability([10], [0.9], 10, 30)                     # a decision at the as-of time is past
    0.0
    """
    if horizon_ms <= 0:
        raise ValueError(f"horizon_ms must be > 0 ms, got {horizon_ms}")
    survive = 1.0
    for t, h in zip(decision_ms, hazards):
        if as_of_ms < t <= as_of_ms + horizon_ms:
            survive *= 1.0 - h
    return 1.0 - survive


def precision_at_recall(scores: Sequence[float], y: Sequence[int], users: Sequence[str], target: float = 0.4) -> dict[str, Any]:
    """Precision of weekly flags at the highest threshold that catches ``target`` of the churners.

    A row (user, as-of) is flagged when its score is at or above the threshold; a churner is a
    user with a positive row (churn within the horizon after that as-of date) and is caught when
    one of its positive rows is flagged, i.e. flagged before it leaves. Precision = positive rows
    among the flagged rows. The alert figures of the table count alert episodes instead of weekly
    rows; this is the same question asked of any scorer on the judged panel, alerts or not.

    >>> r = precision_at_recall([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0], ["a", "b", "c", "d"], 0.5)
    >>> r["precision"], r["recall"], r["flagged_rows"]
    (1.0, 0.5, 1)
    """
    s = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(y, dtype=np.int64)
    churners = {u for u, v in zip(users, labels) if v}
    if not churners or not 0.0 < target <= 1.0:
        return {"precision": None, "recall": None, "flagged_rows": 0, "threshold": None}
    order = np.argsort(-s, kind="stable")
    caught: set[str] = set()
    tp = 0
    for rank, i in enumerate(order, start=1):
        if labels[i]:
            tp += 1
            caught.add(users[i])
        last_of_tie = rank == len(order) or s[order[rank]] != s[i]
        if last_of_tie and len(caught) >= target * len(churners) - 1e-12:
            return {"precision": round(tp / rank, 4), "recall": round(len(caught) / len(churners), 4),
                    "flagged_rows": rank, "threshold": float(s[i])}
    return {"precision": round(tp / len(order), 4), "recall": 1.0, "flagged_rows": len(order), "threshold": float(s[order[-1]])}

