"""One typed settings model per process: sections read from the environment over an env file.

Each section is read when the process first uses it, so a process needs only the settings of
what it does; an unusable value raises ConfigurationError naming the variable to set (never a
secret's value). Every setting has one name, the same in every process; production has no
defaults for where services are, and `python -m infra env` prints the local ones.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.database import libpq_url
from adapters.kafka import KafkaClientSecurity
from schemas.errors import ConfigurationError
from schemas.partners import REGISTRY_PATH, PartnerRegistry, load_registry
from schemas.pseudonym import Pseudonymiser, load_key_file
from schemas.topics import EVENTS_TOPIC_PATTERN

# Names the env file when none is given; variables of the environment win over the file's.
ENV_FILE_VARIABLE = "SKILLSYNC_ENV_FILE"

S = TypeVar("S", bound=BaseSettings)


class KafkaSecuritySettings(KafkaClientSecurity, BaseSettings):
    """How this process signs in to the broker: SKILLSYNC_KAFKA_SECURITY_PROTOCOL,
    SKILLSYNC_KAFKA_SASL_USERNAME, ... (docs/security.md)."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_KAFKA_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)


class KafkaSettings(KafkaSecuritySettings):
    """The broker (KAFKA_BOOTSTRAP_SERVERS) and how this process signs in to it."""

    bootstrap_servers: str = Field(validation_alias="KAFKA_BOOTSTRAP_SERVERS")

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"'{server}' is not host:port")
        return value

    @property
    def servers(self) -> list[str]:
        return [server.strip() for server in self.bootstrap_servers.split(",")]


class DatabaseSettings(BaseSettings):
    """The staging and warehouse database: SKILLSYNC_DATABASE_URL (libpq or SQLAlchemy form)."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    url: SecretStr = Field(validation_alias="SKILLSYNC_DATABASE_URL")

    @property
    def libpq(self) -> str:
        """The URL as psycopg.connect() takes it."""
        return libpq_url(self.url.get_secret_value())

    @property
    def sqlalchemy(self) -> str:
        return self.url.get_secret_value()


class RegistrySettings(BaseSettings):
    """Who may publish what: SKILLSYNC_PARTNERS_REGISTRY, else the registry the contracts ship."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    file: Path = Field(default=REGISTRY_PATH,
                       validation_alias="SKILLSYNC_PARTNERS_REGISTRY")

    def load(self) -> PartnerRegistry:
        return load_registry(self.file)


class KeySettings(BaseSettings):
    """The pseudonymisation keys: SKILLSYNC_PSEUDONYM_KEY_FILE, "key_id:hexkey" lines."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    pseudonym_key_file: Path = Field(validation_alias="SKILLSYNC_PSEUDONYM_KEY_FILE")

    def load(self) -> Pseudonymiser:
        return load_key_file(self.pseudonym_key_file)


class IngestSettings(BaseSettings):
    """The ingestion group (SKILLSYNC_CONSUMER_GROUP, SKILLSYNC_TOPIC_PATTERN) and how its
    members consume (SKILLSYNC_CONSUMER_BATCH_SIZE, ...)."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_CONSUMER_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    group_id: str = Field(default="skillsync-ingest",
                          validation_alias="SKILLSYNC_CONSUMER_GROUP")
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


class NightlySettings(BaseSettings):
    """The night's rules and where its outputs go."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    # How many days back a late event may reopen; older ones count on the day they arrived.
    lookback_days: int = Field(default=3, ge=0, le=31,
                               validation_alias="SKILLSYNC_LOOKBACK_DAYS")
    # Two partners' enrollments of one person this close together are one training.
    duplicate_window_days: int = Field(default=3, ge=0, le=90,
                                       validation_alias="SKILLSYNC_DUPLICATE_WINDOW_DAYS")
    # JSON object {expectation name: "blocking" | "warning"} overriding the suite's defaults.
    expectation_severity: dict[str, str] = Field(
        default_factory=dict, validation_alias="SKILLSYNC_EXPECTATION_SEVERITY")
    # The nightly report goes to <report_dir>/<business day>/; its trends cover this many days.
    report_dir: Path = Field(validation_alias="SKILLSYNC_REPORT_DIR")
    report_trend_days: int = Field(default=14, ge=1, le=366,
                                   validation_alias="SKILLSYNC_REPORT_TREND_DAYS")
    # Great Expectations' validation results and Data Docs.
    gx_dir: Path = Field(validation_alias="SKILLSYNC_GX_DIR")


class AlertSettings(BaseSettings):
    """Where failure alerts go: always the log, and SKILLSYNC_ALERT_WEBHOOK (JSON POST) if set."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    webhook_url: SecretStr | None = Field(default=None, validation_alias="SKILLSYNC_ALERT_WEBHOOK")


