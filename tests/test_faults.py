"""Faults against the real broker and Redis, each ending in an exact comparison with a clean run.

Every test replays the same deterministic history (a few hundred users, ~8 weeks, in event-time
order). The clean run is one worker from start to end, once per module (``reference``: the same
events in the same partitions and order give the same states and alert ids whichever topic holds
them, which test_faults_silent relies on too); the fault run suffers the fault. Both write under
their own key prefix, so the comparison is of the exact state bytes of every user, plus the set
of alert ids (alerts are at-least-once: duplicates allowed, nothing missing or extra).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path
from typing import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from models.events import Event
from streams.settings import Settings
from tests.harness import (Worker, dump_state, metric, publish_events, read_progress, read_topic, redis_refusing_writes, restore_keys,
                           snapshot_keys, wait_for, wait_progress, wait_quiet, wait_reviewed)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01


def history(seed: int = 5, users: int = 240, days: int = 56) -> list[Event]:
    """Steady users, decliners and quitters; per-user events strictly in time order."""
    rng = random.Random(seed)
    events: list[Event] = []
    for u in range(users):
        uid = f"user-{u:04d}"
        kind = ("steady", "decliner", "quitter")[u % 3]
        gap_days = rng.choice((1.0, 2.0, 3.0))
        stop_day = rng.uniform(15, 40) if kind == "quitter" else days
        t = rng.uniform(0, 5) * DAY_MS
        n = 0
        while t < stop_day * DAY_MS and t < days * DAY_MS:
            for _ in range(rng.randint(1, 4) if kind != "decliner" or t < 20 * DAY_MS else 1):
                n += 1
                kind_ev = rng.choice(("view", "view", "click", "message", "purchase"))
                amount = round(rng.uniform(5, 50), 2) if kind_ev == "purchase" else 0.0
                events.append(Event(uid, START_MS + int(t) + n * 1000, kind_ev, f"{uid}-{n}", amount))
            step = gap_days * (1.0 + (max(0.0, t / DAY_MS - 20) / 5 if kind == "decliner" else 0.0))
            t += step * DAY_MS * rng.uniform(0.7, 1.3)
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    return events


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return history()


def _topics(bootstrap: str, name: str) -> dict[str, str]:
    topics = {"events": f"ev-{name}", "alerts": f"al-{name}", "dlq": f"dlq-{name}", "group": f"g-{name}"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topics[k], 8, 1) for k in ("events", "alerts", "dlq")])
    admin.close()
    return topics


def _alert_ids(bootstrap: str, topic: str) -> tuple[set[str], int]:
    import orjson

    ids: list[str] = [orjson.loads(rec.value)["alert_id"] for rec in read_topic(bootstrap, topic, 8)]
    return set(ids), len(ids)


class Run:
    """One run: its topics (events shared per test), key prefix and workers.

    ``shared_group``: two or more of the run's workers are live in its group at some point (set
    it before the first worker starts): they get harness.group_session_ms's longer session for
    shared members. Workers that follow one another (a kill -9 and a restart, a stop and a start)
    keep a lone member's short session: on Tansu a join waits about half the session and a
    take-over of a killed member almost two sessions, and only another live member's request
    evicts a member, so a lone live worker is never evicted however busy.
    """

    def __init__(self, bootstrap: str, redis_url: str, tmp: Path, name: str, events_topic: str | None = None,
                 shared_group: bool = False) -> None:
        self.bootstrap, self.redis_url, self.tmp, self.name = bootstrap, redis_url, tmp, name
        self.topics = _topics(bootstrap, name)
        if events_topic:
            self.topics["events"] = events_topic
        self.prefix = f"cw{name.replace('-', '')}"
        self.workers: list[Worker] = []
        self.shared_group = shared_group

    def worker(self, **env: str) -> Worker:
        w = Worker(self.bootstrap, self.redis_url, self.topics, self.tmp / f"{self.name}-w{len(self.workers)}.log",
                   env={"CHURNWATCH_KEY_PREFIX": self.prefix, "CHURNWATCH_BATCH_MAX_RECORDS": "500",
                        # a caught-up partition borrows the topic's clock after 1 s idle (default 5 s)
                        "CHURNWATCH_IDLE_PARTITION_MS": "1000", **env},
                   shared_group=self.shared_group)
        self.workers.append(w)
        return w.start()

    def wait(self, last: dict[int, int], timeout_s: float = 120.0) -> None:
        wait_progress(self.redis_url, self.topics["events"], last, timeout_s, self.workers, prefix=self.prefix)
        self.wait_reviewed()
        wait_quiet(self.redis_url, self.prefix, quiet_s=2.5)

    def wait_reviewed(self) -> None:
        """harness.wait_reviewed with the review clock the workers compute: their allowed lateness
        and bucket count (a test that starts workers with 60 days of lateness must not be checked
        against the default 6 h, or every review due in between looks missed)."""
        settings = self.settings()
        wait_reviewed(self.redis_url, self.topics["events"], self.prefix,
                      allowed_lateness_ms=settings.allowed_lateness_ms, buckets=settings.buckets)

    def settings(self) -> Settings:
        """The settings the run's workers read (the environment each worker process gets)."""
        seen = [Settings.from_env({**os.environ, **w.env}) for w in self.workers] or [Settings.from_env(os.environ)]
        clocks = {(s.allowed_lateness_ms, s.buckets) for s in seen}
        assert len(clocks) == 1, f"workers of one run disagree on (allowed lateness ms, buckets): {clocks}"
        return seen[0]

    def stop(self) -> None:
        for w in self.workers:
            w.stop()

    def state(self) -> dict[str, bytes]:
        return dump_state(self.redis_url, self.prefix)

    def alerts(self) -> tuple[set[str], int]:
        return _alert_ids(self.bootstrap, self.topics["alerts"])


