"""``Pipeline.process`` in-process against the real broker and Redis: batching independence,
the replay fence, DLQ reasons, and fencing by another worker."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable, Callable, Sequence

import orjson
import pytest
import redis as redis_lib

from models.events import Event
from models.model import ChurnModel, load_model
from streams.worker import metrics
from streams.worker.topics import ensure_topics
from streams.worker.consumer import KafkaSink
from streams.worker.keys import bucket_of
from streams.worker.pipeline import TIMING_HEADER, CycleAbandoned, Pipeline
import streams.worker.pipeline as pipeline_module
from streams.settings import Settings
from streams.worker.store import BucketWrite, Fenced, Store
from streams.publisher import event_value
from tests.harness import Rec, dump_state, read_progress, read_topic

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
START_MS = 1_767_225_600_000
WALL_MS = START_MS + 400 * DAY_MS  # a wall clock after all event times (only the future check reads it)




def history(seed: int = 3, users: int = 25, days: int = 70) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for u in range(users):
        uid = f"u{u:03d}"
        stop = rng.uniform(20, 60) if u % 3 == 0 else days
        t, n = rng.uniform(0, 3) * DAY_MS, 0
        while t < stop * DAY_MS:
            n += 1
            kind = rng.choice(("view", "click", "message", "purchase"))
            events.append(Event(uid, START_MS + int(t), kind, f"{uid}-{n}", 12.5 if kind == "purchase" else 0.0))
            t += rng.uniform(0.2, 2.5) * DAY_MS * (1 + (t / DAY_MS > 30 and u % 3 == 1) * 2)
    events.sort(key=lambda e: (e.ts_ms, e.event_id))
    return events


def records(events: Sequence[Event]) -> list[Rec]:
    return [Rec(i, ev.user_id.encode(), event_value(ev)) for i, ev in enumerate(events)]


@pytest.fixture()
def base_settings(kafka_bootstrap: str, redis_url: str, unique_name: str) -> Settings:
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, topic_events=f"ev-{unique_name}",
                 topic_alerts=f"al-{unique_name}", topic_dlq=f"dlq-{unique_name}", buckets=8, groups_per_bucket=4,
                 idle_partition_ms=0, partitions=1)
    ensure_topics(s)
    return s


def run(settings: Settings, scenario: Callable[[Callable[..., Pipeline]], Awaitable[Any]]) -> Any:
    """Run ``scenario(make_pipeline)`` with started sinks and connected stores, closing them after."""

    async def main() -> Any:
        opened: list[tuple[Store, KafkaSink]] = []

        async def make(prefix: str = "cw", store_cls: type[Store] = Store, model: ChurnModel | None = None) -> Pipeline:
            s = settings.with_(key_prefix=prefix)
            store, sink = store_cls(s), KafkaSink(s)
            await store.connect()
            await sink.start()
            opened.append((store, sink))
            pipeline = Pipeline(s, store, sink, model or load_model())
            pipeline.assign(0, (await store.read_progress(s.topic_events)).get(0), WALL_MS)
            return pipeline

        try:
            return await scenario(make)  # type: ignore[arg-type]
        finally:
            for store, sink in opened:
                await sink.stop()
                await store.close()

    return asyncio.run(main())


async def feed(pipeline: Pipeline, recs: Sequence[Rec], size: int) -> list[str]:
    """Process ``recs`` in batches of ``size``, then sweep as a caught-up, idle partition; alert ids."""
    ids: list[str] = []
    for i in range(0, len(recs), size):
        pipeline.clock.observe_fetch(0, len(recs[i:i + size]), caught_up=False, wall_now_ms=WALL_MS)
        await pipeline.process({0: recs[i:i + size]}, WALL_MS)
    pipeline.clock.observe_fetch(0, 0, caught_up=True, wall_now_ms=WALL_MS)
    await pipeline.process({}, WALL_MS)
    return ids


def alert_ids(settings: Settings) -> list[str]:
    return [orjson.loads(r.value)["alert_id"] for r in read_topic(settings.kafka_bootstrap_servers, settings.topic_alerts, settings.partitions)]


def test_state_and_alerts_do_not_depend_on_batch_size(base_settings: Settings, redis_url: str) -> None:
    recs = records(history())

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> None:
        await feed(await make("one"), recs, len(recs))
        await feed(await make("many"), recs, 7)

    run(base_settings, scenario)
    one, many = dump_state(redis_url, "one"), dump_state(redis_url, "many")
    assert len(one) == 25 and one == many, "same bytes for every user whatever the batching"
    ids = alert_ids(base_settings)
    assert ids, "the history must raise alerts, or the comparison proves nothing"
    assert len(ids) == 2 * len(set(ids)), "each run produced the same alert ids exactly once"
    client = redis_lib.Redis.from_url(redis_url)
    stats = [{k: float(v) for k, v in client.hgetall(f"{p}:{{{b}}}:stats").items()} for p in ("one", "many") for b in range(8)]
    client.close()
    assert stats[:8] == stats[8:], "bucket stats agree too"


def test_a_write_redis_refuses_for_lack_of_memory_is_retried_in_place_with_backoff(base_settings: Settings, redis_url: str) -> None:
    """QA8 H3: under ``noeviction`` with Redis full, reads answer and writes are refused
    (OutOfMemoryError). The cycle failed and was read, scored and its alerts sent again every
    0.05 s (no backoff with two cycles in flight). Now the refused write is retried in place like
    an outage, doubling from 0.05 s: Redis refuses the first six attempts (memory is given back at
    the sixth refusal), the alerts go out once, and the states and alert ids are the clean run's."""
    import logging

    from streams.kafka_admin import RETRY_LOGGER

    recs = records(history())
    client = redis_lib.Redis.from_url(redis_url)
    before = client.config_get("maxmemory*")
    delays: list[float] = []

    class Refusals(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "OutOfMemoryError" in record.getMessage():
                delays.append(float(record.args[-1]))  # type: ignore[index]
                if len(delays) == 6:
                    client.config_set("maxmemory", before["maxmemory"])

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> None:
        await feed(await make("clean"), recs, len(recs))
        full = await make("full")  # connected (its meta written) before Redis is full
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)
        await feed(full, recs, len(recs))

    handler = Refusals()
    logging.getLogger(RETRY_LOGGER).addHandler(handler)
    try:
        run(base_settings, scenario)
    finally:
        logging.getLogger(RETRY_LOGGER).removeHandler(handler)
        client.config_set("maxmemory", before["maxmemory"])
        client.config_set("maxmemory-policy", before["maxmemory-policy"])
        client.close()
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6], "each refusal doubles the wait"
    clean, full = dump_state(redis_url, "clean"), dump_state(redis_url, "full")
    assert len(clean) == 25 and clean == full, "the refused cycle applied once memory came back"
    ids = alert_ids(base_settings)
    assert ids, "the history must raise alerts, or the comparison proves nothing"
    assert len(ids) == 2 * len(set(ids)), "each run sent each alert id once: none again for a refused write"


