"""The partners' kit and the nightly ingest check reach a secured broker with their own settings."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from adapters.settings import KafkaSettings, Settings
from infra.kafka import security
from partners.cli import main as partners_main
from partners.kit import Publisher, kafka_settings
from schemas.topics import events_topic, rejects_topic
from tests.support.events import encode, enrollment
from warehouse.nightly import check_ingest

pytestmark = pytest.mark.integration


def _records(secured_kafka, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000,
                             **secured_kafka.admin())
    try:
        consumer.assign([TopicPartition(topic, 0)])
        return [record.value for record in consumer]
    finally:
        consumer.close()


def test_the_kit_publishes_over_sasl_ssl_with_the_partners_credentials_from_the_environment(
        secured_kafka, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = secured_kafka.partners["a"]
    principal = security.partner_principal(pid)
    for name, value in {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{secured_kafka.cfg.kafka_tls_port}",
            "SKILLSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SKILLSYNC_KAFKA_SASL_MECHANISM": security.SCRAM_MECHANISM,
            "SKILLSYNC_KAFKA_SASL_USERNAME": principal,
            "SKILLSYNC_KAFKA_SASL_PASSWORD":
                secured_kafka.passwords()[principal].get_secret_value(),
            "SKILLSYNC_KAFKA_SSL_CAFILE":
                str(security.secret_files(secured_kafka.cfg).ca_certificate)}.items():
        monkeypatch.setenv(name, value)
    settings = kafka_settings()
    events = [enrollment(pid, n) for n in range(3)]

    with Publisher(pid, registry=secured_kafka.registry_of("a"),
                   bootstrap=settings.bootstrap_servers, security=settings) as publisher:
        report = publisher.publish([encode(e) for e in events])

    assert (report.sent, report.refused) == (3, [])
    assert {encode(e) for e in events} <= set(_records(secured_kafka, events_topic(pid)))


def test_the_kit_reads_its_rejects_over_sasl_ssl_with_flags_and_the_password_from_env(
        secured_kafka, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from kafka import KafkaProducer

    pid = secured_kafka.partners["a"]
    principal = security.partner_principal(pid)
    marker = f"marker-{uuid.uuid4().hex}"
    # The pipeline's reject, as the consumer writes it: the refused bytes and the why in headers.
    producer = KafkaProducer(**secured_kafka.pipeline())
    producer.send(rejects_topic(pid), key=b"k", value=b"{}",
                  headers=[("skillsync.reason_code", marker.encode())]).get(timeout=30)
    producer.close()
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("SKILLSYNC_KAFKA_SASL_PASSWORD",
                       secured_kafka.passwords()[principal].get_secret_value())

    code = partners_main([
        "rejects", "--partner", pid, "--idle", "3",
        "--bootstrap-servers", f"127.0.0.1:{secured_kafka.cfg.kafka_tls_port}",
        "--security-protocol", "SASL_SSL", "--sasl-mechanism", security.SCRAM_MECHANISM,
        "--sasl-username", principal,
        "--ssl-cafile", str(security.secret_files(secured_kafka.cfg).ca_certificate)])

    assert code == 0
    assert marker in capsys.readouterr().out


def test_the_kit_stops_naming_the_settings_when_sasl_has_no_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SKILLSYNC_KAFKA_SASL_PASSWORD", raising=False)

    # Everything else is given, so the one setting missing is the password.
    code = partners_main(["rejects", "--partner", "zjgj", "--bootstrap-servers", "127.0.0.1:9",
                          "--security-protocol", "SASL_SSL",
                          "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "partner.zjgj"])

    assert code == 2
    assert "SKILLSYNC_KAFKA_SASL_PASSWORD" in capsys.readouterr().err


def test_the_nightly_ingest_check_reads_the_lag_over_sasl(
        secured_kafka, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = secured_kafka.partners["b"]
    kit = _kit_settings(secured_kafka, "b")
    with Publisher(pid, registry=secured_kafka.registry_of("b"), bootstrap=kit.bootstrap_servers,
                   security=kit) as publisher:
        sent = publisher.publish([encode(enrollment(pid, n)) for n in range(4)]).sent
    passwords = secured_kafka.passwords()
    for name, value in {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{secured_kafka.cfg.kafka_port}",
            "SKILLSYNC_DATABASE_URL": database_url,
            "SKILLSYNC_CONSUMER_GROUP": f"{security.PIPELINE_GROUP_PREFIX}-{pid}",
            "SKILLSYNC_TOPIC_PATTERN": f"^skills\\.events\\.{pid}$",
            "SKILLSYNC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "SKILLSYNC_KAFKA_SASL_MECHANISM": security.SCRAM_MECHANISM,
            "SKILLSYNC_KAFKA_SASL_USERNAME": security.PIPELINE_PRINCIPAL,
            "SKILLSYNC_KAFKA_SASL_PASSWORD":
                passwords[security.PIPELINE_PRINCIPAL].get_secret_value()}.items():
        monkeypatch.setenv(name, value)
    # A cutoff after any day this test can run on: every record is appended before it.
    progress = check_ingest(date(2100, 1, 1), Settings.load())

    # Nothing was landed: every record appended before the cutoff is still to come.
    assert progress.behind == {(events_topic(pid), 0): sent}
    assert not progress.caught_up


def _kit_settings(secured_kafka, name: str) -> KafkaSettings:
    principal = security.partner_principal(secured_kafka.partners[name])
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{secured_kafka.cfg.kafka_tls_port}",
        security_protocol="SASL_SSL", sasl_mechanism=security.SCRAM_MECHANISM,
        sasl_username=principal, sasl_password=secured_kafka.passwords()[principal],
        ssl_cafile=security.secret_files(secured_kafka.cfg).ca_certificate)
    return settings
