"""Where at-risk alerts go right and wrong: episodes by persona, trigger, stage, risk and rhythm.

A diagnostic, not a score (the scores are ``benchmarks.quality``): it replays a labelled
population with the stream's own code (``streams.offline.replay.replay_users``, one process),
keeps every at-risk and recovered alert whole (scores, reasons, signals), and judges each
at-risk episode opened in the as-of window exactly as ``streams.offline.evaluate`` does
(``alert_outcomes``: right / wrong / unknown; raised after the churn). Then it counts the
episodes by one facet at a time, so a reader sees which alerts are wrong and why: which kind of
user (the simulator's persona, or the population's channel), which fact led the alert (its first
reason), the stage and the risk it opened at, the user's age and rhythm, and whether it re-opened
after a "recovered".

    python -m benchmarks.alert_breakdown --population simulate-mix   # a cached quality population
    python -m benchmarks.alert_breakdown --demo                      # the demo's simulated users
    python -m benchmarks.alert_breakdown --events E.csv --labels L.csv --as-of 2026-02-05/2026-05-28/7d
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from models.engine import Alert
from models.model import ChurnModel, load_model
from models.state import DAY_S
from streams.offline.evaluate import FLAP_QUIET_DAYS, AlertEpisode, Labels, _panel_collector, alert_outcomes, evaluate, read_labels
from streams.offline.history import read_events_csv
from streams.offline.replay import Replay, ScoreRow, replay_users

__all__ = ["Episode", "FACETS", "breakdown", "episodes", "render", "replay_alerts", "trigger"]

DAY_MS = DAY_S * 1000
ROOT = Path(__file__).resolve().parents[1]

#: First words of each reason (models.reasons) -> the fact that led the alert.
_TRIGGERS: tuple[tuple[str, str], ...] = (
    (r"^cancelled", "cancel"),
    (r"^no (visit|return) for", "silence past rhythm"),
    (r"^usual (re-order|\S+) (besides the subscription )?every (day|\d+ days), none for", "purchase overdue"),  # or the own purchase name (QA22b F10)
    (r" down \d+% against", "decline vs baseline"),
    (r"^(only about \d+ events? (in recent weeks|lately|in recent months)|fewer than 1 event a (4-week period|week|3-month period) lately"
     r"|no events (in recent weeks|lately|in recent months))", "low activity"),
    (r"^uses \d+ ", "narrow use"),
    (r"^chance of", "cooling (temperature)"),
    (r"in recent weeks \(decayed count, 4-week mean life\)$|a 4-week period lately$", "negative feedback / leaving sign"),
    (r"^new user", "new user"),
    (r"^came back", "came back"),
)


def trigger(reason: str) -> str:
    """The kind of fact a reason states (its models.reasons wording), "other" if unknown.

    >>> trigger("no visit for 2.5x the usual interval of 3.0 days"), trigger("recent activity (1-week decayed) down 70% against the user's 4-week baseline")
    ('silence past rhythm', 'decline vs baseline')
    """
    for pattern, name in _TRIGGERS:
        if re.search(pattern, reason):
            return name
    return "other"


@dataclass(frozen=True, slots=True)
class Episode:
    """One at-risk episode: the alert that opened it, when it closed, the user's previous
    "recovered" (if any) and its outcome as ``evaluate`` judges it."""

    user_id: str
    persona: str
    opened: Alert
    closed_ms: int | None
    previous_recovered_ms: int | None
    outcome: str  # right / wrong / unknown / after churn
    churned_at_ms: int | None


def replay_alerts(events: Sequence, dates: Sequence[int], model: ChurnModel, labels: Labels,
                  horizon_ms: int) -> tuple[Replay, dict[str, list[Alert]], dict[str, Any]]:
    """The stream's alerts of ``events`` (sorted by EVENT_ORDER) replayed to each of ``dates``:
    the Replay (as the backtest has it), every at-risk/recovered alert of each user, whole, and
    the backtest's own metrics (``evaluate``: precision, recall, alerts per user-month, flaps)."""
    result = Replay()
    kept: dict[str, list[Alert]] = {}

    def on_alerts(_i: int, got: list[tuple[str, list[Alert]]]) -> None:
        for user, alerts in got:
            kept.setdefault(user, []).extend(a for a in alerts if a.kind != "stage_changed")

    result.n_events = len(events)
    result.data_end_ms = max((e.ts_ms for e in events), default=0)
    panels, collect = _panel_collector(labels, horizon_ms, result.data_end_ms)

    def on_rows(_i: int, rows: list[ScoreRow]) -> None:
        for row in rows:
            collect(row)

    replay_users(events, dates, model, result, on_rows, on_alerts)
    return result, kept, evaluate(panels, result, labels, dates, horizon_ms)


