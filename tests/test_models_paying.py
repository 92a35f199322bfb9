"""A customer whose paid period runs is not lapsed (QA21 F1, F4; models.lifecycle rule 0).

A subscribe-and-save customer who pays every month and rarely visits: while the latest
statement's period end is ahead, silence makes them declining (the save list, at-risk alerts, a
check-in), never dormant or churned (the win-back list, ``win_back``); from the period's end
without a renewal, after the renewal's grace (a day: models.signals.RENEWAL_GRACE_S), the silence
rules apply, to the second. Their purchase reasons say the
subscription is apart from the one-off orders counted.
"""

from __future__ import annotations

from models.actions import recommend
from models.engine import advance
from models.events import Event
from models.lifecycle import LAPSED, next_change_s, stage_of
from models.model import ChurnModel
from models.ranking import on_save_list
from models.reasons import _words
from models.scoring import assess, score
from models.signals import RENEWAL_GRACE_S, compute_signals
from models.state import STAGES
from models.subscription import Subscription
from models.temperature import p_back_within
from tests.test_models_properties import DAY_MS, T0_MS, _state_of

M = ChurnModel()
DAY_S = DAY_MS // 1000


def _statement(day: int, status: str = "active") -> Event:
    """A monthly statement on ``day`` at 01:00 paying 54.50 for 30 days (through day + 30, 01:00:
    the state rounds it up to the end of that day, models.state.period_end_day)."""
    sub = Subscription(status, "sns-coffee-2kg", 0 if status == "cancelled" else 5450, 0,  # type: ignore[arg-type]
                       T0_MS + (day + 30) * DAY_MS + 3_600_000)
    return Event("u", T0_MS + day * DAY_MS + 3_600_000, "subscription", f"s{day:04d}", 0.0, "", sub)


def _visits(days: range) -> list[Event]:
    return [Event("u", T0_MS + d * DAY_MS + 12 * 3_600_000, "view", f"v{d:04d}") for d in days]


def _subscriber(renewals: int) -> list[Event]:
    """Visits every other day for 40 days, statements every 30 days from day 0 (``renewals`` of them)."""
    return sorted([*_visits(range(0, 40, 2)), *(_statement(30 * k) for k in range(renewals))], key=lambda e: e.ts_ms)


def test_a_silent_subscriber_is_declining_while_paid_and_lapses_at_the_period_end() -> None:
    """Silent from day 38, renewed to day 180 (paid through day 180, so to day 181 00:00): declining
    (on the save list, not told win_back) until then and through the renewal's grace (day 182
    00:00), churned from that very second, as a user without statements is."""
    st_ = _state_of(_subscriber(6))
    end_s = T0_MS // 1000 + 181 * DAY_S + RENEWAL_GRACE_S
    for day in (70, 100, 150, 180):
        s = score(st_, T0_MS // 1000 + day * DAY_S, M)
        assert s.stage == "declining" and s.action != "win_back", (day, s.stage, s.action)
    plain = _state_of(_visits(range(0, 40, 2)))
    assert score(plain, end_s - 1, M).stage in LAPSED  # without the statements: lapsed long before
    assert stage_of(st_, compute_signals(st_, end_s - 1, M), M) == "declining"
    assert stage_of(st_, compute_signals(st_, end_s, M), M) == score(plain, end_s, M).stage == "churned"


def test_the_engine_reviews_at_the_period_end_and_alerts_there() -> None:
    """The stage changes of a silent subscriber: to declining while paid, at-risk possible; the
    change out of it at the second the paid period's grace ends (models.lifecycle.next_change_s)."""
    events = _subscriber(3)  # paid through day 90 (to day 91 00:00), its grace to day 92 00:00
    end_ms = T0_MS + 91 * DAY_MS + RENEWAL_GRACE_S * 1000
    out = advance("u", None, events, T0_MS + 200 * DAY_MS, M)
    changes = [(a.event_time_ms, a.scores.stage) for a in out.alerts if a.kind == "stage_changed"]
    paid = [(t, s) for t, s in changes if t < end_ms]
    assert paid and all(s not in LAPSED for _, s in paid), changes
    after = [(t, s) for t, s in changes if t >= end_ms]
    assert after[0] == (end_ms, "churned"), changes
    assert all(a.scores.action != "win_back" for a in out.alerts if a.event_time_ms < end_ms)


def test_next_change_finds_the_period_end_when_it_held_off_the_lapse() -> None:
    """From each review next_change_s schedules (the dormant and churned crossings while paid are
    reviews that change nothing), the first change is at the paid period's end and its grace, to
    the second."""
    st_ = _state_of(_subscriber(3))
    now = T0_MS // 1000 + 80 * DAY_S
    st_.stage, st_.stage_since_s = STAGES.index("declining"), now
    at = (lambda t: stage_of(st_, compute_signals(st_, t, M), M))
    while at(now) == "declining":
        t = next_change_s(st_, compute_signals(st_, now, M), M)
        assert t > now and at(t - 1) == "declining"
        now = t
    assert now == T0_MS // 1000 + 91 * DAY_S + RENEWAL_GRACE_S and at(now) == "churned"


def test_a_cancelled_statement_ends_the_paid_period_and_the_old_rules_apply() -> None:
    events = [*_subscriber(2), _statement(45, "cancelled")]
    st_ = _state_of(sorted(events, key=lambda e: e.ts_ms))
    assert score(st_, T0_MS // 1000 + 70 * DAY_S, M).stage in LAPSED  # paid through day 60


def test_the_save_list_holds_them_and_the_action_is_no_win_back() -> None:
    st_ = _state_of(_subscriber(6))
    now = T0_MS // 1000 + 120 * DAY_S
    s = score(st_, now, M)
    st_.stage, st_.stage_since_s = STAGES.index(s.stage), now
    assert on_save_list(st_) and s.action in ("check_in", "educate")
    assert recommend("churned", 90, 90, True, M) == "win_back"  # a lapsed user still is won back


def test_a_subscribers_purchase_reasons_say_the_subscription_is_apart() -> None:
    """QA21 F4: "no purchases since first seen, against 1.8 for a typical user" on the at-risk
    alerts of customers paying 54.50 a month. Every purchase fact of a paying subscriber says the
    subscription is apart (a typical user of 1.8 purchase days, as QA21's trained model had); a
    user without a subscription reads as before."""
    base = ChurnModel().with_(tracked_types=("view", "purchase"))
    model = base.with_(risk_means={**base.risk_means, "lifetime:purchase": 1.03})  # log1p(1.8)
    now = T0_MS // 1000 + 45 * DAY_S
    said = {}
    for who, events in (("subscriber", _subscriber(2)), ("plain", _visits(range(0, 40, 2)))):
        st_ = _state_of(events)
        a = assess(st_, now, model)
        said[who] = [_words(k, st_, a.signals, a.features, p_back_within(a.signals, model), model, True)
                     for k in ("lifetime:purchase", "buyer", "purchases", "revenue")]
    assert said["plain"] == ["no purchases since first seen, against 1.8 for a typical user", "never bought",
                             "no purchase so far", "spent 0.0 so far"]
    assert said["subscriber"] == ["no purchases besides the subscription since first seen, against 1.8 for a typical user",
                                  "never bought besides the subscription", "no purchase besides the subscription so far",
                                  "spent 0.0 besides the subscription so far"]
