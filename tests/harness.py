"""Test harness for whole-pipeline tests: real worker processes, real broker, real Redis.

Workers run as ``python -m streams.cli worker`` subprocesses (what users run), so a test can
kill -9 them. "Done" is read from Redis progress, the source of truth, not from Kafka commits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import redis as redis_lib
from redis.cluster import RedisCluster
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from models.events import Event
from streams.local import free_port, stop_process
from streams.publisher import event_value

__all__ = ["Worker", "QUICK_GROUP_BROKERS", "group_session_ms", "publish_events", "read_topic", "wait_progress", "wait_reviewed", "wait_quiet", "dump_state",
           "read_progress", "redis_client", "account_barrier", "partition_of", "snapshot_keys", "restore_keys"]

ROOT = Path(__file__).resolve().parents[1]

#: Brokers that are the local Tansu (tests/conftest.py adds the session's): see group_session_ms.
QUICK_GROUP_BROKERS: set[str] = set()


def group_session_ms(bootstrap: str, shared: bool = False) -> int:
    """The consumer-group session of a test's client (worker, forwarder) of ``bootstrap``.

    6 s (the default) but on the local Tansu, where every join takes about half the session and
    replacing a member (a kill -9, a restart, a takeover) about 1.8 times it (docs/OPERATE.md):
    most of the wall time of a test with workers. There, a client alone in its group gets 2 s:
    Tansu evicts a member only when *another* member's request finds it silent for a session, so
    a lone live member is never evicted, however busy. A client ``shared`` with other live members
    gets 3 s: heartbeats every second leave its event loop 2 s of work without a pause before the
    others can evict it (the fault runs' cycles are 500 records). Apache Kafka (a testcontainers
    broker) refuses sessions under 6 s.
    """
    if bootstrap not in QUICK_GROUP_BROKERS:
        return 6_000
    return 3_000 if shared else 2_000


def publish_events(bootstrap: str, topic: str, events: Iterable[Event], extra: Sequence[tuple[bytes | None, bytes]] = (),
                   stamp: Callable[[Event], int] | None = None) -> dict[int, int]:
    """Publish with the full event contract (``streams.publisher.event_value``: account ids and
    subscription fields too), key = user id, in the given order, then ``extra`` (key, value) records;
    returns the last offset written per partition. ``stamp``: each event's Kafka record timestamp
    (a topic written live, read later); None: the producer's clock, as a backfill is stamped."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks="all")
    futures = [producer.send(topic, key=ev.user_id.encode(), value=event_value(ev),
                             timestamp_ms=None if stamp is None else stamp(ev)) for ev in events]
    futures += [producer.send(topic, key=k, value=v) for k, v in extra]
    producer.flush()
    last: dict[int, int] = {}
    for fut in futures:
        md = fut.get(timeout=30)
        last[md.partition] = max(last.get(md.partition, -1), md.offset)
    producer.close()
    return last


def read_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Every record ``topic`` holds, in partition/offset order.

    Reads until each partition's position reaches the highwater of a fetch reply (Tansu's
    ``end_offsets`` are not the log end), not until the broker was quiet for a while: a
    slow first fetch on a loaded machine cannot cut the result short.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    out: list[ConsumerRecord] = []
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while True:
            for records in consumer.poll(timeout_ms=200).values():
                out += records
            ends = {tp.partition: consumer.highwater(tp) for tp in tps}
            if all(end is not None and consumer.position(tp) >= end for tp, end in zip(tps, ends.values())):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: read {len(out)} records, highwaters {ends} not reached in {timeout_s} s")
    finally:
        consumer.close()
    return sorted(out, key=lambda r: (r.partition, r.offset))


