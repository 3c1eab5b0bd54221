"""Secrets stay hidden wherever settings and keys are printed, logged or serialised."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from adapters.database import make_engine
from adapters.logs import JsonFormatter
from adapters.settings import DatabaseSettings, KafkaSettings, Settings
from schemas.errors import ConfigurationError
from schemas.pseudonym import Pseudonymiser, SecretBytes, load_key_file

DB_PASSWORD = "db-Pa55-canary-7f3e"
SASL_PASSWORD = "sasl-Pa55-canary-91ab"
SSL_PASSWORD = "ssl-Pa55-canary-c0de"
HMAC_KEY = bytes.fromhex("c4a7" * 16)


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing the service's JSON lines into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("skillsync.test.secrets")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)


def _everywhere(value: object, logger: logging.Logger, buffer: io.StringIO) -> str:
    """Every ordinary way a value ends up in text: repr, str, f-string, logs, extra fields."""
    logger.info("value %s %r", value, value, extra={"value": value})
    logger.info(f"value {value} {value!r}")
    return "\n".join([repr(value), str(value), f"{value}", buffer.getvalue()])


def test_settings_never_show_their_passwords(json_log) -> None:
    database = DatabaseSettings(
        url=SecretStr(f"postgresql://skillsync:{DB_PASSWORD}@db.example:5432/skillsync"))
    kafka = KafkaSettings(
        bootstrap_servers="k:9092", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        sasl_username="skillsync.pipeline", sasl_password=SecretStr(SASL_PASSWORD),
        ssl_password=SecretStr(SSL_PASSWORD))

    shown = "\n".join([_everywhere(section, *json_log) + section.model_dump_json()
                       + str(section.model_dump()) for section in (database, kafka)])

    for secret in (DB_PASSWORD, SASL_PASSWORD, SSL_PASSWORD):
        assert secret not in shown
    # The values are there for the clients that need them, only never displayed.
    assert kafka.kafka_security()["sasl_plain_password"] == SASL_PASSWORD


def test_an_invalid_configuration_is_reported_without_the_secrets_in_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "consumer.env"
    env_file.write_text(
        f"SKILLSYNC_DATABASE_URL=postgresql://u:{DB_PASSWORD}@h/db\n"
        "KAFKA_BOOTSTRAP_SERVERS=k:9092\n"
        "SKILLSYNC_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n"
        f"SKILLSYNC_KAFKA_SASL_PASSWORD={SASL_PASSWORD}\n"
        "SKILLSYNC_CONSUMER_BATCH_SIZE=0\n")
    for variable in ("SKILLSYNC_DATABASE_URL", "SKILLSYNC_KAFKA_SASL_USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    settings = Settings.load(env_file)

    for section in ("ingest", "kafka"):
        with pytest.raises(ConfigurationError) as caught:
            settings.check(section)
        assert DB_PASSWORD not in str(caught.value)
        assert SASL_PASSWORD not in str(caught.value)
    assert "SKILLSYNC_KAFKA_SASL_USERNAME" in str(caught.value)


def test_the_database_url_read_from_the_environment_is_hidden(
        json_log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL",
                       f"postgresql+psycopg://airflow:{DB_PASSWORD}@db.example/skillsync")
    settings = Settings.load().database

    shown = "\n".join([_everywhere(settings, *json_log), settings.model_dump_json()])

    assert DB_PASSWORD not in shown


def test_a_failed_database_connection_does_not_reveal_the_password(json_log) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    logger, buffer = json_log
    engine = make_engine(f"postgresql://skillsync:{DB_PASSWORD}@127.0.0.1:{closed_port}/x",
                         connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(OperationalError) as caught, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        logger.exception("database unavailable", exc_info=caught.value)
        shown = "\n".join([repr(engine), str(engine.url), str(caught.value), buffer.getvalue()])
    finally:
        engine.dispose()

    assert DB_PASSWORD not in shown


def test_the_hmac_key_never_shows_itself(json_log, tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.keys"
    key_file.write_text(f"k1:{HMAC_KEY.hex()}\n")
    loaded = load_key_file(key_file)
    direct = Pseudonymiser({"k1": SecretBytes(HMAC_KEY)}, active_key_id="k1")

    shown = "\n".join(_everywhere(value, *json_log)
                      for value in (SecretBytes(HMAC_KEY), loaded, direct))

    assert HMAC_KEY.hex() not in shown
    assert repr(HMAC_KEY) not in shown


def test_a_malformed_key_file_is_reported_without_its_key_material(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.keys"
    key_file.write_text(f"k1 {HMAC_KEY.hex()}\n")

    with pytest.raises(ConfigurationError) as caught:
        load_key_file(key_file)

    assert "line 1" in str(caught.value)
    assert HMAC_KEY.hex() not in str(caught.value)
