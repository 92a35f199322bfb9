"""Offline backtest: score history as of given dates with the stream's own code, and measure it.

Why a replay of ``models.engine.advance`` and not a separate batch scorer: the stream's alerts
come from reviews the engine runs on event time, so the only backtest that says how the live
system would have behaved is one that runs the very same function over the same events. Each
user's state is advanced incrementally from one as-of date to the next (``advance`` is built so
that applying part 1 then part 2 equals applying everything), so history is read and sorted once.

With ground-truth labels (``user_id,churned_at[,persona]``, churn = the last activity) it
measures what a CRM cares about: how well risk ranks the users who are gone by the end of the
horizon (ROC AUC, top-decile lift, see :class:`_Panels` for which rows are judged), how often an
at-risk alert is right (precision), how many churners were flagged (recall) and how early (lead
time). The definitions are spelled out in docs/SCORES.md and next to each function.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import gzip
import heapq
import json
import logging
import math
import multiprocessing
import operator
import os
import sys
import time
import tomllib
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Mapping, Sequence, TextIO

from models.engine import Alert, advance
from models.events import DEFAULT_TYPE_MAP, EVENT_ORDER, Event, TypeMap
from models.model import ChurnModel, load_model
from models.scoring import Scores, score
from models.state import DAY_S, UserState
from streams.cli import UserError
from streams.offline.history import parse_ts_ms, read_events_csv, read_labels_csv
from streams.settings import Settings, parse_duration_ms
from streams.offline.simulate import positive_int

__all__ = [
    "SCORE_COLUMNS",
    "AlertEpisode",
    "Labels",
    "Progress",
    "Replay",
    "ScoreRow",
    "add_arguments",
    "alert_episodes",
    "alert_outcomes",
    "available_cpus",
    "covers",
    "evaluate",
    "format_time",
    "lead_time_ms",
    "lift_table",
    "load_type_map",
    "median",
    "parse_as_of",
    "read_labels",
    "replay",
    "roc_auc",
    "roc_curve",
    "run",
    "score_row",
    "timeline",
    "top_fraction_lift",
]

logger = logging.getLogger(__name__)

#: Columns of the scores file; numbers are rounded as in the alerts (``Alert.to_dict``).
SCORE_COLUMNS: tuple[str, ...] = ("user_id", "as_of", "risk", "health", "temperature", "stage", "segment", "action", "reason")


# ---------------------------------------------------------------------------------------------
# Inputs: as-of dates, event type configuration, labels
# ---------------------------------------------------------------------------------------------


def _parse_date_ms(text: str) -> int:
    """An ISO date or date-time (UTC unless it says otherwise) -> epoch ms."""
    try:
        return parse_ts_ms(text)
    except ValueError as exc:
        raise ValueError(f"--as-of: {exc} (examples: 2026-02-01, 2026-02-01T12:00:00Z)") from None


def parse_as_of(text: str) -> list[int]:
    """Comma-separated ISO dates, or ``START/END/STEP`` (END included when on a step) -> sorted epoch ms.

    >>> [format_time(t) for t in parse_as_of("2026-02-01/2026-02-15/7d")]
    ['2026-02-01', '2026-02-08', '2026-02-15']
    >>> [format_time(t) for t in parse_as_of("2026-03-01, 2026-02-01T12:00:00Z")]
    ['2026-02-01T12:00:00Z', '2026-03-01']
    """
    text = text.strip()
    if not text:
        raise ValueError("--as-of is empty: give ISO dates separated by commas, or START/END/STEP such as 2026-02-01/2026-06-01/7d")
    if "/" in text:
        parts = text.split("/")
        if len(parts) != 3:
            raise ValueError(f"--as-of {text!r}: a range is START/END/STEP, such as 2026-02-01/2026-06-01/7d")
        start, end = _parse_date_ms(parts[0]), _parse_date_ms(parts[1])
        step = parse_duration_ms(parts[2], name="--as-of STEP")
        if step <= 0:
            raise ValueError(f"--as-of STEP must be a positive duration, got {parts[2]!r}")
        if end < start:
            raise ValueError(f"--as-of range ends ({parts[1]}) before it starts ({parts[0]})")
        return list(range(start, end + 1, step))
    dates = sorted({_parse_date_ms(part) for part in text.split(",") if part.strip()})
    if not dates:
        raise ValueError(f"--as-of {text!r} holds no date")
    return dates


def format_time(ms: int) -> str:
    """Epoch ms -> ``2026-02-01`` at midnight UTC, else ``2026-02-01T12:00:00Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if ms % (DAY_S * 1000) == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_type_map(path: str | Path | None) -> TypeMap:
    """The ``event_types`` mapping (name -> canonical type) of a JSON or TOML file.

    Without a file the built-in aliases apply (``DEFAULT_TYPE_MAP``). With one, only the names it
    lists are mapped (plus the canonical names themselves); everything else counts as "other".
    """
    if not path:
        return DEFAULT_TYPE_MAP
    target = Path(path)
    text = target.read_text(encoding="utf-8")
    try:
        data: Any = tomllib.loads(text) if target.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"config {target}: cannot parse it ({exc})") from None
    mapping = data.get("event_types") if isinstance(data, dict) else None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError(f"config {target}: needs an 'event_types' table of name -> canonical type strings")
    return TypeMap(dict(mapping))


