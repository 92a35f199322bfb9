"""``churnwatch worker``: the Faust app shell around the batch consumer (streams.worker.consumer).

Faust provides the lifecycle (start, SIGTERM/SIGINT, supervised services), a timer and the web
server for ``/metrics``, ``/healthz`` and ``/readyz``. It does *no* Kafka work: no agents, and its
boot strategy turns its own Kafka consumer and producer off. Measured on Tansu: with its Kafka
side on but nothing subscribed, Faust 0.15.3 crashes at start (aiokafka ``subscribe()`` with no
topics); with the leader topic it joins a group of its own (half a session timeout per rebalance,
a second group to keep healthy). Off, the shell serves ``/metrics`` ~0.6 s after start.

The consumer loop runs as an ``@app.service`` task and also performs the idle-time review sweeps
(it wakes every ``batch_timeout_ms`` even without records, under the same lock as the cycles); the
timer refreshes the readiness and business gauges from Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import threading
import time
from typing import Any, Callable, Final

import redis.exceptions

from models.model import DEFAULT_MODEL_PATH, ChurnModel, load_model
from models.revenue_ledger import Ledger
from models.state import STAGES
from streams.worker import metrics
from streams.kafka_admin import RETRY_LOGGER, quiet_kafka_logs
from streams.worker.topics import ensure_topics
from streams.worker.consumer import KafkaSink, StreamConsumer
from streams.worker.pipeline import REDIS_TRANSIENT, Pipeline
from streams.errors import UserError
from streams.settings import Settings, redact_url
from streams.worker.store import Store, StoreMismatch, churn_summary
from streams.worker.vocabulary_text import vocabulary_lines

__all__ = ["run_worker", "build_app", "WorkerRuntime"]

logger = logging.getLogger(__name__)
#: "cannot start yet" every 2 s while Redis or the broker is down at start: held back with a count
#: like the running worker's retries (streams.kafka_admin.RepeatLimit; QA20 F6: 30 lines a minute)
retry_logger = logging.getLogger(RETRY_LOGGER)

GAUGE_INTERVAL_S = 2.0
STOP_TIMEOUT_S = 30.0
EVICTING_LOG_EVERY_S = 60.0  # a Redis that evicts while the worker runs: one ERROR a minute


class WorkerRuntime:
    """Everything one worker process runs, independent of Faust (usable in-process in tests)."""

    def __init__(self, settings: Settings, model: ChurnModel) -> None:
        self.settings = settings
        self.model = model
        self.store = Store(settings)
        self.store.use_model(model)
        self.store.take_over_model = settings.model_takeover
        self.sink = KafkaSink(settings)
        self.pipeline = Pipeline(settings, self.store, self.sink, model)
        self.consumer = StreamConsumer(settings, self.store, self.pipeline, self.sink)
        self.started = False
        self.ready = False  # ``is_ready`` at the last gauge refresh (``churnwatch_ready``)
        self.redis_answered = False  # at the last gauge refresh
        self.exit_code = 0
        self.on_fatal: Callable[[], None] = lambda: None  # stops the process (set by build_app)
        self._run_task: asyncio.Task[None] | None = None
        self._evicting_said: float | None = None  # monotonic time of the last ERROR on an evicting policy

    async def start(self, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Connect (retrying while Redis or the broker is unreachable) and start the loop task.

        Returns False if the worker must not run (settings disagree with the data in Redis).
        """
        delay = 0.1
        while not should_stop():
            try:
                await self.consumer.start()
                break
            except StoreMismatch as exc:
                logger.error("%s", exc)
                self.exit_code = 2
                return False
            except REDIS_AUTH as exc:
                logger.error("%s", credentials_refused(self.settings, exc))
                self.exit_code = 2
                return False
            except Exception as exc:  # Redis or broker unreachable: both have many error types
                if isinstance(exc, REDIS_TRANSIENT):
                    metrics.REDIS_ERRORS.inc()
                retry_logger.warning("cannot start yet (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
        else:
            return False
        self.started = True
        metrics.MODEL_INFO.labels(self.store.model).set(1)
        self._run_task = asyncio.ensure_future(self._run())
        return True

    async def _run(self) -> None:
        """The consumer loop; a worker whose model was replaced (rolling upgrade) stops with code 3,
        one that refused the state's layout (``StreamConsumer.refused``) with code 2."""
        await self.consumer.run()
        if self.consumer.replaced is not None or self.consumer.refused is not None:
            self.exit_code = 3 if self.consumer.replaced is not None else 2
            self.on_fatal()

    async def stop(self) -> None:
        """Let the cycle in flight finish (or abandon it if stuck retrying), then disconnect."""
        self.consumer.request_stop()
        if self._run_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._run_task), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                logger.warning("consumer loop did not stop in %.0f s; cancelling it", STOP_TIMEOUT_S)
                self._run_task.cancel()
            except Exception:
                logger.exception("consumer loop ended with an error")
        await self.consumer.stop()
        self.started = False

    def is_ready(self) -> bool:
        """``/readyz``: Redis answered at the last gauge refresh, and, as of now, partitions are
        assigned, nothing halted or refused, the topic exists, and the worker is not stuck (work
        waiting ``stuck_after_ms`` with no cycle settled: writes refused, QA8 M2). Read per request,
        not only at the refresh: the assignment shows at once (QA8 L2)."""
        c = self.consumer
        return (self.redis_answered and bool(c.assigned) and self.started and c.halted is None and c.refused is None
                and c.missing is None and c.stuck_s() * 1000 < self.settings.stuck_after_ms)

    async def refresh_gauges(self) -> None:
        """The worker's running mark (``StreamConsumer.mark``, once started), readiness and the
        business gauges (all workers' users, from Redis stats); the consumer lag while no cycle
        settles (``StreamConsumer.refresh_lag``: a task of its own, also when Redis does not answer
        below, and never delaying Redis's answer)."""
        self.consumer.refresh_lag()
        age = self.consumer.fetch_reply_age_s()
        metrics.KAFKA_FETCH_REPLY_AGE.set(float("nan") if age is None else age)
        try:
            await self.store.ping()
            await self.consumer.mark.refresh()  # "this worker runs" (streams/worker/liveness.py), also when halted
            stats = await self.store.stats()
            months = await self.store.revenue_totals("month")
            learn = await self.store.last_learn()
        except Exception as exc:  # a timer must never take the worker down
            self.ready = self.redis_answered = False
            metrics.READY.set(0)
            _eviction_unknown()
            logger.debug("gauge refresh failed: %s", exc)
            return
        self.redis_answered = True
        self.ready = self.is_ready()
        metrics.READY.set(1 if self.ready else 0)
        metrics.USERS_TRACKED.set(stats.get("users", 0))
        metrics.USERS_AT_RISK.set(stats.get("at_risk", 0))
        for stage in STAGES:
            metrics.USERS_BY_STAGE.labels(stage).set(stats.get(f"stage:{stage}", 0))
        await self._eviction_gauges()
        if learn:
            _learn_gauges(learn)
        if months:
            latest = max(months)
            now = Ledger.from_totals("month", months).get(latest, latest + 1)[0]
            metrics.MRR.set(now.end_mrr_cents)
            metrics.PAYING_ACCOUNTS.set(now.customers_end)
        now_ms = self.pipeline.clock.global_ms
        if now_ms > 0:
            summary = churn_summary(stats, now_ms // 1000, 30)
            metrics.CHURNED_30D.set(summary.churned)
            metrics.CHURN_RATE_30D.set(summary.rate)
            metrics.CHURNED_REVENUE_30D.set(summary.revenue)

    async def _eviction_gauges(self) -> None:
        """Redis's eviction policy and evicted keys per node (``Store.eviction``): the policy can change
        while the workers run (``CONFIG SET``, a managed Redis's parameter group), and an evicting Redis
        drops state unnoticed (QA8 H1). Rule ChurnwatchRedisEvicting. Unreadable: unknown, never a value
        the rule could take for an eviction (QA review 13 #2)."""
        try:
            found = await self.store.eviction()
        except Exception as exc:  # INFO refused by an ACL, or Redis went away since the refresh above
            logger.debug("eviction gauges not refreshed: %s", exc)
            _eviction_unknown()
            return
        metrics.REDIS_EVICTION_SAFE.set(0 if found.unsafe else -1 if found.unknown else 1)
        if found.unsafe or not found.unknown:
            self._say_evicting(found.unsafe_text() if found.unsafe else None)
        metrics.REDIS_EVICTED_KEYS.clear()  # a node gone (failover) stops its series
        for node, count in found.evicted.items():
            metrics.REDIS_EVICTED_KEYS.labels(node).set(count)

    def _say_evicting(self, text: str | None) -> None:
        """One ERROR naming the runbook when the policy turns unsafe under a running worker, then one
        a minute while it stays so: the worker refuses such a Redis at start only, and went on
        with only the metrics saying so (qa8_verify H1: 45 log lines, all INFO, keys evicted).
        ``text`` None: the policy is safe again, the next unsafe one is said at once."""
        now = time.monotonic()
        if text is None:
            self._evicting_said = None
        elif self._evicting_said is None or now - self._evicting_said >= EVICTING_LOG_EVERY_S:
            logger.error("%s. Runbook: ChurnwatchRedisEvicting", text)
            self._evicting_said = now


def _eviction_unknown() -> None:
    """Redis's eviction policy and count unknown: policy gauge -1, no evicted-keys sample (a 0 or -1
    would read as a counter reset or an increase to ``increase()``)."""
    metrics.REDIS_EVICTION_SAFE.set(-1)
    metrics.REDIS_EVICTED_KEYS.clear()


def _learn_gauges(text: str) -> None:
    """The learner's last comparison (``cw:meta`` field ``learn``, streams/worker/model_record.py)."""
    try:
        last = json.loads(text)
    except ValueError:
        return
    for label, key in (("current", "current_roc_auc"), ("successor", "successor_roc_auc")):
        if isinstance(last.get(key), (int, float)):
            metrics.LEARN_ROC_AUC.labels(label).set(last[key])
    metrics.LEARN_ADOPTED.set(1 if last.get("adopted") else 0)


def build_app(settings: Settings, runtime: WorkerRuntime, datadir: str) -> Any:
    """The Faust app: one service (the consumer loop), one timer (gauges), three web pages."""
    import faust
    from mode import Service

    class ShellBoot(faust.App.BootStrategy):  # type: ignore[misc, name-defined]
        enable_kafka = False  # our own consumer/producer do all Kafka work

    app = faust.App(
        f"{settings.group_id}-worker",
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        web_enabled=True,
        web_bind=settings.metrics_bind,
        web_port=settings.metrics_port,
        web_host=settings.metrics_bind,
        datadir=datadir,
        store="memory://",
        topic_disable_leader=True,
        autodiscover=False,
    )
    app.boot_strategy = ShellBoot(app)
    runtime.on_fatal = lambda: _stop_worker(app)

    @app.service
    class ConsumerService(Service):  # type: ignore[misc]
        """Starts the consumer loop when the app starts; stops it (cleanly) when the app stops."""

        async def on_start(self) -> None:
            self.add_future(self._start())

        async def _start(self) -> None:
            await _ensure_topics_off_loop(settings)  # /healthz answers meanwhile (OPERATE.md)
            if self.should_stop:
                return
            if not await runtime.start(lambda: self.should_stop):
                if runtime.exit_code:
                    logger.error("worker stops: exit code %s", runtime.exit_code)
                    _stop_worker(app)

        async def on_stop(self) -> None:
            await runtime.stop()

    @app.timer(interval=GAUGE_INTERVAL_S)
    async def gauges() -> None:
        await runtime.refresh_gauges()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), content_type=metrics.CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.text("ok\n")

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready = runtime.is_ready()
        return web.text("ready\n" if ready else "not ready\n", status=200 if ready else 503)

    return app


