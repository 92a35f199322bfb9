"""Signals, health, temperature, lifecycle, actions and reasons on hand-built histories.

Expected values are derived in each test from the rule being tested (the usual interval, the
overdue factor, the thresholds), not copied from a run.
"""

from __future__ import annotations

import math

import pytest

from models.actions import recommend
from models._native import import_pure
from models.engine import advance
from models.events import Event
from models.health import percentile
from models.lifecycle import churned_after_days, dormant_after_days, next_change_s, stage_of
from models.model import ChurnModel, load_model
from models.reasons import MAX_REASONS
from models.scoring import assess, risk_after, risk_at, score
from models.signals import compute_signals, order_due_s, visit_gap_days
from models.state import DAY_S, STAGES, UserState, apply_event
from models.temperature import DEFAULT_VISIT_PARAMS
from models import bgnbd, mbgnbd
from models.bgnbd import BgNbdParams

T0 = 1_767_225_600  # 2026-01-01, seconds
MODEL = ChurnModel()


def _history(days: list[float], kind: str = "view", amount: float = 0.0, user: str = "u") -> list[Event]:
    return [Event(user, int((T0 + d * DAY_S) * 1000), kind, f"{kind}{i:04d}", amount) for i, d in enumerate(days)]


def _state(events: list[Event]) -> UserState:
    st = UserState()
    for ev in sorted(events, key=lambda e: (e.ts_ms, e.event_id)):
        apply_event(st, ev)
    return st


def test_usual_visit_interval_and_overdue_follow_the_users_own_rhythm() -> None:
    days = [3.0 * i for i in range(21)]  # every 3 days for 60 days
    st = _state(_history(days))
    prior = 7.0
    expected_gap = (60.0 + prior) / (20 + 1)  # shrunk by one interval towards the population's
    sig = compute_signals(st, T0 + int(68 * DAY_S), MODEL.with_(population={"visit_gap_days": prior}))
    assert sig.visit_gap_days == pytest.approx(expected_gap)
    assert sig.silence_days == pytest.approx(8.0)
    assert sig.visit_overdue == pytest.approx(8.0 / expected_gap)
    assert sig.recent_gap_days == pytest.approx(3.0)  # every completed interval was 3 days


def test_purchase_cadence_reorder_every_10_days_is_overdue_2_5x_at_25_days() -> None:
    orders = [10.0 * i for i in range(10)]  # re-orders every 10 days
    st = _state(_history(orders, "purchase", 20.0))
    now = T0 + int((90 + 25) * DAY_S)
    prior = 30.0
    sig = compute_signals(st, now, MODEL.with_(population={"purchase_gap_days": prior}))
    assert sig.purchase_x == 9 and sig.purchase_t_x == pytest.approx(90.0)
    usual = (90.0 + prior) / (9 + 1)
    assert sig.purchase_gap_days == pytest.approx(usual)
    assert sig.purchase_overdue == pytest.approx(25.0 / usual)
    # Without the population prior pulling it, the usual interval is the user's own 10 days.
    sig_own = compute_signals(st, now, MODEL.with_(population={"purchase_gap_days": 10.0}))
    assert sig_own.purchase_overdue == pytest.approx(2.5)
    weighs_orders = MODEL.with_(population={"purchase_gap_days": 10.0},
                                risk_weights={**MODEL.risk_weights, "purchase_overdue_log": 10.0})
    s = score(st, now, weighs_orders)
    assert s.reasons[0] == "usual re-order every 10 days, none for 25 days"
    # The shipped default weighs no re-order rhythm and has no BG/NBD fit of purchases, yet the same
    # buyer, late on a re-order (25 days against their usual max(10, (90 + 30) / 10) = 12: past
    # ln 5 x 12 = 19.3, models.signals.reorder_late), is told so first (QA12 F2; before, QA12 F9
    # found no re-order reason in the default's 41,584 backtest alerts of a shop).
    shipped = load_model()
    assert "purchase_overdue_log" not in shipped.risk_weights and shipped.bgnbd is None
    assert score(st, now, shipped).reasons[0] == "usual re-order every 12 days, none for 25 days"


def test_trend_reports_a_drop_against_the_4_week_baseline() -> None:
    # Ten events a day for 60 days, then one a day for two weeks: the 7-day rate fell to a fraction.
    evs = [Event("u", int((T0 + d * DAY_S + k * 60) * 1000), "view", f"a{d}-{k}") for d in range(60) for k in range(10)]
    evs += [Event("u", int((T0 + d * DAY_S) * 1000), "click", f"b{d}") for d in range(60, 74)]
    st = _state(evs)
    now = T0 + 74 * DAY_S
    sig = compute_signals(st, now, MODEL)
    assert 0.0 < sig.trend < 0.5
    s = score(st, now, MODEL)
    drop = round(100 * (1 - sig.trend))
    assert f"recent activity (1-week decayed) down {drop}% against the user's 4-week baseline" in s.reasons
    assert s.stage == "declining"  # a daily user whose rate halved
    assert s.action == "check_in"


def test_young_account_is_not_reported_as_growing() -> None:
    """Steady use from day one: the 4-week counter is young, not the activity rising."""
    st = _state(_history([0.5 * i for i in range(10)]))  # every 12 hours for 5 days
    sig = compute_signals(st, st.last_seen_s, MODEL)
    assert sig.trend == pytest.approx(1.0, abs=0.25)


