"""The per-event work every peer does, in one place, so that only the framework differs.

Per user: counts by event type in day buckets (event time), pruned after 28 days, from which the
rolling 1/7/28-day activity by type is summed; last seen; and a score from them. The state is a
small JSON-friendly dict (Quix Streams serialises state as JSON, Faust tables as JSON, Bytewax
pickles), updated in place and returned.

The score is deliberately simple (a logistic of recent-vs-usual activity and days since last
seen): the peers are measured for the streaming work around it, not for churnwatch's models.

>>> s = update(None, "view", 86_400_000 * 30)
>>> s = update(s, "purchase", 86_400_000 * 31)
>>> windows(s, 86_400_000 * 31)["d7"]
[1, 0, 0, 1, 0, 0]
>>> 0.0 < s["score"] < 1.0
True
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TYPES", "WINDOW_DAYS", "DAY_MS", "update", "windows", "score"]

TYPES = ("view", "click", "message", "purchase", "cancel", "other")
_INDEX = {t: i for i, t in enumerate(TYPES)}
WINDOW_DAYS = (1, 7, 28)
DAY_MS = 86_400_000


def windows(state: dict[str, Any], now_ms: int) -> dict[str, list[int]]:
    """Counts by type over the last 1, 7 and 28 days (whole days, the current one included)."""
    today = now_ms // DAY_MS
    out = {f"d{w}": [0] * len(TYPES) for w in WINDOW_DAYS}
    for day, counts in state["days"].items():
        age = today - int(day)
        for w in WINDOW_DAYS:
            if 0 <= age < w:
                acc = out[f"d{w}"]
                for i, c in enumerate(counts):
                    acc[i] += c
    return out


def score(win: dict[str, list[int]], last_seen_ms: int, now_ms: int) -> float:
    """Risk in (0, 1): high when the last week is quiet against the month, or the user is silent."""
    week, month = sum(win["d7"]), sum(win["d28"])
    silent_days = max(0, now_ms - last_seen_ms) / DAY_MS
    expected_week = month * 7 / 28
    z = 1.5 * (expected_week - week) / (1.0 + expected_week) + 0.3 * silent_days - 2.0 * (win["d28"][3] > 0)
    return 1.0 / (1.0 + math.exp(-z))


def update(state: dict[str, Any] | None, kind: str, ts_ms: int) -> dict[str, Any]:
    """Fold one event into ``state`` (``None``: a new user) and rescore; returns the state."""
    if state is None:
        state = {"days": {}, "last": ts_ms, "score": 0.0}
    day = ts_ms // DAY_MS
    key = str(day)  # JSON object keys are strings: the same state round-trips through every store
    counts = state["days"].get(key)
    if counts is None:
        counts = state["days"][key] = [0] * len(TYPES)
        for old in [d for d in state["days"] if int(d) <= day - WINDOW_DAYS[-1]]:
            del state["days"][old]
    counts[_INDEX.get(kind, 5)] += 1
    if ts_ms > state["last"]:
        state["last"] = ts_ms
    state["score"] = score(windows(state, state["last"]), state["last"], state["last"])
    return state
