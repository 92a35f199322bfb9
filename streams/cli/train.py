"""``churnwatch train``: fit a model file on the product's own history (streams.offline.train)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from models.model import ChurnModel, load_model
from models.vocabulary import DEFAULT_SLOTS, MAX_SLOTS
from streams.cli.argtypes import parse_as_of
from streams.errors import UserError
from streams.offline.history import read_events_csv, read_labels_csv
from streams.offline.replay import load_type_map
from streams.offline.train import train
from streams.settings import Settings, parse_duration_ms

__all__ = ["add_arguments", "run"]


def _types(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--types {text!r} is not a whole number of event types") from None
    if not 1 <= n <= MAX_SLOTS:
        raise argparse.ArgumentTypeError(f"--types must be 1 to {MAX_SLOTS} event types, got {n}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, metavar="FILE", help="CSV (optionally .gz): user_id,ts,event_type[,amount]; any order")
    parser.add_argument("--out", required=True, metavar="MODEL.json", help="where to write the model file")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--labels", metavar="FILE", help="user_id,churned_at: who churned when (else cancel events + inactivity)")
    how.add_argument("--churn-after", dest="churn_after", default=None, metavar="DURATION",
                     help="inactivity that means churn, such as 45d (default: the model's churned_days)")
    parser.add_argument("--horizon", default=None, metavar="DURATION", help="risk horizon, such as 30d (default: the model's, 30d)")
    parser.add_argument("--as-of", dest="as_of", default=None, metavar="DATES",
                        help="snapshot dates: ISO dates separated by commas, or START/END/STEP (default: weekly)")
    parser.add_argument("--base-model", dest="base_model", metavar="FILE",
                        help="take thresholds from this model file (default: the built-in defaults)")
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML with an event_types table: name -> the name to use")
    parser.add_argument("--types", type=_types, default=DEFAULT_SLOTS,
                        help=f"how many of the product's event types to track one by one (default {DEFAULT_SLOTS}, at most {MAX_SLOTS})")
    parser.add_argument("--holdout", type=float, default=0.2, help="share of users held out for the calibration report (default 0.2)")
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 penalty per example on standardised weights (default 0.001)")
    parser.add_argument("--notes", default="", help="free text stored in the model file (where the data came from)")
    parser.add_argument("--version-prefix", dest="version_prefix", default="trained",
                        help="the model version is <prefix>-<content hash> (default: trained)")
    parser.add_argument("--alert-share", dest="alert_share", type=float, default=0.1,
                        help="set risk_enter/risk_exit so about this share of users is flagged (default 0.1; 0 keeps the base model's)")


def run(args: argparse.Namespace, settings: "Settings") -> int:
    events_path = Path(args.events)
    if not events_path.exists():
        raise UserError(f"--events {events_path} does not exist")
    base = load_model(args.base_model) if args.base_model else ChurnModel()
    events = read_events_csv(events_path, load_type_map(args.config))
    labels = read_labels_csv(args.labels) if args.labels else None
    horizon = parse_duration_ms(args.horizon, name="--horizon") if args.horizon else None
    churn_after = parse_duration_ms(args.churn_after, name="--churn-after") if args.churn_after else None
    as_of = parse_as_of(args.as_of) if args.as_of else None
    t0 = time.monotonic()
    model, report = train(events, base=base, horizon_ms=horizon, labels_ms=labels, churn_after_ms=churn_after,
                          as_of_ms=as_of, holdout=args.holdout, l2=args.l2, notes=args.notes,
                          alert_share=args.alert_share or None, version_prefix=args.version_prefix, n_types=args.types)
    model.save(args.out)
    held = report["holdout"]
    print(f"trained {model.version} on {report['events']:,} events of {report['users']:,} users: "
          f"{report['snapshots']:,} snapshots at {report['as_of']['count']} dates, labels from {report['labels']} "
          f"({time.monotonic() - t0:.1f} s)")
    for key, label in (("holdout", "risk"), ("holdout_leave_given_alive", "leave | still a user")):
        held = report[key]
        if held:
            print(f"held-out users, {label}: {held['rows']:,} rows, churn rate {held['churn_rate']:.3f}, mean predicted "
                  f"{held['mean_risk']:.3f}, ROC AUC {held['roc_auc']}, Brier {held['brier']}, largest decile gap {held['max_decile_gap']}")
            print("  reliability by decile (predicted -> observed): "
                  + ", ".join(f"{b['predicted']:.2f}->{b['observed']:.2f}" for b in held["reliability"]))
    if "versus_default" in report:
        v = report["versus_default"]
        verdict = "beats" if v["trained_beats_default"] else "does NOT beat"
        print(f"held-out users: the trained model {verdict} the default ({v['default_version']}): ROC AUC "
              f"{v['trained_roc_auc']} vs {v['default_roc_auc']} on {v['rows']:,} rows"
              + ("" if v["trained_beats_default"] else " -- keep the default"))
    if "alerts" in report:
        a = report["alerts"]
        print(f"at-risk alerts open at risk >= {a['risk_enter']} and close at <= {a['risk_exit']}: "
              f"{100 * a['holdout_flagged']:.1f}% of held-out rows flagged, precision {a['holdout_precision']}")
    print(f"model -> {args.out}")
    return 0
