"""The Redis state store: per-bucket read and fenced write scripts, partition progress, read API.

Key layout and the effectively-once rules are in docs/ARCHITECTURE.md; the scripts are the
``lua/*.lua`` files next to this module, loaded once with SCRIPT LOAD and run with EVALSHA.
A worker cycle costs two round trips whatever its size: the reads of every bucket touched, then the
writes with the progress behind them (a third, the progress on its own, on a cluster or when the
cycle has account work or re-routed copies to record first). The per-bucket scripts (``read_batch``, ``write_batch``, ``read_accounts``,
``write_accounts``) are each written for one bucket and loaded behind ``lua/buckets.lua``, a
driver that runs them bucket after bucket in one call: on a single Redis one call carries the
buckets of about ``BUCKET_CALL_ITEMS`` users (``WRITE_CALL_ITEMS`` for the state writes), keys and
arguments packed in one string (a cycle of a few hundred records is one call, not 64, and redis-py
packs 3 arguments, not ~1,000). The
fenced writes share ``lua/fence.lua`` (the offset fence and retry token), loaded in front of them.

Failures: this module raises; the caller (``streams.worker.pipeline``) retries with back-off. A script
missing after a Redis restart (NOSCRIPT) is reloaded and the round trip repeated once here.

Redis Cluster (``settings.redis_cluster``, ``REDIS_URL`` = any one node): every script call touches
one hash tag ``{b}`` (one slot: the driver gets one bucket a call, its keys declared) and progress/meta are single keys, so each call has one owner node.
redis-py's ClusterPipeline refuses ``pipe.evalsha`` by name, but queued as a plain EVALSHA command
it is routed by its first key's slot like any keyed command: the pipeline sends one batch per
primary, concurrently, and re-sends calls answered MOVED/ASK/TRYAGAIN one by one (redis-py 8.1,
``redis/asyncio/cluster.py`` ``PipelineStrategy._execute``). So a cycle still costs one round trip
per node touched, in parallel. Scripts are loaded on every primary (SCRIPT LOAD goes to all
primaries); a node that answers NOSCRIPT (restarted, or a replica promoted) gets them again and only
the refused calls are repeated - they did not run, so no write is applied twice.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError, NoScriptError, ReadOnlyError, ResponseError

from models.engine import Alert
from models.model import ChurnModel
from models.state import STAGES, UserState
from models.ranking import REACH_SCALE, reach_index_score
from models.step import STAGE_KEYS, StateWrite, count_delta, frame_args, state_args
from models.subscription import a_type
from streams.worker.model_record import (LEARN_FIELD, RECORD_PREFIX, ModelAdopted, VocabularyKey, layout_refusal, learned_after,
                                         parse_record, reader_model, record_vocabulary, successor_of)
from streams.worker.alert_log import ALERT_LOG_CAP
from streams.worker.history import HISTORY_WEEKS
from streams.worker.keys import Keys, bucket_of, group_of, locate, offset_field, parse_due_member
from streams.worker.ledger import StoreRolledBack
from streams.worker.metrics import REDIS_SECONDS
from streams.worker.revenue import account_field
from streams.settings import Settings

__all__ = [
    "ERASED_FORMAT",
    "STORE_FORMAT",
    "STORE_FORMATS",
    "BucketRead",
    "BucketReadResult",
    "DueUser",
    "BucketWrite",
    "ProgressWrite",
    "StateWrite",
    "UNCHANGED",
    "Fenced",
    "UnreadableState",
    "read_state",
    "StoreMismatch",
    "EvictingRedis",
    "Eviction",
    "SAFE_EVICTION_POLICIES",
    "StoreLost",
    "ModelMismatch",
    "ModelReplaced",
    "LayoutChanged",
    "model_id",
    "Resume",
    "Store",
    "StoreReader",
    "stats_delta",
    "unreadable_delta",
    "churn_summary",
    "ChurnSummary",
    "utc_day",
    "day_name",
]

N = TypeVar("N", int, float)  # a summed counter (Store._summed)
logger = logging.getLogger(__name__)

#: ``StateWrite.due_s`` / ``.risk``: the stored index entry is already right (spares Redis two
#: sorted-set calls per user on most events; the state record read this cycle says so).
UNCHANGED = -1

#: cw:meta field naming the state rebuild of a take-over in progress (streams/worker/rebuild.py): set
#: with the new model, cleared once the old state is deleted. No worker connects while it is set.
REBUILD_FIELD = "rebuild_pending"
#: cw:meta field naming the clearing of a store that lost cw:meta but kept buckets of its old
#: incarnation (``rebuild.clear_lost_store``): set with the new incarnation, cleared once the old
#: state is deleted. A connect that finds it set, the lock free, clears the store again.
LOST_FIELD = "lost_rebuild"
#: ``maxmemory-policy`` values that never evict a key of churnwatch: ``noeviction`` (a full Redis refuses
#: writes: the workers retry, ChurnwatchRedisErrors) and the ``volatile-*`` ones, which evict only keys
#: with a TTL - of churnwatch's keys only the rebuild lock (``Keys.rebuild_lock``) has one; its holder
#: notices losing it at its next page or step (``rebuild._refresh``), and never clears the cw:meta
#: field of a worker that took the lock over (``rebuild._finish``). An ``allkeys-*`` policy drops user states, offsets and
#: cw:meta one by one, mostly unnoticed (QA8 H1).
SAFE_EVICTION_POLICIES = frozenset(("noeviction", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"))
#: Longest wait of ``connect`` for a rebuild another worker runs, and its polling interval.
REBUILD_WAIT_S = 600.0
REBUILD_POLL_S = 0.5


def reach_score(bound: float | None) -> int | str:
    """``StateWrite.reach`` as the write script takes it: "" removes, "=" leaves, else the score.

    >>> reach_score(0.25), reach_score(None), reach_score(UNCHANGED)
    (250001, '', '=')
    """
    if bound is None:
        return ""
    if bound == UNCHANGED:
        return "="
    return reach_index_score(bound)  # (REACH_SCALE micro-units, rounded up: models.ranking)


#: Key layout + state record format version, kept in ``cw:meta`` (a worker refuses a mismatch).
STORE_FORMAT = "1"
#: ``cw:meta`` ``format`` of a store that holds an erasure (``churnwatch erase``, set by the erase and
#: by a worker that finds an erased set): a worker of a version before the erase (it wants "1") refuses
#: the store instead of writing erased users back (review 20 M5). This version reads both. Not a bump
#: of ``STORE_FORMAT``: that would refuse the rollback of every store, erasure or not.
ERASED_FORMAT = "2"
#: The ``format`` values this version reads.
STORE_FORMATS = (STORE_FORMAT, ERASED_FORMAT)
#: ``cw:meta`` field present once accounts are in use (``Store.mark_accounts_in_use``).
ACCOUNTS_FIELD = "accounts_in_use"
_CHURNED = STAGES.index("churned")
_STAGE_KEYS = STAGE_KEYS  # stats fields of the stage counts (models.step)


class StoreMismatch(ValueError):
    """Redis holds data written with other buckets/groups/format than this worker's settings."""


class UnreadableState(ValueError):
    """One user's stored state record cannot be read (damaged, or of a format this version does
    not know): a reader of that one user says so in these words rather than failing on the
    record (the worker restarts the user at its next event: ``streams.worker.phases``)."""


def read_state(raw: bytes) -> UserState:
    """The state of one user's stored record, or :class:`UnreadableState` saying what is there.

    >>> try:
    ...     read_state(b"\\x09\\x00abc")
    ... except UnreadableState as exc:
    ...     print(exc)
    the stored state of this user cannot be read (format v9, 5 bytes): it will start afresh at its next event
    """
    try:
        return UserState.from_bytes(raw)
    except ValueError as exc:
        what = f"format v{raw[0]}, {len(raw)} bytes" if raw else "an empty record"
        logger.debug("unreadable state record: %s", exc)
        raise UnreadableState(f"the stored state of this user cannot be read ({what}): it will start afresh at its next event") from exc


class StoreLost(Exception):
    """Redis lost the data this worker was writing to (restart without persistence, failover to
    an empty replica, flush): the incarnation marker is gone or is another one. Nothing may be
    written until the worker has rebuilt its partitions (streams.worker.consumer)."""

    def __init__(self, had: str, found: str) -> None:
        super().__init__(f"Redis store incarnation {found or '(none)'} is not {had}: Redis lost its data")
        self.had, self.found = had, found


class EvictingRedis(StoreMismatch):
    """Redis evicts keys of any kind when full (``maxmemory-policy allkeys-*``): the state would be lost."""


@dataclass(frozen=True)
class Eviction:
    """What ``INFO`` says of eviction: each node's ``maxmemory_policy`` ("": INFO has no such field,
    some managed Redis or proxies), and each node's ``evicted_keys`` (a node whose count is unreadable
    left out), named by ``eviction_series``."""
    policies: dict[str, str]
    evicted: dict[str, int]

    @property
    def unsafe(self) -> dict[str, str]:
        """The nodes whose policy evicts churnwatch's keys (``SAFE_EVICTION_POLICIES``)."""
        return {node: p for node, p in self.policies.items() if p and p not in SAFE_EVICTION_POLICIES}

    @property
    def unknown(self) -> list[str]:
        """The nodes whose policy INFO does not tell: not known safe (QA review 13 #4)."""
        return sorted(node for node, p in self.policies.items() if not p)

    def unsafe_text(self) -> str:
        """What an evicting policy does, for the refusal at start and the ERROR while running.

        >>> Eviction({"": "allkeys-lru"}, {}).unsafe_text()[:64]
        'Redis evicts any key when full (maxmemory-policy allkeys-lru): c'
        """
        nodes = ", ".join(f"{n}: {p}" if n else p for n, p in sorted(self.unsafe.items()))
        return (f"Redis evicts any key when full (maxmemory-policy {nodes}): churnwatch's user states and offsets "
                f"would be dropped silently. Set maxmemory-policy noeviction (or a volatile-* policy) and enough "
                f"maxmemory (docs/OPERATE.md, \"ChurnwatchRedisEvicting\")")


def eviction_series(node: str, run_id: str) -> str:
    """The ``node`` label of a node's evicted-keys count: its address on a cluster ("" for a single
    Redis) and its ``run_id`` (``INFO server``), so that a series is one process lifetime of one
    node and its count only grows. A single-address Redis failed over (and back) to a node with
    another count read as evictions to ``increase()``: a false page (review 15, L-1).

    >>> eviction_series("", "0123456789abcdef0123"), eviction_series("10.0.0.1:6379", "0123456789abcdef"), eviction_series("", "")
    ('0123456789ab', '10.0.0.1:6379/0123456789ab', '')
    """
    return "/".join(part for part in (node, run_id[:12]) if part)


