"""A history file that starts after its users signed up is said (QA10 F16).

churnwatch has no signup field: a user's first event is their first day. An export of "the last
N months" made every existing user new on the file's first day (day-one at-risk alerts for 83% of
users, tenure reasons), and nothing warned. ``backtest`` and ``train --events`` now say it in one
line when a large share of the file's users first appear in its first 24 hours, from the events
they already read (streams.offline.history.late_start_warning).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from streams.cli import main
from streams.timefmt import format_day_or_time

START_MS = 1_790_812_800_000  # 2026-10-01T00:00:00Z
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
USERS = 30


def _write(path: Path, first_day: dict[str, int]) -> Path:
    """The i-th user active daily from ``first_day[user]`` (days after START_MS) at 09:00 + i minutes,
    for 5 to 39 days (so that some leave and train has churners to learn from)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type"))
        for i, (user, day) in enumerate(first_day.items()):
            for d in range(day, day + 5 + (i * 7) % 35):
                w.writerow((user, START_MS + d * DAY_MS + 9 * HOUR_MS + i * 60_000, "view"))
    return path


def _cut_export(tmp_path: Path) -> tuple[Path, int]:
    """25 users already active when the export starts (all on its first day), 5 who sign up days 3 to 7."""
    first = {f"u{i:02d}": 0 for i in range(25)} | {f"u{i:02d}": i - 22 for i in range(25, USERS)}
    return _write(tmp_path / "cut.csv", first), 25


def _whole_history(tmp_path: Path) -> Path:
    """The same 30 users exported from their first activity: one signs up each day."""
    return _write(tmp_path / "whole.csv", {f"u{i:02d}": i for i in range(USERS)})


def _expected(n: int) -> str:
    return (f"{n} of {USERS} users ({n / USERS:.0%}) have their first event within 24 hours of the file's first event "
            f"({format_day_or_time(START_MS + 9 * HOUR_MS)}): the export probably starts after they signed up")


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "the export probably starts after" in r.getMessage()]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_backtest_warns_once_when_most_users_start_on_the_files_first_day(tmp_path: Path, jobs: str,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Two processes read two ranges of users: the line counts the users of both, once."""
    events, n = _cut_export(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert main(["backtest", "--events", str(events), "--as-of", "2026-10-08/2026-10-22/7d", "--out", str(tmp_path / "s.csv"),
                     "--jobs", jobs, "--no-progress"]) == 0
    said = _said(caplog)
    assert len(said) == 1 and said[0].startswith(_expected(n)), said
    assert "docs/OPERATE.md" in said[0]
    assert [r.levelname for r in caplog.records if r.getMessage() in said] == ["WARNING"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_backtest_says_nothing_of_a_history_from_each_users_first_activity(tmp_path: Path, jobs: str,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert main(["backtest", "--events", str(_whole_history(tmp_path)), "--as-of", "2026-10-08/2026-10-22/7d", "--out",
                     str(tmp_path / "s.csv"), "--jobs", jobs, "--no-progress"]) == 0
    assert _said(caplog) == []


_TRAIN = ["--churn-after", "7d", "--horizon", "7d", "--as-of", "2026-10-15/2026-11-12/7d", "--alert-share", "0.2"]


def test_train_warns_on_a_cut_export_and_not_on_a_whole_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events, n = _cut_export(tmp_path)
    assert main(["train", "--events", str(events), *_TRAIN, "--out", str(tmp_path / "cut.json")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "the export probably starts after" in line]
    assert len(lines) == 1 and lines[0].startswith("WARNING: " + _expected(n)), lines
    assert main(["train", "--events", str(_whole_history(tmp_path)), *_TRAIN, "--out", str(tmp_path / "whole.json")]) == 0
    assert "the export probably starts after" not in capsys.readouterr().out
