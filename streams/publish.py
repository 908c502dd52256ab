"""Publishing canonical event lines to the events topic, keyed by participant, in batches.

The key keeps a participant's events on one partition, in order, so its state stays partition-local. Each
poll of input (``POLL_LINES`` lines of a file, or what a connector fetched at once) is grouped by participant
and sent as batch messages of JSON Lines (docs/events.md, "Stream messages"): the stream worker's machinery
then runs once per batch rather than once per event. A line that is not JSON, or names no participant, is
published alone and unkeyed, as before: the monitor dead-letters it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

import orjson

from sandboxwatch.rules_engine.event_reader import MAX_DEPTH
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.streams.inbound import MAX_BATCH_BYTES, MAX_BATCH_LINES
from sandboxwatch.streams.kafka_security import KafkaSecurity

# Lines read per poll of a file: a participant's lines within one poll travel together, so this is also
# how far apart (in input lines) two participants' events can be reordered by batching.
POLL_LINES = MAX_BATCH_LINES

Message = tuple[bytes | None, bytes]


def participant_of(line: str) -> bytes | None:
    try:
        # orjson refuses nesting past its own limit with an error (no recursion), so it needs no depth check.
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            obj = loads_bounded(line, MAX_DEPTH)  # what orjson refuses but the monitor may accept (NaN, ...)
        except ValueError:
            return None
    participant = obj.get("participant") if isinstance(obj, dict) else None
    if not isinstance(participant, str):
        return None
    try:
        return participant.encode()
    except UnicodeEncodeError:  # a lone surrogate escape: sent unkeyed, the monitor refuses the line
        return None


def batch_messages(keyed: Iterable[tuple[bytes | None, bytes]]) -> list[Message]:
    """One poll's (participant key, event line) pairs as messages: each participant's lines in their order,
    joined by newlines, at most MAX_BATCH_LINES lines and MAX_BATCH_BYTES bytes a message. Unkeyed lines,
    lines holding a newline and lines too long for a batch go alone."""
    groups: dict[bytes, list[bytes]] = {}
    alone: list[Message] = []
    for key, line in keyed:
        if key is None or b"\n" in line or len(line) >= MAX_BATCH_BYTES:
            alone.append((key, line))
        else:
            groups.setdefault(key, []).append(line)
    messages: list[Message] = []
    for key, lines in groups.items():
        batch: list[bytes] = []
        size = 0
        for line in lines:
            if batch and (len(batch) >= MAX_BATCH_LINES or size + len(line) + 1 > MAX_BATCH_BYTES):
                messages.append((key, b"\n".join(batch)))
                batch, size = [], 0
            batch.append(line)
            size += len(line) + 1
        if batch:
            messages.append((key, b"\n".join(batch)))
    return messages + alone


def polls(lines: Iterable[str], size: int = POLL_LINES) -> Iterator[list[str]]:
    iterator = iter(lines)
    while chunk := list(islice(iterator, size)):
        yield chunk


def line_messages(lines: Sequence[str]) -> list[Message]:
    keyed = []
    for line in lines:
        text = line.rstrip("\n")
        if text.strip():
            keyed.append((participant_of(text), text.encode()))
    return batch_messages(keyed)


def publish_lines(
    bootstrap: str,
    topic: str,
    lines: Iterable[str],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Returns the number of event lines sent (not messages)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=1024 * 1024,
        max_request_size=2 * MAX_BATCH_BYTES + 64 * 1024,
        **KafkaSecurity.from_env().kafka_python(),
    )
    sent = reported = 0
    try:
        for poll in polls(lines):
            for key, value in line_messages(poll):
                producer.send(topic, key=key, value=value)
                sent += value.count(b"\n") + 1
            if progress and sent - reported >= 5000:
                progress(sent)
                reported = sent
        producer.flush()
    finally:
        producer.close()
    if progress:
        progress(sent)
    return sent
