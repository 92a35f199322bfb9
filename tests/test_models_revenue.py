"""models.revenue and models.revenue_ledger: ChartMogul's movement examples, trials, failed payments, period formulas,
order independence within a timestamp, idempotence and the compact state."""

from __future__ import annotations

import random
import struct
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from models.events import Event
from models.subscription import Subscription
from models.revenue import AccountState
from models.revenue_ledger import Ledger, RevenueBook, next_period_ms, period_start_ms

JAN = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
FEB, MAR, APR = JAN + 31 * DAY, JAN + 59 * DAY, JAN + 90 * DAY


def sub(user: str, at_ms: int, status: str, mrr_cents: int, plan: str = "Pro", account: str = "acme", ends: int = 0,
        eid: str | None = None, period_end: int = 0) -> Event:
    return Event(user, at_ms, "subscription", eid or f"{user}@{at_ms}:{status}", 0.0, account,
                 Subscription(status, plan, mrr_cents, ends, period_end))  # type: ignore[arg-type]


def run(events: list[Event], period: str = "month") -> RevenueBook:
    book = RevenueBook(period)  # type: ignore[arg-type]
    for ev in events:
        book.update(ev)
    return book


def kinds(book: RevenueBook) -> list[tuple[str, int]]:
    return [(m.kind, m.delta_cents) for m in book.movements]


def test_chartmogul_syncalytics_example() -> None:
    """help.chartmogul.com "MRR movements" walk-through: yearly Gold 2,000/12, two Silver monthly,
    Silver cancelled while Gold stays (contraction), Gold cancelled (churn), three Gold back (reactivation)."""
    book = run([
        sub("admin", JAN, "active", 16667, "Gold yearly x4"),
        sub("ops", JAN + 3 * DAY, "active", 6000, "Silver x2"),
        sub("ops", JAN + 17 * DAY, "cancelled", 0, "Silver x2"),
        sub("admin", JAN + 365 * DAY, "cancelled", 0, "Gold yearly x4"),
        sub("admin", JAN + 400 * DAY, "active", 15000, "Gold x3"),
    ])
    assert kinds(book) == [("new", 16667), ("expansion", 6000), ("contraction", -6000), ("churn", -16667),
                           ("reactivation", 15000)]


def test_trials_convert_as_new_and_lapse_without_churn() -> None:
    book = run([
        sub("a", JAN, "trial", 4999, ends=JAN + 14 * DAY, account="conv"),
        sub("a", JAN + 14 * DAY, "active", 4999, account="conv"),
        sub("b", JAN + 2 * DAY, "trial", 4999, ends=JAN + 16 * DAY, account="lapse"),
        sub("b", JAN + 16 * DAY, "cancelled", 0, account="lapse"),
    ])
    assert kinds(book) == [("new", 4999)]
    assert book.accounts["lapse"].get().customer is False
    assert book.accounts["conv"].get().first_paid_ms == JAN + 14 * DAY
    (jan,) = book.get(JAN, FEB)
    assert (jan.new_customers, jan.churned_customers, jan.logo_churn) == (1, 0, 0)
    view = run([sub("c", JAN, "trial", 100, ends=JAN + 9 * DAY)]).accounts["acme"].get()
    assert (view.status, view.trial_ends_ms, view.mrr_cents) == ("trial", JAN + 9 * DAY, 0)


def test_past_due_keeps_mrr_then_recovers_or_churns() -> None:
    book = run([
        sub("a", JAN, "active", 2000, account="x"),
        sub("a", FEB, "past_due", 2000, account="x"),
        sub("a", FEB + 5 * DAY, "past_due", 2000, account="x"),  # dunning retry restates it
        sub("a", FEB + 9 * DAY, "active", 2000, account="x"),
        sub("b", JAN, "active", 3000, account="y"),
        sub("b", FEB, "past_due", 3000, account="y"),
        sub("b", FEB + 12 * DAY, "cancelled", 0, account="y"),
    ])
    assert [(m.kind, m.ts_ms) for m in book.movements] == [("new", JAN), ("new", JAN), ("churn", FEB + 12 * DAY)]
    mid = run([sub("a", JAN, "active", 2000), sub("a", FEB, "past_due", 2000), sub("a", FEB + 5 * DAY, "past_due", 2000)])
    view = mid.accounts["acme"].get()
    assert (view.status, view.mrr_cents, view.customer, view.past_due_since_ms) == ("past_due", 2000, True, FEB)


