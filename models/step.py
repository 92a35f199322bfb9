"""One user's turn in a worker cycle, stored record in, record out: compiled with the scoring core.

Why here: the worker advances every user with events or a due review once a cycle, and the glue
around ``advance`` (read the record, the index scores, the due entry, write the record) ran as
Python between compiled calls, one interpreter round trip, boxed value and short-lived object
after another. Here it is one compiled call per user (measured: -2% of ``advance_users`` and
about -3% of the cycle, within the shared box's noise: the glue was not the cost, docs/SCALING.md); streams/worker/phases.py keeps what touches the write's layout
(stats, alerts, the console's lists). Pure: bytes and states in, bytes and scores out.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Final, Sequence

from models.compiled import CompiledModel
from models.engine import Alert, Mark, advance, review_due_s
from models.events import Event
from models.intake import UserBatch
from models.model import ChurnModel
from models.ranking import index_score, on_save_list, reach_index_score, save_bound, save_bound_after
from models.scoring import Assessment, assess
from models.signals import _decay_and_trends
from models.state import DAY_S, STAGES, UserState, tracked
from models.vocabulary import CANCEL, IGNORE, SUBSCRIPTION

_CHURNED: Final[int] = STAGES.index("churned")
from models.weekly import advance_sampled

__all__ = ["NO_ALERTS", "NO_POINTS", "STAGE_KEYS", "Step", "Todo", "Version", "advance_stored", "bucket_todo", "count_delta",
           "frame_args", "index_scores", "mark_versions", "queue_alerts", "same_counts", "state_args"]

#: No score-history points, no alerts (shared: never appended to).
NO_POINTS: Final[list[bytes]] = []
NO_ALERTS: Final[list[Alert]] = []


#: What :func:`advance_stored` gives for one user, as one tuple (the worker unpacks it in one step;
#: a compiled object's attributes are one getter call each from Python):
#: ``(old, state, blob, due_s, risk, reach, alert_risk, points, alerts, expire, skip, error)``.
#: ``blob`` is the record to store (None: delete the user: expired, or a due entry left without a
#: state); ``due_s``, ``risk`` and ``reach`` as ``streams.worker.store.StateWrite`` takes them
#: (``unchanged``: leave as stored); ``old`` and ``state`` the states before and after (None: none
#: stored / expired) for the bucket's counters; ``skip``: nothing to write (no review clock and no
#: events); ``error``: why the stored record could not be read (the user then starts afresh), else "".
Step = tuple[UserState | None, UserState | None, bytes | None, int, float | None, float | None, float, list[bytes],
             list[Alert], bool, bool, str]


def index_scores(old: UserState | None, st: UserState, until_ms: int, model: ChurnModel,
                 review: Assessment | None, unchanged: float,
                 c: CompiledModel | None = None) -> tuple[float | None, float | None, float]:
    """The user's scores in the at-risk ranking and in the save-list index (``StateWrite.risk``,
    ``.reach``; models.ranking.index_score and save_bound): None where the user is not in it,
    ``unchanged`` where it was not there before either; and the risk of the open at-risk alert's
    last review (``StateWrite.alert_risk``, 0 without an open alert).
    ``review``: the assessment of the review that left ``st`` (``models.engine.Outcome.review``),
    whose signals give the index's bound without scoring the user again (about 1.2 us a user),
    and the ranking's score and the risk exactly: that review assessed the user at
    ``st.last_review_s``, and a review changes none of what they read (only stage fields, which
    they read just to say "dormant" or "churned", verdicts that do not depend on them).
    ``c``: ``model.compiled`` where the caller holds it."""
    risk: float | None = None
    alert_risk = 0.0
    if st.at_risk_since_s:
        a = review if review is not None else assess(st, st.last_review_s or until_ms // 1000, model)
        risk, alert_risk = index_score(a, model), a.risk
    elif old is not None and not old.at_risk_since_s:
        risk = unchanged  # not in the ranking before either
    reach: float | None = None
    if on_save_list(st):
        reach = save_bound(st, model, c) if review is None else save_bound_after(review, st, model, c)
    elif old is not None and not on_save_list(old):
        reach = unchanged
    return risk, reach, alert_risk


def advance_stored(user_id: str, blob: bytes | None, events: Sequence[Event], until_ms: int, has_until: bool,
                   model: ChurnModel, history: bool, unchanged: int, period_ms: int = 0,
                   marks: list[Mark] | None = None) -> Step:
    """Advance the user stored as ``blob`` (None: not stored; an empty record is stored but
    unreadable, so what it added to the counters and indexes is taken off) with ``events`` to
    ``until_ms``, its partition's review clock (``has_until`` False: no clock yet, then up to its
    last event, and a user without events is skipped), and say what to write (:data:`Step`).
    ``history``: also the console's weekly points (models.weekly.advance_sampled). ``period_ms``,
    ``marks``: ``models.engine.advance``'s, the states a user's member copies are made of
    (streams.worker.members), taken in the same pass."""
    old: UserState | None = None
    error = ""
    if blob is not None:
        try:
            old = UserState.from_bytes(blob)
        except ValueError as exc:
            error = str(exc)
    if not has_until:
        if not events:
            return old, None, None, 0, None, None, 0.0, NO_POINTS, NO_ALERTS, False, True, error
        until_ms = max([ev.ts_ms for ev in events])
    if old is None and not events:  # a due entry without a state: clean it up
        return old, None, None, 0, None, None, 0.0, NO_POINTS, NO_ALERTS, False, False, error
    points = NO_POINTS
    c = model.compiled  # once per user (a generic attribute lookup), handed to each part that reads it
    if history:  # advance(...) + the console's weekly points
        outcome, points = advance_sampled(user_id, old, events, until_ms, model, period_ms, marks, c)
    else:
        outcome = advance(user_id, old, events, until_ms, model, period_ms, marks, c)
    if outcome.expire:
        return old, None, None, 0, None, None, 0.0, points, outcome.alerts, True, False, error
    st = outcome.state
    risk, reach, alert_risk = index_scores(old, st, until_ms, model, outcome.review, float(unchanged), c)
    due_s = review_due_s(st)  # the next review, or the end of a held stage change's hold when sooner
    if old is not None and review_due_s(old) == due_s:
        due_s = unchanged
    return old, st, st.to_bytes(), due_s, risk, reach, alert_risk, points, outcome.alerts, False, False, error


def same_counts(old: UserState | None, new: UserState | None) -> bool:
    """``old`` and ``new`` (None: no state) alike in all that the bucket counters count
    (streams.worker.store.stats_delta, which then adds nothing but its alerts' churn): neither
    tracked (models.state.tracked), or both with the same stage, at-risk flag and save-list
    place (models.ranking.on_save_list) and no first activity arriving. The worker no longer
    asks: it calls :func:`count_delta`, compiled, for every user (docs/SCALING.md, ``shellspeed``);
    tests/test_store.py still pins what it says against ``stats_delta``."""
    was = old is not None and tracked(old)
    now = new is not None and tracked(new)
    if not was or not now:
        return was == now
    assert old is not None and new is not None
    return (old.stage == new.stage and (old.at_risk_since_s == 0) == (new.at_risk_since_s == 0)
            and on_save_list(old) == on_save_list(new) and (old.first_seen_s != 0 or new.first_seen_s == 0))


_CRC32: Final = zlib.crc32  # (held: a module attribute looked up per call otherwise)


def locate(user_id: str, buckets: int, groups: int) -> tuple[int, int]:
    """``(bucket, group)`` of a user in the store's layout (streams.worker.keys.locate, which is this):
    ``h = crc32(utf-8)``, ``b = h % B``, ``g = (h // B) % G``."""
    h: int = _CRC32(user_id.encode("utf-8", "surrogatepass"))
    return h % buckets, (h // buckets) % groups


def locate_users(users: dict[str, UserBatch], buckets: int,
                 groups: int) -> dict[int, tuple[dict[int, int | None], list[tuple[int, str]]]]:
    """The batch's users by bucket, for streams.worker.phases.plan_reads: ``bucket -> (the
    partitions of its users, each once, in order of first use, mapped to None; its users as (group,
    user id) in batch order)``, buckets in order of their first user. Compiled: as Python, the
    per-user lookup, hash and appends were most of planning a cycle's reads (docs/SCALING.md)."""
    out: dict[int, tuple[dict[int, int | None], list[tuple[int, str]]]] = {}
    for uid, ub in users.items():
        h: int = _CRC32(uid.encode("utf-8", "surrogatepass"))
        b = h % buckets
        got = out.get(b)
        if got is None:
            got = out[b] = ({}, [])
        parts, located = got
        p = ub.partition
        if p not in parts:
            parts[p] = None
        located.append(((h // buckets) % groups, uid))
    return out


#: A user to advance in a worker cycle: (group, partition, stored record, new events). A tuple, not
#: an object: one is made per user and cycle.
Todo = tuple[int, int, "bytes | None", Sequence[Event]]


def bucket_todo(users: list[tuple[int, str]], blobs: list[bytes | None], batches: dict[str, UserBatch],
                fences: dict[int, int], todo: dict[str, Todo]) -> int:
    """Put each of a bucket's users with events into ``todo`` (``uid -> (group, partition, record,
    events)``; ``users`` and ``blobs`` side by side, as far as both go), minus the events at or
    below ``fences[p]`` (the bucket's stored offset of p, given only for a partition where it can
    drop any: the replay fence); returns how many it dropped. streams.worker.phases._bucket_todo's
    per-user loop, compiled: a tuple, a dict entry and a few reads per user, which as Python cost
    about as much as the loop around the step (docs/SCALING.md)."""
    skipped = 0
    n = min(len(users), len(blobs))
    for i in range(n):
        g, uid = users[i]
        ub = batches[uid]
        p = ub.partition
        events: Sequence[Event] = ub.events
        if fences and p in fences:
            fence = fences[p]
            offsets = ub.offsets
            if fence >= offsets[0]:
                kept = [ev for ev, off in zip(ub.events, offsets) if off > fence]
                skipped += len(ub.events) - len(kept)
                events = kept
        todo[uid] = (g, p, blobs[i], events)
    return skipped


#: The bucket counters' field of each stage's count (``stage:<name>``), by stage index.
STAGE_KEYS: Final[tuple[str, ...]] = tuple("stage:" + name for name in STAGES)


def _add(out: dict[str, Any], key: str, n: int) -> None:
    out[key] = out.get(key, 0) + n


def count_delta(old: UserState | None, new: UserState | None, alerts: list[Alert], out: dict[str, Any],
                day_name: Callable[[int], str]) -> None:
    """``streams.worker.store.stats_delta`` (its docstring says what each counter counts), compiled:
    the worker runs it for every user it writes, and as Python it was the largest part of the
    shell around the step after the alerts (docs/SCALING.md). ``day_name``: ``store.day_name``
    (``yyyymmdd`` of a UTC day, days since 1970-01-01). Counts stay ints (as ``out.get(k, 0) + 1`` left them);
    a churn's revenue is added as a float."""
    if old is not None and not tracked(old):
        old = None  # counted nothing: what `new` adds is all of it (first-seen day included)
    if new is not None and not tracked(new):
        new = None  # (a stored state never loses its activity: only a record that was never counted)
    if old is not None and new is not None:
        if old.stage != new.stage:
            _add(out, STAGE_KEYS[old.stage], -1)
            _add(out, STAGE_KEYS[new.stage], 1)
        if (not old.at_risk_since_s) != (not new.at_risk_since_s):
            _add(out, "at_risk", 1 if new.at_risk_since_s else -1)
        listed = on_save_list(new)
        if on_save_list(old) != listed:
            _add(out, "reachable", 1 if listed else -1)
        if not old.first_seen_s and new.first_seen_s:
            _add(out, "new:" + day_name(new.first_seen_s // DAY_S), 1)
    elif old is not None:
        _add(out, "users", -1)
        _add(out, STAGE_KEYS[old.stage], -1)
        if old.at_risk_since_s:
            _add(out, "at_risk", -1)
        if on_save_list(old):
            _add(out, "reachable", -1)
    elif new is not None:
        _add(out, "users", 1)
        _add(out, STAGE_KEYS[new.stage], 1)
        if new.at_risk_since_s:
            _add(out, "at_risk", 1)
        if on_save_list(new):
            _add(out, "reachable", 1)
        if new.first_seen_s:
            _add(out, "new:" + day_name(new.first_seen_s // DAY_S), 1)
    if not alerts:
        return
    for alert in alerts:
        if alert.kind == "stage_changed" and alert.scores.stage == "churned":
            day = day_name(alert.event_time_ms // 1000 // DAY_S)
            _add(out, "churned:" + day, 1)
            k = "churned_rev:" + day
            out[k] = out.get(k, 0.0) + float(alert.revenue)


def state_args(states: list[Any], unchanged: int) -> tuple[list[object], list[bytes]]:
    """A bucket write's states as lua/write_batch.lua takes them (streams.worker.store.Store._write_calls):
    six values a state, flat, for one JSON array (group, user id, due field, due second, risk or ""
    (None) or "=" (``unchanged``), the save-list index's score or "" or "="), and the records apart
    (b"" for None: delete the user). ``states``: ``streams.worker.store.StateWrite`` objects (read
    by name: any object with those attributes). Compiled: as Python this loop, a tuple per state
    and the score's call were ~5k instructions a state written (docs/SCALING.md, ``packcost``)."""
    n = len(states)
    flat: list[object] = [None] * (6 * n)  # (sized once: no growth by appends)
    records: list[bytes] = [b""] * n
    i = 0
    for k in range(n):
        s = states[k]
        risk: Any = s.risk
        reach: Any = s.reach
        blob: Any = s.blob
        flat[i] = s.group
        flat[i + 1] = s.user_id
        flat[i + 2] = s.due_field
        flat[i + 3] = s.due_s
        flat[i + 4] = "" if risk is None else "=" if risk == unchanged else risk
        flat[i + 5] = "" if reach is None else "=" if reach == unchanged else reach_index_score(reach)
        if blob is not None:
            records[k] = blob
        i += 6
    return flat, records


def frame_args(calls: list[Any], convert: Callable[[Any], bytes]) -> tuple[list[int], list[int], bytes]:
    """One packed call of lua/buckets.lua (streams.worker.store._driver_call): ``(shape, lengths,
    text)``: each bucket's number of keys and arguments, then every key and argument of every bucket
    in order as bytes (bytes as they are, str as UTF-8, anything else through ``convert``:
    ``store._as_bytes``, as redis-py encodes it), their lengths and their concatenation. ``calls``:
    ``store._BucketCall`` objects (``keys``, ``args``). Compiled: as Python, two comprehensions
    and a type test per item were ~1k instructions an item (a state's record, an alert's entry)."""
    shape: list[int] = []
    lengths: list[int] = []
    chunks: list[Any] = []
    for c in calls:
        keys: list[Any] = c.keys
        args: list[Any] = c.args
        shape.append(len(keys))
        shape.append(len(args))
        for items in (keys, args):
            for x in items:
                if type(x) is bytes:
                    b: Any = x
                elif type(x) is str:
                    b = x.encode()
                else:
                    b = convert(x)
                lengths.append(len(b))
                chunks.append(b)
    return shape, lengths, b"".join(chunks)


#: A user alert's entry in its console list (``streams.worker.alert_log.entry``): the alert's reasons kept.
_ENTRY_REASONS: Final[int] = 3


def queue_alerts(uid: str, group: int, alerts: list[Alert], expire: bool, partition: int, alerts_from_ms: int,
                 logged_kinds: frozenset[str], logged_stages: frozenset[str],
                 entries: list[tuple[int, str, str, bytes]], records: list[tuple[bytes, bytes]],
                 kinds: dict[str, int], withheld: dict[tuple[int, str], int], dumps: Callable[[Any], bytes]) -> None:
    """A user's alerts as records for the alerts topic (``records``: key, JSON of ``to_dict``) and,
    those worth it, as entries of its console list (``entries``: group, user, alert id,
    ``streams.worker.alert_log.entry``'s bytes; none for a user deleted in this write,
    ``expire``); ``kinds`` counts the records by kind. An alert of an event time before
    ``alerts_from_ms`` (``Settings.alerts_from_ms``: an onboarded export's first weeks, QA14 F9)
    is counted in ``withheld`` by ``(partition, kind)`` instead of queued; its entry is kept, as
    the state keeps the alert. Which alerts the list keeps is ``alert_log.logged_kind``'s rule,
    given as data: ``logged_kinds``, and stage changes into ``logged_stages``. ``dumps``: the
    shell's JSON encoder (``orjson.dumps``), handed in as ``frame_args`` is handed its converter:
    models/ imports no serialization library (tests/test_models_purity.py).

    Why here: the shell's hand-off of an alert (a Python loop, ``logged_kind`` and the entry's
    row as Python calls on the alert's dict) was ~7k instructions an alert besides ``to_dict``
    and the two dumps (docs/SCALING.md); the worker calls this once per user with alerts."""
    key = uid.encode()
    for alert in alerts:
        d = alert.to_dict()
        kind = alert.kind
        if not expire and (kind in logged_kinds or (kind == "stage_changed" and alert.scores.stage in logged_stages)):
            risk = d["risk"]
            reasons = alert.scores.reasons
            entries.append((group, uid, alert.alert_id, dumps(
                [alert.alert_id, kind, alert.event_time_ms, alert.scores.stage, risk if risk else 0.0,
                 list(reasons[:_ENTRY_REASONS])])))
        if alert.event_time_ms < alerts_from_ms:
            wk = (partition, kind)
            withheld[wk] = withheld.get(wk, 0) + 1
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        records.append((key, dumps(d)))


#: A member copy's version as numbers, ``(time ms, last seen s, stage index, open alert's risk,
#: act_28d, its 13-week base)``: streams.worker.members makes the ``models.account_health.Member``.
Version = tuple[int, int, int, float, float, float]


def mark_versions(marks: list[Mark], events: Sequence[Event], model: ChurnModel, period_ms: int) -> list[Version]:
    """A :data:`Version` per mark (``models.engine.Mark``, taken over ``events`` per ``period_ms``)
    of a period in which the user was seen: as of its last event there, dated at its first
    activity there floored to the second. Here, not in the shell: a version per user and cycle
    made in Python cost about as much as the user's step (measured: benchmarks/member_versions.py).
    Periods with only billing statements give none; a period with only a cancellation gives one
    when it leaves the user churned (QA16 F11: the account must hear that its member left, not
    take the cancellation for a last visit), dated at the cancellation, last seen as before."""
    out: list[Version] = []
    if not marks:
        return out
    vocabulary = model.compiled.vocabulary
    first: dict[int, int] = {}  # period -> its first activity's time
    cancels: dict[int, int] = {}  # period -> its first cancellation's time
    for ev in events:
        role = vocabulary.lookup(ev.type)[1]
        if role != SUBSCRIPTION and role != IGNORE:
            ts = ev.ts_ms
            period = ts // period_ms
            at = cancels if role == CANCEL else first
            if period not in at or ts < at[period]:
                at[period] = ts
    for period, st, review in marks:
        if not st.n_events:
            continue
        if st.last_seen_s * 1000 // period_ms != period:  # not seen in this period (a statement; or events older than the state)
            if period not in cancels or st.stage != _CHURNED:
                continue
            first_ms = cancels[period] // 1000 * 1000  # a cancellation that left the user churned
        else:
            first_ms = first[period] // 1000 * 1000 if period in first else st.last_seen_s * 1000
        # the risk of the user's open at-risk alert at its last review (StateWrite.alert_risk, index_scores),
        # 0 while none is open: the ranking's score is not a risk
        risk = 0.0
        if st.at_risk_since_s:
            risk = (review if review is not None else assess(st, st.last_review_s, model)).risk
        # compute_signals(st, st.last_seen_s, model)'s act_28d and trend_long, by the same function
        # it takes them from, without the rest of the signals (most of the cost of a version)
        _, _, _, f28, _, _, trend_long = _decay_and_trends(st, st.last_seen_s)
        act = st.act_28d * f28
        base = act / trend_long if trend_long > 0 else act
        out.append((first_ms, st.last_seen_s, st.stage, risk, act, base))
    return out
