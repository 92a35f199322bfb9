"""The pure phases of a worker cycle: decode, plan the reads, advance users (no Redis, no Kafka).

``streams.worker.pipeline`` runs them in this order and does the I/O between them::

    decode_batch -> plan_sweep -> plan_reads -> [Redis read] -> advance_users
                 -> [produce alerts + DLQ] -> [Redis write] -> [progress]

Each phase takes what the previous one returned and plain values (the partition clocks, the
model, the reply of the read), so each is unit-tested on its own (tests/test_phases.py).
Hot path: no per-event Redis call or coroutine; a handful of dict operations per event.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, fields
from itertools import groupby
from typing import Callable, Iterable, Mapping, Protocol, Sequence

import orjson

from models.engine import Alert, Mark, Turn
from models.events import Event
from models.intake import UserBatch, ahead_of_record, group_plain, record_values
from models.model import ChurnModel
from models.scoring import Assessment
from models.state import UserState
from models.step import (Todo as _Todo, advance_bucket, bucket_todo, index_scores as step_index_scores, locate_users,
                         queue_alerts)
from streams.worker.clock import NEVER, Jump, PartitionClock, jumps
from streams.worker.codec import PARSE_CHUNK, Decoder, Rejection, ahead_detail, dlq_value
from streams.worker.alert_log import KINDS_LOGGED, STAGES_LOGGED
from streams.worker.keys import offset_field
from streams.worker.routing import Routed, Router, key_problem, origin_of
from streams.worker.gap import gap_of
from streams.timefmt import format_gap, format_ts
from streams.worker.revenue import (
    ACCOUNT_HEADER,
    MEMBER_HEADER,
    AccountCopy,
    KafkaCopy,
    MemberCopy,
    account_copy,
    copy_origin,
    is_late_copy,
    is_turn_copy,
    copy_said,
    parse_member_copy,
)
from streams.worker.watermark import HEARTBEAT_HEADER, PERIOD_MS
from streams.worker.store import (UNCHANGED, BucketRead, BucketReadResult, BucketWrite, StateWrite, unreadable_delta,
                                  day_name)

__all__ = [
    "NO_DUE",
    "RecordLike",
    "CycleResult",
    "UserBatch",
    "Decoded",
    "decode_batch",
    "drop_erased_copies",
    "Decoding",
    "reaches_clock",
    "record_fingerprint",
    "plan_sweep",
    "BucketPlan",
    "plan_reads",
    "Advanced",
    "advance_users",
    "index_scores",
]

logger = logging.getLogger(__name__)

NO_DUE = 2**62  # a bucket's due index holds nothing (seconds)
KafkaRecord = tuple[bytes | None, bytes]  # (key, value) to produce


class RecordLike(Protocol):
    """What the pipeline reads of a Kafka record (aiokafka's ConsumerRecord has all of it)."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


@dataclass(slots=True)
class CycleResult:
    consumed: int = 0
    processed: int = 0  # events applied to states (after the replay fence)
    skipped: int = 0  # events at or below a bucket's stored offset (already applied)
    rejected: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    users: int = 0  # users advanced
    due_users: int = 0  # of which because a review was due
    expired: int = 0
    unreadable: int = 0  # stored states that could not be read (started afresh, or dropped)
    dropped: int = 0  # of which dropped: a review came due and no events to start from
    erased: int = 0  # events of erased users dropped (streams.worker.erase)
    buckets: int = 0  # buckets read/written
    progress: dict[int, tuple[int, int]] = field(default_factory=dict)  # written: p -> (offset, S_p)
    idle: bool = False  # nothing to do: no records and no review clock moved
    gaps: dict[int, tuple[int, int]] = field(default_factory=dict)  # p -> (offset, wall ms) of a gap mark read (streams.worker.gap)
    # (p, kind) -> user alerts kept in the state but not published: event time before alerts_from (Settings)
    withheld: dict[tuple[int, str], int] = field(default_factory=dict)
    # kind -> user alerts of account members kept off the alerts topic (Settings.member_alerts; Advanced.member_alerts)
    routed: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Decoded:
    """The batch after decoding: good events grouped by user, and the records for the DLQ."""

    users: dict[str, UserBatch] = field(default_factory=dict)
    last_offset: dict[int, int] = field(default_factory=dict)  # p -> offset of its last record
    first_offset: dict[int, int] = field(default_factory=dict)  # p -> offset of its first record (advance_users' fence test)
    last_fingerprint: dict[int, str] = field(default_factory=dict)  # p -> record_fingerprint of it
    consumed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count
    dlq: list[KafkaRecord] = field(default_factory=list)
    unknown_types: int = 0
    untracked_types: int = 0  # events whose type the model neither tracks nor gives a role
    derived_ids: int = 0  # events sent without an event_id (derived from their content)
    routed: Routed = field(default_factory=Routed)  # mis-keyed records re-routed, copies dropped
    accounts: list[AccountCopy | MemberCopy] = field(default_factory=list)  # copies read (streams.worker.revenue)
    account_copies: list[KafkaCopy] = field(default_factory=list)  # subscription events to route to their account
    account_copy_users: list[str] = field(default_factory=list)  # the user of each of account_copies (erased: dropped)
    member_of: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # user -> (account, p, offset)
    marks: dict[int, dict[int, int]] = field(default_factory=dict)  # p -> {producing q: mark} read (streams.worker.watermark)
    jumps: list[Jump] = field(default_factory=list)  # events that moved their partition's stream time far ahead (clock.jumps)
    # p -> [count, offset, ts_ms, effective stream time] of its late events far behind (PartitionClock.far_behind): the first one's
    behind: dict[int, list[int]] = field(default_factory=dict)
    # accounts of the subscription statements rejected as late, one entry each: lost to the live MRR
    # figures as a statement behind its account's watermark is (churnwatch_subscription_late_total)
    late_statements: list[str] = field(default_factory=list)
    # p -> (offset, wall ms of the restart) of the first gap mark read in p (streams.worker.gap): the
    # log holds no history before it, which the consumer reports when it built p from scratch
    gaps: dict[int, tuple[int, int]] = field(default_factory=dict)


# -- 1. decode ----------------------------------------------------------------------------------


def decode_batch(
    batch: Mapping[int, Sequence[RecordLike]],
    clocks: Mapping[int, PartitionClock],
    decoder: Decoder,
    wall_now_ms: int,
    *,
    topic: str,
    max_dlq_value_bytes: int,
    router: Router | None = None,
    billing_lateness_ms: int = 0,
) -> Decoded:
    """Decode and validate every record, route records whose key is not their user id
    (``streams.worker.routing``; not checked without a ``router``), fold event time per partition,
    reject late events and an ``event_id`` seen twice for one user in the batch; group the rest
    by user.

    Subscription events: each one kept is also queued to be copied to its account's partition, and
    so is one late for its user but at most ``billing_lateness_ms`` behind its partition's stream
    time (marked late, not given to the user: the account applies it if it rewrites no settled change);
    copies read here (``streams.worker.revenue``) go to ``accounts``, not to the users (their
    originals were scored) nor to the clock (their time was folded where they were read).

    Partitions without a clock (not owned) are ignored. Folds ``clocks`` in offset order.
    """
    decoding = Decoding(clocks, decoder, wall_now_ms, topic=topic, max_dlq_value_bytes=max_dlq_value_bytes, router=router,
                        billing_lateness_ms=billing_lateness_ms)
    for p, records in batch.items():
        decoding.feed(p, records)
    return decoding.result()


class Decoding:
    """:func:`decode_batch` a slice of records at a time, so the pipeline can turn the event loop
    between slices. Feeding each partition's records in consecutive slices (offset order) gives
    what one call over the whole batch gives: the duplicate ids are remembered batch-wide here,
    the clocks fold record by record, and a partition's last offset is its last slice's."""

    __slots__ = ("out", "clocks", "decoder", "wall_now_ms", "topic", "max_dlq_value_bytes", "router", "seen_ids",
                 "seen_pairs", "_unknown_before", "_untracked_before", "_derived_before", "billing_lateness_ms")

    def __init__(self, clocks: Mapping[int, PartitionClock], decoder: Decoder, wall_now_ms: int, *, topic: str,
                 max_dlq_value_bytes: int, router: Router | None = None, billing_lateness_ms: int = 0) -> None:
        self.out = Decoded()
        self.billing_lateness_ms = billing_lateness_ms  # CHURNWATCH_BILLING_LATENESS_MS; 0: off
        self.clocks, self.decoder, self.wall_now_ms, self.router = clocks, decoder, wall_now_ms, router
        self.topic, self.max_dlq_value_bytes = topic, max_dlq_value_bytes
        self.seen_ids: dict[str, str] = {}  # event_id -> user_id, batch-wide
        self.seen_pairs: set[tuple[str, str]] = set()  # (user_id, event_id) once ids collide across users
        self._unknown_before, self._derived_before = decoder.unknown_types, decoder.derived_ids
        self._untracked_before = decoder.untracked_types

    def reject(self, p: int, rec: RecordLike, rej: Rejection) -> None:
        out = self.out
        out.rejected[rej.reason] = out.rejected.get(rej.reason, 0) + 1
        out.dlq.append((rec.key, dlq_value(rej, topic=self.topic, partition=p, offset=rec.offset, timestamp_ms=rec.timestamp,
                                           value=rec.value, max_value_bytes=self.max_dlq_value_bytes)))

    def feed(self, p: int, records: Sequence[RecordLike]) -> None:
        """The next records of partition ``p``, in offset order."""
        pclock = self.clocks.get(p)
        if not records or pclock is None:
            return
        if len(records) <= PARSE_CHUNK:
            self._feed(p, records, pclock)
        else:
            for i in range(0, len(records), PARSE_CHUNK):
                self._feed(p, records[i:i + PARSE_CHUNK], pclock)
        self.out.first_offset.setdefault(p, records[0].offset)
        self.out.last_offset[p] = records[-1].offset
        self.out.last_fingerprint[p] = record_fingerprint(records[-1])

    def _feed(self, p: int, records: Sequence[RecordLike], pclock: PartitionClock) -> None:
        """Up to ``PARSE_CHUNK`` records: each chunk's events are grouped while the objects just
        made are in the CPU's cache (a partition's 1,250 records at once cost ~10-25% more).
        The plain records (an event keyed by its user, no headers, no account, a new id, in time)
        are grouped by the compiled ``models.intake.group_plain``; each other one by :meth:`_one`,
        in offset order."""
        out = self.out
        out.consumed += len(records)
        recs = records if type(records) is list else list(records)
        events = self.decoder.decode_many(record_values(recs), self.wall_now_ms)
        with_headers = hasattr(records[0], "headers")  # aiokafka's records have them (mostly empty); a test's may not
        check_keys, seen_ids, users = self.router is not None, self.seen_ids, out.users
        skew = self.decoder.max_clock_skew_ms
        n, i = len(recs), 0
        bound = pclock.jump_bound_ms
        while True:
            start, before = i, pclock.stream_ms  # effective_from(before) >= before: the check below is necessary
            i = group_plain(recs, events, i, with_headers, check_keys, pclock, seen_ids, users, p, skew)
            if pclock.stream_ms - before > bound:  # rare: look for the event that jumped (all of them were accepted)
                times = [(events[k].ts_ms, recs[k].offset) for k in range(start, i)]  # type: ignore[union-attr]
                out.jumps += jumps(p, before, times, bound, pclock.effective_from)
            if i >= n:
                return
            self._one(p, recs[i], events[i], with_headers, pclock, bound)
            i += 1

    def _one(self, p: int, rec: RecordLike, ev: Event | Rejection, with_headers: bool, pclock: PartitionClock, bound: int) -> None:
        """One record that is not plain (``group_plain``): a rejection, an account copy, an event
        dated ahead of its own record (``future``: ``models.intake.ahead_of_record``), a record
        to re-route, a duplicate id, a late event, an event for an account. ``bound``: p's
        ``jump_bound_ms`` (read once per chunk: this runs for every record of a stream whose events
        name an account)."""
        out, router, reject, seen_ids = self.out, self.router, self.reject, self.seen_ids
        headers = rec.headers if with_headers else None  # type: ignore[attr-defined]
        if headers:
            gap = gap_of(headers)
            if gap is not None:  # a heartbeat without a mark too (``_account_copy_read`` would skip it): noted first
                out.gaps.setdefault(p, (rec.offset, gap))
                return
            if _account_copy_read(p, rec, headers, ev, out, reject):
                return
        if isinstance(ev, Rejection):
            reject(p, rec, ev)
            return
        if ahead_of_record(ev.ts_ms, rec.timestamp, self.decoder.max_clock_skew_ms):  # before routing: a copy is stamped later
            reject(p, rec, Rejection("future", ahead_detail(ev.ts_ms, rec.timestamp)))
            return
        uid, eid = ev.user_id, ev.event_id
        if router is not None:
            key = rec.key  # (orjson never decodes a lone surrogate: plain encode() is key_problem's encoding)
            if (key is None or key != uid.encode() or headers) and not _owned_here(router, p, rec, uid, out, reject):
                return
        owner = seen_ids.get(eid)
        # Duplicates are rejected before the clock sees them: a rejected copy must not
        # move the partition's stream time (and so make good events late).
        if owner is not None and (owner == uid or (uid, eid) in self.seen_pairs):
            reject(p, rec, Rejection("duplicate_event_id", f"event_id {eid[:64]!r} seen twice in the batch for one user"))
            return
        s = pclock.stream_ms
        if not pclock.admit(ev.ts_ms):
            if ev.subscription is not None and pclock.within(ev.ts_ms, self.billing_lateness_ms):
                # late for its user, not for its account: copied there (marked late), never applied to
                # the user (docs/REVENUE.md, "Statements late for their user"); the account decides
                out.account_copies.append(account_copy(ev, p, rec.offset, rec.value, late=True))
                out.account_copy_users.append(ev.user_id)
                return
            if pclock.far_behind(ev.ts_ms):
                _far_behind(out.behind, p, rec.offset, ev.ts_ms, pclock.effective_ms)
            reject(p, rec, Rejection("late", late_detail(ev.ts_ms, pclock.cutoff_ms)))
            if ev.subscription is not None:
                out.late_statements.append(ev.account)
            return
        if ev.ts_ms - s > bound:  # rare (effective_from(s) >= s): was it a jump?
            before = pclock.effective_from(s)
            if before != NEVER and ev.ts_ms - before > bound:
                out.jumps.append(Jump(p, rec.offset, before, ev.ts_ms))
        if owner is None:
            seen_ids[eid] = uid
        else:
            self.seen_pairs.add((uid, eid))
        ub = out.users.get(uid)
        if ub is None:
            ub = out.users[uid] = UserBatch(p)
        ub.events.append(ev)
        ub.offsets.append(rec.offset)
        if ev.account_id or ev.subscription is not None:  # for the account: a member, a subscription
            _account_event(p, rec, ev, out)

    def result(self) -> Decoded:
        """The batch decoded so far (with the decoder's counts since this decoding began)."""
        self.out.unknown_types = self.decoder.unknown_types - self._unknown_before
        self.out.derived_ids = self.decoder.derived_ids - self._derived_before
        self.out.untracked_types = self.decoder.untracked_types - self._untracked_before
        return self.out


def late_detail(ts_ms: int, cutoff_ms: int) -> str:
    """The DLQ ``late`` detail: both times in UTC and the gap, for people (QA18 F10: two 13-digit
    numbers to convert), then the same two times in epoch ms for scripts that read them.

    >>> late_detail(1_772_359_200_000, 1_796_042_961_625)
    "ts 2026-03-01T10:00:00.000Z is 274.1 days before the partition's cutoff 2026-11-30T12:49:21.625Z (epoch ms 1772359200000 < 1796042961625)"
    """
    return (f"ts {format_ts(ts_ms)} is {format_gap(cutoff_ms - ts_ms)} before the partition's cutoff "
            f"{format_ts(cutoff_ms)} (epoch ms {ts_ms} < {cutoff_ms})")


def _far_behind(behind: dict[int, list[int]], p: int, offset: int, ts_ms: int, effective_ms: int) -> None:
    """Count one late event far behind p's stream time; the first of the cycle is kept for the WARNING."""
    seen = behind.get(p)
    if seen is None:
        behind[p] = [1, offset, ts_ms, effective_ms]
    else:
        seen[0] += 1


def _owned_here(router: Router, p: int, rec: RecordLike, uid: str, out: Decoded,
                reject: Callable[[int, RecordLike, Rejection], None]) -> bool:
    """Whether the event belongs to this partition: keyed by its user id and not a copy applied
    before. A mis-keyed record is re-routed (or rejected) here, before the clock sees it, and so
    is a record whose origin header cannot name a record of the topic (``bad_origin``)."""
    problem = key_problem(rec.key, uid)
    if problem is not None:
        if router.mode == "dlq":
            reject(p, rec, Rejection("key_not_user_id", f"record key is not the user id ({problem})"))
        else:
            router.reroute(p, rec.offset, uid.encode("utf-8", "surrogatepass"), rec.value, problem, out.routed)
        return False
    origin = origin_of(getattr(rec, "headers", None))
    if origin is None:
        return True
    why = router.origin_problem(p, rec.offset, origin)
    if why is not None:  # a header the worker did not write: refused, never the de-duplication mark
        reject(p, rec, Rejection("bad_origin", why))
        return False
    return router.copy_is_new(p, origin, out.routed)


#: Records the worker writes for the account side: they never reach a partition's clock.
NOT_FOR_THE_CLOCK: frozenset[str] = frozenset((ACCOUNT_HEADER, MEMBER_HEADER, HEARTBEAT_HEADER))


def reaches_clock(records: Sequence[RecordLike]) -> bool:
    """Whether any of a fetch's ``records`` reaches the partition's clock (what makes it not
    idle, ``streams.worker.clock.TopicClock.observe_fetch``): the account and member copies and
    the heartbeats do not. Were they counted, a partition whose users are quiet would never look
    idle once accounts are in use (every partition gets heartbeats), never borrow the topic's
    stream time, and its mark would hold every account's watermark. Stops at the first such
    record: on the hot path that is nearly always the fetch's first.

    >>> R = type("R", (), {})
    >>> beat, event = R(), R()
    >>> beat.headers, event.headers = [("churnwatch-heartbeat", b"2:7000")], []
    >>> reaches_clock([beat, event, beat]), reaches_clock([beat, beat]), reaches_clock([])
    (True, False, False)
    """
    for rec in records:
        headers = getattr(rec, "headers", None)
        if not headers or not any(name in NOT_FOR_THE_CLOCK for name, _ in headers):
            return True
    return False


def record_fingerprint(rec: RecordLike) -> str:
    """A checksum of a record's key and value, stored with a partition's progress: the record at
    the stored offset must still be this one when the partition is resumed, or the topic was
    replaced (deleted and created again, a move to another cluster) and its offsets mean
    other records now.

    >>> record_fingerprint(type("R", (), {"key": b"u1", "value": b"{}"})())
    'ba73ada9'
    """
    return f"{zlib.crc32(rec.value or b'', zlib.crc32(rec.key or b'')):08x}"


def _account_copy_read(p: int, rec: RecordLike, headers: object, ev: Event | Rejection, out: Decoded,
                       reject: Callable[[int, RecordLike, Rejection], None]) -> bool:
    """A member or subscription copy made for an account (``streams.worker.revenue``) goes to the
    account phase, never to the users (their originals were scored) nor to the clock; its mark, and
    a heartbeat's, are folded into ``out.marks`` (``streams.worker.watermark``). True when the
    record was one of them. ``ev`` is the record's value decoded as an event (for a member copy, a
    rejection that counted nothing: it has no ``user_id``)."""
    where = copy_origin(headers)
    if where is None:
        return False
    kind, q, q_offset, mark = where
    if mark != NEVER:  # also for a copy the account fence skips: marks only rise, a replay folds the same
        marks = out.marks.setdefault(p, {})
        if mark > marks.get(q, NEVER):
            marks[q] = mark
    if kind == HEARTBEAT_HEADER:
        return True
    if kind == MEMBER_HEADER:
        parsed = parse_member_copy(rec.value)
        if parsed is None:
            reject(p, rec, Rejection("malformed_json", "a churnwatch-member copy that is not one"))
        else:
            turn = is_turn_copy(headers)
            out.accounts.append(MemberCopy(p, rec.offset, *parsed, origin=q, origin_offset=q_offset, turn=turn,
                                           said=copy_said(rec.value) if turn else ""))
        return True
    if isinstance(ev, Rejection) or ev.subscription is None:
        reject(p, rec, ev if isinstance(ev, Rejection) else Rejection("bad_subscription", "an account copy without a subscription"))
    else:
        out.accounts.append(AccountCopy(p, rec.offset, ev, origin=q, origin_offset=q_offset, late=is_late_copy(headers)))
    return True


def _account_event(p: int, rec: RecordLike, ev: Event, out: Decoded) -> None:
    """An applied event for the accounts: a user naming its account is a member; a subscription
    is copied to its account's partition (a user without ``account_id`` is its own account)."""
    if ev.account_id:
        out.member_of[ev.user_id] = (ev.account_id, p, rec.offset)
    if ev.subscription is not None:
        out.account_copies.append(account_copy(ev, p, rec.offset, rec.value))
        out.account_copy_users.append(ev.user_id)


# -- 2. plan the reads --------------------------------------------------------------------------


def plan_sweep(until_ms: Mapping[int, int | None], due_min: Mapping[int, Sequence[int]], buckets: int) -> dict[int, dict[int, int]]:
    """``{bucket: {p: sweep up to this second}}`` for the buckets whose earliest due review (a
    lower bound per partition and bucket, 0 = unknown) is before p's review clock ``until_ms``.

    A review due at second s runs once the clock is past ``s * 1000`` ms (models.engine.advance).

    >>> plan_sweep({0: 10_500, 1: None}, {0: [5, 11, 0], 1: [0, 0, 0]}, 3)
    {0: {0: 10}, 2: {0: 10}}
    """
    sweep: dict[int, dict[int, int]] = {}
    for p, until in until_ms.items():
        bounds = due_min.get(p)
        if until is None or bounds is None:
            continue
        until_s = until // 1000
        for b in range(buckets):
            if bounds[b] * 1000 < until:
                sweep.setdefault(b, {})[p] = until_s
    return sweep


@dataclass(slots=True)
class BucketPlan:
    """What one cycle reads from one bucket: partitions (with the second to sweep their due index
    up to, or None for the offset alone) and the batch's users located in it."""

    bucket: int
    parts: dict[int, int | None] = field(default_factory=dict)
    users: list[tuple[int, str]] = field(default_factory=list)  # (group, user_id)

    def read(self, topic: str) -> BucketRead:
        return BucketRead(self.bucket, [(offset_field(topic, p), due) for p, due in self.parts.items()], self.users)


def plan_reads(
    users: Mapping[str, UserBatch], sweep: Mapping[int, Mapping[int, int]], buckets: int, groups: int
) -> list[BucketPlan]:
    """One read per bucket touched: the batch's users, the due sweeps, and in each bucket the offsets
    of the partitions whose users it holds in this cycle (with events or due), which its write fences.

    Only those: a bucket's offset of p is the replay fence of p's events in that bucket, so it must
    move when the bucket applies p's events, and a write is fenced on every partition it writes
    users of; fencing every partition with records in every bucket read (as before) cost a read,
    a compare, a write and a token per bucket and partition on each cycle, whatever its size.

    >>> [(bp.bucket, bp.parts, bp.users) for bp in plan_reads({"u1": UserBatch(0)}, {3: {1: 99}}, 64, 256)]
    [(54, {0: None}, [(125, 'u1')]), (3, {1: 99}, [])]
    """
    plans: dict[int, BucketPlan] = {}
    for b, (parts, located) in locate_users(users, buckets, groups).items():  # compiled: the per-user part
        plans[b] = BucketPlan(b, parts, located)
    for b, due_parts in sweep.items():
        plan = plans.get(b)
        if plan is None:
            plan = plans[b] = BucketPlan(b)
        plan.parts.update(due_parts)
    return list(plans.values())


# -- 3. advance users ---------------------------------------------------------------------------


@dataclass(slots=True)
class Advanced:
    """What advancing the cycle's users produced: the bucket writes, the alerts to send first, and
    what was learnt about each (partition, bucket)'s earliest due review."""

    writes: list[BucketWrite] = field(default_factory=list)
    alerts: list[KafkaRecord] = field(default_factory=list)
    # user alerts of account members (Alert.member) when Settings.member_alerts keeps them off the alerts topic:
    # for topic_member_alerts ("separate") or dropped ("none")
    member_alerts: list[KafkaRecord] = field(default_factory=list)
    learned: list[tuple[int, int, int]] = field(default_factory=list)  # (p, bucket, lower bound of next due s)
    lowered: list[tuple[int, int, int]] = field(default_factory=list)  # (p, bucket, due second written)
    # users naming an account, with the marks their step took (models.engine.Mark: the state as of
    # the last event of each hour) and the events applied (after the fence): what
    # streams.worker.members makes their member copies from
    members: list[tuple[str, list[Mark], Sequence[Event]]] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)  # users read as erased: their events dropped (streams.worker.erase)
    # where accounts are in use: the users' alert turns at reviews in silence (models.engine.Turn), which
    # streams.worker.members sends their one-user accounts (QA21 F2), and each one's partition
    turns: list[Turn] = field(default_factory=list)
    turn_partitions: list[int] = field(default_factory=list)

    def extend(self, other: "Advanced") -> None:
        """Append ``other``'s lists to these (a cycle advanced in slices): every field, so one
        added later cannot be dropped by a caller that merges them one by one."""
        for f in fields(self):
            getattr(self, f.name).extend(getattr(other, f.name))


