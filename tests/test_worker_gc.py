"""The worker's collector tuning (``streams.worker.service._tune_gc``) against the objects its
cycles keep alive: a young pass walks every tracked object made since the last one and still
alive, and a cycle's records, events and states stay alive until it is applied, so a young
generation smaller than that walked them all, every cycle (docs/SCALING.md, "Levers")."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from benchmarks.cycle import PARTITIONS, start_pipeline
from benchmarks.review_cycle import _batches
from benchmarks.run import make_events
from streams.settings import Settings
from streams.worker.service import _tune_gc


def _young_passes_in_cycles(bootstrap: str, redis_url: str, cycles: int) -> int:
    """Generation-0 passes while ``Pipeline.process`` runs ``cycles`` review-heavy cycles of the
    default size, the collector tuned as the worker tunes it."""
    size = Settings().batch_max_records
    batches = _batches(make_events(cycles * size, size), size)
    passes = [0]
    counting = [False]

    def count(phase: str, info: dict[str, Any]) -> None:
        if counting[0] and phase == "start" and info["generation"] == 0:
            passes[0] += 1

    async def run() -> None:
        store, sink, pipeline = await start_pipeline(bootstrap, redis_url, "gc-young")
        now = int(time.time() * 1000)
        for p in range(PARTITIONS):
            pipeline.assign(p, None, now)
        try:
            for k, batch in enumerate(batches):
                for p in range(PARTITIONS):
                    pipeline.clock.observe_fetch(p, len(batch.get(p, ())), k == len(batches) - 1, now)
                counting[0] = True
                try:
                    await pipeline.process(batch, now)
                finally:
                    counting[0] = False
        finally:
            await sink.stop()
            await store.close()

    thresholds = gc.get_threshold()
    _tune_gc()
    gc.callbacks.append(count)
    try:
        asyncio.run(run())
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return passes[0]


def test_cycles_of_the_default_size_run_no_young_collection(kafka_bootstrap: str, redis_url: str) -> None:
    # Three 10k-record cycles, each user's first events then reviews of stored states: at the
    # old threshold (50,000) the collector ran 3 young passes here, walking the cycles' live objects.
    assert _young_passes_in_cycles(kafka_bootstrap, redis_url, cycles=3) == 0


def test_the_young_generation_scales_with_the_records_a_worker_keeps_in_flight() -> None:
    thresholds = gc.get_threshold()
    try:
        _tune_gc(10_000, 2)
        default = gc.get_threshold()
        _tune_gc(40_000, 3)
        larger = gc.get_threshold()
        _tune_gc(100, 1)
        small = gc.get_threshold()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert default == (1_000_000, 20, 100)
    assert larger[0] == 6 * default[0]
    assert small[0] == 50_000  # never below the young generation the worker had before
