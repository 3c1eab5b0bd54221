"""End to end: partner events through Kafka, the consumer and the nightly DAG into the warehouse."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import psycopg
import pytest

from consumers.service import IngestService
from schemas.topics import events_topic, sync_topic
from tests.support.consumers import consumer_settings
from tests.support.events import encode, enrollment, registry_with
from tests.support.feed import (
    drop_topics,
    feed_registry,
    relay_settings,
    topic_records,
    write_registry,
)
from tests.support.kafka import publish
from tests.support.nightly import SENDER_CLOCK, at_noon_ms, run_moment
from warehouse.relay import Relay

pytestmark = pytest.mark.e2e
DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "nightly_sync.py"


def _load_dag():
    spec = importlib.util.spec_from_file_location("nightly_sync_under_test", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.nightly_sync()


def _warehouse_rows(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT partner_id, enrollment_id, person, business_day FROM warehouse.fact_enrollment"
            " ORDER BY 1, 2").fetchall()


def test_published_events_reach_the_warehouse_and_the_feeds_once_and_a_rerun_changes_nothing(
        kafka_bootstrap, database_url, new_partners, pseudonymiser, airflow_db, monkeypatch,
        seeded, tmp_path):
    partners = new_partners("training_platform", "technician_college",
                            topic_overrides=SENDER_CLOCK)
    today = seeded.today
    published = 0
    for pid in partners.values():
        published += publish(kafka_bootstrap, events_topic(pid),
                             [encode(enrollment(pid, n)) for n in range(150)],
                             timestamp_ms=at_noon_ms(today))
    pattern = "^skills\\.events\\.(" + "|".join(partners.values()) + ")$"
    group = f"e2e-{partners['training_platform']}"
    settings = consumer_settings(kafka_bootstrap, database_url, group_id=group,
                                 topic_pattern=pattern, linger_ms=50)
    registry = registry_with({pid: role for role, pid in partners.items()})
    IngestService(settings, registry=registry, pseudonymiser=pseudonymiser).run(
        until_caught_up=True)
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("SKILLSYNC_CONSUMER_GROUP", group)
    monkeypatch.setenv("SKILLSYNC_TOPIC_PATTERN", pattern)
    # The partners subscribe to their outcomes; the relay runs beside the DAG, as in production.
    monkeypatch.setenv("SKILLSYNC_PARTNERS_REGISTRY", str(write_registry(feed_registry(
        {pid: (role, "330106") for role, pid in partners.items()}), tmp_path / "partners.toml")))
    drop_topics(kafka_bootstrap, [sync_topic(pid) for pid in partners.values()])
    dag = _load_dag()
    stop = threading.Event()
    relay = threading.Thread(target=Relay(relay_settings(database_url, kafka_bootstrap),
                                          stop).run, daemon=True)
    relay.start()
    try:
        first = dag.test(logical_date=run_moment(seeded.rng),
                         run_conf={"business_day": today.isoformat()})
        after_first = _warehouse_rows(database_url)
        second = dag.test(logical_date=run_moment(seeded.rng),
                          run_conf={"business_day": today.isoformat()})
    finally:
        stop.set()
        relay.join(timeout=30)

    assert str(first.state) == "success" and str(second.state) == "success"
    assert len(after_first) == published == 300
    assert _warehouse_rows(database_url) == after_first
    for pid in partners.values():
        # One outcome per enrollment on each partner's feed, sent once for both runs.
        assert len(topic_records(kafka_bootstrap, sync_topic(pid))) == 150


def test_a_blocking_expectation_stops_the_run_before_the_load(
        kafka_bootstrap, database_url, new_partners, pseudonymiser, airflow_db, monkeypatch,
        seeded):
    pid = new_partners("training_platform", topic_overrides=SENDER_CLOCK)["training_platform"]
    today = seeded.today
    publish(kafka_bootstrap, events_topic(pid), [encode(enrollment(pid, n)) for n in range(20)],
            timestamp_ms=at_noon_ms(today))
    group = f"e2e-{pid}"
    pattern = f"^skills\\.events\\.{pid}$"
    IngestService(consumer_settings(kafka_bootstrap, database_url, group_id=group,
                                    topic_pattern=pattern, linger_ms=50),
                  registry=registry_with({pid: "training_platform"}),
                  pseudonymiser=pseudonymiser).run(until_caught_up=True)
    with psycopg.connect(database_url) as conn:
        # A row no current consumer would land: its learner was never pseudonymised.
        conn.execute("UPDATE staging.events SET person = NULL WHERE event_id = %s",
                     (f"{pid}-evt-0000003",))
    for name, value in {"SKILLSYNC_DATABASE_URL": database_url, "SKILLSYNC_CONSUMER_GROUP": group,
                        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                        "SKILLSYNC_TOPIC_PATTERN": pattern}.items():
        monkeypatch.setenv(name, value)

    run = _load_dag().test(logical_date=run_moment(seeded.rng),
                           run_conf={"business_day": today.isoformat()})

    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert str(run.state) == "failed"
    assert states["validate"] == "failed" and states["load"] == "upstream_failed"
    assert _warehouse_rows(database_url) == []
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT check_name FROM ops.quarantine").fetchall() == [
            ("learner_pseudonymised",)]
