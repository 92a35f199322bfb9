"""A state layout of 0 partitions is refused in one line (QA5 M3), against the real broker and Redis.

Why: `churnwatch relayout --events-topic <typo>` used to record "0 partitions" for a topic that
does not exist and say "done"; a worker on that topic then logged tracebacks from the rebalance
callback (`set_partitions(0)`) and stayed ready while applying nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import Worker, redis_client
from tests.test_faults import _topics

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[1]


def _cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", *argv], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_relayout_of_a_missing_topic_refuses_and_records_nothing(kafka_bootstrap: str, redis_url: str, unique_name: str) -> None:
    prefix = f"cw{unique_name.replace('-', '')}"
    topic = f"missing-{unique_name}"
    out = _cli(["relayout", "--events-topic", topic],
               {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url, "CHURNWATCH_KEY_PREFIX": prefix})
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and topic in lines[0] and "does not exist" in lines[0], out.stderr
    client = redis_client(redis_url)
    try:
        assert client.hget(f"{prefix}:meta", f"partitions:{topic}") is None
    finally:
        client.close()


def test_a_worker_on_a_layout_of_zero_partitions_stops_with_one_line(
        kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path) -> None:
    topics = _topics(kafka_bootstrap, unique_name)
    prefix = f"cw{unique_name.replace('-', '')}"
    client = redis_client(redis_url)
    try:
        client.hset(f"{prefix}:meta", f"partitions:{topics['events']}", 0)  # what the old relayout recorded
    finally:
        client.close()
    w = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "w.log", env={"CHURNWATCH_KEY_PREFIX": prefix}).start()
    try:
        assert w.proc is not None
        code = w.proc.wait(timeout=60)
    finally:
        w.stop()
    log = w.output()
    assert code == 2, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    refusals = [line for line in log.splitlines() if "laid out for 0 partitions" in line]
    assert len(refusals) == 1 and "churnwatch relayout" in refusals[0], log[-3000:]
