"""``churnwatch train --from-topic``: the history the events topic retains, through the real broker,
gives the same model file as the same events in a CSV file; what the worker's codec rejects is
counted and skipped; bad arguments are one line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from models.events import Event
from streams import cli
from streams.offline.simulate import generate
from tests.harness import publish_events

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def _write_csv(path: Path, events: list[Event]) -> None:
    """With the events' own ids and exact amounts, so both readings see identical events."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("user_id", "ts", "event_type", "amount", "event_id"))
        for ev in events:
            w.writerow((ev.user_id, ev.ts_ms, ev.type, repr(ev.amount) if ev.type == "purchase" else "", ev.event_id))


@pytest.fixture(scope="module")
def population() -> list[Event]:
    events, _ = generate(seed=5, n_users=100, start_ms=START_MS, days=100)
    return events


def test_a_model_trained_from_the_topic_is_the_one_trained_from_the_csv(
        kafka_bootstrap: str, redis_url: str, unique_name: str, population: list[Event], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    until_ms = START_MS + 95 * DAY_MS
    topic = f"events-{unique_name}"
    _create_topic(kafka_bootstrap, topic, 3)
    # In the topic: every event (shuffled across partitions by user), plus what a topic also holds:
    # a malformed record, a record the codec refuses, a re-routed copy of an event, and a repeat.
    copy = population[0]
    from streams.publisher import event_value

    extra = [(b"u-x", b"{not json"), (b"u-x", b'{"user_id":"u-x","type":"view","ts":"yesterday"}'),
             (copy.user_id.encode(), event_value(copy))]  # the same event again: a duplicate
    publish_events(kafka_bootstrap, topic, population, extra)
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(topic, key=copy.user_id.encode(), value=event_value(copy), headers=[("churnwatch-origin", b"0:0")]).get(30)
    producer.close()

    csv_path = tmp_path / "events.csv"
    _write_csv(csv_path, population)
    common = ["--churn-after", "30d", "--horizon", "21d", "--until", "2026-04-06", "--notes", "same history"]
    from_csv, from_topic = tmp_path / "csv.json", tmp_path / "topic.json"
    assert cli.main(["train", "--events", str(csv_path), "--out", str(from_csv), *common]) == 0
    out_csv = capsys.readouterr().out
    assert cli.main(["--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url, "train", "--from-topic", "--topic", topic,
                     "--out", str(from_topic), *common]) == 0
    said, *out_topic_lines = capsys.readouterr().out.splitlines()
    assert said.startswith("Redis records no model in use: reading the topic without renames"), said
    after = sum(1 for ev in population if ev.ts_ms >= until_ms)
    assert after > 0
    assert f"--until: {after:,} of {len(population):,} events" in out_csv
    summary = out_topic_lines[0]
    assert summary == (f"topic {topic}: {len(population) + 4:,} records in 3 partitions up to their highwater at the start: "
                       f"{len(population) - after:,} events; skipped 1 copies, 3 rejected (bad_timestamp 1, duplicate_event_id 1, "
                       f"malformed_json 1), {after} at or after --until")
    assert from_topic.read_bytes() == from_csv.read_bytes()


def test_train_from_the_topic_reads_it_with_the_renames_and_roles_of_the_model_in_use(
        kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Review 10 A3: ``train --from-topic`` without ``--config`` or ``--base-model`` read the topic
    raw while the workers and ``learn`` read it with the model in use's renames: a retrain tracked
    ``checkout_completed`` as a plain type, had no purchases, and its take-over was refused."""
    from models.model import load_model
    from streams.worker.store import model_id
    from tests.harness import redis_client

    events, _ = generate(seed=13, n_users=60, start_ms=START_MS, days=63)
    topic = f"events-{unique_name}"
    _create_topic(kafka_bootstrap, topic, 2)
    publish_events(kafka_bootstrap, topic, [Event(ev.user_id, ev.ts_ms, "checkout_completed" if ev.type == "purchase" else ev.type,
                                                  ev.event_id, ev.amount) for ev in events])
    in_use = load_model().with_(event_types={"checkout_completed": "purchase"}, roles={**load_model().roles, "cancel": ["account_closed"]})
    client = redis_client(redis_url)
    try:
        client.hset("cw:meta", mapping={"model": model_id(in_use), f"model:{model_id(in_use)}": in_use.to_json()})
    finally:
        client.close()
    out = tmp_path / "m.json"
    assert cli.main(["--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url, "train", "--from-topic", "--topic", topic,
                     "--churn-after", "14d", "--horizon", "14d", "--as-of", "2026-01-22/2026-02-05/7d", "--out", str(out)]) == 0
    said = capsys.readouterr().out.splitlines()
    model = load_model(out)
    assert dict(model.event_types) == {"checkout_completed": "purchase"} and list(model.roles["cancel"]) == ["account_closed"]
    assert model.training["roles_matched"]["purchase"] > 0 and "checkout_completed" not in model.tracked_types
    assert said[0] == (f"reading the topic with the renames (checkout_completed -> purchase) and roles of the model in use "
                       f"{model_id(in_use)}, as the workers read it (--config or --base-model to give others)")
    assert not [line for line in said if line.startswith("no event matched the purchase role")]


def test_train_from_the_topic_says_in_one_line_when_it_cannot_ask_for_the_model_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    """No Redis to ask (onboarding before any worker, a laptop): the topic is read without renames,
    as before, and one line says so and how to give them."""
    import argparse

    from models.model import ChurnModel
    from streams.cli.train import base_model
    from streams.settings import Settings

    args = argparse.Namespace(config=None, base_model=None, from_topic=True)
    assert base_model(args, Settings(redis_url="redis://127.0.0.1:1/0")) == ChurnModel()
    line = capsys.readouterr().out.strip()
    assert line.startswith("the model in use is unknown: cannot reach Redis at redis://127.0.0.1:1/0") and "\n" not in line
    assert line.endswith("reading the topic without renames and with the default roles (--config or --base-model to give them)")


@pytest.mark.parametrize("argv, expected", [
    (["train", "--out", "m.json"], "one of the arguments --events --from-topic is required"),
    (["train", "--events", "e.csv", "--from-topic", "--out", "m.json"], "not allowed with argument"),
    (["train", "--events", "e.csv", "--topic", "x", "--out", "m.json"], "--topic needs --from-topic"),
    (["train", "--from-topic", "--until", "soon", "--out", "m.json"], "--until"),
])
def test_bad_arguments_are_one_line(argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "e.csv").write_text("u1,2026-01-01,view\n")
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert err.startswith("churnwatch") and expected in err


def test_a_topic_that_does_not_exist_is_one_line(kafka_bootstrap: str, unique_name: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--bootstrap-servers", kafka_bootstrap, "train", "--from-topic", "--topic", f"missing-{unique_name}",
                     "--out", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (f"churnwatch train: error: topic 'missing-{unique_name}' does not exist on {kafka_bootstrap} "
                                 "(see `churnwatch topics`)")


def test_the_collector_skips_as_the_worker_would_and_merges_partitions_in_event_time() -> None:
    """Pure: no broker. Mis-keyed records count once (reroute) or not at all (dlq mode); events
    at or after --until are left out; partitions are merged by event time."""
    from types import SimpleNamespace

    from streams.publisher import event_value
    from streams.worker.codec import Decoder
    from streams.worker.retained import Collector

    def rec(p: int, off: int, ev: Event, key: bytes | None) -> SimpleNamespace:
        return SimpleNamespace(partition=p, offset=off, key=key, value=event_value(ev), headers=[])

    a, b, c = (Event("u1", START_MS + 2000, "view", "e1"), Event("u2", START_MS + 1000, "post", "e2"),
               Event("u3", START_MS + 5000, "view", "e3"))
    records = [rec(0, 0, a, b"u1"), rec(1, 0, b, None), rec(1, 1, c, b"u3")]
    for mode, expected, rejected in (("reroute", [b, a], {}), ("dlq", [a], {"key_not_user_id": 1})):
        collector = Collector(Decoder(), wall_now_ms=START_MS + DAY_MS, until_ms=START_MS + 5000, miskeyed=mode)
        for r in records:
            collector.add(r)
        out = collector.result({0: 1, 1: 2})
        assert out.events == expected and out.rejected == rejected and out.after_until == 1 and out.records == 3
