"""The live monitor against real brokers (tansu and noida-db) and a real ClickHouse server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, simulate_to_files
from sandboxwatch.streams.publish import publish_lines
from tests.helpers import DA_NANG
from tests.integration.pipeline import Pipeline, expected_findings
from tests.local_services import ClickHouseServer, LocalService


@pytest.fixture
def pipeline(broker: LocalService, clickhouse: ClickHouseServer, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(broker.address, clickhouse.url("unused"), tmp_path)
    yield p
    p.stop_worker()


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("day")
    events = folder / "day.jsonl"
    simulate_to_files(load_licence(DA_NANG), SimulationConfig(accounts=300, seed=11), events, folder / "truth.json")
    return events, events.read_text().splitlines()


def unique_events(lines: list[str]) -> int:
    return len({json.loads(line)["event_id"] for line in lines})


def test_every_finding_lands_in_clickhouse_exactly_once(pipeline: Pipeline, day: tuple[Path, list[str]]) -> None:
    path, lines = day
    expected = expected_findings(path)
    assert expected, "the simulated day must contain violations"
    publish_lines(pipeline.kafka, pipeline.topics.events, lines)
    pipeline.start_worker()
    store = None

    def done() -> bool:
        nonlocal store
        store = store or pipeline.store()
        return store.count("events") == unique_events(lines) and store.count("findings") >= len(expected)

    pipeline.wait_until(done, "every event and finding stored")
    assert store is not None
    assert set(store.finding_ids()) == expected
    assert store.raw_count("findings") == len(expected), "a finding was inserted twice"
    assert store.raw_count("events") == unique_events(lines), "an event was stored twice"
    assert store.count("dead_letters") == 0
    metrics = pipeline.metrics_text()
    breaches = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("sandboxwatch_findings_total{")
    )
    assert breaches == len(expected)
    lags = [line for line in metrics.splitlines() if line.startswith("sandboxwatch_consumer_lag_messages{")]
    assert lags, "consumer lag is exported per partition"


def test_a_killed_worker_restarts_without_losing_or_doubling(pipeline: Pipeline, day: tuple[Path, list[str]]) -> None:
    """On both brokers: the restarted worker rejoins under its --worker-id and takes its partitions back at once
    (streams.static_membership; noida-db 0.2.3 would otherwise keep the killed member forever)."""
    pipeline.worker_options = ("--worker-id", "worker-0")
    path, lines = day
    expected = expected_findings(path)
    third = len(lines) // 3
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[:third])
    pipeline.start_worker()
    store = pipeline.store()
    first = unique_events(lines[:third])
    pipeline.wait_until(lambda: store.count("events") == first, "the first third")
    time.sleep(4)  # idle long enough for a snapshot and its offset commit
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[third : 2 * third])
    pipeline.wait_until(lambda: store.count("events") > first, "the worker to be mid-stream", poll=0.05)
    pipeline.kill_worker()
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[2 * third :])
    pipeline.start_worker()
    pipeline.wait_until(
        lambda: store.count("events") == unique_events(lines) and store.count("findings") >= len(expected),
        "the restarted worker to catch up",
        timeout=120,
    )
    assert set(store.finding_ids()) == expected
    assert 'sandboxwatch_state_restores_total{participant="alphatrue-basal-pay",source="snapshot"} 1.0' in (
        pipeline.metrics_text()
    ), "the restarted worker must take its state from the snapshot, not start empty"
    assert store.raw_count("findings") == len(expected), "a finding was inserted twice after the restart"
    assert store.raw_count("events") == unique_events(lines), "an event was stored twice after the restart"


def test_a_worker_restarted_under_a_new_id_is_in_its_group_or_says_it_is_not(
    pipeline: Pipeline, day: tuple[Path, list[str]]
) -> None:
    """A kill -9, then a restart under another --worker-id: the dead member stays in the group until the broker
    expires it (Apache Kafka: one session timeout). noida-db 0.2.3 never does (the join loops at generation 2),
    nor did tansu for a dead static member in the 60 s seen here (its join loops at generation 1). Whichever
    happens, the worker never reads ready while out of the group, and it either catches up or says why it
    cannot (/ready 503 with the reason, sandboxwatch_group_joined 0, SandboxwatchGroupJoinStuck)."""
    _, lines = day
    half = len(lines) // 2
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[:half])
    pipeline.start_worker("--worker-id", "first")
    store = pipeline.store()
    pipeline.wait_until(lambda: store.count("events") > 0, "the first worker to be under way", poll=0.05)
    pipeline.kill_worker()
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[half:])
    pipeline.start_worker("--worker-id", "second")
    samples: list[tuple[int, str, float]] = []

    def caught_up() -> bool:
        status, reason = pipeline.readiness()
        joined = _gauge(pipeline.metrics_text(), "sandboxwatch_group_joined")
        samples.append((status, reason, joined))
        return store.count("events") == unique_events(lines)

    try:
        pipeline.wait_until(caught_up, "the restarted worker to catch up", timeout=60)
    except AssertionError:
        status, reason, joined = samples[-1]
        assert (status, joined) == (503, 0) and reason.startswith("not in the consumer group"), samples[-5:]
        assert store.count("events") < unique_events(lines)
    else:
        assert samples[-1][2] == 1
    assert samples, "the worker's health endpoint answered"
    assert all(status != 200 or joined == 1 for status, _, joined in samples), "ready while out of its group"


def _gauge(metrics: str, name: str) -> float:
    [value] = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name + " ")]
    return value


def test_malformed_messages_are_dead_lettered_and_counted_while_the_rest_flows(
    pipeline: Pipeline, day: tuple[Path, list[str]]
) -> None:
    _, lines = day
    good = lines[:400]
    participant = json.loads(good[0])["participant"]
    bad = [
        "{not json",
        json.dumps({"event_id": "x1", "type": "trade", "participant": participant, "ts": "2025-11-10T12:00:00+07:00"}),
        json.dumps({**json.loads(good[1]), "event_id": "x2", "ts": "yesterday"}),
        json.dumps({**json.loads(good[1]), "event_id": "x3", "participant": "nobody-licensed"}),
    ]
    publish_lines(pipeline.kafka, pipeline.topics.events, good[:200] + bad + good[200:])
    pipeline.start_worker()
    store = pipeline.store()
    pipeline.wait_until(
        lambda: store.count("dead_letters") == len(bad) and store.count("events") == unique_events(good),
        "dead letters and the good events",
    )
    letters = {d["raw"]: d for d in store.dead_letters()}
    assert set(letters) == set(bad), "dead letters keep the whole message"
    assert letters["{not json"]["reason"].startswith("not valid JSON")
    assert letters[bad[1]]["field"] in {"account", "side", "base", "quote", "quantity", "price"}
    assert letters[bad[2]]["field"] == "ts"
    assert letters[bad[3]]["kind"] == "unlicensed_participant"
    metrics = pipeline.metrics_text()
    assert 'sandboxwatch_dead_letters_total{reason="invalid_event"} 3.0' in metrics
    assert 'sandboxwatch_dead_letters_total{reason="unlicensed_participant"} 1.0' in metrics


def test_batch_messages_and_single_event_messages_give_the_self_checks_findings(
    pipeline: Pipeline, day: tuple[Path, list[str]]
) -> None:
    """Our producers' batch messages, another producer's single-event messages on the same partitions, and a
    batch carrying a re-delivered event, a broken line and another participant's line: the stored findings
    are the self-check's on the same events, each event is stored once, and only the two bad lines of the
    batch are dead-lettered, each under its line within the message."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    path, lines = day
    expected = expected_findings(path)
    participant = json.loads(lines[0])["participant"]
    half = len(lines) // 2
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[:half])
    other = KafkaProducer(bootstrap_servers=pipeline.kafka, acks="all")
    for line in lines[half : half + 50]:
        other.send(pipeline.topics.events, key=json.loads(line)["participant"].encode(), value=line.encode())
    stranger = json.dumps({**json.loads(lines[1]), "event_id": "foreign-1", "participant": "someone-else"})
    mixed = "\n".join([lines[0], '{"event_id": "broken", "type": "trade"', stranger])
    other.send(pipeline.topics.events, key=participant.encode(), value=mixed.encode())
    other.flush()
    other.close()
    publish_lines(pipeline.kafka, pipeline.topics.events, lines[half + 50 :])
    consumer = KafkaConsumer(bootstrap_servers=pipeline.kafka)
    ends = consumer.end_offsets([TopicPartition(pipeline.topics.events, p) for p in range(pipeline.topics.partitions)])
    consumer.close()
    assert sum(ends.values()) < 51 + len(lines) // 100, "our producers send batch messages"
    pipeline.start_worker()
    store = pipeline.store()
    pipeline.wait_until(
        lambda: store.count("events") == unique_events(lines) and store.count("dead_letters") == 2,
        "every event and both dead letters stored",
    )
    pipeline.wait_until(lambda: store.count("findings") >= len(expected) + 1, "the findings")
    rows = store.backend.rows(f"SELECT finding_id, kind FROM {store.db}.findings")
    assert {str(f) for f, kind in rows if kind != "invalid_event"} == expected
    assert sum(kind == "invalid_event" for _, kind in rows) == 1, "the broken line's finding, once"
    assert store.raw_count("events") == unique_events(lines), "an event was stored twice"
    letters = {d["raw"]: d for d in store.dead_letters()}
    assert set(letters) == {'{"event_id": "broken", "type": "trade"', stranger}
    assert letters[stranger]["source"].endswith(":3") and letters[stranger]["field"] == "participant"
    assert letters['{"event_id": "broken", "type": "trade"']["source"].endswith(":2")
