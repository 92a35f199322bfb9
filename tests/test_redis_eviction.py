"""A Redis that evicts churnwatch's keys (QA8 H1), against real valkey-servers.

With ``maxmemory-policy allkeys-lru`` and too little memory, Redis dropped the cold user states one by
one: users restarted from empty state, alerts changed, and nothing said so (no metric, no alert, no
log line). A worker now refuses to start on such a policy, and its gauges export the policy check and
Redis's ``evicted_keys`` (rule ChurnwatchRedisEvicting).
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis as redis_lib

from models.model import load_model
from streams.local import Service, _spawn_valkey, free_port
from streams.settings import Settings
from streams.worker import metrics
from streams.worker.service import WorkerRuntime
from streams.worker.store import EvictingRedis, Store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def lru_redis() -> Iterator[Service]:
    """A valkey-server started with ``--maxmemory-policy allkeys-lru``."""
    svc = _spawn_valkey(free_port(), "redis", ["--maxmemory-policy", "allkeys-lru"])
    yield svc
    svc.stop()


def _store(url: str) -> Store:
    return Store(Settings(redis_url=url, buckets=4, groups_per_bucket=8))


def _gauge_runtime(store: Store) -> Any:
    """What ``WorkerRuntime``'s gauge refresh uses of a runtime, around ``store``."""
    runtime = types.SimpleNamespace(store=store, ready=True, redis_answered=True, _evicting_said=None,
                                    consumer=types.SimpleNamespace(refresh_lag=lambda: None, fetch_reply_age_s=lambda: None))
    runtime._say_evicting = functools.partial(WorkerRuntime._say_evicting, runtime)
    return runtime


def test_a_worker_refuses_an_evicting_redis_with_one_line(kafka_bootstrap: str, lru_redis: Service) -> None:
    """Exit 2 (as the other start refusals) with one line saying what to set; Redis is left untouched."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": lru_redis.address,
           "CHURNWATCH_METRICS_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("churnwatch worker: error: Redis evicts any key when full (maxmemory-policy allkeys-lru)"), last
    assert "Set maxmemory-policy noeviction" in last, last
    client = redis_lib.Redis.from_url(lru_redis.address)
    try:
        assert client.dbsize() == 0, "nothing written before the refusal"
    finally:
        client.close()


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru", "volatile-ttl"])
def test_policies_that_keep_churnwatch_keys_are_accepted(lru_redis: Service, policy: str) -> None:
    """noeviction refuses writes when full; volatile-* evict only keys with a TTL (of churnwatch's,
    only the rebuild lock): a store connects. allkeys-random is refused like allkeys-lru."""
    client = redis_lib.Redis.from_url(lru_redis.address)

    async def connect() -> str:
        store = _store(lru_redis.address)
        try:
            await store.connect()
            return store.incarnation
        finally:
            await store.close()

    try:
        client.config_set("maxmemory-policy", policy)
        assert asyncio.run(connect())
        client.config_set("maxmemory-policy", "allkeys-random")
        with pytest.raises(EvictingRedis, match="allkeys-random"):
            asyncio.run(connect())
    finally:
        client.close()


def test_the_gauges_export_the_policy_and_evicted_keys(lru_redis: Service) -> None:
    """Fill a small allkeys-lru Redis until it evicts: the gauges read 0 (unsafe policy) and the
    evicted_keys of INFO stats; after noeviction, 1."""
    client = redis_lib.Redis.from_url(lru_redis.address)
    try:
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", used + 512 * 1024)
        for i in range(200):
            client.set(f"filler:{i}", b"x" * 16_384)
        client.config_set("maxmemory", 0)  # no more evictions: the count holds still for the comparison
        evicted = int(client.info("stats")["evicted_keys"])
        assert evicted > 0, "the filler must have made Redis evict"

        async def refresh() -> None:
            store = _store(lru_redis.address)
            try:  # the method alone: a runtime needs a broker, and the gauges read only the store
                await WorkerRuntime._eviction_gauges(_gauge_runtime(store))
            finally:
                await store.close()

        asyncio.run(refresh())
        assert metrics.REDIS_EVICTION_SAFE._value.get() == 0
        run = client.info("server")["run_id"][:12]  # one node: labelled by its run (review 15, L-1)
        assert _samples("churnwatch_redis_evicted_keys") == {(("node", run),): evicted}
        client.config_set("maxmemory-policy", "noeviction")
        asyncio.run(refresh())
        assert metrics.REDIS_EVICTION_SAFE._value.get() == 1
    finally:
        client.close()


def test_a_take_over_rebuild_is_refused_before_it_deletes_anything(lru_redis: Service) -> None:
    """QA review 13 #3: ``--take-over-model --rebuild-state`` on an allkeys-* Redis refuses before it
    empties the store (an interrupted rebuild is pending here, so the old code deleted the state first
    and only the connect after it refused: every worker down on an empty store)."""
    from models.model import load_model
    from streams.worker.rebuild import rebuild_for_take_over
    from streams.worker.store import REBUILD_FIELD

    client = redis_lib.Redis.from_url(lru_redis.address)
    try:
        client.hset("cw:meta", mapping={"incarnation": "i1", REBUILD_FIELD: "a token of a worker that died"})
        client.hset("cw:{0}:u:1", "alice", b"state")

        async def take_over() -> None:
            store = _store(lru_redis.address)
            store.use_model(load_model())
            store.take_over_model = True
            try:
                await rebuild_for_take_over(store)
            finally:
                await store.close()

        with pytest.raises(EvictingRedis, match="allkeys-lru"):
            asyncio.run(take_over())
        assert client.hget("cw:{0}:u:1", "alice") == b"state" and client.hget("cw:meta", "incarnation") == b"i1"
    finally:
        client.close()


def _samples(name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples ``/metrics`` has for ``name`` (labels -> value)."""
    return {tuple(sorted(s.labels.items())): s.value for family in metrics.REGISTRY.collect()
            for s in family.samples if s.name == name}


