"""A paying customer's grievance opens an at-risk alert (QA17 F8): models.vocabulary's grievance
names, models.state's GRIEVANCE flags, models.signals.grievance_stands, models.engine's alert
rules and the reason's words (docs/SCORES.md "Grievances: a customer's complaint")."""

from __future__ import annotations

import pytest

from models.engine import Alert, advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.scoring import score
from models.subscription import Subscription
from models.state import DAY_S, GRIEVANCE, GRIEVANCE_LATEST, UserState
from models.vocabulary import Vocabulary
from tests.test_models_alert_policy import T0_MS, _visits_and_orders

DAY_MS = DAY_S * 1000
HOUR_MS = 3_600_000
# The shipped default's weights with a line the risk never reaches: only a rule that opens an alert
# whatever the risk (a re-order late, a grievance) can open one.
NEVER_BY_RISK = load_model().with_(risk_enter=0.9999, risk_exit=0.9)
# A buyer on a 20-day rhythm, a visit between orders: their next order is not due before day 100.
ORDERS = (0, 20, 40, 60, 80)
VISITS = (10, 30, 50, 70, 85)


def _at(day: float, kind: str, eid: str) -> Event:
    return Event("u", T0_MS + int(day * DAY_MS) + 16 * HOUR_MS, kind, eid)


def _alerts(events: list[Event], end_day: float, model: ChurnModel = NEVER_BY_RISK, cut_day: float | None = None) -> list[Alert]:
    end_ms = T0_MS + int(end_day * DAY_MS)
    if cut_day is None:
        return [a for a in advance("u", None, events, end_ms, model).alerts if a.kind != "stage_changed"]
    cut_ms = T0_MS + int(cut_day * DAY_MS)
    first = advance("u", None, [e for e in events if e.ts_ms < cut_ms], cut_ms, model)
    rest = advance("u", first.state, [e for e in events if e.ts_ms >= cut_ms], end_ms, model)
    return [a for a in first.alerts + rest.alerts if a.kind != "stage_changed"]


