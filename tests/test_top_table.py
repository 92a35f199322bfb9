"""``churnwatch top``'s user table: a spend column where anyone listed has bought (QA12 F6)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from models.scoring import Scores
from models.state import UserState
from streams.cli.top import user_rows
from streams.views import UserReport

if TYPE_CHECKING:
    from models.events import Event
    from models.model import ChurnModel


def _report(user: str, revenue: float, savable: float | None = 0.4) -> UserReport:
    scores = Scores(31.0, 40.0, 0.82, "dormant", None, "win_back", ("no purchase for 90 days",))
    state = dataclasses.replace(UserState(), revenue=revenue)
    return UserReport(user, 0, scores, state, savable=savable)


def test_the_win_back_list_shows_what_each_lapsed_buyer_spent() -> None:
    lines = user_rows([_report("c00026", 312.5, None), _report("c02149", 0.0, None)], save=False)
    assert lines[0].split()[:7] == ["#", "user", "risk", "health", "temp", "spend", "stage"]
    assert lines[1].split()[:6] == ["1", "c00026", "0.82", "31", "40", "312.50"]
    assert lines[2].split()[:6] == ["2", "c02149", "0.82", "31", "40", "0.00"]


def test_a_product_without_purchases_keeps_its_table() -> None:
    lines = user_rows([_report("u1", 0.0)], save=True)
    assert "spend" not in lines[0]
    assert lines[0].split()[:7] == ["#", "user", "risk", "save", "health", "temp", "stage"]
    assert lines[1].split()[:7] == ["1", "u1", "0.82", "0.40", "31", "40", "dormant"]


def test_the_save_list_shows_days_overdue_for_repeat_buyers() -> None:
    """QA12 F5: a column of days overdue against the re-order rhythm, blank for a user without one."""
    late = dataclasses.replace(_report("c00746", 120.0), overdue_days=13.4)
    early = dataclasses.replace(_report("c00523", 80.0), overdue_days=-5.6)
    lines = user_rows([late, early, _report("c09999", 40.0)], save=True)
    assert lines[0].split()[:9] == ["#", "user", "risk", "save", "health", "temp", "spend", "overdue", "stage"]
    assert lines[1].split()[6:9] == ["120.00", "+13", "dormant"]
    assert lines[2].split()[6:9] == ["80.00", "-6", "dormant"]
    assert lines[3].split()[6:8] == ["40.00", "dormant"]


def test_no_overdue_column_without_a_repeat_buyer() -> None:
    assert "overdue" not in user_rows([_report("c09999", 40.0)], save=True)[0]


def test_the_overdue_days_are_the_models_own() -> None:
    """streams.views computes the column from the user's state at the row's time (models.signals.days_overdue):
    orders on days 0, 20 and 40 (usual interval max(20, (40 + prior) / 3)), looked at on day 65."""
    from models.engine import advance
    from models.events import Event
    from models.model import load_model
    from streams.views import _overdue

    t0, day = 1_767_225_600_000, 86_400_000
    events = [Event("u", t0 + d * day, "purchase", f"p{d}", 30.0) for d in (0, 20, 40)]
    model = load_model()
    state = advance("u", None, events, t0 + 41 * day, model).state
    gap = max(20.0, (40.0 + model.compiled.purchase_gap_days) / 3)  # models.signals.order_gap_days
    overdue = _overdue(state, t0 + 65 * day, model)
    assert overdue is not None and abs(overdue - (25.0 - gap)) < 1e-6
    assert _overdue(advance("u", None, events[:1], t0 + day, model).state, t0 + 65 * day, model) is None


def test_the_win_back_list_shows_the_mrr_a_lapsed_subscriber_lost() -> None:
    """QA14 F5: a subscription app's win-back list had no money column (spend counts purchases: 0
    for every subscriber), so lapsed payers and never-paid trials looked alike. A ``lost MRR``
    column (JSON ``lost_mrr``) where a listed user's own subscription churned."""
    paid = dataclasses.replace(_report("f00602", 0.0, None), lost_mrr_cents=999)
    trial = dataclasses.replace(_report("f01042", 0.0, None), lost_mrr_cents=0)
    lines = user_rows([trial, paid], save=False)
    assert lines[0].split()[:8] == ["#", "user", "risk", "health", "temp", "lost", "MRR", "stage"]
    assert lines[1].split()[:7] == ["1", "f01042", "0.82", "31", "40", "0.00", "dormant"]
    assert lines[2].split()[:7] == ["2", "f00602", "0.82", "31", "40", "9.99", "dormant"]
    assert (paid.to_dict()["lost_mrr"], trial.to_dict()["lost_mrr"]) == (9.99, 0.0)
    assert "lost_mrr" not in _report("u1", 0.0).to_dict(), "off the win-back list: no field"
    assert "lost" not in user_rows([trial], save=False)[0], "nobody lost MRR: the table as it was"


