"""A parsed event record (any JSON value) -> ``Event`` or a ``Rejection``: the codec's checks, compiled.

Why here: the worker checks every record it reads (streams/worker/codec.py has msgspec read each
plain record into a Struct, :meth:`EventReader.read_events`, and orjson any other value, handing
each parsed value to :meth:`EventReader.event`); as Python these checks were about a fifth of the
decode phase and a tenth of a realistic cycle's CPU. They are pure
(no I/O, no clock: ``wall_now_ms`` is an argument), so they are compiled with the scoring core
(models/_native.py). What needs a library outside models/ comes in as a function: reading a text
timestamp (streams.timefmt), hashing the id of an event sent without one (orjson, blake2b), and
reading a record value (msgspec, orjson).
streams/worker/codec.py documents the record format and the reasons, and re-exports
:class:`Rejection`.

>>> r = EventReader(946_684_800_000, 3_600_000, TypeMap({}), int, lambda obj, ts_ms, amount: "d-1")
>>> r.event({"user_id": "u1", "type": " View", "ts": 1_767_225_600_000}, 1_800_000_000_000)
Event(user_id='u1', ts_ms=1767225600000, type='view', event_id='d-1', amount=0.0, account_id='', subscription=None)
>>> r.event({"user_id": 7, "type": "view", "ts": 0}, 1_800_000_000_000)
Rejection(reason='bad_type', detail='user_id is an int, expected a string')
>>> r.event({"user_id": "u1", "type": "  ", "ts": 1_767_225_600_000}, 1_800_000_000_000)
Rejection(reason='empty_type', detail='type is empty or blank')
>>> r.derived_ids, r.unknown_types
(1, 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Final

from models.currency import currency_refusal
from models.events import Event, TypeMap
from models.subscription import Subscription, a_type
from models.vocabulary import Vocabulary

__all__ = ["MAX_AMOUNT", "MAX_USER_ID_CHARS", "MIN_RECORD_STAMP_MS", "UNTRACKED_NAMES_MAX", "EventReader", "Rejection",
           "UserBatch", "ahead_of_record", "all_within", "epoch_unit_hint", "group_plain", "record_values"]

MAX_USER_ID_CHARS: Final[int] = 256
MAX_AMOUNT: Final[float] = 1e12  # a purchase above a trillion is a unit or encoding mistake
_MAX_AMOUNT_INT: Final[int] = 1_000_000_000_000  # MAX_AMOUNT as an int: an int amount is compared exactly
_TYPE_CACHE_MAX: Final[int] = 4096  # free-text type names; bounded so junk cannot grow memory
UNTRACKED_NAMES_MAX: Final[int] = 20  # untracked names kept for the worker's log line (a rename is one or two)
#: A Kafka record timestamp before 2000-01-01 is no clock reading: -1 (a record written without
#: one), 0 (a test's record), a producer stamping epoch seconds. :func:`ahead_of_record` ignores it.
MIN_RECORD_STAMP_MS: Final[int] = 946_684_800_000
#: The fields :meth:`EventReader.read_events` passes for a record read by msgspec: it has none
#: but those read into the record's object (``properties`` aside). Never written to.
_NO_FIELDS: Final[dict[str, object]] = {}


def epoch_unit_hint(ms: int, earliest_ms: int, latest_ms: int | None) -> str:
    """What unit an epoch number refused as milliseconds was likely in, for the people who read
    the detail: epoch seconds when ``ms`` seconds is a time from ``earliest_ms`` to ``latest_ms``
    (None: no end), microseconds when ``ms`` microseconds is; else "". One rule for ``ts`` (too old,
    future) and ``period_end`` (QA10 F12: "too old: ts 1796000000 ms is before 2000-01-01" did not
    say why).

    >>> epoch_unit_hint(1_796_000_000, 946_684_800_000, 1_800_000_000_000)
    ' (epoch seconds? send milliseconds)'
    >>> epoch_unit_hint(1_794_203_674_639_280, 946_684_800_000, 1_800_000_000_000)
    ' (epoch microseconds? send milliseconds)'
    >>> epoch_unit_hint(-5, 946_684_800_000, None), epoch_unit_hint(1_900_000_000, 946_684_800_000, 1_800_000_000_000)
    ('', '')
    """
    if ms * 1000 >= earliest_ms and (latest_ms is None or ms * 1000 <= latest_ms):
        return " (epoch seconds? send milliseconds)"
    if ms // 1000 >= earliest_ms and (latest_ms is None or ms // 1000 <= latest_ms):
        return " (epoch microseconds? send milliseconds)"
    return ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot become an event. ``reason`` is one of the codec's ``REASONS``; ``detail`` is for people."""

    reason: str
    detail: str


