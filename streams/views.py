"""What a reader of the live state sees: one user's scores, the ranked at-risk list, the churn rate.

The CRM commands (``churnwatch score``, ``top``, ``churn-rate``), the demo and any page read
through here: the store's read API (``streams.worker.store.StoreReader``) and the same pure
``models.scoring.score`` the workers use. "Now" is the *stream time* of the events topic, the
largest event time any worker has applied (Redis progress), never the wall clock: a replay of
last year's history reports as of last year, and a stalled stream does not make everybody look
dormant.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any, Final, Iterator, Mapping


from models.account_health import GONE_STAGES, WIN_BACK_STAGES
from models.model import ChurnModel, load_model
from models.revenue_ledger import CohortRow, Cohorts, Ledger, PeriodFigures, next_period_ms, period_start_ms
from models.ranking import Ranked, budget_size
from models.scoring import Scores, score, scores_from
from models.signals import compute_signals, days_overdue
from models.state import UserState, never_paid_trial, tracked
from models.subscription import calendar_days
from streams.errors import UserError
from streams.settings import Settings, redact_url
from streams.timefmt import format_minute, format_ts
from streams.worker.store import REACH_SCALE, Store, StoreReader, UnreadableState, model_id

logger = logging.getLogger(__name__)

__all__ = ["BOOK_STAGES", "AccountReport", "NoActivityYet", "UnreadableAccount", "account_book", "account_report", "account_subscriptions", "read_account_state", "UserReport", "churn_rate", "cohort_rows",
           "indexed_save_list", "live_cohorts", "live_revenue", "open_reader", "renewal", "renewal_text", "revenue_figures",
           "revenue_range", "stream_time_ms", "top_users", "user_report", "warned_before"]

_DAY_MS = 86_400_000


class NoActivityYet(LookupError):
    """A user whose stored record holds billing statements alone (models.state.tracked): no use of
    the product yet, so nothing to score; ``churnwatch score`` says so in one line (exit 2), the
    console's user page and ``/api/v1/users/{id}`` answer 404 ``no_activity`` with these words.
    Its subscription still counts in its account's revenue (models.revenue)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id!r} has no activity yet: only billing statements (subscription events), which "
                         f"count in its account's revenue, not as use of the product; it is scored from its first activity")


@dataclass(frozen=True, slots=True)
class UserReport:
    """One user's live scores plus the few facts a CRM agent asks for first."""

    user_id: str
    as_of_ms: int
    scores: Scores
    state: UserState
    savable: float | None = None  # on the save list: its key, models.ranking.save_score
    # the account the user is a member of (Store.account_of) and its facts in the accounts table (name,
    # owner): who to route the user to (QA6 M3); "" when not looked up (lists) or the user has none
    account_id: str = ""
    account_facts: dict[str, Any] | None = None
    # days a repeat buyer's next order is overdue against their own rhythm (negative: days until
    # due; models.signals.days_overdue), None for others or where not computed: top's column (QA12 F5)
    overdue_days: float | None = None
    # on the win-back list: the MRR (cents) the churn of the user's own account took (a user
    # without ``account_id``: B2C, docs/REVENUE.md), 0 when it took none (never paid, or a member
    # of a company account, whose MRR is the company's); None off that list (QA14 F5)
    lost_mrr_cents: int | None = None
    # ``top --by value``: the value at stake the list is ranked by (models.ranking.value_at_stake,
    # currency units a month); None in the other orders (QA22b F8)
    value_at_stake: float | None = None

    def account_dict(self) -> dict[str, Any]:
        """``account_id``, ``account_name`` and ``owner`` when the user is a member of an account (the
        last two null when the accounts table does not list it), else nothing.

        >>> from models.state import UserState
        >>> r = UserReport("u1", 0, None, UserState(), account_id="acme")  # type: ignore[arg-type]
        >>> r.account_dict(), UserReport("u1", 0, None, UserState()).account_dict()  # type: ignore[arg-type]
        ({'account_id': 'acme', 'account_name': None, 'owner': None}, {})
        """
        if not self.account_id:
            return {}
        facts = self.account_facts or {}
        return {"account_id": self.account_id, "account_name": facts.get("name") or None, "owner": facts.get("owner") or None}

    def to_dict(self) -> dict[str, Any]:
        s, st = self.scores, self.state
        return {
            "user_id": self.user_id,
            "as_of": format_ts(self.as_of_ms),
            "risk": round(s.risk, 4),
            **({"savable": round(self.savable, 4)} if self.savable is not None else {}),
            "health": round(s.health, 1),
            "temperature": round(s.temperature, 1),
            "stage": s.stage,
            "segment": s.segment,
            "action": s.action,
            "reasons": list(s.reasons),
            "first_seen": format_ts(st.first_seen_s * 1000) if st.first_seen_s else None,
            "last_seen": format_ts(st.last_seen_s * 1000) if st.last_seen_s else None,
            "events": st.n_events,
            "active_days": st.active_days,
            "purchases": st.n_purchases,
            "revenue": round(st.revenue, 2),
            "at_risk_since": format_ts(st.at_risk_since_s * 1000) if st.at_risk_since_s else None,
            **({"lost_mrr": self.lost_mrr_cents / 100} if self.lost_mrr_cents is not None else {}),
            **({"value_at_stake": round(self.value_at_stake, 2)} if self.value_at_stake is not None else {}),
            **({"never_paid_trial": True} if never_paid_trial(st.flags) else {}),  # a lead, not a customer (QA23a F2)
            **self.account_dict(),
        }


async def layout_mismatch(store: Store) -> str | None:
    """Why this process cannot read the store with its settings, or None: the layout the first worker
    recorded in ``cw:meta`` (buckets, groups per bucket, format) against ours. Workers refuse a
    mismatch at start (``Store.connect``); a reader with other ``CHURNWATCH_BUCKETS`` read other keys
    and printed a wrong list without a word (found in the QA pass of December 2026). No record yet
    (no worker has started): nothing to compare."""
    from streams.worker.store import STORE_FORMAT, STORE_FORMATS

    fields = ("buckets", "groups_per_bucket", "format")
    raw = await store._client.hmget(store.keys.meta, list(fields))  # noqa: SLF001 - Store has no read of the layout
    have = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in zip(fields, raw)}
    if have["buckets"] is None:
        return None
    want = {"buckets": str(store.buckets), "groups_per_bucket": str(store.groups), "format": STORE_FORMAT}
    if have["format"] in STORE_FORMATS:  # a store holding an erasure: ERASED_FORMAT
        want["format"] = have["format"]
    if have == want:
        return None
    return (f"Redis key {store.keys.meta} says {', '.join(f'{k}={have[k]}' for k in fields)} but these settings have "
            f"{', '.join(f'{k}={want[k]}' for k in fields)}: use the workers' CHURNWATCH_BUCKETS / "
            f"CHURNWATCH_GROUPS_PER_BUCKET (or their CHURNWATCH_KEY_PREFIX)")


