"""The at-risk alert policy of models.engine: a repeat buyer is not at risk before the next order is due."""

from __future__ import annotations

from models.engine import Alert, advance
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
    """A visit then ``second`` (an order, or another visit) on days 0, 30 and 60, at 15:00 UTC."""
    out = []
    for k, day in enumerate((0, 30, 60)):
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
    """The same visits without orders (or with one order: no rhythm yet) open at the risk crossing, days earlier."""
    buyer = _orders_every_30_days("purchase")
    buyer_opened = _at_risk(buyer)[-1].event_time_ms
    for events in (_orders_every_30_days("click"), _orders_every_30_days("click")[:-1] + buyer[-1:]):
        alerts = [a for a in _at_risk(events) if a.event_time_ms > buyer[-1].ts_ms]
        assert len(alerts) == 1 and alerts[0].event_time_ms < buyer_opened - DAY_MS
