"""The overlapped cycle (``pipeline_depth`` 2) against the real broker and Redis: every next read
is forced to reach Redis *before* the previous cycle's write (the write waits at a gate until the
next cycle is scored), and still the states, indexes, stats and alerts are the serial worker's;
a fenced write abandons the cycles built on it; a crash with a cycle in flight replays exactly.

No timing: the interleavings are forced by gates, not by sleeps."""

from __future__ import annotations

import asyncio
import gc
import collections
import itertools
from typing import Any, Awaitable, Callable, Sequence

import pytest
import redis as redis_lib

from models.events import Event
from streams.settings import Settings
from streams.worker import pipeline as pipeline_module
from streams.worker.pipeline import CycleAbandoned, Flight, Pipeline
from streams.worker.topics import ensure_topics
from tests.harness import dump_state, read_progress
from tests.test_pipeline import WALL_MS, Rec, alert_ids, base_settings, feed, history, records, run  # noqa: F401

pytestmark = pytest.mark.integration

Make = Callable[..., Awaitable[Pipeline]]


def gate_writes(pipeline: Pipeline) -> dict[int, asyncio.Event]:
    """Hold the pipeline's k-th state write (k = 0, 1, ...) until ``gates[k]`` is set."""
    gates: dict[int, asyncio.Event] = collections.defaultdict(asyncio.Event)
    calls = itertools.count()
    write = pipeline.store.write

    async def gated(writes: Any, token: str, *progress: Any) -> Any:
        await gates[next(calls)].wait()
        return await write(writes, token, *progress)

    pipeline.store.write = gated  # type: ignore[method-assign]
    return gates


async def feed_overlapped(pipeline: Pipeline, recs: Sequence[Rec], size: int, hold: int | None = None,
                          depth: int = 2) -> list[Flight]:
    """As test_pipeline.feed, ``depth`` cycles in flight: cycle k's write is released only once cycle
    k+depth-1 has read and scored, so every read comes before the previous depth-1 writes reach Redis.
    ``hold``: once cycle ``hold + 1`` is scored, release cycle ``hold``'s write and return the
    flights in flight, unsettled (cycle ``hold + 1``'s write is never released; depth 2 only)."""
    gates = gate_writes(pipeline)
    reads = pipeline.store.read
    stale = 0

    async def counted(plans: Any) -> Any:
        nonlocal stale
        stale += pipeline.in_flight > 0
        return await reads(plans)

    pipeline.store.read = counted  # type: ignore[method-assign]
    flights: list[Flight] = []
    for k, i in enumerate(range(0, len(recs), size)):
        pipeline.clock.observe_fetch(0, len(recs[i:i + size]), caught_up=False, wall_now_ms=WALL_MS)
        flights.append(await pipeline.submit({0: recs[i:i + size]}, WALL_MS))
        if len(flights) == depth:
            gates[k - depth + 1].set()
            if k - 1 == hold:
                return flights
            await pipeline.settle(flights.pop(0))
    assert stale >= len(recs) // size - 1, "every read but the first came while a write was held"
    for k in range(len(recs) + 1):
        gates[k].set()
    for flight in flights:
        await pipeline.settle(flight)
    pipeline.clock.observe_fetch(0, 0, caught_up=True, wall_now_ms=WALL_MS)
    await pipeline.process({}, WALL_MS)
    return []


def dump_all(redis_url: str, prefix: str) -> dict[str, Any]:
    """Everything a run keeps per bucket (states, due and ranking indexes, stats, histories and
    alert lists), by key without the prefix. Not the bucket offsets: a bucket swept for reviews
    moves its offset to the batch's last one, and a swept index is read when the worker's lower
    bound of its earliest review says so, which may be a cycle later when the cycles overlap."""
    client = redis_lib.Redis.from_url(redis_url)
    out: dict[str, Any] = {}
    try:
        for key in client.scan_iter(match=f"{prefix}:{{*", count=1000):
            name = key.decode()[len(prefix):]
            if name.endswith(":off"):
                continue
            kind = client.type(key)
            if kind == b"hash":
                out[name] = client.hgetall(key)
            elif kind == b"zset":
                out[name] = client.zrange(key, 0, -1, withscores=True)
    finally:
        client.close()
    return out


