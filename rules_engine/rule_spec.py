"""A parsed licence header and rule, as the rule functions receive them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.findings import Finding, new_finding

DEFAULT_ALLOWED_LATENESS = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LicenceHeader:
    id: str
    participant: str
    title: str
    legal_basis: str
    valid_from: datetime
    valid_until: datetime
    reporting_currency: str
    # How far behind the newest in-term event an event may arrive and still be placed where it belongs in
    # event time (docs/licence.md, lateness): venues batch, chains confirm, connectors restart.
    allowed_lateness: timedelta = DEFAULT_ALLOWED_LATENESS
    # Chains whose connector may retract its own observations (docs/licence.md); none by default.
    retraction_sources: tuple[str, ...] = ()
    # reference_prices (docs/licence.md): the sources whose price events value events, and how far (a
    # factor) one of their prices may move from the previous one of its pair and source and still be used.
    price_sources: tuple[str, ...] = ()
    max_price_step: Decimal | None = None
    # Other publishers (market feeds) whose price events count besides the participant's own: a price names
    # its source itself, so another participant's event claiming a trusted source must not value this one's.
    price_publishers: tuple[str, ...] = ()

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
