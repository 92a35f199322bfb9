"""The renewal gate end to end on the quality harness's cached fightchurn-tiers population.

Why: the populations' ``period_end`` field comes with the history reader and the simulators
(other branches); until then this derives the statements a billing system would send from the
simulator's own truth (``truth.json``: each month-end decision, whether it was a renewal, the
bill period) and judges the same rows as the quality table (the "subscribed" panel of the test
half, 30-day horizon, weekly as-of dates), with and without the statements, for the shipped
default and for models trained on the train half with and without them (``--train``, about
4 minutes). Needs ``make quality`` to have built the population once. Figures:
docs/SCORES.md, "Renewal: the exit opportunity".

``python -m benchmarks.renewal_check [--train] [--work DIR]``
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import datetime as dt
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from models.engine import advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.risk import exit_opens_s
from models.scoring import risk_at
from models.state import DAY_S, UserState
from models.subscription import Subscription
from streams.offline.evaluate import roc_auc
from streams.offline.history import read_events_csv, read_labels_csv

__all__ = ["statements", "main"]

ROOT = Path(__file__).resolve().parents[1]
DAY_MS = 86_400_000
HORIZON_MS = 30 * DAY_MS


def _add_months(ms: int, n: int) -> int:
    d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    m = d.month - 1 + n
    y, m = d.year + m // 12, m % 12 + 1
    return int(dt.datetime(y, m, min(d.day, calendar.monthrange(y, m)[1]), tzinfo=dt.timezone.utc).timestamp() * 1000)


def statements(user: str, first_ms: int, decisions: Sequence[Sequence[Any]], churned: int | None) -> list[Event]:
    """What a billing system would state: at the first event the first period's end (an annual
    plan: 12 months from the start month; a monthly one: the first renewal decision); at each
    renewal decision the customer passed, that time + the bill period in force after it (the
    next decision's); at the one it churned at, a cancellation. A decision is [time ms, utility,
    P(intent), hazard, renewal, intents, bill period months, mrr, discount]
    (benchmarks.populations)."""
    out: list[Event] = []
    if not decisions:
        return out
    start = dt.datetime.fromtimestamp(first_ms / 1000, tz=dt.timezone.utc)
    start_month = int(dt.datetime(start.year, start.month, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    renewals = [d for d in decisions if d[4]]
    first_end = _add_months(start_month, 12) if int(decisions[0][6]) == 12 else (int(renewals[0][0]) if renewals else 0)
    if first_end:
        out.append(Event(user, first_ms, "subscription", "s-start", 0.0, "", Subscription("active", "p", 100, 0, first_end)))
    for k, d in enumerate(decisions):
        if not d[4]:
            continue
        t = int(d[0])
        if churned is not None and t >= churned:
            out.append(Event(user, t, "subscription", f"s{k:03d}", 0.0, "", Subscription("cancelled", "p", 0, 0, 0)))
            break
        period = int(decisions[k + 1][6]) if k + 1 < len(decisions) else int(d[6])
        out.append(Event(user, t, "subscription", f"s{k:03d}", 0.0, "", Subscription("active", "p", 100, 0, _add_months(t, period))))
    return out


def _population(folder: Path, half: str) -> tuple[dict[str, list[Event]], dict[str, int], dict[str, list[Event]]]:
    events = read_events_csv(folder / f"events_{half}.csv")
    labels = read_labels_csv(folder / f"labels_{half}.csv")
    truth = json.loads((folder / "truth.json").read_text())
    per: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        per[e.user_id].append(e)
    stated = {u: statements(u, min(e.ts_ms for e in evs), truth[u]["decisions"], labels.get(u)) for u, evs in per.items()}
    return per, labels, stated


def _risks(per: dict[str, list[Event]], stated: dict[str, list[Event]] | None, dates: Sequence[int],
           model: ChurnModel) -> tuple[dict[tuple[str, int], float], int]:
    """Risk at every as-of date as the backtest replays it; and the rows whose exit is closed."""
    out: dict[tuple[str, int], float] = {}
    closed = 0
    for u, evs in per.items():
        every = sorted(evs + (stated[u] if stated else []), key=lambda e: (e.ts_ms, e.event_id))
        ts = [e.ts_ms for e in every]
        st: UserState | None = None
        pos = 0
        for d in dates:
            end = bisect.bisect_left(ts, d, lo=pos)
            if end == 0:
                continue
            st = advance(u, st, every[pos:end], d, model).state
            pos = end
            out[(u, d)] = risk_at(st, d // 1000, model)
            closed += d // 1000 < exit_opens_s(st.period_end_day * DAY_S, model.horizon_days)  # models.risk: one rule
    return out, closed


def _train(folder: Path) -> list[tuple[str, ChurnModel]]:
    from streams.offline.train import train

    per, labels, stated = _population(folder, "train")
    plain = [e for evs in per.values() for e in evs]
    extra = [e for s in stated.values() for e in s]
    out = []
    for with_s in (False, True):
        for kind, kw in (("--labels", {"labels_ms": labels}), ("--churn-after 30d", {"churn_after_ms": 30 * DAY_MS})):
            t0 = time.perf_counter()
            model, report = train(plain + extra if with_s else plain, horizon_ms=HORIZON_MS, **kw)  # type: ignore[arg-type]
            print(f"trained {kind}, statements {'in' if with_s else 'not in'} training: {time.perf_counter() - t0:.0f} s, "
                  f"{report['snapshots']} snapshots, {report['snapshots_exit_closed']} with the exit closed", flush=True)
            out.append((f"trained {kind} ({'with' if with_s else 'without'} statements)", model))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.renewal_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="also train on the train half, with and without statements")
    ap.add_argument("--work", default=str(ROOT / ".churnwatch" / "quality" / "fightchurn-tiers"))
    args = ap.parse_args(argv)
    folder = Path(args.work)
    manifest = json.loads((folder / "manifest.json").read_text())["population"]
    first, last = (int(calendar.timegm(time.strptime(x, "%Y-%m-%d")) * 1000) for x in manifest["as_of"].split("/")[:2])
    dates = list(range(first, last + 1, 7 * DAY_MS))
    per, labels, stated = _population(folder, "test")
    rows = [(u, d) for u in sorted(per) for d in dates
            if d + HORIZON_MS <= manifest["end_ms"] and min(e.ts_ms for e in per[u]) < d and labels.get(u, d + 1) > d]
    y = [d < labels.get(u, 0) <= d + HORIZON_MS for u, d in rows]
    print(f"{len(rows)} rows (the subscribed panel), churn rate {sum(y) / len(y):.4f}", flush=True)
    models = [("shipped default", load_model())] + (_train(folder) if args.train else [])
    for name, model in models:
        aucs = []
        for with_s in (False, True):
            risk, closed = _risks(per, stated if with_s else None, dates, model)
            aucs.append(roc_auc([risk.get(k, 1.0) for k in rows], y))
        print(f"{name}: ROC AUC without statements {aucs[0]:.4f}, with {aucs[1]:.4f} "
              f"({closed} scored rows with the exit closed)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