#: A user to advance in this cycle (``models.step.Todo``): (group, partition, stored record, new events).
_NO_EVENTS: tuple[Event, ...] = ()


def advance_users(
    plans: Sequence[BucketPlan],
    replies: Sequence[BucketReadResult],
    decoded: Decoded,
    until_ms: Mapping[int, int | None],
    model: ChurnModel,
    *,
    topic: str,
    due_limit: int,
    result: CycleResult,
    history: bool = True,
    alerts_from_ms: int = 0,
    members_apart: bool = False,
    accounts: bool = False,
) -> Advanced:
    """``models.engine.advance`` for every user with events or a due review, bucket by bucket;
    counts into ``result``. ``history``: also the console's weekly points (streams/worker/history.py).
    ``alerts_from_ms`` (``Settings.alerts_from_ms``): user alerts of an earlier event time are not
    queued for the alerts topic (``models.step.queue_alerts``); 0: all are. ``members_apart``
    (``Settings.members_apart``): account members' user alerts go to ``Advanced.member_alerts``.
    ``accounts``: accounts are in use, so the alert turns at reviews in silence are kept (``Advanced.turns``)."""
    out = Advanced()
    for plan, reply in zip(plans, replies):
        expected = dict(zip(plan.parts, reply.offsets))
        write = BucketWrite(plan.bucket, _offset_parts(topic, expected, decoded.last_offset),
                            read_tokens=reply.tokens if len(reply.tokens) == len(expected) else None)
        todo = _bucket_todo(plan, reply, expected, decoded.users, decoded.first_offset, due_limit, out, result)
        fields = {p: part[0] for p, part in zip(expected, write.parts)}  # p -> "<topic>:<p>", built once a bucket
        clocks = {p: until_ms.get(p) for p in expected}  # p -> review clock, looked up once a bucket
        _advance_bucket(todo, plan.bucket, clocks, fields, decoded.member_of, model, write, out, result, history,
                        alerts_from_ms, members_apart, accounts)
        if write.states or write.stats or any(new for _, _, new in write.parts):
            out.writes.append(write)
    return out


