"""Record decoding: every rejection reason, both timestamp forms, DLQ records, and fuzzing."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import Event
from streams.worker.codec import MAX_USER_ID_CHARS, MIN_EVENT_MS, PARSE_CHUNK, REASONS, Decoder, Rejection, dlq_value

NOW_MS = 1_800_000_000_000
TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
GOOD = {"event_id": "e-1", "user_id": "u-1", "type": "click", "ts": TS_MS}


def decode(obj: object, **kw: object) -> Event | Rejection:
    raw = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    return Decoder(**kw).decode(raw, NOW_MS)  # type: ignore[arg-type]


def reason(obj: object, **kw: object) -> str:
    out = decode(obj, **kw)
    assert isinstance(out, Rejection), f"expected a rejection, got {out}"
    assert out.detail, "a rejection explains itself"
    return out.reason


def test_good_event_with_epoch_milliseconds() -> None:
    assert decode({**GOOD, "properties": {"page": "/x"}}) == Event("u-1", TS_MS, "click", "e-1", 0.0)


@pytest.mark.parametrize(
    "text, expected_ms",
    [
        ("2026-01-01T00:00:00Z", TS_MS),
        ("2026-01-01T01:30:00+01:30", TS_MS),
        ("2026-01-01T00:00:00.250Z", TS_MS + 250),
        ("2026-01-01T00:00:00", TS_MS),  # naive ISO text is UTC
        (str(TS_MS), TS_MS),  # epoch milliseconds as digits
    ],
)
def test_good_event_with_text_timestamps(text: str, expected_ms: int) -> None:
    ev = decode({**GOOD, "ts": text})
    assert isinstance(ev, Event) and ev.ts_ms == expected_ms


def test_purchase_amount_and_type_aliases() -> None:
    ev = decode({**GOOD, "type": "order", "amount": 19.5})
    assert isinstance(ev, Event) and (ev.type, ev.amount) == ("order", 19.5), "names are kept (models.vocabulary gives roles)"
    ev = decode({**GOOD, "type": "purchase"})
    assert isinstance(ev, Event) and ev.amount == 0.0, "a purchase without amount counts 0"
    ev = decode({**GOOD, "amount": 3})
    assert isinstance(ev, Event) and ev.amount == 3.0 and isinstance(ev.amount, float)


def test_product_type_names_are_kept() -> None:
    d = Decoder()
    raw = orjson.dumps({**GOOD, "type": " Video_Play"})
    evs = [d.decode(raw, NOW_MS) for _ in range(3)]
    assert all(isinstance(e, Event) and e.type == "video_play" for e in evs)
    assert d.unknown_types == 0, "every name is the product's vocabulary"


def test_events_the_model_neither_tracks_nor_gives_a_role_are_counted_untracked() -> None:
    """QA10 F6: a renamed type ("note_created" -> "Note Created") counted only in the total, silently."""
    from models.events import TypeMap
    from models.intake import EventReader
    from models.vocabulary import Vocabulary

    reader = EventReader(MIN_EVENT_MS, 3_600_000, TypeMap({"checkout_completed": "purchase", "zzz": "other"}), int,
                         lambda obj, ts_ms, amount: "d", vocabulary=Vocabulary(("note_created", "search")))
    names = {"note_created": 3, " Search": 2, "checkout_completed": 1, "cancel": 1, "uninstall": 1, "subscription": 1,
             "Note Created": 4, "note_search": 2, "zzz": 1}
    for name, times in names.items():
        for _ in range(times):
            body = {**GOOD, "type": name}
            if name == "subscription":
                body |= {"status": "trial"}
            assert isinstance(reader.event(body, NOW_MS), Event), name
    assert reader.untracked_types == 4 + 2 + 1, "'other' neither; tracked, purchase (after the map), cancel, negative, subscription are"
    assert reader.unknown_types == 1, "a name the map turns into 'other' is also unknown, as before"
    assert set(reader.types) == set(names), "one cached entry per name: the count costs no lookup per event"
    assert reader.untracked_names == ["note created", "note_search", "other"], "for the worker's log line, after the map"


def test_no_name_is_untracked_without_a_model_or_under_hashed_slots() -> None:
    from models.vocabulary import Vocabulary

    raw = [orjson.dumps({**GOOD, "type": name}) for name in ("Note Created", "click", "order")]
    for decoder in (Decoder(), Decoder(vocabulary=Vocabulary())):
        assert all(isinstance(e, Event) for e in decoder.decode_many(raw, NOW_MS))
        assert decoder.untracked_types == 0, "the shipped default hashes every name into a kind"
    tracked = Decoder(vocabulary=Vocabulary(("click",)))
    tracked.decode_many(raw, NOW_MS)
    assert tracked.untracked_types == 1, "'order' plays the purchase role; 'note created' is neither"


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"x" * 70_000, "oversized"),
        (b'{"user_id": "\xff\xfe"}', "not_utf8"),
        (b'{"user_id": ', "malformed_json"),
        (b"", "malformed_json"),
        (None, "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
    ],
)
def test_bad_bytes(value: bytes | None, expected: str) -> None:
    out = Decoder().decode(value, NOW_MS)
    assert isinstance(out, Rejection) and out.reason == expected


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"event_id": ""}, "missing_field"),
        ({"user_id": None}, "missing_field"),
        ({"type": None}, "missing_field"),
        ({"ts": None}, "missing_field"),
        ({"event_id": 7}, "bad_type"),
        ({"user_id": 42}, "bad_type"),
        ({"user_id": "u" * (MAX_USER_ID_CHARS + 1)}, "bad_type"),
        ({"type": ["click"]}, "bad_type"),
        ({"ts": {"ms": 1}}, "bad_type"),
        ({"ts": True}, "bad_type"),
        ({"user_id": ""}, "empty_user_id"),
        ({"type": ""}, "empty_type"),  # training would pick "" as a tracked type (QA3 #3)
        ({"type": "   "}, "empty_type"),
        ({"ts": "yesterday"}, "bad_timestamp"),
        ({"ts": "2026-13-40T00:00:00Z"}, "bad_timestamp"),
        ({"ts": 1_767_225_600}, "too_old"),  # epoch seconds by mistake
        ({"ts": MIN_EVENT_MS - 1}, "too_old"),
        ({"ts": -5}, "too_old"),
        ({"ts": NOW_MS + 3_600_001}, "future"),
        ({"amount": -1}, "bad_amount"),
        ({"amount": "12.5"}, "bad_amount"),
        ({"amount": True}, "bad_amount"),
        ({"amount": 1e308}, "bad_amount"),  # finite but past MAX_AMOUNT: sums of it would overflow
        ({"amount": 1e12}, None),  # the cap itself is accepted
    ],
)
def test_bad_fields(change: dict[str, object], expected: str | None) -> None:
    obj = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    if expected is None:
        assert isinstance(decode(obj), Event)
    else:
        assert reason(obj) == expected


@pytest.mark.parametrize("ts, reason_, hint", [
    (TS_MS // 1000, "too_old", " (epoch seconds? send milliseconds)"),
    ("1767225600", "too_old", " (epoch seconds? send milliseconds)"),  # as text, as a CSV sends it
    (TS_MS * 1000 + 280, "future", " (epoch microseconds? send milliseconds)"),
    (-5, "too_old", ""),  # neither: no guess
    (5_000_000, "too_old", ""),  # 5e9 ms is 1970 too
    (NOW_MS * 10, "future", ""),  # 10x ahead: not a plausible time in any unit
])
def test_a_ts_in_seconds_or_microseconds_says_so(ts: object, reason_: str, hint: str) -> None:
    """QA10 F12: "ts 1796000000 ms is before 2000-01-01" and "... ms ahead of the wall clock" did
    not say the likely mistake, as the period_end's detail does (one rule: epoch_unit_hint)."""
    rej = decode({**GOOD, "ts": ts})
    assert isinstance(rej, Rejection) and rej.reason == reason_, rej
    assert rej.detail.endswith("wall clock" + hint if reason_ == "future" else "2000-01-01" + hint), rej.detail


