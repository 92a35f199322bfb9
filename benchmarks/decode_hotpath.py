"""CPU per event of the worker's decode phase, in process, on e2e1's events.

What a worker cycle pays before it reads Redis: ``decode_batch`` over fetched batches (parse,
validate, build the events, route check, batch-wide duplicate ids, partition clocks, group by
user), on the realistic workload's records (``benchmarks.run.simulated_records``: the e2e1 topic's
values) as aiokafka ``ConsumerRecord`` objects, split over 8 partitions and cut into batches as
``getmany`` returns them. Also the codec alone: ``Decoder.decode`` per record, and
``Decoder.decode_many`` per partition batch where the tree has it.

CPU time of this process, median of ``--repeat`` runs, with the worker's GC settings; the machine
is shared, so compare trees in interleaved runs: run this file from a tree holding the old code
(its only imports are ``decode_batch``, ``Decoder``, ``PartitionClock``, ``Router`` and the
worker's ``_tune_gc``).
``.venv/bin/python -m benchmarks.decode_hotpath [--repeat 5] [--events 100000] [--batch 2000]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from typing import Callable

from aiokafka.structs import ConsumerRecord

from benchmarks.run import simulated_records
from streams.worker.clock import PartitionClock
from streams.worker.codec import Decoder
from streams.worker.phases import decode_batch
from streams.worker.routing import Router
from streams.worker.service import _tune_gc

__all__ = ["measure"]

_WALL_MS = 1_800_000_000_000  # after every simulated event: nothing is in the future
_PARTITIONS = 8


def _batches(events: int, batch: int) -> list[dict[int, list[ConsumerRecord[bytes, bytes]]]]:
    parts: dict[int, list[ConsumerRecord[bytes, bytes]]] = {}
    for user, value in simulated_records(events, 100_000):
        key = user.encode()
        p = zlib.crc32(key) % _PARTITIONS
        records = parts.setdefault(p, [])
        # stamped at the wall clock, after every event (a backfill published today): an event dated
        # after its record was written is ``future`` (models.intake.ahead_of_record)
        records.append(ConsumerRecord("ev", p, len(records), _WALL_MS, 0, key, value, None, len(key), len(value), []))
    step, out, i = max(1, batch // _PARTITIONS), [], 0
    while any(i < len(r) for r in parts.values()):
        out.append({p: r[i:i + step] for p, r in parts.items() if r[i:i + step]})
        i += step
    return out


def _per_event_us(fn: Callable[[], None], events: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        runs.append((time.process_time() - t0) / events * 1e6)
    return round(statistics.median(runs), 3)


def measure(repeat: int = 5, events: int = 100_000, batch: int = 2_000) -> dict[str, object]:
    batches = _batches(events, batch)
    n = sum(len(r) for b in batches for r in b.values())
    _tune_gc()

    def run_decode_batch() -> None:
        clocks = {p: PartitionClock(3_600_000) for p in range(_PARTITIONS)}
        decoder, router = Decoder(), Router("reroute")
        for b in batches:
            decode_batch(b, clocks, decoder, _WALL_MS, topic="ev", max_dlq_value_bytes=65_536, router=router)

    def run_decode() -> None:
        decode = Decoder().decode
        for b in batches:
            for records in b.values():
                for rec in records:
                    decode(rec.value, _WALL_MS)

    def run_decode_many() -> None:
        decode_many = Decoder().decode_many  # type: ignore[attr-defined]
        for b in batches:
            for records in b.values():
                decode_many([rec.value for rec in records], _WALL_MS)

    out: dict[str, object] = {"events": n, "batches": len(batches), "decode_batch_us": _per_event_us(run_decode_batch, n, repeat),
                              "decode_per_record_us": _per_event_us(run_decode, n, repeat)}
    if hasattr(Decoder, "decode_many"):
        out["decode_many_us"] = _per_event_us(run_decode_many, n, repeat)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median reported)")
    parser.add_argument("--events", type=int, default=100_000, help="first N events of e2e1's workload")
    parser.add_argument("--batch", type=int, default=2_000, help="records per fetched batch, over 8 partitions")
    args = parser.parse_args()
    print(json.dumps(measure(args.repeat, args.events, args.batch), indent=2))


if __name__ == "__main__":
    main()
