"""Turning a consumed Kafka message into an event record or a dead letter, never an exception."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.rules_engine.event_parser import connector_reason
from sandboxwatch.rules_engine.event_reader import MAX_DEPTH, parse_json_line
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.store.records import DeadLetter, EventRecord

INGEST_ERROR_MARK = '"ingest_error"'


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def source(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def decode(message: InboundMessage) -> EventRecord | EventError:
    """The offset stands in for the line number, so errors point at the exact message to fetch."""
    source = f"{message.topic}/{message.partition}"
    raw = message.value or b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return EventError(
            source,
            message.offset,
            None,
            f"not UTF-8 ({exc.reason} at byte {exc.start})",
            raw.decode("latin-1"),
        )
    if INGEST_ERROR_MARK in text:
        rejected = _ingest_error(text, source, message.offset)
        if rejected is not None:
            return rejected
    item = parse_json_line(text.strip(), source, message.offset)
    if isinstance(item, EventError):
        return item
    return EventRecord(item, text.strip(), message.source)


def _ingest_error(text: str, source: str, offset: int) -> EventError | None:
    """A connector's report of a record it could not convert: dead-lettered with the connector's reason."""
    try:
        obj = loads_bounded(text, MAX_DEPTH)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "ingest_error":
        return None
    participant = obj.get("participant")
    field = obj.get("field")
    return EventError(
        source,
        offset,
        field if isinstance(field, str) else None,
        connector_reason(obj),
        text.strip(),
        participant=participant if isinstance(participant, str) else None,
    )


def key_participant(message: InboundMessage) -> str | None:
    if not message.key:
        return None
    try:
        return message.key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dead_letter(error: EventError, message: InboundMessage) -> DeadLetter:
    """Keeps the whole message (the error's copy is shortened for display)."""
    letter = DeadLetter.from_error(error, message.source, key_participant(message))
    raw = (message.value or b"").decode("utf-8", errors="replace")
    return DeadLetter(letter.source, letter.participant, letter.field, letter.reason, raw)
