"""One webhook delivery: the signed request, and what the receiver's answer means.

Pure functions (no I/O) so the rules are testable alone; ``streams.forward.service`` does the
sending. Every POST carries the alert JSON as it came from the topic (the exact bytes), and:

- ``Idempotency-Key: <alert_id>`` (the same on every retry and redelivery: at-least-once);
- ``X-Churnwatch-Signature: sha256=<hex>``, HMAC-SHA256 of the body with the shared secret
  (``CHURNWATCH_FORWARD_SECRET``); a receiver recomputes it over the raw body and compares in
  constant time (``verify``);
- ``X-Churnwatch-Attempt: <n>``, 1 on the first try;
- ``X-Churnwatch-Model: <version>@<digest>``, the model that scored the alert (the record's
  ``churnwatch-model`` header; absent for alerts without it: account alerts, older workers).

>>> sig = sign(b"k", b'{"alert_id":"a1"}')
>>> sig.startswith("sha256="), verify(b"k", b'{"alert_id":"a1"}', sig), verify(b"k", b"{}", sig)
(True, True, False)
>>> [verdict(s) for s in (200, 204, 409, 500, 429, 408, 400, 410, 422)]
['delivered', 'delivered', 'delivered', 'retry', 'retry', 'retry', 'refused', 'refused', 'refused']
>>> [verdict(s) for s in (301, 302, 303, 307, 308)]
['refused', 'refused', 'refused', 'refused', 'refused']

Redirects are not followed (the forwarder sends with ``allow_redirects=False``): a client following
301/302/303 turns the POST into a GET without the body (aiohttp, like browsers and curl), the page
it lands on answers 200 and the alert would count as delivered with nothing sent (QA6 H1). 307 and
308 would keep the method and body, but would still send the alerts to an address the operator did
not configure; so any 3xx is a refusal whose detail names the ``Location`` (:func:`redirect_detail`),
and the operator sets ``--url`` to where the receiver really is.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

__all__ = ["SIGNATURE_HEADER", "IDEMPOTENCY_HEADER", "ATTEMPT_HEADER", "MODEL_HEADER", "Verdict", "sign", "verify", "verdict",
           "headers", "backoff_s", "redirect_detail"]

SIGNATURE_HEADER = "X-Churnwatch-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Churnwatch-Attempt"
MODEL_HEADER = "X-Churnwatch-Model"

Verdict = Literal["delivered", "retry", "refused"]

#: 4xx answers that say "not now" rather than "never": retried like 5xx and network errors.
_RETRY_4XX = frozenset({408, 425, 429})


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute over the raw body, compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def verdict(status: int) -> Verdict:
    """2xx and 409 (the receiver has this idempotency key already) are delivered; 408, 425, 429
    and 5xx are retried; any other answer, 3xx included (not followed: module docstring), is a
    refusal for good (dead-letter topic)."""
    if 200 <= status < 300 or status == 409:
        return "delivered"
    if status >= 500 or status in _RETRY_4XX:
        return "retry"
    return "refused"


def headers(secret: bytes, body: bytes, alert_id: str, attempt: int, model: str = "") -> dict[str, str]:
    """The request's headers (module docstring).

    >>> h = headers(b"k", b"{}", "a1", 2, "learned-1@abc"); h[ATTEMPT_HEADER], h[MODEL_HEADER]
    ('2', 'learned-1@abc')
    >>> MODEL_HEADER in headers(b"k", b"{}", "a1", 1)
    False
    """
    out = {
        "Content-Type": "application/json",
        "User-Agent": "churnwatch-forward/1",
        IDEMPOTENCY_HEADER: alert_id,
        SIGNATURE_HEADER: sign(secret, body),
        ATTEMPT_HEADER: str(attempt),
    }
    if model:
        out[MODEL_HEADER] = model
    return out


def redirect_detail(status: int, location: str | None) -> str:
    """The dead letter's detail for a redirect: where the receiver points, so the operator can fix ``--url``.

    >>> redirect_detail(301, "https://crm.example/hooks/churn")
    'HTTP 301 redirect to https://crm.example/hooks/churn (not followed: a redirected POST is not a delivery; set --url to the final address)'
    >>> redirect_detail(302, None)[:38]
    'HTTP 302 redirect to (no Location) (no'
    """
    return (f"HTTP {status} redirect to {location or '(no Location)'} "
            "(not followed: a redirected POST is not a delivery; set --url to the final address)")


def backoff_s(attempt: int, *, start_s: float, max_s: float) -> float:
    """Wait before try ``attempt + 1``: doubling from ``start_s``, capped at ``max_s``.

    >>> [backoff_s(a, start_s=0.5, max_s=4.0) for a in (1, 2, 3, 4, 5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    """
    return min(max_s, start_s * 2 ** (attempt - 1))
