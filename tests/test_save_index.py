"""``churnwatch top --share`` from the save-list index gives exactly the rows of ranking every
stored state (the path it replaced), on the same Redis state, also when reviews are overdue.

States are real engine output (simulated users advanced by ``models.engine.advance``) written
with the worker's own write script and index scores (``streams.worker.phases.index_scores``).
"""

from __future__ import annotations

import asyncio
import collections
import logging

import pytest

from models.engine import Outcome, advance
from models.model import ChurnModel, load_model
from models.ranking import daily_list, on_save_list, save_bound, save_bound_after
from models.scoring import Assessment
from models.state import UserState
from streams.offline.simulate import generate
from streams.settings import Settings
from streams.views import indexed_save_list
from streams.worker.keys import locate
from streams.worker.phases import index_scores
from streams.worker.store import BucketWrite, StateWrite, Store, stats_delta
from tests.test_models_properties import MODEL

T0_MS = 1_767_225_600_000
DAY_MS = 86_400_000
TOPIC = "events-save-index"


async def _write(store: Store, states: dict[str, UserState], until_ms: int, model: ChurnModel,
                 reviews: dict[str, Assessment | None] | None = None) -> None:
    writes: dict[int, BucketWrite] = {}
    for uid, st in states.items():
        b, g = locate(uid, store.buckets, store.groups)
        w = writes.setdefault(b, BucketWrite(b, [(f"{TOPIC}:0", "", "")]))
        risk, reach, _ = index_scores(None, st, until_ms, model, (reviews or {}).get(uid))
        w.states.append(StateWrite(g, uid, st.to_bytes(), f"{TOPIC}:0", st.next_review_s, risk, reach))
        stats_delta(None, st, [], w.stats)
    assert await store.write(list(writes.values()), "save-index-test") == []
    await store.write_progress(TOPIC, {0: (1, until_ms)})


def _advanced(model: ChurnModel) -> tuple[dict[str, Outcome], int]:
    events, _ = generate(5, 400, T0_MS, 90)
    end_ms = T0_MS + 90 * DAY_MS
    by_user: dict[str, list] = collections.defaultdict(list)  # type: ignore[type-arg]
    for ev in events:
        by_user[ev.user_id].append(ev)
    return {u: o for u, evs in by_user.items() if not (o := advance(u, None, evs, end_ms, model)).expire}, end_ms


async def _compare(redis_url: str, model: ChurnModel, from_review: bool = False) -> collections.Counter[str]:
    outcomes, end_ms = _advanced(model)
    states = {u: o.state for u, o in outcomes.items()}
    store = Store(Settings(redis_url=redis_url, buckets=4, groups_per_bucket=8))
    await store.connect()
    seen: collections.Counter[str] = collections.Counter()
    try:
        await _write(store, states, end_ms, model, {u: o.review for u, o in outcomes.items()} if from_review else None)
        for later_days in (0, 0.5, 3, 20):  # later: reviews overdue, read live
            now_s = (end_ms + int(later_days * DAY_MS)) // 1000
            for budget in ({"share": 0.02}, {"share": 0.1}, {"share": 0.5}, {"share": 1.0}, {"n": 7}):
                want = daily_list(states.items(), now_s, model, "save", **budget)  # type: ignore[arg-type]
                got = await indexed_save_list(store, TOPIC, model, now_s, **budget)  # type: ignore[arg-type]
                assert [(r.user_id, r.scores) for r in got] == [(r.user_id, r.scores) for r in want], (later_days, budget)
                seen["rows"] += len(got)
    finally:
        await store.close()
    return seen


@pytest.mark.parametrize("model, from_review", [(load_model(None), False), (MODEL, False), (load_model(None), True)],
                         ids=["default", "trained-looking", "bounds-from-the-engine's-review"])
def test_share_list_from_the_index_equals_ranking_every_state(redis_url: str, model: ChurnModel, from_review: bool) -> None:
    assert asyncio.run(_compare(redis_url, model, from_review))["rows"] > 100


def test_the_bound_from_the_last_review_is_save_bound_up_to_rounding() -> None:
    """The worker's index bound from ``Outcome.review`` (no second scoring) is ``save_bound`` up
    to float rounding."""
    model = load_model(None)
    outcomes, _ = _advanced(model)
    compared = 0
    for o in outcomes.values():
        if o.review is None or not on_save_list(o.state):
            continue
        exact, fast = save_bound(o.state, model), save_bound_after(o.review, o.state, model)
        assert abs(fast - exact) <= 1e-12, (exact, fast)
        compared += 1
    assert compared > 20


