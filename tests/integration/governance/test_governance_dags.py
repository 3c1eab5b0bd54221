"""The manual DAGs do their job end to end with only the consumers' settings in the environment."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path

import psycopg
import pytest

from schemas.partners import load_registry
from schemas.pseudonym import load_key_file
from schemas.topics import events_topic
from tests.support.consumers import landed, process_env, service
from tests.support.events import encode, enrollment
from tests.support.kafka import publish
from tests.support.nightly import run_moment
from warehouse.erasure import main as erasure_main

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
                                                              airflow_db, seeded):
    pid, events = configured

    run = _load_dag("replay_rejects").test(
        logical_date=run_moment(seeded.rng), run_conf={"partner": pid, "dry_run": False})

    assert str(run.state) == "success"
    assert sorted(landed(database_url)) == sorted((pid, e["id"]) for e in events)


def _request(id_number: str, *args: str, monkeypatch, capsys) -> tuple[int, str]:
    """`python -m warehouse.erasure request ...` with the ID number piped to it."""
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{id_number}\n"))
    capsys.readouterr()  # what earlier steps printed
    code = erasure_main(["request", "--id-type", "resident_id", "--requested-by", "dpo@city",
                         "--reason", "request 2026-119", *args])
    return code, capsys.readouterr().out


def _airflow_runs(conf_text: str) -> list[tuple[str, str]]:
    url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT run_id, conf::text FROM dag_run WHERE dag_id = 'erase_person'"
                            " AND conf::text LIKE %s", (f"%{conf_text}%",)).fetchall()


def test_erase_person_removes_the_person_named_by_pseudonyms_only(
        configured, database_url, airflow_db, monkeypatch, capsys, seeded):
    pid, events = configured
    _load_dag("replay_rejects").test(
        logical_date=run_moment(seeded.rng), run_conf={"partner": pid, "dry_run": False})
    id_number = events[0]["data"]["learner"]["id_number"]
    code, printed = _request(id_number, "--print", monkeypatch=monkeypatch, capsys=capsys)
    conf = json.loads(printed)
    keys = load_key_file(os.environ["SKILLSYNC_PSEUDONYM_KEY_FILE"])
    assert code == 0
    assert conf["pseudonyms"] == [{"key_id": k, "person": keys.person_under(k, "resident_id",
                                                                            id_number)}
                                  for k in keys.key_ids]

    run = _load_dag("erase_person").test(logical_date=run_moment(seeded.rng), run_conf=conf)

    assert str(run.state) == "success"
    assert sorted(landed(database_url)) == sorted((pid, e["id"]) for e in events[1:])
    with psycopg.connect(database_url) as conn:
        # Who asked, and who triggered the run (dag.test() triggers as "dag_test").
        assert conn.execute("SELECT requested_by, reason FROM staging.erasures").fetchall() == [
            ("dpo@city (triggered by dag_test)", "request 2026-119")]
    stored = _airflow_runs(conf["pseudonyms"][0]["person"])
    assert [run_id for run_id, _ in stored] == [run.run_id]
    assert id_number[:17] not in stored[0][1]


def test_an_erasure_request_triggers_the_dag_with_pseudonyms_only(
        configured, airflow_db, monkeypatch, capsys, seeded):
    _, events = configured
    id_number = events[1]["data"]["learner"]["id_number"]
    # Run once so that Airflow's database knows the DAG; the trigger needs it.
    _load_dag("erase_person").test(logical_date=run_moment(seeded.rng), run_conf={
        "pseudonyms": [{"key_id": "none", "person": "0" * 64}], "requested_by": "dpo@city",
        "reason": "registering the DAG"})
    person = load_key_file(os.environ["SKILLSYNC_PSEUDONYM_KEY_FILE"]).person(
        "resident_id", id_number)

    code, _ = _request(id_number, monkeypatch=monkeypatch, capsys=capsys)

    queued = _airflow_runs(person)
    try:
        assert code == 0
        assert len(queued) == 1
        assert id_number[:17] not in queued[0][1]
    finally:
        # No scheduler runs here: take the queued run away again.
        url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM dag_run WHERE run_id = ANY(%s)",
                         ([run_id for run_id, _ in queued],))


