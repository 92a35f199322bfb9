"""The consumer's side of aligned reading (streams/worker/align.py): which partitions hold the
others back, the batch cut at the limit, the partitions held back until the others catch up.

Kept out of streams/worker/consumer.py, which calls it before a fetch (``release``: what may be
read again; ``refresh_foreign``: other workers' partitions) and after the batch's continuity check
(``cut``); the consumer's fetch takes a share from each partition that may be read (its records
left by a cut first, then aiokafka's), not one partition's fetch reply after the other. A partition
held back is not paused in aiokafka (that would drop the fetch reply it buffers, read again later):
it is only not taken from, so aiokafka keeps its reply and fetches nothing more for it.

Other workers' partitions are known by the progress their owners store in Redis (the stream time
after each settled cycle) and their log ends (ListOffsets), read at most once a second, and by the
heads their owners publish (where they hold): with that read, at each cut, and, while a partition
of the worker's own is held back, every ``HEADS_EVERY_S`` (two workers of a backlog each wait for
the other's next head: exchanged once a second, two workers read a replay 5-20 times slower than
one, QA pass 21 F7), by every worker that knows other workers own partitions of the topic. One
holds the others back at its published head (NEVER, idle: nobody), or, its owner of an earlier
version publishing none, at its stored stream time while behind its log end; either only while
it moved in the last ``FOREIGN_IDLE_S``: a partition whose worker stopped holds nobody (Kafka
Streams' ``max.task.idle.ms``: a task idles that long at most for a partition with no data).
It is the wall-clock rule of aligned reading that sees other workers (own partitions follow the
clock's idle rule: caught up, no record for ``CHURNWATCH_IDLE_PARTITION_MS``), so it is long:
30 s, where a busy worker's cycle may take several seconds (5 s until 5 December 2026: on a loaded 2-core box the
two workers of a replay drifted up to 10 days apart, as each took the other's slow cycles for a
stop, past the 7-day grace of the account watermark: docs/REVENUE.md, "Aligned reading").
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Final, Mapping

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from streams.worker import metrics
from streams.worker.align import align_limit, cut_index, first_event_ms
from streams.worker.clock import NEVER

__all__ = ["Alignment", "FOREIGN_EVERY_S", "FOREIGN_IDLE_S", "HEADS_EVERY_S"]

logger = logging.getLogger(__name__)

FOREIGN_EVERY_S: Final[float] = 1.0  # other workers' progress and log ends: read at most this often
HEADS_EVERY_S: Final[float] = 0.02  # while held back: the heads published and read at most this often
FOREIGN_IDLE_S: Final[float] = 30.0  # a foreign partition whose stored time did not move this long holds nobody
_ENDS_TIMEOUT_S: Final[float] = 2.0  # the log ends' answer waited for at most this (the loop must not stall on it)

Batch = dict[TopicPartition, list]  # type: ignore[type-arg]


class Alignment:
    """State of one worker's aligned reading: ``paused`` (partition -> event time of its first
    unread event, where the cut left it) and what other workers' partitions hold."""

    def __init__(self, ahead_ms: int) -> None:
        self.ahead_ms = ahead_ms
        self.paused: dict[TopicPartition, int] = {}
        # foreign partition -> (time it holds at, stored offset (-1: none), monotonic time the time
        # last moved, whether its owner published it: a head, not the stored stream time)
        self._foreign: dict[int, tuple[int, int, float, bool]] = {}
        self._others: list[int] = []  # the topic's partitions other workers own (``refresh_foreign``)
        self._foreign_ends: dict[int, int] = {}
        self._foreign_read = float("-inf")
        self._heads_read = float("-inf")
        self._published: Mapping[int, int] = {}

    def on(self, accounts_in_use: bool) -> bool:
        """Only where account copies flow (users alone need no order across partitions)."""
        return self.ahead_ms > 0 and accounts_in_use

    # -- what holds -------------------------------------------------------------------------

    def holding(self, consumer: Any, assigned: set[TopicPartition], next_offset: Mapping[int, int],
                stream_ms: Callable[[int], int], batch: Batch, idle: Callable[[int], bool]) -> dict[int, int]:
        """Partition -> the event time at which it holds the others: own partitions as
        :meth:`own_holding` says; other workers' partitions moving, at the time their owners publish
        (``own_holding``'s, read by :meth:`refresh_foreign`: NEVER for an idle one, which holds
        nobody); a partition whose owner, of an earlier version, publishes none holds at its stored
        stream time while behind its log end.

        Why a published head holds without the stored progress and the log ends (read once a
        second): two workers started before a history is published find neither at their first
        read, and until 5 December 2026 each read on alone until the next, days of event time a
        second, far enough apart for the account watermark's grace to pass the slower one's copies
        (docs/REVENUE.md, "Two workers")."""
        out: dict[int, int] = {}
        now = time.monotonic()
        for q, (t, offset, moved, head) in self._foreign.items():
            end = self._foreign_ends.get(q)
            if (head or end is not None and offset + 1 < end) and now - moved <= FOREIGN_IDLE_S and t not in (0, NEVER):
                out[q] = t
        for tp in assigned:
            out.pop(tp.partition, None)  # ours now: known here, not by Redis
        out.update((p, t) for p, t in self.own_holding(consumer, assigned, next_offset, stream_ms, batch, idle).items()
                   if t != NEVER)
        return out

    def own_holding(self, consumer: Any, assigned: set[TopicPartition], next_offset: Mapping[int, int],
                    stream_ms: Callable[[int], int], batch: Batch, idle: Callable[[int], bool]) -> dict[int, int]:
        """Own partition -> the event time at which it holds the others (NEVER: nobody): its first
        event in ``batch``, its first unread one (held back) or its stream time, unless idle (the
        clock's rule: caught up and no record for ``CHURNWATCH_IDLE_PARTITION_MS``). Not "caught up"
        alone: a fetch reply's log end lags (measured: a partition read in full to its last reply's
        end, between two replies, let the others run 10 days ahead of it)."""
        out: dict[int, int] = {}
        for tp in assigned:
            try:
                highwater = consumer.highwater(tp)
            except (IllegalStateError, AssertionError):
                continue
            records = batch.get(tp)
            nxt = records[-1].offset + 1 if records else next_offset.get(tp.partition)
            behind = highwater is not None and nxt is not None and nxt < highwater
            t: int | None = NEVER
            if behind or records or not idle(tp.partition):  # idle: holds nobody
                t = self.paused[tp] if tp in self.paused else (first_event_ms(records) if records else None)
                if t is None:
                    t = stream_ms(tp.partition)
            out[tp.partition] = NEVER if t is None else t
        return out

    async def refresh_foreign(self, consumer: Any, store: Any, topic: str, partitions: int,
                              assigned: set[TopicPartition], own: Mapping[int, int]) -> None:
        """Other workers' partitions: where they hold (their owners' :meth:`own_holding`, else
        their stored stream time), their stored progress and log ends, at most once a second; and
        ``own`` (this worker's :meth:`own_holding`) published for them. While a partition of its
        own is held back, the worker publishes ``own`` when it changes and reads the others' heads
        every ``HEADS_EVERY_S``: see :meth:`_refresh_heads`.

        Why the time they hold at, not the stored stream time: a partition held back waits at its
        first unread event, which is past its stream time by the gap before it. With the stream
        time, two workers each held back across a night (a gap of more than ``ahead_ms`` in every
        partition) each waited for the other's stream time: a deadlock that only ``FOREIGN_IDLE_S``
        broke (measured on 5 December 2026: two workers stood still 30 s a simulated night)."""
        mine = {tp.partition for tp in assigned}
        # only partitions the broker has: the state may be laid out for more (a topic that shrank,
        # docs/OPERATE.md "Partition count changes"), and aiokafka's end_offsets waits for the
        # metadata of a partition it does not know, which stalled every cycle behind it
        known = consumer.partitions_for_topic(topic) or set()
        others = [q for q in range(partitions) if q not in mine and q in known]
        now = time.monotonic()
        self._others = others
        if not others:
            self._foreign.clear()
            return
        if now - self._foreign_read < FOREIGN_EVERY_S:
            if self.paused and now - self._heads_read >= HEADS_EVERY_S:
                await self._refresh_heads(store, topic, own, now)
            return
        self._foreign_read = self._heads_read = now
        try:
            await store.write_align_heads(topic, own)  # every second all the same (a rebuild deletes them)
            self._published = dict(own)
            progress = await store.read_resume(topic)
            heads = await store.read_align_heads(topic)
            ends = await asyncio.wait_for(consumer.end_offsets([TopicPartition(topic, q) for q in others]), _ENDS_TIMEOUT_S)
        except Exception as exc:  # no answer: what was known stands (and ages out: FOREIGN_IDLE_S)
            logger.debug("aligned reading: other workers' progress not read (%s)", exc)
            return
        for q in others:
            r, head = progress.get(q), heads.get(q)
            if head is not None:
                self._learn(q, head, -1 if r is None else r.offset, True, now)
            elif r is not None:
                self._learn(q, r.max_ms, r.offset, False, now)
        self._foreign_ends = {tp.partition: end for tp, end in ends.items()}
        for q in [q for q in self._foreign if q in mine]:
            del self._foreign[q]

    async def _refresh_heads(self, store: Any, topic: str, own: Mapping[int, int], now: float) -> None:
        """Between the once-a-second reads, while held back: ``own`` published if it changed, the
        heads of the other workers' partitions read again (their progress and log ends stand).

        Why: two workers of a backlog hold each other, each at most ``ahead_ms`` past the other's
        published head, so the pair advances ``ahead_ms`` of event time per exchange of heads. With
        the heads written and read once a second, an exchange took 1-2 s, while each worker waited
        at 2-3% CPU: two workers read a replay 5-20 times slower than one (QA pass 21 F7; now about
        as fast as one: docs/REVENUE.md, "Two workers, one step of 6 h per exchange"). Redis answers
        an HGETALL of a few fields in well under a millisecond; ListOffsets, a broker round trip,
        stays once a second."""
        self._heads_read = now
        try:
            if own != self._published:
                await store.write_align_heads(topic, own)
                self._published = dict(own)
            heads = await store.read_align_heads(topic)
        except Exception as exc:  # no answer: what was known stands
            logger.debug("aligned reading: other workers' heads not read (%s)", exc)
            return
        for q in self._others:
            if q in heads:
                known = self._foreign.get(q)
                self._learn(q, heads[q], -1 if known is None else known[1], True, now)

    def _learn(self, q: int, t: int, offset: int, head: bool, now: float) -> None:
        """Foreign partition ``q`` holds at ``t`` (``head``: as its owner published), ``offset``
        its stored progress; its time moved ``now`` unless it is the one known."""
        known = self._foreign.get(q)
        self._foreign[q] = (t, offset, now if known is None or known[0] != t else known[2], head)

    async def publish(self, store: Any, topic: str, own: Mapping[int, int]) -> None:
        """Right after a cut, where other workers own partitions of the topic: ``own`` (the heads
        the cut left) published at once, not after the cycle's scoring, so a worker waiting for
        it reads on while this one scores (:meth:`_refresh_heads`)."""
        if not self._others or own == self._published:
            return
        try:
            await store.write_align_heads(topic, own)
        except Exception as exc:  # not written: the next refresh writes them
            logger.debug("aligned reading: heads not published (%s)", exc)
            return
        self._published = dict(own)

    # -- the three points of the loop -----------------------------------------------------

    def release(self, consumer: Any, assigned: set[TopicPartition], next_offset: Mapping[int, int],
                stream_ms: Callable[[int], int], idle: Callable[[int], bool]) -> None:
        """Let the held-back partitions whose first unread event is within the limit now be read
        again (and forget those no longer assigned)."""
        for tp in [tp for tp in self.paused if tp not in assigned]:
            del self.paused[tp]
        if not self.paused:
            return
        limit = align_limit(self.holding(consumer, assigned, next_offset, stream_ms, {}, idle), self.ahead_ms)
        for tp in [tp for tp, head in self.paused.items() if limit is None or head <= limit]:
            del self.paused[tp]

    def cut(self, batch: Batch, held: Mapping[int, int]) -> tuple[Batch, Batch]:
        """``batch`` without the events past the limit (and what follows them in their partition),
        and those left (the consumer keeps them in order, ahead of what aiokafka buffers, until the
        partition may be read again). The partition holding the least time keeps at least its first
        event whenever the cut would leave nothing: the backlog always advances."""
        limit = align_limit(held, self.ahead_ms)
        if limit is None:
            return batch, {}
        cuts = {tp: cut_index(records, limit) for tp, records in batch.items()}
        if not any(i for i, _ in cuts.values()):  # events out of time order, or a foreign partition far behind
            least = min((q for q, t in held.items() if t != NEVER), key=lambda q: held[q])
            for tp, records in batch.items():
                first = first_event_ms(records) if tp.partition == least else None
                if first is not None:  # up to its first event's time: at least that event, never its whole batch
                    cuts[tp] = cut_index(records, max(limit, first))
        out: Batch = {}
        left: Batch = {}
        for tp, records in batch.items():
            i, head = cuts[tp]
            if i < len(records):
                left[tp] = records[i:]
                self.paused[tp] = head if head is not None else limit
                metrics.ALIGN_CUTS.inc()
                metrics.ALIGN_RECORDS_PUT_BACK.inc(len(records) - i)
            if i:
                out[tp] = records[:i]
        return out, left
