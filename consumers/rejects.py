"""Refused records go to their partner's rejects topic, whole, before their batch commits."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kafka import KafkaProducer

from adapters.kafka import REJECTS_MAX_MESSAGE_BYTES, ensure_topics
from adapters.settings import KafkaSettings
from schemas.errors import Rejection
from schemas.rejects import reject_headers
from schemas.topics import rejects_topic

try:
    SERVICE_VERSION = version("skillsync")
except PackageNotFoundError:  # run from a checkout that was never installed
    SERVICE_VERSION = "unknown"

# (the refused Kafka record, why, its partner)
ToReject = list[tuple[Any, Rejection, str]]


class RejectsPublisher:
    """Publishes refused records with headers saying where they came from and why.

    Construction does no I/O: the producer connects, and a partner's rejects topic is created,
    on first use. A record published twice (the batch failed to land and was read again) is
    recognised by its original topic, partition and offset.
    """

    def __init__(self, kafka: KafkaSettings, client_id: str, *,
                 reconnect_backoff_max_ms: int) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._reconnect_backoff_max_ms = reconnect_backoff_max_ms
        self._producer: KafkaProducer | None = None
        self._topics_ready: set[str] = set()

    def publish(self, to_reject: ToReject) -> None:
        """Send every refusal and wait for all acknowledgements (KafkaError if one fails)."""
        producer = self._connected()
        self._ensure_topics({partner for _, _, partner in to_reject})
        futures = []
        for record, rejection, partner in to_reject:
            # Kafka lets a record carry neither key nor value, and headers without values;
            # this client can send neither, so those nulls go back as empty bytes.
            headers = [(name, value or b"") for name, value in record.headers or []]
            headers += reject_headers(record.topic, record.partition, record.offset,
                                      record.timestamp, rejection, SERVICE_VERSION)
            value = b"" if record.value is None and record.key is None else record.value
            futures.append(producer.send(
                rejects_topic(partner), value=value, key=record.key, headers=headers))
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None

    def _connected(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._kafka.servers, client_id=self._client_id,
                acks="all", enable_idempotence=True, linger_ms=5,
                max_request_size=REJECTS_MAX_MESSAGE_BYTES,
                reconnect_backoff_max_ms=self._reconnect_backoff_max_ms,
                **self._kafka.kafka_security(),
            )
        return self._producer

    def _ensure_topics(self, partners: set[str]) -> None:
        missing = {rejects_topic(p) for p in partners} - self._topics_ready
        if missing:
            # An absent broker ends this in ServiceUnavailable, waited for like any outage.
            ensure_topics(self._kafka.bootstrap_servers, missing,
                          **self._kafka.kafka_security())
            self._topics_ready |= missing
