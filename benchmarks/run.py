"""Run the benchmark suite and write benchmarks/RESULTS.md (``make bench`` / ``python -m benchmarks.run``).

Benchmarks print figures; they never pass or fail on speed. Each section is a function that
returns rows for the results file; ``--only`` picks sections, ``--scale`` shrinks the sizes for a
quick look (figures from a scaled run are labelled as such). ``soak`` (>= 10 minutes) and
``profile`` (the e2e1 run again under py-spy) are not in the default run: ``--only soak``. Nor is
``quality`` (the quality table on populations nobody here designed, ``make quality``), which writes
its own ``quality.json`` and ``QUALITY.md`` and needs no broker or Redis.

Results accumulate: ``results.json`` keeps the latest figures of every section with the time,
scale and load they were measured at, so ``--only soak`` adds the soak without dropping the rest.
Only the block between the markers in RESULTS.md is rewritten; text outside it is left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from benchmarks.ceiling import measure_ceiling
from benchmarks.observe import flush_sync, load_average
from models._native import active, why_pure
from streams.local import start_kafka, start_redis
from streams.settings import Settings

__all__ = ["main", "SECTIONS", "DEFAULT_SECTIONS", "WORKLOADS", "make_events", "simulated_records"]

RESULTS = Path(__file__).with_name("RESULTS.md")
RAW = Path(__file__).with_name("results.json")
BEGIN = "<!-- benchmarks.run: begin -->"
END = "<!-- benchmarks.run: end -->"
CONDITIONS = ("2 cores shared with other engineers' test runs and workers at the same time (noisy); broker (Tansu, "
              "memory storage), Redis (valkey-server) and workers on the same machine over loopback")

Ctx = dict[str, Any]


def make_events(n: int, users: int, start_ms: int = 1_767_225_600_000, step_ms: int = 997) -> list[tuple[str, bytes]]:
    """``n`` well-formed events (~140 B) over ``users`` users, in event-time order, as
    ``(user_id, value)`` records for ``streams.publisher.publish_bulk``.

    Review-heavy on purpose: each user comes back once every ``users`` events (~28 h of event
    time at the defaults), so *every* event is the user's first of a new day and triggers a full
    review (scores, next review time). Real traffic comes in sessions (the simulator: ~4 events
    per active user-day), so this is the worst case per event.
    """
    out = []
    types = ("view", "click", "message", "view", "purchase")
    for i in range(n):
        user = f"user-{(i * 7919) % users:07d}"
        kind = types[i % 5]
        value: dict[str, object] = {"event_id": f"e{i:09d}", "user_id": user, "type": kind, "ts": start_ms + i * step_ms,
                                    "properties": {"page": _PAGES[i % 4], "session": f"s{i // 5:08d}"}}
        if kind == "purchase":
            value["amount"] = 19.9
        out.append((user, orjson.dumps(value)))
    return out


_PAGES = ("/app/home", "/app/reports", "/app/settings", "/pricing")


def simulated_records(n: int, users: int, seed: int = 3, start_ms: int = 1_767_225_600_000, days: int = 5) -> list[tuple[str, bytes]]:
    """The first ``n`` events (event-time order) of a simulated population (streams.offline.simulate:
    sessions, personas, purchases, cancels) as ``(user_id, value)`` records: the publisher's JSON
    plus a small ``properties`` object such as products attach (~140 B in all)."""
    from streams.offline.simulate import generate

    events, _ = generate(seed, users, start_ms, days)
    out = []
    for i, ev in enumerate(events[:n]):
        value: dict[str, object] = {"event_id": ev.event_id, "user_id": ev.user_id, "type": ev.type, "ts": ev.ts_ms,
                                    "properties": {"page": _PAGES[i % 4]}}
        if ev.type == "purchase":
            value["amount"] = ev.amount
        out.append((ev.user_id, orjson.dumps(value)))
    return out


# ---------------------------------------------------------------------------------------------
# shared inputs
# ---------------------------------------------------------------------------------------------

#: Workloads of the throughput sections: name -> what they are.
WORKLOADS: dict[str, str] = {
    "realistic": "simulated sessions (streams.offline.simulate, 100k users, first 500k events of 5 days): ~4 events per "
                 "active user-day, so about one event in four starts a review",
    "review_heavy": "make_events: each of 100k users sends one event per ~28 h of event time, so every event "
                    "starts a review (worst case per event)",
}


def _filled_topic(ctx: Ctx, workload: str = "realistic") -> tuple[str, dict[int, int], float]:
    """A topic holding ``n`` records of ``workload`` (made once per run): name, last offsets, produce rate."""
    cache = ctx.setdefault("filled", {})
    if workload not in cache:
        from streams.worker.topics import ensure_topics
        from streams.publisher import publish_bulk_async
        from streams.settings import Settings

        topic = f"bench-{workload.replace('_', '-')}-{int(time.time())}"
        settings = Settings(kafka_bootstrap_servers=ctx["kafka"], topic_events=topic, topic_alerts=topic + "-alerts",
                            topic_dlq=topic + "-dlq")
        _create_with_retention(ctx["kafka"], topic, settings.partitions)
        ensure_topics(settings)
        t0 = time.perf_counter()
        if workload == "realistic":
            records = simulated_records(ctx["n"], ctx["users"])
        else:
            records = make_events(ctx["n"], ctx["users"])
        print(f"  {workload}: {len(records):,} records made in {time.perf_counter() - t0:.1f} s", flush=True)
        stats = asyncio.run(publish_bulk_async(settings, records))
        cache[workload] = (topic, dict(stats.last_offsets), stats.events_per_s)
        ctx.setdefault("event_bytes", {})[workload] = round(sum(len(v) for _, v in records) / len(records))
    return cache[workload]  # type: ignore[no-any-return]


def _create_with_retention(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` with its retention spelled out. Apache Kafka reports ``retention.ms`` of
    every topic in DescribeConfigs; Tansu only reports configs given at creation, and Quix Streams
    reads that value to size its changelog topics (KeyError without it)."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="churnwatch-bench")
    try:
        admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={"retention.ms": "-1", "retention.bytes": "-1"})])
    finally:
        admin.close()


def _population(ctx: Ctx) -> tuple[list[Any], int]:
    """The simulated population shared by ``memory`` and ``backtest``: events and the window end."""
    if "population" not in ctx:
        from streams.offline.simulate import generate

        start_ms, days = 1_767_225_600_000, 120
        users = max(200, int(10_000 * ctx["scale"]))
        t0 = time.perf_counter()
        events, _ = generate(7, users, start_ms, days)
        print(f"  simulated {users:,} users, {len(events):,} events in {time.perf_counter() - t0:.1f} s", flush=True)
        ctx["population"] = (events, start_ms + days * 86_400_000)
    return ctx["population"]  # type: ignore[no-any-return]


def _max_rate(ctx: Ctx) -> float:
    """e2e1's events/s measured in this run (run now if it has not been), or ``--max-rate``."""
    if ctx.get("max_rate_arg"):
        return float(ctx["max_rate_arg"])
    return float(_run_section(ctx, "e2e1")["events_per_s"])


