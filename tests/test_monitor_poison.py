"""Poison events mid-stream through the monitor (chdb store): none stops the batch, each is accounted for,
and what the monitor stores agrees with the self-check on the same events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import pytest

from sandboxwatch.rules_engine.builtin_findings import INVALID_EVENT
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.records import EventRecord
from sandboxwatch.store.write_retry import WriteRetry
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from tests.helpers import DA_NANG
from tests.poison import comparable, interleave, poison_lines, readable_head

pytest.importorskip("chdb")

PARTICIPANT = "alphatrue-basal-pay"


@pytest.fixture(scope="module")
def day() -> list[str]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=60, seed=4))
    return [line.rstrip("\n") for line in scenario_lines(scenario)]


def first(lines: list[str], kind: str) -> str:
    return next(line for line in lines if json.loads(line)["type"] == kind)


def messages(lines: list[str]) -> list[InboundMessage]:
    return [
        InboundMessage("events", 0, offset, PARTICIPANT.encode(), line.encode()) for offset, line in enumerate(lines)
    ]


def with_poison(day: list[str]) -> tuple[list[str], dict[str, str]]:
    poison = poison_lines(first(day, "trade"), first(day, "price"), first(day, "account"))
    lines = interleave(day, poison)
    placed = {name: next(line for line in lines if _id(line) == _id(body)) for name, body in poison.items()}
    return lines, placed


def _id(line: str) -> str:
    return str(json.loads(readable_head(line))["event_id"])


def test_every_poison_class_mid_stream_is_contained_and_the_rest_agrees_with_the_self_check(
    store: Store, day: list[str]
) -> None:
    lines, poison = with_poison(day)
    monitor = Monitor([load_licence(DA_NANG)], store)
    batch = messages(lines)
    for i in range(0, len(batch), 500):
        monitor.process_batch(batch[i : i + 500])
    check = run_check(load_licence(DA_NANG), read_jsonl(lines, "day"))
    expected = {f.finding_id: (f.kind, f.evidence) for f in check.findings}
    rows = store.backend.rows(f"SELECT finding_id, kind, evidence FROM {store.db}.findings")
    stored = {str(fid): (str(kind), tuple(evidence)) for fid, kind, evidence in rows}
    assert comparable(stored) == comparable(expected)
    assert len(comparable(stored)) >= 20
    # The parser's bounds (docs/events.md) refuse every poison class before a rule sees it: each is a dead
    # letter of kind invalid_event with its reason, and an invalid_event finding names it where it has an id.
    ids = {_id(line) for line in poison.values()}
    named = {e for kind, ev in stored.values() if kind == INVALID_EVENT for e in ev}
    assert ids <= named  # the 5,000-digit line too: its event_id is still read for the finding
    checked = {e for kind, ev in expected.values() if kind == INVALID_EVENT for e in ev}
    assert named == checked  # the self-check refuses the same lines
    events = {str(r[0]) for r in store.backend.rows(f"SELECT event_id FROM {store.db}.events")}
    assert not ids & events
    letters = {d["raw"]: d for d in store.dead_letters()}
    assert set(letters) == set(poison.values())
    assert {d["kind"] for d in letters.values()} == {"invalid_event"}
    assert letters[poison["quantity 1e999999"]]["field"] == "quantity"
    assert letters[poison["ts year 1 +14:00"]]["field"] == "ts"
    # Every other event is stored exactly once.
    stored_events = {json.loads(line)["event_id"] for line in lines if line not in letters}
    assert store.count("events") == len(stored_events)
    assert store.raw_count("events") == len(stored_events)
    assert monitor.metrics.dead_letters.labels("invalid_event")._value.get() == len(poison)


def test_a_far_future_event_is_stored_with_its_exact_time_and_does_not_pin_the_event_time_metric(
    store: Store, day: list[str]
) -> None:
    future = {**json.loads(first(day, "price")), "event_id": "p-2199", "ts": "2199-12-31T23:59:59-14:00"}
    now = {**json.loads(first(day, "price")), "event_id": "p-now"}
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages([json.dumps(now), json.dumps(future)]))
    rows = store.backend.rows(f"SELECT event_id, ts_text FROM {store.db}.events ORDER BY event_id")
    assert [(str(a), str(b)) for a, b in rows] == [("p-2199", "2199-12-31T23:59:59-14:00"), ("p-now", now["ts"])]
    assert monitor.metrics.last_event.labels(PARTICIPANT)._value.get() == datetime.fromisoformat(now["ts"]).timestamp()
    assert monitor.metrics.last_processed.labels(PARTICIPANT)._value.get() > 0


class FlakyStore(Store):
    """The real chdb store, refusing its first ``failures`` writes the way a stopped server does."""

    failures = 0

    def write_findings(self, findings: Sequence[Finding]) -> list[Finding]:
        if self.failures:
            self.failures -= 1
            raise StoreError("ClickHouse server unreachable: [Errno 111] Connection refused")
        return super().write_findings(findings)


def test_a_store_outage_is_waited_out_and_reported_then_nothing_is_lost(store: Store, day: list[str]) -> None:
    flaky = FlakyStore(store.backend)
    flaky.failures = 3
    seen: list[float] = []
    monitor = Monitor([load_licence(DA_NANG)], flaky)
    monitor.retry = WriteRetry(monitor.metrics, first_delay=0.01, max_delay=0.02)
    metrics = monitor.metrics
    original = metrics.store_failed

    def failed(error: Exception) -> None:
        original(error)
        seen.append(metrics.store_writable._value.get())

    metrics.store_failed = failed  # type: ignore[method-assign]
    outcome = monitor.process_batch(messages(day[:3000]))
    assert seen == [0.0, 0.0, 0.0]
    assert metrics.store_writable._value.get() == 1.0
    assert metrics.store_failures._value.get() == 3.0
    expected = {f.finding_id for f in run_check(load_licence(DA_NANG), read_jsonl(day[:3000], "d")).findings}
    assert {f.finding_id for f in outcome.new_findings} == expected
    assert set(store.finding_ids()) == expected


def test_a_rebuild_from_the_store_contains_an_event_that_no_longer_computes(store: Store, day: list[str]) -> None:
    """Events stored before a fix (or judged under an earlier licence) may raise when replayed: the rebuild
    goes on, and the rest of the participant's state comes back."""
    lines = day[:2000]
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(lines))
    poison = json.loads(
        poison_lines(first(day, "trade"), first(day, "price"), first(day, "account"))["quantity 1e999999"]
    )
    # Stored before the parser's bounds existed: built around them (the bounds refuse it today).
    event = event_from_dict({**poison, "quantity": "1"})
    event.quantity = Decimal("1e999999")  # type: ignore[attr-defined]
    before = set(store.finding_ids())
    store.write_events([EventRecord(event, json.dumps(poison), "events/0/99999")])
    fresh = Monitor([load_licence(DA_NANG)], store)
    fresh.rebuild(PARTICIPANT)
    assert len(set(store.finding_ids()) - before) == 1  # re-derived findings carry their old ids
    rows = store.backend.rows(f"SELECT evidence FROM {store.db}.findings WHERE kind = '{INVALID_EVENT}'")
    assert [tuple(r[0]) for r in rows] == [("poison-exponent",)]


