"""Are Kafka and PostgreSQL there at all? Asked once at start, quietly, within a deadline."""

from __future__ import annotations

import socket
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

_RETRY_S = 0.5


def kafka_unreachable(bootstrap_servers: str, *, timeout_s: float) -> str | None:
    """Why no bootstrap server accepts a connection within timeout_s (None: one does)."""
    deadline = time.monotonic() + timeout_s
    while True:
        problems = []
        for server in bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)),
                                              timeout=min(5.0, timeout_s)):
                    return None
            except OSError as exc:
                problems.append(exc.strerror or type(exc).__name__)
        if time.monotonic() + _RETRY_S > deadline:
            return f"{'; '.join(sorted(set(problems)))} (tried for {timeout_s:.0f}s)"
        time.sleep(_RETRY_S)


def postgres_address(database_url: str) -> str:
    """host:port/database of a libpq URL, without user or password."""
    try:
        parts = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        return "(an unreadable URL)"
    return (f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/"
            f"{parts.get('dbname') or ''}")


def postgres_unreachable(database_url: str, *, timeout_s: float) -> tuple[str, str | None]:
    """(address, why no connection opened within timeout_s, or None when one did)."""
    address = postgres_address(database_url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(database_url, connect_timeout=max(1, min(5, int(timeout_s)))):
                return address, None
        except psycopg.Error as exc:
            problem = " ".join(str(exc).split()) or type(exc).__name__
        if time.monotonic() + _RETRY_S > deadline:
            return address, f"{problem} (tried for {timeout_s:.0f}s)"
        time.sleep(_RETRY_S)