def _ceiling(ctx: Ctx) -> float:
    """The ceiling measured in this run (run now if it has not been): every ratio uses it."""
    return float(_run_section(ctx, "ceiling")["consume_decode_events_per_s"])


def _run_section(ctx: Ctx, name: str) -> dict[str, Any]:
    """Rows of section ``name`` from this run, running it first if needed (results are recorded
    for every section run, so a figure and the ceiling it is divided by come from one run)."""
    ran = ctx.setdefault("ran", {})
    if name not in ran:
        print(f"== {name}", flush=True)
        load_before, t0 = load_average(), time.perf_counter()
        rows = SECTIONS[name](ctx)
        for key, value in rows.items():
            if key not in ("samples", "profile"):
                print(f"  {key}: {value}", flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
        ran[name] = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "scale": ctx["scale"], "code": ctx.get("code", "?"),
            "load_before": load_before, "load_after": load_average(), "doc": (SECTIONS[name].__doc__ or "").strip(),
            "rows": rows,
        }
    return ran[name]["rows"]  # type: ignore[no-any-return]


def _ratio(value: float | None, ceiling: float | None) -> float | None:
    return round(value / ceiling, 3) if value and ceiling else None


def _services_pids(ctx: Ctx) -> dict[str, int]:
    return {k: v for k, v in (("kafka", ctx.get("kafka_pid")), ("redis", ctx.get("redis_pid"))) if v}


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------


def section_ceiling(ctx: Ctx) -> dict[str, Any]:
    """Raw aiokafka getmany + orjson.loads per event: what no worker can beat on this machine."""
    topic, last, produce_rate = _filled_topic(ctx)
    n = sum(off + 1 for off in last.values())
    # The worker reads records through streams.worker.fetch's lean path, which the plain consumer
    # does not: the same read with it, so a reader sees how much of a ratio is that path. Plain and
    # lean alternate (plain, lean, plain, lean) and each keeps its faster read, so neither gets the
    # warmer broker and page cache of going second (review 20 L6).
    reads = [asyncio.run(measure_ceiling(ctx["kafka"], topic, 8, n, lean=lean)) for lean in (False, True, False, True)]
    res = max(reads[0::2], key=lambda r: r.events_per_s)
    lean = max(reads[1::2], key=lambda r: r.events_per_s)
    return {"events (the realistic workload's topic)": n, "event_bytes_mean": ctx["event_bytes"]["realistic"],
            "partitions": 8, "produce_events_per_s (aiokafka publish_bulk, acks=all)": round(produce_rate),
            "consume_decode_events_per_s": round(res.events_per_s),
            "consume_decode_events_per_cpu_s": round(res.events_per_cpu_s),
            "lean_consume_decode_events_per_s (the worker's fetch path)": round(lean.events_per_s),
            "lean_consume_decode_events_per_cpu_s": round(lean.events_per_cpu_s)}


def _section_e2e(ctx: Ctx, workers: int, workload: str = "realistic", profile: bool = False) -> dict[str, Any]:
    from benchmarks.e2e import drain, make_topics

    topic, last, _ = _filled_topic(ctx, workload)
    tag = f"{'prof' if profile else 'e2e'}{workers}-{int(time.time())}"
    topics = make_topics(ctx["kafka"], topic, tag)
    profile_to = Path(ctx["logdir"]) / f"{tag}.pyspy.txt" if profile else None
    rows: dict[str, Any] = {"workload": WORKLOADS[workload], "event_bytes_mean": ctx["event_bytes"][workload]}
    # The worker inherits this environment and tree, so it runs the same core (CHURNWATCH_PURE=1: pure).
    rows["scoring_core (models/_native.py)"] = f"{active()} ({why_pure() or 'built'})"
    rows.update(drain(bootstrap=ctx["kafka"], redis_url=ctx["redis"], topics=topics, last_offsets=last, workers=workers,
                      logdir=Path(ctx["logdir"]), service_pids=_services_pids(ctx), profile_to=profile_to))
    rows["ratio_to_ceiling"] = _ratio(rows["events_per_s"], _ceiling(ctx))
    # The same ratio per CPU-second (worker vs the ceiling's consumer): on a machine where other
    # work takes the cores (see worker_runqueue_share), this one still compares code with code.
    per_cpu = _run_section(ctx, "ceiling").get("consume_decode_events_per_cpu_s")
    rows["ratio_to_ceiling_per_cpu_s"] = _ratio(rows.get("events_per_worker_cpu_s"), per_cpu)
    lean = _run_section(ctx, "ceiling").get("lean_consume_decode_events_per_s (the worker's fetch path)")
    rows["ratio_to_lean_ceiling (informative; targets use the plain one)"] = _ratio(rows["events_per_s"], lean)
    if profile_to is not None:
        rows["collapsed_stacks"] = str(profile_to)
    return rows


def section_e2e1(ctx: Ctx) -> dict[str, Any]:
    """One worker draining n events (500k at scale 1, ~140 B, 8 partitions) of realistic sessions."""
    return _section_e2e(ctx, 1)


def section_e2e2(ctx: Ctx) -> dict[str, Any]:
    """Two workers in one group draining the same events (4 partitions each)."""
    one = _run_section(ctx, "e2e1")["events_per_s"]
    rows = _section_e2e(ctx, 2)
    rows["speedup_vs_e2e1 (same run)"] = round(rows["events_per_s"] / one, 2) if one else None
    return rows


