"""The one entry point the stream and the backtest share: advance a user to an event time.

``advance`` folds a user's events into the state in event-time order and, like a Kafka Streams
punctuation but per user and on event time, *reviews* the user whenever its ``next_review_s``
comes due: before an event that is later than the due time, and at the end up to the caller's
watermark. A review scores the user at the due time itself (not at the moment the sweep ran), so
the result does not depend on how the events were cut into batches or how late a sweep ran.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Iterable, Literal

from models._native import init_args

if TYPE_CHECKING:  # mypyc's native 64-bit int (a plain int when run as Python): models.state's
    from mypy_extensions import i64
from models.account_health import machine_user
from models.compiled import CompiledModel
from models.events import EVENT_ORDER, Event
from models.model import ChurnModel
from models.state import (ACCOUNT_MEMBER, DAY_S, GRIEVANCE, MAX_PERIOD_END_DAY, STAGE_HELD, STAGES, Stage, UserState,
                          apply_looked_up, f32)
from models.vocabulary import ACTIVITY, CANCEL_REQUEST, IGNORE, NEGATIVE, SUBSCRIPTION
from models.lifecycle import JUDGED, RECOVERABLE, RETURN_SHARE, back_share, next_change_s
from models.reasons import IMPROVED, Purpose
from models.risk import exit_opens_s
from models.signals import (Signals, calendar_hold_s, credit_late, credit_late_at_s, first_return_due_s, grievance_stands,
                            is_cancelled, order_due_s, order_overdue, paid_period_passes_s, paid_period_runs, reorder_late,
                            reorder_late_opens_s, reorder_late_s)
from models.scoring import Assessment, Scores, SilentRisk, assess, risk_at, scores_from

__all__ = ["STAGE_HOLD_DAYS", "Alert", "AlertKind", "Mark", "Outcome", "Turn", "advance", "alert_id", "alert_may_open", "kept_days",
           "renewal_pending", "review_due_s", "subscriber_return_due_s",
           "round_places"]

AlertKind = Literal["at_risk", "recovered", "stage_changed"]
ALERT_SCHEMA = "churnwatch-alert/1"
# Final: mypyc reads a Final constant as a C value, any other module global from the module's
# dict at every use (a dict lookup per bisection step)
_RISK_TOLERANCE_S: Final[int] = 60  # precision of the at-risk crossing time found by bisection
_PROBE_S: Final[int] = 20  # width of the bracket the crossing search aims for before replaying the bisection
_INTERPOLATIONS: Final[int] = 6  # at most this many secant steps before the bisection replay
# A model whose risk may fall in silence (a fit with free signs, models.compiled ``silence_monotone``):
# no crossing search (it needs a risk that never falls), a look at a silent user at least this often
_FREE_SIGNS_LOOK_S: Final[int] = 86_400
_STAGE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(STAGES)}
#: Bit i set where STAGES[i] is in reasons.IMPROVED: a review tests its stage index with a shift
#: and a mask (a str in a frozenset was a generic set lookup per review).
_IMPROVED_BITS: Final[int] = sum(1 << i for i, name in enumerate(STAGES) if name in IMPROVED)
#: The scales of :func:`round_places` (10 ** places, exact doubles), by places.
_TENS: Final[tuple[float, ...]] = (1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0)
_TWO_52: Final[float] = 4503599627370496.0
#: An empty blake2b of an alert id's size, which each id copies (:func:`alert_id`), and the three
#: methods an id calls, held: the copy bound to it, ``update`` and ``hexdigest`` as the type's
#: (called with the copy): a method call by name looks the method up on the type every time
#: (the compiled core's generic method call).
_ID_HASH: Final = hashlib.blake2b(digest_size=12)
_ID_COPY: Final = _ID_HASH.copy
_ID_UPDATE: Final = type(_ID_HASH).update
_ID_HEX: Final = type(_ID_HASH).hexdigest
_TWO_M50: Final[float] = 1.0 / 1125899906842624.0
#: A change from active to declining is told (its ``stage_changed`` alert) only once the user has
#: been declining this long, in event time; a user back to active before then gets neither alert
#: (:func:`_review`, QA10 F14: 59% of those changes went back within 2 days). The stage itself
#: changes at once (state, scores, console, the at-risk rule): only the telling waits.
STAGE_HOLD_DAYS: Final[float] = 2.0
_STAGE_HOLD_S: Final[int] = int(STAGE_HOLD_DAYS * DAY_S)
_ACTIVE: Final[int] = STAGES.index("active")
_DECLINING: Final[int] = STAGES.index("declining")


def round_places(x: float, places: int) -> float:
    """``round(x, places)`` for 0 <= ``places`` <= 6, bit for bit, without its decimal string.

    Why: an alert's three numbers (:meth:`Alert.to_dict`) took ``round``'s correctly rounded
    path through a decimal string (dtoa, then back), about 3.5k instructions each, most of an
    alert's formatting. What it computes: K = x * 10 ** places rounded half to even, exactly,
    then the double nearest K / 10 ** places. Here y = |x| * 10 ** places in doubles is within
    y * 2 ** -53 of the exact product, so where its fraction is farther than that from one half,
    the exact product rounds to the same K (its floor or the next integer); and K / 10.0 **
    places, both exact doubles, is one correctly rounded division: the same nearest double (no
    tie: K / 10 ** places is a dyadic midpoint only when it is exactly representable). Near one
    half, and for NaN, inf or |y| >= 2 ** 52, ``round`` itself (tests/test_models_native.py
    compares both on random and near-tie values).

    >>> round_places(0.12345, 4), round_places(-0.04, 1), round_places(2.5, 0), round_places(0.25, 1)
    (0.1235, -0.0, 2.0, 0.2)
    """
    scale = _TENS[places]
    a = x if x >= 0.0 else -x
    y = a * scale
    if y < _TWO_52:  # False for NaN
        k = int(y)  # floor: y >= 0
        f = y - k  # exact
        margin = y * _TWO_M50
        if f - 0.5 > margin:
            return math.copysign((k + 1) / scale, x)
        if 0.5 - f > margin:
            return math.copysign(k / scale, x)
    return round(x, places)


#: An alert's wire form (``Alert.to_dict``): its keys in order, the constant fields' values.
_WIRE: Final[dict[str, object]] = {
    "schema": ALERT_SCHEMA, "delivery": "at-least-once; de-duplicate on alert_id", "alert_id": None, "kind": None,
    "user_id": None, "event_time_ms": None, "risk": None, "health": None, "temperature": None, "stage": None,
    "previous_stage": None, "segment": None, "action": None, "reasons": None,
}


@dataclass(slots=True, unsafe_hash=True)
class Alert:
    """A change worth telling the CRM. Delivered at least once: ``alert_id`` is stable across
    replays (it depends only on user, kind, stage and the event time it refers to), so
    consumers de-duplicate on it. A value, not changed once made; not a frozen dataclass for
    the reason :class:`models.scoring.Scores` gives.

    ``revenue``: the user's revenue at the review that raised the alert (the purchases up to
    ``event_time_ms``), for the "revenue of churned users" counter (streams.worker.store.stats_delta):
    the state a batch ends with also holds the purchases made after the churn, so that figure
    depended on where the batches ended (QA5 M5). Not in the alert's JSON (``to_dict``).

    ``member``: the user's events had named a company account by the review that raised the alert
    (``models.state.ACCOUNT_MEMBER``, kept for good once set): what the worker routes on when
    ``CHURNWATCH_MEMBER_ALERTS`` keeps account members' alerts off the alerts topic (QA18 F6). A
    fact of the state at the alert's own time, so the same for any cut of the batches and in a
    backtest. Not in the alert's JSON either."""

    alert_id: str
    kind: AlertKind
    user_id: str
    event_time_ms: int
    scores: Scores
    previous_stage: Stage | None = None
    revenue: float = 0.0
    member: bool = False

    def __init__(self, alert_id: str, kind: AlertKind, user_id: str, event_time_ms: int, scores: Scores,
                 previous_stage: Stage | None = None, revenue: float = 0.0, member: bool = False) -> None:
        # Written out, not generated by @dataclass: mypyc compiles this one (the generated one runs as Python).
        self.alert_id = alert_id
        self.kind = kind
        self.user_id = user_id
        self.event_time_ms = event_time_ms
        self.scores = scores
        self.previous_stage = previous_stage
        self.revenue = revenue
        self.member = member

    def to_dict(self) -> dict[str, object]:
        """The alert as the alerts topic carries it (its JSON), keys in :data:`_WIRE`'s order.

        A copy of :data:`_WIRE` with each value set: building a dict of 14 keys inserted each
        key (~3.2k instructions an alert), a copy of one takes its table at once and a set
        replaces a value (~1.7k); the same keys, order and values."""
        s = self.scores
        d = _WIRE.copy()
        d["alert_id"] = self.alert_id
        d["kind"] = self.kind
        d["user_id"] = self.user_id
        d["event_time_ms"] = self.event_time_ms
        d["risk"] = round_places(s.risk, 4)
        d["health"] = round_places(s.health, 1)
        d["temperature"] = round_places(s.temperature, 1)
        d["stage"] = s.stage
        d["previous_stage"] = self.previous_stage
        d["segment"] = s.segment
        d["action"] = s.action
        d["reasons"] = list(s.reasons)
        return d

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return init_args(self)  # pickle: a compiled class with slots is rebuilt from its fields


