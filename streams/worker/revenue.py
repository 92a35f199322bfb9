"""Live MRR: subscription events routed to their account's partition, applied, counted per period.

Why a route: an account's revenue state (``models.revenue.AccountState``) needs every statement
of the account in one place, in time order, but subscription events are keyed by *user* (the
contract), and the users of one account hash to different partitions. So, as Kafka Streams
repartitions by a new key, each subscription event read by its user's partition owner is produced
once more to the events topic, keyed by its account id (the producers' partitioner, murmur2, puts
every copy of one account in one partition), with a header ``churnwatch-account: <p>:<offset>``
naming where it was read. The owner of the account's partition applies the copies; the copies
never reach user scoring (the original did), so user-level results do not change. Why the events
topic and not a topic of its own: partition p of two topics would need one owner and one clock,
which Kafka's group assignment does not promise (the same reason as the mis-keyed re-route).

Exactly-once in Redis, at-least-once on the wire: account states and the period counters of one
account bucket ``{b}`` are written by one fenced Lua call per cycle (``lua/write_accounts.lua``),
which also moves the bucket's account offset of the copies' partition (field
``acct|<topic>:<p>`` of ``cw:{b}:off``); a replayed copy at or below it is skipped. A copy made
twice (a crash between producing it and recording progress) is a duplicate statement, which
``AccountState`` ignores by design.

Order: the alert side keeps its own copy of the revenue state and applies statements and member
copies in event order once the watermark over the producing partitions passes them
(``streams.worker.watermark``), holding the others in Redis: so an account's alerts do not depend
on the order its copies arrive in. The revenue figures wait for nothing, yet follow event order
too (Kafka Streams' grace: a result is updated when an earlier record comes within it): the
revenue state is the alert side's, settled at the watermark, with the statements it holds
replayed on it in event order, and a statement that arrives after a later one of its account
(two user partitions, minutes apart: an add-on is sent under another user) re-measures the
movements after it, the counters getting the retraction and the new movements. Only a statement
behind its account's *settled* state (the watermark already passed a later one: a producing
partition more than the grace behind, a handover) is counted as late
(``churnwatch_subscription_late_total``) and not applied, as ``churnwatch report`` would ignore
it.

Statements late for their user: a statement more than the allowed lateness behind its user
partition's stream time, but within ``CHURNWATCH_BILLING_LATENESS_MS`` (Stripe's webhook retries,
a nightly export), is copied all the same, marked late (``LATE_HEADER``), and never given to its
user (streams.worker.phases). Its time is below its partition's cutoff, so it can be below the
mark its copy carries and the account's watermark, which promise only that no *ordinary* copy
earlier comes (marks and heartbeats are unchanged); the account side takes such a copy as it takes one
from beyond the grace: the alert side applies it at once when the watermark has passed it (judged
at the account's latest time, not counted as behind) and holds it otherwise; the revenue state
replays it in event order on the settled state like any statement, so it is applied, and its
movement booked at its own time, when no later change of the account has settled
(``churnwatch_subscription_applied_late_total``), and counted late otherwise (and when its
subscription's content in force began after it: ``AccountState.stale``). A copy of it made twice
changes nothing, as for any statement. Pure: no Redis, no Kafka (tests/test_revenue_live.py,
tests/test_late_statements.py).
"""

from __future__ import annotations

import bisect
import logging
import struct
from dataclasses import dataclass, field
from typing import Final, Mapping, Sequence

import orjson

from models.account_health import (ACCOUNT_AT_RISK, GONE_STAGES, RISE_COUNTS_MS, AccountRollup, Member, SilenceIndex, member_id_at,
                                   member_key, silence_index, silence_risk_at)
from models.engine import alert_id
from models.events import Event
from models.quiet_period import QuietPeriod, quiet_starts_ms
from models.revenue import AccountState, Change, Movement, MovementKind
from models.revenue_ledger import PERIODS, Cohorts, Ledger
from streams.worker.alert_log import append_to_extras
from streams.worker.account_alerts import (RECOVERED_BELOW, AccountWork, account_rollup, churn_announced_ms, decide_alert, decide_reminders,
                                           member_deadlines_ms, next_due_s, note_copy, note_downgrade, note_price_rise, other_due_ms, price_rise, renewal_ms,
                                           kept_cycle, risk_drops_ms,
                                           trend_counts, usage_counts)
from streams.worker.clock import NEVER
from streams.worker.keys import bucket_of, offset_field
from streams.worker.watermark import HEARTBEAT_HEADER, MARK_HEADER, PERIOD_MS, parse_heartbeat

__all__ = [
    "ACCOUNT_HEADER",
    "AccountTick",

    "MEMBER_HEADER",
    "MemberCopy",
    "member_copy",
    "parse_member_copy",

    "AccountCopy",
    "AccountRead",
    "AccountReadResult",
    "AccountWrite",
    "AccountsAdvanced",
    "account_copy",
    "account_field",
    "is_account_copy",
    "is_late_copy",
    "LATE_HEADER",
    "TURN_HEADER",
    "is_turn_copy",
    "copy_said",
    "copy_origin",
    "plan_account_reads",
    "MAX_HELD",

    "COUNTER_SETS",
    "advance_accounts",
    "warn_dead_lettered",
    "counter_field",
    "parse_counter_field",
]

logger = logging.getLogger(__name__)

ACCOUNT_HEADER: Final[str] = "churnwatch-account"
#: On a statement's copy made though it was later than the allowed lateness for its user partition
#: (within ``CHURNWATCH_BILLING_LATENESS_MS``): its time is below that partition's cutoff, and so
#: can be below the mark the copy carries; the account side counts it apart
#: (``churnwatch_subscription_applied_late_total``), never as behind.
LATE_HEADER: Final[str] = "churnwatch-late"
MEMBER_HEADER: Final[str] = "churnwatch-member"
#: On a member copy made at a turn of the user's alert at a review in silence (``models.engine.Turn``),
#: sent for any user not a company account's member: its account applies it only to a member it
#: already has (a one-user account, QA21 F2), never adds one (a user naming no account has none).
TURN_HEADER: Final[str] = "churnwatch-turn"
KafkaCopy = tuple[bytes, bytes | None, list[tuple[str, bytes]]]  # (key, value, headers)
# the counter hashes of an account bucket: a Ledger per period, and the signup-month cohorts
# (``models.revenue_ledger.Cohorts.counters``), all HINCRBYed by the same fenced write
COUNTER_SETS: Final[tuple[str, ...]] = (*PERIODS, "cohort")
_MARGIN: Final[float] = 1e-3  # of risk: a bound this far from a threshold decides without a roll-up
_DOWNGRADE_COUNTS_MS: Final[int] = 30 * 86_400_000  # models.account_health: a downgrade counts for 30 days
#: Copies one account may hold for its watermark (streams.worker.watermark); beyond, the earliest are
#: applied at once, in event order (counted: churnwatch_account_copies_released_total{how="bound"}).
#: ~80 bytes of JSON each (+ twice the user id for a member, ~120 a statement) in ``cw:{b}:aside``,
#: field ``<account>|held``, read and written whole whenever the account is touched.
MAX_HELD: Final[int] = 500


