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
- A *jump* (:func:`jumps`): one accepted event more than ``allowed_lateness + JUMP_MARGIN_MS`` (7 days)
  past the partition's effective stream time (:attr:`PartitionClock.effective_ms`). ``S_p`` follows
  it all the same (Kafka Streams' rule: stream time is the largest timestamp seen); the worker
  only counts and logs it (docs/ARCHITECTURE.md "Time", QA7 H4: one event dated "now" among a
  backfill's history made the rest of its partition ``late``). Observing changes no result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, NamedTuple

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


def jumps(partition: int, start_ms: int, times: Iterable[tuple[int, int]], bound_ms: int) -> list[Jump]:
    """The jumps among ``(ts_ms, offset)`` of accepted events of one partition, in offset order,
    from the effective stream time ``start_ms`` (NEVER: the first event sets it, no jump).

    >>> jumps(3, 1_000, [(2_000, 7), (9_000, 8), (8_000, 9), (20_000, 10)], 5_000)
    [Jump(partition=3, offset=8, from_ms=2000, to_ms=9000), Jump(partition=3, offset=10, from_ms=9000, to_ms=20000)]
    >>> jumps(0, NEVER, [(50_000, 0), (51_000, 1)], 5_000)
    []
    """
    out: list[Jump] = []
    stream = start_ms
    for ts, offset in times:
        if stream != NEVER and ts - stream > bound_ms:
            out.append(Jump(partition, offset, stream, ts))
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
        """The event time p is already committed to: ``S_p``, or the stream time p borrowed
        (``floor_p + allowed_lateness``) when higher: a quiet partition that followed the topic's
        clock does not jump when its next event comes at the topic's time (NEVER: none yet).

        >>> c = PartitionClock(allowed_lateness_ms=1_000, stream_ms=5_000)
        >>> c.effective_ms, PartitionClock(1_000).effective_ms == NEVER
        (5000, True)
        >>> c.floor_ms = 20_000; c.effective_ms
        21000
        """
        if self.floor_ms == NEVER:
            return self.stream_ms
        return max(self.stream_ms, self.floor_ms + self.allowed_lateness_ms)

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
        """A partition we now own, resumed from its stored max event time (None: never seen)."""
        clock = PartitionClock(self.allowed_lateness_ms, NEVER if stream_ms is None else stream_ms)
        clock.last_records_wall_ms = wall_now_ms
        self.partitions[partition] = clock
        self.observe_global(clock.stream_ms)
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
