"""Where the local services live and how they are reached: one typed settings object."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class LocalServices(BaseSettings):
    """Ports and folders of the embedded Kafka, PostgreSQL and Airflow.

    Reading the environment is the only thing construction does; nothing starts until asked.
    """

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_", extra="ignore",
                                      populate_by_name=True)

    state_dir: Path = Field(default=REPO_ROOT / ".local")
    # Jars are large and rarely change, so they live outside the work tree and survive `make clean`.
    jar_cache_dir: Path = Field(default=Path.home() / ".cache" / "skillsync" / "kafka-jars")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap_mb: int = Field(default=512, le=512)
    kafka_partitions: int = 3
    # Off: one PLAINTEXT listener on kafka_port, no authorizer (tests and the demo).
    # On: SCRAM on kafka_port, SCRAM over TLS on kafka_tls_port, mutual TLS for the broker
    # and the operator on kafka_internal_port, ACLs only (see docs/security.md).
    kafka_security: bool = False
    kafka_tls_port: int = 19094
    kafka_internal_port: int = 19095
    # With security on, an unauthenticated listener exists only if this names its port.
    kafka_plaintext_port: int | None = None
    pg_port: int = 15432
    airflow_port: int = 18080
    portal_port: int = 18300
    # The intended state of the nightly_sync DAG: on for a deployment that should run nights.
    # Off locally by default: its catch-up would start a run for every day since start_date.
    nightly_sync_active: bool = False
    # Set, they point the project at an existing cluster and server instead of local ones.
    external_kafka: str | None = Field(default=None, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    external_database_url: str | None = Field(default=None,
                                              validation_alias="SKILLSYNC_DATABASE_URL")

    @cached_property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @cached_property
    def pg_dir(self) -> Path:
        return self.state_dir / "postgres"

    @cached_property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @cached_property
    def kafka_secrets_dir(self) -> Path:
        return self.state_dir / "secrets" / "kafka"

    @cached_property
    def portal_dir(self) -> Path:
        return self.state_dir / "portal"

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def database_url(self, database: str = "skillsync") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.pg_port}/{database}"

    @property
    def bootstrap(self) -> str:
        """The broker the project's commands use: an existing cluster's, else the local one."""
        return self.external_kafka or self.kafka_bootstrap

    @property
    def project_database_url(self) -> str:
        return self.external_database_url or self.database_url()

    @cached_property
    def pseudonym_key_file(self) -> Path:
        return self.state_dir / "secrets" / "pseudonym.keys"

    def project_environment(self) -> dict[str, str]:
        """The settings (adapters.settings) every command of the project runs with locally."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SKILLSYNC_DATABASE_URL": self.project_database_url,
            "SKILLSYNC_PSEUDONYM_KEY_FILE": str(self.pseudonym_key_file),
            "SKILLSYNC_REPORT_DIR": str(self.state_dir / "reports"),
            "SKILLSYNC_GX_DIR": str(self.state_dir / "gx"),
        }
