"""One event far ahead of its partition's stream time (QA7 H4): counted and logged, nothing else changed.

A backfill with one row dated "now", or live producers publishing while a history is published
into the same topic: the one event moves its partition's stream time to "now" (stream time is the
largest event time seen, as in Kafka Streams), and the partition's history read after it is
``late``. The worker does not refuse or hold the event (docs/ARCHITECTURE.md "Time" says why); it
counts it in ``churnwatch_stream_time_jumps_total`` and logs one WARNING naming the partition, the
offset and both times, so an operator hears of it before the DLQ fills (docs/OPERATE.md
"Onboarding a product's history", ``ChurnwatchStreamTimeJumped``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from models.events import Event
from streams.publisher import event_value
from streams.worker.clock import JUMP_MARGIN_MS, NEVER, Jump, PartitionClock, jumps
from streams.worker.codec import Decoder
from streams.worker.phases import Decoding, decode_batch
from tests.harness import Rec, metric, partition_of, publish_events, wait_for, wait_progress

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
START_MS = 1_785_542_400_000  # 2026-08-01
WALL_MS = START_MS + 120 * DAY_MS
LATENESS_MS = 6 * HOUR_MS
BOUND_MS = LATENESS_MS + JUMP_MARGIN_MS




def _history() -> list[Event]:
    """48 hourly events of one user, and at the 25th place one event of another user 60 days ahead."""
    evs = [Event("u", START_MS + i * HOUR_MS, "view", f"u{i}") for i in range(48)]
    evs.insert(24, Event("v", START_MS + 60 * DAY_MS, "view", "now"))
    return evs


def _records(evs: list[Event]) -> list[Rec]:
    return [Rec(i, ev.user_id.encode(), event_value(ev)) for i, ev in enumerate(evs)]


def test_the_event_that_jumps_is_found_whichever_path_and_slicing_reads_it() -> None:
    """Plain events (the compiled grouping) and an event for an account (read the general way),
    fed whole or one record a slice: the same one jump, and the same clock as without detection."""
    evs = _history()
    ahead = evs[24]
    for event in (ahead, Event("v", ahead.ts_ms, "view", "now", account_id="acme")):
        recs = _records(evs[:24] + [event] + evs[25:])
        whole = decode_batch({5: recs}, {5: PartitionClock(LATENESS_MS)}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        clock = PartitionClock(LATENESS_MS)
        sliced = Decoding({5: clock}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        for rec in recs:
            sliced.feed(5, [rec])
        expected = [Jump(5, 24, START_MS + 23 * HOUR_MS, ahead.ts_ms)]
        assert whole.jumps == expected and sliced.result().jumps == expected
        assert whole.rejected == {"late": 24} and clock.stream_ms == ahead.ts_ms, "the clock itself is unchanged: H4 stays"


def test_a_steady_history_and_a_quiet_partition_that_borrowed_the_topic_clock_do_not_jump() -> None:
    # 2.5-day gaps, then a quiet week (the product's holiday): no jump
    steady = [Event("u", START_MS + i * 60 * HOUR_MS, "view", f"u{i}") for i in range(20)]
    steady.append(Event("u", steady[-1].ts_ms + 7 * DAY_MS, "view", "after"))
    assert decode_batch({0: _records(steady)}, {0: PartitionClock(LATENESS_MS)}, Decoder(), WALL_MS, topic="ev",
                        max_dlq_value_bytes=1024).jumps == []
    quiet = PartitionClock(LATENESS_MS, stream_ms=START_MS, floor_ms=START_MS + 30 * DAY_MS - LATENESS_MS)  # borrowed S_all
    back = [Event("u", START_MS + 30 * DAY_MS + HOUR_MS, "view", "back")]
    assert decode_batch({0: _records(back)}, {0: quiet}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024).jumps == []
    assert jumps(0, NEVER, [(START_MS, 0), (START_MS + BOUND_MS + 1, 1)], BOUND_MS) == [Jump(0, 1, START_MS, START_MS + BOUND_MS + 1)]
    assert jumps(0, START_MS, [(START_MS + BOUND_MS, 0)], BOUND_MS) == [], "the bound itself is no jump"


def test_the_warning_shows_each_partitions_largest_jump_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    """A history's sparse start jumps too (QA7's simulation: gaps of days); the line must show the
    jump that matters, and a partition's lines must not hide another partition's."""
    from streams.worker.pipeline import JumpWarnings

    small, big = Jump(3, 8, START_MS, START_MS + 8 * DAY_MS), Jump(3, 175, START_MS + 13 * DAY_MS, START_MS + 124 * DAY_MS)
    warnings = JumpWarnings("ev")
    with caplog.at_level(logging.WARNING, logger="streams.worker.pipeline"):
        warnings.report([small, big, Jump(1, 4, START_MS, START_MS + 9 * DAY_MS)], WALL_MS)
        warnings.report([Jump(3, 300, START_MS + 124 * DAY_MS, START_MS + 133 * DAY_MS)], WALL_MS + 59_000)
        warnings.report([Jump(3, 400, START_MS + 133 * DAY_MS, START_MS + 142 * DAY_MS)], WALL_MS + 60_000)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":", 1)[0] for line in lines] == ["ev[1]", "ev[3]", "ev[3]"]
    assert "offset 175 moved the partition's stream time from 2026-08-14T00:00:00.000Z to 2026-12-03T00:00:00.000Z (111.0 days" in lines[1]
    assert "(1 smaller or later jump(s)" in lines[1] and "offset 400" in lines[2] and "(1 smaller or later jump(s)" in lines[2]


@pytest.mark.integration
def test_a_worker_counts_and_logs_an_event_far_ahead_of_its_partition(kafka_bootstrap: str, redis_url: str, tmp_path: Path,
                                                                       unique_name: str) -> None:
    """Real broker, Redis and ``churnwatch worker``: the counter is 1 and the WARNING names the
    partition, the offset and both times; the history after the jump is ``late`` as before."""
    from tests.test_faults import Run

    other = next(f"v{i}" for i in range(1000) if partition_of(f"v{i}", 8) == partition_of("u", 8))
    evs = [Event(other if ev.user_id == "v" else ev.user_id, ev.ts_ms, ev.type, ev.event_id) for ev in _history()]
    run = Run(kafka_bootstrap, redis_url, tmp_path, unique_name)
    try:
        last = publish_events(kafka_bootstrap, run.topics["events"], evs)
        (p, offset), = last.items()
        w = run.worker()
        wait_progress(redis_url, run.topics["events"], last, 60, run.workers, prefix=run.prefix)
        wait_for("the jump counted", lambda: metric(w, "churnwatch_stream_time_jumps_total") == 1, 20, (w,))
        assert metric(w, "churnwatch_events_rejected_total", 'reason="late"') == 24
        assert metric(w, "churnwatch_events_far_behind_total") == 24, "59 days behind: the mirror signal counts them too"
        assert metric(w, "churnwatch_stream_time_last_jump_timestamp_seconds") > time.time() - 600, "the alert's gauge is set"
        line = f"{run.topics['events']}[{p}]: the event at offset {offset - 24} moved the partition's stream time from " \
               "2026-08-01T23:00:00.000Z to 2026-09-30T00:00:00.000Z (59.0 days ahead)"
        wait_for("the WARNING", lambda: line in w.output(), 20, (w,))
        assert sum("moved the partition's stream time" in ln for ln in w.output().splitlines()) == 1
    finally:
        run.stop()


def test_a_quiet_partition_does_not_jump_after_a_restart_but_a_history_restarted_mid_way_still_does() -> None:
    """Review 10 B4: the borrowed floor is not stored, so a new owner seeds the jump base from the
    topic's clock (the stored ``S_all``; the wall clock in live mode) until p's stream time moves."""
    from streams.worker.clock import TopicClock

    back = _records([Event("u", START_MS + 30 * DAY_MS + HOUR_MS, "view", "back")])
    for mode, wall in (("event", WALL_MS), ("live", START_MS + 30 * DAY_MS)):
        topic = TopicClock(LATENESS_MS, 0, mode)  # type: ignore[arg-type]
        if mode == "event":
            topic.observe_global(START_MS + 30 * DAY_MS)  # another partition's stored progress
        clock = topic.assign(0, START_MS, wall)  # p quiet for 30 days, owned anew
        out = decode_batch({0: back}, {0: clock}, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
        assert out.jumps == [] and out.rejected == {}, mode
    # H4 restarted mid-history: the history moves S_p first, so the live event after it still jumps
    topic = TopicClock(LATENESS_MS, 0)
    topic.observe_global(START_MS + 60 * DAY_MS)
    evs = _history()[10:]  # from hour 10 on; S_p stored at hour 9
    out = decode_batch({5: _records(evs)}, {5: topic.assign(5, START_MS + 9 * HOUR_MS, WALL_MS)}, Decoder(), WALL_MS, topic="ev",
                       max_dlq_value_bytes=1024)
    assert out.jumps == [Jump(5, 14, START_MS + 23 * HOUR_MS, START_MS + 60 * DAY_MS)]


def test_a_history_published_after_live_events_is_counted_far_behind_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Review 10 B2: live events first set the partition's time, so the history after them jumps
    nothing; its late events more than the bound behind are counted apart (whichever path reads
    them) and named once a minute. Late events within the bound are not."""
    from streams.worker.pipeline import JumpWarnings

    live = [Event("v", WALL_MS + i * 1000, "view", f"live{i}") for i in range(3)]
    history = [Event("u", START_MS + i * HOUR_MS, "view", f"h{i}", account_id="acme" if i % 2 else "") for i in range(50)]
    near = [Event("u", WALL_MS - LATENESS_MS - DAY_MS, "view", "near")]  # late, but a day only
    out = decode_batch({2: _records(live + history + near)}, {2: PartitionClock(LATENESS_MS)}, Decoder(), WALL_MS, topic="ev",
                       max_dlq_value_bytes=1024)
    assert out.jumps == [] and out.rejected == {"late": 51}
    assert out.behind == {2: [50, 3, START_MS, WALL_MS + 2000]}
    warnings = JumpWarnings("ev")
    with caplog.at_level(logging.WARNING, logger="streams.worker.pipeline"):
        warnings.report_behind(out.behind, WALL_MS)
        warnings.report_behind({2: [7, 90, START_MS, WALL_MS]}, WALL_MS + 30_000)
        warnings.report_behind({2: [1, 95, START_MS, WALL_MS]}, WALL_MS + 60_000)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("ev[2]: 50 event(s) went to the DLQ as late more than a week behind")
    assert "the first at offset 3: 2026-08-01T00:00:00.000Z, behind 2026-11-29T00:00:02.000Z (120.0 days)" in lines[0]
    assert lines[1].startswith("ev[2]: 8 event(s)")


def test_the_repair_copy_leaves_out_the_history_before_t0_and_churnwatchs_own_records() -> None:
    """Review 10 B1: step 3 of "Repair after the clock jumped" copied the history published into
    the old topic a second time (it has no ``churnwatch-*`` header). The filter keeps only events
    at or after the step-2 cut T0 (ISO or ms, read as the worker reads ``ts``) and non-events."""
    import io

    from streams.worker.repair_copy import main

    t0 = START_MS + 30 * DAY_MS
    lines = [f"NO_HEADERS\t{ev.user_id}\t{event_value(ev).decode()}\n" for ev in
             (Event("u", START_MS, "view", "hist"), Event("u", t0 - 1, "view", "hist2"), Event("v", t0, "view", "live"))]
    lines += ["churnwatch-reroute:5:9\tv\t" + event_value(Event("v", t0 + 5, "view", "copy")).decode() + "\n", "NO_HEADERS\tw\t{oops\n"]
    for arg in (str(t0), "2026-08-31T00:00:00Z"):
        out = io.StringIO()
        assert main([arg], io.StringIO("".join(lines)), out) == 0
        assert out.getvalue() == lines[2].split("\t", 1)[1] + "w\t{oops\n", arg
