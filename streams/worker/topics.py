"""``churnwatch topics``: create the events, alerts and DLQ topics with explicit partition counts.

Why explicit: brokers that auto-create topics pick their own partition count (Tansu: 4), and the
partition count fixes how far the workers can scale. Existing topics are left alone (idempotent),
but a topic with another partition count is reported, because it changes the key -> partition map.
The creating itself is :func:`streams.kafka_admin.create_topics`, shared with the other roles.
"""

from __future__ import annotations

from streams.kafka_admin import create_topics
from streams.settings import Settings

__all__ = ["ensure_topics"]


def ensure_topics(settings: Settings, *, timeout_s: float = 30.0) -> dict[str, str]:
    """Create ``topic_events``, ``topic_alerts`` and ``topic_dlq`` with ``settings.partitions`` each.

    Returns ``{topic: "created" | "exists" | "exists with N partitions"}``. Retries while the
    broker is not reachable yet, up to ``timeout_s``.
    """
    names = (settings.topic_events, settings.topic_alerts, settings.topic_dlq)
    return create_topics(settings, dict.fromkeys(names), timeout_s=timeout_s)
