"""The Redis state store against a real valkey-server: scripts, fences, progress, stats, expiry."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

import pytest
import redis as redis_lib

from models.engine import Alert
from models.scoring import Scores
from models.lifecycle import JUDGED
from models.state import STAGES, UserState
from streams.worker import store as store_mod
from streams.worker.keys import Keys, due_member, locate
from streams.settings import Settings
from streams.worker.store import (
    BucketRead,
    BucketWrite,
    ProgressWrite,
    StateWrite,
    Store,
    StoreMismatch,
    StoreReader,
    churn_summary,
    stats_delta,
    utc_day,
)

T = TypeVar("T")
TOPIC = "ev"
FIELD = f"{TOPIC}:3"
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01


def _settings(url: str, **kw: Any) -> Settings:
    return Settings(redis_url=url, buckets=kw.pop("buckets", 4), groups_per_bucket=kw.pop("groups", 8), **kw)


def with_store(url: str, fn: Callable[[Store], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        store = Store(_settings(url, **kw))
        await store.connect()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(main())


def _state(seen_s: int, stage: str = "active", at_risk: bool = False, due_s: int = 0, revenue: float = 0.0) -> UserState:
    st = UserState(first_seen_s=seen_s - 30 * DAY, last_seen_s=seen_s, n_events=5, active_days=3, act_7d=2.0)
    st.stage = STAGES.index(stage)
    st.stage_since_s = seen_s
    st.at_risk_since_s = seen_s if at_risk else 0
    st.next_review_s = due_s
    st.revenue = revenue
    return st


def _write_one(store: Store, user: str, st: UserState | None, *, expected: str = "", new: str = "", token: str = "t1",
               risk: float | None = None, stats: dict[str, float] | None = None, reach: float | None = None) -> Awaitable[list[Any]]:
    b, g = locate(user, store.buckets, store.groups)
    blob = None if st is None else st.to_bytes()
    due = 0 if st is None else st.next_review_s
    w = BucketWrite(b, [(FIELD, expected, new)], [StateWrite(g, user, blob, FIELD, due, risk, reach)], stats or {})
    return store.write([w], token)


def test_round_trip_state_offsets_and_due(redis_url: str) -> None:
    st = _state(T0, due_s=T0 + DAY)

    async def scenario(store: Store) -> tuple[Any, Any, Any]:
        assert await _write_one(store, "alice", st, new="41") == []
        b, g = locate("alice", store.buckets, store.groups)
        early, late = await store.read(
            [BucketRead(b, [(FIELD, T0)], [(g, "alice"), (g, "nobody")]), BucketRead(b, [(FIELD, T0 + DAY)], [])]
        )
        return early, late, await store.load_user("alice")

    early, late, loaded = with_store(redis_url, scenario)
    assert early.offsets == ["41"]
    assert early.blobs == [st.to_bytes(), None]
    assert early.dues == [[]], "not due yet at T0"
    assert [(d.user_id, d.due_s, d.blob) for d in late.dues[0]] == [("alice", T0 + DAY, st.to_bytes())]
    assert loaded == st


def test_the_read_leaves_out_the_due_entries_it_is_told_to_and_says_when_an_index_was_cut(redis_url: str) -> None:
    # The due entries a write in flight moved (streams.worker.pending.moved_dues): neither listed
    # nor their record read; a sweep cut at due_limit gives next 0 (sweep again), skipped or not.
    async def scenario(store: Store) -> list[Any]:
        b, g = locate("alice", store.buckets, store.groups)
        bob = next(u for u in (f"bob{i}" for i in range(100)) if locate(u, store.buckets, store.groups)[0] == b)
        gb = locate(bob, store.buckets, store.groups)[1]
        assert await _write_one(store, "alice", _state(T0, due_s=T0 + DAY), new="41") == []
        assert await _write_one(store, bob, _state(T0, due_s=T0 + 2 * DAY), expected="41", token="t2") == []
        sweep = [(FIELD, T0 + 2 * DAY)]
        reads = await store.read([BucketRead(b, sweep, []), BucketRead(b, sweep, [], [1, due_member(g, "alice")]),
                                  BucketRead(b, [(FIELD, T0 + DAY)], [], [1, due_member(gb, bob)])])
        store.due_limit = 1
        cut = await store.read([BucketRead(b, sweep, []), BucketRead(b, sweep, [], [1, due_member(g, "alice")])])
        return [[(d.user_id, d.due_s) for d in r.dues[0]] + [r.next_due[0]] for r in reads + cut] + [bob]

    *got, bob = with_store(redis_url, scenario)
    assert got == [[("alice", T0 + DAY), (bob, T0 + 2 * DAY), None], [(bob, T0 + 2 * DAY), None],
                   [("alice", T0 + DAY), T0 + 2 * DAY], [("alice", T0 + DAY), 0], [0]]


def test_the_progress_sent_with_the_states_lands_only_if_every_bucket_write_did(redis_url: str) -> None:
    """``Store.write`` with a ``ProgressWrite``: one round trip, the progress behind the states; a
    bucket fenced (another worker owns p) leaves the progress as it was, as a crash between the
    two writes would, and ``applied`` stays None (the caller then writes it on its own)."""
    users = ["alice", "bob", "carol", "dave", "erin", "fay"]
    placed = {locate(u, 4, 8)[0]: u for u in users}  # one user in each of several buckets

    def writes(expected: str, new: str) -> list[BucketWrite]:
        return [BucketWrite(b, [(FIELD, expected, new)], [StateWrite(locate(u, 4, 8)[1], u, _state(T0).to_bytes(), FIELD, 0, None)])
                for b, u in placed.items()]

    async def scenario(store: Store) -> tuple[Any, ...]:
        first = ProgressWrite(TOPIC, {3: (41, T0 * 1000)}, {3: "fp41"})
        assert await store.write(writes("", "41"), "c1", first) == []
        after_first = await store.read_resume(TOPIC)
        stale = writes("41", "50")
        stale[-1].parts[0] = (FIELD, "40", "50")  # one bucket's offset is not what this worker read
        second = ProgressWrite(TOPIC, {3: (50, T0 * 1000 + 9)}, {3: "fp50"})
        fenced = await store.write(stale, "c2", second)
        return first.applied, after_first, fenced, second.applied, await store.read_resume(TOPIC)

    applied, after_first, fenced, refused, after_second = with_store(redis_url, scenario)
    assert len(placed) > 1, "the test needs several buckets"
    assert applied == {3: (41, T0 * 1000)} and (after_first[3].offset, after_first[3].fingerprint) == (41, "fp41")
    assert [f.actual for f in fenced] == ["41"]
    assert refused is None and after_second == after_first, "a cycle with a fenced bucket writes no progress"


def test_the_fence_reads_and_marks_many_partitions_in_chunks(redis_url: str) -> None:
    """One bucket written for 1,200 partitions: the fence's HMGET (2,401 fields), its HSET (4,800
    arguments) and read_batch's HMGET go in chunks (fence.lua fence_call: unpack() has a C stack
    limit), and every offset lands where it belongs, then fences a stale write."""
    fields = [f"{TOPIC}:{p}" for p in range(1_200)]
    b, g = locate("erin", 4, 8)

    async def scenario(store: Store) -> tuple[Any, list[Any]]:
        parts = [(f, "", str(i)) for i, f in enumerate(fields)]
        w = BucketWrite(b, parts, [StateWrite(g, "erin", _state(T0).to_bytes(), fields[7], 0, None)])
        assert await store.write([w], "many") == []
        (read,) = await store.read([BucketRead(b, [(f, None) for f in fields], [(g, "erin")])])
        again = [(f, str(i) if i != 1_100 else "stale", str(i + 1)) for i, f in enumerate(fields)]
        fenced = await store.write([BucketWrite(b, again, [])], "many-2")
        return read, fenced

    read, fenced = with_store(redis_url, scenario)
    assert read.offsets == [str(i) for i in range(1_200)] and read.blobs == [_state(T0).to_bytes()]
    assert [(f.field, f.actual) for f in fenced] == [(fields[1_100], "1100")]


def test_fence_rejects_a_stale_expected_offset_and_writes_nothing(redis_url: str) -> None:
    async def scenario(store: Store) -> tuple[Any, Any, UserState | None]:
        await _write_one(store, "bob", _state(T0), new="100", token="a")
        stale = await _write_one(store, "bob", _state(T0 + DAY), expected="50", new="120", token="b")
        b, _ = locate("bob", store.buckets, store.groups)
        (after,) = await store.read([BucketRead(b, [(FIELD, None)], [])])
        return stale, after, await store.load_user("bob")

    fenced, after, loaded = with_store(redis_url, scenario)
    assert len(fenced) == 1 and fenced[0].field == FIELD and fenced[0].actual == "100"
    assert after.offsets == ["100"]
    assert loaded is not None and loaded.last_seen_s == T0, "the fenced write must not change the state"


def test_a_retried_write_is_applied_once(redis_url: str) -> None:
    async def scenario(store: Store) -> dict[str, float]:
        for _ in range(2):  # as if the first reply was lost and the cycle retried its write
            assert await _write_one(store, "carol", _state(T0), new="7", token="w1:1", stats={"users": 1}) == []
        return await store.stats()

    assert with_store(redis_url, scenario)["users"] == 1


def test_a_retried_sweep_write_is_applied_once_though_another_partition_wrote_the_bucket(redis_url: str) -> None:
    """A write that moves no offset (only due reviews) cannot be fenced by its offsets: its token
    must still be recognised after another writer (another worker's or lane's partition) wrote the
    same bucket in between, or the retry would add its stats twice."""
    async def scenario(store: Store) -> dict[str, float]:
        b, g = locate("dora", store.buckets, store.groups)
        other = "ev:9"

        def sweep_only() -> BucketWrite:
            return BucketWrite(b, [(FIELD, "", "")], [StateWrite(g, "dora", _state(T0).to_bytes(), FIELD, 0, None)],
                               {"stage:dormant": 1})

        assert await store.write([sweep_only()], "w1:7") == []
        assert await store.write([BucketWrite(b, [(other, "", "3")], [], {"users": 1})], "w2:1") == []
        assert await store.write([sweep_only()], "w1:7") == []  # the retry after a lost reply
        return await store.stats()

    stats = with_store(redis_url, scenario)
    assert stats["stage:dormant"] == 1 and stats["users"] == 1


@pytest.mark.parametrize("items_per_call", [1, 1_000])
def test_buckets_in_one_call_or_many_are_each_fenced_and_applied_alone(redis_url: str, items_per_call: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """lua/buckets.lua runs the per-bucket script for several buckets in one call: a fenced bucket
    refuses only its own write, whether the buckets share a call or not."""
    monkeypatch.setattr(store_mod, "BUCKET_CALL_ITEMS", items_per_call)
    monkeypatch.setattr(store_mod, "WRITE_CALL_ITEMS", items_per_call)
    users = {}
    for i in range(200):  # one user per bucket
        users.setdefault(locate(f"user-{i}", 4, 8)[0], f"user-{i}")

    def writes(expected: str, new: str, fenced_bucket: int = -1) -> list[BucketWrite]:
        out = []
        for b, user in sorted(users.items()):
            g = locate(user, 4, 8)[1]
            exp = "999" if b == fenced_bucket else expected
            out.append(BucketWrite(b, [(FIELD, exp, new)], [StateWrite(g, user, _state(T0 + int(new)).to_bytes(), FIELD, 0, None)]))
        return out

    async def scenario(store: Store) -> tuple[Any, Any, Any]:
        assert await store.write(writes("", "1"), "t1") == []
        fenced = await store.write(writes("1", "2", fenced_bucket=2), "t2")
        reads = await store.read([BucketRead(b, [(FIELD, None)], [(locate(u, 4, 8)[1], u)]) for b, u in sorted(users.items())])
        return fenced, reads, {u: await store.load_user(u) for u in users.values()}

    fenced, reads, loaded = with_store(redis_url, scenario)
    assert [(f.bucket, f.actual) for f in fenced] == [(2, "1")]
    assert [r.offsets for r in reads] == [["2"], ["2"], ["1"], ["2"]]
    assert [r.blobs[0] == loaded[users[b]].to_bytes() for b, r in enumerate(reads)] == [True] * 4
    assert [loaded[users[b]].last_seen_s - T0 for b in range(4)] == [2, 2, 1, 2]


def test_progress_only_increases(redis_url: str) -> None:
    async def scenario(store: Store) -> tuple[Any, Any, Any]:
        first = await store.write_progress(TOPIC, {0: (10, 5_000), 1: (3, 9_000)})
        second = await store.write_progress(TOPIC, {0: (8, 6_000), 1: (4, 1_000)})
        return first, second, await store.read_progress(TOPIC)

    first, second, stored = with_store(redis_url, scenario)
    assert first == {0: (10, 5_000), 1: (3, 9_000)}
    assert second == {0: (10, 6_000), 1: (4, 9_000)}, "offset and max event time each keep their maximum"
    assert stored == second


def test_stream_times_are_every_partitions_progress_of_this_incarnation(redis_url: str) -> None:
    """What an idle worker folds into the topic's stream time: also partitions another worker
    wrote, never a value left from another incarnation of the store."""
    async def scenario(store: Store) -> Any:
        await store.write_progress(TOPIC, {0: (10, 5_000)})
        await store.client.hset(store.keys.progress(TOPIC), "7", "99:8000000::gone")  # another incarnation
        other = Store(_settings(redis_url))  # a second worker, same Redis
        await other.connect()
        try:
            await other.write_progress(TOPIC, {1: (3, 9_000)})
        finally:
            await other.close()
        return await store.check_and_stream_times(TOPIC)

    assert with_store(redis_url, scenario) == {0: (10, 5_000), 1: (3, 9_000)}


def test_meta_mismatch_is_refused(redis_url: str) -> None:
    with_store(redis_url, lambda store: store.ping(), buckets=4)
    with pytest.raises(StoreMismatch, match="buckets=4"):
        with_store(redis_url, lambda store: store.ping(), buckets=8)
    with_store(redis_url, lambda store: store.ping(), buckets=8, key_prefix="other")  # another prefix is independent


def test_scripts_are_reloaded_after_a_script_flush(redis_url: str) -> None:
    async def scenario(store: Store) -> list[Any]:
        await store.client.script_flush()
        return await store.read([BucketRead(0, [(FIELD, None)], [])])

    (reply,) = with_store(redis_url, scenario)
    assert reply.offsets == [""]


def test_stats_deltas_follow_states_and_churn_alerts(redis_url: str) -> None:
    old = _state(T0, stage="active")
    new = _state(T0 + 50 * DAY, stage="churned", at_risk=True, revenue=30.0)
    scores = Scores(10.0, 5.0, 0.9, "churned", None, "win_back", ("silent",))
    churn_alert = Alert("id1", "stage_changed", "dave", (T0 + 50 * DAY) * 1000, scores, "dormant", revenue=30.0)

    first: dict[str, float] = {}
    stats_delta(None, old, [], first)
    assert first == {"users": 1, "stage:active": 1, "reachable": 1, f"new:{utc_day(old.first_seen_s)}": 1}
    second: dict[str, float] = {}
    stats_delta(old, new, [churn_alert], second)
    day = utc_day(T0 + 50 * DAY)
    assert second == {"stage:active": -1, "stage:churned": 1, "reachable": -1, "at_risk": 1, f"churned:{day}": 1,
                      f"churned_rev:{day}": 30.0}

    async def scenario(store: Store) -> dict[str, float]:
        await _write_one(store, "dave", old, new="1", token="x1", stats=first)
        await _write_one(store, "dave", new, expected="1", new="2", token="x2", stats=second, risk=0.9)
        await _write_one(store, "erin", _state(T0), new="3", token="x3", stats={"users": 1, "stage:active": 1})
        return await store.stats()

    total = with_store(redis_url, scenario)
    assert total["users"] == 2 and total["stage:active"] == 1 and total["stage:churned"] == 1
    assert total[f"churned_rev:{day}"] == 30.0
    summary = churn_summary(total, T0 + 55 * DAY)
    assert (summary.churned, summary.revenue) == (1, 30.0)
    assert summary.active_at_start == 2 and summary.rate == 0.5


def test_a_state_change_moves_the_counters_of_removing_the_old_state_and_adding_the_new() -> None:
    """stats_delta(old, new) counts only what moved: it equals removing ``old`` plus adding ``new``
    (without the first-seen day, which only a new user counts), zeros left out."""
    states = [_state(T0, stage=s, at_risk=r) for s in STAGES for r in (False, True)]
    states.append(UserState(first_seen_s=T0, last_seen_s=T0, n_events=1, active_days=1))  # never reviewed
    for old in states:
        for new in states:
            moved: dict[str, float] = {}
            stats_delta(old, new, [], moved)
            apart: dict[str, float] = {}
            stats_delta(old, None, [], apart)
            stats_delta(None, new, [], apart)
            assert moved == {k: v for k, v in apart.items() if v and not k.startswith("new:")}, (old, new)


def test_the_at_risk_gauge_counts_lapsed_users_with_an_open_alert_and_says_so() -> None:
    """QA12 F13: ``churnwatch_users_at_risk`` showed 631 while ``top -n`` listed 3 to save: the
    ``at_risk`` counter holds every user with an open at-risk alert, a dormant or churned one
    included (``top --win-back``), while the save list's size is ``reachable``. The counters
    stay as they are; the gauge's help text (and README, OPERATE) says what it counts."""
    from streams.worker.metrics import USERS_AT_RISK

    counted: dict[str, float] = {}
    for stage in STAGES:
        stats_delta(None, _state(T0, stage=stage, at_risk=True), [], counted)
    # the save list's stages (models.lifecycle.JUDGED): not dormant or churned (lapsed), nor reactivated (QA16 F3)
    assert counted["at_risk"] == len(STAGES) and counted["reachable"] == len(JUDGED) == len(STAGES) - 3
    assert "lapsed users (dormant, churned) included" in USERS_AT_RISK._documentation


