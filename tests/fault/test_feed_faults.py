"""The sync feed under faults: relay killed mid-batch, broker SIGKILLed, PostgreSQL restarted,
follower killed mid-apply. Afterwards every feed holds every change once and in order, and
every mirror equals its subscriber's view."""

from __future__ import annotations

import random
import time
from pathlib import Path

import psycopg
import pytest

from infra import postgres as local_postgres
from infra.kafka import service as local_kafka
from infra.local import LocalServices
from infra.process import read_pid
from quality.sync_check import check_sync, render
from tests.fault.harness import Scale, kill_hard
from tests.support.consumers import own_postgres, wait_for
from tests.support.feed import (
    feed_env,
    follow_once,
    land_city,
    python_process,
    views_of,
)
from tests.support.nightly import load_days
from warehouse.relay import relay_lag

pytestmark = pytest.mark.integration

LAG_BOUND_S = 180.0


def _days_of(scale: Scale) -> int:
    return 3 if scale.name == "short" else 6


def _events_of(scale: Scale) -> int:
    # The short city is smaller than the other scenarios': its feeds still span several relay
    # batches of 40 and follower batches of 25, and `make test` stays short.
    return 600 if scale.name == "short" else scale.events


def _rounds_of(scale: Scale) -> int:
    """How often a costly fault (a broker restart) repeats: once in the short version."""
    return 1 if scale.name == "short" else scale.rounds


def _mirrors_equal_views(database_url: str, bootstrap: str, registry, folder: Path) -> None:
    views = views_of(database_url, registry)
    for subscriber, view in views.items():
        stats, rows = follow_once(bootstrap, subscriber, folder / f"{subscriber}.sqlite")
        assert stats.caught_up
        assert rows == view, subscriber


def _feeds_complete(database_url: str, bootstrap: str) -> None:
    findings = check_sync(database_url, {"bootstrap_servers": bootstrap})
    assert all(f.ok and f.counts["lag"] == 0 for f in findings), render(findings)


def _load(database_url: str, days, registry_file: Path, run: str, monkeypatch) -> None:
    monkeypatch.setenv("SKILLSYNC_PARTNERS_REGISTRY", str(registry_file))
    load_days(database_url, days, run)


def _busiest(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT subscriber FROM ops.feed_subscriber"
                           " ORDER BY last_version DESC, subscriber LIMIT 1").fetchone()
    assert row
    return str(row[0])


def test_a_relay_killed_mid_batch_resumes_without_losing_or_repeating_a_change(
        scale: Scale, tmp_path, database_url, kafka_bootstrap, pseudonymiser, monkeypatch,
        seeded):
    registry, registry_file, days = land_city(database_url, kafka_bootstrap, pseudonymiser,
                                              seeded.rng.getrandbits(32), _events_of(scale),
                                              _days_of(scale), tmp_path)
    _load(database_url, days, registry_file, "night", monkeypatch)
    env = feed_env(database_url, kafka_bootstrap, registry_file, batch_size="40")
    points = ("mid_send", "before_record")
    kills = 2 * _rounds_of(scale)
    killed = 0
    for round_ in range(kills):
        crash = f"{points[round_ % 2]}:{round_ + 2}"
        relay = python_process("tests.fault.crashing_relay",
                               {**env, "SKILLSYNC_FAULT_CRASH": crash}, tmp_path / "relay.log",
                               "--until-caught-up")
        killed += relay.wait(timeout=300) == -9
    assert killed == kills, (tmp_path / "relay.log").read_text()[-3000:]

    relay = python_process("warehouse.relay", env, tmp_path / "relay.log", "--until-caught-up")
    assert relay.wait(timeout=300) == 0

    _feeds_complete(database_url, kafka_bootstrap)
    _mirrors_equal_views(database_url, kafka_bootstrap, registry, tmp_path)


