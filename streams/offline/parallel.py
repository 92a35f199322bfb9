"""The backtest over a history file on every core: each process reads and replays one range of user ids.

Users never interact, so the replay splits by user. Splitting by *ranges* of user ids rather
than by hash is what makes the merge free: the output is in (as-of date, user id) order, so a
date's rows are the shards' rows for that date put end to end, in shard order. Each shard
formats its own rows (CSV text) and alerts (JSON lines), and the parent only writes the texts
in order, so the output is byte for byte that of one process, for any number of processes
(``tests/test_backtest.py`` checks 1, 2 and 3).

Reading is split the same way: every process has the whole file's text (read once, before the
fork) and turns into events only the rows of its own users, so the rows are parsed once in all.
The range boundaries are quantiles of a sample of rows' user ids, so shards get about as many
events each. A bad row is reported as in a one-process read: the first bad line of the file
(every shard reports its first, the parent keeps the earliest), before any output is written.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import multiprocessing
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Sequence

from models.engine import Alert
from models.events import EVENT_ORDER, Event, TypeMap
from models.model import ChurnModel
from streams.offline.bad_lines import BadLines
from streams.offline.history import BadLinesError, drop_repeats, header_user_column, text_events
from streams.offline.replay import Progress, Replay, ScoreRow, replay_users

__all__ = ["DateOutput", "ReadSummary", "replay_text", "user_ranges"]

_SAMPLE_ROWS = 4096  # rows whose user ids place the range boundaries


@dataclass(slots=True)
class DateOutput:
    """One shard's output for one as-of date, in user id order: the scores file's rows as CSV
    text, the alerts as JSON lines (when asked for) and the rows themselves (when asked for)."""

    rows_csv: str
    alerts_jsonl: str = ""
    rows: list[ScoreRow] | None = None
    members_left_out: int = 0  # account members' user alerts left out of ``alerts_jsonl`` (``members_apart``)


@dataclass(slots=True)
class ReadSummary:
    """What reading the file found, known before any output is written."""

    n_events: int = 0
    first_ms: int | None = None  # earliest and latest event time
    last_ms: int | None = None
    plot_events: list[Event] = field(default_factory=list)  # the events of the user asked for, if any
    bad: BadLines | None = None  # the bad rows (streams.offline.bad_lines)
    error: str | None = None  # a file error of no line (the header)

    def add(self, other: "ReadSummary") -> None:
        """Fold another shard's summary in (every shard's bad rows; each row is read by one shard)."""
        self.n_events += other.n_events
        if other.first_ms is not None:
            self.first_ms = other.first_ms if self.first_ms is None else min(self.first_ms, other.first_ms)
            self.last_ms = other.last_ms if self.last_ms is None else max(self.last_ms, other.last_ms)  # type: ignore[type-var]
        self.plot_events.extend(other.plot_events)
        if other.bad is not None:
            if self.bad is None:
                self.bad = BadLines(other.bad.name)
            self.bad.add_all(other.bad)
        if other.error is not None:
            self.error = other.error


def user_ranges(text: str, shards: int) -> list[tuple[str, str | None]]:
    """``shards`` ranges [first, end) of user ids covering every id, split at quantiles of the
    user ids of rows sampled evenly over ``text`` (so each range holds about as many rows).

    The boundaries only balance the work: any boundaries give the same output.

    >>> user_ranges("user_id,ts,event_type\\nb,1,v\\na,1,v\\nc,1,v\\nd,1,v\\n", 2)
    [('', 'c'), ('c', None)]
    """
    col = header_user_column(text)
    sample: list[str] = []
    step = max(1, len(text) // _SAMPLE_ROWS)
    last = 0
    for pos in range(0, len(text), step):
        start = text.find("\n", pos) + 1
        if start == 0:
            break
        if start <= last:  # a line longer than the step: sampled once
            continue
        last = start
        line_end = text.find("\n", start)
        cells = text[start: line_end if line_end >= 0 else len(text)].split(",")
        user = cells[col].strip() if col < len(cells) else ""
        if user:
            sample.append(user)
    sample.sort()
    bounds = [sample[len(sample) * k // shards] for k in range(1, shards)] if sample else []
    starts = [""] + bounds
    return [(start, bounds[k] if k < len(bounds) else None) for k, start in enumerate(starts)]


class _Shard:
    """One range of users: read its rows of the file, then replay them date by date."""

    def __init__(self, text: str, name: str, type_map: TypeMap, users: tuple[str, str | None], dates: Sequence[int],
                 model: ChurnModel, want_alerts: bool, want_rows: bool, plot_user: str | None, currency: str = "",
                 alerts_from_ms: int = 0, members_apart: bool = False) -> None:
        self.text, self.name, self.type_map, self.users, self.currency = text, name, type_map, users, currency
        self.alerts_from_ms, self.members_apart = alerts_from_ms, members_apart
        self.dates, self.model = dates, model
        self.want_alerts, self.want_rows, self.plot_user = want_alerts, want_rows, plot_user
        self.events: list[Event] = []
        self.result = Replay()
        self.read_cpu_s = 0.0

    def read(self) -> ReadSummary:
        """Parse this shard's rows (bad rows end the reading, each said) and sort them."""
        started = time.process_time()
        try:
            events = text_events(self.text, self.name, self.type_map, self.users, self.currency)
        except BadLinesError as exc:
            return ReadSummary(bad=exc.bad)
        except ValueError as exc:  # the header: no line of its own
            return ReadSummary(error=str(exc))
        gc.freeze()  # every event lives to the end: keep them out of every collection from here on
        events.sort(key=EVENT_ORDER)
        events = drop_repeats(events)
        self.events = events
        summary = ReadSummary(n_events=len(events))
        if events:
            summary.first_ms, summary.last_ms = events[0].ts_ms, events[-1].ts_ms
        if self.plot_user is not None:
            summary.plot_events = [ev for ev in events if ev.user_id == self.plot_user]
        self.read_cpu_s = time.process_time() - started
        return summary

    def replay(self, on_date: Callable[[int, DateOutput], None], on_step: Callable[[float], None]) -> Replay:
        """The replay of the shard's users; each date's output goes to ``on_date`` when done."""
        pending: dict[int, tuple[str, int]] = {}
        n_dates = len(self.dates)

        def alerts(i: int, got: list[tuple[str, list[Alert]]]) -> None:
            # those a worker publishes on the alerts topic: none before alerts_from (models.step.queue_alerts),
            # none of an account member's when members_apart (streams.worker.phases)
            sent = [alert for _, mine in got for alert in mine if alert.event_time_ms >= self.alerts_from_ms]
            kept = [alert for alert in sent if not alert.member] if self.members_apart else sent
            pending[i] = "".join(json.dumps(alert.to_dict()) + "\n" for alert in kept), len(sent) - len(kept)

        def rows(i: int, got: list[ScoreRow]) -> None:
            buf = io.StringIO()
            csv.writer(buf).writerows(row.as_csv() for row in got)
            jsonl, left_out = pending.pop(i, ("", 0))
            on_date(i, DateOutput(buf.getvalue(), jsonl, got if self.want_rows else None, left_out))

        def step(i: int, j: int, n: int) -> None:
            if j % 512 == 0:
                on_step((i + j / n) / n_dates)

        started = time.process_time()
        replay_users(self.events, self.dates, self.model, self.result, rows, alerts if self.want_alerts else None, step)
        self.result.work.append((len(self.events), round(self.read_cpu_s, 3), round(time.process_time() - started, 3)))
        return self.result


