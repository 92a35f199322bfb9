"""Instructions per event of the worker's whole cycle (callgrind), on ``review_cycle``'s workload.

Why: ``shell_callgrind`` and ``step_callgrind`` count the phases they replay (decode, plan, overlay,
advance, pack, send, free, ledger; the step alone); a worker's cycle is more than those: the Redis
client's side of the read and write scripts (redis-py packing the calls, parsing the replies),
the sweep, the metrics, the asyncio turns, the producer's acks, the progress. This runs
``benchmarks.review_cycle``'s cycles through ``Pipeline.process`` in this process (real valkey and
Tansu, as there) and calls cycles ``--first`` to ``--last`` through ``operator.call``, so
callgrind's ``--toggle-collect=_operator_call`` counts exactly those cycles, all of the worker's
work in them. ``--depth 2`` (the default, the worker's ``pipeline_depth``): each cycle submitted
and the older ones settled as the consumer does, so a cycle's read meets the previous cycle's
write in flight (and its tail runs in the next turn: the window counts one tail in, one out);
``--depth 1``: ``Pipeline.process``, one cycle at a time, as ``review_cycle`` runs them (the servers are other processes: not counted). The earlier cycles run with
callgrind's instrumentation off (``--instr-atstart=no``; this switches it on with
``callgrind_control`` one cycle before the first counted), so they cost little.

``PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --toggle-collect=_operator_call
--callgrind-out-file=/tmp/cyc.out .venv/bin/python -m benchmarks.cycle_callgrind --first 11 --last 12``
then ``callgrind_annotate --inclusive=yes /tmp/cyc.out`` (the step, the hand-off, redis-py's
parser, aiokafka's builder, orjson... by their C entry points; the Python of ``streams`` shows as
the interpreter's). It prints the alerts and users of the counted cycles.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import operator
import os
import subprocess
import time
from typing import Any

import redis as redis_lib

from benchmarks.cycle import PARTITIONS, start_pipeline
from benchmarks.observe import flush_sync
from benchmarks.review_cycle import _batches
from benchmarks.run import WORKLOADS, make_events, simulated_records

__all__ = ["run"]


def run(bootstrap: str, redis_url: str, events: int, users: int, batch: int, first: int, last: int,
        workload: str, depth: int = 2) -> dict[str, int]:
    records = simulated_records(events, users) if workload == "realistic" else make_events(events, users)
    batches = _batches(records, batch)[:last]
    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    client.close()
    from streams.worker.service import _tune_gc

    _tune_gc()
    loop = asyncio.new_event_loop()
    store, sink, pipeline = loop.run_until_complete(start_pipeline(bootstrap, redis_url, "bench-cyclecg"))
    now = int(time.time() * 1000)
    for p in range(PARTITIONS):
        pipeline.assign(p, None, now)
    counted = {"events": 0, "alerts": 0, "users": 0}
    flights: list[Any] = []

    async def turn(b: dict[int, list[Any]], k: int) -> list[Any]:
        """Cycle ``k`` submitted, and the cycles settled after it: as the consumer runs them
        (``depth`` in flight; 1: ``Pipeline.process``, one at a time)."""
        for p in range(PARTITIONS):
            pipeline.clock.observe_fetch(p, len(b.get(p, ())), k == len(batches), now)
        if depth == 1:
            return [await pipeline.process(b, now)]
        flights.append(await pipeline.submit(b, now))
        done = []
        while flights and (len(flights) >= depth or flights[0].done):
            done.append(await pipeline.settle(flights.pop(0)))
        return done

    try:
        for k, b in enumerate(batches, start=1):
            if k == first - 1 or (k == first == 1):
                subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(2)  # valgrind polls its command file
            if first <= k <= last:
                results = operator.call(loop.run_until_complete, turn(b, k))
                counted["events"] += sum(map(len, b.values()))
                counted["alerts"] += sum(sum(r.alerts.values()) for r in results)
                counted["users"] += sum(r.users for r in results)
            else:
                loop.run_until_complete(turn(b, k))
        while flights:
            loop.run_until_complete(pipeline.settle(flights.pop(0)))
    finally:
        loop.run_until_complete(sink.stop())
        loop.run_until_complete(store.close())
        loop.close()
        gc.unfreeze()
    return counted


def main() -> None:
    from streams.local import services

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--first", type=int, default=11)
    parser.add_argument("--last", type=int, default=12)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="review_heavy")
    parser.add_argument("--depth", type=int, default=2, help="cycles in flight (the worker's pipeline_depth); 1: serial")
    args = parser.parse_args()
    with services(use_env=False) as svc:
        print(json.dumps(run(svc.kafka.address, svc.redis.address, args.events, args.users, args.batch,
                             args.first, args.last, args.workload, args.depth)))


if __name__ == "__main__":
    main()
