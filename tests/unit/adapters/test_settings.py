"""One settings model: sections from the environment over an env file, one name per setting."""

from __future__ import annotations

import os

import pytest

from adapters.settings import IngestSettings, KafkaSettings, Settings
from schemas.errors import ConfigurationError

SECRET = "s3cret-Pa55"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SKILLSYNC_", "KAFKA_BOOTSTRAP")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_map_to_the_kafka_client_options(mechanism):
    settings = KafkaSettings(bootstrap_servers="k:9092", security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism=mechanism, sasl_username="ingest",
                             sasl_password=SECRET)

    assert settings.kafka_security() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "ingest", "sasl_plain_password": SECRET}


def test_tls_settings_map_to_the_kafka_client_options(tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN-----\n")
    settings = KafkaSettings(bootstrap_servers="k:9092", security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username="ingest",
                             sasl_password=SECRET, ssl_cafile=ca, ssl_certfile=cert,
                             ssl_keyfile=key, ssl_password="keypass", ssl_check_hostname=False)

    assert settings.kafka_security() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ingest", "sasl_plain_password": SECRET,
        "ssl_check_hostname": False, "ssl_cafile": str(ca), "ssl_certfile": str(cert),
        "ssl_keyfile": str(key), "ssl_password": "keypass"}


def test_plaintext_adds_no_security_options():
    assert KafkaSettings(bootstrap_servers="k:9092").kafka_security() == {
        "security_protocol": "PLAINTEXT"}


def test_secrets_never_show_in_the_settings_repr(monkeypatch):
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL", f"postgresql://u:{SECRET}@db/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("SKILLSYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SKILLSYNC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("SKILLSYNC_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("SKILLSYNC_KAFKA_SASL_PASSWORD", SECRET)
    settings = Settings.load()

    for section in (settings.kafka, settings.database):
        assert SECRET not in repr(section) and SECRET not in str(section)


def test_incomplete_sasl_settings_stop_with_the_variables_to_set(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("SKILLSYNC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SKILLSYNC_KAFKA_SASL_USERNAME", "ingest")

    with pytest.raises(ConfigurationError, match="SKILLSYNC_KAFKA_SASL_PASSWORD"):
        Settings.load().check("kafka")


def test_a_missing_setting_is_named_by_its_variable():
    with pytest.raises(ConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS"):
        Settings.load().check("kafka")
    with pytest.raises(ConfigurationError, match="SKILLSYNC_REPORT_DIR"):
        Settings.load().check("nightly")


def test_a_process_reads_only_the_sections_it_uses(monkeypatch):
    # A consumer needs no report folder; the nightly side's settings are never read.
    monkeypatch.setenv("SKILLSYNC_CONSUMER_BATCH_SIZE", "300")

    assert Settings.load().check("ingest").ingest.batch_size == 300


def test_an_env_file_supplies_settings_and_the_environment_overrides_it(tmp_path, monkeypatch):
    config = tmp_path / "consumer.env"
    config.write_text("KAFKA_BOOTSTRAP_SERVERS=kafka-1:9092,kafka-2:9092\n"
                      "SKILLSYNC_CONSUMER_BATCH_SIZE=750\n"
                      "SKILLSYNC_KAFKA_SASL_PASSWORD=from-file\n")
    monkeypatch.setenv("SKILLSYNC_CONSUMER_BATCH_SIZE", "900")

    settings = Settings.load(config)

    assert settings.kafka.servers == ["kafka-1:9092", "kafka-2:9092"]
    assert settings.ingest.batch_size == 900
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "from-file"


def test_the_env_file_variable_names_the_file_when_no_path_is_given(tmp_path, monkeypatch):
    config = tmp_path / "consumer.env"
    config.write_text("SKILLSYNC_CONSUMER_GROUP=from-file\n")
    monkeypatch.setenv("SKILLSYNC_ENV_FILE", str(config))

    assert Settings.load().ingest.group_id == "from-file"


def test_a_missing_env_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="SKILLSYNC_ENV_FILE"):
        Settings.load(tmp_path / "absent.env")


def test_invalid_values_are_reported_by_the_variable_that_sets_them(tmp_path):
    config = tmp_path / "consumer.env"
    config.write_text("SKILLSYNC_CONSUMER_BATCH_SIZE=0\nKAFKA_BOOTSTRAP_SERVERS=nohost\n"
                      f"SKILLSYNC_KAFKA_SASL_PASSWORD={SECRET}\n"
                      "SKILLSYNC_KAFKA_SECURITY_PROTOCOL=TLS\n")
    settings = Settings.load(config)

    with pytest.raises(ConfigurationError) as ingest:
        settings.check("ingest")
    with pytest.raises(ConfigurationError) as kafka:
        settings.check("kafka")

    assert "SKILLSYNC_CONSUMER_BATCH_SIZE" in str(ingest.value)
    message = str(kafka.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "SKILLSYNC_KAFKA_SECURITY_PROTOCOL" in message
    assert SECRET not in message


def test_the_database_url_is_taken_in_its_sqlalchemy_form_too(monkeypatch):
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL", "postgresql+psycopg://u:pw@db.internal:5432/s")

    database = Settings.load().database

    assert database.libpq == "postgresql://u:pw@db.internal:5432/s"
    assert database.sqlalchemy == "postgresql+psycopg://u:pw@db.internal:5432/s"


def test_sections_given_are_used_as_they_are():
    ingest = IngestSettings(group_id="given")

    assert Settings(ingest=ingest).ingest is ingest