def test_a_broker_sigkilled_and_restarted_under_the_relay_loses_nothing(
        scale: Scale, tmp_path, database_url, pseudonymiser, monkeypatch, seeded,
        own_kafka: LocalServices):
    bootstrap = own_kafka.kafka_bootstrap
    registry, registry_file, days = land_city(database_url, bootstrap, pseudonymiser,
                                              seeded.rng.getrandbits(32), _events_of(scale),
                                              _days_of(scale), tmp_path)
    rng = random.Random(seeded.seed)
    half = len(days) // 2
    _load(database_url, days[:half], registry_file, "night", monkeypatch)
    env = feed_env(database_url, bootstrap, registry_file, batch_size="40")
    relay = python_process("warehouse.relay", env, tmp_path / "relay.log")
    try:
        for round_ in range(_rounds_of(scale)):
            time.sleep(rng.uniform(0.5, 2.0))
            kill_hard(read_pid(local_kafka.pid_file(own_kafka)))
            if round_ == 0:
                # The nights go on while the broker is down; their changes wait in the outbox.
                _load(database_url, days[half:], registry_file, "night", monkeypatch)
            time.sleep(rng.uniform(1.0, 3.0))
            local_kafka.start(own_kafka)
        wait_for(lambda: not relay_lag(database_url), timeout=LAG_BOUND_S,
                 what="the relay to catch up after the broker came back")
        assert relay.poll() is None, "the relay must ride out a broker failure, not exit"
    finally:
        relay.terminate()
        relay.wait(timeout=60)

    _feeds_complete(database_url, bootstrap)
    _mirrors_equal_views(database_url, bootstrap, registry, tmp_path)


def test_postgresql_restarted_under_the_relay_loses_nothing(
        scale: Scale, tmp_path, kafka_bootstrap, pseudonymiser, monkeypatch, seeded):
    with own_postgres() as (cfg, database_url):
        registry, registry_file, days = land_city(database_url, kafka_bootstrap, pseudonymiser,
                                                  seeded.rng.getrandbits(32), _events_of(scale),
                                                  _days_of(scale), tmp_path)
        rng = random.Random(seeded.seed)
        half = len(days) // 2
        _load(database_url, days[:half], registry_file, "night", monkeypatch)
        env = feed_env(database_url, kafka_bootstrap, registry_file, batch_size="40")
        relay = python_process("warehouse.relay", env, tmp_path / "relay.log")
        try:
            for round_ in range(max(1, scale.rounds // 2)):
                time.sleep(rng.uniform(0.3, 1.5))
                local_postgres.stop(cfg)
                time.sleep(rng.uniform(1.0, 3.0))
                local_postgres.start(cfg)
                if round_ == 0:
                    _load(database_url, days[half:], registry_file, "night", monkeypatch)
            wait_for(lambda: not relay_lag(database_url), timeout=LAG_BOUND_S,
                     what="the relay to catch up after PostgreSQL came back")
            assert relay.poll() is None, "the relay must ride out a database restart"
        finally:
            relay.terminate()
            relay.wait(timeout=60)

        _feeds_complete(database_url, kafka_bootstrap)
        _mirrors_equal_views(database_url, kafka_bootstrap, registry, tmp_path)


def test_a_follower_killed_mid_apply_resumes_to_an_equal_mirror(
        scale: Scale, tmp_path, database_url, kafka_bootstrap, pseudonymiser, monkeypatch,
        seeded):
    registry, registry_file, days = land_city(database_url, kafka_bootstrap, pseudonymiser,
                                              seeded.rng.getrandbits(32), _events_of(scale),
                                              _days_of(scale), tmp_path)
    _load(database_url, days, registry_file, "night", monkeypatch)
    env = feed_env(database_url, kafka_bootstrap, registry_file)
    relay = python_process("warehouse.relay", env, tmp_path / "relay.log", "--until-caught-up")
    assert relay.wait(timeout=300) == 0
    subscriber = _busiest(database_url)
    mirror = tmp_path / "mirror.sqlite"
    killed = 0
    for round_ in range(scale.rounds):
        follower = python_process(
            "tests.fault.crashing_follower",
            {**env, "SKILLSYNC_FAULT_CRASH": f"mid_apply:{round_ + 2}",
             "SKILLSYNC_FAULT_MAX_RECORDS": "25"},
            tmp_path / "follow.log", "follow", subscriber, "--mirror", f"sqlite:///{mirror}",
            "--once")
        killed += follower.wait(timeout=300) == -9
    assert killed >= 1, (tmp_path / "follow.log").read_text()[-3000:]

    stats, rows = follow_once(kafka_bootstrap, subscriber, mirror)

    assert stats.caught_up and stats.repeats == 0
    assert rows == views_of(database_url, registry)[subscriber]
