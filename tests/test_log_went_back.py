"""A partition's log that looks as if it went back (a fetch reply's log end below the next offset
to take), and cycles abandoned for it (review 9): unit-level, on a real consumer object with a
real broker topic and a real Redis, the decisions staged deterministically (no loop, no timing).

The consumer is a ``StreamConsumer`` whose Kafka side is a plain assigned ``AIOKafkaConsumer``
(what the group's assignment gives it), as in tests/test_broker_loss.py's last test. A fetch
reply's log end is aiokafka's own (``highwater``), set by real fetches: a log end that "lags"
is one read before more records were published, exactly what a caught-up worker holds when a new
leader's high watermark lags the records it read (KAFKA-2334), which a single Tansu never does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from models.model import load_model
from streams.settings import Settings, aiokafka_client_kwargs
from streams.worker import metrics
from streams.worker.consumer import KafkaSink, StreamConsumer
from streams.worker.pipeline import CycleAbandoned, CycleResult, Flight, Pipeline
from streams.worker.store import Store

pytestmark = [pytest.mark.integration]



def _topics(bootstrap: str, unique_name: str) -> dict[str, str]:
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topics[k], 2, 1) for k in ("events", "alerts", "dlq")])
    finally:
        admin.close()
    return topics


def _publish(bootstrap: str, topic: str, partition: int, n: int) -> None:
    """``n`` plain records into ``partition`` (what they hold does not matter: no cycle decodes them),
    one batch each: Tansu's ListOffsets answers the base offset of the last batch + 1."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(n):
        producer.send(topic, key=None, value=b"r%d" % i, partition=partition).get(10)
    producer.close()


class Staged:
    """A ``StreamConsumer`` owning partitions 0 and 1 of the events topic, its Kafka side assigned."""

    def __init__(self, settings: Settings) -> None:
        self.store = Store(settings)
        self.sink = KafkaSink(settings)
        self.pipeline = Pipeline(settings, self.store, self.sink, load_model())
        self.worker = StreamConsumer(settings, self.store, self.pipeline, self.sink)
        self.kafka = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50,
                                      **aiokafka_client_kwargs(settings))
        self.tps = [TopicPartition(settings.topic_events, p) for p in (0, 1)]
        self.sent: list[str] = []  # the topic of every send_all call, in order

    async def start(self) -> None:
        await self.store.connect()
        await self.sink.start()
        send_all = self.sink.send_all

        async def recording(topic: str, records: Any) -> None:
            self.sent.append(topic)
            await send_all(topic, records)

        self.sink.send_all = recording  # type: ignore[method-assign]
        await self.kafka.start()
        self.kafka.assign(self.tps)
        self.worker.consumer, self.worker.assigned = self.kafka, set(self.tps)

    async def read(self, tp: TopicPartition, start: int, end: int) -> list[Any]:
        """The records ``start..end-1`` of ``tp`` (aiokafka's highwater of ``tp`` set by the replies)."""
        self.kafka.seek(tp, start)
        out: list[Any] = []
        while len(out) < end - start:
            got = await self.kafka.getmany(tp, timeout_ms=200, max_records=end - start - len(out))
            out += got.get(tp, [])
        return out

    async def fetch_end(self, tp: TopicPartition, at: int) -> None:
        """A fetch reply for ``tp`` read at ``at`` (its log end), so that aiokafka holds its highwater."""
        self.kafka.seek(tp, at)
        while self.kafka.highwater(tp) is None or self.kafka.last_poll_timestamp(tp) is None:
            await self.kafka.getmany(tp, timeout_ms=100)

    def at(self, p: int, next_offset: int, applied: int | None = None) -> None:
        self.worker._next[p], self.worker._applied[p] = next_offset, next_offset if applied is None else applied

    async def stop(self) -> None:
        await self.kafka.stop()
        await self.sink.stop()
        await self.store.close()


def _settings(kafka_bootstrap: str, redis_url: str, topics: dict[str, str], unique_name: str) -> Settings:
    return Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, topic_events=topics["events"],
                    topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], partitions=2,
                    key_prefix=f"cw{unique_name.replace('-', '')}")


def _resets() -> float:
    """Partitions restarted so far in this process (``churnwatch_topic_resets_total``)."""
    return sum(metrics.TOPIC_RESETS.labels(reason)._value.get() for reason in ("beyond_log_end", "replaced"))


def test_a_rewind_during_a_restart_makes_the_batch_in_hand_continue_the_lowered_offsets(
        kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    """Review 9, finding 1 (record loss). Partition 1's cycle of records 10-19 is in flight
    (applied up to 10, next 20) and the batch in hand holds 20-29. Partition 0's log went back
    (its log end 5, below the next offset 50; ListOffsets agrees), so ``_check_log`` restarts it,
    and the restart's drain settles the cycle in flight, which was abandoned (its heartbeats may
    not go into a log that went back): ``_rewind`` seeks partition 1 back to 10. The batch's
    records from 20 then passed for a forward gap and went to a cycle: 10-19 never applied.
    Now only an exact continuation of the lowered offset is taken, and 1 is read again from 10."""
    async def scenario() -> tuple[list[int], int, int, float]:
        topics = _topics(kafka_bootstrap, unique_name)
        _publish(kafka_bootstrap, topics["events"], 0, 5)
        _publish(kafka_bootstrap, topics["events"], 1, 30)
        s = Staged(_settings(kafka_bootstrap, redis_url, topics, unique_name))
        await s.start()
        try:
            p, q = s.tps
            await s.fetch_end(p, 5)
            in_flight = await s.read(q, 10, 20)
            batch = {q: await s.read(q, 20, 30)}
            s.at(0, 50)
            s.at(1, 20, applied=10)
            pipeline, worker = s.pipeline, s.worker

            async def tail() -> CycleResult:  # a tail sending heartbeats: abandoned, partition 0's log went back
                await pipeline._send_events("heartbeats", pipeline.heartbeats.records({1: 0}))
                return CycleResult()

            flight = Flight(CycleResult(), routes=pipeline.router.snapshot())
            flight.task = asyncio.ensure_future(tail())
            pipeline._flights.append(flight)
            worker._flights.append((flight, {q: in_flight}))
            generation, rewinds = worker._generation, worker._rewinds
            resets = _resets()
            taken = await worker._judge(batch, generation, rewinds)
            assert taken is not None
            return ([r.offset for r in taken.get(q, [])], worker._next[1], await s.kafka.position(q),
                    _resets() - resets)
        finally:
            await s.stop()

    offsets, next_q, position, resets = asyncio.run(scenario())
    assert resets == 1, "partition 0 was restarted (its log went back, ListOffsets agrees)"
    assert offsets == [], f"records {offsets[:1]}.. taken while 10-19 were never applied"
    assert (next_q, position) == (10, 10), "partition 1 is read again from the first offset not applied"