@pytest.mark.parametrize("silence_days", [1, 5, 20, 40, 80])
def test_bounds_and_plain_words(silence_days: int) -> None:
    st = _state(_history([2.0 * i for i in range(30)]) + _history([10.0, 40.0], "purchase", 30.0))
    s = score(st, st.last_seen_s + silence_days * DAY_S, MODEL)
    assert 0 <= s.health <= 100 and 0 <= s.temperature <= 100 and 0 <= s.risk <= 1
    assert len(s.reasons) <= MAX_REASONS and all(isinstance(r, str) and r for r in s.reasons)


def test_health_ranks_users_against_the_population_deciles() -> None:
    edges = [float(v) for v in range(1, 10)]
    assert percentile(5.0, edges) == pytest.approx(0.5)
    assert percentile(0.0, edges) == 0.0 and percentile(1e9, edges) == 1.0
    busy = _state(_history([i / 4 for i in range(28 * 4)]))  # 4 visits a day for 4 weeks
    light = _state(_history([7.0 * i for i in range(5)]))
    model = MODEL.with_(population={"act_28d": [1, 2, 4, 8, 12, 20, 30, 50, 80]})
    h_busy = score(busy, busy.last_seen_s, model).health
    h_light = score(light, light.last_seen_s, model).health
    assert h_busy > h_light


def test_temperature_falls_faster_for_a_daily_user_than_for_a_weekly_one() -> None:
    daily = _state(_history([float(i) for i in range(60)]))
    weekly = _state(_history([7.0 * i for i in range(9)]))
    after = 10 * DAY_S
    t_daily = score(daily, daily.last_seen_s + after, MODEL).temperature
    t_weekly = score(weekly, weekly.last_seen_s + after, MODEL).temperature
    assert t_daily < t_weekly
    # Temperature of a non-buyer is the MBG/NBD P(an active day within the horizon) of its active
    # days: P(alive) times the chance that the next one falls within it.
    sig = compute_signals(daily, daily.last_seen_s + after, MODEL)
    args = (DEFAULT_VISIT_PARAMS, sig.active_days - 1, sig.tenure_days, sig.age_days)
    expected = mbgnbd.p_active_within(*args, MODEL.horizon_days)
    assert t_daily == pytest.approx(100 * expected)
    assert expected < mbgnbd.p_alive(*args)


def test_temperature_of_a_buyer_uses_bgnbd_when_the_model_has_it() -> None:
    from models import bgnbd
    from models.bgnbd import BgNbdParams

    params = {"r": 0.5, "alpha": 20.0, "a": 0.3, "b": 2.0}
    model = MODEL.with_(bgnbd=params)
    # Visits daily (warm by visits), re-ordered every 5 days, then stopped buying for 40 days.
    st = _state(_history([float(i) for i in range(100)]) + _history([5.0 * i for i in range(10)], "purchase", 10.0))
    s = score(st, st.last_seen_s, model)
    summary = bgnbd.summary_from_state(st, st.last_seen_s)
    assert summary is not None
    expected = bgnbd.p_buys_within(BgNbdParams(**params), summary.x, summary.t_x, summary.T, model.horizon_days)
    assert s.temperature == pytest.approx(100 * expected)
    assert s.temperature < model.action_temperature and s.health >= model.action_health
    assert s.action == "upsell"  # using the product, no longer paying: the quadrant of the number shown
    assert f"chance of buying again within 30 days: {s.temperature:.0f}% (BG/NBD on purchases)" in s.reasons
    # Without BG/NBD parameters the visit rhythm decides (the tested fallback).
    fallback = score(st, st.last_seen_s, MODEL)
    assert fallback.temperature > 50


def test_lifecycle_rules_in_order() -> None:
    model = MODEL
    days = [float(i) for i in range(40)]
    st = _state(_history(days))
    gap = visit_gap_days(st, 7.0)
    last = st.last_seen_s

    def stage(after_days: float) -> str:
        return stage_of(st, compute_signals(st, last + int(after_days * DAY_S), model), model)

    assert stage(0) == "active"
    assert stage(model.overdue_factor * gap + 0.01) == "declining"
    assert stage(dormant_after_days(gap, model)) == "dormant"
    assert stage(churned_after_days(gap, model)) == "churned"
    young = _state(_history([0.0, 1.0]))
    assert stage_of(young, compute_signals(young, young.last_seen_s, model), model) == "new"


def test_thresholds_are_personal_for_a_slow_rhythm() -> None:
    monthly = _state(_history([30.0 * i for i in range(6)]))
    gap = visit_gap_days(monthly, 7.0)
    assert dormant_after_days(gap, MODEL) == pytest.approx(MODEL.dormant_factor * gap)
    s = score(monthly, monthly.last_seen_s + 25 * DAY_S, MODEL)
    assert s.stage in ("active", "declining")  # 25 days is on schedule for a monthly user
    daily = _state(_history([float(i) for i in range(60)]))
    assert score(daily, daily.last_seen_s + 25 * DAY_S, MODEL).stage == "dormant"


