"""Writes still in flight, laid over a later cycle's read (the overlapped cycle, ARCHITECTURE.md).

With ``pipeline_depth`` > 1 the worker reads and scores cycle N+1 while cycle N's alerts wait for
their acks and its state write is on its way. N+1's read may reach Redis before or after N's write
(they travel on two pooled connections, and redis-py orders commands only within one), so what
N+1 read is corrected here to what Redis holds once N's write is applied, whichever came first:

- a user N wrote: its record as N wrote it (None: deleted);
- a bucket's offset of p that N moved: N's new offset (N+1's write is fenced on it, and its replay
  fence skips N's events);
- a swept due index: the due reviews N's writes added, moved or removed, so a user N reviewed is
  not reviewed again from the stale index and a review N scheduled is not missed; the next due
  second stays a lower bound, and an index read cut at ``due_limit`` stays "sweep again".

Laying a write over a read that already saw it changes nothing (each bucket's write is atomic), so
the result is the read a serial worker would have made. Pure: no Redis, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from models.step import due_member, lay_blobs, moved_members, split_dues, writes_by_user
from streams.worker.keys import offset_field
from streams.worker.phases import BucketPlan
from streams.worker.store import UNCHANGED, BucketReadResult, BucketWrite, DueUser, StateWrite

__all__ = ["PendingWrites", "pending_writes", "overlay_reads", "moved_dues"]


@dataclass(slots=True)
class _Layer:
    """One cycle's write of one bucket, indexed: moved offsets by field, records by user id."""

    offsets: dict[str, str]
    users: dict[str, StateWrite]


class PendingWrites:
    """One cycle's writes as Redis will hold them once applied. Indexed per bucket on first use:
    a serial worker never looks (its next read comes after the write), an overlapped one only at
    the buckets its next read touches."""

    __slots__ = ("_writes", "_layers")

    def __init__(self, writes: Sequence[BucketWrite]) -> None:
        self._writes = {w.bucket: w for w in writes}
        self._layers: dict[int, _Layer | None] = {}

    def layer(self, bucket: int) -> _Layer | None:
        """The bucket's write, or None when this cycle did not write it."""
        try:
            return self._layers[bucket]
        except KeyError:
            w = self._writes.get(bucket)
            layer = None if w is None else _Layer({f: new for f, _, new in w.parts if new}, writes_by_user(w.states))
            self._layers[bucket] = layer
            return layer


def pending_writes(writes: Sequence[BucketWrite]) -> PendingWrites:
    """One cycle's bucket writes, for ``overlay_reads``."""
    return PendingWrites(writes)


def overlay_reads(plans: Sequence[BucketPlan], replies: Sequence[BucketReadResult], pending: Sequence[PendingWrites],
                  topic: str, due_limit: int) -> None:
    """Correct ``replies`` (the read of ``plans``) in place by the writes of ``pending`` (oldest
    first) that may not be applied yet (see the module docstring)."""
    if not pending:
        return
    for plan, reply in zip(plans, replies):
        layers = [layer for layer in (pw.layer(plan.bucket) for pw in reversed(pending)) if layer is not None]
        if not layers:
            continue  # newest first from here on
        _lay(plan, reply, layers, topic)
        swept = [(i, offset_field(topic, p), due_max) for i, (p, due_max) in enumerate(plan.parts.items())
                 if due_max is not None]
        if not swept:
            continue
        within, above = _scheduled(layers, {fld: due_max for _, fld, due_max in swept})
        for i, fld, due_max in swept:
            reply.dues[i], reply.next_due[i] = _merge_dues(
                reply.dues[i], reply.next_due[i], due_max, fld, layers, within.get(fld, ()), above.get(fld), due_limit)


def moved_dues(plan: BucketPlan, pending: Sequence[PendingWrites], topic: str) -> list[int | str]:
    """The due entries of ``plan``'s swept indexes that the read need not return: those of the
    users whose write in flight moved or removed their entry on that index (flat ``[part, member,
    ...]``, part 1-based in ``plan.parts``; ``lua/read_batch.lua`` skips them). ``_merge_dues``
    would throw each such entry away: the write's own entry stands for it (``within``, or none).
    Without this the read returned, at depth 2 on the review-heavy workload, 4-11k of them a
    cycle, each read, parsed and made a ``DueUser`` for nothing (docs/SCALING.md)."""
    layers = [layer for layer in (pw.layer(plan.bucket) for pw in reversed(pending)) if layer is not None]
    swept = {offset_field(topic, p): i for i, (p, due_max) in enumerate(plan.parts.items(), 1) if due_max is not None}
    if not layers or not swept:
        return []
    writes = (layers[0].users.values() if len(layers) == 1
              else [_lookup(layers, uid) for uid in {uid for layer in layers for uid in layer.users}])
    return moved_members(writes, swept, UNCHANGED)  # compiled: ~3.5k instructions a write as Python


