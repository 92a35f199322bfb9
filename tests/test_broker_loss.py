"""A Kafka broker that lost its storage under a running worker (QA5 M2), on a broker of the test's own.

The session's broker is shared by every test, so each test here starts a Tansu of its own (memory
storage, as the demo runs it) and kills it with SIGKILL: it comes back on the same port with no
topic at all, the case of a broker whose disk was replaced or of Tansu in memory restarted.
Waits are on conditions (log lines, metrics, Redis progress), never sleeps followed by asserts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from models.events import Event
from models.model import load_model
from streams.local import Service, start_kafka
from streams.settings import Settings
from streams.worker import metrics
from streams.worker.gap import gap_of
from streams.worker.service import WorkerRuntime
from tests.harness import (QUICK_GROUP_BROKERS, Worker, group_session_ms, metric, publish_events, read_progress, read_topic,
                           redis_client, wait_for, wait_progress)

pytestmark = [pytest.mark.integration]

START_MS = 1_767_225_600_000  # 2026-01-01


@pytest.fixture()
def own_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Service]]:
    """A Tansu of this test's own (a list: the test replaces it by the restarted one); stopped after."""
    monkeypatch.setenv("CHURNWATCH_NO_DOCKER", "1")  # a process we can kill -9 and start again on its port
    brokers = [start_kafka(use_env=False)]
    QUICK_GROUP_BROKERS.add(brokers[0].address)  # a Tansu: the workers' short group session (harness.group_session_ms)
    yield brokers
    QUICK_GROUP_BROKERS.discard(brokers[0].address)
    for broker in brokers:
        broker.stop()


