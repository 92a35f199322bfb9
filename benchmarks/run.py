"""Run the benchmark suite and write benchmarks/RESULTS.md (``make bench`` / ``python -m benchmarks.run``).

Benchmarks print figures; they never pass or fail on speed. Each section is a function that
returns rows for the results file; ``--only`` picks sections, ``--scale`` shrinks the sizes for a
quick look (figures from a scaled run are labelled as such).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import orjson

from benchmarks.ceiling import measure_ceiling, produce_events
from streams.local import start_kafka, start_redis

__all__ = ["main", "SECTIONS"]

RESULTS = Path(__file__).with_name("RESULTS.md")
RAW = Path(__file__).with_name("results.json")
BEGIN = "<!-- benchmarks.run: begin -->"
END = "<!-- benchmarks.run: end -->"


def make_events(n: int, users: int, start_ms: int = 1_767_225_600_000, step_ms: int = 997) -> list[tuple[bytes, bytes]]:
    """``n`` well-formed events (~140 B) over ``users`` users, in event-time order."""
    out = []
    types = ("view", "click", "message", "view", "purchase")
    for i in range(n):
        user = f"user-{(i * 7919) % users:07d}"
        kind = types[i % 5]
        value = {"event_id": f"e{i}", "user_id": user, "type": kind, "ts": start_ms + i * step_ms}
        if kind == "purchase":
            value["amount"] = 19.9
        out.append((user.encode(), orjson.dumps(value)))
    return out


def section_ceiling(ctx: dict) -> dict:
    from kafka.admin import KafkaAdminClient, NewTopic

    n = ctx["n"]
    topic = f"bench-ceiling-{int(time.time())}"
    admin = KafkaAdminClient(bootstrap_servers=ctx["kafka"])
    admin.create_topics([NewTopic(topic, 8, 1)])
    admin.close()
    events = make_events(n, ctx["users"])
    produce_rate = asyncio.run(produce_events(ctx["kafka"], topic, events))
    res = asyncio.run(measure_ceiling(ctx["kafka"], topic, 8, n))
    ctx["ceiling"] = res.events_per_s
    return {"events": n, "produce_events_per_s": round(produce_rate), "consume_decode_events_per_s": round(res.events_per_s)}


SECTIONS: dict[str, Callable[[dict], dict]] = {"ceiling": section_ceiling}


def _write(results: dict) -> None:
    RAW.write_text(json.dumps(results, indent=2) + "\n")
    lines = [BEGIN, "", f"Run {results['when']} on {results['machine']} ({results['conditions']}), scale {results['scale']}.", ""]
    for name, rows in results["sections"].items():
        lines.append(f"### {name}")
        lines.append("")
        lines.append("| figure | value |")
        lines.append("|---|---|")
        for key, value in rows.items():
            lines.append(f"| {key} | {value} |")
        lines.append("")
    lines.append(END)
    block = "\n".join(lines)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    ap.add_argument("--only", default="", help="comma-separated sections (default all): " + ",".join(SECTIONS))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply event and user counts (0.1 for a quick look)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md")
    args = ap.parse_args(argv)
    chosen = [s for s in (args.only.split(",") if args.only else SECTIONS) if s]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        print(f"benchmarks.run: error: unknown section(s) {unknown}; known: {list(SECTIONS)}", file=sys.stderr)
        return 2
    kafka = start_kafka()
    redis = start_redis()
    ctx = {"kafka": kafka.address, "redis": redis.address, "n": int(500_000 * args.scale), "users": int(100_000 * args.scale),
           "scale": args.scale}
    results: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "conditions": "broker, Redis and workers on the same noisy shared machine",
        "scale": args.scale,
        "sections": {},
    }
    try:
        for name in chosen:
            print(f"== {name}", flush=True)
            rows = SECTIONS[name](ctx)
            for key, value in rows.items():
                print(f"  {key}: {value}", flush=True)
            results["sections"][name] = rows
    finally:
        redis.stop()
        kafka.stop()
    if not args.no_write:
        _write(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
