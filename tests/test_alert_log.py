"""The console's alert list entries: the worker's fast entry of a user alert (``models.step.queue_alerts``) is
``entry``'s bytes, and its records are the alerts' JSON."""

from __future__ import annotations

import math
import random
import struct
from collections import Counter

import orjson

from models.engine import Alert
from models.scoring import Scores
from models.step import queue_alerts
from streams.worker.alert_log import KINDS_LOGGED, STAGES_LOGGED, entry, logged_kind

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


def test_queued_alerts_are_entry_and_json_of_to_dict() -> None:
    """On random alerts of every kind and risks of every shape (ties at the 4th place, subnormals,
    -0.0, NaN), ``queue_alerts`` gives ``entry``'s bytes to the byte for each alert ``logged_kind``
    keeps (none for a user deleted in the write), the JSON of ``to_dict`` keyed by the user for each
    alert at or after ``alerts_from_ms``, in order, counted by kind, and the others counted as
    withheld by (partition, kind) (their entries kept)."""
    rng = random.Random(14)
    alerts = [_alert(rng, risk) for risk in _risks(rng, 4_000)]
    cut = 2**44  # about half the alerts' event times are before it
    assert sum(logged_kind(a.to_dict()) for a in alerts) > 1_000
    for expire in (False, True):
        for from_ms in (0, cut):
            entries: list[tuple[int, str, str, bytes]] = []
            records: list[tuple[bytes, bytes]] = []
            kinds: dict[str, int] = {"at_risk": 1}
            withheld: dict[tuple[int, str], int] = {}
            queue_alerts("u1", 7, alerts, expire, 3, from_ms, KINDS_LOGGED, STAGES_LOGGED, entries, records, kinds,
                         withheld, orjson.dumps)
            ds = [a.to_dict() for a in alerts]
            assert entries == [(7, "u1", d["alert_id"], entry(d)) for d in ds if logged_kind(d) and not expire]
            sent = [d for d in ds if d["event_time_ms"] >= from_ms]  # type: ignore[operator]
            assert records == [(b"u1", orjson.dumps(d)) for d in sent]
            assert kinds == Counter(str(d["kind"]) for d in sent) + Counter({"at_risk": 1})
            assert withheld == Counter((3, str(d["kind"])) for d in ds if d["event_time_ms"] < from_ms)  # type: ignore[operator]
            assert from_ms == 0 or 0 < len(sent) < len(ds)


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
    got = decode_entries([entry(recovered), entry(opened)])
    assert [e["reasons"] for e in got] == [recovered["reasons"], opened["reasons"]]
    old_entry = b'["r1","recovered",9000,"new",0.3957,[]]'  # as written until 2026-12-03
    assert decode_entries([old_entry, entry(opened)])[0]["reasons"] == ["risk down to 40% from 63% when the alert opened"]
    assert decode_entries([old_entry])[0]["reasons"] == []  # nothing to tell it from