def _serve(shard: _Shard, conn: Connection) -> None:
    """A forked shard process: read, report, replay sending each date, report. It does not wait
    for the other shards' reading: if that fails, the parent kills it, and it wrote nothing."""
    try:
        summary = shard.read()
        conn.send(("read", summary))
        if summary.error is not None or summary.bad is not None:
            return
        result = shard.replay(lambda i, out: conn.send(("date", i, out)), lambda f: conn.send(("step", f)))
        conn.send(("done", result))
    except (EOFError, BrokenPipeError):
        pass
    except BaseException:  # the parent shows it: a shard must never die silently
        with contextlib.suppress(OSError):
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def replay_text(
    text: str,
    name: str,
    type_map: TypeMap,
    dates: Sequence[int],
    model: ChurnModel,
    on_read: Callable[[ReadSummary], None],
    on_date: Callable[[DateOutput], None],
    *,
    jobs: int = 1,
    want_alerts: bool = False,
    want_rows: bool = False,
    plot_user: str | None = None,
    progress: Progress | None = None,
    currency: str = "",
    alerts_from_ms: int = 0,
    members_apart: bool = False,
) -> Replay:
    """The backtest's replay (:func:`streams.offline.replay.replay_users`) of the history file
    ``text`` (named ``name``) in ``jobs`` processes, reading included.

    ``on_read`` gets the summary of the whole file once every row is read and before the replay
    (raise there to stop); a bad row raises its ValueError before that. ``on_date`` then gets the
    output of each date in (date, user id) order. ``currency``: the deployment's, which a
    ``currency`` column must name (streams.offline.history.EventRows). ``alerts_from_ms``: alerts of
    an earlier event time are left out of the alerts output (``Settings.alerts_from_ms``), and so
    are account members' user alerts with ``members_apart`` (``Settings.members_apart``).
    """
    dates = sorted(set(dates))
    forks = jobs > 1 and "fork" in multiprocessing.get_all_start_methods()
    ranges = user_ranges(text, jobs) if forks else [("", None)]
    shards = [_Shard(text, name, type_map, users, dates, model, want_alerts, want_rows, plot_user, currency, alerts_from_ms,
                     members_apart) for users in ranges]
    if len(shards) == 1:
        return _run_here(shards[0], on_read, on_date, progress)
    return _run_forked(shards, on_read, on_date, progress)