def _offset_parts(topic: str, expected: Mapping[int, str], last_offset: Mapping[int, int]) -> list[tuple[str, str, str]]:
    """``(field, expected, new)`` per partition: the new offset only where it moves forward."""
    parts = []
    for p, exp in expected.items():
        new = ""
        if p in last_offset and last_offset[p] > (int(exp) if exp else -1):
            new = str(last_offset[p])
        parts.append((offset_field(topic, p), exp, new))
    return parts


def _bucket_todo(
    plan: BucketPlan,
    reply: BucketReadResult,
    expected: Mapping[int, str],
    users: Mapping[str, UserBatch],
    first_offset: Mapping[int, int],
    due_limit: int,
    out: Advanced,
    result: CycleResult,
) -> dict[str, _Todo]:
    """The bucket's users with events (minus those at or below the bucket's offset: the replay
    fence) and the users whose review is due; learns each swept index's next due second.

    The fence can drop events only of a partition whose first record in the batch
    (``first_offset``, none known: any) is at or below it, a replay: only there is a user's first
    offset looked at. Elsewhere (nearly always) a user's offsets are not touched at all, which
    spared a cold read of its offsets list and first offset per user (docs/SCALING.md)."""
    todo: dict[str, _Todo] = {}
    fences: dict[int, int] = {}  # parsed once a bucket, not once a user
    for p, exp in expected.items():
        fence = int(exp) if exp else -1
        first = first_offset.get(p)
        if first is None or fence >= first:
            fences[p] = fence
    located, blobs = plan.users, reply.blobs
    if reply.erased:  # (empty unless someone was ever erased: nothing more to do per user)
        kept = _drop_erased(plan, reply, users, out, result)
        located, blobs = [u for u, _ in kept], [blob for _, blob in kept]
    result.skipped += bucket_todo(located, blobs, users, fences, todo)  # compiled: the per-user loop
    for p, due_s, dues, nxt in zip(plan.parts, plan.parts.values(), reply.dues, reply.next_due):
        if due_s is not None:
            # more than due_limit due: sweep again next cycle; else the next one after
            out.learned.append((p, plan.bucket, 0 if len(dues) >= due_limit else NO_DUE if nxt is None else nxt))
        for due in dues:
            if due.user_id not in todo:
                todo[due.user_id] = (due.group, p, due.blob, _NO_EVENTS)
                result.due_users += 1
    return todo


