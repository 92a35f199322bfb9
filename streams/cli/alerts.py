"""``churnwatch alerts``: follow the at-risk topic, de-duplicate, print readable lines or JSON lines.

Alerts are delivered at least once (a worker that crashes between producing an alert and
writing its state re-sends the same ``alert_id`` after the replay), so the follower keeps a
bounded LRU of ids it has shown and drops repeats. The same :func:`follow_alerts` async
generator serves the demo, so what the demo shows is what a CRM integration would see.

The follower joins no consumer group: it assigns itself every partition of the topic, so any
number of people can watch without taking partitions from each other and nothing is committed.
Without ``--from-beginning`` it shows alerts published from now on: Tansu reports end offsets a
little early, so after seeking to the end it also skips records whose broker
timestamp is older than the moment it started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from collections import OrderedDict
from typing import Any, AsyncIterator, Collection, Mapping

import orjson

from streams.errors import UserError
from streams.settings import Settings, parse_duration_ms
from streams.timefmt import format_minute
from streams.cli.argtypes import positive_int
from streams.kafka_admin import open_topic, stop_reader

__all__ = [
    "ACCOUNT_ALERT_KINDS",
    "ALERT_KINDS",
    "KIND_GROUPS",
    "SeenIds",
    "add_arguments",
    "follow_alerts",
    "format_alert",
    "parse_kinds",
    "parse_seconds",
    "run",
    "stop_reader",
]

logger = logging.getLogger(__name__)

ALERT_KINDS: tuple[str, ...] = ("at_risk", "recovered", "stage_changed")
#: the account alerts the same topic carries (docs/REVENUE.md, "Account alerts"), keyed by account id
ACCOUNT_ALERT_KINDS: tuple[str, ...] = ("account_at_risk", "account_recovered", "account_churned", "trial_ending")
_SEEN_MAX = 100_000  # ids remembered for de-duplication (~10 MB at most)
_STARTUP_SLACK_MS = 2_000  # broker and client clocks are the same machine's, or close to it


class SeenIds:
    """A bounded set with least-recently-seen eviction: ``add`` says whether the id is new.

    >>> seen = SeenIds(2)
    >>> [seen.add(x) for x in ("a", "b", "a", "c", "b", "a")]
    [True, True, False, True, True, True]
    """

    def __init__(self, capacity: int = _SEEN_MAX) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 id, got {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, alert_id: str) -> bool:
        if alert_id in self._ids:
            self._ids.move_to_end(alert_id)
            return False
        self._ids[alert_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._ids)


#: Names for every kind of one subject, for ``--kind``: a B2B CRM takes ``account`` (docs/ALERTS.md,
#: "Routing for a B2B CRM"); ``account_*`` says the same (``trial_ending`` is an account alert too).
KIND_GROUPS: dict[str, tuple[str, ...]] = {"account": ACCOUNT_ALERT_KINDS, "account_*": ACCOUNT_ALERT_KINDS, "user": ALERT_KINDS}


def parse_kinds(text: str | None, *, name: str = "--kind") -> frozenset[str] | None:
    """``"at_risk,recovered"`` -> the set; None or empty = every kind. ``account`` (or ``account_*``)
    is every account kind, ``user`` every user kind (:data:`KIND_GROUPS`).

    >>> sorted(parse_kinds("at-risk, recovered")), sorted(parse_kinds("account_*"))
    (['at_risk', 'recovered'], ['account_at_risk', 'account_churned', 'account_recovered', 'trial_ending'])
    """
    if not text:
        return None
    kinds = {k.strip().lower().replace("-", "_") for k in text.split(",") if k.strip()}
    kinds = {kind for k in kinds for kind in KIND_GROUPS.get(k, (k,))}
    known = (*ALERT_KINDS, *ACCOUNT_ALERT_KINDS)  # `--kind account_at_risk` was refused though the topic carries it
    unknown = sorted(kinds - set(known))
    if unknown:
        raise ValueError(f"{name}: unknown alert kind {', '.join(unknown)} (known: {', '.join(known)}; "
                         f"{', '.join(KIND_GROUPS)} for every kind of one subject)")
    return frozenset(kinds) or None


def parse_seconds(text: str, *, name: str, positive: bool = False) -> float:
    """A duration for a CLI option: a bare number is seconds, else ``500ms``, ``90s``, ``15m``, ``2h``;
    ``positive``: 0 is refused too (the message says which).

    >>> parse_seconds("1.5", name="--timeout"), parse_seconds("2m", name="--timeout")
    (1.5, 120.0)
    >>> parse_seconds("0", name="--duration", positive=True)
    Traceback (most recent call last):
    ValueError: --duration must be a duration of more than 0 seconds, got '0'
    """
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        value = parse_duration_ms(raw, name=name) / 1000.0
    if positive and not value > 0:
        raise ValueError(f"{name} must be a duration of more than 0 seconds, got {text!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a duration of 0 seconds or more, got {text!r}")
    return value


class CatchUp:
    """Ask a running ``follow_alerts`` to say when it has read every alert published so far: set
    ``wanted``; it takes the topic's end offsets at its next poll and sets ``done`` once its
    position reached them in every partition (the demo's summary waits for it, so its counts hold
    the alerts the workers published before the progress that says "replay done")."""

    def __init__(self) -> None:
        self.wanted = asyncio.Event()
        self.done = asyncio.Event()
        self.ends: dict[Any, int] | None = None


async def follow_alerts(
    settings: Settings,
    *,
    from_beginning: bool = False,
    kinds: Collection[str] | None = None,
    max_alerts: int | None = None,
    idle_timeout_s: float | None = None,
    seen: SeenIds | None = None,
    ready: asyncio.Event | None = None,
    catch_up: CatchUp | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield each new alert (the JSON object the worker wrote) once, in arrival order.

    Stops after ``max_alerts`` alerts, or when nothing new came for ``idle_timeout_s``; else runs
    until the caller stops iterating (or cancels the task). Records that are not alert objects
    are skipped with a warning (counted, not fatal: a CRM feed must not die on one bad record).
    ``ready`` is set once the partitions are assigned and positioned: alerts published after
    that are sure to be seen. ``catch_up``: see ``CatchUp``.
    """
    topic = settings.topic_alerts
    seen = seen if seen is not None else SeenIds()
    started_ms = int(time.time() * 1000) - _STARTUP_SLACK_MS
    shown = 0
    skipped = 0
    async with open_topic(settings, topic, " (create it: churnwatch topics)",
                          stop=lambda c: stop_reader(c, settings, topic)) as (consumer, tps):
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve positions now, so "ready" means positioned
            await consumer.position(tp)
        if ready is not None:
            ready.set()
        last_new = time.monotonic()
        while max_alerts is None or shown < max_alerts:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            got_new = False
            for records in batches.values():
                for rec in records:
                    if not from_beginning and rec.timestamp is not None and 0 <= rec.timestamp < started_ms:
                        continue
                    alert = _decode(rec.value)
                    if alert is None:
                        skipped += 1
                        logger.warning("skipped a record that is not an alert at %s[%s]@%s", rec.topic, rec.partition, rec.offset)
                        continue
                    if kinds is not None and alert.get("kind") not in kinds:
                        continue
                    if not seen.add(str(alert["alert_id"])):
                        continue
                    got_new = True
                    shown += 1
                    yield alert
                    if max_alerts is not None and shown >= max_alerts:
                        return
            if catch_up is not None and catch_up.wanted.is_set() and not catch_up.done.is_set():
                if catch_up.ends is None:
                    catch_up.ends = await consumer.end_offsets(tps)
                if all([await consumer.position(tp) >= end for tp, end in catch_up.ends.items()]):
                    catch_up.done.set()
            if got_new:
                last_new = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last_new >= idle_timeout_s:
                return


