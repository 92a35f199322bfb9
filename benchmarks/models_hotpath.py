"""Per-call cost of the models' hot path and the replay rate, on simulated users.

What the stream worker pays per user it touches: ``score``, ``advance`` with an event that opens
a new active day (a review), ``advance`` with a same-day event (no review), and one review of a
silent user (``models.engine._review``: assessment plus the next-review search). The states are
real ones (the golden replay's users, tests/test_models_golden.py, part way through their
histories), so the mix of buyers, stages and silences is the simulator's. The replay rate is
the golden test's batched replay (6-hour batches per touched user, then the silent tail).
``step_realistic_us_per_event``: the worker's per-user step (``models.step.advance_stored``: read
the record, advance with score history, index scores, write the record) over the e2e1 section's
simulated events (streams.offline.simulate, seed 3, the first 200k events of 40k users) in
10k-event cycles, stored records kept in a dict: the models' share of a realistic cycle without
the broker, Redis or decode (``--no-step`` leaves it out).

Each figure is the median of ``--repeat`` runs, in CPU time of the process (the machine is
shared and noisy). To compare with older code, run the same file from a tree holding the old
models/ (its imports are only ``advance``, ``_review``, ``score`` and the golden test's replay).
``.venv/bin/python -m benchmarks.models_hotpath [--repeat 3] [--users 500]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

from models.engine import Outcome, _review, advance
from models.events import Event
from models.model import ChurnModel, load_model
from models.scoring import score
from models.state import DAY_S, UserState
from tests.test_models_golden import START_MS, histories, replay_batched

__all__ = ["measure"]

_MID_MS = START_MS + 60 * 86_400_000  # states are taken here, half way through the histories


def _states_at(per_user: dict[str, list[Event]], model: ChurnModel, until_ms: int) -> dict[str, UserState]:
    out: dict[str, UserState] = {}
    for user, evs in per_user.items():
        before = [e for e in evs if e.ts_ms < until_ms]
        if before:
            out[user] = advance(user, None, before, until_ms, model).state
    return out


def _per_call_us(fn: Callable[[], int], repeat: int) -> float:
    # CPU time of this process, not wall time: on a machine shared with other work the wall
    # clock mostly measures the neighbours (the code is single-threaded pure Python).
    runs = []
    for _ in range(repeat):
        t0 = time.process_time()
        n = fn()
        runs.append((time.process_time() - t0) / n * 1e6)
    return statistics.median(runs)


def _step_cycles(n: int = 200_000, users: int = 40_000, batch: int = 10_000) -> list[tuple[list[tuple[str, list[Event]]], int]]:
    from streams.offline.simulate import generate

    events = generate(3, users, 1_767_225_600_000, 5)[0][:n]
    out = []
    for i in range(0, len(events), batch):
        part = events[i:i + batch]
        per: dict[str, list[Event]] = {}
        for ev in part:
            per.setdefault(ev.user_id, []).append(ev)
        out.append((list(per.items()), part[0].ts_ms))  # the cycle's review clock: its first event
    return out


def _run_steps(cycles: list[tuple[list[tuple[str, list[Event]]], int]], model: ChurnModel) -> int:
    from models.step import advance_stored

    stored: dict[str, bytes] = {}
    n = 0
    for per, until_ms in cycles:
        for user, evs in per:
            blob = advance_stored(user, stored.get(user), evs, until_ms, True, model, True, -1)[2]
            if blob is not None:
                stored[user] = blob
            n += len(evs)
    return n


def measure(repeat: int = 3, users: int = 500, seed: int = 2, step: bool = True) -> dict[str, float]:
    model = load_model()
    per_user = histories(seed, users)
    states = _states_at(per_user, model, _MID_MS)
    items = sorted(states.items())
    now_s = _MID_MS // 1000
    # One event each: on a later UTC day than the user's last activity, and on the same second.
    new_day = [
        (u, st, Event(u, (st.last_seen_s // DAY_S + 1) * DAY_S * 1000 + 3_600_000, "view", f"bench-{u}")) for u, st in items
    ]
    same_day = [(u, st, Event(u, st.last_seen_s * 1000, "view", f"bench-{u}")) for u, st in items]
    silent = [(u, st, max(now_s, st.last_seen_s) + 10 * DAY_S) for u, st in items]

    def run_score() -> int:
        for _, st in items:
            score(st, now_s, model)
        return len(items)

    def run_new_day() -> int:
        for u, st, ev in new_day:
            advance(u, st, (ev,), ev.ts_ms + 1, model)
        return len(new_day)

    def run_same_day() -> int:
        for u, st, ev in same_day:
            advance(u, st, (ev,), ev.ts_ms + 1, model)
        return len(same_day)

    compiled = model.compiled

    def run_review() -> int:
        for u, st, t in silent:
            c = st.copy()
            _review(u, c, t, model, Outcome(c), compiled)
        return len(silent)

    n_events = sum(len(v) for v in per_user.values())

    def run_replay() -> int:
        replay_batched(per_user, model)
        return n_events

    rate_us = _per_call_us(run_replay, repeat)
    extra: dict[str, float] = {}
    if step:
        cycles = _step_cycles()
        extra["step_realistic_us_per_event"] = round(_per_call_us(lambda: _run_steps(cycles, model), repeat), 2)
    return extra | {
        "users": len(items),
        "score_us": round(_per_call_us(run_score, repeat), 2),
        "advance_new_day_us": round(_per_call_us(run_new_day, repeat), 2),
        "advance_same_day_us": round(_per_call_us(run_same_day, repeat), 2),
        "review_silent_us": round(_per_call_us(run_review, repeat), 2),
        "replay_events": n_events,
        "replay_events_per_s": round(1e6 / rate_us),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--users", type=int, default=500, help="simulated users (seed 2, 120 days)")
    parser.add_argument("--no-step", action="store_true", help="leave out step_realistic_us_per_event")
    args = parser.parse_args()
    print(json.dumps(measure(args.repeat, args.users, step=not args.no_step), indent=2))


if __name__ == "__main__":
    main()
