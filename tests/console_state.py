"""Module fixture for the console tests: the state a real worker wrote from simulated events.

300 simulated users x 120 days are published to fresh topics and applied by one real worker
(``churnwatch worker`` subprocess) on the session's broker and Redis, under a key prefix of its
own, so the function-scoped FLUSHDB of other tests' fixtures is the only thing to avoid (the
console tests use none of them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import orjson
import pytest
import redis

from streams.local import Service
from streams.cli.argtypes import parse_start_ms
from streams.offline.simulate import generate
from streams.publisher import publish_bulk
from streams.settings import Settings
from streams.worker.topics import ensure_topics
from tests.harness import ROOT, Worker, wait_progress, wait_quiet

__all__ = ["built_state", "cli_json"]

USERS = 300


@pytest.fixture(scope="module")
def built_state(kafka_service: Service, redis_service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    name = f"console{os.getpid()}"
    names = {"events": f"ev-{name}", "alerts": f"al-{name}", "dlq": f"dlq-{name}", "group": f"g-{name}"}
    prefix = f"cw{name}"
    settings = Settings(kafka_bootstrap_servers=kafka_service.address, redis_url=redis_service.address,
                        topic_events=names["events"], topic_alerts=names["alerts"], topic_dlq=names["dlq"],
                        topic_alerts_dlq=f"adlq-{name}", group_id=names["group"], key_prefix=prefix)
    ensure_topics(settings)
    log = tmp_path_factory.mktemp("console") / "worker.log"
    worker = Worker(kafka_service.address, redis_service.address, names, log, env={"CHURNWATCH_KEY_PREFIX": prefix}).start()
    try:
        events, _ = generate(seed=21, n_users=USERS, start_ms=parse_start_ms("2026-01-01"), days=120)
        stats = publish_bulk(settings, events)
        wait_progress(redis_service.address, names["events"], stats.last_offsets, timeout_s=180, workers=[worker], prefix=prefix)
        wait_quiet(redis_service.address, prefix=prefix)
    finally:
        assert worker.stop() == 0, worker.output()[-3000:]
    yield settings
    client = redis.Redis.from_url(redis_service.address)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def cli_json(settings: Settings, argv: list[str]) -> list[dict[str, Any]]:
    """Run the real command ``churnwatch ARGV`` (a subprocess) against ``settings``; its JSON lines."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "REDIS_URL": settings.redis_url,
           "CHURNWATCH_TOPIC_EVENTS": settings.topic_events, "CHURNWATCH_KEY_PREFIX": settings.key_prefix}
    done = subprocess.run([sys.executable, "-m", "streams.cli", *argv], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, f"churnwatch {' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-2000:]}"
    return [orjson.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
