"""Users who never paid (QA24a F4; models.state EVER_PAID, never_paid): a publisher's "98 users
churned = 3.7%" held 49 free readers gone silent beside its 49 cancelled subscribers, and the state
kept no trace of a paid plan once it was cancelled. The state keeps that a plan of the user's own
once paid, in no byte more; the user churn counters count those who never paid apart from the
trials that never paid (never twice), and churn-rate and the console's card say it."""

from __future__ import annotations

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.scoring import score
from models.state import (ACCOUNT_MEMBER, EVER_PAID, PAYS_SUBSCRIPTION, STAGES, TRIAL, TRIAL_LOST, UserState, apply_event,
                          never_paid)
from models.step import count_delta
from models.subscription import Subscription
from streams.worker.store import churn_summary, churned_split_text, day_name

M = ChurnModel()
DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


def _sub(user: str, t: int, status: str, mrr: int = 0, period_end: int = 0, account: str = "") -> Event:
    return Event(user, t, "subscription", f"s{user}{t}", 0.0, account,
                 Subscription(status, "trial" if status == "trial" else "monthly", mrr, 0, period_end))  # type: ignore[arg-type]


def _reads(user: str, days: range) -> list[Event]:
    return [Event(user, T0 + d * DAY + 36_000_000, "article_view", f"e{user}{d}") for d in days]


def test_a_cancelled_subscriber_stays_one_who_paid_in_the_bytes_of_a_record_without_it() -> None:
    st = UserState()
    for ev in [*_reads("s", range(20)), _sub("s", T0, "active", 999, T0 + 30 * DAY)]:
        apply_event(st, ev)
    assert st.flags & EVER_PAID and st.flags & PAYS_SUBSCRIPTION
    apply_event(st, _sub("s", T0 + 30 * DAY, "cancelled"))
    apply_event(st, _sub("s", T0 + 31 * DAY, "active", 0))  # the free plan after it
    assert st.flags & EVER_PAID and not st.flags & PAYS_SUBSCRIPTION and not never_paid(st)
    plain = st.copy()
    plain.flags &= ~EVER_PAID
    assert len(st.to_bytes()) == len(plain.to_bytes()), "EVER_PAID costs no byte: byte 1's bit 3"
    for stage in range(len(STAGES)):
        for flags in (EVER_PAID, EVER_PAID | TRIAL_LOST | ACCOUNT_MEMBER, EVER_PAID | TRIAL | 127, TRIAL, 0):
            for end in (0, 20_600):
                one = st.copy()
                one.stage, one.flags, one.period_end_day = stage, flags, end
                back = UserState.from_bytes(one.to_bytes())
                assert (back.stage, back.flags, back.period_end_day) == (stage, flags, end)
    member = UserState()
    apply_event(member, _sub("m", T0, "active", 999, T0 + 30 * DAY, account="acme"))
    assert not member.flags & EVER_PAID, "a company's plan is its account's, not its billing contact's"


