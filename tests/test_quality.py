"""The quality table's own pure parts: population loaders on tiny slices, baselines and checks on
toy cases (no fightchurn, no lifetimes, no network: the table itself is a benchmark, `make quality`)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import baselines, oracle, populations, quality
from streams.offline.evaluate import flaps, read_labels
from streams.offline.history import read_events_csv

DAY = 86_400_000

# A slice of the CDNOW master file and of the 1/10 sample, as the lifetimes wheel ships them.
MASTER = """ customer_id  date number_of_cds  dollar_value
 00001 19970101  1   11.77
 00002 19970112  1   12.00
 00002 19970112  5   77.00
 00003 19970102  2   20.76
 00003 19971130  2   20.76
"""
SAMPLE = """ 00004 0001 19970101  2   29.33
 00004 0001 19970118  2   29.73
 00004 0001 19970802  1   14.96
"""


def test_cdnow_lines_of_both_files_become_purchases() -> None:
    rows = populations.parse_cdnow(MASTER.splitlines()) + populations.parse_cdnow(SAMPLE.splitlines())
    assert [r[0] for r in rows] == ["00001", "00002", "00002", "00003", "00003", "00004", "00004", "00004"]
    assert {r[2] for r in rows} == {"purchase"}
    assert rows[0][1] == 852_076_800_000  # 1997-01-01T00:00:00Z
    assert rows[2][3] == 77.0
    with pytest.raises(ValueError, match="line 1"):
        populations.parse_cdnow(["00001 19970101"])


def test_cdnow_churn_is_no_purchase_in_the_holdout_weeks() -> None:
    rows = populations.parse_cdnow(MASTER.splitlines())
    labels = populations.cdnow_labels(rows, 875_664_000_000)  # 1997-10-01
    assert labels == {"00001": 852_076_800_000, "00002": 853_027_200_000}  # 00003 bought on 1997-11-30


def test_split_is_by_user_and_files_read_back(tmp_path: Path) -> None:
    rows = [(f"u{i}", 1_767_225_600_000 + i * DAY, "post" if i % 2 else "like", None) for i in range(40)]
    rows.append(("u3", 1_767_225_600_000, "purchase", 12.5))
    labels = {"u1": 1_767_225_600_000 + 5 * DAY, "u2": 1_767_225_600_000 + 6 * DAY}
    out = populations.write_split(rows, labels, {"u1": "web"}, tmp_path)
    files, counts = out["files"], out["counts"]
    assert counts["events_train"] + counts["events_test"] == len(rows)
    test_users = {e.user_id for e in read_events_csv(files["events_test"])}
    train_users = {e.user_id for e in read_events_csv(files["events_train"])}
    assert test_users and train_users and not test_users & train_users
    assert all(populations.is_held_out(u) for u in test_users)
    # own type names kept (the reader maps them only when it scores)
    back = populations.read_rows(files["events_test"]) + populations.read_rows(files["events_train"])
    assert sorted(back, key=lambda r: (r[0], r[1], r[2])) == sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    both = {**read_labels(files["labels_test"]).churned_at_ms, **read_labels(files["labels_train"]).churned_at_ms}
    assert both == labels
    with open(files["labels_train"] if not populations.is_held_out("u1") else files["labels_test"]) as fh:
        assert {"user_id": "u1", "churned_at": "2026-01-06T00:00:00.000Z", "persona": "web"} in list(csv.DictReader(fh))


def test_billing_statements_are_written_with_their_columns_and_read_back(tmp_path: Path) -> None:
    """A statement is a ``subscription`` row with status, plan, mrr and period_end by header name:
    the history reader (train, backtest) reads it as the subscription, the baselines' reader as one
    more row of its type, and the events keep empty statement columns."""
    t0 = 1_767_225_600_000
    rows = [(f"u{i}", t0 + i * DAY + 3600_000, "post", None) for i in range(12)]
    statements = [(f"u{i}", t0 + i * DAY, "plus_annual", 1100, t0 + (i + 365) * DAY) for i in range(12)]
    out = populations.write_split(rows, {}, {}, tmp_path, statements)
    c = out["counts"]
    assert c["statements_train"] + c["statements_test"] == 12 and c["events_train"] + c["events_test"] == 12
    subs = [e for f in ("events_train", "events_test") for e in read_events_csv(out["files"][f]) if e.type == "subscription"]
    assert sorted((e.user_id, e.ts_ms, e.subscription.status, e.subscription.plan, e.subscription.mrr_cents, e.subscription.period_end_ms)
                  for e in subs) == sorted((u, ts, "active", plan, cents, end) for u, ts, plan, cents, end in statements)
    with open(out["files"]["events_test"]) as fh:
        written = list(csv.DictReader(fh))
    assert set(written[0]) == {"user_id", "ts", "event_type", "amount", "status", "plan", "mrr", "period_end"}
    billed = {r["user_id"]: r for r in written if r["event_type"] == "subscription"}
    assert all(r["mrr"] == "11.00" and r["period_end"] for r in billed.values())
    assert {r["status"] for r in written if r["event_type"] != "subscription"} == {""}
    back = populations.read_rows(out["files"]["events_test"]) + populations.read_rows(out["files"]["events_train"])
    assert sorted(r for r in back if r[2] == "subscription") == sorted((u, ts, "subscription", None) for u, ts, *_ in statements)
    # files without statements keep the four columns (CDNOW, simulate-mix: their caches unchanged)
    plain = populations.write_split(rows, {}, {}, tmp_path / "plain")
    assert Path(plain["files"]["events_test"]).read_text().splitlines()[0] == "user_id,ts,event_type,amount"


def test_fightchurn_statements_are_stated_at_each_period_start() -> None:
    """One statement per subscription period, at its start, with the period's end as it stood
    then: a longer plan left mid-term (fightchurn moves that subscription's end to the churn)
    keeps its stated end, and nothing from the data's end on is written."""
    d = dt.date
    subs = [("basic", d(2020, 1, 31), d(2020, 2, 29), 9.0, 30, "post", 1, 0.1),
            ("plus_annual", d(2020, 2, 29), d(2020, 5, 31), 11.0, 90, "post", 12, 0.15),  # left mid-term at 2020-05-31
            ("plus", d(2020, 7, 1), d(2020, 8, 1), 15.0, 90, "post", 1, 0.0)]  # begins at the data's end: not stated
    stated = [d(2020, 2, 29), d(2021, 2, 28), d(2020, 8, 1)]
    end_ms = populations._day_ms("2020-07-01")
    out = populations.fc_statements(subs, stated, end_ms)
    assert [(t, p, c) for t, p, c, _ in out] == [(populations._day_ms("2020-01-31"), "basic", 900), (populations._day_ms("2020-02-29"), "plus_annual", 1100)]
    assert [e for *_, e in out] == [populations._day_ms("2020-02-29"), populations._day_ms("2021-02-28")]  # not the moved 2020-05-31
    with pytest.raises(ValueError, match="2 stated ends for 3"):
        populations.fc_statements(subs, stated[:2], end_ms)


def test_fightchurn_customers_start_as_its_run_simulation_creates_them() -> None:
    cfg = SimpleNamespace(start_date="2020-01-01", end_date="2020-04-01", init_customers=10, growth_rate=0.1)
    months = populations._fc_month_plan(cfg)
    # 10 at the start, then ceil(10 * 0.1) = 1, then ceil(1 * 1.1) = 2 (ChurnSimulation.run_simulation)
    assert months == ["2020-01-01"] * 10 + ["2020-02-01"] + ["2020-03-01"] * 2


def test_count_baselines_on_a_toy_history() -> None:
    rows = [("a", d * DAY, "post", None) for d in (0, 20, 25, 29)] + [("a", 29 * DAY, "like", None), ("b", 1 * DAY, "like", None)]
    index = baselines.index_events(rows)
    simple, X = baselines.count_features(index, ["a", "b", "a"], [30 * DAY, 30 * DAY, 60 * DAY], ["post", "like"])
    assert simple["events_28d"].tolist() == [-4.0, 0.0, -0.0]  # events in [as_of - 28 d, as_of)
    assert simple["days_since_last"].tolist() == [1.0, 29.0, 31.0]
    assert np.expm1(X).round().astype(int).tolist() == [[2, 1, 3, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert baselines.top_types(rows) == ["post", "like"]
    users, dates = baselines.panel_rows(index, [DAY // 2, 30 * DAY, 60 * DAY], 30 * DAY, 70 * DAY)
    assert list(zip(users, dates)) == [("a", DAY // 2), ("a", 30 * DAY), ("b", 30 * DAY)]
    assert baselines.labels_at(users, dates, {"b": 5 * DAY}, 30 * DAY).tolist() == [0, 0, 1]


def test_logistic_baseline_learns_which_type_means_leaving() -> None:
    rng = np.random.default_rng(1)
    X = rng.poisson(3.0, size=(400, 2)).astype(float)
    y = (X[:, 1] > X[:, 0]).astype(int)  # the second type (an "unfriend") means leaving
    p = baselines.fit_predict_logistic(np.log1p(X), y, np.log1p(np.array([[5.0, 0.0], [0.0, 5.0]])))
    assert p[1] > 0.5 > p[0]


def test_flaps_count_at_risk_alerts_soon_after_a_recovery() -> None:
    alerts = [("at_risk", 0), ("recovered", 5 * DAY), ("at_risk", 10 * DAY), ("recovered", 11 * DAY), ("at_risk", 40 * DAY)]
    assert flaps(alerts, 0, 100 * DAY, 14 * DAY) == (3, 1)
    assert flaps(alerts, 20 * DAY, 100 * DAY, 14 * DAY) == (1, 0)  # window: only the last one
    assert flaps([], 0, 1, 1) == (0, 0)


def _result(**auc: float) -> dict:
    scorers = {k: {"roc_auc": v} for k, v in auc.items()}
    scorers["default"].update(precision=0.12, recall=0.35, flap_rate=0.08)
    return {"base_rate": 0.04, "scorers": scorers}


def test_checks_say_met_and_not_met_with_the_numbers() -> None:
    r = _result(default=0.70, trained_labels=0.79, trained_no_labels=0.75, events_28d=0.74, days_since_last=0.72, logistic_per_type=0.78)
    c = quality.checks(r)
    assert c["default_beats_baselines"]["met"] is False and "0.78 (logistic_per_type)" in c["default_beats_baselines"]["measured"]
    assert c["trained_beats_lr"]["met"] is False  # 0.79 < 0.78 + 0.02
    assert c["alert_precision"]["met"] is False  # 0.12 < 3.5 x 0.04
    assert c["alert_recall"]["met"] is False and c["flap_rate"]["met"] is False
    r["base_rate"] = 0.5  # 3.5 x base above 1: no precision can meet it
    assert quality.checks(r)["alert_precision"]["met"] is None
    assert "unreachable" in quality.checks(r)["alert_precision"]["target"]


def test_render_shows_every_population_scorer_and_check() -> None:
    r = _result(default=0.70, trained_labels=0.79, trained_no_labels=0.75, events_28d=0.74, days_since_last=0.72, logistic_per_type=0.78,
                logistic_per_type_activity=0.77)
    for k in quality.SCORERS:
        r["scorers"][k].setdefault("top_decile_lift", 2.0)
    pop = {**r, "about": "toy", "label": "gone", "horizon_days": 30, "as_of": "2020-02-01/2020-03-01/7d", "churn_after_for_training": "30d",
           "facts": {}, "counts": {"users_test": 5, "churners_test": 1, "events_test": 50, "users_train": 5, "churners_train": 1, "events_train": 40},
           "rows_judged": 20, "rows_churn_within_horizon": 1, "seconds": {}}
    pop["checks"] = quality.checks(pop)
    text = quality.render({"when": "now", "model": "shipped default", "machine": "2 cores", "jobs": 2, "seconds": 1.0,
                           "populations": {"toy": pop}})
    assert text.count("| toy |") == len(quality.CHECKS)
    for label in quality.LABELS.values():
        assert f"| {label} |" in text
    assert "**not met**" in text


def test_common_rows_open_follows_the_backtest_subscribed_the_labels() -> None:
    index = baselines.index_events([("a", 0, "post", None), ("b", 5 * DAY, "post", None), ("c", 50 * DAY, "post", None)])
    dates = [DAY, 10 * DAY, 20 * DAY, 90 * DAY]
    # subscribed: seen before the date, subscription still running (a ends on day 10), horizon inside the data
    rows = quality.common_rows("subscribed", {}, index, {"a": 10 * DAY}, dates, 30 * DAY, 60 * DAY)
    assert rows == [("a", DAY), ("b", 10 * DAY), ("b", 20 * DAY)]
    default = {("a", DAY): (0.1, "active", 90.0), ("a", 10 * DAY): (1.0, "churned", 0.0), ("b", 10 * DAY): (0.3, "new", 80.0),
               ("b", 90 * DAY): (0.3, "active", 80.0)}
    assert quality.common_rows("open", default, index, {}, dates, 30 * DAY, 60 * DAY) == [("a", DAY), ("b", 10 * DAY)]
    with pytest.raises(ValueError, match="panel"):
        quality.common_rows("everyone", {}, index, {}, dates, 30 * DAY, 60 * DAY)


def test_the_regression_baseline_trains_on_the_panel_it_is_judged_on() -> None:
    """On a subscription population a user whose subscription has ended is not a training row
    (it would teach "no events = gone"); on an open panel every user seen before the date is."""
    index = baselines.index_events([("a", 0, "post", None), ("b", 5 * DAY, "post", None)])
    dates = [DAY, 10 * DAY, 20 * DAY]
    sub = quality.regression_rows("subscribed", index, {"a": 10 * DAY}, dates, 30 * DAY, 60 * DAY)
    assert sub == ([u for u, _ in quality.common_rows("subscribed", {}, index, {"a": 10 * DAY}, dates, 30 * DAY, 60 * DAY)],
                   [d for _, d in quality.common_rows("subscribed", {}, index, {"a": 10 * DAY}, dates, 30 * DAY, 60 * DAY)])
    assert ("a", 20 * DAY) not in set(zip(*sub)) and ("b", 20 * DAY) in set(zip(*sub))
    opened = quality.regression_rows("open", index, {"a": 10 * DAY}, dates, 30 * DAY, 60 * DAY)
    assert set(zip(*opened)) == {("a", DAY), ("a", 10 * DAY), ("b", 10 * DAY), ("a", 20 * DAY), ("b", 20 * DAY)}


def test_a_fightchurn_customer_without_a_plan_for_its_usage_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """fightchurn asserts when no plan fits a customer's usage (the tiers leave gaps): that
    customer never signs up, instead of the whole population failing."""

    class NoPlan:
        def simulate_customer(self, start: object) -> None:
            raise AssertionError

        def customer_month_end(self, customer: object, next_month: object) -> bool:
            return False

    sim = NoPlan()
    monkeypatch.setattr(populations, "_SIM", sim)
    monkeypatch.setattr(populations, "_fc_seed", lambda seed, index: None)
    assert populations._fc_customer((1, 0, "2020-01-01")) == ([], None, "", 0, None, [], 0)
    assert "customer_month_end" not in vars(sim)  # the recording wrapper is removed


def test_fightchurn_population_depends_only_on_its_spec(tmp_path: Path) -> None:
    """Runs where the quality extra is installed (`make quality`'s venv); CI skips it."""
    pytest.importorskip("fightchurn.churnsim.churnsim")
    tiny = {name: {**spec, "init_customers": 6} for name, spec in populations.FIGHTCHURN_CONFIGS.items()}
    a, b = tiny["fightchurn-socialnet7"], tiny["fightchurn-tiers"]
    full = populations.fightchurn_rows(b, tmp_path / "1", jobs=1)
    alone = full[:2]
    populations.fightchurn_rows(a, tmp_path / "2", jobs=1)  # another configuration first, in the same process
    after = populations.fightchurn_rows(b, tmp_path / "3", jobs=2)[:2]
    assert alone == after
    rows, labels = alone
    assert {r[2] for r in rows} <= {"post", "newfriend", "like", "adview", "dislike", "unfriend", "message", "reply"}
    assert all(labels[u] > min(ts for uu, ts, _, _ in rows if uu == u) for u in labels)
    facts, statements = full[3], full[5]
    assert facts["billing_statements"] == len(statements) > 0
    end_ms = populations._day_ms(b["overrides"]["end_date"])
    by_user: dict[str, list[tuple[int, str, int, int]]] = {}
    for user, *rest in statements:
        by_user.setdefault(user, []).append(tuple(rest))  # type: ignore[arg-type]
    for user, billed in by_user.items():
        assert all(ts < end_ms and ts < period_end and cents > 0 for ts, _, cents, period_end in billed)
        assert all(nxt[0] == prev[3] for prev, nxt in zip(billed, billed[1:]))  # each period starts where the last ended
        if user in labels:  # nothing stated at or after the churn; the last period ends at it, or later if left mid-term
            assert billed[-1][0] < labels[user] <= billed[-1][3]


def test_one_population_end_to_end_through_the_commands(tmp_path: Path) -> None:
    """The pipeline of `make quality` on a tiny simulated population: train and backtest run as
    commands, every scorer gets figures on the same rows, the checks are filled in. With monthly
    billing statements in the files, as the fightchurn populations have them: both commands read
    them and the regression is reported with and without their column."""
    rows, labels, persona = populations.simulate_rows(5, 160, "2026-01-01", 75, populations.SIMULATE_MIX)
    end = 1_767_225_600_000 + 75 * DAY
    first = {}
    for user, ts, _, _ in rows:
        first[user] = min(ts, first.get(user, ts))
    statements = [(u, day, "plus", 1499, day + 30 * DAY) for u, t in first.items()
                  for day in range(t - t % DAY, min(end, labels.get(u, end)), 30 * DAY)]
    written = populations.write_split(rows, labels, persona, tmp_path / "data", statements)
    pop = populations.Population(name="tiny", about="tiny", label="truth", horizon_days=14, as_of="2026-01-22/2026-02-26/7d",
                                 churn_after="21d", end_ms=1_767_225_600_000 + 75 * DAY, files=written["files"], counts=written["counts"])
    test_rows = populations.read_rows(pop.files["events_test"])
    result = quality.evaluate_population(pop, {}, test_rows, tmp_path / "run")
    assert result["rows_judged"] > 100 and 0 < result["rows_churn_within_horizon"] < result["rows_judged"]
    for name in quality.SCORERS:
        auc = result["scorers"][name]["roc_auc"]
        assert auc is not None and 0.0 <= auc <= 1.0
    assert result["scorers"]["default"]["at_risk_alerts"] is not None
    assert set(result["checks"]) == {key for key, _ in quality.CHECKS}


def test_cdnow_check_shows_both_models_next_to_lifetimes() -> None:
    model = {"no_row": 0, "visit_mbgnbd_days": {"r": 1.0}, "purchase_bgnbd_days": None, "horizon_days": 30.0,
             "p_active_within_horizon_roc_auc": 0.77}
    cd = {"customers": 10, "buy_again": 3, "temperature_roc_auc": 0.76, "target": ">= 0.77", "met": False,
          "default": {**model, "temperature_roc_auc": 0.76}, "trained": {**model, "temperature_roc_auc": 0.78},
          "lifetimes": {"params_days": {"r": 0.24}, "expected_purchases_39w_roc_auc": 0.7725, "p_alive_roc_auc": 0.3158}}
    text = quality.render({"when": "now", "model": "shipped default", "machine": "2 cores", "jobs": 2, "seconds": 1.0,
                           "populations": {}, "cdnow_check": cd})
    assert "| AUC 0.76 | >= 0.77 | **not met** |" in text
    assert "| temperature of the model trained on the calibration period ranks it | AUC 0.78 | >= 0.77 | met |" in text
    assert "| lifetimes BG/NBD: expected purchases in the next 39 weeks | 0.7725 |" in text
    assert "| lifetimes BG/NBD: P(alive) | 0.3158 |" in text


def test_visit_histories_count_distinct_days_before_the_cut() -> None:
    rows = [("a", 0, "purchase", 1.0), ("a", 3600_000, "purchase", 1.0), ("a", 2 * DAY, "purchase", 1.0), ("a", 9 * DAY, "purchase", 1.0),
            ("b", DAY, "purchase", 1.0)]
    x, t_x, T = quality._visit_histories(rows, ["a", "b"], 5 * DAY)
    assert x.tolist() == [1.0, 0.0] and t_x.tolist() == [2.0, 0.0] and T.tolist() == [5.0, 4.0]


def test_oracle_combines_the_month_ends_inside_the_label_window() -> None:
    """(d, d + horizon]: a month end at d is past, one at d + horizon counts; several combine as
    the chance of not surviving them all; none gives 0."""
    times, hazards = [10 * DAY, 40 * DAY, 69 * DAY, 70 * DAY], [0.5, 0.2, 0.25, 0.9]
    assert oracle.window_probability(times, hazards, 10 * DAY, 30 * DAY) == pytest.approx(0.2)
    assert oracle.window_probability(times, hazards, 39 * DAY, 30 * DAY) == pytest.approx(1 - 0.8 * 0.75)  # 70 is past 39 + 30
    assert oracle.window_probability(times, hazards, 40 * DAY, 30 * DAY) == pytest.approx(1 - 0.75 * 0.1)
    assert oracle.window_probability(times, hazards, 70 * DAY, 30 * DAY) == 0.0
    with pytest.raises(ValueError, match="ms"):
        oracle.window_probability(times, hazards, 0, 0)


def test_oracle_hazard_follows_the_simulators_renewal_rule() -> None:
    """fightchurn's customer_month_end: monthly plans leave at the intent; longer plans leave at
    renewal after any intent of the period, mid-term on the 2nd (2-6 months) or 3rd (longer)."""
    assert oracle.churn_hazard(0.3, True, 0, 1) == pytest.approx(0.3)
    assert oracle.churn_hazard(0.3, True, 2, 12) == 1.0
    assert oracle.churn_hazard(0.3, False, 0, 12) == 0.0 and oracle.churn_hazard(0.3, False, 2, 12) == pytest.approx(0.3)
    assert oracle.churn_hazard(0.3, False, 1, 3) == pytest.approx(0.3) and oracle.churn_hazard(0.3, False, 0, 3) == 0.0
    with pytest.raises(ValueError, match="probability"):
        oracle.churn_hazard(1.5, True, 0, 1)


def test_precision_at_recall_flags_whole_ties_and_counts_churners_once() -> None:
    # churner a has two positive rows; b one; c and d never churn
    scores = [0.9, 0.8, 0.8, 0.5, 0.4, 0.1]
    y = [1, 1, 0, 0, 1, 0]
    users = ["a", "a", "c", "d", "b", "c"]
    half = oracle.precision_at_recall(scores, y, users, 0.5)
    assert (half["precision"], half["recall"], half["flagged_rows"]) == (1.0, 0.5, 1)
    full = oracle.precision_at_recall(scores, y, users, 1.0)  # b is caught at 0.4: 5 rows flagged, 3 right
    assert (full["precision"], full["recall"], full["flagged_rows"]) == (0.6, 1.0, 5)
    assert oracle.precision_at_recall([0.5], [0], ["a"])["precision"] is None


def test_oracle_scores_read_the_truth_of_each_judged_row() -> None:
    truth = {"a": {"decisions": [[40 * DAY, 1.0, 0.2, 0.2, True, 0, 1, 9.0, 0.0], [64 * DAY, 2.0, 0.5, 0.5, True, 0, 1, 9.0, 0.0]],
                   "at_d": [[35 * DAY, 0.3, 0.4]]}}
    got = quality.oracle_scores(truth, [("a", 35 * DAY), ("a", 45 * DAY), ("a", 80 * DAY)], 30 * DAY)
    assert got["oracle_decision"].tolist() == pytest.approx([1 - 0.8 * 0.5, 0.5, 0.0])
    assert got["oracle_at_d"].tolist() == [0.3, 0.0, 0.0] and got["oracle_last_30d"].tolist() == [0.4, 0.0, 0.0]
