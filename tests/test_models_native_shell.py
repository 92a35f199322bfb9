"""The worker's per-user planning, todo and counters compiled into models.step (docs/SCALING.md,
issue 14 ``shellspeed``): each against the pure Python copy and against the loop it replaced."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import _native
from models.events import Event
from models.intake import UserBatch
from models.step import bucket_todo, locate, locate_users

compiled_only = pytest.mark.skipif(_native.active() != "compiled", reason=f"the compiled core does not run here ({_native.why_pure()})")
PURE = _native.import_pure(["events", "intake", "step"])

#: user ids of any text, lone surrogates included (the layout hashes them with surrogatepass)
IDS = st.one_of(st.text(max_size=12), st.builds("{}\ud800{}".format, st.text(max_size=4), st.text(max_size=4)))


def _locate_ref(uid: str, buckets: int, groups: int) -> tuple[int, int]:
    """The layout's formula as streams.worker.keys wrote it before it became models.step.locate."""
    h = zlib.crc32(uid.encode("utf-8", "surrogatepass"))
    return h % buckets, (h // buckets) % groups


@given(IDS, st.integers(1, 1024), st.integers(1, 4096))
def test_locate_is_the_layout_formula(uid: str, buckets: int, groups: int) -> None:
    assert locate(uid, buckets, groups) == _locate_ref(uid, buckets, groups) == PURE["step"].locate(uid, buckets, groups)


@settings(max_examples=60)
@given(st.dictionaries(IDS, st.integers(0, 7), max_size=40), st.integers(1, 64), st.integers(1, 256))
def test_locate_users_is_the_per_user_loop(parts: dict[str, int], buckets: int, groups: int) -> None:
    """Buckets in order of their first user, each bucket's partitions once in order of first use,
    its users (group, id) in batch order: what plan_reads' loop built."""
    users = {uid: UserBatch(p) for uid, p in parts.items()}
    expected: dict[int, tuple[dict[int, int | None], list[tuple[int, str]]]] = {}
    for uid, ub in users.items():
        b, g = _locate_ref(uid, buckets, groups)
        got = expected.setdefault(b, ({}, []))
        got[0].setdefault(ub.partition, None)
        got[1].append((g, uid))
    assert list(locate_users(users, buckets, groups).items()) == list(expected.items())
    pure = PURE["step"].locate_users({u: PURE["intake"].UserBatch(p) for u, p in parts.items()}, buckets, groups)
    assert list(pure.items()) == list(expected.items())


def _todo_ref(located, blobs, batches, fences):  # type: ignore[no-untyped-def]
    """phases._bucket_todo's per-user loop as it was written in Python."""
    todo, skipped = {}, 0
    for (g, uid), blob in zip(located, blobs):
        ub = batches[uid]
        p = ub.partition
        events = ub.events
        if p in fences and fences[p] >= ub.offsets[0]:
            fence = fences[p]
            events = [ev for ev, off in zip(events, ub.offsets) if off > fence]
            skipped += len(ub.events) - len(events)
        todo[uid] = (g, p, blob, events)
    return todo, skipped


@pytest.mark.parametrize("seed", range(40))
def test_bucket_todo_is_the_per_user_loop(seed: int) -> None:
    """Users with and without a fence, fences below, inside and past a user's offsets, more blobs
    than users or fewer (zip's length), records or none."""
    rnd = random.Random(seed)
    batches: dict[str, UserBatch] = {}
    located, blobs = [], []
    for i in range(rnd.randint(0, 30)):
        uid, p = f"u{i}", rnd.randint(0, 3)
        first = rnd.randint(0, 50)
        offs = sorted(rnd.sample(range(first, first + 40), rnd.randint(1, 6)))
        batches[uid] = UserBatch(p, [Event(uid, 1_000 * o, "view", f"e{o}") for o in offs], offs)
        located.append((rnd.randint(0, 255), uid))
        blobs.append(None if rnd.random() < 0.3 else bytes([i]))
    blobs = blobs[:len(blobs) - rnd.randint(0, 2)] if rnd.random() < 0.3 else blobs + [b"x"] * rnd.randint(0, 2)
    fences = {p: rnd.randint(-1, 80) for p in range(4) if rnd.random() < 0.6}
    todo: dict = {}
    skipped = bucket_todo(located, blobs, batches, fences, todo)
    assert (todo, skipped) == _todo_ref(located, blobs, batches, fences)
    assert list(todo) == list(_todo_ref(located, blobs, batches, fences)[0])


@compiled_only
def test_these_run_compiled() -> None:
    import models.step as step

    assert not step.__file__.endswith(".py") and PURE["step"].__file__.endswith("step.py")


# --- the state write's packing (docs/SCALING.md, issue 14 ``packcost``) ------------------------------

def _reach_ref(bound):  # type: ignore[no-untyped-def]
    """streams.worker.store.reach_score as it was written before models.ranking.reach_index_score."""
    if bound is None:
        return ""
    if bound == -1:
        return "="
    return int((bound + 1e-9) * 1_000_000) + 1


def _state_args_ref(states, unchanged):  # type: ignore[no-untyped-def]
    """Store._write_calls' per-state loop as it was written in Python."""
    flat, records = [], []
    for s in states:
        risk, reach = s.risk, s.reach
        flat.extend((s.group, s.user_id, s.due_field, s.due_s, "" if risk is None else "=" if risk == unchanged else risk,
                     _reach_ref(reach)))
        records.append(b"" if s.blob is None else s.blob)
    return flat, records


#: scores as the step gives them (floats, the UNCHANGED mark as -1.0 or -1, None) and edge values
SCORES = st.one_of(st.none(), st.just(-1), st.just(-1.0), st.floats(0.0, 1.0), st.floats(-2.0, 2.0, allow_nan=False),
                   st.sampled_from([0.0, -0.0, 1.0, 0.999999, 0.9999995, 1e-9, 5e-324, 0.25]), st.integers(0, 3))
#: (user ids as the worker writes them: orjson, like the write's JSON, refuses a lone surrogate)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
STATES = st.lists(st.tuples(st.integers(0, 4096), TEXT, st.one_of(st.none(), st.binary(max_size=40)), TEXT,
                            st.integers(-1, 2 ** 40), SCORES, SCORES, st.floats(0.0, 1.0)), max_size=30)


@settings(max_examples=200)
@given(STATES)
def test_state_args_is_the_write_calls_loop(rows) -> None:  # type: ignore[no-untyped-def]
    """The six values a state and its record, value, type and order as the Python loop made them
    (compiled and pure), so the states' JSON and the records sent are the same bytes."""
    import orjson

    from streams.worker.store import UNCHANGED, StateWrite, reach_score

    states = [StateWrite(*row) for row in rows]
    want = _state_args_ref(states, UNCHANGED)
    for fn in (PURE["step"].state_args, __import__("models.step", fromlist=["state_args"]).state_args):
        flat, records = fn(states, UNCHANGED)
        assert [(type(x), x) for x in flat] == [(type(x), x) for x in want[0]]
        assert orjson.dumps(flat) == orjson.dumps(want[0]) and records == want[1]
    assert [reach_score(s.reach) for s in states] == [_reach_ref(s.reach) for s in states]


def test_state_write_is_the_store_dataclass_it_replaced() -> None:
    """The compiled ``models.step.StateWrite`` (the store's since ``stepcost3``) as the store's
    Python dataclass was, compiled and pure: positional fields and defaults, equality and repr by
    field, the UNCHANGED mark kept as given (-1 stays an int, -1.0 a float: the JSON sent is the
    same), and a pickle round trip (``__reduce__``: a compiled object is rebuilt from its fields)."""
    import pickle

    from streams.worker.store import StateWrite

    assert StateWrite is __import__("models.step", fromlist=["StateWrite"]).StateWrite
    for cls in (StateWrite, PURE["step"].StateWrite):
        a = cls(3, "u", b"r", "ev:0", 90, -1)
        assert (a.reach, a.alert_risk, type(a.risk)) == (None, 0.0, int)
        assert a == cls(3, "u", b"r", "ev:0", 90, -1, None, 0.0) and a != cls(3, "u", None, "ev:0", 90, -1)
        assert repr(a) == ("StateWrite(group=3, user_id='u', blob=b'r', due_field='ev:0', due_s=90, risk=-1, reach=None, "
                           "alert_risk=0.0)")
        b = cls(1, "v", None, "ev:1", 0, 0.25, -1.0, 0.5)
        assert (b.risk, b.reach, b.alert_risk, type(b.reach)) == (0.25, -1.0, 0.5, float)
    c = StateWrite(7, "w", b"x", "ev:2", 2 ** 40, None, 0.75, 0.125)
    assert pickle.loads(pickle.dumps(c)) == c


@settings(max_examples=200)
@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(-1, 60), st.sampled_from(["ev:0", "ev:1", "ev:2"]))),
                max_size=40),
       st.dictionaries(st.sampled_from(["ev:0", "ev:1", "ev:3"]), st.integers(0, 60)))
