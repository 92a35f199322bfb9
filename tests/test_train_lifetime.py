"""``train`` chooses per product how to weigh the ``lifetime:`` volumes (issue 11): as counted
since first seen, or a subscriber's as carried to the renewal (models.risk.by_renewal), by
out-of-fold log-loss on the product's own history (streams.offline.train.choose_lifetime); the
model file keeps the choice (``lifetime_to_renewal``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from models.events import Event, Subscription
from models.model import ChurnModel
from streams.offline.train import DAY_MS, LIFETIME_WAYS, PriorChoice, carried_to_renewal, choose_lifetime, train

START_MS = 1_767_225_600_000  # 2026-01-01
NAMES = ("share:view", "lifetime:view")


def _history(carried: bool, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows of 300 users x 8 dates: a view count since first seen, half of the rows with a period
    end ahead (a factor 1-4 to the renewal), and a churn drawn from the volume as counted
    (``carried`` False) or as carried to the renewal (True): the fewer, the likelier."""
    rng = np.random.default_rng(seed)
    users = [f"u{i}" for i in range(300) for _ in range(8)]
    count = rng.lognormal(3.0, 1.0, len(users))
    factors = np.where(rng.random(len(users)) < 0.5, 1.0 + 3.0 * rng.random(len(users)), 1.0)
    volume = np.log1p(count * factors if carried else count)
    y = (rng.random(len(users)) < 1.0 / (1.0 + np.exp(2.0 * (volume - 3.5) + 1.5))).astype(np.float64)
    X = np.column_stack([rng.random(len(users)), np.log1p(count)])
    return X, factors, y, users


@pytest.mark.parametrize("carried", [False, True])
def test_train_keeps_the_way_of_weighing_volumes_that_predicts_better_out_of_fold(carried: bool) -> None:
    """On a history whose churn follows the volume as counted, the count is kept; on one whose
    churn follows the volume at the renewal, the carried volume is: in both, the way whose
    out-of-fold log-loss is the lower, both figures reported."""
    X, factors, y, users = _history(carried)
    to_renewal, choice, report = choose_lifetime(NAMES, X, factors, y, users, lambda _: PriorChoice("zero", 1e-3, 1e-3, {}), {})
    losses = report["cv_log_loss"]
    assert set(losses) == set(report["cv_auc"]) == set(LIFETIME_WAYS)
    assert to_renewal is carried
    assert report["chosen"] == min(LIFETIME_WAYS, key=losses.get) == LIFETIME_WAYS[carried]
    assert report["difference"][0] == pytest.approx(losses["to_renewal"] - losses["since_first_seen"], abs=2e-6)
    assert report["rows_to_renewal"] == int((factors > 1.0).sum()) and choice.l2 == 1e-3


def test_no_period_end_leaves_nothing_to_choose() -> None:
    """Without a row whose paid period ends after its last activity the two ways are one: the
    count since first seen, nothing reported, and the given penalty chosen once."""
    X, _, y, users = _history(False)
    picked: list[np.ndarray] = []
    to_renewal, _, report = choose_lifetime(NAMES, X, np.ones(len(y)), y, users,
                                            lambda Xf: picked.append(Xf) or PriorChoice("zero", 1e-3, 1e-3, {}), {})
    assert (to_renewal, report, len(picked)) == (False, {}, 1)


def test_carried_volumes_are_the_count_times_the_factor() -> None:
    X = np.array([[0.5, math.log1p(40.0)], [0.5, math.log1p(40.0)]])
    out = carried_to_renewal(NAMES, X, np.array([1.5, 1.0]))
    assert math.expm1(out[0, 1]) == pytest.approx(60.0) and out[1, 1] == X[1, 1] and (out[:, 0] == X[:, 0]).all()


def _subscribers(statements: bool) -> tuple[list[Event], dict[str, int]]:
    """40 monthly subscribers who view daily, a quarter of them stopping and leaving early."""
    evs: list[Event] = []
    labels: dict[str, int] = {}
    for i in range(40):
        last = 50 + 3 * i if i % 4 == 0 else 150
        evs += [Event(f"u{i}", START_MS + d * DAY_MS + i * 60_000, "view", f"{i}-{d}") for d in range(0, last + 1, 1 + i % 3)]
        if i % 4 == 0:
            labels[f"u{i}"] = evs[-1].ts_ms
        if statements:
            evs += [Event(f"u{i}", START_MS + (m * 30 + i % 30) * DAY_MS, "subscription", f"{i}-s{m}", 0.0, "",
                          Subscription("active", "Pro", 999, 0, START_MS + ((m + 1) * 30 + i % 30) * DAY_MS))
                    for m in range(5) if m * 30 + i % 30 <= last]
    return sorted(evs, key=lambda e: e.ts_ms), labels


def test_the_model_file_keeps_the_choice_and_the_report_says_both_ways() -> None:
    """A subscription history: the report gives both ways' out-of-fold figures, the model weighs
    the one with the lower loss and its file keeps it through a round trip; without the
    statements nothing is chosen and the file has no such field (its id as before)."""
    evs, labels = _subscribers(True)
    model, report = train(evs, labels_ms=labels, l2=0.1, alert_share=None)
    lifetime = report["lifetime_volumes"]
    assert lifetime["rows_to_renewal"] > 0 and set(lifetime["cv_log_loss"]) == set(LIFETIME_WAYS)
    assert lifetime["chosen"] == min(LIFETIME_WAYS, key=lifetime["cv_log_loss"].get)
    assert model.lifetime_to_renewal is (lifetime["chosen"] == "to_renewal")
    again = ChurnModel.from_json(model.to_json())
    assert again == model and again.compiled.lifetime_to_renewal is model.lifetime_to_renewal
    forced = model.with_(lifetime_to_renewal=True)
    assert json.loads(forced.to_json())["lifetime_to_renewal"] is True
    assert ChurnModel.from_json(forced.to_json()).lifetime_to_renewal is True
    plain, plain_report = train([e for e in evs if e.type != "subscription"], labels_ms=labels, l2=0.1, alert_share=None)
    assert "lifetime_volumes" not in plain_report and "lifetime_to_renewal" not in json.loads(plain.to_json())


def test_a_file_says_the_setting_as_true_or_false() -> None:
    with pytest.raises(ValueError, match="lifetime_to_renewal must be true or false"):
        ChurnModel.from_json(ChurnModel().to_json().replace('"format"', '"lifetime_to_renewal": "yes",\n  "format"'))
