"""``churnwatch accounts import FILE.csv`` / ``accounts list``: account facts to and from the accounts table;
``accounts show ACCOUNT``: one account as its owner sees it.

Account facts (name, owner, segment, renewal date) are a table keyed by account id on a compacted
topic (streams/worker/accounts.py says how it is created and read). ``show`` adds what the workers
keep of the account (streams/views.py, the console's account page in text): risk, health, stage,
MRR, reasons, and its subscriptions with when each paid period ends ("renews 2026-03-13 (in 12
days)", from the subscription events' ``period_end``; docs/REVENUE.md).

The file: a header row with ``account_id`` and any of ``name``, ``owner``, ``segment``,
``renewal_date`` (a date or ISO time, UTC), ``quiet`` (yearly quiet periods, ``08-01..08-31``,
several separated by ``;``: models/quiet_period.py); other columns are ignored (named on stderr). A bad row is reported with
its line number and nothing is sent. Each row states the account's whole record (a column left
out or empty is empty in the table, not "unchanged"). Rows whose ``delete`` column says
``yes``/``true``/``1`` send a tombstone (``no``/``false``/``0``/empty: none; anything else is a
bad row). Ignored columns, and an account's later row that changes its facts (it wins), are said
on stderr.
"""

from __future__ import annotations

import argparse
import sys
import csv
import logging
import math
import time
from pathlib import Path
from typing import Any

import orjson

from streams.cli.argtypes import number_in
from streams.errors import UserError
from streams.settings import Settings
from streams.timefmt import format_ts, parse_ts_ms
from models.quiet_period import MAX_OFF_SEASON_DAYS, parse_quiet
from streams.worker.accounts import AccountFacts, ensure_accounts_topic, read_accounts

__all__ = ["add_arguments", "account_text", "publish_accounts", "read_accounts_csv", "run"]

logger = logging.getLogger(__name__)

_FIELDS = ("name", "owner", "segment", "renewal_date", "quiet")
_MAX_ID_CHARS = 256
_MAX_TEXT_CHARS = 200


def _row_facts(row: dict[str | None, Any]) -> AccountFacts:
    extra = row.get(None)  # csv.DictReader's cells past the header (QA17 F7: "Bob, Ltd" unquoted)
    if extra:
        raise ValueError(f"{len(extra)} cell{'s' * (len(extra) > 1)} more than the header names: a value holding a comma "
                         f"must be quoted (\"Bob, Ltd\")")
    account = (row.get("account_id") or "").strip()
    if not account or len(account) > _MAX_ID_CHARS:
        raise ValueError(f"account_id must be 1 to {_MAX_ID_CHARS} characters, got {account[:40]!r}")
    values = {f: (row.get(f) or "").strip() for f in _FIELDS}
    for f, v in values.items():
        if len(v) > _MAX_TEXT_CHARS:
            raise ValueError(f"{f} has {len(v)} characters, at most {_MAX_TEXT_CHARS}")
    if values["renewal_date"]:
        ms = parse_ts_ms(values["renewal_date"])
        values["renewal_date"] = time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))
    values["quiet"] = ";".join(str(p) for p in parse_quiet(values["quiet"], max_days=MAX_OFF_SEASON_DAYS))  # ValueError: the row's line
    flag = (row.get("delete") or "").strip().lower()
    if flag not in _DELETE_YES + _DELETE_NO:  # "maybe" was read as no: an account kept that was meant to go?
        raise ValueError(f"delete must be yes/true/1, or no/false/0 or empty, got {flag[:40]!r}")
    return AccountFacts(account, **values, deleted=flag in _DELETE_YES)


_DELETE_YES = ("yes", "true", "1")
_DELETE_NO = ("", "no", "false", "0")
_COLUMNS = ("account_id", *_FIELDS, "delete")


def _changes(old: AccountFacts, new: AccountFacts) -> str:
    """What a later row of an account changes: "owner alice -> bob, deleted"."""
    said = [f"{f} {getattr(old, f) or '(empty)'} -> {getattr(new, f) or '(empty)'}" for f in _FIELDS
            if getattr(old, f) != getattr(new, f)]
    return ", ".join(said + (["deleted"] if new.deleted and not old.deleted else [])) or "nothing"


