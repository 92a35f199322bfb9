"""An account's health, temperature, risk, stage, reasons and action from its users and its subscription.

Account managers look after companies, not users: a company leaves when its people stop using
the product or its billing says so. Inputs, all kept small per account:

- one :class:`Member` per user of the account (25 bytes, its usual interval between active days in 5
  and the user id: when last seen, lifecycle stage, the
  open at-risk alert's risk, the user's 4-week activity then and what its 13-week rate expects), sent by the
  worker that owns the user once per hour the user was active, as of its last event in that hour
  (streams/worker/members.py; so the roll-up is incremental and does not depend on the worker's cycles);
- the subscription (``models.revenue.AccountView``) and the last downgrade (:class:`Downgrade`);
- the renewal date from the accounts table.

Rules (written, not fitted; docs/REVENUE.md "Account roll-up"):

- users = members seen in the last 90 days and, however long silent, the members whose statements
  key a subscription in force (``AccountView.billing_keys``: the user the billing comes from; QA11
  F3) (nobody seen in 90 days: every member ever seen, so an account nobody
  has used for 90 days stays all silent instead of having no users); silent = of those, silent for
  14 days or more, or for a light user longer, 2 of its own usual intervals between active days, at
  most 30 days (:func:`silent_after_s`, QA18 F4: its copy carries its rhythm; the reason then says
  it, "2 of 3 users silent for 3 weeks, against a usual 8-10 days between their active days");
- usage = the users' 4-week activity decayed to now against their 4-week activity expected from
  their 13-week rate (``models.signals`` trend_long; 1.0 at a steady rate; 0.6 = usage fell 40 %);
  0 for an account with no users (no member ever seen: nobody uses it; QA pass 4, 2026-12-03:
  it was 1.0, "steady", so a trial nobody used, the clearest case of "usage under half", ended
  at risk 0, temperature 100 and no reason);
- an account whose activity comes in the same days of every month (``models.monthly``, its
  figures kept with the 2-week trend, :meth:`Trend.cycle`; QA23b F3): a member is silent only once
  a whole monthly window after its last visit has passed without it, and the usage trend rules
  (and the renewal rule's usage) read its last window's activity against the one before
  (:func:`_batch_text`), not the last 2 and 4 weeks against the 3-month rate;
- machine users (``Member.machine``: the model's ``[users] machine`` patterns, :func:`machine_user`;
  QA23b F2) are no users: their activity counts in usage and the 2-week trend (:func:`_used_by`), a
  running one is a seat in use in the seat share (:func:`_running`), never counted, silent or named
  (its silence is said with the trend, :func:`_machine_away`), and a key still running keeps an
  account whose people are all gone at risk, not lapsed;
- key users (``Member.key_user``: the model's ``[users] key`` patterns, :func:`key_user`; QA24b F1:
  a school's champion teacher, 12-48% of its activity beside many students): one silent
  (:func:`silent_member`, past their own rhythm) puts the users' part at the at-risk line at least
  (``KEY_RISK``), whatever their share, "its key user t1 silent for 3 weeks, past their usual 2 days
  between active days" (:func:`_key_text`); back, the account recovers as from any silence;
- user risk ``r_u = 0.8 * silent share`` (all silent: 0.8; a user's own at-risk alert stays the
  user's, and a one-user account would otherwise flap as its second user appears), the share the
  larger of seats and activity (:func:`silence_risk`); a reason names the account's most
  active user or its billing user when silent (:func:`_named_silent`), first while most of the silence is his (QA20a F3); billing risk ``r_b`` = the largest of: past due 0.5, a
  downgrade in the last 30 days 0.35 or the share of the MRR it cut when larger (:func:`downgrade_risk`; not a smaller
  bill, under a fifth on the same plan with no seats cut: :func:`bill_fall`), a user's own
  plan's price risen at its renewal in the last 30 days 0.5 (:class:`PriceRise`, QA19 F7), renewal near while usage fell 25 % or more 0.4
  (near: within a quarter of the billing period the statements state for it, at least 30 days:
  an annual plan's 91 days, a monthly plan's 30; ``models.subscription.renewal_window_ms``, QA11
  F5) (not without users: nothing has fallen, and a monthly plan's renewal is always within 30 days,
  so every paying account whose users have not come yet would carry it), the account's last 2
  weeks against its 3-month rate at any time (:func:`trend_usage`, :func:`trend_risk`: 0 at 80% of
  it or more, 0.5 at 60% or under, linear between; an account followed for 4 weeks whose usual fortnight
  is 20 events or more; QA15 F4), or its last 4 weeks on the same line by the activity missing (0 at
  90% or more, 0.5 at 80% or under: :func:`sustained_line`, an account whose usual fortnight is 40
  events or more; QA23b F4: a fade over 6-8 weeks while its people still come), a trial ending within
  3 days with usage under half its peak 0.5 (without users: "nobody has used it yet"; not for a
  user's own account without a member, whose use the account cannot see: QA14 F1, :func:`rollup`'s
  ``own``), and after its end
  while the status still says trial (no statement yet says converted or cancelled: "trial ended 5 h
  ago and nobody has used it", action "help them convert now that the trial has ended",
  :func:`trial_action`); cancelled with nothing left:
  churned, risk 1, or, for an account that never paid (a trial cancelled without converting, or
  a free plan cancelled: the state keeps no trace of a trial once it is cancelled), trial_lost,
  risk 1, "cancelled without paying" (no logo churn, docs/REVENUE.md, but nothing left to save either);
  an account that paid and moved to a free plan (active at MRR 0): churned too, "moved to the free
  plan Hobby" (:func:`_free_plan_text`), as the ledger counts it (:func:`_free_plan`);
- ``risk = 1 - (1 - r_u)(1 - r_b)``; temperature = 100 (1 - risk); health = 100 times the mean of
  (1 - the silent share of ``r_u``) and usage (capped at 1);
- every user gone (QA16 F11: :func:`gone_member`, its last copy says cancelled or lapsed, or silent
  a week past its silence line: ``LAPSED_S``, 21 days, the lifecycle's dormancy floor, for a user
  silent after 14 days) while the subscription runs (not a trial:
  the trial rule judges it, a trial started says someone is there): ``lapsed``, the
  win-back side's (``WIN_BACK_STAGES``), ``r_u`` 0.8 as with every user silent, its reason how they
  left, "all 4 users cancelled, the last seen 3 days ago", action "win back" (:func:`_gone_text`);
  the worker opens no at-risk alert for it (an account manager told to save an account everyone
  has left is told the opposite of what happened; streams/worker/account_alerts.py); but a
  renewal to save (QA18 F1, :func:`renewal_save`): still paying (active or past due), at least one
  user gone quiet rather than cancelled, not an account that is its one user, and the renewal
  within the renewal window below: stage at_risk (risk 0.88, the renewal's 0.4 with the
  users' 0.8), its reason "renewal in 3 days, the only user silent for 5 weeks" (in place of the
  renewal rule's own), action "book a renewal call": a B2B contract nobody uses that renews
  within days is the most urgent renewal call, not a win-back;
- an account that is its one user (:func:`sole_member`: its only member ever seen has the account's
  id; a shop's customer sent with ``account_id`` = the user id) follows its user's own judgement instead of the
  2 weeks of silence and the 21 days to gone (QA17 F4): silent = its user's own at-risk alert open
  (``Member.risk`` > 0), ``r_u`` = that alert's risk, at least the at-risk line (:func:`sole_risk`),
  reasons the user's own when the caller read them (``rollup``'s ``said``: the owner's book), then
  "the only user c7 at risk by its own alert (risk 62%)"; gone = its lifecycle says lapsed
  (dormant by its own rhythm, or cancelled), not 21 days; billing rules as for any account;
- stage: churned, trial_lost, lapsed, at_risk (risk >= 0.5), trial, past_due, customer, prospect (never paid:
  nothing stated yet, or a free plan), or paused (a customer whose subscription is paused: not churned,
  its users' silence not counted while the pause runs, :func:`pausing`; QA22a F1).
- action: the heaviest reason's, at any risk (an account below the at-risk line with a reason
  still has something to do: a downgrade alone, 0.35, says "review how the plan fits their
  use"); "none" only when no reason stands. An ``account_recovered`` alert says "none": its
  reasons say why the account is better (streams/worker/account_alerts.py). A churned user's own
  account (B2C, a plan on top of the use) says "win back the plan" while its use is not seen, or
  "keep the customer, win back the plan" while its one user is not gone (:func:`_churn_action`, QA19 F7).

Whole days are said as the users' reasons say them (``models.reasons``: "1 day ago", "today").

>>> m = [Member(1, 1_000_000, 1, 0.0, 20.0, 20.0), Member(2, 1_000_000 - 20 * 86_400, 3, 0.0, 5.0, 12.0)]
>>> r = rollup(m, None, None, 0, 1_000_000)
>>> (r.users, r.silent, r.stage, r.reasons[0])
(2, 1, 'prospect', '1 of 2 users silent for 2 weeks')
"""

from __future__ import annotations

import bisect
import hashlib
import math
import struct
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Collection, Final, Iterable, Sequence

from models.lifecycle import LAPSED
from models.monthly import BUCKETS, MONTHS, Cycle, add_part, burst_cycle, burst_usage
from models.reasons import _ago, _counted, _days
from models.revenue import AccountView
from models.signals import _SILENT_S, SILENT_CAP_S, SILENT_INTERVALS, silent_line_s
from models.state import RESUME_QUIET_S, STAGES
from models.subscription import _PAID, RENEWAL_GRACE_MS, RENEWAL_WINDOW_MIN_MS, Subscription

__all__ = ["ACCOUNT_ACTIONS", "ACCOUNT_AT_RISK", "ACCOUNT_STAGES", "BILL_FALL", "bill_fall", "GONE_STAGES", "LAPSED_S", "pausing", "WIN_BACK_STAGES", "AccountRollup", "Downgrade", "PriceRise", "members_cancelled", "seat_price_cents", "seat_price_rise",
           "KEY_RISK", "key_user", "MEMBER_HEAD_BYTES", "MEMBER_ID_AT", "MEMBER_ID_BYTES", "Member", "member_id_at", "SILENT_CAP_S", "SILENT_INTERVALS", "gone_member",
           "SilenceIndex", "SUSTAINED_MIN_EVENTS", "sustained_line", "sustained_usage", "TREND_AT_RISK", "TREND_DAYS", "TREND_FROM", "TREND_HELD_S", "TREND_MIN_EVENTS", "Trend", "add_copy",
           "counted_users", "hours_left", "in_trial", "member_key", "own_account", "paying_again_text", "renewal_save", "sole_member", "sole_risk", "recovered_reasons", "rollup", "downgrade_risk", "silence_index", "silence_risk", "silent_after_s", "silent_member", "silent_share", "still_used_text",
           "silence_risk_at", "member_gain", "trend_risk", "trend_usage", "trend_usage_at", "trial_action", "trial_rule"]

DAY_S: Final[int] = 86_400
ACCOUNT_AT_RISK: Final[float] = 0.5
ACCOUNT_STAGES: Final[tuple[str, ...]] = ("churned", "trial_lost", "lapsed", "at_risk", "trial", "past_due", "customer", "prospect", "paused")
#: Accounts whose subscription is gone: nothing to save, the win-back list's (churned: it paid;
#: trial_lost: cancelled without ever paying, a trial or a free plan). Risk 1, temperature 0, never an at-risk alert.
GONE_STAGES: Final[tuple[str, ...]] = ("churned", "trial_lost")
#: The win-back list's accounts: those whose subscription is gone and those whose every user is
#: gone while it still runs (``lapsed``, :func:`gone_member`; QA16 F11), unless that is a renewal
#: to save (:func:`renewal_save`, QA18 F1: stage at_risk). Never a fresh at-risk alert.
WIN_BACK_STAGES: Final[tuple[str, ...]] = (*GONE_STAGES, "lapsed")
#: A member silent this long is gone for its account (:func:`gone_member`) when 14 days make it
#: silent: the lifecycle's dormancy floor (``models.model.ChurnModel.dormant_days``, 21 days), the
#: earliest silence at which it calls any user dormant. A light member, silent later by its own
#: rhythm (:func:`silent_after_s`, QA18 F4), is gone a week after it is silent, as this one.
LAPSED_S: Final[int] = 21 * 86_400
_LAPSED_STAGES: Final[frozenset[int]] = frozenset(STAGES.index(s) for s in LAPSED)  # a member copy's stage byte
_RE_ENGAGE, _FIX_PAYMENT, _REVIEW_PLAN, _RENEWAL_CALL, _CONVERT_TRIAL, _CONVERT_ENDED, _WIN_BACK, _FALLING_USE = (
    "re-engage the silent users", "fix the payment with the billing contact", "review how the plan fits their use",
    "book a renewal call", "help them convert before the trial ends", "help them convert now that the trial has ended",
    "win back", "ask why their use is falling")
#: The churn of a user's own account (B2C: its plan on top of its use, QA19 F7): the plan is lost, the
#: customer maybe not (:func:`_churn_action`)
_WIN_BACK_PLAN, _KEEP_WIN_PLAN = "win back the plan", "keep the customer, win back the plan"
#: The churn of a subscription cancelled after failed payments (involuntary: billing gave up, the
#: customer may not have meant to leave; QA22a F5): :func:`_churn_action`
_WIN_BACK_PAYMENT: Final[str] = "win back: fix the payment with the billing contact"
ACCOUNT_ACTIONS: Final[tuple[str, ...]] = (_RE_ENGAGE, _FIX_PAYMENT, _REVIEW_PLAN, _RENEWAL_CALL, _CONVERT_TRIAL, _CONVERT_ENDED,
                                           _WIN_BACK, _WIN_BACK_PLAN, _KEEP_WIN_PLAN, _WIN_BACK_PAYMENT, _FALLING_USE, "none")
