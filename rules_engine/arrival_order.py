"""Event-time order for a run of arrivals in which a later copy of an event id never goes before its first.

Callers that sort what arrived together (the stream worker sorts each batch, ``up`` sorts a whole file) let
the engine see events in the order it judges them. Sorting alone would also put a later copy of an id with
an earlier ``ts`` before the first copy, and the engine, which keeps the first arrival of an id and reports
a different later one (docs/events.md, Duplicates), would then judge the later version and refuse the first:
a re-used id could hide a breach, and the stream would report other conflicts than ``check`` does. So a
later copy sorts no earlier than the first copy of its key (participant and id), after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sandboxwatch.rules_engine.engine import TYPE_RANK
from sandboxwatch.rules_engine.events import Event

T = TypeVar("T")


class FirstCopies:
    """Each event's judging order as it arrives: its (ts, type rank), or its first copy's when that is later."""

    __slots__ = ("_first",)

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], tuple[datetime, int]] = {}

    def order(self, event: Event) -> tuple[datetime, int]:
        order = (event.ts, TYPE_RANK.get(event.type, 3))
        earliest = self._first.setdefault((event.participant, event.event_id), order)
        return earliest if order < earliest else order


def judging_order(items: Sequence[T], event_of: Callable[[T], Event]) -> list[T]:
    """The items by (ts, type rank), stable, each later copy of a (participant, event_id) after its first."""
    order = FirstCopies().order
    orders = [order(event_of(item)) for item in items]
    positions = sorted(range(len(items)), key=orders.__getitem__)  # stable: equal orders keep arrival order
    return [items[i] for i in positions]
