"""Lifecycle stage: new, active, declining, dormant, churned, reactivated, by written rules.

The rules, first match wins (durations in days, ``gap`` = the user's usual interval between
active days, models.signals.visit_gap_days):

0. **declining**, not dormant or churned, while a paid period runs (the latest ``subscription``
   statement is ``active`` with an MRR above 0 and its period end, models.state
   ``period_end_day``, plus a day's grace for the renewal statement, is after now) and the
   silence of rules 1-2 holds: "Paying" below. While a
   pause runs (the latest statement is ``paused`` and its end, the resume date, is after now) no
   silence rule applies: the stage is held where it was when the pause began: "Paused" below.
1. **churned** - a cancellation with no activity on a later day (at once), or silence >=
   max(churned_days, churned_factor x lapse gap).
2. **dormant** - silence >= max(dormant_days, dormant_factor x lapse gap). The lapse gap is
   ``gap``, or for a repeat buyer with a re-order rhythm the longer of it and their usual interval
   between orders (:func:`lapse_gap_days`, QA12 F2); but for such a buyer who also uses the
   product on a rhythm of their own (:func:`uses_own_rhythm`) ``gap``, once their re-order is
   late too (rules 1-2 alike: "Neither using nor buying" below). Neither rule holds, for a buyer
   without a re-order rhythm seen on nothing since their last order, before that order is late
   (:func:`lapse_floor_days`).
3. **reactivated** - the previous stage was dormant or churned (lapsed: the win-back list) and the
   user is back (rules 1-2 no longer hold), and for ``new_days`` after that return. A return is a
   win-back signal.
4. **new** - first seen less than ``new_days`` ago; and, for a user active on a single (UTC) day
   so far, after that too until the overdue test of rule 5 holds.
5. **declining** - silence >= overdue_factor x gap ("overdue"), or, for users who are active
   several times a week (gap <= 3.5 days, so that one week says something), the 7-day rate fell
   below decline_ratio x the 4-week rate. Once declining, the rate must recover to
   (1 + decline_ratio) / 2 of the baseline to leave (hysteresis: no active/declining flapping).
6. **active** - everything else.

Why a one-day user stays new (QA pass 4, 2026-12-03): such a user has no interval of their own
(models.signals: the population's stands in), so "active" would claim a rhythm nobody has seen.
Before, "new" ended at first seen + ``new_days`` while overdue starts at last seen + overdue_factor x
gap, about as late for a one-day user (gap = the population's + their first day's span), so they
fell through to "active" for a few minutes to days and got a ``new -> active`` alert with nothing
to say, then ``active -> declining``. Now only a second active day or the overdue test ends "new":
a one-day user who never returns goes ``new -> declining``; one who is already overdue at
``new_days`` goes there then, as before.

Why a return from dormant too (2026-12-05; QA16 F3's leftover, docs/SCORES.md "Just back"): before,
only a return from churned was "reactivated". A daily user silent 25 or 35 days (dormant, not
churned) came back "declining": rule 5's rate test compares the 7-day count, which holds the
return, with a 4-week count that still holds the activity from before the break, so the day the
user came back read as a fall: a ``dormant -> declining`` alert on it, the save list, risk 0.28 /
0.32 with the shipped default (0.73 / 0.82 with a trained model), "active" a day or two later.
The same misreading the stage exists for (models.lifecycle JUDGED), and the win-back the return
answers was made from the dormant stage as well (LAPSED; the simulator's returners, "dormant or
churned for a while", are expected to report ``reactivated``: streams.offline.simulate).

Paying (QA21 F1, 2026-12-05): a statement is no activity, so a subscribe-and-save customer who
pays every month and rarely visits went dormant, then churned, while the subscription renewed:
325 dormant and 26 churned (``win_back``) before any cancellation in QA21's shop, two paying
subscribers at the head of the win-back list. A customer whose paid period runs has not lapsed:
their silence makes them declining (the save list, at-risk alerts, a check-in before the
renewal), never dormant or churned, so never on the win-back list nor told ``win_back``
(models.ranking and models.actions read the stage). The risk is unchanged (docs/SCORES.md,
"Renewal: the exit opportunity"). From the period's end without a renewal statement, rules 1-2
apply as before, after the renewal's grace, a day (models.signals.RENEWAL_GRACE_S: billing systems
state a renewal at or after the end, Stripe about an hour later; QA23b F6, 2026-12-05: 177
``stage_changed`` to dormant or churned at the end's midnight, back to declining 1-2 h later);
an explicit cancellation still churns at once (a ``cancelled`` statement ends the paid period:
models.state), a cancellation at the period end at that end.

Paused (QA22a F1, 2026-12-05): a streaming service's subscriber who pauses for 1-3 months watches
nothing, by design; 84 of QA22a's 146 paused users reached churned during the pause, 105 got an
at-risk alert, 35 ended on the win-back list. While a ``paused`` statement's pause runs
(models.signals ``paused_until_s``), the stage is the one the user had when it began (a user
lapsed before it stays so: the pause explains no silence before it), no at-risk alert opens
(models.engine.alert_may_open) and the next review is the pause's end, where every rule applies
again to the silence as it is then.

Neither using nor buying (QA25a F3, 2026-12-05): a prepaid operator's subscribers top up every
~15 days (declared purchases) and call, text and use data most days. QA12 F2's hold (not lapsed
before 3 order intervals) kept SIMs dropped for good "declining" for ~45 days: 24 of the 53 rows of
the live save list, rows 1-13 among them, were SIMs with no use for 35-43 days, temperature 0. A
buyer whose use has a rhythm of its own (:func:`uses_own_rhythm`: active on three days or more
besides their purchase days, and several times a week, the rate test's ``TREND_MAX_GAP_DAYS``) is
lapsed when both rhythms say so: silent past rules 1-2's lines by their use, and their re-order
late (models.signals.late_at_days, the re-order alert's own line: a customer is still not lapsed
before their next order is late). A buyer who browses between orders less often (QA12's coffee
buyers, the simulator's buyers) or whose only events are purchases (CDNOW) keeps the order hold.
Never later than before (the use lines are at most the order-scaled ones, and an order silent 3
intervals is late), so it only moves users from the save list to the win-back list.

Why personal thresholds: a monthly buyer silent for three weeks is on schedule; a daily user
silent for three weeks is gone. The fixed days are floors so that daily users are not called
dormant after three days.

The stage depends on the previous stage (rules 3 and 5), which the state carries; the engine
calls :func:`next_change_s` to know when a silent user's stage can change next.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from models.signals import (REORDER_LATE_FACTOR, REORDER_MIN_INTERVALS, Signals, bought_last, late_at_days, order_gap_days,
                            paid_period_passes_s, paid_period_runs)
from models.state import DAY_S, STAGES, Stage, UserState

if TYPE_CHECKING:  # pragma: no cover
    from models.compiled import CompiledModel
    from models.model import ChurnModel

__all__ = ["JUDGED", "LAPSED", "REACHABLE", "RECOVERABLE", "RETURN_SHARE", "TREND_MAX_GAP_DAYS", "back_share", "churned_after_days", "declining_cause",
           "dormant_after_days", "lapse_floor_days", "lapse_gap_days", "next_change_s", "stage_of", "uses_own_rhythm"]

#: Users with a usual interval above this are judged by overdue only: a week of their activity
#: holds too few visits for a rate to mean anything.
TREND_MAX_GAP_DAYS: Final[float] = 3.5
#: Stages of users who can still be saved (at-risk alerts and the save list are for them), and
#: of users already lapsed (the win-back list: models.ranking).
REACHABLE: Final[frozenset[str]] = frozenset(("new", "active", "declining", "reactivated"))
LAPSED: Final[frozenset[str]] = frozenset(("dormant", "churned"))
#: Reachable users whose risk is acted on: every reachable stage but "reactivated", the first
#: ``new_days`` back from dormant or churned (rule 3). An at-risk alert opens only in these stages
#: (models.engine) and the save list ranks only them (models.ranking): just back, the risk's
#: decline features compare a 7-day count that holds the return with a 4-week and a 90-day
#: baseline that still hold the activity from before the break, and the gap trend holds the
#: break itself, so the risk reads "declining" on the very days that say the user came back
#: (QA12 F3 for the alerts, QA16 F3 for the save list: docs/SCORES.md, "Just back: neither an
#: alert nor the save list"). The stage's end is a review (next_change_s), where both judge the
#: user again.
JUDGED: Final[frozenset[str]] = REACHABLE - {"reactivated"}
#: Stages that say nothing against the user: the only ones a "recovered" alert may carry
#: (models.engine). Declining (rule 5, with its hysteresis), dormant and churned say the user is
#: getting worse or is gone, which a recovery would contradict (QA 2026-12).
RECOVERABLE: Final[frozenset[str]] = frozenset(("new", "active", "reactivated"))
#: The share of their own 3-month rate a user's last week and last 4 weeks must both be back at
#: (:func:`back_share`) for an open at-risk alert to close as "recovered" (models.engine). Chosen
#: on QA19's bank (docs/SCORES.md, "Recovered: back at their own level"): at 0.9 the bank's
#: switchers' recoveries mid-decline fell from 63 to 16, at 0.8 only to 45.
RETURN_SHARE: Final[float] = 0.9
_CHURNED: Final[int] = STAGES.index("churned")
_DORMANT: Final[int] = STAGES.index("dormant")
_REACTIVATED: Final[int] = STAGES.index("reactivated")
_DECLINING: Final[int] = STAGES.index("declining")
_INV_DAY: Final[float] = 1.0 / DAY_S


def dormant_after_days(gap_days: float, model: "ChurnModel") -> float:
    """Silence, in days, after which this user is dormant."""
    return _dormant_after(gap_days, model.compiled)


def churned_after_days(gap_days: float, model: "ChurnModel") -> float:
    """Silence, in days, after which this user is churned."""
    return _churned_after(gap_days, model.compiled)


# The thresholds from the model's compiled form (models.compiled: its numbers are the model's,
# read from a struct instead of the model's attributes, at every review)
def _dormant_after(gap_days: float, c: "CompiledModel") -> float:
    personal = c.dormant_factor * gap_days
    return personal if personal > c.dormant_days else c.dormant_days


def _churned_after(gap_days: float, c: "CompiledModel") -> float:
    personal = c.churned_factor * gap_days
    return personal if personal > c.churned_days else c.churned_days


def lapse_gap_days(sig: Signals) -> float:
    """The usual interval rules 1-2 (churned, dormant) scale by: the visit interval, or, for a
    repeat buyer with a re-order rhythm (models.signals.REORDER_MIN_INTERVALS orders apart or
    more), the longer of it and their usual interval between orders (models.signals.order_gap_days).

    Why (QA12 F2): a buyer who browses between orders was dormant at 3 visit intervals, in QA12's
    shop a median 0.2 of their re-order period (a 42-day coffee buyer dormant 18 days after their
    last visit), so the re-order alert (models.signals.reorder_late, at 1.6 order intervals) could
    never reach them: a dormant user is on the win-back list, not the save list. A customer is not
    lapsed before their next order is even late. Constant in silence (neither interval moves
    without an event), so :func:`next_change_s` keeps its exact seconds."""
    gap = sig.visit_gap_days
    if sig.purchase_x >= REORDER_MIN_INTERVALS and not uses_own_rhythm(sig):
        orders = order_gap_days(sig)
        if orders > gap:
            return orders
    return gap


def uses_own_rhythm(sig: Signals) -> bool:
    """Whether a repeat buyer with a re-order rhythm also uses the product on a rhythm of their own
    (module docstring, "Neither using nor buying"): active on three days or more besides their
    purchase days (``active_days`` over ``n_purchases`` by more than REORDER_MIN_INTERVALS: a use
    with a repeated interval of its own, the re-order rule's count), and several times a week
    (``visit_gap_days`` within :data:`TREND_MAX_GAP_DAYS`, the line from which rule 5 reads a
    week's rate: a week of their silence says something). Such a user is lapsed by their use once
    their re-order is late (:func:`lapse_gap_days` reads the visits alone for them). False for a
    buyer seen only on purchase days (CDNOW) or browsing less often between orders (QA12 F2's
    hold stays theirs). Fixed in silence (no count moves without an event)."""
    return (sig.purchase_x >= REORDER_MIN_INTERVALS and sig.visit_gap_days <= TREND_MAX_GAP_DAYS
            and sig.active_days > sig.n_purchases + REORDER_MIN_INTERVALS)


def _order_lapsed(sig: Signals) -> bool:
    """Rules 1-2's second test, for a user who :func:`uses_own_rhythm`: their re-order is late
    (models.signals.late_at_days); true for everybody else (their lapse gap holds the orders)."""
    return not uses_own_rhythm(sig) or sig.purchase_silence_days >= late_at_days(sig)


def lapse_floor_days(sig: Signals) -> float:
    """The silence (days) before which rules 1-2 do not hold for a buyer without a re-order rhythm
    seen on nothing since their last order (models.signals.bought_last: purchase-only data, a
    catalogue's): the time their next order is **late**, :data:`models.signals.REORDER_LATE_FACTOR`
    (ln 5 = 1.61) times the interval it is due at (the population's ``purchase_gap_days`` for a
    one-order buyer, which ``first_return_due_s`` waits for; their own, models.signals.order_gap_days,
    for two order days); 0 for everybody else (a buyer with a rhythm is not lapsed before 3 of their
    order intervals already: :func:`lapse_gap_days`).

    Why (2026-12-05, CDNOW in benchmarks/QUALITY.md): QA12 F2's "a customer is not lapsed before
    their next order is even late" held for buyers with a rhythm only. A one-order customer lapsed
    by the visit prior, dormant at 21 days under the shipped default, before their first re-order
    was even due at 30, where ``first_return_due_s`` lets the save alert open: it never could. On
    CDNOW's judged half none of the 84 churners with two order days got an at-risk alert in the
    silence before their second, 48 of them none at all (a median 157 days between the two). With
    the floor the alert opens at the due time when the risk says so, and the customer lapses at the
    late time (48.3 days in the default: churned at once, the floor being past ``churned_days``).
    Only a floor, not a new scale: dormant and churned stay at 3 and 6 lapse gaps where those are
    later, so a one-order customer's churn, and the expiry of their state ``kept_days`` after it
    (models.engine), move from 45 to 48.3 days after the order, no more. Constant in
    silence (no interval moves without an event; both silences grow alike), so
    :func:`next_change_s` keeps its exact seconds."""
    if sig.purchase_x >= REORDER_MIN_INTERVALS or not bought_last(sig):
        return 0.0
    due = order_gap_days(sig) if sig.purchase_x >= 1 else sig.purchase_gap_days
    return REORDER_LATE_FACTOR * due


def _trend_exit(c: "CompiledModel") -> float:
    return (1.0 + c.decline_ratio) / 2.0


def stage_of(st: UserState, sig: Signals, model: "ChurnModel", c: "CompiledModel | None" = None) -> Stage:
    """The stage at ``sig.now_s`` given the previous stage stored in ``st`` (module docstring).

    >>> from models.model import ChurnModel
    >>> from models.signals import compute_signals
    >>> st = UserState(first_seen_s=0, last_seen_s=60 * DAY_S, n_events=30, active_days=30)
    >>> [stage_of(st, compute_signals(st, (60 + d) * DAY_S, ChurnModel()), ChurnModel()) for d in (1, 5, 30, 60)]
    ['active', 'declining', 'dormant', 'churned']
    """
    if sig.cancelled or st.n_events == 0 and st.cancelled_s:
        return "churned"
    if sig.paused_until_s > sig.now_s:  # a pause runs: its silence says nothing (rule 0, "Paused")
        return _paused_stage(st)
    if c is None:  # a caller holding model.compiled hands it down (models.scoring.assess)
        c = model.compiled
    silence, lapse, floor = sig.silence_days, lapse_gap_days(sig), lapse_floor_days(sig)
    churned = silence >= _churned_after(lapse, c) and silence >= floor
    if (churned or silence >= _dormant_after(lapse, c) and silence >= floor) and _order_lapsed(sig):
        if paid_period_runs(sig):  # a customer to save, not lapsed (rule 0)
            return "declining"
        return "churned" if churned else "dormant"
    since = st.stage_since_s
    if since and (st.stage == _CHURNED or st.stage == _DORMANT):  # back from a lapse (rule 3)
        return "reactivated"
    if since and st.stage == _REACTIVATED and sig.now_s - since < c.new_days * DAY_S:
        return "reactivated"
    if _overdue(sig, c):
        return "new" if sig.age_days < c.new_days else "declining"
    if sig.age_days < c.new_days or st.active_days == 1:  # a single day shows no rhythm to be active on
        return "new"
    if _rate_down(st, sig, c):
        return "declining"
    return "active"


def _paused_stage(st: UserState) -> Stage:
    """The stage while a pause runs (rule 0, "Paused"): the one the user had when it began, held
    (the pause's silence is no news; reviewed at its end: :func:`next_change_s`). A user lapsed
    before the pause stays lapsed (the pause says nothing of the silence before it, and a change
    would have no cause to tell); one never reviewed is active."""
    return STAGES[st.stage] if st.stage_since_s else "active"


def _overdue(sig: Signals, c: "CompiledModel") -> bool:
    """Rule 5's silence test: silent for ``overdue_factor`` usual intervals or more."""
    return sig.visit_overdue >= c.overdue_factor


def _rate_down(st: UserState, sig: Signals, c: "CompiledModel") -> bool:
    """Rule 5's rate test, for a user active several times a week: the 7-day rate under
    ``decline_ratio`` x the 4-week one, or, already declining, not yet back to the exit line."""
    if sig.visit_gap_days > TREND_MAX_GAP_DAYS:
        return False
    limit = _trend_exit(c) if st.stage_since_s and st.stage == _DECLINING else c.decline_ratio
    return sig.trend < limit


def back_share(sig: Signals) -> float:
    """How far the user's own activity is back at their usual level: the lower of their 7-day and
    4-week rates, as a share of their 3-month rate (decayed counters, young-account corrected:
    models.signals ``trend`` x ``trend_long`` and ``trend_long``; 1.0 where undefined).

    Why both (QA19 F6): a bank's customers moving their money out (salary stopped, card use fading
    over two months) came back under the risk's exit line on a few events, a bill paid, a week of
    app visits, and got "recovered" 63 times, a week or three before they closed the account. A
    week's rate alone is fooled by such a burst (their 7-day rate was a median 0.75 of the 3-month
    one, up to 1.0); a user who is back is back over the weeks too. Falls in silence (both rates
    do faster than the 3-month one), so it never reaches the line without an event."""
    week = sig.trend * sig.trend_long
    return week if week < sig.trend_long else sig.trend_long


def declining_cause(st: UserState, sig: Signals, c: "CompiledModel") -> str:
    """Which test of rule 5 makes :func:`stage_of` find the user declining at ``sig.now_s`` (``st``
    as it gave that stage): "overdue" (the silence), "rate" (the 7-day rate against the 4-week
    one, with its hysteresis), "" neither. The very tests :func:`stage_of` makes, so that the
    reasons of a change to declining (models.reasons) name the cause the lifecycle acted on."""
    if _overdue(sig, c):
        return "overdue"
    return "rate" if _rate_down(st, sig, c) else ""


def _first_second(start_s: int, days: float, scale: float, threshold: float) -> int:
    """The first whole second ``t`` from ``start_s + days`` on at which
    ``(t - start_s) / DAY_S / scale >= threshold`` (the very test :func:`stage_of` makes, same
    float arithmetic; ``scale`` 1.0 for a plain number of days: x / 1.0 is x exactly): exact,
    not one second late. A test written out, not a closure: the engine asks this at every review,
    and a closure per call and a boxed epoch second per test cost more than the test."""
    t = start_s + int(math.ceil(days * DAY_S))
    while not (t - start_s) * _INV_DAY / scale >= threshold:  # float rounding can leave the exact second one short
        t += 1
    while t - 1 > start_s and (t - 1 - start_s) * _INV_DAY / scale >= threshold:
        t -= 1
    return t


def _first_second_s(start_s: int, days: float) -> int:
    """:func:`_first_second` for the test ``t - start_s >= days * DAY_S`` (the end of "reactivated")."""
    limit = days * DAY_S
    t = start_s + int(math.ceil(limit))
    while not t - start_s >= limit:
        t += 1
    while t - 1 > start_s and t - 1 - start_s >= limit:
        t -= 1
    return t


#: Slope of log(7-day rate / 4-week rate) in silence, per day, leaving out the young-account
#: correction (which only raises the ratio): 1/7 - 1/28.
_TREND_SLOPE: Final[float] = 1.0 / 7.0 - 1.0 / 28.0


def next_change_s(st: UserState, sig: Signals, model: "ChurnModel", tolerance_s: int = 60,
                  c: "CompiledModel | None" = None) -> int:
    """The earliest event time after ``sig.now_s`` at which the stage can change if the user stays
    silent, or 0 when it cannot (churned stays churned until an event).

    Candidates are threshold crossings: the end of "new" (for a one-day user the later of it and
    overdue: rule 4) or "reactivated", overdue, dormant and
    churned, the end of a paid period (and its renewal's grace) that held off dormant or churned (rule 0), each to the exact second (the same test :func:`stage_of` makes), and the fall of the
    7-day rate below ``decline_ratio`` x the 4-week one. For that one the earliest moment it can
    happen is used, from the decay of the two counters alone (the young-account correction only
    delays it, models.signals), but at least ``tolerance_s`` ahead: a review there that finds the
    rate not yet crossed schedules the next from closer, so the change is seen within
    ``tolerance_s`` at the cost of a review or two, and only for users who stay silent.
    A candidate later than the true change is harmless: that review just schedules the next.
    """
    now = sig.now_s
    if sig.cancelled or st.n_events == 0:
        return 0
    if sig.paused_until_s > now:  # the stage is held until the pause ends: look then
        return sig.paused_until_s
    last, first = st.last_seen_s, st.first_seen_s
    gap = sig.visit_gap_days
    if c is None:  # a caller holding model.compiled hands it down (models.engine)
        c = model.compiled
    lapse = lapse_gap_days(sig)
    lapse_floor = lapse_floor_days(sig)
    dormant_days, churned_days = max(_dormant_after(lapse, c), lapse_floor), max(_churned_after(lapse, c), lapse_floor)
    overdue_days = c.overdue_factor * gap
    reactivated = st.stage_since_s != 0 and st.stage == _REACTIVATED
    # Rough times first; only the earliest one still ahead is worked out to the second: the kinds
    # in order of (rough time, kind), the first whose exact second is ahead wins. Picked by a
    # scan (at most five), not sorted: no tuple per kind. The five times are locals, not a list
    # (a list of five boxed floats made, read and freed per review was a third of this function).
    floor = now - 2
    # a one-day user's "new" ends at the later of new_days and overdue (rule 4), not before
    one_day = st.active_days == 1
    new_end = first + c.new_days * DAY_S
    overdue_at = last + overdue_days * DAY_S
    # a user of their own rhythm lapses no earlier than their re-order is late (rules 1-2)
    late_s = 0
    if uses_own_rhythm(sig):
        late = late_at_days(sig)
        if sig.purchase_silence_days < late:
            late_s = _first_second(st.last_purchase_s, late, 1.0, late)
    r0 = max(last + churned_days * DAY_S, late_s)
    r1 = max(last + dormant_days * DAY_S, late_s)
    r2 = overdue_at
    r3 = new_end if not one_day or new_end > overdue_at else overdue_at
    r4 = st.stage_since_s + c.new_days * DAY_S if reactivated else -math.inf
    best = 0
    tried = 0  # bit per kind
    while True:
        kind = -1
        r_kind = 0.0
        for k in range(5):
            r = r0 if k == 0 else r1 if k == 1 else r2 if k == 2 else r3 if k == 3 else r4
            if not tried >> k & 1 and r >= floor and (kind < 0 or r < r_kind):
                kind, r_kind = k, r
        if kind < 0:
            break
        tried |= 1 << kind
        if kind == 0:
            t = max(_first_second(last, churned_days, 1.0, churned_days), late_s)
        elif kind == 1:
            t = max(_first_second(last, dormant_days, 1.0, dormant_days), late_s)
        elif kind == 2:
            t = _first_second(last, overdue_days, gap, c.overdue_factor)
        elif kind == 3:
            t = _first_second(first, c.new_days, 1.0, c.new_days)
            if one_day:  # the same second stage_of sees overdue at, when later
                t = max(t, _first_second(last, overdue_days, gap, c.overdue_factor))
        else:
            t = _first_second_s(st.stage_since_s, c.new_days)
        if t > now:
            best = t
            break
    end = paid_period_passes_s(sig)  # rule 0 ends with the paid period and its renewal's grace: rules 1-2 from that second
    if now < end and (best == 0 or end < best) and (end - last) * _INV_DAY >= min(dormant_days, churned_days):
        best = end
    if now < sig.cancel_at_s and (best == 0 or sig.cancel_at_s < best):
        best = sig.cancel_at_s  # a cancellation scheduled at the period end takes effect (churned)
    limit = c.decline_ratio
    if gap <= TREND_MAX_GAP_DAYS and sig.trend >= limit and not (st.stage_since_s and st.stage == _DECLINING):
        earliest = math.log(sig.trend / limit) / _TREND_SLOPE * DAY_S
        t = now + max(int(math.ceil(earliest)), tolerance_s)
        if best == 0 or t < best:
            best = t
    return best
