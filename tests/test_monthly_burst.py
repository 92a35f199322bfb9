"""A month-end batch account (QA23b F3): healthy between its batches, at risk once a month end
passes without its batch (models.monthly, models.account_health). The member copies are the
worker's own (``streams.worker.members.member_versions``) of events made here, applied in time order
as the account phase does (``add_copy``), the roll-up read at chosen times."""

from __future__ import annotations

from dataclasses import replace

import orjson
from datetime import datetime, timezone

from models.account_health import Member, Trend, add_copy, rollup, silent_after_s
from models.events import Event
from models.model import load_model
from models.monthly import Cycle, burst_cycle
from models.revenue import AccountState
from streams.worker.account_alerts import AccountWork
from streams.worker.members import member_versions
from streams.worker.revenue import AccountsAdvanced, MemberCopy, _apply_in_order, _review_until

MODEL = replace(load_model(None), machine_users=("svc_*",))
DAY_MS = 86_400_000


def _t(month: int, day: int, hour: int = 12) -> int:
    return int(datetime(2026, month, day, hour, tzinfo=timezone.utc).timestamp() * 1000)


def _month_end_days(months: range, last: int = 3) -> list[tuple[int, int]]:
    """``(month, day)`` of the last ``last`` days of each month."""
    out = []
    for m in months:
        end = (datetime(2026, m + 1, 1) if m < 12 else datetime(2027, 1, 1)) - datetime(2026, m, 1)
        out += [(m, d) for d in range(end.days - last + 1, end.days + 1)]
    return out


def _events(user: str, days: list[tuple[int, int]], per_day: int, kind: str) -> list[Event]:
    return [Event(user, _t(m, d) + i * 60_000, kind, f"{user}-{m}-{d}-{i}", 0.0, "acme") for m, d in days for i in range(per_day)]


def _copies(users: dict[str, list[Event]]) -> list[tuple[int, Member]]:
    out: list[tuple[int, Member]] = []
    for uid, evs in users.items():
        out += member_versions(uid, None, evs, MODEL)
    return sorted(out, key=lambda c: (c[0], c[1].last_seen_s))


