"""Faults against the live worker with real services, and what each costs: the table of issue 12.

For each fault (poison events of every class mid-stream; ClickHouse stopped for --outage seconds and
restarted on its data dir; the noida broker stopped as long; kill -9 of the worker three times) a fresh
pipeline monitors a simulated day, and the stored findings are compared with ``sandboxwatch check`` on the
same events. Recovery is measured from the moment the service is back (the last worker restart for kill -9,
the worker's start for poison, so that row includes the worker's start-up) until every message is accounted
for (stored as an event or dead-lettered). The alert condition column says
whether the metric behind the fault's alert (StoreUnwritable + PartitionStalled, BrokerUnreachable's
stale offsets, lag > 0 after a restart, unprocessable dead letters with lag back at 0) was seen.

    python bench/faults.py [--outage 60] [--accounts 150] [--events 32000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines  # noqa: E402
from tests.helpers import DA_NANG  # noqa: E402
from tests.integration.fault_scenarios import (  # noqa: E402
    TABLE_HEADER,
    FaultResult,
    broker_outage_run,
    kill_run,
    poison_run,
    store_outage_run,
)
from tests.integration.pipeline import Pipeline  # noqa: E402
from tests.local_services import ClickHouseServer, NoidaBroker, TansuBroker  # noqa: E402
from tests.poison import interleave, poison_lines  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds each service stays stopped")
    parser.add_argument("--accounts", type=int, default=150)
    parser.add_argument("--events", type=int, default=32_000, help="about this many events (the issue's run had 32k)")
    args = parser.parse_args()
    scenario = build_scenario(load_licence(DA_NANG), SimulationConfig(args.accounts, 21, target_events=args.events))
    day = [line.rstrip("\n") for line in scenario_lines(scenario)]
    first = {k: next(line for line in day if json.loads(line)["type"] == k) for k in ("trade", "price", "account")}
    poisoned = interleave(day, poison_lines(first["trade"], first["price"], first["account"]))
    results: list[FaultResult] = []
    with tempfile.TemporaryDirectory(prefix="sandboxwatch-faults-", ignore_cleanup_errors=True) as tmp:
        base = Path(tmp)
        clickhouse = ClickHouseServer(base / "clickhouse")
        clickhouse.start()
        tansu = TansuBroker()
        tansu.start()
        noida = NoidaBroker(base / "noida")
        try:

            def pipeline(kafka: str, name: str) -> Pipeline:
                work = base / f"run-{name}"
                work.mkdir()
                return Pipeline(kafka, clickhouse.url("unused"), work)

            p = pipeline(tansu.address, "poison")
            results.append(_report(poison_run(p, poisoned), p))
            p = pipeline(tansu.address, "clickhouse")
            results.append(_report(store_outage_run(p, clickhouse, day, args.outage), p))
            p = pipeline(tansu.address, "kill")
            results.append(_report(kill_run(p, day, 3), p))
            noida.start()
            p = pipeline(noida.address, "noida")
            results.append(_report(broker_outage_run(p, noida, day, args.outage), p))
        finally:
            noida.stop()
            tansu.stop()
            clickhouse.stop()
            _table(results)  # also the rows done before a scenario failed
    bad = [r for r in results if r.lost or r.extra or r.doubled or not r.alert_condition]
    return 1 if bad else 0


def _table(results: list[FaultResult]) -> None:
    print()
    print(TABLE_HEADER)
    for result in results:
        print(result.row())


def _report(result: FaultResult, pipeline: Pipeline) -> FaultResult:
    pipeline.stop_worker()
    print(f"{result.fault}: done in {result.recovery_s:.1f} s after recovery {result.notes or ''}", file=sys.stderr)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