@pytest.mark.parametrize("depth", [2, 3])
def test_overlapped_cycles_read_stale_and_still_write_what_serial_ones_write(base_settings: Settings, redis_url: str,
                                                                             depth: int) -> None:
    recs = records(history(users=25, days=70))
    settings = base_settings.with_(pipeline_depth=depth)

    async def scenario(make: Make) -> None:
        await feed(await make("serial"), recs, 7)  # same batches, one cycle at a time
        await feed_overlapped(await make("overlap"), recs, 7, depth=depth)

    run(settings, scenario)
    serial, overlap = dump_all(redis_url, "serial"), dump_all(redis_url, "overlap")
    assert len(dump_state(redis_url, "serial")) == 25
    assert any(":due:" in k for k in serial), "reviews are scheduled, or the sweeps prove nothing"
    assert overlap == serial, "same states, due and ranking indexes, stats, histories, alert lists"
    ids = alert_ids(settings)
    assert ids and len(ids) == 2 * len(set(ids)), "each run sent every alert id exactly once"


def test_a_fenced_write_abandons_the_cycles_built_on_it(base_settings: Settings, redis_url: str) -> None:
    events = [Event("bea", 1_767_225_600_000 + i * 86_400_000, "view", f"bea-{i}") for i in range(10)]
    recs = records(events)

    async def scenario(make: Make) -> None:
        rival, racer = await make(), await make()
        gates = gate_writes(racer)
        before = racer.clock.partitions[0].snapshot()
        first = await racer.submit({0: recs[:3]}, WALL_MS)
        second = await racer.submit({0: recs[3:6]}, WALL_MS)  # scored from the first's pending state
        assert racer.in_flight == 2
        await rival.process({0: recs}, WALL_MS)  # another worker applies the partition meanwhile
        rivals = dump_state(redis_url)
        gates[0].set()
        gates[1].set()
        with pytest.raises(CycleAbandoned) as info:
            await racer.settle(first)
        assert {f.actual for f in info.value.fenced} == {"9"}
        assert racer.in_flight == 0 and second.done and second.task is not None
        assert second.task.cancelled() or isinstance(second.task.exception(), CycleAbandoned)
        assert racer.clock.partitions[0].snapshot() == before, "clocks as before the first abandoned cycle"
        assert dump_state(redis_url) == rivals, "nothing of the abandoned cycles was written"
        assert read_progress(redis_url, base_settings.topic_events) == {0: 9}

    run(base_settings, scenario)


def test_a_crash_with_cycles_in_flight_replays_to_the_serial_result(base_settings: Settings, redis_url: str,
                                                                       unique_name: str) -> None:
    """The worker dies after cycle 5's state write but before its progress, with cycle 6 scored
    and its alerts sent: a new worker resumes from cycle 4's progress (the bucket offsets skip
    cycle 5's events) and ends with the serial run's states and alert ids."""
    recs = records(history(users=12, days=40))
    size = 9
    clean = base_settings.with_(topic_alerts=f"al-clean-{unique_name}", topic_dlq=f"dlq-clean-{unique_name}")
    ensure_topics(clean)

    async def serial(make: Make) -> None:
        await feed(await make("clean"), recs, size)

    async def crash(make: Make) -> None:
        first = await make("crash")
        progress = first.store.write_progress
        reached, never = asyncio.Event(), asyncio.Event()

        async def write_progress(topic: str, parts: Any, fps: Any = None) -> Any:
            if max(off for off, _ in parts.values()) >= 6 * size - 1:  # cycle 5's: its state write is done
                reached.set()
                await never.wait()  # the crash comes first
            return await progress(topic, parts, fps)

        first.store.write_progress = write_progress  # type: ignore[method-assign]
        write = first.store.write

        async def write_then_crash(writes: Any, token: str, folded: Any = None) -> Any:
            """The progress written with the states (Store.write): cycle 5's states land, its progress never does."""
            if folded is not None and max(off for off, _ in folded.progress.values()) >= 6 * size - 1:
                await write(writes, token)
                reached.set()
                await never.wait()
            return await write(writes, token, folded)

        first.store.write = write_then_crash  # type: ignore[method-assign]
        flights = await feed_overlapped(first, recs, size, hold=5)
        await reached.wait()
        for f in flights:  # the crash: nothing more of the first worker runs
            if f.task is not None:
                f.task.cancel()
        await asyncio.gather(*(f.task for f in flights if f.task is not None), return_exceptions=True)
        done = read_progress(redis_url, base_settings.topic_events, "crash")[0]
        assert done == 5 * size - 1, "cycle 5's progress was never written"
        second = await make("crash")  # resumes from the stored progress
        await feed_overlapped(second, recs[done + 1:], size)

    run(clean, serial)
    run(base_settings, crash)
    assert dump_all(redis_url, "crash") == dump_all(redis_url, "clean")
    assert set(alert_ids(base_settings)) == set(alert_ids(clean)), "no alert missing, none extra (duplicates allowed)"


