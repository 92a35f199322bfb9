"""``churnwatch simulate``: a population with known behaviour, its events and its ground truth."""

from __future__ import annotations

import argparse
import time

from streams.cli.argtypes import check_output_file, parse_start_ms, persona_mix, positive_int, rate
from streams.errors import UserError
from streams.offline.simulate import PERSONA_SHARES, generate, persona_counts, write_events_csv, write_truth_csv
from streams.offline.simulate_accounts import generate_accounts, monthly_truth, write_mrr_truth_csv
from streams.settings import Settings

__all__ = ["add_arguments", "run"]

DEFAULT_USERS = 2000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=positive_int("users"), default=None, help=f"population size (default {DEFAULT_USERS})")
    parser.add_argument("--days", type=positive_int("days"), default=120, help="simulated days (default 120)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--start", default="2026-01-01", help="first simulated day, UTC (default 2026-01-01)")
    parser.add_argument("--mix", type=persona_mix, default=None, metavar="PERSONA=W,...",
                        help="persona weights such as steady=0.2,decliner=0.3,buyer=0.5 (default: "
                             + ",".join(f"{p}={w:g}" for p, w in PERSONA_SHARES.items()) + ")")
    parser.add_argument("--events-out", default=None, metavar="FILE.csv[.gz]", help="write the events as CSV")
    parser.add_argument("--truth-out", default=None, metavar="FILE.csv", help="write the ground truth as CSV")
    parser.add_argument("--accounts", type=positive_int("accounts"), default=None, metavar="N",
                        help="simulate N customer companies with several users, plans, trials (used by their users "
                             "or not), upgrades, downgrades, failed payments and cancellations instead of --users "
                             "(docs/REVENUE.md)")
    parser.add_argument("--mrr-truth-out", default=None, metavar="FILE.csv",
                        help="with --accounts: write the generator's own monthly MRR movements and logo churn")
    parser.add_argument("--publish", action=argparse.BooleanOptionalAction, default=True,
                        help="publish to the events topic in event-time order (default: yes)")
    parser.add_argument("--rate", type=rate, default=0.0, metavar="EVENTS_PER_S",
                        help="publishing rate in events per second; 0 = as fast as possible (default)")


def _check_publishable(start_ms: int, days: int, settings: Settings) -> None:
    """Refuse to publish a window the workers would reject event by event (QA3 #15): before
    2000-01-01 (DLQ ``too_old``) or past the wall clock plus ``max_clock_skew_ms`` (``future``).

    >>> _check_publishable(parse_start_ms("1990-01-01"), 30, Settings())
    Traceback (most recent call last):
    ...
    streams.errors.UserError: --start 1990-01-01: the workers reject events before 2000-01-01 (too_old); give a later --start, or --no-publish to only write files
    """
    from streams.timefmt import MIN_EVENT_MS

    end_ms = start_ms + days * 86_400_000
    if start_ms < MIN_EVENT_MS:
        raise UserError(f"--start {time.strftime('%Y-%m-%d', time.gmtime(start_ms // 1000))}: the workers reject events "
                        f"before 2000-01-01 (too_old); give a later --start, or --no-publish to only write files")
    if end_ms > time.time() * 1000 + settings.max_clock_skew_ms:
        raise UserError(f"--start and --days run to {time.strftime('%Y-%m-%d', time.gmtime(end_ms // 1000))}, past now: "
                        f"the workers reject events ahead of the wall clock (future); give an earlier --start or fewer "
                        f"--days, or --no-publish to only write files")


def run(args: argparse.Namespace, settings: Settings) -> int:
    start_ms = parse_start_ms(args.start)
    if args.mrr_truth_out and not args.accounts:
        raise UserError("--mrr-truth-out needs --accounts N (only accounts have subscriptions)")
    if args.mix and args.accounts:
        raise UserError("--mix sets the personas of --users populations; --accounts has its own behaviour")
    if args.users and args.accounts:  # --users was ignored
        raise UserError("--users sets the size of a population of single users; --accounts N simulates companies, "
                        "each with its own users: give one of them")
    if args.publish:
        _check_publishable(start_ms, args.days, settings)
    for flag, path in (("--events-out", args.events_out), ("--truth-out", args.truth_out), ("--mrr-truth-out", args.mrr_truth_out)):
        check_output_file(flag, path)  # before the work, not after it
    t0 = time.monotonic()
    if args.accounts:
        sim = generate_accounts(args.seed, args.accounts, start_ms, args.days)
        events, truth = list(sim.events), list(sim.users)
        print(f"simulated {len(sim.accounts):,} accounts with {len(truth):,} users and "
              f"{len(sim.movements):,} MRR movements")
    else:
        events, truth = generate(args.seed, args.users or DEFAULT_USERS, start_ms, args.days, args.mix)
    churned = sum(t.churned_at_ms is not None for t in truth)
    mix = ", ".join(f"{n} {p}" for p, n in persona_counts(truth).items())
    print(f"simulated {len(truth):,} users ({mix}), {len(events):,} events over {args.days} days "
          f"from {args.start}; {churned:,} users churn in the window ({time.monotonic() - t0:.1f} s)")
    if args.events_out:
        write_events_csv(args.events_out, events, accounts=bool(args.accounts))
        print(f"events -> {args.events_out}")
    if args.mrr_truth_out:
        write_mrr_truth_csv(args.mrr_truth_out, monthly_truth(sim.movements, start_ms, args.days))
        print(f"monthly MRR truth -> {args.mrr_truth_out}")
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
