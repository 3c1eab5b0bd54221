"""The consumer's settings: env file and environment, client security options, clear errors."""

from __future__ import annotations

import os

import pytest

from consumers.settings import ConfigurationError, ConsumerSettings

SECRET = "s3cret-Pa55"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SKILLSYNC_", "KAFKA_BOOTSTRAP")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_map_to_the_kafka_client_options(mechanism):
    settings = ConsumerSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                                sasl_username="ingest", sasl_password=SECRET)

    assert settings.kafka_security() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "ingest", "sasl_plain_password": SECRET}


def test_tls_settings_map_to_the_kafka_client_options(tmp_path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN-----\n")
    settings = ConsumerSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                                sasl_username="ingest", sasl_password=SECRET, ssl_cafile=ca,
                                ssl_certfile=cert, ssl_keyfile=key, ssl_password="keypass",
                                ssl_check_hostname=False)

    assert settings.kafka_security() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ingest", "sasl_plain_password": SECRET,
        "ssl_check_hostname": False, "ssl_cafile": str(ca), "ssl_certfile": str(cert),
        "ssl_keyfile": str(key), "ssl_password": "keypass"}


def test_plaintext_adds_no_security_options():
    assert ConsumerSettings().kafka_security() == {"security_protocol": "PLAINTEXT"}


def test_secrets_never_show_in_the_settings_repr():
    settings = ConsumerSettings(database_url=f"postgresql://u:{SECRET}@db/x",
                                security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                                sasl_username="ingest", sasl_password=SECRET)

    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_incomplete_sasl_settings_stop_with_the_variables_to_set(monkeypatch):
    monkeypatch.setenv("SKILLSYNC_CONSUMER_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("SKILLSYNC_CONSUMER_SASL_USERNAME", "ingest")

    with pytest.raises(ConfigurationError, match="SKILLSYNC_CONSUMER_SASL_PASSWORD"):
        ConsumerSettings.load()


def test_an_env_file_supplies_settings_and_the_environment_overrides_it(tmp_path, monkeypatch):
    config = tmp_path / "consumer.env"
    config.write_text("KAFKA_BOOTSTRAP_SERVERS=kafka-1:9092,kafka-2:9092\n"
                      "SKILLSYNC_CONSUMER_BATCH_SIZE=750\n"
                      "SKILLSYNC_CONSUMER_SASL_PASSWORD=from-file\n")
    monkeypatch.setenv("SKILLSYNC_CONSUMER_BATCH_SIZE", "900")

    settings = ConsumerSettings.load(config)

    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.batch_size == 900
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "from-file"


def test_the_env_file_variable_names_the_file_when_no_path_is_given(tmp_path, monkeypatch):
    config = tmp_path / "consumer.env"
    config.write_text("SKILLSYNC_CONSUMER_GROUP=from-file\n")
    monkeypatch.setenv("SKILLSYNC_CONSUMER_ENV_FILE", str(config))

    assert ConsumerSettings.load().group_id == "from-file"


def test_a_missing_env_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="SKILLSYNC_CONSUMER_ENV_FILE"):
        ConsumerSettings.load(tmp_path / "absent.env")


def test_invalid_values_are_reported_by_the_variable_that_sets_them(tmp_path):
    config = tmp_path / "consumer.env"
    config.write_text("SKILLSYNC_CONSUMER_BATCH_SIZE=0\nKAFKA_BOOTSTRAP_SERVERS=nohost\n"
                      f"SKILLSYNC_CONSUMER_SASL_PASSWORD={SECRET}\n"
                      "SKILLSYNC_CONSUMER_SECURITY_PROTOCOL=TLS\n")

    with pytest.raises(ConfigurationError) as error:
        ConsumerSettings.load(config)

    message = str(error.value)
    assert "SKILLSYNC_CONSUMER_BATCH_SIZE" in message
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "SKILLSYNC_CONSUMER_SECURITY_PROTOCOL" in message
    assert SECRET not in message


def test_the_shared_database_url_is_accepted_in_its_sqlalchemy_form(monkeypatch):
    # The nightly side and the consumer read the same variable; the nightly side needs a driver.
    monkeypatch.setenv("SKILLSYNC_DATABASE_URL", "postgresql+psycopg://u:pw@db.internal:5432/s")

    settings = ConsumerSettings()

    assert settings.database_url.get_secret_value() == "postgresql://u:pw@db.internal:5432/s"
