"""Faults that used to corrupt state silently (issue 15), against the real broker, Redis and workers.

Each test reproduces one fault on a small history (30 users, 6 weeks) and ends in an exact
comparison with a clean run of the same good events: every user's state bytes and the set of
alert ids (or in the documented stop), and checks the metric that makes the fault visible.
Waits are on conditions (Redis progress, metric values), never sleeps followed by asserts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from kafka import KafkaProducer

from models.events import Event
from streams.publisher import event_value
from tests.harness import Worker, metric, publish_events, read_progress, read_topic, wait_for, wait_progress, wait_quiet
from tests.test_faults import Run, _topics, history
from tests.test_faults import _assert_same as _assert_same_slow

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def small() -> list[Event]:
    return history(seed=11, users=30, days=42)


@pytest.fixture(scope="module")
def reference(kafka_service, redis_service, tmp_path_factory, small: list[Event]) -> tuple[dict[str, bytes], set[str]]:  # type: ignore[no-untyped-def]
    """The clean run, once per module: one worker reads every event; its states and alert ids."""
    clean = QuickRun(kafka_service.address, redis_service.address, tmp_path_factory.mktemp("clean"), f"clean{time.time_ns() % 10**9}")
    try:
        last = publish_events(clean.bootstrap, clean.topics["events"], small)
        w = clean.worker()
        clean.wait(last)
        _wait_alerts_landed(clean, w)
        clean.stop()
        state = clean.state()
        ids, _ = alert_ids(clean)
    finally:
        clean.stop()
    assert len(state) == 30, "the clean run must track every user"
    assert ids, "the history must raise alerts, or the comparison proves nothing"
    return state, ids


def read_all(bootstrap: str, topic: str, partitions: int = 8) -> dict[int, list]:  # type: ignore[type-arg]
    """Every record of ``topic`` per partition (harness.read_topic: up to the fetch highwaters)."""
    out: dict[int, list] = {p: [] for p in range(partitions)}  # type: ignore[type-arg]
    for rec in read_topic(bootstrap, topic, partitions, timeout_s=30):
        out[rec.partition].append(rec)
    return out


def alert_ids(run: Run) -> tuple[set[str], int]:
    ids = [orjson.loads(r.value)["alert_id"] for recs in read_all(run.bootstrap, run.topics["alerts"]).values() for r in recs]
    return set(ids), len(ids)


def _assert_same(run: Run, ref_state: dict[str, bytes], ref_ids: set[str]) -> None:
    """Every user's state bytes and the set of alert ids equal the reference's."""
    run.alerts = lambda: alert_ids(run)  # type: ignore[method-assign]
    _assert_same_slow(run, ref_state, ref_ids)


class QuickRun(Run):
    """A run whose "done" is: progress complete, every review due before the workers' review
    clocks ran (``Run.wait_reviewed``), then 1.5 s without a state change as a guard."""

    def wait(self, last: dict[int, int], timeout_s: float = 120.0) -> None:
        wait_progress(self.redis_url, self.topics["events"], last, timeout_s, self.workers, prefix=self.prefix)
        self.wait_reviewed()
        wait_quiet(self.redis_url, self.prefix, quiet_s=1.5)


def _wait_alerts_landed(run: Run, w: Worker) -> None:
    """Alerts are acknowledged before a cycle's state write: once progress is complete the alert
    counter is final; wait until the topic holds that many records."""
    sent = metric(w, "churnwatch_alerts_total")
    wait_for("alerts on the topic", lambda: alert_ids(run)[1] >= sent, 30, (w,))


def test_events_without_event_id_are_accepted_with_derived_ids(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                unique_name: str, small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    ref_state, ref_ids = reference
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-noid")
    try:
        bare = []
        for ev in small:
            body = orjson.loads(event_value(ev))
            del body["event_id"]
            bare.append((ev.user_id.encode(), orjson.dumps(body)))
        last = publish_events(kafka_bootstrap, fault.topics["events"], [], extra=bare)
        w = fault.worker()
        fault.wait(last)
        _wait_alerts_landed(fault, w)
        assert metric(w, "churnwatch_events_derived_id_total") == len(small)
        assert metric(w, "churnwatch_events_rejected_total") == 0
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()



def _recreate(bootstrap: str, topic: str) -> None:
    """Delete ``topic`` and create it again, empty, with the same 8 partitions."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 30
        while topic in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        admin.create_topics([NewTopic(topic, 8, 1)])
    finally:
        admin.close()


