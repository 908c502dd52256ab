"""The monitor alone (parse, rules, store, metrics; no Kafka) on the embedded store, before and after the
throughput work of issue 18, in one run over the same simulated day.

Prints, each as events/s and as a ratio to the first line:
1. single-event messages through the stdlib decoder and a row-by-row JSON insert (how the monitor ran before);
2. single-event messages through orjson and the columnar insert;
3. batch messages as the producers now send them (docs/events.md, "Stream messages"), orjson, columnar,
   the parser's generic event builder (rules_engine/event_parser.py) alone;
4. the same with its fast path for the common event types (rules_engine/event_fast_path.py);
5. (4) with the events stored as they were before the columnar event path (a row per event, DateTime
   columns as datetimes parsed from text): (4)/(5) is what that path gained;
and, for the parser alone, ``parse_json_line`` over the same lines: the stdlib decoder, orjson with the generic
event builder, orjson with the fast one as it was before its per-event cost work (a frozen copy,
bench/parser_before.py), and orjson with the fast one now; the last two also as a ratio, alternating in this
process, per CPU second. ``--parser-only`` stops there.
Target for (4): >= 100k events/s. ``--profile`` prints where (4) spends its time (cProfile).

    python bench/monitor_bench.py [--events 60000] [--batch 5000] [--profile] [--parser-only]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import parser_before  # noqa: E402
from sandboxwatch.alerts.metrics import Metrics  # noqa: E402
from sandboxwatch.gc_policy import tune_for_throughput  # noqa: E402
from sandboxwatch.rules_engine import event_parser, event_reader  # noqa: E402
from sandboxwatch.rules_engine.events import EventError  # noqa: E402
from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.rules_engine.timestamps import parse_timestamp  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines  # noqa: E402
from sandboxwatch.store.backends import EmbeddedBackend  # noqa: E402
from sandboxwatch.store.clickhouse_store import Store  # noqa: E402
from sandboxwatch.store.records import EventRecord  # noqa: E402
from sandboxwatch.streams.app import event_chunks  # noqa: E402
from sandboxwatch.streams.inbound import InboundMessage  # noqa: E402
from sandboxwatch.streams.monitor import Monitor  # noqa: E402
from sandboxwatch.streams.publish import line_messages, polls  # noqa: E402

LICENCE = ROOT / "config" / "licences" / "da-nang-pilot.yaml"
TARGET = 100_000


@contextmanager
def stdlib_path(backend: EmbeddedBackend) -> Iterator[None]:
    """The decoder and the insert as they were: every line through json's decoder, every row through
    json.dumps into JSONCompactEachRow."""
    fast_decode, fast_pair = event_reader.decode_json, event_reader._decode
    stdlib = event_reader._DECODER.decode

    event_reader.decode_json = stdlib  # type: ignore[assignment]
    event_reader._FAST_JSON = False  # parse_json_line's own orjson attempt off: every line through _decode
    # parse_json_line calls _decode (value, decoded by _DECODER), not decode_json: both are swapped.
    event_reader._decode = lambda text, data=None: (stdlib(text), True)
    setattr(backend, "insert", backend.insert_row_by_row)  # noqa: B010 - an instance attribute shadows the method
    try:
        with row_event_store():
            yield
    finally:
        event_reader.decode_json, event_reader._decode = fast_decode, fast_pair
        event_reader._FAST_JSON = True
        delattr(backend, "insert")


@contextmanager
def generic_builder() -> Iterator[None]:
    """The typed-event builder without its fast path: every field through the generic helpers."""
    fast, event_parser._FAST = event_parser._FAST, {}
    try:
        yield
    finally:
        event_parser._FAST = fast


@contextmanager
def parser_before_its_cost_work() -> Iterator[None]:
    """The fast event builders and orjson check as they were before the parser's per-event cost work (issue
    18), from the frozen copy in bench/parser_before.py, over the generic path's own helpers."""
    p = event_parser
    helpers = {
        "FieldError": p.FieldError,
        "dec": p._dec,
        "parse_timestamp": parse_timestamp,
        "str_list": lambda o: p._str_list(o, "wallets", addresses=True),
        "travel_rule": p._travel_rule,
        "completed_ts": p._completed_ts,
        "log_index": lambda o: p._int(o, "log_index", minimum=-1),
        "block": lambda o: p._int(o, "block"),
    }
    old = parser_before.compile_fast_path(p._ALLOWED, helpers, p.MAX_TEXT)
    decode = parser_before.make_decode(orjson.loads, event_reader._DECODER.decode)
    parse = parser_before.make_parse_json_line(event_reader, decode, p.event_from_dict)
    (fast, p._FAST), (now, event_reader.parse_json_line) = (p._FAST, old), (event_reader.parse_json_line, parse)  # type: ignore[assignment]
    try:
        yield
    finally:
        p._FAST, event_reader.parse_json_line = fast, now


