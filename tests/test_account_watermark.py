"""The account side's watermark: marks and heartbeats read off the stream, and held copies kept in
Redis through the real account scripts (a restart between holding and releasing loses nothing).

The order-independence itself is tested on the pure phase in tests/test_revenue_live.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from models.account_health import Member, member_key
from streams.settings import Settings
from streams.worker.clock import NEVER, PartitionClock
from streams.worker.codec import Decoder
from streams.worker.phases import decode_batch
from streams.worker.revenue import AccountTick, MEMBER_HEADER, advance_accounts, member_copy, plan_account_reads
from streams.worker.store import Store
from streams.worker.watermark import (HEARTBEAT_EVERY_MS, HEARTBEAT_HEADER, HEARTBEAT_QUIET_EVERY_MS, MARK_HEADER,
                                      PERIOD_MS, Heartbeats, watermark_ms)
from tests.test_pipeline import base_settings  # noqa: F401  (fixture)
from tests.test_revenue_live import DAY_MS, GRACE_MS, START_MS, TOPIC, _made_by_two_partitions, _Redis, _tick_until

WALL_MS = START_MS + 400 * DAY_MS


@dataclass
class _Rec:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def test_decode_folds_marks_and_heartbeats_and_keeps_them_from_users_and_the_clock() -> None:
    member = Member(member_key("u1"), START_MS // 1000, 1, 0.0, 1.0, 1.0, "u1")
    key, value, headers = member_copy("acme", START_MS, member, 2, 40)
    recs = [_Rec(0, key, value, headers=(*headers, (MARK_HEADER, b"%d" % (START_MS - 5000)))),
            _Rec(1, b"churnwatch-heartbeat-3", b"", headers=((HEARTBEAT_HEADER, b"2:%d" % START_MS),)),
            _Rec(2, b"churnwatch-heartbeat-3", b"", headers=((HEARTBEAT_HEADER, b"5:%d" % (START_MS + 9000)),)),
            _Rec(3, b"churnwatch-heartbeat-3", b"", headers=((HEARTBEAT_HEADER, b"5:%d" % START_MS),))]  # older: kept the highest
    clocks = {0: PartitionClock(3_600_000)}
    out = decode_batch({0: recs}, clocks, Decoder(), WALL_MS, topic="ev", max_dlq_value_bytes=1024)
    assert out.marks == {0: {2: START_MS, 5: START_MS + 9000}}
    assert [(c.account, c.origin, c.origin_offset) for c in out.accounts] == [("acme", 2, 40)]
    assert not out.users and not out.dlq and clocks[0].stream_ms == NEVER and out.last_offset == {0: 3}


def test_heartbeats_go_to_every_partition_within_a_second_of_a_new_period_and_every_30_s_else() -> None:
    """A mark moving within a period changes no released watermark (``release_ms``): no heartbeat
    for it, or every busy partition would heartbeat every partition every second (P x P a second)."""
    hour = PERIOD_MS
    beats = Heartbeats(4)
    assert beats.due({0: 5000, 2: 7000}, 100_000) == [], "no account in use yet: no record"
    beats.active = True
    first = beats.due({0: 5000, 2: 7000}, 100_000)
    assert [(k, h) for k, _, h in first][:1] == [(beats.keys[0], [(HEARTBEAT_HEADER, b"0:5000")])]
    assert len(first) == 2 * 4, "each own partition's mark, to each of the 4 partitions"
    t = 100_000 + HEARTBEAT_EVERY_MS
    assert beats.due({0: 6000, 2: 7000}, t) == [], "a mark moved within its period: not after a second"
    assert beats.due({0: hour, 2: 7000}, t - 1) == []
    assert len(beats.due({0: hour, 2: 7000}, t)) == 8, "a mark entered another period: after a second"
    assert beats.due({0: hour + 9000, 2: hour - 1}, t + HEARTBEAT_EVERY_MS) == [], "within their periods"
    assert len(beats.due({0: hour + 9000, 2: hour - 1}, t + HEARTBEAT_QUIET_EVERY_MS)) == 8, "a new owner of p learns it"
    assert beats.due({0: NEVER}, t + 10 * HEARTBEAT_QUIET_EVERY_MS) == [], "no time yet: nothing to say"


def test_watermark_needs_every_partition_and_the_grace_bounds_the_slowest() -> None:
    assert watermark_ms({0: 9_000, 1: 8_000, 2: 7_000}, 3, 10_000) == 7_000
    assert watermark_ms({0: 9_000, 1: 8_000}, 3, 10_000) == -1_000, "partition 2 not heard from: the grace alone"
    assert watermark_ms({0: 90_000, 1: 8_000}, 2, 10_000) == 80_000, "one partition beyond the grace holds back no more"


async def _cycle(store: Store, copies: list[Any], release: int, token: str) -> list[dict[str, object]]:
    """One account phase through the real scripts, as the pipeline's tail runs it."""
    reads = plan_account_reads(copies, TOPIC, store.buckets)
    done = advance_accounts(copies, reads, await store.read_accounts(reads), TOPIC,
                            {0: max((c.offset for c in copies), default=-1)} if any(c.offset >= 0 for c in copies) else {},
                            {0: release})
    assert await store.write_accounts(done.writes, token) == []
    await store.write_account_dues(TOPIC, done.dues)
    return [orjson.loads(v) for _, v in done.alerts]


