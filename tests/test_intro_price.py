"""An introductory price's end (QA24a F2, 2026-12-05): "1.00 the first month, then 9.99" on the
same plan read "price rose from 1.00 to 9.99" for all 400 of a publisher's intro subscribers, and
its step up was expansion that held NRR at 102-108% while 398 of 1,100 intro subscribers left.

The rule (``models.revenue.intro_ended``): the price a subscription started paying at, held for its
first period only (never renewed at it), of at most a quarter, followed at that period's renewal by
a higher price on the same plan. It is still expansion (ChartMogul's "an expiring discount"), told
apart in the figures; its alert is the price rise's (same risk, same action) in its own words. A
real rise for an existing subscriber (a second-year rise, a rise after a renewal at the old price,
an annual plan's first renewal) stays "price rose"."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import Event
from models.revenue import INTRO_PERIOD_MAX_MS, AccountState, intro_ended
from models.revenue_ledger import Ledger
from models.subscription import Subscription
from streams.cli import main
from streams.offline.simulate import write_events_csv

T0 = 1_767_225_600_000  # 2026-01-01
DAY = 86_400_000


def _history(user: str, steps: list[tuple[int, str, str, int, int]], account: str = "") -> list[Event]:
    """Statements (day, status, plan, mrr cents, period end day or 0) of one user's subscription."""
    return [Event(user, T0 + d * DAY, "subscription", f"{user}-{i}", 0.0, account,
                  Subscription(status, plan, mrr, 0, T0 + end * DAY if end else 0))  # type: ignore[arg-type]
            for i, (d, status, plan, mrr, end) in enumerate(steps)]


def _moves(events: list[Event]) -> list[tuple[str, int, bool]]:
    st_ = AccountState()
    out = []
    for ev in events:
        change = st_.apply(ev)
        if change.add is not None:
            out.append((change.add.kind, change.add.delta_cents, change.add.intro_ended))
    return out


def _monthly(first: int, then: int, renewals_at_first: int, plan: str = "digital") -> list[tuple[int, str, str, int, int]]:
    """A monthly subscription at ``first`` renewed ``renewals_at_first`` times at it, then at ``then``."""
    steps = [(30 * k, "active", plan, first, 30 * (k + 1)) for k in range(renewals_at_first + 1)]
    k = renewals_at_first + 1
    return [*steps, (30 * k, "active", plan, then, 30 * (k + 1))]


def test_the_first_full_price_renewal_after_an_intro_month_is_an_intro_end() -> None:
    assert _moves(_history("r1", _monthly(100, 999, 0))) == [("new", 100, False), ("expansion", 899, True)]
    # after a trial, too: the first paid period is the intro
    trial = [(-14, "trial", "digital", 0, 0), *_monthly(100, 999, 0)]
    assert _moves(_history("r2", trial))[-1] == ("expansion", 899, True)


def test_a_real_price_rise_for_an_existing_subscriber_is_never_an_intro_end() -> None:
    # a second-year rise of a monthly plan: 12 renewals at 4.99, then 7.99
    assert _moves(_history("s1", _monthly(499, 799, 12)))[-1] == ("expansion", 300, False)
    # one renewal at the old price is enough: the price was the plan's, not the first period's
    assert _moves(_history("s2", _monthly(499, 799, 1)))[-1] == ("expansion", 300, False)
    # an annual plan's first renewal is a second-year rise (a first period longer than a quarter)
    annual = [(0, "active", "yearly", 4_000, 365), (365, "active", "yearly", 5_000, 730)]
    assert _moves(_history("s3", annual))[-1] == ("expansion", 1_000, False)
    # a quarter is the longest intro period; a day more is not one
    assert INTRO_PERIOD_MAX_MS == 92 * DAY
    quarter = [(0, "active", "q", 100, 92), (92, "active", "q", 999, 184)]
    longer = [(0, "active", "q", 100, 93), (93, "active", "q", 999, 186)]
    assert (_moves(_history("s4", quarter))[-1][2], _moves(_history("s5", longer))[-1][2]) == (True, False)


def test_an_upgrade_a_rise_away_from_the_renewal_or_a_companys_mrr_is_no_intro_end() -> None:
    upgrade = [(0, "active", "basic", 100, 30), (30, "active", "premium", 999, 60)]
    mid_period = [(0, "active", "digital", 100, 30), (12, "active", "digital", 999, 30)]
    company = _monthly(100, 999, 0)
    assert _moves(_history("u1", upgrade))[-1] == ("expansion", 899, False)
    assert _moves(_history("u2", mid_period))[-1] == ("expansion", 899, False)
    assert _moves(_history("u3", company, account="acme"))[-1] == ("expansion", 899, False), "more seats as often as a price"
    # a price the subscription did not start at: it moved to 1.00 mid-way, then 9.99 at the renewal
    moved = [(-20, "active", "digital", 500, 0), (0, "active", "digital", 100, 30), (30, "active", "digital", 999, 60)]
    assert _moves(_history("u4", moved))[-1] == ("expansion", 899, False)


