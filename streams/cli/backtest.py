"""``churnwatch backtest``: score history as of given dates with the stream's own code, and measure it."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Sequence

from models.events import Event
from models.model import DEFAULT_MODEL_PATH, ChurnModel, load_model
from models.state import DAY_S
from streams.cli.argtypes import check_output_file, cli_duration_ms, parse_as_of, positive_int
from streams.errors import UserError
from streams.offline.evaluate import Labels, _Panel, _Panels, _panel_collector, evaluate, read_labels, roc_curve
from streams.offline.history import read_text
from streams.offline.late_start import Arrivals, late_start_warning
from streams.offline.parallel import DateOutput, ReadSummary, replay_text
from streams.offline.replay import SCORE_COLUMNS, Progress, ScoreRow, load_config, open_text, timeline, with_config
from streams.settings import MEMBER_ALERTS, Settings
from streams.timefmt import format_day_or_time, format_ts

logger = logging.getLogger(__name__)

__all__ = ["add_arguments", "available_cpus", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, metavar="FILE", help="CSV (optionally .gz): user_id,ts,event_type[,amount]; any order")
    parser.add_argument("--as-of", required=True, dest="as_of", metavar="DATES",
                        help="comma-separated ISO dates, or START/END/STEP such as 2026-02-01/2026-06-01/7d")
    parser.add_argument("--out", required=True, metavar="SCORES.csv", help="one row per (user_id, as_of); .gz to compress")
    parser.add_argument("--labels", metavar="FILE", help="user_id,churned_at[,persona]: measure AUC, lift, precision, recall, lead time")
    parser.add_argument("--horizon", default=None, help="churn horizon for the metrics (default: the model's, 30d)")
    parser.add_argument("--model", metavar="FILE", help="model file (default: CHURNWATCH_MODEL_PATH, else the shipped one)")
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML with an [event_types] table: name -> the name to use (a model that carries renames, "
                             "written by train --config, is read with them: a --config that says otherwise is refused)")
    parser.add_argument("--alerts-out", metavar="FILE.jsonl", help="also write every alert the stream would have published (JSON lines)")
    parser.add_argument("--alerts-from", metavar="DATE",
                        help="leave out of --alerts-out the user alerts whose event time is before this ISO date/time, as a worker "
                             "with CHURNWATCH_ALERTS_FROM publishes none of them (default: that variable; scores and metrics unchanged)")
    parser.add_argument("--member-alerts", choices=MEMBER_ALERTS, default=None,
                        help="'separate' or 'none': leave out of --alerts-out the user alerts of account members, as workers "
                             "with CHURNWATCH_MEMBER_ALERTS so set keep them off the alerts topic (default: that variable, "
                             "'alerts': all written; scores and metrics unchanged)")
    parser.add_argument("--plot-user", metavar="USER_ID", help="also draw this user's health, temperature and risk over time")
    parser.add_argument("--plot-out", metavar="PNG", help="where to write --plot-user's picture (default: next to --out)")
    parser.add_argument("--jobs", type=positive_int("processes", "process"), default=None,
                        help="processes replaying users in parallel (default: the CPUs this process may use); same output for any number")
    parser.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _sibling(out: Path, suffix: str) -> Path:
    """``scores.csv.gz`` + ``.roc.png`` -> ``scores.roc.png``, in the same folder."""
    name = out.name
    for ext in (".gz", ".csv"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return out.with_name(name + suffix)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.plot_out and not args.plot_user:  # it was ignored without a word (QA5 L4)
        raise UserError("--plot-out is where --plot-user's picture goes: give --plot-user USER_ID too")
    as_of = parse_as_of(args.as_of)
    alerts_from_ms = settings.with_(alerts_from=args.alerts_from).alerts_from_ms  # checked as the worker checks it
    settings = settings.with_(member_alerts=args.member_alerts)
    model = load_model(args.model or settings.model_path or None)
    horizon_ms = cli_duration_ms(args.horizon, "--horizon") if args.horizon else int(model.horizon_days * DAY_S * 1000)
    if horizon_ms <= 0:
        raise ValueError(f"--horizon must be a positive duration, got {args.horizon!r}")
    config = load_config(args.config)
    carried, calendar = bool(model.event_types), bool(model.quiet_calendar or model.peak_calendar)
    model = with_config(model, config, f"the model {args.model or settings.model_path or DEFAULT_MODEL_PATH.name} ({model.version})")
    if config is not None and (config.calendar or config.peak) and not calendar:
        logger.warning("--config's [calendar] is applied to this backtest; a worker applies only the calendar its model "
                       "carries (train --config writes it into the model file)")
    if config is not None and config.event_types and not carried:
        logger.warning("--config's renames are applied to this backtest; a worker applies only the renames its model carries "
                       "(train --config writes them into the model file)")
    type_map = model.type_map  # the model's renames (or --config's), as the worker applies them
    labels = read_labels(args.labels) if args.labels else None
    out = check_output_file("--out", args.out)
    assert out is not None  # --out is required
    check_output_file("--alerts-out", args.alerts_out)
    check_output_file("--plot-out", args.plot_out)

    jobs = args.jobs or available_cpus()
    started = time.perf_counter()
    text = read_text(args.events)
    progress = Progress("backtest", enabled=not args.no_progress)
    with contextlib.ExitStack() as stack:
        sink = _Outputs(args, as_of, out, labels, horizon_ms, stack, started)
        result = replay_text(text, Path(args.events).name, type_map, as_of, model, sink.on_read, sink.on_date, jobs=jobs,
                             want_alerts=bool(args.alerts_out), want_rows=labels is not None, plot_user=args.plot_user,
                             progress=progress, currency=settings.currency, alerts_from_ms=alerts_from_ms,
                             members_apart=settings.members_apart)
    progress.close()
    total_s = time.perf_counter() - started
    read_s = sink.read_s
    replay_s = total_s - read_s
    panels = sink.panels

    report: dict[str, Any] = {
        "jobs": jobs,
        "events": result.n_events,
        "users": len(result.first_seen_ms),
        "as_of_dates": len(as_of),
        "rows": result.n_rows,
        "model_version": model.version,
        "seconds_read": round(read_s, 3),
        "seconds_replay": round(replay_s, 3),
        "events_per_s": round(result.n_events / total_s) if total_s > 0 else None,
        "events_per_s_replay_only": round(result.n_events / replay_s) if replay_s > 0 else None,
        "processes": [{"events": n, "cpu_seconds_read": read_cpu, "cpu_seconds_replay": replay_cpu} for n, read_cpu, replay_cpu in result.work],
    }
    print(f"backtest: {report['events']} events, {report['users']} users, {len(as_of)} as-of dates -> {result.n_rows} rows in {out}")
    print(f"  {total_s:.1f} s ({report['events_per_s']} events/s; read {read_s:.1f} s, replay {replay_s:.1f} s)")
    late_start = late_start_warning(Arrivals.of(result.first_seen_ms.values(), max(as_of)))
    if late_start:  # users new at the file's start (QA10 F16, QA23a F6), of the users seen before the last as-of date
        logger.warning("%s", late_start)
    if labels is not None and panels is not None:
        metrics = evaluate(panels, result, labels, as_of, horizon_ms)
        report["detection"] = metrics
        _print_metrics(metrics)
        _plot_metrics(out, panels.open, metrics)
    metrics_path = _sibling(out, ".metrics.json")
    metrics_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"  metrics: {metrics_path}")
    if args.alerts_out:
        print(f"  alerts: {args.alerts_out}{_withheld_note(result.alerts, alerts_from_ms)}{_members_note(sink.members_left_out, settings)}")
    if args.plot_user:
        png = Path(args.plot_out) if args.plot_out else _sibling(out, f".user-{_safe(args.plot_user)}.png")
        _plot_user(args.plot_user, sink.plot_events, model, as_of, labels, png)
        print(f"  timeline of the user: {png}")
    return 0


class _Outputs:
    """Where the replay's output goes: the scores file, the alerts file and the labels' panels.
    Opened only once the whole history has been read without error, so a bad file leaves no
    output behind."""

    def __init__(self, args: argparse.Namespace, as_of: Sequence[int], out: Path, labels: Labels | None, horizon_ms: int,
                 stack: contextlib.ExitStack, started: float) -> None:
        self.args, self.as_of, self.out, self.labels, self.horizon_ms = args, as_of, out, labels, horizon_ms
        self.stack, self.started = stack, started
        self.read_s = 0.0
        self.plot_events: list[Event] = []
        self.panels: _Panels | None = None
        self.collect: Callable[[ScoreRow], None] | None = None
        self.scores: IO[str] | None = None
        self.alerts: IO[str] | None = None
        self.members_left_out = 0

    def on_read(self, summary: ReadSummary) -> None:
        """Every row is read and fine: check the flags against the data, open the outputs."""
        self.read_s = time.perf_counter() - self.started
        logger.info("read %s events in %.1f s", summary.n_events, self.read_s)
        user = self.args.plot_user
        if user and not summary.plot_events:
            raise UserError(f"--plot-user {user!r}: no events of this user in the input")
        self.plot_events = summary.plot_events
        if self.as_of[0] <= (summary.first_ms if summary.first_ms is not None else self.as_of[0]):
            logger.warning("the first as-of date %s is not after the first event: nothing to score then", format_day_or_time(self.as_of[0]))
        late = [t for t in self.as_of if summary.last_ms is not None and t > summary.last_ms]
        if late:  # scored as if everyone fell silent at the data's end (QA3 #16: no word of it)
            logger.warning("%s as-of date%s from %s %s after the data's last event (%s): users are scored as if silent "
                           "since then", len(late), "s" * (len(late) > 1), format_day_or_time(late[0]),
                           "are" if len(late) > 1 else "is", format_day_or_time(summary.last_ms))
        if self.labels is not None:
            self.panels, self.collect = _panel_collector(self.labels, self.horizon_ms, summary.last_ms or 0)
        self.scores = self.stack.enter_context(open_text(self.out, "w"))
        csv.writer(self.scores).writerow(SCORE_COLUMNS)
        if self.args.alerts_out:
            self.alerts = self.stack.enter_context(open_text(self.args.alerts_out, "w"))

    def on_date(self, part: DateOutput) -> None:
        """One shard's output for one date (they come in date, then user id order)."""
        if self.alerts is not None:
            self.alerts.write(part.alerts_jsonl)
            self.members_left_out += part.members_left_out
        self.scores.write(part.rows_csv)  # type: ignore[union-attr]
        if part.rows is not None and self.collect is not None:
            for row in part.rows:
                self.collect(row)


