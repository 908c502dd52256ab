"""Writes findings as JSON Lines, CSV or a table a person can read in a terminal."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import TextIO

from sandboxwatch.rules_engine.findings import FINDING_FIELDS, Finding

CSV_COLUMNS = FINDING_FIELDS
_TABLE_COLUMNS = (("ts", 25), ("severity", 8), ("rule", 16), ("subject", 18), ("observed", 16), ("limit", 14))


def write_jsonl(findings: Sequence[Finding], out: TextIO) -> None:
    for finding in findings:
        out.write(json.dumps(finding.to_dict(), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")


def write_csv(findings: Sequence[Finding], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for finding in findings:
        row = finding.to_dict()
        row["evidence"] = ";".join(row["evidence"])
        writer.writerow(row)


def _cell(value: object, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def write_table(findings: Sequence[Finding], out: TextIO) -> None:
    """Fixed columns for scanning; the message column is last and never cut, since it explains."""
    header = "  ".join(name.upper().ljust(width) for name, width in _TABLE_COLUMNS) + "  MESSAGE"
    out.write(header + "\n")
    out.write("-" * len(header) + "\n")
    for finding in findings:
        row = finding.to_dict()
        cells = "  ".join(_cell(row[name], width).ljust(width) for name, width in _TABLE_COLUMNS)
        out.write(f"{cells}  {finding.message}\n")
    if not findings:
        out.write("(no findings)\n")


WRITERS = {"jsonl": write_jsonl, "csv": write_csv, "table": write_table}
