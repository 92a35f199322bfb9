"""Score history for the console: one point per user and week (health, temperature, risk), capped.

Why a separate record: the effectively-once state (``UserState``) keeps decayed counters, not the
past, and the console shows each user's trend over the last weeks. The point of week w is the
user's scores at the end of w (Monday 00:00 UTC of the next week), from the state at that
instant: ``advance_sampled`` splits the worker's ``models.engine.advance`` call at each week
start it crosses, which by ``advance``'s batching guarantee gives the same outcome as one call,
and scores the state in between. A user costs one extra ``advance`` and ``score`` per week, not
per event. The sampling (``advance_sampled``, the points' encoding, the week arithmetic) lives in
models/weekly.py, compiled with the scoring core, and is re-exported here.

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

from dataclasses import dataclass
from typing import Sequence

from models.engine import advance
from models.model import ChurnModel
from models.state import UserState
# The sampling runs for every user the worker advances: compiled with the scoring core (models/weekly.py).
from models.weekly import HISTORY_WEEKS, POINT, _point, advance_sampled, encode_point, state_time_s, week_of, week_start_s

__all__ = ["HISTORY_WEEKS", "POINT_BYTES", "HistoryPoint", "week_of", "week_start_s", "encode_point",
           "decode_points", "advance_sampled", "complete_points", "state_time_s"]

POINT_BYTES = 5


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    week: int
    health: int
    temperature: int
    risk: float

    @property
    def start_s(self) -> int:
        return week_start_s(self.week)


def decode_points(raw: bytes | None) -> list[HistoryPoint]:
    """The stored points, oldest first (an empty list for None or a damaged record)."""
    if not raw or len(raw) % POINT_BYTES:
        return []
    out = []
    for week, h, t, r in POINT.iter_unpack(raw):
        out.append(HistoryPoint(week, h, t, r / 200))
    return out


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
