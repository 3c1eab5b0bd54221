"""Which incarnation of a topic a position belongs to: a re-created topic starts over at 0."""

from __future__ import annotations

from uuid import UUID

from kafka import KafkaConsumer


def topic_id_of(consumer: KafkaConsumer, topic: str) -> UUID | None:
    """Kafka's id of the topic as this consumer's metadata knows it (None: not known)."""
    # kafka-python keeps topic ids from Metadata v10+ responses but has no public accessor.
    topic_id: UUID | None = consumer._client.cluster.topic_id(topic)
    return topic_id


def other_incarnation(landed: UUID | None, current: UUID | None) -> bool:
    """Whether two topic ids name different incarnations (an unknown id matches any)."""
    return landed is not None and current is not None and landed != current