def test_chunked_reads_write_what_one_read_per_cycle_writes(base_settings: Settings, redis_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bucket read in a chunk of its own (``read_chunks``), each scored while the next one is
    read, the cycles overlapped (each read before the previous write), one chunk read failing once
    (retried): the states, indexes, stats, histories and alert ids of one read per cycle."""
    recs = records(history(users=12, days=40))
    size = 9
    cycles = -(-len(recs) // size)
    settings = base_settings.with_(pipeline_depth=2)

    async def scenario(make: Make) -> None:
        await feed(await make("serial"), recs, size)
        monkeypatch.setattr(pipeline_module, "READ_FIRST_CHUNK_USERS", 1)
        monkeypatch.setattr(pipeline_module, "READ_CHUNK_USERS", 1)
        chunked = await make("chunked")
        reads, calls = chunked.store.read, itertools.count()

        async def flaky(plans: Any) -> Any:
            if next(calls) == 7:
                raise redis_lib.exceptions.ConnectionError("connection lost (test)")
            return await reads(plans)

        chunked.store.read = flaky  # type: ignore[method-assign]
        await feed_overlapped(chunked, recs, size)
        assert next(calls) > cycles + 1, "cycles were read in more than one chunk"

    run(settings, scenario)
    assert dump_all(redis_url, "chunked") == dump_all(redis_url, "serial")
    ids = alert_ids(settings)
    assert ids and len(ids) == 2 * len(set(ids)), "each run sent every alert id exactly once"


def test_a_cycle_given_up_between_two_chunk_reads_is_read_again_whole(base_settings: Settings, redis_url: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A cycle whose second chunk's read fails (its first chunk already scored), with the previous
    cycle's write in flight: the clocks are as before it, the previous cycle still applies, and
    submitting its records again ends with the serial result."""
    recs = records(history(users=12, days=40))
    size = 9
    settings = base_settings.with_(pipeline_depth=2)

    async def scenario(make: Make) -> None:
        await feed(await make("serial"), recs, size)
        monkeypatch.setattr(pipeline_module, "READ_FIRST_CHUNK_USERS", 1)
        monkeypatch.setattr(pipeline_module, "READ_CHUNK_USERS", 1)
        p = await make("chunked")
        reads, state = p.store.read, {"arm": False, "fail": False}

        async def read(plans: Any) -> Any:
            if state["fail"]:
                state["fail"] = False
                raise CycleAbandoned("given up (test)")
            state["fail"], state["arm"] = state["arm"], False  # the cycle's first chunk: fail the next one
            return await reads(plans)

        p.store.read = read  # type: ignore[method-assign]
        flights: list[Flight] = []
        abandoned = 0
        for k, i in enumerate(range(0, len(recs), size)):
            batch = {0: recs[i:i + size]}
            p.clock.observe_fetch(0, len(batch[0]), caught_up=False, wall_now_ms=WALL_MS)
            state["arm"] = k == 4
            before = p.clock.partitions[0].snapshot()
            try:
                flight = await p.submit(batch, WALL_MS)
            except CycleAbandoned:
                abandoned += 1
                assert p.clock.partitions[0].snapshot() == before, "clocks as before the abandoned cycle"
                assert p.in_flight == 1, "the previous cycle is still in flight"
                flight = await p.submit(batch, WALL_MS)
            flights.append(flight)
            if len(flights) == 2:
                await p.settle(flights.pop(0))
        for flight in flights:
            await p.settle(flight)
        p.clock.observe_fetch(0, 0, caught_up=True, wall_now_ms=WALL_MS)
        await p.process({}, WALL_MS)
        assert abandoned == 1, "cycle 4 was read in more than one chunk and given up between them"

    run(settings, scenario)
    assert dump_all(redis_url, "chunked") == dump_all(redis_url, "serial")


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("release_after", [0, 1, 2])
def test_previous_write_lands_between_two_chunk_reads(base_settings: Settings, redis_url: str,
                                                      monkeypatch: pytest.MonkeyPatch, release_after: int, depth: int) -> None:
    """Cycle k-1's write is released, and applied, right after chunk ``release_after`` of cycle k
    was read: the chunks before it read the old state, the later ones the new (mixed)."""
    recs = records(history(users=12, days=40))
    size = 9
    settings = base_settings.with_(pipeline_depth=depth)
    seen = {"mixed": 0}

    async def scenario(make: Make) -> None:
        await feed(await make("serial"), recs, size)
        monkeypatch.setattr(pipeline_module, "READ_FIRST_CHUNK_USERS", 1)
        monkeypatch.setattr(pipeline_module, "READ_CHUNK_USERS", 1)
        p = await make("chunked")
        gates = gate_writes(p)
        gated_write = p.store.write
        applied: dict[int, asyncio.Event] = {}
        wcount = itertools.count()

        async def write(writes: Any, token: str, *rest: Any) -> Any:
            k = next(wcount)
            try:
                return await gated_write(writes, token, *rest)
            finally:
                applied.setdefault(k, asyncio.Event()).set()

        p.store.write = write  # type: ignore[method-assign]
        reads = p.store.read
        state = {"cycle": 0, "chunk": 0}

        async def read(plans: Any) -> Any:
            out = await reads(plans)
            k, j = state["cycle"], state["chunk"]
            state["chunk"] += 1
            w = k - depth + 1  # the oldest write still held
            if w >= 0 and j == release_after and not gates[w].is_set():
                gates[w].set()  # that write goes now, before the next chunk's read
                await applied.setdefault(w, asyncio.Event()).wait()
                seen["mixed"] += 1
            return out

        p.store.read = read  # type: ignore[method-assign]
        flights: list[Flight] = []
        for k, i in enumerate(range(0, len(recs), size)):
            state["cycle"], state["chunk"] = k, 0
            p.clock.observe_fetch(0, len(recs[i:i + size]), caught_up=False, wall_now_ms=WALL_MS)
            flights.append(await p.submit({0: recs[i:i + size]}, WALL_MS))
            if len(flights) == depth:
                gates[k - depth + 1].set()
                await p.settle(flights.pop(0))
        for g in range(len(recs) + 1):
            gates[g].set()
        for f in flights:
            await p.settle(f)
        p.clock.observe_fetch(0, 0, caught_up=True, wall_now_ms=WALL_MS)
        await p.process({}, WALL_MS)

    run(settings, scenario)
    assert seen["mixed"] > 5
    assert dump_all(redis_url, "chunked") == dump_all(redis_url, "serial")
    ids = alert_ids(settings)
    assert ids and len(ids) == 2 * len(set(ids))


def test_cancelled_while_scoring_with_the_next_read_failed(base_settings: Settings, redis_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The submitting task is cancelled (service stop after its timeout) while it scores chunk 0
    and the prefetched chunk 1's read already ended with CycleAbandoned (stop requested)."""
    recs = records(history(users=12, days=40))
    size = 9
    settings = base_settings.with_(pipeline_depth=2)
    errors: list[dict[str, Any]] = []

    async def scenario(make: Make) -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        monkeypatch.setattr(pipeline_module, "READ_FIRST_CHUNK_USERS", 1)
        monkeypatch.setattr(pipeline_module, "READ_CHUNK_USERS", 1)
        p = await make("cancel")
        gates = gate_writes(p)
        p.clock.observe_fetch(0, size, caught_up=False, wall_now_ms=WALL_MS)
        first = await p.submit({0: recs[:size]}, WALL_MS)  # in flight: _advance yields between slices
        stopping = {"on": False}
        p.abandon_requested = lambda: stopping["on"]
        reads, advance = p.store.read, pipeline_module.advance_users
        calls = itertools.count()

        async def read(plans: Any) -> Any:
            out = await reads(plans)
            if next(calls) == 0:
                stopping["on"] = True  # stop requested while the first chunk's reply came back
            return out

        def advance_users(*a: Any, **kw: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # the service's cancel lands at _advance's next turn of the loop
            return advance(*a, **kw)

        p.store.read = read  # type: ignore[method-assign]
        monkeypatch.setattr(pipeline_module, "advance_users", advance_users)
        p.clock.observe_fetch(0, size, caught_up=False, wall_now_ms=WALL_MS)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.ensure_future(p.submit({0: recs[size:2 * size]}, WALL_MS))
        gates[0].set()
        await asyncio.wait([first.task])  # type: ignore[list-item]
        for _ in range(3):
            gc.collect()
            await asyncio.sleep(0)

    run(settings, scenario)
    assert not errors, [(c.get("message"), repr(c.get("exception"))) for c in errors]  # review of the overlap merge: it was


def test_a_chunks_alerts_go_before_the_next_chunk_is_scored_and_the_write_waits_for_every_ack(
        base_settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``alerts_per_chunk``: a scored chunk's user alerts are handed to the producer before the next
    chunk is advanced, and the cycle's state write still waits for the acks of every chunk's alerts
    (the first chunk's ack is held at a gate: the tail's own sends acked, the write has not come;
    released, the write follows). Same states and alert ids as the whole cycle's alerts sent at once."""
    recs = records(history(users=12, days=40))
    settings = base_settings.with_(pipeline_depth=2)
    log: list[str] = []

    async def scenario(make: Make) -> None:
        await feed(await make("whole"), recs, len(recs))
        monkeypatch.setattr(pipeline_module, "READ_FIRST_CHUNK_USERS", 1)
        monkeypatch.setattr(pipeline_module, "READ_CHUNK_USERS", 1)
        p = await make("perchunk")
        p.settings = p.settings.with_(alerts_per_chunk=True)
        send, write, advance = p.producer.send_all, p.store.write, pipeline_module.advance_users
        held, others_acked = asyncio.Event(), asyncio.Event()
        count = {"called": 0, "acked": 0}

        async def send_all(topic: str, batch: Any) -> None:
            first = topic == settings.topic_alerts and "send alerts" not in log
            log.append("send alerts" if topic == settings.topic_alerts else f"send {topic}")
            count["called"] += not first
            await send(topic, batch)
            if first:
                await held.wait()
            else:
                count["acked"] += 1
                if count["acked"] == count["called"]:
                    others_acked.set()
            log.append("ack first" if first else "ack")

        async def store_write(writes: Any, token: str, *progress: Any) -> Any:
            log.append("write")
            return await write(writes, token, *progress)

        def advance_users(*a: Any, **kw: Any) -> Any:
            log.append("advance")
            return advance(*a, **kw)

        p.producer.send_all = send_all  # type: ignore[method-assign]
        p.store.write = store_write  # type: ignore[method-assign]
        monkeypatch.setattr(pipeline_module, "advance_users", advance_users)
        p.clock.observe_fetch(0, len(recs), caught_up=False, wall_now_ms=WALL_MS)
        flight = await p.submit({0: recs}, WALL_MS)  # every send of the cycle has been called by now
        if count["called"]:
            await others_acked.wait()
        for _ in range(20):  # the turns a tail that did not wait for the first chunk's ack needs to reach its write
            await asyncio.sleep(0)
        assert "write" not in log and not flight.done, "the state write waits for the first chunk's ack"
        held.set()
        await p.settle(flight)
        p.clock.observe_fetch(0, 0, caught_up=True, wall_now_ms=WALL_MS)
        await p.process({}, WALL_MS)

    run(settings, scenario)
    first_write = log.index("write")
    cycle = log[:first_write]
    assert cycle.count("send alerts") >= 2, "the cycle's alerts went in more than one send (or it proves nothing)"
    last_advance = len(cycle) - 1 - cycle[::-1].index("advance")
    assert cycle.index("send alerts") < last_advance, "a chunk's alerts were sent before a later chunk was advanced"
    assert "ack first" in cycle and cycle.count("ack first") + cycle.count("ack") == sum(
        e.startswith("send") for e in cycle), "every send of the cycle was acked before its write"
    assert dump_all(redis_url, "perchunk") == dump_all(redis_url, "whole")
    ids = alert_ids(settings)
    assert ids and len(ids) == 2 * len(set(ids)), "the same alert ids, each once per run"
