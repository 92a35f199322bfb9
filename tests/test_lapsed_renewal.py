"""A paying account whose users have all gone quiet, its renewal near, is a renewal to save, not a
win-back (QA18 F1): on the owner's save book and in the digest, with an ``account_at_risk`` alert;
one whose renewal is months away, whose subscription was cancelled, or whose users all cancelled
(QA16 F11's family plans) stays off them. Pure: a reader that hands out records, no Redis or Kafka."""

from __future__ import annotations

import orjson
import pytest

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.settings import Settings
from streams.views import account_book
from streams.worker.account_alerts import AccountWork, decide_alert
from tests.test_account_book import _Records as _BookRecords

DAY_MS = 86_400_000
NOW = 1_790_812_800_000  # 2026-10-01
_ACTIVE, _CHURNED = 1, 4  # models.state.STAGES


def _paying(renews_in_days: int, *, annual: bool = False, cancelled: bool = False) -> AccountState:
    """A Team plan at 74.50 a month, renewed 30 days (annual: 365) before the coming period end."""
    period = (365 if annual else 30) * DAY_MS
    end = NOW + renews_in_days * DAY_MS
    st = AccountState()
    st.update(Event("u0", end - period, "subscription", "s0", 0.0, "acct190", Subscription("active", "Team", 7_450, 0, end)))  # type: ignore[arg-type]
    if cancelled:
        st.update(Event("u0", NOW - 2 * DAY_MS, "subscription", "s1", 0.0, "acct190", Subscription("cancelled", "Team", 0, 0, 0)))  # type: ignore[arg-type]
    return st


