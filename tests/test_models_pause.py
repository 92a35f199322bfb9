"""A subscriber whose pause runs is not lapsed and gets no at-risk alert for its silence (QA22a
F1, F2; models.lifecycle rule 0 "Paused"): daily viewer for 60 days, paused on day 60 until day
140; the stage holds, no at-risk alert opens during the pause, the engine looks again at its end."""

from __future__ import annotations

from models.engine import Alert, advance
from models.events import Event
from models.lifecycle import LAPSED
from models.model import ChurnModel
from models.scoring import score
from models.state import PAYS_SUBSCRIPTION
from models.subscription import Subscription
from tests.test_models_properties import DAY_MS, T0_MS, _state_of

M = ChurnModel()
DAY_S = DAY_MS // 1000
PAUSE_MS = T0_MS + 60 * DAY_MS + 3_600_000  # the pause statement (_statement)


def _statement(day: int, status: str, end_day: int) -> Event:
    sub = Subscription(status, "standard", 1399 if status == "active" else 0, 0, T0_MS + end_day * DAY_MS)  # type: ignore[arg-type]
    return Event("u", T0_MS + day * DAY_MS + 3_600_000, "subscription", f"s{day:04d}", 0.0, "", sub)


def _viewer(pause: bool) -> list[Event]:
    """Visits every day for 60 days, monthly statements from day 0; then paused on day 60 until day 140
    (``pause``), or a renewal on day 60 (paid through day 90) and nothing more."""
    visits = [Event("u", T0_MS + d * DAY_MS + 12 * 3_600_000, "view", f"v{d:04d}") for d in range(60)]
    statements = [_statement(0, "active", 30), _statement(30, "active", 60)]
    statements.append(_statement(60, "paused", 140) if pause else _statement(60, "active", 90))
    return sorted([*visits, *statements], key=lambda e: e.ts_ms)


