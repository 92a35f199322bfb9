"""``churnwatch report``: churn in money and count over a history file.

The file is read as ``train`` and ``backtest`` read history (streams/offline/history.py), events
are applied in ``(ts, event_id)`` order, and every figure comes from ``models.revenue`` and
``models.revenue_ledger``, the code a worker will run on the stream. Definitions: docs/REVENUE.md.

``--accounts FILE --by-owner`` prints the same table per account manager: the accounts are grouped
by their ``owner`` in the accounts file (``churnwatch accounts import``'s format) and each group's
statements go through a :class:`RevenueBook` of its own. An account's movements depend only on its
own statements, so the groups' figures add up to the whole file's, to the cent.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

import orjson

from models.events import EVENT_ORDER, Event
from models.revenue_ledger import PERIODS, CohortRow, PeriodFigures, RevenueBook, cohort_dict, figures_dict, money_text, percent_text
from streams.cli.argtypes import parse_date_ms
from streams.errors import UserError
from streams.offline.history import drop_repeats, iter_events_csv
from streams.settings import Settings

__all__ = ["add_arguments", "build_report", "cohort_dict", "figures_dict", "first_paid_ms", "money_in", "no_statements_note",
           "opening_note", "owner_books",
           "print_cohorts", "read_statements", "run"]  # the dicts: models.revenue_ledger

_MONEY = ("start_mrr", "new", "expansion", "contraction", "churned", "reactivation", "end_mrr", "net_new_mrr")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def read_statements(path: str | Path, currency: str = "") -> list[Event]:
    """The subscription events of ``path`` in ``(ts, event_id)`` order, exact repeats once;
    ``currency``: the deployment's, which a ``currency`` column must name."""
    events = [ev for ev in iter_events_csv(path, currency=currency) if ev.subscription is not None]
    events.sort(key=EVENT_ORDER)
    return drop_repeats(events)


def first_paid_ms(book: RevenueBook) -> int | None:
    """When the history's first MRR movement is (its first paid statement), None without one."""
    return min((mv.ts_ms for mv in book.movements), default=None)


def opening_note(first_ms: int | None, figures: list[PeriodFigures]) -> str | None:
    """What the first period's "new" holds when the history's statements begin inside it: every
    customer already paying then is stated for the first time, so it is counted as new business
    and as that month's signup cohort (QA15 F8: January "new 49,551.07, won 275" for a whole
    existing base). Said, not changed: the file cannot tell an old customer from a new one; the
    next period's start MRR is the opening balance.

    >>> f = PeriodFigures(0, 10, 0, 500, 0, 0, 0, 0, 500, 0, 5, 0, 0, 5, 0, *[None] * 6)
    >>> opening_note(3, [f])
    "the history's paid statements begin 1970-01-01 00:00, inside the period from 1970-01-01: its new 5.00 (5 customers) counts every customer already paying then as new, and as that month's cohort; the next period's start MRR is the opening balance (--from the next period's first day)"
    >>> opening_note(10, [f]) is None
    True
    """
    if first_ms is None or not figures or not figures[0].start_ms <= first_ms < figures[0].end_ms or not figures[0].new_cents:
        return None
    head = figures[0]
    when = datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    return (f"the history's paid statements begin {when}, inside the period from {_day(head.start_ms)}: its new "
            f"{money_text(head.new_cents)} ({head.new_customers:,} customers) counts every customer already paying then as new, "
            f"and as that month's cohort; the next period's start MRR is the opening balance (--from the next period's first day)")


def build_report(path: str | Path, from_ms: int, to_ms: int, period: str,
                 currency: str = "") -> tuple[RevenueBook, list[PeriodFigures]]:
    """Every subscription event of ``path`` through a :class:`RevenueBook`, then the periods."""
    book = RevenueBook(period)  # type: ignore[arg-type]
    for ev in read_statements(path, currency):
        book.update(ev)
    return book, book.get(from_ms, to_ms)


def owner_books(events: list[Event], owners: Mapping[str, str], period: str) -> dict[str, RevenueBook]:
    """One :class:`RevenueBook` per owner (``owners``: account id -> owner; an account it does not
    name, or names without an owner, is under ""), fed that owner's accounts' ``events`` in order."""
    books: dict[str, RevenueBook] = {}
    for ev in events:
        owner = owners.get(ev.account, "")
        book = books.get(owner)
        if book is None:
            book = books[owner] = RevenueBook(period)  # type: ignore[arg-type]
        book.update(ev)
    return books


