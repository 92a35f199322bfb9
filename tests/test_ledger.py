"""The Redis-rollback ledger (streams/worker/ledger.py): the one-loop checks find and record what
the field-by-field rules did, and what a cheaper check must still see.

Why: the ledger's check runs for every bucket x partition a cycle reads (and its record for every
one it writes), whatever the cycle's size, so it is one loop over a cycle's reads
(``check_reads``) and writes (``wrote_all``), offsets of one length compared as text. The property
test runs random writes, reads (a cycle's, and single buckets' as account reads make them) and
forgets through the ledger and through the rules as written before (``_Reference``: one call and
one loop a bucket, offsets as numbers), and asks for the same answer and the same entries after
every step. And skipping buckets is tempting; a skip keyed on what the *last read* found (rather
than on what the ledger holds) misses the very loss the ledger is there for.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, strategies as st

from streams.worker.keys import OffsetFields
from streams.worker.ledger import StoreRolledBack, WriteLedger, _older_token, _partition


class _Reference:
    """The ledger as it was written before the one-loop checks: the rules the tests hold it to."""

    def __init__(self) -> None:
        self.last: dict[int, dict[str, tuple[str, str, int]]] = {}
        self.seq = 0

    def wrote(self, bucket: int, parts: list[tuple[str, str, str]], token: str) -> None:
        self.seq += 1
        last = self.last.setdefault(bucket, {})
        for field, expected, new in parts:
            last[field] = (new or expected, token, self.seq)

    def read(self, bucket: int, fields: list[str], offsets: list[str], tokens: list[str], seq: int) -> tuple[str, int] | None:
        self.seq += 1
        now = self.seq
        last_of = self.last.setdefault(bucket, {})
        for i, field in enumerate(fields):
            raw = offsets[i] if i < len(offsets) else ""
            token = tokens[i] if i < len(tokens) else ""
            last = last_of.get(field)
            if last is None:
                last_of[field] = (raw, token, now)
                continue
            if raw == last[0] and token == last[1]:
                continue
            offset, had = int(raw) if raw else -1, int(last[0]) if last[0] else -1
            if last[2] <= seq and (offset < had or (offset == had and _older_token(token, last[1]))):
                return (f"bucket {bucket} holds {field} at {offset} (token {token or 'none'}), "
                        f"but this worker wrote {had} (token {last[1]}) there and Redis acknowledged it", _partition(field))
            if offset > had or (offset == had and not _older_token(token, last[1])):
                last_of[field] = (raw, token, now)
        return None

    def forget(self, partition: int) -> None:
        for last in self.last.values():
            for field in [f for f in last if _partition(f) == partition]:
                del last[field]


PARTITIONS = st.integers(0, 2)
FIELDS = st.sampled_from(["ev:0", "ev:1", "ev:2", "acct|ev:0"])
OFFSETS = st.sampled_from(["", "3", "5", "9", "10", "12", "100"])
TOKENS = st.sampled_from(["", "w1:1", "w1:2", "w1:3", "w1:10", "w2:5"])
BUCKETS = st.integers(0, 2)
WRITE = st.tuples(BUCKETS, st.lists(st.tuples(FIELDS, OFFSETS, OFFSETS), max_size=4, unique_by=lambda p: p[0]))
WROTE = st.tuples(st.just("wrote"), st.lists(WRITE, max_size=3), st.sets(BUCKETS, max_size=1), TOKENS.filter(bool))
BUCKET_READ = st.tuples(BUCKETS, st.lists(PARTITIONS, max_size=3, unique=True), st.lists(OFFSETS, max_size=3),
                        st.lists(TOKENS, max_size=3), st.booleans())
CYCLE_READ = st.tuples(st.just("cycle"), st.lists(BUCKET_READ, max_size=3), st.integers(0, 3))
FIELD_READ = st.tuples(st.just("read"), BUCKETS, st.lists(FIELDS, max_size=4, unique=True),
                       st.lists(OFFSETS, max_size=4), st.lists(TOKENS, max_size=4), st.integers(0, 3))
FORGET = st.tuples(st.just("forget"), PARTITIONS)


def _whole(values: list[str], n: int, whole: bool, pad: str) -> list[str]:
    """As the worker's replies (a value per field) when ``whole``, else as drawn (short or long)."""
    return (values + [pad] * n)[:n] if whole else values


@given(st.lists(st.one_of(WROTE, CYCLE_READ, CYCLE_READ, FIELD_READ, FORGET), max_size=40))
def test_the_ledger_answers_and_records_as_field_by_field(ops: list[tuple]) -> None:
    ledger, ref, names = WriteLedger(), _Reference(), OffsetFields("ev")
    for op in ops:
        if op[0] == "wrote":
            _, writes, refused, token = op
            ledger.wrote_all([SimpleNamespace(bucket=b, parts=parts) for b, parts in writes], refused, token)
            for b, parts in writes:
                if b not in refused:
                    ref.wrote(b, parts, token)
        elif op[0] == "cycle":
            _, reads, back = op
            seq = max(0, ledger.seq - back)  # the reads sent before the last `back` operations
            reads = [(b, parts, _whole(offs, len(parts), whole, "9"), _whole(toks, len(parts), whole, "w1:3"))
                     for b, parts, offs, toks, whole in reads]
            try:
                ledger.check_reads([SimpleNamespace(bucket=b, parts=dict.fromkeys(parts)) for b, parts, _, _ in reads],
                                   [SimpleNamespace(offsets=offs, tokens=toks) for _, _, offs, toks in reads], names, seq)
                got = None
            except StoreRolledBack as exc:
                got = (str(exc), exc.partition)
            expected = None
            for b, parts, offs, toks in reads:  # bucket after bucket, up to the first loss
                expected = ref.read(b, [f"ev:{p}" for p in parts], offs, toks, seq)
                if expected is not None:
                    break
            assert got == expected, op
        elif op[0] == "read":
            _, bucket, fields, offsets, tokens, back = op
            seq = max(0, ledger.seq - back)
            got = ledger.read(bucket, fields, offsets, tokens, seq)
            assert (None if got is None else (str(got), got.partition)) == ref.read(bucket, fields, offsets, tokens, seq), op
        else:
            ledger.forget(op[1])
            ref.forget(op[1])
        assert ledger.seq == ref.seq
        assert ledger._last == ref.last


def test_a_read_finding_what_the_last_read_found_after_an_acknowledged_write_is_a_rollback() -> None:
    """What a shortcut keyed on the last read (not on the ledger) would miss: the write of bucket 3
    in between was acknowledged, so finding the offsets from before it again means Redis lost it."""
    ledger = WriteLedger()
    assert ledger.read(3, ["ev:1", "ev:2"], ["5", "4"], ["w1:1", "w1:1"], ledger.seq) is None
    ledger.wrote(3, [("ev:1", "5", "9"), ("ev:2", "4", "")], "w1:2")
    lost = ledger.read(3, ["ev:1", "ev:2"], ["5", "4"], ["w1:1", "w1:1"], ledger.seq)
    assert lost is not None and lost.found == "ev:1 at 5 (token w1:1)", lost
