"""One worker cycle, Kafka-free: decode, event time, read states, advance users, alert, write.

``Pipeline.process`` takes the records of one ``getmany`` (any objects with ``offset``, ``key``,
``value`` and ``timestamp``) and does, in this order (ARCHITECTURE.md, "Effectively-once"):

1. decode: validate each record (``streams.worker.codec``), fold event time and reject late events
   (``streams.worker.clock``), reject an ``event_id`` seen twice for one user in the batch;
2. plan the reads and read: one pipelined Redis read (one script call per bucket touched:
   offsets, states, due users);
3. advance: ``models.engine.advance`` once per user with events or a due review, up to the
   partition's review clock; events at or below the bucket's stored offset are skipped (replay fence);
4. produce: subscription events copied to their account's partition, alerts and DLQ records,
   acks awaited - *before* the state write, so a crash in between re-sends the same alert ids
   instead of losing them (at-least-once);
5. write: one pipelined Redis write (one fenced script call per bucket), then, when the batch
   held account copies (``streams.worker.revenue``), one read and one fenced write per account
   bucket: account states and the period MRR counters;
6. progress: the partitions' progress write.

Phases 1-3 without their I/O are the pure functions of ``streams.worker.phases``.

DLQ records, like alerts, are at-least-once: a replayed batch sends its rejections again.

Redis or broker trouble is retried here with exponential back-off (capped at 2 s), forever unless
the caller asks to abandon the cycle (partitions revoked). A fenced bucket (another worker owns
the partition now) abandons the cycle: the caller re-reads from the batch's first offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Awaitable, Callable, Mapping, Protocol, Sequence, TypeVar

import orjson
import redis.exceptions
from aiokafka.errors import KafkaError

from models.model import ChurnModel
from streams.settings import Settings
from streams.worker import metrics
from streams.worker.clock import NEVER, TopicClock
from streams.worker.codec import Decoder
from streams.worker.phases import (
    NO_DUE,
    Advanced,
    CycleResult,
    Decoded,
    KafkaRecord,
    RecordLike,
    advance_users,
    decode_batch,
    plan_reads,
    plan_sweep,
)
from streams.worker.members import member_copies
from streams.worker.routing import KafkaCopy, Router
from streams.worker.revenue import AccountsAdvanced, AccountTick, advance_accounts, plan_account_reads
from streams.worker.store import BucketWrite, Fenced, Store

__all__ = ["RecordLike", "Producer", "CycleResult", "CycleAbandoned", "Pipeline", "REDIS_TRANSIENT", "NO_DUE"]

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
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0


class Producer(Protocol):
    """Where alerts and DLQ records go; ``send_all`` returns once the broker acknowledged all."""

    async def send_all(self, topic: str, records: Sequence[tuple[bytes | None, bytes]] | Sequence[KafkaCopy]) -> None: ...


class CycleAbandoned(Exception):
    """The cycle was given up (partitions revoked, or fenced by another worker); nothing was lost:
    its records must be read again by whoever owns the partitions."""

    def __init__(self, why: str, fenced: Sequence[Fenced] = ()) -> None:
        super().__init__(why)
        self.fenced = list(fenced)


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
        self.router = Router("dlq" if settings.miskeyed == "dlq" else "reroute")
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.abandon_requested: Callable[[], bool] = lambda: False
        # Called once a cycle has scored its batch and starts applying it (produce, write,
        # progress): the consumer resumes fetching then, so the next fetch overlaps this tail.
        self.applying: Callable[[], None] = lambda: None
        self._cycle = 0
        # p -> per bucket, a lower bound of the earliest due review in Redis (seconds; 0: unknown).
        # Only this worker writes p's due entries (the offset fence), so the bound stays true
        # between reads: each sweep learns the next due score, each state write can only lower it.
        self._due_min: dict[int, list[int]] = {}
        # p -> a lower bound of its accounts' earliest due review (s; 0: unknown), as for users.
        self._account_due_min: dict[int, int] = {}

    # -- partition ownership ------------------------------------------------------------------

    def assign(self, partition: int, progress: tuple[int, int] | None, wall_now_ms: int,
               origins: Mapping[int, int] | None = None) -> int:
        """Own p from its stored progress (and the origin offsets of the re-routed copies applied
        to it); returns the offset to seek to (0: from the start)."""
        stream_ms = progress[1] if progress and progress[1] > 0 else None
        self.clock.assign(partition, stream_ms, wall_now_ms)
        self.router.assign(partition, origins or {})
        self._due_min[partition] = [0] * self.store.buckets  # unknown until the first sweep
        self._account_due_min[partition] = 0
        return progress[0] + 1 if progress else 0

    def revoke(self, partition: int) -> None:
        self.clock.revoke(partition)
        self.router.revoke(partition)
        self._due_min.pop(partition, None)
        self._account_due_min.pop(partition, None)

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
        """The phases in order; see the module docstring for why alerts go before states."""
        timer = _PhaseTimer()
        clock, store, topic = self.clock, self.store, self.topic
        decoded = decode_batch(batch, clock.partitions, self.decoder, wall_now_ms, topic=topic,
                               max_dlq_value_bytes=self.settings.max_event_bytes, router=self.router)
        timer.mark("decode")
        result = CycleResult(consumed=decoded.consumed, rejected=decoded.rejected)
        until_ms = {p: clock.review_until_ms(p, wall_now_ms) for p in clock.partitions}
        sweep = plan_sweep(until_ms, self._due_min, store.buckets)
        ticks = await self._account_ticks(until_ms)
        if not decoded.last_offset and not sweep and not ticks:
            result.idle = True
            return result
        plans = plan_reads(decoded.users, sweep, store.buckets, store.groups)
        result.buckets = len(plans)
        replies = await self._retry_redis("read", store.read, [plan.read(topic) for plan in plans])
        timer.mark("read")
        advanced = advance_users(plans, replies, decoded, until_ms, self.model, topic=topic, due_limit=store.due_limit,
                                 result=result, history=self.settings.score_history)
        timer.mark("advance")
        self.applying()
        members = member_copies(decoded.member_of, [plan.users for plan in plans], replies, advanced.writes, self.model)
        copies = decoded.routed.copies + decoded.account_copies + members
        await self._produce(advanced.alerts, decoded.dlq, copies)
        timer.mark("produce")
        await self._write(advanced.writes)
        if decoded.accounts or ticks:
            await self._accounts(decoded, ticks)
        timer.mark("write")
        self._learn_due(advanced)
        if decoded.routed.origins:  # before the progress: a replay of these records finds them applied
            await self._retry_redis("progress", self.store.write_origins, topic, self.router.merged(decoded.routed))
        if decoded.last_offset:
            result.progress = await self._write_progress(decoded.last_offset, decoded.last_fingerprint)
        self.router.commit(decoded.routed)
        timer.mark("progress")
        _count(result, decoded, timer)
        return result

    async def _produce(self, alerts: Sequence[KafkaRecord], dlq: Sequence[KafkaRecord], copies: Sequence[KafkaCopy]) -> None:
        """Re-routed and account copies, alerts and DLQ records, acknowledged before any state is
        written (at-least-once: a replay makes them again; re-routed copies are then dropped by their
        owner, and a subscription statement copied twice changes nothing)."""
        if copies:
            await self._retry_kafka("copies", self.producer.send_all, self.topic, copies)
        if alerts:
            await self._retry_kafka("alerts", self.producer.send_all, self.settings.topic_alerts, alerts)
        if dlq:
            await self._retry_kafka("dlq", self.producer.send_all, self.settings.topic_dlq, dlq)

    async def _write(self, writes: Sequence[BucketWrite]) -> None:
        """The fenced state writes; a fenced bucket abandons the cycle (another worker owns p)."""
        self._cycle += 1
        token = f"{self.worker_id}:{self._cycle}"
        fenced = await self._retry_redis("write", self.store.write, writes, token)
        if fenced:
            logger.warning(
                "cycle fenced in %s bucket(s): %s now at offset %s (another worker owns it); re-reading",
                len(fenced), fenced[0].field, fenced[0].actual,
            )
            raise CycleAbandoned("fenced", fenced)

    async def _account_ticks(self, until_ms: Mapping[int, int | None]) -> list[AccountTick]:
        """Accounts whose review came due on the partitions' review clocks (as users' reviews:
        due at second s once the clock is past ``s * 1000``); learns each partition's next due."""
        bounds = {p: (until - 1) // 1000 for p, until in until_ms.items()
                  if until is not None and p in self._account_due_min and self._account_due_min[p] * 1000 < until}
        if not bounds:
            return []
        limit = self.store.due_limit
        found = await self._retry_redis("account dues", self.store.due_accounts, self.topic, bounds, limit)
        ticks = []
        for p, (due, nxt) in found.items():
            ticks += [AccountTick(p, account, due_s * 1000) for account, due_s in due]
            self._account_due_min[p] = 0 if len(due) >= limit else NO_DUE if nxt is None else nxt
        return ticks

    async def _accounts(self, decoded: Decoded, ticks: Sequence[AccountTick] = ()) -> None:
        """The cycle's account copies and due accounts: read their buckets, apply, one fenced
        write per bucket, then their next reviews."""
        copies = [*decoded.accounts, *ticks]
        reads = plan_account_reads(copies, self.topic, self.store.buckets)
        replies = await self._retry_redis("read accounts", self.store.read_accounts, reads)
        done = advance_accounts(copies, reads, replies, self.topic, decoded.last_offset)
        if done.alerts:  # before the write, as for users: a replay re-sends the same ids
            await self._retry_kafka("account alerts", self.producer.send_all, self.settings.topic_alerts, done.alerts)
        self._cycle += 1
        fenced = await self._retry_redis("write accounts", self.store.write_accounts, done.writes,
                                         f"{self.worker_id}:{self._cycle}")
        if fenced:
            logger.warning("account write fenced in %s bucket(s): %s now at offset %s; re-reading",
                           len(fenced), fenced[0].field, fenced[0].actual)
            raise CycleAbandoned("fenced", fenced)
        if done.dues:  # after the fenced write; a crash in between reviews again at the old time (same ids)
            await self._retry_redis("account dues", self.store.write_account_dues, self.topic, done.dues)
            for p, accounts in done.dues.items():
                lowest = min((s for s in accounts.values() if s), default=None)
                if p in self._account_due_min and lowest is not None and lowest < self._account_due_min[p]:
                    self._account_due_min[p] = lowest
        _count_revenue(done)

    def _learn_due(self, advanced: Advanced) -> None:
        """After the write: what the sweeps learnt, and the due seconds written (can only lower)."""
        for p, b, due_s in advanced.learned:
            if p in self._due_min:
                self._due_min[p][b] = due_s
        for p, b, due_s in advanced.lowered:
            due_min = self._due_min.get(p)
            if due_min is not None and due_s < due_min[b]:
                due_min[b] = due_s

    async def _write_progress(self, last_offset: Mapping[int, int], fingerprints: Mapping[int, str]) -> dict[int, tuple[int, int]]:
        progress = {}
        for p, off in last_offset.items():
            s = self.clock.partitions[p].stream_ms
            progress[p] = (off, s if s != NEVER else 0)
        everything = await self._retry_redis("progress", self.store.write_progress, self.topic, progress, fingerprints)
        self.observe_global(everything)
        return progress

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


