"""The re-order save alert (QA12 F2) and no at-risk alert on a one-day user's first days (QA12 F10):
models.signals.reorder_late / reorder_late_s and models.engine's alert rules (docs/SCORES.md)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from models.engine import Alert, advance, alert_may_open
from models.events import Event
from models.model import load_model
from models.scoring import assess
from models.signals import REORDER_LATE_CHANCE, REORDER_LATE_FACTOR, days_overdue, order_gap_days, reorder_late
from models.state import DAY_S
from tests.test_models_alert_policy import T0_MS, _visits_and_orders

DAY_MS = DAY_S * 1000
# The shipped default's weights with a line the risk never reaches: only the re-order rule can open an alert.
NEVER_BY_RISK = load_model().with_(risk_enter=0.9999, risk_exit=0.5)


def _shop(order_days: tuple[int, ...], visit_days: tuple[int, ...] = ()) -> list[Event]:
    """The alert policy tests' shop history: a visit on each day, an order a minute after the visit on ``order_days``."""
    return _visits_and_orders(order_days, visit_days)


def _alerts(events: list[Event], end_ms: int, model=NEVER_BY_RISK, cut_ms: int | None = None) -> list[Alert]:  # type: ignore[no-untyped-def]
    if cut_ms is None:
        return advance("u", None, events, end_ms, model).alerts
    first = advance("u", None, [e for e in events if e.ts_ms < cut_ms], cut_ms, model)
    return first.alerts + advance("u", first.state, [e for e in events if e.ts_ms >= cut_ms], end_ms, model).alerts


def test_the_level_is_the_stated_chance() -> None:
    assert math.isclose(math.exp(-REORDER_LATE_FACTOR), REORDER_LATE_CHANCE)
    assert 1.6 < REORDER_LATE_FACTOR < 1.61


def test_a_42_day_buyer_late_on_a_re_order_gets_a_save_alert_in_plain_words() -> None:
    """Four orders 42 days apart, no visit between (coffee by the bag). With a line the risk never reaches,
    the alert opens at the second the silence reaches ln(5) x 42 = 67.6 days, the re-order its first reason."""
    events = _shop((0, 42, 84, 126))
    last_ms = events[-1].ts_ms
    alerts = [a for a in _alerts(events, last_ms + 120 * DAY_MS) if a.event_time_ms > last_ms]
    at_risk = [a for a in alerts if a.kind == "at_risk"]
    assert len(at_risk) == 1
    late_ms = last_ms + REORDER_LATE_FACTOR * 42 * DAY_MS
    assert late_ms <= at_risk[0].event_time_ms <= late_ms + 2_000
    assert at_risk[0].scores.reasons[0] == "usual re-order every 42 days, none for 68 days"
    assert at_risk[0].scores.stage in ("active", "declining")
    assert at_risk[0].scores.risk < NEVER_BY_RISK.risk_enter
    # the same alert however the silence is cut
    for cut in (10, 60, 67):
        again = [a for a in _alerts(events, last_ms + 120 * DAY_MS, cut_ms=last_ms + cut * DAY_MS) if a.kind == "at_risk"]
        assert [a.alert_id for a in again][-1:] == [at_risk[0].alert_id]


def test_a_visit_is_no_order_and_the_next_order_ends_the_alert() -> None:
    """Late, the user visits (no recovered: still no order), then orders (recovered, the risk low)."""
    events = _shop((0, 42, 84, 126))
    late_day = 126 + 68
    visit = _shop((), (late_day + 2,))
    alerts = [a for a in _alerts(events + visit, T0_MS + (late_day + 5) * DAY_MS) if a.event_time_ms > events[-1].ts_ms]
    assert [a.kind for a in alerts if a.kind != "stage_changed"] == ["at_risk"]
    order = _shop((late_day + 4,))
    alerts = _alerts(events + visit + order, T0_MS + (late_day + 6) * DAY_MS)
    kinds = [a.kind for a in alerts if a.kind != "stage_changed" and a.event_time_ms > events[-1].ts_ms]
    assert kinds == ["at_risk", "recovered"]


