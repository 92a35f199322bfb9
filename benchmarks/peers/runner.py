"""Run one peer implementation as a subprocess over a filled topic and read its figures."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streams.local import stop_process

__all__ = ["PEERS", "run_peer"]

ROOT = Path(__file__).resolve().parents[2]

#: name in the results -> module under benchmarks.peers
PEERS: dict[str, str] = {"faust": "faust_agent", "quixstreams": "quix", "bytewax": "bytewax_flow"}


def run_peer(name: str, *, bootstrap: str, topic: str, events: int, logdir: Path, timeout_s: float = 900.0) -> dict[str, Any]:
    """Start the peer on ``topic`` (from the beginning, own consumer group), wait until it has
    processed ``events`` events; its rate is timed from its first event to its last (start-up,
    group join and shutdown left out, as for churnwatch's e2e figures)."""
    module = PEERS[name]
    state = Path(tempfile.mkdtemp(prefix=f"peer-{name}-", dir=logdir))
    out = state / "result.json"
    log = (logdir / f"peer-{name}.log").open("wb")
    t0, wall0 = time.monotonic(), time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", f"benchmarks.peers.{module}", "--bootstrap", bootstrap, "--topic", topic,
         "--events", str(events), "--out", str(out), "--group", f"peer-{name}-{int(time.time())}",
         "--state-dir", str(state / "state")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        while not out.exists():
            if proc.poll() is not None and not out.exists():
                raise RuntimeError(f"{name} exited with {proc.returncode} before {events} events; log: {log.name}")
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"{name} did not process {events} events in {timeout_s:.0f} s; log: {log.name}")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            stop_process(proc, timeout_s=10)
        log.close()
    res = json.loads(out.read_text())
    seconds = res["last_s"] - res["first_s"]
    return {"events": res["seen"], "users": res["users"], "seconds": round(seconds, 2),
            "events_per_s": round((res["seen"] - 1) / seconds) if seconds > 0 else None,
            "startup_s (spawn -> first event)": round(res["first_s"] - wall0, 1),
            "cpu_s (first -> last event, whole process)": round(res["cpu_last_s"] - res["cpu_first_s"], 2),
            "events_per_cpu_s": round(res["seen"] / (res["cpu_last_s"] - res["cpu_first_s"]))
            if res["cpu_last_s"] > res["cpu_first_s"] else None}
