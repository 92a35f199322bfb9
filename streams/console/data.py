"""What the console shows, read from Redis through the worker's store: ranked pages, users, churn.

Everything is read live from the state the workers keep (no second database) and scored with the
same ``models.scoring.score`` at the *stream time* (the largest event time applied, Redis
progress), like ``churnwatch score`` and ``churnwatch top``.

Ranked lists come from the at-risk index (``cw:{b}:risk``, one sorted set per bucket of the users
with an open at-risk alert, scored at the user's last review by ``models.ranking.index_score``),
never from a scan. Lapsed users (dormant, churned) score 1 + their temperature / 100, the others
the savable part of their risk (below 1), so per bucket the lapsed occupy the top ranks: the
*win back* list is those, the *save* list the reachable users (stage new, active, declining or
reactivated) of the ranks below them. Both orders move while a user is silent (the temperature
falls, the savable risk rises and later falls), so the rows are ranked by their *live* key
(``models.ranking.save_score``, ``win_back_key``: the order of ``churnwatch top``) within blocks
of the index: a block is the next ``block_size_for(limit)`` entries in index order (runs of every
bucket fetched by rank, O(log n) to reach any rank, and merged), scored live and sorted; a page
walks through a block and on into the next. A win-back block grows (:func:`_settled`) until no
entry after it can outrank the rows the page shows, so the win-back order is total and the same at
any page size (QA19 F10). ``churnwatch top -n`` (``--win-back``) is the first page of the list. The cursor is the rank where the block starts in every bucket plus the rows of
the block already shown, so page 1,000 costs what page 1 costs. A row whose live stage no longer
fits the list (the worker has not reviewed it yet) or that a filter excludes is skipped. The
index moves while someone pages: a user whose rank changes between two pages can be shown twice
or skipped, as in any live list.

Owners (account managers) are those of the accounts table; an owner's book is their accounts
ranked as ``churnwatch top --owner`` ranks them (``streams.views.account_book``, run on a thread
with the synchronous store reader, so the page, the API and the CLI share one implementation).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import hashlib
import logging
import time
import zlib
from importlib import resources
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import orjson
from redis.exceptions import NoScriptError

from models.lifecycle import JUDGED, LAPSED
from models.model import ChurnModel
from models.ranking import save_rank, save_score, win_back_score
from models.scoring import Assessment, Scores, assess, score, scores_from
from models.state import STAGES, UserState, never_paid_trial
from streams.settings import Settings
from streams.worker.history import HistoryPoint, complete_points, decode_points, week_of, week_start_s
from streams.worker.store import Store, churn_summary, read_state, utc_day

__all__ = [
    "ListName",
    "LISTS",
    "BadRequest",
    "NotFound",
    "Owners",
    "Filters",
    "Row",
    "Page",
    "UserView",
    "stream_time_ms",
    "at_risk_page",
    "block_size_for",
    "user_view",
    "churn_view",
    "revenue_view",
    "counters",
    "AtRiskSplit",
    "at_risk_split",
    "owner_book",
    "owner_segments",
    "BookPage",
    "account_view",
    "account_dict",
    "point_dict",
    "trend_with_now",
]

ListName = Literal["save", "win_back"]
LISTS: tuple[ListName, ...] = ("save", "win_back")
logger = logging.getLogger(__name__)

_LAPSED = 1.0  # index scores of lapsed users start here (models.ranking.index_score), the others are below
_CURSOR_VERSION = 1


class BadRequest(ValueError):
    """A query parameter the console cannot use (the message names it): HTTP 400."""


def ident_of(request: Any, name: str) -> str:
    """The user or account id a page or API call names: in the path (``/users/<id>``), or, for the
    ids a client would cut out of a path (``.``, ``..``: dot segments, pages._href, QA4 #8), in
    the ``id`` query parameter (``/users?id=..``)."""
    ident = request.path_params.get(name)
    if ident is None:
        ident = request.query_params.get("id")
        if not ident:  # the route's own path: /accounts?id= named /users/ (QA6 L5)
            path = request.url.path.rstrip("/")
            raise BadRequest(f"id is missing: give it in the path ({path}/<id>) or as ?id=")
    return str(ident)


class NotFound(LookupError):
    """No such user, owner or account: HTTP 404."""


class Owners:
    """Account owners from the accounts table (``streams.worker.accounts.read_accounts``); ``all``
    is every user.

    A read opens a Kafka consumer (tens to thousands of ms), so no request waits for one but the
    first: once the table is older than ``ttl_s`` it is read again in the background and the old
    one served meanwhile. A failed read is logged and tried again after ``ttl_s``; until one
    succeeds there is no owner but ``all``, whose pages need no table (the at-risk list of every
    user never touches Kafka).
    """

    ALL = "all"

    def __init__(self, settings: Settings | None = None, ttl_s: float = 30.0) -> None:
        self._settings, self._ttl_s = settings, ttl_s
        self._table: dict[str, dict[str, Any]] = {}
        self._read_at = -float("inf")
        self._refresh: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        from streams.worker.accounts import read_accounts

        self._read_at = time.monotonic()  # also after a failure: the next try waits ttl_s
        self._table = await asyncio.to_thread(read_accounts, self._settings)  # type: ignore[arg-type]

    async def _refresh_quietly(self) -> None:
        try:
            await self._read()
        except Exception as exc:  # noqa: BLE001  (a refresh must not kill the console; the old table stays)
            logger.warning("could not refresh the accounts table, keeping the one read before: %s", exc)

    async def table(self) -> dict[str, dict[str, Any]]:
        """The accounts table, account id -> facts (name, owner, segment, renewal_date)."""
        if self._settings is None or time.monotonic() - self._read_at <= self._ttl_s:
            return self._table
        if self._read_at == -float("inf"):  # the first read: there is nothing to serve meanwhile
            await self._refresh_quietly()
        elif self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._refresh_quietly())
        return self._table

    async def names(self) -> list[str]:
        return [self.ALL, *sorted({f.get("owner") or "" for f in (await self.table()).values()} - {""})]

    async def check(self, owner: str | None) -> str:
        owner = owner or self.ALL
        if owner != self.ALL and owner not in await self.names():
            raise NotFound(f"owner {owner[:60]!r} has no account in the accounts table")
        return owner


@dataclass(frozen=True, slots=True)
class Filters:
    stage: str | None = None
    segment: str | None = None
    action: str | None = None

    def accepts(self, s: Scores) -> bool:
        return ((self.stage is None or s.stage == self.stage) and (self.segment is None or s.segment == self.segment)
                and (self.action is None or s.action == self.action))


@dataclass(frozen=True, slots=True)
class Row:
    user_id: str
    scores: Scores
    state: UserState
    history: list[HistoryPoint]
    savable: float = 0.0  # the save list's key (models.ranking.save_score)

    def to_dict(self) -> dict[str, Any]:
        s = self.scores
        return {
            "user_id": self.user_id,
            "risk": round(s.risk, 4),
            "savable": round(self.savable, 4),
            "health": round(s.health, 1),
            "temperature": round(s.temperature, 1),
            "stage": s.stage,
            "segment": s.segment,
            "action": s.action,
            "reason": s.reasons[0] if s.reasons else None,
            **({"never_paid_trial": True} if self.never_paid_trial else {}),
            "trend": [point_dict(p) for p in self.history],
        }

    @property
    def never_paid_trial(self) -> bool:
        """Whether the user's subscription is a trial that never paid (models.state.never_paid_trial): marked
        on the lists, a lead rather than a customer (QA23a F2: 651 of a fitness app's 795 lapsed
        users were such trials, unmarked among its lapsed payers)."""
        return never_paid_trial(self.state.flags)


def point_dict(p: HistoryPoint) -> dict[str, Any]:
    """A completed week's point: the scores at ``week_end`` (Monday 00:00 UTC after the week), not at its start."""
    return {"week_start": _week_day(p.week), "week_end": _week_day(p.week + 1), "health": p.health, "temperature": p.temperature,
            "risk": round(p.risk, 3)}


@functools.lru_cache(maxsize=1024)
def _week_day(week: int) -> str:
    from streams.timefmt import format_ts

    return format_ts(week_start_s(week) * 1000)[:10]


@dataclass(slots=True)
class Page:
    list: ListName
    owner: str
    as_of_ms: int
    rows: list[Row]
    next_cursor: str | None


@dataclass(slots=True)
class UserView:
    user_id: str
    as_of_ms: int
    scores: Scores
    state: UserState
    history: list[HistoryPoint] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # the last alerts worth a call, newest first
    account_id: str = ""  # the account the user is a member of (Store.account_of), "" when none

    def report(self, accounts: Mapping[str, dict[str, Any]]) -> Any:
        """The numbers of ``churnwatch score --json`` (``streams.views.UserReport``), with the account's
        name and owner from the accounts table ``accounts`` (``Owners.table``)."""
        from streams.views import UserReport

        return UserReport(self.user_id, self.as_of_ms, self.scores, self.state, account_id=self.account_id,
                          account_facts=accounts.get(self.account_id) if self.account_id else None)


async def stream_time_ms(store: Store, settings: Settings) -> int:
    """Largest event time applied on any partition of the events topic; 0 before any worker wrote."""
    progress = await store.read_progress(settings.topic_events)
    return max((max_ms for _, max_ms in progress.values()), default=0)


# -- cursor: the rank reached in each bucket ---------------------------------------------------


def _encode_cursor(list_name: ListName, ranks: Sequence[int], block_size: int, skip: int) -> str:
    raw = orjson.dumps([_CURSOR_VERSION, list_name, list(ranks), block_size, skip])
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


#: No index holds this many entries; a cursor's rank at or past it was not given out by this API.
_MAX_RANK = 2**40


def _decode_cursor(cursor: str, list_name: ListName, buckets: int) -> tuple[list[int], int, int]:
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        version, name, ranks, block_size, skip = orjson.loads(raw)
    except (ValueError, TypeError, zlib.error, orjson.JSONDecodeError):
        raise BadRequest(f"cursor {cursor[:40]!r} is not a cursor this API gave out") from None
    if version != _CURSOR_VERSION or name != list_name:
        raise BadRequest(f"cursor belongs to list {name!r}, not {list_name!r}")
    ints = [*ranks, block_size, skip] if isinstance(ranks, list) else [None]
    # ranks far past any index (2**40 entries) are a tampered cursor: 2**63 - 1 overflowed the Lua's
    # first + count - 1 into a Redis error, a 500 (found in review)
    if not all(type(r) is int and 0 <= r < _MAX_RANK for r in ints) or len(ranks) != buckets or not 1 <= block_size <= _MAX_BLOCK:
        raise BadRequest("cursor does not match this store's buckets (was it made for another deployment?)")
    return ranks, block_size, skip


# -- the ranked page ---------------------------------------------------------------------------

_Entry = tuple[bytes, float]  # (user id as stored, index score)


@functools.lru_cache(maxsize=None)
def _script(name: str) -> tuple[str, str]:
    """(source, SHA1) of ``lua/<name>``: called by EVALSHA, loaded on NOSCRIPT."""
    source = resources.files("streams.console").joinpath("lua", name).read_text(encoding="utf-8")
    return source, hashlib.sha1(source.encode()).hexdigest()


async def _eval_buckets(store: Store, name: str, common: Sequence[Any],
                        calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """``lua/<name>`` over the ``(key, args)`` of some buckets: one reply per key, in order.

    One EVALSHA for all of them (a page costs one command instead of one per bucket); on a
    cluster, whose script calls must keep to one slot, one per bucket in one pipeline (routed by
    key, streams/worker/store.py). Plain commands, not redis-py's ``Script``: no reply callbacks.
    On NOSCRIPT (Redis restarted) the script is loaded and the round trip repeated once; the
    scripts only read.
    """
    if not calls:
        return []
    source, sha = _script(name)
    groups = [[c] for c in calls] if store.cluster else [calls]
    for attempt in (0, 1):
        pipe = store.client.pipeline(transaction=False)
        for group in groups:
            argv = [*common]
            for _, args in group:
                argv += (len(args), *args)
            pipe.execute_command("EVALSHA", sha, len(group), *(key for key, _ in group), *argv)
        try:
            return [reply for replies in await pipe.execute() for reply in replies]
        except NoScriptError:
            if attempt:
                raise
            await store.client.script_load(source)
    raise AssertionError("unreachable")


async def _fetch(store: Store, ranks: dict[int, int], chunk: int) -> dict[int, tuple[int, list[_Entry]]]:
    """``chunk`` index entries per bucket from the given ranks, highest first (rank -1: from the
    first rank below the lapsed users): bucket -> (first rank, entries). One round trip."""
    order = list(ranks)
    replies = await _eval_buckets(store, "index_chunk.lua", (chunk,), [(store.keys.risk(b), (ranks[b],)) for b in order])
    out = {}
    for b, flat in zip(order, replies):
        out[b] = (int(flat[0]), [(flat[i], float(flat[i + 1])) for i in range(1, len(flat), 2)])
    return out


async def _load(store: Store, user_ids: Sequence[bytes], kinds: Sequence[str] = ("u", "hist")) -> list[list[bytes | None]]:
    """Per user, its records of ``kinds`` (``u``: state, ``hist``: score history, ``al``: alert
    list; None where absent): one round trip."""
    buckets, groups = store.buckets, store.groups
    by_bucket: dict[int, tuple[list[int], list[Any]]] = {}
    for i, uid in enumerate(user_ids):
        h = zlib.crc32(uid)  # streams.worker.keys.locate, on the stored bytes
        where, args = by_bucket.setdefault(h % buckets, ([], []))
        where.append(i)
        args += ((h // buckets) % groups, uid)
    replies = await _eval_buckets(store, "load_users.lua", (" ".join(kinds),),
                                  [(store.keys.tag(b), args) for b, (_, args) in by_bucket.items()])
    k = len(kinds)
    out: list[list[bytes | None]] = [[]] * len(user_ids)
    for (where, _), raw in zip(by_bucket.values(), replies):
        for j, i in enumerate(where):
            out[i] = raw[k * j: k * j + k]
    return out


def _fits(list_name: ListName, index_score: float, stage: str) -> bool:
    """Win back: the lapsed users (dormant or churned, models.lifecycle.LAPSED) at the top of the
    index. Save: users still reachable and not just back (models.lifecycle.JUDGED), as
    ``models.ranking``'s two lists: a dormant user keeps an open alert but is lapsed, and a user
    back from churned with an alert open since before is off the list until "reactivated" ends. A user whose live stage left the
    part of the index its last review put it in waits for its next review (skipped)."""
    if list_name == "win_back":
        return index_score >= _LAPSED and stage in LAPSED
    return index_score < _LAPSED and stage in JUDGED


def _chunk(store: Store, size: int) -> int:
    """Entries fetched per bucket for a block of ``size``: 2.5x the mean share, so a refill is rare."""
    return max(6, 5 * size // (2 * store.buckets) + 4)


async def _block(store: Store, list_name: ListName, ranks: list[int] | None,
                 size: int) -> tuple[list[_Entry], list[int], list[int], bool]:
    """The next ``size`` index entries from ``ranks`` in index order (index score, then user id, highest first).

    ``ranks`` None: from the start of the list (rank 0 for win back, below the lapsed users for
    save). Returns the entries, the ranks where they start and after them, and whether every
    bucket is exhausted. A
    merge of per-bucket chunks: the entries fetched are sorted together and cut at ``size``; a
    bucket whose whole chunk falls above the cut may hold more above it, so it is refilled and the
    cut taken again (rare: a chunk is 2.5x a bucket's mean share).
    """
    chunk = _chunk(store, size)
    from_start = 0 if list_name == "win_back" else -1
    start = dict.fromkeys(range(store.buckets), from_start) if ranks is None else dict(enumerate(ranks))
    first: dict[int, int] = {}  # rank of each bucket's first fetched entry
    fetched: dict[int, list[_Entry]] = {b: [] for b in start}
    exhausted: set[int] = set()
    need = start
    while True:
        for b, (rank, got) in (await _fetch(store, need, chunk)).items():
            first.setdefault(b, rank)
            if len(got) < chunk:
                exhausted.add(b)
            if list_name == "win_back" and got and got[-1][1] < _LAPSED:
                got = [e for e in got if e[1] >= _LAPSED]
                exhausted.add(b)
            fetched[b] += got
        merged = sorted(((s, m, b) for b, got in fetched.items() for m, s in got), reverse=True)[:size]
        taken = collections.Counter(b for _, _, b in merged)
        need = {b: first[b] + len(fetched[b]) for b in fetched if b not in exhausted and taken[b] == len(fetched[b])}
        if not need:
            break
    done = all(b in exhausted and taken[b] == len(fetched[b]) for b in fetched)
    order = sorted(first)
    return [(m, s) for s, m, _ in merged], [first[b] for b in order], [first[b] + taken[b] for b in order], done


async def at_risk_page(store: Store, model: ChurnModel, now_ms: int, list_name: ListName, limit: int,
                       cursor: str | None = None, filters: Filters = Filters(), owner: str = Owners.ALL) -> Page:
    """One page of the *save* or *win back* list, most at risk (live) first (module docstring)."""
    if list_name not in LISTS:
        raise BadRequest(f"list must be one of {', '.join(LISTS)}, got {list_name!r}")
    if limit < 1:
        raise BadRequest(f"limit must be at least 1 row, got {limit}")
    ranks: list[int] | None = None
    if cursor:
        ranks, block_size, skip = _decode_cursor(cursor, list_name, store.buckets)
    else:
        block_size, skip = block_size_for(limit), 0
    rows: list[Row] = []
    next_cursor: str | None = None
    while len(rows) < limit:
        entries, ranks, end_ranks, done = await _block(store, list_name, ranks, block_size)
        states = [blob for blob, in await _load(store, [u for u, _ in entries], ("u",))]
        ranked = _rank(entries, states, now_ms, list_name, filters, model)
        if list_name == "win_back" and not done and block_size < _MAX_BLOCK and not _settled(ranked, entries, skip + limit - len(rows)):
            block_size = min(2 * block_size, _MAX_BLOCK)  # the same start, a longer block
            continue
        take = ranked[skip: skip + limit - len(rows)]
        histories = await _load(store, [uid for _, uid, _, _ in take], ("hist",)) if take else []
        for (_, uid, state, a), (hist,) in zip(take, histories):
            user = uid.decode("utf-8", "surrogatepass")
            trend = complete_points(user, state, decode_points(hist), a.signals.now_s, model)
            rows.append(Row(user, scores_from(state, a, model), state, trend, save_score(a)))
        if skip + len(take) < len(ranked):  # the page ends inside this block
            next_cursor = _encode_cursor(list_name, ranks, block_size, skip + len(take))
            break
        if done or not entries:
            break
        ranks, skip = end_ranks, 0
        if len(rows) >= limit:
            next_cursor = _encode_cursor(list_name, ranks, block_size, 0)
    return Page(list_name, owner, now_ms, rows, next_cursor)


#: The longest block a page reads (entries of the index): 2,050 is a page of 500 rows; a win-back
#: block grows past it, up to this, while users of stale higher index scores come first (:func:`_settled`).
_MAX_BLOCK = 16_400


def _settled(ranked: Sequence[tuple[tuple[float, ...], bytes, UserState, Assessment]], entries: Sequence[_Entry],
             need: int) -> bool:
    """Whether the first ``need`` rows of a block ranked live (all of them if fewer) are final:
    no entry of the index after the block can rank before them. The win-back list only (the save
    list's live order is the block's, as before): a lapsed user's live score
    (models.ranking.win_back_score) is at most their index score, so an entry after the block
    ranks below its last one, (score, user id) as the index orders them, and a row ranked live
    above that is final (the rows are in that order, so the last one needed decides). Why (QA19 F10): never-funded signups reviewed when their temperature
    still read 1 stood in the index above salaried customers who left later (0 both, live), so a
    block of ``-n 20`` held only signups and ``-n 200`` the customers: pages depended on ``-n``."""
    if not ranked or not entries:
        return True
    last_uid, last_score = entries[-1]
    key, uid, _, _ = ranked[min(need, len(ranked)) - 1]
    return (-key[0], uid) > (last_score, last_uid)


def _rank(entries: Sequence[_Entry], states: Sequence[bytes | None], now_ms: int, list_name: ListName,
          filters: Filters, model: ChurnModel) -> list[tuple[tuple[float, ...], bytes, UserState, Assessment]]:
    """A block's users that fit the list and the filters, by live score (then user id): the save
    list by the savable part of the risk (models.ranking.save_rank: as shown, then the nearest renewal), the win-back list by
    temperature, then value (models.ranking.win_back_key: spend, active days, latest leave; equal
    keys by user id from the last, the index's order), as ``churnwatch top`` ranks them.

    Ranked on the cheap assessment (risk, stage); the full scores are made only for the rows
    shown, or for every candidate when a filter needs the segment or the action.
    """
    ranked = []
    full = filters.segment is not None or filters.action is not None
    for (uid, index_risk), blob in zip(entries, states):
        if blob is None:
            continue
        state = UserState.from_bytes(blob)
        a = assess(state, max(now_ms, state.last_seen_s * 1000) // 1000, model)
        if not _fits(list_name, index_risk, a.stage) or (filters.stage is not None and a.stage != filters.stage):
            continue
        if full and not filters.accepts(scores_from(state, a, model)):
            continue
        key = save_rank(a) if list_name == "save" else win_back_score(a, state, model)
        ranked.append(((-key,), uid, state, a))
    if list_name == "win_back":  # equal keys as the index holds them: the user id from the last (models.ranking.win_back_key)
        ranked.sort(key=lambda r: r[1], reverse=True)
        ranked.sort(key=lambda r: r[0])
    else:
        ranked.sort(key=lambda r: (r[0], r[1]))
    return ranked


def block_size_for(limit: int) -> int:
    """Index entries ranked together by live risk for pages of ``limit`` rows (``churnwatch top``'s window)."""
    return min(4 * limit + 50, 2_050)


async def counters(store: Store, names: Sequence[str]) -> dict[str, int]:
    """A few business counters summed over the buckets (HMGET: the per-day fields stay in Redis)."""
    totals = dict.fromkeys(names, 0)
    for values in await _eval_buckets(store, "hmget.lua", (), [(store.keys.stats(b), names) for b in range(store.buckets)]):
        for name, v in zip(names, values):
            if v is not None:
                totals[name] += int(float(v))
    return totals


@dataclass(frozen=True, slots=True)
class AtRiskSplit:
    """The users with an open at-risk alert (the at-risk index, module docstring) by their stage at
    their last review: ``reachable`` (new, active, declining, reactivated: the save list's
    population) and ``lapsed`` (dormant, churned: the win-back list's). An alert stays open while
    its user lapses, so the total (the ``at_risk`` counter, ``churnwatch_users_at_risk``) is mostly
    lapsed users at the end of a history (QA14 F8: "698 at risk" of 1,376, 20 of them reachable)."""

    reachable: int
    lapsed: int

    @property
    def total(self) -> int:
        return self.reachable + self.lapsed


async def at_risk_split(store: Store) -> AtRiskSplit:
    """:class:`AtRiskSplit` from the index: ZCARD and ZCOUNT of the lapsed range per bucket, one
    round trip (``lua/risk_split.lua``; O(log n) a bucket, no scan)."""
    entries = lapsed = 0
    for card, count in await _eval_buckets(store, "risk_split.lua", (), [(store.keys.risk(b), ()) for b in range(store.buckets)]):
        entries, lapsed = entries + int(card), lapsed + int(count)
    return AtRiskSplit(entries - lapsed, lapsed)


# -- one user ----------------------------------------------------------------------------------


async def user_view(store: Store, model: ChurnModel, now_ms: int, user_id: str) -> UserView:
    """One user's live scores and weekly history; ``NotFound`` if the user is not tracked,
    ``streams.views.NoActivityYet`` if its record holds billing statements alone (as ``churnwatch
    score``), ``streams.worker.store.UnreadableState`` if its record cannot be read."""
    # "al" is keys.alert_log's kind: the alert list comes in the same call as the state.
    ((blob, hist, logged),) = await _load(store, [user_id.encode("utf-8", "surrogatepass")], ("u", "hist", "al"))
    if blob is None:
        raise NotFound(f"user {user_id!r} is not tracked (never seen, or expired after churn)")
    from models.state import tracked
    from streams.views import NoActivityYet
    from streams.worker.alert_log import decode_entries

    state = read_state(blob)
    if not tracked(state):
        raise NoActivityYet(user_id)
    as_of = max(now_ms, state.last_seen_s * 1000)  # as churnwatch score: a user's events are never in its future
    return UserView(user_id, as_of, score(state, as_of // 1000, model), state,
                    complete_points(user_id, state, decode_points(hist), as_of // 1000, model),
                    decode_entries(logged.split(b"\n") if logged else []), await store.account_of(user_id) or "")


def trend_with_now(history: list[HistoryPoint], now_s: int, s: Scores) -> list[HistoryPoint]:
    """The stored weekly points with the live scores as the point of the current week."""
    week = week_of(now_s)
    live = HistoryPoint(week, round(s.health), round(s.temperature), s.risk)
    return [p for p in history if p.week != week] + [live]


# -- churn -------------------------------------------------------------------------------------


async def churn_view(store: Store, now_ms: int, days: int, weeks: int = 12) -> dict[str, Any]:
    """Churn over ``days`` up to the stream time, plus weekly series of won and lost customers."""
    from streams.timefmt import format_ts

    if not 1 <= days <= 365:
        raise BadRequest(f"period must be 1-365 days, got {days}")
    stats = await store.stats()
    now_s = now_ms // 1000
    summary = churn_summary(stats, now_s, days)
    series = []
    for w in range(weeks - 1, -1, -1):
        end_s = now_s - w * 7 * 86_400
        week = churn_summary(stats, end_s, 7)
        won = sum(int(stats.get("new:" + utc_day(end_s - d * 86_400), 0)) for d in range(7))
        series.append({"week_end": format_ts(end_s * 1000)[:10], "churned": week.churned, "won": won,
                       "churn_rate": round(week.rate, 4), "churned_revenue": round(week.revenue, 2)})
    by_stage = {name: int(stats.get("stage:" + name, 0)) for name in STAGES}
    split = await at_risk_split(store)
    return {
        "as_of": format_ts(now_ms),
        "period_days": days,
        "users": int(stats.get("users", 0)),
        "at_risk": int(stats.get("at_risk", 0)),
        "at_risk_reachable": split.reachable,
        "at_risk_lapsed": split.lapsed,
        "by_stage": by_stage,
        **summary.figures(),
        "churned_revenue_counted": purchases_counted(stats),
        "weekly": series,
    }


def purchases_counted(stats: Mapping[str, float]) -> bool:
    """Whether a churned user's purchases were ever counted (a ``churned_rev:<day>`` counter above
    0 on any day the store holds; the workers write only those above 0). False for a product
    without purchase events (a subscription app: its money is the accounts' MRR), where the
    "purchases of churned users" card read 0 by construction (QA14 F8): the Churn page then
    leaves the card and its chart out. Not the window's total: for a product with purchases a
    window whose churned users bought nothing is a true 0, and the card would come and go.
    Not the model's ``roles_matched``: the shipped model has no training report, and the
    counters are what the card sums.

    >>> purchases_counted({"users": 5, "churned:20260401": 2}), purchases_counted({"churned_rev:20260301": 49.5})
    (False, True)
    """
    return any(v > 0 for k, v in stats.items() if k.startswith("churned_rev:"))


async def revenue_view(store: Store, settings: Settings, now_ms: int, period: str = "month", periods: int = 12) -> dict[str, Any]:
    """Accounts' churn in money and count for the last ``periods`` periods up to the stream time
    (leading periods before any revenue left out) and the signup-month cohorts: the workers' live
    counters read by ``streams.views`` into ``churnwatch report``'s ledger, so every figure is the
    one ``churnwatch churn-rate --period P --from F --to T --json`` prints for the same range;
    ``currency``: the deployment's (``CHURNWATCH_CURRENCY``; null when unnamed), which names the money;
    ``behind_note``: ``churn-rate``'s, when the account side is catching up a backlog (QA24b F2: the
    Churn page read "churned 0.00" for a month mid-catch-up without a word), else null."""
    from models.revenue_ledger import PERIODS, cohort_dict, figures_dict, period_start_ms
    from streams.views import behind_note, behind_of, cohort_rows, revenue_figures

    if period not in PERIODS:
        raise BadRequest(f"revenue_period must be one of {', '.join(PERIODS)}, got {period[:40]!r}")
    start = period_start_ms(now_ms, period)  # type: ignore[arg-type]
    for _ in range(periods - 1):
        start = period_start_ms(start - 1, period)  # type: ignore[arg-type]
    figures = revenue_figures(await store.revenue_totals(period), period, start, None, now_ms)
    while len(figures) > 1 and not (figures[0].start_mrr_cents or figures[0].end_mrr_cents or figures[0].churned_customers):
        figures.pop(0)
    cohorts = cohort_rows(await store.cohort_counters(), figures[-1].end_ms)
    behind = behind_of(await store.earliest_account_due(settings.topic_events), settings, now_ms)
    return {"period": period, "currency": settings.currency or None, "periods": [figures_dict(f) for f in figures],
            "cohorts": [cohort_dict(c) for c in cohorts], "behind_note": behind_note(behind, now_ms) or None}


# -- owners and accounts -----------------------------------------------------------------------


def _book(settings: Settings, owner: str, list_name: ListName, now_ms: int, table: dict[str, dict[str, Any]]) -> tuple[list[Any], list[int]]:
    from streams.views import account_book
    from streams.worker.store import StoreReader

    behind: list[int] = []
    with StoreReader(settings) as reader:
        listed = account_book(reader, settings, owner, len(table), now_ms=now_ms, table=table,
                              churned_only=list_name == "win_back", behind=behind)
    return listed, [d for d in behind if d]


@dataclass(slots=True)
class BookPage:
    """One page of an owner's book: accounts (``streams.views.AccountReport``) and the next page's
    cursor; and the owner's own figures for the page's header (QA6 L5: it counted every owner's
    users): ``owned``, the owner's accounts in the accounts table; ``listed``, the accounts on the
    list before the filters (at risk, or gone); ``at_stake_cents``, their MRR (save: what a call
    can keep) or the MRR they took (win back: a lapsed account, still paying, took none yet)."""

    accounts: list[Any]
    next_cursor: str | None
    owned: int = 0
    listed: int = 0
    at_stake_cents: int = 0
    # of the owner's accounts, how many are as of their account side's own time and how far at most
    # that is behind the stream, in days (QA18 F5: "as of 2026-08-16 ... 0 at risk" of state of December)
    behind: int = 0
    behind_days: int = 0


def _encode_book_cursor(owner: str, list_name: ListName, offset: int) -> str:
    raw = orjson.dumps([_CURSOR_VERSION, "book:" + list_name, owner, offset])
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def _decode_book_cursor(cursor: str, owner: str, list_name: ListName) -> int:
    try:
        version, name, who, offset = orjson.loads(zlib.decompress(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))))
    except (ValueError, TypeError, zlib.error, orjson.JSONDecodeError):
        raise BadRequest(f"cursor {cursor[:40]!r} is not a cursor this API gave out") from None
    if version != _CURSOR_VERSION or name != "book:" + list_name or who != owner or type(offset) is not int or offset < 0:
        raise BadRequest(f"cursor does not belong to the {list_name!r} list of owner {owner[:60]!r}")
    return offset


async def owner_book(settings: Settings, owners: Owners, owner: str, list_name: ListName, limit: int,
                     now_ms: int, cursor: str | None = None, filters: Filters = Filters()) -> BookPage:
    """A page of the owner's accounts: ``save``, those at risk ranked as ``churnwatch top --owner``
    ranks them (the first page of ``limit`` is ``top --owner -n limit``); ``win_back``, those whose
    subscription is gone (churned, trials lost), largest lost MRR first (``streams.views.account_book``).
    ``filters``: the account's stage, one the list can hold (``streams.views.BOOK_STAGES``: on the
    win-back list, churned customers or lost trials; another is a 400, not an empty page), its
    action (``models.account_health.ACCOUNT_ACTIONS``) and its segment in the accounts table. The book is ranked afresh for every page (an owner has hundreds of accounts, not
    millions) and the cursor holds the rank reached."""
    if list_name not in LISTS:
        raise BadRequest(f"list must be one of {', '.join(LISTS)}, got {list_name!r}")
    if limit < 1:
        raise BadRequest(f"limit must be at least 1 row, got {limit}")
    table = await owners.table()
    if not any((f.get("owner") or "") == owner for f in table.values()):
        raise NotFound(f"owner {owner[:60]!r} has no account in the accounts table")
    from streams.views import BOOK_STAGES

    if filters.stage is not None and filters.stage not in BOOK_STAGES[list_name]:
        raise BadRequest(f"the {list_name} list of an owner's book holds accounts of stage {' or '.join(BOOK_STAGES[list_name])}: "
                         f"stage {filters.stage!r} would list none")
    offset = _decode_book_cursor(cursor, owner, list_name) if cursor else 0
    listed, behind = await asyncio.to_thread(_book, settings, owner, list_name, now_ms, table)
    owned = sum(1 for f in table.values() if (f.get("owner") or "") == owner)
    # win back: the MRR lost, which a lapsed account, still paying, has not lost yet (QA18 F1)
    at_stake = sum(r.lost_mrr_cents if list_name == "win_back" else r.rollup.mrr_cents for r in listed)
    ranked = [r for r in listed if (filters.stage is None or r.rollup.stage == filters.stage)
              and (filters.action is None or r.rollup.action == filters.action)
              and (filters.segment is None or (table.get(r.account_id, {}).get("segment") or "") == filters.segment)]
    rows = ranked[offset: offset + limit]
    more = offset + limit < len(ranked)
    return BookPage(rows, _encode_book_cursor(owner, list_name, offset + limit) if more else None, owned, len(listed), at_stake,
                    len(behind), max(behind, default=0))


async def owner_segments(owners: Owners, owner: str) -> list[str]:
    """The segments of the owner's accounts in the accounts table (the filter's choices)."""
    return sorted({f.get("segment") or "" for f in (await owners.table()).values() if (f.get("owner") or "") == owner} - {""})


def _account(settings: Settings, account_id: str, facts: dict[str, Any], now_ms: int,
             model: ChurnModel | None = None) -> tuple[Any, Any, list[Any], list[Any], frozenset[int]]:
    from models.account_health import Member, counted_users
    from streams.views import account_report, overdue_reviews, read_account_state
    from streams.worker.account_alerts import stated_view
    from streams.worker.alert_log import EXTRAS_FIELD, decode_entries
    from streams.worker.store import StoreReader

    with StoreReader(settings) as reader:
        report = account_report(reader, account_id, facts, now_ms, model,
                                overdue_reviews(reader, settings, [account_id], now_ms).get(account_id))
        if report is not None:
            now_ms = report.as_of_ms  # the account side's own time when it is behind the stream (QA18 F5)
        blob, extras, records = reader.load_account(account_id)
        members = [Member.from_bytes(v) for v in records.values()]
        state = read_account_state(blob)
        # the members the roll-up counts, from the records it reads (QA18 F8: the table's rows are them)
        counted = frozenset(m.key for m in counted_users(members, stated_view(state), now_ms // 1000))
        if model is not None:
            members = _members_now(reader, members, now_ms, model)
    logged = orjson.loads(extras).get(EXTRAS_FIELD, []) if extras else []
    return (report, state, sorted(members, key=lambda m: (m.key not in counted, -m.risk, -m.last_seen_s)),
            decode_entries(logged), counted)


def _members_now(reader: Any, members: list[Any], now_ms: int, model: ChurnModel) -> list[Any]:
    """The members with their current stage, risk and last event, as their own user pages show
    them (``models.scoring.score`` at the stream time, or at the user's last event if later).

    Why a read per member: the account's member record keeps what the account's health needs,
    the risk of the user's *open alert* (0 when none is open) and the hour's first event, so the
    table read 0.00 / 16:39 for a user whose page said 0.16 / 17:40 (QA 2026-12). One pipelined
    HGET per member with a user id (one round trip) and one assessment each (~20 us); a member
    without a user id in its record keeps the record's values."""
    from streams.views import member_now
    from streams.worker.keys import locate

    ids = [m.user_id for m in members if m.user_id]
    if not ids:
        return members
    states = reader.run(lambda store: store.load_users([(*locate(u, store.buckets, store.groups), u) for u in ids]))
    now = dict(zip(ids, states))
    return [member_now(m, now.get(m.user_id) if m.user_id else None, now_ms, model) for m in members]


async def account_view(settings: Settings, owners: Owners, account_id: str, now_ms: int,
                       model: ChurnModel | None = None) -> tuple[Any, Any, list[Any], list[Any], frozenset[int]]:
    """The account's roll-up (``streams.views.AccountReport``, as ``churnwatch top --owner``
    reports it), its revenue state (``models.revenue.AccountState`` or None), its members, most at
    risk first (with their user id where the member record carries it,
    ``models.account_health.Member``; with ``model``, each member's current stage, risk and last
    event, as its user page shows them: :func:`_members_now`), and its last alerts, newest first
    (``streams.worker.alert_log``), and the keys of the members the roll-up counts as its users
    (``models.account_health.counted_users``: the others first, then those left out);
    ``streams.views.UnreadableAccount`` (409) when its stored state cannot be read."""
    facts = (await owners.table()).get(account_id, {})
    report, state, members, alerts, counted = await asyncio.to_thread(_account, settings, account_id, facts, now_ms, model)
    if report is None:
        raise NotFound(f"account {account_id[:60]!r} is unknown")
    return report, state, members, alerts, counted


def account_dict(report: Any, state: Any, members: list[Any], now_ms: int, alerts: Sequence[dict[str, Any]] = (),
                 counted: frozenset[int] | None = None) -> dict[str, Any]:
    """The API's account: ``churnwatch top --owner --json``'s fields plus subscriptions, members and
    alerts; each member's ``counted`` says whether it is one of ``users`` (``counted`` None: all are),
    ``machine`` whether it is a machine user (``[users] machine``: usage only, never counted)."""
    from streams.timefmt import format_ts
    from streams.views import account_subscriptions

    return {**report.to_dict(), "as_of": format_ts(now_ms), "subscriptions": account_subscriptions(state, now_ms),
            "members": [{"user_id": m.user_id or None, "stage": STAGES[m.stage], "risk": round(m.risk, 4),
                         "last_seen": format_ts(m.last_seen_s * 1000), "counted": counted is None or m.key in counted, "machine": m.machine, "key": m.key_user}
                        for m in members],
            "alerts": list(alerts)}
