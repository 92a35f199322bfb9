"""`churnwatch relayout`'s answers: when the partition count did not change (QA20 F3: it said "state
moved from 8 to 8 partitions (0 due entries moved); start the workers"), and while a worker is
marked running (QA20b F11: it ran with a worker holding every partition; the marks of real workers:
tests/test_layout_refusal.py). The broker side stands in (a topic of 8 partitions); Redis is real."""

from __future__ import annotations

import pytest

from streams.cli import main


def _stand_in_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The topic has 8 partitions; no broker is asked."""
    import streams.publisher
    import streams.worker.relayout

    monkeypatch.setattr(streams.publisher, "check_kafka_reachable", lambda settings: None)
    monkeypatch.setattr(streams.worker.relayout, "partition_count", lambda settings, topic: 8)


def _ms(time_reply: tuple[int, int]) -> int:
    """Redis's TIME reply in epoch ms (the clock the running marks expire by)."""
    return time_reply[0] * 1000 + time_reply[1] // 1000


def test_relayout_at_the_same_count_says_there_is_nothing_to_move(redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import redis

    _stand_in_broker(monkeypatch)
    client = redis.Redis.from_url(redis_url)
    client.hset("cw:meta", "partitions:activity-events", 8)
    assert main(["--redis-url", redis_url, "relayout"]) == 0
    assert capsys.readouterr().out == ("activity-events: the state is laid out for the topic's 8 partitions already: "
                                       "nothing to move\n")
    client.hset("cw:meta", "partitions:activity-events", 4)
    assert main(["--redis-url", redis_url, "relayout"]) == 0
    assert capsys.readouterr().out.startswith("activity-events: state moved from 4 to 8 partitions (0 due entries moved)")
    assert client.hget("cw:meta", "partitions:activity-events") == b"8"
    client.close()


def test_relayout_refuses_while_a_worker_is_marked_running_and_moves_nothing(
        redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """QA20b F11: relayout ran (rc=0) with a worker holding every partition. A live running mark
    (set here as the worker's gauge timer sets it: expiry = Redis's now + MARK_MS) refuses in one
    line naming the worker, exit 2, and leaves the layout and the due entries as they were;
    ``--ignore-running-workers`` goes on, saying so on stderr."""
    import redis

    from streams.worker.keys import Keys, due_member
    from streams.worker.liveness import MARK_MS
    from streams.worker.relayout import partition_of

    _stand_in_broker(monkeypatch)
    keys, topic = Keys("cw"), "activity-events"
    user = next(u for u in (f"user-{i}" for i in range(100)) if partition_of(u, 8) != partition_of(u, 4))
    old, new = keys.due(0, topic, partition_of(user, 4)), keys.due(0, topic, partition_of(user, 8))
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset("cw:meta", f"partitions:{topic}", 4)
        client.zadd(old, {due_member(3, user): 1_000})
        client.zadd(keys.running(topic), {"w1 pid 41 (ab12)": _ms(client.time()) + MARK_MS})
        assert main(["--redis-url", redis_url, "relayout"]) == 2
        out = capsys.readouterr()
        lines = out.err.strip().splitlines()
        assert out.out == "" and len(lines) == 1, out
        assert lines[0].startswith("churnwatch relayout: error: 1 worker runs on activity-events (w1 pid 41 (ab12), seen ")
        assert "stop every worker" in lines[0] and "nothing moved" in lines[0] and "--ignore-running-workers" in lines[0]
        assert client.hget("cw:meta", f"partitions:{topic}") == b"4"
        assert client.zrange(old, 0, -1) == [due_member(3, user).encode()] and not client.exists(new)

        assert main(["--redis-url", redis_url, "relayout", "--ignore-running-workers"]) == 0
        out = capsys.readouterr()
        assert out.out.startswith("activity-events: state moved from 4 to 8 partitions (1 due entries moved)")
        assert out.err == ("churnwatch relayout: warning: 1 worker(s) marked running on activity-events, gone on as "
                           "--ignore-running-workers asked\n")
        assert client.zrange(new, 0, -1) == [due_member(3, user).encode()] and not client.exists(old)
    finally:
        client.close()


def test_a_mark_past_its_expiry_is_a_worker_gone(redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A worker that crashed leaves its mark; once Redis's clock passed its expiry, relayout goes on."""
    import redis

    from streams.worker.keys import Keys

    _stand_in_broker(monkeypatch)
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset("cw:meta", "partitions:activity-events", 4)
        client.zadd(Keys("cw").running("activity-events"), {"crashed pid 1 (cd34)": _ms(client.time()) - 1})
        assert main(["--redis-url", redis_url, "relayout"]) == 0
        out = capsys.readouterr()
        assert out.out.startswith("activity-events: state moved from 4 to 8 partitions") and out.err == ""
    finally:
        client.close()


def test_a_workers_mark_lives_from_its_start_to_its_end(redis_url: str) -> None:
    """``RunningMark``: nothing before ``start``; from it, an expiry MARK_MS after Redis's clock at the
    write, which ``running_workers`` reports; after ``end``, gone and never written again (a refresh
    of the gauge timer after the stop must not bring it back for MARK_MS). A refresh drops the marks
    already expired (a crashed worker's), so the key does not grow with restarts."""
    import asyncio

    from streams.settings import Settings
    from streams.worker.liveness import MARK_MS, RunningMark, running_workers
    from streams.worker.store import Store

    async def scenario() -> None:
        store = Store(Settings(redis_url=redis_url))
        client, key = store.client, store.keys.running("ev")
        try:
            await client.zadd(key, {"crashed pid 1 (cd34)": 1})
            mark = RunningMark(store, "ev")
            await mark.refresh()
            assert await client.zrange(key, 0, -1) == [b"crashed pid 1 (cd34)"]
            before = _ms(await client.time())
            await mark.start()
            after = _ms(await client.time())
            assert await client.zrange(key, 0, -1) == [mark.name.encode()]
            assert before + MARK_MS <= await client.zscore(key, mark.name) <= after + MARK_MS
            [(name, ago)] = await running_workers(client, key)
            assert name == mark.name and 0 <= ago <= MARK_MS / 1000
            await mark.end()
            await mark.refresh()
            assert not await client.exists(key) and await running_workers(client, key) == []
        finally:
            await store.close()

    asyncio.run(scenario())