def test_a_buyer_with_a_rhythm_is_not_at_risk_at_their_due_time_only_once_late() -> None:
    """QA12 F2: with a line the risk crosses before the order is due (risk_enter 0.8), a 42-day buyer who
    browses between orders is held until the re-order is late (1.61 intervals), not just due (1 interval):
    at their due time a customer still buying at their own rate is that silent e^-1 = 37% of the time."""
    model = load_model().with_(risk_enter=0.8, risk_exit=0.5)
    events = _shop((0, 42, 84, 126), (7, 21, 35, 49, 63, 77, 91, 105, 119, 133))
    last_ms = T0_MS + 126 * DAY_MS + 15 * 3_600_000 + 60_000
    due_s = last_ms // 1000 + 42 * DAY_S + 60
    a = assess(advance("u", None, events, due_s * 1000, model).state, due_s, model)
    assert a.risk >= model.risk_enter and a.stage in ("active", "declining") and not alert_may_open(a, due_s, model.compiled)
    at_risk = [x for x in _alerts(events, last_ms + 120 * DAY_MS, model) if x.kind == "at_risk" and x.event_time_ms > last_ms]
    late_ms = last_ms + REORDER_LATE_FACTOR * 42 * DAY_MS
    assert len(at_risk) == 1 and late_ms <= at_risk[0].event_time_ms <= late_ms + 2_000
    assert at_risk[0].scores.reasons[0] == "usual re-order every 42 days, none for 68 days"


def test_two_orders_are_no_rhythm_for_the_re_order_alert() -> None:
    """One interval is a single gap: no re-order alert (models.signals.REORDER_MIN_INTERVALS), however long the silence."""
    events = _shop((0, 42))
    last_ms = events[-1].ts_ms
    assert not [a for a in _alerts(events, last_ms + 120 * DAY_MS) if a.kind == "at_risk"]


def test_no_re_order_alert_before_the_late_line() -> None:
    events = _shop((0, 42, 84, 126), (140, 150, 170))
    last_s = T0_MS // 1000 + 126 * DAY_S + 15 * 3600 + 60

    def state_at(days: float):  # type: ignore[no-untyped-def]
        now_s = last_s + int(days * DAY_S)
        return assess(advance("u", None, events, now_s * 1000, NEVER_BY_RISK).state, now_s, NEVER_BY_RISK), now_s

    for days, late in ((42.0, False), (67.0, False), (67.7, True), (90.0, True)):
        a, now_s = state_at(days)
        assert reorder_late(a.signals) is late
        assert math.isclose(order_gap_days(a.signals), 42.0)
        overdue = days_overdue(a.signals)
        assert overdue is not None and math.isclose(overdue, days - 42.0, abs_tol=1e-3)


@settings(max_examples=30, deadline=None)
@given(gap=st.integers(min_value=7, max_value=60), n=st.integers(min_value=3, max_value=6),
       cut=st.floats(min_value=0.0, max_value=1.0))
def test_the_re_order_alert_opens_at_the_late_second_however_the_silence_is_cut(gap: int, n: int, cut: float) -> None:
    """Any steady rhythm of 3+ orders: the at-risk alert after the last order opens at the late second (the
    risk never reaches NEVER_BY_RISK's line) unless the user is lapsed by then, and the same whether the silence
    is reviewed in one call or two."""
    events = _shop(tuple(gap * k for k in range(n)))
    last_ms = events[-1].ts_ms
    own = max(gap, (gap * (n - 1) + load_model().compiled.purchase_gap_days) / n)  # models.signals.order_gap_days
    end_ms = last_ms + int(2 * own * DAY_MS)
    whole = [a for a in _alerts(events, end_ms) if a.kind == "at_risk" and a.event_time_ms > last_ms]
    split = [a for a in _alerts(events, end_ms, cut_ms=last_ms + int(cut * 2 * own * DAY_MS)) if a.kind == "at_risk"
             and a.event_time_ms > last_ms]
    assert [a.alert_id for a in split] == [a.alert_id for a in whole]
    late_s = int((last_ms + REORDER_LATE_FACTOR * own * DAY_MS) / 1000) + 2
    at_late = assess(advance("u", None, events, late_s * 1000, NEVER_BY_RISK).state, late_s, NEVER_BY_RISK)
    assert reorder_late(at_late.signals)
    if at_late.stage in ("dormant", "churned"):  # lapsed by the visit rhythm first: the win-back list's
        assert not whole
    else:
        assert len(whole) == 1 and whole[0].event_time_ms <= late_s * 1000


