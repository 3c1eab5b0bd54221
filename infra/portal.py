"""The web portal as a local service: started by `up`, stopped by `down`."""

from __future__ import annotations

import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

from infra import airflow
from infra.local import REPO_ROOT, LocalServices
from infra.process import port_open, read_pid, spawn, terminate, wait_until


def pid_file(cfg: LocalServices) -> Path:
    return cfg.portal_dir / "portal.pid"


def log_file(cfg: LocalServices) -> Path:
    return cfg.portal_dir / "portal.log"


def session_secret(cfg: LocalServices) -> str:
    """The key that signs the portal's cookies, kept so sessions survive a restart."""
    path = cfg.state_dir / "secrets" / "portal_session.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def environment(cfg: LocalServices) -> dict[str, str]:
    """The portal's settings for the local services; variables already set win."""
    env = airflow.environment(cfg)
    defaults = {
        "SKILLSYNC_PORTAL_PORT": str(cfg.portal_port),
        "SKILLSYNC_PORTAL_PUBLIC_URL": cfg.portal_url,
        "SKILLSYNC_PORTAL_AIRFLOW_URL": f"http://127.0.0.1:{cfg.airflow_port}",
        "SKILLSYNC_PORTAL_LOG_FILE": str(log_file(cfg).with_suffix(".jsonl")),
        "SKILLSYNC_PORTAL_SESSION_SECRET": session_secret(cfg),
        "SKILLSYNC_DATA_DOCS_DIR": str(cfg.state_dir / "gx" / "data_docs"),
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def _healthy(cfg: LocalServices) -> bool:
    try:
        with urllib.request.urlopen(f"{cfg.portal_url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def status(cfg: LocalServices) -> str:
    pid = read_pid(pid_file(cfg))
    if pid and port_open(cfg.portal_port):
        return f"running (pid {pid})"
    return "running (not started by us)" if port_open(cfg.portal_port) else "stopped"


def start(cfg: LocalServices) -> None:
    if port_open(cfg.portal_port):
        return
    cfg.portal_dir.mkdir(parents=True, exist_ok=True)
    pid = spawn([sys.executable, "-m", "portal", "serve"], log_file=log_file(cfg),
                pid_file=pid_file(cfg), env=environment(cfg), cwd=REPO_ROOT)
    wait_until(lambda: _healthy(cfg), timeout=60, what="portal", log_file=log_file(cfg),
               alive=lambda: read_pid(pid_file(cfg)) == pid)


def stop(cfg: LocalServices) -> bool:
    return terminate(pid_file(cfg), grace=15)