_USERS_WINDOW_S: Final[int] = 90 * DAY_S
#: What the renewal rule's usage compares (:func:`_usage`: the users' 4-week activity against what their
#: 13-week rates expect), said with its figure: the 2-week trend's reason gives another figure for the
#: same account (QA20a F2: "down 72%" and "usage fell 43%" on one account, read as a contradiction)
_USAGE_WINDOW: Final[str] = " (last 4 weeks against its 3-month rate)"
#: ... and for an account with a monthly burst rhythm (``models.monthly``, QA23b F3): its batches
_BATCH_WINDOW: Final[str] = " (its last monthly batch against the one before)"
_DOWNGRADE_RISK: Final[float] = 0.35  # a downgrade's least part of the risk (downgrade_risk)
#: A fall of the MRR on the same plan, no seats cut, of less than this share is a smaller bill rather
#: than a downgrade (:func:`bill_fall`): a fifth, the band the usage trend rule reads as no signal
#: (``TREND_FROM``: a 2-week activity above 80% of its usual adds nothing). A metered charge
#: follows usage, so a bill within that band is usage within it; and the calendar alone moves it
#: by up to a tenth (a 28-day February against a 31-day January: 9.7% fewer days). A cut of a
#: fifth or more stays a downgrade (QA pass 11 F4's 20% seat removal, sent without ``seats``).
#: Measured on QA23b's API platform (base + last month's metered charge): 494 of 504 same-plan
#: falls of its healthy accounts are under a fifth (median 3.9%, 95th percentile 14.4%), against
#: 15 of its migrating accounts' 55 at a fifth or more (29-66% as their API use ran down). Billing analytics agree a
#: metered bill is no plan decision: Baremetrics leaves usage-based plans out of MRR by default ("the
#: amounts can vary from month to month"), Lago's MRR counts fixed fees only.
BILL_FALL: Final[float] = 0.2
#: A price rise at renewal's part of the risk (:class:`PriceRise`, QA19 F7), the at-risk line: on
#: QA19's neobank 261 of the 553 premium renewals at 7.99 after 4.99 (47%) were cancelled within
#: 30 days, against 74 of 3,146 renewals at an unchanged price (2.4%); all 240 fee-shock cancellers
#: among them, a median 10.3 days after the rise
_RISE_RISK: Final[float] = 0.5
#: ... for 30 days, as a downgrade's (the fee-shock cancellers left 0-20 days after it)
RISE_COUNTS_MS: Final[int] = 30 * 86_400_000
_GONE_AFTER_SILENT_S: Final[int] = LAPSED_S - _SILENT_S  # gone a week after silent (gone_member)
_MEMBER = struct.Struct("<QIBfff")  # key, last seen s, stage index, open risk, act 28d and its base at last seen
# a member record keeps the user id when it has at most this many bytes: 25 + 5 + 200 stays under the
# listpack value limit (``hash-max-listpack-value`` 256) of the account's member hash
MEMBER_ID_BYTES: Final[int] = 200
# a member record's fixed part (25 bytes): a longer record keeps the rhythm and/or the user id after it (Member.to_bytes)
MEMBER_HEAD_BYTES: Final[int] = _MEMBER.size
# the member's rhythm after the head (QA18 F4): a marker byte no UTF-8 text holds (so a record of the
# format before, whose byte 25 starts its user id, is told apart by it), then the usual interval
# between active days as a float32 (days); the user id, if kept, follows
_RHYTHM = struct.Struct("<Bf")
_RHYTHM_MARK: Final[int] = 0xFF
#: Where a record's user id starts (``MEMBER_HEAD_BYTES`` for a record without the rhythm):
#: streams/worker/lua/write_accounts.lua reads the id at the same place.
MEMBER_ID_AT: Final[int] = MEMBER_HEAD_BYTES + _RHYTHM.size


#: The stage byte's high bit marks a machine user (``Member.machine``): stage indexes are under 16.
_MACHINE_BIT: Final[int] = 0x80
#: ... and its next bit a key user (``Member.key_user``, QA24b F1)
_KEY_BIT: Final[int] = 0x40
#: A key user's silence alone (:func:`key_user`): the users' part of the risk is at least the
#: at-risk line, so the account is at risk on it whatever the key user's share of its activity.
#: QA24b F1: a school's champion teacher left and the account was first alerted a median 51.5 days
#: later, when its students' use had fallen; the teacher was 12-48% of its activity, so their
#: silence alone weighed 0.1-0.38.
KEY_RISK: Final[float] = ACCOUNT_AT_RISK


def machine_user(user_id: str, patterns: Sequence[str]) -> bool:
    """Whether ``user_id`` is a machine user (an API key, a service account, an integration) by the
    model's ``[users] machine`` patterns (shell-style, case-sensitive: ``svc_*``). QA23b F2: a
    platform's service key, 82% of an account's activity, was its "most active user" in 228 of 230
    such reasons and hid its developers' leaving; its silence is the account's usage falling.

    >>> machine_user("svc_acc040", ("svc_*",)), machine_user("acc040_d00", ("svc_*",)), machine_user("svc_1", ())
    (True, False, False)
    """
    return bool(patterns) and any(fnmatchcase(user_id, p) for p in patterns)  # (none declared: no generator made, per member copy)


def key_user(user_id: str, patterns: Sequence[str]) -> bool:
    """Whether ``user_id`` is a key user of its account (its champion, admin, teacher) by the model's
    ``[users] key`` patterns (as :func:`machine_user` reads ``[users] machine``). QA24b F1.

    >>> key_user("sch015_t1", ("*_t1",)), key_user("sch015_s03", ("*_t1",)), key_user("sch015_t1", ())
    (True, False, False)
    """
    return machine_user(user_id, patterns)


def member_key(user_id: str) -> int:
    """8 bytes of the user id's hash: members are stored without their id (state stays small)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True, slots=True)
class Member:
    """One user of an account as the account needs it (``STAGES`` index as in models.state)."""

    key: int
    last_seen_s: int
    stage: int
    risk: float  # risk of the user's open at-risk alert at its opening (QA21 F2); 0 while none is open
    act_28d: float  # decayed 4-week activity at last_seen_s (models.signals)
    base_28d: float  # act_28d expected from the 13-week rate at last_seen_s (act_28d / trend_long)
    user_id: str = ""  # for the console's link to the user's page; "" when unknown or too long to keep
    # the user's usual interval between active days at last_seen_s, in days, as the user side
    # measures it (models.signals.visit_gap_days); 0.0 unknown (a record of the format before QA18 F4):
    # the account then judges its silence by the fixed 14 days (:func:`silent_after_s`)
    gap_days: float = 0.0
    # a machine user (``[users] machine`` of the model, :func:`machine_user`): its events are the
    # account's usage (the 2-week trend, the renewal rule's figure), but it is not one of its users
    # (counted, silent, named): kept as the high bit of the stage byte (``_MACHINE_BIT``), no byte more
    machine: bool = False
    # a key user (``[users] key`` of the model, :func:`key_user`): silent, the account is at risk on
    # their silence alone (``KEY_RISK``); kept as the next bit of the stage byte (``_KEY_BIT``), no byte more
    key_user: bool = False

    def to_bytes(self) -> bytes:
        """25 bytes (``_MEMBER``), then the rhythm (``_RHYTHM``: a 0xFF marker and ``gap_days``,
        5 bytes) when known, then the user id (UTF-8) when it is at most ``MEMBER_ID_BYTES``.
        A member without a rhythm is written as before it was kept.

        >>> m = Member(member_key("u1"), 5, 1, 0.0, 1.0, 2.0, "u1", 9.5)
        >>> len(m.to_bytes()), Member.from_bytes(m.to_bytes()) == m, Member.from_bytes(m.to_bytes()[:30]).user_id
        (32, True, '')
        >>> old = Member(member_key("u1"), 5, 1, 0.0, 1.0, 2.0, "u1")
        >>> len(old.to_bytes()), Member.from_bytes(old.to_bytes()) == old, Member.from_bytes(old.to_bytes()[:25]).gap_days
        (27, True, 0.0)
        """
        stage = self.stage | (_MACHINE_BIT if self.machine else 0) | (_KEY_BIT if self.key_user else 0)
        head = _MEMBER.pack(self.key, self.last_seen_s, stage, self.risk, self.act_28d, self.base_28d)
        if self.gap_days > 0.0:
            head += _RHYTHM.pack(_RHYTHM_MARK, self.gap_days)
        uid = self.user_id.encode("utf-8", "surrogatepass")
        return head + uid if len(uid) <= MEMBER_ID_BYTES else head

    @classmethod
    def from_bytes(cls, data: bytes) -> Member:
        """A record of :meth:`to_bytes`, or of a format before it: 25 bytes (before user ids were
        kept), 25 bytes and the id (before the rhythm was: ``gap_days`` 0.0). The rule (a version by
        its length and a marker): a record of 30 bytes or more whose byte 25 is 0xFF keeps the
        rhythm in bytes 26-29, its id from byte 30 (``MEMBER_ID_AT``); an id in UTF-8 never starts
        with 0xFF, so a record before is never read as one with a rhythm."""
        at = member_id_at(data)
        gap = _RHYTHM.unpack_from(data, MEMBER_HEAD_BYTES)[1] if at == MEMBER_ID_AT else 0.0
        key, seen, stage, risk, act, base = _MEMBER.unpack_from(data)
        return cls(key, seen, stage & ~(_MACHINE_BIT | _KEY_BIT), risk, act, base, data[at:].decode("utf-8", "surrogatepass"), gap,
                   bool(stage & _MACHINE_BIT), bool(stage & _KEY_BIT))


def member_id_at(record: bytes) -> int:
    """Where a member record's user id starts (:meth:`Member.from_bytes`' rule): after the rhythm
    (``MEMBER_ID_AT``) in a record that keeps one, else after the 25-byte head. The record keeps
    the id when it is longer than that (the write indexes it: streams/worker/revenue.py).

    >>> m = Member(member_key("u1"), 5, 1, 0.0, 1.0, 2.0, "u1", 9.5)
    >>> [(member_id_at(r), len(r)) for r in (m.to_bytes(), m.to_bytes()[:30], Member(1, 5, 1, 0.0, 1.0, 2.0, "u1").to_bytes())]
    [(30, 32), (30, 30), (25, 27)]
    """
    return MEMBER_ID_AT if len(record) >= MEMBER_ID_AT and record[MEMBER_HEAD_BYTES] == _RHYTHM_MARK else MEMBER_HEAD_BYTES


@dataclass(frozen=True, slots=True)
class PriceRise:
    """A renewal on the same plan at a higher price: the price rose at its renewal, the customer
    changed nothing. A user's own subscription (B2C) renewed at a higher MRR (QA19 F7: a neobank's
    premium 4.99 -> 7.99; the statements showed it as expansion, and 229 of its 240 fee-shock
    cancellers got no warning in the 30 days before they cancelled); or any subscription whose
    statements before and at the renewal state their seats, renewed at a higher price per seat
    (QA20a F6: a company's Team Annual 520.00 -> 650.00 for the same 26 seats, cancelled 20 days
    later unwarned). Kept by the worker (extras ``rise``, streams/worker/account_alerts.py
    ``note_price_rise``). A company's MRR rising on the same plan without seats stated is more
    seats as often as a price: not one. ``seats_before``/``seats_after``: 0 for the B2C form;
    else the MRRs are the subscription's, and the price said is per seat. ``intro``: the rise ends
    the introductory price the subscription started at (``Movement.intro_ended``,
    ``models.revenue.intro_ended``; QA24a F2: a publisher's 400 "1.00 the first month, then 9.99"
    subscribers all read "price rose from 1.00 to 9.99"): said as such, the same risk (21% of them
    cancelled within 32 days: the moment is one to watch)."""

    ts_ms: int
    plans: tuple[str, ...]
    mrr_before_cents: int
    mrr_after_cents: int
    seats_before: int = 0
    seats_after: int = 0
    intro: bool = False

    def text(self, now_ms: int) -> str:
        """The reason: "price rose from 4.99 to 7.99 at its renewal 3 days ago (premium)", or per
        seat: "price per seat rose from 20.00 to 25.00 at its renewal today (Team Annual, 26 seats)".

        >>> PriceRise(0, ("premium",), 499, 799).text(3 * 86_400_000), PriceRise(0, ("",), 499, 799).text(0)
        ('price rose from 4.99 to 7.99 at its renewal 3 days ago (premium)', 'price rose from 4.99 to 7.99 at its renewal today')
        >>> PriceRise(0, ("Team Annual",), 52_000, 65_000, 26, 26).text(0), PriceRise(0, ("",), 40_000, 50_000, 20, 20).text(0)
        ('price per seat rose from 20.00 to 25.00 at its renewal today (Team Annual, 26 seats)', 'price per seat rose from 20.00 to 25.00 at its renewal today (20 seats)')
        >>> PriceRise(0, ("Team",), 52_000, 50_000, 26, 20).text(0)
        'price per seat rose from 20.00 to 25.00 at its renewal today (Team, 26 to 20 seats)'

        An introductory price's end (``intro``): "introductory price ended: 1.00 -> 9.99 at its first
        full-price renewal 3 days ago (digital_monthly)".

        >>> PriceRise(0, ("digital_monthly",), 100, 999, intro=True).text(3 * 86_400_000)
        'introductory price ended: 1.00 -> 9.99 at its first full-price renewal 3 days ago (digital_monthly)'
        >>> PriceRise(0, ("Team",), 26_000, 52_000, 26, 26, True).text(0)
        'introductory price per seat ended: 10.00 -> 20.00 at its first full-price renewal today (Team, 26 seats)'
        """
        named = _named(self.plans)
        when = _ago((now_ms - self.ts_ms) // 86_400_000)
        if self.seats_before and self.seats_after:
            seats = (f"{self.seats_after} seat{'s' if self.seats_after > 1 else ''}" if self.seats_before == self.seats_after
                     else f"{self.seats_before} to {self.seats_after} seats")
            before, after = (seat_price_cents(self.mrr_before_cents, self.seats_before) / 100,
                             seat_price_cents(self.mrr_after_cents, self.seats_after) / 100)
            if self.intro:
                return (f"introductory price per seat ended: {before:.2f} -> {after:.2f} at its first full-price renewal {when} "
                        f"({named + ', ' if named else ''}{seats})")
            return f"price per seat rose from {before:.2f} to {after:.2f} at its renewal {when} ({named + ', ' if named else ''}{seats})"
        if self.intro:
            return (f"introductory price ended: {self.mrr_before_cents / 100:.2f} -> {self.mrr_after_cents / 100:.2f} at its first "
                    f"full-price renewal {when}" + (f" ({named})" if named else ""))
        return (f"price rose from {self.mrr_before_cents / 100:.2f} to {self.mrr_after_cents / 100:.2f} at its renewal {when}"
                + (f" ({named})" if named else ""))


def seat_price_cents(mrr_cents: int, seats: int) -> int:
    """The price of a seat in whole cents (rounded half up): what a rise per seat is measured and
    said in (:class:`PriceRise`), so a rise said is never "from 20.00 to 20.00".

    >>> seat_price_cents(52_000, 26), seat_price_cents(1_000, 3), seat_price_cents(1_001, 2)
    (2000, 333, 501)
    """
    return (2 * mrr_cents + seats) // (2 * seats)


def seat_price_rise(ts_ms: int, before: Subscription, after: Subscription) -> PriceRise | None:
    """The rise per seat of a subscription renewed at ``ts_ms`` from ``before`` to ``after`` (its
    statements before and at the renewal): both paying for the same plan, both stating their seats,
    the price of a seat up by a cent or more (:func:`seat_price_cents`); None otherwise: more seats
    at the same price is growth, and without the seats on both a price cannot be told from seats.

    >>> old = Subscription("active", "Team Annual", 52_000, 0, 0, 26)
    >>> seat_price_rise(5, old, Subscription("active", "Team Annual", 65_000, 0, 0, 26))
    PriceRise(ts_ms=5, plans=('Team Annual',), mrr_before_cents=52000, mrr_after_cents=65000, seats_before=26, seats_after=26, intro=False)
    >>> [seat_price_rise(5, old, Subscription("active", plan, mrr, 0, 0, seats)) for plan, mrr, seats in
    ...  (("Team Annual", 65_000, 0), ("Team Annual", 64_000, 32), ("Team Annual", 52_000, 26), ("Team", 65_000, 26))]
    [None, None, None, None]
    """
    paying = before.status in _PAID and after.status in _PAID
    if not (paying and before.seats and after.seats and before.plan == after.plan):
        return None
    if seat_price_cents(after.mrr_cents, after.seats) <= seat_price_cents(before.mrr_cents, before.seats):
        return None
    return PriceRise(ts_ms, (after.plan,), before.mrr_cents, after.mrr_cents, before.seats, after.seats)


@dataclass(frozen=True, slots=True)
class Downgrade:
    """The account's latest contraction: the plans before and after, and when."""

    ts_ms: int
    plans_before: tuple[str, ...]
    plans_after: tuple[str, ...]
    mrr_before_cents: int = 0  # the account's MRR before and after it (0: a record kept before they were)
    mrr_after_cents: int = 0
    # the users whose own subscription the contraction's statements cancelled (QA22b F6), () when
    # none did (a plan changed, fewer seats): with the same plan still held by other users, the
    # contraction is members' subscriptions ending, not the account's plan (:func:`members_cancelled`)
    cancelled: tuple[str, ...] = ()
    # the seats its statement's subscription stated before and after it, when both stated them and
    # they differ (0, 0 otherwise): fewer seats is the account's decision (:func:`bill_fall`)
    seats_before: int = 0
    seats_after: int = 0


