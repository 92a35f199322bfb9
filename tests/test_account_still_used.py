"""A churned account whose users still use the product says so (QA22b F7).

An account churns when its subscriptions end (docs/REVENUE.md): a game's guild whose only pass
holder cancelled read "stage churned, risk 1.00, health 92, 9 users (1 silent), action win back"
while 8 of its 9 members played on. The semantics stay; `accounts show` and the API add one line,
"still used: 8 of 9 users still active: its subscriptions ended, not its use"."""

from __future__ import annotations

from typing import Any

import orjson

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.state import STAGES
from models.subscription import Subscription
from streams.cli.accounts import account_text
from streams.views import account_report
from tests.fake_reader import NoUserStates

DAY_MS = 86_400_000
T0 = 1_780_000_000_000


class _Guild(NoUserStates):
    """g1: p0's pass cancelled on day 30; ``seen`` days per member, ``stages`` their stage names."""

    def __init__(self, seen: list[int], stages: list[str]) -> None:
        state = AccountState()
        for status, day, mrr in (("active", 0, 499), ("cancelled", 30, 0)):
            state = state.update(Event("p0", T0 + day * DAY_MS, "subscription", f"s{day}", 0.0, "g1",
                                       Subscription(status, "battle_pass", mrr)))  # type: ignore[arg-type]
        members = [Member(member_key(f"p{i}"), (T0 + d * DAY_MS) // 1000, STAGES.index(st), 0.0, 20.0, 20.0, f"p{i}")
                   for i, (d, st) in enumerate(zip(seen, stages))]
        self.record = (state.to_bytes(), orjson.dumps({}), {m.user_id.encode(): m.to_bytes() for m in members})

    def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
        return self.record


def _show(seen: list[int], stages: list[str]) -> tuple[Any, list[str]]:
    r = account_report(_Guild(seen, stages), "g1", {"name": "Guild 1"}, T0 + 31 * DAY_MS)  # type: ignore[arg-type]
    assert r is not None
    return r, account_text(r, [])


def test_a_churned_account_whose_users_still_play_says_so() -> None:
    r, lines = _show([31] * 8 + [5], ["active"] * 9)
    assert (r.rollup.stage, r.rollup.risk, r.rollup.users, r.rollup.silent, r.rollup.action) == ("churned", 1.0, 9, 1, "win back")
    assert lines[2] == "still used: 8 of 9 users still active: its subscriptions ended, not its use", lines
    assert r.to_dict()["still_used"] == "8 of 9 users still active: its subscriptions ended, not its use"


def test_a_churned_account_whose_users_left_or_cancelled_says_nothing_more() -> None:
    """Silent users (their own rhythm), and users whose own lifecycle says they left, are not active."""
    r, lines = _show([10, 31, 31], ["active", "churned", "dormant"])
    assert r.rollup.stage == "churned" and not any(x.startswith("still used") for x in lines), lines
    assert "still_used" not in r.to_dict()
