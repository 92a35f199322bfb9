"""Kafka administration every role shares: client options, creating topics, partition counts,
reading a whole topic without a group.

Why one place: the worker's topics, the accounts table, the digest and the forwarder's dead
letters are each created by the role that owns them, and each must get an explicit partition
count (a broker that auto-creates topics picks its own: Tansu 4, which would fix the key ->
partition map for good) and the same connection and security options (the CA file included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping

from streams.errors import UserError
from streams.settings import Settings

__all__ = ["RETRY_LOGGER", "RepeatLimit", "create_topics", "kafka_python_client_kwargs", "limit_kafka_repeats", "list_topics", "open_topic", "read_compacted",
           "partition_count", "quiet_kafka_logs", "stop_reader"]

logger = logging.getLogger(__name__)


def kafka_python_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection and security options for kafka-python clients (adds the CA file)."""
    kw = settings.kafka_client_kwargs()
    if settings.kafka_ssl_cafile:
        kw["ssl_cafile"] = settings.kafka_ssl_cafile
    return kw


#: (topic, partitions found, partitions set) already warned about in this process.
_WARNED: set[tuple[str, int, int]] = set()


def create_topics(settings: Settings, topics: Mapping[str, Mapping[str, str] | None], *,
                  client_id: str = "churnwatch-topics", timeout_s: float = 0.0, warn: bool = False) -> dict[str, str]:
    """Create each missing topic of ``topics`` (name -> topic configs or None) with
    ``settings.partitions`` partitions; leave existing ones alone (idempotent).

    Returns ``{topic: "created" | "exists" | "exists with N partitions"}``: a topic with another
    partition count is reported. It is logged as a WARNING only with ``warn`` (the worker, which
    lays its state out per partition) and once per process: after ``churnwatch topics --partitions 4``,
    as README allows, every publish, simulate and digest printed three warnings a user could do
    nothing about (QA4 #9); elsewhere at DEBUG. Retries while no broker answers, up to
    ``timeout_s`` (0: one try).
    """
    from kafka.errors import TopicAlreadyExistsError
    from kafka.admin import NewTopic

    admin = _admin(settings, client_id, timeout_s)
    outcome: dict[str, str] = {}
    try:
        existing = set(admin.list_topics())
        for name, configs in topics.items():
            if name in existing:
                outcome[name] = "exists"
                continue
            try:
                admin.create_topics([NewTopic(name, settings.partitions, settings.replication_factor,
                                              topic_configs=dict(configs or {}))])
                outcome[name] = "created"
            except TopicAlreadyExistsError:
                outcome[name] = "exists"
        for name, state in outcome.items():
            count = _partition_count(admin, name) if state == "exists" else None
            if count is not None and count != settings.partitions:
                outcome[name] = f"exists with {count} partitions"
                seen = (name, count, settings.partitions)
                level = logging.WARNING if warn and seen not in _WARNED else logging.DEBUG
                if level == logging.WARNING:
                    _WARNED.add(seen)
                logger.log(level, "topic %s exists with %s partitions, CHURNWATCH_PARTITIONS says %s (existing topics are "
                           "left as they are)", name, count, settings.partitions)
    finally:
        admin.close()
    return outcome


def list_topics(settings: Settings) -> set[str]:
    """The topics the cluster has (a listing never auto-creates one, unlike a metadata request
    naming the topic on brokers that auto-create)."""
    admin = _admin(settings, "churnwatch-topics", 0.0)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


