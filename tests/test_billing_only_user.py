"""A user whose events so far are billing statements alone (an unused trial's holder) is no user
yet (models.state.tracked; QA 2026-12, #1): ``churnwatch score``, the console's user page (API and
HTML) and the backtest all say so, where they scored "silent since 1970" ("no return for 20574
days after 0 active days", stage churned, temperature 78)."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from models.state import UserState, period_end_day
from streams.cli import main
from streams.console.app import create_app
from streams.settings import Settings
from streams.worker.keys import locate
from streams.worker.store import BucketWrite, StateWrite, Store

T0_S = 1_767_225_600  # 2026-01-01
DAY_S = 86_400
SAID = ("user 'trial-holder' has no activity yet: only billing statements (subscription events), which count in its "
        "account's revenue, not as use of the product; it is scored from its first activity")


@pytest.fixture()
def store_with_trial_holder(redis_url: str) -> Settings:
    """A store as a worker leaves it: "trial-holder" with a record its subscription statement made
    (a period end, no events) and "dana", a user of the product; the topic's progress."""
    settings = Settings(redis_url=redis_url)

    async def build() -> None:
        store = Store(settings)
        await store.connect()
        try:
            field = f"{settings.topic_events}:0"
            billing = UserState(period_end_day=period_end_day((T0_S + 30 * DAY_S) * 1000))
            dana = UserState(first_seen_s=T0_S - 9 * DAY_S, last_seen_s=T0_S, n_events=12, active_days=8, act_7d=3.0,
                             act_28d=12.0, act_90d=12.0, gap_ewma_days=1.2)
            writes = []
            for user, st in (("trial-holder", billing), ("dana", dana)):
                b, g = locate(user, store.buckets, store.groups)
                writes.append(BucketWrite(b, [(field, "", "0")], [StateWrite(g, user, st.to_bytes(), field, 0, None)], {}))
            for i, w in enumerate(writes):
                assert await store.write([w], f"w:{i}") == []
            await store.write_progress(settings.topic_events, {0: (0, T0_S * 1000)})
        finally:
            await store.close()

    asyncio.run(build())
    return settings


def test_churnwatch_score_says_no_activity_yet(store_with_trial_holder: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis-url", store_with_trial_holder.redis_url, "score", "trial-holder"]) == 2
    assert capsys.readouterr().err == f"churnwatch score: error: {SAID}\n"
    assert main(["--redis-url", store_with_trial_holder.redis_url, "score", "dana", "--json"]) == 0, "a user of the product is scored"


def test_the_console_user_page_says_no_activity_yet(store_with_trial_holder: Settings) -> None:
    with TestClient(create_app(store_with_trial_holder), raise_server_exceptions=False) as client:
        api: Any = client.get("/api/v1/users/trial-holder")
        page = client.get("/users/trial-holder")
        spec = client.get("/openapi.json").json()
        assert client.get("/api/v1/users/dana").status_code == 200
    assert api.status_code == 404, api.text
    assert api.json()["error"] == {"status": 404, "code": "no_activity", "message": SAID}
    assert page.status_code == 404 and "No activity yet" in page.text and "20574" not in page.text
    assert "no_activity" in spec["paths"]["/api/v1/users/{user_id}"]["get"]["responses"]["404"]["description"]


def test_the_backtest_writes_no_row_until_the_first_activity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The trial holder's statements (trial, then cancelled) give no row, nor do they count as a
    user seen; once it is active it is scored, first seen at its activity."""
    events = tmp_path / "events.csv"
    rows = [("dana", "2026-01-02T10:00:00Z", "view", "", "", "", "", "", "", ""),
            ("dana", "2026-01-03T10:00:00Z", "view", "", "", "", "", "", "", ""),
            ("trial-holder", "2026-01-02T09:00:00Z", "subscription", "", "acme", "trial", "Pro", "49.99", "2026-01-16T09:00:00Z", ""),
            ("trial-holder", "2026-01-16T09:00:00Z", "subscription", "", "acme", "cancelled", "Pro", "0", "", ""),
            ("late-user", "2026-01-02T09:00:00Z", "subscription", "", "initech", "active", "Pro", "49.99", "", "2026-02-02T09:00:00Z"),
            ("late-user", "2026-01-20T09:00:00Z", "view", "", "initech", "", "", "", "", "")]
    with open(events, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type", "amount", "account_id", "status", "plan", "mrr", "trial_ends", "period_end"))
        w.writerows(rows)
    out = tmp_path / "scores.csv"
    assert main(["backtest", "--events", str(events), "--as-of", "2026-01-10,2026-01-25", "--out", str(out), "--no-progress",
                 "--jobs", "1"]) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        scored = [(r["user_id"], r["as_of"], r["stage"]) for r in csv.DictReader(fh)]
    assert scored == [("dana", "2026-01-10", "new"), ("dana", "2026-01-25", "dormant"), ("late-user", "2026-01-25", "new")]
    assert capsys.readouterr().out.startswith("backtest: 6 events, 2 users, 2 as-of dates -> 3 rows")


def test_a_user_with_only_a_cancellation_expires_like_any_churned_user() -> None:
    """A cancellation alone (no activity: ``n_events`` 0) is a user (models.state.tracked: it said
    it is leaving), churned from the cancellation on. No review runs for it afterwards (the
    engine's due reviews need activity), yet it is not kept forever: its one review scheduled the
    expiry (``next_review_s``, the due index's time) and ``advance`` expires it there as it does a
    user who was active before cancelling; the worker and the backtest then drop its state."""
    from models.engine import advance
    from models.events import Event
    from models.model import load_model
    from models.state import STAGES, tracked
    from models.step import advance_stored

    model, t0_ms = load_model(), T0_S * 1000
    only = advance("c", None, [Event("c", t0_ms, "cancel", "x")], t0_ms + 1, model).state
    used = advance("u", None, [Event("u", t0_ms - 1000, "view", "v"), Event("u", t0_ms, "cancel", "x")], t0_ms + 1, model).state
    assert only.n_events == 0 and tracked(only) and STAGES[only.stage] == "churned" and only.stage_since_s == T0_S
    expiry_s = T0_S + int(model.retention_days * DAY_S)
    assert only.next_review_s == used.next_review_s == expiry_s, "due at its expiry, as a user who used the product"
    from models.scoring import score
    assert score(only, T0_S + 5 * DAY_S, model).reasons == ("cancelled 5 days ago",), \
        "no use to tell (it said 'active on a single day so far', 'uses 0 kinds of activity')"
    for state in (only, used):
        before = advance_stored("c", state.to_bytes(), [], expiry_s * 1000 - 1000, True, model, False, 0)
        at = advance_stored("c", state.to_bytes(), [], expiry_s * 1000 + 1, True, model, False, 0)
        assert (before[1] is not None, before[9]) == (True, False), "kept until its expiry"
        assert (at[1], at[9]) == (None, True), "expired at the due time: its state goes"
