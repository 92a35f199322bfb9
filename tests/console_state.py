"""Module fixture for the console tests: the state a real worker wrote from simulated events.

300 simulated users x 120 days are published to fresh topics and applied by one real worker
(``churnwatch worker`` subprocess) on the session's broker and Redis, under a key prefix of its
own, so the function-scoped FLUSHDB of other tests' fixtures is the only thing to avoid (the
console tests use none of them). The state is built once and shared by the modules that use it
(test_console, test_console_browser: ~10 s of worker each) as long as its keys are all there: a
module that finds them gone (another test's FLUSHDB ran in between) builds it again, so the
modules stay independent of their order.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import Any, Iterator

import dataclasses

import orjson
import pytest
import redis

from models.events import EVENT_ORDER, Event
from models.subscription import Subscription
from streams.cli.accounts import publish_accounts
from streams.worker.accounts import AccountFacts, ensure_accounts_topic

from streams.local import Service
from streams.cli.argtypes import parse_start_ms
from streams.offline.simulate import generate
from streams.publisher import publish_bulk
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.harness import ROOT, Worker, account_barrier, wait_progress, wait_quiet, wait_reviewed

__all__ = ["built_state", "cli_json", "DOT_USERS", "OWNERS"]

USERS = 300
OWNERS = ("alice", "bob")
DOT_USERS = (".", "..")


def with_accounts(events: list[Event], truth: list[Any]) -> tuple[list[Event], list[AccountFacts]]:
    """Five accounts of two owners over some simulated users: alice's of users who churn (one
    cancels when its last user has gone, to win back) and of users who stay, bob's mixed; each
    subscription is paid for a year (its ``period_end``)."""
    churners = [t for t in truth if t.churned_at_ms is not None]
    stayers = [t.user_id for t in truth if t.churned_at_ms is None]
    plan = {"northwind": ("Northwind", "alice", [t.user_id for t in churners[0:4]]),
            "contoso": ("Contoso", "alice", [t.user_id for t in churners[4:7]]),
            "fabrikam": ("Fabrikam", "alice", stayers[0:4]),
            "initrode": ("Initrode", "bob", stayers[4:8]),
            "hooli": ("Hooli", "bob", [t.user_id for t in churners[7:9]] + stayers[8:10])}
    account_of = {u: a for a, (_, _, users) in plan.items() for u in users}
    out = [dataclasses.replace(e, account_id=account_of[e.user_id]) if e.user_id in account_of else e for e in events]
    for a, (_, _, users) in plan.items():  # yearly plans: paid for a year from the start
        first = min(e.ts_ms for e in out if e.account_id == a)
        out.append(Event(users[0], first + 60_000, "subscription", f"s-{a}-0", 0.0, a,
                         Subscription("active", "Pro", 4_999, 0, first + 60_000 + 365 * 86_400_000)))
    gone = min(max(t.churned_at_ms for t in churners[4:7]) + 86_400_000, max(e.ts_ms for e in events))
    out.append(Event(churners[4].user_id, gone, "subscription", "s-contoso-1", 0.0, "contoso", Subscription("cancelled", "Pro", 0)))
    # users "." and "..", active to the end, members of fabrikam: ids a browser cuts out of a path (QA4 #8)
    start, end = min(e.ts_ms for e in events), max(e.ts_ms for e in events)
    out += [Event(uid, ts, "view", f"dot{len(uid)}-{ts}", 0.0, "fabrikam") for uid in DOT_USERS for ts in range(start, end, 2 * 86_400_000)]
    facts = [AccountFacts(a, name, owner, "smb", "2026-06-01") for a, (name, owner, _) in plan.items()]
    return sorted(out, key=EVENT_ORDER), facts


_BUILT: list[tuple[Settings, int]] = []  # the state built last in this session: its settings, its key count
_BUILDS = itertools.count()


@pytest.fixture(scope="session")
def _built_prefixes(redis_service: Service) -> Iterator[list[str]]:
    """Key prefixes of every state built in the session, deleted at its end."""
    prefixes: list[str] = []
    yield prefixes
    client = redis.Redis.from_url(redis_service.address)
    for prefix in prefixes:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    client.close()
    _BUILT.clear()


def _key_count(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    finally:
        client.close()


@pytest.fixture(scope="module")
def built_state(kafka_service: Service, redis_service: Service, tmp_path_factory: pytest.TempPathFactory,
                _built_prefixes: list[str]) -> Settings:
    """The settings to read the state with: the session's, if every key of it is still there."""
    if _BUILT and _BUILT[-1][0].redis_url == redis_service.address and _key_count(_BUILT[-1][0]) == _BUILT[-1][1]:
        return _BUILT[-1][0]
    settings = _build(kafka_service, redis_service, tmp_path_factory)
    _built_prefixes.append(settings.key_prefix)
    _BUILT[:] = [(settings, _key_count(settings))]
    return settings