def read_accounts_csv(path: str | Path, warn: Any = None) -> list[AccountFacts]:
    """The rows of an account file, checked; a later row of the same account replaces an earlier one.

    Said on stderr (``warn``: one line each), not silently taken: columns that are not account
    facts (ignored), and a later row of an account that changes its facts (two owners for one
    account is more often a mistake than an update) (QA3 #17)."""
    say = warn or (lambda line: print(line, file=sys.stderr))
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p} is not a file")
    try:
        return _read_accounts(p, say)
    except UnicodeDecodeError as exc:  # a binary file, or a CSV saved in another encoding (QA5 L4)
        raise UserError(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position {exc.start}): expected "
                        f"a CSV file of accounts ({','.join(_COLUMNS)})") from None
    except csv.Error as exc:
        raise UserError(f"{p}: not a CSV file ({exc}): expected a CSV file of accounts ({','.join(_COLUMNS)})") from None


def _read_accounts(p: Path, say: Any) -> list[AccountFacts]:
    """``read_accounts_csv`` once the file is known to exist."""
    out: dict[str, AccountFacts] = {}
    line_of: dict[str, int] = {}
    with open(p, encoding="utf-8-sig", newline="") as fh:  # -sig: Excel's "CSV UTF-8" starts with a BOM (QA4 #6)
        reader = csv.DictReader(fh)
        names = [n.strip().lower() for n in reader.fieldnames or []]
        if "account_id" not in names:
            raise UserError(f"{p.name}: the header row has no account_id column (found {', '.join(names) or 'none'})")
        unknown = [n for n in names if n not in _COLUMNS]
        if unknown:
            say(f"{p.name}: column{'s' * (len(unknown) > 1)} {', '.join(unknown)} ignored (account facts: {', '.join(_COLUMNS)})")
        reader.fieldnames = names
        for row in reader:
            try:
                facts = _row_facts(row)
            except ValueError as exc:
                raise UserError(f"{p.name} line {reader.line_num}: {exc}") from None
            earlier = out.pop(facts.account_id, None)
            if earlier is not None and earlier != facts:
                say(f"{p.name} line {reader.line_num}: account {facts.account_id} again (line "
                    f"{line_of[facts.account_id]}); this row wins: {_changes(earlier, facts)}")
            out[facts.account_id] = facts
            line_of[facts.account_id] = reader.line_num
    return list(out.values())


def publish_accounts(settings: Settings, accounts: list[AccountFacts], *, timeout_s: float = 30.0) -> int:
    """Send every account (key = account id) and wait for the broker's acks."""
    from kafka import KafkaProducer

    from streams.kafka_admin import kafka_python_client_kwargs

    producer = KafkaProducer(**kafka_python_client_kwargs(settings), acks="all", enable_idempotence=True, linger_ms=20)
    try:
        futures = [producer.send(settings.topic_accounts, key=a.account_id.encode(), value=a.value()) for a in accounts]
        producer.flush(timeout_s)
        for f in futures:
            f.get(timeout_s)
    finally:
        producer.close(10)
    return len(accounts)


