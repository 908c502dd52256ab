"""The self-check run behind ``sandboxwatch check``: whole-file, event-time ordered, deterministic, in
memory bounded by the engine's state rather than by the file.

Two ways through a file, with the same findings:
- Streaming: events go to the engine in file order, and its reorder buffer (allowed lateness) puts them in
  event-time order. That judges exactly what sorting would, as long as no event arrives behind what the
  engine has already judged (older than its watermark, or before an after-term event judged at once). A
  file sorted by time, or out of order only within the allowed lateness, is checked in one pass holding
  nothing but the engine's state.
- Sorting: otherwise the input is read again and sorted in bounded chunks (``ExternalSort``: sorted runs in
  temporary files, merged k ways), then judged in that order. Without a way to read it again (``reread``),
  this is the only way.

Duplicates are decided in arrival (file) order on both ways (docs/events.md, Duplicates): the first
version of an id is judged and a later, different one is reported, whatever their event times. Sorting
alone would judge whichever is older, so a re-used id with an earlier time could hide a breach."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sandboxwatch.rules_engine.engine import TYPE_RANK, Engine, EngineStats
from sandboxwatch.rules_engine.event_digest import content_digest
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.external_sort import CHUNK_EVENTS, ExternalSort
from sandboxwatch.rules_engine.findings import FAILING_SEVERITIES, Finding
from sandboxwatch.rules_engine.licence import Licence

Records = Iterable[tuple[int, Event | EventError]]

STREAMED = "streamed"
SORTED_IN_MEMORY = "sorted in memory"
SORTED_IN_RUNS = "sorted in {runs} runs on disk"


@dataclass(slots=True)
class CheckResult:
    findings: list[Finding]
    errors: list[EventError]
    stats: EngineStats
    # Valid events of the licence's participant: with none, the check judged nothing (exit 2, not 0).
    usable: int = 0
    # How the events were put in order: STREAMED, SORTED_IN_MEMORY or SORTED_IN_RUNS.
    order: str = STREAMED
    # The line at which streaming gave way to sorting (0: it did not).
    unsorted_at: int = 0

    @property
    def failed(self) -> bool:
        return any(f.severity in FAILING_SEVERITIES for f in self.findings)


class _Unsorted(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def run_check(
    licence: Licence,
    records: Records,
    as_of: datetime | None = None,
    source: str = "events",
    *,
    reread: Callable[[], Records] | None = None,
    chunk_events: int = CHUNK_EVENTS,
    spill_dir: str | None = None,
) -> CheckResult:
    """Judge the records (line number, event or error) in event-time order and flush the engine's reorder
    buffer at the end (the same lateness policy as the stream, which ordered input never reaches).

    With ``reread`` (the same records from the start again), the records are streamed first, and read
    again to be sorted only if they turn out not to be in order; without it they are sorted at once.

    Invalid lines come first in the output, in line order, then findings in judging order. An event a rule
    cannot compute with becomes an ``invalid_event`` finding and an error (with its line, as
    ``process_isolated`` makes them), and the rest is judged."""
    if reread is not None:
        try:
            return _streamed(licence, records, as_of, source)
        except _Unsorted as stop:
            result = _sorted(licence, reread(), as_of, source, chunk_events, spill_dir)
            result.unsorted_at = stop.line
            return result
    return _sorted(licence, records, as_of, source, chunk_events, spill_dir)


def _finish(engine: Engine, found: list[Finding], as_of: datetime | None) -> None:
    found.extend(engine.flush())
    if as_of is not None:
        found.extend(engine.advance_to(as_of))


def _streamed(licence: Licence, records: Records, as_of: datetime | None, source: str) -> CheckResult:
    """One pass in file order; raises ``_Unsorted`` at the first event the engine would judge out of the
    order sorting gives (the caller then sorts instead, from the start, with a new engine)."""
    engine = Engine(licence)
    invalid: list[Finding] = []
    errors: list[EventError] = []
    found: list[Finding] = []
    participant = licence.participant
    term_end = licence.header.valid_until
    process = engine.process
    usable = 0
    # The latest (time, rank) judged at once for being after the term; nothing may arrive behind it.
    after_term: tuple[datetime, int] | None = None
    for number, item in records:
        if isinstance(item, EventError):
            errors.append(item)
            invalid.append(engine.invalid(item))
            continue
        mine = item.participant == participant
        if mine or item.type == "price":
            usable += mine
            ts = item.ts
            watermark = engine.watermark
            if watermark is not None and ts < watermark:
                raise _Unsorted(number)
            if after_term is not None or ts > term_end:
                order = (ts, TYPE_RANK.get(item.type, 3))
                if after_term is not None and order < after_term:
                    raise _Unsorted(number)
                if ts > term_end:
                    after_term = order
        result = process(item, (source, number, ""))
        if result:
            found.extend(result)
    _finish(engine, found, as_of)
    errors.extend(engine.take_failures())
    return CheckResult(invalid + found, errors, engine.stats, usable, STREAMED)


def _sorted(
    licence: Licence,
    records: Records,
    as_of: datetime | None,
    source: str,
    chunk_events: int,
    spill_dir: str | None,
) -> CheckResult:
    """Duplicates decided while reading, in file order; then the engine judges in sorted order, and a
    later conflicting version is reported where it sorts, never judged."""
    engine = Engine(licence)
    invalid: list[Finding] = []
    errors: list[EventError] = []
    found: list[Finding] = []
    participant = licence.participant
    usable = 0
    with ExternalSort(chunk_events, spill_dir) as sorter:
        first_digest: dict[object, int] = {}
        add = sorter.add
        rank = TYPE_RANK.get
        for arrival, (number, item) in enumerate(records):
            if isinstance(item, EventError):
                errors.append(item)
                invalid.append(engine.invalid(item))
                continue
            # duplicate_key, inline: this runs once per line of an unsorted file.
            key: object
            if item.participant == participant:
                usable += 1
                key = item.event_id
            elif item.type == "price":
                key = (item.participant, item.event_id)
            else:
                add((item.ts, rank(item.type, 3), arrival, item, number, False))
                continue
            digest = item.digest
            if not digest:
                digest = item.digest = content_digest(item)
            prior = first_digest.setdefault(key, digest)
            add((item.ts, rank(item.type, 3), arrival, item, number, prior != digest and prior != 0))
        del first_digest  # the engine keeps its own from here: never both at once
        process = engine.process
        refuse = engine.refuse_conflicting
        for _, _, _, event, number, conflicting in sorter.sorted():
            result = refuse(event) if conflicting else process(event, (source, number, ""))
            if result:
                found.extend(result)
        runs = sorter.spilled_runs
    _finish(engine, found, as_of)
    errors.extend(engine.take_failures())
    order = SORTED_IN_RUNS.format(runs=runs) if runs else SORTED_IN_MEMORY
    return CheckResult(invalid + found, errors, engine.stats, usable, order)
