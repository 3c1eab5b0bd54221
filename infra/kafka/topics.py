"""Create the per-partner events and rejects topics, stamped with the broker's append time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from infra.process import ServiceError
from schemas.topics import REJECTS_TOPIC_PREFIX

EVENTS_MAX_MESSAGE_BYTES = 2 * 1024 * 1024
# A refused record goes to its partner's rejects topic whole, with a dozen headers added: the
# largest record an events topic admits must still fit, or it would block its partition.
REJECTS_MAX_MESSAGE_BYTES = 2 * EVENTS_MAX_MESSAGE_BYTES
TOPIC_CONFIG = {
    # The nightly window is chosen by broker append time: producers' clocks never decide a day.
    "message.timestamp.type": "LogAppendTime",
    "retention.ms": str(30 * 24 * 3600 * 1000),
    "max.message.bytes": str(EVENTS_MAX_MESSAGE_BYTES),
}


def topic_config(name: str) -> dict[str, str]:
    """The configuration a partner topic is created with (rejects topics admit more bytes)."""
    if name.startswith(REJECTS_TOPIC_PREFIX):
        return {**TOPIC_CONFIG, "max.message.bytes": str(REJECTS_MAX_MESSAGE_BYTES)}
    return dict(TOPIC_CONFIG)


def connect_admin(bootstrap: str, *, timeout: float = 60.0,
                  **client_options: Any) -> KafkaAdminClient:
    """An admin client, retried while the broker finishes starting.

    client_options are kafka-python security options (a secured cluster's TLS or SASL).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="skillsync-infra",
                                    request_timeout_ms=10_000, **client_options)
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ServiceError(f"Kafka at {bootstrap} is not answering: {exc}") from exc
            time.sleep(0.5)


def ensure_topics(bootstrap: str, names: Iterable[str], *, partitions: int = 3,
                  replication: int = 1, min_insync: int | None = None,
                  overrides: dict[str, str] | None = None,
                  **client_options: Any) -> list[str]:
    """Create whichever of the topics are missing; return the ones created.

    overrides: topic configs to create them with instead of the partner topics' own.
    """
    extra = {} if min_insync is None else {"min.insync.replicas": str(min_insync)}
    extra |= overrides or {}
    admin = connect_admin(bootstrap, **client_options)
    try:
        existing = set(admin.list_topics())
        missing = sorted(set(names) - existing)
        if missing:
            # A concurrent starter may win the race; the topics are there either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([
                    NewTopic(name, num_partitions=partitions, replication_factor=replication,
                             topic_configs=topic_config(name) | extra)
                    for name in missing
                ])
        return missing
    finally:
        admin.close()
