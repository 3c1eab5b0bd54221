"""The ingestion service in tests: in-process services, real processes, own PostgreSQL, reads."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr

from adapters.kafka import KafkaClientSecurity
from adapters.settings import DatabaseSettings, IngestSettings, KafkaSettings, Settings
from consumers.service import IngestService
from infra import postgres as local_postgres
from infra.local import REPO_ROOT, LocalServices
from schemas.partners import REGISTRY_PATH, PartnerRegistry
from schemas.pseudonym import Pseudonymiser
from tests.support.events import registry_with
from tests.support.seed import Seeded, derived_seed


def topic_pattern(partners: Mapping[str, str]) -> str:
    """A subscription pattern matching only these partners' topics (role -> partner id)."""
    return "^skills\\.events\\.(" + "|".join(sorted(partners.values())) + ")$"


def consumer_settings(kafka_bootstrap: str, database_url: str,
                      kafka: KafkaClientSecurity | None = None, **ingest: Any) -> Settings:
    """A consumer's settings for a test: these services, these ingest settings."""
    return Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap,
                                        **(kafka.model_dump() if kafka else {})),
                    database=DatabaseSettings(url=SecretStr(database_url)),
                    ingest=IngestSettings(**ingest))


def service(kafka_bootstrap: str, database_url: str, partners: Mapping[str, str],
            pseudonymiser: Pseudonymiser, *, registry: PartnerRegistry | None = None,
            **overrides: Any) -> IngestService:
    """An in-process service reading only these partners' topics, tuned for quick tests."""
    settings = consumer_settings(
        kafka_bootstrap, database_url,
        group_id=overrides.pop("group_id", f"g-{'-'.join(sorted(partners.values()))}"),
        topic_pattern=topic_pattern(partners), batch_size=overrides.pop("batch_size", 500),
        linger_ms=50, metadata_max_age_ms=1000, backoff_initial_s=0.2, backoff_max_s=1.0,
        **overrides)
    registry = registry or registry_with({pid: role for role, pid in partners.items()})
    return IngestService(settings, registry=registry, pseudonymiser=pseudonymiser)


def landed(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT partner_id, event_id FROM staging.events").fetchall()


def landed_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM staging.events").fetchone()
    return int(row[0]) if row else 0


def rejected(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT reason_code, field_path FROM staging.rejected ORDER BY kafka_offset").fetchall()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll until condition holds; fail the test naming what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(tmp_path: Path, *, kafka_bootstrap: str, database_url: str,
                partners: Mapping[str, str], **settings: str) -> dict[str, str]:
    """Environment for `python -m consumers run` on these partners' topics.

    Writes the partners registry and a pseudonym key file for the process to read at start
    (a role may carry a "#name" suffix, so that one role can name several partners);
    `settings` are extra SKILLSYNC_CONSUMER_* values by lower-case suffix (batch_size="100").
    """
    registry = tmp_path / "partners.toml"
    if not registry.exists():
        registry.write_text(REGISTRY_PATH.read_text(encoding="utf-8") + "".join(
            f'\n[[partner]]\npartner_id = "{pid}"\nname = "test partner {pid}"\n'
            f'role = "{role.split("#")[0]}"\ndistrict_code = "330106"\n'
            for role, pid in partners.items()), encoding="utf-8")
    keys = tmp_path / "pseudonym.keys"
    if not keys.exists():
        key = Seeded(derived_seed("pseudonym key", *sorted(partners.values()))).key()
        keys.write_text(f"t1:{key.hex()}\n")
        keys.chmod(0o600)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SKILLSYNC_", "KAFKA_BOOTSTRAP"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SKILLSYNC_DATABASE_URL": database_url,
        "SKILLSYNC_PARTNERS_REGISTRY": str(registry),
        "SKILLSYNC_PSEUDONYM_KEY_FILE": str(keys),
        "SKILLSYNC_CONSUMER_GROUP": f"g-{'-'.join(sorted(partners.values()))}",
        "SKILLSYNC_TOPIC_PATTERN": topic_pattern(partners),
        "SKILLSYNC_CONSUMER_LINGER_MS": "50",
        "SKILLSYNC_CONSUMER_METADATA_MAX_AGE_MS": "1000",
        "SKILLSYNC_CONSUMER_BACKOFF_INITIAL_S": "0.2",
        "SKILLSYNC_CONSUMER_BACKOFF_MAX_S": "1.0",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update({f"SKILLSYNC_CONSUMER_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class ConsumerProcess:
    """`python -m consumers ...` running in its own process, JSON logs captured to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, env: Mapping[str, str], log_path: Path, *args: str) -> ConsumerProcess:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "consumers", *(args or ("run",))],
                                    env=dict(env), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=log)
        return cls(proc, log_path)

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def logs(self) -> list[dict[str, Any]]:
        """Every log line as parsed JSON (a line that is not JSON fails the caller's test)."""
        return [json.loads(line) for line in self.log_lines() if line.strip()]

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs() if entry.get("msg") == message]

    def wait_logged(self, message: str, *, timeout: float) -> dict[str, Any]:
        wait_for(lambda: bool(self.logged(message)) or self.proc.poll() is not None,
                 timeout=timeout, what=f"log line {message!r}")
        found = self.logged(message)
        assert found, f"process exited ({self.proc.returncode}) before logging {message!r}"
        return found[-1]

    def terminate(self, *, timeout: float) -> int:
        """SIGTERM, then the exit status; fails the test if it outlives the timeout."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"consumer still running {timeout:.0f}s after SIGTERM") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@contextlib.contextmanager
def running(env: Mapping[str, str], log_path: Path, *args: str) -> Iterator[ConsumerProcess]:
    """A consumer process that is killed on the way out, whatever the test did."""
    process = ConsumerProcess.start(env, log_path, *args)
    try:
        yield process
    finally:
        process.kill()


@contextlib.contextmanager
def own_postgres() -> Iterator[tuple[LocalServices, str]]:
    """A PostgreSQL server of the test's own, migrated, that it may stop and start at will.

    Lives under .local/test (the server's system user cannot enter pytest's private tmp dirs).
    """
    from warehouse.migrate import upgrade

    state = REPO_ROOT / ".local" / "test" / "own" / uuid.uuid4().hex[:10]
    cfg = LocalServices(state_dir=state, pg_port=free_port())
    local_postgres.start(cfg)
    url = cfg.database_url("skillsync").replace("+psycopg", "")
    try:
        upgrade(url)
        yield cfg, url
    finally:
        local_postgres.stop(cfg)
        shutil.rmtree(state, ignore_errors=True)
