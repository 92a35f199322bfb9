"""The account roll-up's written rules (models/account_health.py): each reason, the risk it
carries, and the member record's size."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from models.account_health import (ACCOUNT_AT_RISK, Downgrade, Member, Trend, add_copy, hours_left, member_key, own_account,
                                   rollup, seat_price_rise, trend_risk, TREND_AT_RISK, TREND_FROM)
from models.revenue import AccountView
from models.subscription import Subscription

DAY_S = 86_400
NOW_S = 1_772_323_200  # 2026-03-01
NOW_MS = NOW_S * 1000


def _view(mrr: int = 9_900, status: str = "active", past_due_ms: int = 0, trial_ends_ms: int = 0, first_paid_ms: int = 1) -> AccountView:
    return AccountView(mrr, mrr > 0, status, ("Pro",), past_due_ms, trial_ends_ms, 0, first_paid_ms)


def _steady(key: int, silent_days: float = 0) -> Member:
    return Member(key, int(NOW_S - silent_days * DAY_S), 1, 0.0, 20.0, 20.0)


def test_member_record_is_25_bytes_and_round_trips() -> None:
    m = Member(member_key("u1"), NOW_S, 2, 0.5, 3.25, 7.5)
    assert len(m.to_bytes()) == 25 and Member.from_bytes(m.to_bytes()) == m


def test_a_companys_price_per_seat_rise_at_renewal_is_the_b2c_price_rises_rule() -> None:
    """QA20a F6: acc46's Team Annual 520.00 -> 650.00 for the same 26 seats at its renewal (20.00
    -> 25.00 a seat), cancelled 20 days later with no warning. With the seats on both statements it
    is a price rise as a B2C plan's (QA19 F7: one rule, risk 0.5, "review how the plan fits their
    use", 30 days), said per seat; more seats at the same price, fewer at a lower one, a plan change
    or a trial are not; the users' healthy use does not hide it."""
    before = Subscription("active", "Team Annual", 52_000, 0, NOW_MS, 26)
    rise = seat_price_rise(NOW_MS, before, replace(before, mrr_cents=65_000, period_end_ms=NOW_MS + 365 * DAY_S * 1000))
    assert rise is not None
    for days, reasons in ((0, ("price per seat rose from 20.00 to 25.00 at its renewal today (Team Annual, 26 seats)",)),
                          (20, ("price per seat rose from 20.00 to 25.00 at its renewal 20 days ago (Team Annual, 26 seats)",)),
                          (30, ())):
        members = [Member(k, NOW_S + days * DAY_S, 1, 0.0, 20.0, 20.0) for k in range(1, 27)]  # all in use
        r = rollup(members, _view(65_000), None, 0, NOW_S + days * DAY_S, rise=rise)
        assert (r.reasons, r.risk, r.action) == ((reasons, 0.5, "review how the plan fits their use") if reasons else ((), 0.0, "none")), days
    for after in (replace(before, mrr_cents=64_000, seats=32), replace(before, mrr_cents=40_000, seats=25), replace(before, plan="Team"),
                  replace(before, mrr_cents=65_000, seats=0), replace(before, status="trial", mrr_cents=0)):
        assert seat_price_rise(NOW_MS, before, after) is None, after
    assert seat_price_rise(NOW_MS, replace(before, seats=0), replace(before, mrr_cents=65_000)) is None
    fewer = seat_price_rise(NOW_MS, before, replace(before, mrr_cents=50_000, seats=20))  # 25.00 a seat, MRR down
    assert fewer is not None and fewer.text(NOW_MS) == "price per seat rose from 20.00 to 25.00 at its renewal today (Team Annual, 26 to 20 seats)"


def test_a_healthy_paying_account_is_a_customer_with_no_reason() -> None:
    r = rollup([_steady(1), _steady(2)], _view(), None, 0, NOW_S)
    assert (r.stage, r.risk, r.health, r.temperature, r.reasons, r.action) == ("customer", 0.0, 100, 100, (), "none")


def test_silent_users_are_counted_and_named() -> None:
    members = [_steady(1), _steady(2), _steady(3, 15), _steady(4, 16), _steady(5, 30)]
    r = rollup(members, _view(), None, 0, NOW_S)
    assert r.reasons[0] == "3 of 5 users silent for 2 weeks" and r.silent == 3 and r.users == 5
    assert abs(r.risk - 0.48) < 1e-9 and r.risk < ACCOUNT_AT_RISK  # silence alone: 0.8 x 3/5
    gone = rollup([_steady(1), _steady(2, 100)], _view(), None, 0, NOW_S)
    assert (gone.users, gone.silent) == (1, 0)  # not seen for 90 days: no longer one of the account's users
    nobody = rollup([_steady(1, 100)], _view(), None, 0, NOW_S)  # unless nobody was: an abandoned account
    assert (nobody.users, nobody.silent, nobody.risk, nobody.reasons) == (1, 1, 0.8, ("the only user silent for 14 weeks",))


def test_billing_signals_each_raise_the_risk_with_their_reason() -> None:
    past_due = rollup([_steady(1)], _view(past_due_ms=NOW_MS - 9 * DAY_S * 1000), None, 0, NOW_S)
    assert past_due.reasons == ("payment failed 9 days ago (past due)",) and past_due.risk == 0.5
    assert past_due.action == "fix the payment with the billing contact" and past_due.stage == "at_risk"
    down = rollup([_steady(1)], _view(), Downgrade(NOW_MS - 9 * DAY_S * 1000, ("Pro",), ("Basic",)), 0, NOW_S)
    assert down.reasons == ("downgraded from Pro to Basic 9 days ago",) and down.risk == 0.35
    old = rollup([_steady(1)], _view(), Downgrade(NOW_MS - 40 * DAY_S * 1000, ("Pro",), ("Basic",)), 0, NOW_S)
    assert old.reasons == ()  # a downgrade older than 30 days is no longer a signal
    falling = [Member(1, NOW_S, 1, 0.0, 10.0, 20.0)]  # 4-week activity at half what its 13-week rate expects
    renewal = rollup(falling, _view(), None, NOW_MS + 21 * DAY_S * 1000, NOW_S)
    assert renewal.reasons == ("renewal in 21 days while usage fell 50% (last 4 weeks against its 3-month rate)",) and renewal.risk == 0.4
    assert rollup([_steady(1)], _view(), None, NOW_MS + 21 * DAY_S * 1000, NOW_S).reasons == ()  # steady: no reason


