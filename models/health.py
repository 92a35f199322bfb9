"""Health 0-100: how much and how broadly the user uses the product, against others and their past.

health = 100 x (0.45 intensity + 0.25 breadth + 0.30 momentum), each part in [0, 1]:

- **intensity**: where the user's last-4-weeks activity sits among the population's, a
  percentile interpolated between the deciles ``train`` stores in ``population["act_28d"]``.
  Without them (untrained model) a saturating curve, 1 - exp(-events per day).
- **breadth**: share of the product's kinds of activity used over 4 weeks (models.signals: the
  model's ``population["kinds"]``, else every kind the model tells apart).
- **momentum**: the last week's rate against the user's own 4-week rate, capped at 1, so
  using the product less than one used to costs health and using it more cannot hide
  a thin week.

Every part is non-increasing in silence, so health never rises while a user is silent.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Callable, Final, Mapping, Sequence

from models.signals import Signals

__all__ = ["ACT_QUANTILES", "DECILES", "health", "health_of", "intensity", "percentile"]

#: Probability levels of ``population["act_28d"]`` (deciles).
DECILES: Final[tuple[float, ...]] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ACT_QUANTILES: Final[str] = "act_28d"
# Final, each: mypyc reads a Final constant as a C value, any other module global from the
# module's dict at every use (three dict lookups and unboxings per health, once an alert).
_W_INTENSITY: Final[float] = 0.45
_W_BREADTH: Final[float] = 0.25
_W_MOMENTUM: Final[float] = 0.30
#: math.expm1 held once (as models.signals holds it): mypyc has no primitive for it and looked it
#: up on the math module at every call, the intensity of every alert of a model without quantiles.
_EXPM1: Final[Callable[[float], float]] = math.expm1


def percentile(value: float, edges: Sequence[float], levels: Sequence[float] = DECILES) -> float:
    """Share of the population below ``value``, linear between the quantile ``edges`` at ``levels``
    and towards 0 below the first edge (from value 0) and 1 above the last (at twice the last edge).

    >>> percentile(5.0, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    0.5
    >>> percentile(0.0, [1, 2, 3, 4, 5, 6, 7, 8, 9]), percentile(100.0, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    (0.0, 1.0)
    """
    i = bisect_right(edges, value)
    if i == 0:
        first = edges[0]
        return levels[0] * (value / first) if first > 0 and value > 0 else 0.0
    if i == len(edges):
        last = edges[-1]
        top = 2.0 * last
        if value >= top or last <= 0:
            return 1.0
        return levels[-1] + (1.0 - levels[-1]) * (value - last) / (top - last)
    lo, hi = edges[i - 1], edges[i]
    frac = (value - lo) / (hi - lo) if hi > lo else 1.0
    return levels[i - 1] + (levels[i] - levels[i - 1]) * frac


def intensity(sig: Signals, population: Mapping[str, Any]) -> float:
    """0-1 intensity part of health (see module docstring)."""
    return _intensity(sig, population.get(ACT_QUANTILES))


def _intensity(sig: Signals, edges: Sequence[float] | None) -> float:
    """:func:`intensity` given the population's ``act_28d`` quantiles (None: none)."""
    if edges:
        return percentile(sig.act_28d, edges)
    return -_EXPM1(-sig.act_28d / 28.0)


def health(sig: Signals, population: Mapping[str, Any]) -> float:
    """Health 0-100 of a user with signals ``sig``."""
    return health_of(sig, population.get(ACT_QUANTILES))


def health_of(sig: Signals, edges: Sequence[float] | None) -> float:
    """:func:`health` given the population's ``act_28d`` quantiles (models.compiled ``act_edges``,
    None without them): an alert's scores hold the compiled model, whose struct has them, where the
    population is a generic attribute lookup and a ``Mapping.get`` call away."""
    momentum = (sig.trend if sig.trend < 1.0 else 1.0) if sig.act_28d > 0.0 else 0.0
    value = 100.0 * (_W_INTENSITY * _intensity(sig, edges) + _W_BREADTH * sig.breadth + _W_MOMENTUM * momentum)
    return 0.0 if value < 0.0 else 100.0 if value > 100.0 else value