@dataclass(frozen=True, slots=True)
class Labels:
    """Ground truth: when each churner churned (users not listed never did), and optional personas."""

    churned_at_ms: Mapping[str, int]
    persona: Mapping[str, str] = field(default_factory=dict)


def read_labels(path: str | Path) -> Labels:
    """``user_id,churned_at[,persona]`` (CSV, optionally gzipped) read by ``streams.offline.history``;
    the persona column, when present, splits recall and lead time by kind of user."""
    churned = read_labels_csv(path)
    persona: dict[str, str] = {}
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        if "persona" in (reader.fieldnames or ()):
            persona = {row["user_id"].strip(): row["persona"].strip() for row in reader if row.get("persona")}
    return Labels(churned, persona)


def _open_text(path: str | Path, mode: str = "r") -> IO[str]:
    """A text file, gzipped when its name ends in ``.gz``."""
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8", newline="")


# ---------------------------------------------------------------------------------------------
# The replay: the stream's code, as of each date
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """One user's scores at one as-of time, rounded as the alerts round them."""

    user_id: str
    as_of_ms: int
    risk: float
    health: float
    temperature: float
    stage: str
    segment: str
    action: str
    reason: str

    def as_csv(self) -> list[str]:
        return [self.user_id, format_time(self.as_of_ms), f"{self.risk:.4f}", f"{self.health:.1f}", f"{self.temperature:.1f}",
                self.stage, self.segment, self.action, self.reason]


def score_row(user_id: str, as_of_ms: int, s: Scores) -> ScoreRow:
    return ScoreRow(user_id, as_of_ms, round(s.risk, 4), round(s.health, 1), round(s.temperature, 1), s.stage,
                    s.segment or "", s.action, s.reasons[0] if s.reasons else "")