@contextmanager
def row_event_store() -> Iterator[None]:
    """The events' store path before the columnar one (``Store.write_events_as_rows``)."""
    columnar = Store.write_events
    Store.write_events = Store.write_events_as_rows  # type: ignore[method-assign]
    try:
        yield
    finally:
        Store.write_events = columnar  # type: ignore[method-assign]


def singles(lines: list[str]) -> list[InboundMessage]:
    return [InboundMessage("bench", 0, i, json.loads(line)["participant"].encode(), line.encode()) for i, line in
            enumerate(lines)]  # fmt: skip


def batches(lines: list[str]) -> list[InboundMessage]:
    out: list[InboundMessage] = []
    for poll in polls(lines):
        for key, value in line_messages(poll):
            out.append(InboundMessage("bench", 0, len(out), key, value))
    return out


def monitor_rate(backend: EmbeddedBackend, messages: list[InboundMessage], events: int, batch_events: int) -> float:
    """Consumed batches of about ``batch_events`` events (the worker's batch size counts messages: for
    batch messages that is more events per poll, so the comparison holds events per poll equal)."""
    return monitor_rates(backend, messages, events, batch_events)[0]


def monitor_rates(
    backend: EmbeddedBackend, messages: list[InboundMessage], events: int, batch_events: int
) -> tuple[float, float]:
    """Events per wall-clock second and per CPU second of this process (all its threads, chdb's included):
    on a machine shared with other work, the CPU rate is the steadier measure of the code's own cost."""
    backend.database = "bench_" + uuid.uuid4().hex[:8]
    store = Store(backend)
    store.migrate()
    monitor = Monitor([load_licence(LICENCE)], store, Metrics())
    groups = event_chunks(messages, batch_events)
    start, cpu = time.perf_counter(), time.process_time()
    for group in groups:
        monitor.process_batch(group)
    monitor.flush()
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    assert store.count("events") > 0.99 * events, "the monitor stored the day"
    drop(backend)
    return events / elapsed, events / used


def parse_rate(lines: list[str]) -> float:
    """Lines per CPU second (one thread: the time it ran, not the time it waited for a shared core). The fast
    path starts each run remembering nothing (rules_engine/event_fast_path.py): filling its stores is part of
    the time, as for a worker that has just started."""
    parse = event_reader.parse_json_line
    event_parser.REMEMBERED.clear()
    start = time.process_time()
    for number, line in enumerate(lines):
        parse(line, "bench", number)
    return len(lines) / (time.process_time() - start)


def interleaved_parse_rates(lines: list[str], rounds: int, chunk: int = 1000) -> tuple[float, float]:
    """The parser before its cost work (bench/parser_before.py) and now, per CPU second, alternating every
    ``chunk`` lines (which goes first alternates too): a busy spell of a shared machine then falls on both
    alike, where whole passes a few seconds apart can differ by 30% on the same code. Each round starts
    with nothing remembered (as ``parse_rate``)."""
    parse_before, parse_now = parser_before_its_cost_work, nullcontext
    totals = [0.0, 0.0]
    for round_number in range(rounds):
        event_parser.REMEMBERED.clear()
        for index, first in enumerate(range(0, len(lines), chunk)):
            part = lines[first : first + chunk]
            for which in (0, 1) if (index + round_number) % 2 else (1, 0):
                with (parse_before if which == 0 else parse_now)():
                    parse = event_reader.parse_json_line
                    start = time.process_time()
                    for number, line in enumerate(part):
                        parse(line, "bench", number)
                    totals[which] += time.process_time() - start
    return rounds * len(lines) / totals[0], rounds * len(lines) / totals[1]


