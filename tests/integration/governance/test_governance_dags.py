"""The manual DAGs do their job end to end with only the consumers' settings in the environment."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from schemas.partners import load_registry
from schemas.pseudonym import load_key_file
from schemas.topics import events_topic
from tests.support.consumers import landed, process_env, service
from tests.support.events import encode, enrollment
from tests.support.kafka import publish
from warehouse.days import SHANGHAI

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).resolve().parents[3] / "dags"


def _load_dag(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)()


@pytest.fixture
def configured(tmp_path, kafka_bootstrap, database_url, new_partners, monkeypatch):
    """A partner refused as unregistered, then added to the registry the settings name."""
    partners = new_partners("training_platform")
    pid = partners["training_platform"]
    events = [enrollment(pid, n) for n in range(3)]
    publish(kafka_bootstrap, events_topic(pid), [encode(e) for e in events])
    env = process_env(tmp_path, kafka_bootstrap=kafka_bootstrap, database_url=database_url,
                      partners=partners)
    keys = load_key_file(env["SKILLSYNC_PSEUDONYM_KEY_FILE"])
    service(kafka_bootstrap, database_url, partners, keys,
            registry=load_registry()).run(until_caught_up=True)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SKILLSYNC_DATABASE_URL",
                 "SKILLSYNC_PARTNERS_REGISTRY", "SKILLSYNC_PSEUDONYM_KEY_FILE"):
        monkeypatch.setenv(name, env[name])
    return pid, events


def test_replay_rejects_lands_what_the_fixed_registry_allows(configured, database_url,
                                                              airflow_db):
    pid, events = configured

    run = _load_dag("replay_rejects").test(
        logical_date=datetime.now(SHANGHAI), run_conf={"partner": pid, "dry_run": False})

    assert str(run.state) == "success"
    assert sorted(landed(database_url)) == sorted((pid, e["id"]) for e in events)


def test_erase_person_removes_the_person_named_by_a_masked_param(configured, database_url,
                                                                 airflow_db):
    pid, events = configured
    _load_dag("replay_rejects").test(
        logical_date=datetime.now(SHANGHAI), run_conf={"partner": pid, "dry_run": False})
    id_number = events[0]["data"]["learner"]["id_number"]
    dag = _load_dag("erase_person")
    assert dag.params.get_param("id_number").schema["format"] == "password"

    run = dag.test(logical_date=datetime.now(SHANGHAI), run_conf={
        "id_type": "resident_id", "id_number": id_number, "requested_by": "dpo@city",
        "reason": "request 2026-119"})

    assert str(run.state) == "success"
    assert sorted(landed(database_url)) == sorted((pid, e["id"]) for e in events[1:])
    with psycopg.connect(database_url) as conn:
        # Who asked, and who triggered the run (dag.test() triggers as "dag_test").
        assert conn.execute("SELECT requested_by, reason FROM staging.erasures").fetchall() == [
            ("dpo@city (triggered by dag_test)", "request 2026-119")]
