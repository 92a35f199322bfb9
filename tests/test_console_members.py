"""The console's account page: the users it counts are the rows of its table (QA18 F8).

A champion-loss account of 2 members, cancelled: its champion was last seen 15 weeks ago, out of
the 90 days whose members the roll-up counts, the other 8 weeks ago. The page said "Users (1, 1
silent ...)" above a table of 2 and "the only user silent for 8 weeks" with no word of the other.
Pure: a reader that hands out the account's records, no Redis."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.console.data import _account, account_dict
from streams.console.pages import templates
from streams.settings import Settings
from tests.fake_reader import NoUserStates

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01
NOW_MS = T0 + 200 * DAY_MS


class _Reader(NoUserStates):
    def __init__(self) -> None:
        state = AccountState()
        for ts, status, mrr in ((T0, "active", 1500), (NOW_MS - 20 * DAY_MS, "cancelled", 0)):
            state = state.update(Event("champ", ts, "subscription", f"s{ts}", 0.0, "acme", Subscription(status, "Team", mrr)))
        members = [Member(member_key("champ"), (NOW_MS - 105 * DAY_MS) // 1000, 1, 0.0, 30.0, 30.0, "champ"),
                   Member(member_key("other"), (NOW_MS - 56 * DAY_MS) // 1000, 1, 0.0, 5.0, 5.0, "other")]
        self.record = (state.to_bytes(), None, {m.user_id.encode(): m.to_bytes() for m in members})

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
        return self.record if account_id == "acme" else (None, None, {})


def test_the_users_counted_are_the_rows_and_the_others_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.worker.store as store

    monkeypatch.setattr(store, "StoreReader", lambda settings: _Reader())
    report, state, members, alerts, counted = _account(Settings(), "acme", {}, NOW_MS)
    d = account_dict(report, state, members, NOW_MS, alerts, counted)
    assert (d["stage"], d["users"], d["silent_users"]) == ("churned", 1, 1)
    assert [(m["user_id"], m["counted"]) for m in d["members"]] == [("other", True), ("champ", False)]
    assert d["reasons"][1] == ("the only user silent for 8 weeks; champ not seen for 15 weeks "
                               "(not counted: users are those seen in 90 days)")
    page = templates.get_template("account.html").render(r=report, a=report.rollup, d=d, as_of_ms=NOW_MS, nav=None, model_note="")
    tables = {t: re.findall(r'class="user" href="[^"]*">([^<]+)</a>', body)
              for t, body in re.findall(r'<table class="small" id="(members[^"]*)">(.*?)</table>', page, re.S)}
    assert tables == {"members": ["other"], "members-left-out": ["champ"]}, "the count's users are the table's rows"
    assert "Users (1, 1 silent;" in page
    assert "Not counted: 1 more member, not seen in 90 days" in html.unescape(page)