def test_a_history_ts_in_seconds_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from streams.offline.history import read_events_csv
    path = tmp_path / "secs.csv"
    path.write_text(f"user_id,ts,event_type\nu1,{TS_MS // 1000},view\n")
    with pytest.raises(ValueError, match=r"'1767225600' is not epoch milliseconds after 2000-01-01 \(epoch seconds\? send milliseconds\)"):
        read_events_csv(path)


def test_non_finite_amount_text_is_not_json() -> None:
    assert reason(b'{"event_id":"e","user_id":"u","type":"view","ts":1767225600000,"amount":NaN}') == "malformed_json"
    assert reason(b'{"event_id":"e","user_id":"u","type":"view","ts":1767225600000,"amount":1e400}') == "malformed_json"


def test_json_nested_too_deep_is_not_called_malformed() -> None:
    """Valid JSON nested 1,500 deep (3 kB) is refused, but as ``too_deep``: ``malformed_json`` sent
    its producer looking for broken JSON (QA5 L5). Alone and inside a batch (``decode_many``)."""
    deep = b'{"event_id":"e","user_id":"u","type":"view","ts":1767225600000,"properties":' + b"[" * 1500 + b"]" * 1500 + b"}"
    rej = decode(deep)
    assert isinstance(rej, Rejection) and rej.reason == "too_deep" and "1024 levels" in rej.detail
    good = orjson.dumps(GOOD)
    out = Decoder().decode_many([good, deep, good], NOW_MS)
    assert [getattr(r, "reason", "event") for r in out] == ["event", "too_deep", "event"]
    assert reason(b'{"user_id": ' + b"[" * 10) == "malformed_json"  # shallow and broken: as before