class Progress:
    """A progress bar on stderr, drawn only once a run has lasted ``after_s`` seconds, so short
    runs and tests print nothing. On a terminal it redraws one line; into a file or pipe it
    writes a plain line at most every ``log_every_s``. Wall time here is display only."""

    def __init__(self, label: str, stream: TextIO | None = None, after_s: float = 2.0, enabled: bool = True,
                 log_every_s: float = 10.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.monotonic()
        self._after = after_s
        self._every = 0.25 if self.tty else log_every_s
        self._last = -math.inf
        self._drawn = False

    def update(self, fraction: float) -> None:
        """Show that ``fraction`` (0-1) of the work is done (drawn only now and then)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start < self._after or now - self._last < self._every:
            return
        self._last = now
        self._draw(fraction, now)

    def _draw(self, fraction: float, now: float) -> None:
        frac = min(1.0, max(0.0, fraction))
        width = 30
        filled = int(frac * width)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {100 * frac:5.1f}% {now - self._start:6.1f}s"
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Draw 100% and end the line, if anything was drawn at all."""
        if self._drawn:
            self._draw(1.0, time.monotonic())
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()


@dataclass(slots=True)
class Replay:
    """What a replay leaves behind besides the rows it handed out: every user's at-risk and
    recovered alerts as ``(kind, event_time_ms)`` (the engine's own, at the review time that
    raised them; compact because metrics need no more) and counts."""

    alerts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    first_seen_ms: dict[str, int] = field(default_factory=dict)  # each user's earliest event used
    n_events: int = 0
    n_rows: int = 0
    data_end_ms: int = 0  # the latest event time in the input (labels beyond it cannot be observed)


def replay(
    events: Iterable[Event],
    as_of_ms: Sequence[int],
    model: ChurnModel,
    on_row: Callable[[ScoreRow], None],
    progress: Progress | None = None,
    on_alert: Callable[[Alert], None] | None = None,
    jobs: int = 1,
) -> Replay:
    """Score every user seen before each as-of time from the events strictly before it.

    Events are sorted once by event time; between two as-of times each user is advanced with
    only the events of that interval (``advance(..., until_ms=as_of)``, which also runs the
    reviews that came due, exactly as the worker's review clock does), then scored with
    ``models.scoring.score`` at the as-of time. A state the engine marks as expired is dropped,
    as the store drops it. Rows are handed to ``on_row`` in (as-of, user id) order, and every
    alert the stream would have published to ``on_alert`` (per user in time order).

    Users never interact, so ``jobs`` > 1 splits them into shards replayed by forked processes
    (where the platform forks) and merges the shards' rows and alerts back into the same order:
    the output is the same for any ``jobs``.
    """
    ordered = sorted(events, key=EVENT_ORDER)
    dates = sorted(set(as_of_ms))
    users = {ev.user_id for ev in ordered}
    if jobs > 1 and len(users) > 1 and "fork" in multiprocessing.get_all_start_methods():
        return _replay_forked(ordered, dates, model, on_row, progress, on_alert, jobs, users)
    result = Replay(n_events=len(ordered))
    if ordered:
        result.data_end_ms = ordered[-1].ts_ms

    def rows(i: int, got: list[ScoreRow]) -> None:
        for row in got:
            on_row(row)

    def alerts(i: int, got: list[tuple[str, list[Alert]]]) -> None:
        for _, mine in got:
            for alert in mine:
                on_alert(alert)  # type: ignore[misc]

    def step(i: int, j: int, n: int) -> None:
        if progress is not None and j % 256 == 0:
            progress.update((i + j / n) / len(dates))

    _replay_users(ordered, dates, model, result, rows, alerts if on_alert is not None else None, step)
    return result


def _replay_users(
    ordered: Sequence[Event],
    dates: Sequence[int],
    model: ChurnModel,
    result: Replay,
    on_rows: Callable[[int, list[ScoreRow]], None],
    on_alerts: Callable[[int, list[tuple[str, list[Alert]]]], None] | None,
    step: Callable[[int, int, int], None] = lambda i, j, n: None,
) -> None:
    """The replay of :func:`replay` over the users of ``ordered`` (sorted events); hands each
    as-of date's rows and ``(user, alerts)`` to the callbacks, in user id order."""
    states: dict[str, UserState] = {}
    pos = 0
    for i, date_ms in enumerate(dates):
        end = bisect.bisect_left(ordered, date_ms, lo=pos, key=_ts_ms)
        fresh: dict[str, list[Event]] = {}
        for ev in ordered[pos:end]:
            fresh.setdefault(ev.user_id, []).append(ev)
        pos = end
        for user, mine in fresh.items():
            result.first_seen_ms.setdefault(user, mine[0].ts_ms)
        now_s = date_ms // 1000
        users = sorted(states.keys() | fresh.keys())
        rows: list[ScoreRow] = []
        alerts: list[tuple[str, list[Alert]]] = []
        for j, user in enumerate(users):
            step(i, j, len(users))
            out = advance(user, states.get(user), fresh.get(user, ()), date_ms, model)
            if out.alerts:
                for alert in out.alerts:
                    if alert.kind != "stage_changed":
                        result.alerts.setdefault(user, []).append((alert.kind, alert.event_time_ms))
                if on_alerts is not None:
                    alerts.append((user, out.alerts))
            if out.expire:
                states.pop(user, None)
                continue
            states[user] = out.state
            rows.append(score_row(user, date_ms, score(out.state, now_s, model)))
        result.n_rows += len(rows)
        if on_alerts is not None:
            on_alerts(i, alerts)
        on_rows(i, rows)


#: What forked shard processes read (set just before the pool forks; never pickled).
_FORKED: tuple[list[list[Event]], list[int], ChurnModel, bool] | None = None


def _replay_shard(k: int) -> tuple[int, Replay, list[list[ScoreRow]], list[list[tuple[str, list[Alert]]]]]:
    assert _FORKED is not None
    shards, dates, model, want_alerts = _FORKED
    result = Replay()
    rows: list[list[ScoreRow]] = []
    alerts: list[list[tuple[str, list[Alert]]]] = []
    _replay_users(shards[k], dates, model, result, lambda i, got: rows.append(got),
                  (lambda i, got: alerts.append(got)) if want_alerts else None)
    return k, result, rows, alerts


def _replay_forked(
    ordered: list[Event],
    dates: list[int],
    model: ChurnModel,
    on_row: Callable[[ScoreRow], None],
    progress: Progress | None,
    on_alert: Callable[[Alert], None] | None,
    jobs: int,
    users: set[str],
) -> Replay:
    """:func:`replay` with the users split into shards (a few per process, so the work evens out
    and the progress bar moves) replayed in forked processes, merged by user id per date."""
    global _FORKED
    n_shards = min(len(users), 4 * jobs)
    shard_of = {user: zlib.crc32(user.encode()) % n_shards for user in users}
    shards: list[list[Event]] = [[] for _ in range(n_shards)]
    for ev in ordered:
        shards[shard_of[ev.user_id]].append(ev)
    result = Replay(n_events=len(ordered), data_end_ms=ordered[-1].ts_ms if ordered else 0)
    parts: list[tuple[Replay, list[list[ScoreRow]], list[list[tuple[str, list[Alert]]]]]] = [None] * n_shards  # type: ignore[list-item]
    _FORKED = (shards, dates, model, on_alert is not None)
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, n_shards)) as pool:
            for done, (k, part, rows, alerts) in enumerate(pool.imap_unordered(_replay_shard, range(n_shards)), start=1):
                parts[k] = (part, rows, alerts)
                if progress is not None:
                    progress.update(done / n_shards)
    finally:
        _FORKED = None
    for part, _, _ in parts:
        result.alerts.update(part.alerts)
        result.first_seen_ms.update(part.first_seen_ms)
        result.n_rows += part.n_rows
    by_user = operator.attrgetter("user_id")
    for i in range(len(dates)):
        if on_alert is not None:
            for _, mine in heapq.merge(*(alerts[i] for _, _, alerts in parts), key=operator.itemgetter(0)):
                for alert in mine:
                    on_alert(alert)
        for row in heapq.merge(*(rows[i] for _, rows, _ in parts), key=by_user):
            on_row(row)
    return result




