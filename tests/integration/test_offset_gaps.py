"""A hole in the stream is refilled, not skipped (streams/offset_gaps.py): a worker runs in this process against a
real broker and ClickHouse, and its stream buffer loses three messages once, the way faust's clear on resume used
to lose them. The worker sees the next offset past the one it expected, seeks the partition back, and every
event still reaches the store, exactly once, with the gap counted as recovered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.inbound_buffer import ByteBoundedQueue
from sandboxwatch.streams.topics import Topics, ensure_topics
from tests.helpers import DA_NANG
from tests.integration.test_snapshot_commit import Broker, _until, _worker
from tests.local_services import ClickHouseServer, LocalService

EVENTS = 40
LOST = {10, 11, 12}


@pytest.fixture
def setup(broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path) -> Iterator[tuple[Broker, str]]:
    name = "g" + uuid.uuid4().hex[:10]
    topics = Topics(f"{name}.events", f"{name}.findings", f"{name}.deadletter", 1, f"{name}-monitor")
    ensure_topics(broker.address, topics)
    yield Broker(broker.address, topics), clickhouse.url(name)


def _lose_once(monkeypatch: pytest.MonkeyPatch, topic: str) -> set[int]:
    """The stream buffer drops the events topic's messages at LOST the first time each comes in."""
    lost: set[int] = set()
    put = ByteBoundedQueue._put

    def _put(self: ByteBoundedQueue, item: Any) -> None:
        message = getattr(item, "message", None)
        if message is not None and message.topic == topic and message.offset in LOST - lost:
            lost.add(message.offset)
            return
        put(self, item)

    monkeypatch.setattr(ByteBoundedQueue, "_put", _put)
    return lost


def test_messages_lost_from_the_stream_buffer_are_read_again_and_stored(
    setup: tuple[Broker, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, store_url = setup
    path = tmp_path / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=20, seed=5), path, None)
    lines = path.read_text().splitlines()[:EVENTS]
    ids = {json.loads(line)["event_id"] for line in lines}
    assert len(ids) == EVENTS
    lost = _lose_once(monkeypatch, broker.topics.events)
    reader = Store.open(store_url)

    async def run() -> Any:
        worker = _worker(broker, store_url, tmp_path / "faust")
        await worker.app.start()
        try:
            await asyncio.to_thread(broker.publish, lines)
            await _until(lambda: broker.committed() == EVENTS, f"offset {EVENTS} committed")
        finally:
            await worker.stop()
            worker.close()
        return worker.monitor.metrics.registry

    registry = asyncio.run(run())
    assert lost == LOST, "the injected loss happened"
    sample = registry.get_sample_value
    assert sample("sandboxwatch_offset_gaps_total", {"partition": "0", "reason": "recovered"}) == 1
    assert sample("sandboxwatch_offset_gaps_total", {"partition": "0", "reason": "skipped_by_broker"}) == 0
    assert reader.raw_count("events") == EVENTS, "every event stored, none twice"
    stored = {record.event.event_id for record in reader.stored_events(load_licence(DA_NANG).participant)}
    assert stored == ids