@pytest.fixture(scope="module")
def published(kafka_service, events: list[Event]) -> tuple[str, dict[int, int]]:  # type: ignore[no-untyped-def]
    """One topic holding the whole history, read by the clean run and by the fault runs whose
    fault is not in the publishing (each with its own group, key prefix and alerts topic):
    (topic, last offset per partition)."""
    name = f"pub{os.getpid()}-{time.time_ns() % 10**9}"
    topic = _topics(kafka_service.address, name)["events"]
    return topic, publish_events(kafka_service.address, topic, events)


@pytest.fixture(scope="module")
def reference(kafka_service, redis_service, tmp_path_factory, published: tuple[str, dict[int, int]]) -> tuple[dict[str, bytes], set[str]]:  # type: ignore[no-untyped-def]
    """The clean run, once per module: one worker reads the whole history; its states and alert ids."""
    topic, last = published
    clean = Run(kafka_service.address, redis_service.address, tmp_path_factory.mktemp("clean"),
                f"clean{os.getpid()}-{time.time_ns() % 10**9}", events_topic=topic)
    try:
        clean.worker()
        clean.wait(last)  # a cycle's alerts are acknowledged before its state write: all are in the topic
    finally:
        clean.stop()
    assert "state built from scratch" not in clean.workers[0].output(), "a complete log read from offset 0 is no lost history"
    assert "INFO aiokafka" in clean.workers[0].output(), "a worker's log keeps the group's joins and assignments"
    state = clean.state()
    ids, _ = clean.alerts()
    assert len(state) > 100, "the clean run must track the users"
    assert ids, "the history must raise alerts, or the comparison proves nothing"
    return state, ids