def _ts_ms(ev: Event) -> int:
    return ev.ts_ms


def timeline(user_id: str, events: Iterable[Event], model: ChurnModel, start_ms: int, end_ms: int, step_ms: int = DAY_S * 1000) -> tuple[list[ScoreRow], list[Alert]]:
    """One user's scores every ``step_ms`` from ``start_ms`` to ``end_ms`` and every alert the
    engine raised on the way (the same ``advance``/``score`` calls as the replay)."""
    mine = sorted((ev for ev in events if ev.user_id == user_id), key=EVENT_ORDER)
    rows: list[ScoreRow] = []
    alerts: list[Alert] = []
    state: UserState | None = None
    pos = 0
    for date_ms in range(start_ms, end_ms + 1, step_ms):
        end = bisect.bisect_left(mine, date_ms, lo=pos, key=_ts_ms)
        out = advance(user_id, state, mine[pos:end], date_ms, model)
        pos = end
        alerts.extend(out.alerts)
        state = out.state
        if state.n_events or state.cancelled_s:
            rows.append(score_row(user_id, date_ms, score(state, date_ms // 1000, model)))
    return rows, alerts


# ---------------------------------------------------------------------------------------------
# Metrics: small pure functions (unit-tested against hand-computed cases)
# ---------------------------------------------------------------------------------------------


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the average of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        shared = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = shared
        i = j + 1
    return ranks


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve via the rank statistic (Mann-Whitney U / (n_pos * n_neg)).

    It is the probability that a random positive scores above a random negative, ties counting
    half. None when one class is empty (the area is undefined).

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(scores)
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def roc_curve(scores: Sequence[float], labels: Sequence[bool]) -> tuple[list[float], list[float]]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1).

    >>> roc_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False])
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    fpr, tpr = [0.0], [0.0]
    tp = fp = 0
    for i, (s, y) in enumerate(pairs):
        if y:
            tp += 1
        else:
            fp += 1
        if i + 1 == len(pairs) or pairs[i + 1][0] != s:
            fpr.append(fp / n_neg if n_neg else 0.0)
            tpr.append(tp / n_pos if n_pos else 0.0)
    return fpr, tpr


class _Ranking:
    """Scores ranked highest first with running positive counts, so the positives among the top
    ``k`` cost two bisections whatever ``k`` (lift tables ask for ten cuts of the same ranking)."""

    def __init__(self, scores: Sequence[float], labels: Sequence[bool]) -> None:
        pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
        self.neg_scores = [-s for s, _ in pairs]  # ascending, for bisect
        self.cum = [0]
        for _, y in pairs:
            self.cum.append(self.cum[-1] + (1 if y else 0))

    def positives_in_top(self, k: int) -> float:
        """Positives among the ``k`` highest scores, ties at the cut split pro rata (the expectation
        over random tie-breaks), so a constant score gets lift 1 and not an accident of order."""
        k = min(k, len(self.neg_scores))
        if k <= 0:
            return 0.0
        cut = self.neg_scores[k - 1]
        lo, hi = bisect.bisect_left(self.neg_scores, cut), bisect.bisect_right(self.neg_scores, cut)
        return self.cum[lo] + (k - lo) * (self.cum[hi] - self.cum[lo]) / (hi - lo)


