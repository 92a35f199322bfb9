"""A model roll-out (docs/OPERATE.md, "Model upgrades") against a real valkey: readers score with the
model the workers record in use, and a take-over that would read the stored states under another
vocabulary is refused (QA pass 4, items 1 and 3)."""

from __future__ import annotations

import asyncio
import logging
import typing

import pytest

from models.engine import advance
from models.model import ChurnModel, load_model
from models.scoring import score
from models.state import UserState
from streams.errors import UserError
from streams.offline.simulate import generate
from streams.settings import Settings
from streams.worker.keys import locate
from streams.worker.phases import index_scores
from streams.worker.store import BucketWrite, ModelMismatch, StateWrite, Store, model_id, stats_delta

T0_MS, DAYS = 1_767_225_600_000, 60
END_MS = T0_MS + DAYS * 86_400_000


def _user(model: ChurnModel) -> tuple[str, UserState]:
    """The busiest user of a small simulated population, advanced to END_MS under ``model``."""
    events, _ = generate(3, 20, T0_MS, DAYS)
    uid = max({ev.user_id for ev in events}, key=lambda u: sum(ev.user_id == u for ev in events))
    st = advance(uid, None, [ev for ev in events if ev.user_id == uid], END_MS, model).state
    assert st is not None
    return uid, st


async def _worker_wrote(settings: Settings, model: ChurnModel, uid: str, st: UserState) -> Store:
    """A worker running ``model`` connected (recording it in use) and wrote ``uid``'s state and progress."""
    store = Store(settings)
    store.use_model(model)
    await store.connect()
    b, g = locate(uid, store.buckets, store.groups)
    field = f"{settings.topic_events}:0"
    w = BucketWrite(b, [(field, "", "")])
    risk, reach, _ = index_scores(None, st, END_MS, model)
    w.states.append(StateWrite(g, uid, st.to_bytes(), field, st.next_review_s, risk, reach))
    stats_delta(None, st, [], w.stats)
    assert await store.write([w], "rollout-test") == []
    await store.write_progress(settings.topic_events, {0: (1, END_MS)})
    return store


async def _take_over(settings: Settings, model: ChurnModel) -> None:
    """What ``churnwatch worker --model new.json --take-over-model`` does at start."""
    store = Store(settings)
    store.use_model(model)
    store.take_over_model = True
    try:
        await store.connect()
    finally:
        await store.close()


