"""The Kafka section of finmon's settings: where the broker is and how to reach it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class KafkaSettings(BaseModel):
    """Connection to any Kafka-protocol cluster; nothing here is specific to one broker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]. Unset: `finmon demo` starts an embedded broker on loopback."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = Field(None, description="CA bundle used to verify the brokers (SSL, SASL_SSL).")
    ssl_certfile: str | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: str | None = Field(None, description="Client private key for mutual TLS.")