def test_top_win_back_reads_each_users_own_account_loss(redis_url: str) -> None:
    """The rows ``top --win-back`` prints (streams.views.top_users) against a real valkey: a B2C
    subscriber who cancelled 9.99 (its own account, keyed by its id), a trial lost without paying
    (0) and a member of a company account whose company churned (0: the loss is the company's)."""
    from models.model import load_model
    from models.events import Event
    from models.subscription import Subscription
    from streams.settings import Settings
    from streams.views import open_reader, top_users

    t0, day = 1_767_225_600_000, 86_400_000
    end = t0 + 120 * day
    model = load_model()
    users = {"payer": "", "trial": "", "member": "acme"}

    def history(uid: str, account: str) -> list[Event]:
        evs = [Event(uid, t0 + d * day, "view", f"{uid}{d}", 0.0, account) for d in range(10)]
        status = "trial" if uid == "trial" else "active"
        evs.append(Event(uid, t0 + 1000, "subscription", f"{uid}s", 0.0, account, Subscription(status, "Pro", 999, t0 + 7 * day if status == "trial" else 0)))
        evs.append(Event(uid, t0 + 20 * day, "subscription", f"{uid}c", 0.0, account, Subscription("cancelled", "Pro", 0)))
        return sorted(evs, key=lambda e: e.ts_ms)

    _store_users(redis_url, model, end, {uid: (account, history(uid, account)) for uid, account in users.items()})
    with open_reader(Settings(redis_url=redis_url)) as reader:
        rows = {r.user_id: r.lost_mrr_cents for r in top_users(reader, Settings(redis_url=redis_url), share=1.0, kind="win_back")}
        saved = top_users(reader, Settings(redis_url=redis_url), share=1.0, kind="save")
        chance = [r.user_id for r in top_users(reader, Settings(redis_url=redis_url), share=1.0, kind="win_back")]
        by_mrr = [r.user_id for r in top_users(reader, Settings(redis_url=redis_url), share=1.0, kind="win_back", by="mrr")]
        first = [r.user_id for r in top_users(reader, Settings(redis_url=redis_url), 1, kind="win_back", by="mrr")]
    assert rows == {"payer": 999, "trial": 0, "member": 0}, rows
    # QA14 F5: --by mrr puts the lapsed payer first, the rest in the list's own order; -n cuts it
    assert by_mrr == ["payer"] + [u for u in chance if u != "payer"] and first == ["payer"], (chance, by_mrr)
    assert all(r.lost_mrr_cents is None for r in saved)