def test_an_account_below_the_at_risk_line_keeps_its_reasons_action() -> None:
    # QA pass 6 L4: acme, downgraded from Business to Pro (risk 0.35), showed action "none" above
    # "Why: downgraded ..."; the action comes from the heaviest reason whatever the risk
    down = rollup([_steady(1)], _view(), Downgrade(NOW_MS - 21 * DAY_S * 1000, ("Business",), ("Pro",)), 0, NOW_S)
    assert (down.risk, down.stage, down.reasons) == (0.35, "customer", ("downgraded from Business to Pro 21 days ago",))
    assert down.risk < ACCOUNT_AT_RISK and down.action == "review how the plan fits their use"
    quiet = rollup([_steady(1), _steady(2), _steady(3, 15)], _view(), None, 0, NOW_S)  # 1 of 3 silent: 0.27
    assert quiet.risk < ACCOUNT_AT_RISK and quiet.action == "re-engage the silent users"
    assert rollup([_steady(1)], _view(), None, 0, NOW_S).action == "none"  # no reason, nothing to do


def test_a_cancelled_account_is_churned_and_a_trial_is_not_revenue() -> None:
    churned = rollup([_steady(1)], _view(mrr=0, status="cancelled"), None, 0, NOW_S)
    assert (churned.stage, churned.risk, churned.action, churned.reasons[0]) == ("churned", 1.0, "win back", "subscription cancelled")
    trial = rollup([Member(1, NOW_S, 1, 0.0, 2.0, 20.0)], _view(mrr=0, status="trial", trial_ends_ms=NOW_MS + 30 * 3_600_000,
                                                                first_paid_ms=0), None, 0, NOW_S)
    assert trial.reasons[0] == "trial ends in 30 h with usage at 10% of the usual" and trial.stage == "at_risk"


def test_a_trial_past_its_end_keeps_the_trial_rule_while_billing_has_not_said() -> None:
    """Review 4 (2026-12-03): the rule asked ``0 <= trial_ends - now``, so at the trial end the
    risk of a used trial at 10 % of its usual fell from 0.5 to 0 (and an open alert "recovered")
    while the status still said trial. It now holds until a statement says converted or
    cancelled, and says how long ago the trial ended; a trial used as usual (50 % or more) still
    has no reason, before or after its end; a converted one neither. Its action says the trial has
    ended (2026-12-03: it said "help them convert before the trial ends" after the end), on event
    time: a millisecond before the end it is still "before the trial ends"."""
    low = [Member(1, NOW_S, 1, 0.0, 2.0, 20.0)]
    said = []
    for hours in (0, 5, 71, 24 * 9):
        view = _view(mrr=0, status="trial", trial_ends_ms=NOW_MS - hours * 3_600_000 - 60_000, first_paid_ms=0)
        r = rollup(low, view, None, 0, NOW_S)
        assert (r.risk, r.stage, r.action) == (0.5, "at_risk", "help them convert now that the trial has ended"), r
        said.append(r.reasons[0])
        assert rollup([_steady(1)], view, None, 0, NOW_S).reasons == ()
    assert said == ["trial ended less than an hour ago with usage at 10% of the usual", "trial ended 5 h ago with usage at 10% of the usual",
                    "trial ended 71 h ago with usage at 10% of the usual", "trial ended 9 days ago with usage at 10% of the usual"]
    for ends_ms, action in ((NOW_MS + 1, "help them convert before the trial ends"), (NOW_MS, "help them convert now that the trial has ended")):
        edge = rollup(low, _view(mrr=0, status="trial", trial_ends_ms=ends_ms, first_paid_ms=0), None, 0, NOW_S, NOW_MS)
        assert (edge.action, edge.reasons[0].startswith("trial ends" if ends_ms > NOW_MS else "trial ended")) == (action, True), edge
    nobody = rollup([], _view(mrr=0, status="trial", trial_ends_ms=NOW_MS - 3 * 3_600_000, first_paid_ms=0), None, 0, NOW_S)
    assert (nobody.risk, nobody.reasons) == (0.5, ("trial ended 3 h ago and nobody has used it",))
    converted = rollup(low, _view(mrr=9_900, status="active", trial_ends_ms=0, first_paid_ms=NOW_MS - 3_600_000), None, 0, NOW_S)
    assert (converted.risk, converted.stage, converted.reasons) == (0.0, "customer", ())


def test_days_and_hours_read_as_a_person_writes_them() -> None:
    """QA 2026-12: "renewal in 1 days", "payment failed 1 days ago", "payment failed 0 days ago"."""
    falling = [Member(1, NOW_S, 1, 0.0, 10.0, 20.0)]
    said = []
    for days in (0, 1, 2):
        ago_ms = NOW_MS - days * DAY_S * 1000 - 3_600_000
        said += rollup(falling, _view(past_due_ms=ago_ms), Downgrade(ago_ms, ("Pro",), ("Basic",)),
                       NOW_MS + days * DAY_S * 1000 + 3_600_000, NOW_S).reasons
    assert said == ["payment failed today (past due)", "renewal today while usage fell 50% (last 4 weeks against its 3-month rate)", "downgraded from Pro to Basic today",
                    "payment failed 1 day ago (past due)", "renewal in 1 day while usage fell 50% (last 4 weeks against its 3-month rate)", "downgraded from Pro to Basic 1 day ago",
                    "payment failed 2 days ago (past due)", "renewal in 2 days while usage fell 50% (last 4 weeks against its 3-month rate)",
                    "downgraded from Pro to Basic 2 days ago"]
    ends = [Member(1, NOW_S, 1, 0.0, 2.0, 20.0)]
    trial = rollup(ends, _view(mrr=0, status="trial", trial_ends_ms=NOW_MS + 1_800_000, first_paid_ms=0), None, 0, NOW_S)
    assert trial.reasons[0] == "trial ends within the hour with usage at 10% of the usual"


