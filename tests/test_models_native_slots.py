"""The compiled core's specialised slot and event paths give what the pure Python reference gives.

``models.state._forward_and_add`` (an event a day or more past the slots' reference time: every
slot brought forward, then one added, with fewer ``array('f')`` item calls) against the
reference ``_add_to_slot`` on random states, bit for bit (NaN, inf, -0.0, subnormal counts, and
the "impossible" states a record could still hold: a 7-day count where the 4-week one is zero);
``models.engine._in_order`` (the events in ``EVENT_ORDER``, its previous key held in native
locals) against the sort. Each fast path runs in the pure copy of its module (where librt is
installed) and, where it runs, in the compiled one.
"""

from __future__ import annotations

import importlib.util
from array import array
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import models.engine as engine_module
import models.state as state_module
from models import _native
from models.events import EVENT_ORDER, Event
from tests.test_models_native import PURE, _fields

DAY_S = 86_400
#: The fast slot path's module copies: pure (where librt, which it reads with, is installed) and compiled.
_STATES = ([PURE["state"]] if importlib.util.find_spec("librt") else []) + (
    [state_module] if _native.active() == "compiled" else [])
_ENGINES = [PURE["engine"]] + ([engine_module] if _native.active() == "compiled" else [])

_SPECIAL = [0.0, 0.0, 0.0, -0.0, 1.0, 0.5, float("nan"), float("inf"), 1e-45, 3.4028234663852886e38]
_COUNT = st.one_of(st.sampled_from(_SPECIAL), st.floats(width=32), st.floats(0.0, 500.0, width=32))


@st.composite
def slot_states(draw: st.DrawFn) -> tuple[dict[str, Any], int, int]:
    """A state's fields (slots 1-16, counts mostly zero, any float32 otherwise), the slot of an
    event and its time, a day or more (up to years) past the slots' reference time."""
    n = draw(st.integers(1, 16))
    at = draw(st.integers(0, 2 ** 32 - 1))
    kw: dict[str, Any] = {
        "slots_at_s": at,
        "n_events": draw(st.integers(1, 1000)),
        "negative_28d": draw(_COUNT),
        "slot_7d": draw(st.lists(_COUNT, min_size=n, max_size=n)),
        "slot_28d": draw(st.lists(_COUNT, min_size=n, max_size=n)),
    }
    ts = at + draw(st.one_of(st.integers(DAY_S, 400 * DAY_S), st.integers(DAY_S, 2 ** 33), st.just(DAY_S)))
    return kw, draw(st.integers(0, n - 1)), ts


def _state(module: Any, kw: dict[str, Any]) -> Any:
    """``module``'s UserState of fields ``kw``, with arrays of its own (the paths mutate them)."""
    return module.UserState(**{**kw, "slot_7d": array("f", kw["slot_7d"]), "slot_28d": array("f", kw["slot_28d"])})


@settings(max_examples=300, deadline=None)
@given(slot_states())
def test_forward_and_add_is_the_reference_add_to_slot(case: tuple[dict[str, Any], int, int]) -> None:
    kw, slot, ts = case
    reference = _state(PURE["state"], kw)
    assert not PURE["state"]._COMPILED
    PURE["state"]._add_to_slot(reference, slot, ts)  # the pure Python: forward every slot, then add
    for module in _STATES:
        fast = _state(module, kw)
        module._forward_and_add(fast, slot, ts)
        assert _fields(fast) == _fields(reference)
    whichever = _state(state_module, kw)
    state_module._add_to_slot(whichever, slot, ts)  # whichever path this process runs
    assert _fields(whichever) == _fields(reference)


@st.composite
def event_lists(draw: st.DrawFn) -> list[Event]:
    """0-12 events of one user, times and ids often equal (ties), in any order or already sorted."""
    times = st.integers(1_767_225_600_000, 1_767_225_600_000 + 5)
    evs = [Event("u", draw(times), "view", draw(st.sampled_from(["", "a", "b", "c"]))) for _ in range(draw(st.integers(0, 12)))]
    if draw(st.booleans()):
        evs.sort(key=EVENT_ORDER)
    return evs


@settings(max_examples=300, deadline=None)
@given(event_lists())
def test_in_order_is_the_sort(evs: list[Event]) -> None:
    want = sorted(evs, key=EVENT_ORDER)
    for module in _ENGINES:  # the pure copy reads the events' two attributes as they are
        got = module._in_order(evs)
        assert [id(e) for e in got] == [id(e) for e in want]  # the sort is stable: ties keep their order
        assert [id(e) for e in module._in_order(tuple(evs))] == [id(e) for e in want]  # not a list: copied first
