"""The console's weekly score history (streams/worker/history.py): batching-proof and harmless.

``advance_sampled`` must give exactly ``advance``'s outcome (states byte for byte, same alerts),
and the weekly points must not depend on how the stream cut the events into batches.
"""

from __future__ import annotations

import random

from models.engine import advance
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
