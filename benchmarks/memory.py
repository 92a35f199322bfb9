"""Redis bytes per tracked user: realistic user states written through the worker's own write path.

Why not the worker: 1M users through Kafka would take minutes and measure the same bytes. The
states are real engine output: a simulated population (streams.offline.simulate) is advanced to the end
of its window with ``models.engine.advance``; user ``i`` of the 1M gets the state, due time, risk
and stats delta of simulated user ``i mod n`` under its own id, its partition from Kafka's
default partitioner (murmur2, as the publisher's clients do) and its bucket and group from
streams.worker.keys, and everything is written with ``streams.worker.store.Store.write`` (the fenced
``write_batch`` script the worker runs). Users whose simulated state the engine would already
drop (churned past retention) are not templates: the store would not hold them either.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import redis as redis_lib
from kafka.partitioner.default import murmur2

from benchmarks.observe import flush_sync
from models.engine import advance
from models.events import Event
from models.model import ChurnModel, load_model
from streams.worker.history import advance_sampled
from streams.worker.keys import locate
from streams.worker.phases import index_scores
from streams.settings import Settings
from streams.worker.store import BucketWrite, StateWrite, Store, stats_delta

__all__ = ["AccountTemplate", "Template", "account_templates", "templates_from", "measure_account_memory", "measure_memory", "memory_growth",
           "measure_top_share", "kafka_partition", "write_users"]

CHUNK_USERS = 10_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Template:
    """One simulated user's stored records: state, due time, at-risk index score, stats delta
    and, with ``history=True``, the weekly score-history points (streams.worker.history)."""

    blob: bytes
    due_s: int
    risk: float | None
    stats: tuple[tuple[str, float], ...]
    reach: float | None = None  # save-list index score (streams.worker.phases.index_scores)
    points: tuple[bytes, ...] = ()  # weekly score history (streams.worker.history), with history=True


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java client, kafka-python, aiokafka) picks."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def templates_from(events: Sequence[Event], end_ms: int, model: ChurnModel | None = None, *,
                   history: bool = False, period_end_day: int = 0, flags: int = 0) -> list[Template]:
    """Every simulated user's state at ``end_ms`` as the worker would store it; with ``history``
    also the weekly score history, advanced as the worker does (``advance_sampled``); with
    ``period_end_day`` (a day number, models.state) every state also knows the end of its paid
    period, as a subscription statement would set it (record format 5: 2 bytes more); with
    ``flags`` (models.state PAYS_SUBSCRIPTION, ACCOUNT_MEMBER) every state carries them, as a
    paying statement or an event naming a company account would set them (record format 7: the
    size of format 4, the flags in its slot count's byte; format 6, until 2026-12-05, was 3 bytes
    more)."""
    model = model or load_model()
    by_user: dict[str, list[Event]] = collections.defaultdict(list)
    for ev in events:
        by_user[ev.user_id].append(ev)
    out: list[Template] = []
    for uid, evs in by_user.items():
        if history:
            res, points = advance_sampled(uid, None, evs, end_ms, model)
        else:
            res, points = advance(uid, None, evs, end_ms, model), []
        if res.expire:
            continue
        st = res.state
        if period_end_day:
            st.period_end_day = period_end_day
        st.flags |= flags
        risk, reach, _ = index_scores(None, st, end_ms, model)
        stats: dict[str, float] = {}
        stats_delta(None, st, res.alerts, stats)
        out.append(Template(st.to_bytes(), st.next_review_s, risk, tuple(stats.items()), reach, tuple(points)))
    return out


async def write_users(settings: Settings, templates: Sequence[Template], users: int, topic: str, partitions: int) -> float:
    """Users ``user-00000000``.. as copies of the templates, through ``Store.write`` (the worker's
    write and history scripts), in chunks of ``CHUNK_USERS``; returns the seconds it took."""
    store = Store(settings)
    await store.connect()
    try:
        t0 = time.perf_counter()
        buckets, groups = store.buckets, store.groups
        fields = [f"{topic}:{p}" for p in range(partitions)]
        for chunk, start in enumerate(range(0, users, CHUNK_USERS)):
            writes: dict[int, BucketWrite] = {}
            parts: dict[int, set[int]] = collections.defaultdict(set)
            for i in range(start, min(users, start + CHUNK_USERS)):
                uid = f"user-{i:08d}"
                t = templates[i % len(templates)]
                b, g = locate(uid, buckets, groups)
                p = kafka_partition(uid.encode(), partitions)
                w = writes.get(b)
                if w is None:
                    w = writes[b] = BucketWrite(b, [])
                parts[b].add(p)
                w.states.append(StateWrite(g, uid, t.blob, fields[p], t.due_s, t.risk, t.reach))
                w.history.extend((g, uid, point) for point in t.points)
                for k, v in t.stats:
                    w.stats[k] = w.stats.get(k, 0) + v
            for b, w in writes.items():
                w.parts = [(fields[p], "", "") for p in sorted(parts[b])]  # no offsets: the fence holds at ""
            fenced = await store.write(list(writes.values()), f"bench-memory-{chunk}")
            if fenced:
                raise RuntimeError(f"memory benchmark write fenced: {fenced[0]}")
        return time.perf_counter() - t0
    finally:
        await store.close()


def _usage_by_kind(client: redis_lib.Redis, prefix: str) -> tuple[dict[str, int], dict[str, collections.Counter[str]], dict[str, int]]:
    """MEMORY USAGE (exact: SAMPLES 0) and OBJECT ENCODING of every key, by kind of key."""
    usage: dict[str, int] = collections.defaultdict(int)
    encodings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    counts: dict[str, int] = collections.defaultdict(int)
    keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=2000)]
    for i in range(0, len(keys), 1000):
        chunk = keys[i:i + 1000]
        pipe = client.pipeline(transaction=False)
        for k in chunk:
            pipe.memory_usage(k, samples=0)
            pipe.object("encoding", k)
        replies = pipe.execute()
        for j, k in enumerate(chunk):
            kind = _kind(k)
            usage[kind] += int(replies[2 * j] or 0)
            enc = replies[2 * j + 1]
            encodings[kind][enc.decode() if isinstance(enc, bytes) else str(enc)] += 1
            counts[kind] += 1
    return dict(usage), dict(encodings), dict(counts)


def _kind(key: str) -> str:
    if ":u:" in key:
        return "user hashes"
    if ":due:" in key:
        return "due index zsets"
    if key.endswith(":risk"):
        return "at-risk zsets"
    if ":r:" in key:
        return "save-list index zsets"
    if key.endswith(":stats"):
        return "stats hashes"
    if key.endswith(":off"):
        return "offset hashes"
    return "other"


def measure_memory(redis_url: str, templates: Sequence[Template], users: int, *, topic: str = "activity-events",
                   partitions: int = 8) -> dict[str, Any]:
    """Write ``users`` users into a flushed Redis; bytes per user and where they go."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        flush_sync(client)
        settings = Settings(redis_url=redis_url)
        asyncio.run(_connect_only(settings))  # meta + scripts, so "before" already holds them
        before = client.info("memory")
        seconds = asyncio.run(write_users(settings, templates, users, topic, partitions))
        after = client.info("memory")
        usage, encodings, counts = _usage_by_kind(client, settings.key_prefix)
        server = client.info("server")
        config = client.config_get("*-max-listpack-*")
    finally:
        client.close()
    grown = int(after["used_memory"]) - int(before["used_memory"])
    per_user = grown / users
    total_usage = sum(usage.values()) or 1
    at_risk = sum(1 for i in range(users) if templates[i % len(templates)].risk is not None)
    due = sum(1 for i in range(users) if templates[i % len(templates)].due_s)
    reach = sum(1 for i in range(users) if templates[i % len(templates)].reach is not None)
    rows: dict[str, Any] = {
        "users": users,
        "user_id_example (length)": f"user-00000001 ({len('user-00000001')} chars)",
        "state_record_bytes": len(templates[0].blob),
        "simulated_templates": len(templates),
        "users_in_due_index_pct": round(100 * due / users, 1),
        "users_at_risk_pct": round(100 * at_risk / users, 1),
        "users_on_save_list_pct": round(100 * reach / users, 1),
        "used_memory_growth_mb": round(grown / 2**20, 1),
        "bytes_per_user": round(per_user),
        "rss_growth_mb": round((int(after["used_memory_rss"]) - int(before["used_memory_rss"])) / 2**20, 1),
        "write_states_per_s (Store.write, one client)": round(users / seconds),
        "server": f"{server.get('server_name', 'redis')} {server.get('valkey_version', server.get('redis_version'))}",
        "listpack_limits": ", ".join(f"{k}={v}" for k, v in sorted(config.items())),
    }
    for kind in sorted(usage, key=lambda k: -usage[k]):
        share = usage[kind] / total_usage
        enc = ", ".join(f"{n} {e}" for e, n in encodings[kind].most_common())
        rows[f"{kind}: keys / share / bytes per user / encoding"] = (
            f"{counts[kind]} / {100 * share:.1f}% / {usage[kind] / users:.0f} / {enc}"
        )
    return rows


