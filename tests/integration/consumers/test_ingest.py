"""The ingestion service on the real broker and PostgreSQL: exactly once, rejects with reasons."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from kafka import KafkaProducer

from schemas.topics import events_topic
from tests.support.consumers import landed, rejected, service
from tests.support.events import encode, enrollment, poison
from tests.support.kafka import publish

pytestmark = pytest.mark.integration


def test_every_valid_event_lands_once_and_poison_is_rejected_with_its_reason(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    valid = [encode(enrollment(pid, n)) for n in range(1000)]
    refused = poison(pid)
    mixed = valid[:500] + list(refused.values()) + valid[500:]
    assert publish(kafka_bootstrap, events_topic(pid), mixed) == len(mixed)

    stats = service(kafka_bootstrap, database_url, partners, pseudonymiser).run(
        until_caught_up=True)

    rows = landed(database_url)
    assert len(rows) == 1000
    assert len(set(rows)) == 1000
    assert sorted(code for code, _ in rejected(database_url)) == sorted(refused)
    assert stats.rejected == len(refused)


def test_redelivered_and_replayed_events_never_create_a_second_row(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [encode(enrollment(pid, n)) for n in range(200)]
    # The partner re-sends the first 50: same ids, new offsets.
    publish(kafka_bootstrap, events_topic(pid), events + events[:50])

    first = service(kafka_bootstrap, database_url, partners, pseudonymiser).run(
        until_caught_up=True)
    # A second group reads the whole topic again from the start: a full replay.
    replay = service(kafka_bootstrap, database_url, partners, pseudonymiser,
                      group_id=f"replay-{pid}").run(until_caught_up=True)

    assert len(landed(database_url)) == 200
    assert first.landed == 200 and first.redelivered == 50
    assert replay.landed == 0
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM staging.redeliveries").fetchone() == (50,)


def test_positions_are_restored_from_postgres_not_the_group(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    publish(kafka_bootstrap, events_topic(pid), [encode(enrollment(pid, n)) for n in range(100)])
    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)
    with psycopg.connect(database_url) as conn:
        # Forget what was landed: PostgreSQL says start over, whatever the group committed.
        conn.execute("DELETE FROM staging.events")
        conn.execute("DELETE FROM staging.consumer_offsets")

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    assert len(landed(database_url)) == 100


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

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    assert sorted(e for _, e in landed(database_url)) == [
        f"{pid}-evt-{n:07d}" for n in range(20, 30)]


def test_a_partner_topic_created_while_running_is_consumed(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    first = new_partners("training_platform")
    later_id = f"{first['training_platform']}x"
    partners = {"training_platform": first["training_platform"], "technician_college": later_id}
    consumer = service(kafka_bootstrap, database_url, partners, pseudonymiser)
    runner = threading.Thread(target=consumer.run, kwargs={"idle_timeout_s": 60})
    runner.start()
    try:
        publish(kafka_bootstrap, events_topic(first["training_platform"]),
                [encode(enrollment(first["training_platform"], 0))])
        time.sleep(2)
        from adapters.kafka import ensure_topics

        ensure_topics(kafka_bootstrap, [events_topic(later_id)])
        publish(kafka_bootstrap, events_topic(later_id),
                [encode(enrollment(later_id, n)) for n in range(5)])
        # Generous: on a broker holding thousands of topics (a long-lived test broker), each
        # metadata refresh a pattern subscription makes is slow, and so is the rebalance.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(landed(database_url)) < 6:
            time.sleep(0.5)
    finally:
        consumer.request_stop()
        runner.join(timeout=60)
    assert sorted({p for p, _ in landed(database_url)}) == sorted(partners.values())
    assert len(landed(database_url)) == 6


def test_staging_holds_no_plaintext_identity(
        kafka_bootstrap, database_url, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [enrollment(pid, n) for n in range(20)]
    publish(kafka_bootstrap, events_topic(pid), [encode(e) for e in events])

    service(kafka_bootstrap, database_url, partners, pseudonymiser).run(until_caught_up=True)

    with psycopg.connect(database_url) as conn:
        dump = "\n".join(str(row) for row in conn.execute("SELECT * FROM staging.events"))
    for event in events:
        learner = event["data"]["learner"]
        assert learner["id_number"] not in dump
        assert learner["name"] not in dump
        assert learner["phone"] not in dump
