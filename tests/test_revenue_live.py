"""Live MRR: the worker's account phase gives the figures ``churnwatch report`` gives for the same events.

The pure phase (``streams.worker.revenue``) against ``RevenueBook`` batch by batch, and the real
worker (real broker, real Redis) read back through ``churnwatch churn-rate``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from models.events import EVENT_ORDER, Event
from models.revenue import AccountState
from models.revenue_ledger import PERIODS, Cohorts, Ledger, RevenueBook, cohort_dict, figures_dict
from streams.offline.simulate_accounts import generate_accounts
from streams.settings import Settings
from streams.worker.revenue import (
    AccountCopy,
    MemberCopy,
    MAX_HELD,
    AccountReadResult,
    AccountsAdvanced,
    AccountTick,
    account_copy,
    advance_accounts,
    is_account_copy,
    parse_counter_field,
    plan_account_reads,
)
from streams.worker.topics import ensure_topics
from streams.worker.watermark import watermark_ms
from tests.harness import Rec, Worker, account_barrier, publish_events, wait_progress

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
TOPIC = "ev"


class _Redis:
    """What the account scripts keep, in dicts: the phase is pure, so this is all a test needs."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[int, str], str] = {}
        self.states: dict[str, bytes] = {}
        self.extras: dict[str, bytes] = {}
        self.members: dict[str, dict[bytes, bytes]] = {}
        self.counters: dict[str, dict[int, dict[str, int]]] = {p: {} for p in PERIODS}
        self.cohorts: dict[str, int] = {}
        self.alerts: list[dict[str, object]] = []
        self.due: dict[str, int] = {}  # the due index of partition 0: account -> second (0: none)

        self.sides: dict[str, bytes] = {}  # the alert side's account states
        self.held: dict[str, bytes] = {}  # copies held for the watermark
        self.done: list[AccountsAdvanced] = []

    def cycle(self, copies: list, last_offset: dict[int, int], release_ms: dict[int, int] | None = None,  # type: ignore[type-arg]
              max_held: int = MAX_HELD) -> int:
        reads = plan_account_reads(copies, TOPIC, 64)
        replies = [AccountReadResult([self.offsets.get((r.bucket, f), "") for f in r.fields],
                                     [self.states.get(a) for a in r.accounts], [self.extras.get(a) for a in r.accounts],
                                     [dict(self.members.get(a, {})) for a in r.accounts], [],
                                     [self.sides.get(a) for a in r.accounts], [self.held.get(a) for a in r.accounts])
                   for r in reads]
        done = advance_accounts(copies, reads, replies, TOPIC, last_offset, release_ms, max_held)
        self.done.append(done)
        self.alerts += [orjson.loads(v) for _, v in done.alerts]
        self.due.update(done.dues.get(0, {}))
        for w in done.writes:
            for fld, exp, new in w.parts:
                assert self.offsets.get((w.bucket, fld), "") == exp
                self.offsets[(w.bucket, fld)] = new
            self.states.update(w.states)
            self.sides.update(w.sides)
            for a, raw in w.held.items():
                if raw:
                    self.held[a] = raw
                else:
                    self.held.pop(a, None)
            self.extras.update(w.extras)
            for a, m in w.members.items():
                self.members.setdefault(a, {}).update(m)
            for raw, v in w.counters.pop("cohort", {}).items():
                self.cohorts[raw] = self.cohorts.get(raw, 0) + v
            for period, deltas in w.counters.items():
                for raw, v in deltas.items():
                    start, name = parse_counter_field(raw)
                    t = self.counters[period].setdefault(start, {})
                    t[name] = t.get(name, 0) + v
        return done.skipped


def _per_account(alerts: list[dict[str, object]]) -> dict[object, list[dict[str, object]]]:
    out: dict[object, list[dict[str, object]]] = {}
    for a in alerts:
        out.setdefault(a["account_id"], []).append(a)
    return out


def _subscription_events(seed: int, accounts: int, days: int) -> list[Event]:
    return [e for e in generate_accounts(seed, accounts, START_MS, days).events if e.subscription is not None]


def test_copies_carry_the_account_key_and_header() -> None:
    ev = Event("u1", START_MS, "subscription", "e1", 0.0, "acme")
    key, value, headers = account_copy(ev, 2, 40, b"{}")
    assert key == b"acme" and value == b"{}" and is_account_copy(headers)
    assert account_copy(Event("solo", START_MS, "subscription", "e2"), 0, 1, b"")[0] == b"solo"  # own account
    assert not is_account_copy(None) and not is_account_copy([("churnwatch-origin", b"0:1")])


def test_phase_in_batches_equals_the_report_and_replays_change_nothing() -> None:
    events = _subscription_events(5, 60, 120)
    book = RevenueBook("month")
    for ev in sorted(events, key=EVENT_ORDER):
        book.update(ev)
    rng = random.Random(1)
    redis = _Redis()
    offset, i = 0, 0
    while i < len(events):
        n = rng.randint(1, 40)
        batch = events[i:i + n]
        rng.shuffle(batch)  # arrival order inside a cycle does not matter: sorted per account
        copies = [AccountCopy(0, offset + j, ev) for j, ev in enumerate(batch)]
        assert redis.cycle(copies, {0: offset + len(batch) - 1}) == 0
        if rng.random() < 0.3:  # the same cycle read again (a crash after the write): all fenced out
            assert redis.cycle(copies, {0: offset + len(batch) - 1}) == len(batch)
        offset, i = offset + len(batch), i + n
    for period in PERIODS:
        live = Ledger.from_totals(period, redis.counters[period]).get(START_MS, START_MS + 120 * DAY_MS)
        offline = RevenueBook(period)
        for ev in sorted(events, key=EVENT_ORDER):
            offline.update(ev)
        assert live == offline.get(START_MS, START_MS + 120 * DAY_MS), period
    assert sum(1 for m in book.movements if m.kind == "churn") >= 3
    end = START_MS + 120 * DAY_MS
    assert Cohorts.from_counters(redis.cohorts).get(end) == book.cohorts.get(end), "live cohorts: the report's"
    assert len(book.cohorts.get(end)) >= 3