def _withheld_note(alerts: Mapping[str, Sequence[tuple[str, int]]], alerts_from_ms: int) -> str:
    """What ``--alerts-from`` left out of the alerts file, counted on the at-risk alerts the replay
    keeps for its metrics (``Replay.alerts``); "" when it is not set.

    >>> _withheld_note({"u1": [("at_risk", 5), ("recovered", 7), ("at_risk", 20)]}, 10)
    ' (--alerts-from 1970-01-01T00:00:00.010Z: 1 at-risk alert before it left out, as the workers withhold it)'
    """
    if not alerts_from_ms:
        return ""
    n = sum(kind == "at_risk" and t < alerts_from_ms for mine in alerts.values() for kind, t in mine)
    return (f" (--alerts-from {format_ts(alerts_from_ms)}: {n} at-risk alert{'s' * (n != 1)} before it left out, as the "
            f"workers withhold {'them' if n != 1 else 'it'})")


def _members_note(n: int, settings: Settings) -> str:
    """What ``--member-alerts`` (``CHURNWATCH_MEMBER_ALERTS``) left out of the alerts file; "" when it is "alerts".

    >>> _members_note(3, Settings(member_alerts="separate"))
    ' (3 user alerts of account members left out: CHURNWATCH_MEMBER_ALERTS=separate puts them on churn-at-risk-members)'
    """
    if not settings.members_apart:
        return ""
    where = f"puts them on {settings.topic_member_alerts}" if settings.member_alerts == "separate" else "publishes none of them"
    return f" ({n} user alert{'s' * (n != 1)} of account members left out: CHURNWATCH_MEMBER_ALERTS={settings.member_alerts} {where})"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:64]


