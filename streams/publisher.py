"""Publishing activity events: the small API product services call, a bulk path, and ``churnwatch publish``.

Two producers, each where it is best (measured on Tansu):

- :class:`EventPublisher` is on kafka-python: synchronous, so it drops into any web handler or
  script without an event loop, and its idempotent producer works on Tansu (aiokafka's fails),
  so a retried batch cannot duplicate events. ~25k events/s is plenty for a product service.
- :func:`publish_bulk` is on aiokafka (~90k events/s here against ~25k; measured again with
  93k simulated events on a busy machine: ~59k against ~18k): used by the simulator
  and ``churnwatch publish`` to replay files. Not idempotent (Tansu refuses aiokafka's
  InitProducerId, checked again 2026-12-03); a produce batch the client retries after a lost
  acknowledgement may be written twice: its copy lands about one produce batch (``BATCH_BYTES``,
  ~2,700 records of ~94 bytes) behind its original in the partition, so usually in a later worker
  batch (a cycle takes at most 10,000 records over all partitions), where it is applied twice; a
  rebuild or replay may then count it once or twice (README "Nothing lost, nothing counted twice",
  QA7 M1, review 11 R11-5).

Both key records by user id (Kafka's murmur2 partitioner in both clients, so the same user lands
on the same partition whichever path published it: the worker's per-partition clocks need that)
and write the JSON value the worker's decoder reads (``streams.worker.codec``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping, Sequence

import orjson

from models.events import Event
from streams.errors import UserError
from streams.records import record_fields
from streams.worker.codec import Decoder, Rejection
from streams.offline.bad_lines import BadLines, RowError
from streams.offline.history import numbered_events_csv, readable
from streams.offline.late_start import Arrivals, late_start_warning
from streams.timefmt import format_gap, format_ts, parse_ts_ms
from streams.worker.clock import JUMP_MARGIN_MS
from streams.kafka_admin import kafka_python_client_kwargs
from streams.settings import Settings, aiokafka_client_kwargs

__all__ = [
    "PublishFailed",
    "start_client",
    "BulkStats",
    "check_kafka_reachable",
    "ensure_events_topic",
    "EventPublisher",
    "aiokafka_client_kwargs",
    "event_value",
    "publish_bulk",
    "read_records",
    "read_timed_records",
    "check_file",
    "records_in_time_order",
    "FileOrder",
]

logger = logging.getLogger(__name__)

LINGER_MS = 20
BATCH_BYTES = 256 * 1024
_BULK_WINDOW = 20_000  # records in flight before the bulk path waits for acks (bounds memory)


def event_value(ev: Event) -> bytes:
    """The record value of a validated event (``streams.records.record_fields``: ``amount``
    when not 0, whatever the type's name; ``account_id`` when set; the subscription fields on
    subscription events).

    >>> event_value(Event("u1", 1767225600000, "purchase", "e1", 9.5))
    b'{"event_id":"e1","user_id":"u1","type":"purchase","ts":1767225600000,"amount":9.5}'
    """
    return orjson.dumps(record_fields(ev))


def _ts_ms(ts: int | float | str | datetime | None) -> int:
    if ts is None:
        # A product service publishing "now": the event happened at publish time. Wall clock is
        # right here (this is the event's source), never inside the worker.
        return int(time.time() * 1000)
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        return int(ts.timestamp() * 1000)
    if isinstance(ts, bool):
        raise ValueError(f"ts must be epoch milliseconds, ISO-8601 text or a datetime, got {ts!r}")
    if isinstance(ts, (int, float)):
        if not math.isfinite(ts):
            raise ValueError(f"ts must be finite epoch milliseconds, got {ts!r}")
        return int(ts)
    return parse_ts_ms(ts)


class EventPublisher:
    """Publish product events to the events topic (kafka-python, idempotent, acks=all).

    ``publish`` returns kafka-python's future (``.get(timeout)`` gives the record metadata);
    records are batched for ``linger`` 20 ms into batches of up to 256 KiB, so call ``flush()``
    (or leave the ``with`` block) before relying on delivery.

    Usage::

        with EventPublisher(Settings.from_env()) as pub:
            pub.publish("u123", "page_view")                         # now
            pub.publish("u123", "purchase", ts="2026-02-03T12:00:00Z", amount=19.9)
    """

    def __init__(self, settings: Settings, *, idempotent: bool = True, **producer_options: Any) -> None:
        from kafka import KafkaProducer

        self.topic = settings.topic_events
        self._decoder = Decoder(max_event_bytes=settings.max_event_bytes, max_clock_skew_ms=settings.max_clock_skew_ms,
                                currency=settings.currency)
        self._max_skew_ms = settings.max_clock_skew_ms
        options: dict[str, Any] = {
            **kafka_python_client_kwargs(settings),
            "acks": "all",
            "linger_ms": LINGER_MS,
            "batch_size": BATCH_BYTES,
            "enable_idempotence": idempotent,
        }
        options.update(producer_options)
        self._producer = KafkaProducer(**options)
        self.sent = 0

    def publish(
        self,
        user_id: str,
        type: str,
        ts: int | float | str | datetime | None = None,
        event_id: str | None = None,
        amount: float | None = None,
        properties: Mapping[str, Any] | None = None,
    ) -> Any:
        """Queue one event; ValueError if the worker would reject it (same rules as ``streams.worker.codec``)."""
        body: dict[str, Any] = {
            "event_id": event_id or str(uuid.uuid4()),
            "user_id": user_id,
            "type": type,
            "ts": _ts_ms(ts),
        }
        if amount is not None:
            # orjson writes NaN/inf as null, which would pass as "no amount": refuse them here
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < math.inf:
                raise ValueError(f"amount must be a finite number >= 0, got {amount!r}")
            body["amount"] = amount
        if properties:
            body["properties"] = dict(properties)
        value = orjson.dumps(body)
        self._check(value)
        return self._producer.send(self.topic, key=user_id.encode("utf-8"), value=value)

    def publish_many(self, events: Iterable[Event | Mapping[str, Any]]) -> int:
        """Queue many events (``Event`` objects, or mappings with ``publish``'s argument names); returns the count."""
        n = 0
        for ev in events:
            if isinstance(ev, Event):
                value = event_value(ev)
                self._check(value)
                self._producer.send(self.topic, key=ev.user_id.encode("utf-8"), value=value)
            else:
                self.publish(**ev)
            n += 1
        return n

    def _check(self, value: bytes) -> None:
        result = self._decoder.decode(value, int(time.time() * 1000))
        if isinstance(result, Rejection):
            raise ValueError(f"event rejected ({result.reason}): {result.detail}")
        self.sent += 1

    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued event is acknowledged (or ``timeout`` seconds pass)."""
        self._producer.flush(timeout=timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush and release the connections."""
        self._producer.close(timeout=timeout)

    def __enter__(self) -> "EventPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Bulk path (aiokafka)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkStats:
    """What a bulk publish did: records, wall seconds, and the last offset written per partition
    (what a worker's Redis progress must reach for everything to be processed)."""

    events: int
    seconds: float
    last_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def check_kafka_reachable(settings: Settings, timeout_s: float = 3.0) -> None:
    """UserError with one readable line unless some bootstrap server accepts a TCP connection.

    Checked before a client starts because aiokafka and kafka-python log connection failures at
    ERROR level (noise on a CLI) and report malformed addresses as bare int() errors.
    """
    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    addresses: list[tuple[str, int]] = []
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise UserError(f"Kafka bootstrap server {server!r} is not host:port with a port from 1 to 65535")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses:
        raise UserError("no Kafka bootstrap servers given (--bootstrap-servers or KAFKA_BOOTSTRAP_SERVERS)")
    errors: list[str] = []
    for address in addresses:
        try:
            socket.create_connection(address, timeout=timeout_s).close()
            return
        except OSError as exc:
            errors.append(f"{address[0]}:{address[1]} ({exc.strerror or exc})")
    raise UserError(f"cannot reach Kafka at {', '.join(errors)}")


async def start_client(client: Any, settings: Settings) -> None:
    """Start an aiokafka consumer or producer; an unreachable broker is one readable line."""
    from aiokafka.errors import KafkaConnectionError

    try:
        await client.start()
    except KafkaConnectionError as exc:
        await client.stop()
        raise UserError(f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}") from None


Record = tuple[str, bytes]  # (user id = key, value)


def _records(items: Iterable[Event | Record]) -> Iterator[Record]:
    for item in items:
        if isinstance(item, Event):
            yield item.user_id, event_value(item)
        else:
            yield item


class PublishFailed(UserError):
    """A bulk publish the broker failed part of: one line saying what it acknowledged, what it
    did not and what to do (``churnwatch publish`` ended in aiokafka's traceback, QA5 M2)."""


async def publish_bulk_async(
    settings: Settings,
    items: Iterable[Event | Record],
    *,
    rate: float = 0.0,
    progress: Any = None,
    unacked_to: Path | None = None,
) -> BulkStats:
    """Publish in the given order as fast as acks allow, or paced at ``rate`` events/s.

    ``progress(n_sent)`` is called about every 20k records (for a person watching). If the broker
    fails a record (``PublishFailed``), the records it did not acknowledge and those not sent yet
    are written to ``unacked_to`` (JSON lines, what ``churnwatch publish`` reads), if given; those
    refused for good (:func:`_refusals` raised by ``send`` for the record itself, a record over
    the size limit; a produce request's error fails its whole batch, so those are retried) apart, beside it
    (:func:`refused_file`), since publishing them again fails again.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    if rate < 0 or math.isnan(rate):
        raise ValueError(f"rate must be 0 (unlimited) or more events per second, got {rate}")
    await asyncio.to_thread(check_kafka_reachable, settings)
    producer = AIOKafkaProducer(
        **aiokafka_client_kwargs(settings), acks="all", linger_ms=LINGER_MS, max_batch_size=BATCH_BYTES
    )
    await start_client(producer, settings)
    t0 = time.monotonic()  # again at the first record: what the iterator took before it is not sending
    n = acked = 0
    last: dict[int, int] = {}
    pending: list[tuple[asyncio.Future[Any], Record]] = []
    failed: list[tuple[Record, BaseException]] = []  # in flight, failed: each of its batch's error
    at_send: list[tuple[Record, BaseException]] = []  # the record ``send`` itself refused (its own fault)

    async def settle() -> BaseException | None:
        """Await the records in flight; count the acknowledged, keep the others; the first error."""
        nonlocal acked
        error = None
        for (_, record), md in zip(pending, await asyncio.gather(*(f for f, _ in pending), return_exceptions=True)):
            if isinstance(md, BaseException):
                failed.append((record, md))
                error = error or md
            else:
                acked += 1
                if md.offset > last.get(md.partition, -1):
                    last[md.partition] = md.offset
        pending.clear()
        return error

    records = _records(items)
    error: BaseException | None = None
    try:
        for user_id, value in records:
            if n == 0:  # ``--rate`` paces from the first record, and the events/s are the sending's
                t0 = time.monotonic()
            try:
                future = await producer.send(settings.topic_events, value=value, key=user_id.encode("utf-8"))
            except KafkaError as exc:
                at_send.append(((user_id, value), exc))
                error = exc
                break
            pending.append((future, (user_id, value)))
            n += 1
            if rate > 0:
                ahead = t0 + n / rate - time.monotonic()
                if ahead > 0.005:
                    await asyncio.sleep(ahead)
            if len(pending) >= _BULK_WINDOW:
                error = await settle()
                if error is not None:
                    break
                if progress is not None:
                    progress(n)
        if error is None:
            await producer.flush()
        error = await settle() or error
        if error is None and progress is not None:
            progress(n)
    finally:
        await producer.stop()
    if error is not None:
        raise _failed(settings.topic_events, acked, failed, records, unacked_to, at_send)
    return BulkStats(n, time.monotonic() - t0, last)


def _refusals() -> tuple[type[BaseException], ...]:
    """The errors by which the producer or the broker refuses a record for good: the record itself
    is wrong for this topic (too large, a batch too large, a timestamp out of the broker's range,
    corrupt), so sending it again fails the same way, whatever the broker's health. Other errors
    (timeouts, a leader moving, a broker down) may pass on a later attempt."""
    from aiokafka.errors import (CorruptRecordException, InvalidTimestampError, MessageSizeTooLargeError,
                                 RecordListTooLargeError, RecordTooLargeError)

    return (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError, InvalidTimestampError,
            CorruptRecordException)


def refused_file(unacked_to: Path) -> Path:
    """Where a failed publish writes the records refused for good: beside ``unacked_to``, named
    after it (publishing them again fails again, so they are kept out of the file to republish).

    >>> refused_file(Path("/data/mix.unacked.jsonl")), refused_file(Path("left.jsonl"))
    (PosixPath('/data/mix.refused.jsonl'), PosixPath('left.refused.jsonl'))
    """
    name = unacked_to.name.removesuffix(".jsonl").removesuffix(".unacked")
    return unacked_to.with_name(f"{name}.refused.jsonl")


def _write_values(path: Path, records: Iterable[Record]) -> int:
    """The records' values as JSON lines (what ``churnwatch publish`` reads); how many."""
    n = 0
    with open(path, "wb") as fh:
        for _, value in records:
            fh.write(value + b"\n")
            n += 1
    return n


def _failed(topic: str, acked: int, failed: list[tuple[Record, BaseException]],
            unsent: Iterator[Record], unacked_to: Path | None,
            at_send: Sequence[tuple[Record, BaseException]] = ()) -> PublishFailed:
    """The one line of a failed bulk publish. The records refused for good (:func:`_refusals`:
    publishing them again fails again; review 2026-12-03: they went into the file to republish)
    are told apart and written to :func:`refused_file`; the others without an acknowledgement
    (the rest of ``failed``, then ``unsent``, the rest of the input) to ``unacked_to``."""
    final = _refusals()
    # Refused for good only where ``send`` refused the record itself: an error of a produce request
    # fails every record of its batch, the good ones with the bad (review 8), so those are retried.
    # ``at_send`` comes after ``failed`` in the input's order (the send that raised came last).
    refused = [(r, e) for r, e in at_send if isinstance(e, final)]
    # The record whose send raised something that may pass later is republished too, but it was
    # never sent: counted with those not sent (it was counted as sent without an acknowledgement).
    raised = [(r, e) for r, e in at_send if not isinstance(e, final)]
    retry = [r for r, _ in failed] + [r for r, _ in raised]
    what = f"publishing to {topic} failed; {acked:,} events were acknowledged"
    if refused:
        e = refused[0][1]
        what += f"; {len(refused):,} refused for good ({type(e).__name__}: {e}), which fail again if published again"
        if unacked_to is not None:
            _write_values(refused_file(unacked_to), [r for r, _ in refused])
            what += f": correct or drop them (in {refused_file(unacked_to)})"
    other = next((e for _, e in failed), None)
    cause = f" ({type(other).__name__}: {other})" if other is not None else ""
    why_not = f" (sending the first raised {type(raised[0][1]).__name__}: {raised[0][1]})" if raised else ""
    if unacked_to is None:
        return PublishFailed(f"{what}; {len(failed):,} sent were not acknowledged{cause} (the broker may hold some of "
                             f"them anyway), and the rest was not sent{why_not}. Publishing the same events again "
                             f"applies the acknowledged ones twice")
    left = _write_values(unacked_to, itertools.chain(retry, unsent))
    return PublishFailed(f"{what}; the {left:,} others (the {len(failed):,} sent without an acknowledgement{cause} and the "
                         f"{left - len(failed):,} not sent{why_not}) are in {unacked_to}. Do not publish the whole file again: the "
                         f"worker would apply the acknowledged events twice. Once the broker works, publish {unacked_to} "
                         f"(a sent event the broker wrote despite the error is then applied twice: a broker whose storage "
                         f"is inconsistent, as Tansu after a topic was created again, answers so)")


def publish_bulk(settings: Settings, items: Iterable[Event | Record], *, rate: float = 0.0,
                 unacked_to: Path | None = None) -> BulkStats:
    """Synchronous wrapper of :func:`publish_bulk_async` for commands without an event loop."""
    return asyncio.run(publish_bulk_async(settings, items, rate=rate, unacked_to=unacked_to))


# ---------------------------------------------------------------------------------------------
# Files: JSON lines or CSV
# ---------------------------------------------------------------------------------------------


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


_BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark


def _is_jsonl(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in (".jsonl", ".ndjson", ".json")


def read_records(path: str | Path, settings: Settings) -> Iterator[Record]:
    """(user id, record value) per event of a JSON-lines or CSV file, in file order
    (:func:`read_timed_records` without the times; ``churnwatch publish`` sends
    :func:`records_in_time_order`)."""
    for _, user_id, value in read_timed_records(path, settings):
        yield user_id, value


TimedRecord = tuple[int, str, bytes]  # (event time in ms, user id = key, value)


def read_timed_records(path: str | Path, settings: Settings) -> Iterator[TimedRecord]:
    """(event time in ms, user id, record value) per event of a JSON-lines or CSV file, in file order
    (:func:`_read_checked`)."""
    for ev, value in _read_checked(path, settings):
        yield ev.ts_ms, ev.user_id, value


def _read_checked(path: str | Path, settings: Settings) -> Iterator[tuple[Event, bytes]]:
    """(the event the worker reads, record value) per event of a JSON-lines or CSV file, in file order.

    JSON lines: one object per line as the worker reads it (``user_id``, ``type``, ``ts``,
    optional ``event_id``, ``amount``, ``properties``); a missing (or empty) ``event_id`` gets the id
    the worker derives from the event's content (``streams.records.derived_event_id``), written
    into the record, so a line repeated in a batch is recognised (not a file published twice: its
    copies land in later batches and count twice, QA7 M1), while two files of the same name no
    longer share ids (QA4 #2). CSV: the history
    format of ``streams.offline.history``, whose rows without an id get the same derivation. Each
    record is checked with the worker's own decoder as it will be sent, its id included (review 11
    R11-2); bad lines are read past and, at the end, raise one ValueError naming each (file and line).
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if not p.is_file():
        raise UserError(f"{p}: a folder, not a file" if p.is_dir() else f"{p}: not a regular file")
    decoder = Decoder(max_event_bytes=settings.max_event_bytes, max_clock_skew_ms=settings.max_clock_skew_ms,
                      currency=settings.currency)
    now_ms = int(time.time() * 1000)
    bad = BadLines(p.name)  # every bad line, said at the end in one error (QA23a F9: one per run before)
    if not _is_jsonl(p):
        for lineno, ev in numbered_events_csv(p, currency=settings.currency, bad=bad):
            value = event_value(ev)
            try:  # what the worker reads: its id, user id length, time, size
                checked = _decoded(decoder, value, now_ms, p, lineno)
            except RowError as exc:
                bad.add(exc)
                continue
            yield checked, value
        bad.check()
        return
    with readable(p), _open_binary(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1 and line.startswith(_BOM):  # a byte-order mark (Excel, Notepad): not part of the JSON (QA4 #6)
                line = line[len(_BOM):]
            if not line.strip():
                continue
            try:
                result, value = _json_record(line, decoder, now_ms, p, lineno)
            except RowError as exc:
                bad.add(exc)
                continue
            yield result, value
    bad.check()


def _json_record(line: bytes, decoder: Decoder, now_ms: int, p: Path, lineno: int) -> tuple[Event, bytes]:
    """The event the worker reads from one JSON line and the record sent (with the id the worker
    would derive, when it has none); RowError naming the line if it is bad."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RowError(f"{p.name} line {lineno}: not JSON ({str(exc).split(':')[0]})", lineno) from None
    if not isinstance(obj, dict):
        raise RowError(f"{p.name} line {lineno}: expected a JSON object, got {type(obj).__name__}", lineno)
    if "type" not in obj and "event_type" in obj:
        obj["type"] = obj.pop("event_type")
    derive = not obj.get("event_id")
    if derive:
        obj.pop("event_id", None)  # "" or null: derived, as the worker derives it
    value = orjson.dumps(obj)
    result = _decoded(decoder, value, now_ms, p, lineno)
    if derive:  # sent with the id the worker would derive: a backfill is no producer without ids
        obj["event_id"] = result.event_id
        value = orjson.dumps(obj)
        result = _decoded(decoder, value, now_ms, p, lineno)  # the id makes it ~40 bytes longer: still under the limit?
    return result, value


def _decoded(decoder: Decoder, value: bytes, now_ms: int, path: Path, lineno: int) -> Event:
    """The event the worker reads from ``value``, or RowError naming the file's line and the
    worker's reason: the check of a record as it will be sent (review 11 R11-2: a CSV row was never
    decoded, so a 300-character user id or a time in the future passed the check and went to the
    DLQ; a JSON line was checked before its derived id made it longer than ``max_event_bytes``)."""
    result = decoder.decode(value, now_ms)
    if isinstance(result, Rejection):
        raise RowError(f"{path.name} line {lineno}: {result.reason.replace('_', ' ')}: {result.detail}", lineno)
    return result


@dataclass(frozen=True, slots=True)
class FileOrder:
    """How far a file's rows are from event-time order (:func:`check_file`): ``events`` in all,
    ``behind`` of them earlier than a row before them, ``late`` of those by more than
    ``lateness_ms`` (the workers' allowed lateness). And whether it starts after its users signed
    up (:meth:`late_start_line`): ``arrivals``, when its users (with an event other than a billing
    statement) first appear; ``end_ms``: the file's latest event."""

    events: int
    behind: int
    late: int
    lateness_ms: int
    arrivals: Arrivals | None = None
    end_ms: int = 0
    repeats: int = 0  # rows with the user, time and id of an earlier row of the same instant (check_file)
    end_user: str = ""  # the user of the latest event (end_ms) ...
    others_end_ms: int | None = None  # ... and the latest event of every other user (None: one user)

    def ahead_line(self) -> str | None:
        """Why ``publish`` refuses a file whose latest event is one user's, more than the jump
        bound (allowed lateness plus ``JUMP_MARGIN_MS``) after every other user's (QA22b F4: one
        device clock 25 days ahead in a history; QA7 H4: a row dated "now"), None otherwise.
        Sorted, it is sent last and moves the workers' stream time to its date, which only a new
        topic repairs. Here, not in the workers: its record is written after its date, so they
        cannot tell it from the first event after a real silence (docs/ARCHITECTURE.md "Time");
        the whole file can (a real last event of one user alone, weeks after everyone: rare).

        >>> day = 86_400_000
        >>> print(FileOrder(9, 0, 0, 6 * 3_600_000, end_ms=1_795_564_800_000, end_user="p5",
        ...                 others_end_ms=1_795_564_800_000 - 25 * day).ahead_line())
        the file's latest event, user 'p5' at 2026-11-25T00:00:00.000Z, is 25.0 days after every other user's latest (2026-10-31T00:00:00.000Z): a wrong date (a device clock ahead, a row dated "now")? Sent last, it moves the workers' stream time there: every user is reviewed up to it, and events published afterwards dated more than the allowed lateness (6 h) before it go to the DLQ as late
        >>> FileOrder(9, 0, 0, 6 * 3_600_000, end_ms=8 * day, end_user="p5", others_end_ms=day).ahead_line() is None
        True
        """
        if self.others_end_ms is None or self.end_ms - self.others_end_ms <= self.lateness_ms + JUMP_MARGIN_MS:
            return None
        return (f"the file's latest event, user {self.end_user!r} at {format_ts(self.end_ms)}, is "
                f"{format_gap(self.end_ms - self.others_end_ms)} after every other user's latest ({format_ts(self.others_end_ms)}): "
                f'a wrong date (a device clock ahead, a row dated "now")? Sent last, it moves the workers\' stream time there: '
                f"every user is reviewed up to it, and events published afterwards dated more than the allowed lateness "
                f"({_span(self.lateness_ms)}) before it go to the DLQ as late")

    def late_start_line(self) -> str | None:
        """``backtest``'s and ``train``'s warning of a history that starts after its users signed
        up (QA10 F16, ``streams.offline.late_start``), None when it does not."""
        return None if self.arrivals is None else late_start_warning(self.arrivals, "publish")

    def reorder_line(self, name: str) -> str:
        """The line ``churnwatch publish`` prints when it sends a file sorted.

        >>> print(FileOrder(23_513, 23_100, 22_922, 6 * 3_600_000).reorder_line("byuser.csv"))
        reordered byuser.csv by event time: 23,100 of 23,513 events came after a later one, 22,922 of them by more than the allowed lateness (6 h), which sent in file order could go to the DLQ as late
        """
        return (f"reordered {name} by event time: {self.behind:,} of {self.events:,} events came after a later one, "
                f"{self.late:,} of them by more than the allowed lateness ({_span(self.lateness_ms)})"
                + (", which sent in file order could go to the DLQ as late" if self.late else ""))


def _span(ms: int) -> str:
    """A duration in the largest whole unit: ``6 h``, ``90 min``, ``1500 ms``.

    >>> _span(21_600_000), _span(5_400_000), _span(1_500)
    ('6 h', '90 min', '1500 ms')
    """
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1_000)):
        if ms and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def check_file(path: str | Path, settings: Settings) -> FileOrder:
    """Read and check a whole file (bad lines raise one ValueError naming each, as :func:`read_records`)
    and measure how far it is from event-time order, holding counters and each user's first time
    (each distinct user id once, for :meth:`FileOrder.late_start_line`: measured with tracemalloc,
    128 MB a million 12-character user ids). ``repeats``: rows with the user, time and event id of
    an earlier row in the same run of one time (a bulk action's rows without ``event_id``, QA pass 15
    F5: the workers count them once), only the current time's rows held.

    Why: the workers take each partition in offset order and dead-letter an event more than
    ``CHURNWATCH_ALLOWED_LATENESS_MS`` behind the partition's stream time as ``late``: published in
    file order, an export sorted by user (``ORDER BY user_id, ts``) lost 97.5% of its events that
    way, while ``backtest`` and ``train`` read the same file in any order (QA7 H1). ``late`` counts the
    rows that are that far behind a row before them anywhere in the file (an upper bound of what
    the workers would drop: one partition holds only part of the rows before them)."""
    events = behind = late = repeats = 0
    top = -(1 << 62)
    lateness = settings.allowed_lateness_ms
    first: dict[str, int] = {}  # user -> first event time, billing statements left out (as train counts users)
    instant, seen = None, set()  # the rows of the current run of one time: (user, id), for ``repeats``
    top_user, others = "", None  # the latest event's user, every other user's latest (FileOrder.ahead_line)
    for ev, _ in _read_checked(path, settings):
        ts_ms = ev.ts_ms
        events += 1
        if ts_ms != instant:
            instant, seen = ts_ms, set()
        key = (ev.user_id, ev.event_id)
        if key in seen:
            repeats += 1  # what the workers dead-letter as duplicate_event_id (in one batch)
        else:
            seen.add(key)
        if ts_ms < top:
            behind += 1
            late += ts_ms < top - lateness
            if ev.user_id != top_user and (others is None or ts_ms > others):
                others = ts_ms
        else:
            if ev.user_id != top_user:  # the previous latest is now another user's latest (>= all others)
                others = None if not top_user else top
                top_user = ev.user_id
            top = ts_ms
        if ev.subscription is None and ts_ms < first.get(ev.user_id, ts_ms + 1):
            first[ev.user_id] = ts_ms
    return FileOrder(events, behind, late, lateness, Arrivals.of(first.values(), top), top, repeats, top_user, others)