def test_account_alerts_do_not_depend_on_how_the_copies_are_batched() -> None:
    """The same copies in the same order, cut into cycles differently (and some cycles read twice):
    the same alerts of each account in the same order, with the same ids, and the same states
    (alerts are keyed by account: their order across accounts is not kept on the topic either, and
    a reminder now comes at its deadline, reviewed when the account's next copy passes it)."""
    from models.account_health import Member, member_key

    copies: list = []  # type: ignore[type-arg]
    for ev in _subscription_events(9, 30, 90):
        copies.append(AccountCopy(0, len(copies), ev))
    for d in range(0, 90, 3):  # members of a few accounts, going quiet one by one
        for k, user in enumerate(("x1", "x2", "x3")):
            if d < 30 * (k + 1):
                m = Member(member_key(user), (START_MS + d * DAY_MS) // 1000, 1, 0.0, 10.0, 10.0)
                copies.append(MemberCopy(0, len(copies), "acct-x", START_MS + d * DAY_MS, m))
    copies.sort(key=lambda c: c.ts_ms)
    copies = [type(c)(0, i, *(((c.event,)) if isinstance(c, AccountCopy) else (c.account, c.ts_ms, c.member)))
              for i, c in enumerate(copies)]
    results = []
    for seed in (1, 2):
        rng, redis, i = random.Random(seed), _Redis(), 0
        while i < len(copies):
            n = rng.randint(1, 25)
            batch = copies[i:i + n]
            redis.cycle(batch, {0: batch[-1].offset})
            if rng.random() < 0.2:
                assert redis.cycle(batch, {0: batch[-1].offset}) == len(batch)
            i += n
        results.append((_per_account(redis.alerts), redis.states, redis.extras))
    assert results[0] == results[1]
    kinds = {a["kind"] for alerts in results[0][0].values() for a in alerts}
    assert "account_at_risk" in kinds and "account_churned" in kinds, kinds


def _tick_until(redis: _Redis, until_ms: int, release: bool = False) -> None:
    """The account partition's clock passes ``until_ms``: the due reviews before it run, as the
    worker sweeps its due index (a review due at second s once the clock is past s * 1000);
    ``release``: with ``until_ms`` as the account partition's watermark (held copies below it go)."""
    while due := sorted((s, a) for a, s in redis.due.items() if s and s * 1000 < until_ms):
        s, account = due[0]
        redis.cycle([AccountTick(0, account, s * 1000)], {}, {0: until_ms} if release else None)


def _contoso() -> tuple[list, Event]:  # type: ignore[type-arg]
    """Contoso's copies in event order: a subscription, three members (c1, c2 fall silent on days 34
    and 38, c3 stays until day 70), the cancellation on day 80."""
    from models.account_health import Member, member_key
    from models.subscription import Subscription

    copies: list = [AccountCopy(0, 0, Event("c1", START_MS, "subscription", "s0", 0.0, "contoso",
                                             Subscription("active", "Pro", 9900)))]  # type: ignore[type-arg]
    for user, last in {"c1": 20, "c2": 24, "c3": 70}.items():
        for d in range(0, last + 1, 4 if last < 70 else 10):
            m = Member(member_key(user), (START_MS + d * DAY_MS) // 1000, 1, 0.0, 12.0, 12.0, user)
            copies.append(MemberCopy(0, 0, "contoso", START_MS + d * DAY_MS, m))
    gone = Event("c1", START_MS + 80 * DAY_MS, "subscription", "s1", 0.0, "contoso", Subscription("cancelled", "Pro", 0))
    copies.append(AccountCopy(0, 0, gone))
    copies.sort(key=lambda c: c.ts_ms)
    for i, c in enumerate(copies):
        c.offset = i
    return copies, gone


def test_account_alerts_do_not_depend_on_whether_a_due_review_ran_between_copies() -> None:
    """The lead's contoso (tests/test_console.py): members fall silent one by one, then the account
    cancels. Read in one cycle, or copy by copy with the partition's clock passing each member's
    silence deadline in between (its due review runs first): the same alerts, ids and states. Before,
    the review at a deadline ran only when the clock passed it before the next copy arrived, so one
    run alerted ``account_at_risk`` at the deadline ("2 of 3 active users silent") and another only
    ``account_churned`` at the statement ("2 of 2")."""
    copies, gone = _contoso()
    end_ms = START_MS + 120 * DAY_MS

    at_once = _Redis()
    at_once.cycle(copies, {0: copies[-1].offset})
    _tick_until(at_once, end_ms)
    one_by_one = _Redis()
    for c in copies:
        _tick_until(one_by_one, c.ts_ms)
        one_by_one.cycle([c], {0: c.offset})
    _tick_until(one_by_one, end_ms)
    assert [(a["kind"], a["event_time_ms"], a["reasons"]) for a in one_by_one.alerts] == \
        [(a["kind"], a["event_time_ms"], a["reasons"]) for a in at_once.alerts]
    assert (one_by_one.alerts, one_by_one.states, one_by_one.extras) == (at_once.alerts, at_once.states, at_once.extras)
    kinds = [a["kind"] for a in at_once.alerts]
    assert kinds[0] == "account_at_risk" and "account_churned" in kinds, kinds
    first = at_once.alerts[0]
    assert first["event_time_ms"] < gone.ts_ms, "at risk when the members fell silent, before the cancellation"


GRACE_MS = 100 * DAY_MS  # more than the two partitions are ever apart here


def _made_by_two_partitions() -> list:  # type: ignore[type-arg]
    """Contoso's copies (``_contoso``) as two producing partitions make them: c3's by partition 1,
    the rest by partition 0, each partition's in its own order (its offsets)."""
    copies, _ = _contoso()
    made: dict[int, int] = {}
    for c in copies:
        c.origin = 1 if isinstance(c, MemberCopy) and c.member.user_id == "c3" else 0
        c.origin_offset = made[c.origin] = made.get(c.origin, -1) + 1
    return copies


def _random_batches(rng: random.Random, arrival: list[AccountCopy], largest: int) -> list[list[AccountCopy]]:
    """``arrival`` cut into consecutive cycles of 1..``largest`` copies: where a worker's batches end
    is arbitrary, so the properties hold for any cut."""
    batches, i = [], 0
    while i < len(arrival):
        n = rng.randint(1, largest)
        batches.append(arrival[i:i + n])
        i += n
    return batches


def _deliver(batches: list, grace_ms: int = GRACE_MS, max_held: int = MAX_HELD) -> _Redis:  # type: ignore[type-arg]
    """The account partition reads ``batches`` (cycle by cycle) with the watermark over the two
    producing partitions' marks (a copy's mark: its partition makes no earlier copy from then on,
    here its own time), then both partitions' heartbeats pass the end."""
    redis, marks, offset = _Redis(), {}, 0
    for batch in batches:
        for c in batch:
            marks[c.origin] = max(marks.get(c.origin, c.ts_ms), c.ts_ms)
            c.offset, offset = offset, offset + 1  # where the account partition reads it
        redis.cycle(batch, {0: offset - 1}, {0: watermark_ms(marks, 2, grace_ms)}, max_held)
    _tick_until(redis, START_MS + 120 * DAY_MS, release=True)
    return redis


def _alerts(redis: _Redis) -> list[tuple[object, ...]]:
    return [(a["alert_id"], a["kind"], a["event_time_ms"], a["reasons"]) for a in redis.alerts]


def test_account_alerts_do_not_depend_on_the_order_copies_from_two_partitions_arrive_in() -> None:
    """c3's partition read ahead of c1's and c2's (a backlog), so c3's copies come first. Applied as
    they came, the account's time jumped to day 70 and c1's and c2's copies were judged there: at
    risk on day 70 instead of day 38. Held until the watermark over both partitions passes them,
    they are applied in event order: the alerts of the copies read in event order in one cycle
    (ids, times, reasons), and the same states."""
    copies = _made_by_two_partitions()
    in_order = _Redis()
    in_order.cycle(copies, {0: len(copies) - 1})
    _tick_until(in_order, START_MS + 120 * DAY_MS)
    fast = [c for c in copies if c.origin == 1]
    ahead = _deliver([fast, [c for c in copies if c.origin == 0]])
    assert _alerts(ahead) == _alerts(in_order)
    assert (ahead.sides, ahead.extras) == (in_order.states, in_order.extras)
    assert ahead.held == {} and sum(d.held for d in ahead.done) >= len(fast), "c3's copies waited for partition 0"
    assert _alerts(in_order)[0][1:3] == ("account_at_risk", START_MS + 38 * DAY_MS)
    # applied as they come (no watermark): the alert moves, as before
    as_they_come = _Redis()
    for batch in (fast, [c for c in copies if c.origin == 0]):
        as_they_come.cycle(batch, {})
    _tick_until(as_they_come, START_MS + 120 * DAY_MS)
    assert _alerts(as_they_come) != _alerts(in_order)


def test_any_interleaving_of_the_partitions_within_the_grace_gives_the_same_alerts() -> None:
    """Property: each producing partition's copies in its own order, interleaved at random with the
    other's, cut into cycles at random, some cycles read twice (a replay): the alerts, states and
    extras of the copies read in event order; nothing is left held; the MRR counters are the same
    (subscriptions reach the revenue state at once)."""
    copies = _made_by_two_partitions()
    reference = _Redis()
    reference.cycle(copies, {0: len(copies) - 1})
    _tick_until(reference, START_MS + 120 * DAY_MS)
    by_origin = {q: [c for c in copies if c.origin == q] for q in (0, 1)}
    for seed in range(12):
        rng = random.Random(seed)
        queues = {q: list(cs) for q, cs in by_origin.items()}
        arrival = []
        while queues[0] or queues[1]:
            q = rng.choice([q for q in queues if queues[q]])
            arrival.append(queues[q].pop(0))
        got = _deliver(_random_batches(rng, arrival, 6))
        assert _alerts(got) == _alerts(reference), seed
        assert (got.sides, got.extras, got.held) == (reference.states, reference.extras, {}), seed
        assert got.counters == reference.counters and got.states == reference.states, seed


def test_a_partition_beyond_the_grace_holds_nobody_back_and_its_copies_count_as_behind() -> None:
    """Partition 1 (c3) runs 50 days ahead with a grace of 10 days: the watermark follows it less
    the grace, so c1's and c2's copies older than that are applied behind the account's time
    (counted), and the account's alerts differ from event order: the grace bounds the wait."""
    copies = _made_by_two_partitions()
    fast = [c for c in copies if c.origin == 1]
    late = _deliver([fast, [c for c in copies if c.origin == 0]], grace_ms=10 * DAY_MS)
    assert sum(d.behind for d in late.done) > 0 and late.held == {}


def test_held_copies_are_bounded_per_account_and_the_earliest_go_first_in_event_order() -> None:
    """At most ``max_held`` copies an account: beyond, the earliest are applied at once (counted),
    in event order among themselves; the rest stay held and are applied when the watermark passes."""
    copies = _made_by_two_partitions()
    fast = [c for c in copies if c.origin == 1]
    bounded = _deliver([fast, [c for c in copies if c.origin == 0]], max_held=3)
    forced = sum(d.forced for d in bounded.done)
    assert forced == len(fast) - 3, forced
    assert bounded.held == {} and [a["kind"] for a in bounded.alerts], "applied in the end, alerts decided"


def test_a_new_account_is_not_reviewed_before_its_first_time() -> None:
    """A user with only a subscription statement (no activity: last seen 0) is a member copy at
    time 0: its account is not reviewed at 1970-01-15 when its statement comes (seen on the
    console state's barrier accounts once deadlines were reviewed before each copy)."""
    from models.account_health import Member, member_key
    from models.subscription import Subscription

    never = MemberCopy(0, 0, "solo", 0, Member(member_key("solo"), 0, 0, 0.0, 0.0, 0.0, "solo"))
    trial = AccountCopy(0, 1, Event("solo", START_MS, "subscription", "t", 0.0, "solo", Subscription("trial", "Pro", 0)))
    redis = _Redis()
    redis.cycle([never, trial], {0: 1})
    _tick_until(redis, START_MS + 60 * DAY_MS)
    assert all(a["event_time_ms"] >= START_MS for a in redis.alerts), redis.alerts
    assert redis.due["solo"] == 0 or redis.due["solo"] * 1000 >= START_MS + 60 * DAY_MS


def _statement(user: str, ts_ms: int, account: str, status: str, plan: str, mrr: int, q: int, made: int) -> AccountCopy:
    from models.subscription import Subscription

    ev = Event(user, ts_ms, "subscription", f"{user}@{ts_ms}", 0.0, account, Subscription(status, plan, mrr))
    return AccountCopy(0, -1, ev, origin=q, origin_offset=made)


def _net(done: list[AccountsAdvanced]) -> dict[str, tuple[int, int]]:
    """What Prometheus' movement counters say net of their ``_retracted`` twins: kind -> (count, cents)."""
    out: dict[str, tuple[int, int]] = {}
    for d in done:
        for sign, movements in ((1, d.added), (-1, d.retracted)):
            for mv in movements:
                n, cents = out.get(mv.kind, (0, 0))
                out[mv.kind] = (n + sign, cents + sign * abs(mv.delta_cents))
    return {k: v for k, v in out.items() if v != (0, 0)}


def _book_net(book: RevenueBook) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for mv in book.movements:
        n, cents = out.get(mv.kind, (0, 0))
        out[mv.kind] = (n + 1, cents + abs(mv.delta_cents))
    return out


def test_a_statement_of_another_subscription_arriving_minutes_late_is_booked_in_event_order() -> None:
    """QA pass 9 H1, kappa: its add-on (k2, 10:40, +100) is read before its main plan (k1, 10:20,
    50), whose user partition is read later: 20 minutes, well inside the allowed lateness, so the
    account's watermark has passed neither. The figures were new 100 at 10:40 and k1 dropped as
    late for good (MRR 100); they are now those of ``churnwatch report``: new 50 at 10:20, expansion
    100 at 10:40, MRR 150, the movement booked first retracted (as Prometheus counts it)."""
    t = START_MS + 10 * 3_600_000
    k2 = _statement("k2", t + 40 * 60_000, "kappa", "active", "Addon", 10_000, 0, 0)
    k1 = _statement("k1", t + 20 * 60_000, "kappa", "active", "Pro", 5_000, 1, 0)
    redis, hold = _Redis(), {0: t - 6 * 3_600_000}  # the watermark: the allowed lateness behind
    for offset, c in enumerate((k2, k1)):
        c.offset = offset
        redis.cycle([c], {0: offset}, hold)
    book = RevenueBook("day")
    for c in (k1, k2):
        book.update(c.event)
    assert [(m.kind, m.delta_cents) for m in book.movements] == [("new", 5_000), ("expansion", 10_000)]
    assert Ledger.from_totals("day", redis.counters["day"]).get(START_MS, START_MS + DAY_MS) == book.get(START_MS, START_MS + DAY_MS)
    assert sum(d.late for d in redis.done) == 0
    assert _net(redis.done) == {"new": (1, 5_000), "expansion": (1, 10_000)}
    assert [(m.kind, m.delta_cents) for m in redis.done[1].retracted] == [("new", 10_000)]
    state = AccountState.from_bytes(redis.states["kappa"])
    assert state.mrr_cents() == 15_000 and state.get().plans == ("Addon", "Pro")
    _tick_until(redis, START_MS + 2 * DAY_MS, release=True)  # the watermark passes both: nothing moves again
    assert _net(redis.done) == {"new": (1, 5_000), "expansion": (1, 10_000)} and redis.held == {}
    assert redis.sides["kappa"] == redis.states["kappa"]


def test_an_account_an_earlier_version_left_short_gets_state_and_counters_agreeing() -> None:
    """Review 16 M-1, kappa upgraded: the earlier version (arrival order) booked k2 (10:40, new
    100) and dropped k1 (10:20, 50) as late from its revenue state and counters, while its alert
    side held both for the watermark. The first statement after the upgrade (k3, 11:00, +20) made
    the state 170.00 (the replay of both) and the counters 120.00 (only the replay's difference),
    for good. The step from the stored state to the replay is booked once: both say 170.00."""
    t = START_MS + 10 * 3_600_000
    k2 = _statement("k2", t + 40 * 60_000, "kappa", "active", "Addon", 10_000, 0, 0)
    k1 = _statement("k1", t + 20 * 60_000, "kappa", "active", "Pro", 5_000, 1, 0)
    k3 = _statement("k3", t + 60 * 60_000, "kappa", "active", "Extra", 2_000, 0, 1)
    redis, hold = _Redis(), {0: t - 6 * 3_600_000}
    k2.offset, k1.offset, k3.offset = 0, 1, 2
    redis.cycle([k2], {0: 0}, hold)
    state, counters = redis.states["kappa"], {p: {s: dict(c) for s, c in v.items()} for p, v in redis.counters.items()}
    redis.cycle([k1], {0: 1}, hold)  # the alert side holds k1 ...
    redis.states["kappa"], redis.counters = state, counters  # ... which the earlier version left out
    redis.cycle([k3], {0: 2}, hold)

    def agree() -> int:
        end = Ledger.from_totals("day", redis.counters["day"]).get(START_MS, START_MS + DAY_MS)[0].end_mrr_cents
        assert AccountState.from_bytes(redis.states["kappa"]).mrr_cents() == end
        return end

    assert agree() == 17_000
    _tick_until(redis, START_MS + 2 * DAY_MS, release=True)
    assert agree() == 17_000 and redis.held == {}
    later = _statement("k1", t + 90 * 60_000, "kappa", "cancelled", "Pro", 0, 1, 1)
    later.offset = 3
    redis.cycle([later], {0: 3}, hold)  # the bridge is booked once, not again
    assert agree() == 12_000


def _accounts_of_several_subscriptions(seed: int, accounts: int = 30, days: int = 10) -> list[Event]:
    """Accounts of 2-3 subscriptions (a main plan and add-ons, each under its own user), each stated
    1-5 times at whole hours within ``days``: trials, plans paid, failed payments, cancellations,
    statements of two subscriptions of one account at one instant among them."""
    from models.subscription import Subscription

    rng = random.Random(seed)
    events = []
    for a in range(accounts):
        for u in range(rng.randint(2, 3)):
            user, t = f"a{a}u{u}", START_MS + rng.randrange(days * 24) * 3_600_000
            for k in range(rng.randint(1, 5)):
                status = rng.choice(("trial", "active", "active", "past_due", "cancelled"))
                mrr = 0 if status == "cancelled" else rng.choice((1_000, 2_500, 4_900))
                events.append(Event(user, t, "subscription", f"{user}-{k}", 0.0, f"acct{a}", Subscription(status, "Pro", mrr)))
                t += rng.choice((1, 2, 5, 24)) * 3_600_000
    return events


def test_any_arrival_order_within_the_watermark_gives_the_reports_figures() -> None:
    """Property: accounts whose subscriptions' users two producing partitions hold (an add-on is
    sent under another user), each partition's copies in its own order, interleaved at random and
    cut into cycles at random: the period counters, cohorts, states and the movement counters net
    of their retractions are those of ``churnwatch report`` on the same events, and no statement
    is late. Before, a statement read after a later one of its account was dropped from the live
    figures for good (46-56 of the 231 statements, by seed)."""
    events = _accounts_of_several_subscriptions(3)
    book = RevenueBook("day")
    for ev in sorted(events, key=EVENT_ORDER):
        book.update(ev)
    end = START_MS + 20 * DAY_MS
    by_origin: dict[int, list[AccountCopy]] = {0: [], 1: []}
    for ev in sorted(events, key=EVENT_ORDER):
        q = int(ev.user_id[-1]) % 2
        by_origin[q].append(AccountCopy(0, -1, ev, origin=q, origin_offset=len(by_origin[q])))
    for seed in range(4):
        rng = random.Random(seed)
        queues = {q: list(cs) for q, cs in by_origin.items()}
        arrival: list[AccountCopy] = []
        while queues[0] or queues[1]:
            q = rng.choice([q for q in queues if queues[q]])
            arrival += [queues[q].pop(0) for _ in range(min(len(queues[q]), rng.randint(1, 12)))]
        latest: dict[str, int] = {}
        behind = 0  # statements that reach their account after a later one of it
        for c in arrival:
            behind += latest.get(c.account, c.ts_ms) > c.ts_ms
            latest[c.account] = max(latest.get(c.account, c.ts_ms), c.ts_ms)
        assert behind >= 20, (seed, behind)
        got = _deliver(_random_batches(rng, arrival, 8))
        assert sum(d.late for d in got.done) == 0, seed
        assert Ledger.from_totals("day", got.counters["day"]).get(START_MS, end) == book.get(START_MS, end), seed
        assert Cohorts.from_counters(got.cohorts).get(end) == book.cohorts.get(end), seed
        assert _net(got.done) == _book_net(book), seed
        assert {a: AccountState.from_bytes(b).get() for a, b in got.states.items()} == \
            {a: st.get() for a, st in book.accounts.items()}, seed
        assert got.held == {} and got.sides == got.states, seed


def test_late_statements_are_counted_and_logged_once_per_cycle(caplog: pytest.LogCaptureFixture) -> None:
    """A statement older than its account's latest change (a user partition that lagged behind
    another) is not applied: the live MRR figures miss it and stay so. That was counted in
    ``churnwatch_subscription_late_total`` only; now one WARNING per cycle says how many and
    where, not one per statement."""
    from models.subscription import Subscription

    def statement(user: str, day: int, account: str, offset: int) -> AccountCopy:
        sub = Subscription("active", "Pro", 4900)
        return AccountCopy(0, offset, Event(user, START_MS + day * DAY_MS, "subscription", f"{user}{day}", 0.0, account, sub))

    redis = _Redis()
    redis.cycle([statement("a1", 10, "acme", 0), statement("b1", 10, "beta", 1)], {0: 1})
    with caplog.at_level("WARNING", logger="streams.worker.revenue"):
        redis.cycle([statement("a2", 5, "acme", 2), statement("a3", 6, "acme", 3), statement("b2", 5, "beta", 4)], {0: 4})
    assert redis.done[-1].late == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("3 subscription statement(s) of 2 account(s) (acme, beta)"), warnings[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="streams.worker.revenue"):
        redis.cycle([statement("a4", 20, "acme", 5)], {0: 5})
    assert redis.done[-1].late == 0 and not caplog.records, "a cycle in order says nothing"


# -- through the real broker, Redis and worker ----------------------------------------------------


@pytest.fixture()
def one_partition(kafka_bootstrap: str, unique_name: str) -> dict[str, str]:
    names = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}",
             "group": f"g-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=names["events"],
                           topic_alerts=names["alerts"], topic_dlq=names["dlq"], partitions=1))
    return names


