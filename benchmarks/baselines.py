"""Simple baselines of the quality table: what an analyst gets from event counts alone.

Why: a churn score is only worth its complexity if it beats these on the same rows. Three
scorers, each a risk (higher = more likely to churn) of a user at an as-of time, computed from
the events strictly before it with the product's own event type names:

- ``events_28d``: minus the number of events in the 28 days before (fewer = riskier);
- ``days_since_last``: days since the user's last event;
- ``logistic_per_type``: a logistic regression on log(1 + count) per event type over the last 7
  and the last 28 days (the ``MAX_TYPES`` most frequent types), fitted on the training half's
  rows (``models.risk.LogisticRisk``, the project's one logistic fit) and applied to the judged
  half;
- ``logistic_per_type_activity``: the same regression without the billing statements' column,
  on populations whose file has statements (the fightchurn ones) only.

Billing statements (``subscription`` rows, docs/REVENUE.md) are not usage: the first two
baselines, "events in the last 28 days" and "days since the last event", count activity only, as
the issue defines them (a renewal statement is not the user coming back). The per-type regression
is fitted on the per-type counts of the file, so the statements are one more type column in it:
the baseline sees the same file the models do, the stronger and therefore the more honest
comparison (on a monthly plan, "no statement in the last 28 days" is a missed renewal). The
regression without that column is reported beside it, and the checks' best simple baseline is
the best of all of them. A user's first activity (``UserEvents.ts``) still decides when the user
is "seen" (``panel_rows``, ``benchmarks.quality.common_rows``), so the statements change no row
that is judged.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from benchmarks.populations import Row
from models.risk import LogisticRisk

__all__ = ["BASELINES", "MAX_TYPES", "STATEMENT_TYPE", "UserEvents", "activity_columns", "count_features", "fit_predict_logistic", "index_events", "labels_at", "panel_rows", "top_types"]

DAY_MS = 86_400_000
MAX_TYPES = 16
BASELINES = ("events_28d", "days_since_last", "logistic_per_type", "logistic_per_type_activity")
#: The type name of a billing statement (the ``subscription`` role's default name, models.vocabulary).
STATEMENT_TYPE = "subscription"


class UserEvents:
    """One user's event times, sorted: its activity (every event but billing statements) and
    per event type (statements included)."""

    __slots__ = ("ts", "by_type")

    def __init__(self, ts: np.ndarray, by_type: dict[str, np.ndarray]) -> None:
        self.ts = ts
        self.by_type = by_type


def index_events(rows: Iterable[Row]) -> dict[str, UserEvents]:
    """user -> :class:`UserEvents` of ``rows``, for the users with any activity (a user with
    billing statements only has not been seen using the product).

    >>> idx = index_events([("a", 5, "post", None), ("a", 1, "like", None), ("a", 3, "post", None), ("a", 0, "subscription", None),
    ...                     ("b", 0, "subscription", None)])
    >>> idx["a"].ts.tolist(), idx["a"].by_type["post"].tolist(), idx["a"].by_type["subscription"].tolist(), "b" in idx
    ([1, 3, 5], [3, 5], [0], False)
    """
    times: dict[str, list[int]] = {}
    typed: dict[str, dict[str, list[int]]] = {}
    for user, ts, kind, _ in rows:
        if kind != STATEMENT_TYPE:
            times.setdefault(user, []).append(ts)
        typed.setdefault(user, {}).setdefault(kind, []).append(ts)
    return {
        user: UserEvents(np.sort(np.array(ts, dtype=np.int64)), {k: np.sort(np.array(v, dtype=np.int64)) for k, v in typed[user].items()})
        for user, ts in times.items()
    }


def top_types(rows: Iterable[Row], limit: int = MAX_TYPES) -> list[str]:
    """The ``limit`` most frequent event types, most frequent first (ties by name).

    >>> top_types([("a", 1, "x", None), ("a", 2, "y", None), ("b", 3, "y", None)], 1)
    ['y']
    """
    counts = Counter(kind for _, _, kind, _ in rows)
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def activity_columns(types: Sequence[str]) -> list[int]:
    """The columns of :func:`count_features`' matrix that count activity (all but the billing
    statements'), 7-day ones first.

    >>> activity_columns(["post", "subscription", "like"])
    [0, 2, 3, 5]
    """
    keep = [j for j, kind in enumerate(types) if kind != STATEMENT_TYPE]
    return keep + [len(types) + j for j in keep]


def _window_counts(ts: np.ndarray, as_of: np.ndarray, days: int) -> np.ndarray:
    """Events in [as_of - days, as_of) for each as-of time."""
    return np.searchsorted(ts, as_of, "left") - np.searchsorted(ts, as_of - days * DAY_MS, "left")


def count_features(index: Mapping[str, UserEvents], users: Sequence[str], as_of_ms: Sequence[int],
                   types: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """For rows (users[i], as_of_ms[i]): the two simple scores (``events_28d``, ``days_since_last``,
    as risks) and the logistic regression's matrix, log(1 + count) per type for 7 then 28 days.

    >>> idx = index_events([("a", 0, "post", None), ("a", 10 * DAY_MS, "like", None)])
    >>> scores, X = count_features(idx, ["a", "a"], [5 * DAY_MS, 40 * DAY_MS], ["post", "like"])
    >>> scores["events_28d"].tolist(), scores["days_since_last"].tolist()
    ([-1.0, -0.0], [5.0, 30.0])
    >>> (np.expm1(X) + 0.5).astype(int).tolist()
    [[1, 0, 1, 0], [0, 0, 0, 0]]
    """
    n = len(users)
    events_28d = np.zeros(n)
    since = np.full(n, np.inf)
    X = np.zeros((n, 2 * len(types)))
    order: dict[str, list[int]] = {}
    for i, user in enumerate(users):
        order.setdefault(user, []).append(i)
    empty = np.zeros(0, dtype=np.int64)
    for user, rows in order.items():
        ev = index.get(user)
        if ev is None:
            continue
        at = np.array([as_of_ms[i] for i in rows], dtype=np.int64)
        events_28d[rows] = _window_counts(ev.ts, at, 28)
        last = np.searchsorted(ev.ts, at, "left") - 1
        seen = last >= 0
        since[np.array(rows)[seen]] = (at[seen] - ev.ts[last[seen]]) / DAY_MS
        for j, kind in enumerate(types):
            ts = ev.by_type.get(kind, empty)
            X[rows, j] = np.log1p(_window_counts(ts, at, 7))
            X[rows, len(types) + j] = np.log1p(_window_counts(ts, at, 28))
    return {"events_28d": -events_28d, "days_since_last": since}, X


def panel_rows(index: Mapping[str, UserEvents], as_of_ms: Sequence[int], horizon_ms: int, known_until_ms: int) -> tuple[list[str], list[int]]:
    """Every (user, as-of) of a training half: the user was seen before the as-of time and the
    horizon after it lies inside the data, as in the backtest's panels.

    >>> idx = index_events([("a", 0, "post", None), ("b", 20, "post", None)])
    >>> panel_rows(idx, [10, 30, 90], 50, 100)
    (['a', 'a', 'b'], [10, 30, 30])
    """
    users: list[str] = []
    dates: list[int] = []
    for d in sorted(as_of_ms):
        if d + horizon_ms > known_until_ms:
            continue
        for user in sorted(index):
            if index[user].ts[0] < d:
                users.append(user)
                dates.append(d)
    return users, dates


def labels_at(users: Sequence[str], as_of_ms: Sequence[int], churned_at_ms: Mapping[str, int], horizon_ms: int) -> np.ndarray:
    """1 where the user is gone by the end of the horizon (``churned_at <= as_of + horizon``),
    the backtest's "open" panel label, already-gone users included.

    >>> labels_at(["a", "a", "b"], [0, 50, 0], {"a": 40}, 30).tolist()
    [0, 1, 0]
    """
    return np.array([1 if u in churned_at_ms and churned_at_ms[u] <= d + horizon_ms else 0 for u, d in zip(users, as_of_ms)], dtype=np.int64)


def fit_predict_logistic(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """P(churn within the horizon) of the test rows from a logistic fit on the training rows.

    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]]); y = np.array([1, 1, 0, 0])
    >>> p = fit_predict_logistic(X, y, np.array([[0.0], [1.0]]))
    >>> bool(p[0] > 0.5 > p[1])
    True
    """
    names = tuple(f"x{j}" for j in range(X_train.shape[1]))
    model = LogisticRisk(features=names, nonnegative=(), l2=l2).fit(X_train, y_train.astype(np.float64))
    return model.predict_proba(X_test)