def section_e2e1_review_heavy(ctx: Ctx) -> dict[str, Any]:
    """One worker, the worst case per event: every event starts a review (make_events)."""
    return _section_e2e(ctx, 1, "review_heavy")


def section_profile(ctx: Ctx) -> dict[str, Any]:
    """The e2e1 run again with py-spy attached to the worker (figures are slowed by sampling)."""
    return _section_e2e(ctx, 1, profile=True)


def section_profile_review_heavy(ctx: Ctx) -> dict[str, Any]:
    """The review-heavy run again with py-spy attached to the worker."""
    return _section_e2e(ctx, 1, "review_heavy", profile=True)


def section_latency(ctx: Ctx) -> dict[str, Any]:
    """Ingest->state and ingest->alert at 25/50/75% of e2e1's rate (measured in the same run), one worker in --clock live."""
    import redis as redis_lib

    from benchmarks import latency

    max_rate = _max_rate(ctx)
    seconds = max(12.0, 30.0 * min(1.0, ctx["scale"] * 2))
    warmup = 8.0  # measured: the first ~5-8 s after a rate change carry the previous level's backlog
    client = redis_lib.Redis.from_url(ctx["redis"])
    flush_sync(client)
    client.close()
    rows: dict[str, Any] = {"max_rate (e2e1 events/s, this run)": round(max_rate), "seconds_per_level": seconds,
                            "warmup_left_out_s": warmup,
                            "fetch_max_wait_ms (worker)": os.environ.get("CHURNWATCH_FETCH_MAX_WAIT_MS", f"{Settings().fetch_max_wait_ms} (default)"),
                            "fetch_max_wait_ms (alert reader)": latency.READER_FETCH_MAX_WAIT_MS}
    for pct in (25, 50, 75):
        rows.update(_latency_level(ctx, pct, max_rate * pct / 100, seconds, warmup))
        time.sleep(2.0)
    return rows


def _latency_level(ctx: Ctx, pct: int, rate: float, seconds: float, warmup: float) -> dict[str, Any]:
    """One level on a topic and worker of its own: Tansu's fetch lists every batch stored in a
    partition (OPERATE, "Tansu"), so a topic carried over from the levels before would slow the
    broker's fetches with each level, which Apache Kafka's offset index does not."""
    from benchmarks.e2e import make_topics, start_ready
    from benchmarks.latency import measure_level
    from benchmarks.observe import cpu_seconds, metric_sum, scrape
    from streams.worker.keys import Keys

    topic = f"bench-latency-{int(time.time())}-l{pct}"
    topics = make_topics(ctx["kafka"], topic, "lat")
    worker = start_ready(ctx["kafka"], ctx["redis"], topics, Path(ctx["logdir"]) / f"{topic}.log",
                         env={"CHURNWATCH_CLOCK": "live"})
    try:
        assert worker.proc is not None
        before, cpu0, t0 = scrape(worker.metrics_port), cpu_seconds(worker.proc.pid), time.monotonic()
        services0 = {name: cpu_seconds(pid) for name, pid in _services_pids(ctx).items()}
        res = asyncio.run(measure_level(ctx["kafka"], ctx["redis"], topic, topics.alerts, rate, seconds, warmup,
                                        f"l{pct}", Keys("cw").progress(topic)))
        after, cpu1, t1 = scrape(worker.metrics_port), cpu_seconds(worker.proc.pid), time.monotonic()
        services1 = {name: cpu_seconds(pid) for name, pid in _services_pids(ctx).items()}
    finally:
        worker.stop()
    r = res.rows()
    print(f"  {pct}%: {r}", flush=True)
    label = f"{pct}% ({r['target_events_per_s']:,}/s)"
    rows: dict[str, Any] = {f"{label}: achieved events/s": r["achieved_events_per_s"]}
    for name, what in (("state", "ingest->state"), ("alert", "ingest->alert created"),
                       ("alert_received", "ingest->alert received"), ("alert_from_ack", "broker ack->alert received")):
        rows[f"{label}: {what} p50 / p99 / max ms (n)"] = _lat(r, name)
    rows[f"{label}: progress poll gap mean / max ms"] = r["progress_poll_gap_ms (mean / max)"]
    if r["breakdown"]:
        b = r["breakdown"]
        tail = next(k for k in b if k.startswith("mean_of"))
        rows[f"{label}: alert received, ms in {b['parts']}: median / {tail}"] = f"{b['median_ms']} | {b[tail]}"
    cycles = metric_sum(after, "churnwatch_batch_seconds_count") - metric_sum(before, "churnwatch_batch_seconds_count")
    cycle_s = metric_sum(after, "churnwatch_batch_seconds_sum") - metric_sum(before, "churnwatch_batch_seconds_sum")
    records = metric_sum(after, "churnwatch_batch_size_events_sum") - metric_sum(before, "churnwatch_batch_size_events_sum")
    rows[f"{label}: worker cycles/s, records/cycle, ms/cycle, cores busy"] = (
        f"{cycles / (t1 - t0):.1f}, {records / cycles if cycles else 0:.0f}, "
        f"{1000 * cycle_s / cycles if cycles else 0:.1f}, {(cpu1 - cpu0) / (t1 - t0):.2f}")
    phases = []
    for phase in ("fetch", "decode", "read", "advance", "produce", "queued", "write", "progress"):
        name = "churnwatch_cycle_phase_seconds"
        n = metric_sum(after, name + "_count", phase=phase) - metric_sum(before, name + "_count", phase=phase)
        total = metric_sum(after, name + "_sum", phase=phase) - metric_sum(before, name + "_sum", phase=phase)
        phases.append(f"{1000 * total / n:.1f}" if n else "-")
    rows[f"{label}: ms per cycle in fetch wait / decode / read / advance / produce / queued / write / progress"] = " / ".join(phases)
    rows[f"{label}: load generator CPU us/event (producer + progress poller)"] = r["generator_cpu_us_per_event"]
    rows[f"{label}: produce batches stored per partition (its own topic)"] = round(r["batches"] / 8)
    if r["cancels_off_their_key_partition"]:
        rows[f"{label}: CANCELS OFF THEIR KEY'S PARTITION (generator partitioner wrong)"] = r["cancels_off_their_key_partition"]
    rows[f"{label}: cores busy: broker / Redis"] = " / ".join(
        f"{(services1[n] - services0[n]) / (t1 - t0):.2f}" if n in services0 else "-" for n in ("kafka", "redis"))
    rows[f"{label}: load average (1 min) after"] = load_average().split(" / ")[0]
    ctx.setdefault("latency_levels", {})[pct] = r
    return rows


