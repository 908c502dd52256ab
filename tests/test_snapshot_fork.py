"""Snapshots pickled in a forked child (streams/snapshot_fork.py): the blob is the engine as it was at the
fork, byte for byte what pickling it in place gives, whatever the monitor does to the engine meanwhile;
it restores to an engine that goes on to the same findings; a child that dies is reported, never taken
for a snapshot."""

from __future__ import annotations

import json
import os
import signal

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.engine_snapshots import Manifest, dump, licence_digest, plan, restore
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.snapshot_fork import PendingDump, SnapshotChildError, start_dump
from tests.helpers import DA_NANG

VENUE = "alphatrue-basal-pay"


@pytest.fixture(scope="module")
def day() -> list[str]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=120, seed=4))
    return [line.rstrip("\n") for line in scenario_lines(scenario)]


def messages(lines: list[str], start: int = 0) -> list[InboundMessage]:
    return [
        InboundMessage("events", 0, offset, json.loads(line)["participant"].encode(), line.encode())
        for offset, line in enumerate(lines, start)
    ]


def test_the_child_s_blob_is_the_engine_at_the_fork_and_restores_to_the_same_findings(
    store: Store, day: list[str]
) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:3000]))
    engine = monitor.engines[VENUE]
    in_place = dump(engine)
    events_at_fork = engine.stats.events
    pending = start_dump(engine)
    assert pending.forked
    rest = messages(day[3000:], 3000)
    original = monitor.process_batch(rest)  # the monitor goes on while the child pickles
    assert engine.stats.events > events_at_fork
    blob = pending.result()
    assert blob == in_place
    manifest, writes = plan(None, VENUE, None, {0: 2999}, blob=blob, licence=licence_digest(engine))
    table = {k: v for k, v in writes if v is not None}
    assert Manifest.from_bytes(VENUE, table[f"{VENUE}#manifest".encode()]) == manifest
    restored = restore(manifest, table.get)
    assert restored is not None and restored.stats.events == events_at_fork
    again = Monitor([load_licence(DA_NANG)], store)
    again.engines[VENUE] = restored
    resumed = again.process_batch(rest)
    assert resumed.events == original.events > 0
    assert [f.finding_id for f in resumed.findings] == [f.finding_id for f in original.findings]
    assert original.findings, "the rest of the day holds injected violations"
    with pytest.raises(ChildProcessError):
        os.waitpid(pending._pid, os.WNOHANG)  # reaped: no zombie left behind


def test_a_child_that_dies_is_an_error_and_the_snapshot_can_be_made_in_place(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:2000]))
    engine = monitor.engines[VENUE]
    pending = start_dump(engine)
    os.kill(pending._pid, signal.SIGKILL)
    with pytest.raises(SnapshotChildError, match=r"ended with status -9$"):
        pending.result()
    assert pending.in_place() == dump(engine)


def test_a_cancelled_snapshot_leaves_no_child(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:2000]))
    pending = start_dump(monitor.engines[VENUE])
    pid = pending._pid
    pending.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    pending.cancel()  # twice is harmless


def test_without_fork_the_blob_is_made_in_place(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:500]))
    engine = monitor.engines[VENUE]
    pending = PendingDump(engine, forked=False)
    assert not pending.forked and pending.result() == dump(engine)
