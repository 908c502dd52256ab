"""The store's side of the monthly compliance report (api/monthly_report.py): findings by rule with
the licence clause each was judged under, counted once per finding id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sandboxwatch.store.backends import Backend
from sandboxwatch.store.sql_text import datetime_literal, quote

RULE_FIELDS = ("rule", "kind", "severity", "clause", "findings", "first", "last")


def findings_by_rule(
    backend: Backend, db: str, participant: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """One row per (rule, kind, severity, clause) with its finding count and first/last event time, by rule."""
    rows = backend.rows(
        f"SELECT rule, kind, severity, clause, uniqExact(finding_id), min(ts_text), max(ts_text) FROM {db}.findings "
        f"WHERE participant = {quote(participant)} AND ts >= {datetime_literal(since)} "
        f"AND ts <= {datetime_literal(until)} GROUP BY rule, kind, severity, clause ORDER BY rule, kind, severity"
    )
    return [{k: int(v) if k == "findings" else str(v) for k, v in zip(RULE_FIELDS, row, strict=True)} for row in rows]
