"""A subscriber's add-on orders are no re-order overdue while the paid period runs (QA21 F3,
models.signals.reorder_late): the subscription is the re-order. From the period's end without a
renewal (after the renewal's grace, a day: models.signals.RENEWAL_GRACE_S), or from a
cancellation, the add-on rhythm counts again, at that second."""

from __future__ import annotations

import pytest

from models.engine import Alert, advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.scoring import assess, risk_after, risk_at
from models.signals import RENEWAL_GRACE_S, reorder_late, reorder_late_opens_s, reorder_late_s
from models.state import DAY_S
from models.subscription import Subscription
from models.temperature import p_back_within, plan_carries
from tests.test_models_alert_policy import T0_MS, _visits_and_orders
from tests.test_models_reorder import NEVER_BY_RISK

DAY_MS = 86_400_000
ORDERS = (0, 30, 60, 90)  # add-ons every 30 days: late at 90 + ln(5) x 30 = day 138.3
VISITS = tuple(range(5, 200, 5))  # still browsing: never lapsed by the visit rhythm


def _statement(day: int, status: str = "active") -> Event:
    """A monthly statement on ``day`` at 01:00 paying 34.50 through day + 30 (the state rounds the
    end up to day + 31, 00:00: models.state.period_end_day)."""
    sub = Subscription(status, "sns-pet-small", 0 if status == "cancelled" else 3450, 0,  # type: ignore[arg-type]
                       T0_MS + (day + 30) * DAY_MS + 3_600_000)
    return Event("u", T0_MS + day * DAY_MS + 3_600_000, "subscription", f"s{day:04d}", 0.0, "", sub)


def _history(statement_days: tuple[int, ...], cancel_day: int | None = None) -> list[Event]:
    events = [*_visits_and_orders(ORDERS, VISITS), *(_statement(d) for d in statement_days)]
    if cancel_day is not None:
        events.append(_statement(cancel_day, "cancelled"))
    return sorted(events, key=lambda e: e.ts_ms)


def _reorder_alerts(events: list[Event], end_day: int) -> list[Alert]:
    out = advance("u", None, events, T0_MS + end_day * DAY_MS, NEVER_BY_RISK).alerts
    return [a for a in out if a.kind == "at_risk" and a.event_time_ms > T0_MS + 90 * DAY_MS]


def test_no_re_order_alert_while_the_plan_is_paid() -> None:
    """Renewed every 30 days to day 211: the add-on rhythm is 70 days past its late line at day 200,
    and no alert (the risk never reaches NEVER_BY_RISK's line; only the re-order rule could open one)."""
    events = _history(tuple(range(0, 181, 30)))
    assert _reorder_alerts(events, 200) == []
    now_s = (T0_MS + 200 * DAY_MS) // 1000
    a = assess(advance("u", None, events, now_s * 1000, NEVER_BY_RISK).state, now_s, NEVER_BY_RISK)
    assert not reorder_late(a.signals) and a.signals.period_end_s > now_s
    assert reorder_late_s(a.signals) == 0  # the rhythm itself is late: alert_may_open lets the risk open one
    assert reorder_late_opens_s(a.signals) == a.signals.period_end_s + RENEWAL_GRACE_S


def test_the_same_orders_without_a_plan_alert_at_the_late_line() -> None:
    alerts = _reorder_alerts(_history(()), 200)
    late_ms = T0_MS + 90 * DAY_MS + 15 * 3_600_000 + 60_000 + 1.6094 * 30 * DAY_MS
    assert len(alerts) == 1 and abs(alerts[0].event_time_ms - late_ms) < 3_600_000
    assert alerts[0].scores.reasons[0].startswith("usual re-order every 30 days")


