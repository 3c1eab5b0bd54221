"""Publishing to and reading from the real broker in tests."""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from adapters.kafka import drop_topics, ensure_topics


def publish(bootstrap: str, topic: str, values: Iterable[bytes], *,
            key: bytes | None = None, timestamp_ms: int | None = None) -> int:
    """Send and wait for every acknowledgement; return how many were acknowledged.

    timestamp_ms: the records' time, which topics that keep producers' timestamps record.
    """
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             max_request_size=4 * 1024 * 1024, linger_ms=5)
    try:
        futures = [producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)
                   for value in values]
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


def fresh_topics(bootstrap: str, names: Iterable[str],
                 overrides: dict[str, str] | None = None) -> None:
    """Create the topics empty (with these configs over the partner topics' own): any left by
    an earlier run with the same names goes first."""
    names = sorted(set(names))
    drop_topics(bootstrap, names)
    deadline = time.monotonic() + 60
    while True:
        try:
            ensure_topics(bootstrap, names, overrides=overrides)
            return
        except KafkaError:
            # A name whose deletion the controller has not finished is refused for a moment.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
