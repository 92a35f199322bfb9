"""The batched murmur2 partitioner against aiokafka's, and the worker's batched sends on a real broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from streams.settings import Settings
from streams.worker.consumer import KafkaSink
from streams.worker.partitioner import murmur2_many, partitions_of
from streams.worker.topics import ensure_topics
from tests.harness import read_topic


@given(st.lists(st.binary(max_size=70), max_size=60), st.integers(1, 40))
def test_same_hash_and_partition_as_aiokafka(keys: list[bytes], n: int) -> None:
    partitions = list(range(n))
    assert murmur2_many(keys) == [murmur2(k) & 0x7FFFFFFF for k in keys]
    assert partitions_of(keys, partitions) == [DefaultPartitioner()(k, partitions, partitions) for k in keys]


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
