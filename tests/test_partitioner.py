"""The batched murmur2 partitioner against aiokafka's, and the worker's batched sends on a real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from hypothesis import given
from hypothesis import strategies as st

from streams.settings import Settings
from streams.worker.consumer import _BATCHED_MAX_BYTES, KafkaSink
from streams.worker.partitioner import murmur2_many, partitions_of
from streams.worker.topics import ensure_topics
from tests.harness import read_topic


@given(st.lists(st.binary(max_size=70), max_size=60), st.integers(1, 40))
def test_same_hash_and_partition_as_aiokafka(keys: list[bytes], n: int) -> None:
    partitions = list(range(n))
    assert murmur2_many(keys) == [murmur2(k) & 0x7FFFFFFF for k in keys]
    assert partitions_of(keys, partitions) == [DefaultPartitioner()(k, partitions, partitions) for k in keys]


class _Producer:
    """aiokafka's producer as ``KafkaSink._send_partition`` uses it, without a broker: its batch
    builder (here ``batch_size`` bytes), each batch built as its sender builds it."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, list[tuple[int, bytes | None, bytes | None, list[tuple[str, bytes]]]]]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0, is_transactional=False)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> None:
        assert batch.record_count() == len(list(DefaultRecordBatch(bytes(batch._build()))))
        self.sent.append(("batch", [(r.offset, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(bytes(batch._build()))]))

    async def send(self, topic: str, value: bytes, key: bytes, headers: object, partition: int) -> None:
        self.sent.append(("send", [(0, key, value, list(headers or []))]))  # type: ignore[call-overload]


def _by_append(producer: _Producer, rows: list[tuple[bytes, bytes, list[tuple[str, bytes]] | None]]) -> None:
    """``_send_partition`` as it was: ``BatchBuilder.append`` per record, a new batch when it is full."""
    async def run() -> None:
        builder = producer.create_batch()
        for key, value, headers in rows:
            if len(key) + len(value) > _BATCHED_MAX_BYTES:
                if builder.record_count():
                    await producer.send_batch(builder, "t", partition=0)
                    builder = producer.create_batch()
                await producer.send("t", value=value, key=key, headers=headers, partition=0)
                continue
            if builder.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                await producer.send_batch(builder, "t", partition=0)
                builder = producer.create_batch()
                builder.append(timestamp=None, key=key, value=value, headers=headers or [])
        if builder.record_count():
            await producer.send_batch(builder, "t", partition=0)

    asyncio.run(run())


@given(st.lists(st.tuples(st.sampled_from([b"user-1", b"u", b"user-000123"]),
                          st.one_of(st.binary(max_size=300), st.just(b"x" * (_BATCHED_MAX_BYTES + 1))),
                          st.sampled_from([None, [], [("churnwatch-timing", b"1,2,3"), ("churnwatch-model", b"m")]])),
                max_size=40),
       st.sampled_from([512, 2048, 256 * 1024]))
def test_batches_are_those_of_batchbuilder_append(rows: list[tuple[bytes, bytes, list[tuple[str, bytes]] | None]],
                                                  batch_size: int) -> None:
    """The records' batches, offsets, keys, values and headers, and where a large record goes by
    ``send``, are those ``BatchBuilder.append`` made (``_fill`` appends without its Python frame)."""
    ours, theirs = _Producer(batch_size), _Producer(batch_size)
    asyncio.run(KafkaSink._send_partition(ours, "t", 0, rows))  # type: ignore[arg-type]
    _by_append(theirs, rows)
    assert ours.sent == theirs.sent


@pytest.mark.integration
def test_send_all_puts_each_record_where_aiokafka_would_in_order(kafka_bootstrap: str, unique_name: str) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=unique_name,
                        topic_alerts=unique_name + "-alerts", topic_dlq=unique_name + "-dlq", partitions=4)
    ensure_topics(settings)
    topic = settings.topic_alerts
    big = b"x" * (70 * 1024)  # over the batched size: sent on its own, in its place
    records: list[tuple[bytes | None, bytes] | tuple[bytes, bytes, list[tuple[str, bytes]]]] = [
        (f"user-{i % 37}".encode(), f"v{i}".encode()) for i in range(300)]
    records += [(None, b"unkeyed"), (b"user-1", big), (b"user-2", b"with headers", [("h", b"1")])]
    records += [(b"user-1", b"after the big one"), (b"user-3", big), (b"user-3", b"small after big")]

    async def main() -> None:
        sink = KafkaSink(settings)
        await sink.start()
        try:
            await sink.send_all(topic, records)  # type: ignore[arg-type]
        finally:
            await sink.stop()

    asyncio.run(main())
    got = read_topic(kafka_bootstrap, topic, 4)
    assert len(got) == len(records)
    partitions = [0, 1, 2, 3]
    for r in got:
        if r.key is not None:
            assert r.partition == DefaultPartitioner()(r.key, partitions, partitions)
    for key in {r[0] for r in records if r[0] is not None}:  # each key's records in the order sent
        sent = [r[1] for r in records if r[0] == key]
        assert [r.value for r in got if r.key == key] == sent
    assert [list(r.headers) for r in got if r.value == b"with headers"] == [[("h", b"1")]]
