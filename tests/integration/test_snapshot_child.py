"""Snapshots pickled by a forked child, in a real worker on a real broker and ClickHouse server: children
killed as the OOM killer would are logged, counted and followed by a snapshot pickled in place; the
snapshots the worker confirmed (forked ones last) are whole and cover exactly the offsets it committed, so
a worker that takes over after it dies without a last snapshot restores them and replays the rest: no event
or finding lost or doubled, and the self-check's findings exactly."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.embedded import EMBEDDED_FETCH_WAIT
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.streams import snapshot_fork
from sandboxwatch.streams.publish import publish_lines
from sandboxwatch.streams.snapshot_fork import ForkedDumps
from sandboxwatch.streams.worker import build
from sandboxwatch.streams.worker_settings import WorkerSettings
from tests.helpers import DA_NANG
from tests.integration.pipeline import Pipeline, expected_findings
from tests.integration.test_stream_pipeline import unique_events
from tests.local_services import ClickHouseServer, LocalService, free_port

KILLED = 2
SLICES = 8


@pytest.mark.parametrize("broker", ["tansu"], indirect=True)
def test_killed_snapshot_children_are_made_up_in_place_and_a_takeover_loses_and_doubles_nothing(
    broker: LocalService,
    clickhouse: ClickHouseServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = tmp_path / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=300, seed=12), events, tmp_path / "truth.json")
    lines = events.read_text().splitlines()
    expected = expected_findings(events)
    pipeline = Pipeline(broker.address, clickhouse.url("unused"), tmp_path)

    # The first KILLED children die as the OOM killer would end them; the parent counts every fork.
    forks: list[int] = []
    fork = ForkedDumps.__init__
    child = snapshot_fork._child

    def counted(self: ForkedDumps, engines: list[Engine]) -> None:
        forks.append(len(engines))
        fork(self, engines)

    def killed_first(engines: list[Engine], read: int, write: int) -> None:
        if len(forks) <= KILLED:  # the parent's count as at this fork
            os.kill(os.getpid(), signal.SIGKILL)
        child(engines, read, write)

    monkeypatch.setattr(ForkedDumps, "__init__", counted)
    monkeypatch.setattr(snapshot_fork, "_child", killed_first)

    settings = WorkerSettings(
        kafka=broker.address,
        store_url=pipeline.store_url,
        licences=(DA_NANG,),
        topics=pipeline.topics,
        batch_size=500,
        snapshot_seconds=0.5,
        idle_snapshot_seconds=0.5,
        fetch_max_wait=EMBEDDED_FETCH_WAIT,
        metrics_port=free_port(),
        web_port=free_port(),
        data_dir=tmp_path / "faust-in-process",
    )
    worker = build(settings, Metrics())
    metrics = worker.monitor.metrics
    store = worker.monitor.store
    size = len(lines) // SLICES + 1
    last = len(lines) - size

    async def publish_and_wait(part: list[str], until: int) -> None:
        await asyncio.to_thread(publish_lines, broker.address, settings.topics.events, part)
        deadline = time.monotonic() + 120
        while worker.processed < until:
            assert worker.failed is None and time.monotonic() < deadline, "the worker stopped taking"
            await asyncio.sleep(0.02)

    async def run() -> None:
        await worker.app.start()
        try:
            for start in range(0, last, size):
                await publish_and_wait(lines[start : min(start + size, last)], min(start + size, last))
                await asyncio.sleep(1.5)  # snapshots of this slice: forked, or in place after a failure
            deadline = time.monotonic() + 60
            while worker._dirty or worker._held or worker._forking():
                assert time.monotonic() < deadline, "the last snapshot was not confirmed"
                await asyncio.sleep(0.05)
            assert len(forks) > KILLED + 1, f"only {len(forks)} forked snapshots"
            # One more slice, then the end without an orderly last snapshot (as after a kill -9): the next
            # owner replays it from the committed offsets.
            await publish_and_wait(lines[last:], len(lines))
        finally:
            await worker.app.stop()  # no worker.stop(): no last snapshot
            worker.close()

    with caplog.at_level(logging.ERROR, logger="sandboxwatch.streams.app"):
        asyncio.run(run())
    assert worker.failed is None
    assert metrics.registry.get_sample_value("sandboxwatch_snapshot_child_failures_total") == KILLED
    failures = [r for r in caplog.records if "the child failed; pickling in place" in r.getMessage()]
    assert len(failures) == KILLED
    assert all("ended with status -9" in str(r.exc_info[1]) for r in failures if r.exc_info)
    assert store.count("events") == unique_events(lines)
    store.close()

    # A worker process takes the partitions over from the snapshots in the changelog and the committed
    # offsets: it judges exactly the last slice again (the commit covers what the snapshot covers), the
    # events the engine has seen before counted as re-deliveries, and stores nothing twice.
    seen = {json.loads(line)["event_id"] for line in lines[:last]}
    replayed = {json.loads(line)["event_id"] for line in lines[last:]}
    pipeline.start_worker()
    try:
        check = pipeline.store()

        def total(name: str) -> float:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in pipeline.metrics_text().splitlines()
                if line.startswith(f"sandboxwatch_{name}_total{{")
            )

        pipeline.wait_until(lambda: total("events") >= len(replayed - seen), "the last slice judged again")
        time.sleep(3)  # anything replayed from before the snapshot would show by now
        assert total("events") == len(replayed - seen)
        assert total("duplicate_events") == len(lines) - last - len(replayed - seen)
        text = pipeline.metrics_text()
        assert 'sandboxwatch_state_restores_total{participant="alphatrue-basal-pay",source="snapshot"} 1.0' in text
        assert 'source="rebuilt"} 1.0' not in text, "a snapshot was found behind the committed offset"
        assert set(check.finding_ids()) == expected
        assert check.raw_count("findings") == len(expected), "a finding was inserted twice"
        assert check.raw_count("events") == unique_events(lines), "an event was stored twice"
    finally:
        pipeline.stop_worker()
