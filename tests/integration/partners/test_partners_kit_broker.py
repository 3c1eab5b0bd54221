"""The publishing kit against the real broker: keyed idempotent sends, refusals read back."""

from __future__ import annotations

from datetime import date

import orjson
import pytest
from kafka import KafkaConsumer

from consumers.service import IngestService
from partners.kit import Publisher, read_rejects
from schemas.errors import Rejection
from schemas.topics import events_topic
from tests.support.consumers import consumer_settings
from tests.support.events import encode, enrollment, poison, registry_with

pytestmark = pytest.mark.integration


def _records(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=5000,
    )  # fmt: skip
    try:
        return list(consumer)
    finally:
        consumer.close()


def test_kit_sends_checked_events_keyed_by_subject_and_closes_the_day(
    kafka_bootstrap, new_partners
):
    pid = new_partners("training_platform")["training_platform"]
    registry = registry_with({pid: "training_platform"})
    events = [enrollment(pid, n) for n in range(20)]
    broken = poison(pid)["id_number.checksum"]

    with Publisher(pid, registry=registry, bootstrap=kafka_bootstrap) as publisher:
        report = publisher.publish([encode(e) for e in events] + [broken])
        day = date.fromisoformat(events[0]["time"][:10])
        totals = publisher.publish_totals(day)

    assert (report.sent, [r.code for r in report.refused]) == (20, ["id_number.checksum"])
    assert totals.sent == 1
    # Records of different partitions come back in no particular order: sort them by kind.
    decoded = [(r, orjson.loads(r.value)) for r in _records(kafka_bootstrap, events_topic(pid))]
    closing = [doc for _, doc in decoded if doc["type"].endswith(".control.totals.v1")]
    sent = [r for r, doc in decoded if not doc["type"].endswith(".control.totals.v1")]
    assert sorted((r.key, r.value) for r in sent) == sorted(
        (e["subject"].encode(), encode(e)) for e in events
    )
    assert [doc["data"]["counts"] for doc in closing] == [{"enrollment.created": 20}]


def test_rejects_show_the_reason_the_kit_predicted(
    kafka_bootstrap, database_url, new_partners, pseudonymiser
):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    registry = registry_with({pid: "training_platform"})
    refused = {code: raw for code, raw in poison(pid).items() if code != "size.too_large"}

    with Publisher(pid, registry=registry, bootstrap=kafka_bootstrap) as publisher:
        predicted = {}
        for raw in refused.values():
            with pytest.raises(Rejection) as rejection:
                publisher.check(raw)
            predicted[rejection.value.code] = rejection.value.path
            # Sent unchecked on purpose, as a partner without the kit would.
            publisher.send(b"poison", raw)
        publisher.flush()

    settings = consumer_settings(
        kafka_bootstrap, database_url, group_id=f"g-{pid}",
        topic_pattern=f"^skills\\.events\\.{pid}$", batch_size=100, linger_ms=50,
        metadata_max_age_ms=1000, backoff_initial_s=0.2, backoff_max_s=1.0,
    )  # fmt: skip
    IngestService(settings, registry=registry, pseudonymiser=pseudonymiser).run(
        until_caught_up=True
    )

    shown = list(read_rejects(pid, bootstrap=kafka_bootstrap))
    assert {r.reason_code: r.field_path for r in shown} == predicted
    assert all(
        r.original_topic == events_topic(pid) and r.original_offset is not None for r in shown
    )