def test_trial_hours_count_from_the_same_millisecond_and_round_to_the_hour() -> None:
    """QA 2026-12: a reminder due at 72 h, reviewed 250 ms later, said 71 h left; the reason
    counted from whole seconds. Both now count from the alert's millisecond, to the nearest hour."""
    users = [Member(1, NOW_S, 1, 0.0, 2.0, 20.0)]
    for hours in (72, 24):
        now_ms = NOW_MS + 250
        view = _view(mrr=0, status="trial", trial_ends_ms=NOW_MS + hours * 3_600_000, first_paid_ms=0)
        assert hours_left(view.trial_ends_ms, now_ms) == hours
        said = rollup(users, view, None, 0, now_ms // 1000, now_ms).reasons[0]
        assert said == f"trial ends in {hours} h with usage at 10% of the usual"


def test_the_renewal_reason_counts_the_days_the_book_column_counts() -> None:
    """QA 2026-12: ``top --all`` showed "2026-12-09 (in 8 d)" next to "renewal in 7 days" (seen on
    2026-12-01 in the evening): the column counted calendar days, the reason 24-h periods."""
    from streams.timefmt import parse_ts_ms
    from streams.views import AccountReport

    now_ms = parse_ts_ms("2026-12-01T20:00:00Z")
    renews_ms = parse_ts_ms("2026-12-09T08:00:00Z")
    falling = [Member(1, now_ms // 1000, 1, 0.0, 10.0, 20.0)]
    r = rollup(falling, _view(), None, renews_ms, now_ms // 1000, now_ms)
    assert AccountReport("a", "", "", "", r, renews_ms, now_ms).next_renewal == "2026-12-09 (in 8 d)"
    assert r.reasons[0] == "renewal in 8 days while usage fell 50% (last 4 weeks against its 3-month rate)"


def _stated(*rows: tuple[str, int, str, str, int]) -> AccountView:
    """The view of an account after statements ``(user, day before NOW, status, plan, mrr cents)``."""
    from models.events import Event
    from models.revenue import AccountState
    from models.subscription import Subscription

    state = AccountState()
    for n, (user, days_ago, status, plan, mrr) in enumerate(rows):
        state.apply(Event(user, NOW_MS - days_ago * DAY_S * 1000, "subscription", f"s{n}", 0.0, "theta",
                          Subscription(status, plan, mrr)))  # type: ignore[arg-type]
    return state.get()


def test_a_paying_account_moved_to_a_free_plan_is_churned_not_a_prospect() -> None:
    """QA pass 9 M2 (theta: Basic 50.00, then an active "Free" plan at mrr 0): the ledger books a
    churn of 50.00 ("MRR falls to 0"); the roll-up called it a prospect ("never paid"), risk 0, no
    reason, so no ``account_churned`` and no place on the win-back list. Fails on the old code."""
    free = rollup([_steady(1)], _stated(("t1", 100, "active", "Basic", 5000), ("t1", 20, "active", "Free", 0)), None, 0, NOW_S)
    assert (free.stage, free.risk, free.temperature, free.action) == ("churned", 1.0, 0, "win back")
    assert free.reasons == ("moved to the free plan",)
    # a free plan that never paid stays a prospect; a trial after paying is judged as a trial
    never = rollup([_steady(1)], _stated(("t1", 20, "active", "Free", 0)), None, 0, NOW_S)
    assert (never.stage, never.risk, never.reasons) == ("prospect", 0.0, ())
    cancelled = rollup([_steady(1)], _stated(("t1", 100, "active", "Basic", 5000), ("t1", 20, "cancelled", "Basic", 0)), None, 0, NOW_S)
    assert (cancelled.stage, cancelled.reasons) == ("churned", ("subscription cancelled",))


def test_fewer_seats_on_the_same_plan_say_the_mrr_not_a_plan_change() -> None:
    """QA pass 9 L1 (eps: Team 200.00 -> Team 150.00): "downgraded from Team to Team today"; the
    plan did not change, the MRR did. Fails on the old code."""
    seats = rollup([_steady(1)], _view(), Downgrade(NOW_MS - 2 * DAY_S * 1000, ("Team",), ("Team",), 20_000, 15_000), 0, NOW_S)
    assert seats.reasons == ("MRR down from 200.00 to 150.00 (Team) 2 days ago",) and seats.risk == 0.35
    plan = rollup([_steady(1)], _view(), Downgrade(NOW_MS, ("Addon", "Pro"), ("Pro",), 12_000, 10_000), 0, NOW_S)
    assert plan.reasons == ("downgraded from Addon + Pro to Pro today",)


def test_a_reactivation_recovers_saying_the_customer_pays_again() -> None:
    """QA pass 9 L2 (delta: cancelled 29.00, back on Pro 99.00): the recovery said only "risk down
    to 0% from 100% when the alert opened", not that the customer came back. Fails on the old code
    (``recovered_reasons`` had no such reason)."""
    from models.account_health import recovered_reasons

    back = rollup([_steady(1)], _stated(("d1", 60, "active", "Basic", 2900), ("d1", 40, "cancelled", "Basic", 0),
                                       ("d1", 0, "active", "Pro", 9900)), None, 0, NOW_S)
    assert (back.stage, back.risk, back.mrr_cents) == ("customer", 0.0, 9900)
    assert recovered_reasons(back, 1.0, -1.0, -1.0, 0.0, ("Pro",)) == (
        "paying again: Pro 99.00 today", "the only user active in the last 2 weeks", "risk down to 0% from 100% when the alert opened")
    assert recovered_reasons(back, 1.0, -1.0, -1.0, 3.0, ("Pro",))[1] == "paying again: Pro 99.00 3 days ago"


def _champion_account(champion_silent_days: float) -> tuple[list[Member], AccountView]:
    """QA11 F3's acc0156: 11 seats; the champion u00, the heaviest user and the one the
    subscription's statements are keyed by, silent; one light user silent 4 weeks; the rest steady."""
    champ = Member(member_key("u00"), int(NOW_S - champion_silent_days * DAY_S), 1, 0.0, 60.0, 60.0, "u00")
    light = Member(member_key("u06"), NOW_S - 28 * DAY_S, 1, 0.0, 4.0, 4.0, "u06")
    rest = [Member(member_key(f"u{i:02}"), NOW_S, 1, 0.0, 10.0, 10.0, f"u{i:02}") for i in (1, 2, 3, 4, 5, 7, 8, 9, 10)]
    view = AccountView(9_900, True, "active", ("Pro",), 0, 0, 0, 1, 0, (), (member_key("u00"),))
    return [champ, light, *rest], view


def test_a_champion_who_leaves_is_weighed_by_his_activity_and_named() -> None:
    """QA11 F3: eight months after the champion left, the account read risk 0.08 ("1 of 10 users
    silent", another, light user): seats weighed alike, and the champion out of the users after 90
    days although his statements still came. Now his share of the activity counts, he stays one of
    the users while his subscription is in force, and the first reason names him."""
    for days in (21, 245):
        members, view = _champion_account(days)
        r = rollup(members, view, None, 0, NOW_S)
        share = 60.0 / (60.0 + 4.0 + 90.0)
        assert (r.users, r.silent) == (11, 2)
        assert abs(r.risk - round(0.8 * (64.0 / 154.0), 4)) < 1e-9 and r.risk > 0.8 * 2 / 11
        weeks = days // 7
        assert r.reasons[0] == (f"u00, its most active user and the one its billing statements come from, silent for {weeks} weeks "
                                f"({round(100 * share)}% of its activity)"), r.reasons
        assert r.reasons[1] == f"2 of 11 users silent for {min(weeks, 4)} weeks (42% of its activity)" and r.action == "re-engage the silent users"
    members, view = _champion_account(245)
    unpaid = rollup(members, None, None, 0, NOW_S)  # no statement keyed by him: out of the users after 90 days
    assert (unpaid.users, unpaid.silent) == (10, 1)


def test_the_most_active_user_is_named_even_when_someone_else_pays() -> None:
    members, view = _champion_account(21)
    r = rollup(members, AccountView(9_900, True, "active", ("Pro",), 0, 0, 0, 1), None, 0, NOW_S)
    assert r.reasons[0].startswith("its most active user u00 silent for 3 weeks (")


def test_the_named_user_leads_only_while_most_of_the_silence_is_his() -> None:
    """QA20a F3: acc23 (27 users) led its book row with "its most active user acc23-u12 silent for 3
    weeks (6% of its activity)" over "24 of 27 users silent for 2 weeks (92% of its activity)": the
    row shows the first reason, and it hid the fall. The count leads when the others carry most of the
    silence; the champion who is most of it (QA11 F3, above) still leads."""
    champ = Member(member_key("u00"), NOW_S - 21 * DAY_S, 1, 0.0, 12.0, 12.0, "u00")
    others = [Member(member_key(f"u{i:02}"), NOW_S - 15 * DAY_S, 1, 0.0, 10.0, 10.0, f"u{i:02}") for i in range(1, 8)]
    here = [Member(member_key(f"u{i:02}"), NOW_S, 1, 0.0, 5.0, 5.0, f"u{i:02}") for i in range(8, 10)]
    r = rollup([champ, *others, *here], _view(), None, 0, NOW_S)
    assert r.reasons[:2] == ("8 of 10 users silent for 2 weeks (89% of its activity)",
                             "its most active user u00 silent for 3 weeks (13% of its activity)"), r.reasons
    members, view = _champion_account(21)
    assert rollup(members, view, None, 0, NOW_S).reasons[0].startswith("u00, its most active user")  # 60 of the 64 silent


def test_seats_alike_are_counted_as_before() -> None:
    """Equal activity: the activity share is the seat share; no user is named (none is the most active)."""
    r = rollup([_steady(1), _steady(2), _steady(3, 15)], _view(), None, 0, NOW_S)
    assert r.reasons == ("1 of 3 users silent for 2 weeks",) and abs(r.risk - round(0.8 / 3, 4)) < 1e-9


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.floats(0.0, 50.0)), min_size=1, max_size=8), st.integers(0, 7),
       st.integers(14, 89), st.floats(0.0, 50.0), st.booleans())
@example([(20, 5e-324)], 0, 63, 0.0, False)  # a base decayed below a float's range read as "no base", usage 1.0
def test_more_activity_weighted_silence_never_lowers_the_risk(seats: list[tuple[int, float]], pick: int, silent_days: int,
                                                              more: float, pays: bool) -> None:
    """A user turning silent (within the 90 days), or a silent user found heavier, never lowers the
    account's risk nor raises its health (QA11 F3: monotone in the activity-weighted silence)."""
    members = [Member(i + 1, NOW_S - d * DAY_S, 1, 0.0, w, w) for i, (d, w) in enumerate(seats)]
    view = _view()
    if pays:
        view = AccountView(9_900, True, "active", ("Pro",), 0, 0, 0, 1, 0, (), (1,))
    before = rollup(members, view, None, 0, NOW_S)
    i = pick % len(members)
    m = members[i]
    quieter = members[:i] + [Member(m.key, min(m.last_seen_s, NOW_S - silent_days * DAY_S), 1, 0.0, m.act_28d, m.base_28d)] + members[i + 1:]
    if NOW_S - m.last_seen_s < 90 * DAY_S:  # leaving the 90 days is a member's leaving the users, not more silence
        after = rollup(quieter, view, None, 0, NOW_S)
        assert after.risk >= before.risk and after.health <= before.health + 1  # health rounds usage too
    if NOW_S - m.last_seen_s >= 14 * DAY_S:  # a silent user found heavier
        heavier = members[:i] + [Member(m.key, m.last_seen_s, 1, 0.0, m.act_28d + more, m.base_28d + more)] + members[i + 1:]
        assert rollup(heavier, view, None, 0, NOW_S).risk >= before.risk


def test_a_downgrade_counts_its_size() -> None:
    """QA11 F4: Business 375.00 to Team 84.00 (-78% MRR) scored 0.38, as a 20% seat removal does;
    it cancelled 7 weeks later. A downgrade's part is now the larger of 0.35 and the MRR share cut."""
    big = Downgrade(NOW_MS - 5 * DAY_S * 1000, ("Business",), ("Team",), 37_500, 8_400)
    small = Downgrade(NOW_MS - 5 * DAY_S * 1000, ("Team",), ("Team",), 6_000, 4_800)
    members = [_steady(1), _steady(2)]
    r_big, r_small = (rollup(members, _view(8_400), d, 0, NOW_S) for d in (big, small))
    assert r_big.risk == 0.776 and r_big.stage == "at_risk"
    assert r_big.reasons == ("downgraded from Business to Team 5 days ago (MRR cut by 78%)",)
    assert r_small.risk == 0.35 and r_small.reasons == ("MRR down from 60.00 to 48.00 (Team) 5 days ago",)
    sizes = [rollup(members, _view(8_400), Downgrade(NOW_MS, ("B",), ("T",), 10_000, after), 0, NOW_S).risk for after in range(10_000, -1, -500)]
    assert sizes == sorted(sizes) and sizes[-1] == 1.0  # the larger the cut, never the lower the risk


def _paid_through(renews_in_days: int, period_days: int, stated_days_before: int = 0) -> AccountView:
    """The view of an account whose one statement, ``period_days`` before its end (or
    ``stated_days_before`` it, when given), said it is paid through ``renews_in_days`` from NOW."""
    from models.events import Event
    from models.revenue import AccountState
    from models.subscription import Subscription

    end_ms = NOW_MS + renews_in_days * DAY_S * 1000
    at_ms = end_ms - (stated_days_before or period_days) * DAY_S * 1000
    sub = Subscription("active", "Business", 100_000, 0, end_ms)
    return AccountState().update(Event("admin", at_ms, "subscription", "s0", 0.0, "annual", sub)).get()


def test_an_annual_renewal_is_near_a_quarter_of_its_year_before_it() -> None:
    """QA11 F5: acc0228, annual, usage falling for five weeks, read risk 0 and "no reason stands
    out" 54 days before it did not renew: the renewal rule held only within 30 days of any plan's
    renewal. The window is a quarter of the billing period the statement states, at least 30 days."""
    falling = [Member(1, NOW_S, 1, 0.0, 15.0, 20.0)]  # usage 0.75: fell 25%
    annual = rollup(falling, _paid_through(54, 365), None, NOW_MS + 54 * DAY_S * 1000, NOW_S)
    assert annual.reasons == ("renewal in 54 days while usage fell 25% (last 4 weeks against its 3-month rate)",) and annual.risk == 0.4
    assert annual.action == "book a renewal call"
    for days, near in ((91, True), (92, False)):  # 365 / 4 = 91.25 days
        said = rollup(falling, _paid_through(days, 365), None, NOW_MS + days * DAY_S * 1000, NOW_S).reasons
        assert bool(said) is near, (days, said)
    monthly = _paid_through(30, 31)
    assert rollup(falling, monthly, None, NOW_MS + 30 * DAY_S * 1000, NOW_S).reasons == ("renewal in 30 days while usage fell 25% (last 4 weeks against its 3-month rate)",)
    assert rollup(falling, _paid_through(31, 31), None, NOW_MS + 31 * DAY_S * 1000, NOW_S).reasons == (), "a monthly plan: 30 days, as before"
    assert rollup(falling, _paid_through(40, 92), None, NOW_MS + 40 * DAY_S * 1000, NOW_S).reasons == (), "quarterly: 30 days"
    assert rollup([_steady(1)], _paid_through(54, 365), None, NOW_MS + 54 * DAY_S * 1000, NOW_S).reasons == (), "steady: no reason"


def test_the_renewal_window_is_the_statements_period_whatever_date_is_shown() -> None:
    """The accounts table's contract date (the book) is spoken of within the window of the
    billing period the statements state; without a stated period end, 30 days."""
    falling = [Member(1, NOW_S, 1, 0.0, 10.0, 20.0)]
    table_ms = NOW_MS + 60 * DAY_S * 1000
    assert rollup(falling, _paid_through(61, 365), None, table_ms, NOW_S).reasons == ("renewal in 60 days while usage fell 50% (last 4 weeks against its 3-month rate)",)
    assert rollup(falling, _view(), None, table_ms, NOW_S).reasons == (), "no period stated: 30 days"
    assert rollup(falling, None, None, table_ms, NOW_S).reasons == ()


def test_a_statement_later_in_the_period_states_only_what_is_left_of_it() -> None:
    """The period is read from the earliest statement of it to its end: a first statement 100 days
    before an annual end states 100 days, so its window is 30 days, never less than before
    (docs/REVENUE.md, the roll-up; a statement re-sent within a period keeps it:
    tests/test_models_revenue.py)."""
    view = _paid_through(54, 365, stated_days_before=100)
    assert view.renewal_window_ms(view.renews_ms) == 30 * DAY_S * 1000
    assert _paid_through(54, 365).renewal_window_ms(NOW_MS + 54 * DAY_S * 1000) == 365 * DAY_S * 1000 // 4


def test_a_users_own_trial_account_without_member_is_not_said_unused() -> None:
    """QA14 F1: a user without ``account_id`` is its own account and sends no member copy, so its
    roll-up had no users and the trial rule read "nobody has used it yet" of every B2C trial. For
    its own account (``own_account``: the account's id keys its subscription) without a member the
    use is unknown: the rule does not hold; a company account without members keeps it, and an own
    account with members (``account_id`` = user id) is judged on them."""
    ends = NOW_MS + 30 * 3_600_000
    view = AccountView(0, False, "trial", ("Pro",), 0, ends, 0, 0, 0, (), (member_key("f1"),))
    assert own_account("f1", view) and not own_account("acme", view)
    own = rollup([], view, None, 0, NOW_S, NOW_MS, own=True)
    assert (own.trial, own.risk, own.reasons, own.usage_known, own.stage) == (False, 0.0, (), False, "trial")
    company = rollup([], view, None, 0, NOW_S, NOW_MS)
    assert (company.trial, company.risk, company.reasons) == (True, 0.5, ("trial ends in 30 h and nobody has used it yet",))
    low = [Member(member_key("f1"), NOW_S, 1, 0.0, 2.0, 20.0)]
    used = rollup(low, view, None, 0, NOW_S, NOW_MS, own=True)  # members: judged on them, as any account
    assert (used.trial, used.usage_known, used.reasons) == (True, True, ("trial ends in 30 h with usage at 10% of the usual",))


def test_a_users_own_plan_cancelled_is_the_plan_lost_not_the_customer() -> None:
    """QA19 F7: a user's own account (B2C: a plan on top of the use) whose plan is cancelled said
    "win back", users 0, of customers who still banked there. Its churn says what it knows: without
    a member "win back the plan" (use unknown); as an account that is its one user, "keep the
    customer, win back the plan" while the user is not gone, "win back" once its lifecycle says it
    left; a company's churn stays "win back". The cancelled subscription still held tells the
    account it is the user's own (``own_account``'s ``stated``)."""
    gone = AccountView(0, False, "cancelled", ("premium",), 0, 0, 0, 1)
    assert not own_account("c7", gone) and own_account("c7", gone, [member_key("c7")])
    blind = rollup([], gone, None, 0, NOW_S, NOW_MS, own=True, account="c7")
    assert (blind.stage, blind.risk, blind.action, blind.usage_known, blind.users, blind.reasons) == (
        "churned", 1.0, "win back the plan", False, 0, ("subscription cancelled",))
    here, left = (Member(member_key("c7"), NOW_S - 3600, stage, 0.0, 20.0, 20.0, "c7") for stage in (1, 4))  # active, churned
    assert rollup([here], gone, None, 0, NOW_S, NOW_MS, own=True, account="c7").action == "keep the customer, win back the plan"
    assert rollup([left], gone, None, 0, NOW_S, NOW_MS, own=True, account="c7").action == "win back"
    assert rollup([_steady(1)], gone, None, 0, NOW_S, NOW_MS, account="acme").action == "win back"


# The usage-trend rule (QA15 F4): the account's last 2 weeks against its 3-month rate.

def _followed(fast: float, members: list[Member], days: int = 40) -> Trend:
    """A trend followed for ``days`` whose 2-week figure is ``fast`` now."""
    return Trend(NOW_S - days * DAY_S, NOW_S, fast)


def test_a_fading_account_is_at_risk_outside_the_renewal_window_with_a_plain_reason() -> None:
    members = [_steady(k) for k in range(1, 6)]  # 5 users, 20 events a 4-week usual each: a fortnight's 50
    steady = rollup(members, _view(), None, 0, NOW_S, trend=_followed(50.0, members))
    assert (steady.risk, steady.reasons) == (0.0, ())
    fading = rollup(members, _view(), None, 0, NOW_S, trend=_followed(20.0, members))  # 40% of the usual fortnight
    assert fading.risk == 0.5 and fading.stage == "at_risk" and fading.action == "ask why their use is falling"
    assert fading.reasons == ("usage over the last 2 weeks down 60% against its 3-month rate (2-week decayed)",)
    part = rollup(members, _view(), None, 0, NOW_S, trend=_followed(35.0, members))  # down 30%: a part, below the line
    assert part.risk == 0.25 and part.reasons == ("usage over the last 2 weeks down 30% against its 3-month rate (2-week decayed)",)


def test_the_two_usage_falls_of_one_account_say_their_windows() -> None:
    # QA20a F2: acc23's book said "usage over the last 2 weeks down 72% against its 3-month rate" and
    # "renewal in 1 day while usage fell 43%" (4 weeks against 13): two figures of one fall, the second
    # without its window, read as a contradiction by the account manager
    members = [Member(k, NOW_S, 1, 0.0, 10.0, 20.0) for k in range(1, 6)]  # 4 weeks at half the 13-week rate
    r = rollup(members, _view(), None, NOW_MS + DAY_S * 1000, NOW_S, trend=_followed(15.0, members))
    falls = sorted(t for t in r.reasons if "usage" in t)
    assert falls == ["renewal in 1 day while usage fell 50% (last 4 weeks against its 3-month rate)",
                     "usage over the last 2 weeks down 70% against its 3-month rate (2-week decayed)"], r.reasons


# The sustained fall (QA23b F4): the last 4 weeks judged on the 2-week line, by the activity missing.

def _fading(act: float, n: int = 5) -> list[Member]:
    """``n`` users seen now whose 4-week activity is ``act`` against a usual 20."""
    return [Member(k, NOW_S, 1, 0.0, act, 20.0, f"u{k}") for k in range(1, n + 1)]


def test_a_fall_spread_over_weeks_puts_the_account_at_risk_while_its_users_still_come() -> None:
    # QA23b acc295: API volume down while 22 of 24 people still logged in; the 2-week figure read
    # "down 40%" only at the cancellation. 20% of 4 weeks missing is as much as 40% of 2 weeks.
    members = _fading(16.0)  # 4 weeks at 80% of the 13-week rate, the last 2 at 70% (35 of a usual 50)
    r = rollup(members, _view(), None, 0, NOW_S, trend=_followed(35.0, members))
    assert (r.risk, r.stage, r.action) == (0.5, "at_risk", "ask why their use is falling")
    assert r.reasons == ("usage over the last 4 weeks down 20% against its 3-month rate, all 5 users still active",)
    shallow = rollup(_fading(18.0), _view(), None, 0, NOW_S, trend=_followed(35.0, members))  # 4 weeks at 90%: the 2-week part
    assert shallow.risk == 0.25 and shallow.reasons == ("usage over the last 2 weeks down 30% against its 3-month rate (2-week decayed)",)
    one_gone = [*members[:4], Member(5, NOW_S - 20 * DAY_S, 1, 0.0, 16.0, 20.0, "u5")]
    said = rollup(one_gone, _view(), None, 0, NOW_S, trend=_followed(35.0, one_gone)).reasons
    assert any(t.endswith(", 4 of 5 users still active") for t in said), said


def test_the_sustained_fall_waits_for_twice_the_trends_events_and_its_figure() -> None:
    from models.account_health import sustained_line

    small = _fading(12.0, n=3)  # a usual fortnight of 30: 4 weeks at 60% is within chance there
    assert rollup(small, _view(), None, 0, NOW_S, trend=_followed(30.0, small)).risk == 0.0
    members = _fading(12.0)
    assert rollup(members, _view(), None, 0, NOW_S, trend=_followed(50.0, members, days=27)).risk == 0.0  # not followed 28 days
    assert rollup(members, _view(), None, 0, NOW_S).risk == 0.0  # no trend kept: no rule
    assert sustained_line(0.8) == TREND_AT_RISK and sustained_line(0.9) == TREND_FROM  # the 2-week line, by the activity missing


@given(st.floats(0.0, 20.0), st.floats(0.0, 20.0), st.floats(0.0, 60.0), st.integers(0, 3))
@settings(max_examples=300, deadline=None)
def test_less_activity_over_4_weeks_never_lowers_the_risk(act: float, more: float, fast: float, silent: int) -> None:
    """Monotone in the sustained fall: the same account whose users did less over their last 4 weeks
    (all else equal: the 2-week figure, the silence) never has a lower risk."""
    def account(a: float) -> list[Member]:
        return [Member(k, NOW_S - (20 * DAY_S if k <= silent else 0), 1, 0.0, a, 20.0) for k in range(1, 6)]
    lower, higher = act, min(20.0, act + more)
    r_low = rollup(account(lower), _view(), None, 0, NOW_S, trend=_followed(fast, account(lower)))
    r_high = rollup(account(higher), _view(), None, 0, NOW_S, trend=_followed(fast, account(higher)))
    assert r_low.risk >= r_high.risk


def test_the_trend_rule_waits_for_its_figure_and_for_enough_events() -> None:
    members = [_steady(k) for k in range(1, 6)]
    young = rollup(members, _view(), None, 0, NOW_S, trend=_followed(5.0, members, days=27))
    assert young.risk == 0.0 and young.reasons == ()  # followed 27 days: its 2-week figure is not its own yet
    small = [Member(1, NOW_S, 1, 0.0, 6.0, 6.0)]  # a usual fortnight of 3 events: a quiet one is chance
    assert rollup(small, _view(), None, 0, NOW_S, trend=_followed(0.5, small)).risk == 0.0
    assert rollup(members, _view(), None, 0, NOW_S).risk == 0.0  # no trend kept: no rule


def test_the_trend_reason_names_the_most_active_user_away_for_a_week() -> None:
    members = [_steady(k) for k in range(1, 5)] + [Member(9, NOW_S - 9 * DAY_S, 1, 0.0, 60.0, 60.0, "u09")]
    r = rollup(members, _view(), None, 0, NOW_S, trend=_followed(20.0, members))
    assert r.reasons[0].endswith("(2-week decayed); its most active user u09 (43% of its activity) last seen 9 days ago"), r.reasons


def test_a_trend_only_decays_between_copies_and_gains_a_copys_events() -> None:
    members = [_steady(k) for k in range(1, 6)]
    t0 = None
    for m in members:  # the account's first copies: the steady rate, a fortnight's half of the 4-week figure
        t0 = add_copy(t0, None, m, NOW_S)
    assert t0 is not None and (t0.since_s, t0.at_s, t0.fast) == (NOW_S, NOW_S, 50.0)
    assert abs(t0.at(NOW_S + 7 * DAY_S).fast - 50.0 * math.exp(-0.5)) < 1e-9
    back = t0
    for m in members:  # a week on, each user back with 3 events
        back = add_copy(back, m, replace(m, last_seen_s=NOW_S + 7 * DAY_S, act_28d=m.act_28d * math.exp(-0.25) + 3.0), NOW_S + 7 * DAY_S)
    assert abs(back.fast - (50.0 * math.exp(-0.5) + 15.0)) < 1e-9 and back.at_s == NOW_S + 7 * DAY_S  # 5 x 3 events


@given(st.lists(st.tuples(st.floats(0.0, 60.0), st.integers(0, 30)), min_size=1, max_size=8),
       st.floats(0.0, 80.0), st.floats(0.0, 80.0), st.integers(0, 40), st.sampled_from([0.0, 0.35, 0.5]))
@settings(max_examples=300, deadline=None)
@example([(20.0, 0), (20.0, 0), (20.0, 0)], 10.0, 40.0, 30, 0.0)
def test_a_deeper_fall_never_lowers_the_risk(users: list[tuple[float, int]], fast: float, more: float, days: int,
                                             down_cut: float) -> None:
    """Monotone in the decline: the same account with less activity in its last 2 weeks (a smaller
    2-week figure, all else equal) never has a lower risk, whatever else holds (silence, a downgrade)."""
    members = [Member(k + 1, NOW_S - silent * DAY_S, 1, 0.0, base * 0.8, base) for k, (base, silent) in enumerate(users)]
    down = Downgrade(NOW_MS - DAY_S * 1000, ("Business",), ("Team",), 10_000, round(10_000 * (1 - down_cut))) if down_cut else None
    lower, higher = sorted((fast, fast + more))
    r_low = rollup(members, _view(), down, 0, NOW_S, trend=_followed(lower, members, days))
    r_high = rollup(members, _view(), down, 0, NOW_S, trend=_followed(higher, members, days))
    assert r_low.risk >= r_high.risk
    assert trend_risk(lower / 20.0) >= trend_risk(higher / 20.0)


# -- QA16 F11: an account whose every user is gone is the win-back side's, not one to save

_CHURNED, _ACTIVE = 4, 1  # models.state.STAGES: a member copy's stage byte


def _member(key: int, days_ago: float, stage: int = _ACTIVE, act: float = 20.0) -> Member:
    return Member(key, int(NOW_S - days_ago * DAY_S), stage, 0.0, act, act)


def test_the_lapse_line_is_the_lifecycles_dormancy_floor() -> None:
    from models.account_health import LAPSED_S
    from models.model import ChurnModel
    from models.state import STAGES

    assert LAPSED_S == ChurnModel().dormant_days * DAY_S
    assert (STAGES[_CHURNED], STAGES[_ACTIVE]) == ("churned", "active")


def test_a_family_whose_members_all_cancelled_is_lapsed_with_how_they_left() -> None:
    """QA16 F11: family plans alerted ``account_at_risk`` after every member had cancelled. The
    members' last copies say churned (a cancel: churned at once): the account is lapsed at once,
    before any of them is silent, its reason how they left, its action win back."""
    family = [_member(1, 5, _CHURNED), _member(2, 3, _CHURNED), _member(3, 2, _CHURNED, 60.0)]
    r = rollup(family, _view(1699), None, 0, NOW_S)
    assert (r.stage, r.silent, r.action) == ("lapsed", 0, "win back")
    assert r.reasons[0] == "all 3 users cancelled, the last seen 2 days ago", r.reasons
    assert r.risk >= 0.8 and r.health < 50, "every user gone weighs as every user silent"
    alone = rollup([_member(1, 5, _CHURNED)], _view(1699), None, 0, NOW_S)
    assert alone.reasons[0] == "the only user cancelled, last seen 5 days ago"


def test_members_silent_beyond_the_lapse_line_lapse_the_account_and_one_still_there_keeps_it_to_save() -> None:
    gone = [_member(1, 40), _member(2, 25, _CHURNED), _member(3, 21)]
    r = rollup(gone, _view(1699), None, 0, NOW_S)
    assert r.stage == "lapsed"
    assert r.reasons[0] == "all 3 users gone: 1 cancelled, 2 silent for 3 weeks", r.reasons
    # the last one seen 20 days ago is silent, not gone yet (the lifecycle calls nobody dormant before 21 days)
    save = rollup([_member(1, 40), _member(2, 25, _CHURNED), _member(3, 20)], _view(1699), None, 0, NOW_S)
    assert (save.stage, save.action) == ("at_risk", "re-engage the silent users")
    assert save.reasons[0].startswith("all 3 users silent for 2 weeks"), save.reasons
    # even one member still using the product keeps the account on the save side, with its save reasons
    one_left = rollup([_member(1, 30, _CHURNED), _member(2, 30, _CHURNED), _member(3, 30, _CHURNED), _member(4, 0, act=5.0)],
                      _view(1699), None, 0, NOW_S)
    assert (one_left.stage, one_left.action) == ("at_risk", "re-engage the silent users")
    assert one_left.reasons == ("3 of 4 users silent for 4 weeks (92% of its activity)",), one_left.reasons
    back = rollup([_member(1, 30, _CHURNED), _member(2, 1, 5)], _view(1699), None, 0, NOW_S)  # 5: reactivated, back
    assert back.stage != "lapsed"


def test_a_cancelled_subscription_stays_churned_and_says_how_the_users_left_after_it() -> None:
    family = [_member(1, 10, _CHURNED), _member(2, 9, _CHURNED)]
    r = rollup(family, _view(0, "cancelled"), None, 0, NOW_S)
    assert (r.stage, r.risk, r.action) == ("churned", 1.0, "win back")
    assert r.reasons[:2] == ("subscription cancelled", "both users cancelled, the last seen 9 days ago"), r.reasons
    assert rollup([], _view(1699), None, 0, NOW_S).stage == "customer", "no member ever seen: nobody gone"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 120), st.sampled_from((0, 1, 2, 3, 4, 5))), min_size=1, max_size=6))