def test_the_rhythm_counts_again_from_the_period_end_to_the_second() -> None:
    """Last renewal on day 150, paid to day 181 00:00: the re-order alert opens at the end of the
    renewal's grace, day 182 00:00, the unrenewed period first (a fact of leaving, models.reasons), the re-order next, of the orders
    besides the subscription (the latest statement paid: models.reasons._besides)."""
    alerts = _reorder_alerts(_history(tuple(range(0, 151, 30))), 200)
    assert [a.event_time_ms for a in alerts] == [T0_MS + 181 * DAY_MS + RENEWAL_GRACE_S * 1000]
    assert list(alerts[0].scores.reasons[:2]) == ["paid period ended 1 day ago (2026-06-30), no renewal stated",
                                            "usual re-order besides the subscription every 30 days, none for 91 days"]


def test_a_cancellation_ends_the_paid_period_and_the_re_order_alert_opens_at_it() -> None:
    """Renewals to day 180, cancelled on day 160 (01:00): the statement is a review, and the add-on
    rhythm, long late, opens the alert then."""
    alerts = _reorder_alerts(_history(tuple(range(0, 151, 30)), cancel_day=160), 200)
    assert [a.event_time_ms for a in alerts] == [T0_MS + 160 * DAY_MS + 3_600_000]
    assert alerts[0].scores.reasons[0] == "usual re-order every 30 days, none for 69 days"  # no plan paid: no "besides"


# A subscriber who keeps coming is not cooled by their add-ons (QA23a F4, models.temperature.plan_carries):
# a fitness app's loyal monthly subscribers, an add-on programme every 54 days, were at temperature
# 3-10 and opened at-risk alerts "usual re-order besides the subscription every 54 days, none for
# 191 days" by the purchase rhythm's P(alive). While their own paid period runs and their visit
# rhythm says they are more likely than not back within the horizon, the visits judge them; when
# their visits fall too, or the period ends unrenewed, the add-on rhythm counts again.
BGNBD = {"r": 0.57, "alpha": 151.7, "a": 2.06e6, "b": 2.04e6}  # QA23a's trained purchase fit (model.json)
ADDON = load_model().with_(bgnbd=BGNBD)
DAILY = tuple(range(0, 200))  # a visit every day to day 199
RENEWALS = tuple(range(0, 181, 30))  # paid to day 211


def _subscriber(statement_days: tuple[int, ...], visits: tuple[int, ...] = DAILY, account: str = "") -> list[Event]:
    events = [*_visits_and_orders(ORDERS, visits), *(_statement(d) for d in statement_days)]
    if account:
        events = [Event(e.user_id, e.ts_ms, e.type, e.event_id, e.amount, account, e.subscription) for e in events]
    return sorted(events, key=lambda e: e.ts_ms)


