"""Redis CPU per event of a worker's cycles, split by operation (read / write / progress) and by command.

Why in-process with a quiet Redis: in the e2e sections Redis shares its two cores with the
worker, Tansu and the producer, and its CPU is one number for reads and writes together. Here a
worker's ``Pipeline`` (one cycle in flight, ``pipeline_depth=1``, so each Redis round trip runs
alone) is fed the throughput sections' events (realistic or review-heavy, cut into cycles of
10k records as a draining worker's batches) against a fresh valkey, alerts going nowhere (no
broker: the Redis work is the same), and around every round trip ``INFO cpu`` and
``INFO commandstats`` say what Redis spent on it. Commands a script runs count under their own
name in commandstats, so ``evalsha`` less its commands is the scripts' own Lua work. The worker's
own CPU (this process, less the ``INFO`` calls around each round trip) is given per event too.
``--capture`` keeps every round trip's commands for ``benchmarks.redis_replay``.

``python -m benchmarks.redis_write [--workload realistic|review_heavy] [--events N] [--users N] [--days D] [--erased N]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Sequence

import redis as redis_lib
from kafka.partitioner.default import murmur2

from benchmarks.cycle import PARTITIONS, Record, redis_cpu
from benchmarks.observe import flush_sync, load_average

__all__ = ["measure"]


class _NullSink:
    """Alerts and DLQ records go nowhere (this measures Redis)."""

    async def send_all(self, topic: str, records: Sequence[Any]) -> None:
        return None

    async def stop(self) -> None:
        return None


def _records(workload: str, n: int, users: int, days: int = 5) -> list[tuple[str, bytes]]:
    from benchmarks.run import make_events, simulated_records

    return simulated_records(n, users, days=days) if workload == "realistic" else make_events(n, users)


async def _measure(redis_url: str, workload: str, n: int, users: int, cycle: int, capture: str = "",
                   days: int = 5, erased: int = 0) -> dict[str, Any]:
    from models.model import load_model
    from streams.settings import Settings
    from streams.worker.pipeline import Pipeline
    from streams.worker.store import Store

    records = _records(workload, n, users, days)
    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    cfg = Settings(redis_url=redis_url, topic_events="rw", topic_alerts="rw-alerts", topic_dlq="rw-dlq",
                   partitions=PARTITIONS, pipeline_depth=1)
    store = Store(cfg)
    await store.connect()
    if erased:  # users erased before the run (none of the workload's): every script then checks its users
        from streams.worker.erase import erase_users

        await erase_users(store.client, store.keys, [f"erased-{i}" for i in range(erased)])
    pipeline = Pipeline(cfg, store, _NullSink(), load_model(None))  # type: ignore[arg-type]
    start_ms = int(time.time() * 1000)
    for p in range(PARTITIONS):
        pipeline.assign(p, None, start_ms)
    cpu: dict[str, float] = {}
    cmds: dict[str, dict[str, float]] = {}
    run = store._run

    captured: list[tuple[str, list[tuple[Any, ...]]]] = []  # (op, its round trip's commands), in order

    overhead = [0.0]  # this process' CPU in the INFO calls (not the worker's)

    async def timed(op: str, build: Any) -> list[Any]:  # each round trip alone (pipeline_depth=1)
        if capture:
            from streams.worker.store import _Calls

            calls = _Calls()
            build(calls)
            names = {sha: name for name, sha in store._sha.items()}
            captured.append((op, [(c[0], names.get(c[1], c[1]), *c[2:]) if c[0] == "EVALSHA" else c for c in calls]))
        t0 = time.process_time()
        c0, s0 = redis_cpu(client), client.info("commandstats")
        overhead[0] += time.process_time() - t0
        try:
            return await run(op, build)
        finally:
            t0 = time.process_time()
            c1, s1 = redis_cpu(client), client.info("commandstats")
            cpu[op] = cpu.get(op, 0.0) + c1 - c0
            per = cmds.setdefault(op, {})
            for k, v in s1.items():
                name = k.removeprefix("cmdstat_")
                if name in ("info",):
                    continue
                d_calls = v["calls"] - s0.get(k, {}).get("calls", 0)
                d_usec = v["usec"] - s0.get(k, {}).get("usec", 0)
                if d_calls:
                    per[name + ".calls"] = per.get(name + ".calls", 0) + d_calls
                    per[name + ".usec"] = per.get(name + ".usec", 0) + d_usec
            overhead[0] += time.process_time() - t0

    store._run = timed  # type: ignore[method-assign]
    tally: dict[str, int] = {}
    write = store.write

    async def counted(writes: Sequence[Any], token: str, progress: Any = None) -> Any:
        from streams.worker.store import UNCHANGED

        for w in writes:
            for s in w.states:
                tally["states"] = tally.get("states", 0) + 1
                for name, v in (("due", s.due_s), ("risk", s.risk), ("reach", s.reach)):
                    what = "unchanged" if v == UNCHANGED else "remove" if (v is None or v == 0 or s.blob is None) else "set"
                    tally[f"{name} {what}"] = tally.get(f"{name} {what}", 0) + 1
            tally["alert entries"] = tally.get("alert entries", 0) + len(w.alerts)
            tally["stats fields"] = tally.get("stats fields", 0) + len(w.stats)
            tally["bucket writes"] = tally.get("bucket writes", 0) + 1
        return await write(writes, token, progress)

    store.write = counted  # type: ignore[method-assign]
    offsets = [0] * PARTITIONS
    cpu0 = time.process_time()
    try:
        for i in range(0, len(records), cycle):
            batch: dict[int, list[Record]] = {}
            for user, value in records[i:i + cycle]:
                key = user.encode()
                p = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
                batch.setdefault(p, []).append(Record(offsets[p], key, value, 0))
                offsets[p] += 1
            now = int(time.time() * 1000)
            for p in range(PARTITIONS):
                pipeline.clock.observe_fetch(p, len(batch.get(p, ())), False, now)
            await pipeline.process(batch, now)
        worker_s = time.process_time() - cpu0 - overhead[0]
        mem = int(client.info("memory")["used_memory"])
        if capture:
            import pickle

            with open(capture, "wb") as f:
                pickle.dump({"incarnation": store.incarnation, "buckets": store.buckets, "rounds": captured}, f)
        users_tracked = int((await store.stats()).get("users", 0))
    finally:
        await store.close()
        client.close()
    rows: dict[str, Any] = {"workload": workload, "events": len(records), "users": users_tracked,
                            "redis_bytes_per_user": round(mem / users_tracked) if users_tracked else None}
    rows["worker CPU us per event"] = round(1e6 * worker_s / len(records), 3)
    rows["per event: " + ", ".join(tally)] = ", ".join(f"{v / len(records):.3f}" for v in tally.values())
    for op, s in sorted(cpu.items()):
        rows[f"{op}: Redis CPU us per event"] = round(1e6 * s / len(records), 3)
    total = sum(cpu.values())
    rows["all: Redis CPU us per event"] = round(1e6 * total / len(records), 3)
    rows["events per Redis CPU-second"] = round(len(records) / total) if total else None
    for op, per in sorted(cmds.items()):
        names = sorted({k.rsplit(".", 1)[0] for k in per}, key=lambda c: -per[c + ".usec"])
        rows[f"{op}: commands (calls per event, us per event)"] = ", ".join(
            f"{c} {per[c + '.calls'] / len(records):.3f} {per[c + '.usec'] / len(records):.3f}" for c in names)
    return rows


def measure(redis_url: str, workload: str = "realistic", n: int = 500_000, users: int = 100_000, cycle: int = 10_000,
            capture: str = "", days: int = 5, erased: int = 0) -> dict[str, Any]:
    return asyncio.run(_measure(redis_url, workload, n, users, cycle, capture, days, erased))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="realistic", choices=("realistic", "review_heavy"))
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--cycle", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=5, help="days of the simulated population (realistic workload)")
    ap.add_argument("--redis", default="", help="a valkey to use (default: start one)")
    ap.add_argument("--erased", type=int, default=0, help="erase this many users (not in the workload) first: "
                    "the cost of the erased-set checks (streams.worker.erase)")
    ap.add_argument("--capture", default="", help="pickle every round trip's commands to this file (benchmarks.redis_replay)")
    args = ap.parse_args()
    from streams.local import start_redis

    server = None if args.redis else start_redis()
    url = args.redis or server.address  # type: ignore[union-attr]
    try:
        print(f"load {load_average()}")
        for k, v in measure(url, args.workload, args.events, args.users, args.cycle, args.capture, args.days, args.erased).items():
            print(f"  {k}: {v}")
        print(f"load {load_average()}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
