"""The rows the store keeps, built from engine objects, and the dead letter that pipelines emit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.findings import Finding

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The last instant a ClickHouse ``DateTime`` column holds (UInt32 seconds since the epoch).
DATETIME_MAX = datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC)

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
    # invalid_event (the message is not a usable event), unlicensed_participant (valid, but no licence),
    # unprocessable (valid, but checking it raised: the engine could not compute with its values) or
    # unstorable (ClickHouse refused the row's values; an event's text or a finding's JSON is kept here).
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


def column_time(ts: datetime) -> datetime:
    """``ts`` clamped into what a ``DateTime`` column can hold: an event dated in year 9999 or year 1 is a
    valid event (its out-of-term finding must be stored), and must not make the whole batch's insert fail
    and stall the stream. The exact instant stays in the ``ts_text`` column beside it."""
    return min(max(ts, EPOCH), DATETIME_MAX)


def utf8_text(value: Any) -> Any:
    """Strings (also inside lists) with any lone UTF-16 surrogate replaced by ``?``: JSON can carry one as an
    escape (``"\\ud800"``) and Python parses it, but it has no UTF-8 form, so ClickHouse (or its driver) would
    refuse the whole batch, and that batch would be retried for ever."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [utf8_text(v) for v in value]
    return value


def _utf8_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(utf8_text(v) for v in row)


def event_row(record: EventRecord, recorded: datetime) -> tuple[Any, ...]:
    row = _event_row(record, recorded)
    # Only a JSON escape can bring a surrogate in (the bytes were strict UTF-8), so most rows skip the scan.
    return _utf8_row(row) if "\\u" in record.raw else row


_DATETIME_MAX_SECONDS = int(DATETIME_MAX.timestamp())
# Columns of the events table that hold text, by position in EVENT_COLUMNS (the others are DateTime seconds).
_EVENT_TEXT_COLUMNS = (0, 1, 2, 4, 5, 6, 7)


def column_seconds(ts: datetime) -> int:
    """``column_time`` as the whole seconds since the epoch that a ``DateTime`` column stores: both backends
    take an int as is, where a datetime costs a conversion per row (and chdb a date-time text parse)."""
    return _clamped_seconds(ts.timestamp())


_event_of = attrgetter("event")
_raw_of = attrgetter("raw")
_source_of = attrgetter("source")
_participant_of = attrgetter("participant")
_event_id_of = attrgetter("event_id")
_type_of = attrgetter("type")
_ts_of = attrgetter("ts")


def event_columns(records: Sequence[EventRecord], recorded: datetime) -> list[list[Any]]:
    """The events table's columns (EVENT_COLUMNS order) for a batch, built column by column: the insert is
    columnar, so no row tuple per event is made and then transposed. The same values as ``event_row`` gives,
    except that the two DateTime columns are whole seconds since the epoch (``column_seconds``). Each column
    is one ``map`` over the batch (no Python frame per value); the seconds are clamped value by value only
    in a batch that holds a time a DateTime column cannot."""
    events = list(map(_event_of, records))
    bodies = list(map(_raw_of, records))
    times = list(map(_ts_of, events))
    stamps = list(map(datetime.timestamp, times))
    if stamps and (min(stamps) < 0 or max(stamps) >= _DATETIME_MAX_SECONDS + 1):
        seconds = list(map(_clamped_seconds, stamps))
    else:
        seconds = list(map(int, stamps))  # int() of a stamp in range is column_seconds' value
    columns: list[list[Any]] = [
        list(map(_participant_of, events)),
        list(map(_event_id_of, events)),
        list(map(_type_of, events)),
        seconds,
        list(map(datetime.isoformat, times)),
        [getattr(e, "account", "") or "" for e in events],
        bodies,
        list(map(_source_of, records)),
        [int(recorded.timestamp())] * len(records),
    ]
    # A lone surrogate has no UTF-8 form: the store would refuse the whole batch, retried for ever. A JSON
    # escape brings one in, and so can any caller building events itself, in any text column: each column is
    # searched once as a whole (an ASCII column, the common case, without encoding it).
    for column in _EVENT_TEXT_COLUMNS:
        values = columns[column]
        joined = "".join(values)
        if joined.isascii():
            continue
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            columns[column] = list(map(utf8_text, values))
    return columns


def _clamped_seconds(stamp: float) -> int:
    return min(max(int(stamp), 0), _DATETIME_MAX_SECONDS)


def _event_row(record: EventRecord, recorded: datetime) -> tuple[Any, ...]:
    event = record.event
    return (
        event.participant,
        event.event_id,
        event.type,
        column_time(event.ts),
        event.ts.isoformat(),
        getattr(event, "account", "") or "",
        record.raw,
        record.source,
        recorded,
    )


def finding_row(finding: Finding, recorded: datetime) -> tuple[Any, ...]:
    ts = column_time(finding.ts) if finding.ts else EPOCH
    return _utf8_row(
        (
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
    )


def dead_letter_row(letter: DeadLetter, recorded: datetime) -> tuple[Any, ...]:
    return _utf8_row(
        (
            letter.letter_id,
            letter.kind,
            letter.source,
            letter.participant,
            letter.field,
            letter.reason,
            letter.raw,
            recorded,
        )
    )


def finding_json(finding: Finding) -> str:
    return json.dumps(finding.to_dict(), sort_keys=True)
