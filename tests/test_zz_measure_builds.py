"""Throwaway (not committed): build the console state 3 times, compare the account alerts."""
from __future__ import annotations

import json

import orjson

from tests.console_state import _build
from tests.harness import read_topic


def test_measure(kafka_service, redis_service, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(3):
        settings = _build(kafka_service, redis_service, tmp_path_factory)
        alerts = [orjson.loads(r.value) for r in read_topic(settings.kafka_bootstrap_servers, settings.topic_alerts, settings.partitions)]
        acct = {a["alert_id"]: (a["account_id"], a["kind"], a["event_time_ms"], tuple(a["reasons"])) for a in alerts if "account_id" in a}
        runs.append(sorted(acct.values()))
    with open("/tmp/acctwm_builds.json", "w") as f:
        json.dump(runs, f)
    print("alerts per run", [len(r) for r in runs], "identical", runs[0] == runs[1] == runs[2])