def episodes(alerts: Mapping[str, list[Alert]], labels: Labels, first_ms: int, last_ms: int, horizon_ms: int,
             known_until_ms: int) -> list[Episode]:
    """At-risk episodes opened in [first_ms, last_ms], each judged by ``evaluate.alert_outcomes``."""
    out: list[Episode] = []
    for user, mine in alerts.items():
        churned = labels.churned_at_ms.get(user)
        opened: Alert | None = None
        recovered: int | None = None
        before: int | None = None
        spans: list[tuple[Alert, int | None, int | None]] = []
        for a in mine:
            if a.kind == "at_risk" and opened is None:
                opened, before = a, recovered
            elif a.kind == "recovered" and opened is not None:
                spans.append((opened, a.event_time_ms, before))
                opened, recovered = None, a.event_time_ms
        if opened is not None:
            spans.append((opened, None, before))
        for alert, closed, prev in spans:
            if not first_ms <= alert.event_time_ms <= last_ms:
                continue
            if churned is not None and alert.event_time_ms >= churned:
                outcome = "after churn"
            else:
                r, w, _ = alert_outcomes([AlertEpisode(alert.event_time_ms, closed)], churned, horizon_ms, known_until_ms)
                outcome = "right" if r else "wrong" if w else "unknown"
            out.append(Episode(user, labels.persona.get(user, ""), alert, closed, prev, outcome, churned))
    return out


def _band(x: float, edges: Sequence[float], unit: str = "") -> str:
    for lo, hi in zip(edges, edges[1:]):
        if x < hi:
            return f"{lo:g}-{hi:g}{unit}"
    return f">= {edges[-1]:g}{unit}"


def _cycle(ep: Episode) -> str:
    if ep.previous_recovered_ms is None:
        return "first episode"
    days = (ep.opened.event_time_ms - ep.previous_recovered_ms) / DAY_MS
    return _band(days, (0, 14, 21, 45, 90), " d after recovered")


def _lead(ep: Episode) -> str:
    if ep.churned_at_ms is None:
        return "never churns"
    return _band((ep.churned_at_ms - ep.opened.event_time_ms) / DAY_MS, (-1e9, 0, 30, 60, 120), " d to churn").replace("-1e+09-0", "< 0")


def _signals(ep: Episode) -> object:
    sig = ep.opened.scores.signals
    if sig is None:  # pragma: no cover - alerts always carry them
        raise ValueError("alert without signals")
    return sig


