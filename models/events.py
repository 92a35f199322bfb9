"""The activity event as the scoring code sees it: the product's event name, epoch-millisecond time."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Callable, Final, Mapping

from models.subscription import Subscription

__all__ = ["EVENT_ORDER", "EVENT_TYPES", "EventType", "Event", "TypeMap", "DEFAULT_TYPE_MAP"]

#: An event name as the product spells it (trimmed, lower-case): "view", "post", "unfriend", ...
EventType = str
#: The names ``churnwatch simulate`` uses (any other name is as welcome); ``subscription`` events
#: carry a subscription statement (models.subscription, the revenue side).
EVENT_TYPES: Final[tuple[str, ...]] = ("view", "click", "message", "purchase", "cancel", "other", "subscription")


@dataclass(slots=True, unsafe_hash=True)
class Event:
    """One validated event. Times are integers in epoch milliseconds (UTC).

    ``type`` is the product's event name (see :class:`TypeMap`); ``amount`` is the purchase value
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
    """Renames the product's event names (optional, from a config); every other name is kept as
    the product spells it, trimmed and lower-cased. The product's own vocabulary is what the
    scores and reasons speak (models.vocabulary decides which names are tracked and which play
    a role such as purchase or cancellation).

    >>> TypeMap({"order": "purchase"}).canonical("order")
    'purchase'
    >>> TypeMap({}).canonical(" Video_Play ")
    'video_play'
    """

    aliases: Mapping[str, str]

    def __post_init__(self) -> None:
        for name, target in self.aliases.items():
            if not isinstance(target, str) or not target.strip():
                raise ValueError(f"event type alias {name!r} maps to {target!r}, not a non-empty event name")

    def canonical(self, name: str) -> str:
        target = self.aliases.get(name)
        if target is not None:
            return target
        lowered = name.strip().lower()
        return self.aliases.get(lowered, lowered)


#: No renaming: events keep the product's names.
DEFAULT_TYPE_MAP: Final[TypeMap] = TypeMap({})
