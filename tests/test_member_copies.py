"""Member copies at fixed points of event time: the same copies, and the same account alerts,
however the users' events are cut into cycles (streams/worker/members.py, docs/REVENUE.md).

Pure and fast: the producing side is ``models.engine.advance`` per cycle as the worker runs it
(up to the partition's review clock) with ``member_versions`` beside it; the account side is the
account phase (``streams.worker.revenue.advance_accounts``) fed with what each producing cycle
made, released with the watermark of its marks floored to the period (``release_ms``).
"""

from __future__ import annotations

import random

from models.engine import Turn, advance
from models.events import EVENT_ORDER, Event
from models.model import load_model
from models.state import UserState
from streams.offline.simulate_accounts import generate_accounts
from streams.worker.clock import NEVER
from streams.worker.members import member_versions, turn_copies
from streams.worker.revenue import AccountCopy, MemberCopy, _merge_versions, copy_said, is_turn_copy, parse_member_copy
from streams.worker.watermark import PERIOD_MS, mark_of, release_ms, watermark_ms
from tests.test_revenue_live import _Redis, _tick_until

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
LATENESS_MS = (0, 6 * 3_600_000)  # by seed: none (a partition's copies of an hour come while it runs), the default
MODEL = load_model(None)
EVENTS = sorted(generate_accounts(3, 8, START_MS, 120).events, key=EVENT_ORDER)
END_MS = START_MS + 200 * DAY_MS


def _produce(seed: int, events: list[Event] = EVENTS) -> list[tuple[int, list[MemberCopy | AccountCopy]]]:
    """One producing partition reading ``events`` in cycles of random size (seed 0: 1 to 3 events, as
    live; 1: 500, a backlog; others: mixed): per cycle, its mark (the lateness cutoff before it) and the copies it made, each
    user advanced to the partition's review clock (the users with a due review too, at random), with
    the turn copies of its alert's turns in silence (``streams.worker.members.turn_copies``).
    Even seeds allow no lateness: the watermark then passes an hour's first copy while the hour
    runs, which is what the period's floor (``release_ms``) is for."""
    rng, lateness = random.Random(seed), LATENESS_MS[seed % 2]
    states: dict[str, UserState | None] = {}
    out: list[tuple[int, list[MemberCopy | AccountCopy]]] = []
    stream_ms, i, offset = NEVER, 0, 0
    while i < len(events):
        batch = events[i:i + (rng.randint(1, 3) if seed == 0 else 500 if seed == 1 else rng.choice((1, 2, 5, 40, 300)))]
        i += len(batch)
        mark = mark_of(stream_ms - lateness if stream_ms != NEVER else NEVER)
        stream_ms = max(stream_ms, batch[-1].ts_ms)
        until = stream_ms - lateness  # the review clock: later events are never earlier (in order)
        by_user: dict[str, list[Event]] = {}
        for ev in batch:
            by_user.setdefault(ev.user_id, []).append(ev)
        made: list[MemberCopy | AccountCopy] = []
        for ev in batch:
            if ev.subscription is not None:
                made.append(AccountCopy(0, 0, ev, 0, offset))
            offset += 1
        for uid, evs in by_user.items():
            if not any(ev.account_id for ev in evs):
                continue  # a user naming no account is not a member (the worker's ``Decoded.member_of``)
            for ts_ms, member in member_versions(uid, states.get(uid), evs, MODEL):
                made.append(MemberCopy(0, 0, evs[-1].account, ts_ms, member, 0, offset - 1))
        turns: list[Turn] = []
        for uid in (by_user if rng.random() < 0.5 else {*by_user, *states}):
            states[uid] = advance(uid, states.get(uid), by_user.get(uid, []), until, MODEL, turns=turns).state
        for copy in turn_copies(turns, [0] * len(turns), {}, {0: offset - 1}, MODEL):
            made.append(MemberCopy(0, 0, *parse_member_copy(copy[1]), 0, offset - 1, turn=is_turn_copy(copy[2]),  # type: ignore[misc]
                                   said=copy_said(copy[1])))
        out.append((mark, made))
    return out


