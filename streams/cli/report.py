"""CRM reports from Redis: ``churnwatch score USER``, ``churnwatch top``, ``churnwatch churn-rate``.

All three read through the store's read API (``streams.worker.store.StoreReader``) and score with the
same pure ``models.scoring.score`` the workers use. "Now" is the *stream time* of the events
topic, the largest event time any worker has applied (Redis progress), never the wall clock:
a replay of last year's history reports as of last year, and a stalled stream does not make
everybody look dormant.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import orjson

from models.model import ChurnModel, load_model
from models.scoring import Scores, score
from models.state import UserState
from streams.cli import UserError
from streams.settings import Settings, redact_url
from streams.offline.simulate import format_ts, positive_int
from streams.worker.store import StoreReader

__all__ = [
    "UserReport",
    "add_churn_rate_arguments",
    "add_score_arguments",
    "add_top_arguments",
    "churn_rate",
    "run_churn_rate",
    "run_score",
    "run_top",
    "stream_time_ms",
    "top_users",
    "user_report",
]


@dataclass(frozen=True, slots=True)
class UserReport:
    """One user's live scores plus the few facts a CRM agent asks for first."""

    user_id: str
    as_of_ms: int
    scores: Scores
    state: UserState

    def to_dict(self) -> dict[str, Any]:
        s, st = self.scores, self.state
        return {
            "user_id": self.user_id,
            "as_of": format_ts(self.as_of_ms),
            "risk": round(s.risk, 4),
            "health": round(s.health, 1),
            "temperature": round(s.temperature, 1),
            "stage": s.stage,
            "segment": s.segment,
            "action": s.action,
            "reasons": list(s.reasons),
            "first_seen": format_ts(st.first_seen_s * 1000) if st.first_seen_s else None,
            "last_seen": format_ts(st.last_seen_s * 1000) if st.last_seen_s else None,
            "events": st.n_events,
            "active_days": st.active_days,
            "purchases": st.n_purchases,
            "revenue": round(st.revenue, 2),
            "at_risk_since": format_ts(st.at_risk_since_s * 1000) if st.at_risk_since_s else None,
        }


