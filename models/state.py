"""Per-user state: a few numbers that summarise a whole history, updated in O(1) per event.

Why decayed counters and not day buckets: 90 day-buckets cost ~1.1 kB per user in Redis and
fall off the listpack cliff at 128 entries (measured: docs/ARCHITECTURE.md, benchmarks/memory.py); a counter that decays
with mean life tau carries the same meaning as "events in the last tau days" in 8 bytes.

Every counter is kept *at* ``last_seen_s`` (the user's largest event time), so applying the
same events in any order gives the same numbers (up to float rounding): an event later than
``last_seen_s`` decays the counters forward and adds 1, an earlier one adds ``exp(-age/tau)``.
Times are whole epoch seconds (uint32 in Redis) to keep the record small; events carry ms.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final, Literal

from models.events import Event

__all__ = [
    "DAY_S",
    "DECAY_DAYS",
    "GAP_EWMA_ALPHA",
    "STAGES",
    "Stage",
    "UserState",
    "apply_event",
    "decayed",
]

DAY_S: Final[int] = 86_400
#: Mean lives, in days, of the activity counters ``act_1d`` ... ``act_90d``.
DECAY_DAYS: Final[tuple[int, int, int, int]] = (1, 7, 28, 90)
_TAU_S: Final[tuple[float, ...]] = tuple(d * DAY_S for d in DECAY_DAYS)
_TAU_1_S, _TAU_7_S, _TAU_28_S, _TAU_90_S = _TAU_S  # the same floats, without indexing per event

Stage = Literal["new", "active", "declining", "dormant", "churned", "reactivated"]
STAGES: Final[tuple[Stage, ...]] = ("new", "active", "declining", "dormant", "churned", "reactivated")

_FORMAT_VERSION: Final[int] = 2
# version, stage, then 9 uint32 times, 3 uint32 counts, 9 float64 numbers: 122 bytes (<= 128, the
# listpack value limit the servers are started with).
_STRUCT: Final[struct.Struct] = struct.Struct("<BB9I3I9d")
# Format 1 (114 bytes) had no gap_ewma_days; records of it are still read (see from_bytes).
_STRUCT_V1: Final[struct.Struct] = struct.Struct("<BB9I3I8d")
#: Weight of the newest interval in ``gap_ewma_days``: about the last three intervals count.
GAP_EWMA_ALPHA: Final[float] = 0.4


@dataclass(slots=True)
class UserState:
    """Everything churnwatch remembers about one user. ``0`` in a ``*_s`` field means "never"."""

    first_seen_s: int = 0
    last_seen_s: int = 0
    first_purchase_s: int = 0
    last_purchase_s: int = 0
    cancelled_s: int = 0  # latest cancellation
    stage_since_s: int = 0
    at_risk_since_s: int = 0  # 0 while no at-risk alert is open (hysteresis memory)
    next_review_s: int = 0  # event time at which the user must be looked at even without events
    last_review_s: int = 0
    n_events: int = 0
    active_days: int = 0  # distinct UTC days with activity (in-order approximation for late events)
    n_purchases: int = 0
    act_1d: float = 0.0  # decayed event counts, all activity types, at last_seen_s
    act_7d: float = 0.0
    act_28d: float = 0.0
    act_90d: float = 0.0
    view_28d: float = 0.0  # per-type counts for breadth of use
    click_28d: float = 0.0
    message_28d: float = 0.0
    revenue: float = 0.0
    # Recent interval between active days, days: exponentially weighted over the intervals in
    # event order (late events do not enter it), GAP_EWMA_ALPHA on the newest. Meaningful once
    # active_days >= 2 (the count says so: 0.0 is never read as "no data").
    gap_ewma_days: float = 0.0
    stage: int = 0  # index into STAGES

    @property
    def stage_name(self) -> Stage:
        return STAGES[self.stage]

    @property
    def is_new(self) -> bool:
        return self.n_events == 0

    def to_bytes(self) -> bytes:
        """Fixed 122-byte record, format 2 (listpack-friendly with ``hash-max-listpack-value`` >= 128)."""
        return _STRUCT.pack(
            _FORMAT_VERSION,
            self.stage,
            self.first_seen_s,
            self.last_seen_s,
            self.first_purchase_s,
            self.last_purchase_s,
            self.cancelled_s,
            self.stage_since_s,
            self.at_risk_since_s,
            self.next_review_s,
            self.last_review_s,
            self.n_events,
            self.active_days,
            self.n_purchases,
            self.act_1d,
            self.act_7d,
            self.act_28d,
            self.act_90d,
            self.view_28d,
            self.click_28d,
            self.message_28d,
            self.revenue,
            self.gap_ewma_days,
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> "UserState":
        """The state of a record of format 2, or of format 1 (114 bytes, read with the recent
        interval taken as the lifetime average: the best that record knows)."""
        if len(raw) == _STRUCT.size and raw[0] == _FORMAT_VERSION:
            v = _STRUCT.unpack(raw)
            gap = v[22]
        elif len(raw) == _STRUCT_V1.size and raw[0] == 1:
            v = _STRUCT_V1.unpack(raw)
            gap = (v[3] - v[2]) / DAY_S / (v[12] - 1) if v[12] > 1 else 0.0
        else:
            raise ValueError(f"user state record of {len(raw)} bytes, version {raw[:1]!r}: not format v{_FORMAT_VERSION} (or v1)")
        return cls(
            first_seen_s=v[2],
            last_seen_s=v[3],
            first_purchase_s=v[4],
            last_purchase_s=v[5],
            cancelled_s=v[6],
            stage_since_s=v[7],
            at_risk_since_s=v[8],
            next_review_s=v[9],
            last_review_s=v[10],
            n_events=v[11],
            active_days=v[12],
            n_purchases=v[13],
            act_1d=v[14],
            act_7d=v[15],
            act_28d=v[16],
            act_90d=v[17],
            view_28d=v[18],
            click_28d=v[19],
            message_28d=v[20],
            revenue=v[21],
            gap_ewma_days=gap,
            stage=v[1],
        )

    def copy(self) -> "UserState":
        # Field by field: dataclasses.replace/fields cost ~10 us here, this ~1 us.
        return UserState(
            self.first_seen_s, self.last_seen_s, self.first_purchase_s, self.last_purchase_s, self.cancelled_s,
            self.stage_since_s, self.at_risk_since_s, self.next_review_s, self.last_review_s, self.n_events,
            self.active_days, self.n_purchases, self.act_1d, self.act_7d, self.act_28d, self.act_90d,
            self.view_28d, self.click_28d, self.message_28d, self.revenue, self.gap_ewma_days, self.stage,
        )


def decayed(count: float, since_s: int, now_s: int, tau_days: float) -> float:
    """A counter kept at ``since_s`` as seen at ``now_s`` (never grows with time).

    >>> round(decayed(10.0, 0, 7 * DAY_S, 7), 3)
    3.679
    """
    if now_s <= since_s:
        return count
    return count * math.exp(-(now_s - since_s) / (tau_days * DAY_S))


def apply_event(state: UserState, event: Event) -> None:
    """Fold one event into ``state`` in place. Commutative over events (see module docstring).

    Cancellation is not activity: it only records when the user last said they are leaving
    (the latest cancellation, so cancel - return - cancel ends cancelled; models.signals decides
    whether activity after it is a return).
    """
    ts = event.ts_ms // 1000
    kind = event.type
    if kind == "cancel":
        if ts > state.cancelled_s:
            state.cancelled_s = ts
        if state.n_events == 0:
            state.first_seen_s = state.last_seen_s = ts
        return
    # In order (the usual case) the event adds 1.0 to every counter; a late one what is left of it.
    if state.n_events == 0:
        state.first_seen_s = ts
        state.last_seen_s = ts
        state.active_days = 1
        w1 = w7 = w28 = w90 = 1.0
    elif ts >= state.last_seen_s:
        last = state.last_seen_s
        gap = ts - last
        if ts // DAY_S > last // DAY_S:
            state.active_days += 1
            interval = gap / DAY_S
            if state.active_days == 2:
                state.gap_ewma_days = interval
            else:
                state.gap_ewma_days += GAP_EWMA_ALPHA * (interval - state.gap_ewma_days)
        if gap:
            f28 = math.exp(-gap / _TAU_28_S)
            state.act_1d *= math.exp(-gap / _TAU_1_S)
            state.act_7d *= math.exp(-gap / _TAU_7_S)
            state.act_28d *= f28
            state.act_90d *= math.exp(-gap / _TAU_90_S)
            state.view_28d *= f28
            state.click_28d *= f28
            state.message_28d *= f28
        state.last_seen_s = ts
        w1 = w7 = w28 = w90 = 1.0
    else:  # late (but accepted) event: it adds what is left of it today
        age = state.last_seen_s - ts
        w1, w7, w28, w90 = math.exp(-age / _TAU_1_S), math.exp(-age / _TAU_7_S), math.exp(-age / _TAU_28_S), math.exp(-age / _TAU_90_S)
        if ts < state.first_seen_s:
            state.first_seen_s = ts
    state.n_events += 1
    state.act_1d += w1
    state.act_7d += w7
    state.act_28d += w28
    state.act_90d += w90
    if kind == "view":
        state.view_28d += w28
    elif kind == "click":
        state.click_28d += w28
    elif kind == "message":
        state.message_28d += w28
    elif kind == "purchase":
        amount = event.amount if event.amount > 0 else 0.0
        state.revenue += amount
        state.n_purchases += 1
        if state.first_purchase_s == 0 or ts < state.first_purchase_s:
            state.first_purchase_s = ts
        if ts > state.last_purchase_s:
            state.last_purchase_s = ts
