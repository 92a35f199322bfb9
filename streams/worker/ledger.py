"""What this worker last wrote to each bucket, to notice a Redis that went back in time.

Why: the write fence (``lua/fence.lua``) compares a bucket's offsets with what the *same cycle*
read, so it protects against other workers, not against Redis itself losing acknowledged writes:
a crash with AOF ``everysec`` (up to a second of writes gone), a failover to a replica that was
behind. Redis then holds, consistently, older states *and* older offsets; the worker kept its
Kafka position, so the records between the stored offsets and that position were never applied
again (QA5 H1: no error, users short of events for good).

Offsets of a partition in a bucket only move forward, whoever owns the partition
(``phases._offset_parts`` writes a new offset only where it moves forward); and a write's token
``"<worker id>:<cycle>"`` is replaced only by a later write. So, while this worker owns p, a read
that finds p's offset in a bucket *below* the one this worker wrote there and Redis acknowledged,
or this worker's token of an *earlier* cycle (or none) where its later write was acknowledged,
can only mean that Redis lost those writes. Another worker's token with an offset at least ours
is a new owner (the fence refuses our write then), not a loss.

Only writes acknowledged before a read was sent can be judged by it (``seq``): a read that went
out while a write was in flight may be served before it.
"""

from __future__ import annotations

import functools
from typing import Any, Container, Iterable, Mapping, NamedTuple, Sequence

__all__ = ["StoreRolledBack", "WriteLedger"]


class StoreRolledBack(Exception):
    """Redis holds an older offset or token than a write of this worker it acknowledged: it lost
    writes (crash with AOF everysec, failover to a replica behind). The worker resumes its
    partitions from the progress Redis holds now (``StreamConsumer._rewind_store``)."""

    def __init__(self, where: str, found: str, wrote: str, partition: int | None = None) -> None:
        super().__init__(f"{where} holds {found}, but this worker wrote {wrote} there and Redis acknowledged it")
        self.where, self.found, self.wrote = where, found, wrote
        self.partition = partition  # the partition whose offsets went back (the consumer asks: restarted by another worker?)


@functools.lru_cache(maxsize=65536)
def _partition(field: str) -> int:
    """The partition of an offset field ``"<topic>:<p>"`` or ``"acct|<topic>:<p>"``."""
    return int(field.rsplit(":", 1)[1])


def _older_token(found: str, wrote: str) -> bool:
    """``found`` is an earlier token of ``wrote``'s worker, or none: what a lost write leaves.

    >>> _older_token("w1:7", "w1:9"), _older_token("", "w1:9"), _older_token("w1:9", "w1:9")
    (True, True, False)
    >>> _older_token("w2:70", "w1:9"), _older_token("w1:10", "w1:9")
    (False, False)
    """
    if found == wrote:
        return False
    if not found:
        return True
    worker, _, cycle = found.rpartition(":")
    mine, _, my_cycle = wrote.rpartition(":")
    return worker == mine and cycle.isdigit() and my_cycle.isdigit() and int(cycle) < int(my_cycle)


class _Write(NamedTuple):
    bucket: int
    parts: Sequence[tuple[str, str, str]]


class _Read(NamedTuple):
    bucket: int
    parts: Sequence[str]


class _Found(NamedTuple):
    offsets: Sequence[str]
    tokens: Sequence[str]


class _AsIs(dict):  # type: ignore[type-arg]
    """Each field its own name: ``check``'s reads name their fields already."""

    def __missing__(self, field: str) -> str:
        return field


_AS_IS = _AsIs()


