"""A cancellation at the end of the paid period (the ``cancel_request`` role, QA23a F5: Stripe's
``cancel_at_period_end``): the user stays a customer until the period ends, gets one at-risk
alert at the request ("asked to cancel; paid through ..."), a save action, the top of the save
list, churns at the period end, and a renewal before it withdraws the request. Declared as
``cancel`` the same request churned the user at once ("cancelled today; paid through ...", win back).

A monthly subscriber (12.99) who visits daily for 40 days, statements on days 0 and 30 (paid
through day 60), asks to cancel on day 42 (``cancel_requested``); billing says ``cancelled`` at
the period end (day 60) unless it renews first.
"""

from __future__ import annotations

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.ranking import daily_list
from models.scoring import score
from models.subscription import Subscription
from models.vocabulary import DEFAULT_ROLES
from tests.test_models_properties import DAY_MS, T0_MS

DAY_S = DAY_MS // 1000
M = ChurnModel(roles={**{k: list(v) for k, v in DEFAULT_ROLES.items()}, "cancel_request": ["cancel_requested"]})
AS_CANCEL = ChurnModel(roles={**{k: list(v) for k, v in DEFAULT_ROLES.items()}, "cancel": ["cancel", "cancel_requested"]})
REQUEST_MS = T0_MS + 42 * DAY_MS + 9 * 3_600_000
END_MS = T0_MS + 60 * DAY_MS  # the period end (a midnight: models.state keeps it as that day)


def _statement(user: str, day: int, status: str, end_day: int, hour: int = 1) -> Event:
    sub = Subscription(status, "monthly", 1299 if status == "active" else 0, 0, T0_MS + end_day * DAY_MS if end_day else 0)  # type: ignore[arg-type]
    return Event(user, T0_MS + day * DAY_MS + hour * 3_600_000, "subscription", f"s{user}{day:04d}{status}", 0.0, "", sub)


def _subscriber(user: str = "u", *, cancelled_at_end: bool = True, renew_day: int = 0, visits_to: int = 40) -> list[Event]:
    events = [Event(user, T0_MS + d * DAY_MS + 12 * 3_600_000, "workout_completed", f"v{user}{d:04d}") for d in range(visits_to)]
    events += [_statement(user, 0, "active", 30), _statement(user, 30, "active", 60),
               Event(user, REQUEST_MS, "cancel_requested", f"c{user}")]
    if renew_day:
        events.append(_statement(user, renew_day, "active", 90))
    elif cancelled_at_end:
        events.append(_statement(user, 60, "cancelled", 0, hour=0))
    return sorted(events, key=lambda e: e.ts_ms)


def test_a_request_opens_one_save_alert_and_churns_at_the_period_end() -> None:
    out = advance("u", None, _subscriber(), T0_MS + 70 * DAY_MS, M)
    at_request = [a for a in out.alerts if a.event_time_ms == REQUEST_MS]
    assert [a.kind for a in at_request] == ["at_risk"], [(a.kind, a.event_time_ms) for a in out.alerts]
    s = at_request[0].scores
    assert s.reasons[0] == "asked to cancel; paid through 2026-03-01 (in 17 days)", s.reasons
    assert s.stage != "churned" and s.action == "check_in", (s.stage, s.action)
    meanwhile = [a for a in out.alerts if REQUEST_MS < a.event_time_ms < END_MS]
    assert not [a for a in meanwhile if a.kind == "recovered" or a.scores.stage == "churned"], meanwhile
    churned = [a for a in out.alerts if a.scores.stage == "churned"]
    assert churned and churned[0].event_time_ms == END_MS and churned[0].scores.action == "win_back"
    assert out.state.stage_name == "churned"


def test_declared_as_cancel_the_request_churned_at_once() -> None:
    """What QA23a saw (the role that fitted nothing else): churned at the request; the paid period
    said as the request's is, no renewal (2026-12-05: a cancelled plan does not renew)."""
    out = advance("u", None, _subscriber(), T0_MS + 70 * DAY_MS, AS_CANCEL)
    churned = [a for a in out.alerts if a.scores.stage == "churned"]
    assert churned and churned[0].event_time_ms == REQUEST_MS
    assert churned[0].scores.reasons[0] == "cancelled today; paid through 2026-03-01 (in 17 days)", churned[0].scores.reasons


