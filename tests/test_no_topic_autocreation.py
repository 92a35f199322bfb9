"""churnwatch's aiokafka clients never make the broker create a topic by naming it (streams.settings
``forbid_topic_autocreation``): a worker whose broker lost its storage must find the events topic
missing, not re-created by its own consumer's metadata refresh with the broker's partition count."""

from __future__ import annotations

import asyncio
import inspect

import aiokafka.client
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.protocol.metadata import MetadataRequest, MetadataRequest_v4

from streams.settings import Settings, aiokafka_client_kwargs, forbid_topic_autocreation


def test_the_replaced_name_is_what_aiokafka_builds_its_metadata_refresh_with() -> None:
    """Fails on an aiokafka upgrade that renames or stops using ``aiokafka.client.MetadataRequest``
    in ``_metadata_update``: ``forbid_topic_autocreation`` would then silently do nothing."""
    assert "MetadataRequest(" in inspect.getsource(aiokafka.client.AIOKafkaClient._metadata_update)
    forbid_topic_autocreation()
    forbid_topic_autocreation()  # idempotent: one subclass, not a subclass of a subclass
    request_class = aiokafka.client.MetadataRequest
    assert issubclass(request_class, MetadataRequest) and request_class.__bases__ == (MetadataRequest,)
    assert request_class(["t"]).build(MetadataRequest_v4).allow_auto_topic_creation is False
    assert request_class(["t"], True).build(MetadataRequest_v4).allow_auto_topic_creation is True  # asked for: kept


@pytest.mark.integration
def test_clients_using_a_missing_topic_do_not_create_it(kafka_bootstrap: str, unique_name: str) -> None:
    """A consumer subscribed to a missing topic and a producer that adds it each send a
    metadata request naming it (awaited: no timing); the topic still does not exist after. Without
    ``forbid_topic_autocreation`` Tansu creates it (4 partitions) at the consumer's first refresh."""
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap)
    topic = f"missing-{unique_name}"

    async def run() -> set[str]:
        consumer = AIOKafkaConsumer(**aiokafka_client_kwargs(settings), group_id=None)
        producer = AIOKafkaProducer(**aiokafka_client_kwargs(settings))
        await consumer.start()
        await producer.start()
        try:
            consumer.subscribe([topic])  # after start, as the worker does (StreamConsumer.start)
            assert topic in consumer._client._topics, "the consumer's refreshes name the topic"
            assert await consumer._client.force_metadata_update()  # one refresh naming it, answered
            producer.client.add_topic(topic)
            assert await producer.client.force_metadata_update()
            return await consumer.topics()  # a listing of every topic: names none
        finally:
            await producer.stop()
            await consumer.stop()

    assert topic not in asyncio.run(run())