def test_the_rule_itself_with_seats() -> None:
    """A company's subscription stating its seats: a higher price per seat is one, more seats at the
    same price is growth (the price rise's per-seat rule, QA20a F6)."""
    before = Subscription("active", "Team", 26_000, 0, 30 * DAY, 26)
    assert intro_ended(before, 0, 0, Subscription("active", "Team", 52_000, 0, 60 * DAY, 26), 30 * DAY, 0, False)
    assert not intro_ended(before, 0, 0, Subscription("active", "Team", 52_000, 0, 60 * DAY, 52), 30 * DAY, 0, False)


def test_the_ledger_keeps_it_in_expansion_and_tells_it_apart_to_the_cent() -> None:
    """ChartMogul books "an expiring discount" as expansion: so do we, with its part apart, and NRR
    at full price beside NRR (what is kept of the base at the prices it pays from then on)."""
    evs = [*_history("i1", _monthly(100, 999, 0)), *_history("i2", [(0, "active", "digital", 100, 30), (20, "cancelled", "digital", 0, 0)]),
           *_history("p1", _monthly(499, 799, 0, "other")[:1] + [(30, "active", "other", 499, 60)])]
    st_: dict[str, AccountState] = {}
    ledger = Ledger("month")
    for ev in sorted(evs, key=lambda e: e.ts_ms):
        ledger.apply(st_.setdefault(ev.account, AccountState()).apply(ev))
    feb = ledger.get(T0 + 31 * DAY, T0 + 59 * DAY)[0]  # the step up on day 30 (2026-01-31) is January's
    jan = ledger.get(T0, T0 + 31 * DAY)[0]
    assert (jan.expansion_cents, jan.intro_cents, jan.intro_customers, jan.churned_cents) == (899, 899, 1, 100)
    assert jan.end_mrr_cents == jan.start_mrr_cents + jan.new_cents + jan.expansion_cents - jan.contraction_cents - jan.churned_cents
    assert jan.end_mrr_cents == 999 + 499 == feb.start_mrr_cents
    # none were customers at January's start: NRR is undefined, at full price too
    assert jan.nrr is None and jan.nrr_full_price is None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["active", "past_due", "cancelled", "trial"]),
                          st.sampled_from(["a", "b"]), st.sampled_from([0, 100, 499, 999]), st.integers(0, 3)),
                min_size=1, max_size=12))
def test_an_intro_end_is_only_ever_an_expansion_and_round_trips(steps: list[tuple[int, str, str, int, int]]) -> None:
    """Whatever the statements: the flag only on expansions, the state record keeps it (the worker
    re-reads the state between statements of one instant), and the figures still add up."""
    day, evs = 0, []
    for gap, status, plan, mrr, months in steps:
        day += 30 * gap
        mrr = mrr if status in ("active", "past_due") else 0
        evs.append(Event("z", T0 + day * DAY, "subscription", f"z{len(evs)}", 0.0, "",
                         Subscription(status, plan, mrr, 0, T0 + (day + 30 * months) * DAY if months and mrr else 0)))  # type: ignore[arg-type]
    one, two, ledger = AccountState(), AccountState(), Ledger("month")
    for ev in evs:
        change = one.apply(ev)
        assert change == two.apply(ev)
        two = AccountState.from_bytes(two.to_bytes())
        assert two.to_bytes() == one.to_bytes()
        ledger.apply(change)
        for mv in (change.add, change.retract):
            assert mv is None or not mv.intro_ended or mv.kind == "expansion"
    for f in ledger.get(T0, T0 + 400 * DAY):
        assert 0 <= f.intro_cents <= f.expansion_cents
        gains = f.new_cents + f.expansion_cents + f.reactivation_cents + f.resumed_cents
        assert f.end_mrr_cents == f.start_mrr_cents + gains - f.contraction_cents - f.churned_cents - f.paused_cents


