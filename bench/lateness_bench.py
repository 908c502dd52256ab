"""What the reorder buffer (lateness policy, docs/licence.md) costs the rules engine, on one core.

Over the same simulated Da Nang stream, sorted by event time, measures best-of-N, interleaved so a shared
machine disturbs each alike:
  - unbuffered: each event straight to the engine's judging step (what the engine did before the buffer),
  - in order:   Engine.process + flush, the path every caller now takes (sorted input: nothing is late),
  - shuffled:   Engine.process + flush with each event delayed by a random 0..allowed_lateness (within it).
Prints events/s and the ratios to the unbuffered run; findings must be identical in all three.

    python bench/lateness_bench.py [--events 200000] [--accounts 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.gc_policy import tune_for_throughput  # noqa: E402
from sandboxwatch.rules_engine.engine import Engine, event_order  # noqa: E402
from sandboxwatch.rules_engine.event_reader import read_jsonl  # noqa: E402
from sandboxwatch.rules_engine.events import Event  # noqa: E402
from sandboxwatch.rules_engine.findings import Finding  # noqa: E402
from sandboxwatch.rules_engine.licence import Licence, load_licence  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines  # noqa: E402

LICENCE = ROOT / "config" / "licences" / "da-nang-pilot.yaml"


def unbuffered(licence: Licence, events: list[Event]) -> list[Finding]:
    engine = Engine(licence)
    seen: set[str] = set()
    judge = engine._judge
    found: list[Finding] = []
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        result = judge(event)
        if result:
            found.extend(result)
    return found


def buffered(licence: Licence, events: list[Event]) -> list[Finding]:
    engine = Engine(licence)
    process = engine.process
    found: list[Finding] = []
    for event in events:
        result = process(event)
        if result:
            found.extend(result)
    return found + engine.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    licence = load_licence(LICENCE)
    scenario = build_scenario(licence, SimulationConfig(accounts=args.accounts, seed=42, target_events=args.events))
    lines = list(scenario_lines(scenario))
    del scenario
    events = [item for _, item in read_jsonl(lines, "bench") if isinstance(item, Event)]
    events.sort(key=event_order)
    lateness = licence.header.allowed_lateness
    rng = random.Random(7)
    delayed = sorted(events, key=lambda e: e.ts + timedelta(seconds=rng.uniform(0, lateness.total_seconds())))
    tune_for_throughput()
    runs: dict[str, tuple[Callable[[], list[Finding]], list[float]]] = {
        "unbuffered (judge only)": (lambda: unbuffered(licence, events), []),
        "in order (process + flush)": (lambda: buffered(licence, events), []),
        "shuffled within lateness": (lambda: buffered(licence, delayed), []),
    }
    results: dict[str, set[str]] = {}
    labels = list(runs)
    for round_number in range(args.repeats):
        # Rotated each round: whichever runs first after a generator or a collection pays for it.
        for label in labels[round_number % 3 :] + labels[: round_number % 3]:
            work, times = runs[label]
            gc.collect()
            start = time.perf_counter()
            found = work()
            times.append(time.perf_counter() - start)
            results[label] = {f.finding_id for f in found}
    n = len(events)
    base = min(runs["unbuffered (judge only)"][1])
    print(f"events: {n:,}  licence: {licence.id}  allowed lateness: {lateness}  best of {args.repeats}")
    for label, (_, times) in runs.items():
        best = min(times)
        print(f"  {label:<28} {n / best:>10,.0f} events/s   time ratio to unbuffered: {best / base:5.3f}")
    same = len({frozenset(r) for r in results.values()}) == 1
    print(f"  findings identical in all three: {same} ({len(results['unbuffered (judge only)'])} findings)")
    assert same, "the buffer changed the findings"


if __name__ == "__main__":
    main()
