"""``churnwatch topics``: create the events, alerts and DLQ topics with explicit partition counts (and the events
topic with an explicit retention: ``CHURNWATCH_EVENTS_RETENTION_DAYS``)."""

from __future__ import annotations

import argparse

from streams.cli.argtypes import topic_name
from streams.settings import Settings
from streams.kafka_admin import quiet_kafka_logs
from streams.worker.topics import ensure_topics

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of each topic this creates (default: CHURNWATCH_PARTITIONS, 8): the most workers "
                             "that do work. Existing topics keep theirs. The workers, publish, simulate, digest and "
                             "accounts import create any missing topic with CHURNWATCH_PARTITIONS: set it to the same "
                             "number (a worker says once at start when a topic differs from it)")
    parser.add_argument("--events-topic", type=topic_name, default=None, help="events topic (default activity-events)")
    parser.add_argument("--alerts-topic", type=topic_name, default=None, help="alerts topic (default churn-at-risk)")
    parser.add_argument("--dlq-topic", type=topic_name, default=None, help="dead-letter topic (default activity-events-dlq)")
    parser.add_argument("--retention-days", type=int, default=None, metavar="DAYS",
                        help="retention of the events topic when created (default: settings, 180; 0 = forever)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_(
        partitions=args.partitions, events_retention_days=args.retention_days, topic_events=args.events_topic, topic_alerts=args.alerts_topic, topic_dlq=args.dlq_topic
    )
    quiet_kafka_logs()
    from streams.publisher import check_kafka_reachable

    check_kafka_reachable(settings)  # one line at once, not 30 s of retries (the admin client's)
    try:
        outcome = ensure_topics(settings)
    except ConnectionError as exc:
        from streams.errors import UserError

        raise UserError(str(exc)) from None
    for name, state in outcome.items():
        days = settings.events_retention_days
        kept = f" (retention {days} days)" if days else " (retention: forever)"
        other = f" (left as it is; {settings.partitions} asked)" if state.startswith("exists with") else ""
        print(f"{name}: {state}{kept if name == settings.topic_events and state == 'created' else ''}{other}")
    return 0
