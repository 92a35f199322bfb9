"""The product's declared peak season (``[calendar] peak``, ``ChurnModel.peak_calendar``; QA25b F2: a
marketplace's x2-3 Black Friday/Christmas made its January read as a fall against the 3-month rate on
131 of 150 healthy shops, cases open a median 63 days while they were back to normal).

A day inside a declared peak does not count in a user's 3-month baseline (``act_90d``): an event there
adds nothing to it and its clock stops (models.state.peak_s), so after the peak the baseline is the
level outside it. The 7-day and 4-week figures count every day. Without a peak every figure is as
before (tests/test_models_golden.py: the digests do not move).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.signals import compute_signals
from models.state import UserState, apply_event, apply_looked_up, peak_s
from streams.offline.replay import load_config
from tests.test_models_calendar import DAY_MS, PLAIN, _ms
from tests.test_models_properties import MODEL, _check_smart_reviews, histories

PEAK = ["11-15..12-31"]
PEAKED = ChurnModel(peak_calendar=PEAK)
PEAK_MODEL = MODEL.with_(peak_calendar=["01-20..02-20"])  # inside tests/test_models_properties' histories (from 2026-01-01)


def _seller(peak_factor: int) -> list[Event]:
    """Two events a day from 2025-02-01 (the baselines near their steady level) to 2026-01-25, ``peak_factor`` times as many from 11-15 to 12-31."""
    out, day, i = [], _ms(2, 1, 2025), 0
    while day < _ms(1, 26, 2026):
        n = 2 * (peak_factor if _ms(11, 15, 2025) <= day < _ms(1, 1, 2026) else 1)
        for k in range(n):
            out.append(Event("s", day + 8 * 3_600_000 + k * 1_800_000, "view", f"e{i}"))
            i += 1
        day += DAY_MS
    return out


def _fold(events: list[Event], model: ChurnModel) -> UserState:
    return advance("s", None, events, events[-1].ts_ms, model).state


def test_a_declared_peak_does_not_raise_the_baseline() -> None:
    """After a x3 peak the declared model's 3-month baseline is the steady seller's, not the peak's,
    and its 4-week rate against it reads steady; the undeclared one reads the peak as the level."""
    now = _ms(1, 25, 2026) // 1000 + 20 * 3600
    steady, peaked_plain, peaked_declared = (_fold(_seller(f), m) for f, m in ((1, PLAIN), (3, PLAIN), (3, PEAKED)))
    base = compute_signals(steady, now, PLAIN)
    plain = compute_signals(peaked_plain, now, PLAIN)
    declared = compute_signals(peaked_declared, now, PEAKED)
    assert declared.act_90d == pytest.approx(base.act_90d, rel=0.03)  # the level outside the peak
    assert plain.act_90d > 1.3 * base.act_90d  # the peak raised it
    assert declared.act_28d == plain.act_28d  # the 4-week figure counts every day
    assert declared.trend_long > plain.trend_long
    assert declared.trend_long == pytest.approx(base.trend_long * declared.act_28d / base.act_28d, rel=0.03)


def test_no_peak_declared_folds_as_before() -> None:
    events = _seller(3)
    assert _fold(events, PLAIN).to_bytes() == _fold(events, ChurnModel(peak_calendar=[])).to_bytes()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200 * 86_400), st.booleans()), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_peak_days_are_cut_out_of_the_baseline(times: list[tuple[int, bool]], rnd: random.Random) -> None:
    """Folding with a peak, in any order, gives the baseline of the events outside it folded on a clock
    that skips the peak's time (each event's off-peak age), up to float32 rounding; act_28d is the
    plain fold's."""
    t0 = _ms(10, 1, 2025) // 1000
    c = PEAKED.compiled
    events = [Event("u", (t0 + t) * 1000, "view", f"e{i}") for i, (t, _) in enumerate(times)]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    with_peak, plain, cut = UserState(), UserState(), UserState()
    for ev in shuffled:
        slot, role = PEAKED.compiled.vocabulary.lookup(ev.type)
        apply_looked_up(with_peak, ev, c.vocabulary, slot, role, c.peak_starts, c.peak_ends)
        apply_event(plain, ev, c.vocabulary)
    outside = [ev for ev in shuffled if not peak_s(c.peak_starts, c.peak_ends, ev.ts_ms // 1000, ev.ts_ms // 1000 + 1)]
    for ev in outside:  # the clock without the peak: each instant less the peak's seconds before it
        off = ev.ts_ms // 1000 - peak_s(c.peak_starts, c.peak_ends, 0, ev.ts_ms // 1000)
        apply_event(cut, Event("u", off * 1000, ev.type, ev.event_id), c.vocabulary)
    assert with_peak.act_28d == plain.act_28d
    if not outside:
        assert with_peak.act_90d == 0.0
        return
    # the two end on different last events: decay the cut fold to the peak fold's last instant
    last_off = with_peak.last_seen_s - peak_s(c.peak_starts, c.peak_ends, 0, with_peak.last_seen_s)
    expected = cut.act_90d * (2.718281828459045 ** (-(last_off - cut.last_seen_s) / (90 * 86_400)))
    assert with_peak.act_90d == pytest.approx(expected, rel=1e-5)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=25, span_days=60), st.randoms(use_true_random=False))
def test_smart_reviews_miss_nothing_with_a_peak(events: list[Event], rnd: random.Random) -> None:
    """The engine's review schedule (tests/test_models_properties) with a peak in the histories'
    span: the look ahead's baseline stops its clock there as compute_signals does."""
    _check_smart_reviews(events, PEAK_MODEL, rnd)


@pytest.mark.parametrize("ranges, line", [
    ("11-15..12-31", 'calendar.peak must be a list of ranges MM-DD..MM-DD (e.g. ["07-01..08-31", "12-20..01-04"]), got a str'),
    (["Black Friday"], "calendar.peak: peak 'Black Friday' is not a range MM-DD..MM-DD (e.g. 08-01..08-31; several separated by ';')"),
    (["11-15..12-32"], "calendar.peak: peak 11-15..12-32: '12-32' is no day of the year (MM-DD)"),
    (["08-01..12-31"], "calendar.peak: peak 08-01..12-31 is 153 days long: a peak period is at most 122 days"),
    (["11-15..12-31", "12-20..01-05"], "calendar.peak: peak 12-20..01-05 overlaps 11-15..12-31"),
])
def test_peak_errors_are_the_quiet_lines(ranges: object, line: str) -> None:
    with pytest.raises(ValueError) as exc:
        ChurnModel(peak_calendar=ranges)  # type: ignore[arg-type]
    assert str(exc.value) == line


def test_a_peak_may_not_share_a_day_with_a_quiet_period(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[calendar]\nquiet = ["01-01..01-31"]\npeak = ["11-15..01-05"]\n')
    with pytest.raises(ValueError) as exc:
        load_config(cfg)
    assert str(exc.value) == f"config {cfg}: calendar.peak: peak 11-15..01-05 overlaps quiet 01-01..01-31"
    cfg.write_text('[calendar]\nquiet = ["01-01..01-31"]\npeak = ["11-01..11-30", "12-01..12-31"]\n')
    config = load_config(cfg)
    assert config is not None and config.peak == ["11-01..11-30", "12-01..12-31"]  # touching ranges: no 2 weeks after


def test_the_model_file_keeps_the_peak_and_leaves_it_out_when_none() -> None:
    assert "peak_calendar" not in PLAIN.to_json()
    again = ChurnModel.from_json(PEAKED.to_json())
    assert again.peak_calendar == tuple(PEAK) and again.compiled.peak_starts == PEAKED.compiled.peak_starts
