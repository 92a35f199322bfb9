"""``churnwatch simulate``: a population with known behaviour, its events and its ground truth."""

from __future__ import annotations

import argparse
import time

from streams.cli.argtypes import parse_start_ms, positive_int, rate
from streams.offline.simulate import generate, persona_counts, write_events_csv, write_truth_csv
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=positive_int("users"), default=2000, help="population size (default 2000)")
    parser.add_argument("--days", type=positive_int("days"), default=120, help="simulated days (default 120)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--start", default="2026-01-01", help="first simulated day, UTC (default 2026-01-01)")
    parser.add_argument("--events-out", default=None, metavar="FILE.csv[.gz]", help="write the events as CSV")
    parser.add_argument("--truth-out", default=None, metavar="FILE.csv", help="write the ground truth as CSV")
    parser.add_argument("--publish", action=argparse.BooleanOptionalAction, default=True,
                        help="publish to the events topic in event-time order (default: yes)")
    parser.add_argument("--rate", type=rate, default=0.0, metavar="EVENTS_PER_S",
                        help="publishing rate in events per second; 0 = as fast as possible (default)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    start_ms = parse_start_ms(args.start)
    t0 = time.monotonic()
    events, truth = generate(args.seed, args.users, start_ms, args.days)
    churned = sum(t.churned_at_ms is not None for t in truth)
    mix = ", ".join(f"{n} {p}" for p, n in persona_counts(truth).items())
    print(f"simulated {len(truth):,} users ({mix}), {len(events):,} events over {args.days} days "
          f"from {args.start}; {churned:,} users churn in the window ({time.monotonic() - t0:.1f} s)")
    if args.events_out:
        write_events_csv(args.events_out, events)
        print(f"events -> {args.events_out}")
    if args.truth_out:
        write_truth_csv(args.truth_out, truth)
        print(f"ground truth -> {args.truth_out}")
    if args.publish:
        from streams.publisher import ensure_events_topic, publish_bulk

        ensure_events_topic(settings)
        stats = publish_bulk(settings, events, rate=args.rate)
        print(f"published {stats.events:,} events to {settings.topic_events} in {stats.seconds:.1f} s "
              f"({stats.events_per_s:,.0f} events/s)")
    return 0
