"""The aligned fetch's stash (``StreamConsumer._aligned_fetch``, ``_stash_more``) drains.

Records a cut leaves (the stash) are served before aiokafka's, a share of ``max_records`` per
partition, and every fetch polls aiokafka (a partition served from the stash alone never polled:
aiokafka left the group after ``max_poll_interval_ms``). Until 5 December 2026 each stashed
partition was topped up with a full share behind its stash as it gave a share: in a backlog the
stash never drained, so a worker without accounts, whose first cycle is cut (aligned reading is on
until a cycle is applied), stayed in the aligned fetch for good (8 partitions' shares asked one by
one: batches of 7.5k records instead of 9.4k, -10% of the one-worker benchmark's events per
CPU-second). Real Tansu and aiokafka; no timing: the counts below hold whatever aiokafka has
buffered when a fetch asks.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from streams.settings import Settings
from streams.worker.consumer import StreamConsumer
from streams.worker.topics import ensure_topics

pytestmark = pytest.mark.integration

PARTITIONS = 4
PER_PARTITION = 100


def _setup(kafka_bootstrap: str, unique_name: str) -> tuple[Settings, StreamConsumer]:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=f"{unique_name}-e", topic_alerts=f"{unique_name}-a",
                        topic_dlq=f"{unique_name}-d", partitions=PARTITIONS)
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.send(settings.topic_events, value=b'{"p":%d,"i":%d}' % (p, i), partition=p)
    producer.flush()
    producer.close()
    sc = StreamConsumer(settings, None, SimpleNamespace(), None)  # type: ignore[arg-type]
    sc._aligning = lambda: False  # type: ignore[method-assign]  # accounts not in use, a cycle applied
    return settings, sc


def _drive(settings: Settings, sc: StreamConsumer, kafka_bootstrap: str, stash: dict[int, int],
           max_records: int) -> tuple[list[int], dict[int, list[int]]]:
    """Stash the first ``stash[p]`` records of partition ``p`` as a cut would, then fetch until
    every record came out: the stash's size after each fetch, and each partition's offsets in the
    order they came out."""

    async def run() -> tuple[list[int], dict[int, list[int]]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic_events, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            sc.consumer, sc.assigned = consumer, set(tps)
            for p, n in stash.items():
                got: list = []  # type: ignore[type-arg]
                while len(got) < n:
                    more = await consumer.getmany(tps[p], timeout_ms=1_000, max_records=n - len(got))
                    got += more.get(tps[p], [])
                sc._stash[tps[p]] = got
                sc._stash_n += len(got)
            sizes: list[int] = []
            seen: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
            for _ in range(1_000):
                if sum(map(len, seen.values())) == PARTITIONS * PER_PARTITION:
                    break
                batch, _generation = await sc._fetch(timeout_ms=200, max_records=max_records)
                for tp, records in batch.items():
                    seen[tp.partition] += [r.offset for r in records]
                sizes.append(sc._stash_n)
            return sizes, seen
        finally:
            await consumer.stop()

    return asyncio.run(asyncio.wait_for(run(), 120))


def test_a_stashed_partition_gives_its_share_and_the_stash_drains(kafka_bootstrap: str, unique_name: str) -> None:
    """30 records a cut left on partition 0, shares of 10: the stash gives 10 a fetch and is empty
    after the third (the other partitions poll aiokafka meanwhile); every record comes out once, in
    offset order, and the fetches after are aiokafka's plain ones."""
    settings, sc = _setup(kafka_bootstrap, unique_name)
    sizes, seen = _drive(settings, sc, kafka_bootstrap, {0: 30}, max_records=40)
    assert sizes[:3] == [20, 10, 0]
    assert all(s == 0 for s in sizes[3:])
    assert seen == {p: list(range(PER_PARTITION)) for p in range(PARTITIONS)}


def test_every_partition_stashed_still_polls_and_drains(kafka_bootstrap: str, unique_name: str) -> None:
    """20 records stashed on every partition, shares of 10: a fetch served from the stash alone
    polls aiokafka for one record (put behind partition 0's stash), so the stash shrinks by at
    least 39 a fetch and is empty within three; every record comes out once, in offset order."""
    settings, sc = _setup(kafka_bootstrap, unique_name)
    sizes, seen = _drive(settings, sc, kafka_bootstrap, {p: 20 for p in range(PARTITIONS)}, max_records=40)
    assert 40 <= sizes[0] <= 41 and 0 in sizes[:3]
    assert all(a - b >= 39 or b == 0 for a, b in zip([80] + sizes, sizes) if a)
    assert seen == {p: list(range(PER_PARTITION)) for p in range(PARTITIONS)}
