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
