"""``churnwatch topics``: create the events, alerts and DLQ topics with explicit partition counts.

Why explicit: brokers that auto-create topics pick their own partition count (Tansu: 4), and the
partition count fixes how far the workers can scale. Existing topics are left alone (idempotent),
but a topic with another partition count is reported, because it changes the key -> partition map.
"""

from __future__ import annotations

import logging
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.settings import Settings

__all__ = ["ensure_topics", "partition_count", "quiet_kafka_logs"]

logger = logging.getLogger(__name__)


def ensure_topics(settings: Settings, *, timeout_s: float = 30.0) -> dict[str, str]:
    """Create ``topic_events``, ``topic_alerts`` and ``topic_dlq`` with ``settings.partitions`` each.

    Returns ``{topic: "created" | "exists" | "exists with N partitions"}``. Retries while the
    broker is not reachable yet, up to ``timeout_s``.
    """
    names = [settings.topic_events, settings.topic_alerts, settings.topic_dlq]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin = KafkaAdminClient(client_id="churnwatch-topics", **settings.kafka_client_kwargs())
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"no Kafka broker answered at {settings.kafka_bootstrap_servers} in {timeout_s:.0f} s: {exc}") from exc
            time.sleep(0.5)
    outcome: dict[str, str] = {}
    try:
        existing = set(admin.list_topics())
        for name in dict.fromkeys(names):
            if name in existing:
                outcome[name] = "exists"
                continue
            try:
                admin.create_topics([NewTopic(name, settings.partitions, settings.replication_factor)])
                outcome[name] = "created"
            except TopicAlreadyExistsError:
                outcome[name] = "exists"
        for name, state in outcome.items():
            if state != "exists":
                continue
            count = _partition_count(admin, name)
            if count is not None and count != settings.partitions:
                outcome[name] = f"exists with {count} partitions"
                logger.warning("topic %s exists with %s partitions, settings say %s", name, count, settings.partitions)
    finally:
        admin.close()
    return outcome


def quiet_kafka_logs() -> None:
    """kafka-python and aiokafka log every connection at INFO: noise next to ours unless DEBUG."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("kafka", "aiokafka"):
            logging.getLogger(name).setLevel(logging.WARNING)


def partition_count(settings: Settings, topic: str) -> int | None:
    """The partition count of ``topic`` as the broker describes it (None: unknown)."""
    admin = KafkaAdminClient(client_id="churnwatch-topics", **settings.kafka_client_kwargs())
    try:
        return _partition_count(admin, topic)
    finally:
        admin.close()


def _partition_count(admin: KafkaAdminClient, topic: str) -> int | None:
    try:
        described = admin.describe_topics([topic])
    except KafkaError:
        return None
    for entry in described:
        if (entry.get("name") or entry.get("topic")) == topic and entry.get("partitions") is not None:
            return len(entry["partitions"])
    return None