def bill_fall(down: Downgrade) -> bool:
    """Whether the contraction is a smaller bill, not a downgrade: the same plans before and after
    (names and number), no seat cut stated, and a fall of less than ``BILL_FALL`` of the MRR. Such a
    fall adds no risk and no reason to the account (the ledger still books it as contraction:
    money is money). Why (QA23b F1, F5): an API platform's MRR is its base plan plus last month's
    metered charge, restated each month; every smaller bill read "MRR down from 131.00 to 129.00
    (starter) today", action "review how the plan fits their use", the first reason of 224 of 470
    ``account_at_risk`` (142 of the 150 on healthy accounts, bunched after February's 28 days), and
    five such wiggles of 2-6 headed an owner's book above the one account leaving. A record kept
    before the MRR was (``mrr_before_cents`` 0) stays a downgrade.

    >>> [bill_fall(Downgrade(0, ("starter",), ("starter",), b, a)) for b, a in ((13100, 12900), (10000, 8100), (10000, 8000), (0, 0))]
    [True, True, False, False]
    >>> bill_fall(Downgrade(0, ("Team",), ("Team",), 10000, 9000, (), 10, 9)), bill_fall(Downgrade(0, ("Pro",), ("Basic",), 10000, 9500))
    (False, False)
    """
    if down.plans_before != down.plans_after or down.cancelled or 0 < down.seats_after < down.seats_before:
        return False
    return down.mrr_before_cents > 0 and _cut(down) < BILL_FALL


def members_cancelled(down: Downgrade) -> tuple[str, int, int]:
    """``(plan, k, n)`` when the contraction is ``k`` of the account's ``n`` subscriptions of one
    plan cancelled by their users (``Downgrade.cancelled``) while other users keep that plan, else
    ``("", 0, 0)``. Why (QA22b F6): a game's guild holds each member's own 4.99 pass; one member
    cancelling his read "downgraded from battle_pass + battle_pass to battle_pass today (MRR cut by
    50%)", a plan downgrade of the guild, the first reason of 10 of 15 collapsing guilds' alerts and
    of 6 of 45 healthy guilds' alerts, which nothing else had flagged.

    >>> members_cancelled(Downgrade(0, ("bp", "bp"), ("bp",), 998, 499, ("p1",)))
    ('bp', 1, 2)
    >>> [members_cancelled(Downgrade(0, b, a, 0, 0, c)) for b, a, c in ((("Addon", "Pro"), ("Pro",), ("u2",)), (("bp", "bp"), ("bp",), ()))]
    [('', 0, 0), ('', 0, 0)]
    """
    gone = list(down.plans_before)
    for plan in down.plans_after:
        if plan in gone:
            gone.remove(plan)
        else:  # a plan that came or changed: a plan move, not only cancellations
            return "", 0, 0
    if not down.cancelled or len(set(gone)) != 1 or gone[0] not in down.plans_after:
        return "", 0, 0
    return gone[0], len(gone), down.plans_before.count(gone[0])


@dataclass(frozen=True, slots=True)
class AccountRollup:
    health: int  # 0-100
    temperature: int  # 0-100
    risk: float  # 0-1
    stage: str
    users: int
    silent: int
    usage: float  # 0-1+, 4-week activity now against the users' peaks
    mrr_cents: int
    reasons: tuple[str, ...]
    action: str
    # the trial rule held (:func:`trial_rule`, on the unrounded usage): the worker reads this rather
    # than test the rule again on ``usage``, which is rounded to 4 places (QA6 L7: usage 0.49996
    # rounds to 0.5, the rule held, the test said no, and the duplicate reminder came back)
    trial: bool = False
    # the named silent user (QA11 F3) as a recovery says it, "still silent: its most active user
    # u07 (3 weeks, 22% of its activity)"; "" when no such user is silent (:func:`recovered_reasons`)
    still_silent: str = ""
    # False for a user's own account seen through no member (``rollup``'s ``own``): the account
    # cannot tell how its user uses the product, so usage and health say nothing (both 0) and the
    # worker sends no trial reminder on them (QA14 F1)
    usage_known: bool = True
    # an account that is its one user (:func:`sole_member`, QA17 F4): its users' part is that user's own
    # judgement, so a recovery says the user's alert closed, not "active in the last 2 weeks"
    sole: bool = False
    # users not silent though not seen for 14 days or more: within their own rhythm (silent_after_s,
    # QA18 F4), so a recovery does not call them "active in the last 2 weeks"
    within_rhythm: int = 0


def _plans(plans: tuple[str, ...]) -> str:
    return " + ".join(plans) if plans else "nothing"


def _named(plans: Sequence[str]) -> str:
    """The plans that have a name, joined ("Addon + Pro"); "" when none has (a statement may leave
    its plan out), so a text can leave the name out rather than print an empty one.

    >>> _named(("Addon", "Pro")), _named(("",))
    ('Addon + Pro', '')
    """
    return " + ".join(p for p in plans if p)


def _free_plan_text(named: str) -> str:
    """The churn to a free plan in words, its name said unless it only says "free" again (QA16
    F10: "moved to the free plan free").

    >>> _free_plan_text("Hobby"), _free_plan_text("free"), _free_plan_text("Free plan"), _free_plan_text("")
    ('moved to the free plan Hobby', 'moved to the free plan', 'moved to the free plan', 'moved to a free plan')
    """
    if not named:
        return "moved to a free plan"
    return "moved to the free plan" if named.strip().lower() in ("free", "free plan") else f"moved to the free plan {named}"


def _downgrade_text(down: Downgrade) -> str:
    """The downgrade reason without its age: "downgraded from Enterprise to Pro", or, when the
    plans do not change (fewer seats on the same plan), the fall of the MRR: "MRR down from 200.00
    to 150.00 (Team)" (QA pass 9 L1: it read "downgraded from Team to Team"). A record kept before
    the MRR was (``mrr_before_cents`` 0) says "plan Team reduced".

    >>> _downgrade_text(Downgrade(0, ("Addon", "Pro"), ("Pro",))), _downgrade_text(Downgrade(0, ("Team",), ("Team",), 20000, 15000))
    ('downgraded from Addon + Pro to Pro', 'MRR down from 200.00 to 150.00 (Team)')
    >>> _downgrade_text(Downgrade(0, ("Team",), ("Team",)))
    'plan Team reduced'
    >>> _downgrade_text(Downgrade(0, ("bp", "bp", "bp"), ("bp",), 1497, 499, ("p1", "p2")))
    '2 of 3 bp subscriptions cancelled'
    """
    plan, k, n = members_cancelled(down)
    if k:
        return f"{k} of {n} {plan + ' ' if plan else ''}subscriptions cancelled"
    if down.plans_before != down.plans_after:
        return f"downgraded from {_plans(down.plans_before)} to {_plans(down.plans_after)}"
    named = _named(down.plans_after)
    if down.mrr_before_cents > down.mrr_after_cents:
        return f"MRR down from {down.mrr_before_cents / 100:.2f} to {down.mrr_after_cents / 100:.2f}" + (f" ({named})" if named else "")
    return f"plan {named} reduced" if named else "plan reduced"


def _cut(down: Downgrade) -> float:
    """The contraction's size as a fraction of the MRR before it (0 when the record has no MRR)."""
    before, after = down.mrr_before_cents, down.mrr_after_cents
    return (before - after) / before if before > 0 and 0 <= after < before else 0.0


def downgrade_risk(down: Downgrade) -> float:
    """A downgrade's part of the billing risk, for 30 days: 0.35, or the share of the MRR it cut
    when larger. Why (QA11 F4): a flat 0.35 scored a 78% cut (375.00 to 84.00) as a 20% seat
    removal, and the account, off its manager's list at 0.38, cancelled 7 weeks later. A
    contraction is a partial churn: the account has already withdrawn that share of its revenue,
    so it is at least that much at risk of withdrawing the rest; the larger the cut, the higher
    (monotone), never below the flat rule before (any downgrade asks to review the plan). A record
    kept before the MRR was: 0.35.

    >>> [downgrade_risk(Downgrade(0, ("B",), ("T",), b, a)) for b, a in ((6000, 4800), (37500, 8400), (0, 0), (5000, 0))]
    [0.35, 0.776, 0.35, 1.0]

    Users' own subscriptions cancelled while other users keep the plan (:func:`members_cancelled`,
    QA22b F6): 0.35 whatever the share. The share rule reads a contraction as the account
    withdrawing that part of its revenue by one decision; here each user decided for his own
    subscription and the others kept theirs, so it says how much that user paid, not how likely the
    rest is to go: the flat downgrade (a seat's worth), said and on the book, action "review how
    the plan fits their use", no at-risk alert alone; with the users' silence or a falling usage it
    adds up as any billing signal. One rule for any account (a company's per-user licences too):
    one of its two per-user Pro seats cancelled read a 50% downgrade of the company.

    >>> downgrade_risk(Downgrade(0, ("bp", "bp"), ("bp",), 998, 499, ("p1",)))
    0.35
    """
    if members_cancelled(down)[1]:
        return _DOWNGRADE_RISK
    return max(_DOWNGRADE_RISK, round(_cut(down), 4))


def pausing(view: AccountView | None, now_ms: int) -> bool:
    """Whether the account is a customer whose pause runs at ``now_ms`` (a ``paused`` subscription
    and none paying, its resume date ahead or not stated: ``AccountView.resumes_ms``). Its users'
    silence is the pause: no silent or gone users, no falling use (QA22a F1: every pause was
    "moved to the free plan standard_paused", churned, its users on the win-back list); from the
    resume date without a statement the rules judge it again, stage ``paused`` still, not churned.
    For 4 weeks after a resume too (models.state RESUME_QUIET_S, as for its users: the pause's
    silence is still in their counts; QA22a F2, 13 ``account_at_risk`` at the resume's second
    "all 4 users silent for 9 weeks", "usage over the last 2 weeks down 83%").

    >>> v = AccountView(0, False, "paused", ("standard",), 0, 0, 0, 1, resumes_ms=500)
    >>> pausing(v, 499), pausing(v, 500), pausing(AccountView(0, False, "paused", (), 0, 0, 0, 1, resumes_ms=-1), 10**12)
    (True, False, True)
    """
    return view is not None and (view.paused and (view.resumes_ms < 0 or now_ms < view.resumes_ms)
                                 or 0 < view.resumed_ms <= now_ms < view.resumed_ms + RESUME_QUIET_S * 1000)


def _free_plan(view: AccountView | None) -> bool:
    """Whether the account is on a free plan: a subscription ``active`` at MRR 0 and none paying,
    past due or in a trial with a stated end (a trial of a paid plan beside a free one is judged
    as a trial). Of an account that paid before, that is churn (docs/REVENUE.md: "MRR falls to
    0"), as the ledger counts it (QA pass 9 M2: the roll-up called it a prospect, "never paid",
    risk 0, no ``account_churned``, not on the win-back list)."""
    return view is not None and view.status == "active" and not view.customer and not view.trial_ends_ms


def _usage(users: Sequence[Member], now_s: int) -> float:
    """4-week activity now against its 13-week base, both decayed to ``now_s`` at their own pace
    (28 and 90 days): 1.0 while steady, falling with silence or fewer events; 0.0 without users
    (nobody uses the account: the trial rule's clearest case, module docstring). A base that decayed
    below what a float holds is usage at its limit, 0.0 (the 4-week part decays faster), not "no base":
    hypothesis found a member of base 5e-324 whose longer silence turned usage 0.0 into 1.0."""
    recent = base = 0.0
    based = False
    for m in users:
        age = max(0, now_s - m.last_seen_s)
        recent += m.act_28d * math.exp(-age / (28.0 * DAY_S))
        base += m.base_28d * math.exp(-age / (90.0 * DAY_S))
        based = based or m.base_28d > 0
    return recent / base if base > 0 else 0.0 if based or not users else 1.0


#: How far back "recent" reaches for the trend rule: the account's activity decayed over 14 days
#: ("the last 2 weeks"), against the 3-month rate its members' 13-week rates expect (``base_28d``).
#: Why 14 days: the members' 4-week figure lags a fade by about 4 weeks (an exponential average
#: lags a steady fall by its time constant), so against the 3-month base it reached "fell 25%"
#: only days before QA15's cancel notices; a 2-week figure lags half as much, and two quiet weeks
#: (not one: a holiday) are what it takes to reach the line below from a steady rate.
TREND_DAYS: Final[float] = 14.0
#: At or under 60% of its own usual rate the rule alone puts the account at risk (0.5, the
#: at-risk line); at 80% or more (a fall of a fifth or less) it adds nothing; between, its part
#: rises linearly from 0 to 0.5 (monotone: a deeper fall never lowers the risk), so a fall of 30%
#: adds 0.25 to what silent users add. Why 60% and not half: the 2-week figure lags a steady fall
#: by about two weeks, so when it reads 60% the account's current rate is near half its usual
#: (QA15's fades: 10% of the usual at the end of 50-80 days, a fall of 1.1-1.8% of it a day).
#: Why it is not chance: the 2-week figure of an account whose usual fortnight is 20 events or
#: more (``TREND_MIN_EVENTS``) varies, at a steady Poisson rate, by at most a sixth of its mean
#: (the standard deviation of an exponentially decayed count is the square root of half its
#: mean), so 60% is 2.5 standard deviations below: under 1% of fortnights by chance.
TREND_AT_RISK: Final[float] = 0.6
TREND_FROM: Final[float] = 0.8
#: The rule speaks only for an account whose usual 2-week activity is at least 20 events (above):
#: at 6 (a one-user account) 60% is 1.4 standard deviations below its mean, 8% of fortnights by
#: chance, not a trend.
TREND_MIN_EVENTS: Final[float] = 20.0
#: ... and once its own 2-week figure has been followed for 28 days: the figure starts from the
#: steady-rate assumption (half the 4-week figure) when the account is first reviewed, and needs
#: two time constants to be its own.
TREND_HELD_S: Final[int] = 28 * DAY_S


