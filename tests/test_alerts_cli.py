"""``churnwatch alerts`` and ``follow_alerts`` against a real broker: de-duplication, filters, new-only."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka.errors import NodeNotReadyError
from kafka import KafkaProducer

from models.engine import Alert, alert_id
from models.scoring import Scores
from streams.cli import main
from streams.worker.topics import ensure_topics
from streams.errors import UserError
from streams.cli.alerts import SeenIds, follow_alerts, format_alert, parse_kinds, parse_seconds
from streams.settings import Settings

pytestmark = pytest.mark.integration

T0 = 1_770_120_000_000  # 2026-02-03 12:00 UTC


def _alert(user: str, kind: str = "at_risk", minutes: int = 0, previous: str | None = None) -> bytes:
    scores = Scores(31.2, 40.4, 0.8213, "declining" if kind != "recovered" else "active", None,
                    "check_in" if kind == "at_risk" else "none", ("activity down 80% against the user's own 90-day baseline",))
    t = T0 + minutes * 60_000
    alert = Alert(alert_id(user, kind, previous or "", t), kind, user, t, scores, previous)  # type: ignore[arg-type]
    return orjson.dumps(alert.to_dict())


def _settings(bootstrap: str, name: str) -> Settings:
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_events=f"{name}-e", topic_alerts=f"{name}-a",
                        topic_dlq=f"{name}-d", partitions=3)
    ensure_topics(settings)
    return settings


def _produce(bootstrap: str, topic: str, values: list[tuple[str, bytes]], timestamp_ms: int | None = None,
             partition: int | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in values:
        producer.send(topic, key=key.encode(), value=value, timestamp_ms=timestamp_ms, partition=partition)
    producer.flush()
    producer.close()


def _end_markers(settings: Settings, kind: str = "at_risk") -> set[str]:
    """One more alert at the end of every partition; their ids.

    A follower that has shown all of them has read every partition to its end, whatever the
    broker's speed: the tests stop on a count (``max_alerts``) instead of an idle timeout,
    which a slow first fetch on a loaded machine would cut short.
    """
    ids = set()
    for p in range(settings.partitions):
        value = _alert(f"end-{p}", kind, minutes=120, previous="active" if kind == "stage_changed" else None)
        _produce(settings.kafka_bootstrap_servers, settings.topic_alerts, [(f"end-{p}", value)], partition=p)
        ids.add(orjson.loads(value)["alert_id"])
    return ids


async def _collect(settings: Settings, **kwargs: object) -> list[dict]:
    return [a async for a in follow_alerts(settings, **kwargs)]  # type: ignore[arg-type]


def test_follow_from_beginning_deduplicates_and_filters(kafka_bootstrap: str, unique_name: str) -> None:
    settings = _settings(kafka_bootstrap, unique_name)
    a1, a2 = _alert("u1"), _alert("u2", minutes=5)
    rec = _alert("u1", "recovered", minutes=60)
    _produce(kafka_bootstrap, settings.topic_alerts,
             [("u1", a1), ("u2", a2), ("u1", a1), ("u1", b"not json"), ("u1", rec), ("u2", a2)])
    ends = _end_markers(settings)
    everything = asyncio.run(asyncio.wait_for(_collect(settings, from_beginning=True, max_alerts=3 + len(ends)), 60))
    assert sorted(a["alert_id"] for a in everything) == sorted([orjson.loads(v)["alert_id"] for v in (a1, a2, rec)] + list(ends))
    at_risk = asyncio.run(asyncio.wait_for(
        _collect(settings, from_beginning=True, kinds=parse_kinds("at-risk"), max_alerts=2 + len(ends)), 60))
    assert sorted(a["user_id"] for a in at_risk if a["alert_id"] not in ends) == ["u1", "u2"]
    first = asyncio.run(_collect(settings, from_beginning=True, max_alerts=1))
    assert len(first) == 1


def test_follow_stops_after_the_idle_timeout(kafka_bootstrap: str, unique_name: str) -> None:
    settings = _settings(kafka_bootstrap, unique_name)
    assert asyncio.run(asyncio.wait_for(_collect(settings, from_beginning=True, idle_timeout_s=0.5), 60)) == []


def test_follow_shows_only_new_alerts_without_from_beginning(kafka_bootstrap: str, unique_name: str) -> None:
    settings = _settings(kafka_bootstrap, unique_name)
    old = _alert("old-user")
    _produce(kafka_bootstrap, settings.topic_alerts, [("old-user", old)], timestamp_ms=int(time.time() * 1000) - 60_000)
    new = [(f"n{i}", _alert(f"n{i}", minutes=i)) for i in range(4)]

    async def scenario() -> list[dict]:
        ready = asyncio.Event()
        task = asyncio.create_task(_collect(settings, max_alerts=4, ready=ready))
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.to_thread(_produce, kafka_bootstrap, settings.topic_alerts, new)
        return await asyncio.wait_for(task, 60)

    got = asyncio.run(scenario())
    assert sorted(a["user_id"] for a in got) == ["n0", "n1", "n2", "n3"]


def test_alerts_command_prints_lines_and_json(kafka_bootstrap: str, unique_name: str, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(kafka_bootstrap, unique_name)
    stage = _alert("u7", "stage_changed", minutes=1, previous="active")
    _produce(kafka_bootstrap, settings.topic_alerts, [("u7", _alert("u7")), ("u7", stage), ("u7", stage)])
    ends = _end_markers(settings, "stage_changed")  # --max, not --timeout: see _end_markers
    monkeypatch.setenv("CHURNWATCH_TOPIC_ALERTS", settings.topic_alerts)
    args = ["--bootstrap-servers", kafka_bootstrap, "alerts", "--from-beginning"]
    assert main([*args, "--max", str(2 + len(ends))]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if " user end-" not in x]
    assert len(lines) == 2
    assert any(line.startswith("2026-02-03 12:00 AT RISK user u7 risk 0.82 health 31 temp 40 stage declining -> check in: activity down 80%")
               for line in lines)
    assert any("STAGE active -> declining user u7" in line for line in lines)
    assert main([*args, "--max", str(1 + len(ends)), "--json", "--kind", "stage_changed"]) == 0
    out = [x for x in capsys.readouterr().out.splitlines() if orjson.loads(x)["alert_id"] not in ends]
    assert [orjson.loads(x)["kind"] for x in out] == ["stage_changed"]
    assert orjson.loads(out[0]) == orjson.loads(stage)


def test_missing_topic_is_one_readable_error(kafka_bootstrap: str, unique_name: str, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNWATCH_TOPIC_ALERTS", f"{unique_name}-absent")
    assert main(["--bootstrap-servers", kafka_bootstrap, "alerts", "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_seen_ids_is_bounded() -> None:
    seen = SeenIds(100)
    assert all(seen.add(str(i)) for i in range(1000))
    assert len(seen) == 100
    assert not seen.add("999") and seen.add("0")  # recent ids remembered, old ones forgotten


def test_format_recovered_and_bad_values() -> None:
    line = format_alert(orjson.loads(_alert("u9", "recovered", minutes=90)))
    assert line.startswith("2026-02-03 13:30 RECOVERED user u9 risk 0.82")
    assert "->" not in line
    assert format_alert({"kind": "at_risk", "alert_id": "x"}).startswith("????-??-?? ??:?? AT RISK user ?")
    with pytest.raises(ValueError, match="unknown alert kind churned"):
        parse_kinds("at_risk,churned")
    with pytest.raises(ValueError, match="--timeout"):
        parse_seconds("10x", name="--timeout")


class _StopFails:
    """A consumer whose ``stop`` fails as aiokafka's does when the broker went away mid-fetch
    (its fetch task's CancelledError, or a Kafka error, comes out of ``stop``: QA13 F5)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def stop(self) -> None:
        raise self.exc


@pytest.mark.parametrize("exc", [asyncio.CancelledError(), NodeNotReadyError("node 111")])
def test_a_broker_lost_while_following_is_one_readable_error(exc: BaseException) -> None:
    from streams.kafka_admin import stop_reader as _stop

    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9", topic_alerts="t-alerts")
    with pytest.raises(UserError, match=r"lost the connection to Kafka at 127\.0\.0\.1:9 while following 't-alerts'"):
        asyncio.run(_stop(_StopFails(exc), settings))


def test_our_own_cancellation_is_passed_on_while_stopping() -> None:
    """Ctrl-C or a caller's timeout cancels the follower: that cancellation is not turned into an error line."""
    from streams.kafka_admin import stop_reader as _stop

    class _SlowStop:
        async def stop(self) -> None:
            await asyncio.sleep(60)

    async def cancelled() -> None:
        task = asyncio.ensure_future(_stop(_SlowStop(), Settings()))
        await asyncio.sleep(0)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())
