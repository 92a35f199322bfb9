"""The gap mark (streams/worker/gap.py, QA13 F3) is no event for any reader of the events topic.

Pure: the worker's decode, the clock's idle test, ``train --from-topic``'s collector and the
repair copy's filter, each given a mark between two events. The end-to-end case (a topic reset
writes one mark a partition, a rebuild after a Redis loss reports it) is in tests/test_broker_loss.py.
"""

from __future__ import annotations

import io

from models.events import Event
from streams.publisher import event_value
from streams.worker.clock import PartitionClock
from streams.worker.codec import Decoder
from streams.worker.gap import gap_mark
from streams.worker.phases import decode_batch, reaches_clock
from streams.worker.repair_copy import kept_lines
from streams.worker.retained import Collector
from tests.harness import Rec

START_MS = 1_767_225_600_000
WALL_MS = START_MS + 30 * 86_400_000


def _records() -> list[Rec]:
    a, b = (Event("u1", START_MS + i * 60_000, "view", f"e{i}") for i in range(2))
    key, value, headers = gap_mark(0, WALL_MS, START_MS)
    return [Rec(0, b"u1", event_value(a)), Rec(1, key, value, headers=headers), Rec(2, b"u1", event_value(b))]


def test_the_worker_notes_the_mark_and_applies_only_the_events() -> None:
    out = decode_batch({0: _records()}, {0: PartitionClock(3_600_000)}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
    assert [e.event_id for e in out.users["u1"].events] == ["e0", "e1"]
    assert out.rejected == {} and out.dlq == []
    assert out.gaps == {0: (1, WALL_MS)}
    assert out.marks == {} and out.accounts == [], "no account watermark mark, no copy: accounts stay off"
    assert out.consumed == 3 and out.last_offset == {0: 2}, "the mark counts as read: the progress passes it"


def test_the_mark_alone_does_not_reach_the_clock() -> None:
    mark = _records()[1]
    assert not reaches_clock([mark]) and reaches_clock(_records())


def test_train_from_topic_skips_the_mark() -> None:
    collector = Collector(Decoder(), wall_now_ms=WALL_MS)
    for rec in _records():
        r = type("R", (), {})()
        r.partition, r.offset, r.key, r.value, r.headers = 0, rec.offset, rec.key, rec.value, rec.headers
        collector.add(r)
    out = collector.result()
    assert len(out.events) == 2 and out.copies == 1 and out.rejected == {}


def test_the_repair_copy_filter_drops_the_mark() -> None:
    lines = []
    for rec in _records():  # as kafka-console-consumer prints them: headers<TAB>key<TAB>value
        headers = ",".join(f"{k}:{v.decode()}" for k, v in rec.headers) or "NO_HEADERS"
        lines.append(f"{headers}\t{(rec.key or b'').decode()}\t{(rec.value or b'').decode()}\n")
    kept = list(kept_lines(lines, START_MS, Decoder(), WALL_MS))
    assert len(kept) == 2 and all(line.startswith("u1\t") for line in kept)
