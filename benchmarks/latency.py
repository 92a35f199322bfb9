"""Latency at a steady produce rate: ingest -> state written, and ingest -> alert published.

One ``churnwatch worker --clock live`` runs while this process produces events at a fixed rate
with event time = wall time. Each event carries its send time (``properties.sent_ms``, taken just
before ``producer.send``; linger 5 ms, acks=all), and every acknowledged offset is remembered
with that send time. How each latency is measured:

- **ingest -> state updated**: a poller reads the partition progress hash in Redis every ~5 ms
  (the worker writes it right after the fenced state writes of a batch). When partition p's
  progress moves from offset a to b at poll time t, every offset in (a, b] has its state written
  by t, so its latency is ``t - sent_ms``. This over-states by at most one poll interval (the
  largest interval seen is reported) and includes the progress write itself.
- **ingest -> alert published**: about 1% of the events are ``cancel`` events of users who sent a
  ``view`` at least a second earlier; the cancel turns the user churned at once, so the worker
  publishes a ``stage_changed`` alert for that user in the cycle that reads the cancel. Latency
  = the alert record's Kafka timestamp (CreateTime, set by the worker's producer when it sends
  the alert, before the broker ack and before the state write) - the cancel's ``sent_ms``. Also
  reported: when a CRM-like consumer (``fetch_max_wait_ms=5``) *received* it, which adds the
  broker ack and the consumer's fetch.

All clocks are this machine's ``time.time()`` (one host, so send and alert timestamps compare).
The first ``warmup_s`` of each rate are left out (the worker's batch size settles to the rate).
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from benchmarks.observe import summary_ms

__all__ = ["LevelResult", "measure_level"]

LINGER_MS = 5
POLL_S = 0.005
CANCEL_EVERY = 100  # one cancel user per this many events
CANCEL_AFTER_MS = 1_000
POOL_USERS = 50_000


def _now_ms() -> float:
    return time.time_ns() / 1e6


@dataclass
class LevelResult:
    target_rate: float
    sent: int = 0
    seconds: float = 0.0
    state_ms: list[float] = field(default_factory=list)
    alert_created_ms: list[float] = field(default_factory=list)
    alert_received_ms: list[float] = field(default_factory=list)
    cancels: int = 0
    max_poll_gap_ms: float = 0.0
    mean_poll_gap_ms: float = 0.0

    def rows(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target_events_per_s": round(self.target_rate),
            "achieved_events_per_s": round(self.sent / self.seconds) if self.seconds else 0,
            "events": self.sent,
        }
        for name, values in (("state", self.state_ms), ("alert", self.alert_created_ms),
                             ("alert_received", self.alert_received_ms)):
            for k, v in summary_ms(values).items():
                out[f"{name}_{k}"] = v
        out["cancel_users"] = self.cancels
        out["progress_poll_gap_ms (mean / max)"] = f"{self.mean_poll_gap_ms:.1f} / {self.max_poll_gap_ms:.1f}"
        return out


async def measure_level(
    bootstrap: str,
    redis_url: str,
    events_topic: str,
    alerts_topic: str,
    rate: float,
    seconds: float,
    warmup_s: float,
    tag: str,
    progress_key: str,
    partitions: int = 8,
) -> LevelResult:
    """Produce ``rate`` events/s for ``seconds`` and measure both latencies (see module doc)."""
    result = LevelResult(rate)
    sent_at: dict[int, dict[int, float]] = collections.defaultdict(dict)  # p -> offset -> sent_ms
    cancel_sent: dict[str, float] = {}
    changes: list[tuple[int, int, int, float]] = []  # (p, from, to, poll time)
    alerts: list[tuple[str, int, float]] = []  # (user, kafka timestamp, received)
    last_acked: dict[int, int] = {}
    stop = asyncio.Event()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=LINGER_MS, acks="all", max_batch_size=256 * 1024)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=5)
    client = aioredis.Redis.from_url(redis_url)
    await producer.start()
    await consumer.start()
    tps = [TopicPartition(alerts_topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)  # resolve the seek now, before any alert of this level exists

    def remember(sent_ms: float) -> Any:
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                return
            md = fut.result()
            sent_at[md.partition][md.offset] = sent_ms
            if md.offset > last_acked.get(md.partition, -1):
                last_acked[md.partition] = md.offset
        return done

    async def send_all() -> None:
        pending: collections.deque[tuple[str, float]] = collections.deque()  # cancel users waiting
        futures: list[asyncio.Future[Any]] = []
        t0 = time.monotonic()
        k = 0
        n_cancel = 0
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= seconds:
                break
            target = int(elapsed * rate)
            while k < target:
                now = _now_ms()
                ts = int(now)
                if k % CANCEL_EVERY == 0:
                    user = f"lat-{tag}-c{k}"
                    kind = "view"
                    pending.append((user, now))
                elif k % CANCEL_EVERY == CANCEL_EVERY // 2 and pending and pending[0][1] <= now - CANCEL_AFTER_MS:
                    user = pending.popleft()[0]
                    kind = "cancel"
                    cancel_sent[user] = now
                    n_cancel += 1
                else:
                    user = f"lat-u{(k * 7919) % POOL_USERS}"
                    kind = "view" if k % 3 else "click"
                value = orjson.dumps({"event_id": f"{tag}-{k}", "user_id": user, "type": kind, "ts": ts,
                                      "properties": {"sent_ms": round(now, 3), "page": "/app/home"}})
                fut = await producer.send(events_topic, value=value, key=user.encode())
                fut.add_done_callback(remember(now))
                futures.append(fut)
                k += 1
                if k % 200 == 0:
                    await asyncio.sleep(0)  # let the progress poller and the alert reader run
            if len(futures) > 20_000:
                futures = [f for f in futures if not f.done()]
            await asyncio.sleep(0.002)
        await producer.flush()
        await asyncio.gather(*futures, return_exceptions=True)
        result.sent = k
        result.seconds = time.monotonic() - t0
        result.cancels = n_cancel

    async def poll_progress(seen: dict[int, int]) -> None:
        gaps: list[float] = []
        prev = None
        while not stop.is_set():
            raw = await client.hgetall(progress_key)
            t = _now_ms()
            if prev is not None:
                gaps.append(t - prev)
            prev = t
            for k, v in raw.items():
                p = int(k)
                off = int(v.split(b":", 1)[0])
                if off > seen.get(p, -1):
                    changes.append((p, seen.get(p, -1), off, t))
                    seen[p] = off
            await asyncio.sleep(POLL_S)
        result.max_poll_gap_ms = max(gaps, default=0.0)
        result.mean_poll_gap_ms = sum(gaps) / len(gaps) if gaps else 0.0

    async def read_alerts() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            t = _now_ms()
            for records in batch.values():
                for rec in records:
                    body = orjson.loads(rec.value)
                    alerts.append((str(body.get("user_id")), rec.timestamp, t))

    async def caught_up(timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            raw = await client.hgetall(progress_key)
            prog = {int(k): int(v.split(b":", 1)[0]) for k, v in raw.items()}
            if all(prog.get(p, -1) >= off for p, off in last_acked.items()):
                return
            await asyncio.sleep(0.05)

    # where each partition stands before this level: earlier offsets are not ours
    start = {int(k): int(v.split(b":", 1)[0]) for k, v in (await client.hgetall(progress_key)).items()}
    poller = asyncio.ensure_future(poll_progress(start))
    reader = asyncio.ensure_future(read_alerts())
    t_start_ms = _now_ms()
    try:
        await send_all()
        await caught_up(60.0)
        await asyncio.sleep(1.0)  # alerts of the last batch
    finally:
        stop.set()
        await asyncio.gather(poller, reader, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
        await client.aclose()

    cutoff = t_start_ms + warmup_s * 1000
    for p, a, b, t in changes:
        offs = sent_at.get(p, {})
        for off in range(a + 1, b + 1):
            s = offs.get(off)
            if s is not None and s >= cutoff:
                result.state_ms.append(t - s)
    first: set[str] = set()
    for user, ts, received in alerts:  # at-least-once: a re-sent alert counts once, the first
        s = cancel_sent.get(user)
        if s is not None and s >= cutoff and user not in first:
            first.add(user)
            result.alert_created_ms.append(ts - s)
            result.alert_received_ms.append(received - s)
    return result
