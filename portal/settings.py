"""The portal's settings: one typed object read from the environment, secrets as SecretStr."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import EVENTS_TOPIC_PATTERN

_REPO = Path(__file__).resolve().parent.parent
LOCAL_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:15432/skillsync"


class PortalSettings(BaseSettings):
    """Where the portal listens, which databases it reads, and how it guards sessions.

    Variables are SKILLSYNC_PORTAL_<NAME> unless a field names another (the database URL and
    the broker are the ones every other process of the project reads).
    """

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_PORTAL_", extra="ignore",
                                      populate_by_name=True, hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=18300, ge=0, le=65535)
    # The address people reach the portal at (the Airflow UI links to it).
    public_url: str | None = None
    database_url: SecretStr = Field(default=SecretStr(LOCAL_DATABASE_URL),
                                    validation_alias="SKILLSYNC_DATABASE_URL")
    # Airflow's metadata database, for the nightly runs and whether nightly_sync is paused.
    airflow_database_url: SecretStr | None = Field(
        default=None, validation_alias="AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
    # Where the operator pages link into Airflow's UI.
    airflow_url: str = "http://127.0.0.1:18080"
    # The intended state of nightly_sync, the same setting `make airflow` applies.
    nightly_sync_active: bool = Field(default=False,
                                      validation_alias="SKILLSYNC_NIGHTLY_SYNC_ACTIVE")
    data_docs_dir: Path = Field(default=_REPO / ".local" / "gx" / "data_docs",
                                validation_alias="SKILLSYNC_DATA_DOCS_DIR")
    # Consumer lag is read from the broker with the consumers' own settings; None: not shown.
    kafka_bootstrap_servers: str | None = Field(default=None,
                                                validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    # The consumers' group and topics (their own variables): lag is theirs to the broker's end.
    consumer_group: str = Field(default="skillsync-ingest",
                                validation_alias="SKILLSYNC_CONSUMER_GROUP")
    topic_pattern: str = Field(default=EVENTS_TOPIC_PATTERN,
                               validation_alias="SKILLSYNC_TOPIC_PATTERN")
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
