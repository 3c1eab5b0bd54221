"""How a Kafka client of the project authenticates and verifies the broker: one typed model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, FilePath, SecretStr, model_validator

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaClientSecurity(BaseModel):
    """SASL and TLS options; a settings class mixes it in and its env prefix names the variables.

    `ConsumerSettings` reads them as SKILLSYNC_CONSUMER_*, the nightly side as
    SKILLSYNC_NIGHTLY_*, the partners' kit as SKILLSYNC_PARTNER_*.
    """

    # A refused value (a password among them) never appears in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> KafkaClientSecurity:
        if self.security_protocol.startswith("SASL") and not (
                self.sasl_mechanism and self.sasl_username and self.sasl_password):
            prefix = str(self.model_config.get("env_prefix", "")).upper()
            names = [f"{prefix}{name.upper()}"
                     for name in ("sasl_mechanism", "sasl_username", "sasl_password")]
            raise ValueError(f"{self.security_protocol} needs {names[0]}, {names[1]} and "
                             f"{names[2]}")
        return self

    def kafka_security(self) -> dict[str, Any]:
        """kafka-python client options for the configured security protocol."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None  # guaranteed by _sasl_is_complete
            # kafka-python takes the "plain" username and password for SCRAM as well.
            options.update(sasl_mechanism=self.sasl_mechanism,
                           sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password.get_secret_value())
        if self.security_protocol.endswith("SSL"):
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, name)
                if path is not None:
                    options[name] = str(path)
            if self.ssl_password is not None:
                options["ssl_password"] = self.ssl_password.get_secret_value()
        return options