def _drop_erased(plan: BucketPlan, reply: BucketReadResult, users: Mapping[str, UserBatch], out: Advanced,
                 result: CycleResult) -> list[tuple[tuple[int, str], bytes | None]]:
    """The bucket's users and records but those ``churnwatch erase`` erased (``reply.erased``,
    read_batch.lua): nothing is scored, written or sent for them, and their events are counted
    (``result.erased``: churnwatch_events_erased_total, no id anywhere) and listed in ``out.erased``
    (the cycle drops their account copies)."""
    gone = set(reply.erased)
    kept = []
    for i, pair in enumerate(zip(plan.users, reply.blobs)):
        if i in gone:
            uid = pair[0][1]
            result.erased += len(users[uid].events)
            out.erased.append(uid)
        else:
            kept.append(pair)
    return kept


def drop_erased_copies(decoded: Decoded, erased: Iterable[str]) -> None:
    """Take the subscription copies of ``erased`` users out of ``decoded.account_copies``: a copy
    holds the event as sent, user id included, and would go back into the events topic."""
    gone = set(erased)
    kept = [(c, u) for c, u in zip(decoded.account_copies, decoded.account_copy_users) if u not in gone]
    decoded.account_copies = [c for c, _ in kept]
    decoded.account_copy_users = [u for _, u in kept]


