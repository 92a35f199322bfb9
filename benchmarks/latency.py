"""Latency at a steady produce rate: ingest -> state written, and ingest -> alert published.

One ``churnwatch worker --clock live`` runs while this process produces events at a fixed rate
with event time = wall time. Each event carries its send time (``properties.sent_ms``, taken when
it is made, just before ``produce``), and every acknowledged offset is remembered with that send
time (librdkafka's delivery reports, served by ``poll``).

The load generator is confluent-kafka's ``Producer`` (librdkafka, C; linger 20 ms, acks=all, Java's
murmur2 partitioner as the other producers here): it shares the machine's 2 cores with the worker,
Redis and the broker, while the max rate it is compared with was measured without it, and in
production the producers are other machines. aiokafka's producer cost ~15 us of CPU per event here
(a Python future and callbacks per event), librdkafka's a fraction of that (``generator_cpu``).
Batches per partition are counted from librdkafka's statistics: Tansu's fetch lists every stored
batch of a partition within the fetch's max wait (docs/OPERATE.md, "Tansu"), so they are reported.

How each latency is measured:

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
  reported: when a CRM-like consumer (fetch max wait READER_FETCH_MAX_WAIT_MS, in its own process: ``AlertReader``)
  *received* it, which adds the broker's append and the consumer's fetch.

Where an alert's time went (``breakdown``): every user alert carries the worker's
``churnwatch-timing`` header (when it asked for the batch, got it, had scored it), and this process
notes when the broker acknowledged each cancel. Per alert, in order: **producer** (send -> ack:
its linger and the produce request), **behind** (ack -> the worker asked for records: it was busy
with earlier cycles), **fetch** (the later of ack and ask -> records in hand: the broker's fetch
hold and aiokafka's one fetch in flight), **scoring** (decode, read, advance of its cycle),
**to send** (scored -> the alert's CreateTime: the tail task waiting for the event loop),
**delivery** (CreateTime -> received by the reader: the broker's append and the reader's fetch).
Reported as the median of each part over all alerts and the mean over the alerts at or above
the p99 of ingest -> received.

All clocks are this machine's ``time.time()`` (one host, so send and alert timestamps compare).
The first ``warmup_s`` of each rate are left out (the worker's batch size settles to the rate).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gc
import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from benchmarks.observe import summary_ms
from streams.worker.pipeline import TIMING_HEADER

__all__ = ["LevelResult", "measure_level", "generator_config", "pick_event", "BatchCounter", "quiet_gc"]

# 20 ms, not 5: Tansu's fetch lists every batch stored in a partition (docs/OPERATE.md, "Tansu"), and
# at 5 ms librdkafka stored ~3.9k batches per partition a level against ~1.3k at 20: broker 0.58-0.71
# of a core against 0.23-0.46, p99 at 50% 6.7 s against 0.48 s (one pair, load 1-3). The producer
# part of an alert's delay stayed ~15 ms (median) either way: it is in the measured latency.
LINGER_MS = 20
# The CRM consumer's own setting, chosen as OPERATE advises a consumer that wants alerts fast: on
# Apache Kafka a fetch answers as soon as an alert is there, whatever its max wait; on Tansu one that
# finds none looks again only after half the remaining wait. Measured in 8 A/B levels at half the max
# rate (benchmarks.latency_ab): "delivery" median 12.5-16.5 ms at 10 ms against 16.8-26.1 at the
# worker's 50 (20 ms: 15-16). On Tansu the wait is also the budget for listing the alerts topic's
# stored batches (one per partition per worker cycle, ~1.5k per partition in a level: ~8 ms of
# listing for 8 partitions on a quiet core); each level has its own alerts topic, and no level of
# those 8 showed a partition coming back empty (delivery at the p99 <= 39 ms while the worker kept up).
READER_FETCH_MAX_WAIT_MS = 10
POLL_S = 0.005
CANCEL_EVERY = 100  # one cancel user per this many events
CANCEL_AFTER_MS = 1_000
POOL_USERS = 50_000
POLL_EVERY = 200  # events made between two polls of the producer (its delivery reports) and turns of the loop
STATS_INTERVAL_MS = 1_000
# One event as the worker reads it (orjson.loads gives the same object as dumping the dict would),
# formatted without building a dict per event: event id (tag, k), user, type, ts, sent_ms.
EVENT = b'{"event_id":"%s-%d","user_id":"%s","type":"%s","ts":%d,"properties":{"sent_ms":%.3f,"page":"/app/home"}}'


def generator_config(bootstrap: str) -> dict[str, Any]:
    """The load generator's librdkafka settings: as the aiokafka producer it replaced (acks=all,
    256 KiB batches, not idempotent) but a 20 ms linger (LINGER_MS), with Java's murmur2 partitioner (librdkafka's own
    default is CRC32: the worker would re-route every record off its key's partition)."""
    return {"bootstrap.servers": bootstrap, "linger.ms": LINGER_MS, "acks": "all", "batch.size": 256 * 1024,
            "partitioner": "murmur2_random", "enable.idempotence": False,
            "queue.buffering.max.messages": 1_000_000, "statistics.interval.ms": STATS_INTERVAL_MS}


