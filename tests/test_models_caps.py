"""A trained model reads the features that only grow with time no further than its history had
them (models.compiled CAPS_KEY, QA18 F2): a positive ``tenure_log`` or ``active_days_log`` weight
learned on six months of a cut history raised every stayer's risk month after month, past the
alert line (58-70% of active users flagged a month against 8-10% in training)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.compiled import CAPS_KEY
from models.engine import advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.risk import GROWING, grows_with_time, leave_probability
from models.scoring import assess, features_at, score
from models.state import DAY_S
from streams.offline.train import DAY_MS, growing_caps, train

START_MS = 1_767_225_600_000  # 2026-01-01
NOON_MS = DAY_MS // 2


def _daily(user: str, days: int) -> list[Event]:
    return [Event(user, START_MS + d * DAY_MS + NOON_MS, "view", f"{user}-{d}") for d in range(days)]


def _leave(model: ChurnModel, days: int) -> float:
    """P(leaves | alive) of a user seen every day for ``days`` days, a day after the last."""
    events = _daily("u", days)
    state = advance("u", None, events, events[-1].ts_ms + 1, model).state
    a = assess(state, state.last_seen_s + DAY_S, model)
    return leave_probability(a.signals, a.p_stay, state.revenue, model)


def test_a_model_fitted_on_short_tenures_does_not_raise_risk_for_longer_ones() -> None:
    """Weights that grow with tenure and active days, capped at the largest values rows of up to
    90 days had: a user of 200 or 400 days scores as one at the cap, where the uncapped line
    would go on rising; below the cap nothing changes."""
    weights = {"tenure_log": 0.5, "active_days_log": 0.5}
    uncapped = ChurnModel(risk_weights=weights)
    history = []
    for days in (10, 30, 60, 90):
        events = _daily("u", days)
        state = advance("u", None, events, events[-1].ts_ms + 1, uncapped).state
        history.append(features_at(state, state.last_seen_s + DAY_S, uncapped)[1])
    names = uncapped.compiled.features
    caps = growing_caps(names, np.array(history))
    assert set(caps) == {n for n in names if grows_with_time(n)} > set(GROWING)  # and the lifetime volumes
    assert caps["tenure_log"] >= math.log1p(89.0) and caps["active_days_log"] >= math.log1p(90.0)
    capped = uncapped.with_(population={CAPS_KEY: caps})
    assert capped.compiled.capped and not uncapped.compiled.capped
    at_cap, longer, longest = _leave(capped, 90), _leave(capped, 200), _leave(capped, 400)
    assert longer == longest == pytest.approx(at_cap, abs=1e-6)  # the caps are rounded up to 1e-6
    assert _leave(uncapped, 400) > _leave(uncapped, 200) > _leave(uncapped, 90) == at_cap
    assert _leave(capped, 30) == _leave(uncapped, 30) < at_cap
    # the alert's reasons weigh the capped value too: the two models tell a 400-day user apart
    events = _daily("u", 400)
    state = advance("u", None, events, events[-1].ts_ms + 1, capped).state
    assert score(state, state.last_seen_s + DAY_S, capped).risk < score(state, state.last_seen_s + DAY_S, uncapped).risk


def test_train_records_the_largest_growing_values_its_fitted_rows_had() -> None:
    """Through ``train`` on 120 days: the file's caps are each growing feature's largest fitted
    value (tenure no more than the history's span), they survive the file, and a model file
    without them (the default, files written before) loads uncapped."""
    events: list[Event] = []
    labels: dict[str, int] = {}
    for i in range(40):
        stop = 40 + 2 * i if i % 3 == 0 else 120
        events += _daily(f"u{i}", stop)
        if i % 3 == 0:
            labels[f"u{i}"] = START_MS + (stop - 1) * DAY_MS + NOON_MS
    model, _ = train(events, labels_ms=labels, l2=0.1, alert_share=None)
    caps = model.population[CAPS_KEY]
    assert set(caps) == {n for n in model.compiled.features if grows_with_time(n)} > set(GROWING)
    assert math.log1p(30.0) < caps["tenure_log"] <= math.log1p(120.0)
    assert caps["purchases_log"] == caps["revenue_log"] == 0.0  # no purchase in this history
    back = ChurnModel.from_json(model.to_json())
    assert back.population[CAPS_KEY] == caps and back.compiled.caps == model.compiled.caps
    default = load_model()
    assert CAPS_KEY not in default.population and not default.compiled.capped
    assert set(default.compiled.caps) == {math.inf}


def test_a_held_feature_keeps_its_weight_and_the_others_fit_around_it() -> None:
    """``LogisticRisk.fit(held=...)``: the held weight is the one given, the log-odds carry it
    while the others are fitted (so the fit stays calibrated in the large with it), and data
    that would pull it up moves the others, not it."""
    from models.risk import LogisticRisk

    rng = np.random.default_rng(5)
    X = rng.normal(size=(4000, 2))
    y = (rng.uniform(size=4000) < 1 / (1 + np.exp(-(-1.0 + 1.2 * X[:, 0] + 0.8 * X[:, 1])))).astype(float)
    free = LogisticRisk(("a", "b"), nonnegative=(), l2=0.0).fit(X, y)
    held = LogisticRisk(("a", "b"), nonnegative=(), l2=0.0).fit(X, y, held={"a": -0.25})
    assert free.weights["a"] == pytest.approx(1.2, abs=0.15)
    assert held.weights["a"] == -0.25 and held.weights["b"] == pytest.approx(free.weights["b"], abs=0.3)
    assert float(held.predict_proba(X).mean()) == pytest.approx(float(y.mean()), abs=1e-4)


def test_train_keeps_tenure_at_the_default_on_a_history_that_starts_after_its_users() -> None:
    """A history whose users were all first seen on its first day (an export cut at its start,
    QA18 F2): the growing features are not fitted, they keep the default's weights, the report
    says so; the same users with staggered first days are fitted."""
    def history(stagger: int) -> tuple[list[Event], dict[str, int]]:
        events: list[Event] = []
        labels: dict[str, int] = {}
        for i in range(40):
            start = stagger * i
            stop = start + 40 + 2 * i if i % 3 == 0 else 120
            events += [Event(f"u{i}", START_MS + d * DAY_MS + NOON_MS, "view", f"u{i}-{d}") for d in range(start, stop)]
            if i % 3 == 0:
                labels[f"u{i}"] = START_MS + (stop - 1) * DAY_MS + NOON_MS
        return events, labels

    default = load_model()
    cut, report = train(*history(0)[:1], labels_ms=history(0)[1], l2=0.1, alert_share=None)
    assert report["held_growing"] == sorted(n for n in cut.compiled.features if grows_with_time(n))
    for name in report["held_growing"]:
        assert cut.risk_weights.get(name, 0.0) == default.risk_weights.get(name, 0.0)
    staggered, report = train(*history(2)[:1], labels_ms=history(2)[1], l2=0.1, alert_share=None)
    assert "held_growing" not in report
    assert any(staggered.risk_weights.get(n, 0.0) != default.risk_weights.get(n, 0.0) for n in ("tenure_log", "active_days_log"))
