"""How many records a worker cycle asks for: a cap from the measured cost per record.

Why: a cycle's head (decode, read, score) runs before any of its alerts leave, and the decode
does not yield to the event loop, so one burst-sized batch delays every alert in it and holds up
the acks of the cycle in flight before it. Kafka Streams (``max.poll.records``) and Quix Streams
bound their batches with a fixed count; a count that is right on one machine or workload is wrong
on a machine twice as slow or with heavier events, so the cap here is a time budget
(``batch_target_ms``) divided by the head's measured wall time per record.

A backlog deeper than ``DRAIN_CYCLES`` capped batches (a restart, a long outage) is drained with
``batch_max_records`` per cycle instead: its records are late anyway, and big batches clear it
sooner (the per-cycle costs are paid fewer times), so the throughput of a catch-up is unchanged.
"""

from __future__ import annotations

__all__ = ["DRAIN_CYCLES", "MIN_RECORDS", "RecordCap"]

#: A cap is never below this many records (nor above ``batch_max_records``).
MIN_RECORDS = 500
#: A backlog of more than this many capped batches is drained with full batches.
DRAIN_CYCLES = 4
#: Cycles with fewer records say more about the cycle's fixed costs than about a record's.
_MIN_SAMPLE = 200
#: Weight of the newest cycle in the running cost per record (about the last 10 cycles).
_ALPHA = 0.1


class RecordCap:
    """Records to ask ``getmany`` for: ``target_ms`` / (head seconds per record), within
    [``MIN_RECORDS``, ``max_records``]; ``target_ms`` 0 = always ``max_records``."""

    __slots__ = ("target_ms", "max_records", "_per_record_s")

    def __init__(self, target_ms: int, max_records: int) -> None:
        if target_ms < 0 or max_records < 1:
            raise ValueError(f"target_ms must be >= 0 and max_records >= 1, got {target_ms} ms and {max_records} records")
        self.target_ms = target_ms
        self.max_records = max_records
        self._per_record_s: float | None = None

    def observe(self, records: int, head_s: float) -> None:
        """A cycle of ``records`` records spent ``head_s`` seconds (wall) in its head."""
        per = head_s / records if records >= _MIN_SAMPLE else 0.0
        if not per > 0:  # too few records to say, or a clock that did not move
            return
        old = self._per_record_s
        self._per_record_s = per if old is None else old + _ALPHA * (per - old)

    @property
    def cap(self) -> int:
        """The cap for a cycle near the log's end (``limit`` without a backlog)."""
        if not self.target_ms or self._per_record_s is None:
            return self.max_records
        fit = min(float(self.max_records), self.target_ms / 1000 / self._per_record_s)
        return max(min(MIN_RECORDS, self.max_records), int(fit))

    def limit(self, backlog: int) -> int:
        """Records for the next cycle, ``backlog`` records being known to wait in the log."""
        cap = self.cap
        return self.max_records if backlog > DRAIN_CYCLES * cap else cap