def records_in_time_order(path: str | Path, settings: Settings, order: FileOrder) -> Iterator[Record]:
    """The file's records sorted by event time, stably (records of one millisecond keep the file's
    order; the ids are the file's, as :func:`read_records` gives them), ``order`` being
    :func:`check_file`'s reading of the same file.

    A file already in order is streamed as it is read (nothing held). One that is not is read
    again into memory and sorted *here*, before this returns, so before ``publish_bulk`` starts
    its producer and its clock (review 11 R11-3: read on the first record, ``--rate`` sent about
    rate x read time events unpaced and the printed events/s counted the read and the sort). It
    holds the record values end to end in one buffer (each ``orjson.dumps`` result kept as it is
    held ~4 KiB of the heap: 4 GB for a million events, measured), an 8-byte offset, time and sort
    index (numpy's stable argsort) per event and one copy of each user id: the records' own bytes
    (plus up to an eighth while the buffer grows), about 30-40 bytes an event and each distinct user
    id once (measured with tracemalloc: 121 bytes an event held, 129 at the peak, for the
    simulator's 95-byte records of 600 users; 1,266 and 1,290 for 1,041-byte JSON lines of a
    distinct 32-character user each). A file too large for that fails
    here, nothing sent (a MemoryError becomes one line; the kernel's OOM killer may end the process
    first, still before the producer starts): sort it upstream (``ORDER BY ts``; a file in time order is
    streamed, holding only what :func:`check_file` holds)."""
    if order.behind == 0:
        return read_records(path, settings)
    try:
        return _sorted_records(path, settings)
    except MemoryError:
        raise UserError(f"{path}: {order.events:,} events out of event-time order do not fit in memory to be "
                        f"sorted (the records' bytes plus ~30-40 bytes each and the user ids); nothing was sent. Sort the file "
                        f"by its ts column first (ORDER BY ts in the export), then publish it: a file in time "
                        f"order is sent as it is read") from None


