"""Fixtures shared by the unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from store.backends import EmbeddedBackend
from store.clickhouse_store import Store


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBackend]:
    """chdb allows one data directory per process, so the session shares it and tests use own databases."""
    pytest.importorskip("chdb")
    embedded = EmbeddedBackend(str(tmp_path_factory.mktemp("chdb")))
    yield embedded
    embedded.close()


@pytest.fixture
def store(backend: EmbeddedBackend) -> Store:
    backend.database = "t" + uuid.uuid4().hex[:12]
    s = Store(backend)
    s.migrate()
    return s
