"""A customer's past alerts for the console: a small capped list per user and per account.

Why in Redis: the alerts live in the alerts topic, which a page cannot search by customer; a
stream engineer keeps a tiny materialised view next to the state instead. Alerts are rare (a
handful per customer over months), so the cost is per alert, never per event: the worker appends
each alert worth a call that it emits to its customer's list in the same atomic, fenced write as
the state (users: inside the bucket's ``lua/write_batch.lua``; accounts: inside the account's
extras, written by ``write_accounts``). An entry is compact JSON, ``[alert id, kind, event time ms, stage,
risk, reasons]`` (a user's ``recovered`` entry without reasons: its why is the risk that fell),
the list newest first, at most ``ALERT_LOG_CAP`` entries, de-duplicated on the alert id (a
redelivered batch appends nothing new). Pure: no Redis, no Kafka.

Kept for users: ``at_risk``, ``recovered`` and stage changes to churned or reactivated (the
alerts a CRM acts on; other stage changes are frequent and the stage is on the page anyway);
for accounts: every account alert (at risk, churned, recovered, trial ending).

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

__all__ = ["ALERT_LOG_CAP", "EXTRAS_FIELD", "append_to_extras", "decode_entries", "entry", "logged_kind", "user_entry"]

ALERT_LOG_CAP: Final[int] = 10  # entries kept per customer, newest first
EXTRAS_FIELD: Final[str] = "log"  # an account's list, inside its extras JSON
_REASONS: Final[int] = 3  # the alert's reasons (models.reasons gives at most 3)
_STAGES_LOGGED: Final[frozenset[str]] = frozenset({"churned", "reactivated"})
_NO_REASONS: Final[frozenset[str]] = frozenset({"recovered"})


def logged_kind(alert: Mapping[str, Any]) -> bool:
    """Whether a user alert goes to the user's list (account alerts always do)."""
    kind = alert.get("kind")
    return kind in ("at_risk", "recovered") or (kind == "stage_changed" and alert.get("stage") in _STAGES_LOGGED)


def _row(alert: Mapping[str, Any]) -> list[Any]:
    # a recovery's why is its risk: the reasons it still lists are those of the alert it closes (half the bytes)
    reasons = [] if alert["kind"] in _NO_REASONS else list(alert.get("reasons") or [])[:_REASONS]
    return [str(alert["alert_id"]), str(alert["kind"]), int(alert["event_time_ms"]), alert.get("stage"),
            round(float(alert.get("risk") or 0.0), 4), reasons]


def entry(alert: Mapping[str, Any]) -> bytes:
    """One list entry of an alert (its ``to_dict`` / JSON form)."""
    return orjson.dumps(_row(alert))


def user_entry(alert: Mapping[str, Any]) -> bytes:
    """``entry`` of a user alert as ``models.engine.Alert.to_dict`` gives it, the same bytes without
    ``_row``'s conversions (the worker makes one per alert it logs): its fields already have their
    types, and its risk is already rounded to 4 places (``engine.round_places``, the double
    ``round(risk, 4)`` gives), which ``round`` leaves as it is; ``round`` itself went through a
    decimal string, about a microsecond a call (docs/SCALING.md). ``tests/test_alert_log.py``
    compares it with ``entry`` on alerts of every kind and on random risks.

    >>> user_entry({"alert_id": "a1", "kind": "recovered", "event_time_ms": 5000, "stage": "active", "risk": 0.2,
    ...             "reasons": ["x"]})
    b'["a1","recovered",5000,"active",0.2,[]]'
    """
    kind = alert["kind"]
    return orjson.dumps([alert["alert_id"], kind, alert["event_time_ms"], alert["stage"], alert["risk"] or 0.0,
                         [] if kind in _NO_REASONS else alert["reasons"][:_REASONS]])


def decode_entries(raw: Iterable[bytes | str | list[Any]]) -> list[dict[str, Any]]:
    """Entries (JSON text or decoded rows) as dicts for the page and the API, in stored order."""
    from streams.timefmt import format_ts

    out = []
    for r in raw:
        try:
            aid, kind, ts_ms, stage, risk, reasons = orjson.loads(r) if isinstance(r, (bytes, str)) else r
        except (orjson.JSONDecodeError, TypeError, ValueError):
            continue  # a display list: an unreadable entry is left out, never an error page
        out.append({"alert_id": aid, "kind": kind, "time": format_ts(int(ts_ms)), "event_time_ms": int(ts_ms),
                    "stage": stage, "risk": risk, "reasons": list(reasons)})
    return out


def append_to_extras(extras: dict[str, object], alert: Mapping[str, Any], cap: int = ALERT_LOG_CAP) -> None:
    """Put an account alert first in the account's list (``extras["log"]``), unless its id is there."""
    log = extras.get(EXTRAS_FIELD)
    rows: list[Any] = list(log) if isinstance(log, list) else []
    if any(isinstance(r, list) and r and r[0] == alert["alert_id"] for r in rows):
        return
    extras[EXTRAS_FIELD] = [_row(alert), *rows][:cap]