def _lat(r: dict[str, Any], name: str) -> str:
    if not r.get(f"{name}_n"):
        return "no samples"
    return f"{r[f'{name}_p50_ms']} / {r[f'{name}_p99_ms']} / {r[f'{name}_max_ms']} ({r[f'{name}_n']:,})"


def section_cycle(ctx: Ctx) -> dict[str, Any]:
    """The worker's cycle in-process at 200/400/1,600 records: worker and Redis CPU per cycle, fixed and per record."""
    from benchmarks.cycle import measure_cycles

    return measure_cycles(ctx["kafka"], ctx["redis"], cycles=max(10, int(60 * min(1.0, ctx["scale"] * 2))))


def section_peers(ctx: Ctx) -> dict[str, Any]:
    """The same per-user work in Faust, Quix Streams and Bytewax, on e2e1's topic and events, against e2e1 of this run."""
    from benchmarks.peers.runner import PEERS, run_peer

    topic, last, _ = _filled_topic(ctx)
    n = sum(off + 1 for off in last.values())
    e2e1 = _run_section(ctx, "e2e1")
    ours = e2e1["events_per_s"]
    ceiling = _ceiling(ctx)
    # Per CPU-second, churnwatch's state store (Redis) counts too: the peers' stores run in-process.
    cpu = (e2e1.get("worker_cpu_s") or 0) + (e2e1.get("redis_cpu_s") or 0)
    ours_cpu = round(e2e1["events"] / cpu) if cpu else None
    rows: dict[str, Any] = {"events (e2e1's topic)": n, "churnwatch events/s (e2e1, this run)": ours,
                            "churnwatch ratio_to_ceiling": _ratio(ours, ceiling),
                            "churnwatch events per CPU-second (worker + Redis)": ours_cpu}
    for name in PEERS:
        try:
            res = run_peer(name, bootstrap=ctx["kafka"], topic=topic, events=n, logdir=Path(ctx["logdir"]))
        except RuntimeError as exc:  # one peer failing must not lose the others
            rows[f"{name}: failed"] = str(exc)[:300]
            continue
        for key, value in res.items():
            rows[f"{name}: {key}"] = value
        rate = res["events_per_s"]
        rows[f"{name}: ratio_to_ceiling"] = _ratio(rate, ceiling)
        rows[f"ratio_vs_{name}"] = round(ours / rate, 2) if rate else None
        per_cpu = res.get("events_per_cpu_s")
        rows[f"ratio_vs_{name} per CPU-second"] = round(ours_cpu / per_cpu, 2) if ours_cpu and per_cpu else None
    return rows


