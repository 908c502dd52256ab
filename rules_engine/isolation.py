"""Runs one event through an engine so that nothing in that event's content can stop the caller.

The parser bounds what it accepts, but a monitor must not rely on every bound being right: an event that
still makes a rule raise (an arithmetic overflow, a value no rule expected) becomes an ``EventError`` and an
``invalid_event`` finding, and the stream, self-check, backtest or pre-check goes on with the next event.
One shared mechanism rather than a try/except per caller, so every path isolates events the same way.

The engine remembers the event id before its rules run, so an event that failed here is not judged again
when it is re-delivered: its failure is on record as a finding and a dead letter instead.
"""

from __future__ import annotations

import logging

from rules_engine.engine import Engine
from rules_engine.events import Event, EventError
from rules_engine.findings import Finding

log = logging.getLogger(__name__)

_RAW_LIMIT = 500


def process_isolated(
    engine: Engine, event: Event, source: str, line: int, raw: str = ""
) -> tuple[list[Finding], EventError | None]:
    """The event's findings, or (an ``invalid_event`` finding, the error) if checking it raised."""
    try:
        return engine.process(event), None
    except Exception as exc:  # isolation is the point: any failure on one event's content is contained
        return contained(engine, event, exc, source, line, raw)


def contained(
    engine: Engine, event: Event, exc: Exception, source: str, line: int, raw: str = ""
) -> tuple[list[Finding], EventError]:
    """What ``process_isolated`` makes of a failure, for a caller with its own try (the self-check's loop
    over a million events, which looks an event's line up only when one fails)."""
    log.warning("event %s at %s:%d could not be checked", event.event_id, source, line, exc_info=exc)
    error = EventError(
        source=source,
        line=line,
        field=None,
        reason=f"could not be checked ({type(exc).__name__}: {exc or 'no detail'})"[:_RAW_LIMIT],
        raw=raw[:_RAW_LIMIT],
        event_id=event.event_id,
        participant=event.participant,
        ts=event.ts,
    )
    return [engine.invalid(error)], error
