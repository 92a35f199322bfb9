"""streams.worker.pending without Redis: a read corrected by the writes still in flight is the read
made after them, whether the read came before the writes or after (the overlapped cycle)."""

from __future__ import annotations

import copy

from streams.worker.phases import BucketPlan
from streams.worker.pending import overlay_reads, pending_writes
from streams.worker.store import UNCHANGED, BucketReadResult, BucketWrite, DueUser, StateWrite

F = "ev:0"  # offset field of partition 0 of topic "ev"


def _plan() -> BucketPlan:
    """Bucket 3: users a (events) and z (events, never written), partition 0 swept up to second 100."""
    return BucketPlan(3, {0: 100}, [(1, "a"), (2, "z")])


def _read(offset: str, a: bytes | None, dues: list[DueUser], nxt: int | None) -> BucketReadResult:
    return BucketReadResult([offset], [a, b"z0"], [dues], [nxt], "inc")


def test_a_stale_read_becomes_the_read_after_the_pending_writes() -> None:
    # Redis before: offset 40; due: b at 50 (reviewed by the pending cycle: next at 500),
    # c at 60 (expired), d at 70 (untouched, its record rewritten with the due as stored); a due at 900.
    before = _read("40", b"a0", [DueUser(1, "b", 50, b"b0"), DueUser(1, "c", 60, b"c0"), DueUser(2, "d", 70, b"d0")], 900)
    writes = [BucketWrite(3, [(F, "40", "47")], [
        StateWrite(1, "a", b"a1", F, 80, None),  # a is now due at 80: in this sweep
        StateWrite(1, "b", b"b1", F, 500, None),
        StateWrite(1, "c", None, F, 0, None),
        StateWrite(2, "d", b"d1", F, UNCHANGED, UNCHANGED),
        StateWrite(1, "e", b"e1", F, 300, None),  # a new user due at 300: the next due second now
    ])]
    after = _read("47", b"a1", [DueUser(2, "d", 70, b"d1"), DueUser(1, "a", 80, b"a1")], 300)
    for read in (before, after):  # the read reached Redis before the write, or after it
        got = copy.deepcopy(read)
        overlay_reads([_plan()], [got], [pending_writes(writes)], "ev", due_limit=10)
        assert got == after


def test_an_index_read_cut_at_the_limit_is_swept_again_and_unchanged_dues_come_from_older_writes() -> None:
    older = [BucketWrite(3, [(F, "40", "47")], [StateWrite(1, "a", b"a1", F, 90, None)])]
    newer = [BucketWrite(3, [(F, "47", "")], [StateWrite(1, "a", b"a2", F, UNCHANGED, None)])]
    stale = _read("40", b"a0", [DueUser(2, "d", 70, b"d0")], 95)
    overlay_reads([_plan()], [stale], [pending_writes(older), pending_writes(newer)], "ev", due_limit=1)
    assert stale.offsets == ["47"] and stale.blobs == [b"a2", b"z0"]
    assert stale.dues == [[DueUser(2, "d", 70, b"d0"), DueUser(1, "a", 90, b"a2")]]
    assert stale.next_due == [0], "the read returned due_limit entries: more may be due"