def test_split_dues_and_writes_by_user_are_the_overlay_loops(rows, bounds) -> None:  # type: ignore[no-untyped-def]
    """streams.worker.pending's per-write loops, compiled and pure: the writes leaving a due entry
    (> 0) on a swept index, split at its bound as the merge of each index took them before (those
    within it in order, the lowest second after it), and a write's states by user."""
    from streams.worker.store import UNCHANGED, StateWrite

    writes = [None if r is None else StateWrite(i, f"u{i}", b"r", r[1], UNCHANGED if r[0] < 0 else r[0], None)
              for i, r in enumerate(rows)]
    live = [w for w in writes if w is not None and w.due_s > 0 and w.due_field in bounds]
    want_within = {f: [w for w in live if w.due_field == f and w.due_s <= b] for f, b in bounds.items()}
    want_above = {f: min(later) for f, b in bounds.items() if (later := [w.due_s for w in live if w.due_field == f and w.due_s > b])}
    for mod in (PURE["step"], __import__("models.step", fromlist=["split_dues"])):
        within, above = mod.split_dues(writes, bounds)
        assert within == {f: ws for f, ws in want_within.items() if ws} and above == want_above
        states = [w for w in writes if w is not None]
        assert mod.writes_by_user(states) == {w.user_id: w for w in states}