def test_same_counts_says_exactly_when_stats_delta_moves_no_counter() -> None:
    """The worker skips ``stats_delta`` for a user without alerts when the compiled
    ``models.step.same_counts`` says the step moved no counter: it must say so exactly when
    ``stats_delta`` adds nothing, for every pair of states (stage, at risk, on the save list or not,
    never reviewed, first activity arriving or not, billing statements alone, none)."""
    from models.step import same_counts

    states: list[UserState | None] = [None, UserState(revenue=30.0)]  # none stored; billing statements alone
    states += [_state(T0, stage=s, at_risk=r) for s in STAGES for r in (False, True)]
    unreviewed = _state(T0, stage="churned")
    unreviewed.stage_since_s = 0  # not on the save list, whatever its stage
    states.append(unreviewed)
    states.append(UserState(first_seen_s=T0, last_seen_s=T0, n_events=1, active_days=1))  # never reviewed
    states.append(UserState(revenue=30.0, cancelled_s=T0))  # a cancellation alone: a user
    no_first = _state(T0, stage="active")
    no_first.first_seen_s = 0  # made by a statement; its first activity counts it on new:<day>
    states.append(no_first)
    seen = set()
    for old in states:
        for new in states:
            moved: dict[str, float] = {}
            stats_delta(old, new, [], moved)
            assert same_counts(old, new) == (moved == {}), (old, new, moved)
            seen.add(moved == {})
    assert seen == {True, False}


