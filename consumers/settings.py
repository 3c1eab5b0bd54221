"""The ingestion service's settings: environment (and an optional .env file), secrets typed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import EVENTS_TOPIC_PATTERN

_REPO = Path(__file__).resolve().parent.parent


class ConsumerSettings(BaseSettings):
    """Everything `python -m consumers run` needs; an invalid value stops the service at start."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_CONSUMER_", env_file=None,
                                      extra="ignore", populate_by_name=True)

    bootstrap_servers: str = Field(default="127.0.0.1:19092",
                                   validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:15432/skillsync"),
        validation_alias="SKILLSYNC_DATABASE_URL",
    )
    pseudonym_key_file: Path = Field(default=_REPO / ".local" / "secrets" / "pseudonym.keys",
                                     validation_alias="SKILLSYNC_PSEUDONYM_KEY_FILE")
    group_id: str = Field(default="skillsync-ingest", validation_alias="SKILLSYNC_CONSUMER_GROUP")
    topic_pattern: str = Field(default=EVENTS_TOPIC_PATTERN,
                               validation_alias="SKILLSYNC_TOPIC_PATTERN")
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    linger_ms: int = Field(default=200, ge=0, le=10_000)
    # How soon a partner topic created while running is noticed.
    metadata_max_age_ms: int = Field(default=5000, ge=500)
    max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    session_timeout_ms: int = Field(default=45_000, ge=1000)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    shutdown_grace_s: float = Field(default=30.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _libpq_form(cls, value: SecretStr) -> SecretStr:
        # The nightly side shares the variable in SQLAlchemy form; psycopg wants plain libpq.
        url = value.get_secret_value()
        scheme, sep, rest = url.partition("://")
        if sep and scheme.startswith("postgresql+"):
            return SecretStr(f"postgresql://{rest}")
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _bootstrap_has_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"'{server}' is not host:port")
        return value

    def kafka_security(self) -> dict[str, object]:
        """Client options for the configured security protocol (empty for plaintext)."""
        options: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            if not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
                raise ValueError("SASL needs SKILLSYNC_CONSUMER_SASL_MECHANISM, _SASL_USERNAME "
                                 "and _SASL_PASSWORD")
            options.update(sasl_mechanism=self.sasl_mechanism,
                           sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password.get_secret_value())
        if self.security_protocol.endswith("SSL") and self.ssl_cafile:
            options["ssl_cafile"] = str(self.ssl_cafile)
        return options
