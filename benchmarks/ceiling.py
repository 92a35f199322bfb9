"""The ceiling every throughput figure is compared with: raw aiokafka consume + orjson decode.

Events are produced with the project's own bulk path (``streams.publisher.publish_bulk_async``);
this module only reads them back as fast as a plain consumer can, which no worker can beat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.worker.fetch import lean_fetches

__all__ = ["CeilingResult", "measure_ceiling"]


@dataclass(frozen=True)
class CeilingResult:
    events: int
    seconds: float
    cpu_seconds: float = 0.0  # of this process (the consumer), over the same span

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def events_per_cpu_s(self) -> float:
        """Less sensitive to other load on the machine than events/s: compare with e2e's events_per_worker_cpu_s."""
        return self.events / self.cpu_seconds if self.cpu_seconds else 0.0


async def measure_ceiling(bootstrap: str, topic: str, partitions: int, expected: int,
                          lean: bool = False) -> CeilingResult:
    """Read ``expected`` events from the start of every partition, decoding each with orjson.

    ``lean``: the consumer hands out aiokafka's own record objects as the worker's does
    (``streams.worker.fetch.lean_fetches``), so the ceiling does not pay the per-record path the
    worker no longer pays; the issue's ceiling is the plain consumer (``lean=False``)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        if lean and not lean_fetches(consumer):
            raise RuntimeError("lean fetches are not available with this aiokafka: no lean ceiling")
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        t0 = cpu0 = 0.0
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not t0 and batch:
                t0, cpu0 = time.perf_counter(), time.process_time()
            for records in batch.values():
                for rec in records:
                    orjson.loads(rec.value)
                seen += len(records)
        return CeilingResult(seen, time.perf_counter() - t0, time.process_time() - cpu0)
    finally:
        await consumer.stop()