def _moved_ref(writes, swept, unchanged):  # type: ignore[no-untyped-def]
    """streams.worker.pending.moved_dues' loop as it was written in Python."""
    out = []
    for sw in writes:
        if sw is not None and sw.due_s != unchanged:
            part = swept.get(sw.due_field)
            if part is not None:
                out += (part, f"{sw.group}:{sw.user_id}")
    return out


def _lay_ref(users, blobs, layers):  # type: ignore[no-untyped-def]
    """streams.worker.pending._lay's loop over the users read, as it was written in Python."""
    for j, (_, uid) in enumerate(users):
        for layer in layers:
            sw = layer.get(uid)
            if sw is not None:
                blobs[j] = sw.blob
                break


@settings(max_examples=200)
@given(st.lists(st.one_of(st.none(), st.tuples(st.integers(-1, 60), st.sampled_from(["ev:0", "ev:1", "ev:2"]), IDS,
                                                  st.one_of(st.none(), st.binary(max_size=8)))), max_size=40),
       st.dictionaries(st.sampled_from(["ev:0", "ev:1", "ev:3"]), st.integers(1, 3)), st.lists(IDS, max_size=20),
       st.integers(1, 3))
def test_moved_members_and_lay_blobs_are_the_overlay_loops(rows, swept, read, layers) -> None:  # type: ignore[no-untyped-def]
    """streams.worker.pending's per-write skip list and per-user records laid over a read (docs/
    SCALING.md, ``overlap``), compiled and pure, against the Python loops they replaced: the due
    members (of any user id) of the writes that move an entry on a swept index, in the writes'
    order, and each user's record from the newest layer writing it (None: a deletion)."""
    from streams.worker.store import UNCHANGED, StateWrite

    writes = [None if r is None else StateWrite(i, r[2], r[3], r[1], UNCHANGED if r[0] < 0 else r[0], None)
              for i, r in enumerate(rows)]
    stack = [{w.user_id: w for w in writes[k::layers] if w is not None} for k in range(layers)]
    users = [(7, uid) for uid in read + [w.user_id for w in writes[::3] if w is not None]]
    want = [b"read"] * len(users)
    _lay_ref(users, want, stack)
    for mod in (PURE["step"], __import__("models.step", fromlist=["moved_members"])):
        assert mod.moved_members(writes, swept, UNCHANGED) == _moved_ref(writes, swept, UNCHANGED)
        assert mod.moved_members(stack[0].values(), swept, UNCHANGED) == _moved_ref(stack[0].values(), swept, UNCHANGED)
        got = [b"read"] * len(users)
        mod.lay_blobs(users, got, stack)
        assert got == want
        assert mod.due_member(12, "a:b") == "12:a:b"


