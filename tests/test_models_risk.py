"""The logistic risk model: recovery of known weights, sign constraints, online learning, checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import _native
from models.engine import advance
from models.events import Event, Subscription
from models.model import ChurnModel, load_model
from models.risk import (FEATURES, SILENCE_FEATURES, LogisticRisk, check_weights, churn_risk, feature_value, feature_vector,
                         leave_after,
                         leave_probability, risk_probability, sigmoid)
from models.scoring import SilentRisk, assess, risk_at
from models.signals import _round_even, silent_after
from models.state import DAY_S
from models.temperature import stay_after
from tests.test_models_properties import histories


def _logistic_data(rng: np.random.Generator, weights: np.ndarray, intercept: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, weights.size)) * np.linspace(0.5, 3.0, weights.size)  # different scales
    p = 1.0 / (1.0 + np.exp(-(intercept + X @ weights)))
    y = (rng.random(n) < p).astype(float)
    return X, y


def test_fit_recovers_the_weights_that_generated_the_data() -> None:
    rng = np.random.default_rng(7)
    true_w = np.array([1.2, -0.8, 0.0, 0.4])
    X, y = _logistic_data(rng, true_w, -1.0, 40_000)
    model = LogisticRisk(features=("a", "b", "c", "d"), nonnegative=(), l2=0.0).fit(X, y)
    fitted = np.array([model.weights[k] for k in "abcd"])
    assert np.allclose(fitted, true_w, atol=0.06)
    assert model.intercept == pytest.approx(-1.0, abs=0.06)


def test_fit_is_calibrated_in_the_large_and_by_decile() -> None:
    rng = np.random.default_rng(8)
    X, y = _logistic_data(rng, np.array([0.9, 0.5]), -2.0, 30_000)
    model = LogisticRisk(features=("a", "b"), nonnegative=()).fit(X[:20_000], y[:20_000])
    p = model.predict_proba(X[20_000:])
    held = y[20_000:]
    assert abs(p.mean() - held.mean()) < 0.01
    order = np.argsort(p)
    for chunk in np.array_split(order, 10):
        assert abs(p[chunk].mean() - held[chunk].mean()) < 0.05


def test_nonnegative_weights_stay_at_zero_when_the_data_pulls_them_below() -> None:
    rng = np.random.default_rng(9)
    X, y = _logistic_data(rng, np.array([-1.0, 1.0]), 0.0, 20_000)
    model = LogisticRisk(features=("down", "up"), nonnegative=("down",)).fit(X, y)
    assert model.weights["down"] == 0.0
    assert model.weights["up"] > 0.5
    online = LogisticRisk(features=("down", "up"), nonnegative=("down",), lr=0.05)
    seen = []
    for row, label in zip(X[:5000], y[:5000]):
        seen.append(online.learn_one({"down": row[0], "up": row[1]}, label).weights["down"])
    assert min(seen) == 0.0 and max(seen[-1000:]) < 0.1 and online.n == 5000


def test_nonpositive_weights_and_caps_hold_in_the_fit_and_online() -> None:
    """``nonpositive`` keeps a weight <= 0 and ``caps`` within [-c, c], batch and online (QA19 F3:
    active days, a type's share)."""
    rng = np.random.default_rng(19)
    X, y = _logistic_data(rng, np.array([1.0, 3.0]), 0.0, 20_000)
    model = LogisticRisk(features=("use", "share"), nonnegative=(), nonpositive=("use",), caps={"share": 1.5}).fit(X, y)
    assert model.weights["use"] == 0.0 and model.weights["share"] == pytest.approx(1.5)
    online = LogisticRisk(features=("use", "share"), nonnegative=(), nonpositive=("use",), caps={"share": 1.5}, lr=0.05)
    for row, label in zip(X[:3000], y[:3000]):
        online.learn_one({"use": row[0], "share": row[1]}, label)
        assert online.weights["use"] <= 0.0 and abs(online.weights["share"]) <= 1.5
    with pytest.raises(ValueError):
        LogisticRisk(features=("use",), nonnegative=("use",), nonpositive=("use",))


def test_learn_one_approaches_the_batch_fit() -> None:
    rng = np.random.default_rng(10)
    X, y = _logistic_data(rng, np.array([1.0, -0.5]), -0.5, 30_000)
    batch = LogisticRisk(features=("a", "b"), nonnegative=()).fit(X, y)
    online = LogisticRisk(features=("a", "b"), nonnegative=(), lr=0.01)
    for _ in range(2):
        for row, label in zip(X, y):
            online.learn_one({"a": row[0], "b": row[1]}, label)
    probe = X[:2000]
    p_batch = batch.predict_proba(probe)
    p_online = np.array([online.predict_proba_one({"a": r[0], "b": r[1]}) for r in probe])
    assert np.mean(np.abs(p_batch - p_online)) < 0.03


def test_fit_refuses_one_class_and_bad_shapes() -> None:
    model = LogisticRisk(features=("a",), nonnegative=())
    with pytest.raises(ValueError, match="both churned and retained"):
        model.fit(np.ones((10, 1)), np.zeros(10))
    with pytest.raises(ValueError, match="shape"):
        model.fit(np.ones((10, 2)), np.zeros(10))


def test_constant_columns_get_no_weight() -> None:
    rng = np.random.default_rng(11)
    X, y = _logistic_data(rng, np.array([1.0]), 0.0, 5000)
    X = np.hstack([X, np.full((5000, 1), 3.0)])
    model = LogisticRisk(features=("a", "const"), nonnegative=()).fit(X, y)
    assert model.weights["const"] == 0.0
    # with a prior the history cannot speak to the constant column: the prior's weight stays,
    # and the intercept absorbs it, so the fitted predictions are those of a fit without it
    with_prior = LogisticRisk(features=("a", "const"), nonnegative=()).fit(X, y, prior={"a": 0.5, "const": 0.7})
    assert with_prior.weights["const"] == 0.7
    np.testing.assert_allclose(with_prior.predict_proba(X), LogisticRisk(features=("a", "const"), nonnegative=()).fit(
        X, y, prior={"a": 0.5}).predict_proba(X), rtol=1e-9)


def test_model_file_refuses_weights_that_would_let_silence_lower_risk() -> None:
    name = sorted(SILENCE_FEATURES)[0]
    with pytest.raises(ValueError, match=f"risk weight {name} must be >= 0"):
        ChurnModel(risk_weights={name: -0.1})
    with pytest.raises(ValueError, match="unknown features"):
        ChurnModel(risk_weights={"shoe_size": 1.0})
    check_weights({name: 0.0 for name in FEATURES}, 0.0)  # zeros are fine


def test_weights_survive_the_model_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from models.model import load_model

    weights = {name: 0.1 * (i + 1) for i, name in enumerate(FEATURES)}
    path = tmp_path / "m.json"
    ChurnModel(risk_weights=weights, risk_intercept=-1.5).save(path)
    loaded = LogisticRisk.from_model(load_model(path))
    assert loaded.weights == weights and loaded.intercept == -1.5
    x = {name: 1.0 for name in FEATURES}
    assert loaded.predict_proba_one(x) == pytest.approx(sigmoid(-1.5 + sum(weights.values())))
    assert math.isclose(sigmoid(800.0), 1.0) and sigmoid(-800.0) >= 0.0


def test_a_strong_penalty_keeps_the_prior_and_a_weak_one_lets_the_data_speak() -> None:
    rng = np.random.default_rng(12)
    X, y = _logistic_data(rng, np.array([1.0, 0.0]), -1.0, 5_000)
    prior = {"a": 0.2, "b": -0.3}
    held = LogisticRisk(features=("a", "b"), nonnegative=("a",), l2=1e6).fit(X, y, prior=prior)
    assert held.weights["a"] == pytest.approx(0.2, abs=1e-4) and held.weights["b"] == pytest.approx(-0.3, abs=1e-4)
    free = LogisticRisk(features=("a", "b"), nonnegative=("a",), l2=0.0).fit(X, y, prior=prior)
    assert free.weights["a"] == pytest.approx(1.0, abs=0.15) and abs(free.weights["b"]) < 0.1
    one_held = LogisticRisk(features=("a", "b"), l2=0.0).fit(X, y, prior=prior, l2_by_feature={"a": 1e6})
    assert one_held.weights["a"] == pytest.approx(0.2, abs=1e-4) and abs(one_held.weights["b"]) < 0.1
    with pytest.raises(ValueError, match="l2_by_feature"):
        LogisticRisk(features=("a", "b")).fit(X, y, l2_by_feature={"a": -1.0})
    with pytest.raises(ValueError, match="prior weights"):
        LogisticRisk(features=("a", "b"), nonnegative=("a",)).fit(X, y, prior={"a": -1.0})
    with pytest.raises(ValueError, match="prior weights"):
        LogisticRisk(features=("a", "b"), nonnegative=("a",)).fit(X, y, prior={"zzz": 1.0})


def _prior_choice_data() -> tuple:  # type: ignore[type-arg]
    """800 rows of 100 users (8 rows each, as weekly snapshots), 14 features, a default whose
    signs are those of the true effect, and the penalty grid: the two choose_prior tests' data."""
    rng = np.random.default_rng(14)
    users = [f"u{i // 8}" for i in range(800)]
    names = tuple(f"g{i}" for i in range(12)) + ("share:x", "share:y")
    X = rng.normal(size=(800, len(names)))
    effect = X[:, 0] - X[:, 1] + 0.8 * X[:, 2]
    return rng, users, names, X, {"g0": 1.0, "g1": -1.0, "g2": 0.8}, effect, (0.01, 1.0, 10.0)


def test_cross_validation_keeps_a_right_default_and_leaves_a_wrong_one() -> None:
    from streams.offline.train import choose_prior

    rng, users, names, X, default, effect, grid = _prior_choice_data()
    like = (rng.random(800) < 1.0 / (1.0 + np.exp(2.0 - effect))).astype(float)
    kept = choose_prior(names, X, like, users, default, grid=grid)  # 100 users: too few to move it
    assert (kept.centre, kept.l2, kept.l2_types) == ("default", 10.0, 10.0)
    assert set(kept.cv_log_loss["default"]) == {f"{a:g}/{b:g}" for a in grid for b in grid}
    wrong = (rng.random(800) < 1.0 / (1.0 + np.exp(2.0 + effect))).astype(float)  # every sign reversed
    left = choose_prior(names, X, wrong, users, default, grid=grid)
    assert left.centre == "zero" and left.above_best == (0.0, 0.0)
    fitted = LogisticRisk(names, l2=left.l2).fit(X, wrong, prior=left.prior(default), l2_by_feature=left.by_feature(names))
    assert fitted.weights["g0"] < 0 < fitted.weights["g1"] and fitted.weights["g2"] < 0


def test_cross_validation_by_auc_keeps_a_right_default_and_leaves_a_wrong_one() -> None:
    """The same choice ranked by out-of-fold ROC AUC: a default whose signs are right stays (its
    AUC is within one bootstrap error of the best), one whose signs are all wrong is left (the
    chosen fit reverses them); both
    tables are reported, and the chosen AUC is the best's minus the reported gap."""
    from streams.offline.train import choose_prior

    rng, users, names, X, default, effect, grid = _prior_choice_data()
    like = (rng.random(800) < 1.0 / (1.0 + np.exp(2.0 - effect))).astype(float)
    kept = choose_prior(names, X, like, users, default, grid=grid, criterion="auc")
    assert kept.criterion == "auc" and kept.centre == "default"
    assert set(kept.cv_auc["default"]) == set(kept.cv_log_loss["default"]) == {f"{a:g}/{b:g}" for a in grid for b in grid}
    below, err = kept.above_best
    best = max(max(v.values()) for v in kept.cv_auc.values())
    assert 0.0 <= below <= err and kept.cv_auc["default"][f"{kept.l2:g}/{kept.l2_types:g}"] == pytest.approx(best - below, abs=2e-6)
    wrong = (rng.random(800) < 1.0 / (1.0 + np.exp(2.0 + effect))).astype(float)
    left = choose_prior(names, X, wrong, users, default, grid=grid, criterion="auc")
    assert (left.l2, left.l2_types) != (10.0, 10.0) or left.centre == "zero"  # not the default's own effects
    fitted = LogisticRisk(names, l2=left.l2).fit(X, wrong, prior=left.prior(default), l2_by_feature=left.by_feature(names))
    assert fitted.weights["g0"] < 0 < fitted.weights["g1"] and fitted.weights["g2"] < 0
    top = choose_prior(names, X, like, users, default, grid=grid, criterion="auc", one_se=False)
    assert top.above_best == (0.0, 0.0) and top.cv_auc[top.centre][f"{top.l2:g}/{top.l2_types:g}"] == best
    with pytest.raises(ValueError, match="criterion"):
        choose_prior(names, X, like, users, default, grid=grid, criterion="brier")


def test_a_model_file_is_strict_json_when_a_report_figure_is_not_finite() -> None:
    """A training report figure that cannot be computed (an AUC error with one class held out is
    NaN) is written as null: other readers refuse the ``NaN`` token Python would write."""
    import dataclasses
    import json

    from models.model import ChurnModel, load_model

    model = dataclasses.replace(load_model(), training={"versus_default": {"difference_se": float("nan"), "rows": 3},
                                                        "cv": [1.0, float("inf")]})
    text = model.to_json()
    assert "NaN" not in text and "Infinity" not in text
    back = ChurnModel.from_json(text)
    assert back.training == {"versus_default": {"difference_se": None, "rows": 3}, "cv": [1.0, None]}


# -- the sparse risk: only the weighed features, bit for bit the vector's --------------------

_TRACKED = ("view", "click", "message")
#: Every feature weighed (and a zero weight), slots tracked: each formula of feature_value is read.
_ALL_WEIGHED = ChurnModel(tracked_types=_TRACKED, risk_weights={
    **{name: 0.05 * (i + 1) for i, name in enumerate(FEATURES) if name != "buyer"},
    **{f"inactive:{t}": 0.3 for t in _TRACKED}, **{f"share:{t}": -0.2 for t in _TRACKED},
    **{f"lifetime:{t}": -0.1 for t in _TRACKED}})
#: The same, reading the growing features (and a lifetime volume) no further than a trained
#: model's history had them (models.compiled CAPS_KEY): low caps, so that many draws pass them.
_CAPPED = _ALL_WEIGHED.with_(population={"risk_caps": {"tenure_log": 1.5, "active_days_log": 1.0, "purchases_log": 0.3,
                                                       "revenue_log": 0.5, "lifetime:view": 1.0}})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 120 * DAY_S), st.floats(0.0, 90.0), st.sampled_from([ChurnModel(), _ALL_WEIGHED, _CAPPED]))
