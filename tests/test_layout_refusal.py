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

from tests.harness import Worker, metric, redis_client, wait_for
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


def test_relayout_refuses_while_a_worker_runs_and_goes_on_once_it_stopped(
        kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path) -> None:
    """QA20b F11: relayout ran (rc=0) with a worker holding all 8 partitions. The worker marks itself
    running on its topic before it joins the group; relayout then refuses in one line naming it
    (exit 2, the layout recorded before, 4, kept), and goes on once the worker stopped cleanly (its
    mark removed as it stops: no expiry to wait for). A worker killed with -9 cannot remove its
    mark: it stays until its expiry (tests/test_relayout_cli.py judges that one)."""
    from streams.worker.keys import Keys

    topics = _topics(kafka_bootstrap, unique_name)
    prefix = f"cw{unique_name.replace('-', '')}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": redis_url, "CHURNWATCH_KEY_PREFIX": prefix}
    meta, running = f"{prefix}:meta", Keys(prefix).running(topics["events"])
    client = redis_client(redis_url)
    try:
        client.hset(meta, f"partitions:{topics['events']}", 4)  # laid out before the topic grew to 8
        w = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "w.log", env={"CHURNWATCH_KEY_PREFIX": prefix}).start()
        try:
            wait_for("the worker holding every partition", lambda: metric(w, "churnwatch_partitions_assigned") == 8, 60, (w,))
            [name] = client.zrange(running, 0, -1)
            assert w.proc is not None and f" pid {w.proc.pid} " in name.decode()
            out = _cli(["relayout", "--events-topic", topics["events"]], env)
            assert out.returncode == 2 and out.stdout == "", out.stdout + out.stderr
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1 and f"1 worker runs on {topics['events']} ({name.decode()}, seen " in lines[0], out.stderr
            assert client.hget(meta, f"partitions:{topics['events']}") == b"4"
        finally:
            assert w.stop() == 0, w.output()[-3000:]
        assert client.zrange(running, 0, -1) == []
        out = _cli(["relayout", "--events-topic", topics["events"]], env)
        assert out.returncode == 0 and out.stderr == "", out.stderr
        assert out.stdout.startswith(f"{topics['events']}: state moved from 4 to 8 partitions"), out.stdout

        w = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "w9.log", env={"CHURNWATCH_KEY_PREFIX": prefix}).start()
        wait_for("the second worker's mark", lambda: client.zcard(running) == 1, 60, (w,))
        w.kill9()
        assert client.zcard(running) == 1, "a worker killed -9 leaves its mark"
    finally:
        client.close()
