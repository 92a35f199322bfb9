"""``streams.offline.history``: reading history files (the time parsing itself: tests/test_timefmt.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.offline.history import read_events_csv

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
