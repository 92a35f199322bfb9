"""The erasure log: ``churnwatch erase`` kept where a Redis data loss cannot take it (QA13 F1).

The erased set lives in Redis (``Keys.erased``, streams/worker/erase.py). A Redis that loses its
data loses it too, and the workers rebuild every user from the events topic by themselves seconds
later: without a copy elsewhere, the erased users came back and their alerts were published again.
So ``churnwatch erase`` also writes to a compacted topic next to the events topic
(``erasures_topic``: ``<events topic>-erasures``), and every worker's connect to Redis (its start,
the rebuild after a loss, a lost store cleared) puts what that topic holds back into every bucket's
erased set before it applies any event (``restore_erasures``).

Records (key -> JSON value), no user id in either:

- ``salt:<salt id>`` -> ``{"salt": salt}``: the key of the keyed hash (``erase.erased_hash``);
  the salt id is the first 16 hex digits of its SHA-1;
- ``u:<salt id>:<hash>`` -> ``{"salt": salt id, "hash": sha1(salt + id), "day": "yyyymmdd",
  "layout": [buckets, groups], "at": [bucket, group], "m": sha1(salt + "|m" + member key) or null}``:
  one erased user; ``at`` is where the user's own state lives in ``layout`` (the bucket's
  ``|groups``, lua/erased.lua), ``m`` set only for an id too long for a member record.

One salt a deployment: the erase takes the log's salt when it has one (the store's own before any
record), and a bucket without a salt takes the log's; records of a salt a bucket does not have
cannot be checked there and are counted in a WARNING. A missing topic is created by the worker as
its other topics; one it cannot create (no right to) is one WARNING a process, and so are erasures
Redis holds that the log does not (made before it existed): erasure keeps working from Redis as
before, only a Redis data loss would undo those.
Tansu does not compact (streams/worker/accounts.py): the reader takes the last record per key,
right on a compacting broker too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import orjson

from streams.settings import Settings
from streams.worker.keys import Keys, locate

__all__ = ["ErasureLog", "erasures_topic", "ensure_erasures_topic", "erasure_records", "publish_erasures",
           "read_erasures", "restore_erasures", "restore_for_worker", "salt_id"]

logger = logging.getLogger(__name__)

#: Hashes a restore script call writes at most (as erase.CHUNK: short scripts between the workers' own).
CHUNK = 500
#: WARNINGs given in this process (``_warn_once``).
_WARNED: set[str] = set()


def erasures_topic(settings: Settings) -> str:
    """The erasure log's topic: next to the events topic, like its DLQ.

    >>> erasures_topic(Settings())
    'activity-events-erasures'
    """
    return f"{settings.topic_events}-erasures"


def salt_id(salt: str) -> str:
    """A salt's name in the log's keys.

    >>> salt_id("s")
    'a0f1490a20d0211c'
    """
    return hashlib.sha1(salt.encode()).hexdigest()[:16]


@dataclass
class ErasureLog:
    """What the topic holds: salts by id, user records by key (the last of each key)."""
    salts: dict[str, str] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def salt(self) -> str | None:
        """The salt of most records (one in practice), None before any."""
        counts: dict[str, int] = {sid: 0 for sid in self.salts}
        for rec in self.users.values():
            if rec.get("salt") in counts:
                counts[rec["salt"]] += 1
        return self.salts[max(counts, key=lambda s: counts[s])] if counts else None


def ensure_erasures_topic(settings: Settings, timeout_s: float = 0.0) -> str:
    """Create the log's topic, compacted ("created", "exists", "exists with N partitions")."""
    from streams.kafka_admin import create_topics

    name = erasures_topic(settings)
    return create_topics(settings, {name: {"cleanup.policy": "compact"}}, client_id="churnwatch-erase",
                         timeout_s=timeout_s)[name]


def erasure_records(salt: str, user_ids: Sequence[str], layout: tuple[int, int], day: str) -> list[tuple[bytes, bytes]]:
    """The log's records of ``user_ids`` erased under ``salt`` in ``layout``, the salt's own first."""
    from models.account_health import member_key
    from streams.worker.erase import _long, erased_hash

    sid = salt_id(salt)
    out = [(f"salt:{sid}".encode(), orjson.dumps({"salt": salt}))]
    for uid in user_ids:
        h = erased_hash(salt, uid)
        m = erased_hash(salt, f"|m{member_key(uid)}") if _long(uid) else None
        value = {"salt": sid, "hash": h, "day": day, "layout": list(layout), "at": list(locate(uid, *layout)), "m": m}
        out.append((f"u:{sid}:{h}".encode(), orjson.dumps(value)))
    return out


