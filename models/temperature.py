"""Temperature 0-100: how likely the user is to stay and keep paying, from their own rhythm.

Two survival estimates, both "is the silence we see normal for this user's rhythm?":

- **purchases** (where the user bought and the model file carries BG/NBD parameters): BG/NBD
  P(alive) from (x, t_x, T), :func:`models.bgnbd.p_alive`, alpha in days.
- **visits** (everyone): MBG/NBD P(alive) on active days (:mod:`models.mbgnbd`: x = active days
  after the first, t_x = first to last active day, T = first active day to now), with population
  parameters fitted by ``train`` (``population["visit_mbgnbd"]``) or :data:`DEFAULT_VISIT_PARAMS`.
  The modified model, because plain BG/NBD says P(alive) = 1 for anyone seen on one day only.

Temperature = 100 x min(P(alive | visits), P(alive | purchases)), passed through the model's
calibration (``alive_calibration``, a monotonic map fitted by ``train`` against who in hindsight
had already left): staying needs both coming back and, for a purchaser, buying again. A regular buyer who still visits but stopped buying cools
down (-> upsell); a subscriber whose payments stay on schedule stays warm however rarely they
visit, as long as visits keep their own rhythm.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final, Literal, Mapping

from models import mbgnbd
from models.bgnbd import BgNbdParams, p_alive
from models.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["DEFAULT_VISIT_PARAMS", "VISIT_KEY", "P_MIN", "StaySource", "calibrated", "calibration", "p_stay", "params", "purchase_params", "stay_after", "visit_params"]

StaySource = Literal["visits", "purchases"]

VISIT_KEY: Final[str] = "visit_mbgnbd"
#: Visit rhythm population used until ``train`` fits one (days): mean rate r/alpha = 1 visit
#: every 3 days, heterogeneous (r = 1); a 1-in-7 chance (a / (a + b)) of dropping out after any active day.
DEFAULT_VISIT_PARAMS: Final[BgNbdParams] = BgNbdParams(r=1.0, alpha=3.0, a=0.5, b=3.0)

# Parsed parameters of the last model seen: parsing and validating a mapping per call would cost
# more than the formula. Keyed on the model object itself (models are immutable).
_cache_model: object = None
_cache_params: tuple[BgNbdParams, BgNbdParams | None] = (DEFAULT_VISIT_PARAMS, None)
_cache_calibration: tuple[float, float] | None = None
#: P(alive) is clipped to [P_MIN, 1 - P_MIN] before calibration (log-odds stay finite).
P_MIN: Final[float] = 1e-12


def params(model: "ChurnModel") -> tuple[BgNbdParams, BgNbdParams | None]:
    """(visit MBG/NBD, purchase BG/NBD or None) of ``model``, parsed once per model object."""
    global _cache_model, _cache_params, _cache_calibration
    if model is not _cache_model:
        visit: Mapping[str, float] | None = model.population.get(VISIT_KEY)
        _cache_params = (
            BgNbdParams.from_mapping(visit) if visit else DEFAULT_VISIT_PARAMS,
            BgNbdParams.from_mapping(model.bgnbd) if model.bgnbd else None,
        )
        cal = model.alive_calibration
        _cache_calibration = (float(cal["slope"]), float(cal["intercept"])) if cal else None
        _cache_model = model
    return _cache_params


def calibrated(p: float, model: "ChurnModel") -> float:
    """P(alive) after the model's calibration (``alive_calibration``), monotonic in ``p``.

    >>> from models.model import ChurnModel
    >>> m = ChurnModel(alive_calibration={"slope": 1.0, "intercept": 0.0})
    >>> round(calibrated(0.3, m), 12), calibrated(0.3, ChurnModel())
    (0.3, 0.3)
    """
    params(model)
    cal = _cache_calibration
    if cal is None:
        return p
    q = p if p > P_MIN else P_MIN
    q = q if q < 1.0 - P_MIN else 1.0 - P_MIN
    z = cal[0] * math.log(q / (1.0 - q)) + cal[1]
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def calibration(model: "ChurnModel") -> tuple[float, float] | None:
    """(slope, intercept) of ``model``'s P(alive) calibration on the log-odds, None without one
    (what :func:`calibrated` applies; parsed once per model object)."""
    params(model)
    return _cache_calibration


def visit_params(model: "ChurnModel") -> BgNbdParams:
    """The visit-rhythm population of ``model`` (fitted, or the default)."""
    return params(model)[0]


def purchase_params(model: "ChurnModel") -> BgNbdParams | None:
    """The purchase BG/NBD population of ``model``; None when the model has none."""
    return params(model)[1]


def p_stay(sig: Signals, model: "ChurnModel") -> tuple[float, StaySource]:
    """Temperature / 100 and which rhythm decided it (the lower of the two), calibrated."""
    return stay_after(sig, 0.0, model)


def stay_after(sig: Signals, extra_days: float, model: "ChurnModel") -> tuple[float, StaySource]:
    """:func:`p_stay` after ``extra_days`` more silence, from the signals now (the engine's search
    for a risk crossing): only T grows, in both models."""
    visits, purchases = params(model)
    p = mbgnbd.p_alive(visits, float(sig.active_days - 1 if sig.active_days > 1 else 0), sig.tenure_days, sig.age_days + extra_days)
    source: StaySource = "visits"
    # BG/NBD says 1.0 without a repeat purchase (x = 0), never below p: no need to ask it.
    if purchases is not None and sig.n_purchases > 0 and sig.purchase_x != 0:
        q = p_alive(purchases, sig.purchase_x, sig.purchase_t_x, sig.purchase_T + extra_days)
        if q < p:
            p, source = q, "purchases"
    return (p if _cache_calibration is None else calibrated(p, model)), source  # cache filled by params()
