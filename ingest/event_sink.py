"""Where connectors put canonical events: Kafka in production, a list in unit tests.

``publish`` returns only once every event is acknowledged by the brokers (acks=all, flush), because the
caller checkpoints right after it. Events are keyed by participant, like every other producer of the events
topic, so a participant's events stay on one partition in order; one poll's events of a participant travel
as one batch message of JSON Lines (docs/events.md, "Stream messages")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from sandboxwatch.streams.inbound import MAX_BATCH_BYTES
from sandboxwatch.streams.kafka_security import KafkaSecurity
from sandboxwatch.streams.publish import batch_messages

Event = dict[str, Any]


def encode(event: Event) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class EventSink(Protocol):
    def publish(self, events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Collects events in order; for unit tests of the pure connector logic."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, events: Sequence[Event]) -> None:
        self.events.extend(json.loads(encode(event)) for event in events)

    def close(self) -> None:
        pass


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=10,
            retries=5,
            # At-least-once with stable event ids (the monitor counts a re-sent id once): some
            # Kafka-protocol brokers (tansu) refuse idempotent producers, and none is needed.
            enable_idempotence=False,
            batch_size=1024 * 1024,
            max_request_size=2 * MAX_BATCH_BYTES + 64 * 1024,
            **KafkaSecurity.from_env().kafka_python(),
        )

    def publish(self, events: Sequence[Event]) -> None:
        messages = batch_messages((str(event["participant"]).encode("utf-8"), encode(event)) for event in events)
        futures = [self._producer.send(self.topic, key=key, value=value) for key, value in messages]
        self._producer.flush(timeout=self.timeout_s)
        for future in futures:
            future.get(timeout=self.timeout_s)  # raises the broker's error instead of losing the event

    def close(self) -> None:
        self._producer.close()
