"""The findings the engine raises itself, about its input rather than a licence rule: one definition each.

A licence rule's finding carries the rule's id, severity and clause; these carry their kind as the rule,
and a fixed severity and clause. Metrics create the series of those marked ``prepared`` up front, and the
alert generator writes an alert (with its runbook) for those that have a runbook."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sandboxwatch.rules_engine.findings import Finding, new_finding

INVALID_EVENT = "invalid_event"
VALUATION_UNAVAILABLE = "valuation_unavailable"
EVIDENCE_RETRACTED = "evidence_retracted"
LATE_EVENT = "late_event"
RETRACTION_REFUSED = "retraction_refused"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
PRICE_REFUSED = "price_refused"


@dataclass(frozen=True, slots=True)
class BuiltinKind:
    name: str
    severity: str
    clause: str
    # Its metric series exists at 0 before the first one (so ``increase()`` sees the first).
    prepared: bool = False
    # What the desk on duty does when it fires; None: no alert of its own.
    runbook: str | None = None


# In the order every list of them shows (the API's finding texts, metrics, alerts).
BUILTIN_KINDS: dict[str, BuiltinKind] = {
    kind.name: kind
    for kind in (
        BuiltinKind(
            INVALID_EVENT,
            "warning",
            "canonical events contract, version 1",
            prepared=True,
            runbook="Events from the participant could not be read: check the dead-letter table for the reason "
            "and ask the participant to fix its feed.",
        ),
        BuiltinKind(
            VALUATION_UNAVAILABLE,
            "warning",
            "valuation in the reporting currency (events contract)",
            prepared=True,
            runbook="Events could not be valued for lack of a reference price: check the price feed, "
            "since value-based rules skipped these events.",
        ),
        BuiltinKind(EVIDENCE_RETRACTED, "info", "canonical events contract, version 1 (connector retraction)"),
        BuiltinKind(LATE_EVENT, "info", "licence allowed_lateness (lateness policy)", prepared=True),
        BuiltinKind(RETRACTION_REFUSED, "warning", "canonical events contract, version 1 (retraction)"),
        BuiltinKind(
            CONFLICTING_DUPLICATE,
            "warning",
            "canonical events contract, version 1 (event_id is unique per participant)",
        ),
        BuiltinKind(
            PRICE_REFUSED,
            "warning",
            "licence reference_prices (trusted price sources)",
            prepared=True,
            runbook="A price event was not used to value events: its source is not one the licence trusts, or "
            "it moved beyond the licence's max_step from the previous price. Check the participant's price feed "
            "and, if the source is genuine, the licence's reference_prices.",
        ),
    )
}


def builtin_finding(
    kind: str,
    *,
    licence: str,
    participant: str,
    subject: str,
    ts: datetime | None,
    key: str,
    message: str,
    evidence: Sequence[str] = (),
) -> Finding:
    spec = BUILTIN_KINDS[kind]
    return new_finding(
        licence=licence,
        rule=spec.name,
        kind=spec.name,
        severity=spec.severity,
        clause=spec.clause,
        participant=participant,
        subject=subject,
        ts=ts,
        key=key,
        evidence=evidence,
        message=message,
    )
