"""The compiled core's specialised slot and event paths give what the pure Python reference gives.

``models.state._forward_and_add`` (an event a day or more past the slots' reference time: every
slot brought forward, then one added) and ``_add_within_day`` (an event less than a day from it),
both written by librt into the state's slot bytes, against the reference ``_add_to_slot`` (float32
arrays) on random states, bit for bit (NaN, inf, -0.0, subnormal counts, and the "impossible"
states a record could still hold: a 7-day count where the 4-week one is zero); ``_slot_list``
(models.signals' slot lists, a shared 0.0 for zero counts) against the arrays' ``tolist()``;
``models.engine._in_order`` (the events in ``EVENT_ORDER``, its previous key held in native
locals) against the sort. Each fast path runs in the pure copy of its module (where librt is
installed) and, where it runs, in the compiled one.
"""

from __future__ import annotations

import importlib.util
import struct
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


#: float32 bit patterns: zeros of both signs, a signalling and a quiet NaN with payloads, inf, a
#: subnormal, one; or any 4 bytes.
_BITS = st.one_of(st.sampled_from([bytes.fromhex(h) for h in ("00000000", "00000080", "0100807f", "0500a0ff", "0100c07f",
                                                              "0000807f", "01000000", "0000803f")]),
                  st.binary(min_size=4, max_size=4))


def _any_counts(n: int) -> st.SearchStrategy[bytes]:
    """The bytes of ``n`` slots' counts (2 n float32s), of any bits."""
    return st.lists(_BITS, min_size=2 * n, max_size=2 * n).map(b"".join)


def _state_of_bits(module: Any, kw: dict[str, Any], raw: bytes | None) -> Any:
    """:func:`_state`, or with ``raw`` as its slot counts' bytes (any bits: signalling NaNs too,
    which no float list can carry into an array)."""
    if raw is None:
        return _state(module, kw)
    return module.UserState(**{k: v for k, v in kw.items() if k not in ("slot_7d", "slot_28d")}, slot_counts=raw)


@st.composite
def within_day_states(draw: st.DrawFn) -> tuple[dict[str, Any], int, int, bytes | None]:
    """As :func:`slot_states`, the event less than a day past the slots' reference time: at it,
    within the day, or before it (a late event); half the time the counts are any bits."""
    kw, slot, _ = draw(slot_states())
    ts = kw["slots_at_s"] + draw(st.one_of(st.just(0), st.integers(1, DAY_S - 1), st.integers(-60 * DAY_S, -1)))
    n = len(kw["slot_7d"])
    raw = draw(st.one_of(st.none(), _any_counts(n)))
    return kw, slot, ts, raw


@settings(max_examples=300, deadline=None)
@given(within_day_states())
def test_add_within_day_is_the_reference_add_to_slot(case: tuple[dict[str, Any], int, int, bytes | None]) -> None:
    """``models.state._add_within_day`` (the compiled core's add of an event less than a day from
    the slots' reference time, written by librt) gives the reference's counts bit for bit."""
    kw, slot, ts, raw = case
    reference = _state_of_bits(PURE["state"], kw, raw)
    PURE["state"]._add_to_slot(reference, slot, ts)
    for module in _STATES:
        fast = _state_of_bits(module, kw, raw)
        module._add_within_day(fast, slot, ts)
        assert _fields(fast) == _fields(reference)
    whichever = _state_of_bits(state_module, kw, raw)
    state_module._add_to_slot(whichever, slot, ts)
    assert _fields(whichever) == _fields(reference)


@settings(max_examples=200, deadline=None)
@given(slot_states(), st.data())
def test_forward_and_add_on_any_bits(case: tuple[dict[str, Any], int, int], data: st.DataObject) -> None:
    """``_forward_and_add`` against the reference on counts of any bits (the counts the forward
    skips are copied, never read as a double: a signalling NaN keeps its bits)."""
    kw, slot, ts = case
    raw = data.draw(_any_counts(len(kw["slot_7d"])))
    reference = _state_of_bits(PURE["state"], kw, raw)
    PURE["state"]._add_to_slot(reference, slot, ts)
    for module in _STATES:
        fast = _state_of_bits(module, kw, raw)
        module._forward_and_add(fast, slot, ts)
        assert _fields(fast) == _fields(reference)


#: Decay factors: 1.0 (slots kept at this very second), the usual ones, and what no decay gives
#: (negative, inf, NaN), where a zero count times the factor is not the shared 0.0.
_FACTORS = st.one_of(st.just(1.0), st.floats(0.0, 1.0), st.floats(),
                     st.sampled_from([0.0, -0.0, 5e-324, 1e300, float("inf"), -1.0, float("nan")]))


def _bits(values: list[float]) -> tuple[list[bytes], str]:
    """The doubles' bits and the list's repr (what the golden digests hash, through the Signals)."""
    return [struct.pack("<d", v) for v in values], repr(values)


@settings(max_examples=300, deadline=None)
@given(slot_states(), _FACTORS, _FACTORS)
def test_slot_lists_are_the_reference(case: tuple[dict[str, Any], int, int], g7: float, g28: float) -> None:
    """``models.state._slot_list`` (the compiled core's slot lists for models.signals, read by
    librt with one shared 0.0 for the zero counts) gives the reference's lists (the arrays'
    ``tolist()`` times the factor), bit for bit and repr for repr."""
    kw, _, _ = case
    reference = _state(PURE["state"], kw)
    want = [_bits(v) for v in PURE["state"].slot_lists(reference, g7, g28)]
    n = len(kw["slot_7d"])
    for module in _STATES:
        b = _state(module, kw).slot_counts
        assert [_bits(module._slot_list(b, 0, n, g7)), _bits(module._slot_list(b, 4 * n, n, g28))] == want
    assert [_bits(v) for v in state_module.slot_lists(_state(state_module, kw), g7, g28)] == want


def test_slot_lists_of_more_slots_than_a_record_holds() -> None:
    """Past the 256 zeros the compiled lists start from (a state kept in memory only): every slot."""
    counts = [0.0] * 299 + [2.0]
    for module in _STATES:
        b = module.UserState(slot_7d=counts, slot_28d=counts).slot_counts
        assert (module._slot_list(b, 0, 300, 1.0), module._slot_list(b, 1200, 300, 0.5)) == (counts, [n * 0.5 for n in counts])
    for module in (state_module, PURE["state"]):
        s7, s28 = module.slot_lists(module.UserState(slot_7d=counts, slot_28d=counts), 1.0, 0.5)
        assert (s7, s28) == (counts, [n * 0.5 for n in counts])


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