@dataclass(frozen=True, slots=True)
class Trend:
    """The account's 2-week activity (the worker keeps it in the account's extras, ``[since_s,
    at_s, fast]``: 3 numbers at full precision, about 45 bytes of JSON), and its monthly burst
    rhythm's figures (``month``, ``parts``: 25 whole numbers more, ``models.monthly.add_part``; QA23b F3).

    ``fast`` is the account's activity decayed over ``TREND_DAYS`` at ``at_s`` (the latest last
    seen of the copies applied); ``since_s`` when it is followed from (the earliest member copy's
    time). The member copies carry each user's 4-week figure, not their events, so a copy adds
    what its user gained since the user's copy before (:func:`member_gain`), at the time the copy
    was made (its last seen): a sum of terms, one a copy, each a function of that user's copies
    alone (:func:`add_copy`). So ``fast`` is the same whatever the reviews in between and in
    whatever order the users' copies were applied (QA20a F11: kept to 3 decimals and advanced at
    each review, it took the review instants, and one replay's copy applied behind moved a risk
    by 0.0001). Without a copy it only decays, faster than the 3-month base, so the rule's part of
    the risk only rises (what the worker's review of deadlines assumes)."""

    since_s: int
    at_s: int
    fast: float
    # the monthly burst rhythm (QA23b F3, models.monthly.add_part): the activity by the month's parts
    # of the 3 calendar months to ``month``, whole sums (the same in any order); () in a record of before
    month: int = -1
    parts: tuple[int, ...] = ()

    def to_list(self) -> list[float | int]:
        """The extras' record, at full precision (rounded at each copy, it would take the copies' order):
        3 numbers, and the burst rhythm's 25 whole ones once a copy has added to it."""
        head: list[float | int] = [self.since_s, self.at_s, self.fast]
        return [*head, self.month, *self.parts] if self.parts else head

    @classmethod
    def from_list(cls, kept: object) -> Trend | None:
        """A record of :meth:`to_list`, one of before 2026-12-05 (``[since_s, at_s, recent, fast]``,
        then perhaps 3 more: its ``fast`` read), or None for anything else."""
        if not (isinstance(kept, list) and all(isinstance(x, (int, float)) for x in kept)):
            return None
        if len(kept) == 4 + MONTHS * BUCKETS:
            return cls(int(kept[0]), int(kept[1]), float(kept[2]), int(kept[3]), tuple(int(x) for x in kept[4:]))
        if len(kept) == 14:  # the rhythm of the reverted record of 2026-12-05 (order-dependent): learnt again
            return cls(int(kept[0]), int(kept[1]), float(kept[2]))
        if len(kept) in (3, 4, 7):
            return cls(int(kept[0]), int(kept[1]), float(kept[2 if len(kept) == 3 else 3]))
        return None

    def at(self, now_s: int) -> Trend:
        """The trend at ``now_s``: ``fast`` decayed from ``at_s`` (grown, for a time before it: a
        copy is dated at its hour's first event, its last seen later).

        >>> Trend(0, 0, 14.0).at(14 * DAY_S).fast == 14.0 * math.exp(-1.0)
        True
        """
        return Trend(self.since_s, now_s, self.fast * math.exp(-(now_s - self.at_s) / (TREND_DAYS * DAY_S)), self.month, self.parts)

    def cycle(self) -> Cycle | None:
        """The account's monthly window (``models.monthly.burst_cycle``) as of ``at_s``, or None."""
        return burst_cycle(self.month, self.parts, self.since_s, self.at_s)

    def batch_usage(self, cycle: Cycle, now_s: int) -> float:
        """Its last batch against the one before at ``now_s`` (``models.monthly.burst_usage``)."""
        return burst_usage(self.month, self.parts, cycle, now_s, TREND_MIN_EVENTS)


def member_gain(old: Member | None, new: Member) -> float:
    """What a user's copy ``new`` adds to the account's activity at its last seen: its 4-week figure
    beyond the decay of the user's copy before (``old``; None: all of it), never negative.

    >>> m = Member(1, 0, 1, 0.0, 28.0, 28.0)
    >>> member_gain(None, m), round(member_gain(m, Member(1, 28 * DAY_S, 1, 0.0, 28.0 * math.exp(-1.0) + 3.0, 28.0)), 9)
    (28.0, 3.0)
    """
    if old is None:
        return new.act_28d
    return max(0.0, new.act_28d - old.act_28d * math.exp(-(new.last_seen_s - old.last_seen_s) / (28.0 * DAY_S)))


def add_copy(kept: Trend | None, old: Member | None, new: Member, ts_s: int) -> Trend:
    """The trend once the user's copy ``new`` (dated ``ts_s``; ``old`` the user's copy before it)
    is applied: its gain (:func:`member_gain`) added at its last seen. A user's first copy adds
    its 4-week figure at the steady rate, half of it: the account cannot tell its events from
    the 4 weeks before (a history exported from mid-life, a user who joins with a past), and
    whether a copy is the account's first is not known from the copy alone. ``since_s``: the
    earliest copy's time.

    >>> ms = [Member(1, 10 * DAY_S, 1, 0.0, 28.0, 28.0), Member(2, 10 * DAY_S, 1, 0.0, 28.0, 28.0)]
    >>> t = add_copy(add_copy(None, None, ms[0], 10 * DAY_S), None, ms[1], 10 * DAY_S); (t.since_s // DAY_S, t.fast)
    (10, 28.0)
    >>> later = add_copy(t, ms[0], Member(1, 24 * DAY_S, 1, 0.0, 28.0 * math.exp(-0.5) + 5.0, 28.0), 24 * DAY_S)  # 14 days on, 5 events
    >>> round(later.fast, 3), later.at_s // DAY_S
    (15.301, 24)
    """
    since = ts_s if kept is None else min(kept.since_s, ts_s)
    gain = member_gain(old, new) * (TREND_DAYS / 28.0 if old is None else 1.0)
    month, parts = (kept.month, kept.parts) if kept is not None else (-1, ())
    if old is not None:  # the burst rhythm's (models.monthly): a first copy's 4 weeks have no day of the month
        month, parts = add_part(month, parts, gain, new.last_seen_s)
    if kept is None:
        return Trend(since, new.last_seen_s, gain, month, parts)
    if new.last_seen_s > kept.at_s:
        fast = kept.fast * math.exp(-(new.last_seen_s - kept.at_s) / (TREND_DAYS * DAY_S))
        return Trend(since, new.last_seen_s, fast + gain, month, parts)
    return Trend(since, kept.at_s, kept.fast + gain * math.exp(-(kept.at_s - new.last_seen_s) / (TREND_DAYS * DAY_S)), month, parts)


def trend_usage(trend: Trend | None, users: Sequence[Member], now_s: int) -> float:
    """The account's last 2 weeks against its 3-month rate (1.0 steady; 0.4 = down 60%), or -1.0
    when the rule does not judge: no trend, followed less than ``TREND_HELD_S``, or a usual
    2-week activity under ``TREND_MIN_EVENTS``. The base is :func:`_usage`'s (the users' 4-week
    activity expected from their 13-week rates, decayed at its pace), halved: a fortnight's."""
    if trend is None or now_s - trend.since_s < TREND_HELD_S:
        return -1.0
    base = _fortnight_base(users, now_s)
    return trend.fast / base if base >= TREND_MIN_EVENTS else -1.0


def _fortnight_base(users: Sequence[Member], now_s: int) -> float:
    """The users' usual fortnight: :func:`_usage`'s base (their 13-week rates' 4 weeks, decayed at
    its pace) halved."""
    return sum(m.base_28d * math.exp(-max(0, now_s - m.last_seen_s) / (90.0 * DAY_S)) for m in users) * TREND_DAYS / 28.0


#: The sustained fall (QA23b F4): the account's 4-week figure (:func:`_usage`, the users' 4-week
#: activity against what their 13-week rates expect) is judged on the 2-week figure's line, by the
#: activity missing: 60% of a fortnight (40% of 14 days of usual activity missing) is as much as 80%
#: of 4 weeks (20% of 28 days), so a 4-week figure ``u`` reads as a 2-week ``1 - 2 (1 - u)``
#: (:func:`sustained_line`). Why: a fade spread over 6-8 weeks (an API moved to a competitor while
#: the people still log in) keeps the 2-week figure over 60% until days before the cancellation (an
#: exponential average lags a steady fall by its time constant, and the 3-month base falls too),
#: while the activity missing over 4 weeks has piled up. A holiday week is no more judged than
#: before: a week with no activity at all reads 84% of 4 weeks against the base decayed with it
#: (part 0.29), 66% of 2 weeks (0.36). It speaks once the 2-week figure is judged (:func:`trend_usage`) and the usual
#: fortnight holds ``SUSTAINED_MIN_EVENTS`` (40 events): the 4-week figure's relative deviation at a
#: steady rate, ``sqrt(1 / (2 m))`` for a 4-week mean ``m`` (``TREND_MIN_EVENTS``' reasoning), doubled
#: on the 2-week scale, is then at most a sixth, as the 2-week figure's at 20 events a fortnight.
SUSTAINED_MIN_EVENTS: Final[float] = 2 * TREND_MIN_EVENTS


def sustained_line(usage_4w: float) -> float:
    """The 4-week figure on the 2-week figure's scale, the activity missing counted alike (constants
    above): ``1 - 2 (1 - usage_4w)``, at least 0; -1.0 (not judged) stays -1.0.

    >>> [sustained_line(u) for u in (-1.0, 1.0, 0.9, 0.8, 0.75, 0.2)]
    [-1.0, 1.0, 0.8, 0.6, 0.5, 0.0]
    """
    return -1.0 if usage_4w < 0.0 else max(0.0, round(1.0 - 2.0 * (1.0 - usage_4w), 9))


def sustained_usage(trend: Trend | None, users: Sequence[Member], now_s: int) -> float:
    """The account's 4-week figure (:func:`_usage`) when the sustained fall is judged (a 2-week
    figure judged, :func:`trend_usage`, and a usual fortnight of ``SUSTAINED_MIN_EVENTS``), else -1.0."""
    if trend_usage(trend, users, now_s) < 0.0 or _fortnight_base(users, now_s) < SUSTAINED_MIN_EVENTS:
        return -1.0
    return _usage(users, now_s)


def trend_usage_at(kept: Trend | None, members: Sequence[Member], billing: Sequence[int], now_s: int) -> float:
    """The figure :func:`trend_risk` reads at ``now_s`` from the kept trend, over :func:`rollup`'s
    users (-1.0: not judged): the lower of the 2-week figure (:func:`trend_usage`) and the 4-week
    one on its scale (:func:`sustained_line`). Between two copies it only falls (both figures decay
    faster than their base), but where a member leaves the 90-day window. An account with a monthly
    burst rhythm (QA23b F3): its last batch against the one before (``models.monthly.burst_usage``),
    which moves only at a window's end (``models.monthly.Cycle.end_s``)."""
    if not members or kept is None:
        return -1.0
    trend = kept.at(now_s)
    cycle = trend.cycle()
    if cycle is not None:
        return trend.batch_usage(cycle, now_s)
    used = _used_by(members, _users(members, billing, now_s), now_s)  # a machine user's volume is the account's use
    return _lower(trend_usage(trend, used, now_s), sustained_line(sustained_usage(trend, used, now_s)))


def _lower(a: float, b: float) -> float:
    """The lower of two figures of which -1.0 is "not judged"."""
    judged = [x for x in (a, b) if x >= 0.0]
    return min(judged) if judged else -1.0


#: The trend reason names the account's most active user when he has not been seen for a week or
#: more (and before he is silent, :func:`silent_after_s`, when the silent reason names him instead):
#: the heaviest user's own fall, before he is silent, is the first question of an account manager
#: (QA15 F4: a third of an account's activity gone with one user counted nowhere for 2 weeks).
#: Sooner for a user who comes often: past ``_AWAY_INTERVALS`` of his own usual intervals between
#: active days, at least ``_AWAY_MIN_S`` (QA22b F6: a guild's leader, a daily player with 39% of its
#: activity, had been gone 6 days when the usage trend opened its alert, which did not name him).
_AWAY_S: Final[int] = 7 * DAY_S
_AWAY_MIN_S: Final[int] = 3 * DAY_S
_AWAY_INTERVALS: Final[float] = 3.0  # the lifecycle's dormancy factor: 3 usual intervals is no chance gap
#: ... and only when he carries at least this share of the users' activity (his share is said): in a
#: 23-member guild "the most active user" is a tie in all but name (QA22b: 7% of its activity)
_AWAY_SHARE: Final[float] = 0.25


def _away_after_s(m: Member) -> int:
    """When the trend reason names ``m`` away (:func:`_top_user_away`): ``_AWAY_INTERVALS`` of his own
    usual intervals, between ``_AWAY_MIN_S`` and ``_AWAY_S``; ``_AWAY_S`` without a rhythm.

    >>> [_away_after_s(Member(1, 0, 1, 0.0, 1.0, 1.0, "", g)) / DAY_S for g in (0.0, 0.5, 1.5, 4.0)]
    [7.0, 3.0, 4.5, 7.0]
    """
    if not m.gap_days > 0.0:
        return _AWAY_S
    return min(_AWAY_S, max(_AWAY_MIN_S, int(_AWAY_INTERVALS * m.gap_days * DAY_S)))


def _top_user_away(users: Sequence[Member], now_s: int) -> str:
    """"its most active user u00 (75% of its activity) last seen 9 days ago" (the largest
    :func:`_weight`, no other as large, at least ``_AWAY_SHARE`` of the users' activity, not seen
    for :func:`_away_after_s` and not yet silent: :func:`silent_after_s`), or "".

    >>> ms = [Member(1, 0, 1, 0.0, 30.0, 30.0, "ann"), Member(2, 10 * DAY_S, 1, 0.0, 10.0, 10.0, "bob")]
    >>> _top_user_away(ms, 9 * DAY_S), _top_user_away(ms, 6 * DAY_S), _top_user_away(ms, 15 * DAY_S), _top_user_away(ms, 14 * DAY_S - 1)
    ('its most active user ann (75% of its activity) last seen 9 days ago', '', '', 'its most active user ann (75% of its activity) last seen 13 days ago')
    >>> daily = [Member(1, 0, 1, 0.0, 30.0, 30.0, "ann", 1.0), *ms[1:]]
    >>> _top_user_away(daily, 4 * DAY_S), _top_user_away([*ms, *(Member(k, 0, 1, 0.0, 29.0, 29.0) for k in (3, 4, 5))], 9 * DAY_S)
    ('its most active user ann (75% of its activity) last seen 4 days ago', '')
    """
    if len(users) < 2:
        return ""
    top = max(users, key=_weight)
    total = sum(_weight(m) for m in users)
    if sum(1 for m in users if _weight(m) >= _weight(top)) > 1 or not _away_after_s(top) <= now_s - top.last_seen_s < silent_after_s(top):
        return ""
    if not total > 0 or _weight(top) < _AWAY_SHARE * total:
        return ""
    who = f" {top.user_id}" if top.user_id else ""
    # whole days: 13.6 is not yet 14
    return f"its most active user{who} ({_pct(_weight(top) / total)} of its activity) last seen {_ago((now_s - top.last_seen_s) // DAY_S)}"


def _machine_away(used: Sequence[Member], now_s: int) -> str:
    """The trend reason's word on a machine user's silence (QA23b F2: its silence is the account's
    usage falling, not a user leaving): "its machine user svc_1 (82% of its activity) last seen 9
    days ago", the heaviest machine user of ``used`` (:func:`_used_by`) not seen for
    :func:`_away_after_s`, its share of all their activity; "" when none is.

    >>> ms = [Member(1, 0, 1, 0.0, 80.0, 80.0, "svc_1", machine=True), Member(2, 9 * DAY_S, 1, 0.0, 20.0, 20.0, "ann")]
    >>> _machine_away(ms, 9 * DAY_S), _machine_away(ms, 6 * DAY_S)
    ('its machine user svc_1 (80% of its activity) last seen 9 days ago', '')
    """
    total = sum(_weight(m) for m in used)
    away = [m for m in used if m.machine and now_s - m.last_seen_s >= _away_after_s(m)]
    if not away or not total > 0:
        return ""
    top = max(away, key=_weight)
    who = f" {top.user_id}" if top.user_id else ""
    return f"its machine user{who} ({_pct(_weight(top) / total)} of its activity) last seen {_ago((now_s - top.last_seen_s) // DAY_S)}"


def _batch_text(cycle: Cycle, usage: float) -> str:
    """The trend reason of an account with a monthly burst rhythm (QA23b F3): its last batch did not
    come, or fell against the one before.

    >>> _batch_text(Cycle(4), 0.0), _batch_text(Cycle(4), 0.55)
    ("no use in its last monthly batch (the 21st to the month's end)", "usage in its last monthly batch (the 21st to the month's end) down 45% against the one before")
    """
    if usage <= 0.0:
        return f"no use in its last monthly batch ({cycle.text()})"
    return f"usage in its last monthly batch ({cycle.text()}) down {round(100 * (1 - usage))}% against the one before"