def _parts(events: list[Event], *shares: float) -> list[list[Event]]:
    cuts = [0] + [int(len(events) * s) for s in shares] + [len(events)]
    return [events[a:b] for a, b in zip(cuts, cuts[1:])]


def test_a_replaced_topic_is_applied_from_its_start(kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str,
                                                    small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    """The topic comes back empty while a worker runs (progress beyond the new log end), then is
    replaced again while no worker runs, by a log longer than the old one (the record at the
    stored offset is another one). Both are detected; the new logs are applied from offset 0."""
    ref_state, ref_ids = reference
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-reset")
    try:
        first, second, third = _parts(small, 0.4, 0.5)
        topic = fault.topics["events"]
        w = fault.worker()
        fault.wait(publish_events(kafka_bootstrap, topic, first))
        _recreate(kafka_bootstrap, topic)  # while the worker runs
        wait_for("the running worker to see the log end below its progress",
                 lambda: metric(w, "churnwatch_topic_resets_total", 'reason="beyond_log_end"') >= 1, 60, (w,))
        fault.wait(publish_events(kafka_bootstrap, topic, second))
        _wait_alerts_landed(fault, w)
        fault.stop()
        _recreate(kafka_bootstrap, topic)  # while no worker runs: a longer log than the one before
        last = publish_events(kafka_bootstrap, topic, third)
        w2 = fault.worker()
        wait_for("the resumed worker to recognise the replaced log",
                 lambda: metric(w2, "churnwatch_topic_resets_total") >= 1, 60, (w2,))
        fault.wait(last)
        _wait_alerts_landed(fault, w2)
        assert "the topic was replaced" in w.output() + w2.output()
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()


def _redis_damaged_mid_run(fault: QuickRun, kafka_bootstrap: str, events: list[Event], damage: Callable[[Any], None]) -> Worker:
    """The first half of ``events`` applied by a worker, ``damage`` done to its Redis (a client
    given), the worker's ``churnwatch_redis_data_lost_total`` seen, then the second half applied
    and its alerts landed: the worker, for the test's own checks of how it recovered."""
    import redis as redis_lib

    first, second = _parts(events, 0.5)
    topic = fault.topics["events"]
    w = fault.worker()
    fault.wait(publish_events(kafka_bootstrap, topic, first))
    client = redis_lib.Redis.from_url(fault.redis_url)
    try:
        damage(client)
    finally:
        client.close()
    wait_for("the worker to notice", lambda: metric(w, "churnwatch_redis_data_lost_total") >= 1, 30, (w,))
    fault.wait(publish_events(kafka_bootstrap, topic, second))
    _wait_alerts_landed(fault, w)
    return w


def test_redis_that_lost_its_data_is_rebuilt_from_the_topic(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                             unique_name: str, small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    """Redis comes back empty (a restart without persistence) while a worker runs: the worker
    sees the incarnation marker gone, stops applying and rebuilds from offset 0; the alerts it
    sends again carry the ids of the first run."""
    ref_state, ref_ids = reference
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-lost")
    try:
        w = _redis_damaged_mid_run(fault, kafka_bootstrap, small, lambda r: r.flushdb())  # a restart without persistence
        assert "REDIS LOST ITS DATA" in w.output()
        assert metric(w, "churnwatch_history_incomplete") == 0, "the topic still holds every event"
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()


def test_redis_that_lost_only_its_meta_key_is_cleared_and_rebuilt(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                   unique_name: str, small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    """Only cw:meta is lost (``DEL``, or an eviction) while the buckets keep their old incarnation
    marker (QA8 H2): the worker used to make a new incarnation on reconnect, find the old one in
    every bucket and raise StoreLost again, for good. Now it empties the store under the rebuild
    lock and rebuilds it from the topic once: states and alert ids as in the clean run."""
    def lose_meta(client: Any) -> None:
        assert client.delete(f"{fault.prefix}:meta") == 1

    ref_state, ref_ids = reference
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-meta")
    try:
        w = _redis_damaged_mid_run(fault, kafka_bootstrap, small, lose_meta)
        assert "kept buckets of the store's old incarnation" in w.output()
        assert metric(w, "churnwatch_redis_data_lost_total") == 1, "one rebuild, not a loop"
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()


def test_workers_started_on_a_store_without_its_meta_key_clear_it_once(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                        unique_name: str, small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    """cw:meta lost while no worker runs, then two workers start at once (QA8 H2: a restart did not
    help): one clears the store under the rebuild lock, the other waits for it; both rebuild from the
    topic, and the states and alert ids are those of the clean run."""
    import redis as redis_lib

    ref_state, ref_ids = reference
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-meta2", shared_group=True)
    try:
        first, second = _parts(small, 0.5)
        topic = fault.topics["events"]
        w0 = fault.worker()
        fault.wait(publish_events(kafka_bootstrap, topic, first))
        _wait_alerts_landed(fault, w0)
        before = alert_ids(fault)[1]
        fault.stop()
        client = redis_lib.Redis.from_url(redis_url)
        try:
            assert client.delete(f"{fault.prefix}:meta") == 1
        finally:
            client.close()
        last = publish_events(kafka_bootstrap, topic, second)
        w1, w2 = fault.worker(), fault.worker()
        fault.wait(last, timeout_s=60)
        sent = lambda: metric(w1, "churnwatch_alerts_total") + metric(w2, "churnwatch_alerts_total")  # noqa: E731
        wait_for("alerts on the topic", lambda: alert_ids(fault)[1] >= before + sent(), 30, (w1, w2))
        assert (w1.output() + w2.output()).count("kept buckets of the store's old incarnation") == 1, "cleared once"
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()


def test_a_worker_with_another_model_refuses_or_takes_over(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                            unique_name: str, small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    """The model in use is recorded in Redis. A worker started with another model file refuses to
    start (exit 2, one line) and changes nothing; with --take-over-model it records its model and
    the old worker stops taking work (exit 3), so one model scores each partition at a time."""
    import redis as redis_lib

    from models.model import load_model
    from streams.worker.store import model_id

    ref_state, ref_ids = reference
    new_model = load_model().with_(version="test-v2", risk_enter=0.3, risk_exit=0.2)
    path = tmp_path / "model-v2.json"
    new_model.save(path)
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-model", shared_group=True)
    client = redis_lib.Redis.from_url(redis_url)
    try:
        first, second = _parts(small, 0.5)
        topic = fault.topics["events"]
        old = fault.worker()
        fault.wait(publish_events(kafka_bootstrap, topic, first))
        meta = f"{fault.prefix}:meta"
        assert client.hget(meta, "model").decode() == model_id(load_model())
        refused = fault.worker(CHURNWATCH_MODEL_PATH=str(path))
        refused.expected_exit = True
        assert refused.proc is not None and refused.proc.wait(timeout=60) == 2
        assert "records model" in refused.output() and "Traceback" not in refused.output()
        fault.wait(publish_events(kafka_bootstrap, topic, second))
        _wait_alerts_landed(fault, old)
        _assert_same(fault, ref_state, ref_ids)  # the refused worker changed nothing

        new = fault.worker(CHURNWATCH_MODEL_PATH=str(path), CHURNWATCH_MODEL_TAKEOVER="true")
        old.expected_exit = True
        assert old.proc is not None and old.proc.wait(timeout=60) == 3
        assert "this worker stops taking work" in old.output()
        assert client.hget(meta, "model").decode() == model_id(new_model)
        wait_for("the new model's worker to own the partitions",
                 lambda: metric(new, "churnwatch_partitions_assigned") == 8, 60, (new,))
        assert metric(new, "churnwatch_model_info", model_id(new_model)) == 1
    finally:
        client.close()
        fault.stop()


def test_records_not_keyed_by_user_are_rerouted_to_one_partition_per_user(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str, small: list[Event]) -> None:
    """Producers that do not key by user id, two workers: ten users sent with a null key (all in
    one partition, as a sticky partitioner does), ten keyed by device id, ten by user id. Each
    mis-keyed record is produced again keyed by its user id, so every user lives in one partition,
    and the end state equals a clean run where every event was keyed by user id.

    The copies reach a user's partition after the other users' events of the same days, so both
    runs allow 60 days of lateness (no copy is late); a copy reaching its partition later than the
    allowed lateness would go to the DLQ as ``late`` as from any producer."""
    env = {"CHURNWATCH_ALLOWED_LATENESS_MS": "60d"}
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-keys", shared_group=True)
    clean = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-keysref")
    try:
        w = clean.worker(**env)
        clean.wait(publish_events(kafka_bootstrap, clean.topics["events"], small))
        _wait_alerts_landed(clean, w)
        clean.stop()
        ref_state, (ref_ids, _) = clean.state(), alert_ids(clean)
        assert ref_ids and len(ref_state) == 30

        workers = (fault.worker(**env), fault.worker(**env))
        wait_for("two workers sharing the partitions",
                 lambda: [metric(w, "churnwatch_partitions_assigned") for w in workers] == [4.0, 4.0], 60, workers)
        n = {"null_key": 0, "other_key": 0}
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_in_flight_requests_per_connection=1)
        for ev in small:
            u = int(ev.user_id.rsplit("-", 1)[1])
            if u < 10:
                n["null_key"] += 1
                producer.send(fault.topics["events"], key=None, value=event_value(ev), partition=u % 8)
            else:
                if u < 20:
                    n["other_key"] += 1
                producer.send(fault.topics["events"], key=(f"device-{u}" if u < 20 else ev.user_id).encode(), value=event_value(ev))
        producer.flush()
        producer.close()
        wait_for("every mis-keyed record re-routed",
                 lambda: sum(metric(w, "churnwatch_events_rerouted_total") for w in workers) >= sum(n.values()), 60, workers)
        for reason, count in n.items():
            assert sum(metric(w, "churnwatch_events_rerouted_total", f'reason="{reason}"') for w in workers) == count
        fault.wait({p: recs[-1].offset for p, recs in read_all(kafka_bootstrap, fault.topics["events"]).items() if recs})
        for w in workers:
            _wait_alerts_landed(fault, w)
        assert sum(metric(w, "churnwatch_events_rejected_total") for w in workers) == 0, "no copy was late"
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()
        clean.stop()


def test_an_idle_worker_follows_the_topic_clock_another_worker_moves(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str, small: list[Event]) -> None:
    """Two workers; the first 20 days go to every partition, the rest only to the users of
    partition 0. The worker not owning partition 0 then gets no records, yet its caught-up idle
    partitions follow the topic's stream time (ARCHITECTURE.md, the review clock), which only the
    other worker's progress moves: every review due before that clock runs (harness.wait_reviewed
    computes it from the stored progress of all partitions)."""
    from streams.worker.relayout import partition_of

    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-idle", shared_group=True)
    try:
        first = fault.worker()
        wait_for("the first worker owning every partition", lambda: metric(first, "churnwatch_partitions_assigned") == 8, 60, (first,))
        workers = (first, fault.worker())
        wait_for("two workers sharing the partitions",
                 lambda: [metric(w, "churnwatch_partitions_assigned") for w in workers] == [4.0, 4.0], 60, workers)
        # the second's join took 4 partitions from the first: a rebalance ChurnwatchRebalancing counts (QA15 F6)
        assert metric(first, "churnwatch_rebalances_total") >= 1
        cut_ms = small[0].ts_ms + 20 * 86_400_000
        early = [ev for ev in small if ev.ts_ms < cut_ms]
        rest = [ev for ev in small if ev.ts_ms >= cut_ms and partition_of(ev.user_id, 8) == 0]
        assert rest and any(partition_of(ev.user_id, 8) != 0 for ev in early)
        fault.wait(publish_events(kafka_bootstrap, fault.topics["events"], early))
        fault.wait(publish_events(kafka_bootstrap, fault.topics["events"], rest))
        from models.state import UserState

        reviewed = [UserState.from_bytes(blob).last_review_s for uid, blob in fault.state().items() if partition_of(uid, 8) != 0]
        assert reviewed and max(reviewed) * 1000 >= cut_ms, "users outside partition 0 were reviewed after the cut"
    finally:
        fault.stop()


def test_a_grown_partition_count_stops_the_workers_and_relayout_moves_the_state(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str, small: list[Event], reference) -> None:  # type: ignore[no-untyped-def]
    """The events topic grows from 8 to 16 partitions while a worker runs. Tansu cannot add
    partitions, so the topic has 16 from the start, the state is recorded as laid out for 8 (as
    the first worker would have recorded before the growth), the first half of the history is
    written with murmur2(key) % 8 and the second with % 16, as producers do before and after.
    The worker stops at the first record in a new partition; `churnwatch relayout` refuses while it
    still runs (QA20b F11), and with the workers stopped moves the state; the end state equals the
    clean run (8 partitions: a user's state and alerts do not depend on which partition it lives in)."""
    import subprocess
    import sys

    import redis as redis_lib
    from kafka.admin import KafkaAdminClient, NewTopic

    from streams.worker.relayout import partition_of

    ref_state, ref_ids = reference
    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-grow")
    fault.topics["events"] += "-16"  # an events topic of 16 partitions
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(fault.topics["events"], 16, 1)])
    admin.close()
    try:
        topic = fault.topics["events"]
        client = redis_lib.Redis.from_url(redis_url)
        client.hset(f"{fault.prefix}:meta", f"partitions:{topic}", 8)  # built before the growth
        client.close()
        first, second = _parts(small, 0.5)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_in_flight_requests_per_connection=1)
        last: dict[int, int] = {}
        for ev in first:
            md = producer.send(topic, key=ev.user_id.encode(), value=event_value(ev), partition=partition_of(ev.user_id, 8)).get(30)
            last[md.partition] = md.offset
        w = fault.worker()
        fault.wait(last)
        moved = {ev.user_id for ev in small if partition_of(ev.user_id, 8) != partition_of(ev.user_id, 16)}
        assert moved, "some users move partition, or the test proves nothing"
        for ev in second:  # the producers now see 16 partitions
            md = producer.send(topic, key=ev.user_id.encode(), value=event_value(ev)).get(30)
            last[md.partition] = max(last.get(md.partition, -1), md.offset)
        producer.close()
        wait_for("the worker to stop taking work", lambda: metric(w, "churnwatch_partition_layout_changed") == 1, 60, (w,))
        assert "stops taking work" in w.output() and "churnwatch relayout" in w.output()
        assert all(p < 8 for p in read_progress(redis_url, topic, fault.prefix)), "nothing of a new partition applied"
        assert metric(w, "churnwatch_state_partitions") == 8 and metric(w, "churnwatch_topic_partitions") == 16
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url,
               "CHURNWATCH_KEY_PREFIX": fault.prefix, "CHURNWATCH_TOPIC_EVENTS": topic}
        out = subprocess.run([sys.executable, "-m", "streams.cli", "relayout"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and f"1 worker runs on {topic}" in out.stderr, out.stderr  # halted, still running: step 2 first
        fault.stop()

        out = subprocess.run([sys.executable, "-m", "streams.cli", "relayout"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "from 8 to 16 partitions" in out.stdout
        w2 = fault.worker()
        fault.wait(last)
        _wait_alerts_landed(fault, w2)
        assert metric(w2, "churnwatch_partition_layout_changed") == 0
        _assert_same(fault, ref_state, ref_ids)
    finally:
        fault.stop()


def test_a_record_with_an_origin_header_the_worker_did_not_write_goes_to_the_dlq_and_drops_no_copy(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str) -> None:
    """QA5 M4: a product service (or a tool copying a topic with its headers) publishes one event
    carrying ``churnwatch-origin: <q>:999999999``. Before, the worker took it for a re-routed copy:
    999999999 became the highest origin offset applied from partition q, and every later genuine
    copy of a mis-keyed event read in q was dropped as a second copy (a counter only). Now the
    record goes to the DLQ as ``bad_origin`` (its origin is beyond q's log end) and the 20 events
    sent afterwards with a null key into q are re-routed and all applied."""
    from streams.worker.relayout import partition_of

    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-origin")
    try:
        user = "g0"
        p = partition_of(user, 8)
        q = (p + 1) % 8
        base = (int(time.time()) - 10 * 86_400) * 1000
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_in_flight_requests_per_connection=1)
        forged = event_value(Event(user, base, "view", "forged"))
        producer.send(fault.topics["events"], key=user.encode(), value=forged,
                      headers=[("churnwatch-origin", f"{q}:999999999".encode())]).get(30)
        w = fault.worker()
        wait_for("the forged record read", lambda: metric(w, "churnwatch_events_consumed_total") >= 1, 60, (w,))
        for i in range(20):  # after the forged record was read: before the fix, its mark was set by then
            producer.send(fault.topics["events"], key=None, value=event_value(Event(user, base + (i + 1) * 60_000, "view", f"nk{i}")),
                          partition=q)
        producer.flush()
        producer.close()
        wait_for("the 20 null-key events re-routed", lambda: metric(w, "churnwatch_events_rerouted_total") >= 20, 60, (w,))
        fault.wait({part: recs[-1].offset for part, recs in read_all(kafka_bootstrap, fault.topics["events"]).items() if recs})
        assert metric(w, "churnwatch_rerouted_duplicates_total") == 0, "no genuine copy was dropped"
        # every copy applied, the forged record not (the counter follows the progress write: waited for)
        wait_for("20 events counted", lambda: metric(w, "churnwatch_events_processed_total") == 20, 30, (w,))
        assert metric(w, "churnwatch_events_rejected_total", 'reason="bad_origin"') == 1
        dlq = [orjson.loads(r.value) for recs in read_all(kafka_bootstrap, fault.topics["dlq"]).values() for r in recs]
        assert [(d["reason"], d["partition"]) for d in dlq] == [("bad_origin", p)], dlq
        assert f"{q}:999999999" in dlq[0]["detail"] and "log end" in dlq[0]["detail"], dlq[0]["detail"]
    finally:
        fault.stop()


def _churned_revenue_stats(run: Run) -> dict[str, float]:
    """The ``churned_rev:<day>`` counters of a run, summed over its buckets (what churn_summary reads)."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(run.redis_url)
    try:
        out: dict[str, float] = {}
        for key in client.scan_iter(f"{run.prefix}:{{*}}:stats"):
            for name, value in client.hgetall(key).items():
                if name.startswith(b"churned_rev:"):
                    out[name.decode()] = out.get(name.decode(), 0.0) + float(value)
        return {k: round(v, 2) for k, v in out.items() if v}
    finally:
        client.close()


def test_the_revenue_of_a_churn_is_the_same_for_a_backlog_and_for_one_record_per_cycle(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str) -> None:
    """QA5 M5 on the real worker: a user buys 3 x 10.00, goes silent until churned, comes back
    and buys 26.95 and 38.81. Read as a backlog (the churn and the later purchases in one cycle,
    as a rebuild reads them) and one record per cycle (a paced publish), ``churned_rev`` of the
    churn's day is 30.00 both times: the revenue up to the churn. Before, the backlog counted the
    state at the cycle's end, 95.76."""
    day_ms = 86_400_000
    start = 1_767_225_600_000  # 2026-01-01
    events = [Event("u-rev", start + d * day_ms, "view", f"v{d}") for d in range(0, 40, 2)]
    events += [Event("u-rev", start + d * day_ms + 1, "purchase", f"p{d}", amount=10.0) for d in (3, 17, 33)]
    back = start + 200 * day_ms
    events += [Event("u-rev", back, "view", "back"), Event("u-rev", back + 1, "purchase", "pback", amount=26.95),
               Event("u-rev", back + 25 * day_ms, "purchase", "pback2", amount=38.81)]
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    runs = [QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-{name}") for name in ("backlog", "paced")]
    try:
        lasts = [publish_events(kafka_bootstrap, run.topics["events"], events) for run in runs]
        for run, env in zip(runs, ({}, {"CHURNWATCH_BATCH_MAX_RECORDS": "1"})):  # both at once: the test's time
            run.worker(**env)
        for run, last in zip(runs, lasts):
            run.wait(last)
        seen = [_churned_revenue_stats(run) for run in runs]
    finally:
        for run in runs:
            run.stop()
    assert len(seen[0]) == 1 and list(seen[0].values()) == [30.0], seen
    assert seen[1] == seen[0], seen


def test_log_ends_are_fetch_highwaters_even_for_the_last_batch(kafka_bootstrap: str, unique_name: str) -> None:
    """The end the origin check trusts: 10 records produced as one batch into partition 0. Every
    offset of that batch is below the end LogEnds reads (a genuine origin in it is accepted), and
    so is nothing at or beyond 10, whichever offset is asked about or known before. (Tansu's
    ListOffsets answers 1 here: the last batch's base offset + 1.)"""
    import asyncio

    from streams.settings import Settings
    from streams.worker.consumer import LogEnds

    topic = _topics(kafka_bootstrap, f"{unique_name}-ends")["events"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=50)
    for i in range(10):
        producer.send(topic, key=b"k", value=b"%d" % i, partition=0)
    producer.flush()
    producer.close()

    async def read() -> list[dict[int, int]]:
        ends = LogEnds(Settings.from_env({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}), topic)
        try:
            return [await ends.read({0: 9}, {}), await ends.read({0: 999_999_999}, {0: 10}), await ends.read({1: 0}, {})]
        finally:
            await ends.stop()

    assert asyncio.run(read()) == [{0: 10}, {0: 10}, {1: 0}]


def test_a_log_end_that_never_comes_holds_only_the_partition_whose_copy_needs_it(
        kafka_bootstrap: str, redis_url: str, tmp_path: Path, unique_name: str) -> None:
    """Review of the origin check: a copy whose origin's log end cannot be read stalled every
    partition (``_learn_log_ends`` retried the read on the loop's path until it answered). Here the
    end never comes: the state is laid out for 16 partitions (a topic that shrank to 8, as one a
    broker auto-created after losing its storage), and a record in partition 0 names an origin in
    partition 12, which the broker does not have. Partition 1's 30 events are applied all the same;
    partition 0 waits at that record, which is never applied."""
    import redis as redis_lib

    from streams.worker.relayout import partition_of

    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-noend")
    try:
        topic = fault.topics["events"]
        client = redis_lib.Redis.from_url(redis_url)
        client.hset(f"{fault.prefix}:meta", f"partitions:{topic}", 16)
        client.close()
        users = {p: next(f"h{i}" for i in range(10_000) if partition_of(f"h{i}", 16) == p) for p in (0, 1)}
        base = (int(time.time()) - 10 * 86_400) * 1000
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_in_flight_requests_per_connection=1)
        held = producer.send(topic, key=users[0].encode(), value=event_value(Event(users[0], base, "view", "copy")),
                             headers=[("churnwatch-origin", b"12:0")], partition=0).get(30)
        last = 0
        for i in range(30):
            last = producer.send(topic, key=users[1].encode(), value=event_value(Event(users[1], base + i * 60_000, "view", f"v{i}")),
                                 partition=1).get(30).offset
        producer.close()
        w = fault.worker()
        wait_progress(redis_url, topic, {1: last}, 30, (w,), prefix=fault.prefix)
        # the counter follows the progress write (pipeline._count): wait for it, do not race it
        wait_for("30 events counted", lambda: metric(w, "churnwatch_events_processed_total") == 30, 30, (w,))
        assert read_progress(redis_url, topic, fault.prefix).get(0, -1) < held.offset, "the copy waits, unjudged"
        # the line comes from the cycle that met the copy, which need not be before partition 1's last
        wait_for("the held partition named", lambda: "partitions [0] wait for it" in w.output(), 30, (w,))
    finally:
        fault.stop()


def test_a_partition_another_worker_restarted_is_no_redis_rollback(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                  unique_name: str) -> None:
    """Review of the rollback detector: another worker that found a partition's log replaced
    restarts it (``Store.restart_partition``: its offsets deleted, its progress -1) while this
    worker still takes the partition for its own (a member the group evicted without telling it;
    the broker's group state lost with its storage). This worker then reads offsets below its own
    acknowledged writes, which it took for Redis going back in time: a WARNING, a count in
    ``churnwatch_redis_rollbacks_total`` and a page (ChurnwatchRedisRolledBack). The store's count
    of that partition's restarts, which only ever rises, tells the two apart: no rollback counted,
    a line naming the restart; the worker still resumes from what Redis holds."""
    import asyncio

    from streams.settings import Settings
    from streams.worker.relayout import partition_of
    from streams.worker.store import Store

    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-elsewhere")
    try:
        topic = fault.topics["events"]
        users = [f"r{i}" for i in range(200) if partition_of(f"r{i}", 8) == 3][:5]
        base = (int(time.time()) - 20 * 86_400) * 1000
        w = fault.worker()
        first = [Event(u, base + i * 3_600_000, "view", f"{u}-{i}") for i in range(3) for u in users]
        wait_progress(redis_url, topic, publish_events(kafka_bootstrap, topic, first), 30, (w,), prefix=fault.prefix)

        async def restart_elsewhere() -> None:  # what the other worker runs (StreamConsumer._restart)
            store = Store(Settings.from_env({**os.environ, "REDIS_URL": redis_url, "CHURNWATCH_KEY_PREFIX": fault.prefix,
                                             "CHURNWATCH_TOPIC_EVENTS": topic}))
            try:
                await store.connect()
                await store.restart_partition(topic, 3, 0)
            finally:
                await store.close()

        asyncio.run(restart_elsewhere())
        publish_events(kafka_bootstrap, topic, [Event(u, base + 10 * 3_600_000, "view", f"{u}-late") for u in users])
        wait_for("the worker to notice its offsets of partition 3 gone",
                 lambda: "restarted by another worker" in w.output() or "REDIS WENT BACK IN TIME" in w.output(), 30, (w,))
        assert metric(w, "churnwatch_redis_rollbacks_total") == 0, "no Redis rollback counted"
        assert f"{topic}[3] was restarted by another worker" in w.output()
    finally:
        fault.stop()


def test_a_replaced_topic_applies_the_account_copies_of_its_new_log(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                    unique_name: str) -> None:
    """A restart for a replaced log forgot the partition's user offsets but kept its account
    offsets (``acct|<topic>:<p>`` of every ``cw:{b}:off``), so every account copy of the new log at
    an offset up to the old one was skipped as applied before: an account's subscription changes
    after a broker lost its storage never reached its revenue state. Here each partition's old log
    holds 40 records before its account copies; after the topic is replaced, the accounts' new
    plan (a copy at a low offset of the new log) is applied. The topic is replaced while no worker
    runs: a running worker's account copies produced into the topic while it is deleted make
    Tansu answer the next produce to the new topic with UnknownError (its stored batches collide:
    the broker's quirk, seen once in CI); the restart and its forgetting are the same code."""
    from tests.harness import account_barrier

    fault = QuickRun(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-acctreset")
    try:
        topic = fault.topics["events"]
        base = (int(time.time()) - 20 * 86_400) * 1000
        filler = [Event(f"f{i}", base + i * 1000, "view", f"f{i}") for i in range(320)]  # ~40 a partition
        publish_events(kafka_bootstrap, topic, filler)
        w = fault.worker()
        account_barrier(kafka_bootstrap, redis_url, topic, 8, 1, base + 400_000, 30, (w,), prefix=fault.prefix)
        fault.stop()
        _recreate(kafka_bootstrap, topic)
        w2 = fault.worker()
        wait_for("every partition restarted", lambda: metric(w2, "churnwatch_topic_resets_total") >= 8, 30, (w2,))
        account_barrier(kafka_bootstrap, redis_url, topic, 8, 2, base + 500_000, 30, (w2,), prefix=fault.prefix)
    finally:
        fault.stop()
