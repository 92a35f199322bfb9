"""Per-user state: a few numbers that summarise a whole history, updated in O(1) per event.

Why decayed counters and not day buckets: 90 day-buckets cost ~1.1 kB per user in Redis and
fall off the listpack cliff at 128 entries (measured: benchmarks/memory.py); a counter that
decays with mean life tau carries the same meaning as "events in the last tau days" in 4 bytes.

Every counter is kept *at* ``last_seen_s`` (the user's largest event time), so applying the
same events in any order gives the same numbers (up to float rounding): an event later than
``last_seen_s`` decays the counters forward and adds 1, an earlier one adds ``exp(-age/tau)``.
The day counts are exact in event order, which is how ``models.engine.advance`` applies a batch
(so the order of a batch's events does not matter); a late event of an earlier batch counts a
day only where the state can tell the day is new. ``active_days`` counts visit days: a visit (a
session, events at most :data:`SESSION_S` = 30 minutes apart) is dated by the UTC day it started
on, so a session across midnight UTC is one active day, as the same session at noon is (QA pass
10 F10; :func:`_count_visit_day`, with one bit of ``flags``, :data:`VISIT_CONTINUED`). A late
event (before ``last_seen_s``) counts no active day and continues no visit. ``n_purchases``
counts distinct UTC days with a purchase (:func:`_count_day`).
Times are whole epoch seconds (uint32 in Redis) to keep the record small; events carry ms.

The counters are float32 *in memory too* (every update is rounded to the nearest float32, the
per-type ones are kept as the record's own float32 bytes, ``UserState.slot_counts``): the record
then round-trips exactly, so a state that went through Redis between two batches is bit for bit
the state the backtest keeps in memory.
Per type (models.vocabulary: the product's tracked names, or hashed kinds) the state keeps a
7-day and a 4-week counter: 8 bytes a type. Negative feedback (the ``negative`` role) has a
4-week counter of its own, kept with the per-type ones (the risk reads its 4-week share), and a
16-bit mask of which of the role's names the user used while that counter was alive (for the
reasons' wording): 93 bytes + 8 per type, 157 bytes with 8 types (6 more than before the role:
Redis holds about 297 bytes per user with 8 types, 292 before, benchmarks/memory.py, against a
budget of 300).

The end of the paid period (``period_end_day``: the day number since the epoch of the latest
``subscription`` statement's ``period_end``, rounded up to a whole day, 0 = unknown) is 2 more
bytes, written only when known: a record without it is format 4, byte for byte as before (the
golden state digests and the memory of products without subscriptions do not move), one with it
format 5 (format 4 + a uint16: 95 bytes + 8 per slot, 159 with 8 slots; Redis 298 bytes per
user with 8 types when every user has one, against 297 without, 1M users, benchmarks/memory.py:
the user hashes +2 bytes a user, within the budget of 300). Only an ``active`` statement sets it,
to the later of the known end and the stated one, so a late renewal statement cannot move it
back (``_state_period_end``); ``cancelled``, ``past_due``, ``trial`` and a free plan (MRR 0) set it to unknown.

A cancellation scheduled at the end of the paid period (a ``cancel_request`` event while the user
pays for a period that ends after it: models.vocabulary, QA23a F5) is ``cancelled_s`` dated at
that end, the very midnight ``period_end_day`` keeps: no byte, no flag more
(:func:`scheduled_cancel_s` tells it from a cancellation at once; :func:`_state_period_end`
withdraws it at a renewal past that end and makes it take effect at a statement that ends the
paid period before).

Flags (``flags``, one bit each: :data:`PAYS_SUBSCRIPTION` (1), :data:`ACCOUNT_MEMBER` (2),
:data:`VISIT_CONTINUED` (4), :data:`STAGE_HELD` (8), :data:`LONG_PERIOD` (16), :data:`GRIEVANCE` (32),
:data:`GRIEVANCE_LATEST` (64), :data:`TRIAL` (256), :data:`TRIAL_LOST` (512) and
:data:`EVER_PAID` (1024)) keep what the counters cannot say:

- :data:`PAYS_SUBSCRIPTION`: the user's latest ``subscription`` statement pays (``active`` or
  ``past_due`` with an MRR above 0; :func:`_state_period_end`), and :data:`ACCOUNT_MEMBER`: the
  user's events name a company account (an ``account_id`` that is not the user's own; kept for
  good). What the recommended action needs of the user's billing (models.actions, QA pass 6 M1: a
  subscriber was "not paying" because only purchases counted; a member's company pays, or not,
  as its account: models.account_health).
- :data:`VISIT_CONTINUED`: the user's latest visit went on past midnight UTC (an event within
  :data:`SESSION_S` of the one before, on a later UTC day), so the UTC day of ``last_seen_s`` is
  not an active day yet: the visit is dated by the day it started on. Set by such an event,
  cleared by the user's next visit (one going on past a second midnight counts the day it covered
  whole and stays continued; :func:`_count_visit_day`).
- :data:`STAGE_HELD`: the user's change from active to declining has not been told yet: its
  ``stage_changed`` alert waits until the user has been declining for models.engine's
  STAGE_HOLD_DAYS (2), and goes unsent if they are back to active first (QA10 F14). Set only
  while the stage is declining, for at most that long.
- :data:`LONG_PERIOD`: the paid period whose end ``period_end_day`` keeps was stated longer than
  :data:`LONG_PERIOD_S` (45 days) past its statement (an annual or quarterly plan): a renewal
  within the horizon is then news for a call ("renewal due in 29 days" says why an annual
  subscriber's alert comes now), where on a monthly plan it is always true (models.reasons,
  QA17 F13). Set or cleared by the ``active`` statement whose end is kept, cleared with the end;
  such a user pays (:data:`PAYS_SUBSCRIPTION`), so the bit adds no byte. Without
  :data:`PAYS_SUBSCRIPTION` the same bit is :data:`PAUSED` (QA22a F1): the latest statement is
  ``paused`` and ``period_end_day`` keeps the end of the pause (:func:`_state_period_end`).
- :data:`TRIAL`: the user's latest statement is a ``trial`` (:func:`in_trial`), and
  :data:`TRIAL_LOST`: it is the ``cancelled`` one that ended a trial with no paying statement
  between, of a user who never paid a plan of their own (:data:`EVER_PAID`) (:func:`trial_lost`:
  a lead that said no; :func:`never_paid_trial`); both beyond the flags byte (a record keeps
  them in the two top bits of byte 1, the stage's, formats 7 and 8: the stage is at most 5). QA23a F1, F2: a
  fitness app's 1,282 never-paid trials filled the user churn figures and got "onboard" alerts
  after their cancellation. No byte more than the same user's record without them. The trial's
  end is not kept: 2 bytes a trial user (format 8's period end, which the exit gate reads), and a
  population with a period end is measured at 302 bytes a user, over the budget of 300.
- :data:`EVER_PAID`: a ``subscription`` statement of the user's own once paid (``active`` or
  ``past_due`` with an MRR above 0: what sets :data:`PAYS_SUBSCRIPTION`), kept for good (a
  cancellation, a free plan, a trial after it leave it): with a purchase on record
  (``n_purchases``), what :func:`never_paid` reads. QA24a F4: a publisher's "98 users churned"
  held 49 free readers who never paid beside its 49 cancelled subscribers, and the state kept no
  trace of a paid plan once cancelled. In byte 1 too (bit 3, between the stage's three bits and
  the trial's two: formats 7 and 8), no byte more than the same user's record without it.
- :data:`GRIEVANCE`: a paying customer (a purchase on record, or a paying subscription) sent a
  grievance (models.vocabulary: a complaint, a refund asked for, a chargeback) after their last
  purchase: an at-risk alert opens for it whatever the risk, and stays open until they buy again
  or the grievance fades (models.signals.grievance_stands, models.engine). Set by the grievance,
  cleared by the customer's next purchase and when the negative-feedback count has decayed to
  nothing (its mask of names restarts, :func:`_add_negative`). Which grievances: the mask of
  negative names used. When: :data:`GRIEVANCE_LATEST`, else the last purchase's day.
- :data:`GRIEVANCE_LATEST`: the user's latest activity event is a grievance, so ``last_seen_s`` is
  its time, which the reasons date it by ("complained on 2026-03-02"). Set by an in-order
  grievance, cleared by the user's next in-order activity event. Neither flag costs a byte more
  than any flag does (the record's flags byte), so the budget's worst case does not move: the
  dates of grievances no later event left datable are not kept (each would be 2 bytes a user).

The rhythm of a ``recurring`` event (models.vocabulary: a bank's ``salary_deposit``) is kept as
the purchases' is, the first and the last time and the distinct UTC days with one
(``first_recurring_s``, ``last_recurring_s``, ``n_recurring``: :func:`_count_day`, the one
day count of both), in the record's bytes of the purchases: a user with a purchase on record
keeps no recurring rhythm (a purchase clears it, a recurring event after one adds nothing: the
same state in any order), so no byte is added. A record that holds a recurring rhythm says so
with :data:`RECURRING_RECORD` in its flags byte (format 7 or 8, never set in ``flags`` in memory):
no byte more than the same user's record without it, and a product that declares no recurring
event writes every record as before.

The flags cost no byte: a record with a flag set is format 7 (format 4's layout, 93 bytes + 8
per slot) or, with a period end, format 8 (format 5's, 95 + 8 per slot), the flags byte in byte
2, where formats 4 and 5 keep the slot count (the slot count of formats 7 and 8 is their length's:
8 bytes a slot after the head). A record without flags is format 4 or 5 byte for byte as before.
Until 2026-12-05 a flagged record was format 6 (format 5 + a uint8, the period end 0 when
unknown: 96 bytes + 8 per slot, 3 bytes more than format 4), still read: Redis held 303 bytes per
user with 8 types when every user was an account member, over the budget of 300; formats 7 and 8
hold such a user in the bytes of one without flags (1M users, benchmarks/memory.py, docs/SCORES.md
"Subscribers and company accounts").
"""

from __future__ import annotations

import bisect
import math
import struct
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Final, Literal, Sequence

try:  # mypyc's runtime library: the compiled core's record write and read (see _COMPILED below)
    from librt.strings import BytesWriter, read_f32_le, read_f64_le, read_i16_le, read_i32_le, write_f32_le, write_f64_le, write_i16_le, write_i32_le
