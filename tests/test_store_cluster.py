"""The Redis state store on a real 3-node Redis Cluster (valkey-server): the same checks as on one node.

The scenarios of tests/test_store.py (round trip, CAS fence, retried write, progress, meta, NOSCRIPT,
stats, expiry, top at risk) run here unchanged against the cluster: the ``redis_url`` fixture below
points them at one node of the cluster and switches their settings and their direct client to
cluster mode. Then what only a cluster has: every key a script call touches hashes to one slot,
NOSCRIPT from one node only, a slot moved under the client's feet (MOVED), and the real worker's
states on a cluster equal its states on a single node.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis as redis_lib
from hypothesis import given, settings as hsettings, strategies as hst
from redis.cluster import RedisCluster, key_slot

from models.state import UserState
from streams.worker.topics import ensure_topics
from streams.worker.keys import Keys, locate
from streams.local import RedisClusterService, Service, start_redis_cluster
from streams.settings import Settings
from streams.worker.store import BucketRead, BucketWrite, StateWrite, Store, _Calls
from tests import test_console_read, test_store
from tests.harness import Worker, dump_state, publish_events, wait_progress, wait_quiet, wait_reviewed
from tests.test_pipeline_e2e import history

pytestmark = pytest.mark.integration

BUCKETS, GROUPS = 4, 8


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterService]:
    svc = start_redis_cluster(nodes=3)
    yield svc
    svc.stop()


def _flush(cluster: RedisClusterService) -> None:
    for address in cluster.addresses:
        client = redis_lib.Redis.from_url(address)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture()
def cluster_url(cluster: RedisClusterService) -> Iterator[str]:
    """One node's address, every node flushed before and after."""
    _flush(cluster)
    yield cluster.address
    _flush(cluster)