def test_the_sparse_risk_is_the_whole_vectors_bit_for_bit(events: list[Event], later_s: int, extra_days: float,
                                                          model: ChurnModel) -> None:
    """``leave_probability`` (the engine's risk) reads only the weighed features; it must give
    ``risk_probability(feature_vector(...))`` exactly, and ``SilentRisk`` the old
    ``churn_risk`` of the whole vector after the silence, so states, alerts and index scores stay bit-identical."""
    state = advance("u", None, events, events[-1].ts_ms + 1, model).state
    now_s = state.last_seen_s + later_s
    a = assess(state, now_s, model)
    vector = feature_vector(a.signals, a.p_stay, state.revenue)
    assert [feature_value(i, a.signals, a.p_stay, state.revenue) for i in range(len(vector))] == vector
    assert len(vector) == len(model.compiled.features) and a.features == vector
    assert leave_probability(a.signals, a.p_stay, state.revenue, model).hex() == risk_probability(vector, model).hex()
    assert a.leave.hex() == risk_probability(vector, model).hex()
    t_s = now_s + int(extra_days * DAY_S)
    x = (t_s - now_s) / DAY_S
    if x > 0.0:
        p, _ = stay_after(a.signals, x, model)
        old = churn_risk(feature_vector(silent_after(a.signals, x, model), p, state.revenue), p, model)
    else:
        old = a.risk
    assert SilentRisk(a, model).at(t_s).hex() == old.hex()
    expected = 1.0 if a.stage == "churned" else churn_risk(vector, a.p_stay, model)
    assert risk_at(state, now_s, model).hex() == expected.hex()


