"""Turning a consumed Kafka message into event records and errors, never an exception.

A message holds one event, or a batch of one participant's events as JSON Lines (docs/events.md, "Stream
messages"): producers batch so that the stream machinery runs once per batch instead of once per event.
Every line of a batch is its own event: it is deduplicated, stored, judged and, when bad, dead-lettered
alone, under a source naming the message and its line (``topic/partition/offset:line``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sandboxwatch.rules_engine.event_parser import clean_text, connector_reason
from sandboxwatch.rules_engine.event_reader import MAX_DEPTH, parse_json_line
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from sandboxwatch.store.records import DeadLetter, EventRecord

INGEST_ERROR_MARK = '"ingest_error"'
# A batch's bound (docs/events.md): producers stay below both; a message with more lines is refused whole,
# as one invalid event, so no message can make one batch unboundedly large. Bytes are bounded by the
# broker's message size limit (streams.message_limits) before the message reaches us.
MAX_BATCH_LINES = 1000
MAX_BATCH_BYTES = 512 * 1024


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


@dataclass(frozen=True, slots=True)
class LineError:
    """A line that is not a usable event, with where it came from: ``source`` is the message
    (``topic/partition/offset``) or, inside a batch, the line (``topic/partition/offset:line``), and ``raw``
    the whole message or the whole line, as the dead letter keeps it."""

    error: EventError
    source: str
    raw: str


def is_batch(value: bytes) -> bool:
    """More than one non-blank line, the first a whole JSON object: a pretty-printed single event (its
    first line a bare ``{``) stays one event, as before batches existed."""
    body = value.strip()
    cut = body.find(b"\n")
    if cut < 0:
        return False
    first = body[:cut].strip()
    return first[:1] == b"{" and first[-1:] == b"}"


def decode_all(message: InboundMessage) -> list[EventRecord | LineError]:
    """Every event of the message, in its order; one item for a single-event message."""
    value = message.value or b""
    if not is_batch(value):
        item = decode(message)
        if isinstance(item, EventError):
            return [LineError(item, message.source, value.decode("utf-8", errors="replace"))]
        return [item]
    lines = value.split(b"\n")
    if len(lines) > MAX_BATCH_LINES and sum(1 for line in lines if line.strip()) > MAX_BATCH_LINES:
        error = EventError(
            f"{message.topic}/{message.partition}",
            message.offset,
            None,
            f"a batch of more than {MAX_BATCH_LINES} lines (docs/events.md, stream messages)",
            value[:500].decode("utf-8", errors="replace"),
            partition=message.partition,
        )
        return [LineError(error, message.source, value.decode("utf-8", errors="replace"))]
    owner = key_participant(message)
    items: list[EventRecord | LineError] = []
    base, where = message.source, f"{message.topic}/{message.partition}"
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        source = f"{base}:{number}"
        item = _decode_text(line, message, source, where)
        if isinstance(item, EventError):
            items.append(LineError(item, source, line.strip().decode("utf-8", errors="replace")))
            continue
        participant = item.event.participant
        if owner is None:
            owner = participant  # an unkeyed batch belongs to the participant of its first event
        elif participant != owner:
            items.append(_foreign(message, item, owner, number))
            continue
        items.append(item)
    return items


def decode(message: InboundMessage) -> EventRecord | EventError:
    """A single-event message. Errors name the message by its offset and partition, so they point at the
    exact message to fetch; a connector's report of a line of a file (``up``) names that file and line
    instead.

    Bytes that are not UTF-8 are read the way an events file's are (kept as surrogates and reported by the
    parser with the byte's value), so the same line gives the same error from a file and from a message."""
    return _decode_text(message.value or b"", message, message.source)


def _decode_text(
    raw: bytes, message: InboundMessage, source: str, where: str | None = None
) -> EventRecord | EventError:
    """One event's text: the whole message, or line of a batch (its errors name the message's partition and
    offset like a single message's do; its record's source names the line too). ``where``: the message's
    ``topic/partition``, when the caller has it already."""
    where = where or f"{message.topic}/{message.partition}"
    decoded = raw.decode("utf-8", errors="surrogateescape")
    text = decoded.strip()
    if INGEST_ERROR_MARK in text:
        rejected = _ingest_error(decoded, where, message)
        if rejected is not None:
            return rejected
    item = parse_json_line(text, where, message.offset)
    if isinstance(item, EventError):
        return replace(item, partition=message.partition)
    return EventRecord(item, text, source)


def _foreign(message: InboundMessage, record: EventRecord, owner: str, number: int) -> LineError:
    """A batch is one participant's: a line naming another is refused, never judged as the owner's nor
    slipped into the other participant's state from a partition that is not its own."""
    event = record.event
    error = EventError(
        f"{message.topic}/{message.partition}",
        message.offset,
        "participant",
        f"line {number} of a batch of {owner!r} names participant {event.participant!r}: "
        "a batch holds the events of one participant",
        record.raw[:500],
        event_id=event.event_id,
        participant=event.participant,
        ts=event.ts,
        partition=message.partition,
    )
    return LineError(error, record.source, record.raw)


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


def line_dead_letter(item: LineError, message: InboundMessage) -> DeadLetter:
    """Keeps the whole line (or the whole single-event message)."""
    letter = DeadLetter.from_error(item.error, item.source, key_participant(message))
    return DeadLetter(letter.source, letter.participant, letter.field, letter.reason, item.raw)