def _file(tmp_path: Path) -> Path:
    """Two intro subscribers who stay (January), one who leaves after the step, a subscriber since
    October whose price rises in March (a real rise), all on their own accounts."""
    evs = [*_history("i1", [(0, "active", "digital", 100, 31), (31, "active", "digital", 999, 59), (59, "active", "digital", 999, 90)]),
           *_history("i2", [(2, "active", "digital", 100, 33), (33, "active", "digital", 999, 61), (45, "cancelled", "digital", 0, 0)]),
           *_history("i3", [(0, "active", "digital", 100, 31), (31, "active", "digital", 999, 59), (59, "active", "digital", 999, 90)]),
           *_history("old", [(-90, "active", "digital", 499, -59), (-59, "active", "digital", 499, 59), (59, "active", "digital", 799, 90)])]
    path = tmp_path / "events.csv"
    write_events_csv(path, sorted(evs, key=lambda e: e.ts_ms), accounts=True)
    return path


def test_report_and_churn_rate_say_the_intro_part_of_the_expansion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path)
    assert main(["report", "--events", str(path), "--from", "2026-02-01", "--to", "2026-04-01", "--json"]) == 0
    feb, mar = orjson.loads(capsys.readouterr().out)["periods"]
    # February: the three intro ends (8.99 each), two of them customers at its start; March: the real rise only
    assert (feb["expansion"], feb["expansion_intro"], feb["intro_customers"]) == ("26.97", "26.97", 3), feb
    assert "expansion_intro" not in mar and mar["expansion"] == "3.00", mar
    # NRR counts the step up (as the vendors do): (7.99 + 26.97 - 9.99) / 7.99; NRR-f counts the three at
    # full price from the start: the same over 7.99 + 26.97 (i2 left after its step: 9.99 of 34.96 lost)
    assert (feb["start_mrr"], feb["nrr_pct"], feb["nrr_full_price_pct"]) == ("7.99", "312.5156", "71.4245"), feb
    assert main(["report", "--events", str(path), "--from", "2026-02-01", "--to", "2026-04-01"]) == 0
    out = capsys.readouterr().out
    head, row = out.splitlines()[:2]
    cells = dict(zip(re.split(r"\s{2,}", head.strip()), row.split()))
    assert (cells["expansion"], cells["intro"], cells["NRR %"], cells["NRR-f %"]) == ("26.97", "26.97", "312.5156", "71.4245"), (head, row)
    assert "intro = of the expansion, introductory prices ended" in out
    assert main(["report", "--events", str(path), "--from", "2026-03-01", "--to", "2026-04-01"]) == 0
    assert "intro" not in capsys.readouterr().out, "no intro ended in March: the table as before"


def _alerts(steps: list[tuple[int, str, str, int, int]], until_day: int) -> list[dict[str, object]]:
    """The account alerts of a user's own subscription (B2C) through the worker's account path."""
    from streams.worker.account_alerts import AccountWork
    from streams.worker.revenue import AccountCopy, AccountsAdvanced, AccountTick, _apply_in_order

    evs = _history("c7", steps)
    out = AccountsAdvanced()
    _apply_in_order("c7", AccountWork(AccountState(), {}, {}),
                    [*(AccountCopy(0, i, ev) for i, ev in enumerate(evs)), AccountTick(0, "c7", T0 + until_day * DAY)], out)
    return [orjson.loads(v) for _, v in out.alerts]


def test_the_alert_says_the_intro_ended_and_keeps_the_price_rises_risk() -> None:
    """The step up is a moment to watch (21% of QA24a's intro subscribers cancelled within 32 days):
    the alert opens as a price rise's does (risk 0.5, 30 days, same action), in its own words; the
    cancellation that follows says it too. A second-year rise keeps "price rose"."""
    intro = _monthly(100, 999, 0)
    cancelled = _alerts([*intro, (41, "cancelled", "digital", 0, 0)], 90)
    assert [(a["kind"], a["event_time_ms"]) for a in cancelled] == [("account_at_risk", T0 + 30 * DAY), ("account_churned", T0 + 41 * DAY)]
    said = "introductory price ended: 1.00 -> 9.99 at its first full-price renewal"
    assert (cancelled[0]["reasons"], cancelled[0]["risk"], cancelled[0]["action"]) == (
        [f"{said} today (digital)"], 0.5, "review how the plan fits their use")
    assert cancelled[1]["reasons"] == ["subscription cancelled", f"{said} 11 days ago (digital)"]
    assert [a["kind"] for a in _alerts(intro, 90)] == ["account_at_risk", "account_recovered"], "closes when the 30 days end"
    second_year = _alerts(_monthly(499, 799, 12), 400)
    assert second_year[0]["reasons"] == ["price rose from 4.99 to 7.99 at its renewal today (digital)"], second_year
