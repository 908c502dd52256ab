"""The worker's side of forked snapshots (streams/app.py), before any broker is involved: a snapshot begun
before a rebalance is dropped, and one whose child dies is counted and made up in place next; either way
nothing is written, its participants stay dirty with the offsets they had and its messages are held again
(ahead of those taken since), so the next snapshot covers them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams import snapshot_fork
from sandboxwatch.streams.app import StreamWorker
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.worker_settings import WorkerSettings
from tests.helpers import DA_NANG

VENUE = "alphatrue-basal-pay"


@dataclass(frozen=True)
class Held:
    partition: int
    offset: int


@pytest.fixture
def worker(store: Store, tmp_path: Path) -> StreamWorker:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=60, seed=5))
    lines = [line.rstrip("\n") for line in scenario_lines(scenario)][:1000]
    settings = WorkerSettings(kafka="127.0.0.1:9", store_url="unused", licences=(DA_NANG,), data_dir=tmp_path)
    worker = StreamWorker(settings, Monitor([load_licence(DA_NANG)], store, Metrics()))
    worker.monitor.process_batch(
        [
            InboundMessage("events", 0, offset, json.loads(line)["participant"].encode(), line.encode())
            for offset, line in enumerate(lines)
        ]
    )
    worker._home[VENUE] = 0
    worker._owned_partitions = lambda: {0}  # type: ignore[method-assign]  # no consumer without a broker
    worker._dirty = {VENUE: {0: 999}}
    worker._held = [Held(0, offset) for offset in range(1000)]
    return worker


def test_a_rebalance_drops_a_snapshot_begun_before_it(worker: StreamWorker) -> None:
    async def run() -> None:
        await worker._begin_snapshot(fatal=True)
        assert worker._forking() and worker._dirty == {} and worker._held == []
        worker._held.append(Held(0, 1000))  # taken meanwhile
        worker._dirty[VENUE] = {0: 1000}
        worker._on_assigned(None, set(), signal=None)  # a rebalance before the child is done
        assert worker._forked is not None
        await worker._forked

    asyncio.run(run())
    assert worker.table.data == {} and worker._manifests == {}, "nothing of a dropped snapshot is written"
    assert worker._dirty == {VENUE: {0: 1000}}
    assert worker._held == [Held(0, offset) for offset in range(1001)]
    assert worker.failed is None and not worker._in_place_next


def test_a_child_that_dies_is_counted_and_the_next_snapshot_is_made_in_place(
    worker: StreamWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(engines: list[Engine], read: int, write: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(snapshot_fork, "_child", killed)

    async def run() -> None:
        await worker._begin_snapshot(fatal=True)
        assert worker._forked is not None
        await worker._forked

    asyncio.run(run())
    assert worker.monitor.metrics.registry.get_sample_value("sandboxwatch_snapshot_child_failures_total") == 1
    assert worker.table.data == {} and worker._manifests == {}
    assert worker._dirty == {VENUE: {0: 999}}
    assert worker._held == [Held(0, offset) for offset in range(1000)]
    assert worker.failed is None and worker._in_place_next
    assert worker._last_snapshot == 0.0, "the in-place snapshot is due at once"