def publish_erasures(settings: Settings, records: list[tuple[bytes, bytes]], *, timeout_s: float = 30.0) -> None:
    """Create the topic if missing and write ``records``, waiting for the broker's acks."""
    from kafka import KafkaProducer

    from streams.kafka_admin import kafka_python_client_kwargs

    ensure_erasures_topic(settings, timeout_s=timeout_s)
    producer = KafkaProducer(**kafka_python_client_kwargs(settings), acks="all", linger_ms=20)
    try:
        futures = [producer.send(erasures_topic(settings), key=k, value=v) for k, v in records]
        producer.flush(timeout_s)
        for f in futures:
            f.get(timeout_s)
    finally:
        producer.close(10)


def read_erasures(settings: Settings, *, timeout_s: float = 30.0) -> ErasureLog | None:
    """The log read to its end (``streams.kafka_admin.read_compacted``); None when the topic does
    not exist. ``TimeoutError`` when its end is not reached in ``timeout_s``."""
    from streams.kafka_admin import read_compacted

    topic = erasures_topic(settings)
    log = ErasureLog()
    reached = read_compacted(settings, topic, lambda key, value: _take(log, key, value), timeout_s)
    if reached is None:
        return None
    if not reached:
        raise TimeoutError(f"read the erasure log {topic} for {timeout_s:.0f} s without reaching its end")
    return log


def _take(log: ErasureLog, key: bytes | None, value: bytes | None) -> None:
    """One record into ``log`` (a tombstone removes its key; an unreadable record is skipped)."""
    name = (key or b"").decode(errors="replace")
    try:
        body = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        logger.warning("erasure log: record %r is not JSON: skipped", name)
        return
    if name.startswith("salt:"):
        if isinstance(body, dict) and isinstance(body.get("salt"), str):
            log.salts[name[5:]] = body["salt"]
    elif name.startswith("u:"):
        if isinstance(body, dict) and isinstance(body.get("hash"), str):
            log.users[name] = body
        else:
            log.users.pop(name, None)


async def restore_erasures(client: Any, keys: Keys, log: ErasureLog, layout: tuple[int, int]) -> int:
    """Every record of ``log`` into every bucket's erased set (idempotent: a bucket keeps what it
    has), ``cw:meta`` ``format`` set to ``ERASED_FORMAT`` when there is any; the users put back (0:
    every bucket already held this log). A bucket done is marked with the log's ``fingerprint``
    (field ``|log``), so a worker's start on a store that lost nothing reads one field a bucket
    (20,000 erased users, 64 buckets: 10-12 s of scripts otherwise, under load). A record of
    another layout than the store's cannot name its user's group: the buckets then check every
    group's users (``|groups`` all groups), as correct and a little slower."""
    from streams.worker.store import ERASED_FORMAT

    if not log.users:
        return 0
    buckets, groups = layout
    mark = fingerprint(log)
    pipe = client.pipeline(transaction=False)
    for b in range(buckets):
        pipe.hget(keys.erased(b), "|log")
    todo = [b for b, have in zip(range(buckets), await pipe.execute()) if _s(have) != mark]
    if not todo:
        return 0
    await client.hset(keys.meta, "format", ERASED_FORMAT)  # first: a worker before erase refuses the store
    foreign = any(tuple(r.get("layout") or ()) != layout for r in log.users.values())
    by_salt = {sid: [r for r in log.users.values() if r.get("salt") == sid] for sid in log.salts}
    salts = [sid for sid in sorted(by_salt, key=lambda s: -len(by_salt[s])) if by_salt[sid]]  # the main one first
    skipped = 0
    for b in todo:
        whole = True
        for sid in salts:  # a bare bucket takes the first
            records = by_salt[sid]
            own = sorted({int(r["at"][1]) for r in records if tuple(r.get("layout") or ()) == layout and int(r["at"][0]) == b})
            marks = ",".join(str(g) for g in range(groups)) if foreign else ",".join(map(str, own))
            pairs = [x for r in records for h in (r["hash"], r.get("m")) if h for x in (h, str(r.get("day", "")))]
            for start in range(0, len(pairs), 2 * CHUNK):
                if not await client.eval(_RESTORE, 1, keys.erased(b), log.salts[sid], marks, *pairs[start:start + 2 * CHUNK]):
                    skipped, whole = skipped + len(records), False
                    break
        if whole:
            await client.hset(keys.erased(b), "|log", mark)
    if skipped:
        _warn_once(f"erasure log: {skipped} user records (summed over buckets) were erased under a salt buckets of "
                   f"{keys.prefix} do not have, so they cannot be checked there: run the erase again with their ids")
    if foreign:
        _warn_once(f"erasure log: records of another buckets/groups layout than this store's {layout}: every group is "
                   "checked for erased users (slower, as correct)")
    return len(log.users)