def partition_of(key: str, partitions: int) -> int:
    """The partition the producers' default partitioner (murmur2, as Java's) gives ``key``."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def account_barrier(bootstrap: str, redis_url: str, topic: str, partitions: int, round_no: int, ts_ms: int,
                    timeout_s: float = 90.0, workers: Sequence["Worker"] = (), prefix: str = "cw") -> None:
    """Until every account copy already in the topic is applied (call it after ``wait_progress``).

    One trial subscription (no MRR: no movement) per partition, for an account that hashes there,
    stating plan ``barrier-<round_no>``: its copy lands after every copy made before, and a
    partition is read in offset order, so once Redis holds that plan for every barrier account,
    everything before it was applied.
    """
    from models.revenue import AccountState
    from models.subscription import Subscription
    from streams.worker.keys import bucket_of

    names: list[str] = []
    for q in range(partitions):
        i = 0
        while partition_of(f"barrier-{q}-{i}", partitions) != q:
            i += 1
        names.append(f"barrier-{q}-{i}")
    plan = f"barrier-{round_no}"
    events = [Event(name, ts_ms, "subscription", f"{name}-{round_no}", 0.0, name, Subscription("trial", plan, 0))
              for name in names]
    publish_events(bootstrap, topic, events)
    client = redis_client(redis_url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            done = 0
            for name in names:
                raw = client.hget(f"{prefix}:{{{bucket_of(name, 64)}}}:acct", name)
                if raw is not None and AccountState.from_bytes(raw).get().plans == (plan,):
                    done += 1
            if done == len(names):
                return
            for w in workers:
                if w.proc is not None and w.proc.poll() is not None and not w.expected_exit:
                    raise AssertionError(f"worker exited with {w.proc.returncode}:\n{w.output()}")
            time.sleep(0.2)
    finally:
        client.close()
    logs = "\n".join(w.output()[-3000:] for w in workers)
    raise AssertionError(f"account barrier {round_no} not applied in {timeout_s} s\n{logs}")


def redis_client(redis_url: str) -> Any:
    """A sync client for ``redis_url``; a Redis Cluster node gets a cluster client (SCAN every primary)."""
    client = redis_lib.Redis.from_url(redis_url)
    if int(client.info("cluster").get("cluster_enabled", 0)) != 1:
        return client
    client.close()
    return RedisCluster.from_url(redis_url)


def read_progress(redis_url: str, topic: str, prefix: str = "cw") -> dict[int, int]:
    client = redis_client(redis_url)
    try:
        raw = client.hgetall(f"{prefix}:progress:{topic}")
    finally:
        client.close()
    return {int(k): int(v.split(b":")[0]) for k, v in raw.items()}


def wait_progress(
    redis_url: str, topic: str, last: dict[int, int], timeout_s: float = 90.0, workers: Sequence["Worker"] = (), prefix: str = "cw"
) -> None:
    """Until Redis progress reaches ``last`` on every partition (or fail with what is missing)."""
    deadline = time.monotonic() + timeout_s
    progress: dict[int, int] = {}
    while time.monotonic() < deadline:
        progress = read_progress(redis_url, topic, prefix)
        if all(progress.get(p, -1) >= off for p, off in last.items()):
            return
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None and not w.expected_exit:
                raise AssertionError(f"worker exited with {w.proc.returncode}:\n{w.output()}")
        time.sleep(0.2)
    logs = "\n".join(w.output()[-3000:] for w in workers)
    raise AssertionError(f"progress {progress} did not reach {last} in {timeout_s} s\n{logs}")


def wait_reviewed(redis_url: str, topic: str, prefix: str = "cw", allowed_lateness_ms: int | None = None,
                  buckets: int | None = None, timeout_s: float = 60.0) -> None:
    """Until every user and account review due before each partition's final review clock ran
    (event-time mode).

    Once a partition is caught up and idle, its worker borrows the topic's clock and sweeps the
    reviews due before it (streams.worker.clock): this is that end state, read from Redis, so no
    stretch of wall time has to pass for it. ``allowed_lateness_ms``/``buckets``: the workers'
    settings (defaults: ``Settings``'s).
    """
    from streams.settings import Settings
    from streams.worker.clock import TopicClock
    from streams.worker.keys import Keys
    from streams.worker.store import _parse_progress  # the one parser of progress values

    defaults = Settings()
    lateness = defaults.allowed_lateness_ms if allowed_lateness_ms is None else allowed_lateness_ms
    n_buckets = defaults.buckets if buckets is None else buckets
    keys = Keys(prefix)
    deadline = time.monotonic() + timeout_s
    pending: dict[int, Any] = {}
    while True:
        client = redis_client(redis_url)
        try:
            incarnation = (client.hget(keys.meta, "incarnation") or b"").decode()
            progress = _parse_progress(client.hgetall(keys.progress(topic)), incarnation)  # what the workers read
            clock = TopicClock(lateness, idle_partition_ms=0)
            for p, (_, max_ms) in progress.items():
                clock.assign(p, max_ms, wall_now_ms=0)
                clock.observe_fetch(p, 0, caught_up=True, wall_now_ms=0)
            pending = {}
            for p in progress:
                until_ms = clock.review_until_ms(p, wall_now_ms=0)
                if until_ms is None:
                    continue
                due = [m for b in range(n_buckets)
                       for m in client.zrangebyscore(keys.due(b, topic, p), "-inf", f"({until_ms // 1000}", withscores=True)]
                # accounts are reviewed on the same clock (streams.worker.pipeline's account dues)
                due += client.zrangebyscore(keys.account_due(topic, p), "-inf", f"({until_ms // 1000}", withscores=True)
                if due:
                    pending[p] = (until_ms // 1000, due[:3])
        finally:
            client.close()
        if progress and not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"reviews still due (partition: (review clock s, first due members)) {pending} after {timeout_s} s")
        time.sleep(0.2)


def wait_quiet(redis_url: str, prefix: str = "cw", quiet_s: float = 1.5, timeout_s: float = 30.0) -> None:
    """Until no user state changed for ``quiet_s``.

    Alone it is a guess (a worker starved of CPU looks quiet too): call :func:`wait_reviewed`
    first, which waits for the last sweeps themselves; this then checks nothing else moves.
    """
    deadline = time.monotonic() + timeout_s
    last = dump_state(redis_url, prefix)
    since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = dump_state(redis_url, prefix)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
    raise AssertionError(f"user states still changing after {timeout_s} s")


def snapshot_keys(redis_url: str, prefix: str) -> dict[bytes, tuple[int, bytes]]:
    """Every key of the deployment as DUMPed in one transaction (a point in Redis's command stream,
    which is what a restart from an AOF or a promoted replica holds): key -> (pttl, dump)."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        pipe = client.pipeline(transaction=True)
        for key in keys:
            pipe.pttl(key)
            pipe.dump(key)
        replies = pipe.execute()
    finally:
        client.close()
    return {key: (max(int(ttl), 0), dump) for key, ttl, dump in zip(keys, replies[::2], replies[1::2]) if dump is not None}


def restore_keys(redis_url: str, prefix: str, snapshot: dict[bytes, tuple[int, bytes]]) -> None:
    """Redis back to ``snapshot`` in one transaction: keys made since deleted, the others restored."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        pipe = client.pipeline(transaction=True)
        if keys:
            pipe.delete(*keys)
        for key, (ttl, dump) in snapshot.items():
            pipe.restore(key, ttl, dump, replace=True)
        pipe.execute()
    finally:
        client.close()



def dump_state(redis_url: str, prefix: str = "cw") -> dict[str, bytes]:
    """Every user's state record, by user id (the exact bytes the store holds)."""
    client = redis_client(redis_url)
    out: dict[str, bytes] = {}
    try:
        for key in client.scan_iter(match=f"{prefix}:{{*}}:u:*", count=1000):
            for user, blob in client.hgetall(key).items():
                out[user.decode()] = blob
    finally:
        client.close()
    return out


@dataclass
class Worker:
    """One ``churnwatch worker`` subprocess with its own metrics port and log file."""

    bootstrap: str
    redis_url: str
    topics: dict[str, str]
    log_path: Path
    extra_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    shared_group: bool = False  # other live workers in its group (group_session_ms)
    proc: subprocess.Popen[bytes] | None = None
    expected_exit: bool = False

    def start(self) -> "Worker":
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "REDIS_URL": self.redis_url,
               "CHURNWATCH_TOPIC_EVENTS": self.topics["events"], "CHURNWATCH_TOPIC_ALERTS": self.topics["alerts"],
               "CHURNWATCH_TOPIC_DLQ": self.topics["dlq"], "CHURNWATCH_GROUP_ID": self.topics["group"],
               "CHURNWATCH_METRICS_PORT": str(self.metrics_port), "PYTHONUNBUFFERED": "1",
               "CHURNWATCH_SESSION_TIMEOUT_MS": str(group_session_ms(self.bootstrap, self.shared_group)), **self.env}
        log = open(self.log_path, "ab")
        self.expected_exit = False
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", *self.extra_args], cwd=ROOT, env=env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def kill9(self) -> None:
        self.expected_exit = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        self.expected_exit = True
        if self.proc is None:
            return None
        return stop_process(self.proc, timeout_s=20)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def metric(worker: Worker, name: str, labels: str = "") -> float:
    """The sum of the worker's samples of ``name`` (whose label text contains ``labels``)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and labels in line.split("}")[0]):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0, workers: Sequence[Worker] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:  # metrics server not up yet
            pass
        time.sleep(0.2)
    logs = "\n".join(w.output()[-4000:] for w in workers)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


@dataclass
class Rec:
    """A consumed record as the pipeline reads it (aiokafka's ConsumerRecord has these fields)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def stream_side(redis_url: str, alerts: Iterable[dict[str, Any]], as_of_ms: int, model: Any
                ) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """The stream's side of a stream/backtest comparison: the users' states in Redis brought to
    ``as_of_ms`` and scored there (rows as the backtest's CSV writes them), and the alerts of the
    alerts topic (``alerts``, decoded) with those that bringing them there raises, by id."""
    from models.engine import advance
    from models.scoring import score
    from models.state import UserState
    from streams.offline.replay import score_row

    by_id = {a["alert_id"]: a for a in alerts}
    rows: dict[str, list[str]] = {}
    for user, blob in dump_state(redis_url).items():
        out = advance(user, UserState.from_bytes(blob), (), as_of_ms, model)
        by_id.update({a.alert_id: a.to_dict() for a in out.alerts})
        if not out.expire:
            rows[user] = score_row(user, as_of_ms, score(out.state, as_of_ms // 1000, model)).as_csv()
    return rows, by_id


@contextmanager
def redis_refusing_writes(redis_url: str) -> Iterator[None]:
    """Redis full under ``noeviction`` for the body: reads answer, every write is refused with
    OutOfMemoryError (QA8 H3), as a Redis out of memory refuses them; the memory settings are put
    back after, whatever the body raised, so the next test gets the server it expects."""
    client = redis_lib.Redis.from_url(redis_url)
    before = client.config_get("maxmemory*")
    try:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)  # every write refused from now on
        yield
    finally:
        client.config_set("maxmemory", before["maxmemory"])
        client.config_set("maxmemory-policy", before["maxmemory-policy"])
        client.close()
