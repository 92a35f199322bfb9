"""One settings object for every churnwatch process, filled from the environment, then the CLI.

Environment variables are ``CHURNWATCH_<FIELD>`` (upper case) plus the conventional
``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL``. Durations are accepted as ``90s``, ``15m``,
``6h``, ``30d`` or plain milliseconds at this edge only; inside, everything is ``*_ms``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Mapping

__all__ = ["KAFKA_PROTOCOLS", "MEMBER_ALERTS", "SASL_MECHANISMS", "Settings", "SettingsError", "aiokafka_client_kwargs", "forbid_topic_autocreation", "parse_duration_ms", "redact_url", "topic_refusal"]

ClockMode = Literal["event", "live"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class SettingsError(ValueError):
    """A setting with a value we cannot use; the message names the setting and the value."""


#: ``Settings.member_alerts``' values: account members' user alerts on the alerts topic, on their own
#: topic (``topic_member_alerts``), or not published.
MEMBER_ALERTS: tuple[str, ...] = ("alerts", "separate", "none")

#: ``Settings.kafka_security_protocol``'s values and ``kafka_sasl_mechanism``'s (besides "": no SASL):
#: the ones aiokafka and kafka-python both take with a user name and password.
KAFKA_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def topic_refusal(name: str) -> str | None:
    """Why ``name`` is not a Kafka topic name, or None. Kafka's rule: 1-249 characters of
    ``[a-zA-Z0-9._-]``, not ``.`` or ``..``. Checked here because Tansu accepts any name, so a typo
    ("bad topic!", an empty variable) would only be refused on a real Kafka cluster, at deploy time.

    >>> topic_refusal("activity-events") is None, topic_refusal("bad topic!"), topic_refusal("..")
    (True, "is not a Kafka topic name: use 1-249 of a-z A-Z 0-9 . _ - (got 'bad topic!')", "is not a Kafka topic name: '.' and '..' are not allowed")
    """
    if name in (".", ".."):
        return "is not a Kafka topic name: '.' and '..' are not allowed"
    if _TOPIC.fullmatch(name) is None:
        shown = name if len(name) <= 60 else f"{name[:40]}... ({len(name)} characters)"
        return f"is not a Kafka topic name: use 1-249 of a-z A-Z 0-9 . _ - (got {shown!r})"
    return None


def parse_duration_ms(text: str | int | float, *, name: str = "duration") -> int:
    """``"30d"`` -> 2592000000. A bare number is milliseconds.

    >>> parse_duration_ms("90s"), parse_duration_ms("2d"), parse_duration_ms(250)
    (90000, 172800000, 250)
    """
    if isinstance(text, (int, float)):
        if text < 0:
            raise SettingsError(f"{name} must not be negative, got {text}")
        return int(text)
    m = _DURATION.match(text)
    if not m:
        raise SettingsError(f"{name}: cannot read {text!r} as a duration (examples: 500ms, 90s, 15m, 6h, 30d)")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2) or "ms"])


@dataclass(frozen=True)
class Settings:
    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    kafka_sasl_mechanism: str = ""  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    topic_events: str = "activity-events"
    topic_alerts: str = "churn-at-risk"
    topic_dlq: str = "activity-events-dlq"
    topic_accounts: str = "customer-accounts"  # account facts, compacted, key = account id
    topic_digest: str = "owner-digest"  # the owners' daily books, key = "<owner>|<day>" (churnwatch digest)
    partitions: int = 8
    replication_factor: int = 1
    # retention of the events topic churnwatch creates (0: kept forever): a rebuild after Redis lost
    # its data replays it, so it must cover the model's 90-day window plus the 30-day horizon, and
    # `churnwatch learn`'s window (180 days in docker-compose.yml); the broker's default (Kafka: 7 days) did not
    events_retention_days: int = 180
    group_id: str = "churnwatch"
    # The workers' consumer-group session: a worker silent this long (killed, hung) is evicted and
    # its partitions go to the others; heartbeats every third of it. On Tansu it also paces every
    # rebalance: a join takes about half of it and a replaced member about 1.8 times it (measured
    # December 2026: 3.2 and 11.3 s at 6 s, 2.3 and 7.4 s at 3 s). Apache Kafka refuses sessions
    # below its group.min.session.timeout.ms (6 s by default).
    session_timeout_ms: int = 6_000
    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS; password in the URL or below
    redis_password: str = field(default="", repr=False)
    redis_cluster: bool = False
    key_prefix: str = "cw"
    buckets: int = 64  # hash-tag buckets; fixed for the life of the data (checked at start)
    groups_per_bucket: int = 256  # small hashes of user records per bucket
    # Batching
    batch_max_records: int = 10_000
    # Near the log's end, a cycle takes at most the records its head (decode, read, score) gets
    # through in about this long, from the measured time per record (streams/worker/batching.py):
    # a burst is applied in short cycles whose alerts leave one after the other, instead of one
    # long cycle holding them all. Deeper backlogs are drained in full batches. 0 (the default):
    # no cap - not shown to lower the p99 on the shared 2-core box (SCALING.md, "Levers").
    batch_target_ms: int = 0
    batch_timeout_ms: int = 100  # getmany's wait when nothing is buffered: bounds idle wake-ups only
    # How long the broker may hold a fetch. Apache Kafka answers as soon as fetch_min_bytes (1) are
    # there, so this mostly paces idle polling; but aiokafka keeps one fetch per broker in flight
    # and leaves partitions with records still buffered out of the next one, so a worker more than
    # its prefetch backoff (100 ms) behind on some partitions may see their new records wait up to
    # this long behind a fetch of idle ones (read from aiokafka 0.14's fetcher; not measured on
    # Apache Kafka here: lower it there if that tail matters). Tansu (510f3e2) answers a fetch that finds data at once,
    # but one that finds none looks again only after half the remaining wait (aiokafka's default 500
    # put ~250 ms into fetches that arrived before their data), and the wait is also its budget for
    # listing the partitions' stored batches (docs/OPERATE.md, "Tansu"): at 5 ms, 15-25 s into a
    # fresh topic at 5-26k events/s, partitions came back empty from most fetches and the p99 age of
    # a record when handed to the cycle grew from ~85 to ~400 ms; at 50 ms it stayed ~90 ms for 40 s.
    # The price on Tansu at low rates: up to 25 ms more in an idle fetch (500 events/s: age p50 22 ->
    # 30 ms, p99 31 -> 53). Idle cost (worker + broker) 0.11 of a core at 10 ms, 0.15 at 4, 0.22 at 2.
    fetch_max_wait_ms: int = 50
    # Cycles in progress at once: 1 runs each cycle to its end (read, score, alerts acked, state
    # written, progress) before the next fetch; 2 reads and scores the next batch while this one's
    # alert acks and state write are in flight (writes still applied one cycle after the other).
    pipeline_depth: int = 2
    # Caught up with pipeline_depth >= 2: let aiokafka prefetch while a cycle decodes, reads and
    # scores (True), or pause fetching then and fetch when the cycle starts applying (False).
    # aiokafka sends no fetch while a prefetched batch sits unread, so with the prefetch a cycle
    # gets what arrived in the first milliseconds of the previous head and the rest waits a cycle
    # more; the pause trades that for a fetch the cycle waits for. On Tansu, whose fetch lists every
    # stored batch, that wait was 7-23 ms a cycle at half the max rate and the p99 did not improve
    # (SCALING.md, "Levers"); not measured on Apache Kafka, where a fetch finds its offset at once.
    prefetch_during_head: bool = True
    # With pipeline_depth >= 2 and the prefetch on: once this long has passed since records were
    # last taken off aiokafka's buffer, a task takes the fetch reply waiting there into the worker's
    # own (dropped on every seek and rebalance), so aiokafka, which fetches a partition again only
    # once its buffered records are taken, sends its next fetch during the cycle instead of at the
    # next cycle's start; the next cycle takes all of it. 0 (the default): off. On Tansu, where a
    # fetch that finds nothing new sleeps half its max wait, 20 ms lowered the p99 at half the max
    # rate when cycles were long (45-57k events/s, or a worker sliding behind) and raised it at
    # 30-34k/s, where cycles are 20-40 ms (40 ms leaves those alone); not measured on Apache Kafka
    # (SCALING.md, "Levers").
    fetch_ahead_ms: int = 0
    # Hand each read chunk's user alerts (``pipeline.read_chunks``) to the producer as soon as that
    # chunk is scored, not after the whole cycle is (their acks still awaited before the cycle's
    # state write). Off: on the shared box the early chunks' alerts left ~half a cycle sooner, but
    # no p50 / p99 gain was shown end to end (SCALING.md, "Levers"); not measured on a quiet box.
    alerts_per_chunk: bool = False
    # Onboarding a history (publish an export, workers replay it): user alerts whose event time is
    # before this ISO date/time are applied to the state as ever (opened and closed there, so the
    # quiet-period rules after it are the same) but not published; counted in
    # churnwatch_alerts_withheld_total. The export's first weeks read its old subscribers as new
    # (QA14 F9: 23% of the at-risk alerts fell in its first 30 days). "" (the default): all published
    alerts_from: str = ""
    # User alerts (at_risk, recovered, stage_changed) of account members: users whose events had named a
    # company account (an account_id not their own) by the alert's time. "alerts" (the default): on the
    # alerts topic with every other alert, as before; "separate": on topic_member_alerts instead, so the
    # alerts topic carries the account alerts and the alerts of users of no account (a B2B CRM works
    # from accounts: QA18 F6, 23 member cases per account case); "none": not published. Either way the
    # state, the console's lists and the account side are as with "alerts"; counted in
    # churnwatch_member_alerts_routed_total{kind,to} (docs/ALERTS.md, "Routing for a B2B CRM")
    member_alerts: str = "alerts"
    topic_member_alerts: str = "churn-at-risk-members"
    # Time
    clock: ClockMode = "event"  # "live": idle partitions' clocks also follow the wall clock
    allowed_lateness_ms: int = 6 * 3_600_000
    # a `subscription` statement later than the allowed lateness for its user's partition but at most
    # this far behind that partition's stream time still reaches its account and the live MRR figures
    # (not the user's state) when it rewrites no settled change of the account (docs/REVENUE.md,
    # "Statements late for their user"). 3 days: Stripe retries a webhook for up to 3 days, and a
    # nightly billing export is about a day late. At or below allowed_lateness_ms: off
    billing_lateness_ms: int = 3 * 86_400_000
    max_clock_skew_ms: int = 3_600_000  # events further in the future than this go to the DLQ
    idle_partition_ms: int = 5_000  # live mode: a caught-up partition idle this long follows wall time
    # account alerts wait for the slowest producing partition at most this far behind the fastest
    # (streams/worker/watermark.py): a backlog or a rebuild whose partitions drift up to a week apart
    # still reaches accounts in event order; a stuck partition delays them no more than this
    account_grace_ms: int = 7 * 86_400_000
    # a worker reading a backlog keeps each partition at most this far ahead, in event time, of the
    # slowest partition still behind its log end (its own and, through Redis, other workers'), so
    # account copies reach their accounts nearly in event order and leave by the watermark, not
    # the 500-copy bound (streams/worker/align.py; docs/REVENUE.md, "Aligned reading"). 0: off
    align_ahead_ms: int = 6 * 3_600_000
    max_event_bytes: int = 64 * 1024
    # the ISO 4217 code every amount (mrr, purchase amount) is in; "" = one unnamed currency. An
    # event stating another `currency` is refused (models/currency.py, docs/REVENUE.md "One currency")
    currency: str = ""
    miskeyed: str = "reroute"  # records whose key is not the user id: "reroute" to the user's partition, or "dlq"
    # Model and ops
    model_path: str = ""
    model_takeover: bool = False  # record this worker's model in Redis; workers with another stop (rolling upgrade)
    model_rebuild: bool = False  # with model_takeover: a model of another vocabulary empties the store and replays (rebuild.py)
    # with model_takeover: take over even from this learned successor of the worker's file (a roll-back, once: a
    # successor adopted later has another id, so a flag left set does not roll that one back; store._check_take_over)
    model_rollback_from: str = ""
    metrics_bind: str = "127.0.0.1"
    metrics_port: int = 9108
    # /readyz answers 503 once work has waited this long with no cycle applied (writes refused: QA8 M2)
    stuck_after_ms: int = 30_000
    log_level: str = "INFO"
    # Console and CRM webhooks (streams/console, streams/forward)
    score_history: bool = True  # workers keep 12 weekly score points per user for the console (~20% of advance CPU)
    alert_log: bool = True  # workers keep each user's last 10 alerts worth a call for the console (per alerted user)
    console_bind: str = "127.0.0.1"
    console_port: int = 8088
    console_token: str = field(default="", repr=False)  # bearer token the JSON API requires when set
    forward_secret: str = field(default="", repr=False)  # HMAC-SHA256 key of the webhook signature
    forward_group: str = "churnwatch-forward"  # consumer group of the forwarder (its committed offsets)
    topic_alerts_dlq: str = "churn-at-risk-dlq"  # alerts a webhook receiver refused for good

    def __post_init__(self) -> None:
        for name in ("partitions", "buckets", "groups_per_bucket", "batch_max_records", "replication_factor",
                     "pipeline_depth"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.events_retention_days < 0:
            raise SettingsError(f"events_retention_days must be 0 (kept forever) or more days, got {self.events_retention_days}")
        if self.session_timeout_ms < 1_000:
            # heartbeats every third of it: below a second, a busy event loop looks dead
            raise SettingsError(f"session_timeout_ms must be at least 1000 ms, got {self.session_timeout_ms} ms")
        if self.batch_target_ms < 0:
            raise SettingsError(f"batch_target_ms must be 0 (no cap) or more, got {self.batch_target_ms} ms")
        if not 1 <= self.fetch_max_wait_ms <= 60_000:
            raise SettingsError(f"fetch_max_wait_ms must be between 1 and 60000 ms (0 makes an idle worker poll the "
                                f"broker without pause), got {self.fetch_max_wait_ms} ms")
        if self.stuck_after_ms < 1:
            raise SettingsError(f"stuck_after_ms must be at least 1 ms, got {self.stuck_after_ms} ms")
        if self.billing_lateness_ms < 0:
            raise SettingsError(f"billing_lateness_ms must be 0 (off) or more, got {self.billing_lateness_ms} ms")
        if self.align_ahead_ms < 0:
            raise SettingsError(f"align_ahead_ms must be 0 (off) or more, got {self.align_ahead_ms} ms")
        if self.account_grace_ms < 0 or self.account_grace_ms % 3_600_000:
            # whole hours: the watermark is floored to the hour (streams.worker.watermark), and a
            # heartbeat goes out when a mark enters another hour, which then moves it too
            raise SettingsError(f"account_grace_ms must be 0 or more whole hours, got {self.account_grace_ms} ms")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            # a typo (LOUD, VERBOSE) ran silently at INFO; docs/OPERATE.md: a bad value stops the process
            raise SettingsError(f"log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {self.log_level!r}")
        if self.clock not in ("event", "live"):
            raise SettingsError(f"clock must be 'event' or 'live', got {self.clock!r}")
        self._check_currency()
        self._check_kafka_security()
        _ = self.alerts_from_ms  # parsed now: a bad value stops the process in one line
        if self.member_alerts not in MEMBER_ALERTS:
            raise SettingsError(f"member_alerts (CHURNWATCH_MEMBER_ALERTS) must be {', '.join(MEMBER_ALERTS[:-1])} or "
                                f"{MEMBER_ALERTS[-1]}, got {self.member_alerts!r}")
        if self.miskeyed not in ("reroute", "dlq"):
            raise SettingsError(f"miskeyed must be 'reroute' or 'dlq', got {self.miskeyed!r}")
        if not 0 <= self.console_port <= 65535:
            raise SettingsError(f"console_port must be a TCP port (0-65535), got {self.console_port}")
        self._check_key_prefix()
        self._check_topics()
        if not 1 <= self.metrics_port <= 65535:
            # the worker's web server takes no "any free port" (0 stopped it with a traceback)
            raise SettingsError(f"metrics_port must be a TCP port (1-65535), got {self.metrics_port}")

    @property
    def alerts_from_ms(self) -> int:
        """``alerts_from`` in epoch ms (an ISO date is its midnight UTC; naive times are UTC), 0
        when unset: no event time is before it, every alert is published.

        >>> Settings(alerts_from="2026-02-01").alerts_from_ms, Settings().alerts_from_ms
        (1769904000000, 0)
        """
        if not self.alerts_from.strip():
            return 0
        from streams.timefmt import parse_iso_ms

        try:
            return parse_iso_ms(self.alerts_from.strip())
        except ValueError:
            raise SettingsError(f"alerts_from (CHURNWATCH_ALERTS_FROM, --alerts-from) must be an ISO date or time in event "
                                f"time such as 2026-02-01 or 2026-02-01T00:00:00Z, got {self.alerts_from!r}") from None

    @property
    def members_apart(self) -> bool:
        """Account members' user alerts are kept off the alerts topic (``member_alerts`` is not "alerts").

        >>> Settings().members_apart, Settings(member_alerts="separate").members_apart
        (False, True)
        """
        return self.member_alerts != "alerts"

    def _check_currency(self) -> None:
        """``currency`` is an ISO 4217 code, kept upper case (``usd`` is ``USD``), or empty."""
        from models.currency import currency_code

        try:
            object.__setattr__(self, "currency", currency_code(self.currency))
        except ValueError as exc:
            raise SettingsError(f"CHURNWATCH_CURRENCY: {exc}") from None

    def _check_kafka_security(self) -> None:
        """The protocol is one of :data:`KAFKA_PROTOCOLS` and the mechanism one of :data:`SASL_MECHANISMS`
        or empty, in any case (kept upper case, as Kafka's own clients read them); a SASL protocol
        needs a mechanism. Why here: a typo (``TLS``, ``SCRAM-SHA-515``) let ``topics`` connect in
        plain text and exit 0, a worker retry "cannot start yet (ValueError: `security_protocol`
        should be SSL or PLAINTEXT)" for ever, and a mistyped mechanism was dropped (QA20 F1)."""
        protocol, mechanism = self.kafka_security_protocol.strip().upper(), self.kafka_sasl_mechanism.strip().upper()
        if protocol not in KAFKA_PROTOCOLS:
            raise SettingsError(f"CHURNWATCH_KAFKA_SECURITY_PROTOCOL must be {', '.join(KAFKA_PROTOCOLS[:-1])} or "
                                f"{KAFKA_PROTOCOLS[-1]}, got {self.kafka_security_protocol!r}")
        if mechanism and mechanism not in SASL_MECHANISMS:
            raise SettingsError(f"CHURNWATCH_KAFKA_SASL_MECHANISM must be {', '.join(SASL_MECHANISMS[:-1])} or "
                                f"{SASL_MECHANISMS[-1]} (empty: no SASL), got {self.kafka_sasl_mechanism!r}")
        if protocol.startswith("SASL_") and not mechanism:
            raise SettingsError(f"CHURNWATCH_KAFKA_SECURITY_PROTOCOL {protocol} needs CHURNWATCH_KAFKA_SASL_MECHANISM "
                                f"({', '.join(SASL_MECHANISMS)}) with its user name and password")
        object.__setattr__(self, "kafka_security_protocol", protocol)
        object.__setattr__(self, "kafka_sasl_mechanism", mechanism)

    def _check_topics(self) -> None:
        """Every ``topic_*`` setting is a name Kafka accepts (:func:`topic_refusal`)."""
        for f in fields(self):
            if f.name.startswith("topic_"):
                why = topic_refusal(getattr(self, f.name))
                if why:
                    raise SettingsError(f"{f.name} (CHURNWATCH_{f.name.upper()}) {why}")

    def _check_key_prefix(self) -> None:
        """Refuse a prefix whose keys could be another deployment's, or break the hash tags (keys.prefix_refusal):
        deployments share one Redis by prefix, and a model take-over's rebuild deletes a prefix's keys."""
        from streams.worker.keys import prefix_refusal

        why = prefix_refusal(self.key_prefix)
        if why:
            raise SettingsError(f"key_prefix (CHURNWATCH_KEY_PREFIX) {self.key_prefix!r} {why} (docs/OPERATE.md, "
                                f"\"Configuration\")")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            values["kafka_bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
        if env.get("REDIS_URL"):
            values["redis_url"] = env["REDIS_URL"]
        for f in fields(cls):
            raw = env.get(f"CHURNWATCH_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __repr__(self) -> str:
        """As the dataclass repr, but without secrets: ``repr=False`` fields are left out and a
        password inside ``redis_url`` is shown as ``***`` (settings objects end up in logs and tracebacks).

        >>> "s3cret" in repr(Settings(redis_url="redis://:s3cret@h:6379/0", redis_password="s3cret"))
        False
        """
        shown = (f"{f.name}={redact_url(self.redis_url) if f.name == 'redis_url' else getattr(self, f.name)!r}"
                 for f in fields(self) if f.repr)
        return f"Settings({', '.join(shown)})"

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """Security options in the spelling aiokafka and kafka-python share. Secrets stay out of logs
        (``repr`` hides them)."""
        kw: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap_servers}
        if self.kafka_security_protocol != "PLAINTEXT":
            kw["security_protocol"] = self.kafka_security_protocol
        if self.kafka_sasl_mechanism:
            kw["sasl_mechanism"] = self.kafka_sasl_mechanism
            kw["sasl_plain_username"] = self.kafka_sasl_username
            kw["sasl_plain_password"] = self.kafka_sasl_password
        return kw


def redact_url(url: str) -> str:
    """``redis://user:pw@host:6379/0`` -> ``redis://user:***@host:6379/0``."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = userinfo.split(":", 1)[0] + ":***@" + host
    elif at:
        rest = "***@" + host  # redis-py reads a lone userinfo as a user name, but people put passwords there
    return scheme + sep + rest


def aiokafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection and security options for aiokafka clients (which take an SSL context, not a file).
    Every aiokafka client churnwatch builds takes its options from here, so this is also where
    their metadata requests stop asking the broker to create topics (``forbid_topic_autocreation``)."""
    forbid_topic_autocreation()
    kw = settings.kafka_client_kwargs()
    if "SSL" in settings.kafka_security_protocol:
        from aiokafka.helpers import create_ssl_context

        kw["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile or None)
    return kw


def forbid_topic_autocreation() -> None:
    """Make this process's aiokafka clients send their metadata requests with
    ``allow_auto_topic_creation=False`` (idempotent).

    Why: an aiokafka client refreshes the metadata of the topics it uses (a consumer's subscription,
    a producer's topics) with a metadata request naming them, and aiokafka 0.14 always asks for
    auto-creation there (``aiokafka.client.AIOKafkaClient._metadata_update`` builds
    ``MetadataRequest(topics)``, whose flag defaults to True from request v4 on) and has no option to
    turn it off (kafka-python's ``allow_auto_create_topics``). Tansu creates a topic so named (4
    partitions) when the flag is True and not when it is False (docs/OPERATE.md, "While the topic does
    not exist"): a worker whose broker lost its storage re-created the events topic by its routine
    refresh and took it for a replaced topic. How: ``aiokafka.client.MetadataRequest`` (the name that
    module calls, nothing else) is replaced by a subclass whose flag defaults to False; a request
    that sets the flag itself is untouched. aiokafka is pinned (pyproject.toml, ``aiokafka==0.14.0``);
    on an upgrade, tests/test_no_topic_autocreation.py fails if that name is gone or no longer what
    ``_metadata_update`` builds, and this must then be redone (or dropped, if aiokafka gains an option).
    """
    import aiokafka.client
    from aiokafka.protocol.metadata import MetadataRequest

    current = aiokafka.client.MetadataRequest
    if getattr(current, "churnwatch_no_autocreate", False):
        return
    if current is not MetadataRequest:
        raise RuntimeError(f"aiokafka.client.MetadataRequest is {current!r}, not aiokafka's own: cannot forbid topic "
                           "auto-creation (streams/settings.py forbid_topic_autocreation)")

    class NoAutoCreateMetadataRequest(MetadataRequest):
        """aiokafka's metadata request, asking the broker to create no topic unless told otherwise."""

        churnwatch_no_autocreate = True

        def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False):
            super().__init__(topics, allow_auto_topic_creation)

    aiokafka.client.MetadataRequest = NoAutoCreateMetadataRequest  # type: ignore[misc]


def _coerce(name: str, typ: Any, raw: str) -> Any:
    typ = str(typ)
    if name.endswith("_ms"):
        return parse_duration_ms(raw, name=f"CHURNWATCH_{name.upper()}")
    if typ in ("int", "<class 'int'>"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"CHURNWATCH_{name.upper()} must be a whole number, got {raw!r}") from None
    if typ in ("bool", "<class 'bool'>"):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"CHURNWATCH_{name.upper()} must be true or false, got {raw!r}")
    return raw
