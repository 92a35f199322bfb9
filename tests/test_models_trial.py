"""A user's own trial (QA23a F1, F2; models.state TRIAL, TRIAL_LOST): the state knows a trial and
one cancelled without paying (a lost lead), in no byte more. No save alert opens after a trial's
cancellation and its action is ``win_back``, not ``onboard``; a trial user's at-risk reasons say
the trial; the user churn counters count the churned trials that never paid apart."""

from __future__ import annotations

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.scoring import score
from models.state import ACCOUNT_MEMBER, NEVER_PAID_TRIAL, PAYS_SUBSCRIPTION, TRIAL, TRIAL_LOST, UserState, apply_event, in_trial, period_end_day, trial_lost
from models.step import count_delta
from models.subscription import Subscription
from streams.worker.store import churn_summary, day_name

M = ChurnModel()
DAY = 86_400_000
T0 = 1_771_865_040_000  # 2026-02-23 16:44 UTC: QA23a's f02435 started its 7-day trial


def _sub(t: int, status: str, trial_end: int = 0, mrr: int = 0, period_end: int = 0) -> Event:
    return Event("f", t, "subscription", f"s{t}", 0.0, "", Subscription(status, "trial" if not mrr else "monthly", mrr,  # type: ignore[arg-type]
                                                                         trial_end, period_end))


def _visit(day: float) -> list[Event]:
    t = T0 + int(day * DAY)
    return [Event("f", t + i * 600_000, kind, f"e{t}{kind}") for i, kind in
            enumerate(("notification_opened", "workout_started", "workout_completed"))]


def _f02435(cancel: bool = True) -> list[Event]:
    """QA23a's f02435: a 7-day trial, one visit on day 4 (three kinds of activity), the trial
    cancelled at its end (``cancel``), then silence."""
    evs = [_sub(T0 + 30_000, "trial", T0 + 7 * DAY), *_visit(3.99)]
    return evs + ([_sub(T0 + 7 * DAY, "cancelled")] if cancel else [])


def test_the_state_knows_a_trial_running_lost_or_converted_in_the_bytes_of_a_record_without_it() -> None:
    st = UserState()
    for ev in _f02435(cancel=False):
        apply_event(st, ev)
    assert in_trial(st.flags) and st.period_end_day == 0 and not st.flags & PAYS_SUBSCRIPTION
    raw = st.to_bytes()
    plain = st.copy()
    plain.flags &= ~TRIAL
    assert len(raw) == len(plain.to_bytes()), "TRIAL costs no byte: byte 1's top bits"
    lost = st.copy()
    apply_event(lost, _sub(T0 + 7 * DAY, "cancelled"))
    assert trial_lost(lost.flags) and not in_trial(lost.flags)
    apply_event(lost, _sub(T0 + 8 * DAY, "cancelled"))
    assert trial_lost(lost.flags), "a second cancellation leaves it lost"
    for flags, stage, end in ((TRIAL, 0, 0), (TRIAL_LOST | ACCOUNT_MEMBER, 4, 0), (TRIAL | PAYS_SUBSCRIPTION | 16, 5, 20600),
                              (NEVER_PAID_TRIAL | 127, 3, 1)):
        st2 = st.copy()
        st2.flags, st2.stage, st2.period_end_day = flags, stage, end
        again = UserState.from_bytes(st2.to_bytes())
        assert (again.flags, again.stage, again.period_end_day) == (flags, stage, end)
    paid = st.copy()
    apply_event(paid, _sub(T0 + 7 * DAY, "active", mrr=1299, period_end=T0 + 37 * DAY))
    assert not paid.flags & NEVER_PAID_TRIAL and paid.flags & PAYS_SUBSCRIPTION
    assert paid.period_end_day == period_end_day(T0 + 37 * DAY)
    apply_event(paid, _sub(T0 + 37 * DAY, "cancelled"))
    assert not paid.flags & NEVER_PAID_TRIAL, "a payer's cancellation is no lost trial"
    member = UserState()
    trial = _sub(T0, "trial", T0 + 7 * DAY)
    apply_event(member, Event("f", trial.ts_ms, "subscription", "m1", 0.0, "acme", trial.subscription))
    assert not member.flags & NEVER_PAID_TRIAL, "a company's trial is its account's, not its billing contact's"