def _print_metrics(m: Mapping[str, Any]) -> None:
    m, a, h = _shown(m), _shown(m["alerts"]), _shown(m["churn_ahead"])
    print(f"  horizon {m['horizon_days']:g} d, window {m['window'][0]} .. {m['window'][1]}, data end {m['data_end']}")
    print(f"  gone by the horizon, users not reported churned: {m['rows_judged']} rows (base rate {m['base_rate']},"
          f" {m['rows_already_gone']} already gone): ROC AUC {m['roc_auc']}, top-decile lift {m['top_decile_lift']}")
    print(f"  last visit within the horizon, users still to make it: {h['rows_judged']} rows (base rate {h['base_rate']}):"
          f" ROC AUC {h['roc_auc']}, top-decile lift {h['top_decile_lift']}")
    print(f"  alerts: precision {a['precision']} ({a['right']} right, {a['wrong']} wrong, {a['not_known_yet']} not known yet,"
          f" {a['raised_after_churn']} after churn); {a['at_risk_per_user_month']} at-risk alerts per user-month,"
          f" {a['flap_rate_14d']} of them within 14 d of a recovered")
    print(f"  recall {m['recall']} ({m['churners_flagged_before_churn']} of {m['churners_in_window']} churners flagged before churn),"
          f" median lead {_days(m['median_lead_days'])}; {m['churners_flagged_only_after_churn']} more flagged after leaving,"
          f" median {_days(m['median_days_to_flag_after_churn'])} later")
    for persona, p in m["by_persona"].items():
        print(f"    {persona}: {p['flagged']} of {p['churners']} flagged before churn, median lead {_days(p['median_lead_days'])};"
              f" {p['flagged_only_after_churn']} only after, median {_days(p['median_days_to_flag_after_churn'])} later")


