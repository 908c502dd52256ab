"""The monthly compliance report over a real (embedded) ClickHouse: rendered to PDF and read back page by page,
the CSV parsed, and the API route scoped to the participant."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("chdb")

from fastapi.testclient import TestClient
from pypdf import PdfReader

from sandboxwatch.api.monthly_report import ReportError, build_report, month_bounds, report_csv
from sandboxwatch.api.report_pdf import _fold, report_pdf
from sandboxwatch.store.backends import EmbeddedBackend
from sandboxwatch.store.case_trail import CaseTrail
from sandboxwatch.store.clickhouse_store import Store
from tests.api_fixtures import (
    DA_NANG_PARTICIPANT,
    NATIONAL_PARTICIPANT,
    Monitored,
    app_over,
    auth,
    monitored_days,
)

DATABASE = "report" + uuid.uuid4().hex[:8]
AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def monitored(backend: EmbeddedBackend) -> Monitored:
    backend.database = DATABASE
    store = Store(backend)
    store.migrate()
    days = monitored_days(store, accounts=40)
    trail = CaseTrail(store.backend, store.db)
    ids = [str(r[0]) for r in store.backend.rows(
        f"SELECT finding_id FROM {store.db}.findings WHERE participant = '{DA_NANG_PARTICIPANT}' "
        "GROUP BY finding_id ORDER BY finding_id LIMIT 2"
    )]  # fmt: skip
    trail.append(DA_NANG_PARTICIPANT, ids[0], lambda _: {"action": "acknowledge", "from_state": "open",
                 "to_state": "acknowledged"}, "sbv-desk", "regulator", AT)  # fmt: skip
    trail.append(DA_NANG_PARTICIPANT, ids[1], lambda _: {"action": "resolve", "from_state": "open",
                 "to_state": "resolved", "resolution": "false_positive", "reason": "test account"},
                 "sbv-desk", "regulator", AT)  # fmt: skip
    return days


@pytest.fixture(autouse=True)
def _own_database(backend: EmbeddedBackend) -> None:
    backend.database = DATABASE


def report_month(monitored: Monitored, participant: str) -> str:
    """The Vietnam-time month of the participant's first finding (the simulated day's month)."""
    db = monitored.store.db
    sql = f"SELECT toString(min(ts)) FROM {db}.findings WHERE participant = '{participant}'"
    first = monitored.store.backend.rows(sql)
    stamp = datetime.fromisoformat(str(first[0][0])).replace(tzinfo=UTC)
    return stamp.astimezone(month_bounds("2025-01")[0].tzinfo).strftime("%Y-%m")


def pdf_text(body: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(body))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_month_bounds_are_vietnam_calendar_months() -> None:
    start, end = month_bounds("2025-12")
    assert start.isoformat() == "2025-12-01T00:00:00+07:00" and end.isoformat() == "2025-12-31T23:59:59+07:00"
    assert month_bounds("2026-02")[1].day == 28
    for bad in ("2025-13", "2025-1", "25-01", "2025-01-01", "0000-01", "9999-12", "1969-12"):
        with pytest.raises(ReportError):
            month_bounds(bad)
    assert _fold("Điều 7 khoản 2: bảo đảm") == "Dieu 7 khoan 2: bao dam"


def test_pdf_report_names_rules_clauses_cases_and_peaks(monitored: Monitored) -> None:
    month = report_month(monitored, DA_NANG_PARTICIPANT)
    report = build_report(monitored.store, DA_NANG_PARTICIPANT, month)
    assert report.licence == monitored.licences[DA_NANG_PARTICIPANT].id
    rules = {r["rule"]: r for r in report.rules}
    licence_rules = {r.id: r for r in monitored.licences[DA_NANG_PARTICIPANT].rules}
    assert rules and all(rules[name]["clause"] == licence_rules[name].clause for name in rules)
    assert report.by_state["acknowledged"] == 1 and report.by_resolution["false_positive"] == 1
    assert sum(report.by_state.values()) == len(report.cases) == sum(r["findings"] for r in report.rules)
    # The licence's participant-level limits (customer cap, reserve coverage), each at its peak of the month.
    assert [(p["rule"], p["limit"], p["clause"]) for p in report.peaks] == [
        ("reserves", "min_ratio:USDT", "custody of client assets"), ("users", "max", "customer cap")
    ]  # fmt: skip
    assert all(p["peak_share"] >= 1 for p in report.peaks)  # the simulated day breaches both
    pages, text = pdf_text(report_pdf(report))
    flat = " ".join(text.split())
    assert pages >= 2 and f"page {pages}/{pages}" in flat
    assert f"monthly compliance report: {DA_NANG_PARTICIPANT}, {month}" in flat
    for name, row in rules.items():
        assert name in flat and " ".join(row["clause"].split()) in flat, name
    assert "acknowledged 1" in flat and "false_positive 1" in flat
    for peak in report.peaks:
        assert f"{peak['peak_share'] * 100:.1f}%" in flat


def test_csv_report_has_every_rule_case_and_peak(monitored: Monitored) -> None:
    month = report_month(monitored, DA_NANG_PARTICIPANT)
    report = build_report(monitored.store, DA_NANG_PARTICIPANT, month)
    rows = list(csv.DictReader(io.StringIO(report_csv(report).decode())))
    sections = [r["section"] for r in rows]
    assert sections.count("rule") == len(report.rules) and sections.count("case") == len(report.cases)
    assert sections.count("peak") == len(report.peaks)
    resolved = [r for r in rows if r["section"] == "case" and r["state"] == "resolved"]
    assert [r["resolution"] for r in resolved] == ["false_positive"]
    assert {r["participant"] for r in rows} == {DA_NANG_PARTICIPANT} and {r["month"] for r in rows} == {month}


def test_an_empty_month_still_renders(monitored: Monitored) -> None:
    report = build_report(monitored.store, DA_NANG_PARTICIPANT, "2020-01")
    assert report.rules == [] and report.cases == [] and report.peaks == []
    pages, text = pdf_text(report_pdf(report))
    assert pages == 1 and "No findings this month." in text and "No cases this month." in text


@pytest.fixture(scope="module")
def client(monitored: Monitored) -> Iterator[TestClient]:
    app = app_over(monitored.store, monitored.licences)
    with TestClient(app) as test_client:
        yield test_client


def get(client: TestClient, who: str, participant: str, **params: Any) -> Any:
    return client.get(f"/api/v1/participants/{participant}/reports/monthly", headers=auth(who), params=params)


def test_api_report_is_participant_scoped(client: TestClient, monitored: Monitored) -> None:
    month = report_month(monitored, DA_NANG_PARTICIPANT)
    own = get(client, "alphatrue", DA_NANG_PARTICIPANT, month=month)
    assert own.status_code == 200 and own.headers["content-type"] == "application/pdf"
    assert f'filename="sandboxwatch-{DA_NANG_PARTICIPANT}-{month}.pdf"' in own.headers["content-disposition"]
    assert DA_NANG_PARTICIPANT in pdf_text(own.content)[1]
    table = get(client, "auditor", DA_NANG_PARTICIPANT, month=month, format="csv")
    assert table.status_code == 200 and table.text.startswith("section,participant,month,rule")
    assert get(client, "alphatrue", NATIONAL_PARTICIPANT, month=month).status_code == 403
    assert get(client, "casp", DA_NANG_PARTICIPANT, month=month, format="csv").status_code == 403
    assert get(client, "regulator", DA_NANG_PARTICIPANT, month="2025-13").status_code == 422
    assert get(client, "regulator", DA_NANG_PARTICIPANT, month=month, format="docx").status_code == 422


def test_csv_report_never_hands_a_spreadsheet_a_formula() -> None:
    from sandboxwatch.api.monthly_report import MonthlyReport

    start, end = month_bounds("2025-11")
    rule = {"rule": "tx-cap", "kind": "max_transaction_value", "severity": "breach",
            "clause": '=HYPERLINK("http://x")', "findings": 2}  # fmt: skip
    report = MonthlyReport("p1", "2025-11", start, end, start, "L1", [rule], [], [])
    body = report_csv(report).decode()
    assert (
        body.splitlines()[1]
        == 'rule,p1,2025-11,tx-cap,max_transaction_value,breach,"\'=HYPERLINK(""http://x"")",2,,,,,,,'
    )
    assert body.endswith("\r\n")


def test_vietnamese_text_prints_as_written_with_a_unicode_font() -> None:
    from sandboxwatch.api.monthly_report import MonthlyReport
    from sandboxwatch.api.report_pdf import _unicode_font

    start, end = month_bounds("2025-11")
    clause = "Nghị quyết 05/2025/NQ-CP, Điều 7: bảo đảm tài sản"
    rule = {"rule": "reserves", "kind": "reserve_coverage", "severity": "critical", "clause": clause, "findings": 1}
    report = MonthlyReport("p1", "2025-11", start, end, start, "L1", [rule], [], [])
    flat = " ".join(pdf_text(report_pdf(report))[1].split())
    if _unicode_font() is not None:  # Debian's fonts-dejavu-core, installed with chromium
        assert clause in flat and "accents" not in flat
    else:
        assert "Nghi quyet 05/2025/NQ-CP, Dieu 7: bao dam tai san" in flat and "without their accents" in flat
