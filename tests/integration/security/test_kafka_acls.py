"""Partner authentication and ACLs on a real secured broker: what is allowed, and what is not."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import KafkaError, TopicAuthorizationFailedError
from pydantic import SecretStr

from adapters.kafka import ensure_topics
from adapters.settings import DatabaseSettings, Settings
from consumers.service import IngestService
from infra.kafka import security
from infra.kafka.tls import Authority, write_private
from schemas.pseudonym import Pseudonymiser
from schemas.topics import events_topic, rejects_topic
from tests.support.events import encode, enrollment

pytestmark = pytest.mark.integration

# Refused clients give up quickly; the broker answers a good one in milliseconds.
REFUSED_WITHIN_MS = 5000
# A busy broker may drop a new connection before it answers the SASL handshake, so a refused
# client may give up before it has heard why: try again, for up to this long, until it has.
REASON_WITHIN_S = 90


def _marker() -> bytes:
    return f"marker-{uuid.uuid4().hex}".encode()


def _produce(options: dict[str, Any], topic: str, value: bytes) -> None:
    producer = KafkaProducer(acks="all", enable_idempotence=True,
                             bootstrap_timeout_ms=REFUSED_WITHIN_MS, **options)
    try:
        producer.send(topic, value).get(timeout=15)
    finally:
        producer.close(timeout=5)


def _refused_for(reason: str, caplog: pytest.LogCaptureFixture, options: dict[str, Any],
                 topic: str, value: bytes) -> None:
    """Every attempt to produce fails; stops once the client has logged `reason`."""
    deadline = time.monotonic() + REASON_WITHIN_S
    while True:
        with pytest.raises(KafkaError):
            _produce(options, topic, value)
        if reason in caplog.text or time.monotonic() > deadline:
            return


def _read(options: dict[str, Any], topic: str) -> list[bytes]:
    """Every value on the topic's one partition, or none if the client may not see it."""
    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest",
                             bootstrap_timeout_ms=REFUSED_WITHIN_MS, **options)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        values: list[bytes] = []
        for _ in range(6):
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
        return values
    finally:
        consumer.close()


def _options(kafka, who: str) -> dict[str, Any]:
    return kafka.pipeline() if who == "pipeline" else kafka.partner(who)


def _topic(kafka, kind: str, owner: str) -> str:
    partner_id = kafka.partners[owner]
    return events_topic(partner_id) if kind == "events" else rejects_topic(partner_id)


def test_a_partner_writes_its_own_topic_and_the_pipeline_reads_it_and_writes_rejects(
        secured_kafka, monkeypatch: pytest.MonkeyPatch) -> None:
    event, reject = _marker(), _marker()
    _produce(secured_kafka.partner("a"), _topic(secured_kafka, "events", "a"), event)
    # The pipeline connects with exactly what `up` handed it: the env file of consumer settings.
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "SKILLSYNC_CONSUMER_GROUP"):
        monkeypatch.delenv(variable, raising=False)
    settings = Settings.load(security.secret_files(secured_kafka.cfg).pipeline_env)
    pipeline = {"bootstrap_servers": settings.kafka.bootstrap_servers,
                **settings.kafka.kafka_security()}
    consumer = KafkaConsumer(_topic(secured_kafka, "events", "a"),
                             group_id=f"{settings.ingest.group_id}-{uuid.uuid4().hex[:6]}",
                             enable_auto_commit=False, auto_offset_reset="earliest", **pipeline)
    try:
        seen: list[bytes] = []
        for _ in range(20):
            seen += [r.value for rs in consumer.poll(timeout_ms=500).values() for r in rs]
            if event in seen:
                break
        consumer.commit()
    finally:
        consumer.close()
    _produce(pipeline, _topic(secured_kafka, "rejects", "a"), reject)

    assert event in seen
    assert reject in _read(secured_kafka.partner("a"), _topic(secured_kafka, "rejects", "a"))