@dataclass(slots=True)
class Outcome:
    """What ``advance`` returns: the new state, the alerts it raised, whether the state may be
    dropped from the store (churn reported and silent past the retention period), and the
    assessment of the call's last review when no event changed the state after it (else None):
    the worker's save-list index takes its bound from it (models.ranking.save_bound_after)
    instead of scoring the user once more."""

    state: UserState
    alerts: list[Alert] = field(default_factory=list)
    expire: bool = False
    review: Assessment | None = None

    def __init__(
        self,
        state: UserState,
        alerts: list[Alert] | None = None,
        expire: bool = False,
        review: Assessment | None = None,
    ) -> None:
        # Written out, not generated by @dataclass: mypyc compiles this one (the generated one runs as Python).
        self.state = state
        self.alerts = [] if alerts is None else alerts
        self.expire = expire
        self.review = review

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return init_args(self)


#: The state at a fixed point of event time, taken by :func:`advance` as it passes it: ``(period,
#: state as of the user's last event of that period, the assessment of the review that left it or
#: None)``; what streams.worker.members makes a member copy from.
Mark = tuple[int, UserState, Assessment | None]
#: A review in silence that opened or closed the user's at-risk alert: ``(user id, its second, the
#: state it left, why)``, taken by :func:`advance` into its ``turns`` for a user whose events name no
#: company account (``ACCOUNT_MEMBER``): what streams.worker.members sends a one-user account (a
#: shop's customer sent with ``account_id`` = the user id) so that it hears of the alert when it
#: opens, not at the user's next active hour (QA21 F2); last, the first reason of the alert it
#: opened ("usual re-order every 34 days, none for 55 days"; "" when it closed one).
Turn = tuple[str, int, UserState, str]


def alert_id(user_id: str, kind: str, detail: str, event_time_ms: int) -> str:
    """Stable id: the same user, kind, detail and event time give the same id in every replay.

    >>> alert_id("u1", "at_risk", "", 1000)
    'f151969b677f66f6afef5b06'
    """
    # A copy of the empty hash, then the text: the same digest as ``blake2b(text, digest_size=12)``
    # (the same parameters, the same bytes) without the type call with a keyword, which made a
    # tuple and a dict and parsed the keywords, ~1k instructions an alert (docs/SCALING.md).
    digest = _ID_COPY()
    _ID_UPDATE(digest, f"{user_id}\x1f{kind}\x1f{detail}\x1f{event_time_ms}".encode())
    return _ID_HEX(digest)


