"""Temperature 0-100: how likely the user is to stay and keep paying, from their own rhythm.

Two survival estimates, both "is the silence we see normal for this user's rhythm?":

- **purchases** (where the user bought and the model file carries BG/NBD parameters): BG/NBD
  P(alive) from (x, t_x, T), :func:`models.bgnbd.p_alive`, alpha in days.
- **visits** (everyone): MBG/NBD P(alive) on active days (:mod:`models.mbgnbd`: x = active days
  after the first, t_x = first to last active day, T = first active day to now), with population
  parameters fitted by ``train`` (``population["visit_mbgnbd"]``) or :data:`DEFAULT_VISIT_PARAMS`.
  The modified model, because plain BG/NBD says P(alive) = 1 for anyone seen on one day only.

Temperature = 100 x min(P(alive | visits), P(alive | purchases)): staying needs both coming back
and, for a purchaser, buying again. A regular buyer who still visits but stopped buying cools
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

__all__ = ["DEFAULT_VISIT_PARAMS", "VISIT_KEY", "StaySource", "p_stay", "params", "purchase_params", "visit_params"]

StaySource = Literal["visits", "purchases"]

VISIT_KEY: Final[str] = "visit_mbgnbd"
#: Visit rhythm population used until ``train`` fits one (days): mean rate r/alpha = 1 visit
#: every 3 days, heterogeneous (r = 1); a 1-in-7 chance (a / (a + b)) of dropping out after any active day.
DEFAULT_VISIT_PARAMS: Final[BgNbdParams] = BgNbdParams(r=1.0, alpha=3.0, a=0.5, b=3.0)

# Parsed parameters of the last model seen: parsing and validating a mapping per call would cost
# more than the formula. Keyed on the model object itself (models are immutable).
_cache_model: object = None
_cache_params: tuple[BgNbdParams, BgNbdParams | None] = (DEFAULT_VISIT_PARAMS, None)


def params(model: "ChurnModel") -> tuple[BgNbdParams, BgNbdParams | None]:
    """(visit MBG/NBD, purchase BG/NBD or None) of ``model``, parsed once per model object."""
    global _cache_model, _cache_params
    if model is not _cache_model:
        visit: Mapping[str, float] | None = model.population.get(VISIT_KEY)
        _cache_params = (
            BgNbdParams.from_mapping(visit) if visit else DEFAULT_VISIT_PARAMS,
            BgNbdParams.from_mapping(model.bgnbd) if model.bgnbd else None,
        )
        _cache_model = model
    return _cache_params


def visit_params(model: "ChurnModel") -> BgNbdParams:
    """The visit-rhythm population of ``model`` (fitted, or the default)."""
    return params(model)[0]


def purchase_params(model: "ChurnModel") -> BgNbdParams | None:
    """The purchase BG/NBD population of ``model``; None when the model has none."""
    return params(model)[1]


def p_stay(sig: Signals, model: "ChurnModel") -> tuple[float, StaySource]:
    """Temperature / 100 and which rhythm decided it (the lower of the two)."""
    visits, purchases = params(model)
    p = mbgnbd.p_alive(visits, float(sig.active_days - 1 if sig.active_days > 1 else 0), sig.tenure_days, sig.age_days)
    if purchases is not None and sig.n_purchases > 0:
        q = p_alive(purchases, sig.purchase_x, sig.purchase_t_x, sig.purchase_T)
        if q < p:
            return q, "purchases"
    return p, "visits"
