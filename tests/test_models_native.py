"""The compiled scoring core (mypyc, models/_native.py) computes exactly what the pure Python does.

On random histories, batch splits, models and times, the compiled modules this process runs and
fresh pure-Python copies of the same files (``import_pure``) must give the same state bytes, the
same alerts (ids, kinds, times, every score bit for bit) and the same scores. Also: the switch
(``CHURNWATCH_PURE=1``), the stale-build guard, and the doctests of the compiled files (pytest
cannot collect those where the extension module shadows the file: conftest.py).
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib.machinery
import importlib.util
import json
import math
import os
import shutil
import struct
import subprocess
import sys
from array import array
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models.engine as engine_module
import models.state as state_module
from models import _native
from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.ranking import save_bound, save_bound_after
from models.scoring import risk_at, score
from models.state import DAY_S, UserState, f32
from models.vocabulary import DEFAULT_ROLES
from streams.worker.store import day_name
from tests.test_models_properties import MODEL, histories

PURE = _native.import_pure(["engine", "events", "model", "ranking", "scoring", "state", "step", "weekly"])
TRACKED = ChurnModel(tracked_types=("view", "click", "message", "other"), risk_weights={"inactive:view": 0.4, "share:click": -0.3})
#: A tracked type that is also negative feedback (its slot and the role's counter), and a role of two names.
NEGATIVE_TRACKED = ChurnModel(tracked_types=("view", "dislike"), roles={**DEFAULT_ROLES, "negative": ["unfriend", "dislike"]})
MODELS = [ChurnModel(), MODEL, TRACKED, NEGATIVE_TRACKED]

compiled_only = pytest.mark.skipif(_native.active() != "compiled", reason=f"the compiled core does not run here ({_native.why_pure()})")


def _pure_model(model: ChurnModel) -> Any:
    """The same model built from the pure modules' own classes."""
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.init}
    return PURE["model"].ChurnModel(**fields)


def _pure_events(events: list[Event]) -> list[Any]:
    cls = PURE["events"].Event
    return [cls(e.user_id, e.ts_ms, e.type, e.event_id, e.amount, e.account_id, e.subscription) for e in events]


def _alerts(outcome: Any) -> list[tuple[object, ...]]:
    """Everything an alert carries, floats as they are (== on floats: bit for bit but for -0.0)."""
    out = []
    for a in outcome.alerts:
        s = a.scores
        out.append((a.alert_id, a.kind, a.user_id, a.event_time_ms, a.previous_stage, a.member, s.health.hex(),
                    s.temperature.hex(), s.risk.hex(), s.stage, s.segment, s.action, s.reasons))
    return out


def _review(a: Any) -> tuple[object, ...] | None:
    """The last review's assessment (models.engine.Outcome.review), floats bit for bit."""
    if a is None:
        return None
    return (a.stage, a.risk.hex(), a.p_stay.hex(), a.stay_source, a.leave.hex(), [v.hex() for v in a.features])


def _scores(s: Any) -> tuple[object, ...]:
    return (s.health.hex(), s.temperature.hex(), s.risk.hex(), s.stage, s.segment, s.action, s.reasons)


