"""`python -m infra up|down|status|env|airflow ...`: the local services, idempotently."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import warnings
from typing import Any

from infra import airflow, postgres
from infra.kafka import security as kafka_security
from infra.kafka import service as kafka
from infra.kafka.topics import ensure_topics
from infra.local import LocalServices
from infra.process import ServiceError
from schemas.partners import load_registry

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _external_kafka() -> str | None:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS")


def _external_database() -> str | None:
    return os.environ.get("SKILLSYNC_DATABASE_URL")


def bootstrap(cfg: LocalServices) -> str:
    return _external_kafka() or cfg.kafka_bootstrap


def database_url(cfg: LocalServices) -> str:
    return _external_database() or cfg.database_url()


def ensure_pseudonym_key(cfg: LocalServices) -> None:
    """A first key for local use; production mounts its own file (see docs/security.md)."""
    path = cfg.state_dir / "secrets" / "pseudonym.keys"
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
    from warehouse.relay import TOPIC_CONFIG

    return ensure_topics(bootstrap, sync_topics(), partitions=1, overrides=TOPIC_CONFIG,
                         **client_options)


def up(cfg: LocalServices, *, with_airflow: bool = True) -> None:
    from warehouse.migrate import upgrade

    if not _external_database():
        postgres.start(cfg)
        print(f"postgres  up   {cfg.database_url()}")
    upgrade(database_url(cfg))
    if not _external_kafka():
        kafka.start(cfg)
        print(f"kafka     up   {cfg.kafka_bootstrap}")
    if cfg.kafka_security and not _external_kafka():
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
        created = ensure_topics(bootstrap(cfg), partner_topics(), partitions=cfg.kafka_partitions)
        created += ensure_sync_topics(bootstrap(cfg))
    if created:
        print(f"topics    created {len(created)}")
    ensure_pseudonym_key(cfg)
    if with_airflow:
        airflow.migrate(cfg)
        print(f"airflow   ready AIRFLOW_HOME={cfg.airflow_home}")


def down(cfg: LocalServices) -> None:
    print(f"kafka     {'stopped' if kafka.stop(cfg) else 'was not running'}")
    print(f"postgres  {'stopped' if postgres.stop(cfg) else 'was not running'}")


def status(cfg: LocalServices) -> None:
    print(f"kafka     {kafka.status(cfg)}  {cfg.kafka_bootstrap}")
    print(f"postgres  {postgres.status(cfg)}  {cfg.database_url()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="start PostgreSQL and Kafka, migrate, create topics")
    up_cmd.add_argument("--no-airflow", action="store_true")
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("status", help="what is running")
    sub.add_parser("env", help="print the environment the project's commands use")
    demo = sub.add_parser("demo", help="a simulated night through the whole pipeline")
    demo.add_argument("--events", type=int, default=5000)
    demo.add_argument("--seed", type=int, default=7)
    af = sub.add_parser("airflow", help="run an airflow command with the project's environment")
    af.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cfg = LocalServices()
    try:
        if args.command == "up":
            up(cfg, with_airflow=not args.no_airflow)
        elif args.command == "down":
            down(cfg)
        elif args.command == "status":
            status(cfg)
        elif args.command == "env":
            env = airflow.environment(cfg, base={})
            for key in sorted(env):
                print(f"export {key}={env[key]}")
        elif args.command == "demo":
            from infra.demo import run

            return run(args.events, args.seed)
        elif args.command == "airflow":
            return airflow.run(cfg, args.args, check=False)
    except ServiceError as exc:
        print(f"infra: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
