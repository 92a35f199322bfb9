"""Users' summaries for their accounts: one per user and active period of event time, whatever the cycles.

A user whose events name an ``account_id`` is a member of that account, whose roll-up is kept by
the owner of the account's partition. What the account reads of a member (last seen, 4-week
activity and its 13-week base, stage, the open alert's risk, its usual interval between active
days: ``models.account_health.Member``)
is sent there as a member copy (``streams.worker.revenue.member_copy``) at **fixed points of event
time**: one per user and period (``streams.worker.watermark.PERIOD_MS``, UTC hours) in which the
user was active, holding the user's state as of its *last* event in that period and dated at its
*first* (whole seconds). Why fixed points: a copy of the state at the end of whichever cycle read
the events differed with the cut (a backlog read days at once sent one copy where a live worker
sent several), and so did the account's alerts (docs/REVENUE.md, "Limits"). An hour whose only
event of the user is a cancellation leaving it churned gives a copy too, dated at the cancellation
(``models.step.mark_versions``: the account must hear that its member left, QA16 F11). Why those two times:

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
into the same copy. Made without a second pass over the events: the user's own step takes the
states (``models.engine.Mark``, as ``advance`` passes each period's last event, before the
cycle's trailing reviews) and ``models.step.mark_versions`` their numbers, compiled; a second
``advance`` per period cost 1.6-1.9x the step (docs/REVENUE.md, "What the versions cost").
Users without ``account_id`` are their own account: their own alerts say it all, and no copy is
made. A user's review without events is not seen by the account (a silence noticed by the user's
due review carries no account id); the account measures silence itself. But where accounts are in
use a review in silence that opens or closes the user's at-risk alert (``models.engine.Turn``) sends
a *turn copy* (:func:`turn_copies`) to the account of the user's own id, dated at the review, which
that account applies only if the user is its member: a one-user account (a shop's customer sent
with ``account_id`` = the user id) follows its user's alert, and until QA21 F2 heard of one opened
in silence only at the user's next active hour (670 of 670 alerts at one of the user's events, a
median 2.1 days late, none for customers who never came back). One per alert, not per review:
QA21's history has 1,404 such turns in 49,814 reviews in silence (a copy per review would be 35
times as many records, and the state carries no bit for "names itself as its account": all 8 flags
are taken).
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from models.account_health import Member, key_user, machine_user, member_key
from models.engine import Mark, Turn, advance
from models.events import Event
from models.model import ChurnModel
from models.state import UserState
from models.step import mark_versions, turn_version
from streams.worker.revenue import KafkaCopy, member_copy
from streams.worker.watermark import PERIOD_MS

__all__ = ["member_copies", "member_marks", "member_versions", "turn_copies", "versions_of"]

logger = logging.getLogger(__name__)


def member_copies(inputs: Sequence[tuple[str, list[Mark], Sequence[Event]]],
                  accounts: Mapping[str, tuple[str, int, int]], model: ChurnModel) -> list[KafkaCopy]:
    """The cycle's member copies. ``inputs``: (user, marks its step took, events applied) of each
    user naming an account (``streams.worker.phases.Advanced.members``; :func:`member_marks`
    makes the same marks apart); ``accounts``: user -> (account id, partition, offset of the
    user's last event naming it)."""
    out: list[KafkaCopy] = []
    for uid, marks, events in inputs:
        where = accounts.get(uid)
        if where is None:
            continue
        account, p, offset = where
        for ts_ms, member in versions_of(uid, marks, events, model):
            out.append(member_copy(account, ts_ms, member, p, offset))
    return out


def turn_copies(turns: Sequence[Turn], partitions: Sequence[int], accounts: Mapping[str, tuple[str, int, int]],
                last_offset: Mapping[int, int], model: ChurnModel) -> list[KafkaCopy]:
    """The cycle's turn copies (module docstring): per turn of a user's alert at a review in silence
    (``turns``, each one's partition in ``partitions``: ``streams.worker.phases.Advanced``), a copy of
    the state it left to the account of the user's own id, dated at the review, marked a turn
    (``streams.worker.revenue.TURN_HEADER``), with the opened alert's first reason (its account's
    alert says it first: "usual re-order every 34 days, none for 55 days"). Not for a user whose events of this cycle name another
    account (``accounts``). Its offset there: that of the user's last event naming its account when
    this cycle read one, else the partition's last read (where it is made: a version of the same
    period made of the user's events read before it loses to it when both say the same last seen)."""
    out: list[KafkaCopy] = []
    for (uid, ts_s, st, why), p in zip(turns, partitions):
        where = accounts.get(uid)
        if where is not None and where[0] != uid:
            continue
        ts_ms, seen_s, stage, risk, act, base, gap = turn_version(ts_s, st, model)
        member = Member(member_key(uid), seen_s, stage, risk, act, base, uid, gap, machine_user(uid, model.machine_users),
                        key_user(uid, model.key_users))
        out.append(member_copy(uid, ts_ms, member, p, where[2] if where is not None else last_offset.get(p, 0), turn=True,
                               said=why))
    return out


def member_marks(user_id: str, state: UserState | None, events: Sequence[Event], model: ChurnModel,
                 period_ms: int = PERIOD_MS) -> list[Mark]:
    """The marks (``models.engine.Mark``) the user's step takes, apart: ``advance`` from ``state``
    up to its last event. The worker takes them in its own step (``models.step.advance_stored``),
    one pass instead of two: making the versions in a second ``advance`` cost 1.2-1.4x the step."""
    marks: list[Mark] = []
    if events:
        advance(user_id, state, events, max(ev.ts_ms for ev in events), model, period_ms, marks)
    return marks


def member_versions(user_id: str, state: UserState | None, events: Sequence[Event], model: ChurnModel,
                    period_ms: int = PERIOD_MS) -> list[tuple[int, Member]]:
    """``(time, member)`` per period in which ``events`` saw the user active: the member as of its
    last event there (``models.engine.advance`` up to that event, from ``state``), the time that
    of its first activity there, floored to the second (:func:`versions_of` of :func:`member_marks`)."""
    return versions_of(user_id, member_marks(user_id, state, events, model, period_ms), events, model, period_ms)


def versions_of(user_id: str, marks: list[Mark], events: Sequence[Event], model: ChurnModel,
                period_ms: int = PERIOD_MS) -> list[tuple[int, Member]]:
    """The versions the ``marks`` taken over ``events`` give (:func:`member_versions`; the numbers
    from ``models.step.mark_versions``, compiled)."""
    if not marks:
        return []
    key, machine = member_key(user_id), machine_user(user_id, model.machine_users)  # the flag: the model's [users] machine
    keyed = key_user(user_id, model.key_users)  # and [users] key (QA24b F1)
    return [(ts_ms, Member(key, seen_s, stage, risk, act, base, user_id, gap, machine, keyed))
            for ts_ms, seen_s, stage, risk, act, base, gap in mark_versions(marks, events, model, period_ms)]
