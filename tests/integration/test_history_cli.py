"""History commands (findings, audit, backtest) against a real ClickHouse server, as an operator runs them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.records import FINDING_COLUMNS, finding_row
from tests.api_fixtures import DA_NANG_PARTICIPANT, Monitored, monitored_days
from tests.helpers import DA_NANG
from tests.helpers import sandboxwatch_cli as cli
from tests.integration.server_store import server_days, settle_mutations
from tests.local_services import ClickHouseServer

monitored = server_days("h")


def test_findings_list_show_summary_and_exports(monitored: tuple[str, Monitored], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    url, days = monitored
    listed = cli("findings", "list", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows and {r["participant"] for r in rows} == {DA_NANG_PARTICIPANT}
    assert len(rows) == days.store.count("findings", DA_NANG_PARTICIPANT)
    out = tmp_path / "f.parquet"
    parquet = cli("findings", "list", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT,
                  "--format", "parquet", "--out", str(out))  # fmt: skip
    assert parquet.returncode == 0 and pq.read_table(out).num_rows == len(rows)
    csv = cli("findings", "list", "--clickhouse", url, "--severity", "critical", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("finding_id,licence,rule") and ",critical," in csv.stdout
    shown = json.loads(cli("findings", "show", rows[0]["finding_id"], "--clickhouse", url).stdout)
    assert [e["event_id"] for e in shown["evidence_events"]] == rows[0]["evidence"]
    summary = cli("findings", "summary", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT,
                  "--from", "2025-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z")  # fmt: skip
    assert summary.returncode == 1 and json.loads(summary.stdout)["compliant"] is False
    missing = cli("findings", "show", "nope", "--clickhouse", url)
    assert missing.returncode == 2 and "no finding nope" in missing.stderr


def test_audit_verify_catches_an_altered_finding_and_a_rewritten_chain(
    monitored: tuple[str, Monitored], tmp_path: Path
) -> None:
    url, days = monitored
    heads_file = tmp_path / "heads.json"
    assert cli("audit", "heads", "--clickhouse", url, "--out", str(heads_file)).returncode == 0
    clean = cli("audit", "verify", "--clickhouse", url, "--heads", str(heads_file))
    assert clean.returncode == 0 and "intact" in clean.stderr
    # A second version of one finding, softened, written straight into the table.
    store = days.store
    row = store.backend.rows(f"SELECT finding_id FROM {store.db}.findings WHERE severity = 'breach' LIMIT 1")
    target = str(row[0][0])
    findings = [json.loads(line) for line in cli("findings", "list", "--clickhouse", url).stdout.splitlines()]
    original = next(f for f in findings if f["finding_id"] == target)
    from sandboxwatch.rules_engine.findings import Finding
    from sandboxwatch.rules_engine.timestamps import parse_timestamp

    softened = Finding(
        target, original["licence"], original["rule"], original["kind"], "info", original["participant"],
        original["subject"], parse_timestamp(original["ts"]), None, None, original["clause"],
        tuple(original["evidence"]), original["message"],
    )  # fmt: skip
    store.backend.insert("findings", FINDING_COLUMNS, [finding_row(softened, parse_timestamp(original["ts"]))])
    tampered = cli("audit", "verify", "--clickhouse", url)
    assert tampered.returncode == 1
    assert target in tampered.stdout and "altered" in tampered.stdout
    assert "tampered" in tampered.stderr


def test_backtest_shows_what_a_lower_cap_would_add(monitored: tuple[str, Monitored], tmp_path: Path) -> None:
    url, _ = monitored
    stricter = tmp_path / "da-nang-v2.yaml"
    stricter.write_text(DA_NANG.read_text().replace("max: 200000000", "max: 20000000"))
    result = cli("backtest", "--licence", str(stricter), "--clickhouse", url,
                 "--from", "2025-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z", "--format", "jsonl")  # fmt: skip
    assert result.returncode == 0, result.stderr
    changes = [json.loads(line) for line in result.stdout.splitlines()]
    assert changes and all(c["change"] == "appears" and c["rule"] == "tx-cap" for c in changes)
    assert "would appear" in result.stderr and "0 would disappear" in result.stderr
    assert "reproduces" in result.stderr
    same = cli("backtest", "--licence", str(DA_NANG), "--clickhouse", url, "--live", str(DA_NANG),
               "--from", "2025-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z")  # fmt: skip
    assert same.returncode == 0 and same.stdout == "" and "0 findings would appear, 0 would disappear" in same.stderr


def test_audit_verify_on_the_server_catches_a_moved_ts_and_a_cut_tail(clickhouse: ClickHouseServer) -> None:
    """The version 4 migration and every mutation an operator with table access can make, on ClickHouse 18.16."""
    url = clickhouse.url("t" + uuid.uuid4().hex[:10])
    days = monitored_days(Store.open(url), accounts=20)
    store = days.store
    clean = cli("audit", "verify", "--clickhouse", url)
    assert clean.returncode == 0 and "intact" in clean.stderr
    assert "not checked without --heads" in clean.stderr  # says plainly what it cannot see
    columns = ", ".join(f"toString({c})" if c in ("ts", "recorded") else c for c in FINDING_COLUMNS)
    (row,) = store.backend.rows(
        f"SELECT {columns} FROM {store.db}.findings WHERE participant = '{DA_NANG_PARTICIPANT}' "
        "ORDER BY finding_id LIMIT 1"
    )
    values = dict(zip(FINDING_COLUMNS, row, strict=True))
    target = str(values["finding_id"])
    values["ts"] = datetime(2030, 1, 1, tzinfo=UTC)  # only ts_text was hashed before
    values["recorded"] = datetime.strptime(str(values["recorded"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    store.backend.command(f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id = '{target}'")
    settle_mutations(store)
    store.backend.insert("findings", FINDING_COLUMNS, [tuple(values[c] for c in FINDING_COLUMNS)])
    moved = cli("audit", "verify", "--clickhouse", url)
    assert moved.returncode == 1
    assert f"finding {target}: finding differs from what was chained (altered)" in moved.stdout
    # The newest trail entry and its finding removed together.
    (top, last) = store.backend.rows(
        f"SELECT max(seq), argMax(finding_id, seq) FROM {store.db}.finding_trail WHERE participant = 'vn-casp-pilot-01'"
    )[0]
    store.backend.command(f"ALTER TABLE {store.db}.finding_trail DELETE WHERE finding_id = '{last}'")
    store.backend.command(f"ALTER TABLE {store.db}.findings DELETE WHERE finding_id = '{last}'")
    settle_mutations(store)
    cut = cli("audit", "verify", "--clickhouse", url, "--participant", "vn-casp-pilot-01")
    assert cut.returncode == 1
    assert f"recorded a head at seq {top} (newest entries removed)" in cut.stdout


def test_summary_on_the_server_says_no_data_and_counts_dead_letters_by_event_time(
    monitored: tuple[str, Monitored],
) -> None:
    """ClickHouse 18.16 has no JSONExtract: the dead letter's event time is read with functions it has."""
    from sandboxwatch.store.records import DeadLetter

    url, days = monitored
    p = DA_NANG_PARTICIPANT
    days.store.write_dead_letters(
        [
            DeadLetter("probe/0/1", p, "amount", "bad", '{"event_id": "x1", "ts": "2021-03-10T10:00:00+07:00"}'),
            DeadLetter("probe/0/2", p, "ts", "bad", '{"event_id":"x2","ts":"2021-03-31T23:30:00-05:00"}'),
            DeadLetter("probe/0/3", p, "", "not JSON", "garbage"),
        ]
    )
    march = cli("findings", "summary", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT,
                "--from", "2021-03-01T00:00:00Z", "--to", "2021-03-31T23:59:59Z")  # fmt: skip
    assert march.returncode == 4, march.stderr
    summary = json.loads(march.stdout)
    assert summary["compliant"] is None and summary["dead_letters"] == 1 and summary["events_by_type"] == {}
    assert summary["no_data"] == f"no events of {DA_NANG_PARTICIPANT} in the period: nothing was judged"
    april = cli("findings", "summary", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT,
                "--from", "2021-04-01T00:00:00Z", "--to", "2021-04-01T23:59:59Z")  # fmt: skip
    assert april.returncode == 4 and json.loads(april.stdout)["dead_letters"] == 1