def _decode(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not obj.get("alert_id") or obj.get("kind") is None:
        return None
    return obj


def format_alert(alert: Mapping[str, Any]) -> str:
    """One readable line (times are event time, UTC).

    >>> format_alert({"alert_id": "x", "kind": "at_risk", "user_id": "u123", "event_time_ms": 1770120000000,
    ...               "risk": 0.8213, "health": 31.2, "temperature": 40.4, "stage": "declining",
    ...               "action": "check_in", "reasons": ["activity down 80%", "no visit for 3.0x the usual interval"]})
    '2026-02-03 12:00 AT RISK user u123 risk 0.82 health 31 temp 40 stage declining -> check in: activity down 80%; no visit for 3.0x the usual interval'
    >>> format_alert({"alert_id": "y", "kind": "account_churned", "account_id": "acme", "event_time_ms": 1770120000000, "risk": 1.0,
    ...               "stage": "churned", "lost_mrr": 49.99, "action": "win back", "reasons": ["subscription cancelled"]})
    '2026-02-03 12:00 ACCOUNT CHURNED account acme risk 1.00 stage churned lost MRR 49.99 -> win back: subscription cancelled'
    >>> format_alert({"alert_id": "z", "kind": "account_churned", "account_id": "c7", "event_time_ms": 1770120000000, "risk": 1.0,
    ...               "health": 0, "temperature": 0, "stage": "churned", "usage_unknown": True, "lost_mrr": 7.99,
    ...               "action": "win back the plan", "reasons": ["subscription cancelled"]})
    '2026-02-03 12:00 ACCOUNT CHURNED account c7 risk 1.00 use unknown temp 0 stage churned lost MRR 7.99 -> win back the plan: subscription cancelled'
    """
    kind = str(alert.get("kind", "?"))
    stage = alert.get("stage", "?")
    if kind == "stage_changed":
        head = f"STAGE {alert.get('previous_stage') or '?'} -> {stage}"
    else:
        head = kind.replace("_", " ").upper()
    when = alert.get("event_time_ms")
    who = f"account {alert['account_id']}" if alert.get("account_id") and not alert.get("user_id") else f"user {alert.get('user_id', '?')}"
    parts = [format_minute(int(when)) if isinstance(when, (int, float)) else "????-??-?? ??:??", head, who]
    for label, key, fmt in (("risk", "risk", "{:.2f}"), ("health", "health", "{:.0f}"), ("temp", "temperature", "{:.0f}")):
        value = alert.get(key)
        if key == "health" and alert.get("usage_unknown"):  # a user's own account: its health is not seen (QA19 F7)
            parts.append("use unknown")
        elif isinstance(value, (int, float)):
            parts.append(f"{label} {fmt.format(value)}")
    if kind != "stage_changed":
        parts.append(f"stage {stage}")
    if alert.get("segment"):
        parts.append(f"segment {alert['segment']}")
    if isinstance(alert.get("lost_mrr"), (int, float)):  # account_churned: what the churn took
        parts.append(f"lost MRR {alert['lost_mrr']:.2f}")
    line = " ".join(parts)
    action = alert.get("action")
    reasons = alert.get("reasons") or []
    if action and action != "none":
        line += f" -> {str(action).replace('_', ' ')}"
        if reasons:
            line += ": " + "; ".join(str(r) for r in reasons)
    elif reasons:
        line += ": " + "; ".join(str(r) for r in reasons)
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print each alert as one JSON line (the record as published)")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest alert kept by the broker")
    parser.add_argument("--kind", default=None, metavar="KIND[,KIND]",
                        help=f"only these kinds ({', '.join((*ALERT_KINDS, *ACCOUNT_ALERT_KINDS))}; 'account' for every "
                             f"account kind, 'user' for every user kind)")
    parser.add_argument("--max", type=positive_int("alerts"), default=None, metavar="N", help="stop after N alerts")
    parser.add_argument("--timeout", default=None, metavar="S",
                        help="stop when no new alert came for S seconds (also 500ms, 2m); default: follow forever")


def run(args: argparse.Namespace, settings: Settings) -> int:
    kinds = parse_kinds(args.kind)
    idle = parse_seconds(args.timeout, name="--timeout") if args.timeout is not None else None
    return asyncio.run(_print_alerts(settings, json_lines=args.json, from_beginning=args.from_beginning,
                                     kinds=kinds, max_alerts=args.max, idle_timeout_s=idle))


async def _print_alerts(settings: Settings, *, json_lines: bool, **follow: Any) -> int:
    async for alert in follow_alerts(settings, **follow):
        if json_lines:
            sys.stdout.write(orjson.dumps(alert).decode() + "\n")
        else:
            sys.stdout.write(format_alert(alert) + "\n")
        sys.stdout.flush()
    return 0