def _nothing_creates_it_again(monkeypatch: pytest.MonkeyPatch, topic: str) -> asyncio.Event:
    """A gate (open until cleared) on the two requests of this process's aiokafka clients (the
    in-process worker's) that make Tansu create ``topic`` again, which Tansu 0.6.0 has no switch
    to refuse: while it is closed, a produce into ``topic`` waits (a due account heartbeat: Tansu
    stores it, creating the topic), and a metadata update naming ``topic`` fails at once without
    being sent (aiokafka asks with auto-creation on; the client keeps its view, as when the broker
    does not answer). Fetches, offset requests, group requests and listings of every topic (no
    topic named) go as before, so the worker finds the topic missing as it would on a broker that
    creates no topic by itself."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.produce import ProduceRequest

    gate = asyncio.Event()
    gate.set()
    metadata_update, send = AIOKafkaClient._metadata_update, AIOKafkaClient.send

    async def gated_metadata_update(self: AIOKafkaClient, cluster: Any, topics: Any) -> Any:
        if topics and topic in topics and not gate.is_set():
            await asyncio.sleep(0.1)  # aiokafka's retry backoff, as after a broker that did not answer
            return False
        return await metadata_update(self, cluster, topics)

    async def gated_send(self: AIOKafkaClient, node_id: Any, request: Any, **kwargs: Any) -> Any:
        if isinstance(request, ProduceRequest) and any(name == topic for name, _ in request._topics):
            await gate.wait()
        return await send(self, node_id, request, **kwargs)

    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", gated_metadata_update)
    monkeypatch.setattr(AIOKafkaClient, "send", gated_send)
    return gate


def _create_topics(bootstrap: str, topics: dict[str, str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topics[k], 4, 1) for k in ("events", "alerts", "dlq")])
    finally:
        admin.close()


def _events(tag: str, users: int, per_user: int, start_ms: int) -> list[Event]:
    return [Event(f"{tag}{u}", start_ms + (u * per_user + i) * 60_000, "view", f"{tag}{u}-{i}")
            for u in range(users) for i in range(per_user)]


def _deployment(own_broker: list[Service], redis_url: str, unique_name: str, tmp_path: Path
                ) -> tuple[str, dict[str, str], str, dict[int, int], Worker]:
    """Topics of 4 partitions on the test's own broker, 36 events of 12 users published, and one
    worker (its own key prefix) that has applied them: the start of the broker-loss stories."""
    bootstrap = own_broker[0].address
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}",
              "group": f"g-{unique_name}"}
    prefix = f"cw{unique_name.replace('-', '')}"
    _create_topics(bootstrap, topics)
    before = publish_events(bootstrap, topics["events"], _events("old", 12, 3, START_MS))
    worker = Worker(bootstrap, redis_url, topics, tmp_path / "w.log",
                    env={"CHURNWATCH_KEY_PREFIX": prefix, "CHURNWATCH_PARTITIONS": "4"}).start()
    try:
        wait_progress(redis_url, topics["events"], before, 60, (worker,), prefix=prefix)
    except BaseException:
        worker.stop()
        raise
    return bootstrap, topics, prefix, before, worker


def test_a_broker_that_lost_its_storage_leaves_the_worker_waiting_then_restarts_each_partition_once(
        own_broker: list[Service], redis_url: str, tmp_path: Path, unique_name: str) -> None:
    """QA5 M2. The broker restarts empty under a caught-up worker. Tansu answers a fetch of the
    topic it no longer has with an empty log, so the worker used to restart every partition at
    once against that phantom log and stay ready with lag 0 (and, with accounts, write its
    heartbeats into the missing topic, which ended in a loop of hundreds of restarts once the
    topic was created again). Now it restarts nothing while the topic does not exist: one ERROR
    naming the topic, not ready; once the topic exists again and new events come, each partition
    that had progress restarts exactly once, from offset 0 of the new log, and applies it."""
    bootstrap, topics, prefix, before, worker = _deployment(own_broker, redis_url, unique_name, tmp_path)
    try:
        assert len(before) == 4, "every partition has progress, or 'once per partition' proves little"

        port = int(bootstrap.rsplit(":", 1)[1])
        own_broker[0].kill()
        own_broker.append(start_kafka(port, use_env=False))  # the same address, no topic
        wait_for("the worker to say the events topic is missing",
                 lambda: "does not exist" in worker.output() and metric(worker, "churnwatch_ready") == 0, 30, (worker,))
        assert topics["events"] in worker.output().split("does not exist")[0].rsplit("\n", 1)[-1], "the ERROR names the topic"
        assert metric(worker, "churnwatch_topic_resets_total") == 0, "nothing restarted against a topic that does not exist"
        assert read_progress(redis_url, topics["events"], prefix) == before, "the stored progress is untouched"

        _create_topics(bootstrap, topics)  # `churnwatch topics`, as the ERROR says
        after = publish_events(bootstrap, topics["events"], _events("new", 12, 1, START_MS + 86_400_000))
        assert all(after[p] < before[p] for p in after), "the new log ends below the old progress everywhere"
        wait_for("every partition restarted", lambda: metric(worker, "churnwatch_topic_resets_total") >= 4, 30, (worker,))
        # each restart wrote its gap mark into the new log (streams.worker.gap): the log ends at the later of the two
        last = {p: max([after.get(p, -1), *m]) for p, m in _gap_marks(bootstrap, topics["events"]).items()}
        assert sorted(last) == [0, 1, 2, 3]
        wait_for("the new log applied", lambda: all(read_progress(redis_url, topics["events"], prefix).get(p) == off
                                                    for p, off in last.items()), 30, (worker,))
        assert metric(worker, "churnwatch_topic_resets_total") == 4, "one restart per partition"
        # the counter follows the progress write (pipeline._count): wait for it, do not race it
        wait_for("48 events counted", lambda: metric(worker, "churnwatch_events_processed_total") == 36 + 12, 30, (worker,))
        wait_for("ready again", lambda: metric(worker, "churnwatch_ready") == 1, 30, (worker,))
        assert worker.output().count("the topic was replaced") == 4
    finally:
        worker.stop()


def _gap_marks(bootstrap: str, topic: str) -> dict[int, list[int]]:
    """The offsets of the gap marks (streams.worker.gap) in each partition of ``topic``."""
    out: dict[int, list[int]] = {}
    for rec in read_topic(bootstrap, topic, 4):
        if gap_of(rec.headers) is not None:
            out.setdefault(rec.partition, []).append(rec.offset)
    return out


def test_a_topic_reset_leaves_a_gap_mark_that_a_rebuild_after_a_redis_loss_reports(
        own_broker: list[Service], redis_url: str, tmp_path: Path, unique_name: str) -> None:
    """QA13 F3. After the broker lost its storage and the topic was made again, each restarted
    partition gets one gap mark in its new log; the worker that wrote it reads it with its
    users' states kept and reports nothing. Then Redis loses the deployment's keys: the rebuild
    replays the new log alone, meets the marks, and reports every partition's history
    incomplete (before, it reported 0: the new log starts at offset 0). The marks are no events:
    nothing is rejected and the processed count is the events'."""
    bootstrap, topics, prefix, before, worker = _deployment(own_broker, redis_url, unique_name, tmp_path)
    try:
        assert len(before) == 4, "every partition has progress: each one is restarted"
        assert _gap_marks(bootstrap, topics["events"]) == {}, "no mark without a reset"

        port = int(bootstrap.rsplit(":", 1)[1])
        own_broker[0].kill()
        own_broker.append(start_kafka(port, use_env=False))  # the same address, no topic
        wait_for("the worker to say the events topic is missing", lambda: "does not exist" in worker.output(), 30, (worker,))
        _create_topics(bootstrap, topics)
        after = publish_events(bootstrap, topics["events"], _events("new", 12, 1, START_MS + 86_400_000))
        wait_for("every partition restarted", lambda: metric(worker, "churnwatch_topic_resets_total") == 4, 30, (worker,))
        marks = _gap_marks(bootstrap, topics["events"])
        assert sorted(marks) == [0, 1, 2, 3] and all(len(m) == 1 for m in marks.values()), f"one mark a partition: {marks}"
        last = {p: max(after.get(p, -1), m[0]) for p, m in marks.items()}
        wait_for("the new log and the marks applied", lambda: all(read_progress(redis_url, topics["events"], prefix).get(p) == off
                                                                  for p, off in last.items()), 30, (worker,))
        wait_for("48 events counted", lambda: metric(worker, "churnwatch_events_processed_total") == 36 + 12, 30, (worker,))
        assert metric(worker, "churnwatch_history_incomplete") == 0, "the states kept across the reset hold the history"
        assert metric(worker, "churnwatch_events_rejected_total") == 0, "a mark is no event (and no DLQ record)"

        client = redis_client(redis_url)
        try:  # Redis lost the deployment's data (as FLUSHDB would, without touching the other tests' keys)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            assert keys
            client.delete(*keys)
        finally:
            client.close()
        wait_for("the rebuild to report every partition incomplete",
                 lambda: metric(worker, "churnwatch_redis_data_lost_total") >= 1
                 and all(metric(worker, "churnwatch_history_incomplete", f'partition="{p}"') == 1 for p in range(4)),
                 60, (worker,))
        wait_for("the rebuild to reach the marks", lambda: all(read_progress(redis_url, topics["events"], prefix).get(p) == off
                                                               for p, off in last.items()), 30, (worker,))
        lines = [line for line in worker.output().splitlines() if "holds a gap mark" in line]
        assert sorted(int(line.split(f"{topics['events']}[", 1)[1].split("]", 1)[0]) for line in lines) == [0, 1, 2, 3], lines
        assert all("WARNING" in line and "ChurnwatchHistoryIncomplete" in line for line in lines), lines
        assert _gap_marks(bootstrap, topics["events"]) == marks, "a rebuild writes no mark: nothing was reset"
    finally:
        worker.stop()


