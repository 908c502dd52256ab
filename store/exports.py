"""Findings exported for auditors: CSV for people and spreadsheets, Parquet for analysis tools.

Both keep every value as text (amounts are decimal strings) so an export never rounds money; evidence is a
list column in Parquet and ``;``-joined in CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from store.history import FINDING_FIELDS


def findings_csv(findings: Sequence[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FINDING_FIELDS)
    for item in findings:
        writer.writerow(
            [
                ";".join(item["evidence"]) if f == "evidence" else ("" if item[f] is None else item[f])
                for f in FINDING_FIELDS
            ]
        )
    return out.getvalue().encode("utf-8")


def findings_parquet(findings: Sequence[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {}
    for name in FINDING_FIELDS:
        values = [item[name] for item in findings]
        if name == "evidence":
            columns[name] = pa.array(values, type=pa.list_(pa.string()))
        else:
            columns[name] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink, compression="zstd")
    return sink.getvalue()
