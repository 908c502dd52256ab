"""Running a stream worker: ``sandboxwatch run`` and ``python -m sandboxwatch.streams.worker``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from sandboxwatch.alerts.health_endpoint import HealthEndpoint
from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.exit_codes import EXIT_AGENT_FAILED, EXIT_OK, EXIT_UNUSABLE, Unusable
from sandboxwatch.rules_engine.licence import LicenceError, load_licence
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.store_probe import StoreProbe
from sandboxwatch.streams.app import StreamWorker
from sandboxwatch.streams.broker_offsets import BrokerOffsets
from sandboxwatch.streams.lease_keeper import LeaseKeeper
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.topics import Topics, ensure_topics
from sandboxwatch.streams.worker_args import add_worker_arguments
from sandboxwatch.streams.worker_lease import WorkerIdLease, WorkerIdTaken
from sandboxwatch.streams.worker_settings import WorkerSettings


def build(settings: WorkerSettings, metrics: Metrics | None = None) -> StreamWorker:
    licences = [load_licence(path) for path in settings.licences]
    store = Store.open(settings.store_url)
    for licence, path in zip(licences, settings.licences, strict=True):
        store.record_licence(licence, path)
    return StreamWorker(settings, Monitor(licences, store, metrics))


# How long a stopping worker may take before it is ended hard: a supervisor must get its exit status.
STOP_GRACE_SECONDS = 30.0


async def serve(worker: StreamWorker, stop: asyncio.Event) -> None:
    worker.on_failure = lambda _exc: stop.set()
    await worker.app.start()
    try:
        await stop.wait()
    finally:
        if worker.failed is not None:
            exit_hard_after(STOP_GRACE_SECONDS, exit_status(worker))
        await worker.stop()
        worker.close()
        worker.monitor.store.close()


def exit_hard_after(seconds: float, status: int) -> None:
    """If a failed worker's orderly stop hangs (a client stuck on a dead peer), end the process anyway."""
    import threading

    timer = threading.Timer(seconds, os._exit, args=(status,))
    timer.daemon = True
    timer.start()


def health_endpoint(worker: StreamWorker, host: str, port: int) -> HealthEndpoint:
    registry = worker.monitor.metrics.registry
    return HealthEndpoint(host, port, registry, worker.liveness, worker.readiness).start()


def lag_reader(worker: StreamWorker) -> BrokerOffsets:
    s = worker.settings
    metrics = worker.monitor.metrics
    topics = s.topics
    return BrokerOffsets(
        s.kafka, topics.events, topics.app_id, metrics, worker.processed_offsets, worker.highwaters
    ).start()


def exit_status(worker: StreamWorker) -> int:
    if isinstance(worker.failed, WorkerIdTaken):
        return EXIT_UNUSABLE
    return EXIT_AGENT_FAILED if worker.failed is not None else EXIT_OK


def hold_worker_id(worker: StreamWorker) -> WorkerIdLease | None:
    """With --worker-id: wait until this process holds the id (or raise WorkerIdTaken), before the worker
    joins its consumer group (streams/worker_lease.py)."""
    worker_id = worker.settings.worker_id
    if worker_id is None:
        return None
    lease = WorkerIdLease(worker.monitor.store, worker_id)
    lease.acquire()
    return lease


def keep_worker_id(worker: StreamWorker, lease: WorkerIdLease, loop: asyncio.AbstractEventLoop) -> LeaseKeeper:
    """Renew the lease while the worker runs; a live holder ranked first, or one that took the id over during
    a lapse, found at a beat stops this worker."""

    def taken(exc: WorkerIdTaken) -> None:
        loop.call_soon_threadsafe(worker.yield_worker_id, exc)

    return LeaseKeeper(lease, worker.monitor.metrics, taken).start()


def store_probe(worker: StreamWorker) -> StoreProbe:
    """Store health while no events arrive: without it an idle worker reads writable through an outage."""
    monitor = worker.monitor
    return StoreProbe(monitor.store.ping, monitor.retry, monitor.metrics).start()


def run(settings: WorkerSettings) -> int:
    """0 after a stop by signal; EXIT_AGENT_FAILED when the agent failed (logged with its traceback);
    EXIT_UNUSABLE when another live worker holds this one's --worker-id (one line)."""
    ensure_topics(settings.kafka, settings.topics)
    metrics = Metrics()
    worker = build(settings, metrics)
    try:
        lease = hold_worker_id(worker)
    except WorkerIdTaken as exc:
        worker.close()
        worker.monitor.store.close()
        print(f"sandboxwatch worker: {exc}", file=sys.stderr, flush=True)
        return EXIT_UNUSABLE
    endpoint = health_endpoint(worker, settings.metrics_host, settings.metrics_port)
    lag = lag_reader(worker)
    worker.broker_silence = lag.seconds_since_read
    probe = store_probe(worker)
    base = f"http://{settings.metrics_host}:{settings.metrics_port}"
    print(
        f"sandboxwatch worker: {settings.kafka} -> {settings.store_url}; metrics at {base}/metrics, "
        f"health at {base}/live and {base}/ready",
        file=sys.stderr,
        flush=True,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        keeper = keep_worker_id(worker, lease, loop) if lease is not None else None
        try:
            await serve(worker, stop)
        finally:
            if keeper is not None:
                keeper.stop()

    try:
        asyncio.run(main())
    finally:
        probe.stop()
        lag.stop()
        endpoint.shutdown()
    if isinstance(worker.failed, WorkerIdTaken):
        print(f"sandboxwatch worker: {worker.failed}", file=sys.stderr)
    elif worker.failed is not None:
        print(f"sandboxwatch worker: the monitor agent failed ({worker.failed!r}); exiting", file=sys.stderr)
    return exit_status(worker)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sandboxwatch run", description="Run a stream worker.")
    add_worker_arguments(p)
    return p


def settings_from(args: argparse.Namespace) -> WorkerSettings:
    prefix = args.topic_prefix
    topics = Topics(
        f"{prefix}.events", f"{prefix}.findings", f"{prefix}.deadletter", args.partitions, f"{prefix}-monitor"
    )
    return WorkerSettings(
        kafka=args.kafka,
        store_url=args.clickhouse,
        licences=tuple(args.licence),
        topics=topics,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
        data_dir=args.data_dir,
        fetch_max_wait=args.fetch_max_wait,
        buffer_bytes=args.buffer_mib * 2**20,
        worker_id=args.worker_id,
    )


def main(argv: list[str] | None = None) -> int:
    level = os.environ.get("SANDBOXWATCH_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(parser().parse_args(argv))
    try:
        return run(settings)
    except (Unusable, StoreError, LicenceError) as exc:  # as `sandboxwatch run` says it: one line, exit 2
        print(f"sandboxwatch worker: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    raise SystemExit(main())
