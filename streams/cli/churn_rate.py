"""``churnwatch churn-rate``: users who churned in a window, and accounts' churn in money and count.

The users' part comes from the workers' per-day stage counters; the money part from the live
period counters of subscription revenue (docs/REVENUE.md), read into the same ledger code
``churnwatch report`` runs over a history file, so both print the same figures for the same events.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from models.revenue_ledger import PERIODS
from streams.cli.argtypes import parse_date_ms, positive_int
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # at most 100 years: 1,000,000 days ended in a traceback, "OverflowError: date value out of range" (QA20 F12)
    parser.add_argument("--days", type=positive_int("days", most=36_500), default=30, help="window in days up to the stream time (default 30)")
    parser.add_argument("--period", choices=PERIODS, default="month",
                        help="revenue figures per day, week (ISO, from Monday) or month (default)")
    parser.add_argument("--from", dest="from_", metavar="DATE", help="revenue from this day, UTC (default: the current period)")
    parser.add_argument("--to", metavar="DATE", help="revenue up to this day, exclusive (default: end of the current period)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def _check_window(args: argparse.Namespace, from_ms: int | None, to_ms: int | None, now_ms: int) -> None:
    """Refuse a ``--to`` alone at or before the default ``--from`` (the start of the stream time's period).

    Why: that window is empty, and the text printed the users' line and the cohorts with no period
    line and no word of why (QA21 F9: ``--to 2026-10-01`` at stream time 2026-10-31)."""
    from streams.timefmt import format_day_or_time
    from streams.views import revenue_range

    start, end = revenue_range(args.period, from_ms, to_ms, now_ms)
    if from_ms is None and end <= start:
        raise UserError(f"--to {args.to} is not after {format_day_or_time(start)}, the start of the {args.period} of the "
                        f"stream time (the default --from): give --from too")


def back_text(back: int) -> str:
    """"; 300 of them back (reactivated) by the window's end": the window's churned users who came
    back, "" for none (QA22b F5: a game's 649 churned held 300 seasonal players back and playing).

    >>> back_text(300), back_text(0)
    ("; 300 of them back (reactivated) by the window's end", '')
    """
    return f"; {back:,} of them back (reactivated) by the window's end" if back else ""


def _split(result: dict[str, Any]) -> str:
    """", 49 of them never paid; the other 49 = 1.9%" (streams.worker.store.churned_split_text), "" for none."""
    from streams.worker.store import churned_split_text

    words = churned_split_text(result)
    return f", {words}" if words else ""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from models.revenue_ledger import cohort_dict, figures_dict
    from streams.cli.revenue import counted_opening_note, intro_text, involuntary_text, whole_periods_note
    from streams.views import (account_side_behind_ms, behind_note, churn_rate, live_cohorts, live_revenue, open_reader,
                               revenue_range, stream_time_ms)

    from_ms, to_ms = (None if args.from_ is None else parse_date_ms(args.from_, "--from"),
                      None if args.to is None else parse_date_ms(args.to, "--to"))
    if from_ms is not None and to_ms is not None and to_ms <= from_ms:
        raise UserError(f"--to {args.to} is not after --from {args.from_}")
    with open_reader(settings) as reader:
        result = churn_rate(reader, settings, args.days)
        now_ms = stream_time_ms(reader, settings)
        _check_window(args, from_ms, to_ms, now_ms)
        figures = live_revenue(reader, args.period, from_ms, to_ms, now_ms)
        cohorts = live_cohorts(reader, revenue_range(args.period, from_ms, to_ms, now_ms)[1])
        # the first month's "new" of a stream that began on a base already paying (QA20a F10): report's note
        note = counted_opening_note(reader.revenue_totals("day"), reader.stats(), figures, now_ms)
        behind_ms = account_side_behind_ms(reader, settings, now_ms)
    result["revenue"] = {"period": args.period, "currency": settings.currency or None,
                         "periods": [figures_dict(f) for f in figures], "cohorts": [cohort_dict(c) for c in cohorts],
                         "opening_note": note, "behind_note": behind_note(behind_ms, now_ms) or None}
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    # purchases only when there are some: a subscription product's "purchases of churned users 0.00" read
    # as a broken figure (QA16 F10; the console hides that card likewise)
    spent = (f"; purchases of churned users {result['churned_revenue']:,.2f} (their purchases up to the churn; "
             "subscription MRR is below)") if result["churned_revenue"] else ""
    print(f"churn over the {result['days']} days to {result['as_of'][:16].replace('T', ' ')} UTC (stream time): "
          f"{result['churned']:,} users churned = {100 * result['churn_rate']:.1f}% of {result['active_at_start']:,} "
          f"active at the start{_split(result)}{back_text(result['reactivated'])}{spent}")
    money = f" ({settings.currency})" if settings.currency else ""
    for f in result["revenue"]["periods"]:
        print(f"{args.period} from {f['period_start']}{money}: MRR {f['start_mrr']} -> {f['end_mrr']} (new {f['new']}, expansion "
              f"{f['expansion']}{intro_text(f)}, reactivation {f['reactivation']}, contraction {f['contraction']}, churned {f['churned']}"
              f"{involuntary_text(f)}{_pauses(f)}); "
              f"customers {f['customers_start']} -> {f['customers_end']}, won {f['won']}, lost {f['lost']}; "
              f"logo churn {f['logo_churn_pct'] or '-'}%, gross MRR churn {f['gross_mrr_churn_pct'] or '-'}%, "
              f"net MRR churn {f['net_mrr_churn_pct'] or '-'}%")
        # the retention figures of --json and ``report`` too (QA pass 9 L5: the text left them out)
        without = (f" ({f['nrr_full_price_pct'] or '-'}% with the intro prices ended at full price from the start)"
                   if "expansion_intro" in f else "")
        print(f"  NRR {f['nrr_pct'] or '-'}%{without}, GRR {f['grr_pct'] or '-'}%, quick ratio {f['quick_ratio'] or '-'}")
    if cohorts:
        from streams.cli.revenue import print_cohorts

        print_cohorts(cohorts)
    for line in (whole_periods_note(args.period, from_ms, to_ms, figures), note, result["revenue"]["behind_note"]):
        if line:
            print(f"\nnote: {line}")
    return 0


def _pauses(f: dict[str, object]) -> str:
    """A period's pauses and resumes for the text line, "" in a period without one (QA22a F1: its
    line stays as before): MRR that left with a pause is no churn, its customers are not lost.

    >>> _pauses({"paused": "13.99", "resumed": "0.00", "paused_customers": 1, "resumed_customers": 0}), _pauses({})
    (', paused 13.99 (1 customers), resumed 0.00 (0)', '')
    """
    if "paused" not in f:
        return ""
    return f", paused {f['paused']} ({f['paused_customers']} customers), resumed {f['resumed']} ({f['resumed_customers']})"
