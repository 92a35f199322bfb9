"""The quality table: every scorer on populations nobody here designed (``make quality``).

What one run does, per population of ``benchmarks.populations`` (split by user into a training
half and a judged half):

1. ``churnwatch train`` on the training half, once with the labels (``--labels``) and once
   without (``--churn-after``), as a user would run it (subprocesses, default options);
2. ``churnwatch backtest`` of the judged half with the default model and both trained models,
   on the population's weekly as-of dates and horizon; its own metrics give the alert figures
   (precision, recall before churn, median lead, at-risk alerts per user-month, flap rate);
3. the simple baselines (``benchmarks.baselines``) on the same rows;
4. ROC AUC and top-decile lift of every scorer on one common set of rows (:func:`common_rows`):
   for CDNOW and the simulator the (user, as-of) rows the default model's backtest judges (its
   "open" panel: users it does not report churned), for the subscription populations every
   user still subscribed at the as-of time; horizon inside the data, labelled as the backtest
   labels them (gone by the end of the horizon).

5. on the fightchurn populations, the oracle (``benchmarks.oracle``): the simulator's own churn
   probabilities scored as a ranking on the same rows, the ceiling any scorer could reach, with
   the precision of weekly flags at recall 0.4 for it and every scorer on the same rows.

Then the issue's "done when" checks next to the figures, and the CDNOW check (:func:`cdnow_check`):
temperature on the 1/10 CDNOW sample as of 1997-10-01 ranking "buys again in the next 39 weeks"
(the issue measured 0.773), of the default model and of the model ``churnwatch train`` fits on the
calibration period, next to lifetimes' own BG/NBD (expected purchases, P(alive)) fitted on the same
period. Writes ``benchmarks/quality.json`` and ``benchmarks/QUALITY.md``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from benchmarks import baselines, oracle, populations
from benchmarks.populations import Population, Row

__all__ = ["BOOTSTRAP_REPS", "CHECKS", "SCORERS", "checks", "common_rows", "evaluate_population", "main", "regression_rows", "render", "run",
           "verdict", "write_markdown"]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
JSON_OUT = Path(__file__).with_name("quality.json")
MD_OUT = Path(__file__).with_name("QUALITY.md")
DAY_MS = 86_400_000

#: Scorers in table order: the models first, then the baselines.
MODELS = ("default", "trained_labels", "trained_no_labels")
SCORERS = MODELS + baselines.BASELINES
LABELS = {
    "default": "default model",
    "trained_labels": "trained, --labels",
    "trained_no_labels": "trained, --churn-after",
    "events_28d": "baseline: events in last 28 d (negated)",
    "days_since_last": "baseline: days since last event",
    "logistic_per_type": "baseline: logistic regression, per-type counts 7/28 d (billing statements a type where the file has them)",
    "logistic_per_type_activity": "baseline: the same regression without the billing statements' counts",
}
#: The issue's "done when" on every population, as (key, words).
CHECKS = (
    ("default_beats_baselines", "default AUC > best simple baseline's AUC"),
    ("trained_beats_lr", "a trained model's AUC >= per-type logistic regression + 0.02"),
    ("alert_precision", "default's at-risk precision >= 3.5 x base churn rate"),
    ("alert_recall", "default's recall before churn >= 0.4"),
    ("flap_rate", "default's flap rate < 5%"),
)
CDNOW_CHECK_AUC = 0.77  # the 0.773, to two decimals
#: The oracle's rows (fightchurn populations only), after the table's scorers.
ORACLES = ("oracle_decision", "oracle_at_d", "oracle_events_at_d")
ORACLE_LABELS = {
    "oracle_decision": "oracle: the simulator's churn probability of the month ends in the window (knows the month's events)",
    "oracle_at_d": "oracle at d: the simulator's utility on what exists at the as-of date, true propensity and price",
    "oracle_events_at_d": "oracle from the events at d: the same, hidden propensity inferred from the user's survival so far, own rate so far",
    "oracle_last_30d": "oracle, last 30 days: the same on the 30 days before the as-of date only",
}
#: The recall at which the oracle section compares precisions (the issue's alert recall).
ORACLE_RECALL = 0.4


# ---------------------------------------------------------------------------------------------
# The commands it runs
# ---------------------------------------------------------------------------------------------


def _cli(args: Sequence[str], log: Path) -> None:
    """``churnwatch ARGS`` in a subprocess (the user's way in); output appended to ``log``."""
    env = {k: v for k, v in os.environ.items() if k != "CHURNWATCH_MODEL_PATH"}
    with open(log, "a") as fh:
        fh.write(f"$ churnwatch {' '.join(args)}\n")
        fh.flush()
        done = subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"churnwatch {args[0]} failed (exit {done.returncode}); see {log}")


