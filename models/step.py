"""One user's turn in a worker cycle, stored record in, record out: compiled with the scoring core.

Why here: the worker advances every user with events or a due review once a cycle, and the glue
around ``advance`` (read the record, the index scores, the due entry, write the record) ran as
Python between compiled calls, one interpreter round trip, boxed value and short-lived object
after another. Here it is one compiled call per user (measured: -2% of ``advance_users`` and
about -3% of the cycle, within the shared box's noise: the glue was not the cost, docs/SCALING.md); streams/worker/phases.py keeps what touches the write's layout
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

__all__ = ["NO_ALERTS", "NO_POINTS", "Step", "advance_stored", "index_scores"]

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
    last event, and a user without events is skipped), and say what to write (:data:`Step`).
    ``history``: also the console's weekly points (models.weekly.advance_sampled)."""
    old: UserState | None = None
    error = ""
    if blob:
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
    if history:  # advance(...) + the console's weekly points
        outcome, points = advance_sampled(user_id, old, events, until_ms, model)
    else:
        outcome = advance(user_id, old, events, until_ms, model)
    if outcome.expire:
        return old, None, None, 0, None, None, 0.0, points, outcome.alerts, True, False, error
    st = outcome.state
    risk, reach, alert_risk = index_scores(old, st, until_ms, model, outcome.review, float(unchanged))
    due_s = unchanged if old is not None and old.next_review_s == st.next_review_s else st.next_review_s
    return old, st, st.to_bytes(), due_s, risk, reach, alert_risk, points, outcome.alerts, False, False, error
