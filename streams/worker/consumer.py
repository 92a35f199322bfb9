"""The worker's Kafka side: its own aiokafka consumer in the group, batches into the pipeline.

Why not a Faust agent: Faust builds asyncio machinery per message (~12-16k events/s here) and its
commits skipped events on rebalances on Tansu (measured: 7 runs in 10 lost events); a plain consumer with
``getmany(max_records=...)`` reads ~500k/s and leaves offsets to us. Redis progress is the source
of truth for where a partition resumes; Kafka commits are only a hint for tools.

Rebalance rules (aiokafka calls the listener between fetches, and awaits it):
- revoked: ask the cycles in flight (``pipeline_depth`` of them at most) to give up if they are stuck
  retrying, wait for them, drop the clocks and the revoked partitions' records fetched ahead;
- assigned: read progress from Redis and seek each partition to ``offset + 1`` (start if none).
Records are taken only where they continue what this worker last applied (or resumed from):
a fetch made before a rebalance can hand out records from the old position after the seek, so a
partition whose records do not start at the expected offset is re-seeked there and skipped.
Records fetched ahead (``fetch_ahead_ms``: taken off aiokafka's buffer during a cycle) are
dropped only where their partition is sought before it is read again (``_seek``, a revocation,
a rebuild), never otherwise: the next batch would start past them and pass for a gap in the log
(a second ``_resume`` beside the first once dropped them so; the leave-and-rejoin fault test
caught it).

Faults recognised here (docs/OPERATE.md has the runbook of each):
- a replaced log: at assignment the record at the stored offset is read again and must match the
  stored checksum; while running, a highwater below the next offset to apply that the leader's
  ListOffsets confirms means the log went backwards (unconfirmed: a new leader's lagging high
  watermark after an election, ``_confirm_drops``). Either way the partition starts again at
  offset 0 of the new log, user states kept (``Store.restart_partition``), counted in
  ``churnwatch_topic_resets_total{reason}``, after a gap mark is written into the new log
  (``streams.worker.gap``): from then on Redis holds the only copy of the history before it;
- a worker that took over with another model (``ModelReplaced``, same once-a-second check): this
  worker stops taking work and exits (code 3), so one model scores each partition at a time (also
  when the take-over emptied the store to rebuild it, ``--rebuild-state``: the store looks lost, and
  the rebuild's connect finds the other model recorded);
  a learned successor of this worker's model adopted by ``churnwatch learn`` (``ModelAdopted``,
  same check) is taken in place instead: the cycles in flight settle with the old model, the
  next ones score with the new (no restart; a partition moving to a worker that has not
  checked yet in that second can be scored by the old model for up to a second more);
- a partition count that changed: records in a partition beyond the count the state is laid out
  for (``Store.layout``) stop every worker (``LayoutChanged``, also seen through Redis by the
  others) before anything of them is applied; ``churnwatch relayout`` moves the state;
- Redis that lost its data (``StoreLost``, from the incarnation marker checked by every cycle and
  once a second when idle): the worker stops applying, takes the store's new incarnation and
  rebuilds its partitions from offset 0 of the topic; a partition whose log no longer starts at 0,
  or holds a gap mark, is reported (``churnwatch_history_incomplete``) because its rebuild cannot
  be complete;
- Redis that went back in time (``StoreRolledBack``, from the write ledger and progress floors
  checked by every cycle's reads and progress write, and once a second when idle:
  ``Pipeline.look``): the worker resumes its partitions from what Redis holds (``_rewind_store``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from typing import Any, Mapping, Sequence

import redis

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError, KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder

from streams.forward.webhook import backoff_s
from streams.kafka_admin import RETRY_LOGGER
from streams.settings import Settings, aiokafka_client_kwargs
from streams.timefmt import format_ts
from streams.worker import metrics
from streams.worker.aligned import HEADS_EVERY_S, Alignment
from streams.worker.batching import RecordCap
from streams.worker.ledger import StoreRolledBack
from streams.worker.clock import NEVER
from streams.worker.fetch import lean_fetches
from streams.worker.gap import gap_mark
from streams.worker.liveness import MARK_MS, RunningMark
from streams.worker.partitioner import partitions_of
from streams.worker.phases import reaches_clock, record_fingerprint
from streams.worker.routing import KafkaCopy
from streams.worker.pipeline import REDIS_TRANSIENT, CycleAbandoned, Flight, Pipeline, redis_transient
from streams.worker.model_record import ModelAdopted
from streams.worker.store import LayoutChanged, ModelMismatch, ModelReplaced, Resume, Store, StoreLost

__all__ = ["KafkaSink", "StreamConsumer", "count_redis_error", "pause_while_scoring", "retry_delay", "wall_ms"]

logger = logging.getLogger(__name__)
#: The lines a failing loop repeats (one per retry): the CLI shows one per kind every 10 s with a count.
retry_logger = logging.getLogger(RETRY_LOGGER)

ERROR_BACKOFF_START_S = 0.05
ERROR_BACKOFF_MAX_S = 2.0
# No cycle settled for this long (``stuck_s``): the gauge timer reads the log ends for the lag
# gauge (``refresh_lag``), waiting at most LAG_READ_TIMEOUT_S
LAG_REFRESH_AFTER_S = 2.0
LAG_READ_TIMEOUT_S = 3.0
#: ``_fetch_ahead``: how often it looks again for a fetch reply once the period has passed
AHEAD_POLL_S = 0.002
COMMIT_INTERVAL_S = 1.0  # Kafka commit hints: at most this often, never awaited by a cycle
STORE_CHECK_INTERVAL_S = 1.0  # idle workers check the store's incarnation this often
TOPIC_CHECK_INTERVAL_S = 1.0  # a worker waiting for its events topic to exist again lists the topics this often
TOPIC_LIST_TIMEOUT_S = 5.0  # a listing of the topics under the cycle lock waits no longer (not request_timeout_ms)
BEYOND_END_HOLD_S = 0.5  # records served beyond their log end are read again after this long (``_beyond_end``)
# A fetch reply's log end below the next offset is confirmed by ListOffsets before a restart (``_confirm_drops``):
LOG_END_CHECK_TIMEOUT_S = 5.0  # its wait at most (under the cycle lock); no answer is not asked again sooner than this
LOG_END_RECHECK_S = 1.0  # an answer stands this long for the partitions still seen below
GAP_MARK_TIMEOUT_S = 20.0  # a restart's gap mark (``_restart``): the producer's 15 s request timeout, and some
LAGGING_LOG_EVERY_S = 60.0  # a drop ListOffsets does not confirm: one WARNING a partition a minute at most
# Records up to this size are sent in batches; a larger one goes through ``send``, which refuses a
# record over the producer's max_request_size (1 MiB) as it always did (MessageSizeTooLargeError).
_BATCHED_MAX_BYTES = 64 * 1024


def retry_delay(failures: int) -> float:
    """The wait after the ``failures``-th failed turn of the loop in a row: doubling from 0.05 s,
    at most ``ERROR_BACKOFF_MAX_S``. The streak ends only with a turn that applied a cycle, or an
    idle one that reached Redis while no failed cycle waits (``StreamConsumer.run``): a caught-up
    worker's idle fetches in between do not reset it, which kept a Redis outage at one failure (and
    traceback) a second, each "retrying in 0.05 s" (QA3 #5); nor does a turn that only submitted
    its cycle (the write that fails is settled a turn later with ``pipeline_depth`` 2), which kept
    a refused write at 0.05 s for good (QA8 H3).

    >>> [f"{retry_delay(n):g}" for n in (1, 2, 3, 6, 7, 50, 10**6)]
    ['0.05', '0.1', '0.2', '1.6', '2', '2', '2']
    """
    return backoff_s(min(failures, 32), start_s=ERROR_BACKOFF_START_S, max_s=ERROR_BACKOFF_MAX_S)  # 2**n stays a float


def count_redis_error(exc: BaseException) -> bool:
    """Count ``exc`` in ``churnwatch_redis_errors_total`` if Redis raised it (an outage, a timeout,
    a refused write such as out of memory): whatever step of the loop made the call, the alert
    ChurnwatchRedisErrors must see it (the loop's own failures went uncounted: QA3 #5). True if counted.

    >>> import redis
    >>> count_redis_error(redis.exceptions.ConnectionError("down")), count_redis_error(ValueError("bug"))
    (True, False)
    """
    if isinstance(exc, (*REDIS_TRANSIENT, redis.exceptions.RedisError)):
        metrics.REDIS_ERRORS.inc()
        return True
    return False


def pause_while_scoring(records: int, max_records: int, pipeline_depth: int, prefetch_during_head: bool) -> bool:
    """Pause fetching while a cycle of ``records`` decodes, reads and scores (resumed when it starts
    applying), so that its successor gets what arrived until then? Only caught up (a batch short of
    ``max_records``: a backlog keeps prefetching, cycles back to back), always with one cycle at a
    time, with overlapped cycles only if ``prefetch_during_head`` is off. aiokafka prefetches the
    moment a batch is taken and sends no other fetch while that prefetch sits unread, so without
    the pause the next cycle gets what arrived in the first milliseconds of this one's head and
    the rest waits a cycle more (the latency section's "behind"; SCALING.md, "Levers").

    >>> pause_while_scoring(300, 10_000, 2, False), pause_while_scoring(10_000, 10_000, 2, False)
    (True, False)
    >>> pause_while_scoring(300, 10_000, 2, True), pause_while_scoring(300, 10_000, 1, True)
    (False, True)
    """
    return 0 < records < max_records and (pipeline_depth == 1 or not prefetch_during_head)


def _lag(end: int, applied: int) -> int:
    """Records of a partition not applied yet: its log end less the next offset to apply; beyond
    the log end (skipping), none of the log's records is applied.

    >>> _lag(700, 500), _lag(500, 500), _lag(300, 500)
    (200, 0, 300)
    """
    return end - applied if end >= applied else end


def wall_ms() -> int:
    """The wall clock, for operational decisions only (future check, idle partitions, lag)."""
    return int(time.time() * 1000)


class KafkaSink:
    """``streams.worker.pipeline.Producer`` over aiokafka: acks=all, no linger, not idempotent
    (Tansu rejects aiokafka's InitProducerId)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Create and start the producer (aiokafka clients must be made inside the running loop)."""
        self._producer = AIOKafkaProducer(
            acks="all",
            # No linger: send_all appends a cycle's records before the sender task runs, so they
            # leave as one batch per partition anyway; a linger only added its 5 ms to every
            # cycle that had alerts (the cycle waits for the acks before writing states).
            linger_ms=0,
            max_batch_size=256 * 1024,
            enable_idempotence=False,
            request_timeout_ms=15_000,
            **aiokafka_client_kwargs(self.settings),
        )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            self._producer = None
            raise

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_all(self, topic: str, records: Sequence[tuple[bytes | None, bytes]] | Sequence[KafkaCopy]) -> None:
        """Send ``(key, value)`` or ``(key, value, headers)`` records; returns once all are acked.

        Keyed records go out as one batch per partition (``create_batch``/``send_batch``), the
        partitions those of aiokafka's own partitioner computed for all keys at once
        (streams/worker/partitioner.py), in the records' order within each partition: what
        ``send`` per record did (linger 0: the records of a call left as one batch a partition
        anyway), without its per-record partitioner, coroutine and future (~10 us an alert).
        A large record (``send`` checks the size) goes by ``send`` in its place within its
        partition, after the batch built so far: a key's records keep their order. Unkeyed
        records (a random partition, no order to keep) go one by one."""
        producer = self._producer
        if producer is None:
            raise KafkaConnectionError("producer not started")
        futures = []
        keys = [r[0] for r in records]
        unkeyed = None in keys
        keyed: Sequence[tuple[Any, ...]] = [r for r in records if r[0] is not None] if unkeyed else records
        if keyed:
            if unkeyed:
                keys = [k for k in keys if k is not None]
            if set(map(len, keyed)) != {3}:  # (key, value) records: no headers (alerts always have them)
                keyed = [(r[0], r[1], r[2] if len(r) > 2 else None) for r in keyed]
            partitions = list(await producer.partitions_for(topic))
            by_partition: dict[int, list[tuple[Any, ...]]] = {}
            for r, p in zip(keyed, partitions_of(keys, partitions)):  # type: ignore[arg-type]
                by_partition.setdefault(p, []).append(r)
            for p, rows in by_partition.items():
                futures.extend(await self._send_partition(producer, topic, p, rows))
        if unkeyed:
            for r in records:
                if r[0] is None:
                    futures.append(await producer.send(topic, value=r[1], key=None, headers=r[2] if len(r) > 2 else None))  # type: ignore[misc]
        await asyncio.gather(*futures)

    async def send_to(self, topic: str, partition: int, record: KafkaCopy) -> None:
        """Send one ``(key, value, headers)`` record into ``partition`` itself, whatever its key
        (a control record that must land there: ``streams.worker.gap``); returns once acked."""
        producer = self._producer
        if producer is None:
            raise KafkaConnectionError("producer not started")
        key, value, headers = record
        await (await producer.send(topic, value=value, key=key, partition=partition, headers=headers))

    @staticmethod
    async def _send_partition(producer: AIOKafkaProducer, topic: str, partition: int,
                              rows: list[tuple[Any, ...]]) -> list[asyncio.Future]:  # type: ignore[type-arg]
        """Queue ``rows`` for ``partition`` in their order, in as few batches as the batch size
        allows; a large row by ``send`` (its size check) after the batch built before it."""
        futures = []
        i = 0
        while i < len(rows):
            key, value, headers = rows[i]
            if len(key) + len(value) > _BATCHED_MAX_BYTES:
                futures.append(await producer.send(topic, value=value, key=key, headers=headers, partition=partition))  # type: ignore[arg-type]
                i += 1
                continue
            builder = producer.create_batch()
            i = _fill(builder, rows, i)
            futures.append(await producer.send_batch(builder, topic, partition=partition))
        return futures


def _fill(builder: BatchBuilder, rows: list[tuple[Any, ...]], start: int) -> int:
    """Append ``rows[start:]`` (key, value, headers) to an empty batch until it is full or a row is
    over ``_BATCHED_MAX_BYTES`` (sent by ``send``); returns the index of the first row not in it.

    What ``BatchBuilder.append`` does (aiokafka 0.14, pinned), without its Python frame, keyword
    arguments and serializer call for every record (the worker's producer has no serializers): the
    record batch builder's own ``append`` with the record's offset in the batch, the count then set
    as ``append`` keeps it. ~0.3 us of ~1.1 us a record (docs/SCALING.md); the records and batches
    are the same (tests/test_partitioner.py)."""
    append, n = builder._builder.append, 0
    for key, value, headers in itertools.islice(rows, start, None):
        if len(key) + len(value) > _BATCHED_MAX_BYTES or append(n, None, key, value, headers or []) is None:
            break
        n += 1
    if not n:  # (the first record of an empty batch always fits: a row here is at most _BATCHED_MAX_BYTES)
        raise RuntimeError("a record did not fit in an empty batch")
    builder._relative_offset = n
    return start + n


class LogEnds:
    """Log end offsets of the events topic's partitions, for the check of re-routed copies'
    origins (``streams.worker.routing.Router.origin_problem``): the highwater of a fetch reply,
    from a consumer of its own (no group, so it joins nothing and moves no offset). Not
    ``end_offsets``: Tansu's ListOffsets answers the base offset of the last batch + 1, which is
    below genuine origins in that batch. The fetch starts at the last record known to exist (the
    end read before, less one), so the broker answers at once instead of holding the fetch for
    ``_WAIT_MS``, as it does at or beyond the end: a producer setting a bogus header on every
    record costs a fetch round trip per cycle, not a wait."""

    _WAIT_MS = 200
    _ATTEMPTS = 5  # fetches without a reply before read() raises (the caller retries with a backoff)

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings, self.topic = settings, topic
        self.consumer: AIOKafkaConsumer | None = None

    async def read(self, wanted: dict[int, int], known: Mapping[int, int]) -> dict[int, int]:
        """``{partition: log end}`` for the partitions of ``wanted`` (``{partition: an offset in
        it}``), ``known`` the ends read before; raises when the broker did not reply (never a
        partial answer: a copy must not be refused for a slow reply)."""
        out = await self.read_some(wanted, known)
        if len(out) < len(wanted):
            raise KafkaError(f"no fetch reply for {self.topic} partitions {sorted(set(wanted) - set(out))} in "
                             f"{self._ATTEMPTS} attempts")
        return out

    async def read_some(self, wanted: dict[int, int], known: Mapping[int, int], attempts: int = _ATTEMPTS) -> dict[int, int]:
        """``read``, but the ends that came within ``attempts`` fetches, maybe not all of them: the
        caller judges only the copies whose end came (``StreamConsumer._learn_log_ends``)."""
        if self.consumer is None:
            consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                        fetch_max_wait_ms=self._WAIT_MS, fetch_min_bytes=1, max_partition_fetch_bytes=64 * 1024,
                                        **aiokafka_client_kwargs(self.settings))
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            self.consumer = consumer
        consumer = self.consumer
        tps = {q: TopicPartition(self.topic, q) for q in wanted}
        consumer.assign(list(tps.values()))
        out: dict[int, int] = {}
        asked_ms = int(time.time() * 1000)
        for attempt in range(1, attempts + 1):
            for q, tp in tps.items():
                if q not in out:
                    consumer.seek(tp, max(0, known.get(q, 0) - 1))
            await consumer.getmany(*[tp for q, tp in tps.items() if q not in out], timeout_ms=self._WAIT_MS * 4,
                                   max_records=len(tps))
            for q, tp in tps.items():
                end, replied = consumer.highwater(tp), consumer.last_poll_timestamp(tp)
                # an end above the offset proves it; one at or below it must come from a reply to this read
                if q not in out and end is not None and (end > wanted[q] or (replied or 0) >= asked_ms):
                    out[q] = end
            if len(out) == len(tps) or attempt == attempts:
                break
            await asyncio.sleep(0.1 * attempt)
        return out

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: "StreamConsumer") -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.owner.on_assigned(assigned)


class StreamConsumer:
    """Consume -> ``Pipeline.process`` -> commit, until stopped. Never exits on bad input or outages."""

    def __init__(self, settings: Settings, store: Store, pipeline: Pipeline, sink: KafkaSink) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.sink = sink
        self.topic = settings.topic_events
        self.consumer: AIOKafkaConsumer = None  # type: ignore[assignment]  # made in start(), inside the loop
        self._cycle_lock = asyncio.Lock()
        self._revoking = False
        self._stopping = False
        self._generation = 0  # bumped on every rebalance callback
        # bumped by every ``_rewind`` (a cycle in flight failed: partitions sought back to what was
        # applied): a batch fetched before it must continue the lowered offsets exactly (``_judge``)
        self._rewinds = 0
        self._next: dict[int, int] = {}  # partition -> offset the next record taken must have
        # partition -> offset after the records of the settled cycles: where the records of cycles
        # still in flight are read again if one of them fails (== _next when none is in flight)
        self._applied: dict[int, int] = {}
        self._flights: collections.deque[tuple[Flight, dict[TopicPartition, list]]] = collections.deque()  # type: ignore[type-arg]
        self._unresumed: set[TopicPartition] = set()  # assigned, but progress not read yet
        self.assigned: set[TopicPartition] = set()
        self.cycles = 0
        self.applied_cycles = 0  # settled cycles that wrote (``run``'s failure streak ends with one)
        self.failures = 0  # failed turns of ``run`` in a row
        self.settled_at = time.monotonic()  # when a cycle last settled, or nothing waited (``stuck_s``)
        self._to_commit: dict[TopicPartition, int] = {}  # newest applied offsets not yet hinted
        self._commit_task: asyncio.Task[None] | None = None
        self._committed_at = 0.0
        self._started: set[str] = set()  # parts already started: start() is retried after failures
        self._verify: dict[int, tuple[int, str]] = {}  # p -> (offset, checksum) its record must still have
        self._fresh: set[int] = set()  # started from offset 0: the log should start there too
        self._lost: StoreLost | None = None  # Redis lost its data: rebuild before anything else
        self._rolled_back: StoreRolledBack | None = None  # Redis lost recent writes: resume from it first
        self.replaced: ModelReplaced | None = None  # another model took over: this worker stops
        self.layout: int | None = None  # partition count the state is laid out for (Redis meta)
        self.halted: str | None = None  # why this worker takes no work (the partition count changed)
        self.refused: str | None = None  # why this worker cannot run at all (a layout of 0 partitions): it exits 2
        self.missing: str | None = None  # why this worker waits, applying nothing: its events topic does not exist
        self._listing_failed = float("-inf")  # monotonic time of the last failed topic listing (_topic_exists)
        # partition -> monotonic time its fetching resumes: records it cannot take yet (``_hold``)
        self._held: dict[TopicPartition, float] = {}
        # aligned reading of a backlog (streams/worker/align.py): the partitions paused until the others catch up
        self._align = Alignment(settings.align_ahead_ms)
        # partition -> (monotonic time until which it stands, ListOffsets' log end or None: no answer) (``_confirm_drops``)
        self._end_checks: dict[int, tuple[float, int | None]] = {}
        self._lagging_logged: dict[int, float] = {}  # partition -> when a drop not confirmed was last logged
        self._drop_listed = float("-inf")  # monotonic time of the last listing for a drop without an answer
        # partition -> why: a log end confirmed below what this worker read, seen by a cycle's tail
        # (``_log_went_back``); ``_check_log`` restarts it even once a rewind lowered the next offset
        self._went_back: dict[int, str] = {}
        # partition -> its restart count in Redis as this worker last knew it (read at resume, or
        # its own restart): a higher one means another worker restarted it (``_restarted_elsewhere``)
        self._restarts: dict[int, int] = {}
        self._store_checked_at = 0.0
        self._cap = RecordCap(settings.batch_target_ms, settings.batch_max_records)  # records per getmany
        self._backlog = 0  # records below the highwaters of the last fetch replies, not taken yet
        # fetch_ahead: records taken off aiokafka's buffer by ``_fetch_ahead`` as each fetch reply
        # comes, in offset order per partition, not yet handed to a cycle; dropped on every seek and
        # rebalance (``_seek``, ``_drop_stash``)
        self._stash: dict[TopicPartition, list] = {}  # type: ignore[type-arg]
        self._log_ends: LogEnds | None = None  # started at the first copy whose origin must be checked
        self._ends_failures = 0  # reads of log ends in a row that left an end unknown (``_learn_log_ends``)
        self._lag_ends: LogEnds | None = None  # started when the lag is read while stuck (``refresh_lag``), then dropped
        self._lag_task: asyncio.Task[None] | None = None  # the read of ``refresh_lag``, one at a time
        self._in_hand = 0  # records of the batch being submitted (``_cycle``): waiting too (``stuck_s``)
        self._stash_n = 0
        self._stash_generation = 0  # the generation when the oldest stashed fetch was asked for
        self._stash_error: BaseException | None = None  # raised by ``getmany`` in ``_fetch_ahead``
        self._ahead_allowed = asyncio.Event()  # clear while the loop takes records itself (``_take``)
        self._getmany_lock = asyncio.Lock()  # one ``getmany`` at a time: the loop's or ``_fetch_ahead``'s
        self._last_take = 0.0  # monotonic time records were last taken off aiokafka's buffer
        self._fetch_task: asyncio.Task[None] | None = None
        # this worker's mark that it runs on the topic (`churnwatch relayout` refuses meanwhile)
        self.mark = RunningMark(store, self.topic)
        pipeline.abandon_requested = lambda: self._revoking or self._stopping
        pipeline.applying = self._resume_fetching
        pipeline.events_unusable = self._events_unusable

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis (meta check, scripts), start the producer, join the group."""
        if "store" not in self._started:
            await self._connect_store()
            if self.store.adopted is not None:  # Redis records a learned successor of our file: run it
                self.pipeline.set_model(self.store.adopted.model)
            await self.mark.start()  # before it joins the group: no partition is ever held unmarked
            self._started.add("store")
        if "sink" not in self._started:
            await self.sink.start()
            self._started.add("sink")
        if "consumer" not in self._started:
            settings = self.settings
            self.consumer = AIOKafkaConsumer(
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=settings.session_timeout_ms,  # settings.py: also paces Tansu's joins
                heartbeat_interval_ms=settings.session_timeout_ms // 3,
                max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
                # Latency: the broker's hold on a fetch (settings.py says why it is short). A larger
                # fetch_min_bytes would only make low rates wait for the max wait: when the worker
                # is behind, a fetch already returns everything up to the byte limits.
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                fetch_min_bytes=1,
                **aiokafka_client_kwargs(settings),
            )
            try:
                await self.consumer.start()
            except BaseException:
                await self.consumer.stop()
                raise
            # aiokafka's own record objects, not a ConsumerRecord each (~9k instructions a record less)
            lean_fetches(self.consumer)
            self.consumer.subscribe([self.topic], listener=_Listener(self))
            self._started.add("consumer")
        logger.info("consumer started: topic %s, group %s", self.topic, self.settings.group_id)

    async def stop(self) -> None:
        """Finish the cycle in flight (or abandon it if it is stuck retrying), then leave the group."""
        self._stopping = True
        async with self._cycle_lock:
            await self._drain()
        try:
            await self._stop_lag()
            if self._log_ends is not None:
                await self._log_ends.stop()
            self._log_ends = None
            await self._stop_fetch_ahead()
            if "consumer" in self._started:
                if self._commit_task is not None:
                    await asyncio.wait([self._commit_task], timeout=5.0)
                self._committed_at = 0.0
                self._hint_commit()
                if self._commit_task is not None:
                    await asyncio.wait([self._commit_task], timeout=5.0)
                await self.consumer.stop()
        finally:
            if "sink" in self._started:
                await self.sink.stop()
            await self._unmark()
            await self.store.close()
            self._started.clear()
        metrics.PARTITIONS_ASSIGNED.set(0)
        metrics.READY.set(0)
        logger.info("consumer stopped after %s cycles", self.cycles)

    async def _unmark(self) -> None:
        """Remove this worker's running mark: it left the group, nothing more is applied. A Redis
        that does not answer within a second keeps it until it expires (``liveness.MARK_MS``): the
        stop does not wait a socket timeout for it."""
        try:
            await asyncio.wait_for(self.mark.end(), 1.0)
        except Exception as exc:  # noqa: BLE001  (stopping anyway; asyncio.TimeoutError included)
            logger.warning("could not remove this worker's running mark (%s); it expires in %d s", exc,
                           MARK_MS // 1000)

    def request_stop(self) -> None:
        """Ask ``run`` to return after the current fetch; a cycle stuck retrying gives up."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- rebalance ----------------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Runs before the group rebalances: no cycle may write for these partitions afterwards."""
        self._generation += 1
        self._drop_stash(revoked)
        self._revoking = True
        try:
            await self._stop_lag()  # its partitions are assigned to it: no fetches for those revoked (review 15, L-2)
            async with self._cycle_lock:  # the cycles in flight finish, or abandon if stuck
                await self._drain()
                for tp in revoked:
                    if tp.topic == self.topic:
                        self.pipeline.revoke(tp.partition)
                        self._next.pop(tp.partition, None)
                        self._applied.pop(tp.partition, None)
                        self._verify.pop(tp.partition, None)
                        self._fresh.discard(tp.partition)
                        self._held.pop(tp, None)
                        self._restarts.pop(tp.partition, None)
                        self._forget_log_end(tp.partition)
                        self.assigned.discard(tp)
                        self._unresumed.discard(tp)
                        for gauge in (metrics.CONSUMER_LAG, metrics.WATERMARK_LAG):
                            with contextlib.suppress(KeyError):
                                gauge.remove(str(tp.partition))
        finally:
            self._revoking = False
        metrics.PARTITIONS_ASSIGNED.set(len(self.assigned))
        if any(tp.topic == self.topic for tp in revoked):  # the first join revokes nothing: not a rebalance that cost work
            metrics.REBALANCES.inc()
        logger.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Runs after the group rebalanced: resume each new partition from Redis progress."""
        self._generation += 1
        async with self._cycle_lock:
            await self._drain()
        mine = {tp for tp in assigned if tp.topic == self.topic}
        self.assigned |= mine
        self._unresumed |= mine
        metrics.PARTITIONS_ASSIGNED.set(len(self.assigned))
        logger.info("partitions assigned: %s", sorted(tp.partition for tp in mine))
        if not mine:
            await self._none_assigned()
        await self._resume()

    async def _none_assigned(self) -> None:
        """No partition of the events topic is ours: more workers than partitions, or the topic is
        gone (its metadata refresh found it missing, so the group assigned nothing, and no owned
        partition's fetch will show it). A listing tells which (``_listed``); if gone, the worker
        waits for it (``_topic_gone``), as a worker that owned partitions does. A failed listing
        changes nothing (the next rebalance asks again)."""
        if self.missing is not None or self._stopping:
            return
        try:
            listed = await self._listed()
        except KafkaError as exc:
            retry_logger.warning("no partition of %s assigned, and listing the topics failed (%s)", self.topic, exc)
            return
        if not listed:
            self._topic_gone()

    async def _resume(self) -> None:
        """Seek every assigned-but-not-resumed partition to its progress; retries Redis until it answers."""
        failures = 0
        while self._unresumed and not self._stopping:
            try:
                # the restart counts before the progress: a restart by another worker in between is
                # then later than the count known (``_restarted_elsewhere``), never hidden in it
                restarts = await self.store.restarts(self.topic, [tp.partition for tp in self._unresumed])
                progress = await self.store.read_resume(self.topic)
            except REDIS_TRANSIENT as exc:
                count_redis_error(exc)
                failures += 1
                delay = retry_delay(failures)
                retry_logger.warning("cannot read progress from Redis (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            await self._check_layout()
            if self.refused is not None:
                return
            now = wall_ms()
            self.pipeline.observe_global({p: (r.offset, r.max_ms) for p, r in progress.items()})
            for tp in sorted(self._unresumed, key=lambda t: t.partition):
                self._seek_resume(tp, progress.get(tp.partition), now)
            self._restarts.update(restarts)
            self._unresumed.clear()
            self._generation += 1

    def _seek_resume(self, tp: TopicPartition, resume: Resume | None, now_ms: int) -> None:
        """Seek a newly owned partition; where a checksum is stored, to the last applied record
        itself, which ``_check_log`` compares before anything after it is applied."""
        p = tp.partition
        start = self.pipeline.assign(p, (resume.offset, resume.max_ms) if resume else None, now_ms,
                                     resume.origins if resume else None)
        self._verify.pop(p, None)
        self._fresh.discard(p)
        self._forget_log_end(p)  # the resume's own check judges the log (``_verify``)
        if resume is not None and resume.fingerprint and resume.offset >= 0:
            start = resume.offset
            self._verify[p] = (resume.offset, resume.fingerprint)
        elif start == 0:
            self._fresh.add(p)
        self._seek(tp, start)
        self._next[p] = self._applied[p] = start
        logger.info("%s[%s] resumes at offset %s", tp.topic, p, start if p not in self._verify else f"{start + 1} (checking {start})")

    # -- the loop -----------------------------------------------------------------------------

    def _resume_fetching(self) -> None:
        """Let the fetcher ask for the next records (see ``run``); a halted worker, one waiting for
        its topic and a held partition (``_hold``) stay paused."""
        if self.halted is None and self.missing is None and self.consumer is not None:
            paused = [tp for tp in self.consumer.paused() if tp not in self._held]
            if paused:
                self.consumer.resume(*paused)

    def _hold(self, tp: TopicPartition, offset: int, taken: bool, seconds: float) -> None:
        """Read ``tp`` again from ``offset``, not before ``seconds`` have passed: records it cannot
        take yet (beyond its own log end, or a copy whose origin cannot be judged yet). ``taken``:
        the records before ``offset`` go on to the cycle (which moves the next offset to apply up
        to it, or re-seeks where they do not continue it); if none, from the next offset to apply
        (a fetch from before a rebalance, seeked to its own offset, would pass for a gap). The
        other partitions go on; ``run`` lets it fetch again (``_release_held``)."""
        self._seek(tp, offset if taken else self._next.get(tp.partition, offset))
        self._held[tp] = time.monotonic() + seconds
        self.consumer.pause(tp)

    def _release_held(self) -> None:
        """Let the held partitions whose time has come (or that were revoked) fetch again."""
        if not self._held:
            return
        now = time.monotonic()
        due = [tp for tp, until in self._held.items() if until <= now or tp not in self.assigned]
        for tp in due:
            del self._held[tp]
        if self.halted is None and self.missing is None:
            owned = [tp for tp in due if tp in self.assigned]
            if owned:
                self.consumer.resume(*owned)

    async def run(self) -> None:
        """Until ``stop``: fetch a batch, process it, commit a hint. Errors back off and continue.

        Caught up (a batch smaller than ``batch_max_records``), fetching is paused while the cycle
        decodes, reads and scores: aiokafka otherwise prefetches the moment a batch is taken, so
        what arrives during cycle k is read at the start of cycle k+1 and applied only at the end
        of k+2 (2-3 cycles of latency). It resumes when the cycle starts applying (produce, write,
        progress: ``Pipeline.applying``), so the next fetch - which the broker holds for up to
        ``fetch_max_wait_ms`` - overlaps the cycle's tail instead of following it, and brings what
        arrived until about the cycle's end. Behind (full batches), prefetching keeps the cycles
        back to back. With ``pipeline_depth`` 2 a cycle returns here once scored, its tail still
        running (``Pipeline.submit``): the next fetch and the next cycle's decode, read and scoring
        overlap its alert acks and state write, and fetching is not paused unless
        ``prefetch_during_head`` is off (``pause_while_scoring``): the pause gives the next cycle
        what arrived during this head, but makes it wait for that fetch, which on Tansu lists every
        stored batch (7-23 ms a cycle at half the max rate, no gain in the p99: SCALING.md, "Levers").
        With the prefetch on, ``fetch_ahead_ms`` (``_fetch_ahead``) moves a reply that waited that
        long in aiokafka's buffer into the worker's own during the cycle, so aiokafka's next fetch
        goes out then rather than at the next cycle's start; the next cycle takes both (``_take``).
        """
        self.failures = 0  # failed turns in a row (retry_delay)
        work_failed = False  # a turn with records (or a cycle in flight) failed since the last applied cycle
        timeout_ms = self.settings.batch_timeout_ms
        while not self._stopping:
            applied, rewound, n = self.applied_cycles, self._rewinds, 0
            try:
                if self.missing is not None:
                    await self._wait_for_topic()
                    continue
                await self._recover()
                if self._unresumed:
                    await self._resume()
                self._release_held()
                await self._release_aligned()
                asked, asked_ms = time.perf_counter(), wall_ms()
                max_records = self._cap.limit(self._backlog)
                rewinds = self._rewinds
                batch, generation = await self._fetch(timeout_ms, max_records)
                if self._stopping:
                    break
                if self._unresumed or self.halted or self.missing:
                    async with self._cycle_lock:
                        await self._drain()
                    continue  # resumed (and re-seeked) on the next turn; or taking no work
                n = sum(len(r) for r in batch.values())
                if n:  # how long a cycle waited for its records (the broker holds a fetch up to its max wait)
                    metrics.CYCLE_PHASE_SECONDS.labels("fetch").observe(time.perf_counter() - asked)
                live = pause_while_scoring(n, max_records, self.settings.pipeline_depth, self.settings.prefetch_during_head)
                if live:  # before any await: the fetcher task has not sent its prefetch yet
                    self.consumer.pause(*self.consumer.assignment())
                try:
                    taken = await self._judge(batch, generation, rewinds)
                    if taken is not None:  # else no cycle: its heartbeats would go into the missing topic
                        await self._cycle(taken, asked_ms)
                finally:
                    if live:  # a halted worker, one waiting for its topic and held partitions stay paused
                        self._resume_fetching()
                answered = await self._check_store(idle=not n and not self._flights)
                if self.applied_cycles > applied:
                    self.failures, work_failed = 0, False
                elif answered and not n and not work_failed:
                    self.failures = 0  # Redis answers again, and no failed work waits (see retry_delay)
            except (StoreLost, StoreRolledBack) as exc:
                self._store_failed(exc)
            except LayoutChanged as exc:
                self._halt(str(exc))
            except ModelAdopted as exc:
                await self._adopt(exc)
            except ModelReplaced as exc:
                logger.error("%s: this worker stops taking work (rolling model upgrade; docs/OPERATE.md, "
                             "\"Model upgrades\"). Runbook: ChurnwatchModelMismatch", exc)
                self.replaced = exc
                self._stopping = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                work_failed = work_failed or bool(n) or self._rewinds != rewound
                await self._back_off(exc)

    async def _back_off(self, exc: Exception) -> None:
        """One failed turn of ``run``: counted in the streak that sets the delay (``retry_delay``),
        logged (a Redis outage or refusal as one WARNING naming the runbook: no traceback to read;
        anything else with its traceback), a demoted primary's connections dropped (READONLY,
        review 15 M-1), then the delay slept."""
        self.failures += 1
        delay = retry_delay(self.failures)
        if count_redis_error(exc) and redis_transient(exc):
            retry_logger.warning("worker cycle failed: Redis unavailable or refusing (%s: %s); retrying in "
                                 "%.2f s (failure %d in a row). Runbook: ChurnwatchRedisErrors",
                                 type(exc).__name__, exc, delay, self.failures)
        else:
            retry_logger.exception("worker cycle failed; retrying in %.2f s", delay)
        await self.store.reconnect_after(exc)
        await asyncio.sleep(delay)

    def stuck_s(self) -> float:
        """How long work has waited (a cycle in flight, a batch being submitted, a failed turn to
        retry, records behind the last fetch) with no cycle settled; 0 while nothing waits. A worker
        whose writes Redis refuses applies nothing while Redis answers every read and PING:
        ``/readyz`` answered 200 through it (QA8 M2); past ``settings.stuck_after_ms`` it answers
        503 (``WorkerRuntime.is_ready``). The batch in hand counts: a caught-up worker at depth 1
        whose submit retries in place (``mark_accounts_in_use`` refused for lack of memory) has no
        cycle in flight and nothing behind the last fetch (review 14, L-2)."""
        now = time.monotonic()
        if not (self._flights or self._in_hand or self.failures or self._backlog):
            self.settled_at = now
            return 0.0
        return now - self.settled_at

    def fetch_reply_age_s(self, now_ms: float | None = None) -> float | None:
        """Seconds since the broker last answered a fetch for any partition this worker owns, or
        None (nothing owned, no answer yet). aiokafka stamps a partition at every fetch reply
        without error, an empty long poll's too (``last_poll_timestamp``), so while the broker
        answers the newest stamp is at most about ``CHURNWATCH_FETCH_MAX_WAIT_MS`` old; while it
        is unreachable it only grows. QA13 F2: over a 45-second outage ``/readyz`` stayed 200 and
        the lag gauges read 0 (they come from that broker); this is the worker's own view. A
        partition held back (its records not taken: ``_hold``) is not fetched, so the newest of
        all owned partitions is taken, not each one's."""
        if self.consumer is None or not self.assigned:
            return None
        stamps = []
        for tp in self.assigned:
            try:
                stamps.append(self.consumer.last_poll_timestamp(tp))
            except AssertionError:  # assigned here, not (yet) in aiokafka's assignment
                continue
        newest = max((t for t in stamps if t), default=None)
        if newest is None:
            return None
        now = time.time() * 1000 if now_ms is None else now_ms
        return max(0.0, (now - newest) / 1000)

    def refresh_lag(self) -> None:
        """``churnwatch_consumer_lag_events`` while no cycle settles (``stuck_s``: a write retried in
        place, a submit blocked). ``_cycle`` sets it and does not run then: the gauge stayed at the
        size of the batch that got stuck while the backlog grew, so ChurnwatchConsumerLagHigh could
        not fire for a worker that was caught up when it got stuck (review 14, M-1). The log ends
        come from a fetch reply to a consumer of its own (``LogEnds``): the group consumer's
        highwaters are those of its last fetch, and it fetches no more while its buffer is not
        taken; Tansu's ``end_offsets`` is short by up to a producer batch. Called by the gauge
        timer (``WorkerRuntime.refresh_gauges``): the read runs as a task of its own, one at a time,
        so that Redis's part of the refresh (readiness) never waits on the broker (review 15, L-4)."""
        if self._lag_task is None or self._lag_task.done():
            self._lag_task = asyncio.ensure_future(self._refresh_lag())

    async def _refresh_lag(self) -> None:
        """One fetch per refresh, only while stuck. Once not stuck (or stopping) the lag consumer is
        stopped: assigned partitions are fetched in the background by aiokafka whether read or not,
        so a kept one long-polled every partition, revoked ones too, for the life of the process
        after a single stuck episode (review 15, L-2); it is cheap to start again."""
        try:
            if self._stopping or self.stuck_s() < LAG_REFRESH_AFTER_S:
                await self._drop_lag_ends()
                return
            applied = {tp.partition: self._applied[tp.partition] for tp in self.assigned if tp.partition in self._applied}
            if not applied:
                return
            if self._lag_ends is None:
                self._lag_ends = LogEnds(self.settings, self.topic)
            ends = await asyncio.wait_for(self._lag_ends.read_some(applied, applied, attempts=1), LAG_READ_TIMEOUT_S)
        except Exception as exc:  # the broker is down as well, or slow: the next refresh tries again
            logger.debug("consumer lag not refreshed: %s", exc)
            return
        for p, end in ends.items():  # revoked meanwhile: its gauge was removed and stays so
            if TopicPartition(self.topic, p) in self.assigned and p in self._applied:
                metrics.CONSUMER_LAG.labels(str(p)).set(_lag(end, self._applied[p]))

    async def _drop_lag_ends(self) -> None:
        ends, self._lag_ends = self._lag_ends, None
        if ends is not None:
            await ends.stop()

    async def _stop_lag(self) -> None:
        """Cancel a lag read under way and stop its consumer (on revoke and at stop)."""
        task, self._lag_task = self._lag_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        try:
            await self._drop_lag_ends()
        except Exception as exc:  # noqa: BLE001  (closing sockets of a broker gone: nothing to keep)
            logger.debug("stopping the lag consumer failed: %s", exc)

    async def _judge(self, batch: dict[TopicPartition, list], generation: int,  # type: ignore[type-arg]
                     rewinds: int) -> dict[TopicPartition, list] | None:  # type: ignore[type-arg]
        """What of a fetched ``batch`` goes to a cycle (None: no cycle, the events topic is missing):
        the records ``_check_log`` and ``_learn_log_ends`` let through that continue each partition
        (``_contiguous``). ``generation`` and ``rewinds``: the group generation and the rewind count
        when the batch was asked for. Exact continuations only if either moved since, also during
        ``_check_log`` itself: a cycle in flight abandoned while ``_restart`` drains lowers the next
        offsets of its partitions (``_rewind``), and the batch in hand, read from the old ones,
        passed for a forward gap: the records between were never applied (review 9, finding 1)."""
        batch = await self._check_log(batch, generation != self._generation)
        if self.missing is not None:
            return None
        batch = await self._learn_log_ends(batch)
        batch = self._contiguous(batch, rebalanced=generation != self._generation or rewinds != self._rewinds)
        if batch and self._aligning() and not self._fetching_ahead():
            held = self._align.holding(self.consumer, self.assigned, self._next, self._stream_ms, batch, self._idle)
            batch, left = self._align.cut(batch, held)
            for tp, records in left.items():  # read again from here once the others catch up (``_aligned_fetch``)
                self._stash_generation = min(self._stash_generation, generation) if self._stash_n else generation
                self._stash[tp] = records + self._stash.get(tp, [])
                self._stash_n += len(records)
            if left:  # where this batch leaves each partition, for the other workers at once
                own = self._align.own_holding(self.consumer, self.assigned, self._next, self._stream_ms, batch, self._idle)
                await self._align.publish(self.store, self.topic, own)
        return batch

    # -- aligned reading (streams/worker/align.py) ---------------------------------------------

    def _aligning(self) -> bool:
        """Read a backlog's partitions side by side in event time? Where accounts are in use, and
        until the first cycle is applied (a fresh replay's first batch: not known yet)."""
        return self._align.on(self.pipeline.heartbeats.active or self.applied_cycles == 0)

    def _idle(self, p: int) -> bool:
        """The clock's idle rule (streams/worker/clock.py): caught up, no record for ``idle_partition_ms``."""
        clock = self.pipeline.clock
        c = clock.partitions.get(p)
        return c is None or (c.caught_up and wall_ms() - c.last_records_wall_ms >= clock.idle_partition_ms)

    def _stream_ms(self, p: int) -> int:
        clock = self.pipeline.clock.partitions.get(p)
        return NEVER if clock is None else clock.stream_ms

    async def _release_aligned(self) -> None:
        """Before a fetch: learn other workers' progress (at most once a second) and resume the
        partitions the others caught up with; a halted worker, one waiting for its topic and held
        partitions stay paused."""
        if not self._aligning():
            self._align.paused.clear()  # turned off: nothing is held back for it (its records left: ``_take``)
            return
        own = self._align.own_holding(self.consumer, self.assigned, self._next, self._stream_ms, {}, self._idle)
        await self._align.refresh_foreign(self.consumer, self.store, self.topic, self.pipeline.partitions, self.assigned, own)
        self._align.release(self.consumer, self.assigned, self._next, self._stream_ms, self._idle)

    async def _aligned_fetch(self, timeout_ms: int, max_records: int) -> tuple[dict[TopicPartition, list], int]:  # type: ignore[type-arg]
        """A batch with a share of ``max_records`` from each partition that may be read (aiokafka
        hands one partition's whole fetch reply first: weeks of one partition in a backlog), a
        partition's records left by a cut (the stash) before aiokafka's; waits up to ``timeout_ms``
        only when none has records. With the generation its oldest records were asked in."""
        generation = self._generation
        assigned = self.consumer.assignment()
        tps = sorted((tp for tp in assigned if tp not in self._align.paused), key=lambda t: t.partition)
        if not tps:  # joining (its count unknown: a getmany would hand one partition's reply), or all held back
            # held back: until the others' heads are read again (aligned.py, HEADS_EVERY_S), not a whole timeout
            await asyncio.sleep(min(timeout_ms / 1000, HEADS_EVERY_S) if self._align.paused else timeout_ms / 1000)
            return {}, generation
        share = max(1, max_records // len(tps))
        out: dict[TopicPartition, list] = {}  # type: ignore[type-arg]
        polled = False
        for tp in tps:
            stashed = self._stash.get(tp)
            if stashed:
                if len(stashed) < share:  # topped up to its share from aiokafka's: ``_stash_more``
                    polled = True
                    await self._stash_more(tp, share - len(stashed))  # behind ``stashed``, the same list
                out[tp], rest = stashed[:share], stashed[share:]
                if rest:
                    self._stash[tp] = rest
                else:
                    del self._stash[tp]
                self._stash_n -= len(out[tp])
                generation = min(generation, self._stash_generation)
                continue
            polled = True
            got = await self.consumer.getmany(tp, timeout_ms=0, max_records=share)
            if got.get(tp):
                out[tp] = got[tp]
        if not polled:  # every partition served from the stash: a poll all the same (``_stash_more``)
            await self._stash_more(tps[0], 1)
        if not self._stash_n:
            self._stash_generation = self._generation
        if not out:  # nothing buffered: wait for a fetch reply, then take each partition's share of it
            got = await self.consumer.getmany(*tps, timeout_ms=timeout_ms, max_records=share)
            out.update((tp, r) for tp, r in got.items() if r)
            for tp in tps:
                if out and tp not in out:
                    more = await self.consumer.getmany(tp, timeout_ms=0, max_records=share)
                    out.update((k, r) for k, r in more.items() if r)
        return out, generation

    async def _stash_more(self, tp: TopicPartition, n: int) -> None:
        """Up to ``n`` of aiokafka's records of ``tp`` put behind its stash: every aligned fetch
        polls aiokafka. A partition served from the stash alone never polled, and after
        max_poll_interval_ms (300 s) aiokafka left the group (measured on 5 December 2026: two
        workers whose first fetch replies held their partitions' whole logs rebalanced 300 s into a
        replay, and handed their partitions over). Only what the stash lacks of a partition's share
        (one record when every partition's stash has its share): a full share added to a stash
        that gives a share never let it drain, and the first cycle's cut (aligned reading is on
        until a cycle is applied) kept a worker without accounts in the aligned fetch for good,
        8 partitions' shares asked one by one (batches of 7.5k records instead of 9.4k; -10% of
        the one-worker benchmark's events per CPU-second, measured 5 December 2026)."""
        more = (await self.consumer.getmany(tp, timeout_ms=0, max_records=n)).get(tp)
        if more:
            self._stash.setdefault(tp, []).extend(more)
            self._stash_n += len(more)

    async def _fetch(self, timeout_ms: int, max_records: int) -> tuple[dict[TopicPartition, list], int]:  # type: ignore[type-arg]
        """The next batch and the group generation it was asked for in (taken before the await:
        a rebalance during the fetch makes the batch's generation older than the current one)."""
        if self._fetching_ahead():
            return await self._take(timeout_ms, max_records)
        generation = self._generation
        if self._aligning() or self._stash_n:  # a share from each partition; records a cut left, first
            return await self._aligned_fetch(timeout_ms, max_records)
        return await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records), generation

    # -- fetching ahead (settings.fetch_ahead_ms) ---------------------------------------------

    def _fetching_ahead(self) -> bool:
        """Take fetch replies off aiokafka's buffer during a cycle (``_fetch_ahead``)? Only where
        the prefetch is on anyway: overlapped cycles that do not pause fetching during the head."""
        s = self.settings
        return s.fetch_ahead_ms > 0 and s.pipeline_depth > 1 and s.prefetch_during_head

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        """``consumer.seek``, dropping what ``_fetch_ahead`` took of ``tp`` from the old position."""
        self.consumer.seek(tp, offset)
        dropped = self._stash.pop(tp, None)
        if dropped:
            self._stash_n -= len(dropped)

    def _drop_stash(self, partitions: "set[TopicPartition] | None" = None) -> None:
        """Forget the stashed records of ``partitions`` (all: None), which must be sought before
        they are fetched again (revoked: sought at their next assignment; a rebuild: all of them):
        a stash dropped without a seek would let the next batch start past its records."""
        for tp in list(self._stash) if partitions is None else partitions:
            dropped = self._stash.pop(tp, None)
            if dropped:
                self._stash_n -= len(dropped)
        if not self._stash_n:
            self._stash_generation = self._generation

    def _stash_add(self, got: dict[TopicPartition, list], generation: int) -> None:  # type: ignore[type-arg]
        """Append a ``getmany`` reply asked for in ``generation`` to the stash, in offset order."""
        for tp, records in got.items():
            if not records:
                continue
            # asked before a rebalance: the batch counts as fetched across it (``run``'s rule)
            self._stash_generation = min(self._stash_generation, generation) if self._stash_n else generation
            stashed = self._stash.get(tp)
            if stashed and records[0].offset <= stashed[-1].offset:
                # aiokafka moved the position back by itself (an offset reset): what a getmany
                # hands out now replaces the older records, and the loop re-seeks from there
                self._stash_n -= len(stashed)
                stashed.clear()
            self._stash.setdefault(tp, []).extend(records)
            self._stash_n += len(records)

    async def _fetch_ahead(self) -> None:
        """Until cancelled, while the loop is not fetching itself (a cycle decodes, reads, scores or
        waits for the previous tail): once ``fetch_ahead_ms`` have passed since records were last
        taken off aiokafka's buffer, take the fetch reply waiting there (if any) into the stash, so
        that aiokafka sends its next fetch at once (it fetches a partition again only once its
        buffered records are consumed) instead of when the next cycle starts. Cycles shorter than
        the period fetch as before; a longer one gets every reply that came during it (``_take``).
        Not sooner than the period: on Tansu a fetch that finds nothing new sleeps half its max
        wait (SCALING.md, "Levers"). At most ``batch_max_records`` are stashed; an error of
        ``getmany`` is handed to the loop (``_take`` raises it)."""
        period = self.settings.fetch_ahead_ms / 1000
        while True:
            await self._ahead_allowed.wait()
            wait = self._last_take + period - time.monotonic()
            await asyncio.sleep(wait if wait > 0 else AHEAD_POLL_S)
            async with self._getmany_lock:
                room = self.settings.batch_max_records - self._stash_n
                if (not self._ahead_allowed.is_set() or self._stash_error is not None or room <= 0
                        or time.monotonic() - self._last_take < period):
                    continue
                generation = self._generation
                try:
                    got = await self.consumer.getmany(timeout_ms=0, max_records=room)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._stash_error = exc
                    continue
                if any(got.values()):
                    self._stash_add(got, generation)
                    self._last_take = time.monotonic()

    async def _take(self, timeout_ms: int, max_records: int) -> tuple[dict[TopicPartition, list], int]:  # type: ignore[type-arg]
        """The next batch when fetching ahead: the stash (up to ``max_records``: whole partitions
        first, then a partition's oldest records) and what aiokafka has buffered since, waiting up
        to ``timeout_ms`` only if both are empty; and the generation its oldest fetch was asked in
        (older than now: a rebalance came since, ``_contiguous`` re-seeks what does not continue)."""
        self._ahead_allowed.clear()
        try:
            if self._fetch_task is None or self._fetch_task.done():
                self._fetch_task = asyncio.ensure_future(self._fetch_ahead())
            async with self._getmany_lock:
                return await self._take_locked(timeout_ms, max_records)
        finally:
            self._ahead_allowed.set()

    async def _take_locked(self, timeout_ms: int, max_records: int) -> tuple[dict[TopicPartition, list], int]:  # type: ignore[type-arg]
        """``_take`` under the lock (``_fetch_ahead`` takes nothing meanwhile). Records taken off
        the stash go back to it if ``getmany`` raises: nothing taken may be lost without a seek."""
        if self._stash_error is not None:
            exc, self._stash_error = self._stash_error, None
            raise exc
        generation = self._stash_generation if self._stash_n else self._generation
        batch: dict[TopicPartition, list] = {}  # type: ignore[type-arg]
        left = max_records
        for tp in list(self._stash):
            if left <= 0:
                break
            records = self._stash[tp]
            if len(records) <= left:
                batch[tp] = self._stash.pop(tp)
            else:
                batch[tp], self._stash[tp] = records[:left], records[left:]
            left -= len(batch[tp])
        self._stash_n -= max_records - left
        if left > 0:
            try:
                more = await self.consumer.getmany(timeout_ms=0 if batch else timeout_ms, max_records=left)
            except BaseException:
                for tp, records in batch.items():  # back in front of what the stash holds
                    self._stash[tp] = records + self._stash.get(tp, [])
                    self._stash_n += len(records)
                raise
            for tp, records in more.items():
                if not records:
                    continue
                if tp in batch and records[0].offset <= batch[tp][-1].offset:
                    batch[tp] = records  # an offset reset by aiokafka (see _stash_add)
                else:
                    batch.setdefault(tp, []).extend(records)
        if not self._stash_n:
            self._stash_generation = self._generation
        self._last_take = time.monotonic()
        return batch, generation

    async def _stop_fetch_ahead(self) -> None:
        task, self._fetch_task = self._fetch_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._drop_stash()

    async def _check_log(self, batch: dict[TopicPartition, list], rebalanced: bool) -> dict[TopicPartition, list]:  # type: ignore[type-arg]
        """Is each partition's log still the one its progress describes? Returns ``batch`` without
        the records that must not be applied (the re-read last record; a replaced log's; records
        at or beyond the log end their broker reports: ``_beyond_end``).

        Not judged right after a rebalance (the fetch may predate the seek), but even then no
        record at or beyond its log end is taken: the first fetch of a partition after its
        assignment is such a fetch, and a worker started on a broker serving records beyond the
        log end applied them once, then restarted the partition. A partition found beyond its log
        end is restarted only once ListOffsets confirms it (``_confirm_drops``) or a tail did
        (``_went_back``), and only while the events topic exists (``_restart``).
        """
        beyond = sorted(tp.partition for tp, recs in batch.items() if recs and self.layout and tp.partition >= self.layout)
        if beyond:
            why = (f"{self.topic}[{beyond[0]}] received records but the state is laid out for {self.layout} partitions: "
                   f"the topic's partition count grew and users moved partition")
            await self.store.mark_layout_changed(self.topic, why)
            raise LayoutChanged(why)
        if rebalanced:  # _contiguous re-seeks what it cannot take, partitions to verify included
            return self._below_ends(batch)
        out = dict(batch)
        async with self._cycle_lock:
            verdicts = await self._confirm_drops(self._drops(verify=True))
            for tp in list(self.assigned):
                p, records = tp.partition, out.get(tp)
                highwater, expected = self.consumer.highwater(tp), self._next.get(p)
                if p in self._verify:
                    out[tp] = await self._verify_first(tp, records or [], highwater, verdicts.get(tp))
                elif verdicts.get(tp) or p in self._went_back:
                    await self._restart(tp, "beyond_log_end", self._went_back.get(p) or (
                        f"the log now ends at offset {highwater}, below the next offset to apply {expected}"))
                    out.pop(tp, None)
                elif tp in verdicts:  # not confirmed: a leader's high watermark lagging, or no answer
                    await self._unconfirmed_drop(tp, highwater, expected, verdicts[tp])
                if self.missing is not None:  # the topic is gone: nothing of this batch is applied
                    return {}
                if out.get(tp) and highwater is not None:
                    out[tp] = self._beyond_end(tp, out[tp], highwater)
        return {tp: records for tp, records in out.items() if records}

    def _below_ends(self, batch: dict[TopicPartition, list]) -> dict[TopicPartition, list]:  # type: ignore[type-arg]
        """``batch`` less the records at or beyond their partition's log end (``_beyond_end``), for
        the owned partitions whose log end a fetch reply gave; the others as they are (a revoked
        one is not ours to hold: the cycle drops its records)."""
        ends = self._fetched_ends()
        out = {tp: self._beyond_end(tp, records, ends[tp.partition]) if records and tp in self.assigned
               and tp.partition in ends else records for tp, records in batch.items()}
        return {tp: records for tp, records in out.items() if records}

    def _drops(self, verify: bool) -> dict[TopicPartition, tuple[int, int]]:
        """``{partition: (highwater, offset)}`` of the owned partitions whose newest fetch reply says
        their log ends below ``offset``, the next offset to take (or, ``verify``, the record after the
        one a resumed partition checks: ``_verify_first``). In memory: no round trip."""
        out, ends = {}, self._fetched_ends()
        for tp in self.assigned:
            expected, highwater = self._next.get(tp.partition), ends.get(tp.partition)
            if expected is not None and verify and tp.partition in self._verify:
                expected += 1
            if highwater is not None and expected is not None and highwater < expected:
                out[tp] = (highwater, expected)
        return out

    async def _confirm_drops(self, drops: Mapping[TopicPartition, tuple[int, int]]) -> dict[TopicPartition, bool | None]:
        """For each ``{partition: (highwater, offset)}`` of ``_drops``: does ListOffsets (the leader's
        log end, ``end_offsets``) confirm that the log ends below ``offset``? True: the log went back
        (the topic was deleted or replaced); False: it does not (a fetch reply's log end lagged);
        None: no answer (within ``LOG_END_CHECK_TIMEOUT_S``).

        One fetch reply is no proof on replicated Kafka: after a leader election the new leader's
        high watermark can lag the old one's until its followers fetch again (KAFKA-2334), and a
        fetch reply carries it, so a caught-up worker saw its log go back and restarted the
        partition from offset 0, applying the whole retained log again on top of its states
        (review 9, finding 2). ListOffsets does not lag (KIP-207, Kafka 2.2+): a new leader whose high
        watermark is below the start of its epoch refuses it (OFFSET_NOT_AVAILABLE; to aiokafka's
        older request versions LEADER_NOT_AVAILABLE, retried until the timeout: no answer), so
        on Kafka 2.2+ the end it answers is never below a record any consumer read. Not on Tansu:
        its ListOffsets answers the last batch's base offset + 1 (``LogEnds``), below the end a
        caught-up worker read whenever that batch held more than one record, so there it would
        "confirm" any dip of a fetch reply (none is known: a single Tansu elects no leader) and
        proves nothing; it never refutes a genuine drop there (base + 1 <= the log end). Asked only
        when a drop is seen, one request a partition, all at once (``_list_ends``); an answer stands
        ``LOG_END_RECHECK_S``, no answer ``LOG_END_CHECK_TIMEOUT_S`` (one wait per pass, not one per
        partition). Tansu answers at once (a deleted topic: 0)."""
        now = time.monotonic()
        ends: dict[TopicPartition, int | None] = {}
        ask = []
        for tp in drops:
            known = self._end_checks.get(tp.partition)
            if known is not None and now < known[0]:
                ends[tp] = known[1]
            else:
                ask.append(tp)
        if ask:
            got = await self._list_ends(ask)
            now = time.monotonic()
            for tp in ask:
                end = got.get(tp)
                self._end_checks[tp.partition] = (now + (LOG_END_RECHECK_S if end is not None else LOG_END_CHECK_TIMEOUT_S), end)
                ends[tp] = end
        return {tp: None if ends[tp] is None else ends[tp] < offset for tp, (_, offset) in drops.items()}

    async def _list_ends(self, ask: list[TopicPartition]) -> dict[TopicPartition, int]:
        """ListOffsets' log end of each partition of ``ask`` that answered within
        ``LOG_END_CHECK_TIMEOUT_S``. One request a partition: aiokafka retries a request as a whole
        until every partition in it answers, so one lagging leader (LEADER_NOT_AVAILABLE, up to
        ``replica.lag.time.max.ms``) left every partition asked with it unanswered, a replaced
        one not restarted, and every tail's copies and heartbeats waiting (review 12, finding 4)."""
        async def one(tp: TopicPartition) -> int | None:
            got = await asyncio.wait_for(self.consumer.end_offsets([tp]), LOG_END_CHECK_TIMEOUT_S)
            return got.get(tp)

        results = await asyncio.gather(*(one(tp) for tp in ask), return_exceptions=True)
        out: dict[TopicPartition, int] = {}
        failed: list[tuple[int, BaseException]] = []
        for tp, result in zip(ask, results):
            if isinstance(result, (KafkaError, asyncio.TimeoutError)):
                failed.append((tp.partition, result))
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                out[tp] = result
        if failed:
            exc = failed[0][1]
            retry_logger.warning("%s partitions %s: a fetch reply says the log ends below the next offset, and "
                                 "ListOffsets gave no answer (%s: %s); not restarted, asking again", self.topic,
                                 sorted(p for p, _ in failed), type(exc).__name__, exc)
        return out

    async def _unconfirmed_drop(self, tp: TopicPartition, highwater: int | None, expected: int | None,
                                verdict: bool | None) -> None:
        """A fetch reply says ``tp``'s log ends below the next offset, ListOffsets does not confirm it
        (``_confirm_drops``): not restarted. Without an answer the topic must still exist (else the
        worker waits for it: ``_topic_exists``, as a broker that lost its storage needs). Its
        records wait (``_beyond_end``) and it is read again; one WARNING a partition a minute. The
        listing at most once per ``LOG_END_CHECK_TIMEOUT_S``, not once per partition and pass."""
        now = time.monotonic()
        if verdict is None and now - self._drop_listed >= LOG_END_CHECK_TIMEOUT_S:
            self._drop_listed = now
            if not await self._topic_exists(tp):
                return
        if now - self._lagging_logged.get(tp.partition, float("-inf")) >= LAGGING_LOG_EVERY_S:
            self._lagging_logged[tp.partition] = now
            end = self._end_checks.get(tp.partition, (0.0, None))[1]
            logger.warning("%s[%s]: a fetch reply says the log ends at offset %s, below the next offset %s, but ListOffsets "
                           "%s: not confirmed (a new leader's lagging high watermark after a leader election, or a "
                           "stale reply, such as a log end kept from while the topic was missing), so not taken for a "
                           "replaced topic; not restarted, reading on (at most one such line a minute for this partition)",
                           tp.topic, tp.partition, highwater, expected,
                           f"says it ends at {end}" if end is not None else "gave no answer")

    def _forget_log_end(self, p: int) -> None:
        """Forget what ListOffsets and the tails said of ``p``'s log end (restarted, resumed, revoked)."""
        self._end_checks.pop(p, None)
        self._went_back.pop(p, None)

    def _beyond_end(self, tp: TopicPartition, records: list, highwater: int) -> list:  # type: ignore[type-arg]
        """``records`` below ``highwater``, the log end of the newest fetch reply (a log end only
        rises, so every genuine record fetched before it is below it). A broker whose storage
        contradicts itself serves records beyond it: Tansu, once a topic was created again over
        batches written to it while it did not exist (QA5 M2: the worker's own heartbeats). Applied,
        they moved the next offset beyond the log end, which restarted the partition at 0, which
        read them again: 318 restarts in 17 s. They wait instead (``_hold``) until the log end
        passes them; the records below it are applied."""
        if records[-1].offset < highwater:
            return records
        keep = [r for r in records if r.offset < highwater]
        first = records[len(keep)].offset
        retry_logger.warning("%s[%s]: the broker served records from offset %s but says the log ends at %s (its storage "
                             "is inconsistent): they are not applied; reading from %s again in %.1f s",
                             tp.topic, tp.partition, first, highwater, first, BEYOND_END_HOLD_S)
        self._hold(tp, first, bool(keep), BEYOND_END_HOLD_S)
        return keep

    async def _learn_log_ends(self, batch: dict[TopicPartition, list]) -> dict[TopicPartition, list]:  # type: ignore[type-arg]
        """The log ends of the partitions a record of ``batch`` names as its origin beyond the
        ends known (``streams.worker.routing.Router.needs_ends``): the pipeline refuses an origin
        at or beyond its partition's log end (a header the worker did not write), so it must know
        an end read after the copy was fetched. Rare: re-routed copies only, and only while their
        origins run ahead of the last ends read (the highwater read then is usually far ahead).

        First from what this worker's own fetches say (``_fetched_ends``: the highwaters of its
        partitions; an end above an origin proves it), then from one read of the others
        (``LogEnds.read_some``). Where an end does not come (a partition whose leader does not
        answer), only the partitions whose copies need it wait: their records from the first such
        copy are read again later (``_hold``, backing off), the rest of the batch is applied.
        Before, the whole worker retried the read until it answered: every partition stalled for
        one unreachable log end. Returns ``batch`` less the records that wait."""
        router = self.pipeline.router
        by_partition = {tp.partition: records for tp, records in batch.items() if records}
        if not router.needs_ends(by_partition):
            return batch
        router.learn_ends(self._fetched_ends())
        needs = router.needs_ends(by_partition)
        if not needs:
            return batch
        wanted: dict[int, int] = {}
        for origins in needs.values():
            for q, offset in origins.items():
                wanted[q] = max(wanted.get(q, -1), offset)
        got: dict[int, int] = {}
        error: BaseException | None = None
        try:
            if self._log_ends is None:
                self._log_ends = LogEnds(self.settings, self.topic)
            got = await self._log_ends.read_some(wanted, router.ends, attempts=1)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker, not the batch: the partitions that need it wait
            error = exc
        router.learn_ends(got)
        unknown = set(wanted) - set(got)
        if not unknown:
            self._ends_failures = 0
            return batch
        self._ends_failures += 1
        delay = retry_delay(self._ends_failures)
        out = dict(batch)
        waiting = []
        for tp, records in batch.items():
            if tp not in self.assigned or not unknown & needs.get(tp.partition, {}).keys():
                continue  # revoked during the read: not ours to seek (IllegalStateError), the cycle drops it
            cut = router.first_unjudged(records, unknown)
            self._hold(tp, records[cut].offset, cut > 0, delay)
            waiting.append(tp.partition)
            if cut:
                out[tp] = records[:cut]
            else:
                out.pop(tp)
        retry_logger.warning("no log end of %s partitions %s came (%s); partitions %s wait for it, reading again in %.2f s "
                             "(failure %d in a row); the others go on", self.topic, sorted(unknown),
                             f"{type(error).__name__}: {error}" if error else "no fetch reply", sorted(waiting), delay,
                             self._ends_failures)
        return out

    def _fetched_ends(self) -> dict[int, int]:
        """The highwaters of this worker's own partitions, from its latest fetch replies: log ends
        known without asking (an end above an origin proves the origin was written)."""
        out = {}
        for tp in self.assigned:
            with contextlib.suppress(IllegalStateError, AssertionError):
                highwater = self.consumer.highwater(tp)
                if highwater is not None:
                    out[tp.partition] = highwater
        return out

    async def _verify_first(self, tp: TopicPartition, records: list, highwater: int | None,  # type: ignore[type-arg]
                            confirmed: bool | None = None) -> list:  # type: ignore[type-arg]
        """The check of a resumed partition: its first record must be the last one applied. A log
        that ends at or below it is restarted only if ListOffsets confirms it (``confirmed``,
        ``_confirm_drops``). Accepted, what was said of its log end before is forgotten
        (``_forget_log_end``): the record read is the stronger evidence, and a tail's older
        finding (``_went_back``) restarted at 0, with the states kept, a log whose record just
        matched (review 12, finding 1: a republish at the same offsets passed the stored one)."""
        p = tp.partition
        offset, fingerprint = self._verify[p]
        if records and records[0].offset == offset and record_fingerprint(records[0]) == fingerprint:
            return self._verified(p, offset, records[1:])
        if records and records[0].offset > offset:  # gone (retention, compaction): nothing to compare
            return self._verified(p, offset, records)
        if records:
            why = (f"the record at offset {offset} is not the one applied there" if records[0].offset == offset
                   else f"the log was read from offset {records[0].offset}, below the stored offset {offset}")
            await self._restart(tp, "replaced", why)
        elif highwater is not None and highwater <= offset:
            if confirmed or p in self._went_back:
                await self._restart(tp, "beyond_log_end", f"the log ends at offset {highwater}, the stored progress is at {offset}")
            else:
                await self._unconfirmed_drop(tp, highwater, offset + 1, confirmed)
        return []

    def _verified(self, p: int, offset: int, records: list) -> list:  # type: ignore[type-arg]
        """``p``'s resume check passed at ``offset``: it goes on after it with ``records``."""
        del self._verify[p]
        self._forget_log_end(p)
        self._next[p] = self._applied[p] = offset + 1
        return records

    async def _restart(self, tp: TopicPartition, reason: str, why: str) -> None:
        """A partition's log was replaced: start again at its offset 0, keeping user states.

        Only if the events topic exists (``_topic_exists``): a broker that lost its storage answers
        a fetch of a topic it does not have with an empty log (Tansu: log end 0, no error), so the
        worker restarted every partition at a phantom offset, stayed ready with lag 0, and its
        heartbeats were written into the missing topic (QA5 M2). Without the topic it waits
        instead (``_topic_gone``), and restarts each partition once, against the new log, when
        the topic exists again."""
        p = tp.partition
        if not await self._topic_exists(tp):
            return
        await self._drain()  # the cycles in flight first: they applied records of the old log
        clock = self.pipeline.clock.partitions.get(p)
        max_ms = clock.stream_ms if clock is not None and clock.stream_ms != NEVER else 0
        try:  # before Redis forgets the offsets: a crash in between restarts (and marks) again, never marks nothing
            await asyncio.wait_for(self.sink.send_to(self.topic, p, gap_mark(p, wall_ms(), max_ms)), GAP_MARK_TIMEOUT_S)
        except (KafkaError, asyncio.TimeoutError) as exc:
            retry_logger.warning("%s[%s] looks replaced, but writing its gap mark failed (%s: %s); restarting it at the "
                                 "next pass", tp.topic, p, type(exc).__name__, exc)
            self._seek(tp, self._next.get(p, 0))  # read again from where it was: the check comes again
            return
        logger.error(
            "%s[%s]: %s: the topic was replaced (deleted and created again, storage lost, or another cluster). "
            "Applying its new log from offset 0; user states are kept. Runbook: ChurnwatchTopicReset", tp.topic, p, why)
        metrics.TOPIC_RESETS.labels(reason).inc()
        self._restarts[p] = await self.store.restart_partition(self.topic, p, max_ms)
        self.pipeline.restarted(p)  # its offsets start again: no write of ours is there any more
        self._verify.pop(p, None)
        self._forget_log_end(p)  # after the drain: a tail abandoned in it may have flagged p (``_log_went_back``)
        self._to_commit.pop(tp, None)  # the old log's offset, past the new log's end
        self._fresh.add(p)
        logger.info("%s[%s]: wrote a gap mark into the new log: a worker rebuilding this partition from scratch "
                    "(after Redis lost its data) will report its history incomplete", tp.topic, p)
        self._next[p] = self._applied[p] = 0
        self._seek(tp, 0)

    async def _topic_exists(self, tp: TopicPartition) -> bool:
        """Does the events topic exist? From a listing of the cluster's topics, never a metadata
        request naming it (a broker that auto-creates topics would create it, with its own
        partition count). If not, the worker waits for it (``_topic_gone``). A failed listing
        reads ``tp`` again from where it was (the next turn asks again): False; so does every call
        within ``TOPIC_LIST_TIMEOUT_S`` after a failed listing, without listing (the cycle lock is
        held across a pass over every partition: one wait per pass, not one per partition)."""
        if time.monotonic() - self._listing_failed < TOPIC_LIST_TIMEOUT_S:  # one wait per pass, not one per partition
            self._seek(tp, self._next.get(tp.partition, 0))
            return False
        try:  # bounded: the cycle lock is held meanwhile (a rebalance waits for it)
            exists = await self._listed()
        except KafkaError as exc:
            retry_logger.warning("%s[%s] looks replaced, but listing the topics failed (%s); checking again",
                                 tp.topic, tp.partition, exc)
            self._seek(tp, self._next.get(tp.partition, 0))
            return False
        if not exists:
            self._topic_gone()
        return exists

    async def _listed(self) -> bool:
        """Is the events topic in a listing of the cluster's topics (at most ``TOPIC_LIST_TIMEOUT_S``
        of waiting)? Raises ``KafkaError`` if the listing failed, or if one failed less than
        ``TOPIC_LIST_TIMEOUT_S`` ago (without listing: one wait per pass, not one per caller)."""
        if time.monotonic() - self._listing_failed < TOPIC_LIST_TIMEOUT_S:
            raise KafkaError(f"not sent yet: waiting to list the topics again (a listing failed less than "
                             f"{TOPIC_LIST_TIMEOUT_S:g} s ago)")
        try:
            return self.topic in await asyncio.wait_for(self.consumer.topics(), TOPIC_LIST_TIMEOUT_S)
        except (KafkaError, asyncio.TimeoutError) as exc:
            self._listing_failed = time.monotonic()
            raise KafkaError(f"{type(exc).__name__}: {str(exc) or f'no answer in {TOPIC_LIST_TIMEOUT_S:g} s'}") from exc

    async def _events_unusable(self, failed: bool) -> str | None:
        """Why this worker must not send into its events topic now, or None (``Pipeline.events_unusable``,
        asked before every send of copies and heartbeats, ``failed``: the previous attempt failed).
        The topic is known missing (``missing``: the cycles in flight then sent nothing more; before,
        a tail retrying its copies sent them into the missing topic, or once it was created again
        into the new log); or an owned partition's log ends below the records this worker read
        (a fetch reply came after the topic was deleted or replaced, before the loop's next pass
        found out which, ``_check_log``); or, after a failed attempt, a listing of the topics does
        not show it (the worker then waits for it, ``_topic_gone``). A listing that cannot be had
        raises (``KafkaError``: the send waits and asks again). Without a failed attempt nothing is
        asked of the broker: no round trip on a cycle's path."""
        if self.missing is None and failed and not await self._listed():
            self._topic_gone()
        if self.missing is not None:
            return self.missing
        return await self._log_went_back()

    async def _log_went_back(self) -> str | None:
        """An owned partition whose log, by the newest fetch reply, ends below the next offset this
        worker takes, confirmed by ListOffsets (``_confirm_drops``: the topic was deleted or replaced),
        as a sentence, remembered for ``_check_log`` (``_went_back``: the abandonment's rewind can
        lower the next offset below the new log's end, which hid the replacement); else None. In
        memory unless a fetch reply shows a drop. A drop ListOffsets does not answer for raises
        ``KafkaError`` (the send waits and asks again); one it refutes (a lagging leader) is no objection."""
        drops = self._drops(verify=False)
        if not drops:
            return None
        verdicts = await self._confirm_drops(drops)
        gone = [tp for tp, verdict in verdicts.items() if verdict]
        for tp in gone:
            highwater, expected = drops[tp]
            self._went_back[tp.partition] = (f"{tp.topic}[{tp.partition}]'s log now ends at offset {highwater}, below the "
                                             f"next offset to take {expected} (the topic was deleted or replaced)")
        if gone:
            return self._went_back[gone[0].partition]
        if None in verdicts.values():
            raise KafkaError(f"{self.topic} partitions {sorted(tp.partition for tp, v in verdicts.items() if v is None)}: "
                             f"a fetch reply says the log ends below the next offset, and ListOffsets gave no answer")
        return None

    def _topic_gone(self) -> None:
        """The events topic does not exist: apply nothing, not ready, ERROR once, until it exists
        again (``_wait_for_topic``). No cycle runs meanwhile, and the cycles in flight send nothing
        more into it (``_events_unusable``), so no heartbeat or copy is produced into the missing
        topic either (a broker that auto-creates topics would create it so). Called from a cycle's
        tail too (a failed send into the topic), while the loop waits for that tail."""
        if self.missing is None:
            logger.error("the events topic %s does not exist on %s (the broker lost its storage, or the topic was deleted): "
                         "this worker applies nothing and is not ready until it exists again. Next: create it with "
                         "`churnwatch topics` (the same partition count as before), then publish again what the broker "
                         "lost; each partition then restarts once, from offset 0 of the new log. Runbook: "
                         "ChurnwatchTopicReset", self.topic, self.settings.kafka_bootstrap_servers)
        self.missing = f"the events topic {self.topic} does not exist"
        metrics.READY.set(0)
        self.consumer.pause(*self.assigned)
        self._drop_stash()

    async def _wait_for_topic(self) -> None:
        """Once a second while the events topic is missing: does it exist again? Then every owned
        partition resumes from its stored progress, as after a rebalance (``_resume``: the check
        of the last applied record restarts it once against the new log)."""
        await asyncio.sleep(TOPIC_CHECK_INTERVAL_S)
        try:
            if self.topic not in await self.consumer.topics():
                return
        except KafkaError as exc:  # the broker is not back yet: one line, the next look in a second
            retry_logger.warning("waiting for the events topic %s: listing the topics failed (%s: %s)", self.topic,
                                 type(exc).__name__, exc)
            return
        if not await _refresh_cluster(self.consumer, self.topic):
            return  # listed, but the consumer's view has no partition of it yet: the next look refreshes again
        async with self._cycle_lock:
            await self._drain()  # settled before they are forgotten: a later settle would set the old log's offsets
            self._forget_assigned()
            self._generation += 1
            self._drop_stash()
        self.missing = None
        self._held.clear()
        if self.halted is None and self.assigned:
            self.consumer.resume(*self.assigned)
        logger.info("the events topic %s exists again: partitions %s resume from their stored progress", self.topic,
                    sorted(tp.partition for tp in self.assigned))

    def _report_history(self, tp: TopicPartition, first_offset: int) -> None:
        """A partition applied from scratch should start at offset 0; later means lost history."""
        metrics.HISTORY_INCOMPLETE.labels(str(tp.partition)).set(1 if first_offset > 0 else 0)
        if first_offset > 0:
            logger.error("%s[%s]: state built from scratch but the log starts at offset %s: the events before it are "
                         "gone (retention), so users' state is incomplete. Runbook: ChurnwatchHistoryIncomplete",
                         tp.topic, tp.partition, first_offset)

    def _report_gap(self, p: int, offset: int, at_ms: int) -> None:
        """A cycle applied a gap mark of ``p`` (``streams.worker.gap``): the log holds none of the
        history before the restart that wrote it. States kept across that restart hold it: the
        partition's restart count in this store (``Store.restarts``, read at the resume) is above
        0. A count of 0 means the states were built from scratch since (a first start, a rebuild
        after Redis lost its data: the count went with ``cw:meta``): incomplete, as for a log that
        no longer starts at offset 0 (``_report_history``)."""
        if self._restarts.get(p, 0) > 0:
            return
        metrics.HISTORY_INCOMPLETE.labels(str(p)).set(1)
        logger.warning("%s[%s]: state built from scratch, but the log holds a gap mark at offset %s: the partition "
                       "was restarted at %s after its log was replaced (ChurnwatchTopicReset), and the events before "
                       "that are not in this log, so users' state is incomplete. Runbook: ChurnwatchHistoryIncomplete",
                       self.topic, p, offset, format_ts(at_ms) if at_ms > 0 else "an unknown time")

    async def _check_store(self, idle: bool = False) -> bool:
        """Once a second: does Redis still hold our data, our model, our partition layout?
        (Busy cycles check the incarnation in every bucket they touch.) ``idle`` (no records this
        turn, no cycle in flight): also did it keep this worker's last writes, the owned
        partitions' bucket offsets and progress (``Pipeline.look``, same round trip; raises
        ``StoreRolledBack``): no cycle reads a bucket without records (QA13 F7). And the topic's stream
        time from every partition's stored progress: only this worker's own progress writes tell
        it otherwise, so a worker whose partitions went quiet would keep their borrowed review
        clocks behind the partitions another worker still moves, and their reviews would wait.
        True if it asked Redis (and Redis answered)."""
        now = time.monotonic()
        if now - self._store_checked_at < STORE_CHECK_INTERVAL_S:
            return False
        self._store_checked_at = now
        if idle:  # under the lock: a revocation meanwhile would leave the ledger judging a partition not owned
            async with self._cycle_lock:
                await self.pipeline.look()
        else:
            self.pipeline.observe_global(await self.store.check_and_stream_times(self.topic))
        return True

    async def _adopt(self, adopted: ModelAdopted) -> None:
        """A learned successor of this worker's model is in use (``churnwatch learn``): settle the
        cycles in flight (scored with the old model), then score every later cycle with the new."""
        async with self._cycle_lock:
            await self._drain()
            self.switch_model(adopted)

    def switch_model(self, adopted: ModelAdopted) -> None:
        """Run ``adopted`` from the next cycle on (no cycle in flight): the pipeline, the store's
        record of what this worker runs, the ``churnwatch_model_info`` gauge, one log line."""
        old = self.store.model
        self.store.use_model(adopted.model)
        self.pipeline.set_model(adopted.model)
        if old:
            with contextlib.suppress(KeyError):
                metrics.MODEL_INFO.remove(old)
        metrics.MODEL_INFO.labels(adopted.model_id).set(1)
        metrics.MODEL_SWITCHES.inc()
        logger.info("model switched at a cycle boundary: %s -> %s (learned successor; partitions %s continue at offsets %s)",
                    old, adopted.model_id, sorted(self._next), [self._next[p] for p in sorted(self._next)])

    async def _check_layout(self) -> None:
        """At assignment: the topic's partition count against the one the state is laid out for.
        A different count is reported (gauges, WARNING); the workers stop taking work as soon as
        a record arrives in a partition beyond the layout (``_check_log``), which is when users
        start to live in two partitions."""
        count = len(self.consumer.partitions_for_topic(self.topic) or ())
        if not count:
            return
        self.layout = await self.store.layout(self.topic, count)
        if self.layout < 1:
            self._refuse(f"{self.topic}: the state in Redis is laid out for {self.layout} partitions (a `churnwatch "
                         f"relayout` run on a topic that did not exist?); the topic has {count}. Run "
                         f"`churnwatch relayout --events-topic {self.topic}` with every worker stopped")
            return
        self.pipeline.set_partitions(self.layout)  # the accounts' watermark waits for these partitions
        metrics.TOPIC_PARTITIONS.set(count)
        metrics.STATE_PARTITIONS.set(self.layout)
        if count != self.layout:
            logger.warning("%s has %s partitions but the state is laid out for %s: users whose partition changes are "
                           "stopped at their first record in a new partition; run `churnwatch relayout` "
                           "(docs/OPERATE.md, \"Partition count changes\")", self.topic, count, self.layout)

    def _refuse(self, why: str) -> None:
        """This worker cannot take work at all: one ERROR line, not ready, and the process stops
        (exit 2), instead of a traceback in the rebalance callback and a ready worker applying nothing.
        Said once: the rebalance callback and the loop may both be resuming the partitions when the
        check refuses (CI: the line came twice, 3 ms apart)."""
        if self.refused is not None:
            return
        logger.error("%s; this worker stops", why)
        self.refused = why
        self._stopping = True
        metrics.READY.set(0)
        self.consumer.pause(*self.assigned)

    def _halt(self, why: str) -> None:
        """Stop taking work (the partition count changed): pause every partition, say what to do."""
        if self.halted is None:
            logger.error("%s: this worker stops taking work. Next: stop all workers, run `churnwatch relayout` "
                         "(moves the state to the topic's partition count), start them again "
                         "(docs/OPERATE.md, \"Partition count changes\"). Runbook: ChurnwatchPartitionCountChanged", why)
        self.halted = why
        metrics.LAYOUT_CHANGED.set(1)
        metrics.READY.set(0)
        self.consumer.pause(*self.assigned)

    async def _rebuild(self) -> None:
        """Redis lost its data: take the store's new incarnation and apply every owned partition
        again from offset 0 (or from where another worker's rebuild got to). Nothing was written
        since the loss was seen: every write checks the marker."""
        async with self._cycle_lock:
            await self._drain()  # their writes fail (the marker is gone); all is read again after the rebuild
        lost, self._lost = self._lost, None
        async with self._cycle_lock:
            self._forget_assigned()
            try:
                restored = await self._connect_store()
            except ModelMismatch:  # a take-over emptied the store to rebuild it under its model (streams/worker/rebuild.py)
                raise ModelReplaced(self.store.model, (await self.store.model_record())[0]) from None
            except BaseException:
                self._lost = lost
                raise
            self._generation += 1
            self._drop_stash()
        # after connect: a store emptied by a take-over's rebuild is no data loss (this worker stops above).
        # RETRY_LOGGER: one line per 10 s with a count (a store lost again and again is one incident)
        retry_logger.error("REDIS LOST ITS DATA (%s). Stopped applying; rebuilding partitions %s of %s from the topic's "
                           "retained history, after %d erased users put back from the erasure log (a WARNING if it is "
                           "missing). Runbook: ChurnwatchRedisDataLost", lost,
                           sorted(tp.partition for tp in self.assigned), self.topic, restored)
        metrics.REDIS_DATA_LOST.inc()

    async def _connect_store(self) -> int:
        """``store.connect``, then the erasure log restored into the store (streams/worker/erasure_log.py)
        before this worker applies any event: a store Redis lost, emptied or new holds the erased users
        again, so the rebuild's replay drops them (QA13 F1). Raises while the log cannot be read; returns
        the users restored."""
        from streams.worker.erasure_log import restore_for_worker

        await self.store.connect()
        restored = await restore_for_worker(self.settings, self.store.client)
        await self.pipeline.load_quiet()  # the accounts' quiet periods, before any account is judged
        return restored

    def _forget_assigned(self) -> None:
        """Forget what this worker knew of every owned partition (pipeline state, next and applied
        offsets, the record to verify, the clock) so that each resumes from what Redis holds now
        (``_resume``), as after a rebalance: after Redis lost its data or went back in time."""
        for tp in self.assigned:
            self.pipeline.revoke(tp.partition)
            self._next.pop(tp.partition, None)
            self._applied.pop(tp.partition, None)
            self._verify.pop(tp.partition, None)
            self._forget_log_end(tp.partition)
            self._to_commit.pop(tp, None)  # a hint of the log this worker forgets (a replaced log: past its end)
        self.pipeline.clock.global_ms = NEVER  # learnt again from the progress Redis holds (_resume)
        self._unresumed |= self.assigned

    def _store_failed(self, exc: StoreLost | StoreRolledBack) -> None:
        """Remember what Redis lost, for ``_recover`` before anything else is applied."""
        if isinstance(exc, StoreLost):
            self._lost = exc
        else:
            self._rolled_back = exc

    async def _recover(self) -> None:
        """Redis lost its data (rebuild from the topic) or went back in time (resume from it)."""
        if self._lost is not None:
            await self._rebuild()
            self._rolled_back = None  # the rebuild resumes every partition from what Redis holds too
        elif self._rolled_back is not None:
            await self._rewind_store()

    async def _rewind_store(self) -> None:
        """Redis went back in time (``StoreRolledBack``: a crash with AOF everysec, a failover to a
        replica that was behind): it lost writes this worker made, states and offsets alike, so
        records this worker had applied must be applied again. Every owned partition resumes from
        the progress Redis holds now, as after a rebalance (``_resume``: clock, due bounds,
        re-routing state and the checked last record from Redis); the per-bucket offsets then
        skip the records whose writes Redis kept. Nothing of the lost range was written on top:
        the loss is seen by the read before any write of that bucket, and a write in flight is
        fenced by the offsets it expects. Alerts of the replayed records are sent again with their
        ids (at-least-once)."""
        async with self._cycle_lock:
            await self._drain()  # their writes apply where Redis still holds what they read, else are fenced
        found, self._rolled_back = self._rolled_back, None
        elsewhere = found is not None and await self._restarted_elsewhere(found)
        async with self._cycle_lock:
            self._forget_assigned()
            self._generation += 1
            self._drop_stash()
        owned = sorted(tp.partition for tp in self.assigned)
        if elsewhere:
            assert found is not None
            logger.warning("%s[%s] was restarted by another worker (it found the partition's log replaced: "
                           "ChurnwatchTopicReset there) while this worker still took the partition for its own (%s): "
                           "not a Redis rollback. Partitions %s resume from the progress Redis holds now", self.topic,
                           found.partition, found, owned)
            return
        logger.warning("REDIS WENT BACK IN TIME (%s). Partitions %s of %s resume from the progress Redis holds now: "
                       "the records whose writes it lost are applied again, their alerts re-sent with the same ids. "
                       "Runbook: ChurnwatchRedisRolledBack", found, owned, self.topic)
        metrics.REDIS_ROLLBACKS.inc()

    async def _restarted_elsewhere(self, found: StoreRolledBack) -> bool:
        """Did another worker restart the partition ``found`` names (``Store.restart_partition``:
        its offsets deleted, its progress -1) since this worker learnt its restart count? Then
        what looked like Redis going back in time is that restart. Sound because the count only
        rises: a Redis that went back in time can lower it, never raise it above what this worker
        read, so a higher count is a restart (begun or ended) after that read, by a worker that
        took the partition for its own (this one has a stale idea of owning it). Both at once (a
        rollback and another worker's restart of that partition) read as the restart; the resume
        from Redis is the same either way. If Redis does not answer: a rollback (the page errs on
        the loud side)."""
        p = found.partition
        if p is None or p not in self._restarts:
            return False
        try:
            now = (await self.store.restarts(self.topic, [p]))[p]
        except REDIS_TRANSIENT as exc:
            count_redis_error(exc)
            return False
        return now > self._restarts[p]

    def _hint_commit(self) -> None:
        """Commit the applied offsets to Kafka in the background, at most every COMMIT_INTERVAL_S.

        Only a hint for tools (lag dashboards, kafka-consumer-groups): Redis progress decides where
        a partition resumes, so a cycle never waits for the group coordinator's round trip.
        """
        if not self._to_commit or (self._commit_task is not None and not self._commit_task.done()):
            return
        now = time.monotonic()
        if now - self._committed_at < COMMIT_INTERVAL_S:
            return
        offsets = {tp: off for tp, off in self._to_commit.items() if tp in self.assigned}
        self._to_commit.clear()
        self._committed_at = now
        if offsets:
            self._commit_task = asyncio.ensure_future(self._commit(offsets))

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except (KafkaError, AssertionError) as exc:  # a rebalance or an outage: the next hint will do
            logger.debug("Kafka commit hint failed: %s", exc)

    def _contiguous(self, batch: dict[TopicPartition, list], rebalanced: bool) -> dict[TopicPartition, list]:  # type: ignore[type-arg]
        """The records of ``batch`` that continue each partition where this worker expects them.

        A gap forward is accepted when no rebalance happened during the fetch (offsets may have
        gaps, e.g. transaction markers); otherwise the partition is re-seeked and read again.
        """
        out = {}
        for tp, records in batch.items():
            expected = self._next.get(tp.partition)
            if not records or tp.topic != self.topic or expected is None:
                continue
            first = records[0].offset
            if tp.partition in self._verify:  # not checked yet (a rebalance came between): read again
                self._seek(tp, expected)
            elif first == expected or (first > expected and not rebalanced):
                out[tp] = records
            else:
                logger.debug("%s[%s]: fetched from %s, expected %s: re-seeking", tp.topic, tp.partition, first, expected)
                self._seek(tp, expected)
        return out

    async def _cycle(self, batch: dict[TopicPartition, list], asked_ms: int | None = None) -> None:  # type: ignore[type-arg]
        """Submit ``batch`` (asked for at ``asked_ms``) to the pipeline, then settle cycles until fewer
        than ``pipeline_depth`` are in flight (1: this one too, before the next fetch); finished ones
        are settled anyway."""
        consumer = self.consumer
        now = wall_ms()
        generation, rewinds = self._generation, self._rewinds
        n = sum(len(r) for r in batch.values())
        backlog = 0
        for tp in list(self.assigned):  # caught up = nothing left below the highwater of the last fetch reply
            try:
                highwater = consumer.highwater(tp)
                position = await consumer.position(tp)
            except (IllegalStateError, AssertionError):  # revoked meanwhile (aiokafka asserts in highwater)
                continue
            stashed = self._stash.get(tp)
            if stashed:  # taken off aiokafka's buffer, not by a cycle yet: neither applied nor caught up
                position = stashed[0].offset
            caught_up = highwater is not None and position >= highwater
            if highwater is not None and position < highwater:
                backlog += highwater - position
            applied = self._applied.get(tp.partition)
            if highwater is not None and applied is not None:  # not in Redis yet, this batch included
                # beyond the log end: none of the log's records is applied (never 0 while skipping)
                metrics.CONSUMER_LAG.labels(str(tp.partition)).set(_lag(highwater, applied))
            # only what reaches the clock: a partition fed only copies and heartbeats is idle
            self.pipeline.clock.observe_fetch(tp.partition, reaches_clock(batch.get(tp, ())), caught_up, now)
        self._backlog = backlog
        async with self._cycle_lock:
            if generation != self._generation or rewinds != self._rewinds:  # a rebalance (or a rewind) meanwhile
                batch = self._contiguous(batch, rebalanced=True)
            by_partition = {tp.partition: records for tp, records in batch.items()}
            self._in_hand = n
            try:
                head = time.perf_counter()
                flight = await self.pipeline.submit(by_partition, now, asked_ms)
                self._cap.observe(n, time.perf_counter() - head)
                metrics.BATCH_CAP.set(self._cap.cap)
            except BaseException as exc:
                for tp, records in batch.items():  # nothing of this batch may be skipped
                    if records and tp.partition in self._next:
                        self._seek(tp, self._next[tp.partition])
                if not isinstance(exc, CycleAbandoned):
                    raise
                retry_logger.warning("cycle abandoned (%s): its records will be read again", exc)
                return
            finally:
                self._in_hand = 0
            for tp, records in batch.items():
                if tp.partition in self._next:
                    if tp.partition in self._fresh:  # judged on what is applied, not on a fetch
                        self._fresh.discard(tp.partition)  # a rebalance's unchecked fetch from 0 included
                        self._report_history(tp, records[0].offset)
                    self._next[tp.partition] = records[-1].offset + 1
            self._flights.append((flight, batch))
            depth = self.settings.pipeline_depth
            while self._flights and (len(self._flights) >= depth or self._flights[0][0].done):
                await self._settle_oldest(now)

    async def _settle_oldest(self, now: int) -> None:
        """Settle the oldest cycle in flight: its records count as applied. If it failed, every
        cycle in flight failed with it (``Pipeline.settle``): all their records are read again."""
        flight, batch = self._flights[0]
        try:
            result = await self.pipeline.settle(flight)
        except BaseException as exc:
            self._rewind()
            if not isinstance(exc, CycleAbandoned):
                raise
            retry_logger.warning("cycle abandoned (%s): its records and those of the cycles after it will be read again", exc)
            return
        self._flights.popleft()
        for p, (offset, at_ms) in result.gaps.items():
            if p in self._applied:  # still owned: the mark is applied
                self._report_gap(p, offset, at_ms)
        taken = 0
        for tp, records in batch.items():
            taken += len(records)
            if tp.partition in self._applied:
                self._applied[tp.partition] = records[-1].offset + 1
        if taken:  # each record once, when its cycle applied: a retried batch's re-reads do not count (QA8 M1)
            metrics.EVENTS_CONSUMED.inc(taken)
        self.cycles += 1
        self.settled_at = time.monotonic()
        if flight.task is not None:  # it wrote (an idle cycle reaches no Redis)
            self.applied_cycles += 1
        for p in self.pipeline.clock.partitions:
            lag_s = (now - self.pipeline.clock.cutoff_ms(p, now)) / 1000
            metrics.WATERMARK_LAG.labels(str(p)).set(lag_s)
            account_ms = self.pipeline.account_watermark_ms(p)
            if account_ms != NEVER:
                metrics.ACCOUNT_WATERMARK_LAG.labels(str(p)).set((now - account_ms) / 1000)
        for p, (off, _) in result.progress.items():
            self._to_commit[TopicPartition(self.topic, p)] = off + 1
        self._hint_commit()  # also on idle cycles: the last offsets get hinted too
        if not result.idle:
            logger.debug(
                "cycle %s: %s records, %s events applied, %s rejected, %s users, %s alerts",
                self.cycles, result.consumed, result.processed, sum(result.rejected.values()), result.users,
                sum(result.alerts.values()),
            )

    def _rewind(self) -> None:
        """Every cycle in flight failed: read their partitions again from the last settled offsets
        (counted in ``_rewinds``: a batch fetched before must continue them exactly, ``_judge``)."""
        self._rewinds += 1
        for _, batch in self._flights:
            for tp, records in batch.items():
                p = tp.partition
                if records and p in self._applied and tp in self.assigned:
                    self._seek(tp, self._applied[p])
                    self._next[p] = self._applied[p]
        self._flights.clear()

    async def _drain(self) -> None:
        """Settle every cycle in flight (rebalance, stop, rebuild: called under the cycle lock).
        Failures are handled as the loop would, without raising: Redis that lost its data is
        rebuilt next, anything else is logged (the records are read again)."""
        while self._flights:
            try:
                await self._settle_oldest(wall_ms())
            except (StoreLost, StoreRolledBack) as exc:
                self._store_failed(exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("worker cycle failed; its records will be read again")


async def _refresh_cluster(consumer: object, topic: str) -> bool:
    """Make the consumer's own view of the cluster read the events topic again, now. aiokafka's
    ``topics()`` answers from a metadata request into a throwaway copy and leaves the consumer's
    as it was: when the group had already reassigned nothing (its copy said the topic had 0
    partitions), the partitions of the topic made again came back only at the next periodic
    refresh (``metadata_max_age_ms``, 5 minutes), the worker idle and not ready meanwhile (CI on
    a loaded box, 5 December 2026: "exists again: partitions [] resume", then nothing for the
    test's 30 s). The client's ``force_metadata_update`` is not public API (as ``_fetcher`` in
    streams.worker.fetch): without it the periodic refresh still comes. False while the refreshed
    view holds no partition of ``topic``: a broker that lists the topic made again before it
    answers its partitions (CI on a loaded box, later the same day: the refresh came, the group
    reassigned nothing again) is looked at again, and refreshed again, a second later; the change
    of the partition count then makes the group assign them (aiokafka's subscription)."""
    client = getattr(consumer, "_client", None)
    force = getattr(client, "force_metadata_update", None)
    if not callable(force):
        return True
    try:
        await force()
    except KafkaError as exc:  # the periodic refresh will come; one line
        retry_logger.warning("refreshing the cluster metadata failed (%s: %s)", type(exc).__name__, exc)
        return True
    partitions = getattr(getattr(client, "cluster", None), "partitions_for_topic", None)
    return not callable(partitions) or bool(partitions(topic))