def test_stage_counters_agree_with_live_scoring_when_some_users_hold_only_billing_statements(base_settings: Settings,
                                                                                             redis_url: str) -> None:
    """QA 2026-12 (#4): the stage counters (console Churn page, /api/v1/churn, users_by_stage)
    said "new 41, churned 60" where live scoring of every user said new 4, churned 96: the holders
    of unused trials, whose records only subscription statements made, were counted "new" (their
    stage byte, never reviewed) and scored "churned" (silent since 1970). They are no users yet
    (models.state.tracked): the counters and live scoring of the users `churnwatch score` scores agree."""
    from collections import Counter

    from models.scoring import score
    from models.state import STAGES, UserState
    from models.subscription import Subscription

    def tracked(st: UserState) -> bool:  # models.state.tracked, written out: the test runs on the code before it too
        return bool(st.n_events or st.cancelled_s)

    events = history(users=8, days=40)
    for i in range(3):  # unused trials: a trial statement, cancelled when it ends
        t = START_MS + (5 + 3 * i) * DAY_MS
        events += [Event(f"t{i}", t, "subscription", f"t{i}-1", 0.0, f"acct{i}", Subscription("trial", "Pro", 4_999, t + 14 * DAY_MS)),
                   Event(f"t{i}", t + 14 * DAY_MS, "subscription", f"t{i}-2", 0.0, f"acct{i}", Subscription("cancelled", "Pro", 0))]
    events.sort(key=lambda e: (e.ts_ms, e.event_id))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> dict[str, float]:
        pipeline = await make("billing")
        await feed(pipeline, records(events), 40)
        return await pipeline.store.stats()

    stats = run(base_settings, scenario)
    states = {u: UserState.from_bytes(b) for u, b in dump_state(redis_url, "billing").items()}
    assert len(states) == 11 and sum(not tracked(st) for st in states.values()) == 3, "the trial holders' records are kept"
    now_s = max(e.ts_ms for e in events) // 1000  # the stream time the views score at
    live = Counter(score(st, max(now_s, st.last_seen_s), load_model()).stage for st in states.values() if tracked(st))
    counted = {name: int(stats.get(f"stage:{name}", 0)) for name in STAGES}
    assert int(stats["users"]) == 8 and counted == {name: live[name] for name in STAGES}, (stats, live)


def test_a_cycle_signals_applying_after_scoring_before_alerts_and_states(base_settings: Settings) -> None:
    """``Pipeline.applying`` (the consumer resumes fetching then) comes once per cycle, after the
    batch is scored and before anything of it leaves: alerts produced, states written."""
    recs = records(history(users=8, days=40))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> list[str]:
        pipeline = await make("applying")
        order: list[str] = []
        send, write = pipeline.producer.send_all, pipeline.store.write

        async def send_all(topic: str, batch: Any) -> None:
            order.append("produce")
            await send(topic, batch)

        async def store_write(writes: Any, token: str, *progress: Any) -> Any:
            order.append("write")
            return await write(writes, token, *progress)

        pipeline.applying = lambda: order.append("applying")
        pipeline.producer.send_all = send_all  # type: ignore[method-assign]
        pipeline.store.write = store_write  # type: ignore[method-assign]
        pipeline.clock.observe_fetch(0, len(recs), caught_up=True, wall_now_ms=WALL_MS)
        await pipeline.process({0: recs}, WALL_MS)
        return order

    order = run(base_settings, scenario)
    assert "produce" in order and "write" in order, "the history must raise alerts, or the order proves nothing"
    assert order[0] == "applying" and order.count("applying") == 1


