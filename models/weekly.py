"""The console's weekly score points, sampled as ``advance`` runs: the hot part of streams/worker/history.py.

Why here: the worker samples a point for every user whose call crosses a week start, and checks
every call for one; as Python that bookkeeping cost about as much as a review's scoring on the
review-heavy workload (benchmarks/review_cycle.py), so it is compiled with the scoring core
(models/_native.py). streams/worker/history.py keeps the record's layout, the reading side and
the reasons (its module docstring); it re-exports these names.

>>> p = encode_point(2900, 71.4, 35.6, 0.2331)
>>> len(p), p.hex()
(5, '0b5447242f')
"""

from __future__ import annotations

import struct
from typing import Final, Sequence

from models.compiled import CompiledModel
from models.engine import Alert, Mark, Outcome, Turn, advance
from models.events import Event
from models.health import health
from models.model import ChurnModel
from models.scoring import assess
from models.state import UserState
from models.temperature import p_back_within

__all__ = ["HISTORY_WEEKS", "POINT", "advance_sampled", "encode_point", "state_time_s", "week_of", "week_start_s"]

HISTORY_WEEKS: Final[int] = 12
#: One point: week number since 1970-01-05, health 0-100, temperature 0-100, risk x 200.
POINT: Final[struct.Struct] = struct.Struct(">HBBB")
_WEEK_S: Final[int] = 7 * 86_400
_MONDAY_S: Final[int] = 4 * 86_400  # 1970-01-05, the first Monday after the epoch


def week_of(epoch_s: int) -> int:
    """Week number of an epoch second, weeks starting Monday 00:00 UTC.

    >>> week_of(1_767_225_600), week_start_s(week_of(1_767_225_600))  # Thu 2026-01-01
    (2921, 1766966400)
    """
    return (epoch_s - _MONDAY_S) // _WEEK_S


def week_start_s(week: int) -> int:
    return _MONDAY_S + week * _WEEK_S


def state_time_s(st: UserState) -> int:
    """The event time a state refers to: its last event or its last review, whichever is later."""
    return st.last_seen_s if st.last_seen_s > st.last_review_s else st.last_review_s


def _clamp(x: float, hi: int) -> int:
    n = int(round(x))
    return 0 if n < 0 else hi if n > hi else n


def encode_point(week: int, health: float, temperature: float, risk: float) -> bytes:
    if not 0 <= week < 65_536:
        raise ValueError(f"history week must be 0-65535 weeks since 1970-01-05, got {week}")
    return POINT.pack(week, _clamp(health, 100), _clamp(temperature, 100), _clamp(risk * 200, 200))


def _point(week: int, st: UserState, now_s: int, model: ChurnModel) -> bytes:
    """The three numbers of ``models.scoring.score`` without the rest (reasons cost most of a score)."""
    a = assess(st, now_s, model)
    return encode_point(week, health(a.signals, model.population), 100.0 * p_back_within(a.signals, model)[0], a.risk)


def advance_sampled(user_id: str, old: UserState | None, events: Sequence[Event], until_ms: int,
                    model: ChurnModel, period_ms: int = 0,
                    marks: list[Mark] | None = None, c: CompiledModel | None = None,
                    turns: list[Turn] | None = None) -> tuple[Outcome, list[bytes]]:
    """``advance(user_id, old, events, until_ms, model, period_ms, marks)`` and a point for every
    week it completes.

    Split at each week start B in (state time, max(until, last event)]: ``advance`` up to B with
    the events before B, score at B (the end of the week before), go on; the last part runs to
    ``until_ms``. The outcome equals one call (``advance``'s docstring: in-order parts give the
    same result; a B past ``until_ms`` has events at or after it, before which those reviews run).
    ``period_ms``, ``marks``, ``c``, ``turns``: ``advance``'s, through every part (a period the parts cut is
    marked once).
    """
    # Up to the later of the review clock and the user's last event: a week start that only the
    # user's events pass is sampled now, before they move the state past it (streams/worker/history.py).
    reach_ms = until_ms
    first_ms = 0
    seen = False
    # walked as a list (the worker's are): a Sequence is walked through the generic iterator protocol
    evs: list[Event] = events if isinstance(events, list) else list(events)
    for ev in evs:
        ts = ev.ts_ms
        if ts > reach_ms:
            reach_ms = ts
        if not seen or ts < first_ms:
            first_ms, seen = ts, True
    if old is not None:
        start_s = state_time_s(old)
    elif seen:
        start_s = first_ms // 1000
    else:
        return advance(user_id, old, evs, until_ms, model, period_ms, marks, c, turns), []
    last = week_of(reach_ms // 1000)
    w = week_of(start_s) + 1
    if w < last - HISTORY_WEEKS + 1:
        w = last - HISTORY_WEEKS + 1
    if w > last:
        return advance(user_id, old, evs, until_ms, model, period_ms, marks, c, turns), []
    st = old
    alerts: list[Alert] = []
    points: list[bytes] = []
    rest = list(evs)
    while w <= last:
        b_ms = week_start_s(w) * 1000
        part = [ev for ev in rest if ev.ts_ms < b_ms]
        if (st is None or not st.n_events) and not part:
            w += 1
            continue  # the user does not exist yet at this week's start
        rest = [ev for ev in rest if ev.ts_ms >= b_ms]
        out = advance(user_id, st, part, b_ms, model, period_ms, marks, c, turns)
        st = out.state
        alerts += out.alerts
        if st.n_events:  # billing statements alone are no use of the product (models.engine): no scores yet
            points.append(_point(w - 1, st, b_ms // 1000, model))
        w += 1
    final = advance(user_id, st, rest, until_ms, model, period_ms, marks, c, turns)
    final.alerts[:0] = alerts
    return final, points
