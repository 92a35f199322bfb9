"""``churnwatch demo``: broker, Redis, workers and a simulated population, alerts as they come, a summary.

What it runs, in order (and stops in reverse, on ``--duration``, Ctrl-C or SIGTERM):

1. a Kafka-protocol broker (Tansu) and a Redis-protocol server (valkey) on free loopback ports
   via ``streams.local``, unless ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` name existing ones;
2. the three topics (``streams.worker.topics.ensure_topics``);
3. ``--workers`` worker processes (``python -m streams.cli worker``), each with its own metrics
   port (``/metrics``, ``/healthz``, ``/readyz``) and log file under ``.churnwatch/demo/``;
   the console (``churnwatch console``, http://127.0.0.1:8088/ or a free port), its address printed;
4. the simulator: ``--users`` users over ``--days`` days ending today (UTC), published as fast as
   the broker acks in event-time order (a replay: the workers see months pass in seconds);
5. the alerts follower (``streams.cli.alerts.follow_alerts``, the code ``churnwatch alerts``
   runs), printing the first ``--alert-lines`` at-risk and recovered alerts as the workers publish
   them and counting the rest (the status lines every few seconds give the counts by kind): a
   replay publishes thousands, whose lines would scroll the console's address away (QA5 L1);
6. once the replay is done and the reviews due at the end of the stream ran (a partition's clock
   moves on ``idle_partition_ms`` after its last event), a summary: alerts by kind, the share of at-risk alerts followed by churn
   (simulator truth), the 10 reachable users most likely to churn, the 30-day churn rate, the time
   from start to the first alert and the throughput, read from Redis with ``streams.views``; then
   the console's address again, the console still serving until Ctrl-C (or ``--duration``), so the
   summary and the address are on screen together. Stopped before the replay is done, the demo
   prints the summary of what it got while stopping.

Every server and worker is started in its own session, so a Ctrl-C in the terminal reaches the
demo only and the demo stops them in order (workers first, so they leave the group and flush;
then Redis, then the broker). A second Ctrl-C skips the graceful waits.

The simulated days end at today's UTC midnight because workers reject events from the future
(``max_clock_skew``); the wall clock only picks that default, everything else is event time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from streams.cli.alerts import ALERT_KINDS, CatchUp, follow_alerts, format_alert, parse_kinds, parse_seconds
from streams.local import Service, free_port, start_kafka, start_redis
from streams.settings import Settings
from streams.cli.argtypes import parse_start_ms, positive_int
from streams.offline.simulate import generate, persona_counts
from streams.timefmt import DAY_MS, format_ts

__all__ = ["DemoOptions", "WorkerProcess", "add_arguments", "alert_precision_line", "processed_line", "run", "orchestrate"]

#: the project (streams/cli/demo.py -> the folder holding streams/): logs go to .churnwatch/demo there,
#: which .gitignore and `make clean` name (parents[1] was streams/, where neither looked)
ROOT = Path(__file__).resolve().parents[2]
_STATUS_EVERY_S = 5.0
_WORKER_READY_TIMEOUT_S = 90.0
_WORKER_STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    users: int = 2000
    days: int = 120
    workers: int = 2
    seed: int = 7
    duration_s: float | None = None  # None: until Ctrl-C after the replay finished
    start_ms: int | None = None  # None: ``days`` before today's UTC midnight
    metrics_port: int = 0  # first worker's port, the next ones follow; 0 = free ports
    show: frozenset[str] = frozenset({"at_risk", "recovered"})
    alert_lines: int = 20  # alerts of the shown kinds printed as lines; the later ones are only counted
    workdir: Path = ROOT / ".churnwatch" / "demo"

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"--users must be at least 1 user, got {self.users}")
        if self.days < 1:
            raise ValueError(f"--days must be at least 1 day, got {self.days}")
        if not 1 <= self.workers <= 16:
            raise ValueError(f"--workers must be 1 to 16 worker processes, got {self.workers}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError(f"--duration must be more than 0 seconds, got {self.duration_s}")
        if self.alert_lines < 1:
            raise ValueError(f"--alert-lines must be at least 1 line, got {self.alert_lines}")
        if self.metrics_port and not 1024 <= self.metrics_port <= 65535 - self.workers:
            raise ValueError(f"--metrics-port must be a TCP port from 1024 to {65535 - self.workers}, got {self.metrics_port}")


@dataclass
class WorkerProcess:
    """One ``churnwatch worker`` subprocess, its metrics port and its log file."""

    index: int
    metrics_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    command: tuple[str, ...] = ("worker",)  # ("console", "--port", P) for the console (issue 13)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self, settings: Settings) -> None:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "REDIS_URL": settings.redis_url,
            "CHURNWATCH_TOPIC_EVENTS": settings.topic_events,
            "CHURNWATCH_TOPIC_ALERTS": settings.topic_alerts,
            "CHURNWATCH_TOPIC_DLQ": settings.topic_dlq,
            "CHURNWATCH_PARTITIONS": str(settings.partitions),
            "CHURNWATCH_METRICS_BIND": "127.0.0.1",
            "CHURNWATCH_METRICS_PORT": str(self.metrics_port),
            # A replay of past months: only event time may move the clocks (live mode would let
            # idle partitions jump to today and call everybody churned).
            "CHURNWATCH_CLOCK": "event",
            "PYTHONUNBUFFERED": "1",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *self.command],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops workers in order
            )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout_s: float) -> None:
        """SIGTERM, wait, then SIGKILL: a worker leaves the group and flushes on SIGTERM."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1.0) as resp:  # noqa: S310 - loopback only
            return int(resp.status) == 200
    except Exception:  # refused, 503, timeout: not ready yet
        return False


