"""An offset is committed only after the broker confirmed the engine snapshot that covers it (streams/app.py).

A worker runs in this process against a real broker and ClickHouse; its changelog sends (the snapshot
chunks and manifest) are held back, then failed, the way a slow or failing broker would. The committed
offset is read from the broker with kafka-python, and the manifest from the changelog topic: while a
snapshot is unconfirmed the commit stays where the last confirmed snapshot left it, however far the
worker processed and stored; a refused snapshot commits nothing, not even at the orderly stop; and the
next worker resumes from the confirmed snapshot with no rebuild, storing nothing twice."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.app import StreamWorker
from sandboxwatch.streams.engine_snapshots import Manifest, manifest_key
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.topics import Topics, ensure_topics
from sandboxwatch.streams.worker_settings import WorkerSettings
from tests.helpers import DA_NANG
from tests.local_services import ClickHouseServer, LocalService

FIRST, SECOND = 40, 20


class ChangelogGate:
    """Stands between the worker's table and the broker for the changelog sends only: each send is held
    until ``release`` (then really sent, and confirmed by the broker) or ``fail`` (then it raises what
    aiokafka raises when the broker does not confirm in time)."""

    def __init__(self, table: Any) -> None:
        self._send: Callable[[int | None, Any, Any], Awaitable[Any]] = table.send_changelog
        table.send_changelog = self._held
        self._open = asyncio.Event()
        self._failing = False
        self.held = 0
        self.failed = 0

    def _held(self, partition: int | None, key: Any, value: Any) -> asyncio.Future[Any]:
        self.held += 1
        return asyncio.ensure_future(self._later(partition, key, value))

    async def _later(self, partition: int | None, key: Any, value: Any) -> Any:
        await self._open.wait()
        if self._failing:
            self.failed += 1
            raise KafkaTimeoutError("changelog send not confirmed (injected)")
        return await self._send(partition, key, value)

    def close(self) -> None:
        self._open.clear()
        self.held = 0

    def release(self) -> None:
        self._open.set()

    def fail(self) -> None:
        self._failing = True
        self._open.set()


class Broker:
    """What the broker holds, read with kafka-python (a client of its own, as an auditor would)."""

    def __init__(self, address: str, topics: Topics) -> None:
        self.address = address
        self.topics = topics

    def committed(self) -> int | None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.address, group_id=self.topics.app_id, enable_auto_commit=False)
        try:
            return consumer.committed(TopicPartition(self.topics.events, 0))  # type: ignore[no-any-return]
        finally:
            consumer.close(autocommit=False)

    def manifests(self, participant: str, settle: float = 2.0) -> list[Manifest]:
        """Every manifest the changelog holds for the participant, oldest first (read until quiet)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.address, enable_auto_commit=False)
        tp = TopicPartition(self.topics.changelog, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        key = manifest_key(participant)
        found: list[Manifest] = []
        quiet_since = time.monotonic()
        try:
            while time.monotonic() - quiet_since < settle:
                for records in consumer.poll(timeout_ms=300).values():
                    quiet_since = time.monotonic()
                    found += [Manifest.from_bytes(participant, r.value) for r in records if r.key == key]
        finally:
            consumer.close(autocommit=False)
        return found

    def publish(self, lines: list[str]) -> None:
        """One event per message, so offsets count events."""
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.address, acks="all")
        for line in lines:
            producer.send(self.topics.events, key=json.loads(line)["participant"].encode(), value=line.encode())
        producer.flush()
        producer.close()


@pytest.fixture
def events(tmp_path: Path) -> list[str]:
    path = tmp_path / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=20, seed=5), path, None)
    lines = path.read_text().splitlines()[: FIRST + SECOND]
    assert len({json.loads(line)["event_id"] for line in lines}) == FIRST + SECOND
    return lines


@pytest.fixture
def setup(broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path) -> Iterator[tuple[Broker, str]]:
    name = "t" + uuid.uuid4().hex[:10]
    topics = Topics(f"{name}.events", f"{name}.findings", f"{name}.deadletter", 1, f"{name}-monitor")
    ensure_topics(broker.address, topics)
    yield Broker(broker.address, topics), clickhouse.url(name)


