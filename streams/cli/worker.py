"""``churnwatch worker``: run a stream worker (the runtime is streams.worker.service)."""

from __future__ import annotations

import argparse

from streams.cli.argtypes import topic_name
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, default=None, help="port of /metrics, /healthz, /readyz (default 9108)")
    parser.add_argument("--metrics-bind", default=None, help="address to bind the metrics server to (default 127.0.0.1)")
    parser.add_argument("--clock", choices=("event", "live"), default=None,
                        help="event: reviews follow event time only; live: idle partitions also follow the wall clock")
    parser.add_argument("--model", default=None, metavar="FILE", help="model file (default: models/default_model.json)")
    parser.add_argument("--take-over-model", action="store_true", default=None,
                        help="record this worker's model as the one in use: workers with another model stop (rolling upgrade)")
    parser.add_argument("--rebuild-state", action="store_true", default=None,
                        help="with --take-over-model, when the model tracks other event types, roles or renames than the one in use: "
                             "delete the stored state and replay the events topic under the new model (docs/OPERATE.md)")
    parser.add_argument("--roll-back-from", default=None, metavar="MODEL_ID",
                        help="with --take-over-model, when the model in use is MODEL_ID, a learned successor of this worker's "
                             "model (churnwatch learn): take over all the same, rolling it back (otherwise a take-over of "
                             "an earlier model of the chain in use is skipped: docs/OPERATE.md)")
    parser.add_argument("--partitions", type=int, default=None, help="partitions of topics this worker creates if missing (default 8)")
    parser.add_argument("--group", default=None, help="consumer group (default churnwatch)")
    parser.add_argument("--events-topic", type=topic_name, default=None, help="events topic (default activity-events)")
    parser.add_argument("--alerts-topic", type=topic_name, default=None, help="alerts topic (default churn-at-risk)")
    parser.add_argument("--alerts-from", default=None, metavar="DATE",
                        help="publish no user alert whose event time is before this ISO date/time (the state keeps them): "
                             "onboarding a history, whose first weeks read old customers as new (CHURNWATCH_ALERTS_FROM)")
    parser.add_argument("--dlq-topic", type=topic_name, default=None, help="dead-letter topic (default activity-events-dlq)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker.service import run_worker

    return run_worker(settings.with_(
        metrics_port=args.metrics_port,
        metrics_bind=args.metrics_bind,
        clock=args.clock,
        model_path=args.model,
        model_takeover=args.take_over_model,
        model_rebuild=args.rebuild_state,
        model_rollback_from=args.roll_back_from,
        partitions=args.partitions,
        group_id=args.group,
        topic_events=args.events_topic,
        topic_alerts=args.alerts_topic,
        topic_dlq=args.dlq_topic,
        alerts_from=args.alerts_from,
    ))
