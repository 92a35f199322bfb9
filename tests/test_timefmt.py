"""``streams.timefmt``: one reading of event time for the stream, the CSV history and the commands."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.offline.history import read_events_csv
from streams.timefmt import _datetime_iso_ms, _fast_iso_ms, format_ts, parse_ts_ms, ts_reader
from streams.worker.codec import Decoder

# From 2000-01-02: an offset up to +14:00 on 2000-01-01 is still before MIN_EVENT_MS (the stream says too_old).
_TIMES = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1)).map(lambda d: d.replace(tzinfo=timezone.utc))
_NOW_MS = 4_200_000_000_000  # after every generated time: nothing is "future"


@settings(max_examples=300, deadline=None)
@given(_TIMES, st.booleans())
def test_fast_iso_agrees_with_the_general_parser(when: datetime, millis: bool) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond // 1000:03d}" if millis else "") + "Z"
    assert _fast_iso_ms(text) == _datetime_iso_ms(text)


@pytest.mark.parametrize("text", [
    "2026-01-02T03:04:05+00:00", "2026-01-02 03:04:05Z", "2026-01-02T03:04:05.1Z", "2026-01-02T24:00:00Z",
    "2026-02-30T00:00:00Z", "2026-01-02T0a:04:05Z", "2026-01-02T03:04:05.12xZ", " 2026-01-02T03:04:05Z",
    "2026-01-02T03:04:5Z", "1767323045000", "2026-01-02T०३:04:05Z",
])
def test_other_shapes_are_left_to_the_general_parser(text: str) -> None:
    assert _fast_iso_ms(text) is None


@settings(max_examples=200, deadline=None)
@given(_TIMES, st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", ""]), st.integers(0, 6))
def test_stream_and_history_read_the_same_millisecond(tmp_path_factory: pytest.TempPathFactory, when: datetime,
                                                      zone: str, digits: int) -> None:
    """The decoder (stream) and the CSV reader (backtest, train) agree on every ISO shape, fractions
    of a millisecond included (``...:26.1236Z`` is 123 ms in both: floored)."""
    frac = f".{when.microsecond:06d}"[: digits + 1] if digits else ""
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + frac + zone
    csv_path = tmp_path_factory.mktemp("t") / "e.csv"
    csv_path.write_text(f"user_id,ts,event_type\nu1,{text},view\n")
    from_csv = read_events_csv(csv_path)[0].ts_ms
    value = orjson.dumps({"event_id": "e1", "user_id": "u1", "type": "view", "ts": text})
    from_stream = Decoder().decode(value, _NOW_MS).ts_ms  # type: ignore[union-attr]
    assert from_csv == from_stream == parse_ts_ms(text)


def test_a_fraction_of_a_millisecond_is_floored_everywhere(tmp_path: Path) -> None:
    text = "2026-01-02T03:04:26.1236Z"
    assert parse_ts_ms(text) % 1000 == 123
    assert parse_ts_ms("2026-01-02T03:04:26.001Z") % 1000 == 1  # no float detour: never 0.999...


@settings(max_examples=200, deadline=None)
@given(st.integers(946_684_800_000, 4_102_444_800_000))
def test_format_reads_back_exactly(ms: int) -> None:
    assert parse_ts_ms(format_ts(ms)) == ms


_READ = ts_reader()  # shared by every example below: its hour cache fills as a file's would
_NOISE = st.sampled_from(list("0123456789:.-TZ+ x٣") + ["", "00", "60", "24", "99"])


@st.composite
def _near_iso(draw: st.DrawFn) -> str:
    """Timestamps as history files write them, and the same with a piece swapped for a near miss."""
    when = draw(_TIMES)
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + draw(st.sampled_from(["", f".{when.microsecond // 1000:03d}"])) + "Z"
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(_NOISE) + text[at + 1:]
    return text


@settings(max_examples=300, deadline=None)
@given(st.one_of(_near_iso(), st.integers(0, 10**13).map(str), st.text(max_size=26)))
def test_the_file_reader_reads_every_text_as_the_parser_does(text: str) -> None:
    """``ts_reader`` (the CSV reader's cached path) gives parse_ts_ms's millisecond or its error."""
    try:
        expected: int | str = parse_ts_ms(text)
    except ValueError as exc:
        expected = f"ValueError: {exc}"
    for _ in range(2):  # the second time from the hour cache
        try:
            got: int | str = _READ(text)
        except ValueError as exc:
            got = f"ValueError: {exc}"
        assert got == expected


@pytest.mark.parametrize("text", ["2026-01-02t03:04:05z", "2026-01-02T03:04:05.123z", "2026-01-02t03:04:05.123Z"])
def test_rfc3339_lower_case_t_and_z_are_read_everywhere(tmp_path: Path, text: str) -> None:
    """RFC 3339 section 5.6 (NOTE) allows ``t`` and ``z``; a lower-case ``z`` went to the DLQ as
    ``bad_timestamp`` (QA5 L5). The stream, the CSV reader and its fast reader agree with ``T``/``Z``."""
    expected = parse_ts_ms(text.upper())
    assert parse_ts_ms(text) == ts_reader()(text) == expected
    value = orjson.dumps({"event_id": "e1", "user_id": "u1", "type": "view", "ts": text})
    assert Decoder().decode(value, _NOW_MS).ts_ms == expected  # type: ignore[union-attr]
    csv_path = tmp_path / "e.csv"
    csv_path.write_text(f"user_id,ts,event_type\nu1,{text},view\n")
    assert read_events_csv(csv_path)[0].ts_ms == expected


@pytest.mark.parametrize("text", ["١٧٩٣٣٢٩٢٠٠٠٠٠", "１７９３３２９２００００００", "179332920000٠", "١٧٩٣٣٢٩٢٠٠٠٠٠.5"])
def test_only_ascii_digits_are_epoch_milliseconds(tmp_path: Path, text: str) -> None:
    """QA7 L3: Arabic-Indic (or full-width) digits were read as epoch milliseconds (``str.isdigit``
    and ``int`` take any Unicode digit), while the contract says "a string of digits". The stream
    refuses them as ``bad_timestamp``, the history reader names the line, as for any unreadable time."""
    with pytest.raises(ValueError, match="neither ISO-8601 nor epoch milliseconds"):
        parse_ts_ms(text)
    with pytest.raises(ValueError):
        ts_reader()(text)
    value = orjson.dumps({"event_id": "e1", "user_id": "u1", "type": "view", "ts": text})
    assert Decoder().decode(value, _NOW_MS).reason == "bad_timestamp"  # type: ignore[union-attr]
    csv_path = tmp_path / "e.csv"
    csv_path.write_text(f"user_id,ts,event_type\nu1,{text},view\n", encoding="utf-8")
    with pytest.raises(ValueError, match="e.csv line 2"):
        read_events_csv(csv_path)
