"""What the member copies' versions cost beside the user's own step, in CPU time per event.

Why: a user naming an account sends a version of its hour's member copy each cycle that read its
events (streams.worker.members); they were made by a second ``advance`` over the cycle's events,
1.6-1.9x the step itself (docs/REVENUE.md). Now the step takes them as it passes each hour's
last event (``models.engine.Mark``). This runs simulated accounts' events
(streams.offline.simulate_accounts) through the worker's per-user step
(``models.step.advance_stored``, compiled core, in process) in cycles of ``--batch`` events, the
review clock six hours behind the stream, three ways, rounds alternating: the step alone (the
floor), the step plus the copies made in a second pass (:func:`second_pass`, from the stored
record; its numbers by ``mark_versions`` too, so a little cheaper than before) and the step
taking the marks (``member_copies`` of them), and checks that the two give the same copies, byte
for byte.
``.venv/bin/python -m benchmarks.member_versions [--accounts 60] [--days 120] [--batch 1] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

from models.account_health import Member, member_key
from models.engine import Mark, advance
from models.events import EVENT_ORDER, Event
from models.model import ChurnModel, load_model
from models.state import UserState
from models.step import advance_stored, mark_versions
from streams.offline.simulate_accounts import generate_accounts
from streams.worker.members import member_copies
from streams.worker.revenue import member_copy
from streams.worker.watermark import PERIOD_MS

__all__ = ["measure"]

START_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000
LATENESS_MS = 6 * 3_600_000

Cycle = tuple[list[tuple[str, list[Event]]], int]


def _cycles(events: list[Event], batch: int) -> list[Cycle]:
    out: list[Cycle] = []
    stream_ms = 0
    for i in range(0, len(events), batch):
        part = events[i:i + batch]
        stream_ms = max(stream_ms, part[-1].ts_ms)
        per: dict[str, list[Event]] = {}
        for ev in part:
            per.setdefault(ev.user_id, []).append(ev)
        out.append((list(per.items()), stream_ms - LATENESS_MS))
    return out


def second_pass(user_id: str, state: UserState | None, events: list[Event], model: ChurnModel) -> list[Any]:
    """The versions as made before the marks (and their definition): ``advance`` from the stored
    state up to each hour's last event, hour by hour, a second pass beside the step."""
    evs = sorted(events, key=EVENT_ORDER)
    out: list[Any] = []
    st, i = state, 0
    key = member_key(user_id)
    while i < len(evs):
        period = evs[i].ts_ms // PERIOD_MS
        j = i
        while j < len(evs) and evs[j].ts_ms // PERIOD_MS == period:
            j += 1
        chunk = evs[i:j]
        i = j
        outcome = advance(user_id, st, chunk, chunk[-1].ts_ms, model)
        st = outcome.state
        for ts_ms, seen_s, stage, risk, act, base, gap in mark_versions([(period, st, outcome.review)], chunk, model, PERIOD_MS):
            out.append((ts_ms, Member(key, seen_s, stage, risk, act, base, user_id, gap)))
    return out


def _run(cycles: list[Cycle], model: ChurnModel, way: str) -> tuple[float, int, list[Any]]:
    stored: dict[str, bytes] = {}
    versions: list[Any] = []
    n = 0
    t0 = time.process_time()
    for per, until_ms in cycles:
        for uid, evs in per:
            blob = stored.get(uid)
            if way == "marks":
                marks: list[Mark] = []
                step = advance_stored(uid, blob, evs, until_ms, True, model, True, -1, PERIOD_MS, marks)
                versions.append(member_copies([(uid, marks, evs)], {uid: ("acme", 0, 1)}, model))
            else:
                step = advance_stored(uid, blob, evs, until_ms, True, model, True, -1)
                if way == "apart":
                    made = second_pass(uid, UserState.from_bytes(blob) if blob else None, evs, model)
                    versions.append([member_copy("acme", ts_ms, m, 0, 1) for ts_ms, m in made])
            if step[2] is not None:
                stored[uid] = step[2]
            else:
                stored.pop(uid, None)
            n += len(evs)
    return time.process_time() - t0, n, versions


def measure(accounts: int = 60, days: int = 120, batch: int = 1, rounds: int = 5) -> dict[str, Any]:
    model = load_model(None)
    events = sorted(generate_accounts(3, accounts, START_MS, days).events, key=EVENT_ORDER)
    cycles = _cycles(events, batch)
    times: dict[str, list[float]] = {"step": [], "apart": [], "marks": []}
    same = True
    for _ in range(rounds):
        got = {}
        for way in times:
            cpu, n, versions = _run(cycles, model, way)
            times[way].append(cpu / n * 1e6)
            got[way] = versions
        same = same and got["apart"] == got["marks"]
    best: Callable[[str], float] = lambda w: min(times[w])
    return {
        "events": len(events), "batch": batch, "rounds": rounds, "same_versions": same,
        "us_per_event": {w: [round(x, 2) for x in xs] for w, xs in times.items()},
        "best_us_per_event": {w: round(best(w), 2) for w in times},
        "versions_over_step": {w: round((best(w) - best("step")) / best("step"), 3) for w in ("apart", "marks")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=60)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    print(json.dumps(measure(a.accounts, a.days, a.batch, a.rounds), indent=1))


if __name__ == "__main__":
    main()