#: Facet name -> the value of one episode.
FACETS: dict[str, Callable[[Episode], str]] = {
    "persona": lambda ep: ep.persona or "-",
    "trigger (first reason)": lambda ep: trigger(ep.opened.scores.reasons[0]) if ep.opened.scores.reasons else "none",
    "stage at alert": lambda ep: ep.opened.scores.stage,
    "risk at alert": lambda ep: _band(ep.opened.scores.risk, (0.6, 0.65, 0.7, 0.8, 0.9)),
    "age at alert": lambda ep: _band(_signals(ep).age_days, (0, 3, 7, 14, 30, 60), " d"),  # type: ignore[attr-defined]
    "active days at alert": lambda ep: _band(_signals(ep).active_days, (1, 2, 3, 5, 10, 20)),  # type: ignore[attr-defined]
    "silence / usual interval": lambda ep: _band(_signals(ep).visit_overdue, (0, 1, 1.5, 2, 3, 5)),  # type: ignore[attr-defined]
    "usual interval": lambda ep: _band(_signals(ep).visit_gap_days, (0, 2, 4, 7, 14, 30), " d"),  # type: ignore[attr-defined]
    "7-day / 4-week rate": lambda ep: _band(_signals(ep).trend, (0, 0.25, 0.5, 0.75, 1.0, 1.5)),  # type: ignore[attr-defined]
    "buyer": lambda ep: "buyer" if _signals(ep).n_purchases else "no purchase",  # type: ignore[attr-defined]
    "cycle": _cycle,
    "episode length": lambda ep: "still open" if ep.closed_ms is None else _band((ep.closed_ms - ep.opened.event_time_ms) / DAY_MS, (0, 1, 3, 7, 14, 30), " d"),
    "churn after alert": _lead,
}

_OUTCOMES = ("right", "wrong", "unknown", "after churn")


def breakdown(eps: Iterable[Episode], facet: Callable[[Episode], str]) -> list[dict[str, object]]:
    """Per value of ``facet``: episodes, each outcome, precision = right / (right + wrong)."""
    table: dict[str, dict[str, int]] = {}
    for ep in eps:
        row = table.setdefault(facet(ep), {k: 0 for k in _OUTCOMES})
        row[ep.outcome] += 1
    out: list[dict[str, object]] = []
    for value, row in sorted(table.items(), key=lambda kv: -sum(kv[1].values())):
        judged = row["right"] + row["wrong"]
        out.append({"value": value, "episodes": sum(row.values()), **row,
                    "precision": round(row["right"] / judged, 3) if judged else None})
    return out


def headline(metrics: Mapping[str, Any]) -> str:
    """The backtest's own alert figures (``evaluate``), one line. Precision is also set against
    the base rate of the "ahead" panel (users whose last activity is still ahead): precision
    leaves out alerts raised after the churn, while half the "open" panel's churners may already
    be gone, so the "ahead" rate is the one an alert that is not yet late competes with."""
    a = metrics["alerts"]
    base, prec = metrics.get("base_rate"), a.get("precision")
    ahead = metrics.get("churn_ahead", {}).get("base_rate")
    ratio = f" = {prec / base:.2f}x the base rate {base}" if prec is not None and base else ""
    if prec is not None and ahead:
        ratio += f" ({prec / ahead:.2f}x the 'ahead' base rate {ahead})"
    return (f"precision {prec}{ratio}; recall before churn {metrics.get('recall')}; {a['at_risk_per_user_month']} at-risk "
            f"alerts per user-month; flap rate {a[f'flap_rate_{FLAP_QUIET_DAYS}d']}; ROC AUC {metrics.get('roc_auc')}; "
            f"median lead {metrics.get('median_lead_days')} d; recall by persona "
            + ", ".join(f"{p} {v['recall']}" for p, v in metrics.get("by_persona", {}).items()))


def render(title: str, eps: Sequence[Episode], metrics: Mapping[str, Any], facets: Sequence[str] = (), demo_line: str = "") -> str:
    """Markdown: the headline figures, the episode totals, then one table per facet."""
    total = breakdown(eps, lambda _ep: "all")[0] if eps else {"episodes": 0}
    lines = [f"## {title}", "", headline(metrics) + ".", ""]
    if demo_line:
        lines += [f"The demo's summary line on these alerts: {demo_line.strip()}.", ""]
    lines += [
             f"{total['episodes']} at-risk episodes opened in the window: right {total.get('right', 0)}, wrong "
             f"{total.get('wrong', 0)}, unknown {total.get('unknown', 0)}, raised after the churn {total.get('after churn', 0)}.", ""]
    for name, facet in FACETS.items():
        if facets and name not in facets:
            continue
        lines += [f"### by {name}", "", "| value | episodes | right | wrong | unknown | after churn | precision |",
                  "|---|---|---|---|---|---|---|"]
        for row in breakdown(eps, facet):
            lines.append(f"| {row['value']} | {row['episodes']} | {row['right']} | {row['wrong']} | {row['unknown']} | "
                         f"{row['after churn']} | {'-' if row['precision'] is None else row['precision']} |")
        lines.append("")
    return "\n".join(lines)