def test_first_seen_day_is_counted_once_however_the_history_is_batched() -> None:
    """A user created by a subscription statement alone (first_seen_s 0) is counted on ``new:<day>``
    of the activity that comes later, never on 1970-01-01, so one write per step or one write for
    the lot add the same counters (regression: paced replays counted new:19700101)."""
    billing_only = UserState(revenue=30.0)
    active = UserState(first_seen_s=T0, last_seen_s=T0, n_events=1, active_days=1, revenue=30.0)
    later = UserState(first_seen_s=T0, last_seen_s=T0 + DAY, n_events=2, active_days=2, revenue=30.0)

    def added(history: list[UserState | None]) -> dict[str, float]:
        out: dict[str, float] = {}
        for old, new in zip(history, history[1:]):
            stats_delta(old, new, [], out)
        return {k: v for k, v in out.items() if v}

    one_by_one = added([None, billing_only, active, later])
    assert one_by_one == added([None, active, later]) == added([None, later]) == added([None, billing_only, later])
    assert one_by_one[f"new:{utc_day(T0)}"] == 1
    assert not any(k.startswith("new:") for k in added([None, billing_only]))


def test_a_record_of_billing_statements_alone_counts_in_no_counter() -> None:
    """QA 2026-12 (#1, #4): an unused trial's holder, whose record only subscription statements made
    (no events, never reviewed: stage byte "new"), was counted in ``users`` and ``stage:new`` while
    live scoring called it churned (36 of the QA pass's "new 41" against 4 new users live). It counts
    nowhere now until its first activity, which adds it whole; its unreadable record takes nothing
    off. A cancellation alone is a user (it said it is leaving: churned)."""
    from models.state import period_end_day
    from streams.worker.store import unreadable_delta

    billing_only = UserState(period_end_day=period_end_day((T0 + 30 * DAY) * 1000))
    active = UserState(first_seen_s=T0, last_seen_s=T0, n_events=1, active_days=1, period_end_day=billing_only.period_end_day)
    added: dict[str, float] = {}
    stats_delta(None, billing_only, [], added)
    assert added == {}
    stats_delta(billing_only, active, [], added)
    assert added == {"users": 1, "stage:new": 1, f"new:{utc_day(T0)}": 1}
    taken: dict[str, float] = {}
    assert unreadable_delta(billing_only.to_bytes(), taken) and taken == {}
    cancelled = UserState(first_seen_s=T0, last_seen_s=T0, cancelled_s=T0, stage=STAGES.index("churned"), stage_since_s=T0)
    counted: dict[str, float] = {}
    stats_delta(None, cancelled, [], counted)
    assert counted["users"] == 1 and counted["stage:churned"] == 1