def index_scores(old: UserState | None, st: UserState, until_ms: int, model: ChurnModel,
                 review: Assessment | None = None) -> tuple[float | None, float | None, float]:
    """``models.step.index_scores`` with the store's UNCHANGED mark (its docstring says what each is)."""
    return step_index_scores(old, st, until_ms, model, review, UNCHANGED)


def _unreadable(group: int, uid: str, blob: bytes, restarted: bool, bucket: int, error: str, write: BucketWrite,
                result: CycleResult) -> None:
    """A stored record that cannot be read: the user starts afresh from the batch's events
    (``restarted``) or, a review due and no events to start from, is dropped (the state write
    deletes the record with its due, at-risk and save-list entries). Either way nothing the
    store keeps goes on describing the lost state: its score history and alert list go (queued
    before a restarted user's own points and alerts, which follow), and the bucket's counters
    lose what the record added to them (``store.unreadable_delta`` and ``BucketWrite.unreadable``),
    in the same fenced write as the state: once, whatever is redelivered."""
    result.unreadable += 1
    if not restarted:
        result.dropped += 1
    write.history.append((group, uid, b""))
    write.alerts.append((group, uid, "", b""))
    write.unreadable.append((group, uid))
    staged = unreadable_delta(blob, write.stats)
    what = "starting that user afresh" if restarted else "dropped it (a review came due, no events to start from)"
    logger.warning("unreadable state record in bucket %s (%s): %s; its history and alert list removed, counters "
                   "corrected%s", bucket, error, what, "" if staged else " but its stage count (stage byte unreadable)")


