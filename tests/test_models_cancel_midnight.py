"""A cancellation ended by a visit continued across midnight UTC (models.engine.advance): the event
on the later UTC day ends the cancellation (models.signals.is_cancelled: activity on a later day),
though it adds no active day (models.state: a visit is dated by its first UTC day). It was not a
review point, so the user stayed "churned" until their next visit day, 100 days of silence in the
example hypothesis found (tests/test_models_properties.py, smart reviews, seed 4)."""

from __future__ import annotations

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.scoring import assess

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
DAY_MS, MIN_MS = 86_400_000, 60_000


def test_a_visit_continued_past_midnight_after_a_cancellation_reactivates_the_user() -> None:
    model = ChurnModel()
    events = [Event("u", T0_MS + d * DAY_MS + 600 * MIN_MS, "view", f"v{d}") for d in range(20)]  # daily to day 19, 10:00
    night = T0_MS + 20 * DAY_MS
    events += [Event("u", night - 10 * MIN_MS, "cancel", "c1"),  # 23:50
               Event("u", night - 5 * MIN_MS, "view", "late"),  # 23:55, the same UTC day (no new active day): cancelled
               Event("u", night + 10 * MIN_MS, "view", "past")]  # 00:10, the same visit on the next UTC day
    out = advance("u", None, events, night + 10 * MIN_MS, model)
    days_before = advance("u", None, events[:-1], night - 5 * MIN_MS, model).state.active_days
    assert out.state.active_days == days_before, "the visit continued: no new active day"
    assert assess(out.state, (night + 10 * MIN_MS) // 1000 + 1, model).stage == "reactivated"
    changes = [(a.kind, a.scores.stage, a.event_time_ms) for a in out.alerts if a.kind == "stage_changed"]
    assert ("stage_changed", "reactivated", night + 10 * MIN_MS) in changes, changes
