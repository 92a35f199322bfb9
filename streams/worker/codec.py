"""Kafka record value -> ``models.events.Event`` or a ``Rejection`` with a stable reason; DLQ records.

Pure (no I/O, no clock: ``wall_now_ms`` is an argument; the random separator of ``parse_many``
never shows in a result) and built for the hot path: a fetched batch's plain records
(``Decoder.decode_many``) are read by msgspec into a Struct each, no dict built
(streams/worker/plain_json.py: it takes a value only when it reads exactly what orjson reads),
any other value by ``orjson.loads`` in its place; a handful of type checks per record, no
exceptions on the good path. The checks of a parsed value (this docstring's contract) run compiled
with the scoring core: ``models.intake.EventReader`` (a whole chunk in one call), which this
module wires to the one timestamp parser and to ``derived_event_id``.

Accepted value (a JSON object)::

    {"event_id": "e-1", "user_id": "u-1", "type": "purchase", "ts": "2026-01-05T10:00:00Z",
     "amount": 19.9, "properties": {...}}

- ``event_id``: optional non-empty string. Absent or null, it is derived from the event's content
  (``derived_event_id``: user, time, type name, amount and properties), so a re-sent copy of the
  same event gets the same id and is still recognised as a duplicate; counted in
  ``Decoder.derived_ids`` (metric ``churnwatch_events_derived_id_total``).
- ``user_id``: non-empty string of at most 256 characters.
- ``type``: non-empty string, the product's own event name (trimmed, lower-case; empty or blank:
  ``empty_type``; ``models.events.TypeMap``
  renames only what a config lists); ``Decoder.unknown_types`` (metric
  ``churnwatch_events_unknown_type_total``) counts names a map turns into ``"other"``;
  ``Decoder.untracked_types`` (metric ``churnwatch_events_untracked_type_total``) counts names
  (after the map) the model's vocabulary neither tracks nor gives a role, when the model declares
  the names it tracks (models.vocabulary ``Vocabulary.untracked``): a renamed or new event name.
- ``ts``: ISO-8601 text (``Z`` or an offset; naive text is UTC), or epoch milliseconds as a JSON
  number or a string of digits (a fraction is floored: ``"1777579200000.5"`` is ...200000). Epoch *seconds* are read as milliseconds and land in ``too_old``.
  More than ``max_clock_skew_ms`` after the wall clock: ``future``; so is one more than that after
  its own Kafka record's timestamp, whenever it is read (``models.intake.ahead_of_record``, checked
  by the pipeline, which has the record: ``ahead_detail``).
- ``amount``: optional number from 0 to ``MAX_AMOUNT`` (missing or null: 0, also for purchases); the cap keeps
  revenue sums finite in the state and in Redis' float counters.
- ``account_id``: optional string of at most 256 characters, the customer company (missing, null
  or "": the user is its own account).
- On ``subscription`` events only (docs/REVENUE.md): ``status`` (``trial``, ``active``,
  ``past_due``, ``cancelled``, ``paused``; Stripe's ``canceled`` is read as ``cancelled``), ``plan`` (text, at
  most 64 characters, optional), ``mrr`` (a number in money units with at most two decimals;
  required when ``active`` or ``past_due``, 0 for a free plan; 0 or missing when cancelled;
  missing in a trial: 0, a trial's never counts; optional when paused, counted 0, with
  ``period_end`` the resume date), an optional
  ``trial_ends`` time and an optional ``period_end`` time (the end of the period paid for, the
  next renewal: Stripe's ``current_period_end``, Chargebee's ``current_term_end``), both in either
  ``ts`` form (missing or null: not given), before 10000-01-01. A bad one is DLQ reason
  ``bad_subscription`` whose detail names the field; a ``period_end`` before 2000-01-01 is refused
  too (epoch *seconds*, as Stripe sends them, would read as a time in 1970: send milliseconds);
  an optional ``seats`` (a whole number >= 1, the seats the ``mrr`` pays for: Stripe's
  ``quantity``), else ``bad_subscription``.
- ``currency``: optional, on ``subscription`` events and events with an ``amount`` (ignored on
  others): a 3-letter ISO 4217 code, and when the deployment names one (``CHURNWATCH_CURRENCY``)
  that one, in any case; else ``bad_subscription`` / ``bad_amount`` naming both (models/currency.py).
- ``properties`` and any other field: only read to derive a missing ``event_id``.

The Kafka key is not read here: state is keyed by ``user_id`` from the value. A record whose key
differs from its ``user_id`` is re-routed to its user's partition (or rejected as
``key_not_user_id``) by the pipeline: ``streams.worker.routing``.

Duplicates: an ``event_id`` seen twice for the same user inside one batch is rejected as
``duplicate_event_id`` (by the pipeline, which sees the batch). Duplicates across batches are not
caught: that needs per-user memory of ids, beyond the ~300 bytes/user budget. Redelivery of the
same offsets (crash, rebalance) is handled by the per-bucket offset fence instead.
"""

