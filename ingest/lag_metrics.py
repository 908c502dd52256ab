"""A connector's own metrics: how far behind each stream's cursor is, and when the source last answered.

``sandboxwatch_ingest_lag_seconds`` is now minus the time up to which a stream has been read completely,
computed at scrape time so a connector that stopped polling shows a growing lag rather than a frozen one.
Paired with ``sandboxwatch_ingest_last_answer_timestamp_seconds`` it tells a stuck connector (the source
answers, the cursor does not move) from an unreachable source. This is operational monitoring of the
connector, not a rule, so wall-clock time is the right clock here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "sandboxwatch_ingest"
LAG = f"{PREFIX}_lag_seconds"
LAST_ANSWER = f"{PREFIX}_last_answer_timestamp_seconds"


class Observable(Protocol):
    @property
    def source(self) -> str: ...

    published: int
    rejected: int
    retracted: int
    last_answer_s: float | None

    def positions(self) -> dict[str, int]: ...


class ConnectorCollector(Collector):
    def __init__(self, connector: Observable, clock: Callable[[], float] = time.time) -> None:
        self.connector = connector
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c, now = self.connector, self.clock()
        lag = GaugeMetricFamily(
            LAG, "Now minus the time a stream's source has been read up to.", labels=["source", "endpoint"]
        )
        for endpoint, read_to_ms in sorted(c.positions().items()):
            lag.add_metric([c.source, endpoint], max(0.0, now - read_to_ms / 1000))
        yield lag
        answered = GaugeMetricFamily(LAST_ANSWER, "Wall-clock time of the source's latest answer.", labels=["source"])
        if c.last_answer_s is not None:
            answered.add_metric([c.source], c.last_answer_s)
        yield answered
        messages = CounterMetricFamily(
            f"{PREFIX}_messages", "Messages published by the connector, by kind.", labels=["source", "kind"]
        )
        messages.add_metric([c.source, "event"], c.published - c.rejected)
        messages.add_metric([c.source, "ingest_error"], c.rejected)
        messages.add_metric([c.source, "retraction"], c.retracted)
        yield messages


def registry_for(connector: Observable, clock: Callable[[], float] = time.time) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ConnectorCollector(connector, clock))
    return registry


def serve(connector: Observable, port: int, host: str = "0.0.0.0") -> None:
    start_http_server(port, host, registry_for(connector))
