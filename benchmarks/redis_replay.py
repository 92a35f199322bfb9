"""Replay the Redis round trips ``benchmarks.redis_write --capture`` recorded into a fresh valkey
and say what Redis spent on them (``INFO cpu`` before and after, nothing else in between).

Why: on the shared 2-core box a whole run's Redis CPU per event swings by 10-20% with the
neighbours' load; the same calls replayed, two captures alternately and several times, compare
the work Redis does for two versions of the scripts or of the worker's writes much more tightly
(each replay takes seconds, not minutes). Every capture replays into an empty valkey with its own
scripts (the ``lua`` files of the tree that runs this), the buckets marked with the capture's
incarnation so the fenced writes apply.

Its figures compare captures with each other, replayed in the same run, not with the capturing
run's own (a replay sends each round trip without the worker between them).

``python -m benchmarks.redis_replay A.pkl B.pkl [--rounds 5]``: A, B, A, B, ... ; per capture the
Redis CPU us per event of reads, writes and all, each replay's figure and their mean.
"""

from __future__ import annotations

import argparse
import pickle
from typing import Any

import redis as redis_lib

from benchmarks.cycle import redis_cpu
from benchmarks.observe import flush_sync, load_average

__all__ = ["replay"]


def replay(url: str, capture: dict[str, Any], events: int) -> dict[str, float]:
    """One replay of ``capture`` into the (flushed) valkey at ``url``: Redis CPU us per event by op."""
    from streams.worker.store import _script_source  # the scripts of the tree that runs this

    client = redis_lib.Redis.from_url(url)
    try:
        flush_sync(client)
        names = {c[1] for _, cmds in capture["rounds"] for c in cmds if c[0] == "EVALSHA"}
        sha = {name: client.script_load(_script_source(name)) for name in names}
        prefix = capture.get("prefix", "cw")
        for b in range(capture["buckets"]):
            client.hset(f"{prefix}:{{{b}}}:off", "|inc", capture["incarnation"])
        spent: dict[str, float] = {}
        for op, cmds in capture["rounds"]:
            pipe = client.pipeline(transaction=False)
            for c in cmds:
                pipe.execute_command(*((c[0], sha[c[1]], *c[2:]) if c[0] == "EVALSHA" else c))
            c0 = redis_cpu(client)
            pipe.execute()
            spent[op] = spent.get(op, 0.0) + redis_cpu(client) - c0
        return {op: round(1e6 * s / events, 3) for op, s in sorted(spent.items())} | {
            "all": round(1e6 * sum(spent.values()) / events, 3)}
    finally:
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("captures", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--events", type=int, default=500_000, help="events of each capture (per-event figures)")
    args = ap.parse_args()
    from streams.local import start_redis

    loaded = {}
    for path in args.captures:
        with open(path, "rb") as f:
            loaded[path] = pickle.load(f)
    server = start_redis()
    try:
        print(f"load {load_average()}")
        runs: dict[str, list[dict[str, float]]] = {p: [] for p in loaded}
        for _ in range(args.rounds):
            for path, capture in loaded.items():
                runs[path].append(replay(server.address, capture, args.events))
        for path, rows in runs.items():
            ops = rows[0].keys()
            print(path)
            for op in ops:
                vals = [r[op] for r in rows]
                print(f"  {op}: {' / '.join(f'{v:.3f}' for v in vals)}  mean {sum(vals) / len(vals):.3f}")
        print(f"load {load_average()}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