def _assess(events: list[Event], day: float, model: ChurnModel = ADDON):  # type: ignore[no-untyped-def]
    now_s = int(T0_MS // 1000 + day * DAY_S)
    return assess(advance("u", None, [e for e in events if e.ts_ms <= now_s * 1000], now_s * 1000, model).state, now_s, model), now_s


def test_a_subscriber_who_keeps_coming_is_judged_by_the_visits() -> None:
    """Day 200: the add-on rhythm (30 days) is 110 days silent, the visits daily, the plan paid: the
    temperature and P(alive) are the visit rhythm's (the model without a purchase fit), not the
    purchases'; the same history without a plan keeps the lower of the two (a shop, unchanged)."""
    a, now_s = _assess(_subscriber(RENEWALS), 200.0)
    plain, _ = _assess(_subscriber(RENEWALS), 200.0, NEVER_BY_RISK)  # no BG/NBD: the visits alone
    back, source = p_back_within(a.signals, ADDON)
    assert source == "visits" and back == pytest.approx(p_back_within(plain.signals, NEVER_BY_RISK)[0]) and back > 0.9
    assert a.stay_source == "visits" and a.p_stay == pytest.approx(plain.p_stay)
    assert plan_carries(a.signals, now_s, back, ADDON.compiled)
    shop, _ = _assess(_subscriber(()), 200.0)
    assert p_back_within(shop.signals, ADDON)[1] == "purchases" and shop.stay_source == "purchases"
    assert p_back_within(shop.signals, ADDON)[0] < 0.5 and shop.p_stay < a.p_stay


def test_the_add_ons_count_again_when_the_visits_fall_too() -> None:
    """Visits stop on day 150 with the plan paid to day 211: the visit temperature falls under the
    action's cut (50) some days later, and from then the add-on rhythm counts again, the lower of
    the two, as for anybody; the risk in silence (the engine's look ahead) jumps at the same second
    as the risk scored then."""
    events = _subscriber(RENEWALS, tuple(range(0, 150)))
    days = [150.5 + d / 4 for d in range(0, 160)]
    carried = []
    for day in days:
        a, now_s = _assess(events, day)
        visits = p_back_within(a.signals, NEVER_BY_RISK)[0]  # the visit temperature
        carried.append(plan_carries(a.signals, now_s, visits, ADDON.compiled))
        back = p_back_within(a.signals, ADDON)[0]
        assert back == visits if carried[-1] else back <= visits
    switch = carried.index(False)
    assert 0 < switch and not any(carried[switch:])  # monotone: once counted, counted in silence
    a, now_s = _assess(events, days[switch])
    back = p_back_within(a.signals, NEVER_BY_RISK)[0]  # the visit temperature
    assert back < 0.5 and a.signals.period_end_s > now_s and a.stay_source == "purchases"
    before, t0 = _assess(events, days[switch - 1])
    for day in (days[switch - 1] + 0.01, days[switch], days[switch] + 3.0):
        t = int(T0_MS // 1000 + day * DAY_S)
        assert risk_after(before, t, ADDON) == pytest.approx(risk_at(_state_at(events, t), t, ADDON), abs=1e-9)


def _state_at(events: list[Event], t_s: int):  # type: ignore[no-untyped-def]
    return advance("u", None, [e for e in events if e.ts_ms <= t_s * 1000], t_s * 1000, ADDON).state


def test_the_add_ons_count_again_from_the_period_end() -> None:
    """Last renewal on day 150 (paid to day 181 00:00), daily visits: the visits judge the user to
    the end of the renewal's grace (a day after it, models.signals.paid_period_runs), the add-on
    rhythm from it."""
    events = _subscriber(tuple(range(0, 151, 30)))
    grace_days = RENEWAL_GRACE_S / DAY_S
    inside, _ = _assess(events, 180.9 + grace_days)
    after, _ = _assess(events, 181.01 + grace_days)
    assert inside.stay_source == "visits" and p_back_within(inside.signals, ADDON)[1] == "visits"
    assert after.stay_source == "purchases" and p_back_within(after.signals, ADDON)[1] == "purchases"


def test_an_account_members_statement_is_not_their_own_plan() -> None:
    """The same history sent with a company's (a guild's) account_id: the statements are the
    account's (models.state ACCOUNT_MEMBER), and the add-on rhythm counts as before (a game's
    battle-pass players, QA22b, unchanged)."""
    a, now_s = _assess(_subscriber(RENEWALS, account="guild1"), 200.0)
    assert a.signals.member and a.signals.period_end_s > now_s
    assert a.stay_source == "purchases" and p_back_within(a.signals, ADDON)[1] == "purchases"


def test_no_at_risk_alert_from_the_add_ons_of_a_subscriber_who_keeps_coming() -> None:
    """With the purchase fit and the shipped line, the add-on rhythm's P(alive) opened an at-risk
    alert on the daily subscriber, the add-on fact first; with the plan carrying them none opens,
    and the same history without a plan still gets its re-order alert."""
    end = T0_MS + 200 * DAY_MS
    subscribed = [a for a in advance("u", None, _subscriber(RENEWALS), end, ADDON).alerts if a.kind == "at_risk"]
    assert subscribed == []
    shop = [a for a in advance("u", None, _subscriber(()), end, ADDON).alerts if a.kind == "at_risk"]
    assert shop and shop[0].scores.reasons[0].startswith("usual re-order every 30 days")
