"""The idle worker's store probe (store/store_probe.py): when it asks, what it reports, and what it leaves
to the writes. The pings here are scripted callables (the probe's own logic is under test); the real
round trip is Store.ping on the embedded store below, and on a stopped clickhouse-server in
tests/integration/test_idle_store_health.py."""

from __future__ import annotations

import threading
import time

import pytest

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.store_probe import StoreProbe
from sandboxwatch.store.write_retry import WriteRetry


class Pings:
    """A ping that answers (or raises) as told and counts its calls."""

    def __init__(self) -> None:
        self.error: StoreError | None = None
        self.hang = threading.Event()
        self.calls = 0

    def __call__(self, timeout: float) -> None:
        self.calls += 1
        if self.hang.is_set():
            time.sleep(timeout + 1.5)
        if self.error is not None:
            raise self.error


def probe_of(pings: Pings, metrics: Metrics, retry: WriteRetry, **options: float) -> StoreProbe:
    settings = {"idle_seconds": 0.2, "failing_seconds": 0.1, "timeout": 0.3} | options
    return StoreProbe(pings, retry, metrics, **settings)


def writable(metrics: Metrics) -> float:
    return float(metrics.store_writable._value.get())


def test_an_idle_worker_probes_and_reports_the_outage_and_the_recovery_without_any_write() -> None:
    metrics, retry, pings = Metrics(), WriteRetry(), Pings()
    retry.health = metrics
    probe = probe_of(pings, metrics, retry, idle_seconds=0.5, failing_seconds=0.3)
    assert probe.probe_if_due() is None and pings.calls == 0  # not idle for idle_seconds yet
    time.sleep(0.55)
    pings.error = StoreError("ClickHouse server unreachable: [Errno 111] Connection refused")
    assert probe.probe_if_due() is False
    assert writable(metrics) == 0 and metrics.store_ok is False
    assert metrics.store_problem == (
        "the store does not answer its probe (ClickHouse server unreachable: [Errno 111] Connection refused)"
    )
    assert metrics.store_failures._value.get() == 0  # a probe is not a write
    # Failing: asked again every failing_seconds, not every idle_seconds.
    assert probe.probe_if_due() is None
    time.sleep(0.35)
    pings.error = None
    assert probe.probe_if_due() is True
    assert (writable(metrics), metrics.store_ok, pings.calls) == (1, True, 2)
    assert metrics.store_last_probe._value.get() > 0
    assert metrics.store_last_write._value.get() == 0  # nothing was written: the probe told
    assert probe.probe_if_due() is None  # healthy again: the idle pace


def test_a_busy_worker_does_not_probe_its_writes_tell() -> None:
    metrics, retry, pings = Metrics(), WriteRetry(), Pings()
    retry.health = metrics
    probe = probe_of(pings, metrics, retry)
    for _ in range(4):
        time.sleep(0.1)
        retry.run(lambda: None, "events")
        assert probe.probe_if_due() is None
    assert pings.calls == 0


def test_a_hung_store_reads_unwritable_after_the_timeout_and_no_second_probe_queues_behind_it() -> None:
    metrics, retry, pings = Metrics(), WriteRetry(), Pings()
    probe = probe_of(pings, metrics, retry, idle_seconds=0.0)
    pings.hang.set()
    started = time.monotonic()
    assert probe.probe_if_due() is False
    took = time.monotonic() - started
    assert 1.3 - 0.05 <= took < 3.0, took  # timeout + 1 s of grace for the client's own timeout
    assert writable(metrics) == 0
    assert "no answer to the store probe within 0.3 s" in metrics.store_problem
    time.sleep(0.15)
    assert probe.probe_if_due() is None and pings.calls == 1  # the first one still hangs
    pings.hang.clear()
    answers = []
    deadline = time.monotonic() + 5
    while True not in answers and time.monotonic() < deadline:  # once the hung ping has returned
        answers.append(probe.probe_if_due())
        time.sleep(0.05)
    assert answers[-1] is True and set(answers[:-1]) <= {None} and pings.calls == 2
    assert writable(metrics) == 1


def test_a_write_waiting_out_a_failure_keeps_the_probe_out_and_a_write_during_a_probe_wins() -> None:
    metrics, retry, pings = Metrics(), WriteRetry(first_delay=0.05, max_delay=0.05), Pings()
    retry.health = metrics
    probe = probe_of(pings, metrics, retry, idle_seconds=0.0)
    failures = iter([StoreError("refused")] * 3)
    seen_during: list[bool | None] = []

    def write() -> None:
        if retry.failing:
            seen_during.append(probe.probe_if_due())
        error = next(failures, None)
        if error is not None:
            raise error

    retry.run(write, "events")
    assert seen_during == [None, None, None] and pings.calls == 0  # the failing write reports itself
    assert retry.failing == 0 and writable(metrics) == 1

    # A probe that fails while a write succeeds: the write's word stands.
    def ping(timeout: float) -> None:
        retry.run(lambda: None, "findings")
        raise StoreError("refused")

    probe.ping = ping
    assert probe.probe_if_due() is None
    assert writable(metrics) == 1 and metrics.store_ok is True


def test_a_successful_write_after_a_failed_probe_returns_the_probe_to_its_idle_pace() -> None:
    metrics, retry, pings = Metrics(), WriteRetry(), Pings()
    retry.health = metrics
    probe = probe_of(pings, metrics, retry, idle_seconds=0.3, failing_seconds=0.05)
    time.sleep(0.35)
    pings.error = StoreError("refused")
    assert probe.probe_if_due() is False
    retry.run(lambda: None, "events")
    assert writable(metrics) == 1
    time.sleep(0.1)
    assert probe.probe_if_due() is None  # not the failing pace any more: a write just succeeded


def test_the_probe_thread_reports_on_its_own_and_stops() -> None:
    metrics, retry, pings = Metrics(), WriteRetry(), Pings()
    pings.error = StoreError("refused")
    probe = StoreProbe(pings, retry, metrics, idle_seconds=0.1, failing_seconds=0.1, timeout=0.5, tick=0.05).start()
    try:
        deadline = time.monotonic() + 5
        while writable(metrics) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writable(metrics) == 0
        pings.error = None
        while writable(metrics) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writable(metrics) == 1
    finally:
        probe.stop()
    calls = pings.calls
    time.sleep(0.3)
    assert pings.calls == calls


def test_store_ping_answers_on_the_embedded_store_and_fails_once_its_database_is_gone(store: Store) -> None:
    store.ping(5.0)
    store.backend.drop_database()  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match=f"the store's database {store.db} does not exist"):
        store.ping(5.0)