@pytest.mark.parametrize("model", [_ALL_WEIGHED, ChurnModel(tracked_types=_TRACKED)])
def test_slots_of_another_vocabulary_read_empty(model: ChurnModel) -> None:
    """A state whose only event is a cancellation keeps the default's 8 hashed slots (no
    activity sized them: models.state.apply_event); a model tracking 3 types must still see 3
    empty slots, as the next activity would leave them, not 8 (hypothesis found the mismatch:
    33 values against 23 features). The same holds for a state kept under another model."""
    day0 = 1_700_000_000_000
    cancelled = advance("u", None, [Event("u", day0, "cancel")], day0 + 1, model).state
    under_default = advance("u", None, [Event("u", day0, "view"), Event("u", day0 + 3_600_000, "unfriend")],
                            day0 + 3_600_001, ChurnModel()).state
    for state in (cancelled, under_default):
        a = assess(state, state.last_seen_s + 5 * DAY_S, model)
        assert len(a.signals.slot_28d) == len(_TRACKED) and a.signals.negative_28d == 0.0
        vector = feature_vector(a.signals, a.p_stay, state.revenue)
        assert len(vector) == len(model.compiled.features)
        assert leave_probability(a.signals, a.p_stay, state.revenue, model).hex() == risk_probability(vector, model).hex()


