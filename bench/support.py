"""What the benchmarks share: scratch databases on a server, and this process's peak memory."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg


def scratch_database(server_url: str, prefix: str) -> tuple[str, str]:
    """Create and migrate a database of the benchmark's own; (its URL, its name)."""
    from warehouse.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{server_url.rpartition('/')[0]}/{name}"
    try:
        upgrade(url)
    except BaseException:
        drop_database(server_url, name)
        raise
    return url, name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
