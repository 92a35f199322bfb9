"""Alerts of simulated monthly subscribers with and without their renewal statements.

Why: a monthly renewal moves the end of the paid period just past the 30-day horizon for a day
or two (models.risk.exit_open), and an at-risk alert closed then would re-open when the exit
does (models.engine._may_close guards against it). This counts at-risk and recovered alerts, and
the recovered alerts that fall on a renewal statement, for the same users and activity with and
without the statements. ``python -m benchmarks.renewal_flaps [users]``; seconds, not a section
of benchmarks.run. Figures: docs/SCORES.md, "Renewal: the exit opportunity".
"""

from __future__ import annotations

import random
import sys

from models.engine import advance
from models.events import Event
from models.model import ChurnModel
from models.subscription import Subscription

__all__ = ["count_alerts"]

T0_MS = 1_767_225_600_000  # 2026-01-01
DAY_MS = 86_400_000


def count_alerts(users: int = 300, days: int = 180, statements: bool = True, seed: int = 1,
                 model: ChurnModel | None = None) -> dict[str, int]:
    """At-risk and recovered alerts of ``users`` monthly subscribers active on 15-90% of days
    (views and clicks), with a renewal statement at each 28-, 30- or 31-day period end when
    ``statements``; the same users and events either way (one seed)."""
    model = model or ChurnModel()
    rng = random.Random(seed)
    counts = {"at_risk": 0, "recovered": 0, "recovered_at_statement": 0}
    for u in range(users):
        uid = f"u{u}"
        start = rng.randrange(0, 30) * DAY_MS + rng.randrange(0, DAY_MS)
        rate = rng.choice([0.15, 0.3, 0.6, 0.9])
        evs = [Event(uid, T0_MS + d * DAY_MS + rng.randrange(0, DAY_MS), rng.choice(["view", "view", "click"]), f"e{d}")
               for d in range(days) if rng.random() < rate]
        stated: set[int] = set()
        t, k = T0_MS + start, 0
        while t < T0_MS + days * DAY_MS:
            end = t + rng.choice([28, 30, 31]) * DAY_MS
            if statements:
                evs.append(Event(uid, t, "subscription", f"s{k}", 0.0, "", Subscription("active", "Monthly", 999, 0, end)))
                stated.add(t // 1000 * 1000)
            t, k = end, k + 1
        if not evs:
            continue
        for a in advance(uid, None, evs, T0_MS + days * DAY_MS, model).alerts:
            if a.kind in counts:
                counts[a.kind] += 1
            if a.kind == "recovered" and a.event_time_ms in stated:
                counts["recovered_at_statement"] += 1
    return counts


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    print("with renewal statements:", count_alerts(n))
    print("without:                ", count_alerts(n, statements=False))
