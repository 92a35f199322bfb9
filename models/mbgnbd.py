"""MBG/NBD on active days: P(a user still comes back) from the rhythm of their visits.

Why the *modified* BG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and
comparison of models for customer base analysis", IJRM 24(3)) and not BG/NBD itself for
visits: BG/NBD lets a customer drop out only right after a *repeat* transaction, so anyone seen
on a single day has P(alive) = 1 however long ago that was. For purchases that is the paper's
choice; for visits it is wrong (most people who try a product once never return). MBG/NBD
lets a customer drop out after every transaction, the first one included, and is otherwise
the same model with the same four parameters (:class:`models.bgnbd.BgNbdParams`).

Assumptions: while alive, active days follow a Poisson process with rate lambda ~ gamma(r,
alpha); right after each active day, the first included, the user drops out with probability p ~
beta(a, b); lambda and p independent. Data per user: x = active days after the first, t_x =
first to last active day, T = first active day to now (days in churnwatch).

Likelihood (lifetimes' ``ModifiedBetaGeoFitter``, derived as eq. (6) of Fader, Hardie & Lee 2005
with one more chance to drop out):

L = Gamma(r+x) alpha^r / Gamma(r) * [ B(a, b+x+1)/B(a, b) (alpha+T)^-(r+x)
                                      + B(a+1, b+x)/B(a, b) (alpha+t_x)^-(r+x) ]

P(alive | x, t_x, T) = 1 / (1 + a/(b+x) * ((alpha+T)/(alpha+t_x))^(r+x)).

P(at least one active day in (T, T+t] | x, t_x, T) = P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)):
a user alive at T stays alive until their next active day, and their rate given the history and
being alive is gamma(r+x, alpha+T) (the alive term of L), whose Laplace transform at t is the
power. Equivalently 1 - L(x, t_x, T+t) / L(x, t_x, T): "no active day in the next t" is the same
history observed for t longer (the test checks both forms against each other).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Final

from models.bgnbd import BgNbdParams, FitResult, rate_hit_within

if TYPE_CHECKING:  # imported by the fit alone (``fit``, ``log_likelihood``): not with the scoring core
    import numpy as np
    from numpy.typing import ArrayLike

__all__ = ["fit", "log_likelihood", "p_active_within", "p_active_within_of", "p_alive", "p_alive_of", "rate_hit_of"]

_STARTS: Final[tuple[tuple[float, float, float, float], ...]] = (
    (1.0, 1.0, 1.0, 1.0),
    (0.5, 0.2, 0.5, 2.0),
    (2.0, 0.5, 0.3, 3.0),
)
_LOG_BOUND: Final[float] = 15.0
#: math.expm1 and math.log1p held once: mypyc has no primitive for them and looked each up on the
#: math module at every call (:func:`rate_hit_of`); the same functions, the same numbers.
_EXPM1: Final[Callable[[float], float]] = math.expm1
_LOG1P: Final[Callable[[float], float]] = math.log1p


def p_alive(params: BgNbdParams, x: float, t_x: float, T: float) -> float:
    """P(alive) for one user (scalar math path, ~1 us). T below t_x is taken as t_x.

    >>> p = BgNbdParams(1.0, 3.0, 0.5, 3.0)
    >>> round(p_alive(p, 0, 0.0, 0.0), 3), round(p_alive(p, 0, 0.0, 30.0), 3)
    (0.857, 0.353)
    >>> round(p_alive(p, 100, 100.0, 103.0), 3), round(p_alive(p, 100, 100.0, 107.0), 3)
    (0.919, 0.212)
    """
    return p_alive_of(params.r, params.alpha, params.a, params.b, x, t_x, T)


def p_alive_of(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float) -> float:
    """:func:`p_alive` of the parameters given one by one: what a review reads from the model's
    compiled form (models.compiled ``visit_r`` ...; ``BgNbdParams`` is a Python class, whose four
    attribute lookups cost the compiled core more than the formula)."""
    T = T if T > t_x else t_x
    z = math.log(a / (b + x)) + (r + x) * math.log((alpha + T) / (alpha + t_x))
    if z > 0.0:
        e = math.exp(-z)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(z))


def p_active_within(params: BgNbdParams, x: float, t_x: float, T: float, t: float) -> float:
    """P(the user has at least one active day in the next ``t`` days) (module docstring).

    Not P(alive): a user who is alive but slow may well not come back within ``t``. This is the
    quantity that ranks "comes back within a window" (the CDNOW check of benchmarks/quality.py);
    as ``t`` grows it rises to P(alive).

    >>> p = BgNbdParams(1.0, 3.0, 0.5, 3.0)
    >>> round(p_active_within(p, 0, 0.0, 30.0, 30.0), 3), round(p_active_within(p, 0, 0.0, 30.0, 1e9), 3)
    (0.168, 0.353)
    """
    return p_active_within_of(params.r, params.alpha, params.a, params.b, x, t_x, T, t)


def p_active_within_of(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float, t: float) -> float:
    """:func:`p_active_within` of the parameters given one by one: what an alert's temperature
    reads from the model's compiled form (models.temperature.p_back_within; ``BgNbdParams`` is a
    Python class, whose attribute lookups cost the compiled core more than the formula)."""
    T = T if T > t_x else t_x
    return p_alive_of(r, alpha, a, b, x, t_x, T) * rate_hit_of(r, alpha, x, T, t)


def rate_hit_of(r: float, alpha: float, x: float, T: float, t: float) -> float:
    """models.bgnbd.rate_hit_within (the reference) of the parameters ``r``, ``alpha`` given as
    numbers: its check and formula, in the compiled core (bgnbd.py is Python: the compiled
    temperature called it as a Python function, a frame and boxed arguments an alert; bgnbd
    cannot import this module back). Bit for bit the same (tests/test_models_mbgnbd.py).

    >>> rate_hit_of(1.0, 3.0, 0, 30.0, 30.0) == rate_hit_within(BgNbdParams(1.0, 3.0, 0.5, 3.0), 0, 30.0, 30.0)
    True
    """
    if not (t >= 0.0 and t - t == 0.0):  # t - t: 0.0 for every finite t, NaN for inf (math.isfinite)
        raise ValueError(f"window t must be a finite number of time units >= 0, got {t!r}")
    return -_EXPM1(-(r + x) * _LOG1P(t / (alpha + T)))


def _ll_terms(r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    import numpy as np
    from scipy import special

    common = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha) - special.betaln(a, b)
    term1 = special.betaln(a, b + x + 1.0) - (r + x) * np.log(alpha + T)
    term2 = special.betaln(a + 1.0, b + x) - (r + x) * np.log(alpha + t_x)
    return common + np.logaddexp(term1, term2)


def _arrays(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    xa, ta, Ta = (np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T))
    if not (xa.shape == ta.shape == Ta.shape):
        raise ValueError(f"x, t_x and T must have one value per user, got {xa.shape}, {ta.shape}, {Ta.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ta)) and np.all(np.isfinite(Ta))):
        raise ValueError("x, t_x and T must be finite numbers")
    if np.any(xa < 0) or np.any(ta < 0) or np.any(ta > Ta + 1e-9):
        raise ValueError("need x >= 0 and 0 <= t_x <= T (days)")
    return xa, ta, np.maximum(Ta, ta)


def log_likelihood(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Total log-likelihood (module docstring), optionally with ``weights`` users per row."""
    import numpy as np

    xa, ta, Ta = _arrays(x, t_x, T)
    w = np.ones_like(xa) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    return float(np.sum(w * _ll_terms(params.r, params.alpha, params.a, params.b, xa, ta, Ta)))