def _frame_ref(group):  # type: ignore[no-untyped-def]
    """store._driver_call's packed path as it was written in Python."""
    import orjson

    from streams.worker.store import _as_bytes

    shape = orjson.dumps([n for c in group for n in (len(c.keys), len(c.args))])
    items = [x if type(x) is bytes else _as_bytes(x) for c in group for x in (*c.keys, *c.args)]
    return [], [shape, orjson.dumps([len(x) for x in items]), b"".join(items)]


ITEMS = st.lists(st.one_of(st.binary(max_size=20), st.text(max_size=8), st.integers(-2 ** 70, 2 ** 70),
                           st.floats(allow_nan=False)), max_size=12)


@settings(max_examples=200)
@given(st.lists(st.tuples(ITEMS, ITEMS, st.integers(1, 300)), max_size=8))
def test_packed_driver_call_is_the_python_framing(calls) -> None:  # type: ignore[no-untyped-def]
    """A packed driver call's three arguments, byte for byte (str as UTF-8, numbers as redis-py
    writes them, bytes as they are), and a value that cannot be sent still raises TypeError."""
    from streams.worker.store import _BucketCall, _driver_call

    group = [_BucketCall(list(k), list(a), n) for k, a, n in calls]
    assert _driver_call(group, True) == _frame_ref(group)
    with pytest.raises(TypeError):
        _driver_call([_BucketCall(["k"], [None], 1)], True)


# --- the bucket's per-user loop around the step (docs/SCALING.md, issue 14 ``rh``) -------------------

