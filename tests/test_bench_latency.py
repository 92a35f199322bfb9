"""The latency benchmark's load generator: which events it makes, and how it counts batches (no servers)."""

from __future__ import annotations

import collections
import re

import orjson
import pytest

from benchmarks.latency import CANCEL_AFTER_MS, CANCEL_EVERY, EVENT, BatchCounter, pick_event


def test_each_cancel_follows_its_users_view_by_at_least_the_wait() -> None:
    pending: collections.deque[tuple[str, float]] = collections.deque()
    seen: dict[str, list[tuple[str, float]]] = collections.defaultdict(list)
    cancels_at: list[int] = []
    for k in range(20_000):
        now = 1e12 + k * 0.25  # 4,000 events/s
        user, kind, timed = pick_event(k, "t", now, pending)
        seen[user].append((kind, now))
        assert timed == (kind == "cancel")
        if timed:
            cancels_at.append(k)
    assert cancels_at, "no cancel in 5 s of events"
    for k in cancels_at:
        assert k % CANCEL_EVERY == CANCEL_EVERY // 2
    timed_users = [u for u, evs in seen.items() if any(kind == "cancel" for kind, _ in evs)]
    assert len(timed_users) == len(cancels_at)  # one cancel per user: one alert each
    for user in timed_users:
        (view, t_view), (cancel, t_cancel) = seen[user]
        assert (view, cancel) == ("view", "cancel") and t_cancel - t_view >= CANCEL_AFTER_MS


def test_an_event_formats_to_the_object_the_worker_reads() -> None:
    value = EVENT % (b"l50", 7, b"lat-u123", b"view", 1_767_225_600_123, 1_767_225_600_123.456)
    assert orjson.loads(value) == {"event_id": "l50-7", "user_id": "lat-u123", "type": "view", "ts": 1_767_225_600_123,
                                   "properties": {"sent_ms": 1_767_225_600_123.456, "page": "/app/home"}}


def test_batches_are_summed_over_statistics_of_the_topic_only() -> None:
    counter = BatchCounter("events")
    for stats in ({"topics": {"events": {"batchcnt": {"cnt": 120}}, "other": {"batchcnt": {"cnt": 9}}}},
                  {"topics": {"events": {"batchcnt": {"cnt": 80}}}},
                  {"topics": {}}, {}):
        counter.update(orjson.dumps(stats).decode())
    assert counter.batches == 200


def test_the_generators_collector_is_tuned_as_the_workers_while_a_level_runs_and_restored_after() -> None:
    import gc

    from benchmarks.latency import quiet_gc

    before, frozen_by_others = gc.get_threshold(), gc.get_freeze_count() > 0
    gc.unfreeze()  # the case of this test: nothing frozen before (a console test's app froze its process)
    try:
        with quiet_gc():
            assert gc.get_threshold() == (1_000_000, 20, 100)  # streams.worker.service._tune_gc
            assert gc.get_freeze_count() > 0  # what was imported is out of every collection
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
    finally:
        if frozen_by_others:
            gc.freeze()


def test_the_generators_collector_stays_frozen_after_a_level_when_it_was_frozen_before() -> None:
    """``quiet_gc`` restores the collector it found: a caller's freeze is not undone by the level."""
    import gc

    from benchmarks.latency import quiet_gc

    before = gc.get_threshold()
    gc.set_threshold(1_000, 11, 12)
    gc.freeze()
    try:
        with quiet_gc():
            assert gc.get_threshold() == (1_000_000, 20, 100)
        assert gc.get_freeze_count() > 0, "the caller's objects are still out of every collection"
        assert gc.get_threshold() == (1_000, 11, 12)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_an_ab_variant_reads_its_name_and_settings_and_refuses_a_setting_without_value() -> None:
    from benchmarks.latency_ab import parse_variant

    assert parse_variant("base:") == ("base", {})
    assert parse_variant("r10:READER=10,CHURNWATCH_PREFETCH_DURING_HEAD=true") == (
        "r10", {"READER": "10", "CHURNWATCH_PREFETCH_DURING_HEAD": "true"})
    for bad in ("r10:READER", ":READER=10", "x:=3"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_variant(bad)
