"""Acceptance test of the stream worker: real broker, real Redis, the real ``churnwatch worker``.

Twelve weeks of event-time history for three users, replayed in seconds: one goes silent after
four weeks, one declines (daily visits, then fewer events with growing gaps), one stays steady and
keeps the topic's event time moving. Plus one malformed record. The worker must alert on the
silent and the declining user (with reasons), not on the steady one, dead-letter the malformed
record with its reason, and leave every user's state in Redis.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from models.events import Event
from models.state import STAGES, UserState
from streams.worker.topics import ensure_topics
from streams.settings import Settings
from tests.harness import Worker, dump_state, publish_events, read_progress, read_topic, wait_progress

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAYS = 90
KINDS = ("view", "click", "message")


def history() -> list[Event]:
    events: list[Event] = []
    for d in range(DAYS):
        for j, kind in enumerate(KINDS):  # steady: three kinds of activity every day, to the end
            events.append(Event("steady", START_MS + d * DAY_MS + 9 * HOUR_MS + j * 600_000, kind, f"steady-{d}-{j}"))
        if d < 28:  # the other two behave like "steady" for four weeks
            for j, kind in enumerate(KINDS):
                events.append(Event("silent", START_MS + d * DAY_MS + 10 * HOUR_MS + j * 600_000, kind, f"silent-{d}-{j}"))
                events.append(Event("decliner", START_MS + d * DAY_MS + 11 * HOUR_MS + j * 600_000, kind, f"decl-{d}-{j}"))
    day = 27
    for gap in (3, 5, 7, 10, 14):  # then the decliner comes less and less, one view at a time
        day += gap
        events.append(Event("decliner", START_MS + day * DAY_MS + 11 * HOUR_MS, "view", f"decl-{day}"))
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    return events


def read_json(bootstrap: str, topic: str, partitions: int = 8) -> list[tuple[bytes | None, dict[str, object]]]:
    return [(rec.key, orjson.loads(rec.value)) for rec in read_topic(bootstrap, topic, partitions)]


@pytest.fixture()
def topics(kafka_bootstrap: str, unique_name: str) -> dict[str, str]:
    names = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}",
             "group": f"g-{unique_name}"}
    created = ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=names["events"],
                                     topic_alerts=names["alerts"], topic_dlq=names["dlq"], partitions=8))
    assert set(created.values()) == {"created"}
    return names


@pytest.fixture()
def worker(kafka_bootstrap: str, redis_url: str, topics: dict[str, str], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "worker.log",
               env={"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "200"}).start()
    yield w
    code = w.stop()
    assert code == 0, f"the worker must stop cleanly on SIGTERM, got {code}:\n{w.output()[-3000:]}"


def test_silent_and_declining_users_raise_alerts_steady_does_not(
    kafka_bootstrap: str, redis_url: str, topics: dict[str, str], worker: Worker
) -> None:
    malformed = b'{"event_id": "bad-1", "user_id": "steady", "type": "view", "ts": '
    last = publish_events(kafka_bootstrap, topics["events"], history(), extra=[(b"steady", malformed)])
    wait_progress(redis_url, topics["events"], last, timeout_s=120, workers=[worker])

    # Alerts of a cycle are acknowledged before its progress write, but the silence of the last
    # weeks is only reviewed once the partitions are idle: poll until both alerts are there.
    deadline = time.monotonic() + 60
    alerts: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        alerts = [a for _, a in read_json(kafka_bootstrap, topics["alerts"])]
        at_risk = {a["user_id"] for a in alerts if a["kind"] == "at_risk"}
        if {"silent", "decliner"} <= at_risk:
            break
        time.sleep(0.5)
    at_risk_alerts = [a for a in alerts if a["kind"] == "at_risk"]
    by_user = {a["user_id"]: a for a in at_risk_alerts}
    assert {"silent", "decliner"} <= set(by_user), f"at-risk alerts: {at_risk_alerts}\n{worker.output()[-3000:]}"
    assert "steady" not in by_user, f"the steady user must not be at risk: {by_user.get('steady')}"
    for user in ("silent", "decliner"):
        alert = by_user[user]
        assert alert["reasons"] and all(isinstance(r, str) and r for r in alert["reasons"]), alert  # type: ignore[union-attr]
        assert 0.0 <= float(alert["risk"]) <= 1.0 and alert["alert_id"]  # type: ignore[arg-type]
        assert int(alert["event_time_ms"]) > START_MS + 28 * DAY_MS, "the alert comes after the change of behaviour"  # type: ignore[call-overload]

    dlq = read_json(kafka_bootstrap, topics["dlq"])
    assert len(dlq) == 1, dlq
    key, record = dlq[0]
    assert key == b"steady" and record["reason"] == "malformed_json" and record["value"] == malformed.decode()
    assert record["topic"] == topics["events"] and isinstance(record["offset"], int)

    base = f"http://127.0.0.1:{worker.metrics_port}"
    assert _get(f"{base}/healthz")[0] == 200
    deadline = time.monotonic() + 20
    while _get(f"{base}/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _get(f"{base}/readyz")[0] == 200, "assigned partitions and a Redis that answers: ready"
    status, text = _get(f"{base}/metrics")
    assert status == 200
    assert 'churnwatch_events_rejected_total{reason="malformed_json"} 1.0' in text
    assert f"churnwatch_events_processed_total {float(len(history()))}" in text
    assert "churnwatch_partitions_assigned 8.0" in text
    lags = re.findall(r'^churnwatch_consumer_lag_events\{partition="(\d+)"\} (\S+)$', text, re.M)
    assert sorted(int(p) for p, _ in lags) == list(range(8)) and all(float(v) == 0.0 for _, v in lags), lags

    states = {user: UserState.from_bytes(blob) for user, blob in dump_state(redis_url).items()}
    assert set(states) == {"steady", "silent", "decliner"}
    assert states["steady"].n_events == 3 * DAYS
    assert states["silent"].n_events == 3 * 28 and states["decliner"].n_events == 3 * 28 + 5
    # silent since day 28: lapsed, its at-risk stays open (it moves to the win-back list; no new
    # at-risk alert opens for a lapsed user)
    assert STAGES[states["silent"].stage] in ("dormant", "churned") and states["silent"].at_risk_since_s > 0
    assert states["steady"].at_risk_since_s == 0

    # Kafka commits are a hint sent in the background about once a second: they catch up with
    # Redis progress (what tools like kafka-consumer-groups show as the group's position).
    from kafka import KafkaConsumer, TopicPartition

    progress = read_progress(redis_url, topics["events"])
    probe = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=topics["group"], enable_auto_commit=False)
    try:
        deadline, committed = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            committed = {p: probe.committed(TopicPartition(topics["events"], p)) for p in progress}
            if all(committed[p] == off + 1 for p, off in progress.items()):
                break
            time.sleep(0.5)
        assert committed == {p: off + 1 for p, off in progress.items()}, (committed, progress)
    finally:
        probe.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
