"""An account's health, temperature, risk, stage, reasons and action from its users and its subscription.

Account managers look after companies, not users: a company leaves when its people stop using
the product or its billing says so. Inputs, all kept small per account:

- one :class:`Member` per user of the account (25 bytes + the user id: when last seen, lifecycle stage, the
  open at-risk alert's risk, the user's 4-week activity then and what its 13-week rate expects), sent by the
  worker that owns the user once per hour the user was active, as of its last event in that hour
  (streams/worker/members.py; so the roll-up is incremental and does not depend on the worker's cycles);
- the subscription (``models.revenue.AccountView``) and the last downgrade (:class:`Downgrade`);
- the renewal date from the accounts table.

Rules (written, not fitted; docs/REVENUE.md "Account roll-up"):

- users = members seen in the last 90 days (none: every member ever seen, so an account nobody
  has used for 90 days stays all silent instead of having no users); silent = of those, silent for
  14 days or more;
- usage = the users' 4-week activity decayed to now against their 4-week activity expected from
  their 13-week rate (``models.signals`` trend_long; 1.0 at a steady rate; 0.6 = usage fell 40 %);
  0 for an account with no users (no member ever seen: nobody uses it; QA pass 4, 2026-12-03:
  it was 1.0, "steady", so a trial nobody used, the clearest case of "usage under half", ended
  at risk 0, temperature 100 and no reason);
- user risk ``r_u = 0.8 * silent share`` (all silent: 0.8; a user's own at-risk alert stays the
  user's, and a one-user account would otherwise flap as its second user appears); billing risk ``r_b`` = the largest of: past due 0.5, a
  downgrade in the last 30 days 0.35, renewal within 30 days while usage fell 25 % or more 0.4
  (not without users: nothing has fallen, and a monthly plan's renewal is always within 30 days,
  so every paying account whose users have not come yet would carry it), a trial ending within
  3 days with usage under half its peak 0.5 (without users: "nobody has used it yet"), and after its end
  while the status still says trial (no statement yet says converted or cancelled: "trial ended 5 h
  ago and nobody has used it", action "help them convert now that the trial has ended",
  :func:`trial_action`); cancelled with nothing left:
  churned, risk 1, or, for an account that never paid (a trial cancelled without converting, or
  a free plan cancelled: the state keeps no trace of a trial once it is cancelled), trial_lost,
  risk 1, "cancelled without paying" (no logo churn, docs/REVENUE.md, but nothing left to save either);
  an account that paid and moved to a free plan (active at MRR 0): churned too, "moved to the free
  plan Free", as the ledger counts it (:func:`_free_plan`);
- ``risk = 1 - (1 - r_u)(1 - r_b)``; temperature = 100 (1 - risk); health = 100 times the mean of
  the share of users not silent and usage (capped at 1);
- stage: churned, trial_lost, at_risk (risk >= 0.5), trial, past_due, customer, or prospect (never paid:
  nothing stated yet, or a free plan).
- action: the heaviest reason's, at any risk (an account below the at-risk line with a reason
  still has something to do: a downgrade alone, 0.35, says "review how the plan fits their
  use"); "none" only when no reason stands. An ``account_recovered`` alert says "none": its
  reasons say why the account is better (streams/worker/account_alerts.py).

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
from typing import Final, Sequence

from models.reasons import _ago, _counted, _days
from models.revenue import AccountView

__all__ = ["ACCOUNT_ACTIONS", "ACCOUNT_AT_RISK", "ACCOUNT_STAGES", "GONE_STAGES", "AccountRollup", "Downgrade", "MEMBER_HEAD_BYTES", "MEMBER_ID_BYTES", "Member", "hours_left", "in_trial", "member_key", "recovered_reasons", "rollup", "silence_risk",
           "silent_counts", "trial_action", "trial_rule"]

DAY_S: Final[int] = 86_400
ACCOUNT_AT_RISK: Final[float] = 0.5
ACCOUNT_STAGES: Final[tuple[str, ...]] = ("churned", "trial_lost", "at_risk", "trial", "past_due", "customer", "prospect")
#: Accounts whose subscription is gone: nothing to save, the win-back list's (churned: it paid;
#: trial_lost: cancelled without ever paying, a trial or a free plan). Risk 1, temperature 0, never an at-risk alert.
GONE_STAGES: Final[tuple[str, ...]] = ("churned", "trial_lost")
_RE_ENGAGE, _FIX_PAYMENT, _REVIEW_PLAN, _RENEWAL_CALL, _CONVERT_TRIAL, _CONVERT_ENDED, _WIN_BACK = (
    "re-engage the silent users", "fix the payment with the billing contact", "review how the plan fits their use",
    "book a renewal call", "help them convert before the trial ends", "help them convert now that the trial has ended",
    "win back")
ACCOUNT_ACTIONS: Final[tuple[str, ...]] = (_RE_ENGAGE, _FIX_PAYMENT, _REVIEW_PLAN, _RENEWAL_CALL, _CONVERT_TRIAL, _CONVERT_ENDED,
                                           _WIN_BACK, "none")
_USERS_WINDOW_S: Final[int] = 90 * DAY_S
_SILENT_S: Final[int] = 14 * DAY_S
_MEMBER = struct.Struct("<QIBfff")  # key, last seen s, stage index, open risk, act 28d and its base at last seen
# a member record keeps the user id when it has at most this many bytes: 25 + 200 stays under the
# listpack value limit (``hash-max-listpack-value`` 256) of the account's member hash
MEMBER_ID_BYTES: Final[int] = 200
# a member record's fixed part (25 bytes): a longer record keeps the user id after it (Member.to_bytes)
MEMBER_HEAD_BYTES: Final[int] = _MEMBER.size


def member_key(user_id: str) -> int:
    """8 bytes of the user id's hash: members are stored without their id (state stays small)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True, slots=True)
