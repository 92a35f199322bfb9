"""RFM: quintile edges of the population, scores 1-5 and the documented segment rules."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import rfm
from models.events import Event
from models.rfm import POPULATION_KEYS, SEGMENTS, RfmScores
from models.state import DAY_S, UserState, apply_event

NOW = 20_000 * DAY_S  # an event time in 2024


def purchaser(days_ago: float, n: int, revenue: float) -> UserState:
    last = NOW - int(days_ago * DAY_S)
    return UserState(
        first_seen_s=last - 100 * DAY_S,
        last_seen_s=last,
        first_purchase_s=last - 100 * DAY_S if n > 1 else last,
        last_purchase_s=last,
        n_events=n,
        n_purchases=n,
        revenue=revenue,
    )


@pytest.fixture(scope="module")
def population() -> dict[str, list[float]]:
    """Edges fitted on 100 purchasers whose recency/frequency/value run over 1..100."""
    states = [purchaser(days_ago=i, n=i, revenue=10.0 * i) for i in range(1, 101)]
    return rfm.fit_population(states, NOW)


# --------------------------------------------------------------------------------------------
# Quantiles


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200))
def test_fit_quantiles_edges_are_ordered_and_inside_the_data(values: list[float]) -> None:
    edges = rfm.fit_quantiles(values)
    assert len(edges) == len(rfm.QUANTILES)
    assert all(isinstance(e, float) for e in edges)  # plain JSON numbers, not numpy scalars
    assert all(a <= b for a, b in zip(edges, edges[1:]))
    assert min(values) <= edges[0] and edges[-1] <= max(values)


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [math.inf]])
def test_fit_quantiles_refuses_empty_or_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="fit_quantiles"):
        rfm.fit_quantiles(bad)


def test_population_scores_split_into_fifths(population: dict[str, list[float]]) -> None:
    states = [purchaser(days_ago=i, n=i, revenue=10.0 * i) for i in range(1, 101)]
    for field in range(3):
        counts = [0] * 5
        for st_ in states:
            scores = rfm.rfm_scores(st_, NOW, population)
            assert scores is not None
            counts[scores[field] - 1] += 1
        assert all(19 <= c <= 21 for c in counts), (field, counts)


def test_fit_population_keys_and_model_file_round_trip(population: dict[str, list[float]]) -> None:
    from models.model import ChurnModel  # here: the model file is another module's, keep the math tests independent of it

    assert set(population) == set(POPULATION_KEYS)
    rfm.check_population(population)
    model = ChurnModel(population={**population, "other_reference": [1, 2]})
    loaded = ChurnModel.from_json(model.to_json())
    assert {k: list(loaded.population[k]) for k in POPULATION_KEYS} == population


def test_fit_population_ignores_non_purchasers_and_may_be_empty() -> None:
    browsers = [UserState(n_events=10, last_seen_s=NOW) for _ in range(5)]
    assert rfm.fit_population(browsers, NOW) == {}
    mixed = browsers + [purchaser(3, 2, 50.0)]
    assert rfm.fit_population(mixed, NOW)[rfm.FREQUENCY_KEY] == [2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    ("population", "match"),
    [
        ({rfm.RECENCY_KEY: [1, 2, 3, 4]}, "needs all"),
        ({rfm.RECENCY_KEY: [1, 2, 3], rfm.FREQUENCY_KEY: [1, 2, 3, 4], rfm.MONETARY_KEY: [1, 2, 3, 4]}, "list of 4"),
        ({rfm.RECENCY_KEY: [4, 3, 2, 1], rfm.FREQUENCY_KEY: [1, 2, 3, 4], rfm.MONETARY_KEY: [1, 2, 3, 4]}, "non-decreasing"),
        ({rfm.RECENCY_KEY: [1, 2, 3, math.nan], rfm.FREQUENCY_KEY: [1, 2, 3, 4], rfm.MONETARY_KEY: [1, 2, 3, 4]}, "finite"),
        ({rfm.RECENCY_KEY: "1234", rfm.FREQUENCY_KEY: [1, 2, 3, 4], rfm.MONETARY_KEY: [1, 2, 3, 4]}, "list of 4"),
    ],
)
def test_check_population_refuses_bad_edges(population: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rfm.check_population(population)


def test_check_population_accepts_absent_rfm() -> None:
    rfm.check_population({})
    rfm.check_population({"health_p50": 12.0})


# --------------------------------------------------------------------------------------------
# Scores


def test_no_scores_without_purchases_or_without_edges(population: dict[str, list[float]]) -> None:
    assert rfm.rfm_scores(UserState(n_events=3, last_seen_s=NOW), NOW, population) is None
    assert rfm.rfm_segment(UserState(n_events=3, last_seen_s=NOW), NOW, population) is None
    assert rfm.rfm_scores(purchaser(1, 3, 30.0), NOW, {}) is None
    assert rfm.rfm_segment(purchaser(1, 3, 30.0), NOW, {}) is None


days_st = st.floats(min_value=0.0, max_value=1000.0)
count_st = st.integers(min_value=1, max_value=1000)
money_st = st.floats(min_value=0.0, max_value=1e6)


@given(days_st, days_st, count_st, count_st, money_st, money_st)
def test_scores_are_one_to_five_and_monotone(
    d1: float, d2: float, n1: int, n2: int, m1: float, m2: float
) -> None:
    population = {
        rfm.RECENCY_KEY: [7.0, 14.0, 30.0, 90.0],
        rfm.FREQUENCY_KEY: [1.0, 1.0, 2.0, 5.0],
        rfm.MONETARY_KEY: [20.0, 50.0, 100.0, 400.0],
    }
    (d_lo, d_hi), (n_lo, n_hi), (m_lo, m_hi) = sorted((d1, d2)), sorted((n1, n2)), sorted((m1, m2))
    better = rfm.rfm_scores(purchaser(d_lo, n_hi, m_hi), NOW, population)
    worse = rfm.rfm_scores(purchaser(d_hi, n_lo, m_lo), NOW, population)
    assert better is not None and worse is not None
    for s in (*better, *worse):
        assert 1 <= s <= 5
    assert better.recency >= worse.recency
    assert better.frequency >= worse.frequency
    assert better.monetary >= worse.monetary


def test_tied_edges_give_the_lowest_shared_score() -> None:
    # Most customers bought once: the first three edges are 1.
    population = {rfm.RECENCY_KEY: [1, 2, 3, 4], rfm.FREQUENCY_KEY: [1, 1, 1, 3], rfm.MONETARY_KEY: [1, 2, 3, 4]}
    one = rfm.rfm_scores(purchaser(1, 1, 1.0), NOW, population)
    two = rfm.rfm_scores(purchaser(1, 2, 1.0), NOW, population)
    many = rfm.rfm_scores(purchaser(1, 9, 1.0), NOW, population)
    assert one is not None and two is not None and many is not None
    assert (one.frequency, two.frequency, many.frequency) == (1, 4, 5)


def test_review_before_last_purchase_counts_as_most_recent(population: dict[str, list[float]]) -> None:
    st_ = purchaser(0, 4, 40.0)
    scores = rfm.rfm_scores(st_, st_.last_purchase_s - 3 * DAY_S, population)
    assert scores is not None and scores.recency == 5


# --------------------------------------------------------------------------------------------
# Segments: one example per documented rule, then properties over all 125 score triples


@pytest.mark.parametrize(
    ("scores", "n_purchases", "segment"),
    [
        (RfmScores(5, 1, 2), 1, "new"),
        (RfmScores(4, 5, 5), 20, "champions"),
        (RfmScores(5, 4, 2), 8, "loyal"),
        (RfmScores(4, 2, 5), 2, "important to develop"),
        (RfmScores(5, 3, 3), 3, "important to develop"),
        (RfmScores(3, 2, 5), 2, "important to retain"),
        (RfmScores(2, 5, 1), 9, "important to retain"),
        (RfmScores(3, 3, 3), 3, "about to sleep"),
        (RfmScores(2, 1, 1), 1, "about to sleep"),
        (RfmScores(1, 4, 2), 6, "important to win back"),
        (RfmScores(1, 2, 4), 2, "important to win back"),
        (RfmScores(1, 3, 3), 3, "hibernating"),
        (RfmScores(1, 1, 1), 1, "hibernating"),
    ],
)
def test_segment_rules(scores: RfmScores, n_purchases: int, segment: str) -> None:
    assert rfm.segment_of(scores, n_purchases) == segment


def _all_scores() -> list[RfmScores]:
    return [RfmScores(*t) for t in itertools.product(range(1, 6), repeat=3)]


def test_every_segment_is_reachable_and_every_triple_has_one() -> None:
    seen = {rfm.segment_of(s, n) for s in _all_scores() for n in (1, 2, 10)}
    assert seen == set(SEGMENTS)


@pytest.mark.parametrize("n_purchases", [1, 2, 10])
def test_segments_respect_recency_bands(n_purchases: int) -> None:
    recent = {"new", "champions", "loyal", "important to develop"}
    slipping = {"important to retain", "about to sleep"}
    gone = {"important to win back", "hibernating"}
    for s in _all_scores():
        seg = rfm.segment_of(s, n_purchases)
        band = recent if s.recency >= 4 else slipping if s.recency >= 2 else gone
        assert seg in band, (s, seg)


def test_more_value_never_moves_a_user_to_a_lower_value_segment() -> None:
    """Raising F or M (same recency) never turns a high-value segment into a low-value one."""
    high = {"champions", "loyal", "important to retain", "important to win back"}
    for s in _all_scores():
        seg = rfm.segment_of(s, 5)
        for bumped in (s._replace(frequency=min(5, s.frequency + 1)), s._replace(monetary=min(5, s.monetary + 1))):
            if seg in high:
                assert rfm.segment_of(bumped, 5) in high, (s, bumped)


def test_segment_from_events_end_to_end(population: dict[str, list[float]]) -> None:
    """A user built by folding real events: a big recent buyer is a champion, and after a
    long silence the same history becomes important to win back."""
    state = UserState()
    start_ms = (NOW - 200 * DAY_S) * 1000
    for i in range(95):
        apply_event(state, Event("u1", start_ms + i * 2 * DAY_S * 1000, "purchase", f"e{i}", amount=12.0))
        apply_event(state, Event("u1", start_ms + i * 2 * DAY_S * 1000 + 5000, "view", f"v{i}"))
    at_last = state.last_purchase_s
    assert rfm.rfm_segment(state, at_last + DAY_S, population) == "champions"
    assert rfm.rfm_segment(state, at_last + 365 * DAY_S, population) == "important to win back"