def _per_node(reply: Any) -> dict[str, dict[str, Any]]:
    """``INFO`` of one Redis (a dict of fields) or of a cluster's primaries (a dict per node name)."""
    if isinstance(reply, dict) and reply and all(isinstance(v, dict) for v in reply.values()):
        return {str(k): v for k, v in reply.items()}
    return {"": reply if isinstance(reply, dict) else {}}


class ModelMismatch(StoreMismatch):
    """Redis records another model in use than this worker's (see ``model_id``)."""


class RebuildInterrupted(ModelMismatch):
    """A take-over's state rebuild (``--rebuild-state``) started and its worker died before it
    finished: the store holds part of the old model's state under the new model's name."""


class RebuildRunning(StoreMismatch):
    """A take-over's state rebuild is still running after this worker waited ``Store.rebuild_wait_s``."""


class ModelReplaced(Exception):
    """Another worker took over with another model (a rolling upgrade): this one stops."""

    def __init__(self, mine: str, now: str) -> None:
        super().__init__(f"the model in use is now {now}; this worker runs {mine}")
        self.mine, self.now = mine, now


class LayoutChanged(Exception):
    """The events topic's partition count is not the one the state is laid out for: users moved
    partition. Workers stop taking work until ``churnwatch relayout`` moved the state."""


def model_id(model: ChurnModel) -> str:
    """``<version>@<digest>``: the version names the model, the digest of every number catches
    two files under one version.

    >>> model_id(ChurnModel()).startswith("builtin-1@")
    True
    """
    return f"{model.version}@{hashlib.sha256(model.to_json().encode()).hexdigest()[:12]}"


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a partition resumes: its progress as stored, and the checksum of the last applied
    record (``record_fingerprint``; "" when unknown) to recognise a replaced topic."""

    offset: int
    max_ms: int
    fingerprint: str
    origins: dict[int, int] = field(default_factory=dict)  # re-routed copies applied: origin p -> offset


def _script(name: str) -> str:
    return resources.files("streams.worker").joinpath("lua", name).read_text(encoding="utf-8")


#: Scripts written for one bucket and run through the ``lua/buckets.lua`` driver (several buckets a call).
_PER_BUCKET = ("read_batch", "write_batch", "read_accounts", "write_accounts")
#: Shared Lua put in front of a script when it is loaded (Lua scripts cannot import).
_PRELUDES = {"read_batch": ("fence", "erased"), "write_batch": ("fence", "erased"), "read_accounts": ("fence",),
             "write_accounts": ("fence", "erased"), "history": ("erased",)}
#: A call of a per-bucket script carries buckets until it holds about this many users or accounts:
#: a small cycle is one call, a full 10k batch about ten (one script blocks Redis while it runs).
BUCKET_CALL_ITEMS = 1_000
#: A call of ``write_batch`` carries fewer: the next cycle's reads (``Pipeline._read_advance``) are sent
#: while this cycle's write still runs, on another pooled connection, and Redis serves them between two
#: of its script calls, so each read waits behind at most one write call (docs/SCALING.md).
WRITE_CALL_ITEMS = 250


def _script_source(name: str) -> str:
    """The text loaded for script ``name``: its preludes, then the file, wrapped as the function
    ``bucket`` with the driver after it when it is a per-bucket script."""
    prelude = "".join(_script(f"{p}.lua") + "\n" for p in _PRELUDES.get(name, ()))
    body = _script(f"{name}.lua")
    if name not in _PER_BUCKET:
        return prelude + body
    return f"{prelude}local function bucket(KEYS, ARGV)\n{body}\nend\n{_script('buckets.lua')}"


@dataclass(slots=True)
class _BucketCall:
    """One bucket's keys and arguments for a per-bucket script; ``items`` sizes the calls."""

    keys: list[str]
    args: list[Any]
    items: int


def _bucket_calls(calls: Sequence[_BucketCall], packed: bool, limit: int | None = None) -> list[tuple[list[str], list[Any]]]:
    """Group buckets into driver calls (``lua/buckets.lua``): ``(keys, args)`` of each EVALSHA.

    ``packed`` (single Redis): keys and arguments travel in one string with their lengths, no
    KEYS, about ``limit`` items a call (default ``BUCKET_CALL_ITEMS``); else one bucket a call
    with its keys declared (Redis Cluster routes by them).

    >>> _bucket_calls([_BucketCall(["k1"], ["a"], 600), _BucketCall(["k2"], ["b", 7], 600)], False)
    [(['k1'], [b'[1,1]', '', '', 'a']), (['k2'], [b'[1,2]', '', '', 'b', 7])]
    >>> _bucket_calls([_BucketCall(["k1"], ["a"], 1), _BucketCall(["k2"], [b"bc", 7], 1)], True)
    [([], [b'[1,1,1,2]', b'[2,1,2,2,1]', b'k1ak2bc7'])]
    >>> len(_bucket_calls([_BucketCall(["k"], ["a"], 200)] * 5, True)), len(_bucket_calls([_BucketCall(["k"], ["a"], 200)] * 5, True, 250))
    (1, 5)
    """
    limit = BUCKET_CALL_ITEMS if limit is None else limit
    out: list[tuple[list[str], list[Any]]] = []
    group: list[_BucketCall] = []
    items = 0
    for call in calls:
        if group and (not packed or items + call.items > limit):
            out.append(_driver_call(group, packed))
            group, items = [], 0
        group.append(call)
        items += call.items
    if group:
        out.append(_driver_call(group, packed))
    return out


def _driver_call(group: Sequence[_BucketCall], packed: bool) -> tuple[list[str], list[Any]]:
    if not packed:
        shape = orjson.dumps([n for c in group for n in (len(c.keys), len(c.args))])
        return [k for c in group for k in c.keys], [shape, "", "", *(a for c in group for a in c.args)]
    # compiled: each item as bytes (most are already: a user's record, an alert entry), its length, all joined
    sizes, lengths, text = frame_args(group if type(group) is list else list(group), _as_bytes)
    return [], [orjson.dumps(sizes), orjson.dumps(lengths), text]


def _as_bytes(value: Any) -> bytes:
    """An argument as Redis receives it (as redis-py would encode it: str utf-8, numbers as text)."""
    if type(value) is bytes:
        return value
    if type(value) is str:
        return value.encode()
    if type(value) is int:
        return str(value).encode()
    if type(value) is float:
        return repr(value).encode()
    raise TypeError(f"cannot send {a_type(value)} to Redis")


@dataclass(slots=True)
class BucketRead:
    """What one cycle needs from bucket ``bucket``: offsets (+ due users) per partition, user states."""

    bucket: int
    parts: list[tuple[str, int | None]]  # (offset field "<topic>:<p>", due max score in s or None)
    users: list[tuple[int, str]]  # (group, user_id)
    # due entries not to return, flat [part (1-based in parts), member, ...]: moved by a write in
    # flight (streams.worker.pending.moved_dues)
    skip: list[int | str] = field(default_factory=list)


@dataclass(slots=True)
class DueUser:
    group: int
    user_id: str
    due_s: int
    blob: bytes | None


@dataclass(slots=True)
class BucketReadResult:
    offsets: list[str]  # per part: last applied offset as stored ("" when none), the CAS expectation
    blobs: list[bytes | None]  # per user
    dues: list[list[DueUser]]  # per part
    next_due: list[int | None]  # per part swept: lowest due second above the sweep's bound (None: none)
    marker: str = ""  # the bucket's incarnation marker as read
    tokens: list[str] = field(default_factory=list)  # per part: its last write's token as read ("" none)
    erased: list[int] = field(default_factory=list)  # positions in ``users`` of erased users (streams.worker.erase)


@dataclass(slots=True)
class BucketWrite:
    bucket: int
    parts: list[tuple[str, str, str]]  # (offset field, expected as read, new or "" to keep)
    states: list[StateWrite] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    # console score history (streams/worker/history.py): (group, user_id, 5-byte point or b"" to delete)
    history: list[tuple[int, str, bytes]] = field(default_factory=list)
    # console alert lists (streams/worker/alert_log.py): (group, user_id, alert id or "" to delete, entry)
    alerts: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    # users whose stored record could not be read (unreadable_delta): (group, user_id)
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    # per part: the partition's token as the read found it ("" none), which the write expects there
    # unless it is this worker's (lua/fence.lua, fence_check); None: tokens not checked, offsets only
    read_tokens: list[str] | None = None


@dataclass(slots=True)
class ProgressWrite:
    """A cycle's progress (``Store.write_progress``'s arguments) sent with its state writes
    (``Store.write``); ``applied``: the topic's whole progress once written there, else None."""

    topic: str
    progress: Mapping[int, tuple[int, int]]  # p -> (last offset, max event ms)
    fingerprints: Mapping[int, str]  # p -> record_fingerprint of that last record
    applied: dict[int, tuple[int, int]] | None = None
    # p -> the writer's last progress offset Redis acknowledged (lua/progress.lua refuses to go on
    # from below it: Redis went back in time, ``StoreRolledBack``); absent: not checked
    floors: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fenced:
    """A bucket write refused: ``field`` holds ``actual`` now, not what we read."""

    bucket: int
    field: str
    actual: str


def utc_day(epoch_s: int) -> str:
    """``yyyymmdd`` of an epoch second, the suffix of per-day stats fields.

    >>> utc_day(1_767_225_600)
    '20260101'
    """
    return day_name(epoch_s // 86_400)


@functools.lru_cache(maxsize=4096)
def day_name(day: int) -> str:
    """``yyyymmdd`` of a UTC day (days since 1970-01-01), cached: ``utc_day`` and the compiled
    counters (``models.step.count_delta``, called with it: a cache hit runs no Python frame)."""
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=day)).strftime("%Y%m%d")


def stats_delta(old: UserState | None, new: UserState | None, alerts: Iterable[Alert], out: dict[str, float]) -> None:
    """Add to ``out`` the change of bucket counters from ``old`` (stored) to ``new`` (None: expired).

    Counters: ``users``, ``stage:<name>``, ``at_risk``, ``reachable`` (on the save list as of the
    last review, models.ranking.on_save_list) (levels), ``new:<day>`` (users first seen that
    UTC day, counted when first_seen_s turns non-zero), ``churned:<day>`` and
    ``churned_rev:<day>`` (one per stage change to churned, dated by the review that saw it, with
    the user's revenue then: ``Alert.revenue``, the purchases up to the churn's event time, not
    the state's at the batch's end, which also holds purchases made after the churn when the
    batch reaches past it), ``back:<day>`` (one per return from churned, a stage change from it,
    dated by the churn it ends: so a window's churned users who are back by its end are counted,
    QA22b F5), ``churned_trial:<day>`` (of ``churned:<day>``, the users whose subscription is a
    trial that never paid, models.state.never_paid_trial: leads lost, not customers; QA23a F2),
    ``churned_free:<day>`` (of the others, the users who never paid at all, models.state.never_paid:
    no purchase, no paying plan of their own ever, no company account; QA24a F4). Levels are derived from states, events
    from alerts, so a replayed or re-batched history adds the same numbers. A counter a user does
    not move is left out (most writes move none: a dict update per level and user was ~5% of the
    worker's CPU).

    Only tracked users count (models.state.tracked): a record of billing statements alone is no
    user yet, so it adds nothing until its first activity (or cancellation) adds it whole. Before,
    it was counted ``users`` and ``stage:new`` (its stage byte, never reviewed) while live scoring
    called it churned: the QA pass of December 2026 found 36 such users behind "new 41" against
    4 new users live.

    Compiled (``models.step.count_delta``, the same counts; one implementation): the worker runs it
    for every user it writes.
    """
    count_delta(old, new, alerts if type(alerts) is list else list(alerts), out, day_name)