@dataclass
class _Tally:
    """What the summary reports; wall times are for people only (throughput, waiting)."""

    t0: float = field(default_factory=time.monotonic)
    by_kind: dict[str, int] = field(default_factory=lambda: {k: 0 for k in ALERT_KINDS})
    first_alert_s: float | None = None
    shown: int = 0  # alerts of the kinds --show names (printed or not)
    printed: int = 0  # of those, printed as lines (at most --alert-lines)
    to_publish: int = 0  # events the simulator generated (0 until it has)
    published: int = 0
    publish_started_s: float | None = None
    publish_s: float = 0.0
    last_offsets: dict[int, int] = field(default_factory=dict)
    replay_done_s: float | None = None
    processed: int = 0
    stream_time_ms: int = 0
    at_risk: list[tuple[str, int]] = field(default_factory=list)  # (user, event time ms) of at-risk alerts
    churned_at: dict[str, int] = field(default_factory=dict)  # the simulator's truth
    end_ms: int = 0  # end of the simulated window


def processed_line(t: _Tally) -> str:
    """The summary's line on the replay: its speed once done, else how far it got out of what the
    simulator generated (the publisher's count exists only once publishing finished: "of 0" before)."""
    if t.replay_done_s is not None and t.publish_started_s is not None:
        took = max(t.replay_done_s - t.publish_started_s, 1e-9)
        return (f"processed             {t.processed:,} events in {took:.1f} s from the first publish to the last "
                f"state write ({t.processed / took:,.0f} events/s end to end)")
    if not t.to_publish:
        return f"processed             {t.processed:,} events (stopped before the simulated events were published)"
    return f"processed             {t.processed:,} of {t.to_publish:,} events (replay not finished)"