def section_memory(ctx: Ctx) -> dict[str, Any]:
    """Redis bytes per tracked user at 1M users (scale 1), through Store.write; then `top --share 2%`
    on those users from the save-list index against reading every state."""
    from benchmarks.memory import measure_memory, measure_top_share, templates_from
    from models.state import ACCOUNT_MEMBER

    events, end_ms = _population(ctx)
    templates = templates_from(events, end_ms)
    users = max(1_000, int(1_000_000 * ctx["scale"]))
    rows = measure_memory(ctx["redis"], templates, users)
    rows.update(measure_top_share(ctx["redis"], end_ms, redis_pid=ctx.get("redis_pid")))
    # the same users and index scores, each state with a known end of the paid period (format 5,
    # models.state): the record's 2 bytes alone (a closed exit would also lower the save-list scores)
    annual = templates_from(events, end_ms, period_end_day=end_ms // 86_400_000 + 200)
    paid = measure_memory(ctx["redis"], [dataclasses.replace(t, blob=a.blob) for t, a in zip(templates, annual)], users)
    rows["every user with a period end: state_record_bytes"] = paid["state_record_bytes"]
    rows["every user with a period end: bytes_per_user"] = paid["bytes_per_user"]
    hashes = next(k for k in paid if k.startswith("user hashes"))
    rows["every user with a period end: " + hashes] = paid[hashes]
    # every user a member of a company account (the actions' flags, format 7: models.state): the
    # record is format 4's size (format 6, until 2026-12-05, was 3 bytes more), what a product whose
    # users all name an account pays
    members = templates_from(events, end_ms, flags=ACCOUNT_MEMBER)
    flagged = measure_memory(ctx["redis"], [dataclasses.replace(t, blob=a.blob) for t, a in zip(templates, members)], users)
    rows["every user an account member: state_record_bytes"] = flagged["state_record_bytes"]
    rows["every user an account member: bytes_per_user"] = flagged["bytes_per_user"]
    rows["every user an account member: " + hashes] = flagged[hashes]
    return rows


def section_console(ctx: Ctx) -> dict[str, Any]:
    """The console with 1M users in Redis (scale 1): p50/p99 of the at-risk API call and My book page."""
    from benchmarks.console import measure_console

    events, end_ms = _population(ctx)
    return measure_console(ctx["redis"], events, end_ms, max(1_000, int(1_000_000 * ctx["scale"])), redis_pid=ctx["redis_pid"],
                           kafka=ctx["kafka"])


def section_memory_alert_lists(ctx: Ctx) -> dict[str, Any]:
    """Redis bytes of the console's alert lists per alerted user at 100k alerted users (scale 1)."""
    from benchmarks.alert_lists import alert_lists_from, measure_alert_lists

    events, end_ms = _population(ctx)
    return measure_alert_lists(ctx["redis"], alert_lists_from(events, end_ms), max(1_000, int(100_000 * ctx["scale"])))


def section_memory_accounts(ctx: Ctx) -> dict[str, Any]:
    """Redis bytes per account (revenue state, extras, members) at 100k accounts (scale 1). The accounts
    are judged with their users' member copies, in event order, and reviewed up to the window's end
    (benchmarks.memory.account_templates): the extras (the account's alert list) are the alerts a
    deployment logs. Until 2026-12-03 they saw no member at all, so every simulated trial looked unused
    and logged at-risk, recovered and trial-ending alerts with reasons: 779 bytes (extras 396), 594 with
    members (229). Since then also the alert side's own state (`cw:{b}:aside`) and the account due index,
    which the worker writes for every account and the benchmark did not: 786; 768 once an unused
    trial logs one alert, not two (QA6 L7). Not counted here: the user -> account index the worker
    writes beside each member record (about 32 bytes a member, docs/REVENUE.md)."""
    from benchmarks.memory import account_templates, measure_account_memory

    templates = account_templates(7, 500, 1_767_225_600_000, 120)
    return measure_account_memory(ctx["redis"], templates, max(1_000, int(100_000 * ctx["scale"])))


def section_backtest(ctx: Ctx) -> dict[str, Any]:
    """`churnwatch backtest` on a simulated file (10k users, 120 days at scale 1), as a subprocess."""
    from benchmarks.backtest_speed import measure_backtest

    events, _ = _population(ctx)
    rows = measure_backtest(events)
    ceiling = _ceiling(ctx)
    for key in [k for k in rows if k.endswith("events/s (read + replay)")]:
        rows[key.replace("events/s (read + replay)", "ratio_to_ceiling (read + replay)")] = _ratio(rows[key], ceiling)
    for key in [k for k in rows if k.endswith("events/s (whole command, wall)")]:
        rows[key.replace("events/s (whole command, wall)", "ratio_to_ceiling (whole command)")] = _ratio(rows[key], ceiling)
    per_cpu = _run_section(ctx, "ceiling").get("consume_decode_events_per_cpu_s")
    for key in [k for k in rows if k.endswith("events per CPU-second")]:
        rows[key.replace("events per CPU-second", "ratio_to_ceiling_per_cpu_s (whole command)")] = _ratio(rows[key], per_cpu)
    return rows


def section_soak(ctx: Ctx) -> dict[str, Any]:
    """Ten minutes at 40% of the max rate with new users trickling in; samples every 10 s."""
    from benchmarks.e2e import make_topics, start_ready
    from benchmarks.soak import run_soak
    import redis as redis_lib

    rate = ctx["soak_rate"] or 0.4 * _max_rate(ctx)
    seconds = ctx["soak_seconds"]
    topic = f"bench-soak-{int(time.time())}"
    topics = make_topics(ctx["kafka"], topic, "soak")
    client = redis_lib.Redis.from_url(ctx["redis"])
    flush_sync(client)
    client.close()
    worker = start_ready(ctx["kafka"], ctx["redis"], topics, Path(ctx["logdir"]) / f"{topic}.log")
    try:
        assert worker.proc is not None
        rows = asyncio.run(run_soak(bootstrap=ctx["kafka"], redis_url=ctx["redis"], events_topic=topic,
                                    worker_pid=worker.proc.pid, metrics_port=worker.metrics_port,
                                    broker_pid=ctx.get("kafka_pid"), rate=rate, seconds=seconds,
                                    sample_s=10.0 if seconds >= 120 else 5.0))
        alive = worker.proc.poll() is None
    finally:
        code = worker.stop()
    rows["worker_alive_at_end / exit code on SIGTERM"] = f"{alive} / {code}"
    return rows


def section_quality(ctx: Ctx) -> dict[str, Any]:
    """The quality table (benchmarks/quality.py): AUC, lift, alert figures of the models and simple baselines on
    CDNOW, two fightchurn configurations and a simulate mix; full table in benchmarks/QUALITY.md."""
    from benchmarks.quality import CHECKS, ORACLE_RECALL, run

    results = run(jobs=2, write=ctx.get("write", True))  # --no-write: QUALITY.md and quality.json untouched too
    rows: dict[str, Any] = {}
    for name, pop in results["populations"].items():
        s = pop["scorers"]
        best = max((s[k]["roc_auc"] or 0.0, k) for k in ("events_28d", "days_since_last", "logistic_per_type"))
        rows[f"{name}: ROC AUC default / trained (labels) / trained (no labels) / best baseline"] = (
            f"{s['default']['roc_auc']} / {s['trained_labels']['roc_auc']} / {s['trained_no_labels']['roc_auc']} / {best[0]} ({best[1]})")
        met = sum(1 for key, _ in CHECKS if pop["checks"][key]["met"])
        rows[f"{name}: done-when checks met"] = f"{met} of {len(CHECKS)}"
        if "oracle" in pop:
            at = pop["oracle"][f"precision_at_recall_{ORACLE_RECALL}"]["oracle_events_at_d"]
            rows[f"{name}: oracle ROC AUC (knowing the month / at d, true propensity / from the events at d); "
                 f"from the events, precision of weekly flags at recall {ORACLE_RECALL}"] = (
                f"{s['oracle_decision']['roc_auc']} / {s['oracle_at_d']['roc_auc']} / {s['oracle_events_at_d']['roc_auc']}; "
                f"{at['precision']} ({at['x_base']}x base)")
    if "cdnow_check" in results:
        cd = results["cdnow_check"]
        rows["CDNOW check: temperature AUC, buys again in 39 weeks"] = cd["temperature_roc_auc"]
        if "trained" in cd:
            rows["CDNOW check: the same, model trained on the calibration period / lifetimes' expected purchases"] = (
                f"{cd['trained']['temperature_roc_auc']} / {cd['lifetimes']['expected_purchases_39w_roc_auc']}")
    rows["seconds (all populations)"] = results["seconds"]
    return rows


SECTIONS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "ceiling": section_ceiling,
    "e2e1": section_e2e1,
    "e2e2": section_e2e2,
    "e2e1_review_heavy": section_e2e1_review_heavy,
    "latency": section_latency,
    "cycle": section_cycle,
    "peers": section_peers,
    "memory": section_memory,
    "console": section_console,
    "memory_accounts": section_memory_accounts,
    "memory_alert_lists": section_memory_alert_lists,
    "backtest": section_backtest,
    "profile": section_profile,
    "profile_review_heavy": section_profile_review_heavy,
    "soak": section_soak,
    "quality": section_quality,
}
#: Sections that need no broker and no Redis (run alone, they start neither).
OFFLINE_SECTIONS = frozenset({"quality"})
DEFAULT_SECTIONS = ("ceiling", "e2e1", "e2e2", "e2e1_review_heavy", "latency", "cycle", "peers", "memory", "memory_accounts",
                    "memory_alert_lists", "console", "backtest")