def test_the_ingestion_service_lands_a_partners_events_as_the_pipeline_principal(
        secured_kafka, database_url: str, pseudonymiser: Pseudonymiser,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pid = secured_kafka.partners["b"]
    events = [encode(enrollment(pid, n)) for n in range(5)]
    for event in events:
        _produce(secured_kafka.partner("b"), events_topic(pid), event)
    for variable in ("KAFKA_BOOTSTRAP_SERVERS", "SKILLSYNC_CONSUMER_GROUP",
                     "SKILLSYNC_DATABASE_URL", "SKILLSYNC_TOPIC_PATTERN"):
        monkeypatch.delenv(variable, raising=False)
    handed = Settings.load(security.secret_files(secured_kafka.cfg).pipeline_env)
    settings = Settings(
        kafka=handed.kafka, database=DatabaseSettings(url=SecretStr(database_url)),
        ingest=handed.ingest.model_copy(update={
            "linger_ms": 50, "group_id": f"{handed.ingest.group_id}-{uuid.uuid4().hex[:6]}",
            "topic_pattern": f"^skills\\.events\\.{pid}$"}))

    stats = IngestService(settings, registry=secured_kafka.registry,
                          pseudonymiser=pseudonymiser).run(until_caught_up=True)

    assert stats.landed == len(events)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM staging.events WHERE partner_id = %s",
                            (pid,)).fetchone() == (len(events),)


@pytest.mark.parametrize(("who", "kind", "owner"), [
    ("a", "events", "b"),         # a partner publishing as another
    ("a", "rejects", "a"),        # a partner forging its own rejects
    ("pipeline", "events", "a"),  # the pipeline inventing partner events
])
def test_a_write_outside_the_grants_is_denied_and_nothing_is_written(
        secured_kafka, who: str, kind: str, owner: str) -> None:
    topic, value = _topic(secured_kafka, kind, owner), _marker()

    with pytest.raises(TopicAuthorizationFailedError):
        _produce(_options(secured_kafka, who), topic, value)

    assert value not in _read(secured_kafka.admin(), topic)


@pytest.mark.parametrize(("who", "kind", "owner"), [
    ("a", "rejects", "b"),  # another partner's rejects carry that partner's learners
    ("a", "events", "b"),
])
def test_a_read_outside_the_grants_gets_nothing(
        secured_kafka, caplog: pytest.LogCaptureFixture,
        who: str, kind: str, owner: str) -> None:
    topic, value = _topic(secured_kafka, kind, owner), _marker()
    _produce(secured_kafka.admin(), topic, value)
    caplog.set_level(logging.WARNING, logger="kafka")

    values = _read(_options(secured_kafka, who), topic)

    assert values == []
    assert f"Topic {topic} is not authorized" in caplog.text
    assert value in _read(secured_kafka.admin(), topic)


def test_a_wrong_password_is_refused_and_nothing_is_written(
        secured_kafka, caplog: pytest.LogCaptureFixture) -> None:
    topic, value = _topic(secured_kafka, "events", "a"), _marker()
    caplog.set_level(logging.WARNING, logger="kafka")

    _refused_for("SaslAuthenticationFailedError", caplog,
                 secured_kafka.partner("a", sasl_plain_password="not-the-password"), topic, value)

    assert "SaslAuthenticationFailedError" in caplog.text
    assert value not in _read(secured_kafka.admin(), topic)


def test_a_plaintext_client_on_the_sasl_listener_is_refused(secured_kafka) -> None:
    topic, value = _topic(secured_kafka, "events", "a"), _marker()

    with pytest.raises(KafkaError):
        _produce({"bootstrap_servers": f"127.0.0.1:{secured_kafka.cfg.kafka_port}"}, topic, value)

    assert value not in _read(secured_kafka.admin(), topic)


def test_a_topic_nobody_was_granted_is_closed_even_to_authenticated_partners(
        secured_kafka) -> None:
    # No allow-everyone fallback: a topic without rules is denied, not open.
    topic = events_topic(f"orphan{uuid.uuid4().hex[:6]}")
    ensure_topics(security.admin_bootstrap(secured_kafka.cfg), [topic], partitions=1,
                  **security.admin_options(secured_kafka.cfg))
    value = _marker()
    _produce(secured_kafka.admin(), topic, value)

    with pytest.raises(TopicAuthorizationFailedError):
        _produce(secured_kafka.partner("a"), topic, _marker())

    assert _read(secured_kafka.partner("a"), topic) == []
    assert _read(secured_kafka.admin(), topic) == [value]


