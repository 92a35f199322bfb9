"""streams.worker.pending without Redis: a read corrected by the writes still in flight is the read
made after them, whether the read came before the writes or after (the overlapped cycle)."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.phases import BucketPlan
from streams.worker.keys import due_member
from streams.worker.pending import moved_dues, overlay_reads, pending_writes
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


def test_the_due_entries_a_write_in_flight_moved_need_not_be_read() -> None:
    # The writes of the first test: a, b, c and e moved (or removed) their entry on the swept index,
    # d left its own alone. A read that leaves the moved ones out (lua/read_batch.lua's skip),
    # before the writes or after them, is corrected to the same read as one that returned them.
    writes = [BucketWrite(3, [(F, "40", "47")], [
        StateWrite(1, "a", b"a1", F, 80, None), StateWrite(1, "b", b"b1", F, 500, None),
        StateWrite(1, "c", None, F, 0, None), StateWrite(2, "d", b"d1", F, UNCHANGED, UNCHANGED),
        StateWrite(1, "e", b"e1", F, 300, None), StateWrite(1, "f", b"f1", "ev:1", 60, None),  # not swept
    ])]
    skip = moved_dues(_plan(), [pending_writes(writes)], "ev")
    assert sorted(zip(skip[1::2], skip[::2])) == [(due_member(1, u), 1) for u in "abce"]
    before = [DueUser(1, "b", 50, b"b0"), DueUser(1, "c", 60, b"c0"), DueUser(2, "d", 70, b"d0")]
    after = [DueUser(2, "d", 70, b"d1"), DueUser(1, "a", 80, b"a1")]
    for offset, blob, dues, nxt in (("40", b"a0", before, 900), ("47", b"a1", after, 300)):  # read before or after
        got = _read(offset, blob, [d for d in dues if due_member(d.group, d.user_id) not in skip[1::2]], nxt)
        assert len(got.dues[0]) == 1, "b and c (before), a (after) left out"
        overlay_reads([_plan()], [got], [pending_writes(writes)], "ev", due_limit=10)
        assert got == _read("47", b"a1", after, 300)
    assert moved_dues(BucketPlan(3, {0: None}, [(1, "a")]), [pending_writes(writes)], "ev") == [], "no index swept"
    assert moved_dues(_plan(), [], "ev") == [], "nothing in flight"


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 9), st.sampled_from(["a", "b", "ab", "b2", "\u00e9", "c"]), st.integers(1, 3)),
                max_size=12, unique_by=lambda r: r[1]),
       st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "\u00e9"]), st.integers(-1, 12), st.booleans()),
                max_size=6, unique_by=lambda r: r[0]))
def test_the_dues_laid_over_stay_in_index_order(stale, written) -> None:  # type: ignore[no-untyped-def]
    """Whatever the writes in flight did to the swept index (nothing, entries dropped, moved within
    the sweep or after it, added), the corrected due list is in the index's order, due second then
    member bytes, as Redis returns it; a read none of them touched comes back as read (the order
    is not made again: docs/SCALING.md, ``overlap``)."""
    key = lambda d: (d.due_s, due_member(d.group, d.user_id).encode("utf-8", "surrogatepass"))  # noqa: E731
    dues = sorted((DueUser(g, uid, s, b"old") for s, uid, g in stale), key=key)  # as the read script returns them
    writes = [BucketWrite(3, [(F, "40", "47")], [StateWrite(1, uid, b"new", F if here else "ev:1",
                                                             UNCHANGED if s < 0 else s, None)
                                                  for uid, s, here in written])]
    got = _read("40", b"a0", list(dues), None)
    overlay_reads([_plan()], [got], [pending_writes(writes)], "ev", due_limit=100)
    assert got.dues[0] == sorted(got.dues[0], key=key)
    if not written:
        assert got.dues[0] == dues
