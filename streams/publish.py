"""Publishing canonical event lines to the events topic, keyed by participant.

The key keeps a participant's events on one partition, in order, so its state stays partition-local.
A line that is not JSON is published as is, under no key: the monitor dead-letters it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sandboxwatch.rules_engine.event_reader import MAX_DEPTH
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.streams.kafka_security import KafkaSecurity
from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES


def participant_of(line: str) -> bytes | None:
    try:
        obj = loads_bounded(line, MAX_DEPTH)
    except ValueError:
        return None
    participant = obj.get("participant") if isinstance(obj, dict) else None
    return participant.encode() if isinstance(participant, str) else None


def publish_lines(
    bootstrap: str,
    topic: str,
    lines: Iterable[str],
    progress: Callable[[int], None] | None = None,
) -> int:
    messages = ((participant_of(text), text.encode()) for text in (line.rstrip("\n") for line in lines) if text.strip())
    sent, refused = publish_messages(bootstrap, topic, messages, progress)
    for _, exc in refused:
        raise exc
    return sent


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
        batch_size=256 * 1024,
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
