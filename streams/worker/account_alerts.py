"""An account's alerts and next review, decided by the owner of its partition (streams/worker/revenue.py).

After each instant of an account's copies (every copy of one event time: statements at one instant
make one movement), and at each of its deadlines (``next_due_s``) before any later copy
(streams.worker.revenue), in event order: its roll-up
(``models.account_health.rollup``) opens an at-risk alert at ``ACCOUNT_AT_RISK`` (``account_churned``
when the subscription is gone) and closes it below 0.4, held there a week (``account_recovered``, ``closes``); a trial whose
users say it will not convert gets a reminder 72 h and 24 h before it ends; and the account's
next deadline (a member turning silent, a reminder) goes to its partition's due index. Alerts
are at-least-once with stable ids (account, kind, event time; a reminder: its hours and the trial
end), so a replay sends the same ids. Pure: no Redis, no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final, Mapping, Sequence

import orjson

from models.account_health import (_FIX_PAYMENT, _REVIEW_PLAN, ACCOUNT_AT_RISK, GONE_STAGES, RISE_COUNTS_MS, AccountRollup, Downgrade, Member, PriceRise, Trend,
                                   add_copy, bill_fall, downgrade_risk, seat_price_rise, hours_left,
                                   in_trial, own_account, paying_again_text, recovered_reasons, rollup, silent_after_s, trend_usage_at,
                                   trial_action, TREND_FROM)
from models.engine import alert_id
from models.monthly import Cycle
from models.events import Event
from models.quiet_period import SUSTAINED_AFTER_S, QuietPeriod, next_quiet_end_ms, quiet_members, quiet_rollup, quiet_window
from models.revenue import RENEWAL_SLACK_MS, AccountState, Change
from models.subscription import RENEWAL_GRACE_MS, Subscription
from streams.worker.alert_log import EXTRAS_FIELD

__all__ = ["ACCOUNT_ALERT_SCHEMA", "RECOVERED_BELOW", "TRIAL_REMINDERS_H", "AccountWork", "account_alert", "account_rollup", "churn_announced_ms", "converted_days",
           "decide_alert",
           "closes", "decide_reminders", "kept_trend", "member_deadlines_ms", "note_copy", "trend_counts", "trend_now", "next_due_s", "note_downgrade", "note_payment",
           "note_price_rise", "price_rise", "opened_risk", "other_due_ms", "unpaid_churn",
           "payment_fixed_days", "reactivated_days", "renewal_ms", "kept_cycle", "risk_drops_ms", "usage_counts", "withhold_before"]

KafkaRecord = tuple[bytes | None, bytes]

ACCOUNT_ALERT_SCHEMA: Final[int] = 1
RECOVERED_BELOW: Final[float] = 0.4  # hysteresis: an open account alert closes below this risk
#: ... and stays below it this long, unless a fact explains the fall (:func:`closes`, QA20a F8)
RECOVERY_HOLD_MS: Final[int] = 7 * 86_400_000
TRIAL_REMINDERS_H: Final[tuple[int, ...]] = (72, 24)  # hours before trial_ends
_WONT_CONVERT_HEALTH: Final[int] = 50  # a trial account below this health is not on its way to convert
_TRIAL_SOON_MS: Final[int] = 3 * 86_400_000  # models.account_health: a trial ending within 3 days
_USERS_WINDOW_MS: Final[int] = 90 * 86_400_000  # models.account_health: users = members seen in 90 days
_DOWNGRADE_RECENT_MS: Final[int] = 30 * 86_400_000  # models.account_health: a downgrade counts for 30 days
#: Stages no at-risk alert opens in: a trial lost without paying, an account whose users are all gone (QA16 F11)
_NOT_TO_SAVE: Final[tuple[str, ...]] = ("trial_lost", "lapsed")


@dataclass(slots=True)
class AccountWork:
    """One account while the cycle applies its copies."""

    state: AccountState
    extras: dict[str, object]
    members: dict[int, Member]
    changed: dict[bytes, bytes] = field(default_factory=dict)  # member records to write, by member key
    # the user ids those records keep (a member whose id is too long to keep has none), by member
    # key: the store indexes them (``Keys.member_of``) without decoding the records again
    ids: dict[bytes, str] = field(default_factory=dict)
    # the account's declared quiet periods (the accounts table's ``quiet``, read by the worker:
    # streams/worker/accounts.py); () for none
    quiet: tuple[QuietPeriod, ...] = ()
    # the first reason of the user alert a turn copy applied at this instant opened (never stored):
    # a one-user account's alert says it first, as the owner's book does (QA21 F2)
    said: tuple[str, ...] = ()


def account_rollup(state: AccountState | None, extras: Mapping[str, object], members: Sequence[Member], renewal_ms: int,
                   now_ms: int, account: str = "", said: Sequence[str] = (), quiet: Sequence[QuietPeriod] = ()) -> AccountRollup:
    """``models.account_health.rollup`` from what Redis keeps of an account (worker and readers);
    ``account`` its id, which tells a user's own account (``own_account``: no member copy is made
    for it, so its use is unknown here, QA14 F1; its plan's cancellation too, QA19 F7); "" where
    only the stage is read. ``said``: the
    rollup's, the own reasons of an account's only user (a reader that scored it, QA17 F4).

    ``quiet``: the account's declared yearly quiet periods (the accounts table's ``quiet``,
    ``models.quiet_period``, QA18 F3). Inside one, or in the 2 weeks after it, the account is
    judged without the silence of the users who were not already silent when it began and without
    the usage trend (``quiet_rollup``): so those rules open no ``account_at_risk`` there (this is
    the gate ``decide_alert`` opens by), the billing rules (a cancellation, a failed payment, a
    downgrade, a trial, a renewal) still do, and the book ranks the dip as the season it is. An
    alert open since before the period began is judged as before: the period neither closes it nor
    hides a decline that started earlier."""
    down = extras.get("down")
    downgrade = kept_downgrade(down)
    view = stated_view(state)
    own = bool(account) and own_account(account, view, state.subs if state is not None else ())
    now_s = now_ms // 1000
    rise = price_rise(extras)
    unpaid = unpaid_churn(extras)
    # the 4-week figure holds a quiet period 8 weeks after its end (QA23b F4's sustained fall: not judged then)
    sustained = quiet_window(quiet, now_ms, SUSTAINED_AFTER_S) is None
    r = rollup(members, view, downgrade, renewal_ms, now_s, now_ms, own, trend_now(extras, members, now_ms), said, account, rise, unpaid,
               sustained)
    window = quiet_window(quiet, now_ms)
    since = int(extras.get("at_risk_since_ms", 0) or 0)  # type: ignore[call-overload]
    if window is None or 0 < since < window.start_ms:
        return r
    # the quiet gate (QA18 F3): the users not already silent at the period's start as seen now, no usage trend
    judged = rollup(quiet_members(members, window, now_s), view, downgrade, renewal_ms, now_s, now_ms, own, None, said, account, rise, unpaid)
    return quiet_rollup(r, judged, window, now_ms)


def unpaid_churn(extras: Mapping[str, object]) -> bool:
    """Whether the account's subscription, if it is gone, went while its payment had failed (an
    involuntary churn, QA22a F5): a past due never fixed is still kept (``past_due``, the review of
    the cancellation itself), or :func:`note_payment` kept ``unpaid`` when it dropped one for the
    churn that ended it.

    >>> unpaid_churn({"past_due": [0, ["9f"]]}), unpaid_churn({"past_due": [5, ["9f"]]}), unpaid_churn({"unpaid": 7})
    (True, False, True)
    """
    kept = extras.get("past_due")
    return bool(extras.get("unpaid")) or isinstance(kept, list) and len(kept) == 2 and kept[0] == 0


def stated_view(state: AccountState | None) -> AccountView | None:
    """The account's subscription view, None when nothing was ever stated (what the roll-up reads)."""
    return state.get() if state is not None and (state.subs or state.first_paid_ms) else None


