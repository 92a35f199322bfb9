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
from typing import TYPE_CHECKING, Final, Literal

from models import mbgnbd
from models.bgnbd import p_alive
from models.compiled import DEFAULT_VISIT_PARAMS, VISIT_KEY
from models.signals import Signals

if TYPE_CHECKING:  # pragma: no cover
    from models.model import ChurnModel

__all__ = ["DEFAULT_VISIT_PARAMS", "VISIT_KEY", "P_MIN", "StaySource", "calibrated", "p_stay", "stay_after"]

StaySource = Literal["visits", "purchases"]

#: P(alive) is clipped to [P_MIN, 1 - P_MIN] before calibration (log-odds stay finite).
P_MIN: Final[float] = 1e-12


def calibrated(p: float, model: "ChurnModel") -> float:
    """P(alive) after the model's calibration (``alive_calibration``), monotonic in ``p``.

    >>> from models.model import ChurnModel
    >>> m = ChurnModel(alive_calibration={"slope": 1.0, "intercept": 0.0})
    >>> round(calibrated(0.3, m), 12), calibrated(0.3, ChurnModel())
    (0.3, 0.3)
    """
    cal = model.compiled.calibration
    if cal is None:
        return p
    q = p if p > P_MIN else P_MIN
    q = q if q < 1.0 - P_MIN else 1.0 - P_MIN
    z = cal[0] * math.log(q / (1.0 - q)) + cal[1]
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def p_stay(sig: Signals, model: "ChurnModel") -> tuple[float, StaySource]:
    """Temperature / 100 and which rhythm decided it (the lower of the two), calibrated."""
    return stay_after(sig, 0.0, model)


def stay_after(sig: Signals, extra_days: float, model: "ChurnModel") -> tuple[float, StaySource]:
    """:func:`p_stay` after ``extra_days`` more silence, from the signals now (the engine's search
    for a risk crossing): only T grows, in both models."""
    compiled = model.compiled
    visits, purchases = compiled.visits, compiled.purchases
    p = mbgnbd.p_alive(visits, float(sig.active_days - 1 if sig.active_days > 1 else 0), sig.tenure_days, sig.age_days + extra_days)
    source: StaySource = "visits"
    # BG/NBD says 1.0 without a repeat purchase (x = 0), never below p: no need to ask it.
    if purchases is not None and sig.n_purchases > 0 and sig.purchase_x != 0:
        q = p_alive(purchases, sig.purchase_x, sig.purchase_t_x, sig.purchase_T + extra_days)
        if q < p:
            p, source = q, "purchases"
    return (p if compiled.calibration is None else calibrated(p, model)), source
