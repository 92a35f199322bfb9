"""How long a churned user's state is kept (models.engine.kept_days), and ``train --retention``.

QA17 F1: annual gift buyers (an order in early December, the next in November) turned churned in
the winter, were dropped 180 days later and came back "new": last year's spend gone, an at-risk
alert the next day (224 of 224). A customer (a purchase on record) is kept the model's
``customer_retention_days`` after the churn is reported (``train --retention``; 180 by default, as
a user who never bought: kept longer, a one-time buyer of long ago reads as alive to BG/NBD, the
CDNOW check); a shop with yearly buyers sets 400 days.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from models.engine import advance, kept_days
from models.events import Event
from models.model import DEFAULT_MODEL_PATH, ChurnModel, load_model
from models.state import DAY_S, STAGES, UserState
from streams.cli import main
from streams.cli.train import with_retention
from streams.offline.simulate import generate

T0_S = 1_764_662_400  # 2025-12-02 08:00 UTC, a gift order
WEEK_S = 7 * DAY_S
MODEL = load_model()
YEARLY = MODEL.with_(customer_retention_days=400.0)  # a shop with yearly buyers: train --retention 400d


def _ev(day: float, kind: str, amount: float = 0.0, user: str = "g") -> Event:
    return Event(user, int((T0_S + day * DAY_S) * 1000), kind, f"{kind}-{day}", amount)


def _weekly(user: str, state: UserState | None, events: list[Event], until_s: int, model: ChurnModel,
            start_s: int) -> tuple[UserState | None, list[str]]:
    """Advance ``state`` week by week to ``until_s`` as the backtest does (each week's events,
    then the reviews due), dropping it where the engine says it expired, as the store does.
    Returns the state (None: dropped) and the alert kinds raised on the way."""
    kinds: list[str] = []
    t = start_s
    while t < until_s:
        t = min(t + WEEK_S, until_s)
        mine = [ev for ev in events if (t - WEEK_S) * 1000 <= ev.ts_ms < t * 1000 and ev.ts_ms >= start_s * 1000]
        if state is None and not mine:
            continue
        out = advance(user, state, mine, t * 1000, model)
        kinds += [a.kind if a.kind != "stage_changed" else f"stage:{a.scores.stage}" for a in out.alerts]
        state = None if out.expire else out.state
    return state, kinds


def _gift_buyer(model: ChurnModel) -> tuple[UserState | None, list[str]]:
    """An order on 2 December, silence, an order on 20 November the next year, a day after it."""
    events = [_ev(0, "view"), _ev(0.01, "order", 23.80), _ev(353, "view"), _ev(353.01, "order", 30.00)]
    return _weekly("g", None, events, T0_S + 354 * DAY_S, model, T0_S - DAY_S)


def test_an_annual_buyer_back_after_a_year_is_reactivated_with_last_years_spend() -> None:
    state, kinds = _gift_buyer(YEARLY)
    assert state is not None
    assert "stage:churned" in kinds, "the setup: a year's silence turns the buyer churned"
    assert STAGES[state.stage] == "reactivated"
    assert state.first_seen_s == T0_S and state.n_purchases == 2 and state.revenue == pytest.approx(53.80)
    assert "at_risk" not in kinds[kinds.index("stage:churned"):], "no at-risk alert on the way back"


def test_with_180_days_for_customers_the_same_buyer_came_back_new_without_its_spend() -> None:
    """The behaviour QA17 F1 measured, the shipped default's."""
    state, kinds = _gift_buyer(MODEL)
    assert state is not None and STAGES[state.stage] == "new"
    assert state.first_seen_s == T0_S + 353 * DAY_S and state.n_purchases == 1 and state.revenue == pytest.approx(30.00)


def test_a_buyer_silent_300_days_who_orders_again_is_reactivated() -> None:
    events = [_ev(0, "order", 12.0), _ev(20, "order", 14.0), _ev(320, "order", 16.0)]
    state, _ = _weekly("b", None, events, T0_S + 321 * DAY_S, YEARLY, T0_S - DAY_S)
    assert state is not None and STAGES[state.stage] == "reactivated"
    assert state.n_purchases == 3 and state.revenue == pytest.approx(42.0)


def test_a_user_who_never_bought_is_dropped_180_days_after_churn_a_buyer_at_the_customers_retention() -> None:
    """A churned user's one review left is at its expiry; there the state goes (``expire``)."""
    for model, kind, days in ((YEARLY, "view", 180.0), (YEARLY, "order", 400.0), (MODEL, "order", 180.0)):
        out = advance("u", None, [_ev(0, kind, 5.0 if kind == "order" else 0.0)], (T0_S + 100 * DAY_S) * 1000, model)
        st = out.state
        assert STAGES[st.stage] == "churned" and kept_days(st, model.compiled) == days
        expiry_s = st.stage_since_s + int(days * DAY_S)
        assert st.next_review_s == expiry_s, "reviewed once more, at its expiry"
        assert not advance("u", st.copy(), (), (expiry_s - 60) * 1000, model).expire
        assert advance("u", st.copy(), (), expiry_s * 1000, model).expire


def test_the_model_file_records_customer_retention_and_an_older_file_gets_the_default(tmp_path: Path) -> None:
    shipped = json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    assert (shipped["retention_days"], shipped["customer_retention_days"]) == (180.0, 180.0)
    older = {k: v for k, v in shipped.items() if k != "customer_retention_days"}  # a file from before the field
    model = ChurnModel.from_json(json.dumps(older))
    assert model.customer_retention_days == 180.0 and model.compiled.customer_retention_days == 180.0
    longer = ChurnModel.from_json(json.dumps({**older, "retention_days": 500.0}))  # QA17's hand edit, kept as it was
    assert longer.compiled.customer_retention_days == 500.0, "a customer is never kept less than a user who never bought"
    with pytest.raises(ValueError, match="customer_retention_days must be > 0 days"):
        MODEL.with_(customer_retention_days=0.0)


def _history(tmp_path: Path) -> Path:
    """A simulated history (streams.offline.simulate), as the other train tests use."""
    events, _ = generate(seed=13, n_users=80, start_ms=1_767_225_600_000, days=63)
    path = tmp_path / "events.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("user_id", "ts", "event_type", "amount", "event_id"))
        for ev in events:
            w.writerow((ev.user_id, ev.ts_ms, ev.type, ev.amount or "", ev.event_id))
    return path


def test_train_retention_is_parsed_checked_and_written_into_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.json"
    args = ["train", "--events", str(_history(tmp_path)), "--churn-after", "14d", "--horizon", "14d",
            "--as-of", "2026-01-22/2026-02-05/7d", "--alert-share", "0.2",
            "--out", str(out)]
    assert main([*args, "--retention", "104w"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("retention:")]
    assert said == ["retention: a churned customer (a purchase on record) is kept 728 days after the churn is reported, "
                    "a user who never bought 180 days; one back later is a new user (--retention)"]
    model = load_model(out)
    assert (model.customer_retention_days, model.retention_days) == (728.0, 180.0)
    assert json.loads(out.read_text(encoding="utf-8"))["customer_retention_days"] == 728.0


def test_with_retention_below_the_never_bought_retention_lowers_both() -> None:
    model = with_retention(MODEL, 120 * DAY_S * 1000)
    assert (model.customer_retention_days, model.retention_days) == (120.0, 120.0)
    assert with_retention(MODEL, None) is MODEL