def test_lifetime_volume_counts_a_steady_users_types_since_signup_and_ignores_silence() -> None:
    """``lifetime:<type>`` = log(1 + the type's 4-week share x every event so far): for a user
    whose mix is steady (here 2 views to 1 click a day for 60 days) it is the type's count since
    signup, though the state keeps no per-type lifetime counter; silence leaves it where it is
    (so it may take either sign), and the default weighs none of it."""
    day0 = 1_700_000_000_000
    events = [Event("u", day0 + d * 86_400_000 + k * 60_000, kind) for d in range(60)
              for k, kind in enumerate(("view", "view", "click"))]
    model = ChurnModel(tracked_types=_TRACKED)
    state = advance("u", None, events, events[-1].ts_ms + 1, model).state
    names = model.compiled.features
    a = assess(state, state.last_seen_s + DAY_S, model)
    views, clicks, messages = (a.features[names.index(f"lifetime:{t}")] for t in _TRACKED)
    assert math.expm1(views) == pytest.approx(120, rel=0.01) and math.expm1(clicks) == pytest.approx(60, rel=0.01)
    assert messages == 0.0
    later = feature_vector(silent_after(a.signals, 45.0, model), a.p_stay, state.revenue)
    assert later[names.index("lifetime:view")] == pytest.approx(views, abs=1e-9)
    assert not any(k.startswith("lifetime:") for k in load_model().risk_weights)
    check_weights({"lifetime:view": -0.4, "lifetime:click": 0.3}, 0.0)  # either sign: silence does not move it


