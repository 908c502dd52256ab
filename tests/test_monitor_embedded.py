"""The monitor and store without a broker: chdb (real embedded ClickHouse) behind the same code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.sql_text import in_list, quote
from sandboxwatch.streams.engine_snapshots import Manifest, licence_digest, plan, restore, split
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from tests.helpers import DA_NANG

pytest.importorskip("chdb")


@pytest.fixture(scope="module")
def day() -> list[str]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=120, seed=4))
    return [line.rstrip("\n") for line in scenario_lines(scenario)]


def messages(lines: list[str], start: int = 0) -> list[InboundMessage]:
    out = []
    for offset, line in enumerate(lines, start):
        key = json.loads(line)["participant"].encode() if line.startswith("{") else None
        out.append(InboundMessage("events", 0, offset, key, line.encode()))
    return out


def test_quoting_survives_hostile_text() -> None:
    assert quote("a'b\\c\n") == "'a\\'b\\\\c\\n'"
    assert in_list([]) == "('')"


def test_migrations_apply_once(store: Store) -> None:
    assert store.migrate() == []


def test_the_monitor_finds_what_the_self_check_finds_and_stores_each_once(store: Store, day: list[str]) -> None:
    expected = {f.finding_id for f in run_check(load_licence(DA_NANG), read_jsonl(day, "day")).findings}
    monitor = Monitor([load_licence(DA_NANG)], store)
    batch = messages(day)
    for i in range(0, len(batch), 500):
        monitor.process_batch(batch[i : i + 500])
    assert set(store.finding_ids()) == expected
    # The same batches again (a replay after a restart) add nothing anywhere.
    fresh = Monitor([load_licence(DA_NANG)], store)
    for i in range(0, len(batch), 500):
        outcome = fresh.process_batch(batch[i : i + 500])
        assert outcome.new_findings == []
    assert store.raw_count("findings") == len(expected)
    assert store.raw_count("events") == len({json.loads(line)["event_id"] for line in day})
    counted = fresh.metrics.registry.get_sample_value
    assert (
        counted(
            "sandboxwatch_findings_total",
            {
                "participant": "alphatrue-basal-pay",
                "licence": "DN-136-PILOT-01",
                "rule": "kyc",
                "kind": "kyc_required",
                "severity": "breach",
            },
        )
        == 0.0
    )


def test_bad_messages_become_dead_letters_and_invalid_event_findings(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    good = next(json.loads(line) for line in day if '"type":"deposit"' in line)
    bad = [
        b"\xff\xfe not utf-8",
        b"[1, 2]",
        json.dumps({**good, "event_id": "q1", "amount": 12.5, "type": "deposit"}).encode(),
        json.dumps({**good, "event_id": "q2", "participant": "stranger"}).encode(),
    ]
    batch = [InboundMessage("events", 1, i, good["participant"].encode(), raw) for i, raw in enumerate(bad)]
    outcome = monitor.process_batch(batch)
    kinds = sorted(letter.kind for letter in outcome.dead_letters)
    assert kinds == ["invalid_event"] * 3 + ["unlicensed_participant"]
    stored = sorted((d["source"], d["kind"]) for d in store.dead_letters())
    assert stored == [(f"events/1/{i}", "invalid_event") for i in range(3)] + [("events/1/3", "unlicensed_participant")]
    assert [f.kind for f in outcome.findings] == ["invalid_event"] * 3  # the stranger's event is no finding
    sample = monitor.metrics.registry.get_sample_value
    assert sample("sandboxwatch_dead_letters_total", {"reason": "invalid_event"}) == 3.0
    assert sample("sandboxwatch_dead_letters_total", {"reason": "unlicensed_participant"}) == 1.0


def test_snapshots_restore_the_same_engine_and_survive_a_torn_write(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day[:3000]))
    engine = monitor.engines["alphatrue-basal-pay"]
    manifest, writes = plan(engine, "alphatrue-basal-pay", None, {0: 2999})
    table = {k: v for k, v in writes if v is not None}
    restored = restore(Manifest.from_bytes("alphatrue-basal-pay", table[b"alphatrue-basal-pay#manifest"]), table.get)
    assert restored is not None and licence_digest(restored) == licence_digest(engine)
    rest = messages(day[3000:], 3000)
    original = monitor.process_batch(rest)
    again = Monitor([load_licence(DA_NANG)], store)
    again.engines["alphatrue-basal-pay"] = restored
    resumed = again.process_batch(rest)
    assert resumed.events == original.events > 0
    assert [f.finding_id for f in resumed.findings] == [f.finding_id for f in original.findings]
    assert original.findings, "the rest of the day holds injected violations"
    # A chunk missing (a crash between writes) must not restore a half engine.
    first_chunk = next(k for k, _ in writes if b"#1#" in k)
    del table[first_chunk]
    assert restore(manifest, table.get) is None
    assert len(split(b"x" * 2_000_000)) == 3


def test_utilisation_is_reported_for_participant_level_limits(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    monitor.process_batch(messages(day))
    used = {(rule, limit): ratio for rule, limit, ratio in monitor.engines["alphatrue-basal-pay"].utilisation()}
    assert ("users", "max") in used and used[("users", "max")] > 0
    sample = monitor.metrics.registry.get_sample_value
    labels = {"participant": "alphatrue-basal-pay", "rule": "users", "limit": "max"}
    assert sample("sandboxwatch_limit_utilisation_ratio", labels) == float(used[("users", "max")])


def test_stored_events_can_rebuild_an_engine(store: Store, day: list[str]) -> None:
    monitor = Monitor([load_licence(DA_NANG)], store)
    first = monitor.process_batch(messages(day))
    rebuilt = monitor.rebuild("alphatrue-basal-pay")
    assert rebuilt.stats.events == first.events
    assert Path(DA_NANG).exists()


def test_a_message_whose_participant_cannot_be_read_gets_a_finding_naming_its_offset_and_partition(
    store: Store,
) -> None:
    """With one licence loaded, a message nobody can attribute is that licence's (as check reports every
    bad line of a file); the finding names the message by offset and partition, never as a file line."""
    licence = load_licence(DA_NANG)
    monitor = Monitor([licence], store)
    outcome = monitor.process_batch([InboundMessage("events", 2, 7, None, b"\xff garbage")])
    assert [letter.kind for letter in outcome.dead_letters] == ["invalid_event"]
    (finding,) = outcome.findings
    assert (finding.kind, finding.participant) == ("invalid_event", licence.participant)
    assert finding.message == "Invalid event at offset 7 of partition 2: not valid UTF-8: byte 0xFF at character 1."
    same_offset_other_partition = monitor.process_batch([InboundMessage("events", 3, 7, None, b"\xff garbage")])
    assert same_offset_other_partition.findings[0].finding_id != finding.finding_id


def test_with_several_licences_an_unattributable_message_is_counted_where_no_finding_can_name_it(
    store: Store,
) -> None:
    from tests.helpers import NATIONAL

    monitor = Monitor([load_licence(DA_NANG), load_licence(NATIONAL)], store)
    outcome = monitor.process_batch(
        [
            InboundMessage("events", 0, 1, None, b"not json"),
            InboundMessage("events", 0, 2, None, b'{"participant": "stranger", "type": "trade"}'),
        ]
    )
    assert [letter.kind for letter in outcome.dead_letters] == ["invalid_event", "invalid_event"]
    assert outcome.findings == []
    sample = monitor.metrics.registry.get_sample_value
    assert sample("sandboxwatch_unattributed_invalid_events_total", {"reason": "no_participant"}) == 1.0
    assert sample("sandboxwatch_unattributed_invalid_events_total", {"reason": "unlicensed"}) == 1.0
    monitor.process_batch([InboundMessage("events", 0, 1, None, b"not json")])  # re-delivered: stored once
    assert sample("sandboxwatch_unattributed_invalid_events_total", {"reason": "no_participant"}) == 1.0


def test_a_file_line_reported_by_up_gives_the_finding_check_gives(store: Store, tmp_path: Path) -> None:
    """``up`` publishes a bad line of its file as an ingest_error naming the file and line: the stream's
    finding is check's, same id and text."""
    from sandboxwatch.replay_file import read_replay

    licence = load_licence(DA_NANG)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'\n{"event_id": "e1", "participant": "alphatrue-basal-pay", "type": "trade"}\n\xfe\n')
    expected = run_check(licence, read_jsonl(path.read_text("utf-8", "surrogateescape").splitlines(), str(path)))
    replay = read_replay(str(path), None, licence.participant)
    assert replay.lines == [2, 3] and replay.usable == 0
    batch = [InboundMessage("events", 0, i, key, value) for i, (key, value) in enumerate(replay.messages)]
    outcome = Monitor([licence], store).process_batch(batch)
    assert [(f.finding_id, f.message) for f in outcome.findings] == [
        (f.finding_id, f.message) for f in expected.findings
    ]
    assert [f.message for f in outcome.findings] == [
        "Invalid event at line 2: field 'ts': required field is missing.",
        "Invalid event at line 3: not valid UTF-8: byte 0xFE at character 1.",
    ]