def account_copy(ev: Event, partition: int, offset: int, value: bytes | None, late: bool = False) -> KafkaCopy:
    """The copy of a subscription event that goes to its account's partition (value unchanged);
    ``late``: its user partition found it later than the allowed lateness (header ``churnwatch-late``).

    >>> from models.events import Event
    >>> account_copy(Event("u1", 1, "subscription", "e", 0.0, "acme"), 3, 17, b"{}")
    (b'acme', b'{}', [('churnwatch-account', b'3:17')])
    >>> is_late_copy(account_copy(Event("u1", 1, "subscription", "e", 0.0, "acme"), 3, 17, b"{}", late=True)[2])
    True
    """
    headers = [(ACCOUNT_HEADER, f"{partition}:{offset}".encode())]  # first: streams.worker.watermark.stamp_marks reads it
    if late:
        headers.append((LATE_HEADER, b"1"))
    return ev.account.encode("utf-8", "surrogatepass"), value, headers


def is_late_copy(headers: object) -> bool:
    """Whether an account copy was made of a statement late for its user partition (:func:`account_copy`)."""
    return is_account_copy(headers, LATE_HEADER)


def is_account_copy(headers: object, name: str = ACCOUNT_HEADER) -> bool:
    """Whether a record carries the account header (a copy made by :func:`account_copy`), or
    with ``name=MEMBER_HEADER`` the member header (:func:`member_copy`)."""
    if not headers:
        return False
    return any(h == name for h, _ in headers)  # type: ignore[attr-defined]


def copy_origin(headers: object) -> tuple[str, int, int, int] | None:
    """``(kind header, producing partition q, offset there, q's mark or NEVER)`` of an account copy,
    a member copy or a heartbeat (``streams.worker.watermark``; a heartbeat's offset is -1), or None
    when the record is none of them. A header value that does not parse counts as ``-1:-1``.

    >>> copy_origin([("churnwatch-member", b"3:17"), ("churnwatch-mark", b"5000")])
    ('churnwatch-member', 3, 17, 5000)
    >>> copy_origin([("churnwatch-heartbeat", b"2:7000")]), copy_origin([("churnwatch-origin", b"0:1")])
    (('churnwatch-heartbeat', 2, -1, 7000), None)
    """
    if not headers:
        return None
    kind, q, offset, mark = "", -1, -1, NEVER
    for name, value in headers:  # type: ignore[attr-defined]
        if name == ACCOUNT_HEADER or name == MEMBER_HEADER:
            kind = name
            part, _, off = (value or b"").decode("ascii", "replace").partition(":")
            if part.isdigit() and off.isdigit():
                q, offset = int(part), int(off)
        elif name == MARK_HEADER and value and value.lstrip(b"-").isdigit():
            mark = int(value)
        elif name == HEARTBEAT_HEADER:
            beat = parse_heartbeat(value or b"")
            if beat is not None:
                kind, q, mark = name, beat[0], beat[1]
    if not kind or (kind == HEARTBEAT_HEADER and q < 0):
        return None
    return kind, q, offset, (mark if q >= 0 else NEVER)


def member_copy(account: str, ts_ms: int, member: Member, partition: int, offset: int, turn: bool = False,
                said: str = "") -> KafkaCopy:
    """A user's summary (``models.account_health.Member``) for its account's partition owner;
    ``turn``: made at a turn of its alert in silence (``TURN_HEADER``), ``said``: the first reason
    of the alert it opened (:func:`copy_said`).

    >>> key, value, headers = member_copy("acme", 5000, Member(7, 5, 1, 0.0, 1.0, 2.0), 0, 9)
    >>> parse_member_copy(value) == ("acme", 5000, Member(7, 5, 1, 0.0, 1.0, 2.0)), key, headers
    (True, b'acme', [('churnwatch-member', b'0:9')])
    """
    obj: dict[str, object] = {"account_id": account, "ts": ts_ms, "member": member.to_bytes().hex()}
    if said:
        obj["said"] = said
    value = orjson.dumps(obj)
    headers = [(MEMBER_HEADER, f"{partition}:{offset}".encode())]  # first: streams.worker.watermark.stamp_marks reads it
    if turn:
        headers.append((TURN_HEADER, b"1"))
    return account.encode("utf-8", "surrogatepass"), value, headers


def copy_said(value: bytes | None) -> str:
    """The reason a turn copy carries (:func:`member_copy`'s ``said``), "" when none (or unreadable).

    >>> copy_said(member_copy("c7", 5000, Member(7, 5, 1, 0.3, 1.0, 2.0), 0, 9, True, "usual re-order")[1]), copy_said(b"{}")
    ('usual re-order', '')
    """
    try:
        said = orjson.loads(value or b"").get("said", "")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return said if isinstance(said, str) else ""


def is_turn_copy(headers: object) -> bool:
    """Whether a member copy was made at a turn of its user's alert in silence (:func:`member_copy`).

    >>> is_turn_copy(member_copy("c7", 5000, Member(7, 5, 1, 0.3, 1.0, 2.0), 0, 9, turn=True)[2]), is_turn_copy(None)
    (True, False)
    """
    return is_account_copy(headers, TURN_HEADER)


