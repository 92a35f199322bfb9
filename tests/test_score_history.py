"""The console's weekly score history (streams/worker/history.py): batching-proof and harmless.

``advance_sampled`` must give exactly ``advance``'s outcome (states byte for byte, same alerts),
and the weekly points must not depend on how the stream cut the events into batches.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.engine import advance
from models.events import EVENT_TYPES, Event
from models.model import load_model
from streams.cli.argtypes import parse_start_ms
from streams.offline.simulate import generate
from streams.worker.history import HISTORY_WEEKS, advance_sampled, decode_points

MODEL = load_model(None)


def _users(n: int = 25) -> dict[str, list]:
    events, _ = generate(seed=5, n_users=n, start_ms=parse_start_ms("2026-01-01"), days=150)
    by_user: dict[str, list] = {}
    for ev in events:
        by_user.setdefault(ev.user_id, []).append(ev)
    return by_user


def _run(uid: str, events: list, cuts: list[int], end_ms: int) -> tuple[bytes, list[str], dict[int, bytes]]:
    """Feed ``events`` in batches ending at the ``cuts`` (ms), as the pipeline does; keep points by week."""
    st, alerts, points = None, [], {}
    bounds = [*cuts, end_ms]
    lo = 0
    for until in bounds:
        part = [ev for ev in events if lo <= ev.ts_ms < until]
        lo = until
        if st is None and not part:
            continue
        out, pts = advance_sampled(uid, st, part, until, MODEL)
        st = out.state
        alerts += [a.alert_id for a in out.alerts]
        for p in pts:
            points[decode_points(p)[0].week] = p
    return st.to_bytes(), alerts, points


def test_same_outcome_as_advance_and_points_independent_of_batches() -> None:
    rng = random.Random(3)
    end_ms = parse_start_ms("2026-01-01") + 150 * 86_400_000
    for uid, events in _users().items():
        whole = advance(uid, None, events, end_ms, MODEL)
        one = _run(uid, events, [], end_ms)
        assert one[0] == whole.state.to_bytes() and one[1] == [a.alert_id for a in whole.alerts]
        for _ in range(3):
            cuts = sorted(rng.sample(range(events[0].ts_ms + 1, end_ms), rng.randint(1, 40)))
            again = _run(uid, events, cuts, end_ms)
            assert again[0] == one[0] and again[1] == one[1]
            shared = set(again[2]) & set(one[2])
            assert all(again[2][w] == one[2][w] for w in shared), "a week's point does not depend on batching"
        assert 1 <= len(one[2]) <= HISTORY_WEEKS


def test_a_point_holds_the_numbers_of_score() -> None:
    from models.scoring import score
    from streams.worker.history import _point, encode_point

    for uid, events in list(_users(8).items()):
        out = advance(uid, None, events, events[-1].ts_ms + 1, MODEL)
        for days in (0, 3, 20):
            now_s = out.state.last_seen_s + days * 86_400
            s = score(out.state, now_s, MODEL)
            assert _point(7, out.state, now_s, MODEL) == encode_point(7, s.health, s.temperature, s.risk)


# -- any cut into batches, as the worker cuts them ------------------------------------------------

_T0_MS = parse_start_ms("2026-01-05")  # a Monday: week starts fall inside the histories


def _stream_history(events: list, cuts: list[int], as_of_ms: int, lateness_ms: int) -> dict[str, list]:
    """Each user's history as the console shows it as of ``as_of_ms`` after a worker consumed
    ``events`` (one partition, offset order) in batches ending before the offsets ``cuts``: each
    cycle advances the users with events in it and those with a review due before the
    partition's review clock (stream time - ``lateness_ms``, never going back), to that clock; the
    store keeps the last HISTORY_WEEKS points a user (lua/history.lua); then a caught-up sweep."""
    from collections import defaultdict

    from streams.worker.history import complete_points

    states: dict = {}
    stored: dict[str, dict[int, bytes]] = defaultdict(dict)
    stream_ms = floor_ms = events[0].ts_ms - lateness_ms

    def cycle(batch: list, until: int) -> None:
        by_user: dict[str, list] = defaultdict(list)
        for ev in batch:
            by_user[ev.user_id].append(ev)
        due = {u for u, s in states.items() if 0 < s.next_review_s and s.next_review_s * 1000 < until}
        for uid in sorted(set(by_user) | due):
            out, pts = advance_sampled(uid, states.get(uid), by_user[uid], until, MODEL)
            states[uid] = out.state
            for p in pts:
                stored[uid][decode_points(p)[0].week] = p
            stored[uid] = dict(sorted(stored[uid].items())[-HISTORY_WEEKS:])

    for lo, hi in zip([0, *cuts], [*cuts, len(events)]):
        batch = events[lo:hi]
        if batch:
            stream_ms = max(stream_ms, *(ev.ts_ms for ev in batch))
            floor_ms = max(stream_ms - lateness_ms, floor_ms)
            cycle(batch, floor_ms)
    cycle([], stream_ms)  # caught up and idle: the clock reaches the stream time
    return {uid: complete_points(uid, st, [decode_points(p)[0] for p in stored[uid].values()], as_of_ms // 1000, MODEL)
            for uid, st in states.items()}


@st.composite
def _streams(draw: st.DrawFn) -> tuple[list, list[int], int, int]:
    """A few users' events over up to 13 weeks in offset order (event time, within the allowed
    lateness), cut anywhere into batches, an as-of time at or after the last event, and the
    allowed lateness (the default 6 hours, or days: the clock then trails the events further)."""
    lateness_ms = draw(st.sampled_from((6 * 3_600_000, 2 * 86_400_000, 5 * 86_400_000)))
    n = draw(st.integers(1, 45))
    t, out = _T0_MS + draw(st.integers(0, 7 * 86_400_000)), []
    for i in range(n):
        t += draw(st.one_of(st.integers(0, 6 * 3_600_000), st.integers(0, 12 * 86_400_000)))
        out.append(Event(draw(st.sampled_from(("ann", "bob", "cy"))), t, draw(st.sampled_from(EVENT_TYPES)), f"e{i:03d}"))
    for i in range(len(out) - 1):  # now and then one that arrives late, within the allowed lateness
        if draw(st.booleans()) and out[i + 1].ts_ms - out[i].ts_ms < lateness_ms // 2 and out[i].user_id != out[i + 1].user_id:
            out[i], out[i + 1] = out[i + 1], out[i]
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(out) - 1)), max_size=len(out)))))
    return out, cuts, max(ev.ts_ms for ev in out) + draw(st.integers(0, 40 * 86_400_000)), lateness_ms


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_streams())
def test_history_is_the_same_for_every_cut_into_batches(case: tuple[list, list[int], int, int]) -> None:
    events, cuts, as_of_ms, lateness_ms = case
    split = _stream_history(events, cuts, as_of_ms, lateness_ms)
    assert split == _stream_history(events, [], as_of_ms, lateness_ms), "the same history whatever the batches"
    for uid, points in split.items():  # and what one call over all the user's events gives (the backtest's)
        mine = [ev for ev in events if ev.user_id == uid]
        _, pts = advance_sampled(uid, None, mine, as_of_ms, MODEL)
        assert points == [decode_points(p)[0] for p in pts][-HISTORY_WEEKS:]
