"""A customer's past alerts for the console: a small capped list per user and per account.

Why in Redis: the alerts live in the alerts topic, which a page cannot search by customer; a
stream engineer keeps a tiny materialised view next to the state instead. Alerts are rare (a
handful per customer over months), so the cost is per alert, never per event: the worker appends
each alert worth a call that it emits to its customer's list in the same atomic, fenced write as
the state (users: inside the bucket's ``lua/write_batch.lua``; accounts: inside the account's
extras, written by ``write_accounts``). An entry is compact JSON, ``[alert id, kind, event time ms, stage,
risk, reasons]``, the list newest first, at most ``ALERT_LOG_CAP`` entries, de-duplicated on the alert id (a
redelivered batch appends nothing new). Pure: no Redis, no Kafka.

Kept for users: ``at_risk``, ``recovered`` and stage changes to churned or reactivated (the
alerts a CRM acts on; other stage changes are frequent and the stage is on the page anyway);
for accounts: every account alert (at risk, churned, recovered, trial ending).

Every entry keeps the alert's reasons, a recovery's too (QA6 L3: the console showed recovered
alerts with an empty "why", while the alert itself says why, docs/ALERTS.md). Until 2026-12-03 a
user's ``recovered`` entry was written without them, on the grounds that its why was the risk
that fell and that its reasons repeated the at-risk alert's: neither holds since recoveries say
what speaks for the user (models.reasons). Such entries still in Redis are shown with the fall
of the risk since the at-risk entry before them (:func:`decode_entries`), a fact the list holds.

>>> e = entry({"alert_id": "a1", "kind": "at_risk", "event_time_ms": 5000, "stage": "declining", "risk": 0.71234,
...            "reasons": ["x", "y", "z", "w"]})
>>> e
b'["a1","at_risk",5000,"declining",0.7123,["x","y","z"]]'
>>> decode_entries([e])[0]["reasons"], logged_kind({"kind": "stage_changed", "stage": "active"})
(['x', 'y', 'z'], False)
"""

from __future__ import annotations

from typing import Any, Final, Iterable, Mapping

import orjson

__all__ = ["ALERT_LOG_CAP", "EXTRAS_FIELD", "KINDS_LOGGED", "STAGES_LOGGED", "append_to_extras", "decode_entries", "entry", "logged_kind"]

ALERT_LOG_CAP: Final[int] = 10  # entries kept per customer, newest first
EXTRAS_FIELD: Final[str] = "log"  # an account's list, inside its extras JSON
_REASONS: Final[int] = 3  # the alert's reasons (models.reasons gives at most 3)
#: The user alerts a list keeps: these kinds, and stage changes into these stages (``logged_kind``;
#: the worker hands both to ``models.step.queue_alerts``, which applies the same rule compiled).
KINDS_LOGGED: Final[frozenset[str]] = frozenset({"at_risk", "recovered"})
STAGES_LOGGED: Final[frozenset[str]] = frozenset({"churned", "reactivated"})


def logged_kind(alert: Mapping[str, Any]) -> bool:
    """Whether a user alert goes to the user's list (account alerts always do)."""
    kind = alert.get("kind")
    return kind in KINDS_LOGGED or (kind == "stage_changed" and alert.get("stage") in STAGES_LOGGED)


def _row(alert: Mapping[str, Any]) -> list[Any]:
    reasons = list(alert.get("reasons") or [])[:_REASONS]
    return [str(alert["alert_id"]), str(alert["kind"]), int(alert["event_time_ms"]), alert.get("stage"),
            round(float(alert.get("risk") or 0.0), 4), reasons]


def entry(alert: Mapping[str, Any]) -> bytes:
    """One list entry of an alert (its ``to_dict`` / JSON form). The worker makes its users'
    entries in ``models.step.queue_alerts``: the same bytes without ``_row``'s conversions (the
    alert's fields already have their types, its risk is already rounded to 4 places, which
    ``round`` leaves as it is); ``tests/test_alert_log.py`` compares the two on alerts of every
    kind and on random risks."""
    return orjson.dumps(_row(alert))


def decode_entries(raw: Iterable[bytes | str | list[Any]]) -> list[dict[str, Any]]:
    """Entries (JSON text or decoded rows) as dicts for the page and the API, in stored order.

    A user's ``recovered`` entry written without reasons (before 2026-12-03: module docstring)
    says the fall of the risk since the at-risk entry it closed, the next older one in the list,
    as models.reasons words it ("risk down to 40% from 63% when the alert opened"); with no such
    entry left in the list, nothing.

    >>> rows = [["r1", "recovered", 9, "new", 0.3957, []], ["a1", "at_risk", 5, "new", 0.6308, ["x"]]]
    >>> [e["reasons"] for e in decode_entries(rows)]
    [['risk down to 40% from 63% when the alert opened'], ['x']]
    """
    from streams.timefmt import format_ts

    out = []
    for r in raw:
        try:
            aid, kind, ts_ms, stage, risk, reasons = orjson.loads(r) if isinstance(r, (bytes, str)) else r
        except (orjson.JSONDecodeError, TypeError, ValueError):
            continue  # a display list: an unreadable entry is left out, never an error page
        out.append({"alert_id": aid, "kind": kind, "time": format_ts(int(ts_ms)), "event_time_ms": int(ts_ms),
                    "stage": stage, "risk": risk, "reasons": list(reasons)})
    for i, e in enumerate(out):
        if e["kind"] == "recovered" and not e["reasons"]:
            opened = next((o for o in out[i + 1:] if o["kind"] in ("at_risk", "recovered")), None)
            if opened is not None and opened["kind"] == "at_risk" and isinstance(opened["risk"], (int, float)) \
                    and isinstance(e["risk"], (int, float)):
                e["reasons"] = [f"risk down to {100.0 * e['risk']:.0f}% from {100.0 * opened['risk']:.0f}% when the alert opened"]
    return out


def append_to_extras(extras: dict[str, object], alert: Mapping[str, Any], cap: int = ALERT_LOG_CAP) -> None:
    """Put an account alert first in the account's list (``extras["log"]``), unless its id is there."""
    log = extras.get(EXTRAS_FIELD)
    rows: list[Any] = list(log) if isinstance(log, list) else []
    if any(isinstance(r, list) and r and r[0] == alert["alert_id"] for r in rows):
        return
    extras[EXTRAS_FIELD] = [_row(alert), *rows][:cap]
