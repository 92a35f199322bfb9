"""The pure phases of a worker cycle (streams.worker.phases), without Redis or Kafka, and the size
rule of the worker's code (no function over 80 lines)."""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.engine import advance, kept_days
from models.events import Event
from models.model import load_model
from models.state import STAGES, UserState
from streams.worker.clock import PartitionClock
from streams.worker.codec import Decoder
from streams.worker.keys import locate
from streams.worker.phases import (
    NO_DUE,
    BucketPlan,
    CycleResult,
    Decoded,
    Decoding,
    UserBatch,
    advance_users,
    decode_batch,
    plan_reads,
    plan_sweep,
)
from streams.worker.store import BucketReadResult, DueUser, StateWrite, stats_delta
from streams.publisher import event_value
from tests.harness import Rec

DAY_MS = 86_400_000
START_MS = 1_767_225_600_000
WALL_MS = START_MS + 400 * DAY_MS
ROOT = Path(__file__).resolve().parents[1]




def _decode(batch: dict[int, list[Rec]], clocks: dict[int, PartitionClock] | None = None) -> Decoded:
    clocks = clocks if clocks is not None else {p: PartitionClock(3_600_000) for p in batch}
    return decode_batch(batch, clocks, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)


def test_decode_groups_events_by_user_and_keeps_offsets() -> None:
    evs = [Event("a", START_MS, "view", "a1"), Event("b", START_MS + 1, "click", "b1"), Event("a", START_MS + 2, "view", "a2")]
    out = _decode({0: [Rec(i + 10, b"k", event_value(ev)) for i, ev in enumerate(evs)]})
    assert out.consumed == 3 and out.last_offset == {0: 12} and not out.dlq
    assert {u: (ub.partition, [e.event_id for e in ub.events], ub.offsets) for u, ub in out.users.items()} == {
        "a": (0, ["a1", "a2"], [10, 12]), "b": (0, ["b1"], [11])}


def test_decode_rejects_duplicates_and_late_events_without_moving_the_clock() -> None:
    clock = PartitionClock(allowed_lateness_ms=1_000)
    recs = [Rec(0, b"a", event_value(Event("a", START_MS + 10_000, "view", "x"))),
            Rec(1, b"a", event_value(Event("a", START_MS + 99_000, "view", "x"))),  # same id, same user
            Rec(2, b"a", event_value(Event("a", START_MS, "view", "old"))),  # late
            Rec(3, b"b", event_value(Event("b", START_MS + 10_500, "view", "x"))),  # same id, other user: fine
            Rec(4, b"b", b"not json")]
    out = _decode({0: recs}, {0: clock})
    assert out.rejected == {"duplicate_event_id": 1, "late": 1, "malformed_json": 1}
    assert clock.stream_ms == START_MS + 10_500, "a rejected duplicate does not move stream time"
    assert [orjson.loads(v)["offset"] for _, v in out.dlq] == [1, 2, 4]
    late = orjson.loads(out.dlq[1][1])["detail"]  # QA18 F10: UTC times and the gap, then the epoch ms
    assert late == (f"ts 2026-01-01T00:00:00.000Z is 9.0 s before the partition's cutoff 2026-01-01T00:00:09.000Z"
                    f" (epoch ms {START_MS} < {START_MS + 9_000})")
    assert sorted(out.users) == ["a", "b"] and out.last_offset == {0: 4}


def test_decode_ignores_partitions_without_a_clock() -> None:
    out = _decode({0: [Rec(0, b"a", event_value(Event("a", START_MS, "view", "a1")))]}, clocks={})
    assert out.consumed == 0 and not out.users and not out.last_offset


def test_plan_sweep_only_buckets_with_a_review_before_the_clock() -> None:
    assert plan_sweep({0: 10_500}, {0: [10, 11, NO_DUE, 0]}, 4) == {0: {0: 10}, 3: {0: 10}}
    assert plan_sweep({0: None}, {0: [0, 0]}, 2) == {}, "no event time yet: nothing to sweep"
    assert plan_sweep({1: 5_000}, {}, 2) == {}, "a partition not owned any more"


