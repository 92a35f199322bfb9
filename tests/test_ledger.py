"""The Redis-rollback ledger (streams/worker/ledger.py): what a cheaper check must still see.

Why: the ledger's check runs for every bucket x partition a cycle reads (~500 fields a cycle,
whatever its size), so skipping buckets is tempting; a skip keyed on what the *last read* found
(rather than on what the ledger holds) misses the very loss the ledger is there for.
"""

from __future__ import annotations

from streams.worker.ledger import WriteLedger


def test_a_read_finding_what_the_last_read_found_after_an_acknowledged_write_is_a_rollback() -> None:
    """What a shortcut keyed on the last read (not on the ledger) would miss: the write of bucket 3
    in between was acknowledged, so finding the offsets from before it again means Redis lost it."""
    ledger = WriteLedger()
    assert ledger.read(3, ["ev:1", "ev:2"], ["5", "4"], ["w1:1", "w1:1"], ledger.seq) is None
    ledger.wrote(3, [("ev:1", "5", "9"), ("ev:2", "4", "")], "w1:2")
    lost = ledger.read(3, ["ev:1", "ev:2"], ["5", "4"], ["w1:1", "w1:1"], ledger.seq)
    assert lost is not None and lost.found == "ev:1 at 5 (token w1:1)", lost
