"""The environment Airflow commands run with: the project's services, its DAGs, its own airflow."""

from __future__ import annotations

import sys
from pathlib import Path

from infra.airflow import environment
from infra.local import REPO_ROOT, LocalServices


def test_airflow_runs_against_the_local_services_and_the_projects_dags(tmp_path: Path) -> None:
    cfg = LocalServices(state_dir=tmp_path, pg_port=15999)

    env = environment(cfg, base={"PATH": "/usr/bin"})

    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert "127.0.0.1:15999/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # `airflow standalone` starts its parts as `airflow ...`: the project's must come first.
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_settings_the_operator_chose_are_kept(tmp_path: Path) -> None:
    env = environment(LocalServices(state_dir=tmp_path),
                      base={"AIRFLOW__CORE__LOAD_EXAMPLES": "True", "PATH": "/usr/bin"})

    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "True"


def test_airflow_and_the_portal_read_the_intended_state_of_nightly_sync(tmp_path: Path) -> None:
    off = environment(LocalServices(state_dir=tmp_path), base={"PATH": "/usr/bin"})
    on = environment(LocalServices(state_dir=tmp_path, nightly_sync_active=True,
                                   portal_port=18399), base={"PATH": "/usr/bin"})

    assert (off["SKILLSYNC_NIGHTLY_SYNC_ACTIVE"], on["SKILLSYNC_NIGHTLY_SYNC_ACTIVE"]) == (
        "false", "true")
    # The Airflow UI's link to the portal follows the portal's port.
    assert on["SKILLSYNC_PORTAL_PUBLIC_URL"] == "http://127.0.0.1:18399"