@compiled_only
@settings(max_examples=60)
@given(st.one_of(histories(), histories(renewals=True)), st.data(), st.sampled_from(range(len(MODELS))))
def test_compiled_core_equals_the_pure_python(events: list[Event], data: st.DataObject, which: int) -> None:
    model = MODELS[which]
    pmodel, pevents = _pure_model(model), _pure_events(events)
    cut = data.draw(st.integers(0, len(events)), label="batch split")
    extra_ms = data.draw(st.integers(0, 90 * DAY_S * 1000), label="reviews after the last event")
    cut_ms = events[cut - 1].ts_ms + 1 if cut else events[0].ts_ms
    end_ms = events[-1].ts_ms + 1 + extra_ms
    pure_advance = PURE["engine"].advance
    c1, p1 = advance("u", None, events[:cut], cut_ms, model), pure_advance("u", None, pevents[:cut], cut_ms, pmodel)
    assert c1.state.to_bytes() == p1.state.to_bytes()
    c2 = advance("u", c1.state, events[cut:], end_ms, model)
    p2 = pure_advance("u", PURE["state"].UserState.from_bytes(p1.state.to_bytes()), pevents[cut:], end_ms, pmodel)
    assert c2.state.to_bytes() == p2.state.to_bytes()
    assert _alerts(c1) + _alerts(c2) == _alerts(p1) + _alerts(p2)
    assert [a.to_dict() for a in c2.alerts] == [a.to_dict() for a in p2.alerts]
    assert c2.expire == p2.expire
    assert _review(c2.review) == _review(p2.review)  # what the worker's save-list index bound reads
    now_s = end_ms // 1000 + data.draw(st.integers(0, 60 * DAY_S), label="scored later")
    assert _scores(score(c2.state, now_s, model)) == _scores(PURE["scoring"].score(p2.state, now_s, pmodel))
    assert risk_at(c2.state, now_s, model).hex() == PURE["scoring"].risk_at(p2.state, now_s, pmodel).hex()
    # the worker's save-list index (models.ranking, compiled too)
    assert save_bound(c2.state, model).hex() == PURE["ranking"].save_bound(p2.state, pmodel).hex()
    if c2.review is not None:
        bound = save_bound_after(c2.review, c2.state, model)
        assert bound.hex() == PURE["ranking"].save_bound_after(p2.review, p2.state, pmodel).hex()


@compiled_only
def test_the_pure_copies_are_python_and_the_rest_compiled() -> None:
    import models.engine

    assert PURE["engine"].__file__.endswith("engine.py") and not models.engine.__file__.endswith(".py")
    assert PURE["state"].UserState is not UserState  # their own classes: nothing compiled leaks in


@compiled_only
def test_doctests_of_the_compiled_files_pass_on_their_pure_python() -> None:
    """In a process of pure Python (``CHURNWATCH_PURE=1``), where pytest collects them as any
    file's. In this process doctest ran none: it takes a function as a module's own only when
    ``inspect.getmodule`` finds that module, and the compiled one stands in ``sys.modules`` (a copy
    put there instead met the compiled modules its examples import: "UserState object expected;
    got UserState"). So until 2026-12-05 a wrong example in models/ranking.py passed here."""
    root = Path(_native.__file__).resolve().parent
    files = [str(root / f"{name}.py") for name in _native.COMPILED_MODULES]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", *files],
                         cwd=root.parent, env={**os.environ, "CHURNWATCH_PURE": "1"}, capture_output=True, text=True,
                         check=False)
    with_examples = sum(">>> " in Path(f).read_text() for f in files)
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-4000:] + run.stderr[-2000:]
    assert int(run.stdout.rsplit(" passed", 1)[0].split()[-1]) >= with_examples


def test_no_compiled_class_is_built_with_unpacked_arguments() -> None:
    """A compiled module builds its compiled classes with plain arguments: with a starred one
    (``Signals(..., *ends)``) or ``**``, mypyc makes a list and a tuple and calls the class
    generically, its ``__init__`` parsing every boxed argument (~5.5k instructions a
    ``compute_signals``, a fifth of a review-heavy step: docs/SCALING.md, ``reviewheavy``)."""
    import ast

    root = Path(_native.__file__).resolve().parent
    trees = {name: ast.parse((root / f"{name}.py").read_text()) for name in _native.COMPILED_MODULES}
    classes = {node.name for tree in trees.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = [f"{name}.py:{node.lineno}" for name, tree in trees.items() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes
             and (any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords))]
    assert classes and not found


