"""How far an ingestion group has landed each partition, as staging's positions say.

A re-created topic starts over at offset 0: positions carry the topic incarnation's id.
"""

from __future__ import annotations

import re
from datetime import datetime
from uuid import UUID

import psycopg
from kafka import KafkaConsumer, TopicPartition

from adapters.settings import KafkaSettings


def topic_id_of(consumer: KafkaConsumer, topic: str) -> UUID | None:
    """Kafka's id of the topic as this consumer's metadata knows it (None: not known)."""
    # kafka-python keeps topic ids from Metadata v10+ responses but has no public accessor.
    topic_id: UUID | None = consumer._client.cluster.topic_id(topic)
    return topic_id


def other_incarnation(landed: UUID | None, current: UUID | None) -> bool:
    """Whether two topic ids name different incarnations (an unknown id matches any)."""
    return landed is not None and current is not None and landed != current


Positions = dict[tuple[str, int], int]


def broker_positions(kafka: KafkaSettings, *, topic_pattern: str,
                     before: datetime | None = None) -> Positions:
    """The end offset of each matching partition, or with `before` the first offset appended
    at or after that moment (from the broker's append-time index, so the answer does not
    change with when it is asked)."""
    return _broker_positions(kafka, topic_pattern, before)[0]


def _broker_positions(kafka: KafkaSettings, topic_pattern: str, before: datetime | None,
                      ) -> tuple[Positions, dict[str, UUID | None]]:
    consumer = KafkaConsumer(bootstrap_servers=kafka.servers, enable_auto_commit=False,
                             isolation_level="read_committed", **kafka.kafka_security())
    try:
        pattern = re.compile(topic_pattern)
        partitions = [TopicPartition(t, p) for t in sorted(consumer.topics()) if pattern.match(t)
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return {}, {}
        topic_ids = {t: topic_id_of(consumer, t) for t in {tp.topic for tp in partitions}}
        needed = consumer.end_offsets(partitions)
        if before is not None:
            found = consumer.offsets_for_times(
                {tp: int(before.timestamp() * 1000) for tp in partitions})
            needed = {tp: at.offset if (at := found.get(tp)) is not None else end
                      for tp, end in needed.items()}
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): offset for tp, offset in needed.items()}, topic_ids


def partition_lag(kafka: KafkaSettings, *, database_url: str, group_id: str, topic_pattern: str,
                  before: datetime | None = None) -> Positions:
    """Records of each matching partition the group has not landed yet.

    With `before`, only records the broker appended before that moment count. Landed positions
    are the readers' positions, past transaction markers; one landed from an earlier
    incarnation of a re-created topic counts as nothing landed.
    """
    needed, topic_ids = _broker_positions(kafka, topic_pattern, before)
    if not needed:
        return {}
    with psycopg.connect(database_url) as conn:
        landed = {(t, p): o for t, p, o, landed_id in conn.execute(
            "SELECT topic, partition, next_offset, topic_id FROM staging.consumer_offsets "
            "WHERE group_id = %s", (group_id,))
            if not other_incarnation(landed_id, topic_ids.get(t))}
    return {where: max(0, offset - landed.get(where, 0)) for where, offset in needed.items()}
