"""Instructions of the worker's shell around the compiled step (callgrind), per phase of captured cycles.

Why: on the shared 2-core box a CPU timing of the shell's small phases (decode, plan, overlay,
advance around the step, freeing a cycle's objects) moves more with the neighbours than with a
change; an instruction count does not. ``capture`` runs the e2e1 section's realistic workload
(``simulated_records``, batches of 10k over 8 partitions) through the worker's ``Pipeline`` with
two cycles in flight as the consumer runs them (real valkey and Tansu), and pickles what each
phase of cycles ``--first`` to ``--last`` took in: the records, the partition clocks and router
before the decode, the sweep, each chunk's Redis reply as read and the writes laid over it, and
how the advance was sliced. ``replay`` runs those phases again in one process, the records
unpacked from record batches as the worker's consumer gets them, the garbage collector off (its passes would move
with every allocation saved), and calls each phase through a C function of its own, so
callgrind's ``--toggle-collect`` counts only the phases and ``callgrind_annotate
--inclusive=yes`` splits them:

- fetch: each partition's records unpacked from v2 record batches (``_record_batches``: as the
  producer made them, up to 16 KiB) as the worker's consumer gets them (aiokafka's ``FetchResult``
  in the fetcher's dict of replies, then ``getall``; ``streams.worker.fetch`` where the tree has
  it) -> ``pairwise_next``; the records it hands out are the ones decoded and freed
- decode: ``Decoding`` fed in slices of ``DECODE_SLICE_RECORDS`` -> ``_operator_call``
- plan: ``plan_reads`` -> ``dropwhile_next``
- overlay: ``overlay_reads`` of each chunk -> ``starmap_next``
- advance: ``advance_users`` of each slice -> ``filter_next`` (the compiled step inside it:
  ``CPyPy_step___advance_stored``; the shell is the difference)
- pack: the state write's script arguments (``Store._write_calls``, then ``_bucket_calls`` as on
  one Redis) -> ``takewhile_next``
- send: the cycle's user alerts handed to the producer as the cycle's tail hands them (the headers
  added, ``KafkaSink.send_all``: partitions, one ``send_batch`` per partition) -> ``filterfalse_next``.
  The producer is aiokafka's as ``send_all`` uses it with the broker left out (``_Producer``): its
  partitions, its ``BatchBuilder`` (the accumulator's, same batch size) and the batch built as the
  sender builds it; one event loop turn per cycle. ``replay --digest`` prints, uncounted, a
  digest of the records sent (partition, offset in its batch, key, value, headers; not the
  timestamps) and one of the packed writes: two trees that give the same digests sent and wrote
  the same bytes
- free: dropping the cycle's records, decoded batch, reads and writes -> ``functools_reduce``
- ledger: the Redis-rollback bookkeeping of the captured cycles (``Pipeline._check_rollback`` of
  each chunk's reply, ``Pipeline._record`` of each applied write, in the order the worker ran
  them) -> ``accumulate_next``. Every earlier cycle's are replayed first, uncounted, so the ledger
  holds what the worker's held; a check's ``seq`` is the one the replaying tree's ledger had after
  the same earlier operation as the captured one (trees may count ``seq`` differently).

``.venv/bin/python -m benchmarks.shell_callgrind capture --out /tmp/shell.pkl [--workload review_heavy]``
``PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out --toggle-collect=pairwise_next --toggle-collect=_operator_call
--toggle-collect=dropwhile_next --toggle-collect=starmap_next --toggle-collect=filter_next
--toggle-collect=takewhile_next --toggle-collect=filterfalse_next --toggle-collect=functools_reduce
--toggle-collect=accumulate_next .venv/bin/python -m benchmarks.shell_callgrind replay /tmp/shell.pkl``
``.venv/bin/python -m benchmarks.shell_callgrind phases /tmp/cg.out`` (the table per phase and event).
The same capture replays on any tree whose phases take the same arguments (``PYTHONPATH`` set to it,
this file run by its path from another directory so that the tree's ``streams`` and ``models`` load).
A capture made before ``StateWrite`` was compiled (``stepcost3``) pickled the store's dataclass: it
loads here as this tree's (``_load_chunk``); one made since names ``models.step.StateWrite``, which
an older tree does not have.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import itertools
import operator
import pickle
import re
import subprocess
import sys
import time
from typing import Any

__all__ = ["capture", "replay", "phases"]

#: The C function each phase is called through in the replay (its ``--toggle-collect``).
WRAPPERS = {"fetch": "pairwise_next", "decode": "_operator_call", "plan": "dropwhile_next", "overlay": "starmap_next",
            "advance": "filter_next", "pack": "takewhile_next", "send": "filterfalse_next", "free": "functools_reduce",
            "ledger": "accumulate_next"}
STEP = "CPyPy_step___advance_stored"
#: The step where the shell calls it natively (``models.step.advance_bucket``, ``rh``): without the
#: Python entry's argument parsing and result boxing (~0.6k a call), which are then no cost.
STEP_NATIVE = "CPyDef_step___advance_stored"


def capture(events: int, users: int, batch: int, first: int, last: int, out: str, workload: str = "realistic") -> None:
    """Pickle the phases' inputs of cycles ``first``..``last`` (1-based) of the realistic workload
    (``workload`` "review_heavy": ``make_events``, every event a review)."""
    from streams.local import services

    with services(use_env=False) as svc:
        cycles = asyncio.run(_capture(svc.kafka.address, svc.redis.address, events, users, batch, first, last, workload))
    with open(out, "wb") as f:
        pickle.dump(cycles, f, protocol=pickle.HIGHEST_PROTOCOL)
    n = sum(len(r) for c in cycles for r in c["batch"].values())
    print(f"{len(cycles)} cycles, {n} records -> {out}", file=sys.stderr)


async def _capture(bootstrap: str, redis_url: str, events: int, users: int, size: int, first: int,
                   last: int, workload: str = "realistic") -> list[dict[str, Any]]:
    import redis as redis_lib

    from benchmarks.cycle import PARTITIONS, start_pipeline
    from benchmarks.observe import flush_sync
    from benchmarks.review_cycle import _batches
    from benchmarks.run import make_events, simulated_records
    from streams.worker import pipeline as pm
    from streams.worker.service import _tune_gc

    records = make_events(events, users) if workload == "review_heavy" else simulated_records(events, users)
    batches = _batches(records, size)
    client = redis_lib.Redis.from_url(redis_url)
    flush_sync(client)
    client.close()
    _tune_gc()
    store, sink, pipeline = await start_pipeline(bootstrap, redis_url, "bench-shell")
    cycles: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    real = {"decode": pm.Pipeline._decode, "overlay": pm.overlay_reads, "advance": pm.advance_users,
            "sweep": pm.plan_sweep, "check": pm.Pipeline._check_rollback, "record": pm.Pipeline._record}
    ledger_ops: list[tuple[Any, ...]] = []  # every cycle's: (kind, cycle, args..., ledger seq after it)
    k = 0

    def check(self: Any, plans: Any, replies: Any, seq: int) -> None:
        try:
            real["check"](self, plans, replies, seq)
        finally:
            ledger_ops.append(("check", k, [(p.bucket, dict(p.parts)) for p in plans],
                               [(list(r.offsets), list(r.tokens)) for r in replies], seq, self.ledger.seq))

    def record(self: Any, writes: Any, fenced: Any, token: str) -> None:
        real["record"](self, writes, fenced, token)
        ledger_ops.append(("record", k, [(w.bucket, list(w.parts)) for w in writes], [f.bucket for f in fenced], token,
                           self.ledger.seq))

    async def decode(self: Any, b: Any, wall_now_ms: int) -> Any:
        if cur is not None:
            cur["batch"] = {p: [(r.offset, r.key, r.value, r.timestamp) for r in recs] for p, recs in b.items()}
            cur["before"] = pickle.dumps((self.clock.partitions, self.router, self.settings.max_event_bytes,
                                          self.settings.max_clock_skew_ms, self.topic, wall_now_ms,
                                          bool(self._flights), store.buckets, store.groups, store.due_limit,
                                          self.settings.score_history))
        return await real["decode"](self, b, wall_now_ms)

    def sweep(*args: Any) -> Any:
        got = real["sweep"](*args)
        if cur is not None:
            cur["sweep"] = pickle.dumps(got)
        return got

    def overlay(plans: Any, replies: Any, pending: Any, topic: str, due_limit: int) -> None:
        if cur is not None:
            cur["chunks"].append(pickle.dumps(([p.bucket for p in plans], replies,
                                               [list(pw._writes.values()) for pw in pending])))
        real["overlay"](plans, replies, pending, topic, due_limit)

    alerts: dict[int, int] = {}  # cycle -> user alerts queued (printed: where a workload's alerts are)

    def advance(plans: Any, replies: Any, decoded: Any, until_ms: Any, model: Any, **kw: Any) -> Any:
        if cur is not None:
            cur["slices"].append(len(plans))
            cur["until"] = dict(until_ms)
        got = real["advance"](plans, replies, decoded, until_ms, model, **kw)
        alerts[k] = alerts.get(k, 0) + len(got.alerts)
        return got

    pm.Pipeline._decode, pm.overlay_reads, pm.advance_users, pm.plan_sweep = decode, overlay, advance, sweep  # type: ignore[method-assign]
    pm.Pipeline._check_rollback, pm.Pipeline._record = check, record  # type: ignore[method-assign]
    now = int(time.time() * 1000)
    for p in range(PARTITIONS):
        pipeline.assign(p, None, now)
    flights: list[Any] = []
    try:
        for k, b in enumerate(batches, 1):
            cur = {"chunks": [], "slices": []} if first <= k <= last else None
            for p in range(PARTITIONS):
                pipeline.clock.observe_fetch(p, len(b.get(p, ())), k == len(batches), now)
            flights.append(await pipeline.submit(b, now))
            if cur is not None:
                cycles.append(cur)
            while flights and (len(flights) >= 2 or flights[0].done):  # as the consumer, pipeline_depth 2
                await pipeline.settle(flights.pop(0))
        while flights:
            await pipeline.settle(flights.pop(0))
    finally:
        await sink.stop()
        await store.close()
        gc.unfreeze()
    print("user alerts per cycle: " + " ".join(f"{c}:{n}" for c, n in sorted(alerts.items())), file=sys.stderr)
    if cycles:
        cycles[0]["ledger"] = (first, last, pipeline.topic, ledger_ops)
    return cycles


class _CapturedWrite:
    """A ``StateWrite`` of a capture made while it was the store's Python dataclass (pickled as an
    empty object and its slots, which the compiled ``models.step.StateWrite`` cannot be made from)."""

    __slots__ = ("group", "user_id", "blob", "due_field", "due_s", "risk", "reach", "alert_risk")


class _ChunkUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("streams.worker.store", "StateWrite"):
            return _CapturedWrite
        return super().find_class(module, name)


def _load_chunk(data: bytes) -> Any:
    """A captured chunk (buckets, replies, pending writes) with its writes' states as this tree's
    ``StateWrite`` (uncounted: before the phases run), whichever form the capture pickled."""
    import io

    from streams.worker.store import StateWrite

    chunk = _ChunkUnpickler(io.BytesIO(data)).load()
    for writes in chunk[2]:
        for w in writes:
            w.states[:] = [s if type(s) is not _CapturedWrite else
                           StateWrite(s.group, s.user_id, s.blob, s.due_field, s.due_s, s.risk, s.reach, s.alert_risk)
                           for s in w.states]
    return chunk


def _replay_cycle(c: dict[str, Any], model: Any, decoder_cache: dict[str, Any], wrap: bool = True) -> int:
    """One captured cycle, each phase through its wrapper (``wrap``; else called directly, as the
    warm-up does); returns the records replayed."""
    from streams.worker.codec import Decoder
    from streams.worker.pending import overlay_reads, pending_writes
    from streams.worker.phases import Advanced, CycleResult, Decoding, advance_users, plan_reads
    from streams.worker.pipeline import DECODE_SLICE_RECORDS

    (clocks, router, max_bytes, skew, topic, wall_now_ms, in_flight, buckets, groups, due_limit,
     history) = pickle.loads(c["before"])
    decoder = decoder_cache.setdefault("decoder", Decoder(max_event_bytes=max_bytes, max_clock_skew_ms=skew))
    raw = {p: _record_batches(recs) for p, recs in c["batch"].items()}
    batch: dict[int, list[Any]] = {}
    sweep = pickle.loads(c["sweep"])
    chunks = [_load_chunk(x) for x in c["chunks"]]
    for _, _, pending in chunks:  # each chunk laid over the same writes (as the pipeline takes them once)
        pending[:] = [pending_writes(w) for w in pending]
    # the writes indexed lazily by overlay_reads, as the pipeline's are: one PendingWrites object per cycle
    shared = chunks[0][2] if chunks else []
    for ch in chunks[1:]:
        ch[2][:] = shared
    st: dict[str, Any] = {}

    def fetch(k: int) -> int:
        if k == 0:  # (pairwise asks for two items)
            batch.update(_fetched(raw, topic))
        return k

    def decode() -> None:
        decoding = Decoding(clocks, decoder, wall_now_ms, topic=topic, max_dlq_value_bytes=max_bytes, router=router)
        step = DECODE_SLICE_RECORDS
        for p, records in batch.items():
            for i in range(0, len(records), step):
                decoding.feed(p, records if len(records) <= step else records[i:i + step])
        st["decoded"] = decoding.result()

    def plan(_: object) -> bool:
        st["plans"] = plan_reads(st["decoded"].users, sweep, buckets, groups)
        return False

    by_bucket = {}

    def overlay(k: int) -> None:
        buckets_k, replies, pending = chunks[k]
        overlay_reads([by_bucket[b] for b in buckets_k], replies, pending, topic, due_limit)

    result = CycleResult()

    def advance(k: int) -> bool:
        plans, replies = st["slices"][k]
        st["advanced"].extend(advance_users(plans, replies, st["decoded"], c["until"], model, topic=topic,
                                            due_limit=due_limit, result=result, history=history))
        return False

    def free(_a: object, _b: object) -> None:
        st.clear()
        batch.clear()
        raw.clear()
        chunks.clear()
        by_bucket.clear()

    if wrap:
        list(itertools.pairwise(map(fetch, [0, 1])))
        operator.call(decode)
        list(itertools.dropwhile(plan, [0]))
    else:
        fetch(0)
        decode()
        plan(0)
    by_bucket.update((p.bucket, p) for p in st["plans"])
    if wrap:
        list(itertools.starmap(overlay, [(k,) for k in range(len(chunks))]))
    else:
        for k in range(len(chunks)):
            overlay(k)
    plans = [by_bucket[b] for bs, _, _ in chunks for b in bs]
    replies = [r for _, rs, _ in chunks for r in rs]
    st["slices"], i = [], 0
    for n in c["slices"]:
        st["slices"].append((plans[i:i + n], replies[i:i + n]))
        i += n
    st["advanced"] = Advanced()
    del plans, replies
    if wrap:
        list(filter(advance, range(len(st["slices"]))))
    else:
        for k in range(len(st["slices"])):
            advance(k)
    store = decoder_cache.get("store")
    if store is None:
        from streams.settings import Settings
        from streams.worker.store import Store

        store = decoder_cache["store"] = Store(Settings(), client=object())  # type: ignore[arg-type]  # packs only

    def pack(_: object) -> bool:
        from streams.worker.store import _bucket_calls

        st["packed"] = _bucket_calls(store._write_calls(st["advanced"].writes, "w:1"), packed=True)
        return False

    if wrap:
        list(itertools.takewhile(pack, [0]))
    else:
        pack(0)
    if "packed_digest" in decoder_cache:  # uncounted: the packed writes (states, history, console lists)
        decoder_cache["packed_digest"].update(repr(st["packed"]).encode())
    sink = decoder_cache.get("sink")
    if sink is None:
        sink = decoder_cache["sink"] = _sink()

    def send(_: object) -> bool:
        sink._producer.loop.run_until_complete(sink.send_all("alerts", _with_headers(st["advanced"].alerts)))
        return False

    if wrap:
        list(itertools.filterfalse(send, [0]))
    else:
        send(0)
    n = sum(len(r) for r in c["batch"].values())
    if wrap:
        functools.reduce(free, [0, 0])
    else:
        free(0, 0)
    return n


#: The tail's headers on every user alert (``churnwatch-timing``, ``churnwatch-model``): values of their usual length.
_HEADERS = (b"1764858000000,1764858000012,1764858000041", b"1.0@0123456789abcdef")


def _with_headers(alerts: list[Any]) -> Any:
    """The cycle's user alerts as the tail (``Pipeline._tail``) hands them to ``send_all``: its expression."""
    from streams.worker import pipeline as pm

    timing, model = _HEADERS
    headers = [(pm.TIMING_HEADER, timing), (pm.MODEL_HEADER, model)]
    return [(key, value, headers) for key, value in alerts]


