"""Publishing to and reading from the real broker in tests."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaProducer


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
