"""The exit opportunity (models.risk.exit_open): a subscription ends only at the end of the period
paid for, so while a known period end lies beyond the horizon the risk's leave part is 0.

Unit tests of the gate, the state's format 5, the engine's review at the moment the gate opens
and the recovered alert a renewal gives; hypothesis properties over histories with subscription
statements (tests.test_models_properties ``histories(renewals=True)``): risk non-decreasing in
silence across the gate, order and batching independence, the smart review schedule, the
record's round trip, and reasons that support their alerts.
"""

from __future__ import annotations

import random
import struct
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.risk import exit_open, exit_opens_s, leave_probability, risk_probability
from models.scoring import SilentRisk, assess, risk_at, score
from models.signals import compute_signals
from models.reasons import RENEWAL_NEWS_DAYS
from models.state import (ACCOUNT_MEMBER, DAY_S, EVER_PAID, LONG_PERIOD, MAX_PERIOD_END_DAY, PAYS_SUBSCRIPTION, STAGES, UserState, apply_event,
                          period_end_day)
from models.subscription import Subscription
from models.temperature import p_stay
from tests.test_models_properties import (
    DAY_MS,
    MODELS,
    T0_MS,
    _check_smart_reviews,
    _same_outcome,
    _state_of,
    histories,
)
from tests.test_models_reasons import check_alert

#: The return's own words, said before "paid through" in an alert for the better (models.reasons explain).
_RETURN = ("came back ", "activity back at the user's usual level")
#: A model whose leave part is high for anybody (intercept +4): what opens an alert is the gate.
LEAVING = ChurnModel().with_(risk_intercept=4.0)


def _sub(ts_ms: int, period_end_ms: int, status: str = "active", i: int = 0) -> Event:
    sub = Subscription(status, "Annual", 0 if status == "cancelled" else 9900, 0, period_end_ms)  # type: ignore[arg-type]
    return Event("u", ts_ms, "subscription", f"s{i:03d}", 0.0, "", sub)


def _daily(days: range) -> list[Event]:
    return [Event("u", T0_MS + d * DAY_MS + 12 * 3_600_000, "view", f"e{d:04d}") for d in days]


def test_the_gate_opens_a_horizon_before_the_period_end() -> None:
    m = ChurnModel()  # 30-day horizon
    end_s = T0_MS // 1000 + 100 * DAY_S
    assert exit_opens_s(end_s, 30.0) == end_s - 30 * DAY_S and exit_opens_s(0, 30.0) == 0
    st_ = _state_of(_daily(range(69)))  # daily to day 68: declining at worst at these times
    st_.period_end_day = end_s // DAY_S
    for now, is_open in ((end_s - 30 * DAY_S - 1, False), (end_s - 30 * DAY_S, True), (end_s, True), (end_s + 9 * DAY_S, True)):
        sig = compute_signals(st_, now, m)
        p, _ = p_stay(sig, m)
        assert exit_open(sig, m) is is_open
        ungated = risk_probability(assess(st_, now, m).features, m)
        assert leave_probability(sig, p, st_.revenue, m) == (ungated if is_open else 0.0)
        assert risk_at(st_, now, m) == (1.0 - p * (1.0 - ungated) if is_open else 1.0 - p)


def test_statements_set_the_period_end_and_a_cancellation_forgets_it() -> None:
    st_ = UserState()
    apply_event(st_, _sub(T0_MS, T0_MS + 10 * DAY_MS + 1))
    assert st_.period_end_day == (T0_MS + 10 * DAY_MS) // DAY_MS + 1  # rounded up to a whole day
    assert st_.n_events == 0 and st_.act_28d == 0.0  # not usage
    apply_event(st_, _sub(T0_MS, 0, i=1))  # no period end given: the known one stays
    assert st_.period_end_day == (T0_MS + 10 * DAY_MS) // DAY_MS + 1
    apply_event(st_, _sub(T0_MS, 0, "cancelled", i=2))
    assert st_.period_end_day == 0


def test_a_late_statement_cannot_move_the_period_end_back() -> None:
    """The stream admits events up to its allowed lateness: a renewal's statement may be applied
    before the older one it replaces; the state ends where one batch in event order ends."""
    old, renewal = _sub(T0_MS - 3_600_000, T0_MS + 2 * DAY_MS), _sub(T0_MS, T0_MS + 367 * DAY_MS, i=1)
    in_order, late = UserState(), UserState()
    for ev in (old, renewal):
        apply_event(in_order, ev)
    for ev in (renewal, old):
        apply_event(late, ev)
    assert late.period_end_day == in_order.period_end_day == period_end_day(T0_MS + 367 * DAY_MS)


