"""An idle worker's store health tells the truth (issue 12): with no events arriving, the worker probes
ClickHouse itself, so ``sandboxwatch_store_writable`` reads 0 while the server is down and 1 again once it
is back, without waiting for the next event to find out; a hung server (SIGSTOP: connections accepted,
nothing answered) reads 0 as well, within the probe's 5 s timeout. Then the events sent after the outage
are all stored (0 lost, 0 doubled, findings equal to ``sandboxwatch check``'s).

Real services: Debian's clickhouse-server and tansu, a real worker process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines
from sandboxwatch.streams.publish import publish_lines
from tests.helpers import DA_NANG
from tests.integration.conftest import _start
from tests.integration.fault_scenarios import MetricsSampler, accounted, finish, unique_ids, write_day
from tests.integration.pipeline import Pipeline
from tests.local_services import ClickHouseServer, LocalService, TansuBroker

# The worker's quiet-participant flush writes findings 10 s after the last event (idle_flush_seconds): the
# worker counts as idle once no store write has happened for longer than that.
IDLE_S = 12.0
# How soon the metrics must tell: the probe runs after 10 s without a successful write or probe.
TELL_S = 30.0

WRITABLE = "sandboxwatch_store_writable"
LAST_WRITE = "sandboxwatch_store_last_write_timestamp_seconds"


def _metric(sampler: MetricsSampler, name: str) -> float | None:
    values = sampler.read()
    return None if values is None else values.get(name)


def _wait_for(sampler: MetricsSampler, name: str, value: float, within: float, since: float) -> float:
    """Seconds from ``since`` until the metric reads ``value``; fails ``within`` s after ``since``."""
    start = since
    seen = None
    while time.monotonic() - start < within:
        seen = _metric(sampler, name)
        if seen == value:
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{name} read {seen} for {within:.0f} s, never {value}")


def _wait_idle(p: Pipeline, sampler: MetricsSampler) -> None:
    """Until no store write has happened for IDLE_S (the quiet flush included) and the worker is ready."""
    last = None
    since = time.monotonic()
    deadline = since + 120
    while time.monotonic() < deadline:
        now = _metric(sampler, LAST_WRITE)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= IDLE_S and p.readiness()[0] == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"the worker never went idle:\n{p.worker_log()}")


def _signal(server: LocalService, number: signal.Signals) -> None:
    if server.process is not None and server.process.poll() is None:
        os.killpg(server.process.pid, number)


def test_an_idle_worker_reports_clickhouse_down_or_hung_and_back_without_any_event(tmp_path: Path) -> None:
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(accounts=12, seed=21))
    lines = [line.rstrip("\n") for line in scenario_lines(scenario)]
    before, after = lines[: len(lines) // 2], lines[len(lines) // 2 :]
    path = write_day(tmp_path, lines)
    server = _start(ClickHouseServer(tmp_path / "clickhouse"))
    broker = _start(TansuBroker(tmp_path / "tansu"))
    p = Pipeline(broker.address, server.url("unused"), tmp_path)  # type: ignore[attr-defined]
    sampler = MetricsSampler(p.metrics_port)
    try:
        publish_lines(p.kafka, p.topics.events, before)
        p.start_worker()
        store = p.store()
        p.wait_until(lambda: accounted(store) >= unique_ids(before), f"the first {len(before)} events stored")
        store.close()
        _wait_idle(p, sampler)
        assert _metric(sampler, WRITABLE) == 1
        written_at = _metric(sampler, LAST_WRITE)

        stopping = time.monotonic()
        server.stop()  # no traffic from here until the end of the outage (SIGTERM: it may take seconds)
        told = _wait_for(sampler, WRITABLE, 0, TELL_S, since=stopping)
        status, reason = p.readiness()
        assert status == 503 and reason.startswith("store not writable"), (status, reason)

        server.start()
        restored = time.monotonic()
        back = _wait_for(sampler, WRITABLE, 1, TELL_S, since=restored)
        # Nothing was written in between: it was the probe that told, both ways.
        assert _metric(sampler, LAST_WRITE) == written_at
        assert p.readiness()[0] == 200
        print(f"idle worker: store_writable 0 {told:.1f} s after the stop began, 1 again {back:.1f} s after restart")

        # Hung rather than stopped: the server accepts connections and answers nothing (SIGSTOP).
        hung = time.monotonic()
        _signal(server, signal.SIGSTOP)
        told = _wait_for(sampler, WRITABLE, 0, TELL_S, since=hung)
        status, reason = p.readiness()
        assert status == 503 and reason.startswith("store not writable"), (status, reason)
        resumed = time.monotonic()
        _signal(server, signal.SIGCONT)
        back = _wait_for(sampler, WRITABLE, 1, TELL_S, since=resumed)
        assert _metric(sampler, LAST_WRITE) == written_at
        print(f"idle worker: store_writable 0 {told:.1f} s after ClickHouse hung, 1 again {back:.1f} s after SIGCONT")

        publish_lines(p.kafka, p.topics.events, after)
        result = finish("ClickHouse stopped while idle", p, path, lines, restored, alert=True)
    finally:
        _signal(server, signal.SIGCONT)
        p.stop_worker()
        broker.stop()
        server.stop()
    assert result.expected > 5, result
    assert (result.lost, result.extra, result.doubled) == (0, 0, 0), result
    assert result.stored == result.expected, result