class FeedSettings(BaseSettings):
    """The sync feed's relay (python -m warehouse.relay): how it batches, waits and retries, the
    subscribers' topics it creates, and how long relayed changes stay in the outbox
    (SKILLSYNC_FEED_<NAME>). The database and the broker are the shared sections'."""

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_FEED_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    batch_size: int = Field(default=5000, ge=1, le=100_000)
    # How long the relay waits for a load's notification before looking anyway.
    idle_wait_s: float = Field(default=5.0, gt=0)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    replication_factor: int = Field(default=1, ge=1)
    # Topic configs over the feeds' own (adapters.kafka.SYNC_TOPIC_CONFIG), as JSON.
    topic_config: dict[str, str] = Field(default_factory=dict)
    # Relayed changes stay in the outbox this long (for quality.verify --sync), then go.
    retain_days: int = Field(default=7, ge=0)
    # How long the nightly run's wait_for_feed looks, each poke, for the relay to catch up.
    wait_s: float = Field(default=20.0, gt=0)


class PortalSettings(BaseSettings):
    """Where the portal listens, what it links to, and how it guards sessions.

    Variables are SKILLSYNC_PORTAL_<NAME> unless a field names another. The database, the
    broker (for consumer lag) and the consumers' group are the shared sections'.
    """

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_PORTAL_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=18300, ge=0, le=65535)
    # The address people reach the portal at (the Airflow UI links to it).
    public_url: str | None = None
    # Airflow's metadata database, for the nightly runs and whether nightly_sync is paused.
    airflow_database_url: SecretStr | None = Field(
        default=None, validation_alias="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    # Where the operator pages link into Airflow's UI.
    airflow_url: str = "http://127.0.0.1:18080"
    # The intended state of nightly_sync, the same setting `make airflow` applies.
    nightly_sync_active: bool = Field(default=False,
                                      validation_alias="SKILLSYNC_NIGHTLY_SYNC_ACTIVE")
    # Great Expectations' Data Docs, served to operators; None: not served.
    data_docs_dir: Path | None = Field(default=None, validation_alias="SKILLSYNC_DATA_DOCS_DIR")
    lag_refresh_s: float = Field(default=30.0, gt=0)
    # Signs session cookies. Unset: a random key per process (sessions end at restart).
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    # TLS: with both files the portal serves HTTPS and its cookies are Secure.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    # Behind a TLS-terminating proxy: mark cookies Secure although this process speaks HTTP.
    cookie_secure: bool | None = None
    # Sign-in attempts: this many failures per account name or client in the window, then 429.
    login_failures_allowed: int = Field(default=5, ge=1)
    login_window_s: int = Field(default=300, ge=1)
    # Bearer token a Prometheus scraper presents at /metrics (operators' sessions also may).
    metrics_token: SecretStr | None = None
    # Rows a page lists; downloads are bounded separately.
    page_size: int = Field(default=100, ge=10, le=1000)
    download_limit: int = Field(default=200_000, ge=1)
    log_file: Path | None = None
    log_level: str = "INFO"
    workers: int = Field(default=1, ge=1, le=32)

    @model_validator(mode="after")
    def _tls_pair(self) -> PortalSettings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("SKILLSYNC_PORTAL_TLS_CERTFILE and SKILLSYNC_PORTAL_TLS_KEYFILE"
                             " go together")
        if self.workers > 1 and self.session_secret is None:
            # Each worker would sign cookies with a key of its own: sessions would come and go.
            raise ValueError("SKILLSYNC_PORTAL_WORKERS > 1 needs SKILLSYNC_PORTAL_SESSION_SECRET")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None

    @property
    def secure_cookies(self) -> bool:
        return self.tls if self.cookie_secure is None else self.cookie_secure

    @property
    def address(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


class Settings:
    """A process's settings: each section read on first use, then kept.

    Sections given to the constructor are used as they are (tests, embedding); the others are
    read from the environment over `env_file`.
    """

    def __init__(self, env_file: Path | None = None, **sections: BaseSettings) -> None:
        if env_file is not None and not env_file.is_file():
            raise ConfigurationError(f"{ENV_FILE_VARIABLE} / --config: no file at {env_file}")
        self._env_file = env_file
        self._given = sections

    @classmethod
    def load(cls, env_file: Path | None = None) -> Settings:
        """The settings of this process: `env_file`, else the file $SKILLSYNC_ENV_FILE names."""
        if env_file is None and os.environ.get(ENV_FILE_VARIABLE):
            env_file = Path(os.environ[ENV_FILE_VARIABLE])
        return cls(env_file)

    def _section(self, name: str, section: type[S]) -> S:
        given = self._given.get(name)
        if given is not None:
            if not isinstance(given, section):
                raise TypeError(f"section {name} must be a {section.__name__}")
            return given
        return read_section(section, self._env_file)

    @cached_property
    def kafka(self) -> KafkaSettings:
        return self._section("kafka", KafkaSettings)

    @cached_property
    def database(self) -> DatabaseSettings:
        return self._section("database", DatabaseSettings)

    @cached_property
    def registry(self) -> RegistrySettings:
        return self._section("registry", RegistrySettings)

    @cached_property
    def keys(self) -> KeySettings:
        return self._section("keys", KeySettings)

    @cached_property
    def ingest(self) -> IngestSettings:
        return self._section("ingest", IngestSettings)

    @cached_property
    def nightly(self) -> NightlySettings:
        return self._section("nightly", NightlySettings)

    @cached_property
    def alerts(self) -> AlertSettings:
        return self._section("alerts", AlertSettings)

    @cached_property
    def feed(self) -> FeedSettings:
        return self._section("feed", FeedSettings)

    @cached_property
    def portal(self) -> PortalSettings:
        return self._section("portal", PortalSettings)

    @property
    def kafka_if_set(self) -> KafkaSettings | None:
        """The broker's settings, or None where this process was given none (KAFKA_BOOTSTRAP_
        SERVERS unset): for what works without it."""
        try:
            return self.kafka
        except ConfigurationError as exc:
            # Only a broker left unnamed means "none"; any other bad setting is an error.
            if str(exc) == f"{variable_of(KafkaSettings, 'bootstrap_servers')}: Field required":
                return None
            raise

    def check(self, *names: str) -> Settings:
        """Read the named sections now, so that a process stops at start on a bad setting."""
        for name in names:
            getattr(self, name)
        return self


def read_section(section: type[S], env_file: Path | None = None, **values: Any) -> S:
    """A section from the environment over `env_file` (and `values`, e.g. command-line flags);
    ConfigurationError naming each unusable variable."""
    try:
        return section(_env_file=env_file, **values)
    except ValidationError as exc:
        raise ConfigurationError(describe(section, exc)) from None


def variable_of(section: type[BaseSettings], field_name: str) -> str:
    """The environment variable (and env-file key) that sets a field of a section."""
    alias = section.model_fields[field_name].validation_alias
    if isinstance(alias, str):
        return alias
    return f"{section.model_config.get('env_prefix', '')}{field_name}".upper()


def describe(section: type[BaseSettings], exc: ValidationError) -> str:
    """One line per unusable setting, named as the operator sets it; values never shown."""
    variables = {variable_of(section, name) for name in section.model_fields}
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        where = str(error["loc"][0]) if error["loc"] else ""
        if where in section.model_fields:
            where = variable_of(section, where)
        elif where not in variables:
            where = section.__name__
        lines.append(f"{where}: {error['msg']}")
    return "\n".join(lines)
