"""Two live workers started with the same ``--worker-id`` (an operator's copy-paste, a rolling restart that
starts the new pod before the old one stops): the id must be unique among live workers
(deploy/OPERATIONS.md, "Worker ids"), and breaking that rule must never pass silently.

Found by the session-8 adversary runs: on tansu and on noida-db 0.2.3 neither broker fences the older member
(Apache Kafka answers it FENCED_INSTANCE_ID), so both workers consume the same partitions at once, each with
its own engine: both report ``sandboxwatch_group_joined`` 1 and /ready 200 throughout, and the store receives
each event twice (raw rows 40,362 for 31,968 events on tansu; 32,967 on noida, whose group churns with
UnknownMemberId rejoins). Findings came out right (ReplacingMergeTree and the deterministic ids), but the two
engines snapshot the same participant into one changelog and commit the same partitions."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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


@pytest.mark.xfail(
    # Not strict: whether the two workers overlap at the sampled moments and double rows depends on the
    # brokers' churn and the machine's load, so a lucky run may pass; it shows as XPASS, never hides a failure.
    strict=False,
    reason=(
        "open bug (#12, s8j adversary): a second worker with a live worker's --worker-id is not fenced by tansu "
        "or noida and nothing in the worker notices: both read ready and joined and both store every event. "
        "Fix: a worker-id lease (id + per-process nonce) that keeps the newer worker out, loudly"
    ),
)
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
    finally:
        pipeline.stop_other_workers()
        pipeline.stop_worker()
