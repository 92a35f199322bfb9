"""Records whose Kafka key is not their user id: re-routed so that one partition owns each user.

Why: a user's state is advanced by the owner of one partition, under that partition's clock and
offset fence. A producer that sends a null key (round-robin or random partitions) or keys by
something else (event id, session, device) spreads a user over several partitions: two workers
then read-modify-write one user record (updates lost) and reviews run on several clocks. The
worker cannot reorder the past, but it can put every event where its user lives, as Kafka
Streams does with a repartition topic keyed by the new key.

Here the repartition topic is the events topic itself: a mis-keyed record is produced again,
unchanged, keyed by its user id (so the producers' own partitioner, murmur2, puts it in the
user's partition), with a header ``churnwatch-origin: <partition>:<offset>`` naming where it was
first read; the original counts as read and is not applied. Why not a separate topic: partition
p of two topics would need one owner and one clock, which Kafka's group assignment does not
promise. Consumers other than churnwatch that read the events topic must skip records carrying
the header (they are copies).

Re-routing is at-least-once (a crash between producing the copies and recording progress makes
them again), so the owner of the target partition keeps, per origin partition, the highest
origin offset it applied (``cw:reroute:<topic>``, written before the progress) and drops copies at
or below it. Copies keep the original record's value, so an ``event_id`` derived from the
content stays the same.

An origin header is only trusted when it can name a record the worker re-routed: a partition of
the topic and an offset below that partition's log end (and, in the copy's own partition, below
the copy). Anything else (a header a product service or a tool copying the topic with its headers
wrote: ``0:999999999`` would otherwise raise the mark above every real offset of partition 0 and
drop its later copies for good) sends the record to the DLQ as ``bad_origin``
(``Router.origin_problem``). The consumer learns the log ends (``Router.needs_ends``,
``learn_ends``) before a batch whose origins it cannot judge yet: a genuine origin was written
before its copy, so the log end read after fetching the copy is above it. The log end is the
highwater of a fetch reply (``streams.worker.consumer.LogEnds``): Tansu's ListOffsets answers the
last batch's base offset + 1, below the records of that batch.

``CHURNWATCH_MISKEYED=dlq`` sends mis-keyed records to the DLQ (reason ``key_not_user_id``) instead.

Ordering: copies reach the user's partition after the correctly keyed events published at the
same time; events later than the allowed lateness there go to the DLQ as ``late``, as they would
from any producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Iterable, Literal, Mapping, Sequence

__all__ = ["ORIGIN_HEADER", "MALFORMED", "KafkaCopy", "MiskeyedMode", "Routed", "Router", "key_problem", "origin_of"]

ORIGIN_HEADER: Final[str] = "churnwatch-origin"
MiskeyedMode = Literal["reroute", "dlq"]

KafkaCopy = tuple[bytes, bytes | None, list[tuple[str, bytes]]]  # (key, value, headers)

#: ``origin_of`` of a header that is not ``<partition>:<offset>`` (no partition is -1: refused).
MALFORMED: Final[tuple[int, int]] = (-1, -1)


def key_problem(key: bytes | None, user_id: str) -> str | None:
    """Why a record's key is not its user id (``null_key``, ``other_key``), or None when it is.

    >>> key_problem(b"u1", "u1"), key_problem(None, "u1"), key_problem(b"e-17", "u1")
    (None, 'null_key', 'other_key')
    """
    if key is None:
        return "null_key"
    if key == user_id.encode("utf-8", "surrogatepass"):
        return None
    return "other_key"


def origin_of(headers: object) -> tuple[int, int] | None:
    """``(partition, offset)`` from a copy's ``churnwatch-origin`` header, None without one,
    ``MALFORMED`` when its value is not ``<partition>:<offset>`` (the record is refused, not
    applied as an ordinary event: a copy whose origin cannot be read cannot be de-duplicated).

    >>> origin_of([("churnwatch-origin", b"3:17")]), origin_of([]), origin_of([("churnwatch-origin", b"x")])
    ((3, 17), None, (-1, -1))
    """
    if not headers:
        return None
    for name, value in headers:  # type: ignore[attr-defined]
        if name == ORIGIN_HEADER:
            part, _, offset = (value or b"").decode("ascii", "replace").partition(":")
            if part.isdigit() and offset.isdigit():  # decoded as ASCII: a non-ASCII byte is U+FFFD, no digit
                return int(part), int(offset)
            return MALFORMED
    return None


@dataclass(slots=True)
class Routed:
    """A cycle's routing: copies to produce, counts, and the origin offsets seen (provisional
    until the cycle's writes succeed, then ``Router.commit``)."""

    copies: list[KafkaCopy] = field(default_factory=list)
    rerouted: dict[str, int] = field(default_factory=dict)  # reason -> records re-routed
    duplicates: int = 0  # copies at or below the origin offset already applied
    origins: dict[int, dict[int, int]] = field(default_factory=dict)  # p -> {origin p: highest origin offset}