def test_downgrade_is_contraction_and_a_risk_signal() -> None:
    book = run([sub("a", JAN, "active", 9900, "Business"), sub("a", JAN + 20 * DAY, "active", 4900, "Pro")])
    assert kinds(book) == [("new", 9900), ("contraction", -5000)]
    view = book.accounts["acme"].get()
    assert (view.contracted_ms, view.plans) == (JAN + 20 * DAY, ("Pro",))
    book.update(sub("a", JAN + 30 * DAY, "active", 9900, "Business"))  # settles the contraction
    assert book.accounts["acme"].contracted_ms == JAN + 20 * DAY


def test_period_figures_follow_the_published_formulas() -> None:
    """A month with 100.00 at its start: 10 churned, 10 contraction, 10 expansion (ChartMogul's own
    example: gross 20 %, net 10 %), plus a customer who joins and leaves inside the month."""
    start = [sub("u", JAN + i * DAY, "active", 2500, account=f"a{i}") for i in range(4)]  # 4 x 25.00
    feb = [
        sub("u", FEB + DAY, "cancelled", 0, account="a0"),
        sub("u", FEB + 2 * DAY, "active", 1500, account="a1"),  # 25 -> 15: contraction 10
        sub("u", FEB + 3 * DAY, "active", 3500, account="a2"),  # 25 -> 35: expansion 10
        sub("u", FEB + 4 * DAY, "active", 1500, account="a0"),  # a0 back: reactivation 15.00
        sub("u", FEB + 5 * DAY, "cancelled", 0, account="a0"),  # joined (back) and left inside February
        sub("u", FEB + 6 * DAY, "active", 700, account="new"),
    ]
    _, f = run(start + feb).get(JAN, MAR)
    assert (f.start_mrr_cents, f.churned_cents, f.contraction_cents, f.expansion_cents) == (10000, 2500 + 1500, 1000, 1000)
    assert (f.reactivation_cents, f.new_cents, f.end_mrr_cents) == (1500, 700, 8200)
    assert (f.customers_start, f.new_customers, f.reactivated_customers, f.churned_customers, f.customers_end) == (4, 1, 1, 2, 4)
    assert f.logo_churn == 1 and f.logo_churn_rate == Fraction(1, 4)  # a0's second exit began in February
    assert f.gross_mrr_churn_rate == Fraction(4000 + 1000, 10000)
    assert f.net_mrr_churn_rate == Fraction(4000 + 1000 - 1000 - 1500, 10000)
    assert f.grr == Fraction(10000 - 2500 - 1000, 10000)  # only customers of Feb 1st: a0's first churn, a1
    assert f.nrr == Fraction(10000 - 2500 - 1000 + 1000, 10000)
    assert f.quick_ratio == Fraction(700 + 1000 + 1500, 4000 + 1000)
    assert (f.won, f.net_new_mrr_cents) == (2, f.end_mrr_cents - f.start_mrr_cents)


def test_chartmogul_rate_example_numbers() -> None:
    """Start 100.00; lose 10 to churn and 10 to contraction; one customer +10 -> gross 20 %, net 10 %."""
    start = [sub("u", JAN, "active", 1000, account=f"a{i}") for i in range(10)]
    feb = [sub("u", FEB, "cancelled", 0, account="a0"), sub("u", FEB, "active", 500, account="a1"),
           sub("u", FEB, "active", 500, account="a2"), sub("u", FEB, "active", 2000, account="a3")]
    _, f = run(start + feb).get(JAN, MAR)
    assert (f.gross_mrr_churn_rate, f.net_mrr_churn_rate) == (Fraction(20, 100), Fraction(10, 100))


def test_empty_periods_have_no_rates() -> None:
    (f,) = run([]).get(JAN, FEB)
    assert (f.start_mrr_cents, f.gross_mrr_churn_rate, f.nrr, f.quick_ratio, f.logo_churn_rate) == (0, None, None, None, None)


def test_cohorts_by_first_paid_month() -> None:
    book = run([
        sub("u", JAN + DAY, "active", 1000, account="a"), sub("u", JAN + 2 * DAY, "active", 3000, account="b"),
        sub("u", FEB + DAY, "active", 2000, account="a"),  # expansion
        sub("u", MAR + DAY, "cancelled", 0, account="b"),
        sub("u", FEB + DAY, "active", 500, account="c"),
    ])
    jan, feb = book.cohorts.get(APR)
    assert (jan.cohort_ms, jan.customers, jan.value_cents) == (JAN, 2, 4000)
    assert [m[1:] for m in jan.months] == [(2, 4000, 1, 1), (2, 5000, 1, Fraction(5, 4)), (1, 2000, Fraction(1, 2), Fraction(1, 2))]
    assert (feb.cohort_ms, feb.customers, [m[1] for m in feb.months]) == (FEB, 1, [1, 1])