class EventReader:
    """Checks parsed record values with fixed limits; counts unknown event type names
    (``unknown_types``), events whose type the model's ``vocabulary`` neither tracks nor gives a
    role (``untracked_types``: None, no model, counts none) and events whose id it derived (``derived_ids``).

    ``min_event_ms`` is 2000-01-01 (streams.timefmt.MIN_EVENT_MS: the details say that date);
    ``parse_text_ms`` reads a ``ts`` given as text (ValueError when it cannot: DLQ reason
    ``bad_timestamp``); ``derive_id(obj, ts_ms, amount)`` is the id of an event sent without one.
    ``currency`` is the deployment's (``CHURNWATCH_CURRENCY``, upper case; "" unnamed): an event's
    ``currency`` field is checked against it (:meth:`money_currency`).
    """

    def __init__(self, min_event_ms: int, max_clock_skew_ms: int, type_map: TypeMap, parse_text_ms: Callable[[str], int],
                 derive_id: Callable[[dict[str, object], int, float], str], currency: str = "",
                 vocabulary: Vocabulary | None = None) -> None:
        self.currency = currency
        self.min_event_ms = min_event_ms
        self.max_clock_skew_ms = max_clock_skew_ms
        self.type_map = type_map
        self.parse_text_ms = parse_text_ms
        self.derive_id = derive_id
        self.vocabulary = vocabulary
        self.unknown_types = 0
        self.untracked_types = 0
        self.untracked_names: list[str] = []  # the first untracked names seen (at most UNTRACKED_NAMES_MAX), for a log line
        self.derived_ids = 0
        self.reread_count = 0  # values :meth:`read_events` handed to its ``reread``
        self.types: dict[str, tuple[str, bool, bool]] = {}  # type name -> (canonical, known, untracked)

    def events(self, objs: list[object], wall_now_ms: int) -> list[Event | Rejection]:
        """:meth:`event` of each parsed value, in order (one call for a chunk: the loop runs compiled)."""
        return [self.event(obj, wall_now_ms) for obj in objs]

    def event(self, obj: object, wall_now_ms: int) -> Event | Rejection:
        """A parsed record value (any JSON) -> the event, or why it is not one."""
        if type(obj) is not dict:
            return Rejection("not_an_object", f"JSON {type(obj).__name__}, expected an object")
        fields: dict[str, object] = obj
        return self.fields_event(fields.get("event_id"), fields.get("user_id"), fields.get("type"), fields.get("ts"),
                                 fields.get("amount"), fields.get("account_id"), fields, wall_now_ms)

    def read_events(self, values: list[bytes | None], read: Callable[[bytes], Any], fields_of: Callable[[Any], tuple[Any, ...]],
                    reread: Callable[[bytes | None, int], Event | Rejection], limit: int,
                    wall_now_ms: int) -> list[Event | Rejection]:
        """Each value read by ``read`` into an object of a plain record's fields and checked as
        :meth:`event` checks that record's dict; a value ``read`` refuses (raises), a tombstone or
        one over ``limit`` bytes, by ``reread`` in its place (counted in ``reread_count``).

        ``read`` is the codec's msgspec decoder (streams/worker/plain_json.py): it builds no dict,
        and gives a record only when every value in it is what orjson would give; ``fields_of``
        gives them as a tuple, ``event_id`` (a string), ``user_id``, ``type``, ``ts``, ``amount`` and
        ``account_id`` first (msgspec's ``astuple``, from the Struct's slots: six generic attribute
        reads cost ~1.2k instructions a record, the tuple ~0.6k less), and the record has no other
        field than those and ``properties``. So the fields :meth:`fields_event`
        reads from the dict of such a record and does not get here (a subscription's, ``currency``)
        are absent from it, as from ``_NO_FIELDS``, and no id is derived (``event_id`` is given).
        ``reread`` is the codec's orjson decode of one value (every rejection's reason and detail);
        called in place, so the counts and the untracked names are in the order of the values."""
        out: list[Event | Rejection] = []
        for v in values:
            rec: Any = None
            if v is not None and len(v) <= limit:
                try:
                    rec = read(v)
                except Exception:  # not a plain record in msgspec's reading: orjson's reads it
                    rec = None
            if rec is None:
                self.reread_count += 1
                out.append(reread(v, wall_now_ms))
            else:
                t = fields_of(rec)
                out.append(self.fields_event(t[0], t[1], t[2], t[3], t[4], t[5], _NO_FIELDS, wall_now_ms))
        return out

    def fields_event(self, event_id: object, user_id: object, name: object, ts: object, raw_amount: object,
                     raw_account: object, fields: dict[str, object], wall_now_ms: int) -> Event | Rejection:
        """The checks of :meth:`event` on a record's values (None: absent or null); ``fields``, the
        whole record, is read for the subscription fields, ``currency`` and a derived id."""
        if user_id is None or name is None or ts is None:
            missing = [k for k, v in (("user_id", user_id), ("type", name), ("ts", ts)) if v is None]
            return Rejection("missing_field", "missing " + ", ".join(missing))
        if event_id is None:
            eid = ""  # derived below, once the rest is known to be valid
        elif type(event_id) is not str:
            return Rejection("bad_type", f"event_id is {a_type(event_id)}, expected a string")
        else:
            eid = event_id
            if not eid:
                return Rejection("missing_field", "event_id is empty (leave it out to have it derived)")
        if type(user_id) is not str:
            return Rejection("bad_type", f"user_id is {a_type(user_id)}, expected a string")
        uid: str = user_id
        if not uid:
            return Rejection("empty_user_id", "user_id is empty")
        if len(uid) > MAX_USER_ID_CHARS:
            return Rejection("bad_type", f"user_id has {len(uid)} characters, at most {MAX_USER_ID_CHARS}")
        if type(name) is not str:
            return Rejection("bad_type", f"type is {a_type(name)}, expected a string")
        type_name: str = name

        if type(ts) is int:  # the common form, without the call
            ts_ms: int = ts
        else:
            parsed = self.timestamp_ms(ts)
            if isinstance(parsed, Rejection):
                return parsed
            ts_ms = parsed
        latest_ms = wall_now_ms + self.max_clock_skew_ms
        if ts_ms < self.min_event_ms:
            return Rejection("too_old", f"ts {ts_ms} ms is before 2000-01-01{epoch_unit_hint(ts_ms, self.min_event_ms, latest_ms)}")
        if ts_ms > latest_ms:
            return Rejection("future", f"ts {ts_ms} ms is {ts_ms - wall_now_ms} ms ahead of the wall clock"
                                       f"{epoch_unit_hint(ts_ms, self.min_event_ms, latest_ms)}")

        amount = 0.0
        if raw_amount is not None:
            if type(raw_amount) is float:
                amount = raw_amount
                if not (0.0 <= amount <= MAX_AMOUNT):  # also false for NaN and inf
                    return Rejection("bad_amount", f"amount {raw_amount!r} is not a number from 0 to {MAX_AMOUNT:g}")
            elif type(raw_amount) is int:
                whole: int = raw_amount
                if not (0 <= whole <= _MAX_AMOUNT_INT):
                    return Rejection("bad_amount", f"amount {raw_amount!r} is not a number from 0 to {MAX_AMOUNT:g}")
                amount = float(whole)
            else:
                return Rejection("bad_amount", f"amount is {a_type(raw_amount)}, expected a number")

        etype = self.canonical_type(type_name)
        if not etype:  # "" or blank: no name to track or to give a role (training would pick "" as a type)
            return Rejection("empty_type", "type is empty or blank")
        account_id = ""
        if raw_account is not None:
            if type(raw_account) is not str:
                return Rejection("bad_type", f"account_id must be a string of at most {MAX_USER_ID_CHARS} characters")
            account_id = raw_account
            if len(account_id) > MAX_USER_ID_CHARS:
                return Rejection("bad_type", f"account_id must be a string of at most {MAX_USER_ID_CHARS} characters")
        sub: Subscription | None = None
        if etype == "subscription":
            checked = self.subscription(fields)
            if isinstance(checked, Rejection):
                return checked
            sub = checked
        if self.currency and fields.get("currency") is not None:  # unset (the default): ignored, no call
            refused = self.money_currency(fields, sub is not None, raw_amount is not None)
            if refused is not None:
                return refused
        if not eid:
            self.derived_ids += 1
            eid = self.derive_id(fields, ts_ms, amount)
        if sub is not None:
            return Event(uid, ts_ms, "subscription", eid, amount, account_id, sub)
        return Event(uid, ts_ms, etype, eid, amount, account_id)

    def canonical_type(self, name: str) -> str:
        """The canonical type of a type name (cached: free text, so the cache is bounded); unknown
        names count in ``unknown_types``, names the model does not track (after the map) in
        ``untracked_types`` (a blank name is refused as ``empty_type``: counted in neither)."""
        cached = self.types.get(name)
        if cached is None:
            canonical = self.type_map.canonical(name)
            known = canonical != "other" or name.strip().lower() == "other"
            untracked = self.vocabulary is not None and bool(canonical) and self.vocabulary.untracked(canonical)
            cached = (canonical, known, untracked)
            if len(self.types) < _TYPE_CACHE_MAX:
                self.types[name] = cached
            if untracked and len(self.untracked_names) < UNTRACKED_NAMES_MAX and canonical not in self.untracked_names:
                self.untracked_names.append(canonical)
        if not cached[1]:
            self.unknown_types += 1
        if cached[2]:
            self.untracked_types += 1
        return cached[0]

    def timestamp_ms(self, ts: object) -> int | Rejection:
        """A JSON ``ts`` -> epoch ms (text through ``parse_text_ms``), or the DLQ reason."""
        if type(ts) is int:
            whole: int = ts
            return whole
        if type(ts) is float:
            value: float = ts
            if not math.isfinite(value):
                return Rejection("bad_timestamp", f"ts {value!r} is not finite")
            return math.floor(value)
        if type(ts) is str:
            text: str = ts
            try:
                return self.parse_text_ms(text)
            except ValueError as exc:
                return Rejection("bad_timestamp", str(exc).replace("timestamp", "ts", 1))
        return Rejection("bad_type", f"ts is {a_type(ts)}, expected ISO-8601 text or epoch milliseconds")

    def subscription(self, fields: dict[str, object]) -> Subscription | Rejection:
        """The subscription fields of a ``subscription`` event, checked by the models' own rules."""
        mrr = fields.get("mrr")
        if mrr is not None and (type(mrr) is not int and type(mrr) is not float):
            return Rejection("bad_subscription", f"mrr is {a_type(mrr)}, expected a number")
        seats = fields.get("seats")
        if seats is not None and (type(seats) is not int and type(seats) is not float):
            return Rejection("bad_subscription", f"seats is {a_type(seats)}, expected a whole number")
        ends_ms = self.optional_time(fields, "trial_ends")
        if isinstance(ends_ms, Rejection):
            return ends_ms
        period_end_ms = self.optional_time(fields, "period_end")
        if isinstance(period_end_ms, Rejection):
            return period_end_ms
        if 0 < period_end_ms < self.min_event_ms:
            return Rejection("bad_subscription", f"period_end {period_end_ms} ms is before 2000-01-01"
                                                 f"{epoch_unit_hint(period_end_ms, self.min_event_ms, None)}")
        try:
            return Subscription.parse(fields.get("status"), fields.get("plan"), mrr, ends_ms, period_end_ms, seats)
        except ValueError as exc:
            return Rejection("bad_subscription", str(exc)[:200])

    def money_currency(self, fields: dict[str, object], statement: bool, priced: bool) -> Rejection | None:
        """The optional ``currency`` of a subscription ``statement`` or of an event with an amount
        (``priced``): refused (``bad_subscription`` / ``bad_amount``) when it is not a code or not
        the deployment's (models.currency); ignored on other events, as any other field. The
        deployment's own code, what producers send on every priced event, is told here without the
        interpreted check (review 16 L-5: +40 % a decode)."""
        raw = fields.get("currency")
        if raw is None or raw == self.currency or not (statement or priced):
            return None
        why = currency_refusal(raw, self.currency)
        if not why:
            return None
        return Rejection("bad_subscription" if statement else "bad_amount", why)

    def optional_time(self, fields: dict[str, object], name: str) -> int | Rejection:
        """An optional time field of a subscription event (either ``ts`` form) -> epoch ms, 0 when
        missing or null; a bad one is ``bad_subscription`` with a detail that names the field."""
        value = fields.get(name)
        if value is None:
            return 0
        parsed = self.timestamp_ms(value)
        if isinstance(parsed, Rejection):
            return Rejection("bad_subscription", parsed.detail.replace("ts", name, 1))
        return parsed