class WriteLedger:
    """Per owned partition p and bucket: the offset field's value and token after this worker's
    last acknowledged write there, or as its last read found them if later. Forgotten when p is
    revoked, (re)assigned or restarted.

    Cost: every bucket x partition a cycle reads is checked and every one it writes recorded
    (~170 of each on 400-record cycles, ~510 at 10k), whatever the cycle's size: one loop over the
    cycle's reads (``check_reads``) and one over its writes (``wrote_all``), no call or list a
    bucket, 0.96M instructions a 400-record cycle (1.14M as a call a bucket), ~4% of the shell and
    step there, ~0.5% at 10k (``benchmarks/shell_callgrind.py``, phase "ledger"). Not skipped per
    bucket: a read finding what the *last read* found is exactly what a lost write in between
    leaves (``tests/test_ledger.py``); a skip made safe (only while the ledger did not change for
    the bucket) would skip under 1% of the reads there, since a write comes between nearly every
    two reads of a bucket. A whole-bucket dict compare in C measured slower than the loop.

    >>> ledger = WriteLedger()
    >>> seq = ledger.seq
    >>> ledger.wrote(3, [("ev:1", "5", "9"), ("ev:2", "4", "")], "w1:2")
    >>> ledger.read(3, ["ev:1"], ["5"], ["w1:1"], seq) is None  # read sent before the write's ack
    True
    >>> seq = ledger.seq
    >>> ledger.read(3, ["ev:1", "ev:2"], ["9", "4"], ["w1:2", "w1:2"], seq) is None
    True
    >>> seq = ledger.seq
    >>> ledger.read(3, ["ev:1", "ev:2"], ["12", "4"], ["w2:5", "w1:2"], seq) is None  # a new owner wrote on
    True
    >>> str(ledger.read(3, ["ev:1"], ["9"], ["w1:2"], ledger.seq))  # below what the last read found
    'bucket 3 holds ev:1 at 9 (token w1:2), but this worker wrote 12 (token w2:5) there and Redis acknowledged it'
    >>> ledger.read(3, ["ev:2"], ["4"], ["w1:1"], seq).found  # a write of due reviews alone (no offset moved) lost
    'ev:2 at 4 (token w1:1)'
    >>> ledger.forget(1); ledger.read(3, ["ev:1"], ["5"], ["w1:1"], seq) is None
    True
    """

    def __init__(self) -> None:
        # bucket -> field -> (value as stored: offset text, "" none; token; ``seq`` when recorded).
        # Text, not numbers: a read finding exactly what the ledger holds (the common case) costs
        # two string comparisons, no parsing.
        self._last: dict[int, dict[str, tuple[str, str, int]]] = {}
        self.seq = 0  # acknowledged writes and reads recorded so far

    def wrote(self, bucket: int, parts: Sequence[tuple[str, str, str]], token: str) -> None:
        """A write of ``bucket`` with ``parts`` ``(field, expected as read, new or "")`` applied
        (Redis acknowledged it): the field now holds ``new`` (or, unmoved, what was read)."""
        self.wrote_all([_Write(bucket, parts)], (), token)

    def wrote_all(self, writes: Iterable[Any], refused: Container[int], token: str) -> None:
        """:meth:`wrote` of each of ``writes`` (``bucket``, ``parts``: ``BucketWrite``) whose
        bucket is not ``refused`` (fenced), with their token. One loop, no call a bucket: it runs
        for every bucket and partition a cycle writes."""
        ledger = self._last
        for w in writes:
            bucket = w.bucket
            if bucket in refused:
                continue
            self.seq += 1
            seq = self.seq
            last = ledger.get(bucket)
            if last is None:
                last = ledger[bucket] = {}
            for field, expected, new in w.parts:
                last[field] = (new or expected, token, seq)

    def read(self, bucket: int, fields: Sequence[str], offsets: Sequence[str], tokens: Sequence[str],
             seq: int) -> StoreRolledBack | None:
        """The loss a read of ``bucket`` (``fields`` with the ``offsets`` and ``tokens`` found,
        sent when the ledger's ``seq`` was ``seq``) shows, or None; then what it found where it is
        later than the ledger holds (Redis must keep that too, whoever wrote it: a bucket this
        worker only read, written before it owned the partition)."""
        try:
            self.check(bucket, fields, offsets, tokens, seq)
        except StoreRolledBack as lost:
            return lost
        return None

    def check(self, bucket: int, fields: Sequence[str], offsets: Sequence[str], tokens: Sequence[str], seq: int) -> None:
        """:meth:`read`, raising the loss it shows: what every read of the worker does with it."""
        self.check_reads([_Read(bucket, fields)], [_Found(offsets, tokens)], _AS_IS, seq)

    def check_reads(self, plans: Iterable[Any], replies: Iterable[Any], names: Mapping[Any, str], seq: int) -> None:
        """:meth:`check` of each bucket read of a cycle, in order: ``plans`` (``bucket``, ``parts``:
        the partitions read, as ``BucketPlan``) with their ``replies`` (``offsets``, ``tokens``
        found, as ``BucketReadResult``); ``names``: each partition's offset field
        (``keys.OffsetFields``). One loop, no call or list a bucket: it runs for every bucket and
        partition a cycle reads (~170 on 400-record cycles), and a field found as the ledger
        holds it costs two lookups and two string comparisons."""
        ledger = self._last
        for plan, reply in zip(plans, replies):
            self.seq += 1
            now = self.seq
            bucket = plan.bucket
            last_of = ledger.get(bucket)
            if last_of is None:
                last_of = ledger[bucket] = {}
            parts, offsets, tokens = plan.parts, reply.offsets, reply.tokens
            n = len(parts)
            if len(offsets) != n or len(tokens) != n:  # a short reply: what is missing reads as none
                offsets = [*offsets[:n], *[""] * (n - len(offsets))]
                tokens = [*tokens[:n], *[""] * (n - len(tokens))]
            for p, raw, token in zip(parts, offsets, tokens):
                field = names[p]
                last = last_of.get(field)
                if last is None:
                    last_of[field] = (raw, token, now)
                    continue
                was = last[0]
                if raw == was and token == last[1]:
                    continue
                if len(raw) == len(was) and raw.isascii() and was.isascii() and raw.isdigit() and was.isdigit():
                    later = (raw > was) - (raw < was)  # ASCII digits of one length: text order is number order
                else:
                    offset, had = int(raw) if raw else -1, int(was) if was else -1
                    later = (offset > had) - (offset < had)
                if last[2] <= seq and (later < 0 or (later == 0 and _older_token(token, last[1]))):
                    raise StoreRolledBack(f"bucket {bucket}", f"{field} at {int(raw) if raw else -1} (token {token or 'none'})",
                                          f"{int(was) if was else -1} (token {last[1]})", _partition(field))
                if later > 0 or (later == 0 and not _older_token(token, last[1])):
                    last_of[field] = (raw, token, now)

    def watched(self) -> dict[int, list[str]]:
        """Per bucket, the offset fields the ledger holds (owned partitions only: ``forget``): what
        an idle worker reads again once a second (``Pipeline.look``) and hands to :meth:`check_found`."""
        return {bucket: list(last) for bucket, last in self._last.items() if last}

    def check_found(self, watched: Mapping[int, Sequence[str]],
                    found: Mapping[int, tuple[Sequence[str], Sequence[str]]], seq: int) -> None:
        """:meth:`check` of each bucket of ``watched`` with the ``(offsets, tokens)`` ``found`` there
        by a read sent when the ledger's ``seq`` was ``seq``: the same judgement as a cycle's reads."""
        buckets = [b for b in watched if b in found]
        self.check_reads([_Read(b, watched[b]) for b in buckets], [_Found(*found[b]) for b in buckets], _AS_IS, seq)

    def forget(self, partition: int) -> None:
        """``partition`` is no longer owned, or starts again from what Redis holds."""
        for last in self._last.values():
            for field in [f for f in last if _partition(f) == partition]:
                del last[field]
