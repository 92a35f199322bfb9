"""Move the state to the events topic's new partition count (``churnwatch relayout``).

Why: a user's events go to partition ``murmur2(user id) % count``. When the count grows, users
move partition, and their due reviews sit in the review index of the old one, reviewed by its
owner on its clock while their new events are applied by another worker: two owners, two clocks.
The workers stop taking work at the first record in a new partition (``ChurnwatchPartitionCountChanged``);
this runs with every worker stopped, then they start again: it refuses while a worker's running
mark is live (streams/worker/liveness.py; QA20b F11: it ran with a worker holding every partition).
It reads the topic's partition count from the broker and moves each due entry to the index of its
user's new partition; user records, statistics, rankings, offsets and progress of the old
partitions stay as they are (their logs did not change), and the new partitions start at offset 0. A user's events applied before the stop
were applied in its old partition, in order; those after it are applied in the new one, in order.
"""

from __future__ import annotations

import asyncio

from kafka.partitioner.default import murmur2

from streams.errors import UserError, redis_reached
from streams.settings import Settings
from streams.worker.liveness import MARK_MS, running_workers
from streams.worker.store import Store
from streams.kafka_admin import list_topics, partition_count

__all__ = ["partition_of", "relayout", "running_refusal"]


def partition_of(user_id: str, partitions: int) -> int:
    """The partition the producers' default partitioner (Java client, kafka-python, aiokafka) picks
    for a record keyed by ``user_id``.

    >>> partition_of("user-0001", 8), partition_of("user-0001", 16)
    (0, 8)
    """
    return (murmur2(user_id.encode("utf-8", "surrogatepass")) & 0x7FFFFFFF) % partitions


def relayout(settings: Settings, ignore_running: bool = False) -> dict[str, int]:
    """Lay the state of ``settings.topic_events`` out for the topic's partition count now.

    Returns ``moved`` (due entries), ``old_partitions``, ``partitions`` and ``running`` (workers
    found running, gone on with ``ignore_running``); raises ``ConnectionError`` when the broker does
    not describe the topic, ``UserError`` when it has no such topic (nothing is recorded: a layout of
    0 partitions would stop every worker on it) or a worker runs on it (nothing moved).
    """
    topic = settings.topic_events
    count = partition_count(settings, topic)
    if not count and topic not in list_topics(settings):
        raise UserError(f"topic {topic!r} does not exist on {settings.kafka_bootstrap_servers}: nothing moved "
                        "(check --events-topic / CHURNWATCH_TOPIC_EVENTS against the workers')")
    if not count:
        raise ConnectionError(f"cannot read the partition count of topic {topic!r} from "
                              f"{settings.kafka_bootstrap_servers}")

    async def move() -> dict[str, int]:
        store = Store(settings)
        try:
            running = await running_workers(store.client, store.keys.running(topic))
            if running and not ignore_running:
                raise UserError(running_refusal(topic, running))
            return {**await store.relayout(topic, count, partition_of), "running": len(running)}
        finally:
            await store.close()

    with redis_reached(settings.redis_url):  # "cannot reach Redis at ...", exit 2, as every command (QA20 F2)
        return asyncio.run(move())


def running_refusal(topic: str, running: list[tuple[str, float]]) -> str:
    """One line: which workers run on ``topic`` (name, seconds since their mark's last refresh), what to do.

    >>> print(running_refusal("ev", [("w1 pid 7 (ab12)", 0.4), ("w2 pid 9 (cd34)", 1.9)]))
    2 workers run on ev (w1 pid 7 (ab12), seen 0.4 s ago; w2 pid 9 (cd34), seen 1.9 s ago): stop every worker, then run relayout again (docs/OPERATE.md, "Partition count changes"); nothing moved. A worker that crashed stays seen for 15 s; --ignore-running-workers goes on regardless
    """
    n = len(running)
    seen = "; ".join(f"{name}, seen {ago:.1f} s ago" for name, ago in running)
    return (f"{n} worker{'s' if n > 1 else ''} run{'' if n > 1 else 's'} on {topic} ({seen}): stop every worker, then "
            "run relayout again (docs/OPERATE.md, \"Partition count changes\"); nothing moved. A worker that crashed "
            f"stays seen for {MARK_MS // 1000} s; --ignore-running-workers goes on regardless")