# ---------------------------------------------------------------------------------------------
# targets and the results file
# ---------------------------------------------------------------------------------------------


def _rows(sections: dict[str, Any], name: str) -> dict[str, Any]:
    return sections.get(name, {}).get("rows", {})  # type: ignore[no-any-return]


def _target_lines(sections: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, met / not met / not measured) for issue 14's targets: every speed figure
    is a ratio to the ceiling (or to e2e1) measured in the same run as the figure."""
    out: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "**not met**")

    def ratio_line(target: str, section: str, key: str, minimum: float, unit: str = "of the ceiling") -> None:
        rows = _rows(sections, section)
        value = rows.get(key)
        measured = f"{value} {unit}" if value is not None else "-"
        if rows.get("ratio_to_ceiling_per_cpu_s") is not None and key == "ratio_to_ceiling":
            measured += f" (per CPU-second: {rows['ratio_to_ceiling_per_cpu_s']})"
        lean = rows.get("ratio_to_lean_ceiling (informative; targets use the plain one)")
        if lean is not None and key == "ratio_to_ceiling":
            measured += f" (of the lean ceiling, the worker's own fetch path: {lean})"
        out.append((target, measured, verdict(value >= minimum if value is not None else None)))

    ratio_line("one worker, realistic workload: >= 0.35 of the ceiling", "e2e1", "ratio_to_ceiling", 0.35)
    ratio_line("one worker, review-heavy workload: >= 0.2 of the ceiling", "e2e1_review_heavy", "ratio_to_ceiling", 0.2)
    ratio_line("two workers: >= 1.8x one worker", "e2e2", "speedup_vs_e2e1 (same run)", 1.8, "x")
    lat = _rows(sections, "latency")
    half = next((v for k, v in lat.items() if k.startswith("50%") and "alert received" in k), None)
    p99 = float(half.split(" / ")[1]) if half and half != "no samples" else None
    out.append(("p99 ingest -> alert received < 100 ms at 50% of the max rate (same run)",
                f"{p99} ms" if p99 is not None else "-", verdict(p99 < 100 if p99 is not None else None)))
    rows = _rows(sections, "backtest")
    whole = {k.split(":")[0]: v for k, v in rows.items() if k.endswith("ratio_to_ceiling (whole command)")}
    cpu = {k.split(":")[0]: v for k, v in rows.items() if k.endswith("ratio_to_ceiling_per_cpu_s (whole command)")}
    out.append(("backtest, whole command: >= 0.4 of the ceiling",
                "; ".join(f"{k}: {v}" + (f" (per CPU-second: {cpu[k]})" if cpu.get(k) else "") for k, v in whole.items()) or "-",
                verdict(all(v >= 0.4 for v in whole.values()) if whole else None)))
    mem = _rows(sections, "memory").get("bytes_per_user")
    out.append(("<= 300 bytes per tracked user", f"{mem} bytes" if mem else "-", verdict(mem <= 300 if mem else None)))
    con = _rows(sections, "console").get("api_at_risk_first_page_ms_p50_p99_max")
    con_p99 = float(con.split(" / ")[1]) if con else None
    out.append(("console: p99 of the at-risk API call < 50 ms with 1M users", f"{con_p99} ms (see console)" if con else "-",
                verdict(con_p99 < 50 if con_p99 is not None else None)))
    peers = {k[len("ratio_vs_"):]: v for k, v in _rows(sections, "peers").items()
             if k.startswith("ratio_vs_") and " " not in k}
    out.append(("peers: churnwatch faster than each (ratio_vs_<peer> > 1)",
                "; ".join(f"vs {k}: {v}x" for k, v in peers.items()) or "-",
                verdict(all(v is not None and v > 1 for v in peers.values()) if peers else None)))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return "; ".join(f"{a} {b}%" for a, b in value)
    return str(value).replace("|", "/")


#: How each section measures, in one paragraph (the module docstrings have the details).
METHODS: dict[str, str] = {
    "ceiling": "n events (the realistic workload, `simulated_records`) produced with `streams.publisher.publish_bulk_async` (aiokafka, acks=all, "
               "linger 20 ms), then read back by one plain aiokafka consumer (`getmany(max_records=10000)`) with "
               "`orjson.loads` per record, timed from the first non-empty fetch to the last record; and the same read with "
               "the worker's lean fetch path, alternately (plain, lean, plain, lean; each its faster read) (`streams.worker.fetch`, aiokafka's own record objects): the lean ceiling, "
               "shown beside each end-to-end ratio; the targets use the plain one, as the issue defines it.",
    "e2e": "The ceiling's topic (or the review-heavy one) is drained by 1 or 2 `churnwatch worker` subprocesses (started as the tests start them, "
           "`tests.harness.Worker`, default settings: batches of <= 10k records, 64 buckets) on a flushed Redis. Timed "
           "from the first partition progress written to Redis (first batch done; its events are not counted) to Redis "
           "progress reaching the last produced offset of every partition (every state written). CPU seconds of the "
           "worker, Redis and broker processes over that window come from /proc, so `events_per_worker_cpu_s` is the "
           "figure that least depends on what else ran on the machine.",
    "latency": "One worker with `--clock live`; this process produces at a fixed rate (confluent-kafka's librdkafka producer, "
               "linger 20 ms, acks=all, murmur2 partitioner; its CPU per event is reported; each level on a topic and worker of its own) "
               "with event time = wall time and each event's send time in `properties.sent_ms`. Ingest->state: a "
               "poller reads the Redis partition progress every ~5 ms; offsets that became covered between two polls "
               "count as updated at the later poll (over-states by at most one poll gap, reported). Ingest->alert: "
               "1% of the events are `cancel`s of users seen >= 1 s earlier, which turn churned at once; latency = "
               "the alert record's Kafka CreateTime (set by the worker's producer) - the cancel's send time; "
               "'received' is when a consumer with a 10 ms fetch max wait (the CRM consumer's own setting, docs/OPERATE.md), in a process of its own, got it; "
               "the generator's and the reader's garbage collectors are tuned as the worker's (full collections stopped "
               "them 130-240 ms every 6-9 s); 'broker "
               "ack->' counts from the broker's ack of the cancel instead of its send. Breakdown of each alert "
               "(the worker's `churnwatch-timing` header: asked, fetched, scored): producer (send -> ack), behind "
               "(ack -> the worker asked for records), fetch, scoring (decode, read, advance), to send (scored -> "
               "CreateTime), delivery (CreateTime -> received); median, and mean of the alerts at or above the p99. "
               "The first 8 s of each rate are "
               "left out: after a change of rate the worker's batches take ~5-8 s to settle (a level started on a "
               "cold worker showed p99 2-4x higher over its first 5 s than over the rest). The producer shares the 2 "
               "cores with the worker, the broker and Redis.",
    "peers": "The same per-user work - counts by event type in event-time day buckets, summed over rolling 1/7/28-day "
             "windows, last seen, and a score from them (`benchmarks/peers/work.py`, one function shared by every "
             "peer) - written the way each peer's documentation shows keyed state, each reading e2e1's topic (same "
             "events, 8 partitions) from the beginning in its own consumer group, in a subprocess: **Faust** "
             "(`benchmarks/peers/faust_agent.py`): an agent over the topic and a `Table` keyed by user (in-memory "
             "store + Kafka changelog, the default), with the best supported settings measured here (uvloop, "
             "`cython_optimizations=True`, a no-op Monitor, web off, short session timeout for Tansu); **Quix Streams** "
             "(`benchmarks/peers/quix.py`): `sdf.apply(fn, stateful=True)` on its RocksDB state store with the "
             "default changelog topic, at-least-once, JSON deserialiser, defaults otherwise; **Bytewax** "
             "(`benchmarks/peers/bytewax_flow.py`): its Kafka connector's `input`, `key_on` user, `stateful_map` "
             "(state in memory: no recovery configured, so unlike the others it persists nothing), one worker as "
             "`python -m bytewax.run` starts it. Each peer is timed from its first processed event to its "
             "last (start-up, group join and shutdown left out, as e2e1 leaves out its start-up and first batch). "
             "`ratio_vs_<peer>` = e2e1's events/s in this run / the peer's. churnwatch does more per event than "
             "the peers (its review clock, the alert model, a fenced Redis write that survives a restart).",
    "memory": "Realistic states (a simulated population advanced by `models.engine.advance`) copied to 1M user ids "
              "and written with `streams.worker.store.Store.write` (the worker's fenced write script) into a flushed Redis; "
              "INFO used_memory after - before, divided by users. Shares by key kind from MEMORY USAGE (exact, "
              "SAMPLES 0) of every key; OBJECT ENCODING of every key.",
    "console": "Realistic states and weekly history (a simulated population advanced by the worker's "
               "`advance_sampled`) copied to 1M user ids and written with `Store.write` (state and history scripts); "
               "`churnwatch console` as a subprocess (reading the run's broker for the accounts table); sequential GETs "
               "on one keep-alive connection over loopback (`http.client`), 300 each: `/openapi.json` (the floor: "
               "framework and HTTP, no Redis), `/api/v1/at-risk?limit=50` (first page and page 20 by cursor), "
               "`/api/v1/users/{id}`, `/book` (50 rows with sparklines). Wall times are what the client sees; "
               "\"time in the application\" is the console's `Server-Timing` (request in to response start); CPU ms "
               "per request of the console, Redis and the client process from /proc, with the load average around "
               "each series: on a shared 2-core box the wall time is mostly waiting for a core. History bytes per user "
               "from MEMORY USAGE (SAMPLES 0) of every history key.",
    "memory_accounts": "500 simulated accounts (`simulate --accounts`, 120 days: 1-6 users, plans, trials, failed payments) "
                       "through the worker's own pure code (subscription events and the users' member copies, `streams.worker.members`, "
                       "through `advance_accounts` in event order, so each account is judged with the members it had then), copied to N account ids and written with "
                       "`Store.write_accounts` (the worker's fenced script: states, the alert side's states, extras, members) and "
                       "`Store.write_account_dues` (each account's next review) into a flushed Redis; INFO used_memory after - before.",
    "memory_alert_lists": "The simulated population (10k users, 120 days at scale 1) advanced by `models.engine.advance`; each "
                          "user's alerts worth a call (at_risk, recovered, stage changes to churned or reactivated) as the "
                          "worker logs them (`streams.worker.alert_log.entry`), copied to N alerted user ids and written with "
                          "`Store.write` (the fenced `write_batch.lua`, no states) into a flushed Redis; INFO used_memory after - "
                          "before, divided by users.",
    "cycle": "`benchmarks/cycle.py`: the worker's `Pipeline.process` in the benchmark process (the worker's GC settings), its "
             "`KafkaSink` on the broker and its `Store` on a flushed valkey, fed batches of the latency section's events "
             "(event time = wall time, 50k users, `--clock live`, 8 partitions, after 150k warm-up records); per batch size, "
             "the cycle's thread CPU time and Redis's `INFO cpu` per cycle, commands from `INFO commandstats`; a least-squares "
             "line through the sizes gives the fixed cost per cycle and the cost per record. CPU time, so it holds on a busy box.",
    "backtest": "`python -m streams.cli backtest` as a subprocess on a CSV of the simulated population; the command's "
                "own split (CSV read, replay) from its metrics JSON, the wall time of the whole process and the CPU time of it and "
                "its shard processes (per CPU-second ratios divide by the ceiling's events per CPU-second).",
    "profile": "The e2e1 workload (or the review-heavy one) again, with `py-spy record --nonblocking --rate 250` attached to the worker from "
               "its first batch to its last; idle samples excluded (shares of on-CPU time).",
    "quality": "Offline, no broker or Redis: `benchmarks/quality.py` builds (or reuses, under .churnwatch/quality) four populations "
               "nobody here designed, trains two models per population on half its users with `churnwatch train`, backtests them "
               "and the default on the other half with `churnwatch backtest`, and ranks simple baselines on the same rows. The whole "
               "table, with the issue's thresholds next to each figure, is benchmarks/QUALITY.md.",
    "soak": "One worker (event clock) while this process produces at 40% of the max rate for 10 minutes, event "
            "time 1,440x faster than the wall clock (10 min = 10 days, so users also go silent, get reviewed, turn "
            "at risk and churn), 20 new users/s trickling in and 15 active users/s stopping. Samples every 10 s.",
}


def _render(results: dict[str, Any]) -> str:
    sections: dict[str, Any] = results["sections"]
    lines = [BEGIN, "", "## Figures (written by `python -m benchmarks.run`; do not edit by hand)", "",
             f"Machine: {results['machine']}. Conditions: {CONDITIONS}. Figures are single runs: read them as orders "
             "of magnitude and ratios (each section says when it ran and the load average then). Throughputs are also "
             "given as a ratio to the `ceiling` section (raw aiokafka consume + orjson decode on the same machine).", "",
             "### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    for target, measured, verdict in _target_lines(sections):
        lines.append(f"| {target} | {measured} | {verdict} |")
    lines.append("")
    order = [s for s in SECTIONS if s in sections]
    for name in order:
        sec = sections[name]
        method = METHODS.get(name) or METHODS.get("e2e" if name.startswith("e2e") else name.split("_")[0], "")
        lines += [f"### {name}", "", f"_{sec.get('doc', '')}_ Run {sec['when']} (code {sec.get('code', '?')}), scale {sec['scale']}, "
                  f"load average before / after: {sec.get('load_before', '?')} -> {sec.get('load_after', '?')}.", ""]
        if method:
            lines += [f"How: {method}", ""]
        rows = dict(sec["rows"])
        profile = rows.pop("profile", None)
        samples = rows.pop("samples", None)
        lines += ["| figure | value |", "|---|---|"]
        for key, value in rows.items():
            lines.append(f"| {key} | {_fmt(value)} |")
        lines.append("")
        if profile:
            lines += _render_profile(profile)
        if samples:
            lines += _render_samples(samples)
    lines.append(END)
    return "\n".join(lines)


def _render_profile(profile: dict[str, Any]) -> list[str]:
    lines = [f"py-spy samples on CPU: {profile.get('samples', 0):,}. Shares of on-CPU time.", "",
             "| area (innermost frame) | % |", "|---|---|"]
    lines += [f"| {a} | {p} |" for a, p in profile.get("areas", [])]
    lines += ["", "| hottest functions, self time | % |", "|---|---|"]
    lines += [f"| `{f}` | {p} |" for f, p in profile.get("self_top", [])]
    lines += ["", "| churnwatch functions, inclusive time | % |", "|---|---|"]
    lines += [f"| `{f}` | {p} |" for f, p in profile.get("inclusive_top", [])]
    return lines + [""]


def _render_samples(samples: list[dict[str, Any]]) -> list[str]:
    cols = list(samples[0])
    lines = ["Samples (about one a minute; every sample is in results.json):", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    keep = [s for i, s in enumerate(samples) if i == 0 or i == len(samples) - 1 or int(s["t_s"]) // 60 != int(samples[i - 1]["t_s"]) // 60]
    for s in keep:
        lines.append("| " + " | ".join(_fmt(s[c]) for c in cols) + " |")
    return lines + [""]


def _code_version() -> str:
    """``git describe``-like id of the code measured (``+dirty`` with uncommitted changes)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "streams", "models"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def _load_previous() -> dict[str, Any]:
    try:
        data = json.loads(RAW.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    sections = data.get("sections", {})
    return {k: v for k, v in sections.items() if isinstance(v, dict) and "rows" in v}


def _write(results: dict[str, Any]) -> None:
    RAW.write_text(json.dumps(results, indent=2, default=str) + "\n")
    block = _render(results)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help=f"comma-separated sections (default: {','.join(DEFAULT_SECTIONS)}); all: {','.join(SECTIONS)}")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply event and user counts (0.1 for a quick look)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md / results.json")
    ap.add_argument("--render", action="store_true", help="rewrite RESULTS.md from results.json; run nothing")
    ap.add_argument("--max-rate", type=float, default=None, help="events/s taken as the max rate by latency/soak (default: e2e1's)")
    ap.add_argument("--soak-seconds", type=float, default=600.0, help="soak: seconds of producing (default 600)")
    ap.add_argument("--soak-rate", type=float, default=None, help="soak: events/s (default 40%% of the max rate)")
    args = ap.parse_args(argv)
    chosen = [s for s in (args.only.split(",") if args.only else DEFAULT_SECTIONS) if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        print(f"benchmarks.run: error: unknown section(s) {unknown}; known: {list(SECTIONS)}", file=sys.stderr)
        return 2
    if args.scale <= 0:
        print(f"benchmarks.run: error: --scale must be > 0, got {args.scale}", file=sys.stderr)
        return 2
    previous = _load_previous()
    if args.render:
        _write({"machine": json.loads(RAW.read_text()).get("machine", "?") if RAW.exists() else "?", "sections": previous})
        print(f"benchmarks: {RESULTS} rewritten from {RAW}")
        return 0
    logdir = tempfile.mkdtemp(prefix="churnwatch-bench-")
    services = not set(chosen) <= OFFLINE_SECTIONS
    kafka = start_kafka() if services else None
    redis = start_redis() if services else None
    ctx: Ctx = {"kafka": kafka.address if kafka else None, "redis": redis.address if redis else None, "n": int(500_000 * args.scale),
                "users": max(100, int(100_000 * args.scale)), "scale": args.scale, "logdir": logdir,
                "kafka_pid": kafka.proc.pid if kafka and kafka.proc else None,
                "redis_pid": redis.proc.pid if redis and redis.proc else None,
                "previous": previous, "max_rate_arg": args.max_rate, "soak_rate": args.soak_rate,
                "soak_seconds": args.soak_seconds, "write": not args.no_write}
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
                   f"{platform.python_implementation()} {platform.python_version()}",
        "sections": dict(previous),
    }
    ctx["code"] = code = _code_version()
    print(f"benchmarks: sections {chosen}, scale {args.scale}, code {code}, logs in {logdir}, load {load_average()}",
          flush=True)
    failed = []
    try:
        for name in chosen:
            try:
                _run_section(ctx, name)
            except Exception as exc:  # one broken section must not lose the others' figures
                print(f"  {name} FAILED: {type(exc).__name__}: {str(exc)[:2000]}", flush=True)
                failed.append(name)
    finally:
        if redis is not None:
            redis.stop()
        if kafka is not None:
            kafka.stop()
    results["sections"].update(ctx.get("ran", {}))  # every section run, including those others needed
    if not args.no_write:
        _write(results)
    if failed:
        print(f"benchmarks: failed sections: {failed} (logs in {logdir})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