def test_plan_reads_fences_only_the_partitions_whose_users_a_bucket_holds() -> None:
    users = {"u1": UserBatch(0), "u2": UserBatch(1)}
    plans = plan_reads(users, {5: {2: 77}}, 8, 4)
    by_bucket = {p.bucket: p for p in plans}
    b1, g1 = locate("u1", 8, 4)
    b2, _ = locate("u2", 8, 4)
    assert (g1, "u1") in by_bucket[b1].users
    assert by_bucket[5].parts.get(2) == 77
    assert set(by_bucket[5].parts) == {2} | {p for p, b in ((0, b1), (1, b2)) if b == 5}
    assert set(by_bucket[b1].parts) >= {0} and set(by_bucket[b2].parts) >= {1}
    assert all(set(p.parts) <= {0, 1, 2} for p in plans)
    read = by_bucket[5].read("ev")
    assert read.parts[0] == ("ev:2", 77)


def _reply(plan: BucketPlan, offsets: dict[int, str], blobs: dict[str, bytes | None] | None = None,
           dues: dict[int, list[DueUser]] | None = None, nexts: dict[int, int | None] | None = None) -> BucketReadResult:
    blobs, dues, nexts = blobs or {}, dues or {}, nexts or {}
    return BucketReadResult([offsets.get(p, "") for p in plan.parts], [blobs.get(u) for _, u in plan.users],
                            [dues.get(p, []) for p in plan.parts], [nexts.get(p) for p in plan.parts])


def test_advance_users_skips_events_at_or_below_the_bucket_offset_and_writes_new_offsets() -> None:
    model = load_model()
    evs = [Event("a", START_MS + i * DAY_MS, "view", f"a{i}") for i in range(4)]
    decoded = _decode({3: [Rec(i + 100, b"a", event_value(ev)) for i, ev in enumerate(evs)]})
    plans = plan_reads(decoded.users, {}, 8, 4)
    result = CycleResult()
    out = advance_users(plans, [_reply(plans[0], {3: "101"})], decoded, {3: START_MS + 3 * DAY_MS}, model,
                        topic="ev", due_limit=100, result=result)
    assert result.skipped == 2 and result.processed == 2 and result.users == 1
    (write,) = out.writes
    assert write.parts == [("ev:3", "101", "103")]
    (state,) = write.states
    assert state.user_id == "a" and state.due_field == "ev:3" and state.blob
    assert write.stats["users"] == 1
    assert out.lowered and out.lowered[0][:2] == (3, plans[0].bucket)


