"""``churnwatch churn-rate``: users who churned in a window: count, share and revenue."""

from __future__ import annotations

import argparse

import orjson

from streams.cli.argtypes import positive_int
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=positive_int("days"), default=30, help="window in days up to the stream time (default 30)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.views import churn_rate, open_reader

    with open_reader(settings) as reader:
        result = churn_rate(reader, settings, args.days)
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    print(f"churn over the {result['days']} days to {result['as_of'][:16].replace('T', ' ')} UTC (stream time): "
          f"{result['churned']:,} users churned = {100 * result['churn_rate']:.1f}% of {result['active_at_start']:,} "
          f"active at the start; revenue of churned users {result['churned_revenue']:,.2f}")
    return 0