#: A user with no record stored gets ``models.step.unstored_scores`` (no ZREM of an index it is not
#: in); tests/test_write_indexes.py turns it off to compare Redis with the old rule's.
UNSTORED_LEFT = True


def _advance_bucket(
    todo: dict[str, _Todo], bucket: int, clocks: dict[int, int | None], fields: dict[int, str],
    member_of: dict[str, tuple[str, int, int]], model: ChurnModel, write: BucketWrite, out: Advanced, result: CycleResult,
    history: bool, alerts_from_ms: int = 0, members_apart: bool = False, accounts: bool = False,
) -> None:
    """Advance each of a bucket's users to its partition's review clock ``clocks[p]`` and queue
    its state write, points, due bound, counters and alerts (``models.step.advance_bucket``,
    compiled: the per-user loop with the step inside); ``fields[p]``: the partition's field,
    ``offset_field(topic, p)``. A user naming an account (``member_of``) also takes its
    member-copy marks there (``models.engine.advance``'s, per ``PERIOD_MS``). The rare turns
    (nothing to do, an unreadable record, a deletion: ``_off_path``; a member's alerts kept apart:
    ``_queue_apart``) are called back here, as Python."""
    advance_bucket(todo, bucket, clocks, fields, member_of, model, history, UNCHANGED, UNSTORED_LEFT, PERIOD_MS,
                   alerts_from_ms, members_apart, write, out, result, _off_path, _queue_apart, KINDS_LOGGED,
                   STAGES_LOGGED, orjson.dumps, day_name, out.turns if accounts else None)


