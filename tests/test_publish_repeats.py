"""QA pass 15 F5: rows that repeat an earlier row's user, time and event id (a bulk action's rows
without an ``event_id`` column share the id derived from their content) are counted once by the
workers, ``backtest`` and ``train``; ``publish`` and the readers now say so in one line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streams.offline.history import read_events_csv
from streams.publisher import check_file
from streams.settings import Settings

ROWS = """user_id,ts,event_type,amount
admin,2026-03-02T10:00:00Z,seat_removed,
admin,2026-03-02T10:00:00Z,seat_removed,
admin,2026-03-02T10:00:00Z,seat_removed,
other,2026-03-02T10:00:00Z,seat_removed,
admin,2026-03-02T10:00:01Z,seat_removed,
admin,2026-03-03T09:00:00Z,view,
"""


def test_publish_counts_the_rows_the_workers_would_count_once(tmp_path: Path) -> None:
    f = tmp_path / "pm.csv"
    f.write_text(ROWS)
    order = check_file(f, Settings())
    assert (order.events, order.repeats) == (6, 2)  # the second and third admin rows at 10:00:00; not other's, not 10:00:01


def test_backtest_and_train_read_them_once_and_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "pm.csv"
    f.write_text(ROWS)
    caplog.set_level(logging.WARNING, logger="streams.offline.history")
    events = read_events_csv(f)
    assert [(e.user_id, e.type) for e in events].count(("admin", "seat_removed")) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "2 rows of pm.csv repeat an earlier row's user, time and event id (without an event_id column, the id derived "
        "from the row's content): counted once; if they are separate actions (seats removed at once), give each row its "
        "own event_id"]
