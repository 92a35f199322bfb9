"""Account alerts decided from the roll-up (streams.worker.account_alerts): pure, no Redis or Kafka."""

from __future__ import annotations

import orjson

from models.account_health import Member, member_key
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.worker.account_alerts import AccountWork, decide_alert, next_due_s, renewal_ms
from streams.worker.alert_log import append_to_extras

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


def _cancelled_with_old_extras(churn_logged_ms: int) -> tuple[AccountWork, list[tuple[bytes | None, bytes]]]:
    """A churned account whose at-risk alert the previous version opened as ``account_churned`` at
    T0 + 61 days (``at_risk_since_ms``, no ``churned_ms``), its list holding a churn at ``churn_logged_ms``."""
    acc = _account(silent_days=1)
    acc.state = acc.state.update(Event("u1", T0 + 61 * DAY_MS, "subscription", "s1", 0.0, "acme", Subscription("cancelled", "Pro", 0)))
    old: list[tuple[bytes | None, bytes]] = []
    r = decide_alert("acme", acc, churn_logged_ms, old)
    append_to_extras(acc.extras, orjson.loads(old[0][1]))
    acc.extras.pop("churned_ms")
    acc.extras["at_risk_since_ms"] = T0 + 61 * DAY_MS
    assert r.stage == "churned"
    return acc, []


def test_a_churn_the_previous_version_announced_is_not_announced_again() -> None:
    acc, alerts = _cancelled_with_old_extras(T0 + 61 * DAY_MS)
    decide_alert("acme", acc, T0 + 62 * DAY_MS, alerts)
    assert alerts == [], "its account_churned is in the account's list since the alert opened"
    acc, alerts = _cancelled_with_old_extras(T0 + 30 * DAY_MS)  # a churn of an earlier spell
    decide_alert("acme", acc, T0 + 62 * DAY_MS, alerts)
    assert _kinds(alerts) == ["account_churned"]


def _billed(period_end_ms: int, act_28d: float) -> AccountWork:
    """A paying account whose statement gave ``period_end_ms``; two users seen at T0 + 60 days with
    4-week activity ``act_28d`` against 20 expected."""
    sub = Subscription("active", "Pro", 4999, 0, period_end_ms)
    state = AccountState().update(Event("u1", T0, "subscription", "s0", 0.0, "acme", sub))
    seen_s = (T0 + 60 * DAY_MS) // 1000
    members = {member_key(u): Member(member_key(u), seen_s, 1, 0.0, act_28d, 20.0, u) for u in ("u1", "u2")}
    return AccountWork(state, {}, members)


def test_the_worker_reads_the_renewal_from_the_billing_statements() -> None:
    """The worker reads no accounts table: the statements' period end is the renewal its alerts
    speak of, and the account is looked at again when that renewal comes within 30 days."""
    now = T0 + 60 * DAY_MS
    assert renewal_ms(_billed(now + 20 * DAY_MS, 8.0).state, now) == now + 20 * DAY_MS
    assert renewal_ms(_billed(now + 20 * DAY_MS, 8.0).state, now, table_ms=now + 90 * DAY_MS) == now + 90 * DAY_MS, "the contract's date wins"
    alerts: list[tuple[bytes | None, bytes]] = []
    r = decide_alert("acme", _billed(now + 20 * DAY_MS, 8.0), now, alerts)
    assert any(text.startswith("renewal in 20 days while usage fell") for text in r.reasons), r.reasons
    far = _billed(now + 200 * DAY_MS, 8.0)
    assert not any(text.startswith("renewal") for text in decide_alert("acme", far, now, []).reasons)
    assert next_due_s(AccountWork(far.state, {}, {}), now) == (now + 170 * DAY_MS) // 1000, "looked at 30 days before it"
    steady = decide_alert("acme", _billed(now + 20 * DAY_MS, 20.0), now, [])
    assert not any(text.startswith("renewal") for text in steady.reasons), "a renewal alone is no risk while usage holds"


def test_a_period_end_passed_without_restatement_hides_no_later_renewal() -> None:
    """An add-on whose period ended at day 10 with no statement since, the main plan renewing at
    day 130: at day 90 the renewal is day 130, looked at on day 100, spoken of from then on."""
    acc = _billed(T0 + 130 * DAY_MS, 8.0)
    addon = Subscription("active", "Seats", 999, 0, T0 + 10 * DAY_MS)
    acc.state = acc.state.update(Event("u2", T0 + DAY_MS, "subscription", "s1", 0.0, "acme", addon))
    assert acc.state.get().renews_ms == T0 + 10 * DAY_MS, "the statements' earliest end is still the add-on's"
    assert renewal_ms(acc.state, T0 + 90 * DAY_MS) == T0 + 130 * DAY_MS
    assert renewal_ms(acc.state, T0 + 5 * DAY_MS) == T0 + 10 * DAY_MS
    assert next_due_s(AccountWork(acc.state, {}, {}), T0 + 90 * DAY_MS) == (T0 + 100 * DAY_MS) // 1000
    assert next_due_s(AccountWork(acc.state, {}, {}), T0 + 5 * DAY_MS) == (T0 + 100 * DAY_MS) // 1000, \
        "before the add-on's end, the main plan's renewal is still looked at 30 days before it"
    r = decide_alert("acme", acc, T0 + 110 * DAY_MS, [])
    assert any(text.startswith("renewal in 20 days") for text in r.reasons), r.reasons
    assert acc.state.get().renewal_shown_ms(T0 + 140 * DAY_MS) == T0 + 130 * DAY_MS, "was due: the latest passed"