def test_clock_skew_is_configurable() -> None:
    obj = {**GOOD, "ts": NOW_MS + 10_000}
    assert isinstance(decode(obj), Event)
    assert reason(obj, max_clock_skew_ms=5_000) == "future"


def test_decoder_validates_its_limits() -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        Decoder(max_event_bytes=0)
    with pytest.raises(ValueError, match="max_clock_skew_ms"):
        Decoder(max_clock_skew_ms=-1)


def test_dlq_value_keeps_text_or_base64_and_where_it_came_from() -> None:
    rej = Rejection("malformed_json", "truncated")
    body = orjson.loads(dlq_value(rej, topic="ev", partition=2, offset=17, timestamp_ms=123, value=b'{"a":'))
    assert body == {"reason": "malformed_json", "detail": "truncated", "topic": "ev", "partition": 2, "offset": 17,
                    "timestamp_ms": 123, "value": '{"a":', "value_encoding": "utf-8"}
    raw = b"\x00\xff\xfe"
    body = orjson.loads(dlq_value(Rejection("not_utf8", "x"), topic="ev", partition=0, offset=1, timestamp_ms=None, value=raw))
    assert body["value_encoding"] == "base64" and base64.b64decode(body["value"]) == raw
    body = orjson.loads(dlq_value(Rejection("oversized", "x"), topic="ev", partition=0, offset=1, timestamp_ms=1,
                                  value=b"a" * 100, max_value_bytes=10))
    assert body["value"] == "a" * 10 and body["value_truncated"] is True and body["value_bytes"] == 100


