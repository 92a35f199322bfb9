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