def test_the_eviction_gauges_say_unknown_while_redis_is_unreachable(lru_redis: Service) -> None:
    """QA review 13 #2: a worker whose Redis does not answer (at start, or later) exports the policy as
    -1 (unknown) and no evicted-keys sample: the old gauges read 0 (policy unsafe: a critical page) or
    kept the last value. Once read, the count is per node (a counter each: ``increase()`` sees a
    Redis restart as a reset)."""
    async def refresh(url: str, whole: bool) -> None:
        store = _store(url)
        runtime = _gauge_runtime(store)
        try:  # the whole refresh only where Redis fails at once (its first call): a runtime needs a broker
            await (WorkerRuntime.refresh_gauges if whole else WorkerRuntime._eviction_gauges)(runtime)  # type: ignore[arg-type]
        finally:
            await store.close()

    client = redis_lib.Redis.from_url(lru_redis.address)
    try:
        client.config_set("maxmemory-policy", "noeviction")
        asyncio.run(refresh(f"redis://127.0.0.1:{free_port()}", True))  # nothing listens there
        assert _samples("churnwatch_redis_eviction_policy_safe") == {(): -1.0}
        assert _samples("churnwatch_redis_evicted_keys") == {}
        asyncio.run(refresh(lru_redis.address, False))
        assert _samples("churnwatch_redis_eviction_policy_safe") == {(): 1.0}
        assert _samples("churnwatch_redis_evicted_keys") == {(("node", client.info("server")["run_id"][:12]),): 0.0}
        asyncio.run(refresh(f"redis://127.0.0.1:{free_port()}", True))  # and after a read: unknown again
        assert _samples("churnwatch_redis_eviction_policy_safe") == {(): -1.0}
        assert _samples("churnwatch_redis_evicted_keys") == {}
    finally:
        client.close()


def test_a_policy_turned_evicting_under_a_running_worker_is_logged_once_a_minute(
        lru_redis: Service, caplog: pytest.LogCaptureFixture) -> None:
    """qa8_verify H1 (remaining gap): the policy switched to allkeys-lru while the worker ran was in the
    metrics only; its log (45 lines, all INFO) said nothing. Now the gauge refresh logs one ERROR
    naming the runbook, not again within a minute while it stays unsafe, and at once if it turns
    unsafe again after a safe spell."""
    client = redis_lib.Redis.from_url(lru_redis.address)

    async def refreshes(runtime: WorkerRuntime, policies: list[str]) -> None:
        try:
            for policy in policies:
                client.config_set("maxmemory-policy", policy)
                await runtime._eviction_gauges()
        finally:
            await runtime.store.close()

    try:
        runtime = WorkerRuntime(Settings(redis_url=lru_redis.address, buckets=4, groups_per_bucket=8), load_model())
        with caplog.at_level("ERROR"):
            asyncio.run(refreshes(runtime, ["noeviction", "allkeys-lru", "allkeys-lru", "allkeys-lru", "noeviction",
                                            "volatile-lru", "allkeys-random", "allkeys-random"]))
    finally:
        client.close()
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(said) == 2, said
    assert "allkeys-lru" in said[0] and "allkeys-random" in said[1], said
    assert all("Runbook: ChurnwatchRedisEvicting" in line for line in said), said


def test_the_evicted_keys_of_two_nodes_behind_one_address_are_two_series(lru_redis: Service) -> None:
    """Review 15, L-1: a single-address Redis exported one series ``node=""`` for whatever node the
    address led to, so a failover (and back) to a node with another count read as evictions to
    ``increase()``: ChurnwatchRedisEvicting paged with nothing evicted. Each node's run is its own
    series now (deploy/prometheus/rules_test.yml has the failover cases)."""
    other = _spawn_valkey(free_port(), "redis")

    async def labels(url: str) -> set[str]:
        store = _store(url)
        try:
            await WorkerRuntime._eviction_gauges(_gauge_runtime(store))
        finally:
            await store.close()
        return {dict(labels)["node"] for labels in _samples("churnwatch_redis_evicted_keys")}

    try:
        first, second = asyncio.run(labels(lru_redis.address)), asyncio.run(labels(other.address))
    finally:
        other.stop()
    assert len(first) == len(second) == 1 and first != second, (first, second)
