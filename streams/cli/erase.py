"""``churnwatch erase USER... [--file IDS]``: delete what churnwatch holds of users in Redis and keep
them erased (streams.worker.erase; README, "Personal data").

The output names no user: counts only, then what churnwatch cannot delete.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.intake import MAX_USER_ID_CHARS
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["add_arguments", "run", "read_ids"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("users", metavar="USER", nargs="*", help="user ids to erase, exactly as the events carry them")
    parser.add_argument("--file", metavar="PATH", default=None,
                        help="also the user ids in this file, one a line (UTF-8; blank lines skipped)")
    parser.add_argument("--new-store", action="store_true",
                        help="the key prefix holds no state yet (a new CHURNWATCH_KEY_PREFIX, or Redis lost its data and "
                             "no worker started since): record the erasure in the workers' layout (CHURNWATCH_BUCKETS, "
                             "CHURNWATCH_GROUPS_PER_BUCKET) so their replay drops these users from the start")


def read_ids(users: list[str], path: str | None) -> list[str]:
    """The ids to erase: ``users`` then the lines of ``path``, each one exactly (only the line end
    is cut), in order, once each; one readable ``UserError`` for what cannot be an id.

    >>> read_ids(["a", "b", "a"], None)
    ['a', 'b']
    """
    ids = list(users)
    if path is not None:
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise UserError(f"--file {path}: no such file") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"--file {path}: not UTF-8 text (byte {exc.start})") from None
        ids += [line for line in text.splitlines() if line.strip()]
    if not ids:
        raise UserError("give one or more user ids, or --file with one a line")
    for n, uid in enumerate(ids, 1):
        if not uid.strip():
            raise UserError(f"user id {n} is empty")
        if len(uid) > MAX_USER_ID_CHARS:
            raise UserError(f"user id {n} has {len(uid)} characters, at most {MAX_USER_ID_CHARS} (the worker "
                            "refuses longer ones: no such user is stored)")
    return list(dict.fromkeys(ids))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker.erase import erase

    ids = read_ids(args.users, args.file)
    done = erase(settings, ids, new_store=args.new_store)
    print(f"erased {done.users} user{'s' if done.users != 1 else ''} ({done.with_state} with a state in Redis): "
          f"{done.deleted} records and index entries deleted in {done.buckets} buckets; recorded as erased, so the "
          "workers drop their events from now on, in a rebuild's replay too (churnwatch_events_erased_total)")
    print("not deleted (churnwatch cannot delete from the broker or from receivers):")
    print(f"  - their events in topic {settings.topic_events}, until its retention "
          f"({_retention(settings)}) removes them")
    print(f"  - alerts already published to topic {settings.topic_alerts}, and what a webhook or CRM received")
    print(f"  - dead letters in topic {settings.topic_dlq} (key and original bytes), until its retention")
    print("  - counts that are sums over users (new and churned per day, revenue by period)")
    return 0


def _retention(settings: Settings) -> str:
    days = settings.events_retention_days
    return "kept forever: CHURNWATCH_EVENTS_RETENTION_DAYS=0" if not days else \
        f"{days} days if churnwatch created the topic: CHURNWATCH_EVENTS_RETENTION_DAYS"
