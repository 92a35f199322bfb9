"""``churnwatch report``: churn in money and count over a history file.

The file is read as ``train`` and ``backtest`` read history (streams/offline/history.py), events
are applied in ``(ts, event_id)`` order, and every figure comes from ``models.revenue`` and
``models.revenue_ledger``, the code a worker will run on the stream. Definitions: docs/REVENUE.md.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

import orjson

from models.events import EVENT_ORDER
from models.revenue_ledger import PERIODS, CohortRow, PeriodFigures, RevenueBook, cohort_dict, figures_dict, money_text, percent_text
from streams.cli.argtypes import parse_date_ms
from streams.errors import UserError
from streams.offline.history import drop_repeats, iter_events_csv
from streams.settings import Settings

__all__ = ["add_arguments", "build_report", "cohort_dict", "figures_dict", "print_cohorts", "run"]  # the dicts: models.revenue_ledger

_MONEY = ("start_mrr", "new", "expansion", "contraction", "churned", "reactivation", "end_mrr", "net_new_mrr")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def build_report(path: str | Path, from_ms: int, to_ms: int, period: str) -> tuple[RevenueBook, list[PeriodFigures]]:
    """Every subscription event of ``path`` through a :class:`RevenueBook`, then the periods."""
    events = [ev for ev in iter_events_csv(path) if ev.subscription is not None]
    events.sort(key=EVENT_ORDER)
    events = drop_repeats(events)
    book = RevenueBook(period)  # type: ignore[arg-type]
    for ev in events:
        book.update(ev)
    return book, book.get(from_ms, to_ms)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, metavar="FILE.csv[.gz]",
                        help="history with subscription events (columns user_id,ts,event_type,amount,account_id,status,plan,mrr)")
    parser.add_argument("--from", dest="from_", required=True, metavar="DATE", help="first day, UTC (e.g. 2026-01-01)")
    parser.add_argument("--to", required=True, metavar="DATE", help="end, exclusive, UTC (e.g. 2026-07-01)")
    parser.add_argument("--period", choices=PERIODS, default="month", help="day, week (ISO, from Monday) or month (default)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from_ms, to_ms = parse_date_ms(args.from_, "--from"), parse_date_ms(args.to, "--to")
    if to_ms <= from_ms:
        raise UserError(f"--to {args.to} is not after --from {args.from_}")
    if not Path(args.events).is_file():
        raise UserError(f"--events: {args.events} is not a file")
    book, figures = build_report(args.events, from_ms, to_ms, args.period)
    cohorts = book.cohorts.get(to_ms)
    if args.json:
        print(orjson.dumps({
            "events": str(args.events), "period": args.period, "from": _day(from_ms), "to": _day(to_ms),
            "accounts": len(book.accounts), "late_statements": book.late,
            "periods": [figures_dict(f) for f in figures], "cohorts": [cohort_dict(c) for c in cohorts],
        }).decode())
        return 0
    _print_periods(figures)
    if cohorts:
        print_cohorts(cohorts)
    print(f"{len(book.accounts):,} accounts; money in the file's currency; rates in %; "
          f"definitions in docs/REVENUE.md" + (f"; {book.late} late statements ignored" if book.late else ""))
    return 0


def _print_periods(figures: list[PeriodFigures]) -> None:
    head = ("period", "start MRR", "new", "expansion", "contraction", "churned", "reactiv.", "end MRR",
            "cust.", "won", "lost", "logo %", "gross %", "net %", "NRR %", "GRR %", "quick")
    rows = []
    for f in figures:
        d = figures_dict(f)
        rows.append((d["period_start"], *(d[k] for k in _MONEY[:7]), str(f.customers_start), str(f.won),
                     str(f.churned_customers), *((d[k] or "-") for k in ("logo_churn_pct", "gross_mrr_churn_pct",
                                                                          "net_mrr_churn_pct", "nrr_pct", "grr_pct", "quick_ratio"))))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    for r in (head, *rows):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


def print_cohorts(cohorts: list[CohortRow]) -> None:
    print("\nMRR retention by signup-month cohort (% of the cohort's new-business MRR; customers in brackets)")
    for c in cohorts:
        cells = [f"{percent_text(rr, 1) or '-'} ({n})" for _, n, _, _, rr in c.months]
        print(f"  {_day(c.cohort_ms)[:7]}  {c.customers:>4} cust.  {money_text(c.value_cents):>10}  " + "  ".join(cells))
