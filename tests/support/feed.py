"""The sync feed in tests: a registry with subscribers of every kind, and the outbox replayed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg

from schemas.partners import Partner, PartnerRegistry, load_registry

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
                "SELECT operation, kind, record_key, payload FROM warehouse.feed_outbox"
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
                "SELECT subscriber, version FROM warehouse.feed_outbox ORDER BY created_at, "
                "subscriber, version"):
            versions.setdefault(subscriber, []).append(version)
    return versions


def drop_topics(bootstrap: str, names: list[str]) -> None:
    """Delete whichever of the topics exist (a replayed seed names the same subscribers)."""
    import time

    from infra.kafka.topics import connect_admin

    admin = connect_admin(bootstrap)
    try:
        stale = sorted(set(names) & set(admin.list_topics()))
        if stale:
            admin.delete_topics(stale)
            deadline = time.monotonic() + 60
            while set(stale) & set(admin.list_topics()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topics {stale} still exist a minute after deletion")
                time.sleep(0.2)
    finally:
        admin.close()


def relay_settings(database_url: str, bootstrap: str, **overrides: Any):
    from pydantic import SecretStr

    from warehouse.relay import RelaySettings

    return RelaySettings(database_url=SecretStr(database_url), kafka_bootstrap_servers=bootstrap,
                         idle_wait_s=0.5, backoff_initial_s=0.2, backoff_max_s=2.0, **overrides)


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