def test_the_fence_is_applied_by_each_partition_s_first_record_whatever_the_slices() -> None:
    """``advance_users`` looks at a user's offsets only in a partition whose first record of the
    batch (``Decoded.first_offset``: the first slice's, as the pipeline feeds a partition in
    slices) is at or below the bucket's offset. Each partition here holds user "a"'s 4 events
    at offsets 100-103, fed in two slices: a fence one below the first record drops nothing, one
    at it drops the first event, one at the third drops three; a partition the decoding never saw
    (no first record known) is still checked."""
    model = load_model()
    evs = [Event("a", START_MS + i * DAY_MS, "view", f"a{i}") for i in range(4)]
    recs = [Rec(i + 100, b"a", event_value(ev)) for i, ev in enumerate(evs)]
    for fence, skipped in (("", 0), ("99", 0), ("100", 1), ("102", 3)):
        decoding = Decoding({3: PartitionClock(3_600_000)}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        decoding.feed(3, recs[:2])
        decoding.feed(3, recs[2:])
        decoded = decoding.result()
        assert decoded.first_offset == {3: 100} and decoded.last_offset == {3: 103}
        for first in ({3: 100}, {}):  # as decoded; none known (a caller's own Decoded)
            decoded.first_offset = first
            plans = plan_reads(decoded.users, {}, 8, 4)
            result = CycleResult()
            advance_users(plans, [_reply(plans[0], {3: fence})], decoded, {3: START_MS + 5 * DAY_MS}, model,
                          topic="ev", due_limit=100, result=result)
            assert (result.skipped, result.processed) == (skipped, 4 - skipped), (fence, first)


def test_advance_users_reviews_due_users_and_learns_the_next_due_second() -> None:
    model = load_model()
    plan = BucketPlan(2, {0: 50}, [])
    decoded = Decoded()
    due = DueUser(1, "gone", 40, None)  # a due entry whose state was dropped: cleaned up
    result = CycleResult()
    out = advance_users([plan], [_reply(plan, {0: "7"}, dues={0: [due]}, nexts={0: 90})], decoded, {0: 51_000}, model,
                        topic="ev", due_limit=100, result=result)
    assert out.learned == [(0, 2, 90)]
    assert result.due_users == 1 and result.users == 0
    (write,) = out.writes
    assert [(s.user_id, s.blob, s.due_s) for s in write.states] == [("gone", None, 0)]
    assert write.parts == [("ev:0", "7", "")], "no records: the offset stays"
    full = advance_users([plan], [_reply(plan, {0: "7"}, dues={0: [due]}, nexts={0: 90})], decoded, {0: 51_000}, model,
                         topic="ev", due_limit=1, result=CycleResult())
    assert full.learned == [(0, 2, 0)], "as many due as the limit: sweep again next cycle"


def test_advance_users_deletes_a_user_whose_state_expires_with_its_history_and_alert_list() -> None:
    """A churned user reviewed past retention at its partition's review clock: the write deletes
    its record (blob None: write_batch.lua HDELs the hash field and drops its due, risk and
    save-list entries), its score history (point b"") and its alert list (alert id ""), and takes
    it off the bucket's counters; ``result.expired`` counts it."""
    model = load_model()
    evs = [Event("gone", START_MS + i * DAY_MS, "purchase", f"g{i}", 5.0) for i in range(3)]
    stored = advance("gone", None, evs, START_MS + 100 * DAY_MS, model).state
    assert STAGES[stored.stage] == "churned" and stored.stage_since_s and stored.at_risk_since_s, "the setup: churned, at risk"
    until = (stored.stage_since_s + int(kept_days(stored, model.compiled) * 86_400)) * 1000  # retention passed just now
    plan = BucketPlan(2, {0: until // 1000}, [])
    due = DueUser(1, "gone", stored.next_review_s, stored.to_bytes())
    result = CycleResult()
    out = advance_users([plan], [_reply(plan, {0: "7"}, dues={0: [due]})], Decoded(), {0: until}, model,
                        topic="ev", due_limit=100, result=result)
    assert (result.expired, result.users, result.due_users, result.processed) == (1, 1, 1, 0)
    (write,) = out.writes
    assert write.states == [StateWrite(1, "gone", None, "ev:0", 0, None, None, 0.0)]
    assert write.history == [(1, "gone", b"")] and write.alerts == [(1, "gone", "", b"")]
    assert write.stats == {"users": -1, "stage:churned": -1, "at_risk": -1}
    assert not out.lowered and not out.alerts
    early = CycleResult()
    kept = advance_users([plan], [_reply(plan, {0: "7"}, dues={0: [due]})], Decoded(), {0: until - 1000}, model,
                         topic="ev", due_limit=100, result=early)
    (write,) = kept.writes
    assert early.expired == 0 and [s.blob for s in write.states] == [due.blob], "a second before: kept as stored"
    assert all(point for _, _, point in write.history) and not write.alerts and not write.stats, "nothing deleted"


# format 4, stage byte [1] = 0; a user of the product (one event): a record of no events and no
# cancellation holds billing statements alone and was never counted (models.state.tracked)
_VALID = UserState(first_seen_s=START_MS // 1000, last_seen_s=START_MS // 1000, n_events=1, active_days=1).to_bytes()


@pytest.mark.parametrize("blob", [b"\xffnot a record", _VALID[:1] + b"\xc8" + _VALID[2:]],
                         ids=["garbage", "format-4 length, stage byte 200"])
def test_advance_users_starts_a_user_with_an_unreadable_record_afresh(blob: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """docs/OPERATE.md (code upgrades): a stored record that cannot be read is logged (WARNING, no
    user id) and the user starts afresh from the batch's events: its score history and alert list
    are deleted before its new ones, and the bucket's counters lose the lost record (``users`` and,
    where its stage byte still says it, the stage; at-risk and save-list counts by the write
    script, ``write.unreadable``) as they gain the new one. No cycle error, no skip. Also a record
    of the right length whose stage byte is out of range (it raised IndexError: the cycle failed)."""
    model = load_model()
    evs = [Event("a", START_MS + i * DAY_MS, "view", f"a{i}") for i in range(3)]
    decoded = _decode({3: [Rec(i + 100, b"a", event_value(ev)) for i, ev in enumerate(evs)]})
    plans = plan_reads(decoded.users, {}, 8, 4)
    (plan,) = plans
    until = START_MS + 3 * DAY_MS
    result = CycleResult()
    with caplog.at_level(logging.WARNING, logger="streams.worker.phases"):
        out = advance_users(plans, [_reply(plan, {3: "99"}, blobs={"a": blob})], decoded, {3: until}, model,
                            topic="ev", due_limit=100, result=result)
    fresh = advance("a", None, evs, until, model).state
    (write,) = out.writes
    (state,) = write.states
    assert (state.user_id, state.blob, state.due_field, state.due_s) == ("a", fresh.to_bytes(), "ev:3", fresh.next_review_s)
    assert (result.users, result.processed, result.expired, result.skipped, result.unreadable) == (1, 3, 0, 0, 1)
    gained: dict[str, float] = {}
    stats_delta(None, fresh, advance("a", None, evs, until, model).alerts, gained)
    lost = {"users": -1} if blob[1] >= len(STAGES) else {"users": -1, "stage:" + STAGES[blob[1]]: -1}  # its stage byte
    expected = {k: gained.get(k, 0) + lost.get(k, 0) for k in {*gained, *lost}}
    assert write.stats == expected and expected["users"] == 0, "the lost record off the counters, the new one on"
    assert write.unreadable == [(state.group, "a")], "the write script takes off its at-risk and save-list counts"
    assert write.history[0] == (state.group, "a", b"") and all(p for _, _, p in write.history[1:])
    assert write.alerts[0] == (state.group, "a", "", b""), "the old alert list goes first"
    assert write.parts == [("ev:3", "99", "102")]
    (rec,) = [r for r in caplog.records if "unreadable state record" in r.getMessage()]
    assert rec.levelno == logging.WARNING and "afresh" in rec.getMessage() and "a" not in rec.args, "no user id"
    assert ("stage count" in rec.getMessage()) == (blob[1] >= len(STAGES)), "says when a stage count could not be corrected"


def test_advance_users_drops_an_unreadable_user_due_without_events_with_everything_kept_for_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """A review due, no events, a record that cannot be read: nothing to start from, so the user is
    dropped, and with it everything the store keeps for it (before: the record and its index
    entries went, but its score history and alert list stayed and the counters went on counting
    it). Counted as unreadable and dropped (the metric's outcome label), logged without user id."""
    model = load_model()
    stored = advance("lost", None, [Event("lost", START_MS, "view", "l1")], START_MS + DAY_MS, model).state
    blob = stored.to_bytes()[:-3]  # truncated: unreadable, stage byte intact
    plan = BucketPlan(2, {0: 10**10}, [])
    result = CycleResult()
    with caplog.at_level(logging.WARNING, logger="streams.worker.phases"):
        out = advance_users([plan], [_reply(plan, {0: "7"}, dues={0: [DueUser(1, "lost", 40, blob)]})], Decoded(),
                            {0: START_MS + 2 * DAY_MS}, model, topic="ev", due_limit=100, result=result)
    (write,) = out.writes
    assert write.states == [StateWrite(1, "lost", None, "ev:0", 0, None, None, 0.0)], "record, due/risk/save entries go"
    assert write.history == [(1, "lost", b"")] and write.alerts == [(1, "lost", "", b"")]
    assert write.stats == {"users": -1, "stage:" + STAGES[stored.stage]: -1}
    assert write.unreadable == [(1, "lost")]
    assert (result.unreadable, result.dropped, result.users, result.due_users) == (1, 1, 0, 1)
    (rec,) = [r for r in caplog.records if "unreadable state record" in r.getMessage()]
    assert "dropped" in rec.getMessage() and "lost" not in rec.getMessage()


def test_no_function_of_the_worker_is_over_80_lines() -> None:
    long = []
    for path in sorted((ROOT / "streams" / "worker").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:  # type: ignore[operator]
                long.append(f"{path.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)")  # type: ignore[operator]
    assert not long, long


@dataclass
class HRec:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def test_decode_reroutes_records_not_keyed_by_their_user_and_drops_second_copies() -> None:
    from streams.worker.routing import ORIGIN_HEADER, Router

    router = Router("reroute")
    router.assign(0, {5: 40})
    ev = [event_value(Event("a", START_MS + i, "view", f"a{i}")) for i in range(5)]
    recs = [HRec(0, None, ev[0]), HRec(1, b"e-1", ev[1]), HRec(2, b"a", ev[2]),
            HRec(3, b"a", ev[3], headers=((ORIGIN_HEADER, b"5:40"),)),  # a copy applied before
            HRec(4, b"a", ev[4], headers=((ORIGIN_HEADER, b"5:41"),))]
    clocks = {0: PartitionClock(3_600_000)}
    out = decode_batch({0: recs}, clocks, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024, router=router)
    assert out.routed.rerouted == {"null_key": 1, "other_key": 1} and out.routed.duplicates == 1
    assert [(k, h) for k, _, h in out.routed.copies] == [(b"a", [(ORIGIN_HEADER, b"0:0")]), (b"a", [(ORIGIN_HEADER, b"0:1")])]
    assert out.users["a"].offsets == [2, 4] and out.last_offset == {0: 4}
    assert clocks[0].stream_ms == START_MS + 4
    assert out.routed.origins == {0: {5: 41}} and router.merged(out.routed) == {0: {5: 41}}

    dlq = decode_batch({0: recs[:2]}, {0: PartitionClock(3_600_000)}, Decoder(), WALL_MS, topic="ev",
                       max_dlq_value_bytes=1024, router=Router("dlq"))
    assert dlq.rejected == {"key_not_user_id": 2} and not dlq.routed.copies and not dlq.users


def test_a_rerouted_user_is_advanced_and_indexed_only_by_the_partition_of_its_copy() -> None:
    """The partition that read a mis-keyed record neither advances the user nor writes a due entry
    (it only fences its offset); the copy's partition writes the state, the due entry in its own
    index and lowers its own due bound (the owner of an index is the only one who lowers it)."""
    from streams.worker.routing import ORIGIN_HEADER, Router

    model = load_model()
    router = Router("reroute")
    router.assign(3, {})
    router.assign(5, {})
    ev = event_value(Event("a", START_MS, "view", "a0"))
    clocks = {3: PartitionClock(3_600_000), 5: PartitionClock(3_600_000)}
    batch = {3: [HRec(7, None, ev)], 5: [HRec(20, b"a", ev, headers=((ORIGIN_HEADER, b"3:7"),))]}
    decoded = decode_batch(batch, clocks, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024, router=router)
    assert {u: ub.partition for u, ub in decoded.users.items()} == {"a": 5}
    assert clocks[3].stream_ms < START_MS, "the origin partition's clock did not see the event"
    plans = plan_reads(decoded.users, {}, 8, 4)
    out = advance_users(plans, [_reply(plan, {}) for plan in plans], decoded, {3: None, 5: START_MS + DAY_MS}, model,
                        topic="ev", due_limit=100, result=CycleResult())
    states = [(w.bucket, s.user_id, s.due_field) for w in out.writes for s in w.states]
    b, _ = locate("a", 8, 4)
    assert states == [(b, "a", "ev:5")]
    assert out.lowered and {(p, bucket) for p, bucket, _ in out.lowered} == {(5, b)}
    assert [part for w in out.writes for part in w.parts if part[0] == "ev:3"] == [], \
        "no user of partition 3 is written: its offset is fenced nowhere (its progress says where it resumes)"


def test_the_miskeyed_setting_chooses_reroute_or_dlq() -> None:
    import pytest

    from streams.settings import Settings, SettingsError
    from streams.worker.pipeline import Pipeline
    from streams.worker.store import Store

    for mode in ("reroute", "dlq"):
        settings = Settings.from_env({"CHURNWATCH_MISKEYED": mode})
        assert Pipeline(settings, Store(settings), None, load_model()).router.mode == mode  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="miskeyed"):
        Settings(miskeyed="drop")


_slice_value = st.one_of(
    st.builds(lambda u, i, dt: event_value(Event(f"u{u}", START_MS + dt, "view", f"e{i}")),
              st.integers(0, 3), st.integers(0, 6), st.integers(-5_000_000, 5_000_000)),  # ids collide, some late
    st.sampled_from([b"{", b"1,2", b"[3", b"4]", b'{"user_id":"u1"}']),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), _slice_value, st.booleans()), max_size=30), st.sampled_from([1, 3, 70]),
       st.lists(st.integers(1, 90), min_size=1))
def test_decoding_in_slices_equals_one_call(records: list[tuple[int, bytes, bool]], times: int, cuts: list[int]) -> None:
    """The pipeline decodes a batch a slice at a time (turning the event loop in between): any
    cut of each partition's records gives what one call over the batch gives, clocks included.
    (Repeated, a partition's records run over ``PARSE_CHUNK``: both sides decode in chunks.)"""
    from streams.worker.routing import Router

    batch: dict[int, list[HRec]] = {}
    for p, value, keyed in records * times:
        user = orjson.loads(value).get("user_id") if value.startswith(b'{"event_id') else None
        batch.setdefault(p, []).append(HRec(len(batch.get(p, [])), user.encode() if keyed and user else None, value))
    routers = [Router("reroute"), Router("reroute")]
    for r in routers:
        for p in range(3):
            r.assign(p, {})
    clocks = [{p: PartitionClock(3_600_000) for p in range(3)} for _ in range(2)]
    whole = decode_batch(batch, clocks[0], Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024, router=routers[0])
    decoding = Decoding(clocks[1], Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024, router=routers[1])
    for p, recs in batch.items():
        i, k = 0, 0
        while i < len(recs):
            step = cuts[k % len(cuts)]
            decoding.feed(p, recs[i:i + step])
            i, k = i + step, k + 1
    assert decoding.result() == whole
    placed = sum(len(ub.offsets) for ub in whole.users.values()) + sum(whole.rejected.values()) + sum(whole.routed.rerouted.values())
    assert placed == whole.consumed == sum(map(len, batch.values())), "every record is applied, rejected or re-routed once"
    assert [c.snapshot() for c in clocks[1].values()] == [c.snapshot() for c in clocks[0].values()]


_plain_value = st.one_of(
    st.builds(lambda u, i, dt, acct: event_value(Event(f"u{u}", START_MS + dt, "view", f"e{i}", account_id=acct)),
              st.integers(0, 3), st.integers(0, 6), st.integers(-5_000_000, 5_000_000), st.sampled_from(["", "", "", "acme"])),
    st.builds(lambda u, i: orjson.dumps({"user_id": f"u{u}", "type": "view", "ts": START_MS, "event_id": f"e{i}", "amount": -1}),
              st.integers(0, 3), st.integers(0, 6)),  # rejected
    st.sampled_from([b"{", b'{"user_id":"u1"}']),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), _plain_value, st.sampled_from(["keyed", "keyed", "other", "none", "copy"])), max_size=40),
       st.booleans())