def test_while_the_period_runs_the_requester_is_a_customer_at_the_top_of_the_save_list() -> None:
    now_s = T0_MS // 1000 + 50 * DAY_S
    users = {"u": _subscriber("u", cancelled_at_end=False)}
    for k in range(20):  # subscribers slowing down, none asking to cancel
        users[f"p{k:02d}"] = [e for e in _subscriber(f"p{k:02d}", cancelled_at_end=False, visits_to=30 + k) if e.type != "cancel_requested"]
    states = {u: advance(u, None, evs, now_s * 1000, M).state for u, evs in users.items()}
    s = score(states["u"], now_s, M)
    assert s.stage != "churned" and s.risk == 1.0 and s.action == "check_in", (s.stage, s.risk, s.action)
    assert s.reasons[0] == "asked to cancel; paid through 2026-03-01 (in 9 days)"
    ranked = daily_list(states.items(), now_s, M, "save", share=1.0)
    assert ranked[0].user_id == "u", [(r.user_id, round(r.savable, 3)) for r in ranked[:3]]


def test_a_renewal_before_the_period_end_withdraws_the_request() -> None:
    out = advance("u", None, _subscriber(renew_day=55, visits_to=58), T0_MS + 70 * DAY_MS, M)
    assert out.state.cancelled_s == 0
    assert not [a for a in out.alerts if a.scores.stage == "churned"], [(a.kind, a.scores.stage) for a in out.alerts]
    s = score(out.state, T0_MS // 1000 + 61 * DAY_S, M)
    assert s.stage != "churned" and not s.reasons[0].startswith("asked to cancel")


def test_the_cancelled_statement_at_the_period_end_churns_then_and_without_one_the_end_does() -> None:
    for cancelled in (True, False):
        out = advance("u", None, _subscriber(cancelled_at_end=cancelled), T0_MS + 70 * DAY_MS, M)
        churned = [a for a in out.alerts if a.scores.stage == "churned"]
        assert churned and churned[0].event_time_ms == END_MS, (cancelled, [(a.kind, a.event_time_ms) for a in out.alerts])


def test_without_a_paid_period_the_request_is_a_cancellation_at_once() -> None:
    events = [e for e in _subscriber(cancelled_at_end=False) if e.type != "subscription"]
    out = advance("u", None, events, T0_MS + 70 * DAY_MS, M)
    churned = [a for a in out.alerts if a.scores.stage == "churned"]
    assert churned and churned[0].event_time_ms == REQUEST_MS


def test_the_ledger_counts_no_churn_before_the_period_end() -> None:
    """MRR is the statements' (models.revenue): the request moves nothing, the ``cancelled``
    statement at the period end is the churn, in that month."""
    from models.revenue_ledger import RevenueBook

    book = RevenueBook("month")
    for ev in _subscriber():
        book.update(ev)
    assert [(m.kind, m.delta_cents, m.ts_ms) for m in book.movements] == [("new", 1299, T0_MS + 3_600_000), ("churn", -1299, END_MS)]
    feb, mar = book.get(T0_MS + 31 * DAY_MS, T0_MS + 59 * DAY_MS), book.get(T0_MS + 59 * DAY_MS, T0_MS + 90 * DAY_MS)
    assert feb[0].churned_cents == 0 and feb[-1].end_mrr_cents == 1299 and mar[0].churned_cents == 1299


def test_a_request_while_an_at_risk_alert_is_open_updates_the_case() -> None:
    """Silent from day 30, asks on day 42, with an at-risk case open: the first days' one, held
    open through the renewal stated on day 30 since no visit after it found the user back
    (models.engine.renewal_pending; before 2026-12-05 it closed in the first week and the silence
    opened another after day 30). A second ``at_risk`` of its own id at the request says so, and
    no ``recovered`` comes between the case's opening and the request."""
    out = advance("u", None, _subscriber(visits_to=30), T0_MS + 70 * DAY_MS, M)
    opened = [a for a in out.alerts if a.kind == "at_risk"]
    case = [a for a in opened if a.event_time_ms < REQUEST_MS]
    update = [a for a in opened if a.event_time_ms == REQUEST_MS]
    assert case and len(update) == 1, [(a.kind, a.event_time_ms) for a in out.alerts]
    assert not [a for a in out.alerts if a.kind == "recovered" and case[-1].event_time_ms < a.event_time_ms <= REQUEST_MS]
    assert update[0].alert_id != case[-1].alert_id and update[0].scores.reasons[0].startswith("asked to cancel; paid through 2026-03-01")
    assert update[0].scores.action == "check_in"
    assert not [a for a in out.alerts if a.kind == "recovered" and a.event_time_ms > case[-1].event_time_ms]


def test_a_scheduled_cancellation_costs_no_byte() -> None:
    """The request is the record's ``cancelled_s`` at the period end, of a payer whose record is
    flagged already (PAYS_SUBSCRIPTION): the same length as without it (the 300-byte budget)."""
    with_request = advance("u", None, _subscriber(cancelled_at_end=False), REQUEST_MS + 1000, M).state
    without = advance("u", None, [e for e in _subscriber(cancelled_at_end=False) if e.type != "cancel_requested"], REQUEST_MS + 1000, M).state
    assert with_request.cancelled_s == END_MS // 1000 and without.cancelled_s == 0
    assert len(with_request.to_bytes()) == len(without.to_bytes())


def test_a_one_user_account_hears_of_the_save_alert_the_request_opened() -> None:
    """Member copies (models.step.mark_versions, per hour): the hour of the request, with no visit
    in it, gives a version dated at the request that says the alert is open (a cancellation gives
    one only when it churns; a request churns nobody)."""
    from models.step import mark_versions

    hour = 3_600_000
    events = _subscriber(cancelled_at_end=False)
    marks: list = []  # type: ignore[type-arg]
    advance("u", None, events, REQUEST_MS + hour, M, hour, marks)
    versions = mark_versions(marks, events, M, hour)
    at_request = [v for v in versions if v[0] == REQUEST_MS]  # (time ms, last seen s, stage, open alert's risk, ...)
    assert at_request and at_request[0][3] == 1.0 and at_request[0][2] != 4, [v[:4] for v in versions][-3:]


def test_a_request_that_took_effect_is_not_named_after_the_cancel_role() -> None:
    """QA24a (a news publisher): ``cancel_request = ["cancel"]`` beside ``cancel =
    ["account_delete"]`` (a role of one name, whose name a reason says: QA19 F10). The reader's
    ``cancel`` click took effect at the period end, and the win-back list said "account_delete 39
    days ago" of all 431 lapsed subscribers, none of whom deleted an account (a publisher must
    not write to one who did). The state keeps one cancellation time whichever role set it, so
    the reason says "cancelled" when the vocabulary has a cancel request."""
    publisher = ChurnModel(roles={**M.roles, "cancel": ["account_delete"]})
    out = advance("u", None, _subscriber(), T0_MS + 70 * DAY_MS, publisher)
    s = score(out.state, END_MS // 1000 + 39 * DAY_S, publisher)
    assert s.stage == "churned" and s.reasons[0] == "cancelled 39 days ago", (s.stage, s.reasons)
    assert ChurnModel(roles={"cancel": ["account_closed"]}).compiled.vocabulary.cancel_name() == "account_closed"


def test_a_request_of_a_user_still_reading_is_no_sum_of_small_signs() -> None:
    """QA24a: 250 of a publisher's 578 request alerts said "asked to cancel; paid through ...",
    then "risk 100% within 30 days from many small signs, none large": the 100% is the request's
    (P(leaves | alive) 1), and nothing small was against a reader who read the day before."""
    for visits_to in (42, 50):
        out = advance("u", None, _subscriber(visits_to=visits_to), T0_MS + 70 * DAY_MS, M)
        (s,) = [a.scores for a in out.alerts if a.event_time_ms == REQUEST_MS]
        assert s.reasons[0].startswith("asked to cancel; paid through")
        assert not [r for r in s.reasons if "small signs" in r], s.reasons
        assert not [r for r in score(out.state, REQUEST_MS // 1000 + DAY_S, M).reasons if "small signs" in r]
