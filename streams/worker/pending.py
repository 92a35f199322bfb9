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

from dataclasses import dataclass, field
from typing import Sequence

from streams.worker.keys import due_member, offset_field
from streams.worker.phases import BucketPlan
from streams.worker.store import UNCHANGED, BucketReadResult, BucketWrite, DueUser, StateWrite

__all__ = ["PendingWrites", "pending_writes", "overlay_reads"]


@dataclass(slots=True, eq=False)
class PendingWrites:
    """One cycle's writes as Redis will hold them once applied: user records by user id (a user
    lives in one bucket) with their bucket, and the moved offsets by (bucket, offset field)."""

    users: dict[str, tuple[int, StateWrite]] = field(default_factory=dict)
    offsets: dict[tuple[int, str], str] = field(default_factory=dict)


def pending_writes(writes: Sequence[BucketWrite]) -> PendingWrites:
    """Index one cycle's bucket writes for ``overlay_reads``."""
    out = PendingWrites()
    users, offsets = out.users, out.offsets
    for w in writes:
        b = w.bucket
        for fld, _, new in w.parts:
            if new:
                offsets[(b, fld)] = new
        for sw in w.states:
            users[sw.user_id] = (b, sw)
    return out


@dataclass(slots=True)
class _User:
    """A user as the pending writes leave it: ``due`` None = its due entry as Redis holds it."""

    user_id: str
    bucket: int
    group: int
    blob: bytes | None
    due_field: str
    due: int | None


def _lookup(pending: Sequence[PendingWrites], uid: str) -> _User | None:
    """The newest pending record of ``uid``; its due entry from the newest write that set one."""
    found: _User | None = None
    for pw in reversed(pending):
        hit = pw.users.get(uid)
        if hit is None:
            continue
        b, sw = hit
        due = None if sw.due_s == UNCHANGED else sw.due_s
        if found is None:
            found = _User(uid, b, sw.group, sw.blob, sw.due_field, due)
        elif found.due is None and sw.due_field == found.due_field:
            found.due = due
        if found.due is not None:
            break
    return found


def overlay_reads(plans: Sequence[BucketPlan], replies: Sequence[BucketReadResult], pending: Sequence[PendingWrites],
                  topic: str, due_limit: int) -> None:
    """Correct ``replies`` (the read of ``plans``) in place by the writes of ``pending`` (oldest
    first) that may not be applied yet (see the module docstring)."""
    if not pending:
        return
    scheduled: dict[tuple[int, str], list[_User]] | None = None
    for plan, reply in zip(plans, replies):
        b = plan.bucket
        for i, p in enumerate(plan.parts):
            for pw in reversed(pending):
                new = pw.offsets.get((b, offset_field(topic, p)))
                if new is not None:
                    reply.offsets[i] = new
                    break
        for j, (_, uid) in enumerate(plan.users):
            user = _lookup(pending, uid)
            if user is not None:
                reply.blobs[j] = user.blob
        for i, (p, due_max) in enumerate(plan.parts.items()):
            if due_max is None:
                continue
            if scheduled is None:
                scheduled = _scheduled(pending)
            fld = offset_field(topic, p)
            reply.dues[i], reply.next_due[i] = _merge_dues(
                reply.dues[i], reply.next_due[i], due_max, fld, scheduled.get((b, fld), []), pending, due_limit)


def _scheduled(pending: Sequence[PendingWrites]) -> dict[tuple[int, str], list[_User]]:
    """Per (bucket, due field): the users whose pending writes leave a due entry there."""
    out: dict[tuple[int, str], list[_User]] = {}
    seen: set[str] = set()
    for pw in pending:
        for uid in pw.users:
            if uid not in seen:
                seen.add(uid)
                user = _lookup(pending, uid)
                if user is not None and user.due:
                    out.setdefault((user.bucket, user.due_field), []).append(user)
    return out


def _merge_dues(stale: list[DueUser], stale_next: int | None, due_max: int, fld: str, scheduled: list[_User],
                pending: Sequence[PendingWrites], due_limit: int) -> tuple[list[DueUser], int | None]:
    """One swept due index as Redis holds it after the pending writes: (due users in index
    order, a lower bound of the next due second after ``due_max``; 0 when the read was cut)."""
    out: dict[str, DueUser] = {}
    for d in stale:
        user = _lookup(pending, d.user_id)
        if user is None:
            out[d.user_id] = d
        elif user.due is None or user.due_field != fld:  # the writes left this index entry alone
            out[d.user_id] = DueUser(d.group, d.user_id, d.due_s, user.blob)
        elif 0 < user.due <= due_max:
            out[d.user_id] = DueUser(user.group, d.user_id, user.due, user.blob)
    nxt = stale_next
    for user in scheduled:  # entries the writes added or moved (due > 0)
        due = user.due or 0
        if due > due_max:
            nxt = due if nxt is None else min(nxt, due)
        elif user.user_id not in out:
            out[user.user_id] = DueUser(user.group, user.user_id, due, user.blob)
    if len(stale) >= due_limit:
        nxt = 0  # the read was cut at due_limit: more may be due, sweep again next cycle
    dues = sorted(out.values(), key=lambda d: (d.due_s, due_member(d.group, d.user_id).encode("utf-8", "surrogatepass")))
    return dues, nxt
