"""The e2e sections' workloads through the worker's cycle in-process, in CPU time per event.

Why: the e2e section's review-heavy figure is a wall-clock rate of a worker subprocess on a
shared box; to find and check what a review costs, this runs the same events (``make_events``,
every event a review) through ``Pipeline.process`` in this process, against a real valkey and a
real Tansu broker (its ``KafkaSink``), in batches of ``batch`` records over 8 partitions as a
``getmany`` would give them, and counts this thread's CPU time (``time.thread_time``) per event,
and the Redis server's (``INFO cpu``) and its commands (``INFO commandstats``) per event.
Run it under ``py-spy record --native -- python -m benchmarks.review_cycle`` for a profile.
``--workload realistic`` runs the e2e1 section's simulated sessions (``simulated_records``) instead.
``.venv/bin/python -m benchmarks.review_cycle [--events 500000] [--users 100000] [--workload realistic]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import Any

import redis as redis_lib
from kafka.partitioner.default import murmur2

from benchmarks.cycle import PARTITIONS, Record, redis_cpu, start_pipeline
from benchmarks.observe import flush_sync
from benchmarks.run import WORKLOADS, make_events, simulated_records
from models._native import active

__all__ = ["measure"]


def _batches(records: list[tuple[str, bytes]], size: int) -> list[dict[int, list[Record]]]:
    offsets = [0] * PARTITIONS
    out: list[dict[int, list[Record]]] = []
    for i in range(0, len(records), size):
        batch: dict[int, list[Record]] = {}
        for user, value in records[i:i + size]:
            key = user.encode()
            p = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
            batch.setdefault(p, []).append(Record(offsets[p], key, value))
            offsets[p] += 1
        out.append(batch)
    return out


def measure(bootstrap: str, redis_url: str, events: int, users: int, batch: int = 10_000,
            workload: str = "review_heavy") -> dict[str, Any]:
    records = simulated_records(events, users) if workload == "realistic" else make_events(events, users)
    return asyncio.run(_measure(bootstrap, redis_url, records, users, batch)) | {"workload": workload}


async def _measure(bootstrap: str, redis_url: str, records: list[tuple[str, bytes]], users: int, batch: int) -> dict[str, Any]:
    from streams.worker.service import _tune_gc

    events = len(records)
    batches = _batches(records, batch)
    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    _tune_gc()
    store, sink, pipeline = await start_pipeline(bootstrap, redis_url, "bench-reviews")
    now = int(time.time() * 1000)
    for p in range(PARTITIONS):
        pipeline.assign(p, None, now)
    client.config_resetstat()
    cpu0, t0, w0 = redis_cpu(client), time.thread_time(), time.perf_counter()
    alerts = users_advanced = 0
    try:
        for k, b in enumerate(batches):
            last = k == len(batches) - 1
            for p in range(PARTITIONS):
                pipeline.clock.observe_fetch(p, len(b.get(p, ())), last, now)
            res = await pipeline.process(b, now)
            alerts += sum(res.alerts.values())
            users_advanced += res.users
        worker_s, wall_s = time.thread_time() - t0, time.perf_counter() - w0
        redis_s = redis_cpu(client) - cpu0
        stats = client.info("commandstats")
    finally:
        await sink.stop()
        await store.close()
        client.close()
        gc.unfreeze()
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    inner = sum(c for name, c in calls.items() if name not in ("evalsha", "info", "config|resetstat"))
    return {
        "core": active(), "events": events, "users": users, "batch": batch, "alerts": alerts,
        "users_advanced": users_advanced,
        "worker_cpu_us_per_event": round(1e6 * worker_s / events, 2),
        "worker_events_per_cpu_s": round(events / worker_s),
        "redis_cpu_us_per_event": round(1e6 * redis_s / events, 2),
        "redis_commands_per_event (inside scripts)": round(inner / events, 2),
        "script_calls": calls.get("evalsha", 0),
        "commands_per_event": {k: round(v / events, 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v >= events / 100},
        # Redis' own time per command (the scripts' usec include the commands they call)
        "redis_command_us_per_event": {k.removeprefix("cmdstat_"): round(v["usec"] / events, 2)
                                       for k, v in sorted(stats.items(), key=lambda kv: -kv[1]["usec"]) if v["usec"] >= events / 100},
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    from streams.local import services

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000, help="records a cycle (a getmany)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="review_heavy")
    args = parser.parse_args()
    with services(use_env=False) as svc:
        print(json.dumps(measure(svc.kafka.address, svc.redis.address, args.events, args.users, args.batch, args.workload), indent=1))


if __name__ == "__main__":
    main()