def advance(
    user_id: str,
    state: UserState | None,
    events: Iterable[Event],
    until_ms: int,
    model: ChurnModel,
    period_ms: int = 0,
    marks: list[Mark] | None = None,
    c: CompiledModel | None = None,
    turns: list[Turn] | None = None,
) -> Outcome:
    """Apply ``events`` (any order) and every review due strictly before ``until_ms``.

    Events are applied in ``(ts_ms, event_id)`` order; a review due strictly before an event's
    time runs before that event. The first event of each new active day is also a review point,
    so coming back (recovered, reactivated) is noticed on the event that shows it; so is a
    ``subscription`` statement that moves the end of the paid period (the risk's exit gate,
    models.risk.exit_open), which is not activity.

    "Strictly before" on both sides makes batching invisible: the caller's later events are never
    earlier than ``until_ms`` (the stream sends earlier ones to the DLQ as late), so a review this
    call runs would also have run before each of them in one big call, and one due exactly at a
    later event's time runs after that event either way. Hence advance(part 1 up to t) then
    advance(part 2) == advance(everything) for in-order parts, alerts included.

    ``marks`` (with ``period_ms`` > 0): also append a :data:`Mark` per period of ``period_ms``
    (epoch-aligned) in which ``events`` fall, the state as of the period's last event, which is
    what ``advance(.., that period's events, its last event's time)`` gives after the events
    before it: the reviews due strictly before an event run before it, and none is due strictly
    before an event's own time after it (a review schedules the next one later than its own
    second; an event does not move the schedule). So one pass gives the user's step and the
    member copies' states (streams.worker.members), instead of a second ``advance`` per period.
    A mark of the period the list already ends with replaces it (a caller splitting its
    events into several calls, models.weekly).
    ``c``: ``model.compiled`` where the caller holds it (a generic attribute lookup of the Python
    ChurnModel, ~160 instructions: once per call here, handed to each review).
    ``turns``: also append a :data:`Turn` per review in silence (one due, not an event's) that
    opens or closes the at-risk alert of a user not a company account's member: rare, one per
    alert (QA21's history: 1,404 of 49,814 reviews in silence), never one per review.
    The end of a held stage change's hold (:func:`review_due_s`) is due like a review.
    """
    st = state.copy() if state is not None else UserState()
    out = Outcome(st)
    if c is None:
        c = model.compiled
    vocabulary = c.vocabulary
    period = -1  # of the last event, while marking
    for ev in _in_order(events):
        if marks is not None and period_ms > 0:
            p = ev.ts_ms // period_ms
            if p != period:
                if period >= 0:  # the previous period's last event is behind: before this one's reviews
                    _mark(marks, period, st, out.review)
                period = p
        ts_s = ev.ts_ms // 1000
        if 0 < st.next_review_s < _ceil_s(ev.ts_ms) or st.flags & STAGE_HELD:  # mostly neither: skip the call
            _run_due_reviews(user_id, st, ev.ts_ms, model, out, c, turns)
        slot, role = vocabulary.lookup(ev.type)  # once: apply_looked_up is models.state.apply_event without it
        if role == IGNORE:  # not use (models.vocabulary): nothing but the reviews due before it, as above
            continue
        if role == SUBSCRIPTION:  # a billing statement, not usage (models.revenue keeps the rest)
            before = st.period_end_day
            apply_looked_up(st, ev, vocabulary, slot, role)  # only the end of the paid period (models.state)
            if st.period_end_day != before:
                # the exit gate moved (models.risk.exit_open): look now, as for the other roles
                # that are not activity, so a renewal that moves the period end out can close an
                # open at-risk as recovered and one that brings it in can open one
                out.review = None
                if st.n_events:
                    _review(user_id, st, ts_s, model, out, c)
            continue
        days = st.active_days  # a new active day (models.state: a visit dated by its first UTC day) is a review point
        cancelled = st.cancelled_s != 0 and is_cancelled(st)  # (rare: most users never cancel)
        apply_looked_up(st, ev, vocabulary, slot, role, c.peak_starts, c.peak_ends)
        # so is the event that ends a standing cancellation (activity on a later UTC day: the stage
        # rule's "back"), which a visit continued across midnight does without a new active day: the
        # user stayed churned until their next visit day (hypothesis, test_smart_reviews_miss_no_order_falling_due)
        new_day = st.active_days != days or (cancelled and not is_cancelled(st))
        out.review = None  # the state moved on since the last review (if this event is one, it sets it again)
        # While an at-risk alert is open every event is a review point: activity later the same
        # day can bring the risk under risk_exit, and silence never would (models.risk).
        if new_day or st.at_risk_since_s or role != ACTIVITY:
            # a review at the user's latest event, a negative one: its reasons date it ("downgraded today")
            was_open = st.at_risk_since_s != 0
            _review(user_id, st, ts_s, model, out, c, ev.type if role == NEGATIVE and st.last_seen_s == ts_s else "")
            if role == CANCEL_REQUEST and was_open and st.at_risk_since_s:
                _tell_request(user_id, st, ts_s, model, out, c)
    if marks is not None and period >= 0:
        _mark(marks, period, st, out.review)
    _run_due_reviews(user_id, st, until_ms, model, out, c, turns)
    out.expire = _expired(st, until_ms // 1000, model)
    return out


def _mark(marks: list[Mark], period: int, st: UserState, review: Assessment | None) -> None:
    """Append the :data:`Mark` of ``period`` (a copy: ``st`` goes on), or replace the last if it
    is of the same period."""
    mark = (period, st.copy(), review)
    if marks and marks[-1][0] == period:
        marks[-1] = mark
    else:
        marks.append(mark)




def _in_order(events: Iterable[Event]) -> list[Event]:
    """``sorted(events, key=EVENT_ORDER)``, without the sort when the events already are in that
    order (a partition's events of one user mostly are, and most calls carry one or two): the
    sort builds a key tuple (and a long int) per event even for one event, the check compares
    in place; equal keys keep their order either way (the sort is stable). The previous event's
    key is held in locals of its own types: read through an ``Event | None``, each time was
    boxed and compared generically in the compiled core (~0.8k instructions an event)."""
    evs: list[Event] = events if isinstance(events, list) else list(events)
    if not evs:
        return evs
    prev_ts, prev_id = evs[0].ts_ms, evs[0].event_id
    for ev in evs:
        ts = ev.ts_ms
        if ts < prev_ts or ts == prev_ts and ev.event_id < prev_id:
            return sorted(evs, key=EVENT_ORDER)
        prev_ts, prev_id = ts, ev.event_id
    return evs


def _ceil_s(ms: int) -> int:
    """The first whole second at or after ``ms``: ``s * 1000 < ms`` <=> ``s < _ceil_s(ms)``.

    Why not ``s * 1000``: mypyc multiplies two ints inline only while both are under 2**30; an
    epoch second is over, so the product took Python's long arithmetic, two objects made and
    freed per comparison (the profile's CPyTagged_Multiply_ and part of its Py_DECREF); floor
    division has no such limit.

    >>> [_ceil_s(ms) for ms in (-1000, -1, 0, 1, 999, 1000, 1001)]
    [-1, 0, 0, 1, 1, 1, 2]
    """
    return (ms + 999) // 1000


def _ms(s: int) -> int:
    """``s * 1000``: an event second's milliseconds (an alert's time), multiplied as a native
    64-bit int in the compiled core. Why: mypyc multiplies two ints inline only while both are
    under 2**30 (:func:`_ceil_s`), so an epoch second's product took Python's long arithmetic,
    ~0.8k instructions with the objects made and freed, once an alert (callgrind,
    docs/SCALING.md); any second of an event time is far inside 64 bits.

    >>> _ms(1_700_000_000), _ms(-1)
    (1700000000000, -1000)
    """
    x: i64 = s
    return x * 1000


def review_due_s(st: UserState) -> int:
    """The event second at which ``advance`` has something to do for ``st`` without new events
    (0: nothing): its next review, or the end of the hold of a change to declining not told yet
    (:data:`STAGE_HOLD_DAYS`), whichever comes first. The shell's due index holds this.

    Why not in ``next_review_s``: the hold's end is told apart from the review schedule, so
    that holding an alert moves no review, and with them no at-risk alert and no state field
    (the crossing search depends on where a review starts it, models.engine._crossing)."""
    due = st.next_review_s
    held = _hold_ends_s(st)
    if held and (due <= 0 or held < due):
        return held
    return due


def _hold_ends_s(st: UserState) -> int:
    """The end of the hold of a change to declining not told yet, when the user is to be looked at
    then (0: not): while every event since has been through a review, the lifecycle's stage is
    the one a review would find, so the change is told right then (:func:`_tell_held`). After
    visits that were no review (only a day's first visit is one, :func:`advance`), the stage may
    be out of date: the hold then ends at the next review that still finds the user declining
    (:func:`_review`), so that looking at the user adds no review (the reviews' times are in the
    state and where the at-risk crossing search starts, :func:`_crossing`)."""
    if st.flags & STAGE_HELD and st.stage == _DECLINING and st.last_seen_s <= st.last_review_s:
        return st.stage_since_s + _STAGE_HOLD_S
    return 0


def _run_due_reviews(user_id: str, st: UserState, before_ms: int, model: ChurnModel, out: Outcome,
                     c: CompiledModel, turns: list[Turn] | None = None) -> None:
    # Bounded: each review moves next_review_s strictly forward, to the next threshold crossing
    # or at most review_interval later (see _next_review); a churned user is reviewed once more
    # at its expiry, then next_review_s = 0 and it costs nothing. A held change is told once
    # (its flag cleared), before a review due at the same second.
    before_s = _ceil_s(before_ms)  # next_review_s * 1000 < before_ms <=> next_review_s < before_s
    while st.n_events:
        due = st.next_review_s
        held = _hold_ends_s(st)
        if 0 < held < before_s and (due <= 0 or held <= due):
            _tell_held(user_id, st, held, model, out, c)
            continue
        if not 0 < due < before_s:
            break
        was = st.at_risk_since_s
        _review(user_id, st, due, model, out, c)
        if turns is not None and (was == 0) != (st.at_risk_since_s == 0) and not st.flags & ACCOUNT_MEMBER:
            why = out.alerts[-1].scores.reasons if st.at_risk_since_s else ()  # the at-risk alert is the review's last
            turns.append((user_id, due, st.copy(), why[0] if why else ""))


def _tell_held(user_id: str, st: UserState, now_s: int, model: ChurnModel, out: Outcome, c: CompiledModel) -> None:
    """At the end of the hold (``now_s``, :func:`_hold_ends_s`), tell the change from active to
    declining held since ``st.stage_since_s``: the user is still declining (every stage change
    before clears the hold, :func:`_review`). An alert of ``now_s`` with the scores then (its
    reasons those of a change to declining, models.reasons); nothing else of the state moves, the review schedule
    included. Should the lifecycle say otherwise at ``now_s`` (a late event, older than the last
    one, moved the counters without a review), this is a review instead: the stage changes now,
    the hold still set (a return to active is then told neither way)."""
    a = assess(st, now_s, model, c)
    if _STAGE_INDEX[a.stage] != st.stage:
        _review(user_id, st, now_s, model, out, c)
        return
    st.flags &= ~STAGE_HELD
    scores = scores_from(st, a, model, "declining", 1 if st.at_risk_since_s else 0, c)
    now_ms = _ms(now_s)
    out.alerts.append(Alert(alert_id(user_id, "stage_changed", a.stage, now_ms), "stage_changed", user_id, now_ms, scores,
                            STAGES[_ACTIVE], st.revenue, st.flags & ACCOUNT_MEMBER != 0))


def _review(user_id: str, st: UserState, now_s: int, model: ChurnModel, out: Outcome, c: CompiledModel,
            latest: str = "") -> None:
    # Decide on alerts from the cheap assessment; build the full scores (health, reasons, ...)
    # only when an alert carries them, from the state as it was before this review changed it.
    # The compiled model ``c`` (advance's), handed down: ``model.compiled`` is a generic attribute
    # lookup of the (Python) ChurnModel, ~160 instructions, once per function that read it before.
    a = assess(st, now_s, model, c)
    new_stage = _STAGE_INDEX[a.stage]  # STAGES.index(a.stage) (a method call: a generic one in the compiled core)
    stage_changed = new_stage != st.stage or st.stage_since_s == 0
    previous: Stage | None = STAGES[st.stage] if st.stage_since_s else None
    # A change from active to declining is held (STAGE_HOLD_DAYS; told at its end by _tell_held,
    # or by the first review past it that still finds the user declining). The next change while
    # it is held ends the hold: back to active, told neither; anything else, told as a change
    # from active, the stage the CRM was last told.
    tell = stage_changed and previous is not None
    hold = False
    if st.flags & STAGE_HELD and st.stage != _DECLINING:
        st.flags &= ~STAGE_HELD  # stale: set only in declining (a record an older worker moved on)
    if st.flags & STAGE_HELD:
        if stage_changed or now_s >= st.stage_since_s + _STAGE_HOLD_S:
            st.flags &= ~STAGE_HELD
            previous = STAGES[_ACTIVE]
            tell = new_stage != _ACTIVE
    elif tell and st.stage == _ACTIVE and new_stage == _DECLINING:
        hold = True
        tell = False
    # a machine user (the model's [users] machine, QA23b F2) gets none: its silence is its account's usage falling
    opens = st.at_risk_since_s == 0 and _may_open(st, a, now_s, model, c) and not machine_user(user_id, model.machine_users)
    closes = not opens and st.at_risk_since_s != 0 and _may_close(st, a, now_s, model, c)
    # Each alert's reasons support what it announces (models.reasons): the risk for at-risk and
    # a stage for the worse, the recovery for recovered and a stage for the better; and no
    # "recovered" carries a stage for the worse (_may_close).
    # of a stage change: a.stage in IMPROVED; to declining, with the lifecycle's cause first
    told: Purpose = "recovered" if _IMPROVED_BITS >> new_stage & 1 else "declining" if new_stage == _DECLINING else "at_risk"
    purpose: Purpose = "at_risk" if opens else "recovered" if closes else told
    # Every alert of this review tells the action for the user as this review leaves them, as
    # `churnwatch score`, `top` and the console read it (models.actions): at risk while the
    # at-risk alert is open after it; but a recovered alert, which closes the case: "none"
    # (_closing). Not from the purpose: a stage for the better while the
    # alert stays open is told as a recovery, yet the user is still at risk (QA 2026-12).
    open_after = 1 if opens or (st.at_risk_since_s != 0 and not closes) else 0
    scores = None
    if tell or opens or closes:
        scores = scores_from(st, a, model, purpose, open_after, c, latest)
    now_ms = _ms(now_s) if scores is not None else 0  # for the alerts only
    change = None  # the stage change's scores, also from the state before this review moved it
    if tell and scores is not None:
        change = scores if told == purpose else scores_from(st, a, model, told, open_after, c, latest)
    if stage_changed:
        st.stage = new_stage
        st.stage_since_s = now_s
        if hold:
            st.flags |= STAGE_HELD
    if change is not None:
        out.alerts.append(
            Alert(alert_id(user_id, "stage_changed", a.stage, now_ms), "stage_changed", user_id, now_ms, change, previous,
                  st.revenue, st.flags & ACCOUNT_MEMBER != 0)
        )
    if opens and scores is not None:
        st.at_risk_since_s = now_s
        st.alert_risk = f32(a.risk)
        out.alerts.append(Alert(alert_id(user_id, "at_risk", "", now_ms), "at_risk", user_id, now_ms, scores, None,
                                st.revenue, st.flags & ACCOUNT_MEMBER != 0))
    elif closes and scores is not None:
        st.at_risk_since_s = 0
        st.quiet_until_s = now_s + int(c.quiet_days * DAY_S)
        out.alerts.append(Alert(alert_id(user_id, "recovered", "", now_ms), "recovered", user_id, now_ms, _closing(scores), None,
                                st.revenue, st.flags & ACCOUNT_MEMBER != 0))
    st.last_review_s = now_s
    st.next_review_s = _next_review(st, now_s, model, a, c)
    out.review = a


def _tell_request(user_id: str, st: UserState, now_s: int, model: ChurnModel, out: Outcome, c: CompiledModel) -> None:
    """A cancellation scheduled at the period end while the user's at-risk alert is already open
    (opened on their silence, say): an ``at_risk`` alert of its own id at the request, an update
    of the open case ("asked to cancel; paid through ..." first, action ``check_in``), not a new
    case: one ``recovered`` or the churn closes it. Without it the CRM's case kept its old reason
    (QA23a: 71 of 183 requesters had an at-risk alert open when they asked)."""
    a = out.review
    if a is None or not a.signals.cancel_at_s:
        return
    now_ms = _ms(now_s)
    scores = scores_from(st, a, model, "at_risk", 1, c)
    out.alerts.append(Alert(alert_id(user_id, "at_risk", "cancel_request", now_ms), "at_risk", user_id, now_ms, scores, None,
                            st.revenue, st.flags & ACCOUNT_MEMBER != 0))


def _closing(s: Scores) -> Scores:
    """The scores a ``recovered`` alert carries: the review's, with the action ``none``. The alert
    closes the case, and a CRM closes it on that kind, as it does on ``account_recovered`` (whose
    action is ``none`` too): the quadrant's action beside it told it to call back the user it had
    just closed (QA20a F7: 142 of 733 recovered alerts of a B2B file said ``check_in`` or
    ``educate``, "activity back at the user's usual level" among their reasons). A copy: the
    stage change of the same review may carry the same scores, and it, like ``score``, ``top``
    and the console, tells the user's own action (models.actions), which this leaves as it is."""
    return Scores(s.health, s.temperature, s.risk, s.stage, s.segment, "none", s.reasons, s.signals)


#: Stages in which an at-risk alert may open: models.lifecycle.JUDGED, the reachable ones (who
#: can still be saved; dormant and churned users are the win-back list, ``churnwatch top
#: --win-back``, not a stream of alerts) but "reactivated", the user's
#: first ``new_days`` back from churned (models.lifecycle rule 3). Why not then: the review at a
#: return scores a user just out of a long silence (decayed counts near zero, an order overdue
#: by months), so the risk is at its highest on the very events that say the user came back, and
#: stays there until they order: QA12 F3, a shop's gift buyers back for the season got 209
#: at-risk alerts at their return, each followed by a purchase within 14 days; held a day only,
#: 219 of 219 came a day later, followed by a purchase all the same (docs/SCORES.md, "No at-risk
#: alert while a user is just back"). A CRM told "at risk" about a customer who just came back is
#: told the opposite of what happened. The alert may open at the review that ends the stage
#: (models.lifecycle.next_change_s schedules it) if the risk still says so; a user who leaves
#: again first is dormant, the win-back list. An alert already open stays open (the closing rule),
#: off the save list until the stage ends as well (models.ranking).
_OPENS: Final[frozenset[str]] = JUDGED
#: Stages in which an open at-risk alert may close as "recovered" (models.lifecycle.RECOVERABLE).
_RECOVERABLE: Final[frozenset[str]] = RECOVERABLE
#: The longest pause the recovery's look ahead asks the risk to hold through (:func:`_came_back`):
#: the user's usual interval between active days, at most a week. A week is what the latest few
#: events weigh in the 7-day counters a dip comes from; a buyer who orders every 42 days and
#: nothing between is above the exit line at every due time (the re-order rule is for them,
#: models.signals.reorder_late), so a look that long would never let their alert close.
_PAUSE_MAX_DAYS: Final[float] = 7.0
#: No at-risk alert on a user's first day: one burst of events says nothing yet.
_MIN_AGE_DAYS: Final[float] = 1.0


def alert_may_open(a: Assessment, now_s: int, c: CompiledModel) -> bool:
    """Whether the user assessed in ``a`` at ``now_s`` is one an at-risk alert may open for,
    whatever the risk and the thresholds: in a stage an alert opens in (:data:`_OPENS`: not
    dormant or churned, those are the win-back list, nor just back from churned), at least a day
    old, and not a repeat buyer whose next order is not due yet
    (models.signals.order_due_s), nor, for a buyer with a re-order rhythm, late yet
    (models.signals.reorder_late_s: the order rhythm carries their relationship, and at their due
    time a customer still buying at their rate is silent that long 37% of the time, e^-1; QA12's
    regulars, 8% jitter, got 658 at-risk alerts at their due time, 652 followed by the order),
    nor a new customer who has not missed their first return yet by the population's usual
    interval (models.signals.first_return_due_s: a one-order buyer at the interval between
    orders, a user active on a single day at the product's first-return interval, ``c``'s
    ``first_return_days``; QA17 F2, 68% of a shop's new customers were alerted the day after
    their first order; QA19 F8, 531 customers of a neobank who stay were alerted 1.6 days after
    their first day), nor a subscriber whose pause runs (models.signals.paused_until_s: its
    silence is the pause, QA22a F1; nothing opens before the pause's end), nor a trial cancelled
    without paying (models.signals.trial_lost: a lead that said no, not a customer to save, as
    its account gets no alert, stage ``trial_lost``; QA23a F1, 100 "onboard" alerts a median
    1.1 days after the trial's cancellation).
    Everything here is known to the stream at ``now_s``.

    Why public: ``churnwatch train`` chooses ``risk_enter`` as a quantile of the risk over the
    rows an alert could go to, and judges its alert line on them (streams.offline.train); it asks
    this function, so the training rows and the stream cannot disagree on who is alertable (QA10
    F2: a line chosen over every row, the lapsed included, flagged nobody the stream alerts)."""
    return (a.stage in _OPENS and a.signals.age_days >= _MIN_AGE_DAYS and order_due_s(a.signals) <= now_s
            and reorder_late_s(a.signals) <= now_s and first_return_due_s(a.signals, c.first_return_days) <= now_s
            and a.signals.paused_until_s <= now_s and not a.signals.trial_lost)


def _may_open(st: UserState, a: Assessment, now_s: int, model: ChurnModel, c: CompiledModel | None = None) -> bool:
    """At-risk opens for a user it may open for (:func:`alert_may_open`) whose risk reached
    ``risk_enter``, or who is a repeat buyer late on their re-order (models.signals.reorder_late:
    QA12 F2, the shop's save alert, whatever the risk); an open one stays open while the user
    lapses (the console's win-back list reads it), and, within the quiet period after the last
    at-risk closed, only on a material rise above the risk it had opened at (no flapping).
    A paying customer's standing grievance (models.signals.grievance_stands: QA17 F8, a
    complaint or a refund asked for) opens it whatever the risk, at the grievance itself (an
    event that is not plain activity is a review, :func:`advance`), in any stage an alert opens
    in: neither the order rhythm nor the first day holds it back, a complaint is news whenever
    it comes. Within the quiet period after an at-risk closed it waits for its end, where
    :func:`_next_review` looks again (the risk's own rules may open it sooner, as for anyone).
    A recurring event late (models.signals.credit_late: a salary that has not come, QA19 F1)
    opens it whatever the risk too, as a re-order late does, in the same stages and after the
    same quiet period. A cancellation scheduled at the end of the paid period (a cancel request,
    models.signals ``cancel_at_s``: QA23a F5) opens it at the request, whatever the risk, the
    rhythms and the quiet period, in any stage an alert opens in: the user told us they leave, and
    the paid days left are the time a save offer has; the risk stays 1 until the period ends (it
    never closes as recovered meanwhile), and the user churns then unless a renewal withdraws it.
    A paying subscriber's risk opens it only once their silence is past their own rhythm, or if
    the risk was at the line at their last activity already (:func:`subscriber_return_due_s`).
    """
    if c is None:
        c = model.compiled
    if a.signals.cancel_at_s and a.stage in _OPENS:
        return True  # a cancellation scheduled at the period end: the save is now (QA23a F5)
    if (st.flags & GRIEVANCE and now_s >= st.quiet_until_s and a.stage in _OPENS
            and grievance_stands(st, a.signals, c.horizon_days)):
        return True
    if (a.risk < c.risk_enter and not reorder_late(a.signals) and not credit_late(st, now_s)) or not alert_may_open(a, now_s, c):
        return False
    if not reorder_late(a.signals) and not credit_late(st, now_s) and subscriber_return_due_s(st, a, now_s, model, c) > now_s:
        return False  # a subscriber's silence their own rhythm explains: not yet
    return now_s >= st.quiet_until_s or a.risk >= st.alert_risk + c.material_rise


def subscriber_return_due_s(st: UserState, a: Assessment, now_s: int, model: ChurnModel, c: CompiledModel) -> int:
    """For a paying subscriber (a paid period runs: models.signals.paid_period_runs) whose risk was
    under ``risk_enter`` at their last activity, the second their silence reaches their usual
    interval between active days (models.signals.visit_gap_days: they have missed a return), or
    the paid period passes unrenewed if that is sooner; 0 for anyone else and once passed. The
    risk does not open an at-risk alert before it (:func:`_may_open`; the engine reviews then,
    :func:`_next_review_by_risk`).

    Why: a subscriber can leave only at the end of the period paid for (Fader & Hardie 2007, the
    exit gate's source; :func:`renewal_pending`), so an alert held until they have actually
    missed a return costs no lead before that end, while a risk that crossed the line in the
    hours of silence their own rhythm explains (a daily user's night) is taken back by their
    next visit: noise to the account manager. A risk already at the line at their last activity
    (their use itself says so: a new subscriber's first days) is not held, nor one the renewal
    raised by coming within the horizon since their last activity (models.risk.exit_opens_s: the
    contract's exit opening, an annual subscriber's alert at that second). Not for users without
    a paid period: for them the silence may already be the leaving (simulate-mix's quitters
    were alerted in such silence before their last visit: docs/SCORES.md, "A subscriber's case
    closes at the renewal", where the rule for everybody cost that population's recall).
    Fixed while the user is silent (their state does not move, the period end neither), so the
    review schedule finds the opening exactly, as for models.signals.first_return_due_s."""
    sig = a.signals
    if not paid_period_runs(sig) or exit_opens_s(sig.period_end_s, c.horizon_days) > st.last_seen_s:
        return 0  # no paid period; or the renewal came within the horizon since: the contract's exit, not their silence
    due = st.last_seen_s + int(math.ceil(sig.visit_gap_days * DAY_S))
    passes = paid_period_passes_s(sig)
    if passes < due:
        due = passes
    if due <= now_s or risk_at(st, st.last_seen_s, model) >= c.risk_enter:
        return 0
    return due


def _may_close(st: UserState, a: Assessment, now_s: int, model: ChurnModel, c: CompiledModel | None = None) -> bool:
    """An open at-risk closes once the risk is back at ``risk_exit`` and the lifecycle no longer
    says the user is declining (nor dormant, nor churned: :data:`_RECOVERABLE`), unless only a
    closed exit holds the risk there and the exit opens again within the quiet period at a risk
    above ``risk_exit`` (models.risk.exit_opens_s; in silence, the most it can be then): a monthly
    subscriber's renewal pushes the period end just past the horizon, for a day or two, and a
    "recovered" that the same renewal's reopening would take back is a flap, not a recovery
    (measured on simulated monthly subscribers: docs/SCORES.md, "Renewal: the exit
    opportunity").

    Why the stage: a "recovered" alert carries the stage, and "recovered" next to "declining"
    contradicts itself to a CRM user (QA 2026-12): the risk can fall under ``risk_exit`` on a
    return while the 7-day rate is still short of the lifecycle's way out of declining (its
    hysteresis, models.lifecycle rule 5). The alert then stays open, and closes at the review that
    sees the user out of declining with the risk still at ``risk_exit``: an event (silence only
    lowers the 7-day rate), and while an alert is open every event is a review (:func:`advance`).
    The risk in silence never falls and the stage in silence never leaves declining, so this
    never becomes true in silence (docs/SCORES.md, "Recovered only outside declining").
    Nor while the user is late on a re-order (models.signals.reorder_late, which opens the alert
    whatever the risk): a visit is no order; the next order ends it; nor while a recurring event
    is late (models.signals.credit_late): a visit is no salary, the next credit ends it. Nor while a paying
    customer's grievance stands (models.signals.grievance_stands): the next order ends it, or
    a visit once it has faded (the horizon after it) while no order is overdue
    (models.signals.order_overdue: a customer who complained and stopped buying is not
    "recovered" by opening the app, and the re-order rule would re-open it days later, a flap);
    never the fading alone, in silence. A model whose risk may fall
    in silence (a fit with free signs, models.compiled ``silence_monotone``) closes only at the
    user's own activity: "recovered" because the user stayed away is no recovery
    (docs/SCORES.md, "The sign bounds"). Nor, for the same reason, while the product's declared
    quiet period holds a silent user (models.signals.calendar_hold_s): the hold lowers the risk at
    the period's first second, with no event, and a "recovered" then would be the calendar's, not
    the user's (an open case stays open through the period and closes at their own activity;
    tests/test_models_calendar found the engine's review schedule missing that close).

    Nor before the user's own activity is back at their usual level, over the last week and the
    last 4 weeks alike (models.lifecycle.back_share, at least RETURN_SHARE of their 3-month rate):
    what a recovery means to the CRM that closes the case on it. QA19 F6: a bank's customers
    moving their money out dipped under ``risk_exit`` on a bill paid or a week of app visits and
    were "recovered" 63 times (of 360) between their first at-risk alert and the closure of the
    account (docs/SCORES.md, "Recovered: back at their own level"). Both rates fall in silence,
    so this too never becomes true without an event. And not on a dip: the risk must still be at
    ``risk_exit`` after the user's usual interval between active days in silence (the look ahead
    the crossing search makes, models.scoring.SilentRisk), else a pause as long as any of theirs
    would take it back over the line: on the same bank this alone halved the flap rate (4.6% ->
    1.9% of at-risk alerts within 14 days of a "recovered"). The look ahead only grows in silence
    (the risk never falls in it), so it holds back no close a later silent moment would make.

    Nor, for a paying subscriber, before the renewal that was pending when the alert opened
    (:func:`renewal_pending`): the renewal settles a subscriber's case, not a few days of use.
    """
    if c is None:
        c = model.compiled
    if a.risk > c.risk_exit or a.stage not in _RECOVERABLE or reorder_late(a.signals) or credit_late(st, now_s):
        return False
    if st.flags & GRIEVANCE and (a.signals.silence_days > 0.0 or order_overdue(a.signals)
                                 or grievance_stands(st, a.signals, c.horizon_days)):
        return False  # a visit is no answer to a complaint: the next order is (models.state GRIEVANCE)
    if not c.silence_monotone and a.signals.silence_days > 0.0:
        return False  # a fit with free signs: its risk may fall in silence, and silence is no recovery
    if c.calendar_starts and a.signals.silence_days > 0.0 and calendar_hold_s(
            c.calendar_starts, c.calendar_ends, st.first_seen_s, st.last_seen_s, now_s, a.signals.visit_gap_days) > now_s:
        return False  # the product's quiet period began in the user's silence: staying away in it is no recovery
    if not _came_back(a, now_s, model, c):
        return False
    if renewal_pending(st, a.signals, c.horizon_days):
        return False  # a subscriber's case waits for the renewal it was opened before
    gate = exit_opens_s(a.signals.period_end_s, c.horizon_days)
    if now_s < gate <= now_s + int(c.quiet_days * DAY_S):
        return SilentRisk(a, model, c).at(gate) <= c.risk_exit
    return True


def renewal_pending(st: UserState, sig: Signals, horizon_days: float) -> bool:
    """Whether the open at-risk alert of a paying subscriber (a paid period runs:
    models.signals.paid_period_runs) still awaits the renewal that was pending when it opened:
    the paid period's end is within the model's horizon of the alert's opening, so no renewal
    has been stated since. Until then :func:`_may_close` sends no "recovered".

    Why: a subscriber can leave only at the end of the period they paid for (the contractual
    setting of the retention literature: Fader & Hardie, "How to project customer retention",
    Journal of Interactive Marketing 21(1), 2007; the risk's exit gate, models.risk.exit_open,
    rests on it), so the question an at-risk alert puts to the account manager ("will they
    renew?") is answered by the renewal, not by a few active days before it. Closing earlier
    told the CRM the case was over while the decision it was about was still to come: on
    fightchurn's subscription populations most "recovered" alerts came 3-14 days after a new
    subscriber's first-days alert, before their first renewal, and the churners among them left
    at it uncovered (docs/SCORES.md, "A subscriber's case closes at the renewal").
    The renewal statement is a review while an alert is open (every event is), so the alert
    closes at it, or at the first activity after it that finds the user back (the other tests
    of :func:`_may_close`); a period that ends unrenewed ends the wait (the paid period no longer
    runs: the lifecycle judges the lapse). Users without a statement (shops, apps without
    billing data) and a plan whose period ends beyond the horizon of the opening (an annual
    subscriber alerted mid-year: the exit gate holds their leave part at 0 until the renewal
    nears) are unchanged. Event time only: the period end is the state's, the opening the
    alert's own second."""
    return paid_period_runs(sig) and sig.period_end_s <= st.at_risk_since_s + int(horizon_days * DAY_S)


def _came_back(a: Assessment, now_s: int, model: ChurnModel, c: CompiledModel) -> bool:
    """Whether the user assessed in ``a`` has come back (:func:`_may_close`, QA19 F6): their own
    activity back at their usual level (models.lifecycle.back_share at RETURN_SHARE or more) and
    the risk still at ``risk_exit`` after their usual interval between active days in silence, at
    most a week (:data:`_PAUSE_MAX_DAYS`): not a dip on a few events. A repeat buyer's order is
    their return itself (models.signals.reorder_late: "the next order ends it"), with no look
    ahead: the visit rhythm's risk of a customer who buys every six weeks is over the line within
    days of any order."""
    sig = a.signals
    if back_share(sig) < RETURN_SHARE:
        return False
    if sig.purchase_x >= 1 and sig.purchase_silence_days <= 0.0:
        return True  # a repeat buyer's order, now: their return (the order rhythm carries them, QA12 F2)
    pause = sig.visit_gap_days if sig.visit_gap_days < _PAUSE_MAX_DAYS else _PAUSE_MAX_DAYS
    return SilentRisk(a, model, c).at(now_s + int(pause * DAY_S)) <= c.risk_exit


def _next_review(st: UserState, now_s: int, model: ChurnModel, a: Assessment, c: CompiledModel | None = None) -> int:
    """When to look again with no new events (:func:`_next_review_by_risk`), or earlier, at the
    second a repeat buyer becomes late on their re-order (models.signals.reorder_late_opens_s) or a
    recurring event becomes late (models.signals.credit_late_at_s), which
    opens an at-risk alert whatever the risk (or, for a standing grievance held back by the quiet
    period, at its end): no sooner than the user may have one (a day old,
    past the quiet period, past the "reactivated" stage), and only while none is open and the
    stage is one an alert opens in (silence never brings a dormant or churned user back)."""
    if c is None:
        c = model.compiled
    nxt = _next_review_by_risk(st, now_s, model, a, c)
    if st.at_risk_since_s != 0 or (a.stage not in _OPENS and a.stage != "reactivated"):
        return nxt
    if st.flags & GRIEVANCE and now_s < st.quiet_until_s < nxt and grievance_stands(st, a.signals, c.horizon_days):
        return st.quiet_until_s  # a grievance held back by the quiet period opens at its end (_may_open), if it still stands
    late = reorder_late_opens_s(a.signals)  # a paid period's end, for a subscriber whose add-on rhythm is late
    credit = credit_late_at_s(st)
    if credit > now_s and (late <= now_s or credit < late):
        late = credit
    if late <= now_s:
        return nxt
    if late < st.quiet_until_s:
        late = st.quiet_until_s
    if a.stage == "reactivated":
        back_until = st.stage_since_s + int(math.ceil(c.new_days * DAY_S))
        if late < back_until:
            late = back_until
    return late if late < nxt else nxt


def _next_review_by_risk(st: UserState, now_s: int, model: ChurnModel, a: Assessment, c: CompiledModel | None = None) -> int:
    """When to look again with no new events: the next moment an alert can be due, else the cap.

    Alerts change only at a stage change or when risk crosses ``risk_enter``; ``recovered``
    needs risk to fall, which silence never does (models.risk; a fit with free signs closes only
    at activity, :func:`_may_close`), and a stage other than declining,
    dormant or churned, which silence never brings back (models.signals: the trend only falls),
    so it waits for an event (or a subscription statement). The
    next stage change comes from models.lifecycle; the risk crossing before it is found by
    bisection to ``_RISK_TOLERANCE_S`` on models.scoring.risk_after (via SilentRisk; risk is non-decreasing in
    silence), after one cheap test that it can cross at all. ``review_interval_days`` caps the
    wait (a day for a fit with free signs, whose risk may fall in silence: no crossing search,
    the at-risk crossing found within a day). A repeat buyer whose next order is not due yet cannot open an alert before it is
    (models.signals.order_due_s), nor a new customer before they have missed their first return
    (models.signals.first_return_due_s): the search then starts at that second; so for a user just back from
    churned, at the end of the "reactivated" stage (:data:`_OPENS`). A known renewal that opens
    the exit before the cap (models.risk.exit_opens_s) is a step of the risk: an alert due then
    is found at that very second. A churned user is looked at
    once more, when its state may expire, then never; before that at the end of a pause that holds
    the stage (models.lifecycle rule 0), where a visit made in the pause brings it back. A silent user thus costs a handful of
    reviews over its whole decline, not one per day.
    """
    if c is None:
        c = model.compiled
    if a.stage == "churned":
        expiry = st.stage_since_s + int(math.ceil(kept_days(st, c) * DAY_S))
        held = a.signals.paused_until_s  # a pause holds the stage (models.lifecycle rule 0): a return in it counts at its end
        if held >= MAX_PERIOD_END_DAY * DAY_S:
            held = 0  # a pause stating no resume date has no end to look at (year 2149: past the record's 32-bit seconds)
        if now_s < held and (held < expiry or expiry <= now_s):
            return held
        return expiry if expiry > now_s else 0
    cap = now_s + max(1, int(c.review_interval_days * DAY_S))
    if not c.silence_monotone and cap > now_s + _FREE_SIGNS_LOOK_S:
        cap = now_s + _FREE_SIGNS_LOOK_S  # risk may fall in silence: no bisection on it (below), a daily look
    nxt = next_change_s(st, a.signals, model, c=c)
    if nxt <= now_s or nxt > cap:
        nxt = cap
    if not c.silence_monotone:
        return nxt
    enter = c.risk_enter
    if st.at_risk_since_s == 0:
        old_enough_s = st.first_seen_s + int(_MIN_AGE_DAYS * DAY_S)
        if now_s < old_enough_s < nxt:
            nxt = old_enough_s  # at-risk may open from then on
        if now_s < st.quiet_until_s:  # within the quiet period only a material rise opens
            enter = max(enter, st.alert_risk + c.material_rise)
            if st.quiet_until_s < nxt:
                nxt = st.quiet_until_s  # then the plain threshold holds again: look then
        due = order_due_s(a.signals)
        late = reorder_late_s(a.signals)  # a buyer with a rhythm: nothing opens before late (alert_may_open)
        if late > due:
            due = late
        first = first_return_due_s(a.signals, c.first_return_days)  # a new customer: nothing opens before their first return is due
        if first > due:
            due = first
        held = subscriber_return_due_s(st, a, now_s, model, c)  # a subscriber within their rhythm (_may_open)
        if held > due:
            due = held
        if a.signals.paused_until_s > due:  # a pause that runs: nothing opens before its end (alert_may_open)
            due = a.signals.paused_until_s
        if a.stage == "reactivated":  # nothing opens before the stage ends (_OPENS)
            back_until = st.stage_since_s + int(math.ceil(c.new_days * DAY_S))
            if back_until > due:
                due = back_until
        if due > now_s:  # a repeat buyer on schedule, or just back: nothing opens before `due`
            if due >= nxt:
                return nxt
            look = SilentRisk(a, model, c)  # its .at called directly (a bound method is a generic call)
            r_due = look.at(due)
            if r_due >= enter:
                return due
            lo, r_lo = due, r_due
        elif a.risk < enter:
            look = SilentRisk(a, model, c)  # its .at called directly (a bound method is a generic call)
            lo, r_lo = now_s, a.risk
        else:
            return nxt
        # A known renewal opens the exit at `gate` (models.risk.exit_opens_s): the risk steps up
        # there. The crossing is at the step itself when the risk reaches the threshold then,
        # and _crossing on (lo, gate] finds exactly `gate` (no earlier second reaches it);
        # otherwise the search goes on from the open gate.
        gate = exit_opens_s(a.signals.period_end_s, c.horizon_days)
        if lo < gate < nxt:
            r_gate = look.at(gate)
            if r_gate >= enter:
                return _crossing(look, enter, lo, r_lo, gate, r_gate)
            lo, r_lo = gate, r_gate
        r_cap = look.at(nxt)
        if r_cap >= enter:
            nxt = _crossing(look, enter, lo, r_lo, nxt, r_cap)
    return nxt


def _crossing(look: SilentRisk, enter: float, lo: int, r_lo: float, hi: int, r_hi: float) -> int:
    """The ``hi`` of the bisection ``lo, hi = (lo + hi) // 2 ...`` on ``look.at(t) >= enter``
    down to ``_RISK_TOLERANCE_S`` (risk(lo) < enter <= risk(hi)), with fewer evaluations.

    The bisection's answer depends only on the test at its midpoints, and the test is monotonic
    in t (risk never falls in silence, models.risk). So a bracket ``a < crossing <= b`` found
    cheaply answers every midpoint outside it for free: the search first closes in on the
    crossing by secant steps (the risk curve is smooth: they land within seconds after two or
    three tries), probes ``_PROBE_S`` on the other side of the last guess, then replays the
    bisection, evaluating only midpoints that fall inside the bracket. Same midpoints, same
    answers, same result (tests/test_models_golden.py checks it against the plain bisection):
    about 6 evaluations instead of about 15 on simulated users.
    """
    a, b = lo, hi  # risk(a) < enter <= risk(b)
    x0, r0, x1, r1 = lo, r_lo, hi, r_hi  # the last two points: secant steps
    for _ in range(_INTERPOLATIONS):
        if b - a <= _PROBE_S:
            break
        rise, run = r1 - r0, x1 - x0
        if rise * run > 0.0:  # a secant step, kept strictly inside the bracket (inf-safe)
            f = x1 + (enter - r1) * run / rise
            g = a + 1 if f < a + 1 else b - 1 if f > b - 1 else int(f)
        else:
            g = (a + b) // 2
        step = abs(g - x1)
        rg = look.at(g)
        if rg >= enter:
            b = g
        else:
            a = g
        x0, r0, x1, r1 = x1, r1, g, rg
        if step <= _PROBE_S:  # converged to within a probe: test the other side of the guess
            g = g - _PROBE_S if rg >= enter else g + _PROBE_S
            if a < g < b:
                if look.at(g) >= enter:
                    b = g
                else:
                    a = g
            break
    while hi - lo > _RISK_TOLERANCE_S:
        mid = (lo + hi) // 2
        if mid >= b:
            hi = mid
        elif mid <= a:
            lo = mid
        elif look.at(mid) >= enter:
            hi = b = mid
        else:
            lo = a = mid
    return hi


def kept_days(st: UserState, c: CompiledModel) -> float:
    """How many days after its churn was reported a churned user's state is kept, then dropped
    (a user back after that is first seen again: a new user, their history gone). A customer (a
    purchase on record) is kept ``customer_retention_days``, others ``retention_days``; both are
    180 days by default (models.model). QA17 F1's annual gift buyers (an order each December, the
    next in November) were dropped 180 days after turning churned, came back "new" with last
    year's spend gone and got a day-one at-risk alert (224 of 224); a shop with yearly buyers
    keeps its customers past a year (``train --retention 400d``), so they come back
    "reactivated". Not 400 by default: kept, a one-time buyer of long ago ranks above customers
    silent for less (models.model). A user who never bought is cheaper to forget (a state of ~300
    bytes of Redis each: docs/SCALING.md)."""
    return c.customer_retention_days if st.n_purchases else c.retention_days


def _expired(st: UserState, now_s: int, model: ChurnModel) -> bool:
    if STAGES[st.stage] != "churned" or st.stage_since_s == 0:
        return False
    return now_s - st.stage_since_s >= kept_days(st, model.compiled) * DAY_S