def store_rate(backend: EmbeddedBackend, records: list[EventRecord], batch_events: int) -> float:
    """The events' store path alone (``Store.write_events`` as the caught-up worker calls it, no existence
    check), batches of ``batch_events``: events per CPU second of this process, chdb's threads included."""
    backend.database = "bench_" + uuid.uuid4().hex[:8]
    store = Store(backend)
    store.migrate()
    start = time.process_time()
    for first in range(0, len(records), batch_events):
        store.write_events(records[first : first + batch_events], check=False)
    used = time.process_time() - start
    assert store.count("events") == len({(r.event.participant, r.event.event_id) for r in records})
    drop(backend)
    return len(records) / used


def drop(backend: EmbeddedBackend) -> None:
    """A run's database dropped at its end: chdb merges a table's parts in this process's threads, so parts
    left behind would be merged on the next run's CPU time and tilt the comparison against whichever runs
    later."""
    backend.drop_database()


def parsed_records(lines: list[str]) -> list[EventRecord]:
    out = []
    for number, line in enumerate(lines):
        event = event_reader.parse_json_line(line, "bench/0", number)
        if not isinstance(event, EventError):
            out.append(EventRecord(event, line, f"bench/0/{number // 1000}:{number % 1000 + 1}"))
    return out


def print_parser(lines: int, rounds: int, stdlib: float, generic: float, frozen: float, fast: float) -> None:
    print(f"  parser alone (parse_json_line), {lines:,} lines, best of {rounds} alternating, per CPU second")
    print(f"    stdlib decoder                                  {stdlib:>10,.0f} events/s   ratio: 1.00")
    for label, rate in (
        ("orjson, generic event builder", generic),
        ("orjson, fast builder before its cost work", frozen),
        ("orjson, fast event builder", fast),
    ):
        print(f"    {label:<48}{rate:>10,.0f} events/s   ratio: {rate / stdlib:.2f}")
    print(f"  fast parser now / before its cost work (bench/parser_before.py): {fast / frozen:.2f}")