def _parts_json(w: BucketWrite | Any) -> bytes:
    """``w.parts`` flat for the write scripts, each with its token as read (false: not checked);
    ``w`` a :class:`BucketWrite` or a ``streams.worker.revenue.AccountWrite``.

    >>> _parts_json(BucketWrite(0, [("ev:1", "5", ""), ("ev:2", "", "9")], read_tokens=["a:1", ""]))
    b'["ev:1","5","","a:1","ev:2","","9",""]'
    """
    tokens: Sequence[str | bool] = w.read_tokens if w.read_tokens is not None else [False] * len(w.parts)
    return orjson.dumps([x for part, tok in zip(w.parts, tokens) for x in (*part, tok)])


def unreadable_delta(blob: bytes, out: dict[str, float]) -> bool:
    """Take off ``out`` what a stored record that can no longer be read added to its bucket's
    counters, as far as the record still says: ``users``, and its stage count from byte 1 (the
    stage in every format, models.state) unless that byte is itself out of range (False: the
    stage count is left one too high). ``at_risk`` and ``reachable`` are taken off by
    ``lua/write_batch.lua`` from the user's index entries (``BucketWrite.unreadable``), which
    follow exactly those two. The record's ``new:<day>`` and churn counts are events, not levels:
    they stay.

    A record whose head still reads as one of billing statements alone (formats 3-5: no events,
    no cancellation) was never counted (:func:`stats_delta`): nothing to take off.

    >>> d = {}; unreadable_delta(bytes([4, 1]), d), d
    (True, {'users': -1, 'stage:active': -1})
    >>> d = {}; unreadable_delta(bytes([4, 0]) + bytes(93), d), d
    (True, {})
    """
    if _untracked_head(blob):
        return True
    out["users"] = out.get("users", 0) - 1
    stage = blob[1] & 0x07 if len(blob) > 1 and blob[0] in (7, 8) else blob[1] if len(blob) > 1 else len(_STAGE_KEYS)
    if stage >= len(_STAGE_KEYS):  # (formats 7 and 8: byte 1's bits from 3 up are models.state EVER_PAID and NEVER_PAID_TRIAL)
        return False
    k = _STAGE_KEYS[stage]
    out[k] = out.get(k, 0) - 1
    return True


#: Formats whose head has the layout of models.state's ``_STRUCT_V4`` (format 3 is its prefix):
#: ``cancelled_s`` at byte 19, ``n_events`` at byte 47 (uint32, little-endian).
_HEAD_FORMATS = (3, 4, 5)


def _untracked_head(blob: bytes) -> bool:
    """Whether an unreadable record's head says no events and no cancellation (models.state.tracked)."""
    if len(blob) < 51 or blob[0] not in _HEAD_FORMATS:
        return False
    return int.from_bytes(blob[19:23], "little") == 0 and int.from_bytes(blob[47:51], "little") == 0


@dataclass(frozen=True, slots=True)
class ChurnSummary:
    churned: int
    revenue: float
    active_at_start: int
    # of ``churned``, the churns a return has ended since (``back:<day>``, counted under the churn's
    # day): the users back by the window's end (QA22b F5: 300 of a game's 649 were seasonal players back)
    back: int = 0
    # of ``churned``, the trials that never paid (``churned_trial:<day>``, models.state.never_paid_trial): QA23a
    # F2, a fitness app's "132 users churned" held 105 of them, leads lost rather than customers
    trials: int = 0
    # of ``churned``, not trials, the users who never paid at all (``churned_free:<day>``,
    # models.state.never_paid): QA24a F4, a publisher's "98 users churned" held 49 free readers
    free: int = 0

    @property
    def rate(self) -> float:
        return self.churned / self.active_at_start if self.active_at_start else 0.0

    @property
    def rate_others(self) -> float:
        """The part of :attr:`rate` that is neither trials that never paid nor users who never paid
        at all, over the same users active at the start: the parts add up to the rate. Why that
        denominator: the counters know who was active at the start, not who of them had paid by
        then (the state counts no payers at the start); the paying customers' own churn over the
        customers at the start is the revenue ledger's logo churn (``churn-rate --period month``,
        docs/REVENUE.md), exact to the customer."""
        return (self.churned - self.trials - self.free) / self.active_at_start if self.active_at_start else 0.0

    def figures(self) -> dict[str, int | float]:
        """The churn figures of ``churn-rate --json``, ``/api/v1/churn`` and the console alike (one
        place): ``reactivated``, of churned those back by the window's end (QA22b F5);
        ``churned_trials``, of churned the trials that never paid, and ``churn_rate_others``, the
        rest's part of the rate over the same users active at the start (QA23a F2); ``churned_never_paid``,
        of churned the users who never paid at all, not trials (QA24a F4), also out of the rest.

        >>> ChurnSummary(132, 0.0, 1468, 0, 105).figures()["churn_rate_others"]
        0.0184
        >>> ChurnSummary(98, 0.0, 2620, 3, 0, 49).figures()["churn_rate_others"]
        0.0187
        """
        return {"churned": self.churned, "active_at_start": self.active_at_start, "churn_rate": round(self.rate, 4),
                "churned_revenue": round(self.revenue, 2), "reactivated": self.back, "churned_trials": self.trials,
                "churned_never_paid": self.free, "churn_rate_others": round(self.rate_others, 4)}


def churned_split_text(c: Mapping[str, Any]) -> str:
    """Of the window's churned users (``c``: :meth:`ChurnSummary.figures`), the trials that never
    paid, the users who never paid at all, and the rest's part of the rate, over the same users
    active at the start (so the parts add up to the rate): "105 of them trials that never paid; the
    other 27 = 1.8%" (QA23a F2), "49 of them never paid; the other 49 = 1.9%" (QA24a F4: a
    publisher's free readers gone silent beside its cancelled subscribers); "" when there is no
    split to tell. The users who never paid are told only when some who did churned too: in a
    product without purchases or paid plans every user never paid, and the split would say
    nothing. ``churn-rate``'s sentence and the console's Churned card (one wording).

    >>> churned_split_text({"churned": 132, "churned_trials": 105, "churned_never_paid": 0, "active_at_start": 1468})
    '105 of them trials that never paid; the other 27 = 1.8%'
    >>> churned_split_text({"churned": 98, "churned_trials": 0, "churned_never_paid": 49, "active_at_start": 2620})
    '49 of them never paid; the other 49 = 1.9%'
    >>> churned_split_text({"churned": 30, "churned_trials": 10, "churned_never_paid": 12, "active_at_start": 1000})
    '10 of them trials that never paid and 12 never paid at all; the other 8 = 0.8%'
    >>> churned_split_text({"churned": 98, "churned_trials": 0, "churned_never_paid": 98, "active_at_start": 2620})
    ''
    """
    trials, free = c["churned_trials"], c.get("churned_never_paid", 0)
    if c["churned"] - trials - free <= 0:
        free = 0  # nobody who paid churned: no split of payers to tell (a product without payments)
    if not trials and not free:
        return ""
    parts = f"{trials:,} of them trials that never paid" if trials else ""
    if free:
        parts = f"{parts} and {free:,} never paid at all" if parts else f"{free:,} of them never paid"
    others = c["churned"] - trials - free
    rate = others / c["active_at_start"] if c["active_at_start"] else 0.0
    return f"{parts}; the other {others:,} = {100 * rate:.1f}%"


def churn_summary(stats: Mapping[str, float], now_s: int, days: int = 30) -> ChurnSummary:
    """Churn over the ``days`` UTC days ending at ``now_s`` (event time), from summed bucket stats.

    Users active at the start of the window are estimated from counters, not stored per day:
    ``users not churned now - users first seen in the window + users who churned in the window``.
    """
    window = {utc_day(now_s - d * 86_400) for d in range(days)}
    churned = sum(int(stats.get("churned:" + d, 0)) for d in window)
    revenue = sum(float(stats.get("churned_rev:" + d, 0.0)) for d in window)
    new = sum(int(stats.get("new:" + d, 0)) for d in window)
    alive = int(stats.get("users", 0)) - int(stats.get("stage:churned", 0))
    back = sum(int(stats.get("back:" + d, 0)) for d in window)
    trials = sum(int(stats.get("churned_trial:" + d, 0)) for d in window)
    free = sum(int(stats.get("churned_free:" + d, 0)) for d in window)
    return ChurnSummary(churned, revenue, max(churned, alive - new + churned), back, trials, free)


