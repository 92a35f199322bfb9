"""Sampling profiles of a running worker with py-spy, summarised as text for RESULTS.md.

Why py-spy: it attaches to the real ``churnwatch worker`` process from outside (no code change,
no instrumentation overhead in the hot loop), and ``--format raw`` writes collapsed stacks we can
count. Idle samples (the loop waiting in epoll) are left out by py-spy itself, so percentages
are shares of the time the worker was on a CPU.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from streams.local import stop_process

__all__ = ["Profiler", "py_spy_binary", "summarise"]

#: Frames every sample of the loop passes through: their inclusive share says nothing.
_ENTRY = ("streams/cli/__init__.py:", "streams/worker/service.py:run", "streams/worker/consumer.py:StreamConsumer.run")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")


def py_spy_binary() -> str | None:
    """py-spy next to this interpreter (the venv), else on PATH; None when not installed."""
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


@dataclass
class Profiler:
    """``py-spy record`` attached to ``pid`` until ``stop()``; writes collapsed stacks to ``out``."""

    pid: int
    out: Path
    rate_hz: int = 250
    native: bool = False
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Profiler":
        binary = py_spy_binary()
        if binary is None:
            raise RuntimeError("py-spy is not installed: pip install -e '.[profile]' (or pip install py-spy)")
        args = [binary, "record", "--pid", str(self.pid), "--rate", str(self.rate_hz), "--format", "raw",
                "--output", str(self.out), "--nonblocking"]
        if self.native:
            args.append("--native")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        """SIGINT makes py-spy write its output and exit."""
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGINT, timeout_s=30)


def _short(frame: str) -> str:
    """``advance (/work/main/models/engine.py:97)`` -> ``models/engine.py:advance``."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("/site-packages/", "/work/main/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return f"{path}:{m.group('func')}"


def summarise(collapsed: Path, top: int = 15) -> dict[str, object]:
    """Self and inclusive shares of the busiest functions in a py-spy raw (collapsed) file.

    Self: the sample's innermost frame. Inclusive: the function appears anywhere in the stack
    (counted once per sample). Also the share per *area* (our models, our streams code, redis-py,
    aiokafka, orjson/json, asyncio, other) by the innermost frame.
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        self_counts[frames[-1]] += n
        for f in set(frames):
            incl_counts[f] += n
        areas[_area(frames[-1])] += n
    if not total:
        return {"samples": 0}

    def pct(c: int) -> float:
        return round(100.0 * c / total, 1)

    return {
        "samples": total,
        "self_top": [(f, pct(c)) for f, c in self_counts.most_common(top)],
        "inclusive_top": [(f, pct(c)) for f, c in incl_counts.most_common(top * 3)
                          if f.startswith(("models/", "streams/")) and not f.startswith(_ENTRY)][:top],
        "areas": [(a, pct(c)) for a, c in areas.most_common()],
    }


def _area(frame: str) -> str:
    if frame.startswith("models/"):
        return "models (pure scoring)"
    if frame.startswith("streams/"):
        return "streams (worker glue)"
    if frame.startswith(("redis/", "hiredis")):
        return "redis-py"
    if frame.startswith("aiokafka/") or frame.startswith("kafka/"):
        return "aiokafka"
    if frame.startswith(("orjson", "json/")):
        return "json"
    if "asyncio" in frame or frame.startswith(("uvloop", "mode/", "faust/")):
        return "asyncio/faust"
    return "other (stdlib, builtins, native)"
