"""The console's read path against a reference: the merged runs of the at-risk index are exactly
the union of the buckets in index order (score, then user id, highest first), from any ranks, in
one script call for all buckets and in the per-bucket calls a Redis Cluster needs.

Real valkey, small random indexes with ties and churned users (score 1): no worker, no broker.
tests/test_store_cluster.py runs the same checks on a real 3-node cluster.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest
from redis.cluster import RedisCluster

from streams.console import data
from streams.settings import Settings
from streams.worker.keys import locate
from streams.worker.store import Store
from tests.harness import redis_client

BUCKETS = 8


def _client(url: str, cluster: bool) -> Any:
    return RedisCluster.from_url(url) if cluster else redis_client(url)


def _fill(url: str, seed: int, cluster: bool) -> dict[int, list[tuple[bytes, float]]]:
    """Random indexes (a few ties, some churned users): bucket -> entries in index order."""
    rng = random.Random(seed)
    r = _client(url, cluster)
    index: dict[int, list[tuple[bytes, float]]] = {}
    try:
        for b in range(BUCKETS):
            n = rng.choice([0, 1, 5, 30, 80])
            entries = {f"u{b}-{rng.randrange(10**6)}-é".encode(): rng.choice([1.0, 0.5, round(rng.random(), 2)])
                       for _ in range(n)}
            if entries:
                r.zadd(f"cw:{{{b}}}:risk", {m: s for m, s in entries.items()})
            index[b] = sorted(((m, s) for m, s in entries.items()), key=lambda e: (e[1], e[0]), reverse=True)
    finally:
        r.close()
    return index


def _reference(index: dict[int, list[tuple[bytes, float]]], list_name: str, ranks: list[int] | None,
               size: int) -> tuple[list[tuple[bytes, float]], list[int], list[int]]:
    if ranks is None:
        ranks = [0 if list_name == "win_back" else sum(1 for _, s in index[b] if s >= 1.0) for b in range(BUCKETS)]
    rest = [(s, m, b) for b in range(BUCKETS) for m, s in index[b][ranks[b]:] if list_name == "save" or s >= 1.0]
    got = sorted(rest, reverse=True)[:size]
    ends = list(ranks)
    for _, _, b in got:
        ends[b] += 1
    return [(m, s) for s, m, _ in got], list(ranks), ends


def check_merged_runs(url: str, cluster: bool, per_bucket_calls: bool) -> None:
    """``data._block`` from the start and on from its own ranks, for both lists, against the reference."""
    async def check() -> None:
        store = Store(Settings(redis_url=url, buckets=BUCKETS, redis_cluster=cluster))
        store.cluster = per_bucket_calls  # on one node: the per-bucket calls a cluster needs
        rng = random.Random(7)
        try:
            for seed in range(4):
                r = _client(url, cluster)
                for b in range(BUCKETS):
                    r.delete(f"cw:{{{b}}}:risk")
                r.close()
                index = _fill(url, seed, cluster)
                for list_name in ("save", "win_back"):
                    ranks: list[int] | None = None
                    for size in (rng.choice([1, 3, 17, 60]) for _ in range(12)):
                        want, want_start, want_end = _reference(index, list_name, ranks, size)
                        entries, start, end, done = await data._block(store, list_name, ranks, size)  # type: ignore[arg-type]
                        assert (entries, start, end) == (want, want_start, want_end), (seed, list_name, size)
                        more = bool(_reference(index, list_name, end, 1)[0])
                        assert not (done and more) and (done or len(entries) == size), (seed, list_name, size)
                        ranks = end
        finally:
            await store.close()

    asyncio.run(check())


@pytest.mark.parametrize("per_bucket_calls", [False, True])
def test_merged_runs_equal_the_sorted_union(redis_url: str, per_bucket_calls: bool) -> None:
    check_merged_runs(redis_url, False, per_bucket_calls)


def check_at_risk_split(url: str, cluster: bool, per_bucket_calls: bool) -> None:
    """``data.at_risk_split``: the index's entries per bucket, lapsed at index score 1 and above
    (``models.ranking.index_score``; the largest float below 1, a reachable user's highest, is not),
    summed over the buckets, in one call or in the per-bucket calls a cluster needs."""
    r = _client(url, cluster)
    try:
        for b in range(BUCKETS):  # left by another check (the cluster test runs them in a row)
            r.delete(f"cw:{{{b}}}:risk")
        index = _fill(url, 7, cluster)
        r.zadd("cw:{2}:risk", {b"edge-reachable": math.nextafter(1.0, 0.0), b"edge-lapsed": 1.0})
    finally:
        r.close()

    async def check() -> data.AtRiskSplit:
        store = Store(Settings(redis_url=url, buckets=BUCKETS, redis_cluster=cluster))
        store.cluster = per_bucket_calls or cluster
        try:
            return await data.at_risk_split(store)
        finally:
            await store.close()

    split = asyncio.run(check())
    lapsed = sum(1 for entries in index.values() for _, s in entries if s >= 1.0) + 1
    reachable = sum(1 for entries in index.values() for _, s in entries if s < 1.0) + 1
    assert lapsed > 1 and reachable > 1, "the seed gives both kinds"
    assert (split.reachable, split.lapsed, split.total) == (reachable, lapsed, reachable + lapsed)


@pytest.mark.parametrize("per_bucket_calls", [False, True])
def test_at_risk_split_counts_the_index_by_its_lapsed_range(redis_url: str, per_bucket_calls: bool) -> None:
    check_at_risk_split(redis_url, False, per_bucket_calls)


def check_loads_and_counters(url: str, cluster: bool) -> None:
    """``data._load`` (both records, states only, in any order, absent users) and ``data.counters``."""
    async def check() -> Any:
        store = Store(Settings(redis_url=url, buckets=BUCKETS, groups_per_bucket=4, redis_cluster=cluster))
        try:
            users = [f"user-{i}".encode() for i in range(40)] + ["ü-ser".encode()]
            for uid in users:
                b, g = locate(uid.decode(), store.buckets, store.groups)
                await store.client.hset(store.keys.users(b, g), uid, b"state:" + uid)
                await store.client.hset(f"{store.keys.tag(b)}:hist:{g}", uid, b"hist:" + uid)
            await store.client.hset(store.keys.stats(3), mapping={"users": 5, "at_risk": "2"})
            await store.client.hset(store.keys.stats(5), mapping={"users": "7"})
            both = await data._load(store, [*users, b"nobody"])
            states = await data._load(store, users[::-1], ("u",))
            counts = await data.counters(store, ("users", "at_risk", "none"))
            return users, both, states, counts
        finally:
            await store.close()

    users, both, states, counts = asyncio.run(check())
    assert both == [[b"state:" + u, b"hist:" + u] for u in users] + [[None, None]]
    assert states == [[b"state:" + u] for u in users[::-1]]
    assert counts == {"users": 12, "at_risk": 2, "none": 0}


def test_loads_and_counters_in_one_call_per_round_trip(redis_url: str) -> None:
    check_loads_and_counters(redis_url, False)



def test_a_cursor_with_a_rank_past_any_index_is_refused() -> None:
    """A cursor is opaque: one with a rank no index reaches was not given out by the API and is a 400
    (``BadRequest``), not a Redis error (2**63 - 1 overflowed the chunk script's arithmetic: a 500)."""
    good = data._encode_cursor("save", [0, 5], 50, 3)
    assert data._decode_cursor(good, "save", 2) == ([0, 5], 50, 3)
    for rank in (2**40, 2**63 - 1):
        with pytest.raises(data.BadRequest):
            data._decode_cursor(data._encode_cursor("save", [0, rank], 50, 3), "save", 2)