def test_expiry_removes_state_due_and_risk_entries(redis_url: str) -> None:
    user = "frank"

    async def scenario(store: Store) -> None:
        await _write_one(store, user, _state(T0, at_risk=True, due_s=T0 + DAY), new="5", token="e1", risk=0.8, reach=0.85)
        assert await store.top_at_risk(5) == [(user, 0.8)]
        b, g = locate(user, store.buckets, store.groups)
        assert await store.reach_ranks([(b, g, 0, -1)]) == [[(user, 850_001)]]
        await _write_one(store, user, None, expected="5", new="6", token="e2")

    with_store(redis_url, scenario)
    client = redis_lib.Redis.from_url(redis_url)
    b, g = locate(user, 4, 8)
    keys = Keys("cw")
    try:
        assert client.hget(keys.users(b, g), user) is None
        assert client.zscore(keys.due(b, TOPIC, 3), due_member(g, user)) is None
        assert client.zscore(keys.risk(b), user) is None
        assert client.zscore(keys.reach(b, g), user) is None
    finally:
        client.close()


def test_top_at_risk_merges_buckets_and_sync_reader(redis_url: str) -> None:
    users = {f"user-{i}": 0.5 + i / 100 for i in range(12)}

    async def scenario(store: Store) -> None:
        for i, (user, risk) in enumerate(users.items()):
            await _write_one(store, user, _state(T0, at_risk=True), new=str(i + 1), expected=_expected(store, user, i),
                             token=f"r{i}", risk=risk)

    offsets: dict[int, int] = {}

    def _expected(store: Store, user: str, i: int) -> str:
        b, _ = locate(user, store.buckets, store.groups)
        prev = offsets.get(b)
        offsets[b] = i + 1
        return "" if prev is None else str(prev)

    with_store(redis_url, scenario)
    with StoreReader(_settings(redis_url)) as reader:
        top = reader.top_at_risk(3)
        assert top == sorted(users.items(), key=lambda kv: -kv[1])[:3]
        assert reader.load_user("user-0") is not None and reader.load_user("nobody") is None


def test_alert_lists_follow_applied_writes_only_capped_and_without_duplicates(redis_url: str) -> None:
    """The console's per-user alert list (in lua/write_batch.lua): appended only when the bucket's state
    write applied, once per alert id (a retried write adds nothing), newest first, at most the cap;
    deleted with the user."""
    from streams.worker.alert_log import ALERT_LOG_CAP, decode_entries, entry

    async def scenario(store: Store) -> tuple[list[Any], list[Any], int]:
        b, g = locate("dave", store.buckets, store.groups)

        def alert(i: int) -> tuple[int, str, str, bytes]:
            d = {"alert_id": f"id{i:02d}", "kind": "at_risk", "event_time_ms": (T0 + i) * 1000, "stage": "declining",
                 "risk": 0.7, "reasons": [f"reason {i}"]}
            return (g, "dave", str(d["alert_id"]), entry(d))

        def write(offset: int, token: str, alerts: list[tuple[int, str, str, bytes]], expected: str,
                  st: UserState | None = _state(T0)) -> Any:
            blob = None if st is None else st.to_bytes()
            w = BucketWrite(b, [(FIELD, expected, str(offset))], [StateWrite(g, "dave", blob, FIELD, 0, None)], alerts=alerts)
            return store.write([w], token)

        async def stored() -> list[Any]:
            raw = await store.client.hget(store.keys.alert_log(b, g), "dave")
            return decode_entries(raw.split(b"\n") if raw else [])

        assert await write(1, "t1", [alert(0), alert(1)], "") == []
        assert await write(1, "t1", [alert(0), alert(1)], "") == []  # the same write retried: nothing added
        assert len(await write(9, "t-stale", [alert(5)], "0")) == 1  # fenced: nothing added
        first = await stored()
        for i in range(2, 14):
            assert await write(i, f"t{i}", [alert(i), alert(i - 1)], str(i - 1)) == []  # a repeated id is not added again
        capped = await stored()
        assert await write(20, "t20", [(g, "dave", "", b"")], "13", None) == []  # the user expires: the list goes too
        return first, capped, int(await store.client.hexists(store.keys.alert_log(b, g), "dave"))

    first, capped, exists = with_store(redis_url, scenario)
    assert [a["alert_id"] for a in first] == ["id01", "id00"], "newest first, once each"
    assert [a["alert_id"] for a in capped] == [f"id{i:02d}" for i in range(13, 13 - ALERT_LOG_CAP, -1)]
    assert capped[0]["reasons"] == ["reason 13"] and exists == 0


