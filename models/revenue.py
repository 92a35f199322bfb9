"""Subscription revenue per account: MRR movements as billing analytics classify them.

Definitions (docs/REVENUE.md, after ChartMogul's published ones): an account's MRR is the sum of
its subscriptions' ``mrr`` while ``active`` or ``past_due`` (a trial or a cancellation is 0). Each
change of an account's MRR at one time is one movement: **new** (0 -> >0, never paid before),
**reactivation** (0 -> >0, paid before), **expansion** (up), **contraction** (down, still > 0:
a downgrade, or one of several subscriptions cancelled), **churn** (> 0 -> 0: nothing else stays
active). ``past_due`` keeps its MRR: it is a risk signal (:class:`AccountView`), not churn.
**pause** (> 0 -> 0 because a subscription is ``paused`` and none pays: the customer stays a
customer, its paying spell goes on) and **resume** (0 -> > 0 of an account whose pause ran) are
movements of their own, neither churn nor reactivation (QA22a F1, 2026-12-05); a paused account
that cancels is a churn of 0 MRR (the MRR left with the pause) that loses the customer.

A subscription is identified by (account, user): the user a ``subscription`` event is keyed by
owns that subscription, and each event states it "as it is from ``ts`` on". So:

- Order-independent within one timestamp: the movement at time T is the account's MRR just
  before T against its MRR after *all* statements at T; a second statement at T retracts the
  movement it already reported (:class:`Change`) and reports the new one. Two different
  statements of one subscription at the same T: the larger ``(status, mrr, plan, trial_ends,
  period_end, seats)`` wins, whatever the arrival order.
- Idempotent: a statement equal to the one in force changes nothing (a duplicate, a replay, a
  monthly renewal restating the plan), and neither does one older than the content in force (a
  replay of history). A renewal that only moves ``period_end`` (the end of the period paid for)
  on is a restatement too: no movement, "since" kept; the subscription just renews later; so is
  one that only changes ``seats`` (kept: the price per seat at the next renewal, QA20a F6).
- A statement that would change the past (older than T, or contradicting what a later
  restatement says held at its time) is ignored and counted as late.

Pure: no I/O, no clock; money is integers in cents. A worker keeps one :class:`AccountState` per
account (``to_bytes``: 86 bytes + the plan name with one subscription, 8 more per subscription
once one states a period end, 8 more again while a period was restated within it, 4 more per
subscription once one states its seats, 16 more while an account that churned pays nothing) and folds each :class:`Change` into period counters
(``models.revenue_ledger.Ledger``).

>>> from models.events import Event
>>> from models.subscription import Subscription
>>> def sub(user, day, status, mrr):
...     return Event(user, 1_767_225_600_000 + day * 86_400_000, "subscription", f"e{day}{user}", 0.0, "acme",
...                  Subscription(status, "Pro", mrr))
>>> acme = AccountState()
>>> [acme.apply(ev).add.kind for ev in (sub("u1", 0, "active", 5000), sub("u2", 3, "active", 1000),
...                                     sub("u2", 40, "cancelled", 0), sub("u1", 45, "cancelled", 0))]
['new', 'expansion', 'contraction', 'churn']
>>> acme.apply(sub("u1", 50, "active", 5000)).add.delta_cents  # back: reactivation
5000
>>> same_time = acme.apply(sub("u2", 50, "active", 1000))  # another statement at the same time
>>> (same_time.retract.delta_cents, same_time.add.kind, same_time.add.delta_cents)
(5000, 'reactivation', 6000)
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from models.events import Event
from models.subscription import RENEWAL_GRACE_MS, SUBSCRIPTION_STATUSES, Subscription, renewal_window_ms

__all__ = ["INTRO_PERIOD_MAX_MS", "MOVEMENT_KINDS", "RENEWAL_SLACK_MS", "AccountState", "AccountView", "Change", "Movement", "MovementKind",
           "intro_ended"]

MovementKind = Literal["new", "expansion", "contraction", "churn", "reactivation", "pause", "resume"]
MOVEMENT_KINDS: Final[tuple[MovementKind, ...]] = ("new", "expansion", "contraction", "churn", "reactivation", "pause", "resume")

_PAYING: Final[frozenset[str]] = frozenset(("active", "past_due"))
#: A status's byte in the state record: its place in the contract's tuple (``paused`` last)
_STATUS_BYTE: Final[dict[str, int]] = {s: i for i, s in enumerate(SUBSCRIPTION_STATUSES)}
#: Which of two statements of one subscription at one time wins (the larger): a pause loses to a
#: cancellation stated at the same time; the others keep their order of before
_STATUS_RANK: Final[dict[str, int]] = {"trial": 0, "active": 1, "past_due": 2, "paused": 3, "cancelled": 4}
_HEAD = struct.Struct("<BqqqqqH")  # format, at, before, spell start, first paid, contracted, n subs
#: Per-subscription record by format: 1 = without period ends (written while no subscription states
#: one, so such states keep their size and older readers), 2 = with them, 3 = with them and when
#: each period was first stated (written only while a statement was re-sent or a plan changed
#: within a period, so that it differs from the time last stated: review M4). All are read.
_SUBS: Final[dict[int, struct.Struct]] = {
    1: struct.Struct("<QqqBqqH"),  # key, since, stated, status, mrr cents, trial ends, plan bytes
    2: struct.Struct("<QqqBqqqH"),  # key, since, stated, status, mrr cents, trial ends, period end, plan bytes
    3: struct.Struct("<QqqBqqqqH"),  # as 2, then period from (before the plan bytes)
}
#: Set in the format byte while a subscription states its seats: after the subscriptions, then one
#: ``_SEATS`` per subscription in their order (0: not stated). Without it the record is as before.
_WITH_SEATS: Final[int] = 0x10
_SEATS = struct.Struct("<I")
#: After the subscriptions, only while an account that churned pays nothing: the MRR its churn took
#: (cents) and when. Readers that predate it ignore trailing bytes (``unpack_from``).
_CHURNED = struct.Struct("<qq")
#: Set in the format byte while a statement at the latest time T cancelled a past-due subscription
#: (``AccountState.unpaid``): no bytes, a bit of the head (older readers must not see it: it is
#: written only while such a churn is T's, QA22a F5)
_UNPAID: Final[int] = 0x20
#: Set in the format byte while a statement at the latest time T ended an introductory price
#: (:func:`intro_ended`; ``AccountState.intro``): no bytes, a bit of the head, written only while
#: T's movement is such an expansion (older readers must not see it, as ``_UNPAID``)
_INTRO: Final[int] = 0x40
#: A statement this close to the period end its subscription stated before is its renewal (the
#: price rise's rule, streams.worker.account_alerts.note_price_rise, and :func:`intro_ended`)
RENEWAL_SLACK_MS: Final[int] = 86_400_000
#: The longest first paid period whose price :func:`intro_ended` may call introductory: a quarter
#: (92 days). Offers are a first month or a first quarter; a first period of a half-year or a year
#: is the plan's own term, and a rise at its first renewal is a second-year rise for a subscriber
#: of a year, a price rise, never an offer's end (QA24a F2's brief: "never mistake a real price
#: rise for an existing subscriber for an intro end"). A first-year discount is said as a rise.
INTRO_PERIOD_MAX_MS: Final[int] = 92 * 86_400_000


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of an account's MRR at ``ts_ms``.

    ``spell_start_ms``: when the paying spell this movement belongs to began (``ts_ms`` itself
    for new and reactivation), so a period can tell customers it had at its start.
    ``first_paid_ms``: when the account first paid (its cohort).
    """

    ts_ms: int
    kind: MovementKind
    mrr_before_cents: int
    mrr_after_cents: int
    spell_start_ms: int
    first_paid_ms: int
    # a churn whose statements cancelled a subscription that was past due (its payment failed and
    # was never fixed): involuntary, billing gave up (QA22a F5); False for every other movement
    involuntary: bool = False
    # an expansion at the first full-price renewal after an introductory price (:func:`intro_ended`,
    # QA24a F2): still expansion, as ChartMogul books "an expiring discount"; False for every other
    intro_ended: bool = False

    @property
    def delta_cents(self) -> int:
        return self.mrr_after_cents - self.mrr_before_cents

    @property
    def customers_delta(self) -> int:
        """+1 when the account becomes a paying customer (new, reactivation), -1 when it stops
        (churn, also from a pause at 0 MRR), else 0 (a pause and a resume keep the customer)."""
        kind = self.kind
        return 1 if kind == "new" or kind == "reactivation" else -1 if kind == "churn" else 0