def _at(copies: list[tuple[int, Member]], now_ms: int):
    """The account's roll-up at ``now_ms`` from the copies dated up to it."""
    members: dict[int, Member] = {}
    trend: Trend | None = None
    for ts_ms, m in copies:
        if ts_ms > now_ms:
            break
        old = members.get(m.key)
        if old is None or m.last_seen_s >= old.last_seen_s:
            trend, members[m.key] = add_copy(trend, old, m, ts_ms // 1000), m
    assert trend is not None
    return rollup(list(members.values()), None, None, 0, now_ms // 1000, trend=trend.at(now_ms // 1000)), trend.at(now_ms // 1000)


def _batch_account(key_months: range, people_months: range, key_per_day: int = 12) -> list[tuple[int, Member]]:
    """An API key calling on the month's last 3 days and 3 developers logging in then (one of them
    once mid-month too), January to the last month of each range."""
    users = {"svc_acme": _events("svc_acme", _month_end_days(key_months), key_per_day, "api_call")}
    for j in range(3):
        days = _month_end_days(people_months, 3 - (j == 2))
        if j == 0:
            days += [(m, 12) for m in people_months]
        users[f"dev{j}"] = _events(f"dev{j}", sorted(days), 1, "page_view")
    return _copies(users)


def test_a_month_end_batch_account_is_healthy_between_its_batches():
    copies = _batch_account(range(1, 8), range(1, 8))
    for month, day in ((4, 18), (5, 20), (6, 15), (7, 10), (7, 26)):
        r, trend = _at(copies, _t(month, day))
        assert trend.cycle() == Cycle(4), (month, day)  # the month's last third
        assert r.risk < 0.5 and r.silent == 0, (month, day, r)


def test_a_month_end_passed_without_the_batch_puts_it_at_risk():
    """The batch of July does not come (nobody after June): not at risk on the 1st of August (in the
    window's grace), at risk on the 3rd, every user silent, the batch named."""
    copies = _batch_account(range(1, 7), range(1, 7))
    before, _ = _at(copies, _t(7, 31, 23))
    grace, _ = _at(copies, _t(8, 1))
    after, trend = _at(copies, _t(8, 3))
    assert before.risk < 0.5 and grace.risk < 0.5
    assert after.risk >= 0.5 and after.silent == after.users == 3
    assert "not seen in its last monthly batch (the 21st to the month's end)" in after.reasons[0]


def test_the_key_s_batch_missing_while_people_log_in_is_a_fall_of_use():
    copies = _batch_account(range(1, 7), range(1, 9))
    r, _ = _at(copies, _t(8, 4))
    assert r.risk >= 0.5 and r.silent == 0
    assert any(x.startswith("usage in its last monthly batch (the 21st to the month's end) down") for x in r.reasons), r.reasons


def test_a_batch_that_shrinks_is_a_fall_a_steady_one_is_not():
    """July's batch at a third of June's key calls: down against the one before; the same month
    with June's calls: nothing."""
    full = _batch_account(range(1, 8), range(1, 8))
    users = {"svc_acme": _events("svc_acme", _month_end_days(range(1, 7)), 12, "api_call")
             + _events("svc_acme", _month_end_days(range(7, 8)), 4, "api_call")}
    shrunk = sorted([c for c in full if not c[1].machine] + _copies(users), key=lambda c: (c[0], c[1].last_seen_s))
    r, _ = _at(shrunk, _t(8, 10))
    assert r.risk >= 0.5 and "down" in r.reasons[0] and "monthly batch" in r.reasons[0]
    assert _at(full, _t(8, 10))[0].risk < 0.5


def test_no_rhythm_before_two_months_nor_for_use_spread_over_the_month():
    copies = _batch_account(range(1, 4), range(1, 4))
    assert _at(copies, _t(2, 15))[1].cycle() is None  # followed under 2 months: one batch teaches nothing
    daily = _copies({"dev0": _events("dev0", [(m, d) for m in range(1, 6) for d in range(1, 29)], 1, "page_view"),
                     "dev1": _events("dev1", [(m, d) for m in range(1, 6) for d in range(1, 29, 3)], 1, "page_view")})
    assert _at(daily, _t(5, 30))[1].cycle() is None
    assert burst_cycle(12 * 2026, (5,) * 24, 0, _t(1, 20) // 1000) is None


def test_silence_waits_for_the_window_after_the_last_visit():
    seen = _t(1, 30) // 1000
    m = Member(1, seen, 1, 0.0, 1.0, 1.0, "dev0", 7.0)
    assert silent_after_s(m) == 14 * 86_400
    due = datetime.fromtimestamp(seen + silent_after_s(m, Cycle(4)), timezone.utc)
    assert due.date().isoformat() == "2026-03-03"  # February's window and its 2 days of grace


def test_the_trend_record_round_trips_and_reads_the_record_before():
    copies = _batch_account(range(1, 4), range(1, 4))
    _, trend = _at(copies, _t(3, 30))
    assert trend.parts and trend.month >= 0
    kept = trend.to_list()
    assert Trend.from_list(kept).to_list() == kept and len(kept) == 28
    assert len(orjson.dumps(kept)) <= 140  # the account's record: 3 numbers and 25 whole ones
    assert Trend.from_list([5, 6, 7.5]) == Trend(5, 6, 7.5)
    assert Trend.from_list([5, 6, 7.5] + [0.5] * 11) == Trend(5, 6, 7.5)  # the reverted record: learnt again


def _through_worker(copies: list[tuple[int, Member]], until_ms: int) -> list[dict]:
    """The copies through the worker's account phase (``_apply_in_order``, each at its time), then
    the reviews of its deadlines up to ``until_ms`` (no copy: what the worker's clock does)."""
    acc = AccountWork(AccountState(), {}, {})
    out = AccountsAdvanced()
    for offset, (ts_ms, m) in enumerate(copies, start=1):
        _apply_in_order("acme", acc, [MemberCopy(0, offset, "acme", ts_ms, m)], out)
    _review_until("acme", acc, until_ms, out)
    return [orjson.loads(v) for _, v in out.alerts]


def test_the_worker_alerts_the_missed_batch_at_its_window_s_end_without_a_copy():
    """From the third month on, no alert between batches; the batch of July not come: the account's
    own deadline (the window's end and its grace) opens the alert, no copy needed."""
    alerts = _through_worker(_batch_account(range(1, 7), range(1, 7)), _t(8, 20))
    opened = [(a["event_time_ms"], a["reasons"][0]) for a in alerts if a["kind"] == "account_at_risk"]
    late = [(t, why) for t, why in opened if t >= _t(3, 15)]
    assert len(late) == 1, opened
    t, why = late[0]
    assert _t(8, 2, 0) <= t <= _t(8, 3, 0) and "not seen in its last monthly batch" in why, (datetime.fromtimestamp(t / 1000, timezone.utc), why)