def test_no_onboard_save_alert_after_the_trials_cancellation() -> None:
    """QA23a F1: 100 ``onboard`` at-risk alerts after the trial's ``cancelled`` statement (f02435:
    cancelled 03-02 16:44; the shipped default alerted it 4 days later). A lost trial is a lead that
    said no: no at-risk alert opens for it, and every alert and view says ``win_back``."""
    cancel_ms = T0 + 7 * DAY
    out = advance("f", None, _f02435(), T0 + 60 * DAY, M)
    after = [(a.kind, a.scores.stage, a.scores.action) for a in out.alerts if a.event_time_ms >= cancel_ms]
    assert after and not [k for k, _, _ in after if k == "at_risk"], after
    assert {act for _, _, act in after} == {"win_back"}, after
    assert score(out.state, (T0 + 9 * DAY) // 1000, M).action == "win_back"
    # the same trial not cancelled: a save alert opens (the rule is the cancellation, not the trial)
    running = advance("f", None, _f02435(cancel=False), T0 + 60 * DAY, M)
    assert [a for a in running.alerts if a.kind == "at_risk" and a.scores.action == "onboard"]


def test_a_trial_users_at_risk_reasons_say_the_trial() -> None:
    """QA23a F1: the reasons said only that the user was new ("active on a single day so far");
    now the trial is their context, as a renewal due is a subscriber's (without its end: keeping
    it would cost 2 bytes a trial user, over the memory budget). A converted user's do not."""
    out = advance("f", None, _f02435(cancel=False), T0 + 60 * DAY, M)
    first = next(a for a in out.alerts if a.kind == "at_risk")
    assert "in trial (no conversion stated yet)" in first.scores.reasons, first.scores.reasons
    day4 = advance("f", None, _f02435(cancel=False), T0 + 4 * DAY, M).state
    assert "in trial (no conversion stated yet)" in score(day4, (T0 + 4 * DAY) // 1000, M).reasons
    paid = advance("f", None, [*_f02435(cancel=False), _sub(T0 + 6 * DAY, "active", mrr=1299, period_end=T0 + 36 * DAY)],
                   T0 + 60 * DAY, M)
    assert not [r for a in paid.alerts if a.event_time_ms > T0 + 6 * DAY for r in a.scores.reasons if r.startswith("in trial")]


def test_churned_trials_that_never_paid_are_counted_apart() -> None:
    """QA23a F2: "132 users churned = 9.0%", 105 of them trials that never paid. The churn of a
    user whose subscription is a trial that never paid adds ``churned_trial:<day>`` beside
    ``churned:<day>``; a converted trial's churn does not."""
    lost = advance("f", None, _f02435(), T0 + 60 * DAY, M)
    payer_events = [*_f02435(cancel=False), _sub(T0 + 7 * DAY, "active", mrr=1299, period_end=T0 + 14 * DAY)]
    payer = advance("f", None, payer_events, T0 + 90 * DAY, M)
    stats: dict[str, float] = {}
    count_delta(None, lost.state, lost.alerts, stats, day_name)
    count_delta(None, payer.state, payer.alerts, stats, day_name)
    assert sum(v for k, v in stats.items() if k.startswith("churned:")) == 2, stats
    assert sum(v for k, v in stats.items() if k.startswith("churned_trial:")) == 1, stats
    s = churn_summary(stats, (T0 + 90 * DAY) // 1000, 90)
    assert (s.churned, s.trials) == (2, 1) and s.figures()["churned_trials"] == 1
    assert abs(s.rate_others - s.rate / 2) < 1e-12


def test_the_win_back_list_marks_a_trial_that_never_paid() -> None:
    """QA23a F2: 651 of the 795 users on ``top --win-back`` were trials that never paid, with a lost
    MRR of 0.00 as a payer on a purchase plan shows. The order stays the list's (warmest first;
    ``--by mrr`` puts payers first); the row says ``trial`` in the lost-MRR column and
    ``never_paid_trial`` in its JSON."""
    from streams.cli.top import user_rows
    from streams.views import UserReport

    lost = advance("f", None, _f02435(), T0 + 60 * DAY, M).state
    payer = advance("f", None, [*_f02435(cancel=False), _sub(T0 + 7 * DAY, "active", mrr=1299, period_end=T0 + 14 * DAY)],
                    T0 + 60 * DAY, M).state
    now = T0 + 60 * DAY
    rows = [UserReport("trialist", now, score(lost, now // 1000, M), lost, lost_mrr_cents=0),
            UserReport("payer", now, score(payer, now // 1000, M), payer, lost_mrr_cents=1299)]
    assert rows[0].to_dict()["never_paid_trial"] is True and "never_paid_trial" not in rows[1].to_dict()
    text = user_rows(rows, False)
    assert "lost MRR" in text[0] and "    trial" in text[1] and "12.99" in text[2], text
