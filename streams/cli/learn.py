"""``churnwatch learn``: a successor of the model in use, learnt from the stream's own outcomes and
adopted by the running workers only if it beats the model in use on held-out users.

A sidecar: run it now and then (cron) or with ``--every``. Each round reads the model in use from
Redis (``cw:meta``), the events topic's retained history (as ``train --from-topic``), labels the
snapshots on event time and fits the weights (streams.offline.learn), compares, and publishes an
adopted successor to Redis, where every worker switches to it at its next cycle boundary
(streams/worker/model_record.py). The comparison is recorded either way (``churnwatch_learn_*``).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from typing import Any

from streams.cli.argtypes import cli_duration_ms, number_in, topic_name
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--events", metavar="FILE", help="learn from this CSV history instead of the events topic (a dry run's input)")
    source.add_argument("--topic", type=topic_name, default=None, metavar="NAME", help="the events topic to read (default: CHURNWATCH_TOPIC_EVENTS)")
    parser.add_argument("--churn-after", dest="churn_after", default=None, metavar="DURATION",
                        help="inactivity that means churn, such as 45d (default: the model's churned_days), as train --churn-after")
    parser.add_argument("--window", default=None, metavar="DURATION",
                        help="learn from the last DURATION of event time only, such as 180d (default: all that is retained)")
    parser.add_argument("--holdout", type=number_in("--holdout", 0, 1, low_open=True, unit="as a share of users"), default=0.2,
                        help="share of users held out for the comparison (default 0.2)")
    parser.add_argument("--min-gain", dest="min_gain", type=number_in("--min-gain", 0, 1, unit="AUC points"), default=0.0,
                        help="adopt only if the successor's held-out ROC AUC is above the current one's by more than this (default 0)")
    parser.add_argument("--beyond-noise", dest="beyond_noise", action=argparse.BooleanOptionalAction, default=True,
                        help="adopt only if the gain is beyond noise: more than two bootstrap standard errors of the "
                             "difference (what train calls 'within noise'); the default, since a switch changes every "
                             "user's scores and the alert volume. --no-beyond-noise adopts any gain above --min-gain")
    parser.add_argument("--l2", type=number_in("--l2", 0, math.inf), default=None,
                        help="L2 penalty as train --l2 (default: chosen by 5-fold cross-validation by user, as train does)")
    parser.add_argument("--every", default=None, metavar="DURATION", help="run a round every DURATION (such as 1d) until stopped")
    parser.add_argument("--dry-run", dest="dry_run", action="store_true", help="compare and print; publish nothing to Redis")
    parser.add_argument("--out", default=None, metavar="MODEL.json", help="also write the successor's file here")
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML with an event_types table, as train --config: only a check "
                        "(the events are read with the model in use's renames, which a successor keeps; a --config that says "
                        "otherwise is refused)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    every_ms = cli_duration_ms(args.every, "--every") if args.every else None
    if every_ms is not None and every_ms < 1000:
        raise UserError(f"--every must be at least 1s, got {args.every}")
    churn_after = cli_duration_ms(args.churn_after, "--churn-after") if args.churn_after else None
    if churn_after is not None and churn_after <= 0:
        raise UserError("--churn-after must be > 0")
    window_ms = cli_duration_ms(args.window, "--window") if args.window else None
    if window_ms is not None and window_ms <= 0:
        raise UserError("--window must be > 0")
    while True:
        try:
            _round(args, settings, churn_after, window_ms)
        except UserError as exc:
            if every_ms is None:
                raise
            logger.warning("learn round skipped: %s", exc)
        if every_ms is None:
            return 0
        time.sleep(every_ms / 1000)  # scheduling only: the labels never read a clock


def _round(args: argparse.Namespace, settings: Settings, churn_after: int | None, window_ms: int | None) -> None:
    """One round: the model in use, the history, a successor, the guard, the publication."""
    from streams.cli.train import read_history
    from streams.offline.learn import propose, window
    from streams.offline.replay import load_config, with_config
    from streams.worker.model_record import chain_root, comparison_record
    from streams.views import open_reader
    from streams.worker.store import model_id

    with open_reader(settings) as reader:
        current_id, current, _ = reader.run(lambda store: store.model_record())
    if not current_id:
        raise UserError("Redis records no model in use yet: start a worker first")
    if current is None:
        raise UserError(f"Redis records model {current_id} in use but not its file: start one worker of this version "
                        f"(it records its model file) and run learn again")
    # The history, the fit and --out outside the Redis block: their file errors are not Redis's.
    hist = argparse.Namespace(events=args.events, from_topic=not args.events, topic=args.topic, until=None)
    config = load_config(args.config)
    try:  # the workers read the events with the model in use's renames: so does its successor (the same vocabulary)
        if config is not None and with_config(current, config, f"the model in use {current_id}") != current:
            raise ValueError(f"--config {config.path} renames events the model in use {current_id} does not: a successor keeps its "
                             f"predecessor's vocabulary, and the workers read the events with the model's renames only")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    events = window(read_history(hist, settings, current.type_map, window_ms), window_ms)
    try:
        proposal = propose(events, current, current_id, churn_after_ms=churn_after, holdout=args.holdout, min_gain=args.min_gain,
                           l2=args.l2, beyond_noise=args.beyond_noise)
    except ValueError as exc:
        raise UserError(f"nothing to learn from {len(events):,} events: {exc}") from None
    successor_id = model_id(proposal.successor)
    if args.out:
        try:
            proposal.successor.save(args.out)
        except OSError as exc:
            raise UserError(f"cannot write the successor's file {args.out}: {exc.strerror or exc}") from None
    c = proposal.comparison
    record: dict[str, Any] = {
        "current": current_id, "successor": successor_id, "adopted": False,
        "current_roc_auc": c.get("default_roc_auc"), "successor_roc_auc": c.get("trained_roc_auc"),
        "difference_se": c.get("difference_se"), "rows": c.get("rows", 0), "churning_users": c.get("churning_users", 0),
        "data_end_ms": max(ev.ts_ms for ev in events), "min_gain": args.min_gain, "beyond_noise": args.beyond_noise,
    }
    verdict = "kept out"
    with open_reader(settings) as reader:
        if proposal.adopt and not args.dry_run:
            record["adopted"] = True
            adopted, in_use = reader.run(lambda store: store.adopt_model(
                current_id, proposal.successor, comparison_record(record), chain_root(current, current_id)))
            if not adopted:
                record["adopted"] = False
                reader.run(lambda store: store.adopt_model(current_id, None, comparison_record(record), ""))
                verdict = f"not adopted: the model in use changed to {in_use} meanwhile"
            else:
                verdict = "adopted: workers switch at their next cycle boundary"
        elif proposal.adopt:
            verdict = "would be adopted (dry run)"
        elif not args.dry_run:
            reader.run(lambda store: store.adopt_model(current_id, None, comparison_record(record), ""))
    logger.info("learn: successor %s of %s %s; %s", successor_id, current_id, verdict, proposal.why)
    print(f"successor {successor_id} of {current_id}: {proposal.why} -- {verdict}")
