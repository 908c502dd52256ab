"""Asking the store how it is when nothing has been written for a while.

The store-health metrics used to move only with writes, so a worker with no events to write kept reading
"writable" through a ClickHouse outage, and the outage was found only by the next burst of events. A
worker that has written nothing (and probed nothing) for ``idle_seconds`` therefore asks the store itself
(``Store.ping``: one cheap round trip, nothing written) and reports the answer; while the answer is bad it
asks again every ``failing_seconds``, so the metrics turn good again without waiting for an event.

The probe runs in a thread of its own and waits at most ``timeout`` for an answer: a hung server (accepting
connections, answering nothing) reads as unwritable, and nothing of the stream waits for it. A write that
is failing and being retried reports its own outcome (``store.write_retry``): the probe keeps out of it,
and drops its answer if a write reported while it was asking."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Protocol

from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.write_retry import WriteRetry

log = logging.getLogger(__name__)

# No successful write or probe for this long: ask the store.
PROBE_IDLE_SECONDS = 10.0
# While the last probe failed: ask again this often, so recovery shows within seconds.
PROBE_FAILING_SECONDS = 2.0
# A probe with no answer after this long is a failure (a hung server).
PROBE_TIMEOUT_SECONDS = 5.0


class ProbeHealth(Protocol):
    """What the probe reports; the metrics implement it (``alerts.metrics.Metrics``)."""

    def store_probed(self) -> None: ...

    def store_probe_failed(self, error: StoreError) -> None: ...


class StoreProbe:
    def __init__(
        self,
        ping: Callable[[float], None],
        writes: WriteRetry,
        health: ProbeHealth,
        idle_seconds: float = PROBE_IDLE_SECONDS,
        failing_seconds: float = PROBE_FAILING_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
        tick: float = 1.0,
    ) -> None:
        self.ping = ping
        self.writes = writes
        self.health = health
        self.idle_seconds = idle_seconds
        self.failing_seconds = failing_seconds
        self.timeout = timeout
        self.tick = tick
        self._last_ok = time.monotonic()
        self._last_attempt = 0.0
        # The write count when the last probe failed: the probe stays in its failing pace until a write
        # succeeds after it or a probe does.
        self._failed_at: int | None = None
        self._pending: Future[None] | None = None
        # One thread runs the pings, one at a time: a ping stuck past its timeout keeps it, and no second
        # one is started behind it.
        self._pinger = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandboxwatch-store-probe")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandboxwatch-store-health", daemon=True)

    def start(self) -> StoreProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        self._pinger.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.probe_if_due()
            except Exception:  # the health thread must outlive any surprise; the next tick tries again
                log.exception("the store probe failed unexpectedly")

    @property
    def failing(self) -> bool:
        return self._failed_at is not None and self._failed_at == self.writes.successes

    def due(self, now: float) -> bool:
        if self.writes.failing:
            return False  # a write is waiting out a failure and says so itself
        if self.failing:
            return now - self._last_attempt >= self.failing_seconds
        return now - max(self.writes.last_success, self._last_ok) >= self.idle_seconds

    def probe_if_due(self) -> bool | None:
        """Probe if due and report: True or False for the store's answer; None when no probe was due, the
        previous one still hangs (already reported), or a write reported meanwhile (its word stands)."""
        now = time.monotonic()
        if self._pending is not None and not self._pending.done():
            return None
        if not self.due(now):
            return None
        seen = self.writes.successes
        self._last_attempt = now
        self._pending = self._pinger.submit(self.ping, self.timeout)
        error: StoreError | None = None
        try:
            self._pending.result(timeout=self.timeout + 1.0)
        except FutureTimeout:
            error = StoreError(f"no answer to the store probe within {self.timeout:g} s")
        except StoreError as exc:
            error = exc
        except Exception as exc:  # an unexpected client error is still "cannot use the store"
            error = StoreError(f"store probe: {type(exc).__name__}: {exc}")
        if self.writes.successes != seen or self.writes.failing:
            return None
        if error is None:
            if self.failing:
                log.warning("the store answers its probe again")
            self._failed_at = None
            self._last_ok = time.monotonic()
            self.health.store_probed()
            return True
        if not self.failing:
            log.warning("the store does not answer its probe (no write for %.0f s): %s", self.idle_seconds, error)
        self._failed_at = self.writes.successes
        self.health.store_probe_failed(error)
        return False
