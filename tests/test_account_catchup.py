"""An account's catch-up reviews (streams.worker.revenue._review_until): the alerts of one review per
deadline, at a cost about linear in members. Pure, no Redis or Kafka."""

from __future__ import annotations

import random

import orjson
import pytest

import streams.worker.account_alerts as account_alerts
from models.account_health import Member, member_key, rollup, silence_index, silence_risk_at
from models.events import Event
from models.revenue import AccountState, AccountView
from models.subscription import Subscription
from streams.worker.account_alerts import AccountWork, next_due_s
from streams.worker.revenue import AccountsAdvanced, _decide, _review_until

DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


def _review_each(account: str, acc: AccountWork, until_ms: int, out: AccountsAdvanced) -> None:
    """The reference: one review per deadline, as the worker did before the catch-up was cheap."""
    while (due_s := next_due_s(acc, int(acc.extras["seen_ms"]))) and due_s * 1000 <= until_ms:  # type: ignore[call-overload]
        _decide(account, acc, due_s * 1000, out)


def _random_account(rng: random.Random) -> AccountWork:
    status = rng.choice(["active", "active", "trial", "past_due", "cancelled"])
    ends = T0 + rng.randint(1, 40) * DAY_MS + rng.randint(0, 86_399_999) if status == "trial" else 0
    period_end = T0 + rng.randint(-20, 60) * DAY_MS if status != "trial" and rng.random() < 0.7 else 0
    sub = Subscription(status, "Pro", 0 if status in ("trial", "cancelled") else 4999, ends, period_end)
    state = AccountState().update(Event("u0", T0 - DAY_MS, "subscription", "s0", 0.0, "acme",
                                        Subscription("active", "Pro", 4999)))
    state = state.update(Event("u0", T0, "subscription", "s1", 0.0, "acme", sub))
    if rng.random() < 0.4:  # an add-on with a period end of its own
        addon = Subscription("active", "Seats", 999, 0, T0 + rng.randint(-20, 60) * DAY_MS)
        state = state.update(Event("u9", T0, "subscription", "s2", 0.0, "acme", addon))
    members = {}
    for i in range(rng.randint(1, rng.choice([3, 25]))):
        k = member_key(f"u{i}")
        seen_s = (T0 + rng.randint(-100 * DAY_MS, 10 * DAY_MS)) // 1000
        gap = rng.choice([0.0, rng.uniform(1, 25)])  # no rhythm (a record before QA18 F4), or a rhythm up to past the cap
        members[k] = Member(k, seen_s, 1, 0.0, rng.uniform(0, 30), rng.uniform(1, 30), f"u{i}", gap)
    extras: dict[str, object] = {"seen_ms": T0}
    if rng.random() < 0.3:
        extras["down"] = [T0 - rng.randint(0, 40) * DAY_MS, ["Pro", "Seats"], ["Pro"]]
    if rng.random() < 0.3:
        extras["at_risk_since_ms"] = T0 - DAY_MS
    acc = AccountWork(state, extras, members)
    _decide("acme", acc, T0, AccountsAdvanced())  # the account's copy at T0
    return acc


