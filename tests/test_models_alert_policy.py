"""The at-risk alert policy of models.engine: a repeat buyer is not at risk before the next order is due (their own
interval), nor a user just back from churned."""

from __future__ import annotations

from models.engine import Alert, advance, alert_may_open
from models.events import Event
from models.model import load_model
from models.scoring import assess
from models.state import DAY_S

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = DAY_S * 1000
END_MS = T0_MS + 130 * DAY_MS
# The shipped default's weights; thresholds set so the first weeks open nothing (the test is about the order rhythm).
MODEL = load_model().with_(risk_enter=0.8, risk_exit=0.5)


def _orders_every_30_days(second: str) -> list[Event]:
    """A visit then ``second`` (an order, or another visit) on days 0 and 30, at 15:00 UTC (two orders: one
    interval, no re-order rhythm yet, models.signals.REORDER_MIN_INTERVALS; with three the alert waits for the
    re-order to be late: tests/test_models_reorder.py)."""
    out = []
    for k, day in enumerate((0, 30)):
        t = T0_MS + day * DAY_MS + 15 * 3_600_000
        out += [Event("u", t, "view", f"v{k}"), Event("u", t + 60_000, second, f"p{k}", 40.0 if second == "purchase" else 0.0)]
    return out


def _at_risk(events: list[Event], cut_ms: int | None = None) -> list[Alert]:
    if cut_ms is None:
        out = advance("u", None, events, END_MS, MODEL)
        return [a for a in out.alerts if a.kind == "at_risk"]
    first = advance("u", None, [e for e in events if e.ts_ms < cut_ms], cut_ms, MODEL)
    second = advance("u", first.state, [e for e in events if e.ts_ms >= cut_ms], END_MS, MODEL)
    return [a for a in first.alerts + second.alerts if a.kind == "at_risk"]


