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
from typing import Any, Mapping, Sequence

import orjson

from models.events import EVENT_ORDER, Event
from models.revenue_ledger import PERIODS, CohortRow, PeriodFigures, RevenueBook, cohort_dict, figures_dict, money_text, percent_text
from streams.cli.argtypes import parse_date_ms
from streams.errors import UserError
from streams.offline.history import drop_repeats, iter_events_csv
from streams.settings import Settings

__all__ = ["add_arguments", "build_report", "build_report_note", "same_instant_note", "cohort_dict", "figures_dict", "first_paid_ms", "involuntary_text", "money_in",
           "purchases_note", "intro_text", "counted_opening_note", "opening_counts", "opening_note", "owner_books", "read_history",
           "print_cohorts", "read_statements", "run"]  # the dicts: models.revenue_ledger

_MONEY = ("start_mrr", "new", "expansion", "contraction", "churned", "reactivation", "end_mrr", "net_new_mrr")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def read_statements(path: str | Path, currency: str = "") -> list[Event]:
    """The subscription events of ``path`` in ``(ts, event_id)`` order, exact repeats once;
    ``currency``: the deployment's, which a ``currency`` column must name."""
    return read_history(path, currency)[0]


def read_history(path: str | Path, currency: str = "") -> tuple[list[Event], int, int]:
    """:func:`read_statements`, and the times of the file's first and last events of any type
    (0, 0 for an empty file): where the history starts and ends (:func:`opening_counts`)."""
    events: list[Event] = []
    times: list[int] = []  # the first and last event times so far
    for ev in iter_events_csv(path, currency=currency):
        if not times:
            times = [ev.ts_ms, ev.ts_ms]
        elif not times[0] <= ev.ts_ms <= times[1]:
            times = [min(times[0], ev.ts_ms), max(times[1], ev.ts_ms)]
        if ev.subscription is not None:
            events.append(ev)
    events.sort(key=EVENT_ORDER)
    first_ms, last_ms = times if times else (0, 0)
    return drop_repeats(events), first_ms, last_ms


def first_paid_ms(book: RevenueBook) -> int | None:
    """When the history's first MRR movement is (its first paid statement), None without one."""
    return min((mv.ts_ms for mv in book.movements), default=None)


_DAY_MS = 86_400_000
#: :func:`opening_counts`: a history that begins with customers already paying states its first
#: paid statement within this of the file's first event (a monthly base renews on every day of
#: the file's first month: its first renewal within days) ...
OPENING_FIRST_MS = 7 * _DAY_MS
#: ... and states its whole base within the file's first billing month, so its first-time payers
#: of that month outnumber those of the next month, per day, by more than OPENING_BURST: a base
#: larger than a month's new business. A history from the product's launch ramps up instead
#: (QA19 F13, a neobank from its launch day: 52 first payers in its first 31 days, 124 in the next;
#: QA17's shop 288 and 46, QA18's B2B history 310 and 7).
OPENING_MONTH_MS = 31 * _DAY_MS
OPENING_BURST = 2.0
#: Less of the next month in the file than this, and the two cannot be compared: the note is said
OPENING_MIN_NEXT_MS = 7 * _DAY_MS


def opening_counts(new_ms: list[int], start_ms: int, end_ms: int) -> tuple[int, int] | None:
    """Whether the history opens on customers already paying, which its first period then counts as
    new: (first-time payers in the file's first 31 days, in the next 31 days; -1 when the file
    holds less than a week of those) when it does, None when it does not: the first paid
    statement comes more than a week after the file's first event (a monthly base would have
    renewed by then), or the first month's first payers are no burst (a launch ramping up).
    ``new_ms``: the times of the history's "new" movements; ``start_ms``/``end_ms``: its first
    and last events (:func:`read_history`).

    >>> day = 86_400_000
    >>> base = [d * day for d in range(31)] * 10 + [40 * day, 50 * day]   # 310 paying at the start, then 2 new
    >>> launch = [2 * day, 20 * day] + [d * day for d in range(31, 62)]     # 2 in the first month, 31 in the next
    >>> opening_counts(base, 0, 300 * day), opening_counts(launch, 0, 300 * day), opening_counts([20 * day], 0, 300 * day)
    ((310, 2), None, None)
    >>> opening_counts(base[:310], 0, 33 * day)   # 2 days of the next month: not told, said
    (310, -1)
    """
    if not new_ms or min(new_ms) - start_ms > OPENING_FIRST_MS:
        return None
    month_end = start_ms + OPENING_MONTH_MS
    first = sum(1 for t in new_ms if t < month_end)
    covered = min(end_ms, month_end + OPENING_MONTH_MS) - month_end
    if covered < OPENING_MIN_NEXT_MS:
        return first, -1
    after = sum(1 for t in new_ms if month_end <= t < month_end + OPENING_MONTH_MS)
    return (first, after) if first > OPENING_BURST * after * OPENING_MONTH_MS / covered else None


