"""``churnwatch digest``: the owner's daily digest, the accounts to save today.

The day is the UTC day of the stream time (event time, never the wall clock). The digest is the
owner's book (``churnwatch top --owner``) of that day: each at-risk account with its health,
temperature, MRR, the main reason and the action. ``--publish`` sends one message per owner to
the digest topic (``CHURNWATCH_TOPIC_DIGEST``), key ``<owner>|<day>``: one message per owner per
day however often it runs (a repeat restates the same key; readers keep the last). Run it once a
day (cron, a Kubernetes CronJob) after the day's events are in.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from streams.cli.argtypes import positive_int
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["add_arguments", "digest_message", "headline", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--owner", metavar="NAME", help="one owner's digest")
    who.add_argument("--all-owners", action="store_true", help="every owner in the accounts table")
    parser.add_argument("-n", type=positive_int("accounts"), default=20, help="at most this many accounts each (default 20)")
    parser.add_argument("--publish", action="store_true", help="send each digest to the digest topic (key <owner>|<day>)")
    parser.add_argument("--json", action="store_true", help="one JSON object per owner instead of tables")


def digest_message(owner: str, day: str, reports: list[Any], at_risk: int | None = None) -> dict[str, Any]:
    """The digest record: owner, day, how many of the owner's accounts are at risk (``at_risk``;
    the accounts listed when not given) and the accounts to save (at most ``-n`` of them), most at
    risk first."""
    return {"digest_id": f"{owner}|{day}", "owner": owner, "day": day,
            "at_risk": len(reports) if at_risk is None else at_risk, "accounts": [r.to_dict() for r in reports]}


def headline(owner: str, day: str, listed: int, at_risk: int) -> str:
    """The digest's first line: how many accounts it lists, and of how many at risk when ``-n``
    cut the list ("20 of 39", not "20": QA 2026-12-02).

    >>> headline("alice", "2026-04-01", 2, 5), headline("alice", "2026-04-01", 5, 5), headline("bob", "2026-04-01", 1, 1)
    ('alice, 2026-04-01: 2 of 5 accounts to save today', 'alice, 2026-04-01: 5 accounts to save today', 'bob, 2026-04-01: 1 account to save today')
    """
    of = f" of {at_risk}" if at_risk > listed else ""
    return f"{owner}, {day}: {listed}{of} account{'s' if at_risk != 1 else ''} to save today"


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.cli.top import print_book
    from streams.publisher import check_kafka_reachable
    from streams.timefmt import format_ts
    from streams.views import account_book, open_reader, stream_time_ms
    from streams.worker.accounts import read_accounts

    check_kafka_reachable(settings)  # the accounts table is a topic: one line, not a client's traceback
    owners = [args.owner] if args.owner else None
    table = read_accounts(settings)
    owners = owners or sorted({f.get("owner") or "" for f in table.values()} - {""})
    if not owners:
        raise UserError(f"no account in {settings.topic_accounts!r} has an owner: the digest lists owners' accounts; give "
                        f"them owners with `churnwatch accounts import FILE.csv` (account_id,name,owner,...); a B2C product sends "
                        f"account_id = the user id on every event and imports an owner per customer (README, \"Company accounts: "
                        f"work from the owner's book\"), or reads the user list with `churnwatch top`")
    messages = []
    with open_reader(settings) as reader:
        now_ms = stream_time_ms(reader, settings)
        day = format_ts(now_ms)[:10]
        for owner in owners:
            at_risk = account_book(reader, settings, owner, len(table), now_ms=now_ms, table=table)
            reports = at_risk[:args.n]
            messages.append((owner, reports, digest_message(owner, day, reports, len(at_risk))))
    if args.publish:
        _publish(settings, [(m["digest_id"].encode(), orjson.dumps(m)) for _, _, m in messages])
        # on stderr: stdout stays the digests themselves (--json lines for a pipe)
        print(f"published {len(messages)} digest{'s' if len(messages) != 1 else ''} to {settings.topic_digest!r} "
              f"(keys {', '.join(str(m['digest_id']) for _, _, m in messages[:3])}{', ...' if len(messages) > 3 else ''})",
              file=sys.stderr)
    for owner, reports, message in messages:
        if args.json:
            print(orjson.dumps(message).decode())
        else:
            print(headline(owner, day, len(reports), int(message["at_risk"])))
            if reports:
                print_book(reports, False)
    return 0


def _publish(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """To the digest topic, created first when missing (explicit partition count, never the
    broker's auto-creation default)."""
    from kafka import KafkaProducer

    from streams.kafka_admin import create_topics, kafka_python_client_kwargs

    create_topics(settings, {settings.topic_digest: None}, client_id="churnwatch-digest")
    producer = KafkaProducer(**kafka_python_client_kwargs(settings), acks="all")
    try:
        sent = [producer.send(settings.topic_digest, key=key, value=value) for key, value in records]
        producer.flush(timeout=30)
        for future in sent:  # flush does not raise for a record the broker refused: its future does
            future.get(timeout=0)
    finally:
        producer.close()
