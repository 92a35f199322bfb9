"""The records cap per cycle (streams/worker/batching.py), the latency settings' validation and
the latency benchmark's split of an alert's delay: pure, no broker."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.latency import BREAKDOWN, breakdown_rows, split_alert
from streams.settings import Settings, SettingsError
from streams.worker.batching import DRAIN_CYCLES, MIN_RECORDS, RecordCap
from streams.worker.pipeline import timing_header


def test_no_cap_until_a_cycle_was_measured_nor_when_switched_off() -> None:
    assert RecordCap(50, 10_000).limit(0) == 10_000
    off = RecordCap(0, 10_000)
    off.observe(5_000, 10.0)
    assert off.limit(0) == 10_000


def test_the_cap_is_the_target_over_the_measured_time_per_record() -> None:
    cap = RecordCap(50, 10_000)
    cap.observe(2_000, 0.040)  # 20 us a record: 50 ms hold 2,500
    assert cap.cap == 2_500 and cap.limit(0) == 2_500


def test_small_cycles_are_not_taken_as_the_cost_of_a_record() -> None:
    cap = RecordCap(50, 10_000)
    cap.observe(10, 0.030)  # a 10-record cycle is its fixed costs
    assert cap.limit(0) == 10_000


def test_a_deep_backlog_is_drained_in_full_batches() -> None:
    cap = RecordCap(50, 10_000)
    cap.observe(2_000, 0.040)
    assert cap.limit(DRAIN_CYCLES * 2_500) == 2_500
    assert cap.limit(DRAIN_CYCLES * 2_500 + 1) == 10_000


@given(st.integers(0, 500), st.integers(1, 50_000), st.lists(st.tuples(st.integers(0, 20_000), st.floats(0, 5)), max_size=20),
       st.integers(0, 10**6))
def test_the_limit_stays_within_its_bounds(target_ms: int, max_records: int, cycles: list[tuple[int, float]], backlog: int) -> None:
    cap = RecordCap(target_ms, max_records)
    for n, seconds in cycles:
        cap.observe(n, seconds)
    assert min(MIN_RECORDS, max_records) <= cap.limit(backlog) <= max_records


def test_bad_latency_settings_are_one_readable_line() -> None:
    with pytest.raises(SettingsError, match="batch_target_ms must be 0"):
        Settings(batch_target_ms=-1)
    with pytest.raises(SettingsError, match="fetch_max_wait_ms must be between 1 and 60000 ms"):
        Settings(fetch_max_wait_ms=0)
    with pytest.raises(SettingsError, match="CHURNWATCH_BATCH_TARGET_MS"):
        Settings.from_env({"CHURNWATCH_BATCH_TARGET_MS": "soon"})
    assert Settings.from_env({"CHURNWATCH_BATCH_TARGET_MS": "0"}).batch_target_ms == 0


def test_the_group_session_is_a_setting_of_at_least_a_second() -> None:
    """6 s unless set (the fault tests set 3 s on Tansu, where it paces every join); below a
    second the heartbeats (a third of it) leave a busy worker no time before it looks dead."""
    assert Settings().session_timeout_ms == 6_000
    assert Settings.from_env({"CHURNWATCH_SESSION_TIMEOUT_MS": "3s"}).session_timeout_ms == 3_000
    with pytest.raises(SettingsError, match="session_timeout_ms must be at least 1000 ms"):
        Settings(session_timeout_ms=500)


@given(st.lists(st.floats(0, 1e4), min_size=7, max_size=7))
def test_an_alerts_parts_add_up_to_its_delay(times: list[float]) -> None:
    sent, acked, asked, fetched, scored, created, received = [float(int(t)) for t in times]
    parts = split_alert(sent, acked, timing_header(int(asked), int(fetched), int(scored)), created, received)
    assert len(parts) == len(BREAKDOWN) and math.isclose(sum(parts), received - sent, abs_tol=1e-6)


def test_the_breakdown_reports_the_median_and_the_tail_apart() -> None:
    parts = [(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)] * 99 + [(10.0, 20.0, 30.0, 40.0, 50.0, 60.0), (math.nan,) * 6]
    rows = breakdown_rows(parts, [21.0] * 99 + [210.0, 500.0])
    assert rows["median_ms"] == "1.0 / 2.0 / 3.0 / 4.0 / 5.0 / 6.0"
    assert rows["mean_of_1_at_or_above_p99_ms"] == "10.0 / 20.0 / 30.0 / 40.0 / 50.0 / 60.0"