def _sorted_records(path: str | Path, settings: Settings) -> Iterator[Record]:
    """The file read whole and sorted by event time (:func:`records_in_time_order`); the returned
    iterator only slices the buffer."""
    from array import array

    import numpy as np

    times, ends = array("q"), array("q")
    users: dict[str, str] = {}
    keys: list[str] = []
    buffer = bytearray()
    for ts_ms, user_id, value in read_timed_records(path, settings):
        times.append(ts_ms)
        keys.append(users.setdefault(user_id, user_id))
        buffer += value
        ends.append(len(buffer))
    users.clear()
    ranks = np.argsort(np.frombuffer(times, dtype=np.int64), kind="stable")
    del times
    return _slices(buffer, ends, keys, ranks)


def _slices(buffer: bytearray, ends: Any, keys: list[str], ranks: Any) -> Iterator[Record]:
    """(key, value) of the records in ``buffer`` (ending at ``ends``) in the order of ``ranks``."""
    view = memoryview(buffer)
    try:
        for start in range(0, len(ranks), 1 << 16):
            for i in ranks[start:start + (1 << 16)].tolist():
                yield keys[i], bytes(view[ends[i - 1] if i else 0:ends[i]])
    finally:
        view.release()


def ensure_events_topic(settings: Settings) -> None:
    """Create the topics if missing, before the first record: a broker that auto-creates topics
    picks its own partition count (Tansu: 4), which would fix the key -> partition map for good.
    Without admin rights on a managed cluster this only warns; the topics are then the admins' job."""
    from streams.worker.topics import ensure_topics

    check_kafka_reachable(settings)
    try:
        ensure_topics(settings, timeout_s=10)
    except Exception as exc:  # authorisation, old broker: publishing may still work
        logger.warning("could not check or create topic %s: %s", settings.topic_events, exc)
