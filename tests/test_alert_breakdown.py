"""benchmarks.alert_breakdown judges episodes exactly as the backtest's metrics do."""

from __future__ import annotations

from benchmarks.alert_breakdown import FACETS, breakdown, episodes, replay_alerts, trigger
from models.model import load_model
from streams.offline.evaluate import Labels
from streams.offline.simulate import generate

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000


def test_episode_outcomes_add_up_to_the_backtest_figures() -> None:
    events, truth = generate(3, 150, T0_MS, 90)
    labels = Labels({t.user_id: t.churned_at_ms for t in truth if t.churned_at_ms is not None}, {t.user_id: t.persona for t in truth})
    dates = list(range(T0_MS + 21 * DAY_MS, T0_MS + 60 * DAY_MS + 1, 7 * DAY_MS))
    result, alerts, metrics = replay_alerts(events, dates, load_model(), labels, 30 * DAY_MS)
    eps = episodes(alerts, labels, dates[0], dates[-1], 30 * DAY_MS, result.data_end_ms)
    a = metrics["alerts"]
    assert a["episodes_opened_in_window"] == len(eps) > 10
    counts = {o: sum(1 for ep in eps if ep.outcome == o) for o in ("right", "wrong", "unknown", "after churn")}
    assert (counts["right"], counts["wrong"], counts["unknown"], counts["after churn"]) == (
        a["right"], a["wrong"], a["not_known_yet"], a["raised_after_churn"])
    for name, facet in FACETS.items():  # every facet splits the same episodes
        assert sum(int(row["episodes"]) for row in breakdown(eps, facet)) == len(eps), name  # type: ignore[call-overload]


def test_trigger_names_the_reason_kind() -> None:
    assert trigger("usual re-order every 30 days, none for 41 days") == "purchase overdue"
    assert trigger("usual iap_purchase every 9 days, none for 14 days") == "purchase overdue"
    assert trigger("uses 2 kinds of activity in 4 weeks") == "narrow use"
    assert trigger("something new") == "other"
