"""The console under 1M users: p50/p99 of the at-risk API call and of the My book page; history bytes.

Why not the worker: 1M users through Kafka would take minutes and the console reads the same
keys. The states are real engine output, as in ``benchmarks.memory``: a simulated population is
advanced to the end of its window with ``streams.worker.history.advance_sampled`` (the worker's
call: state, alerts and weekly history points), and user ``i`` of the 1M gets the state, due
time, risk, stats and history of simulated user ``i mod n`` under its own id, written with
``Store.write`` (the worker's write and history scripts) into a flushed Redis, plus a partition
progress so the stream time is set.

Then ``churnwatch console`` runs as a subprocess (uvicorn, one process, as users run it) and this
process sends sequential requests over loopback (httpx, keep-alive): the first page of the save
list (50 rows), pages deep in the list (cursor of page 20), one user, and the My book page. The
floor measured in the same run is ``GET /openapi.json`` (framework + HTTP, no Redis); the
figures are also given as a ratio to it, and as CPU milliseconds per request of the console and
Redis processes (from /proc), which depend least on what else the machine runs.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import redis as redis_lib

from benchmarks.memory import kafka_partition
from benchmarks.observe import cpu_seconds, flush_sync, summary_ms
from models.events import Event
from models.model import load_model
from models.scoring import risk_at
from streams.local import free_port, stop_process
from streams.settings import Settings
from streams.worker.history import advance_sampled
from streams.worker.keys import locate
from streams.worker.store import BucketWrite, StateWrite, Store, stats_delta

__all__ = ["measure_console"]

ROOT = Path(__file__).resolve().parents[1]
CHUNK_USERS = 10_000


@dataclass(frozen=True, slots=True)
class _Template:
    blob: bytes
    due_s: int
    risk: float | None
    stats: tuple[tuple[str, float], ...]
    points: tuple[bytes, ...]


def _templates(events: Sequence[Event], end_ms: int) -> list[_Template]:
    model = load_model()
    by_user: dict[str, list[Event]] = collections.defaultdict(list)
    for ev in events:
        by_user[ev.user_id].append(ev)
    out = []
    for uid, evs in by_user.items():
        res, points = advance_sampled(uid, None, evs, end_ms, model)
        if res.expire:
            continue
        st = res.state
        risk = risk_at(st, st.last_review_s or end_ms // 1000, model) if st.at_risk_since_s else None
        stats: dict[str, float] = {}
        stats_delta(None, st, res.alerts, stats)
        out.append(_Template(st.to_bytes(), st.next_review_s, risk, tuple(stats.items()), tuple(points)))
    return out


async def _fill(settings: Settings, templates: Sequence[_Template], users: int, end_ms: int, partitions: int = 8) -> float:
    store = Store(settings)
    await store.connect()
    try:
        t0 = time.perf_counter()
        fields = [f"{settings.topic_events}:{p}" for p in range(partitions)]
        for chunk, start in enumerate(range(0, users, CHUNK_USERS)):
            writes: dict[int, BucketWrite] = {}
            parts: dict[int, set[int]] = collections.defaultdict(set)
            for i in range(start, min(users, start + CHUNK_USERS)):
                uid = f"user-{i:08d}"
                t = templates[i % len(templates)]
                b, g = locate(uid, store.buckets, store.groups)
                p = kafka_partition(uid.encode(), partitions)
                w = writes.get(b) or writes.setdefault(b, BucketWrite(b, []))
                parts[b].add(p)
                w.states.append(StateWrite(g, uid, t.blob, fields[p], t.due_s, t.risk, t.reach))
                w.history.extend((g, uid, point) for point in t.points)
                for k, v in t.stats:
                    w.stats[k] = w.stats.get(k, 0) + v
            for b, w in writes.items():
                w.parts = [(fields[p], "", "") for p in sorted(parts[b])]
            if await store.write(list(writes.values()), f"bench-console-{chunk}"):
                raise RuntimeError("console benchmark write fenced")
        await store.write_progress(settings.topic_events, {p: (0, end_ms - 1) for p in range(partitions)})
        return time.perf_counter() - t0
    finally:
        await store.close()


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


def _timed(client: Any, url: str, n: int, cpu: dict[str, float] | None = None, pids: Sequence[int] = ()) -> list[float]:
    """``n`` sequential GETs, their wall times in ms; ``cpu[url]`` = CPU ms per request of ``pids``
    (console and Redis: what the request costs whatever else the machine runs)."""
    out = []
    cpu0 = sum(cpu_seconds(p) for p in pids)
    for _ in range(n):
        t0 = time.perf_counter()
        reply = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        if reply.status_code != 200:
            raise RuntimeError(f"GET {url}: HTTP {reply.status_code} {reply.text[:300]}")
    if cpu is not None:
        cpu[url] = round((sum(cpu_seconds(p) for p in pids) - cpu0) * 1000 / n, 2)
    return out


def _pct(ms: list[float]) -> dict[str, float]:
    s = summary_ms(ms)
    return {"p50": s["p50_ms"], "p99": s["p99_ms"], "max": s["max_ms"]}


def measure_console(redis_url: str, events: Sequence[Event], end_ms: int, users: int, requests: int = 300,
                    redis_pid: int | None = None) -> dict[str, Any]:
    import httpx

    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    templates = _templates(events, end_ms)
    settings = Settings(redis_url=redis_url)
    fill_s = asyncio.run(_fill(settings, templates, users, end_ms))
    hist_bytes, hist_users = _history_bytes(client, settings.key_prefix)
    index = sum(int(client.zcard(f"{settings.key_prefix}:{{{b}}}:risk")) for b in range(settings.buckets))
    client.close()
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "CHURNWATCH_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "console", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    http.get("/openapi.json")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"console did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
                    time.sleep(0.1)
            cursor = None
            for _ in range(19):  # the cursor of page 20
                cursor = http.get("/api/v1/at-risk", params={"limit": 50, **({"cursor": cursor} if cursor else {})}).json()["next_cursor"]
            first = http.get("/api/v1/at-risk?limit=50").json()["items"][0]["user_id"]
            _timed(http, "/api/v1/at-risk?limit=50", 20)  # warm-up
            cpu: dict[str, float] = {}
            pids = [proc.pid, *([redis_pid] if redis_pid else [])]
            floor = _pct(_timed(http, "/openapi.json", requests, cpu, pids))
            api = _pct(_timed(http, "/api/v1/at-risk?limit=50", requests, cpu, pids))
            deep = _pct(_timed(http, f"/api/v1/at-risk?limit=50&cursor={cursor}", requests))
            user = _pct(_timed(http, f"/api/v1/users/{first}", requests))
            book = _pct(_timed(http, "/book", requests, cpu, pids))
    finally:
        stop_process(proc)
    return {
        "users": users, "templates": len(templates), "in_at_risk_index": index, "fill_s": round(fill_s, 1),
        "history_bytes_per_user": round(hist_bytes / max(hist_users, 1), 1), "users_with_history": hist_users,
        "requests_each": requests,
        "floor_openapi_ms_p50_p99": f"{floor['p50']} / {floor['p99']}",
        "api_at_risk_first_page_ms_p50_p99_max": f"{api['p50']} / {api['p99']} / {api['max']}",
        "api_at_risk_page20_ms_p50_p99_max": f"{deep['p50']} / {deep['p99']} / {deep['max']}",
        "api_user_ms_p50_p99_max": f"{user['p50']} / {user['p99']} / {user['max']}",
        "book_page_ms_p50_p99_max": f"{book['p50']} / {book['p99']} / {book['max']}",
        "cpu_ms_per_request_console_plus_redis": f"openapi {cpu['/openapi.json']}, at-risk {cpu['/api/v1/at-risk?limit=50']}, "
                                                 f"book {cpu['/book']}",
        "api_p99_target_50ms": "met" if api["p99"] < 50 else "not met",
        "api_p50_over_floor": round(api["p50"] / max(floor["p50"], 1e-9), 1),
        "book_p50_over_floor": round(book["p50"] / max(floor["p50"], 1e-9), 1),
    }
