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

``CHURNWATCH_MISKEYED=dlq`` sends mis-keyed records to the DLQ (reason ``key_not_user_id``) instead.

Ordering: copies reach the user's partition after the correctly keyed events published at the
same time; events later than the allowed lateness there go to the DLQ as ``late``, as they would
from any producer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal, Mapping

__all__ = ["ORIGIN_HEADER", "KafkaCopy", "MiskeyedMode", "Routed", "Router", "key_problem", "origin_of"]

ORIGIN_HEADER: Final[str] = "churnwatch-origin"
MiskeyedMode = Literal["reroute", "dlq"]

KafkaCopy = tuple[bytes, bytes | None, list[tuple[str, bytes]]]  # (key, value, headers)


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
    """``(partition, offset)`` from a copy's ``churnwatch-origin`` header, or None."""
    if not headers:
        return None
    for name, value in headers:  # type: ignore[attr-defined]
        if name == ORIGIN_HEADER and value:
            part, _, offset = value.decode("ascii", "replace").partition(":")
            if part.isdigit() and offset.isdigit():
                return int(part), int(offset)
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
    """

    __slots__ = ("mode", "_applied")

    def __init__(self, mode: MiskeyedMode = "reroute") -> None:
        if mode not in ("reroute", "dlq"):
            raise ValueError(f"miskeyed must be 'reroute' or 'dlq', got {mode!r}")
        self.mode = mode
        self._applied: dict[int, dict[int, int]] = {}

    def assign(self, partition: int, origins: Mapping[int, int]) -> None:
        self._applied[partition] = dict(origins)

    def revoke(self, partition: int) -> None:
        self._applied.pop(partition, None)

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
