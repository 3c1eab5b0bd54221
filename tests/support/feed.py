"""The sync feed in tests: a registry with subscribers of every kind, and the outbox replayed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from adapters.settings import Settings
from schemas.partners import Partner, PartnerRegistry, load_registry
from tests.support.kafka import drop_topics

# Roles of a test city with every kind of subscriber, and where each sits.
FEED_ROLES = (("training_platform", "330106"), ("training_platform", "330108"),
              ("technician_college", "330110"), ("evaluation_org", "330106"),
              ("evaluation_org", "330108"), ("evaluation_org", "330103"),
              ("district_bureau", "330106"), ("district_bureau", "330108"),
              ("district_bureau", "330105"), ("subsidy_office", "330100"))


def feed_registry(partners: Mapping[str, tuple[str, str]]) -> PartnerRegistry:
    """{partner_id: (role, district)}, each with its role's families and feeds as shipped."""
    shipped = {p.role: p for p in load_registry()}
    return PartnerRegistry({
        pid: Partner(partner_id=pid, name=f"test partner {pid}", role=role,
                     district_code=district, allowed_types=shipped[role].allowed_types,
                     feeds=shipped[role].feeds)
        for pid, (role, district) in partners.items()})


def write_registry(registry: PartnerRegistry, path: Path) -> Path:
    """The registry as a TOML file a process reads (SKILLSYNC_PARTNERS_REGISTRY)."""
    lines = []
    for p in registry:
        lines += ["[[partner]]", f'partner_id = "{p.partner_id}"', f'name = "{p.name}"',
                  f'role = "{p.role}"', f'district_code = "{p.district_code}"',
                  "allowed_types = [" + ", ".join(f'"{t}"' for t in sorted(p.allowed_types))
                  + "]", "feeds = [" + ", ".join(f'"{f}"' for f in sorted(p.feeds)) + "]", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def replayed_outbox(database_url: str, subscriber: str) -> dict[str, tuple[str, Any]]:
    """The subscriber's outbox applied in version order: what a perfect mirror holds."""
    mirror: dict[str, tuple[str, Any]] = {}
    with psycopg.connect(database_url) as conn:
        for operation, kind, key, payload in conn.execute(
                "SELECT operation, kind, record_key, payload FROM ops.feed_outbox"
                " WHERE subscriber = %s ORDER BY version", (subscriber,)):
            if operation == "upsert":
                mirror[key] = (kind, payload)
            else:
                mirror.pop(key, None)
    return mirror


def outbox_versions(database_url: str) -> dict[str, list[int]]:
    with psycopg.connect(database_url) as conn:
        versions: dict[str, list[int]] = {}
        for subscriber, version in conn.execute(
                "SELECT subscriber, version FROM ops.feed_outbox ORDER BY created_at, "
                "subscriber, version"):
            versions.setdefault(subscriber, []).append(version)
    return versions


def relay_settings(database_url: str, bootstrap: str, **feed: Any) -> Settings:
    """The relay's settings for a test: these services, quick waits, these feed settings."""
    from pydantic import SecretStr

    from adapters.settings import DatabaseSettings, FeedSettings, KafkaSettings

    return Settings(kafka=KafkaSettings(bootstrap_servers=bootstrap),
                    database=DatabaseSettings(url=SecretStr(database_url)),
                    feed=FeedSettings(**{"idle_wait_s": 0.5, "backoff_initial_s": 0.2,
                                         "backoff_max_s": 2.0, **feed}))


def follow_once(bootstrap: str, subscriber: str, mirror_path: Path, **options: Any):
    """Catch one subscriber's SQLite mirror up with its feed; (stats, mirror rows)."""
    from partners.follow import Follower, Mirror

    mirror = Mirror(f"sqlite:///{mirror_path}")
    try:
        stats = Follower(subscriber, mirror, client_options={"bootstrap_servers": bootstrap},
                         **options).run(once=True)
        return stats, mirror.rows()
    finally:
        mirror.close()


def topic_records(bootstrap: str, topic: str, **client_options: Any) -> list[Any]:
    """Every record of a one-partition topic, up to its end offset as it is now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, **client_options)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        end = consumer.end_offsets([partition])[partition]
        consumer.seek_to_beginning(partition)
        records: list[Any] = []
        while consumer.position(partition) < end:
            records.extend(consumer.poll(timeout_ms=500).get(partition, []))
        return records
    finally:
        consumer.close()


def land_city(database_url: str, bootstrap: str, pseudonymiser: Any, seed: int, events: int,
              days: int, folder: Path, faults: Any = None
              ) -> tuple[PartnerRegistry, Path, list[Any]]:
    """A city with subscribers of every kind (ids from the seed), its days landed straight into
    staging, its subscribers' feeds not yet on the broker; (registry, its file, the days)."""
    import random
    from datetime import timedelta

    from partners.faults import Faults
    from partners.simulate import simulate
    from tests.support.landing import land_directly
    from tests.support.nightly import appended_days
    from tests.support.seed import Seeded, draw_day

    draws = Seeded(seed)
    registry = feed_registry({draws.partner_id(): role for role in FEED_ROLES})
    path = write_registry(registry, folder / "partners.toml")
    first = draw_day(random.Random(seed)) - timedelta(days=days + 10)
    simulation = simulate(first, events, seed, faults or Faults(
        duplicate_rate=0.02, late_rate=0.05, cross_platform_enrollments=3,
        shared_certificate_numbers=2, double_subsidy_claims=3, late_changes=3,
        reversed_results=2, orphan_changes=2, missing=2), days, registry=registry)
    land_directly(simulation.messages, database_url, registry, pseudonymiser)
    from schemas.topics import sync_topic

    drop_topics(bootstrap, [sync_topic(p.partner_id) for p in registry])
    return registry, path, appended_days(database_url)


def views_of(database_url: str, registry: PartnerRegistry) -> dict[str, dict[str, Any]]:
    from adapters.database import scoped_engine
    from warehouse.feed_views import subscriber_view
    from warehouse.outbox import subscriptions

    with scoped_engine(database_url) as engine, engine.begin() as conn:
        return {s.subscriber: subscriber_view(conn, s) for s in subscriptions(registry)}


def python_process(module: str, env: Mapping[str, str], log_path: Path, *args: str):
    """`python -m <module> args` in its own process group, output to a log file."""
    import subprocess
    import sys

    from infra.local import REPO_ROOT

    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", module, *args], env=dict(env),
                                cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def feed_env(database_url: str, bootstrap: str, registry_file: Path,
             **feed: str) -> dict[str, str]:
    """Environment for the relay and the follower as processes (SKILLSYNC_FEED_* extras)."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SKILLSYNC_", "KAFKA_BOOTSTRAP"))}
    env.update({"SKILLSYNC_DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "SKILLSYNC_PARTNERS_REGISTRY": str(registry_file),
                "SKILLSYNC_FEED_IDLE_WAIT_S": "0.5", "SKILLSYNC_FEED_BACKOFF_INITIAL_S": "0.2",
                "SKILLSYNC_FEED_BACKOFF_MAX_S": "2", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update({f"SKILLSYNC_FEED_{k.upper()}": v for k, v in feed.items()})
    return env
