"""The history an events topic still retains, decoded exactly as the worker decodes it (``train --from-topic``).

Why here, next to the codec: a model trained on the topic must see the events the stream would
apply, with the same validation (``streams.worker.codec.Decoder``), not a second reading of the
JSON contract. What it reads and skips:

- every partition from its earliest retained offset up to its **high-water mark at the start**:
  the highwater of the first fetch reply for that partition (Tansu 0.6.0 reports wrong end
  offsets; the highwater in its fetch replies is right). Records produced after
  that are not read, and the read never waits for the topic to go quiet;
- churnwatch's own copies (a re-routed record, ``churnwatch-origin``; an account or member copy,
  ``churnwatch-account``/``churnwatch-member``): their originals are in the topic and are read
  (a record not keyed by its user id counts once, as the worker applies it once; with
  ``CHURNWATCH_MISKEYED=dlq`` the worker never applies it, and it is skipped as ``key_not_user_id``);
- records the codec rejects (malformed JSON, missing fields, bad amounts, ...): counted by the
  codec's reason and skipped, never fatal; so is an event dated more than the allowed clock skew
  after its own record was written (``future``, ``models.intake.ahead_of_record``), as the worker
  dead-letters it; a repeat of a (user, ``event_id``) already read
  (``duplicate_event_id``, as the worker rejects repeats in a batch);
- with ``until_ms``, events at or after that time (``after_until``);
- with ``window_ms`` (``churnwatch learn --window``), events older than the latest event read
  minus the window (``before_window``): dropped while reading, whenever the events kept have
  doubled since the last drop, so memory holds about twice the window's events, not the topic.

The worker's lateness rule is not applied: history is merged into event-time order
(``models.events.EVENT_ORDER``) across partitions, as the CSV reader sorts its rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.events import DEFAULT_TYPE_MAP, EVENT_ORDER, Event, TypeMap
from models.intake import ahead_of_record
from streams.errors import UserError
from streams.settings import Settings
from streams.worker.codec import Decoder, Rejection
from streams.worker.gap import GAP_HEADER
from streams.worker.revenue import ACCOUNT_HEADER, MEMBER_HEADER
from streams.worker.routing import ORIGIN_HEADER, key_problem
from streams.worker.watermark import HEARTBEAT_HEADER

__all__ = ["COPY_HEADERS", "Collector", "Retained", "read_retained"]

logger = logging.getLogger(__name__)

#: Headers of the records churnwatch writes back into the events topic (copies of originals, heartbeats,
#: gap marks: a gap mark carries a heartbeat header too, so readers of before it skip it as well).
COPY_HEADERS: frozenset[str] = frozenset((ORIGIN_HEADER, ACCOUNT_HEADER, MEMBER_HEADER, HEARTBEAT_HEADER, GAP_HEADER))


#: Events kept before the first drop of those before the window (``Collector``).
_FIRST_DROP = 100_000


class _Record(Protocol):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


@dataclass(slots=True)
class Retained:
    """The events read (event-time order) and what was skipped, by cause."""

    events: list[Event] = field(default_factory=list)
    records: int = 0  # records read below the start highwaters
    copies: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # codec reason (and duplicate_event_id) -> records
    after_until: int = 0
    before_window: int = 0
    ends: dict[int, int] = field(default_factory=dict)  # partition -> highwater at the start

    def summary(self, topic: str) -> str:
        """One line for the user: what was read and what was skipped.

        >>> Retained(records=5, copies=1, rejected={"malformed_json": 1}, ends={0: 3, 1: 2}).summary("ev")
        'topic ev: 5 records in 2 partitions up to their highwater at the start: 0 events; skipped 1 copies, 1 rejected (malformed_json 1)'
        """
        bad = sum(self.rejected.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
        parts = [f"{self.copies} copies", f"{bad} rejected" + (f" ({reasons})" if reasons else "")]
        if self.after_until:
            parts.append(f"{self.after_until} at or after --until")
        if self.before_window:
            parts.append(f"{self.before_window} before --window")
        return (f"topic {topic}: {self.records:,} records in {len(self.ends)} partitions up to their highwater at the start: "
                f"{len(self.events):,} events; skipped " + ", ".join(parts))


class Collector:
    """Folds records into a :class:`Retained` (pure: the wall clock is an argument, no I/O).

    >>> c = Collector(Decoder(), wall_now_ms=1_800_000_000_000)
    >>> ok = b'{"event_id":"e1","user_id":"u1","type":"view","ts":"2026-01-01T00:00:00Z"}'
    >>> R = type("R", (), {"partition": 0, "key": b"u1"})
    >>> for off, value, headers in ((0, ok, []), (1, b"{nope", []), (2, ok, []), (3, ok, [("churnwatch-origin", b"0:0")])):
    ...     r = R(); r.offset, r.value, r.headers = off, value, headers; c.add(r)
    >>> out = c.result()
    >>> len(out.events), out.copies, out.rejected
    (1, 1, {'malformed_json': 1, 'duplicate_event_id': 1})
    """

    def __init__(self, decoder: Decoder, wall_now_ms: int, until_ms: int | None = None, miskeyed: str = "reroute",
                 window_ms: int | None = None) -> None:
        if window_ms is not None and window_ms <= 0:
            raise ValueError(f"window must be > 0 ms, got {window_ms}")
        self.decoder = decoder
        self.wall_now_ms = wall_now_ms
        self.until_ms = until_ms
        self.miskeyed = miskeyed
        self.window_ms = window_ms
        self._out = Retained()
        self._seen: set[tuple[str, str]] = set()
        self._latest_ms = 0  # the latest event time kept (the window's end)
        self._drop_at = _FIRST_DROP  # events kept at which the next drop runs

    def add(self, record: _Record) -> None:
        out = self._out
        out.records += 1
        headers = record.headers
        if headers and any(name in COPY_HEADERS for name, _ in headers):
            out.copies += 1
            return
        ev = self.decoder.decode(record.value, self.wall_now_ms)
        if isinstance(ev, Rejection):
            self._reject(ev.reason)
            return
        # (-1: a record without a timestamp, as aiokafka gives one written without: never ahead)
        if ahead_of_record(ev.ts_ms, getattr(record, "timestamp", -1), self.decoder.max_clock_skew_ms):
            self._reject("future")
            return
        if self.miskeyed == "dlq" and key_problem(record.key, ev.user_id) is not None:
            self._reject("key_not_user_id")
            return
        key = (ev.user_id, ev.event_id)
        if key in self._seen:
            self._reject("duplicate_event_id")
            return
        self._seen.add(key)
        if self.until_ms is not None and ev.ts_ms >= self.until_ms:
            out.after_until += 1
            return
        out.events.append(ev)
        if ev.ts_ms > self._latest_ms:
            self._latest_ms = ev.ts_ms
        if self.window_ms is not None and len(out.events) >= self._drop_at:
            self._drop_before_window()
            self._drop_at = max(_FIRST_DROP, 2 * len(out.events))

    def _drop_before_window(self) -> None:
        """Forget the events older than the window before the latest one (and their ids: a repeat
        of a forgotten event is as old and is forgotten too)."""
        out, start = self._out, self._latest_ms - (self.window_ms or 0)
        kept = [ev for ev in out.events if ev.ts_ms >= start]
        if len(kept) < len(out.events):
            out.before_window += len(out.events) - len(kept)
            out.events = kept
            self._seen = {(ev.user_id, ev.event_id) for ev in kept}

    def _reject(self, reason: str) -> None:
        self._out.rejected[reason] = self._out.rejected.get(reason, 0) + 1

    def result(self, ends: dict[int, int] | None = None) -> Retained:
        """The events merged into event-time order (every partition), with the start highwaters."""
        if self.window_ms is not None:
            self._drop_before_window()
        out = self._out
        out.events.sort(key=EVENT_ORDER)
        if ends is not None:
            out.ends = dict(ends)
        return out


def read_retained(settings: Settings, topic: str, *, until_ms: int | None = None, type_map: TypeMap = DEFAULT_TYPE_MAP,
                  stall_s: float = 60.0, window_ms: int | None = None) -> Retained:
    """Every event ``topic`` retains (module docstring). A partition that makes no progress
    towards its start highwater for ``stall_s`` seconds is one readable error, not a hang."""
    from streams.publisher import check_kafka_reachable

    check_kafka_reachable(settings)  # one line instead of the client's retries logged at ERROR
    collector = Collector(Decoder(max_event_bytes=settings.max_event_bytes, max_clock_skew_ms=settings.max_clock_skew_ms,
                                  type_map=type_map, currency=settings.currency),
                          int(time.time() * 1000), until_ms, settings.miskeyed, window_ms)
    ends = asyncio.run(_read(settings, topic, collector, stall_s))
    out = collector.result(ends)
    logger.debug("%s", out.summary(topic))  # the command prints it
    return out


async def _read(settings: Settings, topic: str, collector: Collector, stall_s: float) -> dict[int, int]:
    """aiokafka (its record parsing is compiled, several times kafka-python's speed), no group:
    every partition from the beginning until its position reaches the first highwater a fetch
    reply gave for it; records at or beyond it are later than the start and left out.
    Returns partition -> that highwater."""
    from streams.kafka_admin import open_topic

    async with open_topic(settings, topic, " (see `churnwatch topics`)", max_partition_fetch_bytes=4 * 1024 * 1024,
                          fetch_max_bytes=64 * 1024 * 1024,
                          fetch_max_wait_ms=settings.fetch_max_wait_ms) as (consumer, tps):  # as the worker's consumer (settings.py says why)
        await consumer.seek_to_beginning(*tps)
        ends: dict[int, int] = {}
        pending = list(tps)
        last_progress = time.monotonic()
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=200, max_records=10_000)).items():
                end = ends.get(tp.partition)
                if end is None and consumer.highwater(tp) is not None:
                    end = ends[tp.partition] = consumer.highwater(tp)  # set by the reply that brought these
                for rec in records:
                    if end is None or rec.offset < end:
                        collector.add(rec)
                last_progress = time.monotonic()
            still = []
            for tp in pending:
                high = consumer.highwater(tp)
                if tp.partition not in ends and high is not None:
                    ends[tp.partition] = high
                end = ends.get(tp.partition)
                if end is None or await consumer.position(tp) < end:
                    still.append(tp)
            pending = still
            if pending and time.monotonic() - last_progress > stall_s:
                where = ", ".join(f"{tp.partition}@{await consumer.position(tp)}/{ends.get(tp.partition)}" for tp in pending)
                raise UserError(f"topic {topic}: no progress for {stall_s:.0f} s towards the highwater at the start "
                                f"(partition@position/highwater: {where})")
        return ends
