"""Feeding a whole set of events (a file, a participant's stored history) to an engine in event-time order.

The self-check, a rebuild from the store and the API's live state all hold every event before judging, so
they sort first: then nothing they feed is late and the result does not depend on arrival order. The sort
is stable, so events at the same instant keep the order they were given in. Each event goes in with its
origin, so one whose checking raises is contained and named (``Engine.failures``) wherever it came from."""

from __future__ import annotations

from collections.abc import Iterable

from sandboxwatch.rules_engine.engine import Engine, Origin, event_order
from sandboxwatch.rules_engine.events import Event
from sandboxwatch.rules_engine.findings import Finding


def feed_in_event_order(engine: Engine, arrivals: Iterable[tuple[Event, Origin]]) -> list[Finding]:
    """The findings the events release, in judging order. Not flushed: a caller at the end of its input
    calls ``engine.flush()`` (one rebuilding a live engine leaves the newest events buffered)."""
    found: list[Finding] = []
    process = engine.process
    for event, origin in sorted(arrivals, key=lambda arrival: event_order(arrival[0])):
        result = process(event, origin)
        if result:
            found.extend(result)
    return found
