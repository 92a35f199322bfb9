"""The accounts table: account facts on a compacted topic keyed by account id (docs/REVENUE.md).

Kafka Streams reads such a topic as a table: the latest record of a key is the account's facts,
a record without a value (a tombstone) deletes it. The topic is created with
``cleanup.policy=compact``. Tansu 0.6.0 accepts that config (CreateTopics answers no error) but
neither reports it back (DescribeConfigs is empty) nor compacts its memory storage, so a reader
takes the last record per key, which :func:`read_accounts` does and which is right on a
compacting broker too. ``churnwatch accounts import`` (streams/cli/accounts.py) writes it.

The views (book, digest, console) read the whole table when asked. The workers read one column of
it, ``quiet`` (an account's declared yearly quiet periods, ``models.quiet_period``, QA18 F3), when
they connect, before they apply any event, and again every :data:`QUIET_REFRESH_S` seconds
(``Pipeline.load_quiet``): a replay of a history with the table imported before the workers start
is judged the same every time; a change while they run counts from their next read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import logging
from typing import Any, Mapping

import orjson

from models.quiet_period import MAX_OFF_SEASON_DAYS, QuietPeriod, parse_quiet

from streams.errors import UserError
from streams.settings import Settings

__all__ = ["AccountFacts", "QUIET_REFRESH_S", "ensure_accounts_topic", "quiet_periods", "read_accounts", "read_quiet"]

logger = logging.getLogger(__name__)

#: How often a worker reads the accounts table's quiet periods again (seconds).
QUIET_REFRESH_S = 60.0


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
    quiet: str = ""  # yearly quiet periods, "08-01..08-31;12-20..01-05" (models.quiet_period); "" none

    def value(self) -> bytes | None:
        """The record's JSON; ``quiet`` only when declared (records without it read as before)."""
        if self.deleted:
            return None
        body = asdict(self)
        del body["deleted"]
        if not self.quiet:
            del body["quiet"]
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


def quiet_periods(table: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[QuietPeriod, ...]]:
    """account -> its declared quiet periods, for the accounts of ``table`` (:func:`read_accounts`)
    that declare any. A ``quiet`` that does not parse (a record another tool wrote: ``accounts
    import`` refuses such a row) counts as none, with one WARNING naming the accounts."""
    out: dict[str, tuple[QuietPeriod, ...]] = {}
    bad: list[str] = []
    for account, facts in table.items():
        text = facts.get("quiet") if isinstance(facts, Mapping) else None
        if not text:
            continue
        try:
            periods = parse_quiet(str(text), max_days=MAX_OFF_SEASON_DAYS)
        except ValueError:
            bad.append(account)
            continue
        if periods:
            out[account] = periods
    if bad:
        logger.warning("accounts table: %d account(s) with a quiet period that does not read, judged without one: %s",
                       len(bad), ", ".join(sorted(bad)[:5]) + (", ..." if len(bad) > 5 else ""))
    return out


def read_quiet(settings: Settings) -> dict[str, tuple[QuietPeriod, ...]]:
    """The accounts table's quiet periods (:func:`quiet_periods` of :func:`read_accounts`)."""
    return quiet_periods(read_accounts(settings))
