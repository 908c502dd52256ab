"""Each licence limit's use over time, by replaying a participant's stored events through the engine.

The engine keeps only the current use of a limit, and the metrics history lives in Prometheus (which a
console reader may not reach and which forgets after its retention). The store holds every event the
monitor accepted, so the same engine fed the same events in event-time order reproduces the monitor's state
as it was at the end of each day; sampling it there gives the series. Events are judged as the live state
judges them (``process_isolated``), and the reorder buffer is flushed at each day's end so the sample holds
every event of that day. Cost: one pass over the participant's stored events, then kept until the store
holds a different set of that participant's events (``store.overview_queries.events_version``) or the
licence changes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sandboxwatch.rules_engine.engine import Engine, event_order
from sandboxwatch.rules_engine.isolation import process_isolated
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.overview_queries import LOCAL_OFFSET, events_version


@dataclass(frozen=True, slots=True)
class Sample:
    day: date
    rule: str
    limit: str
    share: Decimal


def local_day(ts: datetime) -> date:
    return (ts.astimezone(UTC) + LOCAL_OFFSET).date()


_CACHE: dict[tuple[str, str], tuple[tuple[int, str], list[Sample]]] = {}
_LOCK = threading.Lock()


def daily_use(store: Store, licence: Licence, since: date, until: date) -> list[Sample]:
    """The use of every participant-level limit at the end of each local day in [since, until] on which
    the participant had events (days without events change nothing, so the chart joins the points)."""
    key = (f"{store.db}/{licence.participant}", licence.fingerprint())
    version = events_version(store, licence.participant)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is None or cached[0] != version:
        cached = (version, _replay(store, licence))
        with _LOCK:
            _CACHE[key] = cached
    return [s for s in cached[1] if since <= s.day <= until]


def _replay(store: Store, licence: Licence) -> list[Sample]:
    engine = Engine(licence)
    records = store.stored_events(licence.participant)
    records.sort(key=lambda r: event_order(r.event))
    samples: list[Sample] = []
    current: date | None = None

    def sample(day: date) -> None:
        engine.flush()
        engine.take_failures()
        samples.extend(Sample(day, rule, name, share) for rule, name, share in engine.utilisation())

    for record in records:
        day = local_day(record.event.ts)
        if current is not None and day != current:
            sample(current)
        current = day
        process_isolated(engine, record.event, record.source, 0, record.raw)
    if current is not None:
        sample(current)
    return samples
