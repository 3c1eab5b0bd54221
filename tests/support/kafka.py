"""Publishing to and reading from the real broker in tests."""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def publish(bootstrap: str, topic: str, values: Iterable[bytes], *,
            key: bytes | None = None) -> int:
    """Send and wait for every acknowledgement; return how many were acknowledged."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             max_request_size=4 * 1024 * 1024, linger_ms=5)
    try:
        futures = [producer.send(topic, value, key=key) for value in values]
        producer.flush(timeout=60)
        return sum(1 for f in futures if f.get(timeout=60) is not None)
    finally:
        producer.close(timeout=10)


def read_topic(bootstrap: str, topic: str, count: int, *, timeout: float = 30.0) -> list:
    """The first `count` records of a topic, across its partitions (fewer if time runs out)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed", fetch_max_bytes=8 * 1024 * 1024,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
