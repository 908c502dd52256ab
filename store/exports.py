"""Findings exported for auditors: CSV for people and spreadsheets, Parquet for analysis tools.

Both keep every value as text (amounts are decimal strings) so an export never rounds money; evidence is a
list column in Parquet and ``;``-joined in CSV.

A CSV is opened in spreadsheets, where a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR is a
formula: a participant-controlled subject such as ``=HYPERLINK(...)`` would run in an auditor's sheet. Such
text cells get a leading single quote (OWASP's advice); a cell that is a plain decimal number (a negative
amount) stays a number, because it cannot be a formula."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from sandboxwatch.store.history import STORED_FINDING_FIELDS

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def csv_cell(value: Any) -> str:
    """The text a spreadsheet shows as typed, never as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def findings_csv(findings: Sequence[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    # RFC 4180 line ends: the writer then quotes any cell holding CR or LF, so a message cannot split a row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STORED_FINDING_FIELDS)
    for item in findings:
        writer.writerow([csv_cell(";".join(item[f]) if f == "evidence" else item[f]) for f in STORED_FINDING_FIELDS])
    return out.getvalue().encode("utf-8")


def findings_parquet(findings: Sequence[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {}
    for name in STORED_FINDING_FIELDS:
        values = [item[name] for item in findings]
        if name == "evidence":
            columns[name] = pa.array(values, type=pa.list_(pa.string()))
        else:
            columns[name] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, compression="zstd")
    return sink.getvalue()