def test_store_errors_tell_refused_values_from_outages(store: Store) -> None:
    from sandboxwatch.store.backends import ServerBackend
    from tests.local_services import free_port

    with pytest.raises(StoreError) as refused:
        store.backend.command(
            f'INSERT INTO {store.db}.dead_letters (letter_id, recorded) FORMAT JSONCompactEachRow\n["x", "not a time"]'
        )
    assert refused.value.data_error, refused.value
    unreachable = ServerBackend(f"clickhouse://127.0.0.1:{free_port()}/x")
    with pytest.raises(StoreError) as down:
        unreachable.rows("SELECT 1")
    assert not down.value.data_error, down.value


class RefusingStore(Store):
    """The real chdb store, except that it refuses (as a data error) any batch holding one chosen event, the
    way ClickHouse refuses a value its column cannot hold."""

    refused = "ev-refused"

    def write_events(self, records: Sequence[EventRecord], check: bool = True) -> list[EventRecord]:
        if any(r.event.event_id == self.refused for r in records):
            raise StoreError("ClickHouse server: Code: 53. Type mismatch in VALUES section", data_error=True)
        return super().write_events(records, check)


def test_a_row_the_store_refuses_is_dead_lettered_alone_and_the_rest_of_the_batch_is_stored(
    store: Store, day: list[str]
) -> None:
    lines = day[:1000]
    refused = json.loads(lines[500])
    refusing = RefusingStore(store.backend)
    refusing.refused = refused["event_id"]
    monitor = Monitor([load_licence(DA_NANG)], refusing)
    monitor.retry = WriteRetry(monitor.metrics, first_delay=0.01, max_delay=0.02)
    monitor.process_batch(messages(lines))
    unique = {json.loads(line)["event_id"] for line in lines}
    assert store.count("events") == len(unique) - 1
    letters = store.dead_letters()
    assert [(d["kind"], d["raw"]) for d in letters] == [("unstorable", lines[500])]
    assert "Type mismatch" in letters[0]["reason"]
    assert monitor.metrics.store_writable._value.get() == 1.0  # a refused value is not an outage