@contextlib.contextmanager
def _reader(settings: Settings) -> Iterator[StoreReader]:
    """The store's read API, with Redis connection failures turned into one readable line."""
    from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

    reader = StoreReader(settings)
    try:
        yield reader
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise UserError(f"cannot reach Redis at {redact_url(settings.redis_url)}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def stream_time_ms(reader: StoreReader, settings: Settings) -> int:
    """Largest event time applied on any partition of the events topic (Redis progress)."""
    progress = reader.progress(settings.topic_events)
    latest = max((max_ms for _, max_ms in progress.values()), default=0)
    if latest <= 0:
        raise UserError(f"no progress for topic {settings.topic_events!r} in Redis yet: has a worker processed any events?")
    return latest


def _model(settings: Settings) -> ChurnModel:
    return load_model(settings.model_path or None)


def user_report(reader: StoreReader, settings: Settings, user_id: str, model: ChurnModel | None = None,
                as_of_ms: int | None = None) -> UserReport | None:
    """Live scores of ``user_id`` at the stream time (or ``as_of_ms``); None if the user is not tracked."""
    state = reader.load_user(user_id)
    if state is None:
        return None
    now_ms = as_of_ms if as_of_ms is not None else stream_time_ms(reader, settings)
    now_ms = max(now_ms, state.last_seen_s * 1000)  # a user's own events are never in its future
    return UserReport(user_id, now_ms, score(state, now_ms // 1000, model or _model(settings)), state)


def top_users(reader: StoreReader, settings: Settings, n: int, *, include_churned: bool = False) -> list[UserReport]:
    """The ``n`` users with an open at-risk alert and the highest risk, scored now, highest risk first.

    Users already churned are left out unless asked for: their risk is 1 by definition and they
    would crowd out the ones a check-in can still keep (they belong to win-back, see churn-rate).
    The store's risk index holds churned users too (at risk 1), so it is read in a window that
    doubles until ``n`` others are found or the index is exhausted.
    """
    now_ms = stream_time_ms(reader, settings)
    model = _model(settings)
    reports: dict[str, UserReport | None] = {}
    window = n if include_churned else 4 * n + 50
    while True:
        ranked = reader.top_at_risk(window)
        for user_id, _ in ranked:
            if user_id not in reports:
                reports[user_id] = user_report(reader, settings, user_id, model, now_ms)
        out = [r for r in reports.values() if r is not None and (include_churned or r.scores.stage != "churned")]
        if len(out) >= n or len(ranked) < window:
            break
        window *= 2
    out.sort(key=lambda r: (-r.scores.risk, r.user_id))
    return out[:n]


def churn_rate(reader: StoreReader, settings: Settings, days: int) -> dict[str, Any]:
    """Users who churned in the ``days`` UTC days up to the stream time: count, share, revenue."""
    from streams.worker.store import churn_summary

    now_ms = stream_time_ms(reader, settings)
    summary = churn_summary(reader.stats(), now_ms // 1000, days)
    return {
        "as_of": format_ts(now_ms),
        "days": days,
        "churned": summary.churned,
        "active_at_start": summary.active_at_start,
        "churn_rate": round(summary.rate, 4),
        "churned_revenue": round(summary.revenue, 2),
    }


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user", metavar="USER", help="the user id")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def add_top_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", type=positive_int("users"), default=20, help="how many users (default 20)")
    parser.add_argument("--include-churned", action="store_true", help="also list users who have churned already (risk 1)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")


def add_churn_rate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=positive_int("days"), default=30, help="window in days up to the stream time (default 30)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def run_score(args: argparse.Namespace, settings: Settings) -> int:
    with _reader(settings) as reader:
        report = user_report(reader, settings, args.user)
    if report is None:
        raise UserError(f"user {args.user!r} is not tracked (never seen, or expired after churn)")
    if args.json:
        print(orjson.dumps(report.to_dict()).decode())
        return 0
    d = report.to_dict()
    s = report.scores
    print(f"user {report.user_id} as of {_when(report.as_of_ms)} UTC (stream time)")
    print(f"  stage {s.stage}, risk {s.risk:.2f}, health {s.health:.0f}, temperature {s.temperature:.0f}"
          + (f", segment {s.segment}" if s.segment else ""))
    print(f"  action: {s.action.replace('_', ' ')}")
    for reason in s.reasons:
        print(f"  - {reason}")
    print(f"  first seen {d['first_seen']}, last seen {d['last_seen']}, {d['events']} events on {d['active_days']} days"
          + (f", {d['purchases']} purchases worth {d['revenue']:,.2f}" if d["purchases"] else ""))
    if d["at_risk_since"]:
        print(f"  at risk since {d['at_risk_since']}")
    return 0


def run_top(args: argparse.Namespace, settings: Settings) -> int:
    with _reader(settings) as reader:
        reports = top_users(reader, settings, args.n, include_churned=args.include_churned)
    if args.json:
        for r in reports:
            print(orjson.dumps(r.to_dict()).decode())
        return 0
    if not reports:
        print("no user is at risk")
        return 0
    print(f"{'#':>3}  {'user':<16} {'risk':>5} {'health':>6} {'temp':>5}  {'stage':<11} {'action':<9} reason")
    for i, r in enumerate(reports, start=1):
        s = r.scores
        reason = s.reasons[0] if s.reasons else ""
        print(f"{i:>3}  {r.user_id:<16} {s.risk:>5.2f} {s.health:>6.0f} {s.temperature:>5.0f}  {s.stage:<11} "
              f"{s.action.replace('_', ' '):<9} {reason}")
    return 0


def run_churn_rate(args: argparse.Namespace, settings: Settings) -> int:
    with _reader(settings) as reader:
        result = churn_rate(reader, settings, args.days)
    if args.json:
        print(orjson.dumps(result).decode())
        return 0
    print(f"churn over the {result['days']} days to {result['as_of'][:16].replace('T', ' ')} UTC (stream time): "
          f"{result['churned']:,} users churned = {100 * result['churn_rate']:.1f}% of {result['active_at_start']:,} "
          f"active at the start; revenue of churned users {result['churned_revenue']:,.2f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from streams.cli import main

    sys.exit(main(sys.argv[1:]))
