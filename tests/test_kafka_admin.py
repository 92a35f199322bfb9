"""Creating topics, shared by every role that owns one, against a real broker (Tansu)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streams.kafka_admin import create_topics, list_topics, partition_count
from streams.settings import Settings
from streams.worker.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_create_topics_is_idempotent_and_reports_another_partition_count(kafka_bootstrap: str, unique_name: str) -> None:
    three = Settings(kafka_bootstrap_servers=kafka_bootstrap, partitions=3)
    first = create_topics(three, {f"a-{unique_name}": None, f"c-{unique_name}": {"cleanup.policy": "compact"}})
    assert first == {f"a-{unique_name}": "created", f"c-{unique_name}": "created"}
    assert {f"a-{unique_name}", f"c-{unique_name}"} <= list_topics(three)
    assert partition_count(three, f"c-{unique_name}") == 3
    assert create_topics(three, {f"a-{unique_name}": None}) == {f"a-{unique_name}": "exists"}
    five = Settings(kafka_bootstrap_servers=kafka_bootstrap, partitions=5)
    assert create_topics(five, {f"a-{unique_name}": None}) == {f"a-{unique_name}": "exists with 3 partitions"}



def test_another_partition_count_is_warned_once_and_only_where_asked(kafka_bootstrap: str, unique_name: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """QA4 #9: after ``churnwatch topics --partitions 4`` (README allows it) every publish, simulate, ...
    printed "topic ... exists with 4 partitions, settings say 8" for each of the three topics. Now the
    worker (``warn``) says it once per process, ``topics`` prints it in its own report line, others stay quiet."""
    from streams.cli import main

    names = {"CHURNWATCH_TOPIC_EVENTS": f"e-{unique_name}", "CHURNWATCH_TOPIC_ALERTS": f"a-{unique_name}",
             "CHURNWATCH_TOPIC_DLQ": f"d-{unique_name}"}
    for env, name in names.items():
        monkeypatch.setenv(env, name)
    assert main(["--bootstrap-servers", kafka_bootstrap, "topics", "--partitions", "4"]) == 0
    capsys.readouterr()
    events = tmp_path / "e.jsonl"
    events.write_text('{"user_id":"u1","type":"view","ts":"2026-01-01T00:00:00Z"}\n')
    caplog.set_level(logging.DEBUG, logger="streams.kafka_admin")
    assert main(["--bootstrap-servers", kafka_bootstrap, "publish", "--file", str(events)]) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "streams.kafka_admin"]
    assert "partitions" not in capsys.readouterr().err
    assert main(["--bootstrap-servers", kafka_bootstrap, "topics"]) == 0  # settings: 8
    assert f"e-{unique_name}: exists with 4 partitions (left as it is; 8 asked)" in capsys.readouterr().out
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name == "streams.kafka_admin"]
    eight = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=names["CHURNWATCH_TOPIC_EVENTS"],
                     topic_alerts=names["CHURNWATCH_TOPIC_ALERTS"], topic_dlq=names["CHURNWATCH_TOPIC_DLQ"])
    for _ in range(2):  # the worker's call, as a restart within one process would repeat it
        assert ensure_topics(eight, warn=True)[names["CHURNWATCH_TOPIC_EVENTS"]] == "exists with 4 partitions"
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "streams.kafka_admin"]
    assert len(warned) == 3 and all("exists with 4 partitions, CHURNWATCH_PARTITIONS says 8" in m for m in warned)
