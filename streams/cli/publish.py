"""``churnwatch publish``: check a file of events, then publish it (nothing is sent if a line is bad)."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams.cli.argtypes import rate
from streams.errors import UserError
from streams.publisher import ensure_events_topic, publish_bulk, read_records
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", required=True, metavar="EVENTS.jsonl|EVENTS.csv[.gz]",
                        help="events to publish, in file order (JSON lines or CSV user_id,ts,event_type,amount)")
    parser.add_argument("--rate", type=rate, default=0.0, metavar="EVENTS_PER_S",
                        help="publishing rate; 0 = as fast as possible (default)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    # Check the whole file first, so a bad line never leaves half a file published.
    n = sum(1 for _ in read_records(path, settings))
    if n == 0:
        raise UserError(f"{path}: no events in the file")
    ensure_events_topic(settings)
    stats = publish_bulk(settings, read_records(path, settings), rate=args.rate)
    print(f"published {stats.events:,} events from {path} to {settings.topic_events} in {stats.seconds:.1f} s "
          f"({stats.events_per_s:,.0f} events/s)")
    return 0
