"""Event-time aligned consumption: a worker reads its partitions' backlogs side by side in event time.

Why: an account's copies come from the partitions of its users (streams/worker/watermark.py) and
wait, on the account's partition, until every producing partition has passed them. A backlog
(a history published at once, a worker restarted after hours) is read as fast as each partition
goes, and aiokafka hands a ``getmany`` one partition's fetch reply after the other (up to 4 MB,
weeks of event time of one partition): measured on QA pass 15's B2B file (docs/REVENUE.md,
"Aligned reading"), one worker read partitions weeks apart, no held copy was released by the
watermark during the backlog, thousands went by the 500-copy bound, and an account's users on the
partition read last looked silent. Kafka Streams reads a task's input partitions in event-time
order (it picks the partition whose head record is oldest and idles up to ``max.task.idle.ms`` for
one with no data buffered); here, as the worker takes a batch:

- a partition *holds* the others at its event time: its first event in the batch, its first unread
  one (held back) or its stream time; one idle by the clock's rule (caught up, no record for
  ``CHURNWATCH_IDLE_PARTITION_MS``), or whose time is not known yet, holds nobody: a quiet
  partition blocks no longer than that;
- the batch's records of every partition are cut after ``limit`` = the least held time plus
  ``ahead_ms`` (``CHURNWATCH_ALIGN_AHEAD_MS``); the rest is kept for a later batch and the partition
  held back until the least held time comes within ``ahead_ms`` of its head.
  The partition holding the least time keeps at least its first event: the backlog always
  advances. The first event, not the last: a held copy waits about a cycle's span of event time
  for the marks to pass it, so a cycle spans at most ``ahead_ms`` of every partition.

Other workers' partitions hold too, at the time their owners publish in Redis while it moves
(streams/worker/aligned.py): the same rule across workers. User scoring does not change: each partition is still read in offset order, only in
other batches. Pure: records and times in, indexes out.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Final, Mapping, Sequence

import orjson

from models.events import TypeMap
from models.intake import EventReader
from streams.records import derived_event_id
from streams.timefmt import MIN_EVENT_MS, parse_ts_ms
from streams.worker.clock import NEVER
from streams.worker.phases import NOT_FOR_THE_CLOCK

__all__ = ["event_ms", "first_event_ms", "align_limit", "cut_index"]

#: The decoder's reading of a ``ts`` (models.intake.EventReader.timestamp_ms, the codec's parser):
#: the time a record is aligned by is the time the decoder will give its event.
_TIMESTAMP_MS: Final = EventReader(MIN_EVENT_MS, 0, TypeMap({}), parse_ts_ms, derived_event_id).timestamp_ms


_HEADERS: Final = attrgetter("headers")


def event_ms(rec: Any) -> int | None:
    """The event time of a fetched record, None for a copy, a heartbeat or a record the decoder
    will reject (it reaches the partition's clock neither).

    >>> R = type("R", (), {})
    >>> e, beat = R(), R()
    >>> e.headers, e.value = [], b'{"user_id":"u","type":"x","ts":1767225600000}'
    >>> beat.headers, beat.value = [("churnwatch-heartbeat", b"2:7000")], b""
    >>> event_ms(e), event_ms(beat)
    (1767225600000, None)
    """
    if _not_an_event(rec):
        return None
    try:
        t = _TIMESTAMP_MS(orjson.loads(rec.value).get("ts"))
    except Exception:  # not a JSON object: the decoder dead-letters it, with its reason
        return None
    return t if type(t) is int else None  # a Rejection: the decoder dead-letters it


def _not_an_event(rec: Any) -> bool:
    """A copy or a heartbeat, told by its headers alone (no parse: an account's partition holds
    runs of thousands of them in a backlog)."""
    headers = getattr(rec, "headers", None)
    return bool(headers) and any(name in NOT_FOR_THE_CLOCK for name, _ in headers)


def _events(records: Sequence[Any]) -> Sequence[int]:
    """Indexes of the records that may be events (not copies nor heartbeats), in order.

    Every index when no record carries headers (a partition of users' events: the common case),
    found by one pass in C: a Python test of every record of every partition each cycle cost
    ~0.4 us a record (measured on 5 December 2026, ~4% of a worker's CPU an event) where the
    bisection itself reads ~log2(n) records."""
    try:
        headed = any(map(_HEADERS, records))
    except AttributeError:  # a record type without headers: tested one by one
        headed = True
    if not headed:
        return range(len(records))
    return [j for j, rec in enumerate(records) if not _not_an_event(rec)]


def _next_event(records: Sequence[Any], events: Sequence[int], k: int) -> tuple[int, int] | None:
    """``(k', time)`` of the first event among ``records[events[k:]]`` (``k'`` its place in ``events``), or None."""
    for kk in range(k, len(events)):
        t = event_ms(records[events[kk]])
        if t is not None:
            return kk, t
    return None


def first_event_ms(records: Sequence[Any]) -> int | None:
    """The time of the first event among ``records`` (past any run of copies), or None: none.

    Until 5 December 2026 only the first 256 records were looked at (AHEAD_WALK), and
    :func:`cut_index` gave up the same way: see there.
    """
    for rec in records:  # event_ms: None for a copy or heartbeat (by its headers, no parse)
        t = event_ms(rec)
        if t is not None:
            return t
    return None


def align_limit(held: Mapping[int, int], ahead_ms: int) -> int | None:
    """The event time up to which every partition may be read: the least time a partition holds
    (NEVER: not known, holds nobody) plus ``ahead_ms``; None when nothing holds.

    >>> align_limit({0: 5_000, 1: 9_000, 2: NEVER}, 1_000), align_limit({2: NEVER}, 1_000)
    (6000, None)
    """
    times = [t for t in held.values() if t != NEVER]
    return min(times) + ahead_ms if times else None


def cut_index(records: Sequence[Any], limit_ms: int) -> tuple[int, int | None]:
    """Where to cut a partition's fetched ``records`` (in offset order) so that no event after
    ``limit_ms`` is taken: ``(index, time of the event there)``, or ``(len(records), None)``: no
    cut. A partition's events come nearly in time order (``publish`` sends a file so; a producer
    live): the first event past the limit is found by bisection over the events (copies and
    heartbeats are told by their headers and skipped; those before the cut are taken, those after
    the last event go with the rest).

    Until 5 December 2026 a probe looked at most 256 records past it for an event, and a batch
    whose last 256 records held none was not cut at all: in a backlog an account's partition ends
    its batches in runs of thousands of copies, so that partition took its whole batch (two weeks
    of events on a 42k-event replay), past the 7-day grace of the other partitions' marks, and
    their copies then reached their accounts behind the watermark (docs/REVENUE.md, "Aligned reading").

    >>> R = type("R", (), {})
    >>> def ev(t):
    ...     r = R(); r.headers, r.value = [], b'{"ts":%d}' % t; return r
    >>> def copy():
    ...     r = R(); r.headers, r.value = [("churnwatch-member", b"1:2")], b"{}"; return r
    >>> recs = [ev(t) for t in (1, 2, 3, 10, 11)]
    >>> cut_index(recs, 3), cut_index(recs, 11), cut_index(recs, 0)
    ((3, 10), (5, None), (0, 1))
    >>> cut_index(recs + [copy() for _ in range(300)], 3)
    (3, 10)
    >>> cut_index([copy()] * 300 + recs, 3), cut_index([copy()] * 300, 3)
    ((303, 10), (300, None))
    """
    events = _events(records)
    lo, hi = 0, len(events)  # the first probe whose next event is past the limit is in [lo, hi]; hi: none
    while lo < hi:
        mid = (lo + hi) // 2
        nxt = _next_event(records, events, mid)
        if nxt is not None and nxt[1] > limit_ms:
            hi = mid
        else:
            lo = mid + 1
    found = _next_event(records, events, lo) if lo < len(events) else None
    if found is None:
        return len(records), None
    return events[found[0]], found[1]
