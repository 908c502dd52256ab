"""What ``up`` publishes for a file (``replay_file``), run through the real monitor and store (chdb), stores
the findings ``check`` reports for the same file, with the same ids: duplicates by file order, whatever
their event times, and each conflicting version reported once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandboxwatch.replay_file import read_replay
from sandboxwatch.rules_engine.builtin_findings import CONFLICTING_DUPLICATE
from sandboxwatch.rules_engine.event_reader import open_events, read_events
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.inbound import InboundMessage
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.publish import consecutive_batches
from tests.helpers import PARTICIPANT, account, licence_with, price, trade, ts

pytest.importorskip("chdb")

CAP = licence_with("{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 100000000}")


def check_ids(licence: Licence, path: Path, fmt: str | None = None) -> list[str]:
    with open_events(str(path), fmt) as (lines, source, chosen):
        result = run_check(licence, read_events(lines, source, chosen), source=source)
    return sorted(f.finding_id for f in result.findings)


def up_ids(licence: Licence, path: Path, store: Store, fmt: str | None = None) -> list[str]:
    """As ``up --once`` runs it, without the broker: the replay's messages in publishing order (batched as
    ``publish_replay`` batches them) through the stream worker's monitor into the store."""
    replay = read_replay(str(path), fmt, licence.participant)
    monitor = Monitor([licence], store)
    batches = [message for message, _ in consecutive_batches(replay.messages)]
    monitor.process_batch([InboundMessage("events", 0, offset, k, v) for offset, (k, v) in enumerate(batches)])
    monitor.flush()
    return sorted(store.finding_ids())


def _lines(*rows: dict[str, object]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.mark.parametrize("second_hour", [2, 5, 9])
def test_a_later_copy_with_an_earlier_time_never_hides_the_first_copys_breach(
    second_hour: int, tmp_path: Path, store: Store
) -> None:
    big = trade("c1", ts(hour=5), quantity="10000", event_id="d1")  # 260M VND: over the 100M cap
    small = trade("c1", ts(hour=second_hour), quantity="1", event_id="d1")
    other = trade("c1", ts(hour=1), quantity="2", event_id="d1")
    path = tmp_path / "events.jsonl"
    # d1 three times more: the small version again (a re-delivery of a conflicting version), another
    # version, and the first copy again (a re-delivery).
    x1 = trade("c1", ts(hour=6), quantity="1")
    path.write_text(_lines(price(), account("c1"), big, small, x1, small, other, big))
    expected = check_ids(CAP, path)
    with open_events(str(path), None) as (lines, source, chosen):
        found = run_check(CAP, read_events(lines, source, chosen), source=source).findings
    assert sorted((f.rule, f.evidence) for f in found) == [
        ("cap", ("d1",)),
        (CONFLICTING_DUPLICATE, ("d1",)),
        (CONFLICTING_DUPLICATE, ("d1",)),
    ]
    assert up_ids(CAP, path, store) == expected


def test_the_replay_publishes_a_later_copy_after_the_first(tmp_path: Path) -> None:
    first = trade("c1", ts(hour=5), event_id="d1")
    later = trade("c1", ts(hour=2), quantity="1", event_id="d1")
    path = tmp_path / "events.jsonl"
    foreign = price(ts(hour=4), participant="q", event_id="d1")  # another participant's price: another key
    path.write_text(_lines(first, trade("c1", ts(hour=3), event_id="x1"), later, foreign))
    replay = read_replay(str(path), None, PARTICIPANT)
    rows = [json.loads(value) for _, value in replay.messages]
    assert [(r["event_id"], r["participant"], r["ts"][11:13]) for r in rows] == [
        ("x1", PARTICIPANT, "03"),
        ("d1", "q", "04"),
        ("d1", PARTICIPANT, "05"),
        ("d1", PARTICIPANT, "02"),
    ]
    assert replay.lines == [2, 4, 1, 3]


def test_csv_rows_whose_cells_join_to_the_same_text_are_a_conflict_in_both(tmp_path: Path, store: Store) -> None:
    """Cells "DN,SP2" and "c1" against "DN" and "SP2,c1": the same text joined by commas, different rows."""
    columns = "event_id,type,participant,ts,site,account,kyc_status,investor_class"
    first = f'a1,account,{PARTICIPANT},{ts(hour=1)},"DN,SP2",c1,verified,domestic'
    other = f'a1,account,{PARTICIPANT},{ts(hour=1)},DN,"SP2,c1",verified,domestic'
    path = tmp_path / "accounts.csv"
    path.write_text("\n".join([columns, first, other, first]) + "\n")
    with open_events(str(path), None) as (lines, source, chosen):
        result = run_check(CAP, read_events(lines, source, chosen), source=source)
    assert [f.kind for f in result.findings] == [CONFLICTING_DUPLICATE]
    assert (result.stats.duplicates, result.stats.conflicts) == (2, 1)
    assert up_ids(CAP, path, store) == [f.finding_id for f in result.findings]


def test_a_jsonl_lines_digest_is_still_the_crc_of_its_text() -> None:
    """Digests of events already stored (read from lines) are unchanged: a replayed stored line dedupes."""
    import zlib

    from sandboxwatch.rules_engine.event_reader import parse_json_line

    line = json.dumps(trade("c1", ts(hour=5), event_id="d1"))
    event = parse_json_line(line, "s", 1)
    assert not isinstance(event, EventError)
    assert event.digest == zlib.crc32(line.encode("utf-8"))


def test_a_line_with_a_repeated_key_gives_up_and_check_the_same_invalid_event(tmp_path: Path, store: Store) -> None:
    good = trade("c1", ts(hour=5), event_id="t1")
    bad = json.dumps(trade("c1", ts(hour=6), event_id="t2"))[:-1] + ', "quantity": "999999999"}'
    path = tmp_path / "events.jsonl"
    path.write_text(_lines(price(), account("c1"), good) + bad + "\n")
    with open_events(str(path), None) as (lines, source, chosen):
        result = run_check(CAP, read_events(lines, source, chosen), source=source)
    assert [(e.line, e.field) for e in result.errors] == [(4, "quantity")]
    assert [f.kind for f in result.findings] == ["invalid_event"]
    assert up_ids(CAP, path, store) == [f.finding_id for f in result.findings]
    assert store.count("dead_letters") == 1
