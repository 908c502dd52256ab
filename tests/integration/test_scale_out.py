"""Scale-out: two worker processes share four partitions (one venue each); when one goes, the other takes
its partitions over and the findings are exactly the self-check's, none lost and none doubled."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.streams.publish import publish_lines
from tests.helpers import DA_NANG
from tests.integration.pipeline import Pipeline, expected_findings
from tests.integration.venues import Venue, interleaved, partition_of, write_venues
from tests.local_services import ClickHouseServer, LocalService

PARTITIONS = 4


@pytest.fixture(scope="module")
def venues(tmp_path_factory: pytest.TempPathFactory) -> list[Venue]:
    folder = tmp_path_factory.mktemp("venues")
    day = folder / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=150, seed=13), day, None)
    return write_venues(folder, day.read_text().splitlines(), PARTITIONS)


@pytest.fixture
def pipeline(broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(broker.address, clickhouse.url("unused"), tmp_path, partitions=PARTITIONS)
    yield p
    p.stop_other_workers()
    p.stop_worker()


def _participants_seen(metrics: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r'^sandboxwatch_events_total\{participant="([^"]+)"', metrics, re.M)}


def _ready(pipeline: Pipeline, slot: int) -> bool:
    from urllib.error import HTTPError
    from urllib.request import urlopen

    port = pipeline.other_ports[slot] if slot else pipeline.metrics_port
    try:
        with urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
            return bool(response.status == 200)
    except HTTPError:
        return False


def _unique(lines: list[str]) -> int:
    return len({(row["participant"], row["event_id"]) for row in map(json.loads, lines)})


NOIDA_KEEPS_DEAD_MEMBERS = (
    "noida-db 0.2.3 never expires a group member's session: after a kill -9 the survivor heartbeats at the same "
    "generation and is never given the dead member's partitions (seen for 70 s, 11 session timeouts, with two "
    "plain aiokafka consumers, and for 45 s here); a worker restarted under the dead one's --worker-id takes them "
    "back (test_stream_pipeline, test_faults), but one that never comes back leaves them unconsumed. Checked: "
    "the survivor's metrics show them stalled (lag above 0, position not moving), the SandboxwatchPartitionStalled "
    "condition; the hand-over itself runs on tansu"
)


def _gauges(metrics: str, name: str) -> dict[int, float]:
    pattern = rf'^{name}\{{[^}}]*partition="(\d+)"[^}}]*\}} (\S+)$'
    return {int(m.group(1)): float(m.group(2)) for m in re.finditer(pattern, metrics, re.M)}


def _orphaned_partitions_are_shown_stalled(pipeline: Pipeline, total: int) -> None:
    """On noida the killed worker's partitions stay its own: the survivor must show them as waiting and not
    moving (the SandboxwatchPartitionStalled condition) over five session timeouts, while its own move on."""
    import time

    store = pipeline.store()
    pipeline.wait_until(
        lambda: (
            sum(v > 0 for v in _gauges(pipeline.metrics_text(), "sandboxwatch_consumer_lag_messages").values())
            >= PARTITIONS // 2
        ),
        "the killed worker's partitions to show waiting events",
    )
    time.sleep(15)  # the survivor catches up on its own partitions
    before = _gauges(pipeline.metrics_text(), "sandboxwatch_partition_processed_offset")
    time.sleep(30)
    metrics = pipeline.metrics_text()
    after = _gauges(metrics, "sandboxwatch_partition_processed_offset")
    lag = _gauges(metrics, "sandboxwatch_consumer_lag_messages")
    stalled = {p for p in range(PARTITIONS) if lag[p] > 0 and after[p] == before[p]}
    assert len(stalled) == PARTITIONS // 2, (lag, before, after)  # the two the killed worker was assigned
    assert all(lag[p] == 0 for p in set(range(PARTITIONS)) - stalled), lag
    assert store.count("events") < total


def test_venues_spread_over_every_partition(venues: list[Venue]) -> None:
    assert sorted(partition_of(v.participant, PARTITIONS) for v in venues) == list(range(PARTITIONS))


@pytest.mark.parametrize("stop", ["kill", "sigterm"])
def test_a_second_worker_shares_the_partitions_and_a_stopped_one_hands_them_over_without_loss_or_doubles(
    pipeline: Pipeline, venues: list[Venue], stop: str, request: pytest.FixtureRequest
) -> None:
    noida = request.node.callspec.params["broker"] == "noida"
    expected = set().union(*(expected_findings(v.events, v.licence) for v in venues))
    assert len(expected) >= 4 * 5, "every venue's day must contain violations"
    lines = interleaved(venues)
    half = len(lines) // 2
    pipeline.licences = [v.licence for v in venues]
    # The schema first: two workers migrating one new database at once race on its DDL (OPERATIONS.md).
    store = pipeline.store()
    pipeline.start_worker()
    pipeline.start_other_worker(1)
    # Both in the group before any event, so the partitions are shared from the first one on.
    pipeline.wait_until(lambda: _ready(pipeline, 0) and _ready(pipeline, 1), "both workers ready", timeout=180)
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[:half])
    names = {v.participant for v in venues}

    def shared() -> bool:
        first, second = _participants_seen(pipeline.metrics_text()), _participants_seen(pipeline.metrics_text(1))
        return bool(first) and bool(second) and first | second == names

    pipeline.wait_until(shared, "both workers to process venues", timeout=180)
    # Stop the second worker while it is mid-stream, then send the rest of the day.
    pipeline.wait_until(lambda: store.count("events") >= half // 2, "the first half to be under way", poll=0.05)
    gone = pipeline.others[1]
    if stop == "kill":
        gone.kill()
    else:
        gone.terminate()
    gone.wait(60)
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[half:])
    total = _unique(lines)
    if stop == "kill" and noida:
        _orphaned_partitions_are_shown_stalled(pipeline, total)
        pytest.xfail(NOIDA_KEEPS_DEAD_MEMBERS)
    pipeline.wait_until(
        lambda: store.count("events") == total and store.count("findings") >= len(expected),
        "the remaining worker to take every partition over and catch up",
        timeout=300,
    )
    assert _participants_seen(pipeline.metrics_text()) == names, "the survivor took over every venue"
    found = set(store.finding_ids())
    assert found == expected, (len(found - expected), len(expected - found), store.findings_summary())
    assert store.raw_count("findings") == len(expected), "a finding was inserted twice after the hand-over"
    assert store.raw_count("events") == total, "an event was stored twice after the hand-over"
    assert store.count("dead_letters") == 0
