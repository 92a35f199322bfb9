"""Speed of ``churnwatch backtest`` on a simulated events file, for several sets of as-of dates.

Run as users run it: ``python -m streams.cli backtest ... --no-progress`` in a subprocess, on a
CSV written by ``streams.offline.simulate.write_events_csv``. The command's own figures (it writes them
to ``<out>.metrics.json``) split reading the CSV from the replay; the wall time of the whole
process (interpreter start and imports included) and the CPU time of it and its shard processes
are measured here (on a shared machine the CPU figure moves less than the wall time).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from models.events import Event
from streams.offline.simulate import write_events_csv

__all__ = ["AS_OF_SETS", "measure_backtest"]

ROOT = Path(__file__).resolve().parents[1]

#: label -> --as-of argument, over a window from 2026-01-01 (the simulator's default start).
AS_OF_SETS: dict[str, str] = {
    "1 date": "2026-04-30",
    "4 dates, monthly": "2026-02-01/2026-05-01/30d",
    "15 dates, weekly": "2026-01-15/2026-04-30/7d",
}


def measure_backtest(events: Sequence[Event], as_of_sets: dict[str, str] | None = None) -> dict[str, Any]:
    """One backtest run per as-of set; rows of events/s per set."""
    rows: dict[str, Any] = {"events": len(events), "users": len({e.user_id for e in events})}
    with tempfile.TemporaryDirectory(prefix="churnwatch-bench-backtest-") as tmp:
        csv_path = Path(tmp) / "events.csv"
        write_events_csv(csv_path, events)
        rows["csv_mb"] = round(csv_path.stat().st_size / 2**20, 1)
        for label, as_of in (as_of_sets or AS_OF_SETS).items():
            out = Path(tmp) / "scores.csv"
            cpu0 = _children_cpu_s()
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "streams.cli", "backtest", "--events", str(csv_path), "--as-of", as_of,
                 "--out", str(out), "--no-progress"],
                cwd=ROOT, capture_output=True, text=True, timeout=900,
            )
            wall = time.perf_counter() - t0
            cpu = _children_cpu_s() - cpu0  # the command and its shard processes, all waited for
            if proc.returncode != 0:
                raise RuntimeError(f"backtest --as-of {as_of} exited {proc.returncode}: {proc.stderr[-2000:]}")
            report = json.loads((Path(tmp) / "scores.metrics.json").read_text())
            n = report["events"]
            rows[f"{label}: rows"] = report["rows"]
            rows[f"{label}: events/s (read + replay)"] = report["events_per_s"]
            rows[f"{label}: events/s (replay only)"] = report["events_per_s_replay_only"]
            rows[f"{label}: events/s (whole command, wall)"] = round(n / wall)
            rows[f"{label}: seconds read / replay / wall"] = f"{report['seconds_read']} / {report['seconds_replay']} / {wall:.1f}"
            rows[f"{label}: CPU seconds (all processes)"] = round(cpu, 2)
            rows[f"{label}: CPU seconds read / replay, per shard process"] = ", ".join(
                f"{p['cpu_seconds_read']} / {p['cpu_seconds_replay']}" for p in report.get("processes", ()))
            rows[f"{label}: events per CPU-second"] = round(n / cpu) if cpu > 0 else None
    return rows


def _children_cpu_s() -> float:
    """User + system CPU of every finished child process (and theirs) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
