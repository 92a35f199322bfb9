"""MBG/NBD on active days: the fit recovers the parameters of data drawn from the model itself,
and P(alive) is calibrated against who really was alive in that data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import mbgnbd
from models.bgnbd import BgNbdParams

TRUE = BgNbdParams(r=1.5, alpha=6.0, a=0.4, b=3.0)  # days


def _simulate(params: BgNbdParams, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MBG/NBD's story per user: rate ~ gamma(r, alpha), dropout p ~ beta(a, b), observed for a
    random T; after every transaction (the first included) the user drops out with prob. p."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    T = rng.uniform(30.0, 180.0, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for i in range(n):
        t = 0.0
        if rng.random() < p[i]:  # dropped right after the first active day
            alive[i] = False
            continue
        while True:
            t += rng.exponential(1.0 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                alive[i] = False
                break
    return x, t_x, T, alive


@pytest.fixture(scope="module")
def cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _simulate(TRUE, 6000, seed=3)


def test_fit_recovers_the_generating_parameters(cohort) -> None:  # type: ignore[no-untyped-def]
    x, t_x, T, _ = cohort
    res = mbgnbd.fit(x, t_x, T)
    assert res.converged
    got = res.params
    assert got.r == pytest.approx(TRUE.r, rel=0.25)
    assert got.alpha == pytest.approx(TRUE.alpha, rel=0.3)
    assert got.a / (got.a + got.b) == pytest.approx(TRUE.a / (TRUE.a + TRUE.b), rel=0.2)  # mean dropout
    assert res.log_likelihood >= mbgnbd.log_likelihood(TRUE, x, t_x, T) - 1e-6  # the optimum beats the truth


def test_p_alive_is_calibrated_against_who_was_alive(cohort) -> None:  # type: ignore[no-untyped-def]
    x, t_x, T, alive = cohort
    p = np.array([mbgnbd.p_alive(TRUE, xi, ti, Ti) for xi, ti, Ti in zip(x, t_x, T)])
    assert abs(p.mean() - alive.mean()) < 0.02
    order = np.argsort(p)
    for chunk in np.array_split(order, 5):
        assert abs(p[chunk].mean() - alive[chunk].mean()) < 0.05


def test_grouped_rows_with_weights_give_the_same_fit(cohort) -> None:  # type: ignore[no-untyped-def]
    x, t_x, T, _ = cohort
    x, t_x, T = x[:1500], np.round(t_x[:1500]), np.round(T[:1500])
    T = np.maximum(T, t_x)
    rows, counts = np.unique(np.stack([x, t_x, T], axis=1), axis=0, return_counts=True)
    a = mbgnbd.fit(x, t_x, T).params
    b = mbgnbd.fit(rows[:, 0], rows[:, 1], rows[:, 2], weights=counts).params
    for name in ("r", "alpha", "a", "b"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-3)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.floats(0.0, 300.0), st.floats(0.0, 200.0), st.floats(0.0, 50.0))
def test_p_alive_is_a_probability_falling_with_silence(x: int, t_x: float, silence: float, more: float) -> None:
    p1 = mbgnbd.p_alive(TRUE, x, t_x, t_x + silence)
    p2 = mbgnbd.p_alive(TRUE, x, t_x, t_x + silence + more)
    assert 0.0 <= p2 <= p1 <= 1.0
    assert math.isfinite(p1)
    # Unlike BG/NBD, one active day is not "certainly alive" once time passes.
    assert mbgnbd.p_alive(TRUE, 0, 0.0, 100.0) < 0.5


def test_fit_refuses_a_cohort_nobody_came_back_to() -> None:
    with pytest.raises(ValueError, match="second active day"):
        mbgnbd.fit([0, 0, 0], [0.0, 0.0, 0.0], [10.0, 20.0, 30.0])


@settings(max_examples=200, deadline=None)
@given(st.floats(0.05, 5.0), st.floats(0.1, 60.0), st.floats(0.05, 5.0), st.floats(0.05, 10.0),
       st.integers(0, 200), st.floats(0.0, 300.0), st.floats(0.0, 300.0), st.floats(0.0, 400.0))
def test_coming_back_within_t_is_one_minus_the_likelihood_of_a_longer_silence(
        r: float, alpha: float, a: float, b: float, x: int, t_x: float, silence: float, t: float) -> None:
    """P(active within t) = 1 - L(x, t_x, T + t) / L(x, t_x, T): two derivations, two code paths."""
    params = BgNbdParams(r, alpha, a, b)
    T = t_x + silence
    got = mbgnbd.p_active_within(params, x, t_x, T, t)
    ratio = mbgnbd.log_likelihood(params, [x], [t_x], [T + t]) - mbgnbd.log_likelihood(params, [x], [t_x], [T])
    assert got == pytest.approx(-math.expm1(ratio), rel=1e-7, abs=1e-12)
    assert 0.0 <= got <= mbgnbd.p_alive(params, x, t_x, T) <= 1.0
    assert mbgnbd.p_active_within(params, x, t_x, T, t + 10.0) >= got


def test_coming_back_within_t_is_calibrated_against_simulated_futures() -> None:
    """Users drawn from the model, observed to T, then followed for t more days: the predicted
    chance of an active day in that window matches who had one, overall and by fifths."""
    rng = np.random.default_rng(8)
    n, t = 5000, 30.0
    lam = rng.gamma(TRUE.r, 1.0 / TRUE.alpha, n)
    p = rng.beta(TRUE.a, TRUE.b, n)
    T = rng.uniform(30.0, 180.0, n)
    pred, came = np.zeros(n), np.zeros(n)
    for i in range(n):
        x, t_x, now, back = 0, 0.0, 0.0, False
        alive = rng.random() >= p[i]
        while alive:
            now += rng.exponential(1.0 / lam[i])
            if now > T[i] + t:
                break
            if now > T[i]:
                back = True
                break
            x, t_x = x + 1, now
            alive = rng.random() >= p[i]
        pred[i] = mbgnbd.p_active_within(TRUE, x, t_x, T[i], t)
        came[i] = back
    assert abs(pred.mean() - came.mean()) < 0.015
    for chunk in np.array_split(np.argsort(pred), 5):
        assert abs(pred[chunk].mean() - came[chunk].mean()) < 0.04


_PURE_MBGNBD = __import__("models._native", fromlist=["import_pure"]).import_pure(["mbgnbd"])["mbgnbd"]
_POSITIVE = st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-300, 5e-324, 1.0, 1e300]))
_DAYS = st.one_of(st.floats(0.0, 1e5), st.sampled_from([0.0, -0.0, 5e-324, 1e-300]))


def _bits(f: object, *args: object) -> str:
    try:
        v = f(*args)
    except (ValueError, ArithmeticError) as exc:
        return type(exc).__name__ + str(exc)
    return "nan" if math.isnan(v) else v.hex()


@settings(max_examples=400, deadline=None)
@given(_POSITIVE, _POSITIVE, _POSITIVE, _POSITIVE, st.one_of(st.integers(0, 500).map(float), _DAYS), _DAYS, _DAYS,
       st.one_of(_DAYS, st.sampled_from([30.0, float("inf"), float("nan"), -1.0, -0.0])))
def test_the_compiled_temperatures_formula_is_bgnbds(r: float, alpha: float, a: float, b: float, x: float, t_x: float,
                                                      T: float, t: float) -> None:
    """``rate_hit_of`` / ``p_active_within_of`` (the parameters as numbers, in the compiled core)
    against the reference, models.bgnbd.rate_hit_within and ``p_alive x rate_hit_within`` on a
    ``BgNbdParams``: the same bits (or the same error: a window that is negative, inf or NaN), in
    the pure copy and in the module this process runs (compiled where built)."""
    from models.bgnbd import rate_hit_within

    params = BgNbdParams(r, alpha, a, b)
    want_rate = _bits(rate_hit_within, params, x, T, t)
    TT = T if T > t_x else t_x
    want = _bits(lambda: mbgnbd.p_alive(params, x, t_x, TT) * rate_hit_within(params, x, TT, t))
    for module in (_PURE_MBGNBD, mbgnbd):
        assert _bits(module.rate_hit_of, r, alpha, x, T, t) == want_rate
        assert _bits(module.p_active_within_of, r, alpha, a, b, x, t_x, T, t) == want
        assert _bits(module.p_active_within, module.BgNbdParams(r, alpha, a, b), x, t_x, T, t) == want


@pytest.mark.parametrize("fit", [mbgnbd.fit, __import__("models.bgnbd", fromlist=["fit"]).fit], ids=["mbgnbd", "bgnbd"])
def test_a_cohort_with_no_dropout_keeps_the_fit_inside_its_bounds(fit) -> None:  # type: ignore[no-untyped-def]
    """Users who all come every week and none leave push the dropout parameters to zero: the
    Nelder-Mead polish, unbounded, ended at a = 5.8e-231, b = 2.6e-97, and a review's
    ``log(a / (b + x))`` raised a math domain error in ``churnwatch train`` (2026-12-05)."""
    x = [12] * 150
    t_x = [84.0] * 150
    T = [84.0 + i % 7 for i in range(150)]
    p = fit(x, t_x, T).params
    low, high = math.exp(-mbgnbd._LOG_BOUND), math.exp(mbgnbd._LOG_BOUND)
    assert all(low * 0.999 <= v <= high * 1.001 for v in (p.r, p.alpha, p.a, p.b))
    alive = mbgnbd.p_alive_of(p.r, p.alpha, p.a, p.b, 12.0, 84.0, 120.0)
    assert 0.0 < alive <= 1.0