def _account_side(produced: list[tuple[int, list[MemberCopy | AccountCopy]]], seed: int) -> _Redis:
    """The account partition reads what was produced, several producing cycles at a time, with the
    watermark their marks give (a heartbeat with the cutoff after them now and then), floored to the
    period; due reviews swept below it; at the end a heartbeat past everything."""
    rng, redis, offset, mark = random.Random(seed), _Redis(), 0, NEVER
    i = 0
    while i < len(produced):
        group = produced[i:i + rng.randint(1, 4)]
        i += len(group)
        copies = [c for _, made in group for c in made]
        for c in copies:
            c.offset, offset = offset, offset + 1
        mark = max(mark, group[-1][0])
        if rng.random() < 0.3 and i < len(produced):
            mark = max(mark, produced[i][0])  # the heartbeat after them: the next cycle's mark
        release = release_ms(watermark_ms({0: mark}, 1, 7 * DAY_MS))
        if copies:
            redis.cycle(copies, {0: offset - 1}, {0: release})
        _tick_until(redis, release, release=True)
    redis.cycle([], {}, {0: END_MS})
    _tick_until(redis, END_MS, release=True)
    return redis


def _final_copies(produced: list[tuple[int, list[MemberCopy | AccountCopy]]]) -> list[tuple[object, ...]]:
    merged = _merge_versions([c for _, made in produced for c in made if isinstance(c, MemberCopy) and not c.turn])
    return sorted((c.member.key, c.ts_ms, c.member.to_bytes()) for c in merged if isinstance(c, MemberCopy))


