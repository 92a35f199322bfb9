"""Erase users: ``churnwatch erase`` (README, "Personal data").

What churnwatch holds of a user in Redis is deleted, and the user is recorded as erased so that
nothing brings them back: the events of the user still in the events topic (a running worker's
later cycles, and the replay of a state rebuild, which replays the whole topic) are dropped unread
(``churnwatch_events_erased_total``), and a cycle that read the user before the erase writes
nothing of them after it.

Where: every bucket's ``Keys.erased`` holds a keyed hash of every erased user, ``sha1(salt + id)``
with a random salt made by the first erase and kept in the same hash (the set holds no id, and
cannot be matched against another deployment's); not the bucket's own users only, because the
account side writes a member's record into the *account's* bucket. The worker's per-bucket scripts
consult it in Redis, in the same atomic call as what they guard (``lua/erased.lua``): the read
returns which of its users are erased (``read_batch``), and ``write_batch``, ``history`` and
``write_accounts`` write nothing of an erased user. While nobody was ever erased, each of these
calls pays one HMGET a bucket (the salt is missing); then a user of a group holding no erased user
(the hash's ``|groups``) costs a string search, the others a SHA-1 and an HEXISTS. No per-event
Redis round trip is added.

What the erase deletes, one atomic script a bucket (``lua/erase.lua``): in the user's bucket the
state record, due-review entries (every partition's index), at-risk ranking and save-list entries,
alert list, score history, and the records of the user's own account (a user without
``account_id`` is one: revenue state, extras, alert side and held copies); in every bucket the
user's account-membership entry and the member record it names; and outside the buckets, the user
in the account review index (``cw:adue:*``, self-accounts). The bucket's counters lose what the
state added (``users``, its stage, at-risk, save list), as when a state expires. In the company
accounts the user is or was in (the membership index, then the member key in the bucket's other
accounts: ``_other_members``), the id in the alert log's reasons becomes ``ERASED_NAME`` and the
user's held copies are dropped (``_scrubbed``, review 20 H1, M6, M1). At most ``CHUNK`` users a
script call. The first erase sets ``cw:meta`` ``format`` to ``store.ERASED_FORMAT``: a worker of a
version before erase refuses the store rather than write erased users back.

Not deleted (churnwatch cannot): the user's records in the events topic until its retention, the
alerts already published to the alerts topic (and anything a webhook or CRM got), dead letters in
the DLQ, and counters that are sums (first-seen and churned per day, revenue by period). A Redis
that loses its data loses the erased set too: ``churnwatch erase`` also writes the salted hashes to
the erasure log, a compacted topic every worker restores the set from before it applies any event
(streams/worker/erasure_log.py); without that topic, run the erase again with the same ids
(``--new-store`` before the workers made the store again; docs/OPERATE.md).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable, Sequence

import orjson

from models.account_health import member_key
from streams.errors import UserError
from streams.settings import Settings
from streams.worker.keys import Keys, locate
from streams.worker.store import UnreadableState, read_state, stats_delta, unreadable_delta

__all__ = ["ERASED_NAME", "EraseReport", "erase", "erase_users", "erased_hash", "scrub_log"]

#: Attempts of a bucket whose records a worker rewrote between the read and the erase script.
_ATTEMPTS = 20
#: Users a script call erases at most (review 20 M3: 20,000 users in one call a bucket held Redis
#: 190-365 ms a call, ~0.9 MB of arguments, with the workers' scripts waiting behind it).
CHUNK = 500
#: The counters the script takes from the indexes (the user's entries there), not from the record.
_INDEX_COUNTERS = ("at_risk", "reachable")


@dataclass
class EraseReport:
    users: int = 0  # users erased (recorded, whatever was found)
    with_state: int = 0  # of which had a state record
    deleted: int = 0  # hash fields, index entries and keys deleted
    buckets: int = 0
    retries: int = 0  # bucket scripts run again: a worker rewrote a record in between
    groups: int = 0  # groups a bucket of the store's layout
    salt: str = ""  # the erased set's salt (bucket 0's) after the erase: the erasure log's records use it


def erased_hash(salt: str, user_id: str) -> str:
    """The erased set's field of ``user_id`` (``lua/erased.lua``: ``redis.sha1hex(salt .. user)``).

    >>> erased_hash("s", "u1")
    'a8b2b09f8d0512032d2b1c216fcbc342de3935a5'
    """
    import hashlib

    return hashlib.sha1((salt + user_id).encode("utf-8", "surrogatepass")).hexdigest()


def erase(settings: Settings, user_ids: Sequence[str], new_store: bool = False, salt: str | None = None) -> EraseReport:
    """``erase_users`` on a private event loop, Redis failures as one readable line (``UserError``);
    ``new_store``: a prefix without state yet is erased in the layout of ``settings``; ``salt``: the
    erasure log's, for buckets without one yet (streams/worker/erasure_log.py)."""
    from streams.errors import redis_reached
    from streams.worker.store import Store

    async def go() -> EraseReport:
        store = Store(settings)
        try:
            layout = (settings.buckets, settings.groups_per_bucket) if new_store else None
            return await erase_users(store.client, Keys(settings.key_prefix), user_ids, layout=layout, salt=salt)
        finally:
            await store.close()

    with redis_reached(settings.redis_url):
        return asyncio.run(go())