def _checked(summary: ReadSummary) -> ReadSummary:
    if summary.error is not None:
        raise ValueError(summary.error)
    if summary.bad is not None:
        summary.bad.check()
    return summary


def _run_here(shard: _Shard, on_read: Callable[[ReadSummary], None], on_date: Callable[[DateOutput], None],
              progress: Progress | None) -> Replay:
    try:
        summary = _checked(shard.read())
        on_read(summary)
        result = shard.replay(lambda i, out: on_date(out), progress.update if progress is not None else lambda f: None)
    finally:
        gc.unfreeze()
    result.n_events, result.data_end_ms = summary.n_events, summary.last_ms or 0
    return result


def _run_forked(shards: list[_Shard], on_read: Callable[[ReadSummary], None], on_date: Callable[[DateOutput], None],
                progress: Progress | None) -> Replay:
    """The shards in forked processes; their dates are handed on once the whole file is read
    and as soon as every shard has sent them (until then they wait in their pipes)."""
    context = multiprocessing.get_context("fork")
    conns: list[Connection] = []
    procs = []
    finished = False
    try:
        for shard in shards:
            mine, theirs = context.Pipe()
            proc = context.Process(target=_serve, args=(shard, theirs), daemon=True, name="churnwatch-backtest-shard")
            proc.start()
            theirs.close()
            conns.append(mine)
            procs.append(proc)
        summary = ReadSummary()
        for conn in conns:
            summary.add(_receive(conn, "read")[1])
        on_read(_checked(summary))
        result = _collect(conns, len(shards[0].dates), on_date, progress)
        finished = True
    finally:
        for conn in conns:
            conn.close()
        for proc in procs:
            if not finished:
                proc.kill()  # stopped early: the work of the other shards is of no use
            proc.join()
    result.n_events, result.data_end_ms = summary.n_events, summary.last_ms or 0
    return result


def _receive(conn: Connection, *kinds: str) -> tuple[Any, ...]:
    """The next message of a shard, which must be of one of ``kinds``; its failure as RuntimeError."""
    try:
        message = conn.recv()
    except EOFError:
        raise RuntimeError("a backtest shard process ended without a word (killed?)") from None
    if message[0] == "error":
        raise RuntimeError(f"a backtest shard process failed:\n{message[1]}")
    if message[0] not in kinds:
        raise RuntimeError(f"a backtest shard process sent {message[0]!r}, expected one of {kinds}")
    return message  # type: ignore[no-any-return]


def _collect(conns: list[Connection], n_dates: int, on_date: Callable[[DateOutput], None], progress: Progress | None) -> Replay:
    """Receive every shard's dates, hand date i on once all shards sent it, merge the results."""
    got: list[dict[int, DateOutput]] = [{} for _ in conns]
    steps = [0.0] * len(conns)
    results: list[Replay | None] = [None] * len(conns)
    written = 0
    while any(r is None for r in results):
        for conn in wait([c for c, r in zip(conns, results) if r is None]):
            k = conns.index(conn)  # type: ignore[arg-type]
            message = _receive(conn, "step", "date", "done")  # type: ignore[arg-type]
            if message[0] == "step":
                steps[k] = message[1]
                if progress is not None:
                    progress.update(sum(steps) / len(steps))
            elif message[0] == "date":
                got[k][message[1]] = message[2]
            else:
                results[k] = message[1]
        while written < n_dates and all(written in mine for mine in got):
            for mine in got:
                on_date(mine.pop(written))
            written += 1
    merged = Replay()
    for part in results:
        assert part is not None
        merged.alerts.update(part.alerts)
        merged.first_seen_ms.update(part.first_seen_ms)
        merged.n_rows += part.n_rows
        merged.work.extend(part.work)
    return merged
