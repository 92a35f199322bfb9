"""RFM: recency, frequency and monetary scores 1-5 against the population, and named segments.

Why quantiles of the population and not fixed thresholds: "bought 3 times" is a lot for a
furniture shop and nothing for a grocer; scoring against the product's own customers keeps
the segments meaningful everywhere. ``churnwatch train`` computes the quantile edges with
:func:`fit_population` and stores them in the model file's ``population`` mapping as plain
lists; the stream only bisects them (a few hundred nanoseconds, no numpy on the hot path).

The three measures of a purchaser at event time ``now_s`` (from models.state.UserState):

- recency: days since the last purchase (``rfm_recency_days``; fewer days -> higher score),
- frequency: distinct days with a purchase (``rfm_frequency``; two orders on one day are one visit to the shop),
- monetary: total purchase value (``rfm_monetary``).

Users who never purchased have no RFM scores and no segment (None), and so does everyone
while the model file carries no RFM edges (an untrained model).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any, Final, Iterable, Literal, Mapping, NamedTuple, Sequence, get_args

from models.state import DAY_S, UserState

__all__ = [
    "POPULATION_KEYS",
    "QUANTILES",
    "SEGMENTS",
    "RfmScores",
    "Segment",
    "check_population",
    "fit_population",
    "fit_quantiles",
    "rfm_scores",
    "rfm_segment",
    "segment_of",
]

RECENCY_KEY: Final[str] = "rfm_recency_days"
FREQUENCY_KEY: Final[str] = "rfm_frequency"
MONETARY_KEY: Final[str] = "rfm_monetary"
POPULATION_KEYS: Final[tuple[str, str, str]] = (RECENCY_KEY, FREQUENCY_KEY, MONETARY_KEY)
#: Quantiles whose values separate the five scores (quintiles).
QUANTILES: Final[tuple[float, float, float, float]] = (0.2, 0.4, 0.6, 0.8)

Segment = Literal[
    "new",
    "champions",
    "loyal",
    "important to develop",
    "important to retain",
    "about to sleep",
    "important to win back",
    "hibernating",
]
SEGMENTS: Final[tuple[Segment, ...]] = get_args(Segment)


class RfmScores(NamedTuple):
    recency: int  # 5 = bought most recently
    frequency: int  # 5 = buys most often
    monetary: int  # 5 = spent the most


def fit_quantiles(values: Iterable[float]) -> list[float]:
    """The four quintile edges of ``values`` as a plain list (JSON-ready), non-decreasing.

    >>> fit_quantiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    [3.0, 5.0, 7.0, 9.0]
    """
    import numpy as np  # here, not with the scoring core: only a fit needs it

    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("fit_quantiles needs at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError("fit_quantiles: values must be finite numbers")
    return [float(v) for v in np.quantile(arr, QUANTILES)]


def _measures(state: UserState, now_s: int) -> tuple[float, float, float]:
    # A review may run before the last purchase's time (late events): recency is then 0 days.
    recency_days = max(0, now_s - state.last_purchase_s) / DAY_S
    return recency_days, float(state.n_purchases), float(state.revenue)


def fit_population(states: Iterable[UserState], now_s: int) -> dict[str, list[float]]:
    """Quintile edges of the purchasers among ``states`` at ``now_s``, keyed for the model file.

    Empty when nobody purchased (then the model carries no RFM and segments are None).
    """
    rows = [_measures(st, now_s) for st in states if st.n_purchases > 0]
    if not rows:
        return {}
    columns = list(zip(*rows))
    return {key: fit_quantiles(col) for key, col in zip(POPULATION_KEYS, columns)}


def check_population(population: Mapping[str, Any]) -> None:
    """Raise ValueError unless the RFM edges in ``population`` are usable (or all absent).

    For model loading and ``train``; the hot path trusts a checked model.
    """
    present = [key for key in POPULATION_KEYS if key in population]
    if not present:
        return
    if len(present) != len(POPULATION_KEYS):
        raise ValueError(f"model population has {present} but RFM needs all of {list(POPULATION_KEYS)}")
    for key in POPULATION_KEYS:
        edges = population[key]
        if not isinstance(edges, Sequence) or isinstance(edges, (str, bytes)) or len(edges) != len(QUANTILES):
            raise ValueError(f"model population {key} must be a list of {len(QUANTILES)} numbers, got {edges!r}")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in edges):
            raise ValueError(f"model population {key} must hold finite numbers, got {edges!r}")
        if any(b < a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"model population {key} edges must be non-decreasing, got {edges!r}")


def _higher_is_better(value: float, edges: Sequence[float]) -> int:
    # At or below the 20% edge -> 1, above the 80% edge -> 5. Tied edges (say most customers
    # bought exactly once) put every tied value in the lowest score they share.
    return 1 + bisect_left(edges, value)


def rfm_scores(state: UserState, now_s: int, population: Mapping[str, Any]) -> RfmScores | None:
    """Scores 1-5 of one user at ``now_s``; None without purchases or without RFM edges.

    >>> pop = {"rfm_recency_days": [7, 14, 30, 60], "rfm_frequency": [1, 1, 2, 4], "rfm_monetary": [20, 40, 80, 200]}
    >>> st = UserState(first_purchase_s=0, last_purchase_s=50 * DAY_S, n_purchases=3, revenue=150.0)
    >>> rfm_scores(st, 60 * DAY_S, pop)
    RfmScores(recency=4, frequency=4, monetary=4)
    """
    if state.n_purchases <= 0:
        return None
    try:
        r_edges = population[RECENCY_KEY]
        f_edges = population[FREQUENCY_KEY]
        m_edges = population[MONETARY_KEY]
    except KeyError:
        return None
    recency_days, frequency, monetary = _measures(state, now_s)
    # Fewer days since the last purchase is better: at or below the 20% edge -> 5.
    recency = 5 - bisect_left(r_edges, recency_days)
    return RfmScores(recency, _higher_is_better(frequency, f_edges), _higher_is_better(monetary, m_edges))


def segment_of(scores: RfmScores, n_purchases: int) -> Segment:
    """The named segment of RFM scores: the first rule that matches, in this order.

    Recency bands: *recent* R >= 4, *slipping* R in {2, 3}, *gone* R = 1.
    *High value* means F >= 4 or M >= 4 (top two quintiles in frequency or spend).

    1. ``new``: recent, and only one purchase so far.
    2. ``champions``: recent, F >= 4 and M >= 4 (buy often, spend much, bought lately).
    3. ``loyal``: recent, F >= 4 (buy often, spend less).
    4. ``important to develop``: recent, F <= 3 (bought lately but not often yet: grow them).
    5. ``important to retain``: slipping, high value (were worth a lot, recency fading).
    6. ``about to sleep``: slipping, not high value.
    7. ``important to win back``: gone, high value (were worth a lot, long silent).
    8. ``hibernating``: gone, not high value.

    >>> segment_of(RfmScores(5, 5, 5), 12), segment_of(RfmScores(1, 5, 2), 9), segment_of(RfmScores(5, 1, 3), 1)
    ('champions', 'important to win back', 'new')
    """
    r, f, m = scores
    high_value = f >= 4 or m >= 4
    if r >= 4:
        if n_purchases <= 1:
            return "new"
        if f >= 4 and m >= 4:
            return "champions"
        if f >= 4:
            return "loyal"
        return "important to develop"
    if r >= 2:
        return "important to retain" if high_value else "about to sleep"
    return "important to win back" if high_value else "hibernating"


def rfm_segment(state: UserState, now_s: int, population: Mapping[str, Any]) -> Segment | None:
    """Segment of one user at ``now_s`` (see :func:`segment_of`); None when RFM does not apply."""
    scores = rfm_scores(state, now_s, population)
    if scores is None:
        return None
    return segment_of(scores, state.n_purchases)
