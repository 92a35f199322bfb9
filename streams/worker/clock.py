"""Per-partition event time: stream time S_p, the lateness cutoff, and the review clock C_p.

Pure: wall time and fetch facts are arguments, so every rule here is unit-testable.

- ``S_p`` is the largest event time seen in partition p, folded in offset order, so it does not
  depend on how records were cut into batches.
- An event is late when ``ts_ms < cutoff_p`` where ``cutoff_p = max(S_p - allowed_lateness,
  floor_p)``; ``floor_p`` is the largest review clock already applied to p. Reviews of p's users
  have run up to the second before ``floor_p``, so an event below it would land *behind* a review
  that already happened; rejecting it as ``late`` keeps "every review sees every earlier event".
- Review clock: reviews run for every due time strictly before ``cutoff_p`` (in whole seconds,
  because state times are seconds). While p has unread records the cutoff comes from p alone.
  Once p is caught up (position >= highwater from the last fetch reply; Tansu's reported end
  offsets are wrong) *and* has delivered nothing for ``idle_partition_ms``, it follows
  ``max(S_p, S_all) - allowed_lateness`` with ``S_all`` the largest stream time of any partition of
  the topic (the worker folds it in from every partition's stored progress, also once a second
  while idle); in ``live`` mode also ``wall_now - allowed_lateness``. The idle condition (on top of
  ARCHITECTURE.md's "caught up") is there because a partition is momentarily caught up many times
  while a producer is mid-burst; borrowing another partition's clock then would make the records
  still in flight on p late. Silence is still noticed, ``idle_partition_ms`` later.
- After a restart ``S_p`` comes back from Redis progress (``max_event_ms``); ``floor_p`` does not
  (it is not stored), so a partition whose clock had been borrowed starts from ``S_p`` again.
  For jump detection only, p's *seed* stands in for it: the topic's clock when p was assigned
  (``max(S_p, S_all)``, in ``live`` mode also the wall clock), used until p's stream time first
  moves (review 10 B4: a quiet partition's next event counted as a jump after every restart).
- A *jump* (:func:`jumps`): one accepted event more than ``allowed_lateness + JUMP_MARGIN_MS`` (7 days)
  past the partition's effective stream time (:meth:`PartitionClock.effective_from`). ``S_p`` follows
  it all the same (Kafka Streams' rule: stream time is the largest timestamp seen); the worker
  only counts and logs it (docs/ARCHITECTURE.md "Time", QA7 H4: one event dated "now" among a
  backfill's history made the rest of its partition ``late``). Its mirror image, a history read
  *after* live events (review 10 B2): a ``late`` event more than the same bound behind the
  effective stream time is *far behind* (:meth:`PartitionClock.far_behind`), counted apart from
  the other late events. Observing changes no result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Literal, NamedTuple

__all__ = ["PartitionClock", "TopicClock", "NEVER", "JUMP_MARGIN_MS", "Jump", "jumps"]

NEVER = -(2**62)  # "no time yet": below any real epoch millisecond
#: A jump of ``allowed_lateness + JUMP_MARGIN_MS`` makes more than this much event time of the
#: partition's flow before it ``late``, should that flow go on (a history published beside live
#: producers: it is behind by weeks or months). A week: above a small product's quiet weekend or
#: holiday in one partition and the sparse first days of a history (QA7's simulated history: 8
#: gaps of 1.6-2.8 days in its first two weeks, each a jump at a one-day margin); a jump of less
#: still shows in the ``late`` rejections it causes (ChurnwatchDlqRateHigh).
JUMP_MARGIN_MS = 7 * 86_400_000


class Jump(NamedTuple):
    """One accepted event that moved its partition's stream time ahead by more than the bound."""

    partition: int
    offset: int
    from_ms: int  # the partition's effective stream time before it
    to_ms: int  # the event's time: the stream time after it


def jumps(partition: int, start_ms: int, times: Iterable[tuple[int, int]], bound_ms: int,
          effective_from: Callable[[int], int] | None = None) -> list[Jump]:
    """The jumps among ``(ts_ms, offset)`` of accepted events of one partition, in offset order,
    from the stream time ``start_ms`` (NEVER: none yet) and what it makes the effective one
    (:meth:`PartitionClock.effective_from`; by default itself; NEVER: the first event sets it, no jump).

    >>> jumps(3, 1_000, [(2_000, 7), (9_000, 8), (8_000, 9), (20_000, 10)], 5_000)
    [Jump(partition=3, offset=8, from_ms=2000, to_ms=9000), Jump(partition=3, offset=10, from_ms=9000, to_ms=20000)]
    >>> jumps(0, NEVER, [(50_000, 0), (51_000, 1)], 5_000)
    []
    >>> seeded = lambda s: 60_000 if s == 1_000 else s  # a seed holds until the stream time moves
    >>> jumps(0, 1_000, [(59_000, 4), (2_000, 5), (90_000, 6)], 5_000, seeded)
    [Jump(partition=0, offset=6, from_ms=59000, to_ms=90000)]
    """
    out: list[Jump] = []
    stream = start_ms
    for ts, offset in times:
        if ts - stream > bound_ms:  # necessary: the effective stream time is >= the stream time
            base = stream if effective_from is None else effective_from(stream)
            if base != NEVER and ts - base > bound_ms:
                out.append(Jump(partition, offset, base, ts))
        if ts > stream:
            stream = ts
    return out


