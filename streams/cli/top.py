"""``churnwatch top``: the users most likely to churn, ranked, from the at-risk index."""

from __future__ import annotations

import argparse

import orjson

from streams.cli.argtypes import positive_int
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", type=positive_int("users"), default=20, help="how many users (default 20)")
    parser.add_argument("--include-churned", action="store_true", help="also list users who have churned already (risk 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.views import open_reader, top_users

    with open_reader(settings) as reader:
        reports = top_users(reader, settings, args.n, include_churned=args.include_churned)
    if args.json:
        for r in reports:
            print(orjson.dumps(r.to_dict()).decode())
        return 0
    if not reports:
        print("no user is at risk")
        return 0
    print(f"{'#':>3}  {'user':<16} {'risk':>5} {'health':>6} {'temp':>5}  {'stage':<11} {'action':<9} reason")
    for i, r in enumerate(reports, start=1):
        s = r.scores
        reason = s.reasons[0] if s.reasons else ""
        print(f"{i:>3}  {r.user_id:<16} {s.risk:>5.2f} {s.health:>6.0f} {s.temperature:>5.0f}  {s.stage:<11} "
              f"{s.action.replace('_', ' '):<9} {reason}")
    return 0