@dataclass(frozen=True, slots=True)
class Change:
    """What one statement did to the movements: ``retract`` one reported earlier (same T), ``add`` one.

    ``late``: the statement was older than the account's latest time and would have changed
    the past, so it was ignored.
    """

    retract: Movement | None = None
    add: Movement | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account's subscription state for people and for the account roll-up (risk signals)."""

    mrr_cents: int
    customer: bool  # paying now (MRR > 0)
    status: str  # "past_due" if any subscription is, else "active", "trial", "cancelled" or "none"
    plans: tuple[str, ...]  # plans of the subscriptions in force (not cancelled), sorted
    past_due_since_ms: int  # 0 = no failed payment open
    trial_ends_ms: int  # earliest trial end of a subscription in trial; 0 = none
    contracted_ms: int  # latest downgrade or partial cancellation; 0 = none
    first_paid_ms: int  # 0 = never paid
    renews_ms: int = 0  # earliest end of a paid period (active or past due: a cancelled one has no renewal); 0 = none stated
    period_ends_ms: tuple[int, ...] = ()  # the ends of the paid periods stated, sorted (renews_ms is the first)
    # the member keys (models.account_health.member_key: the same 8-byte hash) of the users whose
    # statements key a subscription in force (not cancelled), sorted: the account roll-up keeps them
    # among its users while they are silent (QA11 F3: the user the billing comes from)
    billing_keys: tuple[int, ...] = ()
    # per period end of ``period_ends_ms``, the billing period its statements state: from the
    # earliest statement of a subscription paid through that end to the end (the longest, when two
    # subscriptions end together). A renewal statement at the period's start states the whole
    # period, and a statement sent later in the same period (a plan change, a re-sent statement)
    # does not shorten it (review M4: the latest was read, and an annual plan's window fell from
    # 91 days to 30); one sent only later states what is left of it. For the renewal window
    # (:meth:`renewal_window_ms`, QA11 F5)
    periods_ms: tuple[int, ...] = ()
    # a customer whose pause runs (status "paused": a subscription paused and none paying, QA22a
    # F1): when it ends (the earliest stated resume date; -1 = not stated); 0 = not paused
    resumes_ms: int = 0
    # when a pause last ended by a resume, while that resume is the account's latest change (the
    # paying spell went on through the pause: the ledger's ``resume``); 0 otherwise
    resumed_ms: int = 0

    @property
    def paused(self) -> bool:
        """Whether the account is a customer whose pause runs: not churned, nothing to win back."""
        return self.resumes_ms != 0

    def renewal_window_ms(self, end_ms: int) -> int:
        """How long before the period end ``end_ms`` the renewal counts as near
        (``models.subscription.renewal_window_ms`` of its period); 30 days for an end the
        statements do not give (0, or the accounts table's date).

        >>> v = AccountView(0, True, "active", (), 0, 0, 0, 0, 10, (10, 400 * 86_400_000), (), (10, 365 * 86_400_000))
        >>> v.renewal_window_ms(400 * 86_400_000) // 86_400_000, v.renewal_window_ms(10) // 86_400_000, v.renewal_window_ms(0) // 86_400_000
        (91, 30, 30)
        """
        i = bisect.bisect_left(self.period_ends_ms, end_ms)
        known = end_ms > 0 and i < len(self.periods_ms) and self.period_ends_ms[i] == end_ms
        return renewal_window_ms(self.periods_ms[i] if known else 0)

    def renews_at(self, now_ms: int) -> int:
        """The renewal at ``now_ms``: the earliest paid period end at or after it, or passed less than
        the renewal's grace before it (models.subscription.RENEWAL_GRACE_MS: its statement comes
        after the end), 0 when none. A period end passed without a restatement (an add-on's) is not
        the account's renewal while another subscription renews later.

        >>> day = 86_400_000
        >>> v = AccountView(0, True, "active", (), 0, 0, 0, 0, 10 * day, (10 * day, 130 * day))
        >>> v.renews_at(10 * day + 3_600_000) == 10 * day, v.renews_at(12 * day) == 130 * day, v.renews_at(132 * day)
        (True, True, 0)
        """
        return next((t for t in self.period_ends_ms if t + RENEWAL_GRACE_MS >= now_ms), 0)

    def renewal_shown_ms(self, now_ms: int) -> int:
        """The period end to show at ``now_ms``: the renewal (:meth:`renews_at`), else the latest
        one passed (a "renewal was due" text); 0 when none is stated."""
        return self.renews_at(now_ms) or (self.period_ends_ms[-1] if self.period_ends_ms else 0)


