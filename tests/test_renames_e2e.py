"""A model trained with renames (``train --config``'s ``[event_types]``) runs live as it was trained.

QA7 H3: the renames reached ``train``, ``backtest`` and ``learn`` but never the worker, and the
model file did not record them: a model trained with ``checkout_completed = "purchase"`` ran live
without a word and treated every buyer as never buying (159 alerts differed from
``backtest --config``). Now the model file carries the renames and every reader applies them.

Here a product names its purchases ``Checkout_Completed`` in its warehouse export (the CSV that
``train`` and ``backtest`` read) and ``checkout_completed`` on the events topic (``publish`` sends
names trimmed and lower-cased). A model is trained on the CSV with the rename, handed to the real
``churnwatch worker`` (real Tansu, real valkey) with no other configuration, and the live states,
scores and alerts must equal ``backtest --model`` on the same events, purchases counted. The
worker's start line names the model file, its tracked types, roles and renames (QA10 F7).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import orjson
import pytest

from models.model import load_model
from models.state import UserState
from streams.cli import main
from streams.offline.replay import SCORE_COLUMNS
from streams.offline.simulate import generate
from streams.settings import Settings
from streams.timefmt import format_day_or_time
from streams.worker.topics import ensure_topics
from tests.harness import Worker, dump_state, publish_events, read_topic, stream_side, wait_progress

pytestmark = pytest.mark.integration

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000
DAYS = 63
USERS = 80
#: The product's names in its export (CSV) for the simulator's types; the topic carries them lower-cased.
PRODUCT_NAMES = {"purchase": "Checkout_Completed", "view": "post_viewed"}
CONFIG = '[event_types]\nCheckout_Completed = "purchase"\n'


def _read_topic(bootstrap: str, topic: str, partitions: int = 4) -> list[dict[str, object]]:
    return [orjson.loads(rec.value) for rec in read_topic(bootstrap, topic, partitions)]


def test_a_model_trained_with_renames_scores_live_as_backtest(kafka_bootstrap: str, redis_url: str, unique_name: str,
                                                              tmp_path: Path) -> None:
    events, _ = generate(seed=13, n_users=USERS, start_ms=START_MS, days=DAYS)
    as_of_ms = START_MS + DAYS * DAY_MS
    assert events[-1].ts_ms < as_of_ms and sum(ev.type == "purchase" for ev in events) >= 10

    # The export: the product's own names, with the stream's event ids.
    events_csv = tmp_path / "events.csv"
    with open(events_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type", "amount", "event_id"))
        for ev in reversed(events):
            w.writerow((ev.user_id, ev.ts_ms, PRODUCT_NAMES.get(ev.type, ev.type), ev.amount if ev.type == "purchase" else "", ev.event_id))
    config, model_path = tmp_path / "names.toml", tmp_path / "model.json"
    config.write_text(CONFIG, encoding="utf-8")
    assert main(["train", "--events", str(events_csv), "--churn-after", "14d", "--horizon", "14d", "--as-of",
                 "2026-01-22/2026-02-05/7d", "--alert-share", "0.2", "--config", str(config), "--out", str(model_path)]) == 0
    model = load_model(model_path)
    assert dict(model.event_types) == {"checkout_completed": "purchase"}, "the model file carries its renames"
    assert "purchase" in model.tracked_types

    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}", "group": f"g-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topics["events"], topic_alerts=topics["alerts"],
                           topic_dlq=topics["dlq"], partitions=4))
    # What publish sends: the name trimmed and lower-cased, the amount on the purchase.
    records = [(ev.user_id.encode(), orjson.dumps({"event_id": ev.event_id, "user_id": ev.user_id, "ts": ev.ts_ms,
                                                   "type": PRODUCT_NAMES.get(ev.type, ev.type).lower(),
                                                   **({"amount": ev.amount} if ev.type == "purchase" else {})}))
               for ev in events]
    worker = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "worker.log", extra_args=["--model", str(model_path)],
                    env={"CHURNWATCH_PARTITIONS": "4"}).start()
    try:
        last = publish_events(kafka_bootstrap, topics["events"], [], extra=records)
        wait_progress(redis_url, topics["events"], last, timeout_s=60, workers=[worker])
    finally:
        code = worker.stop()
    assert code == 0, worker.output()[-3000:]
    assert _read_topic(kafka_bootstrap, topics["dlq"]) == []
    # QA10 F7: the start line names the model file and its vocabulary, as the model declares it.
    start = [line for line in worker.output().splitlines() if "worker starting:" in line]
    assert len(start) == 1, worker.output()[-3000:]
    assert f"model {model.version} ({model_path})" in start[0], start
    assert f"; tracked types ({len(model.tracked_types)}): {', '.join(model.tracked_types)};" in start[0], start
    assert all(f"; role {role}: {', '.join(names)}" in start[0] for role, names in model.roles.items()), start
    assert start[0].endswith("; renames: checkout_completed -> purchase"), start

    states = {user: UserState.from_bytes(blob) for user, blob in dump_state(redis_url).items()}
    buyers = {ev.user_id for ev in events if ev.type == "purchase"}
    assert {u for u, st in states.items() if st.n_purchases > 0} == buyers, "live purchases counted under the model's renames"
    stream_rows, stream_alerts = stream_side(redis_url, _read_topic(kafka_bootstrap, topics["alerts"]), as_of_ms, model)

    scores_csv, alerts_out = tmp_path / "scores.csv", tmp_path / "alerts.jsonl"
    as_of = f"{format_day_or_time(START_MS + 7 * DAY_MS)}/{format_day_or_time(as_of_ms)}/7d"
    assert main(["backtest", "--events", str(events_csv), "--model", str(model_path), "--as-of", as_of, "--out", str(scores_csv),
                 "--alerts-out", str(alerts_out), "--no-progress"]) == 0
    with open(scores_csv, newline="", encoding="utf-8") as fh:
        backtest_rows = {r["user_id"]: [r[c] for c in SCORE_COLUMNS] for r in csv.DictReader(fh) if r["as_of"] == format_day_or_time(as_of_ms)}
    backtest_alerts = {a["alert_id"]: a for a in map(json.loads, alerts_out.read_text().splitlines())}
    assert len(backtest_rows) == USERS
    assert stream_rows == backtest_rows
    assert stream_alerts == backtest_alerts
