"""How old a record is when a consumer gets it, as a fresh topic fills: the broker's fetch alone.

Why: the latency section's p99 at half the max rate was the worker "behind" (an event acked by
the broker but not yet in any batch the worker asked for), while the worker was busy half the
time. This takes the worker out: the section's load generator (librdkafka, ``generator_config``)
produces at a fixed rate into a new 8-partition topic while an aiokafka consumer with the
worker's fetch settings takes what is there every ``cycle_ms`` (a stand-in for a worker cycle),
and reports, per 5 s window, how many of the 8 partitions a ``getmany`` missed and the age of the
records it got (receipt - the record's CreateTime, which librdkafka sets when the event is
handed to it: linger, produce request, fetch and the wait for the next turn). On Tansu every
fetch lists each partition's stored batches within the fetch's max wait (docs/OPERATE.md,
"Tansu"), so the windows show when that budget runs out. The collector is tuned as in the
worker (``benchmarks.latency.quiet_gc``): untuned, this process's own full collections showed
up as 130-240 ms spikes every 6-9 s.

``.venv/bin/python -m benchmarks.fetch_age [--rate 26000] [--seconds 40] [--cycle-ms 30] [--waits 5,50]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.latency import generator_config, quiet_gc

__all__ = ["Window", "measure"]

PARTITIONS = 8
WINDOW_S = 5
VALUE = b"x" * 120  # about the size of the latency section's events


@dataclass
class Window:
    """One WINDOW_S of getmany calls."""

    calls: int = 0
    missing: int = 0  # partitions without records, summed over the calls
    ages_ms: list[float] = field(default_factory=list)

    def row(self) -> str:
        ages = sorted(self.ages_ms)
        if not ages:
            return f"{self.calls} getmany, no records"
        return (f"{self.missing / self.calls:.2f} of {PARTITIONS} partitions missing a getmany; record age p50 / p99 / max "
                f"{ages[len(ages) // 2]:.0f} / {ages[int(0.99 * len(ages))]:.0f} / {ages[-1]:.0f} ms")


async def measure(bootstrap: str, topic: str, rate: float, seconds: float, cycle_ms: float, wait_ms: int) -> dict[int, Window]:
    """Produce ``rate`` events/s into ``topic`` (made beforehand, PARTITIONS partitions) for ``seconds``
    while a consumer with ``fetch_max_wait_ms=wait_ms`` takes records every ``cycle_ms``."""
    from confluent_kafka import Producer  # the bench extra

    producer = Producer(generator_config(bootstrap))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                fetch_max_wait_ms=wait_ms, fetch_min_bytes=1,  # as the worker's consumer
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)

    async def produce() -> None:
        t0, k = time.monotonic(), 0
        while (elapsed := time.monotonic() - t0) < seconds:
            while k < int(elapsed * rate):
                producer.produce(topic, VALUE, b"user%d" % (k % 50_000))
                k += 1
                if k % 200 == 0:
                    producer.poll(0)
            producer.poll(0)
            await asyncio.sleep(0.002)
        producer.flush(5.0)

    windows: dict[int, Window] = {}
    try:
        with quiet_gc():
            sending = asyncio.ensure_future(produce())
            t0 = time.monotonic()
            while not sending.done():
                batch = await consumer.getmany(timeout_ms=100)
                now_ms = time.time() * 1000
                w = windows.setdefault(int((time.monotonic() - t0) // WINDOW_S) * WINDOW_S, Window())
                w.calls += 1
                w.missing += PARTITIONS - sum(1 for records in batch.values() if records)
                w.ages_ms.extend(now_ms - r.timestamp for records in batch.values() for r in records)
                await asyncio.sleep(cycle_ms / 1000)
            await sending
    finally:
        await consumer.stop()
    return windows


def main() -> None:
    from benchmarks.e2e import make_topics
    from benchmarks.observe import load_average
    from streams.local import start_kafka

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=26_000, help="events/s")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--cycle-ms", type=float, default=30.0, help="pause between two getmany (a worker cycle)")
    parser.add_argument("--waits", default="5,50", help="fetch_max_wait_ms values, each on a topic of its own")
    args = parser.parse_args()
    kafka = start_kafka()
    try:
        for wait in (int(w) for w in args.waits.split(",")):
            topic = f"fetch-age-{int(time.time())}-w{wait}"
            make_topics(kafka.address, topic, "fa")
            print(f"fetch_max_wait_ms {wait}, {args.rate:.0f} events/s, load {load_average()}", flush=True)
            windows = asyncio.run(measure(kafka.address, topic, args.rate, args.seconds, args.cycle_ms, wait))
            for start, w in sorted(windows.items()):
                print(f"  {start:3d}-{start + WINDOW_S:3d} s: {w.row()}", flush=True)
    finally:
        kafka.stop()


if __name__ == "__main__":
    main()
