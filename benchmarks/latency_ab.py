"""A/B of worker or reader settings on one latency level, interleaved on one broker and one Redis.

The latency section (``benchmarks.run --only latency``) measures one configuration per run, and
two runs minutes apart on the shared box differ by more than most levers (SCALING.md, "Levers").
This runs the same level (default 50% of the max rate) for each variant in turn, ABBA order, on
the same broker, Redis and max rate (e2e1 measured once at the start, or ``--max-rate``), so the
variants meet the same neighbours. ``--e2e`` also drains the e2e1 topic once per variant and
round (the max-rate check: a latency lever must not lower it).

A variant is ``name:KEY=VALUE,...``: keys are the worker's environment (``CHURNWATCH_*``, read by
the worker subprocess) and ``READER`` (the alert reader's fetch max wait, ms; the CRM consumer's
own setting)::

    python -m benchmarks.latency_ab --variant base: --variant reader10:READER=10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

import redis as redis_lib

from benchmarks import latency
from benchmarks import run as bench
from benchmarks.observe import flush_sync, load_average
from streams.local import start_kafka, start_redis

__all__ = ["main", "parse_variant"]

_KEEP = ("achieved events/s", "ingest->alert received", "alert received, ms in", "worker cycles/s",
         "ms per cycle", "cores busy: broker", "load average")


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """``name:K=V,K2=V2`` -> (name, {K: V, ...}).

    >>> parse_variant("r10:READER=10,CHURNWATCH_PIPELINE_DEPTH=1")
    ('r10', {'READER': '10', 'CHURNWATCH_PIPELINE_DEPTH': '1'})
    """
    name, _, rest = text.partition(":")
    pairs = [p for p in rest.split(",") if p]
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"variant setting must be KEY=VALUE, got {pair!r} in {text!r}")
        settings[key] = value
    if not name:
        raise ValueError(f"variant needs a name before ':', got {text!r}")
    return name, settings


def _apply(settings: dict[str, str], base_env: dict[str, str], reader_default: int) -> None:
    for key in [k for k in os.environ if k.startswith("CHURNWATCH_") and k not in base_env]:
        del os.environ[key]
    os.environ.update({k: v for k, v in base_env.items() if k.startswith("CHURNWATCH_")})
    os.environ.update({k: v for k, v in settings.items() if k != "READER"})
    latency.READER_FETCH_MAX_WAIT_MS = int(settings.get("READER", reader_default))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.latency_ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, help="name:KEY=VALUE,... (at least two)")
    ap.add_argument("--pct", type=int, default=50, help="level, percent of the max rate (default 50)")
    ap.add_argument("--rounds", type=int, default=2, help="ABBA rounds (default 2)")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds a level (default 30, as the section)")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--max-rate", type=float, default=None, help="skip e2e1 and take this as the max")
    ap.add_argument("--e2e", action="store_true", help="also drain e2e1 once per variant and round")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    variants = [parse_variant(v) for v in args.variant]
    base_env = dict(os.environ)
    reader_default = latency.READER_FETCH_MAX_WAIT_MS
    kafka, redis = start_kafka(), start_redis()
    logdir = tempfile.mkdtemp(prefix="churnwatch-latab-")
    ctx: bench.Ctx = {"kafka": kafka.address, "redis": redis.address, "n": 500_000, "users": 100_000, "scale": 1.0,
                      "logdir": logdir, "kafka_pid": kafka.proc.pid if kafka.proc else None,
                      "redis_pid": redis.proc.pid if redis.proc else None, "previous": {},
                      "max_rate_arg": args.max_rate, "code": bench._code_version()}
    out: list[dict[str, Any]] = []
    try:
        print(f"latency_ab: load {load_average()}, logs in {logdir}", flush=True)
        max_rate = bench._max_rate(ctx)
        print(f"max rate {max_rate:.0f} events/s (load {load_average()})", flush=True)
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, settings in order:
                _apply(settings, base_env, reader_default)
                row: dict[str, Any] = {"variant": name, "round": r, "settings": settings, "load_before": load_average()}
                if args.e2e:
                    e2e = bench._section_e2e(ctx, 1)
                    row["e2e1 events/s"] = e2e["events_per_s"]
                    row["e2e1 ratio_to_ceiling"] = e2e["ratio_to_ceiling"]
                    row["e2e1 events_per_worker_cpu_s"] = e2e.get("events_per_worker_cpu_s")
                client = redis_lib.Redis.from_url(ctx["redis"])
                flush_sync(client)  # every level's cancel users are new (same tag each time: same user names)
                client.close()
                rows = bench._latency_level(ctx, args.pct, max_rate * args.pct / 100, args.seconds, args.warmup)
                row.update({k: v for k, v in rows.items() if any(s in k for s in _KEEP)})
                out.append(row)
                print(json.dumps(row, indent=1), flush=True)
                time.sleep(2.0)
    finally:
        _apply({}, base_env, reader_default)
        redis.stop()
        kafka.stop()
    print("\nsummary (ingest->alert received p50 / p99 / max ms (n)):")
    for row in out:
        lat = next((v for k, v in row.items() if "ingest->alert received" in k), "-")
        print(f"  {row['variant']:>12} r{row['round']} load {row['load_before']}: {lat}"
              + (f"; e2e1 {row['e2e1 events/s']}/s" if "e2e1 events/s" in row else ""))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"max_rate": max_rate, "rows": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
