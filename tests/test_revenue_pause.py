"""A ``paused`` subscription (QA22a F1, 2026-12-05): accepted by the contract, and in the ledger a
pause is not churn: the customer stays one, its MRR leaves as ``paused`` and comes back as
``resumed`` (not reactivation), shown on lines of their own in ``report`` and ``churn-rate``."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from models.events import Event
from models.revenue import AccountState
from models.revenue_ledger import RevenueBook, figures_dict
from models.subscription import Subscription

JAN = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
FEB, MAR, APR, MAY = JAN + 31 * DAY, JAN + 59 * DAY, JAN + 90 * DAY, JAN + 120 * DAY


def sub(user: str, at_ms: int, status: str, mrr_cents: int, account: str = "acme", period_end: int = 0) -> Event:
    return Event(user, at_ms, "subscription", f"{user}@{at_ms}:{status}", 0.0, account,
                 Subscription.parse(status, "standard", mrr_cents / 100, period_end_ms=period_end))


def run(events: list[Event]) -> RevenueBook:
    book = RevenueBook("month")
    for ev in events:
        book.update(ev)
    return book


def test_paused_status_is_in_the_contract() -> None:
    s = Subscription.parse("paused", "standard", None, period_end_ms=MAR)
    assert (s.status, s.mrr_cents, s.period_end_ms) == ("paused", 0, MAR)
    assert Subscription.parse(" PAUSED ", "standard", "13.99").status == "paused"  # the plan's price may be stated


def test_pause_and_resume_are_movements_of_their_own() -> None:
    """Paid in January, paused in February until April, resumed in April: no churn, no lost or won
    customer, no reactivation; the MRR leaves as paused and comes back as resumed."""
    book = run([sub("u1", JAN + DAY, "active", 1399), sub("u2", JAN + DAY, "active", 799, account="other"),
                sub("u1", FEB + 5 * DAY, "paused", 0, period_end=APR + 5 * DAY), sub("u1", APR + 5 * DAY, "active", 1399)])
    assert [(m.kind, m.delta_cents, m.customers_delta) for m in book.movements] == [
        ("new", 1399, 1), ("new", 799, 1), ("pause", -1399, 0), ("resume", 1399, 0)]
    jan, feb, mar, apr = book.get(JAN, MAY)
    assert (feb.churned_cents, feb.churned_customers, feb.logo_churn, feb.paused_cents, feb.paused_customers) == (0, 0, 0, 1399, 1)
    assert (feb.customers_end, mar.customers_start, mar.start_mrr_cents) == (2, 2, 799)
    assert (apr.reactivation_cents, apr.reactivated_customers, apr.resumed_cents, apr.resumed_customers, apr.won) == (0, 0, 1399, 1, 0)
    assert apr.end_mrr_cents == 2198 and feb.gross_mrr_churn_rate == 0
    # NRR/GRR: an existing customer's pause is MRR not kept, its resume MRR regained (docs/REVENUE.md "Pauses")
    assert float(feb.grr) == float(feb.nrr) == pytest.approx(799 / 2198)
    assert float(apr.nrr) == pytest.approx(2198 / 799) and apr.grr == 1
    d = figures_dict(feb)
    assert (d["paused"], d["paused_cents"], d["paused_customers"], d["resumed"], d["lost"]) == ("13.99", 1399, 1, "0.00", 0)
    assert "paused" not in figures_dict(jan)  # a period without a pause keeps its fields as before


def test_a_paused_customer_who_cancels_is_lost_at_zero_mrr() -> None:
    book = run([sub("u1", JAN + DAY, "active", 1399), sub("u1", FEB, "paused", 0, period_end=APR),
                sub("u1", MAR, "cancelled", 0), sub("u1", MAY, "active", 1399)])
    assert [(m.kind, m.delta_cents, m.customers_delta) for m in book.movements] == [
        ("new", 1399, 1), ("pause", -1399, 0), ("churn", 0, -1), ("reactivation", 1399, 1)]
    mar = book.get(MAR, MAR + 1)[0]
    assert (mar.churned_cents, mar.churned_customers, mar.logo_churn, mar.customers_end) == (0, 1, 1, 0)


def test_pause_state_round_trips_and_is_no_churn_for_the_win_back() -> None:
    st = AccountState().update(sub("u1", JAN, "active", 1399)).update(sub("u1", FEB, "paused", 0, period_end=APR))
    again = AccountState.from_bytes(st.to_bytes())
    assert again.to_bytes() == st.to_bytes() and again.get() == st.get()
    view = st.get()
    assert (view.status, view.paused, view.resumes_ms, view.customer, view.mrr_cents) == ("paused", True, APR, False, 0)
    assert st.churned() == (0, 0) and again.update(sub("u2", MAR, "trial", 0)).churned() == (0, 0)


def test_order_within_a_timestamp_does_not_matter() -> None:
    """A pause and another subscription's cancellation at one time give the same movements in any order."""
    base = [sub("u1", JAN, "active", 1399), sub("u2", JAN, "active", 500)]
    same = [sub("u1", FEB, "paused", 0, period_end=APR), sub("u2", FEB, "cancelled", 0)]
    seen = set()
    for _ in range(6):
        random.shuffle(same)
        seen.add(tuple((m.kind, m.delta_cents) for m in run(base + same).movements))
    assert seen == {(("new", 1899), ("pause", -1899))}


def _csv(path: Path, rows: list[tuple[str, str, str, str, str, str]]) -> None:
    lines = ["user_id,ts,event_type,account_id,status,plan,mrr,period_end,event_id"]
    lines += [f"{u},{ts},subscription,{u},{status},standard,{mrr},{end},{u}{i}" for i, (u, ts, status, mrr, end, _) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")


def test_report_shows_pauses_in_columns_of_their_own(tmp_path: Path) -> None:
    events = tmp_path / "ev.csv"
    _csv(events, [("u1", "2026-01-02T00:00:00Z", "active", "13.99", "2026-02-02T00:00:00Z", ""),
                  ("u1", "2026-02-02T00:00:00Z", "paused", "", "2026-04-02T00:00:00Z", ""),
                  ("u1", "2026-04-02T00:00:00Z", "active", "13.99", "2026-05-02T00:00:00Z", "")])
    cmd = [sys.executable, "-m", "streams.cli", "report", "--events", str(events), "--from", "2026-01-01", "--to", "2026-05-01"]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    head, jan, feb, mar, apr = text.splitlines()[:5]
    assert head.split()[8:10] == ["paused", "resumed"]
    assert feb.split()[1:9] == ["13.99", "0.00", "0.00", "0.00", "0.00", "0.00", "13.99", "0.00"]  # not churned
    assert apr.split()[7:10] == ["0.00", "13.99", "13.99"]
    periods = orjson.loads(subprocess.run([*cmd, "--json"], capture_output=True, check=True).stdout)["periods"]
    assert [(p.get("paused"), p.get("resumed"), p["lost"], p["won"]) for p in periods] == [
        (None, None, 0, 1), ("13.99", "0.00", 0, 0), (None, None, 0, 0), ("0.00", "13.99", 0, 0)]