from __future__ import annotations

import base64
import secrets
from typing import Final, Sequence

import orjson

from models.events import DEFAULT_TYPE_MAP, Event, TypeMap
from models.intake import MAX_AMOUNT, MAX_USER_ID_CHARS, EventReader, Rejection, all_within
from models.vocabulary import Vocabulary
from streams.records import derived_event_id
from streams.timefmt import MIN_EVENT_MS, format_gap, format_ts, parse_ts_ms
from streams.worker.plain_json import plain_fields, read_plain

__all__ = [
    "REASONS",
    "Rejection",
    "Decoder",
    "dlq_value",
    "ahead_detail",
    "derived_event_id",
    "parse_many",
    "PARSE_CHUNK",
    "MIN_EVENT_MS",
    "MAX_USER_ID_CHARS",
    "MAX_AMOUNT",
]

#: Every reason a record can be sent to the DLQ for (stable strings; metric label ``reason``).
REASONS: Final[tuple[str, ...]] = (
    "oversized",
    "not_utf8",
    "malformed_json",
    "too_deep",
    "not_an_object",
    "missing_field",
    "bad_type",
    "empty_user_id",
    "empty_type",
    "bad_timestamp",
    "too_old",
    "future",
    "bad_amount",
    "late",
    "duplicate_event_id",
    "bad_subscription",
    "key_not_user_id",
    "bad_origin",
)

#: Records per ``orjson.loads`` in ``Decoder.decode_many``: enough to spread the call's cost, few
#: enough that the parsed objects are still in the CPU's cache when they are validated (one call
#: per 1,250-record partition batch was no cheaper per record than one call per record; 64: ~25% less).
PARSE_CHUNK: Final[int] = 64

#: Chunks read the orjson way (``parse_many``) after one of which more than a quarter of the values
#: were not plain records (handed from msgspec to orjson). A value msgspec refuses costs its read
#: and the exception on top of orjson's decode of it alone, ~12.7k instructions more than in an
#: orjson chunk, where a plain record saves ~2.8k (docs/SCALING.md): past ~18% of other records the
#: attempt costs more than it saves, and a stream of them (no ``event_id``, a producer's extra
#: fields) pays it on one chunk in 65, ~0.2k a record, not on every one. The results are the same
#: either way; this only says where the CPU goes.
ORJSON_CHUNKS_AFTER_MISSES: Final[int] = 64

#: How orjson's ``JSONDecodeError`` starts when the text nests deeper than it reads (1024 levels),
#: which says nothing about whether the JSON is well formed.
_DEPTH_LIMIT: Final[str] = "depth limit exceeded"

#: A record without a value (a tombstone): nothing to decode.
_TOMBSTONE: Final[Rejection] = Rejection("malformed_json", "record has no value (tombstone)")


def parse_many(values: Sequence[bytes]) -> list[object] | None:
    """``[orjson.loads(v) for v in values]`` in one orjson call, or None when that cannot be
    told from the batch (a value in it is not one JSON text): the caller reads record by record.

    Why not simply ``b"[" + b",".join(values) + b"]"``: a malformed value can parse as part of
    the array and shift every value after it, with the right count. ``1,2``, ``[3`` and ``4]`` are
    three malformed records that join into three elements (1, 2 and [3, 4]). So the values are
    separated by a string nobody can write in advance (a fresh random token per call): when each
    separator comes back as a top-level element in its place, the text between two of them is
    one whole JSON value, so every element is exactly its record's own parse.

    >>> parse_many([b'{"a":1}', b' [2] ', b'"x"'])
    [{'a': 1}, [2], 'x']
    >>> parse_many([b'1,2', b'[3', b'4]']) is None
    True
    """
    if not values:
        return None
    token = secrets.token_hex(16)
    framed = list(values)  # the brackets on the end values: not two copies of the whole joined text
    framed[0] = b"[" + framed[0]
    framed[-1] = framed[-1] + b"]"
    try:
        parsed = orjson.loads((b',"' + token.encode() + b'",').join(framed))
    except orjson.JSONDecodeError:
        return None
    n = len(values)
    if len(parsed) != 2 * n - 1 or parsed[1::2].count(token) != n - 1:
        return None
    return parsed[0::2]  # type: ignore[no-any-return]