except ImportError:  # the pure Python runs without it (the struct); the compiled core does not load without it
    pass

from models._native import init_args

if TYPE_CHECKING:  # mypyc's native 64-bit int, for the compiled loops' indices (a plain int when run as Python)
    from mypy_extensions import i64
from models.events import Event
from models.vocabulary import CANCEL, CANCEL_REQUEST, DEFAULT_VOCABULARY, IGNORE, NEGATIVE, PURCHASE, RECURRING, SUBSCRIPTION, Vocabulary

__all__ = [
    "ACCOUNT_MEMBER",
    "DAY_S",
    "DECAY_DAYS",
    "GAP_EWMA_ALPHA",
    "GRIEVANCE",
    "GRIEVANCE_LATEST",
    "LONG_PERIOD",
    "LONG_PERIOD_S",
    "PAUSED",
    "NEVER_PAID_TRIAL",
    "EVER_PAID",
    "never_paid",
    "never_paid_trial",
    "TRIAL",
    "TRIAL_LOST",
    "in_trial",
    "paused",
    "trial_lost",
    "MAX_PERIOD_END_DAY",
    "PAYS_SUBSCRIPTION",
    "RECURRING_RECORD",
    "SESSION_S",
    "STAGES",
    "STAGE_HELD",
    "Stage",
    "UserState",
    "VISIT_CONTINUED",
    "apply_event",
    "apply_looked_up",
    "decayed",
    "f32",
    "period_end_day",
    "scheduled_cancel_s",
    "peak_s",
    "baseline_decay",
    "purchase_summary",
    "slot_lists",
    "tracked",
]

DAY_S: Final[int] = 86_400
#: Mean lives, in days, of the activity counters ``act_7d`` ... ``act_90d``.
DECAY_DAYS: Final[tuple[int, int, int]] = (7, 28, 90)
# DECAY_DAYS in seconds, one by one and Final (C constants in the compiled core: unpacked from a
# tuple, each was a module-dict lookup and an unboxing at every use, three to five per event)
_TAU_7_S: Final[int] = 7 * DAY_S
_TAU_28_S: Final[int] = 28 * DAY_S
_TAU_90_S: Final[int] = 90 * DAY_S

Stage = Literal["new", "active", "declining", "dormant", "churned", "reactivated"]
STAGES: Final[tuple[Stage, ...]] = ("new", "active", "declining", "dormant", "churned", "reactivated")

_FORMAT_VERSION: Final[int] = 8
# version, stage, slots, 11 uint32 times, 3 uint32 counts, 3 float32 counters, float64 revenue,
# float32 recent interval and alert risk, uint16 negative-name mask, float32 negative-feedback
# 4-week counter: 93 bytes, then 2 float32 per slot (157 with 8 slots).
_STRUCT_V4: Final[struct.Struct] = struct.Struct("<BBB11I3I3fdffHf")
# Format 5: format 4 + the uint16 day of the end of the paid period (written only when it is known).
_STRUCT_V5: Final[struct.Struct] = struct.Struct("<BBB11I3I3fdffHfH")
# Formats 7 and 8 (a flag set): formats 4 and 5 with the uint8 flags in byte 2, the slot count's
# there (the slot count is the record's length's): the same structs, the same sizes.
# Format 6 (written until 2026-12-05, still read): format 5 + the uint8 flags, the period end 0
# when unknown, 3 bytes more than format 4 (96 bytes + 8 per slot).
_STRUCT: Final[struct.Struct] = struct.Struct("<BBB11I3I3fdffHfHB")
#: ``UserState.flags``: the user's latest subscription statement pays (``active`` or ``past_due``,
#: MRR above 0; models.actions reads it as "paying", whatever the purchases).
PAYS_SUBSCRIPTION: Final[int] = 1
#: ``UserState.flags``: the user's events name a company account (``account_id`` set and not the
#: user's own id): whether the company pays is the account's (models.account_health), not the user's.
ACCOUNT_MEMBER: Final[int] = 2
#: ``UserState.flags``: the user's latest visit went on past midnight UTC (an activity event within
#: :data:`SESSION_S` of the one before, on a later UTC day): the visit is dated by the day it started
#: on, so the UTC day of ``last_seen_s`` is not an active day yet (:func:`_count_visit_day`).
VISIT_CONTINUED: Final[int] = 4
#: A visit's session timeout, seconds: an event within this of the user's previous one continues
#: the visit (30 minutes, the common web-analytics session, e.g. Google Analytics').
SESSION_S: Final[int] = 30 * 60
#: ``UserState.flags``: the user's change from active to declining has not been told yet: its
#: ``stage_changed`` alert waits until the user has been declining for ``models.engine``'s
#: STAGE_HOLD_DAYS, and goes unsent if they are back first (QA10 F14). Set only while the stage is
#: declining, and for at most that long, so a record carries it (format 6) only then.
STAGE_HELD: Final[int] = 8
#: ``UserState.flags``: the paid period whose end ``period_end_day`` keeps was stated longer than
#: :data:`LONG_PERIOD_S` past its statement (an annual or quarterly plan, not a monthly one):
#: models.reasons tells a renewal within the horizon only then, or within a week (QA17 F13).
LONG_PERIOD: Final[int] = 16
#: A period longer than this past its statement is "long" (:data:`LONG_PERIOD`): a month's 28-31
#: days and a statement sent up to two weeks before its period starts stay below; two months do not.
LONG_PERIOD_S: Final[int] = 45 * 86_400
#: ``UserState.flags``: the latest statement is ``paused`` (QA22a F1): the bit of :data:`LONG_PERIOD`
#: without :data:`PAYS_SUBSCRIPTION` (LONG_PERIOD is only ever set beside it, so the pair was free):
#: ``period_end_day`` then keeps the end of the pause, not of a paid period (models.signals
#: ``paused_until_s``). A paused user's record is flagged (format 7 or 8: no byte more).
PAUSED: Final[int] = LONG_PERIOD


def paused(flags: int) -> bool:
    """Whether ``flags`` say the latest statement is ``paused`` (:data:`PAUSED`).

    >>> paused(PAUSED), paused(PAUSED | PAYS_SUBSCRIPTION), paused(0)
    (True, False, False)
    """
    return flags & (PAUSED | PAYS_SUBSCRIPTION) == PAUSED


def in_trial(flags: int) -> bool:
    """Whether ``flags`` say the latest statement is a ``trial`` (:data:`TRIAL`).

    >>> in_trial(TRIAL), in_trial(TRIAL_LOST), in_trial(0)
    (True, False, False)
    """
    return flags & TRIAL != 0


def trial_lost(flags: int) -> bool:
    """Whether ``flags`` say a trial was cancelled without paying (:data:`TRIAL_LOST`): a lost lead,
    not a customer (no save alert opens for it and its action is ``win_back``: models.engine,
    models.actions; QA23a F1).

    >>> trial_lost(TRIAL_LOST), trial_lost(TRIAL), trial_lost(0)
    (True, False, False)
    """
    return flags & TRIAL_LOST != 0
#: ``UserState.flags``: a paying customer's grievance since their last purchase (models.vocabulary
#: grievance names): an at-risk alert opens for it whatever the risk (models.engine).
GRIEVANCE: Final[int] = 32
#: ``UserState.flags``: the user's latest activity event is a grievance: ``last_seen_s`` dates it
#: (the reasons' "complained on 2026-03-02").
GRIEVANCE_LATEST: Final[int] = 64
#: The record's flags byte only (never ``UserState.flags``): the record's purchase fields hold the
#: user's recurring rhythm (``first_recurring_s``, ``last_recurring_s``, ``n_recurring``; module
#: docstring), which shares their bytes (a user keeps purchases or a recurring rhythm, not both).
RECURRING_RECORD: Final[int] = 128
#: ``UserState.flags``: the user's latest subscription statement is a ``trial`` (QA23a F1, F2;
#: models.reasons says "in trial"). Beyond the flags byte (module docstring: byte 1's top bits).
TRIAL: Final[int] = 256
#: ``UserState.flags``: the latest statement is the ``cancelled`` one that ended a trial with no
#: paying statement between (:func:`trial_lost`): a lead that said no, not a customer (QA23a F1).
TRIAL_LOST: Final[int] = 512
#: :data:`TRIAL` and :data:`TRIAL_LOST`: a trial that never paid (the user churn counts apart them).
NEVER_PAID_TRIAL: Final[int] = TRIAL | TRIAL_LOST
#: ``UserState.flags``: a subscription statement of the user's own once paid (``active`` or
#: ``past_due``, MRR above 0), kept for good: with a purchase, "ever paid" (:func:`never_paid`; QA24a F4).
#: Beyond the flags byte (module docstring: byte 1's bit 3).
EVER_PAID: Final[int] = 1024
#: A format-7 or 8 record's byte 1 holds the stage (at most 5, bits 0-2), :data:`EVER_PAID` in bit 3
#: and, shifted into its top two bits, :data:`NEVER_PAID_TRIAL` (:func:`_stage_byte`, :func:`_byte1_flags`).
_TRIAL_SHIFT: Final[int] = 2
_PAID_SHIFT: Final[int] = 7
_STAGE_BITS: Final[int] = 0x07
#: The flags kept in byte 1, not in the flags byte.
_BYTE1_FLAGS: Final[int] = NEVER_PAID_TRIAL | EVER_PAID


def _stage_byte(stage: int, flags: int) -> int:
    """Byte 1 of a format-7 or 8 record: the stage, :data:`EVER_PAID` in bit 3, the trial bits in the top two.

    >>> _stage_byte(4, TRIAL_LOST | EVER_PAID | 2), _byte1_flags(_stage_byte(4, TRIAL_LOST | EVER_PAID | 2))
    (140, 1536)
    """
    return stage | (flags & NEVER_PAID_TRIAL) >> _TRIAL_SHIFT | (flags & EVER_PAID) >> _PAID_SHIFT


def _byte1_flags(byte1: int) -> int:
    """The flags a format-7 or 8 record keeps in byte 1 (:func:`_stage_byte`)."""
    return (byte1 & 0xC0) << _TRIAL_SHIFT | (byte1 & 0x08) << _PAID_SHIFT


