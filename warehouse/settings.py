"""Settings of the nightly side (Airflow tasks and warehouse commands): one typed object."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.kafka.client_security import KafkaClientSecurity
from schemas.topics import EVENTS_TOPIC_PATTERN

LOCAL_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:15432/skillsync"
LOCAL_KAFKA = "127.0.0.1:19092"
LOCAL_REPORTS = Path(__file__).resolve().parent.parent / ".local" / "reports"
LOCAL_GX = Path(__file__).resolve().parent.parent / ".local" / "gx"


class NightlySettings(KafkaClientSecurity, BaseSettings):
    """Where the staging and warehouse database and the broker are, and the night's rules.

    The broker's security options (KafkaClientSecurity) are read as SKILLSYNC_NIGHTLY_*, e.g.
    SKILLSYNC_NIGHTLY_SECURITY_PROTOCOL; every other setting names its variable below.
    """

    model_config = SettingsConfigDict(env_prefix="SKILLSYNC_NIGHTLY_", extra="ignore",
                                      populate_by_name=True)

    database_url: SecretStr = Field(
        default=SecretStr(LOCAL_DATABASE_URL), validation_alias="SKILLSYNC_DATABASE_URL"
    )
    kafka_bootstrap_servers: str = Field(default=LOCAL_KAFKA,
                                         validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    consumer_group: str = Field(default="skillsync-ingest",
                                validation_alias="SKILLSYNC_CONSUMER_GROUP")
    topic_pattern: str = Field(default=EVENTS_TOPIC_PATTERN,
                               validation_alias="SKILLSYNC_TOPIC_PATTERN")
    # How many days back a late event may reopen; older ones count on the day they arrived.
    lookback_days: int = Field(default=3, ge=0, le=31, validation_alias="SKILLSYNC_LOOKBACK_DAYS")
    # Two partners' enrollments of one person this close together are one training.
    duplicate_window_days: int = Field(default=3, ge=0, le=90,
                                       validation_alias="SKILLSYNC_DUPLICATE_WINDOW_DAYS")
    # JSON object {expectation name: "blocking" | "warning"} overriding the suite's defaults.
    expectation_severity: dict[str, str] = Field(
        default_factory=dict, validation_alias="SKILLSYNC_EXPECTATION_SEVERITY")
    # Failure alerts are always logged; with a URL they are also POSTed there as JSON.
    alert_webhook_url: SecretStr | None = Field(default=None,
                                                validation_alias="SKILLSYNC_ALERT_WEBHOOK")
    # The nightly report goes to <report_dir>/<business day>/; its trends cover this many days.
    report_dir: Path = Field(default=LOCAL_REPORTS, validation_alias="SKILLSYNC_REPORT_DIR")
    report_trend_days: int = Field(default=14, ge=1, le=366,
                                   validation_alias="SKILLSYNC_REPORT_TREND_DAYS")
    # Great Expectations' validation results and Data Docs.
    gx_dir: Path = Field(default=LOCAL_GX, validation_alias="SKILLSYNC_GX_DIR")