def fit(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None) -> FitResult:
    """Maximum likelihood (r, alpha, a, b): L-BFGS-B on log-parameters from a few starts
    (alpha scaled by the mean T), the best one polished by Nelder-Mead, as models.bgnbd.fit.

    For big populations pass one row per distinct (x, t_x, T) (e.g. times in whole days) with
    ``weights`` = users in the row. ValueError when nobody ever came back (x = 0 for all).
    """
    import numpy as np
    from scipy import optimize

    xa, ta, Ta = _arrays(x, t_x, T)
    w = np.ones_like(xa) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != xa.shape or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be one finite number >= 0 of users per row")
    n = float(w.sum())
    if n <= 0 or not np.any((xa > 0) & (w > 0)):
        raise ValueError("MBG/NBD fit needs at least one user with a second active day")
    scale = max(float(np.sum(w * Ta)) / n, 1e-9)

    def objective(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        value = -float(np.sum(w * _ll_terms(r, alpha, a, b, xa, ta, Ta))) / n
        return value if math.isfinite(value) else 1e300

    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * 4
    results = [
        optimize.minimize(objective, np.log([r0, a0 * scale, aa, bb]), method="L-BFGS-B", bounds=bounds,
                          options={"ftol": 1e-12, "gtol": 1e-8})
        for r0, a0, aa, bb in _STARTS
    ]
    best = min(results, key=lambda res: float(res.fun))
    # the polish keeps the search's bounds (scipy clips a step; inside them the path is the same):
    # unbounded, regular weekly users with no dropout drove a to 5.8e-231 and b to 2.6e-97, and
    # a review's log(a / (b + x)) to a math domain error (2026-12-05)
    polished = optimize.minimize(objective, best.x, method="Nelder-Mead", bounds=bounds,
                                 options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
    final = polished if polished.fun <= best.fun else best
    params = BgNbdParams(*(float(v) for v in np.exp(final.x)))
    converged = bool(best.success or polished.success) and bool(np.all(np.abs(final.x) < _LOG_BOUND - 1e-6))
    return FitResult(params, float(-final.fun * n), converged)
