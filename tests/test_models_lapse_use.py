"""Neither using nor buying (QA25a F3): a repeat buyer who also uses the product on a rhythm of their
own is lapsed once both rhythms say so, their use silent past rules 1-2's lines and their re-order
late, not held "declining" (on the save list) for 3 order intervals (models.lifecycle
uses_own_rhythm, lapse_gap_days; docs/SCORES.md "Neither using nor buying")."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import Event
from models.lifecycle import JUDGED, next_change_s, stage_of, uses_own_rhythm
from models.model import load_model
from models.ranking import daily_list
from models.scoring import assess
from models.signals import REORDER_LATE_FACTOR, compute_signals, order_gap_days
from models.state import DAY_S, STAGES, UserState, apply_event

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = DAY_S * 1000
MODEL = load_model()


def _sim(days: int, use_every: int, top_up_every: int, top_up_offset: int = 0) -> list[Event]:
    """A prepaid SIM: a call every ``use_every`` days at 15:00 and a top-up every ``top_up_every``
    days at 10:00 (from ``top_up_offset``), for ``days`` days, then nothing."""
    out = [Event("u", T0_MS + d * DAY_MS + 15 * 3_600_000, "call", f"c{d}") for d in range(0, days, use_every)]
    out += [Event("u", T0_MS + d * DAY_MS + 10 * 3_600_000, "purchase", f"p{d}", 10.0)
            for d in range(top_up_offset, days, top_up_every)]
    return sorted(out, key=lambda e: e.ts_ms)


def _shop(order_every: int, orders: int, browse_every: int) -> list[Event]:
    """A shop's buyer: an order every ``order_every`` days, a browsing visit every ``browse_every`` days."""
    days = order_every * (orders - 1) + 1
    out = [Event("u", T0_MS + d * DAY_MS + 15 * 3_600_000, "view", f"v{d}") for d in range(0, days, browse_every)]
    out += [Event("u", T0_MS + d * DAY_MS + 16 * 3_600_000, "purchase", f"p{d}", 40.0) for d in range(0, days, order_every)]
    return sorted(out, key=lambda e: e.ts_ms)


def _state(events: list[Event]) -> UserState:
    s = UserState()
    for ev in events:
        apply_event(s, ev)
    return s


def _stage_at(events: list[Event], silent_days: float) -> str:
    s = _state(events)
    return assess(s, s.last_seen_s + int(silent_days * DAY_S), MODEL).stage


def _changes(events: list[Event], days: int) -> list[tuple[float, str]]:
    """(days after the last event, new stage) of the stream's ``stage_changed`` alerts."""
    last = events[-1].ts_ms
    out = advance("u", None, events, last + days * DAY_MS, MODEL)
    return [(round((a.event_time_ms - last) / DAY_MS, 2), a.scores.stage) for a in out.alerts
            if a.kind == "stage_changed" and a.event_time_ms > last]


def test_a_daily_user_silent_past_their_use_and_their_top_up_is_lapsed_not_declining() -> None:
    """Calls daily, tops up every 15 days, stops both after 120 days (the last top-up on day 105).
    Silent 30 days: no call for 10 daily intervals and a top-up 45 days ago, 3 of their intervals:
    before, "declining" until 3 x 15 = 45 days of silence (the save list); now dormant from the
    dormancy line of their use, 21 days, their re-order being late by then (24 days after day 105)."""
    sim = _sim(120, 1, 15)
    s = _state(sim)
    sig = compute_signals(s, s.last_seen_s, MODEL)
    assert uses_own_rhythm(sig) and order_gap_days(sig) >= 14
    assert _stage_at(sim, 20) == "declining"
    assert _stage_at(sim, 30) == "dormant"
    assert _stage_at(sim, 45) == "churned"
    changes = _changes(sim, 60)
    assert [c for _, c in changes] == ["declining", "dormant", "churned"]
    assert changes[1][0] == 21.0  # the use's dormancy line: the top-up (day 105) was late from day 129


