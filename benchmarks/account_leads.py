"""How early the account roll-up's usage and silence rules warn before an account leaves, offline.

Why: a worker replay of a QA file with a million machine events takes half an hour at the load
this machine has; the account side's usage rules need only the member copies. This makes each
user's copies as the worker does (``streams.worker.members.member_versions``, the model given),
applies them in time order to the account's members and 2-week figure (``add_copy``, as the
account phase does) and rolls the account up every 6 hours of event time
(``models.account_health.rollup``), without the billing rules (no statements: no downgrade, no
past due, no renewal, no cancellation) and without the 7-day hold of a recovery: a case opens at
0.5 and closes under 0.4. Used for QA23b F4 (docs/REVENUE.md "A sustained fall"): on QA23b's
migrating accounts it gives the live run's 13 of 24 warned before the rule (median lead 10.7 days
against 11.1 live). Used again for QA23b F3 (docs/REVENUE.md "A monthly burst rhythm": the
month-end batch accounts' openings).

The truth file has a row per account: ``account_id``, ``pattern``, and for a leaving account
``event_at`` (its decline starts) and ``churned_at`` (ISO times). A lead is ``churned_at`` minus
the first opening at or after ``event_at``; for the other patterns it counts the openings.
``.venv/bin/python -m benchmarks.account_leads EVENTS.csv TRUTH.csv [--model M.json] [--ignore invoice_paid,usage_alert] [--leaving migrate]``
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from datetime import datetime

from models.account_health import Member, add_copy, rollup
from models.model import ChurnModel, load_model
from streams.offline.history import read_events_csv
from streams.worker.members import member_versions

__all__ = ["account_copies", "openings"]

STEP_S = 6 * 3600
OPEN, CLOSE = 0.5, 0.4  # streams.worker.account_alerts: ACCOUNT_AT_RISK and RECOVERED_BELOW


def account_copies(path: str, model: ChurnModel, ignore: set[str]) -> dict[str, list[tuple[int, Member]]]:
    """Each account's member copies ``(time ms, member)`` in time order, from the events of ``path``."""
    account_of: dict[str, str] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("account_id"):
                account_of.setdefault(row["user_id"], row["account_id"])
    by_user: dict[str, list] = defaultdict(list)
    for ev in read_events_csv(path):
        if ev.user_id in account_of and ev.type not in ignore:
            by_user[ev.user_id].append(ev)
    out: dict[str, list[tuple[int, Member]]] = defaultdict(list)
    for user, events in by_user.items():
        out[account_of[user]] += member_versions(user, None, events, model)
    return {a: sorted(cs, key=lambda c: (c[0], c[1].last_seen_s)) for a, cs in out.items()}


def openings(copies: list[tuple[int, Member]], end_s: int) -> list[tuple[int, float, str]]:
    """The account's at-risk openings ``(time s, risk, first reason)`` up to ``end_s``."""
    members: dict[int, Member] = {}
    trend, i, opened, out = None, 0, False, []
    now = copies[0][0] // 1000 // STEP_S * STEP_S + STEP_S
    while now < end_s:
        while i < len(copies) and copies[i][0] // 1000 <= now:
            ts_ms, m = copies[i]
            old = members.get(m.key)
            if old is None or m.last_seen_s >= old.last_seen_s:
                trend, members[m.key] = add_copy(trend, old, m, ts_ms // 1000), m
            i += 1
        r = rollup(list(members.values()), None, None, 0, now, trend=trend.at(now) if trend else None)
        if not opened and r.risk >= OPEN:
            out.append((now, r.risk, r.reasons[0] if r.reasons else ""))
        opened = r.risk >= CLOSE if opened else r.risk >= OPEN
        now += STEP_S
    return out


def _s(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("events")
    ap.add_argument("truth")
    ap.add_argument("--model", default=None)
    ap.add_argument("--ignore", default="", help="event types the workers ignore ([roles] ignore), comma-separated")
    ap.add_argument("--leaving", default="migrate", help="the truth's pattern of the accounts that leave")
    args = ap.parse_args()
    copies = account_copies(args.events, load_model(args.model), {t for t in args.ignore.split(",") if t})
    end_s = max(cs[-1][0] for cs in copies.values()) // 1000  # the history's end: nothing judged past what it holds
    leads: list[float] = []
    others: dict[str, list[int]] = defaultdict(list)
    with open(args.truth, newline="") as fh:
        for row in csv.DictReader(fh):
            cs = copies.get(row["account_id"])
            if not cs:
                continue
            opens = openings(cs, end_s)
            if row["pattern"] == args.leaving:
                start, left = _s(row["event_at"]), _s(row["churned_at"])
                first = [t for t, _, _ in opens if start <= t < left]
                leads += [(left - first[0]) / 86_400] if first else []
                others[args.leaving].append(len(first))
            else:
                others[row["pattern"]].append(len(opens))
    n = len(others.pop(args.leaving, []))
    print(f"{args.leaving}: {len(leads)} of {n} warned before leaving, leads {sorted(round(x, 1) for x in leads)}, "
          f"median {statistics.median(leads) if leads else 0:.1f} days, 14 days or more {sum(x >= 14 for x in leads)}")
    for pattern, counts in sorted(others.items()):
        print(f"{pattern}: {sum(1 for c in counts if c)} of {len(counts)} accounts opened, {sum(counts)} openings")


if __name__ == "__main__":
    main()