def _day(day: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp((T0_MS + day * DAY_MS) / 1000, tz=timezone.utc).date().isoformat()


def test_a_customers_complaint_opens_an_at_risk_alert_at_its_time_whatever_the_risk() -> None:
    """On schedule (next order due at day 100), risk far under the line: the complaint on day 88
    opens the alert at its own second, said first in the shop's words; the refund two days later
    adds no alert (one open alert), and the same ids whatever the batches."""
    events = _visits_and_orders(ORDERS, VISITS) + [_at(88, "complaint", "c1"), _at(90, "refund", "r1")]
    alerts = _alerts(events, 95)
    assert [a.kind for a in alerts] == ["at_risk"]
    opened = alerts[0]
    assert opened.event_time_ms == events[-2].ts_ms
    assert opened.scores.risk < NEVER_BY_RISK.risk_enter
    assert opened.scores.reasons[0] == f"complained on {_day(88)}"
    for cut in (88.5, 89, 91):
        assert [a.alert_id for a in _alerts(events, 95, cut_day=cut)] == [opened.alert_id]
    # later, the user's scores say both, dated by the latest (the user's last event)
    st = advance("u", None, events, T0_MS + 92 * DAY_MS, NEVER_BY_RISK).state
    assert st.flags & (GRIEVANCE | GRIEVANCE_LATEST) == GRIEVANCE | GRIEVANCE_LATEST
    assert score(st, st.last_seen_s + DAY_S, NEVER_BY_RISK).reasons[0] == (
        f"complained and asked for a refund, the latest on {_day(90)}")


def test_dislikes_and_unfriends_are_no_grievance() -> None:
    """The same customer, the same days, other negative feedback: no alert (the risk decides, as before)."""
    for name in ("dislike", "unfriend", "downgrade"):
        events = _visits_and_orders(ORDERS, VISITS) + [_at(88, name, "n1"), _at(90, name, "n2")]
        assert _alerts(events, 95) == [], name


def test_a_complaint_of_someone_who_never_paid_opens_nothing() -> None:
    """Visits only, no purchase and no subscription: a complaint is feedback, not a customer's grievance."""
    events = _visits_and_orders((), VISITS + (60, 80)) + [_at(88, "complaint", "c1")]
    assert _alerts(events, 95) == []
    assert advance("u", None, events, T0_MS + 95 * DAY_MS, NEVER_BY_RISK).state.flags & GRIEVANCE == 0


def test_a_paying_subscriber_who_complains_is_alerted() -> None:
    """A subscription statement that pays, visits, no order: the complaint opens the alert; said without a purchase date."""
    events = _subscriber(_at(88, "complaint", "c1"), _at(89, "app_open", "a1"))
    alerts = _alerts(events, 95)
    assert [a.kind for a in alerts] == ["at_risk"]
    assert alerts[0].scores.reasons[0] == f"complained on {_day(88)}"
    st = advance("u", None, events, T0_MS + 95 * DAY_MS, NEVER_BY_RISK).state
    assert score(st, st.last_seen_s, NEVER_BY_RISK).reasons[0] == "complained in recent weeks"


def test_a_visit_is_no_answer_to_a_complaint_the_next_order_is() -> None:
    """Visits after the complaint leave the alert open (no recovered, no flapping); the next order
    settles the grievance, and the risk's own rule closes the alert at the next look."""
    base = _visits_and_orders(ORDERS, VISITS) + [_at(88, "complaint", "c1")]
    visits = [_at(d, "view", f"v{d}") for d in (89, 90, 92, 95)]
    assert [a.kind for a in _alerts(base + visits, 96)] == ["at_risk"]
    st = advance("u", None, base + visits, T0_MS + 96 * DAY_MS, NEVER_BY_RISK).state
    assert st.flags & GRIEVANCE and not st.flags & GRIEVANCE_LATEST  # a visit after it: no longer its date
    assert score(st, st.last_seen_s, NEVER_BY_RISK).reasons[0] == f"complained since the last purchase on {_day(80)}"
    order = [Event("u", T0_MS + 97 * DAY_MS + 16 * HOUR_MS, "purchase", "p97", 30.0), _at(98, "view", "v98")]
    alerts = _alerts(base + visits + order, 99)
    assert [a.kind for a in alerts] == ["at_risk", "recovered"]
    assert alerts[1].event_time_ms >= order[0].ts_ms
    assert advance("u", None, base + visits + order, T0_MS + 99 * DAY_MS, NEVER_BY_RISK).state.flags & GRIEVANCE == 0


def _subscriber(*extra: Event) -> list[Event]:
    """A paying subscriber (a statement paid through day 400) who visits; no order."""
    paid = Subscription("active", "monthly", 2000, 0, T0_MS + 400 * DAY_MS)
    return [Event("u", T0_MS + 15 * HOUR_MS, "subscription", "s1", 0.0, "", paid)] + _visits_and_orders((), VISITS) + list(extra)


def test_a_grievance_fades_after_the_horizon_then_a_visit_may_close_the_alert() -> None:
    """A subscriber (no order to settle it) complains and keeps visiting every 3 days: the alert
    stays open while the grievance stands (the model's 30-day horizon), and the first visit after
    it has faded closes it (the risk is low); in silence it would have stayed open."""
    visits = [_at(d, "view", f"v{d}") for d in range(89, 131, 3)]
    alerts = _alerts(_subscriber(_at(88, "complaint", "c1"), *visits), 132)
    assert [a.kind for a in alerts] == ["at_risk", "recovered"]
    closed_day = (alerts[1].event_time_ms - T0_MS) / DAY_MS
    assert 88 + 30 <= closed_day <= 88 + 30 + 3
    assert [a.kind for a in _alerts(_subscriber(_at(88, "complaint", "c1")), 200)] == ["at_risk"]


def test_a_late_complaint_of_before_the_last_order_is_no_standing_grievance() -> None:
    """A complaint dated before the customer's last order, arriving after it (a late event), was
    answered by that order: no alert. In time, the same complaint opens one and the order closes it."""
    first = advance("u", None, _visits_and_orders(ORDERS, VISITS), T0_MS + 86 * DAY_MS, NEVER_BY_RISK)
    late = advance("u", first.state, [_at(75, "complaint", "c-late")], T0_MS + 95 * DAY_MS, NEVER_BY_RISK)
    assert [a.kind for a in late.alerts if a.kind != "stage_changed"] == [] and late.state.flags & GRIEVANCE == 0
    in_time = _alerts(_visits_and_orders(ORDERS, VISITS) + [_at(75, "complaint", "c1")], 95)
    assert [a.kind for a in in_time] == ["at_risk", "recovered"]


def test_the_model_file_names_its_grievances() -> None:
    """roles.grievance overrides the default names (a subset of roles.negative), an empty list turns them off."""
    only_refund = NEVER_BY_RISK.with_(roles={**NEVER_BY_RISK.roles, "grievance": ["refund"]})
    assert _alerts(_visits_and_orders(ORDERS, VISITS) + [_at(88, "complaint", "c1")], 95, only_refund) == []
    assert [a.kind for a in _alerts(_visits_and_orders(ORDERS, VISITS) + [_at(88, "refund", "r1")], 95, only_refund)] == ["at_risk"]
    none = NEVER_BY_RISK.with_(roles={**NEVER_BY_RISK.roles, "grievance": []})
    assert _alerts(_visits_and_orders(ORDERS, VISITS) + [_at(88, "complaint", "c1")], 95, none) == []
    shop = ChurnModel.from_json(NEVER_BY_RISK.with_(roles={"purchase": ["purchase"], "negative": ["complaint", "dislike"]}).to_json())
    assert shop.compiled.vocabulary.grievance_mask() == 0b01  # the default names the product's negative role has
    with pytest.raises(ValueError, match="not in roles.negative"):
        NEVER_BY_RISK.with_(roles={"purchase": ["purchase"], "negative": ["dislike"], "grievance": ["complaint"]})
    with pytest.raises(ValueError, match="not in roles.negative"):
        Vocabulary(roles={"negative": ["dislike"], "grievance": ["refund"]})


def test_the_record_of_a_customer_with_a_grievance_is_no_larger_than_a_flagged_one() -> None:
    """The flags byte every flagged record has (format 7, the flags in byte 2): 93 bytes + 8 per
    type, as an unflagged one's."""
    events = _visits_and_orders(ORDERS, VISITS) + [_at(88, "complaint", "c1")]
    st = advance("u", None, events, T0_MS + 90 * DAY_MS, NEVER_BY_RISK).state
    raw = st.to_bytes()
    assert st.flags & GRIEVANCE and raw[0] == 7 and raw[2] == st.flags and len(raw) == 93 + 8 * st.n_slots
    assert UserState.from_bytes(raw) == st


def test_after_it_fades_a_visit_closes_the_alert_only_while_no_order_is_overdue() -> None:
    """Orders every 40 days (0, 40, 80), visits every 3 days after a complaint. Complained the day
    after an order: faded on day 111, the next order due on day 120, so a visit then closes it.
    Complained on day 100: faded on day 130, the order overdue since day 120: visits do not close
    it (the re-order rule would re-open it on day 144: a flap), only the next order would."""
    def kinds(complaint_day: int, last_visit: int) -> list[tuple[str, float]]:
        events = _visits_and_orders((0, 40, 80), (20, 60)) + [_at(complaint_day, "complaint", "c1")]
        events += [_at(d, "view", f"v{d}") for d in range(complaint_day + 1, last_visit + 1, 3)]
        return [(a.kind, (a.event_time_ms - T0_MS) / DAY_MS) for a in _alerts(events, last_visit + 1)]
    early = kinds(81, 119)
    assert [k for k, _ in early] == ["at_risk", "recovered"] and 81 + 30 <= early[1][1] < 120
    assert [k for k, _ in kinds(100, 143)] == ["at_risk"]


def test_within_the_quiet_period_a_grievance_opens_at_its_end() -> None:
    """A complaint opens an alert (day 61), the next order settles it and the alert closes; a second
    complaint 8 days into the quiet period (21 days) opens nothing then, and opens the alert at the
    period's end, still standing (no flap inside the period, and not lost either)."""
    events = _visits_and_orders((0, 20, 40, 60, 62), (10, 30, 50, 63)) + [_at(61, "complaint", "c1"), _at(71, "complaint", "c2")]
    alerts = _alerts(events, 100)
    assert [a.kind for a in alerts] == ["at_risk", "recovered", "at_risk"]
    quiet_end_ms = alerts[1].event_time_ms + int(NEVER_BY_RISK.quiet_days * DAY_MS)
    assert alerts[2].event_time_ms == quiet_end_ms and alerts[2].scores.reasons[0] == f"complained on {_day(71)}"
    assert [a.alert_id for a in _alerts(events, 100, cut_day=75)] == [a.alert_id for a in alerts]
