"""The gap mark: a record in a partition of the events topic saying "the history before me is not
in this log" (QA13 F3).

Why: after a topic reset (``ChurnwatchTopicReset``: the broker lost its storage, the topic was
made again) the worker applies the new log on top of the users' kept states, so from then on
Redis holds the only copy of the history before the reset. A later Redis loss rebuilds from the
new log alone, which starts at offset 0 like a complete one: the log's first offset cannot tell.
So the worker that restarts a partition writes this mark into it, where a Redis loss cannot take
it, and a worker that builds the partition's state from scratch and meets it knows its state is
incomplete (``churnwatch_history_incomplete``).

The mark is a heartbeat (``streams.worker.watermark``) without a mark, plus its own header, so
every reader that skips the worker's own records skips it without knowing it: the worker's decode
(``revenue.copy_origin``: a heartbeat of mark NEVER folds nothing), the clock (``phases.reaches_clock``),
``churnwatch train --from-topic`` (``retained.COPY_HEADERS``) and the repair copy (any ``churnwatch-``
header), in this version and in the ones before it. Pure.
"""

from __future__ import annotations

from typing import Final

import orjson

from streams.timefmt import format_ts
from streams.worker.clock import NEVER
from streams.worker.watermark import HEARTBEAT_HEADER, KafkaCopy

__all__ = ["GAP_HEADER", "gap_mark", "gap_of"]

GAP_HEADER: Final[str] = "churnwatch-gap"


def gap_mark(partition: int, wall_ms: int, stream_ms: int) -> KafkaCopy:
    """The mark for ``partition``, restarted at wall time ``wall_ms`` with its users' state at
    event time ``stream_ms`` (0: none). The value is for a person reading the topic; the header
    ``churnwatch-gap: <wall ms>`` is what the workers read.

    >>> key, value, headers = gap_mark(3, 1_790_000_000_000, 0)
    >>> key, headers[0][0], gap_of(headers), orjson.loads(value)["churnwatch_gap"]["partition"]
    (b'churnwatch-gap-3', 'churnwatch-heartbeat', 1790000000000, 3)
    """
    value = {"churnwatch_gap": {
        "partition": partition,
        "at": format_ts(wall_ms),
        "state_event_time": format_ts(stream_ms) if stream_ms > 0 else None,
        "meaning": "this partition's log was replaced; the events before this record are not in this log",
    }}
    headers = [(HEARTBEAT_HEADER, b"%d:%d" % (partition, NEVER)), (GAP_HEADER, b"%d" % wall_ms)]
    return b"churnwatch-gap-%d" % partition, orjson.dumps(value), headers


def gap_of(headers: object) -> int | None:
    """The wall time (ms) of a gap mark's restart, from a record's headers; None when the record
    is not a gap mark (a header value that is not a number counts as 0: still a mark).

    >>> gap_of([("churnwatch-heartbeat", b"2:7000")]), gap_of([("churnwatch-gap", b"x")]), gap_of(None)
    (None, 0, None)
    """
    if not headers:
        return None
    for name, value in headers:  # type: ignore[attr-defined]
        if name == GAP_HEADER:
            return int(value) if value and value.isdigit() else 0
    return None
