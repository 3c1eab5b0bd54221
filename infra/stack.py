"""The local stack: start, stop and report PostgreSQL, Kafka and Airflow's metadata."""

from __future__ import annotations

import os
import secrets
from typing import Any

from adapters.kafka import ensure_topics
from infra import airflow, postgres
from infra import portal as local_portal
from infra.kafka import security as kafka_security
from infra.kafka import service as kafka
from infra.local import LocalServices
from schemas.partners import load_registry


def ensure_pseudonym_key(cfg: LocalServices) -> None:
    """A first key for local use; production mounts its own file (see docs/security.md)."""
    path = cfg.pseudonym_key_file
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# pseudonym keys, key_id:hex; the last line is the active key\n")
        handle.write(f"k1:{secrets.token_hex(32)}\n")


def partner_topics() -> list[str]:
    from schemas.topics import events_topic, rejects_topic

    names = []
    for partner in load_registry():
        if partner.allowed_types:
            names += [events_topic(partner.partner_id), rejects_topic(partner.partner_id)]
    return names


def sync_topics() -> list[str]:
    from schemas.topics import sync_topic

    return [sync_topic(p.partner_id) for p in load_registry() if p.feeds]


def ensure_sync_topics(bootstrap: str, **client_options: Any) -> list[str]:
    """The subscribers' compacted feeds, one partition each (the relay makes any missing)."""
    return ensure_topics(bootstrap, sync_topics(), partitions=1, **client_options)


def up(cfg: LocalServices, *, with_airflow: bool = True, with_portal: bool = True) -> None:
    from warehouse.migrate import upgrade

    if not cfg.external_database_url:
        postgres.start(cfg)
        print(f"postgres  up   {cfg.database_url()}")
    upgrade(cfg.project_database_url)
    if not cfg.external_kafka:
        kafka.start(cfg)
        print(f"kafka     up   {cfg.kafka_bootstrap}")
    if cfg.kafka_security and not cfg.external_kafka:
        created = ensure_topics(kafka_security.admin_bootstrap(cfg), partner_topics(),
                                partitions=cfg.kafka_partitions,
                                **kafka_security.admin_options(cfg))
        created += ensure_sync_topics(kafka_security.admin_bootstrap(cfg),
                                      **kafka_security.admin_options(cfg))
        provisioned = kafka_security.provision(cfg, load_registry())
        print(f"security  principals issued {len(provisioned.issued)}, revoked "
              f"{len(provisioned.revoked)}; ACLs created {provisioned.acls_created}, deleted "
              f"{provisioned.acls_deleted}; secrets in {cfg.kafka_secrets_dir}")
    else:
        created = ensure_topics(cfg.bootstrap, partner_topics(), partitions=cfg.kafka_partitions)
        created += ensure_sync_topics(cfg.bootstrap)
    if created:
        print(f"topics    created {len(created)}")
    ensure_pseudonym_key(cfg)
    if with_airflow:
        airflow.migrate(cfg)
        print(f"airflow   ready AIRFLOW_HOME={cfg.airflow_home}; nightly_sync "
              f"{airflow.apply_nightly_sync_state(cfg)} (SKILLSYNC_NIGHTLY_SYNC_ACTIVE="
              f"{str(cfg.nightly_sync_active).lower()})")
    if with_portal:
        local_portal.start(cfg)
        print(f"portal    up   {cfg.portal_url}  (accounts: python -m portal accounts create)")


def down(cfg: LocalServices) -> None:
    print(f"portal    {'stopped' if local_portal.stop(cfg) else 'was not running'}")
    print(f"kafka     {'stopped' if kafka.stop(cfg) else 'was not running'}")
    print(f"postgres  {'stopped' if postgres.stop(cfg) else 'was not running'}")


def status(cfg: LocalServices) -> None:
    print(f"kafka     {kafka.status(cfg)}  {cfg.kafka_bootstrap}")
    print(f"postgres  {postgres.status(cfg)}  {cfg.database_url()}")
    print(f"portal    {local_portal.status(cfg)}  {cfg.portal_url}")