class _Producer:
    """aiokafka's producer as ``KafkaSink.send_all`` uses it, without a broker: the alerts topic's
    8 partitions, the accumulator's ``BatchBuilder`` (the worker's ``max_batch_size``), each batch
    built as the sender builds it and kept (``built``) for the digest."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.built: list[tuple[int, bytes]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(8))

    def create_batch(self) -> Any:
        from aiokafka.producer.message_accumulator import BatchBuilder

        return BatchBuilder(256 * 1024, 0, is_transactional=False)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self.built.append((partition, batch._build()))
        fut = self.loop.create_future()
        fut.set_result(None)
        return fut

    async def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None,
                   partition: int | None = None) -> Any:
        batch = self.create_batch()
        batch.append(timestamp=None, key=key, value=value, headers=headers or [])
        return await self.send_batch(batch, topic, partition=-1 if partition is None else partition)


def _sink() -> Any:
    from streams.settings import Settings
    from streams.worker.consumer import KafkaSink

    sink = KafkaSink(Settings())
    sink._producer = _Producer()  # type: ignore[assignment]
    return sink


def _digest_sent(built: list[tuple[int, bytes]]) -> str:
    """A digest of every record sent: partition, offset in its batch, key, value and headers in order (not the timestamps)."""
    import hashlib

    from aiokafka.record.default_records import DefaultRecordBatch

    h = hashlib.sha256()
    for partition, buf in built:
        for rec in DefaultRecordBatch(bytes(buf)):
            h.update(repr((partition, rec.offset, rec.key, rec.value, list(rec.headers))).encode())
    return h.hexdigest()[:16]


def _record_batches(recs: list[tuple[int, bytes, bytes, int]]) -> bytes:
    """A partition's captured records as a fetch reply holds them: v2 record batches of up to
    16 KiB (aiokafka's producer default), uncompressed, each a run of consecutive offsets."""
    import struct

    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    out, i = [], 0
    while i < len(recs):
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                            producer_epoch=-1, base_sequence=-1, batch_size=16384)
        base, n = recs[i][0], 0
        while i < len(recs) and recs[i][0] == base + n:
            off, key, value, ts = recs[i]
            if builder.append(n, timestamp=ts, key=key, value=value, headers=[]) is None:
                break
            i, n = i + 1, n + 1
        buf = bytearray(builder.build())
        struct.pack_into(">q", buf, 0, base)  # the base offset (outside the CRC, which starts at the attributes)
        out.append(bytes(buf))
    return b"".join(out)