def _s(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


#: (model in use, this worker's) pairs whose "not taking over" line was logged (``Store._check_take_over``).
_TOLD_LEARNED_AFTER: set[tuple[str, str]] = set()


async def rebuild_pause() -> None:
    """One wait between two looks at a state rebuild another worker runs (tests see a worker waiting here)."""
    await asyncio.sleep(REBUILD_POLL_S)


class _Calls(list[tuple[Any, ...]]):
    """Records a cycle's script calls so the cluster path can repeat only those refused (NOSCRIPT)."""

    def execute_command(self, *args: Any) -> None:
        self.append(args)


class Store:
    """Async access to the state in Redis (redis.asyncio with hiredis). One per worker process."""

    def __init__(self, settings: Settings, client: aioredis.Redis | RedisCluster | None = None, *,
                 reconnect_once: bool = False) -> None:
        """``reconnect_once``: a call whose pooled connection turns out closed (Redis restarted, or
        ``CLIENT KILL``: "Connection closed by server") is sent once more on a new connection, by
        redis-py's own ``Retry`` (``from_url`` clients have none: their pool's connections get
        ``Retry(NoBackoff(), 0)``). For a long-lived reader, the console: its idle pool went stale
        and the next request answered 503 (QA3 #6). Connection errors only (a timeout is not
        retried: it would double the wait on a Redis that hangs); a Redis that is down still fails
        at once (the reconnect is refused). The worker does without: its loop retries whole steps."""
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.buckets = settings.buckets
        self.groups = settings.groups_per_bucket
        self.due_limit = 2_000
        self.cluster = settings.redis_cluster
        client_cls = RedisCluster if self.cluster else aioredis.Redis
        self._client = client or client_cls.from_url(
            settings.redis_url,
            password=settings.redis_password or None,
            socket_timeout=5.0,
            socket_connect_timeout=3.0,
            health_check_interval=30,
            **({"retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))} if reconnect_once and not self.cluster else {}),
        )
        self._sources = {name: _script_source(name)
                         for name in ("read_batch", "write_batch", "progress", "history", "read_accounts",
                                      "write_accounts")}
        self._sha: dict[str, str] = {}
        self._reach_source = _script("reach_ranks.lua")  # sent with EVAL by readers (see the script)
        self.incarnation = ""  # of the data in Redis, learnt by connect(); "" before
        self.eviction_checked = False  # refuse_evicting passed (before a take-over's rebuild or at connect)
        self.model = ""  # model_id this worker scores with; recorded in cw:meta by connect()
        self.take_over_model = False  # connect() records our model even if another is recorded
        # The model itself (``use_model``): its record is written to cw:meta, and a learned successor
        # of it recorded there is taken in place (streams/worker/model_record.py); None: ids only.
        self.model_obj: ChurnModel | None = None
        self.adopted: ModelAdopted | None = None  # connect() found a learned successor in use: run it
        # Accounts are in use (a copy was made or read): recorded in cw:meta (``mark_accounts_in_use``),
        # learnt by connect(). The accounts' heartbeats follow it (streams/worker/watermark.py).
        self.accounts_in_use = False
        # How long connect() waits for a take-over's state rebuild that another worker is running.
        self.rebuild_wait_s = REBUILD_WAIT_S

    def use_model(self, model: ChurnModel) -> None:
        """Score with ``model`` from now on (at start, or at a cycle boundary after ``ModelAdopted``)."""
        self.model, self.model_obj = model_id(model), model

    @property
    def client(self) -> aioredis.Redis | RedisCluster:
        return self._client

    async def close(self) -> None:
        await self._client.aclose()

    async def ping(self) -> bool:
        return bool(await self._client.ping())

    async def reconnect(self) -> None:
        """Close the idle pooled connections: the next call opens a new one, resolving the address
        again. A connection to a primary demoted by a failover that kept the address (a DNS name
        or a Service repointed, no ``CLIENT KILL``) answers READONLY for good (review 14, M-2).
        A call in flight on another connection is not cut: if it meets READONLY it comes here too.
        A cluster client closes its nodes and reads the slots map again at its next call, as
        redis-py does itself after CLUSTERDOWN."""
        if isinstance(self._client, RedisCluster):
            await self._client.aclose()
        else:
            await self._client.connection_pool.disconnect(inuse_connections=False)

    async def reconnect_after(self, exc: BaseException) -> bool:
        """``reconnect`` if ``exc`` is READONLY (the connection leads to a demoted primary); True if
        so. Called wherever a Redis error is retried: the pipeline's writes (``Pipeline._retry``),
        the consumer loop, and ``connect`` (at start and after a loss), which otherwise retried on
        the demoted node for good (review 15, M-1). A failed disconnect is left to the next attempt."""
        if not isinstance(exc, ReadOnlyError):
            return False
        try:
            await self.reconnect()
        except Exception as err:  # noqa: BLE001  (only sockets closing: the retry goes on)
            logger.debug("dropping Redis connections after READONLY failed: %s", err)
        return True

    async def connect(self) -> None:
        """Check ``cw:meta`` against our settings (first worker writes it), learn the store's
        incarnation (the first worker on an empty Redis makes one and marks every bucket with
        it), record or check the model in use, and load the scripts. Waits first while a take-over
        rebuilds the state (``wait_for_rebuild``), and again if one began before meta was read.
        READONLY (it always writes): the caller's next attempt goes out on a new connection."""
        try:
            await self._connect()
        except ReadOnlyError as exc:
            await self.reconnect_after(exc)
            raise

    async def _connect(self) -> None:
        """``connect``, without the READONLY handling."""
        if not self.incarnation and not self.eviction_checked:  # at start; a reconnect after a loss does not stop the worker
            await self.refuse_evicting()
        meta_key = self.keys.meta
        want = {"buckets": str(self.buckets), "groups_per_bucket": str(self.groups), "format": STORE_FORMAT}
        deadline = time.monotonic() + self.rebuild_wait_s
        while True:
            await self.wait_for_rebuild(deadline)
            take_over = bool(self.take_over_model and self.model)
            if take_over and self.model_obj is not None:
                take_over = await self._check_take_over(self.model_obj)
            pipe = self._client.pipeline(transaction=False)
            for k, v in want.items():
                pipe.hsetnx(meta_key, k, v)
            pipe.hsetnx(meta_key, "incarnation", uuid.uuid4().hex[:16])
            if self.model:
                (pipe.hset if take_over else pipe.hsetnx)(meta_key, "model", self.model)
            pipe.hgetall(meta_key)
            *_, raw = await pipe.execute()
            have = {_s(k): _s(v) for k, v in raw.items()}
            if REBUILD_FIELD not in have:  # else a rebuild began after the wait: its incarnation is not ours to take
                break
        wrong = {k: have.get(k) for k, v in want.items() if have.get(k) != v and not (k == "format" and have.get(k) in STORE_FORMATS)}
        if wrong:
            raise StoreMismatch(
                f"Redis key {meta_key} says {', '.join(f'{k}={have.get(k)}' for k in want)} but this worker has "
                f"{', '.join(f'{k}={v}' for k, v in want.items())}: use the same buckets/groups_per_bucket "
                f"(or another key_prefix)"
            )
        recorded = have.get("model")
        if self.model and recorded != self.model and self.model_obj is not None and not take_over:
            successor = parse_record(have.get(RECORD_PREFIX + str(recorded)))
            if recorded and successor is not None and successor_of(self.model_obj, self.model, successor):
                logger.info("model %s in use is a learned successor of this worker's %s: running it", recorded, self.model)
                self.adopted = ModelAdopted(recorded, successor)
                self.use_model(successor)
        if self.model and recorded == self.model and self.model_obj is not None and RECORD_PREFIX + self.model not in have:
            await self._client.hsetnx(meta_key, RECORD_PREFIX + self.model, self.model_obj.to_json())
        if self.model and have.get("model") != self.model:
            raise ModelMismatch(
                f"Redis records model {have.get('model')} in use; this worker has {self.model}. Start it with the "
                f"same model file, or roll the new model out with --take-over-model (docs/OPERATE.md, "
                f"\"Model upgrades\")"
            )
        if take_over:
            logger.warning("model %s recorded in Redis: workers with another model stop taking work", self.model)
        self.incarnation = have["incarnation"]
        self.accounts_in_use = ACCOUNTS_FIELD in have
        if await self._mark_buckets() or LOST_FIELD in have:
            from streams.worker.rebuild import clear_lost_store  # rebuild imports this module
            await clear_lost_store(self)
            return await self._connect()  # the store is consistent now: its incarnation, from the start
        await self._mark_save_index(have.get("save_index"), take_over)
        if have.get("format") == STORE_FORMAT and await self._client.exists(self.keys.erased(0)):
            await self._client.hset(meta_key, "format", ERASED_FORMAT)  # cw:meta lost and made again: erasures kept
        await self._load_scripts()

    async def eviction(self) -> Eviction:
        """``INFO memory`` and ``INFO stats`` of Redis (of every primary on a cluster): INFO works on
        managed Redis where CONFIG is disabled."""
        if self.cluster:
            memory, stats, server = [await self._client.info(section, target_nodes=RedisCluster.PRIMARIES)  # type: ignore[call-arg]
                                     for section in ("memory", "stats", "server")]
        else:
            memory, stats, server = [await self._client.info(section) for section in ("memory", "stats", "server")]
        policies = {node: str(info.get("maxmemory_policy", "")) for node, info in _per_node(memory).items()}
        runs = {node: str(info.get("run_id", "")) for node, info in _per_node(server).items()}
        evicted = {eviction_series(n, runs.get(n, "")): c
                   for n, c in ((n, info.get("evicted_keys")) for n, info in _per_node(stats).items()) if isinstance(c, int)}
        return Eviction(policies, evicted)

    async def refuse_evicting(self) -> None:
        """Refuse to start (``EvictingRedis``: one line, exit code 2) on a Redis whose policy evicts
        churnwatch's keys when full. INFO refused (an ACL without it) or without the policy: a WARNING,
        and the worker starts."""
        try:
            found = await self.eviction()
        except ResponseError as exc:
            logger.warning("cannot read Redis's maxmemory-policy (INFO refused: %s): make sure it is noeviction "
                           "(docs/OPERATE.md, \"ChurnwatchRedisEvicting\")", exc)
            self.eviction_checked = True
            return
        if found.unknown and not found.unsafe:
            logger.warning("Redis's INFO memory has no maxmemory_policy (%s): make sure it is noeviction "
                           "(docs/OPERATE.md, \"ChurnwatchRedisEvicting\")", ", ".join(n or "Redis" for n in found.unknown))
        if found.unsafe:
            raise EvictingRedis(found.unsafe_text())
        self.eviction_checked = True

    async def wait_for_rebuild(self, deadline: float) -> None:
        """Return once no take-over's state rebuild is in progress (``REBUILD_FIELD`` in cw:meta): a
        worker that connected while the rebuilding worker deletes the old state would lose what it
        applies. ``RebuildInterrupted`` when the field is set but the rebuilding worker's lock is
        gone (it died: only a worker with ``--rebuild-state`` finishes it), ``RebuildRunning`` past
        ``deadline`` (monotonic seconds)."""
        waited = False
        while True:
            pipe = self._client.pipeline(transaction=False)  # two slots on a cluster: no transaction
            pipe.hget(self.keys.meta, REBUILD_FIELD)
            pipe.get(self.keys.rebuild_lock)
            pending, holder = await pipe.execute()
            if not pending:
                return
            recorded = _s(await self._client.hget(self.keys.meta, "model"))
            if not holder:
                raise RebuildInterrupted(
                    f"a take-over's state rebuild to model {recorded} was interrupted (Redis key {self.keys.meta} field "
                    f"{REBUILD_FIELD}): start a worker with that model and --take-over-model --rebuild-state to finish it "
                    f"(docs/OPERATE.md, \"Model upgrades\")")
            if time.monotonic() >= deadline:
                raise RebuildRunning(f"a take-over's state rebuild to model {recorded} is still running after "
                                     f"{self.rebuild_wait_s:.0f} s: start this worker again later")
            if not waited:
                logger.warning("a take-over's state rebuild to model %s is running: waiting for it before connecting", recorded)
                waited = True
            await rebuild_pause()

    async def _check_take_over(self, model: ChurnModel) -> bool:
        """Refuse (``ModelMismatch``) a take-over whose vocabulary differs from the model in use,
        before it is recorded: the stored states hold the recorded model's slots (model_record.layout_refusal).
        False (no take-over: run the model in use, as a worker without the flag) when the model in use was
        learned after ours (``model_record.learned_after``): a worker restarted with ``--take-over-model``
        still set must not roll back what ``churnwatch learn`` adopted since; ``--roll-back-from <that id>``
        (one id: a later adoption is not rolled back by a flag left set) takes over all the same."""
        found, record, _ = await self.model_record()
        layout = await self.recorded_layout(found, record)
        why = layout_refusal(model, self.model, found, layout, self.keys.prefix)
        if why:
            raise ModelMismatch(why)
        if found and found != self.model and layout is None:
            logger.warning("Redis records model %s in use but not its file: cannot check that model %s tracks the same "
                           "event types (the states' slots); if not, rebuild the state (docs/OPERATE.md, \"Model upgrades\")",
                           found, self.model)
        if not found or found == self.model or not learned_after(model, self.model, record, await self._model_records()):
            return True
        if self.settings.model_rollback_from == found:
            logger.warning("model %s takes over from %s, learned after it: rolled back (--roll-back-from)", self.model, found)
            return True
        if (found, self.model) not in _TOLD_LEARNED_AFTER:  # the preflight's store and the runtime's: said once
            _TOLD_LEARNED_AFTER.add((found, self.model))
            logger.warning("model %s in use was learned after this worker's %s (churnwatch learn): not taking over, running it "
                           "(--take-over-model / CHURNWATCH_MODEL_TAKEOVER is still set; a restart does not roll back). To roll "
                           "back to %s, start a worker with --take-over-model --roll-back-from %s (CHURNWATCH_MODEL_ROLLBACK_FROM)",
                           found, self.model, self.model, found)
        return False

    async def _model_records(self) -> dict[str, ChurnModel]:
        """Every model file cw:meta holds (``model:<id>``), by id: the chain a take-over is checked against."""
        raw = await self._client.hgetall(self.keys.meta)
        texts = {_s(k)[len(RECORD_PREFIX):]: v for k, v in raw.items() if _s(k).startswith(RECORD_PREFIX)}
        return {i: m for i, m in ((i, parse_record(t)) for i, t in texts.items()) if m is not None}

    async def mark_accounts_in_use(self) -> None:
        """Record in cw:meta that accounts are in use, for good: a restarted worker must send the
        heartbeats that move the accounts' watermark before any event names an account (a silent
        account sends none, yet its deadlines are due)."""
        await self._client.hsetnx(self.keys.meta, ACCOUNTS_FIELD, "1")
        self.accounts_in_use = True

    async def _mark_save_index(self, recorded: str | None, take_over: bool) -> None:
        """``save_index`` in cw:meta names the model whose bounds fill the save-list index of every
        stored user (``cw:{b}:r:<g>``), so readers with that model may rank from it
        (``streams.views.top_users``). Recorded by a worker that finds no user stored yet; a store
        from before the index, or one whose model was taken over, has none or "" (readers then read
        every state)."""
        if not self.model or recorded == self.model:
            return
        if recorded is None:
            pipe = self._client.pipeline(transaction=False)
            for b in range(self.buckets):
                pipe.hget(self.keys.stats(b), "users")
            if not any(int(v or 0) for v in await pipe.execute()):
                await self._client.hsetnx(self.keys.meta, "save_index", self.model)
        elif take_over and recorded:  # "": cleared already, by this worker's preflight or another (QA10 F15: a second
            await self._client.hset(self.keys.meta, "save_index", "")  # warning named an empty model)
            logger.warning("save-list index built with model %s, taken over by %s: top --share reads every state from now on",
                           recorded, self.model)

    async def model_record(self) -> tuple[str, ChurnModel | None, str]:
        """The model in use as Redis records it: (id, its model file if recorded, the learner's
        last comparison JSON or "")."""
        raw_found, learn = await self._client.hmget(self.keys.meta, ["model", LEARN_FIELD])
        found = _s(raw_found)
        text = await self._client.hget(self.keys.meta, RECORD_PREFIX + found) if found else None
        return found, parse_record(text), _s(learn)

    async def recorded_layout(self, found: str, record: ChurnModel | None) -> ChurnModel | VocabularyKey | None:
        """What a take-over's layout check compares (``model_record.layout_refusal``): the recorded
        model ``record``, or, when its file does not load in this version, its vocabulary read
        leniently (``model_record.record_vocabulary``: a record an earlier version wrote from a file
        this version refuses still says which slots the stored states hold)."""
        if record is not None or not found:
            return record
        return record_vocabulary(await self._client.hget(self.keys.meta, RECORD_PREFIX + found))

    async def adopt_model(self, base: str, successor: ChurnModel | None, comparison: str, root: str) -> tuple[bool, str]:
        """Without a ``successor``, record the learner's ``comparison``; with one, make it the
        model in use if ``base`` still is, and record ``comparison`` only then (one atomic script,
        lua/adopt_model.lua: a refused adoption never shows as adopted). Returns (adopted, the
        model in use)."""
        new_id = model_id(successor) if successor is not None else ""
        reply = await self._client.eval(_script("adopt_model.lua"), 1, self.keys.meta, base, new_id,
                                        successor.to_json() if successor is not None else "", comparison, root)
        return (True, new_id) if int(reply[0]) == 1 else (False, _s(reply[1]))

    async def model_in_use(self, file_model: ChurnModel) -> tuple[ChurnModel, str]:
        """What readers score with and a note ("" none): the model Redis records in use (a take-over's
        file or a learned successor), ``file_model`` before any (model_record.reader_model)."""
        found, record, _ = await self.model_record()
        return reader_model(file_model, model_id(file_model), found, record)

    async def last_learn(self) -> str:
        """The learner's last comparison (JSON), "" before any."""
        return _s(await self._client.hget(self.keys.meta, LEARN_FIELD))

    async def save_index_model(self) -> str:
        """The model the save-list index was built with ("" when it cannot be used)."""
        return _s(await self._client.hget(self.keys.meta, "save_index"))

    async def _mark_buckets(self) -> int:
        """Every bucket carries the incarnation (field ``|inc`` of its off hash; kept if present):
        the read script returns it and the write script refuses to write without it. Returns how
        many buckets carry another one: cw:meta was lost (``DEL``, eviction) while they survived,
        or another worker is clearing such a store (``rebuild.clear_lost_store``). Taking the new
        incarnation over them would apply the topic again onto their states (QA8 H2: every read
        raised ``StoreLost`` for good), so connect clears them first."""
        pipe = self._client.pipeline(transaction=False)
        for b in range(self.buckets):
            pipe.hsetnx(self.keys.offsets(b), "|inc", self.incarnation)
            pipe.hget(self.keys.offsets(b), "|inc")
        replies = await pipe.execute()
        return sum(_s(marker) != self.incarnation for marker in replies[1::2])

    async def check_and_stream_times(self, topic: str) -> dict[int, tuple[int, int]]:
        """The worker's once-a-second look, one round trip: raise ``StoreLost`` unless Redis still
        holds the incarnation this worker connected to, ``ModelReplaced`` if another model was
        recorded since, ``LayoutChanged`` if a worker found ``topic``'s partition count changed
        (busy cycles check the marker of every bucket they read or write); then return
        ``{partition: (last applied offset, max event ms)}`` written in this incarnation, what a
        worker folds into the topic's stream time (``TopicClock.observe_global``)."""
        return (await self.look(topic, {}))[0]

    async def look(self, topic: str, watched: Mapping[int, Sequence[str]]) -> tuple[dict[int, tuple[int, int]],
                                                                                    dict[int, tuple[list[str], list[str]]]]:
        """:meth:`check_and_stream_times`, and in the same round trip (one pipeline) one HMGET per
        bucket of ``watched`` (bucket -> offset fields): ``{bucket: (offsets, tokens)}`` found
        ("" none), what an idle worker compares with its last acknowledged writes (``WriteLedger``):
        without records no cycle reads a bucket, so a Redis that went back in time would go unseen."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(self.keys.meta, ["incarnation", "model", f"layout_changed:{topic}"])
        pipe.hgetall(self.keys.progress(topic))
        buckets = list(watched)
        for b in buckets:
            pipe.hmget(self.keys.offsets(b), [name for f in watched[b] for name in (f, f"{f}|token")])
        replies = await pipe.execute()
        found, model, layout = (_s(v) for v in replies[0])
        if found != self.incarnation:
            raise StoreLost(self.incarnation, found)
        if self.model and model != self.model:
            if self.model_obj is not None:
                successor = parse_record(await self._client.hget(self.keys.meta, RECORD_PREFIX + model))
                if successor is not None and successor_of(self.model_obj, self.model, successor):
                    raise ModelAdopted(model, successor)
            raise ModelReplaced(self.model, model)
        if layout:
            raise LayoutChanged(layout)
        offsets = {b: ([_s(v) for v in raw[::2]], [_s(v) for v in raw[1::2]]) for b, raw in zip(buckets, replies[2:])}
        return _parse_progress(replies[1], self.incarnation), offsets

    async def layout(self, topic: str, partitions_now: int) -> int:
        """The partition count ``topic``'s state is laid out for (recorded by the first worker:
        the count it found)."""
        field = f"partitions:{topic}"
        pipe = self._client.pipeline(transaction=False)
        pipe.hsetnx(self.keys.meta, field, partitions_now)
        pipe.hget(self.keys.meta, field)
        _, raw = await pipe.execute()
        return int(_s(raw))

    async def mark_layout_changed(self, topic: str, why: str) -> None:
        """Tell every worker to stop taking work: ``topic``'s partition count changed."""
        await self._client.hsetnx(self.keys.meta, f"layout_changed:{topic}", why)

    async def relayout(self, topic: str, partitions: int, partition_of: Callable[[str, int], int]) -> dict[str, int]:
        """Move the state of ``topic`` to ``partitions`` partitions (workers stopped): every due
        entry goes to the index of its user's new partition (``partition_of(user_id, count)``);
        user records, stats and rankings are per bucket and stay. Offsets and progress of the
        old partitions stay (their logs did not change); new partitions start at offset 0.
        Returns counts: ``moved`` due entries, ``old_partitions``, ``partitions``."""
        old = int(_s(await self._client.hget(self.keys.meta, f"partitions:{topic}")) or partitions)
        moved = 0
        for b in range(self.buckets):
            for p in range(old):
                key = self.keys.due(b, topic, p)
                entries = await self._client.zrange(key, 0, -1, withscores=True)
                pipe = self._client.pipeline(transaction=False)
                for member, score in entries:
                    _, user_id = parse_due_member(_s(member))
                    q = partition_of(user_id, partitions)
                    if q != p:
                        pipe.zadd(self.keys.due(b, topic, q), {member: score})
                        pipe.zrem(key, member)
                        moved += 1
                await pipe.execute()
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self.keys.meta, f"partitions:{topic}", partitions)
        pipe.hdel(self.keys.meta, f"layout_changed:{topic}")
        await pipe.execute()
        return {"moved": moved, "old_partitions": old, "partitions": partitions}

    async def _load_scripts(self) -> None:
        for name, source in self._sources.items():
            self._sha[name] = await self._client.script_load(source)

    async def _run(self, op: str, build: Callable[[Any], object]) -> list[Any]:
        """One pipelined round trip; on NOSCRIPT (Redis restarted) reload the scripts and repeat once."""
        if self.cluster:
            return await self._run_cluster(op, build)
        for attempt in (0, 1):
            pipe = self._client.pipeline(transaction=False)
            build(pipe)
            t0 = time.perf_counter()
            try:
                return await pipe.execute()
            except NoScriptError:
                if attempt:
                    raise
                logger.warning("Redis lost the churnwatch scripts (restarted?): loading them again")
                await self._load_scripts()
            finally:
                REDIS_SECONDS.labels(op).observe(time.perf_counter() - t0)
        raise AssertionError("unreachable")

    async def _run_cluster(self, op: str, build: Callable[[Any], object]) -> list[Any]:
        """As ``_run`` on a cluster: one pipeline per primary, in parallel (see the module docstring).

        NOSCRIPT comes from one node while the others may have applied their calls, so only the
        refused calls are sent again, after loading the scripts on every primary.
        """
        calls = _Calls()
        build(calls)
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (0, 1):
            pipe = self._client.pipeline(transaction=False)
            for i in todo:
                pipe.execute_command(*calls[i])
            t0 = time.perf_counter()
            try:
                replies = await pipe.execute(raise_on_error=False)
            finally:
                REDIS_SECONDS.labels(op).observe(time.perf_counter() - t0)
            refused: list[int] = []
            for i, reply in zip(todo, replies):
                if isinstance(reply, NoScriptError):
                    refused.append(i)
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    results[i] = reply
            if not refused:
                return results
            if attempt:
                raise NoScriptError(f"{len(refused)} script calls still refused after loading the scripts again")
            logger.warning("a Redis Cluster node lost the churnwatch scripts (restarted?): loading them again")
            await self._load_scripts()
            todo = refused
        raise AssertionError("unreachable")

    # -- the worker cycle ---------------------------------------------------------------------

    async def _run_buckets(self, op: str, name: str, calls: Sequence[_BucketCall],
                           extra: Callable[[Any], object] | None = None) -> tuple[list[Any], list[Any]]:
        """Run per-bucket script ``name`` for every bucket of ``calls`` in one round trip (several
        buckets per call on one Redis, one per call on a cluster); ``extra`` queues more commands
        after them in the same pipeline. Returns (one reply per bucket, the extra replies)."""
        sha = self._sha[name]
        grouped = _bucket_calls(calls, packed=not self.cluster, limit=WRITE_CALL_ITEMS if name == "write_batch" else None)

        # execute_command("EVALSHA", ...) is what pipe.evalsha sends, byte for byte; ClusterPipeline
        # blocks the evalsha name only (see the module docstring), so both paths spell it this way.
        def build(pipe: Any) -> None:  # a Pipeline, or _Calls on a cluster
            for keys, args in grouped:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            if extra is not None:
                extra(pipe)

        replies = await self._run(op, build)
        return [r for reply in replies[:len(grouped)] for r in reply], replies[len(grouped):]

    async def read(self, reads: Sequence[BucketRead]) -> list[BucketReadResult]:
        """Offsets, states and due users of every bucket the cycle touches: one round trip."""
        if not reads:
            return []
        keys, dumps, due_limit = self.keys, orjson.dumps, str(self.due_limit)
        calls = [_BucketCall([keys.offsets(r.bucket)],
                             [keys.tag(r.bucket), due_limit, dumps([x for fld, due in r.parts for x in (fld, "" if due is None else due)]),
                              dumps([x for pair in r.users for x in pair]), *((dumps(r.skip),) if r.skip else ())],
                             len(r.users) + 1)
                 for r in reads]
        replies, _ = await self._run_buckets("read", "read_batch", calls)
        out: list[BucketReadResult] = []
        for raw in replies:
            offsets_raw, blobs, dues_raw, nexts_raw, marker, tokens, erased = raw
            if _s(marker) != self.incarnation:
                raise StoreLost(self.incarnation, _s(marker))
            dues: list[list[DueUser]] = []
            for flat in dues_raw:
                part: list[DueUser] = []
                for j in range(0, len(flat), 3):
                    group, uid = parse_due_member(flat[j].decode())
                    part.append(DueUser(group, uid, int(float(flat[j + 1])), flat[j + 2]))
                dues.append(part)
            nexts = [None if n is None else int(float(n)) for n in nexts_raw]
            out.append(BucketReadResult([_s(o) for o in offsets_raw], list(blobs), dues, nexts, _s(marker),
                                        [_s(t) for t in tokens], [int(i) - 1 for i in erased] if erased else []))
        return out

    async def write(self, writes: Sequence[BucketWrite], token: str, progress: ProgressWrite | None = None) -> list[Fenced]:
        """Apply every bucket's results, each atomically and fenced; returns the refused buckets.

        ``token`` names this cycle: a retry after a lost reply is recognised and not applied twice.
        ``progress``: the cycle's progress, written in the same round trip after the states, only
        if every bucket write applied (``lua/progress.lua``'s guard); ``progress.applied`` then
        holds the topic's whole progress, else stays None and the caller writes it on its own
        (``write_progress``). Not on a cluster: the progress key is not in the buckets' slots.
        """
        if not writes:
            return []
        keys = self.keys
        calls = self._write_calls(writes, token)
        hist_sha = self._sha.get("history")  # console score history (only used when a write carries points)
        guarded = progress is not None and progress.progress and not self.cluster and all(w.parts for w in writes)

        def after(pipe: Any) -> None:  # applied only if the bucket's write was (token)
            for w in writes:  # history points
                if w.history and w.parts:
                    points = [x for g, uid, point in w.history for x in (g, uid, point)]
                    pipe.execute_command("EVALSHA", hist_sha, 1, keys.offsets(w.bucket), keys.tag(w.bucket), token,
                                         w.parts[0][0], HISTORY_WEEKS, *points)
            if guarded:
                assert progress is not None
                pipe.execute_command("EVALSHA", self._sha["progress"], 1 + len(writes), keys.progress(progress.topic),
                                     *(keys.offsets(w.bucket) for w in writes), *self._progress_args(progress),
                                     token, *(w.parts[0][0] for w in writes))

        replies, extra = await self._run_buckets("write", "write_batch", calls, after)
        fenced: list[Fenced] = []
        for w, reply in zip(writes, replies):
            if int(reply[0]) == 3:
                raise StoreLost(self.incarnation, _s(reply[1]))
            if int(reply[0]) == 0:
                fenced.append(Fenced(w.bucket, _s(reply[1]), _s(reply[2])))
        if guarded and extra[-1] and not fenced:
            assert progress is not None
            raw = _progress_reply(extra[-1], progress.topic)
            progress.applied = _parse_progress(dict(zip(raw[::2], raw[1::2])), self.incarnation)
        return fenced

    def _write_calls(self, writes: Sequence[BucketWrite], token: str) -> list[_BucketCall]:
        """Each bucket write's keys and arguments for ``write_batch`` (the packing ``write`` sends)."""
        keys, dumps, inc = self.keys, orjson.dumps, self.incarnation
        alert_log = self.settings.alert_log
        calls = []
        for w in writes:
            b = w.bucket
            # 6 fields a user flat, and its record apart (compiled: one pass over the states, reach_score's formula)
            flat, records = state_args(w.states if type(w.states) is list else list(w.states), UNCHANGED)
            stats = [(k, float(v), "f") if k.startswith("churned_rev:") else (k, int(v), "i") for k, v in w.stats.items() if v]
            alerts = w.alerts if alert_log else []  # console alert lists, in the same atomic write as the states
            args = [keys.tag(b), token, inc, _parts_json(w), dumps(flat), dumps(stats) if stats else "",
                    dumps([ALERT_LOG_CAP, *[(g, uid, aid) for g, uid, aid, _ in alerts]]) if alerts else "",
                    dumps([x for u in w.unreadable for x in u]) if w.unreadable else ""]
            args += records
            if alerts:
                args += [e for _, _, _, e in alerts]
            calls.append(_BucketCall([keys.offsets(b), keys.stats(b), keys.risk(b)], args, len(w.states) + len(alerts) + 1))
        return calls

    async def read_accounts(self, reads: Sequence[Any]) -> list[Any]:
        """Account offsets, states, extras and members of every account bucket the cycle touches:
        one round trip. ``reads`` are ``streams.worker.revenue.AccountRead``."""
        from streams.worker.revenue import AccountReadResult

        if not reads:
            return []
        keys = self.keys
        calls = [_BucketCall([keys.offsets(r.bucket), keys.accounts(r.bucket), keys.account_extras(r.bucket),
                              keys.account_side(r.bucket)],
                             [keys.tag(r.bucket), len(r.fields), *r.fields, *r.accounts], len(r.accounts) + 1)
                 for r in reads]
        replies, _ = await self._run_buckets("read_accounts", "read_accounts", calls)
        out = []
        for offsets, blobs, extras, members, tokens, sides, held in replies:
            out.append(AccountReadResult([_s(o) for o in offsets], [b or None for b in blobs], [e or None for e in extras],
                                         [dict(zip(m[::2], m[1::2])) for m in members], [_s(t) for t in tokens],
                                         [b or None for b in sides], [h or None for h in held]))
        return out

    async def write_accounts(self, writes: Sequence[Any], token: str) -> list[Fenced]:
        """Every account bucket's states, members, extras and period counters, each atomically and
        fenced (``streams.worker.revenue.AccountWrite``); returns the refused buckets."""
        from streams.worker.revenue import COUNTER_SETS

        if not writes:
            return []
        keys, dumps = self.keys, orjson.dumps
        calls = []
        for w in writes:
            b = w.bucket
            counters = [(4 + i, fld, delta) for i, name in enumerate(COUNTER_SETS)
                        for fld, delta in w.counters.get(name, {}).items()]
            accounts, blobs = [], []
            for account in {**w.states, **w.extras, **w.members, **w.held}:
                members = w.members.get(account, {})
                state, side, held = w.states.get(account), w.sides.get(account), w.held.get(account)
                extras = w.extras.get(account, b"")
                accounts.append((account, 0 if state is None else 1, extras.decode(), len(members), 0 if side is None else 1,
                                 0 if held is None else 1 if held else 2, self._member_users(w.member_ids.get(account, ()))))
                blobs += [b for b in (state, side, held) if b]
                for k, v in members.items():
                    blobs += (k, v)
            calls.append(_BucketCall([keys.offsets(b), keys.accounts(b), keys.account_extras(b),
                                      *(keys.revenue(b, name) for name in COUNTER_SETS), keys.account_side(b)],
                                     [keys.tag(b), token, _parts_json(w), dumps(counters), dumps(accounts), *blobs],
                                     len(accounts) + 1))
        replies, _ = await self._run_buckets("write_accounts", "write_accounts", calls)
        return [Fenced(w.bucket, _s(r[1]), _s(r[2])) for w, r in zip(writes, replies) if int(r[0]) == 0]

    def _member_users(self, user_ids: Iterable[str]) -> list[int | str]:
        """``[group, user id, ...]`` for ``Keys.member_of`` of the user ids the member records written
        keep (``AccountWrite.member_ids``: a member whose id is too long to keep has none, so is not
        indexed). The ids come with the write from where the records were made: each record was
        decoded back here for its id before (review 2026-12-03). The group is the store's layout's
        (``group_of``), which the account side does not know."""
        out: list[int | str] = []
        for uid in user_ids:
            out += (group_of(uid, self.buckets, self.groups), uid)
        return out

    async def due_accounts(self, topic: str, until_s: dict[int, int], limit: int) -> dict[int, tuple[list[tuple[str, int]], int | None]]:
        """Per partition p: the accounts due at or before ``until_s[p]`` (at most ``limit``, earliest
        first) and the next due second after them (None: nothing more). One round trip."""
        pipe = self._client.pipeline(transaction=False)
        for p, bound in until_s.items():
            key = self.keys.account_due(topic, p)
            pipe.zrangebyscore(key, "-inf", bound, start=0, num=limit, withscores=True)
            pipe.zrangebyscore(key, f"({bound}", "+inf", start=0, num=1, withscores=True)
        replies = await pipe.execute()
        out = {}
        for i, p in enumerate(until_s):
            due, nxt = replies[2 * i], replies[2 * i + 1]
            out[p] = ([(_s(a), int(s)) for a, s in due], int(nxt[0][1]) if nxt else None)
        return out

    async def account_dues_of(self, topic: str, partitions: Sequence[int], accounts: Sequence[str]) -> dict[str, int]:
        """account -> its next review second in the review index of its partition (``Keys.account_due``),
        for those of ``accounts`` that have one: the readers tell from it an account side behind the
        stream (``streams.views.account_time_ms``). One round trip, one ZMSCORE a partition."""
        if not accounts or not partitions:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for p in partitions:
            pipe.execute_command("ZMSCORE", self.keys.account_due(topic, p), *accounts)
        out: dict[str, int] = {}
        for scores in await pipe.execute():
            for a, score in zip(accounts, scores):
                if score is not None:
                    out[a] = int(float(score))
        return out

    async def earliest_account_due_of(self, topic: str, partitions: Sequence[int]) -> int | None:
        """The earliest next review second over the review indexes of ``partitions`` (None: no
        account has one): the readers tell from it an account side behind the stream as a whole
        (``streams.views.account_side_behind_ms``). One round trip, one ZRANGE a partition."""
        if not partitions:
            return None
        pipe = self._client.pipeline(transaction=False)
        for p in partitions:
            pipe.zrange(self.keys.account_due(topic, p), 0, 0, withscores=True)
        firsts = [int(float(rows[0][1])) for rows in await pipe.execute() if rows]
        return min(firsts) if firsts else None

    async def earliest_account_due(self, topic: str) -> int | None:
        """:meth:`earliest_account_due_of` over the partitions the topic's progress names (the
        console's read; ``StoreReader.earliest_account_due`` the CLI's)."""
        return await self.earliest_account_due_of(topic, sorted(await self.read_progress(topic)))

    async def write_account_dues(self, topic: str, dues: Mapping[int, Mapping[str, int]]) -> None:
        """The accounts' next reviews (0 removes the entry). Idempotent: a replay writes the same."""
        pipe = self._client.pipeline(transaction=False)
        for p, accounts in dues.items():
            key = self.keys.account_due(topic, p)
            later = {a: s for a, s in accounts.items() if s}
            if later:
                pipe.zadd(key, later)
            gone = [a for a, s in accounts.items() if not s]
            if gone:
                pipe.zrem(key, *gone)
        await pipe.execute()

    async def write_progress(
        self, topic: str, progress: Mapping[int, tuple[int, int]], fingerprints: Mapping[int, str] | None = None,
        floors: Mapping[int, int] | None = None, guard: tuple[str, Sequence[BucketWrite]] | None = None,
    ) -> dict[int, tuple[int, int]] | None:
        """Record ``{partition: (last offset, max event ms)}`` (and the checksum of each last
        record); returns the topic's whole progress of this incarnation. ``floors``: see
        ``ProgressWrite.floors`` (raises ``StoreRolledBack``). ``guard``: a cycle's token and bucket
        writes: written only if each bucket's offsets hash still holds that token, else None (as
        ``write``'s folded progress; not on a cluster, where the keys are in other slots)."""
        args = self._progress_args(ProgressWrite(topic, progress, fingerprints or {}, floors=floors or {}))
        keys = [self.keys.progress(topic)]
        if guard is not None and not self.cluster and guard[1] and all(w.parts for w in guard[1]):
            token, writes = guard
            keys += [self.keys.offsets(w.bucket) for w in writes]
            args += [token, *(w.parts[0][0] for w in writes)]
        (raw,) = await self._run("progress", lambda pipe: pipe.execute_command("EVALSHA", self._sha["progress"], len(keys), *keys, *args))
        if raw is None:
            return None
        raw = _progress_reply(raw, topic)
        return _parse_progress(dict(zip(raw[::2], raw[1::2])), self.incarnation)

    def _progress_args(self, pw: ProgressWrite) -> list[object]:
        """``lua/progress.lua``'s ARGV before its guard: n, then (p, offset, max ms, fingerprint,
        incarnation, floor or "")."""
        args: list[object] = [len(pw.progress)]
        floors = pw.floors
        for p, (offset, max_ms) in pw.progress.items():
            floor = floors.get(p)
            args += (p, offset, max_ms, pw.fingerprints.get(p, ""), self.incarnation, "" if floor is None else floor)
        return args

    async def read_progress(self, topic: str) -> dict[int, tuple[int, int]]:
        """``{partition: (last applied offset, max event ms)}`` (reports read any incarnation)."""
        return {p: (r.offset, r.max_ms) for p, r in (await self.read_resume(topic, any_incarnation=True)).items()}

    async def read_resume(self, topic: str, *, any_incarnation: bool = False) -> dict[int, Resume]:
        """Where each partition resumes. Values written in another incarnation of the store (by a
        worker that had not noticed that Redis lost its data) are left out: they describe data
        that is gone."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self.keys.progress(topic))
        pipe.hgetall(self.keys.reroute(topic))
        raw, rerouted = await pipe.execute()
        origins = {int(_s(k)): {int(q): o for q, o in orjson.loads(v).items()} for k, v in rerouted.items()}
        out: dict[int, Resume] = {}
        for k, v in raw.items():
            offset, max_ms, fp, inc = (_s(v).split(":") + ["", ""])[:4]
            if any_incarnation or inc == self.incarnation or (not inc and not fp):
                p = int(_s(k))
                out[p] = Resume(int(offset), int(max_ms or 0), fp, origins.get(p, {}))
        return out

    async def write_align_heads(self, topic: str, heads: Mapping[int, int]) -> None:
        """Where this worker's partitions hold other workers' aligned reading (``keys.align_heads``)."""
        if heads:
            await self._client.hset(self.keys.align_heads(topic), mapping={str(p): str(t) for p, t in heads.items()})

    async def read_align_heads(self, topic: str) -> dict[int, int]:
        """``write_align_heads``'s values, every partition's (those of another incarnation's store
        are gone with it; a stale one of a partition that changed owner stops moving, and ages out:
        streams/worker/aligned.py)."""
        raw = await self._client.hgetall(self.keys.align_heads(topic))
        return {int(_s(k)): int(_s(v)) for k, v in raw.items()}

    async def write_origins(self, topic: str, origins: Mapping[int, Mapping[int, int]]) -> None:
        """Per partition, the highest origin offset of the re-routed copies applied there
        (streams.worker.routing); written after the states and before the progress."""
        await self._client.hset(self.keys.reroute(topic), mapping={str(p): orjson.dumps({str(q): o for q, o in m.items()})
                                                                  for p, m in origins.items()})

    async def restart_partition(self, topic: str, partition: int, max_ms: int) -> int:
        """Forget how far ``partition`` was applied, keeping its event time and every user's
        state: its log was replaced (a topic deleted and created again, storage lost, a move to
        a new cluster), so its offsets start again at 0. Per bucket first, then the progress, so
        a crash in between is detected again at the next assignment. The accounts' offsets of the
        partition go too (``revenue.account_field``): kept, every account copy of the new log up
        to the old offset was skipped as one applied before.

        Returns the partition's restart count (``restarts``), raised before anything is deleted and
        again once the progress is written, so that a worker that still took the partition for
        its own and finds its offsets or progress gone, having read the count before either step,
        can tell this restart from a Redis that went back in time (``StreamConsumer._rewind_store``;
        a resume that read the count between the steps, and the progress before the second,
        finds the count raised since)."""
        field, accounts = offset_field(topic, partition), account_field(topic, partition)
        restarts = _restarts_field(topic, partition)
        await self._client.hincrby(self.keys.meta, restarts, 1)
        pipe = self._client.pipeline(transaction=False)
        for b in range(self.buckets):
            pipe.hdel(self.keys.offsets(b), field, field + "|token", accounts, accounts + "|token")
        pipe.hdel(self.keys.reroute(topic), str(partition))
        await pipe.execute()
        await self._client.hset(self.keys.progress(topic), str(partition), f"-1:{max_ms}::{self.incarnation}")
        return int(await self._client.hincrby(self.keys.meta, restarts, 1))

    async def restarts(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """The restart count of each of ``partitions`` (``restart_partition``, by any worker, raises
        it twice; 0: never restarted). Only ever rises: Redis going back in time can lower it,
        never raise it."""
        if not partitions:
            return {}
        raw = await self._client.hmget(self.keys.meta, [_restarts_field(topic, p) for p in partitions])
        return {p: int(_s(v)) if v is not None else 0 for p, v in zip(partitions, raw)}

    # -- read API for reports and the CLI ----------------------------------------------------

    async def load_user(self, user_id: str) -> UserState | None:
        """One user's state (None: not tracked); :class:`UnreadableState` when its record cannot be read."""
        b, g = locate(user_id, self.buckets, self.groups)
        raw = await self._client.hget(self.keys.users(b, g), user_id)
        return None if raw is None else read_state(raw)  # UnreadableState: says what is there

    async def top_at_risk(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` users with an open at-risk alert and the highest index score
        (models.ranking.index_score: the lapsed, warmest first, then the savable risk), highest first."""
        if n <= 0:
            return []
        pipe = self._client.pipeline(transaction=False)
        for b in range(self.buckets):
            pipe.zrevrange(self.keys.risk(b), 0, n - 1, withscores=True)
        merged = [(_s(m), float(s)) for part in await pipe.execute() for m, s in part]
        merged.sort(key=lambda x: (-x[1], x[0]))
        return merged[:n]

    async def user_states(self) -> dict[str, UserState]:
        """Every tracked user's state (the daily ranked lists read them all): one pipelined
        HGETALL per user hash, a bucket at a time."""
        out: dict[str, UserState] = {}
        for b in range(self.buckets):
            pipe = self._client.pipeline(transaction=False)
            for g in range(self.groups):
                pipe.hgetall(self.keys.users(b, g))
            for part in await pipe.execute():
                for user, st in zip(part, _readable(part.values())):
                    if st is not None:
                        out[_s(user)] = st
        return out

    async def due_users(self, topic: str, partitions: Iterable[int], until_s: int) -> list[tuple[int, int, str]]:
        """``(bucket, group, user)`` of every user whose review is due at or before ``until_s``."""
        pipe = self._client.pipeline(transaction=False)
        asked = [(b, p) for b in range(self.buckets) for p in partitions]
        for b, p in asked:
            pipe.zrangebyscore(self.keys.due(b, topic, p), "-inf", until_s)
        out = []
        for (b, _), members in zip(asked, await pipe.execute()):
            for m in members:
                g, user = parse_due_member(_s(m))
                out.append((b, g, user))
        return out

    async def load_users(self, where: Sequence[tuple[int, int, str]]) -> list[UserState | None]:
        """The states of ``(bucket, group, user)``s, in order (None: not stored)."""
        pipe = self._client.pipeline(transaction=False)
        for b, g, user in where:
            pipe.hget(self.keys.users(b, g), user)
        return _readable(await pipe.execute()) if where else []

    async def reach_ranks(self, asked: Sequence[tuple[int, int, int, int]]) -> list[list[tuple[str, int]]]:
        """Save-list index entries ``(user, score)`` of ``(bucket, group, start, stop)``, highest
        first (ranks start..stop inclusive, as ZREVRANGE): one ``lua/reach_ranks.lua`` call per bucket."""
        by_bucket: dict[int, list[int]] = {}
        for i, (b, _, _, _) in enumerate(asked):
            by_bucket.setdefault(b, []).append(i)
        source = self._reach_source
        pipe = self._client.pipeline(transaction=False)
        for b, idx in by_bucket.items():
            triples = " ".join(f"{g} {start} {stop}" for _, g, start, stop in (asked[i] for i in idx))
            pipe.execute_command("EVAL", source, 1, self.keys.stats(b), self.keys.tag(b), triples)
        out: list[list[tuple[str, int]]] = [[] for _ in asked]
        for idx, parts in zip(by_bucket.values(), await pipe.execute() if asked else []):
            for i, flat in zip(idx, parts):
                out[i] = [(_s(flat[j]), int(flat[j + 1])) for j in range(0, len(flat), 2)]
        return out

    async def stats(self) -> dict[str, float]:
        """Business counters summed over all buckets (``users``, ``stage:*``, ``at_risk``, per-day)."""
        return {_s(k): v for k, v in (await self._summed(self.keys.stats, float)).items()}

    async def _summed(self, key_of: Callable[[int], str], number: Callable[[bytes], N]) -> dict[bytes, N]:
        """Field -> value of the hash ``key_of(bucket)`` summed over every bucket, one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for b in range(self.buckets):
            pipe.hgetall(key_of(b))
        total: dict[bytes, N] = {}
        for part in await pipe.execute():
            for k, v in part.items():
                total[k] = total[k] + number(v) if k in total else number(v)
        return total

    async def users_tracked(self) -> int:
        return int((await self.stats()).get("users", 0))

    async def revenue_totals(self, period: str) -> dict[int, dict[str, int]]:
        """The period counters of all accounts (``models.revenue_ledger.Ledger.totals``), summed
        over the buckets: period start ms -> counter -> value."""
        from streams.worker.revenue import parse_counter_field

        totals: dict[int, dict[str, int]] = {}
        for k, v in (await self._summed(lambda b: self.keys.revenue(b, period), int)).items():
            start, name = parse_counter_field(k)
            t = totals.setdefault(start, {})
            t[name] = t.get(name, 0) + v
        return totals

    async def cohort_counters(self) -> dict[str, int]:
        """The signup-month cohort counters of all accounts (``models.revenue_ledger.Cohorts.counters``),
        summed over the buckets."""
        return {_s(k): v for k, v in (await self._summed(lambda b: self.keys.revenue(b, "cohort"), int)).items()}

    async def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
        """What Redis keeps of an account: its revenue state record (``AccountState.from_bytes``),
        its extras (JSON) and its members (``Member.from_bytes`` by member key)."""
        b = bucket_of(account_id, self.buckets)
        pipe = self._client.pipeline(transaction=False)
        pipe.hget(self.keys.accounts(b), account_id)
        pipe.hget(self.keys.account_extras(b), account_id)
        pipe.hgetall(self.keys.members(b, account_id))
        state, extras, members = await pipe.execute()
        return state, extras, members

    async def account_states(self, account_ids: Sequence[str]) -> list[bytes | None]:
        """The revenue state records (``AccountState.to_bytes``) of ``account_ids``, None where
        there is none: one round trip (the win-back list's lost MRR of users who are their own
        account, streams.views.top_users)."""
        if not account_ids:
            return []
        pipe = self._client.pipeline(transaction=False)
        for account_id in account_ids:
            pipe.hget(self.keys.accounts(bucket_of(account_id, self.buckets)), account_id)
        return list(await pipe.execute())

    async def account_of(self, user_id: str) -> str | None:
        """The account whose members the user is in (its events name it as ``account_id``), or None:
        its field of ``Keys.member_of`` in every bucket, one round trip. A user who moved to another
        account is in both accounts' buckets: the account of its latest member record wins, read in a
        second round trip (only then). Written with the member records (at the user's first active
        hour after the account side applied it); users whose id is too long for a member record
        (``models.account_health.Member``) are not found."""
        from models.account_health import Member, member_key

        g = group_of(user_id, self.buckets, self.groups)
        pipe = self._client.pipeline(transaction=False)
        for b in range(self.buckets):
            pipe.hget(self.keys.member_of(b, g), user_id)
        found = sorted({_s(a) for a in await pipe.execute() if a is not None})
        if len(found) <= 1:
            return found[0] if found else None
        pipe = self._client.pipeline(transaction=False)
        for account in found:
            pipe.hget(self.keys.members(bucket_of(account, self.buckets), account), str(member_key(user_id)))
        seen = [(Member.from_bytes(r).last_seen_s if r is not None else -1, a) for a, r in zip(found, await pipe.execute())]
        return max(seen)[1]


def _readable(raws: Iterable[bytes | None]) -> list[UserState | None]:
    """The states of records, None where there is none or it cannot be read: readers of many
    states leave such a record out (one WARNING a call, no user id) instead of failing on it; the
    worker drops or restarts the user when it meets it (streams.worker.phases)."""
    out: list[UserState | None] = []
    bad, why = 0, ""
    for raw in raws:
        st = None
        if raw is not None:
            try:
                st = UserState.from_bytes(raw)
            except ValueError as exc:
                bad, why = bad + 1, str(exc)
        out.append(st)
    if bad:
        logger.warning("%s unreadable state record(s) left out of a read (last: %s)", bad, why)
    return out


def _restarts_field(topic: str, partition: int) -> str:
    """Field of cw:meta: the restart count of ``topic``'s ``partition`` (``Store.restart_partition``)."""
    return f"restarts:{topic}:{partition}"


def _progress_reply(raw: list[Any], topic: str) -> list[Any]:
    """``lua/progress.lua``'s reply (a flat HGETALL), or ``StoreRolledBack`` raised where it found a
    partition's progress below the writer's floor: ``{0, partition, value found}``."""
    if raw and isinstance(raw[0], int):
        _, partition, found = raw
        offset = _s(found).split(":")[0] or "none"
        raise StoreRolledBack(f"the progress of {topic}[{_s(partition)}]", f"offset {offset}", "a later one", int(_s(partition)))
    return raw


def _parse_progress(raw: Mapping[bytes | str, bytes | str], incarnation: str) -> dict[int, tuple[int, int]]:
    """``{partition: (offset, max_ms)}`` of the values written in ``incarnation``."""
    out: dict[int, tuple[int, int]] = {}
    for k, v in raw.items():
        offset, max_ms, _, inc = (_s(v).split(":") + ["", ""])[:4]
        if inc == incarnation:
            out[int(_s(k))] = (int(offset), int(max_ms or 0))
    return out


class StoreReader:
    """The read API for synchronous callers (CLI reports): the same queries, run on a private loop.

    >>> # reader = StoreReader(Settings.from_env()); reader.top_at_risk(10); reader.close()
    """

    def __init__(self, settings: Settings) -> None:
        self._loop = asyncio.new_event_loop()
        self._store = Store(settings)

    def _do(self, coro):  # type: ignore[no-untyped-def]
        return self._loop.run_until_complete(coro)

    def load_user(self, user_id: str) -> UserState | None:
        return self._do(self._store.load_user(user_id))

    def top_at_risk(self, n: int) -> list[tuple[str, float]]:
        return self._do(self._store.top_at_risk(n))

    def stats(self) -> dict[str, float]:
        return self._do(self._store.stats())

    def user_states(self) -> dict[str, UserState]:
        return self._do(self._store.user_states())

    def users_tracked(self) -> int:
        return self._do(self._store.users_tracked())

    def progress(self, topic: str) -> dict[int, tuple[int, int]]:
        return self._do(self._store.read_progress(topic))

    def run(self, query: Callable[[Store], Any]) -> Any:
        """Run an async read query ``query(store)`` (e.g. the console's pages) on this reader's loop."""
        return self._do(query(self._store))

    def revenue_totals(self, period: str) -> dict[int, dict[str, int]]:
        return self._do(self._store.revenue_totals(period))

    def cohort_counters(self) -> dict[str, int]:
        return self._do(self._store.cohort_counters())

    def load_account(self, account_id: str) -> tuple[bytes | None, bytes | None, dict[bytes, bytes]]:
        return self._do(self._store.load_account(account_id))

    def account_dues(self, topic: str, accounts: Sequence[str]) -> dict[str, int]:
        """``Store.account_dues_of`` over the partitions the topic's progress names."""
        return self._do(self._store.account_dues_of(topic, sorted(self.progress(topic)), accounts))

    def earliest_account_due(self, topic: str) -> int | None:
        return self._do(self._store.earliest_account_due(topic))

    def account_of(self, user_id: str) -> str | None:
        return self._do(self._store.account_of(user_id))

    def account_states(self, account_ids: Sequence[str]) -> list[bytes | None]:
        return self._do(self._store.account_states(account_ids))

    def close(self) -> None:
        self._do(self._store.close())
        self._loop.close()

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