class Decoder:
    """Decodes record values with fixed limits; counts unknown event type names.

    >>> d = Decoder()
    >>> d.decode(b'{"event_id":"e1","user_id":"u1","type":"page_view","ts":"2026-01-01T00:00:00Z"}', 1_800_000_000_000)
    Event(user_id='u1', ts_ms=1767225600000, type='page_view', event_id='e1', amount=0.0, account_id='', subscription=None)
    >>> d.decode(b'{"event_id":"e1","user_id":"","type":"view","ts":0}', 1_800_000_000_000).reason
    'empty_user_id'
    """

    __slots__ = ("max_event_bytes", "max_clock_skew_ms", "type_map", "vocabulary", "_reader", "_orjson_chunks")

    def __init__(
        self,
        *,
        max_event_bytes: int = 64 * 1024,
        max_clock_skew_ms: int = 3_600_000,
        type_map: TypeMap = DEFAULT_TYPE_MAP,
        currency: str = "",
        vocabulary: Vocabulary | None = None,
    ) -> None:
        if max_event_bytes < 64:
            raise ValueError(f"max_event_bytes must be at least 64 bytes, got {max_event_bytes}")
        if max_clock_skew_ms < 0:
            raise ValueError(f"max_clock_skew_ms must be >= 0 ms, got {max_clock_skew_ms}")
        self.max_event_bytes = max_event_bytes
        self.max_clock_skew_ms = max_clock_skew_ms
        self.type_map = type_map
        self.vocabulary = vocabulary  # the model's (ChurnModel.compiled.vocabulary); None: untracked_types stays 0
        # The checks of a parsed value, compiled with the scoring core (models/intake.py).
        self._reader = EventReader(MIN_EVENT_MS, max_clock_skew_ms, type_map, parse_ts_ms, derived_event_id, currency,
                                   vocabulary)
        self._orjson_chunks = 0  # chunks left to read the orjson way (ORJSON_CHUNKS_AFTER_MISSES)

    def decode(self, value: bytes | None, wall_now_ms: int) -> Event | Rejection:
        """One record value. Never raises on any input."""
        if value is None:
            return _TOMBSTONE
        if len(value) > self.max_event_bytes:
            return Rejection("oversized", f"{len(value)} bytes > max_event_bytes {self.max_event_bytes}")
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as uexc:
                return Rejection("not_utf8", f"invalid UTF-8 at byte {uexc.start}")
            if str(exc).startswith(_DEPTH_LIMIT):  # it may be valid JSON: not "malformed" (QA5 L5)
                return Rejection("too_deep", f"JSON nested deeper than the parser reads (1024 levels; {exc})"[:200])
            return Rejection("malformed_json", str(exc)[:200])
        return self._reader.event(obj, wall_now_ms)

    def decode_many(self, values: Sequence[bytes | None], wall_now_ms: int) -> list[Event | Rejection]:
        """The values of one fetched batch, each exactly as :meth:`decode` reads it (the same
        events, rejections and counts, in the same order), in chunks of ``PARSE_CHUNK``: each
        plain record read by msgspec (``read_plain``, no dict built), any other value by
        :meth:`decode` in its place (``EventReader.read_events``, compiled). After a chunk of
        which more than a quarter were other values, ``ORJSON_CHUNKS_AFTER_MISSES`` chunks are read with one
        ``orjson.loads`` each (``parse_many``); one that does not parse as a whole (a malformed
        record in it) is read record by record, so every bad record keeps its own reason."""
        if len(values) <= PARSE_CHUNK:
            return self._decode_chunk(values, wall_now_ms)
        out: list[Event | Rejection] = []
        for i in range(0, len(values), PARSE_CHUNK):
            out += self._decode_chunk(values[i:i + PARSE_CHUNK], wall_now_ms)
        return out

    def _decode_chunk(self, values: Sequence[bytes | None], wall_now_ms: int) -> list[Event | Rejection]:
        """``decode_many`` of at most ``PARSE_CHUNK`` values."""
        if not self._orjson_chunks and type(values) is list:
            reader = self._reader
            before = reader.reread_count
            events = reader.read_events(values, read_plain, plain_fields, self.decode, self.max_event_bytes, wall_now_ms)
            if (reader.reread_count - before) * 4 > len(values):
                self._orjson_chunks = ORJSON_CHUNKS_AFTER_MISSES
            return events
        if self._orjson_chunks:
            self._orjson_chunks -= 1
        return self._orjson_chunk(values, wall_now_ms)

    def _orjson_chunk(self, values: Sequence[bytes | None], wall_now_ms: int) -> list[Event | Rejection]:
        """``decode_many`` of at most ``PARSE_CHUNK`` values, with one ``orjson.loads`` for all."""
        limit = self.max_event_bytes
        if len(values) > 1 and type(values) is list and all_within(values, limit):  # the usual chunk
            objs = parse_many(values)
            return self._reader.events(objs, wall_now_ms) if objs is not None else [self.decode(v, wall_now_ms) for v in values]
        joinable = [v for v in values if v is not None and len(v) <= limit]
        objs = parse_many(joinable) if len(joinable) > 1 else None
        if objs is None:
            return [self.decode(v, wall_now_ms) for v in values]
        if len(joinable) == len(values):
            return self._reader.events(objs, wall_now_ms)
        event = self._reader.event
        parsed = iter(objs)  # tombstones and oversized values in between: their own rejections
        return [event(next(parsed), wall_now_ms) if v is not None and len(v) <= limit else self.decode(v, wall_now_ms)
                for v in values]

    def event(self, obj: object, wall_now_ms: int) -> Event | Rejection:
        """A parsed record value (any JSON) -> the event, or why it is not one (models.intake, compiled)."""
        return self._reader.event(obj, wall_now_ms)

    @property
    def unknown_types(self) -> int:
        """Type names a map turned into ``"other"``, so far (metric ``churnwatch_events_unknown_type_total``)."""
        return self._reader.unknown_types

    @property
    def untracked_types(self) -> int:
        """Events whose type (after the map) the model neither tracks nor gives a role, so far
        (metric ``churnwatch_events_untracked_type_total``)."""
        return self._reader.untracked_types

    @property
    def untracked_names(self) -> list[str]:
        """The first of those names (after the map; at most 20), in the order first seen: for a log line."""
        return self._reader.untracked_names

    @property
    def reread(self) -> int:
        """Values :meth:`decode_many` took from msgspec's path to orjson's, so far (not plain
        records, tombstones, oversized values; the chunks read the orjson way aside)."""
        return self._reader.reread_count

    @property
    def derived_ids(self) -> int:
        """Events whose ``event_id`` was derived, so far (metric ``churnwatch_events_derived_id_total``)."""
        return self._reader.derived_ids


