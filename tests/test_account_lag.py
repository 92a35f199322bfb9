"""Account views while the account side lags the stream (QA18 F5).

Mid-replay the users' partitions were in August while the account side (member copies appended
behind the backlog) was still at 2025-12-17: `accounts show acct010`, a healthy 16-seat account,
said "as of 2026-08-20 18:49 UTC (stream time) ... stage lapsed ... all 16 users silent for 35
weeks", `top --owner --win-back` listed healthy accounts as lapsed, the console's book "0 at
risk". An account whose next review (its partition's review index, swept as the account watermark
passes) is more than a day behind the stream time is shown as of its own applied time, and says so."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.cli.accounts import account_text
from streams.cli.top import print_book
from streams.settings import Settings
from streams.views import account_book
from streams.worker.keys import offset_field
from streams.worker.store import StoreReader
from tests.fake_reader import NoUserStates
from tests.harness import redis_client

DAY_MS = 86_400_000
SEEN_MS = 1_765_972_800_000  # 2025-12-17 12:00: the account side's own time
STREAM_MS = SEEN_MS + 246 * DAY_MS  # 2026-08-20 12:00: the users' stream time
TABLE = {"acct010": {"account_id": "acct010", "owner": "dana", "name": "Company 010"}}


class _Lagging(NoUserStates):
    """acct010 as Redis keeps it mid-replay: 16 users active up to SEEN_MS, paying, and (``due``) its
    next review, the 2-week silence of its users, not yet reached by the account watermark."""

    def __init__(self, due_s: int | None) -> None:
        state = AccountState().update(Event("u0", SEEN_MS - 100 * DAY_MS, "subscription", "s0", 0.0, "acct010",
                                            Subscription("active", "Team", 12000)))
        members = [Member(member_key(f"u{i}"), SEEN_MS // 1000, 1, 0.0, 20.0, 20.0, f"u{i}") for i in range(16)]
        extras = orjson.dumps({"seen_ms": SEEN_MS})
        self.record = (state.to_bytes(), extras, {m.user_id.encode(): m.to_bytes() for m in members})
        self.due_s = due_s

    def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
        return self.record

    def account_dues(self, topic: str, accounts: Any) -> dict[str, int]:
        return {"acct010": self.due_s} if self.due_s is not None else {}


def _report(due_s: int | None, settings: Settings = Settings(), **kw: Any) -> Any:
    (r,) = account_book(_Lagging(due_s), settings, "dana", 10, at_risk_only=False, now_ms=STREAM_MS, table=TABLE, **kw)  # type: ignore[arg-type]
    return r


def test_a_lagging_account_is_shown_as_of_its_own_time_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    behind: list[int] = []
    r = _report(SEEN_MS // 1000 + 14 * 86_400, behind=behind)
    assert (r.as_of_ms, r.behind_days, behind) == (SEEN_MS, 246, [246])
    assert (r.rollup.stage, r.rollup.silent, r.rollup.users) == ("customer", 0, 16), "as it was on 2025-12-17: all 16 active"
    assert not any("silent" in x for x in r.rollup.reasons)
    head = account_text(r, [])[0]
    assert head.endswith(", as of 2025-12-17 12:00 UTC, the account side is 246 days behind the stream (2026-08-20 12:00 UTC): catching up")
    assert (r.to_dict()["account_as_of"], r.to_dict()["account_behind_days"]) == ("2025-12-17T12:00:00.000Z", 246)
    print_book([r], json=False)
    assert capsys.readouterr().out.startswith("note: 1 of these accounts are as of their account side's own time, up to 246 days behind")


def test_a_current_account_is_judged_at_the_stream_time() -> None:
    """No review pending before the stream time (or one within the day the watermark normally
    lags): the account is current, its users' silence counts to the stream time, as before."""
    for due_s in (None, STREAM_MS // 1000 - 3_600):
        r = _report(due_s)
        assert (r.as_of_ms, r.behind_days, r.rollup.stage) == (STREAM_MS, 0, "lapsed")
        assert account_text(r, [])[0].endswith(", as of 2026-08-20 12:00 UTC (stream time)")
    # a review 5 days overdue is within what the account watermark waits for a slower partition
    # (7 days' grace, 6 h lateness, an hour): current; with no grace it is behind
    late_due = STREAM_MS // 1000 - 5 * 86_400
    assert _report(late_due).as_of_ms == STREAM_MS
    assert _report(late_due, Settings(account_grace_ms=0)).as_of_ms == SEEN_MS
    assert _report(STREAM_MS // 1000 - 8 * 86_400).as_of_ms == SEEN_MS


def test_the_reader_finds_each_accounts_next_review_in_its_partitions_index(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url)
    client = redis_client(redis_url)
    topic = settings.topic_events
    client.hset(f"cw:progress:{topic}", mapping={"0": f"10:{STREAM_MS}::", "1": f"12:{STREAM_MS}::"})
    client.zadd(f"cw:adue:{offset_field(topic, 1)}", {"acct010": SEEN_MS // 1000 + 14 * 86_400})
    client.zadd(f"cw:adue:{offset_field(topic, 0)}", {"acct011": STREAM_MS // 1000})
    with contextlib.closing(StoreReader(settings)) as reader:
        assert reader.account_dues(topic, ["acct010", "acct011", "acct012"]) == {
            "acct010": SEEN_MS // 1000 + 14 * 86_400, "acct011": STREAM_MS // 1000}


def test_the_console_account_page_dates_it_by_the_account_side() -> None:
    from streams.console.data import account_dict
    from streams.console.pages import templates

    r = _report(SEEN_MS // 1000 + 14 * 86_400)
    d = account_dict(r, None, [], r.as_of_ms)
    page = templates.get_template("account.html").render(r=r, a=r.rollup, d=d, as_of_ms=r.as_of_ms, nav=None, model_note="")
    assert d["as_of"] == "2025-12-17T12:00:00.000Z"
    assert ('id="behind" data-value="246">as of 2025-12-17 12:00 UTC, the account side is 246 days behind the stream '
            '(2026-08-20 12:00 UTC): catching up</span>') in page
    assert "(stream time)" not in page


def test_the_console_book_counts_the_accounts_behind_listed_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """QA18 F5: the book said "as of 2026-08-16 ... 0 at risk" of state months old. acct010, current
    as of its own time, is on no save list; the book still says one account is 246 days behind."""
    import asyncio

    import streams.worker.store as store
    from streams.console.data import owner_book

    class Reader(_Lagging):
        def __enter__(self) -> "Reader":
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    class Owners:
        async def table(self) -> dict[str, dict[str, str]]:
            return TABLE

    monkeypatch.setattr(store, "StoreReader", lambda settings: Reader(SEEN_MS // 1000 + 14 * 86_400))
    page = asyncio.run(owner_book(Settings(), Owners(), "dana", "save", 10, STREAM_MS))  # type: ignore[arg-type]
    assert (page.accounts, page.listed, page.behind, page.behind_days) == ([], 0, 1, 246)
