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
        out.append((a.alert_id, a.kind, a.user_id, a.event_time_ms, a.previous_stage, s.health.hex(), s.temperature.hex(),
                    s.risk.hex(), s.stage, s.segment, s.action, s.reasons))
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


@pytest.mark.parametrize("name", _native.COMPILED_MODULES)
def test_doctests_of_the_compiled_files_pass_on_their_pure_python(name: str) -> None:
    module: ModuleType = _native.import_pure([name])[name]
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


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


#: The fast paths' functions, pure and (where it runs) compiled: each is called directly.
_STATE = [PURE["state"]] + ([state_module] if _native.active() == "compiled" else [])


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A format-4 or format-5 record with any bits in its fields (NaN and inf floats, subnormals,
    -0.0, uint32s up to 2 ** 32 - 1) and 0-16 slots: what the head's fast read must read as the
    struct does."""
    v5 = draw(st.booleans())
    n = draw(st.integers(0, 16))
    head = bytes([5 if v5 else 4, draw(st.integers(0, 5)), n]) + draw(st.binary(min_size=92 if v5 else 90, max_size=92 if v5 else 90))
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
    """models.state's compiled read of a record's head (byte arithmetic, ``_read_head``) gives the
    very state the struct unpack of the pure Python gives, bits for bits, on any record (compiled
    and pure copies of the fast read both)."""
    reference = PURE["state"].UserState.from_bytes(raw)  # the pure Python: the struct
    assert not PURE["state"]._COMPILED
    for module in _STATE:
        n = raw[2]
        size = len(raw) - 8 * n
        both = array("f", raw[size:])
        fast = module._read_head(raw, raw[0] == 5, both[:n], both[n:])
        assert _fields(fast) == _fields(reference)
    assert _fields(UserState.from_bytes(raw)) == _fields(reference)  # whichever read this process runs


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
