"""Who heads the save list, ranked by the whole risk (before) or by its savable part (now), against
the simulator's truth (models.ranking.save_score; docs/SCORES.md "The daily lists").

The demo's population (``churnwatch demo`` defaults: seed 7, 2,000 users, 120 days) replayed
offline through ``models.engine.advance`` to cut dates; at each cut, the reachable users (the
save list's candidates: all of them, as ``top --share``, and those with an open at-risk alert, as
``top -n``, the console and the demo's summary) ranked both ways. Each user listed is judged by
the simulator over the 30 days after the cut: *gone already* (their last event is before the cut:
nobody can save them), *churns within 30 days* (still there, last event within 30 days: the
users a save list is for) or *stays*. ``--show`` prints each list of one cut. Offline, seconds::

    python -m benchmarks.save_list                 # weekly cuts, days 35-91 (judged) and the end
    python -m benchmarks.save_list --show 120      # the demo's top 10 at its end, both ways
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
from typing import Any, Callable, Sequence

from models.engine import advance
from models.events import Event
from models.lifecycle import JUDGED
from models.model import ChurnModel, load_model
from models.ranking import save_score
from models.scoring import Assessment, assess, scores_from
from models.state import UserState
from streams.offline.simulate import generate

__all__ = ["KEYS", "candidates", "fate", "main"]

DAY_MS = 86_400_000
HORIZON_MS = 30 * DAY_MS
#: The two orders compared: the whole risk (the save list before) and its savable part (now).
KEYS: dict[str, Callable[[Assessment], float]] = {"risk": lambda a: a.risk, "savable": save_score}
Row = tuple[str, UserState, Assessment]


def candidates(by_user: dict[str, list[Event]], times: dict[str, list[int]], cut_ms: int, model: ChurnModel) -> list[Row]:
    """Every user seen before ``cut_ms`` and on the save list then (models.lifecycle.JUDGED: reachable,
    not just back from churned), with state and assessment at the cut."""
    rows = []
    for uid, evs in by_user.items():
        k = bisect.bisect_right(times[uid], cut_ms)
        if k == 0:
            continue
        o = advance(uid, None, evs[:k], cut_ms, model)
        if o.expire:
            continue
        a = assess(o.state, max(cut_ms // 1000, o.state.last_seen_s), model)
        if a.stage in JUDGED:
            rows.append((uid, o.state, a))
    return rows


def fate(churned_at_ms: int | None, cut_ms: int) -> str:
    """The simulator's verdict on a user listed at ``cut_ms`` (module docstring)."""
    if churned_at_ms is not None and churned_at_ms <= cut_ms:
        return "gone already"
    if churned_at_ms is not None and churned_at_ms <= cut_ms + HORIZON_MS:
        return "churns within 30 d"
    return "stays"


def _top(rows: Sequence[Row], key: Callable[[Assessment], float], n: int) -> list[Row]:
    return sorted(rows, key=lambda r: (-key(r[2]), r[0]))[:n]


def _show(rows: Sequence[Row], churned: dict[str, int | None], persona: dict[str, str], cut_ms: int, model: ChurnModel) -> None:
    for name, key in KEYS.items():
        print(f"  by {name}:")
        for uid, st, a in _top(rows, key, 10):
            sig, s = a.signals, scores_from(st, a, model)
            print(f"    {uid} {persona[uid]:<9} {a.stage:<11} silent {sig.silence_days:5.1f} d = "
                  f"{sig.silence_days / max(sig.visit_gap_days, 1e-9):4.1f}x the usual {sig.visit_gap_days:4.1f} d  "
                  f"temp {s.temperature:3.0f}  risk {a.risk:.2f}  savable {save_score(a):.2f}  {fate(churned[uid], cut_ms)}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.save_list", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--start", default="2026-08-04", help="first simulated day (the demo's on 2026-12-02)")
    ap.add_argument("--show", type=int, metavar="DAY", help="print both top-10 lists of this cut day instead")
    args = ap.parse_args(argv)
    start_ms = int(dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    events, truth = generate(args.seed, args.users, start_ms, args.days)
    churned = {t.user_id: t.churned_at_ms for t in truth}
    persona = {t.user_id: str(t.persona) for t in truth}
    by_user: dict[str, list[Event]] = collections.defaultdict(list)
    for ev in events:
        by_user[ev.user_id].append(ev)
    times = {u: [e.ts_ms for e in evs] for u, evs in by_user.items()}
    model = load_model(None)
    if args.show is not None:
        cut_ms = start_ms + args.show * DAY_MS
        rows = candidates(by_user, times, cut_ms, model)
        for which, cand in (("open at-risk alert (top -n, console, demo)", [r for r in rows if r[1].at_risk_since_s]),
                            ("every reachable user (top --share)", rows)):
            print(f"cut day {args.show}, {which}: {len(cand)} candidates")
            _show(cand, churned, persona, cut_ms, model)
        return 0
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    cuts = list(range(35, args.days - 29, 7))
    for day in cuts:
        cut_ms = start_ms + day * DAY_MS
        rows = candidates(by_user, times, cut_ms, model)
        for which, cand in (("open alert", [r for r in rows if r[1].at_risk_since_s]), ("all reachable", rows)):
            for uid, _, _ in cand:
                counts[which, "candidates", fate(churned[uid], cut_ms)] += 1
            for name, key in KEYS.items():
                for n in (10, 50):
                    for uid, _, _ in _top(cand, key, n):
                        counts[which, f"top {n} by {name}", fate(churned[uid], cut_ms)] += 1
    print(f"{len(cuts)} weekly cuts, days {cuts[0]}-{cuts[-1]} of {args.days}; each listed user judged over the 30 days after the cut")
    print(f"| users | list | rows | gone already | churn within 30 d | stay |\n|---|---|---|---|---|---|")
    for which in ("open alert", "all reachable"):
        for col in ("candidates", "top 10 by risk", "top 10 by savable", "top 50 by risk", "top 50 by savable"):
            c: dict[str, Any] = {f: counts[which, col, f] for f in ("gone already", "churns within 30 d", "stays")}
            total = sum(c.values())
            print(f"| {which} | {col} | {total} | " + " | ".join(f"{v} ({100 * v / total:.0f}%)" for v in c.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