def pick_event(k: int, tag: str, now_ms: float, pending: collections.deque[tuple[str, float]]) -> tuple[str, str, bool]:
    """Event ``k``'s (user, type, is a timed cancel): one new user a ``view`` every CANCEL_EVERY
    events (queued in ``pending``), the oldest queued one a ``cancel`` half a cycle later once its view
    is CANCEL_AFTER_MS old (a cancel turns the user churned at once: one alert), else a pool user."""
    if k % CANCEL_EVERY == 0:
        user = f"lat-{tag}-c{k}"
        pending.append((user, now_ms))
        return user, "view", False
    if k % CANCEL_EVERY == CANCEL_EVERY // 2 and pending and pending[0][1] <= now_ms - CANCEL_AFTER_MS:
        return pending.popleft()[0], "cancel", True
    return f"lat-u{(k * 7919) % POOL_USERS}", "view" if k % 3 else "click", False


class BatchCounter:
    """Produce requests' batches per partition, summed over librdkafka's statistics callbacks
    (``stats_cb``: per topic, ``batchcnt.cnt`` counts the batches of the last interval). Each batch is
    one stored object in Tansu's memory storage, which a fetch lists."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.batches = 0

    def update(self, stats_json: str) -> None:
        """Called by ``Producer.poll`` every STATS_INTERVAL_MS with the statistics as JSON."""
        topic = orjson.loads(stats_json).get("topics", {}).get(self.topic, {})
        self.batches += int(topic.get("batchcnt", {}).get("cnt", 0))


BREAKDOWN = ("producer", "behind", "fetch", "scoring", "to send", "delivery")


def split_alert(sent: float, acked: float, timing: bytes, created: float, received: float) -> tuple[float, ...]:
    """One alert's delay in BREAKDOWN's parts (ms; they add up to ``received - sent``)."""
    asked, fetched, scored = (float(x) for x in timing.split(b","))
    start = max(asked, acked)
    return (acked - sent, start - acked, fetched - start, scored - fetched, created - scored, received - created)


def breakdown_rows(parts: list[tuple[float, ...]], totals: list[float]) -> dict[str, str]:
    """Median of each part over all alerts, and mean over those at or above the p99 total."""
    known = [(p, t) for p, t in zip(parts, totals) if p[0] == p[0]]  # NaN: no header or no ack seen
    if not known:
        return {}
    cut = sorted(totals)[min(len(totals) - 1, int(0.99 * len(totals)))]
    parts = [p for p, _ in known]
    tail = [p for p, t in known if t >= cut] or [max(known, key=lambda pt: pt[1])[0]]
    med = [sorted(col)[len(col) // 2] for col in zip(*parts)]
    mean = [sum(col) / len(col) for col in zip(*tail)]
    return {"parts": " / ".join(BREAKDOWN),
            "median_ms": " / ".join(f"{v:.1f}" for v in med),
            f"mean_of_{len(tail)}_at_or_above_p99_ms": " / ".join(f"{v:.1f}" for v in mean)}


def _now_ms() -> float:
    return time.time_ns() / 1e6


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """The collector tuned as in the worker (``streams.worker.service._tune_gc``: objects made so far
    frozen, a larger young generation) while a level runs, restored after. Measured in a process
    with this generator and an aiokafka consumer at 26k events/s: full collections of everything
    imported (this module pulls in the worker's and the models' code) every 6-9 s, each stopping
    the process 130-240 ms (load 10): the generator stopped producing, then sent the missed events
    in one burst, and delivery reports waited. With the tuning: none in 30 s.

    Restored as found: the thresholds, and frozen or not. A caller that had frozen objects before
    keeps them frozen (an unconditional ``gc.unfreeze()`` gave them back to the collector); what
    the level froze beside them stays frozen too, since ``gc`` has no partial unfreeze."""
    from streams.worker.service import _tune_gc

    thresholds, was_frozen = gc.get_threshold(), gc.get_freeze_count() > 0
    _tune_gc()
    try:
        yield
    finally:
        if not was_frozen:
            gc.unfreeze()
        gc.set_threshold(*thresholds)


Alert = tuple[str, int, float, "bytes | None"]  # (user, Kafka CreateTime, received at, timing header)


class AlertReader:
    """The CRM-like reader of the alerts topic, in a process of its own: in this one its receipt
    times would wait for the producer's turns of the event loop (measured: up to ~150 ms of
    "delivery" at the p99 on a busy box), which no real consumer of alerts shares."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, fetch_max_wait_ms: int | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        wait_ms = READER_FETCH_MAX_WAIT_MS if fetch_max_wait_ms is None else fetch_max_wait_ms
        self._proc = ctx.Process(target=_read_alerts, args=(bootstrap, topic, partitions, wait_ms, child), daemon=True)

    def start(self) -> None:
        """Blocks until the reader is positioned at the end of every partition."""
        self._proc.start()
        if not self._conn.poll(60.0) or self._conn.recv() != "ready":
            raise RuntimeError("alert reader did not start")

    def stop(self) -> list[Alert]:
        """Blocks until the reader has handed over what it read."""
        self._conn.send("stop")
        alerts: list[Alert] = self._conn.recv() if self._conn.poll(60.0) else []
        self._proc.join(10.0)
        return alerts