def _build(kafka_service: Service, redis_service: Service, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    name = f"console{os.getpid()}n{next(_BUILDS)}"
    names = {"events": f"ev-{name}", "alerts": f"al-{name}", "dlq": f"dlq-{name}", "group": f"g-{name}"}
    prefix = f"cw{name}"
    settings = Settings(kafka_bootstrap_servers=kafka_service.address, redis_url=redis_service.address,
                        topic_events=names["events"], topic_alerts=names["alerts"], topic_dlq=names["dlq"],
                        topic_alerts_dlq=f"adlq-{name}", group_id=names["group"], key_prefix=prefix,
                        topic_accounts=f"acc-{name}")
    ensure_topics(settings)
    ensure_accounts_topic(settings)
    _CLI.clear()  # answers of the commands on an earlier module's state
    log = tmp_path_factory.mktemp("console") / "worker.log"
    # a caught-up partition borrows the topic's clock after 1 s idle (default 5 s): the same final
    # sweeps (wait_reviewed below), sooner
    worker = Worker(kafka_service.address, redis_service.address, names, log,
                    env={"CHURNWATCH_KEY_PREFIX": prefix, "CHURNWATCH_IDLE_PARTITION_MS": "1000"}).start()
    try:
        events, facts = with_accounts(*generate(seed=21, n_users=USERS, start_ms=parse_start_ms("2026-01-01"), days=120))
        publish_accounts(settings, facts)
        stats = publish_bulk(settings, events)
        wait_progress(redis_service.address, names["events"], stats.last_offsets, timeout_s=180, workers=[worker], prefix=prefix)
        account_barrier(kafka_service.address, redis_service.address, names["events"], settings.partitions, 1,
                        max(e.ts_ms for e in events), workers=[worker], prefix=prefix)
        wait_reviewed(redis_service.address, names["events"], prefix)  # the last sweeps, accounts' too
        wait_quiet(redis_service.address, prefix=prefix)
    finally:
        assert worker.stop() == 0, worker.output()[-3000:]
    return settings


_CLI: dict[tuple[str, tuple[str, ...]], bytes] = {}


def cli_json(settings: Settings, argv: list[str]) -> list[dict[str, Any]]:
    """Run the real command ``churnwatch ARGV`` (a subprocess) against ``settings``; its JSON lines.
    The state is written once and never changes after, so each command runs once."""
    key = (settings.key_prefix, tuple(argv))
    if key not in _CLI:
        _CLI[key] = _run_cli(settings, argv)
    return [orjson.loads(line) for line in _CLI[key].decode().splitlines() if line.strip()]


def _run_cli(settings: Settings, argv: list[str]) -> bytes:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "REDIS_URL": settings.redis_url,
           "CHURNWATCH_TOPIC_EVENTS": settings.topic_events, "CHURNWATCH_KEY_PREFIX": settings.key_prefix,
           "CHURNWATCH_TOPIC_ACCOUNTS": settings.topic_accounts}
    done = subprocess.run([sys.executable, "-m", "streams.cli", *argv], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, f"churnwatch {' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}"
    return done.stdout
