"""The worker's lean fetch (streams/worker/fetch.py) hands out what aiokafka's own path does.

The same records (offset, key, value, timestamp, headers), in the same ``getmany`` replies, with
the same positions after each: on a real broker from any offset (inside a record batch too) and
for any ``max_records``, and on generated fetch replies through aiokafka's ``FetchResult.getall``.
A batch failing its CRC loses no record.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.shell_callgrind import Assigned
from streams.worker.fetch import LeanRecords, lean_fetches


def _seen(records: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.offset, r.key, r.value, r.timestamp, tuple(r.headers)) for r in records]


# -- generated fetch replies ------------------------------------------------------------------


def _batch(base: int, records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i, (key, value, headers) in enumerate(records):
        builder.append(i, timestamp=1_777_000_000_000 + base + i, key=key, value=value, headers=headers)
    buf = bytearray(builder.build())
    struct.pack_into(">q", buf, 0, base)  # the base offset (outside the CRC)
    return bytes(buf)


def _drain(data: bytes, fetch_offset: int, takes: list[int], lean: bool) -> list[tuple[Any, ...]]:
    """Each ``getall`` of a reply (max_records from ``takes``, cycled) with the position after it."""
    tp = TopicPartition("t", 0)
    records: Any = PartitionRecords(tp, MemoryRecords(data), None, fetch_offset, None, None, True, 0)
    if lean:
        records = LeanRecords(records)
    assigned = Assigned(fetch_offset)
    result = FetchResult(tp, assignment=assigned, partition_records=records, backoff=0)
    out, k = [], 0
    while result.has_more():
        got = result.getall(takes[k % len(takes)])
        k += 1
        out.append((_seen(got), assigned.position))
    return out


_record = st.tuples(st.none() | st.binary(max_size=6), st.none() | st.binary(max_size=12),
                    st.lists(st.tuples(st.sampled_from(["a", "churnwatch-origin"]), st.binary(max_size=4)), max_size=2))


@given(sizes=st.lists(st.lists(_record, min_size=1, max_size=7), min_size=1, max_size=6), skip=st.integers(0, 40),
       takes=st.lists(st.integers(1, 12), min_size=1, max_size=4))
def test_lean_replies_hand_out_what_aiokafkas_do(sizes: list[Any], skip: int, takes: list[int]) -> None:
    data, base = b"", 100
    for recs in sizes:
        data += _batch(base, recs)
        base += len(recs)
    fetch_offset = min(100 + skip, base - 1)  # inside a batch as often as not
    assert _drain(data, fetch_offset, takes, lean=True) == _drain(data, fetch_offset, takes, lean=False)


def test_a_batch_failing_its_crc_ends_the_reply_there_and_loses_no_record() -> None:
    good, bad = _batch(0, [(b"k", b"v%d" % i, []) for i in range(3)]), bytearray(_batch(3, [(b"k", b"w", [])] * 2))
    bad[-1] ^= 0xFF  # a byte of the last record: its batch's CRC fails
    tp = TopicPartition("t", 0)

    def reply(data: bytes, fetch_offset: int) -> tuple[FetchResult, Assigned]:
        records = LeanRecords(PartitionRecords(tp, MemoryRecords(data), None, fetch_offset, None, None, True, 0))
        assigned = Assigned(fetch_offset)
        return FetchResult(tp, assignment=assigned, partition_records=records, backoff=0), assigned

    result, assigned = reply(good + bytes(bad), 1)
    assert [r.offset for r in result.getall(10)] == [1, 2]  # the records before it, and the reply ends
    assert not result.has_more() and assigned.position == 3
    result, assigned = reply(bytes(bad) + good, 3)  # fetched again from the failed batch
    with pytest.raises(CorruptRecordException):
        result.getall(10)
    assert result.getall(10) == [] and not result.has_more() and assigned.position == 3  # and fetched again


# -- a real broker ------------------------------------------------------------------------------


def _fill(bootstrap: str, topic: str) -> int:
    """Records in batches of several (one ``send`` burst each), some with headers, a None key, a tombstone."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=512)
    n = 0
    for burst in range(6):
        futures = []
        for i in range(13):
            key = None if i == 4 else b"u-%d" % i
            value = None if (burst, i) == (2, 7) else b'{"n": %d}' % n
            headers = [("churnwatch-origin", b"0:%d" % n)] if i % 5 == 0 else []
            futures.append(producer.send(topic, key=key, value=value, headers=headers, partition=0))
            n += 1
        for f in futures:
            f.get(10)
    producer.close()
    return n


async def _read(bootstrap: str, topic: str, start: int, takes: list[int], lean: bool, n: int) -> list[Any]:
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50,
                                max_partition_fetch_bytes=4 * 1024 * 1024, bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        assert lean_fetches(consumer) if lean else True
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        out, k, got = [], 0, 0
        while got < n - start:
            reply = await consumer.getmany(tp, timeout_ms=2000, max_records=takes[k % len(takes)])
            k += 1
            records = reply.get(tp, [])
            if not records:
                continue
            assert all((type(r) is ConsumerRecord) != lean for r in records)
            got += len(records)
            out.append((_seen(records), await consumer.position(tp)))
        return out
    finally:
        await consumer.stop()


@pytest.mark.integration
def test_the_worker_consumer_reads_what_aiokafka_hands_out(kafka_bootstrap: str, unique_name: str) -> None:
    topic = f"lean-{unique_name}"
    n = _fill(kafka_bootstrap, topic)
    for start, takes in ((0, [1000]), (5, [7, 3]), (31, [1, 13, 40])):
        # the replies' split into getmany calls follows the fetches: compare the record sequences
        # and each reply's position against the records up to it
        stock = asyncio.run(_read(kafka_bootstrap, topic, start, takes, False, n))
        lean = asyncio.run(_read(kafka_bootstrap, topic, start, takes, True, n))
        assert [r for recs, _ in lean for r in recs] == [r for recs, _ in stock for r in recs]
        assert [r[0] for recs, _ in lean for r in recs] == list(range(start, n))
        for recs, position in lean + stock:
            assert len(recs) <= max(takes) and position == recs[-1][0] + 1
