"""The CLI contract: exit codes, output formats, stdin, and invalid lines that do not stop the check."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.cli import main
from tests.helpers import DA_NANG, account, price, trade, ts


def _write(path: Path, rows: list[dict[str, Any]], extra_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(extra_lines))
    return path


def _rows() -> list[dict[str, Any]]:
    p = "alphatrue-basal-pay"
    return [
        price(ts(hour=0), participant=p),
        account("c1", participant=p),
        trade("c1", ts(hour=3), participant=p),
    ]


def test_clean_check_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _write(tmp_path / "e.jsonl", _rows())
    assert main(["check", "--licence", str(DA_NANG), "--events", str(events)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "3 events checked" in err


def test_breach_exits_one_and_writes_jsonl_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows()
    rows.append(trade("c1", ts(hour=4), quantity="10000", participant="alphatrue-basal-pay"))
    events = _write(tmp_path / "e.jsonl", rows, ("{broken\n",))
    code = main(["check", "--licence", str(DA_NANG), "--events", str(events)])
    out, err = capsys.readouterr()
    assert code == 1
    findings = [json.loads(line) for line in out.splitlines()]
    assert [f["rule"] for f in findings] == ["invalid_event", "tx-cap"]
    assert findings[0]["severity"] == "warning" and "line 5" in findings[0]["message"]
    assert "e.jsonl:5: not valid JSON" in err
    required = {
        "finding_id",
        "rule",
        "kind",
        "severity",
        "participant",
        "subject",
        "ts",
        "observed",
        "limit",
        "clause",
        "evidence",
        "message",
    }
    assert required <= set(findings[1])
    assert findings[1]["observed"] == "260000000" and findings[1]["limit"] == "200000000"
    assert findings[1]["clause"] == "per-transaction cap"


def test_only_warnings_exit_zero(tmp_path: Path) -> None:
    events = _write(tmp_path / "e.jsonl", _rows(), ("not json\n",))
    assert main(["check", "--licence", str(DA_NANG), "--events", str(events)]) == 0


def test_unusable_inputs_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = _write(tmp_path / "e.jsonl", _rows())
    assert main(["check", "--licence", str(tmp_path / "missing.yaml"), "--events", str(events)]) == 2
    assert main(["check", "--licence", str(DA_NANG), "--events", str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(DA_NANG.read_text().replace("window: 30d", "window: 30 days"))
    assert main(["check", "--licence", str(bad), "--events", str(events)]) == 2
    assert main(["check", "--licence", str(DA_NANG), "--events", str(events), "--as-of", "tomorrow"]) == 2
    err = capsys.readouterr().err
    assert "rule 'month-cap'" in err and "field 'window'" in err


def test_licence_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["licence", "validate", str(DA_NANG)]) == 0
    assert "valid licence DN-136-PILOT-01" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(DA_NANG.read_text().replace("kind: self_trade", "kind: self_dealing"))
    assert main(["licence", "validate", str(bad)]) == 2
    assert "rule 'wash'" in capsys.readouterr().err


def test_csv_and_table_formats_and_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [*_rows(), trade("c1", ts(hour=4), counterparty_account="c1", participant="alphatrue-basal-pay")]
    events = _write(tmp_path / "e.jsonl", rows)
    out = tmp_path / "f.csv"
    main(["check", "--licence", str(DA_NANG), "--events", str(events), "--format", "csv", "--out", str(out)])
    (row,) = list(csv.DictReader(out.open()))
    assert row["rule"] == "wash" and row["evidence"] == rows[-1]["event_id"]
    main(["check", "--licence", str(DA_NANG), "--events", str(events), "--format", "table"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["TS", "SEVERITY", "RULE", "SUBJECT"]
    assert "is its own counterparty" in table[2]


def test_csv_events_input(tmp_path: Path) -> None:
    buffer = io.StringIO()
    columns = [
        "event_id",
        "type",
        "participant",
        "ts",
        "site",
        "account",
        "side",
        "base",
        "quote",
        "quantity",
        "price",
        "counterparty_account",
    ]
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerow(
        {
            "event_id": "t1",
            "type": "trade",
            "participant": "alphatrue-basal-pay",
            "ts": ts(),
            "site": "DN-XX",
            "account": "c9",
            "side": "buy",
            "base": "USDT",
            "quote": "VND",
            "quantity": "1",
            "price": "26000",
        }
    )
    path = tmp_path / "e.csv"
    path.write_text(buffer.getvalue())
    out = tmp_path / "f.jsonl"
    assert main(["check", "--licence", str(DA_NANG), "--events", str(path), "--out", str(out)]) == 1
    assert {json.loads(line)["rule"] for line in out.read_text().splitlines()} == {"sites", "kyc", "eligible"}


def test_stdin_and_as_of_through_the_console_script(tmp_path: Path) -> None:
    rows = [*_rows(), trade("c1", ts(hour=4), quantity="16000", participant="alphatrue-basal-pay")]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    command = [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(DA_NANG), "--events", "-"]
    plain = subprocess.run(command, input=text, capture_output=True, text=True, check=False)
    assert plain.returncode == 1
    assert [json.loads(line)["rule"] for line in plain.stdout.splitlines()] == ["tx-cap"]
    later = subprocess.run(
        [*command, "--as-of", "2025-10-03T00:00:00+07:00"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert [json.loads(line)["rule"] for line in later.stdout.splitlines()] == ["tx-cap", "lvtr"]


def test_finding_ids_are_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [*_rows(), trade("c1", ts(hour=4), quantity="10000", participant="alphatrue-basal-pay")]
    events = _write(tmp_path / "e.jsonl", rows, ("oops\n",))
    main(["check", "--licence", str(DA_NANG), "--events", str(events)])
    first = capsys.readouterr().out
    main(["check", "--licence", str(DA_NANG), "--events", str(events)])
    assert capsys.readouterr().out == first


def test_cli_sets_the_collector_thresholds_for_the_engine(tmp_path: Path) -> None:
    import gc

    from sandboxwatch.gc_policy import THRESHOLDS

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        main(["licence", "validate", str(DA_NANG)])
        assert gc.get_threshold() == THRESHOLDS
    finally:
        gc.set_threshold(*before)


def test_ingest_error_lines_are_shown_with_the_connectors_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A connector's ingest_error is a known type: counted as invalid, its reason shown, never 'unknown type'."""
    from sandboxwatch.ingest.exchange_events import ingest_error

    rejected = ingest_error("alphatrue-basal-pay", "binance deposits", None, "deposit 7698: no sender address", {})
    events = _write(tmp_path / "e.jsonl", [*_rows(), rejected])
    assert main(["check", "--licence", str(DA_NANG), "--events", str(events)]) == 0
    out, err = capsys.readouterr()
    findings = [json.loads(line) for line in out.splitlines()]
    assert [f["rule"] for f in findings] == ["invalid_event"]
    assert findings[0]["participant"] == "alphatrue-basal-pay"
    assert "ingest error reported by binance deposits: deposit 7698: no sender address" in findings[0]["message"]
    assert "unknown event type" not in out + err
    assert "e.jsonl:4: ingest error reported by binance deposits" in err


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_a_store_url_the_cli_cannot_use_is_one_line_and_exit_two(tmp_path: Path) -> None:
    a_file = tmp_path / "findings.db"
    a_file.write_text("")
    for url, reason in (
        (f"chdb://{a_file}", f"{a_file} is not a directory"),
        (f"chdb://{tmp_path / 'typo'}", f"{tmp_path / 'typo'} holds no embedded store"),
        (f"chdb://{tmp_path}", f"{tmp_path} holds no embedded store"),
        ("mysql://db/x", "unknown store URL 'mysql://db/x'"),
    ):
        done = _cli("findings", "list", "--clickhouse", url)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("sandboxwatch: ") and reason in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    assert not (tmp_path / "typo").exists()  # a query never creates a store where a path was mistyped