def never_paid_trial(flags: int) -> bool:
    """Whether ``flags`` say a trial that never paid: in trial or lost (:data:`NEVER_PAID_TRIAL`) by a
    user who never had a paying statement of their own (:data:`EVER_PAID`). A former subscriber's
    trial (a plan paid, cancelled, a trial later) is a paying user's: their churn is a customer's,
    not a lead's (2026-12-05: they were counted among "trials that never paid"). What the user
    churn counters, the win-back list's ``trial`` mark and ``never_paid_trial`` read.

    >>> never_paid_trial(TRIAL), never_paid_trial(TRIAL_LOST), never_paid_trial(TRIAL | EVER_PAID), never_paid_trial(0)
    (True, True, False, False)
    """
    return flags & NEVER_PAID_TRIAL != 0 and flags & EVER_PAID == 0


def never_paid(st: "UserState") -> bool:
    """Whether the user of ``st`` never paid at all: no purchase on record (``n_purchases``, its
    ``revenue``), no paying subscription statement of their own ever (:data:`EVER_PAID`), no trial
    (a trial that never paid is counted as one: :data:`NEVER_PAID_TRIAL`, never twice) and no
    company account (a member's billing is the account's, :data:`ACCOUNT_MEMBER`). The user churn
    counts them apart (QA24a F4: a publisher's free registered readers).

    >>> [never_paid(UserState(flags=f)) for f in (0, EVER_PAID, TRIAL_LOST, ACCOUNT_MEMBER)], never_paid(UserState(n_purchases=1))
    ([True, False, False, False], False)
    """
    return st.n_purchases == 0 and st.revenue <= 0.0 and st.flags & (EVER_PAID | NEVER_PAID_TRIAL | ACCOUNT_MEMBER) == 0
#: After a resume (a paying statement that ends a pause: :func:`_state_period_end`), no at-risk
#: alert opens for this long: the 4-week counters' mean life, what the pause's silence takes to
#: leave them (QA22a F2; with a week, 50 of 109 resumed viewers who watched again were alerted
#: at its end, "recent activity down 56% against the user's usual": the pause, not a leaving)
RESUME_QUIET_S: Final[int] = 28 * 86_400
#: The largest day ``period_end_day`` holds (uint16: 2149-06-06); a later end is kept as this day.
MAX_PERIOD_END_DAY: Final[int] = 0xFFFF
# Format 3 (the same without the negative-feedback fields: 87 bytes + 8 per slot), 2 (122 bytes)
# and 1 (114 bytes) are still read (see from_bytes).
_STRUCT_V3: Final[struct.Struct] = struct.Struct("<BBB11I3I3fdff")
_STRUCT_V2: Final[struct.Struct] = struct.Struct("<BB9I3I9d")
_SIZE_V6: Final[int] = _STRUCT.size
_SIZE_V5: Final[int] = _STRUCT_V5.size
_SIZE_V4: Final[int] = _STRUCT_V4.size
_SIZE_V3: Final[int] = _STRUCT_V3.size
_UNPACK_V6: Final[Callable[[bytes], tuple[Any, ...]]] = _STRUCT.unpack_from
_UNPACK_V5: Final[Callable[[bytes], tuple[Any, ...]]] = _STRUCT_V5.unpack_from
_UNPACK_V4: Final[Callable[[bytes], tuple[Any, ...]]] = _STRUCT_V4.unpack_from
_UNPACK_V3: Final[Callable[[bytes], tuple[Any, ...]]] = _STRUCT_V3.unpack_from
_PACK_V5: Final[Callable[..., bytes]] = _STRUCT_V5.pack  # bound once: a method lookup per record written saved
_PACK_V4: Final[Callable[..., bytes]] = _STRUCT_V4.pack
_STRUCT_V1: Final[struct.Struct] = struct.Struct("<BB9I3I8d")
#: Weight of the newest interval in ``gap_ewma_days``: about the last three intervals count.
GAP_EWMA_ALPHA: Final[float] = 0.4
#: One float32 as a memoryview: storing a double into it is C's (float) cast, as an array('f')
#: item's is, without the array's argument parsing per item (three calls per event); Final: a C
#: global in mypyc, not a dict lookup per f32.
_F1: Final["memoryview[float]"] = memoryview(bytearray(4)).cast("f")


#: Whether this module runs compiled (mypyc: an extension module, not its ``.py``). The record's
#: write and read and ``f32`` then take the fast paths below: the record's fields through
#: ``librt.strings`` (mypyc's runtime library), whose ``BytesWriter`` and fixed-width
#: little-endian ``write_*``/``read_*`` mypyc compiles to inline C on a native int or double (a
#: bounds check and a store or load), and ``f32`` in float arithmetic. The struct pack and unpack
#: they replace were generic calls that box every value (17 ints, most of them epoch seconds
#: above the small-int cache, and 7 floats a record written; 26 values a record read). The pure
#: Python keeps the struct and the memoryview, the reference: tests/test_models_native.py
#: compares both ways on random states, records and doubles, and the compiled core with the pure
#: one end to end.
_COMPILED: Final[bool] = not __file__.endswith((".py", ".pyc"))  # mypyc's: the extension module's path
#: Veltkamp's splitting constant for 53 - 24 = 29 bits (:func:`_f32_normal`).
_SPLIT_29: Final[float] = 536870913.0  # 2 ** 29 + 1
_TWO_62: Final[float] = 4611686018427387904.0  # 2 ** 62
_TWO_M62: Final[float] = 1.0 / 4611686018427387904.0  # 2 ** -62
#: The smallest magnitude whose float32 cast is inf: FLT_MAX + half its unit (2 ** 128 - 2 ** 103,
#: a tie that rounds to the even inf). ``struct`` refuses to pack a finite double from here up.
_F32_OVERFLOW: Final[float] = 340282356779733661637539395458142568448.0


#: ``array.tolist``, held once: ``a.tolist()`` in the compiled core is a method lookup on the type
#: and then the call (~115 instructions more than calling the function itself).
_TOLIST: Final[Callable[[array], list[float]]] = array.tolist


def f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (the grid every stored counter lives on).

    >>> f32(0.1) == 0.1, f32(f32(0.1)) == f32(0.1)
    (False, True)
    """
    if _COMPILED:
        a = x if x > 0.0 else -x
        if _TWO_M62 <= a < _TWO_62:
            return _f32_normal(x, a)
    return _f32_cast(x)


def _f32_cast(x: float) -> float:
    """:func:`f32` as C's (float) cast does it: through a float32 memoryview (the reference)."""
    _F1[0] = x
    return _F1[0]


def _f32_normal(x: float, a: float) -> float:
    """:func:`f32` of ``x`` with ``a = |x|`` in [2 ** -62, 2 ** 62) (well inside float32's normal
    range, so no overflow nor subnormal), in float arithmetic alone: Veltkamp's splitting (Dekker,
    "A floating-point technique for extending the available precision", Numerische Mathematik
    18, 1971): with ``g = x * (2 ** 29 + 1)`` rounded, ``g - (g - x)`` is ``x`` rounded to
    53 - 29 = 24 significant bits, to nearest; with ties to even arithmetic a tie goes to the even
    neighbour, as the cast's (checked on every float32 significand's two ties, both signs, in ten
    binades from 2 ** -62 to 2 ** 61, and on random doubles: tests/test_models_native.py; each
    operation scales exactly by a power of two in this range, so one binade stands for all).
    Three operations instead of the binade's exponent from an int's bit length and a table
    (~200 instructions a call, four an event). Each a rounded double operation of its own: the
    core's C is compiled with ``-ffp-contract=off`` (setup.py), since a fused multiply-add (the
    default of GCC on targets with FMA, such as aarch64) would fuse ``g - x``'s product and break
    it, as it would any of the core's sums of products."""
    g = x * _SPLIT_29
    return g - (g - x)


def _zeros(n: int) -> bytes:
    """The slot counts of ``n`` slots that were never used (float32 zeros are zero bytes)."""
    return bytes(8 * n)


#: The slot counts of a new state of the default vocabulary (bytes are immutable: shared).
_NEW_SLOTS: Final[bytes] = _zeros(DEFAULT_VOCABULARY.n_slots)


