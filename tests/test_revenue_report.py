"""``churnwatch report`` against the account simulator's own truth: monthly MRR movements, logo
churn and gross/net MRR churn reproduced exactly (to the cent, rates as exact fractions)."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from models.revenue_ledger import percent_text
from streams.cli import main
from streams.cli.revenue import build_report
from streams.offline.simulate import write_events_csv
from streams.offline.simulate_accounts import AccountSim, generate_accounts, monthly_truth, write_mrr_truth_csv

START_MS = 1_767_225_600_000  # 2026-01-01
DAYS = 182  # to 2026-07-02: six whole months and a sliver of July
ACCOUNTS = 300


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[AccountSim, Path, Path]:
    d = tmp_path_factory.mktemp("revenue")
    sim = generate_accounts(11, ACCOUNTS, START_MS, DAYS)
    write_events_csv(d / "events.csv.gz", sim.events, accounts=True)
    write_mrr_truth_csv(d / "mrr.csv", monthly_truth(sim.movements, START_MS, DAYS))
    return sim, d / "events.csv.gz", d / "mrr.csv"


def test_the_simulation_has_every_kind_of_change(history: tuple[AccountSim, Path, Path]) -> None:
    sim, _, _ = history
    kinds = Counter(m.kind for m in sim.movements)
    assert all(kinds[k] >= 5 for k in ("new", "expansion", "contraction", "churn", "reactivation")), kinds
    statuses = Counter(e.subscription.status for e in sim.events if e.subscription is not None)
    assert all(statuses[s] >= 5 for s in ("trial", "active", "past_due", "cancelled")), statuses
    subs = [(e.user_id, e.ts_ms, e.subscription) for e in sim.events if e.subscription is not None]
    assert len(subs) > len(set(subs)), "some subscription events are sent twice"
    per_account = Counter(e.account_id for e in sim.events if e.type != "subscription")
    assert sum(len({e.user_id for e in sim.events if e.account_id == a}) > 1 for a in list(per_account)[:60]) >= 20
    # the accounts nobody used are trials nobody used nor bought (streams.offline.simulate_accounts)
    unused = set(sim.accounts) - set(per_account)
    assert unused and len(per_account) >= 0.8 * ACCOUNTS
    assert all({e.subscription.status for e in sim.events if e.account_id == a and e.subscription} == {"trial", "cancelled"}
               for a in unused)
    churn_at_once = Counter((m.account_id, m.ts_ms) for m in sim.movements)
    assert max(churn_at_once.values()) == 1  # the generator's truth: one net movement per account and time


def test_a_trials_usage_during_the_trial_tells_whether_it_converts(history: tuple[AccountSim, Path, Path]) -> None:
    """A trial's users use the product during the trial, most of the trials that convert and fewer
    of those that do not, and an unconverted trial's users stop at its end. Before, their
    signups were spread over the window like a paying account's: about a third of the trials were
    used, converted or not, so every trial-ending alert (health below 50) said health 0 and fell
    on converting trials more than on the others; and an unconverted trial's users went on using
    the product after it was cancelled."""
    sim, _, _ = history
    trials = {e.account_id: (e.ts_ms, e.subscription.trial_ends_ms) for e in sim.events
              if e.subscription is not None and e.subscription.status == "trial"}
    converts = {e.account_id: e.subscription.status == "active" for e in sim.events if e.subscription is not None
                and e.account_id in trials and e.ts_ms == trials[e.account_id][1]}
    used = {e.account_id for e in sim.events if e.subscription is None and e.account_id in trials
            and trials[e.account_id][0] <= e.ts_ms < trials[e.account_id][1]}
    after_cancel = {e.account_id for e in sim.events if e.subscription is None and converts.get(e.account_id) is False
                    and e.ts_ms >= trials[e.account_id][1]}
    share = {c: sum(a in used for a in converts if converts[a] is c) / sum(v is c for v in converts.values()) for c in (True, False)}
    assert min(Counter(converts.values()).values()) >= 30, converts
    assert share[True] >= 0.8 and 0.25 <= share[False] <= 0.7 and share[True] - share[False] >= 0.25, share
    assert not after_cancel, sorted(after_cancel)


def test_report_reproduces_the_generators_monthly_truth_exactly(history: tuple[AccountSim, Path, Path]) -> None:
    sim, events, _ = history
    truth = monthly_truth(sim.movements, START_MS, DAYS)
    _, figures = build_report(events, START_MS, START_MS + DAYS * 86_400_000, "month")
    assert [f.start_ms for f in figures] == [t.month_ms for t in truth] and len(truth) == 7
    for t, f in zip(truth, figures):
        assert (f.start_mrr_cents, f.new_cents, f.expansion_cents, f.contraction_cents, f.churned_cents,
                f.reactivation_cents, f.end_mrr_cents) == (
            t.start_mrr_cents, t.new_cents, t.expansion_cents, t.contraction_cents, t.churned_cents,
            t.reactivation_cents, t.end_mrr_cents), t.month_ms
        assert (f.customers_start, f.churned_customers, f.logo_churn) == (t.customers_start, t.churned_customers, t.logo_churn)
        assert (f.logo_churn_rate, f.gross_mrr_churn_rate, f.net_mrr_churn_rate) == (
            t.logo_churn_rate, t.gross_mrr_churn_rate, t.net_mrr_churn_rate)
    assert sum(t.contraction_cents for t in truth) > 0 and sum(t.churned_cents for t in truth) > 0


def test_report_command_json_matches_the_truth_file(history: tuple[AccountSim, Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _, events, truth_csv = history
    assert main(["report", "--events", str(events), "--from", "2026-01-01", "--to", "2026-07-02", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    with open(truth_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(report["periods"]) == len(rows) == 7 and report["late_statements"] == 0
    for row, got in zip(rows, report["periods"]):
        assert got["period_start"][:7] == row["month"]
        for col in ("start_mrr", "new", "expansion", "contraction", "churned", "reactivation", "end_mrr"):
            assert got[col] == row[col], (row["month"], col)
        assert (got["customers_start"], got["lost"], got["logo_churn"]) == (
            int(row["customers_start"]), int(row["churned_customers"]), int(row["logo_churn"]))
        for mine, theirs in (("logo_churn_pct", "logo_churn_pct"), ("gross_mrr_churn_pct", "gross_mrr_churn_pct"),
                             ("net_mrr_churn_pct", "net_mrr_churn_pct")):
            assert (got[mine] or "") == row[theirs], (row["month"], mine)
    assert report["cohorts"] and report["cohorts"][0]["months"][0]["mrr_retention_pct"] == "100.0000"


def test_row_order_and_weekly_periods_do_not_change_the_money(history: tuple[AccountSim, Path, Path], tmp_path: Path) -> None:
    sim, events, _ = history
    shuffled = list(sim.events)
    random.Random(5).shuffle(shuffled)
    write_events_csv(tmp_path / "shuffled.csv", shuffled, accounts=True)
    end = START_MS + DAYS * 86_400_000
    _, a = build_report(events, START_MS, end, "month")
    _, b = build_report(tmp_path / "shuffled.csv", START_MS, end, "month")
    assert a == b
    _, weeks = build_report(events, START_MS, end, "week")
    months_total = sum(f.churned_cents + f.contraction_cents - f.expansion_cents for f in a)
    weeks_total = sum(f.churned_cents + f.contraction_cents - f.expansion_cents for f in weeks)
    assert months_total == weeks_total and weeks[-1].end_mrr_cents == a[-1].end_mrr_cents


def test_text_report_and_bad_arguments(history: tuple[AccountSim, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, events, _ = history
    assert main(["report", "--events", str(events), "--from", "2026-02-01", "--to", "2026-04-01"]) == 0
    out = capsys.readouterr().out
    assert "gross %" in out and "2026-02-01" in out and "2026-03-01" in out and "2026-04-01" not in out.split("\n\n")[0]
    assert "whole months" not in out  # the bounds are the months' own
    # QA21 F10: a --to inside a month printed the whole month under its first day, and nothing said so
    assert main(["report", "--events", str(events), "--from", "2026-02-01", "--to", "2026-03-15"]) == 0
    out = capsys.readouterr().out
    assert ("note: the figures are whole months, 2026-02-01 to 2026-04-01 (exclusive): --to 2026-03-15 falls inside "
            "the last one") in out
    for argv, message in (
        (["--from", "2026-03-01", "--to", "2026-02-01"], "is not after"),
        (["--from", "soon", "--to", "2026-02-01"], "--from: timestamp 'soon'"),
    ):
        assert main(["report", "--events", str(events), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["report", "--events", str(events) + ".missing", "--from", "2026-01-01", "--to", "2026-02-01"]) == 2
    assert "is not a file" in capsys.readouterr().err


def _base_history(path: Path, quiet_days: int) -> Path:
    """A history that opens on 40 customers already paying (their monthly renewals on each day of
    January, restated in February), then 3 new ones in February; ``quiet_days`` of activity before
    its first statement (an app_open on the file's first day)."""
    day, start = 86_400_000, START_MS - quiet_days * 86_400_000
    rows = [("u0", start, "app_open", "", "", "")]
    for i in range(40):
        for month in (0, 31):
            rows.append((f"c{i}", START_MS + (i % 31 + month) * day + 3_600_000, "subscription", "active", "Pro", "49.00"))
    rows += [(f"n{i}", START_MS + (35 + 7 * i) * day, "subscription", "active", "Pro", "49.00") for i in range(3)]
    rows.append(("u0", START_MS + 90 * day, "app_open", "", "", ""))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "ts", "event_type", "amount", "status", "plan", "mrr"])
        w.writerows((u, t, e, "", st, pl, m) for u, t, e, st, pl, m in rows)
    return path


