"""The write path's rule for users with no record stored (``models.step.unstored_scores``): their first
write sends no ZREM of the at-risk ranking or the save-list index (there is nothing to remove),
and Redis ends up holding exactly what the old rule (a ZREM whenever a user is in neither) left:
same keys, fields, members and scores, with damaged records (whose entries must still go) too."""

from __future__ import annotations

import random
from typing import Awaitable, Callable

import pytest
import redis as redis_lib

from streams.worker import phases
from streams.worker.keys import locate
from streams.worker.pipeline import Pipeline
from streams.settings import Settings
from tests.test_pipeline import base_settings, feed, history, records, run  # noqa: F401  (fixture)
from tests.test_pipeline_overlap import dump_all

pytestmark = pytest.mark.integration


def _damage_indexed(client: redis_lib.Redis, prefix: str, buckets: int, groups: int) -> int:
    """Overwrite with bytes no format reads the record of every user in an at-risk ranking and of
    every other user in a save-list index: the worker restarts them at their next event, and their
    index entries must go then although no readable record is stored."""
    n = 0
    for b in range(buckets):
        users = [u for u in client.zrange(f"{prefix}:{{{b}}}:risk", 0, -1)]
        for g in range(groups):
            users += client.zrange(f"{prefix}:{{{b}}}:r:{g}", 0, -1)[::2]
        for user in set(users):
            _, g = locate(user.decode(), buckets, groups)
            client.hset(f"{prefix}:{{{b}}}:u:{g}", user, b"\x09damaged")
            n += 1
    return n


def _zrem_calls(client: redis_lib.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_zrem", {}).get("calls", 0))


@pytest.mark.parametrize("seed", [3, 11])
def test_first_writes_skip_removals_and_leave_the_same_content(base_settings: Settings, redis_url: str,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    recs = records(history(seed=seed, users=30, days=60))
    half = len(recs) // 2
    sizes = (rng.randint(1, 40), rng.randint(1, 40))
    client = redis_lib.Redis.from_url(redis_url)
    zrems: dict[str, int] = {}

    def replay(prefix: str) -> None:
        async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> None:
            pipeline = await make(prefix)
            await feed(pipeline, recs[:half], sizes[0])
            assert _damage_indexed(client, prefix, base_settings.buckets, base_settings.groups_per_bucket)
            await feed(pipeline, recs[half:], sizes[1])

        before = _zrem_calls(client)
        run(base_settings, scenario)
        zrems[prefix] = _zrem_calls(client) - before

    replay("new")
    with monkeypatch.context() as m:  # the old rule: every user in neither index is removed from both
        m.setattr(phases, "UNSTORED_LEFT", False)
        replay("old")
    new, old = dump_all(redis_url, "new"), dump_all(redis_url, "old")
    client.close()
    assert any(k.endswith(":risk") for k in new) and any(":r:" in k for k in new), "both indexes must be exercised"
    assert new == old, "same keys, fields, members and scores as the old rule"
    assert zrems["new"] < zrems["old"], "the new rule sends fewer ZREMs (one per first write less)"


@pytest.mark.parametrize("value", [b"", b"\x09damaged"], ids=["empty", "unreadable"])
def test_a_stored_empty_or_unreadable_record_still_leaves_both_indexes(base_settings: Settings, redis_url: str,  # noqa: F811
                                                                       value: bytes) -> None:
    """A record stored but empty (written by something other than the worker, whose script deletes
    instead) or unreadable: the user restarts at its next event, its entries in the at-risk
    ranking and the save-list index go, and the bucket's counters lose what the record added
    (reviews of the rediscpu merge: an empty record was taken for "nothing stored", so its
    entries stayed and the user was counted twice)."""
    from models.events import Event
    from models.ranking import on_save_list
    from models.state import UserState

    evs = history(seed=3, users=30, days=60)
    client = redis_lib.Redis.from_url(redis_url)
    damaged: set[str] = set()

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> None:
        pipeline = await make("e")
        await feed(pipeline, records(evs), 10)
        for b in range(base_settings.buckets):
            damaged.update(u.decode() for u in client.zrange(f"e:{{{b}}}:risk", 0, -1))
            for g in range(base_settings.groups_per_bucket):
                damaged.update(u.decode() for u in client.zrange(f"e:{{{b}}}:r:{g}", 0, -1))
        for u in damaged:
            b, g = locate(u, base_settings.buckets, base_settings.groups_per_bucket)
            client.hset(f"e:{{{b}}}:u:{g}", u, value)
        t = evs[-1].ts_ms + 1000  # one event each, before any review of theirs comes due
        more = [Event(u, t + i, "view", f"x{i}") for i, u in enumerate(sorted(damaged))]
        await feed(pipeline, records(evs + more)[len(evs):], 100)

    run(base_settings, scenario)
    content = dump_all(redis_url, "e")
    client.close()
    stored = {u.decode(): blob for k, v in content.items() if ":u:" in k for u, blob in v.items()}
    at_risk = [u.decode() for k, v in content.items() if k.endswith(":risk") for u, _ in v]
    saved = [u.decode() for k, v in content.items() if ":r:" in k for u, _ in v]
    assert damaged, "the test needs users in the indexes"
    assert all(stored.get(u) and UserState.from_bytes(stored[u]).at_risk_since_s for u in at_risk), "stale at-risk entries"
    assert all(stored.get(u) and on_save_list(UserState.from_bytes(stored[u])) for u in saved), "stale save-list entries"
    counters: dict[str, float] = {}
    for k, v in content.items():
        if k.endswith(":stats"):
            for name, n in v.items():
                counters[name.decode()] = counters.get(name.decode(), 0) + float(n)
    states = [UserState.from_bytes(blob) for blob in stored.values()]
    recount = {"users": len(states), "at_risk": sum(bool(st.at_risk_since_s) for st in states),
               "reachable": sum(on_save_list(st) for st in states)}
    assert {k: counters.get(k, 0) for k in recount} == recount, "an empty record is unreadable: what it added is taken off"