def alert_precision_line(at_risk: list[tuple[str, int]], churned_at: dict[str, int], end_ms: int, horizon_ms: int = 30 * DAY_MS) -> str:
    """The share of at-risk alerts followed by churn within the horizon, against the simulator's
    truth (its ``churned_at`` is the user's last event); alerts whose horizon passes the end of
    the simulated window are not judged.

    >>> alert_precision_line([("a", 0), ("b", 0), ("c", 10**12)], {"a": 5}, 10**11)
    'at-risk alerts        1 of 2 judged (50%) followed by churn within 30 days (simulator truth); 1 too recent to judge'
    """
    judged = [(u, t) for u, t in at_risk if t + horizon_ms <= end_ms]
    hits = sum(1 for u, t in judged if u in churned_at and t <= churned_at[u] <= t + horizon_ms)
    share = f" ({100.0 * hits / len(judged):.0f}%)" if judged else ""
    return (f"at-risk alerts        {hits:,} of {len(judged):,} judged{share} followed by churn within "
            f"{horizon_ms // DAY_MS} days (simulator truth); {len(at_risk) - len(judged):,} too recent to judge")


class _Demo:
    def __init__(self, settings: Settings, opts: DemoOptions, out: TextIO) -> None:
        self.settings = settings
        self.opts = opts
        self.out = out
        self.stop = asyncio.Event()
        self.force = False
        self.services: list[Service] = []
        self.workers: list[WorkerProcess] = []
        self.console: WorkerProcess | None = None
        self.tally = _Tally()
        self.reason = ""
        self.summarised = False  # the summary was printed when the replay was done
        self.catch_up = CatchUp()  # the follower says when it read every alert published so far
        self.summary_counts: dict[str, int] = {}  # alerts by kind when the summary was printed

    # -- output -----------------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def elapsed(self) -> str:
        return f"[{time.monotonic() - self.tally.t0:6.1f}s]"

    # -- signals ------------------------------------------------------------------------------

    def on_signal(self, signum: int) -> None:
        if self.stop.is_set():
            self.force = True
            self.say(f"{self.elapsed()} second {signal.Signals(signum).name}: stopping without waiting")
            return
        self.reason = signal.Signals(signum).name
        self.say(f"\n{self.elapsed()} {self.reason}: stopping (Ctrl-C again to skip the graceful waits)")
        self.stop.set()

    # -- phases -------------------------------------------------------------------------------

    async def start_servers(self) -> None:
        kafka = await asyncio.to_thread(start_kafka, log_dir=self.opts.workdir)
        self.services.append(kafka)
        self.say(f"{self.elapsed()} Kafka broker   {kafka.address}  ({_origin(kafka)})")
        redis = await asyncio.to_thread(start_redis)
        self.services.append(redis)
        self.say(f"{self.elapsed()} Redis          {redis.address}  ({_origin(redis)})")
        self.settings = self.settings.with_(kafka_bootstrap_servers=kafka.address, redis_url=redis.address)

    async def create_topics(self) -> None:
        from streams.worker.topics import ensure_topics
        from streams.publisher import check_kafka_reachable

        await asyncio.to_thread(check_kafka_reachable, self.settings)

        outcome = await asyncio.to_thread(ensure_topics, self.settings)
        made = ", ".join(f"{name} ({state})" for name, state in outcome.items())
        self.say(f"{self.elapsed()} topics         {made}, {self.settings.partitions} partitions each")

    async def start_workers(self) -> None:
        base = self.opts.metrics_port
        for i in range(self.opts.workers):
            port = base + i if base else free_port()
            w = WorkerProcess(i + 1, port, self.opts.workdir / f"worker-{i + 1}.log")
            w.start(self.settings)
            self.workers.append(w)
            self.say(f"{self.elapsed()} worker {w.index}       pid {w.proc.pid if w.proc else '?'}, metrics {w.url}/metrics, log {w.log_path}")
        self.say(f"{self.elapsed()} waiting for the workers to join the consumer group ...")
        deadline = time.monotonic() + _WORKER_READY_TIMEOUT_S
        pending = list(self.workers)
        while pending and not self.stop.is_set():
            self.check_workers()
            ready = await asyncio.gather(*(asyncio.to_thread(_ready, w.url) for w in pending))
            pending = [w for w, ok in zip(pending, ready) if not ok]
            if not pending:
                break
            if time.monotonic() > deadline:
                self.say(f"{self.elapsed()} worker(s) {', '.join(str(w.index) for w in pending)} not ready after "
                         f"{_WORKER_READY_TIMEOUT_S:.0f} s; going on (they catch up from Redis progress)")
                break
            await self._sleep(0.5)
        if not pending:
            self.say(f"{self.elapsed()} workers ready")

    def start_console(self) -> None:
        """``churnwatch console`` on the demo's state: port 8088, or a free one if that is taken."""
        import socket

        from streams.local import free_port

        with socket.socket() as probe:
            port = 8088 if probe.connect_ex(("127.0.0.1", 8088)) != 0 else free_port()
        self.console = WorkerProcess(0, port, self.opts.workdir / "console.log", command=("console", "--port", str(port)))
        self.console.start(self.settings)
        self.say(f"{self.elapsed()} console        {self.console.url}/  (My book, quadrant, churn; JSON API /api/v1, "
                 f"/openapi.json), log {self.console.log_path}")

    def check_workers(self) -> None:
        for w in self.workers:
            code = w.exited()
            if code is not None and not self.stop.is_set():
                raise _WorkerDied(f"worker {w.index} exited with code {code}; last lines of {w.log_path}:\n{w.log_tail()}")

    async def follow(self, ready: asyncio.Event) -> None:
        async for alert in follow_alerts(self.settings, from_beginning=False, ready=ready, catch_up=self.catch_up):
            kind = str(alert.get("kind"))
            self.tally.by_kind[kind] = self.tally.by_kind.get(kind, 0) + 1
            if kind == "at_risk":
                self.tally.at_risk.append((str(alert.get("user_id")), int(alert.get("event_time_ms") or 0)))
            if self.tally.first_alert_s is None:
                self.tally.first_alert_s = time.monotonic() - self.tally.t0
            if kind in self.opts.show:
                self.print_alert(alert)

    def print_alert(self, alert: dict[str, Any]) -> None:
        """The first ``--alert-lines`` alerts as lines, then one line saying the rest are counted: a
        replay's thousands of lines would scroll away the console's address (QA5 L1)."""
        t = self.tally
        t.shown += 1
        if t.printed < self.opts.alert_lines:
            t.printed += 1
            self.say("  " + format_alert(alert))
        elif t.shown == t.printed + 1:
            self.say(f"  ... further alerts are counted, not printed (the status lines count them by kind; "
                     f"the console lists the open ones; --alert-lines N prints more)")

    async def publish(self) -> None:
        from streams.publisher import publish_bulk_async

        opts = self.opts
        start_ms = opts.start_ms
        if start_ms is None:
            today = int(time.time() * 1000) // DAY_MS * DAY_MS
            start_ms = today - opts.days * DAY_MS
        events, truth = await asyncio.to_thread(generate, opts.seed, opts.users, start_ms, opts.days)
        churners = sum(t.churned_at_ms is not None for t in truth)
        self.tally.churned_at = {t.user_id: t.churned_at_ms for t in truth if t.churned_at_ms is not None}
        self.tally.end_ms = start_ms + opts.days * DAY_MS
        mix = ", ".join(f"{n} {p}" for p, n in persona_counts(truth).items())
        self.say(f"{self.elapsed()} simulated      {len(truth):,} users ({mix})")
        self.say(f"{self.elapsed()}                {len(events):,} events from {format_ts(start_ms)[:10]} to "
                 f"{format_ts(start_ms + opts.days * DAY_MS)[:10]}; {churners:,} users stop for good in that time")
        self.say(f"{self.elapsed()} publishing to {self.settings.topic_events} as fast as the broker acks ...")
        total = len(events)
        self.tally.to_publish = total
        self.tally.publish_started_s = time.monotonic() - self.tally.t0

        def progress(n: int) -> None:
            if n < total:
                self.say(f"{self.elapsed()} published {n:,} / {total:,} events")

        stats = await publish_bulk_async(self.settings, events, progress=progress)
        self.tally.published, self.tally.publish_s, self.tally.last_offsets = stats.events, stats.seconds, stats.last_offsets
        self.say(f"{self.elapsed()} published      {stats.events:,} events in {stats.seconds:.1f} s "
                 f"({stats.events_per_s:,.0f} events/s); workers are catching up")

    async def watch_progress(self) -> None:
        """Status every few seconds from Redis progress (the source of truth), until stopped."""
        from streams.worker.store import Store

        store = Store(self.settings)
        last_status = time.monotonic()
        try:
            while not self.stop.is_set():
                self.check_workers()
                try:
                    progress = await store.read_progress(self.settings.topic_events)
                except Exception:  # Redis busy or restarting: the status line can wait
                    progress = {}
                if progress:
                    self.tally.processed = sum(offset + 1 for offset, _ in progress.values())
                    self.tally.stream_time_ms = max(ms for _, ms in progress.values())
                done = bool(self.tally.last_offsets) and all(
                    progress.get(p, (-1, 0))[0] >= off for p, off in self.tally.last_offsets.items()
                )
                if done and self.tally.replay_done_s is None:
                    self.tally.replay_done_s = time.monotonic() - self.tally.t0
                    await self.replay_done()
                elif time.monotonic() - last_status >= _STATUS_EVERY_S and self.tally.replay_done_s is None:
                    last_status = time.monotonic()
                    when = format_ts(self.tally.stream_time_ms)[:10] if self.tally.stream_time_ms else "-"
                    self.say(f"{self.elapsed()} processed {self.tally.processed:,} events, stream time {when}; {self.alert_counts()}")
                await self._sleep(0.5)
        finally:
            await store.close()

    async def replay_done(self) -> None:
        """The summary, then the console's address: both on screen while the console still serves."""
        self.say(f"{self.elapsed()} replay done    {self.tally.processed:,} events processed, stream time "
                 f"{format_ts(self.tally.stream_time_ms)[:16].replace('T', ' ')}; {self.alert_counts()}")
        await self.last_reviews()
        await self.alerts_read()
        await self.summary()
        self.summarised = True
        self.summary_counts = dict(self.tally.by_kind)
        self.say("")
        self.say(self.console_line())

    async def last_reviews(self) -> None:
        """Wait for the reviews due at the very end of the stream: a worker runs them once each of its
        caught-up partitions has been idle ``idle_partition_ms`` and borrows the others' stream time
        (streams/worker/clock.py), a few seconds after the last event; their alerts belong in the summary."""
        wait_s = self.settings.idle_partition_ms / 1000 + 2.0
        self.say(f"{self.elapsed()} waiting {wait_s:.0f} s for the reviews due at the end of the stream (a partition's "
                 f"clock moves on once it has been idle {self.settings.idle_partition_ms / 1000:g} s) ...")
        await self._sleep(wait_s)

    async def alerts_read(self, most_s: float = 15.0) -> None:
        """Wait (at most ``most_s``) until the follower read the alerts topic to its end: the workers
        publish an alert before they write the progress that says "done", but the follower reads
        it a moment later, and the summary's counts should hold every alert of the replay."""
        self.catch_up.wanted.set()
        await self._sleep_until(self.catch_up.done, most_s)

    def console_line(self) -> str:
        """Where the console is, and that it still runs (or why it does not)."""
        if self.console is None:
            return "console: not started"
        code = self.console.exited()
        if code is not None:
            return f"console: exited with code {code}; last lines of {self.console.log_path}:\n{self.console.log_tail()}"
        until = "Ctrl-C to stop" if self.opts.duration_s is None else \
            f"until --duration {self.opts.duration_s:g} s is reached; Ctrl-C stops sooner"
        return f"console: {self.console.url}/  (still running, {until}: My book lists the users to save)"

    def alert_counts(self) -> str:
        return "alerts " + ", ".join(f"{k} {n:,}" for k, n in self.tally.by_kind.items())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _sleep_until(self, event: asyncio.Event, seconds: float) -> None:
        """Until ``event`` is set, the demo is stopped, or ``seconds`` passed."""
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.stop.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # -- summary and shutdown -------------------------------------------------------------------

    async def summary(self) -> None:
        from streams.views import churn_rate, top_users
        from streams.worker.store import StoreReader

        t = self.tally
        self.say("")
        self.say("=== summary ===")
        self.say(f"alerts by kind        {', '.join(f'{k} {n:,}' for k, n in t.by_kind.items())}")
        if t.shown > t.printed:
            self.say(f"alert lines           the first {t.printed:,} of {t.shown:,} {'/'.join(sorted(self.opts.show))} alerts "
                     f"printed; the console lists the open ones")
        if t.first_alert_s is None:
            self.say("first alert           none yet")
        else:
            since_publish = (f", {t.first_alert_s - t.publish_started_s:.1f} s after the first event was published"
                             if t.publish_started_s is not None else "")
            self.say(f"first alert after     {t.first_alert_s:.1f} s from the start of the demo{since_publish}")
        if t.published:
            self.say(f"published             {t.published:,} events in {t.publish_s:.1f} s ({t.published / max(t.publish_s, 1e-9):,.0f} events/s)")
        self.say(processed_line(t))

        def reports() -> tuple[list[Any], dict[str, Any]] | str:
            reader = StoreReader(self.settings)
            try:
                return top_users(reader, self.settings, 10), churn_rate(reader, self.settings, 30)
            except Exception as exc:  # no progress yet, Redis gone: say so, the rest still prints
                return str(exc)
            finally:
                with contextlib.suppress(Exception):
                    reader.close()

        result = await asyncio.to_thread(reports)
        if isinstance(result, str):
            self.say(f"reports               unavailable: {result}")
            return
        top, churn = result
        self.say(f"churn rate (30 days)  {churn['churned']:,} users = {100 * churn['churn_rate']:.1f}% of "
                 f"{churn['active_at_start']:,} active at the start; purchases of churned users {churn['churned_revenue']:,.2f} "
                 f"(as of {churn['as_of'][:16].replace('T', ' ')}, stream time)")
        self.say(alert_precision_line(t.at_risk, t.churned_at, t.end_ms))
        if not top:
            self.say("top 10 to save        nobody reachable")
            return
        self.say("top 10 to save (reachable users by the savable part of the risk, P(alive) x P(leaves | alive): still there "
                 "and likely to go; `churnwatch top --win-back` lists the lapsed)")
        for i, r in enumerate(top, start=1):
            s = r.scores
            self.say(f"  {i:>2}. {r.user_id:<10} risk {s.risk:.2f}  savable {r.savable or 0.0:.2f}  health {s.health:3.0f}  "
                     f"temp {s.temperature:3.0f}  "
                     f"{s.stage:<11} -> {s.action.replace('_', ' ')}" + (f": {s.reasons[0]}" if s.reasons else ""))

    def shutdown(self) -> None:
        """Workers first (they leave the group and flush), then Redis, then the broker."""
        wait = 0.5 if self.force else _WORKER_STOP_TIMEOUT_S
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in self.workers:
            w.stop(wait)
        if self.console is not None:
            self.console.stop(wait)
        for svc in reversed(self.services):
            svc.stop()


