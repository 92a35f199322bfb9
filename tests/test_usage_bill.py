"""A smaller metered bill on the same plan is no downgrade for the account (QA23b F1, F5).

An API platform bills a base plan plus last month's metered charge, restated each month as the
subscription's ``mrr`` (docs/REVENUE.md). Every smaller bill read "MRR down from 131.00 to 129.00
(starter) today", a downgrade's 0.35, and with some silent users opened ``account_at_risk`` (224
of QA23b's 470). Now a fall under a fifth of the MRR on the same plan, no seats cut, adds no risk
and no reason (``models.account_health.bill_fall``); a plan change, a seat cut stated with
``seats`` and a large fall stay downgrades; the ledger books every fall as contraction.
"""

from __future__ import annotations

import orjson

from models.account_health import Downgrade, Member, member_key, rollup
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.worker.account_alerts import AccountWork

_REVIEWED: dict[str, object] = {}
DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01
MAR1 = T0 + 59 * DAY_MS


def _statement(day_ms: int, plan: str, mrr: int, seats: int = 0) -> Event:
    return Event("acme_d01", day_ms, "subscription", f"s{day_ms}{plan}{mrr}", 0.0, "acme",
                 Subscription("active", plan, mrr, 0, 0, seats))


def _account(plan: str, mrr: int, seats: int = 0) -> AccountWork:
    """A paying account of two users on 03-01: one active the day before, one silent for 16 days
    (silence alone 0.4, under the at-risk line; with a downgrade's 0.35 it is 0.61, at risk)."""
    state = AccountState().update(_statement(T0 + 31 * DAY_MS, plan, mrr, seats))
    seen = {"acme_d01": MAR1 - DAY_MS, "acme_d02": MAR1 - 16 * DAY_MS}
    return AccountWork(state, {}, {member_key(u): Member(member_key(u), t // 1000, 1, 0.0, 20.0, 20.0, u) for u, t in seen.items()})


def _state_for(acc: AccountWork, *statements: Event) -> list[dict[str, object]]:
    """The statements through the worker's account phase (in event order, alerts decided after
    each), the account then reviewed on 03-01: the alerts sent (the review's roll-up kept in ``_REVIEWED``)."""
    from streams.worker.account_alerts import decide_alert
    from streams.worker.revenue import AccountCopy, AccountsAdvanced, _apply_in_order

    out = AccountsAdvanced()
    for n, ev in enumerate(statements):
        _apply_in_order("acme", acc, [AccountCopy(0, n, ev)], out)
    alerts = [orjson.loads(v) for _, v in out.alerts]
    sent: list[tuple[bytes | None, bytes]] = []
    _REVIEWED["acme"] = decide_alert("acme", acc, MAR1, sent)
    return alerts + [orjson.loads(v) for _, v in sent]


def test_a_smaller_metered_bill_opens_no_account_alert_and_says_nothing() -> None:
    """acc197 (starter 131.00 -> 129.00 on 03-01, after a 28-day February). Fails on the old code:
    ``account_at_risk`` "MRR down from 131.00 to 129.00 (starter) today", risk 0.61."""
    acc = _account("starter", 13_100)
    alerts = _state_for(acc, _statement(MAR1, "starter", 12_900))
    assert alerts == [], alerts
    assert acc.extras["down"][3:5] == [13_100, 12_900]  # kept: the fall happened, it is no downgrade
    # a fall of a sixth (19.9%) is a smaller bill too; money is booked as it is: a contraction
    state = AccountState().update(_statement(T0 + 31 * DAY_MS, "pro", 100_000))
    assert state.apply(_statement(MAR1, "pro", 80_100)).add.kind == "contraction"  # type: ignore[union-attr]
    assert _state_for(_account("pro", 100_000), _statement(MAR1, "pro", 80_100)) == []


def test_a_plan_downgrade_a_seat_cut_and_a_large_fall_stay_downgrades() -> None:
    """What stays a downgrade: another plan (a smaller MRR fall too), fewer seats stated on the same
    plan (a tenth), and a fall of a fifth or more on the same plan (acc295's 761.00 -> 501.00 as
    its API use ran down). Each opens ``account_at_risk`` with the silent user, as before."""
    cases = ((_account("pro", 14_000), _statement(MAR1, "starter", 13_100), "downgraded from pro to starter today"),
             (_account("Team", 20_000, 10), _statement(MAR1, "Team", 18_000, 9), "MRR down from 200.00 to 180.00 (Team) today"),
             (_account("pro", 76_100), _statement(MAR1, "pro", 50_100), "MRR down from 761.00 to 501.00 (pro) today"))
    for acc, fall, said in cases:
        alerts = _state_for(acc, fall)
        assert [a["kind"] for a in alerts] == ["account_at_risk"], (said, alerts)
        assert said in alerts[0]["reasons"] and alerts[0]["action"] in ("re-engage the silent users", "review how the plan fits their use"), alerts[0]


def test_next_months_smaller_bill_does_not_hide_a_plan_downgrade() -> None:
    """A move from pro to starter on 02-17, then March's metered bill 12 days later on starter, a
    little smaller: the account still reads the downgrade, not the bill. Fails on the old code
    ("MRR down from 131.00 to 129.00 (starter) today")."""
    acc = _account("pro", 60_000)
    alerts = _state_for(acc, _statement(MAR1 - 12 * DAY_MS, "starter", 13_100), _statement(MAR1, "starter", 12_900))
    assert [(a["kind"], a["reasons"]) for a in alerts] == [("account_at_risk", ["downgraded from pro to starter today (MRR cut by 78%)"])]
    r = _REVIEWED["acme"]
    assert r.reasons[0] == "downgraded from pro to starter 12 days ago (MRR cut by 78%)" and r.stage == "at_risk", r  # type: ignore[attr-defined]
    assert not any("MRR down" in text for text in r.reasons), r  # type: ignore[attr-defined]


def test_the_risk_never_falls_as_a_same_plan_cut_grows() -> None:
    """Monotone in the cut: nothing under a fifth, then the downgrade's 0.35 or the share cut."""
    members = [Member(1, MAR1 // 1000, 1, 0.0, 20.0, 20.0)]
    risks = [rollup(members, None, Downgrade(MAR1, ("pro",), ("pro",), 10_000, after), 0, MAR1 // 1000).risk
             for after in range(10_000, 0, -100)]
    assert risks == sorted(risks) and risks[0] == 0.0 and risks[-1] == 0.99
    assert risks[19] == 0.0 and risks[20] == 0.35  # 19% a smaller bill, 20% a downgrade
