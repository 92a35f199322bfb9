"""One user's turn in a worker cycle, stored record in, record out: compiled with the scoring core.

Why here: the worker advances every user with events or a due review once a cycle, and the glue
around ``advance`` (read the record, the index scores, the due entry, write the record) ran as
Python between compiled calls, one interpreter round trip, boxed value and short-lived object
after another: about a fifth of the worker's CPU with the realistic workload (py-spy). Here it
is one compiled call per user; streams/worker/phases.py keeps what touches the write's layout
(stats, alerts, the console's lists). Pure: bytes and states in, bytes and scores out.
"""

from __future__ import annotations

from typing import Final, Sequence

from models.engine import Alert, advance
from models.events import Event
from models.model import ChurnModel
from models.ranking import index_score, on_save_list, save_bound, save_bound_after
from models.scoring import Assessment, assess
from models.state import UserState
from models.weekly import advance_sampled

__all__ = ["NO_POINTS", "Step", "advance_stored", "index_scores"]

#: No score-history points (shared: never appended to).
NO_POINTS: Final[list[bytes]] = []


class Step:
    """What :func:`advance_stored` gave for one user. ``blob`` is the record to store (None: delete
    the user: expired, or a due entry left without a state); ``due_s``, ``risk`` and ``reach`` as
    ``streams.worker.store.StateWrite`` takes them (``unchanged``: leave as stored); ``old`` and
    ``state`` the states before and after (None: none stored / expired) for the bucket's
    counters; ``skip``: nothing to write (no review clock and no events); ``error``: why the
    stored record could not be read (the user then starts afresh), else ""."""

    __slots__ = ("old", "state", "blob", "due_s", "risk", "reach", "alert_risk", "points", "alerts", "expire", "skip",
                 "error")

    def __init__(self, old: UserState | None, error: str) -> None:
        self.old = old
        self.state: UserState | None = None
        self.blob: bytes | None = None
        self.due_s = 0
        self.risk: float | None = None
        self.reach: float | None = None
        self.alert_risk = 0.0
        self.points: list[bytes] = NO_POINTS
        self.alerts: list[Alert] = []
        self.expire = False
        self.skip = False
        self.error = error


def index_scores(old: UserState | None, st: UserState, until_ms: int, model: ChurnModel,
                 review: Assessment | None, unchanged: float) -> tuple[float | None, float | None, float]:
    """The user's scores in the at-risk ranking and in the save-list index (``StateWrite.risk``,
    ``.reach``; models.ranking.index_score and save_bound): None where the user is not in it,
    ``unchanged`` where it was not there before either; and the risk of the open at-risk alert's
    last review (``StateWrite.alert_risk``, 0 without an open alert).
    ``review``: the assessment of the review that left ``st`` (``models.engine.Outcome.review``),
    whose signals give the index's bound without scoring the user again (about 1.2 us a user),
    and the ranking's score and the risk exactly: that review assessed the user at
    ``st.last_review_s``, and a review changes none of what they read (only stage fields, which
    they read just to say "dormant" or "churned", verdicts that do not depend on them)."""
    risk: float | None = None
    alert_risk = 0.0
    if st.at_risk_since_s:
        a = review if review is not None else assess(st, st.last_review_s or until_ms // 1000, model)
        risk, alert_risk = index_score(a, model), a.risk
    elif old is not None and not old.at_risk_since_s:
        risk = unchanged  # not in the ranking before either
    reach: float | None = None
    if on_save_list(st):
        reach = save_bound(st, model) if review is None else save_bound_after(review, st, model)
    elif old is not None and not on_save_list(old):
        reach = unchanged
    return risk, reach, alert_risk


def advance_stored(user_id: str, blob: bytes | None, events: Sequence[Event], until_ms: int, has_until: bool,
                   model: ChurnModel, history: bool, unchanged: int) -> Step:
    """Advance the user stored as ``blob`` (None or empty: not stored) with ``events`` to
    ``until_ms``, its partition's review clock (``has_until`` False: no clock yet, then up to its
    last event, and a user without events is skipped), and say what to write.
    ``history``: also the console's weekly points (models.weekly.advance_sampled)."""
    old: UserState | None = None
    error = ""
    if blob:
        try:
            old = UserState.from_bytes(blob)
        except ValueError as exc:
            error = str(exc)
    out = Step(old, error)
    if not has_until:
        if not events:
            out.skip = True
            return out
        until_ms = max([ev.ts_ms for ev in events])
    if old is None and not events:  # a due entry without a state: clean it up
        return out
    if history:  # advance(...) + the console's weekly points
        outcome, points = advance_sampled(user_id, old, events, until_ms, model)
        out.points = points
    else:
        outcome = advance(user_id, old, events, until_ms, model)
    out.alerts = outcome.alerts
    if outcome.expire:
        out.expire = True
        return out
    st = outcome.state
    out.state = st
    risk, reach, alert_risk = index_scores(old, st, until_ms, model, outcome.review, float(unchanged))
    out.risk, out.reach, out.alert_risk = risk, reach, alert_risk
    out.due_s = unchanged if old is not None and old.next_review_s == st.next_review_s else st.next_review_s
    out.blob = st.to_bytes()
    return out
