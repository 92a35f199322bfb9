"""Active days are visit days: a session across midnight UTC is one active day (QA pass 10 F10).

Before, a day was the event's UTC date, so a user whose 40-minute session every 3 days ran from
23:40 to 00:10 UTC had two active days a visit: a usual interval of 1.6 days instead of 3.2, and
after the same silence a risk of 0.60 instead of 0.44 (models/state.py ``_count_visit_day``).
Here the same behaviour at another hour must give the same state, shifted, and the same scores
at the same silence; and visits a day or more apart count one day each wherever they fall.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import Event
from models.model import load_model
from models.scoring import score
from models.signals import compute_signals
from models.state import DAY_S, SESSION_S, VISIT_CONTINUED, UserState, apply_event

DAY_MS = DAY_S * 1000
MIN_MS = 60_000
SEP_1_MS = 1_788_220_800_000  # 2026-09-01T00:00:00Z
MODEL = load_model()


def _visits(user: str, starts_ms: list[int], offsets_min: tuple[int, ...] = (0, 10, 20, 30)) -> list[Event]:
    """One session per start: a login, then notes, ``offsets_min`` minutes after the start."""
    out = []
    for v, start in enumerate(starts_ms):
        for i, off in enumerate(offsets_min):
            out.append(Event(user, start + off * MIN_MS, "login" if i == 0 else "note_created", f"{user}-{v}-{i}"))
    return out


def _every_third_day(user: str, hour: int, minute: int) -> list[Event]:
    """QA's repro (/work/qa/qa10/tz_users.csv): a 40-minute session every 3 days, 09-01 to 10-28."""
    return _visits(user, [SEP_1_MS + d * DAY_MS + (hour * 60 + minute) * MIN_MS for d in range(0, 58, 3)])


def _shifted(a: UserState, b: UserState, shift_s: int) -> None:
    """``b`` is ``a`` with every time ``shift_s`` later (and every other field equal)."""
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if f.name.endswith("_s") and va:
            assert vb == va + shift_s, f.name
        elif f.name == "flags":  # the later one's last visit ran past midnight: flagged (VISIT_CONTINUED)
            assert vb & ~VISIT_CONTINUED == va & ~VISIT_CONTINUED
        elif isinstance(va, float):
            assert vb == pytest.approx(va, rel=1e-6), f.name
        else:
            assert vb == va, f.name


