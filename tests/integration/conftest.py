"""Real services for the integration tests: a ClickHouse server and two Kafka-protocol brokers.

On CI (``CI=true``) a service that cannot start fails the tests; on a developer machine without the
binaries the tests are skipped with the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.local_services import (
    AnvilNode,
    ClickHouseServer,
    LocalService,
    NoidaBroker,
    ServiceError,
    TansuBroker,
)

BROKERS: dict[str, type[LocalService]] = {"tansu": TansuBroker, "noida": NoidaBroker}


def _start(service: LocalService) -> LocalService:
    try:
        return service.start()
    except ServiceError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[ClickHouseServer]:
    server = _start(ClickHouseServer())
    assert isinstance(server, ClickHouseServer)
    yield server
    server.stop()


@pytest.fixture(scope="session", params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> Iterator[LocalService]:
    service = _start(BROKERS[request.param]())
    yield service
    service.stop()


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    node = _start(AnvilNode())
    assert isinstance(node, AnvilNode)
    yield node
    node.stop()