def _stop_worker(app: Any) -> None:
    """Ask the Faust worker that runs ``app`` to shut down, as SIGTERM would."""
    import signal

    worker = getattr(app, "_churnwatch_worker", None)
    if worker is not None:
        worker._schedule_shutdown(signal.SIGTERM)  # noqa: SLF001 - mode's own shutdown path


def _quick_exit(worker_class: Any) -> Any:
    """``worker_class`` (faust's Worker) without most of the loop's last second.

    mode's shutdown ends with a sentinel task sleeping 1.0 s on the loop before closing it, after
    our services (consumer, producer, Redis, web server) stopped and every task was gathered or
    cancelled: it only gives cancellations and closing transports their last callbacks, which a
    tenth of a second of running loop does too. Every worker stop (a restart, a rolling upgrade,
    each test that stops one) was a second longer.
    """

    class Worker(worker_class):  # type: ignore[misc, valid-type]  # same name, same log lines
        async def _sentinel_task(self) -> None:
            await asyncio.sleep(0.1)

    return Worker


def run_worker(settings: Settings) -> int:
    """Run one worker until SIGTERM/SIGINT (or a fatal error); the process exit code."""
    model = load_model(settings.model_path or None)
    _check_metrics_port(settings)
    quiet_kafka_logs(service=True)  # as the CLI set it: the group lines are what an operator reads
    _preflight_store(settings, model)

    _use_uvloop()
    import faust

    # numpy, which the command's imports leave out (tests/test_start_up_imports.py): the alerts'
    # partitioner's (streams.worker.partitioner), loaded here, frozen with the rest of start-up,
    # rather than ~0.1 s into the first cycle with alerts
    import numpy  # noqa: F401

    _tune_gc(settings.batch_max_records, settings.pipeline_depth)

    datadir = tempfile.mkdtemp(prefix="churnwatch-faust-")
    runtime = WorkerRuntime(settings, model)
    app = build_app(settings, runtime, datadir)
    worker = _quick_exit(faust.Worker)(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.spinner = None
    app._churnwatch_worker = worker
    logger.info(
        "worker starting: topic %s, group %s, clock %s, model %s (%s), metrics on %s:%s; %s",
        settings.topic_events, settings.group_id, settings.clock, model.version,
        settings.model_path or f"the shipped {DEFAULT_MODEL_PATH.name}", settings.metrics_bind, settings.metrics_port,
        "; ".join(vocabulary_lines(model)),  # QA10 F7: which names it tracks and which play a role, as train words them
    )
    if settings.members_apart:  # a routing choice the CRM's owner must know of (docs/ALERTS.md, "Routing for a B2B CRM")
        logger.info("user alerts of account members go %s, not to %s (CHURNWATCH_MEMBER_ALERTS=%s)",
                    f"to {settings.topic_member_alerts}" if settings.member_alerts == "separate" else "nowhere",
                    settings.topic_alerts, settings.member_alerts)
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
    return runtime.exit_code or code


def _check_metrics_port(settings: Settings) -> None:
    """Refuse, in one line, a metrics address another process holds (``streams.local.check_listen_address``)."""
    from streams.local import check_listen_address

    check_listen_address(settings.metrics_bind, settings.metrics_port, "metrics", "--metrics-port, CHURNWATCH_METRICS_PORT")


#: Objects the collector tracks per record of a cycle in flight, with margin: the peak of its
#: young generation's count (allocations less deallocations) was 285k in the review-heavy e2e run
#: (10k-record cycles, two in flight: ~14 a record) and 179k in the realistic one.
_TRACKED_PER_RECORD: Final = 50


def _tune_gc(batch_max_records: int = 10_000, pipeline_depth: int = 2) -> None:
    """Fewer, cheaper collections: a cycle allocates tens of thousands of short-lived objects
    (records, events, states) that die young, yet the default thresholds (700/10/10) ran full
    collections of ~70 ms over everything imported at start: 14% of the worker's CPU under
    py-spy. Startup objects are frozen out of the collector and the young generation is larger
    than the cycles in flight keep alive (``_TRACKED_PER_RECORD`` a record): at 50,000, below
    that, a young pass ran every 10k-record cycle or more often and walked its live objects
    (~8% of the review-heavy worker's CPU, measured with ``gc.callbacks``, docs/SCALING.md); now
    one runs only once the cyclic garbage that refcounting cannot free has filled the rest (~1.8k
    objects left by the start, then ~30 in 300k events)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(max(50_000, _TRACKED_PER_RECORD * batch_max_records * pipeline_depth), 20, 100)


def _use_uvloop() -> None:
    """uvloop when installed (the ``fast`` extra): the asyncio side of a cycle gets ~25% cheaper."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())


async def _ensure_topics_off_loop(settings: Settings) -> None:
    """``_ensure_topics_or_warn`` on a daemon thread, once the web server is up: an unreachable
    broker held the process up to its timeouts before faust started, with no ``/healthz`` (QA
    2026-12: ~30 s). A daemon thread, so that a stop during the check does not wait for it."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def check() -> None:
        try:
            _ensure_topics_or_warn(settings)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: the worker stopped meanwhile
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    threading.Thread(target=check, name="churnwatch-ensure-topics", daemon=True).start()
    await done


def _ensure_topics_or_warn(settings: Settings) -> None:
    """Create the topics if missing, so no broker auto-creates them with its own partition count."""
    try:
        ensure_topics(settings, timeout_s=15.0, warn=True)  # a partition count other than the settings': said once
    except Exception as exc:  # the consumer keeps retrying the broker anyway
        logger.warning("could not check/create topics (%s); continuing", exc)


#: Redis refused who we are: a wrong password or user, or an ACL without our commands. Waiting
#: does not fix that, so the worker stops with one line instead of retrying forever.
REDIS_AUTH = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)


def credentials_refused(settings: Settings, exc: BaseException) -> str:
    return (f"Redis at {redact_url(settings.redis_url)} refused the credentials ({exc}): check the password in "
            f"REDIS_URL or CHURNWATCH_REDIS_PASSWORD")


def _preflight_store(settings: Settings, model: ChurnModel) -> None:
    """Refuse to start against Redis data written with other buckets/groups or another model in use
    (one readable line); with ``model_takeover``, record this worker's model (with ``model_rebuild``,
    on an emptied store when the model in use has another vocabulary: streams/worker/rebuild.py)."""
    if settings.model_rebuild and not settings.model_takeover:
        raise UserError("--rebuild-state (CHURNWATCH_MODEL_REBUILD) goes with --take-over-model (CHURNWATCH_MODEL_TAKEOVER)")
    if settings.model_rollback_from and not settings.model_takeover:
        raise UserError("--roll-back-from (CHURNWATCH_MODEL_ROLLBACK_FROM) goes with --take-over-model (CHURNWATCH_MODEL_TAKEOVER)")

    async def check() -> None:
        store = Store(settings)
        store.use_model(model)
        store.take_over_model = settings.model_takeover
        try:
            if settings.model_rebuild:
                from streams.worker.rebuild import rebuild_for_take_over

                await rebuild_for_take_over(store)
            await store.connect()
        finally:
            await store.close()

    try:
        asyncio.run(check())
    except StoreMismatch as exc:
        raise UserError(str(exc)) from None
    except REDIS_AUTH as exc:  # before REDIS_TRANSIENT: these are ConnectionErrors too, but retrying cannot help
        raise UserError(credentials_refused(settings, exc)) from None
    except REDIS_TRANSIENT as exc:
        logger.warning("Redis is not answering yet (%s); the worker keeps trying", exc)