def test_the_compiled_grouping_of_plain_records_equals_the_general_path(records: list[tuple[int, bytes, str]], routed: bool) -> None:
    """``models.intake.group_plain`` takes the plain records (an event keyed by its user, no
    headers, no account, a new id, in time) off the general per-record path: with it switched off
    (every record read by ``Decoding._one``) a batch decodes to the same users, offsets, DLQ
    records, re-routed copies and clocks. Mixed in: duplicate ids, late events, rejections,
    accounts, mis-keyed records and copies carrying an origin header."""
    from unittest import mock

    from streams.worker import phases
    from streams.worker.routing import ORIGIN_HEADER, Router

    batch: dict[int, list[HRec]] = {}
    for p, value, key in records:
        user = orjson.loads(value).get("user_id") if value.startswith(b'{"event_id') else None
        offset = len(batch.get(p, []))
        headers = ((ORIGIN_HEADER, f"{1 - p}:{offset}".encode()),) if key == "copy" else ()
        k = (user or "x").encode() if key in ("keyed", "copy") else (b"k" if key == "other" else None)
        batch.setdefault(p, []).append(HRec(offset, k, value, headers=headers))

    def run() -> tuple[Decoded, list[tuple[int, int]]]:
        router = Router("reroute") if routed else None
        for p in range(2):
            if router is not None:
                router.assign(p, {})
        clocks = {p: PartitionClock(3_600_000) for p in range(2)}
        out = decode_batch(batch, clocks, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024, router=router)
        return out, [c.snapshot() for c in clocks.values()]

    fast = run()
    with mock.patch.object(phases, "group_plain", lambda recs, events, start, *rest: start):
        general = run()
    assert general == fast and fast[0].consumed == len(records)
