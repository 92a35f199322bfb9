"""Properties the scoring and the engine must keep for any history (hypothesis).

- order independence: events of one batch in any order give the same state and alerts;
- batching independence: advance(part 1 up to t) then advance(part 2) == advance(everything);
- monotonic decay: more silence never lowers risk nor raises health or temperature;
- bounds: health and temperature in [0, 100], risk in [0, 1];
- the state record round-trips exactly;
- the smart review schedule raises the same alerts as looking at the user every few minutes.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import engine
from models.engine import Outcome, advance
from models.events import EVENT_TYPES, Event
from models.model import ChurnModel
from models.scoring import risk_at, score
from models.state import DAY_S, STAGES, UserState, apply_event

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = DAY_S * 1000

# A trained-looking model: every silence weight > 0, population filled, purchase BG/NBD on.
MODEL = ChurnModel(
    risk_enter=0.3,
    risk_exit=0.2,
    bgnbd={"r": 2.4, "alpha": 50.0, "a": 0.1, "b": 1.0},
    population={
        "visit_gap_days": 3.0,
        "purchase_gap_days": 18.0,
        "visit_mbgnbd": {"r": 2.9, "alpha": 8.9, "a": 0.2, "b": 5.1},
        "act_28d": [6.0, 9.5, 12.9, 16.6, 21.0, 26.7, 34.0, 44.3, 62.5],
        "rfm_recency_days": [5.0, 12.0, 25.0, 60.0],
        "rfm_frequency": [1.0, 2.0, 4.0, 8.0],
        "rfm_monetary": [30.0, 80.0, 150.0, 400.0],
    },
)
MODELS = [ChurnModel(), MODEL]

_types = st.sampled_from(EVENT_TYPES)


@st.composite
def histories(draw: st.DrawFn, max_events: int = 40, span_days: int = 120) -> list[Event]:
    """One user's events: bursts of sessions with gaps, any types, purchases with amounts."""
    n = draw(st.integers(1, max_events))
    t = T0_MS + draw(st.integers(0, DAY_MS))
    out = []
    for i in range(n):
        t += draw(st.one_of(st.integers(0, 3_600_000), st.integers(0, 20 * DAY_MS)))
        if t > T0_MS + span_days * DAY_MS:
            break
        kind = draw(_types)
        amount = draw(st.floats(0.5, 500.0)) if kind == "purchase" else 0.0
        out.append(Event("u", t, kind, f"e{i:04d}", amount))
    return out


def _same_outcome(a: Outcome, b: Outcome) -> None:
    sa, sb = a.state, b.state
    for name in sa.__slots__:  # type: ignore[attr-defined]
        va, vb = getattr(sa, name), getattr(sb, name)
        if isinstance(va, float):
            assert va == pytest.approx(vb, rel=1e-9, abs=1e-12), name
        else:
            assert va == vb, name
    assert [(x.alert_id, x.kind, x.event_time_ms) for x in a.alerts] == [(x.alert_id, x.kind, x.event_time_ms) for x in b.alerts]
    for x, y in zip(a.alerts, b.alerts):
        assert x.scores.risk == pytest.approx(y.scores.risk, rel=1e-9, abs=1e-12)
        assert x.scores.stage == y.scores.stage
    assert a.expire == b.expire


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False), st.integers(0, 200), st.sampled_from(MODELS))
def test_order_within_a_batch_does_not_matter(events: list[Event], rnd: random.Random, extra_days: int, model: ChurnModel) -> None:
    until = events[-1].ts_ms + extra_days * DAY_MS
    shuffled = events[:]
    rnd.shuffle(shuffled)
    _same_outcome(advance("u", None, events, until, model), advance("u", None, shuffled, until, model))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data(), st.sampled_from(MODELS))
def test_batch_split_gives_the_same_state_and_alerts(events: list[Event], data: st.DataObject, model: ChurnModel) -> None:
    cut = data.draw(st.integers(0, len(events)))
    part1, part2 = events[:cut], events[cut:]
    end = events[-1].ts_ms + data.draw(st.integers(0, 120)) * DAY_MS
    # The first call's clock: anywhere from its last event to the next part's first (or the end).
    low = part1[-1].ts_ms if part1 else T0_MS
    high = part2[0].ts_ms if part2 else end
    mid = data.draw(st.integers(low, high))
    whole = advance("u", None, events, end, model)
    first = advance("u", None, part1, mid, model)
    second = advance("u", first.state, part2, end, model)
    first.alerts.extend(second.alerts)
    first.state, first.expire = second.state, second.expire
    _same_outcome(whole, first)


def _state_of(events: list[Event]) -> UserState:
    st_ = UserState()
    for ev in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        apply_event(st_, ev)
    return st_


@settings(max_examples=150, deadline=None)
@given(histories(), st.lists(st.floats(0.0, 400.0), min_size=2, max_size=8), st.sampled_from(MODELS),
       st.sampled_from(range(len(STAGES))), st.integers(0, 60))