def _count_revenue(done: AccountsAdvanced) -> None:
    """Totals for Prometheus (never per account): movements added and retracted, late statements."""
    for mv in done.added:
        metrics.MRR_MOVEMENTS.labels(mv.kind).inc()
        metrics.MRR_MOVEMENT_CENTS.labels(mv.kind).inc(abs(mv.delta_cents))
    for mv in done.retracted:
        metrics.MRR_MOVEMENTS_RETRACTED.labels(mv.kind).inc()
        metrics.MRR_MOVEMENT_CENTS_RETRACTED.labels(mv.kind).inc(abs(mv.delta_cents))
    if done.late:
        metrics.SUBSCRIPTION_LATE.inc(done.late)
    for alert in done.alerts:
        metrics.ALERTS.labels(orjson.loads(alert[1])["kind"]).inc()
    metrics.SUBSCRIPTIONS_APPLIED.inc(done.applied)


class _PhaseTimer:
    """Wall time of each phase of a cycle (metric ``churnwatch_cycle_phase_seconds``)."""

    __slots__ = ("start", "last", "phases")

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.phases: list[tuple[str, float]] = []

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases.append((phase, now - self.last))
        self.last = now


def _count(result: CycleResult, decoded: Decoded, timer: _PhaseTimer) -> None:
    """The cycle's counters and timings, once it is complete."""
    metrics.EVENTS_PROCESSED.inc(result.processed)
    if decoded.unknown_types:
        metrics.EVENTS_UNKNOWN_TYPE.inc(decoded.unknown_types)
    if decoded.derived_ids:
        metrics.EVENTS_DERIVED_ID.inc(decoded.derived_ids)
    for reason, n in decoded.routed.rerouted.items():
        metrics.EVENTS_REROUTED.labels(reason).inc(n)
    if decoded.routed.duplicates:
        metrics.REROUTED_DUPLICATES.inc(decoded.routed.duplicates)
    for reason, n in result.rejected.items():
        metrics.EVENTS_REJECTED.labels(reason).inc(n)
    for kind, n in result.alerts.items():
        metrics.ALERTS.labels(kind).inc(n)
    metrics.BATCH_SIZE.observe(result.consumed)
    metrics.BATCH_SECONDS.observe(timer.last - timer.start)
    phase = metrics.CYCLE_PHASE_SECONDS.labels
    for name, seconds in timer.phases:
        phase(name).observe(seconds)
