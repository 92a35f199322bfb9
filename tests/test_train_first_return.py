"""train measures the product's first-return interval (QA19 F8): the silence after a customer's first active
day by which 4 in 5 of the customers who came back had come back (streams.offline.train.first_return_level);
a one-day customer's at-risk alert waits for it (models.signals.first_return_due_s)."""

from __future__ import annotations

import numpy as np

from models.events import Event
from models.model import load_model
from streams.offline.train import first_return_level

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MODEL = load_model()


def _user(uid: str, first_ms: int, back_days: float | None) -> list[Event]:
    """Two events an hour apart on the first day, and one back ``back_days`` after the second (never: None)."""
    evs = [Event(uid, first_ms, "view", f"{uid}a"), Event(uid, first_ms + HOUR_MS, "view", f"{uid}b")]
    if back_days is not None:
        evs.append(Event(uid, first_ms + HOUR_MS + int(back_days * DAY_MS), "view", f"{uid}c"))
    return evs


def test_the_level_is_the_silence_four_in_five_returning_customers_came_back_within() -> None:
    end_ms = T0_MS + 200 * DAY_MS
    back = [float(k) for k in range(1, 31)]  # back after 1..30 days of silence, counted from the first day's last event
    per_user = {f"r{k}": _user(f"r{k}", T0_MS + 10 * HOUR_MS, k) for k in back}
    per_user |= {f"g{k}": _user(f"g{k}", T0_MS + 10 * HOUR_MS, None) for k in range(10)}  # never back: not in it
    # first seen within the horizon of the end: not yet had their chance to come back, left out
    per_user |= {f"y{k}": _user(f"y{k}", end_ms - 5 * DAY_MS, 40.0) for k in range(10)}
    level = first_return_level(per_user, end_ms, MODEL)
    assert level == {"first_return_days": round(float(np.quantile(back, 0.8)), 4)}
    assert abs(level["first_return_days"] - 24.2) < 1e-9


def test_no_level_without_twenty_returning_customers() -> None:
    per_user = {f"r{k}": _user(f"r{k}", T0_MS + 10 * HOUR_MS, 2.0) for k in range(19)}
    assert first_return_level(per_user, T0_MS + 200 * DAY_MS, MODEL) == {}
    per_user["r19"] = _user("r19", T0_MS + 10 * HOUR_MS, 2.0)
    assert first_return_level(per_user, T0_MS + 200 * DAY_MS, MODEL) == {"first_return_days": 2.0}