def _quiet(user: str, days: int, stage: int = _ACTIVE) -> Member:
    return Member(member_key(user), (NOW - days * DAY_MS) // 1000, stage, 0.0, 20.0, 20.0, user)


class _Records(_BookRecords):
    """The owner's accounts as Redis keeps them (tests/test_account_book.py's reader), at this file's time."""

    def progress(self, topic: str) -> dict[int, tuple[int, int]]:
        return {0: (0, NOW)}


ACCOUNTS = {
    "renews-in-3-days": (_paying(3), [_quiet("u0", 35)]),
    "team-renews-in-12-days": (_paying(12), [_quiet("u1", 30), _quiet("u2", 28), _quiet("u3", 29, _CHURNED)]),
    "annual-renews-in-4-months": (_paying(120, annual=True), [_quiet("u4", 35)]),
    "cancelled": (_paying(3, cancelled=True), [_quiet("u5", 35)]),
    "every-user-cancelled": (_paying(3), [_quiet("u6", 10, _CHURNED), _quiet("u7", 8, _CHURNED)]),
}
TABLE = {a: {"account_id": a, "owner": "ana"} for a in ACCOUNTS}


def _book(**kw: object) -> dict[str, dict[str, object]]:
    book = account_book(_Records(ACCOUNTS), Settings(), "ana", 50, now_ms=NOW, table=TABLE, **kw)  # type: ignore[arg-type]
    return {r.account_id: r.to_dict() for r in book}


def test_a_silent_paying_account_renewing_soon_is_on_the_save_book_as_a_renewal_call() -> None:
    save = _book()
    assert list(save) == ["renews-in-3-days", "team-renews-in-12-days"], save  # same risk, same MRR: by id
    d = save["renews-in-3-days"]
    assert (d["stage"], d["risk"], d["action"], d["mrr"]) == ("at_risk", 0.88, "book a renewal call", 74.5), d
    assert d["reasons"][0] == "renewal in 3 days, the only user silent for 5 weeks", d["reasons"]
    assert not any("while usage fell" in r for r in d["reasons"]), "the renewal is said once"
    team = save["team-renews-in-12-days"]["reasons"][0]
    assert team == "renewal in 12 days, all 3 users gone: 1 cancelled, 2 silent for 4 weeks", team


def test_the_win_back_list_keeps_only_what_is_not_a_renewal_save_and_says_it_still_pays(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli.top import print_book

    win_back = _book(churned_only=True)
    assert {a: d["stage"] for a, d in win_back.items()} == {
        "annual-renews-in-4-months": "lapsed", "every-user-cancelled": "lapsed", "cancelled": "churned"}, win_back
    book = account_book(_Records(ACCOUNTS), Settings(), "ana", 50, now_ms=NOW, table=TABLE, churned_only=True)  # type: ignore[arg-type]
    print_book(book, False, win_back=True)
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "  still paying 74.50, renews on 2027-01-29 (in 120 d)  win back: the only user silent for 5 weeks" in rows[
        "annual-renews-in-4-months"], rows
    assert "  74.50  2026-09-29  " in rows["cancelled"], rows["cancelled"]  # a churn: what it lost, the day it left


def test_the_renewal_save_opens_an_at_risk_alert_and_the_others_do_not() -> None:
    kinds = {}
    for account, (state, members) in ACCOUNTS.items():
        acc, alerts = AccountWork(state, {}, {m.key: m for m in members}), []
        decide_alert(account, acc, NOW, alerts)
        kinds[account] = [(orjson.loads(v)["kind"], orjson.loads(v)["reasons"][0]) for _, v in alerts]
    assert kinds == {
        "renews-in-3-days": [("account_at_risk", "renewal in 3 days, the only user silent for 5 weeks")],
        "team-renews-in-12-days": [("account_at_risk", "renewal in 12 days, all 3 users gone: 1 cancelled, 2 silent for 4 weeks")],
        "annual-renews-in-4-months": [], "every-user-cancelled": [],
        "cancelled": [("account_churned", "subscription cancelled")]}, kinds


def test_the_annual_account_becomes_a_renewal_save_when_its_renewal_window_opens() -> None:
    """91 days before an annual renewal (a quarter of the year): the same silence, now a call to make."""
    state, members = _paying(120, annual=True), [_quiet("u4", 35)]
    acc, alerts = AccountWork(state, {}, {m.key: m for m in members}), []
    decide_alert("a", acc, NOW, alerts)
    assert alerts == []
    decide_alert("a", acc, NOW + 30 * DAY_MS, alerts)
    assert [orjson.loads(v)["reasons"][0] for _, v in alerts] == ["renewal in 90 days, the only user silent for 9 weeks"]


def test_the_win_back_tabs_lost_mrr_counts_nothing_for_an_account_still_paying(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's header "3 to win back, lost MRR 74.50": the cancelled account's; the two lapsed ones still pay."""
    import asyncio

    from streams.console import data

    class _Owners:
        async def table(self) -> dict[str, dict[str, object]]:
            return TABLE  # type: ignore[return-value]

    monkeypatch.setattr(data, "_book", lambda settings, owner, list_name, now_ms, table: (account_book(  # (listed, days behind)
        _Records(ACCOUNTS), settings, owner, 50, now_ms=now_ms, table=table, churned_only=list_name == "win_back"), []))  # type: ignore[arg-type]
    page = asyncio.run(data.owner_book(Settings(), _Owners(), "ana", "win_back", 10, NOW))  # type: ignore[arg-type]
    assert (page.listed, page.at_stake_cents) == (3, 7_450), page
    save = asyncio.run(data.owner_book(Settings(), _Owners(), "ana", "save", 10, NOW))  # type: ignore[arg-type]
    assert (save.listed, save.at_stake_cents) == (2, 14_900), save


def test_a_renewal_stated_after_the_period_end_keeps_the_renewal_to_save() -> None:
    """QA23b F6, the account side (models.subscription.RENEWAL_GRACE_MS): billing states a renewal an
    hour or so after the period ended. Until then the account renewing in 3 days stays a renewal to
    save ("renewal today"), not ``lapsed`` on the win-back book for that hour; one whose renewal is
    not stated within the grace lapses then."""
    end = NOW + 3 * DAY_MS
    for renewed in (True, False):
        state, members = _paying(3), [_quiet("u0", 35)]
        acc = AccountWork(state, {}, {m.key: m for m in members})
        decide_alert("a", acc, NOW, [])
        half_hour = decide_alert("a", acc, end + 1_800_000, [])
        assert (half_hour.stage, half_hour.reasons[0]) == ("at_risk", "renewal today, the only user silent for 5 weeks"), half_hour.reasons
        if renewed:
            state.update(Event("u0", end + 3_960_000, "subscription", "s9", 0.0, "acct190", Subscription("active", "Team", 7_450, 0, end + 28 * DAY_MS)))  # type: ignore[arg-type]
        after = decide_alert("a", acc, end + DAY_MS + 1, [])
        assert after.stage == ("at_risk" if renewed else "lapsed"), (renewed, after.stage, after.reasons)
