"""The one entry point the stream and the backtest share: advance a user to an event time.

``advance`` folds a user's events into the state in event-time order and, like a Kafka Streams
punctuation but per user and on event time, *reviews* the user whenever its ``next_review_s``
comes due: before an event that is later than the due time, and at the end up to the caller's
watermark. A review scores the user at the due time itself (not at the moment the sweep ran), so
the result does not depend on how the events were cut into batches or how late a sweep ran.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Literal

from models.events import Event
from models.model import ChurnModel
from models.state import DAY_S, STAGES, Stage, UserState, apply_event
from models.scoring import Scores, score

__all__ = ["Alert", "AlertKind", "Outcome", "advance", "alert_id"]

AlertKind = Literal["at_risk", "recovered", "stage_changed"]
ALERT_SCHEMA = "churnwatch-alert/1"


@dataclass(frozen=True, slots=True)
class Alert:
    """A change worth telling the CRM. Delivered at least once: ``alert_id`` is stable across
    replays (it depends only on user, kind, stage and the event time it refers to), so
    consumers de-duplicate on it."""

    alert_id: str
    kind: AlertKind
    user_id: str
    event_time_ms: int
    scores: Scores
    previous_stage: Stage | None = None

    def to_dict(self) -> dict[str, object]:
        s = self.scores
        return {
            "schema": ALERT_SCHEMA,
            "delivery": "at-least-once; de-duplicate on alert_id",
            "alert_id": self.alert_id,
            "kind": self.kind,
            "user_id": self.user_id,
            "event_time_ms": self.event_time_ms,
            "risk": round(s.risk, 4),
            "health": round(s.health, 1),
            "temperature": round(s.temperature, 1),
            "stage": s.stage,
            "previous_stage": self.previous_stage,
            "segment": s.segment,
            "action": s.action,
            "reasons": list(s.reasons),
        }


@dataclass(slots=True)
class Outcome:
    """What ``advance`` returns: the new state, the alerts it raised, and whether the state may be
    dropped from the store (churn reported and silent past the retention period)."""

    state: UserState
    alerts: list[Alert] = field(default_factory=list)
    expire: bool = False


def alert_id(user_id: str, kind: str, detail: str, event_time_ms: int) -> str:
    """Stable id: the same user, kind, detail and event time give the same id in every replay.

    >>> alert_id("u1", "at_risk", "", 1000) == alert_id("u1", "at_risk", "", 1000)
    True
    """
    digest = hashlib.blake2b(f"{user_id}\x1f{kind}\x1f{detail}\x1f{event_time_ms}".encode(), digest_size=12)
    return digest.hexdigest()


def advance(
    user_id: str,
    state: UserState | None,
    events: Iterable[Event],
    until_ms: int,
    model: ChurnModel,
) -> Outcome:
    """Apply ``events`` (any order) and every review due at or before ``until_ms``.

    Events are applied in ``(ts_ms, event_id)`` order; a review due strictly before an event's
    time runs before that event. The first event of each new active day is also a review point,
    so coming back (recovered, reactivated) is noticed on the event that shows it.
    """
    st = state.copy() if state is not None else UserState()
    out = Outcome(st)
    for ev in sorted(events, key=Event.sort_key.fget):  # type: ignore[arg-type]
        ts_s = ev.ts_ms // 1000
        _run_due_reviews(user_id, st, ts_s - 1, model, out)
        new_day = st.n_events == 0 or ts_s // DAY_S > st.last_seen_s // DAY_S
        apply_event(st, ev)
        if new_day or ev.type in ("cancel", "purchase"):
            _review(user_id, st, ts_s, model, out)
    _run_due_reviews(user_id, st, until_ms // 1000, model, out)
    out.expire = _expired(st, until_ms // 1000, model)
    return out


def _run_due_reviews(user_id: str, st: UserState, upto_s: int, model: ChurnModel, out: Outcome) -> None:
    # Bounded: each review moves next_review_s strictly forward, at most review_interval apart,
    # so a long silence costs (silence / review_interval) reviews. Silence long past churn stops
    # scheduling (next_review_s = 0) so a dead user costs nothing.
    while st.n_events and 0 < st.next_review_s <= upto_s:
        _review(user_id, st, st.next_review_s, model, out)


def _review(user_id: str, st: UserState, now_s: int, model: ChurnModel, out: Outcome) -> None:
    scores = score(st, now_s, model)
    now_ms = now_s * 1000
    new_stage = STAGES.index(scores.stage)
    if new_stage != st.stage or st.stage_since_s == 0:
        previous: Stage | None = STAGES[st.stage] if st.stage_since_s else None
        st.stage = new_stage
        st.stage_since_s = now_s
        if previous is not None:
            out.alerts.append(
                Alert(alert_id(user_id, "stage_changed", scores.stage, now_ms), "stage_changed", user_id, now_ms, scores, previous)
            )
    if st.at_risk_since_s == 0 and scores.risk >= model.risk_enter and scores.stage != "churned":
        st.at_risk_since_s = now_s
        out.alerts.append(Alert(alert_id(user_id, "at_risk", "", now_ms), "at_risk", user_id, now_ms, scores))
    elif st.at_risk_since_s and scores.risk <= model.risk_exit:
        st.at_risk_since_s = 0
        out.alerts.append(Alert(alert_id(user_id, "recovered", "", now_ms), "recovered", user_id, now_ms, scores))
    st.last_review_s = now_s
    st.next_review_s = _next_review(st, now_s, model)


def _next_review(st: UserState, now_s: int, model: ChurnModel) -> int:
    """When to look again with no new events: daily while anything can still change."""
    silence_days = (now_s - st.last_seen_s) / DAY_S
    if STAGES[st.stage] == "churned" and silence_days > model.churned_days + model.retention_days:
        return 0
    return now_s + max(1, int(model.review_interval_days * DAY_S))


def _expired(st: UserState, now_s: int, model: ChurnModel) -> bool:
    if STAGES[st.stage] != "churned" or st.stage_since_s == 0:
        return False
    return now_s - st.stage_since_s >= model.retention_days * DAY_S
