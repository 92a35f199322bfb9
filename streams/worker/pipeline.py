"""One worker cycle, Kafka-free: decode, event time, read states, advance users, alert, write.

``Pipeline.process`` takes the records of one ``getmany`` (any objects with ``offset``, ``key``,
``value`` and ``timestamp``) and does, in this order (ARCHITECTURE.md, "Effectively-once"):

1. decode + validate each record (``streams.worker.codec``), fold event time and reject late events
   (``streams.worker.clock``), reject an ``event_id`` seen twice for one user in the batch;
2. one pipelined Redis read (one script call per bucket touched: offsets, states, due users);
3. ``models.engine.advance`` once per user with events or a due review, up to the partition's
   review clock; events at or below the bucket's stored offset are skipped (replay fence);
4. produce alerts and DLQ records and await their acks - *before* the state write, so a crash
   in between re-sends the same alert ids instead of losing them (at-least-once);
5. one pipelined Redis write (one fenced script call per bucket), then the progress write.

DLQ records, like alerts, are at-least-once: a replayed batch sends its rejections again.

Redis or broker trouble is retried here with exponential back-off (capped at 2 s), forever unless
the caller asks to abandon the cycle (partitions revoked). A fenced bucket (another worker owns
the partition now) abandons the cycle: the caller re-reads from the batch's first offsets.
Hot path: no per-event Redis call or coroutine; a handful of dict operations per event.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Protocol, Sequence, TypeVar

import orjson
import redis.exceptions
from aiokafka.errors import KafkaError

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.scoring import risk_at
from models.state import UserState
from streams.worker import metrics
from streams.worker.clock import NEVER, TopicClock
from streams.worker.codec import Decoder, Rejection, dlq_value
from streams.worker.keys import locate
from streams.settings import Settings
from streams.worker.store import UNCHANGED, BucketRead, BucketWrite, Fenced, StateWrite, Store, stats_delta

__all__ = ["RecordLike", "Producer", "CycleResult", "CycleAbandoned", "Pipeline"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors after which the whole cycle is retried (nothing was committed): outages, and a cluster
#: that is failing over or moving slots.
REDIS_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    asyncio.TimeoutError,
    OSError,
)
NO_DUE = 2**62  # a bucket's due index holds nothing (seconds)
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0


class RecordLike(Protocol):
    """What the pipeline reads of a Kafka record (aiokafka's ConsumerRecord has all of it)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


class Producer(Protocol):
    """Where alerts and DLQ records go; ``send_all`` returns once the broker acknowledged all."""

    async def send_all(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None: ...


class CycleAbandoned(Exception):
    """The cycle was given up (partitions revoked, or fenced by another worker); nothing was lost:
    its records must be read again by whoever owns the partitions."""

    def __init__(self, why: str, fenced: Sequence[Fenced] = ()) -> None:
        super().__init__(why)
        self.fenced = list(fenced)


@dataclass(slots=True)
class CycleResult:
    consumed: int = 0
    processed: int = 0  # events applied to states (after the replay fence)
    skipped: int = 0  # events at or below a bucket's stored offset (already applied)
    rejected: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    users: int = 0  # users advanced
    due_users: int = 0  # of which because a review was due
    expired: int = 0
    buckets: int = 0  # buckets read/written
    progress: dict[int, tuple[int, int]] = field(default_factory=dict)  # written: p -> (offset, S_p)
    idle: bool = False  # nothing to do: no records and no review clock moved


@dataclass(slots=True)
class _UserBatch:
    """One user's events in this batch, with their offsets for the per-bucket replay fence."""

    partition: int
    events: list[Event] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)


class Pipeline:
    """The cycle logic of one worker; owns the clocks of its partitions."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        producer: Producer,
        model: ChurnModel,
        *,
        clock: TopicClock | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.model = model
        self.topic = settings.topic_events
        self.clock = clock or TopicClock(settings.allowed_lateness_ms, settings.idle_partition_ms, settings.clock)
        self.decoder = Decoder(max_event_bytes=settings.max_event_bytes, max_clock_skew_ms=settings.max_clock_skew_ms)
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.abandon_requested: Callable[[], bool] = lambda: False
        self._cycle = 0
        # p -> per bucket, a lower bound of the earliest due review in Redis (seconds; 0: unknown).
        # Only this worker writes p's due entries (the offset fence), so the bound stays true
        # between reads: each sweep learns the next due score, each state write can only lower it.
        self._due_min: dict[int, list[int]] = {}

    # -- partition ownership ------------------------------------------------------------------

    def assign(self, partition: int, progress: tuple[int, int] | None, wall_now_ms: int) -> int:
        """Own p from its stored progress; returns the offset to seek to (0: from the start)."""
        stream_ms = progress[1] if progress and progress[1] > 0 else None
        self.clock.assign(partition, stream_ms, wall_now_ms)
        self._due_min[partition] = [0] * self.store.buckets  # unknown until the first sweep
        return progress[0] + 1 if progress else 0

    def revoke(self, partition: int) -> None:
        self.clock.revoke(partition)
        self._due_min.pop(partition, None)

    def observe_global(self, progress: Mapping[int, tuple[int, int]]) -> None:
        for _, max_ms in progress.values():
            if max_ms > 0:
                self.clock.observe_global(max_ms)

    # -- the cycle ----------------------------------------------------------------------------

    async def process(self, batch: Mapping[int, Sequence[RecordLike]], wall_now_ms: int) -> CycleResult:
        """Run one cycle over ``batch`` (partition -> records in offset order) and sweeps due now.

        Raises ``CycleAbandoned`` when the cycle must be re-read (revoked or fenced); the clocks
        are then as before the call.
        """
        clock = self.clock
        snapshots = {p: c.snapshot() for p, c in clock.partitions.items()}
        try:
            return await self._process(batch, wall_now_ms)
        except BaseException:
            for p, snap in snapshots.items():
                c = clock.partitions.get(p)
                if c is not None:
                    c.restore(snap)
            raise

    async def _process(self, batch: Mapping[int, Sequence[RecordLike]], wall_now_ms: int) -> CycleResult:
        t_start = time.perf_counter()
        result = CycleResult()
        topic = self.topic
        clock = self.clock
        rejected = result.rejected
        dlq: list[tuple[bytes | None, bytes]] = []
        dlq_limit = self.settings.max_event_bytes

        def reject(p: int, rec: RecordLike, rej: Rejection) -> None:
            rejected[rej.reason] = rejected.get(rej.reason, 0) + 1
            dlq.append(
                (rec.key, dlq_value(rej, topic=topic, partition=p, offset=rec.offset, timestamp_ms=rec.timestamp,
                                    value=rec.value, max_value_bytes=dlq_limit))
            )

        # 1. decode, event time, lateness, in-batch duplicates; group by user
        decode = self.decoder.decode
        users: dict[str, _UserBatch] = {}
        seen_ids: dict[str, str] = {}  # event_id -> user_id, batch-wide
        seen_pairs: set[tuple[str, str]] = set()  # (user_id, event_id) once ids collide across users
        last_offset: dict[int, int] = {}
        unknown_before = self.decoder.unknown_types
        for p, records in batch.items():
            pclock = clock.partitions.get(p)
            if not records or pclock is None:
                continue
            result.consumed += len(records)
            admit = pclock.admit
            for rec in records:
                ev = decode(rec.value, wall_now_ms)
                if ev.__class__ is Rejection:
                    reject(p, rec, ev)  # type: ignore[arg-type]
                    continue
                uid = ev.user_id  # type: ignore[union-attr]
                eid = ev.event_id  # type: ignore[union-attr]
                owner = seen_ids.get(eid)
                # Duplicates are rejected before the clock sees them: a rejected copy must not
                # move the partition's stream time (and so make good events late).
                if owner is not None and (owner == uid or (uid, eid) in seen_pairs):
                    reject(p, rec, Rejection("duplicate_event_id", f"event_id {eid[:64]!r} seen twice in the batch for one user"))
                    continue
                if not admit(ev.ts_ms):  # type: ignore[union-attr]
                    reject(p, rec, Rejection("late", f"ts {ev.ts_ms} ms is before the partition's cutoff {pclock.cutoff_ms} ms"))  # type: ignore[union-attr]
                    continue
                if owner is None:
                    seen_ids[eid] = uid
                else:
                    seen_pairs.add((uid, eid))
                ub = users.get(uid)
                if ub is None:
                    ub = users[uid] = _UserBatch(p)
                ub.events.append(ev)  # type: ignore[arg-type]
                ub.offsets.append(rec.offset)
            last_offset[p] = records[-1].offset
        unknown = self.decoder.unknown_types - unknown_before
        t_decoded = time.perf_counter()

        # 2. review clocks; which buckets' due indexes hold a review due before them (a review due
        # at second s runs once the clock is past s * 1000 ms, models.engine.advance)
        until_ms: dict[int, int | None] = {p: clock.review_until_ms(p, wall_now_ms) for p in clock.partitions}
        buckets, groups = self.store.buckets, self.store.groups
        sweep: dict[int, dict[int, int]] = {}  # bucket -> {p: sweep up to this second}
        for p, until in until_ms.items():
            due_min = self._due_min.get(p)
            if until is None or due_min is None:
                continue
            until_s = until // 1000
            for b in range(buckets):
                if due_min[b] * 1000 < until:
                    sweep.setdefault(b, {})[p] = until_s
        if not last_offset and not sweep:
            result.idle = True
            return result

        # 3. read plan: one script call per bucket touched
        fields = {p: f"{topic}:{p}" for p in clock.partitions}
        plan: dict[int, tuple[dict[int, int | None], list[tuple[int, str]]]] = {}
        where: dict[str, tuple[int, int]] = {}
        for uid, ub in users.items():
            b, g = locate(uid, buckets, groups)
            where[uid] = (b, g)
            entry = plan.get(b)
            if entry is None:
                entry = plan[b] = ({}, [])
            entry[0].setdefault(ub.partition, None)
            entry[1].append((g, uid))
        for b, due_parts in sweep.items():
            entry = plan.get(b)
            if entry is None:
                entry = plan[b] = ({}, [])
            entry[0].update(due_parts)
        for p in last_offset:  # every bucket of a partition with records gets its offset fenced
            for entry in plan.values():
                entry[0].setdefault(p, None)
        reads = [
            BucketRead(b, [(fields[p], due) for p, due in parts.items()], ulist) for b, (parts, ulist) in plan.items()
        ]
        result.buckets = len(reads)
        replies = await self._retry_redis("read", self.store.read, reads)
        t_read = time.perf_counter()

        # 4. advance every user with events or a due review
        model = self.model
        alerts_out: list[tuple[bytes | None, bytes]] = []
        alert_kinds = result.alerts
        writes: list[BucketWrite] = []
        learned: list[tuple[int, int, int]] = []  # (p, bucket, lower bound of its next due second)
        lowered: list[tuple[int, int, int]] = []  # (p, bucket, due second written)
        due_limit = self.store.due_limit
        for read, reply in zip(reads, replies):
            b = read.bucket
            parts = [p for p in plan[b][0]]
            expected = dict(zip(parts, reply.offsets))
            write = BucketWrite(b, [])
            for p in parts:
                exp = expected[p]
                new = ""
                if p in last_offset and last_offset[p] > (int(exp) if exp else -1):
                    new = str(last_offset[p])
                write.parts.append((fields[p], exp, new))
            todo: dict[str, tuple[int, int, bytes | None, list[Event]]] = {}
            for (g, uid), blob in zip(read.users, reply.blobs):
                ub = users[uid]
                exp = expected[ub.partition]
                fence = int(exp) if exp else -1
                if fence >= ub.offsets[0]:
                    events = [ev for ev, off in zip(ub.events, ub.offsets) if off > fence]
                    result.skipped += len(ub.events) - len(events)
                else:
                    events = ub.events
                todo[uid] = (g, ub.partition, blob, events)
            for p, dues, nxt in zip(parts, reply.dues, reply.next_due):
                if p in sweep.get(b, ()):
                    # more than due_limit due: sweep again next cycle; else the next one after
                    learned.append((p, b, 0 if len(dues) >= due_limit else NO_DUE if nxt is None else nxt))
                for due in dues:
                    if due.user_id not in todo:
                        todo[due.user_id] = (due.group, p, due.blob, [])
                        result.due_users += 1
            stats = write.stats
            for uid, (g, p, blob, events) in todo.items():
                until = until_ms.get(p)
                old: UserState | None = None
                if blob:
                    try:
                        old = UserState.from_bytes(blob)
                    except ValueError as exc:
                        logger.warning("unreadable state record in bucket %s (%s): starting that user afresh", b, exc)
                if until is None:
                    if not events:
                        continue
                    until = max(ev.ts_ms for ev in events)
                if old is None and not events:  # a due entry without a state: clean it up
                    write.states.append(StateWrite(g, uid, None, fields[p], 0, None))
                    continue
                out = advance(uid, old, events, until, model)
                result.users += 1
                result.processed += len(events)
                new_state: UserState | None = out.state
                if out.expire:
                    result.expired += 1
                    new_state = None
                    write.states.append(StateWrite(g, uid, None, fields[p], 0, None))
                else:
                    st = out.state
                    risk: float | None = None
                    if st.at_risk_since_s:
                        risk = risk_at(st, st.last_review_s or until // 1000, model)
                    elif old is not None and not old.at_risk_since_s:
                        risk = UNCHANGED  # not in the ranking before either
                    due = UNCHANGED if old is not None and old.next_review_s == st.next_review_s else st.next_review_s
                    write.states.append(StateWrite(g, uid, st.to_bytes(), fields[p], due, risk))
                    if st.next_review_s:
                        lowered.append((p, b, st.next_review_s))
                stats_delta(old, new_state, out.alerts, stats)
                for alert in out.alerts:
                    alert_kinds[alert.kind] = alert_kinds.get(alert.kind, 0) + 1
                    alerts_out.append((uid.encode(), orjson.dumps(alert.to_dict())))
            if write.states or write.stats or any(new for _, _, new in write.parts):
                writes.append(write)

        t_advanced = time.perf_counter()
        # 5. alerts and DLQ acknowledged before any state is written
        if alerts_out:
            await self._retry_kafka("alerts", self.producer.send_all, self.settings.topic_alerts, alerts_out)
        if dlq:
            await self._retry_kafka("dlq", self.producer.send_all, self.settings.topic_dlq, dlq)

        t_produced = time.perf_counter()
        # 6. fenced state writes, then progress
        self._cycle += 1
        token = f"{self.worker_id}:{self._cycle}"
        fenced = await self._retry_redis("write", self.store.write, writes, token)
        if fenced:
            logger.warning(
                "cycle fenced in %s bucket(s): %s now at offset %s (another worker owns it); re-reading",
                len(fenced), fenced[0].field, fenced[0].actual,
            )
            raise CycleAbandoned("fenced", fenced)
        t_written = time.perf_counter()
        for p, b, due_s in learned:
            if p in self._due_min:
                self._due_min[p][b] = due_s
        for p, b, due_s in lowered:
            due_min = self._due_min.get(p)
            if due_min is not None and due_s < due_min[b]:
                due_min[b] = due_s
        if last_offset:
            progress = {}
            for p, off in last_offset.items():
                s = clock.partitions[p].stream_ms
                progress[p] = (off, s if s != NEVER else 0)
            everything = await self._retry_redis("progress", self.store.write_progress, topic, progress)
            self.observe_global(everything)
            result.progress = progress

        metrics.EVENTS_PROCESSED.inc(result.processed)
        if unknown:
            metrics.EVENTS_UNKNOWN_TYPE.inc(unknown)
        for reason, n in rejected.items():
            metrics.EVENTS_REJECTED.labels(reason).inc(n)
        for kind, n in alert_kinds.items():
            metrics.ALERTS.labels(kind).inc(n)
        t_end = time.perf_counter()
        metrics.BATCH_SIZE.observe(result.consumed)
        metrics.BATCH_SECONDS.observe(t_end - t_start)
        phase = metrics.CYCLE_PHASE_SECONDS.labels
        for name, seconds in (("decode", t_decoded - t_start), ("read", t_read - t_decoded), ("advance", t_advanced - t_read),
                              ("produce", t_produced - t_advanced), ("write", t_written - t_produced), ("progress", t_end - t_written)):
            phase(name).observe(seconds)
        return result

    # -- retries ------------------------------------------------------------------------------

    async def _retry_redis(self, what: str, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        return await self._retry(f"Redis {what}", REDIS_TRANSIENT, fn, *args)

    async def _retry_kafka(self, what: str, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        return await self._retry(f"producing {what}", (KafkaError,), fn, *args)

    async def _retry(
        self, what: str, errors: tuple[type[BaseException], ...], fn: Callable[..., Awaitable[T]], *args: object
    ) -> T:
        """Call ``fn`` until it succeeds, backing off exponentially; a rebalance abandons the cycle."""
        delay = BACKOFF_START_S
        while True:
            if self.abandon_requested():
                raise CycleAbandoned(f"abandoned before {what}")
            try:
                return await fn(*args)
            except errors as exc:
                if errors is REDIS_TRANSIENT:
                    metrics.REDIS_ERRORS.inc()
                logger.warning("%s failed (%s: %s); retrying in %.2f s", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX_S, delay * 2)
