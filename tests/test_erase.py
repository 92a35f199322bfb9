"""``churnwatch erase`` against the real valkey-server (and, for the worker, the real broker).

Whether a user is gone is checked without a list of key families: every key of the deployment is
read whole (names, fields, members, values) and searched for the user's id and member key, so a
family added later that keeps the id fails these tests until the erase deletes it too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
import redis as redis_lib

from models.account_health import Member, member_key
from models.events import Event
from models.ranking import on_save_list
from models.state import STAGES, UserState
from models.subscription import Subscription
from streams.cli import main
from streams.settings import Settings
from streams.worker.erase import erase, erased_hash
from streams.worker.keys import Keys, locate
from streams.worker.store import BucketRead, BucketWrite, StateWrite, Store, stats_delta

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01
FIELD = "ev:3"


def _settings(url: str, prefix: str = "cw") -> Settings:
    return Settings(redis_url=url, buckets=4, groups_per_bucket=8, key_prefix=prefix)


def _state(seen_s: int, at_risk: bool = False, due_s: int = 0) -> UserState:
    st = UserState(first_seen_s=seen_s - 30 * DAY, last_seen_s=seen_s, n_events=5, active_days=3, act_7d=2.0)
    st.stage = STAGES.index("declining" if at_risk else "active")
    st.at_risk_since_s = seen_s if at_risk else 0
    st.next_review_s = due_s
    return st


def traces(client: redis_lib.Redis, prefix: str, user: str) -> list[str]:
    """Where the deployment's keys hold ``user``: its id or member key in a key's name, a hash's
    fields or values, a sorted set's members, a string's value."""
    needles = (user.encode(), str(member_key(user)).encode())
    found = []
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        kind = client.type(key).decode()
        if kind == "hash":
            items = [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "zset":
            items = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "string":
            items = [client.get(key) or b""]
        elif kind == "set":
            items = list(client.smembers(key))
        else:
            items = list(client.lrange(key, 0, -1))
        for item in [key, *items]:
            if any(n in item for n in needles):
                found.append(f"{key.decode(errors='replace')} ({kind})")
                break
    return found


def _run(url: str, fn: Any, prefix: str = "cw") -> Any:
    async def go() -> Any:
        store = Store(_settings(url, prefix))
        await store.connect()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(go())


async def _write(store: Store, user: str, st: UserState, token: str) -> Any:
    """One user's state (at risk: ranked), alert list entry, history point and counters, as the worker
    writes them (the bucket's offset of FIELD moved one on)."""
    b, g = locate(user, store.buckets, store.groups)
    (read,) = await store.read([BucketRead(b, [(FIELD, None)], [])])
    expected = read.offsets[0]
    new = str(int(expected or 0) + 1)
    stats: dict[str, float] = {}
    stats_delta(None, st, (), stats)
    w = BucketWrite(b, [(FIELD, expected, new)],
                    [StateWrite(g, user, st.to_bytes(), FIELD, st.next_review_s, 0.7 if st.at_risk_since_s else None,
                                0.5 if on_save_list(st) else None)], stats)
    w.alerts.append((g, user, f"a-{user}-{token}", f'["a-{user}-{token}","at_risk",1,"declining",0.7,[]]'.encode()))
    w.history.append((g, user, bytes([0, 1, 50, 60, 70])))
    return await store.write([w], token)


def _member_of(client: redis_lib.Redis, keys: Keys, user: str, account: str) -> None:
    """A membership as the account side writes it (``lua/write_accounts.lua``): the member record,
    with the id, in the account's bucket, and the user -> account index there."""
    b = locate(account, 4, 8)[0]
    m = Member(member_key(user), T0, 1, 0.0, 1.0, 2.0, user)
    client.hset(keys.members(b, account), str(m.key), m.to_bytes())
    client.hset(keys.member_of(b, locate(user, 4, 8)[1]), user, account)


def test_erase_deletes_every_trace_of_the_user_and_corrects_the_counters(redis_url: str) -> None:
    keys = Keys("cw")

    async def fill(store: Store) -> dict[str, float]:
        before = await store.stats()
        assert await _write(store, "ann@example.com", _state(T0, at_risk=True, due_s=T0 + DAY), "t1") == []
        assert await _write(store, "bob", _state(T0, at_risk=True, due_s=T0 + DAY), "t2") == []
        return before

    _run(redis_url, fill)
    client = redis_lib.Redis.from_url(redis_url)
    _member_of(client, keys, "ann@example.com", "acme")
    _member_of(client, keys, "bob", "acme")
    ann_b = locate("ann@example.com", 4, 8)[0]
    client.hset(keys.accounts(ann_b), "ann@example.com", b"state")  # her own account (no account_id)
    client.hset(keys.account_side(ann_b), mapping={"ann@example.com": b"side", "ann@example.com|held": b"[]"})
    client.zadd(keys.account_due("ev", 3), {"ann@example.com": T0 + DAY, "acme": T0 + DAY})
    bob_before = _dump(client, without="ann@example.com")
    assert len(traces(client, "cw", "ann@example.com")) >= 9

    done = erase(_settings(redis_url), ["ann@example.com", "never-seen"])

    assert traces(client, "cw", "ann@example.com") == []
    assert (done.users, done.with_state, done.buckets) == (2, 1, 4)
    assert traces(client, "cw", "bob") != [] and _run(redis_url, lambda s: s.load_user("bob")) == _state(T0, True, T0 + DAY)
    stats, bob = _run(redis_url, lambda s: s.stats()), {}
    stats_delta(None, _state(T0, True, T0 + DAY), (), bob)  # what bob alone adds
    levels = ("users", "at_risk", "reachable", *(f"stage:{s}" for s in STAGES))
    assert {k: stats.get(k, 0) for k in levels} == {k: bob.get(k, 0) for k in levels}
    assert bob["users"] == 1 and bob["at_risk"] == 1
    assert _dump(client) == bob_before, "what the store holds of others changed"
    salt = client.hget(keys.erased(0), "|salt").decode()
    for b in range(4):  # every bucket records every erased user, by keyed hash only
        fields = client.hgetall(keys.erased(b))
        assert erased_hash(fields[b"|salt"].decode(), "ann@example.com").encode() in fields
        assert not any(b"ann" in f or b"never" in f for f in fields)
    assert salt


def _dump(client: redis_lib.Redis, without: str = "") -> dict[bytes, Any]:
    """Every hash and sorted set of the store but the counters and the erased sets; ``without``: less
    the fields and members holding that user's id or member key."""
    needles = (without.encode(), str(member_key(without)).encode()) if without else ()
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(match="cw:*"):
        if key.endswith((b":stats", b":erased", b":meta")) or any(n in key for n in needles):  # meta: ERASED_FORMAT
            continue
        if client.type(key) == b"hash":
            value: Any = {f: v for f, v in client.hgetall(key).items() if not any(n in f or n in v for n in needles)}
        else:
            value = [(m, sc) for m, sc in client.zrange(key, 0, -1, withscores=True) if not any(n in m for n in needles)]
        if value:
            out[key] = value
    return out


def test_a_cycle_that_read_the_user_before_the_erase_writes_nothing_of_them_after_it(redis_url: str) -> None:
    """The worker's write (state, indexes, alert list, history) and its next read, around an erase."""
    b = next(b for b in range(4) if locate("cy", 4, 8)[0] == b)
    # same bucket and group: the same script call, and past erased.lua's "|groups" test to the hash's
    other = next(f"o{i}" for i in range(1000) if locate(f"o{i}", 4, 8) == locate("cy", 4, 8))

    async def before(store: Store) -> Any:
        assert await _write(store, "cy", _state(T0), "t1") == []
        return await store.read([BucketRead(b, [(FIELD, None)], [(locate("cy", 4, 8)[1], "cy")])])

    (read,) = _run(redis_url, before)
    assert read.erased == []
    erase(_settings(redis_url), ["cy"])

    async def after(store: Store) -> Any:
        # the cycle in flight writes what it computed from its read: refused for cy, not for the other user
        assert await _write(store, "cy", _state(T0 + DAY, at_risk=True), "t2") == []
        assert await _write(store, other, _state(T0 + DAY), "t3") == []
        return await store.read([BucketRead(b, [(FIELD, None)], [(locate(other, 4, 8)[1], other), (locate("cy", 4, 8)[1], "cy")])])

    (again,) = _run(redis_url, after)
    client = redis_lib.Redis.from_url(redis_url)
    assert traces(client, "cw", "cy") == []
    assert again.erased == [1], "the next read names the erased user's position"
    assert again.blobs == [_state(T0 + DAY).to_bytes(), None]
    assert traces(client, "cw", other) != []


def test_erase_then_a_late_write_on_one_redis(redis_url: str) -> None:
    check_erase_on(redis_url)


@pytest.mark.parametrize("gap", [0.0, 9.5])  # a record of the format before the rhythm, and one that keeps it (QA18 F4)
def test_the_account_side_writes_no_member_record_or_own_account_of_an_erased_user(redis_url: str, gap: float) -> None:
    from streams.worker.revenue import AccountWrite

    _run(redis_url, lambda s: s.ping())  # a store (cw:meta) to erase from
    erase(_settings(redis_url), ["mem", "solo"])
    acme_b, solo_b = locate("acme", 4, 8)[0], locate("solo", 4, 8)[0]
    kept, gone = (Member(member_key(u), T0, 1, 0.0, 1.0, 2.0, u, gap) for u in ("kim", "mem"))

    async def write(store: Store) -> Any:
        acme = AccountWrite(acme_b, [("acct|ev:0", "", "1")])
        acme.states["acme"] = b"acme-state"
        acme.members["acme"] = {str(kept.key).encode(): kept.to_bytes(), str(gone.key).encode(): gone.to_bytes()}
        acme.member_ids["acme"] = ["kim", "mem"]
        solo = acme if solo_b == acme_b else AccountWrite(solo_b, [("acct|ev:1", "", "1")])
        solo.states["solo"] = b"solo-state"
        return await store.write_accounts([acme] if solo is acme else [acme, solo], "t1")

    assert _run(redis_url, write) == []
    client = redis_lib.Redis.from_url(redis_url)
    assert traces(client, "cw", "mem") == [] and traces(client, "cw", "solo") == []
    assert client.hget(Keys("cw").accounts(acme_b), "acme") == b"acme-state"
    assert client.hget(Keys("cw").members(acme_b, "acme"), str(kept.key)) == kept.to_bytes()


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    ([], "give one or more user ids, or --file"),
    ([""], "user id 1 is empty"),
    (["ok", "x" * 300], "user id 2 has 300 characters, at most 256"),
    (["--file", "/nonexistent/ids.txt"], "--file /nonexistent/ids.txt: no such file"),
    (["--bogus"], "unrecognized arguments: --bogus"),
], ids=["none", "empty", "too-long", "no-file", "bad-option"])
def test_bad_arguments_are_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    from streams.local import free_port

    try:
        code = main(["--redis-url", f"redis://127.0.0.1:{free_port()}/0", "erase", *argv])
    except SystemExit as exc:  # argparse's own errors (one line: streams.cli._Parser)
        code = int(exc.code or 0)
    assert code == 2
    assert says in _one_line(capsys.readouterr().err)