class Assigned:
    """The consumer's assignment as ``FetchResult.check_assignment`` and ``_update_position`` read it
    (also the assignment of tests/test_fetch_lean.py's replies)."""

    active, paused = True, False

    def __init__(self, position: int) -> None:
        self.position = position

    def state_value(self, tp: object) -> "Assigned":
        return self

    def consumed_to(self, offset: int) -> None:
        self.position = offset


#: ``replay --fetch stock``: aiokafka's own ``ConsumerRecord`` path, as a worker before streams/worker/fetch.py.
STOCK_FETCH = False


def _fetched(raw: dict[int, bytes], topic: str) -> dict[int, list[Any]]:
    """Each partition's reply unpacked as the worker's consumer gets it: aiokafka's ``FetchResult``
    stored in the fetcher's dict of replies (the worker's lean one, ``streams.worker.fetch``, where
    this tree has it and ``STOCK_FETCH`` is off), then ``getall``."""
    from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
    from aiokafka.record.memory_records import MemoryRecords
    from aiokafka.structs import TopicPartition

    replies: dict[Any, Any] = {}
    if not STOCK_FETCH:
        try:
            from streams.worker.fetch import _LeanReplies

            replies = _LeanReplies()
        except ImportError:  # a tree before it: aiokafka's ConsumerRecords
            pass
    out = {}
    for p, data in raw.items():
        tp = TopicPartition(topic, p)
        first = int.from_bytes(data[:8], "big")  # the first batch's base offset: the fetch offset
        records = PartitionRecords(tp, MemoryRecords(data), None, first, None, None, True, 0)
        replies[tp] = FetchResult(tp, assignment=Assigned(first), partition_records=records, backoff=0)
        out[p] = replies[tp].getall(10_000)
    return out


