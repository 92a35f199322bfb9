"""The console under 1M users: p50/p99 of the at-risk API call and of the My book page; history bytes.

Why not the worker: 1M users through Kafka would take minutes and the console reads the same
keys. The states are real engine output, as in ``benchmarks.memory`` (whose templates and writer
this uses): a simulated population is advanced to the end of its window with the worker's
``advance_sampled`` (state, alerts and weekly history points), user ``i`` of the 1M gets the
records of simulated user ``i mod n`` under its own id, written with ``Store.write`` into a
flushed Redis, plus a partition progress so the stream time is set.

Then ``churnwatch console`` runs as a subprocess (uvicorn, one process, as users run it, with the
run's broker for the accounts table) and this process sends sequential GETs over loopback on one
keep-alive connection (``http.client``: the lightest client at hand, since it shares the cores):
the first page of the save list (50 rows), page 20 by cursor, one user, and the My book page;
``/openapi.json`` (framework and HTTP, no Redis) is the floor measured in the same run.

The machine is shared, so each series reports, besides the wall time the client sees, what
depends less on the neighbours: the time inside the application (its ``Server-Timing`` header,
request in to response start), CPU milliseconds per request of the console, of Redis and of this
client (from /proc and ``time.process_time``), the milliseconds per request the console and Redis
spent runnable but waiting for a core (the kernel's run-queue delay, /proc/<pid>/task/*/schedstat),
and the 1-minute load average before and after.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

import redis as redis_lib

from benchmarks.memory import templates_from, write_users
from benchmarks.observe import cpu_seconds, flush_sync, percentile
from models.events import Event
from streams.local import free_port, stop_process
from streams.settings import Settings
from streams.worker.store import Store

__all__ = ["measure_console"]

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 8


async def _fill(settings: Settings, users: int, events: Sequence[Event], end_ms: int) -> tuple[int, float]:
    """(templates, seconds): ``users`` users with their history, and a progress at ``end_ms``."""
    templates = templates_from(events, end_ms, history=True)
    seconds = await write_users(settings, templates, users, settings.topic_events, PARTITIONS)
    store = Store(settings)
    try:
        await store.connect()
        await store.write_progress(settings.topic_events, {p: (0, end_ms - 1) for p in range(PARTITIONS)})
    finally:
        await store.close()
    return len(templates), seconds


def _history_bytes(client: redis_lib.Redis, prefix: str) -> tuple[int, int]:
    """(MEMORY USAGE of every history key, number of users with a history)."""
    total = users = 0
    keys = list(client.scan_iter(match=f"{prefix}:{{*}}:hist:*", count=2000))
    for i in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for k in keys[i:i + 1000]:
            pipe.memory_usage(k, samples=0)
            pipe.hlen(k)
        replies = pipe.execute()
        total += sum(int(x or 0) for x in replies[::2])
        users += sum(int(x) for x in replies[1::2])
    return total, users


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[bytes, float | None]:
    """Body and the application's own time (``Server-Timing: app;dur=``, ms) of one GET."""
    conn.request("GET", path)
    reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {reply.status} {body[:300]!r}")
    timing = reply.getheader("server-timing") or ""
    return body, float(timing.split("dur=")[1]) if "dur=" in timing else None


