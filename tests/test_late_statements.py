"""Billing statements late for their user partition, within ``CHURNWATCH_BILLING_LATENESS_MS``.

A ``subscription`` event more than the allowed lateness (6 h) behind its user partition's stream
time went to the DLQ as ``late`` and never reached the live MRR figures. Billing systems deliver
that late as a matter of course (Stripe retries a webhook for up to 3 days; a nightly export is a
day late), so such a statement is now copied to its account (marked late, never given to the user)
and applied there as the account's newest change when no later change of the account has settled;
one that would rewrite the account's past is counted late as before. The pure parts here; the real
broker, Redis and worker in tests/test_revenue_live.py.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from models.events import EVENT_ORDER, Event
from models.revenue import AccountState
from models.revenue_ledger import Cohorts, Ledger, RevenueBook
from models.subscription import Subscription
from streams.publisher import event_value
from streams.worker.clock import TopicClock
from streams.worker.codec import Decoder
from streams.worker.phases import decode_batch
from streams.worker.revenue import LATE_HEADER, AccountCopy, _held_json, _parse_held, is_late_copy
from tests.harness import Rec
from tests.test_revenue_live import DAY_MS, START_MS, _Redis, _book_net, _net, _tick_until

HOUR_MS = 3_600_000
LATENESS_MS = 6 * HOUR_MS
BILLING_MS = 3 * DAY_MS


def _sub(user: str, ts_ms: int, account: str, status: str = "active", plan: str = "Pro", mrr: int = 4_900) -> Event:
    return Event(user, ts_ms, "subscription", f"{user}@{ts_ms}", 0.0, account, Subscription(status, plan, mrr))


def _decode(events: list[Event], billing_ms: int = BILLING_MS):  # type: ignore[no-untyped-def]
    clock = TopicClock(LATENESS_MS, 60_000, "event")
    clock.assign(0, None, START_MS)
    records = [Rec(i, ev.user_id.encode(), event_value(ev)) for i, ev in enumerate(events)]
    wall_ms = max(ev.ts_ms for ev in events)
    return decode_batch({0: records}, clock.partitions, Decoder(), wall_ms, topic="ev", max_dlq_value_bytes=4096,
                        billing_lateness_ms=billing_ms)


def test_a_statement_late_for_its_user_but_within_the_billing_lateness_is_copied_to_its_account_only() -> None:
    """The user partition's stream time is day 5 12:00: a statement 28 h behind it (a nightly
    export) is copied to its account marked late, and neither scored nor dead-lettered; one 4 days
    behind, and any other event 28 h behind, go to the DLQ as ``late`` (the statement counted in
    ``churnwatch_subscription_late_total``). With the setting at or below the allowed lateness
    (off), the statement is dead-lettered as before."""
    now = START_MS + 5 * DAY_MS + 12 * HOUR_MS
    events = [Event("v1", now, "view", "v-now", 0.0, ""), _sub("a1", now - 28 * HOUR_MS, "acme"),
              _sub("b1", now - 4 * DAY_MS, "beta"), Event("a1", now - 28 * HOUR_MS, "view", "v-late", 0.0, "acme")]
    out = _decode(events)
    assert set(out.users) == {"v1"} and "a1" not in out.member_of, "the late statement touches no user"
    assert [(k, is_late_copy(h)) for k, _, h in out.account_copies] == [(b"acme", True)]
    assert out.account_copies[0][2][0] == ("churnwatch-account", b"0:1"), "the account header first (stamp_marks)"
    assert out.rejected == {"late": 2} and out.late_statements == ["beta"]

    off = _decode(events, billing_ms=LATENESS_MS)
    assert off.account_copies == [] and off.rejected == {"late": 3} and off.late_statements == ["acme", "beta"]


def test_whether_a_statement_is_copied_does_not_depend_on_the_jump_seed_of_a_restart() -> None:
    """Review 19 F2: p lags the topic (S_p day 10, S_all day 12) and its worker restarts, so p's
    jump seed is day 12 until S_p moves. A statement at day 8.9 is 1.1 days behind S_p: copied to
    its account before the restart, and so after it too (measured against the seed, 3.1 days, it
    went to the DLQ, though its first copy may already be applied)."""
    statement = _sub("a1", START_MS + int(8.9 * DAY_MS), "acme")
    decided = []
    for restarted in (False, True):
        clock = TopicClock(LATENESS_MS, 60_000, "event")
        if restarted:
            clock.observe_global(START_MS + 12 * DAY_MS)
        clock.assign(0, START_MS + 10 * DAY_MS, START_MS + 10 * DAY_MS)
        out = decode_batch({0: [Rec(0, b"a1", event_value(statement))]}, clock.partitions, Decoder(), START_MS + 10 * DAY_MS,
                           topic="ev", max_dlq_value_bytes=4096, billing_lateness_ms=BILLING_MS)
        decided.append(([(k, is_late_copy(h)) for k, _, h in out.account_copies], out.rejected))
    assert decided == [([(b"acme", True)], {})] * 2


def test_the_account_side_reads_the_late_mark_and_keeps_it_while_the_copy_is_held() -> None:
    """The copy's header says it was late for its user (it is below the mark it carries, which
    the account side must not take for an impossible copy); a held copy keeps that in Redis, and a
    row an earlier version wrote (without it) reads as an ordinary copy."""
    from streams.worker.phases import Decoding

    ev = _sub("a1", START_MS, "acme")
    copy = Rec(9, b"acme", event_value(ev), headers=[("churnwatch-account", b"3:17"), ("churnwatch-mark", b"%d" % (START_MS + DAY_MS)),
                                                      (LATE_HEADER, b"1")])
    clock = TopicClock(LATENESS_MS, 60_000, "event")
    clock.assign(0, None, START_MS)
    decoding = Decoding(clock.partitions, Decoder(), START_MS, topic="ev", max_dlq_value_bytes=4096)
    decoding.feed(0, [copy])
    out = decoding.result()
    assert [(c.late, c.origin, c.origin_offset) for c in out.accounts] == [(True, 3, 17)]  # type: ignore[union-attr]
    assert out.marks == {0: {3: START_MS + DAY_MS}} and out.rejected == {}
    held = out.accounts[0]
    assert isinstance(held, AccountCopy)
    back = _parse_held(_held_json([held]), 0, "acme")
    assert [(c.late, c.event) for c in back] == [(True, ev)]  # type: ignore[union-attr]
    import orjson

    old_row = orjson.loads(_held_json([held]))[0][:15]
    assert [c.late for c in _parse_held(orjson.dumps([old_row]), 0, "acme")] == [False]  # type: ignore[union-attr]


def _late(ev: Event, offset: int = -1) -> AccountCopy:
    return AccountCopy(0, offset, ev, origin=1, origin_offset=offset, late=True)


def _on_time(ev: Event, offset: int) -> AccountCopy:
    return AccountCopy(0, offset, ev, origin=0, origin_offset=offset)


def _figures(redis: _Redis, end_ms: int):  # type: ignore[no-untyped-def]
    return Ledger.from_totals("day", redis.counters["day"]).get(START_MS, end_ms)


def _report(events: list[Event]) -> RevenueBook:
    book = RevenueBook("day")
    for ev in sorted(events, key=EVENT_ORDER):
        book.update(ev)
    return book


def test_a_nightly_export_is_applied_as_each_accounts_newest_change_and_gives_the_reports_figures() -> None:
    """Day 3's statements come in day 4 at noon (the account watermark at 06:00 of day 4, every
    earlier statement settled): acme's upgrade, beta's cancellation and delta's first plan are each
    their account's newest change, so they are applied, booked on day 3 as ``report`` books them,
    and counted as applied late; beta's cancellation is its ``account_churned`` alert at once.
    Gamma's cancellation at 20:00 of day 3 would rewrite its past (its add-on was stated at 02:00
    of day 4 and has settled): counted late, not applied. Sent again, nothing is counted twice."""
    d3 = START_MS + 3 * DAY_MS
    on_time = [_sub("a1", START_MS, "acme", mrr=10_000), _sub("b1", START_MS, "beta", mrr=5_000),
               _sub("c1", START_MS, "gamma", mrr=20_000), _sub("c2", d3 + 26 * HOUR_MS, "gamma", plan="Addon", mrr=3_000)]
    export = [_sub("a1", d3 + 9 * HOUR_MS, "acme", plan="Business", mrr=15_000), _sub("b1", d3 + 15 * HOUR_MS, "beta", "cancelled", mrr=0),
              _sub("d1", d3 + 18 * HOUR_MS, "delta", mrr=4_000), _sub("c1", d3 + 20 * HOUR_MS, "gamma", "cancelled", mrr=0)]
    redis, release = _Redis(), {0: d3 + 30 * HOUR_MS}
    redis.cycle([_on_time(ev, i) for i, ev in enumerate(on_time)], {0: 3}, release)
    redis.cycle([_late(ev, 4 + i) for i, ev in enumerate(export)], {0: 7}, release)
    done = redis.done[-1]
    assert (done.applied_late, done.late, done.behind) == (3, 1, 0)
    end = START_MS + 6 * DAY_MS
    book = _report(on_time + export[:3])
    assert _figures(redis, end) == book.get(START_MS, end)
    assert Cohorts.from_counters(redis.cohorts).get(end) == book.cohorts.get(end)
    assert _net(redis.done) == _book_net(book)
    assert {a: AccountState.from_bytes(b).get() for a, b in redis.states.items()} == {a: s.get() for a, s in book.accounts.items()}
    assert [(a["account_id"], a["kind"]) for a in redis.alerts if a["kind"] == "account_churned"] == [("beta", "account_churned")]

    counters = {p: {s: dict(c) for s, c in v.items()} for p, v in redis.counters.items()}
    redis.cycle([_late(ev, 8 + i) for i, ev in enumerate(export)], {0: 11}, release)  # the export published again
    assert (redis.done[-1].applied_late, redis.done[-1].added, redis.done[-1].retracted) == (0, [], [])
    assert redis.done[-1].late == 1, "gamma's is still late (counted again, as a re-sent copy always was)"
    assert redis.counters == counters
    assert sum(1 for a in redis.alerts if a["kind"] == "account_churned") == 1, "the same alert is not decided twice"


def test_a_late_statement_before_statements_the_watermark_still_holds_re_measures_them() -> None:
    """The account's latest settled change is at 02:00, a statement at 14:00 is held (the watermark
    is at 12:00), and a statement late for its user at 05:00 arrives: it is the newest *settled*
    change, so it is applied and the held one re-measured after it, as ``report`` books them."""
    t = START_MS + 2 * DAY_MS
    first, held = _sub("a1", t + 2 * HOUR_MS, "acme", mrr=5_000), _sub("a2", t + 14 * HOUR_MS, "acme", plan="Addon", mrr=1_000)
    late = _sub("a1", t + 5 * HOUR_MS, "acme", plan="Business", mrr=9_000)
    redis, release = _Redis(), {0: t + 12 * HOUR_MS}
    redis.cycle([_on_time(first, 0), _on_time(held, 1)], {0: 1}, release)
    assert redis.held
    redis.cycle([_late(late, 2)], {0: 2}, release)
    assert (redis.done[-1].applied_late, redis.done[-1].late) == (1, 0)
    book = _report([first, held, late])
    end = START_MS + 4 * DAY_MS
    assert _figures(redis, end) == book.get(START_MS, end) and _net(redis.done) == _book_net(book)
    _tick_until(redis, end, release=True)
    assert redis.sides["acme"] == redis.states["acme"] and _figures(redis, end) == book.get(START_MS, end)
    assert sum(d.applied_late for d in redis.done) == 1, "counted once, not again when the held one is released"


def test_a_late_statement_older_than_its_subscriptions_content_is_counted_late() -> None:
    """``AccountState`` ignores a statement older than its subscription's content in force as a
    replay of history (not late). One that came late for its user cannot be placed either, but
    the live figures then miss it: counted late, not applied."""
    t = START_MS + DAY_MS
    redis, release = _Redis(), {0: t + 12 * HOUR_MS}
    redis.cycle([_on_time(_sub("a1", t, "acme", mrr=5_000), 0), _on_time(_sub("a1", t + 8 * HOUR_MS, "acme", mrr=9_000), 1)], {0: 1}, release)
    redis.cycle([_late(_sub("a1", t + 4 * HOUR_MS, "acme", "past_due", mrr=5_000), 2)], {0: 2}, release)
    assert (redis.done[-1].late, redis.done[-1].applied_late, redis.done[-1].added) == (1, 0, [])


def test_a_late_renewal_behind_a_settled_later_change_carries_its_period_end_and_counts_nothing() -> None:
    """Review 19 F3: u2's day-4 change has settled; u1's renewal at day 3 (same terms, the next
    period's end) comes late for its user. It moves no money and is not the account's newest
    change: not counted applied late (nor late), but its period end is kept for renewal reminders."""
    def renewal(user: str, day: int, mrr: int, end_day: int) -> Event:
        return Event(user, START_MS + day * DAY_MS, "subscription", f"{user}@{day}", 0.0, "acme",
                     Subscription("active", "Pro", mrr, 0, START_MS + end_day * DAY_MS))

    redis, release = _Redis(), {0: START_MS + 30 * DAY_MS}
    redis.cycle([_on_time(renewal("u1", 1, 5_000, 31), 0), _on_time(renewal("u2", 4, 3_000, 34), 1)], {0: 1}, release)
    redis.cycle([_late(renewal("u1", 3, 5_000, 61), 2)], {0: 2}, release)
    done = redis.done[-1]
    assert (done.applied_late, done.late, done.added, done.retracted) == (0, 0, [], [])
    ends = {s.sub.period_end_ms for s in AccountState.from_bytes(redis.states["acme"]).subs.values()}
    assert START_MS + 61 * DAY_MS in ends


def _accounts(rng: random.Random, n: int) -> list[Event]:
    """Accounts of 1-3 subscriptions (each under its own user) stated 1-4 times at whole hours."""
    events = []
    for a in range(n):
        for u in range(rng.randint(1, 3)):
            user, t = f"a{a}u{u}", START_MS + rng.randrange(5 * 24) * HOUR_MS
            for _ in range(rng.randint(1, 4)):
                status = rng.choice(("trial", "active", "active", "past_due", "cancelled"))
                events.append(_sub(user, t, f"acct{a}", status, mrr=0 if status == "cancelled" else rng.choice((1_000, 4_900))))
                t += rng.choice((1, 3, 24)) * HOUR_MS
    return events


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(2, 8), st.integers(1, 6))
def test_late_statements_after_their_accounts_settled_changes_give_the_reports_figures_in_any_interleaving(
    rng: random.Random, n_accounts: int, largest: int,
) -> None:
    """Property: each account's statements from a random time on come late for their user (a
    nightly export, a webhook retried), after the rest of every account has settled. Delivered in
    each account's event order (an export is sorted), the accounts interleaved at random, cut into
    cycles at random, some sent twice: the period counters, cohorts and states are ``report``'s
    over all the events, no statement is late, and each late statement that changed its account
    is counted as applied late once."""
    events = _accounts(rng, n_accounts)
    split: dict[str, int] = {}
    for ev in events:
        split.setdefault(ev.account, START_MS + rng.randrange(7 * 24) * HOUR_MS)
    on_time = sorted((ev for ev in events if ev.ts_ms < split[ev.account]), key=EVENT_ORDER)
    late = sorted((ev for ev in events if ev.ts_ms >= split[ev.account]), key=EVENT_ORDER)
    redis, release, offset = _Redis(), {0: START_MS + 30 * DAY_MS}, 0  # every copy below the watermark: settled at once
    if on_time:
        redis.cycle([_on_time(ev, i) for i, ev in enumerate(on_time)], {0: len(on_time) - 1}, release)
        offset = len(on_time)
    queues: dict[str, list[Event]] = {}
    for ev in late:
        queues.setdefault(ev.account, []).append(ev)
    arrival: list[Event] = []
    while queues:
        account = rng.choice(sorted(queues))
        ev = queues[account].pop(0)
        arrival += [ev, ev] if rng.random() < 0.2 else [ev]  # a copy made twice (a crash before the progress)
        if not queues[account]:
            del queues[account]
    i = 0
    while i < len(arrival):
        batch = [_late(ev, offset + k) for k, ev in enumerate(arrival[i:i + rng.randint(1, largest)])]
        redis.cycle(batch, {0: batch[-1].offset}, release)  # type: ignore[arg-type]
        offset += len(batch)
        i += len(batch)
    book, end = _report(events), START_MS + 12 * DAY_MS
    assert sum(d.late for d in redis.done) == 0
    assert _figures(redis, end) == book.get(START_MS, end)
    assert Cohorts.from_counters(redis.cohorts).get(end) == book.cohorts.get(end)
    assert {a: AccountState.from_bytes(b).get() for a, b in redis.states.items()} == {a: s.get() for a, s in book.accounts.items()}
    changed = 0  # statements of the late part that change their account, applied in event order
    replay: dict[str, AccountState] = {}
    for ev in sorted(events, key=EVENT_ORDER):
        st_ = replay.setdefault(ev.account, AccountState())
        before = st_.to_bytes()
        st_.apply(ev)
        changed += ev.ts_ms >= split[ev.account] and st_.to_bytes() != before
    assert sum(d.applied_late for d in redis.done) == changed


def test_the_billing_lateness_setting_reads_a_duration_and_refuses_a_negative_one() -> None:
    from streams.settings import Settings, SettingsError

    assert Settings().billing_lateness_ms == 3 * DAY_MS
    assert Settings.from_env({"CHURNWATCH_BILLING_LATENESS_MS": "36h"}).billing_lateness_ms == 36 * HOUR_MS
    with pytest.raises(SettingsError, match="billing_lateness_ms must be 0 .off. or more"):
        Settings(billing_lateness_ms=-1)


def test_a_late_statement_the_watermark_has_not_passed_is_held_kept_late_and_counted_once() -> None:
    """Another user partition lags, so the account's watermark (03:00) is below a statement late
    for its own user (05:00): the alert side holds it in Redis like any copy (the late mark kept),
    the revenue applies it at once; released hours later it is neither counted again nor behind."""
    t = START_MS + 2 * DAY_MS
    first, late = _sub("a1", t + 2 * HOUR_MS, "acme", mrr=5_000), _sub("a1", t + 5 * HOUR_MS, "acme", plan="Business", mrr=9_000)
    redis = _Redis()
    redis.cycle([_on_time(first, 0)], {0: 0}, {0: t + 3 * HOUR_MS})
    redis.cycle([_late(late, 1)], {0: 1}, {0: t + 3 * HOUR_MS})
    assert redis.held and [c.late for c in _parse_held(redis.held["acme"], 0, "acme")] == [True]  # type: ignore[union-attr]
    assert (redis.done[-1].applied_late, redis.done[-1].held) == (1, 1)
    end = START_MS + 4 * DAY_MS
    book = _report([first, late])
    assert _figures(redis, end) == book.get(START_MS, end)
    _tick_until(redis, end, release=True)
    assert redis.held == {} and redis.sides["acme"] == redis.states["acme"]
    assert sum(d.applied_late for d in redis.done) == 1 and sum(d.behind for d in redis.done) == 0
    assert _figures(redis, end) == book.get(START_MS, end) and _net(redis.done) == _book_net(book)