def test_the_opening_note_is_said_of_a_base_already_paying_not_of_a_launch(
        history: tuple[AccountSim, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA15 F8: the month a history begins in counts a base already paying as new; the report says
    so, with that period's own figures and what told it (the first month's first payers against
    the next month's), and says nothing when the report starts after that period. QA19 F13: a
    history from the product's launch got the same note, "every customer already paying then",
    of customers who were new (a neobank's first statement 2 days in, 51 payers in January, 113
    in February). Now the simulated history (accounts signing up over its months, from its first
    day) gets none; nor does the base's history when its first statement comes 3 weeks after the
    file's first event (a monthly base renews within days)."""
    base = _base_history(tmp_path / "base.csv", 0)
    assert main(["report", "--events", str(base), "--from", "2026-01-01", "--to", "2026-03-01", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    first = report["periods"][0]
    assert (first["new_customers"], report["periods"][1]["new_customers"]) == (40, 3)
    assert report["opening_note"] == (
        "the history's paid statements begin 2026-01-01 01:00, inside the period from 2026-01-01: its new 1960.00 (40 customers) "
        "counts every customer already paying then as new, and as that month's cohort; the next period's start MRR is the opening "
        "balance (--from the next period's first day; its first 31 days hold 40 first payments, the next 31 days 3: a base "
        "already paying)")
    assert main(["report", "--events", str(base), "--from", "2026-02-01", "--to", "2026-03-01", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["opening_note"] is None
    assert main(["report", "--events", str(base), "--from", "2026-01-01", "--to", "2026-02-01"]) == 0
    assert "\nnote: the history's paid statements begin 2026-01-01 01:00" in capsys.readouterr().out
    late = _base_history(tmp_path / "late.csv", 21)
    _, events, _ = history
    for path in (late, events):
        assert main(["report", "--events", str(path), "--from", "2026-01-01", "--to", "2026-03-01", "--json"]) == 0
        report = orjson.loads(capsys.readouterr().out)
        assert report["opening_note"] is None and report["periods"][0]["new_customers"] > 0, path
        assert main(["report", "--events", str(path), "--from", "2026-01-01", "--to", "2026-03-01"]) == 0
        assert "note:" not in capsys.readouterr().out


def test_a_file_without_statements_says_its_purchases_are_not_mrr(history: tuple[AccountSim, Path, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """QA12 F8: a shop's history (purchases, no subscription events) printed months of 0.00 MRR
    and "0 accounts" without saying why. Now one line says the file has no statements and what
    its purchases are (exact repeats once), after the table, or on stderr with --json; a file
    with statements has no such line."""
    shop = tmp_path / "shop.csv"
    shop.write_text("user_id,ts,event_type,amount,event_id\n"
                    "c1,2026-02-03T10:00:00Z,page_view,,e1\nc1,2026-02-03T10:05:00Z,purchase,49.00,e2\n"
                    "c2,2026-03-01T08:00:00Z,order,1000.50,e3\nc2,2026-03-01T08:00:00Z,order,1000.50,e3\n"
                    "c2,2026-03-02T08:00:00Z,add_to_cart,,e4\n")
    argv = ["report", "--events", str(shop), "--from", "2026-02-01", "--to", "2026-04-01"]
    note = ("no subscription statements in shop.csv: 2 purchases (total 1,049.50) are not MRR; "
            "see `churnwatch churn-rate` for spend of churned users")
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("0 accounts;") and out[-1] == note, out
    assert main([*argv, "--json"]) == 0
    got = capsys.readouterr()
    assert orjson.loads(got.out)["accounts"] == 0 and got.err == note + "\n"
    _, events, _ = history
    assert main(["report", "--events", str(events), "--from", "2026-02-01", "--to", "2026-04-01"]) == 0
    assert "no subscription statements" not in capsys.readouterr().out


def test_purchases_beside_statements_are_said_to_be_in_no_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA25a F1: a prepaid operator's file holds bundles (subscription statements) and top-ups
    (purchases); the report counts the bundles' MRR only, and the top-ups, most of its money, were
    in no figure and unsaid. Now one line after the table (on stderr with --json) says how many
    purchases the file holds and that they are not MRR; the figures are those without them."""
    rows = ("user_id,ts,event_type,amount,status,plan,mrr,period_end\n"
            "s1,2026-02-03T10:00:00Z,subscription,,active,data30,15.00,2026-03-05T10:00:00Z\n"
            "s1,2026-02-04T10:00:00Z,purchase,20,,,,\ns2,2026-02-05T10:00:00Z,purchase,30,,,,\n"
            "s2,2026-02-06T10:00:00Z,call,,,,,\n")
    mixed, bundles = tmp_path / "mixed.csv", tmp_path / "bundles.csv"
    mixed.write_text(rows)
    bundles.write_text("".join(line + "\n" for line in rows.splitlines() if "purchase" not in line))
    note = ("mixed.csv also holds 2 purchases (total 50.00): they are not MRR and in none of these figures "
            "(subscription statements only); see `churnwatch churn-rate` for spend of churned users")
    argv = ["--from", "2026-02-01", "--to", "2026-03-01"]
    assert main(["report", "--events", str(mixed), *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == note and out[-2].startswith("1 accounts;"), out
    assert main(["report", "--events", str(mixed), *argv, "--json"]) == 0
    got = capsys.readouterr()
    assert got.err == note + "\n"
    assert main(["report", "--events", str(bundles), *argv, "--json"]) == 0
    plain = capsys.readouterr()
    assert plain.err == "" and orjson.loads(plain.out)["periods"] == orjson.loads(got.out)["periods"]


def test_percent_text_rounds_half_even() -> None:
    from fractions import Fraction

    assert percent_text(Fraction(1, 800000)) == "0.0001"  # 0.000125 % -> 0.0001
    assert percent_text(Fraction(3, 800000)) == "0.0004"  # 0.000375 % -> 0.0004


def test_simulate_accounts_command_writes_events_and_truth_the_report_agrees_with(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, mrr = tmp_path / "e.csv", tmp_path / "mrr.csv"
    assert main(["simulate", "--accounts", "40", "--days", "75", "--seed", "3", "--no-publish",
                 "--events-out", str(events), "--mrr-truth-out", str(mrr)]) == 0
    capsys.readouterr()
    assert main(["report", "--events", str(events), "--from", "2026-01-01", "--to", "2026-03-17", "--json"]) == 0
    got = orjson.loads(capsys.readouterr().out)["periods"]
    with open(mrr, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(p["start_mrr"], p["end_mrr"], p["churned"]) for p in got] == [(r["start_mrr"], r["end_mrr"], r["churned"]) for r in rows]
    assert main(["simulate", "--users", "5", "--no-publish", "--mrr-truth-out", str(mrr)]) == 2
    assert "needs --accounts" in capsys.readouterr().err


@pytest.mark.integration
def test_simulated_accounts_published_decode_to_the_same_events(kafka_bootstrap: str, unique_name: str,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The contract end to end through the real broker: what ``simulate --accounts`` publishes, the
    worker's codec reads back as the very same events (account ids, statuses, exact cents, trial ends)."""
    from models.revenue_ledger import RevenueBook
    from streams.worker.codec import Decoder
    from tests.harness import read_topic

    topic = f"acc-{unique_name}"
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    monkeypatch.setenv("CHURNWATCH_PARTITIONS", "2")
    assert main(["--bootstrap-servers", kafka_bootstrap, "simulate", "--accounts", "12", "--days", "70", "--seed", "4"]) == 0
    capsys.readouterr()
    sim = generate_accounts(4, 12, START_MS, 70)
    decoder = Decoder()
    got = [decoder.decode(r.value, START_MS + 400 * 86_400_000) for r in read_topic(kafka_bootstrap, topic, 2)]
    assert sorted(got, key=lambda e: e.event_id) == sorted(sim.events, key=lambda e: e.event_id)  # type: ignore[union-attr]
    book = RevenueBook()
    for ev in sorted(got, key=lambda e: (e.ts_ms, e.event_id)):  # type: ignore[union-attr]
        book.update(ev)  # type: ignore[arg-type]
    assert [(m.ts_ms, m.delta_cents) for m in book.movements] == [(m.ts_ms, m.delta_cents) for m in sim.movements]


def test_report_splits_churn_after_failed_payments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA22a F5: a streaming service's 122 involuntary churns (1,724.78 of 9,632.63 churned MRR) were
    not separable from the voluntary ones. A cancellation of a subscription that was past due is
    counted apart (additive fields; the table's "invol." column only where there is some)."""
    from models.events import Event
    from models.subscription import Subscription

    day = 86_400_000
    rows = [("a", 0, "active", 1000), ("a", 20, "past_due", 1000), ("a", 35, "cancelled", 0),  # involuntary
            ("b", 0, "active", 2500), ("b", 34, "cancelled", 0),  # voluntary
            ("c", 0, "active", 700), ("c", 21, "past_due", 700), ("c", 24, "active", 700), ("c", 40, "cancelled", 0)]  # fixed first
    events = [Event(u, START_MS + d * day, "subscription", f"{u}{d}", 0.0, u, Subscription(st, "Pro", mrr))  # type: ignore[arg-type]
              for u, d, st, mrr in rows]
    path = tmp_path / "events.csv"
    write_events_csv(path, events, accounts=True)
    assert main(["report", "--events", str(path), "--from", "2026-02-01", "--to", "2026-03-01", "--json"]) == 0
    feb = orjson.loads(capsys.readouterr().out)["periods"][0]
    assert (feb["churned"], feb["churned_involuntary"], feb["churned_voluntary"], feb["lost"], feb["lost_involuntary"]) == (
        "42.00", "10.00", "32.00", 3, 1), feb
    assert main(["report", "--events", str(path), "--from", "2026-02-01", "--to", "2026-03-01"]) == 0
    head, row = capsys.readouterr().out.splitlines()[:2]
    cells = dict(zip(re.split(r"\s{2,}", head.strip()), row.split()))
    assert (cells["churned"], cells["invol."]) == ("42.00", "10.00"), (head, row)
    assert main(["report", "--events", str(path), "--from", "2026-01-01", "--to", "2026-02-01"]) == 0
    assert "invol." not in capsys.readouterr().out, "no failed payments in January: the table as before"


def test_report_says_when_one_subscription_has_different_statements_at_one_instant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA25b F6: a marketplace's billing sent the renewal notice of Pro and the downgrade to the free
    plan at the same second; the ledger books the larger (documented), so the churn of 39.00 fell in
    the next month, unsaid. The report now says it under the table (JSON ``same_instant_note``) and
    the figures are unchanged; a file without such a clash says nothing (null)."""
    from models.events import Event
    from models.subscription import Subscription

    day = 86_400_000
    rows = [("shop369_o", 0, "pro", 3900), ("shop369_o", 30, "pro", 3900), ("shop369_o", 30, "basic", 0), ("shop369_o", 60, "basic", 0)]
    events = [Event(u, START_MS + d * day, "subscription", f"{u}{d}{p}", 0.0, "shop369", Subscription("active", p, mrr))  # type: ignore[arg-type]
              for u, d, p, mrr in rows]
    path = tmp_path / "events.csv"
    write_events_csv(path, events, accounts=True)
    args = ["report", "--events", str(path), "--from", "2026-01-01", "--to", "2026-04-01", "--period", "month"]
    assert main([*args, "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert [p["churned"] for p in out["periods"]] == ["0.00", "0.00", "39.00"], "the larger is booked: as documented"
    assert out["same_instant_note"].startswith("1 subscription has different statements at one instant (the first: shop369, "
                                               "user shop369_o, "), out["same_instant_note"]
    assert "active basic 0.00 / active pro 39.00" in out["same_instant_note"]
    assert main(args) == 0
    assert "\nnote: 1 subscription has different statements at one instant" in capsys.readouterr().out
    write_events_csv(path, [e for e in events if e.subscription.plan != "basic" or e.ts_ms != START_MS + 30 * day], accounts=True)  # type: ignore[union-attr]
    assert main([*args, "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["same_instant_note"] is None
