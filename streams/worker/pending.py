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

from streams.worker.keys import due_member, offset_field
from streams.worker.phases import BucketPlan
from streams.worker.store import UNCHANGED, BucketReadResult, BucketWrite, DueUser, StateWrite

__all__ = ["PendingWrites", "pending_writes", "overlay_reads"]


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
            layer = None if w is None else _Layer({f: new for f, _, new in w.parts if new},
                                                  {sw.user_id: sw for sw in w.states})
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
        scheduled: dict[str, list[tuple[str, int, int, bytes | None]]] | None = None
        for i, (p, due_max) in enumerate(plan.parts.items()):
            if due_max is not None:
                scheduled = _scheduled(layers) if scheduled is None else scheduled
                fld = offset_field(topic, p)
                reply.dues[i], reply.next_due[i] = _merge_dues(
                    reply.dues[i], reply.next_due[i], due_max, fld, layers, scheduled.get(fld, []), due_limit)


def _lay(plan: BucketPlan, reply: BucketReadResult, layers: Sequence[_Layer], topic: str) -> None:
    """``overlay_reads``' offsets and records of one bucket: each from the newest layer that
    holds it. Plain loops and ``dict.get`` (usually over one layer, at depth 2), not a generator
    with a membership test and an index per offset (docs/SCALING.md, ``shellspeed``)."""
    offsets, blobs = reply.offsets, reply.blobs
    for i, p in enumerate(plan.parts):
        fld = offset_field(topic, p)
        for layer in layers:
            new = layer.offsets.get(fld)
            if new is not None:
                offsets[i] = new
                break
    for j, (_, uid) in enumerate(plan.users):
        for layer in layers:
            sw = layer.users.get(uid)
            if sw is not None:
                blobs[j] = sw.blob
                break


@dataclass(slots=True)
class _User:
    """A user as the pending writes leave it: ``due`` None = its due entry as Redis holds it."""

    user_id: str
    group: int
    blob: bytes | None
    due_field: str
    due: int | None


def _lookup(layers: Sequence[_Layer], uid: str) -> _User | None:
    """The newest pending record of ``uid``; its due entry from the newest write that set one."""
    found: _User | None = None
    for layer in layers:
        sw = layer.users.get(uid)
        if sw is None:
            continue
        due = None if sw.due_s == UNCHANGED else sw.due_s
        if found is None:
            found = _User(uid, sw.group, sw.blob, sw.due_field, due)
        elif found.due is None and sw.due_field == found.due_field:
            found.due = due
        if found.due is not None:
            break
    return found


def _scheduled(layers: Sequence[_Layer]) -> dict[str, list[tuple[str, int, int, bytes | None]]]:
    """Per due field: ``(user id, group, due second, record)`` of the users whose pending writes
    leave a due entry there (due > 0)."""
    out: dict[str, list[tuple[str, int, int, bytes | None]]] = {}
    if len(layers) == 1:  # the usual case (depth 2): no older write to inherit an unchanged due from
        for uid, sw in layers[0].users.items():
            if sw.due_s > 0:
                out.setdefault(sw.due_field, []).append((uid, sw.group, sw.due_s, sw.blob))
        return out
    for uid in {uid for layer in layers for uid in layer.users}:
        user = _lookup(layers, uid)
        if user is not None and user.due:
            out.setdefault(user.due_field, []).append((uid, user.group, user.due, user.blob))
    return out


def _merge_dues(stale: list[DueUser], stale_next: int | None, due_max: int, fld: str, layers: Sequence[_Layer],
                scheduled: Sequence[tuple[str, int, int, bytes | None]], due_limit: int) -> tuple[list[DueUser], int | None]:
    """One swept due index as Redis holds it after the pending writes: (due users in index
    order, a lower bound of the next due second after ``due_max``; 0 when the read was cut)."""
    out: dict[str, DueUser] = {}
    for d in stale:
        user = _lookup(layers, d.user_id)
        if user is None:
            out[d.user_id] = d
        elif user.due is None or user.due_field != fld:  # the writes left this index entry alone
            out[d.user_id] = DueUser(d.group, d.user_id, d.due_s, user.blob)
        elif 0 < user.due <= due_max:
            out[d.user_id] = DueUser(user.group, d.user_id, user.due, user.blob)
    nxt = stale_next
    for uid, group, due, blob in scheduled:  # entries the writes added or moved
        if due > due_max:
            if nxt is None or due < nxt:
                nxt = due
        elif uid not in out:
            out[uid] = DueUser(group, uid, due, blob)
    if len(stale) >= due_limit:
        nxt = 0  # the read was cut at due_limit: more may be due, sweep again next cycle
    if len(out) < 2:  # most swept indexes: no order to make (and no key to build)
        return list(out.values()), nxt
    dues = sorted(out.values(), key=lambda d: (d.due_s, due_member(d.group, d.user_id).encode("utf-8", "surrogatepass")))
    return dues, nxt
