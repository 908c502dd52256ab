"""Snapshots pickled in a forked child (streams/snapshot_fork.py): each blob is the engine as it was at the
fork, byte for byte what pickling it in place gives, whatever the monitor does to the engine meanwhile; it
restores to an engine that goes on to the same findings; a child that dies, is cut short or is cancelled
is an error (or nothing), never taken for a snapshot, and leaves no process behind."""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
import time

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams import snapshot_fork
from sandboxwatch.streams.engine_snapshots import Manifest, dump, licence_digest, plan, restore
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.snapshot_fork import ForkedDumps, SnapshotChildError
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


def gone(pid: int) -> bool:
    """Whether ``pid`` is no child of ours any more (reaped: no zombie left behind), and the collector
    was given back the objects frozen for the child's time."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return gc.get_freeze_count() == 0
    return False


def test_the_child_s_blobs_are_the_engines_at_the_fork_and_restore_to_the_same_findings(
    store: Store, day: list[str]
) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:3000]))
    engine = monitor.engines[VENUE]
    in_place = dump(engine)
    events_at_fork = engine.stats.events
    assert events_at_fork > 0
    dumps = ForkedDumps([engine, engine])
    assert gc.get_freeze_count() > 0
    rest = messages(day[3000:], 3000)
    original = monitor.process_batch(rest)  # the monitor goes on while the child pickles
    assert engine.stats.events > events_at_fork
    blobs = dumps.result()
    assert blobs == [in_place, in_place]
    assert gone(dumps.pid)
    manifest, writes = plan(None, VENUE, None, {0: 2999}, blob=blobs[0], licence=licence_digest(engine))
    table = {k: v for k, v in writes if v is not None}
    assert Manifest.from_bytes(VENUE, table[f"{VENUE}#manifest".encode()]) == manifest
    restored = restore(manifest, table.get)
    assert restored is not None and restored.stats.events == events_at_fork
    again = Monitor([load_licence(DA_NANG)], store)
    again.engines[VENUE] = restored
    resumed = again.process_batch(rest)
    assert original.findings, "the rest of the day holds injected violations"
    assert resumed.events == original.events > 0
    assert [f.finding_id for f in resumed.findings] == [f.finding_id for f in original.findings]


def test_no_engine_gives_no_blob() -> None:
    dumps = ForkedDumps([])
    assert dumps.result() == []
    assert gone(dumps.pid)


def test_a_child_killed_is_an_error_and_reaped(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:2000]))
    dumps = ForkedDumps([monitor.engines[VENUE]])
    os.kill(dumps.pid, signal.SIGKILL)
    with pytest.raises(SnapshotChildError, match=r"ended with status -9 after \d+ bytes, not 1 whole snapshots$"):
        dumps.result()
    assert gone(dumps.pid)


def test_a_child_that_writes_a_cut_short_blob_then_exits_0_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame promising more bytes than the pipe carried is never taken, whatever the exit code says."""

    def child(engines: object, read: int, write: int) -> None:
        os.close(read)
        os.write(write, snapshot_fork._FRAME.pack(100) + b"x" * 10)
        os._exit(0)

    monkeypatch.setattr(snapshot_fork, "_child", child)
    dumps = ForkedDumps([])
    dumps.count = 1
    with pytest.raises(SnapshotChildError, match=r"ended with status 0 after 18 bytes, not 1 whole snapshots$"):
        dumps.result()


def test_a_stuck_child_is_killed_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def child(engines: object, read: int, write: int) -> None:
        time.sleep(60)
        os._exit(0)

    monkeypatch.setattr(snapshot_fork, "_child", child)
    dumps = ForkedDumps([])
    started = time.monotonic()
    with pytest.raises(SnapshotChildError, match=r"did not finish in 0 s$"):
        dumps.result(timeout=0.3)
    assert time.monotonic() - started < 10
    assert gone(dumps.pid)


def test_cancel_before_reading_kills_and_reaps_the_child(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:2000]))
    dumps = ForkedDumps([monitor.engines[VENUE]])
    dumps.cancel()
    assert gone(dumps.pid)
    dumps.cancel()  # twice is harmless
    with pytest.raises(SnapshotChildError, match=r"was cancelled$"):
        dumps.result()


def test_cancel_while_a_reader_waits_ends_the_read_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader (a thread of the worker's) owns the pipe while it reads: cancel kills the child and the
    reader sees the pipe end, instead of its descriptor being closed under it."""

    def child(engines: object, read: int, write: int) -> None:
        time.sleep(60)
        os._exit(0)

    monkeypatch.setattr(snapshot_fork, "_child", child)
    dumps = ForkedDumps([])
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            dumps.result()
        except BaseException as exc:  # the test reads it
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while not dumps._reading and time.monotonic() < deadline:
        time.sleep(0.01)
    dumps.cancel()
    reader.join(10)
    assert not reader.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], SnapshotChildError)
    assert str(outcome[0]).endswith("ended with status -9")
    assert gone(dumps.pid)


def test_the_child_holds_no_socket_of_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child still pickling when its worker is killed (kill -9) must not keep the worker's metrics port:
    the restarted worker has to bind it (seen before the fix: 'Address already in use', exit 1)."""
    import socket

    def slow_dump(engine: object) -> bytes:
        time.sleep(3)
        return b""

    monkeypatch.setattr(snapshot_fork, "dump", slow_dump)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]
    dumps = ForkedDumps([object()])  # type: ignore[list-item]
    try:
        time.sleep(0.5)
        listening.close()  # as the parent's death closes its copy
        assert os.waitpid(dumps.pid, os.WNOHANG) == (0, 0), "the child should still be pickling"
        again = socket.socket()
        again.bind(("127.0.0.1", port))  # EADDRINUSE while the child holds the listening socket
        again.close()
    finally:
        dumps.cancel()
    assert gone(dumps.pid)
