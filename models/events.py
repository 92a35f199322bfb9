"""The activity event as the scoring code sees it: canonical type, epoch-millisecond time."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import Callable, Final, Literal, Mapping

__all__ = [
    "EVENT_ORDER",
    "EVENT_TYPES",
    "EventType",
    "Event",
    "MAX_MRR_CENTS",
    "MAX_PLAN_CHARS",
    "SUBSCRIPTION_STATUSES",
    "Subscription",
    "SubscriptionStatus",
    "TypeMap",
    "DEFAULT_TYPE_MAP",
    "mrr_cents",
]

EventType = Literal["view", "click", "message", "purchase", "cancel", "other", "subscription"]
EVENT_TYPES: Final[tuple[EventType, ...]] = ("view", "click", "message", "purchase", "cancel", "other", "subscription")

SubscriptionStatus = Literal["trial", "active", "past_due", "cancelled"]
SUBSCRIPTION_STATUSES: Final[tuple[SubscriptionStatus, ...]] = ("trial", "active", "past_due", "cancelled")
MAX_MRR_CENTS: Final[int] = 100_000_000_000_000  # 1e12 in money: above that it is a unit mistake
MAX_PLAN_CHARS: Final[int] = 64  # plan names are kept in the per-account state: bounded


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a ``subscription`` event states: the subscription as it is from the event's time on.

    ``mrr_cents`` is the monthly recurring revenue in whole cents (exact money; 0 when
    cancelled); ``trial_ends_ms`` is 0 when not given. Build it with :meth:`parse`, which
    checks the contract (see docs/REVENUE.md).

    >>> Subscription.parse("active", "Pro", "49.99")
    Subscription(status='active', plan='Pro', mrr_cents=4999, trial_ends_ms=0)
    """

    status: SubscriptionStatus
    plan: str
    mrr_cents: int
    trial_ends_ms: int = 0

    @staticmethod
    def parse(status: object, plan: object, mrr: object, trial_ends_ms: int = 0) -> "Subscription":
        """Checked fields -> Subscription; ValueError naming the value otherwise.

        ``mrr`` is a number or numeric text in money units (19.99), at most two decimals;
        missing (None or "") means 0.
        """
        if type(status) is str:
            status = status.strip().lower()
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"subscription status {status!r} is not one of {SUBSCRIPTION_STATUSES}")
        if plan is None:
            plan = ""
        if type(plan) is not str:
            raise ValueError(f"subscription plan is a {type(plan).__name__}, expected text")
        plan = plan.strip()
        if len(plan) > MAX_PLAN_CHARS:
            raise ValueError(f"subscription plan has {len(plan)} characters, at most {MAX_PLAN_CHARS}")
        cents = mrr_cents(mrr)
        if status == "cancelled" and cents:
            raise ValueError(f"a cancelled subscription has mrr 0, got {cents / 100:.2f}")
        if trial_ends_ms < 0:
            raise ValueError(f"trial_ends {trial_ends_ms} ms is negative")
        return Subscription(status, plan, cents, trial_ends_ms)  # type: ignore[arg-type]


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
        raise ValueError(f"mrr {value!r} has fractions of a cent")
    if cents > MAX_MRR_CENTS:
        raise ValueError(f"mrr {value!r} is above {MAX_MRR_CENTS // 100}")
    return int(cents)


@dataclass(slots=True, unsafe_hash=True)
class Event:
    """One validated event. Times are integers in epoch milliseconds (UTC).

    ``type`` is already canonical (see :class:`TypeMap`); ``amount`` is the purchase value
    (0 for everything else). ``event_id`` only serves de-duplication and tie-breaking.
    ``account_id`` is the customer company ("" = the user is its own account, see
    :attr:`account`); ``subscription`` is set on ``subscription`` events only.

    Treat it as a value: nothing changes an event once made. It is not a frozen dataclass only
    because a frozen one costs twice as much to build (1.1 vs 2.2 us here), and the worker and the
    backtest build one per record; ``unsafe_hash`` keeps it hashable like a frozen one.
    """

    user_id: str
    ts_ms: int
    type: EventType
    event_id: str = ""
    amount: float = 0.0
    account_id: str = ""
    subscription: Subscription | None = None

    @property
    def account(self) -> str:
        """The account the event belongs to: ``account_id``, or the user for users without one."""
        return self.account_id or self.user_id


#: The order events are applied in: event time, then id, so the order of arrival never matters.
#: A C-level key (no Python call per event): ``sorted(events, key=EVENT_ORDER)``.
EVENT_ORDER: Final[Callable[[Event], tuple[int, str]]] = attrgetter("ts_ms", "event_id")


@dataclass(frozen=True, slots=True)
class TypeMap:
    """Maps the product's free-text event names to canonical types; unknown names are "other".

    >>> TypeMap({"page_view": "view", "order": "purchase"}).canonical("order")
    'purchase'
    >>> TypeMap({}).canonical("video_play")
    'other'
    >>> TypeMap({}).canonical("click")
    'click'
    """

    aliases: Mapping[str, EventType]

    def __post_init__(self) -> None:
        for name, target in self.aliases.items():
            if target not in EVENT_TYPES:
                raise ValueError(f"event type alias {name!r} maps to {target!r}, not one of {EVENT_TYPES}")

    def canonical(self, name: str) -> EventType:
        target = self.aliases.get(name)
        if target is not None:
            return target
        lowered = name.strip().lower()
        if lowered in EVENT_TYPES:
            return lowered  # type: ignore[return-value]
        return self.aliases.get(lowered, "other")


DEFAULT_TYPE_MAP: Final[TypeMap] = TypeMap(
    {
        "page_view": "view",
        "pageview": "view",
        "screen_view": "view",
        "tap": "click",
        "chat": "message",
        "msg": "message",
        "order": "purchase",
        "payment": "purchase",
        "checkout": "purchase",
        "cancellation": "cancel",
        "unsubscribe": "cancel",
    }
)