def test_summary_without_events_in_the_period_says_no_data_with_its_own_exit_code(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    setup = (
        "import json, sys\n"
        "from sandboxwatch.rules_engine.event_reader import parse_json_line\n"
        "from sandboxwatch.store.clickhouse_store import Store\n"
        "from sandboxwatch.store.records import EventRecord\n"
        "line = sys.argv[1]\n"
        "Store.open(sys.argv[2]).write_events([EventRecord(parse_json_line(line, 't', 1), line, 't:1')])\n"
    )
    event = json.dumps(account("c1", participant="alphatrue-basal-pay"))
    subprocess.run([sys.executable, "-c", setup, event, url], check=True, timeout=300)
    october = ("--from", "2025-10-01T00:00:00+07:00", "--to", "2025-10-31T00:00:00+07:00")
    judged = _cli("findings", "summary", "--clickhouse", url, "--participant", "alphatrue-basal-pay", *october)
    assert judged.returncode == 0, judged.stderr
    assert json.loads(judged.stdout)["compliant"] is True
    march = ("--from", "2025-03-01T00:00:00Z", "--to", "2025-03-31T00:00:00Z")
    empty = _cli("findings", "summary", "--clickhouse", url, "--participant", "alphatrue-basal-pay", *march)
    assert empty.returncode == 4, empty.stderr
    assert json.loads(empty.stdout)["compliant"] is None
    assert empty.stderr == "sandboxwatch: no events of alphatrue-basal-pay in the period: nothing was judged\n"
    unknown = _cli("findings", "summary", "--clickhouse", url, "--participant", "nobody", *october)
    assert unknown.returncode == 4 and json.loads(unknown.stdout)["compliant"] is None
    assert "unknown participant nobody: no events, findings or licence on record" in unknown.stderr


def test_csv_with_leading_blank_lines_is_read_as_csv_with_the_files_line_numbers(tmp_path: Path) -> None:
    rows = [
        account("c1", participant="alphatrue-basal-pay"),
        trade("c1", ts(hour=3), participant="alphatrue-basal-pay"),
    ]
    buffer = io.StringIO()
    columns = ["event_id", "type", "participant", "ts", "site", "account", "kyc_status", "investor_class",
               "bank_account_verified", "side", "base", "quote", "quantity", "price"]  # fmt: skip
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = "\n  \n" + buffer.getvalue() + "not,a,row,of,this,file\n"
    for name in ("events.csv", "events.txt"):
        path = tmp_path / name
        path.write_text(text)
        done = _cli("check", "--licence", str(DA_NANG), "--events", str(path))
        piped = subprocess.run(
            [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(DA_NANG), "--events", "-"],
            input=text, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        for run, source in ((done, str(path)), (piped, "<stdin>")):
            findings = [json.loads(line) for line in run.stdout.splitlines()]
            assert [f["rule"] for f in findings] == ["invalid_event"], run.stdout + run.stderr
            assert f"{source}:6: " in run.stderr and "2 events checked" in run.stderr, run.stderr
            assert run.returncode == 0


def test_an_ingest_error_reads_the_same_in_check_and_in_the_stream_worker(tmp_path: Path) -> None:
    """docs/events.md: the invalid event carries the connector's reason, worded the same everywhere."""
    from sandboxwatch.ingest.exchange_events import ingest_error
    from sandboxwatch.rules_engine.event_reader import parse_json_line
    from sandboxwatch.rules_engine.events import EventError
    from sandboxwatch.streams.inbound import InboundMessage, decode

    rejected = ingest_error("alphatrue-basal-pay", "binance deposits", "amount", "deposit 7698: no amount", {})
    line = json.dumps(rejected)
    from_file = parse_json_line(line, "e.jsonl", 4)
    from_stream = decode(InboundMessage("events", 0, 4, b"alphatrue-basal-pay", line.encode()))
    assert isinstance(from_file, EventError) and isinstance(from_stream, EventError)
    expected = "ingest error reported by binance deposits: deposit 7698: no amount"
    assert (from_file.field, from_file.reason) == ("amount", expected)
    assert (from_stream.field, from_stream.reason) == ("amount", expected)
