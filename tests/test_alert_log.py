"""The console's alert list entries: the worker's fast entry of a user alert is ``entry``'s bytes."""

from __future__ import annotations

import math
import random
import struct

from models.engine import Alert
from models.scoring import Scores
from streams.worker.alert_log import entry, logged_kind, user_entry

KINDS = ("at_risk", "recovered", "stage_changed")
STAGES = ("new", "active", "declining", "dormant", "churned", "reactivated")


def _alert(rng: random.Random, risk: float) -> Alert:
    reasons = tuple(f"reason {i}" for i in range(rng.randint(0, 5)))
    scores = Scores(rng.uniform(0, 100), rng.uniform(0, 100), risk, rng.choice(STAGES), rng.choice((None, "champions")),
                    "check_in", reasons)
    return Alert(f"a-{rng.getrandbits(40):x}", rng.choice(KINDS), "u1", rng.randint(0, 2**45), scores,
                 rng.choice((None, "active")))


def _risks(rng: random.Random, n: int) -> list[float]:
    """Risks anywhere in [0, 1] (uniform, tiny, near 4-place ties, random bits) and the edges."""
    out = [0.0, -0.0, 1.0, 0.5, 0.00005, 0.99995, 0.12345, 1e-300, 5e-324, math.nan]
    for _ in range(n):
        k = rng.randrange(10**5)
        out += [rng.random(), rng.random() * 1e-4, (k + 0.5) / 1e4, (k + 0.5) / 1e4 + rng.choice((-1, 1)) * 1e-17,
                struct.unpack("<d", struct.pack("<Q", rng.getrandbits(62) & 0x3FEFFFFFFFFFFFFF))[0]]
    return out


def test_user_entry_is_entry_of_to_dict() -> None:
    """On random alerts of every kind and risks of every shape (ties at the 4th place, subnormals,
    -0.0, NaN), ``user_entry(alert.to_dict())`` is ``entry``'s bytes to the byte."""
    rng = random.Random(14)
    checked = 0
    for risk in _risks(rng, 4_000):
        d = _alert(rng, risk).to_dict()
        assert user_entry(d) == entry(d), d
        checked += logged_kind(d)
    assert checked > 1_000


def test_a_recovered_alert_keeps_its_reasons_in_the_list() -> None:
    """QA6 L3: the console's "Alerts it got" showed a recovery with an empty "why" while the alert
    on the topic says why ("10 events in the last 4 weeks; active today, ..."): its entry kept no
    reasons. It keeps them now, as every other entry does; an entry written before without them
    reads the fall of the risk since the at-risk entry it closed."""
    from streams.worker.alert_log import decode_entries

    recovered = {"alert_id": "r1", "kind": "recovered", "event_time_ms": 9_000, "stage": "new", "risk": 0.3957,
                 "reasons": ["about 10 events in recent weeks (decayed count, 4-week mean life)", "active today, usual interval 2.0 days"]}
    opened = {"alert_id": "a1", "kind": "at_risk", "event_time_ms": 5_000, "stage": "new", "risk": 0.6308,
              "reasons": ["active over only 1 day (first to last visit): churn is likeliest early on"]}
    assert user_entry(recovered) == entry(recovered)
    got = decode_entries([user_entry(recovered), user_entry(opened)])
    assert [e["reasons"] for e in got] == [recovered["reasons"], opened["reasons"]]
    old_entry = b'["r1","recovered",9000,"new",0.3957,[]]'  # as written until 2026-12-03
    assert decode_entries([old_entry, user_entry(opened)])[0]["reasons"] == ["risk down to 40% from 63% when the alert opened"]
    assert decode_entries([old_entry])[0]["reasons"] == []  # nothing to tell it from
