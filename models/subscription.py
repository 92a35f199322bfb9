"""What a ``subscription`` event states (docs/REVENUE.md): status, plan, MRR in exact cents, trial end,
end of the paid period.

Kept apart from models/events.py so the activity event stays small: an Event carries one of these
only on ``subscription`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

__all__ = ["MAX_MRR_CENTS", "MAX_PLAN_CHARS", "MAX_SEATS", "MAX_TIME_MS", "RENEWAL_GRACE_MS", "RENEWAL_WINDOW_MIN_MS", "SUBSCRIPTION_STATUSES", "Subscription",
           "SubscriptionStatus", "a_type", "seat_count", "calendar_days", "mrr_cents", "renewal_window_ms"]

SubscriptionStatus = Literal["trial", "active", "past_due", "cancelled", "paused"]
#: The order is the account state's status byte (models.revenue): a new status goes last (QA22a
#: F1, 2026-12-05: ``paused``, a customer who pays nothing until ``period_end``, the resume date)
SUBSCRIPTION_STATUSES: Final[tuple[SubscriptionStatus, ...]] = ("trial", "active", "past_due", "cancelled", "paused")
MAX_MRR_CENTS: Final[int] = 100_000_000_000_000  # 1e12 in money: above that it is a unit mistake
MAX_PLAN_CHARS: Final[int] = 64  # plan names are kept in the per-account state: bounded
MAX_SEATS: Final[int] = 4_294_967_295  # a seat count is kept in 4 bytes of the per-account state
#: 10000-01-01T00:00:00Z: trial and period ends stay below it, so the account state's 8-byte
#: fields hold them and every view can print them as dates
MAX_TIME_MS: Final[int] = 253_402_300_800_000
#: Other spellings of a status, read as the contract's: Stripe writes ``canceled`` (docs/REVENUE.md)
_ALIASES: Final[dict[str, str]] = {"canceled": "cancelled"}
_PAID: Final[tuple[str, ...]] = ("active", "past_due")  # the statuses whose mrr counts: they state it


_DAY_MS: Final[int] = 86_400_000
#: The shortest renewal window (:func:`renewal_window_ms`): a monthly plan's, 30 days
RENEWAL_WINDOW_MIN_MS: Final[int] = 30 * _DAY_MS
#: How long after the end of a paid period its renewal statement may come before the period counts
#: as passed unrenewed (a user's: models.signals.paid_period_passes_s; an account's renewal:
#: models.revenue.AccountView.renews_at). Billing systems renew at or after the end, not before: Stripe creates the renewal invoice as the new period starts and finalizes and charges it
#: about an hour later (later still while its ``invoice.created`` webhook fails), and a
#: statement goes out once the charge is known; a nightly export is up to a day late. QA23b F6
#: (2026-12-05): renewals stated 1-2 h after the period end turned 122 silent paying users dormant
#: (131) or churned (46) at the end's midnight, "paid period ended today, no renewal stated", and
#: back to declining an hour later. A day loses nothing: a renewal that fails is stated as
#: ``past_due`` (the paid period ends at that statement, models.state), a cancellation as
#: ``cancelled`` or a request dated at the end (models.state.scheduled_cancel_s, no grace), and
#: only a subscription that ends with no statement at all waits the day. A user's end is a midnight
#: (models.state), so a whole day keeps the passing at a midnight: the calendar day after the end.
#: The account side had the same edge: a silent account renewing soon (a renewal to save, stage
#: ``at_risk``) read ``lapsed``, the win-back book, from the period end to its renewal statement.
RENEWAL_GRACE_MS: Final[int] = _DAY_MS


def renewal_window_ms(period_ms: int) -> int:
    """How long before a renewal the account roll-up's renewal rule holds ("renewal in 54 days
    while usage fell 26%") and the worker looks at the account again: a quarter of the billing
    period that renewal ends (``period_ms``, as the statements state it:
    ``models.revenue.AccountView.periods_ms``), and at least 30 days (a monthly plan, a quarterly
    one, or a period not known: 0). Why (QA11 F5): with 30 days for every plan, an annual account
    whose usage had been falling for five weeks read risk 0 and "no reason stands out" 54 days
    before it did not renew; annual contracts got at most 30 days' warning (QA's median lead 24
    days). A quarter of a year (91 days) is when a renewal conversation for an annual contract
    starts; a monthly plan keeps its 30 days (its renewal is never further away).

    >>> [renewal_window_ms(d * _DAY_MS) // _DAY_MS for d in (0, 31, 92, 183, 365, 730)]
    [30, 30, 30, 45, 91, 182]
    """
    return max(RENEWAL_WINDOW_MIN_MS, period_ms // 4)


def calendar_days(to_ms: int, from_ms: int) -> int:
    """Calendar (UTC) days from the date of ``from_ms`` to the date of ``to_ms``: what a person
    counts on a calendar, so 2026-03-13 13:32 seen on 2026-03-01 23:00 is 12 days away. The one
    count of days to a renewal: the account views' "renews 2026-03-13 (in 12 days)"
    (streams.views.renewal) and the reason "renewal due in 12 days (paid through 2026-03-13)"
    (models.reasons). QA11 F8: the reason took a ceiling of a time already rounded up to a day,
    one more than the calendar days to the date it named.

    >>> calendar_days(1_773_408_720_000, 1_772_406_000_000), calendar_days(1_772_406_000_000, 1_772_406_000_000)
    (12, 0)
    """
    return to_ms // _DAY_MS - from_ms // _DAY_MS


def a_type(value: object) -> str:
    """The type of a refused value with its article, for the messages that name it: "a str",
    "an int" (QA pass 9 L5: "subscription plan is a int").

    >>> a_type(7), a_type("x"), a_type([1])
    ('an int', 'a str', 'a list')
    """
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a ``subscription`` event states: the subscription as it is from the event's time on.

    ``mrr_cents`` is the monthly recurring revenue in whole cents (exact money; 0 when
    cancelled); ``trial_ends_ms`` is 0 when not given. ``period_end_ms`` is the end of the period
    paid for (Stripe's ``current_period_end``, Chargebee's ``current_term_end``): the earliest
    time the subscription can end without a cancellation statement, the next renewal; 0 when not
    given. ``seats`` is the number of seats (licences) the ``mrr`` pays for, 0 when not given: with
    it on two statements of one plan, a renewal tells a price per seat that rose from more seats
    (QA20a F6). Build it with :meth:`parse`, which checks the contract (see docs/REVENUE.md).

    >>> Subscription.parse("active", "Pro", "49.99")
    Subscription(status='active', plan='Pro', mrr_cents=4999, trial_ends_ms=0, period_end_ms=0, seats=0)
    """

    status: SubscriptionStatus
    plan: str
    mrr_cents: int
    trial_ends_ms: int = 0
    period_end_ms: int = 0
    seats: int = 0

    @staticmethod
    def parse(status: object, plan: object, mrr: object, trial_ends_ms: int = 0, period_end_ms: int = 0,
              seats: object = None) -> "Subscription":
        """Checked fields -> Subscription; ValueError naming the value otherwise.

        ``mrr`` is a number or numeric text in money units (19.99), at most two decimals;
        missing (None or "") only when cancelled or in a trial (0: neither counts in MRR, so nothing
        is lost; review 17 F7: a trial without it was refused, and the account's trial with it): an
        active or past-due statement without it is refused, not taken as a free plan (QA pass 9
        L3: a producer that forgot the field lost the revenue silently; a free plan states ``0``).
        Stripe's spelling ``canceled`` is read as ``cancelled``. ``paused`` (QA22a F1): the customer
        stays a customer and pays nothing until ``period_end`` (the resume date, optional); its
        ``mrr`` may be left out, 0, or the plan's price, and counts 0 either way (docs/REVENUE.md).

        >>> Subscription.parse("canceled", "Pro", None).status
        'cancelled'
        >>> Subscription.parse("trial", "Pro", None).mrr_cents
        0
        >>> Subscription.parse("Paused", "standard", None, period_end_ms=86_400_000).status
        'paused'
        >>> Subscription.parse(None, "Pro", 10)
        Traceback (most recent call last):
        ...
        ValueError: subscription status is missing: one of ('trial', 'active', 'past_due', 'cancelled', 'paused')
        >>> Subscription.parse("active", "Pro", "")
        Traceback (most recent call last):
        ...
        ValueError: mrr is missing: an active subscription states its mrr (0 for a free plan); only a cancelled one or a trial may leave it out
        >>> Subscription.parse("active", "Team", 650, seats=26).seats, Subscription.parse("active", "Team", 650, seats="").seats
        (26, 0)
        >>> Subscription.parse("active", "Team", 650, seats=2.5)
        Traceback (most recent call last):
        ...
        ValueError: seats 2.5 is not a whole number of seats >= 1
        """
        if type(status) is str:
            status = status.strip().lower()
            status = _ALIASES.get(status, status)
        if status is None or status == "":
            raise ValueError(f"subscription status is missing: one of {SUBSCRIPTION_STATUSES}")
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"subscription status {status!r} is not one of {SUBSCRIPTION_STATUSES}")
        if plan is None:
            plan = ""
        if type(plan) is not str:
            raise ValueError(f"subscription plan is {a_type(plan)}, expected text")
        plan = plan.strip()
        if len(plan) > MAX_PLAN_CHARS:
            raise ValueError(f"subscription plan has {len(plan)} characters, at most {MAX_PLAN_CHARS}")
        if (mrr is None or mrr == "") and status in _PAID:
            raise ValueError(f"mrr is missing: {'an' if status == 'active' else 'a'} {status} subscription states its mrr "
                             "(0 for a free plan); only a cancelled one or a trial may leave it out")
        cents = mrr_cents(mrr)
        if status == "cancelled" and cents:
            raise ValueError(f"a cancelled subscription has mrr 0, got {cents / 100:.2f}")
        for name, ms in (("trial_ends", trial_ends_ms), ("period_end", period_end_ms)):
            if ms < 0:
                raise ValueError(f"{name} {ms} ms is negative")
            if ms >= MAX_TIME_MS:
                raise ValueError(f"{name} {ms} ms is after 9999-12-31")
        return Subscription(status, plan, cents, trial_ends_ms, period_end_ms, seat_count(seats))  # type: ignore[arg-type]


