"""Consumer lag from the broker's own end offsets, read by a client of its own.

Lag used to be read from the faust consumer's last fetch, which goes stale exactly when it matters: with a
dead or stuck agent the fetcher stops, and lag read 0 while events piled up. Here a separate kafka-python
client asks the broker for each partition's end offset (and the group's committed offset) every few
seconds, in a thread the agent cannot block; lag is end offset minus the monitor's processed position
(or the committed one, for a partition it has not processed since start). While the broker cannot be
reached the last values stay and ``broker_offsets_read_timestamp_seconds`` stops moving.

The end offset taken is the larger of the broker's answer and the high watermark the worker's own fetches
last saw: tansu answers ListOffsets(latest) with the base offset of its last record batch (4272 for 5,000
records in one test), so either source alone can under-count; together they do not read 0 while
messages wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.streams.kafka_security import KafkaSecurity

log = logging.getLogger(__name__)


class BrokerOffsets:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        metrics: Metrics,
        processed: Callable[[], dict[int, int]],
        highwaters: Callable[[], dict[int, int]] = dict,
        interval: float = 2.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.metrics = metrics
        self.processed = processed
        self.highwaters = highwaters
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandboxwatch-lag", daemon=True)
        self._consumer: Any = None
        self._last_read = time.monotonic()  # from the start: a broker never reached ages like a lost one

    def seconds_since_read(self) -> float:
        """How long the broker has not answered an end-offsets read (the worker's readiness reads it)."""
        return time.monotonic() - self._last_read

    def start(self) -> BrokerOffsets:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.read_once()
                if failing:
                    log.warning("end offsets are read from %s again", self.bootstrap)
                failing = False
            except Exception as exc:  # the broker may be down: keep the last values, say so in the log once
                if not failing:
                    log.warning("end offsets cannot be read from %s (retrying): %s", self.bootstrap, exc)
                failing = True
                self._close()
            self._stop.wait(self.interval)
        self._close()

    def read_once(self) -> dict[int, int]:
        """Partition -> lag, also exported; raises while the broker cannot be reached."""
        from kafka import KafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                enable_auto_commit=False,
                client_id="sandboxwatch-lag",
                request_timeout_ms=5000,
                **KafkaSecurity.from_env().kafka_python(),
            )
        consumer = self._consumer
        partitions = consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        ends: dict[Any, int] = consumer.end_offsets(tps)
        processed = self.processed()
        seen = self.highwaters()
        lags: dict[int, int] = {}
        for tp in tps:
            end = ends.get(tp)
            if end is None:
                continue
            end = max(end, seen.get(tp.partition, 0))
            done = processed.get(tp.partition)
            position = done + 1 if done is not None else (consumer.committed(tp) or 0)
            lag = max(0, end - position)
            labels = (self.topic, str(tp.partition))
            self.metrics.end_offset.labels(*labels).set(end)
            self.metrics.position.labels(*labels).set(position)
            self.metrics.lag.labels(*labels).set(lag)
            lags[tp.partition] = lag
        self.metrics.offsets_read.set(time.time())
        self._last_read = time.monotonic()
        return lags

    def _close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except Exception:  # closing a client of a broker that is gone may fail; nothing to keep
                log.debug("lag client close failed", exc_info=True)
