"""The aligned reading's cut (streams/worker/align.py, streams/worker/aligned.py) bounds every
partition's batch by event time, whatever copies and heartbeats its log holds.

QA pass 18 F7: two replays of one history gave different account alerts. Measured on a 42k-event
replay (docs/REVENUE.md, "Aligned reading"): in a backlog an account's partition ends its batches
in runs of thousands of copies; the cut looked at most 256 records past a probe for an event and
did not cut a batch whose last 256 records held none, so that partition took its whole batch (two
weeks of events), its mark ran more than the 7-day grace ahead of the others' and their copies then
reached their accounts behind the watermark: how many depended on where the fetches ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from streams.worker.align import cut_index, first_event_ms
from streams.worker.aligned import Alignment
from streams.worker.clock import NEVER

HOUR = 3_600_000
T0 = 1_776_000_000_000


@dataclass
class Rec:
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def _events(hours: list[float], start: int = 0) -> list[Rec]:
    return [Rec(start + i, b'{"user_id":"u","type":"view","ts":%d}' % (T0 + int(h * HOUR))) for i, h in enumerate(hours)]


def _copies(n: int, start: int) -> list[Rec]:
    return [Rec(start + i, b'{"account_id":"a","ts":1,"member":""}', [("churnwatch-member", b"1:%d" % i)]) for i in range(n)]


def test_a_batch_ending_in_a_long_run_of_copies_is_cut_at_the_limit() -> None:
    two_weeks = [h / 4 for h in range(14 * 24 * 4)]  # an event every 15 min for 14 days
    records = _events(two_weeks) + _copies(300, len(two_weeks))
    i, head = cut_index(records, T0 + 6 * HOUR)
    assert i == 6 * 4 + 1  # events up to 6 h in (the limit is inclusive)
    assert head == T0 + 6 * HOUR + HOUR // 4


def test_the_first_event_is_found_past_a_long_run_of_copies() -> None:
    records = _copies(300, 0) + _events([5.0, 6.0], 300)
    assert first_event_ms(records) == T0 + 5 * HOUR
    assert cut_index(records, T0 + 5 * HOUR) == (301, T0 + 6 * HOUR)  # the copies before the cut are taken


def test_a_partition_without_records_here_holding_the_least_time_lets_nobody_run_ahead() -> None:
    """Partition 1 holds at its stream time (no records in this batch); partition 0's next events
    are past the limit (a night): nothing of 0 is taken, it waits (as Kafka Streams waits for a
    partition with no data buffered), and is held back at its first unread event."""
    align = Alignment(6 * HOUR)
    p0 = TopicPartition("t", 0)
    batch = {p0: _events([8.0 + h for h in range(24 * 14)]) + _copies(300, 24 * 14)}
    out, left = align.cut(batch, {0: T0 + 8 * HOUR, 1: T0})
    assert out == {} and len(left[p0]) == len(batch[p0])
    assert align.paused[p0] == T0 + 8 * HOUR


def test_the_least_holding_partition_takes_its_first_event_not_its_whole_batch() -> None:
    """When every cut would leave nothing while the least time is held by a partition of the batch
    (its held time below its first event: until 5 December 2026 a batch starting with more than
    256 copies held at its stream time), that partition takes up to its first event's time, never
    its whole batch (two weeks of events here, as measured)."""
    align = Alignment(6 * HOUR)
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    batch = {p0: _events([30.0] + [30.0 + h / 4 for h in range(1, 24 * 4 * 14)]), p1: _events([40.0])}
    out, left = align.cut(batch, {0: T0 + 20 * HOUR, 1: T0 + 40 * HOUR})
    assert [r.offset for r in out[p0]] == [0]
    assert align.paused[p0] == T0 + 30 * HOUR + HOUR // 4
    assert p1 not in out and align.paused[p1] == T0 + 40 * HOUR


class _Store:
    """The two calls of the store ``refresh_foreign`` makes, in memory (one Redis for two workers)."""

    def __init__(self) -> None:
        self.heads: dict[int, int] = {}
        self.progress: dict[int, object] = {}

    async def write_align_heads(self, topic: str, heads: dict[int, int]) -> None:
        self.heads.update(heads)

    async def read_align_heads(self, topic: str) -> dict[int, int]:
        return dict(self.heads)

    async def read_resume(self, topic: str) -> dict[int, object]:
        return dict(self.progress)


class _Consumer:
    def __init__(self, ends: dict[int, int]) -> None:
        self.ends = ends

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.ends)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in tps}

    def highwater(self, tp: TopicPartition) -> int:
        return self.ends[tp.partition]


class _Pair:
    """Worker A owning partition 0 and worker B owning 1, both stored at 23:00 (offset 50 of 100),
    sharing one in-memory Redis."""

    def __init__(self) -> None:
        from streams.worker.store import Resume

        self.store, self.consumer = _Store(), _Consumer({0: 100, 1: 100})
        self.a, self.b = Alignment(6 * HOUR), Alignment(6 * HOUR)
        self.p0, self.p1 = TopicPartition("t", 0), TopicPartition("t", 1)
        self.store.progress = {0: Resume(50, T0 + 23 * HOUR, "", {}), 1: Resume(50, T0 + 23 * HOUR, "", {})}

    @staticmethod
    def stream(p: int) -> int:
        return T0 + 23 * HOUR

    @staticmethod
    def busy(p: int) -> bool:
        return False

    def refresh(self, me: Alignment, full: bool = True) -> None:
        """``me`` publishes its heads and reads the other's: with the once-a-second read (progress,
        log ends) due, or not due (the heads alone, while held back)."""
        import asyncio

        tp = self.p0 if me is self.a else self.p1
        own = me.own_holding(self.consumer, {tp}, {tp.partition: 51}, self.stream, {}, self.busy)
        me._foreign_read = float("-inf") if full else float("inf")
        me._heads_read = float("-inf")
        asyncio.run(me.refresh_foreign(self.consumer, self.store, "t", 2, {tp}, own))

    def release(self, me: Alignment) -> None:
        tp = self.p0 if me is self.a else self.p1
        me.release(self.consumer, {tp}, {tp.partition: 51}, self.stream, self.busy)


def test_two_workers_held_back_across_a_night_hold_each_other_at_their_first_unread_events() -> None:
    """Worker A owns 0, worker B owns 1; both read to 23:00 and were cut at their first event of the
    next morning (07:00 and 08:00). Each holds the other at that first unread event, which it
    publishes, not at its stream time (23:00): A may go on (08:00 is within 6 h of 07:00), where
    with the stream times each waited for the other (a deadlock until the foreign partition counted
    as stopped, 5 s then 30 s: measured on 5 December 2026)."""
    w = _Pair()
    a, b, p0, p1 = w.a, w.b, w.p0, w.p1
    a.paused[p0], b.paused[p1] = T0 + 31 * HOUR, T0 + 32 * HOUR
    for me in (b, a, b):  # B publishes, A publishes and reads B's, B reads A's
        w.refresh(me)
    assert w.store.heads == {0: T0 + 31 * HOUR, 1: T0 + 32 * HOUR}
    assert a.holding(w.consumer, {p0}, {0: 51}, w.stream, {}, w.busy) == {0: T0 + 31 * HOUR, 1: T0 + 32 * HOUR}
    w.release(a)
    w.release(b)
    assert p0 not in a.paused and p1 not in b.paused  # both within 6 h of 07:00: read on


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans()), max_size=40), st.integers(-1, 52), st.booleans())
def test_a_batch_without_headers_is_cut_where_the_header_by_header_reading_cuts_it(
        times: list[tuple[int, bool]], limit_h: int, trace_first: bool) -> None:
    """``_events`` takes every index of a batch whose records carry no headers (one pass in C,
    no per-record test: ~0.4 us a record saved, 5 December 2026); the same records, one of them
    given a header that is not the worker's (a producer's trace id), are read header by header:
    both cut at the same record, in any time order (the bisection's answer on out-of-order events
    is whatever it is, but the same) and with malformed events among them."""
    plain = [Rec(i, b'{"ts":%d}' % (T0 + h * HOUR) if ok else b"{", []) for i, (h, ok) in enumerate(times)]
    traced = [Rec(r.offset, r.value, list(r.headers)) for r in plain]
    if traced:
        traced[0 if trace_first else -1].headers.append(("traceparent", b"00-1"))
    limit = T0 + limit_h * HOUR
    assert cut_index(plain, limit) == cut_index(traced, limit)
    assert first_event_ms(plain) == first_event_ms(traced)


def test_a_worker_held_back_reads_the_others_new_head_before_the_once_a_second_read() -> None:
    """A owns 0, B owns 1; B's first unread event (14:00) is more than 6 h past A's (07:00): B is
    held back. A reads on to 10:00 and is held back there; within the second after the last full
    read (progress, log ends: once a second) A publishes its new head and B, held back, reads it
    and reads on. Until QA pass 21 F7 the heads were written and read only with the full read,
    once a second: two workers of a backlog each waited up to two seconds per ``ahead_ms`` step of
    the other's, 5-20 times slower than one worker."""
    w = _Pair()
    a, b, p0, p1 = w.a, w.b, w.p0, w.p1
    a.paused[p0], b.paused[p1] = T0 + 31 * HOUR, T0 + 38 * HOUR
    for me in (a, b, a):
        w.refresh(me)
    w.release(b)
    assert b.paused == {p1: T0 + 38 * HOUR}  # 14:00 is past 07:00 + 6 h
    a.paused[p0] = T0 + 34 * HOUR  # A read on to 10:00 and was cut there
    w.refresh(a, full=False)
    w.refresh(b, full=False)
    assert w.store.heads[0] == T0 + 34 * HOUR
    w.release(b)
    assert p1 not in b.paused  # 14:00 is within 10:00 + 6 h: read on


