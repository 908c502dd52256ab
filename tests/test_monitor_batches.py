"""Batch messages (docs/events.md, "Stream messages") through the monitor over the embedded store: one Kafka
message carrying many events of one participant as JSON Lines behaves, event by event, like as many
single-event messages: the same findings, each event stored once, a bad line dead-lettered alone."""

from __future__ import annotations

import json

import pytest

from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.records import EventRecord
from sandboxwatch.streams.app import event_chunks
from sandboxwatch.streams.inbound import (
    MAX_BATCH_BYTES,
    MAX_BATCH_LINES,
    InboundMessage,
    LineError,
    decode_all,
    is_batch,
)
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.publish import batch_messages, line_messages, participant_of, polls
from tests.helpers import DA_NANG

pytest.importorskip("chdb")

PARTICIPANT = "alphatrue-basal-pay"


@pytest.fixture(scope="module")
def day() -> list[str]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=120, seed=4))
    return [line.rstrip("\n") for line in scenario_lines(scenario)]


def batched(lines: list[str], topic: str = "events") -> list[InboundMessage]:
    """What publish_lines sends, as consumed messages of one partition."""
    out: list[InboundMessage] = []
    for poll in polls(lines):
        for key, value in line_messages(poll):
            out.append(InboundMessage(topic, 0, len(out), key, value))
    return out


def test_batched_messages_find_what_the_self_check_finds_and_store_each_event_once(
    store: Store, day: list[str]
) -> None:
    expected = {f.finding_id for f in run_check(load_licence(DA_NANG), read_jsonl(day, "day")).findings}
    assert expected
    messages = batched(day)
    assert len(messages) < len(day) // 100, "the day travels in batches"
    monitor = Monitor([load_licence(DA_NANG)], store)
    outcomes = [monitor.process_batch(messages[i : i + 5]) for i in range(0, len(messages), 5)]
    monitor.flush()
    assert sum(o.lines for o in outcomes) == len(day)
    assert set(store.finding_ids()) == expected
    unique = {json.loads(line)["event_id"] for line in day}
    assert store.raw_count("events") == len(unique)
    assert store.count("dead_letters") == 0
    # Stored events name their message and line, so a replayed stored event points at its source.
    sources = {str(r[0]) for r in store.backend.rows(f"SELECT source FROM {store.db}.events")}
    assert "events/0/0:1" in sources and "events/0/0:2" in sources
    # A redelivery of every batch (a restart from older offsets) adds nothing, event by event.
    again = Monitor([load_licence(DA_NANG)], store)
    for i in range(0, len(messages), 5):
        assert again.process_batch(messages[i : i + 5]).new_findings == []
    assert store.raw_count("findings") == len(expected)
    assert store.raw_count("events") == len(unique)


def test_a_bad_line_inside_a_batch_is_dead_lettered_alone_with_its_line(store: Store, day: list[str]) -> None:
    good = [line for line in day if '"type":"deposit"' in line][:3]
    bad_json = '{"event_id": "b1", "type": "trade"'
    bad_field = json.dumps({**json.loads(good[0]), "event_id": "b2", "amount": 12.5})
    value = "\n".join([good[0], bad_json, good[1], bad_field, "", good[2]]).encode()
    value = value.replace(b"b1", b"b1\xff")  # and not UTF-8: only this line is refused for it
    message = InboundMessage("events", 2, 40, PARTICIPANT.encode(), value)
    monitor = Monitor([load_licence(DA_NANG)], store)
    outcome = monitor.process_batch([message])
    assert outcome.lines == 5 and outcome.events == 3
    letters = {d["source"]: d for d in store.dead_letters()}
    assert set(letters) == {"events/2/40:2", "events/2/40:4"}
    assert letters["events/2/40:2"]["reason"] == "not valid UTF-8: byte 0xFF at character 17"
    assert letters["events/2/40:4"]["raw"] == bad_field and letters["events/2/40:4"]["field"] == "amount"
    assert {d["kind"] for d in letters.values()} == {"invalid_event"}
    stored = {str(r[0]): str(r[1]) for r in store.backend.rows(f"SELECT event_id, source FROM {store.db}.events")}
    ids = [json.loads(line)["event_id"] for line in good]
    assert stored == {ids[0]: "events/2/40:1", ids[1]: "events/2/40:3", ids[2]: "events/2/40:6"}
    assert sum(f.kind == "invalid_event" for f in outcome.findings) == 2
    assert monitor.metrics.dead_letters.labels("invalid_event")._value.get() == 2.0