def _ledger_steps(captured: tuple[Any, ...], model: Any) -> tuple[list[Any], list[Any]]:
    """The captured rollback bookkeeping as calls on a pipeline of this tree: (those of the cycles
    before the window, those of the window), each a function of no argument run in order."""
    import bisect

    from streams.settings import Settings
    from streams.worker.phases import BucketPlan
    from streams.worker.pipeline import Pipeline
    from streams.worker.store import BucketReadResult, BucketWrite, Fenced

    first, last, topic, ops = captured
    pipeline = Pipeline(Settings(topic_events=topic), object(), object(), model)  # type: ignore[arg-type]  # the ledger alone
    ops = [op for op in ops if op[1] <= last]  # (the capture runs on to the end of the workload)
    seq_then = [op[-1] for op in ops]  # the capturing ledger's seq after each operation
    seq_now: list[int] = []  # this tree's, after the same operation

    def step(i: int, op: tuple[Any, ...]) -> Any:
        kind, _, a, b, c, _ = op
        if kind == "check":
            plans = [BucketPlan(bucket, parts) for bucket, parts in a]
            replies = [BucketReadResult(offsets, [], [], [], "", tokens) for offsets, tokens in b]
            j = bisect.bisect_right(seq_then, c, 0, i) - 1  # the last operation the read was sent after

            def run() -> None:
                pipeline._check_rollback(plans, replies, seq_now[j] if j >= 0 else 0)
                seq_now.append(pipeline.ledger.seq)
        else:
            writes = [BucketWrite(bucket, parts) for bucket, parts in a]
            fenced = [Fenced(bucket, "", "") for bucket in b]

            def run() -> None:
                pipeline._record(writes, fenced, c)
                seq_now.append(pipeline.ledger.seq)
        return run

    steps = [step(i, op) for i, op in enumerate(ops)]
    cut = next((i for i, op in enumerate(ops) if op[1] >= first), len(ops))
    return steps[:cut], steps[cut:]


