"""A trailing event-time window of one subject's valued events, for the rules that judge a sum over one
(rolling_volume, structuring).

Both judge a crossing at each event from the window ending at that event, with and without it, so the window
answers exactly that: the events of the window ending at the new event and their sum before it. Events come
mostly in order: the window then drops what left it and keeps a running sum. A late event (older than the
newest kept) is judged on the window ending at its own time, as far as the kept events reach, and is kept in
place so later windows count it."""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sandboxwatch.rules_engine.fast_pickle import fast_pickle
from sandboxwatch.rules_engine.money import ZERO
from sandboxwatch.rules_engine.valuation import EXACT, exact_sum

Entry = tuple[datetime, Decimal, str]  # event time, value, event id
_add = EXACT.add
_subtract = EXACT.subtract


def _time(entry: Entry) -> datetime:
    return entry[0]


@fast_pickle
@dataclass(slots=True)
class Window:
    """Events inside (latest - span, latest], in event-time order, and their exact sum (valuation.EXACT: the
    default 28-digit context rounded small values away beside a large one). Snapshots pickle it
    (streams/engine_snapshots.py): its fields are its pickled form, so change them only with a migration."""

    entries: deque[Entry] = field(default_factory=deque)
    total: Decimal = ZERO

    def add(self, ts: datetime, value: Decimal, event_id: str, span: timedelta) -> tuple[Sequence[Entry], Decimal]:
        """Take an event: the events of the window of ``span`` ending at it (it last) and their sum without it.
        The sequence is the window's own while events come in order: read it before the next ``add``."""
        entries = self.entries
        entry = (ts, value, event_id)
        if not entries:
            # An empty window (a new subject, or one whose events all left): nothing to drop or sum.
            entries.append(entry)
            before = self.total
            self.total = _add(before, value)
            return entries, before
        horizon = ts - span
        if entries[-1][0] <= ts:
            before = self.total
            if entries[0][0] <= horizon:
                popleft = entries.popleft
                while entries and entries[0][0] <= horizon:
                    before = _subtract(before, popleft()[1])
            entries.append(entry)
            self.total = _add(before, value)
            return entries, before
        in_window = [kept for kept in entries if horizon < kept[0] <= ts]
        before = exact_sum(kept[1] for kept in in_window)
        in_window.append(entry)
        insort(entries, entry, key=_time)
        self.total = EXACT.add(self.total, value)
        return in_window, before