#: ``--timeout`` seconds: a negative or NaN one read nothing and printed an empty table (QA5 L4).
_TIMEOUT = number_in("--timeout", 0, math.inf, low_open=True, unit="seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="publish the accounts of a CSV file (account_id,name,owner,segment,renewal_date,quiet)")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    listing = sub.add_parser("list", help="print the accounts table as JSON lines (latest facts per account)")
    listing.add_argument("--timeout", type=_TIMEOUT, default=10.0, help="seconds to read the topic to its end (default 10)")
    show = sub.add_parser("show", help="one account as of the stream time (its own time while the account side is behind): risk, reasons, subscriptions and when they renew")
    show.add_argument("account_id", metavar="ACCOUNT")
    show.add_argument("--json", action="store_true", help="one JSON object (the console API's account, without members and alerts)")
    show.add_argument("--timeout", type=_TIMEOUT, default=10.0, help="seconds to read the accounts table to its end (default 10)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.publisher import check_kafka_reachable
    from streams.kafka_admin import quiet_kafka_logs

    quiet_kafka_logs(read_only=args.action != "import")  # as the CLI set it (streams.cli._read_only)
    if args.action == "import":
        accounts = read_accounts_csv(args.file)
        if args.dry_run:
            print(f"{len(accounts):,} accounts in {args.file}: OK (nothing sent)")
            return 0
        check_kafka_reachable(settings)
        state = ensure_accounts_topic(settings)
        n = publish_accounts(settings, accounts)
        gone = sum(a.deleted for a in accounts)
        print(f"published {n:,} accounts ({gone:,} deletions) to {settings.topic_accounts} ({state}, cleanup.policy=compact)")
        return 0
    check_kafka_reachable(settings)
    if args.action == "show":
        return _show(args, settings)
    table = read_accounts(settings, timeout_s=args.timeout)
    if not table:  # said on stderr: stdout stays JSON lines for a pipe
        print(f"no accounts in {settings.topic_accounts} (add some: churnwatch accounts import ACCOUNTS.csv)", file=sys.stderr)
    for facts in sorted(table.values(), key=lambda f: f["account_id"]):
        print(orjson.dumps(facts).decode())
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from streams.views import (UnreadableAccount, _model, account_report, account_subscriptions, open_reader,
                               overdue_reviews, read_account_state, stream_time_ms)

    facts = read_accounts(settings, timeout_s=args.timeout).get(args.account_id, {})
    with open_reader(settings) as reader:
        now_ms = stream_time_ms(reader, settings)
        try:
            report = account_report(reader, args.account_id, facts, now_ms, _model(settings, reader),
                                    overdue_reviews(reader, settings, [args.account_id], now_ms).get(args.account_id))
        except UnreadableAccount as exc:  # one line saying what is there, not the record's parse error
            raise UserError(str(exc)) from None
        blob = reader.load_account(args.account_id)[0] if report is not None else None
    if report is None:
        raise UserError(f"account {args.account_id[:60]!r} is unknown: no subscription event or user of it has reached a worker")
    subs = account_subscriptions(read_account_state(blob), report.as_of_ms)
    if args.json:
        print(orjson.dumps({**report.to_dict(), "subscriptions": subs}).decode())
    else:
        print("\n".join(account_text(report, subs)))
    return 0


def account_text(report: Any, subs: list[dict[str, Any]]) -> list[str]:
    """The lines ``accounts show`` prints for a ``streams.views.AccountReport`` and its subscriptions
    (``streams.views.account_subscriptions``). The stage is printed as the docs, the JSON and
    ``top --owner`` write it (``at_risk``, ``past_due``): one vocabulary (QA 2026-12: "at risk" here)."""
    a = report.rollup
    head = f"{report.name or report.account_id} ({report.account_id}), owner {report.owner or '-'}"
    if report.renewal_date:
        head += f", contract renewal {report.renewal_date}"
    lines = [head + f", {report.as_of_text}"]
    if report.renews:
        lines.append(report.renews)
    lines += [f"risk {a.risk:.2f}, health {a.health}, temperature {a.temperature}, stage {a.stage}, "
              f"MRR {a.mrr_cents / 100:.2f}, {a.users} user{'s' if a.users != 1 else ''} ({a.silent} silent)"]
    lines += [f"still used: {report.still_used}"] if report.still_used else []  # churned, its users still here (QA22b F7)
    lines.append(f"action: {a.action}")
    lines += ["why:", *(f"  - {r}" for r in a.reasons)] if a.reasons else ["why: no reason stands out"]
    if report.warned_reasons:  # what went before it left, as the win-back book and the JSON say (QA22a F5)
        lines.append(f"before it left: at risk since {format_ts(report.warned_ms)[:10]}: {report.warned_reasons[0]}")
    lines.append("subscriptions:" if subs else "subscriptions: none stated")
    for s in subs:
        renews = f"  renews {s['renews_on']}" if s["renews_on"] else ""
        lines.append(f"  {s['plan']:<16} {s['status']:<9} {s['mrr']:>10.2f}  since {s['since'][:10]}{renews}")
    return lines