def test_held_copies_live_in_redis_and_a_new_owner_releases_them_in_event_order(redis_url: str) -> None:
    """Partition 1's copies come first and are held (written with the account, fenced); the worker
    stops; a new owner reads partition 0's copies, the watermark passes everything, and the due
    index brings the account back: its alerts are those of the copies read in event order."""
    copies = _made_by_two_partitions()
    reference = _Redis()
    reference.cycle(copies, {0: len(copies) - 1})
    _tick_until(reference, START_MS + 120 * DAY_MS)
    fast = [c for c in copies if c.origin == 1]
    slow = [c for c in copies if c.origin == 0]
    for i, c in enumerate(fast + slow):
        c.offset = i
    settings = Settings(redis_url=redis_url, topic_events=TOPIC)
    end_ms = START_MS + 120 * DAY_MS

    async def first() -> tuple[list[dict[str, object]], int]:
        store = Store(settings)
        await store.connect()
        try:
            alerts = await _cycle(store, fast, watermark_ms({1: fast[-1].ts_ms}, 2, GRACE_MS), "w1:1")
            raw = await store._client.hget(store.keys.account_side(plan_account_reads(fast, TOPIC, store.buckets)[0].bucket),
                                           "contoso|held")
            return alerts, len(orjson.loads(raw))
        finally:
            await store.close()

    async def second() -> list[dict[str, object]]:
        store = Store(settings)
        await store.connect()
        try:
            alerts = await _cycle(store, slow, watermark_ms({0: slow[-1].ts_ms, 1: fast[-1].ts_ms}, 2, GRACE_MS), "w2:1")
            for _ in range(200):  # the sweep of the due index with the watermark past the end
                due, _ = (await store.due_accounts(TOPIC, {0: (end_ms - 1) // 1000}, 100))[0]
                if not due:
                    return alerts
                alerts += await _cycle(store, [AccountTick(0, a, s * 1000) for a, s in due], end_ms, "w2:2")
            raise AssertionError("the account kept coming due")
        finally:
            await store.close()

    held_alerts, held = asyncio.run(first())
    assert held_alerts == [] and held == len(fast), "partition 1's copies wait in Redis"
    got = held_alerts + asyncio.run(second())
    assert [(a["alert_id"], a["kind"], a["event_time_ms"], a["reasons"]) for a in got] == \
        [(a["alert_id"], a["kind"], a["event_time_ms"], a["reasons"]) for a in reference.alerts]


def test_a_partition_fed_only_heartbeats_and_copies_is_idle_and_follows_the_topic_time() -> None:
    """Partition 0's user sends an event a second, each 10 min of event time later; partition 1's
    users are quiet but get heartbeats and copies every second (a moving mark heartbeats every
    partition). Partition 1 must count as idle and borrow the topic's time, or its mark freezes and
    holds every account's watermark (seen with a real worker, 8 partitions: 18,000 s behind)."""
    from streams.worker.clock import TopicClock
    from streams.worker.phases import reaches_clock

    lateness, idle = 3_600_000, 5_000
    clock = TopicClock(lateness, idle, "event")
    for p in (0, 1):
        clock.assign(p, START_MS, wall_now_ms=0)
    member = member_copy("acme", START_MS, Member(member_key("u1"), START_MS // 1000, 1, 0.0, 1.0, 1.0, "u1"), 0, 1)
    for i in range(1, 31):
        wall, event_ms = i * 1000, START_MS + i * 600_000
        clock.partitions[0].admit(event_ms)
        clock.observe_global(event_ms)
        clock.observe_fetch(0, reaches_clock([_Rec(i, b"u0", b"{}")]), True, wall)
        beats = [_Rec(2 * i, b"churnwatch-heartbeat-1", b"", headers=((HEARTBEAT_HEADER, b"0:%d" % event_ms),)),
                 _Rec(2 * i + 1, member[0], member[1], headers=tuple(member[2]))]
        clock.observe_fetch(1, reaches_clock(beats), True, wall)
    assert clock.cutoff_ms(1, 30_000) == clock.cutoff_ms(0, 30_000) == START_MS + 30 * 600_000 - lateness


def test_a_held_copy_counts_once_whatever_versions_merge_into_it() -> None:
    """``churnwatch_account_copies_held_total`` counts copies held, not versions: a member's copy of
    an hour held, then two more versions of it read (one cycle, then another) while it waits."""
    from tests.test_revenue_live import _Redis
    from streams.worker.revenue import MemberCopy

    def version(offset: int, last_seen_s: int) -> MemberCopy:
        return MemberCopy(0, offset, "acme", START_MS, Member(member_key("u1"), last_seen_s, 1, 0.0, 1.0, 1.0, "u1"),
                          origin=1, origin_offset=offset)

    redis, hold = _Redis(), {0: START_MS - PERIOD_MS}
    redis.cycle([version(0, START_MS // 1000)], {0: 0}, hold)
    redis.cycle([version(1, START_MS // 1000 + 60), version(2, START_MS // 1000 + 120)], {0: 2}, hold)
    assert [d.held for d in redis.done] == [1, 0] and redis.held, "one copy held, counted once"


def test_the_watermark_waits_for_the_topics_partitions_not_the_setting() -> None:
    """A topic of 4 partitions with ``CHURNWATCH_PARTITIONS`` at 8: once the consumer knows the
    layout (4), every account's watermark is the least mark of partitions 0-3 (not the largest less
    the 7-day grace, partitions 4-7 never being heard), and heartbeats go to those 4."""
    from models.model import load_model
    from streams.worker.partitioner import partitions_of
    from streams.worker.pipeline import Pipeline

    settings = Settings(partitions=8)
    pipeline = Pipeline(settings, Store(settings), None, load_model())  # type: ignore[arg-type]  # no I/O here
    pipeline.assign(0, None, WALL_MS)
    marks = {q: START_MS + q * 60_000 for q in range(4)}
    pipeline._marks[0].update(marks)
    assert pipeline.account_watermark_ms(0) == max(marks.values()) - settings.account_grace_ms, "as with the setting"
    pipeline.set_partitions(4)
    assert pipeline.account_watermark_ms(0) == START_MS
    assert partitions_of(pipeline.heartbeats.keys, list(range(4))) == [0, 1, 2, 3]


@pytest.mark.integration
def test_a_restarted_worker_heartbeats_before_any_event_names_an_account(base_settings: Settings) -> None:
    """Accounts in use is recorded in Redis: after a restart the worker heartbeats at once, so the
    watermark moves and the account deadlines come due though silent accounts send no event (held
    in memory only, nothing was sent until an event named an account)."""
    from models.events import Event
    from streams.publisher import event_value
    from tests.test_pipeline import WALL_MS as PIPELINE_WALL_MS, Rec, run

    event = Event("u1", START_MS, "view", "v1", 0.0, "acme")

    async def scenario(make: Any) -> tuple[bool, bool, int]:
        first = await make()
        before = first.heartbeats.active
        await first.process({0: [Rec(0, b"u1", event_value(event))]}, PIPELINE_WALL_MS)
        restarted = await make()  # a new store and pipeline on the same Redis, partition 0 resumed
        await restarted.process({}, PIPELINE_WALL_MS)
        return before, first.heartbeats.active, restarted.heartbeats.sent_ms

    before, first_on, sent_ms = run(base_settings, scenario)
    assert (before, first_on) == (False, True), "off until an event names an account"
    assert sent_ms == PIPELINE_WALL_MS, "the restarted worker heartbeats at its first cycle"


def test_the_grace_is_whole_hours() -> None:
    """The watermark is floored to the hour and heartbeats go out when a mark enters another
    hour: a grace of 90 minutes would move the watermark with no heartbeat for up to 30 s."""
    from streams.settings import SettingsError

    assert Settings.from_env({"CHURNWATCH_ACCOUNT_GRACE_MS": "2h"}).account_grace_ms == 7_200_000
    assert Settings.from_env({"CHURNWATCH_ACCOUNT_GRACE_MS": "0"}).account_grace_ms == 0
    with pytest.raises(SettingsError, match="whole hours, got 5400000 ms"):
        Settings.from_env({"CHURNWATCH_ACCOUNT_GRACE_MS": "90m"})