def test_lines_of_another_participant_in_a_batch_are_dead_lettered_never_judged(store: Store, day: list[str]) -> None:
    deposit = json.loads(next(line for line in day if '"type":"deposit"' in line))
    own = json.dumps({**deposit, "event_id": "own-1"})
    stranger = json.dumps({**deposit, "event_id": "x-1", "participant": "stranger"})
    value = f"{own}\n{stranger}".encode()
    monitor = Monitor([load_licence(DA_NANG)], store)
    outcome = monitor.process_batch([InboundMessage("events", 0, 7, PARTICIPANT.encode(), value)])
    assert outcome.events == 1
    (letter,) = store.dead_letters()
    assert (letter["source"], letter["field"], letter["raw"]) == ("events/0/7:2", "participant", stranger)
    assert "a batch holds the events of one participant" in letter["reason"]
    assert {str(r[0]) for r in store.backend.rows(f"SELECT event_id FROM {store.db}.events")} == {"own-1"}
    # Unkeyed, the batch is its first event's participant's: the same line is foreign there too.
    outcome = monitor.process_batch([InboundMessage("events", 0, 8, None, value)])
    assert outcome.duplicates == 1 and [d.source for d in outcome.dead_letters] == ["events/0/8:2"]
    # The licensed participant's line under a stranger's key is refused the same way, not judged as its.
    own2 = json.dumps({**deposit, "event_id": "own-2"})
    outcome = monitor.process_batch([InboundMessage("events", 0, 9, b"stranger", f"{stranger}\n{own2}".encode())])
    assert [d.source for d in outcome.dead_letters] == ["events/0/9:1", "events/0/9:2"]
    assert {d.kind for d in outcome.dead_letters} == {"invalid_event", "unlicensed_participant"}
    assert "own-2" not in {str(r[0]) for r in store.backend.rows(f"SELECT event_id FROM {store.db}.events")}


def test_single_event_messages_from_other_producers_stay_valid(day: list[str]) -> None:
    line = next(line for line in day if '"type":"trade"' in line)
    pretty = json.dumps(json.loads(line), indent=2).encode()
    for value in (line.encode(), line.encode() + b"\n", pretty):
        assert not is_batch(value)
        (record,) = decode_all(InboundMessage("events", 0, 3, None, value))
        assert isinstance(record, EventRecord) and record.source == "events/0/3"


def test_a_message_past_the_batch_bound_is_refused_whole(day: list[str]) -> None:
    value = "\n".join(day[: MAX_BATCH_LINES + 1]).encode()
    (item,) = decode_all(InboundMessage("events", 0, 5, PARTICIPANT.encode(), value))
    assert isinstance(item, LineError) and item.source == "events/0/5"
    assert "more than 1000 lines" in item.error.reason


def test_producers_batch_one_participant_per_message_within_the_bounds() -> None:
    long = b"{" + b"x" * 10_000 + b"}"
    keyed = [(b"a", b'{"n":%d}' % i) for i in range(2500)] + [(b"b", long)] * 120 + [(None, b"not json")]
    keyed.insert(3, (b"b", b'{"first":1}'))
    messages = batch_messages(keyed)
    for _, value in messages:
        lines = value.split(b"\n")
        assert len(lines) <= MAX_BATCH_LINES and len(value) <= MAX_BATCH_BYTES
    a = [m for k, m in messages if k == b"a"]
    assert [len(m.split(b"\n")) for m in a] == [1000, 1000, 500]
    assert b"\n".join(a).split(b"\n") == [b'{"n":%d}' % i for i in range(2500)]  # in order
    b = [m for k, m in messages if k == b"b"]
    assert b[0].startswith(b'{"first":1}\n') and sum(len(m.split(b"\n")) for m in b) == 121
    assert messages[-1] == (None, b"not json")


def test_the_worker_hands_the_monitor_runs_of_about_batch_size_events() -> None:
    value = b"\n".join([b"{}"] * 400)
    taken = [InboundMessage("events", 0, i, b"p", value if i % 2 else b"{}") for i in range(10)]
    chunks = event_chunks(taken, 1000)
    assert [m.offset for chunk in chunks for m in chunk] == list(range(10))
    assert [sum((m.value or b"").count(b"\n") + 1 for m in chunk) for chunk in chunks] == [1203, 802]
    assert participant_of('{"participant": "\\ud800"}') is None and participant_of('{"participant":"p"}') == b"p"