@pytest.mark.parametrize("seed", range(4))
def test_catch_up_gives_the_alerts_of_one_review_per_deadline(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        acc = _random_account(rng)
        twin = AccountWork(acc.state, orjson_copy(acc.extras), dict(acc.members))
        until = T0 + rng.randint(0, 120) * DAY_MS
        fast, slow = AccountsAdvanced(), AccountsAdvanced()
        _review_until("acme", acc, until, fast)
        _review_each("acme", twin, until, slow)
        assert fast.alerts == slow.alerts
        assert acc.extras == twin.extras


def orjson_copy(extras: dict[str, object]) -> dict[str, object]:
    return orjson.loads(orjson.dumps(extras))


def test_a_late_copy_of_a_big_account_costs_few_roll_ups(monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 members last seen over 30 days, the next copy 45 days later: one review per member
    deadline was 2,000 roll-ups over 2,000 members each (1.8 CPU-s); a few dozen now."""
    calls = []
    real = account_alerts.rollup
    monkeypatch.setattr(account_alerts, "rollup", lambda *a: calls.append(1) or real(*a))
    state = AccountState().update(Event("u0", T0, "subscription", "s0", 0.0, "big", Subscription("active", "Ent", 99900)))
    n = 2000
    members = {member_key(f"u{i}"): Member(member_key(f"u{i}"), (T0 + i * (30 * DAY_MS // n)) // 1000, 1, 0.0, 20.0, 20.0)
               for i in range(n)}
    acc = AccountWork(state, {"seen_ms": T0 + 30 * DAY_MS}, members)
    out = AccountsAdvanced()
    _review_until("big", acc, T0 + 75 * DAY_MS, out)
    assert len(out.alerts) == 1 and len(calls) < 60, (len(out.alerts), len(calls))


def test_the_silence_index_reads_the_risk_as_the_roll_up_does() -> None:
    """``silence_risk_at`` (the catch-up's bound, by bisection) against the roll-up's risk, with
    weights and billing members (kept among the users while silent: QA11 F3)."""
    rng = random.Random(7)
    for _ in range(400):
        members = [Member(i, rng.choice([0, rng.randint(0, 200 * 86_400)]), 1, 0.0, rng.uniform(0, 30), rng.choice([0.0, rng.uniform(0, 30)]),
                          "", rng.choice([0.0, rng.uniform(1, 25)]))  # with a rhythm or without (QA18 F4)
                   for i in range(rng.randint(0, 8))]
        billing = tuple(sorted(rng.sample(range(10), rng.randint(0, 2))))
        view = AccountView(0, False, "active", (), 0, 0, 0, 0, 0, (), billing)
        now_s = rng.randint(0, 220 * 86_400)
        r = rollup(members, view, None, 0, now_s)
        assert abs(silence_risk_at(silence_index(members, billing), now_s) - r.risk) < 1e-4


def test_an_account_nobody_uses_for_90_days_stays_at_risk_and_does_not_recover() -> None:
    """QA 2026-12: both users silent, at risk on day 60 (risk 0.8); once the last of them had not
    been seen for 90 days the account had no users, its users' part of the risk fell to 0 and the
    catch-up sent ``account_recovered`` at risk 0.0 with nobody back. Every member ever seen now
    counts while none is seen in 90 days: one alert, still at risk on day 150."""
    state = AccountState().update(Event("u1", T0, "subscription", "s0", 0.0, "acme", Subscription("active", "Pro", 4999)))
    seen_s = (T0 + 11 * DAY_MS) // 1000
    acc = AccountWork(state, {"seen_ms": T0 + 11 * DAY_MS},
                      {member_key(u): Member(member_key(u), seen_s, 1, 0.0, 20.0, 20.0, u) for u in ("u1", "u2")})
    out = AccountsAdvanced()
    _review_until("acme", acc, T0 + 150 * DAY_MS, out)
    assert [orjson.loads(v)["kind"] for _, v in out.alerts] == ["account_at_risk"]
    r = rollup(list(acc.members.values()), None, None, 0, (T0 + 150 * DAY_MS) // 1000)
    # since QA16 F11 the stage says they are gone (lapsed, the win-back list's); the alert stays open, as a user's
    assert (r.users, r.silent, r.risk, r.stage, r.reasons) == (2, 2, 0.8, "lapsed", ("both users silent for 19 weeks",))
    assert silence_risk_at(silence_index(list(acc.members.values()), ()), (T0 + 150 * DAY_MS) // 1000) == 0.8
    _decide("acme", acc, T0 + 151 * DAY_MS, out)  # the account's next copy or review
    assert [orjson.loads(v)["kind"] for _, v in out.alerts] == ["account_at_risk"], "no recovery with nobody back"


def test_a_trial_end_needs_no_review_of_its_own() -> None:
    """The due schedule has no deadline at a trial end (review 4, 2026-12-03, asked whether it
    should): the trial rule holds on past the end while the status says trial, so nothing can
    change there. Reviewed every hour or only at its deadlines (the catch-up), an unused trial
    and one used at 10 % of its usual give the same alerts up to the cancellation 30 h after the
    end, which closes the alert (``account_churned``, trial_lost). On the old code the hourly
    reviews sent ``account_recovered`` an hour after the end, and then nothing at the cancellation."""
    ends = T0 + 5 * DAY_MS + 1_234_567
    for members in ({}, {member_key("u1"): Member(member_key("u1"), T0 // 1000, 1, 0.0, 2.0, 20.0, "u1")}):
        told = []
        for hourly in (True, False):
            sub = Subscription("trial", "Pro", 0, ends)
            acc = AccountWork(AccountState().update(Event("admin", T0, "subscription", "s0", 0.0, "trialx", sub)), {}, dict(members))
            out = AccountsAdvanced()
            _decide("trialx", acc, T0, out)
            cancel_ms = ends + 30 * 3_600_000
            if hourly:
                for t in range(T0 + 3_600_000, cancel_ms, 3_600_000):
                    _review_until("trialx", acc, t, out)
                    _decide("trialx", acc, t, out)
            else:
                _review_until("trialx", acc, cancel_ms, out)
            account_alerts_before = len(out.alerts)
            acc.state.apply(Event("admin", cancel_ms, "subscription", "s1", 0.0, "trialx", Subscription("cancelled", "Pro", 0)))
            _decide("trialx", acc, cancel_ms, out)
            kinds = [(a["kind"], a["stage"]) for a in (orjson.loads(v) for _, v in out.alerts)]
            assert len(out.alerts) == account_alerts_before + 1 and kinds[-1] == ("account_churned", "trial_lost"), kinds
            told.append(kinds)
        # the used one's health is 55: no reminder; the unused one's 72 h reminder is its at-risk alert (QA6 L7)
        reminders = [] if members else [("trial_ending", "at_risk")]
        assert told[0] == told[1] == [("account_at_risk", "at_risk"), *reminders, ("account_churned", "trial_lost")], (members, told)


@pytest.mark.parametrize("seed", range(2))
def test_catch_up_with_a_quiet_period_gives_the_alerts_of_one_review_per_deadline(seed: int) -> None:
    """A declared quiet period (models.quiet_period) makes the judged risk fall at its start and rise
    at the end of its 2 weeks after: the catch-up splits its stretches there and reviews that end,
    so it still gives what one review per deadline gives."""
    from models.quiet_period import QuietPeriod

    rng = random.Random(100 + seed)
    for _ in range(150):
        acc = _random_account(rng)
        deadlines = [m.last_seen_s * 1000 + 14 * DAY_MS for m in acc.members.values()]  # a start between two of them
        start = rng.choice(deadlines) + rng.randint(1, 3) * DAY_MS if rng.random() < 0.7 else T0 + rng.randint(-30, 60) * DAY_MS
        first = time_md(start)
        acc.quiet = (QuietPeriod(first, time_md(start + rng.randint(5, 60) * DAY_MS)),)
        twin = AccountWork(acc.state, orjson_copy(acc.extras), dict(acc.members), quiet=acc.quiet)
        until = T0 + rng.randint(0, 120) * DAY_MS
        fast, slow = AccountsAdvanced(), AccountsAdvanced()
        _review_until("acme", acc, until, fast)
        _review_each("acme", twin, until, slow)
        assert fast.alerts == slow.alerts, acc.quiet
        assert acc.extras == twin.extras


def time_md(ms: int) -> tuple[int, int]:
    import datetime

    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=ms // DAY_MS)
    return d.month, d.day
