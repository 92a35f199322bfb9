"""End-to-end throughput: real ``churnwatch worker`` processes draining a topic filled in advance.

What is timed: from the first partition progress the workers write to Redis (the first batch is
done) to the moment Redis progress reaches the last produced offset of every partition (every
state written). Worker start-up (imports, Faust boot, group join: a few seconds on Tansu) is
reported apart, and the events of the first batch are not counted in the rate, so the figure is
the steady draining speed. Workers are started the way the tests start them (tests.harness).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_lib

from benchmarks.observe import CpuClock, histogram_mean, metric_sum, rss_bytes, scrape, wait_until, flush_sync
from benchmarks.pyspy import Profiler, summarise
from streams.worker.topics import ensure_topics
from streams.settings import Settings
from streams.worker.store import StoreReader
from tests.harness import Worker, read_progress

__all__ = ["Topics", "make_topics", "drain", "start_ready", "users_tracked"]

_REVOKED = re.compile(r"partitions revoked: \[(\d)")


@dataclass(frozen=True)
class Topics:
    """The names a worker needs, in tests.harness.Worker's shape."""

    events: str
    alerts: str
    dlq: str
    group: str

    def as_dict(self) -> dict[str, str]:
        return {"events": self.events, "alerts": self.alerts, "dlq": self.dlq, "group": self.group}


def make_topics(bootstrap: str, events: str, tag: str, partitions: int = 8) -> Topics:
    """Alerts/DLQ topics and a group of their own for one run over ``events`` (created up front,
    so two workers starting together do not race to create them)."""
    t = Topics(events, f"{events}-alerts-{tag}", f"{events}-dlq-{tag}", f"bench-{events}-{tag}")
    ensure_topics(Settings(kafka_bootstrap_servers=bootstrap, topic_events=t.events, topic_alerts=t.alerts,
                           topic_dlq=t.dlq, partitions=partitions))
    return t


def users_tracked(redis_url: str, prefix: str = "cw") -> int:
    """Users with state in Redis, from the bucket stats the workers keep."""
    with StoreReader(Settings(redis_url=redis_url, key_prefix=prefix)) as reader:
        return reader.users_tracked()


@dataclass
class _Run:
    first_t: float | None = None
    first_done: int = 0
    end_t: float | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)


