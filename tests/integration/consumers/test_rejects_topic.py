"""Refused events reach the partner's rejects topic byte for byte, with the reasons in headers."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import psycopg
import pytest
from kafka import KafkaProducer
from kafka.serializer import Serializer

from adapters.kafka import EVENTS_MAX_MESSAGE_BYTES
from consumers.rejects import SERVICE_VERSION
from schemas.errors import stage_of
from schemas.pseudonym import Pseudonymiser
from schemas.topics import events_topic, rejects_topic
from tests.support.consumers import landed, rejected, service
from tests.support.events import encode, enrollment, poison
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


def test_a_refused_event_reaches_the_rejects_topic_with_its_bytes_headers_and_reason(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    refused = poison(pid)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             max_request_size=4 * 1024 * 1024)
    sent = {}
    for code, value in refused.items():
        metadata = producer.send(events_topic(pid), value, key=code.encode(),
                                 headers=[("traceparent", code.encode())]).get(timeout=30)
        sent[code] = (metadata.partition, metadata.offset)
    producer.close()

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    paths = dict(rejected(database_url))
    records = read_topic(kafka_bootstrap, rejects_topic(pid), len(refused))
    assert sorted(r.key.decode() for r in records) == sorted(refused)
    for record in records:
        code = record.key.decode()
        headers = dict(record.headers)
        assert record.value == refused[code]
        assert headers["traceparent"] == code.encode()  # the partner's own headers are kept
        assert headers["skillsync.reason_code"] == code.encode()
        assert headers["skillsync.stage"] == stage_of(code).encode()
        assert headers["skillsync.field_path"] == paths[code].encode()
        assert headers["skillsync.message"]
        assert headers["skillsync.original_topic"] == events_topic(pid).encode()
        partition, offset = sent[code]
        assert headers["skillsync.original_partition"] == str(partition).encode()
        assert headers["skillsync.original_offset"] == str(offset).encode()
        assert headers["skillsync.service_version"] == SERVICE_VERSION.encode()
    with psycopg.connect(database_url) as conn:
        digests: dict[str, str] = dict(conn.execute(
            "SELECT reason_code, payload_sha256 FROM staging.rejected").fetchall())
    assert digests == {code: hashlib.sha256(value).hexdigest() for code, value in refused.items()}


def _valid_event_behind_lands(kafka_bootstrap: str, database_url: str,
                              partners: dict[str, str], pseudonymiser: Pseudonymiser) -> Any:
    """Publish a valid event behind what the test sent to partition 0, run the consumer until
    it catches up, and return the one record on the rejects topic.

    Were the refusal retried for ever, the run would never catch up: it is stopped after 90 s,
    so a blocked partition fails the test's assertions instead of hanging it.
    """
    pid = partners["training_platform"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(events_topic(pid), encode(enrollment(pid, 1)), partition=0).get(timeout=30)
    producer.close()
    consumer = service(kafka_bootstrap, database_url, partners, pseudonymiser)
    deadline = threading.Timer(90, consumer.request_stop)
    deadline.start()
    try:
        consumer.run(until_caught_up=True)
    finally:
        deadline.cancel()
    [record] = read_topic(kafka_bootstrap, rejects_topic(pid), 1)
    return record


def test_the_largest_record_an_events_topic_admits_is_refused_whole_and_does_not_block(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    # As large as the events topic takes (its limit bounds the whole batch, a few dozen bytes
    # of framing included); the rejects topic must take it back with its headers added.
    huge = b'{"pad":"' + b"x" * (EVENTS_MAX_MESSAGE_BYTES - 200) + b'"}'
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             max_request_size=2 * EVENTS_MAX_MESSAGE_BYTES)
    producer.send(events_topic(pid), huge, partition=0).get(timeout=30)
    producer.close()

    record = _valid_event_behind_lands(kafka_bootstrap, database_url, partners, pseudonymiser)

    assert rejected(database_url) == [("size.too_large", "$")]
    assert landed(database_url) == [(pid, f"{pid}-evt-0000001")]
    assert record.value == huge


class _NullSerializer(Serializer):
    """Turns whatever is sent into a null value: with no key either, a record any Kafka client
    may send, though kafka-python's own producer checks refuse to build one."""

    def serialize(self, topic: str, headers: list, data: object) -> None:
        return None


def test_a_record_with_neither_key_nor_value_is_refused_and_does_not_block(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    nulls = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                          value_serializer=_NullSerializer())
    nulls.send(events_topic(pid), b"replaced by null", headers=[("trace", b"t1")],
               partition=0).get(timeout=30)
    nulls.close()

    record = _valid_event_behind_lands(kafka_bootstrap, database_url, partners, pseudonymiser)

    assert rejected(database_url) == [("decode.not_json", "$")]
    assert landed(database_url) == [(pid, f"{pid}-evt-0000001")]
    # This client cannot send nulls back: they are kept as empty bytes.
    assert (record.key, record.value) == (None, b"")
    assert dict(record.headers)["trace"] == b"t1"
    assert dict(record.headers)["skillsync.reason_code"] == b"decode.not_json"