@dataclass(slots=True)
class PartitionClock:
    """Event time of one partition.

    >>> c = PartitionClock(allowed_lateness_ms=1_000)
    >>> c.admit(10_000), c.admit(9_500), c.admit(8_999), c.stream_ms
    (True, True, False, 10000)
    """

    allowed_lateness_ms: int
    stream_ms: int = NEVER  # S_p
    floor_ms: int = NEVER  # largest cutoff whose reviews have run
    caught_up: bool = False
    last_records_wall_ms: int = 0  # wall time of the last fetch that delivered records
    seed_ms: int = NEVER  # the topic's clock at assignment: p's effective stream time for jumps ...
    seed_at_ms: int = NEVER  # ... while S_p is still this (its value at assignment)

    def admit(self, ts_ms: int) -> bool:
        """Fold one event (in offset order); False when it is late (and then S_p is unchanged)."""
        if ts_ms < self.floor_ms:
            return False
        if ts_ms > self.stream_ms:
            self.stream_ms = ts_ms
            return True
        return ts_ms >= self.stream_ms - self.allowed_lateness_ms

    @property
    def effective_ms(self) -> int:
        """:meth:`effective_from` the current ``S_p``."""
        return self.effective_from(self.stream_ms)

    def effective_from(self, stream_ms: int) -> int:
        """The event time p is already committed to when its stream time is ``stream_ms``: that,
        or the stream time p borrowed (``floor_p + allowed_lateness``) when higher, so a quiet
        partition that followed the topic's clock does not jump when its next event comes at the
        topic's time; or, while ``S_p`` has not moved since p was assigned, its seed (the borrowed
        floor is not stored: a restart or a re-assignment must not turn that event into a jump).
        NEVER: none yet. Not read per record: only once an event is more than the bound past ``S_p``
        (``effective_from >= stream_ms``, so that is a necessary condition).

        >>> c = PartitionClock(allowed_lateness_ms=1_000, stream_ms=5_000)
        >>> c.effective_ms, PartitionClock(1_000).effective_ms == NEVER
        (5000, True)
        >>> c.floor_ms = 20_000; c.effective_ms
        21000
        >>> s = PartitionClock(1_000, stream_ms=5_000, seed_ms=90_000, seed_at_ms=5_000)
        >>> s.effective_from(5_000), s.effective_from(6_000)
        (90000, 6000)
        """
        e = self._committed_from(stream_ms)
        if stream_ms == self.seed_at_ms and self.seed_ms > e:
            e = self.seed_ms
        return e

    def _committed_from(self, stream_ms: int) -> int:
        """:meth:`effective_from` without the seed: ``max(stream_ms, floor_p + allowed_lateness)``."""
        if self.floor_ms != NEVER and self.floor_ms + self.allowed_lateness_ms > stream_ms:
            return self.floor_ms + self.allowed_lateness_ms
        return stream_ms

    def far_behind(self, ts_ms: int) -> bool:
        """Whether a ``late`` event is more than :attr:`jump_bound_ms` behind p's effective stream
        time: the mirror image of a jump, a history read after live events (review 10 B2). Called
        on the rejection path only.

        >>> c = PartitionClock(1_000, stream_ms=100_000)
        >>> c.far_behind(100_000 - 1_000 - JUMP_MARGIN_MS), c.far_behind(100_000 - 1_001 - JUMP_MARGIN_MS)
        (False, True)
        """
        return self.effective_ms - ts_ms > self.jump_bound_ms

    def within(self, ts_ms: int, lateness_ms: int) -> bool:
        """Whether a ``late`` event is at most ``lateness_ms`` behind p's stream time, or the
        stream time p borrowed (``floor_p + allowed_lateness``) when higher: a billing statement
        within ``CHURNWATCH_BILLING_LATENESS_MS`` still goes to its account
        (streams.worker.phases). Not against the seed, which is for jump detection only: with
        it, a record copied before a restart could be dead-lettered after it (review 19 F2).
        Called on the rejection path only; a lateness at or below the allowed one admits nothing
        more.

        >>> c = PartitionClock(1_000, stream_ms=100_000)
        >>> c.within(90_000, 10_000), c.within(89_999, 10_000), c.within(98_500, 1_000)
        (True, False, False)
        >>> s = PartitionClock(1_000, stream_ms=100_000, seed_ms=200_000, seed_at_ms=100_000)
        >>> s.within(90_000, 10_000)
        True
        """
        return lateness_ms > self.allowed_lateness_ms and self._committed_from(self.stream_ms) - ts_ms <= lateness_ms

    @property
    def jump_bound_ms(self) -> int:
        """How far past :attr:`effective_ms` one event may move S_p before it counts as a jump."""
        return self.allowed_lateness_ms + JUMP_MARGIN_MS

    @property
    def cutoff_ms(self) -> int:
        if self.stream_ms == NEVER:
            return self.floor_ms
        return max(self.stream_ms - self.allowed_lateness_ms, self.floor_ms)

    def snapshot(self) -> tuple[int, int]:
        return self.stream_ms, self.floor_ms

    def restore(self, snap: tuple[int, int]) -> None:
        """Undo the folds of a batch that was abandoned and will be read again."""
        self.stream_ms, self.floor_ms = snap


