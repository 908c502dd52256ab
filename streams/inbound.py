"""Turning a consumed Kafka message into event records and errors, never an exception.

A message holds one event, or a batch of one participant's events as JSON Lines (docs/events.md, "Stream
messages"): producers batch so that the stream machinery runs once per batch instead of once per event.
Every line of a batch is its own event: it is deduplicated, stored, judged and, when bad, dead-lettered
alone, under a source naming the message and its line (``topic/partition/offset:line``)."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxwatch.rules_engine.event_reader import MAX_DEPTH, parse_json_line
from sandboxwatch.rules_engine.events import EventError
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.store.records import DeadLetter, EventRecord

INGEST_ERROR_MARK = '"ingest_error"'
# A batch's bound (docs/events.md): producers stay below both; a message with more lines is refused whole,
# as one invalid event, so no message can make one batch unboundedly large. Bytes are bounded by the
# broker's message.max.bytes (1 MiB by default) before the message reaches us.
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
        return [_single(message)]
    lines = value.split(b"\n")
    if sum(1 for line in lines if line.strip()) > MAX_BATCH_LINES:
        error = EventError(
            f"{message.topic}/{message.partition}",
            message.offset,
            None,
            f"a batch of more than {MAX_BATCH_LINES} lines (docs/events.md, stream messages)",
            value[:500].decode("utf-8", errors="replace"),
        )
        return [LineError(error, message.source, value.decode("utf-8", errors="replace"))]
    owner = key_participant(message)
    items: list[EventRecord | LineError] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = _line(message, line, number)
        if isinstance(item, EventRecord):
            participant = item.event.participant
            if owner is None:
                owner = participant  # an unkeyed batch belongs to the participant of its first event
            elif participant != owner:
                item = _foreign(message, item, owner, number)
        items.append(item)
    return items


def decode(message: InboundMessage) -> EventRecord | EventError:
    """A single-event message (the offset stands in for the line number, so errors point at the exact
    message to fetch)."""
    item = _single(message)
    return item if isinstance(item, EventRecord) else item.error


def _single(message: InboundMessage) -> EventRecord | LineError:
    raw = message.value or b""
    item = _text_item(raw, f"{message.topic}/{message.partition}", message.offset, message.source)
    if isinstance(item, EventError):
        return LineError(item, message.source, raw.decode("utf-8", errors="replace"))
    return item


def _line(message: InboundMessage, line: bytes, number: int) -> EventRecord | LineError:
    """Line ``number`` of a batch. Its errors name the message's partition and offset like a single
    message's do (the invalid_event finding says which message), its dead letter names the line too."""
    source = f"{message.source}:{number}"
    item = _text_item(line, f"{message.topic}/{message.partition}", message.offset, source)
    if isinstance(item, EventError):
        return LineError(item, source, line.strip().decode("utf-8", errors="replace"))
    return item


def _text_item(raw: bytes, where: str, offset: int, source: str) -> EventRecord | EventError:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return EventError(where, offset, None, f"not UTF-8 ({exc.reason} at byte {exc.start})", raw.decode("latin-1"))
    text = text.strip()
    if INGEST_ERROR_MARK in text:
        rejected = _ingest_error(text, where, offset)
        if rejected is not None:
            return rejected
    item = parse_json_line(text, where, offset)
    if isinstance(item, EventError):
        return item
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
    )
    return LineError(error, record.source, record.raw)


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
        f"{obj.get('origin', 'connector')}: {obj.get('reason', 'rejected by the connector')}",
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
    raw = (message.value or b"").decode("utf-8", errors="replace")
    return line_dead_letter(LineError(error, message.source, raw), message)


def line_dead_letter(item: LineError, message: InboundMessage) -> DeadLetter:
    """Keeps the whole line (or the whole single-event message)."""
    letter = DeadLetter.from_error(item.error, item.source, key_participant(message))
    return DeadLetter(letter.source, letter.participant, letter.field, letter.reason, item.raw)
