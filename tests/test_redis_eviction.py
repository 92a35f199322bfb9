"""A Redis that evicts churnwatch's keys (QA8 H1), against real valkey-servers.

With ``maxmemory-policy allkeys-lru`` and too little memory, Redis dropped the cold user states one by
one: users restarted from empty state, alerts changed, and nothing said so (no metric, no alert, no
log line). A worker now refuses to start on such a policy, and its gauges export the policy check and
Redis's ``evicted_keys`` (rule ChurnwatchRedisEvicting).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Iterator

import pytest
import redis as redis_lib

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


def test_a_worker_refuses_an_evicting_redis_with_one_line(kafka_bootstrap: str, lru_redis: Service) -> None:
    """Exit 2 (as the other start refusals) with one line saying what to set; Redis is left untouched."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "REDIS_URL": lru_redis.address,
           "CHURNWATCH_METRICS_PORT": str(free_port())}
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("churnwatch worker: error: Redis evicts any key when full (maxmemory-policy Redis: allkeys-lru)"), last
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
                await WorkerRuntime._eviction_gauges(types.SimpleNamespace(store=store))  # type: ignore[arg-type]
            finally:
                await store.close()

        asyncio.run(refresh())
        assert metrics.REDIS_EVICTION_SAFE._value.get() == 0
        assert metrics.REDIS_EVICTED_KEYS._value.get() == evicted
        client.config_set("maxmemory-policy", "noeviction")
        asyncio.run(refresh())
        assert metrics.REDIS_EVICTION_SAFE._value.get() == 1
    finally:
        client.close()
