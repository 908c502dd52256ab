"""Runs one event through an engine so that nothing in that event's content can stop the caller.

The parser bounds what it accepts, but a monitor must not rely on every bound being right: an event that
still makes a rule raise (an arithmetic overflow, a value no rule expected) becomes an ``EventError`` and an
``invalid_event`` finding, and the stream, self-check, backtest or pre-check goes on with the next event.
The containment itself lives in the engine, because an event is judged when the reorder buffer releases it,
which may be on a later event's arrival or at ``flush``; this function hands the engine the event's origin
and collects what failed.

The engine remembers the event id before its rules run, so an event that failed here is not judged again
when it is re-delivered: its failure is on record as a finding and a dead letter instead.
"""

from __future__ import annotations

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.findings import Finding


def process_isolated(
    engine: Engine, event: Event, source: str, line: int, raw: str = ""
) -> tuple[list[Finding], EventError | None]:
    """The findings this arrival releases (an ``invalid_event`` one for each event whose checking raised)
    and the first such failure, if any; ``engine.failures`` keeps any further ones until taken."""
    found = engine.process(event, (source, line, raw))
    failures = engine.failures
    return found, failures.pop(0) if failures else None