def replay(path: str, digest: bool = False) -> None:
    """Load a capture and replay each cycle once (the counts are over the wrappers alone);
    ``digest``: then print a digest of the alert records sent (uncounted)."""
    from aiokafka.record.default_records import DefaultRecordBatch

    from models._native import active
    from models.model import load_model

    with open(path, "rb") as f:
        cycles = pickle.load(f)
    model = load_model(None)
    gc.collect()
    gc.disable()
    cache: dict[str, Any] = {}
    # Warm-up, not counted: the first cycle once without the wrappers (modules the phases import
    # on first use, the decoder's type names, caches), so the counts are of steady cycles.
    _replay_cycle(cycles[0], model, cache, wrap=False)
    cache["sink"]._producer.built.clear()  # the warm-up's
    if digest:
        import hashlib

        cache["packed_digest"] = hashlib.sha256()
    records = sum(_replay_cycle(c, model, cache) for c in cycles)
    built = cache["sink"]._producer.built
    print(f"{active()}: {len(cycles)} cycles, {records} records", file=sys.stderr)
    if digest:
        print(f"sent: {len(built)} batches, {sum(len(list(DefaultRecordBatch(bytes(b)))) for _, b in built)} records, "
              f"digest {_digest_sent(built)}; packed writes digest {cache['packed_digest'].hexdigest()[:16]}",
              file=sys.stderr)
    if "ledger" in cycles[0]:
        before, window = _ledger_steps(cycles[0]["ledger"], model)
        for run in before:
            run()
        list(itertools.accumulate([None, *window], lambda _, run: run()))
        print(f"ledger: {len(before)} operations before, {len(window)} counted", file=sys.stderr)


