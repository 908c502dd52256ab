"""Runs one licence's rules over a participant's events in event-time order.

The engine owns the explicit state (shared facts and each rule's state) and the event-time clock. It is
used the same way by the self-check CLI, the stream workers and backtests: feed events, collect findings.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from rules_engine.event_digest import content_digest
from rules_engine.events import (
    EVENT_TYPES,
    RETRACTION,
    AccountEvent,
    Event,
    EventError,
    PriceEvent,
    ReserveEvent,
    RetractionEvent,
    TransferEvent,
)
from rules_engine.facts import AccountState, Facts
from rules_engine.findings import Finding, new_finding
from rules_engine.licence import Licence
from rules_engine.rule_spec import RuleSpec
from rules_engine.rules import RULE_KINDS
from rules_engine.rules.base import Check, OnClock
from rules_engine.valuation import value_of

VALUE_BEARING = frozenset({"trade", "deposit", "withdrawal", "transfer"})
INVALID_EVENT = "invalid_event"
VALUATION_UNAVAILABLE = "valuation_unavailable"
EVIDENCE_RETRACTED = "evidence_retracted"
RETRACTION_REFUSED = "retraction_refused"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
# Sort rank at equal timestamps: facts (prices, accounts, participant facts) first, so that "latest price
# at or before the event" and "KYC state at that moment" include what happened in the same instant.
TYPE_RANK = {"price": 0, "account": 1, "participant": 2}


# Event types a chain connector may later retract.
_OBSERVED = frozenset({"transfer", "reserve"})


def _where(chain: str, block: int, block_hash: object) -> int:
    """Chain, block and block hash of an observation as one stable number (4 bytes of state per event)."""
    text = f"{chain}\x1f{block}\x1f{block_hash if isinstance(block_hash, str) else ''}"
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def event_order(event: Event) -> tuple[datetime, int]:
    return event.ts, TYPE_RANK.get(event.type, 3)


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    duplicates: int = 0
    other_participant: int = 0
    invalid: int = 0
    unvalued: int = 0
    retractions: int = 0
    conflicts: int = 0
    findings: Counter[str] = field(default_factory=Counter)


class Engine:
    def __init__(self, licence: Licence) -> None:
        self.licence = licence
        self.header = licence.header
        self.facts = Facts(licence.header)
        self.states: dict[str, Any] = {}
        self.clock: datetime | None = None
        self.stats = EngineStats()
        self._participant = licence.header.participant
        self._currency = licence.header.reporting_currency
        self._term_start = licence.header.valid_from
        self._term_end = licence.header.valid_until
        # Event key -> digest of its content: a re-delivery is silent, a different event under a seen id is
        # reported (event_digest). Chain observations also keep where they were seen, for retractions.
        self._seen: dict[object, int] = {}
        self._observed: dict[str, int] = {}
        self._retraction_sources = licence.header.retraction_sources
        self._dispatch: dict[str, list[tuple[Check, RuleSpec, Any]]] = {t: [] for t in EVENT_TYPES}
        self._clock_rules: list[tuple[OnClock, RuleSpec, Any]] = []
        self._valued: set[str] = set()
        for rule in licence.rules:
            kind = RULE_KINDS[rule.kind]
            state = self.states[rule.id] = kind.new_state(rule.params)
            types = kind.event_types(rule.params)
            for event_type in types:
                self._dispatch[event_type].append((kind.check, rule, state))
            if kind.valued:
                self._valued |= types & VALUE_BEARING
            if kind.on_clock is not None:
                self._clock_rules.append((kind.on_clock, rule, state))

    def process(self, event: Event) -> list[Finding]:
        """Apply one event. Re-delivered event ids and other participants' events change nothing
        (reference prices are market-wide, so those are taken from any participant).

        This runs for every event of every stream, so it reads attributes into locals once."""
        stats = self.stats
        stats.events += 1
        event_type = event.type
        key: object
        if event.participant == self._participant:
            key = event.event_id
        elif event_type == "price":
            key = (event.participant, event.event_id)
        else:
            stats.other_participant += 1
            return []
        seen = self._seen
        digest = event.digest or content_digest(event)
        prior = seen.get(key)
        if prior is not None:
            stats.duplicates += 1
            return [] if prior == digest or not prior else self._conflict(event, digest)
        seen[key] = digest
        if event_type in _OBSERVED:
            self._observe(event)
        elif event_type == RETRACTION:
            return self._retraction(event)
        found: list[Finding] = []
        ts = event.ts
        # Only in-term events move the clock: a mistyped year must not expire every pending deadline.
        clock = self.clock
        if (clock is None or ts > clock) and self._term_start <= ts <= self._term_end:
            self.clock = ts
            if self._clock_rules:
                found.extend(self._tick(ts))
        facts = self.facts
        if event_type == "account" and isinstance(event, AccountEvent):
            facts.accounts[event.account] = AccountState.from_event(event)
        elif event_type == "price" and isinstance(event, PriceEvent):
            facts.prices.add(event)
        if event_type in self._valued:
            value = facts.value = value_of(event, self._currency, facts.prices)
            if value is None:
                stats.unvalued += 1
                found.append(self._unvalued(event))
        else:
            facts.value = None
        for check, rule, state in self._dispatch[event_type]:
            result = check(rule, event, facts, state)
            if result:
                found.extend(result)
        if found:
            stats.findings.update(f.severity for f in found)
        return found

    def utilisation(self) -> list[tuple[str, str, Decimal]]:
        """(rule id, limit name, share of the limit in use) for participant-level limits, for dashboards."""
        used: list[tuple[str, str, Decimal]] = []
        for rule in self.licence.rules:
            measure = RULE_KINDS[rule.kind].utilisation
            if measure is not None:
                shares = measure(rule, self.states[rule.id])
                used.extend((rule.id, name, ratio) for name, ratio in shares.items())
        return used

    def advance_to(self, ts: datetime) -> list[Finding]:
        """Move the clock without an event (``--as-of``, or a stream's idle tick) to judge deadlines."""
        if self.clock is not None and ts <= self.clock:
            return []
        self.clock = ts
        found = self._tick(ts)
        stats = self.stats
        stats.findings.update(f.severity for f in found)
        return found

    def _tick(self, ts: datetime) -> list[Finding]:
        found: list[Finding] = []
        for on_clock, rule, state in self._clock_rules:
            result = on_clock(rule, ts, self.facts, state)
            if result:
                found.extend(result)
        return found

    def _unvalued(self, event: Event) -> Finding:
        header = self.header
        return new_finding(
            licence=header.id,
            rule=VALUATION_UNAVAILABLE,
            kind=VALUATION_UNAVAILABLE,
            severity="warning",
            clause="valuation in the reporting currency (events contract)",
            participant=event.participant,
            subject=getattr(event, "account", None) or event.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} cannot be valued in {header.reporting_currency}: no "
            f"reference price at or before {event.ts.isoformat()}; value-based rules skipped it.",
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a snapshot; one written before content digests kept a set of ids, whose earlier events'
        digests are unknown (0: a later event under such an id counts as a re-delivery)."""
        seen = state.get("_seen")
        if isinstance(seen, set):
            state["_seen"] = dict.fromkeys(seen, 0)
        header = state["licence"].header
        if not hasattr(header, "retraction_sources"):
            # A header pickled before the field existed: none, as an absent field means. The licence's
            # fingerprint then differs from a licence naming sources, so such a snapshot is replayed.
            object.__setattr__(header, "retraction_sources", ())
        state.setdefault("_observed", {})
        state.setdefault("_retraction_sources", header.retraction_sources)
        self.__dict__.update(state)

    def _conflict(self, event: Event, digest: int) -> list[Finding]:
        """Two different events under one id: the later one is not judged (which of the two is true is not
        the monitor's call), and a warning says so instead of merging them without a word."""
        stats = self.stats
        stats.conflicts += 1
        stats.findings["warning"] += 1
        header = self.header
        return [
            new_finding(
                licence=header.id,
                rule=CONFLICTING_DUPLICATE,
                kind=CONFLICTING_DUPLICATE,
                severity="warning",
                clause="canonical events contract, version 1 (event_id is unique per participant)",
                participant=event.participant,
                subject=getattr(event, "account", None) or event.participant,
                ts=event.ts,
                key=f"{event.event_id}\x1f{digest & 0xFFFFFFFFFFFFFFFF:016x}",
                evidence=(event.event_id,),
                message=f"{event.type} {event.event_id} arrived again with different content; the first "
                "version was judged, this one was not. Each event needs its own id.",
            )
        ]

    def _observe(self, event: Event) -> None:
        """Where a chain observation (a transfer, or a reserve snapshot read from a chain) was seen, kept as
        one CRC per event: the only events a chain connector may retract are its own."""
        if isinstance(event, TransferEvent):
            block_hash = event.extra.get("block_hash")
            self._observed[event.event_id] = _where(event.chain, event.block, block_hash)
        elif isinstance(event, ReserveEvent):
            chain, block, block_hash = (event.extra.get(k) for k in ("chain", "block", "block_hash"))
            if isinstance(chain, str) and type(block) is int:
                self._observed[event.event_id] = _where(chain, block, block_hash)

    def _retraction(self, event: Event) -> list[Finding]:
        """A chain connector withdrawing its own observation (a reorganisation abandoned its block). It is
        accepted only from a chain the licence names in ``retraction_sources`` and only for an event of
        this participant seen on that chain, in that block; then an info finding tells reviewers which
        evidence is void. Anything else is refused with a warning: a sender cannot make an event vanish."""
        assert isinstance(event, RetractionEvent)
        retracted = event.retracts
        problem = self._retraction_problem(event)
        header = self.header
        if problem is not None:
            self.stats.findings["warning"] += 1
            return [
                new_finding(
                    licence=header.id,
                    rule=RETRACTION_REFUSED,
                    kind=RETRACTION_REFUSED,
                    severity="warning",
                    clause="canonical events contract, version 1 (retraction)",
                    participant=header.participant,
                    subject=header.participant,
                    ts=event.ts,
                    key=event.event_id,
                    evidence=(retracted, event.event_id),
                    message=f"retraction {event.event_id} of {retracted} was refused: {problem}.",
                )
            ]
        self.stats.retractions += 1
        self.stats.findings["info"] += 1
        del self._observed[retracted]
        return [
            new_finding(
                licence=header.id,
                rule=EVIDENCE_RETRACTED,
                kind=EVIDENCE_RETRACTED,
                severity="info",
                clause="canonical events contract, version 1 (connector retraction)",
                participant=header.participant,
                subject=header.participant,
                ts=event.ts,
                key=event.event_id,
                evidence=(retracted, event.event_id),
                message=f"{retracted} was retracted ({event.reason}); findings citing it rest on "
                "an observation that is no longer on record.",
            )
        ]

    def _retraction_problem(self, event: RetractionEvent) -> str | None:
        if event.chain not in self._retraction_sources:
            allowed = ", ".join(self._retraction_sources) or "none"
            return f"chain {event.chain!r} is not a retraction source of the licence (retraction_sources: {allowed})"
        observed = self._observed.get(event.retracts)
        if observed is None:
            if event.retracts in self._seen:
                return "the retracted event is not a chain observation (transfer or reserve) or was already retracted"
            return "no event with that id was seen for this participant"
        if observed != _where(event.chain, event.block, event.block_hash):
            return (
                f"the retracted event was not seen on {event.chain!r} in block {event.block} "
                f"({event.block_hash or 'no block hash'}), as the retraction says"
            )
        return None

    def invalid(self, error: EventError) -> Finding:
        """An unusable input line becomes a warning finding, so it is counted and never silently lost."""
        self.stats.invalid += 1
        self.stats.findings["warning"] += 1
        header = self.header
        where = f"line {error.line}"
        return new_finding(
            licence=header.id,
            rule=INVALID_EVENT,
            kind=INVALID_EVENT,
            severity="warning",
            clause="canonical events contract, version 1",
            participant=error.participant or header.participant,
            subject=error.participant or header.participant,
            ts=error.ts,
            key=f"{where}:{error.raw}",
            evidence=(error.event_id,) if error.event_id else (),
            message=f"Invalid event at {where}: "
            + (f"field '{error.field}': " if error.field else "")
            + f"{error.reason}.",
        )
