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
from streams.worker.store import BucketWrite, ModelMismatch, StateWrite, Store, StoreLost, model_id, stats_delta

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
    assert "'cw:'" in why and "Model upgrades" in why
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


def test_a_record_this_version_refuses_is_still_compared_for_the_take_over(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Review 10 A6: the in-use record was written by the previous version from a hand-edited file
    this version refuses (here: no risk_intercept; an upper-case role name). It read as "no record",
    so a take-over by the fixed file went ahead with only "cannot be checked", and one that
    re-ordered ``negative`` read the stored negative masks under new indices. Its vocabulary is now
    read leniently: a re-ordered ``negative`` is refused, as is a role name the old model never
    matched (its states counted those events otherwise); the same vocabulary takes over."""
    import json

    base = load_model()
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)
    fixed = base.with_(version="fixed", roles={**dict(base.roles), "purchase": [*base.roles["purchase"], "checkout_completed"]})
    reordered = fixed.with_(version="fixed-reordered", roles={**dict(fixed.roles), "negative": list(fixed.roles["negative"])[::-1]})

    async def go() -> None:
        store = await _worker_wrote(settings, base, uid, st)
        try:
            for name, model, refused in (("Checkout_Completed", fixed, True), ("checkout_completed", reordered, True),
                                         ("checkout_completed", fixed, False)):
                old = json.loads(fixed.to_json())  # what the previous version recorded from the hand-edited file
                old["roles"]["purchase"][-1] = name
                old.pop("risk_intercept")
                await store.client.hset(store.keys.meta, f"model:{model_id(base)}", json.dumps(old))
                assert (await store.model_record())[:2] == (model_id(base), None), "in use, refused as a model by this version"
                try:
                    await _take_over(settings, model)
                    why = ""
                except ModelMismatch as exc:
                    why = str(exc)
                assert ("tracks other event types, roles or renames" in why) == refused, (name, model.version, why or "took over")
            assert (await store.model_record())[0] == model_id(fixed), "the same vocabulary took over"
        finally:
            await store.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert not [r for r in caplog.records if "cannot check" in r.getMessage()], "the record's vocabulary was compared"


# -- races of the rebuild (review 4, findings 1-4 and 6b-c) ---------------------------------------------

NAMED = "trained-named"


def _named(base: ChurnModel) -> ChurnModel:
    """A model of another vocabulary than ``base``: its take-over needs ``--rebuild-state``."""
    return base.with_(version=NAMED, tracked_types=("view", "click", "search", "message"))


async def _old_cycle(settings: Settings, model: ChurnModel, incarnation: str, uid: str, st: UserState) -> list[object]:
    """The next cycle of an old worker still running with ``incarnation``: its fenced write of ``uid``,
    the account dues and re-routed origins after it, and (6c) a connect of its that read meta before the take-over marking
    the buckets. Returns the fenced write's refusals ([]: applied)."""
    o = Store(settings)
    try:
        o.use_model(model)
        o.incarnation = incarnation
        await o._load_scripts()
        b, g = locate(uid, o.buckets, o.groups)
        field = f"{settings.topic_events}:0"
        w = BucketWrite(b, [(field, "", "")])
        risk, reach, _ = index_scores(None, st, END_MS, model)
        w.states.append(StateWrite(g, uid, st.to_bytes(), field, st.next_review_s, risk, reach))
        stats_delta(None, st, [], w.stats)
        try:
            fenced: list[object] = list(await o.write([w], "old-late"))
        except StoreLost as lost:  # the bucket's marker is another incarnation
            fenced = [lost]
        await o.write_account_dues(settings.topic_events, {0: {"acct-1": END_MS // 1000 + 60}})
        await o.write_origins(settings.topic_events, {0: {1: 5}})
        await o._mark_buckets()
        return fenced
    finally:
        await o.close()


async def _keys(settings: Settings, prefix: str | None = None) -> list[str]:
    store = Store(settings)
    try:
        keys: list[str] = []
        async for k in store.client.scan_iter(match=f"{prefix or settings.key_prefix}:*", count=1000):
            keys.append(k.decode())
        return sorted(keys)
    finally:
        await store.close()


def old_write_scenario(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An old worker's write landing while the rebuild deletes (after the off hashes' markers moved) is
    refused, its account dues and re-routed origins do not survive, and its connect cannot put its incarnation back on a bucket."""
    from streams.worker import rebuild
    from streams.worker.service import _preflight_store

    base = load_model()
    uid, st = _user(base)

    async def setup() -> str:
        store = await _worker_wrote(settings, base, uid, st)
        await store.close()
        return store.incarnation

    incarnation = asyncio.run(setup())
    orig, seen = rebuild._unlink, {}

    async def unlink_then_old_cycle(store: Store, keys: list[bytes | str]) -> int:
        # SCAN order is arbitrary: the users hash may go before its bucket's off hash (the old code deleted both)
        off = [k for k in keys if (k.decode() if isinstance(k, bytes) else k).endswith(":off")]
        n = await orig(store, [k for k in keys if k not in off])
        if not seen:
            seen["fenced"] = await _old_cycle(settings, base, incarnation, uid, st)
        return n + await orig(store, off)

    monkeypatch.setattr(rebuild, "_unlink", unlink_then_old_cycle)
    _preflight_store(settings.with_(model_takeover=True, model_rebuild=True), _named(base))
    assert seen["fenced"], "the old worker's write was applied during the rebuild"

    async def look() -> tuple[UserState | None, dict[str, str], list[bytes]]:
        s = Store(settings)
        try:
            b, _ = locate(uid, s.buckets, s.groups)
            incs = {(await s.client.hget(s.keys.offsets(i), "|inc")).decode() for i in range(s.buckets)}
            return await s.load_user(uid), {"meta": (await s.client.hget(s.keys.meta, "incarnation")).decode(),
                                            "markers": ",".join(sorted(incs))}, [
                *await s.client.keys(s.keys.account_due("*", 0)), *await s.client.keys(s.keys.reroute(settings.topic_events))]
        finally:
            await s.close()

    user, inc, dues = asyncio.run(look())
    assert user is None, "the old model's state survived the rebuild"
    assert inc["markers"] == inc["meta"] != incarnation, "every bucket carries the new incarnation"
    assert dues == [], "the old worker's account dues or re-routed origins survived the rebuild"
    keys = asyncio.run(_keys(settings))
    assert all(k == f"{settings.key_prefix}:meta" or k.endswith(":off") for k in keys), keys


def test_an_old_workers_write_during_the_rebuild_does_not_survive(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 4 #1, #6b, #6c (on the old code the write was applied and the user, its stats and
    due entries were in the rebuilt store)."""
    old_write_scenario(Settings(redis_url=redis_url), monkeypatch)


def test_a_replica_started_during_the_rebuild_waits_for_it(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 4 #2: new workers started while the first deletes the old state, one with the flags (B)
    and one without (C, a plain start: the new model is recorded), wait for it (one that cannot wait
    is refused) and keep what they then apply (on the old code they connected at once and the
    deletion removed their states, their offsets and tokens left in place)."""
    from streams.worker import rebuild, store as store_module
    from streams.worker.store import RebuildRunning

    base = load_model()
    named = _named(base)
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)
    flags = settings.with_(model_takeover=True, model_rebuild=True)
    orig, orig_pause = rebuild._unlink, store_module.rebuild_pause

    def new_store(s: Settings) -> Store:
        store = Store(s)
        store.use_model(named)
        store.take_over_model = s.model_takeover
        return store

    async def replica(s: Settings) -> str:
        store = new_store(s)
        try:
            if s.model_rebuild:
                assert await rebuild.rebuild_for_take_over(store) == 0  # waits for A's lock: then nothing to rebuild
            await store.connect()
        finally:
            await store.close()
        applied = await _worker_wrote(settings, named, uid, st)  # the replica applies the user's events
        await applied.close()
        return applied.incarnation

    async def go() -> tuple[list[str], str, UserState | None]:
        await (await _worker_wrote(settings, base, uid, st)).close()
        started: list[asyncio.Future[str]] = []
        waiting: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
        who: dict[object, int] = {}

        async def pause() -> None:  # a replica found the rebuild running: it is waiting
            waiting[who[asyncio.current_task()]].set()
            await orig_pause()

        async def unlink_while_replicas_start(store: Store, keys: list[bytes | str]) -> int:
            if not started:
                impatient = new_store(settings)
                impatient.rebuild_wait_s = 0
                try:
                    with pytest.raises(RebuildRunning):
                        await impatient.connect()
                finally:
                    await impatient.close()
                for i, s in enumerate((flags, settings)):
                    started.append(asyncio.ensure_future(replica(s)))
                    who[started[-1]] = i
                for event in waiting:  # the timeout only keeps a broken build from hanging the suite
                    await asyncio.wait_for(event.wait(), 8)
            return await orig(store, keys)

        monkeypatch.setattr(rebuild, "_unlink", unlink_while_replicas_start)
        monkeypatch.setattr(store_module, "rebuild_pause", pause)
        a = new_store(flags)
        try:
            assert await rebuild.rebuild_for_take_over(a) > 0
            await a.connect()
        finally:
            await a.close()
        incarnations = [await task for task in started]
        s = Store(settings)
        try:
            return incarnations, (await s.client.hget(s.keys.meta, "incarnation")).decode(), await s.load_user(uid)
        finally:
            await s.close()

    incarnations, incarnation, user = asyncio.run(go())
    assert incarnations == [incarnation, incarnation]
    assert user is not None and user.to_bytes() == st.to_bytes(), "the replicas' applied state was deleted by A's rebuild"


def test_an_interrupted_rebuild_is_finished_with_the_flag_and_refused_without(
        redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Review 4 #3: a rebuild killed while deleting (the new model already recorded) is done again by a
    worker with --rebuild-state; a worker without it, of either model, refuses to start in one line.
    Batches of 2 keys: the deletion takes several SCAN and UNLINK round trips."""
    from streams.worker import rebuild
    from streams.worker.service import _preflight_store
    from streams.worker.store import REBUILD_FIELD

    base = load_model()
    named = _named(base)
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)
    flags = settings.with_(model_takeover=True, model_rebuild=True)
    asyncio.run(_closed(_worker_wrote(settings, base, uid, st)))
    orig, calls = rebuild._unlink, []

    async def killed(store: Store, keys: list[bytes | str]) -> int:
        calls.append(len(keys))
        raise RuntimeError("killed mid-rebuild")

    monkeypatch.setattr(rebuild, "_UNLINK_BATCH", 2)
    monkeypatch.setattr(rebuild, "_unlink", killed)
    with pytest.raises(RuntimeError, match="killed"):
        _preflight_store(flags, named)
    for model in (named, base):
        with pytest.raises(UserError, match="rebuild to model .* was interrupted") as refused:
            _preflight_store(settings, model)
        assert "\n" not in str(refused.value) and "--take-over-model --rebuild-state" in str(refused.value)

    async def counting(store: Store, keys: list[bytes | str]) -> int:
        calls.append(len(keys))
        return await orig(store, keys)

    monkeypatch.setattr(rebuild, "_unlink", counting)
    calls.clear()
    _preflight_store(flags, named)  # restarted with the flags
    assert len([n for n in calls if n]) > 2, "several batches"
    assert [r for r in caplog.records if "finishing an interrupted rebuild: deleted" in r.getMessage()]

    async def look() -> tuple[UserState | None, object]:
        s = Store(settings)
        try:
            return await s.load_user(uid), await s.client.hget(s.keys.meta, REBUILD_FIELD)
        finally:
            await s.close()

    assert asyncio.run(look()) == (None, None)
    keys = asyncio.run(_keys(settings))
    assert all(k == "cw:meta" or k.endswith(":off") for k in keys), keys
    _preflight_store(settings, named)  # finished: a plain start


def test_a_rebuild_deletes_only_its_own_deployment(redis_url: str) -> None:
    """Review 4 #4: deployments sharing one Redis under prefixes ``cw``, ``cw:eu`` and ``c?``: the
    rebuild of ``cw`` and of ``c?`` (a glob character) leave the others' keys alone (the old code's
    ``prefix:*`` deleted ``cw:eu``, and ``c?:*`` matched both others)."""
    from streams.worker.service import _preflight_store

    base = load_model()
    uid, st = _user(base)
    cw, eu, cq = (Settings(redis_url=redis_url, key_prefix=p) for p in ("cw", "cw:eu", "c?"))

    async def setup() -> None:
        for s in (cw, eu, cq):
            await (await _worker_wrote(s, base, uid, st)).close()

    asyncio.run(setup())
    before = asyncio.run(_keys(eu, "cw\\:eu"))
    assert len(before) > 10
    for s in (cw, cq):
        _preflight_store(s.with_(model_takeover=True, model_rebuild=True), _named(base))
        left = [k for k in asyncio.run(_keys(s, s.key_prefix.replace("?", "\\?"))) if not k.startswith("cw:eu:")]
        assert left and all(k == f"{s.key_prefix}:meta" or k.endswith(":off") for k in left), left
    assert asyncio.run(_keys(eu, "cw\\:eu")) == before

    async def eu_user() -> UserState | None:
        s = Store(eu)
        try:
            return await s.load_user(uid)
        finally:
            await s.close()

    assert asyncio.run(eu_user()) is not None


def test_the_console_says_once_that_its_model_file_is_not_the_model_in_use(
        redis_url: str, tmp_path: typing.Any, caplog: pytest.LogCaptureFixture) -> None:
    """Review 4 #6d: a console pointed at another file (CHURNWATCH_MODEL_PATH, to preview it) scores with
    the workers' model, as the CLI does, and says so in the CLI's INFO line, once, at start."""
    from starlette.testclient import TestClient

    from streams.console.app import create_app

    base = load_model()
    preview = base.with_(version="trained-preview", risk_intercept=base.risk_intercept + 2.0)
    path = tmp_path / "new.json"
    path.write_text(preview.to_json())
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url, model_path=str(path))
    asyncio.run(_closed(_worker_wrote(Settings(redis_url=redis_url), base, uid, st)))
    caplog.set_level(logging.INFO, logger="streams.console")
    with TestClient(create_app(settings)) as client:
        said = [r.getMessage() for r in caplog.records if r.name.startswith("streams.console") and str(path) in r.getMessage()]
        assert said == [f"scoring with the model the workers use ({model_id(base)}), not {path} (to score a file: backtest --model)"]
        body = client.get(f"/api/v1/users/{uid}").json()
    assert body["risk"] == round(score(st, max(END_MS // 1000, st.last_seen_s), base).risk, 4)
    assert len([r for r in caplog.records if str(path) in r.getMessage()]) == 1, "once"


def test_the_console_api_says_which_model_scored_and_when_it_is_not_the_one_in_use(redis_url: str, tmp_path: typing.Any) -> None:
    """Shellfix5 (review 4 #6d): the JSON answers carry what the pages and the log say about the model: a
    console given another file (CHURNWATCH_MODEL_PATH) scores with the model in use and says so; one whose
    model in use cannot be loaded scores with its file, ``in_use`` false, and says so too."""
    from starlette.testclient import TestClient

    from streams.console.app import create_app
    from streams.views import file_not_used

    base = load_model()
    rolled = base.with_(version="trained-api", risk_intercept=base.risk_intercept + 2.0)
    path = tmp_path / "new.json"
    path.write_text(rolled.to_json())
    uid, st = _user(base)
    plain, given = Settings(redis_url=redis_url), Settings(redis_url=redis_url, model_path=str(path))
    asyncio.run(_closed(_worker_wrote(plain, base, uid, st)))

    def models(settings: Settings) -> list[object]:
        with TestClient(create_app(settings)) as client:
            return [client.get(url).json().get("model") for url in (f"/api/v1/users/{uid}", "/api/v1/at-risk")]

    assert models(plain) == [{"id": model_id(base), "in_use": True, "note": None}] * 2
    note = file_not_used(given, base)
    assert models(given) == [{"id": model_id(base), "in_use": True, "note": note}] * 2
    asyncio.run(_take_over(plain, rolled))

    async def drop_record() -> None:  # the recorded model's file cannot be loaded
        store = Store(plain)
        await store.client.hdel(store.keys.meta, f"model:{model_id(rolled)}")
        await store.close()

    asyncio.run(drop_record())
    lost = models(plain)
    assert lost[0] == lost[1] and lost[0]["id"] == model_id(base) and lost[0]["in_use"] is False  # type: ignore[index]
    assert f"Redis records model {model_id(rolled)} in use but not its file" in lost[0]["note"]  # type: ignore[index]


def _learned_from(base: ChurnModel, root: ChurnModel, **changes: object) -> ChurnModel:
    """A successor ``churnwatch learn`` adopts after ``base``, in the chain that started from ``root``."""
    from models.model import LEARNED_KEY

    training = {LEARNED_KEY: {"base": model_id(base), "root": model_id(root), "data_end_ms": END_MS}}
    return base.with_(version="learned-rollout", training=training, **changes)


def test_a_take_over_restarted_with_the_flag_set_does_not_roll_back_a_learned_successor(
        redis_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shellfix5 (review 4 #6g): a worker of the file that took over, restarted with --take-over-model still
    set, recorded its file over the successors ``churnwatch learn`` adopted since (the successors' workers
    then stopped, exit 3). Now it runs the successor in use, in one WARNING that says how to roll back;
    ``--roll-back-from <that id>`` rolls back, and without --take-over-model it is refused."""
    from streams.worker import store as store_mod
    from streams.worker.model_record import comparison_record
    from streams.worker.service import _preflight_store

    monkeypatch.setattr(store_mod, "_TOLD_LEARNED_AFTER", set(), raising=False)  # said once per process
    base = load_model()
    first = _learned_from(base, base, risk_intercept=base.risk_intercept + 1.0)
    second = _learned_from(first, base, risk_intercept=base.risk_intercept + 2.0)
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)
    flag = settings.with_(model_takeover=True)

    async def adopt() -> None:
        store = await _worker_wrote(settings, base, uid, st)
        try:
            for old, new in ((base, first), (first, second)):
                assert (await store.adopt_model(model_id(old), new, comparison_record({"adopted": True}), model_id(base)))[0]
        finally:
            await store.close()

    async def in_use() -> str:
        store = Store(settings)
        try:
            return (await store.model_record())[0]
        finally:
            await store.close()

    asyncio.run(adopt())
    caplog.set_level(logging.INFO, logger="streams.worker.store")
    _preflight_store(flag, base)  # the take-over worker of the chain's first file, restarted
    asyncio.run(_take_over(settings, base))  # its runtime's connect
    _preflight_store(flag, first)  # a take-over by the predecessor's file (Redis still holds it)
    assert asyncio.run(in_use()) == model_id(second)
    said = [r.getMessage() for r in caplog.records if "not taking over" in r.getMessage()]
    assert len(said) == 2 and "\n" not in said[0], said  # once per file
    assert said[0].startswith(f"model {model_id(second)} in use was learned after this worker's {model_id(base)}")
    assert f"--take-over-model --roll-back-from {model_id(second)}" in said[0]
    with pytest.raises(UserError, match="--roll-back-from .* goes with --take-over-model"):
        _preflight_store(settings.with_(model_rollback_from=model_id(second)), base)
    _preflight_store(flag.with_(model_rollback_from="learned-other@0123456789ab"), base)  # another id: no roll-back
    assert asyncio.run(in_use()) == model_id(second)
    _preflight_store(flag.with_(model_rollback_from=model_id(second)), base)
    assert asyncio.run(in_use()) == model_id(base)
    other = base.with_(version="trained-other", risk_intercept=base.risk_intercept - 1.0)
    _preflight_store(flag, other)  # a file of no chain in use takes over as before
    assert asyncio.run(in_use()) == model_id(other)


def _families(redis_url: str, prefix: str) -> dict[str, object]:
    """Every key of deployment ``prefix`` (streams.worker.keys: ``{b}`` and the families), its name without
    the prefix -> content, less what names a run rather than a result: the incarnation (cw:meta, the off
    hashes' ``|inc``, the progress values' last part) and the cycle tokens (``|token`` fields)."""
    from tests.harness import redis_client

    client = redis_client(redis_url)
    out: dict[str, object] = {}
    try:
        for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
            key = raw.decode()
            kind = client.type(raw).decode()
            if kind == "hash":
                value: object = {k.decode(): v for k, v in client.hgetall(raw).items()
                                 if k not in (b"|inc", b"incarnation") and not k.endswith(b"|token")}
                if key.startswith(f"{prefix}:progress:"):
                    value = {k: v.rsplit(b":", 1)[0] for k, v in value.items()}  # type: ignore[attr-defined]
            elif kind == "zset":
                value = client.zrange(raw, 0, -1, withscores=True)
            else:
                value = (kind, client.dump(raw))
            out[key[len(prefix) + 1:]] = value
    finally:
        client.close()
    return out


def test_a_rebuild_by_take_over_holds_the_bytes_of_a_fresh_run_under_the_new_model(
        kafka_bootstrap: str, redis_url: str, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 4 #6a, automated: a store written under the default model, rebuilt by ``--take-over-model
    --rebuild-state`` with a model of another vocabulary (in batches of 7 keys: many SCAN and UNLINK
    round trips) and replayed, holds every key of a fresh run of the new model over the same topic, with the
    same bytes (states, indexes, counters, histories, alert lists, offsets, progress, cw:meta), and no other.
    Both runs of the new model take 29 records a cycle: a bucket's fence offset is the last offset of the
    cycle that wrote it (other batching moves only those, tests/test_pipeline.py checks the rest)."""
    from streams.worker import rebuild
    from streams.worker.consumer import KafkaSink
    from streams.worker.pipeline import Pipeline
    from streams.worker.service import _preflight_store
    from streams.worker.topics import ensure_topics
    from tests.harness import publish_events, read_topic
    from tests.test_pipeline import WALL_MS, feed, history

    base = load_model()
    named = base.with_(version=NAMED, tracked_types=("view", "click", "message", "search"))
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=redis_url, topic_events=f"ev-{unique_name}",
                        topic_alerts=f"al-{unique_name}", topic_dlq=f"dlq-{unique_name}", buckets=8, groups_per_bucket=4,
                        idle_partition_ms=0, partitions=1)
    ensure_topics(settings)
    publish_events(kafka_bootstrap, settings.topic_events, history(users=40))
    recs = read_topic(kafka_bootstrap, settings.topic_events, 1)  # the topic's records, as a worker reads them
    fresh = settings.with_(key_prefix="fresh")
    monkeypatch.setattr(rebuild, "_UNLINK_BATCH", 7)

    async def run(s: Settings, model: ChurnModel, size: int) -> None:
        """A worker's pipeline of ``model`` over the whole topic from the progress it finds (none), ``size``
        records a cycle, then caught up (the consumer's fetches, in-process: no group join to wait for)."""
        store, sink = Store(s), KafkaSink(s)
        store.use_model(model)
        await store.connect()
        await sink.start()
        try:
            pipeline = Pipeline(s, store, sink, model)
            assert pipeline.assign(0, (await store.read_progress(s.topic_events)).get(0), WALL_MS) == 0
            await feed(pipeline, recs, size)
        finally:
            await sink.stop()
            await store.close()

    asyncio.run(run(settings, base, 50))
    old = _families(redis_url, "cw")
    _preflight_store(settings.with_(model_takeover=True, model_rebuild=True), named)
    asyncio.run(run(settings, named, 29))
    asyncio.run(run(fresh, named, 29))
    rebuilt, want = _families(redis_url, "cw"), _families(redis_url, "fresh")
    assert len(want) > 40 and any(k.startswith("{") and ":u:" in k for k in want)
    assert sorted(rebuilt) == sorted(want)
    assert [k for k in want if rebuilt[k] != want[k]] == []
    assert old["meta"] != want["meta"] and any(old.get(k) != v for k, v in want.items() if ":u:" in k), "the models differ"


def test_a_take_over_whose_rebuild_lock_expired_leaves_the_rebuild_to_the_worker_that_took_it_over(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA review 13 #1, take-over path: rebuilding worker A's lock expires mid-way (deleted here, after its
    marker reset: a stall longer than LOCK_MS) and B takes it, writing its own REBUILD_FIELD token. A must
    not clear B's field (workers would connect while B still deletes): it waits for B, then finds
    nothing left to rebuild. The old code cleared the field unconditionally and A returned at once."""
    from streams.worker import rebuild, store as store_mod
    from streams.worker.store import REBUILD_FIELD

    settings = Settings(redis_url=redis_url)
    base = load_model()
    named = _named(base)
    uid, st = _user(base)
    real_topics, real_pause = rebuild._topics, store_mod.rebuild_pause

    async def go() -> None:
        b_inside, release_b, a_waits = asyncio.Event(), asyncio.Event(), asyncio.Event()
        old = await _worker_wrote(settings, base, uid, st)
        a, b = Store(settings), Store(settings)
        for s in (a, b):
            s.use_model(named)
            s.take_over_model = True
        tasks: list[asyncio.Future[int]] = []

        async def hooked(store: Store) -> set[str]:
            if store is a and not tasks:  # A's lock expires; B takes it over
                await old.client.delete(old.keys.rebuild_lock)
                tasks.append(asyncio.ensure_future(rebuild.rebuild_for_take_over(b)))
                await b_inside.wait()
            elif store is b:  # B holds the lock, its token in cw:meta: paused mid-rebuild
                b_inside.set()
                await release_b.wait()
            return await real_topics(store)

        async def pause() -> None:
            a_waits.set()
            await real_pause()

        monkeypatch.setattr(rebuild, "_topics", hooked)
        monkeypatch.setattr(store_mod, "rebuild_pause", pause)
        try:
            ta = asyncio.ensure_future(rebuild.rebuild_for_take_over(a))
            await asyncio.wait([ta, asyncio.ensure_future(a_waits.wait())], return_when=asyncio.FIRST_COMPLETED)
            assert not ta.done(), "A finished the rebuild B still runs"
            token_b = await old.client.hget(old.keys.meta, REBUILD_FIELD)
            assert token_b is not None and token_b == await old.client.get(old.keys.rebuild_lock), "B's field and lock stay"
            release_b.set()
            assert await tasks[0] > 0 and await ta == 0, "B deleted the state; A found nothing left to rebuild"
            assert not await old.client.hexists(old.keys.meta, REBUILD_FIELD)
            assert (await old.client.hget(old.keys.meta, "model")).decode() == model_id(named)
        finally:
            for s in (old, a, b):
                await s.close()

    asyncio.run(go())