def _advance_bucket_ref(todo, bucket, clocks, fields, member_of, model, write, out, result, history,  # type: ignore[no-untyped-def]
                        alerts_from_ms, members_apart):
    """phases._advance_bucket's per-user loop as it was written in Python (before models.step.advance_bucket)."""
    import orjson

    from models.engine import review_due_s
    from models.step import advance_stored, count_delta, queue_alerts, unstored_scores
    from streams.worker.alert_log import KINDS_LOGGED, STAGES_LOGGED
    from streams.worker.phases import _off_path, _queue_apart
    from streams.worker.store import UNCHANGED, StateWrite, day_name
    from streams.worker.watermark import PERIOD_MS

    users = processed = 0
    try:
        for uid, item in todo.items():
            group, partition, blob, events = item
            marks = None
            if member_of and events and uid in member_of:
                marks = []
                out.members.append((uid, marks, events))
            until = clocks[partition]
            old, st, record, due_s, risk, reach, alert_risk, points, alerts, expire, skip, error = advance_stored(
                uid, blob, events, until or 0, until is not None, model, history, UNCHANGED,
                PERIOD_MS if marks is not None else 0, marks)
            if (st is None or error) and _off_path(uid, item, bucket, fields[partition], st, expire, skip, error, write,
                                                   result):
                continue
            if st is not None:
                if blob is None:
                    risk, reach = unstored_scores(risk, reach, UNCHANGED)
                write.states.append(StateWrite(group, uid, record, fields[partition], due_s, risk, reach, alert_risk))
                if points:
                    write.history.extend([(group, uid, point) for point in points])
                due = review_due_s(st)
                if due:
                    out.lowered.append((partition, bucket, due))
            users += 1
            processed += len(events)
            count_delta(old, st, alerts, write.stats, day_name)
            if alerts and members_apart and any(a.member for a in alerts):
                _queue_apart(uid, group, alerts, expire, partition, alerts_from_ms, write, out, result)
            elif alerts:
                queue_alerts(uid, group, alerts, expire, partition, alerts_from_ms, KINDS_LOGGED, STAGES_LOGGED,
                             write.alerts, out.alerts, result.alerts, result.withheld, orjson.dumps)
    finally:
        result.users += users
        result.processed += processed


def _bucket_round(rnd: random.Random, stored: dict[str, bytes], t0_ms: int, clock_ms: int | None):  # type: ignore[no-untyped-def]
    """A bucket's todo: stored users with new events or only a due review, new users, users whose
    record is empty or unreadable, on two partitions (one without a clock in some rounds)."""
    todo = {}
    for i in range(rnd.randint(5, 40)):
        uid, p = f"u{i}", rnd.randint(0, 1)
        blob = stored.get(uid)
        roll = rnd.random()
        if roll < 0.1:
            blob = rnd.choice([b"", b"\x09damaged"])
        n = 0 if (blob is not None and roll > 0.8) else rnd.randint(1, 4)
        evs = sorted((t0_ms + rnd.randint(0, 20 * 3_600_000), rnd.choice(["view", "click", "purchase", "message"]))
                     for _ in range(n))
        todo[uid] = (rnd.randint(0, 7), p, blob, [Event(uid, ts, kind, f"e{i}-{k}-{ts}") for k, (ts, kind) in enumerate(evs)])
    clocks = {0: clock_ms, 1: clock_ms if rnd.random() < 0.7 else None}
    return todo, clocks


@pytest.mark.parametrize("seed", range(12))
def test_advance_bucket_is_the_per_user_loop(seed: int) -> None:
    """Three rounds a day and more apart (new users, then reviews that open alerts, stored users
    with and without events, empty and unreadable records, a partition without a clock, account
    members, alerts withheld by ``alerts_from_ms``, members' alerts kept apart in odd seeds): the
    compiled loop queues what the Python loop queued, in the same order, and counts the same
    (the bucket counters' keys in the same order too: the repr compares them)."""
    from models.model import load_model
    from streams.worker.phases import Advanced, CycleResult, _advance_bucket
    from streams.worker.store import BucketWrite

    rnd = random.Random(seed)
    model = load_model(None)
    stored: dict[str, bytes] = {}
    t0 = 1_767_225_600_000
    for r in range(3):
        todo, clocks = _bucket_round(rnd, stored, t0 + r * 30 * 3_600_000, t0 + r * 30 * 3_600_000 + 21 * 3_600_000)
        member_of = {u: ("acct", 0, 1) for u in todo if rnd.random() < 0.2}
        fields = {0: "t:0", 1: "t:1"}
        alerts_from = t0 + rnd.randint(0, 3) * 30 * 3_600_000
        got, want = [], []
        for fn, sink in ((_advance_bucket, got), (_advance_bucket_ref, want)):
            write, out, result = BucketWrite(5, []), Advanced(), CycleResult()
            fn(todo, 5, clocks, fields, member_of, model, write, out, result, True, alerts_from, seed % 2 == 1)
            sink.append((write, [(u, [(t, s.to_bytes(), a) for t, s, a in m], e) for u, m, e in out.members],
                         out.lowered, out.alerts, result))
            out.members = []
        assert repr(got) == repr(want)
        for sw in got[0][0].states:
            if sw.blob:
                stored[sw.user_id] = sw.blob
    assert stored


