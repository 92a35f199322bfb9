"""The save list ranks by the savable part of the risk, and the save-list index's bound holds.

- a user silent far past their own rhythm (still "declining": a daily user is not dormant before
  21 days) ranks below a reachable user who is slowing down, though their risk is higher;
- the bound (models.ranking.save_bound, save_bound_after) is at least every live save score
  between the state's last look and its next review, for any history (hypothesis), although the
  savable risk may fall in silence: the property the index's exactness rests on
  (tests/test_save_index.py checks the lists themselves on Redis);
- a user just back from dormant or churned ("reactivated") is on neither list until the stage ends, though
  their risk, measured across the break, would put them above a user who stayed (QA16 F3);
- a subscriber silent for weeks whose paid period runs is a save case: savable the whole risk, not
  0, and among equals the nearest renewal first (QA23a F3).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.model import ChurnModel, load_model
from models.lifecycle import JUDGED, REACHABLE
from models import engine
from models.ranking import (daily_list, index_score, on_save_list, save_bound, save_bound_after, save_key, save_rank, save_score,
                            win_back_key, win_back_score, win_back_value)
from models.reasons import IMPROVED
from models.scoring import assess
from models.temperature import p_back_within
from models.state import DAY_S, STAGES, UserState
from tests.test_models_properties import MODELS, T0_MS, histories

DEFAULT = load_model(None)


def _daily(days: int, start_day: int = 0) -> UserState:
    """A user active once a day from ``start_day`` for ``days`` days (advanced by the engine)."""
    from models.events import Event

    events = [Event("u", T0_MS + (start_day + d) * DAY_S * 1000 + 3_600_000, "view", f"e{d}") for d in range(days)]
    return advance("u", None, events, events[-1].ts_ms, DEFAULT).state


def test_a_user_silent_far_past_their_rhythm_ranks_below_a_reachable_declining_one() -> None:
    gone = _daily(60)  # daily for two months, then silent
    from models.events import Event

    # every 3 days for two months, last seen 7 days ago: overdue, declining, likely still there
    slowing_events = [Event("v", T0_MS + (3 * d) * DAY_S * 1000, "view", f"e{d}") for d in range(25)]
    slowing = advance("v", None, slowing_events, slowing_events[-1].ts_ms, DEFAULT).state
    now_s = slowing.last_seen_s + 7 * DAY_S
    assert now_s - gone.last_seen_s > 14 * DAY_S, "the daily user is silent more than 14x their rhythm"
    a, b = assess(gone, now_s, DEFAULT), assess(slowing, now_s, DEFAULT)
    assert (a.stage, b.stage) == ("declining", "declining"), "both still reachable by the lifecycle"
    assert a.risk > b.risk, "by the whole risk the one gone for weeks would come first"
    assert save_score(a) < 0.1 * save_score(b)
    assert save_score(a) <= a.risk and save_score(b) <= b.risk
    ranked = daily_list([("gone", gone), ("slowing", slowing)], now_s, DEFAULT, "save", n=2)
    assert [r.user_id for r in ranked] == ["slowing", "gone"]
    assert index_score(b, slowing, DEFAULT) > index_score(a, gone, DEFAULT), "the console's save page (at-risk index) ranks them alike"


def test_the_lapsed_head_the_at_risk_index_in_win_back_order() -> None:
    """Lapsed users score 1 + (whole-point temperature + value below 1) / 100 (the win-back page's
    order, models.ranking.win_back_key), 1.01 more for a former subscriber (QA24a F9: none here,
    no subscription), all others below 1."""
    short, long = _daily(20), _daily(60)
    lapsed = [(assess(st, st.last_seen_s + d * DAY_S, DEFAULT), st) for st in (short, long) for d in (25, 60, 200)]
    assert {a.stage for a, _ in lapsed} == {"dormant", "churned"}
    scores = [index_score(a, st, DEFAULT) for a, st in lapsed]
    assert all(1.0 <= s < 2.01 for s in scores)
    for (a, st), s in zip(lapsed, scores):
        point = round(100.0 * p_back_within(a.signals, DEFAULT)[0])
        assert win_back_key(a, st, DEFAULT) == (0, point, win_back_value(st))
        assert point / 100.0 <= s - 1.0 < (point + 1) / 100.0, "the whole point as shown, then the value"
    keyed = sorted(lapsed, key=lambda r: win_back_key(r[0], r[1], DEFAULT))
    assert [index_score(a, st, DEFAULT) for a, st in keyed] == sorted(scores), "the index orders as the key"
    reachable = assess(long, long.last_seen_s + 2 * DAY_S, DEFAULT)
    assert reachable.stage in REACHABLE and index_score(reachable, long, DEFAULT) == save_rank(reachable) < 1.0


def test_win_back_value_orders_spend_then_active_days_then_the_latest_leave() -> None:
    """QA19 F10: at equal temperature the list is ordered by what the user was worth, a total order."""
    import dataclasses

    base = UserState(first_seen_s=0, last_seen_s=20_000 * DAY_S, n_events=10, active_days=5)
    spent = dataclasses.replace(base, revenue=12.0, active_days=1)
    loyal = dataclasses.replace(base, active_days=300)
    later = dataclasses.replace(base, last_seen_s=base.last_seen_s + DAY_S)
    assert win_back_value(spent) > win_back_value(loyal) > win_back_value(later) > win_back_value(base)
    huge = dataclasses.replace(base, revenue=1e9, active_days=10**6, last_seen_s=2**31)
    assert win_back_value(huge) < 2**40, "capped: each field in its bits"
    a = assess(base, base.last_seen_s + 400 * DAY_S, DEFAULT)  # one temperature: the value decides
    scores = [win_back_score(a, st, DEFAULT) for st in (huge, spent, loyal, later, base)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 5 and scores[-1] >= 1.0
    assert scores[0] - 1.0 < (win_back_key(a, base, DEFAULT)[1] + 1) / 100.0, "below the next whole point"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(histories(max_events=30, span_days=90), histories(max_events=30, span_days=90, renewals=True)),
       st.sampled_from(MODELS + [DEFAULT]), st.integers(0, 30 * DAY_S),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_the_bound_is_above_every_live_save_score_before_the_next_review(
    events: list, model: ChurnModel, after_s: int, at: list[float]  # type: ignore[type-arg]
) -> None:
    until_ms = events[-1].ts_ms + after_s * 1000
    o = advance("u", None, events, until_ms, model)
    s = o.state
    if s.next_review_s <= 0:
        assert save_bound(s, model) == 1.0
        return
    bound = save_bound(s, model)
    if o.review is not None:
        assert abs(save_bound_after(o.review, s, model) - bound) <= 1e-12
    t0 = max(s.last_review_s, s.last_seen_s)
    t1 = max(s.next_review_s, s.last_seen_s)
    for f in [*at, 0.0, 1.0]:
        t = t0 + int(f * (t1 - t0))
        key = save_key(s, t, model)
        if key is not None:
            assert key[0] <= bound + 1e-12, (t - t0, t1 - t0, key[0], bound)


def test_a_look_back_to_the_last_activity_never_takes_T_below_it() -> None:
    """save_bound looks back from the next review to the last look by a negative ``extra_days``;
    T + extra can round below t_x (CI found x=1, t_x=1.0542129629629630, T=1.0542129629629624 on
    BG/NBD's check). stay_after floors T at t_x, in both models, instead of raising."""
    from models.events import Event
    from models.signals import compute_signals
    from models.temperature import stay_after

    model = next(m for m in MODELS if m.compiled.purchases is not None)  # a model with BG/NBD
    events = [Event("u", T0_MS + d * DAY_S * 1000, "purchase", f"p{d}", 10.0) for d in (0, 3, 9)]
    state = advance("u", None, events, events[-1].ts_ms, model).state
    sig = compute_signals(state, state.last_seen_s + 5 * DAY_S, model)
    assert sig.purchase_x > 0 and sig.purchase_T > sig.purchase_t_x
    past_last = -(sig.purchase_T - sig.purchase_t_x) - 1e-9  # a hair before the last purchase
    at_last = -(sig.age_days - sig.tenure_days)
    assert stay_after(sig, past_last, model) == stay_after(sig, min(at_last, -(sig.purchase_T - sig.purchase_t_x)), model)


def _plays(user: str, days: list[int]) -> list["Event"]:
    """4 plays a day on each of ``days`` (days after T0_MS)."""
    from models.events import Event

    return [Event(user, T0_MS + (d * DAY_S + 3_600 + 60 * k) * 1000, "play", f"e{d}-{k}") for d in days for k in range(4)]


def _student(back_days: int) -> tuple[UserState, UserState, int]:
    """A daily user for 120 days, silent 72 (a summer: churned by the lifecycle), back daily for
    ``back_days`` days; a daily user over the same days who never left; the time an hour after
    their last play."""
    days = list(range(120 + 72 + back_days))
    student, stayed = _plays("s", days[:120] + days[192:]), _plays("t", days)
    now_ms = student[-1].ts_ms + 3_600_000
    return advance("s", None, student, now_ms, DEFAULT).state, advance("t", None, stayed, now_ms, DEFAULT).state, now_ms // 1000


def test_a_user_just_back_from_a_long_break_is_on_no_list_until_the_stage_ends() -> None:
    """QA16 F3: students back from ten weeks of summer headed a trained model's save list at risk
    0.94-0.99, temperature 100. Their decline features compare the days since the return with a
    baseline that still holds the activity before the break; the save list, like the at-risk
    alert (models.engine._OPENS), waits for the end of "reactivated" (models.lifecycle.JUDGED)."""
    from streams.console.data import _fits

    for back in (1, 3, 13):
        student, stayed, now_s = _student(back)
        a, b = assess(student, now_s, DEFAULT), assess(stayed, now_s, DEFAULT)
        assert (a.stage, b.stage) == ("reactivated", "active")
        assert save_score(a) > 1.5 * save_score(b), "by its risk the one just back would rank above one who stayed"
        assert not on_save_list(student) and save_key(student, now_s, DEFAULT) is None
        ranked = daily_list([("student", student), ("stayed", stayed)], now_s, DEFAULT, "save", share=1.0)
        assert [r.user_id for r in ranked] == ["stayed"]
        assert daily_list([("student", student)], now_s, DEFAULT, "win_back", share=1.0) == [], "not lapsed either"
        assert not _fits("save", index_score(a, student, DEFAULT), a.stage), "nor on the console's save page with an alert open"
    student, _, now_s = _student(15)  # the stage ended at a review: judged again, on the list
    assert assess(student, now_s, DEFAULT).stage == "active" and on_save_list(student)
    assert [r.user_id for r in daily_list([("student", student)], now_s, DEFAULT, "save", share=1.0)] == ["student"]


def test_a_user_back_from_dormant_is_reactivated_for_the_stage_and_on_no_list_until_it_ends() -> None:
    """QA16 F3's leftover: a daily user silent 25 or 35 days (dormant, not churned) came back
    "declining" (a ``dormant -> declining`` alert on the day of the return, on the save list at
    risk 0.28 / 0.32 with the default): rule 5's rate test read the return against a 4-week count
    that still held the activity from before the break. Back from dormant is "reactivated" for
    ``new_days``, as back from churned (models.lifecycle rule 3); the risk is the same."""
    for silence in (25, 35):
        for back in (1, 3, 13, 15):
            days = list(range(120)) + list(range(120 + silence, 120 + silence + back))
            events = _plays("d", days)
            now_ms = events[-1].ts_ms + 3_600_000
            lapsed = advance("d", None, [e for e in events if e.ts_ms < T0_MS + (120 + silence) * DAY_S * 1000],
                             T0_MS + (120 + silence) * DAY_S * 1000 - 1000, DEFAULT)
            assert assess(lapsed.state, (T0_MS // 1000) + (120 + silence) * DAY_S - 1, DEFAULT).stage == "dormant"
            out = advance("d", None, events, now_ms, DEFAULT)
            a = assess(out.state, now_ms // 1000, DEFAULT)
            changes = [(x.previous_stage, x.scores.stage) for x in out.alerts if x.kind == "stage_changed"]
            assert ("dormant", "reactivated") in changes and ("dormant", "declining") not in changes, changes
            if back < 14:
                assert a.stage == "reactivated" and not on_save_list(out.state), (silence, back, a.stage)
                assert not [x for x in out.alerts if x.kind == "at_risk" and x.scores.stage == "reactivated"]
            else:  # the stage ended at a review: judged again
                assert a.stage == "active" and on_save_list(out.state) and changes[-1] == ("reactivated", "active")


def test_the_stage_bit_sets_are_the_stage_sets() -> None:
    """``on_save_list`` and the engine's "improved" test read a stage index's bit (a shift and a
    mask in the compiled core) instead of a frozenset: the same answer for every stage index a
    state can hold and for ones it cannot (out of range: not reachable, as no set holds them)."""
    reachable = {STAGES.index(s) for s in JUDGED}
    for stage in range(-3, len(STAGES) + 70):
        for n, since in ((0, 5), (3, 0), (3, 5)):
            st_ = UserState(n_events=n, stage_since_s=since, stage=stage)
            assert on_save_list(st_) == (n > 0 and since > 0 and stage in reachable), (stage, n, since)
    assert [bool(engine._IMPROVED_BITS >> i & 1) for i in range(len(STAGES))] == [s in IMPROVED for s in STAGES]


def test_win_back_orders_by_the_temperature_shown_then_by_spend() -> None:
    """QA17 F12: a shop's lapsed customers all read temperature 0 and were ordered by hundredths of
    a point nobody sees (11.90 of spend ahead of 62.60); temperatures that read the same are ordered
    by spend."""
    import copy

    users = {}
    for i, (days, spent) in enumerate([(20, 11.9), (21, 62.6), (22, 30.0), (23, 8.5)]):
        st_ = copy.copy(_daily(days, start_day=i))
        st_.revenue = spent
        users[f"u{i}"] = st_
    now_s = max(s.last_seen_s for s in users.values()) + 300 * DAY_S
    ranked = daily_list(users.items(), now_s, DEFAULT, "win_back", n=4)
    shown = [round(r.scores.temperature) for r in ranked]
    assert len(ranked) == 4 and len(set(shown)) == 1, "one temperature as shown"
    assert [r.state.revenue for r in ranked] == [62.6, 30.0, 11.9, 8.5]


def _annual(user: str, last_day: int, paid_days: int, now_day: int) -> UserState:
    """A daily user until ``last_day``, whose one statement (that day) pays a plan through
    ``paid_days`` after ``now_day``; advanced by the engine to ``now_day``."""
    from models.events import Event
    from models.subscription import Subscription

    events = [Event(user, T0_MS + d * DAY_S * 1000 + 3_600_000, "view", f"e{d}") for d in range(last_day + 1)]
    end_ms = T0_MS + (now_day + paid_days) * DAY_S * 1000
    sub = Subscription("active", "annual", 667, 0, end_ms)
    events.append(Event(user, T0_MS + last_day * DAY_S * 1000 + 7_200_000, "subscription", "s0", 0.0, "", sub))
    return advance(user, None, events, T0_MS + now_day * DAY_S * 1000, DEFAULT).state


def test_a_silent_subscriber_whose_paid_period_runs_is_a_save_case_nearest_renewal_first() -> None:
    """QA23a F3: annual subscribers silent for weeks read savable 0.00 (P(alive) ~0 and the leave
    part 0 while the renewal is beyond the horizon) at the bottom of the save list, and those whose
    renewal was 1-25 days away ranked by the risk's last digits (25 days before 1 day). While a paid
    period runs the savable part is the whole risk (the contract is not left before the renewal),
    and equals as shown come nearest renewal first, in every reader's order (the at-risk index too)."""
    now_day = 130
    users = {"a241": _annual("a241", 60, 241, now_day), "b1": _annual("b1", 90, 1, now_day),
             "c25": _annual("c25", 40, 25, now_day)}
    slowing = _daily(10, start_day=now_day - 30)  # a free user, daily for 10 days, silent 20: declining
    now_s = T0_MS // 1000 + now_day * DAY_S
    for st_ in users.values():
        a = assess(st_, now_s, DEFAULT)
        assert a.stage == "declining" and a.p_stay < 1e-3, "silent weeks past a daily rhythm, kept declining while paid"
        assert save_score(a) == a.risk > 0.99, "the whole risk, not P(alive) x P(leaves | alive) ~ 0"
    ranked = daily_list([*users.items(), ("slowing", slowing)], now_s, DEFAULT, "save", share=1.0)
    assert [r.user_id for r in ranked[:3]] == ["b1", "c25", "a241"], "equal at 1.00: the nearest renewal first"
    assert [round(r.savable, 2) for r in ranked[:3]] == [1.0, 1.0, 1.0]
    ranks = [index_score(assess(users[u], now_s, DEFAULT), users[u], DEFAULT) for u in ("b1", "c25", "a241")]
    assert ranks == sorted(ranks, reverse=True) and ranks[-1] < 1.0, "the at-risk index orders them alike, below the lapsed"
    free = assess(slowing, now_s, DEFAULT)
    assert free.stage == "declining" and save_score(free) == free.p_stay * free.leave, "no paid period: as before"


def test_a_user_without_a_paid_period_keeps_the_savable_order() -> None:
    """save_rank orders users without a running paid period exactly as their savable part (only
    equals as shown are ordered by the renewal)."""
    people = [_daily(n, start_day=s) for n, s in ((60, 0), (20, 30), (5, 50), (40, 10))]
    assessed = [assess(p, p.last_seen_s + d * DAY_S, DEFAULT) for p in people for d in (1, 3, 6, 10)]
    by_score = sorted(assessed, key=save_score)
    assert [save_rank(a) for a in by_score] == sorted(save_rank(a) for a in assessed)
