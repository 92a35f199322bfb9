"""``streams.offline.history``: the fast reading of the common ISO shape agrees with the general parser."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.offline.history import _fast_iso_ms, parse_ts_ms, read_events_csv

_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(lambda d: d.replace(tzinfo=timezone.utc))


@settings(max_examples=300, deadline=None)
@given(_TIMES, st.booleans())
def test_fast_iso_agrees_with_the_general_parser(when: datetime, millis: bool) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond // 1000:03d}" if millis else "") + "Z"
    assert _fast_iso_ms(text, {}) == parse_ts_ms(text)


@pytest.mark.parametrize("text", [
    "2026-01-02T03:04:05+00:00", "2026-01-02 03:04:05Z", "2026-01-02T03:04:05.1Z", "2026-01-02T24:00:00Z",
    "2026-02-30T00:00:00Z", "2026-01-02T0a:04:05Z", "2026-01-02T03:04:05.12xZ", " 2026-01-02T03:04:05Z",
    "2026-01-02T03:04:5Z", "1767323045000", "2026-01-02T०३:04:05Z",
])
def test_other_shapes_are_left_to_the_general_parser(text: str) -> None:
    assert _fast_iso_ms(text, {}) is None


def test_rows_read_the_same_with_or_without_header_and_in_any_column_order(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("u1,2026-01-02T00:00:00.250Z,order,12.5\nu2,1767225600000,page_view,\nu1,2026-01-01T10:00:00+02:00,view\n")
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("amount,event_type,ts,user_id\n12.5,order,2026-01-02T00:00:00.250Z,u1\n,page_view,1767225600000,u2\n"
                        ",view,2026-01-01T10:00:00+02:00,u1\n")
    a = [(e.user_id, e.ts_ms, e.type, e.amount) for e in read_events_csv(plain)]
    b = [(e.user_id, e.ts_ms, e.type, e.amount) for e in read_events_csv(shuffled)]
    assert a == b == [("u2", 1767225600000, "view", 0.0), ("u1", 1767254400000, "view", 0.0),
                      ("u1", 1767312000250, "purchase", 12.5)]


def test_a_bad_amount_is_an_error_on_any_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,event_type,amount\nu1,2026-01-02T00:00:00Z,view,lots\n")
    with pytest.raises(ValueError, match="bad.csv line 2"):
        read_events_csv(bad)
