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

    @property
    def failed(self) -> bool:
        return any(f.severity in FAILING_SEVERITIES for f in self.findings)


def run_check(
    licence: Licence, records: Iterable[tuple[int, Event | EventError]], as_of: datetime | None = None
) -> CheckResult:
    """Sort by event time (stable, so equal instants keep file order) and run the engine once.

    Invalid lines come first in the output, in line order, then findings in event-time order."""
    engine = Engine(licence)
    findings: list[Finding] = []
    errors: list[EventError] = []
    events: list[tuple[int, Event]] = []
    for line, item in records:
        if isinstance(item, EventError):
            errors.append(item)
            findings.append(engine.invalid(item))
        else:
            events.append((line, item))
    events.sort(key=lambda pair: event_order(pair[1]))
    for line, event in events:
        # One event's content must not end the check: it is contained the way the live monitor contains it.
        found, error = process_isolated(engine, event, "events", line)
        if error is not None:
            errors.append(error)
        if found:
            findings.extend(found)
    if as_of is not None:
        findings.extend(engine.advance_to(as_of))
    return CheckResult(findings=findings, errors=errors, stats=engine.stats)