def ahead_detail(ts_ms: int, stamp_ms: int) -> str:
    """The DLQ ``future`` detail of an event dated ahead of its own Kafka record
    (``models.intake.ahead_of_record``): both times in UTC and the gap, then in epoch ms, as the
    ``late`` detail gives them (streams.worker.phases ``late_detail``).

    >>> ahead_detail(1_795_564_800_000, 1_793_491_200_000)
    "ts 2026-11-25T00:00:00.000Z is 24.0 days ahead of its Kafka record's timestamp 2026-11-01T00:00:00.000Z, the time it was written (epoch ms 1795564800000 > 1793491200000)"
    """
    return (f"ts {format_ts(ts_ms)} is {format_gap(ts_ms - stamp_ms)} ahead of its Kafka record's timestamp "
            f"{format_ts(stamp_ms)}, the time it was written (epoch ms {ts_ms} > {stamp_ms})")


def dlq_value(
    rejection: Rejection,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    value: bytes | None,
    max_value_bytes: int = 64 * 1024,
) -> bytes:
    """The DLQ record value: why, where from, and the original bytes (text if UTF-8, else base64).

    Values longer than ``max_value_bytes`` (only ``oversized`` ones) are cut, and say so, so the
    DLQ record itself stays under the broker's message size limit.

    >>> import orjson
    >>> orjson.loads(dlq_value(Rejection("not_utf8", "x"), topic="t", partition=1, offset=7, timestamp_ms=5, value=b"\\xff"))["value"]
    '/w=='
    """
    body: dict[str, object] = {
        "reason": rejection.reason,
        "detail": rejection.detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp_ms": timestamp_ms,
    }
    if value is None:
        body["value"] = None
        body["value_encoding"] = None
    else:
        if len(value) > max_value_bytes:
            body["value_bytes"] = len(value)
            body["value_truncated"] = True
            value = value[:max_value_bytes]
        try:
            body["value"] = value.decode("utf-8")
            body["value_encoding"] = "utf-8"
        except UnicodeDecodeError:
            body["value"] = base64.b64encode(value).decode("ascii")
            body["value_encoding"] = "base64"
    return orjson.dumps(body)