def test_a_model_that_carries_lifetime_volumes_to_the_renewal_reads_them_there() -> None:
    """Under ``lifetime_to_renewal`` a subscriber's ``lifetime:<type>`` is the count since signup
    projected to the end of the paid period at their own rate so far (models.risk.by_renewal): 21
    days of 2 views a day (20 days of use) with 10 days left read as 63 views where a user
    without a period end, or any user under a model without the setting, reads 42. The days left
    are counted from the last activity, so silence moves it no more than it moves the count."""
    day0 = 1_700_000_000_000
    views = [Event("u", day0 + d * 86_400_000 + k * 60_000, "view") for d in range(21) for k in range(2)]
    statement = Event("u", day0, "subscription", "s1", 0.0, "", Subscription("active", "Pro", 999, 0, day0 + 30 * 86_400_000))
    for carried in (False, True):
        model = ChurnModel(tracked_types=_TRACKED, lifetime_to_renewal=carried)
        i = model.compiled.features.index("lifetime:view")
        plain = advance("u", None, views, views[-1].ts_ms + 1, model).state
        paying = advance("u", None, [statement, *views], views[-1].ts_ms + 1, model).state
        a, b = (assess(st_, st_.last_seen_s + 3600, model) for st_ in (plain, paying))
        assert a.signals.renewal_days == 0.0
        assert b.signals.renewal_days == (pytest.approx(10.0, abs=0.1) if carried else 0.0)
        assert math.expm1(a.features[i]) == pytest.approx(42, rel=0.01)
        assert math.expm1(b.features[i]) == pytest.approx(42 * (1 + 10 / 20) if carried else 42, rel=0.02)
        later = feature_vector(silent_after(b.signals, 6.0, model), b.p_stay, paying.revenue)
        assert later[i] == pytest.approx(b.features[i], abs=1e-9)
        assert assess(paying, paying.last_seen_s + 6 * DAY_S, model).features[i] == pytest.approx(b.features[i], abs=1e-9)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 120 * DAY_S), st.floats(0.0, 90.0))