@dataclass(slots=True)
class UserState:
    """Everything churnwatch remembers about one user. ``0`` in a ``*_s`` field means "never"."""

    first_seen_s: int = 0
    last_seen_s: int = 0
    first_purchase_s: int = 0
    last_purchase_s: int = 0
    cancelled_s: int = 0  # latest cancellation
    stage_since_s: int = 0
    at_risk_since_s: int = 0  # 0 while no at-risk alert is open (hysteresis memory)
    next_review_s: int = 0  # event time at which the user must be looked at even without events
    last_review_s: int = 0
    quiet_until_s: int = 0  # a closed at-risk alert may re-open before this only on a material rise
    slots_at_s: int = 0  # the time the per-slot counters are kept at (see apply_event)
    n_events: int = 0
    active_days: int = 0  # distinct visit days (a visit dated by its first UTC day, _count_visit_day; late events: none)
    n_purchases: int = 0  # distinct UTC days with a purchase (see _count_day)
    act_7d: float = 0.0  # decayed event counts, all activity types, at last_seen_s (float32 grid)
    act_28d: float = 0.0
    act_90d: float = 0.0
    revenue: float = 0.0
    # Recent interval between active days, days: exponentially weighted over the intervals in
    # event order (late events do not enter it), GAP_EWMA_ALPHA on the newest. Meaningful once
    # active_days >= 2 (the count says so: 0.0 is never read as "no data").
    gap_ewma_days: float = 0.0
    alert_risk: float = 0.0  # risk when the last at-risk alert closed (the flap guard's reference)
    stage: int = 0  # index into STAGES
    # Per slot (models.vocabulary), at slots_at_s: 7-day and 4-week decayed counts, as the
    # record keeps them: n float32s (little-endian) of the 7-day counts, then n of the 4-week
    # ones. Why bytes and not two array('f'): immutable, so a copy of the state shares them, and
    # a record read takes them as one slice, written back with one copy; the compiled core reads
    # and writes them with librt's fixed-width reads and writes (inline C; an array item was a
    # generic call, a store ~360 instructions), the pure Python through a float32 memoryview
    # (:func:`_counts`). ``slot_7d``/``slot_28d`` read them as arrays.
    slot_counts: bytes = _NEW_SLOTS
    # Negative feedback (models.vocabulary NEGATIVE), at slots_at_s like the slots: bit i set when
    # the role's i-th name was used since the count was last ~0, and the 4-week decayed count.
    negative_names: int = 0
    negative_28d: float = 0.0
    # The end of the period paid for (the latest subscription statement's period_end), as the day
    # number since the epoch rounded up; 0 = unknown (models.risk: the exit-opportunity gate).
    period_end_day: int = 0
    # PAYS_SUBSCRIPTION | ACCOUNT_MEMBER | VISIT_CONTINUED | STAGE_HELD | LONG_PERIOD (module docstring): what the
    # recommended action reads of billing; the latest visit went on past midnight (_count_visit_day);
    # a change to declining not told yet (models.engine)
    flags: int = 0
    # The rhythm of the recurring role's events (models.vocabulary RECURRING), as the purchases'
    # (first, last, distinct UTC days: _count_day); 0 for a user with a purchase (module docstring).
    first_recurring_s: int = 0
    last_recurring_s: int = 0
    n_recurring: int = 0

    def __init__(
        self,
        first_seen_s: int = 0,
        last_seen_s: int = 0,
        first_purchase_s: int = 0,
        last_purchase_s: int = 0,
        cancelled_s: int = 0,
        stage_since_s: int = 0,
        at_risk_since_s: int = 0,
        next_review_s: int = 0,
        last_review_s: int = 0,
        quiet_until_s: int = 0,
        slots_at_s: int = 0,
        n_events: int = 0,
        active_days: int = 0,
        n_purchases: int = 0,
        act_7d: float = 0.0,
        act_28d: float = 0.0,
        act_90d: float = 0.0,
        revenue: float = 0.0,
        gap_ewma_days: float = 0.0,
        alert_risk: float = 0.0,
        stage: int = 0,
        slot_counts: bytes | None = None,
        negative_names: int = 0,
        negative_28d: float = 0.0,
        period_end_day: int = 0,
        flags: int = 0,
        first_recurring_s: int = 0,
        last_recurring_s: int = 0,
        n_recurring: int = 0,
        slot_7d: Sequence[float] | None = None,
        slot_28d: Sequence[float] | None = None,
    ) -> None:
        # Written out, not generated by @dataclass: mypyc compiles this one (the generated one runs as Python).
        self.first_seen_s = first_seen_s
        self.last_seen_s = last_seen_s
        self.first_purchase_s = first_purchase_s
        self.last_purchase_s = last_purchase_s
        self.cancelled_s = cancelled_s
        self.stage_since_s = stage_since_s
        self.at_risk_since_s = at_risk_since_s
        self.next_review_s = next_review_s
        self.last_review_s = last_review_s
        self.quiet_until_s = quiet_until_s
        self.slots_at_s = slots_at_s
        self.n_events = n_events
        self.active_days = active_days
        self.n_purchases = n_purchases
        self.act_7d = act_7d
        self.act_28d = act_28d
        self.act_90d = act_90d
        self.revenue = revenue
        self.gap_ewma_days = gap_ewma_days
        self.alert_risk = alert_risk
        self.stage = stage
        # the counts as their bytes, or as two lists of floats (each rounded to float32 as an
        # array('f') stores it), or those of a new state
        if slot_counts is not None:
            if len(slot_counts) % 8 or slot_7d is not None or slot_28d is not None:
                raise ValueError("slot_counts: 8 bytes a slot, and not with slot_7d/slot_28d")
            self.slot_counts = slot_counts
        elif slot_7d is not None or slot_28d is not None:
            s7 = array("f", [] if slot_7d is None else slot_7d)
            s28 = array("f", [] if slot_28d is None else slot_28d)
            if len(s7) != len(s28):
                raise ValueError(f"slot_7d and slot_28d of {len(s7)} and {len(s28)} slots: one count of each a slot")
            self.slot_counts = s7.tobytes() + s28.tobytes()
        else:
            self.slot_counts = _NEW_SLOTS
        self.negative_names = negative_names
        self.negative_28d = negative_28d
        self.period_end_day = period_end_day
        self.flags = flags
        self.first_recurring_s = first_recurring_s
        self.last_recurring_s = last_recurring_s
        self.n_recurring = n_recurring

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return init_args(self)

    @property
    def stage_name(self) -> Stage:
        return STAGES[self.stage]

    @property
    def is_new(self) -> bool:
        return self.n_events == 0

    @property
    def n_slots(self) -> int:
        return len(self.slot_counts) // 8

    @property
    def slot_7d(self) -> array:
        """The 7-day counts per slot, as a new float32 array (reading them: the state keeps
        ``slot_counts``, which this array does not write to)."""
        return _counts(self.slot_counts)[0]

    @property
    def slot_28d(self) -> array:
        """The 4-week counts per slot, as ``slot_7d``."""
        return _counts(self.slot_counts)[1]

    def to_bytes(self) -> bytes:
        """The format-4 record (93 bytes + 8 per slot) while the end of the paid period is
        unknown and no flag is set, format 5 (95 bytes + 8 per slot) with a period end and no
        flag; with a flag, the same sizes: format 7 (format 4's layout, the flags in the slot
        count's byte) and format 8 (format 5's, so); module docstring. A recurring rhythm is
        written in the purchase fields' place (:data:`RECURRING_RECORD`)."""
        if self.n_recurring:
            return _recurring_record(self)
        if _COMPILED:  # the record written in C (module docstring of _COMPILED)
            raw = _write_head(self, True)
            if raw is not None:  # else a field out of its range: the struct below raises as the pure Python does
                return raw
        # byte 2: the flags when one is set (formats 7 and 8: the slot count is then the record's
        # length's), else the slot count (formats 4 and 5, byte for byte as before)
        third = self.flags & ~_BYTE1_FLAGS if self.flags else self.n_slots
        stage = _stage_byte(self.stage, self.flags)  # (formats 7 and 8: the trial and ever-paid bits)
        if self.period_end_day:
            head = _PACK_V5(
                _FORMAT_VERSION if self.flags else 5, stage, third,
                self.first_seen_s, self.last_seen_s, self.first_purchase_s, self.last_purchase_s, self.cancelled_s,
                self.stage_since_s, self.at_risk_since_s, self.next_review_s, self.last_review_s, self.quiet_until_s,
                self.slots_at_s, self.n_events, self.active_days, self.n_purchases,
                self.act_7d, self.act_28d, self.act_90d, self.revenue, self.gap_ewma_days, self.alert_risk,
                self.negative_names, self.negative_28d, self.period_end_day,
            )
            return head + self.slot_counts
        head = _PACK_V4(
            7 if self.flags else 4, stage, third,
            self.first_seen_s, self.last_seen_s, self.first_purchase_s, self.last_purchase_s, self.cancelled_s,
            self.stage_since_s, self.at_risk_since_s, self.next_review_s, self.last_review_s, self.quiet_until_s,
            self.slots_at_s, self.n_events, self.active_days, self.n_purchases,
            self.act_7d, self.act_28d, self.act_90d, self.revenue, self.gap_ewma_days, self.alert_risk,
            self.negative_names, self.negative_28d,
        )
        return head + self.slot_counts

    @classmethod
    def from_bytes(cls, raw: bytes) -> "UserState":
        """The state of a record of format 8, 7, 5 or 4, or of the older formats 6, 3, 2 and 1 (formats
        4 and 5 and older: no flags; formats 4 and 7 and older: the end of the paid period is unknown; 3 and older: negative-feedback
        counts start at 0; formats 2 and 1: counters are read onto the float32 grid, per-type
        counts start at 0, and a format-1 record's recent interval is its lifetime average: the
        best that record knows). A flagged record's (format 6, 7 or 8) recurring rhythm, in the purchase
        fields' place, goes to its own fields (:func:`_unmark`)."""
        version = raw[0] if len(raw) else 0
        # byte 1 is the stage in every format (formats 7 and 8: its bits from 3 up the trial's and ever-paid's): else an IndexError later
        if len(raw) > 1 and (raw[1] & _STAGE_BITS if version == 7 or version == 8 else raw[1]) >= len(STAGES):
            raise ValueError(f"user state record with stage {raw[1]}: at most {len(STAGES) - 1}")
        # the sizes and bound unpack_from of the formats as Final globals: ``fmt.size`` and
        # ``fmt.unpack_from`` were a generic attribute and a method lookup per record read.
        # Formats 7 and 8 are 4 and 5 with the flags in byte 2, the slot count's in those.
        if version == 4 or version == 7:
            size, unpack = _SIZE_V4, _UNPACK_V4
        elif version == 5 or version == 8:
            size, unpack = _SIZE_V5, _UNPACK_V5
        elif version == 6:
            size, unpack = _SIZE_V6, _UNPACK_V6
        else:
            size, unpack = _SIZE_V3, _UNPACK_V3
        if 3 <= version <= 8 and len(raw) >= size:  # shorter: a ValueError below, not struct.error
            if version >= 7:  # the slot count is the length's: 8 bytes a slot after the head
                if (len(raw) - size) & 7:
                    raise ValueError(f"user state record of {len(raw)} bytes, format v{version}: not {size} + 8 per slot")
            elif len(raw) != size + 8 * raw[2]:  # the slot count (byte 2 in formats 3-6)
                raise ValueError(f"user state record of {len(raw)} bytes with {raw[2]} slots: expected {size + 8 * raw[2]}")
            if _COMPILED and version >= 4:  # the head read in C, not through the struct (module docstring of _COMPILED)
                return _read_head(raw, version, size)
            v = unpack(raw)
            # UserState(...), not cls(...): the compiled core calls its constructor directly (a
            # record is read for every user a cycle touches). The slot counts are the record's tail.
            counts = raw[size:]
            if version >= 7:
                return _unmark(UserState(v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15],
                                         v[16], v[17], v[18], v[19], v[20], v[21], v[22], v[1] & _STAGE_BITS, counts, v[23], v[24],
                                         v[25] if version == 8 else 0, v[2] | _byte1_flags(v[1])))
            if version == 6:
                return _unmark(UserState(v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15],
                                         v[16], v[17], v[18], v[19], v[20], v[21], v[22], v[1], counts, v[23], v[24], v[25], v[26]))
            if version == 5:
                return UserState(v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16],
                                 v[17], v[18], v[19], v[20], v[21], v[22], v[1], counts, v[23], v[24], v[25])
            if version == 4:
                return UserState(v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16],
                                 v[17], v[18], v[19], v[20], v[21], v[22], v[1], counts, v[23], v[24])
            return UserState(v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15], v[16],
                             v[17], v[18], v[19], v[20], v[21], v[22], v[1], counts)
        if len(raw) == _STRUCT_V2.size and raw[0] == 2:
            v = _STRUCT_V2.unpack(raw)
            gap = v[22]
        elif len(raw) == _STRUCT_V1.size and raw[0] == 1:
            v = _STRUCT_V1.unpack(raw)
            gap = (v[3] - v[2]) / DAY_S / (v[12] - 1) if v[12] > 1 else 0.0
        else:
            raise ValueError(f"user state record of {len(raw)} bytes, version {raw[:1]!r}: not format v{_FORMAT_VERSION} (or v7, v6, v5, v4, v3, v2, v1)")
        return cls(
            v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], 0, v[3], v[11], v[12], v[13],
            f32(v[15]), f32(v[16]), f32(v[17]), v[21], f32(gap), 0.0, v[1],
        )

    def copy(self) -> "UserState":
        # Field by field: dataclasses.replace/fields cost ~10 us here, this ~1 us.
        return UserState(
            self.first_seen_s, self.last_seen_s, self.first_purchase_s, self.last_purchase_s, self.cancelled_s,
            self.stage_since_s, self.at_risk_since_s, self.next_review_s, self.last_review_s, self.quiet_until_s,
            self.slots_at_s, self.n_events, self.active_days, self.n_purchases, self.act_7d, self.act_28d, self.act_90d,
            self.revenue, self.gap_ewma_days, self.alert_risk, self.stage,
            self.slot_counts,  # bytes: shared, never written to (a change makes new ones)
            self.negative_names, self.negative_28d, self.period_end_day, self.flags,
            self.first_recurring_s, self.last_recurring_s, self.n_recurring,
        )


