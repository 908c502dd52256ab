"""The events' columnar store path on a ClickHouse server (clickhouse-driver, ``columnar=True``, DateTime
columns as epoch seconds): the same rows read back as on the embedded store (tests/test_event_columns.py)."""

from __future__ import annotations

import uuid

from sandboxwatch.store.clickhouse_store import Store
from tests.local_services import ClickHouseServer
from tests.test_event_columns import assert_reads_back_exactly_what_was_written


def test_the_server_reads_back_exactly_what_was_written(clickhouse: ClickHouseServer) -> None:
    store = Store.open(clickhouse.url("t" + uuid.uuid4().hex[:10]))
    try:
        assert_reads_back_exactly_what_was_written(store)
    finally:
        store.close()