def _queue_apart(uid: str, group: int, alerts: list[Alert], expire: bool, partition: int, alerts_from_ms: int,
                 write: BucketWrite, out: Advanced, result: CycleResult) -> None:
    """``queue_alerts`` with the alerts of the user as an account member (``Alert.member``) put in
    ``out.member_alerts`` and counted in ``result.routed`` (``Settings.member_alerts``). In runs of
    alerts alike, so the console's list gets every entry in the alerts' order (the flag is kept for
    good: a user's step turns member at most once)."""
    for member, run in groupby(alerts, key=lambda a: a.member):
        queue_alerts(uid, group, list(run), expire, partition, alerts_from_ms, KINDS_LOGGED, STAGES_LOGGED, write.alerts,
                     out.member_alerts if member else out.alerts, result.routed if member else result.alerts,
                     result.withheld, orjson.dumps)


def _off_path(uid: str, item: _Todo, bucket: int, due_field: str, st: UserState | None, expire: bool, skip: bool,
              error: str, write: BucketWrite, result: CycleResult) -> bool:
    """A step without a new state (nothing to do, expired, a due entry without a state) or from a
    record that could not be read: what it writes besides the state. True: the user is done
    (nothing more to count or write)."""
    group, _, blob, _ = item
    if skip:  # no clock and no events: nothing written (never a due user: a sweep needs a clock)
        if error:
            logger.warning("unreadable state record in bucket %s (%s): left as stored", bucket, error)
        return True
    if error:  # (an error is a record that was there)
        _unreadable(group, uid, blob or b"", st is not None, bucket, error, write, result)
    if st is not None:
        return False
    write.states.append(StateWrite(group, uid, None, due_field, 0, None))  # expired, or a due entry without a state
    if not expire:
        return True
    result.expired += 1
    write.history.append((group, uid, b""))  # console score history goes with the user
    write.alerts.append((group, uid, "", b""))  # and so does its alert list
    return False