@dataclass(frozen=True, slots=True)
class _Sub:
    since_ms: int  # when this content started to hold (kept by restatements: "past due since")
    stated_ms: int  # the latest time it was stated (decides same-time conflicts and staleness)
    sub: Subscription
    # the earliest time a paying statement of this subscription stated ``sub.period_end_ms`` (the
    # period's start as the statements show it; ``stated_ms`` unless one was re-sent or the plan
    # changed within the period): the billing period for the renewal window, AccountView.periods_ms
    period_from_ms: int

    def rank(self) -> tuple[int, int, str, int, int, int]:
        s = self.sub
        return (_STATUS_RANK[s.status], s.mrr_cents, s.plan, s.trial_ends_ms, s.period_end_ms, s.seats)


def _same_terms(a: Subscription, b: Subscription) -> bool:
    """Equal but perhaps for the period end: a renewal restating the subscription one period on."""
    return (a.status, a.mrr_cents, a.plan, a.trial_ends_ms) == (b.status, b.mrr_cents, b.plan, b.trial_ends_ms)


def _period_from(cur: _Sub | None, stmt: Subscription, ts: int) -> int:
    """When the period ``stmt`` is paid through was first stated, for a statement at ``ts`` that
    takes over from ``cur``: ``cur``'s when it was paying through the same end (a statement re-sent
    or a plan changed within the period), else ``ts``.

    >>> old = _Sub(5, 9, Subscription("active", "Pro", 100, 0, 400), 5)
    >>> _period_from(old, Subscription("active", "Max", 200, 0, 400), 300), _period_from(old, Subscription("active", "Pro", 100, 0, 800), 400)
    (5, 400)
    """
    return min(cur.period_from_ms, ts) if cur is not None and _same_period(cur, stmt) else ts