def top_fraction_lift(scores: Sequence[float], labels: Sequence[bool], fraction: float = 0.1) -> float | None:
    """Positive rate among the top ``fraction`` by score over the overall positive rate.

    >>> top_fraction_lift([0.9, 0.8, 0.3, 0.2, 0.1], [True, False, True, False, False], 0.2)
    2.5
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = len(scores)
    positives = sum(1 for y in labels if y)
    if n == 0 or positives == 0:
        return None
    k = max(1, math.ceil(n * fraction - 1e-9))
    return (_Ranking(scores, labels).positives_in_top(k) / k) / (positives / n)


def lift_table(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> list[dict[str, float]]:
    """Per decile (by default) of score, highest first: share of population, lift of that bin and
    cumulative lift down to it, and cumulative share of positives captured (the gains curve)."""
    n = len(scores)
    positives = sum(1 for y in labels if y)
    if n == 0 or positives == 0:
        return []
    base = positives / n
    ranking = _Ranking(scores, labels)
    out = []
    prev_k, prev_pos = 0, 0.0
    for i in range(1, bins + 1):
        k = max(1, math.ceil(n * i / bins - 1e-9))
        cum_pos = ranking.positives_in_top(k)
        size = k - prev_k
        out.append({
            "share": k / n,
            "lift": ((cum_pos - prev_pos) / size) / base if size else 0.0,
            "cumulative_lift": (cum_pos / k) / base,
            "captured": cum_pos / positives,
        })
        prev_k, prev_pos = k, cum_pos
    return out


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count); None when empty.

    >>> median([3, 1, 2]), median([1, 2, 3, 4]), median([])
    (2, 2.5, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class AlertEpisode:
    """From an at-risk alert to the recovered alert that closed it (``None``: still open)."""

    opened_ms: int
    closed_ms: int | None


def alert_episodes(alerts: Iterable[tuple[str, int]]) -> list[AlertEpisode]:
    """At-risk episodes from a user's ``(kind, event_time_ms)`` alerts in time order.

    >>> alert_episodes([("at_risk", 10), ("recovered", 20), ("at_risk", 30)])
    [AlertEpisode(opened_ms=10, closed_ms=20), AlertEpisode(opened_ms=30, closed_ms=None)]
    """
    episodes: list[AlertEpisode] = []
    opened: int | None = None
    for kind, t in alerts:
        if kind == "at_risk" and opened is None:
            opened = t
        elif kind == "recovered" and opened is not None:
            episodes.append(AlertEpisode(opened, t))
            opened = None
    if opened is not None:
        episodes.append(AlertEpisode(opened, None))
    return episodes


def covers(episode: AlertEpisode, churned_at_ms: int, horizon_ms: int) -> bool:
    """Whether the user stood flagged at some moment of the horizon before churning: the alert
    was raised before the churn and not recovered until the last ``horizon_ms`` before it.

    Why "some moment" and not "at the churn": ground truth puts churn at the user's *last*
    event, and a last visit may well look like a recovery; the alert still came in time.

    >>> covers(AlertEpisode(10, 80), 100, 30), covers(AlertEpisode(10, 60), 100, 30), covers(AlertEpisode(10, None), 100, 30)
    (True, False, True)
    """
    if episode.opened_ms >= churned_at_ms:
        return False
    return episode.closed_ms is None or episode.closed_ms > churned_at_ms - horizon_ms


def lead_time_ms(episodes: Sequence[AlertEpisode], churned_at_ms: int, horizon_ms: int) -> int | None:
    """From the first at-risk alert of the run-up to the churn: the earliest opening among the
    episodes that ``covers`` the churn. None: the user was not flagged in time.

    >>> lead_time_ms([AlertEpisode(10, 20), AlertEpisode(50, 80), AlertEpisode(90, None)], 100, 30)
    50
    >>> lead_time_ms([AlertEpisode(10, 20)], 100, 30) is None
    True
    """
    leads = [churned_at_ms - ep.opened_ms for ep in episodes if covers(ep, churned_at_ms, horizon_ms)]
    return max(leads) if leads else None


def alert_outcomes(episodes: Sequence[AlertEpisode], churned_at_ms: int | None, horizon_ms: int, known_until_ms: int) -> tuple[int, int, int]:
    """(right, wrong, unknown) counts of a user's alert episodes raised before the churn (if any).

    Right: it ``covers`` the churn. Wrong: it does not, and that is settled: the user churned
    (later than it covers), or the horizon after the recovery (or, while still open, after the
    alert) passed inside the observed data. Unknown: not settled by ``known_until_ms``.

    >>> alert_outcomes([AlertEpisode(0, 5), AlertEpisode(50, None)], 60, 30, 100)
    (1, 1, 0)
    >>> alert_outcomes([AlertEpisode(0, 5), AlertEpisode(50, 60), AlertEpisode(90, None)], None, 30, 100)
    (0, 2, 1)
    """
    right = wrong = unknown = 0
    for ep in episodes:
        if churned_at_ms is not None and ep.opened_ms >= churned_at_ms:
            continue  # raised after the user had already gone: not a prediction
        if churned_at_ms is not None and covers(ep, churned_at_ms, horizon_ms):
            right += 1
        elif churned_at_ms is not None or (ep.closed_ms if ep.closed_ms is not None else ep.opened_ms) + horizon_ms <= known_until_ms:
            wrong += 1
        else:
            unknown += 1
    return right, wrong, unknown


@dataclass(slots=True)
class _Panel:
    """(user, as-of) rows that can be judged: the risk shown and whether churn followed."""

    risk: list[float] = field(default_factory=list)
    churns: list[bool] = field(default_factory=list)
    as_of: list[int] = field(default_factory=list)
    excluded_churned: int = 0
    excluded_unobserved: int = 0
    already_gone: int = 0  # (open view) positives whose last activity was already behind them

    def add(self, risk: float, churns: bool, as_of_ms: int) -> None:
        self.risk.append(risk)
        self.churns.append(churns)
        self.as_of.append(as_of_ms)

    def summary(self) -> dict[str, Any]:
        n, pos = len(self.churns), sum(self.churns)
        return {
            "rows_judged": n,
            "rows_churn_within_horizon": pos,
            "base_rate": _rounded(pos / n) if n else None,
            "roc_auc": _rounded(roc_auc(self.risk, self.churns)),
            "top_decile_lift": _rounded(top_fraction_lift(self.risk, self.churns, 0.1), 3),
        }


@dataclass(slots=True)
class _Panels:
    """Two ways to pick the rows that can be judged (docs/SCORES.md, "How good is it").

    Both leave out users the engine has reported churned at the as-of date (their risk is 1 by
    definition) and dates whose horizon reaches past the data. Churn is the time of the last
    activity (the labels' ``churned_at``).

    ``open`` (the headline, and what ``churnwatch train`` judges its held-out users on): every
    user not reported churned, which is all a CRM can know at the as-of date; positive when the
    user is gone by the end of the horizon, whether the last activity is still ahead or already
    behind (left, but not silent long enough to be called churned).
    ``ahead``: only users whose last activity is still ahead; positive when it falls in the
    horizon. Picking these rows uses the future (only later silence shows that a last visit was
    the last): it drops the silent-and-gone and keeps the silent-and-returning, so it measures
    how well the *last visit* is foreseen, which abrupt quitters make close to a coin toss.
    """

    open: _Panel = field(default_factory=_Panel)
    ahead: _Panel = field(default_factory=_Panel)


def _panel_collector(labels: Labels, horizon_ms: int, known_until_ms: int) -> tuple[_Panels, Callable[[ScoreRow], None]]:
    panels = _Panels()
    ahead, open_ = panels.ahead, panels.open

    def collect(row: ScoreRow) -> None:
        if row.as_of_ms + horizon_ms > known_until_ms:
            ahead.excluded_unobserved += 1
            open_.excluded_unobserved += 1
            return
        if row.stage == "churned":  # reported: its risk is 1 by definition, not a forecast
            ahead.excluded_churned += 1
            open_.excluded_churned += 1
            return
        churned = labels.churned_at_ms.get(row.user_id)
        gone = churned is not None and churned <= row.as_of_ms + horizon_ms
        behind = churned is not None and churned <= row.as_of_ms
        open_.add(row.risk, gone, row.as_of_ms)
        open_.already_gone += behind
        if behind:
            ahead.excluded_churned += 1
        else:
            ahead.add(row.risk, gone, row.as_of_ms)

    return panels, collect


def _rounded(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def evaluate(panels: _Panels, result: Replay, labels: Labels, as_of_ms: Sequence[int], horizon_ms: int) -> dict[str, Any]:
    """Every detection figure of a replay against labels, as a JSON-ready dict.

    The window is [first as-of, last as-of]: alert episodes opened in it are judged for precision
    (``alert_outcomes``), and users who churned inside it, having been seen before, are the
    churners of recall and lead time. Churn after the last event of the input is unobservable.
    Churners not flagged before they left get the delay from their churn to the first at-risk
    alert after it, if any: how long the CRM waits to hear about a user who left abruptly.
    """
    first, last = min(as_of_ms), max(as_of_ms)
    day_ms = DAY_S * 1000
    known_until = result.data_end_ms
    panel = panels.open
    by_date: dict[int, tuple[list[float], list[bool]]] = {}
    for r, y, d in zip(panel.risk, panel.churns, panel.as_of):
        rs, ys = by_date.setdefault(d, ([], []))
        rs.append(r)
        ys.append(y)
    right = wrong = unknown = after_churn = 0
    churners: dict[str, int] = {}
    leads: dict[str, list[float]] = {}
    delays: dict[str, list[float]] = {}
    for user, first_seen in result.first_seen_ms.items():
        churned = labels.churned_at_ms.get(user)
        episodes = alert_episodes(result.alerts.get(user, ()))
        in_window = [ep for ep in episodes if first <= ep.opened_ms <= last]
        r, w, u = alert_outcomes(in_window, churned, horizon_ms, known_until)
        right, wrong, unknown = right + r, wrong + w, unknown + u
        after_churn += sum(1 for ep in in_window if churned is not None and ep.opened_ms >= churned)
        if churned is None or not first < churned <= last or first_seen >= churned:
            continue
        persona = labels.persona.get(user, "")
        churners[persona] = churners.get(persona, 0) + 1
        lead = lead_time_ms(episodes, churned, horizon_ms)
        if lead is not None:
            leads.setdefault(persona, []).append(lead / day_ms)
            continue
        late = [ep.opened_ms - churned for ep in episodes if ep.opened_ms >= churned]
        if late:
            delays.setdefault(persona, []).append(min(late) / day_ms)
    judged = right + wrong
    n_churners = sum(churners.values())
    all_leads = [d for v in leads.values() for d in v]
    all_delays = [d for v in delays.values() for d in v]
    return {
        "horizon_days": horizon_ms / day_ms,
        "window": [format_time(first), format_time(last)],
        "data_end": format_time(known_until),
        **panel.summary(),
        "rows_already_gone": panel.already_gone,
        "rows_excluded_reported_churned": panel.excluded_churned,
        "rows_excluded_horizon_past_data_end": panel.excluded_unobserved,
        "roc_auc_by_as_of": {format_time(d): _rounded(roc_auc(*by_date[d])) for d in sorted(by_date)},
        "lift_by_decile": [{k: round(v, 4) for k, v in row.items()} for row in lift_table(panel.risk, panel.churns)],
        "churn_ahead": {
            **panels.ahead.summary(),
            "rows_excluded_already_churned": panels.ahead.excluded_churned,
        },
        "alerts": {
            "episodes_opened_in_window": right + wrong + unknown + after_churn,
            "right": right,
            "wrong": wrong,
            "not_known_yet": unknown,
            "raised_after_churn": after_churn,
            "precision": _rounded(right / judged) if judged else None,
        },
        "churners_in_window": n_churners,
        "churners_flagged_before_churn": len(all_leads),
        "recall": _rounded(len(all_leads) / n_churners) if n_churners else None,
        "median_lead_days": _rounded(median(all_leads), 2),
        "churners_flagged_only_after_churn": len(all_delays),
        "median_days_to_flag_after_churn": _rounded(median(all_delays), 2),
        "by_persona": {
            p: {
                "churners": n,
                "flagged": len(leads.get(p, ())),
                "recall": _rounded(len(leads.get(p, ())) / n),
                "median_lead_days": _rounded(median(leads.get(p, [])), 2),
                "flagged_only_after_churn": len(delays.get(p, ())),
                "median_days_to_flag_after_churn": _rounded(median(delays.get(p, [])), 2),
            }
            for p, n in sorted(churners.items())
            if p
        },
    }


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", required=True, metavar="FILE", help="CSV (optionally .gz): user_id,ts,event_type[,amount]; any order")
    parser.add_argument("--as-of", required=True, dest="as_of", metavar="DATES",
                        help="comma-separated ISO dates, or START/END/STEP such as 2026-02-01/2026-06-01/7d")
    parser.add_argument("--out", required=True, metavar="SCORES.csv", help="one row per (user_id, as_of); .gz to compress")
    parser.add_argument("--labels", metavar="FILE", help="user_id,churned_at[,persona]: measure AUC, lift, precision, recall, lead time")
    parser.add_argument("--horizon", default=None, help="churn horizon for the metrics (default: the model's, 30d)")
    parser.add_argument("--model", metavar="FILE", help="model file (default: CHURNWATCH_MODEL_PATH, else the shipped one)")
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML with an event_types table: name -> view/click/message/purchase/cancel")
    parser.add_argument("--alerts-out", metavar="FILE.jsonl", help="also write every alert the stream would have published (JSON lines)")
    parser.add_argument("--plot-user", metavar="USER_ID", help="also draw this user's health, temperature and risk over time")
    parser.add_argument("--plot-out", metavar="PNG", help="where to write --plot-user's picture (default: next to --out)")
    parser.add_argument("--jobs", type=positive_int("processes", "process"), default=None,
                        help="processes replaying users in parallel (default: the CPUs this process may use); same output for any number")
    parser.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _sibling(out: Path, suffix: str) -> Path:
    """``scores.csv.gz`` + ``.roc.png`` -> ``scores.roc.png``, in the same folder."""
    name = out.name
    for ext in (".gz", ".csv"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return out.with_name(name + suffix)


def run(args: argparse.Namespace, settings: Settings) -> int:
    as_of = parse_as_of(args.as_of)
    model = load_model(args.model or settings.model_path or None)
    horizon_ms = parse_duration_ms(args.horizon, name="--horizon") if args.horizon else int(model.horizon_days * DAY_S * 1000)
    if horizon_ms <= 0:
        raise ValueError(f"--horizon must be a positive duration, got {args.horizon!r}")
    type_map = load_type_map(args.config)
    labels = read_labels(args.labels) if args.labels else None
    out = Path(args.out)
    if not out.parent.exists():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")

    jobs = args.jobs or available_cpus()
    started = time.perf_counter()
    events = read_events_csv(args.events, type_map)
    read_s = time.perf_counter() - started
    logger.info("read %s events in %.1f s", len(events), read_s)
    if args.plot_user and not any(ev.user_id == args.plot_user for ev in events):
        raise UserError(f"--plot-user {args.plot_user!r}: no events of this user in the input")
    if as_of[0] <= min((ev.ts_ms for ev in events), default=as_of[0]):
        logger.warning("the first as-of date %s is not after the first event: nothing to score then", format_time(as_of[0]))

    panels, collect = _panel_collector(labels, horizon_ms, max((ev.ts_ms for ev in events), default=0)) if labels else (None, None)
    progress = Progress("backtest", enabled=not args.no_progress)
    with contextlib.ExitStack() as stack:
        writer = csv.writer(stack.enter_context(_open_text(out, "w")))
        writer.writerow(SCORE_COLUMNS)
        alerts_fh = stack.enter_context(_open_text(args.alerts_out, "w")) if args.alerts_out else None

        def on_row(row: ScoreRow) -> None:
            writer.writerow(row.as_csv())
            if collect is not None:
                collect(row)

        def on_alert(alert: Alert) -> None:
            alerts_fh.write(json.dumps(alert.to_dict()) + "\n")  # type: ignore[union-attr]

        replay_started = time.perf_counter()
        result = replay(events, as_of, model, on_row, progress, on_alert if alerts_fh else None, jobs=jobs)
        replay_s = time.perf_counter() - replay_started
    progress.close()
    total_s = time.perf_counter() - started

    report: dict[str, Any] = {
        "jobs": jobs,
        "events": result.n_events,
        "users": len(result.first_seen_ms),
        "as_of_dates": len(as_of),
        "rows": result.n_rows,
        "model_version": model.version,
        "seconds_read": round(read_s, 3),
        "seconds_replay": round(replay_s, 3),
        "events_per_s": round(result.n_events / total_s) if total_s > 0 else None,
        "events_per_s_replay_only": round(result.n_events / replay_s) if replay_s > 0 else None,
    }
    print(f"backtest: {report['events']} events, {report['users']} users, {len(as_of)} as-of dates -> {result.n_rows} rows in {out}")
    print(f"  {total_s:.1f} s ({report['events_per_s']} events/s; read {read_s:.1f} s, replay {replay_s:.1f} s)")
    if labels is not None and panels is not None:
        metrics = evaluate(panels, result, labels, as_of, horizon_ms)
        report["detection"] = metrics
        _print_metrics(metrics)
        _plot_metrics(out, panels.open, metrics)
    metrics_path = _sibling(out, ".metrics.json")
    metrics_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"  metrics: {metrics_path}")
    if args.alerts_out:
        print(f"  alerts: {args.alerts_out}")
    if args.plot_user:
        png = Path(args.plot_out) if args.plot_out else _sibling(out, f".user-{_safe(args.plot_user)}.png")
        _plot_user(args.plot_user, events, model, as_of, labels, png)
        print(f"  timeline of the user: {png}")
    return 0


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:64]


def _print_metrics(m: Mapping[str, Any]) -> None:
    a, h = m["alerts"], m["churn_ahead"]
    print(f"  horizon {m['horizon_days']:g} d, window {m['window'][0]} .. {m['window'][1]}, data end {m['data_end']}")
    print(f"  gone by the horizon, users not reported churned: {m['rows_judged']} rows (base rate {m['base_rate']},"
          f" {m['rows_already_gone']} already gone): ROC AUC {m['roc_auc']}, top-decile lift {m['top_decile_lift']}")
    print(f"  last visit within the horizon, users still to make it: {h['rows_judged']} rows (base rate {h['base_rate']}):"
          f" ROC AUC {h['roc_auc']}, top-decile lift {h['top_decile_lift']}")
    print(f"  alerts: precision {a['precision']} ({a['right']} right, {a['wrong']} wrong, {a['not_known_yet']} not known yet,"
          f" {a['raised_after_churn']} after churn)")
    print(f"  recall {m['recall']} ({m['churners_flagged_before_churn']} of {m['churners_in_window']} churners flagged before churn),"
          f" median lead {m['median_lead_days']} d; {m['churners_flagged_only_after_churn']} more flagged after leaving,"
          f" median {m['median_days_to_flag_after_churn']} d later")
    for persona, p in m["by_persona"].items():
        print(f"    {persona}: {p['flagged']} of {p['churners']} flagged before churn, median lead {p['median_lead_days']} d;"
              f" {p['flagged_only_after_churn']} only after, median {p['median_days_to_flag_after_churn']} d later")


def _plot_metrics(out: Path, panel: _Panel, metrics: Mapping[str, Any]) -> None:
    """ROC and lift charts of the headline view (users not reported churned)."""
    if metrics["roc_auc"] is None:
        logger.warning("only one class among the judged rows: no ROC or lift chart")
        return
    from streams.offline import plots

    fpr, tpr = roc_curve(panel.risk, panel.churns)
    roc_png, lift_png = _sibling(out, ".roc.png"), _sibling(out, ".lift.png")
    plots.roc_chart(fpr, tpr, metrics["roc_auc"], roc_png, f"gone within {metrics['horizon_days']:g} days")
    plots.lift_chart(metrics["lift_by_decile"], lift_png)
    print(f"  charts: {roc_png}, {lift_png}")


def _plot_user(user: str, events: Sequence[Event], model: ChurnModel, as_of: Sequence[int], labels: Labels | None, png: Path) -> None:
    mine = [ev for ev in events if ev.user_id == user]
    day_ms = DAY_S * 1000
    start = min(ev.ts_ms for ev in mine) // day_ms * day_ms + day_ms
    end = max(as_of[-1], start)
    rows, alerts = timeline(user, mine, model, start, end)
    churned = labels.churned_at_ms.get(user) if labels else None
    persona = labels.persona.get(user) if labels else None
    from streams.offline import plots

    plots.user_timeline(rows, alerts, [ev.ts_ms for ev in mine], png, title=f"user {user}" + (f" ({persona})" if persona else ""),
                        churned_at_ms=churned, risk_enter=model.risk_enter, risk_exit=model.risk_exit)
