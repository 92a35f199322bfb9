"""One worker cycle, Kafka-free: decode, event time, read states, advance users, alert, write.

``Pipeline.submit`` takes the records of one ``getmany`` (any objects with ``offset``, ``key``,
``value`` and ``timestamp``) and does, in this order (ARCHITECTURE.md, "Effectively-once"):

1. decode: validate each record (``streams.worker.codec``), fold event time and reject late events
   (``streams.worker.clock``), reject an ``event_id`` seen twice for one user in the batch;
2. plan the reads and read: pipelined Redis reads (a script call per bucket touched, several
   buckets a call: offsets, states, due users), in chunks of whole buckets;
3. advance: ``models.engine.advance`` once per user with events or a due review, up to the
   partition's review clock; events at or below the bucket's stored offset are skipped (replay fence).
   Each chunk is advanced once its reply is in, while the next chunk is being read (``read_chunks``);
   with ``alerts_per_chunk`` each chunk but the last hands its user alerts to the producer then
   (their acks awaited in step 4 with the rest);

then starts the cycle's *tail* in a task and returns (a ``Flight``) once the tail has handed its
records to the producer (step 4's sends queued, their acks not awaited):

4. produce: subscription events copied to their account's partition, alerts and DLQ records,
   acks awaited - *before* the state write, so a crash in between re-sends the same alert ids
   instead of losing them (at-least-once);
5. write, once the previous cycle's tail is done: one pipelined Redis write (one fenced script
   call per bucket), then, when the batch held account copies or accounts came due
   (``streams.worker.revenue``), one read and one fenced write per account bucket;
6. progress: the partitions' progress write (with the stream time after this cycle's records),
   in the state write's round trip, behind its scripts, and applied only if every bucket write
   of the cycle did (``lua/progress.lua``'s guard); on its own, after them, when account work or
   re-routed copies' origins must land first, or on a cluster.

``Pipeline.settle`` waits for a flight's tail, oldest first. ``process`` is submit + settle: one
cycle to its end, as with ``pipeline_depth`` 1. With depth 2 the consumer submits cycle N+1
while N's tail runs: N+1's fetch, decode, read and scoring overlap N's waits for the broker's
acks and for Redis. The rules that make this safe:

- writes are applied in cycle order (a tail writes only after the previous tail succeeded), and
  each cycle's alerts, DLQ records and copies are acked before its own write;
- N+1's read may come before or after N's write reaches Redis, so N's writes are laid over it
  (``streams.worker.pending``): N+1 scores from N's states, fences on N's offsets and does not
  sweep a review N already ran - the same read a serial worker would have made;
- a tail that fails (fenced, revoked, Redis lost) abandons every later cycle before it writes
  anything and restores the clocks, the re-routing state and the due-index bounds to before the
  failed cycle: the caller reads again from its first offsets.

Phases 1-3 without their I/O are the pure functions of ``streams.worker.phases``.

DLQ records, like alerts, are at-least-once: a replayed batch sends its rejections again.

Redis or broker trouble is retried here with exponential back-off (capped at 2 s), forever unless
the caller asks to abandon the cycle (partitions revoked). A fenced bucket (another worker owns
the partition now) abandons the cycle: the caller re-reads from the batch's first offsets.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Protocol, Sequence, TypeVar

import orjson
import redis.exceptions
from aiokafka.errors import KafkaError

from models.intake import UNTRACKED_NAMES_MAX
from models.model import ChurnModel
from models.quiet_period import QuietPeriod
from streams.kafka_admin import RETRY_LOGGER
from streams.settings import Settings
from streams.worker import metrics
from streams.timefmt import format_ts
from streams.worker.account_alerts import withhold_before
from streams.worker.clock import NEVER, Jump, TopicClock
from streams.worker.codec import Decoder
from streams.worker.keys import OffsetFields
from streams.worker.ledger import StoreRolledBack, WriteLedger
from streams.worker.phases import (
    NO_DUE,
    Advanced,
    BucketPlan,
    CycleResult,
    Decoded,
    Decoding,
    KafkaRecord,
    RecordLike,
    advance_users,
    drop_erased_copies,
    plan_reads,
    plan_sweep,
)
from streams.worker.members import member_copies, turn_copies
from streams.worker.partitioner import partitions_of
from streams.worker.pending import PendingWrites, moved_dues, overlay_reads, pending_writes
from streams.worker.routing import KafkaCopy, Router
from streams.worker.revenue import AccountsAdvanced, AccountTick, advance_accounts, plan_account_reads, warn_dead_lettered
from streams.worker.store import BucketRead, BucketReadResult, BucketWrite, Fenced, ProgressWrite, Store, model_id
from streams.worker.watermark import (Heartbeats, fold_marks, in_flight_bounds, mark_of, release_ms, stamp_marks,
                                      watermark_ms)

__all__ = ["RecordLike", "Producer", "CycleResult", "CycleAbandoned", "Flight", "Pipeline", "REDIS_TRANSIENT", "redis_transient", "NO_DUE",
           "TIMING_HEADER", "timing_header", "read_chunks"]

logger = logging.getLogger(__name__)
retry_logger = logging.getLogger(RETRY_LOGGER)  # a retry every 2 s while Redis is down: rate-limited by the CLI
_UNTRACKED_LOGGED: set[str] = set()  # untracked event names already logged by this process (at most UNTRACKED_NAMES_MAX)
_WITHHELD_LOGGED: set[int] = set()  # partitions whose withheld user alerts this process has logged (_log_withheld)
ACCOUNTS_LOGGED = -1  # _log_withheld's "partition" of account alerts (one line for all of them)

T = TypeVar("T")

#: Redis failures that pass, retried in place with backoff (``Pipeline._retry_redis``): outages, a
#: cluster that is failing over or moving slots, and calls Redis refuses until an operator or a
#: failover acts: out of memory under ``noeviction`` (reads answer, writes are refused), a replica
#: (READONLY). A refused write retried in place keeps its cycle: the cycle failing instead was
#: read, scored and its alerts sent again every 0.05 s (QA8 H3). A script running too long (BUSY)
#: is a plain ResponseError in redis-py: ``redis_transient``.
REDIS_TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    asyncio.TimeoutError,
    OSError,
)


def redis_transient(exc: BaseException) -> bool:
    """Is ``exc`` a Redis failure that passes (``REDIS_TRANSIENT``, or BUSY: another client's
    script or function running past its time limit, which redis-py raises as a plain ResponseError)?

    >>> redis_transient(redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."))
    True
    >>> redis_transient(redis.exceptions.ResponseError("BUSY Redis is busy running a script.")), redis_transient(ValueError())
    (True, False)
    """
    return isinstance(exc, REDIS_TRANSIENT) or (isinstance(exc, redis.exceptions.ResponseError) and _busy(str(exc)))


def _busy(message: str) -> bool:
    """Is ``message`` Redis's BUSY reply, bare (a single call, or a cluster's raw reply) or as
    redis-py's pipeline rewrites it (every store call on a single Redis goes through one: review
    14, L-1)?

    >>> _busy("BUSY Valkey is busy running a script."), _busy("NOPERM no permissions")
    (True, False)
    >>> _busy("Command # 1 (SET x 1) of pipeline caused error: ('BUSY Valkey is busy running a script.',)")
    True
    >>> _busy("Command # 1 (SET BUSY 1) of pipeline caused error: ('NOPERM BUSY',)")
    False
    """
    _, wrapped, inner = message.partition(" of pipeline caused error: (")
    return (inner[1:] if wrapped else message).startswith("BUSY ")


#: Users advanced between two turns of the event loop while other cycles' tails are in flight
#: (~30 us each with the compiled core: ~10 ms).
ADVANCE_SLICE_USERS = 300
#: Users (plus one per bucket) in the first chunk of a cycle's read and in each later one
#: (``read_chunks``): the first is read before any scoring can start, so it is small (~2 ms of
#: Redis's time); each later one is read while the previous one is scored, which takes longer
#: (SCALING.md).
READ_FIRST_CHUNK_USERS = 250
READ_CHUNK_USERS = 1_000
#: Records decoded between two turns of the event loop while other cycles' tails are in flight
#: (~1.5-2.5 us each: ~3-5 ms).
DECODE_SLICE_RECORDS = 2000
#: Header on every user alert: when the worker asked for the batch that raised it, got it, and had
#: scored it (epoch ms, "asked,fetched,scored"); with the record's CreateTime (sent) it splits an
#: alert's delay into the broker's fetch, the wait behind earlier cycles, scoring and the send.
TIMING_HEADER = "churnwatch-timing"
#: Header on every user alert: the id (``<version>@<digest>``, ``store.model_id``) of the model
#: that scored it, so a CRM can tell alerts of a learned successor from its predecessor's.
MODEL_HEADER = "churnwatch-model"
BACKOFF_START_S = 0.05
BACKOFF_MAX_S = 2.0
#: Ids of user alerts the broker acknowledged in cycles that then failed (``Pipeline._abort``), kept
#: until a cycle raising them again is applied, at most this many (the oldest dropped, counted in
#: ``churnwatch_alerts_resent_total``): the retry does not send them again (QA8 H3: a failing write
#: re-sent its cycle's alerts at every attempt). ~100 bytes each: ~10 MB at most.
ACKED_UNAPPLIED_MAX = 100_000
#: How long a failed cycle's abort lets the later cycles' alert sends finish (acks in milliseconds):
#: a send cancelled midway may have reached the broker, and its alerts would go out again.
ABORT_ACKS_WAIT_S = 2.0


class Producer(Protocol):
    """Where alerts and DLQ records go; ``send_all`` returns once the broker acknowledged all."""

    async def send_all(self, topic: str, records: Sequence[tuple[bytes | None, bytes]] | Sequence[KafkaCopy]) -> None: ...


class CycleAbandoned(Exception):
    """The cycle was given up (partitions revoked, or fenced by another worker); nothing was lost:
    its records must be read again by whoever owns the partitions."""

    def __init__(self, why: str, fenced: Sequence[Fenced] = ()) -> None:
        super().__init__(why)
        self.fenced = list(fenced)


@dataclass(slots=True, eq=False)
class _Work:
    """What a scored cycle still has to apply in its tail."""

    decoded: Decoded
    advanced: Advanced
    copies: list[KafkaCopy]
    account_bounds: dict[int, int]
    stream_ms: dict[int, int]  # p -> S_p after this cycle's records (its progress)
    origins: dict[int, dict[int, int]]  # re-routed copies' origin offsets to record (Router.merged)
    release_ms: dict[int, int]  # p -> its accounts' watermark after this cycle's records (streams.worker.watermark)
    timer: "_PhaseTimer"
    timing: bytes = b""  # the alerts' ``churnwatch-timing`` header (``timing_header``)
    model: bytes = b""  # the alerts' ``churnwatch-model`` header: the model that scored this cycle
    # the sends of the alerts handed over chunk by chunk while the cycle was scored (``alerts_per_chunk``);
    # the tail awaits their acks with its own, before the state write
    early: list["asyncio.Future[None]"] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Flight:
    """One submitted cycle: scored, its tail (produce, write, progress) running in ``task`` (None:
    nothing to apply, e.g. idle). ``clocks``/``routes``: the state to restore if it fails."""

    result: CycleResult
    work: _Work | None = None
    clocks: dict[int, tuple[int, int]] = field(default_factory=dict)
    routes: object = None
    dues: dict[int, list[int]] = field(default_factory=dict)  # the due bounds before it (Pipeline._due_min)
    marks: dict[int, dict[int, int]] = field(default_factory=dict)  # the marks read before it (Pipeline._marks)
    # q -> what it bounds later cycles' marks by: the earliest of its copies from q (``watermark.in_flight_bounds``)
    made_marks: dict[int, int] = field(default_factory=dict)
    beats: tuple[int, dict[int, int]] = (0, {})  # the heartbeats' state before it (``Heartbeats.snapshot``)
    pending: PendingWrites | None = None  # its writes, laid over later reads until applied
    task: "asyncio.Future[CycleResult] | None" = None
    queued: "asyncio.Future[None] | None" = None  # done once its tail has handed its records to the producer
    acked: bool = False  # the broker acknowledged all its tail's user alerts (``_tail``)
    produced: "asyncio.Future[None] | None" = None  # done once its tail's sends ended, acknowledged or not

    @property
    def done(self) -> bool:
        """Its tail finished (or it had none): ``Pipeline.settle`` returns at once."""
        return self.task is None or self.task.done()


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
        self.model_header = model_id(model).encode()
        self.topic = settings.topic_events
        self.alerts_from_ms = settings.alerts_from_ms  # user alerts before it kept in the state, not sent (models.step.queue_alerts)
        # the accounts' declared quiet periods (streams/worker/accounts.py): read at connect
        # (``load_quiet``), then every ``QUIET_REFRESH_S`` in the background; None: never read (tests)
        self.quiet: dict[str, tuple[QuietPeriod, ...]] = {}
        self._quiet_read_at: float | None = None
        self._quiet_task: asyncio.Future[None] | None = None
        self.clock = clock or TopicClock(settings.allowed_lateness_ms, settings.idle_partition_ms, settings.clock)
        # The model's renames (``ChurnModel.event_types``) are applied here, as backtest and train apply them.
        self.decoder = Decoder(max_event_bytes=settings.max_event_bytes, max_clock_skew_ms=settings.max_clock_skew_ms,
                               type_map=model.type_map, currency=settings.currency, vocabulary=model.compiled.vocabulary)
        self.router = Router("dlq" if settings.miskeyed == "dlq" else "reroute", partitions=settings.partitions)
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.abandon_requested: Callable[[], bool] = lambda: False
        # Called once a cycle has scored its batch and starts applying it (produce, write,
        # progress): the consumer resumes fetching then, so the next fetch overlaps this tail.
        self.applying: Callable[[], None] = lambda: None
        # Asked before every send into the events topic (copies, heartbeats: ``_send_events``), with
        # whether the previous attempt failed: why the worker must not send into it now (the cycle
        # is abandoned), or None; raises ``KafkaError`` while it cannot tell (the send is retried).
        # The consumer's ``StreamConsumer._events_unusable``.
        self.events_unusable: Callable[[bool], Awaitable[str | None]] = _events_usable
        self._cycle = 0
        # alert id -> its user's partition (dropped on revoke: ``revoke``); ACKED_UNAPPLIED_MAX;
        # a dict: insertion order
        self._acked_unapplied: dict[str, int] = {}
        # p -> per bucket, a lower bound of the earliest due review in Redis (seconds; 0: unknown).
        # Only this worker writes p's due entries (the offset fence), so the bound stays true
        # between reads: each sweep learns the next due score, each state write can only lower it.
        self._due_min: dict[int, list[int]] = {}
        # p -> a lower bound of its accounts' earliest due review (s; 0: unknown), as for users.
        self._account_due_min: dict[int, int] = {}
        # p -> {producing partition q: its latest mark read on p}: p's accounts' watermark
        # (streams.worker.watermark); in memory only, learnt again from copies and heartbeats.
        self._marks: dict[int, dict[int, int]] = {}
        # The topic's partitions, as the state is laid out (``set_partitions``): the producing
        # partitions every watermark waits for, where heartbeats go. The setting until then.
        self.partitions = settings.partitions
        self.heartbeats = Heartbeats(self.partitions)
        self._flights: collections.deque[Flight] = collections.deque()  # submitted, not settled, in order
        self._pending: list[PendingWrites] = []  # writes of cycles in flight not yet applied, oldest first
        # What this worker last wrote to each bucket, Redis acknowledged: a read finding older
        # offsets or tokens means Redis lost writes (streams.worker.ledger; raises StoreRolledBack).
        self.ledger = WriteLedger()
        # p -> its progress offset as this worker last wrote it (Redis acknowledged) or resumed from:
        # a progress write finding less refuses (lua/progress.lua): Redis went back in time.
        self._floors: dict[int, int] = {}
        self._field_names = OffsetFields(self.topic)  # p -> offset_field(topic, p), built once
        self.jump_warnings = JumpWarnings(self.topic)  # stream-time jumps: one WARNING a minute at most

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
        self._marks[partition] = {}
        self.ledger.forget(partition)  # judged again from what Redis holds now
        self._floors.pop(partition, None)
        if progress:
            self._floors[partition] = progress[0]
        return progress[0] + 1 if progress else 0

    def revoke(self, partition: int) -> None:
        self.clock.revoke(partition)
        self.router.revoke(partition)
        self._due_min.pop(partition, None)
        self._account_due_min.pop(partition, None)
        self._marks.pop(partition, None)
        self.ledger.forget(partition)
        self._floors.pop(partition, None)
        if self._acked_unapplied:  # its cycles are applied by the next owner: this worker retries none of them
            self._acked_unapplied = {i: p for i, p in self._acked_unapplied.items() if p != partition}

    def restarted(self, partition: int) -> None:
        """``partition``'s log was replaced and its offsets start again at 0 (``Store.restart_partition``):
        nothing this worker wrote of it is in Redis any more, nor the origins of the copies applied
        to it (the re-route marks of the old log would drop the new log's copies as second ones)."""
        self.ledger.forget(partition)
        self._floors[partition] = -1
        self.router.restarted(partition)

    def account_watermark_ms(self, partition: int) -> int:
        """The watermark of p's accounts (streams.worker.watermark): copies below it are complete."""
        return watermark_ms(self._marks.get(partition, {}), self.partitions, self.settings.account_grace_ms)

    def set_partitions(self, partitions: int) -> None:
        """The topic's partition count as the state is laid out (``StreamConsumer.layout``), not
        ``CHURNWATCH_PARTITIONS`` (only what a created topic gets): with a topic of 4 and the
        setting at 8, partitions 4-7 were waited for and never heard, so every watermark was the
        largest mark less the grace, and every account alert 7 days late."""
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, got {partitions}")
        if partitions != self.partitions:
            self.partitions = self.router.partitions = partitions
            self.heartbeats.address(partitions)

    def set_model(self, model: ChurnModel) -> None:
        """Score the next cycles with ``model`` (a learned successor, at a cycle boundary: the
        consumer settles every cycle in flight first; a partition handed over within the check's
        second can see the old model for up to a second more on its new worker)."""
        self.model, self.model_header = model, model_id(model).encode()
        # A successor keeps the renames and vocabulary (same_vocabulary): never, but never stale.
        if model.type_map != self.decoder.type_map or model.compiled.vocabulary != self.decoder.vocabulary:
            self.decoder = Decoder(max_event_bytes=self.settings.max_event_bytes, max_clock_skew_ms=self.settings.max_clock_skew_ms,
                                   type_map=model.type_map, currency=self.settings.currency,
                                   vocabulary=model.compiled.vocabulary)

    async def look(self) -> None:
        """An idle worker's once-a-second look (``StreamConsumer._check_store``), one round trip:
        ``Store.look`` (incarnation, model, layout, the topic's progress) and the offset fields
        of every bucket the ledger holds, compared with this worker's last acknowledged writes:
        the bucket offsets with the ledger (as a cycle's read), the progress of each owned
        partition with its floor (as ``lua/progress.lua``). Either found older raises
        ``StoreRolledBack``: Redis went back in time while no record arrived (QA13 F7), and the
        worker resumes from it at once instead of at the next record. Floors and ``seq`` are
        taken before the read is sent: only writes acknowledged by then can be judged by it."""
        watched, floors, seq = self.ledger.watched(), dict(self._floors), self.ledger.seq
        progress, found = await self.store.look(self.topic, watched)
        self.ledger.check_found(watched, found, seq)
        for p, floor in floors.items():
            offset = progress[p][0] if p in progress else None
            if floor >= 0 and (offset is None or offset < floor) and p in self._floors:
                raise StoreRolledBack(f"the progress of {self.topic}[{p}]",
                                      "none" if offset is None else f"offset {offset}", f"offset {floor}", p)
        self.observe_global(progress)

    def observe_global(self, progress: Mapping[int, tuple[int, int]]) -> None:
        for _, max_ms in progress.values():
            if max_ms > 0:
                self.clock.observe_global(max_ms)

    # -- the cycle ----------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Cycles submitted whose tail has not been settled yet."""
        return len(self._flights)

    async def process(self, batch: Mapping[int, Sequence[RecordLike]], wall_now_ms: int) -> CycleResult:
        """Run one whole cycle over ``batch`` (partition -> records in offset order) and the sweeps
        due now: ``submit`` then ``settle``, with no other cycle in flight before it.

        Raises ``CycleAbandoned`` when the cycle must be re-read (revoked or fenced); the clocks
        are then as before the call.
        """
        while self._flights:
            await self.settle(self._flights[0])
        return await self.settle(await self.submit(batch, wall_now_ms))

    async def submit(self, batch: Mapping[int, Sequence[RecordLike]], wall_now_ms: int, asked_ms: int | None = None) -> Flight:
        """Decode, read and score ``batch``, then start its tail (produce and await acks, then, once
        every earlier cycle's tail is done, the fenced write, accounts and progress) in a task.

        While earlier cycles' writes are in flight, their results are laid over this cycle's read
        (``streams.worker.pending``). Raises ``CycleAbandoned`` (revoked while retrying) with the
        clocks as before the call; earlier cycles in flight are not affected. ``asked_ms``: when the
        consumer asked for these records (wall ms; ``wall_now_ms`` is when it got them), for the
        alerts' timing header.
        """
        clocks = {p: c.snapshot() for p, c in self.clock.partitions.items()}
        routes = self.router.snapshot()
        dues = {p: list(bounds) for p, bounds in self._due_min.items()}
        marks = {p: dict(m) for p, m in self._marks.items()}
        beats = self.heartbeats.snapshot()
        try:
            flight = await self._prepare(batch, wall_now_ms, wall_now_ms if asked_ms is None else asked_ms)
        except BaseException:
            self._restore(clocks, routes, dues, marks, beats)
            raise
        flight.clocks, flight.routes, flight.dues, flight.marks, flight.beats = clocks, routes, dues, marks, beats
        if flight.work is not None:
            previous = self._flights[-1].task if self._flights else None
            flight.queued = asyncio.get_running_loop().create_future()
            flight.produced = asyncio.get_running_loop().create_future()
            flight.task = asyncio.ensure_future(self._tail(flight, previous))
            self._flights.append(flight)
            # Back to the caller only once the tail has handed the alerts to the producer: the
            # caller goes on to the next fetch, decode and read without yielding for milliseconds,
            # and the alerts (sent in that time) would wait for it (the latency section's "to send").
            await asyncio.wait([flight.queued, flight.task], return_when=asyncio.FIRST_COMPLETED)
        return flight

    async def settle(self, flight: Flight) -> CycleResult:
        """Wait for ``flight``'s tail (the oldest in flight: cycles settle in order) and return its
        result. When it failed, every later cycle (built on it) is abandoned too, before anything
        of theirs was written, the clocks are restored to before ``flight`` and its exception is
        raised: the caller reads again from ``flight``'s first offsets."""
        if flight.task is None:
            return flight.result
        if not self._flights or self._flights[0] is not flight:
            raise ValueError("cycles settle in the order they were submitted")
        try:
            result = await flight.task
        except BaseException:
            await self._abort(flight)
            raise
        self._flights.popleft()
        return result

    async def _abort(self, failed: Flight) -> None:
        """``failed``'s tail did not apply: stop the cycles built on it (none of them wrote: a tail
        writes only after the previous one succeeded), restore the clocks and routes as before it.
        Their alert sends may finish first (``ABORT_ACKS_WAIT_S``): what the broker acknowledged of
        every cycle here is not sent again by the retry (``_keep_acked``)."""
        sending = [f.produced for f in self._flights if f.produced is not None and not f.produced.done()]
        if sending:
            await asyncio.wait(sending, timeout=ABORT_ACKS_WAIT_S)
        for f in self._flights:  # acknowledged alerts of cycles that will not be applied: not sent again
            if f.acked and f.work is not None:
                self._keep_acked(self._published(f.work.advanced))
        later = [f.task for f in self._flights if f is not failed and f.task is not None]
        for task in later:
            task.cancel()
        await asyncio.gather(*later, return_exceptions=True)
        # a tail cancelled before its first step never awaited the alert sends its cycle started early
        await _cancel([send for f in self._flights if f.work is not None for send in f.work.early])
        self._flights.clear()
        self._pending.clear()
        self._restore(failed.clocks, failed.routes, failed.dues, failed.marks, failed.beats)

    def _published(self, advanced: Advanced) -> list[KafkaRecord]:
        """The user alert records a cycle publishes: to the alerts topic, and account members' to
        their own topic when ``member_alerts`` is "separate" ("none": they are not published)."""
        if self.settings.member_alerts == "separate":
            return [*advanced.alerts, *advanced.member_alerts]
        return advanced.alerts

    def _unsent(self, alerts: list[KafkaRecord]) -> list[KafkaRecord]:
        """``alerts`` less those acknowledged in an attempt whose write failed (``_keep_acked``)."""
        if alerts and self._acked_unapplied:
            return [a for a in alerts if _alert_id(a) not in self._acked_unapplied]
        return alerts

    def _keep_acked(self, alerts: Sequence[KafkaRecord]) -> None:
        """Remember the ids of ``alerts``, acknowledged in a cycle that failed (``ACKED_UNAPPLIED_MAX``),
        with their users' partitions: a partition revoked drops its ids (``revoke``), so an id
        pushed out here is one this worker's retry sends again (``churnwatch_alerts_resent_total``),
        not one of a partition another worker applied (review 14, L-4)."""
        kept = self._acked_unapplied
        owners = partitions_of([a[0] or b"" for a in alerts], list(range(self.partitions)))
        for a, p in zip(alerts, owners):
            kept[_alert_id(a)] = p
        while len(kept) > ACKED_UNAPPLIED_MAX:
            del kept[next(iter(kept))]
            metrics.ALERTS_RESENT.inc()

    def _restore(self, clocks: Mapping[int, tuple[int, int]], routes: object, dues: Mapping[int, list[int]],
                 marks: Mapping[int, dict[int, int]], beats: tuple[int, dict[int, int]]) -> None:
        """Back to before an abandoned cycle (partitions revoked since then stay revoked), its
        heartbeats included: they were not sent (review 9, finding 6)."""
        self.heartbeats.restore(beats)
        for p, snap in clocks.items():
            c = self.clock.partitions.get(p)
            if c is not None:
                c.restore(snap)
        self.router.restore(routes)
        for p, bounds in dues.items():
            if p in self._due_min:
                self._due_min[p] = bounds
        for p, m in marks.items():
            if p in self._marks:
                self._marks[p] = m

    async def _prepare(self, batch: Mapping[int, Sequence[RecordLike]], wall_now_ms: int, asked_ms: int) -> Flight:
        """Decode, plan, read (with the writes still in flight laid over it) and advance."""
        timer = _PhaseTimer()
        clock, store = self.clock, self.store
        made = self._made_marks()  # before this batch's records move the cutoffs
        decoded = await self._decode(batch, wall_now_ms)
        timer.mark("decode")
        for p, read in decoded.marks.items():
            if p in self._marks:
                fold_marks(self._marks[p], list(read.items()))
        await self._note_accounts(decoded)
        result = CycleResult(consumed=decoded.consumed, rejected=decoded.rejected, gaps=decoded.gaps)
        until_ms = {p: clock.review_until_ms(p, wall_now_ms) for p in clock.partitions}
        # floored to a whole period: a member copy covers one (streams.worker.watermark.release_ms)
        release = {p: release_ms(self.account_watermark_ms(p)) for p in self._marks}
        sweep = plan_sweep(until_ms, self._due_min, store.buckets)
        bounds = self._account_bounds(release)
        if not decoded.last_offset and not sweep and not bounds:
            result.idle = True
            if not self._flights:  # every copy made so far is acknowledged: the cutoffs as they are now
                beats = self.heartbeats.due(self._made_marks(), wall_now_ms)
                if beats:
                    await self._send_events("heartbeats", beats)
            return Flight(result)
        stream_ms = {p: clock.partitions[p].stream_ms for p in decoded.last_offset}
        origins = self.router.merged(decoded.routed) if decoded.routed.origins else {}
        self.router.commit(decoded.routed)  # later cycles drop these copies; undone if this one fails
        plans = plan_reads(decoded.users, sweep, store.buckets, store.groups)
        result.buckets = len(plans)
        pending = list(self._pending)  # before any chunk's read: a write done after it is laid over it too
        early: list[asyncio.Future[None]] = []
        try:
            handoff = self._handoff(early, asked_ms, wall_now_ms) if self.settings.alerts_per_chunk else None
            advanced = await self._read_advance(plans, pending, decoded, until_ms, result, timer, handoff)
        except BaseException:
            await _cancel(early)  # the cycle is read again whole: its retry sends these alerts again (same ids)
            raise
        self._learn_due(advanced)  # the next cycle plans its sweeps as if this write were applied (it reads so)
        timer.mark("advance")
        self.applying()
        members = member_copies(advanced.members, decoded.member_of, self.model)
        members += turn_copies(advanced.turns, advanced.turn_partitions, decoded.member_of, decoded.last_offset, self.model)
        if advanced.erased:  # their statements are not copied to their accounts either
            drop_erased_copies(decoded, advanced.erased)
        stamp_marks(decoded.account_copies, made)
        stamp_marks(members, made)
        beats = self.heartbeats.due(made, wall_now_ms)
        work = _Work(decoded, advanced, decoded.routed.copies + decoded.account_copies + members + beats, bounds, stream_ms,
                     origins, release, timer, timing_header(asked_ms, wall_now_ms, int(time.time() * 1000)), self.model_header,
                     early)
        flight = Flight(result, work=work, made_marks=in_flight_bounds(decoded.account_copies + members))
        if advanced.writes:  # whatever the depth: a caller may submit again before settling
            flight.pending = pending_writes(advanced.writes)
            self._pending.append(flight.pending)
        return flight

    async def _note_accounts(self, decoded: Decoded) -> None:
        """Heartbeats on once accounts are in use: this cycle read a mark, a copy, a member or a
        statement, or Redis records that an earlier one did (the first time, recorded there). Held
        in memory only, a restarted worker sent none until an event named an account, so the
        watermark stayed NEVER and no account deadline (silence, reminders, renewals) came due."""
        seen = decoded.marks or decoded.accounts or decoded.account_copies or decoded.member_of
        if seen and not self.store.accounts_in_use:
            await self._retry_redis("accounts in use", self.store.mark_accounts_in_use)
        if seen or self.store.accounts_in_use:
            self.heartbeats.active = True

    async def _decode(self, batch: Mapping[int, Sequence[RecordLike]], wall_now_ms: int) -> Decoded:
        """``decode_batch``; while other cycles' tails are in flight, ``DECODE_SLICE_RECORDS``
        records at a time with a turn of the event loop between them (as ``_advance`` does), so a
        tail's acks are not kept waiting behind a whole batch's decoding. The same result: a
        partition's records are fed in consecutive slices, in offset order."""
        decoding = Decoding(self.clock.partitions, self.decoder, wall_now_ms, topic=self.topic,
                            max_dlq_value_bytes=self.settings.max_event_bytes, router=self.router,
                            billing_lateness_ms=self.settings.billing_lateness_ms)
        step, since = DECODE_SLICE_RECORDS, 0
        for p, records in batch.items():
            for i in range(0, len(records), step):
                part = records if len(records) <= step else records[i:i + step]
                decoding.feed(p, part)
                since += len(part)
                if since >= step and self._flights:
                    since = 0
                    await asyncio.sleep(0)
        return decoding.result()

    async def _read_advance(self, plans: Sequence[BucketPlan], pending: Sequence[PendingWrites], decoded: Decoded,
                            until_ms: Mapping[int, int | None], result: CycleResult, timer: "_PhaseTimer",
                            handoff: "Callable[[list[KafkaRecord]], None] | None" = None) -> Advanced:
        """Read the cycle's buckets in chunks (``read_chunks``) and advance each chunk once its reply
        is in, with the next chunk's read already sent: Redis runs the read scripts of chunk k+1
        while this process scores chunk k, so only the first (small) chunk's read is a pure wait.
        Phase "read" sums the waits for the chunks' replies, phase "advance" their scoring.

        The same result as one read: each bucket's read is atomic on its own (the single pipelined
        read was never atomic across buckets either: another connection's write may come between
        two of its scripts), every chunk is corrected by the same ``pending`` (taken before the first
        chunk's read: a write applied between two chunks' reads is laid over the later one, which
        changes nothing), and the buckets are advanced in the same order as ``_advance`` slices
        them. A chunk's read is retried like the whole read was (``_retry_redis``); a chunk that
        cannot be read (revoked, store lost) fails the cycle, whose caller reads it all again.

        ``handoff`` (``alerts_per_chunk``): every chunk but the last hands its user alerts to it once
        scored, and they are queued in the producer (a turn of the loop) before the next chunk is
        scored, instead of waiting in the cycle's tail for the rest of the scoring; the returned
        ``alerts`` are then only the last chunk's. The last chunk's go with the tail, which follows.
        """
        topic, store = self.topic, self.store
        chunks = read_chunks(plans, READ_FIRST_CHUNK_USERS, READ_CHUNK_USERS)
        seq = self.ledger.seq  # the writes acknowledged before any chunk's read was sent
        out = Advanced()
        nxt: asyncio.Future[list[BucketReadResult]] | None = self._read_chunk(chunks[0], pending) if chunks else None
        if not chunks:
            timer.mark("read")
        try:
            for k, chunk in enumerate(chunks):
                assert nxt is not None
                replies = await nxt
                timer.mark("read")  # the wait for this chunk's reply (whatever of it scoring did not hide)
                nxt = self._read_chunk(chunks[k + 1], pending) if k + 1 < len(chunks) else None
                if nxt is not None:
                    await asyncio.sleep(0)  # the next chunk's request goes out before this one is scored
                self._check_rollback(chunk, replies, seq)  # as Redis holds it, before the pending writes are laid over
                overlay_reads(chunk, replies, pending, topic, store.due_limit)
                part = await self._advance(chunk, replies, decoded, until_ms, result)
                if handoff is not None and part.alerts and k + 1 < len(chunks):
                    handoff(part.alerts)
                    part.alerts = []
                    await asyncio.sleep(0)  # the send's first step: its records queued in the producer
                out.extend(part)
                timer.mark("advance")
        finally:
            if nxt is not None:  # this cycle failed: its next read is of no use (done or not: its error retrieved)
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
        return out

    def _check_rollback(self, plans: Sequence[BucketPlan], replies: Sequence[BucketReadResult], seq: int) -> None:
        """Raise ``StoreRolledBack`` if a bucket read holds an older offset or token of an owned
        partition than this worker's last write there that Redis acknowledged before the read
        (``seq``): Redis lost writes, and writing on top would skip their records for good."""
        self.ledger.check_reads(plans, replies, self._field_names, seq)

    def _read_chunk(self, chunk: Sequence[BucketPlan], pending: Sequence[PendingWrites]) -> "asyncio.Future[list[BucketReadResult]]":
        """One chunk's read (retried as ``_retry_redis`` does), running in a task of its own. The
        due entries the writes in flight (``pending``) moved are left out of it (``moved_dues``):
        ``overlay_reads`` would drop each of them, so the result is the same read for less."""
        topic = self.topic
        reads = [plan.read(topic) for plan in chunk]
        if pending:
            for plan, read in zip(chunk, reads):
                read.skip = moved_dues(plan, pending, topic)
        return asyncio.ensure_future(self._retry_redis("read", self.store.read, reads))

    def _handoff(self, sends: "list[asyncio.Future[None]]", asked_ms: int,
                 fetched_ms: int) -> Callable[[list[KafkaRecord]], None]:
        """What ``_read_advance`` hands a scored chunk's user alerts to: their send (retried as
        ``_retry_kafka`` does) started in a task kept in ``sends``, whose acks the cycle's tail awaits
        before the state write (``_produce``), with the headers the tail gives (scored: now)."""
        topic, model = self.settings.topic_alerts, self.model_header

        def handoff(alerts: list[KafkaRecord]) -> None:
            headers = [(TIMING_HEADER, timing_header(asked_ms, fetched_ms, int(time.time() * 1000))), (MODEL_HEADER, model)]
            records = [(key, value, headers) for key, value in alerts]
            sends.append(asyncio.ensure_future(self._retry_kafka("alerts", self.producer.send_all, topic, records)))
        return handoff

    async def _advance(self, plans: Sequence[BucketPlan], replies: Sequence[BucketReadResult], decoded: Decoded,
                       until_ms: Mapping[int, int | None], result: CycleResult) -> Advanced:
        """``advance_users``; while other cycles' tails are in flight, in slices of about
        ``ADVANCE_SLICE_USERS`` users with a turn of the event loop between them, so a tail's acks
        and Redis replies are acted on within a slice (~10 ms) instead of after the whole batch.
        Slicing by bucket changes nothing: each bucket is advanced on its own, in the same order."""
        store, history = self.store, self.settings.score_history
        if not self._flights:
            return advance_users(plans, replies, decoded, until_ms, self.model, topic=self.topic, due_limit=store.due_limit,
                                 result=result, history=history, alerts_from_ms=self.alerts_from_ms,
                                 members_apart=self.settings.members_apart, accounts=self.store.accounts_in_use)
        out, i = Advanced(), 0
        while i < len(plans):
            j, users = i, 0
            while j < len(plans) and users < ADVANCE_SLICE_USERS:
                users += len(plans[j].users) + sum(map(len, replies[j].dues))
                j += 1
            part = advance_users(plans[i:j], replies[i:j], decoded, until_ms, self.model, topic=self.topic,
                                 due_limit=store.due_limit, result=result, history=history,
                                 alerts_from_ms=self.alerts_from_ms, members_apart=self.settings.members_apart,
                                 accounts=self.store.accounts_in_use)
            out.extend(part)
            i = j
            await asyncio.sleep(0)
        return out

    async def _tail(self, flight: Flight, previous: asyncio.Future[CycleResult] | None) -> CycleResult:
        """Produce and await the acks, wait for the previous cycle's tail, then write the states
        (fenced), the accounts, the origins and the progress; see the module docstring for why
        alerts go before states."""
        work, result = flight.work, flight.result
        assert work is not None
        decoded, timer = work.decoded, work.timer
        alerts = self._unsent(work.advanced.alerts)  # less those acknowledged in an attempt whose write failed
        members = self._unsent(work.advanced.member_alerts) if self.settings.member_alerts == "separate" else []
        if alerts or members:
            headers = [(TIMING_HEADER, work.timing), (MODEL_HEADER, work.model)]
            alerts, members = ([(key, value, headers) for key, value in recs] for recs in (alerts, members))
        try:
            await self._produce(alerts, decoded.dlq, work.copies, flight.queued, work.early, members)
        finally:
            _set(flight.queued)  # also when it failed: ``submit`` stops waiting
            _set(flight.produced)
        flight.acked = True
        timer.mark("produce")
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None:
                raise CycleAbandoned("an earlier cycle was not applied")
            timer.mark("queued")
        # The progress goes in the state write's round trip unless something must land between them.
        folded = None
        if decoded.last_offset and not (work.account_bounds or decoded.accounts or work.origins):
            folded = ProgressWrite(self.topic, self._progress(decoded.last_offset, work.stream_ms), decoded.last_fingerprint,
                                   floors=self._floors_of(decoded.last_offset))
        token = await self._write(work.advanced.writes, folded)
        if self._acked_unapplied:
            for a in self._published(work.advanced):
                self._acked_unapplied.pop(_alert_id(a), None)
        if flight.pending is not None:
            self._pending.remove(flight.pending)
        ticks = await self._account_ticks(work.account_bounds) if work.account_bounds else []
        if decoded.accounts or ticks:
            await self._accounts(decoded, ticks, work.release_ms)
        timer.mark("write")
        if work.origins:  # before the progress: a replay of these records finds them applied
            await self._retry_redis("progress", self.store.write_origins, self.topic, work.origins)
        if folded is not None and folded.applied is not None:
            result.progress = dict(folded.progress)
            self._raise_floors(folded.progress)
            self.observe_global(folded.applied)
        elif decoded.last_offset:
            # Not folded, or the folded write's guard refused although no bucket write was fenced (the
            # token changed between the bucket scripts and the progress script: another worker took a
            # bucket just after our write applied, or Redis went back in time): written on its own,
            # guarded by this cycle's writes; ``_write_progress`` tells the two apart if it refuses.
            result.progress = await self._write_progress(decoded.last_offset, work.stream_ms, decoded.last_fingerprint,
                                                         (token, work.advanced.writes))
        timer.mark("progress")
        _count(result, decoded, timer, self.settings.member_alerts == "separate")
        if result.withheld:
            _log_withheld(result.withheld, self.alerts_from_ms)
        if decoded.untracked_types:
            _log_untracked(self.decoder.untracked_names)
        if decoded.jumps or decoded.behind:
            now_ms = int(time.time() * 1000)
            self.jump_warnings.report(decoded.jumps, now_ms)
            self.jump_warnings.report_behind(decoded.behind, now_ms)
        if decoded.late_statements:
            warn_dead_lettered(decoded.late_statements)
        return result

    async def _produce(self, alerts: Sequence[KafkaRecord] | Sequence[KafkaCopy], dlq: Sequence[KafkaRecord],
                       copies: Sequence[KafkaCopy], queued: "asyncio.Future[None] | None" = None,
                       early: "Sequence[asyncio.Future[None]]" = (), members: Sequence[KafkaRecord] = ()) -> None:
        """Re-routed and account copies, alerts and DLQ records, acknowledged before any state is
        written (at-least-once: a replay makes them again; re-routed copies are then dropped by their
        owner, and a subscription statement copied twice changes nothing); the copies through
        ``_send_events`` (never into a topic known missing or replaced). All are queued before
        any ack is awaited: one round trip to the broker, not one per kind. ``queued`` is set once
        each send has had its first turn of the event loop (``KafkaSink.send_all`` hands its records
        to aiokafka in it, before awaiting the acks). ``early``: the alert sends the cycle started
        while it was scored (``alerts_per_chunk``), awaited (or cancelled) with these. A cycle whose
        copies ``events_unusable`` objects to is abandoned before anything is queued: its alerts
        and DLQ records went out before, at every such cycle again (review 9, finding 3). ``members``:
        account members' user alerts, for ``topic_member_alerts`` (``member_alerts`` "separate")."""
        sends: list[asyncio.Future[None]] = []
        try:
            if copies:
                await self._copies_usable()
                sends.append(asyncio.ensure_future(self._send_events("copies", copies)))
            sends += [asyncio.ensure_future(self._retry_kafka(what, self.producer.send_all, topic, records))
                      for what, topic, records in (("alerts", self.settings.topic_alerts, alerts),
                                                   ("member alerts", self.settings.topic_member_alerts, members),
                                                   ("dlq", self.settings.topic_dlq, dlq)) if records]
            if sends:
                await asyncio.sleep(0)  # each send's first step: its records queued in the producer
            _set(queued)
            await asyncio.gather(*early, *sends)
        except BaseException:
            await _cancel([*early, *sends])  # cancelled (an earlier cycle failed) or one send failed: none outlives the tail
            raise

    async def _write(self, writes: Sequence[BucketWrite], progress: ProgressWrite | None = None) -> str:
        """The fenced state writes (and the progress, if given and they all apply); a fenced bucket
        abandons the cycle (another worker owns p). Returns the writes' token."""
        self._cycle += 1
        token = f"{self.worker_id}:{self._cycle}"
        if progress is None:
            fenced = await self._retry_redis("write", self.store.write, writes, token)
        else:
            fenced = await self._retry_redis("write", self.store.write, writes, token, progress)
        self._record(writes, fenced, token)
        if fenced:
            _log_fenced("cycle", fenced)
            raise CycleAbandoned("fenced", fenced)
        return token

    def _record(self, writes: Sequence[BucketWrite] | Sequence[object], fenced: Sequence[Fenced], token: str) -> None:
        """The bucket writes Redis applied (all but the fenced), in the ledger."""
        self.ledger.wrote_all(writes, {f.bucket for f in fenced}, token)

    def _account_bounds(self, release_ms: Mapping[int, int]) -> dict[int, int]:
        """Per partition, the second up to which its accounts' reviews (a deadline, held copies) are
        due and may not have been read yet: due at second s once p's accounts' watermark is past
        ``s * 1000`` (the users' rule, with the watermark for the review clock: a review runs only
        once no copy before it can come)."""
        return {p: (until - 1) // 1000 for p, until in release_ms.items()
                if until != NEVER and p in self._account_due_min and self._account_due_min[p] * 1000 < until}

    def _made_marks(self) -> dict[int, int]:
        """q -> the mark the copies made from q now carry: q's cutoff (no event below it is applied
        any more, so no copy below it is made), floored to the second, and no more than the earliest
        copy from q of the cycles still in flight (not acknowledged: a retried send may land after
        this cycle's; ``watermark.in_flight_bounds``)."""
        out = {q: mark_of(c.cutoff_ms) for q, c in self.clock.partitions.items()}
        for f in self._flights:
            for q, m in f.made_marks.items():
                if q in out and m < out[q]:
                    out[q] = m
        return out

    async def _account_ticks(self, bounds: Mapping[int, int]) -> list[AccountTick]:
        """Accounts whose review came due up to ``bounds`` (``_account_bounds``); learns each
        partition's next due. Read in the tail, after the previous cycle's accounts were written."""
        limit = self.store.due_limit
        found = await self._retry_redis("account dues", self.store.due_accounts, self.topic, dict(bounds), limit)
        ticks = []
        for p, (due, nxt) in found.items():
            ticks += [AccountTick(p, account, due_s * 1000) for account, due_s in due]
            if p in self._account_due_min:
                self._account_due_min[p] = 0 if len(due) >= limit else NO_DUE if nxt is None else nxt
        return ticks

    async def load_quiet(self) -> None:
        """Read the accounts table's quiet periods (off the event loop; streams/worker/accounts.py).
        The worker's connect awaits it before any event is applied; a table that cannot be read
        keeps what was read before, with a WARNING (the alerts then judge without a change to it)."""
        from streams.worker.accounts import read_quiet

        try:
            quiet = await asyncio.to_thread(read_quiet, self.settings)
            if quiet != self.quiet or self._quiet_read_at is None:
                logger.info("accounts table: %d account(s) with a declared quiet period", len(quiet))
            self.quiet = quiet
        except Exception as exc:  # the broker's many errors, a table read to no end
            logger.warning("accounts table: quiet periods not read (%s: %s); keeping the %d accounts read before",
                           type(exc).__name__, exc, len(self.quiet))
        self._quiet_read_at = time.monotonic()

    def _refresh_quiet(self) -> None:
        """Read the quiet periods again in the background once ``QUIET_REFRESH_S`` has passed since
        the last read (never before the first, at connect)."""
        from streams.worker.accounts import QUIET_REFRESH_S

        if self._quiet_read_at is None or self._quiet_task is not None or time.monotonic() - self._quiet_read_at < QUIET_REFRESH_S:
            return
        self._quiet_task = task = asyncio.ensure_future(self.load_quiet())
        task.add_done_callback(lambda _: setattr(self, "_quiet_task", None))

    async def _accounts(self, decoded: Decoded, ticks: Sequence[AccountTick], release: Mapping[int, int]) -> None:
        """The cycle's account copies and due accounts: read their buckets, apply, one fenced
        write per bucket, then their next reviews."""
        copies = [*decoded.accounts, *ticks]
        reads = plan_account_reads(copies, self.topic, self.store.buckets)
        seq = self.ledger.seq
        replies = await self._retry_redis("read accounts", self.store.read_accounts, reads)
        for read, reply in zip(reads, replies):  # Redis lost account writes? (as ``_check_rollback``)
            self.ledger.check(read.bucket, read.fields, reply.offsets, reply.tokens, seq)
        self._refresh_quiet()
        done = advance_accounts(copies, reads, replies, self.topic, decoded.last_offset, release, quiet=self.quiet)
        if self.alerts_from_ms and done.alerts:
            done.alerts, withheld = withhold_before(done.alerts, self.alerts_from_ms)
            for kind, n in withheld.items():
                metrics.ALERTS_WITHHELD.labels(kind).inc(n)
            if withheld:
                _log_withheld({(ACCOUNTS_LOGGED, kind): n for kind, n in withheld.items()}, self.alerts_from_ms)
        if done.alerts:  # before the write, as for users: a replay re-sends the same ids
            await self._retry_kafka("account alerts", self.producer.send_all, self.settings.topic_alerts, done.alerts)
        self._cycle += 1
        token = f"{self.worker_id}:{self._cycle}"
        fenced = await self._retry_redis("write accounts", self.store.write_accounts, done.writes, token)
        self._record(done.writes, fenced, token)
        if fenced:
            _log_fenced("account write", fenced)
            raise CycleAbandoned("fenced", fenced)
        if done.dues:  # after the fenced write; a crash in between reviews again at the old time (same ids)
            await self._retry_redis("account dues", self.store.write_account_dues, self.topic, done.dues)
            for p, accounts in done.dues.items():
                lowest = min((s for s in accounts.values() if s), default=None)
                if p in self._account_due_min and lowest is not None and lowest < self._account_due_min[p]:
                    self._account_due_min[p] = lowest
        _count_revenue(done)

    def _learn_due(self, advanced: Advanced) -> None:
        """What the cycle's sweeps learnt and the due seconds it writes (these can only lower), once
        it is scored: the next cycle reads through its pending writes, so it must plan its sweeps
        from them too (or it sweeps again every index this one swept); undone if it is abandoned."""
        for p, b, due_s in advanced.learned:
            if p in self._due_min:
                self._due_min[p][b] = due_s
        for p, b, due_s in advanced.lowered:
            due_min = self._due_min.get(p)
            if due_min is not None and due_s < due_min[b]:
                due_min[b] = due_s

    async def _write_progress(self, last_offset: Mapping[int, int], stream_ms: Mapping[int, int],
                              fingerprints: Mapping[int, str],
                              guard: tuple[str, Sequence[BucketWrite]] | None = None) -> dict[int, tuple[int, int]]:
        """Each partition's last offset with its stream time *after this cycle's records* (later
        cycles may have folded more by now: a resume must not find their events late).

        ``guard``: the cycle's token and state writes. The progress is then written only if Redis
        still holds each of those writes (their token, ``lua/progress.lua``'s guard); if not, the
        buckets are read again: this worker's writes lost means Redis went back in time between
        the state write and this one (``StoreRolledBack``: the progress must not move past the lost
        records); else another worker wrote a bucket since, and the progress goes on its own."""
        progress = self._progress(last_offset, stream_ms)
        floors = self._floors_of(last_offset)
        write, topic = self.store.write_progress, self.topic
        everything = await self._retry_redis("progress", write, topic, progress, fingerprints, floors, guard)
        if everything is None:  # the guard refused
            assert guard is not None
            await self._check_written(guard[1])
            everything = await self._retry_redis("progress", write, topic, progress, fingerprints, floors)
        self._raise_floors(progress)
        self.observe_global(everything)
        return progress

    async def _check_written(self, writes: Sequence[BucketWrite]) -> None:
        """Raise ``StoreRolledBack`` if Redis no longer holds ``writes`` (acknowledged) as written."""
        reads = [BucketRead(w.bucket, [(f, None) for f, _, _ in w.parts], []) for w in writes if w.parts]
        seq = self.ledger.seq  # before the read is sent: what the ledger learns meanwhile is later than it (review 6)
        replies = await self._retry_redis("read", self.store.read, reads)
        for read, reply in zip(reads, replies):
            self.ledger.check(read.bucket, [f for f, _ in read.parts], reply.offsets, reply.tokens, seq)

    def _floors_of(self, last_offset: Mapping[int, int]) -> dict[int, int]:
        """The progress floors of the partitions a progress write moves (``ProgressWrite.floors``)."""
        return {p: self._floors[p] for p in last_offset if p in self._floors}

    def _raise_floors(self, progress: Mapping[int, tuple[int, int]]) -> None:
        """A progress write applied: Redis holds at least these offsets from now on (owned partitions)."""
        for p, (offset, _) in progress.items():
            if p in self.clock.partitions and offset > self._floors.get(p, -1):
                self._floors[p] = offset

    @staticmethod
    def _progress(last_offset: Mapping[int, int], stream_ms: Mapping[int, int]) -> dict[int, tuple[int, int]]:
        """Each partition's last offset with its stream time *after this cycle's records* (later
        cycles may have folded more by now: a resume must not find their events late)."""
        return {p: (off, stream_ms[p] if stream_ms[p] != NEVER else 0) for p, off in last_offset.items()}

    async def _copies_usable(self) -> None:
        """Raise ``CycleAbandoned`` if ``events_unusable`` objects to sending into the events topic
        now (in memory, unless a fetch reply showed a log end below what was read). If it cannot
        tell yet, the cycle goes on: the copies' own send asks again (``_send_events``)."""
        try:
            why = await self.events_unusable(False)
        except KafkaError:
            return
        if why is not None:
            raise CycleAbandoned(f"copies not sent: {why}")

    async def _send_events(self, what: str, records: Sequence[KafkaCopy]) -> None:
        """``records`` (copies, heartbeats) into the events topic, retried as ``_retry_kafka`` does,
        but each attempt only once ``events_unusable`` has no objection (after a failed attempt it
        lists the topics): a topic known missing, or whose log ended below what this worker read,
        abandons the cycle instead (raises ``CycleAbandoned``; its records are read again). A send
        into a deleted topic is not refused by every broker: Tansu stores the batches, or creates
        the topic again with its own partition count, and a topic created again over them serves
        records beyond its log end and refuses later produces (UnknownError); the old log's copies
        sent into a new log would be applied there. In memory but for that listing: no round trip
        is added to a send that succeeds."""
        failed = False

        async def attempt() -> None:
            nonlocal failed
            # an attempt that raises (the send, or ``events_unusable`` unable to tell) has the topics
            # listed before the next
            asked, failed = failed, True
            why = await self.events_unusable(asked)
            if why is not None:
                raise CycleAbandoned(f"{what} not sent: {why}")
            if self.abandon_requested():  # a revocation or a stop came during the listing: no send of up to 15 s now
                raise CycleAbandoned(f"abandoned before {what}")
            await self.producer.send_all(self.topic, records)

        await self._retry_kafka(what, attempt)

    # -- retries ------------------------------------------------------------------------------

    async def _retry_redis(self, what: str, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        return await self._retry(f"Redis {what}", redis_transient, fn, *args)

    async def _retry_kafka(self, what: str, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        return await self._retry(f"producing {what}", _kafka_error, fn, *args)

    async def _retry(
        self, what: str, passes: Callable[[BaseException], bool], fn: Callable[..., Awaitable[T]], *args: object
    ) -> T:
        """Call ``fn`` until it succeeds, backing off exponentially while it raises what ``passes``;
        a rebalance abandons the cycle. Redis failures are counted (ChurnwatchRedisErrors) and
        name their runbook."""
        delay = BACKOFF_START_S
        while True:
            if self.abandon_requested():
                raise CycleAbandoned(f"abandoned before {what}")
            try:
                return await fn(*args)
            except Exception as exc:
                if not passes(exc):
                    raise
                if passes is redis_transient:
                    metrics.REDIS_ERRORS.inc()
                    retry_logger.warning("%s failed (%s: %s); retrying in %.2f s. Runbook: ChurnwatchRedisErrors",
                                         what, type(exc).__name__, exc, delay)
                    await self.store.reconnect_after(exc)
                else:
                    retry_logger.warning("%s failed (%s: %s); retrying in %.2f s", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX_S, delay * 2)


def _alert_id(alert: KafkaRecord) -> str:
    """The ``alert_id`` of a user alert record (key, JSON value)."""
    return str(orjson.loads(alert[1])["alert_id"])


def _kafka_error(exc: BaseException) -> bool:
    """A broker failure ``_retry_kafka`` retries."""
    return isinstance(exc, KafkaError)


def read_chunks(plans: Sequence[BucketPlan], first: int = READ_FIRST_CHUNK_USERS,
                size: int = READ_CHUNK_USERS) -> list[list[BucketPlan]]:
    """``plans`` cut in order into chunks of whole buckets of about ``first`` users (plus one per
    bucket, as ``Store.read`` counts them), then about ``size`` each; none empty.

    >>> from streams.worker.phases import BucketPlan
    >>> plans = [BucketPlan(b, users=[(0, str(i)) for i in range(n)]) for b, n in enumerate([100, 200, 300, 900, 0])]
    >>> [[p.bucket for p in chunk] for chunk in read_chunks(plans, 250, 1000)]
    [[0], [1, 2], [3, 4]]
    """
    out: list[list[BucketPlan]] = []
    chunk: list[BucketPlan] = []
    items, limit = 0, first
    for plan in plans:
        n = len(plan.users) + 1
        if chunk and items + n > limit:
            out.append(chunk)
            chunk, items, limit = [], 0, size
        chunk.append(plan)
        items += n
    if chunk:
        out.append(chunk)
    return out


class JumpWarnings:
    """The WARNING for events that moved their partition's stream time far ahead (``clock.jumps``),
    once their cycle is applied: per partition the largest jump of the cycle, at most one line a
    minute (wall clock: logging only), the next one saying how many were held back. No user id
    (logs carry none): the partition and offset find the record. Why a WARNING at all: that one
    event makes the partition's older events read after it ``late`` (QA7 H4: a history backfill
    lost 4,849 events to the DLQ with no line in the log), and an operator should hear of it."""

    EVERY_MS = 60_000

    __slots__ = ("topic", "shown_ms", "held", "behind_shown_ms", "behind_held")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.shown_ms: dict[int, int] = {}  # partition -> wall time of its last line
        self.held: dict[int, int] = {}  # partition -> jumps not shown since
        self.behind_shown_ms: dict[int, int] = {}  # the same for the events far behind (report_behind)
        self.behind_held: dict[int, int] = {}

    def report(self, jumps: Sequence[Jump], wall_now_ms: int) -> None:
        largest: dict[int, Jump] = {}
        count: dict[int, int] = {}
        for j in jumps:
            count[j.partition] = count.get(j.partition, 0) + 1
            top = largest.get(j.partition)
            if top is None or j.to_ms - j.from_ms > top.to_ms - top.from_ms:
                largest[j.partition] = j
        for p, j in sorted(largest.items()):
            if wall_now_ms - self.shown_ms.get(p, wall_now_ms - self.EVERY_MS) < self.EVERY_MS:
                self.held[p] = self.held.get(p, 0) + count[p]
                continue
            self.shown_ms[p] = wall_now_ms
            more = count[p] - 1 + self.held.pop(p, 0)
            logger.warning("%s[%d]: the event at offset %d moved the partition's stream time from %s to %s (%.1f days ahead): "
                           "this partition's events read after it and more than the allowed lateness older go to the DLQ as "
                           "late. A history published beside live producers, or not in event-time order? docs/OPERATE.md "
                           "\"Onboarding a product's history\"%s", self.topic, p, j.offset, format_ts(j.from_ms), format_ts(j.to_ms),
                           (j.to_ms - j.from_ms) / 86_400_000,
                           f" ({more} smaller or later jump(s) of the partition not shown: churnwatch_stream_time_jumps_total counts them)"
                           if more else "")


    def report_behind(self, behind: Mapping[int, Sequence[int]], wall_now_ms: int) -> None:
        """The mirror image (review 10 B2): ``late`` events far behind their partition's stream
        time (``Decoded.behind``: p -> count, then the first one's offset, time and the stream
        time it was behind), as a history published after live producers started gives: no
        event jumps there, the live events came first. At most one line a partition a minute."""
        for p, (n, offset, ts_ms, stream_ms) in sorted(behind.items()):
            if wall_now_ms - self.behind_shown_ms.get(p, wall_now_ms - self.EVERY_MS) < self.EVERY_MS:
                self.behind_held[p] = self.behind_held.get(p, 0) + n
                continue
            self.behind_shown_ms[p] = wall_now_ms
            n += self.behind_held.pop(p, 0)
            logger.warning("%s[%d]: %d event(s) went to the DLQ as late more than a week behind the partition's stream time, "
                           "the first at offset %d: %s, behind %s (%.1f days). A history published after live producers "
                           "started? docs/OPERATE.md \"Onboarding a product's history\" (churnwatch_events_far_behind_total "
                           "counts them)", self.topic, p, n, offset, format_ts(ts_ms), format_ts(stream_ms),
                           (stream_ms - ts_ms) / 86_400_000)


def _log_fenced(what: str, fenced: Sequence[Fenced]) -> None:
    """One WARNING for a refused write, naming what refused it (lua/fence.lua's fence_check): the
    partition's offset moved, or its token ("<field>|token") holds a newer owner's write, which is
    what refuses a write of due reviews alone (it moves no offset)."""
    first = fenced[0]
    if first.field.endswith("|token"):
        logger.warning("%s fenced in %s bucket(s): %s holds a newer owner's write (token %s: another worker owns it); re-reading",
                       what, len(fenced), first.field.removesuffix("|token"), first.actual)
    else:
        logger.warning("%s fenced in %s bucket(s): %s now at offset %s (another worker owns it); re-reading",
                       what, len(fenced), first.field, first.actual)


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
    if done.applied_late:
        metrics.SUBSCRIPTION_APPLIED_LATE.inc(done.applied_late)
    if done.held:
        metrics.ACCOUNT_COPIES_HELD.inc(done.held)
    if done.released:
        metrics.ACCOUNT_COPIES_RELEASED.labels("watermark").inc(done.released)
    if done.forced:
        metrics.ACCOUNT_COPIES_RELEASED.labels("bound").inc(done.forced)
    if done.behind:
        metrics.ACCOUNT_COPIES_BEHIND.inc(done.behind)
    for kind, n in done.judged_late.items():
        metrics.ACCOUNT_ALERTS_JUDGED_LATE.labels(kind).inc(n)
    for alert in done.alerts:
        metrics.ALERTS.labels(orjson.loads(alert[1])["kind"]).inc()
    metrics.SUBSCRIPTIONS_APPLIED.inc(done.applied)


async def _events_usable(failed: bool) -> str | None:
    """``Pipeline.events_unusable`` of a pipeline without a consumer (tests): no objection."""
    return None


async def _cancel(tasks: "Sequence[asyncio.Future[None]]") -> None:
    """Cancel ``tasks`` and wait for them to end (their errors retrieved, none raised)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _set(future: "asyncio.Future[None] | None") -> None:
    if future is not None and not future.done():
        future.set_result(None)


def timing_header(asked_ms: int, fetched_ms: int, scored_ms: int) -> bytes:
    """The value of ``TIMING_HEADER``."""
    return b"%d,%d,%d" % (asked_ms, fetched_ms, scored_ms)


class _PhaseTimer:
    """Wall time of each phase of a cycle (metric ``churnwatch_cycle_phase_seconds``); a phase
    marked more than once (the chunked read's waits and scoring) is the sum of its parts."""

    __slots__ = ("start", "last", "seconds")

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now

    @property
    def phases(self) -> list[tuple[str, float]]:
        """``(phase, seconds)`` in the order the phases first came."""
        return list(self.seconds.items())


def _log_untracked(names: Sequence[str]) -> None:
    """One INFO line per event name the model in use neither tracks nor gives a role, the first
    time this process sees it (at most ``UNTRACKED_NAMES_MAX`` names, as the reader keeps: a successor model's new reader does not add more), so the operator learns
    which name a rise of ``churnwatch_events_untracked_type_total`` is (QA10 F6)."""
    for name in names:
        if name not in _UNTRACKED_LOGGED and len(_UNTRACKED_LOGGED) < UNTRACKED_NAMES_MAX:
            _UNTRACKED_LOGGED.add(name)
            logger.info("event type %r is neither tracked nor given a role by the model in use: its events count only in "
                        "the users' total (churnwatch_events_untracked_type_total; a renamed event? README \"The "
                        "product's vocabulary\")", name[:80])


def _log_withheld(withheld: Mapping[tuple[int, str], int], alerts_from_ms: int) -> None:
    """One INFO line per partition the first time this process withholds one of its user alerts,
    and one for the account alerts (``ACCOUNTS_LOGGED``) (``CHURNWATCH_ALERTS_FROM``), so the operator onboarding a history sees the setting at work;
    the count is ``churnwatch_alerts_withheld_total``."""
    for p in sorted({p for p, _ in withheld} - _WITHHELD_LOGGED):
        _WITHHELD_LOGGED.add(p)
        whose = "account alerts" if p == ACCOUNTS_LOGGED else f"partition {p}: user alerts"
        logger.info("%s with an event time before %s (CHURNWATCH_ALERTS_FROM) are applied to the "
                    "state but not published (counted in churnwatch_alerts_withheld_total)", whose, format_ts(alerts_from_ms))


def _count(result: CycleResult, decoded: Decoded, timer: _PhaseTimer, members_sent: bool = False) -> None:
    """The cycle's counters and timings, once it is complete. ``members_sent``: the account members'
    alerts kept off the alerts topic went to their own (``member_alerts`` "separate"), so they were produced."""
    metrics.EVENTS_PROCESSED.inc(result.processed)
    if result.erased:
        metrics.EVENTS_ERASED.inc(result.erased)
    if result.unreadable:
        metrics.STATES_UNREADABLE.labels("restarted").inc(result.unreadable - result.dropped)
        metrics.STATES_UNREADABLE.labels("dropped").inc(result.dropped)
    if decoded.unknown_types:
        metrics.EVENTS_UNKNOWN_TYPE.inc(decoded.unknown_types)
    if decoded.untracked_types:
        metrics.EVENTS_UNTRACKED_TYPE.inc(decoded.untracked_types)
    if decoded.derived_ids:
        metrics.EVENTS_DERIVED_ID.inc(decoded.derived_ids)
    if decoded.jumps:
        metrics.STREAM_TIME_JUMPS.inc(len(decoded.jumps))
        metrics.STREAM_TIME_LAST_JUMP.set_to_current_time()
    if decoded.behind:
        metrics.EVENTS_FAR_BEHIND.inc(sum(b[0] for b in decoded.behind.values()))
    if decoded.late_statements:  # dead-lettered as late: lost to the live MRR figures too
        metrics.SUBSCRIPTION_LATE.inc(len(decoded.late_statements))
    for reason, n in decoded.routed.rerouted.items():
        metrics.EVENTS_REROUTED.labels(reason).inc(n)
    if decoded.routed.duplicates:
        metrics.REROUTED_DUPLICATES.inc(decoded.routed.duplicates)
    for reason, n in result.rejected.items():
        metrics.EVENTS_REJECTED.labels(reason).inc(n)
    for kind, n in result.alerts.items():
        metrics.ALERTS.labels(kind).inc(n)
    for kind, n in result.routed.items():
        metrics.MEMBER_ALERTS_ROUTED.labels(kind).inc(n)
        if members_sent:
            metrics.ALERTS.labels(kind).inc(n)
    for (_, kind), n in result.withheld.items():
        metrics.ALERTS_WITHHELD.labels(kind).inc(n)
    metrics.BATCH_SIZE.observe(result.consumed)
    metrics.BATCH_SECONDS.observe(timer.last - timer.start)
    phase = metrics.CYCLE_PHASE_SECONDS.labels
    for name, seconds in timer.phases:
        phase(name).observe(seconds)
