"""`check` streams an input in time order and sorts any other in bounded chunks, with the same findings;
duplicates are decided by arrival (file) order whatever the event times and chunk boundaries."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from sandboxwatch.cli import main
from sandboxwatch.rules_engine.builtin_findings import CONFLICTING_DUPLICATE
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.external_sort import ExternalSort
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.self_check import SORTED_IN_MEMORY, STREAMED, CheckResult, Records, run_check
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from tests.helpers import DA_NANG, account, da_nang, licence_with, price, trade, ts


@cache
def _day() -> tuple[str, ...]:
    return tuple(line.rstrip("\n") for line in scenario_lines(build_scenario(da_nang(), SimulationConfig(300, seed=5))))


def _id(finding: Finding) -> str:
    return finding.finding_id


def _check(
    licence: Licence, lines: list[str], streamed: bool = True, chunk_events: int = 100_000, spill_dir: str | None = None
) -> CheckResult:
    """As the CLI runs it: streamed first when the lines can be read again, else sorted at once."""
    again: Callable[[], Records] | None = (lambda: read_jsonl(lines, "f")) if streamed else None
    return run_check(
        licence, read_jsonl(lines, "f"), source="f", reread=again, chunk_events=chunk_events, spill_dir=spill_dir
    )


def test_a_day_in_time_order_is_streamed_and_finds_what_sorting_finds() -> None:
    day = list(_day())
    streamed = _check(da_nang(), day)
    in_memory = _check(da_nang(), day, streamed=False)
    assert (streamed.order, in_memory.order) == (STREAMED, SORTED_IN_MEMORY)
    assert streamed.unsorted_at == 0
    assert len(streamed.findings) >= 10 and {f.severity for f in streamed.findings} >= {"breach"}
    assert streamed.findings == in_memory.findings
    assert streamed.stats == in_memory.stats


def test_a_shuffled_day_gives_the_findings_of_the_sorted_one() -> None:
    day = list(_day())
    shuffled = day[:]
    random.Random(7).shuffle(shuffled)
    sorted_result = _check(da_nang(), day)
    shuffled_result = _check(da_nang(), shuffled)
    assert sorted_result.order == STREAMED
    assert shuffled_result.order == SORTED_IN_MEMORY and shuffled_result.unsorted_at > 0
    # The same findings; events at the same instant are judged in file order, so their findings may come
    # in another order (as before: the sort is stable).
    assert sorted(shuffled_result.findings, key=_id) == sorted(sorted_result.findings, key=_id)
    assert shuffled_result.stats == sorted_result.stats


@pytest.mark.parametrize("chunk", [1, 97, 1000])
def test_small_chunks_sort_through_runs_on_disk_with_the_same_findings(chunk: int, tmp_path: Path) -> None:
    day = list(_day())
    shuffled = day[:]
    random.Random(11).shuffle(shuffled)
    expected = _check(da_nang(), day)
    spilled = _check(da_nang(), shuffled, chunk_events=chunk, spill_dir=str(tmp_path))
    runs = -(-len(day) // chunk)
    assert spilled.order == f"sorted in {runs} runs on disk"
    assert sorted(spilled.findings, key=_id) == sorted(expected.findings, key=_id)
    assert spilled.stats == expected.stats
    assert list(tmp_path.iterdir()) == []  # the runs are removed


def test_the_merge_holds_a_bounded_number_of_runs_and_keeps_file_order_at_equal_keys(tmp_path: Path) -> None:
    rows = [price(ts(hour=h % 5), event_id=f"p{i}") for i, h in enumerate(range(200))]
    events = [event_from_dict(row) for row in rows]
    with ExternalSort(chunk=7, directory=str(tmp_path), fan_in=3) as sorter:
        for arrival, event in enumerate(events):
            sorter.add((event.ts, 0, arrival, event, arrival + 1, False))
        out = list(sorter.sorted())
    assert sorter.spilled_runs == 29
    assert [(e[0], e[2]) for e in out] == sorted((e.ts, i) for i, e in enumerate(events))
    assert [e[3].event_id for e in out[:3]] == ["p0", "p5", "p10"]
    assert out[0][3].digest == events[0].digest and out[0][3] == events[0]
    # Read back from the runs, the times share the parser's tzinfo object (the engine's fast comparison).
    zone = events[0].ts.tzinfo
    assert all(entry[0].tzinfo is zone and entry[3].ts.tzinfo is zone for entry in out)


CAP = licence_with("{id: cap, kind: max_transaction_value, severity: breach, clause: c, max: 100000000}")


def _duplicate_lines(second_hour: int) -> list[str]:
    """The first arrival of d1 is a breach (260M VND over a 100M cap); the second arrival under the same
    id is small, at an event time before, at or after the first."""
    rows = [
        price(),
        account("c1"),
        trade("c1", ts(hour=5), quantity="10000", event_id="d1"),
        trade("c1", ts(hour=6), quantity="1", event_id="x1"),
        trade("c1", ts(hour=second_hour), quantity="1", event_id="d1"),
    ]
    return [json.dumps(row) for row in rows]


@pytest.mark.parametrize("second_hour", [2, 4, 5, 6, 9])
@pytest.mark.parametrize(
    ("streamed", "chunk"), [(True, 100), (False, 100), (False, 1), (False, 2), (False, 3)], ids=str
)
def test_a_reused_id_never_hides_the_breach_of_the_version_that_arrived_first(
    second_hour: int, streamed: bool, chunk: int, tmp_path: Path
) -> None:
    result = _check(CAP, _duplicate_lines(second_hour), streamed, chunk_events=chunk, spill_dir=str(tmp_path))
    found = [(f.rule, f.severity, f.evidence, f.ts) for f in result.findings]
    breach = ("cap", "breach", ("d1",), datetime(2025, 10, 1, 5, tzinfo=UTC) + timedelta(hours=-7))
    conflict = (
        CONFLICTING_DUPLICATE,
        "warning",
        ("d1",),
        datetime(2025, 10, 1, second_hour, tzinfo=UTC) + timedelta(hours=-7),
    )
    assert sorted(found, key=str) == sorted([breach, conflict], key=str)
    assert (result.stats.duplicates, result.stats.conflicts) == (1, 1)


def test_the_cli_sorts_unsorted_stdin_and_says_where_order_broke(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import io

    day = list(_day())
    late = day.pop(len(day) // 2)
    day.append(late)  # one event hours behind the newest, beyond the allowed lateness
    in_order = tmp_path / "in-order.jsonl"
    in_order.write_text("\n".join(_day()) + "\n")
    assert main(["check", "--licence", str(DA_NANG), "--events", str(in_order)]) == 1
    expected_out = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(day) + "\n"))
    assert main(["check", "--licence", str(DA_NANG), "--events", "-"]) == 1
    captured = capsys.readouterr()
    assert f"<stdin>: not in event-time order from line {len(day)} on; sorted in memory" in captured.err
    assert sorted(captured.out.splitlines()) == sorted(expected_out.splitlines())