def test_a_session_across_midnight_scores_as_the_same_session_at_noon() -> None:
    """QA's two users: equal active days, usual and recent intervals, and at the same silence
    equal risk, health and temperature; the same alerts, 11 hours later."""
    shift_ms = 11 * 3_600_000  # 12:40 -> 23:40
    noon, tokyo = _every_third_day("noon", 12, 40), _every_third_day("tokyo", 23, 40)
    assert [e.ts_ms + shift_ms for e in noon] == [e.ts_ms for e in tokyo]
    end_ms = SEP_1_MS + 68 * DAY_MS  # 2026-11-08
    a = advance("noon", None, noon, end_ms, MODEL)
    b = advance("tokyo", None, tokyo, end_ms + shift_ms, MODEL)
    assert a.state.active_days == b.state.active_days == len(noon) // 4
    _shifted(a.state, b.state, shift_ms // 1000)
    for days in (60, 64, 68):  # QA's as-of dates 10-31, 11-04, 11-08
        now_s = (SEP_1_MS + days * DAY_MS) // 1000
        sa, sb = score(a.state, now_s, MODEL), score(b.state, now_s + shift_ms // 1000, MODEL)
        assert sb.signals.visit_gap_days == pytest.approx(sa.signals.visit_gap_days, rel=1e-9)
        assert sb.signals.recent_gap_days == pytest.approx(sa.signals.recent_gap_days, rel=1e-6)
        assert (sb.risk, sb.health, sb.temperature) == pytest.approx((sa.risk, sa.health, sa.temperature), rel=1e-6)
        assert sb.stage == sa.stage and sb.reasons == _shifted_dates(sa.reasons, a.state.at_risk_since_s, shift_ms)
    assert [(x.kind, x.event_time_ms - shift_ms) for x in b.alerts] == [(x.kind, x.event_time_ms) for x in a.alerts]


def _shifted_dates(reasons: tuple[str, ...], opened_s: int, shift_ms: int) -> tuple[str, ...]:
    """``reasons`` as the user 11 hours later says them: an open alert's "since D" (QA24a F6) is the
    day that alert opened (``at_risk_since_s``), and the later user's opened 11 hours later, maybe
    the next day."""
    day = lambda s: datetime.fromtimestamp(s, timezone.utc).date().isoformat()  # noqa: E731
    return tuple(r.replace(f"since {day(opened_s)}", f"since {day(opened_s + shift_ms // 1000)}") for r in reasons)


@pytest.mark.parametrize("hour, minute", [(23, 40), (23, 59), (0, 0), (12, 40)])
def test_a_daily_visit_counts_one_day_a_day_at_any_hour(hour: int, minute: int) -> None:
    """Daily 40-minute sessions: one active day each, whatever the hour (the visit after a
    session that ran past midnight counts the day that session reached: ``VISIT_CONTINUED``)."""
    events = _visits("u", [SEP_1_MS + d * DAY_MS + (hour * 60 + minute) * MIN_MS for d in range(20)])
    s = UserState()
    for ev in events:
        apply_event(s, ev)
    assert s.active_days == 20
    assert compute_signals(s, s.last_seen_s, MODEL).recent_gap_days == 1.0  # never below a day


def test_a_visit_across_midnight_survives_the_record_and_a_batch_cut_at_midnight() -> None:
    """The flag is kept in the record (format 7): the visit's two halves in two steps through
    the stored bytes give the state of one step, and the next visit that day still counts."""
    events = _visits("u", [SEP_1_MS + (23 * 60 + 40) * MIN_MS, SEP_1_MS + DAY_MS + 12 * 3_600_000])
    midnight = SEP_1_MS + DAY_MS
    whole = advance("u", None, events, midnight + DAY_MS, MODEL).state
    first = advance("u", None, [e for e in events if e.ts_ms < midnight], midnight, MODEL).state
    raw = advance("u", UserState.from_bytes(first.to_bytes()), [e for e in events if e.ts_ms == midnight], midnight + 1, MODEL).state.to_bytes()
    mid = UserState.from_bytes(raw)
    assert raw[0] == 7 and mid.flags & VISIT_CONTINUED and mid.active_days == 1
    second = advance("u", mid, [e for e in events if e.ts_ms > midnight], midnight + DAY_MS, MODEL).state
    assert second == whole and whole.active_days == 2 and not whole.flags & VISIT_CONTINUED


def test_a_late_event_counts_no_day_and_continues_no_visit() -> None:
    """An event before ``last_seen_s`` (late, of an earlier batch) neither counts a day nor
    marks a visit continued: the state cannot tell which visit it belonged to."""
    s = UserState()
    apply_event(s, Event("u", SEP_1_MS + DAY_MS + 5 * MIN_MS, "login", "a"))  # 00:05
    apply_event(s, Event("u", SEP_1_MS + DAY_MS - 5 * MIN_MS, "login", "b"))  # 23:55 the day before, late
    assert (s.active_days, s.flags) == (1, 0)


@st.composite
def _sessions(draw: st.DrawFn) -> tuple[list[list[int]], int]:
    """Visits (event offsets in s, at most SESSION_S apart, a visit under 8 hours) whose starts are
    a day to 10 days apart, and a shift of the whole history (0 to a day, seconds)."""
    n = draw(st.integers(1, 12))
    t = SEP_1_MS // 1000 + draw(st.integers(0, DAY_S))
    visits = []
    for _ in range(n):
        start = t
        times = [start]
        for _ in range(draw(st.integers(0, 6))):
            nxt = times[-1] + draw(st.integers(0, SESSION_S))
            if nxt - start >= 8 * 3600:
                break
            times.append(nxt)
        visits.append(times)
        t = start + draw(st.integers(DAY_S, 10 * DAY_S))
    return visits, draw(st.integers(0, DAY_S))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_sessions())
def test_visits_a_day_apart_count_one_day_each_wherever_midnight_falls(case: tuple[list[list[int]], int]) -> None:
    """However the history is shifted against midnight UTC, each visit is one active day, and
    the state is the same state shifted (usual and recent intervals equal)."""
    visits, shift = case
    states = []
    for d in (0, shift):
        s = UserState()
        for v, times in enumerate(visits):
            for i, t in enumerate(times):
                apply_event(s, Event("u", (t + d) * 1000, "login", f"{v}-{i:02d}"))
        states.append(s)
    a, b = states
    assert a.active_days == b.active_days == len(visits)
    assert b.gap_ewma_days == pytest.approx(a.gap_ewma_days, rel=1e-6)
    assert (b.first_seen_s - a.first_seen_s, b.last_seen_s - a.last_seen_s) == (shift, shift)