@pytest.fixture()
def fault(kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str) -> Iterator[Run]:
    """The run that suffers the fault, on an events topic of its own (``Run.topics["events"]``)."""
    run = Run(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-fault")
    yield run
    run.stop()


def _assert_same(fault: Run, ref_state: dict[str, bytes], ref_ids: set[str]) -> None:
    state = fault.state()
    missing = sorted(set(ref_state) - set(state))[:5]
    extra = sorted(set(state) - set(ref_state))[:5]
    differing = sorted(u for u in ref_state.keys() & state.keys() if ref_state[u] != state[u])[:5]
    detail = ""
    if differing:
        from dataclasses import asdict

        from models.state import UserState

        a, b = asdict(UserState.from_bytes(ref_state[differing[0]])), asdict(UserState.from_bytes(state[differing[0]]))
        detail = f"; {differing[0]}: " + ", ".join(f"{k} {a[k]} != {b[k]}" for k in a if a[k] != b[k])
    assert not missing and not extra and not differing, f"missing {missing}, extra {extra}, differing {differing}{detail}"
    ids, total = fault.alerts()
    assert ids == ref_ids, f"{len(ref_ids - ids)} alerts missing, {len(ids - ref_ids)} unexpected ({total} delivered)"


def test_kill_9_mid_stream_and_restart(fault: Run, events: list[Event], reference: tuple[dict[str, bytes], set[str]]) -> None:
    """The rest of the stream is published only after the kill, so the kill lands mid-stream
    however fast the worker is; the clean reference read the whole history in one go."""
    half = len(events) // 2
    last = publish_events(fault.bootstrap, fault.topics["events"], events[:half])

    w = fault.worker()
    deadline = time.monotonic() + 60
    while not read_progress(fault.redis_url, fault.topics["events"], fault.prefix) and time.monotonic() < deadline:
        time.sleep(0.02)
    progress_at_kill = read_progress(fault.redis_url, fault.topics["events"], fault.prefix)
    w.kill9()
    assert progress_at_kill, "the worker must have made progress before the kill"
    rest = publish_events(fault.bootstrap, fault.topics["events"], events[half:])
    last.update({p: max(last.get(p, -1), off) for p, off in rest.items()})
    assert any(progress_at_kill.get(p, -1) < off for p, off in last.items()), "the kill must land mid-stream"
    fault.worker()
    fault.wait(last)
    _assert_same(fault, *reference)


@pytest.mark.parametrize("ahead_ms", ["0", "1"], ids=["prefetch", "fetch-ahead"])
def test_two_workers_leave_and_rejoin_while_events_flow(fault: Run, events: list[Event], reference: tuple[dict[str, bytes], set[str]],
                                                        ahead_ms: str) -> None:
    """Each B joins (owns partitions) before it leaves: a B stopped before its first assignment
    would test nothing of a leave (under load it could be stopped before it had even joined).
    ``fetch-ahead``: the fault's workers take fetch replies off aiokafka's buffer during their
    cycles (``CHURNWATCH_FETCH_AHEAD_MS``, every 1 ms: their stash of records is dropped on every
    rebalance and seek); the reference reads with the default."""
    size = len(events) // 4
    parts = [events[i * size:(i + 1) * size] for i in range(3)] + [events[3 * size:]]
    fault.shared_group = True  # A and up to two Bs live at once
    fault.worker(CHURNWATCH_FETCH_AHEAD_MS=ahead_ms)
    _wait_assigned(fault.worker(CHURNWATCH_FETCH_AHEAD_MS=ahead_ms))
    last: dict[int, int] = {}
    for i, part in enumerate(parts):  # each chunk: B leaves or rejoins while the chunk flows
        last_part = publish_events(fault.bootstrap, fault.topics["events"], part)
        last.update({p: max(last.get(p, -1), o) for p, o in last_part.items()})
        b = fault.workers[1 + i]
        if b.proc is not None and b.proc.poll() is None:
            b.stop()
        _wait_assigned(fault.worker(CHURNWATCH_FETCH_AHEAD_MS=ahead_ms))
    fault.wait(last, timeout_s=180)
    _assert_same(fault, *reference)
    # a partition applied from offset 0 across a rebalance is complete: no false page
    # (the check judged a fetch the rebalance left unchecked, then the next batch's offset)
    assert not [w.log_path.name for w in fault.workers if "state built from scratch" in w.output()]


def _wait_assigned(worker: Worker) -> None:
    wait_for("the worker to own partitions", lambda: metric(worker, "churnwatch_partitions_assigned") >= 1, 120, (worker,))


def test_redis_unavailable_until_a_call_times_out(fault: Run, published: tuple[str, dict[int, int]], redis_service,  # type: ignore[no-untyped-def]
                                                   reference: tuple[dict[str, bytes], set[str]]) -> None:
    """Redis frozen mid-stream (SIGSTOP: connections hang, nothing is refused) until the worker
    has counted a Redis call that failed, i.e. one of its calls ran into the client's 5 s socket
    timeout (streams.worker.store) and went through the loop's failure path (a fixed 10 s outage
    before: the same path, 5 s longer). The worker survives, resumes once Redis answers again, and
    ends in the clean run's states and alert ids."""
    fault.topics["events"], last = published
    if redis_service.proc is None:
        pytest.skip("Redis is not a local process here (container or external): cannot freeze it")
    w = fault.worker()
    deadline = time.monotonic() + 60
    while not read_progress(fault.redis_url, fault.topics["events"], fault.prefix) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(redis_service.proc.pid, signal.SIGSTOP)  # Redis stops answering; connections hang
    try:
        wait_for("a Redis call of the worker to time out", lambda: metric(w, "churnwatch_redis_errors_total") >= 1, 60, (w,))
        assert w.proc is not None and w.proc.poll() is None, "the worker must survive a Redis outage"
    finally:
        os.kill(redis_service.proc.pid, signal.SIGCONT)
    fault.wait(last)
    assert w.proc.poll() is None, "the worker must still be running after Redis came back"
    _assert_same(fault, *reference)


def test_redis_refusing_writes_under_a_running_worker_sends_each_alert_once(fault: Run, events: list[Event], redis_url: str,
                                                                            reference: tuple[dict[str, bytes], set[str]]) -> None:
    """QA8 H3, L1: Redis full under ``noeviction`` (reads answer, writes are refused) while the
    worker has records to apply. Every failed attempt read, scored and sent the cycle's alerts
    again, 0.05 s apart (two cycles in flight reset the backoff), with a traceback each time, each
    re-read counted as consumed (M1), and ``/readyz`` stayed 200 (M2). Now the refused write waits
    in place, backing off: one WARNING naming the runbook, no traceback, each alert sent once, each
    record counted once, ``/readyz`` 503 while stuck (``CHURNWATCH_STUCK_AFTER_MS``, 1 s here),
    and once memory is back the clean run's states and alert ids and ``/readyz`` 200 again."""
    third = len(events) // 3
    topic = fault.topics["events"]
    last = publish_events(fault.bootstrap, topic, events[:third])
    # the refused cycle holds the rest of the history
    w = fault.worker(CHURNWATCH_BATCH_MAX_RECORDS="10000", CHURNWATCH_STUCK_AFTER_MS="1000")
    wait_progress(fault.redis_url, topic, last, 60, fault.workers, prefix=fault.prefix)
    with redis_refusing_writes(redis_url):
        rest = publish_events(fault.bootstrap, topic, events[third:])
        wait_for("5 refused Redis calls", lambda: metric(w, "churnwatch_redis_errors_total") >= 5, 60, (w,))
        wait_for("/readyz 503 while nothing is applied", lambda: _readyz(w) == 503, 30, (w,))
        assert read_progress(fault.redis_url, topic, fault.prefix) == last, "nothing applied while writes are refused"
    fault.wait({p: max(last.get(p, -1), rest.get(p, -1)) for p in last.keys() | rest.keys()})
    _assert_same(fault, *reference)
    ids, total = fault.alerts()
    assert total == len(ids), f"{total - len(ids)} alert records sent again for writes Redis refused"
    assert metric(w, "churnwatch_alerts_resent_total") == 0
    assert metric(w, "churnwatch_events_consumed_total") == len(events), "each record counted once"
    wait_for("/readyz 200 once cycles apply again", lambda: _readyz(w) == 200, 30, (w,))
    log = w.output()
    assert "Traceback" not in log, log[log.find("Traceback"):][:2000]
    refused = [line for line in log.splitlines() if "OutOfMemoryError" in line]
    assert refused and all(" WARNING " in line and "Runbook: ChurnwatchRedisErrors" in line for line in refused), refused[:3]


def test_the_lag_gauge_is_not_frozen_while_a_refused_write_is_retried_in_place(fault: Run, events: list[Event],
                                                                               redis_url: str) -> None:
    """Review 14, M-1: ``churnwatch_consumer_lag_events`` was set only by a cycle, and a write
    retried in place holds the loop in that cycle: for a worker caught up when Redis filled, the
    gauge stayed at the stuck batch's size (200 here) however many records came after, so
    ChurnwatchConsumerLagHigh could not fire. Now the gauge timer reads the log ends while no cycle
    settles: the gauge reaches every record waiting."""
    topic = fault.topics["events"]
    quarter = len(events) // 4
    last = publish_events(fault.bootstrap, topic, events[:quarter])
    w = fault.worker(CHURNWATCH_BATCH_MAX_RECORDS="500")
    wait_progress(fault.redis_url, topic, last, 60, fault.workers, prefix=fault.prefix)
    with redis_refusing_writes(redis_url):
        publish_events(fault.bootstrap, topic, events[quarter:quarter + 200])
        wait_for("a refused write", lambda: metric(w, "churnwatch_redis_errors_total") >= 1, 30, (w,))
        publish_events(fault.bootstrap, topic, events[quarter + 200:])
        waiting = len(events) - quarter
        wait_for(f"a lag of the {waiting} records waiting",
                 lambda: metric(w, "churnwatch_consumer_lag_events") >= waiting, 15, (w,))
        assert read_progress(fault.redis_url, topic, fault.prefix) == last, "nothing applied while writes are refused"
    wait_for("the lag back to 0 once applied", lambda: metric(w, "churnwatch_consumer_lag_events") == 0, 60, (w,))


def test_a_caught_up_worker_whose_submit_is_refused_is_not_ready(fault: Run, events: list[Event], redis_url: str) -> None:
    """Review 14, L-2: the first event naming an account records in Redis that accounts are in
    use (``mark_accounts_in_use``) while the cycle is submitted, retried in place if refused.
    Caught up, the worker had no cycle in flight and nothing behind its last fetch: ``stuck_s``
    was 0 and ``/readyz`` stayed 200 while the record waited. The batch in hand counts now."""
    from models.subscription import Subscription

    topic = fault.topics["events"]
    last = publish_events(fault.bootstrap, topic, events[:50])
    w = fault.worker(CHURNWATCH_STUCK_AFTER_MS="1000")
    wait_progress(fault.redis_url, topic, last, 60, fault.workers, prefix=fault.prefix)
    with redis_refusing_writes(redis_url):
        first = events[49]
        publish_events(fault.bootstrap, topic, [Event(first.user_id, first.ts_ms + 1, "subscription", "acct-1", 0.0, "acct-1",
                                                      Subscription("trial", "basic", 0))])
        wait_for("a refused write", lambda: metric(w, "churnwatch_redis_errors_total") >= 1, 30, (w,))
        wait_for("/readyz 503 while the batch in hand waits", lambda: _readyz(w) == 503, 15, (w,))
    wait_for("/readyz 200 once applied", lambda: _readyz(w) == 200, 30, (w,))


def test_a_cycle_whose_write_redis_refuses_backs_off_with_two_cycles_in_flight(kafka_bootstrap: str, redis_url: str,
                                                                                unique_name: str, events: list[Event]) -> None:
    """QA8 H3: a write refused for good (here: the ACL takes write commands from the worker's
    user, NOPERM) fails its cycle, which is read again. With two cycles in flight the turn that
    only submitted the retried cycle (its write fails a turn later) reset the failure streak, so
    every retry waited 0.05 s. In process (no log rate limit): the consumer's delays while the
    writes are refused, until the sixth failure gives the permission back; and each alert sent
    once: those the broker acknowledged in a failed attempt are not sent again."""
    import logging

    import redis as redis_lib

    from models.model import load_model
    from streams.kafka_admin import RETRY_LOGGER
    from streams.worker.service import WorkerRuntime
    from tests.harness import group_session_ms

    topics = _topics(kafka_bootstrap, unique_name)
    prefix = f"cw{unique_name.replace('-', '')}"
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, topic_events=topics["events"],
                        topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], group_id=topics["group"], key_prefix=prefix,
                        session_timeout_ms=group_session_ms(kafka_bootstrap), batch_max_records=500)
    third = len(events) // 3
    last = publish_events(kafka_bootstrap, topics["events"], events[:third])
    admin = redis_lib.Redis.from_url(redis_url)
    delays: list[float] = []

    class Failures(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if str(record.msg).startswith("worker cycle failed"):
                delays.append(float(record.args[0]))  # type: ignore[index]
                if len(delays) == 6:
                    admin.execute_command("ACL", "SETUSER", "default", "+@all")

    async def scenario() -> None:
        runtime = WorkerRuntime(settings, load_model())
        assert await runtime.start()
        try:
            while await asyncio.to_thread(read_progress, redis_url, topics["events"], prefix) != last:
                await asyncio.sleep(0.1)  # off the loop: the worker runs on it
            await asyncio.to_thread(admin.execute_command, "ACL", "SETUSER", "default", "-@write")
            await asyncio.to_thread(publish_events, kafka_bootstrap, topics["events"], events[third:])
            while len(delays) < 6:  # the sixth failure gives the permission back
                await asyncio.sleep(0.1)
            while await asyncio.to_thread(read_progress, redis_url, topics["events"], prefix) == last:
                await asyncio.sleep(0.1)  # applied again
        finally:
            await runtime.stop()

    handler = Failures()
    logging.getLogger(RETRY_LOGGER).addHandler(handler)
    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        logging.getLogger(RETRY_LOGGER).removeHandler(handler)
        admin.execute_command("ACL", "SETUSER", "default", "+@all")
        admin.close()
    assert delays[:6] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6], "each failed cycle doubles the wait"
    ids, total = _alert_ids(kafka_bootstrap, topics["alerts"])
    assert ids and total == len(ids), f"{total - len(ids)} alerts acknowledged in a failed attempt sent again"


