"""`churnwatch relayout`'s answer when the partition count did not change (QA20 F3): it said "state
moved from 8 to 8 partitions (0 due entries moved); start the workers", also to an operator who ran
it with the workers running. The broker side stands in (a topic of 8 partitions); Redis is real."""

from __future__ import annotations

import pytest

from streams.cli import main


def test_relayout_at_the_same_count_says_there_is_nothing_to_move(redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import redis

    import streams.publisher
    import streams.worker.relayout

    monkeypatch.setattr(streams.publisher, "check_kafka_reachable", lambda settings: None)
    monkeypatch.setattr(streams.worker.relayout, "partition_count", lambda settings, topic: 8)
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