async def erase_users(client: Any, keys: Keys, user_ids: Sequence[str], *, day: str | None = None,
                      layout: tuple[int, int] | None = None, salt: str | None = None) -> EraseReport:
    """Erase ``user_ids`` from the store under ``keys`` (module docstring). The layout (buckets,
    groups) is the store's own, read from ``cw:meta``; a prefix without one is refused (a mistyped
    prefix or URL would record the erasure where no worker looks) unless ``layout`` is given: the
    workers' settings, for a store they have not made yet (a new prefix, a Redis that lost its data),
    so that their first replay drops the users from the start. ``salt``: the one a bucket without
    a salt takes (default: a new random one); ``EraseReport.salt`` is the one bucket 0 has after."""
    from streams.worker.store import ERASED_FORMAT

    meta = await client.hgetall(keys.meta)
    meta = {_text(k): _text(v) for k, v in meta.items()}
    if "buckets" in meta and "groups_per_bucket" in meta:
        buckets, groups = int(meta["buckets"]), int(meta["groups_per_bucket"])
    elif layout is not None:
        buckets, groups = layout
        # the layout erased in, for the workers' check (Store.connect): one with another refuses the store
        # instead of finding the erased hashes in the wrong buckets (review 20 M5)
        await client.hsetnx(keys.meta, "buckets", str(buckets))
        await client.hsetnx(keys.meta, "groups_per_bucket", str(groups))
    else:
        raise UserError(f"no churnwatch state under key prefix {keys.prefix!r} in this Redis ({keys.meta} is missing): "
                        "nothing erased (check CHURNWATCH_KEY_PREFIX and --redis-url; --new-store records the erasure "
                        "for workers not started yet)")
    ids = list(dict.fromkeys(user_ids))
    where = {uid: locate(uid, buckets, groups) for uid in ids}
    mkeys = {uid: str(member_key(uid)) for uid in ids}
    day = day or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d")
    salt = salt or secrets.token_hex(16)
    await client.hset(keys.meta, "format", ERASED_FORMAT)  # a worker of a version before erase refuses the store
    source = resources.files("streams.worker").joinpath("lua", "erase.lua").read_text(encoding="utf-8")
    report = EraseReport(users=len(ids), buckets=buckets, groups=groups)
    for start in range(0, len(ids), CHUNK):
        await _erase_chunk(client, keys, source, ids[start:start + CHUNK], where, mkeys, salt, day, report)
    report.deleted += await _erase_account_dues(client, keys, ids)
    report.salt = _text(await client.hget(keys.erased(0), "|salt") or b"")
    return report


async def _erase_chunk(client: Any, keys: Keys, source: str, ids: Sequence[str], where: dict[str, tuple[int, int]],
                       mkeys: dict[str, str], salt: str, day: str, report: EraseReport) -> None:
    """``ids`` (at most ``CHUNK``) erased in every bucket, one script call a bucket."""
    for b in range(report.buckets):
        for attempt in range(_ATTEMPTS):
            args, found = await _bucket_args(client, keys, b, ids, where, mkeys, salt, day)
            reply = await client.eval(source, 7, keys.erased(b), keys.offsets(b), keys.stats(b), keys.risk(b),
                                      keys.accounts(b), keys.account_extras(b), keys.account_side(b), *args)
            if int(reply[0]) == 1:
                report.deleted += int(reply[1])
                report.with_state += found
                break
            report.retries += 1
        else:
            raise UserError(f"bucket {b}: the users' records kept changing under {_ATTEMPTS} attempts (a worker "
                            "applying their events): run the erase again")


