"""The stream and the backtest are the same code: same events in, same scores and alerts out.

A small simulated history goes to the real broker; the real ``churnwatch worker`` consumes it
into the real Redis and is stopped cleanly. Each user's state is then read from Redis and brought
to a common as-of time (``advance`` with no events runs the reviews the worker's review clock had
not reached yet) and scored. ``churnwatch backtest`` runs on the same events with several as-of
dates ending at that time. Scores must be identical as printed, and the alerts must be the same
set: those the worker published plus those the final advance raised, against the backtest's.
With ``CHURNWATCH_ALERTS_FROM`` on the worker and ``--alerts-from`` on the backtest (onboarding a
history, QA14 F9) the same holds: the same scores, and neither side has an alert before the date.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import orjson
import pytest

from models.model import load_model
from streams.offline.replay import SCORE_COLUMNS
from streams.timefmt import format_day_or_time
from streams.cli import main
from streams.worker.topics import ensure_topics
from streams.settings import Settings
from streams.offline.simulate import generate
from tests.harness import Worker, publish_events, read_topic, stream_side, wait_progress

pytestmark = pytest.mark.integration

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000
DAYS = 49  # seven weekly as-of dates, the last one after every event
USERS = 60


def _read_topic(bootstrap: str, topic: str, partitions: int = 8) -> list[dict[str, object]]:
    return [orjson.loads(rec.value) for rec in read_topic(bootstrap, topic, partitions)]


def _write_events(path: Path, events: list) -> None:
    """The events as a backtest CSV, with the stream's event ids (they break same-time ties)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type", "amount", "event_id"))
        for ev in events:
            w.writerow((ev.user_id, ev.ts_ms, ev.type, ev.amount if ev.type == "purchase" else "", ev.event_id))


@pytest.mark.parametrize("alerts_from", [None, "2026-01-22"])
def test_stream_and_backtest_agree(kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path,
                                   alerts_from: str | None) -> None:
    events, _ = generate(seed=13, n_users=USERS, start_ms=START_MS, days=DAYS)
    as_of_ms = START_MS + DAYS * DAY_MS
    assert events and events[-1].ts_ms < as_of_ms

    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}", "group": f"g-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topics["events"], topic_alerts=topics["alerts"],
                           topic_dlq=topics["dlq"], partitions=8))
    env = {"CHURNWATCH_BATCH_MAX_RECORDS": "500", **({"CHURNWATCH_ALERTS_FROM": alerts_from} if alerts_from else {})}
    worker = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "worker.log", env=env).start()
    try:
        last = publish_events(kafka_bootstrap, topics["events"], events)
        wait_progress(redis_url, topics["events"], last, timeout_s=120, workers=[worker])
    finally:
        code = worker.stop()
    assert code == 0, worker.output()[-3000:]
    assert _read_topic(kafka_bootstrap, topics["dlq"]) == [], "every simulated event is valid and in order"

    # The stream's side: states from Redis, brought to the as-of time and scored there.
    stream_rows, stream_alerts = stream_side(redis_url, _read_topic(kafka_bootstrap, topics["alerts"]), as_of_ms, load_model())

    # The backtest's side: the command, on the same events, weekly as-of dates up to the same time.
    events_csv, scores_csv, alerts_out = tmp_path / "events.csv", tmp_path / "scores.csv", tmp_path / "alerts.jsonl"
    _write_events(events_csv, list(reversed(events)))
    as_of = f"{format_day_or_time(START_MS + 7 * DAY_MS)}/{format_day_or_time(as_of_ms)}/7d"
    assert main(["backtest", "--events", str(events_csv), "--as-of", as_of, "--out", str(scores_csv),
                 "--alerts-out", str(alerts_out), "--no-progress", *(["--alerts-from", alerts_from] if alerts_from else [])]) == 0
    with open(scores_csv, newline="", encoding="utf-8") as fh:
        backtest_rows = {r["user_id"]: [r[c] for c in SCORE_COLUMNS] for r in csv.DictReader(fh) if r["as_of"] == format_day_or_time(as_of_ms)}
    backtest_alerts = {a["alert_id"]: a for a in map(json.loads, alerts_out.read_text().splitlines())}

    assert len(backtest_rows) == len({ev.user_id for ev in events})
    assert stream_rows == backtest_rows
    assert any(a["kind"] == "at_risk" for a in backtest_alerts.values()), "the history must exercise alerts"
    assert stream_alerts == backtest_alerts
    if alerts_from:
        cutoff_ms = START_MS + 21 * DAY_MS
        assert min(a["event_time_ms"] for a in stream_alerts.values()) >= cutoff_ms
        assert "partition" in worker.output() and "(CHURNWATCH_ALERTS_FROM)" in worker.output(), "alerts were withheld"
