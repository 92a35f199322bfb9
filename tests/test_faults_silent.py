"""Faults that used to corrupt state silently (issue 15), against the real broker, Redis and workers.

Each test reproduces one fault on a small history (30 users, 6 weeks) and ends in an exact
comparison with a clean run of the same good events: every user's state bytes and the set of
alert ids (or in the documented stop), and checks the metric that makes the fault visible.
Waits are on conditions (Redis progress, metric values), never sleeps followed by asserts.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Callable

import orjson
import pytest

from models.events import Event
from tests.harness import Worker, event_json, publish_events, read_progress
from tests.test_faults import Run, _assert_same, history

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def small() -> list[Event]:
    return history(seed=11, users=30, days=42)


def _reference(clean: Run, last: dict[int, int]) -> tuple[dict[str, bytes], set[str]]:
    """The clean run: one worker reads everything; its states and alert ids."""
    w = clean.worker()
    clean.wait(last)
    _wait_alerts_landed(clean, w)
    clean.stop()
    state = clean.state()
    ids, _ = clean.alerts()
    assert len(state) == 30, "the clean run must track every user"
    assert ids, "the history must raise alerts, or the comparison proves nothing"
    return state, ids


def metric(worker: Worker, name: str, labels: str = "") -> float:
    """The sum of the worker's samples of ``name`` (whose label text contains ``labels``)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and labels in line.split("}")[0]):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60.0, workers: tuple[Worker, ...] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:  # metrics server not up yet
            pass
        time.sleep(0.2)
    logs = "\n".join(w.output()[-4000:] for w in workers)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _wait_alerts_landed(run: Run, w: Worker) -> None:
    """Alerts are acknowledged before a cycle's state write: once progress is complete the alert
    counter is final; wait until the topic holds that many records."""
    sent = metric(w, "churnwatch_alerts_total")
    wait_for("alerts on the topic", lambda: run.alerts()[1] >= sent, 30, (w,))


def test_events_without_event_id_are_accepted_with_derived_ids(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                unique_name: str, small: list[Event]) -> None:
    clean = Run(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-clean")
    fault = Run(kafka_bootstrap, redis_url, tmp_path, f"{unique_name}-noid")
    try:
        last = publish_events(kafka_bootstrap, clean.topics["events"], small)
        ref_state, ref_ids = _reference(clean, last)
        bare = []
        for ev in small:
            body = orjson.loads(event_json(ev))
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
        clean.stop()
        fault.stop()