def test_after_a_take_over_score_top_and_the_console_score_with_the_model_in_use(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Readers started with the shipped default (no CHURNWATCH_MODEL_PATH) score with the file the
    workers took over with, as the alerts do; without that file in Redis they say so (one WARNING,
    a note on every console page) instead of scoring silently with their own."""
    from starlette.testclient import TestClient

    from streams.console.app import create_app
    from streams.views import open_reader, top_users, user_report

    base = load_model()
    rolled = base.with_(version="trained-rollout", risk_intercept=base.risk_intercept + 2.0)
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)
    now_s = max(END_MS // 1000, st.last_seen_s)
    want, old = score(st, now_s, rolled), score(st, now_s, base)
    assert round(want.risk, 4) != round(old.risk, 4), "the test needs models that score the user differently"
    asyncio.run(_closed(_worker_wrote(settings, base, uid, st)))
    asyncio.run(_take_over(settings, rolled))

    def console() -> tuple[dict[str, object], str]:
        with TestClient(create_app(settings)) as client:
            return client.get(f"/api/v1/users/{uid}").json(), client.get(f"/users/{uid}").text

    body, page = console()
    assert body["risk"] == round(want.risk, 4) and body["action"] == want.action
    assert "model-note" not in page
    with open_reader(settings) as reader:
        report = user_report(reader, settings, uid)
        top = top_users(reader, settings, share=1.0)
    assert report is not None and report.scores == want
    assert [r.scores for r in top if r.user_id == uid] == [want]
    assert not [r for r in caplog.records if r.name == "streams.views" and r.levelno >= logging.WARNING]

    async def drop_record() -> None:  # the recorded model's file cannot be loaded
        store = Store(settings)
        await store.client.hdel(store.keys.meta, f"model:{model_id(rolled)}")
        await store.close()

    asyncio.run(drop_record())
    lost_body, lost_page = console()
    assert lost_body["risk"] == round(old.risk, 4)
    assert f"Redis records model {model_id(rolled)} in use but not its file" in lost_page
    with open_reader(settings) as reader:
        report = user_report(reader, settings, uid)
    assert report is not None and report.scores == old
    warned = [r.getMessage() for r in caplog.records if r.name == "streams.views" and r.levelno >= logging.WARNING]
    assert len(warned) == 1 and model_id(rolled) in warned[0]


async def _closed(opening: "asyncio.Future[Store] | typing.Coroutine[object, object, Store]") -> None:
    await (await opening).close()


def test_a_learned_successor_is_still_what_readers_score_with(redis_url: str) -> None:
    from streams.views import open_reader, user_report
    from streams.worker.model_record import comparison_record
    from tests.test_learn import _learned

    base = load_model()
    successor = _learned(base, risk_intercept=base.risk_intercept + 2.0)
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)

    async def go() -> None:
        store = await _worker_wrote(settings, base, uid, st)
        try:
            assert (await store.adopt_model(model_id(base), successor, comparison_record({"adopted": True}), model_id(base)))[0]
        finally:
            await store.close()

    asyncio.run(go())
    with open_reader(settings) as reader:
        report = user_report(reader, settings, uid)
    assert report is not None and report.scores == score(st, max(END_MS // 1000, st.last_seen_s), successor)


def test_a_take_over_with_another_vocabulary_is_refused_and_changes_nothing(redis_url: str) -> None:
    """The common first roll-out, shipped default (8 hashed kinds) -> a trained file naming its
    event types: every stored state holds the default's slots, so the take-over is refused in one
    line naming the rebuild, before it records anything; one keeping the vocabulary takes over."""
    from streams.worker.service import _preflight_store

    base = load_model()
    named = base.with_(version="trained-named", tracked_types=("view", "click", "search", "message"))
    same = base.with_(version="trained-same", risk_intercept=base.risk_intercept + 1.0)
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)

    async def go() -> tuple[str, str, str]:
        store = await _worker_wrote(settings, base, uid, st)
        try:
            with pytest.raises(ModelMismatch) as refused:
                await _take_over(settings, named)
            still = (await store.model_record())[0]
            await _take_over(settings, same)
            return str(refused.value), still, (await store.model_record())[0]
        finally:
            await store.close()

    why, still, after = asyncio.run(go())
    assert "\n" not in why and "tracks other event types" in why and "--take-over-model --rebuild-state" in why
    assert "'cw:*'" in why and "Model upgrades" in why
    assert still == model_id(base), "a refused take-over records nothing"
    assert after == model_id(same)
    with pytest.raises(UserError, match="tracks other event types"):  # the worker's start: exit 2, one line
        _preflight_store(Settings(redis_url=redis_url, model_takeover=True), named)


def test_rebuild_state_empties_the_store_for_a_take_over_by_another_vocabulary(redis_url: str) -> None:
    """``worker --take-over-model --rebuild-state``: the model of another vocabulary is recorded with a
    new incarnation (running workers find the store lost, and another model in it) and every other
    key of the prefix is deleted, so the workers replay the topic under it; a restart with the flag
    still set deletes nothing; the flag alone is refused."""
    rebuild_scenario(Settings(redis_url=redis_url))


def rebuild_scenario(settings: Settings) -> None:
    """The rebuild test on ``settings``' store (tests/test_store_cluster.py runs it on a cluster)."""
    from streams.worker.service import _preflight_store
    from streams.worker.store import StoreLost

    base = load_model()
    named = base.with_(version="trained-named", tracked_types=("view", "click", "search", "message"))
    uid, st = _user(base)
    rebuild = settings.with_(model_takeover=True, model_rebuild=True)

    async def go() -> tuple[str, dict[str, object]]:
        old = await _worker_wrote(settings, base, uid, st)  # a worker of the model in use, still running
        try:
            incarnation = old.incarnation
            await asyncio.to_thread(_preflight_store, rebuild, named)
            with pytest.raises(StoreLost):
                await old.check_and_stream_times(settings.topic_events)
            with pytest.raises(ModelMismatch):  # the old worker's rebuild: it stops (consumer: ModelReplaced)
                await old.connect()
            meta = {k.decode(): v.decode()[:40] for k, v in (await old.client.hgetall(old.keys.meta)).items()}
            keys = sorted(k.decode() for k in await old.client.keys(f"{old.keys.prefix}:*"))
            return incarnation, {"meta": meta, "keys": keys, "user": await old.load_user(uid),
                                 "progress": await old.read_progress(settings.topic_events)}
        finally:
            await old.close()

    incarnation, got = asyncio.run(go())
    meta = got["meta"]
    assert isinstance(meta, dict)
    assert meta["model"] == model_id(named) and meta["incarnation"] != incarnation
    assert meta["save_index"] == model_id(named), "the index is built from the first user again"
    assert f"model:{model_id(named)}" in meta and f"model:{model_id(base)}" not in meta
    assert (meta["buckets"], meta["format"]) == (str(settings.buckets), "1")
    assert got["user"] is None and got["progress"] == {}, "states and progress are rebuilt from the topic"
    assert all(k == f"{settings.key_prefix}:meta" or k.endswith(":off") for k in got["keys"]), "only the new markers"

    async def write_again() -> None:
        await (await _worker_wrote(settings, named, uid, st)).close()

    async def still_there() -> UserState | None:
        store = Store(settings)
        try:
            return await store.load_user(uid)
        finally:
            await store.close()

    asyncio.run(write_again())
    _preflight_store(rebuild, named)  # a restart with the flag still set
    assert asyncio.run(still_there()) is not None
    with pytest.raises(UserError, match="goes with --take-over-model"):
        _preflight_store(settings.with_(model_rebuild=True), named)


def test_rebuild_state_rebuilds_when_the_model_in_use_cannot_be_compared(redis_url: str) -> None:
    """A store whose model in use has no file in Redis (written before workers recorded it): the
    layout cannot be checked, so a plain take-over only warns, and one asked to rebuild rebuilds."""
    from streams.worker.service import _preflight_store

    base = load_model()
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)

    async def go() -> UserState | None:
        store = await _worker_wrote(settings, base, uid, st)
        try:
            await store.client.hdel(store.keys.meta, f"model:{model_id(base)}")
            await asyncio.to_thread(_preflight_store, settings.with_(model_takeover=True, model_rebuild=True),
                                    base.with_(version="trained-named", tracked_types=("view",)))
            return await store.load_user(uid)
        finally:
            await store.close()

    assert asyncio.run(go()) is None