def parse_member_copy(value: bytes | None) -> tuple[str, int, Member] | None:
    """``(account, ts_ms, member)`` of a member copy, or None when it is not one (then: DLQ)."""
    try:
        obj = orjson.loads(value or b"")
        return str(obj["account_id"]), int(obj["ts"]), Member.from_bytes(bytes.fromhex(obj["member"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, struct.error):
        return None


def account_field(topic: str, partition: int) -> str:
    """Field of ``cw:{b}:off`` holding the last copy offset of p applied to the bucket's accounts."""
    return "acct|" + offset_field(topic, partition)


def counter_field(start_ms: int, name: str) -> str:
    """Field of ``cw:{b}:rev:<period>``: one ``models.revenue_ledger.Ledger`` counter of one period.

    >>> counter_field(1767225600000, "new"), parse_counter_field(b"1767225600000:n_new")
    ('1767225600000:new', (1767225600000, 'n_new'))
    """
    return f"{start_ms}:{name}"


def parse_counter_field(raw: bytes | str) -> tuple[int, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    start, _, name = text.partition(":")
    return int(start), name


@dataclass(slots=True)
class AccountCopy:
    """One subscription copy read in this cycle: where it was read (for the fence) and its event."""

    partition: int
    offset: int
    event: Event
    origin: int = -1  # the producing partition q (its header), -1: unknown
    origin_offset: int = -1
    late: bool = False  # later than the allowed lateness for its user partition (``LATE_HEADER``)

    @property
    def account(self) -> str:
        return self.event.account

    @property
    def ts_ms(self) -> int:
        return self.event.ts_ms


@dataclass(slots=True)
class MemberCopy:
    """One member copy read in this cycle: a user's summary for its account."""

    partition: int
    offset: int
    account: str
    ts_ms: int
    member: Member
    origin: int = -1  # the producing partition q (its header), -1: unknown
    origin_offset: int = -1
    turn: bool = False  # made at a turn of the user's alert in silence (``TURN_HEADER``): updates a known member only
    said: str = ""  # a turn's: the first reason of the user alert it opened (said first by the account's alert)


@dataclass(slots=True)
class AccountRead:
    bucket: int
    fields: list[str]  # account offset fields of the partitions whose copies touch the bucket
    accounts: list[str]


@dataclass(slots=True)
class AccountReadResult:
    offsets: list[str]  # per field, as stored ("" when none): the CAS expectation
    blobs: list[bytes | None]  # per account: AccountState record
    extras: list[bytes | None] = field(default_factory=list)  # per account: JSON (downgrade, open alert)
    members: list[dict[bytes, bytes]] = field(default_factory=list)  # per account: member key -> record
    tokens: list[str] = field(default_factory=list)  # per field: its last write's token as read ("" none)
    sides: list[bytes | None] = field(default_factory=list)  # per account: the alert side's AccountState record
    held: list[bytes | None] = field(default_factory=list)  # per account: its held copies (JSON, ``_held_json``)


@dataclass(slots=True)
class AccountWrite:
    """One bucket's account write: offsets to move (fenced), states, extras, members, counters."""

    bucket: int
    parts: list[tuple[str, str, str]]  # (field, expected as read, new)
    states: dict[str, bytes] = field(default_factory=dict)
    extras: dict[str, bytes] = field(default_factory=dict)
    members: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    # per account: the user ids the member records written keep (``AccountWork.ids``), which the
    # write indexes (``Keys.member_of``); carried from where the records are made, not decoded back
    member_ids: dict[str, list[str]] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # COUNTER_SETS name -> {field: delta}
    sides: dict[str, bytes] = field(default_factory=dict)  # the alert side's AccountState records
    held: dict[str, bytes] = field(default_factory=dict)  # held copies (JSON; b"": none left, delete)
    # per part: the partition's token as the read found it, which the write expects there unless it
    # is this worker's (lua/fence.lua, fence_check): due reviews alone move no offset; None: offsets only
    read_tokens: list[str] | None = None


@dataclass(slots=True)
class AccountsAdvanced:
    writes: list[AccountWrite] = field(default_factory=list)
    added: list[Movement] = field(default_factory=list)
    retracted: list[Movement] = field(default_factory=list)
    alerts: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    dues: dict[int, dict[str, int]] = field(default_factory=dict)  # p -> account -> next review s (0: none)
    applied: int = 0  # statements applied (after the fence)
    skipped: int = 0  # copies at or below the bucket's account offset (already applied)
    late: int = 0
    # statements late for their user partition (``AccountCopy.late``) applied to the revenue state: their
    # account had settled no later change (churnwatch_subscription_applied_late_total)
    applied_late: int = 0
    held: int = 0  # copies newly held for the watermark this cycle (a member's period once, whatever its versions)
    released: int = 0  # held copies (of this or earlier cycles) applied as the watermark passed them
    forced: int = 0  # held copies applied before the watermark passed them: the account held MAX_HELD
    behind: int = 0  # copies applied behind the account's time (arrived after the watermark passed them)
    # account alerts judged out of event order, marked ``"judged_late": true`` (``_mark_late``): kind -> count
    judged_late: dict[str, int] = field(default_factory=dict)
    # the account being applied: its release bound (None: nothing held) and whether a copy behind its
    # time was just applied; set per account by ``advance_accounts``, read by ``_decide``
    judging: tuple[int | None, bool] = (None, False)


@dataclass(slots=True)
class AccountTick:
    """An account's review came due (its due index, ``cw:adue:<topic>:<p>``): evaluate it at
    ``ts_ms``, the due time itself, so a replay reviews at the same time."""

    partition: int
    account: str
    ts_ms: int
    offset: int = -1  # not a record: never behind the fence


Copy = AccountCopy | MemberCopy | AccountTick


def plan_account_reads(copies: Sequence[Copy], topic: str, buckets: int) -> list[AccountRead]:
    """One read per account bucket touched by the cycle's copies.

    >>> ev = Event("u1", 1, "subscription", "e", 0.0, "acme")
    >>> [(r.bucket, r.fields, r.accounts) for r in plan_account_reads([AccountCopy(2, 5, ev)], "t", 64)]
    [(62, ['acct|t:2'], ['acme'])]
    """
    plans: dict[int, AccountRead] = {}
    for c in copies:
        account = c.account
        b = bucket_of(account, buckets)
        plan = plans.get(b)
        if plan is None:
            plan = plans[b] = AccountRead(b, [], [])
        fld = account_field(topic, c.partition)
        if fld not in plan.fields:
            plan.fields.append(fld)
        if account not in plan.accounts:
            plan.accounts.append(account)
    return list(plans.values())


def advance_accounts(
    copies: Sequence[Copy], reads: Sequence[AccountRead], replies: Sequence[AccountReadResult], topic: str,
    last_offset: Mapping[int, int], release_ms: Mapping[int, int] | None = None, max_held: int = MAX_HELD,
    quiet: Mapping[str, tuple[QuietPeriod, ...]] | None = None,
) -> AccountsAdvanced:
    """Apply the copies past each bucket's fence to their accounts. Subscriptions reach the revenue
    state at once, in event order with those the watermark has not passed (``_apply_revenue``: the
    movements they re-measure folded into per-period ``Ledger`` deltas, what the write HINCRBYs):
    the MRR figures wait for nothing. The alert side
    (its own ``AccountState``, the members, the extras) takes the copies below the account
    partition's watermark ``release_ms[p]`` (``streams.worker.watermark``) together with those it
    held, in event order; before each, the account's deadlines up to its time are reviewed
    (``_apply_in_order``); after each instant, ``streams.worker.account_alerts`` decides the account's
    alerts. The copies at or above the watermark are held (``<account>|held`` in ``cw:{b}:aside``,
    written by the same fenced call), at most ``max_held`` an account, and the account is due again
    at the earliest of them. ``release_ms`` None (or p not in it): nothing is held. ``quiet``: the
    accounts' declared quiet periods (account -> periods; streams/worker/accounts.py)."""
    out = AccountsAdvanced()
    late_accounts: list[str] = []
    by_account: dict[str, list[Copy]] = {}
    for c in copies:
        by_account.setdefault(c.account, []).append(c)
    for read, reply in zip(reads, replies):
        expected = dict(zip(read.fields, reply.offsets))
        ledgers = {period: Ledger(period) for period in PERIODS}
        cohorts = Cohorts()
        write = AccountWrite(read.bucket, [], read_tokens=reply.tokens if len(reply.tokens) == len(read.fields) else None)
        n = len(read.accounts)
        rows = zip(read.accounts, reply.blobs, reply.extras or [None] * n, reply.members or [{}] * n,
                   reply.sides or [None] * n, reply.held or [None] * n)
        for account, blob, extra, mem, side, held in rows:
            todo = _past_fence(by_account[account], expected, topic, out)
            if not todo:
                continue
            p = todo[-1].partition
            before = _parse_held(held, p, account)
            todo = _known_turns(todo, before, mem)
            if not todo and not before and blob is None and side is None:  # turns of users naming no account
                continue
            now, keep = _release(todo, before, None if release_ms is None else release_ms.get(p), max_held, out)
            subscriptions, late_before = sum(1 for c in todo if isinstance(c, AccountCopy)), out.late
            out.applied += subscriptions
            revenue = (_apply_revenue(side or blob, blob, read.bucket, before, [*now, *keep], ledgers, cohorts, out)
                       if subscriptions else _load(blob, read.bucket))  # no statement: it and its movements stay
            if out.late > late_before:
                late_accounts.append(account)
            # the alert side: its own state (an account of an earlier version starts from the revenue state)
            acc = AccountWork(_load(side or blob, read.bucket), orjson.loads(extra) if extra else {},
                              {m.key: m for m in (Member.from_bytes(v) for v in mem.values())},
                              quiet=quiet.get(account, ()) if quiet else ())
            out.judging = (None if release_ms is None else release_ms.get(p), False)
            _apply_in_order(account, acc, now, out)
            due = next_due_s(acc, _seen_ms(acc))
            if keep:
                first = (keep[0].ts_ms + 999) // 1000  # swept once the watermark passes its second
                due = min(due, first) if due else first
            out.dues.setdefault(p, {})[account] = due
            if subscriptions or blob is not None:
                write.states[account] = revenue.to_bytes()
                write.sides[account] = acc.state.to_bytes()
            if keep or held:
                write.held[account] = _held_json(keep)
            write.extras[account] = orjson.dumps(acc.extras, option=orjson.OPT_SORT_KEYS)  # the same bytes whatever order keys were set in
            if acc.changed:
                write.members[account] = acc.changed
                write.member_ids[account] = list(acc.ids.values())
        for fld, exp in expected.items():
            p = int(fld.rsplit(":", 1)[1])
            write.parts.append((fld, exp, str(last_offset[p]) if p in last_offset else exp))  # ticks alone: kept
        for period, ledger in ledgers.items():
            deltas = {counter_field(start, name): v for start, t in ledger.totals.items() for name, v in t.items() if v}
            if deltas:
                write.counters[period] = deltas
        if cohorts.deltas:
            write.counters["cohort"] = cohorts.counters()
        out.writes.append(write)
    if late_accounts:
        _warn_late(out.late, late_accounts)
    return out


def _known_turns(todo: list[Copy], held: Sequence[Copy], mem: Mapping[bytes, bytes]) -> list[Copy]:
    """``todo`` without the turn copies (``TURN_HEADER``) of users the account has no member record
    of, stored (``mem``) nor coming (an ordinary member copy held or read): every user not a
    company account's member sends them, and only a one-user account (its user named it) reads them.

    >>> m = Member(7, 5, 1, 0.3, 1.0, 2.0)
    >>> turn, plain = MemberCopy(0, 1, "c7", 9000, m, turn=True), MemberCopy(0, 2, "c7", 5000, m)
    >>> len(_known_turns([turn], [], {})), len(_known_turns([turn], [plain], {})), len(_known_turns([turn], [], {b"7": b""}))
    (0, 1, 1)
    """
    turns = [c for c in todo if isinstance(c, MemberCopy) and c.turn]
    if not turns:
        return todo
    known = {int(k) for k in mem}
    known.update(c.member.key for c in (*held, *todo) if isinstance(c, MemberCopy) and not c.turn)
    return [c for c in todo if not (isinstance(c, MemberCopy) and c.turn and c.member.key not in known)]


def _past_fence(copies: Sequence[Copy], expected: Mapping[str, str], topic: str, out: AccountsAdvanced) -> list[Copy]:
    """The copies of one account past its bucket's fence (the offset each producing partition's
    last applied write left, ``expected``); those at or below it were applied before (a replay
    after a restart) and are counted as ``skipped``."""
    todo: list[Copy] = []
    for c in copies:
        exp = expected[account_field(topic, c.partition)]
        if exp and 0 <= c.offset <= int(exp):
            out.skipped += 1
        else:
            todo.append(c)
    return todo


def _warn_late(late: int, accounts: Sequence[str]) -> None:
    """One WARNING per cycle that dropped late statements (never one per statement: a backlog
    replay can drop thousands). Why a WARNING and not only the counter: the live MRR figures
    (``churn-rate``'s live part, the console) then miss those statements and stay so, with
    nothing else telling the operator that they differ from ``churnwatch report``. Statements
    merely out of order are not these: they are replayed in event order (``_apply_revenue``)."""
    shown = ", ".join(accounts[:3]) + (", ..." if len(accounts) > 3 else "")
    logger.warning("%d subscription statement(s) of %d account(s) (%s) arrived after a later statement of their "
                   "account that the account's watermark had already passed (or, later than the allowed lateness for "
                   "their user partition, behind the account's latest settled change), and were not applied: live MRR figures "
                   "miss them, `churnwatch report` over the events does not (docs/REVENUE.md, \"Order, and its limit\"; "
                   "churnwatch_subscription_late_total)", late, len(accounts), shown)


def warn_dead_lettered(accounts: Sequence[str]) -> None:
    """One WARNING per cycle whose user partitions dead-lettered subscription statements as late:
    more than ``CHURNWATCH_BILLING_LATENESS_MS`` behind (``accounts``: one entry per statement;
    those within it are copied to their account). Those never reach their account, so the live MRR
    figures miss them as they miss a statement behind its account's watermark (``_warn_late``);
    counted in the same ``churnwatch_subscription_late_total`` (QA pass 9 M3: they were only among
    all ``late`` events, and ``ChurnwatchSubscriptionsLate`` never fired for them)."""
    names = list(dict.fromkeys(accounts))
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    logger.warning("%d subscription statement(s) of %d account(s) (%s) went to the DLQ as late (more than the billing "
                   "lateness behind their user partition's stream time): live MRR figures miss them, `churnwatch report` "
                   "over the events does not (docs/REVENUE.md, \"Order, and its limit\"; churnwatch_subscription_late_total)",
                   len(accounts), len(names), shown)


def _order(c: Copy) -> tuple[int, int, int, int, int]:
    """Event order, the same whatever order the copies arrived in: time, then a due review before a
    subscription before a member of the same time, then for subscriptions where the copy was made
    (partition, offset there) and where it was read (copies without an origin: the unit tests'),
    for members the member (one copy per member and period once merged; where a version was made
    depends on the cycles)."""
    if isinstance(c, AccountTick):
        return c.ts_ms, 0, -1, -1, -1
    if isinstance(c, MemberCopy):
        return c.ts_ms, 2, c.member.key, c.member.last_seen_s, c.offset
    return c.ts_ms, 1, c.origin, c.origin_offset, c.offset


def _release(todo: list[Copy], held: list[Copy], bound: int | None, max_held: int,
             out: AccountsAdvanced) -> tuple[list[Copy], list[Copy]]:
    """What the alert side applies now (the due reviews, and the copies, new or held, below the
    watermark ``bound``; None: every copy) and what it holds, in event order. The versions of one
    member's copy of one period (``_merge_versions``) are one copy. Beyond ``max_held`` held copies
    the earliest are applied now, in event order (counted and logged)."""
    ticks = [c for c in todo if isinstance(c, AccountTick)]
    new = [c for c in todo if not isinstance(c, AccountTick)]
    merged = _merge_versions([*held, *new])
    if bound is None:
        return ticks + merged, []
    keep = sorted((c for c in merged if c.ts_ms >= bound), key=_order)
    now = [c for c in merged if c.ts_ms < bound]
    waiting = {_identity(c) for c in keep}
    out.released += sum(1 for c in held if _identity(c) not in waiting)
    if len(keep) > max_held:
        extra = len(keep) - max_held
        out.forced += extra
        logger.warning("an account holds more than %s copies for the watermark: %s applied before it passed them "
                       "(event order kept among them; docs/REVENUE.md, Limits)", max_held, extra)
        now += keep[:extra]
        keep = keep[extra:]
    # a copy counts as held once: not again when a new version merges into it while it waits
    out.held += len({_identity(c) for c in keep} & {_identity(c) for c in new} - {_identity(c) for c in held})
    return ticks + now, keep


def _identity(c: Copy) -> object:
    """What :func:`_merge_versions` merges on: a member and period (the copy's time's: the period
    of its last seen, or of the cancellation a copy without activity tells, QA16 F11); any other copy is its own."""
    return (c.member.key, c.ts_ms // PERIOD_MS) if isinstance(c, MemberCopy) else id(c)


def _merge_versions(copies: Sequence[Copy]) -> list[Copy]:
    """One copy per member and period (``streams.worker.members``): of the versions that cycles of
    the producing partition made, the content of the latest (last seen, then where it was made),
    at the earliest time (the period's first event). A version read twice, or made twice (a
    producing cycle replayed), merges into the same copy. Subscription copies pass unchanged."""
    out: list[Copy] = []
    best: dict[object, int] = {}  # (member key, period) -> index in out
    for c in copies:
        if not isinstance(c, MemberCopy):
            out.append(c)
            continue
        k = _identity(c)
        i = best.get(k)
        if i is None:
            best[k] = len(out)
            out.append(c)
            continue
        have = out[i]
        assert isinstance(have, MemberCopy)
        latest = max(have, c, key=lambda v: (v.member.last_seen_s, v.origin, v.origin_offset, v.offset))
        out[i] = MemberCopy(latest.partition, max(have.offset, c.offset), latest.account, min(have.ts_ms, c.ts_ms),
                            latest.member, latest.origin, latest.origin_offset, have.turn and c.turn, latest.said)
    return out


def _held_json(keep: Sequence[Copy]) -> bytes:
    """Held copies as stored (b"": none, the field is deleted): member copies as their 25+ byte
    record in hex, subscription copies as the event's fields."""
    rows: list[list[object]] = []
    for c in keep:
        if isinstance(c, MemberCopy):
            rows.append(["m", c.offset, c.origin, c.origin_offset, c.ts_ms, c.member.to_bytes().hex(),
                         *([1, c.said] if c.turn else [])])  # an earlier version reads row[1:6] only
        elif isinstance(c, AccountCopy):
            ev, sub = c.event, c.event.subscription
            assert sub is not None  # the decoder sends subscription events only
            rows.append(["s", c.offset, c.origin, c.origin_offset, ev.user_id, ev.ts_ms, ev.type, ev.event_id, ev.amount,
                         ev.account_id, sub.status, sub.plan, sub.mrr_cents, sub.trial_ends_ms, sub.period_end_ms,
                         *([1] if c.late else [])])  # an earlier version reads row[10:15] only
    return orjson.dumps(rows) if rows else b""


def _parse_held(raw: bytes | None, partition: int, account: str) -> list[Copy]:
    """:func:`_held_json` read back (``partition``: where the account's copies are read)."""
    from models.subscription import Subscription

    out: list[Copy] = []
    for row in orjson.loads(raw) if raw else ():
        if row[0] == "m":
            member = Member.from_bytes(bytes.fromhex(row[5]))
            turn = len(row) > 6 and bool(row[6])
            out.append(MemberCopy(partition, row[1], account, row[4], member, row[2], row[3], turn, str(row[7]) if turn else ""))
        else:
            ev = Event(row[4], row[5], row[6], row[7], row[8], row[9], Subscription(*row[10:15]))
            out.append(AccountCopy(partition, row[1], ev, row[2], row[3], len(row) > 15 and bool(row[15])))
    return out


def _apply_in_order(account: str, acc: AccountWork, todo: list[Copy], out: AccountsAdvanced) -> None:
    """One account's copies and due reviews of the cycle, in event order (``_order``). Before each,
    the account's own deadlines up to its time are reviewed at their time (``_review_until``), so a
    review happens at a member's silence deadline whether the due index's sweep reached it before
    the next copy came or the copy came in the same cycle; a tick (a due review read from the
    index) only moves the account's clock up to its time.

    The alerts are decided once an instant, after every copy of that event time: statements at one
    instant make one movement (models.revenue), so a decision between two of them would tell what
    the second undoes (two subscriptions cancelled together: an at-risk alert naming a contraction
    the ledger retracts; a plan switch carried by two users: a churn and a recovery in one arrival
    order, nothing in the other). Copies of one instant released in different cycles (one behind
    the watermark, or statements late for their users read cycles apart: a seat move in a nightly
    export, review 19 F1, docs/ALERTS.md) are still decided apart."""
    todo.sort(key=_order)
    for k, c in enumerate(todo):
        if not (k and _same_instant(todo[k - 1], c)):  # an instant's deadlines: reviewed before its first copy
            _review_until(account, acc, c.ts_ms, out)
        if isinstance(c, AccountTick):  # its deadline, if it still is one, was just reviewed
            continue
        if c.ts_ms < _seen_ms(acc) and not (isinstance(c, AccountCopy) and c.late):  # late ones: counted apart
            out.behind += 1
            out.judging = (out.judging[0], True)  # the instant's decision is judged out of order
        if isinstance(c, MemberCopy):
            known = acc.members.get(c.member.key)
            # a turn only updates a member the account has (``TURN_HEADER``); an older period read behind: kept out
            if known is None and not c.turn or known is not None and c.member.last_seen_s >= known.last_seen_s:
                note_copy(acc.extras, known, c.member, c.ts_ms)  # the 2-week trend: per copy, not per review
                acc.members[c.member.key] = c.member
                if c.said:  # said first by the alert this instant opens (AccountWork.said)
                    acc.said = (c.said,)
                key, record = str(c.member.key).encode(), c.member.to_bytes()
                acc.changed[key] = record
                if len(record) > member_id_at(record):  # the record keeps the id: the write indexes it
                    acc.ids[key] = c.member.user_id
        else:
            _apply_subscription(acc, c.event)
        if k + 1 < len(todo) and _same_instant(c, todo[k + 1]):
            continue  # decided after the instant's last copy
        _decide(account, acc, c.ts_ms, out, isinstance(c, AccountCopy))
        acc.said = ()


def _same_instant(c: Copy, then: Copy) -> bool:
    """Whether ``then``, the copy after ``c`` in event order, is a copy (not a due review) of the
    same event time: the two are decided together."""
    return not isinstance(c, AccountTick) and not isinstance(then, AccountTick) and then.ts_ms == c.ts_ms


def _seen_ms(acc: AccountWork) -> int:
    return int(acc.extras.get("seen_ms", 0) or 0)  # type: ignore[call-overload]


def _review_until(account: str, acc: AccountWork, until_ms: int, out: AccountsAdvanced) -> None:
    """Review the account at each of its deadlines (``next_due_s``: a member turning silent, a
    reminder, a renewal coming near) up to ``until_ms`` included, in time order, as if each were
    reviewed (:func:`_decide`). None before the account's first time (a new account's deadlines
    start from its first copy).

    Why not a review per deadline: each costs a roll-up over every member, so a copy arriving weeks
    after a big account's members were last seen cost members squared (5,000 members: 11 CPU-s).
    A member deadline only matters where a review there would alert, and between two times the
    risk may fall at (``risk_drops_ms``) it only rises: so the first member deadline that opens an
    alert is found by bisection, and while one is open only the first deadline after each fall can
    close it. Reminders and a renewal coming near are reviewed each. While a member seen after the
    review's time keeps its activity, usage need not fall: where usage counts (a renewal or a trial
    end near), each deadline is then reviewed."""
    seen = _seen_ms(acc)
    if not seen:
        return
    dues = sorted({d for d in member_deadlines_ms(acc, seen) if d <= until_ms})
    drops = sorted([*risk_drops_ms(acc), *quiet_starts_ms(acc.quiet, seen, until_ms)])  # a quiet period's start: the judged risk falls
    members = list(acc.members.values())
    silence = silence_index(members, acc.state.get().billing_keys if acc.state.subs else (), account, kept_cycle(acc.extras, seen))
    latest_seen_ms = silence.seen_s[-1] * 1000 if silence.seen_s else 0
    gone = account_rollup(acc.state, acc.extras, [], 0, seen).stage  # the subscription's: no copy, no change
    gone = gone if gone in GONE_STAGES else ""
    i = 0
    while True:
        seen = _seen_ms(acc)
        i = bisect.bisect_right(dues, seen, i)
        other = (other_due_ms(acc, seen) + 999) // 1000 * 1000
        if other and other <= until_ms and (i == len(dues) or other <= dues[i]):
            _decide(account, acc, other, out)
            continue
        if i == len(dues):
            return
        stop = drops[k] if (k := bisect.bisect_right(drops, dues[i])) < len(drops) else until_ms + 1
        j = bisect.bisect_left(dues, min(stop, other or stop), i)
        if latest_seen_ms > dues[i] and (usage_counts(acc.state, dues[i], dues[j - 1]) or trend_counts(acc, dues[j - 1])):
            j = i + 1  # a member seen later keeps its activity until then: usage may rise, review each
        first = j if _quiet(acc, silence, gone, dues[i], dues[j - 1]) else _first_alerting(account, acc, members, dues, i, j)
        if first < j:
            _decide(account, acc, dues[first], out)
        else:
            acc.extras["seen_ms"] = dues[j - 1]


def _quiet(acc: AccountWork, silence: SilenceIndex, gone: str, lo_ms: int, hi_ms: int) -> bool:
    """Whether no review between ``lo_ms`` and ``hi_ms`` (risk non-decreasing) can alert, told from
    the users' part of the risk alone (``silence_risk_at``, no pass over the members): with an alert
    open, that part alone keeps the risk above the close at ``lo_ms``; with none, no billing term
    can count and that part stays below the threshold at ``hi_ms``. A margin covers rounding.
    ``gone``: the account's stage when its subscription is gone (``GONE_STAGES``), else "": then
    only the announcement of an open alert's end is left to send (a lost trial opens none). Every
    user gone (stage ``lapsed``, QA16 F11) the roll-up's users' part is 0.8 where this one may read
    less: it only raises the risk (an open alert stays open) and opens no alert, so quiet holds."""
    if gone:
        since, told = bool(acc.extras.get("at_risk_since_ms")), bool(churn_announced_ms(acc.extras))
        return since and told if gone == "churned" else not since or told
    if acc.extras.get("at_risk_since_ms"):  # a declared quiet period may judge without the silence: review
        # a recovery held (``below_ms``): a rise back over the close is news to it (account_alerts.closes)
        return not acc.quiet and "below_ms" not in acc.extras and silence_risk_at(silence, lo_ms // 1000) >= RECOVERED_BELOW + _MARGIN
    if acc.state.subs and acc.state.get().past_due_since_ms or usage_counts(acc.state, lo_ms, hi_ms) or trend_counts(acc, hi_ms):
        return False
    down = acc.extras.get("down")
    if down and int(down[0]) + _DOWNGRADE_COUNTS_MS > lo_ms:  # type: ignore[index]
        return False
    rise = price_rise(acc.extras)
    if rise is not None and rise.ts_ms + RISE_COUNTS_MS > lo_ms:  # a price rise still counts (QA19 F7)
        return False
    return silence_risk_at(silence, hi_ms // 1000) < ACCOUNT_AT_RISK - _MARGIN


def _first_alerting(account: str, acc: AccountWork, members: list[Member], dues: list[int], i: int, j: int) -> int:
    """The first of ``dues[i:j]`` (times with the risk non-decreasing) at which a review alerts
    (``decide_alert``), or ``j``: no open alert: the first where the risk reaches the threshold
    (bisection); one open: the first only (``account_churned`` or the risk below the close), but
    while its recovery is held (``below_ms``, ``account_alerts.closes``) the first where the risk is
    back over the close (bisection), which ends the hold."""
    def rollup_at(t: int) -> AccountRollup:
        return account_rollup(acc.state, acc.extras, members, renewal_ms(acc.state, t), t, account, quiet=acc.quiet)

    line = ACCOUNT_AT_RISK
    if acc.extras.get("at_risk_since_ms"):
        r = rollup_at(dues[i])
        churns = r.stage in GONE_STAGES and not churn_announced_ms(acc.extras)
        if "below_ms" not in acc.extras or churns or r.risk >= RECOVERED_BELOW:
            return i if churns or (r.risk < RECOVERED_BELOW) != ("below_ms" in acc.extras) else j
        line = RECOVERED_BELOW  # a recovery held: the first rise back over the close resets it
    last = rollup_at(dues[j - 1])
    if last.risk < line or last.stage == "trial_lost" and line == ACCOUNT_AT_RISK:
        return j
    lo, hi = i, j - 1  # the risk reaches the line at dues[hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if rollup_at(dues[mid]).risk >= line:
            hi = mid
        else:
            lo = mid + 1
    # every user gone there (QA16 F11) is gone at each later deadline of the stretch (no copy brings
    # one back, none leaves the 90-day window of users: a fall of the risk ends the stretch): none opens
    return j if line == ACCOUNT_AT_RISK and rollup_at(dues[hi]).stage == "lapsed" else hi


def _decide(account: str, acc: AccountWork, ts_ms: int, out: AccountsAdvanced, stated: bool = False) -> None:
    """The account's alerts at ``ts_ms``. Its own time only moves forward: a copy from a lagging
    partition, older than what the account has seen, is judged at the latest time seen; but an
    ``account_churned`` decided on statements behind it (``stated``: the instant's last copy is a
    statement) keeps their time (:func:`_dated_at_statement`)."""
    now_ms = max(ts_ms, _seen_ms(acc))
    acc.extras["seen_ms"] = now_ms
    n_alerts = len(out.alerts)
    r = decide_alert(account, acc, now_ms, out.alerts)
    decide_reminders(account, acc, now_ms, r, out.alerts)
    bound, behind = out.judging
    late = behind or (bound is not None and now_ms >= bound)
    out.judging = (bound, False)
    for k in range(n_alerts, len(out.alerts)):  # the console's list of the account's alerts
        alert = orjson.loads(out.alerts[k][1])
        if stated and ts_ms < now_ms and alert.get("kind") == "account_churned":
            _dated_at_statement(account, acc, alert, ts_ms)
            out.alerts[k] = (out.alerts[k][0], orjson.dumps(alert))
        if late:
            out.alerts[k] = _mark_late(out.alerts[k][0], alert, out)
        append_to_extras(acc.extras, alert)


def _dated_at_statement(account: str, acc: AccountWork, alert: dict[str, object], ts_ms: int) -> None:
    """An ``account_churned`` decided on a cancellation that reached the account behind its time
    (a copy behind the watermark, a statement late for its user) is dated at the statement, as a
    replay in order dates it: same ``event_time_ms`` and ``alert_id`` (QA pass 18 F7: a crash's
    replay dated acct348's churn 112 h after its cancellation). The rest of the alert (the roll-up)
    is what the account knew when it was decided."""
    alert["event_time_ms"] = ts_ms
    alert["alert_id"] = alert_id(account, "account_churned", "", ts_ms)
    if acc.extras.get("churned_ms"):
        acc.extras["churned_ms"] = ts_ms


def _mark_late(key: bytes | None, alert: dict[str, object], out: AccountsAdvanced) -> tuple[bytes | None, bytes]:
    """An account alert judged out of event order, marked ``"judged_late": true`` (same ``alert_id``):
    decided at a time past the account's watermark (copies released by the 500-copy bound before
    every producing partition passed them) or on a copy that reached the account behind its time (a
    producing partition more than the grace behind). Its members' activity may be missing from
    it (a user read later looks silent): the CRM should not act on it as on an ordinary alert
    (docs/ALERTS.md, docs/REVENUE.md "Aligned reading"). Counted by kind."""
    alert["judged_late"] = True
    kind = str(alert.get("kind"))
    out.judged_late[kind] = out.judged_late.get(kind, 0) + 1
    return key, orjson.dumps(alert)


def _apply_revenue(settled: bytes | None, stored: bytes | None, bucket: int, held: Sequence[Copy], statements: Sequence[Copy],
                   ledgers: Mapping[str, Ledger], cohorts: Cohorts, out: AccountsAdvanced) -> AccountState:
    """The revenue state and the period counters, at once, with every statement the watermark has
    not passed in event order (Kafka Streams' grace: a result is updated when an earlier record
    comes within it). ``settled``: the alert side's state, every statement below the watermark
    applied; ``held``: the statements it held before this cycle, whose movements the counters hold
    (their replay on ``settled``); ``statements``: those of the account after this cycle, released
    and held, new ones among them. The counters get the difference of the two replays: a movement
    an earlier statement re-measured is retracted and the new one added, as for two statements at
    one instant. Returns the state (all statements applied: the views' MRR); counts in ``out.late``
    the statements newly late: behind a later one already settled, ignored as ``report`` would.

    ``stored``: the revenue state as stored, which the counters agree with. This rule writes it
    equal to the replay of ``held`` on ``settled``; a worker of an earlier version (arrival order,
    a statement behind the account's latest change dropped) may have left it short of one the
    replay holds. Then the counters first get the step from it to the replay (``_bridge``), so
    that they and the state agree from this cycle on (review 16 M-1: else 170.00 against 120.00
    for good). No mark is stored: the check is the invariant itself, so it also catches an
    earlier version's write after a partition went back to it during a rolling upgrade."""
    was: dict[Movement, int] = {}
    was_late: set[tuple[object, ...]] = set()
    was_applied: set[tuple[object, ...]] = set()
    base: AccountState | None = None  # the replay of held on settled, where it may differ from stored
    if any(isinstance(c, AccountCopy) for c in held):
        base = _load(settled, bucket)
        _replay(base, held, was, was_late, was_applied)
    elif stored != settled:  # nothing held and the two records equal (the common case): told without decoding
        base = _load(settled, bucket)
    if base is not None and stored is not None:
        step = _bridge(_load(stored, bucket), base)
        if step is not None:
            was[step] = was.get(step, 0) - 1  # the counters lack it: the difference adds it
    state = _load(settled, bucket)
    moved: dict[Movement, int] = {}
    late: set[tuple[object, ...]] = set()
    applied: set[tuple[object, ...]] = set()
    _replay(state, statements, moved, late, applied)
    for mv in {**was, **moved}:
        n = moved.get(mv, 0) - was.get(mv, 0)
        change = Change(retract=mv) if n < 0 else Change(add=mv)
        for _ in range(abs(n)):
            for ledger in ledgers.values():
                ledger.apply(change)
            cohorts.apply(change)
            (out.retracted if n < 0 else out.added).append(mv)
    out.late += len(late - was_late)
    out.applied_late += len(applied - was_applied)
    return state


def _bridge(stored: AccountState, replayed: AccountState) -> Movement | None:
    """The movement that takes counters agreeing with ``stored`` to agree with ``replayed`` (an
    account last written by an earlier version: ``_apply_revenue``), None when their MRR agree.
    At the later of their last changes, classified as any movement (a ``new`` or ``reactivation``
    from 0, a ``churn`` to 0, else ``expansion`` or ``contraction``); the cohort is the replay's.

    >>> from models.events import Event
    >>> from models.subscription import Subscription
    >>> def st(user, mrr):
    ...     return Event(user, 60_000, "subscription", user, 0.0, "a", Subscription("active", "Pro", mrr))
    >>> mv = _bridge(AccountState().update(st("k2", 10_000)), AccountState().update(st("k2", 10_000)).update(st("k1", 5_000)))
    >>> (mv.kind, mv.mrr_before_cents, mv.mrr_after_cents), _bridge(AccountState(), AccountState())
    (('expansion', 10000, 15000), None)
    """
    before, after = stored.mrr_cents(), replayed.mrr_cents()
    if before == after:
        return None
    ts = max(stored.at_ms, replayed.at_ms)
    paid_before = stored.get().first_paid_ms
    kind: MovementKind
    if before == 0:
        kind = "reactivation" if paid_before else "new"
    elif after == 0:
        kind = "churn"
    else:
        kind = "expansion" if after > before else "contraction"
    spell = ts if before == 0 else (stored.spell_start_ms if stored.before_cents else stored.at_ms) or ts
    return Movement(ts, kind, before, after, spell, replayed.get().first_paid_ms or paid_before or ts)


def _replay(state: AccountState, copies: Sequence[Copy], moved: dict[Movement, int], late: set[tuple[object, ...]],
            applied: set[tuple[object, ...]]) -> None:
    """The statements among ``copies`` applied to ``state`` in event order (``_order``): each
    movement added counts +1 in ``moved``, each retracted -1 (a statement at the instant of the
    settled state's latest change re-measures that one: -1 of a movement not replayed here), and
    the statements ``AccountState`` ignores as late are named in ``late``. A statement late for its
    user partition (``AccountCopy.late``) is named in ``applied`` when it changed the state as its
    newest change (at or after its latest change), and in ``late`` when it is older than its
    subscription's content in force (``AccountState.stale``: the state cannot place it; an ordinary
    copy so is a replay of history); one that changes nothing (a re-sent copy of the newest
    statement) is in neither, and so is a restatement (same terms) behind a later change of the
    account: it moves no money, only carries its later period end (review 19 F3)."""
    for c in sorted((c for c in copies if isinstance(c, AccountCopy)), key=_order):
        stale, before, newest = ((state.stale(c.event), state.to_bytes(), c.event.ts_ms >= state.at_ms) if c.late
                                 else (False, b"", False))
        change = state.apply(c.event)
        if change.late or stale:
            late.add(_ident(c))
        elif newest and state.to_bytes() != before:
            applied.add(_ident(c))
        if change.retract is not None:
            moved[change.retract] = moved.get(change.retract, 0) - 1
        if change.add is not None:
            moved[change.add] = moved.get(change.add, 0) + 1


def _ident(c: AccountCopy) -> tuple[object, ...]:
    """A statement's copy, the same in the replay of the held copies and of all (``_apply_revenue``)."""
    return c.offset, c.origin, c.origin_offset, c.event.user_id, c.event.event_id


def _apply_subscription(acc: AccountWork, ev: Event) -> None:
    """A statement on the alert side's state, in event order; a contraction is kept for the
    roll-up's "downgraded from ... to ..." (extras ``down``), and forgotten when a statement at
    the same instant retracts it (``note_downgrade``). Its "plans before" are the plans before the
    instant, whichever statement of it came first (review 17 F2: "downgraded from nothing to Extra
    today" when the cancellations came before the new plan): kept in the extras' ``at`` while the
    instant's statements changed them, as those of one instant can come in different cycles.
    A plan renewed at a higher price is kept likewise (extras ``rise``, ``note_price_rise``): a user's
    own (QA19 F7), or any whose statements state the seats, at a higher price per seat (QA20a F6)."""
    at = acc.extras.get("at")
    before = list(at[1]) if isinstance(at, list) and at[0] == ev.ts_ms else list(acc.state.get().plans)
    was = acc.state.subs.get(member_key(ev.user_id))  # the statement's subscription before it: its period end
    change = acc.state.apply(ev)
    if change.late:  # ignored by the state: the instant's plans before stay as they were (review 18 L-1)
        return
    after = acc.state.get().plans
    now = acc.state.subs.get(member_key(ev.user_id))  # the statement in force after it (a same-instant rival may win)
    ended = was is not None and was.sub.status != "cancelled" and (now is None or now.sub.status == "cancelled")
    seats = (was.sub.seats, now.sub.seats) if was is not None and now is not None and was.sub.seats and now.sub.seats else (0, 0)
    note_downgrade(acc.extras, ev.ts_ms, change, before, after, ev.user_id if ended else "", seats)
    note_price_rise(acc.extras, ev, change, was.sub if was is not None else None, now.sub if now is not None else None, before, after)
    if list(after) != before:
        acc.extras["at"] = [ev.ts_ms, before]
    else:
        acc.extras.pop("at", None)


def _load(blob: bytes | None, bucket: int) -> AccountState:
    if not blob:
        return AccountState()
    try:
        return AccountState.from_bytes(blob)
    except (ValueError, struct.error, UnicodeDecodeError) as exc:
        logger.warning("unreadable account record in bucket %s (%s): starting that account afresh", bucket, exc)
        return AccountState()
