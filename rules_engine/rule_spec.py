"""A parsed licence header and rule, as the rule functions receive them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from rules_engine.findings import Finding, new_finding


@dataclass(frozen=True, slots=True)
class LicenceHeader:
    id: str
    participant: str
    title: str
    legal_basis: str
    valid_from: datetime
    valid_until: datetime
    reporting_currency: str
    # Chains whose connector may retract its own observations (docs/licence.md); none by default.
    retraction_sources: tuple[str, ...] = ()

    def in_term(self, ts: datetime) -> bool:
        return self.valid_from <= ts <= self.valid_until


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One rule of a licence; ``params`` is the kind's own typed parameter object."""

    id: str
    kind: str
    severity: str
    clause: str
    params: Any
    licence_id: str
    participant: str
    line: int | None = None

    def finding(
        self,
        *,
        subject: str,
        ts: datetime | None,
        key: str,
        message: str,
        evidence: Sequence[str] = (),
        observed: Decimal | None = None,
        limit: Decimal | None = None,
    ) -> Finding:
        return new_finding(
            licence=self.licence_id,
            rule=self.id,
            kind=self.kind,
            severity=self.severity,
            clause=self.clause,
            participant=self.participant,
            subject=subject,
            ts=ts,
            key=key,
            message=message,
            evidence=evidence,
            observed=observed,
            limit=limit,
        )
