"""Kafka clients of the project: how they sign in, the topic policy, and the admin client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any, Literal

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import BaseModel, ConfigDict, FilePath, SecretStr, model_validator

from schemas.errors import ServiceUnavailable
from schemas.topics import REJECTS_TOPIC_PREFIX, SYNC_TOPIC_PREFIX

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

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

# A subscriber's sync feed is compacted: the topic keeps each record's latest change, so a new
# mirror reads a snapshot. Deletes (tombstones) stay readable for 30 days; a mirror away longer
# rebuilds. Its producer's clock does not matter: versions, not timestamps, order it.
SYNC_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "delete.retention.ms": str(30 * 86_400_000),
    "min.compaction.lag.ms": str(3_600_000),
    "max.message.bytes": str(EVENTS_MAX_MESSAGE_BYTES),
}


class KafkaClientSecurity(BaseModel):
    """SASL and TLS options of a client, turned into kafka-python's options."""

    # A refused value (a password among them) never appears in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaClientSecurity:
        if self.security_protocol.startswith("SASL") and not (
                self.sasl_mechanism and self.sasl_username and self.sasl_password):
            prefix = str(self.model_config.get("env_prefix", "")).upper()
            names = [f"{prefix}{name.upper()}"
                     for name in ("sasl_mechanism", "sasl_username", "sasl_password")]
            raise ValueError(f"{self.security_protocol} needs {names[0]}, {names[1]} and "
                             f"{names[2]}")
        return self

    def kafka_security(self) -> dict[str, Any]:
        """kafka-python client options for the configured security protocol."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None  # guaranteed by _sasl_is_complete
            # kafka-python takes the "plain" username and password for SCRAM as well.
            options.update(sasl_mechanism=self.sasl_mechanism,
                           sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password.get_secret_value())
        if self.security_protocol.endswith("SSL"):
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, name)
                if path is not None:
                    options[name] = str(path)
            if self.ssl_password is not None:
                options["ssl_password"] = self.ssl_password.get_secret_value()
        return options


def topic_config(name: str) -> dict[str, str]:
    """The configuration a topic is created with: a partner's events topic, its rejects topic
    (which admits more bytes), or a subscriber's compacted sync feed."""
    if name.startswith(SYNC_TOPIC_PREFIX):
        return dict(SYNC_TOPIC_CONFIG)
    if name.startswith(REJECTS_TOPIC_PREFIX):
        return {**TOPIC_CONFIG, "max.message.bytes": str(REJECTS_MAX_MESSAGE_BYTES)}
    return dict(TOPIC_CONFIG)


def connect_admin(bootstrap: str, *, timeout: float = 60.0,
                  **client_options: Any) -> KafkaAdminClient:
    """An admin client, retried while the broker finishes starting; ServiceUnavailable after
    `timeout` seconds.

    client_options are kafka-python security options (a secured cluster's TLS or SASL).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="skillsync-admin",
                                    request_timeout_ms=10_000, **client_options)
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"Kafka at {bootstrap} is not answering: {exc}") from exc
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


def drop_topics(bootstrap: str, names: Iterable[str], **client_options: Any) -> None:
    """Delete whichever of the topics exist, and wait until they are gone."""
    admin = connect_admin(bootstrap, **client_options)
    try:
        stale = sorted(set(names) & set(admin.list_topics()))
        if stale:
            admin.delete_topics(stale)
            # Deletion finishes in the background; a topic is gone once no listing names it.
            deadline = time.monotonic() + 60
            while set(stale) & set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topics {stale} still exist a minute after deletion")
                time.sleep(0.2)
    finally:
        admin.close()
