"""Users' summaries for their accounts: one per user and active period of event time, whatever the cycles.

A user whose events name an ``account_id`` is a member of that account, whose roll-up is kept by
the owner of the account's partition. What the account reads of a member (last seen, 4-week
activity and its 13-week base, stage, the open alert's risk: ``models.account_health.Member``)
is sent there as a member copy (``streams.worker.revenue.member_copy``) at **fixed points of event
time**: one per user and period (``streams.worker.watermark.PERIOD_MS``, UTC hours) in which the
user was active, holding the user's state as of its *last* event in that period and dated at its
*first* (whole seconds). Why fixed points: a copy of the state at the end of whichever cycle read
the events differed with the cut (a backlog read days at once sent one copy where a live worker
sent several), and so did the account's alerts (docs/REVENUE.md, "Limits"). Why those two times:

- the state as of the period's last event is what ``models.engine.advance`` gives after that
  event however the events before it were cut (its chunk rule: reviews due strictly before an
  event run before it), so the copy's content depends on the events only;
- dated at the period's first event, the account never counts the user silent after it came
  back (a silence deadline falling inside the period is judged with the user seen); the price is
  that within the period the account sees the activity of the period's end (at most an hour's).

A cycle does not know that it read a user's last event of a period (more may come until the
partition's lateness cutoff passes the period's end), so each cycle that read a user's events of a
period sends a *version* of that period's copy; the account side merges the versions of one
(user, period) (the latest content, the earliest time: ``streams.worker.revenue``) and applies the
result once the watermark over the producing partitions has passed the period's end
(``streams.worker.watermark.release_ms``). A version resent after a crash, or read twice, merges
into the same copy. Users without ``account_id`` are their own account: their own alerts say it
all, and no copy is made. Not seen by the account: a user's review without events (a silence
noticed by the user's due review carries no account id); the account measures silence itself.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from models.account_health import Member, member_key
from models.engine import advance
from models.events import EVENT_ORDER, Event
from models.model import ChurnModel
from models.scoring import Assessment, assess
from models.signals import compute_signals
from models.state import UserState
from models.vocabulary import CANCEL, SUBSCRIPTION
from streams.worker.revenue import KafkaCopy, member_copy
from streams.worker.watermark import PERIOD_MS

__all__ = ["member_copies", "member_versions"]

logger = logging.getLogger(__name__)


def member_copies(inputs: Sequence[tuple[str, bytes | None, Sequence[Event]]],
                  accounts: Mapping[str, tuple[str, int, int]], model: ChurnModel) -> list[KafkaCopy]:
    """The cycle's member copies. ``inputs``: (user, stored record as read, events applied) of each
    user naming an account (``streams.worker.phases.Advanced.members``); ``accounts``: user ->
    (account id, partition, offset of the user's last event naming it)."""
    out: list[KafkaCopy] = []
    for uid, blob, events in inputs:
        where = accounts.get(uid)
        if where is None:
            continue
        account, p, offset = where
        for ts_ms, member in member_versions(uid, _state(blob), events, model):
            out.append(member_copy(account, ts_ms, member, p, offset))
    return out


def member_versions(user_id: str, state: UserState | None, events: Sequence[Event], model: ChurnModel,
                    period_ms: int = PERIOD_MS) -> list[tuple[int, Member]]:
    """``(time, member)`` per period in which ``events`` saw the user active: the member as of its
    last event there (``models.engine.advance`` up to that event, from ``state``, period by period),
    the time that of its first activity there, floored to the second. Periods with only billing
    statements or cancellations (not activity: the user was not seen) give none."""
    vocabulary = model.compiled.vocabulary
    evs = sorted(events, key=EVENT_ORDER)
    out: list[tuple[int, Member]] = []
    st, i = state, 0
    while i < len(evs):
        period = evs[i].ts_ms // period_ms
        j = i
        while j < len(evs) and evs[j].ts_ms // period_ms == period:
            j += 1
        chunk = evs[i:j]
        i = j
        outcome = advance(user_id, st, chunk, chunk[-1].ts_ms, model)
        st = outcome.state
        if not st.n_events or st.last_seen_s * 1000 // period_ms != period:
            continue  # not seen in this period (a statement, a cancellation; or events older than the state)
        active = [ev.ts_ms for ev in chunk if vocabulary.lookup(ev.type)[1] not in (SUBSCRIPTION, CANCEL)]
        first_ms = min(active) // 1000 * 1000 if active else st.last_seen_s * 1000
        out.append((first_ms, _member(user_id, st, outcome.review, model)))
    return out


def _member(user_id: str, st: UserState, review: Assessment | None, model: ChurnModel) -> Member:
    # the risk of the user's open at-risk alert at its last review (StateWrite.alert_risk, models.step.index_scores),
    # 0 while none is open: the ranking's score is not a risk
    risk = 0.0
    if st.at_risk_since_s:
        risk = (review if review is not None else assess(st, st.last_review_s, model)).risk
    sig = compute_signals(st, st.last_seen_s, model)
    base = sig.act_28d / sig.trend_long if sig.trend_long > 0 else sig.act_28d
    return Member(member_key(user_id), st.last_seen_s, st.stage, risk, sig.act_28d, base, user_id)


def _state(blob: bytes | None) -> UserState | None:
    if not blob:
        return None
    try:
        return UserState.from_bytes(blob)
    except ValueError:
        return None
