"""Long fault scenarios for the ingestion service: broker outages and repeated kill -9."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

from adapters.kafka import ensure_topics
from infra.kafka import service as local_kafka
from schemas.topics import events_topic, rejects_topic
from tests.support.consumers import (
    landed,
    landed_count,
    process_env,
    running,
    service,
    wait_for,
)
from tests.support.events import encode, enrollment, poison
from tests.support.kafka import publish, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def test_a_broker_outage_under_load_loses_nothing_and_rejects_only_the_poison(
        own_kafka, database_url, pseudonymiser, seeded):
    bootstrap = own_kafka.kafka_bootstrap
    pid = seeded.partner_id()
    partners = {"training_platform": pid}
    ensure_topics(bootstrap, [events_topic(pid), rejects_topic(pid)])
    refused = poison(pid)
    publish(bootstrap, events_topic(pid), [encode(enrollment(pid, n)) for n in range(2000)])
    consumer = service(bootstrap, database_url, partners, pseudonymiser, batch_size=200)
    runner = threading.Thread(target=consumer.run)
    runner.start()
    try:
        wait_for(lambda: landed_count(database_url) > 0, timeout=60, what="a first batch")
        local_kafka.stop(own_kafka)
        time.sleep(15)  # the outage
        alive_through_outage = runner.is_alive()
        local_kafka.start(own_kafka)
        publish(bootstrap, events_topic(pid),
                list(refused.values()) + [encode(enrollment(pid, n)) for n in range(2000, 3000)])
        wait_for(lambda: landed_count(database_url) == 3000, timeout=180,
                 what="every event landed after the outage")
        rejects = read_topic(bootstrap, rejects_topic(pid), len(refused) + 1, timeout=10)
    finally:
        consumer.request_stop()
        runner.join(timeout=120)

    assert alive_through_outage
    rows = landed(database_url)
    assert len(rows) == len(set(rows)) == 3000
    with psycopg.connect(database_url) as conn:
        codes = [c for (c,) in conn.execute("SELECT reason_code FROM staging.rejected")]
    assert sorted(codes) == sorted(refused)
    assert sorted(dict(r.headers)["skillsync.reason_code"].decode() for r in rejects) == sorted(
        refused)


def test_repeated_kill_9_at_random_moments_lands_exactly_the_published_set(
        tmp_path, kafka_bootstrap, database_url, new_partners):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    published = publish(kafka_bootstrap, events_topic(pid),
                        [encode(enrollment(pid, n)) for n in range(40_000)])
    # Batches of 20: the stream outlasts most of the kills, each of which falls among many
    # landings.
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners, batch_size="20", session_timeout_ms="6000")
    rng = random.Random(11)
    killed_mid_stream = 0
    for round_ in range(6):
        with running(env, tmp_path / f"victim-{round_}.log") as victim:
            before = landed_count(database_url)
            def progressed(before: int = before) -> bool:
                return before == published or landed_count(database_url) > before

            wait_for(progressed, timeout=90,
                     what="progress since the last kill")
            time.sleep(rng.uniform(0, 1.0))
            victim.kill()
        killed_mid_stream += landed_count(database_url) < published
    with running(env, tmp_path / "final.log", "run", "--until-caught-up") as final:
        assert final.proc.wait(timeout=300) == 0

    rows = landed(database_url)
    assert killed_mid_stream >= 3
    assert sorted(e for _, e in rows) == [f"{pid}-evt-{n:07d}" for n in range(published)]
