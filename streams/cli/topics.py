"""``churnwatch topics``: create the events, alerts and DLQ topics with explicit partition counts."""

from __future__ import annotations

import argparse

from streams.settings import Settings
from streams.kafka_admin import quiet_kafka_logs
from streams.worker.topics import ensure_topics

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partitions", type=int, default=None, help="partitions per topic (default: settings, 8)")
    parser.add_argument("--events-topic", default=None, help="events topic (default activity-events)")
    parser.add_argument("--alerts-topic", default=None, help="alerts topic (default churn-at-risk)")
    parser.add_argument("--dlq-topic", default=None, help="dead-letter topic (default activity-events-dlq)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.with_(
        partitions=args.partitions, topic_events=args.events_topic, topic_alerts=args.alerts_topic, topic_dlq=args.dlq_topic
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
        print(f"{name}: {state}")
    return 0
