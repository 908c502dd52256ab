"""The worker's health endpoint and the store-write retry, without a broker."""

from __future__ import annotations

import threading
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from sandboxwatch.alerts.health_endpoint import EndpointError, HealthEndpoint
from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.write_retry import WriteRetry
from tests.local_services import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


def test_live_and_ready_answer_what_the_probes_say_and_metrics_are_served() -> None:
    metrics = Metrics()
    state = {"live": (True, "live"), "ready": (False, "store not writable: writes are being retried")}
    port = free_port()
    endpoint = HealthEndpoint(
        "127.0.0.1", port, metrics.registry, lambda: state["live"], lambda: state["ready"]
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert get(f"{base}/live") == (200, "live\n")
        assert get(f"{base}/ready") == (503, "store not writable: writes are being retried\n")
        state["ready"] = (True, "ready")
        assert get(f"{base}/ready") == (200, "ready\n")
        state["live"] = (False, "agent failed: RuntimeError: bug")
        assert get(f"{base}/live") == (503, "agent failed: RuntimeError: bug\n")
        status, body = get(f"{base}/metrics")
        assert status == 200 and "sandboxwatch_store_writable 1.0" in body
        assert get(f"{base}/nothing")[0] == 404
        with pytest.raises(EndpointError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            HealthEndpoint("127.0.0.1", port, metrics.registry, lambda: (True, ""), lambda: (True, ""))
    finally:
        endpoint.shutdown()


def test_a_failing_write_is_retried_with_capped_backoff_and_reported_until_it_succeeds() -> None:
    metrics = Metrics()
    delays: list[float] = []
    retry = WriteRetry(metrics, first_delay=0.01, max_delay=0.04)
    original_wait = retry.stopping.wait

    def wait(timeout: float | None = None) -> bool:
        delays.append(timeout or 0)
        return original_wait(0)

    retry.stopping.wait = wait  # type: ignore[method-assign]
    attempts = iter([StoreError("refused")] * 5 + [None])

    def write() -> str:
        error = next(attempts)
        if error:
            raise error
        return "stored"

    assert retry.run(write, "test") == "stored"
    assert delays == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert metrics.store_failures._value.get() == 5
    assert metrics.store_writable._value.get() == 1
    assert metrics.store_last_write._value.get() > 0


def test_a_write_still_waiting_when_the_worker_stops_gives_up_with_the_store_error() -> None:
    metrics = Metrics()
    retry = WriteRetry(metrics, first_delay=5, max_delay=5)

    def write() -> None:
        raise StoreError("ClickHouse server unreachable")

    threading.Timer(0.1, retry.stopping.set).start()
    with pytest.raises(StoreError, match="unreachable"):
        retry.run(write, "test")
    assert metrics.store_writable._value.get() == 0
