"""The finding record every rule emits, and its deterministic identity."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.timestamps import format_timestamp

SEVERITIES = ("info", "warning", "breach", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
FAILING_SEVERITIES = frozenset({"breach", "critical"})


@dataclass(slots=True, frozen=True)
class Finding:
    finding_id: str
    licence: str
    rule: str
    kind: str
    severity: str
    participant: str
    subject: str
    ts: datetime | None
    observed: Decimal | None
    limit: Decimal | None
    clause: str
    evidence: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Every field, in ``FINDING_FIELDS`` order, as JSON writes it (time and money as text)."""
        item = {name: getattr(self, name) for name in FINDING_FIELDS}
        item["ts"] = format_timestamp(self.ts) if self.ts is not None else None
        item["observed"] = decimal_text(self.observed) if self.observed is not None else None
        item["limit"] = decimal_text(self.limit) if self.limit is not None else None
        item["evidence"] = list(self.evidence)
        return item


# A finding's fields, in the order every output (JSON, CSV, the API, exports) lists them.
FINDING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Finding))


def finding_id(licence_id: str, rule_id: str, key: str) -> str:
    """Same licence, rule and triggering key give the same id, so re-delivery and replays deduplicate."""
    digest = hashlib.sha256(f"{licence_id}\x1f{rule_id}\x1f{key}".encode()).hexdigest()
    return digest[:32]


def new_finding(
    *,
    licence: str,
    rule: str,
    kind: str,
    severity: str,
    clause: str,
    participant: str,
    subject: str,
    ts: datetime | None,
    key: str,
    message: str,
    evidence: Sequence[str] = (),
    observed: Decimal | None = None,
    limit: Decimal | None = None,
) -> Finding:
    return Finding(
        finding_id=finding_id(licence, rule, key),
        licence=licence,
        rule=rule,
        kind=kind,
        severity=severity,
        participant=participant,
        subject=subject,
        ts=ts,
        observed=observed,
        limit=limit,
        clause=clause,
        evidence=tuple(evidence),
        message=message,
    )