def _readyz(worker: Worker) -> int:
    import urllib.error
    import urllib.request

    try:
        return int(urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/readyz", timeout=5).status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_same_batch_delivered_twice(fault: Run, published: tuple[str, dict[int, int]], redis_url: str,
                                    reference: tuple[dict[str, bytes], set[str]]) -> None:
    """Progress is lost (as if Kafka redelivered everything): per-bucket offsets must fence it."""
    import redis as redis_lib

    fault.topics["events"], last = published
    fault.worker()
    fault.wait(last)
    fault.stop()
    client = redis_lib.Redis.from_url(redis_url)
    client.delete(f"{fault.prefix}:progress:{fault.topics['events']}")
    client.close()
    fault.worker(CHURNWATCH_GROUP_ID=f"{fault.topics['group']}-again")  # no Kafka commits either: from the start
    fault.wait(last)
    _assert_same(fault, *reference)


def test_a_caught_up_worker_with_redis_down_counts_each_error_and_logs_no_traceback(kafka_bootstrap: str, unique_name: str,
                                                                                   tmp_path: Path) -> None:
    """QA3 #5: with Redis gone under a caught-up worker, the loop's once-a-second store check
    failed with a traceback each time ("retrying in 0.05 s": an idle turn reset the backoff) and
    ``churnwatch_redis_errors_total`` stayed 0, so ChurnwatchRedisErrors could not fire. Now each
    failure is counted, logged as one line without a traceback, and repeats are held back
    (streams.kafka_admin.RepeatLimit: one line per kind every 10 s, with a count); the backoff
    itself is ``retry_delay``'s doctest."""
    from streams.local import start_redis

    own = start_redis(use_env=False)
    if own.proc is None:
        own.stop()
        pytest.skip("Redis is not a local process here (container): cannot stop it under the worker")
    w = Worker(kafka_bootstrap, own.address, _topics(kafka_bootstrap, unique_name), tmp_path / "w.log")
    try:
        w.start()
        _wait_assigned(w)
        own.stop()  # Redis gone: connections refused
        wait_for("3 Redis errors counted", lambda: metric(w, "churnwatch_redis_errors_total") >= 3, 60, (w,))
        assert w.proc is not None and w.proc.poll() is None, "the worker must survive a Redis outage"
    finally:
        w.stop()
        own.stop()
    log = w.output()
    assert "Traceback" not in log, log[log.find("Traceback"):][:2000]
    shown = [line for line in log.splitlines() if "Redis unavailable" in line]
    assert shown and "retrying in 0.05 s (failure 1 in a row). Runbook: ChurnwatchRedisErrors" in shown[0], log[-3000:]


