"""``churnwatch score USER``: one user's live scores and reasons, as of the stream time."""

from __future__ import annotations

import argparse
import dataclasses

import orjson

from streams.errors import UserError
from streams.settings import Settings
from streams.timefmt import format_minute

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", metavar="USER", help="the user id")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.views import NoActivityYet, open_reader, user_report
    from streams.worker.store import UnreadableState

    with open_reader(settings) as reader:
        try:
            report = user_report(reader, settings, args.user)
        except (UnreadableState, NoActivityYet) as exc:  # one line saying what is there, not the record's parse error
            raise UserError(str(exc)) from None
    if report is None:
        raise UserError(f"user {args.user!r} is not tracked (never seen, or expired after churn)")
    if report.account_id:
        report = dataclasses.replace(report, account_facts=_facts(settings, report.account_id))
    if args.json:
        print(orjson.dumps(report.to_dict()).decode())
        return 0
    d = report.to_dict()
    s = report.scores
    print(f"user {report.user_id} as of {format_minute(report.as_of_ms)} UTC (stream time)")
    print(f"  stage {s.stage}, risk {s.risk:.2f}, health {s.health:.0f}, temperature {s.temperature:.0f}"
          + (f", segment {s.segment}" if s.segment else ""))
    print(f"  action: {s.action.replace('_', ' ')}")
    for reason in s.reasons:
        print(f"  - {reason}")
    print(f"  first seen {d['first_seen']}, last seen {d['last_seen']}, {_count(d['events'], 'event')} on "
          f"{_count(d['active_days'], 'day')}"
          + (f", bought on {_count(d['purchases'], 'day')} for {d['revenue']:,.2f}" if d["purchases"] else ""))
    if d["at_risk_since"]:
        print(f"  at risk since {d['at_risk_since']}")
    if report.account_id:
        print(f"  account {report.account_id}" + (f" ({d['account_name']})" if d["account_name"] else "")
              + (f", owner {d['owner']}" if d["owner"] else ", no owner in the accounts table"))
    return 0


def _facts(settings: Settings, account_id: str) -> dict[str, object] | None:
    """The account's row of the accounts table (name, owner), None when it has none or the table
    cannot be read (the scores, read from Redis, are still printed; the reason is logged)."""
    import logging

    from streams.worker.accounts import read_accounts

    try:
        return read_accounts(settings).get(account_id)
    except Exception as exc:  # noqa: BLE001 - the owner is a courtesy; the user's scores are the answer
        logging.getLogger(__name__).warning("could not read the accounts table %s: %s", settings.topic_accounts, exc)
        return None


def _count(n: int, noun: str) -> str:
    """``1 event``, ``2 events``: the text is read by people ("1 events on 1 days" was printed)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