def _same_period(cur: _Sub, stmt: Subscription) -> bool:
    """Whether ``stmt`` is paid through the end ``cur`` was paying through (a trial's or a
    cancelled subscription's end is no paid period)."""
    return cur.sub.status in _PAYING and stmt.period_end_ms != 0 and stmt.period_end_ms == cur.sub.period_end_ms


def intro_ended(before: Subscription, since_ms: int, period_from_ms: int, after: Subscription, ts_ms: int,
                spell_start_ms: int, own: bool) -> bool:
    """Whether the statement ``after`` at ``ts_ms`` ends an introductory price: the price the
    subscription started paying at (``before``, held since ``since_ms``, when the account's paying
    spell began, ``spell_start_ms``) held for its first period only (never renewed at it:
    ``period_from_ms`` is ``since_ms``), of at most a quarter (:data:`INTRO_PERIOD_MAX_MS`), and
    this statement is that period's renewal (within a day of its end) on the same plan at a higher
    price: "1.00 the first month, then 9.99" (QA24a F2). Whose price: as the price rise's rule
    (streams.worker.account_alerts.note_price_rise), the user's own subscription (``own``: no
    ``account_id``, or the user's id), or one stating its seats before and after at a higher price
    per seat; a company's MRR rising without seats is more seats as often as a price.
    Never a rise after a renewal at the old price (a second-year rise of a monthly plan), nor the
    first renewal of a half-year or annual plan (a subscriber of a year), nor a new plan. What it
    cannot tell: a price rise for everyone that reaches a subscriber at their first monthly renewal
    reads as an intro's end (docs/REVENUE.md "An introductory price's end").

    >>> day = 86_400_000
    >>> intro, full = Subscription("active", "digital", 100, 0, 31 * day), Subscription("active", "digital", 999, 0, 59 * day)
    >>> intro_ended(intro, 0, 0, full, 31 * day, 0, True), intro_ended(intro, 0, 0, full, 31 * day, 0, False)
    (True, False)
    >>> intro_ended(intro, 0, 28 * day, full, 59 * day, 0, True)   # renewed once at 1.00: a rise
    False
    >>> year = Subscription("active", "digital", 100, 0, 365 * day)   # a year's first renewal: a second-year rise
    >>> intro_ended(year, 0, 0, replace(full, period_end_ms=730 * day), 365 * day, 0, True)
    False
    >>> intro_ended(intro, 5 * day, 5 * day, full, 31 * day, 0, True)   # not the price it started paying at
    False
    """
    if before.status not in _PAYING or after.status not in _PAYING or before.plan != after.plan or not before.period_end_ms:
        return False
    if since_ms != spell_start_ms or period_from_ms != since_ms or before.period_end_ms - since_ms > INTRO_PERIOD_MAX_MS:
        return False
    if abs(ts_ms - before.period_end_ms) > RENEWAL_SLACK_MS:
        return False
    if before.seats and after.seats:  # the price per seat rose (exact, in cents x seats)
        return after.mrr_cents * before.seats > before.mrr_cents * after.seats
    return own and after.mrr_cents > before.mrr_cents