def _check(out: object) -> None:
    assert isinstance(out, (Event, Rejection)), f"decode returned {out!r}"
    if isinstance(out, Rejection):
        assert out.reason in REASONS
    else:
        assert out.user_id and out.event_id and len(out.user_id) <= MAX_USER_ID_CHARS
        assert MIN_EVENT_MS <= out.ts_ms <= NOW_MS + 3_600_000
        assert out.amount >= 0 and out.amount == out.amount


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _check(Decoder().decode(raw, NOW_MS))


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_field_values = st.one_of(
    _json,
    st.integers(min_value=MIN_EVENT_MS - 10, max_value=NOW_MS + 4_000_000),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(timezone.utc)).map(
        lambda d: d.isoformat()
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["event_id", "user_id", "type", "ts", "amount", "properties", "extra"]), _field_values, max_size=7
    )
)
def test_fuzz_arbitrary_json_objects_never_raise(obj: dict[str, object]) -> None:
    try:
        raw = orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits cannot be encoded, so cannot arrive either
        return
    _check(Decoder().decode(raw, NOW_MS))


@settings(max_examples=200, deadline=None)
@given(_json)
def test_fuzz_arbitrary_json_values_never_raise(value: object) -> None:
    try:
        raw = orjson.dumps(value)
    except TypeError:
        return
    _check(Decoder().decode(raw, NOW_MS))


SUB = {**GOOD, "type": "subscription", "status": "active", "plan": "Pro", "mrr": 49.99}


def test_subscription_event_carries_exact_cents_account_and_trial_end() -> None:
    from models.subscription import Subscription

    ev = decode({**SUB, "account_id": "acme", "status": "trial", "trial_ends": "2026-01-15T00:00:00Z"})
    assert isinstance(ev, Event) and (ev.type, ev.account_id, ev.account) == ("subscription", "acme", "acme")
    assert ev.subscription == Subscription("trial", "Pro", 4999, 1_768_435_200_000)
    cancelled = decode({**SUB, "status": "cancelled", "mrr": 0})
    assert isinstance(cancelled, Event) and cancelled.subscription == Subscription("cancelled", "Pro", 0)
    seated = decode({**SUB, "period_end": 1_768_435_200_000, "seats": 26})
    assert isinstance(seated, Event) and seated.subscription == Subscription("active", "Pro", 4999, 0, 1_768_435_200_000, 26)
    plain = decode({**GOOD, "status": "junk"})  # subscription fields on other events: ignored
    assert isinstance(plain, Event) and plain.subscription is None and plain.account == "u-1"


@pytest.mark.parametrize(
    "change",
    [
        {"status": "frozen"},
        {"status": None},
        {"mrr": "49.99"},  # a number, like amount
        {"mrr": -1},
        {"mrr": 9.999},  # fractions of a cent
        {"mrr": True},
        {"mrr": 1e300},
        {"status": "cancelled", "mrr": 10},  # cancelled means mrr 0
        {"plan": 7},
        {"plan": "x" * 65},
        {"trial_ends": "tomorrow"},
        {"trial_ends": [1]},
        {"trial_ends": 1e300},  # would not fit the account state's 8-byte field
        {"seats": 0},
        {"seats": 2.5},
        {"seats": "26"},  # a number, like mrr
        {"seats": True},
        {"seats": 2**32},  # would not fit the account state's 4 bytes
    ],
)
def test_bad_subscription_fields_go_to_the_dlq(change: dict[str, object]) -> None:
    assert reason({**SUB, **change}) == "bad_subscription"