def test_a_look_ahead_without_the_week_slots_is_the_same_signals_otherwise(events: list[Event], later_s: int,
                                                                           extra_days: float) -> None:
    """``silent_after(..., week_slots=False)`` (what SilentRisk evaluates) leaves the per-slot
    7-day counts out and nothing else: every other field, ``now_s`` included, bit for bit."""
    model = load_model()
    state = advance("u", None, events, events[-1].ts_ms + 1, model).state
    sig = assess(state, state.last_seen_s + later_s, model).signals
    whole, lean = silent_after(sig, extra_days, model), silent_after(sig, extra_days, model, False)
    assert lean.slot_7d == [] and len(whole.slot_7d) == len(sig.slot_7d)
    lean.slot_7d = whole.slot_7d
    assert repr(lean) == repr(whole) and (lean.n_events, lean.period_end_s) == (whole.n_events, whole.period_end_s)


@given(st.one_of(st.floats(-1e15, 1e15), st.integers(-10**6, 10**6).map(lambda k: k / 2)))
def test_the_look_aheads_rounding_is_pythons_round(y: float) -> None:
    """signals._round_even (the compiled core's own halves-to-even) is ``round`` on every finite float it sees."""
    assert _round_even(y) == round(y)


#: Fresh pure-Python copies (the reference) beside what this process runs (compiled where built).
_PURE = _native.import_pure(["model", "risk", "signals"])
_SINGLE = [ChurnModel(tracked_types=_TRACKED, risk_weights={name: 0.7})
           for name in (*[f for f in FEATURES if f != "buyer"], "inactive:click", "share:view", "lifetime:message")]


def _outcome(f: object, *args: object) -> str:
    """What ``f(*args)`` gives, as bits (any NaN alike: its payload is no result), or that it
    raises (on inputs no state gives, a negative silence: the reference works out every silent
    signal before the features, so the first error it meets may be another one)."""
    try:
        v = f(*args)
    except (ArithmeticError, ValueError):
        return "raises"
    assert isinstance(v, float)
    return "nan" if math.isnan(v) else v.hex()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(histories(), histories(renewals=True)), st.integers(0, 120 * DAY_S), st.integers(1, 200 * DAY_S),
       st.sampled_from([ChurnModel(), _ALL_WEIGHED, _CAPPED, *_SINGLE]))
def test_the_look_ahead_without_silent_signals_is_the_one_with_them(events: list[Event], later_s: int, ahead_s: int,
                                                                  model: ChurnModel) -> None:
    """``leave_after`` (what SilentRisk evaluates: the save-list bound, the crossing search) is
    ``leave_probability`` of ``silent_after``'s signals bit for bit, for every feature weighed
    alone and all together, exit gate open or closed (renewals)."""
    state = advance("u", None, events, events[-1].ts_ms + 1, model).state
    a = assess(state, state.last_seen_s + later_s, model)
    x = ahead_s / DAY_S
    for p in (a.p_stay, 0.0):
        want = leave_probability(silent_after(a.signals, x, model, False), p, state.revenue, model)
        assert leave_after(a.signals, x, p, state.revenue, model).hex() == want.hex()


_ANY = st.one_of(st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 1.0, 0.5, 3.0, 1e300,
                                  float("inf"), -float("inf"), float("nan")]),
                 st.floats(), st.floats(0.0, 500.0), st.floats(width=32))
