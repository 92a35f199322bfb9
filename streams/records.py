"""The JSON record of an event, and the id of an event sent without one: shared by the worker's
codec (``streams.worker.codec`` derives that id), the publisher (``streams.publisher.event_value``
writes the record) and the offline history reader (``streams.offline.history`` gives a row without
an id the id the worker would derive for its record). Why one module: live and offline must give
the same event the same id, so the same file gives the same result in both (QA4 #2), and the
worker and the offline tools may not import each other (tests/test_architecture.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from models.events import Event

__all__ = ["content_event_id", "derived_event_id", "plain_event_id", "record_fields"]


def derived_event_id(obj: dict[str, object], ts_ms: int, amount: float) -> str:
    """The id of an event sent without one: a hash of everything the event says, so the same event
    sent twice (a producer's retry, a re-published file) gets the same id and is recognised.

    ``ts`` counts as its value in milliseconds and ``amount`` as the number read, so
    ``"2026-01-01T00:00:00Z"`` and ``1767225600000`` are the same time; any other field (type name,
    account, subscription fields, properties, extras) counts as sent. Two events that differ in
    nothing get the same id: they are one event sent twice.

    >>> derived_event_id({"user_id": "u1", "type": "view", "ts": "2026-01-01T00:00:00Z"}, 1767225600000, 0.0)
    'd-6fb2b23bc95c97b25a915ff8'
    >>> derived_event_id({"user_id": "u1", "type": "view", "properties": {"page": "/"}}, 1767225600000, 0.0) != \\
    ...     derived_event_id({"user_id": "u1", "type": "view"}, 1767225600000, 0.0)
    True
    """
    content = {k: v for k, v in obj.items() if k != "event_id"}
    content["ts"], content["amount"] = ts_ms, amount
    return "d-" + hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


def record_fields(ev: Event) -> dict[str, object]:
    """The JSON object ``churnwatch publish`` writes for a validated event (``amount`` when it is
    not 0, and always on a ``purchase``; ``account_id`` when set; the subscription fields on
    subscription events, ``mrr`` exact from cents): one definition for the record value
    (``streams.publisher.event_value``) and for the id of a file's event that has none
    (:func:`content_event_id`).

    Any type keeps its amount: which names are purchases is the model's vocabulary (roles:
    ``order``, ``payment``, ``checkout``, a product's own ``checkout_completed``), read by the
    worker, not here. Keeping it on ``purchase`` only lost the amount of every other purchase name
    on its way to the topic (QA7 H2: live revenue 0, the backtest's 12.5 for the same CSV row).

    >>> record_fields(Event("u1", 1767225600000, "purchase", "e1", 9.5))
    {'event_id': 'e1', 'user_id': 'u1', 'type': 'purchase', 'ts': 1767225600000, 'amount': 9.5}
    >>> record_fields(Event("u1", 1767225600000, "order", "e2", 12.5))["amount"]
    12.5
    >>> "amount" in record_fields(Event("u1", 1767225600000, "view", "e3"))
    False
    """
    body: dict[str, object] = {"event_id": ev.event_id, "user_id": ev.user_id, "type": ev.type, "ts": ev.ts_ms}
    if ev.amount or ev.type == "purchase":
        body["amount"] = ev.amount
    if ev.account_id:
        body["account_id"] = ev.account_id
    sub = ev.subscription
    if sub is not None:
        body["status"] = sub.status
        body["plan"] = sub.plan
        body["mrr"] = sub.mrr_cents / 100  # shortest repr of n/100 is the exact decimal
        if sub.trial_ends_ms:
            body["trial_ends"] = sub.trial_ends_ms
        if sub.period_end_ms:
            body["period_end"] = sub.period_end_ms
        if sub.seats:
            body["seats"] = sub.seats
    return body


def content_event_id(ev: Event) -> str:
    """The id the worker derives (:func:`derived_event_id`) for ``ev``'s record sent without an
    ``event_id``: what a history file's row without an id gets, in ``publish`` and in the offline
    commands alike (QA4 #2: ``<file name>:<line>`` gave two daily ``ev.csv`` the same ids, and a
    line repeated its own row under another id). The same event, the same id, whichever file,
    line or command it comes from; two events that differ in anything, different ids.

    >>> a = Event("u1", 1767225600000, "view")
    >>> content_event_id(a) == derived_event_id({"user_id": "u1", "type": "view", "ts": 1767225600000}, 1767225600000, 0.0)
    True
    >>> content_event_id(a) != content_event_id(Event("u1", 1767225600001, "view"))
    True
    >>> b = Event("u1", 1767225600000, "purchase", "", 9.5, "acme")
    >>> content_event_id(b) == derived_event_id(record_fields(b), b.ts_ms, 9.5)
    True
    >>> c = Event("u1", 1767225600000, "order", "", 12.5)
    >>> content_event_id(c) == derived_event_id(record_fields(c), c.ts_ms, 12.5)
    True
    """
    if ev.subscription is None:
        return plain_event_id(ev.user_id, ev.ts_ms, ev.type, ev.amount, ev.account_id)
    return derived_event_id(record_fields(ev), ev.ts_ms, ev.amount)


def plain_event_id(user_id: str, ts_ms: int, type_: str, amount: float, account_id: str,
                   _dumps: Any = orjson.dumps, _hash: Any = hashlib.blake2b) -> str:
    """:func:`content_event_id` of an event without a subscription, from its fields: what
    :func:`derived_event_id` hashes, built in sorted key order (no sort, no copy, no Event). The
    backtest reads a million rows, most without an id: 0.85 -> ~0.6 us a row here. The doctests of
    :func:`content_event_id` and tests/test_history.py check it against the worker's derivation.

    The amount counts on every type, as the record carries it (:func:`record_fields`); until QA7 H2
    it counted on ``purchase`` only, which changes no id of a row without an amount or spelled
    ``purchase`` (every row ``churnwatch simulate`` writes).

    >>> plain_event_id("u1", 1767225600000, "order", 3.0, "") != plain_event_id("u1", 1767225600000, "order", 0.0, "")
    True
    """
    content: dict[str, object] = {"account_id": account_id} if account_id else {}
    content["amount"] = amount
    content["ts"], content["type"], content["user_id"] = ts_ms, type_, user_id
    return "d-" + _hash(_dumps(content), digest_size=12).hexdigest()