def _shown(figures: Mapping[str, Any]) -> dict[str, Any]:
    """``figures`` with "-" for each figure that cannot be computed (None: one as-of date has no
    alert to judge, one class has no AUC): "precision None" was printed (QA3 #16). Medians stay
    None for :func:`_days`, nested tables as they are.

    >>> _shown({"precision": None, "recall": 0.5, "median_lead_days": None})
    {'precision': '-', 'recall': 0.5, 'median_lead_days': None}
    """
    return {k: "-" if v is None and not k.startswith("median") else v for k, v in figures.items()}


def _days(value: Any) -> str:
    """A median in days, or "-" when there is none ("median lead None d" was printed).

    >>> _days(17.19), _days(None)
    ('17.19 d', '-')
    """
    return "-" if value is None else f"{value} d"


def _plot_metrics(out: Path, panel: _Panel, metrics: Mapping[str, Any]) -> None:
    """ROC and lift charts of the headline view (users not reported churned)."""
    if metrics["roc_auc"] is None:
        logger.warning("only one class among the judged rows: no ROC or lift chart")
        return
    from streams.offline import plots

    fpr, tpr = roc_curve(panel.risk, panel.churns)
    roc_png, lift_png = _sibling(out, ".roc.png"), _sibling(out, ".lift.png")
    plots.roc_chart(fpr, tpr, metrics["roc_auc"], roc_png, f"gone within {metrics['horizon_days']:g} days")
    plots.lift_chart(metrics["lift_by_decile"], lift_png)
    print(f"  charts: {roc_png}, {lift_png}")


def _plot_user(user: str, events: Sequence[Event], model: ChurnModel, as_of: Sequence[int], labels: Labels | None, png: Path) -> None:
    mine = [ev for ev in events if ev.user_id == user]
    day_ms = DAY_S * 1000
    start = min(ev.ts_ms for ev in mine) // day_ms * day_ms + day_ms
    end = max(as_of[-1], start)
    rows, alerts = timeline(user, mine, model, start, end)
    churned = labels.churned_at_ms.get(user) if labels else None
    persona = labels.persona.get(user) if labels else None
    from streams.offline import plots

    plots.user_timeline(rows, alerts, [ev.ts_ms for ev in mine], png, title=f"user {user}" + (f" ({persona})" if persona else ""),
                        churned_at_ms=churned, risk_enter=model.risk_enter, risk_exit=model.risk_exit)
