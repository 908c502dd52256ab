"""What the tamper-evident trail costs the store: findings written with and without chaining, and verify.

Chaining reads each new finding back (so the digest covers every column as stored) and records the chain
head, two statements per batch on top of the findings insert. Findings are rare next to events (a
simulated day has one per few hundred events), so the ratio matters per finding batch, not per event.
Printed: findings/s without the trail, with it, their ratio, and findings verified per second.

    python bench/trail_bench.py [--findings 3000] [--batch 50] [--clickhouse clickhouse://127.0.0.1:9000/bench]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.rules_engine.event_reader import read_jsonl  # noqa: E402
from sandboxwatch.rules_engine.findings import Finding  # noqa: E402
from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.rules_engine.self_check import run_check  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines  # noqa: E402
from sandboxwatch.store.backends import Backend, EmbeddedBackend, connect  # noqa: E402
from sandboxwatch.store.clickhouse_store import Store  # noqa: E402


def findings(count: int) -> list[Finding]:
    licence = load_licence(ROOT / "config" / "licences" / "da-nang-pilot.yaml")
    found = run_check(licence, read_jsonl(scenario_lines(build_scenario(licence, SimulationConfig(400, seed=9))), "d"))
    base = found.findings
    return [replace(base[i % len(base)], finding_id=f"{base[i % len(base)].finding_id}-{i}") for i in range(count)]


def fresh(backend: Backend) -> Store:
    backend.database = "bench" + uuid.uuid4().hex[:8]
    store = Store(backend)
    store.migrate()
    return store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--clickhouse", help="a server instead of chdb")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backend = connect(args.clickhouse) if args.clickhouse else EmbeddedBackend(tempfile.mkdtemp())
    items = findings(args.findings)
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]

    without = with_trail = verified = 0.0
    problems: list[object] = []
    for _ in range(args.rounds):  # alternating, best of each: the first statements on a server warm it up
        plain = fresh(backend)
        started = time.perf_counter()
        for batch in batches:  # what write_findings does apart from the trail: existence check, insert
            plain.write_findings_without_trail(batch)
        without = max(without, len(items) / (time.perf_counter() - started))

        chained = fresh(backend)
        started = time.perf_counter()
        for batch in batches:
            chained.write_findings(batch)
        with_trail = max(with_trail, len(items) / (time.perf_counter() - started))

        started = time.perf_counter()
        problems = list(chained.trail.verify())
        verified = max(verified, len(items) / (time.perf_counter() - started))
    where = "server" if args.clickhouse else "chdb"
    print(f"{len(items)} findings in batches of {args.batch} ({where}), best of {args.rounds}")
    print(f"  without trail {without:8.0f} findings/s")
    print(f"  with trail    {with_trail:8.0f} findings/s  ratio {with_trail / without:.2f}")
    print(f"  verify        {verified:8.0f} findings/s  problems {len(problems)}")


if __name__ == "__main__":
    main()