def trend_risk(usage_2w: float) -> float:
    """The trend rule's part of the risk (constants above): 0 at or above ``TREND_FROM`` (and when
    not judged, -1), 0.5 at or under ``TREND_AT_RISK``, linear between; never rising with usage.

    >>> [trend_risk(u) for u in (-1.0, 1.0, 0.8, 0.7, 0.6, 0.1)]
    [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]
    """
    if usage_2w < 0.0 or usage_2w >= TREND_FROM:
        return 0.0
    return round(ACCOUNT_AT_RISK * min(1.0, (TREND_FROM - usage_2w) / (TREND_FROM - TREND_AT_RISK)), 4)


def silence_risk(users: int, silent: int, users_w: float = 0.0, silent_w: float = 0.0) -> float:
    """The users' part of the account's risk, ``r_u = 0.8 * silent share`` (0 without users), the
    share the larger of the silent users' share of the seats (``silent / users``) and their share
    of the account's activity (``silent_w / users_w``, each user weighed by :func:`_weight`). Why
    the activity (QA11 F3): seats counted alike, the champion of an 11-seat account, its heaviest
    user and the one its billing came from, added 0.07 when he left; the account lost a third of
    its use. Why the larger: a silent seat is still a seat not used (the rule before), and more
    silence, by seats or by activity, never lowers the risk.

    >>> silence_risk(4, 1), silence_risk(0, 0), silence_risk(4, 1, 10.0, 5.0), silence_risk(4, 1, 10.0, 1.0)
    (0.2, 0.0, 0.4, 0.2)
    """
    return 0.8 * silent_share(users, silent, users_w, silent_w)


def silent_share(users: int, silent: int, users_w: float = 0.0, silent_w: float = 0.0) -> float:
    """The account's silent share (:func:`silence_risk`): the larger of seats and activity."""
    return max(silent / users if users else 0.0, silent_w / users_w if users_w > 0 else 0.0)


def _weight(m: Member) -> float:
    """A user's weight in the account's activity: its usual 4-week activity (``base_28d``, what its
    13-week rate expects, at its last event), or its 4-week activity when it has no base. Read at
    the last event, so a user who left keeps the weight he had while he used the product."""
    return m.base_28d if m.base_28d > 0 else max(0.0, m.act_28d)


def _users(members: Sequence[Member], billing: Sequence[int], now_s: int) -> list[Member]:
    """The account's users at ``now_s`` (module docstring): members seen in the last 90 days, and
    with them any member whose statements key a subscription in force (``billing``,
    ``AccountView.billing_keys``) however long silent (QA11 F3: the champion who paid left the
    count after 90 days, though his statements still came); nobody seen in 90 days: every member
    ever seen. Machine users (``Member.machine``) are never users: their events are usage only
    (:func:`_used_by`)."""
    members = [m for m in members if not m.machine]
    window = [m for m in members if now_s - m.last_seen_s < _USERS_WINDOW_S]
    if not window:
        return [m for m in members if m.last_seen_s]
    return window + [m for m in members if m.last_seen_s and now_s - m.last_seen_s >= _USERS_WINDOW_S and m.key in billing]


def _used_by(members: Sequence[Member], users: Sequence[Member], now_s: int) -> list[Member]:
    """Whose activity is the account's usage (:func:`_usage`, the 2-week trend's base): its users
    and the machine users seen in the last 90 days (QA23b F2: a platform's API traffic is its use,
    its fall the migration signal, though the key is nobody to call).

    >>> ms = [Member(1, 0, 1, 0.0, 1.0, 1.0, "svc", machine=True), Member(2, 0, 1, 0.0, 1.0, 1.0, "ann")]
    >>> [m.user_id for m in _used_by(ms, _users(ms, (), 0), 0)], len(_used_by(ms, [], 91 * DAY_S))
    (['ann', 'svc'], 0)
    """
    return [*users, *(m for m in members if m.machine and now_s - m.last_seen_s < _USERS_WINDOW_S)]


def _running(used: Sequence[Member], now_s: int, cycle: Cycle | None = None) -> int:
    """How many machine users of ``used`` (:func:`_used_by`) are not silent (:func:`silent_member`,
    by their own rhythm): each is one seat in use in the seat share of the silence
    (:func:`silence_risk`), never a user of the counts and reasons. Why (QA23b F2, measured on its
    file): with the key left out of the seats, 42 of 241 healthy developer accounts were at risk on
    "2 of 3 users silent for 2 weeks" (light developers, usual 4-24 days between logins, while the
    API ran), 2 with the key counted as a user; a running key is the account in use, a silent one
    is its usage falling (the 2-week trend), not a seat.

    >>> ms = [Member(1, 0, 1, 0.0, 1.0, 1.0, "svc", machine=True), Member(2, 0, 1, 0.0, 1.0, 1.0, "ann")]
    >>> _running(ms, DAY_S), _running(ms, 14 * DAY_S)
    (1, 0)
    """
    return sum(1 for m in used if m.machine and not silent_member(m, now_s, cycle))


def counted_users(members: Sequence[Member], view: AccountView | None, now_s: int) -> list[Member]:
    """The members :func:`rollup` counts as the account's users at ``now_s`` (:func:`_users`): the
    console's table lists them apart from the members left out, so its rows and the count agree (QA18 F8)."""
    return _users(members, view.billing_keys if view is not None else (), now_s)


def silent_after_s(m: Member, cycle: Cycle | None = None) -> int:
    """The silence (seconds) after which ``m`` is a silent user of its account: the larger of 14
    days and ``SILENT_INTERVALS`` (2) of its own usual intervals between active days (``gap_days``,
    models.signals.visit_gap_days, as the member copy carries it), and at most ``SILENT_CAP_S`` (30
    days); 14 days for a member whose copy carries no rhythm (a record of the format before).

    Why (QA18 F4): at a fixed 14 days, 34 of QA18's 150 stable company accounts got a false
    ``account_at_risk`` ("2 of 3 users silent for 2 weeks"), 32 of the 48 alerts on accounts whose
    light users come every week or two: for them two quiet weeks are one or two usual intervals,
    not a silence. Their gaps are near geometric, so a silence of k usual intervals happens by
    chance once in about e^k intervals: 2 intervals (the lifecycle's overdue rule, the user side's
    own "declining") is where the user side stops calling a silence usual, and the account uses
    the same line. A daily user keeps the 14 days (2 intervals are 2 days: the floor is the rule
    before, far past its rhythm). Why a cap of 30 days: a member whose rhythm is a month would be
    silent only after two months, later than the lifecycle calls even a daily user churned (45
    days) and after two renewals of a monthly plan; past 30 days without a visit a B2B seat is
    not in use for anything a month-long contract measures (30 days is also the model's horizon,
    the churn risk's "within 30 days"). Under the gone line (:func:`gone_member`, a week later).
    Measured on QA18's file (docs/REVENUE.md, "A member's own rhythm"): false alerts on its stable
    accounts 42 -> 26, 2 of 152 cancellations no longer alerted; 3 intervals (the lifecycle's
    dormancy factor) gave 18 but lost 4.

    An account with a monthly burst rhythm (``cycle``, ``models.monthly``; QA23b F3): not before its
    member has missed a whole window of it, the end of the first window after its last visit (its
    2 days of grace included): a month-end batch user seen on the 29th is silent on the 3rd of the
    month after next, not mid-month.

    >>> [silent_after_s(Member(1, 0, 1, 0.0, 1.0, 1.0, "", g)) // DAY_S for g in (0.0, 1.4, 7.0, 10.0, 20.0)]
    [14, 14, 14, 20, 30]
    """
    own = silent_line_s(m.gap_days)  # the formula (models.signals), shared with the product's calendar
    return own if cycle is None else max(own, cycle.due_s(m.last_seen_s) - m.last_seen_s)


def silent_member(m: Member, now_s: int, cycle: Cycle | None = None) -> bool:
    """Whether ``m`` is silent for its account at ``now_s`` (:func:`silent_after_s`).

    >>> ten = Member(1, 0, 1, 0.0, 1.0, 1.0, "", 10.0)
    >>> [silent_member(ten, d * DAY_S) for d in (15, 19, 20, 40)], silent_member(Member(1, 0, 1, 0.0, 1.0, 1.0), 14 * DAY_S)
    ([False, False, True, True], True)
    """
    return now_s - m.last_seen_s >= silent_after_s(m, cycle)


def gone_member(m: Member, now_s: int, sole: bool = False, cycle: Cycle | None = None) -> bool:
    """Whether a user of the account is gone, no longer reachable (QA16 F11): its last copy's
    lifecycle stage is lapsed (``models.lifecycle.LAPSED``: an explicit cancellation makes a user
    churned at once, and the copy of that event says so), or it has been silent a week past the
    silence that makes it a silent user (:func:`silent_after_s`): ``LAPSED_S``, 21 days, for a
    member silent after 14 days; a week after its own silence line for a light member (QA18 F4), so
    that the account is at risk before its users are all gone, as it is for frequent users (all
    gone opens no alert), and no later than its own lifecycle calls it dormant (3 intervals: 2
    intervals and a week is less from a 7-day interval on).
    A user back later sends a new copy (stage ``reactivated``): reachable again. ``sole``: the
    account's only member (:func:`sole_member`), gone by its own stage alone: its lifecycle calls it
    dormant by its own rhythm (3 usual intervals, at least 21 days), which the 21-day floor is not
    (QA17 F4: a monthly buyer silent for 3 weeks is not gone).

    >>> churned, active = STAGES.index("churned"), STAGES.index("active")
    >>> [gone_member(Member(1, 0, st, 0.0, 1.0, 1.0), d * DAY_S) for st, d in ((churned, 0), (active, 20), (active, 21))]
    [True, False, True]
    >>> [gone_member(Member(1, 0, active, 0.0, 1.0, 1.0, "", 10.0), d * DAY_S) for d in (21, 26, 27)]
    [False, False, True]
    """
    return m.stage in _LAPSED_STAGES or (not sole and now_s - m.last_seen_s >= silent_after_s(m, cycle) + _GONE_AFTER_SILENT_S)


def sole_member(members: Sequence[Member], account: str) -> Member | None:
    """The member of an account that is its one user, or None: the account's only member ever seen,
    whose user id is the account's id (a shop's customer sent with ``account_id`` = the user id,
    the README's way to a list per account manager; a family plan keyed by its payer before anyone joins).

    Such an account follows its user's own judgement (QA17 F4): the user is the account, and its own
    lifecycle and at-risk alert read its rhythm (a re-order overdue, silent for 3 of its usual
    intervals), which the account's fixed 2 weeks of silence and 21 days to gone cannot (a copy
    carries no rhythm). Other accounts keep the account's rules: several members, whose silence
    together is the account's news, and a company's account with one user so far (its id is not
    the user's): a company's users come one by one, so a rule by the count of members alone judged
    every simulated company account of several users by its first user until the second came
    (``simulate --accounts 300``: 62 of 126 such accounts' alerts changed).

    >>> m = Member(member_key("c7"), 5, 1, 0.0, 1.0, 1.0, "c7")
    >>> sole_member([m], "c7") is m, sole_member([m], "acme"), sole_member([m, Member(1, 5, 1, 0.0, 1.0, 1.0)], "c7")
    (True, None, None)
    """
    if len(members) != 1 or not members[0].last_seen_s or not account:
        return None
    return members[0] if members[0].key == member_key(account) else None


def sole_risk(m: Member) -> float:
    """The users' part of the risk of an account that is its one user (:func:`sole_member`): 0 while its
    user has no at-risk alert open (``Member.risk`` 0), else that alert's risk, at least the
    account's at-risk line, so the account is at risk exactly while its user is and ranks as the
    user's risk does. Said "at least the line" because a user's alert opens at its model's own
    line (a trained ``risk_enter``, 0.26 on QA17's shop), below the account's 0.5.

    >>> [sole_risk(Member(1, 5, 1, r, 1.0, 1.0)) for r in (0.0, 0.3, 0.8)]
    [0.0, 0.5, 0.8]
    """
    return max(ACCOUNT_AT_RISK, m.risk) if m.risk > 0 else 0.0


def _sole_reasons(m: Member, said: Sequence[str]) -> list[str]:
    """The reasons of an account that is its one user, at risk: the user's own reasons when the
    caller read them (``said``: the owner's book reads the user's scores, and the call is about
    them: "usual re-order every 21 days, none for 40 days"; the stream's, the alert's first reason
    when a copy made as it opened in silence brought it, QA21 F2), then that its own alert is open,
    named, with its risk at its opening.

    >>> _sole_reasons(Member(1, 5, 1, 0.62, 1.0, 1.0, "c7"), ("usual re-order every 21 days, none for 40 days",))
    ['usual re-order every 21 days, none for 40 days', 'the only user c7 at risk by its own alert (risk 62%)']
    """
    who = f" {m.user_id}" if m.user_id else ""
    return [*said, f"the only user{who} at risk by its own alert (risk {_pct(m.risk)})"]