def fingerprint(log: ErasureLog) -> str:
    """What a bucket restored from ``log`` is marked with: its records and salts, in any order.

    >>> fingerprint(ErasureLog({"a": "s"}, {"u:a:1": {"hash": "1"}})) == fingerprint(ErasureLog({"a": "s"}, {"u:a:1": {"hash": "1"}}))
    True
    """
    body = orjson.dumps([sorted(log.salts.items()), sorted(log.users)])
    return hashlib.sha1(body).hexdigest()[:16]


def _s(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


#: One bucket: KEYS[1] its erased hash; ARGV salt, groups "g1,g2,..." of its own erased users, then
#: hash, day pairs. The salt set if the bucket has none; 0 (nothing written) if it has another.
_RESTORE = """
redis.call('HSETNX', KEYS[1], '|salt', ARGV[1])
if redis.call('HGET', KEYS[1], '|salt') ~= ARGV[1] then return 0 end
local groups = redis.call('HGET', KEYS[1], '|groups') or ','
for g in string.gmatch(ARGV[2], '[^,]+') do
  if not string.find(groups, ',' .. g .. ',', 1, true) then groups = groups .. g .. ',' end
end
if groups ~= ',' then redis.call('HSET', KEYS[1], '|groups', groups) end
for i = 3, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


async def restore_for_worker(settings: Settings, client: Any) -> int:
    """A worker's connect: the log read (off the event loop) and restored into its store, the users
    restored. A missing topic is created (as the worker's other topics); one that cannot be is a
    WARNING once a process, and nothing restored. Erasures Redis holds under a salt the log has no
    record of (made before the log existed, or while the broker was unreachable) are a WARNING once
    a process: a Redis data loss would bring them back. Other failures raise: no event may be
    applied before the erasures are back (the caller retries)."""
    keys = Keys(settings.key_prefix)
    log = await asyncio.to_thread(read_erasures, settings)
    if log is None:
        log = ErasureLog()
        try:
            await asyncio.to_thread(ensure_erasures_topic, settings, 10.0)
        except Exception as exc:  # noqa: BLE001 - no right to create it, a broker refusing: erasure goes on from Redis
            _warn_once(f"erasure log {erasures_topic(settings)} does not exist and could not be created ({type(exc).__name__}: "
                       f"{exc}): erasures are kept in Redis only, and a Redis that loses its data brings erased users back "
                       "(re-run `churnwatch erase --file <kept ids>` then). Runbook: ChurnwatchRedisDataLost")
    n = await restore_erasures(client, keys, log, (settings.buckets, settings.groups_per_bucket))
    salt = await client.hget(keys.erased(0), "|salt")
    if salt is not None and salt_id(salt.decode() if isinstance(salt, bytes) else salt) not in {
            r.get("salt") for r in log.users.values()}:
        _warn_once(f"the erased users in Redis ({keys.erased(0)}) are not in the erasure log {erasures_topic(settings)} "
                   "(erased before the log existed, or while the broker was unreachable): a Redis that loses its data "
                   "brings them back. Run `churnwatch erase --file <kept ids>` once more with the broker reachable. "
                   "Runbook: ChurnwatchRedisDataLost")
    return n


def _warn_once(message: str) -> None:
    """A WARNING once a process (each worker connect checks again)."""
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning("%s", message)