def opening_note(first_ms: int | None, figures: list[PeriodFigures], counts: tuple[int, int] | None = (0, -1),
                 days: bool = False) -> str | None:
    """What the first period's "new" holds when the history's statements begin inside it and it
    opens on customers already paying (``counts``, :func:`opening_counts`; None: it does not, no
    note): every customer already paying then is stated for the first time, so it is counted as
    new business and as that month's signup cohort (QA15 F8: January "new 49,551.07, won 275" for
    a whole existing base). Said, not changed: the file cannot tell an old customer from a new
    one; the next period's start MRR is the opening balance. A history that starts at the
    product's launch gets no note (QA19 F13: its January payers were new). ``days``: ``first_ms`` is
    a day's start, all the live counters keep (:func:`counted_opening_note`): the day is named, "the
    stream's paid statements begin 1970-01-01".

    >>> f = PeriodFigures(0, 10, 0, 500, 0, 0, 0, 0, 500, 0, 5, 0, 0, 5, 0, *[None] * 6)
    >>> opening_note(3, [f])
    "the history's paid statements begin 1970-01-01 00:00, inside the period from 1970-01-01: its new 5.00 (5 customers) counts every customer already paying then as new, and as that month's cohort; the next period's start MRR is the opening balance (--from the next period's first day)"
    >>> opening_note(3, [f], (5, 1)).endswith("first day; its first 31 days hold 5 first payments, the next 31 days 1: a base already paying)")
    True
    >>> opening_note(10, [f]) is None, opening_note(3, [f], None) is None
    (True, True)
    """
    if (counts is None or first_ms is None or not figures or not figures[0].start_ms <= first_ms < figures[0].end_ms
            or not figures[0].new_cents):
        return None
    head = figures[0]
    when = datetime.fromtimestamp(first_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d" if days else "%Y-%m-%d %H:%M")
    told = (f"; its first 31 days hold {counts[0]:,} first payments, the next 31 days {counts[1]:,}: a base already paying"
            if counts[1] >= 0 else "")
    return (f"the {'stream' if days else 'history'}'s paid statements begin {when}, inside the period from {_day(head.start_ms)}: its new "
            f"{money_text(head.new_cents)} ({head.new_customers:,} customers) counts every customer already paying then as new, "
            f"and as that month's cohort; the next period's start MRR is the opening balance (--from the next period's first "
            f"day{told})")


def counted_opening_note(day_totals: Mapping[int, Mapping[str, int]], stats: Mapping[str, float],
                         figures: list[PeriodFigures], now_ms: int) -> str | None:
    """:func:`opening_note` from the workers' live counters (``churn-rate``; QA20a F10: May's "new
    23610.00, won 47", a base already paying, printed without the note ``report`` gives it).
    Where the counting began is the earliest day a counter holds: a user first seen (the stats'
    ``new:<yyyymmdd>``, ``Store.stats``) or a revenue movement (the ``day`` period counters,
    ``Store.revenue_totals``: ``day_totals``); the paid statements begin on the earliest
    movement's day, and the first payers of each day are its ``n_new`` (:func:`opening_counts`, up
    to ``now_ms``, the stream time). Nothing is written for it: those counters are kept for good
    (one is dropped only at 0, when it counts nothing). Days, not minutes: what the counters keep.

    >>> day = 86_400_000
    >>> f = PeriodFigures(0, 31 * day, 0, 500, 0, 0, 0, 0, 500, 0, 5, 0, 0, 5, 0, *[None] * 6)
    >>> totals = {day: {"new": 500, "n_new": 5}, 40 * day: {"new": 100, "n_new": 1}}
    >>> counted_opening_note(totals, {"new:19700101": 3.0}, [f], 80 * day)[:100]
    "the stream's paid statements begin 1970-01-02, inside the period from 1970-01-01: its new 5.00 (5 cu"
    >>> counted_opening_note(totals, {"new:19691101": 3.0}, [f], 80 * day) is None   # counting began 2 months earlier
    True
    >>> counted_opening_note({}, {}, [f], 80 * day) is None
    True
    """
    moved = [start for start, t in day_totals.items() if any(t.values())]
    if not moved:
        return None
    seen = [int(datetime.strptime(k[4:], "%Y%m%d").replace(tzinfo=timezone.utc).timestamp()) * 1000
            for k in stats if k.startswith("new:")]
    paid = min(moved)
    new_ms = [start for start, t in day_totals.items() for _ in range(max(0, int(t.get("n_new", 0))))]
    return opening_note(paid, figures, opening_counts(new_ms, min([paid, *seen]), now_ms), days=True)


def whole_periods_note(period: str, from_ms: int | None, to_ms: int | None, figures: list[PeriodFigures]) -> str | None:
    """What the figures cover when ``--from``/``--to`` fall inside a period: the ledger counts whole
    periods, so ``--from 2026-10-01 --to 2026-10-15`` printed all of October under "month from
    2026-10-01" and nothing said so (QA21 F10). None when the bounds are the periods' own.

    >>> from types import SimpleNamespace
    >>> oct_ = SimpleNamespace(start_ms=1790812800000, end_ms=1793491200000)  # October 2026
    >>> whole_periods_note("month", 1790812800000, 1792022400000, [oct_])
    'the figures are whole months, 2026-10-01 to 2026-11-01 (exclusive): --to 2026-10-15 falls inside the last one'
    >>> whole_periods_note("month", 1790812800000, 1793491200000, [oct_]) is None
    True
    """
    if not figures:
        return None
    inside = []
    if from_ms is not None and from_ms != figures[0].start_ms:
        inside.append(f"--from {_day(from_ms)} falls inside the first one")
    if to_ms is not None and to_ms != figures[-1].end_ms:
        inside.append(f"--to {_day(to_ms)} falls inside the last one")
    if not inside:
        return None
    return (f"the figures are whole {period}s, {_day(figures[0].start_ms)} to {_day(figures[-1].end_ms)} (exclusive): "
            + " and ".join(inside))


def build_report(path: str | Path, from_ms: int, to_ms: int, period: str,
                 currency: str = "") -> tuple[RevenueBook, list[PeriodFigures]]:
    """Every subscription event of ``path`` through a :class:`RevenueBook`, then the periods."""
    book, figures, _, _ = build_report_note(path, from_ms, to_ms, period, currency)
    return book, figures


def build_report_note(path: str | Path, from_ms: int, to_ms: int, period: str,
                      currency: str = "") -> tuple[RevenueBook, list[PeriodFigures], str | None, str | None]:
    """:func:`build_report`, its :func:`opening_note` and its :func:`same_instant_note` (None: no
    note), from one read of the file."""
    statements, start_ms, end_ms = read_history(path, currency)
    book = RevenueBook(period)  # type: ignore[arg-type]
    for ev in statements:
        book.update(ev)
    figures = book.get(from_ms, to_ms)
    counts = opening_counts([mv.ts_ms for mv in book.movements if mv.kind == "new"], start_ms, end_ms)
    return book, figures, opening_note(first_paid_ms(book), figures, counts), same_instant_note(statements)


def same_instant_note(statements: Sequence[Event]) -> str | None:
    """What the report says when one subscription (account, user) has statements of different
    status, plan or MRR at one instant: the ledger takes the larger (docs/REVENUE.md, "How the
    state works"), so a downgrade stated at the same second as the renewal notice of the old plan
    is booked at the next statement, often a month later. QA25b F6: a marketplace's downgrades to
    its free plan at the renewal instant moved 39.00 of churn from April to May, unsaid. None
    without any (a repeat of one statement, or a renewal that moves only the period end, is none).

    >>> from models.subscription import Subscription
    >>> def st(t, plan, mrr):
    ...     return Event("shop369_o", t, "subscription", f"{t}{plan}", 0.0, "shop369", Subscription("active", plan, mrr))
    >>> same_instant_note([st(1776654000000, "pro", 3900), st(1776654000000, "basic", 0), st(1, "pro", 3900)])
    '1 subscription has different statements at one instant (the first: shop369, user shop369_o, 2026-04-20T03:00:00Z: active basic 0.00 / active pro 39.00): the larger is booked, the others ignored (docs/REVENUE.md, "How the state works"); state a change a moment after the renewal it follows'
    >>> same_instant_note([st(1, "pro", 3900), st(1, "pro", 3900)]) is None
    True
    """
    by: dict[tuple[str, str, int], set[tuple[str, str, int]]] = {}
    for ev in statements:
        sub = ev.subscription
        if sub is not None:
            by.setdefault((ev.account_id, ev.user_id, ev.ts_ms), set()).add((sub.status, sub.plan, sub.mrr_cents))
    clashes = sorted((ts, account, user) for (account, user, ts), said in by.items() if len(said) > 1)
    if not clashes:
        return None
    ts, account, user = clashes[0]
    said = " / ".join(f"{status} {plan} {money_text(mrr)}" for status, plan, mrr in sorted(by[(account, user, ts)]))
    when = datetime.fromtimestamp(ts / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    n = len({(account, user) for _, account, user in clashes})
    return (f"{n:,} subscription{'s have' if n != 1 else ' has'} different statements at one instant (the first: {account}, "
            f"user {user}, {when}: {said}): the larger is booked, the others ignored (docs/REVENUE.md, \"How the state works\"); "
            "state a change a moment after the renewal it follows")


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
    book, figures, note, clash = build_report_note(args.events, from_ms, to_ms, args.period, settings.currency)
    cohorts = book.cohorts.get(to_ms)
    if args.json:
        print(orjson.dumps({**_head(args, settings, from_ms, to_ms), **_book_dict(book, figures, cohorts),
                            "opening_note": note, "same_instant_note": clash}).decode())
        purchases = purchases_note(args.events, settings, bool(book.accounts))
        if purchases:  # on stderr: stdout stays one JSON object
            print(purchases, file=sys.stderr)
        return 0
    _print_periods(figures)
    if cohorts:
        print_cohorts(cohorts)
    for line in (whole_periods_note(args.period, from_ms, to_ms, figures), note, clash):
        if line:
            print(f"\nnote: {line}")
    print(f"{len(book.accounts):,} accounts; {money_in(settings.currency)}; rates in %; "
          f"definitions in docs/REVENUE.md" + (f"; {book.late} late statements ignored" if book.late else ""))
    purchases = purchases_note(args.events, settings, bool(book.accounts))
    if purchases:
        print(purchases)
    return 0


def purchases_note(path: str | Path, settings: Settings, statements: bool) -> str | None:
    """What the file's purchases are to the report: not MRR. Without statements the figures are all
    0 and the line is always said (QA12 F8); beside statements it is said when purchases exist
    (QA25a F1: a prepaid operator's 53,503 top-ups, 1.19M of money against bundles' ~5,000 MRR a
    month, were in none of the figures, unsaid). Purchases are the events of the deployment model's
    ``purchase`` role (models.vocabulary), exact repeats once."""
    from models.model import load_model
    from models.vocabulary import PURCHASE

    vocabulary = load_model(settings.model_path or None).compiled.vocabulary
    bought = [ev for ev in iter_events_csv(path, currency=settings.currency) if vocabulary.lookup(ev.type)[1] == PURCHASE]
    bought.sort(key=EVENT_ORDER)
    bought = drop_repeats(bought)
    total = sum(ev.amount for ev in bought)
    if not statements:
        return (f"no subscription statements in {Path(path).name}: {len(bought):,} purchases (total {total:,.2f}) are not MRR; "
                "see `churnwatch churn-rate` for spend of churned users")
    if not bought:
        return None
    return (f"{Path(path).name} also holds {len(bought):,} purchases (total {total:,.2f}): they are not MRR and in none "
            "of these figures (subscription statements only); see `churnwatch churn-rate` for spend of churned users")


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


def involuntary_text(d: dict[str, Any]) -> str:
    """" (after failed payments 171.00, 12 accounts)": the involuntary part of a period's churn
    (``figures_dict``), "" when there is none (QA22a F5: voluntary and involuntary churn were one figure).

    >>> involuntary_text({"churned_involuntary_cents": 17100, "churned_involuntary": "171.00", "lost_involuntary": 12}), involuntary_text({"churned_involuntary_cents": 0})
    (' (after failed payments 171.00, 12 accounts)', '')
    """
    if not d["churned_involuntary_cents"]:
        return ""
    n = d["lost_involuntary"]
    return f" (after failed payments {d['churned_involuntary']}, {n} account{'s' * (n != 1)})"


def intro_text(d: dict[str, Any]) -> str:
    """" (intro prices ended 863.04, 96 accounts)": the part of a period's expansion that is
    introductory prices ended at their first full-price renewal (``figures_dict``; QA24a F2), ""
    when there is none.

    >>> intro_text({"expansion_intro": "863.04", "intro_customers": 96}), intro_text({})
    (' (intro prices ended 863.04, 96 accounts)', '')
    """
    if "expansion_intro" not in d:
        return ""
    n = d["intro_customers"]
    return f" (intro prices ended {d['expansion_intro']}, {n} account{'s' * (n != 1)})"


def _print_periods(figures: list[PeriodFigures]) -> None:
    """The report's table; a column "invol." (the churned MRR after failed payments: QA22a F5) where
    some period has any, and a "paused" and a "resumed" column (after "reactiv.") where a period holds
    a pause or a resume (QA22a F1), an "intro" column (after "expansion": of it, introductory prices
    ended) and "NRR-f %" (NRR with them at the full price from the period's start) where a period holds
    one (QA24a F2): a file with none
    prints as before."""
    invol = any(f.churned_involuntary_cents for f in figures)
    intro = any(f.intro_cents or f.intro_customers for f in figures)
    paused = any(f.paused_cents or f.resumed_cents or f.paused_customers or f.resumed_customers for f in figures)
    head = ("period", "start MRR", "new", "expansion", *(("intro",) if intro else ()), "contraction", "churned",
            *(("invol.",) if invol else ()), "reactiv.", *(("paused", "resumed") if paused else ()), "end MRR", "cust.", "won", "lost",
            "logo %", "gross %", "net %", "NRR %", *(("NRR-f %",) if intro else ()), "GRR %", "quick")
    rows = []
    for f in figures:
        d = figures_dict(f)
        pauses = (money_text(f.paused_cents), money_text(f.resumed_cents)) if paused else ()
        intros = (money_text(f.intro_cents),) if intro else ()
        rates = ("logo_churn_pct", "gross_mrr_churn_pct", "net_mrr_churn_pct", "nrr_pct",
                 *(("nrr_full_price_pct",) if intro else ()), "grr_pct", "quick_ratio")
        rows.append((d["period_start"], *(d[k] for k in _MONEY[:3]), *intros, *(d[k] for k in _MONEY[3:5]),
                     *((d["churned_involuntary"],) if invol else ()), d[_MONEY[5]], *pauses, d["end_mrr"], str(f.customers_start),
                     str(f.won), str(f.churned_customers), *((d.get(k, d["nrr_pct"]) or "-") for k in rates)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    for r in (head, *rows):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    if invol:
        print("invol. = of the churned MRR, that of subscriptions cancelled while past due (after failed payments: involuntary)")
    if intro:
        print("intro = of the expansion, introductory prices ended (the first full-price renewal after a first period at a lower "
              "price on the same plan); NRR-f = NRR with their customers at the full price from the period's start")


def print_cohorts(cohorts: list[CohortRow]) -> None:
    print("\nMRR retention by signup-month cohort (% of the cohort's new-business MRR; customers in brackets)")
    for c in cohorts:
        cells = [f"{percent_text(rr, 1) or '-'} ({n})" for _, n, _, _, rr in c.months]
        print(f"  {_day(c.cohort_ms)[:7]}  {c.customers:>4} cust.  {money_text(c.value_cents):>10}  " + "  ".join(cells))
