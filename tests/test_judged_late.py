"""An account alert judged out of event order is marked ``"judged_late": true`` (QA pass 15 F2):
decided at a time past the account's watermark (copies released by the 500-copy bound) or just
after a copy that reached the account behind its time. Ordinary alerts carry no such field.
Pure: the account phase's own functions, no broker, no Redis."""

from __future__ import annotations

import orjson

from models.account_health import Member, member_key
from models.engine import alert_id
from models.events import Event
from models.revenue import AccountState
from models.subscription import Subscription
from streams.worker.account_alerts import AccountWork
from streams.worker.revenue import AccountCopy, AccountsAdvanced, AccountTick, MemberCopy, _apply_in_order, _release

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


def _account() -> AccountWork:
    """acme: paying, u1 seen on day 60, u2 (on a lagging partition) last read on day 11."""
    state = AccountState().update(Event("u1", T0, "subscription", "s0", 0.0, "acme",
                                        Subscription("active", "Pro", 4999)))  # type: ignore[arg-type]
    members = {member_key(u): Member(member_key(u), (T0 + d * DAY_MS) // 1000, 1, 0.0, 20.0, 20.0, u)
               for u, d in (("u1", 10), ("u2", 11))}
    return AccountWork(state, {"seen_ms": T0 + 11 * DAY_MS}, members)


def _copy(user: str, day: int) -> MemberCopy:
    ts = T0 + day * DAY_MS
    return MemberCopy(0, 100 + day, "acme", ts, Member(member_key(user), ts // 1000, 1, 0.0, 20.0, 20.0, user), 1, day)


def _alerts(out: AccountsAdvanced) -> list[dict[str, object]]:
    return [orjson.loads(v) for _, v in out.alerts]


def test_an_alert_judged_past_the_watermark_is_marked_and_counted() -> None:
    """u1's copy of day 60 forced out by the bound while the watermark is at day 12: the account is
    judged on day 60 with u2 read up to day 11 only, "silent": that alert is marked."""
    out = AccountsAdvanced()
    bound = T0 + 12 * DAY_MS
    now, keep = _release([_copy("u1", 60)], [], bound, 0, out)  # max_held 0: the bound releases it
    assert out.forced == 1 and not keep
    out.judging = (bound, False)
    _apply_in_order("acme", _account(), now, out)
    alerts = _alerts(out)
    assert [a["kind"] for a in alerts] == ["account_at_risk"], alerts
    assert alerts[0]["judged_late"] is True and out.judged_late == {"account_at_risk": 1}


def test_the_same_alert_judged_in_order_is_not_marked() -> None:
    """The watermark past day 60 (every partition read that far): the same decision, ordinary."""
    out = AccountsAdvanced()
    bound = T0 + 61 * DAY_MS
    now, keep = _release([_copy("u1", 60)], [], bound, 500, out)
    assert out.forced == 0 and not keep
    out.judging = (bound, False)
    _apply_in_order("acme", _account(), now, out)
    alerts = _alerts(out)
    assert [a["kind"] for a in alerts] == ["account_at_risk"], alerts
    assert "judged_late" not in alerts[0] and out.judged_late == {}


def test_an_alert_decided_on_a_copy_behind_the_account_is_marked() -> None:
    """The account already judged on day 60; u2's copy of day 59 arrives behind it (its partition
    more than the grace behind): counted behind; the recovery it starts holds a week (QA20a F8), so
    the alert comes at the hold's end, past the watermark (day 61): marked there."""
    acc, out = _account(), AccountsAdvanced()
    bound = T0 + 61 * DAY_MS
    out.judging = (bound, False)
    _apply_in_order("acme", acc, [_copy("u1", 60)], out)
    opened = _alerts(out)
    assert [a["kind"] for a in opened] == ["account_at_risk"] and "judged_late" not in opened[0]
    _apply_in_order("acme", acc, [_copy("u2", 59)], out)
    assert out.behind == 1 and _alerts(out)[1:] == [] and acc.extras["below_ms"] == T0 + 60 * DAY_MS, "a recovery holds a week (QA20a F8)"
    _apply_in_order("acme", acc, [AccountTick(0, "acme", T0 + 67 * DAY_MS)], out)  # its end, past the watermark
    later = _alerts(out)[1:]
    assert [(a["kind"], a.get("judged_late")) for a in later] == [("account_recovered", True)], later


def test_a_churn_decided_on_a_cancellation_behind_the_account_keeps_the_cancellations_time() -> None:
    """acme judged up to day 60 (its at-risk alert open); its cancellation of day 50 arrives behind
    (a handover, a partition more than the grace behind): ``account_churned`` is marked judged late
    but dated at the cancellation, with the id a replay in order gives it (QA pass 18 F7: acct348's
    was dated 112 h after its cancellation)."""
    acc, out = _account(), AccountsAdvanced()
    out.judging = (T0 + 61 * DAY_MS, False)
    _apply_in_order("acme", acc, [_copy("u1", 60)], out)
    assert [a["kind"] for a in _alerts(out)] == ["account_at_risk"]
    cancel = Event("u1", T0 + 50 * DAY_MS, "subscription", "s1", 0.0, "acme", Subscription("cancelled", "Pro", 0))  # type: ignore[arg-type]
    _apply_in_order("acme", acc, [AccountCopy(0, 300, cancel, 1, 300)], out)
    churned = _alerts(out)[1:]
    assert [(a["kind"], a.get("judged_late"), a["event_time_ms"]) for a in churned] == [
        ("account_churned", True, T0 + 50 * DAY_MS)], churned
    assert churned[0]["alert_id"] == alert_id("acme", "account_churned", "", T0 + 50 * DAY_MS)
    assert acc.extras["seen_ms"] == T0 + 60 * DAY_MS  # the account's own time does not go back
