"""What ``sandboxwatch up`` publishes for an events file: the file exactly as ``sandboxwatch check`` reads it.

The same reader (encoding, BOM, UTF-16, ``--input-format`` or the content, line numbers, one error per bad
line), so ``up`` and ``check`` judge the same events and report the same bad lines:

- a bad line goes out as an ``ingest_error`` naming the file and line (``streams.inbound``), so the
  stream's invalid_event finding is the one ``check`` makes for it, with the same id;
- the events go out in ``check``'s order (event time, stable) on one partition, so the engine sees them
  in the order ``check`` judges them and nothing in a replayed file is late, however the stream batches
  the messages; a CSV row goes out as the JSON object its cells stand for;
- duplicates are decided in file order, as ``check`` decides them (docs/events.md, Duplicates): a later
  copy of an id never goes out before the first copy, whatever its event time. Sorting alone would put a
  later version with an earlier ``ts`` first, and the stream would judge it and refuse the first copy,
  hiding that copy's breach; published after the first, it is the re-delivery or conflicting duplicate
  ``check`` reports, with the same finding id.

A message the broker or the client refuses (its size) is replaced by an ``ingest_error`` with the reason,
so it is dead-lettered, reported and counted like any other line that could not be monitored."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sandboxwatch.rules_engine.arrival_order import FirstCopies
from sandboxwatch.rules_engine.event_reader import (
    csv_object_text,
    csv_records,
    jsonl_texts,
    open_events,
    parse_json_line,
)
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.streams.inbound import file_error_message
from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES
from sandboxwatch.streams.publish import consecutive_batches, publish_messages

Message = tuple[bytes | None, bytes]


@dataclass(slots=True)
class Replay:
    source: str
    fmt: str
    # (key, value) in publishing order, and the file line each came from.
    messages: list[Message] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    # Valid events of the licence's participant: none means nothing usable was read (exit 2, as check).
    usable: int = 0
    invalid: int = 0


def read_replay(path: str, fmt: str | None, participant: str) -> Replay:
    """Raises OSError when the file cannot be opened."""
    events: list[tuple[tuple[datetime, int], int, Message]] = []
    errors: list[tuple[int, Message]] = []
    order = FirstCopies().order  # a later copy of an id sorts after its first, as check decides duplicates
    with open_events(path, fmt) as (lines, source, chosen):
        replay = Replay(source, chosen)
        for number, item, text in _records(lines, source, chosen):
            if isinstance(item, EventError):
                # Whatever participant a bad line names, it is a line of this participant's file: check reports
                # it, so up attributes it here too (the monitor would count another's as unattributed).
                errors.append((number, error_message(dataclasses.replace(item, participant=participant))))
            else:
                replay.usable += item.participant == participant
                events.append((order(item), number, (item.participant.encode(), text.encode())))
    events.sort(key=lambda entry: entry[0])  # stable: equal instants keep file order, as in check
    replay.invalid = len(errors)
    for number, message in errors:
        replay.messages.append(message)
        replay.lines.append(number)
    for _, number, message in events:
        replay.messages.append(message)
        replay.lines.append(number)
    return replay


def _records(lines: Iterator[str], source: str, fmt: str) -> Iterator[tuple[int, Event | EventError, str]]:
    if fmt == "csv":
        for number, item, obj in csv_records(lines, source):
            text = csv_object_text(obj) if isinstance(item, Event) else ""
            yield number, item, text
        return
    for number, text in jsonl_texts(lines):
        yield number, parse_json_line(text, source, number), text


def error_message(error: EventError) -> Message:
    key = error.participant.encode() if error.participant else None
    return key, json.dumps(file_error_message(error), separators=(",", ":")).encode()


def publish_replay(bootstrap: str, topic: str, replay: Replay, max_request_size: int = MAX_EVENT_MESSAGE_BYTES) -> int:
    """Publish the replay as batch messages of consecutive lines under one key (docs/events.md, "Stream
    messages"; the order stays check's); returns the number of lines on the topic (each line gives exactly
    one event line). A refused batch is sent again line by line, and a refused line is replaced by its
    stand-in."""
    batches = consecutive_batches(replay.messages)
    _, refused = publish_messages(bootstrap, topic, [m for m, _ in batches], max_request_size=max_request_size)
    failed = {index for index, _ in refused}
    sent = sum(len(lines) for index, (_, lines) in enumerate(batches) if index not in failed)
    if not refused:
        return sent
    singles = [line for index in sorted(failed) for line in batches[index][1]]
    more, still = publish_messages(
        bootstrap, topic, [replay.messages[i] for i in singles], max_request_size=max_request_size
    )
    stand_ins = [error_message(_refused_error(replay, singles[index], exc)) for index, exc in still]
    extra, lost = publish_messages(bootstrap, topic, stand_ins, max_request_size=max_request_size)
    if lost:
        raise lost[0][1]  # a message of a few hundred bytes refused: the broker is misconfigured
    return sent + more + extra


def _refused_error(replay: Replay, index: int, exc: Exception) -> EventError:
    value = replay.messages[index][1]
    line = replay.lines[index]
    item = parse_json_line(value.decode("utf-8", "surrogateescape"), replay.source, line)
    reason = f"could not be published to the events topic ({type(exc).__name__}: {exc})"[:500]
    if isinstance(item, EventError):
        return EventError(replay.source, line, None, reason, item.raw, item.event_id, item.participant, item.ts)
    raw = value[:500].decode("utf-8", "replace")
    return EventError(replay.source, line, None, reason, raw, item.event_id, item.participant, item.ts)