def test_an_unreadable_user_dropped_on_a_due_review_leaves_nothing_of_it(redis_url: str) -> None:
    """The worker's cycle against the real scripts: a user at risk and on the save list, with
    score history and an alert list, whose record is then damaged (truncated), comes due with no
    events. It is dropped, and so is everything kept for it: record, due, at-risk and save-list
    entries, history, alert list, and its share of the bucket's counters (``users``, its stage,
    ``at_risk`` and ``reachable``: taken off by write_batch.lua from its index entries). Before,
    the history and alert list stayed and the counters went on counting a user the store no
    longer had."""
    from models.model import load_model
    from models.ranking import on_save_list
    from streams.worker.alert_log import entry
    from streams.worker.phases import BucketPlan, CycleResult, Decoded, advance_users

    user, st = "erin", _state(T0, stage="declining", at_risk=True, due_s=T0 + DAY)
    assert on_save_list(st), "the setup: counted as reachable"
    levels: dict[str, float] = {}
    stats_delta(None, st, [], levels)

    async def scenario(store: Store) -> tuple[dict[bytes, bytes], list[Any], CycleResult]:
        b, g = locate(user, store.buckets, store.groups)
        alert = {"alert_id": "a1", "kind": "at_risk", "event_time_ms": T0 * 1000, "stage": "declining", "risk": 0.7}
        w = BucketWrite(b, [(FIELD, "", "5")], [StateWrite(g, user, st.to_bytes(), FIELD, st.next_review_s, 0.8, 0.85)],
                        levels, history=[(g, user, b"\x0a\x0b\x01\x02\x03")], alerts=[(g, user, "a1", entry(alert))])
        assert await store.write([w], "t1") == []
        await store.client.hset(store.keys.users(b, g), user, st.to_bytes()[:-3])  # damaged
        plan = BucketPlan(b, {3: T0 + 2 * DAY}, [])
        result = CycleResult()
        out = advance_users([plan], await store.read([plan.read(TOPIC)]), Decoded(), {3: (T0 + 2 * DAY) * 1000},
                            load_model(), topic=TOPIC, due_limit=100, result=result)
        assert await store.write(out.writes, "t2") == []
        c = store.client
        left = [await c.hexists(store.keys.users(b, g), user), await c.zscore(store.keys.due(b, TOPIC, 3), due_member(g, user)),
                await c.zscore(store.keys.risk(b), user), await c.zscore(store.keys.reach(b, g), user),
                await c.hexists(f"{store.keys.tag(b)}:hist:{g}", user), await c.hexists(store.keys.alert_log(b, g), user)]
        return await c.hgetall(store.keys.stats(b)), left, result

    stats, left, result = with_store(redis_url, scenario)
    assert (result.unreadable, result.dropped) == (1, 1)
    assert left == [0, None, None, None, 0, 0], "record, due, risk and save-list entries, history, alert list"
    assert {k.decode() for k in stats} == {k for k in levels if k.startswith("new:")}, f"levels all back at 0: {stats}"


def test_a_due_review_written_by_a_worker_that_lost_the_partition_is_fenced(redis_url: str) -> None:
    """A cycle with only due reviews moves no offset, so the offset fence alone let two workers
    that both read the bucket before either wrote apply the same review twice: a worker that lost
    the partition without knowing yet (stalled past its session) and its new owner. Both writes
    applied, and the counters moved twice for one user (stage and at-risk counts drift). The
    fence also holds the partition's token as read: a write finding another worker's token there
    is fenced (the cycle re-reads); a worker's own earlier writes pass (cycles overlap)."""
    from models.model import load_model
    from streams.worker.phases import BucketPlan, CycleResult, Decoded, advance_users

    user, st = "gail", _state(T0, stage="active", due_s=T0 + DAY)
    levels: dict[str, float] = {}
    stats_delta(None, st, [], levels)
    model = load_model()

    async def scenario(store: Store) -> tuple[list[Any], list[Any], dict[str, float], dict[str, float]]:
        b, g = locate(user, store.buckets, store.groups)
        w = BucketWrite(b, [(FIELD, "", "5")], [StateWrite(g, user, st.to_bytes(), FIELD, st.next_review_s, None)], levels)
        assert await store.write([w], "old:1") == []
        plan = BucketPlan(b, {3: T0 + 60 * DAY}, [])

        async def cycle() -> list[BucketWrite]:
            replies = await store.read([plan.read(TOPIC)])
            return advance_users([plan], replies, Decoded(), {3: (T0 + 60 * DAY) * 1000}, model, topic=TOPIC,
                                 due_limit=100, result=CycleResult()).writes

        stale, fresh = await cycle(), await cycle()  # both read before either wrote
        assert stale[0].states and stale[0].stats, "the setup: a review that moves the counters"
        new_owner = await store.write(fresh, "new:1")
        once = await store.stats()
        zombie = await store.write(stale, "old:2")
        return new_owner, zombie, once, await store.stats()

    new_owner, zombie, once, after = with_store(redis_url, scenario)
    assert new_owner == [], "the new owner's write applies (the token it read was the old owner's)"
    assert len(zombie) == 1, "the write of the worker that lost the partition is fenced"
    assert after == once, "the review counted once"


