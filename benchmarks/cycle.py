"""The fixed cost of a worker cycle: ``Pipeline.process`` in-process at a few batch sizes, in CPU time.

Why in-process and in CPU time: at half of the max rate a worker runs cycles of a few hundred
records, so what a cycle costs whatever its size (script calls, packing, round trips) decides
whether it keeps up; the end-to-end latency section measures the outcome but, on a shared
machine, its wall times mostly measure the neighbours. Here the worker's own cycle code runs
against the real broker (its ``KafkaSink``) and the real valkey, fed batches of the latency
section's events (event time = wall time, 50k users, ``--clock live``) over 8 partitions, and
what is counted is the worker thread's CPU time (``time.thread_time``) and the Redis server's
(``INFO cpu``) per cycle, and Redis commands per cycle (``INFO commandstats``: its times are
elapsed, so on a busy box they include waits for a core; the scripts' time includes their
commands', and the rest is the scripts' own Lua work: decoding and cutting arguments, keys). A straight line
through the sizes splits each into a fixed part per cycle and a part per record.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any, Sequence

import orjson
import redis as redis_lib
from kafka.partitioner.default import murmur2

from benchmarks.observe import flush_sync
from models.model import load_model
from streams.settings import Settings

__all__ = ["Record", "measure_cycles", "fit_line"]

PARTITIONS = 8
_NOT_STATE = frozenset({"evalsha", "info", "config|resetstat"})  # commandstats rows that are not the cycle's state work
POOL_USERS = 50_000  # as benchmarks.latency
WARM_RECORDS = 150_000  # every user of the pool seen a few times, as after the latency section's first level


@dataclass
class Record:
    """A consumer record as the pipeline reads it (aiokafka's ConsumerRecord fields it uses)."""

    offset: int
    key: bytes
    value: bytes
    timestamp: int = 0


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``y = a + b x``: (a, b).

    >>> fit_line([(1, 3), (2, 5), (4, 9)])
    (1.0, 2.0)
    """
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return round(my - b * mx, 6), round(b, 6)


def measure_cycles(bootstrap: str, redis_url: str, sizes: Sequence[int] = (200, 400, 1600), cycles: int = 60) -> dict[str, Any]:
    """Rows for RESULTS.md (see the module docstring)."""
    return asyncio.run(_measure(bootstrap, redis_url, sizes, cycles))


async def start_pipeline(bootstrap: str, redis_url: str, prefix: str, **settings: Any) -> tuple[Any, Any, Any]:
    """A worker's store, sink and pipeline on a fresh topic ``<prefix>-<seconds>`` (8 partitions),
    as the worker process builds them: the in-process benchmarks' one setup (stop the sink and
    close the store when done)."""
    from streams.worker.consumer import KafkaSink
    from streams.worker.pipeline import Pipeline
    from streams.worker.store import Store
    from streams.worker.topics import ensure_topics

    topic = f"{prefix}-{int(time.time())}"
    cfg = Settings(kafka_bootstrap_servers=bootstrap, redis_url=redis_url, topic_events=topic,
                   topic_alerts=topic + "-alerts", topic_dlq=topic + "-dlq", partitions=PARTITIONS, **settings)
    ensure_topics(cfg)
    store, sink = Store(cfg), KafkaSink(cfg)
    await store.connect()
    await sink.start()
    return store, sink, Pipeline(cfg, store, sink, load_model(cfg.model_path or None))


def redis_cpu(client: Any) -> float:
    """Redis' own CPU seconds so far (user + system)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def _measure(bootstrap: str, redis_url: str, sizes: Sequence[int], cycles: int) -> dict[str, Any]:
    from streams.worker.service import _tune_gc

    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    thresholds = gc.get_threshold()
    _tune_gc()  # as the worker process runs
    store, sink, pipeline = await start_pipeline(bootstrap, redis_url, "bench-cycle", clock="live")
    feed = _Feed(pipeline, int(time.time() * 1000))
    rows: dict[str, Any] = {}
    points_worker, points_redis = [], []
    try:
        while feed.k < WARM_RECORDS:
            await feed.cycle(5_000)
        for n in sizes:
            for _ in range(5):
                await feed.cycle(n)
            cmd0, cpu0 = client.info("commandstats"), redis_cpu(client)
            t0 = time.thread_time()
            for _ in range(cycles):
                await feed.cycle(n)
            worker_ms = 1000 * (time.thread_time() - t0) / cycles
            redis_ms = 1000 * (redis_cpu(client) - cpu0) / cycles
            cmd1 = client.info("commandstats")
            calls = {k.removeprefix("cmdstat_"): (v["calls"] - cmd0.get(k, {}).get("calls", 0)) / cycles for k, v in cmd1.items()}
            points_worker.append((n, worker_ms))
            points_redis.append((n, redis_ms))
            rows[f"{n} records a cycle: worker CPU ms / Redis CPU ms per cycle"] = f"{worker_ms:.2f} / {redis_ms:.2f}"
            rows[f"{n} records a cycle: script calls (EVALSHA) / HGET / HSET per cycle"] = (
                f"{calls.get('evalsha', 0):.1f} / {calls.get('hget', 0):.0f} / {calls.get('hset', 0):.0f}")
            inner = sum(c for name, c in calls.items() if name not in _NOT_STATE)
            rows[f"{n} records a cycle: Redis commands per record (inside the scripts too) / ZADD per record"] = (
                f"{inner / n:.2f} / {calls.get('zadd', 0) / n:.2f}")
            usec = {k.removeprefix("cmdstat_"): (v["usec"] - cmd0.get(k, {}).get("usec", 0)) / cycles / n for k, v in cmd1.items()}
            rows[f"{n} records a cycle: Redis us per record in scripts / in their commands (HGET, HSET, ZADD, HMGET)"] = (
                f"{usec.get('evalsha', 0):.2f} / {sum(usec.get(c, 0) for c in ('hget', 'hset', 'zadd', 'hmget')):.2f} "
                f"({', '.join(f'{usec.get(c, 0):.2f}' for c in ('hget', 'hset', 'zadd', 'hmget'))})")
    finally:
        await sink.stop()
        await store.close()
        client.close()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    for name, points in (("worker", points_worker), ("Redis", points_redis)):
        fixed, per = fit_line(points)
        rows[f"{name} CPU: fixed ms per cycle, us per record (line through the sizes)"] = f"{fixed:.2f}, {1000 * per:.1f}"
    return rows


class _Feed:
    """Batches of the latency section's events, partitioned as the producer's murmur2 would."""

    def __init__(self, pipeline: Any, start_ms: int) -> None:
        self.pipeline = pipeline
        self.k = 0
        self.offsets = [0] * PARTITIONS
        for p in range(PARTITIONS):
            pipeline.assign(p, None, start_ms)

    async def cycle(self, n: int) -> None:
        now = int(time.time() * 1000)
        batch: dict[int, list[Record]] = {}
        for _ in range(n):
            user = f"lat-u{(self.k * 7919) % POOL_USERS}"
            value = orjson.dumps({"event_id": f"c-{self.k}", "user_id": user, "type": "view" if self.k % 3 else "click",
                                  "ts": now, "properties": {"page": "/app/home"}})
            self.k += 1
            key = user.encode()
            p = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
            batch.setdefault(p, []).append(Record(self.offsets[p], key, value, now))
            self.offsets[p] += 1
        for p in range(PARTITIONS):
            self.pipeline.clock.observe_fetch(p, len(batch.get(p, ())), True, now)
        await self.pipeline.process(batch, now)