def _read_scores(path: Path) -> dict[tuple[str, int], tuple[float, str, float]]:
    """(user, as-of ms) -> (risk, stage, temperature) of a backtest scores file."""
    from streams.timefmt import parse_ts_ms

    out: dict[tuple[str, int], tuple[float, str, float]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out[(row["user_id"], parse_ts_ms(row["as_of"]))] = (float(row["risk"]), row["stage"], float(row["temperature"]))
    return out


def _train(pop: Population, folder: Path, log: Path, model: str | None) -> dict[str, Path]:
    base = ["--base-model", model] if model else []
    common = ["train", "--events", pop.files["events_train"], "--horizon", f"{pop.horizon_days}d", *base]
    out = {"trained_labels": folder / "trained_labels.json", "trained_no_labels": folder / "trained_no_labels.json"}
    _cli([*common, "--labels", pop.files["labels_train"], "--out", str(out["trained_labels"])], log)
    _cli([*common, "--churn-after", pop.churn_after, "--out", str(out["trained_no_labels"])], log)
    return out


def _backtest(pop: Population, name: str, model: Path | str | None, folder: Path, log: Path) -> tuple[Path, dict[str, Any]]:
    scores = folder / f"scores_{name}.csv"
    _cli(["backtest", "--events", pop.files["events_test"], "--labels", pop.files["labels_test"], "--as-of", pop.as_of,
          "--horizon", f"{pop.horizon_days}d", "--out", str(scores), "--no-progress",
          *(["--model", str(model)] if model else [])], log)
    metrics = json.loads(scores.with_name(f"scores_{name}.metrics.json").read_text())
    return scores, metrics


# ---------------------------------------------------------------------------------------------
# One population
# ---------------------------------------------------------------------------------------------


def _ranking(scores: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from streams.offline.evaluate import roc_auc, top_fraction_lift

    labels = [bool(v) for v in y]
    values = [float(v) for v in scores]
    auc = roc_auc(values, labels)
    lift = top_fraction_lift(values, labels, 0.1)
    return {"roc_auc": None if auc is None else round(auc, 4), "top_decile_lift": None if lift is None else round(lift, 3)}


#: Bootstrap resamples of users for the AUC standard errors (``evaluate.auc_spread``).
BOOTSTRAP_REPS = 200


def _alert_figures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    d = metrics.get("detection", {})
    a = d.get("alerts", {})
    return {
        "precision": a.get("precision"), "recall": d.get("recall"), "median_lead_days": d.get("median_lead_days"),
        "at_risk_per_user_month": a.get("at_risk_per_user_month"), "flap_rate": a.get("flap_rate_14d"),
        "at_risk_alerts": a.get("at_risk_alerts_in_window"), "churners_in_window": d.get("churners_in_window"),
        "own_panel_roc_auc": d.get("roc_auc"),
    }


def common_rows(panel: str, default_scores: Mapping[tuple[str, int], tuple[float, str, float]], index: Mapping[str, Any],
                churned_at: Mapping[str, int], as_of_ms: Sequence[int], horizon_ms: int, data_end_ms: int) -> list[tuple[str, int]]:
    """The (user, as-of) rows every scorer is ranked on (``Population.panel``), horizon inside the data.

    "open": the rows the default model's backtest judges (users it does not report churned);
    "subscribed": every user seen before the as-of time whose subscription still runs then,
    whatever any model says (a row a model has no score for ranks as risk 1).

    >>> common_rows("subscribed", {}, {"a": type("E", (), {"ts": [0]})(), "b": type("E", (), {"ts": [5]})()}, {"a": 3}, [1, 4, 6], 2, 100)
    [('a', 1), ('b', 6)]
    >>> common_rows("open", {("a", 1): (0.2, "active", 50.0), ("a", 4): (1.0, "churned", 0.0)}, {}, {}, [1, 4], 2, 100)
    [('a', 1)]
    """
    if panel == "open":
        return sorted(k for k, (_, stage, _) in default_scores.items() if stage != "churned" and k[1] + horizon_ms <= data_end_ms)
    if panel != "subscribed":
        raise ValueError(f"panel must be 'open' or 'subscribed', got {panel!r}")
    return [(user, d) for user in sorted(index) for d in sorted(as_of_ms)
            if d + horizon_ms <= data_end_ms and index[user].ts[0] < d and churned_at.get(user, d + 1) > d]


def _run_models(pop: Population, folder: Path, model: str | None, timings: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train both models on the training half, backtest the three on the judged half:
    (scores by model, alert figures by model)."""
    log = folder / "commands.log"
    log.write_text("")
    t0 = time.perf_counter()
    paths: dict[str, Path | str | None] = {"default": model, **_train(pop, folder, log, model)}
    timings["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores: dict[str, dict[tuple[str, int], tuple[float, str, float]]] = {}
    alerts: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        path, metrics = _backtest(pop, name, paths[name], folder, log)
        scores[name] = _read_scores(path)
        alerts[name] = _alert_figures(metrics)
    timings["backtest_s"] = time.perf_counter() - t0
    return scores, alerts


def regression_rows(panel: str, index: Mapping[str, Any], churned_at: Mapping[str, int], as_of_ms: Sequence[int],
                    horizon_ms: int, data_end_ms: int) -> tuple[list[str], list[int]]:
    """The training half's (user, as-of) rows the regression baseline is fitted on: those of
    the judged panel (:func:`common_rows`) on a subscription population, else every user seen
    before the as-of time (``baselines.panel_rows``: the "open" panel is the default's own view,
    which a baseline does not have).

    >>> idx = {"a": type("E", (), {"ts": [0]})(), "b": type("E", (), {"ts": [0]})()}
    >>> regression_rows("subscribed", idx, {"a": 3}, [1, 4], 2, 100)
    (['a', 'b', 'b'], [1, 1, 4])
    >>> regression_rows("open", idx, {"a": 3}, [1, 4], 2, 100)
    (['a', 'b', 'a', 'b'], [1, 1, 4, 4])
    """
    if panel == "subscribed":
        keys = common_rows(panel, {}, index, churned_at, as_of_ms, horizon_ms, data_end_ms)
        return [k[0] for k in keys], [k[1] for k in keys]
    return baselines.panel_rows(index, as_of_ms, horizon_ms, data_end_ms)


def _baseline_scores(pop: Population, test_index: Mapping[str, Any], users: Sequence[str], dates: Sequence[int],
                     as_of: Sequence[int], horizon_ms: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The three baselines on the judged rows; the regression fitted on the training half's rows
    of the same panel. Why the same panel: on a subscription population the judged rows are the
    users still subscribed, and ``churnwatch train --labels`` fits its "leaves | still a user"
    part on those users too; a regression also fitted on users already gone (label 1, every
    count 0) learnt "no events = gone" and ranked the subscribed worse (measured on the same
    judged rows, December 2026: socialnet7 0.727 fitted on every row, 0.739 on the subscribed
    ones; tiers 0.650 and 0.675).
    """
    from streams.offline.history import read_labels_csv

    train_rows = populations.read_rows(pop.files["events_train"])
    types = baselines.top_types(train_rows)
    ranked, X_test = baselines.count_features(test_index, users, dates, types)
    train_index = baselines.index_events(train_rows)
    tr_churned = read_labels_csv(pop.files["labels_train"])
    tr_users, tr_dates = regression_rows(pop.panel, train_index, tr_churned, as_of, horizon_ms, max(ts for _, ts, _, _ in train_rows))
    tr_y = baselines.labels_at(tr_users, tr_dates, tr_churned, horizon_ms)
    _, X_train = baselines.count_features(train_index, tr_users, tr_dates, types)
    ranked["logistic_per_type"] = baselines.fit_predict_logistic(X_train, tr_y, X_test)
    if baselines.STATEMENT_TYPE in types:  # the file has billing statements: the regression without them too
        cols = baselines.activity_columns(types)
        ranked["logistic_per_type_activity"] = baselines.fit_predict_logistic(X_train[:, cols], tr_y, X_test[:, cols])
    return ranked, {"event_types_of_the_regression": types, "logistic_training_rows": len(tr_y)}


def evaluate_population(pop: Population, facts: Mapping[str, Any], test_rows: Sequence[Row], folder: Path,
                        model: str | None = None) -> dict[str, Any]:
    """Every scorer of the table on one population (module docstring)."""
    from streams.cli.argtypes import parse_as_of
    from streams.offline.history import read_labels_csv

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    horizon_ms = pop.horizon_days * DAY_MS
    as_of = parse_as_of(pop.as_of)
    timings: dict[str, float] = {}
    scores, alerts = _run_models(pop, folder, model, timings)

    t0 = time.perf_counter()
    churned_at = read_labels_csv(pop.files["labels_test"])
    test_index = baselines.index_events(test_rows)
    data_end = max(ts for _, ts, _, _ in test_rows)
    keys = common_rows(pop.panel, scores["default"], test_index, churned_at, as_of, horizon_ms, data_end)
    users, dates = [k[0] for k in keys], [k[1] for k in keys]
    y = baselines.labels_at(users, dates, churned_at, horizon_ms)
    # a row a model has no score for: the state expired (long gone), risk 1
    ranked = {name: np.array([scores[name].get(k, (1.0,))[0] for k in keys]) for name in MODELS}
    missing = {name: n for name in MODELS if (n := sum(1 for k in keys if k not in scores[name]))}
    simple, about_lr = _baseline_scores(pop, test_index, users, dates, as_of, horizon_ms)
    ranked.update(simple)
    table = {name: {**_ranking(ranked[name], y), **alerts.get(name, {})} for name in SCORERS if name in ranked}
    base = max((k for k in baselines.BASELINES if k in table), key=lambda k: table[k]["roc_auc"] or 0.0)
    trained = max(("trained_labels", "trained_no_labels"), key=lambda k: table[k]["roc_auc"] or 0.0)
    from streams.offline.evaluate import auc_spread

    spread = auc_spread(ranked, y, users, [("default", base), (trained, "logistic_per_type")], reps=BOOTSTRAP_REPS)
    for name in table:
        table[name]["roc_auc_se"] = spread[name]
    timings["baselines_and_metrics_s"] = time.perf_counter() - t0
    result = {
        "about": pop.about, "label": pop.label, "horizon_days": pop.horizon_days, "as_of": pop.as_of,
        "churn_after_for_training": pop.churn_after, "facts": dict(facts), "counts": pop.counts,
        "panel": pop.panel, "rows_judged": len(keys), "rows_churn_within_horizon": int(y.sum()),
        "base_rate": round(float(y.mean()), 4) if len(y) else None, **about_lr,
        "rows_without_a_score": missing, "scorers": table, "auc_difference_se": {k: v for k, v in spread.items() if "-" in k}, "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    result["checks"] = checks(result)
    if "truth" in pop.files:  # after everything else: the oracle reads the table, changes none of it
        t0 = time.perf_counter()
        events_oracle = np.array(populations.fightchurn_event_oracle(
            populations.fightchurn_spec(pop.name, pop.seed), Path(pop.files["truth"]).parent / "fightchurn-out",
            json.loads(Path(pop.files["truth"]).read_text()), test_rows, keys, horizon_ms))
        result["oracle"] = oracle_section(pop.files["truth"], keys, y, ranked, table, horizon_ms, result["base_rate"], events_oracle)
        result["seconds"]["oracle_s"] = round(time.perf_counter() - t0, 1)
    result["seconds"]["total_s"] = round(time.perf_counter() - started, 1)
    return result


def oracle_scores(truth: Mapping[str, Any], keys: Sequence[tuple[str, int]], horizon_ms: int) -> dict[str, np.ndarray]:
    """The oracle's scores of the judged rows from a population's ``truth.json``
    (``benchmarks.populations._fc_truth``): ``oracle_decision`` from the recorded month ends
    (``oracle.window_probability``), ``oracle_at_d`` and ``oracle_last_30d`` as recorded per
    as-of date (0 for a row with no month end in its window: none can end the subscription).

    >>> t = {"a": {"decisions": [[40, 1.0, 0.2, 0.2, True, 0, 1, 9.0, 0.0]], "at_d": [[10, 0.15, 0.3]]}}
    >>> {k: v.round(3).tolist() for k, v in oracle_scores(t, [("a", 10), ("a", 45)], 30).items()}
    {'oracle_decision': [0.2, 0.0], 'oracle_at_d': [0.15, 0.0], 'oracle_last_30d': [0.3, 0.0]}
    """
    out = {k: np.zeros(len(keys)) for k in ("oracle_decision", "oracle_at_d", "oracle_last_30d")}
    at_d = {user: {row[0]: row[1:] for row in t["at_d"]} for user, t in truth.items()}
    for i, (user, day) in enumerate(keys):
        decisions = truth[user]["decisions"]
        out["oracle_decision"][i] = oracle.window_probability([d[0] for d in decisions], [d[3] for d in decisions], day, horizon_ms)
        plug, recent = at_d[user].get(day, (0.0, 0.0))
        out["oracle_at_d"][i], out["oracle_last_30d"][i] = plug, recent
    return out


def oracle_section(truth_path: str, keys: Sequence[tuple[str, int]], y: np.ndarray, ranked: Mapping[str, np.ndarray],
                   table: dict[str, Any], horizon_ms: int, base_rate: float | None, events_oracle: np.ndarray) -> dict[str, Any]:
    """The oracle's rows (added to ``table``) and what they imply for the checks: AUCs with the
    table's bootstrap (same seed, so the same resamples of users: the differences to the table's
    scorers are paired), and the precision of weekly flags at recall ``ORACLE_RECALL`` of every
    scorer on the same rows (``oracle.precision_at_recall``). ``events_oracle``: the scores of
    ``populations.fightchurn_event_oracle`` on the same rows."""
    from streams.offline.evaluate import auc_spread

    truth = json.loads(Path(truth_path).read_text())
    users = [k[0] for k in keys]
    scores = {**oracle_scores(truth, keys, horizon_ms), "oracle_events_at_d": events_oracle}
    lr = "logistic_per_type"
    trained = max(("trained_labels", "trained_no_labels"), key=lambda k: table[k]["roc_auc"] or 0.0)
    both = {**ranked, **scores}
    pairs = [("oracle_decision", "oracle_at_d"), ("oracle_at_d", "oracle_events_at_d"), ("oracle_at_d", lr),
             ("oracle_events_at_d", lr), ("oracle_events_at_d", "default"), ("oracle_events_at_d", trained)]
    spread = auc_spread({k: both[k] for k in {*scores, lr, "default", trained}}, y, users, pairs, reps=BOOTSTRAP_REPS)
    for name, values in scores.items():
        table[name] = {**_ranking(values, y), "roc_auc_se": spread[name]}
    at_recall = {name: oracle.precision_at_recall(both[name], y, users, ORACLE_RECALL) for name in [*SCORERS, *scores] if name in both}
    for v in at_recall.values():
        v["x_base"] = None if v["precision"] is None or not base_rate else round(v["precision"] / base_rate, 2)
    auc = {k: table[k]["roc_auc"] for k in both}
    headroom = {
        "trained_vs_lr_needed": 0.02, "trained_vs_lr_measured": round(auc[trained] - auc[lr], 4),
        "lr_to_oracle_at_d": round(auc["oracle_at_d"] - auc[lr], 4), "lr_to_oracle_events_at_d": round(auc["oracle_events_at_d"] - auc[lr], 4),
        "default_to_oracle_events_at_d": round(auc["oracle_events_at_d"] - auc["default"], 4),
        "best_trained_to_oracle_events_at_d": round(auc["oracle_events_at_d"] - auc[trained], 4), "best_trained": trained,
    }
    return {"about": "benchmarks.oracle", "scorers": list(scores), "auc_difference_se": {k: v for k, v in spread.items() if "-" in k},
            f"precision_at_recall_{ORACLE_RECALL}": at_recall, "headroom": headroom,
            "rows_where_the_simulator_could_end_it": int((scores["oracle_decision"] > 0).sum())}


def checks(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's "done when" per population: measured value, target, met (None: not
    measurable) and the margin: how far the measured figure is on the right side of the target,
    in the check's own unit (AUC; precision in multiples of the base rate; recall; flap rate),
    negative when not met, 0 at the target itself (a strict target, "beats" or "< 0.05", is then
    not met; None: not measurable, e.g. the precision without any churner). Why a number beside the verdict: a verdict
    within a standard error of its target can flip with the seed (``benchmarks.seed_spread``).

    >>> r = {"base_rate": 0.04, "scorers": {"default": {"roc_auc": 0.8, "precision": 0.2, "recall": 0.5, "flap_rate": 0.01},
    ...      "trained_labels": {"roc_auc": 0.81}, "trained_no_labels": {"roc_auc": 0.7}, "events_28d": {"roc_auc": 0.75},
    ...      "days_since_last": {"roc_auc": 0.7}, "logistic_per_type": {"roc_auc": 0.78}}}
    >>> {k: v["met"] for k, v in checks(r).items()}
    {'default_beats_baselines': True, 'trained_beats_lr': True, 'alert_precision': True, 'alert_recall': True, 'flap_rate': True}
    >>> {k: v["margin"] for k, v in checks(r).items()}
    {'default_beats_baselines': 0.02, 'trained_beats_lr': 0.01, 'alert_precision': 1.5, 'alert_recall': 0.1, 'flap_rate': 0.04}
    >>> checks({**r, "base_rate": 0.0})["alert_precision"]  # no churner among the judged rows
    {'measured': None, 'target': '>= 0.0', 'met': None, 'margin': None}
    """
    s = result["scorers"]
    auc = {k: v.get("roc_auc") for k, v in s.items()}
    best_base = max(((auc[k], k) for k in baselines.BASELINES if auc.get(k) is not None), default=(None, None))
    best_trained = max(((auc[k], k) for k in ("trained_labels", "trained_no_labels") if auc.get(k) is not None), default=(None, None))
    d = s["default"]
    base = result.get("base_rate")
    lr = auc.get("logistic_per_type")

    def check(measured: Any, target: str, met: bool | None, margin: float | None) -> dict[str, Any]:
        return {"measured": measured, "target": target, "met": met, "margin": None if met is None else round(margin, 4) + 0.0}  # + 0.0: no -0.0

    se = result.get("auc_difference_se", {})

    def gap(a: str | None, b: str | None) -> str:
        """The difference and its bootstrap standard error, when measured."""
        key = f"{a}-{b}"
        if a is None or b is None or key not in se or auc.get(a) is None or auc.get(b) is None:
            return ""
        return f" (difference {auc[a] - auc[b]:+.3f} +- {se[key]:.3f})"

    out = {
        "default_beats_baselines": check(
            f"{auc['default']} vs {best_base[0]} ({best_base[1]}){gap('default', best_base[1])}", f"> {best_base[0]}",
            None if auc["default"] is None or best_base[0] is None else auc["default"] > best_base[0],
            None if auc["default"] is None or best_base[0] is None else auc["default"] - best_base[0]),
        "trained_beats_lr": check(
            f"{best_trained[0]} ({best_trained[1]}) vs {lr}{gap(best_trained[1], 'logistic_per_type')}",
            f">= {None if lr is None else round(lr + 0.02, 4)}",
            None if best_trained[0] is None or lr is None else best_trained[0] >= lr + 0.02 - 1e-9,
            None if best_trained[0] is None or lr is None else best_trained[0] - lr - 0.02),
        "alert_precision": check(
            None if d.get("precision") is None or not base else f"{d['precision']} = {d['precision'] / base:.2f} x {base}",
            f">= {None if base is None else round(3.5 * base, 4)}" + (" (unreachable: above 1)" if base and 3.5 * base > 1 else ""),
            None if d.get("precision") is None or not base or 3.5 * base > 1 else d["precision"] >= 3.5 * base,
            None if d.get("precision") is None or not base else d["precision"] / base - 3.5),
        "alert_recall": check(d.get("recall"), ">= 0.4", None if d.get("recall") is None else d["recall"] >= 0.4,
                              None if d.get("recall") is None else d["recall"] - 0.4),
        "flap_rate": check(d.get("flap_rate"), "< 0.05", None if d.get("flap_rate") is None else d["flap_rate"] < 0.05,
                           None if d.get("flap_rate") is None else 0.05 - d["flap_rate"]),
    }
    return out


# ---------------------------------------------------------------------------------------------
# The CDNOW check
# ---------------------------------------------------------------------------------------------


def _temperature_auc(scores: Mapping[tuple[str, int], tuple[float, str, float]], users: Sequence[str], again: set[str],
                     cut: int) -> float | None:
    from streams.offline.evaluate import roc_auc

    auc = roc_auc([scores[(u, cut)][2] if (u, cut) in scores else 0.0 for u in users], [u in again for u in users])
    return None if auc is None else round(auc, 4)


def _visit_histories(rows: Sequence[Row], users: Sequence[str], cut: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's (x, t_x, T) on active days before ``cut``, in days, as the state counts them
    (x = distinct UTC days after the first, t_x = first to last event, T = first event to ``cut``)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    days: dict[str, set[int]] = {}
    for user, ts, _, _ in rows:
        if ts < cut:
            first[user] = min(ts, first.get(user, ts))
            last[user] = max(ts, last.get(user, ts))
            days.setdefault(user, set()).add(ts // DAY_MS)
    x = np.array([len(days[u]) - 1 for u in users], dtype=np.float64)
    t_x = np.array([(last[u] - first[u]) / DAY_MS for u in users])
    T = np.array([(cut - first[u]) / DAY_MS for u in users])
    return x, t_x, T


def _lifetimes_reference(rows: Sequence[Row], users: Sequence[str], again: set[str]) -> dict[str, Any]:
    """lifetimes' own BG/NBD fitted on the calibration period (daily periods, as its docs do it):
    expected purchases in the next 39 weeks and P(alive), each as a ranking of "buys again"."""
    import warnings

    import pandas as pd

    from streams.offline.evaluate import roc_auc

    with warnings.catch_warnings():  # lifetimes and pandas warn about each other's versions
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter
        from lifetimes.utils import calibration_and_holdout_data

        frame = pd.DataFrame([(u, pd.Timestamp(ts, unit="ms")) for u, ts, _, _ in rows], columns=["user", "date"])
        cal_end = (pd.Timestamp(populations.CDNOW_HOLDOUT_START) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        obs_end = (pd.Timestamp(populations.CDNOW_END) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        summary = calibration_and_holdout_data(frame, "user", "date", calibration_period_end=cal_end,
                                               observation_period_end=obs_end, freq="D").reindex(list(users))
        fitter = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
        args = (summary["frequency_cal"], summary["recency_cal"], summary["T_cal"])
        expected = fitter.conditional_expected_number_of_purchases_up_to_time(39 * 7, *args)
        alive = fitter.conditional_probability_alive(*args)
    y = [u in again for u in users]

    def auc(values: Any) -> float | None:
        got = roc_auc([float(v) for v in values], y)
        return None if got is None else round(got, 4)

    return {"params_days": {k: round(float(v), 4) for k, v in fitter.params_.items()},
            "expected_purchases_39w_roc_auc": auc(expected), "p_alive_roc_auc": auc(alive)}


def cdnow_check(folder: Path, model: str | None = None) -> dict[str, Any]:
    """Temperature on the whole CDNOW 1/10 sample as of 1997-10-01, as a ranking of "buys again
    in the next 39 weeks" (a user with no row, state expired, ranks last): of the default model
    (the issue's check), and of a model ``churnwatch train`` fits on the calibration period
    (1997-01-01..09-30, default options: BG/NBD on purchases, MBG/NBD on active days by maximum
    likelihood, exactly the data lifetimes fits on), next to lifetimes' own BG/NBD on the same
    period. Diagnostic, not a churnwatch score: P(an active day within the model's horizon)
    (``models.mbgnbd.p_active_within``) with each model's visit parameters."""
    from models import mbgnbd
    from models.model import load_model
    from streams.offline.evaluate import roc_auc
    from streams.timefmt import parse_ts_ms

    folder.mkdir(parents=True, exist_ok=True)
    rows = populations.cdnow_rows("CDNOW_sample.txt")
    cut = parse_ts_ms(populations.CDNOW_HOLDOUT_START)
    events = folder / "cdnow_sample_events.csv"
    with open(events, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("user_id", "ts", "event_type", "amount"))
        for user, ts, kind, amount in rows:
            if ts < cut:
                w.writerow((user, populations.format_ts(ts), kind, f"{amount:.2f}"))
    log = folder / "commands.log"
    log.write_text("")
    trained = folder / "cdnow_trained.json"
    _cli(["train", "--events", str(events), "--out", str(trained), *(["--base-model", model] if model else [])], log)
    users = sorted({r[0] for r in rows if r[1] < cut})
    again = {r[0] for r in rows if r[1] >= cut} & set(users)
    x, t_x, T = _visit_histories(rows, users, cut)
    result: dict[str, Any] = {"customers": len(users), "buy_again": len(again)}
    for name, path in (("default", model), ("trained", str(trained))):
        out = folder / f"cdnow_sample_scores_{name}.csv"
        _cli(["backtest", "--events", str(events), "--as-of", populations.CDNOW_HOLDOUT_START, "--out", str(out), "--no-progress",
              *(["--model", path] if path else [])], log)
        scores = _read_scores(out)
        m = load_model(path) if path else load_model()
        back = [mbgnbd.p_active_within(m.compiled.visits, *h, m.horizon_days) for h in zip(x, t_x, T)]
        back_auc = roc_auc(back, [u in again for u in users])
        result[name] = {"temperature_roc_auc": _temperature_auc(scores, users, again, cut),
                        "no_row": sum(1 for u in users if (u, cut) not in scores),
                        "purchase_bgnbd_days": m.bgnbd, "visit_mbgnbd_days": m.compiled.visits.to_dict(),
                        "horizon_days": m.horizon_days,
                        "p_active_within_horizon_roc_auc": None if back_auc is None else round(back_auc, 4)}
    result["lifetimes"] = _lifetimes_reference(rows, users, again)
    auc = result["default"]["temperature_roc_auc"]
    result.update({"temperature_roc_auc": auc, "target": f">= {CDNOW_CHECK_AUC} (issue: 0.773)",
                   "met": None if auc is None else auc >= CDNOW_CHECK_AUC})
    return result


# ---------------------------------------------------------------------------------------------
# Run, render
# ---------------------------------------------------------------------------------------------


def run(work: Path | None = None, jobs: int = 2, names: Sequence[str] | None = None, model: str | None = None,
        write: bool = True) -> dict[str, Any]:
    """Build (or reuse) the populations, evaluate every scorer, write quality.json and QUALITY.md."""
    from benchmarks.observe import load_average

    work = work or ROOT / ".churnwatch" / "quality"
    started = time.perf_counter()
    load_before = load_average()
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "model": model or "shipped default",
                               "machine": f"{os.cpu_count()} cores", "jobs": jobs, "populations": {}}
    for pop, facts, test_rows in populations.build(work, jobs, names):
        t0 = time.perf_counter()
        print(f"quality: {pop.name}: {pop.counts}", flush=True)
        results["populations"][pop.name] = evaluate_population(pop, facts, test_rows, work / pop.name / "run", model)
        print(f"quality: {pop.name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    if names is None or "cdnow" in names:
        results["cdnow_check"] = cdnow_check(work / "cdnow-check", model)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average"] = f"{load_before} -> {load_average()}"
    if write:
        JSON_OUT.write_text(json.dumps(results, indent=2, default=str) + "\n")
        write_markdown(results)
    return results


def write_markdown(results: Mapping[str, Any]) -> None:
    """QUALITY.md: the main table (:func:`render`), then the section of ``benchmarks.seed_spread``
    (the same checks on other seeds) if it has been run: its own figures, with the time of the
    main table's run it was compared to."""
    from benchmarks import seed_spread

    text = render(results)
    if seed_spread.JSON_OUT.exists():
        text += "\n" + "\n".join(seed_spread.render(json.loads(seed_spread.JSON_OUT.read_text())))
    MD_OUT.write_text(text)


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def verdict(met: bool | None) -> str:
    return "not measurable" if met is None else ("met" if met else "**not met**")  # None: no alerts, or a target above 1


def _render_cdnow(cd: Mapping[str, Any]) -> list[str]:
    """The CDNOW check's section: both models' temperature next to lifetimes' own BG/NBD."""
    d, t, lt = cd["default"], cd["trained"], cd["lifetimes"]
    return [
        "## CDNOW check: \"buys again in the next 39 weeks\"", "",
        f"All {cd['customers']} customers of the 1/10 sample, scored as of 1997-10-01 from their purchases before it; "
        f"{cd['buy_again']} buy again from 1997-10-01 to 1998-06-30. The trained model is `churnwatch train` with default options "
        "on the calibration period 1997-01-01..09-30, the data lifetimes fits on (it fits BG/NBD on purchases and MBG/NBD on "
        "active days by maximum likelihood and stores them in the model file; the default's priors are fitted on nothing). "
        "A customer without a row (state expired) ranks last.", "",
        "| scorer | ROC AUC | parameters (days) |", "|---|---|---|",
        f"| default model: temperature (= P(an active day within the horizon), unfitted visit prior) | {_f(d['temperature_roc_auc'], 4)} | visits {d['visit_mbgnbd_days']}; "
        f"{d['no_row']} customers without a row |",
        f"| trained model: temperature (= min of P(an active day / a purchase within the horizon), uncalibrated) | {_f(t['temperature_roc_auc'], 4)} | "
        f"visits {t['visit_mbgnbd_days']}, purchases {t['purchase_bgnbd_days']}; {t['no_row']} without a row |",
        f"| lifetimes BG/NBD: expected purchases in the next 39 weeks | {_f(lt['expected_purchases_39w_roc_auc'], 4)} | {lt['params_days']} |",
        f"| lifetimes BG/NBD: P(alive) | {_f(lt['p_alive_roc_auc'], 4)} | same |",
        f"| diagnostic, not a score: P(an active day within {d['horizon_days']:g} days), default's visit prior | "
        f"{_f(d['p_active_within_horizon_roc_auc'], 4)} | `models.mbgnbd.p_active_within` |",
        f"| diagnostic, not a score: the same with the trained model's visit parameters | {_f(t['p_active_within_horizon_roc_auc'], 4)} | |",
        "",
        "Temperature is P(back within the model's horizon) = P(alive) x P(the next one falls within it | alive), not P(alive) "
        "alone: \"buys again within 39 weeks\" also needs the rate, which is why lifetimes' own P(alive) ranks it far below "
        "its expected purchases. The diagnostic rows are the visit part alone, computed outside the engine.", "",
    ]


def _render_oracle(pop: Mapping[str, Any]) -> list[str]:
    """A population's oracle: precision at recall 0.4 of every scorer on the judged rows, and the
    headroom the AUC checks have under the ceiling."""
    o = pop["oracle"]
    at = o[f"precision_at_recall_{ORACLE_RECALL}"]
    h, se, s = o["headroom"], o["auc_difference_se"], pop["scorers"]
    lr, trained = "logistic_per_type", h["best_trained"]
    lines = ["", f"**Oracle** (`benchmarks/oracle.py`): the simulator's own churn probabilities as scores on the same rows. "
             f"Precision of weekly flags at the highest threshold that flags {ORACLE_RECALL:g} of the judged churners in the "
             f"{pop['horizon_days']} days before they leave (every scorer, same rows; the alert figures above count alert "
             "episodes instead):", "",
             "| scorer | ROC AUC | precision at recall 0.4 (x base) | recall reached | rows flagged |", "|---|---|---|---|---|"]
    for name in [*ORACLES, "oracle_last_30d", *SCORERS]:
        if name not in at:  # a scorer this population has not (the regression without statements)
            continue
        a = at[name]
        label = ORACLE_LABELS.get(name) or LABELS[name]
        lines.append(f"| {label} | {_f(s[name]['roc_auc'])} | {_f(a['precision'])} ({_f(a['x_base'], 1)}x) | {_f(a['recall'])} | "
                     f"{a['flagged_rows']:,} |")
    gap = h["lr_to_oracle_events_at_d"]
    need = f"{h['trained_vs_lr_needed'] / gap:.0%}" if gap > 0 else "more than all"

    def diff(a: str, b: str) -> str:
        return f"{s[a]['roc_auc'] - s[b]['roc_auc']:+.3f} +- {se[f'{a}-{b}']:.3f}"

    lines += ["", f"Headroom: the oracle from the events at d is {diff('oracle_events_at_d', lr)} AUC above the per-type regression, "
              f"{diff('oracle_events_at_d', 'default')} above the default and {diff('oracle_events_at_d', trained)} above the best "
              f"trained model ({LABELS[trained]}, itself {h['trained_vs_lr_measured']:+.3f} over the regression): \"trained >= LR + 0.02\" "
              f"needs {need} of the headroom over the regression. Knowing the hidden propensity adds {diff('oracle_at_d', 'oracle_events_at_d')}; "
              f"knowing the month's events as well {diff('oracle_decision', 'oracle_at_d')}."]
    return lines


def render(results: Mapping[str, Any]) -> str:
    """QUALITY.md: the table per population, the checks next to the figures."""
    lines = ["# Quality on data we did not design", "",
             "Written by `make quality` (`python -m benchmarks.run --only quality`); do not edit by hand. "
             "How it is measured: `benchmarks/quality.py`; the populations: `benchmarks/populations.py`.", "",
             f"Run {results['when']}, model: {results['model']}, {results['machine']}, {results['jobs']} processes, "
             f"{results['seconds']:.0f} s in all (load average {results.get('load_average', '?')}; the machine is shared).", "",
             "Every population is split by user (hash of the id): models are trained on one half, and every scorer is "
             "judged on the other half. AUC and lift are on the same rows for every scorer, positive when the user is gone "
             "by the end of the horizon, horizon inside the data: for the subscription populations (fightchurn) every user "
             "still subscribed at the as-of date (panel \"subscribed\"); elsewhere the (user, as-of) rows the default model's "
             "backtest judges, users it does not report churned (panel \"open\"). Alert figures come from each model's own backtest of the judged "
             "half: precision = at-risk alerts followed by churn within the horizon; recall = churners flagged before "
             "churning; lead = days from the first alert of the run-up to the churn; flap = at-risk alerts within 14 days "
             "after a recovered alert of the same user. Baselines send no alerts; the regression baseline is fitted on the "
             "training half's rows of the same panel (on fightchurn: the users still subscribed, as `train --labels` fits). "
             "The fightchurn files also carry the billing system's statements (a `subscription` row per subscription period, "
             "at its start: plan, MRR, end of the paid period): the two count baselines count activity only (a statement "
             "is not usage), the regression takes the statements' counts as one more type (the file the models read) and "
             "is also shown without them; the best simple baseline of the checks is the best of all. "
             "AUC +- its standard error, and the checks' "
             f"AUC differences +- theirs, come from a bootstrap over users ({BOOTSTRAP_REPS} resamples, the rows of a user "
             "together): a gap smaller than about twice its error is not a measured difference. "
             "On the fightchurn populations the table also carries an **oracle**: the churn probability the simulator itself "
             "used (it decides churn at each month end by a coin of probability f(utility of the customer's activity, hidden "
             "satisfaction propensity, price)), as a score of each judged row: \"oracle\" with the month ends inside the label "
             "window as simulated (it knows the month's events: no model can reach it), \"oracle at d\" with the same function "
             "applied to what exists at the as-of date (cumulative counts before it plus those the customer's true rates make "
             "expected, true propensity and price), \"oracle from the events at d\" the same with the hidden propensity "
             "inferred (the population's propensities weighted by the likelihood that the user survived its month ends so far) "
             "and the user's own rate so far: what a perfect model of the simulator "
             "could know from the events, the price and the renewal dates. Its AUC is the ceiling "
             "of the checks' AUC margins; it sends no alerts, so the alert columns stay empty and its section compares "
             "precisions at recall 0.4 of weekly flags.", "",
             "## Done when (issue 11)", "", "| population | check | measured | target | verdict |", "|---|---|---|---|---|"]
    for name, pop in results["populations"].items():
        for key, words in CHECKS:
            c = pop["checks"][key]
            lines.append(f"| {name} | {words} | {c['measured']} | {c['target']} | {verdict(c['met'])} |")
    cd = results.get("cdnow_check")
    if cd:
        lines.append(f"| cdnow (1/10 sample, all {cd['customers']} customers) | default temperature as of 1997-10-01 ranks "
                     f"\"buys again in 39 weeks\" | AUC {cd['temperature_roc_auc']} | {cd['target']} | {verdict(cd['met'])} |")
        t = cd.get("trained", {}).get("temperature_roc_auc")
        if "trained" in cd:
            lines.append(f"| cdnow (same) | temperature of the model trained on the calibration period ranks it | AUC {t} | "
                         f"{cd['target']} | {verdict(None if t is None else t >= CDNOW_CHECK_AUC)} |")
    lines.append("")
    if cd and "trained" in cd:
        lines += _render_cdnow(cd)
    for name, pop in results["populations"].items():
        c = pop["counts"]
        lines += [f"## {name}", "", f"{pop['about']}.", "",
                  f"Churned: {pop['label']}. Horizon {pop['horizon_days']} days; as-of dates {pop['as_of']}; the model trained "
                  f"without labels uses `--churn-after {pop['churn_after_for_training']}`.", "",
                  f"Judged half: {c.get('users_test')} users ({c.get('churners_test')} churn), {c.get('events_test'):,} events; "
                  f"training half: {c.get('users_train')} users ({c.get('churners_train')} churn), {c.get('events_train'):,} events. "
                  f"Rows ranked (panel \"{pop.get('panel', 'open')}\"): {pop['rows_judged']:,}, of which {pop['rows_churn_within_horizon']:,} churn within the horizon "
                  f"(base rate {pop['base_rate']}). Facts: {pop['facts']}.", "",
                  "| scorer | ROC AUC | top-decile lift | alert precision (x base) | recall before churn | median lead (d) | "
                  "at-risk alerts / user / month | flap rate |", "|---|---|---|---|---|---|---|---|"]
        for key in SCORERS:
            if key not in pop["scorers"]:  # the regression without statements, on a file without them
                continue
            s = pop["scorers"][key]
            prec = s.get("precision")
            ratio = f" ({prec / pop['base_rate']:.1f}x)" if prec is not None and pop["base_rate"] else ""
            auc_se = f" +- {s['roc_auc_se']:.3f}" if s.get("roc_auc_se") is not None else ""
            lines.append(f"| {LABELS[key]} | {_f(s['roc_auc'])}{auc_se} | {_f(s['top_decile_lift'], 2)} | {_f(prec)}{ratio} | "
                         f"{_f(s.get('recall'))} | {_f(s.get('median_lead_days'), 1)} | {_f(s.get('at_risk_per_user_month'))} | "
                         f"{_f(s.get('flap_rate'))} |")
        for key in ORACLES:
            if key in pop["scorers"]:
                s = pop["scorers"][key]
                lines.append(f"| {ORACLE_LABELS[key]} | {_f(s['roc_auc'])} +- {s['roc_auc_se']:.3f} | {_f(s['top_decile_lift'], 2)} | "
                             "- | - | - | - | - |")
        if pop.get("rows_without_a_score"):
            lines += ["", f"Rows with no score (state expired; counted as risk 1): {pop['rows_without_a_score']}."]
        if pop.get("oracle"):
            lines += _render_oracle(pop)
        lines += ["", f"Seconds: {pop['seconds']}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="benchmarks.quality", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated populations (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the fightchurn simulation (default 2)")
    ap.add_argument("--model", default=None, help="model file to judge as the default, and the trained models' --base-model (default: the shipped one)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or None
    results = run(jobs=args.jobs, names=names, model=args.model, write=not args.no_write)
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