@pytest.mark.parametrize("status", ["active", "past_due"])
@pytest.mark.parametrize("mrr", ["missing", None])  # "" is text: refused as such (a str)
def test_a_statement_in_force_without_its_mrr_is_refused_not_taken_as_free(status: str, mrr: object) -> None:
    """QA pass 9 L3: ``{"status": "active", "plan": "Pro"}`` (no mrr, null, or "") was applied as a
    free plan, mrr 0, with no DLQ record: a producer that forgot the field lost the revenue
    silently. Only a cancelled statement or a trial (review 17 F7) may leave it out. Fails on the
    old code."""
    obj = {k: v for k, v in SUB.items() if k != "mrr"} if mrr == "missing" else {**SUB, "mrr": mrr}
    rej = decode({**obj, "status": status})
    assert isinstance(rej, Rejection) and rej.reason == "bad_subscription", rej
    assert rej.detail.startswith(f"mrr is missing: a{'n' if status == 'active' else ''} {status} subscription states its mrr"), rej
    for cancelled in ({k: v for k, v in SUB.items() if k != "mrr"}, {**SUB, "mrr": None}):
        ev = decode({**cancelled, "status": "cancelled"})
        assert isinstance(ev, Event) and ev.subscription is not None and ev.subscription.mrr_cents == 0


@pytest.mark.parametrize("mrr", ["missing", None])
def test_a_trial_without_its_mrr_is_accepted_at_0(mrr: object) -> None:
    """Review 17 F7: a ``trial`` statement without ``mrr`` was dead-lettered (and the account's
    trial with it: stage, trial rule, reminders), though a trial's mrr never counts. It is taken
    as 0. Fails on the old code."""
    obj = {k: v for k, v in SUB.items() if k != "mrr"} if mrr == "missing" else {**SUB, "mrr": mrr}
    ev = decode({**obj, "status": "trial"})
    assert isinstance(ev, Event) and ev.subscription is not None, ev
    assert (ev.subscription.status, ev.subscription.mrr_cents) == ("trial", 0)


def test_stripes_canceled_spelling_is_cancelled_and_a_refused_type_reads_as_english() -> None:
    """QA pass 9 L5: Stripe's ``canceled`` was refused ("not one of ..."); a plan sent as a number
    was "subscription plan is a int". Fails on the old code."""
    from models.subscription import Subscription

    ev = decode({**SUB, "status": "canceled", "mrr": 0})
    assert isinstance(ev, Event) and ev.subscription == Subscription("cancelled", "Pro", 0)
    for obj, detail in (({**SUB, "plan": 7}, "subscription plan is an int, expected text"),
                        ({**GOOD, "user_id": 7}, "user_id is an int, expected a string"),
                        ({**SUB, "mrr": "49.99"}, "mrr is a str, expected a number")):
        rej = decode(obj)
        assert isinstance(rej, Rejection) and rej.detail == detail, rej


PERIOD_END_MS = 1_769_904_000_000  # 2026-02-01T00:00:00Z


@pytest.mark.parametrize("period_end", [PERIOD_END_MS, str(PERIOD_END_MS), float(PERIOD_END_MS), "2026-02-01T00:00:00Z",
                                        "2026-02-01T01:00:00+01:00", "2026-02-01T00:00:00"])
def test_a_period_end_in_either_ts_form_is_the_end_of_the_period_paid_for(period_end: object) -> None:
    from models.subscription import Subscription

    ev = decode({**SUB, "period_end": period_end})
    assert isinstance(ev, Event) and ev.subscription == Subscription("active", "Pro", 4999, 0, PERIOD_END_MS)


def test_a_missing_or_null_period_end_is_not_given() -> None:
    for obj in (SUB, {**SUB, "period_end": None}):
        ev = decode(obj)
        assert isinstance(ev, Event) and ev.subscription is not None and ev.subscription.period_end_ms == 0
    plain = decode({**GOOD, "period_end": "junk"})  # subscription fields on other events: ignored
    assert isinstance(plain, Event) and plain.subscription is None


