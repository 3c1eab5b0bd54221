"""An unavailable PostgreSQL is waited for: nothing lost, nothing rejected, no restart needed."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from prometheus_client import REGISTRY

from infra import postgres as local_postgres
from schemas.topics import events_topic
from tests.support.consumers import landed, landed_count, own_postgres, service, wait_for
from tests.support.events import encode, enrollment
from tests.support.kafka import publish

pytestmark = pytest.mark.integration

OUTAGE_S = 10


def _postgres_failures() -> float:
    return REGISTRY.get_sample_value("skillsync_transient_failures_total",
                                     {"service": "postgres"}) or 0.0


def test_postgres_stopped_for_ten_seconds_under_load_loses_nothing_and_rejects_nothing(
        kafka_bootstrap, new_partners, pseudonymiser):
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    chunks = [[encode(enrollment(pid, n)) for n in range(start, start + 250)]
              for start in range(0, 5000, 250)]
    failures_before = _postgres_failures()
    with own_postgres() as (cfg, database_url):
        consumer = service(kafka_bootstrap, database_url, partners, pseudonymiser,
                           batch_size=200)
        runner = threading.Thread(target=consumer.run)
        runner.start()

        def keep_publishing() -> None:
            for chunk in chunks:
                publish(kafka_bootstrap, events_topic(pid), chunk)
                time.sleep(0.5)

        publisher = threading.Thread(target=keep_publishing)
        publisher.start()
        try:
            wait_for(lambda: landed_count(database_url) > 0, timeout=60, what="a first batch")
            local_postgres.stop(cfg)
            time.sleep(OUTAGE_S)  # the outage itself, with events still arriving
            alive_through_outage = runner.is_alive()
            local_postgres.start(cfg)
            publisher.join(timeout=120)
            wait_for(lambda: landed_count(database_url) == 5000, timeout=120,
                     what="every event landed after the outage")
        finally:
            consumer.request_stop()
            runner.join(timeout=60)
            publisher.join(timeout=60)

        rows = landed(database_url)
        with psycopg.connect(database_url) as conn:
            rejected = conn.execute("SELECT count(*) FROM staging.rejected").fetchone()
    assert alive_through_outage
    assert len(rows) == len(set(rows)) == 5000
    assert rejected == (0,)
    assert consumer.stats.rejected == 0
    assert _postgres_failures() > failures_before
