"""``sandboxwatch up``: the whole live monitor on one machine with nothing installed beforehand.

A tansu broker (Kafka protocol, in memory) and a chdb store (ClickHouse in this process) stand in for the
production cluster; the same stream worker code runs against them. A simulated pilot day (or a given
events file) is published, monitored with a progress bar, and summarised from the store.

An events file is read exactly as ``check`` reads it and replayed in ``check``'s order
(``replay_file``), so the same file gives the same findings, with the same ids, whatever the batch size.

Exit status like ``check``: 1 when the store holds a breach or critical finding after the replay (the
summary printed shows it), 0 otherwise, 2 when the input or the data directory cannot be used (not one
valid event of the licence's participant read, as ``check``; another ``up`` on the same directory, a busy
metrics port), and 70 when the monitor agent failed."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.exit_codes import EXIT_AGENT_FAILED, EXIT_FINDINGS, EXIT_OK
from sandboxwatch.replay_file import Replay, publish_replay, read_replay
from sandboxwatch.rules_engine.findings import FAILING_SEVERITIES
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.streams.local_broker import TansuBroker
from sandboxwatch.streams.monitor import BatchOutcome
from sandboxwatch.streams.topics import Topics, ensure_topics
from sandboxwatch.streams.worker import (
    STOP_GRACE_SECONDS,
    build,
    exit_hard_after,
    health_endpoint,
    lag_reader,
)
from sandboxwatch.streams.worker_settings import WorkerSettings

if TYPE_CHECKING:
    from sandboxwatch.ingest.chain_follower import ChainFollower


@dataclass(frozen=True, slots=True)
class UpOptions:
    licence: Path
    data_dir: Path
    events: Path | None = None
    accounts: int = 3000
    seed: int = 1
    metrics_port: int = 9464
    once: bool = False
    # Follow a chain too (config/ingest/chain.yaml), against the node at ``rpc`` when given.
    chain_config: Path | None = None
    rpc: str | None = None
    # jsonl or csv; None: from the content, as check does.
    input_format: str | None = None
    # Messages the monitor takes per batch (WorkerSettings' default); the findings do not depend on it.
    batch_size: int = 5000


class ProgressBar:
    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.out = out
        self.started = time.monotonic()
        self._last = 0.0

    def show(self, done: int, findings: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.out.isatty() else 2.0):
            return
        self._last = now
        share = min(done / self.total, 1.0)
        bar = "#" * int(share * 30)
        rate = done / max(now - self.started, 1e-9)
        end = "\r" if self.out.isatty() and not force else "\n"
        self.out.write(
            f"monitoring [{bar:<30}] {done:,}/{self.total:,} events  {findings:,} findings  {rate:,.0f}/s{end}"
        )
        self.out.flush()


def _events_file(options: UpOptions) -> Path:
    if options.events:
        return options.events
    from sandboxwatch.simulator import SimulationConfig, simulate_to_files

    path = options.data_dir / "simulated-day.jsonl"
    summary = simulate_to_files(
        load_licence(options.licence),
        SimulationConfig(accounts=options.accounts, seed=options.seed),
        path,
        options.data_dir / "simulated-truth.json",
    )
    print(summary, file=sys.stderr)
    return path


EMBEDDED_FETCH_WAIT = 0.1


class UnusableEvents(RuntimeError):
    """The events file gave not one valid event of the licence's participant (exit 2, as ``check``)."""


