"""`sandboxwatch check` gives byte for byte the output it gave before its speed work (issue 18).

The input is a committed simulated day (3,000 events of the Da Nang pilot, every kind of injected
violation) with what a real file also holds: re-deliveries, conflicting duplicates under a re-used id,
invalid lines, another participant's events and an event after the licence term. The expected outputs
were written by the code before the throughput changes; a change that alters any finding, its order,
its wording or the summary fails here. Regenerate them (``python -m tests.test_check_golden``) only for
an intended change of what `check` reports, and say so in the commit."""

from __future__ import annotations

import gzip
import io
import json
import random
import sys
from pathlib import Path

import pytest

from sandboxwatch.cli import main
from sandboxwatch.finding_output import write_jsonl
from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.events import Event, FundsEvent
from sandboxwatch.rules_engine.external_sort import _read_run, _write_run
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.self_check import run_check
from tests.helpers import DA_NANG

HERE = Path(__file__).resolve().parent / "fixtures" / "check_golden"
DAY = HERE / "day.jsonl.gz"
AS_OF = "2025-12-31T00:00:00+07:00"


def _in_order() -> list[str]:
    return gzip.decompress(DAY.read_bytes()).decode("utf-8").splitlines()


def _shuffled() -> list[str]:
    lines = _in_order()
    random.Random(3).shuffle(lines)
    return lines


def _cli(
    args: list[str], lines: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code = main(["check", "--licence", str(DA_NANG), "--events", "-", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _expected(name: str) -> tuple[int, str, str]:
    meta = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    out = (HERE / f"{name}.out.jsonl").read_text(encoding="utf-8")
    return meta["exit"], out, meta["stderr"]


def test_the_input_holds_what_it_is_meant_to() -> None:
    lines = _in_order()
    assert len(lines) == 3029
    _, out, err = _expected("in_order")
    rules = {json.loads(line)["rule"] for line in out.splitlines()}
    assert {"invalid_event", "conflicting_duplicate", "period", "structuring", "lvtr", "month-cap", "wash"} <= rules
    assert "3026 events checked against DN-136-PILOT-01 (3 invalid, 26 duplicate, 2 of other participants)" in err
    assert "not in event-time order" not in err  # the in-order day takes the streaming path


def test_a_day_in_time_order_streams_to_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    got = _cli([], _in_order(), monkeypatch, capsys)
    assert got == _expected("in_order")


def test_a_shuffled_day_sorted_in_memory_gives_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    got = _cli(["--as-of", AS_OF], _shuffled(), monkeypatch, capsys)
    assert got == _expected("shuffled")


def test_sorting_through_runs_on_disk_gives_the_same_findings_in_the_same_order(tmp_path: Path) -> None:
    from sandboxwatch.rules_engine.timestamps import parse_timestamp

    result = run_check(
        load_licence(DA_NANG),
        read_jsonl(_shuffled(), "<stdin>"),
        parse_timestamp(AS_OF),
        "<stdin>",
        chunk_events=250,
        spill_dir=str(tmp_path),
    )
    assert result.order == "sorted in 13 runs on disk"
    out = io.StringIO()
    write_jsonl(result.findings, out)
    assert out.getvalue() == _expected("shuffled")[1]


def test_every_event_of_the_day_survives_a_run_on_disk_whole(tmp_path: Path) -> None:
    """The sort's spill format (attrgetter reducers, travel-rule parties included) gives back equal events
    with their line digests, so the findings of a sorted file cannot depend on whether it spilled."""
    events = [item for _, item in read_jsonl(_in_order(), "f") if isinstance(item, Event)]
    assert {e.type for e in events} >= {"trade", "deposit", "withdrawal", "transfer", "price", "account", "reserve"}
    assert any(isinstance(e, FundsEvent) and e.travel_rule is not None for e in events)
    entries = [(e.ts, 0, i, e, i + 1, False) for i, e in enumerate(events)]
    back = list(_read_run(_write_run(entries, str(tmp_path))))
    assert [entry[3] for entry in back] == events
    assert [entry[3].digest for entry in back] == [e.digest for e in events]
    assert all(e.digest for e in events)
    assert list(tmp_path.iterdir()) == []


def _build_day() -> list[str]:
    """The committed input: a simulated day plus the irregularities of a real file, at fixed places."""
    from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines

    licence = load_licence(DA_NANG)
    config = SimulationConfig(60, seed=23, target_events=3000)
    lines = [line.rstrip("\n") for line in scenario_lines(build_scenario(licence, config))]
    rng = random.Random(23)
    # (position in the simulated day, line to insert there), applied from the end so positions hold.
    inserts: list[tuple[int, str]] = []
    # Re-deliveries: the same bytes again, a few lines later (within the allowed lateness).
    inserts += [(index + 3, lines[index]) for index in rng.sample(range(100, 2500), 15)]
    # Conflicting duplicates: a re-used id with other content, a few lines later.
    trades = [i for i, line in enumerate(lines) if '"type":"trade"' in line]
    for index in rng.sample(trades[:600], 8):
        row = json.loads(lines[index])
        row["quantity"] = str(int(float(row["quantity"])) + 7)
        inserts.append((index + 4, json.dumps(row, separators=(",", ":"))))
    # Invalid lines, another participant's trade and price (neither counts: it names no publisher), after the term.
    inserts.append((40, '{"event_id":"bad-1","type":"trade"'))
    inserts.append((900, '{"event_id":"bad-2","type":"trade","participant":"alphatrue-basal-pay","ts":"yesterday"}'))
    bad_3 = {"event_id": "bad-3", "type": "deposit", "participant": "alphatrue-basal-pay", "amount": 1.5}
    inserts.append((1800, json.dumps(bad_3 | {"ts": "2025-11-08T12:00:00+07:00"}, separators=(",", ":"))))
    at = next(i for i in trades if i >= 1200)
    other = json.loads(lines[at])
    other.update(participant="someone-else", event_id="other-1")
    inserts.append((at + 1, json.dumps(other, separators=(",", ":"))))
    price = json.loads(next(line for line in lines[1290:] if '"type":"price"' in line))
    price.update(participant="someone-else", event_id="other-price-1", ts=json.loads(lines[1299])["ts"])
    inserts.append((1300, json.dumps(price, separators=(",", ":"))))
    out = list(lines)
    for position, line in sorted(inserts, key=lambda insert: insert[0], reverse=True):
        out.insert(position, line)
    after = json.loads(lines[-1])
    after.update(event_id="after-term-1", ts="2029-01-02T10:00:00+07:00")
    out.append(json.dumps(after, separators=(",", ":")))
    return out


def _regenerate() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    DAY.write_bytes(gzip.compress(("\n".join(_build_day()) + "\n").encode("utf-8"), 9, mtime=0))

    for name, lines, args in (("in_order", _in_order(), []), ("shuffled", _shuffled(), ["--as-of", AS_OF])):
        out, err = io.StringIO(), io.StringIO()
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = io.StringIO("\n".join(lines) + "\n"), out, err
        try:
            code = main(["check", "--licence", str(DA_NANG), "--events", "-", *args])
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
        (HERE / f"{name}.out.jsonl").write_text(out.getvalue(), encoding="utf-8")
        meta = {"exit": code, "stderr": err.getvalue()}
        (HERE / f"{name}.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _regenerate()
