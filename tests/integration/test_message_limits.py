"""Lines at the parser's size limit through a real broker and worker (tansu and noida, ClickHouse server):
a valid one is monitored, an invalid one is dead-lettered whole, and neither stops the partition."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.event_reader import MAX_LINE_CHARS
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.streams.publish import publish_lines
from tests.helpers import DA_NANG
from tests.integration.pipeline import Pipeline
from tests.local_services import ClickHouseServer, LocalService


@pytest.fixture
def pipeline(broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(broker.address, clickhouse.url("unused"), tmp_path)
    yield p
    p.stop_worker()


def test_lines_at_the_size_limit_are_monitored_or_dead_lettered_whole(pipeline: Pipeline) -> None:
    day = [line.rstrip("\n") for line in scenario_lines(build_scenario(load_licence(DA_NANG), SimulationConfig(10, 2)))]
    good = day[:300]
    trade = next(json.loads(line) for line in good if '"type":"trade"' in line)
    big = {**trade, "event_id": "big-valid", "note": ""}
    big["note"] = "€" * (MAX_LINE_CHARS - len(json.dumps(big, ensure_ascii=False)))
    valid = json.dumps(big, ensure_ascii=False)
    invalid = "{" + "€" * (MAX_LINE_CHARS - 1)  # not JSON, 3 MiB in UTF-8
    assert len(valid) == len(invalid) == MAX_LINE_CHARS
    publish_lines(pipeline.kafka, pipeline.topics.events, [*good[:150], valid, invalid, *good[150:]])
    pipeline.start_worker()
    store = pipeline.store()
    expected = len({json.loads(line)["event_id"] for line in good}) + 1
    pipeline.wait_until(
        lambda: store.count("events") == expected and store.count("dead_letters") == 1, "the events and the letter"
    )
    (letter,) = store.dead_letters()
    assert letter["raw"] == invalid and letter["reason"].startswith("not valid JSON")
    assert store.count("events", event_id="big-valid") == 1
