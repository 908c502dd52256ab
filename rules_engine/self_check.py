"""The self-check run behind ``sandboxwatch check``: whole-file, event-time ordered, deterministic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sandboxwatch.rules_engine.engine import Engine, EngineStats, Origin
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.findings import FAILING_SEVERITIES, Finding
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.replay import feed_in_event_order


@dataclass(slots=True)
class CheckResult:
    findings: list[Finding]
    errors: list[EventError]
    stats: EngineStats
    # Valid events of the licence's participant: with none, the check judged nothing (exit 2, not 0).
    usable: int = 0

    @property
    def failed(self) -> bool:
        return any(f.severity in FAILING_SEVERITIES for f in self.findings)


def run_check(
    licence: Licence,
    records: Iterable[tuple[int, Event | EventError]],
    as_of: datetime | None = None,
    source: str = "events",
) -> CheckResult:
    """Sort by event time (stable, so equal instants keep file order) and run the engine once, flushing its
    reorder buffer at the end of the file (the same lateness policy as the stream, which sorted input never
    reaches: nothing sorted is late).

    Invalid lines come first in the output, in line order, then findings in event-time order. An event a
    rule cannot compute with becomes an ``invalid_event`` finding and an error (with its line, as
    ``process_isolated`` makes them), and the rest is judged."""
    engine = Engine(licence)
    findings: list[Finding] = []
    errors: list[EventError] = []
    events: list[tuple[Event, Origin]] = []
    participant = licence.participant
    usable = 0
    for number, item in records:
        if isinstance(item, EventError):
            errors.append(item)
            findings.append(engine.invalid(item))
        else:
            events.append((item, (source, number, "")))
            usable += item.participant == participant
    # The engine contains an event whose checking raises (an invalid_event finding and a failure naming
    # its line), whenever its reorder buffer releases it; the rest is judged.
    findings.extend(feed_in_event_order(engine, events))
    findings.extend(engine.flush())
    if as_of is not None:
        findings.extend(engine.advance_to(as_of))
    errors.extend(engine.take_failures())
    return CheckResult(findings=findings, errors=errors, stats=engine.stats, usable=usable)