def _population(name: str, work: Path) -> tuple[Path, Path, str, int]:
    manifest = json.loads((work / name / "manifest.json").read_text())
    pop = manifest["population"]
    return Path(pop["files"]["events_test"]), Path(pop["files"]["labels_test"]), pop["as_of"], int(pop["horizon_days"])


def _demo(seed: int, users: int, days: int) -> tuple[list, Labels, list[int]]:
    """The demo's population (``churnwatch demo`` defaults), on fixed dates: weekly as-of dates
    from day 35 to the end (the demo's stream reviews every user up to the end)."""
    from streams.offline.simulate import generate

    start_ms = 1_767_225_600_000  # 2026-01-01
    events, truth = generate(seed, users, start_ms, days)
    labels = Labels({t.user_id: t.churned_at_ms for t in truth if t.churned_at_ms is not None}, {t.user_id: t.persona for t in truth})
    end_ms = start_ms + days * DAY_MS
    dates = list(range(start_ms + 35 * DAY_MS, end_ms - 30 * DAY_MS + 1, 7 * DAY_MS))
    return events, labels, dates


def main(argv: Sequence[str] | None = None) -> int:
    from streams.cli.argtypes import parse_as_of

    ap = argparse.ArgumentParser(prog="benchmarks.alert_breakdown", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--population", help="a population of benchmarks.quality, read from its cache (run make quality once)")
    ap.add_argument("--work", default=str(ROOT / ".churnwatch" / "quality"), help="the quality cache folder")
    ap.add_argument("--demo", action="store_true", help="the demo's simulated population (seed 7, 2000 users, 120 days)")
    ap.add_argument("--events", help="events CSV")
    ap.add_argument("--labels", help="user_id,churned_at[,persona] CSV")
    ap.add_argument("--as-of", dest="as_of", help="START/END/STEP or dates")
    ap.add_argument("--horizon-days", type=int, default=30)
    ap.add_argument("--model", default=None, help="model file (default: the shipped one)")
    ap.add_argument("--only", default="", help="comma-separated facets to print (default: all)")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    t0 = time.perf_counter()
    horizon_days = args.horizon_days
    if args.demo:
        events, labels, dates = _demo(7, 2000, 120)
        title = "demo population (simulate seed 7, 2000 users, 120 days, default mix)"
    else:
        if args.population:
            events_path, labels_path, as_of, horizon_days = _population(args.population, Path(args.work))
            title = args.population
        elif args.events and args.labels and args.as_of:
            events_path, labels_path, as_of, title = Path(args.events), Path(args.labels), args.as_of, args.events
        else:
            ap.error("give --population, --demo, or --events with --labels and --as-of")
        events, labels, dates = read_events_csv(events_path), read_labels(labels_path), parse_as_of(as_of)
    first, last, horizon_ms = min(dates), max(dates), horizon_days * DAY_MS
    result, alerts, metrics = replay_alerts(events, dates, model, labels, horizon_ms)
    eps = episodes(alerts, labels, first, last, horizon_ms, result.data_end_ms)
    facets = [f for f in args.only.split(",") if f]
    demo_line = ""
    if args.demo:
        from streams.cli.demo import alert_precision_line

        at_risk = [(u, a.event_time_ms) for u, mine in alerts.items() for a in mine if a.kind == "at_risk"]
        demo_line = alert_precision_line(at_risk, dict(labels.churned_at_ms), result.data_end_ms, horizon_ms)
    print(render(f"{title}: model {model.version}", eps, metrics, facets, demo_line))
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
