"""Users' summaries for their accounts: which advanced users tell their account, and what.

After a cycle advanced its users, each user whose events named an ``account_id`` and whose
summary moved (first seen, a new active day, another stage, an at-risk alert opened or closed)
is sent to its account's partition as a member copy (``streams.worker.revenue.member_copy``),
where the account's roll-up is kept. At most one copy per user per cycle and per active day, so
the extra records stay a small share of the events. Users without ``account_id`` are their own
account: their own alerts say it all, and no copy is made.

Not seen by the account: a user's review without events (a silence noticed by the user's due
review carries no account id). The account measures silence itself from its members' last
seen times, at the time of its latest copy.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from models.account_health import Member, member_key
from models.model import ChurnModel
from models.signals import compute_signals
from models.state import DAY_S, UserState
from streams.worker.revenue import KafkaCopy, member_copy
from streams.worker.store import BucketReadResult, BucketWrite

__all__ = ["member_copies"]

logger = logging.getLogger(__name__)


def member_copies(
    accounts: Mapping[str, tuple[str, int, int]], plans_users: Sequence[Sequence[tuple[int, str]]],
    replies: Sequence[BucketReadResult], writes: Sequence[BucketWrite], model: ChurnModel,
) -> list[KafkaCopy]:
    """Member copies of the cycle. ``accounts``: user -> (account id, partition, offset of the
    user's last event naming it); ``plans_users`` and ``replies``: the read (old states);
    ``writes``: the new states."""
    if not accounts:
        return []
    old: dict[str, bytes | None] = {}
    for users, reply in zip(plans_users, replies):
        for (_, uid), blob in zip(users, reply.blobs):
            if uid in accounts:
                old[uid] = blob
    out: list[KafkaCopy] = []
    for w in writes:
        for sw in w.states:
            where = accounts.get(sw.user_id)
            if where is None or sw.blob is None:
                continue
            new = UserState.from_bytes(sw.blob)
            before = _state(old.get(sw.user_id))
            if before is not None and not _moved(before, new):
                continue
            # the risk of the user's open at-risk alert only (the ranking's score is not a risk)
            risk = sw.alert_risk if new.at_risk_since_s else 0.0
            sig = compute_signals(new, new.last_seen_s, model)
            base = sig.act_28d / sig.trend_long if sig.trend_long > 0 else sig.act_28d
            member = Member(member_key(sw.user_id), new.last_seen_s, new.stage, risk, sig.act_28d, base, sw.user_id)
            ts_ms = new.last_seen_s * 1000  # the user's own event time: the same whatever the batching
            account, p, offset = where
            out.append(member_copy(account, ts_ms, member, p, offset))
    return out


def _state(blob: bytes | None) -> UserState | None:
    if not blob:
        return None
    try:
        return UserState.from_bytes(blob)
    except ValueError:
        return None


def _moved(before: UserState, new: UserState) -> bool:
    return (before.last_seen_s // DAY_S != new.last_seen_s // DAY_S or before.stage != new.stage
            or bool(before.at_risk_since_s) != bool(new.at_risk_since_s))
