"""``churnwatch topics``: create the events, alerts and DLQ topics with explicit partition counts.

Why explicit: brokers that auto-create topics pick their own partition count (Tansu: 4), and the
partition count fixes how far the workers can scale. Existing topics are left alone (idempotent),
but a topic with another partition count is reported, because it changes the key -> partition map.
The creating itself is :func:`streams.kafka_admin.create_topics`, shared with the other roles.
"""

from __future__ import annotations

from streams.kafka_admin import create_topics
from streams.settings import Settings

__all__ = ["ensure_topics", "events_topic_configs"]

DAY_MS = 86_400_000


def events_topic_configs(settings: Settings) -> dict[str, str]:
    """The events topic's configs: an explicit ``retention.ms`` (``events_retention_days``; 0: -1,
    kept forever). Why: a rebuild after Redis lost its data replays the topic, and the broker's
    default (Kafka's 7 days, as docker-compose.yml ran it) drops what that needs (QA3 #9).

    >>> events_topic_configs(Settings()), events_topic_configs(Settings(events_retention_days=0))
    ({'retention.ms': '15552000000'}, {'retention.ms': '-1'})
    """
    days = settings.events_retention_days
    return {"retention.ms": str(days * DAY_MS) if days else "-1"}


def ensure_topics(settings: Settings, *, timeout_s: float = 30.0, warn: bool = False) -> dict[str, str]:
    """Create ``topic_events`` (with :func:`events_topic_configs`), ``topic_alerts`` and
    ``topic_dlq`` (the broker's default retention), ``topic_member_alerts`` when ``member_alerts``
    is "separate", and the erasure log (compacted:
    streams/worker/erasure_log.py) with ``settings.partitions`` each.

    Returns ``{topic: "created" | "exists" | "exists with N partitions"}``. Retries while the
    broker is not reachable yet, up to ``timeout_s``. An existing topic is left as it is (its
    retention too: ``kafka-configs.sh --alter`` changes it, docs/OPERATE.md).
    """
    from streams.worker.erasure_log import erasures_topic

    topics = {settings.topic_events: events_topic_configs(settings), settings.topic_alerts: None, settings.topic_dlq: None}
    if settings.member_alerts == "separate":  # account members' user alerts (docs/ALERTS.md, "Routing for a B2B CRM")
        topics[settings.topic_member_alerts] = None
    outcome = create_topics(settings, topics, timeout_s=timeout_s, warn=warn)
    log = erasures_topic(settings)  # its partition count does not matter (read whole): never warned about
    outcome.update(create_topics(settings, {log: {"cleanup.policy": "compact"}}, timeout_s=timeout_s))
    return outcome
