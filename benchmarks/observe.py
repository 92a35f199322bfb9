"""What the benchmarks read from the processes they run: /metrics, /proc, Redis INFO, percentiles.

Why /proc and not psutil: a worker's RSS and CPU seconds are two numbers in two files, and CPU
seconds matter here more than wall time, because the machine is shared: ``events / worker CPU
seconds`` stays comparable when other people's test runs steal the cores, events/s does not.
"""

from __future__ import annotations

import math
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "CpuClock",
    "cpu_seconds",
    "rss_bytes",
    "scrape",
    "metric_sum",
    "histogram_mean",
    "percentile",
    "summary_ms",
    "load_average",
    "slope_per_minute",
    "wait_until",
    "flush_sync",
]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0.0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # fields[0] is the state (3rd field of the file): utime and stime are the 14th and 15th.
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass
class CpuClock:
    """CPU seconds of some processes between ``start()`` and ``stop()``, and how long their main
    threads waited for a core (runnable, not running: the machine's contention, not our waits)."""

    pids: Mapping[str, int]
    started: dict[str, float] | None = None
    used: dict[str, float] | None = None
    waited: dict[str, float] | None = None
    _wait0: dict[str, float] | None = None

    def start(self) -> "CpuClock":
        self.started = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._wait0 = {name: runqueue_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        if self.started is None or self._wait0 is None:
            raise RuntimeError("CpuClock.stop() before start()")
        self.used = {name: cpu_seconds(pid) - self.started[name] for name, pid in self.pids.items()}
        self.waited = {name: runqueue_seconds(pid) - self._wait0[name] for name, pid in self.pids.items()}
        return self.used


def runqueue_seconds(pid: int) -> float:
    """Seconds the process' main thread has spent runnable but waiting for a CPU
    (``/proc/<pid>/schedstat``, second field; 0.0 where the kernel does not keep it)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return 0.0


def scrape(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a worker's /metrics: ``(name, sorted labels) -> value``."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric_sum(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``."""
    total = 0.0
    for (n, lab), value in samples.items():
        if n == name and all(dict(lab).get(k) == v for k, v in labels.items()):
            total += value
    return total


def histogram_mean(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    """``_sum / _count`` of a Prometheus histogram (None when it has no observations)."""
    count = metric_sum(samples, name + "_count", **labels)
    return metric_sum(samples, name + "_sum", **labels) / count if count else None


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100).

    >>> percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)
    (5, 10)
    """
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary_ms(values: Iterable[float]) -> dict[str, float | int]:
    """n, p50, p99 and max of latencies in milliseconds, rounded to 0.1 ms."""
    data = sorted(values)
    if not data:
        return {"n": 0}
    return {"n": len(data), "p50_ms": round(percentile(data, 50), 1), "p99_ms": round(percentile(data, 99), 1),
            "max_ms": round(data[-1], 1)}


def load_average() -> str:
    """The 1/5/15-minute load averages, for the machine-conditions line."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, per minute (0.0 with fewer than 2 points).

    >>> round(slope_per_minute([(0, 10.0), (60, 20.0), (120, 30.0)]), 6)
    10.0
    """
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mx) * (v - my) for t, v in points) / var * 60.0


def wait_until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.1, what: str = "condition") -> float:
    """Poll ``predicate()`` until true; returns the seconds it took (RuntimeError on timeout)."""
    t0 = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - t0
        except OSError:
            pass  # a metrics port not listening yet
        if time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"{what} not reached in {timeout_s:.0f} s")
        time.sleep(every_s)


def flush_sync(client: object, timeout_s: float = 30.0) -> None:
    """FLUSHALL SYNC, then wait until no lazily freed objects remain, so that ``used_memory``
    read next is a clean baseline (valkey may free a plain FLUSHALL in the background)."""
    client.execute_command("FLUSHALL", "SYNC")  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while int(client.info("memory").get("lazyfree_pending_objects", 0)) and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