def test_a_cycle_hands_its_alerts_to_the_producer_before_submit_returns(base_settings: Settings) -> None:
    """``Pipeline.submit`` returns once its tail has handed the alerts to the producer (acks and the
    state write still to come): the consumer goes on to the next fetch, decode and read without
    yielding for milliseconds, and a tail that had not started yet sent the alerts only then."""
    recs = records(history(users=8, days=40))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> list[str]:
        pipeline = await make("handoff")
        order: list[str] = []
        send = pipeline.producer.send_all

        async def send_all(topic: str, batch: Any) -> None:
            order.append(f"send {topic}")
            await send(topic, batch)

        pipeline.producer.send_all = send_all  # type: ignore[method-assign]
        pipeline.clock.observe_fetch(0, len(recs), caught_up=True, wall_now_ms=WALL_MS)
        flight = await pipeline.submit({0: recs}, WALL_MS)
        order.append("submitted")
        await pipeline.settle(flight)
        order.append("settled")
        return order

    order = run(base_settings, scenario)
    alerts = f"send {base_settings.topic_alerts}"
    assert alerts in order, "the history must raise alerts, or the order proves nothing"
    assert order.index(alerts) < order.index("submitted") < order.index("settled")


def test_a_cycle_writes_its_progress_in_the_state_writes_round_trip(base_settings: Settings, redis_url: str) -> None:
    """No account work, no re-routed copies: the progress goes with the fenced state writes
    (Store.write with a ProgressWrite), not in a round trip of its own, and lands as before."""
    recs = records(history(users=8, days=30))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> tuple[list[str], Any]:
        pipeline = await make("folded")
        calls: list[str] = []
        write, write_progress = pipeline.store.write, pipeline.store.write_progress

        async def store_write(writes: Any, token: str, *progress: Any) -> Any:
            calls.append("write+progress" if progress else "write")
            return await write(writes, token, *progress)

        async def progress_alone(*args: Any) -> Any:
            calls.append("progress")
            return await write_progress(*args)

        pipeline.store.write = store_write  # type: ignore[method-assign]
        pipeline.store.write_progress = progress_alone  # type: ignore[method-assign]
        await pipeline.process({0: recs[:half]}, WALL_MS)  # the first cycle also looks for accounts come due
        del calls[:]
        result = await pipeline.process({0: recs[half:]}, WALL_MS)
        return calls, result.progress

    half = len(recs) // 2
    calls, progress = run(base_settings, scenario)
    assert calls == ["write+progress"]
    assert list(progress) == [0] and progress[0][0] == len(recs) - 1
    assert read_progress(redis_url, base_settings.topic_events, "folded") == {0: len(recs) - 1}


def test_replayed_offsets_are_skipped_by_the_bucket_fence(base_settings: Settings, redis_url: str) -> None:
    recs = records(history(users=10, days=30))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> tuple[int, int]:
        first = await make()
        await feed(first, recs, 50)
        before = dump_state(redis_url)
        # a crash lost the progress write: a new owner starts from scratch and reads everything again
        redis_lib.Redis.from_url(redis_url).delete(f"cw:progress:{base_settings.topic_events}")
        second = await make()
        result = await second.process({0: recs}, WALL_MS)
        assert dump_state(redis_url) == before, "replayed events change nothing"
        return result.processed, result.skipped

    processed, skipped = run(base_settings, scenario)
    assert processed == 0 and skipped == len(recs)


def test_rejections_go_to_the_dlq_with_their_reason(base_settings: Settings) -> None:
    good = [Event("amy", START_MS + i * DAY_MS, "view", f"amy-{i}") for i in range(5)]
    recs = records(good)
    recs.append(Rec(5, b"amy", event_value(good[4])))  # same event id again in the batch
    recs.append(Rec(6, b"amy", event_value(Event("amy", START_MS - 3 * DAY_MS, "view", "amy-old"))))  # late
    recs.append(Rec(7, b"amy", b"\xff\xfe"))
    recs.append(Rec(8, None, None))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> dict[str, int]:
        result = await (await make()).process({0: recs}, WALL_MS)
        assert result.processed == 5
        return result.rejected

    assert run(base_settings, scenario) == {"duplicate_event_id": 1, "late": 1, "not_utf8": 1, "malformed_json": 1}
    dlq = [orjson.loads(r.value) for r in read_topic(base_settings.kafka_bootstrap_servers, base_settings.topic_dlq, base_settings.partitions)]
    assert sorted((d["offset"], d["reason"]) for d in dlq) == [
        (5, "duplicate_event_id"), (6, "late"), (7, "not_utf8"), (8, "malformed_json")]


