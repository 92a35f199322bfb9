"""Customers of a history who came back after a silence longer than the retention (QA21 F8).

The stream keeps a churned customer's state ``customer_retention_days`` after the churn is
reported (models.engine.kept_days), then forgets it: one back later is a new user, their history
gone. QA21's gift buyers (an order in February, the next in October) came back "new" in October
(28 of 198), and ``train`` read their history without a word. :func:`long_returns` finds such
customers in the history train already holds per user, so ``train`` can say how many there are
and which ``--retention`` keeps them (streams.cli.train.long_return_line).
"""

from __future__ import annotations

import math
from typing import Any, Final, Mapping, Sequence

from models.events import Event
from models.model import ChurnModel
from models.state import DAY_S
from models.vocabulary import CANCEL, CANCEL_REQUEST, IGNORE, PURCHASE, SUBSCRIPTION

__all__ = ["KEPT_SHARE", "long_returns"]

#: The suggested retention keeps at least this share of the long returns (the customers' longest
#: silences): the longest few of a history are often no buying cycle at all.
KEPT_SHARE: Final[float] = 0.9

_DAY_MS: Final[int] = DAY_S * 1000


def _longest_silence_ms(events: Sequence[Event], model: ChurnModel) -> int:
    """The longest silence, in ms, between two activity events of a customer after their first
    purchase (0 when none): what the state then sees as time from one active day to the next.
    Billing statements, ignored names and cancellations are no activity (models.state), and
    before a purchase the user is kept ``retention_days``, which ``--retention`` does not raise."""
    vocabulary = model.compiled.vocabulary
    longest, last, bought = 0, None, False
    for ev in events:
        role = vocabulary.lookup(ev.type)[1]
        if role in (CANCEL, CANCEL_REQUEST, SUBSCRIPTION, IGNORE):
            continue
        if bought and last is not None and ev.ts_ms - last > longest:
            longest = ev.ts_ms - last
        last, bought = ev.ts_ms, bought or role == PURCHASE
    return longest


def long_returns(per_user: Mapping[str, Sequence[Event]], model: ChurnModel) -> dict[str, Any]:
    """The customers of ``per_user`` (each user's events in time order) who came back after a
    silence longer than ``model``'s customer retention, the retention that keeps :data:`KEPT_SHARE`
    of them or more (their longest silences' quantile, rounded up to a whole day; ``--retention``
    has no maximum to cap it at) and how many it keeps; ``{}`` when none came back so late.
    ``returned``: the customers back after a silence of at least ``churned_days`` (or the
    retention when shorter), the share's denominator. The silence counts from the last activity;
    the state's retention counts from the churn, reported ``churned_days`` or more into it, so the
    suggestion keeps them with room to spare.

    >>> d = 86_400_000
    >>> buy = lambda u, day: Event(u, day * d, "purchase", "", 10.0)
    >>> per_user = {"a": [buy("a", 0), buy("a", 250)], "b": [buy("b", 0), buy("b", 60)], "c": [buy("c", 0)]}
    >>> long_returns(per_user, ChurnModel())
    {'retention_days': 180.0, 'customers': 1, 'returned': 2, 'returned_after_days': 45.0, 'suggested_days': 250, 'kept': 1}
    >>> long_returns(per_user, ChurnModel(customer_retention_days=400.0))
    {}
    """
    retention = model.compiled.customer_retention_days
    back_after = min(model.churned_days, retention) * _DAY_MS
    silences = [s for s in (_longest_silence_ms(evs, model) for evs in per_user.values()) if s >= back_after]
    long = sorted(s for s in silences if s > retention * _DAY_MS)
    if not long:
        return {}
    days = math.ceil(long[math.ceil(KEPT_SHARE * len(long)) - 1] / _DAY_MS)
    return {"retention_days": retention, "customers": len(long), "returned": len(silences), "returned_after_days": back_after / _DAY_MS,
            "suggested_days": days, "kept": sum(1 for s in long if s <= days * _DAY_MS)}