def test_duplicates_replays_and_restatements_move_nothing() -> None:
    history = [sub("a", JAN, "active", 1000), sub("b", JAN + DAY, "active", 500), sub("a", FEB, "active", 2000),
               sub("b", MAR, "cancelled", 0)]
    once = run(history)
    noisy = run([e for ev in history for e in (ev, sub(ev.user_id, ev.ts_ms, ev.subscription.status,  # type: ignore[union-attr]
                                                           ev.subscription.mrr_cents, eid="dup"))]  # type: ignore[union-attr]
                + [sub("a", FEB + 10 * DAY, "active", 2000)] + history)  # a renewal restating it, then a replay
    assert noisy.movements == once.movements and noisy.late == 0
    assert noisy.get(JAN, APR) == once.get(JAN, APR)


def test_a_late_statement_that_would_change_the_past_is_counted_and_ignored() -> None:
    book = run([sub("a", JAN, "active", 1000), sub("a", FEB, "active", 2000), sub("b", JAN + DAY, "active", 300)])
    assert book.late == 1 and kinds(book) == [("new", 1000), ("expansion", 1000)]
    # a renewal restates a@FEB at MAR (the account's latest change stays FEB); a different
    # statement a@FEB+1 arriving after it contradicts what is known to hold from FEB to MAR: late
    book.update(sub("a", MAR, "active", 2000))
    assert book.accounts["acme"].at_ms == FEB
    book.update(sub("a", FEB + DAY, "active", 9000))
    assert book.late == 2 and book.accounts["acme"].mrr_cents() == 2000
    book.update(sub("a", JAN + 5 * DAY, "active", 1000))  # a replay of January: harmless
    assert book.late == 2


_STATUSES = st.sampled_from(["trial", "active", "past_due", "cancelled"])
_STMT = st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.integers(0, 4), _STATUSES, st.sampled_from([0, 999, 1999, 4999]),
                  st.sampled_from(["Basic", "Pro"]), st.sampled_from([0, 0, FEB, MAR]))


@settings(max_examples=150, deadline=None)
@given(st.lists(_STMT, max_size=25), st.randoms(use_true_random=False))
@example([("u2", 0, "cancelled", 0, "Basic", 0), ("u1", 1, "trial", 0, "Basic", 0), ("u2", 1, "active", 999, "Basic", 0),
          ("u2", 1, "cancelled", 0, "Basic", 0)], random.Random(3))  # a cancellation restated at T, rival at T
@example([("u1", 0, "active", 999, "Pro", FEB), ("u1", 1, "active", 999, "Pro", MAR), ("u1", 1, "active", 999, "Pro", FEB)],
         random.Random(1))  # a renewal and its older period end at the same time
def test_order_within_a_timestamp_never_matters(stmts: list[tuple[str, int, str, int, str, int]], rnd: random.Random) -> None:
    events = [sub(u, JAN + t * 10 * DAY, s, 0 if s == "cancelled" else m, p, eid=f"e{i}", period_end=pe)
              for i, (u, t, s, m, p, pe) in enumerate(stmts)]
    by_time = sorted(events, key=lambda e: e.ts_ms)
    shuffled = sorted(events, key=lambda e: (e.ts_ms, rnd.random()))
    a, b = run(by_time), run(shuffled)
    assert a.movements == b.movements
    assert a.get(JAN, APR) == b.get(JAN, APR)
    if events:
        assert a.accounts["acme"].mrr_cents() == b.accounts["acme"].mrr_cents()
        assert a.accounts["acme"].get().renews_ms == b.accounts["acme"].get().renews_ms
        assert a.accounts["acme"].churned() == b.accounts["acme"].churned()
    # the movements reconcile with the account's MRR, and every period hands over to the next
    figs = a.get(JAN, APR)
    assert all(f.end_mrr_cents == g.start_mrr_cents for f, g in zip(figs, figs[1:]))
    assert figs[-1].end_mrr_cents == (a.accounts["acme"].mrr_cents() if events else 0)


