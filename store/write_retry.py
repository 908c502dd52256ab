"""Waiting out a store outage instead of dying of it.

A store write that fails because ClickHouse is stopped, restarting or unreachable is retried with capped
exponential backoff until it succeeds, so the caller never goes on (and never commits an offset) past work
that is not durably stored. The writes are idempotent (the store skips ids it holds), so a retried batch
doubles nothing. While it waits, the store-health metrics say so: the worker is alive but blind."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sandboxwatch.store.backends import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreHealth(Protocol):
    """What a retrying writer reports; the metrics implement it (``alerts.metrics.Metrics``)."""

    def store_written(self) -> None: ...

    def store_failed(self, error: StoreError) -> None: ...


class _Unobserved:
    def store_written(self) -> None:
        pass

    def store_failed(self, error: StoreError) -> None:
        pass


@dataclass(slots=True)
class WriteRetry:
    health: StoreHealth = field(default_factory=_Unobserved)
    first_delay: float = 0.2
    max_delay: float = 10.0
    # Set when the process shuts down: a write still waiting for the store gives up with its last error.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Read by the idle worker's store probe (store.store_probe): when a write last succeeded (monotonic
    # clock), how many have, and how many are waiting out a failure now (those report the store's health
    # themselves, so the probe keeps out of it).
    last_success: float = field(default_factory=time.monotonic, init=False)
    successes: int = field(default=0, init=False)
    failing: int = field(default=0, init=False)

    def run(self, write: Callable[[], T], what: str, raise_data_errors: bool = False) -> T:
        """``raise_data_errors``: a refusal of the rows themselves is raised at once (the caller isolates the
        row) instead of being retried like an outage."""
        delay = self.first_delay
        failures = 0
        try:
            while True:
                try:
                    result = write()
                except StoreError as exc:
                    if raise_data_errors and exc.data_error:
                        raise
                    failures += 1
                    if failures == 1:
                        self.failing += 1
                    self.health.store_failed(exc)
                    if self.stopping.is_set():
                        raise
                    log.warning("store write (%s) failed %d time(s), retrying in %.1fs: %s", what, failures, delay, exc)
                    if self.stopping.wait(delay):
                        raise
                    delay = min(delay * 2, self.max_delay)
                    continue
                if failures:
                    log.warning("store write (%s) succeeded after %d failure(s)", what, failures)
                self.last_success = time.monotonic()
                self.successes += 1
                self.health.store_written()
                return result
        finally:
            if failures:
                self.failing -= 1