def test_top_by_value_ranks_by_the_value_at_stake(redis_url: str) -> None:
    """QA22b F8: a game's save list ranked by the savable risk alone put a whale (430.92 spent) at
    rank 255 of 464, and ``--by mrr`` saw only the 4.99 pass. ``top --by value`` (either list,
    against a real valkey) ranks by the list's chance (save: the savable risk; win back: the risk) x (the user's own MRR, on the win-back list
    the MRR its churn took, plus purchases per month since the first: models.ranking.value_at_stake),
    shown as ``at stake`` (JSON ``value_at_stake``); users worth nothing after, in the list's order.
    A member of a company account has no MRR of its own (the company's 50.00 is not counted)."""
    from models.events import Event
    from models.model import load_model
    from models.ranking import monthly_spend
    from models.subscription import Subscription
    from streams.settings import Settings
    from streams.views import open_reader, top_users

    t0, day = 1_767_225_600_000, 86_400_000
    end = t0 + 120 * day
    model = load_model()
    # user -> (account, last day of use, purchases (day, amount), subscription MRR cents, cancelled on day)
    users = {"whale": ("", 118, ((30, 130.92), (60, 100.0), (90, 200.0)), 0, None), "payer": ("", 118, (), 999, None),
             "member": ("acme", 118, (), 5000, None), "free": ("", 118, (), 0, None),
             "gone_payer": ("", 20, (), 999, 20), "gone_buyer": ("", 20, ((10, 80.0),), 0, None), "gone_free": ("", 20, (), 0, None)}

    def history(uid: str, account: str, last: int, bought: tuple, cents: int, cancelled: int | None) -> list[Event]:  # type: ignore[type-arg]
        evs = [Event(uid, t0 + d * day + 3_600_000, "view", f"{uid}v{d}", 0.0, account) for d in range(0, last + 1, 2)]
        evs += [Event(uid, t0 + d * day + 7_200_000, "purchase", f"{uid}p{d}", amount, account) for d, amount in bought]
        if cents:
            evs.append(Event(uid, t0 + 1000, "subscription", f"{uid}s", 0.0, account, Subscription("active", "Pro", cents)))
        if cancelled is not None:
            evs.append(Event(uid, t0 + cancelled * day, "subscription", f"{uid}c", 0.0, account, Subscription("cancelled", "Pro", 0)))
        return sorted(evs, key=lambda e: e.ts_ms)

    _store_users(redis_url, model, end, {uid: (account, history(uid, account, *rest)) for uid, (account, *rest) in users.items()})
    settings = Settings(redis_url=redis_url)
    mrr = {"payer": 9.99, "gone_payer": 9.99}
    with open_reader(settings) as reader:
        for kind, chance_of in (("save", lambda r: r.savable), ("win_back", lambda r: r.scores.risk)):
            chance = [r.user_id for r in top_users(reader, settings, share=1.0, kind=kind)]
            rows = top_users(reader, settings, share=1.0, kind=kind, by="value")
            assert sorted(r.user_id for r in rows) == sorted(chance), (kind, chance)
            for r in rows:
                want = chance_of(r) * (mrr.get(r.user_id, 0.0) + monthly_spend(r.state, end // 1000))
                assert r.value_at_stake == pytest.approx(want) and r.to_dict()["value_at_stake"] == round(want, 2), r.user_id
            stakes = [r.value_at_stake for r in rows]
            assert stakes == sorted(stakes, reverse=True) and stakes[0] > 0.0, (kind, stakes)
            worthless = [r.user_id for r in rows if r.value_at_stake == 0.0]
            assert worthless == [u for u in chance if u in worthless] and worthless, (kind, chance, worthless)
            assert [r.user_id for r in top_users(reader, settings, 1, kind=kind, by="value")] == [rows[0].user_id]
            assert "at stake" in user_rows(rows, save=kind == "save")[0]
        save = [r.user_id for r in top_users(reader, settings, share=1.0, kind="save", by="value")]
    assert save[0] == "whale" and set(save[:2]) == {"whale", "payer"}, save
    assert set(save[2:]) == {"member", "free"}, save


def _store_users(redis_url: str, model: "ChurnModel", end: int, users: dict[str, tuple[str, list["Event"]]]) -> None:
    """Write each user's state after their events (user -> (account, events)) as a worker does,
    their own account's revenue state (keyed by the account, or by the user without one) and the
    stream's progress at ``end`` into a real valkey, for streams.views.top_users to read."""
    import asyncio

    from models.engine import advance
    from models.revenue import AccountState
    from streams.settings import Settings
    from streams.worker.keys import locate
    from streams.worker.phases import index_scores
    from streams.worker.store import BucketWrite, StateWrite, Store, bucket_of, stats_delta

    async def write() -> None:
        settings = Settings(redis_url=redis_url)
        store = Store(settings)
        store.use_model(model)
        await store.connect()
        field = f"{settings.topic_events}:0"
        for uid, (account, evs) in users.items():
            st = advance(uid, None, evs, end, model).state
            b, g = locate(uid, store.buckets, store.groups)
            w = BucketWrite(b, [(field, "", "")])
            risk, reach, _ = index_scores(None, st, end, model)
            w.states.append(StateWrite(g, uid, st.to_bytes(), field, st.next_review_s, risk, reach))
            stats_delta(None, st, [], w.stats)
            assert await store.write([w], "top-test") == []
            acc = AccountState()
            for ev in evs:
                if ev.subscription is not None:
                    acc = acc.update(ev)
            name = account or uid
            await store.client.hset(store.keys.accounts(bucket_of(name, store.buckets)), name, acc.to_bytes())
        await store.write_progress(settings.topic_events, {0: (1, end)})
        await store.close()

    asyncio.run(write())


def test_the_save_list_shows_the_days_to_a_running_paid_period_s_renewal() -> None:
    """QA23a F3: silent subscribers are ordered among equals by the nearest renewal
    (models.ranking.save_rank); the table says when, in the calendar days the reasons count
    ("renewal due in 241 days"), blank for a user without a running paid period; a pause's
    resume date is no renewal."""
    from models.state import DAY_S, PAUSED

    now_ms = 20_000 * DAY_S * 1000 + 3_600_000
    annual = dataclasses.replace(_report("f00513", 0.0), as_of_ms=now_ms,
                                 state=dataclasses.replace(UserState(), period_end_day=20_242))
    ended = dataclasses.replace(annual, user_id="f00011", state=dataclasses.replace(UserState(), period_end_day=20_000))
    pause = dataclasses.replace(annual, user_id="f00900", state=dataclasses.replace(UserState(), period_end_day=20_030, flags=PAUSED))
    lines = user_rows([annual, ended, pause, dataclasses.replace(_report("u1", 0.0), as_of_ms=now_ms)], save=True)
    assert lines[0].split()[:8] == ["#", "user", "risk", "save", "health", "temp", "renews", "stage"]
    assert lines[1].split()[6:8] == ["241", "dormant"]
    assert [line.split()[6] for line in lines[2:]] == ["dormant"] * 3
    assert "renews" not in user_rows([_report("u1", 0.0)], save=True)[0], "nobody paying: the table as it was"
    assert "renews" not in user_rows([annual], save=False)[0], "the win-back list has no such order"
