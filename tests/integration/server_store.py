"""A database of its own on the session's ClickHouse server, with two participants' monitored days: shared by
the tests of the store commands (findings, audit, backtest, cases, report) as an operator runs them."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandboxwatch.store.clickhouse_store import Store
from tests.api_fixtures import Monitored, monitored_on_server
from tests.local_services import ClickHouseServer


def server_days(prefix: str) -> Any:
    """The module-scoped ``monitored`` fixture: (the URL the CLI is given, the monitored days) in a fresh
    database named from ``prefix``. Assign it at module level: ``monitored = server_days("h")``."""

    @pytest.fixture(scope="module", name="monitored")
    def monitored(clickhouse: ClickHouseServer) -> tuple[str, Monitored]:
        return monitored_on_server(clickhouse, prefix)

    return monitored


def settle_mutations(store: Store) -> None:
    """Mutations run in the background on 18.16 (no mutations_sync): wait until none is pending."""
    for _ in range(200):
        if not store.backend.rows(f"SELECT 1 FROM system.mutations WHERE database = '{store.db}' AND is_done = 0"):
            return
        time.sleep(0.05)
    raise AssertionError("mutations did not finish")