def test_a_cut_publishes_its_heads_at_once_where_other_workers_hold() -> None:
    """A cut's heads are written right away for the other workers (not after the cycle's scoring,
    at the next refresh), and only where another worker's partition is known: a worker alone
    writes nothing more than before."""
    import asyncio

    w = _Pair()
    alone = Alignment(6 * HOUR)
    asyncio.run(alone.publish(w.store, "t", {0: T0}))
    assert w.store.heads == {}
    w.refresh(w.a)
    w.refresh(w.b)
    asyncio.run(w.a.publish(w.store, "t", {0: T0 + 40 * HOUR}))
    assert w.store.heads[0] == T0 + 40 * HOUR


def test_workers_started_before_the_history_hold_each_other_from_their_first_cut() -> None:
    """The README's recipe: two workers started, then the history published. Their first full read
    (progress, log ends: once a second) came before the publish and found nothing of the other's
    partition: no progress stored, an empty log. A is cut at its first batch (its first unread
    event 07:00) and publishes that at once; B, whose own partition let it read on to 20:00, reads
    A's head within ``HEADS_EVERY_S`` and is held by it. Until 5 December 2026 a foreign partition
    held only once the full read had found its stored progress behind its log end, so for that
    first second neither worker published at its cuts nor read the other's heads: each read on
    alone, days of event time a second: in a traced run of the two-worker replay
    (tests/test_aligned_replay_e2e.py, copies behind in 9 of 20 runs then) they were 9 days apart
    at the second read, past the account watermark's 7-day grace, and the slower one's copies
    reached their account behind it (docs/REVENUE.md, "Two workers from their first cut")."""
    import asyncio

    w = _Pair()
    a, b, p0, p1 = w.a, w.b, w.p0, w.p1
    w.store.progress, w.consumer.ends, w.stream = {}, {0: 0, 1: 0}, lambda p: NEVER  # type: ignore[method-assign]
    w.refresh(a)
    w.refresh(b)  # both before the publish: nothing known of the other
    w.consumer.ends = {0: 100, 1: 100}  # the history published; each read a batch and was cut
    a.paused[p0], b.paused[p1] = T0 + 7 * HOUR, T0 + 20 * HOUR
    asyncio.run(a.publish(w.store, "t", a.own_holding(w.consumer, {p0}, {0: 51}, w.stream, {}, w.busy)))
    assert w.store.heads[0] == T0 + 7 * HOUR
    w.refresh(b, full=False)  # held back: the heads read again, no full read
    assert b.holding(w.consumer, {p1}, {1: 51}, w.stream, {}, w.busy)[0] == T0 + 7 * HOUR
    w.release(b)
    assert b.paused == {p1: T0 + 20 * HOUR}  # 20:00 is past 07:00 + 6 h: B waits for A
    w.refresh(b)  # the next full read: still no progress stored for A's partition, its head holds
    w.release(b)
    assert b.paused == {p1: T0 + 20 * HOUR}