def test_churned_users_who_never_paid_are_counted_apart_from_trials_and_payers() -> None:
    """A free reader gone silent, a subscriber whose cancellation took effect and a trial lost
    without paying: 3 churned, 1 trial that never paid, 1 who never paid at all; the rest's part of
    the rate is the subscriber's, and the sentence says each once."""
    free = advance("r1", None, _reads("r1", range(40)), T0 + 200 * DAY, M)
    paid = advance("r2", None, [*_reads("r2", range(40)), _sub("r2", T0, "active", 999, T0 + 30 * DAY),
                                _sub("r2", T0 + 30 * DAY, "active", 999, T0 + 60 * DAY), _sub("r2", T0 + 60 * DAY, "cancelled")],
                   T0 + 200 * DAY, M)
    trial = advance("r3", None, [*_reads("r3", range(5)), _sub("r3", T0, "trial"), _sub("r3", T0 + 7 * DAY, "cancelled")],
                    T0 + 200 * DAY, M)
    stats: dict[str, float] = {}
    for out in (free, paid, trial):
        assert [a for a in out.alerts if a.kind == "stage_changed" and a.scores.stage == "churned"], out.alerts
        count_delta(None, out.state, out.alerts, stats, day_name)
    assert never_paid(free.state) and not never_paid(paid.state) and not never_paid(trial.state)
    counts = {p: sum(v for k, v in stats.items() if k.startswith(p + ":")) for p in ("churned", "churned_trial", "churned_free")}
    assert counts == {"churned": 3, "churned_trial": 1, "churned_free": 1}, stats
    s = churn_summary(stats, (T0 + 200 * DAY) // 1000, 200)
    figures = s.figures()
    assert (figures["churned"], figures["churned_trials"], figures["churned_never_paid"]) == (3, 1, 1)
    assert abs(s.rate_others - s.rate / 3) < 1e-12
    assert churned_split_text(figures) == (f"1 of them trials that never paid and 1 never paid at all; the other 1 = "
                                           f"{100 * s.rate_others:.1f}%")
    from streams.cli.churn_rate import _split  # churn-rate's sentence: "N users churned = x% of M active at the start, ..."

    assert _split(figures) == ", " + churned_split_text(figures) and _split({**figures, "churned_trials": 0, "churned_never_paid": 0}) == ""


def test_a_former_subscribers_trial_is_a_paying_users_churn_not_a_trial_that_never_paid() -> None:
    """2026-12-05: a reader who paid a plan, cancelled it and later took a trial (lost, or still
    running when they went silent) was counted among "trials that never paid". The trial rule reads
    EVER_PAID: such a churn is the paying users' (the sentence's "other" part), counted once; the
    win-back list does not mark it ``trial``. A trial of a user who never paid still is one."""
    from streams.views import UserReport

    def paid(u: str) -> list[Event]:  # a month's plan paid and cancelled, then silence but for the trial
        return [*_reads(u, range(40)), _sub(u, T0, "active", 999, T0 + 30 * DAY), _sub(u, T0 + 30 * DAY, "cancelled")]

    lost = advance("p", None, [*paid("p"), _sub("p", T0 + 35 * DAY, "trial"), _sub("p", T0 + 42 * DAY, "cancelled")],
                   T0 + 200 * DAY, M)
    running = advance("q", None, [*paid("q"), _sub("q", T0 + 35 * DAY, "trial")], T0 + 200 * DAY, M)
    lead = advance("r", None, [*_reads("r", range(5)), _sub("r", T0, "trial"), _sub("r", T0 + 7 * DAY, "cancelled")],
                   T0 + 200 * DAY, M)
    assert lost.state.flags & EVER_PAID and not lost.state.flags & TRIAL_LOST, "a former subscriber's cancellation is a customer's"
    assert running.state.flags & EVER_PAID and running.state.flags & TRIAL, "in trial all the same (the reasons' words)"
    assert lead.state.flags & TRIAL_LOST and not lead.state.flags & EVER_PAID
    stats: dict[str, float] = {}
    for out in (lost, running, lead):
        assert [a for a in out.alerts if a.kind == "stage_changed" and a.scores.stage == "churned"], out.alerts
        count_delta(None, out.state, out.alerts, stats, day_name)
    counts = {p: sum(v for k, v in stats.items() if k.startswith(p + ":")) for p in ("churned", "churned_trial", "churned_free")}
    assert counts == {"churned": 3, "churned_trial": 1, "churned_free": 0}, stats
    figures = churn_summary(stats, (T0 + 200 * DAY) // 1000, 200).figures()
    assert churned_split_text(figures).startswith("1 of them trials that never paid; the other 2 = ")
    now = T0 + 200 * DAY
    marks = [UserReport(u, now, score(o.state, now // 1000, M), o.state, lost_mrr_cents=0).to_dict().get("never_paid_trial")
             for u, o in (("p", lost), ("q", running), ("r", lead))]
    assert marks == [None, None, True]


def test_the_win_back_list_puts_former_subscribers_first_and_leaves_a_product_without_plans_as_it_was() -> None:
    """QA24a F9: ``top --win-back``'s default order put 37 free readers (never paid) before the
    first former subscriber: a free reader who left later reads a higher chance of coming back.
    Former subscribers (EVER_PAID) come first, by the same order among themselves; the index score
    orders alike. Without the plan (a product without paid plans) the order is the chance's, as before."""
    from models.ranking import assess, daily_list, index_score

    end = T0 + 400 * DAY
    subscriber = [*_reads("a", range(0, 120, 2)), _sub("a", T0, "active", 999, T0 + 30 * DAY), _sub("a", T0 + 120 * DAY, "cancelled")]
    states = {"a": advance("a", None, subscriber, end, M).state, "b": advance("b", None, _reads("b", range(200, 300)), end, M).state}
    plain = {uid: st.copy() for uid, st in states.items()}
    plain["a"].flags &= ~EVER_PAID
    order = [r.user_id for r in daily_list(states.items(), end // 1000, M, "win_back", share=1.0)]
    before = [r.user_id for r in daily_list(plain.items(), end // 1000, M, "win_back", share=1.0)]
    assert before == ["b", "a"], "the free reader left later: a higher chance of coming back"
    assert order == ["a", "b"]
    scores = {uid: index_score(assess(st, end // 1000, M), st, M) for uid, st in states.items()}
    assert scores["a"] > scores["b"] >= 1.0