async def _bucket_args(client: Any, keys: Keys, b: int, ids: Sequence[str], where: dict[str, tuple[int, int]],
                       mkeys: dict[str, str], salt: str, day: str) -> tuple[list[Any], int]:
    """The erase script's arguments for bucket ``b`` (``lua/erase.lua``), and how many of the
    bucket's own users have a record: their records read now, and the counters they added; and the
    bucket's company accounts that hold the users' ids, as read and as rewritten (``_scrubbed``)."""
    own = [uid for uid in ids if where[uid][0] == b]
    records: dict[str, bytes] = {}
    if own:
        pipe = client.pipeline(transaction=False)
        for uid in own:
            pipe.hget(keys.users(b, where[uid][1]), uid)
        records = {uid: raw for uid, raw in zip(own, await pipe.execute()) if raw is not None}
    stats: dict[str, float] = {}
    for raw in records.values():
        _take_off(raw, stats)
    users = [[uid, where[uid][1], mkeys[uid], 1 if where[uid][0] == b else 0, 1 if _long(uid) else 0] for uid in ids]
    blobs = [records.get(uid, b"") if where[uid][0] == b else b"" for uid in ids]
    deltas = [[k, int(v)] for k, v in stats.items() if v and k not in _INDEX_COUNTERS]
    fields, values = await _scrubbed(client, keys, b, ids, where, mkeys)
    return [keys.tag(b), salt, day, orjson.dumps(deltas), orjson.dumps(users), orjson.dumps(fields), *blobs, *values], len(records)