def test_churnwatch_pure_runs_the_python_files() -> None:
    code = "import models._native as n, models.engine as e, models.state as s; print(n.active(), e.__file__, s.__file__)"
    env = {**os.environ, _native.PURE_ENV: "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "pure" and out[1].endswith("engine.py") and out[2].endswith("state.py")


def test_a_missing_or_stale_build_runs_the_pure_python(tmp_path: Path) -> None:
    """Never stale compiled code: an edited .py (another source than the build's) runs as Python."""
    for m in _native.COMPILED_MODULES:
        shutil.copy(Path(_native.__file__).with_name(f"{m}.py"), tmp_path / f"{m}.py")
    assert (_native.why_pure(tmp_path, {}) or "").startswith("not built")
    for m in _native.COMPILED_MODULES:
        (tmp_path / f"{m}{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    # every shim loads mypyc's shared library: without it, import would fail, not fall back
    assert (_native.why_pure(tmp_path, {}) or "") == "not built (_native_core__mypyc missing)"
    (tmp_path / f"_native_core__mypyc{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    assert "build record" in (_native.why_pure(tmp_path, {}) or "")
    (tmp_path / _native.SOURCES_FILE).write_text(json.dumps(_native.source_digests(tmp_path)))
    assert _native.why_pure(tmp_path, {}) is None
    assert _native.why_pure(tmp_path, {_native.PURE_ENV: "1"}) == f"{_native.PURE_ENV}=1"
    with open(tmp_path / "risk.py", "a") as f:
        f.write("\n# edited\n")
    assert (_native.why_pure(tmp_path, {}) or "").startswith("stale: risk.py")


def test_outcomes_pickle_both_ways() -> None:
    """``backtest --jobs`` sends alerts (scores, signals) between processes: compiled classes too."""
    import pickle

    events = [Event("u", 1_767_225_600_000 + i * DAY_S * 1000, "purchase", f"e{i}", 3.0) for i in range(30)]
    out = advance("u", None, events, events[-1].ts_ms + 90 * DAY_S * 1000, MODEL)
    back = pickle.loads(pickle.dumps(out))
    assert back.state.to_bytes() == out.state.to_bytes() and back.alerts == out.alerts and out.alerts
    assert pickle.loads(pickle.dumps(events)) == events


@compiled_only
@settings(max_examples=60)
@given(st.one_of(histories(), histories(renewals=True)), st.integers(0, 60 * DAY_S))
def test_compiled_score_history_sampling_equals_the_pure_python(events: list[Event], extra_s: int) -> None:
    """models.weekly (the worker's weekly points, compiled): outcome and points as the pure Python's."""
    import models.weekly as weekly

    pure = PURE["weekly"]
    assert pure.__file__.endswith("weekly.py") and not weekly.__file__.endswith(".py")
    until_ms = events[-1].ts_ms + 1 + extra_s * 1000
    out, points = weekly.advance_sampled("u", None, events, until_ms, MODEL)
    pout, ppoints = pure.advance_sampled("u", None, _pure_events(events), until_ms, _pure_model(MODEL))
    assert points == ppoints
    assert out.state.to_bytes() == pout.state.to_bytes()
    assert [a.to_dict() for a in out.alerts] == [a.to_dict() for a in pout.alerts]
    for x in (-0.5, 0.5, 1.5, 2.5, 99.5, 100.5, 37.49999, 200.5):  # round half to even, clamped
        assert weekly.encode_point(3000, x, x, x / 200) == pure.encode_point(3000, x, x, x / 200)


@compiled_only
@settings(max_examples=40)
@given(st.one_of(histories(), histories(renewals=True)), st.data())
def test_compiled_worker_step_equals_the_pure_python(events: list[Event], data: st.DataObject) -> None:
    """models.step (the worker's per-user turn, compiled): record, due entry, index scores, points
    and alerts as the pure Python's, from a stored record and from none, with and without history."""
    import models.step as step

    pure = PURE["step"]
    assert pure.__file__.endswith("step.py") and not step.__file__.endswith(".py")
    pmodel = _pure_model(MODEL)
    cut = data.draw(st.integers(0, len(events)), label="batch split")
    history = data.draw(st.booleans(), label="history")
    until_ms = events[-1].ts_ms + 1 + data.draw(st.integers(0, 400 * DAY_S), label="clock after the last event (past retention: expiry)") * 1000
    first = advance("u", None, events[:cut], events[cut - 1].ts_ms + 1 if cut else 0, MODEL) if cut else None
    blob = first.state.to_bytes() if first is not None else None
    if data.draw(st.booleans(), label="unreadable record"):
        blob = b"\xffnot a record"
    for has_until in (True, False):
        c = step.advance_stored("u", blob, events[cut:], until_ms, has_until, MODEL, history, -1)
        p = pure.advance_stored("u", blob, _pure_events(events[cut:]), until_ms, has_until, pmodel, history, -1)
        assert c[2:4] + c[7:8] + c[9:] == p[2:4] + p[7:8] + p[9:]  # record, due, points, expire, skip, error
        assert [None if x is None else x.hex() for x in c[4:7]] == [None if x is None else x.hex() for x in p[4:7]]
        assert [a.to_dict() for a in c[8]] == [a.to_dict() for a in p[8]]
        assert (c[1] is None) == (p[1] is None) and (c[0] is None) == (p[0] is None)
        counted, pure_counted = {}, {}  # the bucket counters the worker adds for the step (store.stats_delta)
        step.count_delta(c[0], c[1], c[8], counted, day_name)
        pure.count_delta(p[0], p[1], p[8], pure_counted, day_name)
        assert [(k, type(v), v) for k, v in counted.items()] == [(k, type(v), v) for k, v in pure_counted.items()]


_F32_EDGES = [0.0, -0.0, 0.1, 1e300, -1e300, 3.4028235e38, 3.4028236e38, 1e-46, 7e-46, 1e-45, 1.2e-38, float("inf")]


@given(st.floats(allow_nan=False, width=64))
@settings(max_examples=300, deadline=None)
def test_f32_rounds_as_an_array_f_item_stores(x: float) -> None:
    """models.state.f32 (a float32 memoryview, compiled and pure) puts a double on the very grid
    the records store it on: an ``array('f')`` item's, bytes for bytes (sign of zero, overflow to
    inf, subnormals)."""
    for v in (x, *_F32_EDGES):
        grid = array("f", [v]).tobytes()
        assert struct.pack("<f", f32(v)) == grid
        assert struct.pack("<f", PURE["state"].f32(v)) == grid


#: The fast paths' functions, pure (where librt, which the record's run on, is installed) and
#: (where it runs) compiled: each is called directly.
_STATE = ([PURE["state"]] if importlib.util.find_spec("librt") else []) + ([state_module] if _native.active() == "compiled" else [])


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A format-4, 5, 6, 7 or 8 record with any bits in its fields (NaN and inf floats, subnormals,
    -0.0, uint32s up to 2 ** 32 - 1; any flags byte in formats 7 and 8, whose slot count is the
    length's) and 0-16 slots: what the head's fast read must read as the struct does."""
    version = draw(st.sampled_from([4, 5, 6, 7, 8]))
    n = draw(st.integers(0, 16))
    rest = {4: 90, 5: 92, 6: 93, 7: 90, 8: 92}[version]
    third = draw(st.integers(0, 255)) if version >= 7 else n
    stage = draw(st.integers(0, 5)) | (draw(st.sampled_from([0, 0x40, 0x80, 0xC0])) if version >= 7 else 0)  # the trial bits (QA23a)
    head = bytes([version, stage, third]) + draw(st.binary(min_size=rest, max_size=rest))
    floats = draw(st.lists(st.one_of(st.floats(width=32), st.floats(width=32, allow_nan=False).map(abs)), min_size=3, max_size=3))
    head = head[:59] + struct.pack("<3f", *floats) + head[71:]  # the counters as float32s too, not only random bits
    return head + draw(st.binary(min_size=8 * n, max_size=8 * n))


def _fields(state: Any) -> list[object]:
    """Every field, floats by their bits (NaN payloads and -0.0 included), arrays by their bytes."""
    out: list[object] = []
    for f in dataclasses.fields(state):
        v = getattr(state, f.name)
        out.append(struct.pack("<d", v) if isinstance(v, float) else v.tobytes() if isinstance(v, array) else (type(v), v))
    return out


@settings(max_examples=150, deadline=None)
@given(records())
def test_the_fast_record_read_reads_what_the_struct_reads(raw: bytes) -> None:
    """models.state's compiled read of a record's head (librt's fixed-width reads, ``_read_head``)
    gives the very state the struct unpack of the pure Python gives, bits for bits, on any record
    (compiled and pure copies of the fast read both)."""
    reference = PURE["state"].UserState.from_bytes(raw)  # the pure Python: the struct
    assert not PURE["state"]._COMPILED
    size = {4: 93, 5: 95, 6: 96, 7: 93, 8: 95}[raw[0]]
    for module in _STATE:
        fast = module._read_head(raw, raw[0], size)
        assert _fields(fast) == _fields(reference)
    assert _fields(UserState.from_bytes(raw)) == _fields(reference)  # whichever read this process runs


_U32_FIELDS = ("first_seen_s", "last_seen_s", "first_purchase_s", "last_purchase_s", "cancelled_s", "stage_since_s",
               "at_risk_since_s", "next_review_s", "last_review_s", "quiet_until_s", "slots_at_s", "n_events",
               "active_days", "n_purchases")
_F32_FIELDS = ("act_7d", "act_28d", "act_90d", "gap_ewma_days", "alert_risk", "negative_28d")
#: Doubles at the edges of what a float32 field holds: struct refuses to pack a finite double whose
#: cast overflows (from FLT_MAX + half its unit up), stores inf and NaN (payloads too), rounds the rest.
_F32_EDGE_DOUBLES = [0.0, -0.0, 3.4028234663852886e38, state_module._F32_OVERFLOW,
                     math.nextafter(state_module._F32_OVERFLOW, 0.0), -state_module._F32_OVERFLOW, 1e39, float("inf"),
                     float("-inf"), float("nan"), struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf0\x7f")[0],
                     1e-46, 7e-46, 5e-324, 0.1]


@st.composite
def any_states(draw: st.DrawFn) -> dict[str, Any]:
    """A UserState's fields with any values their struct codes hold: uint32s over their whole
    range (epoch seconds past 2038 included), doubles on and off the float32 grid (NaN, inf,
    -0.0, subnormals; now and then one whose float32 cast overflows, which the struct refuses),
    0-16 slots, a known or unknown end of the paid period, flags or none."""
    u32 = st.one_of(st.integers(0, 2 ** 32 - 1), st.sampled_from([0, 255, 256, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]))
    u16 = st.one_of(st.integers(0, 0xFFFF), st.sampled_from([0, 0x7FFF, 0x8000, 0xFFFF]))
    f = st.one_of(st.floats(width=32), st.floats(-1e30, 1e30), st.floats(width=32).map(lambda x: x * (1 + 2 ** -30)),
                  st.sampled_from(_F32_EDGE_DOUBLES))
    n = draw(st.integers(0, 16))
    kw: dict[str, Any] = {name: draw(u32, label=name) for name in _U32_FIELDS}
    kw |= {name: draw(f, label=name) for name in _F32_FIELDS}
    kw["revenue"] = draw(st.one_of(st.floats(), st.sampled_from(_F32_EDGE_DOUBLES)))
    kw["stage"] = draw(st.integers(0, 5))
    kw["negative_names"] = draw(u16, label="negative_names")
    kw["period_end_day"] = draw(st.one_of(st.just(0), u16), label="period_end_day")
    kw["flags"] = draw(st.one_of(st.just(0), st.integers(0, 1023)), label="flags")  # with the trial bits (byte 1's top two)
    kw["slot_7d"] = array("f", draw(st.lists(st.floats(width=32), min_size=n, max_size=n)))
    kw["slot_28d"] = array("f", draw(st.lists(st.floats(width=32), min_size=n, max_size=n)))
    return kw


def _written(cls: Any, kw: dict[str, Any]) -> tuple[str, object]:
    """``cls(**kw).to_bytes()``, or the exception it raises (its type and words)."""
    try:
        return "bytes", cls(**kw).to_bytes()
    except (struct.error, OverflowError) as exc:
        return type(exc).__name__, str(exc)


def _read_back(cls: Any, raw: bytes) -> object:
    """The fields of ``cls.from_bytes(raw)``, or its error's words (a stage past the last)."""
    try:
        return _fields(cls.from_bytes(raw))
    except ValueError as exc:
        return str(exc)


def _check_write(kw: dict[str, Any]) -> None:
    """The state of fields ``kw`` writes as the pure Python's struct writes it, or fails as it does."""
    reference = _written(PURE["state"].UserState, kw)  # the pure Python: the struct
    assert _written(UserState, kw) == reference  # whichever write this process runs
    for module in _STATE:
        head = module._write_head(module.UserState(**kw))
        if reference[0] == "bytes":
            assert head is not None and head + kw["slot_7d"].tobytes() + kw["slot_28d"].tobytes() == reference[1]
        else:
            assert head is None  # the caller's struct then raises
    if reference[0] == "bytes":
        raw = reference[1]
        assert isinstance(raw, bytes) and raw[0] == ((8 if kw["period_end_day"] else 7) if kw.get("flags") else 5 if kw["period_end_day"] else 4)
        assert _read_back(UserState, raw) == _read_back(PURE["state"].UserState, raw)


@settings(max_examples=150, deadline=None)
@given(any_states())
def test_the_fast_record_write_writes_what_the_struct_packs(kw: dict[str, Any]) -> None:
    """models.state's compiled write of a record's head (librt's BytesWriter, ``_write_head``)
    gives the bytes the struct pack of the pure Python gives, on any state (format 4, 5, 7 and 8); the
    compiled and pure copies of the fast write both; and what it wrote reads back as the pure
    Python reads it."""
    _check_write(kw)


_RANGE_EDGES = (
    [(name, v) for name in _U32_FIELDS for v in (2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, -1, 2 ** 32, -(2 ** 31), 2 ** 64)]
    + [(name, v) for name in _F32_FIELDS for v in _F32_EDGE_DOUBLES + [-1e39, 1e300]]
    + [("stage", 255), ("stage", 256), ("stage", -1)]
    + [(name, v) for name in ("negative_names", "period_end_day") for v in (0x7FFF, 0x8000, 0xFFFF, 0x10000, -1)]
    + [("flags", v) for v in (1, 3, 255, 256, -1)]
)


@pytest.mark.parametrize(("name", "value"), _RANGE_EDGES)
def test_the_fast_record_write_at_and_past_each_fields_range(name: str, value: object) -> None:
    """Each field at the edges of what its struct code holds (uint32, uint16, byte: the last
    value, the first past it, negatives; float32: the largest double the cast does not overflow
    and the first it does, inf, NaN): the same bytes as the struct, or the same error."""
    kw: dict[str, Any] = {"first_seen_s": 1_767_225_600, "n_events": 3, "act_7d": 0.25, "period_end_day": 20_000,
                          "slot_7d": array("f", [1.0, 0.0]), "slot_28d": array("f", [2.0, 0.5])}
    _check_write(kw | {name: value})


def test_without_librt_the_pure_python_runs() -> None:
    """librt (mypyc's runtime library) carries the compiled record's writer and reads: without it
    the compiled core cannot load, so the pure Python runs (and writes the same record)."""
    code = ("import sys; sys.modules['librt'] = None\n"  # as if not installed
            "import models._native as n, models.state as s\n"
            "st = s.UserState(first_seen_s=2 ** 31 + 5, n_events=3, act_7d=0.25, period_end_day=20000)\n"
            "print(n.active(), n.why_pure(), s.__file__, s.UserState.from_bytes(st.to_bytes()) == st, st.to_bytes().hex(), sep='|')")
    env = {k: v for k, v in os.environ.items() if k != _native.PURE_ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip().split("|")
    assert out[0] == "pure" and out[2].endswith("state.py") and out[3] == "True"
    if _native.why_pure() is None:  # built here: librt is the reason
        assert out[1].startswith("librt")
    want = UserState(first_seen_s=2 ** 31 + 5, n_events=3, act_7d=0.25, period_end_day=20000).to_bytes()
    assert bytes.fromhex(out[4]) == want  # this process's core (compiled where built) writes it so too


_F32_TIES = [f32(1.0 + k / 7) + d for k in range(7) for d in (2.0 ** -24, -(2.0 ** -25), 2.0 ** -23 * 1.5)]


@given(st.one_of(st.floats(allow_nan=False, width=64), st.floats(2.0 ** -62, 2.0 ** 62), st.floats(-(2.0 ** 62), -(2.0 ** -62)),
                 st.builds(lambda m, e: math.ldexp(m + 0.5, e) if m % 2 else math.ldexp(m - 0.5, e), st.integers(2 ** 23, 2 ** 24 - 1), st.integers(-85, 40))))
@settings(max_examples=300, deadline=None)
def test_the_fast_f32_rounds_as_the_cast(x: float) -> None:
    """models.state.f32's compiled path (float arithmetic, ``_f32_normal``, for |x| in [2 ** -62,
    2 ** 62)) rounds as C's (float) cast, bytes for bytes: also exact ties (an odd float32
    significand plus or minus half its unit, the last strategy), which go to the even neighbour."""
    for v in (x, -x, *_F32_TIES, 2.0 ** -62, -(2.0 ** -62), math.nextafter(2.0 ** 62, 0.0), 1.0, 0.999999999):
        want = array("f", [v]).tobytes()  # the cast (struct refuses to overflow to inf)
        for module in _STATE:
            assert struct.pack("<f", module.f32(v)) == want
            a = abs(v)
            if 2.0 ** -62 <= a < 2.0 ** 62:
                assert struct.pack("<d", module._f32_normal(v, a)) == struct.pack("<d", module._f32_cast(v))


def test_the_fast_f32_breaks_every_tie_to_even_as_the_cast() -> None:
    """``_f32_normal`` (Veltkamp's split) on the exact ties between float32 neighbours: the
    float32 significands at both ends of the range and a spread between (odd and even, so both
    ways a tie goes), half a unit above and below each, both signs, in the lowest, a middle and
    the highest binade it serves: the even neighbour, as the cast (a split that broke ties away
    from zero, or rounded the product's way, fails here)."""
    sig = [*range(2 ** 23, 2 ** 23 + 2000), *range(2 ** 24 - 2000, 2 ** 24), *range(2 ** 23, 2 ** 24, 4099)]
    for module in _STATE:
        for e in (-62 - 23, -23, 61 - 23):
            for m in sig:
                for v in (math.ldexp(m + 0.5, e), math.ldexp(m - 0.5, e), -math.ldexp(m + 0.5, e)):
                    a = abs(v)
                    if 2.0 ** -62 <= a < 2.0 ** 62:
                        assert module._f32_normal(v, a) == array("f", [v])[0], (module.__name__, v.hex())


_ENGINES = [PURE["engine"]] + ([engine_module] if _native.active() == "compiled" else [])


@given(st.one_of(st.floats(), st.floats(-2.0, 2.0), st.floats(-150.0, 150.0),
                 st.builds(lambda k, p, d: (k + 0.5) / 10 ** p + d, st.integers(-10 ** 6, 10 ** 6), st.integers(0, 6),
                           st.sampled_from([0.0, 1e-17, -1e-17, 1e-12, -1e-12, 5e-324]))),
       st.integers(0, 6))
@settings(max_examples=300, deadline=None)
def test_round_places_is_round(x: float, places: int) -> None:
    """models.engine.round_places (an alert's numbers, Alert.to_dict) gives ``round(x, places)``
    bit for bit: random doubles, and values at or next to a decimal half (the last strategy)."""
    want = struct.pack("<d", round(x, places)) if math.isfinite(x) else repr(round(x, places))
    for module in _ENGINES:
        got = module.round_places(x, places)
        assert (struct.pack("<d", got) if math.isfinite(x) else repr(got)) == want
