"""The ingestion service's settings: environment and an optional env file, secrets typed."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.kafka.client_security import KafkaClientSecurity
from schemas.topics import EVENTS_TOPIC_PATTERN

_REPO = Path(__file__).resolve().parent.parent
ENV_PREFIX = "SKILLSYNC_CONSUMER_"
# Names the file of settings when `--config` is not given; the environment still wins over it.
ENV_FILE_VARIABLE = "SKILLSYNC_CONSUMER_ENV_FILE"


class ConfigurationError(ValueError):
    """A setting is unusable: the message names it; the service stops instead of retrying."""


class ConsumerSettings(KafkaClientSecurity, BaseSettings):
    """Everything `python -m consumers run` needs; an invalid value stops the service at start."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore",
                                      populate_by_name=True)

    bootstrap_servers: str = Field(default="127.0.0.1:19092",
                                   validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:15432/skillsync"),
        validation_alias="SKILLSYNC_DATABASE_URL",
    )
    pseudonym_key_file: Path = Field(default=_REPO / ".local" / "secrets" / "pseudonym.keys",
                                     validation_alias="SKILLSYNC_PSEUDONYM_KEY_FILE")
    # None: the registry shipped in infra/partners.toml.
    partners_registry_file: Path | None = Field(default=None,
                                                validation_alias="SKILLSYNC_PARTNERS_REGISTRY")
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
    # One HTTP port for /metrics, /livez and /readyz (consumers/health.py).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_addr: str = "127.0.0.1"
    # The watchdog (consumers/watchdog.py): how long a Kafka call may take, or records may
    # wait unread on owned partitions, before the member counts as wedged and exits; and how
    # often it asks the group coordinator whether this member is still listed.
    stall_timeout_s: float = Field(default=120.0, ge=5)
    membership_check_s: float = Field(default=10.0, gt=0)
    # How long `run` and `status` try to reach Kafka and PostgreSQL at start before giving up.
    startup_timeout_s: float = Field(default=15.0, gt=0)
    # security_protocol, sasl_* and ssl_*: KafkaClientSecurity, read as SKILLSYNC_CONSUMER_*.

    @classmethod
    def load(cls, config_file: Path | None = None) -> ConsumerSettings:
        """Settings from the environment over the env file (`--config`, else $ENV_FILE_VARIABLE).

        ConfigurationError, naming the setting, for anything invalid or a missing file.
        """
        if config_file is None and os.environ.get(ENV_FILE_VARIABLE):
            config_file = Path(os.environ[ENV_FILE_VARIABLE])
        if config_file is not None and not config_file.is_file():
            raise ConfigurationError(f"{ENV_FILE_VARIABLE} / --config: no file at {config_file}")
        try:
            return cls(_env_file=config_file)
        except ValidationError as exc:
            raise ConfigurationError(describe(exc)) from None

    @field_validator("database_url")
    @classmethod
    def _libpq_form(cls, value: SecretStr) -> SecretStr:
        # The nightly side shares the variable in SQLAlchemy form; psycopg wants plain libpq.
        scheme, sep, rest = value.get_secret_value().partition("://")
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


def variable_of(field_name: str) -> str:
    """The environment variable (and env-file key) that sets a field."""
    alias = ConsumerSettings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field_name.upper()}"


def describe(exc: ValidationError) -> str:
    """One line per invalid setting, named as the operator sets it; secret values never shown."""
    known = {variable_of(name) for name in ConsumerSettings.model_fields}
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = str(error["loc"][0]) if error["loc"] else ""
        if where in ConsumerSettings.model_fields:
            where = variable_of(where)
        elif where not in known:
            where = "settings"
        lines.append(f"{where}: {error['msg']}")
    return "\n".join(lines)
