"""The self-check run behind ``sandboxwatch check``: whole-file, event-time ordered, deterministic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rules_engine.engine import Engine, EngineStats, event_order
from rules_engine.events import Event, EventError
from rules_engine.findings import FAILING_SEVERITIES, Finding
from rules_engine.isolation import contained
from rules_engine.licence import Licence


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
    """Sort by event time (stable, so equal instants keep file order) and run the engine once.

    Invalid lines come first in the output, in line order, then findings in event-time order. An event a
    rule cannot compute with becomes an ``invalid_event`` finding and an error (with its line, as
    ``process_isolated`` makes them), and the rest is judged."""
    engine = Engine(licence)
    findings: list[Finding] = []
    errors: list[EventError] = []
    events: list[Event] = []
    numbers: list[int] = []
    participant = licence.participant
    usable = 0
    for number, item in records:
        if isinstance(item, EventError):
            errors.append(item)
            findings.append(engine.invalid(item))
        else:
            events.append(item)
            numbers.append(number)
            usable += item.participant == participant
    line_of: dict[int, int] | None = None
    process = engine.process
    for event in sorted(events, key=event_order):
        try:
            found = process(event)
        except Exception as exc:  # contained as process_isolated does; the rest is judged
            if line_of is None:  # built only once an event fails: a million-entry map is not free
                line_of = {id(e): n for e, n in zip(events, numbers, strict=True)}
            found, error = contained(engine, event, exc, source, line_of[id(event)])
            errors.append(error)
        if found:
            findings.extend(found)
    if as_of is not None:
        findings.extend(engine.advance_to(as_of))
    return CheckResult(findings=findings, errors=errors, stats=engine.stats, usable=usable)