def _unmark(st: UserState) -> UserState:
    """``st`` as read from a flagged record (format 6, 7 or 8): with :data:`RECURRING_RECORD` in its flags, the
    purchase fields hold the recurring rhythm (:func:`_recurring_record`), moved to its own."""
    if st.flags & RECURRING_RECORD:
        st.first_recurring_s, st.last_recurring_s, st.n_recurring = st.first_purchase_s, st.last_purchase_s, st.n_purchases
        st.first_purchase_s = st.last_purchase_s = st.n_purchases = 0
        st.flags &= ~RECURRING_RECORD
    return st


def _recurring_record(s: UserState) -> bytes:
    """The record of a state that holds a recurring rhythm: its fields in the purchase fields'
    place, :data:`RECURRING_RECORD` in the flags byte (format 7 or 8; module docstring). A state with
    purchases too has no such record (``apply_looked_up`` never makes one)."""
    if s.n_purchases or s.first_purchase_s or s.last_purchase_s:
        raise ValueError("a user state keeps purchases or a recurring rhythm, not both (they share the record's bytes)")
    t = s.copy()
    t.first_purchase_s, t.last_purchase_s, t.n_purchases = s.first_recurring_s, s.last_recurring_s, s.n_recurring
    t.first_recurring_s = t.last_recurring_s = t.n_recurring = 0
    t.flags |= RECURRING_RECORD
    return t.to_bytes()


def _f32_fits(x: float) -> bool:
    """Whether ``struct`` packs ``x`` as a float32 (``<f``): all but the finite doubles whose
    float32 cast overflows to inf (``x - x`` is 0.0 for every finite double, NaN for inf and NaN)."""
    return -_F32_OVERFLOW < x < _F32_OVERFLOW or x - x != 0.0


def _put_u32(w: BytesWriter, x: int) -> None:
    """The uint32 ``x`` (0 <= x < 2 ** 32, checked by the caller) little-endian: as the int32 of
    the same bits, which librt writes."""
    write_i32_le(w, x - 0x100000000 if x > 0x7FFFFFFF else x)


def _put_u16(w: BytesWriter, x: int) -> None:
    """The uint16 ``x`` (0 <= x < 2 ** 16, checked by the caller) little-endian, as :func:`_put_u32`."""
    write_i16_le(w, x - 0x10000 if x > 0x7FFF else x)


def _write_head(s: UserState, counts: bool = False) -> bytes | None:
    """The head of ``s``'s record, the bytes ``_PACK_V4``/``_PACK_V5`` give (format 5, or 8 when a
    flag is set, when the end of the paid period is known, else 4, or 7 when a flag is set; byte 2
    the flags in formats 7 and 8, else the slot count), then with ``counts`` its slot counts (the whole record),
    written by librt's ``BytesWriter`` (a native int or double stored per field, nothing boxed;
    256 bytes inside the writer, so no buffer to grow up to 20 slots); None
    when a field is out of what its struct code holds (the caller's struct then raises the
    reference's error). The checks: an OR of the uint32s is negative or has a bit from 32 up
    exactly when one of them is out of range, the same for the bytes and the uint16s."""
    n = len(s.slot_counts) // 8
    if (s.first_seen_s | s.last_seen_s | s.first_purchase_s | s.last_purchase_s | s.cancelled_s | s.stage_since_s
            | s.at_risk_since_s | s.next_review_s | s.last_review_s | s.quiet_until_s | s.slots_at_s | s.n_events
            | s.active_days | s.n_purchases) >> 32 or (s.stage | n | s.flags & ~_BYTE1_FLAGS) >> 8 or (s.negative_names | s.period_end_day) >> 16:
        return None
    if not (_f32_fits(s.act_7d) and _f32_fits(s.act_28d) and _f32_fits(s.act_90d) and _f32_fits(s.gap_ewma_days)
            and _f32_fits(s.alert_risk) and _f32_fits(s.negative_28d)):
        return None
    w = BytesWriter()
    if s.flags:
        w.append(_FORMAT_VERSION if s.period_end_day else 7)
        w.append(_stage_byte(s.stage, s.flags))  # the trial bits (byte 1's top two) and the ever-paid one (bit 3)
        w.append(s.flags & ~_BYTE1_FLAGS)
    else:
        w.append(5 if s.period_end_day else 4)
        w.append(s.stage)
        w.append(n)
    _put_u32(w, s.first_seen_s)
    _put_u32(w, s.last_seen_s)
    _put_u32(w, s.first_purchase_s)
    _put_u32(w, s.last_purchase_s)
    _put_u32(w, s.cancelled_s)
    _put_u32(w, s.stage_since_s)
    _put_u32(w, s.at_risk_since_s)
    _put_u32(w, s.next_review_s)
    _put_u32(w, s.last_review_s)
    _put_u32(w, s.quiet_until_s)
    _put_u32(w, s.slots_at_s)
    _put_u32(w, s.n_events)
    _put_u32(w, s.active_days)
    _put_u32(w, s.n_purchases)
    write_f32_le(w, s.act_7d)  # C's (float) cast: what struct's "<f" stores
    write_f32_le(w, s.act_28d)
    write_f32_le(w, s.act_90d)
    write_f64_le(w, s.revenue)
    write_f32_le(w, s.gap_ewma_days)
    write_f32_le(w, s.alert_risk)
    _put_u16(w, s.negative_names)
    write_f32_le(w, s.negative_28d)
    if s.period_end_day:
        _put_u16(w, s.period_end_day)
    if counts:
        w.write(s.slot_counts)
    return w.getvalue()


def _u32(raw: bytes, i: int) -> int:
    """The little-endian uint32 at byte ``i`` of ``raw`` (librt reads it as an int32)."""
    v: int = read_i32_le(raw, i)
    return v & 0xFFFFFFFF


def _u16(raw: bytes, i: int) -> int:
    """The little-endian uint16 at byte ``i`` of ``raw``."""
    v: int = read_i16_le(raw, i)
    return v & 0xFFFF


def _read_head(raw: bytes, version: int, size: int) -> UserState:
    """The state of a format-4, 5, 6, 7 or 8 record (``version``) whose head's ``size`` and slot
    count ``UserState.from_bytes`` checked: the head field by field at its offset
    in ``_STRUCT`` (what ``_STRUCT_V4``/``_STRUCT_V5``/``_STRUCT`` unpack, value for value: librt's float reads
    are the same load and (double) conversion as the struct's; formats 7 and 8 are 4 and 5 with
    the flags in byte 2)."""
    flags = raw[2] if version >= 7 else raw[95] if version == 6 else 0
    stage = raw[1]
    if version >= 7:  # the trial bits, in byte 1's top two, and the ever-paid one (formats 7 and 8)
        stage, flags = stage & _STAGE_BITS, flags | _byte1_flags(stage)
    st = UserState(
        _u32(raw, 3), _u32(raw, 7), _u32(raw, 11), _u32(raw, 15), _u32(raw, 19), _u32(raw, 23), _u32(raw, 27),
        _u32(raw, 31), _u32(raw, 35), _u32(raw, 39), _u32(raw, 43), _u32(raw, 47), _u32(raw, 51), _u32(raw, 55),
        read_f32_le(raw, 59), read_f32_le(raw, 63), read_f32_le(raw, 67), read_f64_le(raw, 71), read_f32_le(raw, 79),
        read_f32_le(raw, 83), stage, raw[size:], _u16(raw, 87), read_f32_le(raw, 89),
        _u16(raw, 93) if version == 5 or version == 6 or version == 8 else 0, flags,
    )
    return _unmark(st) if flags else st


def purchase_summary(state: UserState, now_s: int, unit_s: float = DAY_S) -> tuple[int, float, float]:
    """BG/NBD's (x, t_x, T) of a user who purchased (``n_purchases > 0``), in units of ``unit_s``
    seconds: the formulas of :func:`models.bgnbd.summary_from_state` (whose docstring says why
    each is so), here in the compiled core because every review of a buyer reads them
    (models.signals); that function checks its arguments and wraps this result."""
    first, last = state.first_purchase_s, max(state.last_purchase_s, state.first_purchase_s)
    day_boundaries = last // DAY_S - first // DAY_S
    x = min(state.n_purchases - 1, day_boundaries)
    t_x = (last - first) / unit_s if x > 0 else 0.0  # the paper's t_x = 0 when x = 0
    T = max(now_s - first, last - first) / unit_s
    return x, t_x, T


