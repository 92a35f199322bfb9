"""A model take-over that rebuilds the state: ``churnwatch worker --take-over-model --rebuild-state``.

Every stored user state holds per-slot counters in the vocabulary of the model in use
(``models.model.same_vocabulary``), so a model that tracks other event types or has other roles
cannot take the states over (``model_record.layout_refusal``: the take-over is refused). With
``--rebuild-state`` the taking-over worker empties the store instead and replays the events topic
under its model, the replay a worker makes after Redis lost its data (``StoreLost``): states,
counters, revenue and indexes are what ``backtest --model`` gives.

Order, so that nothing the old model writes survives and no worker writes into a store being emptied:

1. take the rebuild lock (``Keys.rebuild_lock``, a TTL the worker refreshes: it expires if the
   worker dies), so that one worker rebuilds;
2. one transaction on ``cw:meta``: a new incarnation, the new model and ``REBUILD_FIELD`` (running
   workers find the store lost and another model in it, and stop, exit code 3; ``Store.connect`` of
   any worker waits while the field is set);
3. every bucket's off hash becomes ``{|inc: new incarnation}`` (one script per bucket: one slot):
   from then on every fenced write of an old worker is refused (write_batch and write_accounts check
   the marker; history and the guarded progress find no token), and an old worker's connect that
   read the old incarnation cannot mark a bucket with it (its ``hsetnx`` finds the new marker);
4. every other key of this deployment's key families but the erased users (``Keys.erased``) is
   unlinked (``_ours``: not a deployment whose prefix extends this one, ``cw:eu`` for ``cw``), the
   account dues and re-routed origins a second
   time (unfenced: an old worker's cycle whose fenced write came before step 3 may still write them);
5. ``REBUILD_FIELD`` is cleared, only if it still holds this worker's token and the lock is still its
   own (``_finish``), and the lock released; the caller's ``Store.connect`` goes on.

The lock is refreshed before every SCAN page and step. A worker whose lock expired anyway (a stall
longer than ``LOCK_MS``; under a ``volatile-*`` policy an eviction) stops at its next refresh
(``LockLost``) and waits like any other worker: it never clears the field of the worker that took the
lock over, which would let workers connect while that one still deletes (QA review 13 #1).

A worker killed between 2 and 5 leaves ``REBUILD_FIELD`` set and its lock expires: a worker with
``--rebuild-state`` then does it all again, one without refuses to start (``RebuildInterrupted``).
Once the new model is recorded and the field cleared there is nothing to rebuild, so a restart with
the flag still set is a plain start.

``clear_lost_store`` does steps 1-5 for a store that lost ``cw:meta`` (a ``DEL``, an eviction) while
buckets of its old incarnation survived: the connecting worker made a new incarnation, those buckets
carry the old one. An evicting Redis drops keys one by one, so what survived cannot be trusted to be
whole: the store is emptied (``LOST_FIELD`` instead of ``REBUILD_FIELD``, the model kept) and every
worker rebuilds it from the topic, the documented outcome of a lost store. Its new incarnation fences
the workers still writing to the old one, and those that connected to the one it replaces.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import time
import uuid
from typing import Any, AsyncIterator

from streams.worker.model_record import LEARN_FIELD, RECORD_PREFIX, layout_refusal
from streams.worker import store as _store
from streams.worker.store import LOST_FIELD, REBUILD_FIELD, RebuildRunning, Store

__all__ = ["clear_lost_store", "rebuild_for_take_over", "glob_escape"]

logger = logging.getLogger(__name__)

#: Keys unlinked per call.
_UNLINK_BATCH = 1000
#: The rebuild lock's TTL; the holder refreshes it after every SCAN page and before each step.
LOCK_MS = 30_000

#: A worker waiting for another's lock says so at once, then at most this often (``_say_waiting``).
WAIT_LOG_EVERY_S = 60.0

# One script per bucket: the off hash dropped and made again with only the new marker (atomic, one key).
_RESET_MARKER = "redis.call('del', KEYS[1]) return redis.call('hset', KEYS[1], '|inc', ARGV[1])"
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# The cw:meta field (REBUILD_FIELD, LOST_FIELD) cleared only if it still holds the caller's token (one key).
_FINISH = "if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('hdel', KEYS[1], ARGV[1]) end return 0"


class LockLost(RuntimeError):
    """The rebuild lock expired under its holder (a stall longer than ``LOCK_MS``; under a
    ``volatile-*`` policy, an eviction): another worker may have taken it over and be clearing. The
    holder stops at once, leaves cw:meta's field to the new holder, and waits like any worker."""


def glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob (SCAN MATCH, KEYS).

    >>> glob_escape("c*w?[x]\\\\")
    'c\\\\*w\\\\?\\\\[x\\\\]\\\\\\\\'
    """
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


async def rebuild_for_take_over(store: Store) -> int:
    """Empty ``store`` for its model (``store.use_model`` before) if the model in use has another
    vocabulary, or one Redis holds no file of (asked to rebuild, not knowing: rebuilt), or an earlier
    rebuild was interrupted; the number of keys deleted (0: nothing to rebuild, the take-over goes on
    as usual). Waits (up to ``store.rebuild_wait_s``) while another worker holds the rebuild lock."""
    assert store.model_obj is not None, "use_model first"
    await store.refuse_evicting()  # before anything is deleted: an evicting Redis is refused anyway (QA review 13 #3)
    deadline, said = time.monotonic() + store.rebuild_wait_s, None
    while True:
        if not await _wanted(store):
            return 0
        token = uuid.uuid4().hex
        if await store.client.set(store.keys.rebuild_lock, token, nx=True, px=LOCK_MS):
            try:
                return await _rebuild(store, token) if await _wanted(store) else 0  # checked again, under the lock
            except LockLost as exc:
                logger.warning("%s", exc)  # the loop waits for the new holder, then checks again
            finally:
                await store.client.eval(_RELEASE, 1, store.keys.rebuild_lock, token)
        if time.monotonic() >= deadline:
            raise RebuildRunning(f"another worker's state rebuild is still running after {store.rebuild_wait_s:.0f} s: "
                                 "start this worker again later")
        said = await _say_waiting(store, "state rebuild (a model take-over)", deadline, said)
        await _store.rebuild_pause()  # another worker rebuilds: then it is done, or it died (the lock expires)


async def clear_lost_store(store: Store) -> int:
    """Empty ``store`` under the rebuild lock if buckets carry another incarnation than cw:meta (or an
    earlier clearing was interrupted: ``LOST_FIELD`` set); the number of keys deleted (0: another
    worker did it meanwhile). The caller connects again. Waits (up to ``store.rebuild_wait_s``) while
    another worker holds the lock."""
    deadline, said = time.monotonic() + store.rebuild_wait_s, None
    while True:
        token = uuid.uuid4().hex
        if await store.client.set(store.keys.rebuild_lock, token, nx=True, px=LOCK_MS):
            try:
                return await _clear_lost(store, token) if await _lost(store) else 0  # checked under the lock
            except LockLost as exc:
                logger.warning("%s", exc)
            finally:
                await store.client.eval(_RELEASE, 1, store.keys.rebuild_lock, token)
        if time.monotonic() >= deadline:
            raise RebuildRunning(f"another worker's clearing of the lost store is still running after "
                                 f"{store.rebuild_wait_s:.0f} s: start this worker again later")
        said = await _say_waiting(store, "clearing of the lost store", deadline, said)
        await _store.rebuild_pause()


async def _say_waiting(store: Store, what: str, deadline: float, said: float | None) -> float | None:
    """Log that this worker waits for another's lock, with what for and until when: at once, then
    every ``WAIT_LOG_EVERY_S``. A worker waiting for a dead holder's lock was silent for up to
    ``LOCK_MS`` (qa8_verify), and for ``rebuild_wait_s`` behind a live one. Returns when it last said so."""
    now = time.monotonic()
    if said is not None and now - said < WAIT_LOG_EVERY_S:
        return said
    try:
        ttl_ms = await store.client.pttl(store.keys.rebuild_lock)
    except Exception:  # noqa: BLE001  (only a log line: the loop's next call meets the error)
        ttl_ms = -1
    expires = f"its lock {store.keys.rebuild_lock} expires in {ttl_ms / 1000:.0f} s unless its holder refreshes it" \
        if ttl_ms >= 0 else f"its lock {store.keys.rebuild_lock} is gone: taking it next"
    until = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=max(0.0, deadline - now))
    logger.warning("waiting for another worker's %s (%s; a holder that died is taken over once it expires), at most "
                   "until %s UTC (then it gives up: RebuildRunning)", what, expires,
                   until.strftime("%H:%M:%S"))
    return now


async def _lost(store: Store) -> bool:
    """Some bucket carries another incarnation than cw:meta's, or a clearing was interrupted. A
    bucket without a marker is fine (connect marks it); no incarnation in cw:meta: connect makes one."""
    incarnation, pending = map(_text_or_empty, await store.client.hmget(store.keys.meta, ["incarnation", LOST_FIELD]))
    if pending:
        return True
    pipe = store.client.pipeline(transaction=False)
    for b in range(store.buckets):
        pipe.hget(store.keys.offsets(b), "|inc")
    return bool(incarnation) and any(m is not None and _text(m) != incarnation for m in await pipe.execute())


async def _clear_lost(store: Store, token: str) -> int:
    """Steps 2-5 of the module docstring for a lost cw:meta, holding the lock ``token``."""
    meta, incarnation = store.keys.meta, uuid.uuid4().hex[:16]
    pipe = store.client.pipeline(transaction=True)
    pipe.hset(meta, mapping={"incarnation": incarnation, LOST_FIELD: token})
    pipe.hdel(meta, "save_index")  # the index of states about to be deleted; connect records it again
    await pipe.execute()
    await _reset_markers(store, incarnation)
    await _refresh(store, token)
    topics = await _topics(store) | await _stored_topics(store, token)  # cw:meta lost the others' partitions:<topic>
    ours = _ours(store.keys.prefix, topics)
    deleted = await _unlink_matching(store, token, ours, f"{glob_escape(store.keys.prefix)}:*")
    deleted += await _unlink_matching(store, token, ours, f"{glob_escape(store.keys.prefix)}:adue:*")  # as in _rebuild
    deleted += await _unlink(store, [store.keys.reroute(t) for t in sorted(topics)])
    await _finish(store, token, LOST_FIELD)
    logger.warning("Redis lost %s but kept buckets of the store's old incarnation: deleted %s keys of the state "
                   "(prefix %s), which cannot be trusted whole; the workers rebuild it from the events topic "
                   "(docs/OPERATE.md, \"ChurnwatchRedisDataLost\")", meta, deleted, store.keys.prefix)
    return deleted


async def _stored_topics(store: Store, token: str) -> set[str]:
    """The topics this deployment holds progress or re-routed origins of (a topic name has no ``:``,
    so a deployment whose prefix extends ours, ``cw:eu``, never matches)."""
    found: set[str] = set()
    for family in ("progress", "reroute"):
        head = f"{store.keys.prefix}:{family}:"
        async for page in _scan_pages(store, token, f"{glob_escape(head)}*"):
            found.update(t for t in (_text(key)[len(head):] for key in page) if t and ":" not in t)
    return found


async def _scan_pages(store: Store, token: str, match: str) -> AsyncIterator[list[bytes | str]]:
    """SCAN ``match`` page by page (every primary's on a cluster), refreshing the lock before each
    page: between two refreshes lies one round trip, not a whole keyspace (QA review 13 #1: three
    unrefreshed scans of ~10M keys outlast ``LOCK_MS``), so only a stall of the worker or Redis
    longer than ``LOCK_MS`` can still expire the lock (``_finish`` then keeps the field)."""
    client: Any = store.client
    if not store.cluster:
        cursor: Any = 0
        while True:
            await _refresh(store, token)
            cursor, page = await client.scan(cursor, match=match, count=_UNLINK_BATCH)
            yield list(page)
            if not int(cursor):
                return
    await _refresh(store, token)
    cursors, page = await client.scan(match=match, count=_UNLINK_BATCH)  # cursor 0 on every primary
    yield list(page)
    cursors = {name: c for name, c in cursors.items() if int(c)}
    while cursors:
        for name in list(cursors):
            await _refresh(store, token)
            node = client.get_node(node_name=name)
            found, page = await client.scan(cursors[name], match=match, count=_UNLINK_BATCH, target_nodes=node)
            yield list(page)
            cursors[name] = found[name]
            if not int(found[name]):
                del cursors[name]


def _text_or_empty(value: bytes | str | None) -> str:
    return "" if value is None else _text(value)


async def _wanted(store: Store) -> bool:
    """A rebuild is needed: an interrupted one, or the model in use cannot take the states over."""
    found, record, _ = await store.model_record()
    if await store.client.hget(store.keys.meta, REBUILD_FIELD):
        return True
    layout = await store.recorded_layout(found, record)  # a record this version does not load: its vocabulary, read leniently
    return bool(found) and found != store.model and (layout is None or bool(layout_refusal(store.model_obj, store.model, found, layout)))


async def _rebuild(store: Store, token: str) -> int:
    """Steps 2-5 of the module docstring, holding the lock ``token``."""
    found, record, _ = await store.model_record()
    meta, incarnation = store.keys.meta, uuid.uuid4().hex[:16]
    pipe = store.client.pipeline(transaction=True)  # one key: one slot on a cluster too
    pipe.hset(meta, mapping={"incarnation": incarnation, "model": store.model, REBUILD_FIELD: token})
    pipe.hdel(meta, "save_index", LEARN_FIELD, *([RECORD_PREFIX + found] if found and found != store.model else []))
    await pipe.execute()
    await _reset_markers(store, incarnation)
    await _refresh(store, token)
    topics = await _topics(store)
    ours = _ours(store.keys.prefix, topics)
    deleted = await _unlink_matching(store, token, ours, f"{glob_escape(store.keys.prefix)}:*")
    # Again the unfenced keys an old worker's cycle accepted before the markers moved may still write
    # (after its fenced write): account dues, and re-routed origins (not tied to an incarnation: kept,
    # they would make the replay skip re-routed copies).
    deleted += await _unlink_matching(store, token, ours, f"{glob_escape(store.keys.prefix)}:adue:*")
    deleted += await _unlink(store, [store.keys.reroute(t) for t in sorted(topics)])
    await _finish(store, token, REBUILD_FIELD)
    why = ("finishing an interrupted rebuild" if found == store.model else
           "which tracks other event types, roles or renames" if record is not None else "whose file Redis does not hold")
    logger.warning("model %s takes over from %s, " + why + ": deleted %s keys of the "
                   "state (prefix %s); the workers rebuild it from the events topic under the new model (docs/OPERATE.md, "
                   "\"Model upgrades\")", store.model, found, deleted, store.keys.prefix)
    return deleted


async def _reset_markers(store: Store, incarnation: str) -> None:
    """Every bucket's off hash becomes ``{|inc: incarnation}`` (offsets and tokens dropped)."""
    pipe = store.client.pipeline(transaction=False)
    for b in range(store.buckets):
        pipe.execute_command("EVAL", _RESET_MARKER, 1, store.keys.offsets(b), incarnation)
    await pipe.execute()


async def _refresh(store: Store, token: str) -> None:
    """Keep the lock; it expired and another worker may be rebuilding: stop (``LockLost``)."""
    if not int(await store.client.eval(_REFRESH, 1, store.keys.rebuild_lock, token, LOCK_MS)):
        raise LockLost("lost the state rebuild lock (expired): another worker redoes the rebuild; this one waits for it")


async def _finish(store: Store, token: str, field: str) -> None:
    """Clear cw:meta's ``field`` (the rebuild is done) only while this worker holds the lock and the field
    still holds its ``token``: a holder whose lock expired must not clear the field of the worker that
    took over mid-way, or workers connect while that one still deletes (QA review 13 #1). The lock and
    cw:meta are two slots on a cluster: the lock is checked first, the token atomically with the HDEL;
    a take-over between the two writes its own token first, so the HDEL then does nothing."""
    await _refresh(store, token)
    if not int(await store.client.eval(_FINISH, 1, store.keys.meta, field, token)):
        raise LockLost(f"{field} in {store.keys.meta} is no longer this worker's: another worker took the rebuild "
                       "lock over; this one waits for it")


async def _topics(store: Store) -> set[str]:
    """The topics this deployment keeps progress for: the worker's, and every one laid out in cw:meta."""
    fields = await store.client.hkeys(store.keys.meta)
    return {store.settings.topic_events} | {f[len("partitions:"):] for f in map(_text, fields) if f.startswith("partitions:")}


def _ours(prefix: str, topics: set[str]) -> re.Pattern[str]:
    """This deployment's keys but cw:meta, the off hashes, the erased users (``Keys.erased``: a
    rebuild replays the topic, and the workers must go on dropping those users' events) and the
    lock (streams.worker.keys): another deployment whose prefix extends ours (``cw:eu`` of ``cw``)
    has ``meta`` or ``{`` after it, never these.

    >>> p = _ours("cw", {"ev"})
    >>> [bool(p.match(k)) for k in ("cw:{3}:u:1", "cw:{3}:off", "cw:{3}:erased", "cw:progress:ev", "cw:adue:ev:4",
    ...                             "cw:eu:{3}:u:1", "cw:meta", "cw:progress:ev:heads")]
    [True, False, False, True, True, False, False, True]
    """
    t = "|".join(re.escape(topic) for topic in sorted(topics))
    return re.compile(rf"{re.escape(prefix)}:(?:\{{\d+\}}:(?!(?:off|erased)\Z).+|progress:(?:{t})(?::heads)?|reroute:(?:{t})|adue:(?:{t}):\d+)\Z",
                      re.S)


async def _unlink_matching(store: Store, token: str, ours: re.Pattern[str], match: str) -> int:
    """UNLINK every key SCAN finds for ``match`` that ``ours`` accepts, a page at a time (the lock
    refreshed before each page, ``_scan_pages``)."""
    deleted = 0
    async for page in _scan_pages(store, token, match):
        deleted += await _unlink(store, [key for key in page if ours.match(_text(key))])
    return deleted


def _text(key: bytes | str) -> str:
    return key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key


async def _unlink(store: Store, keys: list[bytes | str]) -> int:
    """UNLINK ``keys``, one command each in one pipeline (on a cluster each goes to its slot's node: queued
    as a plain command, since ClusterPipeline's own ``unlink`` is a multi-key coroutine, not queued)."""
    if not keys:
        return 0
    pipe = store.client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("UNLINK", key)
    return sum(int(n) for n in await pipe.execute())