def test_more_silence_never_lowers_risk_nor_raises_health_or_temperature(
    events: list[Event], silences: list[float], model: ChurnModel, stage: int, stage_age_days: int
) -> None:
    state = _state_of(events)
    state.stage = stage
    state.stage_since_s = max(state.last_seen_s - stage_age_days * DAY_S, 1)
    before = None
    for days in sorted(silences):
        now = state.last_seen_s + int(days * DAY_S)
        s = score(state, now, model)
        assert 0.0 <= s.health <= 100.0 and 0.0 <= s.temperature <= 100.0 and 0.0 <= s.risk <= 1.0
        assert all(math.isfinite(v) for v in (s.health, s.temperature, s.risk))
        assert s.risk == risk_at(state, now, model)
        if before is not None:
            assert s.risk >= before.risk - 1e-12
            assert s.health <= before.health + 1e-9
            assert s.temperature <= before.temperature + 1e-9
        before = s


@settings(max_examples=100, deadline=None)
@given(histories(), st.integers(0, 5), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_state_record_round_trips_exactly(events: list[Event], stage: int, since: int, review: int) -> None:
    state = _state_of(events)
    state.stage, state.stage_since_s, state.next_review_s, state.at_risk_since_s = stage, since, review, since
    raw = state.to_bytes()
    assert len(raw) <= 87 + 8 * 16 <= 256  # stays a listpack value on servers started with hash-max-listpack-value 256
    back = UserState.from_bytes(raw)
    assert back == state
    assert back.to_bytes() == raw


def _constant_sweep(events: list[Event], until_ms: int, model: ChurnModel, step_s: int) -> Outcome:
    """The same engine, but the user is reviewed every ``step_s`` while silent (the naive schedule)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(engine, "_next_review", lambda st_, now_s, model_, scores: now_s + step_s)
        return advance("u", None, events, until_ms, model)


def _lasting(changes: list, min_ms: int) -> list:  # type: ignore[type-arg]
    """Stage changes without the stages that lasted ``min_ms`` or less, merged where that leaves
    the same stage twice in a row."""
    out: list = []  # type: ignore[type-arg]
    for i, x in enumerate(changes):
        if i + 1 < len(changes) and changes[i + 1].event_time_ms - x.event_time_ms <= min_ms:
            continue
        if out and out[-1].scores.stage == x.scores.stage:
            continue
        out.append(x)
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=25, span_days=60), st.sampled_from(MODELS))
def test_smart_reviews_raise_the_alerts_a_constant_sweep_raises(events: list[Event], model: ChurnModel) -> None:
    """A silent user is reviewed at the next moment an alert can be due; reviewing every 3 hours
    instead must find the same alerts (per kind, in order), none of them earlier than the
    schedule's (up to the schedule's 60 s precision on crossings found by bisection)."""
    step_s = 3 * 3600
    until = events[-1].ts_ms + 100 * DAY_MS
    smart = advance("u", None, events, until, model)
    swept = _constant_sweep(events, until, model, step_s)
    for kind in ("stage_changed", "at_risk", "recovered"):
        a = [x for x in smart.alerts if x.kind == kind]
        b = [x for x in swept.alerts if x.kind == kind]
        if kind == "stage_changed":  # a stage shorter than the sweep's step can fall between two looks
            a, b = _lasting(a, step_s * 1000), _lasting(b, step_s * 1000)
            assert [x.scores.stage for x in a] == [x.scores.stage for x in b]
        assert len(a) == len(b), kind
        for x, y in zip(a, b):
            assert x.event_time_ms - 60_000 <= y.event_time_ms <= x.event_time_ms + step_s * 1000, kind
    assert smart.state.stage == swept.state.stage


@settings(max_examples=50, deadline=None)
@given(histories())
def test_copy_is_equal_and_independent(events: list[Event]) -> None:
    state = _state_of(events)
    twin = state.copy()
    assert twin == state and twin is not state
    twin.n_events += 1
    assert twin != state


def test_format_1_records_are_still_read() -> None:
    """Records written before the recent-interval field (114 bytes) load, with the lifetime
    average interval standing in for the recent one."""
    import struct

    v1 = struct.Struct("<BB9I3I8d")
    first, last, days = 1_000 * DAY_S, 1_030 * DAY_S, 11
    raw = v1.pack(1, 1, first, last, 0, 0, 0, first, 0, last + DAY_S, last, 40, days, 0, 0.1, 2.0, 8.0, 20.0, 5.0, 3.0, 0.0, 0.0)
    st_ = UserState.from_bytes(raw)
    assert (st_.first_seen_s, st_.last_seen_s, st_.active_days, st_.n_events, st_.stage) == (first, last, days, 40, 1)
    assert st_.gap_ewma_days == pytest.approx(30.0 / (days - 1))
    assert len(st_.to_bytes()) == 87 + 8 * 8  # read into format 3, 8 hashed kinds
    with pytest.raises(ValueError, match="not format v3"):
        UserState.from_bytes(raw[:-1])
