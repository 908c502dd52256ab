"""The monitor's cost outside parsing and the rules engine (issue 18): decoding messages into records,
ordering and routing them, the store path (events, findings and their trail, dead letters, inside chdb
included) and the metrics, per event and per CPU second of the whole process (chdb's threads included).

Parsing (``parse_json_line`` as ``streams.inbound`` calls it) and judging (``Engine.process``, ``flush``,
``invalid``) are recorded during the day, replayed alone after it (``Recorder``) and their CPU time taken
out of the process's; what remains is this bench's figure. After the day the process waits until chdb has
no merge running, and that CPU counts too: a store that defers its work to background merges does not get
it for free.

Two checkouts can be compared in one run: ``--base DIR`` runs the same day against the code in DIR (a second
checkout of main, say) and against this one, each in its own process, alternating (which goes first
alternates too), ``--rounds`` pairs; it prints the best and median of each and their ratio. The parser and
the engine may differ between the two: they are excluded from the figure.

    python bench/monitor_overhead_bench.py [--events 60000] [--batch 5000] [--base DIR --rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent


class Recorder:
    """Every call of the parser and of the engines during a day, replayed afterwards on their own (fresh
    engines, the parser's remembered values cleared) to time them in one piece: a timer around each call
    would cost a microsecond a call itself, which would land in the figure measured."""

    def __init__(self) -> None:
        self.parses: list[tuple[Any, ...]] = []
        self.judging: list[tuple[Any, str, tuple[Any, ...]]] = []

    def parser(self, function: Callable[..., Any]) -> Callable[..., Any]:
        calls = self.parses

        def recorded(*args: Any) -> Any:
            calls.append(args)
            return function(*args)

        return recorded

    def method(self, function: Callable[..., Any], name: str) -> Callable[..., Any]:
        calls = self.judging

        def recorded(engine: Any, *args: Any) -> Any:
            calls.append((engine, name, args))
            return function(engine, *args)

        return recorded

    def replay(self, parse: Callable[..., Any], engine_class: Any, forget: Callable[[], None]) -> tuple[float, float]:
        """CPU seconds of the recorded parses, then of the recorded engine calls."""
        forget()
        clock = time.thread_time
        start = clock()
        for args in self.parses:
            parse(*args)
        parsing = clock() - start
        fresh: dict[int, Any] = {}
        for engine, _, _ in self.judging:
            if id(engine) not in fresh:
                fresh[id(engine)] = engine_class(engine.licence)
        calls = [(getattr(fresh[id(engine)], name), args) for engine, name, args in self.judging]
        start = clock()
        for call, args in calls:
            call(*args)
        judging = clock() - start
        self.parses.clear()
        self.judging.clear()
        return parsing, judging


def child(root: Path, lines_file: Path, batch_events: int, runs: int) -> None:
    """One checkout's figures, best of ``runs`` days in this process, printed as one JSON object."""
    sys.path.insert(0, str(root))
    from sandboxwatch.alerts.metrics import Metrics
    from sandboxwatch.gc_policy import tune_for_throughput
    from sandboxwatch.rules_engine import engine as engine_module
    from sandboxwatch.rules_engine import event_parser
    from sandboxwatch.rules_engine.licence import load_licence
    from sandboxwatch.store import backends
    from sandboxwatch.store.backends import EmbeddedBackend
    from sandboxwatch.store.clickhouse_store import Store
    from sandboxwatch.streams import inbound

    running_merges: Callable[[Any], int] = getattr(backends, "running_merges", None) or _running_merges_here()
    from sandboxwatch.streams.app import event_chunks
    from sandboxwatch.streams.inbound import InboundMessage
    from sandboxwatch.streams.monitor import Monitor
    from sandboxwatch.streams.publish import line_messages, polls

    assert Path(inbound.__file__).resolve().is_relative_to(root.resolve()), "the checkout under test"
    tune_for_throughput()
    lines = lines_file.read_text().splitlines()
    messages: list[InboundMessage] = []
    for poll in polls(lines):
        for key, value in line_messages(poll):
            messages.append(InboundMessage("bench", 0, len(messages), key, value))
    remembered = getattr(event_parser, "REMEMBERED", None)
    forget: Callable[[], None] = remembered.clear if remembered is not None else (lambda: None)
    recorder = Recorder()
    parse = getattr(inbound, "parse_json_line")  # noqa: B009 - the name streams.inbound calls, swapped below
    setattr(inbound, "parse_json_line", recorder.parser(parse))  # noqa: B010
    engine_class: Any = engine_module.Engine
    originals = {name: getattr(engine_class, name) for name in ("process", "flush", "invalid")}
    licence = load_licence(root / "config" / "licences" / "da-nang-pilot.yaml")
    results = []
    with tempfile.TemporaryDirectory(prefix="p10s-overhead-") as folder:
        backend = EmbeddedBackend(str(Path(folder) / "chdb"))
        for _ in range(runs):
            backend.database = "bench_" + uuid.uuid4().hex[:8]
            store = Store(backend)
            store.migrate()
            monitor = Monitor([licence], store, Metrics())
            groups = event_chunks(messages, batch_events)
            forget()
            for name, function in originals.items():
                setattr(engine_class, name, recorder.method(function, name))
            start, wall = time.process_time(), time.perf_counter()
            for group in groups:
                monitor.process_batch(group)
            monitor.flush()
            while running_merges(backend):
                time.sleep(0.01)
            used, elapsed = time.process_time() - start, time.perf_counter() - wall
            for name, function in originals.items():
                setattr(engine_class, name, function)
            stored = store.count("events")
            assert stored > 0.99 * len(lines), f"the monitor stored the day ({stored} of {len(lines)})"
            findings = len(store.finding_ids())
            backend.drop_database()
            parsing, judging = recorder.replay(parse, engine_class, forget)
            results.append(
                {
                    "events": len(lines),
                    "cpu": used,
                    "wall": elapsed,
                    "parse": parsing,
                    "engine": judging,
                    "rest": used - parsing - judging,
                    "findings": findings,
                }
            )
        backend.close()
    best = min(results, key=lambda r: r["rest"])
    print(json.dumps(best))


def _running_merges_here() -> Callable[[Any], int]:
    """``store.backends.running_merges`` of this checkout, for a --base checkout from before it existed."""
    spec = importlib.util.spec_from_file_location("bench_this_backends", HERE / "store" / "backends.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    function: Callable[[Any], int] = module.running_merges
    return function


def run_child(root: Path, lines_file: Path, batch_events: int, runs: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(root), "--lines", str(lines_file)]
    command += ["--batch", str(batch_events), "--runs", str(runs)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=1800).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def describe(label: str, r: dict[str, Any]) -> str:
    per = 1e6 / r["events"]
    return (
        f"  {label:<7} rest {r['rest'] * per:6.2f} us/event ({r['events'] / r['rest']:>9,.0f} events per CPU s); "
        f"parse {r['parse'] * per:5.2f}, engine {r['engine'] * per:5.2f}, whole {r['cpu'] * per:6.2f} us/event "
        f"({r['events'] / r['cpu']:,.0f}/CPU s, {r['events'] / r['wall']:,.0f}/s wall); {r['findings']} findings"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--accounts", type=int, default=3_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per consumed batch (the worker's 5000)")
    parser.add_argument("--base", type=Path, help="a checkout to compare this one with, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of processes with --base")
    parser.add_argument("--runs", type=int, default=2, help="days per process, best of them")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lines", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.lines, args.batch, args.runs)
        return
    sys.path.insert(0, str(HERE))
    from sandboxwatch.rules_engine.licence import load_licence
    from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines

    licence = load_licence(HERE / "config" / "licences" / "da-nang-pilot.yaml")
    config = SimulationConfig(accounts=args.accounts, seed=7, target_events=args.events)
    with tempfile.TemporaryDirectory(prefix="p10s-overhead-") as folder:
        lines_file = Path(folder) / "day.jsonl"
        lines_file.write_text("".join(line if line.endswith("\n") else line + "\n"
                                      for line in scenario_lines(build_scenario(licence, config))))  # fmt: skip
        roots = {"this": HERE} if args.base is None else {"base": args.base.resolve(), "this": HERE}
        results: dict[str, list[dict[str, Any]]] = {label: [] for label in roots}
        labels = list(roots)
        for round_number in range(args.rounds if args.base else 1):
            order = labels if round_number % 2 == 0 else labels[::-1]
            for label in order:
                result = run_child(roots[label], lines_file, args.batch, args.runs)
                results[label].append(result)
                print(describe(label, result), flush=True)
    load = os.getloadavg()
    print(f"events: {args.events:,}, {args.batch:,} a poll, chdb; load average {load[0]:.1f} {load[1]:.1f}")
    for label, runs in results.items():
        rests = [r["rest"] / r["events"] * 1e6 for r in runs]
        print(f"  {label}: rest best {min(rests):.2f} us/event, median {statistics.median(rests):.2f}")
    if args.base is not None:
        base = min(r["rest"] for r in results["base"])
        this = min(r["rest"] for r in results["this"])
        medians = [statistics.median(r["rest"] for r in results[k]) for k in ("base", "this")]
        print(f"  rest, base / this: best {base / this:.2f}x cheaper, median {medians[0] / medians[1]:.2f}x (aim 2x)")


if __name__ == "__main__":
    main()