class TopicClock:
    """The clocks of the partitions this worker owns, plus ``S_all`` of the whole topic."""

    __slots__ = ("allowed_lateness_ms", "idle_partition_ms", "mode", "partitions", "global_ms")

    def __init__(self, allowed_lateness_ms: int, idle_partition_ms: int, mode: Literal["event", "live"] = "event") -> None:
        if allowed_lateness_ms < 0:
            raise ValueError(f"allowed_lateness_ms must be >= 0 ms, got {allowed_lateness_ms}")
        if idle_partition_ms < 0:
            raise ValueError(f"idle_partition_ms must be >= 0 ms, got {idle_partition_ms}")
        if mode not in ("event", "live"):
            raise ValueError(f"clock mode must be 'event' or 'live', got {mode!r}")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.idle_partition_ms = idle_partition_ms
        self.mode = mode
        self.partitions: dict[int, PartitionClock] = {}
        self.global_ms = NEVER  # S_all

    def assign(self, partition: int, stream_ms: int | None, wall_now_ms: int) -> PartitionClock:
        """A partition we now own, resumed from its stored max event time (None: never seen), its
        jump seed the topic's clock now (the caller folds the stored ``S_all`` in first).

        >>> t = TopicClock(1_000, 0); t.observe_global(50_000)
        >>> c = t.assign(0, 2_000, 9_000); c.effective_ms, t.assign(1, None, 9_000).effective_ms
        (50000, 50000)
        >>> TopicClock(1_000, 0, "live").assign(0, 2_000, 9_000).effective_ms
        9000
        """
        clock = PartitionClock(self.allowed_lateness_ms, NEVER if stream_ms is None else stream_ms)
        clock.last_records_wall_ms = wall_now_ms
        self.partitions[partition] = clock
        self.observe_global(clock.stream_ms)
        clock.seed_at_ms = clock.stream_ms
        clock.seed_ms = max(self.global_ms, wall_now_ms) if self.mode == "live" else self.global_ms
        return clock

    def revoke(self, partition: int) -> None:
        self.partitions.pop(partition, None)

    def observe_global(self, stream_ms: int) -> None:
        if stream_ms > self.global_ms:
            self.global_ms = stream_ms

    def observe_fetch(self, partition: int, delivered: int | bool, caught_up: bool, wall_now_ms: int) -> None:
        """What the last fetch said about p: whether (or how many) records it delivered for the
        clock, whether p is caught up."""
        clock = self.partitions.get(partition)
        if clock is None:
            return
        clock.caught_up = caught_up
        if delivered:
            clock.last_records_wall_ms = wall_now_ms

    def cutoff_ms(self, partition: int, wall_now_ms: int) -> int:
        """The review cutoff of p right now (ms); reviews run strictly before its second."""
        clock = self.partitions[partition]
        cutoff = clock.cutoff_ms
        if clock.caught_up and wall_now_ms - clock.last_records_wall_ms >= self.idle_partition_ms:
            borrowed = max(clock.stream_ms, self.global_ms)
            if self.mode == "live":
                borrowed = max(borrowed, wall_now_ms)
            if borrowed != NEVER:
                cutoff = max(cutoff, borrowed - self.allowed_lateness_ms)
        return cutoff

    def review_until_ms(self, partition: int, wall_now_ms: int) -> int | None:
        """``until_ms`` for ``models.engine.advance`` of p's users, and remember it as p's floor.

        ``advance`` runs reviews due at or before ``until_ms // 1000`` seconds; events admitted
        later have ``ts_ms >= cutoff``, i.e. a second >= ``cutoff // 1000``, so reviews must stop
        one second earlier. None while p has no event time at all.
        """
        cutoff = self.cutoff_ms(partition, wall_now_ms)
        if cutoff == NEVER:
            return None
        clock = self.partitions[partition]
        if cutoff > clock.floor_ms:
            clock.floor_ms = cutoff
        return (cutoff // 1000 - 1) * 1000