@pytest.mark.parametrize("period_end, detail", [
    ("next month", "period_end 'next month' is neither ISO-8601 nor epoch milliseconds"),
    ("", "empty period_end"),
    ([1], "period_end is a list"),
    (True, "period_end is a bool"),
    (-5, "period_end -5 ms is negative"),
    (1_769_904_000, "period_end 1769904000 ms is before 2000-01-01 (epoch seconds? send milliseconds)"),
    (2**63, "period_end 9223372036854775808 ms is after 9999-12-31"),
    ("10000-01-01", "period_end '10000-01-01' is neither ISO-8601 nor epoch milliseconds"),
])
def test_a_bad_period_end_is_a_bad_subscription_naming_the_field(period_end: object, detail: str) -> None:
    rej = decode({**SUB, "period_end": period_end})
    assert isinstance(rej, Rejection) and rej.reason == "bad_subscription" and rej.detail.startswith(detail), rej


def test_a_bad_period_end_reaches_the_dead_letter_records_with_its_reason_and_count() -> None:
    """The worker's decode phase (``streams.worker.phases``): counted by reason (the metric's label)
    and one DLQ record carrying reason, detail and the original value."""
    from streams.worker.clock import PartitionClock
    from streams.worker.phases import decode_batch

    class Rec:
        def __init__(self, offset: int, value: bytes) -> None:
            self.offset, self.key, self.value, self.timestamp = offset, b"u-1", value, 0

    bad = orjson.dumps({**SUB, "event_id": "e-2", "period_end": "soon"})
    good = orjson.dumps({**SUB, "period_end": PERIOD_END_MS})
    out = decode_batch({0: [Rec(7, good), Rec(8, bad)]}, {0: PartitionClock(3_600_000)}, Decoder(), NOW_MS, topic="ev",
                       max_dlq_value_bytes=1024)
    assert out.rejected == {"bad_subscription": 1} and len(out.dlq) == 1
    dead = orjson.loads(out.dlq[0][1])
    assert (dead["reason"], dead["offset"], dead["value"]) == ("bad_subscription", 8, bad.decode())
    assert dead["detail"] == "period_end 'soon' is neither ISO-8601 nor epoch milliseconds"
    assert [e.subscription.period_end_ms for e in out.users["u-1"].events] == [PERIOD_END_MS]  # type: ignore[union-attr]


@pytest.mark.parametrize("account_id", [5, ["a"], "a" * (MAX_USER_ID_CHARS + 1)])
def test_bad_account_id_is_a_bad_type(account_id: object) -> None:
    assert reason({**GOOD, "account_id": account_id}) == "bad_type"


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(0, 10**14), status=st.sampled_from(["trial", "active", "past_due"]), ends=st.integers(0, 2**41),
       period_end=st.one_of(st.just(0), st.integers(MIN_EVENT_MS, 2**41)))
def test_a_published_subscription_decodes_to_the_same_event(cents: int, status: str, ends: int, period_end: int) -> None:
    """publisher.event_value writes mrr as cents/100; the codec reads the same cents back, exactly,
    and the trial and period ends when set."""
    from models.subscription import Subscription
    from streams.publisher import event_value

    ev = Event("u-1", TS_MS, "subscription", "e-1", 0.0, "acme", Subscription(status, "Pro", cents, ends, period_end))  # type: ignore[arg-type]
    assert decode(event_value(ev)) == ev


def test_a_missing_event_id_is_derived_from_the_content() -> None:
    no_id = {k: v for k, v in GOOD.items() if k != "event_id"}
    d = Decoder()
    first = d.decode(orjson.dumps(no_id), NOW_MS)
    assert isinstance(first, Event) and first.event_id.startswith("d-") and d.derived_ids == 1
    # the same event sent again, with the time as text, keys in another order and "event_id": null
    again = d.decode(orjson.dumps({"ts": "2026-01-01T00:00:00Z", "event_id": None, "type": "click", "user_id": "u-1"}), NOW_MS)
    assert isinstance(again, Event) and again.event_id == first.event_id, "a re-sent event keeps its id"
    for change in ({"ts": TS_MS + 1}, {"user_id": "u-2"}, {"type": "view"}, {"properties": {"page": "/"}}):
        other = d.decode(orjson.dumps({**no_id, **change}), NOW_MS)
        assert isinstance(other, Event) and other.event_id != first.event_id, change
    assert decode(GOOD).event_id == "e-1", "a given id is kept as sent"  # type: ignore[union-attr]


