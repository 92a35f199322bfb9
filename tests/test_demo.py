"""``churnwatch demo`` as users run it: alerts, a summary, and nothing left running afterwards.

Every process the demo starts inherits a marker in its environment, so "nothing left behind"
is checked by scanning /proc for it after the demo exited (workers, Tansu, valkey alike).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ALERT_LINE = re.compile(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d (AT RISK|RECOVERED) user u\d+ risk \d\.\d\d", re.M)
MARK = "CHURNWATCH_DEMO_TEST_MARK"


def _tagged_processes(tag: str) -> list[int]:
    """Pids whose environment carries ``MARK=tag`` (our demo's children, if any survived)."""
    needle = f"{MARK}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


class _Demo:
    """The demo subprocess, its output collected line by line by a reader thread."""

    def __init__(self, tmp_path: Path, *args: str, settings: dict[str, str] | None = None) -> None:
        """``settings``: CHURNWATCH_* variables for the demo and its workers (they inherit them)."""
        self.tag = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL")}
        env.update({MARK: self.tag, "CHURNWATCH_NO_DOCKER": "1", "PYTHONUNBUFFERED": "1", **(settings or {})})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "demo", "--users", "60", "--days", "60", "--workdir", str(tmp_path), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self.seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.seen:
                self.lines.append(line)
                self.seen.notify_all()

    def wait_for(self, pattern: str, timeout_s: float) -> bool:
        rx = re.compile(pattern)
        with self.seen:
            return self.seen.wait_for(lambda: any(rx.search(x) for x in self.lines) or self.proc.poll() is not None, timeout_s) \
                and any(rx.search(x) for x in self.lines)

    def finish(self, timeout_s: float) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return code, "".join(self.lines)


def test_demo_runs_for_a_duration_and_prints_a_summary(tmp_path: Path) -> None:
    """What the demo shows by a wall-clock deadline depends on the machine's speed: the start-up,
    alert and report lines are checked in the Ctrl-C test, which waits for an alert first. The
    deadline may land in any phase after the broker and Redis started (a tenth of a second here):
    the summary is printed from whatever Redis holds then (10 s: after the replay on a quiet
    machine, during the workers' start on a slow one)."""
    demo = _Demo(tmp_path, "--duration", "10")
    code, out = demo.finish(timeout_s=180)
    assert code == 0, out
    assert "--duration reached" in out
    assert "=== summary ===" in out
    assert out.rstrip().endswith("stopped")
    assert _tagged_processes(demo.tag) == []


def test_replay_done_shows_the_summary_and_the_running_console_then_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """QA5 L1: the console's address scrolled away under thousands of alert lines and the summary
    came only with Ctrl-C, which stopped the console. Now the alert lines stop after
    ``--alert-lines`` and, once the replay is done, the summary ends with the console's address
    while the console still answers; Ctrl-C then stops everything without a second summary.

    Two settings a user may set shorten the wait for the summary (nothing asserted depends on
    them): the group session of two workers sharing a group on the demo's Tansu
    (harness.group_session_ms: a join waits about half of it; 6 s by default), and the idle time
    after which a caught-up partition borrows the topic's clock, which sets the demo's wait for
    the reviews due at the end of the stream (1 s + 2 s instead of 5 s + 2 s)."""
    demo = _Demo(tmp_path, "--alert-lines", "1",  # no --duration: runs until interrupted
                 settings={"CHURNWATCH_SESSION_TIMEOUT_MS": "3000", "CHURNWATCH_IDLE_PARTITION_MS": "1000"})
    assert demo.wait_for(r"^console: http://127\.0\.0\.1:\d+/ .*still running", timeout_s=150), "".join(demo.lines)
    shown = "".join(demo.lines)
    assert len(_tagged_processes(demo.tag)) >= 3  # broker, Redis and the workers are running
    url = re.search(r"^console: (http://127\.0\.0\.1:\d+/)", shown, re.M).group(1)  # type: ignore[union-attr]
    with urllib.request.urlopen(url + "book", timeout=10) as page:  # noqa: S310 - loopback
        assert page.status == 200 and b"with an open at-risk alert" in page.read()
    assert shown.index("replay done") < shown.index("=== summary ===") < shown.index("churn rate (30 days)") < shown.index("console: http")
    assert "SIGINT" not in shown  # all of it before any Ctrl-C
    demo.proc.send_signal(signal.SIGINT)
    code, out = demo.finish(timeout_s=90)
    assert code == 0, out
    assert len(re.findall(r"metrics http://127.0.0.1:\d+/metrics", out)) == 2  # two workers, their /metrics
    assert re.search(r"console +http://127.0.0.1:\d+/ ", out), out  # the console's address at start
    assert len(ALERT_LINE.findall(out)) == 1, out  # --alert-lines 1
    shown_alerts = sum(int(n.replace(",", "")) for n in re.findall(r"alerts by kind +at_risk ([\d,]+), recovered ([\d,]+)", out)[0])
    assert ("further alerts are counted, not printed" in out) == (shown_alerts > 1), out
    assert "SIGINT: stopping" in out and out.count("=== summary ===") == 1
    assert re.search(r"alerts by kind +at_risk [1-9]", out), out
    assert "first alert after" in out
    assert _tagged_processes(demo.tag) == []


def test_sigterm_while_starting_stops_everything(tmp_path: Path) -> None:
    demo = _Demo(tmp_path)
    assert demo.wait_for(r"worker 2 +pid", timeout_s=60), "".join(demo.lines)
    demo.proc.send_signal(signal.SIGTERM)
    code, out = demo.finish(timeout_s=90)
    assert code == 0, out
    assert "SIGTERM: stopping" in out and out.rstrip().endswith("stopped")
    assert _tagged_processes(demo.tag) == []