class _WorkerDied(RuntimeError):
    pass


def _origin(svc: Service) -> str:
    if svc.origin in ("environment", "testcontainers"):
        return svc.origin
    return f"{Path(svc.origin).name}, pid {svc.proc.pid if svc.proc else '?'}"


async def orchestrate(settings: Settings, opts: DemoOptions, out: TextIO = sys.stdout) -> int:
    """The whole demo; returns the exit code. Stops everything it started, whatever happens."""
    demo = _Demo(settings, opts, out)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, demo.on_signal, sig)
    tasks: list[asyncio.Task[Any]] = []
    code = 0
    try:
        demo.say(f"{demo.elapsed()} churnwatch demo: {opts.users:,} users over {opts.days} days, {opts.workers} workers"
                 + (f", stopping after {opts.duration_s:g} s" if opts.duration_s else ""))
        if opts.duration_s is not None:
            loop.call_later(opts.duration_s, _duration_over, demo)
        opts.workdir.mkdir(parents=True, exist_ok=True)
        await demo.start_servers()
        if not demo.stop.is_set():
            await demo.create_topics()
        if not demo.stop.is_set():
            await demo.start_workers()
        if not demo.stop.is_set():
            demo.start_console()
        if not demo.stop.is_set():
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(demo.follow(ready), name="follow"))
            waits = [asyncio.ensure_future(ready.wait()), asyncio.ensure_future(demo.stop.wait())]
            await asyncio.wait([tasks[0], *waits], return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if tasks[0].done():
                tasks[0].result()  # the follower failed: raise its error
        if not demo.stop.is_set():
            tasks.append(asyncio.create_task(demo.watch_progress(), name="progress"))
            tasks.append(asyncio.create_task(demo.publish(), name="publish"))
            stopper = asyncio.ensure_future(demo.stop.wait())
            while not demo.stop.is_set():
                done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not stopper and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                tasks = [t for t in tasks if not t.done()]
            stopper.cancel()
    except _WorkerDied as exc:
        demo.say(f"{demo.elapsed()} error: {exc}")
        code = 1
    finally:
        demo.stop.set()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            if demo.services and len(demo.services) == 2 and code == 0:
                if not demo.summarised:
                    await demo.summary()
                elif demo.tally.by_kind != demo.summary_counts:  # alerts that came after it
                    demo.say(f"alerts by kind now    {', '.join(f'{k} {n:,}' for k, n in demo.tally.by_kind.items())} "
                             f"(the summary said {', '.join(f'{k} {n:,}' for k, n in demo.summary_counts.items())})")
        finally:
            demo.say(f"\n{demo.elapsed()} stopping workers, Redis and the broker ...")
            await asyncio.to_thread(demo.shutdown)
            demo.say(f"{demo.elapsed()} stopped")
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    return code


def _duration_over(demo: _Demo) -> None:
    if not demo.stop.is_set():
        demo.say(f"\n{demo.elapsed()} --duration reached")
        demo.stop.set()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=positive_int("users"), default=2000, help="simulated users (default 2000)")
    parser.add_argument("--days", type=positive_int("days"), default=120, help="simulated days, ending today UTC (default 120)")
    parser.add_argument("--workers", type=positive_int("workers"), default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    parser.add_argument("--duration", default=None, metavar="S",
                        help="stop after S seconds (also 90s, 5m); default: run until Ctrl-C after the replay")
    parser.add_argument("--start", default=None, metavar="DATE",
                        help="first simulated day (default: DAYS before today, so no event is in the future)")
    parser.add_argument("--metrics-port", type=int, default=0, metavar="PORT",
                        help="metrics port of worker 1, the others follow (default: free ports)")
    parser.add_argument("--show", default="at_risk,recovered", metavar="KIND[,KIND]",
                        help=f"alert kinds to print ({', '.join(ALERT_KINDS)}; all are counted)")
    parser.add_argument("--alert-lines", type=positive_int("lines"), default=20, metavar="N",
                        help="print the first N alerts of the --show kinds, count the rest (default 20)")
    parser.add_argument("--workdir", default=None, metavar="DIR",
                        help="where worker and broker logs go (default .churnwatch/demo in the project)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    opts = DemoOptions(
        users=args.users,
        days=args.days,
        workers=args.workers,
        seed=args.seed,
        duration_s=parse_seconds(args.duration, name="--duration", positive=True) if args.duration is not None else None,
        start_ms=parse_start_ms(args.start) if args.start else None,
        metrics_port=args.metrics_port,
        show=parse_kinds(args.show, name="--show") or frozenset(ALERT_KINDS),
        alert_lines=args.alert_lines,
        **({"workdir": Path(args.workdir)} if args.workdir else {}),
    )
    if args.log_level is None and settings.log_level.upper() == "INFO":
        # The demo talks in its own progress lines; library INFO logs would drown them.
        import logging

        logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(orchestrate(settings, opts))