def test_readers_of_many_states_leave_out_an_unreadable_record_instead_of_failing(redis_url: str,
                                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """``churnwatch top``, the console's save and win-back lists and the save-list index read
    many states at once: one record that cannot be read (damaged, or a newer format) made every
    one of them fail (ValueError) until the worker happened to touch that user, which for a user
    without a due review or new events is never. It is left out and counted in a WARNING (no
    user id), as the worker leaves it out of the counters when it meets it."""
    import logging

    async def scenario(store: Store) -> list[UserState | None]:
        await _write_one(store, "good", _state(T0), new="1", token="t1")
        await _write_one(store, "bad", _state(T0), expected="1", new="2", token="t2")
        b, g = locate("bad", store.buckets, store.groups)
        await store.client.hset(store.keys.users(b, g), "bad", b"\x04\xc8 damaged")
        where = [(*locate(u, store.buckets, store.groups), u) for u in ("good", "bad")]
        return await store.load_users(where)

    with caplog.at_level(logging.WARNING, logger="streams.worker.store"):
        loaded = with_store(redis_url, scenario)
        with StoreReader(_settings(redis_url)) as reader:
            states = reader.user_states()
    assert loaded[0] is not None and loaded[1] is None
    assert set(states) == {"good"}
    warned = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert warned and all("bad" not in r.getMessage() for r in warned)


def test_a_due_account_review_written_by_a_worker_that_lost_the_partition_is_fenced(redis_url: str) -> None:
    """The account side of the test above: an account's review due with no new copy (a member
    turning silent, a trial reminder) moves no account offset either, so a worker that lost the
    partition without knowing yet wrote its review over the new owner's later ones: the account's
    extras (its clock, open alert, reminders sent) went back to the stale review, and its alerts
    were decided again from there. The account fence holds the token as read too; the new owner's
    own overlapped writes (both read before either wrote) pass."""
    from streams.worker.revenue import AccountTick, account_field, advance_accounts, plan_account_reads

    acct, fld = "acme", account_field(TOPIC, 3)

    async def scenario(store: Store) -> tuple[list[Any], list[Any], bytes | None, bytes | None]:
        from streams.worker.revenue import AccountWrite

        b = plan_account_reads([AccountTick(3, acct, 0)], TOPIC, store.buckets)[0].bucket
        assert await store.write_accounts([AccountWrite(b, [(fld, "", "5")], extras={acct: b"{}"})], "old:1") == []

        async def review(at_ms: int) -> list[Any]:
            ticks = [AccountTick(3, acct, at_ms)]
            reads = plan_account_reads(ticks, TOPIC, store.buckets)
            return advance_accounts(ticks, reads, await store.read_accounts(reads), TOPIC, {}).writes

        stale, fresh, later = await review(T0 * 1000), await review(T0 * 1000), await review((T0 + DAY) * 1000)
        assert stale[0].extras and stale[0].parts == [(fld, "5", "5")], "the setup: a review that moves no offset"
        new_owner = await store.write_accounts(fresh, "new:1") + await store.write_accounts(later, "new:2")
        newest = (await store.load_account(acct))[1]
        zombie = await store.write_accounts(stale, "old:2")
        return new_owner, zombie, newest, (await store.load_account(acct))[1]

    new_owner, zombie, newest, after = with_store(redis_url, scenario)
    assert new_owner == [], "the new owner's writes apply (its own overlapped writes included)"
    assert [(f.field, f.actual) for f in zombie] == [(fld + "|token", "new:2")], "the stale review is fenced"
    assert after == newest, "the account keeps the new owner's latest review"


def _churned_revenue(batches: list[list[Any]], model: Any) -> dict[str, float]:
    """``churned_rev:<day>`` of one user whose events come in ``batches``: each batch advanced up
    to the next batch's first event (as the stream's review clock lets it), the stats deltas added
    up as the worker adds them to its buckets."""
    from models.engine import advance

    state, stats = None, {}  # type: ignore[var-annotated]
    for i, events in enumerate(batches):
        until = batches[i + 1][0].ts_ms if i + 1 < len(batches) else events[-1].ts_ms + 1
        out = advance("u1", state, events, until, model)
        stats_delta(state, out.state, out.alerts, stats)
        state = out.state
    return {k: v for k, v in stats.items() if k.startswith("churned_rev:") and v}


def test_revenue_of_churned_users_is_the_revenue_at_the_churn_whatever_the_batches() -> None:
    """QA5 M5: a user who buys, goes silent until churned, then comes back and buys again. The
    churn's revenue is what they had spent up to the churn (event time), whether the events come
    in one batch (a backlog, a rebuild), one per event (a paced publish) or cut anywhere else;
    before, it was the state at the end of the batch that saw the churn, purchases after it included."""
    from models.engine import advance
    from models.events import Event
    from models.model import load_model

    model = load_model()
    day_ms = DAY * 1000
    start = T0 * 1000
    events = [Event("u1", start + d * day_ms, "view", f"v{d}") for d in range(0, 40, 2)]
    events += [Event("u1", start + d * day_ms + 1, "purchase", f"p{d}", amount=10.0) for d in (3, 17, 33)]
    back = start + 200 * day_ms  # long after the churn
    events += [Event("u1", back, "view", "back"), Event("u1", back + 1, "purchase", "pback", amount=26.95),
               Event("u1", back + 25 * day_ms, "purchase", "pback2", amount=38.81)]
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    churns = [a for a in advance("u1", None, events, events[-1].ts_ms + 1, model).alerts
              if a.kind == "stage_changed" and a.scores.stage == "churned"]
    assert len(churns) == 1 and start + 40 * day_ms < churns[0].event_time_ms < back, "the history churns once, before coming back"

    whole = _churned_revenue([events], model)
    assert whole == {f"churned_rev:{utc_day(churns[0].event_time_ms // 1000)}": 30.0}, whole
    assert _churned_revenue([[e] for e in events], model) == whole
    for cut in range(1, len(events)):
        assert _churned_revenue([events[:cut], events[cut:]], model) == whole, cut


def test_a_progress_below_the_writers_floor_is_redis_gone_back_in_time(redis_url: str) -> None:
    """QA5 H1: progress only increases, so a partition's progress below the last one this worker
    wrote (its floor), or none at all, means Redis lost that write: progress.lua writes nothing
    and the store raises StoreRolledBack; at or above the floor it writes as before."""
    from streams.worker.ledger import StoreRolledBack

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.write_progress(TOPIC, {3: (41, T0 * 1000)}, {3: "fp41"})
        ok = await store.write_progress(TOPIC, {3: (50, T0 * 1000)}, {3: "fp50"}, {3: 41})
        refused = []
        for floor in (60, 51):
            try:
                await store.write_progress(TOPIC, {3: (70, T0 * 1000)}, {3: "fp70"}, {3: floor})
            except StoreRolledBack as exc:
                refused.append(str(exc))
        key = store.keys.progress(TOPIC)
        await store.client.delete(key)
        try:
            await store.write_progress(TOPIC, {3: (80, T0 * 1000)}, {}, {3: 50})
        except StoreRolledBack as exc:
            refused.append(str(exc))
        return ok, refused, await store.client.hgetall(key)

    ok, refused, left = with_store(redis_url, scenario)
    assert ok[3][0] == 50
    assert len(refused) == 3 and refused[0].startswith(f"the progress of {TOPIC}[3] holds offset 50"), refused
    assert refused[2].startswith(f"the progress of {TOPIC}[3] holds offset none"), refused
    assert left == {}, "a refused progress write writes nothing"


def test_a_progress_write_of_more_partitions_than_one_command_takes(redis_url: str) -> None:
    """progress.lua reads every partition's value in one HMGET and writes them in one HSET, in
    chunks of 1,000 fields (unpack() has a limit): with 2,500 partitions each value is merged
    (only increases) and written, and a floor in the last chunk still refuses the whole write."""
    from streams.worker.ledger import StoreRolledBack

    n = 2_500

    async def scenario(store: Store) -> tuple[Any, ...]:
        await store.write_progress(TOPIC, {p: (10 + p % 2, T0 * 1000 + p) for p in range(n)})
        merged = await store.write_progress(TOPIC, {p: (11, T0 * 1000) for p in range(n)},
                                            floors={p: 10 for p in range(n)})
        try:
            await store.write_progress(TOPIC, {p: (20, T0 * 1000) for p in range(n)}, floors={n - 1: 12})
        except StoreRolledBack as exc:
            return merged, str(exc), await store.read_progress(TOPIC)
        return merged, None, await store.read_progress(TOPIC)

    merged, refused, left = with_store(redis_url, scenario)
    assert merged == {p: (11, T0 * 1000 + p) for p in range(n)}, "offset and time each the larger, every partition"
    assert refused is not None and refused.startswith(f"the progress of {TOPIC}[{n - 1}] holds offset 11"), refused
    assert left == merged, "a refused write writes nothing"


def test_an_earlier_token_of_the_writer_than_it_read_is_fenced(redis_url: str) -> None:
    """A write of due reviews alone moves no offset; its fence is the partition's token. Redis
    that went back in time between the read (token w1:5) and the write (token w1:3 again) must
    refuse it: written on top, the reviews of the lost write would be applied to older states."""
    b, g = locate("erin", 4, 8)

    def write(read_token: str) -> BucketWrite:
        return BucketWrite(b, [(FIELD, "41", "")], [StateWrite(g, "erin", _state(T0).to_bytes(), FIELD, 0, None)],
                           read_tokens=[read_token])

    async def scenario(store: Store) -> tuple[Any, ...]:
        assert await store.write([BucketWrite(b, [(FIELD, "", "41")])], "w1:3") == []
        older = await store.write([write("w1:5")], "w1:6")  # read w1:5, Redis holds w1:3: went back
        overlapped = await store.write([write("w1:2")], "w1:7")  # read before this worker's w1:3: the pipeline's overlap
        return older, overlapped

    older, overlapped = with_store(redis_url, scenario)
    assert [(f.field, f.actual) for f in older] == [(f"{FIELD}|token", "w1:3")]
    assert overlapped == []


def test_a_guarded_progress_write_is_refused_once_a_bucket_write_of_the_cycle_is_gone(redis_url: str) -> None:
    """The progress written on its own after a cycle's state writes (account work came between)
    is guarded as the folded one is: if a bucket no longer holds the cycle's token (Redis lost the
    write, or another worker wrote since), nothing is written and None comes back (the pipeline
    then tells the two apart: streams.worker.pipeline._check_written)."""
    b, g = locate("erin", 4, 8)
    write = BucketWrite(b, [(FIELD, "", "41")], [StateWrite(g, "erin", _state(T0).to_bytes(), FIELD, 0, None)])

    async def scenario(store: Store) -> tuple[Any, ...]:
        assert await store.write([write], "w1:3") == []
        kept = await store.write_progress(TOPIC, {3: (41, T0 * 1000)}, {}, {}, ("w1:3", [write]))
        await store.client.hset(store.keys.offsets(b), f"{FIELD}|token", "w1:2")  # the write is gone
        gone = await store.write_progress(TOPIC, {3: (45, T0 * 1000)}, {}, {}, ("w1:3", [write]))
        return kept, gone, await store.read_resume(TOPIC)

    kept, gone, resume = with_store(redis_url, scenario)
    assert kept == {3: (41, T0 * 1000)} and gone is None and resume[3].offset == 41


def test_account_of_finds_a_members_account_and_after_a_move_the_latest(redis_url: str) -> None:
    """QA6 M3: nothing mapped a user to its account (only the account listed its members), so `score`,
    the user API and page could not name it. The member record's write indexes the user
    (``Keys.member_of``); a user who moved is indexed in both accounts' buckets and the account of the
    later member record wins, whichever was written last; a user of no account has none."""
    check_account_of(redis_url)


def test_the_account_phase_indexes_the_members_it_writes_by_the_ids_they_keep(redis_url: str) -> None:
    """The member records the account phase writes are indexed (``Keys.member_of``) by the user ids
    they keep, which the write carries from where the records are made (``AccountWrite.member_ids``;
    each record was decoded back for its id before, review 2026-12-03); a member whose id is too long
    to keep in its record (``MEMBER_ID_BYTES``) is not indexed, as before."""
    from models.account_health import MEMBER_ID_BYTES, Member, member_key
    from streams.worker.revenue import MemberCopy, advance_accounts, plan_account_reads

    long = "x" * (MEMBER_ID_BYTES + 1)
    copies = [MemberCopy(3, i, "acme", T0 * 1000, Member(member_key(u), T0, 1, 0.0, 1.0, 1.0, u))
              for i, u in enumerate(("u-kept", long))]

    async def scenario(store: Store) -> tuple[dict[str, list[str]], str | None, str | None]:
        reads = plan_account_reads(copies, TOPIC, store.buckets)
        done = advance_accounts(copies, reads, await store.read_accounts(reads), TOPIC, {3: 1})
        assert await store.write_accounts(done.writes, "t:1") == []
        assert len((await store.load_account("acme"))[2]) == 2, "both member records written"
        return done.writes[0].member_ids, await store.account_of("u-kept"), await store.account_of(long)

    assert with_store(redis_url, scenario) == ({"acme": ["u-kept"]}, "acme", None)


def check_account_of(redis_url: str, **kw: Any) -> None:
    """The test above on any Redis (tests/test_store_cluster.py: on a cluster, the buckets on three nodes)."""
    from models.account_health import Member, member_key
    from streams.worker.keys import bucket_of
    from streams.worker.revenue import AccountWrite, account_field

    old, new = "acme", next(a for a in ("globex", "initech", "hooli", "umbrella") if bucket_of(a, 4) != bucket_of("acme", 4))

    def write(account: str, seen_s: int, n: int) -> AccountWrite:
        m = Member(member_key("u-move"), seen_s, 1, 0.0, 1.0, 1.0, "u-move")
        return AccountWrite(bucket_of(account, 4), [(account_field(TOPIC, 3), str(n - 1) if n > 1 else "", str(n))],
                            members={account: {str(m.key).encode(): m.to_bytes()}}, member_ids={account: [m.user_id]})

    async def scenario(store: Store) -> tuple[str | None, str | None, str | None]:
        assert await store.write_accounts([write(old, T0, 1)], "t:1") == []
        first = await store.account_of("u-move")
        # the newer member record is written first, in its own bucket; the older account's comes after
        assert await store.write_accounts([write(new, T0 + DAY, 1)], "t:2") == []
        assert await store.write_accounts([write(old, T0 - DAY, 2)], "t:3") == []
        return first, await store.account_of("u-move"), await store.account_of("u-none")

    assert with_store(redis_url, scenario, **kw) == (old, new, None)


def test_a_store_without_its_meta_key_is_cleared_and_fences_the_old_incarnation(redis_url: str) -> None:
    """QA8 H2 at the store: cw:meta deleted, the buckets kept their marker. ``connect`` clears the
    state of the prefix under the rebuild lock (another prefix is untouched) and marks every bucket
    with one new incarnation; a store still on the old one is refused (StoreLost). A clearing cut
    short (``LOST_FIELD`` left set, the lock gone) is done again by the next connect."""
    from streams.worker.store import LOST_FIELD, StoreLost

    keys, other = Keys("cw"), Keys("cwother")
    client = redis_lib.Redis.from_url(redis_url)

    async def scenario() -> None:
        old = Store(_settings(redis_url))
        await old.connect()
        client.hset(keys.users(0, 1), "alice", b"state")
        client.hset(keys.progress(TOPIC), "3", f"7:0::{old.incarnation}")
        client.hset(keys.offsets(2), FIELD, "7")
        client.hset(other.users(0, 1), "bob", b"state")
        client.delete(keys.meta)
        new = Store(_settings(redis_url))
        await new.connect()
        assert new.incarnation != old.incarnation
        assert not client.exists(keys.users(0, 1), keys.progress(TOPIC)) and client.hgetall(keys.offsets(2)) == {
            b"|inc": new.incarnation.encode()}
        assert {client.hget(keys.offsets(b), "|inc") for b in range(4)} == {new.incarnation.encode()}
        assert client.exists(other.users(0, 1)), "another deployment's keys stay"
        with pytest.raises(StoreLost):
            await old.read([BucketRead(0, [(FIELD, None)], [])])
        client.hset(keys.users(0, 1), "alice", b"half-deleted")
        client.hset(keys.meta, LOST_FIELD, "a token of a worker that died")
        again = Store(_settings(redis_url))
        await again.connect()
        assert again.incarnation != new.incarnation and not client.exists(keys.users(0, 1))
        assert not client.hexists(keys.meta, LOST_FIELD)
        for s in (old, new, again):
            await s.close()

    try:
        asyncio.run(scenario())
    finally:
        client.close()


def test_a_clearer_whose_lock_expired_leaves_the_clearing_to_the_worker_that_took_it_over(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA review 13 #1: clearer A's lock expires mid-clearing (deleted here, between two of its SCANs:
    a stall longer than LOCK_MS) and B takes it over, writing its own incarnation and LOST_FIELD token.
    A must neither clear B's field nor connect while B still deletes: it waits for B, then both
    connect to B's incarnation. The old code cleared the field unconditionally and A connected."""
    from streams.worker import rebuild
    from streams.worker.store import LOST_FIELD

    keys = Keys("cw")
    client = redis_lib.Redis.from_url(redis_url)
    real_topics, real_pause = rebuild._stored_topics, store_mod.rebuild_pause

    async def scenario() -> None:
        b_inside, release_b, a_waits = asyncio.Event(), asyncio.Event(), asyncio.Event()
        a, b = Store(_settings(redis_url)), Store(_settings(redis_url))
        calls: list[Store] = []
        tasks: list[asyncio.Future[None]] = []

        async def hooked(store: Store, *rest: Any) -> set[str]:
            calls.append(store)
            if store is a and len(calls) == 1:  # A's lock expires; B connects and takes it
                client.delete(keys.rebuild_lock)
                tasks.append(asyncio.ensure_future(b.connect()))
                await b_inside.wait()
            elif store is b:  # B holds the lock, its incarnation and token are in cw:meta: paused mid-clearing
                b_inside.set()
                await release_b.wait()
            return await real_topics(store, *rest)

        async def pause() -> None:
            a_waits.set()
            await real_pause()

        monkeypatch.setattr(rebuild, "_stored_topics", hooked)
        monkeypatch.setattr(store_mod, "rebuild_pause", pause)
        monkeypatch.setattr(rebuild, "_UNLINK_BATCH", 2)  # SCAN COUNT 2: many pages (on a cluster, per node)
        old = Store(_settings(redis_url))
        await old.connect()
        for b_ in range(4):
            for g in range(8):
                client.hset(keys.users(b_, g), "alice", b"state")
        client.delete(keys.meta)
        ta = asyncio.ensure_future(a.connect())
        waiting = asyncio.ensure_future(a_waits.wait())
        await asyncio.wait([ta, waiting], return_when=asyncio.FIRST_COMPLETED)
        token_b = client.hget(keys.meta, LOST_FIELD)
        assert not ta.done(), "A connected while B's clearing still runs"
        assert token_b is not None and token_b == client.get(keys.rebuild_lock), "B's field and lock stay"
        release_b.set()
        await tasks[0]
        await ta
        assert a.incarnation == b.incarnation == client.hget(keys.meta, "incarnation").decode()
        assert not client.hexists(keys.meta, LOST_FIELD) and not client.exists(keys.users(0, 1), keys.rebuild_lock)
        assert not any(client.exists(keys.users(b_, g)) for b_ in range(4) for g in range(8))
        for s in (old, a, b):
            await s.close()

    try:
        asyncio.run(scenario())
    finally:
        client.close()


def test_a_worker_waiting_for_another_workers_clearing_says_what_for_and_until_when(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """qa8_verify (remaining gap): a worker that finds the rebuild lock held (by a worker that died
    mid-clearing: the lock stays until it expires) waited in silence. Now one line names what it
    waits for, the lock's expiry and until when it waits (then at most once a minute)."""
    from streams.worker import rebuild
    from streams.worker.store import RebuildRunning

    keys = Keys("cw")
    client = redis_lib.Redis.from_url(redis_url)

    async def scenario() -> None:
        store = Store(_settings(redis_url))
        store.rebuild_wait_s = 1.2  # three looks at the lock (rebuild_pause: 0.5 s), then RebuildRunning
        try:
            with pytest.raises(RebuildRunning):
                await rebuild.clear_lost_store(store)
        finally:
            await store.close()

    try:
        client.set(keys.rebuild_lock, "a-dead-workers-token", px=60_000)
        with caplog.at_level("WARNING", logger=rebuild.__name__):
            asyncio.run(scenario())
    finally:
        client.close()
    said = [r.getMessage() for r in caplog.records if r.name == rebuild.__name__ and "waiting for" in r.getMessage()]
    assert len(said) == 1, said
    assert "clearing of the lost store" in said[0] and keys.rebuild_lock in said[0] and "expires in" in said[0], said[0]
    assert "UTC" in said[0], said[0]


def test_a_return_from_churned_is_counted_under_the_day_of_the_churn_it_ends() -> None:
    """QA22b F5: ``churn-rate`` counted 649 users churned in 30 days, 300 of them seasonal players
    back and playing by the window's end, and said nothing of it. A return from churned adds
    ``back:<day of the churn>``, from the stored churned state or from the batch's churn alert (any
    cut of the batches adds the same), and the summary says how many of the window's churned are back."""
    def alert(kind_stage: str, previous: str, t_s: int) -> Alert:
        return Alert(f"{kind_stage}{t_s}", "stage_changed", "p1", t_s * 1000, Scores(10.0, 5.0, 0.5, kind_stage, None, "none", ()), previous)

    active, churned_s, back_s = _state(T0), T0 + 50 * DAY, T0 + 80 * DAY
    churned = _state(churned_s, stage="churned")
    back = _state(back_s, stage="reactivated")
    apart: dict[str, float] = {}
    stats_delta(active, churned, [alert("churned", "dormant", churned_s)], apart)
    stats_delta(churned, back, [alert("reactivated", "churned", back_s)], apart)
    together: dict[str, float] = {}
    stats_delta(active, back, [alert("churned", "dormant", churned_s), alert("reactivated", "churned", back_s)], together)
    day = utc_day(churned_s)
    assert apart[f"back:{day}"] == together[f"back:{day}"] == 1 and apart[f"churned:{day}"] == together[f"churned:{day}"] == 1
    none: dict[str, float] = {}
    stats_delta(_state(T0, stage="dormant"), back, [alert("reactivated", "dormant", back_s)], none)
    assert not any(k.startswith("back:") for k in none), "back from dormant ends no churn"
    stats = {"users": 3, "stage:churned": 0, **{k: v for k, v in apart.items() if ":" in k and not k.startswith("stage:")}}
    assert churn_summary(stats, back_s, 40).back == 1 and churn_summary(stats, back_s, 20).back == 0
