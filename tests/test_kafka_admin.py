"""Creating topics, shared by every role that owns one, against a real broker (Tansu)."""

from __future__ import annotations

import pytest

from streams.kafka_admin import create_topics, list_topics, partition_count
from streams.settings import Settings

pytestmark = pytest.mark.integration


def test_create_topics_is_idempotent_and_reports_another_partition_count(kafka_bootstrap: str, unique_name: str) -> None:
    three = Settings(kafka_bootstrap_servers=kafka_bootstrap, partitions=3)
    first = create_topics(three, {f"a-{unique_name}": None, f"c-{unique_name}": {"cleanup.policy": "compact"}})
    assert first == {f"a-{unique_name}": "created", f"c-{unique_name}": "created"}
    assert {f"a-{unique_name}", f"c-{unique_name}"} <= list_topics(three)
    assert partition_count(three, f"c-{unique_name}") == 3
    assert create_topics(three, {f"a-{unique_name}": None}) == {f"a-{unique_name}": "exists"}
    five = Settings(kafka_bootstrap_servers=kafka_bootstrap, partitions=5)
    assert create_topics(five, {f"a-{unique_name}": None}) == {f"a-{unique_name}": "exists with 3 partitions"}