def _orders_only(order_days: tuple[int, ...]) -> list[Event]:
    """A catalogue shop's customer (CDNOW): orders at 15:00 UTC on ``order_days``, no visit between."""
    return [Event("u", T0_MS + d * DAY_MS + 15 * 3_600_000, "purchase", f"p{d}", 12.0) for d in order_days]


def test_a_one_order_customer_gets_a_save_alert_when_their_first_re_order_is_due_and_lapses_once_late() -> None:
    """CDNOW (2026-12-05, models.lifecycle.lapse_floor_days): one order and silence. The at-risk alert waits
    for the population's interval (``first_return_due_s``, 30 days in the shipped default) and opens then;
    before, the visit prior made the customer dormant at 21 days, so it never opened. Lapsed once the
    re-order is late, ln 5 x 30 = 48.3 days (churned at once: past ``churned_days``, 45), not before."""
    model = load_model()
    c = model.compiled
    gap = c.purchase_gap_days
    events = _orders_only((0,))
    last_ms = events[-1].ts_ms
    alerts = advance("u", None, events, last_ms + 400 * DAY_MS, model).alerts
    at_risk = [a for a in alerts if a.kind == "at_risk"]
    assert len(at_risk) == 1
    assert last_ms + gap * DAY_MS <= at_risk[0].event_time_ms <= last_ms + gap * DAY_MS + 2_000
    assert at_risk[0].scores.stage == "declining"
    lapsed = [a for a in alerts if a.kind == "stage_changed" and a.scores.stage in ("dormant", "churned")]
    late_ms = last_ms + REORDER_LATE_FACTOR * gap * DAY_MS
    assert [a.scores.stage for a in lapsed] == ["churned"]
    assert late_ms <= lapsed[0].event_time_ms <= late_ms + 2_000


@settings(max_examples=40, deadline=None)
@given(orders=st.integers(min_value=1, max_value=2), gap=st.integers(min_value=1, max_value=120),
       visits=st.integers(min_value=0, max_value=20), share=st.floats(min_value=0.0, max_value=0.999))
def test_no_buyer_seen_on_nothing_since_their_order_is_lapsed_before_the_next_is_due(orders: int, gap: int, visits: int,
                                                                                   share: float) -> None:
    """Any buyer with one or two order days (``gap`` days apart; with two, browsing on up to ``visits``
    days between them), seen on nothing since their last order, is not dormant or churned before their
    next order is late: ln 5 times the interval it is due at (the population's for one order,
    models.signals.order_gap_days for two; models.lifecycle.lapse_floor_days)."""
    model = load_model()
    days = tuple(gap * k for k in range(orders))
    between = tuple(d for d in range(1, min(visits, gap - 1) + 1)) if orders > 1 else ()
    events = _shop(days, between)
    last_order_s = T0_MS // 1000 + days[-1] * DAY_S + 15 * 3600 + 60
    probe = assess(advance("u", None, events, last_order_s * 1000 + 1000, model).state, last_order_s + 1, model)
    due_days = order_gap_days(probe.signals) if orders > 1 else model.compiled.purchase_gap_days
    now_s = last_order_s + 1 + int(share * REORDER_LATE_FACTOR * due_days * DAY_S)
    a = assess(advance("u", None, events, now_s * 1000, model).state, now_s, model)
    assert a.signals.purchase_silence_days < REORDER_LATE_FACTOR * due_days
    assert a.stage not in ("dormant", "churned")


def test_a_one_order_customer_who_kept_browsing_is_judged_by_the_visits() -> None:
    """QA22b F9's rule (models.signals.bought_last): an order, then a visit a day for 10 days, then silence.
    The visits carry the relationship, as for the temperature: dormant at ``dormant_days`` (21), as before."""
    model = load_model()
    events = _shop((0,), tuple(range(1, 11)))
    last_ms = events[-1].ts_ms
    alerts = advance("u", None, events, last_ms + 40 * DAY_MS, model).alerts
    dormant = [a.event_time_ms for a in alerts if a.kind == "stage_changed" and a.scores.stage == "dormant"]
    assert len(dormant) == 1 and last_ms + 21 * DAY_MS <= dormant[0] <= last_ms + 21 * DAY_MS + 2_000