def _waited_ms(pid: int) -> float:
    """Milliseconds the threads of ``pid`` have spent runnable but waiting for a core (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e6


def _series(conn: http.client.HTTPConnection, path: str, n: int, pids: dict[str, int]) -> dict[str, Any]:
    """``n`` sequential GETs of ``path``: wall and application time percentiles, CPU ms per
    request of each process in ``pids`` and of this client, their run-queue waits per request,
    load before and after."""
    load0 = os.getloadavg()[0]
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    waited0 = {name: _waited_ms(pid) for name, pid in pids.items()}
    client0 = time.process_time()
    wall, app = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        _, took = _get(conn, path)
        wall.append((time.perf_counter() - t0) * 1000)
        if took is not None:
            app.append(took)
    cpu = {name: (cpu_seconds(pid) - cpu0[name]) * 1000 / n for name, pid in pids.items()}
    cpu["client"] = (time.process_time() - client0) * 1000 / n
    waited = {name: (_waited_ms(pid) - waited0[name]) / n for name, pid in pids.items()}
    mean = sum(wall) / n
    wall.sort()
    app.sort()
    pct = lambda data, q: round(percentile(data, q), 1) if data else None  # noqa: E731
    return {"p50": pct(wall, 50), "p99": pct(wall, 99), "max": round(wall[-1], 1), "app_p50": pct(app, 50),
            "app_p99": pct(app, 99), "cpu": {k: round(v, 2) for k, v in cpu.items()}, "mean": round(mean, 1),
            "waited": {k: round(v, 1) for k, v in waited.items()},
            "load": f"{load0:.1f} -> {os.getloadavg()[0]:.1f}"}


def _start_console(port: int, redis_url: str, kafka: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "CHURNWATCH_LOG_LEVEL": "WARNING"}
    if kafka:
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka  # the owner picker reads the (empty) accounts table
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "console", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            _get(conn, "/openapi.json")
            conn.close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_process(proc)
                raise RuntimeError(f"console did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            time.sleep(0.2)


def _row(s: dict[str, Any]) -> str:
    return f"{s['p50']} / {s['p99']} / {s['max']}"


def measure_console(redis_url: str, events: Sequence[Event], end_ms: int, users: int, requests: int = 300,
                    redis_pid: int | None = None, kafka: str | None = None) -> dict[str, Any]:
    import orjson

    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    settings = Settings(redis_url=redis_url)
    n_templates, fill_s = asyncio.run(_fill(settings, users, events, end_ms))
    hist_bytes, hist_users = _history_bytes(client, settings.key_prefix)
    index = sum(int(client.zcard(f"{settings.key_prefix}:{{{b}}}:risk")) for b in range(settings.buckets))
    client.close()
    port = free_port()
    proc = _start_console(port, redis_url, kafka)
    first_page = "/api/v1/at-risk?limit=50"
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        cursor = None
        for _ in range(19):  # the cursor of page 20
            path = first_page + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            cursor = orjson.loads(_get(conn, path)[0])["next_cursor"]
        page20 = f"{first_page}&cursor={urllib.parse.quote(cursor or '')}"
        user = "/api/v1/users/" + orjson.loads(_get(conn, first_page)[0])["items"][0]["user_id"]
        for path in ("/openapi.json", first_page, page20, user, "/book"):  # warm-up (and the first table read)
            for _ in range(10):
                _get(conn, path)
        pids = {"console": proc.pid, **({"redis": redis_pid} if redis_pid else {})}
        runs = {name: _series(conn, path, requests, pids) for name, path in
                (("floor", "/openapi.json"), ("api", first_page), ("page20", page20), ("user", user), ("book", "/book"))}
        conn.close()
    finally:
        stop_process(proc)
    api = runs["api"]
    rows: dict[str, Any] = {
        "users": users, "templates": n_templates, "in_at_risk_index": index, "fill_s": round(fill_s, 1),
        "history_bytes_per_user": round(hist_bytes / max(hist_users, 1), 1), "users_with_history": hist_users,
        "requests_each": requests,
        "floor_openapi_ms_p50_p99_max": _row(runs["floor"]),
        "api_at_risk_first_page_ms_p50_p99_max": _row(api),
        "api_at_risk_page20_ms_p50_p99_max": _row(runs["page20"]),
        "api_user_ms_p50_p99_max": _row(runs["user"]),
        "book_page_ms_p50_p99_max": _row(runs["book"]),
    }
    for name, s in runs.items():
        rows[f"{name}: time in the application, ms p50 / p99"] = f"{s['app_p50']} / {s['app_p99']}"
        rows[f"{name}: CPU ms per request (" + " / ".join(s["cpu"]) + ")"] = " / ".join(str(v) for v in s["cpu"].values())
        rows[f"{name}: mean wall ms; of it waiting for a core (" + " / ".join(s["waited"]) + ")"] = (
            f"{s['mean']}; " + " / ".join(str(v) for v in s["waited"].values()))
        rows[f"{name}: load average (1 min) before -> after"] = s["load"]
    server_cpu = sum(v for k, v in api["cpu"].items() if k != "client")
    rows["api: wall p50 / server CPU per request (console + Redis)"] = round(api["p50"] / max(server_cpu, 1e-9), 1)
    rows["api_p99_target_50ms"] = "met" if api["p99"] < 50 else "not met"
    rows["api_p50_over_floor"] = round(api["p50"] / max(runs["floor"]["p50"], 1e-9), 1)
    rows["book_p50_over_floor"] = round(runs["book"]["p50"] / max(runs["floor"]["p50"], 1e-9), 1)
    return rows
