"""``churnwatch erase USER... [--file IDS]``: delete what churnwatch holds of users in Redis and keep
them erased (streams.worker.erase; README, "Personal data").

The output names no user: counts only, then what churnwatch cannot delete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from models.intake import MAX_USER_ID_CHARS
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["add_arguments", "run", "read_ids"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("users", metavar="USER", nargs="*", help="user ids to erase, exactly as the events carry them")
    parser.add_argument("--file", metavar="PATH", default=None,
                        help="also the user ids in this file, one a line (UTF-8, a byte order mark ignored; "
                             "\\n or \\r\\n line ends; blank lines skipped)")
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
    for n, uid in enumerate(users, 1):
        _check_utf8(n, uid)
    ids = list(users)
    if path is not None:
        ids += _file_ids(path)
    if not ids:
        raise UserError("give one or more user ids, or --file with one a line")
    for n, uid in enumerate(ids, 1):
        if not uid.strip():
            raise UserError(f"user id {n} is empty")
        if len(uid) > MAX_USER_ID_CHARS:
            raise UserError(f"user id {n} has {len(uid)} characters, at most {MAX_USER_ID_CHARS} (the worker "
                            "refuses longer ones: no such user is stored)")
    return list(dict.fromkeys(ids))


def _file_ids(path: str) -> list[str]:
    """The ids of ``--file``: UTF-8 (a byte order mark at the start is not part of the first id:
    ``utf-8-sig``), one a line, split on "\\n" only with a "\\r" before it cut (a Windows file),
    so an id holding another line separator (U+2028, \\x1c, ...) stays one id (review 20 L2);
    blank lines skipped."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"--file {path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"--file {path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"--file {path}: not UTF-8 text (byte {exc.start})") from None
    lines = (line[:-1] if line.endswith("\r") else line for line in text.split("\n"))
    return [line for line in lines if line.strip()]


def _check_utf8(n: int, uid: str) -> None:
    """A command-line id that is not UTF-8 (Python keeps its bytes as surrogates): one readable line
    naming the id's position (review 20 L2), not the encoder's message.

    >>> _check_utf8(2, "caf\\udce9")
    Traceback (most recent call last):
    ...
    streams.errors.UserError: user id 2 is not UTF-8 text (byte 0xe9 at character 4): give ids as UTF-8, or in --file
    """
    try:
        uid.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(uid[exc.start])
        byte = f"byte 0x{bad - 0xDC00:02x}" if 0xDC80 <= bad <= 0xDCFF else f"U+{bad:04X}"
        raise UserError(f"user id {n} is not UTF-8 text ({byte} at character {exc.start + 1}): give ids as UTF-8, "
                        "or in --file") from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker.erase import erase
    from streams.worker.erasure_log import erasures_topic

    ids = read_ids(args.users, args.file)
    log, why = _read_log(settings)
    done = erase(settings, ids, new_store=args.new_store, salt=log.salt if log is not None else None)
    print(f"erased {done.users} user{'s' if done.users != 1 else ''} ({done.with_state} with a state in Redis): "
          f"{done.deleted} records and index entries deleted in {done.buckets} buckets; recorded as erased, so the "
          "workers drop their events from now on, in a rebuild's replay too (churnwatch_events_erased_total)")
    why = why or _keep(settings, ids, done, log)
    if why:
        print(f"WARNING: not recorded in the erasure log {erasures_topic(settings)} ({why}): if Redis loses its data, "
              "the workers' rebuild brings these users back. Run the same erase again once the broker answers",
              file=sys.stderr)
    else:
        print(f"kept in the erasure log {erasures_topic(settings)} (compacted, salted hashes only): a worker restores "
              "the erased set from it before replaying anything, after Redis lost its data too")
    print("not deleted (churnwatch cannot delete from the broker or from receivers):")
    print(f"  - their events in topic {settings.topic_events}, until its retention "
          f"({_retention(settings)}) removes them")
    members = f" (account members': {settings.topic_member_alerts})" if settings.member_alerts == "separate" else ""
    print(f"  - alerts already published to topic {settings.topic_alerts}{members}, and what a webhook or CRM received")
    print(f"  - dead letters in topic {settings.topic_dlq} (key and original bytes), until its retention")
    print("  - counts that are sums over users (new and churned per day, revenue by period)")
    return 1 if why else 0


def _read_log(settings: Settings) -> tuple[Any, str]:
    """The erasure log (None: no topic yet) and "" , or None and why it could not be read: its salt is
    the one the erase uses (streams/worker/erasure_log.py)."""
    from streams.kafka_admin import quiet_kafka_logs
    from streams.publisher import check_kafka_reachable
    from streams.worker.erasure_log import read_erasures

    quiet_kafka_logs()
    try:
        check_kafka_reachable(settings)
        return read_erasures(settings), ""
    except UserError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the erase in Redis goes on, said once
        return None, f"{type(exc).__name__}: {exc}"


def _keep(settings: Settings, ids: list[str], done: Any, log: Any) -> str:
    """Write the users' records to the erasure log (under its salt, else the store's); "" or why not."""
    import datetime as _dt

    from streams.worker.erasure_log import erasure_records, publish_erasures

    salt = (log.salt if log is not None else None) or done.salt
    day = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d")
    try:
        publish_erasures(settings, erasure_records(salt, ids, (done.buckets, done.groups), day))
    except Exception as exc:  # noqa: BLE001 - as _read_log
        return f"{type(exc).__name__}: {exc}"
    return ""


def _retention(settings: Settings) -> str:
    days = settings.events_retention_days
    return "kept forever: CHURNWATCH_EVENTS_RETENTION_DAYS=0" if not days else \
        f"{days} days if churnwatch created the topic: CHURNWATCH_EVENTS_RETENTION_DAYS"
