"""How far the default's own effects can go: best in-sample weights on the quality table's judged rows.

Why: the quality table's check "the default beats the best simple baseline" fails on
fightchurn-socialnet7 and simulate-mix. Before changing any constant of the default one must
know whether *any* weights of its documented effects could pass there, or whether the gap is
information the default does not have (which event types mean leaving). This study answers it
with an optimistic bound: logistic regressions fitted **on the judged rows themselves** (in
sample, so higher than any honest model), never used as a score:

- the default's six effects with the documented signs (weights >= 0 on each effect's risk
  direction; the default's own weights are one point of this family);
- the same six with free signs;
- all sixteen product-agnostic features of models.risk.FEATURES, free signs (no per-type slot).

Rows and labels: the judged half's snapshots at the population's as-of dates through the same
``advance``/``features_at`` code as train and backtest (``streams.offline.train.build_snapshots``
with the shipped default), users the default does not call churned; for the subscription
populations only users not yet gone (the table's "subscribed" panel), elsewhere all (its "open"
panel). The shipped default's AUC on these rows equals the table's. Run after ``make quality``
(it reads the cached populations): ``python -m benchmarks.default_bound [--only a,b]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["DEFAULT_EFFECTS", "bound", "main"]

ROOT = Path(__file__).resolve().parents[1]
DAY_MS = 86_400_000
#: The default's effects (models.risk.PRIOR_WEIGHTS) and their documented direction (+1: more
#: of the feature, more risk).
DEFAULT_EFFECTS = {"visit_overdue_log": 1, "inactive_28d": 1, "decline": 1, "decline_long": 1, "narrowness": 1, "tenure_log": -1}


def _rows(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str], Any]:
    """(features, labels, feature names, default model) of the judged half's rows (module docstring)."""
    from models.model import load_model
    from streams.cli.argtypes import parse_as_of
    from streams.offline.history import read_events_csv, read_labels_csv
    from streams.offline.train import _by_user, build_snapshots

    pop = json.loads((folder / "manifest.json").read_text())["population"]
    model = load_model()
    events = read_events_csv(pop["files"]["events_test"])
    churned = read_labels_csv(pop["files"]["labels_test"])
    horizon = pop["horizon_days"] * DAY_MS
    end = max(ev.ts_ms for ev in events)
    dates = [d for d in parse_as_of(pop["as_of"]) if d + horizon <= end]
    snaps = build_snapshots(_by_user(events), dates, horizon, {u: [t] for u, t in churned.items()}, model)
    X, y, gone = np.array(snaps.X), np.array(snaps.y), np.array(snaps.gone) == 1
    keep = ~gone if pop["panel"] == "subscribed" else np.ones(y.size, dtype=bool)
    return X[keep], y[keep], list(model.compiled.features), model


def _fit_auc(X: np.ndarray, y: np.ndarray, signs: Sequence[int] | None) -> tuple[float, list[float]]:
    """In-sample AUC of a logistic fit (weights times ``signs`` >= 0 when given) and its weights per sd."""
    from models.risk import LogisticRisk
    from streams.offline.evaluate import roc_auc

    Z = X * np.array(signs) if signs is not None else X
    names = tuple(f"x{j}" for j in range(X.shape[1]))
    fit = LogisticRisk(names, nonnegative=names if signs is not None else (), l2=1e-4).fit(Z, y.astype(np.float64))
    auc = roc_auc(fit.predict_proba(Z).tolist(), (y == 1).tolist())
    per_sd = [fit.weights[n] * float(s) * float(sd) for n, s, sd in zip(names, signs or [1] * len(names), X.std(axis=0))]
    return round(float(auc or 0.0), 4), [round(w, 2) for w in per_sd]


def bound(folder: Path) -> dict[str, Any]:
    """The study of one population (module docstring)."""
    from models.risk import FEATURES, churn_risk
    from streams.offline.evaluate import roc_auc

    X, y, names, model = _rows(folder)
    cols = [names.index(n) for n in DEFAULT_EFFECTS]
    cool = names.index("cooling")
    shipped = [churn_risk(row, 1.0 - row[cool], model) for row in X.tolist()]
    signs = list(DEFAULT_EFFECTS.values())
    documented, weights = _fit_auc(X[:, cols], y, signs)
    free, free_weights = _fit_auc(X[:, cols], y, None)
    generic, _ = _fit_auc(X[:, [names.index(n) for n in FEATURES]], y, None)
    single = {n: round(float(roc_auc((X[:, names.index(n)] * s).tolist(), (y == 1).tolist()) or 0.0), 4) for n, s in DEFAULT_EFFECTS.items()}
    sd = X[:, cols].std(axis=0)
    return {
        "rows": int(y.size), "churn_rows": int(y.sum()),
        "shipped_default_auc": round(float(roc_auc(shipped, (y == 1).tolist()) or 0.0), 4),
        "shipped_weights_per_sd": {n: round(model.risk_weights.get(n, 0.0) * float(s), 2) for n, s in zip(DEFAULT_EFFECTS, sd)},
        "single_effect_auc": single,
        "in_sample_documented_signs_auc": documented, "in_sample_documented_signs_weights_per_sd": dict(zip(DEFAULT_EFFECTS, weights)),
        "in_sample_free_signs_auc": free, "in_sample_free_signs_weights_per_sd": dict(zip(DEFAULT_EFFECTS, free_weights)),
        "in_sample_16_generic_features_auc": generic,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.default_bound", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="fightchurn-socialnet7,simulate-mix,fightchurn-tiers", help="comma-separated populations")
    ap.add_argument("--work", default=str(ROOT / ".churnwatch" / "quality"), help="the quality table's population folder")
    args = ap.parse_args(argv)
    out = {name: bound(Path(args.work) / name) for name in args.only.split(",") if name}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
