"""A history file that starts after its users signed up is said (QA10 F16).

churnwatch has no signup field: a user's first event is their first day. An export of "the last
N months" made every existing user new on the file's first day (day-one at-risk alerts for 83% of
users, tenure reasons), and nothing warned. ``backtest``, ``train`` (``--events`` and
``--from-topic``) and ``publish`` now say it in one line when a large share of the history's users
first appear in its first 24 hours, from the events they already read
(streams.offline.late_start).
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


def _topic_warnings(out: str) -> list[str]:
    return [line for line in out.splitlines() if "probably starts after they signed up" in line]


@pytest.mark.parametrize("cut", [True, False])
def test_publish_and_train_from_the_topic_warn_on_a_cut_history_and_not_on_a_whole_one(
        kafka_bootstrap: str, redis_url: str, unique_name: str, tmp_path: Path, cut: bool,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``publish`` reads the file it sends, and ``train --from-topic`` the history the topic retains
    (which starts late as well when a cut export was published, or its start is past retention): the
    same line, from the same function, through the real broker; nothing for a whole history."""
    events, n = _cut_export(tmp_path) if cut else (_whole_history(tmp_path), 0)
    topic = f"events-{unique_name}"
    monkeypatch.setenv("CHURNWATCH_TOPIC_EVENTS", topic)
    env = ["--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url]
    assert main([*env, "publish", "--file", str(events)]) == 0
    published = _topic_warnings(capsys.readouterr().out)
    assert main([*env, "train", "--from-topic", *_TRAIN, "--out", str(tmp_path / "m.json")]) == 0
    trained = _topic_warnings(capsys.readouterr().out)
    if not cut:
        assert published == trained == []
        return
    first = format_day_or_time(START_MS + 9 * HOUR_MS)
    # publish cannot tell a cut export from the next part of a history the topic holds (QA16 F9): it says so
    assert len(published) == 1 and published[0].startswith(
        f"WARNING: {n} of {USERS} users ({n / USERS:.0%}) have their first event within 24 hours of the file's first event "
        f"({first}): unless the events topic already holds their earlier events (a history published in parts), the "
        "export probably starts after they signed up; they will all look new"), published
    assert trained == [f"WARNING: {n} of {USERS} users ({n / USERS:.0%}) have their first event within 24 hours of the "
                       f"topic's first retained event ({first}): the retained history probably starts after they signed "
                       f"up (a history published cut, or its start past the topic's retention); they will all look new "
                       f"(stage new, day-one at-risk alerts, reasons such as \"active on a single day so far\"): their tenure "
                       f"counts from the topic's first retained event, and churnwatch has no sign-up date to correct it (no "
                       f"field or role; a back-dated sign-up event reads as one visit, a lapse and a return); train on an "
                       f"export of each user's history from their first activity (--events FILE; see docs/OPERATE.md, "
                       f"\"Onboarding a product's history\")"], trained


def test_the_file_check_counts_users_first_seen_on_the_first_day_without_billing_statements(tmp_path: Path) -> None:
    """``publish``'s check counts the users as ``train`` does: a holder of billing statements only
    is no user, and a statement is no first activity; any order of rows."""
    from streams.publisher import check_file
    from streams.settings import Settings

    path = tmp_path / "e.csv"
    rows = [f"u{i},{START_MS + 40 * DAY_MS - i * HOUR_MS},view" for i in range(3)]  # later rows first
    rows += [f"u{i},{START_MS + i * HOUR_MS},view" for i in range(3)] + [f"late,{START_MS + 2 * DAY_MS},view"]
    rows += [f"late,{START_MS},subscription,,acme,active,Pro,10", f"billing,{START_MS},subscription,,acme,active,Pro,10"]
    path.write_text("user_id,ts,event_type,amount,account_id,status,plan,mrr\n" + "\n".join(rows) + "\n")
    order = check_file(path, Settings())
    a = order.arrivals
    assert (a.users, a.first_day, a.start_ms, a.end_ms, order.end_ms) == (4, 3, START_MS, START_MS + 40 * DAY_MS, START_MS + 40 * DAY_MS)


WEEKLY_MS = START_MS - 60 * DAY_MS  # 2026-08-02: the weekly files end before the wall clock (2026-12)


def _weekly(path: Path, predating: int) -> tuple[Path, int, int]:
    """Users who come about once a week, each on their own weekday, until day 84 (a quarter leave
    earlier): ``predating`` of them
    already users when the file starts (their first visit of it falls in its first week, a seventh of
    them on its first day), and 90 who sign up over the file's first 72 days, one every 0.8 days.
    Returns the file, its users and how many first appear in its first week."""
    starts = [p % 7 for p in range(predating)] + [k * 0.8 for k in range(90)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type"))
        for i, day in enumerate(starts):
            weeks = int((84 - day) // 7) + 1 if i % 4 else 2 + i % 5  # a quarter leave after 2-6 weeks
            for week in range(weeks):
                if week and (i + week) % 5 == 0:  # and each skips a week now and then
                    continue
                w.writerow((f"w{i:03d}", WEEKLY_MS + int((day + 7 * week) * DAY_MS) + (10 + i % 9) * HOUR_MS, "view"))
    return path, len(starts), sum(1 for d in starts if d < 7)


def test_a_cut_export_of_weekly_users_is_said_by_its_first_week(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """QA23a F6: 17% of a fitness app's users predated its export, but came a few times a week: 2.6%
    of them on its first day, far under the day rule's 30%, and no command said anything. The first
    week's new users beyond a usual week's now speak (streams.offline.late_start): here 60 weekly users
    already there (about a seventh of them on the first day) and 9 real sign-ups in the first week against 8.75 a
    usual week (8.75 sign-ups a week). The line says what it does to tenure and that no sign-up date can
    correct it."""
    from streams.publisher import check_file
    from streams.settings import Settings

    events, users, week = _weekly(tmp_path / "weekly.csv", 60)
    order = check_file(events, Settings())
    a = order.arrivals
    assert a is not None and (a.users, a.first_week) == (users, week) == (150, 69)
    assert a.first_day < 0.3 * users and a.usual_week is not None and 8 <= a.usual_week <= 10  # 8.75 sign-ups a week
    line = order.late_start_line()
    first = format_day_or_time(WEEKLY_MS + 10 * HOUR_MS)  # user 0's first visit
    excess = week - a.usual_week
    head = f"{week} of {users} users ({week / users:.0%}) have their first event within 7 days of the file's first event ({first}), "
    said = (f"{head}{excess:.0f} ({excess / users:.0%}) more than a usual week's new users ({a.usual_week:.0f}, the median "
            f"from the fifth week on): ")
    assert line is not None and line.startswith(said + "unless the events topic already holds their earlier events"), line
    assert "their tenure counts from the file's first event, and churnwatch has no sign-up date to correct it" in line
    with caplog.at_level(logging.WARNING):
        assert main(["backtest", "--events", str(events), "--as-of", "2026-09-20/2026-10-25/7d", "--out", str(tmp_path / "s.csv"),
                     "--no-progress"]) == 0
    # the backtest counts the users seen before its last as-of date, and its weeks up to it: the same head
    assert len([r.getMessage() for r in caplog.records if r.getMessage().startswith(head)]) == 1
    assert main(["train", "--events", str(events), "--churn-after", "21d", "--horizon", "14d", "--as-of",
                 "2026-09-06/2026-10-11/7d", "--alert-share", "0.2", "--out", str(tmp_path / "m.json")]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING: " + head)]) == 1


def test_weekly_users_who_sign_up_over_the_file_are_not_said(tmp_path: Path) -> None:
    """The same product exported from each user's first activity (no user before the file): its
    first week holds a usual week's sign-ups, and nothing is said."""
    from streams.publisher import check_file
    from streams.settings import Settings

    events, users, week = _weekly(tmp_path / "whole.csv", 0)
    order = check_file(events, Settings())
    assert order.arrivals is not None and (order.arrivals.users, order.arrivals.first_week) == (users, week) == (90, 9)
    assert order.late_start_line() is None