def test_the_review_gives_the_at_risk_score_and_the_bound_exactly_as_a_fresh_scoring() -> None:
    """``index_scores`` with the last review: the at-risk ranking's score is that review's
    ``index_score``, bit for bit the one a fresh assessment finds again (a review moves nothing the risk reads); the
    save-list bound from the review's remembered look ahead (``SilentRisk``'s last evaluation,
    mostly at the next review) is what a fresh evaluation of the same assessment gives."""
    model = load_model(None)
    outcomes, end_ms = _advanced(model)
    at_risk = listed = 0
    for o in outcomes.values():
        if o.review is None:
            continue
        a = o.review
        fresh = Assessment(a.signals, a.stage, a.risk, a.p_stay, a.stay_source, a.revenue, a.leave)  # nothing remembered
        (risk, reach, alert), (risk0, reach0, alert0) = index_scores(None, o.state, end_ms, model, a), index_scores(None, o.state, end_ms, model)
        if o.state.at_risk_since_s:
            assert risk is not None and risk0 is not None and risk.hex() == risk0.hex()
            assert alert.hex() == alert0.hex() == a.risk.hex(), "account members read the alert's risk, not the index score"
            at_risk += 1
        if on_save_list(o.state):
            assert reach is not None and reach == save_bound_after(fresh, o.state, model)
            listed += 1
    assert at_risk > 10 and listed > 20


async def _marks(redis_url: str) -> list[str]:
    """save_index as recorded after each step: a worker on an empty store, a reader, users written,
    a worker on a store from before the index (no marker, users), a model taken over."""
    async def connect(model: str, take_over: bool = False) -> Store:
        store = Store(Settings(redis_url=redis_url, buckets=4, groups_per_bucket=8))
        store.model, store.take_over_model = model, take_over
        await store.connect()
        return store

    seen = []
    first = await connect("m1@a")
    seen.append(await first.save_index_model())
    st = UserState(first_seen_s=T0_MS // 1000, last_seen_s=T0_MS // 1000, n_events=1, active_days=1)
    await _write(first, {"u1": st}, T0_MS, load_model(None))
    await first.client.hdel(first.keys.meta, "save_index")  # as a store written before the index
    second = await connect("m1@a")
    seen.append(await second.save_index_model())
    await second.client.hset(second.keys.meta, "save_index", "m1@a")
    third = await connect("m2@b", take_over=True)
    seen.append(await third.save_index_model())
    for s in (first, second, third):
        await s.close()
    return seen


def test_the_index_is_trusted_only_when_built_from_the_first_user_with_the_readers_model(redis_url: str) -> None:
    assert asyncio.run(_marks(redis_url)) == ["m1@a", "", ""]


def test_account_members_carry_the_alerts_risk_not_the_index_score() -> None:
    """The at-risk index holds the list key (models.ranking.index_score); an account member's
    risk is the open alert's risk, at its opening (QA21 F2: at its last review, a customer back
    while the alert stayed open read "at risk by its own alert (risk 7%)" on its account; the
    member copy of a user's last active hour: its state as of its last event there)."""
    from streams.worker.members import member_copies, member_marks
    from streams.worker.revenue import parse_member_copy

    model = load_model(None)
    events, _ = generate(5, 400, T0_MS, 90)
    by_user: dict[str, list] = collections.defaultdict(list)  # type: ignore[type-arg]
    for ev in events:
        by_user[ev.user_id].append(ev)
    at_last = {u: advance(u, None, evs, max(e.ts_ms for e in evs), model) for u, evs in by_user.items()}
    alerted = {u: o for u, o in at_last.items() if o.state.at_risk_since_s}
    inputs = [(u, member_marks(u, None, by_user[u], model), by_user[u]) for u in alerted]
    copies = member_copies(inputs, {u: ("acme", 0, 1) for u in alerted}, model)
    got = {m.user_id: m.risk for _, value, _ in copies for _, _, m in [parse_member_copy(value)]}  # type: ignore[misc]
    assert len(got) == len(alerted) >= 5
    for uid, o in alerted.items():
        assert got[uid] == o.state.alert_risk > 0, (uid, got[uid], o.state.alert_risk)  # both float32


def test_a_take_over_says_once_which_models_index_it_drops(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """QA10 F15: the preflight's connect and the runtime's each warned; the second, finding the
    index cleared, named an empty model ("built with model : top --share ...")."""
    async def run() -> None:
        stores = []
        for model, take_over in (("m1@a", False), ("m2@b", True), ("m2@b", True)):
            store = Store(Settings(redis_url=redis_url, buckets=4, groups_per_bucket=8))
            store.model, store.take_over_model = model, take_over
            await store.connect()
            stores.append(store)
            if len(stores) == 1:
                st = UserState(first_seen_s=T0_MS // 1000, last_seen_s=T0_MS // 1000, n_events=1, active_days=1)
                await _write(store, {"u1": st}, T0_MS, load_model(None))
        assert await stores[-1].save_index_model() == ""
        for store in stores:
            await store.close()

    with caplog.at_level(logging.WARNING, logger="streams.worker.store"):
        asyncio.run(run())
    said = [r.getMessage() for r in caplog.records if "save-list index built" in r.getMessage()]
    assert said == ["save-list index built with model m1@a, taken over by m2@b: top --share reads every state from now on"], said