_GAP = st.one_of(st.just(1.0), st.floats(1.0, 1e6), st.floats(1.0, 1e308))  # a signal's intervals are never under a day
#: Durations (silences, age, tenure): never negative, from epoch seconds.
_SPAN = st.one_of(st.sampled_from([0.0, 5e-324, 2.2250738585072014e-308, 1e-300, 0.5, 1.0]), st.floats(0.0, 1e6))


@st.composite
def _signal_fields(draw: st.DrawFn, n_slots: int) -> list[object]:
    """The positional fields of a ``Signals`` with any bits where a state's counts and ratios
    could hold them (NaN, inf, -0.0, subnormals), in the ranges its other numbers keep
    (durations >= 0, intervals >= 1 day)."""
    return [draw(st.integers(0, 2 ** 33)), draw(_SPAN), draw(_SPAN), draw(_SPAN), draw(st.integers(0, 1000)),
            draw(_ANY), draw(_ANY), draw(_ANY), [], draw(st.lists(_ANY, min_size=n_slots, max_size=n_slots)),
            draw(_ANY), draw(_ANY), draw(_GAP), draw(_GAP), draw(_ANY),
            draw(st.integers(0, 50)), draw(st.integers(0, 50)), draw(_SPAN), draw(_SPAN), draw(_SPAN), draw(_GAP), draw(_ANY),
            draw(_ANY), draw(st.booleans()), draw(_SPAN), draw(_ANY), draw(st.integers(0, 10 ** 6)),
            draw(st.one_of(st.just(0), st.integers(0, 2 ** 33))), 0, False, False, 0, False, draw(st.one_of(st.just(0.0), _SPAN))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(range(2 + len(_SINGLE))),
       st.one_of(st.floats(1.0 / DAY_S, 400.0), st.floats(1.0 / DAY_S, 1e6), st.sampled_from([1.0 / DAY_S, 1.0, 0.5])),
       st.floats(0.0, 1.0), st.floats(0.0, 1e5))
def test_the_look_ahead_on_signals_of_any_bits(data: st.DataObject, which: int, x: float, p: float, revenue: float) -> None:
    """``leave_after`` against the reference ``leave_probability(silent_after(...))`` (pure
    Python) on signals of any bits, in the pure copy and in the module this process runs
    (compiled where built): the same bits, or both raise."""
    model = [ChurnModel(), _ALL_WEIGHED, *_SINGLE][which]
    fields = data.draw(_signal_fields(model.compiled.vocabulary.n_slots))
    pure_model = _PURE["model"].ChurnModel(tracked_types=model.tracked_types, risk_weights=dict(model.risk_weights))
    pure_sig = _PURE["signals"].Signals(*fields)
    want = _outcome(lambda: _PURE["risk"].leave_probability(_PURE["signals"].silent_after(pure_sig, x, pure_model, False),
                                                             p, revenue, pure_model))
    assert _outcome(_PURE["risk"].leave_after, pure_sig, x, p, revenue, pure_model) == want
    from models.signals import Signals

    assert _outcome(leave_after, Signals(*fields), x, p, revenue, model) == want


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.floats(0.0, 1.0), st.floats(0.0, 1e5))
def test_a_feature_remembered_on_its_signals_is_the_one_worked_out(data: st.DataObject, p: float, revenue: float) -> None:
    """Every fixed feature asked twice of the same signals (the second time read from the log1p
    remembered on them, models.risk._signal_log) gives, both times, what it gives of fresh
    signals of the same fields: the same bits, or both raise; what is remembered stays out of
    the repr (the golden digests hash it)."""
    from models.signals import Signals

    fields = data.draw(_signal_fields(ChurnModel().compiled.vocabulary.n_slots))
    sig = Signals(*fields)
    for i in range(len(FEATURES)):
        want = _outcome(feature_value, i, Signals(*fields), p, revenue)
        assert _outcome(feature_value, i, sig, p, revenue) == want
        assert _outcome(feature_value, i, sig, p, revenue) == want
    assert repr(sig) == repr(Signals(*fields))