@contextlib.contextmanager
def open_reader(settings: Settings) -> Iterator[StoreReader]:
    """The store's read API, with Redis connection failures turned into one readable line."""
    from redis.exceptions import ConnectionError as RedisConnectionError, ResponseError, TimeoutError as RedisTimeoutError

    reader = StoreReader(settings)
    try:
        wrong = reader.run(layout_mismatch)
        if wrong:
            raise UserError(wrong)
        yield reader
    except FileNotFoundError:
        raise  # a missing model file is no Redis fault ("cannot reach Redis at ...: model file ... does not exist")
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise UserError(f"cannot reach Redis at {redact_url(settings.redis_url)}: {exc}") from None
    except ResponseError as exc:  # e.g. a database number the server does not have (redis://host/99)
        raise UserError(f"Redis at {redact_url(settings.redis_url)} refused: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def stream_time_ms(reader: StoreReader, settings: Settings) -> int:
    """Largest event time applied on any partition of the events topic (Redis progress)."""
    progress = reader.progress(settings.topic_events)
    latest = max((max_ms for _, max_ms in progress.values()), default=0)
    if latest <= 0:
        raise UserError(f"no progress for topic {settings.topic_events!r} in Redis yet: has a worker processed any events?")
    return latest


def _model(settings: Settings, reader: StoreReader) -> ChurnModel:
    """The model the workers score with, as Redis records it (a take-over's file, a learned
    successor), so ``score`` and ``top`` say what the alerts say; the model file
    (``CHURNWATCH_MODEL_PATH``) before any worker recorded one. A recorded model that cannot be
    loaded: the file's, with one WARNING saying so (``Store.model_in_use``)."""
    file_model = load_model(settings.model_path or None)
    model, note = reader.run(lambda store: store.model_in_use(file_model))
    if note:
        logger.warning("%s", note)
    elif settings.model_path and model is not file_model:  # a file asked for by name: say it is not the one used
        logger.info("%s", file_not_used(settings, model))
    return model  # type: ignore[no-any-return]


def file_not_used(settings: Settings, model: ChurnModel) -> str:
    """The INFO line of a reader whose ``CHURNWATCH_MODEL_PATH`` is not the model it scores with (the
    one the workers use): someone pointing a reader at a new file to preview it would not know."""
    return f"scoring with the model the workers use ({model_id(model)}), not {settings.model_path} (to score a file: backtest --model)"


def user_report(reader: StoreReader, settings: Settings, user_id: str, model: ChurnModel | None = None,
                as_of_ms: int | None = None) -> UserReport | None:
    """Live scores of ``user_id`` at the stream time (or ``as_of_ms``); None if the user is not
    tracked, :class:`NoActivityYet` if its record holds billing statements alone."""
    state = reader.load_user(user_id)
    if state is None:
        return None
    if not tracked(state):
        raise NoActivityYet(user_id)
    now_ms = as_of_ms if as_of_ms is not None else stream_time_ms(reader, settings)
    now_ms = max(now_ms, state.last_seen_s * 1000)  # a user's own events are never in its future
    return UserReport(user_id, now_ms, score(state, now_ms // 1000, model or _model(settings, reader)), state,
                      account_id=reader.account_of(user_id) or "")


def top_users(reader: StoreReader, settings: Settings, n: int | None = None, *, share: float | None = None,
              kind: str = "save", by: str = "chance") -> list[UserReport]:
    """Today's ranked list at the stream time.

    With ``n`` (default 20): the console's first page of the list (``streams.console.data``), so
    the CLI, the pages and the API rank alike: ``save``, the users with an open at-risk alert
    still reachable (a dormant user keeps its alert open but is lapsed) by the live savable part
    of their risk (models.ranking.save_score); ``win_back``, those lapsed, by temperature (the
    chance they are back within the horizon), then value: spend, active days, the latest leave (models.ranking.win_back_key).
    ``share`` instead: the budget alternative to the threshold, every user of the list's stages
    ranked the same way and cut at that share of them (models.ranking.daily_list); the save list
    is read from the save-list index when Redis has one for this model
    (:func:`indexed_save_list`), else from every state.

    ``by="mrr"`` (the win-back list only): every lapsed user (as ``share`` 100%), largest lost MRR
    of their own subscription first (:func:`_by_lost_mrr`), then as above, cut to ``n`` or ``share``.
    ``by="value"`` (either list): every user of the list's stages, the largest value at stake
    first (:func:`_by_value`), then as above, cut to ``n`` or ``share``.
    """
    from models.ranking import daily_list

    now_ms = stream_time_ms(reader, settings)
    model = _model(settings, reader)
    if n is None and share is None:
        n = 20
    if by == "mrr" and kind == "win_back":
        return _by_lost_mrr(reader, settings, model, now_ms, n, share)
    if by == "value":
        return _by_value(reader, model, now_ms, kind, n, share)
    if share is None:
        from streams.console.data import at_risk_page

        page = reader.run(lambda store: at_risk_page(store, model, now_ms, kind, n))  # type: ignore[arg-type]
        return _with_lost_mrr(reader, kind, [UserReport(r.user_id, max(now_ms, r.state.last_seen_s * 1000), r.scores, r.state,
                                                        r.savable if kind == "save" else None, overdue_days=_overdue(r.state, now_ms, model))
                                             for r in page.rows])
    if kind == "save" and reader.run(lambda store: store.save_index_model()) == model_id(model):
        ranked = reader.run(lambda store: indexed_save_list(store, settings.topic_events, model, now_ms // 1000, n=n, share=share))
    else:
        if kind == "save":
            logger.info("no save-list index for this model in Redis (store older than the index, or model taken over): "
                        "reading every state")
        ranked = daily_list(reader.user_states().items(), now_ms // 1000, model, kind,  # type: ignore[arg-type]
                            n=n, share=share)
    return _with_lost_mrr(reader, kind, [UserReport(r.user_id, max(now_ms, r.state.last_seen_s * 1000), r.scores, r.state,
                                                    r.savable if kind == "save" else None, overdue_days=_overdue(r.state, now_ms, model))
                                         for r in ranked])


def _by_lost_mrr(reader: StoreReader, settings: Settings, model: ChurnModel, now_ms: int, n: int | None,
                 share: float | None) -> list[UserReport]:
    """The win-back list of a subscription product: every lapsed user, the largest MRR their own
    subscription lost first, the rest (never paid, members of a company account) after, each part
    in the list's own order (the chance to come back, then value). Why (QA14 F5): by the chance
    alone, a fitness app's first 100 rows were trials that never paid; the first lapsed paying
    subscriber came at rank 211. Reads every state and the lapsed users' own accounts, as
    ``--share`` does: a command to run, not the console's page."""
    from models.ranking import daily_list

    ranked = daily_list(reader.user_states().items(), now_ms // 1000, model, "win_back", share=1.0)  # type: ignore[arg-type]
    reports = _with_lost_mrr(reader, "win_back", [UserReport(r.user_id, max(now_ms, r.state.last_seen_s * 1000), r.scores,
                                                             r.state, None, overdue_days=_overdue(r.state, now_ms, model))
                                                  for r in ranked])
    reports.sort(key=lambda r: -(r.lost_mrr_cents or 0))  # stable: the list's order within equal losses
    return reports[:budget_size(len(reports), n, share)] if reports else []


def _by_value(reader: StoreReader, model: ChurnModel, now_ms: int, kind: str, n: int | None,
              share: float | None) -> list[UserReport]:
    """``top --by value``: every user of the ``kind`` list's stages, the largest value at stake
    first (models.ranking.value_at_stake): the save list's savable risk, the win-back list's
    risk (the chance of coming back, the temperature, is about 0 for most lapsed users: a
    whale at temperature 0 came after lapsed 4.99 passes at 3, on QA22b's game its median rank
    fell from 52 to 113), x the user's monthly value, the MRR of their
    own subscription (the win-back list: the MRR its churn took, :func:`_with_lost_mrr`; a member
    of a company account has none of its own) plus their purchases per month; equal values (no
    money: 0) in the list's own order, then cut to ``n`` or ``share``. Why (QA22b F8): a game's
    whales, who buy and hold at most a 4.99 pass, sat at rank 255 of 464 of the save list. Reads
    every state and the users' own accounts, as ``--by mrr`` does."""
    from models.ranking import daily_list, value_at_stake

    now_s = now_ms // 1000
    ranked = daily_list(reader.user_states().items(), now_s, model, kind, share=1.0)  # type: ignore[arg-type]
    reports = _with_lost_mrr(reader, kind, [UserReport(r.user_id, max(now_ms, r.state.last_seen_s * 1000), r.scores, r.state,
                                                       r.savable if kind == "save" else None, overdue_days=_overdue(r.state, now_ms, model))
                                            for r in ranked])
    mrr = [r.lost_mrr_cents or 0 for r in reports] if kind == "win_back" else _own_account_cents(reader, reports, lost=False)
    valued = [replace(r, value_at_stake=value_at_stake(r.savable if r.savable is not None else r.scores.risk,
                                                       cents / 100, r.state, now_s))
              for r, cents in zip(reports, mrr)]
    valued.sort(key=lambda r: -(r.value_at_stake or 0.0))  # stable: the list's order within equal values
    return valued[:budget_size(len(valued), n, share)] if valued else []


def _own_account_cents(reader: StoreReader, reports: list[UserReport], lost: bool) -> list[int]:
    """Per row, in cents, the MRR the user's own account lost when it churned (``lost``:
    ``AccountState.churned``) or pays now (``AccountState.mrr_cents``), read in one round trip (a
    user without ``account_id`` is its own account, keyed by its id); 0 for a member of a company
    account (``ACCOUNT_MEMBER``: the MRR is the company's, its owner's book) and for an account
    whose record cannot be read (its own view says so; a list shows none)."""
    from models.state import ACCOUNT_MEMBER

    out = []
    for r, blob in zip(reports, reader.account_states([r.user_id for r in reports])):
        cents = 0
        if blob and not r.state.flags & ACCOUNT_MEMBER:
            try:
                account = read_account_state(blob)
                cents = account.churned()[0] if lost else account.mrr_cents()
            except UnreadableAccount:
                cents = 0
        out.append(cents)
    return out


def _with_lost_mrr(reader: StoreReader, kind: str, reports: list[UserReport]) -> list[UserReport]:
    """The win-back list's rows with the MRR each user's own account lost when it churned
    (``AccountState.churned``; a user without ``account_id`` is its own account, keyed by its id),
    read in one round trip. Why (QA14 F5): a subscription app's lapsed payers and never-paid
    trials looked alike on the list ("spend" counts purchases only: 0 for every subscriber); the
    figure lets the CRM pick the lapsed payers. A member of a company account
    (``ACCOUNT_MEMBER``) lost nothing of its own: 0 (the company's loss is its owner's book).
    Other lists: unchanged. The order is not changed: it is the chance to come back, then value (models.ranking.win_back_key)."""
    if kind != "win_back" or not reports:
        return reports
    return [replace(r, lost_mrr_cents=lost) for r, lost in zip(reports, _own_account_cents(reader, reports, lost=True))]


def _overdue(state: UserState, now_ms: int, model: ChurnModel) -> float | None:
    """Days the user's next order is overdue by their own rhythm at the row's time (models.signals.days_overdue)."""
    return days_overdue(compute_signals(state, max(now_ms, state.last_seen_s * 1000) // 1000, model))


#: A user due for review this close after "now" is read live: the schedule may see a declining
#: trend up to a minute late (models.lifecycle.next_change_s's tolerance).
_DUE_MARGIN_S = 120


async def indexed_save_list(store: Store, topic: str, model: ChurnModel, now_s: int, *, n: int | None = None,
                            share: float | None = None) -> list[Ranked]:
    """``models.ranking.daily_list(every state, now_s, model, "save", ...)`` without reading every
    state: the users whose review is due are read and assessed live, the others come from the
    save-list index (``cw:{b}:r:<g>``, models.ranking) in descending order of their bound, a k-way
    merge of the index's small sorted sets, until the budget's last row outranks every bound not
    read yet (module docstring of models.ranking). The list's size (the share's base) is the
    ``reachable`` counter, corrected by the due users' live stages."""
    from models.ranking import on_save_list, save_key, save_score

    progress = await store.read_progress(topic)
    due = await store.due_users(topic, sorted(progress), now_s + _DUE_MARGIN_S)
    count = int((await store.stats()).get("reachable", 0))
    rows: dict[str, tuple[float, UserState, Any]] = {}
    for (_, _, uid), st in zip(due, await store.load_users(due)):
        if st is not None:
            count -= on_save_list(st)
            if (key := save_key(st, now_s, model)) is not None:
                count += 1
                rows[uid] = (key[0], st, key[1])
    size = budget_size(count, n, share) if count > 0 else 0
    if size:
        await _merge_index(store, model, now_s, size, rows, {u for _, _, u in due})
    ranked = sorted(rows.items(), key=lambda r: (-r[1][0], r[0]))[:size]
    return [Ranked(uid, scores_from(st, a, model), st, save_score(a)) for uid, (_, st, a) in ranked]


async def _merge_index(store: Store, model: ChurnModel, now_s: int, size: int,
                       rows: dict[str, tuple[float, UserState, Any]], skip: set[str]) -> None:
    """Add to ``rows`` (user -> live risk, state, assessment) the index's users in descending
    order of bound until the ``size``-th live risk is above every bound not loaded yet. Entries
    are cheap (a user id and an integer), states are not: the sets are read a chunk at a time
    (their heads first), and states are loaded only for entries that are the highest left."""
    import heapq

    from models.ranking import save_key

    heap: list[tuple[int, str, int, int]] = []  # (-score, user, bucket, group): read, not loaded
    read: dict[tuple[int, int], int] = {}
    frontier: dict[tuple[int, int], int] = {}  # sets not exhausted: score of the last entry read
    chunk = 1

    async def fetch(sets: list[tuple[int, int]]) -> None:
        parts = await store.reach_ranks([(b, g, read.get((b, g), 0), read.get((b, g), 0) + chunk - 1) for b, g in sets])
        for (b, g), part in zip(sets, parts):
            read[b, g] = read.get((b, g), 0) + len(part)
            frontier.pop((b, g), None)
            if len(part) == chunk:
                frontier[b, g] = part[-1][1]
            for uid, sc in part:
                if uid not in skip:
                    heapq.heappush(heap, (-sc, uid, b, g))

    await fetch([(b, g) for b in range(store.buckets) for g in range(store.groups)])
    while heap or frontier:
        live = sorted((r[0] for r in rows.values()), reverse=True)
        floor = live[size - 1] * REACH_SCALE if len(live) >= size else -1.0
        top_set = max(frontier.values(), default=0)
        top_read = -heap[0][0] if heap else 0
        if max(top_set, top_read) <= floor:
            return  # a bound's user has a live risk below the bound: none left can rank in
        if heap and top_read >= top_set:  # the highest bounds left are read: load a batch from the top
            batch = []
            while heap and len(batch) < max(512, size - len(live)):
                _, uid, b, g = heapq.heappop(heap)
                batch.append((b, g, uid))
            for (_, _, uid), st in zip(batch, await store.load_users(batch)):
                if st is not None and (key := save_key(st, now_s, model)) is not None:
                    rows[uid] = (key[0], st, key[1])
        else:  # some set may hold a higher bound than any read: read on in those
            chunk = min(2 * chunk, 128)  # zset-max-listpack-entries: a set is rarely longer
            await fetch([k for k, f in frontier.items() if f >= top_read and f > floor])


def churn_rate(reader: StoreReader, settings: Settings, days: int) -> dict[str, Any]:
    """Users who churned in the ``days`` UTC days up to the stream time: count, share, revenue
    (each churned user's purchases up to the churn's event time, not those after a comeback:
    ``streams.worker.store.stats_delta``)."""
    from streams.worker.store import churn_summary

    now_ms = stream_time_ms(reader, settings)
    summary = churn_summary(reader.stats(), now_ms // 1000, days)
    return {
        "as_of": format_ts(now_ms),
        "days": days,
        **summary.figures(),  # with, of churned, those back (QA22b F5) and the trials that never paid (QA23a F2)
    }


def revenue_range(period: str, from_ms: int | None, to_ms: int | None, now_ms: int) -> tuple[int, int]:
    """``[from, to)`` of the revenue figures; without ``from_ms``/``to_ms``: the period containing
    ``now_ms`` (the stream time)."""
    if from_ms is None:
        from_ms = period_start_ms(now_ms, period)  # type: ignore[arg-type]
    if to_ms is None:
        to_ms = next_period_ms(period_start_ms(max(from_ms, now_ms), period), period)  # type: ignore[arg-type]
    return from_ms, to_ms


def revenue_figures(totals: dict[int, dict[str, int]], period: str, from_ms: int | None, to_ms: int | None,
                    now_ms: int) -> list[PeriodFigures]:
    """The periods of :func:`revenue_range` from the workers' summed counters (``Store.revenue_totals``)."""
    start, end = revenue_range(period, from_ms, to_ms, now_ms)
    return Ledger.from_totals(period, totals).get(start, end)  # type: ignore[arg-type]


def cohort_rows(counters: dict[str, int], to_ms: int) -> list[CohortRow]:
    """Signup-month cohorts up to ``to_ms`` from the workers' summed counters (``Store.cohort_counters``)."""
    return Cohorts.from_counters(counters).get(to_ms)


def live_revenue(reader: StoreReader, period: str, from_ms: int | None, to_ms: int | None,
                 now_ms: int) -> list[PeriodFigures]:
    """Churn in money and count per period from the workers' live counters (docs/REVENUE.md):
    the same ``models.revenue_ledger.Ledger`` as ``churnwatch report``, filled from Redis.

    Without ``from_ms``/``to_ms``: the period containing ``now_ms`` (the stream time).
    """
    return revenue_figures(reader.revenue_totals(period), period, from_ms, to_ms, now_ms)


def live_cohorts(reader: StoreReader, to_ms: int) -> list[CohortRow]:
    """Retention by signup-month cohort from the workers' live counters: ``churnwatch report``'s
    ``models.revenue_ledger.Cohorts``, with the months up to the one containing ``to_ms - 1``."""
    return cohort_rows(reader.cohort_counters(), to_ms)


def renewal(period_end_ms: int, now_ms: int) -> tuple[str | None, int | None]:
    """(UTC date, days from ``now_ms``'s date to it) of a subscription's period end; (None, None)
    when none is stated. Days count calendar days, so "2026-03-13" seen on 2026-03-01 is 12.

    >>> renewal(1_773_360_000_000, 1_772_323_200_000 + 5 * 3_600_000)
    ('2026-03-13', 12)
    """
    if not period_end_ms:
        return None, None
    return format_ts(period_end_ms)[:10], calendar_days(period_end_ms, now_ms)


def renewal_text(period_end_ms: int, now_ms: int) -> str:
    """What an account manager reads of a period end: "renews 2026-03-13 (in 12 days)"; a period
    end already passed with no renewal stated since says so; "" when none is stated.

    >>> renewal_text(1_773_360_000_000, 1_772_323_200_000), renewal_text(1_773_360_000_000, 1_773_532_800_000)
    ('renews 2026-03-13 (in 12 days)', 'renewal was due 2026-03-13 (2 days ago)')
    """
    day, days = renewal(period_end_ms, now_ms)
    if day is None or days is None:
        return ""
    if days >= 0:
        when = "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"
        return f"renews {day} ({when})"
    return f"renewal was due {day} ({-days} day{'s' if days < -1 else ''} ago)"


@dataclass(frozen=True, slots=True)
class AccountReport:
    """One account as its owner sees it: facts from the accounts table, roll-up from Redis.

    ``renews_ms``: the earliest end at or after ``as_of_ms`` of a paid period of its subscriptions
    (``period_end`` of the events), else the latest one passed ("renewal was due"); 0 = none stated. ``renewal_date`` is the accounts table's (the
    contract's, as the account manager entered it)."""

    account_id: str
    name: str
    owner: str
    renewal_date: str
    rollup: Any  # models.account_health.AccountRollup
    renews_ms: int = 0
    as_of_ms: int = 0
    lost_mrr_cents: int = 0  # a gone account (churned): the MRR its cancellation took; else 0
    left_ms: int = 0  # a gone account (churned, trial_lost): when its subscription went; lapsed: when its last user was seen; else 0
    warned_ms: int = 0  # a gone or lapsed account: when its at-risk alert open at the churn (lapsed: now) opened (warned_before); else 0
    warned_reasons: tuple[str, ...] = ()  # that alert's reasons: what went before the churn
    # an account that is its one user (QA17 F4), judged now: the user's save-list key
    # (models.ranking.save_score), by which the book ranks it as ``churnwatch top`` ranks the user; else None
    savable: float | None = None
    # the stream time the report was asked at; ``as_of_ms`` is earlier when the account side is
    # behind it (:func:`account_time_ms`, QA18 F5); 0: the same as ``as_of_ms``
    stream_ms: int = 0
    # a churned or lost account whose users still use the product: "8 of 9 users still active: its
    # subscriptions ended, not its use" (``models.account_health.still_used_text``, QA22b F7); else ""
    still_used: str = ""

    @property
    def behind_days(self) -> int:
        """Whole days the account side is behind the stream (0: current; :func:`account_time_ms`)."""
        return max(0, self.stream_ms - self.as_of_ms) // _DAY_MS if self.stream_ms else 0

    @property
    def as_of_text(self) -> str:
        """"as of 2026-08-20 18:49 UTC (stream time)", or for an account side behind the stream "as of
        2025-12-17 11:00 UTC, the account side is 246 days behind the stream (2026-08-20 18:49 UTC):
        catching up" (QA18 F5: months-old state was dated with the stream time)."""
        if not self.behind_days:
            return f"as of {format_minute(self.as_of_ms)} UTC (stream time)"
        return (f"as of {format_minute(self.as_of_ms)} UTC, the account side is {self.behind_days} day{'s' if self.behind_days > 1 else ''} behind the stream "
                f"({format_minute(self.stream_ms)} UTC): catching up")

    @property
    def rank(self) -> float:
        """The save list's order, highest first: the user's save-list key for an account that is its
        one user (a lost customer at risk 1.00 whose chance to be alive is 0 is no call to make first:
        ``top`` ranks it low), else the account's risk."""
        return self.savable if self.savable is not None else self.rollup.risk

    @property
    def at_stake_cents(self) -> int:
        """The win-back list's money: the MRR the churn took, or for a lapsed account (every user
        gone, the subscription running: QA16 F11) the MRR it still pays, what its leaving will take."""
        return self.rollup.mrr_cents if self.rollup.stage == "lapsed" else self.lost_mrr_cents

    @property
    def left_on(self) -> str:
        """The win-back list's "left on" cell: the day the account left ("-" unknown), or for a lapsed
        one, which has lost nothing yet, "still paying 74.50, renews on 2026-12-01 (in 62 d)" (QA18
        F1: such rows read "lost MRR 74.50, left on 2026-08-24" among accounts gone for months).

        >>> from models.account_health import AccountRollup
        >>> r = AccountRollup(0, 12, 0.88, "lapsed", 1, 1, 0.0, 7450, (), "win back")
        >>> AccountReport("a", "", "", "2026-03-22", r, 0, 1_772_323_200_000, 0, 1_770_000_000_000).left_on
        'still paying 74.50, renews on 2026-03-22 (in 21 d)'
        """
        if self.rollup.stage != "lapsed":
            return format_ts(self.left_ms)[:10] if self.left_ms else "-"
        renews = self.next_renewal
        return f"still paying {self.rollup.mrr_cents / 100:.2f}" + (f", renews on {renews}" if renews != "-" else "")

    @property
    def lost_cell(self) -> str:
        """The win-back list's "lost MRR" cell: "-" for a lapsed account, still paying (:attr:`left_on` says what)."""
        return "-" if self.rollup.stage == "lapsed" else f"{self.lost_mrr_cents / 100:.2f}"

    @property
    def renews(self) -> str:
        """"renews 2026-03-13 (in 12 days)", or "" when no subscription states a period end."""
        return renewal_text(self.renews_ms, self.as_of_ms)

    @property
    def next_renewal(self) -> str:
        """The book's renewal column: the contract's date (accounts table) when it has one, else the
        paid period's end the statements gave (the rule of ``account_alerts.renewal_ms``), as
        "2026-03-22 (in 21 d)", "2026-03-01 (today)", "2026-03-13 (2 d ago)", or "-" when neither is
        known. Days count calendar days (``renewal``), as the "renewal in N days" reason does. An
        account whose subscription is gone (churned, trial lost) renews nothing: "-", whatever the
        table's contract date (QA20a F9: a cancelled annual account read "2027-08-31 (in 321 d)").

        >>> now = 1_772_323_200_000  # 2026-03-01
        >>> [AccountReport("a", "", "", table, None, stated, now).next_renewal
        ...  for table, stated in (("2026-03-22", 1_773_360_000_000), ("", 1_773_360_000_000), ("2026-03-01", 0), ("", 0),
        ...                        ("2026-02-20", 0), ("2026-02-20", 1_773_360_000_000))]
        ['2026-03-22 (in 21 d)', '2026-03-13 (in 12 d)', '2026-03-01 (today)', '-', '2026-02-20 (9 d ago)', '2026-03-13 (in 12 d)']

        A table date passed is shown as overdue until the statements renew the account beyond it,
        then their end is (QA24b F7: "2026-08-10 (82 d ago)" for a school paid to 2027-08-10).
        >>> from models.account_health import rollup
        >>> from models.revenue import AccountView
        >>> gone = rollup([], AccountView(0, False, "cancelled", (), 0, 0, 0, 1), None, 0, now // 1000)
        >>> gone.stage, AccountReport("a", "", "", "2027-08-31", gone, 0, now).next_renewal
        ('churned', '-')
        """
        from streams.timefmt import parse_ts_ms

        if self.rollup is not None and self.rollup.stage in GONE_STAGES:
            return "-"
        from streams.worker.account_alerts import contract_or_renewed_ms

        table_ms = parse_ts_ms(self.renewal_date) if self.renewal_date else 0
        day, days = renewal(contract_or_renewed_ms(table_ms, self.renews_ms, self.as_of_ms), self.as_of_ms)
        if day is None or days is None:
            return "-"
        return f"{day} (today)" if days == 0 else f"{day} (in {days} d)" if days > 0 else f"{day} ({-days} d ago)"

    def to_dict(self) -> dict[str, Any]:
        r = self.rollup
        renews_on, renews_in_days = renewal(self.renews_ms, self.as_of_ms)
        return {"account_id": self.account_id, "name": self.name, "owner": self.owner, "renewal_date": self.renewal_date,
                "renews_on": renews_on, "renews_in_days": renews_in_days,
                "risk": r.risk, **({"savable": round(self.savable, 4)} if self.savable is not None else {}), "health": r.health, "temperature": r.temperature, "stage": r.stage,
                "mrr": r.mrr_cents / 100, "users": r.users, "silent_users": r.silent, "usage": r.usage,
                "action": r.action, "reasons": list(r.reasons),
                "lost_mrr": self.lost_mrr_cents / 100, "left_on": format_ts(self.left_ms)[:10] if self.left_ms else None,
                "warned_on": format_ts(self.warned_ms)[:10] if self.warned_ms else None, "warned_reasons": list(self.warned_reasons),
                "account_as_of": format_ts(self.as_of_ms), "account_behind_days": self.behind_days,
                **({"still_used": self.still_used} if self.still_used else {}),
                # a user's own account seen through no member: its figures are its billing's alone, as
                # its alerts say (QA23a F3: a silent annual subscriber's account read risk 0.0,
                # temperature 100, action none; the user's own page judges its use)
                **({"usage_unknown": True} if not r.usage_known else {})}


def warned_before(extras: Mapping[str, Any], left_ms: int) -> tuple[int, tuple[str, ...]]:
    """(when, reasons) of the ``account_at_risk`` alert still open when a gone account left, from
    the account's alert list (``alert_log``, newest first), or (0, ()) when none was: the win-back
    call's context. QA15 F9: a win-back row's only reason was "subscription cancelled", though the
    account had been at risk for weeks with "6 of 12 users silent for 2 weeks"; what went before is
    what the call is about. An alert closed by a recovery before the churn is not "open".

    >>> log = [["c", "account_churned", 90, "churned", 1.0, ["subscription cancelled"]],
    ...        ["a", "account_at_risk", 50, "at_risk", 0.7, ["2 of 3 users silent for 2 weeks"]]]
    >>> warned_before({"log": log}, 90)
    (50, ('2 of 3 users silent for 2 weeks',))
    >>> warned_before({"log": [log[0], ["r", "account_recovered", 70, "active", 0.2, []], log[1]]}, 90)
    (0, ())
    """
    from streams.worker.alert_log import EXTRAS_FIELD, decode_entries

    for e in decode_entries(extras.get(EXTRAS_FIELD) or ()):
        if e["event_time_ms"] > left_ms or e["kind"] in ("account_churned", "trial_ending"):
            continue
        if e["kind"] == "account_at_risk":
            return e["event_time_ms"], tuple(str(r) for r in e["reasons"])
        return 0, ()  # a recovery (or anything else) closed what went before
    return 0, ()


def account_subscriptions(state: Any, now_ms: int) -> list[dict[str, Any]]:
    """An account's subscriptions (``models.revenue.AccountState`` or None), largest MRR first:
    plan, status, MRR, since when, and for a paid one its period end (a cancelled, trial or free
    one renews nothing: QA22a F8). The console's and ``churnwatch accounts show``'s table."""
    subs = [] if state is None else sorted(state.subs.values(), key=lambda s: -s.sub.mrr_cents)
    out = []
    for s in subs:
        paid = s.sub.status in ("active", "past_due") and s.sub.mrr_cents > 0
        renews_on, renews_in_days = renewal(s.sub.period_end_ms if paid else 0, now_ms)
        out.append({"plan": s.sub.plan, "status": s.sub.status, "mrr": s.sub.mrr_cents / 100, "since": format_ts(s.since_ms),
                    "renews_on": renews_on, "renews_in_days": renews_in_days})
    return out


class UnreadableAccount(UnreadableState):
    """One account's stored revenue state cannot be read (damaged, or of a newer format): a view of
    that one account says so (the CLI one line, the console 409, as for a user); views of many
    accounts leave it out (one WARNING a call with their count). The worker starts it afresh at its
    next copy (streams.worker.revenue)."""


def read_account_state(blob: bytes | None) -> Any:
    """The ``models.revenue.AccountState`` of a stored record (None when there is none), or
    :class:`UnreadableAccount` saying what is there.

    >>> try:
    ...     read_account_state(b"\\x09abc")
    ... except UnreadableAccount as exc:
    ...     print(exc)
    the stored revenue state of this account cannot be read (format v9, 4 bytes): it will start afresh at its next subscription event
    """
    import struct

    from models.revenue import AccountState

    if not blob:
        return None
    try:
        return AccountState.from_bytes(blob)
    except (ValueError, struct.error) as exc:
        logger.debug("unreadable account record: %s", exc)
        raise UnreadableAccount(f"the stored revenue state of this account cannot be read (format v{blob[0]}, {len(blob)} bytes):"
                                " it will start afresh at its next subscription event") from exc


#: The least time an account's pending review must be overdue before its views say the account
#: side is behind (:func:`overdue_reviews` adds what the watermark lags by design).
BEHIND_MS: Final[int] = _DAY_MS


def account_time_ms(extras: Mapping[str, Any], due_s: int | None, now_ms: int) -> int:
    """The time an account's views are as of: the stream time ``now_ms``, unless the account side
    is behind it: the account's next review (``due_s``, its partition's review index, swept as the
    account watermark passes; the callers pass only an overdue one, :func:`overdue_reviews`) is more
    than :data:`BEHIND_MS` before ``now_ms``, so its members,
    subscription and deadlines are applied only up to the account's own time (``seen_ms`` in its
    extras: the latest copy or review it judged), not to now. QA18 F5: mid-replay, the account side
    at 2025-12-17 and the users' partitions in August, a healthy 16-seat account read "lapsed ... all
    16 users silent for 35 weeks" as of the stream time.

    >>> day = 86_400_000
    >>> account_time_ms({"seen_ms": 5 * day}, 6 * 86_400, 200 * day) // day, account_time_ms({"seen_ms": 5 * day}, None, 200 * day) // day
    (5, 200)
    """
    seen = int(extras.get("seen_ms", 0) or 0)
    if due_s is not None and due_s * 1000 < now_ms - BEHIND_MS and 0 < seen < now_ms:
        return seen
    return now_ms


def overdue_reviews(reader: StoreReader, settings: Settings, accounts: list[str], now_ms: int) -> dict[str, int]:
    """account -> its next review second in its partition's review index, for the accounts whose
    review is overdue at ``now_ms`` by more than the account watermark lags by design: the allowed
    lateness and the hour it is floored to, plus the grace it waits for a slower partition
    (``CHURNWATCH_ACCOUNT_GRACE_MS``, 7 days: docs/REVENUE.md "Order of the copies"), at least
    :data:`BEHIND_MS`. Further behind, even the most advanced partition's copies are unread: the
    account side is catching up a backlog (a replay), and its state is of then, not of now. Within
    it (a quiet partition at the end of a history), the account is judged at the stream time."""
    slack_ms = _behind_slack_ms(settings)
    return {a: s for a, s in reader.account_dues(settings.topic_events, accounts).items() if s * 1000 < now_ms - slack_ms}


def _behind_slack_ms(settings: Settings) -> int:
    """How far an account's review may lag the stream time by design (:func:`overdue_reviews`)."""
    return max(BEHIND_MS, settings.account_grace_ms + settings.allowed_lateness_ms + 3_600_000)


def account_side_behind_ms(reader: StoreReader, settings: Settings, now_ms: int) -> int:
    """How far behind ``now_ms`` the account side is as a whole: its earliest pending review, when
    that is overdue by more than :func:`overdue_reviews`' slack (a replay catching up), else 0.
    Why (QA24b F2): the live MRR counters move with the account watermark; mid-catch-up
    ``churn-rate`` printed a school platform's August as "churned 0.00, lost 0" (the truth 26,181.00,
    17 schools) while ``accounts show`` said the account side was 280 days behind."""
    return behind_of(reader.earliest_account_due(settings.topic_events), settings, now_ms)


def behind_of(first: int | None, settings: Settings, now_ms: int) -> int:
    """:func:`account_side_behind_ms` from the earliest pending account review (second, None: none;
    ``Store.earliest_account_due``): the console reads it asynchronously, the CLI through its reader."""
    if first is None or first * 1000 >= now_ms - _behind_slack_ms(settings):
        return 0
    return now_ms - first * 1000


def behind_note(behind_ms: int, now_ms: int) -> str:
    """The note for MRR figures read while the account side catches up a backlog, "" when it is
    current. The money counters move with the account watermark, so mid-replay they hold only the
    statements up to the account side's time (QA24b F2: a school platform's August read "churned
    0.00, lost 0", the truth 26,181.00 and 17 schools, with no word).

    >>> behind_note(3 * 86_400_000, 10 * 86_400_000)[:128], behind_note(0, 10 * 86_400_000)
    ('the account side is 3 days behind the stream time (catching up a backlog): the MRR figures count the statements up to about 1970', '')
    """
    if not behind_ms:
        return ""
    from streams.timefmt import format_minute

    return (f"the account side is {behind_ms // 86_400_000:,} days behind the stream time (catching up a backlog): the MRR figures "
            f"count the statements up to about {format_minute(now_ms - behind_ms)} UTC only; run it again once "
            "`churnwatch accounts show ACCOUNT` no longer says \"catching up\"")


def account_report(reader: StoreReader, account_id: str, facts: dict[str, Any], now_ms: int,
                   model: ChurnModel | None = None, due_s: int | None = None) -> AccountReport | None:
    """The account's roll-up at ``now_ms`` (stream time), or at the account's own time when its
    account side is behind (:func:`account_time_ms`; ``due_s`` its next review second, None: none,
    :func:`overdue_reviews`), or None when Redis knows nothing of it;
    :class:`UnreadableAccount` when its stored state cannot be read. With ``model``, an account that
    is its one user is rolled up with that user as judged now (:func:`_sole_now`, QA17 F4)."""
    import orjson

    from models.account_health import Member, still_used_text
    from streams.timefmt import parse_ts_ms
    from streams.worker.account_alerts import account_rollup, renewal_ms, stated_view
    from streams.worker.accounts import quiet_periods

    blob, extras, members = reader.load_account(account_id)
    if blob is None and not members:
        return None
    renewal_date = facts.get("renewal_date") or ""
    state = read_account_state(blob)
    more = orjson.loads(extras) if extras else {}
    stream_ms, now_ms = now_ms, account_time_ms(more, due_s, now_ms)
    kept, said, savable = _sole_now(reader, account_id, [Member.from_bytes(v) for v in members.values()], now_ms, model)
    quiet = quiet_periods({account_id: facts}).get(account_id, ())  # in its quiet period: not ranked as a fall (QA18 F3)
    r = account_rollup(state, more, kept,
                       renewal_ms(state, now_ms, parse_ts_ms(renewal_date) if renewal_date else 0), now_ms, account_id, said, quiet)
    # a gone account renews nothing (QA22a F8: a paying account moved to a free plan read "renews 2026-11-06 (in 6 days)")
    renews_ms = state.get().renewal_shown_ms(now_ms) if state is not None and r.stage not in GONE_STAGES else 0
    lost, left = _left(state) if r.stage in GONE_STAGES else (0, 0)
    warned = warned_before(more, left) if r.stage in GONE_STAGES else (0, ())
    if r.stage == "lapsed":  # every user gone, the subscription running (QA16 F11): left when the last one was seen
        left = max((m.last_seen_s for m in kept), default=0) * 1000
        warned = warned_before(more, now_ms)  # the at-risk alert still open, if one is
    still = still_used_text(kept, stated_view(state), now_ms // 1000) if r.stage in GONE_STAGES else ""  # QA22b F7
    return AccountReport(account_id, facts.get("name") or "", facts.get("owner") or "", renewal_date, r, renews_ms, now_ms,
                         lost, left, *warned, savable, stream_ms, still)


def member_now(m: Any, state: UserState | None, now_ms: int, model: ChurnModel, *, open_risk: bool = False) -> Any:
    """The member ``m`` (``models.account_health.Member``) with its user's stage, last event and
    risk now, as its user page shows them (``models.scoring.assess`` at ``now_ms``, or at the
    user's last event if later); ``open_risk``: the risk of its open at-risk alert, 0 while none is
    open (what the member record keeps and the account's rules read), else the risk shown. A user
    with no tracked state (none, or billing statements alone): the record as kept."""
    from models.scoring import assess
    from models.state import STAGES

    if state is None or state.n_events == 0:
        return m
    a = assess(state, max(now_ms, state.last_seen_s * 1000) // 1000, model)
    risk = a.risk if not open_risk or state.at_risk_since_s else 0.0
    return replace(m, risk=risk, last_seen_s=state.last_seen_s, stage=STAGES.index(a.stage))


def _sole_now(reader: StoreReader, account: str, members: list[Any], now_ms: int,
              model: ChurnModel | None) -> tuple[list[Any], tuple[str, ...], float | None]:
    """An account that is its one user (``models.account_health.sole_member``) with that member as its
    user is judged now, the user's own reasons while its at-risk alert is open, for the roll-up, and
    the user's save-list key (``models.ranking.save_score``), for the book's order (QA17 F4): the
    member record is as of the user's last active hour, so a customer whose own alert opened in
    silence (a re-order overdue) or who went dormant by its own rhythm since would read as it was
    then. A user no longer in Redis was forgotten after it churned (its retention, docs/OPERATE.md):
    gone (QA17: a customer who churned in March, its record gone, read "at risk by its own alert"
    from its last copy). Other accounts, or without ``model``: as kept, no reasons, no key."""
    from models.account_health import sole_member
    from models.ranking import save_score
    from models.scoring import assess
    from models.state import STAGES

    sole = sole_member(members, account)
    if model is None or sole is None or not sole.user_id:
        return members, (), None
    try:
        state = reader.load_user(sole.user_id)
    except UnreadableState:  # the user's own view says so; the account keeps the record
        return members, (), None
    if state is None:
        return [replace(sole, stage=STAGES.index("churned"), risk=0.0)], (), None
    now = member_now(sole, state, now_ms, model, open_risk=True)
    if now is sole:  # billing statements alone: the record as kept
        return members, (), None
    a = assess(state, max(now_ms, state.last_seen_s * 1000) // 1000, model)
    return [now], tuple(scores_from(state, a, model).reasons) if now.risk > 0 else (), save_score(a)


def _left(state: Any) -> tuple[int, int]:
    """(MRR lost in cents, when) of an account whose subscription is gone, from its revenue state
    (``models.revenue.AccountState``): the churn that took its MRR to 0 (``churned``: not the
    latest change, which with several subscriptions can be another one's later cancellation); a
    trial cancelled without paying (or a record that predates the kept churn) lost 0 at its latest
    change; (0, 0) when there is no state. The win-back list's order: an account manager calls the
    largest loss, the most recent, first (QA 2026-12-02: the list was in account-id order, all at
    risk 1.00)."""
    if state is None:
        return 0, 0
    lost, when = state.churned()
    return lost, when or state.at_ms


#: The stages each list of an owner's book can hold (the console's Stage filter offers these):
#: the save list's accounts are all at risk; the win-back list's churned or lost trials.
BOOK_STAGES: dict[str, tuple[str, ...]] = {"save": ("at_risk",), "win_back": WIN_BACK_STAGES}


def account_book(reader: StoreReader, settings: Settings, owner: str, n: int, *, at_risk_only: bool = True,
                 now_ms: int | None = None, table: dict[str, dict[str, Any]] | None = None,
                 churned_only: bool = False, behind: list[int] | None = None) -> list[AccountReport]:
    """The owner's accounts from the accounts table, ranked by risk (highest first; an account that
    is its one user by that user's save-list key, as ``churnwatch top`` ranks it: ``AccountReport.rank``), equal risks by
    the MRR at stake (largest first: QA6 L6 found a 899.94/month customer 11th of 12, behind
    19.99 ones of the same risk, in account-id order), then by id; by default
    only those at risk (stage ``at_risk``: risk at least ``models.account_health.ACCOUNT_AT_RISK``,
    subscription not gone); ``churned_only``: only those whose subscription is gone (churned, and
    trials lost without paying: ``GONE_STAGES``) or whose users are all gone while it still runs
    (``lapsed``, QA16 F11: ``WIN_BACK_STAGES``), to win back (the console's win-back tab and
    ``churnwatch top --owner --win-back``), ranked by the MRR they took (a lapsed account: the MRR
    it still pays, what leaving will take), then the latest to leave, then health. ``table``: the accounts table already read (the console keeps
    one), else read here. ``behind``: given, gets the days each of the owner's accounts is behind the
    stream (``AccountReport.behind_days``), listed or not (a book of "0 at risk" may be months old)."""
    from streams.worker.accounts import read_accounts

    table = table if table is not None else read_accounts(settings)
    mine = {a: f for a, f in table.items() if (f.get("owner") or "") == owner}
    if not mine:
        raise UserError(f"no account in {settings.topic_accounts!r} has owner {owner!r}")
    now = now_ms if now_ms is not None else stream_time_ms(reader, settings)
    model = _model(settings, reader)  # an account that is its one user: judged as that user now (QA17 F4)
    out, bad = [], 0
    dues = overdue_reviews(reader, settings, sorted(mine), now)  # an account side behind the stream (QA18 F5)
    for a, f in sorted(mine.items()):
        try:
            r = account_report(reader, a, f, now, model, dues.get(a))
        except UnreadableAccount:
            bad += 1
            continue
        if r is not None:
            out.append(r)
    if behind is not None:
        behind += [r.behind_days for r in out]
    if bad:  # a damaged record (or one of a newer format) breaks no list; no account id in logs
        logger.warning("%s account(s) with an unreadable stored state left out of the book", bad)
    if churned_only:
        out = [r for r in out if r.rollup.stage in WIN_BACK_STAGES]
        out.sort(key=lambda r: (-r.at_stake_cents, -r.left_ms, -r.rollup.health, r.account_id))
        return out[:n]
    if at_risk_only:
        out = [r for r in out if r.rollup.stage == "at_risk"]
    out.sort(key=lambda r: (-r.rank, -r.rollup.mrr_cents, r.account_id))
    return out[:n]
