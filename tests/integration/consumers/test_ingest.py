"""The ingestion service on the real broker and PostgreSQL: exactly once, rejects with reasons."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from kafka import KafkaProducer

from consumers.service import IngestService
from consumers.settings import ConsumerSettings
from schemas.topics import events_topic
from tests.support.events import encode, enrollment, poison, registry_with
from tests.support.kafka import publish

pytestmark = pytest.mark.integration


def _service(kafka_bootstrap, database_url, partners, pseudonymiser, **overrides):
    pattern = "^skills\\.events\\.(" + "|".join(partners.values()) + ")$"
    settings = ConsumerSettings(
        bootstrap_servers=kafka_bootstrap, database_url=database_url,
        group_id=overrides.pop("group_id", f"g-{'-'.join(partners.values())}"),
        topic_pattern=pattern, batch_size=overrides.pop("batch_size", 500), linger_ms=50,
        metadata_max_age_ms=1000, backoff_initial_s=0.2, backoff_max_s=1.0, **overrides)
    registry = registry_with({pid: role for role, pid in partners.items()})
    return IngestService(settings, registry=registry, pseudonymiser=pseudonymiser)


def _landed(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT partner_id, event_id FROM staging.events").fetchall()


def _rejected(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT reason_code, field_path FROM staging.rejected ORDER BY kafka_offset").fetchall()


def test_every_valid_event_lands_once_and_poison_is_rejected_with_its_reason(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    valid = [encode(enrollment(pid, n)) for n in range(1000)]
    refused = poison(pid)
    mixed = valid[:500] + list(refused.values()) + valid[500:]
    assert publish(kafka_bootstrap, events_topic(pid), mixed) == len(mixed)

    stats = _service(kafka_bootstrap, database_url, partners, pseudonymiser).run(
        until_caught_up=True)

    landed = _landed(database_url)
    assert len(landed) == 1000
    assert len(set(landed)) == 1000
    assert sorted(code for code, _ in _rejected(database_url)) == sorted(refused)
    assert stats.rejected == len(refused)


def test_redelivered_and_replayed_events_never_create_a_second_row(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [encode(enrollment(pid, n)) for n in range(200)]
    # The partner re-sends the first 50: same ids, new offsets.
    publish(kafka_bootstrap, events_topic(pid), events + events[:50])

    first = _service(kafka_bootstrap, database_url, partners, pseudonymiser).run(
        until_caught_up=True)
    # A second group reads the whole topic again from the start: a full replay.
    replay = _service(kafka_bootstrap, database_url, partners, pseudonymiser,
                      group_id=f"replay-{pid}").run(until_caught_up=True)

    assert len(_landed(database_url)) == 200
    assert first.landed == 200 and first.redelivered == 50
    assert replay.landed == 0
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM staging.redeliveries").fetchone() == (50,)


def test_positions_are_restored_from_postgres_not_the_group(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    publish(kafka_bootstrap, events_topic(pid), [encode(enrollment(pid, n)) for n in range(100)])
    _service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)
    with psycopg.connect(database_url) as conn:
        # Forget what was landed: PostgreSQL says start over, whatever the group committed.
        conn.execute("DELETE FROM staging.events")
        conn.execute("DELETE FROM staging.consumer_offsets")

    _service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    assert len(_landed(database_url)) == 100


def test_records_of_an_aborted_transaction_never_land(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap,
                             transactional_id=f"tx-{pid}", enable_idempotence=True, acks="all")
    producer.init_transactions()
    producer.begin_transaction()
    for n in range(20):
        producer.send(events_topic(pid), encode(enrollment(pid, n)))
    producer.flush()
    producer.abort_transaction()
    producer.begin_transaction()
    for n in range(20, 30):
        producer.send(events_topic(pid), encode(enrollment(pid, n)))
    producer.commit_transaction()
    producer.close()

    _service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    assert sorted(e for _, e in _landed(database_url)) == [
        f"{pid}-evt-{n:07d}" for n in range(20, 30)]


def test_a_partner_topic_created_while_running_is_consumed(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    first = new_partners("training_platform")
    later_id = f"{first['training_platform']}x"
    partners = {"training_platform": first["training_platform"], "technician_college": later_id}
    service = _service(kafka_bootstrap, database_url, partners, pseudonymiser)
    runner = threading.Thread(target=service.run, kwargs={"idle_timeout_s": 60})
    runner.start()
    try:
        publish(kafka_bootstrap, events_topic(first["training_platform"]),
                [encode(enrollment(first["training_platform"], 0))])
        time.sleep(2)
        from infra.kafka.topics import ensure_topics

        ensure_topics(kafka_bootstrap, [events_topic(later_id)])
        publish(kafka_bootstrap, events_topic(later_id),
                [encode(enrollment(later_id, n)) for n in range(5)])
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and len(_landed(database_url)) < 6:
            time.sleep(0.5)
    finally:
        service.request_stop()
        runner.join(timeout=60)
    assert sorted({p for p, _ in _landed(database_url)}) == sorted(partners.values())
    assert len(_landed(database_url)) == 6


def test_staging_holds_no_plaintext_identity(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [enrollment(pid, n) for n in range(20)]
    publish(kafka_bootstrap, events_topic(pid), [encode(e) for e in events])

    _service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    with psycopg.connect(database_url) as conn:
        dump = "\n".join(str(row) for row in conn.execute("SELECT * FROM staging.events"))
    for event in events:
        learner = event["data"]["learner"]
        assert learner["id_number"] not in dump
        assert learner["name"] not in dump
        assert learner["phone"] not in dump
