"""A participant rebuilt from the store instead of restored from its snapshot is counted by reason, and a
snapshot behind the offset its stream resumed at is one (streams/app.py, ``_verify_snapshots``): the
counter, not only an ERROR line, is what SandboxwatchStateRebuilt alerts on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandboxwatch.alerts.metrics import SNAPSHOT_REBUILD_REASONS, Metrics
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.app import StreamWorker
from sandboxwatch.streams.engine_snapshots import Manifest
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.partitioning import home_partition
from sandboxwatch.streams.worker_settings import WorkerSettings
from tests.helpers import DA_NANG

REBUILDS = "sandboxwatch_snapshot_rebuilds_total"


def test_every_rebuild_reason_is_exported_at_0_before_the_first() -> None:
    sample = Metrics().registry.get_sample_value
    assert {reason: sample(REBUILDS, {"reason": reason}) for reason in SNAPSHOT_REBUILD_REASONS} == {
        "behind_commit": 0.0,
        "incomplete": 0.0,
        "no_snapshot": 0.0,
        "licence_changed": 0.0,
    }


@pytest.mark.parametrize(("resumed_at", "rebuilt"), [(26, 0), (20, 0), (28, 1)])
def test_a_snapshot_behind_the_resumed_offset_is_rebuilt_and_counted(
    store: Store, tmp_path: Path, resumed_at: int, rebuilt: int
) -> None:
    licence = load_licence(DA_NANG)
    participant = licence.participant
    partition = home_partition(participant, 4)
    settings = WorkerSettings(kafka="127.0.0.1:9", store_url="chdb://unused", licences=(DA_NANG,), data_dir=tmp_path)

    async def scenario() -> Metrics:
        worker = StreamWorker(settings, Monitor([licence], store, Metrics()))
        try:
            worker._unverified[participant] = Manifest(participant, 3, 1, "-", "-", {partition: 25})
            engine = worker.monitor.engine(participant)
            worker._verify_snapshots({partition: resumed_at})
            assert participant not in worker._unverified
            assert (worker.monitor.engines[participant] is engine) == (not rebuilt)
            return worker.monitor.metrics
        finally:
            worker.close()

    sample = asyncio.run(scenario()).registry.get_sample_value
    assert sample(REBUILDS, {"reason": "behind_commit"}) == rebuilt
    assert sample(REBUILDS, {"reason": "no_snapshot"}) == 0
    restores = sample("sandboxwatch_state_restores_total", {"participant": participant, "source": "rebuilt"})
    assert (restores or 0.0) == rebuilt