def test_events_of_a_name_the_model_does_not_track_are_counted_by_the_metric(base_settings: Settings,
                                                                            caplog: pytest.LogCaptureFixture,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """QA10 F6: under a model that tracks names, a renamed one counts only in the total; the
    metric says how many such events came (by count: names are free text, no label)."""
    model = load_model().with_(tracked_types=("view", "click"))
    kinds = ["view", "Note Created", "click", "order", "Note Created", "uninstall", "note_search"]
    recs = records([Event("amy", START_MS + i * DAY_MS, kind, f"amy-{i}") for i, kind in enumerate(kinds)])

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> int:
        before = metrics.EVENTS_UNTRACKED_TYPE._value.get()
        result = await (await make(model=model)).process({0: recs}, WALL_MS)
        assert result.processed == len(kinds) and not result.rejected
        return int(metrics.EVENTS_UNTRACKED_TYPE._value.get() - before)

    caplog.set_level("INFO", logger="streams.worker.pipeline")
    monkeypatch.setattr(pipeline_module, "_UNTRACKED_LOGGED", set())  # per process: no other test's names
    assert run(base_settings, scenario) == 3, "'Note Created' twice and 'note_search'; order and uninstall play roles"
    logged = [r.getMessage() for r in caplog.records if "neither tracked nor given a role" in r.getMessage()]
    assert {"note created", "note_search"} == {m.split("'")[1] for m in logged}, logged


def test_two_files_of_one_name_in_one_batch_lose_nothing_and_a_repeated_line_counts_once(base_settings: Settings,
                                                                                         tmp_path: Any) -> None:
    """QA4 #2 end to end through the worker's pipeline: ``publish`` of d1/ev.jsonl and d2/ev.jsonl (and the
    same as CSV) in one batch (a backlog) put the second file's events in the DLQ as ``duplicate_event_id``
    (both had ``ev.jsonl:1``); a line written twice counted twice. Now the ids are the events' content's."""
    from streams.publisher import read_records

    lines = {"d1": ['{"user_id":"fdup","type":"view","ts":"2026-01-10T23:10:00Z"}',
                    '{"user_id":"fdup","type":"click","ts":"2026-01-10T23:11:00Z"}'],
             "d2": ['{"user_id":"fdup","type":"message","ts":"2026-01-10T23:20:00Z"}',
                    '{"user_id":"fdup","type":"purchase","ts":"2026-01-10T23:21:00Z","amount":25}']}
    files = []
    for d, rows in lines.items():
        (tmp_path / d).mkdir()
        (tmp_path / d / "ev.jsonl").write_text("\n".join(rows) + "\n")
        (tmp_path / d / "ev.csv").write_text("user_id,ts,event_type,amount\n" + "".join(
            f"fdupc,{o['ts']},{o['type']},{o.get('amount', '')}\n" for o in map(orjson.loads, rows)))
        files += [tmp_path / d / "ev.jsonl", tmp_path / d / "ev.csv"]
    rep = tmp_path / "rep.jsonl"
    rep.write_text('{"user_id":"frep","type":"purchase","ts":"2026-01-10T23:15:00Z","amount":40}\n' * 2)
    values = [v for f in [*files, rep] for _, v in read_records(f, base_settings)]
    recs = [Rec(i, orjson.loads(v)["user_id"].encode(), v) for i, v in enumerate(values)]

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> tuple[int, dict[str, int]]:
        result = await (await make()).process({0: recs}, WALL_MS)
        return result.processed, result.rejected

    assert run(base_settings, scenario) == (9, {"duplicate_event_id": 1}), "every event of both files; the repeat once"


def test_a_csv_order_row_keeps_its_revenue_live_like_the_json_line(base_settings: Settings, tmp_path: Any) -> None:
    """QA7 H2 end to end through the worker's pipeline: ``publish`` of a CSV row ``Order,12.5`` sent the
    record without its amount (only a type spelled ``purchase`` kept one), so the user had 1 purchase and
    revenue 0, while the same event as a JSON line gave 12.5 (and ``backtest`` too). The default model
    counts ``order`` as a purchase: both now give 12.5, and the backtest's reading of the row agrees."""
    from streams.offline.history import read_events_csv
    from streams.publisher import read_records

    csv_path, jsonl = tmp_path / "ord.csv", tmp_path / "ord.jsonl"
    csv_path.write_text("user_id,ts,event_type,amount\nordx,2026-01-10T03:30:00Z,Order,12.5\n"
                        "ordx,2026-01-10T03:31:00Z,Page_View,\n")
    jsonl.write_text('{"user_id":"ordj","type":"Order","ts":"2026-01-10T03:30:00Z","amount":12.5}\n'
                     '{"user_id":"ordj","type":"Page_View","ts":"2026-01-10T03:31:00Z"}\n')
    values = [v for f in (csv_path, jsonl) for _, v in read_records(f, base_settings)]
    recs = [Rec(i, orjson.loads(v)["user_id"].encode(), v) for i, v in enumerate(values)]

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> dict[str, tuple[float, int]]:
        pipeline = await make()
        await pipeline.process({0: recs}, WALL_MS)
        states = {u: await pipeline.store.load_user(u) for u in ("ordx", "ordj")}
        return {u: (s.revenue, s.n_events) for u, s in states.items() if s is not None}

    assert run(base_settings, scenario) == {"ordx": (12.5, 2), "ordj": (12.5, 2)}
    assert sum(e.amount for e in read_events_csv(csv_path)) == 12.5, "what backtest and train read for the file"


def test_a_write_fenced_by_another_worker_abandons_the_cycle(base_settings: Settings, redis_url: str) -> None:
    events = [Event("bea", START_MS + i * DAY_MS, "view", f"bea-{i}") for i in range(10)]
    recs = records(events)
    rival: list[Pipeline] = []

    class RacingStore(Store):
        """A real store; just before its first write, a rival worker applies the same partition."""

        raced = False

        async def write(self, writes: Sequence[BucketWrite], token: str, progress: Any = None) -> list[Fenced]:
            if not self.raced:
                self.raced = True
                await rival[0].process({0: recs}, WALL_MS)
            return await super().write(writes, token, progress)

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> tuple[Any, Any]:
        rival.append(await make())
        racer = await make(store_cls=RacingStore)
        snap = racer.clock.partitions[0].snapshot()
        with pytest.raises(CycleAbandoned) as info:
            await racer.process({0: recs[:6]}, WALL_MS)
        return info.value.fenced, (snap, racer.clock.partitions[0].snapshot())

    fenced, (before, after) = run(base_settings, scenario)
    assert bucket_of("bea", 8) in {f.bucket for f in fenced}, "the user's bucket was taken over"
    assert {f.actual for f in fenced} == {"9"}, "the rival applied the partition up to offset 9"
    assert before == after, "an abandoned cycle leaves the clock as it was"
    state = dump_state(redis_url)
    assert list(state) == ["bea"]


def test_a_sweep_reads_only_buckets_with_a_review_due(base_settings: Settings, redis_url: str) -> None:
    """Once a partition's due indexes were read, a cycle touches a bucket for reviews only when its
    earliest due review is before the review clock: a cycle with nothing due and no records is idle."""
    recs = records(history(users=25, days=40))
    client = redis_lib.Redis.from_url(redis_url)
    keys = [f"sweep:{{{b}}}:due:{base_settings.topic_events}:0" for b in range(base_settings.buckets)]

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> None:
        pipeline = await make("sweep")
        await feed(pipeline, recs, 40)
        assert (await pipeline.process({}, WALL_MS)).idle, "the clock did not move: nothing to read"
        dues = {b: [s for _, s in client.zrange(k, 0, -1, withscores=True)] for b, k in enumerate(keys)}
        assert sum(map(len, dues.values())) > 10, "users wait for reviews, or the test proves nothing"
        # one event of a new user moves the clock two days past the last event
        last = max(orjson.loads(r.value)["ts"] for r in recs)
        late = Event("zed", last + 2 * DAY_MS + 5_000, "view", "zed-1")
        pipeline.clock.observe_fetch(0, 1, caught_up=True, wall_now_ms=WALL_MS)
        result = await pipeline.process({0: [Rec(len(recs), b"zed", event_value(late))]}, WALL_MS)
        until_s = pipeline.clock.review_until_ms(0, WALL_MS) // 1000  # type: ignore[operator]
        due_now = {b for b, scores in dues.items() if any(s < until_s for s in scores)}
        assert due_now and len(due_now) < base_settings.buckets, "some buckets due, not all"
        assert result.buckets == len(due_now | {bucket_of("zed", base_settings.buckets)})
        assert result.due_users == sum(1 for scores in dues.values() for s in scores if s < until_s)
        after = {b: [s for _, s in client.zrange(k, 0, -1, withscores=True)] for b, k in enumerate(keys)}
        assert all(s >= until_s for scores in after.values() for s in scores), "every due review ran"
        assert (await pipeline.process({}, WALL_MS)).idle

    try:
        run(base_settings, scenario)
    finally:
        client.close()


def test_alerts_carry_when_their_batch_was_asked_for_fetched_and_scored(base_settings: Settings) -> None:
    """The ``churnwatch-timing`` header (asked, fetched, scored; epoch ms) on every user alert."""
    recs = records(history(users=8, days=40))

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> None:
        pipeline = await make("timing")
        await pipeline.settle(await pipeline.submit({0: recs}, WALL_MS, WALL_MS - 7))

    run(base_settings, scenario)
    alerts = read_topic(base_settings.kafka_bootstrap_servers, base_settings.topic_alerts, base_settings.partitions)
    assert alerts, "the history must raise alerts, or the header proves nothing"
    for rec in alerts:
        timing = dict(rec.headers)[TIMING_HEADER]
        asked, fetched, scored = (int(x) for x in timing.split(b","))
        assert (asked, fetched) == (WALL_MS - 7, WALL_MS) and scored > 0


def test_redis_gone_back_in_time_in_a_bucket_the_next_cycle_does_not_read_is_seen_by_its_progress(
        base_settings: Settings, redis_url: str) -> None:
    """QA5 H1, the case the reads cannot see: Redis loses a cycle's write of bucket Y (states,
    offsets and progress alike), and the next cycle's events are all in another bucket Z. Its
    state write of Z is fine, but its progress must not move past the lost records of Y: the
    progress write finds the progress below the one this worker wrote (lua/progress.lua's floor)
    and the cycle fails with StoreRolledBack (the consumer then resumes from Redis)."""
    from streams.worker.ledger import StoreRolledBack
    from tests.harness import restore_keys, snapshot_keys

    users: dict[int, str] = {}
    for i in range(200):
        users.setdefault(bucket_of(f"user-{i}", 8), f"user-{i}")
    (bx, x), (by, y), (bz, z) = list(users.items())[:3]
    events = [Event(u, START_MS + 1000 * k, "view", f"{u}-{k}") for k, u in enumerate([x, x, y, y, z, z])]
    recs = records(events)

    async def scenario(make: Callable[..., Pipeline]) -> tuple[Exception | None, dict[int, int]]:
        pipeline = await make("rb")
        await pipeline.process({0: recs[0:2]}, WALL_MS)  # bucket X
        snapshot = snapshot_keys(redis_url, "rb")
        await pipeline.process({0: recs[2:4]}, WALL_MS)  # bucket Y: lost below
        restore_keys(redis_url, "rb", snapshot)
        try:
            await pipeline.process({0: recs[4:6]}, WALL_MS)  # bucket Z only
        except StoreRolledBack as exc:
            return exc, read_progress(redis_url, base_settings.topic_events, "rb")
        return None, read_progress(redis_url, base_settings.topic_events, "rb")

    lost, progress = run(base_settings, scenario)
    assert len({bx, by, bz}) == 3
    assert isinstance(lost, StoreRolledBack) and str(lost).startswith(f"the progress of {base_settings.topic_events}[0] holds offset 1"), lost
    assert progress == {0: 1}, "the progress stays where Redis went back to: the records of Y are applied again from there"


class _Proxy:
    """A TCP forwarder standing for an address a failover repoints (a DNS name, a Kubernetes
    Service): each new connection goes to ``target``; connections made before stay where they went."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


def _refusing_pipeline(url: str) -> Pipeline:
    """A pipeline whose ``_retry_redis`` is under test (no broker: nothing is produced)."""
    settings = Settings(redis_url=url, buckets=4, groups_per_bucket=8)
    return Pipeline(settings, Store(settings), None, load_model())  # type: ignore[arg-type]


def test_a_write_answered_readonly_is_retried_on_a_new_connection() -> None:
    """Review 14, M-2: a failover that keeps the address (here a forwarder repointed from A to B;
    A demoted to a replica of B, no ``CLIENT KILL``) left the pooled connection on A: every retry
    of the write was answered READONLY, for good. Now READONLY drops the idle connections and
    the next attempt reaches the new primary through the same address."""
    from streams.local import _spawn_valkey, free_port

    old, new = _spawn_valkey(free_port(), "redis"), _spawn_valkey(free_port(), "redis")
    old_port, new_port = (int(s.address.rsplit(":", 1)[1]) for s in (old, new))

    async def write(pipeline: Pipeline) -> list[Any]:
        pipe = pipeline.store.client.pipeline(transaction=False)
        pipe.set("k", "v")
        return list(await pipe.execute())

    async def scenario() -> None:
        proxy = _Proxy(old_port)
        pipeline = _refusing_pipeline(f"redis://127.0.0.1:{await proxy.start()}")
        try:
            assert await write(pipeline) == [True]  # the pool holds a connection to A
            admin = redis_lib.Redis(port=old_port)
            await asyncio.to_thread(admin.execute_command, "REPLICAOF", "127.0.0.1", str(new_port))
            admin.close()
            proxy.target = new_port  # the failover: the address now leads to B
            await asyncio.wait_for(pipeline._retry_redis("write", write, pipeline), 10)
        finally:
            await pipeline.store.close()
            await proxy.stop()

    try:
        asyncio.run(scenario())
        client = redis_lib.Redis(port=new_port)
        assert client.get("k") == b"v", "the write reached the new primary"
        client.close()
    finally:
        old.stop()
        new.stop()


def test_connect_answered_readonly_is_retried_on_a_new_connection() -> None:
    """Review 15, M-1: a worker starting (``WorkerRuntime.start``'s retry loop) or re-connecting
    after a loss while its address still led to a demoted primary kept its pooled connection
    there: ``Store.connect`` (it always writes cw:meta) was answered READONLY on every attempt,
    for good. Now the attempt after READONLY goes out on a new connection."""
    from streams.local import _spawn_valkey, free_port

    old, new = _spawn_valkey(free_port(), "redis"), _spawn_valkey(free_port(), "redis")
    old_port, new_port = (int(s.address.rsplit(":", 1)[1]) for s in (old, new))

    async def scenario() -> None:
        proxy = _Proxy(old_port)
        store = Store(Settings(redis_url=f"redis://127.0.0.1:{await proxy.start()}", buckets=4, groups_per_bucket=8))
        try:
            with pytest.raises(redis_lib.exceptions.ReadOnlyError):
                await store.connect()  # A is a replica already; the address is not repointed yet
            proxy.target = new_port  # the failover: the address now leads to B
            await asyncio.wait_for(store.connect(), 10)  # the start loop's next attempt
        finally:
            await store.close()
            await proxy.stop()

    try:
        admin = redis_lib.Redis(port=old_port)
        admin.execute_command("REPLICAOF", "127.0.0.1", str(new_port))
        admin.close()
        asyncio.run(scenario())
        client = redis_lib.Redis(port=new_port)
        assert client.hget("cw:meta", "buckets") == b"4", "connect wrote cw:meta on the new primary"
        client.close()
    finally:
        old.stop()
        new.stop()


def test_busy_inside_a_pipeline_reply_is_retried_in_place() -> None:
    """Review 14, L-1: every store call on a single Redis goes through a redis-py pipeline, which
    rewrites a BUSY reply as "Command # 1 (...) of pipeline caused error: ('BUSY ...',)": it was
    not recognised, so the cycle failed (a traceback, read and scored again) instead of its write
    waiting for the script. Another client's script runs 1.5 s past ``busy-reply-threshold``."""
    import threading

    from streams.local import _spawn_valkey, free_port
    from streams.worker.pipeline import redis_transient

    svc = _spawn_valkey(free_port(), "redis", ["--busy-reply-threshold", "100"])
    port = int(svc.address.rsplit(":", 1)[1])
    spin = ("local t0 = redis.call('TIME') local s = t0[1] * 1e6 + t0[2] "
            "repeat local t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 1500000 return 1")
    script = threading.Thread(target=lambda: redis_lib.Redis(port=port).eval(spin, 0))
    seen: list[BaseException] = []

    async def write(pipeline: Pipeline) -> list[Any]:
        pipe = pipeline.store.client.pipeline(transaction=False)
        pipe.set("k", "v")
        try:
            return list(await pipe.execute())
        except Exception as exc:
            seen.append(exc)
            raise

    async def scenario() -> list[Any]:
        pipeline = _refusing_pipeline(svc.address)
        try:
            return await asyncio.wait_for(pipeline._retry_redis("write", write, pipeline), 10)
        finally:
            await pipeline.store.close()

    try:
        probe = redis_lib.Redis(port=port)
        script.start()
        while True:  # the script runs past the threshold: Redis answers BUSY
            try:
                probe.ping()
            except redis_lib.exceptions.BusyLoadingError:
                raise
            except redis_lib.exceptions.ResponseError as exc:
                assert str(exc).startswith("BUSY "), exc
                break
        assert asyncio.run(scenario()) == [True]
        # the first attempt's may be bare (met while connecting): the later ones come wrapped
        assert any("of pipeline caused error: ('BUSY " in str(e) for e in seen), seen
        assert all(redis_transient(e) for e in seen)
        probe.close()
    finally:
        script.join()
        svc.stop()


def test_kept_alert_ids_of_a_revoked_partition_are_dropped_not_counted_as_resent() -> None:
    """Review 14, L-4: the ids of alerts acknowledged in a failed cycle were kept until a cycle
    raising them was applied here, or until 100,000 newer ones pushed them out, counted in
    ``churnwatch_alerts_resent_total``. A partition revoked is applied by its next owner: its ids
    are dropped with it, those of the partitions kept stay (no Redis, no broker)."""
    from streams.worker import metrics
    from streams.worker.partitioner import partitions_of

    settings = Settings(partitions=2, buckets=4, groups_per_bucket=8)
    pipeline = Pipeline(settings, Store(settings), None, load_model())  # type: ignore[arg-type]
    users = [f"u{i}".encode() for i in range(40)]
    owners = partitions_of(users, [0, 1])
    assert set(owners) == {0, 1}
    pipeline._keep_acked([(u, orjson.dumps({"alert_id": f"id-{u.decode()}"})) for u in users])
    resent = metrics.ALERTS_RESENT._value.get()
    pipeline.revoke(0)
    assert set(pipeline._acked_unapplied) == {f"id-{u.decode()}" for u, p in zip(users, owners) if p == 1}
    assert metrics.ALERTS_RESENT._value.get() == resent


@pytest.mark.parametrize("lost", ["bucket", "progress"])
def test_an_idle_look_sees_redis_gone_back_in_time(base_settings: Settings, redis_url: str, lost: str) -> None:
    """QA13 F7: with no records no cycle reads a bucket or writes the progress, so the idle
    worker's once-a-second look (``Pipeline.look``) compares them itself with its last
    acknowledged writes. Each on its own: a bucket's offsets put back while the progress stays
    (a Redis Cluster shard that failed over behind), and the progress put back alone. An
    unchanged Redis raises nothing (and the look is repeatable)."""
    from streams.worker.ledger import StoreRolledBack

    users: dict[int, str] = {}
    for i in range(200):
        users.setdefault(bucket_of(f"user-{i}", base_settings.buckets), f"user-{i}")
    (bx, x), (by, y) = list(users.items())[:2]
    recs = records([Event(u, START_MS + 1000 * k, "view", f"{u}-{k}") for k, u in enumerate([x, x, y, y])])
    client = redis_lib.Redis.from_url(redis_url)

    async def scenario(make: Callable[..., Awaitable[Pipeline]]) -> tuple[str | None, int]:
        pipeline = await make("idle")
        keys = pipeline.store.keys
        key = keys.offsets(by) if lost == "bucket" else keys.progress(base_settings.topic_events)
        await pipeline.process({0: recs[0:2]}, WALL_MS)  # bucket X
        older = client.dump(key)
        await pipeline.process({0: recs[2:4]}, WALL_MS)  # bucket Y: lost below
        await pipeline.look()
        await pipeline.look()  # nothing went back: nothing raised, twice
        if older is None:
            client.delete(key)
        else:
            client.restore(key, 0, older, replace=True)
        try:
            await pipeline.look()
        except StoreRolledBack as exc:
            return str(exc), len(pipeline.ledger.watched())
        return None, len(pipeline.ledger.watched())

    try:
        found, watched = run(base_settings, scenario)
    finally:
        client.close()
    assert bx != by and watched >= 2, "the ledger holds both buckets"
    expected = f"bucket {by} holds" if lost == "bucket" else f"the progress of {base_settings.topic_events}[0] holds offset 1"
    assert found is not None and found.startswith(expected), found


def assert_same_store(redis_url: str, plain: str, other: str) -> None:
    """The run under ``other`` left every state, stats hash and console alert list (non-empty) as
    the run under ``plain``: a setting that decides only what is published."""
    assert dump_state(redis_url, plain) == dump_state(redis_url, other), "every state as without the setting"
    client = redis_lib.Redis.from_url(redis_url)
    try:
        for b in range(8):
            assert client.hgetall(f"{plain}:{{{b}}}:stats") == client.hgetall(f"{other}:{{{b}}}:stats")
        lists = [{k.split(b":", 1)[1]: client.hgetall(k) for k in client.scan_iter(match=f"{p}:*:al:*")} for p in (plain, other)]
    finally:
        client.close()
    assert lists[0] == lists[1] and lists[0]


def test_alerts_before_alerts_from_are_kept_in_the_state_but_not_published(base_settings: Settings, redis_url: str,
                                                                           caplog: pytest.LogCaptureFixture,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """QA14 F9: onboarding a history, CHURNWATCH_ALERTS_FROM withholds the user alerts of its first
    weeks. The same states, stats and console alert lists as without it; published: exactly the
    alerts at or after the date, the rest counted in churnwatch_alerts_withheld_total and logged once."""
    recs = records(history())
    cutoff_ms = START_MS + 35 * DAY_MS

    async def scenario(make: Callable[..., Awaitable[Pipeline]], prefix: str) -> None:
        await feed(await make(prefix), recs, 50)

    def counted() -> float:
        return sum(metrics.ALERTS_WITHHELD.labels(k)._value.get() for k in metrics.USER_ALERT_KINDS)

    run(base_settings, lambda make: scenario(make, "all"))
    every = [orjson.loads(r.value) for r in read_topic(base_settings.kafka_bootstrap_servers, base_settings.topic_alerts, 1)]
    caplog.set_level("INFO", logger="streams.worker.pipeline")
    monkeypatch.setattr(pipeline_module, "_WITHHELD_LOGGED", set())
    before = counted()
    run(base_settings.with_(alerts_from="2026-02-05"), lambda make: scenario(make, "warm"))
    sent = [orjson.loads(r.value) for r in read_topic(base_settings.kafka_bootstrap_servers, base_settings.topic_alerts, 1)][len(every):]

    early = [a for a in every if a["event_time_ms"] < cutoff_ms]
    assert early and len(early) < len(every), "the history must raise alerts on both sides of the date"
    assert sent == [a for a in every if a["event_time_ms"] >= cutoff_ms]
    assert counted() - before == len(early)
    assert_same_store(redis_url, "all", "warm")
    logged = [r.getMessage() for r in caplog.records if "CHURNWATCH_ALERTS_FROM" in r.getMessage()]
    assert logged == ["partition 0: user alerts with an event time before 2026-02-05T00:00:00.000Z (CHURNWATCH_ALERTS_FROM) "
                      "are applied to the state but not published (counted in churnwatch_alerts_withheld_total)"], logged


def _b2b(events: Sequence[Event], joins_ms: int) -> tuple[list[Event], dict[str, int]]:
    """``events`` with accounts: every third user a member of "acme" from its first event, every
    third its own account (``account_id`` = its id: no member), the rest of no account but u008,
    which names "globex" from ``joins_ms`` on. Also each member's first time as one."""
    out, member_from = [], {}
    for ev in events:
        n = int(ev.user_id[1:])
        account = ("acme" if n % 3 == 0 else ev.user_id if n % 3 == 1 else
                   "globex" if ev.user_id == "u008" and ev.ts_ms >= joins_ms else "")
        if account and account != ev.user_id:
            member_from.setdefault(ev.user_id, ev.ts_ms)
        out.append(Event(ev.user_id, ev.ts_ms, ev.type, ev.event_id, ev.amount, account))
    return out, member_from


@pytest.mark.parametrize("mode", ["separate", "none"])
def test_member_alerts_leave_the_alerts_topic_and_nothing_else_changes(base_settings: Settings, redis_url: str,
                                                                      mode: str) -> None:
    """QA18 F6: with ``CHURNWATCH_MEMBER_ALERTS`` the alerts topic carries no user alert of an
    account member (a user whose events named a company account by the alert's time); "separate"
    puts exactly those on their own topic, "none" publishes them nowhere. The bytes of every alert,
    the order on each topic, the states, the stats and the console's lists are those of a run
    without the setting, and churnwatch_member_alerts_routed_total counts what was kept off."""
    joins_ms = START_MS + 30 * DAY_MS
    events, member_from = _b2b(history(), joins_ms)
    recs = records(events)
    apart = base_settings.with_(member_alerts=mode, topic_member_alerts=f"mem-{base_settings.topic_alerts}")
    ensure_topics(apart)

    def routed() -> float:
        return sum(metrics.MEMBER_ALERTS_ROUTED.labels(k)._value.get() for k in metrics.USER_ALERT_KINDS)

    def topic(name: str) -> list[bytes]:
        return [r.value for r in read_topic(base_settings.kafka_bootstrap_servers, name, 1)]

    run(base_settings, lambda make: feed_prefixed(make, recs, "all"))
    every = topic(base_settings.topic_alerts)
    before = routed()
    run(apart, lambda make: feed_prefixed(make, recs, "apart"))
    sent, members = topic(base_settings.topic_alerts)[len(every):], topic(apart.topic_member_alerts)

    def member(raw: bytes) -> bool:
        a = orjson.loads(raw)
        return a["user_id"] in member_from and member_from[a["user_id"]] < a["event_time_ms"]

    kept_off = [raw for raw in every if member(raw)]
    assert sent == [raw for raw in every if not member(raw)]
    assert members == (kept_off if mode == "separate" else [])
    assert routed() - before == len(kept_off)
    users = {orjson.loads(raw)["user_id"] for raw in every}
    assert kept_off and {"u000", "u003"} <= users and "u001" in {orjson.loads(raw)["user_id"] for raw in sent}
    u008 = [member(raw) for raw in every if orjson.loads(raw)["user_id"] == "u008"]
    assert False in u008 and True in u008, "u008's alerts before it named globex stay, those after leave"
    assert_same_store(redis_url, "all", "apart")


async def feed_prefixed(make: Callable[..., Awaitable[Pipeline]], recs: Sequence[Rec], prefix: str) -> None:
    await feed(await make(prefix), recs, 50)
