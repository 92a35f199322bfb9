"""Under train's default ``--signs bounded``, the documented direction of use (QA19 F3).

A bank's fit gave risk-raising weights to lifetime volumes (``lifetime:card_payment`` +0.98),
to active days (+0.52) and to one rare event's share (``share:premium_cancelled`` +34.1), and its
alerts told heavy use as the reason to call. A bounded fit keeps active days <= 0 (more use,
lower hazard: models.risk.FALLS_WITH_USE) and every share within models.risk.SHARE_CAP;
``--signs free`` does not. (The lifetime volumes keep either sign: beside a type's recent count
they weigh the fall from the user's own history; the reasons never tell one above typical as a
risk, tests/test_models_reasons_volume.py.)
"""

from __future__ import annotations

import random

import pytest

from models.events import Event
from models.risk import SHARE_CAP
from streams.offline.train import DAY_MS, train

START_MS = 1_767_225_600_000  # 2026-01-01
DAYS = 240


def _population(seed: int = 19) -> tuple[list[Event], dict[str, int]]:
    """150 users who open the app most days: the heavy payers (6 a day) leave abruptly on a day
    of 60-200, after a one-time "plan_cancelled" for most of them; the light payers (one every
    3 days) stay. Heavy use is what marks the leavers before they go: a fit free to do so weighs
    it as risk."""
    rng = random.Random(seed)
    events: list[Event] = []
    labels: dict[str, int] = {}
    for u in range(150):
        user, heavy = f"u{u:03d}", u % 3 == 0
        first = rng.randrange(0, 40)
        end = rng.randrange(60, 200) if heavy else DAYS
        if heavy:
            labels[user] = START_MS + end * DAY_MS
        for d in range(first, end):
            t = START_MS + d * DAY_MS + rng.randrange(0, 40_000_000)
            if rng.random() < 0.8:
                events.append(Event(user, t, "app_open", f"{user}a{d}"))
            for k in range(6 if heavy else int(d % 3 == 0)):
                events.append(Event(user, t + 60_000 * (k + 1), "card_payment", f"{user}c{d}.{k}"))
            if heavy and d == end - 10 and rng.random() < 0.7:
                events.append(Event(user, t + 30_000, "plan_cancelled", f"{user}p"))
    return sorted(events, key=lambda e: e.ts_ms), labels


@pytest.fixture(scope="module")
def fits() -> dict[str, dict[str, float]]:
    events, labels = _population()
    return {signs: dict(train(events, labels_ms=labels, l2=1e-3, signs=signs, alert_share=None)[0].risk_weights)
            for signs in ("bounded", "free")}


def test_a_bounded_fit_weighs_no_active_days_as_risk(fits: dict[str, dict[str, float]]) -> None:
    """Free, the fit weighs the heavy payers' active days as risk; bounded, it does not."""
    assert fits["free"].get("active_days_log", 0.0) > 0.0, fits["free"]
    assert fits["bounded"].get("active_days_log", 0.0) <= 0.0, fits["bounded"]


def test_a_bounded_fit_caps_a_rare_types_share(fits: dict[str, dict[str, float]]) -> None:
    """Every share a bounded fit weighs stays within the cap (one log-odds across a fifth of the
    user's activity); free, the one-time step's share weighs far more."""
    assert abs(fits["free"].get("share:plan_cancelled", 0.0)) > SHARE_CAP, fits["free"]
    shares = {n: w for n, w in fits["bounded"].items() if n.startswith("share:")}
    assert shares and all(abs(w) <= SHARE_CAP for w in shares.values()), shares
