"""The self-check run behind ``sandboxwatch check``: whole-file, event-time ordered, deterministic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rules_engine.engine import Engine, EngineStats, event_order
from rules_engine.events import Event, EventError
from rules_engine.findings import FAILING_SEVERITIES, Finding
from rules_engine.isolation import process_isolated
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
    rule cannot compute with becomes an ``invalid_event`` finding and an error (with its line), and the
    rest is judged."""
    engine = Engine(licence)
    findings: list[Finding] = []
    errors: list[EventError] = []
    events: list[tuple[Event, int]] = []
    participant = licence.participant
    usable = 0
    for number, item in records:
        if isinstance(item, EventError):
            errors.append(item)
            findings.append(engine.invalid(item))
        else:
            events.append((item, number))
            usable += item.participant == participant
    events.sort(key=_order)
    for event, number in events:
        found, error = process_isolated(engine, event, source, number)
        if error is not None:
            errors.append(error)
        if found:
            findings.extend(found)
    if as_of is not None:
        findings.extend(engine.advance_to(as_of))
    return CheckResult(findings=findings, errors=errors, stats=engine.stats, usable=usable)


def _order(item: tuple[Event, int]) -> tuple[datetime, int]:
    return event_order(item[0])