def test_lapsed_exactly_when_no_user_is_reachable_and_then_never_less_at_risk(seen: list[tuple[int, int]]) -> None:
    """Lapsed iff every user's copy says lapsed or it is silent 21 days or more; a lapsed account's
    risk is never below what every user silent gives (0.8)."""
    from models.account_health import gone_member

    members = [_member(k + 1, days, stage) for k, (days, stage) in enumerate(seen)]
    r = rollup(members, _view(1699), None, 0, NOW_S)
    users = [m for m in members if NOW_S - m.last_seen_s < 90 * DAY_S] or members
    assert (r.stage == "lapsed") == all(gone_member(m, NOW_S) for m in users)
    assert (r.stage == "lapsed") == all(stage in (3, 4) or days >= 21 for days, stage in seen if days < 90 or all(d >= 90 for d, _ in seen))
    if r.stage == "lapsed":
        assert r.risk >= 0.8 and r.action == "win back"


def test_a_trial_whose_users_are_gone_is_judged_by_the_trial_rule() -> None:
    """A trial started after its users left (a new trial nobody used yet) is no lapsed account: its
    start says someone is there; the trial rule speaks (tests/test_account_book.py)."""
    r = rollup([_member(1, 40)], _view(0, "trial", trial_ends_ms=NOW_MS + 2 * 86_400_000, first_paid_ms=0), None, 0, NOW_S)
    assert (r.stage, r.trial) == ("at_risk", True), r


def test_the_trend_reason_names_a_heavy_daily_user_gone_past_his_rhythm_with_his_share() -> None:
    """QA22b F6: a 7-member guild's leader, a daily player with 39% of its activity, had been gone 6
    days when the usage trend opened its alert; the reason did not name him (a week's wait for
    everyone). Now past 3 of his own usual intervals (at least 3 days, at most the week), with his
    share; a "most active" user of a large account with a small share is not named. Fails on the old code."""
    daily = Member(9, NOW_S - 5 * DAY_S, 1, 0.0, 60.0, 60.0, "p01172", 1.0)
    members = [_steady(k) for k in range(1, 6)] + [daily]
    r = rollup(members, _view(), None, 0, NOW_S, trend=_followed(20.0, members))
    assert r.reasons[0].endswith("(2-week decayed); its most active user p01172 (38% of its activity) last seen 5 days ago"), r.reasons
    crowd = [_steady(k) for k in range(1, 21)] + [Member(99, NOW_S - 9 * DAY_S, 1, 0.0, 30.0, 30.0, "p7")]  # 7% of it
    assert not any("most active" in t for t in rollup(crowd, _view(), None, 0, NOW_S, trend=_followed(60.0, crowd)).reasons)
