"""The gauge timer's read of the log ends while a worker is stuck (``StreamConsumer.refresh_lag``,
review 15 L-2 and L-4): its consumer lives only as long as the stuck episode, and Redis's part of
the refresh never waits for it. The broker side is a stand-in ``LogEnds`` (only its two calls),
so that a read can be held open without a timing; Redis is real."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from models.model import load_model
from streams.settings import Settings
from streams.worker.service import WorkerRuntime


class _Ends:
    """A ``LogEnds`` whose read never answers (a slow or silent broker)."""

    def __init__(self) -> None:
        self.started = self.ended = self.stopped = False

    async def read_some(self, *_: Any, **__: Any) -> dict[int, int]:
        self.started = True
        try:
            await asyncio.Event().wait()
            return {}
        finally:
            self.ended = True

    async def stop(self) -> None:
        self.stopped = True


def _runtime(redis_url: str) -> WorkerRuntime:
    return WorkerRuntime(Settings(redis_url=redis_url, buckets=4, groups_per_bucket=8), load_model())


def test_redis_readiness_does_not_wait_for_the_lag_read_and_revoke_stops_it(redis_url: str) -> None:
    """L-4: the refresh awaited the log ends first (up to 3 s) before asking Redis. L-2: the lag
    consumer kept its partitions assigned (aiokafka fetches them in the background) after a revoke."""
    async def scenario() -> None:
        runtime = _runtime(redis_url)
        consumer = runtime.consumer
        ends = _Ends()
        consumer._lag_ends = ends  # type: ignore[assignment]
        tp = TopicPartition(consumer.topic, 0)
        consumer.assigned, consumer._applied[0] = {tp}, 5
        consumer.stuck_s = lambda: 60.0  # type: ignore[method-assign]
        try:
            await runtime.refresh_gauges()
            assert runtime.redis_answered, "Redis answered"
            assert not ends.ended, "Redis's part did not wait for the lag read"
            await asyncio.sleep(0)  # the read's task has started
            assert ends.started
            await consumer.on_revoked({tp})
            assert ends.ended and ends.stopped and consumer._lag_ends is None, "the revoke stopped the lag read"
        finally:
            await runtime.store.close()

    asyncio.run(scenario())


def test_the_lag_consumer_is_dropped_once_the_worker_is_no_longer_stuck(redis_url: str) -> None:
    """L-2: after one stuck episode the lag consumer stayed, long-polling its partitions for the
    life of the process. The first refresh that finds the worker settled stops it."""
    async def scenario() -> None:
        runtime = _runtime(redis_url)
        consumer = runtime.consumer
        ends = _Ends()
        consumer._lag_ends = ends  # type: ignore[assignment]
        try:
            assert consumer.stuck_s() == 0.0, "nothing waits"
            await runtime.refresh_gauges()
            task = getattr(consumer, "_lag_task", None)  # the refresh's read: a task of its own
            if task is not None:
                await task
            assert ends.stopped and consumer._lag_ends is None
        finally:
            await runtime.store.close()

    asyncio.run(scenario())
