"""``churnwatch top``: today's ranked list within a budget, to save (reachable users by the savable
part of their risk, shown as ``save``) or to win back (lapsed users by temperature, then value: spend, active days, the latest leave),
models.ranking; ``--by value`` either list by the value at stake (the list's chance x the user's MRR plus
purchases per month, QA22b F8). With
``--owner NAME``: the owner's book, that owner's at-risk accounts ranked (streams/views.py); with
``--win-back`` the owner's accounts whose subscription is gone (churned, trials lost without
paying), largest lost MRR first, as the console's win-back tab lists them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import orjson

from models.signals import paid_period_end_s
from models.state import never_paid_trial
from models.subscription import calendar_days
from streams.cli.argtypes import positive_int
from streams.timefmt import format_ts
from streams.errors import UserError
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.views import UserReport

__all__ = ["add_arguments", "count_line", "run", "user_rows"]


def _share(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100.0 if text.endswith("%") else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"share {text!r} is not a number such as 0.02 or 2%") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"share {text!r} must be above 0 and at most 1 (100%) of the candidate users")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("-n", type=positive_int("users or accounts", "user or account"), default=None,
                        help="budget: how many users (default 20) among those with an open at-risk alert, as the console lists them "
                             "(--share ranks every user of the list's stages); with --owner, how many accounts (QA15 F9: the error said users)")
    budget.add_argument("--share", type=_share, default=None, help="budget: this share of the candidate users, such as 0.02 or 2%%")
    parser.add_argument("--win-back", dest="win_back", action="store_true",
                        help="the win-back list (lapsed users, warmest first: most likely back within the horizon) instead of the save list; "
                        "with -n those whose at-risk alert is open, as the console lists them (a user who lapsed without one, "
                        "such as one who cancelled, is listed by --share only: --share 100%% is every lapsed user with an activity event; "
                        "one whose only event is a cancellation is in no list)")
    parser.add_argument("--by", choices=("chance", "mrr", "value"), default="chance",
                        help="chance (default): the list's own order (save: the savable risk; --win-back: warmest first, then spend, "
                        "active days, the latest leave); mrr, with --win-back: the largest MRR a lapsed user's own "
                        "subscription lost first (every lapsed user, as --share 100%%, then cut to -n or --share), "
                        "never-paid trials after the lapsed payers; value, either list: the largest value at stake first, the savable risk "
                        "(--win-back: the risk) x the user's own MRR (--win-back: the MRR it lost) plus their purchases "
                        "per month since the first (every user of the list, as --share 100%%, then cut), shown as 'at stake'")
    parser.add_argument("--owner", metavar="NAME", help="the owner's book: at-risk accounts of this owner (accounts table); "
                        "with --win-back those whose subscription is gone (churned, trials lost), largest lost MRR first")
    parser.add_argument("--all", action="store_true", help="with --owner: every account of the owner, not only those at risk")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.views import open_reader, top_users

    _check_combination(args)
    if args.owner is not None:
        return _owner_book(args, settings)
    with open_reader(settings) as reader:
        reports = top_users(reader, settings, args.n, share=args.share, kind="win_back" if args.win_back else "save",
                            by=args.by)
    if args.json:
        for r in reports:
            print(orjson.dumps(r.to_dict()).decode())
        return 0
    if not reports:
        print("no lapsed user to win back" if args.win_back else "no new, active or declining user to rank")
        return 0
    if args.share is None and args.by == "chance" and len(reports) < (args.n or 20):
        print(count_line(len(reports), args.n or 20, args.win_back))
    for line in user_rows(reports, save=not args.win_back):
        print(line)
    return 0


def user_rows(reports: list, save: bool) -> list[str]:  # type: ignore[type-arg]
    """The user list as table lines: header first. ``save``: the save list, whose order is the
    savable part of the risk (models.ranking), shown as ``save``. A ``spend`` column (the user's
    purchases to date, the JSON's ``revenue``) when anyone listed has bought: a shop's win-back
    list ranks warmest first, then by spend, and a marketer choosing whom to call wants to see it
    (QA12 F6: it was in ``--json`` only); a product without purchases keeps its table as it was.
    An ``overdue`` column (QA12 F5) when anyone listed is a repeat buyer: days their next order is
    overdue against their own re-order rhythm (models.signals.days_overdue; negative: days until
    it is due), blank for the others: whom the shop's save list should call first, those who just
    missed a re-order. Likewise a ``lost MRR`` column (the JSON's ``lost_mrr``) on the win-back list when a listed user's
    own subscription churned (QA14 F5: subscribers' spend is 0, so lapsed payers and never-paid
    trials looked alike); in it a trial that never paid (models.state.never_paid_trial) reads ``trial``, not
    0.00: a lead lost, not a customer (QA23a F2: 651 of a fitness app's 795 lapsed users; the
    order stays the list's, warmest first: ``--by mrr`` puts the payers first). An ``at stake``
    column (the JSON's ``value_at_stake``) in ``--by value``'s order, which it is (QA22b F8). A
    ``renews`` column on the save list when a listed user's paid period runs: calendar days to its
    last day paid, the order among equals (models.ranking.save_rank: a silent subscriber's
    deadline, QA23a F3), blank for the others."""
    spend = any(r.state.revenue > 0 for r in reports)
    stake = any(r.value_at_stake is not None for r in reports)
    renews = [_renews_cell(r) for r in reports] if save else []
    renew = any(cell.strip() for cell in renews)
    overdue = any(r.overdue_days is not None for r in reports)
    lost = any((r.lost_mrr_cents or 0) > 0 or r.lost_mrr_cents is not None and never_paid_trial(r.state.flags) for r in reports)
    lines = [f"{'#':>3}  {'user':<16} {'risk':>5} " + (f"{'save':>5} " if save else "")
             + f"{'health':>6} {'temp':>5}  " + (f"{'spend':>9}  " if spend else "") + (f"{'lost MRR':>9}  " if lost else "")
             + (f"{'overdue':>7}  " if overdue else "") + (f"{'renews':>6}  " if renew else "")
             + (f"{'at stake':>9}  " if stake else "") + f"{'stage':<11} {'action':<9} reason"]
    for i, r in enumerate(reports, start=1):
        s = r.scores
        reason = s.reasons[0] if s.reasons else ""
        lines.append(f"{i:>3}  {r.user_id:<16} {s.risk:>5.2f} " + (f"{r.savable or 0.0:>5.2f} " if save else "")
                     + f"{s.health:>6.0f} {s.temperature:>5.0f}  " + (f"{r.state.revenue:>9.2f}  " if spend else "")
                     + (f"{_lost_cell(r)}  " if lost else "")
                     + (f"{_overdue_cell(r.overdue_days)}  " if overdue else "") + (f"{renews[i - 1]}  " if renew else "")
                     + (f"{r.value_at_stake or 0.0:>9.2f}  " if stake else "")
                     + f"{s.stage:<11} {s.action.replace('_', ' '):<9} {reason}")
    return lines


def _renews_cell(r: UserReport) -> str:
    """Calendar days to the last day a running paid period covers ("in 241 d" as "241", as the
    reasons count them: models.subscription.calendar_days), 6 wide; blank without one."""
    end_ms = paid_period_end_s(r.state) * 1000
    return f"{calendar_days(end_ms - 1, r.as_of_ms):>6d}" if end_ms > r.as_of_ms else f"{'':>6}"


def _lost_cell(r: UserReport) -> str:
    """The ``lost MRR`` cell, 9 wide: ``trial`` for a trial that never paid (models.state.never_paid_trial)."""
    return f"{'trial':>9}" if never_paid_trial(r.state.flags) and not r.lost_mrr_cents else f"{(r.lost_mrr_cents or 0) / 100:>9.2f}"


def _overdue_cell(days: float | None) -> str:
    """Whole days, signed, 7 wide; blank for a user with no re-order rhythm.

    >>> _overdue_cell(13.4), _overdue_cell(-5.6), _overdue_cell(None)
    ('    +13', '     -6', '       ')
    """
    return f"{'':>7}" if days is None else f"{round(days):>+7d}"


def count_line(listed: int, asked: int, win_back: bool) -> str:
    """The line above a list shorter than ``-n`` asked for: only the users with an open at-risk
    alert are on it (:func:`streams.views.top_users`), so "top -n 20" printing 10 rows said
    nothing of why (QA11 F9; ``digest`` says "2 of 3").

    >>> count_line(10, 20, False), count_line(1, 5, True)
    ('10 users to save (fewer than the 20 asked for: no other new, active or declining user has an open at-risk alert)', '1 user to win back (fewer than the 5 asked for: no other lapsed user has an open at-risk alert)')

    The save list's stages are named (models.lifecycle.JUDGED): a user just back ("reactivated")
    is reachable but on neither list, so "no other reachable user" was not true of one whose
    alert is still open.
    """
    what = "to win back" if win_back else "to save"
    who = "lapsed" if win_back else "new, active or declining"
    return (f"{listed} user{'s' if listed != 1 else ''} {what} (fewer than the {asked} asked for: "
            f"no other {who} user has an open at-risk alert)")


def _check_combination(args: argparse.Namespace) -> None:
    """Refuse, in one line (exit 2), the options that do not go together rather than print a list
    they did not ask for: ``--all`` is the owner's book's, ``--share`` ranks users, and
    ``--owner --win-back`` lists the accounts that left, which ``--all`` would contradict."""
    if args.owner is None and args.all:
        raise UserError("--all lists every account of an owner: give --owner NAME")
    if args.owner is not None and args.share is not None:
        raise UserError("--share ranks users; an owner's book takes -n accounts")
    if args.owner is not None and args.win_back and args.all:
        raise UserError("--win-back lists the owner's churned accounts; --all every account: give one")
    if args.by != "chance" and args.owner is not None:  # QA20a F4: with --win-back given it said "give --win-back"
        raise UserError("--by ranks the users' lists, not an owner's book (its --win-back is by lost MRR already): leave --by out")
    if args.by == "mrr" and not args.win_back:
        raise UserError("--by mrr ranks the users' win-back list: give --win-back, or --by value for the save list (an owner's win-back book is by lost MRR already)")


#: Widest the book's name column gets; a longer name is cut with an ellipsis.
_NAME_WIDTH = 24


def _name_cell(name: str) -> str:
    """The account's name as the book's column shows it: "-" when the accounts table has none.

    >>> _name_cell(""), _name_cell("Acme Corp"), _name_cell("The Very Long Name Of A Company Inc")
    ('-', 'Acme Corp', 'The Very Long Name Of A…')
    """
    name = " ".join(name.split())  # one line, whatever the table holds
    if not name:
        return "-"
    return name if len(name) <= _NAME_WIDTH else name[:_NAME_WIDTH - 1] + "…"


def print_book(reports: list, json: bool, win_back: bool = False) -> None:  # type: ignore[type-arg]
    """The owner's book as a table (or JSON lines): shared with ``churnwatch digest``. Columns are
    as wide as their widest cell ("2026-08-01 (in 120 d)" is 21 characters: a fixed 20 pushed the
    action one character right, QA 2026-12-02). ``win_back``: the accounts that left, with the MRR
    they took (a lapsed one, every user gone: the MRR it still pays) and the day they left (the
    last user seen) instead of the MRR (0) and the renewal (none), and after the
    churn's reason the first reason of the at-risk alert open when it left (``views.warned_before``). Each row names
    the account as the accounts table does (its ``name``, "-" when unknown) beside its id: an
    account manager knows their customers by name (QA 2026-12: the table showed ids only). The
    stage is the value the JSON and the docs use (``at_risk``), as ``accounts show`` prints it."""
    if json:
        for r in reports:
            print(orjson.dumps(r.to_dict()).decode())
        return
    behind = [r.behind_days for r in reports if r.behind_days]
    if behind:  # QA18 F5: months-old account state read as today's
        print(f"note: {len(behind)} of these accounts are as of their account side's own time, up to {max(behind)} days behind "
              "the stream (catching up): their silence, stage and renewal are as of then (`churnwatch accounts show ACCOUNT` dates each)")
    money = [r.lost_cell if win_back else f"{r.rollup.mrr_cents / 100:.2f}" for r in reports]
    when = [r.left_on if win_back else r.next_renewal for r in reports]
    names = [_name_cell(r.name) for r in reports]
    aw = max([16, *(len(r.account_id) for r in reports)])
    nw = max([4, *(len(n) for n in names)])
    sw = max([9, *(len(r.rollup.stage) for r in reports)])
    ww = max([20, *(len(w) for w in when)])
    print(f"{'#':>3}  {'account':<{aw}} {'name':<{nw}} {'risk':>5} {'health':>6} {'temp':>5}  {'stage':<{sw}} "
          f"{'lost MRR' if win_back else 'MRR':>9}  {'left on' if win_back else 'renewal':<{ww}}  action / reason")
    for i, (r, name, cents, w) in enumerate(zip(reports, names, money, when), start=1):
        a = r.rollup
        reason = a.reasons[0] if a.reasons else ""
        if win_back and r.warned_reasons:  # what went before the churn: the call's subject (QA15 F9)
            reason += f"; at risk since {format_ts(r.warned_ms)[:10]}: {r.warned_reasons[0]}"
        print(f"{i:>3}  {r.account_id:<{aw}} {name:<{nw}} {a.risk:>5.2f} {a.health:>6} {a.temperature:>5}  {a.stage:<{sw}} "
              f"{cents:>9}  {w:<{ww}}  {a.action}" + (f": {reason}" if reason else ""))


def _owner_book(args: argparse.Namespace, settings: Settings) -> int:
    from streams.publisher import check_kafka_reachable
    from streams.views import account_book, open_reader

    check_kafka_reachable(settings)  # the accounts table is a topic: one line, not a client's traceback
    with open_reader(settings) as reader:
        reports = account_book(reader, settings, args.owner, args.n or 20, at_risk_only=not args.all,
                               churned_only=args.win_back)
    if not reports and not args.json:
        print(f"no churned or lapsed account or lost trial of {args.owner} to win back" if args.win_back
              else f"no account of {args.owner} is at risk")
        return 0
    print_book(reports, args.json, win_back=args.win_back)
    return 0