def ahead_of_record(ts_ms: int, stamp_ms: int, max_clock_skew_ms: int) -> bool:
    """Whether an event is dated more than ``max_clock_skew_ms`` after its own Kafka record's
    timestamp (``stamp_ms``: the producer's create time or the broker's log-append time): the
    event claims to have happened after it was written, the fault the wall-clock bound catches
    (DLQ ``future``) while the worker reads live, and the only trace of it once the worker reads
    later (a catch-up, a rebuild, a history replay: QA22b F4, one device clock 25 days ahead moved
    every partition's clock). A property of the record alone, so every reading of it, live or
    replayed, in any batching, judges it alike. A timestamp before 2000 is no clock: never ahead.

    >>> ahead_of_record(1_790_000_000_000 + 3_600_001, 1_790_000_000_000, 3_600_000)
    True
    >>> ahead_of_record(1_790_000_000_000 + 3_600_000, 1_790_000_000_000, 3_600_000), ahead_of_record(1_790_000_000_000, -1, 0)
    (False, False)
    """
    return ts_ms - stamp_ms > max_clock_skew_ms and stamp_ms >= MIN_RECORD_STAMP_MS


def record_values(records: list[Any]) -> list[bytes | None]:
    """Each record's ``value``, in order (the worker's decode takes a chunk's values; compiled, as
    the comprehension it replaces ran in the interpreter)."""
    return [rec.value for rec in records]