def test_repeat_buyer_alert_waits_for_the_next_order_to_fall_due() -> None:
    events = _orders_every_30_days("purchase")
    last_order_ms = events[-1].ts_ms
    alerts = [a for a in _at_risk(events) if a.event_time_ms > last_order_ms]
    assert len(alerts) == 1
    opened_ms = alerts[0].event_time_ms
    # usual interval between orders: 30 days shrunk towards the 30-day prior, so due 30 days after the last order
    assert last_order_ms + 30 * DAY_MS <= opened_ms <= last_order_ms + 30 * DAY_MS + 2_000
    # the risk had crossed risk_enter days before: only the order rhythm held the alert back
    assert assess(advance("u", None, events, opened_ms - 3 * DAY_MS, MODEL).state, opened_ms // 1000 - 3 * DAY_S, MODEL).risk >= MODEL.risk_enter
    assert alerts[0].scores.risk >= MODEL.risk_enter and alerts[0].scores.stage in ("active", "declining")
    # the same alert whether the silence is reviewed in one call or two
    assert [a.alert_id for a in _at_risk(events, last_order_ms + 20 * DAY_MS)][-1:] == [alerts[0].alert_id]


def test_users_without_an_order_rhythm_alert_on_the_risk_alone() -> None:
    """The same visits without orders open at the risk crossing, days earlier."""
    buyer = _orders_every_30_days("purchase")
    buyer_opened = _at_risk(buyer)[-1].event_time_ms
    # the visitor's alert opened in their first weeks and stays open: two visits 30 days apart are
    # no return to a level of use (QA19 F6: a recovery waits for the user to be back), so it
    # stands at the buyer's opening, days before it
    clicks = [a for a in advance("u", None, _orders_every_30_days("click"), END_MS, MODEL).alerts if a.kind != "stage_changed"]
    assert [a.kind for a in clicks] == ["at_risk"] and clicks[0].event_time_ms < buyer_opened - DAY_MS
    # (a one-order buyer's first return due at the population's interval: tests/test_models_new_customer.py)


def _visits_and_orders(order_days: tuple[int, ...], visit_days: tuple[int, ...]) -> list[Event]:
    """A visit on each of ``visit_days`` and an order (a visit, then a purchase a minute later) on
    each of ``order_days``, at 15:00 UTC."""
    out = []
    for day in sorted(set(order_days) | set(visit_days)):
        t = T0_MS + day * DAY_MS + 15 * 3_600_000
        out.append(Event("u", t, "view", f"v{day}"))
        if day in order_days:
            out.append(Event("u", t + 60_000, "purchase", f"p{day}", 40.0))
    return out


def test_a_buyer_slower_than_the_population_is_not_at_risk_before_their_own_interval() -> None:
    """QA12 F1 (c01509): orders 42 days apart, a visit between. The usual interval shrunk towards the
    30-day prior is (42 + 30) / 2 = 36 days; the order is due at the user's own 42 (models.signals.order_due_s)."""
    events = _visits_and_orders((0, 42), (21,))
    last_order_ms = events[-1].ts_ms
    alerts = [a for a in _at_risk(events) if a.event_time_ms > last_order_ms]
    assert len(alerts) == 1
    opened_ms = alerts[0].event_time_ms
    assert last_order_ms + 42 * DAY_MS <= opened_ms <= last_order_ms + 42 * DAY_MS + 2_000
    # the risk was over the line at the shrunk estimate's due time already, and the user still reachable
    at_36 = assess(advance("u", None, events, last_order_ms + 36 * DAY_MS, MODEL).state, last_order_ms // 1000 + 36 * DAY_S, MODEL)
    assert at_36.risk >= MODEL.risk_enter and at_36.stage == "declining"
    assert round(at_36.signals.purchase_gap_days, 6) == 36.0
    assert alerts[0].scores.stage in ("active", "declining")
    # the same alert whether the silence is reviewed in one call or two
    assert [a.alert_id for a in _at_risk(events, last_order_ms + 38 * DAY_MS)][-1:] == [alerts[0].alert_id]


def test_alert_may_open_holds_a_buyer_until_their_own_interval_has_passed() -> None:
    events = _visits_and_orders((0, 42), (21,))
    last_order_s = events[-1].ts_ms // 1000

    def may_open(days: float) -> bool:
        now_s = last_order_s + int(days * DAY_S)
        return alert_may_open(assess(advance("u", None, events, now_s * 1000, MODEL).state, now_s, MODEL), now_s, MODEL.compiled)

    assert [may_open(d) for d in (36.5, 39.0, 41.9, 42.01)] == [False, False, False, True]


# Thresholds under which a buyer who lapsed without an open alert is over the line when back.
BACK_MODEL = load_model().with_(risk_enter=0.45, risk_exit=0.4)
# dormant (visit rhythm) before the order is due: a visit after the last order, so the visits judge the
# lapse (a buyer seen on nothing since their order is not lapsed before it is late: models.lifecycle.lapse_floor_days)
_LAPSED_BUYER = _visits_and_orders((0, 60), (*range(0, 61, 5), 62))
_RETURN_DAY = 200


def _back(days: tuple[int, ...]) -> list[Alert]:
    events = _LAPSED_BUYER + _visits_and_orders((), days)
    return advance("u", None, events, T0_MS + (_RETURN_DAY + 20) * DAY_MS, BACK_MODEL).alerts


def _returned_ms(alerts: list[Alert]) -> int:
    back = [a for a in alerts if a.kind == "stage_changed" and a.scores.stage == "reactivated"]
    assert len(back) == 1 and back[0].previous_stage == "churned"
    return back[0].event_time_ms


def test_no_at_risk_alert_opens_while_a_user_is_just_back_from_churned() -> None:
    """QA12 F3: the review at a return scores a user just out of a long silence, over the line. No
    alert opens while the user is "reactivated" (BACK_MODEL.new_days); held back, not lost: silent
    after the return, the user gets it at the review that ends the stage."""
    alerts = _back((_RETURN_DAY,))
    returned_ms = _returned_ms(alerts)
    assert next(a for a in alerts if a.event_time_ms == returned_ms).scores.risk >= BACK_MODEL.risk_enter
    opened = [a for a in alerts if a.kind == "at_risk" and a.event_time_ms >= returned_ms]
    spell_ms = int(BACK_MODEL.new_days * DAY_MS)
    assert len(opened) == 1 and opened[0].scores.stage != "reactivated"
    assert returned_ms + spell_ms <= opened[0].event_time_ms <= returned_ms + spell_ms + 2_000
    # the same alert however the silence after the return is cut
    cut_ms = returned_ms + 3 * DAY_MS
    events = _LAPSED_BUYER + _visits_and_orders((), (_RETURN_DAY,))
    first = advance("u", None, events, cut_ms, BACK_MODEL)
    second = advance("u", first.state, [], T0_MS + (_RETURN_DAY + 20) * DAY_MS, BACK_MODEL)
    assert [a.alert_id for a in first.alerts + second.alerts if a.kind == "at_risk"][-1:] == [opened[0].alert_id]


def test_a_user_who_stays_back_gets_no_at_risk_alert() -> None:
    """Back and visiting daily, or back and ordering: by the end of the stage the risk is under the line."""
    for days, order_days in ((tuple(range(_RETURN_DAY, _RETURN_DAY + 10)), ()), ((_RETURN_DAY,), (_RETURN_DAY + 3,))):
        events = _LAPSED_BUYER + _visits_and_orders(order_days, days)
        alerts = advance("u", None, events, T0_MS + (_RETURN_DAY + 20) * DAY_MS, BACK_MODEL).alerts
        returned_ms = _returned_ms(alerts)
        assert not [a for a in alerts if a.kind == "at_risk" and a.event_time_ms >= returned_ms]


def test_alert_may_open_refuses_a_user_just_back_from_churned() -> None:
    events = _LAPSED_BUYER + _visits_and_orders((), (_RETURN_DAY,))
    returned_s = events[-1].ts_ms // 1000

    def may_open(days: float) -> tuple[str, bool]:
        now_s = returned_s + int(days * DAY_S)
        a = assess(advance("u", None, events, now_s * 1000 + 1, BACK_MODEL).state, now_s, BACK_MODEL)
        return a.stage, alert_may_open(a, now_s, BACK_MODEL.compiled) and a.risk >= BACK_MODEL.risk_enter

    assert [may_open(d) for d in (0, 1, 13.9)] == [("reactivated", False)] * 3
    assert may_open(BACK_MODEL.new_days)[1]
