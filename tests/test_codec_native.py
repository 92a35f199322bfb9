"""The record checks compiled with the scoring core (models/intake.py) decide exactly as their pure Python.

On random JSON-like values (well-formed events, every field wrong in turn, subscription fields,
text and float timestamps, type names a map renames), the compiled ``EventReader`` this process
runs and a fresh pure-Python copy (``models._native.import_pure``) must give the same events
(every field, the amount bit for bit) and the same rejections (reason and detail, character for
character), and count the same unknown type names and derived ids. Wired as the codec wires it
(streams.timefmt's parser and ``derived_event_id``).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import _native
from models.events import TypeMap
from models.intake import EventReader
from streams.timefmt import MIN_EVENT_MS, parse_ts_ms
from streams.worker.codec import Decoder, derived_event_id

PURE = _native.import_pure(["events", "intake"])
NOW_MS = 1_800_000_000_000

compiled_only = pytest.mark.skipif(_native.active() != "compiled", reason=f"the compiled core does not run here ({_native.why_pure()})")

_INT64 = st.integers(-2**63, 2**63 - 1)  # what orjson reads from JSON
_VALUES = st.one_of(
    st.none(), st.booleans(), _INT64, st.floats(), st.text(max_size=40),
    st.sampled_from(["", "view", " View ", "other", "subscription", "2026-01-01T00:00:00Z", "1767225600000.5", "x" * 257,
                     "active", "cancelled", "19.99", "1e400"]),
    st.integers(0, 4_102_444_800_000), st.floats(0, 2e12), st.lists(_INT64, max_size=2),
    st.dictionaries(st.text(max_size=3), _INT64, max_size=2),
)
_FIELDS = ["event_id", "user_id", "type", "ts", "amount", "account_id", "status", "plan", "mrr", "trial_ends", "period_end"]
_EVENTS = st.fixed_dictionaries(
    {"user_id": st.sampled_from(["u1", "", "u" * 256, "u" * 257]),
     "type": st.sampled_from(["subscription", "view", "Purchase", "other", "zzz", " Click "]),
     "ts": st.one_of(st.integers(900_000_000_000, 1_900_000_000_000), st.text(max_size=30), st.floats())},
    optional={k: _VALUES for k in _FIELDS if k not in ("user_id", "type", "ts")},
)
_OBJECTS = st.one_of(_VALUES, st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=11), _EVENTS)


def _reader(module: Any, skew_ms: int, type_map: Any) -> Any:
    return module.EventReader(MIN_EVENT_MS, skew_ms, type_map, parse_ts_ms, derived_event_id)


def _result(r: Any) -> tuple[object, ...]:
    if type(r).__name__ == "Rejection":
        return ("rejected", r.reason, r.detail)
    return ("event", r.user_id, r.ts_ms, r.type, r.event_id, r.amount.hex(), r.account_id, repr(r.subscription))


@compiled_only
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OBJECTS, max_size=6), st.sampled_from([0, 5_000, 3_600_000]), st.booleans())
def test_compiled_checks_equal_the_pure_python(objs: list[object], skew_ms: int, mapped: bool) -> None:
    aliases = {"purchase": "buy", "zzz": "other"} if mapped else {}
    compiled = _reader(__import__("models.intake").intake, skew_ms, TypeMap(aliases))
    pure = _reader(PURE["intake"], skew_ms, PURE["events"].TypeMap(aliases))
    assert type(compiled) is EventReader and type(pure) is not EventReader
    assert [_result(r) for r in compiled.events(objs, NOW_MS)] == [_result(pure.event(o, NOW_MS)) for o in objs]
    assert (compiled.unknown_types, compiled.derived_ids) == (pure.unknown_types, pure.derived_ids)


def test_the_decoder_reads_through_the_compiled_checks_where_built() -> None:
    """The codec's counters are the reader's, and its events are the models' own class."""
    d = Decoder()
    out = d.decode_many([b'{"user_id":"u1","type":"zzz","ts":1767225600000}', b'{"user_id":"u1","type":"view","ts":"x"}'], NOW_MS)
    assert [type(r).__name__ for r in out] == ["Event", "Rejection"]
    assert out[1].reason == "bad_timestamp" and (d.unknown_types, d.derived_ids) == (0, 1)  # type: ignore[union-attr]


_RECORD = st.tuples(
    st.integers(0, 3), st.integers(0, 6), st.integers(-5_000_000, 5_000_000), st.sampled_from(["", "", "acme"]),
    st.sampled_from(["keyed", "keyed", "other", "none"]), st.sampled_from([0, 0, 1, 2]),
)


@compiled_only
@settings(max_examples=100, deadline=None)
@given(st.lists(_RECORD, max_size=40), st.booleans())
def test_compiled_grouping_equals_the_pure_python(records: list[tuple[int, int, int, str, str, int]], routed: bool) -> None:
    """``decode_batch`` with the compiled checks and grouping and with their pure copies: the
    same users, events, offsets, DLQ records and clock. The record's timestamp is unset (0), the
    event's own, or two hours before it (``future``: ahead of its record), so the grouping's
    native test of the timestamp runs both ways."""
    from unittest import mock

    import orjson

    from streams.worker import phases
    from streams.worker.clock import PartitionClock
    from streams.worker.routing import Router

    start_ms = 1_767_225_600_000
    batch = []
    for i, (u, e, dt, account, key, stamped) in enumerate(records):
        value = orjson.dumps({"event_id": f"e{e}", "user_id": f"u{u}", "type": "view", "ts": start_ms + dt, "account_id": account})
        k = f"u{u}".encode() if key == "keyed" else (b"k" if key == "other" else None)
        stamp = (0, start_ms + dt, start_ms + dt - 7_200_000)[stamped]
        batch.append(type("Rec", (), {"offset": i, "key": k, "value": value, "timestamp": stamp, "headers": ()})())

    def run(module: Any) -> tuple[object, ...]:
        decoder = Decoder()
        decoder._reader = _reader(module, 3_600_000, PURE["events"].TypeMap({}) if module is PURE["intake"] else TypeMap({}))
        router = Router("reroute") if routed else None
        if router is not None:
            router.assign(0, {})
        clock = PartitionClock(3_600_000)
        with mock.patch.object(phases, "group_plain", module.group_plain):
            out = phases.decode_batch({0: batch}, {0: clock}, decoder, NOW_MS, topic="ev", max_dlq_value_bytes=1024, router=router)
        users = {u: ([_result(e) for e in ub.events], ub.offsets) for u, ub in out.users.items()}
        return users, out.dlq, out.rejected, out.routed.rerouted, clock.snapshot()

    assert run(PURE["intake"]) == run(__import__("models.intake").intake)
