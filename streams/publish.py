"""Publishing canonical event lines to the events topic, keyed by participant.

The key keeps a participant's events on one partition, in order, so its state stays partition-local.
A line that is not JSON is published as is, under no key: the monitor dead-letters it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sandboxwatch.rules_engine.event_reader import MAX_DEPTH
from sandboxwatch.rules_engine.json_bounds import loads_bounded
from sandboxwatch.streams.kafka_security import KafkaSecurity


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
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=256 * 1024,
        **KafkaSecurity.from_env().kafka_python(),
    )
    sent = 0
    try:
        for line in lines:
            text = line.rstrip("\n")
            if not text.strip():
                continue
            producer.send(topic, key=participant_of(text), value=text.encode())
            sent += 1
            if progress and sent % 5000 == 0:
                progress(sent)
        producer.flush()
    finally:
        producer.close()
    if progress:
        progress(sent)
    return sent
