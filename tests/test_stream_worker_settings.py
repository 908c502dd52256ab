"""The worker's faust app asks the broker for the fetch wait it was configured with."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.app import StreamWorker
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.worker import parser, settings_from
from sandboxwatch.streams.worker_settings import WorkerSettings
from tests.helpers import DA_NANG


def aiokafka_fetch_wait_ms(settings: WorkerSettings, store: Store) -> int:
    async def build() -> int:
        worker = StreamWorker(settings, Monitor([load_licence(DA_NANG)], store, Metrics()))
        try:
            thread = worker.app.consumer._new_consumer_thread()  # type: ignore[attr-defined]
            consumer = thread._create_worker_consumer(worker.app.transport)
            return int(consumer._fetch_max_wait_ms)
        finally:
            worker.close()

    return asyncio.run(build())


def test_fetch_wait_reaches_the_aiokafka_consumer(store: Store, tmp_path: Path) -> None:
    base = dict(kafka="127.0.0.1:9", store_url="chdb://unused", licences=(DA_NANG,), data_dir=tmp_path)
    assert aiokafka_fetch_wait_ms(WorkerSettings(**base, fetch_max_wait=0.1), store) == 100  # type: ignore[arg-type]
    # Unset, it is faust's own default.
    assert aiokafka_fetch_wait_ms(WorkerSettings(**base), store) == 1500  # type: ignore[arg-type]


def test_run_takes_the_fetch_wait_from_the_command_line() -> None:
    args = parser().parse_args(
        ["--kafka", "k:9092", "--clickhouse", "chdb://x", "--licence", str(DA_NANG), "--fetch-max-wait", "0.25"]
    )
    assert settings_from(args).fetch_max_wait == 0.25


def test_a_worker_the_broker_stopped_answering_is_not_ready(store: Store, tmp_path: Path) -> None:
    """An idle worker whose broker is down keeps its agent and its group membership (nothing tells aiokafka
    otherwise until it next talks to the coordinator), so readiness also asks how long the lag reader's
    end-offsets reads have gone unanswered."""
    settings = WorkerSettings(kafka="127.0.0.1:9", store_url="chdb://unused", licences=(DA_NANG,), data_dir=tmp_path)

    async def readiness(silence: float) -> tuple[bool, str]:
        worker = StreamWorker(settings, Monitor([load_licence(DA_NANG)], store, Metrics()))
        try:
            worker.running = True
            worker.membership.joined()
            worker.broker_silence = lambda: silence
            return worker.readiness()
        finally:
            worker.close()

    assert asyncio.run(readiness(5.0)) == (True, "ready")
    assert asyncio.run(readiness(61.0)) == (False, "broker unreachable: no end offsets read for 61 s")
