"""Score history for the console: one point per user and week (health, temperature, risk), capped.

Why a separate record: the effectively-once state (``UserState``) keeps decayed counters, not the
past, and the console shows each user's trend over the last weeks. The point of week w is the
user's scores at the end of w (Monday 00:00 UTC of the next week), from the state at that
instant: ``advance_sampled`` splits the worker's ``models.engine.advance`` call at each week
start it crosses, which by ``advance``'s batching guarantee gives the same outcome as one call,
and scores the state in between. A user costs one extra ``advance`` and ``score`` per week, not
per event.

The points are a function of event time only, whatever the batches, as long as each user's own
events arrive in time order across a week start (an event before B arriving after one of the same
user's events at or after B, within the allowed lateness, is not in B's point: B was sampled
when that later event passed it, as a closed window misses a late record). Week start B is sampled
by the call whose events or review clock first pass it, also when only the user's own events
pass it (they may run ahead of the partition's review clock by the allowed lateness: the reviews
before B would run before those events anyway, so the state as of B is the same). A week in
which the user was neither active nor reviewed has no stored point until the user is next
touched; :func:`complete_points` works those out on read from the stored state (which has not
moved since), so the console shows, as of any event time, the points one call over every event
would have made (tests/test_score_history.py checks it for every cut into batches). The console
adds the current week from the live scores.

Layout (``cw:{b}:hist:<g>``, HASH user_id -> points, a listpack like the state hashes): each
point is 5 bytes, ``>HBBB`` = week number since 1970-01-05, health 0-100, temperature 0-100,
risk x 200 (0.5% steps); at most ``HISTORY_WEEKS`` points, oldest first. Written by
``lua/history.lua`` in the same pipeline as the bucket's state write, only if that write applied;
it is not part of the fenced state (tests compare states, not this).

>>> p = encode_point(2900, 71.4, 35.6, 0.2331)
>>> len(p), decode_points(p)
(5, [HistoryPoint(week=2900, health=71, temperature=36, risk=0.235)])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from operator import attrgetter
from typing import Sequence

from models.engine import Outcome, advance
from models.events import Event
from models.model import ChurnModel
from models.health import health
from models.scoring import assess
from models.state import UserState
from models.temperature import p_back_within

__all__ = ["HISTORY_WEEKS", "POINT_BYTES", "HistoryPoint", "week_of", "week_start_s", "encode_point",
           "decode_points", "advance_sampled", "complete_points", "state_time_s"]

HISTORY_WEEKS = 12
POINT_BYTES = 5
_POINT = struct.Struct(">HBBB")
_WEEK_S = 7 * 86_400
_MONDAY_S = 4 * 86_400  # 1970-01-05, the first Monday after the epoch
_TS_MS = attrgetter("ts_ms")


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    week: int
    health: int
    temperature: int
    risk: float

    @property
    def start_s(self) -> int:
        return week_start_s(self.week)


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
    return max(st.last_seen_s, st.last_review_s)


def encode_point(week: int, health: float, temperature: float, risk: float) -> bytes:
    if not 0 <= week < 65_536:
        raise ValueError(f"history week must be 0-65535 weeks since 1970-01-05, got {week}")
    clamp = lambda x, hi: max(0, min(hi, int(round(x))))  # noqa: E731
    return _POINT.pack(week, clamp(health, 100), clamp(temperature, 100), clamp(risk * 200, 200))


def decode_points(raw: bytes | None) -> list[HistoryPoint]:
    """The stored points, oldest first (an empty list for None or a damaged record)."""
    if not raw or len(raw) % POINT_BYTES:
        return []
    out = []
    for week, h, t, r in _POINT.iter_unpack(raw):
        out.append(HistoryPoint(week, h, t, r / 200))
    return out


def _point(week: int, st: UserState, now_s: int, model: ChurnModel) -> bytes:
    """The three numbers of ``models.scoring.score`` without the rest (reasons cost most of a score)."""
    a = assess(st, now_s, model)
    return encode_point(week, health(a.signals, model.population), 100.0 * p_back_within(a.signals, model)[0], a.risk)


def advance_sampled(user_id: str, old: UserState | None, events: Sequence[Event], until_ms: int,
                    model: ChurnModel) -> tuple[Outcome, list[bytes]]:
    """``advance(user_id, old, events, until_ms, model)`` and a point for every week it completes.

    Split at each week start B in (state time, max(until, last event)]: ``advance`` up to B with
    the events before B, score at B (the end of the week before), go on; the last part runs to
    ``until_ms``. The outcome equals one call (``advance``'s docstring: in-order parts give the
    same result; a B past ``until_ms`` has events at or after it, before which those reviews run).
    """
    if old is not None:
        start_s = state_time_s(old)
    elif events:
        start_s = min(map(_TS_MS, events)) // 1000
    else:
        return advance(user_id, old, events, until_ms, model), []
    # Up to the later of the review clock and the user's last event: a week start that only the
    # user's events pass is sampled now, before they move the state past it (module docstring).
    reach_ms = until_ms
    for ev in events:
        if ev.ts_ms > reach_ms:
            reach_ms = ev.ts_ms
    last = week_of(reach_ms // 1000)
    weeks = range(max(week_of(start_s) + 1, last - HISTORY_WEEKS + 1), last + 1)
    if not weeks:
        return advance(user_id, old, events, until_ms, model), []
    st, alerts, points, rest = old, [], [], list(events)
    for w in weeks:
        b_ms = week_start_s(w) * 1000
        part = [ev for ev in rest if ev.ts_ms < b_ms]
        if (st is None or not st.n_events) and not part:
            continue  # the user does not exist yet at this week's start
        rest = [ev for ev in rest if ev.ts_ms >= b_ms]
        out = advance(user_id, st, part, b_ms, model)
        st = out.state
        alerts += out.alerts
        if st.n_events:  # billing statements alone are no use of the product (models.engine): no scores yet
            points.append(_point(w - 1, st, b_ms // 1000, model))
    final = advance(user_id, st, rest, until_ms, model)
    final.alerts[:0] = alerts
    return final, points


def complete_points(user_id: str, st: UserState, stored: Sequence[HistoryPoint], as_of_s: int,
                    model: ChurnModel) -> list[HistoryPoint]:
    """The stored points plus those of the weeks completed between the state's time and
    ``as_of_s`` that no call has sampled yet (the user was not touched since), from ``st`` advanced
    with no events to each week start: exactly what ``advance_sampled`` will store when the user
    is next touched. At most :data:`HISTORY_WEEKS` points, oldest first."""
    weeks = range(max(week_of(state_time_s(st)) + 1, week_of(as_of_s) - HISTORY_WEEKS + 1), week_of(as_of_s) + 1)
    if not st.n_events or not weeks:
        return list(stored)[-HISTORY_WEEKS:]
    have = {p.week for p in stored}
    extra: list[HistoryPoint] = []
    for w in weeks:
        b_s = week_start_s(w)
        st = advance(user_id, st, (), b_s * 1000, model).state
        if w - 1 not in have:
            extra.extend(decode_points(_point(w - 1, st, b_s, model)))
    return sorted([*stored, *extra], key=lambda p: p.week)[-HISTORY_WEEKS:]