def trend_now(extras: Mapping[str, object], members: Sequence[Member], now_ms: int) -> Trend | None:
    """The account's 2-week activity (``models.account_health.Trend``) at ``now_ms``: the one the
    applied copies keep in the extras' ``trend`` (:func:`note_copy`), decayed to now; None without
    members (no use seen: nothing to follow). Readers get what the worker's next review would."""
    kept = kept_trend(extras)
    return kept.at(now_ms // 1000) if members and kept is not None else None


def kept_trend(extras: Mapping[str, object]) -> Trend | None:
    """The extras' ``trend`` record (``Trend.from_list``: of any version), None without one."""
    return Trend.from_list(extras.get("trend"))


def kept_cycle(extras: Mapping[str, object], now_ms: int) -> Cycle | None:
    """The account's monthly burst rhythm at ``now_ms`` (``Trend.cycle``, models.monthly; QA23b F3),
    None without one: what the roll-up judges its members' silence and its usage by."""
    kept = kept_trend(extras)
    return kept.at(now_ms // 1000).cycle() if kept is not None else None


def note_copy(extras: dict[str, object], old: Member | None, new: Member, ts_ms: int) -> None:
    """Keep in the extras' ``trend`` what the user's copy ``new`` (dated ``ts_ms``, replacing
    ``old``) adds to the account's 2-week activity (``models.account_health.add_copy``): called
    as each member copy is applied, never at a review, so the record is a function of the copies
    alone, not of the reviews in between nor of the order different users' copies came in
    (QA20a F11: a record rounded to 3 decimals at each review moved a risk by 0.0001 between two
    replays). Full precision: 3 numbers, about 45 bytes of JSON, and the monthly burst rhythm's 11
    (``Trend.month``, ``Trend.parts``: 25 whole numbers, the same in any order; QA23b F3), about
    110 bytes in all."""
    extras["trend"] = add_copy(kept_trend(extras), old, new, ts_ms // 1000).to_list()


def kept_downgrade(down: object) -> Downgrade | None:
    """The extras' ``down`` record (:func:`note_downgrade`, of any version) as a ``Downgrade``, None
    without one. When the latest contraction is a smaller bill (``models.account_health.bill_fall``)
    the record it replaced is read instead, if it kept one: next month's metered bill does not hide
    a plan downgrade of 12 days ago (the roll-up still counts it for its 30 days).

    >>> kept_downgrade([9, ["Pro"], ["Pro"], 13100, 12900, [5, ["Business"], ["Pro"], 40000, 13100]]).plans_before
    ('Business',)
    >>> kept_downgrade([9, ["Business"], ["Pro"]])  # a record kept before the MRR was
    Downgrade(ts_ms=9, plans_before=('Business',), plans_after=('Pro',), mrr_before_cents=0, mrr_after_cents=0, cancelled=(), seats_before=0, seats_after=0)
    """
    if not isinstance(down, list) or len(down) < 3:
        return None
    cancelled = tuple(down[6]) if len(down) > 6 and down[6] else ()
    seats = tuple(down[7]) if len(down) > 7 and down[7] else (0, 0)
    latest = Downgrade(int(down[0]), tuple(down[1]), tuple(down[2]), *down[3:5], cancelled=cancelled,  # type: ignore[misc]
                       seats_before=int(seats[0]), seats_after=int(seats[1]))
    replaced = kept_downgrade(down[5]) if len(down) > 5 and bill_fall(latest) else None
    return replaced or latest


def _tail(users: Sequence[str], seats: Sequence[int]) -> list[object]:
    """A ``down`` record's optional elements after the record it replaced: its users, then its seats
    before and after (``[]`` for no users when seats follow); none when it has neither."""
    return [list(users), list(seats)] if seats else [list(users)] if users else []


def _replaced(kept: list[object]) -> list[object]:
    """A ``down`` record as kept inside the next one: without the record it replaced, with its users and seats."""
    tail = _tail(kept[6] if len(kept) > 6 and kept[6] else [], kept[7] if len(kept) > 7 and kept[7] else [])  # type: ignore[arg-type]
    return kept[:5] + ([None, *tail] if tail else [])


def note_downgrade(extras: dict[str, object], ts_ms: int, change: Change, plans_before: Sequence[str],
                   plans_after: Sequence[str], cancelled_by: str = "", seats: tuple[int, int] = (0, 0)) -> None:
    """Keep the account's latest contraction in the extras' ``down`` for the roll-up's reason,
    ``[ts, plans before, plans after, MRR before, MRR after, the record it replaced]`` and, when
    statements of the instant cancelled users' own subscriptions (``cancelled_by``: the user whose
    subscription this statement ended, "" when none), their ids after it (QA22b F6: "1 of 2
    battle_pass subscriptions cancelled today (p00123)", ``models.account_health.members_cancelled``),
    and, when its statement's subscription stated different seats before and after (``seats``),
    those two last (QA23b F1: fewer seats is a downgrade, a smaller metered bill is not,
    ``models.account_health.bill_fall``), from one
    statement's ``change`` (``plans_before``/``plans_after``: the account's plans around that
    statement). Statements at one instant make one movement (models.revenue): a second one that
    retracts the contraction (the add-on and the main plan cancelled together: one churn) puts
    back the record the contraction replaced, so the churned alert does not say "downgraded from
    Addon + Pro to Addon today" of a contraction the ledger retracted (QA pass 9 M4), in either
    order; one that re-measures it keeps the plans from before the instant. The replaced record
    is kept only while it still counts (30 days), and without its own.

    >>> from models.revenue import Movement
    >>> def mv(kind, before, after):
    ...     return Movement(9, kind, before, after, 1, 1)
    >>> extras = {}
    >>> note_downgrade(extras, 9, Change(add=mv("contraction", 12000, 2000)), ["Addon", "Pro"], ["Addon"]); extras["down"][:5]
    [9, ['Addon', 'Pro'], ['Addon'], 12000, 2000]
    >>> note_downgrade(extras, 9, Change(mv("contraction", 12000, 2000), mv("churn", 12000, 0)), ["Addon"], []); extras
    {}
    >>> note_downgrade(extras, 9, Change(add=mv("contraction", 998, 499)), ["bp", "bp"], ["bp"], "p1"); extras["down"][5:]
    [None, ['p1']]
    >>> note_downgrade(extras, 20, Change(add=mv("contraction", 20000, 18000)), ["Team"], ["Team"], "", (10, 9)); extras["down"][6:]
    [[], [10, 9]]
    """
    down = extras.get("down")
    kept = down if isinstance(down, list) and len(down) >= 3 else None
    at_instant = kept is not None and kept[0] == ts_ms
    add, retract = change.add, change.retract
    if add is not None and add.kind == "contraction":
        users = list(kept[6]) if at_instant and len(kept) > 6 and kept[6] else []  # type: ignore[index, arg-type]
        if at_instant and seats[0] == seats[1] and len(kept) > 7 and kept[7]:  # type: ignore[arg-type]
            seats = tuple(kept[7])  # type: ignore[index, assignment, arg-type]  # the instant's seat cut, re-measured
        if at_instant:  # re-measured at the same instant: the plans before it, the record it replaced
            plans_before, prev = kept[1], (kept[5] if len(kept) > 5 else None)  # type: ignore[index]
        else:
            prev = _replaced(kept) if kept is not None and int(kept[0]) + _DOWNGRADE_RECENT_MS > ts_ms else None
        users += [cancelled_by] if cancelled_by and cancelled_by not in users else []
        extras["down"] = ([ts_ms, list(plans_before), list(plans_after), add.mrr_before_cents, add.mrr_after_cents, prev]
                          + _tail(users, seats if seats[0] != seats[1] else ()))
    elif retract is not None and retract.kind == "contraction" and at_instant:
        prev = kept[5] if len(kept) > 5 else None  # type: ignore[index]
        if prev:
            extras["down"] = prev
        else:
            extras.pop("down", None)


def price_rise(extras: Mapping[str, object]) -> PriceRise | None:
    """The price rise the extras keep (``rise``, :func:`note_price_rise`), None without one."""
    kept = extras.get("rise")
    if not isinstance(kept, list):
        return None
    seats = (int(kept[4]), int(kept[5])) if len(kept) > 5 else (0, 0)
    intro = len(kept) > 6 and bool(kept[6])  # an introductory price ended (QA24a F2)
    return PriceRise(int(kept[0]), tuple(kept[1]), int(kept[2]), int(kept[3]), *seats, intro)  # type: ignore[arg-type]


def note_price_rise(extras: dict[str, object], ev: Event, change: Change, was: Subscription | None, now: Subscription | None,
                    plans_before: Sequence[str], plans_after: Sequence[str]) -> None:
    """Keep in the extras' ``rise`` (``[ts, plans, MRR before, MRR after]``, then the seats before
    and after for a rise per seat) a price rise at a renewal (``models.account_health.PriceRise``):
    a statement within a day of the period end its subscription stated before (``was``: the
    statement in force before it; ``now``: after it) that renews the same plan at a higher price.
    With the seats stated before and now, a price per seat that rose (QA20a F6,
    ``seat_price_rise``: more seats at the same price is growth); without them, only a user's own
    subscription (a B2C user without ``account_id``, or sent with ``account_id`` = the user id)
    whose MRR moves up (expansion) on the same plans (QA19 F7): a company's MRR rising is more
    seats as often as a price. Forgotten when a statement at the same instant retracts it; a later
    rise replaces it. An introductory price's end (the movement's ``intro_ended``) is kept so and
    said so ("introductory price ended: 1.00 -> 9.99 ...", same risk).

    >>> from models.revenue import Movement
    >>> renewal = Event("c7", 30, "subscription", "s1", 0.0, "", Subscription("active", "premium", 799))
    >>> extras, old = {}, Subscription("active", "premium", 499, 0, 30)
    >>> note_price_rise(extras, renewal, Change(add=Movement(30, "expansion", 499, 799, 0, 0)), old, None, ["premium"], ["premium"]); extras
    {'rise': [30, ['premium'], 499, 799]}
    >>> note_price_rise(extras, renewal, Change(Movement(30, "expansion", 499, 799, 0, 0), Movement(30, "expansion", 499, 899, 0, 0)),
    ...                 replace(old, period_end_ms=60), None, ["premium"], ["premium"]); extras   # restated at the same instant
    {'rise': [30, ['premium'], 499, 899]}
    >>> note_price_rise(extras, renewal, Change(Movement(30, "expansion", 499, 899, 0, 0)), old, None, ["premium"], ["premium"]); extras
    {}
    >>> note_price_rise(extras, renewal, Change(add=Movement(30, "expansion", 499, 799, 0, 0)), None, None, ["basic"], ["premium"]); extras
    {}
    >>> team = Event("a-u0", 30, "subscription", "s2", 0.0, "a", Subscription("active", "Team", 65_000, 0, 90, 26))
    >>> was = Subscription("active", "Team", 52_000, 0, 30, 26)
    >>> note_price_rise(extras, team, Change(add=Movement(30, "expansion", 52_000, 65_000, 0, 0)), was, team.subscription, ["Team"], ["Team"]); extras
    {'rise': [30, ['Team'], 52000, 65000, 26, 26]}
    >>> note_price_rise(extras, team, Change(), team.subscription, replace(team.subscription, mrr_cents=64_000, seats=32), ["Team"],
    ...                 ["Team"]); extras   # restated at the same instant: 32 seats at 20.00, growth
    {}

    A rise whose movement ends an introductory price (``Movement.intro_ended``, QA24a F2) is kept
    with a seventh element 1 (the seats 0 in the B2C form): :func:`price_rise` says it as such.

    >>> note_price_rise(extras, renewal, Change(add=Movement(30, "expansion", 100, 999, 0, 0, intro_ended=True)), old, None,
    ...                 ["premium"], ["premium"]); extras, price_rise(extras).text(30)
    ({'rise': [30, ['premium'], 100, 999, 0, 0, 1]}, 'introductory price ended: 1.00 -> 9.99 at its first full-price renewal today (premium)')
    """
    add, retract = change.add, change.retract
    kept = extras.get("rise")
    here = isinstance(kept, list) and kept[0] == ev.ts_ms  # noted at this instant: a restatement re-measures it
    ended_ms = was.period_end_ms if was is not None else 0
    renewal = here or (ended_ms > 0 and abs(ev.ts_ms - ended_ms) <= RENEWAL_SLACK_MS)
    intro = [1] if add is not None and add.intro_ended else []  # an introductory price ended (QA24a F2)
    if isinstance(kept, list) and here and len(kept) > 5 and kept[4]:  # a rise per seat noted at this instant
        _note_seat_rise(extras, ev.ts_ms, kept, now)
    elif was is not None and now is not None and was.seats and now.seats:
        rise = seat_price_rise(ev.ts_ms, was, now) if renewal else None
        if rise is not None:
            extras["rise"] = _seat_record(rise) + intro
    elif add is not None and add.kind == "expansion" and ev.user_id == ev.account and list(plans_before) == list(plans_after) and renewal:
        extras["rise"] = [ev.ts_ms, list(plans_after), add.mrr_before_cents, add.mrr_after_cents] + ([0, 0, 1] if intro else [])
    elif retract is not None and retract.kind == "expansion" and here:
        extras.pop("rise")


def _seat_record(rise: PriceRise) -> list[object]:
    """A rise per seat as the extras keep it: ``[ts, plans, MRR before, MRR after, seats before, seats after]``."""
    return [rise.ts_ms, list(rise.plans), rise.mrr_before_cents, rise.mrr_after_cents, rise.seats_before, rise.seats_after]


def _note_seat_rise(extras: dict[str, object], ts_ms: int, kept: list[object], now: Subscription | None) -> None:
    """A statement at the instant a rise per seat was noted (``kept``): one of the same plan's
    subscription, in force after it (``now``), re-measures the rise against the statement before the
    instant (kept), and forgets it when the price per seat no longer rose; another subscription's
    (an add-on renewed at the same instant) leaves it as it is."""
    plans = kept[1]
    if now is None or not isinstance(plans, list) or plans != [now.plan]:
        return
    before = Subscription("active", now.plan, int(kept[2]), 0, 0, int(kept[4]))  # type: ignore[call-overload]
    rise = seat_price_rise(ts_ms, before, now)
    if rise is not None:
        extras["rise"] = _seat_record(rise) + kept[6:7]  # an intro's end stays one
    else:
        extras.pop("rise")


def renewal_ms(state: AccountState | None, now_ms: int, table_ms: int = 0) -> int:
    """The account's renewal at ``now_ms``: the accounts table's contract renewal date when it has
    one (the date the account manager negotiates), else the earliest end at or after ``now_ms`` of
    a paid period its billing statements gave (``period_end``, models.revenue.AccountView.renews_at:
    an add-on's end passed without a restatement hides no later renewal); 0 when neither. The
    worker reads no table, so its alerts use the statements'. A table date passed and overtaken by
    the statements' (:func:`contract_or_renewed_ms`) is last year's."""
    stated = state.get().renews_at(now_ms) if state is not None and state.subs else 0
    return contract_or_renewed_ms(table_ms, stated, now_ms)


def contract_or_renewed_ms(table_ms: int, stated_ms: int, now_ms: int) -> int:
    """The accounts table's contract renewal date, unless it has passed and the billing statements
    have renewed the account beyond it (``stated_ms``, a paid period ending later): then that end.
    Why (QA24b F7): a school platform's table held each school's 2026 renewal; after the August
    renewals the owners' digest read "renewal 2026-08-10 (82 d ago)" for a school paid to 2027-08-10.
    A passed date with no later paid end stays: a renewal overdue, for the manager to chase.

    >>> contract_or_renewed_ms(100, 465, 200), contract_or_renewed_ms(100, 0, 200), contract_or_renewed_ms(300, 465, 200), contract_or_renewed_ms(0, 465, 200)
    (465, 100, 300, 465)
    """
    if table_ms and not (table_ms < now_ms < stated_ms):
        return table_ms
    return stated_ms


def _renewal_near_ms(state: AccountState, now_ms: int) -> int:
    """The first time after ``now_ms`` a stated renewal comes near (0: none): for each period end,
    once it is the renewal (the one before it passed) and within its renewal window (the roll-up's:
    ``AccountView.renewal_window_ms``, a quarter of its billing period, at least 30 days)."""
    if not state.subs:
        return 0
    view = state.get()
    ends = view.period_ends_ms
    times = [max(e - view.renewal_window_ms(e), prev + RENEWAL_GRACE_MS + 1) for prev, e in zip((0, *ends), ends)]
    return min((t for t in times if t > now_ms), default=0)


def _recovered_view(acc: AccountWork, r: AccountRollup, since: int, now_ms: int) -> AccountRollup:
    """What an ``account_recovered`` alert shows: why the account is better since the alert opened at
    ``since`` (``models.account_health.recovered_reasons``), action "none": the case closes (a reason
    left over below the line has its action on the book). Read before ``at_risk_risk`` is dropped."""
    again = reactivated_days(acc.state, since, now_ms)
    return replace(r, reasons=recovered_reasons(r, opened_risk(acc.extras, since), converted_days(acc.state, since, now_ms),
                                                payment_fixed_days(acc.extras, since, now_ms), again,
                                                _paid_plans(acc.state) if again >= 0 else ()), action="none")


def decide_alert(account: str, acc: AccountWork, now_ms: int, alerts: list[KafkaRecord]) -> AccountRollup:
    """Open an account at-risk alert (stable id: account, kind, the event time it opened at) when
    the roll-up reaches ``ACCOUNT_AT_RISK``; close it below ``RECOVERED_BELOW`` (hysteresis).

    An account whose subscription goes while its at-risk alert is open gets ``account_churned``
    too, once: a lost logo is news to the CRM (win-back work, the MRR gone) even when its decline
    was announced; before, the open alert swallowed it, so whether the CRM heard of the churn
    depended on whether the members' silence reached the account before the cancellation did.

    A trial cancelled without ever paying (stage ``trial_lost``) is no churn and nobody to save:
    it opens no alert (QA 2026-12-02: such trials got ``account_at_risk`` weeks after they ended,
    as their users fell silent); an at-risk alert open when it is lost (a trial ending unused)
    ends as a customer's would, with ``account_churned`` (stage ``trial_lost``, MRR 0), so the
    CRM's open case is closed; the alert is closed with it (``at_risk_since_ms`` 0: until the
    review of 2026-12-02 it stayed open, against this and ALERTS.md), so a trial started later
    opens its own. A churned customer's alert stays open: a reactivation recovers it, not a trial
    at MRR 0 (review 17 F3: a trial start sent ``account_recovered``, and its loss a second
    ``account_churned`` for the one churn the ledger books).

    An account whose every user is gone while its subscription runs (stage ``lapsed``,
    ``models.account_health.gone_member``) opens no alert either (QA16 F11: family plans whose
    members had all cancelled got ``account_at_risk`` a week or two later, on the usage trend or
    the silence, an account manager told to save an account already gone): it is on the win-back
    list; an alert open when it lapses stays open (as a user's), a return recovers it, the
    subscription's end is its ``account_churned``. A paying account whose users went quiet, its
    renewal within the renewal window, is no such account: the roll-up makes it ``at_risk``, a
    renewal to save (``models.account_health.renewal_save``, QA18 F1), and it opens one.

    Each alert's reasons support it (issue 11): an at-risk or churned alert lists the parts of
    the risk (the roll-up's reasons); ``account_recovered`` lists why the account is better
    (``models.account_health.recovered_reasons``: the users active, the fall of the risk from the
    one the alert opened at, kept as ``at_risk_risk``), never a part of the risk left over, but
    the named silent user it has not got back (``AccountRollup.still_silent``, QA11 F3).

    A payment that fails while a case is open (opened on another reason: the users' silence) is
    news too, with its own action: the open case gets an update, ``account_at_risk`` at the
    failure's time (its own id; the case stays the one opened, closed by one ``account_recovered``),
    the failure first and "fix the payment with the billing contact" (QA22a F5: the open alert
    swallowed it, as it did a churn before).

    ``account_churned`` carries ``lost_mrr``: the account's MRR before the churn
    (``AccountState.churned``, the win-back list's figure; 0 for a trial lost without paying).
    Its ``mrr`` is 0 once churned, so the CRM's win-back case had no figure of what was lost."""
    r = account_rollup(acc.state, acc.extras, list(acc.members.values()), renewal_ms(acc.state, now_ms), now_ms, account,
                       acc.said, quiet=acc.quiet)
    failed = note_payment(acc, now_ms)
    cut = downgraded_now(acc.extras, now_ms)
    since = int(acc.extras.get("at_risk_since_ms", 0) or 0)  # type: ignore[call-overload]
    churned = churn_announced_ms(acc.extras)
    kind, shown = None, r
    # paying again after the churn the CRM was told: never left unsaid (QA20a F1), below the at-risk
    # line a recovery, at or above it a new at-risk alert that says so first
    back = bool(since and churned and r.mrr_cents > 0 and r.stage not in GONE_STAGES)
    if not since and r.risk >= ACCOUNT_AT_RISK and r.stage not in _NOT_TO_SAVE:
        kind = "account_churned" if r.stage == "churned" else "account_at_risk"
        acc.extras["at_risk_since_ms"], acc.extras["at_risk_risk"] = now_ms, r.risk
    elif since and r.stage in GONE_STAGES and not churned:
        kind = "account_churned"
    elif since and closes(acc, r, since, back, now_ms):
        kind, acc.extras["at_risk_since_ms"] = "account_recovered", 0  # a churn recovers by paying
    elif back and r.stage not in _NOT_TO_SAVE:
        kind = "account_at_risk"
        shown = replace(r, reasons=(paying_again_text(r.mrr_cents, reactivated_days(acc.state, since, now_ms), _paid_plans(acc.state)),)
                        + r.reasons)
        acc.extras["at_risk_since_ms"], acc.extras["at_risk_risk"] = now_ms, r.risk
        acc.extras.pop("churned_ms", None)
    elif failed and since and since != now_ms and not churned and r.stage not in GONE_STAGES:
        kind, shown = "account_at_risk", _payment_failed_view(r)  # an update of the open case (QA22a F5)
    elif cut and since and since != now_ms and not churned and r.stage not in GONE_STAGES:
        kind, shown = "account_at_risk", _downgraded_view(r)  # the same for a downgrade of half the MRR (QA25b F2)
        acc.extras["down_told"] = now_ms
    shown = _keep_case(acc, kind, r, shown, since, now_ms)
    if kind is not None:
        alert = account_alert(account, kind, now_ms, shown)
        if kind == "account_churned":  # what the churn took: the win-back list's figure, on the alert the CRM gets
            alert["lost_mrr"] = acc.state.churned()[0] / 100
        alerts.append((account.encode("utf-8", "surrogatepass"), orjson.dumps(alert)))
    return r


def _keep_case(acc: AccountWork, kind: str | None, r: AccountRollup, shown: AccountRollup, since: int,
               now_ms: int) -> AccountRollup:
    """The case's own record once :func:`decide_alert` chose ``kind`` (None: no alert), and what the
    alert shows: a lost trial's churn closes its case, a churn is remembered (told once), a recovery
    forgets the churn and the time below the line and shows why the account is better."""
    if kind == "account_churned" and r.stage == "trial_lost":  # closes the lost trial's alert
        acc.extras["at_risk_since_ms"] = 0
        acc.extras.pop("at_risk_risk", None)
        acc.extras.pop("churned_ms", None)
    elif kind == "account_churned":
        acc.extras["churned_ms"] = now_ms
    elif kind == "account_recovered":
        acc.extras.pop("churned_ms", None)
        acc.extras.pop("down_told", None)
        acc.extras.pop("below_ms", None)
        shown = _recovered_view(acc, r, since, now_ms)
        acc.extras.pop("at_risk_risk", None)
    if (kind is not None and kind != "account_at_risk") or not acc.extras.get("at_risk_since_ms"):
        _forget_fixed_payment(acc.extras)  # told, or no alert open to tell it (a churn: no fix to tell later)
    return shown


def downgraded_now(extras: Mapping[str, object], now_ms: int) -> bool:
    """Whether the account was downgraded at ``now_ms`` by half its MRR or more (a downgrade that
    opens an ``account_at_risk`` alone: ``downgrade_risk`` at the at-risk line; not a smaller bill,
    not users' own subscriptions cancelled) and no update has told it yet (``down_told``): news an
    open case is updated with (``decide_alert``, QA25b F2).

    >>> down = [9, ["premium"], ["pro"], 14900, 3900]
    >>> downgraded_now({"down": down}, 9), downgraded_now({"down": down}, 10), downgraded_now({"down": down, "down_told": 9}, 9)
    (True, False, False)
    >>> downgraded_now({"down": [9, ["pro"], ["pro"], 6000, 4800]}, 9)  # a fifth cut: on the book, no alert alone
    False
    """
    down = kept_downgrade(extras.get("down"))
    return (down is not None and down.ts_ms == now_ms and extras.get("down_told") != now_ms and not bill_fall(down)
            and downgrade_risk(down) >= ACCOUNT_AT_RISK)


def _downgraded_view(r: AccountRollup) -> AccountRollup:
    """The update an open case gets when the account downgrades by half its MRR or more during it
    (QA25b F2): the downgrade first and its action, "review how the plan fits their use". Before,
    the open case swallowed it: on QA25b's marketplace 12 of 30 shops that went Premium -> Pro (74%
    of the MRR) while a case opened on January's slump was still open got no alert of their own,
    the CRM's last word "usage over the last 2 weeks down 43%" until their move to the free plan."""
    first = tuple(t for t in r.reasons if t.startswith(("downgraded from ", "MRR down from ")))
    return replace(r, reasons=first + tuple(t for t in r.reasons if t not in first), action=_REVIEW_PLAN)


def _payment_failed_view(r: AccountRollup) -> AccountRollup:
    """The update an open case gets when a payment fails during it (QA22a F5): the roll-up with the
    failure first and its action, "fix the payment with the billing contact". Before, the open
    alert swallowed it: 8 involuntary churners and 14 recovered past-due accounts of a streaming
    service, their case opened on silence, left the CRM's last word at "re-engage the silent users"."""
    first = tuple(t for t in r.reasons if t.startswith("payment failed "))
    return replace(r, reasons=first + tuple(t for t in r.reasons if t not in first), action=_FIX_PAYMENT)


def closes(acc: AccountWork, r: AccountRollup, since: int, back: bool, now_ms: int) -> bool:
    """Whether the open case (opened at ``since``) closes now: the risk below ``RECOVERED_BELOW``
    (a customer back paying after its announced churn, ``back``: below the at-risk line, QA20a
    F1), a churned case only by paying, and, unless a fact since the opening explains the fall (a
    reactivation, a conversion, a failed payment fixed) or the account is its one user (``sole``:
    it follows that user's own alert, which has its own no-flap rule), below the line since ``RECOVERY_HOLD_MS``
    (7 days) ago: ``below_ms``, kept while the risk stays below, forgotten when it is not. Why
    (QA20a F8): acc34's case closed 09-19 at 0.35, re-opened 09-21 at 0.53 on "usage over the
    last 2 weeks down 39%" and closed again 09-22 at 0.39, a case opened and closed within 26
    hours; on QA18's B2B history 19 of 176 recoveries were followed by an at-risk within a week.
    Held open, such an account keeps the case it was warned by (the later cancellation's lead
    counts from it); a recovery that lasts is told a week later."""
    churned = churn_announced_ms(acc.extras)
    if not (r.risk < RECOVERED_BELOW or back and r.risk < ACCOUNT_AT_RISK) or not (r.mrr_cents > 0 or not churned):
        acc.extras.pop("below_ms", None)
        return False
    if (back or churned or r.sole or reactivated_days(acc.state, since, now_ms) >= 0 or converted_days(acc.state, since, now_ms) >= 0
            or payment_fixed_days(acc.extras, since, now_ms) >= 0):
        return True
    first = int(acc.extras.setdefault("below_ms", now_ms))  # type: ignore[call-overload]
    return now_ms >= first + RECOVERY_HOLD_MS


def _paid_plans(state: AccountState) -> tuple[str, ...]:
    """The plans the account pays for (``active`` or ``past_due`` at an MRR above 0), sorted: what
    "paying again" names (review 17 F9: it named every plan in force, "Addon + Free 10.00").

    >>> from models.events import Event
    >>> from models.subscription import Subscription
    >>> state = AccountState()
    >>> for user, sub in (("u1", Subscription("active", "Free", 0)), ("u2", Subscription("active", "Addon", 1000)),
    ...                   ("u3", Subscription("trial", "Pro", 0, 9))):
    ...     _ = state.update(Event(user, 1, "subscription", user, 0.0, "x", sub))
    >>> _paid_plans(state)
    ('Addon',)
    """
    return tuple(sorted(s.sub.plan for s in state.subs.values() if s.sub.status in ("active", "past_due") and s.sub.mrr_cents > 0))


def converted_days(state: AccountState, since_ms: int, now_ms: int) -> float:
    """Days since an account that had never paid before ``since_ms`` (its at-risk alert's opening:
    a trial, a free plan) started paying, when it pays now; -1.0 otherwise (not a conversion: it
    paid before, a reactivation; or it does not pay). For the recovered alert's "converted" reason.

    >>> from models.events import Event
    >>> from models.subscription import Subscription
    >>> state = AccountState().update(Event("a", 0, "subscription", "s0", 0.0, "x", Subscription("trial", "Pro", 0, 9 * 86_400_000)))
    >>> converted_days(state, 4, 9)
    -1.0
    >>> _ = state.update(Event("a", 5 * 86_400_000, "subscription", "s1", 0.0, "x", Subscription("active", "Pro", 4999)))
    >>> converted_days(state, 4 * 86_400_000, 5 * 86_400_000), converted_days(state, 6 * 86_400_000, 6 * 86_400_000)
    (0.0, -1.0)
    """
    view = state.get() if state.subs else None
    if view is None or not view.customer or view.first_paid_ms < since_ms:
        return -1.0
    return max(0, now_ms - view.first_paid_ms) / 86_400_000


def reactivated_days(state: AccountState, since_ms: int, now_ms: int) -> float:
    """Days since an account that had paid before started paying again (a reactivation: its current
    paying spell began at or after ``since_ms``, the open alert's opening, after its first payment),
    when it pays now; -1.0 otherwise. For the recovered alert's "paying again: Pro 99.00 today"
    (QA pass 9 L2: a customer back after its churn recovered with only "risk down to 0% from 100%").

    >>> from models.events import Event
    >>> from models.subscription import Subscription
    >>> def sub(day, status, mrr):
    ...     return Event("a", day * 86_400_000, "subscription", f"s{day}", 0.0, "x", Subscription(status, "Pro", mrr))
    >>> state = AccountState().update(sub(1, "active", 9900)).update(sub(5, "cancelled", 0))
    >>> reactivated_days(state, 5 * 86_400_000, 6 * 86_400_000)
    -1.0
    >>> _ = state.update(sub(8, "active", 9900))
    >>> reactivated_days(state, 5 * 86_400_000, 8 * 86_400_000), reactivated_days(state, 9 * 86_400_000, 9 * 86_400_000)
    (0.0, -1.0)
    """
    if not state.subs or not state.mrr_cents():
        return -1.0
    spell = state.spell_start_ms if state.before_cents else state.at_ms
    if not state.first_paid_ms or state.first_paid_ms >= spell or spell < since_ms:
        return -1.0
    return max(0, now_ms - spell) / 86_400_000


def _past_due_subs(state: AccountState) -> list[str]:
    """The account's subscriptions in past due (their keys in hex: JSON-safe in the extras)."""
    return sorted(f"{key:x}" for key, s in state.subs.items() if s.sub.status == "past_due")


def note_payment(acc: AccountWork, now_ms: int) -> bool:
    """Keep the account's failed payment in the extras' ``past_due``, ``[fixed_ms, subscription keys]``:
    ``fixed_ms`` 0 while those subscriptions are past due; the event time at which one of them is
    seen paying again (status active: the payment fixed) once none is past due; dropped when they
    end otherwise (cancelled: no fix), and when, fixed, none of them pays any more (a trial since,
    cancelled: CI's property test, 2026-12-03, found "payment fixed 1 day ago (no longer past due)"
    on the recovery of an account gone from paid to a trial, MRR 0). Called at every review (``decide_alert``: after each copy, so
    a statement is seen at its time). For the recovered alert's "payment fixed" reason
    (:func:`payment_fixed_days`): the state keeps no trace of a past due once it is paid
    (models.revenue), and a recovery must say that the payment was fixed when that is why.
    Returns whether a payment failed now (a subscription past due that was not before): news an
    open case is updated with (``decide_alert``, QA22a F5).

    >>> from models.events import Event
    >>> from models.subscription import Subscription
    >>> def sub(day, status):
    ...     return Event("u", day * 86_400_000, "subscription", f"s{day}", 0.0, "a", Subscription(status, "Pro", 4999))
    >>> acc = AccountWork(AccountState().update(sub(1, "active")).update(sub(2, "past_due")), {}, {})
    >>> note_payment(acc, 2 * 86_400_000), acc.extras["past_due"][0], note_payment(acc, 2 * 86_400_000)
    (True, 0, False)
    >>> _ = acc.state.update(sub(5, "active")); _ = note_payment(acc, 5 * 86_400_000); acc.extras["past_due"][0]
    432000000
    >>> _ = acc.state.update(sub(6, "trial")); _ = note_payment(acc, 6 * 86_400_000); "past_due" in acc.extras
    False
    """
    due = _past_due_subs(acc.state)
    kept = acc.extras.get("past_due")
    if "unpaid" in acc.extras and acc.state.mrr_cents():  # paying again: that churn is over
        acc.extras.pop("unpaid")
    if due:
        acc.extras["past_due"] = [0, due]
        held = kept[1] if isinstance(kept, list) and len(kept) == 2 and kept[0] == 0 and isinstance(kept[1], list) else []
        return not set(due) <= set(held)
    elif isinstance(kept, list) and len(kept) == 2 and isinstance(kept[1], list):
        paying = any(s is not None and s.sub.status == "active"
                     for s in (acc.state.subs.get(int(key, 16)) for key in kept[1] if isinstance(key, str)))
        if not paying:  # never fixed, or the fix undone (a trial since, cancelled): no fix to tell
            acc.extras.pop("past_due")
            lost, when = acc.state.churned()
            if kept[0] == 0 and lost:  # cancelled unpaid: an involuntary churn, said while it lasts (QA22a F5)
                acc.extras["unpaid"] = when
        elif kept[0] == 0:
            acc.extras["past_due"] = [now_ms, kept[1]]
    return False


def _forget_fixed_payment(extras: dict[str, object]) -> None:
    """Drop a fixed payment from the extras (a past due still open is kept: its fix is to come)."""
    kept = extras.get("past_due")
    if isinstance(kept, list) and kept and kept[0]:
        extras.pop("past_due")


def payment_fixed_days(extras: Mapping[str, object], since_ms: int, now_ms: int) -> float:
    """Days since the account's failed payment was fixed (:func:`note_payment`), when that was at or
    after ``since_ms`` (the open alert's opening); -1.0 otherwise. For the recovered alert's
    "payment fixed today (no longer past due)" reason, as :func:`converted_days` for a conversion.

    >>> payment_fixed_days({"past_due": [5 * 86_400_000, ["9f"]]}, 0, 5 * 86_400_000), payment_fixed_days({}, 0, 9)
    (0.0, -1.0)
    """
    kept = extras.get("past_due")
    fixed = kept[0] if isinstance(kept, list) and kept and isinstance(kept[0], int) else 0
    if not fixed or fixed < since_ms:
        return -1.0
    return max(0, now_ms - fixed) / 86_400_000


def opened_risk(extras: Mapping[str, object], since_ms: int) -> float:
    """The risk the open at-risk alert (opened at ``since_ms``) was raised with: ``at_risk_risk``,
    or for an alert the previous version opened (it kept none) that alert's row in the account's
    list (``alert_log``); 0.0 when neither says (the recovery then does not quote it).

    >>> opened_risk({"at_risk_risk": 0.8}, 5000), opened_risk({"log": [["id", "account_at_risk", 5000, "at_risk", 0.6, []]]}, 5000)
    (0.8, 0.6)
    """
    kept = extras.get("at_risk_risk")
    if isinstance(kept, (int, float)) and kept > 0:
        return float(kept)
    log = extras.get(EXTRAS_FIELD)
    rows = log if isinstance(log, list) else []
    return max((float(r[4]) for r in rows if isinstance(r, list) and len(r) > 4 and r[2] == since_ms
                and r[1] in ("account_at_risk", "account_churned") and isinstance(r[4], (int, float))), default=0.0)


def churn_announced_ms(extras: Mapping[str, object]) -> int:
    """When the open at-risk alert's churn was announced (0: not yet): ``churned_ms``, or for an
    alert the previous version opened as ``account_churned`` (it kept no ``churned_ms``) that
    alert in the account's list (``alert_log``) at or after ``at_risk_since_ms``.

    >>> churn_announced_ms({"at_risk_since_ms": 5000, "log": [["id", "account_churned", 5000, "churned", 1.0, []]]})
    5000
    """
    churned = int(extras.get("churned_ms", 0) or 0)  # type: ignore[call-overload]
    since = int(extras.get("at_risk_since_ms", 0) or 0)  # type: ignore[call-overload]
    if churned or not since:
        return churned
    log = extras.get(EXTRAS_FIELD)
    rows = log if isinstance(log, list) else []
    return min((int(r[2]) for r in rows if isinstance(r, list) and len(r) > 2 and r[1] == "account_churned"
                and isinstance(r[2], int) and r[2] >= since), default=0)


def decide_reminders(account: str, acc: AccountWork, now_ms: int, r: AccountRollup, alerts: list[KafkaRecord]) -> None:
    """Trial ending: a reminder 72 h and one 24 h before ``trial_ends`` for a trial whose users say
    it will not convert (health below 50: silent users, falling usage; not a user's own account,
    whose use the account does not see: ``AccountRollup.usage_known``). Each reminder is decided
    once per trial end (kept in the extras), with a stable id (account, kind, trial end).

    A reminder falling due at the instant the account's at-risk alert opens, by the trial rule
    (``AccountRollup.trial``: its reasons say "trial ends in 72 h and nobody has used
    it yet"), is not sent: the at-risk alert carries the message, and it is the one the CRM's case
    follows (closed by ``account_recovered`` or ``account_churned``). Before (QA6 L7) each unused
    trial got ``account_at_risk`` and ``trial_ending`` with the same risk, action and reasons at the
    same instant, two tasks for one fact. The reminder counts as decided; the next one (24 h) is
    sent, being news. Nor is one due while every user is gone (stage ``lapsed``, QA16 F11: nobody
    left to convert; counted as decided). Called after ``decide_alert`` at the same review (``revenue._decide``)."""
    ends = acc.state.get().trial_ends_ms if acc.state.subs else 0
    if not ends or now_ms >= ends:
        return
    done = acc.extras.get("reminded")
    sent: list[int] = list(done[1]) if isinstance(done, list) and done[0] == ends else []
    told = _trial_alert_opened(acc, now_ms, r)
    for hours in TRIAL_REMINDERS_H:
        if hours in sent or now_ms < ends - hours * 3_600_000:
            continue
        sent.append(hours)
        if r.health < _WONT_CONVERT_HEALTH and r.usage_known and not told and r.stage != "lapsed":  # a user's own account: its use is unknown (QA14 F1)
            alert = account_alert(account, "trial_ending", now_ms, r)
            alert["alert_id"] = alert_id(account, "trial_ending", f"{hours}h", ends)
            alert["trial_ends_ms"], alert["hours_left"] = ends, hours_left(ends, now_ms)
            alert["action"] = trial_action(ends, now_ms)  # before the end: the reminders stop at it (above)
            alerts.append((account.encode("utf-8", "surrogatepass"), orjson.dumps(alert)))
    acc.extras["reminded"] = [ends, sent]


def _trial_alert_opened(acc: AccountWork, now_ms: int, r: AccountRollup) -> bool:
    """Did an at-risk alert open at ``now_ms`` (this review) with the trial rule among its reasons?
    Then a reminder due now would repeat it (:func:`decide_reminders`). The roll-up's own record
    that the rule held (``r.trial``), not the rule tested again on ``r.usage``: that is rounded to
    4 places, so usage in [0.49995, 0.5) held the rule yet failed the retest (review 2026-12-03)."""
    opened = int(acc.extras.get("at_risk_since_ms", 0) or 0) == now_ms  # type: ignore[call-overload]
    return opened and r.trial


def next_due_s(acc: AccountWork, now_ms: int) -> int:
    """When the account must be looked at again without copies (0: never): a member turning
    silent, a trial reminder falling due, a stated renewal coming near (its window: a quarter of its billing period, at least 30 days)."""
    times = member_deadlines_ms(acc, now_ms)
    other = other_due_ms(acc, now_ms)
    if other:
        times.append(other)
    return (min(times) + 999) // 1000 if times else 0


def member_deadlines_ms(acc: AccountWork, now_ms: int) -> list[int]:
    """The members' silence deadlines after ``now_ms`` (whole seconds; a member never seen has
    none): when each turns silent, after 14 days or its own rhythm (``silent_after_s``, QA18 F4)."""
    cycle = kept_cycle(acc.extras, now_ms)  # a monthly burst rhythm: silent once a batch is missed (QA23b F3)
    times = ((m.last_seen_s + silent_after_s(m, cycle)) * 1000 for m in acc.members.values() if m.last_seen_s)
    return [t for t in times if t > now_ms]


def other_due_ms(acc: AccountWork, now_ms: int) -> int:
    """The account's next deadline after ``now_ms`` that is not a member's (0: none): a trial
    reminder falling due, a stated renewal coming near, the end of a quiet period's window (its
    2 weeks after: a member not back is silent from then on), the end of a price rise's 30 days
    (an account without members has no other deadline to close its alert by). Costs nothing per member."""
    times = [t for t in (_renewal_near_ms(acc.state, now_ms), next_quiet_end_ms(acc.quiet, now_ms)) if t]
    below = int(acc.extras.get("below_ms", 0) or 0)  # type: ignore[call-overload]
    if below and below + RECOVERY_HOLD_MS > now_ms:  # the hold of a recovery ends (closes)
        times.append(below + RECOVERY_HOLD_MS)
    rise = price_rise(acc.extras)
    if rise is not None and rise.ts_ms + RISE_COUNTS_MS > now_ms:  # its 30 days end: the risk falls (QA19 F7)
        times.append(rise.ts_ms + RISE_COUNTS_MS)
    ends = acc.state.get().trial_ends_ms if acc.state.subs else 0
    if ends:
        done = acc.extras.get("reminded")
        sent = done[1] if isinstance(done, list) and done[0] == ends else []
        times += [ends - h * 3_600_000 for h in TRIAL_REMINDERS_H if h not in sent and ends - h * 3_600_000 > now_ms]
    return min(times, default=0)


def risk_drops_ms(acc: AccountWork) -> list[int]:
    """The times after which the roll-up's risk may fall without a copy (a member leaving the 90-day
    window of users, a downgrade older than 30 days, a renewal passed). Between two of them, with
    no copy, the risk only rises: members turn silent, usage decays (``models.account_health``), a
    renewal or a trial end comes near. A trial end passed is no fall: the trial rule holds on while
    the status says trial (review 4, 2026-12-03), and only a statement (a copy) ends it."""
    times = [m.last_seen_s * 1000 + _USERS_WINDOW_MS for m in acc.members.values() if m.last_seen_s]
    seen = max((m.last_seen_s for m in acc.members.values()), default=0)
    cycle = kept_cycle(acc.extras, seen * 1000) if seen else None
    if cycle is not None:  # a monthly burst rhythm: each window's end judges a new batch, which may be larger (QA23b F3)
        first = cycle.occurrence(seen)
        times += [cycle.end_s(k) * 1000 for k in range(first, first + 3)]
    down = acc.extras.get("down")
    if down:
        times.append(int(down[0]) + _DOWNGRADE_RECENT_MS)  # type: ignore[index]
    rise = price_rise(acc.extras)
    if rise is not None:
        times.append(rise.ts_ms + RISE_COUNTS_MS)
    view = acc.state.get() if acc.state.subs else None
    if view is not None:
        times += [t + RENEWAL_GRACE_MS + 1 for t in view.period_ends_ms]  # passed with its grace (AccountView.renews_at)
    return times


def usage_counts(state: AccountState, lo_ms: int, hi_ms: int) -> bool:
    """Whether the members' usage can move the roll-up's risk between ``lo_ms`` and ``hi_ms``: a
    renewal near (within its window, ``AccountView.renewal_window_ms``), or a trial ending within 3 days or ended while the status still says
    trial (``models.account_health``), at some time between them."""
    view = state.get() if state.subs else None
    if view is not None and any(e - view.renewal_window_ms(e) <= hi_ms and e + RENEWAL_GRACE_MS >= lo_ms for e in view.period_ends_ms):
        return True
    ends = view.trial_ends_ms if in_trial(view) else 0  # a trial beside a free plan too (review 18 L-2)
    return bool(ends) and ends - _TRIAL_SOON_MS <= hi_ms


def trend_counts(acc: AccountWork, hi_ms: int) -> bool:
    """Whether the trend rule (``models.account_health.trend_risk``) adds to the account's risk at
    ``hi_ms``, the end of a stretch of deadlines without a copy: its 2-week figure against the
    3-month rate only falls there (both decay, the 2-week one faster), so if it counts anywhere in
    the stretch it counts at its end. The catch-up's reviews (streams.worker.revenue) then do not
    judge the stretch from the users' silence alone, as where usage counts (:func:`usage_counts`).
    One pass over the members, no roll-up."""
    if "trend" not in acc.extras:
        return False
    billing = acc.state.get().billing_keys if acc.state.subs else ()
    return 0.0 <= trend_usage_at(kept_trend(acc.extras), list(acc.members.values()), billing, hi_ms // 1000) < TREND_FROM


def account_alert(account: str, kind: str, now_ms: int, r: AccountRollup) -> dict[str, object]:
    """The alert's JSON (docs/ALERTS.md). ``usage_unknown: true`` (absent otherwise, as
    ``judged_late``) on the alert of an account that does not see its users' use: a user's own
    account sent without ``account_id`` (B2C), whose ``health``, ``users`` and ``silent_users`` are 0
    because nothing is seen, not because nobody uses it (QA19 F7: a neobank's 335 premium
    cancellations read "health 0, users 0", 334 of them by customers still banking then). The
    fields stay integers for schema 1's consumers; the flag says how to read them."""
    alert: dict[str, object] = {
        "schema": ACCOUNT_ALERT_SCHEMA,
        "delivery": "at-least-once; de-duplicate on alert_id",
        "alert_id": alert_id(account, kind, "", now_ms),
        "kind": kind,
        "account_id": account,
        "event_time_ms": now_ms,
        "risk": r.risk,
        "health": r.health,
        "temperature": r.temperature,
        "stage": r.stage,
        "mrr": r.mrr_cents / 100,
        "users": r.users,
        "silent_users": r.silent,
        "action": r.action,
        "reasons": list(r.reasons),
    }
    if not r.usage_known:
        alert["usage_unknown"] = True
    return alert


def withhold_before(alerts: Sequence[KafkaRecord], from_ms: int) -> tuple[list[KafkaRecord], dict[str, int]]:
    """The account alerts to publish and, by kind, those withheld: an event time before ``from_ms``
    (``CHURNWATCH_ALERTS_FROM``, onboarding a history: QA14 F9 left the accounts' first weeks
    reaching the CRM). As for users, the account's state and extras keep the alert (open or closed),
    so what follows the date is what it would have been; only the record is not sent. Account
    alerts are few (a handful a cycle), so reading each one's time back from its JSON costs nothing.

    >>> rec = lambda kind, t: (b"a", orjson.dumps({"kind": kind, "event_time_ms": t}))
    >>> kept, held = withhold_before([rec("account_at_risk", 5), rec("trial_ending", 10)], 10)
    >>> [orjson.loads(v)["kind"] for _, v in kept], held
    (['trial_ending'], {'account_at_risk': 1})
    """
    kept: list[KafkaRecord] = []
    withheld: dict[str, int] = {}
    for record in alerts:
        d = orjson.loads(record[1])
        if d["event_time_ms"] < from_ms:
            withheld[d["kind"]] = withheld.get(d["kind"], 0) + 1
        else:
            kept.append(record)
    return kept, withheld
