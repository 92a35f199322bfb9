"""The accounts table: account facts on a compacted topic keyed by account id (docs/REVENUE.md).

Kafka Streams reads such a topic as a table: the latest record of a key is the account's facts,
a record without a value (a tombstone) deletes it. The topic is created with
``cleanup.policy=compact``. Tansu 0.6.0 accepts that config (CreateTopics answers no error) but
neither reports it back (DescribeConfigs is empty) nor compacts its memory storage, so a reader
takes the last record per key, which :func:`read_accounts` does and which is right on a
compacting broker too. ``churnwatch accounts import`` (streams/cli/accounts.py) writes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from streams.errors import UserError
from streams.settings import Settings

__all__ = ["AccountFacts", "ensure_accounts_topic", "read_accounts"]


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """One account's facts; ``renewal_date`` is ``YYYY-MM-DD`` (UTC) or "" when unknown.
    ``deleted``: publish a tombstone instead (the account leaves the table)."""

    account_id: str
    name: str = ""
    owner: str = ""
    segment: str = ""
    renewal_date: str = ""
    deleted: bool = False

    def value(self) -> bytes | None:
        if self.deleted:
            return None
        body = asdict(self)
        del body["deleted"]
        return orjson.dumps(body)


def ensure_accounts_topic(settings: Settings) -> str:
    """Create the accounts topic as a compacted topic ("created", "exists" or "exists with N partitions")."""
    from streams.kafka_admin import create_topics

    return create_topics(settings, {settings.topic_accounts: {"cleanup.policy": "compact"}},
                         client_id="churnwatch-accounts")[settings.topic_accounts]


def read_accounts(settings: Settings, *, timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """The accounts table: the last record per key up to each partition's end, tombstones removing
    (``streams.kafka_admin.read_compacted``); empty when nothing was imported yet (no topic)."""
    from streams.kafka_admin import read_compacted

    table: dict[str, dict[str, Any]] = {}

    def take(key: bytes | None, value: bytes | None) -> None:
        name = (key or b"").decode()
        if value is None:
            table.pop(name, None)
        else:
            table[name] = orjson.loads(value)

    if read_compacted(settings, settings.topic_accounts, take, timeout_s) is False:
        raise UserError(f"read the accounts topic {settings.topic_accounts} for {timeout_s:.0f} s without reaching its end")
    return table
