"""Engines rebuilt from the stored events, kept current, for pre-checks and limit utilisation.

The store holds exactly the events the live monitor accepted, so feeding them to the same engine gives the
monitor's state (as of the store's latest write). After the first full build only events stored since the
last refresh are read; the engine ignores ids it has seen, so the overlap kept for safety costs nothing."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.isolation import process_isolated
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.replay import feed_in_event_order
from sandboxwatch.store.clickhouse_store import Store, recorded_now

OVERLAP = timedelta(seconds=5)


@dataclass(slots=True)
class _Cached:
    engine: Engine
    synced: datetime
    checked: float


class LiveState:
    def __init__(self, store: Store, licences: Mapping[str, Licence], refresh_s: float = 2.0) -> None:
        self.store = store
        self.licences = dict(licences)
        self.refresh_s = refresh_s
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def licensed(self, participant: str) -> bool:
        return participant in self.licences

    def engine(self, participant: str) -> Engine:
        with self._lock:
            cached = self._cache.get(participant)
            if cached is not None and time.monotonic() - cached.checked < self.refresh_s:
                return cached.engine
            started = recorded_now()
            if cached is None:
                engine = Engine(self.licences[participant])
                records = self.store.stored_events(participant)
            else:
                engine = cached.engine
                records = self.store.stored_events(participant, cached.synced - OVERLAP)
            # As the monitor did: an event whose checking raised there is contained here too.
            feed_in_event_order(engine, ((r.event, (r.source, 0, r.raw)) for r in records))
            engine.take_failures()  # the monitor dead-lettered each when it first failed
            self._cache[participant] = _Cached(engine, started, time.monotonic())
            return engine

    def precheck(self, event: Event) -> tuple[list[Finding], EventError | None]:
        """What the event would trigger now, judged on a copy so the state itself never changes. The copy
        first judges what its reorder buffer holds (stored events, whose findings are already known), then
        the trial event alone; isolated as the monitor isolates it, so an event whose checking raises comes
        back as its error."""
        trial: Engine = pickle.loads(pickle.dumps(self.engine(event.participant), pickle.HIGHEST_PROTOCOL))
        trial.flush()
        trial.take_failures()
        found, error = process_isolated(trial, event, "precheck", 0)
        found += trial.flush()
        later = trial.take_failures()
        return found, error or (later[0] if later else None)

    def utilisation(self, participant: str) -> list[dict[str, str]]:
        return [
            {"rule": rule, "limit": name, "share": format(share, "f")}
            for rule, name, share in self.engine(participant).utilisation()
        ]