class Member:
    """One user of an account as the account needs it (``STAGES`` index as in models.state)."""

    key: int
    last_seen_s: int
    stage: int
    risk: float  # risk of the user's open at-risk alert; 0 while none is open
    act_28d: float  # decayed 4-week activity at last_seen_s (models.signals)
    base_28d: float  # act_28d expected from the 13-week rate at last_seen_s (act_28d / trend_long)
    user_id: str = ""  # for the console's link to the user's page; "" when unknown or too long to keep

    def to_bytes(self) -> bytes:
        """25 bytes (``_MEMBER``), then the user id (UTF-8) when it is at most ``MEMBER_ID_BYTES``.

        >>> m = Member(member_key("u1"), 5, 1, 0.0, 1.0, 2.0, "u1")
        >>> len(m.to_bytes()), Member.from_bytes(m.to_bytes()) == m, Member.from_bytes(m.to_bytes()[:25]).user_id
        (27, True, '')
        """
        head = _MEMBER.pack(self.key, self.last_seen_s, self.stage, self.risk, self.act_28d, self.base_28d)
        uid = self.user_id.encode("utf-8", "surrogatepass")
        return head + uid if len(uid) <= MEMBER_ID_BYTES else head

    @classmethod
    def from_bytes(cls, data: bytes) -> Member:
        """A record of :meth:`to_bytes` (or of the 25-byte format before user ids were kept)."""
        return cls(*_MEMBER.unpack_from(data), data[_MEMBER.size:].decode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class Downgrade:
    """The account's latest contraction: the plans before and after, and when."""

    ts_ms: int
    plans_before: tuple[str, ...]
    plans_after: tuple[str, ...]
    mrr_before_cents: int = 0  # the account's MRR before and after it (0: a record kept before they were)
    mrr_after_cents: int = 0


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


def _plans(plans: tuple[str, ...]) -> str:
    return " + ".join(plans) if plans else "nothing"


def _named(plans: Sequence[str]) -> str:
    """The plans that have a name, joined ("Addon + Pro"); "" when none has (a statement may leave
    its plan out), so a text can leave the name out rather than print an empty one.

    >>> _named(("Addon", "Pro")), _named(("",))
    ('Addon + Pro', '')
    """
    return " + ".join(p for p in plans if p)


def _downgrade_text(down: Downgrade) -> str:
    """The downgrade reason without its age: "downgraded from Enterprise to Pro", or, when the
    plans do not change (fewer seats on the same plan), the fall of the MRR: "MRR down from 200.00
    to 150.00 (Team)" (QA pass 9 L1: it read "downgraded from Team to Team"). A record kept before
    the MRR was (``mrr_before_cents`` 0) says "plan Team reduced".

    >>> _downgrade_text(Downgrade(0, ("Addon", "Pro"), ("Pro",))), _downgrade_text(Downgrade(0, ("Team",), ("Team",), 20000, 15000))
    ('downgraded from Addon + Pro to Pro', 'MRR down from 200.00 to 150.00 (Team)')
    >>> _downgrade_text(Downgrade(0, ("Team",), ("Team",)))
    'plan Team reduced'
    """
    if down.plans_before != down.plans_after:
        return f"downgraded from {_plans(down.plans_before)} to {_plans(down.plans_after)}"
    named = _named(down.plans_after)
    if down.mrr_before_cents > down.mrr_after_cents:
        return f"MRR down from {down.mrr_before_cents / 100:.2f} to {down.mrr_after_cents / 100:.2f}" + (f" ({named})" if named else "")
    return f"plan {named} reduced" if named else "plan reduced"


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
    (nobody uses the account: the trial rule's clearest case, module docstring)."""
    recent = base = 0.0
    for m in users:
        age = max(0, now_s - m.last_seen_s)
        recent += m.act_28d * math.exp(-age / (28.0 * DAY_S))
        base += m.base_28d * math.exp(-age / (90.0 * DAY_S))
    return recent / base if base > 0 else 1.0 if users else 0.0


def silence_risk(users: int, silent: int) -> float:
    """The users' part of the account's risk, ``r_u = 0.8 * silent share`` (0 without users).

    >>> silence_risk(4, 1), silence_risk(0, 0)
    (0.2, 0.0)
    """
    return 0.8 * (silent / users if users else 0.0)


def silent_counts(seen_sorted_s: Sequence[int], now_s: int) -> tuple[int, int]:
    """``(users, silent)`` at ``now_s`` of members last seen at ``seen_sorted_s`` (sorted), as
    :func:`rollup` counts them, by bisection: what a caller that only needs the users' part of the
    risk pays instead of a pass over every member.

    >>> silent_counts([100, 10 * DAY_S, 30 * DAY_S, 90 * DAY_S], 95 * DAY_S)
    (3, 2)
    >>> silent_counts([0, 10 * DAY_S, 30 * DAY_S], 200 * DAY_S)  # nobody in 90 days: the two ever seen, silent
    (2, 2)
    """
    gone = bisect.bisect_right(seen_sorted_s, now_s - _USERS_WINDOW_S)
    if gone == len(seen_sorted_s):  # nobody in 90 days: every member ever seen, all silent (rollup)
        seen = len(seen_sorted_s) - bisect.bisect_right(seen_sorted_s, 0)
        return seen, seen
    return len(seen_sorted_s) - gone, bisect.bisect_right(seen_sorted_s, now_s - _SILENT_S) - gone


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

    >>> r = rollup([Member(1, 99 * DAY_S, 1, 0.0, 9.0, 9.0), Member(2, 80 * DAY_S, 1, 0.0, 9.0, 9.0)], None, None, 0, 100 * DAY_S)
    >>> r.reasons, recovered_reasons(r, 0.8)
    (('1 of 2 users silent for 2 weeks',), ('1 of 2 users active in the last 2 weeks', 'risk down to 40% from 80% when the alert opened'))
    >>> recovered_reasons(rollup([], None, None, 0, 100 * DAY_S), 0.5, 0.2)
    ('converted to a paid plan today', 'risk down to 0% from 50% when the alert opened')
    >>> recovered_reasons(r, 0.8, 20.0)[:2]
    ('1 of 2 users active in the last 2 weeks', 'converted to a paid plan 20 days ago')
    >>> recovered_reasons(r, 0.8, -1.0, 0.1)[:2], recovered_reasons(r, 0.8, -1.0, 3.0)[1]
    (('payment fixed today (no longer past due)', '1 of 2 users active in the last 2 weeks'), 'payment fixed 3 days ago (no longer past due)')
    >>> from dataclasses import replace
    >>> recovered_reasons(replace(r, mrr_cents=9900), 1.0, -1.0, -1.0, 0.0, ("Pro",))[:2]
    ('paying again: Pro 99.00 today', '1 of 2 users active in the last 2 weeks')
    """
    out: list[str] = []
    if r.users > r.silent:
        out.append(f"{_share(r.users - r.silent, r.users)} active in the last 2 weeks")
    # each first when it is today's news (it closed the alert), else after the users' return
    if converted_days >= 0:
        out.insert(0 if round(converted_days) == 0 else len(out), f"converted to a paid plan {_ago(converted_days)}")
    if fixed_days >= 0:
        out.insert(0 if round(fixed_days) == 0 else len(out), f"payment fixed {_ago(fixed_days)} (no longer past due)")
    if reactivated_days >= 0:
        out.insert(0 if round(reactivated_days) == 0 else len(out),
                   f"paying again: {(_named(plans) + ' ') if _named(plans) else ''}{r.mrr_cents / 100:.2f} {_ago(reactivated_days)}")
    if opened_risk > r.risk:
        out.append(f"risk down to {100.0 * r.risk:.0f}% from {100.0 * opened_risk:.0f}% when the alert opened")
    return tuple(out)


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


def rollup(members: Sequence[Member], view: AccountView | None, down: Downgrade | None, renewal_ms: int,
           now_s: int, now_ms: int = -1) -> AccountRollup:
    """The account at ``now_s`` (event time); ``renewal_ms`` 0 when unknown; ``now_ms`` the same
    time with its milliseconds when known (-1: ``now_s`` whole), so that a deadline kept in
    milliseconds is counted from the same instant the alerts use. See the module docstring."""
    # Nobody seen in 90 days: every member ever seen counts, all silent. Before, such an account had
    # no users, so its users' part of the risk fell to 0 and an open at-risk alert "recovered" the
    # day its last member left the window (QA 2026-12: at risk 0.8 on day 60, recovered at 0.0 on
    # day 102, nobody back); an account nobody uses is not a recovered one.
    users = ([m for m in members if now_s - m.last_seen_s < _USERS_WINDOW_S]
             or [m for m in members if m.last_seen_s])
    silent = [m for m in users if now_s - m.last_seen_s >= _SILENT_S]
    usage = _usage(users, now_s)
    share_silent = len(silent) / len(users) if users else 0.0
    r_u = silence_risk(len(users), len(silent))  # a user's own at-risk alert stays the user's: the account counts silence
    reasons: list[tuple[float, str, str]] = []  # (weight, text, action)
    if silent:
        weeks = min((now_s - m.last_seen_s) // (7 * DAY_S) for m in silent)
        reasons.append((r_u, f"{_share(len(silent), len(users))} silent for {_counted('week', weeks)}", _RE_ENGAGE))
    r_b = 0.0
    now_ms = now_s * 1000 if now_ms < 0 else now_ms
    mrr = view.mrr_cents if view is not None else 0
    if view is not None and view.past_due_since_ms:
        r_b = max(r_b, 0.5)
        days = max(0, now_ms - view.past_due_since_ms) // 86_400_000  # a statement a little ahead of now: "today"
        reasons.append((0.5, f"payment failed {_ago(days)} (past due)", _FIX_PAYMENT))
    if down is not None and 0 <= now_ms - down.ts_ms < 30 * 86_400_000:
        r_b = max(r_b, 0.35)
        days = (now_ms - down.ts_ms) // 86_400_000
        reasons.append((0.35, f"{_downgrade_text(down)} {_ago(days)}", _REVIEW_PLAN))
    if renewal_ms and 0 <= renewal_ms - now_ms <= 30 * 86_400_000 and usage <= 0.75 and users:  # a fall, not "not yet"
        r_b = max(r_b, 0.4)
        days = renewal_ms // 86_400_000 - now_ms // 86_400_000  # calendar (UTC) days, as the book's renewal column
        when = "today" if days == 0 else f"in {_days(days)}"
        reasons.append((0.4, f"renewal {when} while usage fell {round(100 * (1 - usage))}%", _RENEWAL_CALL))
    # No lower bound: a trial whose end has passed while its status still says trial (the billing
    # system has not said converted or cancelled yet) keeps the rule (review 4, 2026-12-03: with
    # ``0 <=`` the risk fell to 0 at the end and the open alert said account_recovered, "risk down
    # to 0% from 50%", of a trial nobody used; its cancellation hours later then sent nothing).
    trial = trial_rule(view, usage, now_ms)
    if trial:
        r_b = max(r_b, 0.5)
        use = "with usage at {}% of the usual".format(round(100 * usage)) if users else "and nobody has used it{}"
        ends = view.trial_ends_ms  # type: ignore[union-attr]
        reasons.append((0.5, _trial_end_text(ends, now_ms, use), trial_action(ends, now_ms)))
    free = _free_plan(view)
    churned = view is not None and view.first_paid_ms > 0 and not view.customer and (view.status in ("cancelled", "none") or free)
    # Cancelled without ever paying (a trial, or a free plan: a cancelled statement replaces the
    # trial's, so whether there was one is not known here): gone like a churned account (its silent users are
    # nobody to save: QA 2026-12-02 found 21 of an owner's 39 "at risk" accounts were such trials,
    # alerted weeks after they ended), but no logo churn: it never was a customer.
    lost = view is not None and view.first_paid_ms == 0 and not view.customer and view.status == "cancelled"
    risk = 1.0 if churned or lost else 1 - (1 - r_u) * (1 - r_b)
    if churned:
        named = _named(view.plans) if free else ""  # type: ignore[union-attr]
        gone = (f"moved to the free plan {named}" if named else "moved to a free plan") if free else "subscription cancelled"
        reasons.insert(0, (1.0, gone, _WIN_BACK))
    elif lost:
        reasons.insert(0, (1.0, "cancelled without paying", _WIN_BACK))
    health = round(100 * (0.5 * (1 - share_silent) + 0.5 * min(1.0, usage))) if users else 0
    stage = ("churned" if churned else "trial_lost" if lost else "at_risk" if risk >= ACCOUNT_AT_RISK else
             "trial" if in_trial(view) else
             "past_due" if view is not None and view.status == "past_due" else
             "customer" if mrr > 0 else "prospect")
    reasons.sort(key=lambda r: -r[0])
    # the heaviest reason's action whatever the risk (QA pass 6 L4: below 0.5 it was "none" beside
    # "downgraded from Business to Pro 21 days ago", risk 0.35, whose action is to review the plan);
    # "none" only without a reason. The at-risk alert still opens at 0.5 (streams/worker/account_alerts.py)
    action = reasons[0][2] if reasons else "none"
    return AccountRollup(health, round(100 * (1 - risk)), round(risk, 4), stage, len(users), len(silent), round(usage, 4),
                         mrr, tuple(text for _, text, _ in reasons), action, trial)
