"""Turning a consumed Kafka message into an event record or a dead letter, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sandboxwatch.rules_engine.event_parser import clean_text, connector_reason
from sandboxwatch.rules_engine.event_reader import MAX_DEPTH, parse_json_line
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.rules_engine.timestamps import parse_timestamp
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
    """Errors name the message by its offset and partition, so they point at the exact message to fetch;
    a connector's report of a line of a file (``up``) names that file and line instead.

    Bytes that are not UTF-8 are read the way an events file's are (kept as surrogates and reported by the
    parser with the byte's value), so the same line gives the same error from a file and from a message."""
    source = f"{message.topic}/{message.partition}"
    text = (message.value or b"").decode("utf-8", errors="surrogateescape")
    if INGEST_ERROR_MARK in text:
        rejected = _ingest_error(text, source, message)
        if rejected is not None:
            return rejected
    item = parse_json_line(text.strip(), source, message.offset)
    if isinstance(item, EventError):
        return replace(item, partition=message.partition)
    return EventRecord(item, text.strip(), message.source)


def _ingest_error(text: str, source: str, message: InboundMessage) -> EventError | None:
    """A connector's report of a record it could not convert: dead-lettered with the connector's reason.

    ``file`` and ``line`` (``up`` replaying an events file) say where the record was: the error is then
    the one ``check`` reports for that line (same line, reason and text, so the same finding id)."""
    try:
        obj = loads_bounded(text, MAX_DEPTH)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "ingest_error":
        return None
    participant = clean_text(obj.get("participant"))
    field = obj.get("field")
    file, line, raw = obj.get("file"), obj.get("line"), obj.get("raw")
    event_id = clean_text(obj.get("event_id"))
    try:
        ts = parse_timestamp(obj.get("ts")) if obj.get("ts") is not None else None
    except ValueError:
        ts = None
    if isinstance(file, str) and type(line) is int and line > 0 and isinstance(raw, str):
        reason = obj.get("reason")
        return EventError(
            file,
            line,
            field if isinstance(field, str) else None,
            reason if isinstance(reason, str) else "rejected by the connector",
            raw,
            event_id=event_id,
            participant=participant,
            ts=ts,
        )
    return EventError(
        source,
        message.offset,
        field if isinstance(field, str) else None,
        connector_reason(obj),
        text.strip(),
        event_id=event_id,
        participant=participant,
        ts=ts,
        partition=message.partition,
    )


def file_error_message(error: EventError) -> dict[str, object]:
    """What ``up`` publishes for a line of its events file that is not a usable event (see ``_ingest_error``)."""
    message: dict[str, object] = {
        "type": "ingest_error",
        "origin": "file",
        "file": error.source,
        "line": error.line,
        "reason": error.reason,
        "raw": error.raw,
    }
    optional = {"field": error.field, "participant": error.participant, "event_id": error.event_id}
    message.update({name: value for name, value in optional.items() if value is not None})
    if error.ts is not None:
        message["ts"] = error.ts.isoformat()
    return message


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