def _cancelled_in_the_products_word(evs: list[Event]) -> None:
    """QA19 F10: a bank's closed account read "cancelled 97 days ago"; its one cancel name says it.
    Several names (the default's): the state keeps no name, "cancelled" as before."""
    bank = ChurnModel(roles={"cancel": ["account_closed"]})
    closed = Event("u", int((T0 + 30 * DAY_S) * 1000), "account_closed", "c1")
    out = advance("u", None, evs + [closed], closed.ts_ms + 1000, bank)
    assert [a.scores.reasons[0] for a in out.alerts if a.kind == "stage_changed"][-1] == "account_closed today"
    assert score(out.state, closed.ts_ms // 1000 + 97 * DAY_S, bank).reasons[0] == "account_closed 97 days ago"
    assert score(out.state, closed.ts_ms // 1000 + 97 * DAY_S, ChurnModel(roles={"cancel": ["account_closed", "bye"]})).reasons[0] \
        == "cancelled 97 days ago"


def test_cancel_is_churn_at_once_and_a_later_return_is_reactivation() -> None:
    evs = _history([float(i) for i in range(30)])
    cancel = Event("u", int((T0 + 30 * DAY_S) * 1000), "cancel", "c1")
    out = advance("u", None, evs + [cancel], cancel.ts_ms + 1000, MODEL)
    assert out.state.stage_name == "churned"
    changed = [a for a in out.alerts if a.kind == "stage_changed"]
    assert changed[-1].event_time_ms == cancel.ts_ms and changed[-1].scores.action == "win_back"
    assert changed[-1].scores.reasons[0] == "cancelled today"
    back = _history([35.0])
    later = advance("u", out.state, back, back[0].ts_ms + 1000, MODEL)
    _cancelled_in_the_products_word(evs)
    assert later.state.stage_name == "reactivated"
    assert [(a.previous_stage, a.scores.stage) for a in later.alerts if a.kind == "stage_changed"] == [("churned", "reactivated")]
    # Reactivated lasts new_days after the return, then the usual rules apply again.
    end = back[0].ts_ms + int((MODEL.new_days + 1) * DAY_S * 1000)
    final = advance("u", later.state, _history([35.0 + d for d in range(1, 16)]), end, MODEL)
    assert final.state.stage_name in ("active", "declining")


def test_a_standing_cancellation_has_temperature_0_until_the_user_comes_back() -> None:
    """QA 2026-12 (#7): every "-> churned: cancelled today" alert carried temperature 83-98, "the
    chance the user is back within 30 days", for users who had just said they were leaving. A
    cancellation is the dropout the rhythm models infer from silence, observed: their answer is
    P(alive) = 0 (models.temperature). Monotone: with the cancellation never above without it;
    no reason quotes a chance while it stands; a return on a later day ends it."""
    for model in (MODEL, ChurnModel(population={"visit_gap_days": 7.0})):
        evs = _history([float(i) for i in range(30)])
        cancel = Event("u", int((T0 + 30 * DAY_S) * 1000), "cancel", "c1")
        out = advance("u", None, evs + [cancel], cancel.ts_ms + 1000, model)
        told = [a for a in out.alerts if a.kind == "stage_changed" and a.scores.reasons[0] == "cancelled today"]
        assert told and told[-1].scores.temperature == 0.0 and told[-1].to_dict()["temperature"] == 0.0
        silent = advance("u", None, evs, cancel.ts_ms + 1000, model).state  # the same user, no cancellation
        for days in (0.0, 1.0, 10.0, 40.0):
            now = cancel.ts_ms // 1000 + int(days * DAY_S)
            s, without = score(out.state, now, model), score(silent, now, model)
            assert s.stage == "churned" and s.temperature == 0.0 <= without.temperature
            assert not any(r.startswith("chance of") for r in s.reasons), s.reasons
        assert score(silent, cancel.ts_ms // 1000, model).temperature > 80.0, "the rhythm alone said 'back soon'"
        back = advance("u", out.state, _history([32.0]), int((T0 + 32 * DAY_S) * 1000) + 1000, model).state
        assert back.stage_name == "reactivated" and score(back, back.last_seen_s, model).temperature > 0.0


def test_silence_until_churn_then_back_is_reactivated() -> None:
    evs = _history([float(i) for i in range(30)])
    st = advance("u", None, evs, evs[-1].ts_ms + 80 * DAY_S * 1000, MODEL).state
    assert st.stage_name == "churned"
    ret = _history([110.0])
    out = advance("u", st, ret, ret[0].ts_ms + 1, MODEL)
    assert out.state.stage_name == "reactivated"
    alert = [a for a in out.alerts if a.kind == "stage_changed"][0]
    assert alert.previous_stage == "churned"
    assert any(r.startswith("came back after") for r in alert.scores.reasons)


@pytest.mark.parametrize(
    "stage, health, temperature, buyer, expected",
    [
        ("churned", 90, 90, True, "win_back"),
        ("active", 20, 80, True, "educate"),
        ("declining", 20, 20, False, "check_in"),
        ("dormant", 10, 10, True, "check_in"),
        ("active", 80, 20, True, "upsell"),
        ("active", 80, 90, False, "upsell"),
        ("active", 80, 90, True, "none"),
        ("new", 20, 80, False, "onboard"),  # neither uses nor pays, early: help them to their first value
        ("new", 20, 20, True, "onboard"),  # bought once, not back: not paying either
        ("new", 20, 80, True, "onboard"),  # a new user who pays but does not use yet: onboarded (QA17 F6)
        ("new", 80, 20, False, "upsell"),  # found their value already: the money has to follow
        ("reactivated", 20, 20, False, "check_in"),  # onboarding is for the new only: they knew the product
        ("active", 20, 20, False, "check_in"),  # the "neither" corner past onboarding: ask why
        ("active", 20, 80, False, "check_in"),  # never bought: not paying, whatever the temperature
    ],
)
def test_actions_follow_the_quadrant(stage: str, health: float, temperature: float, buyer: bool, expected: str) -> None:
    assert recommend(stage, health, temperature, buyer, MODEL) == expected


@pytest.mark.parametrize("stage, health, temperature, buyer", [
    ("active", 80, 90, True), ("active", 80, 20, True), ("active", 80, 90, False), ("new", 80, 20, False),
])
def test_a_user_at_risk_is_never_told_none_or_upsell(stage: str, health: float, temperature: float, buyer: bool) -> None:
    # QA 2026-12: u000606 (risk 0.60, health 51, temperature 66) got an at-risk alert saying "none"
    assert recommend(stage, health, temperature, buyer, MODEL) in ("none", "upsell")
    assert recommend(stage, health, temperature, buyer, MODEL, True) == "check_in"


def _reorderer(period: int, orders: int = 10) -> tuple[UserState, float]:
    """A repeat buyer: an order every ``period`` days, a visit the day after each (they rarely
    browse), and the day of the last order."""
    days = [float(period * i) for i in range(orders)]
    return _state(_history(days, "purchase", 40.0) + _history([d + 1 for d in days])), days[-1]


@pytest.mark.parametrize("period", [42, 56])
def test_a_reorderer_on_schedule_uses_and_pays(period: int) -> None:
    # QA12 F7: a regular 42- or 56-day re-orderer got upsell ("does not pay") or educate ("does
    # not use") between two orders, never none; on schedule is "none" now
    # (declining by their visits, the stage still asks for a check-in: models.actions rule 4)
    st, last = _reorderer(period)
    told = []
    for after in (3, period // 2, period - 1):
        now = T0 + int((last + after) * DAY_S)
        s = score(st, now, MODEL)
        assert order_due_s(s.signals) > now, "their next order is not due yet"
        assert s.action == ("check_in" if s.stage in ("declining", "dormant") else "none"), (after, s)
        told.append(recommend(s.stage, s.health, s.temperature, True, MODEL))  # health and temperature alone
    # the quadrant alone said educate: the rarely browsing buyer "did not use"
    assert told == ["educate"] * 3


def test_an_overdue_reorderer_is_judged_by_the_quadrant_as_not_paying() -> None:
    # QA17 F6: overdue, their payment (the order) is late: the quadrant judges them as a buyer who does
    # not pay by the temperature, so a rarely browsing one is a check-in, never "educate"
    st, last = _reorderer(42)
    now = T0 + int((last + 50) * DAY_S)  # 8 days past their 42-day rhythm
    s = score(st, now, MODEL)
    assert order_due_s(s.signals) == 0
    assert s.action == recommend(s.stage, s.health, s.temperature, True, MODEL, overdue=True)
    assert s.action != "educate" and recommend(s.stage, s.health, 80.0, True, MODEL, overdue=True) != "educate"


def test_a_one_time_buyer_is_not_on_schedule() -> None:
    st = _state(_history([0.0], "purchase", 40.0) + _history([1.0, 2.0]))
    s = score(st, T0 + 5 * DAY_S, MODEL)
    assert order_due_s(s.signals) == 0  # no rhythm of their own: nothing is "due"
    assert s.action == recommend(s.stage, s.health, s.temperature, True, MODEL)


@pytest.mark.parametrize("stage", ["new", "active", "reactivated", "declining", "dormant"])
@pytest.mark.parametrize("health, temperature", [(80, 30), (20, 30), (20, 80), (80, 80)])
def test_on_schedule_never_says_upsell_or_educate_nor_none_at_risk(stage: str, health: float, temperature: float) -> None:
    # a "does not pay" or "does not use" move for a buyer on schedule is what QA12 F7 found wrong
    assert recommend(stage, health, temperature, True, MODEL, on_schedule=True) in ("none", "check_in")
    assert recommend(stage, health, temperature, True, MODEL, True, on_schedule=True) == "check_in"


def test_open_alert_turns_the_action_into_a_check_in_in_every_view() -> None:
    # the same user shows the same action in the alert, in score/top/console (purpose "scores"
    # with the alert open), and not in the recovered alert that closes it
    from models.scoring import assess, scores_from

    st = _state(_history([1.0 * i for i in range(40)]))
    now = st.last_seen_s + 3600
    a = assess(st, now, MODEL)
    quiet = scores_from(st, a, MODEL)
    assert quiet.action in ("none", "upsell"), quiet  # a healthy user: the quadrant's quiet corners
    assert scores_from(st, a, MODEL, "at_risk").action == quiet.action  # the purpose words the reasons only
    st.at_risk_since_s = now - 86_400
    assert scores_from(st, a, MODEL).action == "check_in"
    assert score(st, now, MODEL).action == "check_in"
    # an alert says whether the alert is open once it is told (models.engine), whatever its reasons support
    assert scores_from(st, a, MODEL, "at_risk", 1).action == "check_in"
    assert scores_from(st, a, MODEL, "recovered", 0).action == quiet.action
    assert scores_from(st, a, MODEL, "recovered", 1).action == "check_in"


def test_a_stage_for_the_better_while_the_alert_stays_open_tells_what_score_tells() -> None:
    # QA 2026-12: a user whose stage improves while the at-risk alert stays open got a
    # stage_changed alert scored as a recovery, "upsell", while `churnwatch score` (and top, the
    # console) said "check_in" for the same user at the same second
    model = ChurnModel(risk_exit=0.2)  # the alert closes only at 0.2: the return below leaves it open
    evs = [Event("u", (T0 + d * DAY_S + h * 3600) * 1000, "view", f"v{d:02d}{h}") for d in range(20) for h in (9, 10, 11)]
    # after 4 silent days, declining for longer than the hold of its change (a shorter spell is
    # told neither way, models.engine.STAGE_HOLD_DAYS): the first visit back leaves the 7-day rate
    # short of the way out of declining, the second one (a review: the alert is open) is out
    evs.append(Event("u", (T0 + 24 * DAY_S + 9 * 3600) * 1000, "view", "back1"))
    back = Event("u", (T0 + 24 * DAY_S + 10 * 3600) * 1000, "view", "back")
    before = advance("u", None, evs, back.ts_ms, model)
    assert before.state.at_risk_since_s and STAGES[before.state.stage] == "declining"
    out = advance("u", before.state, [back], back.ts_ms + 1, model)
    assert [(a.kind, a.previous_stage, a.scores.stage) for a in out.alerts] == [("stage_changed", "declining", "active")]
    assert out.state.at_risk_since_s == before.state.at_risk_since_s, "the at-risk alert stays open"
    s = out.alerts[0].scores
    assert s.risk > model.risk_exit
    assert recommend(s.stage, s.health, s.temperature, False, model) == "upsell"  # the quadrant, no alert open
    assert s.action == score(out.state, back.ts_ms // 1000, model).action == "check_in"


def _subscription(user: str, day: float, status: str, mrr_cents: int, account: str = "acme") -> Event:
    from models.subscription import Subscription
    sub = Subscription(status, "Pro", mrr_cents)  # type: ignore[arg-type]
    return Event(user, int((T0 + day * DAY_S) * 1000), "subscription", f"sub{day}", 0.0, account, sub)


def _member_history(user: str, days: list[float], account: str = "acme") -> list[Event]:
    """Two kinds of activity a day, every event naming ``account`` (QA pass 6's small.csv)."""
    return [Event(user, int((T0 + d * DAY_S + 600 * k) * 1000), kind, f"{kind}{i:04d}", 0.0, account)
            for i, d in enumerate(days) for k, kind in enumerate(("view", "click"))]


def test_a_paying_customer_is_never_told_upsell() -> None:
    # QA pass 6 M1: a1u1 held acme's subscription (100.00/month after a downgrade), a1u2 was a user
    # of acme: both daily users, both told "upsell" (only purchases counted as paying); a user with
    # neither, the same history, still is (the rule for a free user did not move)
    days = [1.0 * d for d in range(60)]
    now = T0 + 60 * DAY_S
    holder = advance("a1u1", None, [_subscription("a1u1", 0.0, "active", 30_000), _subscription("a1u1", 40.0, "active", 10_000),
                                    *_member_history("a1u1", days)], now * 1000, MODEL).state
    member = advance("a1u2", None, _member_history("a1u2", days), now * 1000, MODEL).state
    free = advance("p", None, _member_history("p", days, account=""), now * 1000, MODEL).state
    s_holder, s_member, s_free = score(holder, now, MODEL), score(member, now, MODEL), score(free, now, MODEL)
    assert s_holder.stage == s_member.stage == s_free.stage == "active" and s_free.health >= MODEL.action_health
    assert s_free.action == "upsell"  # uses the product, pays nothing, no company account
    assert (s_holder.action, s_member.action) == ("none", "none")
    assert (s_holder.risk, s_holder.reasons) == (s_free.risk, s_free.reasons)  # the action only: risk and reasons as before


def test_a_subscriber_who_stops_using_is_educated_until_the_subscription_ends() -> None:
    # QA pass 6 M1: b1 held beta's active subscription and stopped using the product: "check in",
    # never "educate" (paying but not using); once cancelled, no longer paying
    evs = [_subscription("b1", 0.0, "active", 10_000), *_member_history("b1", [1.0 * d for d in range(60)], account="beta")]
    cut = T0 + 75 * DAY_S  # 15 days silent: health under the cut
    st = advance("b1", None, evs, cut * 1000, MODEL).state
    s = score(st, cut, MODEL)
    assert s.health < MODEL.action_health and s.stage != "churned" and st.n_purchases == 0
    assert s.action == "educate"
    past_due = advance("b1", None, [*evs, _subscription("b1", 70.0, "past_due", 10_000)], cut * 1000, MODEL).state
    assert score(past_due, cut, MODEL).action == "educate"  # a failed payment is still a customer under contract
    cancelled = advance("b1", None, [*evs, _subscription("b1", 70.0, "cancelled", 0)], cut * 1000, MODEL).state
    assert score(cancelled, cut, MODEL).action != "educate"
    trial = advance("b1", None, [*evs[:1], _subscription("b1", 0.5, "trial", 0), *evs[1:]], cut * 1000, MODEL).state
    assert score(trial, cut, MODEL).action != "educate"  # a trial pays nothing


def test_a_paid_period_that_passed_unrenewed_pays_no_more_for_the_action() -> None:
    # QA25a F2: a prepaid bundle (active, 18.00, paid 30 days) that lapsed with no statement after
    # it told a dormant user, silent 47 days, "educate" (paying but not using). Paying reads the
    # period as the lifecycle does (models.signals.paid_period_runs); without a stated end, it pays.
    from models.subscription import Subscription
    use = _member_history("p1", [1.0 * d for d in range(60)], account="")
    for end_day, silent_days, pays in ((90.0, 15, True), (61.0, 30, False), (0.0, 30, True)):
        sub = Subscription("active", "data30", 1800, period_end_ms=int((T0 + end_day * DAY_S) * 1000) if end_day else 0)
        evs = [Event("p1", int((T0 + 31 * DAY_S) * 1000), "subscription", "s31", 0.0, "", sub), *use]
        cut = T0 + (60 + silent_days) * DAY_S
        s = score(advance("p1", None, evs, int(cut * 1000), MODEL).state, cut, MODEL)
        assert s.health < MODEL.action_health and s.stage != "churned", (end_day, silent_days, s)
        assert (s.action == "educate") == pays, (end_day, silent_days, s.stage, s.action)


def test_the_billing_flags_survive_the_record() -> None:
    # the flags are part of the state the worker stores (format 7), so the stream's later views say the same
    from models.state import ACCOUNT_MEMBER, PAYS_SUBSCRIPTION
    st = advance("a1u1", None, [_subscription("a1u1", 0.0, "active", 10_000), *_member_history("a1u1", [1.0, 2.0])],
                 int((T0 + 3 * DAY_S) * 1000), MODEL).state
    assert st.flags == PAYS_SUBSCRIPTION | ACCOUNT_MEMBER
    raw = st.to_bytes()
    assert raw[0] == 7 and raw[2] == st.flags and UserState.from_bytes(raw) == st
    st.flags = 0
    assert st.to_bytes()[0] == 4  # without flags (and period end), the record as before, byte for byte


def test_reasons_are_ranked_by_their_share_of_the_risk() -> None:
    st = _state(_history([1.0 * i for i in range(40)]))
    now = st.last_seen_s + 9 * DAY_S
    # Two models that differ only in which silence feature they weigh: the first reason follows.
    by_overdue = MODEL.with_(risk_weights={**MODEL.risk_weights, "visit_overdue_log": 5.0, "silence_log": 0.0, "decline": 0.0})
    by_decline = MODEL.with_(risk_weights={**MODEL.risk_weights, "visit_overdue_log": 0.0, "silence_log": 0.0, "decline": 50.0})
    assert score(st, now, by_overdue).reasons[0].startswith("no visit for")
    assert score(st, now, by_decline).reasons[0].startswith("recent activity (1-week decayed) down")


def test_risk_after_matches_a_fresh_assessment() -> None:
    st = _state(_history([1.5 * i for i in range(30)]) + _history([4.0, 20.0, 33.0], "purchase", 12.0))
    model = MODEL.with_(bgnbd={"r": 0.5, "alpha": 20.0, "a": 0.3, "b": 2.0})
    a = assess(st, st.last_seen_s + DAY_S, model)
    for extra in (0.5, 3.0, 10.0, 30.0):
        t = st.last_seen_s + DAY_S + int(extra * DAY_S)
        assert risk_after(a, t, model) == pytest.approx(risk_at(st, t, model), rel=1e-9)


def test_next_change_is_the_exact_second_of_the_threshold() -> None:
    st = _state(_history([float(i) for i in range(40)]))
    st.stage, st.stage_since_s = STAGES.index("active"), st.last_seen_s
    sig = compute_signals(st, st.last_seen_s, MODEL)
    t = next_change_s(st, sig, MODEL)
    before = stage_of(st, compute_signals(st, t - 1, MODEL), MODEL)
    after = stage_of(st, compute_signals(st, t, MODEL), MODEL)
    assert before == "active" and after == "declining"
    expected = st.last_seen_s + MODEL.overdue_factor * sig.visit_gap_days * DAY_S
    assert abs(t - expected) <= 1


def test_churned_user_is_reviewed_once_more_at_expiry_then_never() -> None:
    evs = _history([float(i) for i in range(10)])
    out = advance("u", None, evs, evs[-1].ts_ms + 60 * DAY_S * 1000, MODEL)
    st = out.state
    assert st.stage_name == "churned" and not out.expire
    assert st.next_review_s == st.stage_since_s + int(math.ceil(MODEL.retention_days * DAY_S))
    gone = advance("u", st, (), (st.next_review_s + 1) * 1000, MODEL)
    assert gone.expire and gone.state.next_review_s == 0


def test_a_silent_user_costs_a_handful_of_reviews(monkeypatch: pytest.MonkeyPatch) -> None:
    """From last visit to expiry (~225 days of silence) only threshold crossings are looked at,
    not every day: far fewer reviews than days."""
    engine = import_pure(["engine"])["engine"]  # patched: compiled code calls its own functions directly
    calls = []
    real = engine.assess

    def counting(st: UserState, now_s: int, model: ChurnModel, *compiled: object):  # type: ignore[no-untyped-def]
        calls.append(now_s)
        return real(st, now_s, model, *compiled)

    monkeypatch.setattr(engine, "assess", counting)
    evs = _history([float(i) for i in range(30)])
    state = engine.advance("u", None, evs, evs[-1].ts_ms + 1, MODEL).state
    calls.clear()
    days = 45 + int(MODEL.retention_days) + 5
    out = engine.advance("u", state, (), evs[-1].ts_ms + days * DAY_S * 1000, MODEL)
    assert out.expire
    cap_reviews = days / MODEL.review_interval_days
    assert len(calls) <= cap_reviews / 2
    stages = [a.scores.stage for a in out.alerts if a.kind == "stage_changed"]
    assert stages == ["declining", "dormant", "churned"]


@pytest.mark.parametrize("population_gap", [7.0, 10.0])
def test_a_one_day_user_who_never_returns_is_never_active(population_gap: float) -> None:
    """QA pass 4: a user seen on one day only (here 10:00-10:20) was "new" until first seen +
    new_days, then "active" until the overdue test held (last seen + 2 x (population interval + the
    day's span): 1 minute later with the shipped interval of 7 days, ~6 days later with 10), and
    got ``new -> active`` then ``active -> declining``. A single day shows no rhythm to be active
    on: "new" lasts until overdue, and the stage changes go new -> declining -> dormant -> churned."""
    model = MODEL.with_(population={"visit_gap_days": population_gap})
    st = _state(_history([10 / 24, 10 / 24 + 10 / 1440, 10 / 24 + 20 / 1440]))
    first, last = st.first_seen_s, st.last_seen_s
    gap = visit_gap_days(st, population_gap)
    overdue_s = last + model.overdue_factor * gap * DAY_S
    assert overdue_s > first + model.new_days * DAY_S  # the pass the old rule made
    at = (lambda t: stage_of(st, compute_signals(st, t, model), model))
    assert at(first + int(model.new_days * DAY_S) + 1) == "new"  # was "active"
    assert at(int(overdue_s) - 1) == "new" and at(int(overdue_s) + 1) == "declining"
    evs = _history([10 / 24, 10 / 24 + 10 / 1440, 10 / 24 + 20 / 1440])
    out = advance("u", None, evs, evs[-1].ts_ms + 1, model)
    later = advance("u", out.state, (), evs[-1].ts_ms + 100 * DAY_S * 1000, model)
    changes = [(a.previous_stage, a.scores.stage) for a in later.alerts if a.kind == "stage_changed"]
    assert changes == [("new", "declining"), ("declining", "dormant"), ("dormant", "churned")]
    assert all(a.scores.reasons for a in later.alerts if a.kind == "stage_changed")
    # a return on another day ends "new" as for everyone
    back = _state(evs + _history([16.0]))
    assert stage_of(back, compute_signals(back, back.last_seen_s, model), model) == "active"


@pytest.mark.parametrize("model", [MODEL, load_model()], ids=["prior", "shipped"])
def test_a_new_to_active_change_with_nothing_better_to_say_says_what_ended_new(model: ChurnModel) -> None:
    """2026-12-03: a user active on two days (0 and 5), silent since, turns 14 days old before the
    overdue test holds (2 x their interval after day 5): the lifecycle says "active" (rule 4 ended
    "new": past new_days, a second active day), at risk 0.88, and nothing pulls the risk down, so
    the ``new -> active`` alert had no reasons at all (24 such in a 2,000-user backtest). It now says
    what the rule saw; the following ``active -> declining`` says why, as before."""
    evs = _history([0.4, 5.4])
    out = advance("u", None, evs, evs[-1].ts_ms + 100 * DAY_S * 1000, model)
    changes = [a for a in out.alerts if a.kind == "stage_changed"]
    assert [(a.previous_stage, a.scores.stage) for a in changes[:2]] == [("new", "active"), ("active", "declining")]
    became = changes[0]
    assert became.event_time_ms == evs[0].ts_ms + 14 * DAY_S * 1000 and became.scores.risk > 0.8
    assert became.scores.reasons == ("active on 2 days since first seen 14 days ago",)
    assert all(a.scores.reasons for a in out.alerts)


@pytest.mark.parametrize("model", [MODEL, load_model()], ids=["prior", "shipped"])
def test_a_reactivated_to_active_change_with_nothing_better_to_say_says_when_they_came_back(model: ChurnModel) -> None:
    """2026-12-03, found by the CI profile's property test: a user who cancels at once (churned),
    comes back a week later and stays silent is "reactivated" for ``new_days`` after the return,
    then "active" (models.lifecycle rule 3 ends, no overdue yet): nothing pulls the risk down and no
    alert is open, so the ``reactivated -> active`` alert had no reasons. It says what ended the
    stage: the return, ``new_days`` ago."""
    t0 = 1_767_225_600_000
    evs = [Event("u", t0, "view", "e1"), Event("u", t0, "cancel", "e2"), Event("u", t0 + 7 * DAY_S * 1000 + 1000, "view", "e3")]
    out = advance("u", None, evs, evs[-1].ts_ms + 15 * DAY_S * 1000, model)
    changes = [(a.previous_stage, a.scores.stage, a.scores.reasons) for a in out.alerts if a.kind == "stage_changed"]
    assert ("reactivated", "active", ("came back 14 days ago",)) in changes, changes
    assert all(a.scores.reasons for a in out.alerts)


def _daily_from(second_visit_h: float) -> list[Event]:
    """QA6 L2's new daily user (``view`` then ``click`` 7 minutes later, at 10:00 UTC on day 0),
    whose later visits come ``second_visit_h`` hours after the first, then daily for two weeks (the
    recovery comes once a day's pause no longer takes the young user's risk back over the exit
    line, on day 12: QA19 F6, models.engine._came_back; days earlier before)."""
    t0 = 1_788_256_800_000  # 2026-09-01T10:00:00Z
    day_ms = DAY_S * 1000
    starts = [t0] + [t0 + int(second_visit_h * 3_600_000) + (d - 1) * day_ms for d in range(1, 15)]
    return [Event("u", s + j * 420_000, kind, f"{i}{kind}") for i, s in enumerate(starts) for j, kind in enumerate(("view", "click"))]


@pytest.mark.parametrize("second_visit_h", [23.0, 23.5, 24.0 - 1 / 60, 24.0, 24.0 + 1 / 3600, 25.0])
def test_a_new_daily_users_day_one_alert_is_the_policy_not_the_tie_of_a_review_and_an_event(second_visit_h: float) -> None:
    """QA6 L2: every new daily user got ``at_risk`` at 24 h, in QA's file at the very second of the
    second visit (the review due when the 1-day age gate ends, at the same second as the event;
    a review at a second sees that second's events), then ``recovered`` days later. Whatever the
    second visit's time, before, at or after the gate, the shipped model's risk of a user one day
    old is at ``risk_enter`` (0.75 with one active day, 0.60-0.63 with two a day apart; a little
    under it right after a second visit hours before the gate, reaching it in silence hours
    later), so the alert opens between the gate and the third visit: the documented day-1 alerts (docs/SCORES.md,
    "Alerts worth a call": they carry the recall on subscription populations), not the ordering.
    Its words must be true: a user with two active days is never "active on a single day so far"
    (a second visit 23 h after the first said so: the tenure, first to last activity, was under a
    day; fixed 2026-12-03)."""
    model = load_model()
    evs = _daily_from(second_visit_h)
    alerts = advance("u", None, evs, evs[-1].ts_ms + 1, model).alerts
    kinds = [(a.kind, (a.event_time_ms - evs[0].ts_ms) / 3_600_000) for a in alerts if a.kind != "stage_changed"]
    assert [k for k, _ in kinds] == ["at_risk", "recovered"], kinds
    assert 24.0 <= kinds[0][1] < second_visit_h + 24.0, kinds  # from the age gate on, before the third visit
    opened = alerts[[a.kind for a in alerts].index("at_risk")]
    two_days = opened.event_time_ms >= evs[2].ts_ms  # the second visit is behind the alert
    assert any(("single day" in r) for r in opened.scores.reasons) == (not two_days), (second_visit_h, opened.scores.reasons)


# Which rhythm counts for a buyer (QA22b F9, models.temperature.purchases_speak): a daily player
# with two small purchases months apart was "cold" and "already gone" by the purchase rhythm. One
# interval between purchases is no rhythm (models.signals.REORDER_MIN_INTERVALS, the re-order
# rule's criterion) and the visits say the user is here; a buyer with a rhythm, and one seen on
# nothing since the last purchase (purchase-only data: CDNOW), keep the lower of the two rhythms.
GAME_BGNBD = {"r": 0.29, "alpha": 9.4, "a": 0.064, "b": 0.415}  # the shape of a game's purchase fit
GAME = ChurnModel().with_(bgnbd=GAME_BGNBD)


def _game_purchase_temperature(st: UserState, now_s: int) -> float:
    summary = bgnbd.summary_from_state(st, now_s)
    assert summary is not None and summary.x >= 1
    return 100 * bgnbd.p_buys_within(BgNbdParams(**GAME_BGNBD), summary.x, summary.t_x, summary.T, GAME.horizon_days)


def test_a_daily_player_with_two_purchase_days_is_judged_by_the_visits() -> None:
    # Plays every day for 200 days, bought on day 20 and day 60 (0.99 each), seen yesterday.
    st = _state(_history([float(i) + 0.5 for i in range(200)]) + _history([20.0, 60.0], "purchase", 0.99))
    now = st.last_seen_s + DAY_S
    s = score(st, now, GAME)
    no_purchases = score(st, now, ChurnModel())  # the visit rhythm alone
    assert _game_purchase_temperature(st, now) < 50  # what the lower of the two said: "cold"
    assert s.temperature == pytest.approx(no_purchases.temperature) and s.temperature > 90
    assert not any("chance of buying again" in r for r in s.reasons)
    a = assess(st, now, GAME)
    assert a.stay_source == "visits" and a.p_stay == pytest.approx(assess(st, now, ChurnModel()).p_stay)


def test_a_buyer_with_a_rhythm_who_stopped_buying_still_cools_down() -> None:
    # The same player with three purchase days: a rhythm, then 140 days without an order.
    st = _state(_history([float(i) + 0.5 for i in range(200)]) + _history([20.0, 40.0, 60.0], "purchase", 0.99))
    now = st.last_seen_s + DAY_S
    s = score(st, now, GAME)
    assert s.temperature == pytest.approx(_game_purchase_temperature(st, now)) and s.temperature < 50
    assert assess(st, now, GAME).stay_source == "purchases"


def test_purchase_only_history_keeps_the_lower_of_the_two() -> None:
    # Every active day an order (CDNOW): two orders, then silence; both rhythms read it.
    st = _state(_history([0.0, 40.0], "purchase", 12.0))
    now = st.last_seen_s + 90 * DAY_S
    s = score(st, now, GAME)
    visits = score(st, now, ChurnModel())
    assert s.temperature == pytest.approx(min(visits.temperature, _game_purchase_temperature(st, now)))