def seat_count(value: object) -> int:
    """An optional seat count (a whole number >= 1, or its text) -> int, 0 when missing (None or
    ""); ValueError naming the value otherwise. A JSON 26.0 is 26 seats.

    >>> seat_count(26), seat_count("26"), seat_count(26.0), seat_count(None)
    (26, 26, 26, 0)
    """
    if value is None or value == "":
        return 0
    n: object = value
    if type(value) is str:
        n = int(value.strip()) if value.strip().isdigit() else None
    elif type(value) is float and value.is_integer():
        n = int(value)
    if type(n) is not int or not 1 <= n <= MAX_SEATS:  # a bool is no int here
        raise ValueError(f"seats {value!r} is not a whole number of seats >= 1")
    return n


def mrr_cents(value: object) -> int:
    """Money (a number or numeric text, at most two decimals) -> whole cents, exactly.

    A float goes through its shortest repr, so the JSON number 19.99 is 1999 cents, not 1998.

    >>> mrr_cents("19.99"), mrr_cents(19.99), mrr_cents(5), mrr_cents(None)
    (1999, 1999, 500, 0)
    """
    if value is None or value == "":
        return 0
    if type(value) is bool:
        raise ValueError(f"mrr {value!r} is not a number")
    try:
        amount = Decimal(repr(value) if type(value) is float else str(value).strip())
    except InvalidOperation:
        raise ValueError(f"mrr {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"mrr {value!r} is not a finite amount >= 0")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"mrr {value!r} has fractions of a cent: send it rounded to the cent (an annual plan's "
                         f"price / 12, e.g. 79.99 a year: 6.67)")
    if cents > MAX_MRR_CENTS:
        raise ValueError(f"mrr {value!r} is above {MAX_MRR_CENTS // 100}")
    return int(cents)