def all_within(values: list[bytes | None], limit: int) -> bool:
    """Whether every value is there (no tombstone) and at most ``limit`` bytes: a chunk the codec
    parses in one orjson call (streams.worker.codec.parse_many) without setting any aside."""
    for v in values:
        if v is None or len(v) > limit:
            return False
    return True


class UserBatch:
    """One user's events in a worker batch, with their offsets for the per-bucket replay fence
    (streams.worker.phases groups them). Here, compiled, so :func:`group_plain` makes and fills
    one without a Python call: building it through a Python ``__init__`` and appending through
    two attribute lookups and method calls by name was about a fifth of the grouping's work.

    >>> ub = UserBatch(3); ub.events.append(Event("u1", 5, "view", "e1")); ub.offsets.append(7)
    >>> ub == UserBatch(3, [Event("u1", 5, "view", "e1")], [7]), ub.partition, ub.offsets
    (True, 3, [7])
    """

    partition: int
    events: list[Event]
    offsets: list[int]

    def __init__(self, partition: int, events: list[Event] | None = None, offsets: list[int] | None = None) -> None:
        self.partition = partition
        self.events = [] if events is None else events
        self.offsets = [] if offsets is None else offsets

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserBatch):
            return NotImplemented
        return self.partition == other.partition and self.events == other.events and self.offsets == other.offsets

    def __repr__(self) -> str:
        return f"UserBatch(partition={self.partition!r}, events={self.events!r}, offsets={self.offsets!r})"


