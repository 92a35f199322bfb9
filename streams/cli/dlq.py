"""``churnwatch dlq``: read the dead letters: why each record was refused, where it came from, what it held.

Why a command: the runbook's first step for ``ChurnwatchDlqRateHigh`` is "read a few DLQ records",
and with the local servers (no docker, no Kafka tools) there was nothing to read them with (QA
pass 15 F9). It reads the events' dead-letter topic (``CHURNWATCH_TOPIC_DLQ``; ``--alerts``: the
webhook forwarder's, ``CHURNWATCH_TOPIC_ALERTS_DLQ``) from its oldest record to the end it finds
at the start and stops (``--follow``: keeps reading), one readable line per dead letter, or the
record as JSON lines.

A batch the workers read twice (a rebalance, a restart before its offsets were stored) is judged
twice, so one refused record can have several dead letters (QA15 F5: 368 dead letters for 177
records); they are told apart by the refused record's own topic, partition and offset, and a
repeat is shown once (``--all``: every dead letter). Like ``churnwatch alerts`` it joins no
consumer group and commits nothing, so reading the dead letters takes nothing from anyone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, AsyncIterator, Mapping

import orjson

from streams.cli.argtypes import positive_int
from streams.errors import UserError
from streams.settings import Settings
from streams.timefmt import format_minute

__all__ = ["add_arguments", "dead_letters", "format_dead_letter", "origin", "run"]

_VALUE_CHARS = 160  # of the refused record's value on a readable line (--json has it whole)


def origin(letter: Mapping[str, Any]) -> tuple[Any, Any, Any] | None:
    """The refused record's place (topic, partition, offset), which names it across repeats;
    None when the dead letter does not say (then it is never taken for a repeat).

    >>> origin({"topic": "activity-events", "partition": 2, "offset": 41, "reason": "late"})
    ('activity-events', 2, 41)
    >>> origin({"reason": "x"}) is None
    True
    """
    place = (letter.get("topic"), letter.get("partition"), letter.get("offset"))
    return None if place[1] is None or place[2] is None else place


def format_dead_letter(letter: Mapping[str, Any]) -> str:
    """One line: when the refused record was written, why, from where, and its value (cut).

    >>> format_dead_letter({"reason": "missing_field", "detail": "missing ts", "topic": "activity-events",
    ...                     "partition": 1, "offset": 7, "timestamp_ms": 1770120000000, "value": '{"user_id":"u1"}'})
    '2026-02-03 12:00 missing_field activity-events[1]@7: missing ts | {"user_id":"u1"}'
    >>> format_dead_letter({"reason": "retries_exhausted", "detail": "HTTP 503", "topic": "churn-at-risk",
    ...                     "partition": 0, "offset": 3, "original": '{"alert_id":"a1"}'})
    '????-??-?? ??:?? retries_exhausted churn-at-risk[0]@3: HTTP 503 | {"alert_id":"a1"}'
    """
    when = letter.get("timestamp_ms")
    stamp = format_minute(int(when)) if isinstance(when, (int, float)) and when >= 0 else "????-??-?? ??:??"
    where = f"{letter.get('topic', '?')}[{letter.get('partition', '?')}]@{letter.get('offset', '?')}"
    value = letter.get("value", letter.get("original"))
    text = "" if value is None else str(value).replace("\n", " ")
    if letter.get("value_encoding") == "base64":
        text = f"(base64) {text}"
    if len(text) > _VALUE_CHARS:
        text = text[:_VALUE_CHARS] + "..."
    if letter.get("value_truncated"):
        text += f" (cut at the DLQ: {letter.get('value_bytes')} bytes)"
    return f"{stamp} {letter.get('reason', '?')} {where}: {letter.get('detail', '')} | {text}"


async def dead_letters(settings: Settings, topic: str, *, follow: bool = False) -> AsyncIterator[dict[str, Any]]:
    """Yield each dead letter from the oldest record kept; stops at the ends
    found at the start unless ``follow``. A record that is not a JSON object is given as
    ``{"reason": None, "value": <its text>}`` (a dead-letter topic a person wrote to by hand)."""
    from streams.kafka_admin import open_topic, stop_reader

    missing = ": no record was ever dead-lettered there (the workers create it with the others: churnwatch topics)"
    async with open_topic(settings, topic, missing, stop=lambda c: stop_reader(c, settings, topic, "dead letters")) as (consumer, tps):
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while follow or any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=500, max_records=1000)).values():
                for rec in records:
                    yield _letter(rec.value)


def _letter(value: bytes | None) -> dict[str, Any]:
    try:
        obj = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        return obj
    return {"reason": None, "value": None if value is None else value.decode("utf-8", "replace")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alerts", action="store_true",
                        help="the webhook forwarder's dead letters (CHURNWATCH_TOPIC_ALERTS_DLQ) instead of the events'")
    parser.add_argument("--reason", default=None, metavar="R[,R]", help="only these reasons (late, missing_field, ...)")
    parser.add_argument("--max", type=positive_int("dead letters", "dead letter"), default=None, metavar="N",
                        help="stop after N dead letters")
    parser.add_argument("--all", action="store_true", help="every dead letter, also a refused record's repeats")
    parser.add_argument("--follow", action="store_true", help="keep reading new dead letters (Ctrl-C stops)")
    parser.add_argument("--json", action="store_true", help="each dead letter as one JSON line (the record as written)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    topic = settings.topic_alerts_dlq if args.alerts else settings.topic_dlq
    reasons = {r.strip() for r in args.reason.split(",") if r.strip()} if args.reason else None
    if reasons and not args.alerts:  # a typo ("lat") read the whole topic and said "0 dead letters" (QA20 F13)
        from streams.errors import UserError
        from streams.worker.codec import REASONS

        unknown = sorted(reasons - set(REASONS))
        if unknown:
            raise UserError(f"--reason: no event is dead-lettered as {', '.join(unknown)}; the reasons are {', '.join(REASONS)}")
    return asyncio.run(_print(settings, topic, args, reasons))


async def _print(settings: Settings, topic: str, args: argparse.Namespace, reasons: set[str] | None) -> int:
    seen: set[tuple[Any, Any, Any]] = set()
    shown = repeats = 0
    by_reason: dict[str, int] = {}
    async for letter in dead_letters(settings, topic, follow=args.follow):
        if reasons is not None and letter.get("reason") not in reasons:
            continue
        place = origin(letter)
        if place is not None and not args.all:
            if place in seen:
                repeats += 1
                continue
            seen.add(place)
        shown += 1
        by_reason[str(letter.get("reason"))] = by_reason.get(str(letter.get("reason")), 0) + 1
        sys.stdout.write((orjson.dumps(letter).decode() if args.json else format_dead_letter(letter)) + "\n")
        sys.stdout.flush()
        if args.max is not None and shown >= args.max:
            break
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
    again = f"; {repeats:,} repeats of a record shown (a batch read twice; --all shows them)" if repeats else ""
    print(f"{shown:,} dead letters in {topic}{': ' + counts if counts else ''}{again}", file=sys.stderr)
    return 0