@pytest.fixture()
def live_worker(kafka_bootstrap: str, redis_url: str, one_partition: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(kafka_bootstrap, redis_url, one_partition, tmp_path / "worker.log",
               env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "500",
                    "CHURNWATCH_PARTITIONS": "1"}).start()
    yield w
    assert w.stop() == 0, w.output()[-3000:]


@pytest.mark.integration
def test_live_figures_equal_the_report_after_streaming(
    kafka_bootstrap: str, redis_url: str, one_partition: dict[str, str], live_worker: Worker,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """One partition: the copies are read in the order they were made, so every statement reaches
    its account in time order and the live figures must equal the report's, to the cent."""
    from streams.cli import main

    days = 75
    sim = generate_accounts(3, 40, START_MS, days)
    topic = one_partition["events"]
    last = publish_events(kafka_bootstrap, topic, sim.events)
    wait_progress(redis_url, topic, last, timeout_s=180, workers=[live_worker])
    account_barrier(kafka_bootstrap, redis_url, topic, 1, 1, START_MS + days * DAY_MS, workers=[live_worker])

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    for period in ("month", "week"):
        book = RevenueBook(period)  # type: ignore[arg-type]
        for ev in sorted(sim.events, key=EVENT_ORDER):
            book.update(ev)
        want = [figures_dict(f) for f in book.get(START_MS, START_MS + days * DAY_MS)]
        assert main(["churn-rate", "--period", period, "--from", "2026-01-01", "--to", "2026-03-17", "--json"]) == 0
        got = orjson.loads(capsys.readouterr().out)["revenue"]
        assert got["period"] == period and got["periods"] == want
        assert got["cohorts"] == [cohort_dict(c) for c in book.cohorts.get(START_MS + 75 * DAY_MS)] and got["cohorts"]
    assert sum(int(p["churned_cents"]) for p in want) > 0 and any(int(p["contraction_cents"]) for p in want)

    assert main(["churn-rate"]) == 0  # the text form: the current month of stream time
    text = capsys.readouterr().out
    assert "month from 2026-03-01: MRR" in text and "gross MRR churn" in text
    # --to alone at the default --from (the stream time's month starts 2026-03-01): an empty window is
    # refused in one line, not printed as a churn line without a period line (QA21 F9)
    assert main(["churn-rate", "--to", "2026-03-01"]) == 2
    err = capsys.readouterr().err
    assert "--to 2026-03-01 is not after 2026-03-01, the start of the month of the stream time" in err
    assert main(["churn-rate", "--to", "2026-03-02", "--period", "day"]) == 2  # the stream time's day is later
    assert main(["churn-rate", "--to", "2026-03-20"]) == 0
    text = capsys.readouterr().out
    assert "month from 2026-03-01: MRR" in text
    # QA21 F10: the month is counted whole, and the note says so (report's note, one function)
    assert "note: the figures are whole months, 2026-03-01 to 2026-04-01 (exclusive): --to 2026-03-20 falls inside" in text


@pytest.mark.integration
def test_statements_of_one_account_read_out_of_order_give_the_reports_figures_live(
    kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """QA pass 9 H1 through the real broker, Redis and worker: kappa's add-on (k3, 10:40) is read
    and applied before its main plan (k1, 10:20, sent 20 minutes late, another user partition).
    Live: ``churn-rate``, ``accounts show`` and the movement counters net of their retractions
    are ``churnwatch report``'s (new 50 at 10:20, expansion 100 at 10:40, MRR 150), nothing late;
    before, k1 was dropped for good (new 100, MRR 100, one late). Then QA pass 9 M3: a statement
    more than the billing lateness (``CHURNWATCH_BILLING_LATENESS_MS``) behind its user partition
    goes to the DLQ as ``late`` and is counted in ``churnwatch_subscription_late_total`` (before:
    only among all late events)."""
    from models.subscription import Subscription
    from streams.cli import main
    from tests.harness import metric, partition_of, wait_for

    names = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}",
             "group": f"g-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=names["events"],
                           topic_alerts=names["alerts"], topic_dlq=names["dlq"], partitions=2))
    assert (partition_of("k1", 2), partition_of("k3", 2), partition_of("k5", 2)) == (1, 0, 0), "two user partitions"
    t = START_MS + 10 * 3_600_000

    def statement(user: str, minutes: int, plan: str, mrr: int) -> Event:
        return Event(user, t + minutes * 60_000, "subscription", f"{user}-{minutes}", 0.0, "kappa", Subscription("active", plan, mrr))

    k3, k1 = statement("k3", 40, "Addon", 10_000), statement("k1", 20, "Pro", 5_000)
    worker = Worker(kafka_bootstrap, redis_url, names, tmp_path / "worker.log",
                    env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_PARTITIONS": "2"}).start()
    try:
        publish_events(kafka_bootstrap, names["events"], [k3])
        wait_for("k3 applied to kappa", lambda: metric(worker, "churnwatch_subscriptions_applied_total") >= 1, workers=[worker])
        publish_events(kafka_bootstrap, names["events"], [k1])
        wait_for("k1 applied to kappa", lambda: metric(worker, "churnwatch_subscriptions_applied_total") >= 2, workers=[worker])
        net = {kind: (metric(worker, "churnwatch_mrr_movements_total", f'kind="{kind}"')
                      - metric(worker, "churnwatch_mrr_movements_retracted_total", f'kind="{kind}"'),
                      metric(worker, "churnwatch_mrr_movement_cents_total", f'kind="{kind}"')
                      - metric(worker, "churnwatch_mrr_movement_cents_retracted_total", f'kind="{kind}"'))
               for kind in ("new", "expansion")}
        late = metric(worker, "churnwatch_subscription_late_total")

        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
        monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", names["events"])
        monkeypatch.setenv("CHURNWATCH_TOPIC_ACCOUNTS", f"acc-{unique_name}")
        book = RevenueBook("day")
        for ev in (k1, k3):
            book.update(ev)
        capsys.readouterr()
        assert main(["churn-rate", "--period", "day", "--from", "2026-01-01", "--to", "2026-01-02", "--json"]) == 0
        got = orjson.loads(capsys.readouterr().out)["revenue"]["periods"]
        assert got == [figures_dict(f) for f in book.get(START_MS, START_MS + DAY_MS)]
        assert (got[0]["new"], got[0]["expansion"], got[0]["end_mrr"]) == ("50.00", "100.00", "150.00")
        assert main(["accounts", "show", "kappa", "--json"]) == 0
        shown = orjson.loads(capsys.readouterr().out)
        assert shown["mrr"] == 150.0 and sorted(s["plan"] for s in shown["subscriptions"]) == ["Addon", "Pro"], shown
        assert net == {"new": (1, 5_000), "expansion": (1, 10_000)} and late == 0, (net, late)

        # M3: 4 days behind both user partitions' stream time (beyond the billing lateness, 3 days): dead-lettered
        publish_events(kafka_bootstrap, names["events"], [statement("k5", -4 * 24 * 60, "Extra", 2_000)])
        wait_for("the late statement counted", lambda: metric(worker, "churnwatch_subscription_late_total") >= 1,
                 workers=[worker])
        assert metric(worker, "churnwatch_events_rejected_total", 'reason="late"') == 1
        assert "1 subscription statement(s) of 1 account(s) (kappa) went to the DLQ as late" in worker.output()
    finally:
        assert worker.stop() == 0, worker.output()[-3000:]


def test_decode_routes_subscriptions_and_diverts_copies() -> None:
    """Originals are scored and copied (a user without account_id is its own account); copies go
    to the account phase, never to the users or the clock; a broken member copy goes to the DLQ."""

    from models.account_health import Member
    from streams.publisher import event_value
    from streams.worker.clock import TopicClock
    from streams.worker.codec import Decoder
    from streams.worker.phases import decode_batch
    from streams.worker.revenue import member_copy
    from models.subscription import Subscription


    solo = Event("solo", START_MS, "subscription", "s1", 0.0, "", Subscription("active", "Pro", 4999))
    acme = Event("u1", START_MS + 1, "view", "v1", 0.0, "acme")
    key, value, headers = account_copy(solo, 0, 0, event_value(solo))
    mkey, mvalue, mheaders = member_copy("acme", START_MS, Member(1, 2, 1, 0.0, 1.0, 1.0), 0, 1)
    records = [Rec(0, b"solo", event_value(solo)), Rec(1, b"u1", event_value(acme)), Rec(2, key, value, headers=headers),
               Rec(3, mkey, mvalue, headers=mheaders), Rec(4, mkey, b"{}", headers=mheaders)]
    clock = TopicClock(3_600_000, 60_000, "event")
    clock.assign(0, None, START_MS)
    out = decode_batch({0: records}, clock.partitions, Decoder(), START_MS + 1_000, topic="t", max_dlq_value_bytes=1000)
    assert set(out.users) == {"solo", "u1"} and out.member_of == {"u1": ("acme", 0, 1)}
    assert [(k, h) for k, _, h in out.account_copies] == [(b"solo", [("churnwatch-account", b"0:0")])]
    assert [type(c).__name__ for c in out.accounts] == ["AccountCopy", "MemberCopy"] and out.rejected == {"malformed_json": 1}


@pytest.mark.integration
def test_a_statement_in_another_currency_is_dead_lettered_by_the_worker(
    kafka_bootstrap: str, redis_url: str, one_partition: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """QA9 M1: with ``CHURNWATCH_CURRENCY=USD``, a statement or purchase stating EUR or JPY goes to
    the DLQ naming both currencies, and only the USD statement is in the live MRR (40 EUR + 5,000
    JPY + 49.99 USD read "MRR 5089.99" before)."""
    from streams.cli import main
    from tests.harness import read_topic

    w = Worker(kafka_bootstrap, redis_url, one_partition, tmp_path / "worker.log",
               env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_PARTITIONS": "1", "CHURNWATCH_CURRENCY": "usd"}).start()
    try:
        ts = "2026-11-02T00:00:00Z"
        sub = {"type": "subscription", "ts": ts, "status": "active", "plan": "Pro"}
        values = [
            {**sub, "user_id": "x1", "account_id": "ax1", "mrr": 40, "currency": "EUR"},
            {**sub, "user_id": "x2", "account_id": "ax2", "mrr": 5000, "currency": "JPY"},
            {"user_id": "x3", "type": "purchase", "ts": ts, "amount": 12.5, "currency": "eur"},
            {**sub, "user_id": "x4", "account_id": "ax4", "mrr": 49.99, "currency": "Usd"},
            {"user_id": "x5", "type": "view", "ts": ts, "currency": "JPY"},  # no amount: the field is ignored
        ]
        topic = one_partition["events"]
        last = publish_events(kafka_bootstrap, topic, [], extra=[(v["user_id"].encode(), orjson.dumps(v)) for v in values])
        wait_progress(redis_url, topic, last, workers=[w])
        account_barrier(kafka_bootstrap, redis_url, topic, 1, 1, 1_793_577_600_000, workers=[w])
        dlq = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, one_partition["dlq"], 1)]
    finally:
        assert w.stop() == 0, w.output()[-3000:]
    assert [(d["reason"], d["detail"]) for d in dlq] == [
        ("bad_subscription", "currency EUR is not the deployment currency USD (CHURNWATCH_CURRENCY): convert amounts to USD before sending"),
        ("bad_subscription", "currency JPY is not the deployment currency USD (CHURNWATCH_CURRENCY): convert amounts to USD before sending"),
        ("bad_amount", "currency EUR is not the deployment currency USD (CHURNWATCH_CURRENCY): convert amounts to USD before sending"),
    ]
    assert [orjson.loads(d["value"])["user_id"] for d in dlq] == ["x1", "x2", "x3"], "the original bytes, to mend and resend"
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    monkeypatch.setenv("CHURNWATCH_CURRENCY", "USD")
    assert main(["churn-rate", "--period", "month", "--from", "2026-11-01", "--to", "2026-12-01", "--json"]) == 0
    revenue = orjson.loads(capsys.readouterr().out)["revenue"]
    assert revenue["currency"] == "USD" and [(p["new"], p["end_mrr"]) for p in revenue["periods"]] == [("49.99", "49.99")]
    assert main(["churn-rate", "--period", "month", "--from", "2026-11-01", "--to", "2026-12-01"]) == 0
    text = capsys.readouterr().out
    assert "month from 2026-11-01 (USD): MRR 0.00 -> 49.99" in text
    # QA9 L6 said what the purchases figure is; QA16 F10: with no purchase it is left out, not "0.00"
    assert "purchases of churned users" not in text and "users churned = " in text


@pytest.mark.integration
def test_a_nightly_billing_export_reaches_the_live_figures_as_the_report_books_it(
    kafka_bootstrap: str, redis_url: str, one_partition: dict[str, str], live_worker: Worker,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Day 3's billing statements are exported at noon of day 4, 15-27 h behind the user
    partition's stream time (allowed lateness 6 h). Before, all four went to the DLQ as ``late``
    and the live figures missed a day of movements for good. Now (within
    ``CHURNWATCH_BILLING_LATENESS_MS``, 3 days) acme's upgrade, beta's cancellation and delta's first
    plan are each their account's newest change: ``churn-rate --json`` and ``/api/v1/churn`` give
    ``churnwatch report``'s figures over the same events, beta's ``account_churned`` goes out, and
    ``churnwatch_subscription_applied_late_total`` counts 3. Gamma's cancellation (20:00 of day 3)
    would rewrite its past (its add-on, 02:00 of day 4, has settled): counted late, not applied.
    The export published again changes no figure and no count but gamma's late one."""
    from starlette.testclient import TestClient

    from streams.cli import main
    from streams.console.app import create_app
    from streams.worker.keys import bucket_of
    from tests.harness import metric, read_topic, redis_client, wait_for

    d3 = START_MS + 3 * DAY_MS
    hour = 3_600_000

    def sub(user: str, ts_ms: int, account: str, status: str = "active", plan: str = "Pro", mrr: int = 4_900) -> Event:
        from models.subscription import Subscription

        return Event(user, ts_ms, "subscription", f"{user}@{ts_ms}", 0.0, account, Subscription(status, plan, mrr))

    views = [Event("v1", START_MS + k * 2 * hour, "view", f"v{k}", 0.0, "") for k in range(0, 3 * 12 + 19)]  # to day 4 12:00
    on_time = [sub("a1", START_MS, "acme", mrr=10_000), sub("b1", START_MS, "beta", mrr=5_000),
               sub("c1", START_MS, "gamma", mrr=20_000), sub("c2", d3 + 26 * hour, "gamma", plan="Addon", mrr=3_000)]
    export = [sub("a1", d3 + 9 * hour, "acme", plan="Business", mrr=15_000), sub("b1", d3 + 15 * hour, "beta", "cancelled", mrr=0),
              sub("d1", d3 + 18 * hour, "delta", mrr=4_000), sub("c1", d3 + 20 * hour, "gamma", "cancelled", mrr=0)]
    topic = one_partition["events"]
    last = publish_events(kafka_bootstrap, topic, sorted(on_time + views, key=EVENT_ORDER))
    wait_progress(redis_url, topic, last, workers=[live_worker])
    client = redis_client(redis_url)
    aside = f"cw:{{{bucket_of('gamma', 64)}}}:aside"

    def gamma_settled() -> bool:
        side = client.hget(aside, "gamma")
        return client.hget(aside, "gamma|held") is None and side is not None and AccountState.from_bytes(side).mrr_cents() == 23_000

    wait_for("gamma's add-on settled (the watermark passed it)", gamma_settled, workers=[live_worker])

    def read_back() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        capsys.readouterr()
        assert main(["churn-rate", "--period", "day", "--from", "2026-01-01", "--to", "2026-01-06", "--json"]) == 0
        periods = orjson.loads(capsys.readouterr().out)["revenue"]["periods"]
        with TestClient(create_app(Settings(redis_url=redis_url, topic_events=topic, kafka_bootstrap_servers=kafka_bootstrap))) as c:
            api = c.get("/api/v1/churn", params={"revenue_period": "day"}).json()["revenue"]["periods"]
        return periods, api

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    last = publish_events(kafka_bootstrap, topic, export)
    wait_progress(redis_url, topic, last, workers=[live_worker])
    wait_for("the export reached its accounts", lambda: metric(live_worker, "churnwatch_subscription_applied_late_total") >= 3
             and metric(live_worker, "churnwatch_subscription_late_total") >= 1, workers=[live_worker])
    book = RevenueBook("day")
    for ev in sorted(on_time + export[:3], key=EVENT_ORDER):  # gamma's cancellation: late, as counted
        book.update(ev)
    want = [figures_dict(f) for f in book.get(START_MS, START_MS + 5 * DAY_MS)]
    periods, api = read_back()
    assert periods == want
    assert (periods[3]["expansion"], periods[3]["churned"], periods[3]["new"]) == ("50.00", "50.00", "40.00"), periods[3]
    assert api[-len(want):] == want and api[-1]["period_start"].startswith("2026-01-05"), api[-1]
    assert (metric(live_worker, "churnwatch_subscription_applied_late_total"), metric(live_worker, "churnwatch_subscription_late_total"),
            metric(live_worker, "churnwatch_events_rejected_total", 'reason="late"')) == (3, 1, 0)
    alerts = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, one_partition["alerts"], 1)]
    assert [a["kind"] for a in alerts if a.get("account_id") == "beta"] == ["account_churned"], alerts

    last = publish_events(kafka_bootstrap, topic, export)  # a relay delivering again, `publish` run twice
    wait_progress(redis_url, topic, last, workers=[live_worker])
    wait_for("the re-sent export read", lambda: metric(live_worker, "churnwatch_subscription_late_total") >= 2, workers=[live_worker])
    assert read_back() == (periods, api)
    assert metric(live_worker, "churnwatch_subscription_applied_late_total") == 3
    client.close()
