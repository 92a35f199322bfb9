"""Account alerts decided from the roll-up (streams.worker.account_alerts): pure, no Redis or Kafka."""

from __future__ import annotations

import orjson

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.worker.account_alerts import AccountWork, decide_alert

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


def _kinds(alerts: list[tuple[bytes | None, bytes]]) -> list[str]:
    return [orjson.loads(v)["kind"] for _, v in alerts]


def _account(silent_days: int) -> AccountWork:
    """A paying account of two users, both silent for ``silent_days`` at T0 + 60 days."""
    state = AccountState().update(Event("u1", T0, "subscription", "s0", 0.0, "acme", Subscription("active", "Pro", 4999)))
    seen_s = (T0 + (60 - silent_days) * DAY_MS) // 1000
    members = {member_key(u): Member(member_key(u), seen_s, 1, 0.0, 20.0, 20.0, u) for u in ("u1", "u2")}
    return AccountWork(state, {}, members)


def test_an_account_that_cancels_while_at_risk_gets_its_churned_alert_once() -> None:
    acc, alerts = _account(silent_days=49), []
    decide_alert("acme", acc, T0 + 60 * DAY_MS, alerts)
    assert _kinds(alerts) == ["account_at_risk"], "silent members put the account at risk first"
    acc.state = acc.state.update(Event("u1", T0 + 61 * DAY_MS, "subscription", "s1", 0.0, "acme", Subscription("cancelled", "Pro", 0)))
    decide_alert("acme", acc, T0 + 61 * DAY_MS, alerts)
    decide_alert("acme", acc, T0 + 62 * DAY_MS, alerts)  # a later review of the same churned account
    assert _kinds(alerts) == ["account_at_risk", "account_churned"]


def test_a_churn_with_no_alert_open_is_one_churned_alert() -> None:
    acc, alerts = _account(silent_days=1), []
    decide_alert("acme", acc, T0 + 60 * DAY_MS, alerts)
    assert alerts == [], "an active paying account is not at risk"
    acc.state = acc.state.update(Event("u1", T0 + 61 * DAY_MS, "subscription", "s1", 0.0, "acme", Subscription("cancelled", "Pro", 0)))
    decide_alert("acme", acc, T0 + 61 * DAY_MS, alerts)
    decide_alert("acme", acc, T0 + 62 * DAY_MS, alerts)
    assert _kinds(alerts) == ["account_churned"]