def _worker(broker: Broker, store_url: str, data_dir: Path) -> StreamWorker:
    settings = WorkerSettings(
        kafka=broker.address,
        store_url=store_url,
        licences=(DA_NANG,),
        topics=broker.topics,
        data_dir=data_dir,
        idle_snapshot_seconds=0.5,
        fetch_max_wait=0.2,
    )
    return StreamWorker(settings, Monitor([load_licence(DA_NANG)], Store.open(store_url), Metrics()))


async def _until(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def test_offsets_are_committed_only_once_the_broker_confirmed_the_snapshot_covering_them(
    setup: tuple[Broker, str], events: list[str], tmp_path: Path
) -> None:
    broker, store_url = setup
    participant = load_licence(DA_NANG).participant
    reader = Store.open(store_url)

    async def first_worker() -> None:
        worker = _worker(broker, store_url, tmp_path / "faust-1")
        gate = ChangelogGate(worker.table)
        await worker.app.start()
        try:
            # Held: events processed and stored, their snapshot written but not confirmed -> no commit.
            await asyncio.to_thread(broker.publish, events[:FIRST])
            await _until(lambda: gate.held > 0 and reader.count("events") > 0, "events stored, a snapshot sent")
            await asyncio.sleep(3)  # time for any commit that should not happen
            stored = await asyncio.to_thread(reader.count, "events")
            assert stored > 0 and await asyncio.to_thread(broker.committed) is None
            # ...and the worker says so (SandboxwatchCommitsStalled reads these two).
            sample = worker.monitor.metrics.registry.get_sample_value
            started = sample("sandboxwatch_last_commit_timestamp_seconds")
            assert started is not None and sample("sandboxwatch_uncommitted_messages") == FIRST
            # Confirmed: the commits follow, each to what a confirmed snapshot covers.
            gate.release()
            await _until(lambda: broker.committed() == FIRST, f"offset {FIRST} committed")
            assert (sample("sandboxwatch_last_commit_timestamp_seconds") or 0.0) > started
            await _until(lambda: sample("sandboxwatch_uncommitted_messages") == 0, "nothing left uncommitted")
            manifests = await asyncio.to_thread(broker.manifests, participant)
            assert manifests[-1].offsets == {0: FIRST - 1}
            # Failed: the next events are processed and stored, their snapshot is refused -> the commit stays
            # at the confirmed snapshot, while the worker runs and after it stopped.
            gate.close()
            await asyncio.to_thread(broker.publish, events[FIRST:])
            await _until(lambda: gate.held > 0 and reader.count("events") > FIRST, "more events stored")
            gate.fail()
            await _until(lambda: gate.failed > 0, "a snapshot refused")
            await asyncio.sleep(3)
            assert await asyncio.to_thread(broker.committed) == FIRST
        finally:
            await worker.stop()  # its last snapshot is refused too: nothing may be committed without one
            worker.close()
        assert await asyncio.to_thread(broker.committed) == FIRST
        manifests = await asyncio.to_thread(broker.manifests, participant)
        assert manifests[-1].offsets == {0: FIRST - 1}

    async def next_worker() -> None:
        worker = _worker(broker, store_url, tmp_path / "faust-2")
        await worker.app.start()
        try:
            await _until(lambda: broker.committed() == FIRST + SECOND, "the next worker to catch up")
        finally:
            await worker.stop()
            worker.close()
        sample = worker.monitor.metrics.registry.get_sample_value
        assert sample("sandboxwatch_state_restores_total", {"participant": participant, "source": "snapshot"}) == 1
        assert sample("sandboxwatch_snapshot_rebuilds_total", {"reason": "behind_commit"}) == 0
        # It judged exactly the events after the confirmed snapshot as new: none lost, none judged twice (a
        # message faust delivers again around the start is a duplicate the engine's event-id memory skips).
        [events_metric] = worker.monitor.metrics.events.collect()
        new = sum(s.value for s in events_metric.samples if s.name.endswith("_total"))
        assert new == SECOND

    asyncio.run(first_worker())
    asyncio.run(next_worker())
    assert reader.raw_count("events") == FIRST + SECOND, "nothing stored twice"
    covered = [m.offsets[0] for m in broker.manifests(participant)]
    assert covered == sorted(covered) and covered[-1] == FIRST + SECOND - 1
