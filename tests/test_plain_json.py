"""The decode's msgspec path (streams/worker/plain_json.py) gives exactly what the orjson path gives.

``Decoder.decode_many`` reads plain records with msgspec and everything else with orjson;
``Decoder.decode`` reads every value with orjson. On generated record values, nasty ones
included (unknown and duplicate fields, escaped keys, integers past 64 bits or a double's range,
``1e400``, long mantissas, non-ASCII and invalid UTF-8, surrogate escapes, deep properties,
missing, null and mistyped fields, truncated text), both must give the same events (every field,
the amount bit for bit), the same rejections (reason and detail), the same counts and the same
untracked names in the same order. And whenever msgspec takes a value at all, orjson reads the
same object from it, with no field the Struct lacks.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.events import Event, TypeMap
from models.vocabulary import Vocabulary
from streams.worker.codec import ORJSON_CHUNKS_AFTER_MISSES, PARSE_CHUNK, Decoder
from streams.worker.plain_json import PlainRecord, read_plain

NOW_MS = 1_800_000_000_000
TS_MS = 1_767_225_600_000


def _string(text: str) -> bytes:
    return orjson.dumps(text)


# JSON texts of values: what orjson and msgspec may read differently.
_NUMBERS = st.one_of(
    st.integers(-2**63 - 2, 2**64 + 2).map(lambda n: str(n).encode()),
    st.sampled_from([b"0", b"-0", b"-0.0", b"1e400", b"-1e400", b"1e-400", b"1.7976931348623157e308",
                     b"1.7976931348623159e308", b"4.9e-324", b"1E+2", b"1.", b".5", b"01", b"NaN", b"Infinity",
                     b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
                     b"18446744073709551615", b"18446744073709551616", b"1" + b"0" * 29, b"1" + b"0" * 309,
                     b"1767225600000", b"1767225600000.5", b"19.99", b"1e12", b"1000000000001", b"1e2"]),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: repr(x).encode()),
    st.tuples(st.integers(0, 10**40), st.integers(0, 10**25), st.integers(-340, 340)).map(
        lambda t: f"{t[0]}.{t[1]}e{t[2]}".encode()),
)
_RAW_STRINGS = st.one_of(
    st.text(max_size=12).map(_string),  # any code point, as orjson writes it (UTF-8, few escapes)
    st.sampled_from([b'"view"', b'" View "', b'"other"', b'"subscription"', b'"Purchase"', b'""', b'"  "',
                     b'"2026-01-01T00:00:00Z"', b'"1767225600000"', b'"zo\xc3\xab"', b'"zo\\u00eb"', b'"\\ud800"',
                     b'"\\udc00"', b'"\\ud83d\\ude00"', b'"\\ud800\\u0041"', b'"\xff"', b'"\xc0\x80"', b'"\xed\xa0\x80"',
                     b'"\xf4\x90\x80\x80"', b'"\xef\xbf\xbe"', b'"a\x01"', b'"\\x"', b'"\\u0000"', b'"e-1"', b'"u-1"',
                     b'"u' + b"x" * 256 + b'"']),
    st.binary(max_size=6).map(lambda b: b'"' + b.replace(b'"', b"").replace(b"\\", b"") + b'"'),
)
_SCALARS = st.one_of(_NUMBERS, _RAW_STRINGS, st.sampled_from([b"null", b"true", b"false", b"tru", b"nul"]))


def _nested(depth: int) -> Any:
    if depth == 0:
        return _SCALARS
    inner = _nested(depth - 1)
    return st.one_of(
        _SCALARS,
        st.lists(inner, max_size=3).map(lambda xs: b"[" + b",".join(xs) + b"]"),
        st.lists(st.tuples(_RAW_STRINGS, inner), max_size=3).map(
            lambda kvs: b"{" + b",".join(k + b":" + v for k, v in kvs) + b"}"),
    )


_VALUES = st.one_of(_SCALARS, _nested(4), st.integers(1, 1100).map(lambda n: b"[" * n + b"]" * n))
_KEYS = st.one_of(
    st.sampled_from(["event_id", "user_id", "type", "ts", "amount", "account_id", "properties"]).map(_string),
    st.sampled_from([b'"currency"', b'"status"', b'"mrr"', b'"p"', b'"EVENT_ID"', b'"user\\u005fid"', b'"ts\\u0000"',
                     b'"\xff"', b'"properties "']),
)
_WS = st.sampled_from([b"", b"", b" ", b"\n\t", b"\r", b"\x0c"])  # the form feed is no JSON whitespace


@st.composite
def _record(draw: Any) -> bytes:
    """A record value: mostly a plausible event with some fields changed, added or doubled."""
    fields = {b'"event_id"': _string(draw(st.sampled_from(["e-1", "e-2", "e-3"]))), b'"user_id"': b'"u-1"',
              b'"type"': draw(st.sampled_from([b'"view"', b'"click"', b'"Sign Up"', b'"order"', b'"zzz"'])),
              b'"ts"': str(draw(st.integers(TS_MS, TS_MS + 10**9))).encode()}
    if draw(st.booleans()):
        fields[b'"properties"'] = b'{"page":"/app/home"}'
    pairs = list(fields.items())
    for _ in range(draw(st.integers(0, 3))):
        change = (draw(_KEYS), draw(_VALUES))
        if pairs and draw(st.booleans()):
            pairs[draw(st.integers(0, len(pairs) - 1))] = change  # a field replaced (or its key changed)
        else:
            pairs.insert(draw(st.integers(0, len(pairs))), change)  # added: a duplicate key or another field
    if draw(st.integers(0, 9)) == 0 and pairs:
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    ws = draw(_WS)
    text = b"{" + ws + (b"," + ws).join(k + ws + b":" + ws + v for k, v in pairs) + ws + b"}"
    cut = draw(st.integers(0, 30))
    if cut == 0:
        text = text[:draw(st.integers(0, len(text)))]  # truncated
    elif cut == 1:
        text += draw(st.sampled_from([b" ", b"x", b"}", b",{}"]))  # trailing text
    elif cut == 2:
        text = draw(_VALUES)  # not an object at all
    return text


_VALUE_LISTS = st.lists(st.one_of(_record(), st.none()), max_size=2 * PARSE_CHUNK + 3)


def _result(r: Any) -> tuple[object, ...]:
    if isinstance(r, Event):
        return ("event", r.user_id, r.ts_ms, r.type, r.event_id, r.amount.hex(), r.account_id, repr(r.subscription))
    return ("rejected", r.reason, r.detail)


def _decoders() -> tuple[Decoder, Decoder]:
    def make() -> Decoder:
        return Decoder(max_event_bytes=400, type_map=TypeMap({"zzz": "other", "sign up": "signup"}),
                       vocabulary=Vocabulary(("view",)))
    return make(), make()


def _counts(d: Decoder) -> tuple[object, ...]:
    return d.unknown_types, d.untracked_types, tuple(d.untracked_names), d.derived_ids


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(_VALUE_LISTS)
def test_the_msgspec_path_gives_what_orjson_gives(values: list[bytes | None]) -> None:
    fast, reference = _decoders()
    got = fast.decode_many(values, NOW_MS)
    assert [_result(r) for r in got] == [_result(reference.decode(v, NOW_MS)) for v in values]
    assert _counts(fast) == _counts(reference), "the same counts, the untracked names in the same order"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(_record())
def test_a_value_msgspec_takes_is_the_object_orjson_reads(value: bytes) -> None:
    """The lemma the path rests on: a value ``read_plain`` takes is one orjson reads, as a dict with
    no other field, every value of the same type and equal (floats bit for bit)."""
    try:
        rec = read_plain(value)
    except (msgspec.MsgspecError, UnicodeDecodeError):  # what it raises: the codec catches any exception
        return
    obj = orjson.loads(value)  # raises if orjson refuses what msgspec took
    assert type(obj) is dict and set(obj) <= set(PlainRecord.__struct_fields__)
    for name in PlainRecord.__struct_fields__:
        mine, theirs = getattr(rec, name), obj.get(name)
        if name != "properties":
            assert type(mine) is type(theirs) and (mine == theirs or mine != mine), (name, mine, theirs)
            if type(mine) is float:
                assert math.copysign(1.0, mine) == math.copysign(1.0, theirs) and mine.hex() == theirs.hex()


def test_plain_records_take_the_msgspec_path_and_others_orjson() -> None:
    good = [orjson.dumps({"event_id": f"e-{i}", "user_id": "u-1", "type": "click", "ts": TS_MS + i,
                          "properties": {"page": "/", "n": [1, 2.5, None]}}) for i in range(10)]
    d = Decoder()
    assert all(isinstance(e, Event) for e in d.decode_many(good, NOW_MS)) and d.reread == 0
    others = [orjson.dumps({"user_id": "u-1", "type": "click", "ts": TS_MS}),  # no id: derived from orjson's dict
              orjson.dumps({"event_id": "s", "user_id": "u-1", "type": "subscription", "ts": TS_MS, "status": "trial"}),
              b'{"event_id":"e","user_id":"u-1","type":"click","ts":1767225600000,"p":1e400}',  # msgspec would skip it
              b'{"event_id":"e","user_id":"u-1","type":"click","ts":1' + b"0" * 29 + b"}",  # orjson: a float
              None]
    d.decode_many(others + good, NOW_MS)
    assert d.reread == len(others)
    assert [r.reason for r in d.decode_many(others[2:], NOW_MS)] == ["malformed_json", "future", "malformed_json"]


def test_after_a_chunk_of_mostly_other_records_a_few_chunks_are_read_by_orjson() -> None:
    no_id = [orjson.dumps({"user_id": "u-1", "type": "click", "ts": TS_MS + i}) for i in range(PARSE_CHUNK)]
    good = [orjson.dumps({"event_id": f"e-{i}", "user_id": "u-1", "type": "click", "ts": TS_MS + i})
            for i in range(PARSE_CHUNK)]
    d, reference = Decoder(), Decoder()
    values = no_id + good * (ORJSON_CHUNKS_AFTER_MISSES + 1)
    assert d.decode_many(values, NOW_MS) == [reference.decode(v, NOW_MS) for v in values]
    assert d.reread == PARSE_CHUNK, "the first chunk's records were read again; the next chunks by orjson alone"
    d.decode_many(no_id[:1] + good[1:], NOW_MS)
    assert d.reread == PARSE_CHUNK + 1, "then msgspec again"


def test_deep_properties_are_orjsons_to_refuse_whatever_the_recursion_limit() -> None:
    """msgspec's depth limit is Python's recursion limit (the C stack on 3.12 and later), orjson's
    1024 levels: the Struct's ``properties`` nest at most three levels, so a deeper one is orjson's."""
    deep = b'{"event_id":"e","user_id":"u","type":"view","ts":1767225600000,"properties":' + b"[" * 1100 + b"]" * 1100 + b"}"
    shallow = b'{"event_id":"e","user_id":"u","type":"view","ts":1767225600000,"properties":{"a":[1,"x"],"b":{"c":null}}}'
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        d = Decoder(max_event_bytes=4096)
        got = d.decode_many([deep, shallow], NOW_MS)
    finally:
        sys.setrecursionlimit(limit)
    assert _result(got[0])[:2] == ("rejected", "too_deep") and isinstance(got[1], Event) and d.reread == 1
