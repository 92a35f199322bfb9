"""``StreamConsumer.fetch_reply_age_s``: how long ago the broker last answered a fetch of an owned
partition (``churnwatch_kafka_fetch_reply_age_seconds``, ChurnwatchBrokerUnreachable; QA13 F2)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.settings import Settings
from streams.worker.consumer import StreamConsumer
from streams.worker.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_the_age_counts_from_the_newest_fetch_reply_of_an_owned_partition(kafka_bootstrap: str, unique_name: str) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=f"{unique_name}-e", topic_alerts=f"{unique_name}-a",
                        topic_dlq=f"{unique_name}-d", partitions=2)
    ensure_topics(settings)
    # only its consumer and owned partitions are read here (the pipeline only takes its callbacks)
    sc = StreamConsumer(settings, None, SimpleNamespace(), None)  # type: ignore[arg-type]

    async def run() -> tuple[float | None, float | None, float | None, float | None]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            none_before_start = sc.fetch_reply_age_s()
            sc.consumer = consumer
            tps = [TopicPartition(settings.topic_events, p) for p in range(2)]
            consumer.assign(tps)
            sc.assigned = set(tps)
            no_reply_yet = sc.fetch_reply_age_s()
            for _ in range(100):  # an empty topic: the long polls answer with no records
                await consumer.getmany(timeout_ms=100)
                if all(consumer.last_poll_timestamp(tp) for tp in tps):
                    break
            newest = max(consumer.last_poll_timestamp(tp) for tp in tps)
            five_s_later = sc.fetch_reply_age_s(now_ms=newest + 5_000)
            sc.assigned = set()
            owns_nothing = sc.fetch_reply_age_s(now_ms=newest + 5_000)
            return none_before_start, no_reply_yet, five_s_later, owns_nothing
        finally:
            await consumer.stop()

    before, no_reply, later, nothing = asyncio.run(asyncio.wait_for(run(), 60))
    assert before is None and no_reply is None and nothing is None
    assert later == pytest.approx(5.0)