# A batch's values: events good and bad, other JSON, and fragments that are not one JSON text but
# may join with their neighbours into a valid array (``1,2`` + ``[3`` + ``4]``).
_FRAGMENTS = [b"1,2", b"[3", b"4]", b'{"a":1},{"b":2}', b'{"k":"}', b'{"}', b'{"k":[{}', b"{}]}", b"", b" ", b",",
              b'"', b"]", b"[", b"\xff", b"\xef\xbb\xbf{}", b'{"user_id":"u-1",', b'"type":"click","ts":1}', b"null"]
_batch_value = st.one_of(
    st.sampled_from(_FRAGMENTS),
    st.none(),  # a tombstone
    st.binary(max_size=20),
    st.builds(lambda obj: orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS),
              st.dictionaries(st.sampled_from(["event_id", "user_id", "type", "ts", "amount", "account_id"]),
                              st.sampled_from(["e-1", "u-1", "click", "Unknown_Kind", TS_MS, 1.5, -1, None, ""]), max_size=6)),
    st.builds(lambda change: orjson.dumps({**GOOD, **change}), st.fixed_dictionaries({}, optional={
        "event_id": st.sampled_from([None, "e-2", ""]), "type": st.sampled_from(["view", "Sign Up", "other"]),
        "ts": st.integers(MIN_EVENT_MS - 10, NOW_MS + 4_000_000), "amount": st.floats(-1, 10)})),
    st.builds(lambda n: b'{"user_id":"u-1","type":"view","ts":1767225600000,"pad":"' + b"x" * n + b'"}', st.integers(0, 200)),
)


# Runs of values that join into one element more, or one fewer, than they are: together they keep
# a batch's count while shifting every value after them.
_SPLICES = [[b"1,2"], [b'{"a":1},{"b":2}'], [b"[3", b"4]"], [b'{"k":"}', b'{"}'], [b'{"k":[{}', b"{}]}"], [orjson.dumps(GOOD)]]
_spliced = st.lists(st.sampled_from(_SPLICES), max_size=6).map(lambda runs: [v for run in runs for v in run])


@settings(max_examples=300, deadline=None)
@given(st.lists(_batch_value, max_size=12) | _spliced)
def test_a_batch_decodes_as_its_records_one_by_one(values: list[bytes | None]) -> None:
    """One orjson call per batch gives what one call per record gives: the same events, the same
    rejection (reason and detail) for each bad record in its place, the same counts."""
    one, many = Decoder(max_event_bytes=200), Decoder(max_event_bytes=200)
    assert many.decode_many(values, NOW_MS) == [one.decode(v, NOW_MS) for v in values]
    assert (many.unknown_types, many.derived_ids) == (one.unknown_types, one.derived_ids)
    longer = values * (PARSE_CHUNK // 5)  # over a chunk: parsed in several calls
    assert many.decode_many(longer, NOW_MS) == [one.decode(v, NOW_MS) for v in longer]
    assert (many.unknown_types, many.derived_ids) == (one.unknown_types, one.derived_ids)


def test_fragments_that_join_into_a_valid_array_are_read_one_by_one() -> None:
    """The plain join of ``1,2``, ``[3`` and ``4]`` parses as three values: not taken as theirs."""
    from streams.worker.codec import parse_many

    shifted = [b"1,2", b"[3", b"4]"]
    assert orjson.loads(b"[" + b",".join(shifted) + b"]") == [1, 2, [3, 4]]
    assert parse_many(shifted) is None
    assert [r.reason for r in Decoder().decode_many(shifted, NOW_MS)] == ["malformed_json"] * 3  # type: ignore[union-attr]
    assert parse_many([b'{"a":1}', b"2"]) == [{"a": 1}, 2]