def test_an_anonymous_client_on_the_plaintext_listener_is_denied_everything(
        secured_kafka) -> None:
    anonymous = {"bootstrap_servers": f"127.0.0.1:{secured_kafka.cfg.kafka_plaintext_port}"}
    topic, value = _topic(secured_kafka, "events", "a"), _marker()
    _produce(secured_kafka.admin(), topic, value)

    with pytest.raises(TopicAuthorizationFailedError):
        _produce(anonymous, topic, _marker())

    assert _read(anonymous, topic) == []


def test_a_client_that_does_not_trust_the_broker_ca_is_refused(
        secured_kafka, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rogue_ca = tmp_path / "rogue-ca.crt"
    rogue_ca.write_bytes(Authority.create("rogue CA").certificate_pem())
    topic, value = _topic(secured_kafka, "events", "a"), _marker()
    caplog.set_level(logging.WARNING, logger="kafka")

    with pytest.raises(KafkaError):
        _produce(secured_kafka.partner("a", ssl_cafile=str(rogue_ca)), topic, value)

    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert value not in _read(secured_kafka.admin(), topic)


def test_an_operator_certificate_from_another_ca_is_refused(
        secured_kafka, tmp_path: Path) -> None:
    key, certificate = Authority.create("rogue CA").issue(security.ADMIN_SUBJECT)
    write_private(tmp_path / "admin.key", key)
    write_private(tmp_path / "admin.crt", certificate)
    impostor = {**secured_kafka.admin(), "ssl_certfile": str(tmp_path / "admin.crt"),
                "ssl_keyfile": str(tmp_path / "admin.key")}
    topic, value = _topic(secured_kafka, "events", "a"), _marker()

    with pytest.raises(KafkaError):
        _produce(impostor, topic, value)

    assert value not in _read(secured_kafka.admin(), topic)


def _acls_of(kafka, principal: str) -> list[object]:
    admin = KafkaAdminClient(**kafka.admin())
    try:
        acls, _ = admin.describe_acls(ACLFilter(
            principal=f"User:{principal}", host=None, operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY)))
        return list(acls)
    finally:
        admin.close()


def test_a_partner_removed_from_the_registry_loses_its_credential_and_grants(
        secured_kafka, caplog: pytest.LogCaptureFixture) -> None:
    gone = security.partner_principal(secured_kafka.partners["c"])
    old_password = secured_kafka.passwords()[gone]
    remaining = secured_kafka.registry_of("a", "b")
    caplog.set_level(logging.WARNING, logger="kafka")

    result = security.provision(secured_kafka.cfg, remaining)

    assert result.revoked == [gone]
    assert _acls_of(secured_kafka, gone) == []
    assert gone not in secured_kafka.passwords()
    options = security.scram_options(secured_kafka.cfg, gone, old_password)
    _refused_for("SaslAuthenticationFailedError", caplog, options,
                 _topic(secured_kafka, "events", "c"), _marker())
    assert "SaslAuthenticationFailedError" in caplog.text


def test_provisioning_again_changes_nothing(secured_kafka) -> None:
    registry = secured_kafka.registry_of("a", "b")
    security.provision(secured_kafka.cfg, registry)
    before = secured_kafka.passwords()

    again = security.provision(secured_kafka.cfg, registry)

    assert (again.issued, again.revoked, again.acls_created, again.acls_deleted) == ([], [], 0, 0)
    assert {k: v.get_secret_value() for k, v in secured_kafka.passwords().items()} == {
        k: v.get_secret_value() for k, v in before.items()}


def test_secrets_are_readable_by_their_owner_only(secured_kafka) -> None:
    files = security.secret_files(secured_kafka.cfg)
    private = [files.ca_key, files.broker_keystore, files.admin_key, files.passwords,
               files.pipeline_env]

    assert {oct(path.stat().st_mode & 0o777) for path in private} == {"0o600"}
    assert oct(files.root.stat().st_mode & 0o777) == "0o700"
