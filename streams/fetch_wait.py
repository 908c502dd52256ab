"""A faust transport whose consumer asks the broker to hold an empty fetch for a chosen time.

faust 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to change it.
Apache Kafka answers a waiting fetch as soon as data arrives, so there the value costs nothing; a broker
that holds the fetch for its full wait (tansu, the embedded default's broker, does) adds up to that much
to every event's latency once the stream is caught up. The wait is a worker setting instead."""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport


class _ConsumerThread(AIOKafkaConsumerThread):
    fetch_max_wait_ms = 1500

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its fetcher when the consumer starts, which is after this call.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


def transport_with_fetch_wait(app: faust.App, seconds: float) -> Transport:
    """Install before the app declares topics (they reach the transport through the conductor)."""
    thread_cls = type("ConsumerThread", (_ConsumerThread,), {"fetch_max_wait_ms": max(1, round(seconds * 1000))})

    def new_thread(consumer: Consumer) -> AIOKafkaConsumerThread:
        return thread_cls(consumer, loop=consumer.loop, beacon=consumer.beacon)  # type: ignore[no-any-return]

    consumer_cls = type("Consumer", (Consumer,), {"_new_consumer_thread": new_thread})
    transport_cls = type("Transport", (Transport,), {"Consumer": consumer_cls})
    return transport_cls(app.conf.broker_consumer, app)  # type: ignore[no-any-return]