def peak_s(starts: tuple[int, ...], ends: tuple[int, ...], a: int, b: int) -> int:
    """The seconds of ``[a, b)`` inside the product's declared peak seasons (``[calendar] peak``:
    sorted, disjoint occurrences, ``starts[i]`` their first seconds, ``ends[i]`` the seconds after
    their last days, models.compiled ``peak_starts``/``peak_ends``). The 3-month baseline
    (``act_90d``) lives on the time outside them: an event inside a peak adds nothing to it and it
    does not decay there (:func:`apply_looked_up`, models.signals), so after a peak it holds the level
    before it, not the peak (QA25b F2: a marketplace's x2-3 Nov-Dec made its January read as a fall
    of 43% against the 3-month rate on 131 of 150 healthy shops). The 7-day and 4-week figures count
    every day: they say what the user does now.

    >>> d = DAY_S; peaks = ((10 * d, 40 * d), (20 * d, 50 * d))
    >>> [peak_s(*peaks, a * d, b * d) // d for a, b in ((0, 10), (0, 15), (15, 45), (18, 100), (5, 5))]
    [0, 5, 10, 12, 0]
    """
    if not starts or b <= a:
        return 0
    i = bisect.bisect_right(ends, a)  # the first occurrence that ends after a
    n = len(starts)
    total = 0
    while i < n and starts[i] < b:
        lo = starts[i] if starts[i] > a else a
        hi = ends[i] if ends[i] < b else b
        if hi > lo:
            total += hi - lo
        i += 1
    return total


def baseline_decay(a_s: int, b_s: int, peak_starts: tuple[int, ...], peak_ends: tuple[int, ...]) -> float:
    """The 3-month counter's (``act_90d``) decay factor from ``a_s`` to ``b_s``, its clock stopped
    inside the product's declared peaks (:func:`peak_s`): the one formula the fold
    (:func:`apply_looked_up`), the signals and the look aheads (models.signals) read it by, once a
    peak is declared (without one they keep their plain ``exp``)."""
    return math.exp(-((b_s - a_s) - peak_s(peak_starts, peak_ends, a_s, b_s)) / _TAU_90_S)


def decayed(count: float, since_s: int, now_s: int, tau_days: float) -> float:
    """A counter kept at ``since_s`` as seen at ``now_s`` (never grows with time).

    >>> round(decayed(10.0, 0, 7 * DAY_S, 7), 3)
    3.679
    """
    if now_s <= since_s:
        return count
    return count * math.exp(-(now_s - since_s) / (tau_days * DAY_S))


def _counts(b: bytes) -> tuple[array, array]:
    """The 7-day and the 4-week counts of the slot counts ``b`` (``UserState.slot_counts``) as
    two new float32 arrays: how the pure Python reads and changes them (an item store rounds to
    float32 as C's (float) cast does, the record's rounding), then writes them back as bytes."""
    n = len(b) // 8
    s7, s28 = array("f"), array("f")
    s7.frombytes(b[:4 * n])
    s28.frombytes(b[4 * n:])
    return s7, s28


def slot_lists(st: UserState, g7: float, g28: float) -> tuple[list[float], list[float]]:
    """The 7-day and the 4-week counts per slot as lists of floats, times ``g7`` and ``g28``
    (not multiplied where a factor is 1.0: ``n * 1.0`` is ``n``, bit for bit): what
    models.signals reads (lists: the compiled core walks a list in place, typed ``list[float]``
    each product is a native multiply)."""
    if _COMPILED:  # read by librt from the bytes, no arrays made (the same values: the same float-to-double load)
        b = st.slot_counts
        n: i64 = len(b) // 8
        return _slot_list(b, 0, n, g7), _slot_list(b, 4 * n, n, g28)
    s7, s28 = _counts(st.slot_counts)
    l7, l28 = _TOLIST(s7), _TOLIST(s28)
    return (l7 if g7 == 1.0 else [n * g7 for n in l7]), (l28 if g28 == 1.0 else [n * g28 for n in l28])


#: 0.0 for each of the most slots a record holds (its slot count is a byte; a vocabulary has at
#: most 16): :func:`_slot_list`'s lists start as a slice of it, and models.risk.weighted_features'
#: (never changed).
_ZEROS: Final[list[float]] = [0.0] * 256


def _slot_list(b: bytes, at: i64, n: i64, g: float) -> list[float]:
    """:func:`slot_lists`' list of the ``n`` float32 counts at byte ``at`` of ``b``, times ``g``,
    as the compiled core makes it: one shared 0.0 stands for every count whose bits are zero
    (most slots are: a boxed float made and freed per slot was most of the cost), which is what
    the product gives there too while ``g`` is finite and positive (a decay factor is, but for
    an underflow to 0.0: ``math.exp`` raises rather than overflow; 0.0 * -0.0 is -0.0); the
    indices native ints (mypyc's tagged ints cost a check per operation)."""
    # one slice (``[0.0] * n`` made a one-item list first, then the repeat)
    out = _ZEROS[:n] if n <= 256 else [0.0] * n
    same = g == 1.0
    zeros = g > 0.0 and g - g == 0.0  # 0.0 * g is 0.0
    i: i64 = 0
    while i < n:
        if not zeros or read_i32_le(b, at + 4 * i) != 0:
            out[i] = read_f32_le(b, at + 4 * i) if same else read_f32_le(b, at + 4 * i) * g
        i += 1
    return out


def _slots_forward(state: UserState, ts: int) -> int:
    """Bring every per-slot and negative-feedback counter forward to ``ts`` when it is a day or
    more past ``slots_at_s`` (see :func:`_add_to_slot`); the seconds from the reference to ``ts``."""
    d = ts - state.slots_at_s
    if d >= DAY_S:
        f7, f28 = math.exp(-d / _TAU_7_S), math.exp(-d / _TAU_28_S)
        s7, s28 = _counts(state.slot_counts)
        for i in range(len(s28)):
            n28: float = s28[i]
            if n28 != 0.0:  # a zero stays zero (and the 7-day count is zero whenever the 4-week one is)
                n7: float = s7[i]
                s7[i] = n7 * f7
                s28[i] = n28 * f28
        state.slot_counts = s7.tobytes() + s28.tobytes()
        if state.negative_28d:
            state.negative_28d = f32(state.negative_28d * f28)
        state.slots_at_s = ts
        d = 0
    return d


def _add_negative(state: UserState, index: int, ts: int) -> None:
    """One negative-feedback event at ``ts`` (the role's ``index``-th name, -1 when not a name of
    the role), counted like a slot's 4-week count. The mask of names used restarts once the count
    has decayed to nothing (under 0.05 of an event), so reasons name what the count is made of;
    a grievance that old no longer stands either (:data:`GRIEVANCE`)."""
    d = _slots_forward(state, ts)
    if state.negative_28d < 0.05:
        state.negative_names = 0
        state.flags &= ~(GRIEVANCE | GRIEVANCE_LATEST)
    if 0 <= index < 16:
        state.negative_names |= 1 << index
    state.negative_28d = f32(state.negative_28d + (1.0 if d == 0 else math.exp(d / _TAU_28_S)))


def _add_to_slot(state: UserState, slot: int, ts: int) -> None:
    """One event of ``slot`` at ``ts``. The slots are kept at ``slots_at_s``, not at last_seen_s:
    an event adds its weight as seen from there (exp(+age/tau), at most e^(1/7) while the
    reference is less than a day behind), and only an event a day or more past the reference
    brings every slot forward to its time. So a busy user pays the decay of all slots once a
    day, not once per event; the order of the events still does not matter (module docstring)."""
    if _COMPILED:  # the same numbers, written by librt (no arrays made)
        if ts - state.slots_at_s >= DAY_S:
            _forward_and_add(state, slot, ts)
        else:
            _add_within_day(state, slot, ts)
        return
    d = _slots_forward(state, ts)
    s7, s28 = _counts(state.slot_counts)
    n7: float = s7[slot]  # read as floats: a native add, not the generic in-place one
    n28: float = s28[slot]
    if d == 0:
        s7[slot] = n7 + 1.0
        s28[slot] = n28 + 1.0
    else:
        s7[slot] = n7 + math.exp(d / _TAU_7_S)
        s28[slot] = n28 + math.exp(d / _TAU_28_S)
    state.slot_counts = s7.tobytes() + s28.tobytes()


def _forward_and_add(state: UserState, slot: int, ts: int) -> None:
    """:func:`_add_to_slot` of an event a day or more past ``slots_at_s`` (every slot brought
    forward, then one added), as the compiled core runs it: the reference's numbers bit for bit
    (tests/test_models_native_slots.py compares both on random states), the new counts written
    in one pass by librt's ``BytesWriter`` from the old ones read by ``read_f32_le`` (a load
    each; no arrays, whose item calls are generic: a read ~180 instructions, a store ~360).
    ``write_f32_le`` stores a double as C's (float) cast, as an ``array('f')`` item store does;
    a count the forward skips (4-week count zero) is copied bit for bit (``read_i32_le``: no
    double in between), as the reference leaves it. The event's own slot is written once per
    counter: its forwarded value rounded by :func:`f32` (what the forward's store put on the
    float32 grid), plus one, rounded by the write."""
    d = ts - state.slots_at_s
    f7, f28 = math.exp(-d / _TAU_7_S), math.exp(-d / _TAU_28_S)
    b = state.slot_counts
    n: i64 = len(b) // 8
    at: i64 = slot
    w = BytesWriter()
    i: i64 = 0
    while i < n:  # the 7-day counts
        m28 = read_f32_le(b, 4 * (n + i))
        if i == at:
            n7 = read_f32_le(b, 4 * i)
            write_f32_le(w, (f32(n7 * f7) if m28 != 0.0 else n7) + 1.0)
        elif m28 != 0.0:  # as _slots_forward: a zero stays zero
            write_f32_le(w, read_f32_le(b, 4 * i) * f7)
        else:
            write_i32_le(w, read_i32_le(b, 4 * i))
        i += 1
    i = 0
    while i < n:  # the 4-week counts
        m28 = read_f32_le(b, 4 * (n + i))
        if i == at:
            write_f32_le(w, (f32(m28 * f28) if m28 != 0.0 else m28) + 1.0)
        elif m28 != 0.0:
            write_f32_le(w, m28 * f28)
        else:
            write_i32_le(w, read_i32_le(b, 4 * (n + i)))
        i += 1
    state.slot_counts = w.getvalue()
    if state.negative_28d:  # the rest of _slots_forward
        state.negative_28d = f32(state.negative_28d * f28)
    state.slots_at_s = ts