def test_a_file_that_is_not_utf8_and_a_redis_without_churnwatch_are_one_line(redis_url: str, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "ids.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    assert main(["--redis-url", redis_url, "erase", "--file", str(bad)]) == 2
    assert "not UTF-8 text (byte 3)" in _one_line(capsys.readouterr().err)
    assert main(["--redis-url", redis_url, "erase", "u1"]) == 2  # an empty Redis: nothing is recorded there
    assert "no churnwatch state under key prefix 'cw'" in _one_line(capsys.readouterr().err)
    assert redis_lib.Redis.from_url(redis_url).dbsize() == 0


# -- the worker: real broker, real Redis --------------------------------------------------------

DAY_MS = DAY * 1000
START_MS = T0 * 1000
ERASED = ("er-ann@example.com", "er-carl")
WORKER_ENV = {"CHURNWATCH_ALLOWED_LATENESS_MS": "6h", "CHURNWATCH_IDLE_PARTITION_MS": "1000",
              "CHURNWATCH_BUCKETS": "8", "CHURNWATCH_GROUPS_PER_BUCKET": "4"}


def _history() -> list[Event]:
    """Six users over 60 days: ann (her own account, a subscription) stops on day 30; carl and
    dora are members of acme; the others are plain."""
    evs: list[Event] = [Event("er-ann@example.com", START_MS + DAY_MS, "subscription", "ann-s0", 0.0, "",
                              Subscription("active", "Pro", 990))]
    for d in range(60):
        t = START_MS + d * DAY_MS
        if d < 30:
            evs.append(Event("er-ann@example.com", t + 3_600_000, "login", f"ann-{d}"))
        evs.append(Event("er-carl", t + 7_200_000, "login", f"carl-{d}", 0.0, "acme"))
        if d % 2 == 0:
            evs.append(Event("er-dora", t + 9_000_000, "login", f"dora-{d}", 0.0, "acme"))
            evs.append(Event("er-eve", t + 10_000_000, "login", f"eve-{d}"))
        if d < 40 or d % 5 == 0:
            evs.append(Event("er-finn", t + 11_000_000, "purchase" if d % 10 == 0 else "login", f"finn-{d}", 5.0 if d % 10 == 0 else 0.0))
    return sorted(evs, key=lambda e: e.ts_ms)


def _later() -> list[Event]:
    """Days 60-62: more of everyone, the erased users included (ann comes back, with a subscription)."""
    evs = [Event("er-ann@example.com", START_MS + 60 * DAY_MS, "subscription", "ann-s1", 0.0, "", Subscription("active", "Pro", 1990))]
    for d in range(60, 63):
        t = START_MS + d * DAY_MS
        evs += [Event("er-ann@example.com", t + 3_600_000, "login", f"ann-{d}"),
                Event("er-carl", t + 7_200_000, "login", f"carl-{d}", 0.0, "acme"),
                Event("er-dora", t + 9_000_000, "login", f"dora-{d}", 0.0, "acme"),
                Event("er-eve", t + 10_000_000, "login", f"eve-{d}")]
    return sorted(evs, key=lambda e: e.ts_ms)


def _user_alerts(bootstrap: str, topic: str, partitions: int) -> dict[str, int]:
    from tests.harness import read_topic

    out: dict[str, int] = {}
    for rec in read_topic(bootstrap, topic, partitions, timeout_s=10):
        key = (rec.key or b"").decode()
        out[key] = out.get(key, 0) + 1
    return out


def _copies_of(bootstrap: str, topic: str, partitions: int, user: str) -> int:
    """Records in the events topic that churnwatch made (a header) and that hold ``user``'s id."""
    from tests.harness import read_topic

    return sum(1 for rec in read_topic(bootstrap, topic, partitions, timeout_s=10)
               if rec.headers and user.encode() in (rec.value or b""))


@pytest.mark.integration
def test_erased_users_stay_erased_under_a_running_worker_and_a_replay(kafka_bootstrap: str, redis_url: str,
                                                                      unique_name: str, tmp_path: Path) -> None:
    from streams.worker.topics import ensure_topics
    from tests.harness import (Worker, dump_state, metric, publish_events, read_topic, wait_for, wait_progress, wait_quiet,
                               wait_reviewed)

    partitions, prefix = 4, f"cwer{uuid.uuid4().hex[:6]}"
    topics = {"events": f"ev-{unique_name}", "alerts": f"al-{unique_name}", "dlq": f"dlq-{unique_name}", "group": f"g-{unique_name}"}
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topics["events"], topic_alerts=topics["alerts"],
                           topic_dlq=topics["dlq"], partitions=partitions))
    env = {**WORKER_ENV, "CHURNWATCH_KEY_PREFIX": prefix}
    client = redis_lib.Redis.from_url(redis_url)
    keys = Keys(prefix)

    def settle(worker: Worker, last: dict[int, int]) -> None:
        wait_progress(redis_url, topics["events"], last, 120, [worker], prefix=prefix)
        wait_reviewed(redis_url, topics["events"], prefix, allowed_lateness_ms=6 * 3_600_000, buckets=8)
        wait_quiet(redis_url, prefix, quiet_s=2.0)

    def others() -> dict[str, bytes]:
        return {u: blob for u, blob in dump_state(redis_url, prefix).items() if u not in ERASED}

    history, later = _history(), _later()
    last = publish_events(kafka_bootstrap, topics["events"], history)
    worker = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "w1.log", env=env).start()
    try:
        settle(worker, last)
        for user in ERASED:
            assert traces(client, prefix, user), f"{user} was never stored: the test proves nothing"
        alerts_before = _user_alerts(kafka_bootstrap, topics["alerts"], partitions)
        assert all(alerts_before.get(u) for u in ERASED)
        copies_before = _copies_of(kafka_bootstrap, topics["events"], partitions, "er-ann@example.com")
        kept = others()

        out = subprocess.run([sys.executable, "-m", "streams.cli", "--redis-url", redis_url, "--bootstrap-servers", kafka_bootstrap,
                              "erase", *ERASED], cwd=ROOT, env={**os.environ, **env, "CHURNWATCH_TOPIC_EVENTS": topics["events"]},
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "erased 2 users (2 with a state in Redis)" in out.stdout
        assert f"kept in the erasure log {topics['events']}-erasures" in out.stdout
        assert not any(u in out.stdout + out.stderr for u in ERASED), "the output names no user"
        kept_log = read_topic(kafka_bootstrap, f"{topics['events']}-erasures", partitions, timeout_s=10)
        assert len([r for r in kept_log if r.key.startswith(b"u:")]) == 2, "one record a user"
        assert not any(u.encode() in (r.key or b"") + (r.value or b"") for r in kept_log for u in ERASED), "the log holds no id"
        assert "alerts already published" in out.stdout and "dead letters" in out.stdout
        for user in ERASED:
            assert traces(client, prefix, user) == [], user
        assert others() == kept, "other users' states changed"

        last = publish_events(kafka_bootstrap, topics["events"], later)
        settle(worker, last)
        for user in ERASED:
            assert traces(client, prefix, user) == [], f"the worker wrote {user} back"
        assert metric(worker, "churnwatch_events_erased_total") == sum(1 for e in later if e.user_id in ERASED)
        assert others() != kept, "the others' new events were applied"
        live = others()
        assert _copies_of(kafka_bootstrap, topics["events"], partitions, "er-ann@example.com") == copies_before
        alerts_live = _user_alerts(kafka_bootstrap, topics["alerts"], partitions)
        assert {u: alerts_live.get(u) for u in ERASED} == {u: alerts_before.get(u) for u in ERASED}

        # Redis loses cw:meta: the next worker empties the store (the erased set stays) and replays the topic
        worker.stop()
        old = client.hget(keys.meta, "incarnation")
        client.delete(keys.meta)
        worker = Worker(kafka_bootstrap, redis_url, topics, tmp_path / "w2.log", env=env).start()
        wait_for("the lost store cleared", lambda: client.hget(keys.meta, "incarnation") not in (None, old)
                 and not client.hexists(keys.meta, "lost_rebuild"), 60, [worker])
        settle(worker, last)
        assert "deleted" in worker.output() and "rebuild it from the events topic" in worker.output()
        for user in ERASED:
            assert traces(client, prefix, user) == [], f"the replay brought {user} back"
        assert others() == live, "the replay gives the other users the states they had"
        assert metric(worker, "churnwatch_events_erased_total") == sum(1 for e in history + later if e.user_id in ERASED)
        alerts_after = _user_alerts(kafka_bootstrap, topics["alerts"], partitions)
        assert {u: alerts_after.get(u) for u in ERASED} == {u: alerts_before.get(u) for u in ERASED}

        # Redis loses all its data (a restart without persistence) under the running worker (QA13 F1): the
        # erased set goes too; the worker puts it back from the erasure log before its rebuild replays anything
        lost_before = metric(worker, "churnwatch_redis_data_lost_total")
        client.flushdb()
        wait_for("the worker to see the loss", lambda: metric(worker, "churnwatch_redis_data_lost_total") > lost_before, 60, [worker])
        settle(worker, last)
        assert "REDIS LOST ITS DATA" in worker.output() and "2 erased users put back from the erasure log" in worker.output()
        for user in ERASED:
            assert traces(client, prefix, user) == [], f"the rebuild after the loss brought {user} back"
        assert others() == live, "the rebuild gives the other users the states they had"
        alerts_lost = _user_alerts(kafka_bootstrap, topics["alerts"], partitions)
        assert {u: alerts_lost.get(u) for u in ERASED} == {u: alerts_before.get(u) for u in ERASED}, \
            "no alert of an erased user is published again"
        erased_events = sum(1 for e in history + later if e.user_id in ERASED)
        assert metric(worker, "churnwatch_events_erased_total") == 2 * erased_events, "the replay dropped them all"
        assert client.hget(keys.meta, "format") == b"2", "a worker before erase still refuses the rebuilt store"
    finally:
        worker.stop()


def check_erase_on(redis_url: str, **kw: Any) -> None:
    """A user with a state and a membership erased, then written again by a late cycle: gone, on any
    Redis (tests/test_store_cluster.py: on a cluster, the buckets on three nodes, the account review
    index outside them)."""
    from tests.test_store import with_store
    from streams.worker.keys import bucket_of
    from streams.worker.revenue import AccountWrite, account_field

    user = "u-gone"
    m = Member(member_key(user), T0, 1, 0.0, 1.0, 1.0, user)
    member = AccountWrite(bucket_of("acme", 4), [(account_field("ev", 3), "", "1")],
                          members={"acme": {str(m.key).encode(): m.to_bytes()}}, member_ids={"acme": [user]})

    async def before(store: Store) -> Any:
        assert await _write(store, user, _state(T0, at_risk=True, due_s=T0 + DAY), "t1") == []
        assert await store.write_accounts([member], "t:1") == []
        await store.write_account_dues("ev", {3: {user: T0 + DAY}})
        return await store.account_of(user), await store.load_user(user)

    found, st = with_store(redis_url, before, **kw)
    assert found == "acme" and st is not None
    settings = Settings(redis_url=redis_url, buckets=4, groups_per_bucket=8, **kw)
    done = erase(settings, [user])
    assert (done.users, done.with_state) == (1, 1)

    async def after(store: Store) -> Any:
        assert await _write(store, user, _state(T0 + DAY), "t2") == []  # a cycle that read the user before
        return await store.account_of(user), await store.load_user(user), await store.due_accounts("ev", {3: T0 + 2 * DAY}, 10)

    assert with_store(redis_url, after, **kw) == (None, None, {3: ([], None)})


def test_new_store_records_the_erasure_for_workers_not_started_yet(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A new key prefix, or a Redis that lost its data: refused without ``--new-store`` (nothing
    recorded), then recorded in the workers' layout, so the store they make never holds the user."""
    env = {"CHURNWATCH_BUCKETS": "4", "CHURNWATCH_GROUPS_PER_BUCKET": "8"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["--redis-url", redis_url, "erase", "nu"]) == 2
        assert redis_lib.Redis.from_url(redis_url).dbsize() == 0
        capsys.readouterr()
        from streams.local import free_port

        # no broker answers: the erase in Redis is done, the erasure log is not written: said, exit code 1
        assert main(["--redis-url", redis_url, "--bootstrap-servers", f"127.0.0.1:{free_port()}", "erase", "--new-store", "nu"]) == 1
        out = capsys.readouterr()
        assert "erased 1 user (0 with a state in Redis)" in out.out
        assert "WARNING: not recorded in the erasure log activity-events-erasures" in out.err and "nu" not in out.err
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)

    async def worker_writes(store: Store) -> Any:
        assert await _write(store, "nu", _state(T0), "t1") == []
        return await store.load_user("nu")

    assert _run(redis_url, worker_writes) is None
    assert traces(redis_lib.Redis.from_url(redis_url), "cw", "nu") == []


@pytest.mark.integration
def test_the_erasure_log_puts_the_erased_set_back_into_an_empty_store(redis_url: str, kafka_bootstrap: str, unique_name: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A worker's connect restores the erasure log into a store that holds no erasure (a Redis that
    lost its data): the worker's own write script then refuses the erased users, a short id and one
    too long for a member record. A missing log is created; erasures Redis holds that the log does
    not (made before it) are one WARNING a process."""
    import logging

    from streams.kafka_admin import list_topics
    from streams.worker.erasure_log import erasure_records, publish_erasures, restore_for_worker

    settings = _settings(redis_url).with_(kafka_bootstrap_servers=kafka_bootstrap, topic_events=f"ev-{unique_name}")
    long_id = "x" * 300
    caplog.set_level(logging.WARNING, logger="streams.worker.erasure_log")
    older = settings.with_(key_prefix="older")
    erase(older, ["u-old"], new_store=True)  # an erase of a version before the log: in Redis only
    for _ in range(2):
        assert _run(redis_url, lambda store: restore_for_worker(older, store.client), prefix="older") == 0
    assert f"ev-{unique_name}-erasures" in list_topics(settings), "the worker creates a missing log"
    assert sum("are not in the erasure log" in r.getMessage() for r in caplog.records) == 1, "one WARNING a process"

    publish_erasures(settings, erasure_records("salt-1", ["gone", long_id], (4, 8), "20261204"))

    async def restored(store: Store) -> Any:
        n = await restore_for_worker(settings, store.client)
        for user in ("gone", long_id, "kept"):
            await _write(store, user, _state(T0), "t1")
        return n, [await store.load_user(u) is not None for u in ("gone", long_id, "kept")]

    assert _run(redis_url, restored) == (2, [False, False, True])
    client = redis_lib.Redis.from_url(redis_url)
    keys = Keys("cw")
    b, g = locate("gone", 4, 8)
    assert f",{g},".encode() in client.hget(keys.erased(b), "|groups")
    assert all(client.hexists(keys.erased(k), erased_hash("salt-1", "gone")) for k in range(4)), "every bucket holds every user"
    assert client.hget(keys.meta, "format") == b"2"
    assert _run(redis_url, lambda store: restore_for_worker(settings, store.client)) == 0, "every bucket holds it already"
    client.hdel(keys.erased(b), "|log", erased_hash("salt-1", "gone"))  # one bucket lost them: put back there
    assert _run(redis_url, lambda store: restore_for_worker(settings, store.client)) == 2
    assert client.hexists(keys.erased(b), erased_hash("salt-1", "gone"))


@pytest.mark.integration
def test_an_erasure_log_of_another_layout_still_erases(redis_url: str, kafka_bootstrap: str, unique_name: str) -> None:
    """Records written in another buckets/groups layout (a new key prefix with other settings after
    a loss) cannot name the user's group in this store: every group is flagged, and the worker's
    write script still refuses the erased user and only them."""
    from streams.worker.erasure_log import erasure_records, publish_erasures, restore_for_worker

    settings = _settings(redis_url).with_(kafka_bootstrap_servers=kafka_bootstrap, topic_events=f"ev-{unique_name}")
    publish_erasures(settings, erasure_records("salt-2", ["gone"], (8, 4), "20261204"))  # this store: 4 buckets, 8 groups

    async def restored(store: Store) -> Any:
        n = await restore_for_worker(settings, store.client)
        for user in ("gone", "kept"):
            await _write(store, user, _state(T0), "t1")
        return n, [await store.load_user(u) is not None for u in ("gone", "kept")]

    assert _run(redis_url, restored) == (1, [False, True])
    client = redis_lib.Redis.from_url(redis_url)
    assert all(client.hget(Keys("cw").erased(b), "|groups") == b",0,1,2,3,4,5,6,7," for b in range(4))


def test_a_take_over_rebuild_keeps_the_erased_users(redis_url: str) -> None:
    """``--take-over-model --rebuild-state`` deletes every key of the prefix but the markers and the
    erased sets: the replay that follows drops the erased users (the lost-meta clearing is run by
    the worker test above)."""
    from models.model import load_model
    from streams.worker.service import _preflight_store
    from tests.test_model_rollout import _user, _worker_wrote

    base = load_model()
    named = base.with_(version="trained-named", tracked_types=("view", "click", "search", "message"))
    uid, st = _user(base)
    settings = Settings(redis_url=redis_url)

    async def wrote() -> None:
        await (await _worker_wrote(settings, base, uid, st)).close()

    asyncio.run(wrote())
    erase(settings, [uid])
    client = redis_lib.Redis.from_url(redis_url)
    before = {b: client.hgetall(Keys("cw").erased(b)) for b in range(settings.buckets)}
    _preflight_store(settings.with_(model_takeover=True, model_rebuild=True), named)
    assert {b: client.hgetall(Keys("cw").erased(b)) for b in range(settings.buckets)} == before
    assert all(erased_hash(h[b"|salt"].decode(), uid).encode() in h for h in before.values())

    async def replayed() -> UserState | None:  # the new model's worker applies the user's history again
        store = await _worker_wrote(settings, named, uid, st)
        try:
            return await store.load_user(uid)
        finally:
            await store.close()

    assert asyncio.run(replayed()) is None
    assert traces(client, "cw", uid) == []


def test_a_company_accounts_alert_log_no_longer_names_the_user(redis_url: str) -> None:
    """Review 20 H1: an account alert's reason names the account's silent user; the erase replaces
    the id in the account's log (its extras), leaving the other entries and fields as they were."""
    from streams.worker.erase import ERASED_NAME

    keys = Keys("cw")
    _run(redis_url, lambda s: s.ping())
    client = redis_lib.Redis.from_url(redis_url)
    _member_of(client, keys, "u07", "acme")
    b = locate("acme", 4, 8)[0]
    log = [["x2", "account_recovered", 2, "healthy", 0.2, ["still silent: its most active user u07 (4 weeks, 22% of its activity)"]],
           ["x1", "account_at_risk", 1, "at_risk", 0.4, ["its most active user u07 silent for 3 weeks (22% of its activity)",
                                                         "1 of 4 users silent for 3 weeks"]],
           ["x0", "account_at_risk", 0, "at_risk", 0.5, ["u07, the user its billing statements come from, silent for 2 weeks"]]]
    client.hset(keys.account_extras(b), "acme", orjson.dumps({"seen_ms": 5, "log": log}))

    erase(_settings(redis_url), ["u07"])

    assert traces(client, "cw", "u07") == []
    got = orjson.loads(client.hget(keys.account_extras(b), "acme"))
    assert got["seen_ms"] == 5 and [r[:5] for r in got["log"]] == [r[:5] for r in log]
    assert [r[5] for r in got["log"]] == [[t.replace("u07", ERASED_NAME) for t in r[5]] for r in log]
    assert got["log"][1][5][1] == "1 of 4 users silent for 3 weeks"


def test_a_company_accounts_held_copies_lose_the_users_copies(redis_url: str) -> None:
    """Review 20 M6: the alert side's held copies (``<account>|held``) keep the user's member record
    (with the id) and subscription statements (with the id) until the watermark passes: the erase
    drops them, and keeps the other users' copies."""
    from streams.worker.revenue import _held_json, _parse_held, MemberCopy, AccountCopy

    keys = Keys("cw")
    _run(redis_url, lambda s: s.ping())
    client = redis_lib.Redis.from_url(redis_url)
    _member_of(client, keys, "hu", "acme")
    b = locate("acme", 4, 8)[0]
    mine, kim = (Member(member_key(u), T0, 1, 0.0, 1.0, 2.0, u) for u in ("hu", "kim"))
    sub = Subscription("active", "Pro", 990)
    copies = [MemberCopy(0, 1, "acme", T0 * 1000, mine, 0, 1), MemberCopy(0, 2, "acme", T0 * 1000, kim, 0, 2),
              AccountCopy(0, 3, Event("hu", T0 * 1000, "subscription", "s1", 0.0, "acme", sub), 0, 3),
              AccountCopy(0, 4, Event("kim", T0 * 1000, "subscription", "s2", 0.0, "acme", sub), 0, 4)]
    client.hset(keys.account_side(b), "acme|held", _held_json(copies))

    erase(_settings(redis_url), ["hu"])

    assert traces(client, "cw", "hu") == []
    assert _parse_held(client.hget(keys.account_side(b), "acme|held"), 0, "acme") == [copies[1], copies[3]]


def test_a_store_holding_an_erasure_is_refused_by_a_worker_of_an_earlier_version(redis_url: str) -> None:
    """Review 20 M5 (b): a worker before erase wants ``format`` 1 in cw:meta, and would write erased
    users back; the erase records ``ERASED_FORMAT``, which this version reads, and a worker that
    makes cw:meta again over kept erased sets (a lost cw:meta) records it too."""
    from streams.views import layout_mismatch
    from streams.worker.store import ERASED_FORMAT, STORE_FORMAT

    keys = Keys("cw")
    _run(redis_url, lambda s: s.ping())
    client = redis_lib.Redis.from_url(redis_url)
    assert client.hget(keys.meta, "format") == STORE_FORMAT.encode()
    erase(_settings(redis_url), ["gone"])
    assert client.hget(keys.meta, "format") == ERASED_FORMAT.encode() != STORE_FORMAT.encode()  # what an earlier worker refuses
    assert _run(redis_url, layout_mismatch) is None  # this version reads it
    client.delete(keys.meta)
    _run(redis_url, lambda s: s.ping())
    assert client.hget(keys.meta, "format") == ERASED_FORMAT.encode()


def test_new_store_records_the_layout_so_a_worker_with_another_one_refuses_it(redis_url: str) -> None:
    """Review 20 M5 (a): ``--new-store`` erases in the given layout and records it in cw:meta, so a
    worker with other buckets or groups refuses the store instead of missing the erased hashes."""
    from streams.worker.store import StoreMismatch

    erase(_settings(redis_url), ["nu"], new_store=True)
    meta = redis_lib.Redis.from_url(redis_url).hgetall(Keys("cw").meta)
    assert (meta[b"buckets"], meta[b"groups_per_bucket"]) == (b"4", b"8")

    with pytest.raises(StoreMismatch, match="buckets=4"):
        asyncio.run(_connect_with(Settings(redis_url=redis_url, buckets=8, groups_per_bucket=4)))
    assert _run(redis_url, lambda s: s.load_user("nu")) is None  # the erasure's own layout connects


async def _connect_with(settings: Settings) -> None:
    store = Store(settings)
    try:
        await store.connect()
    finally:
        await store.close()


def test_a_user_who_moved_between_accounts_of_one_bucket_loses_both_member_records(redis_url: str) -> None:
    """Review 20 M1: the membership index holds one account a user and bucket, so the old account's
    member record (with the id) in the same bucket is found by its member key, and deleted; its
    alert log loses the id too. The other members stay."""
    keys = Keys("cw")
    _run(redis_url, lambda s: s.ping())
    a1 = "acc1"
    a2 = next(f"acc{i}" for i in range(2, 1000) if locate(f"acc{i}", 4, 8)[0] == locate(a1, 4, 8)[0])
    b = locate(a1, 4, 8)[0]
    client = redis_lib.Redis.from_url(redis_url)
    _member_of(client, keys, "mover", a1)
    _member_of(client, keys, "kim", a1)
    _member_of(client, keys, "mover", a2)  # the index now names a2 only
    client.hset(keys.account_extras(b), a1, orjson.dumps({"log": [["x", "account_at_risk", 1, "at_risk", 0.5,
                                                                   ["its most active user mover silent for 3 weeks"]]]}))
    kim = client.hget(keys.members(b, a1), str(member_key("kim")))

    erase(_settings(redis_url), ["mover"])

    assert traces(client, "cw", "mover") == []
    assert client.hgetall(keys.members(b, a1)) == {str(member_key("kim")).encode(): kim}


@pytest.mark.parametrize("gap, size", [(0.0, 25), (9.5, 30)])  # without and with the rhythm (QA18 F4)
def test_a_member_record_of_an_id_too_long_to_keep_is_erased(redis_url: str, gap: float, size: int) -> None:
    """Review 20 M2: a member record keeps no id longer than ``MEMBER_ID_BYTES`` and the membership
    index has no entry for it: the erase finds the record by its member key."""
    keys = Keys("cw")
    _run(redis_url, lambda s: s.ping())
    long_id = "L" * 240
    b = locate("acme", 4, 8)[0]
    client = redis_lib.Redis.from_url(redis_url)
    m = Member(member_key(long_id), T0, 1, 0.0, 1.0, 2.0, long_id, gap)
    assert len(m.to_bytes()) == size
    client.hset(keys.members(b, "acme"), str(m.key), m.to_bytes())
    _member_of(client, keys, "kim", "acme")

    erase(_settings(redis_url), [long_id])

    assert traces(client, "cw", long_id) == [] and traces(client, "cw", "kim") != []

    async def replayed(store: Store) -> Any:  # a replay or an in-flight member copy writes the record again
        from streams.worker.revenue import AccountWrite

        w = AccountWrite(b, [("acct|ev:0", "", "1")], members={"acme": {str(m.key).encode(): m.to_bytes()}},
                         member_ids={"acme": []})
        return await store.write_accounts([w], "t1")

    assert _run(redis_url, replayed) == []
    assert traces(client, "cw", long_id) == [] and traces(client, "cw", "kim") != []


def test_file_ids_a_byte_order_mark_windows_line_ends_and_other_separators(tmp_path: Path) -> None:
    """Review 20 L2: a BOM is not part of the first id, "\\r\\n" ends a line like "\\n", and an id
    holding U+2028 or \\x1c (which ``splitlines`` splits on) stays one id."""
    from streams.cli.erase import read_ids

    ids = tmp_path / "ids.txt"
    ids.write_bytes("\ufeffann\r\nbob\u2028x\n\nc\x1cd\r\n".encode("utf-8"))
    assert read_ids([], str(ids)) == ["ann", "bob\u2028x", "c\x1cd"]


def test_a_command_line_id_that_is_not_utf8_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Review 20 L2: an argv id with a non-UTF-8 byte (kept by Python as a surrogate) is refused in
    one line that names which id, not the encoder's message."""
    from streams.local import free_port

    bad = os.fsdecode(b"caf\xe9")
    assert main(["--redis-url", f"redis://127.0.0.1:{free_port()}/0", "erase", "ok", bad]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "user id 2 is not UTF-8 text (byte 0xe9 at character 4)" in line and "surrogates" not in line


def test_a_large_erase_is_cut_into_script_calls_of_at_most_chunk_users(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 20 M3: one script call a bucket for all the ids held Redis for hundreds of ms with 20,000;
    the ids go in calls of at most ``CHUNK``, every one erased, the counters right."""
    import redis.asyncio as aredis

    import streams.worker.erase as erase_mod

    users = [f"ch{i}" for i in range(7)]

    async def fill(store: Store) -> None:
        for i, u in enumerate(users):
            assert await _write(store, u, _state(T0, at_risk=i % 2 == 0), f"t{i}") == []

    _run(redis_url, fill)
    sizes: list[int] = []
    real = aredis.Redis.eval

    def counted(self: Any, script: str, numkeys: int, *args: Any) -> Any:
        if numkeys == 7:  # erase.lua (KEYS[1..7]); ARGV[5]: the users of the call
            sizes.append(len(orjson.loads(args[numkeys + 4])))
        return real(self, script, numkeys, *args)

    monkeypatch.setattr(erase_mod, "CHUNK", 3)
    monkeypatch.setattr(aredis.Redis, "eval", counted)
    done = erase(_settings(redis_url), users)
    client = redis_lib.Redis.from_url(redis_url)
    assert (done.users, done.with_state) == (7, 7)
    assert sizes and max(sizes) == 3 and sum(sizes) == 7 * 4  # every user, in every one of the 4 buckets
    assert all(traces(client, "cw", u) == [] for u in users)
    stats = _run(redis_url, lambda s: s.stats())
    assert all(stats.get(k, 0) == 0 for k in ("users", "at_risk", "reachable", *(f"stage:{s}" for s in STAGES)))