def _gone_text(users: Sequence[Member], now_s: int) -> str:
    """The reason of an account whose every user is gone (:func:`gone_member`): how they left, the
    cancellations with when the last of them was seen, the silence as the silent reason says it.

    >>> c, a = STAGES.index("churned"), STAGES.index("active")
    >>> _gone_text([Member(1, 0, c, 0.0, 1.0, 1.0)], 3 * DAY_S), _gone_text([Member(1, 0, a, 0.0, 1.0, 1.0)], 100 * DAY_S)
    ('the only user cancelled, last seen 3 days ago', 'the only user silent for 14 weeks')
    >>> _gone_text([Member(1, 0, c, 0.0, 1.0, 1.0), Member(2, 2 * DAY_S, c, 0.0, 1.0, 1.0)], 4 * DAY_S)
    'both users cancelled, the last seen 2 days ago'
    >>> _gone_text([Member(1, 0, c, 0.0, 1.0, 1.0), Member(2, 2 * DAY_S, a, 0.0, 1.0, 1.0), Member(3, 0, a, 0.0, 1.0, 1.0)], 30 * DAY_S)
    'all 3 users gone: 1 cancelled, 2 silent for 4 weeks'
    """
    cancelled = [m for m in users if m.stage in _LAPSED_STAGES]
    quiet = [m for m in users if m.stage not in _LAPSED_STAGES]
    weeks = _counted("week", min((now_s - m.last_seen_s for m in quiet), default=0) // (7 * DAY_S))
    if not quiet:
        # when each was last seen (the copy keeps no time of the cancellation itself)
        how = f"cancelled, {'the last' if len(users) > 1 else 'last'} seen {_ago((now_s - max(m.last_seen_s for m in users)) // DAY_S)}"
    else:
        how = f"silent for {weeks}" if not cancelled else f"gone: {len(cancelled)} cancelled, {len(quiet)} silent for {weeks}"
    return f"{_share(len(users), len(users))} {how}"


def _sole_gone_text(m: Member, now_s: int) -> str:
    """The reason of an account that is its one user, whose user is gone by its own lifecycle: a
    cancellation seen within the 21 days no silence makes anyone lapsed as :func:`_gone_text` says
    it, else the user's stage and silence (dormant or churned by its own rhythm, as the owner's
    book reads it now: "cancelled" would be wrong of a one-order customer silent for 45 weeks).

    >>> c, d = STAGES.index("churned"), STAGES.index("dormant")
    >>> _sole_gone_text(Member(1, 0, c, 0.0, 1.0, 1.0), 3 * DAY_S), _sole_gone_text(Member(1, 0, d, 0.0, 1.0, 1.0, "c7"), 30 * DAY_S)
    ('the only user cancelled, last seen 3 days ago', 'the only user c7 dormant, silent for 4 weeks')
    """
    silent_s = now_s - m.last_seen_s
    if STAGES[m.stage] == "churned" and silent_s < LAPSED_S:
        return _gone_text([m], now_s)
    who = f" {m.user_id}" if m.user_id else ""
    return f"the only user{who} {STAGES[m.stage]}, silent for {_counted('week', silent_s // (7 * DAY_S))}"


@dataclass(frozen=True, slots=True)
class SilenceIndex:
    """Members' last-seen times and the times they turn silent (:func:`silent_after_s`), each
    sorted with the running sums of their weights, and the billing members' ``(last seen,
    weight)``: :func:`silence_risk_at` reads the users' part of the risk at any time by bisection,
    as :func:`rollup` computes it, for a caller that needs only that part."""

    seen_s: tuple[int, ...]
    cum_w: tuple[float, ...]  # cum_w[i]: the weights of the first i members of seen_s
    billing: tuple[tuple[int, float], ...]
    sole: float = -1.0  # an account that is its one user: its users' part (:func:`sole_risk`), whatever the time; -1.0 otherwise
    quiet_s: tuple[int, ...] = ()  # when each member turns silent (last seen + silent_after_s), sorted
    quiet_w: tuple[float, ...] = ()  # quiet_w[i]: the weights of the first i members of quiet_s
    machine_s: tuple[int, ...] = ()  # when each machine user turns silent, sorted: a seat in use until then (_running)
    # each key user's (when silent, last seen, keys a subscription): silent and a user, the part is KEY_RISK at least
    key_s: tuple[tuple[int, int, bool], ...] = ()


def silence_index(members: Sequence[Member], billing: Sequence[int], account: str = "", cycle: Cycle | None = None) -> SilenceIndex:
    """The :class:`SilenceIndex` of ``members`` with the subscription keys ``billing`` (``account``:
    the account's id, which tells an account that is its one user, :func:`sole_member`). Machine
    users are left out, as :func:`_users` leaves them, but the times they turn silent (:func:`_running`)."""
    machine = tuple(sorted(m.last_seen_s + silent_after_s(m, cycle) for m in members if m.machine))
    sole = sole_member(members, account)  # of every member, as rollup's
    members = [m for m in members if not m.machine]
    ordered = sorted(members, key=lambda m: m.last_seen_s)
    quiet = sorted((m.last_seen_s + silent_after_s(m, cycle), _weight(m)) for m in members)
    return SilenceIndex(tuple(m.last_seen_s for m in ordered), _sums(_weight(m) for m in ordered),
                        tuple((m.last_seen_s, _weight(m)) for m in members if m.last_seen_s and m.key in billing),
                        sole_risk(sole) if sole else -1.0, tuple(t for t, _ in quiet), _sums(w for _, w in quiet), machine,
                        tuple((m.last_seen_s + silent_after_s(m), m.last_seen_s, m.key in billing) for m in members if m.key_user))


def _sums(weights: Iterable[float]) -> tuple[float, ...]:
    """The running sums of ``weights``, from 0.0 (:class:`SilenceIndex`)."""
    cum = [0.0]
    for w in weights:
        cum.append(cum[-1] + w)
    return tuple(cum)


def silence_risk_at(ix: SilenceIndex, now_s: int) -> float:
    """The users' part of the risk at ``now_s`` (:func:`silence_risk` of :func:`rollup`'s users and
    silent users), by bisection: no pass over the members (but the billing ones, one or two).

    >>> ms = [Member(1, 100, 1, 0.0, 1.0, 1.0), Member(2, 95 * DAY_S, 1, 0.0, 1.0, 1.0), Member(3, 10 * DAY_S, 1, 0.0, 6.0, 6.0)]
    >>> ix = silence_index(ms, (3,))  # member 3 keys the subscription: a user while silent
    >>> [round(silence_risk_at(ix, t * DAY_S), 4) for t in (20, 50, 101, 200)]
    [0.2667, 0.7, 0.6857, 0.8]
    >>> view = AccountView(0, False, "active", (), 0, 0, 0, 0, 0, (), (3,))
    >>> [round(rollup(ms, view, None, 0, t * DAY_S).risk, 4) for t in (20, 50, 101, 200)]
    [0.2667, 0.7, 0.6857, 0.8]
    >>> light = [Member(1, 0, 1, 0.0, 1.0, 1.0, "", 10.0), Member(2, 0, 1, 0.0, 1.0, 1.0), Member(3, 30 * DAY_S, 1, 0.0, 1.0, 1.0)]
    >>> [(round(silence_risk_at(silence_index(light, ()), t * DAY_S), 4), round(rollup(light, None, None, 0, t * DAY_S).risk, 4)) for t in (15, 20)]
    [(0.2667, 0.2667), (0.5333, 0.5333)]
    """
    if ix.sole >= 0.0:  # one member: its own judgement, which time without a copy does not change
        return ix.sole
    seen, cum = ix.seen_s, ix.cum_w
    n = len(seen)
    gone = bisect.bisect_right(seen, now_s - _USERS_WINDOW_S)
    if gone == n:  # nobody in 90 days: every member ever seen, all silent (rollup)
        return silence_risk(1, 1) if n - bisect.bisect_right(seen, 0) else 0.0
    # silent by now (every member out of the window is: silent_after_s is at most 30 days), less those out
    quiet = bisect.bisect_right(ix.quiet_s, now_s)
    users, silent, users_w, silent_w = n - gone, quiet - gone, cum[n] - cum[gone], ix.quiet_w[quiet] - cum[gone]
    users += len(ix.machine_s) - bisect.bisect_right(ix.machine_s, now_s)  # machine users running: seats in use
    for last, w in ix.billing:
        if last <= now_s - _USERS_WINDOW_S:  # a billing member out of the window: a silent user still
            users, silent, users_w, silent_w = users + 1, silent + 1, users_w + w, silent_w + w
    r_u = silence_risk(users, silent, users_w, silent_w)
    # a key user silent, still a user (in the window or keying a subscription): KEY_RISK at least (QA24b F1)
    key = any(at <= now_s and (now_s - last < _USERS_WINDOW_S or pays) for at, last, pays in ix.key_s)
    return max(r_u, KEY_RISK) if key else r_u


def hours_left(ends_ms: int, now_ms: int) -> int:
    """Whole hours from ``now_ms`` to ``ends_ms``, to the nearest hour as a person reads a clock
    (the 72-h reminder, due at exactly 72 h but reviewed some milliseconds later, says 72, not 71);
    the trial reason and the reminder's ``hours_left`` both use it, so they agree.

    >>> hours_left(72 * 3_600_000, 250), hours_left(24 * 3_600_000 + 900, 0), hours_left(5_399_999, 0)
    (72, 24, 1)
    """
    return (ends_ms - now_ms + 1_800_000) // 3_600_000


def trial_action(ends_ms: int, now_ms: int) -> str:
    """The action of the trial rule at ``now_ms`` (event time): "help them convert before the trial
    ends" until ``ends_ms``, then, while the status still says trial (no statement yet says
    converted or cancelled), "help them convert now that the trial has ended". The same boundary
    as the rule's reason (:func:`_trial_end_text`: "ends in ..." while ``ends_ms - now_ms > 0``), so
    the two never disagree. Why (2026-12-03): since review 4 the rule holds past the end, and its
    action still spoke of an end to come beside "trial ended 5 h ago and nobody has used it".

    >>> trial_action(100, 99), trial_action(100, 100)
    ('help them convert before the trial ends', 'help them convert now that the trial has ended')
    """
    return _CONVERT_TRIAL if ends_ms - now_ms > 0 else _CONVERT_ENDED


def _trial_end_text(ends_ms: int, now_ms: int, use: str) -> str:
    """The trial rule's reason: "trial ends in 46 h and nobody has used it yet" before the end,
    "trial ended 5 h ago and nobody has used it" after it while no statement says converted or
    cancelled (``use`` carries a ``{}`` for the "yet" an ended trial drops); past 72 h in days.

    >>> h = 3_600_000
    >>> [_trial_end_text(100 * h, t, "and nobody has used it{}") for t in (54 * h, 100 * h - 1, 100 * h + 1, 105 * h, 172 * h)]
    ['trial ends in 46 h and nobody has used it yet', 'trial ends within the hour and nobody has used it yet', 'trial ended less than an hour ago and nobody has used it', 'trial ended 5 h ago and nobody has used it', 'trial ended 3 days ago and nobody has used it']
    >>> _trial_end_text(100 * h, 105 * h, "with usage at 10% of the usual")
    'trial ended 5 h ago with usage at 10% of the usual'
    """
    left_ms = ends_ms - now_ms
    if left_ms > 0:
        ends = "within the hour" if left_ms < 3_600_000 else f"in {hours_left(left_ms, 0)} h"
        return f"trial ends {ends} {use.format(' yet')}"
    since = hours_left(now_ms, ends_ms)
    ago = ("less than an hour ago" if -left_ms < 3_600_000 else f"{since} h ago" if since < 72
           else _ago(-left_ms / 86_400_000))
    return f"trial ended {ago} {use.format('')}"


def _uncounted_text(members: Sequence[Member], users: Sequence[Member], now_s: int) -> str:
    """The members the count leaves out (:func:`_users`: not seen in 90 days, no billing in force),
    said after the silent users' share: "the only user silent for 8 weeks" of a 2-member account
    whose champion left the window read as if it had one user (QA18 F8). "" when none is left out.

    >>> ms = [Member(1, DAY_S, 1, 0.0, 1.0, 1.0, "ann"), Member(2, 50 * DAY_S, 1, 0.0, 1.0, 1.0)]
    >>> _uncounted_text(ms, ms[1:], 106 * DAY_S), _uncounted_text(ms, ms, 106 * DAY_S)
    ('; ann not seen for 15 weeks (not counted: users are those seen in 90 days)', '')
    >>> _uncounted_text([*ms, Member(3, 2, 1, 0.0, 1.0, 1.0)], ms[1:], 106 * DAY_S)
    '; 2 more members not seen for 15 weeks or more (not counted: users are those seen in 90 days)'
    """
    counted = {m.key for m in users}
    left = [m for m in members if m.last_seen_s and not m.machine and m.key not in counted]
    if not left:
        return ""
    weeks = _counted("week", (now_s - max(m.last_seen_s for m in left)) // (7 * DAY_S))
    if len(left) == 1:
        who = left[0].user_id or "1 more member"
        return f"; {who} not seen for {weeks} (not counted: users are those seen in 90 days)"
    return f"; {len(left)} more members not seen for {weeks} or more (not counted: users are those seen in 90 days)"


def _rhythm_text(silent: Sequence[Member], cycle: Cycle | None = None) -> str:
    """The rhythm the silent users were judged by, said after their share when it made any of them
    silent later than 14 days (:func:`silent_after_s`, QA18 F4): their usual interval between
    active days, whole days, a range when they differ; "" when 14 days judged them all (the text
    as before). So "2 of 3 users silent for 3 weeks" of light users says against what.

    >>> ms = [Member(1, 0, 1, 0.0, 1.0, 1.0, "", g) for g in (8.4, 10.2)]
    >>> _rhythm_text(ms), _rhythm_text(ms[1:]), _rhythm_text([Member(1, 0, 1, 0.0, 1.0, 1.0, "", 1.5), ms[1]])
    (', against a usual 8-10 days between their active days', ', against a usual 10 days between their active days', ', against a usual 2-10 days between their active days')
    >>> _rhythm_text([Member(1, 0, 1, 0.0, 1.0, 1.0, "", 3.0), Member(2, 0, 1, 0.0, 1.0, 1.0)]), _rhythm_text(ms, Cycle(4))
    ('', ", not seen in its last monthly batch (the 21st to the month's end)")

    An account with a monthly burst rhythm (``cycle``, QA23b F3) judged them by its batch: said.
    """
    if cycle is not None:
        return f", not seen in its last monthly batch ({cycle.text()})"
    if all(silent_after_s(m) <= _SILENT_S for m in silent):
        return ""
    gaps = sorted({max(1, round(min(m.gap_days, 999.0))) for m in silent if m.gap_days > 0.0})
    usual = _counted("day", gaps[0]) if len(gaps) == 1 else f"{gaps[0]}-{_counted('day', gaps[-1])}"
    return f", against a usual {usual} between their active days"


def _share(n: int, of: int) -> str:
    """``n`` of the account's ``of`` users in words: "2 of 5 users", "the only user", "both
    users", "all 3 users". Not "1 of 1 active users": the users are the members seen in 90 days,
    and one silent for 12 weeks is no active user (QA 2026-12).

    >>> _share(2, 5), _share(1, 5), _share(1, 1), _share(2, 2), _share(3, 3)
    ('2 of 5 users', '1 of 5 users', 'the only user', 'both users', 'all 3 users')
    """
    if n < of:
        return f"{n} of {_counted('user', of)}"
    return "the only user" if of == 1 else "both users" if of == 2 else f"all {_counted('user', of)}"


def still_used_text(members: Sequence[Member], view: AccountView | None, now_s: int) -> str:
    """What a churned account's users still do, one line for ``accounts show`` and the API
    (``still_used``): "8 of 9 users still active: its subscriptions ended, not its use", the
    counted users (:func:`counted_users`) neither silent (:func:`silent_member`, by their own rhythm)
    nor lapsed by their own lifecycle (a cancellation makes a user churned at once); "" when none is.
    Why (QA22b F7): an account churns when its subscriptions end (docs/REVENUE.md), so a game's guild
    whose one pass holder cancelled read "stage churned, risk 1.00, health 92, 9 users (1 silent),
    action win back" while 8 of its 9 members played on; the semantics stay (the revenue left), the
    page says the use did not.

    >>> c = STAGES.index("churned")
    >>> ms = [Member(1, 99 * DAY_S, 1, 0.0, 9.0, 9.0), Member(2, 99 * DAY_S, c, 0.0, 9.0, 9.0), Member(3, 50 * DAY_S, 1, 0.0, 9.0, 9.0)]
    >>> still_used_text(ms, None, 100 * DAY_S), still_used_text(ms[1:], None, 100 * DAY_S)
    ('1 of 3 users still active: its subscriptions ended, not its use', '')
    """
    users = counted_users(members, view, now_s)
    active = sum(1 for m in users if not silent_member(m, now_s) and m.stage not in _LAPSED_STAGES)
    return f"{_share(active, len(users))} still active: its subscriptions ended, not its use" if active else ""


def recovered_reasons(r: AccountRollup, opened_risk: float = 0.0, converted_days: float = -1.0,
                      fixed_days: float = -1.0, reactivated_days: float = -1.0, plans: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The reasons of an ``account_recovered`` alert: why the account is better, never a reason
    for risk (issue 11: an alert's reasons support it). The roll-up's reasons are the parts of
    its risk (each adds to it), so a recovery listing one that is left over ("1 of 5 users silent
    for 2 weeks" at risk 0.16) contradicts itself; a recovered alert says instead how many users
    were active in the last 2 weeks (none: nothing), then the fall of the risk since the alert
    opened at ``opened_risk`` (0: unknown, not said), in the words of the users' recovered
    alerts (models.reasons). ``converted_days`` (>= 0): an account that never paid started paying
    that many days ago, since the alert opened (a trial converting): "converted to a paid plan
    today", first when today (QA/review 4, 2026-12-03: a converted trial nobody had used yet
    recovered with only "risk down to 0% from 50%", beside health 0 and temperature 100, and no
    word of the conversion). ``fixed_days`` (>= 0): a failed payment was fixed that many days ago,
    since the alert opened (a past-due subscription paying again): "payment fixed today (no longer
    past due)", placed as the conversion (2026-12-03: a past-due account whose payment was fixed
    recovered with only "risk down to 0% from 50%", the one reason it recovered unsaid).
    ``reactivated_days`` (>= 0): an account that had paid before started paying again that many
    days ago, since the alert opened (a churned customer back, or off a free plan), on ``plans`` at
    the roll-up's MRR: "paying again: Pro 99.00 today", placed as the conversion (QA pass 9 L2: a
    reactivation recovered with "risk down to 0% from 100%", not that the customer came back).
    Last, when the account's most active user or the user its billing statements come from is
    silent (the roll-up's named reason), that he still is: "still silent: its most active user
    u07 (3 weeks, 22% of its activity)". Not a reason it recovered, a fact it must not hide: an
    account at risk for a downgrade and its champion's leaving recovered when the downgrade's 30
    days ran out, saying only "4 of 5 users active in the last 2 weeks" (QA11 F3: 11 of the 19
    accounts whose champion left were alerted only through such a rule, and "recovered").

    >>> r = rollup([Member(1, 99 * DAY_S, 1, 0.0, 9.0, 9.0), Member(2, 80 * DAY_S, 1, 0.0, 9.0, 9.0)], None, None, 0, 100 * DAY_S)
    >>> r.reasons, recovered_reasons(r, 0.8)
    (('1 of 2 users silent for 2 weeks',), ('1 of 2 users active in the last 2 weeks', 'risk down to 40% from 80% when the alert opened'))
    >>> recovered_reasons(rollup([], None, None, 0, 100 * DAY_S), 0.5, 0.2)
    ('converted to a paid plan today', 'risk down to 0% from 50% when the alert opened')
    >>> recovered_reasons(r, 0.8, 20.0)[:2]
    ('1 of 2 users active in the last 2 weeks', 'converted to a paid plan 20 days ago')
    >>> champion = [Member(1, 99 * DAY_S, 1, 0.0, 9.0, 9.0), Member(2, 99 * DAY_S, 1, 0.0, 9.0, 9.0), Member(3, 80 * DAY_S, 1, 0.0, 12.0, 12.0, "u00")]
    >>> recovered_reasons(rollup(champion, None, None, 0, 100 * DAY_S), 0.8)
    ('2 of 3 users active in the last 2 weeks', 'risk down to 32% from 80% when the alert opened', 'still silent: its most active user u00 (2 weeks, 40% of its activity)')
    >>> light = [Member(1, 99 * DAY_S, 1, 0.0, 9.0, 9.0), Member(2, 84 * DAY_S, 1, 0.0, 9.0, 9.0, "", 10.0), Member(3, 80 * DAY_S, 1, 0.0, 9.0, 9.0)]
    >>> recovered_reasons(rollup(light, None, None, 0, 100 * DAY_S))
    ('2 of 3 users active within their usual rhythm (1 in the last 2 weeks)',)
    >>> recovered_reasons(r, 0.8, -1.0, 0.1)[:2], recovered_reasons(r, 0.8, -1.0, 3.0)[1]
    (('payment fixed today (no longer past due)', '1 of 2 users active in the last 2 weeks'), 'payment fixed 3 days ago (no longer past due)')
    >>> from dataclasses import replace
    >>> recovered_reasons(replace(r, mrr_cents=9900), 1.0, -1.0, -1.0, 0.0, ("Pro",))[:2]
    ('paying again: Pro 99.00 today', '1 of 2 users active in the last 2 weeks')
    """
    out: list[str] = []
    if r.sole and r.users > r.silent:  # its only user's own alert closed, or none opened (QA17 F4)
        out.append("the only user has no at-risk alert open")
    elif r.users > r.silent and r.within_rhythm:  # some not seen for 2 weeks, not silent by their own rhythm (QA18 F4)
        out.append(f"{_share(r.users - r.silent, r.users)} active within their usual rhythm ({r.users - r.silent - r.within_rhythm} in the last 2 weeks)")
    elif r.users > r.silent:
        out.append(f"{_share(r.users - r.silent, r.users)} active in the last 2 weeks")
    # each first when it is today's news (it closed the alert), else after the users' return
    if converted_days >= 0:
        out.insert(0 if round(converted_days) == 0 else len(out), f"converted to a paid plan {_ago(converted_days)}")
    if fixed_days >= 0:
        out.insert(0 if round(fixed_days) == 0 else len(out), f"payment fixed {_ago(fixed_days)} (no longer past due)")
    if reactivated_days >= 0:
        out.insert(0 if round(reactivated_days) == 0 else len(out), paying_again_text(r.mrr_cents, reactivated_days, plans))
    if opened_risk > r.risk:
        out.append(f"risk down to {100.0 * r.risk:.0f}% from {100.0 * opened_risk:.0f}% when the alert opened")
    if r.still_silent:  # last: what the recovery does not change (QA11 F3 left)
        out.append(r.still_silent)
    return tuple(out)


def paying_again_text(mrr_cents: int, days: float, plans: tuple[str, ...] = ()) -> str:
    """A reactivation as the account's alerts say it: "paying again: Pro 99.00 today" (the plans
    paid for, its MRR now), on the ``account_recovered`` it closes, or first on the
    ``account_at_risk`` a reactivation still at risk re-opens (QA20a F1).

    >>> paying_again_text(5000, 0.0, ("Team",)), paying_again_text(9900, 3.0)
    ('paying again: Team 50.00 today', 'paying again: 99.00 3 days ago')
    """
    return f"paying again: {(_named(plans) + ' ') if _named(plans) else ''}{mrr_cents / 100:.2f} {_ago(days)}"


def trial_rule(view: AccountView | None, usage: float, now_ms: int) -> bool:
    """Does the trial rule hold (module docstring): a trial ending within 3 days, or ended while
    the status still says trial, with usage under half the usual (none: nobody has used it)? The
    roll-up's risk part and reason; the roll-up records that it held (``AccountRollup.trial``),
    which the worker reads to tell whether an at-risk alert opened at a trial reminder's instant
    already says what the reminder would (``account_alerts``, QA6 L7).

    >>> from models.revenue import AccountView
    >>> trial = AccountView(0, False, "trial", (), 0, 10 * 86_400_000, 0, 0)  # ends on day 10
    >>> [trial_rule(trial, u, t * 86_400_000) for u, t in ((0.0, 6), (0.0, 7), (0.6, 7), (0.0, 12))]
    [False, True, False, True]
    """
    return (in_trial(view) and bool(view.trial_ends_ms)  # type: ignore[union-attr]
            and view.trial_ends_ms - now_ms <= 3 * 86_400_000 and usage < 0.5)  # type: ignore[union-attr]


def in_trial(view: AccountView | None) -> bool:
    """Whether the account is judged as a trial: its status says trial, or a trial with a stated
    end is in force beside subscriptions that pay nothing (a free plan: the view's status says
    ``active``, which ranks first). Review 17 F3: paid, a free plan, then a trial of a paid plan
    was a ``prospect``, without the trial rule (reminders with no reason), though :func:`_free_plan`
    and docs/REVENUE.md say it is judged as a trial.

    >>> from models.revenue import AccountView
    >>> [in_trial(AccountView(0, False, s, (), 0, e, 0, 0)) for s, e in (("trial", 0), ("active", 9), ("active", 0))]
    [True, True, False]
    >>> in_trial(AccountView(5000, True, "active", (), 0, 9, 0, 0))
    False
    """
    return view is not None and (view.status == "trial" or (view.status == "active" and not view.customer and bool(view.trial_ends_ms)))


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _named_silent(users: Sequence[Member], silent: Sequence[Member], billing: Sequence[int], users_w: float,
                  now_s: int) -> tuple[str, str, float]:
    """The reason that names a silent user an account manager asks about first (QA11 F3): the
    account's most active user (the largest :func:`_weight` of its users, if no other user's is as
    large) or the user its billing
    statements come from (``billing``), silent (:func:`silent_member`); the heavier if both are;
    "" when neither is silent, or every user is (the count says it: "the only user", "both
    users", "all 4 users": no one user's leaving to tell apart from the rest). Second, the same
    user as an ``account_recovered`` alert says it, "still silent: ..." (:func:`recovered_reasons`:
    a recovery, by a downgrade's 30 days running out or the other users' return, does not hide
    that he is still gone). Third, his weight (:func:`_weight`), which tells the roll-up whether most of
    the silence is his (QA20a F3).

    >>> ms = [Member(1, 0, 1, 0.0, 30.0, 30.0, "ann"), Member(2, 100 * DAY_S, 1, 0.0, 10.0, 10.0, "bob")]
    >>> _named_silent(ms, ms[:1], (), 40.0, 100 * DAY_S)[:2]
    ('its most active user ann silent for 14 weeks (75% of its activity)', 'still silent: its most active user ann (14 weeks, 75% of its activity)')
    >>> _named_silent(ms, ms[:1], (1,), 40.0, 100 * DAY_S)[0]
    'ann, its most active user and the one its billing statements come from, silent for 14 weeks (75% of its activity)'
    >>> _named_silent(ms, ms[1:], (2,), 40.0, 130 * DAY_S)
    ('bob, the user its billing statements come from, silent for 4 weeks (25% of its activity)', 'still silent: bob, the user its billing statements come from (4 weeks, 25% of its activity)', 10.0)
    """
    if len(silent) == len(users):
        return "", "", 0.0
    weights = sorted((_weight(m) for m in users), reverse=True)
    # a tie: no one user is the most active; one user (a silent key user is left out of ``silent``
    # by the caller, so the guard above does not see "every user": QA25b F1) is the most active
    top = weights[0] if len(weights) < 2 or weights[0] > weights[1] else math.inf
    picked = [m for m in silent if m.key in billing or _weight(m) >= top]
    if not picked:
        return "", "", 0.0
    m = max(picked, key=_weight)
    most, pays = _weight(m) >= top, m.key in billing
    weeks = _counted("week", (now_s - m.last_seen_s) // (7 * DAY_S))
    pct = f"{_pct(_weight(m) / users_w)} of its activity" if users_w > 0 else ""
    share = f"({pct})" if pct else ""
    still = f"({weeks}, {pct})" if pct else f"({weeks})"
    who = m.user_id
    if most and not pays:
        subject = f"its most active user{' ' + who if who else ''}"
        return f"{subject} silent for {weeks} {share}".rstrip(), f"still silent: {subject} {still}", _weight(m)
    role = "its most active user and the one its billing statements come from" if most else "the user its billing statements come from"
    subject = f"{who}, {role}" if who else role
    said = f"{subject}, silent for {weeks} {share}" if who else f"{subject} silent for {weeks} {share}"
    return said.rstrip(), f"still silent: {subject} {still}", _weight(m)


def _key_text(keys: Sequence[Member], users_w: float, now_s: int) -> str:
    """The reason of a silent key user (QA24b F1), the heaviest first: "its key user t1 silent for 3
    weeks (31% of its activity), past their usual 2 days between active days" (the rhythm when the
    copy carries one), several "its key users t1, t2 silent for 2 weeks (40% of its activity)".

    >>> t1, t2 = Member(1, 0, 1, 0.0, 6.0, 6.0, "t1", 1.6), Member(2, 7 * DAY_S, 1, 0.0, 2.0, 2.0, "t2")
    >>> _key_text([t1], 20.0, 21 * DAY_S), _key_text([t2, t1], 20.0, 21 * DAY_S)
    ('its key user t1 silent for 3 weeks (30% of its activity), past their usual 2 days between active days', 'its key users t1, t2 silent for 2 weeks (40% of its activity)')
    """
    ordered = sorted(keys, key=_weight, reverse=True)
    who = ", ".join(m.user_id for m in ordered if m.user_id)
    weeks = _counted("week", min(now_s - m.last_seen_s for m in keys) // (7 * DAY_S))
    pct = f" ({_pct(sum(_weight(m) for m in keys) / users_w)} of its activity)" if users_w > 0 else ""
    gap = ordered[0].gap_days if len(keys) == 1 else 0.0
    usual = f", past their usual {_counted('day', max(1, round(min(gap, 999.0))))} between active days" if gap > 0.0 else ""
    return f"its key user{'s' if len(keys) > 1 else ''}{' ' + who if who else ''} silent for {weeks}{pct}{usual}"


def renewal_save(users: Sequence[Member], view: AccountView | None, sole: bool) -> bool:
    """Whether an account whose every user is gone (:func:`gone_member`) is still a renewal to save
    rather than one to win back, given its renewal falls within the renewal window (QA18 F1): its
    subscription still pays (MRR above 0, active or past due: a cancelled one has nothing left to
    renew) and at least one of its users went quiet rather than cancelling. A B2B contract whose
    users all fell silent renews, or not, on a call the account manager can still make: on QA18's
    project-management SaaS 10 of the 41 live accounts that cancelled within 60 days were lapsed,
    renewal in 2-30 days, on the win-back tab only. Not so (QA16 F11 holds): every user cancelled
    (a family plan whose members all left: the plan ends at its period's end), an account that is
    its one user (its own lifecycle judges it, and its own alerts), a renewal months away.

    >>> c, a = STAGES.index("churned"), STAGES.index("active")
    >>> paid = AccountView(7450, True, "active", ("Team",), 0, 0, 0, 1)
    >>> [renewal_save([Member(1, 0, st, 0.0, 1.0, 1.0)], v, sole) for st, v, sole in
    ...  ((a, paid, False), (c, paid, False), (a, paid, True), (a, AccountView(0, False, "cancelled", (), 0, 0, 0, 1), False))]
    [True, False, False, False]
    """
    paying = view is not None and view.customer and view.mrr_cents > 0 and view.status in ("active", "past_due")
    return paying and not sole and any(m.stage not in _LAPSED_STAGES for m in users)


def _renewal_when(renewal_ms: int, now_ms: int) -> str:
    """"today" or "in 3 days": calendar (UTC) days to the renewal, as the book's renewal column counts
    them; "today" too for one passed in the renewal's grace (its statement not in yet)."""
    days = renewal_ms // 86_400_000 - now_ms // 86_400_000
    return "today" if days <= 0 else f"in {_days(days)}"


def rollup(members: Sequence[Member], view: AccountView | None, down: Downgrade | None, renewal_ms: int,
           now_s: int, now_ms: int = -1, own: bool = False, trend: Trend | None = None, said: Sequence[str] = (),
           account: str = "", rise: PriceRise | None = None, unpaid: bool = False, sustained: bool = True) -> AccountRollup:
    """The account at ``now_s`` (event time); ``renewal_ms`` 0 when unknown; ``now_ms`` the same
    time with its milliseconds when known (-1: ``now_s`` whole), so that a deadline kept in
    milliseconds is counted from the same instant the alerts use. See the module docstring.

    ``own``: the account is its subscriber's own (a user without ``account_id``, whose id keys the
    account and its subscription: :func:`own_account`). Such a user sends no member copy
    (docs/REVENUE.md: their user alerts say it all), so without a member the account knows nothing
    of how its user uses the product: the trial rule, which reads usage, does not hold ("nobody
    has used it yet" is then no fact: QA14 F1, 780 such alerts on 390 B2C trials, every user had
    used the app, 140 converted); the user is judged on its own use by its own scores and alerts
    (a trial user's at-risk alert: action onboard). ``AccountRollup.usage_known`` says so.

    ``account``: the account's id, which tells an account that is its one user (:func:`sole_member`:
    judged by that user's own judgement); ``said``: for such an account whose user is at risk, that
    user's own reasons, as its scores give them at ``now_s`` (the owner's book reads them); () where
    only the member record is known (the stream). ``rise``: the price rise at a renewal of a user's
    own subscription (:class:`PriceRise`): for 30 days a billing part of 0.5, "price rose from 4.99
    to 7.99 at its renewal today (premium)", action "review how the plan fits their use".
    ``unpaid``: the subscription was cancelled while its payment had failed (past due, never
    fixed: an involuntary churn, as the caller kept it): a churn then says "cancelled after failed
    payments", action "win back: fix the payment with the billing contact" (QA22a F5: 122
    involuntary churns of a streaming service read "subscription cancelled", "win back", as a
    customer who chose to leave).
    ``sustained``: False while the 4-week figure holds a declared quiet period (up to 8 weeks after
    its end, ``models.quiet_period.SUSTAINED_AFTER_S``): its fall is the season's, and the
    sustained fall (:func:`sustained_line`) is not judged.

    >>> trial = AccountView(0, False, "trial", (), 0, 10 * 86_400_000, 0, 0, 0, (), (member_key("f1"),))
    >>> [(r.trial, r.risk, r.reasons) for r in (rollup([], trial, None, 0, 9 * DAY_S), rollup([], trial, None, 0, 9 * DAY_S, own=True))]
    [(True, 0.5, ('trial ends in 24 h and nobody has used it yet',)), (False, 0.0, ())]
    """
    # Nobody seen in 90 days: every member ever seen counts, all silent. Before, such an account had
    # no users, so its users' part of the risk fell to 0 and an open at-risk alert "recovered" the
    # day its last member left the window (QA 2026-12: at risk 0.8 on day 60, recovered at 0.0 on
    # day 102, nobody back); an account nobody uses is not a recovered one.
    billing = view.billing_keys if view is not None else ()
    users = _users(members, billing, now_s)
    used = _used_by(members, users, now_s)  # the users and the machine users (QA23b F2): the usage's
    sole = sole_member(members, account)  # the account is its user: its own judgement, not the 2-week silence (QA17 F4)
    # a pause that runs (QA22a F1): its users' silence is the pause, neither at risk nor gone
    pause = pausing(view, now_s * 1000 if now_ms < 0 else now_ms)
    cycle = trend.cycle() if trend is not None else None  # a monthly burst rhythm (QA23b F3, models.monthly)
    silent = [] if pause else [m for m in users if (m.risk > 0 if sole else silent_member(m, now_s, cycle))]
    # the members silent by the 2 weeks (or their own rhythm): what the count and the health say, for
    # an account that is its one user too, whose risk follows its own alert (QA22a F7: "1 user (1
    # silent)", "re-engage the silent users" of a viewer seen the day before, at risk by its own alert)
    quiet = [m for m in users if silent_member(m, now_s, cycle)] if sole and not pause else silent
    usage = _usage(used, now_s)
    users_w, silent_w = sum(_weight(m) for m in users), sum(_weight(m) for m in silent)
    # several members: the account counts silence (a user's own at-risk alert stays the user's)
    seats = len(users) + _running(used, now_s, cycle)  # a machine user running is a seat in use (_running)
    r_u = sole_risk(sole) if sole else silence_risk(seats, len(silent), users_w, silent_w)
    keys_out = [m for m in silent if m.key_user] if not sole else []  # a key user silent: at risk on that alone (QA24b F1)
    r_u = max(r_u, KEY_RISK) if keys_out else r_u
    share_silent = silent_share(seats, len(quiet), users_w, sum(_weight(m) for m in quiet))
    reasons: list[tuple[float, str, str]] = []  # (weight, text, action)
    still_silent = ""
    # Every user gone (QA16 F11): nobody left to save, the win-back side's. The users' part is 0.8, as
    # with every user silent, said as how they left ("all 4 users cancelled, ..."). Not a trial: the
    # trial rule judges it (a trial started says someone is there, whom the statements do not name)
    # A machine user still running (not gone) keeps it at risk, not lapsed: the account still uses the
    # product, its people left (QA23b F2: acc332's only developer gone, its API key running)
    lapsed = (bool(users) and not in_trial(view) and not pause and all(gone_member(m, now_s, sole is not None, cycle) for m in users)
              and all(gone_member(m, now_s, False, cycle) for m in used if m.machine))
    now_ms = now_s * 1000 if now_ms < 0 else now_ms
    # near: within a quarter of the billing period, at least 30 days (QA11 F5: an annual plan's 91)
    near_ms = view.renewal_window_ms(view.renews_at(now_ms)) if view is not None else RENEWAL_WINDOW_MIN_MS
    near = bool(renewal_ms) and -RENEWAL_GRACE_MS <= renewal_ms - now_ms <= near_ms  # passed in its grace: due today (QA23b F6)
    # every user gone, but a silent B2B contract still paid and renewing soon: a renewal to save (QA18 F1)
    save = lapsed and near and renewal_save(users, view, sole is not None)
    if lapsed:
        r_u, share_silent = silence_risk(1, 1), 1.0
    if save:
        reasons.append((1.0, f"renewal {_renewal_when(renewal_ms, now_ms)}, {_gone_text(users, now_s)}{_uncounted_text(members, users, now_s)}",
                        _RENEWAL_CALL))
        lapsed = False  # the save list's (stage at_risk), not the win-back list's
    elif lapsed:
        reasons.append((1.0, _sole_gone_text(sole, now_s) if sole else _gone_text(users, now_s) + _uncounted_text(members, users, now_s),
                        _WIN_BACK))
    elif silent and sole:  # at risk by its own alert: silent, or still there while its use falls
        reasons += [(r_u, text, _RE_ENGAGE if quiet else _FALLING_USE) for text in _sole_reasons(sole, said)]
    elif silent:
        # a key user silent is named as such (_key_text), first: the others as before
        named, still_silent, named_w = _named_silent(users, [m for m in silent if not m.key_user] if keys_out else silent,
                                                     billing, users_w, now_s)
        weeks = min((now_s - m.last_seen_s) // (7 * DAY_S) for m in silent)
        use = f" ({_pct(silent_w / users_w)} of its activity)" if users_w > 0 and silent_w / users_w > len(silent) / len(users) else ""
        reasons.append((r_u, f"{_share(len(silent), len(users))} silent for {_counted('week', weeks)}{use}"
                        f"{_rhythm_text(silent, cycle)}{_uncounted_text(members, users, now_s)}", _RE_ENGAGE))
        if named:  # the user the account manager knows by name (QA11 F3): first while most of the silence is his
            reasons.insert(0 if 2 * named_w >= silent_w else len(reasons), (r_u, named, _RE_ENGAGE))
        if keys_out:
            reasons.insert(0, (r_u, _key_text(keys_out, users_w, now_s), _RE_ENGAGE))
    r_b = 0.4 if save else 0.0  # the renewal's part, as the renewal rule's, said in the reason above
    mrr = view.mrr_cents if view is not None else 0
    if view is not None and view.past_due_since_ms:
        r_b = max(r_b, 0.5)
        days = max(0, now_ms - view.past_due_since_ms) // 86_400_000  # a statement a little ahead of now: "today"
        reasons.append((0.5, f"payment failed {_ago(days)} (past due)", _FIX_PAYMENT))
    if down is not None and 0 <= now_ms - down.ts_ms < 30 * 86_400_000 and not bill_fall(down):  # a smaller bill: no signal (QA23b F1)
        r_d = downgrade_risk(down)
        r_b = max(r_b, r_d)
        days = (now_ms - down.ts_ms) // 86_400_000
        cut = f" (MRR cut by {_pct(_cut(down))})" if r_d > _DOWNGRADE_RISK and down.plans_before != down.plans_after else ""
        cut = f" ({', '.join(down.cancelled)})" if members_cancelled(down)[1] else cut  # whose: "1 of 2 ... cancelled today (p00123)"
        reasons.append((r_d, f"{_downgrade_text(down)} {_ago(days)}{cut}", _REVIEW_PLAN))
    if rise is not None and 0 <= now_ms - rise.ts_ms < RISE_COUNTS_MS:  # a user's own plan's price rose (QA19 F7)
        r_b = max(r_b, _RISE_RISK)
        reasons.append((_RISE_RISK, rise.text(now_ms), _REVIEW_PLAN))
    free = _free_plan(view)
    churned = view is not None and view.first_paid_ms > 0 and not view.customer and (view.status in ("cancelled", "none") or free)
    # a fall, not "not yet"; a gone account renews nothing (QA22a F8: a free plan's period end read
    # "renewal in 6 days while usage fell 70%" beside "moved to the free plan")
    # a monthly burst rhythm's use is its last batch against the one before (QA23b F3: "renewal in 15
    # days while usage fell 27%" between two month-end batches), not judged before two were seen
    batch = trend.batch_usage(cycle, now_s) if trend is not None and cycle is not None else -1.0
    fall, fall_window = (usage, _USAGE_WINDOW) if cycle is None else (batch if batch >= 0.0 else 1.0, _BATCH_WINDOW)
    if near and fall <= 0.75 and used and not save and not churned and not pause:
        r_b = max(r_b, 0.4)
        # the window said (QA20a F2): beside the 2-week trend's "down 72%", a bare "usage fell 43%" read as a contradiction
        reasons.append((0.4, f"renewal {_renewal_when(renewal_ms, now_ms)} while usage fell {round(100 * (1 - fall))}%{fall_window}",
                        _RENEWAL_CALL))
    # the account's last 2 weeks against its 3-month rate, at any time (QA15 F4: a fade was seen
    # only by the renewal rule, days before the cancel notice); ``trend`` at now (:meth:`Trend.at`)
    # and its last 4 weeks on the same line, the activity missing counted alike (QA23b F4: a fade over
    # 6-8 weeks read 2-week figures over 60% until days before the cancellation): the lower counts
    # (a monthly burst rhythm: its last batch against the one before, in their place; QA23b F3)
    usage_2w = batch if cycle is not None else trend_usage(trend, used, now_s)
    usage_4w = sustained_usage(trend, used, now_s) if sustained and cycle is None else -1.0
    longer = trend_risk(sustained_line(usage_4w)) > trend_risk(usage_2w)  # said when it adds: else the 2-week figure, as before
    r_t = 0.0 if pause else trend_risk(_lower(usage_2w, sustained_line(usage_4w)))
    if r_t > 0.0:
        r_b = max(r_b, r_t)
        away = _top_user_away(users, now_s) or _machine_away(used, now_s)
        active = len(users) - len(quiet)  # the people still there: a fall of use, not of users (a migration)
        fell = (f"usage over the last 4 weeks down {round(100 * (1 - usage_4w))}% against its 3-month rate"
                + (f", {_share(active, len(users))} still active" if active else "") if longer else
                _batch_text(cycle, usage_2w) if cycle is not None else
                f"usage over the last 2 weeks down {round(100 * (1 - usage_2w))}% against its 3-month rate (2-week decayed)")
        reasons.append((r_t, fell + (f"; {away}" if away else ""), _FALLING_USE))
    # No lower bound: a trial whose end has passed while its status still says trial (the billing
    # system has not said converted or cancelled yet) keeps the rule (review 4, 2026-12-03: with
    # ``0 <=`` the risk fell to 0 at the end and the open alert said account_recovered, "risk down
    # to 0% from 50%", of a trial nobody used; its cancellation hours later then sent nothing).
    blind = own and not members  # a user's own account without a member copy: its use is not known here
    trial = trial_rule(view, usage, now_ms) and not blind
    if trial:
        r_b = max(r_b, 0.5)
        use = "with usage at {}% of the usual".format(round(100 * usage)) if used else "and nobody has used it{}"
        ends = view.trial_ends_ms  # type: ignore[union-attr]
        reasons.append((0.5, _trial_end_text(ends, now_ms, use), trial_action(ends, now_ms)))
    # Cancelled without ever paying (a trial, or a free plan: a cancelled statement replaces the
    # trial's, so whether there was one is not known here): gone like a churned account (its silent users are
    # nobody to save: QA 2026-12-02 found 21 of an owner's 39 "at risk" accounts were such trials,
    # alerted weeks after they ended), but no logo churn: it never was a customer.
    lost = view is not None and view.first_paid_ms == 0 and not view.customer and view.status == "cancelled"
    risk = 1.0 if churned or lost else 1 - (1 - r_u) * (1 - r_b)
    if churned:
        named = _named(view.plans) if free else ""  # type: ignore[union-attr]
        gone = _free_plan_text(named) if free else "cancelled after failed payments" if unpaid else "subscription cancelled"
        reasons.insert(0, (1.0, gone, _WIN_BACK_PAYMENT if unpaid and not free else _churn_action(own, blind, sole is not None and not lapsed)))
    elif lost:
        reasons.insert(0, (1.0, "cancelled without paying", _WIN_BACK))
    health = round(100 * (0.5 * (1 - share_silent) + 0.5 * min(1.0, usage))) if used else 0  # the risk's silent share
    stage = ("churned" if churned else "trial_lost" if lost else "lapsed" if lapsed else "at_risk" if risk >= ACCOUNT_AT_RISK else
             "trial" if in_trial(view) else
             "past_due" if view is not None and view.status == "past_due" else
             "customer" if mrr > 0 else "paused" if view is not None and view.paused else "prospect")
    reasons.sort(key=lambda r: -r[0])
    # the heaviest reason's action whatever the risk (QA pass 6 L4: below 0.5 it was "none" beside
    # "downgraded from Business to Pro 21 days ago", risk 0.35, whose action is to review the plan);
    # "none" only without a reason. The at-risk alert still opens at 0.5 (streams/worker/account_alerts.py)
    action = reasons[0][2] if reasons else "none"
    return AccountRollup(health, round(100 * (1 - risk)), round(risk, 4), stage, len(users), len(quiet), round(usage, 4),
                         mrr, tuple(text for _, text, _ in reasons), action, trial, still_silent, not blind, sole is not None,
                         0 if sole else sum(1 for m in users if now_s - m.last_seen_s >= _SILENT_S) - len(silent))


def own_account(account: str, view: AccountView | None, stated: Collection[int] = ()) -> bool:
    """Whether ``account`` is its subscriber's own (:func:`rollup`'s ``own``): a subscription in
    force is keyed by the user whose id the account has (a user without ``account_id`` is its own
    account: docs/REVENUE.md), or one the account state still holds (``stated``: the keys of
    ``AccountState.subs``, a cancelled one among them until the next statement settles it: so
    the churn of a B2C plan is known as one, QA19 F7). A company account whose billing user has
    the company's id (the workaround QA14 F1 found, ``account_id`` = user id) is one too, but its
    events name the account, so it has members and is judged on them.

    >>> v = AccountView(0, False, "trial", (), 0, 9, 0, 0, 0, (), (member_key("f1"),))
    >>> own_account("f1", v), own_account("acme", v), own_account("f1", None)
    (True, False, False)
    >>> gone = AccountView(0, False, "cancelled", (), 0, 0, 0, 1)
    >>> own_account("f1", gone), own_account("f1", gone, [member_key("f1")])
    (False, True)
    """
    key = member_key(account)
    return view is not None and (key in view.billing_keys or key in stated)


def _churn_action(own: bool, blind: bool, sole_here: bool) -> str:
    """The action of a churned account (its subscription cancelled, or moved to a free plan). A
    company's, or a user's own account whose user is gone too: "win back". A user's own account
    (B2C: a plan on top of the product's use, a neobank's premium) loses the plan, not necessarily
    the customer (QA19 F7: 335 premium cancellations said "win back", users 0, 334 of them by
    customers still banking there): with its user seen and not gone (an account that is its one user,
    :func:`sole_member`), "keep the customer, win back the plan"; without a member copy (a user
    sent without ``account_id``: its use is not seen here, ``AccountRollup.usage_known`` false),
    "win back the plan", the user's own alerts saying whether the customer stays.

    >>> _churn_action(False, False, False), _churn_action(True, True, False), _churn_action(True, False, True), _churn_action(True, False, False)
    ('win back', 'win back the plan', 'keep the customer, win back the plan', 'win back')
    """
    if own and blind:
        return _WIN_BACK_PLAN
    return _KEEP_WIN_PLAN if own and sole_here else _WIN_BACK