@pytest.fixture()
def redis_url(cluster_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """tests/test_store.py's scenarios, pointed at the cluster: cluster settings and a cluster client."""
    single = test_store._settings
    monkeypatch.setattr(test_store, "_settings", lambda url, **kw: single(url, redis_cluster=True, **kw))
    monkeypatch.setattr(test_store, "redis_lib", types.SimpleNamespace(Redis=RedisCluster))
    return cluster_url


# The same scenarios as on one node (collected here a second time, with the fixture above).
test_round_trip_state_offsets_and_due = test_store.test_round_trip_state_offsets_and_due
test_fence_rejects_a_stale_expected_offset_and_writes_nothing = (
    test_store.test_fence_rejects_a_stale_expected_offset_and_writes_nothing
)
test_a_retried_write_is_applied_once = test_store.test_a_retried_write_is_applied_once
test_progress_only_increases = test_store.test_progress_only_increases
test_meta_mismatch_is_refused = test_store.test_meta_mismatch_is_refused
test_scripts_are_reloaded_after_a_script_flush = test_store.test_scripts_are_reloaded_after_a_script_flush
test_stats_deltas_follow_states_and_churn_alerts = test_store.test_stats_deltas_follow_states_and_churn_alerts
test_a_store_without_its_meta_key_is_cleared_and_fences_the_old_incarnation = (
    test_store.test_a_store_without_its_meta_key_is_cleared_and_fences_the_old_incarnation
)
test_a_clearer_whose_lock_expired_leaves_the_clearing_to_the_worker_that_took_it_over = (
    test_store.test_a_clearer_whose_lock_expired_leaves_the_clearing_to_the_worker_that_took_it_over
)
test_expiry_removes_state_due_and_risk_entries = test_store.test_expiry_removes_state_due_and_risk_entries
test_top_at_risk_merges_buckets_and_sync_reader = test_store.test_top_at_risk_merges_buckets_and_sync_reader


def test_rebuild_state_on_a_cluster(cluster_url: str) -> None:
    """``--take-over-model --rebuild-state`` finds and deletes the keys on every node (tests/test_model_rollout.py)."""
    from streams.settings import Settings
    from tests.test_model_rollout import rebuild_scenario

    rebuild_scenario(Settings(redis_url=cluster_url, redis_cluster=True, buckets=BUCKETS, groups_per_bucket=GROUPS))


def test_an_old_write_during_the_rebuild_on_a_cluster(cluster_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rebuild's per-bucket marker reset refuses an old worker's write on every node (review 4 #1)."""
    from tests.test_model_rollout import old_write_scenario

    old_write_scenario(Settings(redis_url=cluster_url, redis_cluster=True, buckets=BUCKETS, groups_per_bucket=GROUPS), monkeypatch)


def test_console_reads_on_a_cluster(cluster_url: str) -> None:
    """The console's merged index runs, loads and counters: one script call per bucket, routed by slot."""
    test_console_read.check_merged_runs(cluster_url, True, True)
    test_console_read.check_loads_and_counters(cluster_url, True)
    test_console_read.check_at_risk_split(cluster_url, True, True)


def test_account_of_on_a_cluster(cluster_url: str) -> None:
    """A user's account (``Store.account_of``): one read per bucket in a pipeline, routed by slot."""
    test_store.check_account_of(cluster_url, redis_cluster=True)


def test_erase_on_a_cluster(cluster_url: str) -> None:
    """``churnwatch erase``: one script per bucket, routed by slot; the account review index by SCAN of every primary."""
    from tests.test_erase import check_erase_on

    check_erase_on(cluster_url, redis_cluster=True)


def _cluster_store(url: str) -> Store:
    return Store(Settings(redis_url=url, redis_cluster=True, buckets=BUCKETS, groups_per_bucket=GROUPS))


def _script_keys(call: tuple[Any, ...], keys: Keys, bucket: int) -> list[str]:
    """Every key one recorded EVALSHA call touches: its KEYS plus those the script derives from the tag."""
    numkeys = int(call[2])
    declared = [str(k) for k in call[3 : 3 + numkeys]]
    assert call[4 + numkeys : 6 + numkeys] == ("", ""), "on a cluster the driver's arguments are plain, not packed"
    tag = str(call[6 + numkeys])
    assert tag == keys.tag(bucket), "the bucket's first argument (after the driver's three) is its tag"
    derived = [tag + suffix for g in range(GROUPS) for suffix in (f":u:{g}", f":r:{g}")]
    derived += [keys.due(bucket, test_store.TOPIC, p) for p in range(8)] + [keys.erased(bucket)]  # lua/erased.lua
    return declared + derived


@hsettings(max_examples=50, deadline=None)
@given(users=hst.lists(hst.text(min_size=1, max_size=20), min_size=1, max_size=20))
def test_every_key_of_a_script_call_shares_one_slot(users: list[str]) -> None:
    """Recorded read and write calls (no server needed): KEYS and tag-derived keys hash to one slot."""
    store = Store(Settings(redis_cluster=True, buckets=BUCKETS, groups_per_bucket=GROUPS))
    store._sha = {"read_batch": "r" * 40, "write_batch": "w" * 40, "progress": "p" * 40}
    by_bucket: dict[int, list[tuple[int, str]]] = {}
    for user in users:
        b, g = locate(user, BUCKETS, GROUPS)
        by_bucket.setdefault(b, []).append((g, user))
    reads = [BucketRead(b, [(test_store.FIELD, 0)], us) for b, us in by_bucket.items()]
    writes = [BucketWrite(b, [(test_store.FIELD, "", "1")], [StateWrite(g, u, b"x", test_store.FIELD, 0, None) for g, u in us])
              for b, us in by_bucket.items()]
    for op, jobs in (("read", reads), ("write", writes)):
        calls = _Calls()

        async def record(build: Any, _calls: _Calls = calls) -> list[Any]:
            build(_calls)
            # one bucket per call, each call's reply a list of bucket replies (lua/buckets.lua)
            # read: + the incarnation marker, tokens, erased users' positions
            return [[[[], [], [], [], b"", [], []] if op == "read" else [1]]] * len(_calls)

        store._run = lambda _op, build: record(build)  # type: ignore[method-assign]
        asyncio.run(store.read(jobs) if op == "read" else store.write(jobs, "t"))  # type: ignore[arg-type]
        assert len(calls) == len(by_bucket)
        for call, job in zip(calls, jobs):
            slots = {key_slot(k.encode()) for k in _script_keys(call, store.keys, job.bucket)}
            assert len(slots) == 1, f"{op} call of bucket {job.bucket} touches slots {slots}"
            for g, _user in by_bucket[job.bucket]:
                assert key_slot(store.keys.users(job.bucket, g).encode()) in slots


def test_server_keyslot_agrees_and_buckets_spread_over_nodes(cluster_url: str) -> None:
    """CLUSTER KEYSLOT of the real server gives one slot per bucket, and the buckets use every node."""
    client = RedisCluster.from_url(cluster_url)
    keys = Keys("cw")
    try:
        owners = set()
        for b in range(64):
            names = [keys.offsets(b), keys.stats(b), keys.risk(b), keys.users(b, 3), keys.due(b, "ev", 5), keys.erased(b), keys.tag(b)]
            slots = {int(client.execute_command("CLUSTER KEYSLOT", n, target_nodes=RedisCluster.RANDOM)) for n in names}
            assert len(slots) == 1, f"bucket {b}: {slots}"
            owners.add(client.get_node_from_key(keys.offsets(b)).name)
        assert len(owners) == 3, "64 buckets land on all three primaries"
    finally:
        client.close()


def _write_all_buckets(store: Store, token: str, new: str, expected: str = "") -> Any:
    """One state per bucket, so a cycle touches every node."""
    writes = []
    for i in range(BUCKETS * 6):
        user = f"user-{i}"
        b, g = locate(user, BUCKETS, GROUPS)
        if any(w.bucket == b for w in writes):
            continue
        st = test_store._state(test_store.T0 + i)
        writes.append(BucketWrite(b, [(test_store.FIELD, expected, new)], [StateWrite(g, user, st.to_bytes(), test_store.FIELD, 0, None, 0.5)]))
    assert len(writes) == BUCKETS
    return store.write(writes, token)


def _has_script(address: str, sha: str) -> bool:
    client = redis_lib.Redis.from_url(address)
    try:
        return bool(client.script_exists(sha)[0])
    finally:
        client.close()


def test_noscript_on_one_node_reloads_and_repeats_only_refused_calls(cluster: RedisClusterService, cluster_url: str) -> None:
    """One primary restarted (its scripts gone): the cycle still lands, each bucket's write once."""
    flushed = cluster.addresses[1]

    async def scenario() -> tuple[str, bool, list[Any], list[Any], dict[str, float]]:
        store = _cluster_store(cluster_url)
        await store.connect()
        try:
            sha = store._sha["write_batch"]
            plain = redis_lib.Redis.from_url(flushed)
            plain.script_flush()
            plain.close()
            gone = _has_script(flushed, sha)
            fenced = await _write_all_buckets(store, "n1", "9")
            reads = await store.read([BucketRead(b, [(test_store.FIELD, None)], []) for b in range(BUCKETS)])
            return sha, gone, fenced, reads, await store.stats()
        finally:
            await store.close()

    sha, gone, fenced, reads, _ = asyncio.run(scenario())
    assert not gone
    assert fenced == []
    assert all(_has_script(a, sha) for a in cluster.addresses), "loaded again on the node that lost it"
    assert [r.offsets for r in reads] == [["9"]] * BUCKETS, "every bucket's write applied"


def _move_slot(client: RedisCluster, slot: int) -> str:
    """Migrate ``slot`` with its keys to another primary the way valkey-cli reshard does; returns its name."""
    source = client.nodes_manager.get_node_from_slot(slot)
    target = next(n for n in client.get_primaries() if n.name != source.name)
    src = redis_lib.Redis(host=source.host, port=source.port)
    dst = redis_lib.Redis(host=target.host, port=target.port)
    try:
        src_id, dst_id = src.execute_command("CLUSTER MYID").decode(), dst.execute_command("CLUSTER MYID").decode()
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
        for node in (dst, src):
            node.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        third = [n for n in client.get_primaries() if n.name not in (source.name, target.name)]
        for n in third:
            other = redis_lib.Redis(host=n.host, port=n.port)
            other.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
            other.close()
    finally:
        src.close()
        dst.close()
    return target.name


def test_a_slot_moved_under_the_client_is_followed(cluster_url: str) -> None:
    """The store's slot map goes stale (MOVED): reads and fenced writes still reach the right node."""

    async def scenario() -> tuple[list[Any], list[Any], str, str]:
        store = _cluster_store(cluster_url)
        await store.connect()
        try:
            assert await _write_all_buckets(store, "m1", "1") == []
            found = await store.reach_ranks([(b, g, 0, -1) for b in range(BUCKETS) for g in range(GROUPS)])
            assert sum(len(x) for x in found) == BUCKETS, "the save-list index is read on every node"
            slot = key_slot(store.keys.offsets(0).encode())
            sync = RedisCluster.from_url(cluster_url)
            try:
                moved_to = _move_slot(sync, slot)
            finally:
                sync.close()
            reads = await store.read([BucketRead(b, [(test_store.FIELD, None)], []) for b in range(BUCKETS)])
            fenced = await _write_all_buckets(store, "m2", "2", expected="1")
            owner = store.client.get_node_from_key(store.keys.offsets(0)).name
            return reads, fenced, moved_to, owner

        finally:
            await store.close()

    reads, fenced, moved_to, owner = asyncio.run(scenario())
    assert [r.offsets for r in reads] == [["1"]] * BUCKETS
    assert fenced == [], "the CAS still sees the offsets written before the move"
    assert owner == moved_to, "the client learned the new owner from MOVED"


@pytest.fixture()
def single_url(redis_service: Service) -> Iterator[str]:
    client = redis_lib.Redis.from_url(redis_service.address)
    client.flushall()
    yield redis_service.address
    client.flushall()
    client.close()


def test_worker_on_a_cluster_leaves_the_same_states_as_on_one_node(
    kafka_bootstrap: str, unique_name: str, single_url: str, cluster_url: str, tmp_path: Path
) -> None:
    events = f"ev-{unique_name}"
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=events, topic_alerts=f"al-{unique_name}",
                           topic_dlq=f"dlq-{unique_name}", partitions=8))
    last = publish_events(kafka_bootstrap, events, history())
    env = {"CHURNWATCH_IDLE_PARTITION_MS": "1000", "CHURNWATCH_BATCH_MAX_RECORDS": "200"}
    workers = {}
    for mode, url in (("single", single_url), ("cluster", cluster_url)):
        topics = {"events": events, "alerts": f"al-{unique_name}-{mode}", "dlq": f"dlq-{unique_name}-{mode}",
                  "group": f"g-{unique_name}-{mode}"}
        extra = {"CHURNWATCH_REDIS_CLUSTER": "true"} if mode == "cluster" else {"CHURNWATCH_REDIS_CLUSTER": "false"}
        workers[mode] = Worker(kafka_bootstrap, url, topics, tmp_path / f"{mode}.log", env={**env, **extra}).start()
    try:
        for mode, url in (("single", single_url), ("cluster", cluster_url)):
            wait_progress(url, events, last, timeout_s=120, workers=[workers[mode]])
        for url in (single_url, cluster_url):
            wait_reviewed(url, events)
            wait_quiet(url)
        single, clustered = dump_state(single_url), dump_state(cluster_url)
    finally:
        codes = {mode: w.stop() for mode, w in workers.items()}
    assert codes == {"single": 0, "cluster": 0}, workers["cluster"].output()[-3000:]
    assert set(single) == {"steady", "silent", "decliner"}
    assert {u: UserState.from_bytes(b) for u, b in clustered.items()} == {u: UserState.from_bytes(b) for u, b in single.items()}
    assert clustered == single, "byte-identical state records"
    client = RedisCluster.from_url(cluster_url)
    try:
        holders = {n.name for n in client.get_primaries() if client.get_redis_connection(n).dbsize() > 0}
    finally:
        client.close()
    assert len(holders) >= 2, "the worker's keys are spread over several nodes"


def test_eviction_policy_of_every_primary_is_checked(cluster: RedisClusterService, cluster_url: str) -> None:
    """INFO of each primary (QA8 H1): one node with allkeys-lru refuses the connect and names that
    node; ``evicted_keys`` is read per primary (each its own counter: a restart resets one)."""
    from streams.worker.store import EvictingRedis

    last = redis_lib.Redis.from_url(cluster.addresses[-1])

    async def connect() -> Any:
        store = Store(Settings(redis_url=cluster_url, redis_cluster=True, buckets=BUCKETS, groups_per_bucket=GROUPS))
        try:
            found = await store.eviction()
            await store.connect()
            return found
        finally:
            await store.close()

    try:
        found = asyncio.run(connect())
        assert len(found.policies) == 3 and not found.unsafe and not found.unknown, found
        # each node's series: its address, then its run (review 15, L-1)
        assert {n.split("/")[0] for n in found.evicted} == set(found.policies) and len(found.evicted) == 3, found
        assert all(c == 0 and len(n.split("/")[1]) == 12 for n, c in found.evicted.items()), found
        last.config_set("maxmemory-policy", "allkeys-lru")
        port = cluster.addresses[-1].rsplit(":", 1)[1]
        with pytest.raises(EvictingRedis, match=rf"maxmemory-policy \S*:{port}: allkeys-lru\)"):
            asyncio.run(connect())
    finally:
        last.config_set("maxmemory-policy", "noeviction")
        last.close()
