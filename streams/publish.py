"""Publishing canonical event lines to the events topic, keyed by participant, in batches.

The key keeps a participant's events on one partition, in order, so its state stays partition-local. Each
poll of input (``POLL_LINES`` lines of a file, or what a connector fetched at once) is grouped by participant
and sent as batch messages of JSON Lines (docs/events.md, "Stream messages"): the stream worker's machinery
then runs once per batch rather than once per event. A line that is not JSON, or names no participant, is
published alone and unkeyed, as before: the monitor dead-letters it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import orjson

from sandboxwatch.rules_engine.event_reader import MAX_DEPTH
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.streams.inbound import MAX_BATCH_BYTES, MAX_BATCH_LINES
from sandboxwatch.streams.kafka_security import KafkaSecurity
from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES

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


def consecutive_batches(messages: Sequence[Message]) -> list[tuple[Message, list[int]]]:
    """Runs of consecutive messages under the same key as batch messages (each with the indices of the
    messages it carries), within the same bounds as ``batch_messages``: for a publisher whose order is the
    judging order (``up`` replays a file in check's order), so batching reorders nothing."""
    out: list[tuple[Message, list[int]]] = []
    run: list[int] = []
    size = 0

    def close() -> None:
        if run:
            key = messages[run[0]][0]
            out.append(((key, b"\n".join(messages[i][1] for i in run)), list(run)))
            run.clear()

    for index, (key, value) in enumerate(messages):
        alone = key is None or b"\n" in value or len(value) >= MAX_BATCH_BYTES
        if run and (alone or key != messages[run[0]][0] or len(run) >= MAX_BATCH_LINES or
                    size + len(value) + 1 > MAX_BATCH_BYTES):  # fmt: skip
            close()
            size = 0
        if alone:
            out.append(((key, value), [index]))
            continue
        run.append(index)
        size += len(value) + 1
    close()
    return out


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
    """Returns the number of event lines sent (not messages): each poll's lines go as batch messages."""
    count = 0

    def batched() -> Iterator[Message]:
        nonlocal count
        for poll in polls(lines):
            for key, value in line_messages(poll):
                count += value.count(b"\n") + 1
                yield key, value

    _, refused = publish_messages(bootstrap, topic, batched(), progress)
    for _, exc in refused:
        raise exc
    return count


def publish_messages(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    progress: Callable[[int], None] | None = None,
    max_request_size: int = MAX_EVENT_MESSAGE_BYTES,
) -> tuple[int, list[tuple[int, Exception]]]:
    """Send (key, value) pairs in order; returns how many were stored and, for each message the client or
    the broker refused for its size, its index and the error, so the caller can dead-letter it with the
    reason. Any other failure (the broker unreachable) raises: that is an outage, not bad data."""
    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

    too_large = (MessageSizeTooLargeError, RecordListTooLargeError)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=1024 * 1024,
        max_request_size=max_request_size,
        **KafkaSecurity.from_env().kafka_python(),
    )
    futures: list[tuple[int, Any]] = []
    refused: list[tuple[int, Exception]] = []
    try:
        for index, (key, value) in enumerate(messages):
            try:
                futures.append((index, producer.send(topic, key=key, value=value)))
            except too_large as exc:
                refused.append((index, exc))
            if progress and (index + 1) % 5000 == 0:
                progress(index + 1)
        producer.flush()
    finally:
        producer.close()
    sent = 0
    for index, future in futures:
        error = future.exception if future.failed() else None
        if error is None:
            sent += 1
        elif isinstance(error, too_large):
            refused.append((index, error))
        else:
            raise error
    if progress:
        progress(sent)
    return sent, sorted(refused, key=lambda item: item[0])
