"""What the store's cluster mode costs: the monitor alone (parse, rules, store, metrics, no Kafka) over a
simulated day on one clickhouse-server versus two replicas of one shard coordinated by ZooKeeper, all Debian
packages started here on 127.0.0.1 (ZooKeeper with its transaction log synced on every commit, as in
production, and without); and the replica gate's own time per batch that writes findings.

    python bench/store_cluster_bench.py [--accounts 120] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines  # noqa: E402
from sandboxwatch.store.clickhouse_store import Store  # noqa: E402
from sandboxwatch.streams.inbound import InboundMessage  # noqa: E402
from sandboxwatch.streams.monitor import Monitor  # noqa: E402
from tests.local_services import ClickHouseReplicas, ClickHouseServer  # noqa: E402

LICENCE = ROOT / "config" / "licences" / "da-nang-pilot.yaml"


def monitor_rate(url: str, messages: list[InboundMessage], batch: int) -> tuple[float, float | None]:
    """Events per second through the monitor, and the gate's milliseconds per check (None: single node)."""
    store = Store.open(url)
    monitor = Monitor([load_licence(LICENCE)], store)
    start = time.perf_counter()
    for i in range(0, len(messages), batch):
        monitor.process_batch(messages[i : i + batch])
    rate = len(messages) / (time.perf_counter() - start)
    gate_ms = None
    if store.replica_gate is not None:
        rounds = 50
        start = time.perf_counter()
        for _ in range(rounds):
            store.replica_gate.wait_until_caught_up()
        gate_ms = (time.perf_counter() - start) / rounds * 1000
    store.close()
    return rate, gate_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=120)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    scenario = build_scenario(load_licence(LICENCE), SimulationConfig(accounts=args.accounts, seed=4))
    lines = [line.rstrip("\n") for line in scenario_lines(scenario)]
    messages = [
        InboundMessage("events", 0, i, json.loads(line)["participant"].encode(), line.encode())
        for i, line in enumerate(lines)
    ]
    single = ClickHouseServer()
    single.start()
    try:
        single_rate, _ = monitor_rate(single.url("b" + uuid.uuid4().hex[:8]), messages, args.batch)
    finally:
        single.stop()
    batches = -(-len(messages) // args.batch)
    print(f"{len(messages)} events in {batches} batches of {args.batch}")
    print(f"{'monitor on one clickhouse-server:':<50}{single_rate:8.0f} events/s")
    for fsync in (True, False):
        cluster = ClickHouseReplicas(zookeeper_fsync=fsync).start()
        try:
            rate, gate_ms = monitor_rate(cluster.url("b" + uuid.uuid4().hex[:8]), messages, args.batch)
        finally:
            cluster.stop()
        label = f"monitor on two replicas, ZooKeeper fsync {'on' if fsync else 'off'}:"
        print(
            f"{label:<50}{rate:8.0f} events/s  (ratio {rate / single_rate:.2f}); "
            f"replica gate {gate_ms or 0:.1f} ms per batch with findings"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
