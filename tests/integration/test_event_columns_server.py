"""The events' columnar store path on a ClickHouse server (clickhouse-driver, ``columnar=True``, DateTime
columns as epoch seconds): the same rows read back as on the embedded store (tests/test_event_columns.py)."""

from __future__ import annotations

import time
import uuid

from sandboxwatch.store.clickhouse_store import Store
from tests.local_services import ClickHouseServer
from tests.test_event_columns import EXPECTED, LINES, records, stored


def test_the_server_reads_back_exactly_what_was_written(clickhouse: ClickHouseServer) -> None:
    store = Store.open(clickhouse.url("t" + uuid.uuid4().hex[:10]))
    try:
        start = int(time.time())
        written = store.write_events(records(), check=False)
        end = int(time.time())
        assert [r.event.event_id for r in written] == ["e1", "e2", "e3"]
        got = stored(store)
        assert [tuple(row[:7]) for row in got] == [row[:7] for row in EXPECTED]
        assert all(start <= row[7] <= end for row in got), [row[7] for row in got]
        assert [row[8] for row in got] == LINES
        assert store.write_events(records()) == []
        assert store.raw_count("events") == 3
    finally:
        store.close()