def test_state_round_trips_through_bytes_and_stays_small() -> None:
    st_ = AccountState()
    for ev in [sub("a", JAN, "trial", 4999, ends=JAN + 14 * DAY), sub("a", JAN + 14 * DAY, "active", 4999),
               sub("b", FEB, "past_due", 999, "Add-on")]:
        st_.update(ev)
    back = AccountState.from_bytes(st_.to_bytes())
    assert back == st_ and back.get() == st_.get()
    one = AccountState().update(sub("a", JAN, "active", 4999))
    assert len(one.to_bytes()) == 43 + 43 + len("Pro")
    nxt = sub("a", FEB, "active", 9999)
    assert AccountState.from_bytes(one.to_bytes()).apply(nxt) == AccountState().update(sub("a", JAN, "active", 4999)).apply(nxt)


def test_seats_are_kept_through_bytes_4_bytes_a_subscription_and_only_when_stated() -> None:
    """QA20a F6: a statement's seats are kept (the price per seat at the next renewal), after the
    subscriptions in the record, 4 bytes each, only while one states them: a record without them is
    byte for byte the one before. A seats-only change at a later time is a restatement (no movement)
    that carries them; two statements of one instant that differ only in seats: the larger wins,
    whatever the order."""
    def seated(user: str, at: int, mrr: int, seats: int, plan: str = "Team") -> Event:
        return Event(user, at, "subscription", f"{user}@{at}:{seats}", 0.0, "acme", Subscription("active", plan, mrr, 0, at + 365 * DAY, seats))

    plain = AccountState().update(sub("a", JAN, "active", 52_000, "Team", period_end=JAN + 365 * DAY))
    with_seats = AccountState().update(seated("a", JAN, 52_000, 26))
    assert len(with_seats.to_bytes()) == len(plain.to_bytes()) + 4 and plain.to_bytes()[0] == 2
    back = AccountState.from_bytes(with_seats.to_bytes())
    assert back == with_seats and back.subs[next(iter(back.subs))].sub.seats == 26
    two = AccountState().update(seated("a", JAN, 52_000, 26)).update(sub("b", JAN, "active", 999, "Add-on", period_end=FEB))
    back2 = AccountState.from_bytes(two.to_bytes())
    assert back2 == two and sorted(s.sub.seats for s in back2.subs.values()) == [0, 26]
    churned = AccountState().update(seated("a", JAN, 52_000, 26)).update(sub("a", FEB, "cancelled", 0, "Team"))
    churned.update(sub("b", MAR, "cancelled", 0, "Add-on"))  # settles the churn: its 16 bytes follow the seats
    assert AccountState.from_bytes(churned.to_bytes()) == churned and churned.churned() == (52_000, FEB)
    moved = AccountState().update(seated("a", JAN, 52_000, 26))
    assert moved.apply(seated("a", FEB, 52_000, 20)).add is None and next(iter(moved.subs.values())).sub.seats == 20
    for order in ((26, 30), (30, 26)):
        same = AccountState()
        for n in order:
            same.update(seated("a", JAN, 52_000, n))
        assert next(iter(same.subs.values())).sub.seats == 30, order


def test_a_renewal_moving_the_period_end_on_moves_no_money_and_keeps_since() -> None:
    book = run([sub("a", JAN, "active", 4999, period_end=FEB), sub("b", JAN, "active", 999, "Add-on", period_end=FEB + 5 * DAY),
                sub("a", FEB, "past_due", 4999, period_end=MAR),  # the renewal's payment failed: the period moved on
                sub("a", FEB + 3 * DAY, "past_due", 4999, period_end=MAR)])  # restated
    acme = book.accounts["acme"]
    assert kinds(book) == [("new", 5998)] and acme.get().past_due_since_ms == FEB
    assert acme.get().renews_ms == FEB + 5 * DAY  # the earliest paid period to end: b's
    book.update(sub("b", FEB + 5 * DAY, "active", 999, "Add-on", period_end=MAR + 5 * DAY))  # b renews: no movement
    assert kinds(book) == [("new", 5998)] and acme.get().renews_ms == MAR and acme.at_ms == FEB
    book.update(sub("b", FEB + 4 * DAY, "active", 999, "Add-on", period_end=FEB + 5 * DAY))  # an older statement: ignored
    assert acme.get().renews_ms == MAR and book.late == 0