def _read_alerts(bootstrap: str, topic: str, partitions: int, fetch_max_wait_ms: int, conn: Any) -> None:
    asyncio.run(_read_alerts_async(bootstrap, topic, partitions, fetch_max_wait_ms, conn))


async def _read_alerts_async(bootstrap: str, topic: str, partitions: int, fetch_max_wait_ms: int, conn: Any) -> None:
    from streams.worker.service import _tune_gc

    _tune_gc()  # its own process: a full collection stops it for as long as the generator's would (quiet_gc)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    alerts: list[Alert] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve the seek now, before any alert of this level exists
        conn.send("ready")
        while not conn.poll():
            batch = await consumer.getmany(timeout_ms=50)
            t = _now_ms()
            for records in batch.values():
                for rec in records:
                    body = orjson.loads(rec.value)
                    timing = next((v for k, v in rec.headers or () if k == TIMING_HEADER), None)
                    alerts.append((str(body.get("user_id")), rec.timestamp, t, timing))
    finally:
        await consumer.stop()
    conn.send(alerts)


@dataclass
class LevelResult:
    target_rate: float
    sent: int = 0
    seconds: float = 0.0
    state_ms: list[float] = field(default_factory=list)
    alert_created_ms: list[float] = field(default_factory=list)
    alert_received_ms: list[float] = field(default_factory=list)
    alert_from_ack_ms: list[float] = field(default_factory=list)  # broker ack of the cancel -> received
    cancels: int = 0
    max_poll_gap_ms: float = 0.0
    mean_poll_gap_ms: float = 0.0
    breakdown: list[tuple[float, ...]] = field(default_factory=list)  # per alert, BREAKDOWN's parts in ms
    generator_cpu_s: float = 0.0  # this process while producing: the producer, its callbacks and the progress poller
    batches: int = 0  # produce batches of this level (all partitions), from librdkafka's statistics
    off_partition: int = 0  # cancels acked on another partition than murmur2(key) % partitions (must be 0)

    def rows(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target_events_per_s": round(self.target_rate),
            "achieved_events_per_s": round(self.sent / self.seconds) if self.seconds else 0,
            "events": self.sent,
        }
        for name, values in (("state", self.state_ms), ("alert", self.alert_created_ms),
                             ("alert_received", self.alert_received_ms), ("alert_from_ack", self.alert_from_ack_ms)):
            for k, v in summary_ms(values).items():
                out[f"{name}_{k}"] = v
        out["cancel_users"] = self.cancels
        out["generator_cpu_us_per_event"] = round(1e6 * self.generator_cpu_s / self.sent, 1) if self.sent else None
        out["batches"] = self.batches
        out["cancels_off_their_key_partition"] = self.off_partition
        out["breakdown"] = breakdown_rows(self.breakdown, self.alert_received_ms)
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
    cancel_acked: dict[str, float] = {}
    changes: list[tuple[int, int, int, float]] = []  # (p, from, to, poll time)
    last_acked: dict[int, int] = {}
    stop = asyncio.Event()

    from confluent_kafka import Producer  # the bench extra: not needed to import this module's helpers

    counter = BatchCounter(events_topic)
    producer = Producer({**generator_config(bootstrap), "stats_cb": counter.update})
    client = aioredis.Redis.from_url(redis_url)
    reader = AlertReader(bootstrap, alerts_topic, partitions)
    await asyncio.get_running_loop().run_in_executor(None, reader.start)  # positioned before any alert of this level

    def delivered(sent_ms: float, cancel: str | None, err: Any, msg: Any) -> None:
        """librdkafka's delivery report of one event, served by ``producer.poll`` in this thread."""
        if err is not None:
            return
        p, offset = msg.partition(), msg.offset()
        if cancel is not None:
            cancel_acked[cancel] = _now_ms()
            if p != (murmur2(cancel.encode()) & 0x7FFFFFFF) % partitions:
                result.off_partition += 1
        sent_at[p][offset] = sent_ms
        if offset > last_acked.get(p, -1):
            last_acked[p] = offset

    def produce(value: bytes, key: bytes, report: Any) -> None:
        while True:
            try:
                producer.produce(events_topic, value, key, on_delivery=report)
                return
            except BufferError:  # librdkafka's queue is full: serve reports until there is room
                producer.poll(0.005)

    async def send_all() -> None:
        pending: collections.deque[tuple[str, float]] = collections.deque()  # cancel users waiting
        tag_b = tag.encode()
        t0, cpu0 = time.monotonic(), time.process_time()
        k = 0
        n_cancel = 0
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= seconds:
                break
            target = int(elapsed * rate)
            while k < target:
                now = _now_ms()
                user, kind, timed = pick_event(k, tag, now, pending)
                if timed:
                    cancel_sent[user] = now
                    n_cancel += 1
                value = EVENT % (tag_b, k, user.encode(), kind.encode(), int(now), now)
                produce(value, user.encode(), functools.partial(delivered, now, user if timed else None))
                k += 1
                if k % POLL_EVERY == 0:
                    producer.poll(0)
                    await asyncio.sleep(0)  # let the progress poller run
            producer.poll(0)
            await asyncio.sleep(0.002)
        deadline = time.monotonic() + 30.0
        while len(producer) and time.monotonic() < deadline:  # in flight or queued: wait for every report
            producer.poll(0)
            await asyncio.sleep(0.002)
        result.generator_cpu_s = time.process_time() - cpu0
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

    async def caught_up(timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            raw = await client.hgetall(progress_key)
            prog = {int(k): int(v.split(b":", 1)[0]) for k, v in raw.items()}
            if all(prog.get(p, -1) >= off for p, off in last_acked.items()):
                return
            producer.poll(0)  # the statistics of the last seconds of sending
            await asyncio.sleep(0.05)

    # where each partition stands before this level: earlier offsets are not ours
    start = {int(k): int(v.split(b":", 1)[0]) for k, v in (await client.hgetall(progress_key)).items()}
    poller = asyncio.ensure_future(poll_progress(start))
    t_start_ms = _now_ms()
    try:
        with quiet_gc():
            await send_all()
            await caught_up(60.0)
            for _ in range(10):  # alerts of the last batch
                producer.poll(0)
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(poller, return_exceptions=True)
        alerts = await asyncio.get_running_loop().run_in_executor(None, reader.stop)
        producer.flush(5.0)
        producer.poll(0)  # the last statistics
        result.batches = counter.batches
        await client.aclose()

    cutoff = t_start_ms + warmup_s * 1000
    for p, a, b, t in changes:
        offs = sent_at.get(p, {})
        for off in range(a + 1, b + 1):
            s = offs.get(off)
            if s is not None and s >= cutoff:
                result.state_ms.append(t - s)
    first: set[str] = set()
    for user, ts, received, timing in alerts:  # at-least-once: a re-sent alert counts once, the first
        s = cancel_sent.get(user)
        if s is not None and s >= cutoff and user not in first:
            first.add(user)
            result.alert_created_ms.append(ts - s)
            result.alert_received_ms.append(received - s)
            acked = cancel_acked.get(user)
            if acked is not None:
                result.alert_from_ack_ms.append(received - acked)
            if timing is not None and acked is not None:
                result.breakdown.append(split_alert(s, acked, timing, ts, received))
            else:
                result.breakdown.append((float("nan"),) * len(BREAKDOWN))
    return result