def test_redis_going_back_in_time_under_a_running_worker(fault: Run, events: list[Event],
                                                         reference: tuple[dict[str, bytes], set[str]]) -> None:
    """QA5 H1: Redis lost its last writes (a kill -9 with AOF everysec; a failover to a replica
    behind), states and offsets alike, while the worker ran on from its own Kafka position: the
    records in between were never applied again, silently. Made deterministic: Redis is put back
    to a snapshot taken after the first third of the history was applied, once the second third
    is applied too; the worker must notice (its reads find older offsets than it wrote), resume
    from what Redis holds and end, with the last third, in the clean run's state and alert ids."""
    third = len(events) // 3
    last = publish_events(fault.bootstrap, fault.topics["events"], events[:third])
    w = fault.worker()
    topic = fault.topics["events"]
    # The snapshot need not wait for a quiet worker: one transaction is one point in Redis's
    # command stream, as a restart from an AOF or a promoted replica would hold, whatever runs.
    wait_progress(fault.redis_url, topic, last, 60, fault.workers, prefix=fault.prefix)
    snapshot = snapshot_keys(fault.redis_url, fault.prefix)
    last = {**last, **publish_events(fault.bootstrap, topic, events[third:2 * third])}
    wait_progress(fault.redis_url, topic, last, 60, fault.workers, prefix=fault.prefix)  # applied, then lost
    restore_keys(fault.redis_url, fault.prefix, snapshot)
    assert read_progress(fault.redis_url, topic, fault.prefix) != last, "Redis must be back before the second third"
    rest = publish_events(fault.bootstrap, topic, events[2 * third:])
    last = {p: max(last.get(p, -1), rest.get(p, -1)) for p in last.keys() | rest.keys()}
    fault.wait(last)
    _assert_same(fault, *reference)
    assert metric(w, "churnwatch_redis_rollbacks_total") >= 1
    assert "REDIS WENT BACK IN TIME" in w.output()


