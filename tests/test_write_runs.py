"""lua/write_batch.lua sends a key's due and at-risk entries in runs (one variadic ZADD per key and
run of adds, flushed before any ZREM of that key, at most ``ZADD_RUN`` members a call) and cuts a
user's alert list once instead of line by line. Both must leave Redis exactly as the one-by-one
commands did: the same fields, members and scores of the records, due, at-risk and save-list
entries, and the same encodings (a zset turned into a skiplist only once it held more than
``zset-max-listpack-entries``, as one ZADD at a time does), on writes of many states to one key
with removals, deletions and a user written twice among them."""

from __future__ import annotations

import asyncio
from typing import Any

import redis as redis_lib
from hypothesis import HealthCheck, given, settings, strategies as st

from streams.settings import Settings
from streams.worker.keys import Keys, due_member, locate
from models.ranking import reach_index_score
from streams.worker.store import UNCHANGED, BucketWrite, StateWrite, Store

TOPIC = "ev"
FIELD = f"{TOPIC}:0"
LISTPACK_ENTRIES = 128  # valkey's default zset-max-listpack-entries (streams.local leaves it)

# Per state: (user index, deleted, due: 0 remove / -1 leave / > 0 set, risk and save-list bound: None
# remove / -1 leave / a score)
_score = st.one_of(st.none(), st.just(UNCHANGED), st.floats(0.0, 1.0).map(lambda x: round(x, 6)))
_state = st.tuples(st.integers(0, 299), st.booleans(),
                   st.sampled_from([0, UNCHANGED, 1, 2]).flatmap(lambda k: st.just(k) if k < 1 else st.integers(1, 10 ** 9)),
                   _score, _score)
# A user may come twice in one write (the worker sends one state a user; the script must not care)
_writes = st.lists(st.lists(_state, max_size=180), min_size=1, max_size=4)


def _apply(model: dict[str, dict[bytes, Any]], sticky: dict[str, bool], key: str, member: bytes, score: Any) -> None:
    """One ZADD or HSET (score) or ZREM or HDEL (None) as Redis applies it one at a time, a zset's encoding included."""
    z = model.setdefault(key, {})
    if score is None:
        z.pop(member, None)
    else:
        z[member] = score
    if not z:
        sticky[key] = False  # an emptied zset is deleted: the next ZADD makes a listpack again
    elif len(z) > LISTPACK_ENTRIES:
        sticky[key] = True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=_writes)
def test_runs_of_zadds_leave_the_entries_and_encodings_of_one_command_at_a_time(redis_url: str, writes: list) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    keys = Keys("cw")
    users = [f"user-{i}" for i in range(300)]
    model: dict[str, dict[bytes, Any]] = {}
    sticky: dict[str, bool] = {}
    due_key, risk_key = keys.due(0, TOPIC, 0), keys.risk(0)
    touched = {due_key, risk_key}

    async def scenario() -> None:
        store = Store(Settings(redis_url=redis_url, buckets=1, groups_per_bucket=8))
        await store.connect()
        try:
            offset = ""
            for n, states in enumerate(writes):
                ws = []
                for i, deleted, due, risk, reach in states:
                    user = users[i]
                    _, g = locate(user, 1, 8)
                    member, uid = due_member(g, user).encode(), user.encode()
                    record = f"record {n} of {user}".encode()
                    ws.append(StateWrite(g, user, None if deleted else record, FIELD, due, risk, reach))
                    users_key, save_key = keys.users(0, g), keys.reach(0, g)
                    touched.update((users_key, save_key))
                    if deleted:
                        for key, m in ((users_key, uid), (due_key, member), (risk_key, uid), (save_key, uid)):
                            _apply(model, sticky, key, m, None)
                        continue
                    _apply(model, sticky, users_key, uid, record)
                    if due != UNCHANGED:
                        _apply(model, sticky, due_key, member, float(due) if due > 0 else None)
                    if risk != UNCHANGED:
                        _apply(model, sticky, risk_key, uid, risk)
                    if reach != UNCHANGED:
                        _apply(model, sticky, save_key, uid, None if reach is None else float(reach_index_score(reach)))
                assert await store.write([BucketWrite(0, [(FIELD, offset, str(n + 1))], ws, {})], f"w:{n}") == []
                offset = str(n + 1)
        finally:
            await store.close()

    try:
        asyncio.run(scenario())
        for key in sorted(touched):
            want = model.get(key, {})
            if key.split(":")[2] == "u":
                assert client.hgetall(key) == want
                continue
            assert dict(client.zrange(key, 0, -1, withscores=True)) == want
            if want:
                assert client.object("encoding", key) == (b"skiplist" if sticky.get(key) else b"listpack")
    finally:
        client.close()


def test_an_alert_list_keeps_the_newest_entries_up_to_its_cap(redis_url: str) -> None:
    """Entries newest first, at most ``cap``: the cut after the (cap - 1)th newline keeps what
    splitting into lines kept, for every list length around the cap, and a list with an empty line
    (not written by the worker) still loses its empty lines."""
    from streams.worker.alert_log import ALERT_LOG_CAP
    from streams.worker.store import _script_source

    client = redis_lib.Redis.from_url(redis_url)
    try:
        sha = client.script_load(_script_source("write_batch"))
        client.hset("cw:{0}:off", "|inc", "inc")
        for n_old in range(ALERT_LOG_CAP + 3):
            for old in ("\n".join(f'["o{j}",{j}]' for j in range(n_old)), f'["o0"]\n\n["o1"]\n' if n_old == 1 else None):
                if old is None:
                    continue
                client.delete("cw:{0}:al:3")
                if old:
                    client.hset("cw:{0}:al:3", "u", old)
                client.hset("cw:{0}:off", "ev:0|token", "")
                client.evalsha(sha, 3, "cw:{0}:off", "cw:{0}:stats", "cw:{0}:risk", "[3,9]", "", "", "cw:{0}", f"t{n_old}",
                               "inc", '["ev:0","","",""]', "[]", "", f'[{ALERT_LOG_CAP},[3,"u","new"]]', "", '["new",1]')
                lines = [x for x in old.split("\n") if x]
                assert client.hget("cw:{0}:al:3", "u").decode() == "\n".join(['["new",1]', *lines[:ALERT_LOG_CAP - 1]])
    finally:
        client.close()