def _add_within_day(state: UserState, slot: int, ts: int) -> None:
    """:func:`_add_to_slot` of an event less than a day past ``slots_at_s`` (or before it: a
    late one), as the compiled core runs it: the event's slot plus its weight in each counter,
    written as :func:`_forward_and_add` writes (the other counts copied bit for bit); the
    reference's numbers bit for bit (tests/test_models_native_slots.py)."""
    d = ts - state.slots_at_s
    if d == 0:
        w7 = w28 = 1.0
    else:
        w7, w28 = math.exp(d / _TAU_7_S), math.exp(d / _TAU_28_S)
    b = state.slot_counts
    n: i64 = len(b) // 8
    at: i64 = slot
    w = BytesWriter()
    i: i64 = 0
    while i < 2 * n:
        if i == at:
            write_f32_le(w, read_f32_le(b, 4 * i) + w7)
        elif i == n + at:
            write_f32_le(w, read_f32_le(b, 4 * i) + w28)
        else:
            write_i32_le(w, read_i32_le(b, 4 * i))
        i += 1
    state.slot_counts = w.getvalue()


def apply_event(state: UserState, event: Event, vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> None:
    """Fold one event into ``state`` in place. Commutative over events (see module docstring).

    Cancellation is not activity: it only records when the user last said they are leaving
    (the latest cancellation, so cancel - return - cancel ends cancelled; models.signals decides
    whether activity after it is a return). A state whose slots do not match ``vocabulary``
    (a model with other tracked types) restarts its per-type and negative-feedback counts.
    Negative feedback is activity (the user is there) and also counts in its own counters.
    A ``subscription`` statement is not usage either: it only sets the end of the paid period
    (:func:`period_end_day`) and whether the user pays a subscription (:data:`PAYS_SUBSCRIPTION`),
    in event order (module docstring). Any event naming a company account (an ``account_id``
    not the user's own) makes the user a member (:data:`ACCOUNT_MEMBER`, kept for good).
    """
    slot, role = vocabulary.lookup(event.type)
    apply_looked_up(state, event, vocabulary, slot, role)


def apply_looked_up(state: UserState, event: Event, vocabulary: Vocabulary, slot: int, role: int,
                    peak_starts: tuple[int, ...] = (), peak_ends: tuple[int, ...] = ()) -> None:
    """:func:`apply_event` with the event's ``(slot, role)`` from ``vocabulary.lookup`` already
    in hand (models.engine.advance looks it up first to decide the review: a second dict lookup
    and tuple per event saved). An event of the ``ignore`` role (not use: models.vocabulary)
    changes nothing, not even membership of the account it names. ``peak_starts``/``peak_ends``:
    the product's declared peak seasons (:func:`peak_s`; none by default): an activity event inside
    one adds nothing to ``act_90d``, which does not decay there either (still commutative: each
    event's weight is its own off-peak age)."""
    if role == IGNORE:
        return
    ts = event.ts_ms // 1000
    if event.account_id and not state.flags & ACCOUNT_MEMBER and event.account_id != event.user_id:
        state.flags |= ACCOUNT_MEMBER
    if role == SUBSCRIPTION:
        _state_period_end(state, event)  # a billing statement, not usage (models.revenue keeps the rest)
        return
    if role == CANCEL or role == CANCEL_REQUEST:
        at = _cancel_takes_effect_s(state, ts) if role == CANCEL_REQUEST else ts
        if at > state.cancelled_s:
            state.cancelled_s = at
        if state.n_events == 0:
            state.first_seen_s = state.last_seen_s = ts
        return
    if len(state.slot_counts) != 8 * vocabulary.n_slots:
        state.slot_counts = _zeros(vocabulary.n_slots)
        state.slots_at_s = state.last_seen_s if state.n_events else ts
        state.negative_names, state.negative_28d = 0, 0.0  # kept with the slots
        state.flags &= ~(GRIEVANCE | GRIEVANCE_LATEST)  # which grievances: the mask just restarted
    in_order = state.n_events == 0 or ts >= state.last_seen_s
    if state.flags & GRIEVANCE_LATEST and in_order:
        state.flags &= ~GRIEVANCE_LATEST  # a later event: last_seen_s no longer dates the grievance
    # In order (the usual case) the event adds 1.0 to every counter; a late one what is left of it.
    if state.n_events == 0:
        state.first_seen_s = ts
        state.last_seen_s = ts
        state.slots_at_s = ts
        state.active_days = 1
        w7 = w28 = w90 = 1.0
    elif ts >= state.last_seen_s:
        last = state.last_seen_s
        gap = ts - last
        if ts // DAY_S > last // DAY_S or state.flags & VISIT_CONTINUED:
            _count_visit_day(state, ts, gap)
        if gap:
            f7 = math.exp(-gap / _TAU_7_S)
            f28 = math.exp(-gap / _TAU_28_S)
            state.act_7d *= f7
            state.act_28d *= f28
            if peak_starts:  # the baseline's clock stops inside a declared peak (peak_s)
                state.act_90d *= baseline_decay(last, ts, peak_starts, peak_ends)
            else:
                state.act_90d *= math.exp(-gap / _TAU_90_S)
        state.last_seen_s = ts
        w7 = w28 = w90 = 1.0
    else:  # late (but accepted) event: it adds what is left of it today
        age = state.last_seen_s - ts
        w7, w28 = math.exp(-age / _TAU_7_S), math.exp(-age / _TAU_28_S)
        if peak_starts:
            w90 = baseline_decay(ts, state.last_seen_s, peak_starts, peak_ends)
        else:
            w90 = math.exp(-age / _TAU_90_S)
        if ts < state.first_seen_s:
            state.first_seen_s = ts
    if peak_starts and peak_s(peak_starts, peak_ends, ts, ts + 1):
        w90 = 0.0  # a day of the declared peak does not raise the baseline
    state.n_events += 1
    state.act_7d = f32(state.act_7d + w7)
    state.act_28d = f32(state.act_28d + w28)
    state.act_90d = f32(state.act_90d + w90)
    if slot >= 0:
        _add_to_slot(state, slot, ts)
    if role == NEGATIVE:
        _add_negative(state, vocabulary.negative_index(event.type), ts)
        if ((state.n_purchases or state.flags & PAYS_SUBSCRIPTION) and ts >= state.last_purchase_s
                and vocabulary.is_grievance(event.type)):
            state.flags |= (GRIEVANCE | GRIEVANCE_LATEST) if in_order else GRIEVANCE
    elif role == PURCHASE:
        amount = event.amount if event.amount > 0 else 0.0
        state.revenue += amount
        state.first_purchase_s, state.last_purchase_s, state.n_purchases = _count_day(
            state.first_purchase_s, state.last_purchase_s, state.n_purchases, ts)
        if in_order:
            state.flags &= ~(GRIEVANCE | GRIEVANCE_LATEST)  # bought again: the grievance is settled
        if state.n_recurring:  # a buyer keeps no recurring rhythm: the two share the record's bytes
            state.first_recurring_s = state.last_recurring_s = state.n_recurring = 0
    elif role == RECURRING and not state.n_purchases:  # (module docstring: not after a purchase)
        state.first_recurring_s, state.last_recurring_s, state.n_recurring = _count_day(
            state.first_recurring_s, state.last_recurring_s, state.n_recurring, ts)


def _count_visit_day(state: UserState, ts: int, gap: int) -> None:
    """An in-order activity event ``gap`` seconds after the last one, on a later UTC day than it
    or while the latest visit is :data:`VISIT_CONTINUED`: count a new active day where this event
    dates a visit on a later day than the last one counted.

    A visit (a session: events at most :data:`SESSION_S` apart) is dated by the UTC day it started
    on, so a session from 23:40 to 00:10 is one active day, as the same session at 12:40 is (QA
    pass 10 F10: it was two, which halved the user's usual interval). The flag says the day of
    ``last_seen_s`` is not counted yet (the visit that reached it started the day before): a new
    visit later that day counts it. A visit runs at most one day behind its latest event: one
    that goes on past a second midnight counts the day it covered whole and stays continued (an
    always-on client is active every day but the last, not on one day for good). The interval
    entering ``gap_ewma_days`` is, as before, the time since the last event."""
    if gap <= SESSION_S:  # the same visit
        if not state.flags & VISIT_CONTINUED:  # past midnight: dated by the day before
            state.flags |= VISIT_CONTINUED
            return
        if ts // DAY_S == state.last_seen_s // DAY_S:  # still on the day not counted
            return
    else:  # a new visit, dated by its own day
        state.flags &= ~VISIT_CONTINUED
    state.active_days += 1
    interval = gap / DAY_S
    if state.active_days == 2:
        state.gap_ewma_days = f32(interval)
    else:
        state.gap_ewma_days = f32(state.gap_ewma_days + GAP_EWMA_ALPHA * (interval - state.gap_ewma_days))


def tracked(state: UserState) -> bool:
    """Whether ``state`` is a user churnwatch scores, counts and lists: one who used the product
    (an activity event) or said they are leaving (a cancellation). A record built from
    ``subscription`` statements alone is not (QA 2026-12: an unused trial's holder was scored as
    silent since 1970, "no return for 20574 days after 0 active days", and counted "new" in the
    stage counters while live scoring said "churned"): a billing statement is no use of the
    product (:func:`apply_event`), so such a user has no activity yet, no silence to measure, no
    temperature, no stage. The record is still kept (the end of the paid period it holds is the
    risk's exit gate once activity comes, models.risk), and the account's revenue counts the
    statements (models.revenue), but every reader treats it as no user yet: ``churnwatch score``
    and the console's user page say "no activity yet" (streams.views.NoActivityYet), the bucket's
    counters leave it out (streams.worker.store.stats_delta), the backtest writes no row for it.
    The lists (models.ranking), the score history (models.weekly) and the member copies
    (models.step) skip more: every user without an activity event (``n_events`` 0), so also a
    tracked user whose only event is a cancellation.

    >>> tracked(UserState(period_end_day=20600)), tracked(UserState(n_events=1)), tracked(UserState(cancelled_s=1))
    (False, True, True)
    """
    return state.n_events > 0 or state.cancelled_s > 0


def period_end_day(period_end_ms: int) -> int:
    """The day number of a period end in ms, rounded up to a whole day (a period ending at 10:00
    is paid through that day), at most :data:`MAX_PERIOD_END_DAY`; 0 for 0 (unknown).

    >>> period_end_day(0), period_end_day(DAY_S * 1000), period_end_day(DAY_S * 1000 + 1)
    (0, 1, 2)
    """
    if period_end_ms <= 0:
        return 0
    day = -(-period_end_ms // (DAY_S * 1000))
    return day if day < MAX_PERIOD_END_DAY else MAX_PERIOD_END_DAY


def _cancel_takes_effect_s(state: UserState, ts: int) -> int:
    """When a cancel request at ``ts`` (models.vocabulary ``cancel_request``) takes effect: at the
    end of the paid period (the midnight ``period_end_day`` keeps) while the latest statement pays
    for one that ends after ``ts``, else at once. QA23a F5: a cancellation at the period end
    (Stripe's ``cancel_at_period_end``) read as one at once churned its user with a median 11 paid
    days left. Dated at that end, ``cancelled_s`` says so in the bytes it has (:func:`scheduled_cancel_s`).

    >>> paying = UserState(period_end_day=20, flags=PAYS_SUBSCRIPTION)
    >>> _cancel_takes_effect_s(paying, 3 * DAY_S) == 20 * DAY_S, _cancel_takes_effect_s(UserState(period_end_day=20), 3 * DAY_S)
    (True, 259200)
    """
    end = state.period_end_day * DAY_S
    return end if state.flags & PAYS_SUBSCRIPTION and end > ts else ts


def scheduled_cancel_s(state: UserState, now_s: int) -> int:
    """The time a scheduled cancellation takes effect (a cancel request while a paid period runs,
    :func:`_cancel_takes_effect_s`), when it is still ahead of ``now_s``; 0 when none is pending.
    Told from the state alone: ``cancelled_s`` on the very midnight the paid period ends, while
    the user pays (a cancellation at once is dated by its event, at a midnight once in 86,400
    seconds, and never ahead of the events read).

    >>> st = UserState(cancelled_s=20 * DAY_S, period_end_day=20, flags=PAYS_SUBSCRIPTION)
    >>> scheduled_cancel_s(st, 3 * DAY_S) == 20 * DAY_S, scheduled_cancel_s(st, 20 * DAY_S), scheduled_cancel_s(UserState(cancelled_s=9), 3)
    (True, 0, 0)
    """
    c = state.cancelled_s
    if c > now_s and state.flags & PAYS_SUBSCRIPTION and c == state.period_end_day * DAY_S:
        return c
    return 0


def _state_period_end(state: UserState, event: Event) -> None:
    """A ``subscription`` statement. ``active``: the end of the period paid for, the later of the
    known one and the stated one (a statement without a period end leaves the known one).
    ``cancelled``, ``past_due``, ``trial`` and an ``active`` free plan (MRR 0: nothing is paid, so
    no renewal is due; QA16 F5: a user who moved to the free plan kept the paid period's end and
    read "paid period ended 74 days ago, no renewal stated" while listening daily): unknown (0),
    the exit is open and the risk is the
    behavioural one (models.risk): a cancellation ends the contract; a failed payment arrives
    with the *next* period's end (Stripe moves ``current_period_end`` when it invoices the
    renewal), which nobody has paid for; a trial is not a paid period (docs/REVENUE.md).

    Why the later end and not the last applied: the state keeps no statement time, and the
    stream admits events up to ``allowed_lateness`` (6 h) behind its clock, so a renewal's
    statement may be applied before the older statement it replaces; the later end is the same
    whatever the order. Left: a late ``cancelled``/``past_due``/``trial`` statement applied after
    a newer ``active`` one opens the exit (the safe side: the risk is not hidden) until the next
    ``active`` statement, where one big batch in event order keeps it closed.

    :data:`PAYS_SUBSCRIPTION`: set by an ``active`` or ``past_due`` statement with an MRR above 0
    (a failed payment is still a customer under contract: the account's action is to fix the
    payment, not to sell), cleared by any other (cancelled, trial, a free plan). The last one
    applied wins: a statement applied late after a newer one says the older status until the
    next statement (the same window of at most ``allowed_lateness`` as the period end's).
    :data:`LONG_PERIOD`: of the statement whose end is kept (the later end), so it follows the end.

    ``paused`` (QA22a F1): ``period_end_day`` keeps the end of the pause (its ``period_end``, the
    resume date; :data:`MAX_PERIOD_END_DAY` when it states none), marked :data:`PAUSED` (models.signals
    ``paused_until_s``); the next statement replaces it whatever its end (a resume states its own
    paid period). A paying
    statement that ends a pause (a resume) starts a quiet period of :data:`RESUME_QUIET_S` in which
    no at-risk alert opens (``quiet_until_s``, ``alert_risk`` 1: no rise can be material): the
    viewer has not had the time to come back yet, and the silence of the pause is still in the
    counters (QA22a F2: 24 at-risk alerts "no visit for 33.6x the usual interval" at the resume's
    very second); the engine looks again at its end (models.engine).

    ``trial`` (QA23a F1, F2): :data:`TRIAL` (the period end unknown, as before); the ``cancelled``
    statement after it (a ``trial`` or a lost trial the latest) :data:`TRIAL_LOST`, a trial lost
    without paying (:func:`trial_lost`); any other statement clears both (a paying one converts
    it). Only the user's own subscription (no ``account_id``, or the user's own id): a company's
    trial stated on its billing contact's events is the account's (models.account_health's
    trial rule), not that user's. A trial after a paid plan (:data:`EVER_PAID`) is :data:`TRIAL`
    too (the reasons' "in trial"), but its cancellation is no :data:`TRIAL_LOST`: a former
    subscriber's cancellation is a customer's, judged by its use, and their churn a paying user's
    (:func:`never_paid_trial`; until 2026-12-05 the trial bits did not read :data:`EVER_PAID`).

    :data:`EVER_PAID` (QA24a F4): set with :data:`PAYS_SUBSCRIPTION` by the user's own paying
    statement, and never cleared: the user churn counts a user without it and without a purchase
    as one who never paid (:func:`never_paid`).

    A cancellation scheduled at the period end (:func:`scheduled_cancel_s`, pending at the
    statement's time): an ``active`` paying statement with a later period end withdraws it (the
    customer renewed: ``cancelled_s`` 0); one that does not pay (``cancelled``, ``past_due``,
    ``trial``, ``paused``, a free plan) makes it take effect at the statement's time (the period
    ended then: Stripe's ``canceled`` at ``current_period_end``); a restatement of the same period
    leaves it pending."""
    sub = event.subscription
    if sub is None:
        return
    never_paid = state.flags & NEVER_PAID_TRIAL
    state.flags &= ~NEVER_PAID_TRIAL
    own = not event.account_id or event.account_id == event.user_id  # a company's trial is its account's
    if sub.status == "trial" and own:  # QA23a: in trial (models.reasons); lost if cancelled before a paying statement
        state.flags |= TRIAL
    elif sub.status == "cancelled" and never_paid and own and not state.flags & EVER_PAID:  # a former payer's: a customer's
        state.flags |= TRIAL_LOST
    ts = event.ts_ms // 1000
    if scheduled_cancel_s(state, ts):  # a cancellation scheduled at the period end, pending
        if sub.status == "active" and sub.mrr_cents > 0:
            if sub.period_end_ms > 0 and period_end_day(sub.period_end_ms) > state.period_end_day:
                state.cancelled_s = 0  # renewed past it: the request was withdrawn
        else:
            state.cancelled_s = ts  # the period ended now (cancelled, or no longer paid): the cancellation with it
    if paused(state.flags):  # a pause's end (below) is no paid period's: a resume states its own
        if sub.mrr_cents > 0 and sub.status != "paused":  # a resume (below)
            state.quiet_until_s = max(state.quiet_until_s, event.ts_ms // 1000 + RESUME_QUIET_S)
            state.alert_risk = 1.0
        state.period_end_day = 0
        state.flags &= ~PAUSED
    if sub.mrr_cents > 0 and (sub.status == "active" or sub.status == "past_due"):
        state.flags |= PAYS_SUBSCRIPTION | EVER_PAID if own else PAYS_SUBSCRIPTION  # ever paid: their own plan (QA24a F4)
    else:
        state.flags &= ~PAYS_SUBSCRIPTION
    if sub.status == "paused":  # QA22a F1: the end of the pause, marked PAUSED (models.signals)
        state.period_end_day = period_end_day(sub.period_end_ms) if sub.period_end_ms > 0 else MAX_PERIOD_END_DAY
        state.flags |= PAUSED
    elif sub.status != "active" or sub.mrr_cents <= 0:  # a free plan pays no period (QA16 F5)
        state.period_end_day = 0
        state.flags &= ~LONG_PERIOD
    elif sub.period_end_ms > 0 and (day := period_end_day(sub.period_end_ms)) >= state.period_end_day:
        state.period_end_day = day  # the later end, and its period's length
        if sub.period_end_ms - event.ts_ms > LONG_PERIOD_S * 1000:
            state.flags |= LONG_PERIOD
        else:
            state.flags &= ~LONG_PERIOD


def _count_day(first: int, last: int, n: int, ts: int) -> tuple[int, int, int]:
    """(first, last, n) of a rhythm after its event at ``ts``: of the purchases (``n_purchases``
    and their times) or of a recurring event (``n_recurring``, module docstring), counted alike.
    A purchase at ``ts``: ``n_purchases`` counts distinct UTC days with a purchase (the repeat
    purchase *periods* of Fader, Hardie & Lee 2005 and lifetimes' ``freq='D'``: three CDs bought
    on one day are one transaction), the day of ``ts // DAY_S``: a UTC date, not the visit day
    ``active_days`` counts (two purchases of one visit either side of midnight are two days).

    A purchase on a later day than the last one, or an earlier day than the first, is a new day.
    One on the first or the last purchase day is not. A late one on a day strictly between them
    is not counted either: the state cannot tell whether that day already has a purchase, so it
    keeps the lower count (as ``active_days`` does for late events). In event order the count is
    exact, and it never counts one purchase twice: a redelivered or duplicated purchase falls
    on a day already counted. Invariant: 1 <= n_purchases <= days from first to last purchase
    + 1, and n_purchases == 1 only when both fall on one day."""
    day = ts // DAY_S
    if n == 0:
        return ts, ts, 1
    if ts >= last:
        return first, ts, n + 1 if day > last // DAY_S else n
    if ts < first:
        return ts, last, n + 1 if day < first // DAY_S else n
    return first, last, n