@pytest.mark.parametrize("status", ["past_due", "trial"])
def test_an_unpaid_statement_opens_the_exit(status: str) -> None:
    """A failed payment arrives with the next period's end (nobody paid for it), a trial is not
    a paid period: neither may hold the leave part at 0."""
    st_ = UserState()
    apply_event(st_, _sub(T0_MS, T0_MS + 365 * DAY_MS))
    assert st_.period_end_day
    apply_event(st_, _sub(T0_MS + DAY_MS, T0_MS + 730 * DAY_MS, status, i=1))
    assert st_.period_end_day == 0
    assert period_end_day(10**15) == MAX_PERIOD_END_DAY  # past 2149: kept as the last day a uint16 holds


def test_a_move_to_the_free_plan_ends_the_paid_period() -> None:
    """QA16 F5: an ``active`` statement at MRR 0 (the free plan) kept the paid period's end, so a
    daily listener who downgraded read "paid period ended 74 days ago, no renewal stated" at risk
    0.72; a free plan pays no period, so none is known and no renewal reason can be given."""
    st_ = UserState()
    apply_event(st_, _sub(T0_MS, T0_MS + 30 * DAY_MS))
    assert st_.period_end_day and st_.flags & PAYS_SUBSCRIPTION
    free = Subscription("active", "free", 0, 0, T0_MS + 60 * DAY_MS)  # type: ignore[arg-type]
    apply_event(st_, Event("u", T0_MS + 30 * DAY_MS, "subscription", "s-free", 0.0, "", free))
    assert st_.period_end_day == 0 and not st_.flags & PAYS_SUBSCRIPTION
    for ev in _daily(range(30, 104)):  # listens every day for 74 days after the move
        apply_event(st_, ev)
    reasons = score(st_, (T0_MS + 104 * DAY_MS) // 1000, ChurnModel()).reasons
    assert not any("paid period" in r or "renewal" in r for r in reasons), reasons


def test_records_without_a_period_end_stay_format_4_and_with_one_are_format_5() -> None:
    st_ = _state_of(_daily(range(20)))
    raw4 = st_.to_bytes()
    assert raw4[0] == 4 and len(raw4) == 93 + 8 * len(st_.slot_7d)
    st_.period_end_day = 20_000
    raw5 = st_.to_bytes()
    assert raw5[0] == 5 and len(raw5) == len(raw4) + 2
    back = UserState.from_bytes(raw5)
    assert back == st_ and back.to_bytes() == raw5
    assert UserState.from_bytes(raw4).period_end_day == 0
    for bad in (raw5[:-1], raw5 + b"\0", b"\x05" + raw4[1:]):  # a length that is not 95 + 8 per slot
        with pytest.raises(ValueError, match="bytes"):
            UserState.from_bytes(bad)
    with pytest.raises(ValueError, match="stage 9"):
        UserState.from_bytes(raw5[:1] + b"\x09" + raw5[2:])


def test_format_3_records_are_still_read() -> None:
    st_ = _state_of(_daily(range(20)))
    v3 = struct.Struct("<BBB11I3I3fdff")
    head = v3.pack(3, st_.stage, len(st_.slot_7d), st_.first_seen_s, st_.last_seen_s, 0, 0, 0, 0, 0, 0, 0, 0, st_.slots_at_s,
                   st_.n_events, st_.active_days, 0, st_.act_7d, st_.act_28d, st_.act_90d, 0.0, st_.gap_ewma_days, 0.0)
    back = UserState.from_bytes(head + st_.slot_7d.tobytes() + st_.slot_28d.tobytes())
    assert (back.n_events, back.period_end_day, back.negative_28d, list(back.slot_28d)) == (st_.n_events, 0, 0.0, list(st_.slot_28d))


def test_flagged_records_are_the_size_of_unflagged_ones_and_format_6_is_still_read() -> None:
    """A flag set: format 7 (format 4's 93 bytes + 8 per slot) or, with a period end, 8 (format
    5's 95), the flags in byte 2 and the slot count the length's; a record of format 6 (format 5 +
    the flags byte, written until 2026-12-05) reads to the same state; a length that is not the
    head + 8 per slot is a ValueError."""
    st_ = _state_of(_daily(range(20)))
    plain = st_.to_bytes()
    st_.flags = ACCOUNT_MEMBER | PAYS_SUBSCRIPTION
    raw7 = st_.to_bytes()
    assert raw7[0] == 7 and raw7[2] == st_.flags and len(raw7) == len(plain) and raw7[3:] == plain[3:]
    st_.period_end_day = 20_000
    raw8 = st_.to_bytes()
    assert raw8[0] == 8 and raw8[2] == st_.flags and len(raw8) == len(plain) + 2
    for raw, period_end in ((raw7, 0), (raw8, 20_000)):
        old = struct.pack("<BB", 6, st_.stage) + bytes([len(st_.slot_7d)]) + raw[3:93] + struct.pack("<HB", period_end, st_.flags)
        for record in (raw, old + raw[len(raw) - 8 * len(st_.slot_7d):]):
            back = UserState.from_bytes(record)
            assert (back.flags, back.period_end_day, back.to_bytes()) == (st_.flags, period_end, raw)
        for bad in (raw[:-1], raw + b"\0", raw[:-8] + b"\0"):
            with pytest.raises(ValueError, match="bytes"):
                UserState.from_bytes(bad)


def test_an_annual_subscriber_is_alerted_when_the_renewal_comes_within_the_horizon_not_before() -> None:
    """Daily use to day 69, one kind of activity, a model that says "leaves" of everybody: without a
    period end the at-risk alert opens on the second day; paid through day 100, it opens at day 70
    (100 - the 30-day horizon) to the second, in silence, saying why."""
    events = _daily(range(70))
    plain = [a for a in advance("u", None, events, T0_MS + 90 * DAY_MS, LEAVING).alerts if a.kind == "at_risk"]
    assert plain and plain[0].event_time_ms < T0_MS + 2 * DAY_MS
    annual = advance("u", None, [_sub(T0_MS + 3_600_000, T0_MS + 100 * DAY_MS), *events], T0_MS + 90 * DAY_MS, LEAVING)
    opened = [a for a in annual.alerts if a.kind == "at_risk"]
    assert [a.event_time_ms for a in opened] == [T0_MS + 70 * DAY_MS]
    # calendar days to it (QA11 F8); the last reason: when the user can leave, after why (QA14 F4)
    assert opened[0].scores.reasons[-1] == "renewal due in 29 days (paid through 2026-04-10)", opened[0].scores.reasons
    assert len(opened[0].scores.reasons) >= 2, "the reasons of the risk come first"
    for a in annual.alerts:
        check_alert(a, LEAVING)


def test_a_statement_flags_a_period_longer_than_45_days_and_the_flag_follows_the_end() -> None:
    """models.state.LONG_PERIOD: set by the active statement whose end is kept when its period runs
    more than 45 days past it, cleared by a monthly one that moves the end, by a cancellation."""
    base = _state_of(_daily(range(5)))
    flags = []
    for events in ([_sub(T0_MS, T0_MS + 31 * DAY_MS)], [_sub(T0_MS, T0_MS + 365 * DAY_MS)],
                   [_sub(T0_MS, T0_MS + 365 * DAY_MS), _sub(T0_MS + DAY_MS, T0_MS + 32 * DAY_MS, i=1)],  # an earlier end: kept the annual's
                   [_sub(T0_MS, T0_MS + 92 * DAY_MS), _sub(T0_MS + 91 * DAY_MS, T0_MS + 122 * DAY_MS, i=1)],  # moved to monthly
                   [_sub(T0_MS, T0_MS + 365 * DAY_MS), _sub(T0_MS + DAY_MS, 0, "cancelled", i=1)]):
        state = base.copy()
        for e in events:
            apply_event(state, e)
        flags.append(bool(state.flags & LONG_PERIOD))
    assert flags == [False, True, True, False, False]


def test_a_monthly_renewal_is_a_reason_only_within_a_week_an_annual_one_within_the_horizon() -> None:
    """QA17 F13: "renewal due in 23 days" on every monthly subscriber's alert told the CRM nothing.
    Paid through day 30 on a monthly statement: the live reasons say nothing of the renewal 20
    days before it, "renewal due in 7 days" a week before; paid through day 100 on an annual
    statement, "renewal due in 29 days" when the exit opens (the README's example)."""
    def told(end_day: int, period_days: int, at_day: int) -> list[str]:
        state = _state_of([_sub(T0_MS + (end_day - period_days) * DAY_MS, T0_MS + end_day * DAY_MS), *_daily(range(at_day))])
        reasons = score(state, T0_MS // 1000 + at_day * DAY_S, LEAVING).reasons
        return [r for r in reasons if r.startswith("renewal due")]

    assert RENEWAL_NEWS_DAYS == 7 and told(30, 30, 10) == [] and told(30, 30, 21) == []  # 8 days to the last day paid
    assert told(30, 30, 22) == ["renewal due in 7 days (paid through 2026-01-30)"]
    assert told(30, 30, 29) == ["renewal due today (paid through 2026-01-30)"]
    assert told(100, 365, 71) == ["renewal due in 28 days (paid through 2026-04-10)"]


def test_an_annual_renewal_beyond_the_horizon_is_told_a_monthly_one_is_not() -> None:
    """QA23a F3: a fitness app's annual subscriber silent for six weeks, paid for 8 more months,
    was told only "no visit for 42.5x the usual interval of 1.9 days": nothing said the user still
    pays, nor by when a save call must come. A plan stated longer than 45 days says its renewal at
    any distance (after the reasons of the risk); a monthly one whose exit is closed for a day or
    two after its renewal (a 31-day month) says nothing, as within the horizon."""
    def told(end_day: int, period_days: int, at_day: int, silent_from: int) -> tuple[list[str], list[str]]:
        state = _state_of([_sub(T0_MS + (end_day - period_days) * DAY_MS, T0_MS + end_day * DAY_MS), *_daily(range(silent_from))])
        reasons = list(score(state, T0_MS // 1000 + at_day * DAY_S, ChurnModel()).reasons)
        return reasons, [r for r in reasons if r.startswith("renewal due")]

    reasons, renewal = told(300, 365, 60, 18)
    assert renewal == ["renewal due in 239 days (paid through 2026-10-27)"] and reasons[-1] == renewal[0], reasons
    assert reasons[0].startswith("no visit for"), "the reasons of the risk first"
    assert told(40, 31, 9, 9)[1] == [], "a monthly plan's exit closed for a day: no news"


def test_a_cancellation_while_a_plan_is_paid_says_until_when_and_no_renewal() -> None:
    """A ``cancel`` event while an annual plan is paid for 334 more days said "cancelled today",
    then "renewal due in 334 days (paid through 2026-12-31)": a cancelled plan does not renew. The
    cancellation says until when the plan is paid, as a scheduled one does ("asked to cancel; paid
    through ..."), on any plan; once the paid period is over, the cancellation alone."""
    def reasons(end_day: int, period_days: int, cancel_day: int, at_day: int) -> tuple[str, ...]:
        cancel = Event("u", T0_MS + cancel_day * DAY_MS + 13 * 3_600_000, "cancel", "c1")
        events = [_sub(T0_MS + (end_day - period_days) * DAY_MS, T0_MS + end_day * DAY_MS), *_daily(range(cancel_day)), cancel]
        out = advance("u", None, events, T0_MS + at_day * DAY_MS, ChurnModel())
        churned = [a for a in out.alerts if a.kind == "stage_changed" and a.scores.stage == "churned"]
        assert len(churned) == 1 and churned[0].scores.reasons[0].startswith("cancelled today"), out.alerts
        at = score(out.state, T0_MS // 1000 + at_day * DAY_S, ChurnModel()).reasons
        assert not any(r.startswith("renewal due") for r in churned[0].scores.reasons + at), (churned[0].scores.reasons, at)
        return churned[0].scores.reasons[:1] + at[:1]

    assert reasons(365, 365, 30, 32) == ("cancelled today; paid through 2026-12-31 (in 334 days)",
                                         "cancelled 1 day ago; paid through 2026-12-31 (in 332 days)")
    assert reasons(30, 30, 25, 29) == ("cancelled today; paid through 2026-01-30 (in 4 days)", "cancelled 3 days ago; paid through 2026-01-30 (today)")
    assert reasons(30, 30, 25, 31) == ("cancelled today; paid through 2026-01-30 (in 4 days)", "cancelled 5 days ago")


def test_a_renewal_statement_closes_an_open_at_risk_as_recovered() -> None:
    events = [_sub(T0_MS + 3_600_000, T0_MS + 60 * DAY_MS), *_daily(range(90))]
    before = advance("u", None, events, T0_MS + 58 * DAY_MS, LEAVING)
    assert before.state.at_risk_since_s == T0_MS // 1000 + 30 * DAY_S  # the gate of the monthly period end
    renewal = _sub(T0_MS + 58 * DAY_MS, T0_MS + 425 * DAY_MS, i=1)
    after = advance("u", before.state, [renewal], T0_MS + 58 * DAY_MS + 1, LEAVING)
    assert [(a.kind, a.event_time_ms) for a in after.alerts] == [("recovered", T0_MS + 58 * DAY_MS)]
    # the return first (QA19 F6: the user is back at their level, daily), then the renewal
    assert after.alerts[0].scores.reasons[0].startswith("activity back at the user's usual level")
    assert after.alerts[0].scores.reasons[1] == "paid through 2027-03-01: no renewal due within 30 days"
    assert after.state.at_risk_since_s == 0
    check_alert(after.alerts[0], LEAVING)


def test_a_subscribers_case_closes_at_the_renewal_it_was_opened_before() -> None:
    """A new user, one view on each of the first two days, then five kinds of activity daily: the
    shipped default opens an at-risk alert on day 1 (the early hazard) and, without statements,
    sends "recovered" once the user is back at their level (day 5). Paid through day 30, the case
    waits for the renewal pending when it opened (models.engine.renewal_pending): it closes at
    the renewal statement, day 30 + 1 h, with the user back at their level, not before; with no
    renewal stated, once the period has passed unrenewed (its end plus the day's grace)."""
    kinds = ("view", "post", "like", "message", "reply")
    events = [Event("u", T0_MS + d * DAY_MS + 10 * 3_600_000, "view", f"e{d}") for d in (0, 1)]
    events += [Event("u", T0_MS + d * DAY_MS + (9 + k) * 3_600_000, kind, f"e{d:03d}{k}")
               for d in range(2, 45) for k, kind in enumerate(kinds)]
    m = ChurnModel()

    def kinds_times(history: list[Event]) -> list[tuple[str, int]]:
        out = advance("u", None, history, T0_MS + 45 * DAY_MS, m)
        for a in out.alerts:
            check_alert(a, m)
        return [(a.kind, a.event_time_ms) for a in out.alerts if a.kind != "stage_changed"]

    plain = kinds_times(events)
    assert [k for k, _ in plain] == ["at_risk", "recovered"] and plain[1][1] < T0_MS + 10 * DAY_MS
    monthly = [Event("u", T0_MS + 3_600_000, "subscription", "s0", 0.0, "", Subscription("active", "Monthly", 999, 0, T0_MS + 30 * DAY_MS))]
    lapsed = kinds_times(monthly + events)  # no renewal stated: the wait ends with the period's grace day
    assert lapsed[0] == plain[0] and lapsed[1][0] == "recovered" and lapsed[1][1] >= T0_MS + 31 * DAY_MS
    renewal = Event("u", T0_MS + 30 * DAY_MS + 3_600_000, "subscription", "s1", 0.0, "",
                    Subscription("active", "Monthly", 999, 0, T0_MS + 60 * DAY_MS))
    assert kinds_times(monthly + [renewal] + events) == [plain[0], ("recovered", T0_MS + 30 * DAY_MS + 3_600_000)]


def test_a_subscribers_risk_opens_no_alert_in_silence_their_own_rhythm_explains() -> None:
    """A view every 3 days to day 60, then silence, under a model whose line the user's risk is just
    under at each visit (intercept -1.25): without statements the risk crosses it 0.06 days after
    the visit of day 3, in the night their rhythm explains. Paid month by month (renewals stated
    on days 0, 31 and 62, the exit always open), no alert opens before the user has missed a
    return by their own interval (models.engine.subscriber_return_due_s): the first comes after
    the last visit, once silent for that interval."""
    events = [Event("u", T0_MS + d * DAY_MS + 12 * 3_600_000, "view", f"e{d:03d}") for d in range(0, 61, 3)]
    renewals = [Event("u", T0_MS + k * 31 * DAY_MS + 3_600_000, "subscription", f"s{k}", 0.0, "",
                      Subscription("active", "Monthly", 999, 0, T0_MS + (k + 1) * 31 * DAY_MS)) for k in range(3)]
    m = ChurnModel().with_(risk_intercept=-1.25)
    plain = [a for a in advance("u", None, events, T0_MS + 90 * DAY_MS, m).alerts if a.kind == "at_risk"]
    assert plain and plain[0].scores.signals is not None and plain[0].scores.signals.visit_overdue < 1.0
    paid = advance("u", None, [*renewals, *events], T0_MS + 90 * DAY_MS, m).alerts
    opened = [a for a in paid if a.kind == "at_risk"]
    assert opened and opened[0].event_time_ms > events[-1].ts_ms
    for a in opened:
        assert a.scores.signals is not None and a.scores.signals.visit_overdue >= 1.0
    for a in paid:
        check_alert(a, m)


def test_a_monthly_renewal_that_reopens_the_exit_within_the_quiet_period_is_no_recovery() -> None:
    """Paid through day 60, at risk from day 30; renewed on day 58 to day 89: the exit is closed for
    a day (89 - 30 = day 59) and opens again, at a risk as high as before, so the alert stays open."""
    events = [_sub(T0_MS + 3_600_000, T0_MS + 60 * DAY_MS), *_daily(range(90))]
    before = advance("u", None, events, T0_MS + 58 * DAY_MS, LEAVING)
    assert before.state.at_risk_since_s
    monthly = _sub(T0_MS + 58 * DAY_MS, T0_MS + 89 * DAY_MS, i=1)
    after = advance("u", before.state, [monthly], T0_MS + 58 * DAY_MS + 1, LEAVING)
    assert after.alerts == [] and after.state.at_risk_since_s == before.state.at_risk_since_s
    assert risk_at(after.state, T0_MS // 1000 + 58 * DAY_S, LEAVING) <= LEAVING.risk_exit  # only the closed exit holds it


@settings(max_examples=80, deadline=None)
@given(histories(renewals=True), st.integers(-20, 200), st.lists(st.floats(0.0, 300.0), min_size=2, max_size=8),
       st.sampled_from(MODELS + [LEAVING]))
def test_risk_never_falls_in_silence_across_the_gate(events: list[Event], end_day: int, silences: list[float],
                                                     model: ChurnModel) -> None:
    state = _state_of(events)
    if state.n_events == 0:
        return
    state.period_end_day = max(state.last_seen_s // DAY_S + end_day, 1)
    gate = exit_opens_s(state.period_end_day * DAY_S, model.horizon_days)
    times = sorted({state.last_seen_s + int(d * DAY_S) for d in silences} | {t for t in (gate - 1, gate) if t >= state.last_seen_s})
    a = assess(state, times[0], model)
    before = -1.0
    for t in times:
        r = risk_at(state, t, model)
        assert r >= before - 1e-12, (t - gate, r, before)
        if assess(state, t, model).stage != "churned":  # risk 1 then (SilentRisk: while not churned)
            assert SilentRisk(a, model).at(t) == pytest.approx(r, abs=1e-9)  # the engine's look ahead sees the step too
        before = r


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(renewals=True), st.randoms(use_true_random=False), st.data(), st.sampled_from(MODELS + [LEAVING]))
def test_order_and_batching_do_not_matter_with_statements(events: list[Event], rnd: random.Random, data: st.DataObject,
                                                          model: ChurnModel) -> None:
    end = events[-1].ts_ms + data.draw(st.integers(0, 120)) * DAY_MS
    shuffled = events[:]
    rnd.shuffle(shuffled)
    whole = advance("u", None, events, end, model)
    _same_outcome(whole, advance("u", None, shuffled, end, model))
    cut = data.draw(st.integers(0, len(events)))
    part1, part2 = events[:cut], events[cut:]
    mid = data.draw(st.integers(part1[-1].ts_ms if part1 else T0_MS - DAY_MS, part2[0].ts_ms if part2 else end))
    first = advance("u", None, part1, mid, model)
    second = advance("u", first.state, part2, end, model)
    first.alerts.extend(second.alerts)
    first.state, first.expire = second.state, second.expire
    _same_outcome(whole, first)
    raw = whole.state.to_bytes()
    assert UserState.from_bytes(raw) == whole.state and raw[0] == ((8 if whole.state.period_end_day else 7) if whole.state.flags else 5 if whole.state.period_end_day else 4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(max_events=25, span_days=60, renewals=True), st.sampled_from(MODELS + [LEAVING]), st.randoms(use_true_random=False))
def test_smart_reviews_miss_no_gate_opening(events: list[Event], model: ChurnModel, rnd: random.Random) -> None:
    """tests.test_models_properties' check of the review schedule, on histories with period ends:
    an alert that becomes due when a renewal comes within the horizon is looked at then."""
    _check_smart_reviews(events, model, rnd)


def _state_at(events: list[Event], time_ms: int, model: ChurnModel) -> UserState:
    """The user's state at an alert's ``event_time_ms``: the engine's clock is whole seconds
    (models.state reads ``ts_ms // 1000``), so an alert raised by an event at 00:00:00.001 says
    00:00:00.000, and that event is in the state its reasons were told from (CI found a statement
    1 ms past the alert's time left out: its annual plan's "renewal due in 45 days" read as told
    without LONG_PERIOD)."""
    second = time_ms // 1000
    return advance("u", None, [e for e in events if e.ts_ms // 1000 <= second], time_ms, model).state


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(renewals=True), st.integers(0, 90), st.sampled_from(MODELS + [LEAVING]))
def test_reasons_support_alerts_with_renewals(events: list[Event], extra_days: int, model: ChurnModel) -> None:
    """At-risk alerts never say "paid through", and say a renewal is due whenever a known one
    opened the exit and it is news (within a week, or a period longer than 45 days: QA17 F13; a
    long plan's at any distance, QA23a F3): last of the reasons shown while it is to come (context, QA14 F4), first
    (after a cancellation) once the paid period ended unrenewed; recovered alerts of a user paid beyond
    the horizon say so first, after the return itself; alerts whose exit is open pass tests.test_models_reasons' check.
    A standing cancellation says no renewal, and until when the plan is paid while it is (:func:`_check_cancelled`)."""
    _check_renewal_reasons(events, extra_days, model)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(renewals=True), st.integers(0, 3 * DAY_MS), st.integers(0, 90), st.sampled_from(MODELS + [LEAVING]))
def test_reasons_support_alerts_of_a_cancellation_with_renewals(events: list[Event], after_ms: int, extra_days: int,
                                                                model: ChurnModel) -> None:
    """:func:`test_reasons_support_alerts_with_renewals` of histories that end with a ``cancel``
    event, often while a paid period runs (rare in the histories alone: a cancellation stands only
    without activity on a later day), paused ones too: a cancellation during a pause ranks its
    reasons on the whole risk, as outside one, and the alerts for the worse before it on the
    "already gone" part alone (models.reasons._leaves; before 2026-12-05 a cancellation during a
    pause put the silence first from the pause's leave part 0, and paused histories were left out)."""
    last = max(e.ts_ms for e in events)
    _check_renewal_reasons([*events, Event("u", last + after_ms, "cancel", "c-last")], extra_days, model)


def _check_renewal_reasons(events: list[Event], extra_days: int, model: ChurnModel) -> None:
    out = advance("u", None, events, events[-1].ts_ms + extra_days * DAY_MS, model)
    for alert in out.alerts:
        sig = alert.scores.signals
        assert sig is not None and (alert.scores.reasons or alert.kind == "stage_changed")
        reasons = alert.scores.reasons
        renewal = [r for r in reasons if r.startswith(("renewal due", "paid period ended", "paid through"))]
        days = (sig.period_end_s - 1) // DAY_S - sig.now_s // DAY_S  # calendar days to the last day paid
        # a cancellation while a paid period runs: no renewal is due, the cancellation says until when the plan is paid
        folded = sig.cancelled and sig.period_end_s > sig.now_s
        if sig.cancelled and alert.kind != "recovered" and not (alert.kind == "stage_changed" and alert.scores.stage in ("active", "reactivated")):
            _check_cancelled(reasons, sig.period_end_s if folded else 0, days)
        if exit_open(sig, model):
            if alert.kind == "at_risk":
                then = _state_at(events, alert.event_time_ms, model)
                news = sig.period_end_s <= sig.now_s or bool(then.flags & LONG_PERIOD) or days <= RENEWAL_NEWS_DAYS
                news = news and not folded
                assert (len(renewal) == 1) == (sig.period_end_s > 0 and news), (reasons, days, then.flags)
                if renewal and renewal[0].startswith("renewal due"):
                    assert reasons.index(renewal[0]) == len(reasons) - 1, reasons
                elif renewal:
                    assert reasons.index(renewal[0]) == (1 if sig.cancelled else 0), reasons
            check_alert(alert, model)
        elif alert.kind == "recovered" or (alert.kind == "stage_changed" and alert.scores.stage in ("active", "reactivated")):
            # right after the return where it holds: "came back ..." of a reactivated user, then the
            # activity back at their level (QA19 F6, docs/ALERTS.md recovered), both may lead it
            first = 0
            while first < len(reasons) and reasons[first].startswith(_RETURN):
                first += 1
            assert renewal and renewal[0].startswith("paid through") and reasons.index(renewal[0]) == first, reasons
        else:  # what pushes the risk up with the exit closed: the "already gone" part only; a plan
            # longer than 45 days tells its renewal at any distance, last (QA23a F3: a silent annual subscriber)
            then = _state_at(events, alert.event_time_ms, model)
            long_plan = bool(then.flags & LONG_PERIOD) and sig.period_end_s > sig.now_s and not folded
            assert renewal == ([reasons[-1]] if long_plan and reasons[-1].startswith("renewal due") else []), reasons


def _check_cancelled(reasons: tuple[str, ...], end_s: int, days: int) -> None:
    """A standing cancellation is said once, and with the paid period's last day and the calendar
    days to it when one still runs (``end_s``, else 0: "cancelled today; paid through 2026-12-31
    (in 334 days)"); no renewal is due of a cancelled plan, so none is said."""
    told = [r for r in reasons if r.startswith("cancelled")]
    assert len(told) == 1 and not any(r.startswith("renewal due") for r in reasons), reasons
    if end_s:
        last = datetime.fromtimestamp(end_s - 1, timezone.utc).date().isoformat()
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        assert told[0].endswith(f"; paid through {last} ({when})"), (reasons, last, when)
    else:
        assert "paid through" not in told[0], reasons


def test_scores_without_a_period_end_do_not_change() -> None:
    """A statement without a period end changes nothing the golden digests hash but the paying
    flag and the action it gives (models.actions, QA pass 6 M1): the same risk, stages, alerts
    and reasons; with the flag cleared, the very record of the user without the statement."""
    events = _daily(range(30))
    plain = advance("u", None, events, T0_MS + 60 * DAY_MS, ChurnModel())
    with_statement = advance("u", None, [_sub(T0_MS + DAY_MS, 0), *events], T0_MS + 60 * DAY_MS, ChurnModel())
    assert with_statement.state.flags == PAYS_SUBSCRIPTION | EVER_PAID  # (EVER_PAID: QA24a F4, no score reads it)
    unflagged = with_statement.state.copy()
    unflagged.flags = 0
    assert plain.state.to_bytes() == unflagged.to_bytes()
    masked = [{**a.to_dict(), "action": None} for a in plain.alerts]
    assert masked == [{**a.to_dict(), "action": None} for a in with_statement.alerts]
    now_s = T0_MS // 1000 + 61 * DAY_S
    a, b = score(plain.state, now_s, ChurnModel()), score(with_statement.state, now_s, ChurnModel())
    assert repr(replace(a, action="none")) == repr(replace(b, action="none"))


def test_renewal_due_counts_calendar_days_to_the_date_it_names_as_the_account_views_do() -> None:
    """QA11 F8: paid through 2025-07-19 13:32, seen 2025-07-14 00:02, the reason said "renewal due
    in 6 days" (a ceiling of a time the state had rounded up to a day) while the account views
    said "in 5 days". Both now count calendar days with one function
    (models.subscription.calendar_days); the last paid day itself is "due today"."""
    from models.reasons import _renewal_text
    from streams.views import renewal

    end_ms = 1_773_408_720_000  # 2026-03-13 13:32 UTC
    st_ = _state_of([_sub(T0_MS, end_ms), *_daily(range(3))])
    for now_ms, n in ((1_772_406_000_000, 12), (1_773_352_800_000, 1), (1_773_396_000_000, 0)):  # 03-01 23:00, 03-12 22:00, 03-13 10:00
        text = _renewal_text(compute_signals(st_, now_ms // 1000, LEAVING), LEAVING, True)
        when = "today" if n == 0 else f"in {n} day{'s' if n != 1 else ''}"
        assert text == f"renewal due {when} (paid through 2026-03-13)", text
        assert renewal(end_ms, now_ms) == ("2026-03-13", n)


def test_a_churned_user_in_a_pause_with_no_resume_date_is_not_scheduled_past_the_record() -> None:
    """A random run (test_order_and_batching_do_not_matter_with_statements): a user who cancelled,
    then stated a trial and a pause with no resume date (``period_end_day`` at MAX_PERIOD_END_DAY,
    the year 2149) was scheduled a review at the pause's "end", past the record's 32-bit seconds:
    ``to_bytes`` raised struct.error. Such a pause has no end to look at: no review is scheduled
    (an event is one)."""
    t0 = 1_767_225_600_000  # 2026-01-01
    events = [Event("u", t0, "view", "e0"), Event("u", t0, "view", "e1"), Event("u", t0, "cancel", "e2"),
              Event("u", t0 + 36 * DAY_S * 1000, "subscription", "s0", subscription=Subscription("trial", "Pro", 4999)),
              Event("u", t0 + 96 * DAY_S * 1000, "subscription", "s1", subscription=Subscription("paused", "Pro", 4999))]
    out = advance("u", None, events, t0 + 215 * DAY_S * 1000, ChurnModel())
    assert out.state.period_end_day == MAX_PERIOD_END_DAY and STAGES[out.state.stage] == "churned"
    assert 0 <= out.state.next_review_s < 2**32
    assert UserState.from_bytes(out.state.to_bytes()) == out.state
