"""The forwarder: follow the alerts topic and POST each alert to a CRM webhook, at least once.

Order of things (why nothing is lost): the forwarder reads in a consumer group of its own
(``settings.forward_group``) and commits a partition's offset only after every alert before it
was *settled*: delivered (2xx, or 409 = the receiver had it already), or written to the
dead-letter topic (``settings.topic_alerts_dlq``, acknowledged by the broker) because the
receiver refused it for good (other 4xx, or a redirect: never followed, see
``streams.forward.webhook``) or kept failing for ``max_attempts`` tries; or passed over, an
alert of a kind ``--kind`` does not ask for (a B2B CRM takes the account kinds). A crash in
between re-sends the same alerts with the same ``Idempotency-Key`` (the alert id): receivers
de-duplicate on it. Within a partition alerts go one after another (a user's alerts stay in
order); partitions are sent concurrently. Dead letters are at-least-once too (a crash before the
commit writes them again). The request rules are in ``streams.forward.webhook``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urljoin

import orjson

from streams.forward.webhook import backoff_s, headers, redirect_detail, verdict
from streams.settings import Settings

__all__ = ["ForwardOptions", "ForwardStats", "forward", "settle"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    url: str
    secret: bytes
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_start_s: float = 0.5
    backoff_max_s: float = 30.0
    from_beginning: bool = False  # where a new group starts; afterwards its committed offsets rule
    idle_exit_s: float | None = None  # stop once nothing came for this long (tests, one-off runs)
    session_timeout_ms: int = 10_000  # consumer group session; a join takes about half of it (Tansu)
    # only alerts of these kinds are POSTed (``--kind``, streams.cli.alerts.parse_kinds); the others are
    # passed over and committed like delivered ones (a B2B CRM: the account kinds; docs/ALERTS.md). None: all
    kinds: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"--url must be an http:// or https:// URL, got {self.url!r}")
        if not self.secret:
            raise ValueError("the webhook secret is empty: set CHURNWATCH_FORWARD_SECRET (receivers verify the signature with it)")
        if self.timeout_s <= 0 or self.max_attempts < 1:
            raise ValueError(f"timeout must be above 0 s and attempts at least 1, got {self.timeout_s} s and {self.max_attempts}")


@dataclass(slots=True)
class ForwardStats:
    delivered: int = 0
    dead_lettered: int = 0
    retries: int = 0
    skipped: int = 0  # records that are not alerts (also dead-lettered)
    passed_over: int = 0  # alerts of a kind not asked for (``ForwardOptions.kinds``): not sent, committed
    by_reason: dict[str, int] = field(default_factory=dict)


#: Every reason the forwarder dead-letters an alert for (``churnwatch dlq --alerts --reason`` checks against it)
DLQ_REASONS: tuple[str, ...] = ("refused", "retries_exhausted", "not_an_alert")

#: ``settle``'s outcome when told to stop between tries: neither delivered nor dead-lettered, so not
#: committed either (the next run sends it again)
ABANDONED = "abandoned"


async def _wait_or_stop(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when stopped (Ctrl-C must not wait out back-offs)."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


async def settle(session: Any, opts: ForwardOptions, body: bytes, alert_id: str, stats: ForwardStats,
                 model: str = "", stop: asyncio.Event | None = None) -> tuple[str, str] | None:
    """POST until delivered; None when delivered, else ``(reason, detail)`` for the dead-letter topic, or
    ``(ABANDONED, detail)`` when ``stop`` was set during a back-off."""
    import aiohttp

    detail = ""
    for attempt in range(1, opts.max_attempts + 1):
        try:
            # redirects are not followed: aiohttp would re-send a 301/302/303'd POST as a GET without
            # the body, and the page it lands on answering 200 counted as delivered (QA6 H1)
            async with session.post(opts.url, data=body, headers=headers(opts.secret, body, alert_id, attempt, model),
                                    timeout=aiohttp.ClientTimeout(total=opts.timeout_s), allow_redirects=False) as reply:
                text = (await reply.text(errors="replace"))[:500]
                outcome = verdict(reply.status)
                if outcome == "delivered":
                    return None
                if 300 <= reply.status < 400:
                    location = reply.headers.get("Location")
                    detail = redirect_detail(reply.status, urljoin(opts.url, location) if location else None)
                else:
                    detail = f"HTTP {reply.status}: {text}"
                if outcome == "refused":
                    return "refused", detail
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:500]
        if attempt < opts.max_attempts:
            stats.retries += 1
            if await _wait_or_stop(stop, backoff_s(attempt, start_s=opts.backoff_start_s, max_s=opts.backoff_max_s)):
                return ABANDONED, detail
    return "retries_exhausted", detail


def _dlq_value(reason: str, detail: str, rec: Any, opts: ForwardOptions, attempts: int) -> bytes:
    return orjson.dumps({
        "reason": reason, "detail": detail, "url": opts.url, "max_attempts": attempts,
        "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
        "alert": orjson.loads(rec.value) if reason != "not_an_alert" else None,
        "original": rec.value.decode("utf-8", "replace") if rec.value is not None else None,
    })


def _model_of(rec: Any) -> str:
    """The id of the model that scored the alert (the worker's ``churnwatch-model`` header), or "".

    >>> R = type("R", (), {"headers": [("churnwatch-timing", b"1,2,3"), ("churnwatch-model", b"m@1")]})
    >>> _model_of(R()), _model_of(type("R", (), {"headers": []})())
    ('m@1', '')
    """
    for name, value in getattr(rec, "headers", None) or ():
        if name == "churnwatch-model" and value:
            return bytes(value).decode("utf-8", "replace")
    return ""


async def _partition(session: Any, producer: Any, settings: Settings, opts: ForwardOptions, records: Sequence[Any],
                     stats: ForwardStats, stop: asyncio.Event | None = None) -> int:
    """Settle one partition's records in offset order; dead letters are acknowledged before returning.
    Returns the offset to commit: the first record not settled (after the last one when all were), which
    is where the next run must start even if nothing settled (a new group starts at the log's end):
    once ``stop`` is set, the records not yet settled are left for the next run (a receiver that is down
    made Ctrl-C wait out up to 500 alerts x every back-off, hours)."""
    resume = records[0].offset
    for rec in records:
        if stop is not None and stop.is_set():
            break
        try:
            alert = orjson.loads(rec.value) if rec.value is not None else None
            alert_id = str(alert["alert_id"]) if isinstance(alert, dict) and alert.get("alert_id") else None
        except orjson.JSONDecodeError:
            alert_id = None
        if alert_id is None:
            stats.skipped += 1
            outcome: tuple[str, str] | None = ("not_an_alert", "no alert_id in the record")
        elif opts.kinds is not None and alert.get("kind") not in opts.kinds:  # type: ignore[union-attr]
            stats.passed_over += 1
            resume = rec.offset + 1
            continue
        else:
            outcome = await settle(session, opts, rec.value, alert_id, stats, _model_of(rec), stop)
        if outcome is None:
            stats.delivered += 1
            resume = rec.offset + 1
            continue
        reason, detail = outcome
        if reason == ABANDONED:
            break
        stats.dead_lettered += 1
        stats.by_reason[reason] = stats.by_reason.get(reason, 0) + 1
        logger.warning("alert at %s[%s]@%s dead-lettered (%s): %s", rec.topic, rec.partition, rec.offset, reason, detail[:200])
        await producer.send_and_wait(settings.topic_alerts_dlq, key=rec.key, value=_dlq_value(reason, detail, rec, opts, opts.max_attempts))
        resume = rec.offset + 1
    return resume


def _ensure_topics(settings: Settings) -> None:
    """The alerts topic must exist (``churnwatch topics``); the dead-letter topic is created if missing."""
    from streams.errors import UserError
    from streams.kafka_admin import create_topics, list_topics

    if settings.topic_alerts not in list_topics(settings):
        raise UserError(f"topic {settings.topic_alerts!r} does not exist on {settings.kafka_bootstrap_servers} "
                        f"(create it: churnwatch topics)")
    create_topics(settings, {settings.topic_alerts_dlq: None}, client_id="churnwatch-forward")


async def forward(settings: Settings, opts: ForwardOptions, stop: asyncio.Event | None = None) -> ForwardStats:
    """Run until ``stop`` is set (or idle for ``opts.idle_exit_s``); returns what was done."""
    import aiohttp
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.publisher import check_kafka_reachable, start_client
    from streams.settings import aiokafka_client_kwargs

    stop = stop or asyncio.Event()
    stats = ForwardStats()
    await asyncio.to_thread(check_kafka_reachable, settings)
    await asyncio.to_thread(_ensure_topics, settings)
    consumer = AIOKafkaConsumer(
        settings.topic_alerts, **aiokafka_client_kwargs(settings), group_id=settings.forward_group,
        enable_auto_commit=False, auto_offset_reset="earliest" if opts.from_beginning else "latest",
        session_timeout_ms=opts.session_timeout_ms, heartbeat_interval_ms=1_000, max_poll_interval_ms=30 * 60_000,
    )
    producer = AIOKafkaProducer(**aiokafka_client_kwargs(settings), acks="all", linger_ms=0)
    await start_client(producer, settings)
    try:
        await start_client(consumer, settings)
        try:
            async with aiohttp.ClientSession() as session:
                last_record = time.monotonic()
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    if not batches:
                        if opts.idle_exit_s is not None and time.monotonic() - last_record >= opts.idle_exit_s:
                            break
                        continue
                    last_record = time.monotonic()
                    resume = await asyncio.gather(*(_partition(session, producer, settings, opts, recs, stats, stop)
                                                    for recs in batches.values()))
                    # only past the settled records may the group move (all of them unless stopped); a partition
                    # that settled nothing still commits its batch's first offset: a new group starts at the log's
                    # end ("latest"), so without it the next run would skip the abandoned batch and all until it joins
                    await consumer.commit(dict(zip(batches, resume)))
                    logger.info("forwarded: %s delivered, %s dead-lettered, %s retries so far",
                                stats.delivered, stats.dead_lettered, stats.retries)
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    return stats
