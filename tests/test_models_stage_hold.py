"""A change from active to declining is told only once it has held for STAGE_HOLD_DAYS (models.engine;
QA10 F14: a daily user who skips two days is "declining", and most were back within two days)."""

from __future__ import annotations

import re

from models.engine import STAGE_HOLD_DAYS, Alert, advance, review_due_s
from models.events import Event
from models.lifecycle import declining_cause
from models.model import load_model
from models.scoring import assess
from models.state import DAY_S, STAGE_HELD

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = DAY_S * 1000
HOLD_MS = int(STAGE_HOLD_DAYS * DAY_MS)
MODEL = load_model()
END_MS = T0_MS + 90 * DAY_MS


def _daily(days: range, tag: str = "") -> list[Event]:
    """Two events a day (10:00 and 10:20 UTC) on ``days``."""
    out = []
    for d in days:
        t = T0_MS + d * DAY_MS + 10 * 3_600_000
        out += [Event("u", t, "view", f"v{tag}{d}"), Event("u", t + 1_200_000, "edit", f"e{tag}{d}")]
    return out


def _changes(alerts: list[Alert]) -> list[tuple[str | None, str, int]]:
    return [(a.previous_stage, a.scores.stage, a.event_time_ms) for a in alerts if a.kind == "stage_changed"]


def _declining_from_ms(events: list[Event]) -> int:
    """The first second after the last event at which the lifecycle says declining (stage only, no alert)."""
    st = advance("u", None, events, events[-1].ts_ms + 1, MODEL).state
    lo, hi = events[-1].ts_ms // 1000, events[-1].ts_ms // 1000 + 10 * DAY_S
    assert assess(st, hi, MODEL).stage == "declining"
    while hi - lo > 1:  # silence only moves an active user towards declining: bisect on the stage
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if assess(st, mid, MODEL).stage == "declining" else (mid, hi)
    return hi * 1000


def test_a_declining_spell_shorter_than_the_hold_is_not_told() -> None:
    before = _daily(range(30))
    declining_ms = _declining_from_ms(before)
    back_ms = declining_ms + HOLD_MS // 2
    back = [Event("u", back_ms, "view", "back")] + _daily(range((back_ms - T0_MS) // DAY_MS + 1, 50), "b")
    # the stage itself changed: declining in the middle of the silence, the flag held
    mid = advance("u", None, before, back_ms - 1, MODEL).state
    assert mid.stage == 2 and mid.flags & STAGE_HELD
    assert review_due_s(mid) == min(mid.next_review_s, mid.stage_since_s + HOLD_MS // 1000)  # the hold's end is due too
    alerts = advance("u", None, before + back, T0_MS + 49 * DAY_MS, MODEL).alerts
    assert [c for c in _changes(alerts) if {c[0], c[1]} == {"active", "declining"}] == []
    after = advance("u", None, before + back, T0_MS + 49 * DAY_MS, MODEL).state
    assert after.stage == 1 and not after.flags & STAGE_HELD


def test_a_declining_spell_is_told_when_the_hold_ends_and_the_next_change_follows() -> None:
    events = _daily(range(30))
    declining_ms = _declining_from_ms(events)
    out = advance("u", None, events, END_MS, MODEL)
    changes = [c for c in _changes(out.alerts) if c[2] > events[-1].ts_ms]
    assert changes[0] == ("active", "declining", declining_ms + HOLD_MS)
    told = [a for a in out.alerts if a.kind == "stage_changed" and a.event_time_ms == declining_ms + HOLD_MS][0]
    assert told.scores.reasons and "usual interval" in told.scores.reasons[0]
    assert [c[:2] for c in changes[1:]] == [("declining", "dormant"), ("dormant", "churned")]
    assert not out.state.flags & STAGE_HELD


def test_a_cancellation_during_the_hold_is_told_as_a_change_from_active() -> None:
    events = _daily(range(30))
    declining_ms = _declining_from_ms(events)
    cancel = Event("u", declining_ms + HOLD_MS // 4, "cancel", "c")
    out = advance("u", None, events + [cancel], END_MS, MODEL)
    changes = [c for c in _changes(out.alerts) if c[2] > events[-1].ts_ms]
    assert changes[0] == ("active", "churned", cancel.ts_ms // 1000 * 1000)
    assert all(c[1] != "declining" for c in changes)


def test_the_hold_does_not_depend_on_how_the_events_are_cut_or_when_the_user_is_looked_at() -> None:
    before = _daily(range(30))
    declining_ms = _declining_from_ms(before)
    returns = [Event("u", declining_ms + HOLD_MS + 6 * 3_600_000, "view", "late-return")]
    for events in (before, before + returns):
        whole = advance("u", None, events, END_MS, MODEL)
        for cut_ms in (declining_ms - 1000, declining_ms + 1000, declining_ms + HOLD_MS, declining_ms + HOLD_MS + 1000):
            first = advance("u", None, [e for e in events if e.ts_ms < cut_ms], cut_ms, MODEL)
            second = advance("u", first.state, [e for e in events if e.ts_ms >= cut_ms], END_MS, MODEL)
            assert [a.alert_id for a in first.alerts + second.alerts] == [a.alert_id for a in whole.alerts], cut_ms
            assert second.state.to_bytes() == whole.state.to_bytes()
        # as the worker sees it: stepped at each event and whenever review_due_s says (its due index)
        st, alerts, pending = None, [], list(events)
        now_ms = pending[0].ts_ms
        while now_ms < END_MS:
            batch = [e for e in pending if e.ts_ms <= now_ms]
            pending = pending[len(batch):]
            out = advance("u", st, batch, now_ms + 1, MODEL)
            st, alerts = out.state, alerts + out.alerts
            wake = [e.ts_ms for e in pending[:1]] + [review_due_s(st) * 1000, END_MS]
            now_ms = min(t for t in wake if t > now_ms)
        assert [a.alert_id for a in alerts] == [a.alert_id for a in whole.alerts]


def test_a_change_to_declining_says_first_the_test_the_lifecycle_made() -> None:
    """A user the rate test keeps in declining (its way out is above its way in) after a visit in
    the hold is told at the first review past it, their silence short and their decline under the
    risk's own line: the alert said only "risk 28% within 30 days from many small signs, none
    large" (31 such on simulate --seed 7). The rhythm of simulated user u000056 (days, events)."""
    days = [(0, 2), (2, 6), (5, 2), (9, 5), (13, 4), (15, 6), (16, 5), (17, 6), (18, 3), (22, 3), (25, 4), (27, 3), (29, 3),
            (35, 5), (39, 1)]
    events = [Event("u", T0_MS + d * DAY_MS + 10 * 3_600_000 + i * 300_000, "view", f"{d}.{i}") for d, n in days for i in range(n)]
    out = advance("u", None, events, T0_MS + 60 * DAY_MS, MODEL)
    told = [a for a in out.alerts if a.kind == "stage_changed" and a.scores.stage == "declining"]
    assert [a.previous_stage for a in told] == ["active"]
    alert = told[0]
    # the lifecycle's own test, at the alert's second, on the state the review saw
    st = advance("u", None, [e for e in events if e.ts_ms < alert.event_time_ms], alert.event_time_ms, MODEL).state
    a = assess(st, alert.event_time_ms // 1000, MODEL)
    assert a.stage == "declining" and declining_cause(st, a.signals, MODEL.compiled) == "rate"
    assert re.fullmatch(r"recent activity \(1-week decayed\) down \d+% against the user's 4-week baseline", alert.scores.reasons[0])
    assert not any("small signs" in r for r in alert.scores.reasons)
