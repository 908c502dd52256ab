"""`sandboxwatch cases list|verify` and `sandboxwatch report monthly` against a real ClickHouse server, as an
operator runs them: the case record's chain is verified, a tampered transition fails it, and the monthly
report is written as PDF and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from pypdf import PdfReader

from sandboxwatch.api.monthly_report import month_bounds
from sandboxwatch.store.case_trail import CaseTrail
from sandboxwatch.store.history import Scope
from tests.api_fixtures import DA_NANG_PARTICIPANT, Monitored
from tests.helpers import sandboxwatch_cli as cli
from tests.integration.server_store import server_days, settle_mutations

MONTH = "2025-11"  # the simulated Da Nang day (seed 5) falls in it


monitored = server_days("k")


def test_cases_list_verify_and_a_tampered_transition(monitored: tuple[str, Monitored]) -> None:
    url, days = monitored
    listed = cli("cases", "list", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT, "--state", "open")
    assert listed.returncode == 0, listed.stderr
    cases = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(cases) == days.store.count("findings", DA_NANG_PARTICIPANT)
    assert {c["state"] for c in cases} == {"open"}
    trail = CaseTrail(days.store.backend, days.store.db)
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    first, second = cases[0]["finding_id"], cases[1]["finding_id"]
    trail.append(DA_NANG_PARTICIPANT, first, lambda _: {"action": "acknowledge", "from_state": "open",
                 "to_state": "acknowledged"}, "sbv-desk", "regulator", at)  # fmt: skip
    trail.append(DA_NANG_PARTICIPANT, second, lambda _: {"action": "resolve", "from_state": "open",
                 "to_state": "resolved", "resolution": "remedied", "reason": "limit lowered"}, "sbv-desk",
                 "regulator", at)  # fmt: skip
    since, until = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)
    unresolved = trail.unresolved_per_day(Scope(), [DA_NANG_PARTICIPANT], since, until)
    assert sum(n for *_, n in unresolved) == len(cases) - 1  # the resolved one left out, on ClickHouse 18.16 too
    acknowledged = cli("cases", "list", "--clickhouse", url, "--state", "acknowledged")
    assert [json.loads(line)["finding_id"] for line in acknowledged.stdout.splitlines()] == [first]
    intact = cli("cases", "verify", "--clickhouse", url)
    assert intact.returncode == 0 and "intact (2 chained transitions)" in intact.stderr, intact.stderr

    days.store.backend.command(
        f"ALTER TABLE {days.store.db}.case_transitions UPDATE resolution = 'false_positive' WHERE seq = 2"
    )
    settle_mutations(days.store)
    tampered = cli("cases", "verify", "--clickhouse", url)
    assert tampered.returncode == 1
    assert tampered.stdout.splitlines() == [
        f"{DA_NANG_PARTICIPANT} seq 2 finding {second}: transition hash does not match its content (row altered)"
    ]


def test_report_monthly_writes_pdf_and_csv(monitored: tuple[str, Monitored], tmp_path: Path) -> None:
    url, days = monitored
    pdf = tmp_path / "report.pdf"
    made = cli("report", "monthly", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT, "--month", MONTH,
               "--out", str(pdf))  # fmt: skip
    assert made.returncode == 0, made.stderr
    reader = PdfReader(pdf)
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert len(reader.pages) >= 2 and f"page {len(reader.pages)}/{len(reader.pages)}" in text
    for rule in days.licences[DA_NANG_PARTICIPANT].rules:
        if rule.id in ("blocklist", "reserves", "tx-cap"):
            assert rule.id in text and rule.clause in text
    table = tmp_path / "report.csv"
    assert cli("report", "monthly", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT, "--month", MONTH,
               "--out", str(table)).returncode == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    cases = [r for r in rows if r["section"] == "case"]
    start, end = month_bounds(MONTH)
    within = days.store.count("findings", DA_NANG_PARTICIPANT, ts_from=start, ts_to=end)
    assert len(cases) == within == 19  # one finding is dated outside the licence term
    assert {r["month"] for r in rows} == {MONTH}
    bad = cli("report", "monthly", "--clickhouse", url, "--participant", DA_NANG_PARTICIPANT, "--month", "2025-13",
              "--out", str(table))  # fmt: skip
    assert bad.returncode == 2 and "--month" in bad.stderr


def test_the_server_store_answers_threads_at_once(monitored: tuple[str, Monitored]) -> None:
    """The API serves requests from a thread pool over one store: concurrent queries must all be answered
    (clickhouse-driver refuses a second query on a busy connection, which reached callers as a 503)."""
    from concurrent.futures import ThreadPoolExecutor

    _, days = monitored
    sql = f"SELECT count(), sleep(0.05) FROM {days.store.db}.findings"
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: days.store.backend.rows(sql)[0][0], range(32)))
    assert counts == [counts[0]] * 32 and counts[0] > 0