def test_member_copies_and_account_alerts_do_not_depend_on_the_cycles() -> None:
    """Property: the same events cut into cycles of 1 to 500 events at random (live, a backlog, a
    restart), the account side reading them in groups with heartbeats at random: the same member
    copies once merged (one per user and active hour: state as of its last event there, time of
    its first), the same account alerts (ids, kinds, times, risks, reasons) and the same account states."""
    results = []
    for seed in range(4):
        produced = _produce(seed)
        redis = _account_side(produced, seed)
        assert redis.held == {}, "nothing left held after the last heartbeat"
        versions = sum(isinstance(c, MemberCopy) for _, made in produced for c in made)
        alerts = sorted((a["account_id"], a["event_time_ms"], a["alert_id"], a["kind"], a["risk"], tuple(a["reasons"]))  # type: ignore[arg-type]
                        for a in redis.alerts)
        results.append((versions, _final_copies(produced), alerts, redis.sides, redis.extras, redis.members))
    assert len({r[0] for r in results}) > 1, "the cuts made different numbers of versions"
    for r in results[1:]:
        assert r[1] == results[0][1]
        assert r[2] == results[0][2]
        assert r[3:] == results[0][3:]
    copies, alerts = results[0][1], results[0][2]
    periods = {(ev.user_id, ev.ts_ms // PERIOD_MS) for ev in EVENTS if ev.subscription is None}
    assert len(copies) == len(periods), "one copy per user and active hour"
    assert {a[3] for a in alerts} >= {"account_at_risk"}, alerts


def test_a_version_is_the_state_as_of_the_periods_last_event() -> None:
    """A user's events read in one call or hour by hour: each hour's copy is ``advance`` up to its
    last event, dated at its first (whole seconds)."""
    uid = EVENTS[0].user_id
    evs = [ev for ev in EVENTS if ev.user_id == uid][:60]
    at_once = member_versions(uid, None, evs, MODEL)
    state, one_by_one = None, []
    for ev in evs:
        one_by_one += member_versions(uid, state, [ev], MODEL)
        state = advance(uid, state, [ev], ev.ts_ms, MODEL).state
    last = {}
    for ts_ms, m in one_by_one:
        k = ts_ms // PERIOD_MS  # the copy's period: its last seen's, or a cancellation's (QA16 F11)
        first, _ = last.get(k, (ts_ms, m))
        last[k] = (min(first, ts_ms), m)
    assert [(ts, m) for ts, m in at_once] == [last[k] for k in sorted(last)]
    assert all(ts <= m.last_seen_s * 1000 and ts // PERIOD_MS == m.last_seen_s * 1000 // PERIOD_MS or m.stage == 4 for ts, m in at_once)


def test_versions_merge_into_one_copy_and_an_older_hour_read_behind_replaces_no_newer_member() -> None:
    """Two versions of one member's hour (the second a duplicate sent again, and a later one) make
    one copy: the latest content at the earliest time; a copy of an earlier hour that comes after
    the watermark passed it (behind) leaves the member's newer record as it is."""
    from models.account_health import Member, member_key

    hour = START_MS // PERIOD_MS * PERIOD_MS + 5 * PERIOD_MS
    def version(first_ms: int, seen_ms: int, act: float) -> MemberCopy:
        return MemberCopy(0, 0, "acme", first_ms, Member(member_key("u1"), seen_ms // 1000, 1, 0.0, act, act, "u1"), 0, seen_ms)

    early, late = version(hour + 60_000, hour + 120_000, 1.0), version(hour + 600_000, hour + 900_000, 2.0)
    merged = _merge_versions([late, early, early])
    assert len(merged) == 1 and merged[0].ts_ms == hour + 60_000 and merged[0].member == late.member
    redis = _Redis()
    for i, c in enumerate((early, late, early)):
        c.offset = i
    redis.cycle([early, late], {0: 1}, {0: release_ms(hour + 30 * 60_000)})
    assert redis.held and not redis.members, "the hour has not ended everywhere: held"
    redis.cycle([], {}, {0: release_ms(hour + PERIOD_MS + 1000)})
    _tick_until(redis, hour + PERIOD_MS + 1000, release=True)
    assert not redis.held and list(redis.members["acme"].values()) == [late.member.to_bytes()]
    older = version(hour - PERIOD_MS, hour - PERIOD_MS + 1000, 0.5)
    older.offset = 3
    redis.cycle([older], {0: 3}, {0: release_ms(hour + 2 * PERIOD_MS)})
    assert list(redis.members["acme"].values()) == [late.member.to_bytes()]
    assert redis.done[-1].behind == 1


def _by_definition(uid: str, state: UserState | None, evs: list[Event]) -> list[tuple[int, bytes]]:
    """A cycle's versions by their definition, apart from the step: ``advance`` from the stored
    state up to each hour's last event, hour by hour; the member's numbers from ``compute_signals``
    at its last seen second, the open alert's risk at its opening (what the compiled ``models.step.mark_versions`` must give)."""
    from models.account_health import Member, member_key
    from models.signals import compute_signals
    from models.vocabulary import CANCEL, IGNORE, SUBSCRIPTION

    out, st = [], state
    hours = sorted({ev.ts_ms // PERIOD_MS for ev in evs})
    for hour in hours:
        chunk = sorted((ev for ev in evs if ev.ts_ms // PERIOD_MS == hour), key=EVENT_ORDER)
        o = advance(uid, st, chunk, chunk[-1].ts_ms, MODEL)
        st = o.state
        roles = [MODEL.compiled.vocabulary.lookup(ev.type)[1] for ev in chunk]
        cancels = [ev.ts_ms for ev, role in zip(chunk, roles) if role == CANCEL]
        if not st.n_events or st.last_seen_s * 1000 // PERIOD_MS != hour and not (cancels and st.stage == 4):
            continue  # no activity this hour, and no cancellation leaving the user churned (QA16 F11: one the account hears of)
        if st.last_seen_s * 1000 // PERIOD_MS != hour:
            active = [min(cancels)]  # dated at the cancellation
        else:
            active = [ev.ts_ms for ev, role in zip(chunk, roles) if role not in (SUBSCRIPTION, CANCEL, IGNORE)]
        risk = 0.0
        if st.at_risk_since_s:  # the open alert's risk at its opening, not at the last review (QA21 F2)
            risk = max(st.alert_risk, 0.0001)
        sig = compute_signals(st, st.last_seen_s, MODEL)
        base = sig.act_28d / sig.trend_long if sig.trend_long > 0 else sig.act_28d
        member = Member(member_key(uid), st.last_seen_s, st.stage, risk, sig.act_28d, base, uid, sig.visit_gap_days)
        out.append((min(active) // 1000 * 1000 if active else st.last_seen_s * 1000, member.to_bytes()))
    return out


def test_the_steps_marks_give_the_versions_of_their_definition() -> None:
    """The worker takes a user's versions in its own step (``models.step.advance_stored`` with
    marks, up to the partition's review clock, with and without the console's weekly points, from
    the stored record): byte for byte the versions of a second ``advance`` per hour, whatever the
    cut into cycles and however far the clock lags the events."""
    from models.step import advance_stored
    from streams.worker.members import versions_of

    users = sorted({ev.user_id for ev in EVENTS})
    evs_of = {u: [ev for ev in EVENTS if ev.user_id == u] for u in users}
    compared = 0
    for seed in range(3):
        rng = random.Random(seed)
        for uid in users:
            evs, blob, i = evs_of[uid], None, 0
            while i < len(evs):
                cycle = evs[i:i + rng.choice((1, 2, 3, 7, 40))]
                i += len(cycle)
                until = max(ev.ts_ms for ev in cycle) - rng.choice((0, 3_600_000, 6 * 3_600_000, 3 * DAY_MS))
                state = UserState.from_bytes(blob) if blob else None
                marks: list = []  # type: ignore[type-arg]
                step = advance_stored(uid, blob, cycle, until, True, MODEL, seed != 1, -1, PERIOD_MS, marks)
                got = [(ts, m.to_bytes()) for ts, m in versions_of(uid, marks, cycle, MODEL)]
                assert got == _by_definition(uid, state, cycle), (seed, uid, i)
                compared += len(got)
                blob = step[2]
    assert compared > 1000


def _shop(customers: int = 12) -> list[Event]:
    """A shop's customers, each its own account (``account_id`` = the user id), ordering every 5 to
    12 days: a third stop for good (lapsers who never come back), a third come back 6-9 weeks
    after they stopped, the rest go on; and two customers sent without an account."""
    rng, out = random.Random(21), []
    for k in range(customers + 2):
        uid = f"c{k:02d}"
        account = uid if k < customers else ""
        every, t = rng.randint(5, 12), START_MS + rng.randint(0, 5) * DAY_MS
        stop = rng.randint(6, 9)
        for n in range(10):
            if n == stop and k % 3 != 2:
                if k % 3 == 0:
                    break  # gone for good
                t += rng.randint(42, 63) * DAY_MS  # back after a long silence
            t += every * DAY_MS + rng.randint(0, 5) * 3_600_000
            out += [Event(uid, t, "page_view", f"{uid}v{n}", 0.0, account),
                    Event(uid, t + 600_000, "purchase", f"{uid}p{n}", 25.0, account)]
    return sorted(out, key=EVENT_ORDER)


def test_a_one_user_account_is_at_risk_when_its_users_alert_opens_in_silence() -> None:
    """QA21 F2: an account that is its one user (a shop's customer sent with ``account_id`` = the user
    id) heard of its user's at-risk alert opened by a review in silence only with the user's next
    active hour (670 of 670 at one of the user's events, a median 2.1 days late; none for a customer
    who never came back), and quoted the user's risk at that hour ("risk 7%" on the day it came
    back). Property, over cuts into cycles as above: the account's alerts are the same whatever the
    cuts; each user at-risk alert opened in silence gives its account's ``account_at_risk`` at its
    own time, its first reason the user alert's, then the risk it opened at; every lapser is warned; customers sent without an
    account get no account."""
    events = _shop()
    results = []
    for seed in range(4):
        redis = _account_side(_produce(seed, events), seed)
        assert redis.held == {}, "nothing left held after the last heartbeat"
        results.append((sorted((a["account_id"], a["event_time_ms"], a["alert_id"], a["kind"], a["risk"], tuple(a["reasons"]))  # type: ignore[arg-type]
                               for a in redis.alerts), redis.sides, redis.extras, redis.members))
    for r in results[1:]:
        assert r == results[0]
    alerts, members = results[0][0], results[0][3]
    assert set(members) == {f"c{k:02d}" for k in range(12)}, "a user sent without an account has none"
    by_user: dict[str, list[Event]] = {}
    for ev in events:
        by_user.setdefault(ev.user_id, []).append(ev)
    opened = 0
    for uid in sorted(members):
        user = [a for a in advance(uid, None, by_user[uid], END_MS, MODEL).alerts if a.kind == "at_risk"]
        account = [a for a in alerts if a[0] == uid and a[3] == "account_at_risk"]
        seen = {ev.ts_ms for ev in by_user[uid]}
        for a in user:
            if a.event_time_ms in seen:
                continue  # opened at an event: told with that hour's copy, as before
            opened += 1
            at = [x for x in account if x[1] == a.event_time_ms]
            assert at, (uid, a.event_time_ms, account)
            assert at[0][5] == (a.scores.reasons[0], f"the only user {uid} at risk by its own alert (risk {100.0 * a.scores.risk:.0f}%)")
        if int(uid[1:]) % 3 == 0:  # a lapser, never back
            assert user and account, (uid, user, account)
    assert opened >= 4, opened