def money_in(currency: str) -> str:
    """How the figures' money is named: the deployment's currency, or that it is the file's one.

    >>> money_in("EUR"), money_in("")
    ('money in EUR', "money in the file's currency (one currency; CHURNWATCH_CURRENCY names it)")
    """
    return f"money in {currency}" if currency else "money in the file's currency (one currency; CHURNWATCH_CURRENCY names it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, metavar="FILE.csv[.gz]",
                        help="history with subscription events (columns user_id,ts,event_type,amount,account_id,status,plan,mrr)")
    parser.add_argument("--from", dest="from_", required=True, metavar="DATE", help="first day, UTC (e.g. 2026-01-01)")
    parser.add_argument("--to", required=True, metavar="DATE", help="end, exclusive, UTC (e.g. 2026-07-01)")
    parser.add_argument("--period", choices=PERIODS, default="month", help="day, week (ISO, from Monday) or month (default)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    parser.add_argument("--accounts", metavar="ACCOUNTS.csv",
                        help="the accounts file (account_id,owner,...: the format of `churnwatch accounts import`), for --by-owner")
    parser.add_argument("--by-owner", action="store_true",
                        help="the same figures per account owner of --accounts (accounts it does not name: no owner)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from_ms, to_ms = parse_date_ms(args.from_, "--from"), parse_date_ms(args.to, "--to")
    if to_ms <= from_ms:
        raise UserError(f"--to {args.to} is not after --from {args.from_}")
    if not Path(args.events).is_file():
        raise UserError(f"--events: {args.events} is not a file")
    if args.by_owner != bool(args.accounts):
        raise UserError("--by-owner needs --accounts ACCOUNTS.csv" if args.by_owner else
                        "--accounts is read for --by-owner (add it, or leave --accounts out)")
    if args.by_owner:
        return _by_owner(args, settings, from_ms, to_ms)
    book, figures = build_report(args.events, from_ms, to_ms, args.period, settings.currency)
    cohorts = book.cohorts.get(to_ms)
    if args.json:
        print(orjson.dumps({**_head(args, settings, from_ms, to_ms), **_book_dict(book, figures, cohorts),
                            "opening_note": opening_note(first_paid_ms(book), figures)}).decode())
        if not book.accounts:  # on stderr: stdout stays one JSON object
            print(no_statements_note(args.events, settings), file=sys.stderr)
        return 0
    _print_periods(figures)
    if cohorts:
        print_cohorts(cohorts)
    note = opening_note(first_paid_ms(book), figures)
    if note:
        print(f"\nnote: {note}")
    print(f"{len(book.accounts):,} accounts; {money_in(settings.currency)}; rates in %; "
          f"definitions in docs/REVENUE.md" + (f"; {book.late} late statements ignored" if book.late else ""))
    if not book.accounts:
        print(no_statements_note(args.events, settings))
    return 0


def no_statements_note(path: str | Path, settings: Settings) -> str:
    """The line ``report`` adds for a file without subscription statements (every statement makes
    an account): its MRR is all zeros, and the purchases it holds are not MRR. QA12 F8: a shop's
    history printed six months of 0.00 and "0 accounts" without saying why. Purchases are the
    events of the deployment model's ``purchase`` role (models.vocabulary), exact repeats once."""
    from models.model import load_model
    from models.vocabulary import PURCHASE

    vocabulary = load_model(settings.model_path or None).compiled.vocabulary
    bought = [ev for ev in iter_events_csv(path, currency=settings.currency) if vocabulary.lookup(ev.type)[1] == PURCHASE]
    bought.sort(key=EVENT_ORDER)
    bought = drop_repeats(bought)
    total = sum(ev.amount for ev in bought)
    return (f"no subscription statements in {Path(path).name}: {len(bought):,} purchases (total {total:,.2f}) are not MRR; "
            "see `churnwatch churn-rate` for spend of churned users")


def _head(args: argparse.Namespace, settings: Settings, from_ms: int, to_ms: int) -> dict[str, object]:
    return {"events": str(args.events), "period": args.period, "from": _day(from_ms), "to": _day(to_ms),
            "currency": settings.currency or None}


def _book_dict(book: RevenueBook, figures: list[PeriodFigures], cohorts: list[CohortRow]) -> dict[str, object]:
    return {"accounts": len(book.accounts), "late_statements": book.late,
            "periods": [figures_dict(f) for f in figures], "cohorts": [cohort_dict(c) for c in cohorts]}


def _by_owner(args: argparse.Namespace, settings: Settings, from_ms: int, to_ms: int) -> int:
    """``report --accounts FILE --by-owner``: the table per owner, owners by name, no owner last."""
    from streams.cli.accounts import read_accounts_csv

    owners = {a.account_id: a.owner for a in read_accounts_csv(args.accounts) if not a.deleted}
    books = owner_books(read_statements(args.events, settings.currency), owners, args.period)
    order = sorted(books, key=lambda o: (not o, o))
    if args.json:
        print(orjson.dumps({**_head(args, settings, from_ms, to_ms), "accounts_file": str(args.accounts), "owners": [
            {"owner": o or None, **_book_dict(books[o], books[o].get(from_ms, to_ms), books[o].cohorts.get(to_ms))}
            for o in order]}).decode())
        return 0
    for i, o in enumerate(order):
        book = books[o]
        print(("\n" if i else "") + (f"owner {o}" if o else "no owner (accounts without an owner in the accounts file)")
              + f": {len(book.accounts):,} account{'s' * (len(book.accounts) != 1)}"
              + (f", {book.late} late statements ignored" if book.late else ""))
        _print_periods(book.get(from_ms, to_ms))
    if not order:
        print("no subscription statements in the file")
    print(f"\n{sum(len(b.accounts) for b in books.values()):,} accounts; each owner's accounts as the accounts file "
          f"assigns them now; {money_in(settings.currency)}; rates in %; definitions in docs/REVENUE.md")
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
