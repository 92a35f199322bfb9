"""Event-time rules of streams.worker.clock: lateness, review cutoffs, borrowing S_all, live mode."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.worker.clock import NEVER, PartitionClock, TopicClock

L = 10_000  # allowed lateness, ms


def test_stream_time_and_lateness() -> None:
    c = PartitionClock(L)
    assert c.admit(100_000) and c.stream_ms == 100_000
    assert c.admit(90_000), "exactly allowed_lateness behind is still on time"
    assert not c.admit(89_999)
    assert c.stream_ms == 100_000, "a late or older event never moves stream time"


def test_review_until_stops_one_second_before_the_cutoff() -> None:
    clock = TopicClock(L, idle_partition_ms=0)
    clock.assign(0, None, wall_now_ms=0)
    assert clock.review_until_ms(0, 0) is None, "no event time yet: no reviews"
    clock.partitions[0].admit(100_500)
    # cutoff 90_500 ms: an event at 90_500 (second 90) is still admitted, so reviews stop at second 89
    assert clock.review_until_ms(0, 0) == 89_000
    assert clock.partitions[0].floor_ms == 90_500


def test_caught_up_and_idle_partition_borrows_the_topic_clock() -> None:
    clock = TopicClock(L, idle_partition_ms=5_000)
    clock.assign(0, 50_000, wall_now_ms=1_000)
    clock.observe_global(200_000)
    clock.observe_fetch(0, delivered=0, caught_up=False, wall_now_ms=10_000)
    assert clock.cutoff_ms(0, 10_000) == 40_000, "unread records: own clock only"
    clock.observe_fetch(0, delivered=3, caught_up=True, wall_now_ms=10_000)
    assert clock.cutoff_ms(0, 12_000) == 40_000, "caught up but not idle long enough"
    assert clock.cutoff_ms(0, 15_000) == 190_000, "idle and caught up: max(S_p, S_all) - lateness"
    clock.review_until_ms(0, 15_000)
    assert not clock.partitions[0].admit(150_000), "below the applied review clock: late"
    assert clock.partitions[0].admit(190_000)


def test_live_mode_follows_the_wall_clock_when_idle() -> None:
    clock = TopicClock(L, idle_partition_ms=1_000, mode="live")
    clock.assign(3, 50_000, wall_now_ms=0)
    clock.observe_fetch(3, delivered=0, caught_up=True, wall_now_ms=0)
    assert clock.cutoff_ms(3, 500_000) == 490_000
    event = TopicClock(L, idle_partition_ms=1_000, mode="event")
    event.assign(3, 50_000, wall_now_ms=0)
    event.observe_fetch(3, delivered=0, caught_up=True, wall_now_ms=0)
    assert event.cutoff_ms(3, 500_000) == 40_000, "event mode never reads the wall clock"


def test_snapshot_restore_undoes_an_abandoned_batch() -> None:
    c = PartitionClock(L, stream_ms=1_000_000)
    snap = c.snapshot()
    c.admit(2_000_000)
    c.floor_ms = 1_990_000
    c.restore(snap)
    assert (c.stream_ms, c.floor_ms) == (1_000_000, NEVER)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="allowed_lateness_ms"):
        TopicClock(-1, 0)
    with pytest.raises(ValueError, match="idle_partition_ms"):
        TopicClock(0, -5)
    with pytest.raises(ValueError, match="clock mode"):
        TopicClock(0, 0, mode="wall")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**7), max_size=60), st.integers(min_value=1, max_value=10))
def test_decisions_do_not_depend_on_batch_boundaries(times: list[int], cut: int) -> None:
    """Folding in offset order: the same events give the same decisions however they are batched,
    as long as the review clock is only taken from the partition itself."""
    whole = TopicClock(L, 0)
    whole.assign(0, None, 0)
    decisions_whole = [whole.partitions[0].admit(t) for t in times]
    whole.review_until_ms(0, 0)
    pieces = TopicClock(L, 0)
    pieces.assign(0, None, 0)
    decisions_pieces: list[bool] = []
    for i in range(0, len(times), cut):
        decisions_pieces += [pieces.partitions[0].admit(t) for t in times[i:i + cut]]
        pieces.review_until_ms(0, 0)  # a cycle ends: reviews run up to the cutoff
    assert decisions_pieces == decisions_whole
    for t, ok in zip(times, decisions_whole):
        assert ok or t < max(times) - L
