"""``churnwatch top``'s user table: a spend column where anyone listed has bought (QA12 F6)."""

from __future__ import annotations

import dataclasses

from models.scoring import Scores
from models.state import UserState
from streams.cli.top import user_rows
from streams.views import UserReport


def _report(user: str, revenue: float, savable: float | None = 0.4) -> UserReport:
    scores = Scores(31.0, 40.0, 0.82, "dormant", None, "win_back", ("no purchase for 90 days",))
    state = dataclasses.replace(UserState(), revenue=revenue)
    return UserReport(user, 0, scores, state, savable=savable)


def test_the_win_back_list_shows_what_each_lapsed_buyer_spent() -> None:
    lines = user_rows([_report("c00026", 312.5, None), _report("c02149", 0.0, None)], save=False)
    assert lines[0].split()[:7] == ["#", "user", "risk", "health", "temp", "spend", "stage"]
    assert lines[1].split()[:6] == ["1", "c00026", "0.82", "31", "40", "312.50"]
    assert lines[2].split()[:6] == ["2", "c02149", "0.82", "31", "40", "0.00"]


def test_a_product_without_purchases_keeps_its_table() -> None:
    lines = user_rows([_report("u1", 0.0)], save=True)
    assert "spend" not in lines[0]
    assert lines[0].split()[:7] == ["#", "user", "risk", "save", "health", "temp", "stage"]
    assert lines[1].split()[:7] == ["1", "u1", "0.82", "0.40", "31", "40", "dormant"]


def test_the_save_list_shows_days_overdue_for_repeat_buyers() -> None:
    """QA12 F5: a column of days overdue against the re-order rhythm, blank for a user without one."""
    late = dataclasses.replace(_report("c00746", 120.0), overdue_days=13.4)
    early = dataclasses.replace(_report("c00523", 80.0), overdue_days=-5.6)
    lines = user_rows([late, early, _report("c09999", 40.0)], save=True)
    assert lines[0].split()[:9] == ["#", "user", "risk", "save", "health", "temp", "spend", "overdue", "stage"]
    assert lines[1].split()[6:9] == ["120.00", "+13", "dormant"]
    assert lines[2].split()[6:9] == ["80.00", "-6", "dormant"]
    assert lines[3].split()[6:8] == ["40.00", "dormant"]


def test_no_overdue_column_without_a_repeat_buyer() -> None:
    assert "overdue" not in user_rows([_report("c09999", 40.0)], save=True)[0]


def test_the_overdue_days_are_the_models_own() -> None:
    """streams.views computes the column from the user's state at the row's time (models.signals.days_overdue):
    orders on days 0, 20 and 40 (usual interval max(20, (40 + prior) / 3)), looked at on day 65."""
    from models.engine import advance
    from models.events import Event
    from models.model import load_model
    from streams.views import _overdue

    t0, day = 1_767_225_600_000, 86_400_000
    events = [Event("u", t0 + d * day, "purchase", f"p{d}", 30.0) for d in (0, 20, 40)]
    model = load_model()
    state = advance("u", None, events, t0 + 41 * day, model).state
    gap = max(20.0, (40.0 + model.compiled.purchase_gap_days) / 3)  # models.signals.order_gap_days
    overdue = _overdue(state, t0 + 65 * day, model)
    assert overdue is not None and abs(overdue - (25.0 - gap)) < 1e-6
    assert _overdue(advance("u", None, events[:1], t0 + day, model).state, t0 + 65 * day, model) is None
