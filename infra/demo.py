"""`make demo`: a simulated night of partner events through the whole pipeline, then a summary."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date, datetime, timedelta

from infra import airflow
from infra.demo_feed import check_mirrors, start_relay, stop_relay
from infra.local import REPO_ROOT, LocalServices

DEMO_FAULTS = {
    "duplicate_rate": 0.01, "malformed": 3, "schema_violations": 3, "bad_checksums": 2,
    "foreign_source": 1, "forbidden_types": 1, "cross_platform_enrollments": 2,
    "shared_certificate_numbers": 1, "double_subsidy_claims": 1, "missing": 2,
}


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def publish_day(cfg: LocalServices, bootstrap: str, day: date, events: int, seed: int) -> dict:
    from partners.faults import Faults
    from partners.kit import connect_producer, send_all
    from partners.simulate import simulate

    simulation = simulate(day, events, seed, Faults(**DEMO_FAULTS))  # type: ignore[arg-type]
    producer = connect_producer(bootstrap)
    try:
        sent = send_all(simulation.messages, producer)
    finally:
        producer.close()
    manifest_path = cfg.state_dir / "demo" / f"manifest-{day.isoformat()}.json"
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_bytes(simulation.manifest_json())
    print(f"published {sent} messages for {day} from {len(simulation.manifest['landed'])} "
          f"partners; ground truth in {manifest_path.relative_to(REPO_ROOT)}")
    return simulation.manifest


def reset_local_data(cfg: LocalServices) -> None:
    """Start the demo from empty topics and an empty database, so every run tells the same story.

    Only the embedded services are reset; an existing cluster or server is never touched.
    """
    import os

    import psycopg

    from adapters.kafka import connect_admin, drop_topics, ensure_topics
    from infra.stack import ensure_sync_topics, partner_topics
    from warehouse.migrate import upgrade

    if os.environ.get("SKILLSYNC_DATABASE_URL") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        raise SystemExit("the demo resets its data: run it on the embedded services, "
                         "without SKILLSYNC_DATABASE_URL or KAFKA_BOOTSTRAP_SERVERS")
    with psycopg.connect(cfg.database_url("postgres").replace("+psycopg", ""),
                         autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS skillsync WITH (FORCE)")
        conn.execute("CREATE DATABASE skillsync")
    upgrade(cfg.database_url())
    admin = connect_admin(cfg.kafka_bootstrap)
    try:
        existing = admin.list_topics()
    finally:
        admin.close()
    drop_topics(cfg.kafka_bootstrap, [t for t in existing if t.startswith(
        ("skills.events.", "skills.rejects.", "skills.sync."))])
    # A deleted topic's name can be briefly unavailable; creating retries until it is free.
    deadline = time.monotonic() + 60
    while True:
        try:
            ensure_topics(cfg.kafka_bootstrap, partner_topics(), partitions=cfg.kafka_partitions)
            ensure_sync_topics(cfg.kafka_bootstrap)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def run(events: int, seed: int) -> int:
    from infra.stack import up
    from schemas.days import SHANGHAI

    cfg = LocalServices()
    started = _step("services: PostgreSQL, Kafka, Airflow metadata")
    up(cfg)
    reset_local_data(cfg)
    now = datetime.now(SHANGHAI)
    simulated_day = now.date() - timedelta(days=1)
    _step(f"partners publish a simulated business day ({simulated_day})")
    manifest = publish_day(cfg, cfg.bootstrap, simulated_day, events, seed)

    _step("consumers land everything published (python -m consumers run --until-caught-up)")
    env = airflow.environment(cfg)
    subprocess.run([sys.executable, "-m", "consumers", "run", "--until-caught-up"],
                   env=env, check=True, cwd=REPO_ROOT)

    # Windows are chosen by broker append time: tonight's run is for the day they arrived.
    append_day = now.date()
    _step(f"nightly_sync for business day {append_day} (airflow dags test)")
    log = cfg.state_dir / "demo" / f"nightly_sync-{append_day}.log"
    # The relay publishes the night's changes to the subscribers' feeds as the DAG waits for it.
    relay = start_relay(env, cfg.state_dir / "demo" / "relay.log")
    try:
        with open(log, "w") as out:
            done = subprocess.run(
                airflow.airflow_argv(["dags", "test", "nightly_sync", append_day.isoformat(),
                                      "--conf", f'{{"business_day": "{append_day}"}}']),
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, check=False)
    finally:
        stop_relay(relay)
    print(f"airflow log: {log.relative_to(REPO_ROOT)}")
    if done.returncode != 0:
        print(f"nightly_sync failed (exit {done.returncode}); see the log above", file=sys.stderr)
        return done.returncode

    from infra.summary import print_summary

    matches = print_summary(env["SKILLSYNC_DATABASE_URL"], append_day, manifest)
    reports = sorted((cfg.state_dir / "reports").glob("*/index.html"))
    if reports:
        print("\nreports: " + ", ".join(str(p.relative_to(REPO_ROOT)) for p in reports))
    _step("every subscriber follows its sync feed (python -m partners follow --once)")
    mirrored = check_mirrors(env, cfg.state_dir / "demo" / "mirrors")
    print_portal_logins(cfg, env["SKILLSYNC_DATABASE_URL"], append_day)
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s; `make airflow` serves the UI,"
          " `make down` stops the services")
    return 0 if matches and mirrored else 1


def demo_logins(database_url: str, day: date) -> list[tuple[str, str, str]]:
    """A partner, a district bureau and an operator account, with fresh passwords.

    The partner is the one with the most refusals that night and the district the one with
    the most certificates, so each sign-in has something to show.
    """
    import secrets

    import psycopg

    from adapters.database import libpq_url
    from portal import accounts
    from portal.db import Database

    with psycopg.connect(libpq_url(database_url)) as conn:
        partner = conn.execute(
            "SELECT partner_id FROM staging.rejected WHERE append_day = %s GROUP BY 1"
            " ORDER BY count(*) DESC, 1 LIMIT 1", (day,)).fetchone()
        district = conn.execute(
            "SELECT a.agency FROM warehouse.fact_certificate c JOIN warehouse.agency_district a"
            " USING (district_code) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
    wanted = [("demo-operator", "operator", None, None)]
    if partner:
        wanted.append((f"demo-{partner[0]}", "partner", partner[0], None))
    if district:
        code = district[0].removeprefix("agency_")
        wanted.append((f"demo-{code}", "agency", None, code))
    db = Database(libpq_url(database_url), pool_size=1)
    made = []
    try:
        with db.portal() as conn:
            for username, kind, partner_id, district_code in wanted:
                password = secrets.token_urlsafe(12)
                if accounts.load(conn, username) is None:
                    accounts.create(conn, username=username, kind=kind, password=password,
                                    partner_id=partner_id, district_code=district_code)
                else:
                    accounts.set_password(conn, username, password)
                made.append((kind, username, password))
    finally:
        db.dispose()
    return made


def print_portal_logins(cfg: LocalServices, database_url: str, day: date) -> None:
    print(f"\nportal: {cfg.portal_url} (`make down` stops it)")
    for kind, username, password in demo_logins(database_url, day):
        print(f"  {kind:<9} user {username:<18} password {password}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infra.demo")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    return run(args.events, args.seed)


if __name__ == "__main__":
    sys.exit(main())

