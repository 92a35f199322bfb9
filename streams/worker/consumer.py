"""The worker's Kafka side: its own aiokafka consumer in the group, batches into the pipeline.

Why not a Faust agent: Faust builds asyncio machinery per message (~12-16k events/s here) and its
commits skipped events on rebalances on Tansu (measured: 7 runs in 10 lost events); a plain consumer with
``getmany(max_records=...)`` reads ~500k/s and leaves offsets to us. Redis progress is the source
of truth for where a partition resumes; Kafka commits are only a hint for tools.

Rebalance rules (aiokafka calls the listener between fetches, and awaits it):
- revoked: ask the cycle in flight to give up if it is stuck retrying, wait for it, drop the clocks;
- assigned: read progress from Redis and seek each partition to ``offset + 1`` (start if none).
Records are taken only where they continue what this worker last applied (or resumed from):
a fetch made before a rebalance can hand out records from the old position after the seek, so a
partition whose records do not start at the expected offset is re-seeked there and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError, KafkaError

from streams.worker import metrics
from streams.worker.pipeline import REDIS_TRANSIENT, CycleAbandoned, Pipeline
from streams.settings import Settings, aiokafka_client_kwargs
from streams.worker.store import Store

__all__ = ["KafkaSink", "StreamConsumer", "wall_ms"]

logger = logging.getLogger(__name__)

SESSION_TIMEOUT_MS = 6_000  # Tansu takes about half of it to finish a group join
HEARTBEAT_INTERVAL_MS = 2_000
ERROR_BACKOFF_MAX_S = 2.0
COMMIT_INTERVAL_S = 1.0  # Kafka commit hints: at most this often, never awaited by a cycle


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

    async def send_all(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        if self._producer is None:
            raise KafkaConnectionError("producer not started")
        send = self._producer.send
        futures = [await send(topic, value=value, key=key) for key, value in records]
        await asyncio.gather(*futures)


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
        self._next: dict[int, int] = {}  # partition -> offset the next applied record must have
        self._unresumed: set[TopicPartition] = set()  # assigned, but progress not read yet
        self.assigned: set[TopicPartition] = set()
        self.cycles = 0
        self._to_commit: dict[TopicPartition, int] = {}  # newest applied offsets not yet hinted
        self._commit_task: asyncio.Task[None] | None = None
        self._committed_at = 0.0
        self._started: set[str] = set()  # parts already started: start() is retried after failures
        pipeline.abandon_requested = lambda: self._revoking or self._stopping

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis (meta check, scripts), start the producer, join the group."""
        if "store" not in self._started:
            await self.store.connect()
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
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_max_bytes=64 * 1024 * 1024,
                **aiokafka_client_kwargs(settings),
            )
            try:
                await self.consumer.start()
            except BaseException:
                await self.consumer.stop()
                raise
            self.consumer.subscribe([self.topic], listener=_Listener(self))
            self._started.add("consumer")
        logger.info("consumer started: topic %s, group %s", self.topic, self.settings.group_id)

    async def stop(self) -> None:
        """Finish the cycle in flight (or abandon it if it is stuck retrying), then leave the group."""
        self._stopping = True
        async with self._cycle_lock:
            pass
        try:
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
            await self.store.close()
            self._started.clear()
        metrics.PARTITIONS_ASSIGNED.set(0)
        metrics.READY.set(0)
        logger.info("consumer stopped after %s cycles", self.cycles)

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
        self._revoking = True
        try:
            async with self._cycle_lock:  # the cycle in flight finishes, or abandons if stuck
                for tp in revoked:
                    if tp.topic == self.topic:
                        self.pipeline.revoke(tp.partition)
                        self._next.pop(tp.partition, None)
                        self.assigned.discard(tp)
                        self._unresumed.discard(tp)
                        for gauge in (metrics.CONSUMER_LAG, metrics.WATERMARK_LAG):
                            with contextlib.suppress(KeyError):
                                gauge.remove(str(tp.partition))
        finally:
            self._revoking = False
        metrics.PARTITIONS_ASSIGNED.set(len(self.assigned))
        logger.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Runs after the group rebalanced: resume each new partition from Redis progress."""
        self._generation += 1
        mine = {tp for tp in assigned if tp.topic == self.topic}
        self.assigned |= mine
        self._unresumed |= mine
        metrics.PARTITIONS_ASSIGNED.set(len(self.assigned))
        logger.info("partitions assigned: %s", sorted(tp.partition for tp in mine))
        await self._resume()

    async def _resume(self) -> None:
        """Seek every assigned-but-not-resumed partition to its progress; retries Redis until it answers."""
        delay = 0.05
        while self._unresumed and not self._stopping:
            try:
                progress = await self.store.read_progress(self.topic)
            except REDIS_TRANSIENT as exc:
                metrics.REDIS_ERRORS.inc()
                logger.warning("cannot read progress from Redis (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(ERROR_BACKOFF_MAX_S, delay * 2)
                continue
            now = wall_ms()
            self.pipeline.observe_global(progress)
            for tp in sorted(self._unresumed, key=lambda t: t.partition):
                start = self.pipeline.assign(tp.partition, progress.get(tp.partition), now)
                self.consumer.seek(tp, start)
                self._next[tp.partition] = start
                logger.info("%s[%s] resumes at offset %s", tp.topic, tp.partition, start)
            self._unresumed.clear()
            self._generation += 1

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Until ``stop``: fetch a batch, process it, commit a hint. Errors back off and continue."""
        delay = 0.05
        max_records = self.settings.batch_max_records
        timeout_ms = self.settings.batch_timeout_ms
        while not self._stopping:
            try:
                if self._unresumed:
                    await self._resume()
                generation = self._generation
                batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
                if self._stopping:
                    break
                if self._unresumed:
                    continue  # resumed (and re-seeked) on the next turn
                await self._cycle(self._contiguous(batch, rebalanced=generation != self._generation))
                delay = 0.05
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("worker cycle failed; retrying in %.2f s", delay)
                await asyncio.sleep(delay)
                delay = min(ERROR_BACKOFF_MAX_S, delay * 2)

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
            if first == expected or (first > expected and not rebalanced):
                out[tp] = records
            else:
                logger.debug("%s[%s]: fetched from %s, expected %s: re-seeking", tp.topic, tp.partition, first, expected)
                self.consumer.seek(tp, expected)
        return out

    async def _cycle(self, batch: dict[TopicPartition, list]) -> None:  # type: ignore[type-arg]
        consumer = self.consumer
        now = wall_ms()
        generation = self._generation
        n = sum(len(r) for r in batch.values())
        if n:
            metrics.EVENTS_CONSUMED.inc(n)
        for tp in list(self.assigned):  # caught up = nothing left below the highwater of the last fetch reply
            try:
                highwater = consumer.highwater(tp)
                position = await consumer.position(tp)
            except (IllegalStateError, AssertionError):  # revoked meanwhile (aiokafka asserts in highwater)
                continue
            caught_up = highwater is not None and position >= highwater
            applied = self._next.get(tp.partition)
            if highwater is not None and applied is not None:  # not in Redis yet, this batch included
                metrics.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, highwater - applied))
            delivered = len(batch.get(tp, ()))
            self.pipeline.clock.observe_fetch(tp.partition, delivered, caught_up, now)
        async with self._cycle_lock:
            if generation != self._generation:  # a rebalance ran while we looked at positions
                batch = self._contiguous(batch, rebalanced=True)
            by_partition = {tp.partition: records for tp, records in batch.items()}
            try:
                result = await self.pipeline.process(by_partition, now)
            except CycleAbandoned as exc:
                logger.warning("cycle abandoned (%s): its records will be read again", exc)
                for tp, records in batch.items():
                    if records and tp.partition in self._next:
                        consumer.seek(tp, self._next[tp.partition])
                return
            except BaseException:
                for tp, records in batch.items():  # nothing of this batch may be skipped
                    if records and tp.partition in self._next:
                        consumer.seek(tp, self._next[tp.partition])
                raise
        for tp, records in batch.items():
            if tp.partition in self._next:
                self._next[tp.partition] = records[-1].offset + 1
        self.cycles += 1
        for p in self.pipeline.clock.partitions:
            lag_s = (now - self.pipeline.clock.cutoff_ms(p, now)) / 1000
            metrics.WATERMARK_LAG.labels(str(p)).set(lag_s)
        for p, (off, _) in result.progress.items():
            self._to_commit[TopicPartition(self.topic, p)] = off + 1
        self._hint_commit()  # also on idle cycles: the last offsets get hinted too
        if not result.idle:
            logger.debug(
                "cycle %s: %s records, %s events applied, %s rejected, %s users, %s alerts",
                self.cycles, result.consumed, result.processed, sum(result.rejected.values()), result.users,
                sum(result.alerts.values()),
            )

