"""A Kafka broker that lost its storage under a running worker (QA5 M2), on a broker of the test's own.

The session's broker is shared by every test, so each test here starts a Tansu of its own (memory
storage, as the demo runs it) and kills it with SIGKILL: it comes back on the same port with no
topic at all, the case of a broker whose disk was replaced or of Tansu in memory restarted.
Waits are on conditions (log lines, metrics, Redis progress), never sleeps followed by asserts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from models.events import Event
from streams.local import Service, start_kafka
from tests.harness import QUICK_GROUP_BROKERS, Worker, metric, publish_events, read_progress, wait_for, wait_progress

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


def _create_topics(bootstrap: str, topics: dict[str, str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topics[k], 4, 1) for k in ("events", "alerts", "dlq")])
    finally:
        admin.close()


def _events(tag: str, users: int, per_user: int, start_ms: int) -> list[Event]:
    return [Event(f"{tag}{u}", start_ms + (u * per_user + i) * 60_000, "view", f"{tag}{u}-{i}")
            for u in range(users) for i in range(per_user)]


def test_a_broker_that_lost_its_storage_leaves_the_worker_waiting_then_restarts_each_partition_once(
        own_broker: list[Service], redis_url: str, tmp_path: Path, unique_name: str) -> None:
    """QA5 M2. The broker restarts empty under a caught-up worker. Tansu answers a fetch of the
    topic it no longer has with an empty log, so the worker used to restart every partition at
    once against that phantom log and stay ready with lag 0 (and, with accounts, write its
    heartbeats into the missing topic, which ended in a loop of hundreds of restarts once the
    topic was created again). Now it restarts nothing while the topic does not exist: one ERROR
    naming the topic, not ready; once the topic exists again and new events come, each partition
    that had progress restarts exactly once, from offset 0 of the new log, and applies it."""
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
        wait_for("the new log applied", lambda: all(read_progress(redis_url, topics["events"], prefix).get(p) == off
                                                    for p, off in after.items()), 30, (worker,))
        assert metric(worker, "churnwatch_topic_resets_total") == 4, "one restart per partition"
        # the counter follows the progress write (pipeline._count): wait for it, do not race it
        wait_for("48 events counted", lambda: metric(worker, "churnwatch_events_processed_total") == 36 + 12, 30, (worker,))
        wait_for("ready again", lambda: metric(worker, "churnwatch_ready") == 1, 30, (worker,))
        assert worker.output().count("the topic was replaced") == 4
    finally:
        worker.stop()
