"""A subscriber's add-on orders are no re-order overdue while the paid period runs (QA21 F3,
models.signals.reorder_late): the subscription is the re-order. From the period's end without a
renewal (after the renewal's grace, a day: models.signals.RENEWAL_GRACE_S), or from a
cancellation, the add-on rhythm counts again, at that second."""

from __future__ import annotations

from models.engine import Alert, advance
from models.events import Event
from models.scoring import assess
from models.signals import RENEWAL_GRACE_S, reorder_late, reorder_late_opens_s, reorder_late_s
from models.subscription import Subscription
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
