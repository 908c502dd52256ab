"""The doubling guard (streams.monitor, Store.wait_for_running_inserts) against a real clickhouse-server.

A worker killed with kill -9 after sending an insert leaves that insert running on the server: the rows land
after the client is gone (seen on Debian's clickhouse-server 18.16 over the native protocol the store uses).
The worker that takes over asks the store which of the replayed events it holds; asked before that insert
lands, the store says none, and every event would be stored twice. The killed writer here is a process whose
INSERT ... SELECT copies the same events into the taker's database and takes ~8 s on the server (sleep in
the SELECT); it is killed while the server runs it, and the taker then processes the same messages."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.publish import line_messages, polls
from tests.helpers import DA_NANG
from tests.local_services import ClickHouseServer

LINES = 1500
# Three distinct sleeps (the server allows at most 3 s per call) over one block: ~8.4 s before the copied rows
# land, together. From a subquery: a filter on the table itself would be moved to PREWHERE and run repeatedly.
SLOW_COPY = (
    "INSERT INTO {db}.events SELECT * FROM (SELECT * FROM {source}.events) "
    "WHERE sleep(2.9) = 0 AND sleep(2.8) = 0 AND sleep(2.7) = 0"
)


@pytest.fixture(scope="module")
def messages() -> list[InboundMessage]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=20, seed=12))
    lines = [line.rstrip("\n") for line in scenario_lines(scenario)][:LINES]
    out: list[InboundMessage] = []
    for poll in polls(lines):
        for key, value in line_messages(poll):
            out.append(InboundMessage("events", 0, len(out), key, value))
    return out


def _name() -> str:
    return "k" + uuid.uuid4().hex[:10]


def _running_inserts(store: Store) -> int:
    rows = store.backend.rows(f"SELECT count() FROM system.processes WHERE query LIKE 'INSERT INTO {store.db}.%'")
    return int(rows[0][0])


def _until_no_insert_runs(store: Store) -> None:
    deadline = time.monotonic() + 30
    while _running_inserts(store) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _running_inserts(store) == 0


@pytest.fixture
def killed_writer(clickhouse: ClickHouseServer, messages: list[InboundMessage]) -> Iterator[tuple[Store, int]]:
    """The taker's store, with the killed predecessor's insert of the same events still running on the server;
    and how many distinct events that is."""
    source = Store.open(clickhouse.url(_name()))
    predecessor = Monitor([load_licence(DA_NANG)], source)
    predecessor.process_batch(messages)
    predecessor.flush()
    events = source.count("events")
    # One part, so the slow SELECT reads one block and sleeps once: the copied rows land together at its end.
    source.backend.command(f"OPTIMIZE TABLE {source.db}.events FINAL")
    assert events > 1000
    store = Store.open(clickhouse.url(_name()))
    sql = SLOW_COPY.format(db=store.db, source=source.db)
    code = f"from clickhouse_driver import Client; Client('127.0.0.1', port={clickhouse.port}).execute({sql!r})"
    writer = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while _running_inserts(store) == 0:
        assert writer.poll() is None and time.monotonic() < deadline, "the slow insert never ran"
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert _running_inserts(store) == 1, "the killed client's insert runs on"
    assert store.raw_count("events") == 0, "and has not landed yet"
    yield store, events
    _until_no_insert_runs(store)
    source.close()
    store.close()


def test_a_taker_waits_for_a_killed_writers_insert_and_stores_each_event_once(
    killed_writer: tuple[Store, int], messages: list[InboundMessage]
) -> None:
    store, events = killed_writer
    taker = Monitor([load_licence(DA_NANG)], store)
    started = time.monotonic()
    outcome = taker.process_batch(messages)
    taker.flush()
    waited = time.monotonic() - started
    _until_no_insert_runs(store)
    assert outcome.lines == LINES
    assert store.count("events") == events
    assert store.raw_count("events") == events, "an event was stored twice"
    assert waited > 3, "the taker waited for the running insert"


def test_without_the_wait_the_same_takeover_stores_every_event_twice(
    killed_writer: tuple[Store, int], messages: list[InboundMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the guard prevents, shown on the same scenario: the first test cannot pass by luck of timing."""
    store, events = killed_writer
    monkeypatch.setattr(store, "wait_for_running_inserts", lambda timeout: True)
    taker = Monitor([load_licence(DA_NANG)], store)
    taker.process_batch(messages)
    taker.flush()
    _until_no_insert_runs(store)
    assert store.count("events") == events
    assert store.raw_count("events") == 2 * events, "both the killed insert and the taker's landed"