async def _accounts_of(client: Any, keys: Keys, b: int, ids: Sequence[str], where: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """The accounts of bucket ``b`` that the users are members of, by its membership index
    (``Keys.member_of``: one account a user and bucket), account -> users."""
    found = await client.eval(_MEMBER_OF, 1, keys.offsets(b), keys.tag(b),
                              orjson.dumps([[uid, where[uid][1]] for uid in ids]))
    out: dict[str, list[str]] = {}
    for i, acc in zip(found[::2], found[1::2]):
        out.setdefault(_text(acc), []).append(ids[int(i) - 1])
    return out


#: The membership entries of users in one bucket, read in Redis (one call, not a command a user:
#: 20,000 users took 1.28M HGETs through the client): ARGV tag, [[user, group], ...];
#: returns {position (1-based), account, ...} of the users that have one. KEYS[1] (the bucket's
#: offsets) only names the slot for a cluster.
_MEMBER_OF = """
local out = {}
for i, u in ipairs(cjson.decode(ARGV[2])) do
  local account = redis.call('HGET', ARGV[1] .. ':mof:' .. u[2], u[1])
  if account then
    out[#out + 1] = i
    out[#out + 1] = account
  end
end
return out
"""


async def _scrubbed(client: Any, keys: Keys, b: int, ids: Sequence[str], where: dict[str, tuple[int, int]],
                    mkeys: dict[str, str]) -> tuple[list[list[Any]], list[bytes]]:
    """What the company accounts of bucket ``b`` hold of the users, rewritten without them: the
    account alert log (``Keys.account_extras``, ``extras["log"]``: a reason names the account's
    silent user, models.account_health ``_named_silent``; the id becomes ``ERASED_NAME``) and the
    copies the alert side holds for the watermark (``<account>|held``, revenue ``_held_json``: the
    user's member and subscription copies dropped). Returns ``[[key 6 (extras) or 7 (alert side),
    field], ...]`` and for each the value as read then as rewritten (b"": delete), which the script
    writes only if the value is still the one read (else the bucket is read again)."""
    accounts = await _accounts_of(client, keys, b, ids, where)
    fields: list[list[Any]] = []
    values: list[bytes] = []
    await _other_members(client, keys, b, ids, mkeys, accounts, fields, values)
    if not accounts:
        return fields, values
    names = list(accounts)
    pipe = client.pipeline(transaction=False)
    for acc in names:
        pipe.hget(keys.account_extras(b), acc)
        pipe.hget(keys.account_side(b), f"{acc}|held")
    got = await pipe.execute()
    for i, acc in enumerate(names):
        users = accounts[acc]
        extras, held = got[2 * i], got[2 * i + 1]
        if extras is not None and (new := scrub_log(extras, users)) != extras:
            fields.append([6, acc])
            values += [extras, new]
        if held is not None and (new := _scrub_held(held, users, {int(mkeys[u]) for u in users})) != held:
            fields.append([7, f"{acc}|held"])
            values += [held, new]
    return fields, values


async def _other_members(client: Any, keys: Keys, b: int, ids: Sequence[str], mkeys: dict[str, str],
                         accounts: dict[str, list[str]], fields: list[list[Any]], values: list[bytes]) -> None:
    """The users' member records in accounts of bucket ``b`` that the membership index does not name:
    an account the user left for another in the same bucket (the index keeps one account a bucket,
    review 20 M1), and any account of a user whose id is too long for the index
    (``MEMBER_ID_BYTES``, review 20 M2). Found by reading the user's member key in every account of
    the bucket (a SCAN of the keyspace, only where such a user may be); added to ``fields`` as
    deletions (``":m:<account>"``, member key; the record as read, b""), and the accounts to
    ``accounts`` (their alert logs and held copies are rewritten too)."""
    from streams.worker.rebuild import glob_escape

    named = {u: acc for acc, users in accounts.items() for u in users}
    search = [u for u in ids if u in named or _long(u)]
    if not search:
        return
    head = keys.members(b, "")
    found = [_text(k) async for k in client.scan_iter(match=glob_escape(head) + "*", count=1000)]
    pipe = client.pipeline(transaction=False)
    for key in found:
        pipe.hmget(key, [mkeys[u] for u in search])
    for key, records in zip(found, await pipe.execute()):
        acc = key[len(head):]
        for uid, record in zip(search, records):
            if record is not None and named.get(uid) != acc:  # the named one: erase.lua deletes it
                fields.append([key[len(keys.tag(b)):], mkeys[uid]])
                values += [record, b""]
                accounts.setdefault(acc, []).append(uid)


def _long(user_id: str) -> bool:
    """Whether a member record of the user keeps no id (``MEMBER_ID_BYTES``): no membership entry
    either, and ``write_accounts`` tells the record erased by its member key (``lua/erase.lua``)."""
    from models.account_health import MEMBER_ID_BYTES

    return len(user_id.encode("utf-8", "surrogatepass")) > MEMBER_ID_BYTES


#: What an erased user's id becomes in the reasons an account alert log keeps.
ERASED_NAME = "[erased user]"


def scrub_log(raw: bytes, users: Sequence[str]) -> bytes:
    """An account's extras (JSON) with ``users``' ids in its alert log's reasons replaced by
    ``ERASED_NAME`` where a reason names a user (models.account_health ``_named_silent``: "its most
    active user ID silent ...", "ID, the user its billing statements come from, ...", "still
    silent: ..."), elsewhere unchanged: a short id is not replaced inside other words. ``raw`` itself
    when nothing changed.

    >>> scrub_log(b'{"seen_ms":5,"log":[["a1","account_at_risk",5,"at_risk",0.5,["its most active user u silent for 3 weeks","u, the user its billing statements come from, silent for 3 weeks"]]]}', ["u"])
    b'{"seen_ms":5,"log":[["a1","account_at_risk",5,"at_risk",0.5,["its most active user [erased user] silent for 3 weeks","[erased user], the user its billing statements come from, silent for 3 weeks"]]]}'
    """
    import re

    try:
        extras = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    log = extras.get("log") if isinstance(extras, dict) else None
    if not isinstance(log, list):
        return raw
    named = re.compile("(?:^|(?<=user )|(?<=still silent: ))(?:" + "|".join(re.escape(u) for u in users) + ")(?=[ ,]|$)")
    changed = False
    for row in log:
        if isinstance(row, list) and len(row) > 5 and isinstance(row[5], list):
            for k, reason in enumerate(row[5]):
                if isinstance(reason, str) and (new := named.sub(ERASED_NAME, reason)) != reason:
                    row[5][k], changed = new, True
    return orjson.dumps(extras) if changed else raw


def _scrub_held(raw: bytes, users: Sequence[str], member_keys: set[int]) -> bytes:
    """Held copies (revenue ``_held_json``) less the users' own: member copies of their member
    keys, subscription copies of their events (b"": none left)."""
    from models.account_health import Member

    rows = orjson.loads(raw)
    kept = [r for r in rows if not (r[0] == "m" and Member.from_bytes(bytes.fromhex(r[5])).key in member_keys
                                    or r[0] == "s" and r[4] in users)]
    if len(kept) == len(rows):
        return raw
    return orjson.dumps(kept) if kept else b""


def _take_off(raw: bytes, out: dict[str, float]) -> None:
    """What a stored record added to its bucket's counters, taken off ``out`` (as its expiry would:
    ``store.stats_delta`` to no state); a record that cannot be read, as far as its head says
    (``store.unreadable_delta``)."""
    try:
        stats_delta(read_state(raw), None, (), out)
    except UnreadableState:
        unreadable_delta(raw, out)


async def _erase_account_dues(client: Any, keys: Keys, ids: Iterable[str]) -> int:
    """The users in the account review indexes (``Keys.account_due``, one per partition: outside the
    buckets), where a user without ``account_id`` is its own account (on a cluster, SCAN reads
    every primary: redis-py's ``scan_iter``)."""
    from streams.worker.rebuild import glob_escape

    ids = list(ids)
    found = [k async for k in client.scan_iter(match=f"{glob_escape(keys.prefix)}:adue:*", count=1000)]
    n = 0
    for key in found:
        n += int(await client.zrem(key, *ids))
    return n


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