def phases(cg_out: str) -> None:
    """Instructions per record of each phase (inclusive counts of the wrappers), from a callgrind file."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", cg_out], capture_output=True,
                          text=True, check=True).stdout
    counts: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+\S*:(\S+) ", line + " ")
        if m:
            counts.setdefault(m.group(2), int(m.group(1).replace(",", "")))
    for phase, fn in WRAPPERS.items():
        print(f"{phase:8s} {counts.get(fn, 0):>14,}")
    step = counts.get(STEP) or counts.get(STEP_NATIVE, 0)
    print(f"{'step':8s} {step:>14,}  (inside advance{'' if STEP in counts else ', called natively'})")
    print(f"{'shell':8s} {sum(counts.get(fn, 0) for fn in WRAPPERS.values()) - step:>14,}  (all phases less the step)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--events", type=int, default=500_000)
    c.add_argument("--users", type=int, default=100_000)
    c.add_argument("--batch", type=int, default=10_000)
    c.add_argument("--first", type=int, default=21)
    c.add_argument("--last", type=int, default=22)
    c.add_argument("--out", required=True)
    c.add_argument("--workload", choices=("realistic", "review_heavy"), default="realistic")
    r = sub.add_parser("replay")
    r.add_argument("path")
    r.add_argument("--fetch", choices=("worker", "stock"), default="worker",
                   help="stock: records as aiokafka's ConsumerRecords (a worker before streams/worker/fetch.py)")
    r.add_argument("--digest", action="store_true", help="print a digest of the alert records sent")
    a = sub.add_parser("phases")
    a.add_argument("callgrind_out")
    args = parser.parse_args()
    if args.cmd == "capture":
        capture(args.events, args.users, args.batch, args.first, args.last, args.out, args.workload)
    elif args.cmd == "replay":
        global STOCK_FETCH
        STOCK_FETCH = args.fetch == "stock"
        replay(args.path, args.digest)
    else:
        phases(args.callgrind_out)


if __name__ == "__main__":
    main()
