"""The events' columnar store path (store.records.event_columns, Backend.insert_columns): what a stored
event reads back as, exactly, on the embedded store; the server's copy is in
tests/integration/test_event_columns_server.py. Edge rows: an event time before the epoch and one past what a
DateTime column holds (both clamped, the exact instant kept in ts_text), a lone surrogate escape (stored as
"?"), an event without an account."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sandboxwatch.rules_engine.event_reader import parse_json_line
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.records import EVENT_COLUMNS, EventRecord, event_columns

P = "alphatrue-basal-pay"
LINES = [
    f'{{"event_id":"e1","type":"deposit","participant":"{P}","ts":"2025-11-10T13:03:41.523948+07:00",'
    '"account":"acc-1","asset":"VND","amount":"100","site":"DN-NN","rail":"bank"}',
    f'{{"event_id":"e2","type":"deposit","participant":"{P}","ts":"1970-01-01T05:00:00+07:00",'
    '"account":"acc-2","asset":"VND","amount":"1","site":"DN-NN","rail":"bank","note":"\\ud800"}',
    f'{{"event_id":"e3","type":"price","participant":"{P}","ts":"2199-12-31T23:59:59Z",'
    '"base":"USDT","quote":"VND","price":"26000","source":"binance"}',
]
RECORDED = datetime(2026, 12, 1, 17, 0, 5, tzinfo=UTC)
# (participant, event_id, type, ts as stored, ts_text, account, source, recorded as stored)
EXPECTED = [
    (P, "e1", "deposit", 1762754621, "2025-11-10T13:03:41.523948+07:00", "acc-1", "t/0/7:1", 1796144405),
    (P, "e2", "deposit", 0, "1970-01-01T05:00:00+07:00", "acc-?", "t/0/7:2", 1796144405),
    (P, "e3", "price", 4294967295, "2199-12-31T23:59:59+00:00", "", "t/0/7:3", 1796144405),
]


def records() -> list[EventRecord]:
    out = []
    for number, line in enumerate(LINES, start=1):
        event = parse_json_line(line, "t/0", 7)
        assert not isinstance(event, EventError), event
        if number == 2:
            # The parser refuses a surrogate in a field it reads; the store must not rely on that.
            event = replace(event, account="acc-\ud800")  # type: ignore[call-arg]
        out.append(EventRecord(event, line, f"t/0/7:{number}"))
    return out


def stored(store: Store) -> list[tuple[Any, ...]]:
    return store.backend.rows(
        "SELECT participant, event_id, type, toUInt32(ts), ts_text, account, source, toUInt32(recorded), body "
        f"FROM {store.db}.events ORDER BY event_id"
    )


def test_event_columns_hold_the_rows_values_with_seconds_for_datetimes() -> None:
    columns = event_columns(records(), RECORDED)
    assert len(columns) == len(EVENT_COLUMNS)
    rows = list(zip(*columns, strict=True))
    assert [(*row[:6], row[7], row[8]) for row in rows] == EXPECTED
    assert [row[6] for row in rows] == LINES  # the text as it arrived: the escape is text, not a surrogate
    assert event_columns([], RECORDED) == [[] for _ in EVENT_COLUMNS]


def assert_reads_back_exactly_what_was_written(store: Store) -> None:
    """On either backend (the server's copy: tests/integration/test_event_columns_server.py)."""
    start = int(time.time())
    written = store.write_events(records(), check=False)
    end = int(time.time())
    assert [r.event.event_id for r in written] == ["e1", "e2", "e3"]
    got = stored(store)
    assert [tuple(row[:7]) for row in got] == [row[:7] for row in EXPECTED]
    assert all(start <= row[7] <= end for row in got), [row[7] for row in got]  # recorded: when it was stored
    assert [row[8] for row in got] == LINES
    # Idempotent through the existence check, as a replayed batch after a restart is written.
    assert store.write_events(records()) == []
    assert store.raw_count("events") == 3


def test_the_embedded_store_reads_back_exactly_what_was_written(store: Store) -> None:
    assert_reads_back_exactly_what_was_written(store)


def test_the_row_path_the_bench_measures_against_stores_the_same(store: Store) -> None:
    """bench/monitor_bench.py's 'before' (Store.write_events_as_rows) must store what the columnar path does,
    or its ratio compares two different jobs."""
    assert [r.event.event_id for r in store.write_events_as_rows(records(), check=False)] == ["e1", "e2", "e3"]
    got = stored(store)
    assert [tuple(row[:7]) for row in got] == [row[:7] for row in EXPECTED]
    assert [row[8] for row in got] == LINES
    assert store.write_events_as_rows(records()) == []
    assert store.raw_count("events") == 3


def test_a_batch_in_range_takes_the_seconds_as_they_are() -> None:
    """``event_columns`` clamps value by value only in a batch holding a time a DateTime cannot: a batch all
    in range gives the same seconds without it."""
    columns = event_columns(records()[:1], RECORDED)
    assert [(*row[:6], row[7], row[8]) for row in zip(*columns, strict=True)] == EXPECTED[:1]