def test_the_top_up_rhythm_holds_a_user_whose_top_up_is_not_late_yet() -> None:
    """The same user whose last top-up came the day the calls stopped (day 119): at 21 days of
    silence the re-order (every 15 days, late at ln 5 x 15 = 24.1 days) is not late yet, so the
    user stays declining until it is, and lapses at that second, not 3 intervals later."""
    sim = _sim(120, 1, 17, top_up_offset=0)  # top-ups on days 0, 17, ..., 119
    s = _state(sim)
    sig = compute_signals(s, s.last_seen_s, MODEL)
    late = REORDER_LATE_FACTOR * order_gap_days(sig)
    assert s.last_purchase_s // DAY_S == s.last_seen_s // DAY_S and late > 21
    assert _stage_at(sim, 21.5) == "declining"
    changes = dict((c, t) for t, c in _changes(sim, 60))
    late_after_last = late - (s.last_seen_s - s.last_purchase_s) / DAY_S  # the top-up came at 10:00, the call at 15:00
    assert abs(changes["dormant"] - late_after_last) < 0.01


def test_a_buyer_seen_only_on_purchases_keeps_the_order_hold() -> None:
    """CDNOW's kind: purchases every 15 days, no other event. Dormant at 3 order intervals, as before."""
    cd = [e for e in _sim(120, 1, 15) if e.type == "purchase"]
    s = _state(cd)
    sig = compute_signals(s, s.last_seen_s, MODEL)
    assert not uses_own_rhythm(sig)
    hold = MODEL.dormant_factor * order_gap_days(sig)  # 3 x ~17 days (their 15 shrunk towards the prior's 30)
    assert hold > 45
    assert _stage_at(cd, 30) == _stage_at(cd, hold - 0.1) == "declining"
    assert _stage_at(cd, hold + 0.1) == "dormant"


def test_a_buyer_browsing_once_a_week_keeps_the_order_hold_and_the_re_order_alert() -> None:
    """QA12 F2's coffee buyer: orders every 42 days, a browsing visit every 6 days. Their use is not
    dense enough to say anything on its own (rule 5's several times a week): not lapsed before the
    re-order is late, and the re-order alert opens then."""
    shop = _shop(42, 4, 6)
    s = _state(shop)
    assert not uses_own_rhythm(compute_signals(s, s.last_seen_s, MODEL))
    assert _stage_at(shop, 30) == "declining"
    never_by_risk = MODEL.with_(risk_enter=0.9999, risk_exit=0.5)
    last = shop[-1].ts_ms
    at_risk = [a for a in advance("u", None, shop, last + 120 * DAY_MS, never_by_risk).alerts if a.kind == "at_risk" and a.event_time_ms > last]
    assert len(at_risk) == 1 and at_risk[0].scores.stage in JUDGED
    assert at_risk[0].scores.reasons[0].startswith("usual re-order every 42 days")


@settings(max_examples=40, deadline=None)
@given(use_every=st.integers(1, 3), top_up_every=st.integers(5, 40), offset=st.integers(0, 4),
       days=st.integers(60, 150), silent=st.floats(0.0, 120.0))
def test_a_user_silent_past_both_rhythms_is_never_on_the_save_list(use_every: int, top_up_every: int, offset: int, days: int,
                                                                   silent: float) -> None:
    """Property: a SIM used every 1-3 days and topped up every 5-40 days, silent for any time. Once
    its silence is past its use's dormancy line and its re-order is late, it is lapsed (not on the
    save list, whatever the budget, but on the win-back list); before either, it is not lapsed by
    silence; and the engine's next look (models.lifecycle.next_change_s) is the second the stage
    changes, so the stream tells it then."""
    sim = _sim(days, use_every, top_up_every, offset)
    s = _state(sim)
    now = s.last_seen_s + int(silent * DAY_S)
    sig = compute_signals(s, now, MODEL)
    if not uses_own_rhythm(sig):
        return
    stage = stage_of(s, sig, MODEL)
    past_use = sig.silence_days >= max(MODEL.dormant_days, MODEL.dormant_factor * sig.visit_gap_days)
    late = sig.purchase_silence_days >= REORDER_LATE_FACTOR * order_gap_days(sig)
    saved = [r.user_id for r in daily_list([("u", s)], now, MODEL, "save", share=1.0)]
    won = [r.user_id for r in daily_list([("u", s)], now, MODEL, "win_back", share=1.0)]
    if past_use and late:
        assert stage in ("dormant", "churned") and saved == [] and won == ["u"]
    elif sig.silence_days < MODEL.dormant_days or not late:
        assert stage not in ("dormant", "churned")
    # the stage's next change is exact: unchanged a second before it, changed at it
    s.stage, s.stage_since_s = STAGES.index(stage), now
    t = next_change_s(s, sig, MODEL)
    if t:
        assert stage_of(s, compute_signals(s, t - 1, MODEL), MODEL) == stage