def drain(
    *,
    bootstrap: str,
    redis_url: str,
    topics: Topics,
    last_offsets: dict[int, int],
    workers: int,
    logdir: Path,
    service_pids: dict[str, int],
    profile_to: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Start ``workers`` workers on a clean Redis, wait until they applied every offset; figures."""
    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    baseline_memory = int(client.info("memory")["used_memory"])
    total = sum(off + 1 for off in last_offsets.values())
    procs = [
        Worker(bootstrap, redis_url, topics.as_dict(), logdir / f"{topics.group}-w{i}.log", env=dict(env or {})).start()
        for i in range(workers)
    ]
    spawn_t = time.monotonic()
    run = _Run()
    cpu: CpuClock | None = None
    profiler: Profiler | None = None
    try:
        while True:
            now = time.monotonic()
            progress = read_progress(redis_url, topics.events)
            done = sum(min(progress.get(p, -1), last) + 1 for p, last in last_offsets.items())
            if run.first_t is None and done > 0:
                run.first_t, run.first_done = now, done
                pids = {f"worker{i}": w.proc.pid for i, w in enumerate(procs) if w.proc is not None}
                cpu = CpuClock({**pids, **service_pids}).start()
                if profile_to is not None and procs[0].proc is not None:
                    profiler = Profiler(procs[0].proc.pid, profile_to).start()
            if run.first_t is not None:
                run.samples.append((now - run.first_t, done))
            if done >= total:
                run.end_t = now
                break
            for w in procs:
                if w.proc is not None and w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {w.proc.returncode}:\n{w.output()[-3000:]}")
            if now - spawn_t > timeout_s:
                raise RuntimeError(f"workers applied {done} of {total} events in {timeout_s:.0f} s")
            time.sleep(0.025)
        used = cpu.stop() if cpu is not None else {}
        if profiler is not None:
            profiler.stop()
        scraped = [scrape(w.metrics_port) for w in procs]
        rss = [rss_bytes(w.proc.pid) for w in procs if w.proc is not None]
        users = users_tracked(redis_url)
        used_memory = int(client.info("memory")["used_memory"])
    finally:
        if profiler is not None:
            profiler.stop()
        for w in procs:
            w.stop()
        client.close()
    assert run.first_t is not None and run.end_t is not None
    seconds = run.end_t - run.first_t
    counted = total - run.first_done
    rate = counted / seconds if seconds > 0 else float("nan")
    worker_cpu = sum(v for k, v in used.items() if k.startswith("worker"))
    rebalances = sum(len(_REVOKED.findall(w.output())) for w in procs)
    rows: dict[str, Any] = {
        "workers": workers,
        "events": total,
        "users_tracked": users,
        "startup_s (spawn -> first batch written)": round(run.first_t - spawn_t, 2),
        "seconds (first batch written -> last state written)": round(seconds, 2),
        "events_per_s": round(rate),
        "events_per_s_per_worker": round(rate / workers),
        "worker_cpu_s": round(worker_cpu, 2),
        "events_per_worker_cpu_s": round(counted / worker_cpu) if worker_cpu else None,
        "worker_cpu_share (cores busy)": round(worker_cpu / seconds, 2) if seconds else None,
    }
    if cpu is not None and cpu.waited is not None and seconds:
        waited = sum(v for k, v in cpu.waited.items() if k.startswith("worker"))
        rows["worker_runqueue_share (runnable, waiting for a core)"] = round(waited / seconds / workers, 2)
        # What is left is waiting for I/O (Redis, broker acks, fetches): the overlapped cycle
        # (CHURNWATCH_PIPELINE_DEPTH=2) exists to shrink it. On a shared box the wall-clock rate
        # measures the neighbours too; this share does not, nor (roughly) the rate without the
        # waits for a core, which assumes those waits would simply vanish on a quiet box.
        rows["worker_busy_or_runnable_share (1 - waiting for I/O)"] = round((worker_cpu + waited) / seconds / workers, 2)
        if waited < seconds * workers:
            rows["events_per_s without the waits for a core (estimate)"] = round(counted / (seconds - waited / workers))
    for name in ("redis", "kafka"):
        if name in used:
            rows[f"{name}_cpu_s"] = round(used[name], 2)
            rows[f"events_per_{name}_cpu_s"] = round(counted / used[name]) if used[name] else None
    batch_size = [histogram_mean(s, "churnwatch_batch_size_events") for s in scraped]
    batch_s = [histogram_mean(s, "churnwatch_batch_seconds") for s in scraped]
    rows["batch_mean_records"] = round(_mean(batch_size) or 0)
    rows["batch_mean_ms"] = round((_mean(batch_s) or 0) * 1000, 1)
    for op in ("read", "write", "progress"):
        ms = _mean([histogram_mean(s, "churnwatch_redis_seconds", op=op) for s in scraped])
        rows[f"redis_{op}_mean_ms"] = round(ms * 1000, 2) if ms is not None else None
    rows["alerts"] = int(sum(metric_sum(s, "churnwatch_alerts_total") for s in scraped))
    rows["rejected"] = int(sum(metric_sum(s, "churnwatch_events_rejected_total") for s in scraped))
    rows["partitions_per_worker"] = [int(metric_sum(s, "churnwatch_partitions_assigned")) for s in scraped]
    rows["rebalances_seen (non-empty revocations)"] = rebalances
    rows["worker_rss_mb"] = [round(r / 2**20) for r in rss]
    rows["redis_used_memory_mb"] = round(used_memory / 2**20, 1)
    rows["redis_bytes_per_user (used_memory growth / users)"] = round((used_memory - baseline_memory) / users) if users else None
    if profiler is not None and profile_to is not None and profile_to.exists():
        rows["profile"] = summarise(profile_to)
    return rows


def _mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def start_ready(bootstrap: str, redis_url: str, topics: Topics, log_path: Path, env: dict[str, str] | None = None,
                partitions: int = 8, timeout_s: float = 60.0) -> Worker:
    """One worker, returned once it owns every partition (its /metrics says so)."""
    worker = Worker(bootstrap, redis_url, topics.as_dict(), log_path, env=dict(env or {})).start()

    def ready() -> bool:
        if worker.proc is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.proc.returncode}:\n{worker.output()[-3000:]}")
        return metric_sum(scrape(worker.metrics_port), "churnwatch_partitions_assigned") >= partitions

    try:
        wait_until(ready, timeout_s, what="worker owning every partition")
    except BaseException:
        worker.stop()
        raise
    return worker