def _lay(plan: BucketPlan, reply: BucketReadResult, layers: Sequence[_Layer], topic: str) -> None:
    """``overlay_reads``' offsets and records of one bucket: each from the newest layer that
    holds it. Plain loops and ``dict.get`` (usually over one layer, at depth 2), not a generator
    with a membership test and an index per offset (docs/SCALING.md, ``shellspeed``); the records'
    loop compiled (``models.step.lay_blobs``: one lookup per user read, ``overlap``)."""
    offsets = reply.offsets
    for i, p in enumerate(plan.parts):
        fld = offset_field(topic, p)
        for layer in layers:
            new = layer.offsets.get(fld)
            if new is not None:
                offsets[i] = new
                break
    if plan.users:
        lay_blobs(plan.users, reply.blobs, [layer.users for layer in layers])


def _lookup(layers: Sequence[_Layer], uid: str) -> StateWrite | None:
    """The newest pending write of ``uid``, its ``due_s`` that of the newest write that set one
    on the same due index (``UNCHANGED``: the entry as Redis holds it). The write itself where
    that is so (always with one layer, the usual depth 2: no object made per user), else a copy."""
    found: StateWrite | None = None
    for layer in layers:
        sw = layer.users.get(uid)
        if sw is None:
            continue
        if found is None:
            if sw.due_s != UNCHANGED:
                return sw
            found = sw
        elif sw.due_s != UNCHANGED and sw.due_field == found.due_field:
            return StateWrite(found.group, uid, found.blob, found.due_field, sw.due_s, found.risk, found.reach,
                              found.alert_risk)
    return found


def _scheduled(layers: Sequence[_Layer], bounds: dict[str, int]) -> tuple[dict[str, list[StateWrite]], dict[str, int]]:
    """The due entries the pending writes leave (due > 0) on the swept indexes (``bounds``: due
    field -> the second swept up to), split there: per field the writes (:func:`_lookup`'s) due
    within the sweep, and the lowest due second after it (``models.step.split_dues``, compiled).
    One pass, nothing kept for an index not swept nor for an entry after the sweep (before: a
    tuple per user written, each looked at again by its index's merge; the review-heavy
    overlay's largest part, docs/SCALING.md)."""
    if len(layers) == 1:  # the usual case (depth 2): no older write to inherit an unchanged due from
        return split_dues(layers[0].users.values(), bounds)
    return split_dues([_lookup(layers, uid) for uid in {uid for layer in layers for uid in layer.users}], bounds)


def _merge_dues(stale: list[DueUser], stale_next: int | None, due_max: int, fld: str, layers: Sequence[_Layer],
                within: Sequence[StateWrite], above: int | None, due_limit: int) -> tuple[list[DueUser], int | None]:
    """One swept due index as Redis holds it after the pending writes: (due users in index
    order, a lower bound of the next due second after ``due_max``; 0 when the read was cut).
    ``within``, ``above``: :func:`_scheduled`'s for this index."""
    out: dict[str, DueUser] = {}
    moved = False  # an entry of the read given another due second, or one added: the order to make again
    for d in stale:
        sw = _lookup(layers, d.user_id)
        if sw is None:
            out[d.user_id] = d
            continue
        due = sw.due_s
        if due == UNCHANGED or sw.due_field != fld:  # the writes left this index entry alone
            out[d.user_id] = DueUser(d.group, d.user_id, d.due_s, sw.blob)
        elif 0 < due <= due_max:
            out[d.user_id] = DueUser(sw.group, d.user_id, due, sw.blob)
            moved = True
    nxt = stale_next if above is None or (stale_next is not None and stale_next <= above) else above
    for sw in within:  # entries the writes added or moved into the sweep
        if sw.user_id not in out:
            out[sw.user_id] = DueUser(sw.group, sw.user_id, sw.due_s, sw.blob)
            moved = True
    if len(stale) >= due_limit:
        nxt = 0  # the read was cut at due_limit: more may be due, sweep again next cycle
    if len(out) < 2 or not moved:
        # No order to make: one entry, or the read's own (Redis's: due second, then member bytes, the
        # key below, due seconds being whole) less the entries dropped, as a serial worker takes it.
        # Sorting that again was ~7k instructions a due user at depth 2 (docs/SCALING.md, ``overlap``).
        return list(out.values()), nxt
    dues = sorted(out.values(), key=lambda d: (d.due_s, due_member(d.group, d.user_id).encode("utf-8", "surrogatepass")))
    return dues, nxt
