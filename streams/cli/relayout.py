"""``churnwatch relayout``: with the workers stopped, move the state to the events topic's new
partition count (streams.worker.relayout; docs/OPERATE.md, "Partition count changes")."""

from __future__ import annotations

import argparse
import sys

from streams.cli.argtypes import topic_name
from streams.settings import Settings
from streams.worker.liveness import MARK_MS

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events-topic", type=topic_name, default=None, help="events topic (default activity-events)")
    parser.add_argument("--ignore-running-workers", action="store_true",
                        help=f"move the state even though workers marked themselves running on the topic in the last "
                             f"{MARK_MS // 1000} s (refused otherwise): only for workers you know apply nothing")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.errors import UserError
    from streams.worker.relayout import relayout
    from streams.kafka_admin import quiet_kafka_logs

    settings = settings.with_(topic_events=args.events_topic)
    quiet_kafka_logs()
    from streams.publisher import check_kafka_reachable

    check_kafka_reachable(settings)  # one line at once, not the admin client's retries
    try:
        done = relayout(settings, ignore_running=args.ignore_running_workers)
    except ConnectionError as exc:
        raise UserError(str(exc)) from None
    if done["running"]:
        print(f"churnwatch relayout: warning: {done['running']} worker(s) marked running on {settings.topic_events}, "
              "gone on as --ignore-running-workers asked", file=sys.stderr)
    if done["old_partitions"] == done["partitions"]:  # QA20 F3: said "state moved from 8 to 8 partitions"
        print(f"{settings.topic_events}: the state is laid out for the topic's {done['partitions']} partitions "
              "already: nothing to move")
        return 0
    print(f"{settings.topic_events}: state moved from {done['old_partitions']} to {done['partitions']} partitions "
          f"({done['moved']} due entries moved); start the workers")
    return 0