class DataDirBusy(RuntimeError):
    """Another ``sandboxwatch up`` holds the data directory (chdb allows one process per directory)."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[IO[str]]:
    """An exclusive lock on the data directory for this process's lifetime, taken before anything opens it,
    so a second ``up`` says in one line who holds it instead of failing deep inside chdb."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "up.lock"
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DataDirBusy(
            f"data dir {data_dir} is in use by another sandboxwatch up ({holder}); stop it or pass another --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    try:
        yield handle
    finally:
        handle.close()


def up(options: UpOptions) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with data_dir_lock(options.data_dir):
        return _up_locked(options)


def _up_locked(options: UpOptions) -> int:
    events = _events_file(options)
    participant = load_licence(options.licence).participant
    try:
        replay = read_replay(str(events), options.input_format, participant)
    except OSError as exc:
        raise UnusableEvents(f"{events}: cannot read the events file: {exc.strerror}") from None
    broker_dir = options.data_dir / "tansu"
    with TansuBroker(broker_dir) as broker:
        print(f"broker: tansu on {broker.address} (memory only)", file=sys.stderr)
        settings = WorkerSettings(
            kafka=broker.address,
            store_url=f"chdb://{(options.data_dir / 'chdb').resolve()}",
            licences=(options.licence,),
            metrics_port=options.metrics_port,
            data_dir=options.data_dir / "faust",
            # tansu holds an empty fetch for its whole wait; keep that short so live events show at once.
            fetch_max_wait=EMBEDDED_FETCH_WAIT,
            # One partition keeps the replay in check's order end to end (replay_file).
            topics=Topics(partitions=1),
            batch_size=options.batch_size,
        )
        ensure_topics(broker.address, settings.topics)
        sent = publish_replay(broker.address, settings.topics.events, replay)
        print(f"published {sent:,} messages to {settings.topics.events}", file=sys.stderr)
        chain = _chain_follower(options, broker.address, settings.topics.events)
        if chain is not None:
            sent += chain.poll_once()
            print(
                f"chain {chain.settings.chain}: {chain.published:,} events up to block {chain.last_block}",
                file=sys.stderr,
            )
        metrics = Metrics()
        worker = build(settings, metrics)
        endpoint = health_endpoint(worker, "127.0.0.1", options.metrics_port)
        lag = lag_reader(worker)
        url = f"http://127.0.0.1:{options.metrics_port}/metrics"
        failing = 0
        bar = ProgressBar(sent)
        findings = 0

        def on_batch(outcome: BatchOutcome) -> None:
            nonlocal findings
            findings += len(outcome.new_findings)
            bar.show(worker.processed, findings)

        worker.on_batch = on_batch

        async def main() -> None:
            nonlocal failing
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            worker.on_failure = lambda _exc: stop.set()
            await worker.app.start()
            try:
                while worker.processed < sent and not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.2)
                # The published input has ended: judge what the reorder buffers still hold (lateness).
                await worker.flush()
                if worker.failed is not None:
                    return
                bar.show(worker.processed, findings, force=True)
                rows = worker.monitor.store.findings_summary()
                failing = sum(n for _, _, severity, n in rows if severity in FAILING_SEVERITIES)
                _summary(rows, worker.monitor.store.count("dead_letters"), url)
                # An events file with nothing usable ends the run after its replay (exit 2), served or not.
                if not options.once and replay.usable:
                    print("serving metrics until Ctrl-C", file=sys.stderr)
                    if chain is not None:
                        follow = threading.Thread(target=chain.run, kwargs={"stop": stop.is_set}, daemon=True)
                        follow.start()
                    await stop.wait()
            finally:
                if worker.failed is not None:
                    exit_hard_after(STOP_GRACE_SECONDS, EXIT_AGENT_FAILED)
                await worker.stop()
                worker.close()
                worker.monitor.store.close()

        try:
            asyncio.run(main())
        finally:
            lag.stop()
            endpoint.shutdown()
    if worker.failed is not None:
        print(f"sandboxwatch up: the monitor agent failed ({worker.failed!r}); see the log above", file=sys.stderr)
        return EXIT_AGENT_FAILED
    _refuse_unusable(replay, participant)
    return EXIT_FINDINGS if failing else EXIT_OK


def _refuse_unusable(replay: Replay, participant: str) -> None:
    """Nothing was judged, so "no breach" would be a claim the replay never made (the rule of ``check``)."""
    if not replay.usable:
        raise UnusableEvents(
            f"{replay.source}: no valid event of participant {participant} was read "
            f"({replay.invalid} invalid lines, read as {replay.fmt}; see --input-format)"
        )


def _chain_follower(options: UpOptions, bootstrap: str, topic: str) -> ChainFollower | None:
    if options.chain_config is None:
        return None
    from dataclasses import replace

    from sandboxwatch.ingest.chain_follower import ChainFollower, connect
    from sandboxwatch.ingest.checkpoint import Checkpoint
    from sandboxwatch.ingest.event_sink import KafkaSink
    from sandboxwatch.ingest.settings import load_chain_settings

    chain = load_chain_settings(options.chain_config)
    if options.rpc:
        chain = replace(chain, rpc_url=options.rpc)
    # The broker is memory-only, so the chain position starts afresh with it.
    checkpoint = Checkpoint(options.data_dir / "chain-checkpoint.json")
    checkpoint.path.unlink(missing_ok=True)
    return ChainFollower(chain, connect(chain), KafkaSink(bootstrap, topic), checkpoint)


def _summary(rows: list[tuple[str, str, str, int]], dead_letters: int, url: str) -> None:
    print("\nfindings in the store (participant, rule, severity, count):")
    for participant, rule, severity, count in rows:
        print(f"  {participant:<24} {rule:<22} {severity:<9} {count:>6}")
    if not rows:
        print("  none")
    print(f"dead letters: {dead_letters}")
    print(f"metrics: {url}")
