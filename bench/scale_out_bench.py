"""Scale-out of the stream workers on this machine: one `sandboxwatch run` process, then two, over the
same events on four partitions (four venues, one per partition), real tansu broker and ClickHouse server.

For each worker count: fresh topics and database, the whole day published first, then the workers are
started; the rate is taken between 10% and 90% of the events stored (polling ClickHouse), so start-up and
the first rebalance are left out. Prints events/s for 1 and 2 workers, the ratio (target >= 1.7x), and the
machine's CPU count and load, since two workers can only be as fast as two free cores allow.

    python bench/scale_out_bench.py [--events-per-venue 25000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, simulate_to_files  # noqa: E402
from sandboxwatch.store.clickhouse_store import Store  # noqa: E402
from sandboxwatch.streams.publish import publish_lines  # noqa: E402
from sandboxwatch.streams.topics import Topics, ensure_topics  # noqa: E402
from tests.integration.venues import Venue, interleaved, write_venues  # noqa: E402
from tests.local_services import ClickHouseServer, TansuBroker, free_port  # noqa: E402

LICENCE = ROOT / "config" / "licences" / "da-nang-pilot.yaml"
TARGET = 1.7


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of running processes so far (Linux /proc), to show what the cores gave."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(workers: int, kafka: str, clickhouse: ClickHouseServer, venues: list[Venue], lines: list[str],
            partitions: int, folder: Path, fetch_wait: float) -> tuple[float, float]:  # fmt: skip
    """(events/s between 10% and 90% stored, CPU seconds the workers used per wall second in that window)."""
    name = f"scale{workers}x{int(time.time())}"
    topics = Topics(f"{name}.events", f"{name}.findings", f"{name}.deadletter", partitions, f"{name}-monitor")
    ensure_topics(kafka, topics)
    publish_lines(kafka, topics.events, lines)
    store_url = clickhouse.url(name)
    licences = [arg for v in venues for arg in ("--licence", str(v.licence))]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # The schema first: workers migrating one new database at once race on its DDL (OPERATIONS.md).
    store: Store | None = Store.open(store_url)
    processes = []
    for slot in range(workers):
        command = [
            sys.executable, "-m", "sandboxwatch.cli", "run",
            "--kafka", kafka, "--clickhouse", store_url, *licences,
            "--partitions", str(partitions), "--topic-prefix", name,
            "--metrics-port", str(free_port()), "--data-dir", str(folder / f"{name}-{slot}"),
            "--fetch-max-wait", str(fetch_wait),
        ]  # fmt: skip
        log = (folder / f"{name}-{slot}.log").open("wb")
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    total = len(lines)
    marks: dict[float, tuple[float, float]] = {}
    try:
        deadline = time.monotonic() + 1800
        while len(marks) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(f"{workers} worker(s) did not finish; see the logs in {folder}")
            assert store is not None
            stored = store.raw_count("events")
            for share in (0.1, 0.9):
                if share not in marks and stored >= share * total:
                    marks[share] = (time.perf_counter(), _cpu_seconds([p.pid for p in processes]))
            time.sleep(0.2)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
        if store is not None:
            store.close()
    (t10, cpu10), (t90, cpu90) = marks[0.1], marks[0.9]
    return 0.8 * total / (t90 - t10), (cpu90 - cpu10) / (t90 - t10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-per-venue", type=int, default=25_000)
    parser.add_argument("--partitions", type=int, default=4)
    # tansu holds an empty fetch for the whole wait even when data arrives (OPERATIONS.md, "Fetch wait"),
    # which with faust's 1.5 s default bounds a worker by latency instead of CPU; `up` uses 0.1 s too.
    parser.add_argument("--fetch-max-wait", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        day = folder / "day.jsonl"
        config = SimulationConfig(accounts=max(300, args.events_per_venue // 45), seed=3,
                                  target_events=args.events_per_venue)  # fmt: skip
        simulate_to_files(load_licence(LICENCE), config, day, None)
        venues = write_venues(folder, day.read_text().splitlines(), args.partitions)
        lines = interleaved(venues)
        with TansuBroker(folder / "tansu") as broker, ClickHouseServer(folder / "clickhouse") as clickhouse:
            assert isinstance(clickhouse, ClickHouseServer)
            results = {}
            for workers in (1, 2):
                load = os.getloadavg()[0]
                rate, cores = measure(
                    workers, broker.address, clickhouse, venues, lines, args.partitions, folder, args.fetch_max_wait
                )
                results[workers] = rate
                print(
                    f"{workers} worker(s): {rate:,.0f} events/s over {len(lines):,} events on {args.partitions} "
                    f"partitions; workers used {cores:.2f} cores; load average before: {load:.1f}",
                    flush=True,
                )
    ratio = results[2] / results[1]
    print(
        f"2 workers / 1 worker: {ratio:.2f}x (target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'}); "
        f"{os.cpu_count()} CPUs on this machine, shared"
    )


if __name__ == "__main__":
    main()
