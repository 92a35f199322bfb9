"""``churnwatch train``'s printed report, QA pass 14.

F6: a labels file that gives the *day* of the last visit (``churned_at`` at 00:00) has that day's
events after the churn time, so the rows of those users on every later date read as "not gone,
not churning within the horizon" with a risk near 1: QA's held-out table ended "1.00->0.00".
They are left out of the risk table and counted in one line (the fit does not move).
F2: the alert line's figures per user (share flagged at least once, of the non-churners too,
alerts per 1,000 user-months) and a WARNING when it flags more than half of the non-churners."""

from __future__ import annotations

import numpy as np

from models.events import Event
from models.model import ChurnModel
from streams.cli.train import alert_lines, left_line
from streams.offline.train import DAY_MS, alert_report, build_snapshots, train

START_MS = 1_767_225_600_000  # 2026-01-01
NOON_MS = DAY_MS // 2


def _visits(user: str, days: list[int]) -> list[Event]:
    return [Event(user, START_MS + d * DAY_MS + NOON_MS, "view", f"{user}-{d}") for d in days]


def test_a_date_only_churn_time_before_the_last_days_events_is_left() -> None:
    """Labelled churned on day 10 (00:00), last visit day 10 at noon: ``gone`` stays as fitted
    (0: an event after the churn time), ``left`` (a day's grace) says the user had left."""
    per_user = {"quit": _visits("quit", list(range(0, 11))), "stay": _visits("stay", list(range(0, 60)))}
    times = {"quit": [START_MS + 10 * DAY_MS]}
    snaps = build_snapshots(per_user, [START_MS + 20 * DAY_MS], 30 * DAY_MS, times, ChurnModel())
    got = {u: (g, l, y) for u, g, l, y in zip(snaps.users, snaps.gone, snaps.left, snaps.y)}
    assert got["quit"] == (0, 1, 0)
    assert got["stay"] == (0, 0, 0)


def _population() -> tuple[list[Event], dict[str, int]]:
    rng = np.random.default_rng(14)
    events: list[Event] = []
    labels: dict[str, int] = {}
    for i in range(160):
        user = f"u{i:03d}"
        last = 150 if i < 80 else int(rng.integers(35, 110))
        events += _visits(user, [d for d in range(0, last + 1) if rng.random() < 0.7] + [last])
        if last < 150:
            labels[user] = START_MS + last * DAY_MS  # the day, at 00:00: the day's visit comes after it
    return events, labels


def test_held_out_risk_table_leaves_out_users_already_gone_and_counts_them() -> None:
    events, labels = _population()
    model, report = train(events, labels_ms=labels, holdout=0.3)
    left = report["holdout_already_left"]
    assert left > 0
    held = report["holdout"]
    assert held["rows"] + left == report["snapshots"] - report["train_rows"]  # every held-out row: in the table or counted
    # no decile of users predicted gone (near 1) that never churns: QA's "1.00->0.00"
    assert not any(b["predicted"] > 0.9 and b["observed"] == 0.0 for b in held["reliability"])
    assert left_line(left).startswith(f"{left:,} held-out rows of users already gone by the labels")


def test_alert_report_per_user_and_the_warning_over_half_of_the_non_churners() -> None:
    users = ["a", "a", "b", "b", "c", "c"]
    dates = np.array([0, 7, 0, 7, 0, 7]) * DAY_MS
    risk = np.array([0.9, 0.9, 0.85, 0.1, 0.2, 0.95])
    y = np.array([0, 0, 0, 0, 1, 1])
    rows = np.ones(6, dtype=bool)
    r = alert_report(risk, y, rows, np.zeros(6, dtype=bool), users, 0.8, dates, 0.3)
    assert (r["users"], r["users_flagged"], r["non_churners"], r["non_churners_flagged"], r["alerts"]) == (3, 1.0, 2, 1.0, 3)
    assert r["alerts_per_1000_user_months"] == round(1000 * 3 / (6 * 7 / 30), 1)
    a = {"share": 0.1, "risk_enter": 0.8, "risk_exit": 0.3, **{f"holdout_{k}": v for k, v in r.items()}}
    lines = alert_lines(a)
    assert lines[2].startswith("per held-out user an alert could go to: 100.0% of 3 flagged at least once over 2 as-of dates "
                               "(100.0% of the 2 who do not churn); about 2142.9 at-risk alerts per 1,000 user-months")
    assert lines[3].startswith("WARNING: this alert line flags 100.0% of the held-out users who do not churn at least once over 2 "
                               "as-of dates (more than half; --alert-share is a share of users flagged in a month)")
    calm = alert_report(np.array([0.9, 0.1, 0.1, 0.1, 0.2, 0.95]), y, rows, np.zeros(6, dtype=bool), users, 0.8, dates, 0.3)
    assert calm["non_churners_flagged"] == 0.5
    assert not any(line.startswith("WARNING") for line in alert_lines({**a, **{f"holdout_{k}": v for k, v in calm.items()}}))
