"""A declared yearly quiet period (models.quiet_period, QA18 F3) through the worker's account phase:
the silence and the usage trend of a seasonal account open no at-risk alert inside it, billing still
does, and silence counts from the period's end."""

from __future__ import annotations

import math

import orjson
import pytest

from models.account_health import Member, member_key
from models.events import Event
from models.quiet_period import DAY_MS, parse_quiet, quiet_starts_ms, quiet_window
from models.revenue import AccountState
from models.subscription import Subscription
from streams.worker.account_alerts import AccountWork, account_rollup
from streams.worker.revenue import AccountsAdvanced, MemberCopy, _apply_in_order, _review_until

T0 = 1_767_225_600_000  # 2026-01-01 (UTC)
AUG1, SEP1 = T0 + 212 * DAY_MS, T0 + 243 * DAY_MS
USERS = ("u0", "u1", "u2", "u3", "u4")


def _seasonal(quiet: str, back: bool = True, statements: tuple[tuple[int, Subscription], ...] = (),
              users: tuple[str, ...] = USERS, left: bool = False) -> tuple[AccountWork, list[dict]]:
    """An annual account of 5 users at 2 events a day each (QA18's seasonal persona: 8% of that from
    25 July to 31 August, then back, or not: ``back``), one member copy per user and active day,
    through ``_apply_in_order``, then the reviews of its deadlines to day 300; ``statements`` (day,
    subscription) applied on their day; ``users`` its seasonal users; ``left``: a light user (a sixth
    of a seasonal user's use) seen last on day 150, a seat gone before the season."""
    sub = Subscription("active", "Business", 29_235, 0, T0 + 400 * DAY_MS)
    acc = AccountWork(AccountState().update(Event("u0", T0, "subscription", "s0", 0.0, "acme", sub)), {}, {},
                      quiet=parse_quiet(quiet))
    out = AccountsAdvanced()
    act = dict.fromkeys(users, 56.0)
    offset = 0
    for day in range(1, 300):
        season = 205 <= day < 243  # 07-25 .. 08-31
        if day >= 243 and not back:
            break
        copies: list = []
        if left and day == 150:
            offset += 1
            copies.append(MemberCopy(0, offset, "acme", T0 + day * DAY_MS, Member(member_key("u9"), (T0 + day * DAY_MS) // 1000, 1, 0.0, 10.0, 10.0, "u9")))
        for i, u in enumerate(users):
            rate = 2.0 * (0.08 if season else 1.0)
            if season and (day + i) % 12:  # a visit every 12 days or so, lighter
                act[u] *= math.exp(-1 / 28)
                continue
            act[u] = act[u] * math.exp(-1 / 28) + (rate * 12 if season else rate)
            ts_ms = T0 + day * DAY_MS + i * 60_000
            offset += 1
            copies.append(MemberCopy(0, offset, "acme", ts_ms, Member(member_key(u), ts_ms // 1000, 1, 0.0, act[u], 56.0, u)))
        for d, s in statements:
            if d == day:
                from streams.worker.revenue import AccountCopy
                offset += 1
                copies.append(AccountCopy(0, offset, Event("u0", T0 + day * DAY_MS + 3_600_000, "subscription", f"s{d}", 0.0, "acme", s)))
        _apply_in_order("acme", acc, copies, out)
    _review_until("acme", acc, T0 + 300 * DAY_MS, out)
    return acc, [orjson.loads(v) for _, v in out.alerts]


def _day(alert: dict) -> int:
    return (alert["event_time_ms"] - T0) // DAY_MS


def test_a_seasonal_account_is_alerted_in_its_quiet_month_without_a_declaration() -> None:
    _, alerts = _seasonal("")
    opened = [a for a in alerts if a["kind"] == "account_at_risk"]
    assert opened and 205 <= _day(opened[0]) < 243, [(a["kind"], _day(a), a["reasons"][:1]) for a in alerts]


def test_a_declared_quiet_period_opens_no_alert_from_silence_or_falling_use() -> None:
    acc, alerts = _seasonal("07-25..08-31")
    assert alerts == [], [(a["kind"], _day(a), a["reasons"][:1]) for a in alerts]
    r = account_rollup(acc.state, acc.extras, list(acc.members.values()), 0, AUG1 + 10 * DAY_MS, "acme", quiet=acc.quiet)
    assert r.reasons[-1] == "in its quiet period (07-25..08-31)" and r.stage == "customer"


def test_silence_after_the_period_counts_from_its_end() -> None:
    _, alerts = _seasonal("07-25..08-31", back=False)
    opened = [a for a in alerts if a["kind"] == "account_at_risk"]
    assert [a["kind"] for a in alerts] == ["account_at_risk"]
    assert opened[0]["event_time_ms"] == SEP1 + 14 * DAY_MS, "reviewed when its 2 weeks after the period end"
    assert "silent for" in opened[0]["reasons"][0], opened[0]["reasons"]


@pytest.mark.parametrize("status", ["past_due", "cancelled"])
def test_billing_still_opens_an_alert_inside_the_period(status: str) -> None:
    sub = Subscription(status, "Business", 0 if status == "cancelled" else 29_235, 0, T0 + 400 * DAY_MS)
    _, alerts = _seasonal("07-25..08-31", statements=((220, sub),))
    kind = "account_churned" if status == "cancelled" else "account_at_risk"
    assert [a["kind"] for a in alerts][:1] == [kind] and _day(alerts[0]) == 220, [(a["kind"], _day(a), a["reasons"]) for a in alerts]
    if status == "past_due":
        assert alerts[0]["reasons"][0] == "payment failed today (past due)"
        assert alerts[0]["reasons"][-1] == "in its quiet period (07-25..08-31)"


def test_a_period_that_wraps_the_year_end() -> None:
    p = parse_quiet("12-20..01-05")
    dec19, dec20, jan5, jan20 = T0 - 13 * DAY_MS, T0 - 12 * DAY_MS, T0 + 4 * DAY_MS, T0 + 19 * DAY_MS
    assert quiet_window(p, dec19) is None
    w = quiet_window(p, dec20)
    assert (w.start_ms, w.end_ms, w.after) == (dec20, T0 + 5 * DAY_MS, False)
    assert quiet_window(p, jan5).start_ms == dec20 and not quiet_window(p, jan5).after
    assert quiet_window(p, jan20 - 1).after and quiet_window(p, jan20) is None
    assert quiet_starts_ms(p, T0 - 400 * DAY_MS, T0) == [dec20 - 365 * DAY_MS, dec20]


def test_a_billing_alert_opened_in_the_period_recovers_when_billing_is_fixed() -> None:
    """Opened in the period by a failed payment, the alert is judged as the period judges the
    account: fixed, it recovers, though the users are still in their quiet weeks."""
    due = Subscription("past_due", "Business", 29_235, 0, T0 + 400 * DAY_MS)
    paid = Subscription("active", "Business", 29_235, 0, T0 + 400 * DAY_MS)
    _, alerts = _seasonal("07-25..08-31", statements=((215, due), (225, paid)))
    assert [(a["kind"], _day(a)) for a in alerts] == [("account_at_risk", 215), ("account_recovered", 225)]
    assert alerts[1]["reasons"][0] == "payment fixed today (no longer past due)", alerts[1]["reasons"]


def test_an_alert_open_before_the_period_is_judged_as_before_in_it() -> None:
    """A decline alerted before the period is not closed by it (judged as before); an alert opened
    in the period (by billing) is judged as the period judges the account."""
    sub = Subscription("active", "Business", 29_235, 0, T0 + 400 * DAY_MS)
    state = AccountState().update(Event("u0", T0, "subscription", "s0", 0.0, "acme", sub))
    seen_s = (T0 + 195 * DAY_MS) // 1000  # 10 days before the period's start (day 205): not silent when it began
    members = [Member(member_key(u), seen_s, 1, 0.0, 20.0, 20.0, u) for u in ("u0", "u1")]
    now = T0 + 212 * DAY_MS
    quiet = parse_quiet("07-25..08-31")
    before = account_rollup(state, {"at_risk_since_ms": T0 + 200 * DAY_MS}, members, 0, now, "acme", quiet=quiet)
    inside = account_rollup(state, {"at_risk_since_ms": T0 + 206 * DAY_MS}, members, 0, now, "acme", quiet=quiet)
    assert (before.risk, before.reasons[-1]) == (0.8, "both users silent for 2 weeks"), before
    assert (inside.risk, inside.reasons) == (0.0, ("in its quiet period (07-25..08-31)",)), inside


def test_a_renewal_in_the_period_is_not_alerted_for_the_season_s_fall_of_use() -> None:
    """The renewal rule ("renewal in 13 days while usage fell 31%") reads the users not silent at
    the period's start at their usual use: the season's fall is no fall (QA18 F3, first measurement:
    8 such alerts were left on 45 seasonal accounts, each beside a seat silent before the season).
    A seat gone in May (1 of 2 users: 0.4, under the line) and the renewal on 08-19."""
    renews = Subscription("active", "Business", 29_235, 0, T0 + 230 * DAY_MS)
    _, undeclared = _seasonal("", statements=((100, renews),), users=("u0",), left=True)
    assert [a["kind"] for a in undeclared][:1] == ["account_at_risk"] and _day(undeclared[0]) >= 205, undeclared
    _, alerts = _seasonal("07-25..08-31", statements=((100, renews),), users=("u0",), left=True)
    assert alerts == [], [(a["kind"], _day(a), a["reasons"]) for a in alerts]