#: ``churnwatch alerts`` (the CRM's feed), ``churnwatch dlq`` (the dead letters) and ``churnwatch train
#: --from-topic`` (the retained history) each read every partition of one topic with aiokafka, no group:
#: one way to check the topic exists without asking the broker to create it (listing topics reads
#: metadata; Tansu auto-creates a 4-partition topic on a fetch) and to end in one readable line.
@contextlib.asynccontextmanager
async def open_topic(settings: Settings, topic: str, missing: str, *, stop: Callable[[Any], Awaitable[None]] | None = None,
                     **options: Any) -> AsyncIterator[tuple[Any, list[Any]]]:
    """``(consumer, partitions)``: a started aiokafka consumer with no group, every partition of
    ``topic`` assigned (in partition order, not positioned); ``options`` are the consumer's own.
    A missing topic raises ``UserError("topic ... does not exist on <servers>" + missing)``.
    ``stop(consumer)`` ends it (default: ``consumer.stop()``)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.publisher import check_kafka_reachable, start_client
    from streams.settings import aiokafka_client_kwargs

    await asyncio.to_thread(check_kafka_reachable, settings)
    consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **options)
    await start_client(consumer, settings)
    try:
        if topic not in await consumer.topics():
            raise UserError(f"topic {topic!r} does not exist on {settings.kafka_bootstrap_servers}{missing}")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        yield consumer, tps
    finally:
        await (stop(consumer) if stop is not None else consumer.stop())


async def stop_reader(consumer: Any, settings: Settings, topic: str | None = None, what: str = "alerts") -> None:
    """Stop the consumer; a broker lost while following ends in one line, not a traceback.

    aiokafka's ``stop`` awaits the fetch task it cancels and lets that task's ``CancelledError``
    (or a Kafka error) out when the broker went away mid-fetch (QA13 F5). Our own cancellation
    (Ctrl-C, a caller's ``wait_for``) is passed on untouched.
    """
    from aiokafka.errors import KafkaError

    try:
        await consumer.stop()
    except (asyncio.CancelledError, KafkaError) as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise UserError(f"lost the connection to Kafka at {settings.kafka_bootstrap_servers} while following "
                        f"{topic or settings.topic_alerts!r} ({type(exc).__name__}); the {what} above are all that were read") from None


def read_compacted(settings: Settings, topic: str, take: Callable[[bytes | None, bytes | None], None],
                   timeout_s: float) -> bool | None:
    """Feed every record of ``topic`` (key, value; a tombstone's value is None) to ``take``, from
    each partition's start to its end: True when every end was reached, False after ``timeout_s``
    without, None when the topic does not exist (no partitions: seeking nothing would raise). The
    end is the highwater of each fetch: the end offsets Tansu, the broker of the demo and the
    tests, reports are not the log end. One reader of the compacted tables (the accounts table,
    the erasure log), last record per key left to ``take``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_client_kwargs(settings), enable_auto_commit=False,
                             auto_offset_reset="earliest", group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            return None
        consumer.assign(parts)
        consumer.seek_to_beginning()
        pending, deadline = set(parts), time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    take(r.key, r.value)
            for tp in list(pending):
                high = consumer.highwater(tp)
                if high is not None and consumer.position(tp) >= high:
                    pending.discard(tp)
        return not pending
    finally:
        consumer.close()


def partition_count(settings: Settings, topic: str) -> int | None:
    """The partition count of ``topic`` as the broker describes it (None: unknown)."""
    admin = _admin(settings, "churnwatch-topics", 0.0)
    try:
        return _partition_count(admin, topic)
    finally:
        admin.close()


def quiet_kafka_logs(service: bool = False, read_only: bool = False) -> None:
    """kafka-python and aiokafka log every connection at INFO: noise next to a command's output unless
    DEBUG. A long-running service (``service``) keeps aiokafka's INFO: its group joins, assignments and
    coordinator changes are what an operator reads in its log during a rebalance. A command that only
    reads (``read_only``: ``score``, ``top``, ``accounts show``, ...) hears none of their lines:
    under load kafka-python's WARNINGs ("Task ... ran for 0.365s ... blocking the event loop", 16
    of them for one ``accounts show`` in QA11 F9) are about the client's own loop, and its ERRORs
    come from closing a client with a metadata refresh or a socket read in flight ("Metadata
    refresh: failed Cancelled", a traceback of ``'NoneType' object has no attribute 'recv'``:
    QA18 F9), which the command recovers from. A broker that does not answer is the command's own
    one-line error (``check_kafka_reachable``; streams.cli.main for a client error that stops it).
    ``--log-level DEBUG`` shows every line of the clients."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        level = logging.CRITICAL if read_only else logging.WARNING
        for name in ("kafka",) if service else ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(level)


#: Logger of churnwatch's own lines that repeat while a dependency stays down (the worker's failed
#: cycles, its Redis retries): held back by :class:`RepeatLimit` like the Kafka clients' lines.
RETRY_LOGGER = "streams.worker.retry"


class RepeatLimit(logging.Filter):
    """Lets one record per (logger, message template) through every ``every_s`` seconds of the
    records' own times, and says on the next one how many it held back.

    During a broker outage aiokafka logs a connection error per node per retry: ~1,450 ERROR lines
    in 22 s from one worker (QA, 2 December), which buries the worker's own lines and fills disks;
    with Redis down, a caught-up worker logged a traceback a second (QA3 #5: ``RETRY_LOGGER``).
    The first line of each kind still comes at once; the count keeps the volume visible."""

    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka", "kafka", RETRY_LOGGER), every_s: float = 10.0) -> None:
        super().__init__()
        self.prefixes, self.every_s = prefixes, every_s
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (time let through, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        shown_at, held = self._last.get(key, (float("-inf"), 0))
        if record.created - shown_at < self.every_s:
            self._last[key] = (shown_at, held + 1)
            return False
        self._last[key] = (record.created, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.every_s:g} s not shown)"
        return True


def limit_kafka_repeats(every_s: float = 10.0) -> None:
    """Install :class:`RepeatLimit` on the root logger's handlers (child loggers' records reach
    them without passing the parents' own filters): the Kafka clients' lines and ``RETRY_LOGGER``'s."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatLimit) for f in handler.filters):
            handler.addFilter(RepeatLimit(every_s=every_s))


def _admin(settings: Settings, client_id: str, timeout_s: float) -> Any:
    """An admin client, retried every 0.5 s while no broker answers, up to ``timeout_s``."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(client_id=client_id, **kafka_python_client_kwargs(settings))
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"no Kafka broker answered at {settings.kafka_bootstrap_servers} "
                                      f"in {timeout_s:.0f} s: {exc}") from exc
            time.sleep(0.5)


def _partition_count(admin: Any, topic: str) -> int | None:
    from kafka.errors import KafkaError

    try:
        described = admin.describe_topics([topic])
    except KafkaError:
        return None
    for entry in described:
        if (entry.get("name") or entry.get("topic")) == topic and entry.get("partitions") is not None:
            return len(entry["partitions"])
    return None