def measure_top_share(redis_url: str, now_ms: int, share: float = 0.02, *, topic: str = "activity-events",
                      partitions: int = 8, redis_pid: int | None = None) -> dict[str, Any]:
    """``churnwatch top --share`` on the users :func:`measure_memory` wrote, at ``now_ms``: the
    save-list index (``streams.views.indexed_save_list``) against ranking every stored state
    (the path it replaced), same state, same answer checked."""
    from benchmarks.observe import cpu_seconds
    from models.ranking import daily_list
    from streams.views import indexed_save_list

    model = load_model()

    async def run() -> dict[str, Any]:
        store = Store(Settings(redis_url=redis_url))
        await store.connect()
        try:
            await store.write_progress(topic, {p: (0, now_ms) for p in range(partitions)})
            timed: dict[str, tuple[float, float, float, list[str]]] = {}
            for name in ("index", "every state"):
                r0 = cpu_seconds(redis_pid) if redis_pid else 0.0
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "index":
                    rows = await indexed_save_list(store, topic, model, now_ms // 1000, share=share)
                else:
                    rows = daily_list((await store.user_states()).items(), now_ms // 1000, model, "save", share=share)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                redis_cpu = (cpu_seconds(redis_pid) - r0) if redis_pid else float("nan")
                timed[name] = (wall, cpu, redis_cpu, [r.user_id for r in rows])
            return timed
        finally:
            await store.close()

    timed = asyncio.run(run())
    (iw, ic, ir, irows), (aw, ac, ar, arows) = timed["index"], timed["every state"]
    if irows != arows:
        raise RuntimeError("top --share from the index differs from ranking every state")
    return {
        f"top --share {share:g}: rows (same from both paths)": len(irows),
        "top --share from the index: wall s / client CPU s / Redis CPU s": f"{iw:.2f} / {ic:.2f} / {ir:.2f}",
        "top --share reading every state: wall s / client CPU s / Redis CPU s": f"{aw:.2f} / {ac:.2f} / {ar:.2f}",
        "top --share: every state / index, wall": round(aw / iw, 1) if iw else None,
    }


async def _connect_only(settings: Settings) -> None:
    store = Store(settings)
    try:
        await store.connect()
    finally:
        await store.close()


# -- accounts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountTemplate:
    """What the account phase keeps of one simulated account: state record, extras, members, the
    alert side's own state record (``cw:{b}:aside``) and the next review (the account due index)."""

    state: bytes | None
    extras: bytes
    members: tuple[tuple[bytes, bytes], ...]
    side: bytes | None = None
    due_s: int = 0


def account_templates(seed: int, n_accounts: int, start_ms: int, days: int, model: ChurnModel | None = None) -> list[AccountTemplate]:
    """Simulated accounts (streams.offline.simulate_accounts) as the worker's account phase leaves
    them at the window's end: their subscription events and their users' member copies through
    ``advance_accounts``, together, in event order, as the account partition's owner applies them,
    then each account reviewed up to the end (an ``AccountTick`` there: its deadlines before it,
    a member turning silent, a reminder, as the account due index would have swept them; the
    users' templates are advanced to the end too).

    The member copies are what the user side sends (``streams.worker.members.member_versions``:
    one per user and active period, the user as of its last event there, dated at its first), so
    the alert side judges each account with the members it had *at that time*: one call applies
    them, with the watermark off (nothing held), as cycles would, since the account's alerts do
    not depend on how its copies are cut (streams.worker.revenue). The members stored are the
    ones those copies left (the latest version of each user seen active), and a user who never
    came has none, as in a deployment: only the accounts nobody used yet look unused. Each template
    also keeps what the worker writes beside them: the alert side's own state record and the
    account's next review after the end (the due index; 0: none).

    Why not the subscriptions alone (until 2026-12-03): with no member at all every trial looked
    unused, and since a trial nobody used is at risk (models.account_health, QA pass 4), each
    simulated trial opened ``account_at_risk`` and closed it with ``account_recovered`` on
    converting, and its reminders carried reasons: the alert lists in the extras grew to 396 bytes
    a template (176 before), 779 bytes an account (559), none of which a deployment stores."""
    from streams.offline.simulate_accounts import generate_accounts
    from streams.worker.members import member_versions
    from streams.worker.revenue import AccountCopy, AccountReadResult, AccountTick, MemberCopy, advance_accounts, plan_account_reads

    model = model or load_model()
    sim = generate_accounts(seed, n_accounts, start_ms, days)
    by_user: dict[str, list[Event]] = collections.defaultdict(list)
    for ev in sim.events:
        by_user[ev.user_id].append(ev)
    timed: list[tuple[int, Event | tuple[str, Any]]] = [(ev.ts_ms, ev) for ev in sim.events if ev.subscription is not None]
    for uid, evs in by_user.items():
        account = next((ev.account_id for ev in reversed(evs) if ev.account_id), "")  # the worker's member_of
        if account:  # a user without an account is its own: no member copy (streams.worker.members)
            timed += [(ts_ms, (account, member)) for ts_ms, member in member_versions(uid, None, evs, model)]
    timed.sort(key=lambda t: t[0])  # the account partition's order: offsets in event time
    copies: list[AccountCopy | MemberCopy | AccountTick] = [
        AccountCopy(0, i, what) if isinstance(what, Event) else MemberCopy(0, i, what[0], ts_ms, what[1])
        for i, (ts_ms, what) in enumerate(timed)]
    end_ms = start_ms + days * 86_400_000
    copies += [AccountTick(0, a, end_ms) for a in sim.accounts]  # reviewed up to the end, as the due index would
    reads = plan_account_reads(copies, "t", 64)
    done = advance_accounts(copies, reads, [AccountReadResult([""] * len(r.fields), [None] * len(r.accounts)) for r in reads],
                            "t", {0: len(copies)})
    dues = done.dues.get(0, {})
    kept = {a: AccountTemplate(w.states.get(a), w.extras[a], tuple(w.members.get(a, {}).items()), w.sides.get(a), dues.get(a, 0))
            for w in done.writes for a in w.extras}
    return [kept.get(a, AccountTemplate(None, b"{}", ())) for a in sim.accounts]


async def _write_accounts(settings: Settings, templates: Sequence[AccountTemplate], accounts: int, topic: str = "activity-events",
                          partitions: int = 8) -> float:
    """Accounts ``account-0000000``.. as copies of the templates, through ``Store.write_accounts``
    (the worker's fenced script) and ``Store.write_account_dues`` (each account's next review in
    the due index of its partition), in chunks of ``CHUNK_USERS``; returns the seconds it took."""
    from streams.worker.keys import bucket_of
    from streams.worker.revenue import AccountWrite

    store = Store(settings)
    await store.connect()
    try:
        t0 = time.perf_counter()
        for chunk, start in enumerate(range(0, accounts, CHUNK_USERS)):
            writes: dict[int, AccountWrite] = {}
            dues: dict[int, dict[str, int]] = collections.defaultdict(dict)
            for i in range(start, min(accounts, start + CHUNK_USERS)):
                aid, t = f"account-{i:07d}", templates[i % len(templates)]
                b = bucket_of(aid, store.buckets)
                w = writes.get(b)
                if w is None:
                    w = writes[b] = AccountWrite(b, [("acct|bench:0", "", "")])
                if t.state is not None:
                    w.states[aid] = t.state
                if t.side is not None:
                    w.sides[aid] = t.side
                if t.due_s:
                    dues[kafka_partition(aid.encode(), partitions)][aid] = t.due_s
                w.extras[aid] = t.extras
                w.members[aid] = dict(t.members)
            fenced = await store.write_accounts(list(writes.values()), f"bench-accounts-{chunk}")
            if fenced:
                raise RuntimeError(f"account memory benchmark write fenced: {fenced[0]}")
            await store.write_account_dues(topic, dues)
        return time.perf_counter() - t0
    finally:
        await store.close()


def memory_growth(redis_url: str, write: Callable[[Settings], Awaitable[T]]) -> tuple[int, T]:
    """Bytes of ``used_memory`` that ``write(settings)`` adds to a flushed Redis, and its result;
    meta and scripts are loaded first, so "before" already holds them."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        flush_sync(client)
        settings = Settings(redis_url=redis_url)
        asyncio.run(_connect_only(settings))
        before = int(client.info("memory")["used_memory"])
        result = asyncio.run(write(settings))
        return int(client.info("memory")["used_memory"]) - before, result
    finally:
        client.close()


def measure_account_memory(redis_url: str, templates: Sequence[AccountTemplate], accounts: int) -> dict[str, Any]:
    """Write ``accounts`` accounts into a flushed Redis with ``Store.write_accounts``; bytes per account."""
    grown, seconds = memory_growth(redis_url, lambda settings: _write_accounts(settings, templates, accounts))
    n_members = [len(t.members) for t in templates]
    return {
        "accounts": accounts,
        "simulated_templates": len(templates),
        "members_per_account_mean / max": f"{sum(n_members) / len(n_members):.1f} / {max(n_members)}",
        "state_record_bytes_mean": round(sum(len(t.state or b"") for t in templates) / len(templates)),
        "accounts with an alert-side state / in the due index, %": (f"{100 * sum(t.side is not None for t in templates) / len(templates):.1f}"
                                                                     f" / {100 * sum(bool(t.due_s) for t in templates) / len(templates):.1f}"),
        "member_record_bytes_mean (25 + user id)": round(sum(len(v) for t in templates for _, v in t.members) / max(1, sum(n_members)), 1),
        "extras_bytes_mean (JSON: the alert list, downgrade, reminders sent)": round(sum(len(t.extras) for t in templates) / len(templates)),
        "bytes_per_account": round(grown / accounts),
        "bytes_per_account_member": round(grown / sum(n_members[i % len(templates)] for i in range(accounts))),
        "write_accounts_per_s (Store.write_accounts, one client)": round(accounts / seconds),
    }