def test_no_cycle_runs_once_the_events_topic_is_found_missing(own_broker: list[Service], redis_url: str,
                                                               unique_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of the fix above: the turn that found the topic missing still ran a cycle (an empty
    batch through ``Pipeline.submit``). With accounts in use, a heartbeat due then went into the
    missing topic (Tansu stores it: the stray records of QA5 M2's restart loop), and every
    partition was observed caught up at the phantom log end 0. In-process, with accounts in use
    (an event naming one), so the cycle itself is seen: none is submitted once ``missing`` is set,
    up to the loop's first look for the topic (the stray cycle came before it, in the same turn).

    The topic is deleted (the worker's path is the one of a broker that lost its storage: a fetch
    reply with the log ending below its progress, then a listing without the topic), and from the
    deletion to that look nothing creates it again (:func:`_nothing_creates_it_again`). Until 4
    December 2026 the test killed its broker: the restarted one answered the worker's own requests
    (its consumer's metadata refresh on reconnecting, naming the topic; its group heartbeat, whose
    rejoin asks for the topic's metadata) before the worker's listing in about 1 run in 3 under CPU
    load, Tansu created the topic again, the worker never found it missing, and the wait for its
    first look timed out. The test fails as before on the code it was written for (an empty cycle
    in the turn that finds the topic missing: one submit with ``missing`` set)."""
    bootstrap = own_broker[0].address
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}"}
    prefix = f"cw{unique_name.replace('-', '')}"
    _create_topics(bootstrap, topics)
    events = _events("old", 8, 2, START_MS) + [Event("acct-user", START_MS, "view", "acct-1", 0.0, "acme")]
    published = publish_events(bootstrap, topics["events"], events)
    settings = Settings(kafka_bootstrap_servers=bootstrap, redis_url=redis_url, topic_events=topics["events"],
                        topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], key_prefix=prefix, partitions=4,
                        session_timeout_ms=group_session_ms(bootstrap))

    async def scenario() -> list[str | None]:
        gate = _nothing_creates_it_again(monkeypatch, topics["events"])
        runtime = WorkerRuntime(settings, load_model())
        assert await runtime.start()
        try:
            async def applied() -> None:  # off the loop: the worker runs on it
                # at or past each published offset, not equal to it: with accounts in use the worker's
                # heartbeats go into the events topic too, so the progress moves on past the events
                # (an equality passed only if it was looked at before the first heartbeat)
                while not _reached(await asyncio.to_thread(read_progress, redis_url, topics["events"], prefix), published):
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(applied(), 60)
            assert runtime.pipeline.heartbeats.active, "accounts in use: an idle cycle may heartbeat"
            consumer, submit, wait_for_topic = runtime.consumer, runtime.pipeline.submit, runtime.consumer._wait_for_topic
            missing_at_submit: list[str | None] = []
            missing_at_look: list[str | None] = []  # when the loop first looked for the topic (cleared once it exists)
            looked = asyncio.Event()

            async def recording_submit(*args: Any, **kwargs: Any) -> Any:
                missing_at_submit.append(consumer.missing)
                return await submit(*args, **kwargs)

            async def recording_wait() -> None:
                missing_at_look.append(consumer.missing)
                looked.set()
                await wait_for_topic()

            runtime.pipeline.submit = recording_submit  # type: ignore[method-assign]
            consumer._wait_for_topic = recording_wait  # type: ignore[method-assign]
            gate.clear()  # from here to the look, nothing the worker sends creates the topic again
            await asyncio.to_thread(_delete_topic, bootstrap, topics["events"])  # the test's last request naming it
            await asyncio.wait_for(looked.wait(), 30)
            assert missing_at_look[0] is not None
            return missing_at_submit
        finally:
            gate.set()
            await runtime.stop()

    missing_at_submit = asyncio.run(scenario())
    assert [m for m in missing_at_submit if m is not None] == [], "no cycle once the topic was found missing"


def _reached(progress: dict[int, int], published: dict[int, int]) -> bool:
    """Every partition's stored progress at or past its published last offset."""
    return all(progress.get(p, -1) >= off for p, off in published.items())


def _serve_beyond_the_end(bootstrap: str, topic: str, events: list[Event]) -> None:
    """Stage a broker whose storage contradicts itself (QA5 M2's stray heartbeats), on Tansu:
    ``events`` go as one batch into partition 0 of ``topic`` while it is deleted (Tansu stores
    them), the topic is created again, and one produce into it fails (UnknownError: the stored
    batch collides) but moves the log end to 1. A fetch from 0 then serves the whole batch with
    the log end at 1: its records from offset 1 on lie beyond the end the broker reports."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import KafkaError

    from streams.publisher import event_value

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=100)
    try:
        assert producer.partitions_for(topic), "known before the deletion: no metadata request would create it again"
        admin.delete_topics([topic])
        wait_for("the topic deleted", lambda: topic not in admin.list_topics(), 10)
        sent = [producer.send(topic, key=ev.user_id.encode(), value=event_value(ev), partition=0) for ev in events]
        producer.flush()
        assert [f.get(10).offset for f in sent] == list(range(len(events))), "one batch from offset 0"
        admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        producer.close()
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0)
    with pytest.raises(KafkaError):
        producer.send(topic, key=b"k", value=b"{}", partition=0).get(10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        served: list[int] = []
        wait_for("the batch served", lambda: bool(served.extend(r.offset for rs in consumer.poll(200).values() for r in rs))
                 or bool(served), 10)
        assert (served, consumer.highwater(tp)) == (list(range(len(events))), 1), "the staging: records beyond the log end"
    finally:
        consumer.close()


def test_records_served_beyond_the_log_end_wait_and_restart_nothing(own_broker: list[Service], redis_url: str,
                                                                    unique_name: str) -> None:
    """The guard of ``StreamConsumer._beyond_end``: a broker serves records at and beyond the log
    end it reports in the same fetch reply (Tansu, once a topic was created again over a batch
    written to it while it did not exist). Applied, they moved the next offset beyond the log end,
    which restarted the partition at 0, which read them again (QA5 M2: 318 restarts in 17 s).
    Staged on the broker (``_serve_beyond_the_end``: three events, the log end at 1) before the
    worker starts: it applies the record below the end (progress 0), holds the others and
    restarts nothing. They come in the first fetch after the assignment, which ``_check_log`` does
    not judge (it may predate the seek): before, that fetch applied them (progress 2)."""
    bootstrap = own_broker[0].address
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}"}
    prefix = f"cw{unique_name.replace('-', '')}"
    _create_topics(bootstrap, topics)
    _serve_beyond_the_end(bootstrap, topics["events"], _events("stray", 1, 3, START_MS))
    settings = Settings(kafka_bootstrap_servers=bootstrap, redis_url=redis_url, topic_events=topics["events"],
                        topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], key_prefix=prefix, partitions=4,
                        session_timeout_ms=group_session_ms(bootstrap))
    resets = metrics.TOPIC_RESETS.labels("beyond_log_end")
    resets_before = resets._value.get()

    async def scenario() -> tuple[list[tuple[int, int]], dict[int, int]]:
        runtime = WorkerRuntime(settings, load_model())
        consumer = runtime.consumer
        holds: list[tuple[int, int]] = []  # (partition, offset read again) of every hold
        hold = consumer._hold

        def recording_hold(tp: Any, offset: int, taken: bool, seconds: float) -> None:
            holds.append((tp.partition, offset))
            hold(tp, offset, taken, seconds)

        consumer._hold = recording_hold  # type: ignore[method-assign]
        assert await runtime.start()
        try:
            while True:  # held and the record below the end applied, or applied beyond the end (the old code)
                progress = await asyncio.to_thread(read_progress, redis_url, topics["events"], prefix)
                if (holds and progress.get(0) == 0) or progress.get(0, -1) > 0:
                    return holds, progress
                await asyncio.sleep(0.1)  # off the loop: the worker runs on it
        finally:
            await runtime.stop()

    holds, progress = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert progress == {0: 0}, "only the record below the log end applied"
    assert holds[0] == (0, 1), "the records beyond it wait, from offset 1"
    assert resets._value.get() == resets_before, "no restart"


def test_a_cycle_retrying_its_copies_sends_nothing_more_into_a_deleted_events_topic(
        own_broker: list[Service], redis_url: str, unique_name: str) -> None:
    """Leftover of f38fbd8: a worker's copies and heartbeats sent into its events topic after it
    was deleted (Tansu stores them, or creates the topic again; a topic created again over them
    serves records beyond its log end and answers later produces with UnknownError). Here a
    cycle's tail retries its copy when the topic is deleted: a re-routed copy of a null-key event
    of 1.1 MB, which the producer refuses (over its 1 MiB request size; the worker accepts events
    up to 2 MiB). Before, the tail sent it again every 2 s whatever became of the topic, and the
    loop, waiting for that tail, never looked at the topic. Now the first attempt after a failed
    one lists the topics: the worker finds the topic missing, the cycle is abandoned, and nothing
    is sent into the topic while the worker knows it missing (at most the one attempt a listing
    made just before the deletion allowed). Each of these is recorded when it happens (the sends,
    the settle that abandoned the cycle), not polled: ``missing`` is cleared again as soon as the
    topic exists again (Tansu creates a deleted topic again for a new client's metadata request
    naming it), so a poll of ``missing`` after that waited for nothing (a CI run under load timed
    out at that poll)."""
    from kafka import KafkaProducer

    from streams.publisher import event_value
    from streams.worker.pipeline import CycleAbandoned

    bootstrap = own_broker[0].address
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}"}
    prefix = f"cw{unique_name.replace('-', '')}"
    _create_topics(bootstrap, topics)
    settings = Settings(kafka_bootstrap_servers=bootstrap, redis_url=redis_url, topic_events=topics["events"],
                        topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], key_prefix=prefix, partitions=4,
                        session_timeout_ms=group_session_ms(bootstrap), max_event_bytes=2 * 1024 * 1024)
    huge = event_value(Event("big", START_MS, "view", "big-1"))[:-1] + b', "properties": "' + b"x" * 1_100_000 + b'"}'
    deleted = [False]  # set once the test saw the topic gone from the listing

    async def scenario() -> tuple[list[tuple[bool, str | None]], list[tuple[str, str | None, int]]]:
        runtime = WorkerRuntime(settings, load_model())
        consumer, send_all, settle = runtime.consumer, runtime.sink.send_all, runtime.pipeline.settle
        sends: list[tuple[bool, str | None]] = []  # (after the deletion, consumer.missing) of each send into the topic
        # (why, consumer.missing, cycles in flight) of each cycle abandoned, when its settle raised
        abandoned: list[tuple[str, str | None, int]] = []
        seen = asyncio.Event()  # an abandonment, or a second send after the deletion (the old code)

        async def recording_send_all(topic: str, records: Any) -> None:
            if topic == topics["events"]:
                sends.append((deleted[0], consumer.missing))
                if sum(after for after, _ in sends) >= 2:
                    seen.set()
            await send_all(topic, records)

        async def recording_settle(flight: Any) -> Any:
            try:
                return await settle(flight)
            except CycleAbandoned as exc:
                abandoned.append((str(exc), consumer.missing, runtime.pipeline.in_flight))
                seen.set()
                raise

        runtime.sink.send_all = recording_send_all  # type: ignore[method-assign]
        runtime.pipeline.settle = recording_settle  # type: ignore[method-assign]
        assert await runtime.start()
        try:
            async def until(check: Any) -> None:
                while not check():
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(until(lambda: len(consumer.assigned) == 4 and not consumer._unresumed), 60)
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
            await asyncio.to_thread(lambda: producer.send(topics["events"], key=None, value=huge, partition=1).get(10))
            producer.close()
            await asyncio.wait_for(until(lambda: len(sends) >= 2), 60)  # the copy refused once, then again: retrying
            assert not abandoned, "retrying, not abandoned, before the deletion"
            await asyncio.to_thread(_delete_topic, bootstrap, topics["events"])
            deleted[0] = True
            # the worker found the topic missing and the cycle was abandoned, or (before) it sent into it again and again;
            # 180 s: a CI run at load ~8 once passed 60 s here (4 s on a quiet box: a bound, not a timing)
            await asyncio.wait_for(seen.wait(), 180)
            return sends, abandoned
        finally:
            await runtime.stop()

    sends, abandoned = asyncio.run(scenario())
    assert [m for _, m in sends if m is not None] == [], "nothing sent into the topic once the worker knew it missing"
    assert sum(after for after, _ in sends) <= 1, "at most the attempt a listing just before the deletion let through"
    why, missing, in_flight = abandoned[0]
    assert f"copies not sent: the events topic {topics['events']} does not exist" in why, why
    assert missing is not None and in_flight == 0, "the retrying cycle found the topic missing and was abandoned"


def test_copies_may_not_be_sent_once_a_fetch_reply_shows_the_log_went_back(own_broker: list[Service], redis_url: str,
                                                                           unique_name: str) -> None:
    """The in-memory half of ``StreamConsumer._events_unusable``, on a real consumer of a real
    topic (no loop: the decision alone, staged deterministically): with the fetch replies at the
    log end the worker has read to, copies may be sent, without asking the broker anything; once a
    fetch reply after the topic's deletion says the log ends below that, they may not (a cycle
    would otherwise send them into the deleted topic before the loop's next pass finds it gone)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.settings import aiokafka_client_kwargs
    from streams.worker.consumer import KafkaSink, StreamConsumer
    from streams.worker.pipeline import Pipeline
    from streams.worker.store import Store

    bootstrap = own_broker[0].address
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}"}
    _create_topics(bootstrap, topics)
    last = publish_events(bootstrap, topics["events"], _events("u", 4, 3, START_MS))
    settings = Settings(kafka_bootstrap_servers=bootstrap, redis_url=redis_url, topic_events=topics["events"],
                        topic_alerts=topics["alerts"], topic_dlq=topics["dlq"], partitions=4)

    async def scenario() -> tuple[str | None, str | None]:
        store = Store(settings)
        sink = KafkaSink(settings)
        consumer = StreamConsumer(settings, store, Pipeline(settings, store, sink, load_model()), sink)
        kafka = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50, **aiokafka_client_kwargs(settings))
        await kafka.start()
        try:
            tps = [TopicPartition(topics["events"], p) for p in last]
            kafka.assign(tps)
            consumer.consumer, consumer.assigned = kafka, set(tps)  # what the group's assignment gives it
            for tp in tps:
                kafka.seek(tp, last[tp.partition] + 1)  # read up to the end, as a caught-up worker
                consumer._next[tp.partition] = last[tp.partition] + 1

            async def fetched(check: Any) -> None:
                while not all(check(kafka.highwater(tp), consumer._next[tp.partition]) for tp in tps):
                    await kafka.getmany(timeout_ms=100)

            await asyncio.wait_for(fetched(lambda end, nxt: end == nxt), 10)
            before = await consumer._events_unusable(False)
            await asyncio.to_thread(_delete_topic, bootstrap, topics["events"])
            await asyncio.wait_for(fetched(lambda end, nxt: end is not None and end < nxt), 10)
            return before, await consumer._events_unusable(False)
        finally:
            await kafka.stop()

    before, after = asyncio.run(scenario())
    assert before is None, "the log as read: copies go"
    assert after is not None and "below the next offset to take" in after, after


def _delete_topic(bootstrap: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([topic])
        wait_for("the topic deleted", lambda: topic not in admin.list_topics(), 10)
    finally:
        admin.close()