# --- the bucket counters held back per bucket (docs/SCALING.md, issue 14 ``cut4``) ------------------

def _tally_ops(rnd: random.Random) -> list[tuple]:  # type: ignore[type-arg]
    """A bucket's counter changes as count_delta makes them: stage counts (an index out of range
    too), users, at_risk, reachable, first-seen days (runs of one day, then another, then back),
    and, right after a flush as advance_bucket calls the shell back, the shell's own changes (a key
    added, an int key turned float)."""
    from models.step import _FIXED_KEYS

    ops: list[tuple] = []  # type: ignore[type-arg]
    day = 20_454
    for _ in range(rnd.randint(0, 60)):
        roll = rnd.random()
        if roll < 0.45:
            ops.append(("add", rnd.randrange(len(_FIXED_KEYS)), rnd.choice([-1, 1, 2])))
        elif roll < 0.55:
            ops.append(("stage", rnd.choice([0, 1, 2, 3, 4, 5, -1, -6]), rnd.choice([-1, 1])))
        elif roll < 0.8:
            day = day if rnd.random() < 0.7 else day + rnd.choice([-1, 1])
            ops.append(("new", day))
        elif roll < 0.9:
            ops.append(("flush",))
        else:
            ops.append(("shell", rnd.choice(["users", "stage:new", "churned:20260101", "new:19700101"]),
                        rnd.choice([1, -1, 0.5])))
    return ops


@pytest.mark.parametrize("seed", range(200))
@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_tally_is_each_change_added_at_once(seed: int, impl: str) -> None:
    """After its flush, a Tally leaves ``out`` as ``out[k] = out.get(k, 0) + n`` per change left
    it: the same keys in the same order (the store packs them in it), the same values and types,
    from an empty ``out`` or one that holds ints and floats already."""
    from models import step as compiled_step

    mod = compiled_step if impl == "compiled" else PURE["step"]
    from streams.worker.store import day_name

    rnd = random.Random(seed)
    start = rnd.choice([{}, {"users": 3, "stage:active": 1.0, "new:20260101": 2}, {"at_risk": 0.5, "reachable": 0}])
    ops = _tally_ops(rnd)
    want, got = dict(start), dict(start)
    tally = mod.Tally(got)
    keys = mod._FIXED_KEYS
    for op in ops:
        if op[0] == "add":
            want[keys[op[1]]] = want.get(keys[op[1]], 0) + op[2]
            tally.add(op[1], op[2])
        elif op[0] == "stage":
            want[mod.STAGE_KEYS[op[1]]] = want.get(mod.STAGE_KEYS[op[1]], 0) + op[2]
            tally.add_stage(op[1], op[2])
        elif op[0] == "new":
            k = "new:" + day_name(op[1])
            want[k] = want.get(k, 0) + 1
            tally.add_new(op[1], day_name)
        elif op[0] == "flush":
            tally.flush()
        else:
            tally.flush()  # (advance_bucket flushes before it calls the shell)
            for d in (want, got):
                d[op[1]] = d.get(op[1], 0) + op[2]
    tally.flush()
    assert [(k, v, type(v)) for k, v in got.items()] == [(k, v, type(v)) for k, v in want.items()]
    with pytest.raises(IndexError):
        tally.add_stage(len(mod.STAGE_KEYS), 1)  # as STAGE_KEYS[stage] raised