def _sub_key(user_id: str) -> int:
    """The subscription's id inside its account: 8 bytes of the user id's hash (state stays small)."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "little")


@dataclass(slots=True)
class AccountState:
    """One account's subscriptions and what its next movement is measured against.

    ``at_ms`` is the latest time a statement changed something (T); ``before_cents``,
    ``spell_start_ms`` and ``first_paid_ms`` describe the account just before T, so the movement
    at T can be re-measured while more statements of the same T arrive. ``lost_cents`` and
    ``churned_ms``: the latest churn settled before T while the account has paid nothing since
    (:meth:`churned`); a later statement (another subscription's cancellation, a trial) moves T
    and ``before_cents`` on, not these.
    """

    at_ms: int = 0
    before_cents: int = 0
    spell_start_ms: int = 0  # 0 = not paying just before T
    first_paid_ms: int = 0  # 0 = never paid before T
    contracted_ms: int = 0  # latest contraction settled before T
    lost_cents: int = 0  # MRR the latest settled churn took; 0 while paying or never churned
    churned_ms: int = 0  # when that churn was; 0 likewise
    subs: dict[int, _Sub] = field(default_factory=dict)
    # a statement at T restated a subscription that was past due before T: T's churn, with a
    # cancellation at T, is involuntary (``Movement.involuntary``; QA22a F5); forgotten when T moves on
    unpaid: bool = False
    # a statement at T ended an introductory price (:func:`intro_ended`): T's expansion says so
    # (``Movement.intro_ended``; QA24a F2); forgotten when T moves on
    intro: bool = False

    def mrr_cents(self) -> int:
        return sum(s.sub.mrr_cents for s in self.subs.values() if s.sub.status in _PAYING)

    def churned(self) -> tuple[int, int]:
        """(MRR lost in cents, when) of the churn that took the account's MRR to 0, while it pays
        nothing; (0, 0) while it pays, and when it never churned (a trial cancelled unpaid) or its
        record predates these fields. The movement at T when that is the churn, else the one kept
        when it settled: a later statement does not move it (the win-back list read the MRR just
        before the latest change, which another subscription's later cancellation made 0 or a
        contraction's remainder: review of 2026-12-02).

        >>> from models.events import Event
        >>> from models.subscription import Subscription
        >>> def sub(user, day, status, mrr):
        ...     return Event(user, day * 86_400_000, "subscription", f"e{day}{user}", 0.0, "a", Subscription(status, "Pro", mrr))
        >>> st = AccountState().update(sub("u1", 1, "active", 5000)).update(sub("u1", 5, "cancelled", 0))
        >>> st.churned() == (5000, 5 * 86_400_000) == st.update(sub("u2", 9, "cancelled", 0)).churned()
        True
        """
        if self.mrr_cents():
            return 0, 0
        if self.before_cents:  # the movement at T is the churn, or a pause
            return (0, 0) if self._pausing() else (self.before_cents, self.at_ms)
        return self.lost_cents, self.churned_ms

    def _pausing(self) -> bool:
        """Whether a subscription in force is paused (a pause at 0 MRR keeps the customer)."""
        return any(s.sub.status == "paused" for s in self.subs.values())

    def _held(self) -> bool:
        """Whether the account was a customer in a pause just before T: its spell goes on at 0 MRR."""
        return self.before_cents == 0 and self.spell_start_ms != 0

    def update(self, event: Event) -> AccountState:
        """Apply one subscription event (others are ignored); see :meth:`apply` for what it moved."""
        self.apply(event)
        return self

    def stale(self, event: Event) -> bool:
        """Whether ``event``'s subscription holds content that began after it: :meth:`apply` then
        takes the statement for a replay of history and ignores it (not ``late``: a replay sorted
        first has none), though one the state never saw would have changed the past. The live
        half counts such a statement late when it came late for its user (streams.worker.revenue).

        >>> from models.events import Event
        >>> from models.subscription import Subscription
        >>> def sub(day, mrr):
        ...     return Event("u1", day * 86_400_000, "subscription", f"e{day}", 0.0, "a", Subscription("active", "Pro", mrr))
        >>> st = AccountState().update(sub(1, 5000)).update(sub(5, 9000))
        >>> st.stale(sub(3, 7000)), st.stale(sub(5, 9000)), st.stale(sub(6, 7000)), st.apply(sub(3, 7000))
        (True, False, False, Change(retract=None, add=None, late=False))
        """
        cur = self.subs.get(_sub_key(event.user_id))
        return event.subscription is not None and cur is not None and cur.since_ms > event.ts_ms

    def apply(self, event: Event) -> Change:
        """Apply one subscription event and say which movement it retracted and added."""
        stmt = event.subscription
        if stmt is None:
            return Change()
        ts, key = event.ts_ms, _sub_key(event.user_id)
        cur = self.subs.get(key)
        if cur is not None and _same_terms(cur.sub, stmt) and _same_period(cur, stmt) and ts < cur.period_from_ms:
            # the statement in force stated earlier (a re-sent one came first): the period is longer;
            # nothing else is taken from it (below: an older statement, a replay)
            self.subs[key] = cur = _Sub(cur.since_ms, cur.stated_ms, cur.sub, ts)
        if cur is not None and _same_terms(cur.sub, stmt) and cur.since_ms <= ts:
            # restated (a renewal, a replay): nothing moves; a later one (or, at the same time, the
            # later period end) carries its period end, and one of the period in force its start
            if ts > cur.stated_ms or (ts == cur.stated_ms and (stmt.period_end_ms, stmt.seats) > (cur.sub.period_end_ms, cur.sub.seats)):
                self.subs[key] = _Sub(cur.since_ms, ts, stmt, _period_from(cur, stmt, ts))
            return Change()
        if cur is not None and cur.stated_ms > ts:
            # Stated later than this: older than the content in force, a replay of history; inside
            # the span that content is known to hold, a contradiction of the past (late).
            return Change(late=cur.since_ms <= ts)
        if ts < self.at_ms:
            return Change(late=True)
        new = _Sub(ts, ts, stmt, _period_from(cur, stmt, ts))
        # a subscription past due before T (its content held before T) restated at T: whatever the
        # order of T's statements, the first of them to reach it sees that content
        was_due = cur is not None and cur.since_ms < ts and cur.sub.status == "past_due"
        if ts > self.at_ms:
            if self.at_ms:
                self._settle(ts)
            self.at_ms, self.unpaid = ts, was_due
            self.intro = self._intro(cur, event)
            if cur is not None and cur.stated_ms == ts and cur.rank() >= new.rank():
                return Change()  # restated at this very time with more weight: it stays
            self.subs[key] = new
            return Change(add=self._movement())
        old = self._movement()
        self.unpaid = self.unpaid or was_due
        self.intro = self.intro or self._intro(cur, event)
        if cur is not None and cur.stated_ms == ts and cur.rank() >= new.rank():
            return Change() if self._movement() == old else Change(retract=old, add=self._movement())
        self.subs[key] = new
        mv = self._movement()
        return Change() if mv == old else Change(retract=old, add=mv)

    def _intro(self, cur: _Sub | None, event: Event) -> bool:
        """Whether ``event`` (at T) ends the introductory price of the subscription it restates,
        ``cur`` its content before T (:func:`intro_ended`)."""
        stmt = event.subscription
        return (stmt is not None and cur is not None and cur.since_ms < event.ts_ms
                and intro_ended(cur.sub, cur.since_ms, cur.period_from_ms, stmt, event.ts_ms, self.spell_start_ms,
                                event.user_id == event.account))

    def _movement(self) -> Movement | None:
        before, after, t = self.before_cents, self.mrr_cents(), self.at_ms
        held = self._held()  # a customer whose pause ran before T: its resume, or its churn at 0
        if after == before:
            if held and not self._pausing():  # paused, then cancelled (or a free plan, a trial)
                return Movement(t, "churn", 0, 0, self.spell_start_ms, self.first_paid_ms or t)
            return None
        if before == 0:
            kind: MovementKind = "resume" if held else "reactivation" if self.first_paid_ms else "new"
        elif after == 0:
            kind = "pause" if self._pausing() else "churn"
        else:
            kind = "expansion" if after > before else "contraction"
        spell = t if before == 0 and not held else self.spell_start_ms
        # involuntary: a subscription past due before T cancelled at T (with several subscriptions,
        # one past due going to a trial while another is cancelled at the same T would read so too)
        unpaid = kind == "churn" and self.unpaid and any(s.sub.status == "cancelled" and s.stated_ms == t for s in self.subs.values())
        return Movement(t, kind, before, after, spell, self.first_paid_ms or t, unpaid, kind == "expansion" and self.intro)

    def _settle(self, next_ms: int) -> None:
        """Time moves past T to ``next_ms``: what held after T becomes "before"; cancelled
        subscriptions go, except one already restated at ``next_ms`` (a same-time rival must still
        lose to it, whatever the order the two arrive in)."""
        after = self.mrr_cents()
        # a pause keeps the paying spell (the customer) at 0 MRR, its resume carries it on
        kept = not after and (self.before_cents or self.spell_start_ms) and self._pausing()
        if after and not self.before_cents and not self.spell_start_ms:
            self.spell_start_ms = self.at_ms
            self.first_paid_ms = self.first_paid_ms or self.at_ms
        elif not after and not kept:
            self.spell_start_ms = 0
        if 0 < after < self.before_cents:
            self.contracted_ms = self.at_ms
        if after:
            self.lost_cents = self.churned_ms = 0
        elif self.before_cents and not kept:  # the movement at T was the churn: kept while nothing is paid
            self.lost_cents, self.churned_ms = self.before_cents, self.at_ms
        self.before_cents = after
        for k in [k for k, s in self.subs.items() if s.sub.status == "cancelled" and s.stated_ms < next_ms]:
            del self.subs[k]

    def get(self) -> AccountView:
        mrr = self.mrr_cents()
        live = [s for s in self.subs.values() if s.sub.status != "cancelled"]
        statuses = {s.sub.status for s in self.subs.values()}
        status = next((s for s in ("past_due", "active", "paused", "trial", "cancelled") if s in statuses), "none")
        past_due = [s.since_ms for s in live if s.sub.status == "past_due"]
        trials = [s.sub.trial_ends_ms for s in live if s.sub.status == "trial" and s.sub.trial_ends_ms]
        paid = [s for s in live if s.sub.status in _PAYING and s.sub.period_end_ms]
        renews = [s.sub.period_end_ms for s in paid]
        ends = tuple(sorted(set(renews)))
        periods = tuple(max(e - s.period_from_ms for s in paid if s.sub.period_end_ms == e) for e in ends)
        mv = self._movement()
        contracted = self.at_ms if mv is not None and mv.kind == "contraction" else self.contracted_ms
        first_paid = self.first_paid_ms or (self.at_ms if mrr else 0)
        resumes = 0
        if status == "paused" and first_paid:  # a customer whose pause runs (never paid: not a customer)
            resumes = min((s.sub.period_end_ms for s in live if s.sub.status == "paused" and s.sub.period_end_ms), default=-1)
        return AccountView(mrr, mrr > 0, status, tuple(sorted(s.sub.plan for s in live)), min(past_due, default=0),
                           min(trials, default=0), contracted, first_paid, min(renews, default=0), ends,
                           tuple(sorted(k for k, s in self.subs.items() if s.sub.status != "cancelled")), periods, resumes,
                           self.at_ms if mv is not None and mv.kind == "resume" else 0)

    def to_bytes(self) -> bytes:
        """Compact record for Redis: a 43-byte head, then per subscription 43 bytes + the plan
        (format 1), or 51 bytes + the plan (format 2) once a subscription states a period end, or
        59 (format 3) while a period was stated before the subscription's latest statement;
        then (a bit of the head, ``_UNPAID``, while T's statements cancelled a past-due subscription;
        another, ``_INTRO``, while one ended an introductory price),
        only while a subscription states its seats (``_WITH_SEATS``), 4 bytes a subscription:
        its seats; then, only while an account that churned pays nothing, 16 bytes: the MRR that
        churn took and when (:meth:`churned`; a reader that predates them ignores them)."""
        fmt = (3 if any(s.period_from_ms != s.stated_ms for s in self.subs.values())
               else 2 if any(s.sub.period_end_ms for s in self.subs.values()) else 1)
        seats = any(s.sub.seats for s in self.subs.values())
        flags = (_WITH_SEATS if seats else 0) | (_UNPAID if self.unpaid else 0) | (_INTRO if self.intro else 0)
        parts = [_HEAD.pack(fmt | flags, self.at_ms, self.before_cents, self.spell_start_ms, self.first_paid_ms,
                            self.contracted_ms, len(self.subs))]
        for key, s in self.subs.items():
            plan = s.sub.plan.encode()
            period = (s.sub.period_end_ms,) if fmt == 2 else (s.sub.period_end_ms, s.period_from_ms) if fmt == 3 else ()
            parts.append(_SUBS[fmt].pack(key, s.since_ms, s.stated_ms, _STATUS_BYTE[s.sub.status], s.sub.mrr_cents,
                                         s.sub.trial_ends_ms, *period, len(plan)))
            parts.append(plan)
        if seats:
            parts.extend(_SEATS.pack(s.sub.seats) for s in self.subs.values())
        if self.churned_ms:
            parts.append(_CHURNED.pack(self.lost_cents, self.churned_ms))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> AccountState:
        """A record of :meth:`to_bytes`, of any format."""
        head, at, before, spell, first, contracted, n = _HEAD.unpack_from(data, 0)
        fmt = head & ~(_WITH_SEATS | _UNPAID | _INTRO)
        record = _SUBS.get(fmt)
        if record is None:
            raise ValueError(f"account state format {head} is not one of {sorted(_SUBS)} (+{_WITH_SEATS} with seats, +{_UNPAID} unpaid, "
                             f"+{_INTRO} intro ended)")
        st = cls(at, before, spell, first, contracted, unpaid=bool(head & _UNPAID), intro=bool(head & _INTRO))
        pos = _HEAD.size
        for _ in range(n):
            key, since, stated, status, mrr, ends, *rest = record.unpack_from(data, pos)
            period_end, period_from, plan_len = (rest if fmt == 3 else (rest[0], stated, rest[1]) if fmt == 2
                                                 else (0, stated, rest[0]))
            pos += record.size
            plan = data[pos:pos + plan_len].decode()
            pos += plan_len
            sub = Subscription(SUBSCRIPTION_STATUSES[status], plan, mrr, ends, period_end)
            st.subs[key] = _Sub(since, stated, sub, period_from)
        if head & _WITH_SEATS:  # the seats, in the subscriptions' order
            for key, s in st.subs.items():
                st.subs[key] = _Sub(s.since_ms, s.stated_ms, replace(s.sub, seats=_SEATS.unpack_from(data, pos)[0]), s.period_from_ms)
                pos += _SEATS.size
        if len(data) >= pos + _CHURNED.size:
            st.lost_cents, st.churned_ms = _CHURNED.unpack_from(data, pos)
        return st
