"""Kafka TLS/SASL settings come from the environment and reach both Kafka client libraries."""

from __future__ import annotations

import ssl

import faust
import pytest

from sandboxwatch.streams.kafka_security import KafkaSecurity


def test_plaintext_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROTOCOL", "SASL_MECHANISM", "USERNAME", "PASSWORD", "CA_FILE"):
        monkeypatch.delenv(f"SANDBOXWATCH_KAFKA_{'SECURITY_' if name == 'PROTOCOL' else ''}{name}", raising=False)
    security = KafkaSecurity.from_env()
    assert security.kafka_python() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


def test_sasl_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOXWATCH_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("SANDBOXWATCH_KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("SANDBOXWATCH_KAFKA_USERNAME", "monitor")
    monkeypatch.setenv("SANDBOXWATCH_KAFKA_PASSWORD", "s3cret")
    security = KafkaSecurity.from_env()
    options = security.kafka_python()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "monitor" and options["sasl_plain_password"] == "s3cret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "monitor" and credentials.ssl_context is not None