def print_interleaved(rounds: int, before: float, now: float) -> None:
    print(f"  the same two alternating every 1,000 lines, {rounds} passes each, per CPU second: before its cost "
          f"work {before:,.0f} events/s, now {now:,.0f} events/s: {now / before:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--accounts", type=int, default=3_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per consumed batch (the worker's 5000)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--parser-only", action="store_true", help="time the parser alone, then stop")
    parser.add_argument("--parser-rounds", type=int, default=3, help="runs of each parser, alternating; best of each")
    parser.add_argument("--rounds", type=int, default=3, help="runs of (3) and (4), alternating; best of each")
    args = parser.parse_args()
    tune_for_throughput()
    licence = load_licence(LICENCE)
    scenario = build_scenario(licence, SimulationConfig(accounts=args.accounts, seed=7, target_events=args.events))
    lines = [line.rstrip("\n") for line in scenario_lines(scenario)]
    del scenario
    single, batched = singles(lines), batches(lines)
    with tempfile.TemporaryDirectory() as folder:
        backend = EmbeddedBackend(str(Path(folder) / "chdb"))
        # The parser alone: best of three, the two paths alternating, so a busy moment of a shared machine
        # does not decide the ratio.
        parse_before = parse_after = parse_generic = parse_frozen = 0.0
        for round_number in range(args.parser_rounds):
            with stdlib_path(backend):
                parse_before = max(parse_before, parse_rate(lines))
            with generic_builder():
                parse_generic = max(parse_generic, parse_rate(lines))
            # The fast path before and after its per-event cost work: which goes first alternates.
            if round_number % 2:
                parse_after = max(parse_after, parse_rate(lines))
            with parser_before_its_cost_work():
                parse_frozen = max(parse_frozen, parse_rate(lines))
            if not round_number % 2:
                parse_after = max(parse_after, parse_rate(lines))
        interleaved = interleaved_parse_rates(lines, args.parser_rounds)
        if args.parser_only:
            print_parser(len(lines), args.parser_rounds, parse_before, parse_generic, parse_frozen, parse_after)
            print_interleaved(args.parser_rounds, *interleaved)
            return
        # The events' store path alone, event rows (before) and event columns (after), alternating.
        records = parsed_records(lines)
        store_rows = store_columns = 0.0
        for round_number in range(args.rounds + 2):
            if round_number % 2:  # which goes first alternates too
                store_columns = max(store_columns, store_rate(backend, records, args.batch))
            with row_event_store():
                store_rows = max(store_rows, store_rate(backend, records, args.batch))
            if not round_number % 2:
                store_columns = max(store_columns, store_rate(backend, records, args.batch))
        del records
        with stdlib_path(backend):
            before = monitor_rate(backend, single, len(lines), args.batch)
        single_fast = monitor_rate(backend, single, len(lines), args.batch)
        # (3) and (4) alternate, best of --rounds each: on a shared machine one busy spell must not decide it.
        # (3), (5) and (4), their order rotated each round, so that none is always first or last.
        variants: list[Callable[[], AbstractContextManager[None]]] = [generic_builder, row_event_store, nullcontext]
        best: dict[int, tuple[float, float]] = {}
        for round_number in range(args.rounds):
            for index in [(round_number + i) % 3 for i in range(3)]:
                with variants[index]():
                    wall, cpu = monitor_rates(backend, batched, len(lines), args.batch)
                old_wall, old_cpu = best.get(index, (0.0, 0.0))
                best[index] = (max(old_wall, wall), max(old_cpu, cpu))
        (generic, generic_cpu), (rows, rows_cpu), (fast, fast_cpu) = best[0], best[1], best[2]
        run: Callable[[], float] = lambda: monitor_rate(backend, batched, len(lines), args.batch)  # noqa: E731
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            after = run()
            profile.disable()
            after = max(after, fast)
        else:
            after = fast
        backend.close()
    print(f"events: {len(lines):,} in {len(batched):,} batch messages; consumed {args.batch:,} events a poll; chdb")
    print_parser(len(lines), args.parser_rounds, parse_before, parse_generic, parse_frozen, parse_after)
    print_interleaved(args.parser_rounds, *interleaved)
    print(f"  events' store path alone (Store.write_events), best of {args.rounds + 2} alternating, per CPU second")
    print(f"    a row per event, DateTime columns from text     {store_rows:>10,.0f} events/s   ratio: 1.00")
    print(f"    event columns, DateTime columns as seconds      {store_columns:>10,.0f} events/s   ratio: "
          f"{store_columns / store_rows:.2f}")  # fmt: skip
    print("  monitor alone (parse, rules, store, metrics)")
    for label, rate in (
        ("single-event messages, stdlib decoder, row insert", before),
        ("single-event messages, orjson, columnar insert", single_fast),
        ("batch messages, orjson, columnar, generic parser", generic),
        ("batch messages, fast parser, event rows", rows),
        ("batch messages, orjson, columnar, fast parser", after),
    ):
        print(f"    {label:<48}{rate:>10,.0f} events/s   ratio: {rate / before:.2f}")
    print("  per CPU second (this process, chdb's threads included), best of each:")
    for label, rate in (
        ("batch messages, generic parser (3)", generic_cpu),
        ("batch messages, fast parser, event rows (5)", rows_cpu),
        ("batch messages, fast parser, event columns (4)", fast_cpu),
    ):
        print(f"    {label:<48}{rate:>10,.0f} events/s")
    print(f"  event columns / event rows, (4)/(5), best of {args.rounds} alternating runs: {after / rows:.2f} by wall "
          f"clock; {fast_cpu / rows_cpu:.2f} by CPU time")  # fmt: skip
    print(f"  fast parser / generic parser, (4)/(3), best of {args.rounds} alternating runs: {after / generic:.2f} "
          f"by wall clock; {fast_cpu / generic_cpu:.2f} by CPU time ({generic_cpu:,.0f} -> {fast_cpu:,.0f} events "
          "per CPU second)")  # fmt: skip
    print(f"  target >= {TARGET:,} events/s for the monitor alone: {'met' if after >= TARGET else 'NOT met'}")
    if args.profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
