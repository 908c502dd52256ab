"""Kafka TLS and SASL settings, read from the environment so that no secret sits in a command line,
a compose file or a manifest. Unset means plaintext (local brokers, tests).

SANDBOXWATCH_KAFKA_SECURITY_PROTOCOL   PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
SANDBOXWATCH_KAFKA_SASL_MECHANISM      PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
SANDBOXWATCH_KAFKA_USERNAME / _PASSWORD
SANDBOXWATCH_KAFKA_CA_FILE             CA bundle for the brokers' certificates
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @classmethod
    def from_env(cls) -> KafkaSecurity:
        env = os.environ.get
        return cls(
            protocol=env("SANDBOXWATCH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            mechanism=env("SANDBOXWATCH_KAFKA_SASL_MECHANISM", "PLAIN").upper(),
            username=env("SANDBOXWATCH_KAFKA_USERNAME"),
            password=env("SANDBOXWATCH_KAFKA_PASSWORD"),
            ca_file=env("SANDBOXWATCH_KAFKA_CA_FILE"),
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in {"SSL", "SASL_SSL"}

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_file) if self.uses_tls else None

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (admin, producer)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)  # fmt: skip
        return options

    def faust_credentials(self) -> Any:
        """faust's ``broker_credentials``, or None for plaintext."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.username, password=self.password, mechanism=self.mechanism, ssl_context=self.ssl_context()
            )
        if self.uses_tls:
            return self.ssl_context()
        return None
