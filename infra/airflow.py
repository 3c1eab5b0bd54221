"""Airflow 3 with its home under .local/ and its metadata in the embedded PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from infra.local import REPO_ROOT, LocalServices
from infra.process import ServiceError


def environment(cfg: LocalServices, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow command of ours runs with; Airflow's own variables win."""
    env = dict(os.environ if base is None else base)
    defaults = {
        "AIRFLOW_HOME": str(cfg.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Shanghai",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": cfg.database_url("airflow"),
        # psycopg 3 serves both; without this Airflow would look for asyncpg.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": cfg.database_url("airflow").replace(
            "+psycopg", "+psycopg_async"),
        "AIRFLOW__API__PORT": str(cfg.airflow_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # The DAG folder holds only wiring; the project's packages come from the checkout.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        **cfg.project_environment(),
        # Read by the DAG file (paused at creation or not) and by the portal's warning.
        "SKILLSYNC_NIGHTLY_SYNC_ACTIVE": str(cfg.nightly_sync_active).lower(),
        # Where the Airflow UI's link to the portal points.
        "SKILLSYNC_PORTAL_PUBLIC_URL": cfg.portal_url,
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    # `airflow standalone` starts its components as `airflow ...` found on PATH.
    venv_bin = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != venv_bin:
        env["PATH"] = os.pathsep.join(filter(None, [venv_bin, env.get("PATH")]))
    return env


def airflow_argv(args: Sequence[str]) -> list[str]:
    return [str(Path(sys.executable).with_name("airflow")), *args]


def run(cfg: LocalServices, args: Sequence[str], *, check: bool = True) -> int:
    cfg.airflow_home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(airflow_argv(args), env=environment(cfg), check=False)
    if check and done.returncode != 0:
        raise ServiceError(f"`airflow {' '.join(args)}` exited with {done.returncode}")
    return done.returncode


AIRFLOW_VERSION = version("apache-airflow")


def _schema_current(cfg: LocalServices, marker: Path) -> bool:
    """True when this Airflow version already migrated the metadata database in use."""
    import psycopg

    if not marker.exists() or marker.read_text() != AIRFLOW_VERSION:
        return False
    url = environment(cfg)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT to_regclass('public.dag_run') IS NOT NULL").fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def migrate(cfg: LocalServices) -> None:
    """Create or upgrade Airflow's metadata schema (idempotent)."""
    marker = cfg.airflow_home / ".migrated"
    if _schema_current(cfg, marker):
        return
    cfg.airflow_home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(airflow_argv(["db", "migrate"]), env=environment(cfg),
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(
            f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    marker.write_text(AIRFLOW_VERSION)


NIGHTLY_DAG = "nightly_sync"


def nightly_sync_paused(cfg: LocalServices) -> bool | None:
    """Whether Airflow holds nightly_sync paused; None before its DAG processor has seen it."""
    import psycopg

    url = environment(cfg)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg", "")
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT is_paused FROM dag WHERE dag_id = %s",
                           (NIGHTLY_DAG,)).fetchone()
    return None if row is None else bool(row[0])


def apply_nightly_sync_state(cfg: LocalServices) -> str:
    """Pause or unpause nightly_sync as SKILLSYNC_NIGHTLY_SYNC_ACTIVE says.

    A DAG Airflow has not parsed yet is created in that state (the DAG file reads the same
    setting), so only an existing DAG needs the command.
    """
    wanted_paused = not cfg.nightly_sync_active
    if nightly_sync_paused(cfg) in (None, wanted_paused):
        return "paused" if wanted_paused else "active"
    run(cfg, ["dags", "pause" if wanted_paused else "unpause", NIGHTLY_DAG])
    return "paused" if wanted_paused else "active"