class Router:
    """Per owned partition, the highest origin offset of the copies applied there.

    >>> r = Router("reroute")
    >>> r.assign(3, {0: 10})
    >>> routed = Routed()
    >>> r.copy_is_new(3, (0, 10), routed), r.copy_is_new(3, (0, 11), routed), routed.origins
    (False, True, {3: {0: 11}})

    With ``partitions`` (the worker's), origins are checked (``origin_problem``) against the
    partition count and the log ends learnt (``learn_ends``); without, only their form.
    """

    __slots__ = ("mode", "partitions", "ends", "_applied")

    def __init__(self, mode: MiskeyedMode = "reroute", partitions: int | None = None) -> None:
        if mode not in ("reroute", "dlq"):
            raise ValueError(f"miskeyed must be 'reroute' or 'dlq', got {mode!r}")
        self.mode = mode
        self.partitions = partitions
        self.ends: dict[int, int] = {}  # partition -> a log end offset read (only rises)
        self._applied: dict[int, dict[int, int]] = {}

    def origin_problem(self, partition: int, offset: int, origin: tuple[int, int]) -> str | None:
        """Why the copy at ``partition``/``offset`` cannot come from the ``origin`` its header
        names (a DLQ detail), or None. A bogus origin must not reach ``copy_is_new``: its offset
        would become the partition's mark and drop every later genuine copy below it.

        >>> r = Router("reroute", partitions=4)
        >>> r.learn_ends({0: 100, 1: 50})
        >>> r.origin_problem(1, 60, (0, 99)), r.origin_problem(1, 60, (1, 59)), r.origin_problem(1, 60, (0, 999999999))
        (None, None, 'churnwatch-origin 0:999999999 names an offset at or beyond the log end of partition 0 (100): not a record this topic holds')
        >>> r.origin_problem(1, 60, (1, 60)), r.origin_problem(1, 60, (7, 0)), r.origin_problem(1, 60, (-1, -1))
        ('churnwatch-origin 1:60 is not before the copy itself (offset 60 of partition 1)', 'churnwatch-origin 7:0 names partition 7; the topic has 4', "churnwatch-origin header is not '<partition>:<offset>'")
        """
        q, q_offset = origin
        if q < 0:
            return f"{ORIGIN_HEADER} header is not '<partition>:<offset>'"
        if self.partitions is None:
            return None
        if q >= self.partitions:
            return f"{ORIGIN_HEADER} {q}:{q_offset} names partition {q}; the topic has {self.partitions}"
        if q == partition:  # the copy's own log reaches the copy: its origin must come before it
            if q_offset >= offset:
                return f"{ORIGIN_HEADER} {q}:{q_offset} is not before the copy itself (offset {offset} of partition {q})"
            return None
        end = self.ends.get(q, 0)
        if q_offset >= end:
            return (f"{ORIGIN_HEADER} {q}:{q_offset} names an offset at or beyond the log end of partition {q} ({end}): "
                    f"not a record this topic holds")
        return None

    def needs_ends(self, batches: Mapping[int, Sequence[object]]) -> dict[int, dict[int, int]]:
        """``{partition p: {q: highest origin offset}}`` of the records of ``batches`` (``{p: the
        records read in p}``) whose origin in another partition q is at or beyond the log end
        known for q: the consumer reads those log ends (``learn_ends``) before decoding them. An
        origin in the copy's own partition needs none (``origin_problem`` compares it with the copy's
        own offset). Only records with headers are looked at (aiokafka's are an empty tuple otherwise).

        >>> R = type("R", (), {})
        >>> a, b, c, d = R(), R(), R(), R()
        >>> a.headers, b.headers, c.headers, d.headers = [(ORIGIN_HEADER, b"0:5")], [(ORIGIN_HEADER, b"2:9")], (), [(ORIGIN_HEADER, b"3:7")]
        >>> r = Router("reroute", partitions=4)
        >>> r.learn_ends({0: 10})
        >>> r.needs_ends({1: [a, c], 3: [b, d]})
        {3: {2: 9}}
        """
        out: dict[int, dict[int, int]] = {}
        if self.partitions is None:
            return out
        ends, partitions = self.ends, self.partitions
        for p, records in batches.items():
            if not records or not hasattr(records[0], "headers"):
                continue
            # One plain loop, the usual record (no header) skipped at once: ~170 instructions a
            # record on CPython 3.11 (its attribute load is specialised), half of what any() or
            # filter() over attrgetter("headers") cost, and no second pass over a batch holding a
            # heartbeat or a copy among thousands of events.
            for rec in records:
                if not rec.headers:  # type: ignore[attr-defined]
                    continue
                origin = origin_of(rec.headers)  # type: ignore[attr-defined]
                if origin is not None and origin[0] != p and 0 <= origin[0] < partitions and origin[1] >= ends.get(origin[0], 0):
                    q, offset = origin
                    wanted = out.setdefault(p, {})
                    if offset > wanted.get(q, -1):
                        wanted[q] = offset
        return out

    def first_unjudged(self, records: Sequence[object], unknown: "set[int] | frozenset[int]") -> int:
        """The index of the first of ``records`` whose origin is in a partition of ``unknown`` at or
        beyond the end known for it (its copy cannot be judged yet), or ``len(records)``.

        >>> R = type("R", (), {})
        >>> a, b, c = R(), R(), R()
        >>> a.headers, b.headers, c.headers = (), [(ORIGIN_HEADER, b"2:3")], [(ORIGIN_HEADER, b"2:40")]
        >>> r = Router("reroute", partitions=4)
        >>> r.learn_ends({2: 10})
        >>> r.first_unjudged([a, b, c], {2}), r.first_unjudged([a, b], {2})
        (2, 2)
        """
        ends = self.ends
        for i, rec in enumerate(records):
            headers = getattr(rec, "headers", None)
            if headers:
                origin = origin_of(headers)
                if origin is not None and origin[0] in unknown and origin[1] >= ends.get(origin[0], 0):
                    return i
        return len(records)

    def learn_ends(self, ends: Mapping[int, int]) -> None:
        """Log end offsets read from the broker (a log end only rises: a lower reply is older)."""
        for q, end in ends.items():
            if end is not None and end > self.ends.get(q, -1):
                self.ends[q] = end

    def assign(self, partition: int, origins: Mapping[int, int]) -> None:
        self._applied[partition] = dict(origins)

    def revoke(self, partition: int) -> None:
        self._applied.pop(partition, None)

    def restarted(self, partition: int) -> None:
        """``partition``'s log was replaced (``Store.restart_partition`` dropped its marks): no
        origin is applied to it yet, and its log end is the new log's, read again.

        >>> r = Router("reroute", partitions=4)
        >>> r.assign(1, {0: 50}); r.learn_ends({1: 900})
        >>> r.restarted(1); r._applied[1], r.ends
        ({}, {})
        """
        if partition in self._applied:
            self._applied[partition] = {}
        self.ends.pop(partition, None)

    def copy_is_new(self, partition: int, origin: tuple[int, int], routed: Routed) -> bool:
        """True for a copy not applied before (and remember it in ``routed``)."""
        q, offset = origin
        seen = routed.origins.get(partition, {}).get(q)
        if seen is None:
            seen = self._applied.get(partition, {}).get(q, -1)
        if offset <= seen:
            routed.duplicates += 1
            return False
        routed.origins.setdefault(partition, {})[q] = offset
        return True

    def reroute(self, partition: int, offset: int, key: bytes, value: bytes | None, reason: str, routed: Routed) -> None:
        routed.rerouted[reason] = routed.rerouted.get(reason, 0) + 1
        routed.copies.append((key, value, [(ORIGIN_HEADER, f"{partition}:{offset}".encode())]))

    def merged(self, routed: Routed) -> dict[int, dict[int, int]]:
        """The whole origin map of each partition ``routed`` touched, as it will be once committed."""
        return {p: {**self._applied.get(p, {}), **origins} for p, origins in routed.origins.items()}

    def snapshot(self) -> dict[int, dict[int, int]]:
        """The applied origin offsets, to ``restore`` if the cycles committed after it are abandoned."""
        return {p: dict(origins) for p, origins in self._applied.items()}

    def restore(self, snapshot: object) -> None:
        """Back to a ``snapshot`` (partitions revoked since then stay revoked)."""
        if isinstance(snapshot, dict):
            for p in self._applied:
                if p in snapshot:
                    self._applied[p] = dict(snapshot[p])

    def commit(self, routed: Routed) -> None:
        """The cycle's copies count as applied: later cycles drop them (the pipeline commits when
        it scores a cycle and restores a snapshot if the cycle is abandoned)."""
        for p, origins in routed.origins.items():
            if p in self._applied:
                self._applied[p].update(origins)
