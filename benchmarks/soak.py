"""Soak: a bounded run at a steady rate with new users trickling in; is anything creeping up?

One ``churnwatch worker`` (event clock) consumes while this process produces ``rate`` events/s
for ``seconds`` of wall time. Event time runs ``SPEEDUP`` times faster than the wall clock (ten
minutes of wall time = ten days of event time), so users also go silent, come due for reviews,
turn at risk and churn during the run: the due index, the risk index and the alert path are
exercised, not only the event path. Population: ``initial_users`` active users; every wall second
``new_per_s`` new users join and ``leave_per_s`` active users stop for good (a few also cancel).

Every ``sample_s`` seconds: worker RSS and CPU, Redis ``used_memory``, users tracked (bucket
stats), consumer lag (the worker's ``churnwatch_consumer_lag_events``, and produced-and-acked
offsets minus Redis progress), alerts so far, broker RSS (Tansu keeps every event in memory:
~250 MB per 1M events, expected to grow). The run stops by itself: after ``seconds`` it stops
producing, waits (bounded) for the worker to catch up, takes a last sample and stops the worker.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from benchmarks.observe import cpu_seconds, metric_sum, rss_bytes, scrape, slope_per_minute
from streams.worker.keys import Keys

__all__ = ["Sample", "run_soak", "SPEEDUP"]

SPEEDUP = 1_440  # event-time seconds per wall second
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class Sample:
    t_s: float
    produced: int
    worker_rss_mb: float
    worker_cpu_s: float
    redis_used_mb: float
    users_tracked: int
    lag_metric_events: int
    lag_progress_events: int
    alerts: int
    broker_rss_mb: float


async def run_soak(
    *,
    bootstrap: str,
    redis_url: str,
    events_topic: str,
    worker_pid: int,
    metrics_port: int,
    broker_pid: int | None,
    rate: float,
    seconds: float,
    sample_s: float = 10.0,
    initial_users: int = 20_000,
    new_per_s: float = 20.0,
    leave_per_s: float = 15.0,
    buckets: int = 64,
    seed: int = 5,
) -> dict[str, Any]:
    """Produce, sample, stop; rows with the verdicts and every sample."""
    rng = random.Random(seed)
    keys = Keys("cw")
    client = aioredis.Redis.from_url(redis_url)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", max_batch_size=256 * 1024)
    await producer.start()
    active: list[str] = [f"soak-{i}" for i in range(initial_users)]
    next_user = initial_users
    acked: dict[int, int] = {}
    samples: list[Sample] = []
    produced = 0
    stop = asyncio.Event()
    t0 = time.monotonic()

    def on_ack(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        md = fut.result()
        if md.offset > acked.get(md.partition, -1):
            acked[md.partition] = md.offset

    async def progress_lag() -> int:
        raw = await client.hgetall(keys.progress(events_topic))
        prog = {int(k): int(v.split(b":", 1)[0]) for k, v in raw.items()}
        return sum(max(0, off - prog.get(p, -1)) for p, off in acked.items())

    async def users_tracked() -> int:
        pipe = client.pipeline(transaction=False)
        for b in range(buckets):
            pipe.hget(keys.stats(b), "users")
        return int(sum(int(v or 0) for v in await pipe.execute()))

    async def sample() -> Sample:
        try:
            metrics = await asyncio.to_thread(scrape, metrics_port)
        except OSError:
            metrics = {}
        info = await client.info("memory")
        return Sample(
            t_s=round(time.monotonic() - t0, 1),
            produced=produced,
            worker_rss_mb=round(rss_bytes(worker_pid) / 2**20, 1),
            worker_cpu_s=round(cpu_seconds(worker_pid), 1),
            redis_used_mb=round(int(info["used_memory"]) / 2**20, 2),
            users_tracked=await users_tracked(),
            lag_metric_events=int(metric_sum(metrics, "churnwatch_consumer_lag_events")),
            lag_progress_events=await progress_lag(),
            alerts=int(metric_sum(metrics, "churnwatch_alerts_total")),
            broker_rss_mb=round(rss_bytes(broker_pid) / 2**20, 1) if broker_pid else 0.0,
        )

    async def sampler() -> None:
        while not stop.is_set():
            s = await sample()
            samples.append(s)
            print(f"  soak t={s.t_s:>5.0f}s produced={s.produced:,} rss={s.worker_rss_mb} MB redis={s.redis_used_mb} MB "
                  f"users={s.users_tracked:,} lag={s.lag_metric_events}/{s.lag_progress_events} alerts={s.alerts:,}", flush=True)
            try:
                await asyncio.wait_for(stop.wait(), sample_s)
            except asyncio.TimeoutError:
                pass

    async def produce() -> None:
        nonlocal produced, next_user
        joined = left = 0.0
        pending: list[asyncio.Future[Any]] = []
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= seconds:
                break
            # population changes due by now
            while joined < elapsed * new_per_s:
                active.append(f"soak-{next_user}")
                next_user += 1
                joined += 1
            while left < elapsed * leave_per_s and len(active) > 1:
                i = rng.randrange(len(active))
                active[i] = active[-1]
                active.pop()
                left += 1
            ts = START_MS + int(elapsed * 1000 * SPEEDUP)
            target = int(elapsed * rate)
            while produced < target:
                i = rng.randrange(len(active))
                user = active[i]
                r = rng.random()
                body: dict[str, Any] = {"event_id": f"s{produced}", "user_id": user, "ts": ts,
                                        "properties": {"page": "/app/home", "session": produced // 7}}
                if r < 0.002:
                    body["type"] = "cancel"
                    active[i] = active[-1]
                    active.pop()
                elif r < 0.05:
                    body["type"] = "purchase"
                    body["amount"] = round(5 + rng.random() * 95, 2)
                else:
                    body["type"] = "view" if r < 0.65 else ("click" if r < 0.9 else "message")
                fut = await producer.send(events_topic, value=orjson.dumps(body), key=user.encode())
                fut.add_done_callback(on_ack)
                pending.append(fut)
                produced += 1
            if len(pending) > 20_000:
                pending = [f for f in pending if not f.done()]
            await asyncio.sleep(0.005)
        await producer.flush()
        await asyncio.gather(*pending, return_exceptions=True)

    sampling = asyncio.ensure_future(sampler())
    try:
        await produce()
        produce_s = time.monotonic() - t0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and await progress_lag() > 0:
            await asyncio.sleep(0.5)
        catch_up_s = time.monotonic() - t0 - produce_s
    finally:
        stop.set()
        await sampling
        samples.append(await sample())
        await producer.stop()
        await client.aclose()
    return _verdicts(samples, rate, produce_s, catch_up_s, produced, initial_users, next_user)


def _verdicts(samples: list[Sample], rate: float, produce_s: float, catch_up_s: float, produced: int,
              initial_users: int, users_created: int) -> dict[str, Any]:
    """Flat or not: slopes over the second half, Redis growth per new user, lag bounds."""
    during = [s for s in samples if s.t_s <= produce_s + 0.5]
    half = [s for s in during if s.t_s >= produce_s / 2]
    warm = next((s for s in during if s.t_s >= 60), during[0])
    last = samples[-1]
    rss_slope = slope_per_minute([(s.t_s, s.worker_rss_mb) for s in half])
    redis_growth = (last.redis_used_mb - warm.redis_used_mb) * 2**20
    user_growth = last.users_tracked - warm.users_tracked
    per_user_now = [(s.t_s, s.redis_used_mb * 2**20 / s.users_tracked) for s in half if s.users_tracked]
    lags = [s.lag_metric_events for s in during]
    plags = [s.lag_progress_events for s in during]
    rows: dict[str, Any] = {
        "target_events_per_s": round(rate),
        "achieved_events_per_s": round(produced / produce_s) if produce_s else 0,
        "produce_seconds": round(produce_s),
        "events": produced,
        "event_time_covered_days": round(produce_s * SPEEDUP / 86_400, 1),
        "users_created (initial + trickled in)": f"{users_created:,} ({initial_users:,} + {users_created - initial_users:,})",
        "users_tracked first sample -> last": f"{samples[0].users_tracked:,} -> {last.users_tracked:,}",
        "alerts": last.alerts,
        "worker_rss_mb at 1 min / end / max": f"{warm.worker_rss_mb} / {last.worker_rss_mb} / {max(s.worker_rss_mb for s in samples)}",
        "worker_rss_slope_mb_per_min (second half)": round(rss_slope, 2),
        "worker_cpu_share (cores busy while producing)": round((during[-1].worker_cpu_s - samples[0].worker_cpu_s) / produce_s, 2)
        if produce_s else None,
        "redis_used_mb at 1 min / end": f"{warm.redis_used_mb} / {last.redis_used_mb}",
        "redis_growth_bytes_per_new_user (from 1 min to end)": round(redis_growth / user_growth) if user_growth > 0 else None,
        "redis_bytes_per_tracked_user slope per min (second half)": round(slope_per_minute(per_user_now), 2),
        "consumer_lag_events (metric) max / at end of producing": f"{max(lags, default=0):,} / {lags[-1] if lags else 0:,}",
        "progress_lag_events max / at end of producing": f"{max(plags, default=0):,} / {plags[-1] if plags else 0:,}",
        "max_lag_seconds_of_input (progress lag / rate)": round(max(plags, default=0) / rate, 2) if rate else None,
        "catch_up_after_producing_s": round(catch_up_s, 1),
        "broker_rss_mb first -> last (Tansu keeps all events)": f"{samples[0].broker_rss_mb} -> {last.broker_rss_mb}",
        "samples": [asdict(s) for s in samples],
    }
    return rows