def test_a_cancelled_or_trial_subscription_has_no_renewal() -> None:
    st_ = AccountState().update(sub("a", JAN, "trial", 0, ends=JAN + 14 * DAY, period_end=JAN + 14 * DAY))
    assert (st_.get().trial_ends_ms, st_.get().renews_ms) == (JAN + 14 * DAY, 0)  # a trial is not a paid period
    st_.update(sub("a", JAN + 14 * DAY, "active", 4999, period_end=FEB + 14 * DAY))
    assert st_.get().renews_ms == FEB + 14 * DAY
    st_.update(sub("a", JAN + 20 * DAY, "cancelled", 0, period_end=FEB + 14 * DAY))
    assert st_.get().renews_ms == 0 and st_.get().status == "cancelled"


def test_a_statement_re_sent_in_the_period_keeps_the_period_and_its_renewal_window() -> None:
    """Review M4: the period was read from the latest statement to its end, so an annual plan's
    statement re-sent (or its plan changed) 100 days before the end made the period 100 days and
    the renewal window 30 days instead of 91. The period is the longest the statements of that
    end have stated, whatever their order; the next period starts from its own statement."""
    year_end = JAN + 365 * DAY
    window_days = lambda st_: st_.get().renewal_window_ms(st_.get().renews_ms) // DAY  # noqa: E731
    start = sub("a", JAN, "active", 100_000, "Business", period_end=year_end)
    resent = sub("a", year_end - 100 * DAY, "active", 100_000, "Business", period_end=year_end)
    changed = sub("a", year_end - 100 * DAY, "active", 120_000, "Business+", period_end=year_end)
    for later in (resent, changed):
        in_order, reversed_ = AccountState().update(start).update(later), AccountState().update(later).update(start)
        assert window_days(in_order) == 91 and in_order.get().periods_ms == (365 * DAY,), later
        back = AccountState.from_bytes(in_order.to_bytes())
        assert back == in_order and back.get() == in_order.get() and in_order.to_bytes()[0] == 3
    in_order, reversed_ = AccountState().update(start).update(resent), AccountState().update(resent).update(start)
    assert reversed_.get().periods_ms == in_order.get().periods_ms == (365 * DAY,)
    assert window_days(AccountState().update(resent)) == 30  # alone, it states only what is left
    renewed = AccountState().update(start).update(resent).update(
        sub("a", year_end + 200 * DAY, "active", 100_000, "Business", period_end=year_end + 365 * DAY))
    assert renewed.get().periods_ms == (165 * DAY,), "a new period end: its own statements only"
    ordinary = AccountState().update(start).update(sub("a", year_end, "active", 100_000, "Business", period_end=year_end + 365 * DAY))
    assert ordinary.to_bytes()[0] == 2 and window_days(ordinary) == 91  # a renewal at the period's start: format 2 as before


def test_state_with_period_ends_round_trips_and_old_records_stay_readable() -> None:
    st_ = AccountState()
    for ev in [sub("a", JAN, "active", 4999, period_end=FEB), sub("b", JAN, "active", 999, "Add-on"),
               sub("c", JAN + DAY, "cancelled", 0)]:
        st_.update(ev)
    raw = st_.to_bytes()
    assert raw[0] == 2 and len(raw) == 43 + 3 * 51 + len("ProAdd-onPro")
    back = AccountState.from_bytes(raw)
    assert back == st_ and back.get() == st_.get() and back.get().renews_ms == FEB
    # format 1, as workers before period ends wrote it (and as this one still writes a state that
    # states no period end): read with period ends 0
    old = (struct.pack("<BqqqqqH", 1, JAN, 0, 0, 0, 0, 1)  # format, at, before, spell, first paid, contracted, n
           + struct.pack("<QqqBqqH", 7, JAN, JAN, 1, 4999, 0, 3) + b"Pro")  # key, since, stated, active, cents, trial ends, plan
    legacy = AccountState.from_bytes(old)
    assert [(s.sub.status, s.sub.mrr_cents, s.sub.plan, s.sub.period_end_ms) for s in legacy.subs.values()] == [
        ("active", 4999, "Pro", 0)]
    assert legacy.to_bytes() == old and legacy.get().renews_ms == 0
    with pytest.raises(ValueError, match="account state format 9"):
        AccountState.from_bytes(b"\x09" + old[1:])