def test_a_paused_viewer_is_not_lapsed_nor_alerted_while_the_pause_runs() -> None:
    out = advance("u", None, _viewer(True), T0_MS + 139 * DAY_MS, M)
    paused = [(a.kind, a.scores.stage) for a in out.alerts if a.event_time_ms > PAUSE_MS]
    assert not [k for k, _ in paused if k == "at_risk"] and not [s for _, s in paused if s in LAPSED], paused
    st_ = _state_of(_viewer(True))
    assert not st_.flags & PAYS_SUBSCRIPTION
    for day in (75, 100, 139):
        s = score(st_, T0_MS // 1000 + day * DAY_S, M)
        assert s.stage not in LAPSED and s.action != "win_back", (day, s.stage, s.action)
    # the same silence without the pause: at-risk in the paid period, lapsed after it (what QA22a saw)
    plain = advance("u", None, _viewer(False), T0_MS + 139 * DAY_MS, M)
    assert [a for a in plain.alerts if a.kind == "at_risk" and a.event_time_ms > PAUSE_MS]
    assert score(_state_of(_viewer(False)), T0_MS // 1000 + 139 * DAY_S, M).stage in LAPSED


def test_the_pause_end_is_a_review_where_the_silence_counts_again() -> None:
    """No resume statement by day 140: from the pause's end the silence rules apply (the engine
    reviews at that second); the stage held during the pause is the one it had when it began."""
    out = advance("u", None, _viewer(True), T0_MS + 200 * DAY_MS, M)
    end_ms = T0_MS + 140 * DAY_MS  # the pause's end (a midnight: models.state keeps it as that day)
    before = [a for a in out.alerts if PAUSE_MS < a.event_time_ms < end_ms]
    assert not before, [(a.kind, a.event_time_ms, a.scores.stage) for a in before]
    after = [a for a in out.alerts if a.event_time_ms >= end_ms]
    assert after and after[0].event_time_ms == end_ms, [(a.kind, a.event_time_ms) for a in out.alerts]


def test_a_churned_user_back_during_a_pause_is_reactivated_at_its_end() -> None:
    """A user churned (a cancel event) who visits while a pause runs keeps the stage the pause holds,
    churned, until the pause's end; the engine reviews a churned user then too (it looked only at
    the state's expiry, so "reactivated" waited for the next event: a random-seed run of
    tests/test_models_renewal's smart-review property found it)."""
    visits = [Event("u", T0_MS + d * DAY_MS + 12 * 3_600_000, "view", f"v{d:04d}") for d in range(10)]
    events = [*visits, Event("u", T0_MS + 10 * DAY_MS, "cancel", "c"), _statement(20, "paused", 30),
              Event("u", T0_MS + 25 * DAY_MS, "view", "back")]
    out = advance("u", None, events, T0_MS + 40 * DAY_MS, M)
    changes = [(a.previous_stage, a.scores.stage, a.event_time_ms) for a in out.alerts if a.kind == "stage_changed"]
    assert changes[-1] == ("churned", "reactivated", T0_MS + 30 * DAY_MS), changes


def test_a_resume_statement_pays_again() -> None:
    events = [*_viewer(True), _statement(100, "active", 130)]
    st_ = _state_of(sorted(events, key=lambda e: e.ts_ms))
    assert st_.flags & PAYS_SUBSCRIPTION and st_.period_end_day == (T0_MS // 1000 + 130 * DAY_S) // DAY_S


def test_a_paused_account_is_a_customer_whose_silence_is_the_pause() -> None:
    """The account roll-up (models.account_health.rollup): three profiles silent for five weeks.
    Paused until after now: stage paused, no silent users, no risk; the same account on a free plan
    (QA22a's workaround): churned; from the resume date without a statement: judged again."""
    from models.account_health import Member, rollup
    from models.revenue import AccountView

    now_s = 1_772_323_200  # 2026-03-01
    members = [Member(k, now_s - 35 * DAY_S, 1, 0.0, 20.0, 20.0) for k in (1, 2, 3)]

    def view(status: str, resumes_ms: int) -> AccountView:
        return AccountView(0, False, status, ("standard",), 0, 0, 0, 1, resumes_ms=resumes_ms)

    paused = rollup(members, view("paused", (now_s + 10 * DAY_S) * 1000), None, 0, now_s)
    assert (paused.stage, paused.risk, paused.reasons, paused.silent) == ("paused", 0.0, (), 0)
    free = rollup(members, view("active", 0), None, 0, now_s)
    assert free.stage == "churned" and free.reasons[0].startswith("moved to the free plan")
    ended = rollup(members, view("paused", (now_s - DAY_S) * 1000), None, 0, now_s)
    assert ended.stage != "churned" and ended.silent == 3


def test_the_resume_is_no_reason_for_risk() -> None:
    """QA22a F2: the resume's statement on day 100, silent since day 60: no at-risk alert at the
    resume nor in the 4 weeks after it (RESUME_QUIET_S), the engine looks again at their end,
    where the silence counts as it is."""
    from models.state import RESUME_QUIET_S

    resume_ms = T0_MS + 100 * DAY_MS + 3_600_000
    events = sorted([*_viewer(True), _statement(100, "active", 130)], key=lambda e: e.ts_ms)
    out = advance("u", None, events, T0_MS + 140 * DAY_MS, M)
    alerts = [(a.kind, a.event_time_ms) for a in out.alerts if a.event_time_ms > PAUSE_MS]
    assert not [t for k, t in alerts if k == "at_risk" and t < resume_ms + RESUME_QUIET_S * 1000], alerts
    assert ("at_risk", resume_ms + RESUME_QUIET_S * 1000) in alerts, alerts  # still silent 4 weeks on: told then


def test_an_account_back_from_a_pause_is_not_judged_on_the_pause_s_silence() -> None:
    """QA22a F2 (account side): a family paid, paused 9 weeks, resumed; at the resume its profiles
    are silent since the pause began: no silent users, no fall in use for 4 weeks after it (the
    users' own quiet after a resume), then judged as any account."""
    from models.account_health import Member, rollup
    from models.state import RESUME_QUIET_S

    def stmt(user: str, day: int, status: str) -> Event:
        sub = Subscription(status, "premium", 1999 if status == "active" else 0, 0, 0)  # type: ignore[arg-type]
        return Event(user, T0_MS + day * DAY_MS, "subscription", f"{user}{day}", 0.0, "fam", sub)

    from models.revenue import AccountState
    state = AccountState()
    for ev in (stmt("p0", 0, "active"), stmt("p0", 30, "paused"), stmt("p0", 93, "active")):
        state.update(ev)
    view = state.get()
    assert view.resumed_ms == T0_MS + 93 * DAY_MS and not view.paused
    members = [Member(k, T0_MS // 1000 + 29 * DAY_S, 1, 0.0, 20.0, 20.0) for k in (1, 2, 3)]
    at = (T0_MS // 1000) + 93 * DAY_S
    back = rollup(members, view, None, 0, at)
    assert (back.stage, back.silent, back.risk) == ("customer", 0, 0.0), back
    later = rollup(members, view, None, 0, at + RESUME_QUIET_S)
    assert later.silent == 3 and later.risk >= 0.5, later


def test_a_cancellation_during_a_pause_ranks_its_reasons_as_one_outside_it() -> None:
    """A trial user active on one day, paused the next day with no resume date, cancels 3 days
    later: after "cancelled today" came "no return for 4 days after 1 active day" (0.20 of the
    whole risk's log-odds) before "active on a single day so far" (0.86), the pause's leave part 0
    measuring the "already gone" part from the 1e-12 floor (+25.6). The cancellation ends what the
    pause held: the reasons rank on the whole risk, as the same user's with an active statement
    (models.reasons._leaves; found by tests.test_models_renewal's cancellation property)."""
    from tests.test_models_properties import MODEL
    from tests.test_models_reasons import check_alert

    def alert(status: str) -> Alert:
        trial = Subscription("trial", "Pro", 4999, 0, 0)
        then = Subscription(status, "Pro", 4999, 0, 0)  # type: ignore[arg-type]
        events = [Event("u", T0_MS - DAY_MS, "subscription", "s0", 0.0, "", trial),
                  *[Event("u", T0_MS, "view", f"v{i:02d}") for i in range(28)],
                  Event("u", T0_MS + DAY_MS + 12 * 3_600_000, "subscription", "s1", 0.0, "", then),
                  Event("u", T0_MS + 4 * DAY_MS + 12 * 3_600_000, "cancel", "c1")]
        out = advance("u", None, events, events[-1].ts_ms, MODEL)
        churned = [a for a in out.alerts if a.scores.stage == "churned"]
        assert len(churned) == 1 and churned[0].scores.signals is not None and churned[0].scores.signals.cancelled, out.alerts
        return churned[0]

    paused = alert("paused")
    assert paused.scores.signals is not None and paused.scores.signals.paused_until_s > paused.scores.signals.now_s
    assert paused.scores.reasons == ("cancelled today", "active on a single day so far: churn is likeliest early on",
                                     "no return for 4 days after 1 active day")
    assert paused.scores.reasons == alert("active").scores.reasons
    check_alert(paused, MODEL)
