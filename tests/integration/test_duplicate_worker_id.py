"""Two live workers started with the same ``--worker-id`` (an operator's copy-paste, a rolling restart that
starts the new pod before the old one stops): the id must be unique among live workers
(deploy/OPERATIONS.md, "Worker ids"), and breaking that rule must never pass silently.

Found by the session-8 adversary runs: on tansu and on noida-db 0.2.3 neither broker fences the older member
(Apache Kafka answers it FENCED_INSTANCE_ID), so both workers consume the same partitions at once, each with
its own engine: both report ``sandboxwatch_group_joined`` 1 and /ready 200 throughout, and the store receives
each event twice (raw rows 40,362 for 31,968 events on tansu; 32,967 on noida, whose group churns with
UnknownMemberId rejoins). Findings came out right (ReplacingMergeTree and the deterministic ids), but the two
engines snapshot the same participant into one changelog and commit the same partitions.

Fixed by the worker-id lease (streams/worker_lease.py): the second worker waits one TTL for the first's lease
to lapse, sees it renewed, and exits 2 in one line before it joins the group. These tests fail without it
(both ready, rows doubled; a SIGTERM'd worker's id released at once rather than after the TTL)."""

from __future__ import annotations

import time
from pathlib import Path

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.streams.publish import publish_lines
from tests.helpers import DA_NANG
from tests.integration.pipeline import Pipeline, expected_findings
from tests.integration.test_stream_pipeline import unique_events
from tests.local_services import ClickHouseServer, LocalService

SLICES = 8


def _ready_and_joined(pipeline: Pipeline, slot: int) -> bool:
    from urllib.error import HTTPError, URLError
    from urllib.request import urlopen

    port = pipeline.other_ports[slot] if slot else pipeline.metrics_port
    try:
        with urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
            ready = response.status == 200
    except (HTTPError, URLError, OSError):
        return False
    return ready and "sandboxwatch_group_joined 1.0" in pipeline.metrics_text(slot)


def test_a_second_worker_with_the_same_worker_id_is_loud_and_stores_nothing_twice(
    broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path
) -> None:
    events = tmp_path / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=150, seed=21), events, tmp_path / "t.json")
    lines = events.read_text().splitlines()
    expected = expected_findings(events)
    pipeline = Pipeline(broker.address, clickhouse.url("unused"), tmp_path)
    pipeline.start_worker("--worker-id", "w1")
    try:
        pipeline.wait_until(lambda: _ready_and_joined(pipeline, 0), "the first worker joined")
        pipeline.start_other_worker(1, "--worker-id", "w1")
        both_ready_seen = 0
        size = len(lines) // SLICES + 1
        for start in range(0, len(lines), size):
            publish_lines(broker.address, pipeline.topics.events, lines[start : start + size])
            time.sleep(2)
            both_ready_seen += _ready_and_joined(pipeline, 0) and _ready_and_joined(pipeline, 1)
        store = pipeline.store()
        pipeline.wait_until(lambda: store.count("events") == unique_events(lines), "every event stored")
        pipeline.wait_until(lambda: set(store.finding_ids()) == expected, "the self-check's findings")
        time.sleep(3)
        # The duplicate must show: one of the two out of the group (not ready), or stopped with an error.
        assert both_ready_seen == 0, f"both workers named w1 read ready and joined in {both_ready_seen} of {SLICES}"
        assert store.raw_count("events") == unique_events(lines), "events stored twice"
        assert store.raw_count("findings") == len(expected), "findings stored twice"
        second = pipeline.others[1]
        assert second.wait(60) == 2, pipeline.worker_log()
        said = [line for line in pipeline.worker_log().splitlines() if "is held by a live worker" in line]
        assert said and said[-1].startswith("sandboxwatch worker: --worker-id w1 is held by a live worker (host ")
        assert _ready_and_joined(pipeline, 0), "the holder kept going"
    finally:
        pipeline.stop_other_workers()
        pipeline.stop_worker()


def test_an_orderly_stop_frees_the_worker_id_at_once(
    broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path
) -> None:
    """SIGTERM releases the lease: the replacement under the same id joins without waiting out the TTL, and
    both incarnations' events are stored once."""
    events = tmp_path / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=60, seed=5), events, tmp_path / "t.json")
    lines = events.read_text().splitlines()
    half = len(lines) // 2
    pipeline = Pipeline(broker.address, clickhouse.url("unused"), tmp_path)
    pipeline.worker_options = ("--worker-id", "w1")
    pipeline.start_worker()
    try:
        publish_lines(broker.address, pipeline.topics.events, lines[:half])
        store = pipeline.store()
        pipeline.wait_until(lambda: store.count("events") == unique_events(lines[:half]), "the first half stored")
        pipeline.stop_worker()
        assert pipeline.worker is not None and pipeline.worker.returncode == 0, pipeline.worker_log()
        pipeline.start_worker()
        pipeline.wait_until(lambda: _ready_and_joined(pipeline, 0), "the replacement joined")
        # The replacement did not wait on the released lease (a lapse takes 15 s; starting a worker here ~5 s).
        assert "waiting up to" not in pipeline.worker_log(), pipeline.worker_log()
        publish_lines(broker.address, pipeline.topics.events, lines[half:])
        pipeline.wait_until(lambda: store.count("events") == unique_events(lines), "every event stored")
        assert store.raw_count("events") == unique_events(lines), "events stored twice"
    finally:
        pipeline.stop_worker()