def group_plain(records: list[Any], events: list[Event | Rejection], start: int, with_headers: bool, check_keys: bool,
                clock: Any, seen_ids: dict[str, str], users: dict[str, UserBatch], partition: int,
                max_clock_skew_ms: int) -> int:
    """The worker's grouping of a chunk's events by user (streams.worker.phases ``Decoding``) for
    the plain records, compiled: from ``start``, each record that is an event, has no headers, is
    keyed by its user id's UTF-8 (when ``check_keys``), has an ``event_id`` not seen in the batch,
    names no account and carries no subscription, is not :func:`ahead_of_record` (its record's
    ``timestamp``, inline), and that its partition's ``clock``
    (streams.worker.clock.PartitionClock) admits, is grouped: ``seen_ids[event_id] = user_id``,
    its event and offset appended to the user's :class:`UserBatch` in ``users`` (made for a user
    not there yet). Returns the index of the first record that is not such a one (``len(events)``
    when all were), untouched but for a clock that refused it, which changed nothing: the caller
    reads it the general way and calls again after it, so records are handled in offset order.

    The clock's fold (``PartitionClock.admit``: refused below ``floor_ms`` or more than
    ``allowed_lateness_ms`` below the stream time, which a later event moves up) runs inline on
    its fields, written back once a call: a Python call per record was a quarter of this loop. The
    id is checked and entered with one ``setdefault``, the last test (``in`` then a store were two
    probes of a dict that grows to the batch's size)."""
    stream: int = clock.stream_ms
    floor: int = clock.floor_ms
    lateness: int = clock.allowed_lateness_ms
    moved = False
    n = len(events)
    i = start
    while i < n:
        ev = events[i]
        if not isinstance(ev, Event):
            break
        rec = records[i]
        if with_headers and rec.headers:
            break
        uid = ev.user_id
        if check_keys:
            key = rec.key
            if key is None or key != uid.encode():
                break
        if ev.account_id or ev.subscription is not None:
            break
        ts = ev.ts_ms
        if ts < floor or (ts <= stream and ts < stream - lateness):
            break
        stamp: int = rec.timestamp  # unboxed once: native arithmetic below, not the generic kind
        if ts - stamp > max_clock_skew_ms and stamp >= MIN_RECORD_STAMP_MS:  # ahead_of_record, inline
            break
        size = len(seen_ids)
        seen_ids.setdefault(ev.event_id, uid)  # one probe: a new id is entered, a seen one left as it was
        if len(seen_ids) == size:
            break
        if ts > stream:
            stream = ts
            moved = True
        ub = users.get(uid)
        if ub is None:
            ub = UserBatch(partition)
            users[uid] = ub
        ub.events.append(ev)
        ub.offsets.append(rec.offset)
        i += 1
    if moved:
        clock.stream_ms = stream
    return i
