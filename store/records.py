"""The rows the store keeps, built from engine objects, and the dead letter that pipelines emit."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rules_engine.events import Event, EventError
from rules_engine.findings import Finding

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EVENT_COLUMNS = ("participant", "event_id", "type", "ts", "ts_text", "account", "body", "source", "recorded")
FINDING_COLUMNS = (
    "finding_id",
    "licence",
    "rule",
    "kind",
    "severity",
    "participant",
    "subject",
    "ts",
    "ts_text",
    "observed",
    "limit_value",
    "clause",
    "evidence",
    "message",
    "recorded",
)
DEAD_LETTER_COLUMNS = ("letter_id", "kind", "source", "participant", "field", "reason", "raw", "recorded")


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A valid event with the text it arrived as and where from (``topic/partition/offset`` or file:line)."""

    event: Event
    raw: str
    source: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not be monitored, kept whole with the reason so nothing is silently lost."""

    source: str
    participant: str
    field: str
    reason: str
    raw: str
    # invalid_event (the message is not a usable event) or unlicensed_participant (valid, but no licence).
    kind: str = "invalid_event"

    @property
    def letter_id(self) -> str:
        return hashlib.sha256(f"{self.source}\n{self.raw}".encode()).hexdigest()[:32]

    @classmethod
    def from_error(cls, error: EventError, source: str, participant: str | None = None) -> DeadLetter:
        return cls(
            source=source,
            participant=error.participant or participant or "",
            field=error.field or "",
            reason=error.reason,
            raw=error.raw,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "letter_id": self.letter_id,
            "source": self.source,
            "participant": self.participant,
            "field": self.field,
            "reason": self.reason,
            "raw": self.raw,
            "kind": self.kind,
        }


def event_row(record: EventRecord, recorded: datetime) -> tuple[Any, ...]:
    event = record.event
    return (
        event.participant,
        event.event_id,
        event.type,
        event.ts,
        event.ts.isoformat(),
        getattr(event, "account", "") or "",
        record.raw,
        record.source,
        recorded,
    )


def finding_row(finding: Finding, recorded: datetime) -> tuple[Any, ...]:
    ts = finding.ts or EPOCH
    return (
        finding.finding_id,
        finding.licence,
        finding.rule,
        finding.kind,
        finding.severity,
        finding.participant,
        finding.subject,
        ts,
        finding.ts.isoformat() if finding.ts else "",
        None if finding.observed is None else str(finding.observed),
        None if finding.limit is None else str(finding.limit),
        finding.clause,
        list(finding.evidence),
        finding.message,
        recorded,
    )


def dead_letter_row(letter: DeadLetter, recorded: datetime) -> tuple[Any, ...]:
    return (
        letter.letter_id,
        letter.kind,
        letter.source,
        letter.participant,
        letter.field,
        letter.reason,
        letter.raw,
        recorded,
    )


def finding_json(finding: Finding) -> str:
    return json.dumps(finding.to_dict(), sort_keys=True)