def test_the_churn_is_kept_while_nothing_is_paid_and_only_then_stored() -> None:
    """What the win-back list reads (streams.views._left): the churn's MRR and time survive a later
    statement (review 2026-12-02: the MRR just before the latest change was read, 0 after another
    user's cancelled statement), through the record; 16 bytes while the account pays nothing,
    none once it pays again, and a reader that predates them reads the rest."""
    st_ = AccountState()
    for ev in [sub("a", JAN, "active", 2500), sub("b", JAN, "active", 2500), sub("a", JAN + 5 * DAY, "cancelled", 0),
               sub("b", JAN + 9 * DAY, "cancelled", 0)]:
        st_.update(ev)
    assert st_.churned() == (2500, JAN + 9 * DAY)  # the churn is the second cancellation, the first a contraction
    st_.update(sub("c", JAN + 12 * DAY, "cancelled", 0))  # another user's statement, later
    assert (st_.before_cents, st_.at_ms, st_.churned()) == (0, JAN + 12 * DAY, (2500, JAN + 9 * DAY))
    raw = st_.to_bytes()
    assert AccountState.from_bytes(raw) == st_ and len(raw) == 43 + 43 + len("Pro") + 16
    assert AccountState.from_bytes(raw[:-16]).churned() == (0, 0)  # as a record of the previous version
    st_.update(sub("a", FEB, "active", 4999))  # reactivated: nothing lost now, nothing kept
    assert st_.churned() == (0, 0)
    st_.update(sub("d", FEB + DAY, "trial", 0))
    assert len(st_.to_bytes()) == 43 + 2 * 43 + len("ProPro")


def test_ledger_counters_revert_exactly() -> None:
    book = run([sub("a", JAN, "active", 1000), sub("a", FEB, "active", 3000)])
    ledger = Ledger("month")
    for mv in book.movements:
        ledger.update(mv)
    for mv in book.movements:
        ledger.revert(mv)
    assert all(v == 0 for t in ledger.totals.values() for v in t.values())


@pytest.mark.parametrize("ts, period, start", [
    (JAN + 5 * DAY + 123, "day", JAN + 5 * DAY),
    (JAN, "week", JAN - 3 * DAY),  # Thu 2026-01-01 -> Mon 2025-12-29
    (JAN + 4 * DAY, "week", JAN + 4 * DAY),  # Mon 2026-01-05
    (FEB + 27 * DAY + DAY - 1, "month", FEB),
])
def test_period_starts(ts: int, period: str, start: int) -> None:
    assert period_start_ms(ts, period) == start  # type: ignore[arg-type]
    assert next_period_ms(JAN + 334 * DAY, "month") == JAN + 365 * DAY  # December -> next January


def test_a_cancellation_after_failed_payments_is_an_involuntary_churn() -> None:
    """QA22a F5: a subscription cancelled while past due (its payment never fixed) is an involuntary
    churn, counted apart in the ledger whatever the order of the statements at its time, and kept
    across the state's record while its time is the latest; one fixed first, or a plain cancel, is not."""
    from models.revenue import AccountState

    due = [sub("a", JAN, "active", 1000), sub("a", JAN + 20 * DAY, "past_due", 1000)]
    book = run(due + [sub("a", FEB + 3 * DAY, "cancelled", 0), sub("b", JAN, "active", 500, account="b"),
                      sub("b", FEB + 4 * DAY, "cancelled", 0, account="b")])
    assert [m.involuntary for m in book.movements if m.kind == "churn"] == [True, False]
    feb = book.get(FEB, MAR)[0]
    assert (feb.churned_cents, feb.churned_involuntary_cents, feb.churned_customers, feb.churned_involuntary_customers) == (1500, 1000, 2, 1)
    at_t = [sub("a", FEB, "active", 1000), sub("a", FEB, "cancelled", 0), sub("u2", FEB, "cancelled", 0)]  # a rival at T, any order
    for order in (at_t, at_t[::-1], at_t[1:] + at_t[:1]):
        churns = [m for m in run(due + order).movements if m.kind == "churn"]
        assert [m.involuntary for m in churns] == [True], order
    state = AccountState()
    for ev in due + [sub("a", FEB, "cancelled", 0)]:
        state.update(ev)
    back = AccountState.from_bytes(state.to_bytes())
    assert back.unpaid and back._movement() == state._movement() and back._movement().involuntary  # type: ignore[union-attr]
    assert not AccountState.from_bytes(state.update(sub("u2", MAR, "cancelled", 0)).to_bytes()).unpaid, "T moved on: forgotten"
    fixed = run(due + [sub("a", FEB, "active", 1000), sub("a", MAR, "cancelled", 0)])
    assert not any(m.involuntary for m in fixed.movements)