def test_redis_going_back_in_time_while_no_record_arrives(fault: Run, events: list[Event]) -> None:
    """QA13 F7: Redis put back to an older snapshot while the stream is idle went unseen until the
    next record (35 s of readers seeing the older state). The idle worker's once-a-second look
    compares the owned partitions' bucket offsets and progress with its last acknowledged writes
    (``Pipeline.look``), so it notices and repairs with no record published after the restore:
    the state and alert ids end exactly as before the loss (the lost records applied again
    exactly once: stats and counters are deltas, a second application would show)."""
    third = len(events) // 3
    topic = fault.topics["events"]
    first = publish_events(fault.bootstrap, topic, events[:third])
    w = fault.worker()
    wait_progress(fault.redis_url, topic, first, 60, fault.workers, prefix=fault.prefix)
    snapshot = snapshot_keys(fault.redis_url, fault.prefix)
    at_snapshot = read_progress(fault.redis_url, topic, fault.prefix)  # one worker, no events: what the snapshot holds
    last = {**first, **publish_events(fault.bootstrap, topic, events[third:2 * third])}
    fault.wait(last)  # applied, reviewed, quiet: the state a repair must give back
    before, (ids_before, _) = fault.state(), fault.alerts()
    assert at_snapshot != read_progress(fault.redis_url, topic, fault.prefix), "the snapshot must be older"
    assert metric(w, "churnwatch_redis_rollbacks_total") == 0
    restore_keys(fault.redis_url, fault.prefix, snapshot)  # from here on nothing is published
    wait_for("the idle worker to notice the rollback", lambda: metric(w, "churnwatch_redis_rollbacks_total") >= 1,
             60, fault.workers)
    fault.wait(last)
    assert "REDIS WENT BACK IN TIME" in w.output()
    state = fault.state()
    differing = sorted(u for u in before.keys() | state.keys() if before.get(u) != state.get(u))
    assert not differing, f"{len(differing)} users differ after the repair, e.g. {differing[:5]}"
    ids, _ = fault.alerts()
    assert ids == ids_before, f"{len(ids_before - ids)} alerts missing, {len(ids - ids_before)} unexpected"
    assert metric(w, "churnwatch_redis_rollbacks_total") == 1, "one rollback, counted once"
