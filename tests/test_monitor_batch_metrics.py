"""The monitor's metrics are set once a batch (streams/monitor.py), not once an event: the counts must still
be exact. A batch message re-delivered whole and a line repeated inside a batch are duplicates; the events
counter holds each event once by type; the last-event gauge is the newest event time of the batches."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from sandboxwatch.alerts.metrics import PREFIX, Metrics
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from tests.helpers import DA_NANG, NATIONAL


def test_duplicates_events_and_last_event_are_exact_when_counted_once_a_batch(store: Store) -> None:
    licence = load_licence(DA_NANG)
    participant = licence.header.participant
    scenario = build_scenario(licence, SimulationConfig(accounts=20, seed=3, target_events=400))
    unique: dict[str, str] = {}  # the simulated day re-delivers an event or two itself: those left out here
    for line in scenario_lines(scenario):
        unique.setdefault(json.loads(line)["event_id"], line.rstrip("\n"))
    lines = list(unique.values())[:300]
    first, second = lines[:150], lines[150:]
    # The second batch repeats its own first line and the first batch's last three lines.
    second = [second[0], *second, *first[-3:]]
    key = participant.encode()
    messages = [
        InboundMessage("events", 0, 0, key, "\n".join(first).encode()),
        InboundMessage("events", 0, 1, key, "\n".join(second).encode()),
        InboundMessage("events", 0, 2, key, "\n".join(first).encode()),  # the first message again, whole
    ]
    metrics = Metrics()
    monitor = Monitor([licence], store, metrics)
    outcomes = [monitor.process_batch([message]) for message in messages]
    monitor.flush()

    assert [o.events for o in outcomes] == [150, 150, 0]
    assert [o.duplicates for o in outcomes] == [0, 4, 150]
    value = metrics.registry.get_sample_value
    assert value(f"{PREFIX}_duplicate_events_total", {"participant": participant}) == 154
    by_type = Counter(json.loads(line)["type"] for line in lines)
    for event_type, count in by_type.items():
        assert value(f"{PREFIX}_events_total", {"participant": participant, "type": event_type}) == count
    newest = max(datetime.fromisoformat(json.loads(line)["ts"]) for line in lines)
    assert value(f"{PREFIX}_last_event_timestamp_seconds", {"participant": participant}) == newest.timestamp()
    assert store.count("events") == 300


def test_last_event_per_participant_in_a_batch_of_several_leaves_out_future_dated_events(store: Store) -> None:
    """The gauge takes each participant's newest event time at or before now, also when one batch holds the
    messages of several participants; an event dated years ahead is counted but moves no gauge."""
    licences = [load_licence(DA_NANG), load_licence(NATIONAL)]
    messages = []
    expected: dict[str, float] = {}
    by_type: Counter[tuple[str, str]] = Counter()
    for offset, licence in enumerate(licences):
        participant = licence.header.participant
        scenario = build_scenario(licence, SimulationConfig(accounts=20, seed=5 + offset, target_events=200))
        unique: dict[str, str] = {}
        for line in scenario_lines(scenario):
            unique.setdefault(json.loads(line)["event_id"], line.rstrip("\n"))
        lines = list(unique.values())[:100]
        future = json.loads(lines[0])
        future.update(event_id="from-the-future", ts="2099-01-01T00:00:00+00:00")
        lines.append(json.dumps(future))
        by_type.update((participant, json.loads(line)["type"]) for line in lines)
        expected[participant] = max(datetime.fromisoformat(json.loads(line)["ts"]) for line in lines[:-1]).timestamp()
        messages.append(InboundMessage("events", 0, offset, participant.encode(), "\n".join(lines).encode()))
    metrics = Metrics()
    monitor = Monitor(licences, store, metrics)
    outcome = monitor.process_batch(messages)
    monitor.flush()

    assert outcome.events == 202
    value = metrics.registry.get_sample_value
    for participant, newest in expected.items():
        assert value(f"{PREFIX}_last_event_timestamp_seconds", {"participant": participant}) == newest
    for (participant, event_type), count in by_type.items():
        assert value(f"{PREFIX}_events_total", {"participant": participant, "type": event_type}) == count
