"""Runs one licence's rules over a participant's events in event-time order.

The engine owns the explicit state (shared facts and each rule's state) and the event-time clock. It is
used the same way by the self-check CLI, the stream workers and backtests: feed events, collect findings,
and call ``flush`` at the end of a finite input.

Lateness (docs/licence.md): events arrive out of order in a live system, so the engine holds each arrival
in a reorder buffer keyed by event time and judges it only once the watermark (the newest in-term event
time seen, minus the licence's allowed lateness) has passed it. Events within the allowed lateness are
therefore judged exactly as if they had arrived in order, whichever path delivers them. An event older
than the watermark is judged at once against the current state and flagged with a ``late_event`` finding;
an event after the licence term is judged at once too, after whatever the buffer holds (it may be a
mistyped year: it must not wait for a watermark that never comes, nor move the watermark for everyone
else; in-term events older than the newest seen that arrive after it are late).
"""

from __future__ import annotations

import logging
import zlib
from bisect import insort
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.builtin_findings import (
    CONFLICTING_DUPLICATE,
    EVIDENCE_RETRACTED,
    INVALID_EVENT,
    LATE_EVENT,
    PRICE_REFUSED,
    RETRACTION_REFUSED,
    VALUATION_UNAVAILABLE,
    builtin_finding,
)
from sandboxwatch.rules_engine.event_digest import content_digest
from sandboxwatch.rules_engine.events import (
    EVENT_TYPES,
    RETRACTION,
    VALUE_BEARING,
    AccountEvent,
    Event,
    EventError,
    PriceEvent,
    ReserveEvent,
    RetractionEvent,
    TransferEvent,
)
from sandboxwatch.rules_engine.facts import AccountState, Facts
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import DEFAULT_ALLOWED_LATENESS, RuleSpec
from sandboxwatch.rules_engine.rules import RULE_KINDS
from sandboxwatch.rules_engine.rules.base import Check, OnClock
from sandboxwatch.rules_engine.valuation import EXACT, value_of

log = logging.getLogger(__name__)

# Where an event came from (source, line, raw text), so a failure found when it is judged can name it.
Origin = tuple[str, int, str]
_RAW_LIMIT = 500
_NO_ORIGIN: Origin = ("<engine>", 0, "")

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


def duplicate_key(event: Event, participant: str) -> object | None:
    """The key ``Engine.process`` dedupes on for a licence's participant (docs/events.md, Duplicates), or
    None for an event it ignores; for a caller that decides duplicates in arrival order itself."""
    if event.participant == participant:
        return event.event_id
    if event.type == "price":
        return (event.participant, event.event_id)
    return None


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    duplicates: int = 0
    other_participant: int = 0
    invalid: int = 0
    unvalued: int = 0
    retractions: int = 0
    late: int = 0
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
        # (key, digest) of every conflicting version reported: the same version arriving again is a
        # re-delivery of it, reported once (only conflicts are kept, so this stays small).
        self._conflicted: set[tuple[object, int]] = set()
        self._observed: dict[str, int] = {}
        # (source, pair) of the untrusted prices reported: each is reported once (docs/licence.md).
        self._untrusted_prices: set[str] = set()
        self._retraction_sources = licence.header.retraction_sources
        self._lateness = licence.header.allowed_lateness
        # Newest in-term event time seen, and the reorder buffer: (ts, type rank, event, origin) in judging
        # order. Arrivals in order are appended; an out-of-order one is inserted after its equals.
        self._newest: datetime | None = None
        self.watermark: datetime | None = None
        self._buffer: deque[tuple[datetime, int, Event, Origin | None]] = deque()
        # Events whose checking raised, contained as invalid_event findings; the caller dead-letters them.
        self.failures: list[EventError] = []
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

    def replace_rule(self, rule: RuleSpec) -> None:
        """New parameters for a stateless rule (a new version of its reference data, see
        rules_engine/reference_lists.py); later events are judged with them, earlier findings stand."""
        for entries in self._dispatch.values():
            for index, (check, old, state) in enumerate(entries):
                if old.id == rule.id:
                    if state is not None:
                        raise ValueError(f"rule {rule.id} keeps state; its parameters cannot be swapped")
                    entries[index] = (check, rule, state)
        self.licence = replace(self.licence, rules=tuple(rule if r.id == rule.id else r for r in self.licence.rules))

    def process(self, event: Event, origin: Origin | None = None) -> list[Finding]:
        """Accept one arriving event; returns the findings of every event this arrival lets the engine
        judge (itself, if late or after the term, and buffered events the watermark has now passed).

        Re-delivered event ids and other participants' events change nothing (reference prices are
        market-wide, so those are also taken from the publishers the licence names in reference_prices, if
        of a source it trusts; never from another participant it does not name). An event
        whose checking raises becomes an invalid_event finding and an entry in ``failures``, whenever it is
        judged: nothing in one event's content stops the others."""
        stats = self.stats
        stats.events += 1
        key: object
        if event.participant == self._participant:
            key = event.event_id
        elif event.type == "price" and event.participant in self.header.price_publishers:
            key = (event.participant, event.event_id)
        else:
            stats.other_participant += 1
            return []
        seen = self._seen
        digest = event.digest or content_digest(event)
        prior = seen.get(key)
        if prior is not None:
            stats.duplicates += 1
            return [] if prior == digest or not prior else self._conflict(event, key, digest)
        seen[key] = digest
        ts = event.ts
        watermark = self.watermark
        if watermark is not None and ts < watermark:
            return self._late(event, watermark, origin)
        if ts > self._term_end:
            # Everything buffered is older: judged first, and the term's input counts as ended.
            return self.flush() + self._judge_contained(event, origin)
        rank = TYPE_RANK.get(event.type, 3)
        buffer = self._buffer
        if buffer:
            last = buffer[-1]
            if last[0] < ts or (last[0] == ts and last[1] <= rank):
                buffer.append((ts, rank, event, origin))
            else:
                insort(buffer, (ts, rank, event, origin), key=_judging_order)
        else:
            buffer.append((ts, rank, event, origin))
        newest = self._newest
        if ts >= self._term_start and (newest is None or ts > newest):
            self._newest = ts
            moved = ts - self._lateness
            # Never backwards: after a flush the watermark is the newest event itself.
            if watermark is None or moved > watermark:
                self.watermark = moved
                if buffer[0][0] < moved:
                    return self._release(moved)
        return []

    def flush(self) -> list[Finding]:
        """End of input: judge every buffered event, in event-time order. Later arrivals older than the
        newest event seen count as late, since the windows they belong to have been judged."""
        found = self._release(None)
        if self._newest is not None:
            self.watermark = self._newest
        return found

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _release(self, watermark: datetime | None) -> list[Finding]:
        buffer = self._buffer
        found: list[Finding] = []
        popleft = buffer.popleft
        judge = self._judge
        while buffer and (watermark is None or buffer[0][0] < watermark):
            _, _, event, origin = popleft()
            try:
                result = judge(event)
            except Exception as exc:  # contained: see _judge_contained
                result = [self._failed(event, origin, exc)]
            if result:
                found.extend(result)
        return found

    def take_failures(self) -> list[EventError]:
        failures, self.failures = self.failures, []
        return failures

    def _judge_contained(self, event: Event, origin: Origin | None) -> list[Finding]:
        try:
            return self._judge(event)
        except Exception as exc:  # isolation is the point: any failure on one event's content is contained
            return [self._failed(event, origin, exc)]

    def _failed(self, event: Event, origin: Origin | None, exc: Exception) -> Finding:
        """An event whose checking raised: an EventError naming where it came from, and its finding."""
        source, line, raw = origin or _NO_ORIGIN
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
        self.failures.append(error)
        return self.invalid(error)

    def _late(self, event: Event, watermark: datetime, origin: Origin | None) -> list[Finding]:
        """Beyond the allowed lateness: judged now against the current state, never dropped, and said so."""
        self.stats.late += 1
        self.stats.findings["info"] += 1
        header = self.header
        behind = (self._newest or watermark) - event.ts
        note = builtin_finding(
            LATE_EVENT,
            licence=header.id,
            participant=header.participant,
            subject=getattr(event, "account", None) or header.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} at {event.ts.isoformat()} arrived {_duration(behind)} behind "
            f"the newest event, beyond the allowed lateness of {_duration(self._lateness)}: it was judged "
            "against the state at its arrival; windows and deadlines already judged were not reopened.",
        )
        return [note, *self._judge_contained(event, origin)]

    def _judge(self, event: Event) -> list[Finding]:
        """Apply one event to the state and the rules. This runs for every event of every stream, so it
        reads attributes into locals once and calls nothing it can do inline (the clock rules' loop)."""
        event_type = event.type
        if event_type in _OBSERVED:
            self._observe(event)
        elif event_type == RETRACTION:
            # In event-time order like everything else, so it follows what it retracts.
            return self._retraction(event)
        found: list[Finding] = []
        ts = event.ts
        facts = self.facts
        # Only in-term events move the clock: a mistyped year must not expire every pending deadline.
        clock = self.clock
        if (clock is None or ts > clock) and self._term_start <= ts <= self._term_end:
            self.clock = ts
            for on_clock, rule, state in self._clock_rules:  # as _tick, once per event
                result = on_clock(rule, ts, facts, state)
                if result:
                    found.extend(result)
        if event_type == "account" and isinstance(event, AccountEvent):
            known = facts.accounts.get(event.account)
            # A late account event is history: it must not replace a newer state of the account.
            if known is None or known.since <= ts:
                facts.accounts[event.account] = AccountState.from_event(event)
        elif event_type == "price" and isinstance(event, PriceEvent):
            used, refusal = self._price_check(event)
            if used:
                facts.prices.add(event)
            elif refusal is not None:
                found.append(refusal)
        if event_type in self._valued:
            value = facts.value = value_of(event, self._currency, facts.prices)
            if value is None:
                self.stats.unvalued += 1
                found.append(self._unvalued(event))
        else:
            facts.value = None
        for check, rule, state in self._dispatch[event_type]:
            result = check(rule, event, facts, state)
            if result:
                found.extend(result)
        if found:
            self.stats.findings.update(f.severity for f in found)
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
        """Move the clock without an event (``--as-of``, or a stream's idle tick) to judge deadlines.
        Buffered events are judged first: a deadline is judged only after every event before it."""
        found = self.flush()
        if self.clock is not None and ts <= self.clock:
            return found
        self.clock = ts
        ticked = self._tick(ts)
        self.stats.findings.update(f.severity for f in ticked)
        return found + ticked

    def _tick(self, ts: datetime) -> list[Finding]:
        found: list[Finding] = []
        for on_clock, rule, state in self._clock_rules:
            result = on_clock(rule, ts, self.facts, state)
            if result:
                found.extend(result)
        return found

    def _price_check(self, event: PriceEvent) -> tuple[bool, Finding | None]:
        """Whether the price may value events (docs/licence.md, reference_prices) and, when it may not, its
        finding; none for a price of another participant (its own licence reports it: a finding here would
        show this licence another participant's feed) or a source already reported for this pair."""
        header = self.header
        source = event.source
        own = event.participant == self._participant
        if source not in header.price_sources:
            key = f"untrusted\x1f{source}\x1f{event.base}/{event.quote}"
            if not own or key in self._untrusted_prices:
                return False, None
            self._untrusted_prices.add(key)
            trusted = ", ".join(header.price_sources) or "none"
            problem = (
                f"{source!r} is not a trusted price source of the licence (reference_prices.sources: {trusted}); "
                "later prices of this source and pair are not used either and not reported again"
            )
        else:
            step = header.max_price_step
            if step is None:
                return True, None
            prices = self.facts.prices
            previous = prices.latest_from(event.base, event.quote, event.ts, (source,))
            of = "a source"
            if previous is None:
                # A source's first price of a pair is held against the other trusted sources' latest: else a
                # new source (or the first price after a restart of the feed) could value events at anything.
                previous = prices.latest_from(event.base, event.quote, event.ts, header.price_sources)
                of = "the trusted sources"
            if previous is not None and not _within(event.price, previous, step):
                reference = previous
            else:
                # And against every trusted price of the pair in the day before it: a bound on each step
                # alone lets a walk of steps, each within it, take the price anywhere within minutes.
                low, high = prices.range_from(
                    event.base, event.quote, event.ts - PRICE_BAND_SPAN, event.ts, header.price_sources
                )
                if high is not None and not _within(event.price, high, step):
                    reference = high
                elif low is not None and not _within(event.price, low, step):
                    reference = low
                else:
                    return True, None
                of = "the trusted sources in the 24 hours before it"
            if not own:
                return False, None
            key = event.event_id
            problem = (
                f"it moved from {decimal_text(reference)} to {decimal_text(event.price)}, beyond the factor "
                f"{decimal_text(step)} the licence allows between two prices of {of} (reference_prices.max_step)"
            )
        finding = builtin_finding(  # counted with the event's other findings (_judge)
            PRICE_REFUSED,
            licence=header.id,
            participant=header.participant,
            subject=header.participant,
            ts=event.ts,
            key=key,
            evidence=(event.event_id,),
            message=f"price {event.event_id} of {event.base}/{event.quote} from {source} was not used to value "
            f"events: {problem}.",
        )
        return False, finding

    def _unvalued(self, event: Event) -> Finding:
        header = self.header
        return builtin_finding(
            VALUATION_UNAVAILABLE,
            licence=header.id,
            participant=event.participant,
            subject=getattr(event, "account", None) or event.participant,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} cannot be valued in {header.reporting_currency}: no "
            f"reference price from a trusted source at or before {event.ts.isoformat()}; value-based rules "
            "skipped it.",
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a snapshot, also one written before a field existed: one written before content digests
        kept a set of ids, whose earlier events' digests are unknown (0: a later event under such an id
        counts as a re-delivery); one written before the reorder buffer restores with an empty one. A header
        pickled before a header field existed gets the field's default, so its licence fingerprint differs
        from the current licence's and such a snapshot is replayed from the store anyway."""
        seen = state.get("_seen")
        if isinstance(seen, set):
            state["_seen"] = dict.fromkeys(seen, 0)
        header = state["licence"].header
        defaults = (
            ("retraction_sources", ()),
            ("allowed_lateness", DEFAULT_ALLOWED_LATENESS),
            ("price_sources", ()),
            ("max_price_step", None),
            ("price_publishers", ()),
        )
        for name, default in defaults:
            if not hasattr(header, name):
                object.__setattr__(header, name, default)
        state.setdefault("_observed", {})
        state.setdefault("_conflicted", set())
        state.setdefault("_untrusted_prices", set())
        state.setdefault("_retraction_sources", header.retraction_sources)
        state.setdefault("_lateness", header.allowed_lateness)
        state.setdefault("_newest", state.get("clock"))
        state.setdefault("_buffer", deque())
        state.setdefault("failures", [])
        state.setdefault("watermark", None)
        self.__dict__.update(state)

    def refuse_conflicting(self, event: Event) -> list[Finding]:
        """A later arrival under a key whose first version differs, as the caller decided in arrival order
        (the self-check judges a file in event-time order, where a re-used id with an earlier time would
        otherwise come first and hide the version that arrived first): counted and reported, not judged."""
        self.stats.events += 1
        self.stats.duplicates += 1
        key = duplicate_key(event, self._participant)
        return self._conflict(event, key, event.digest or content_digest(event))

    def _conflict(self, event: Event, key: object, digest: int) -> list[Finding]:
        """Two different events under one id: the later one is not judged (which of the two is true is not
        the monitor's call), and a warning says so instead of merging them without a word. The same
        conflicting version again is a re-delivery of it: counted as a duplicate, reported once."""
        conflicted = self._conflicted
        if (key, digest) in conflicted:
            return []
        conflicted.add((key, digest))
        stats = self.stats
        stats.conflicts += 1
        stats.findings["warning"] += 1
        header = self.header
        return [
            builtin_finding(
                CONFLICTING_DUPLICATE,
                licence=header.id,
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
                builtin_finding(
                    RETRACTION_REFUSED,
                    licence=header.id,
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
            builtin_finding(
                EVIDENCE_RETRACTED,
                licence=header.id,
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
        where = error.where
        return builtin_finding(
            INVALID_EVENT,
            licence=header.id,
            participant=error.participant or header.participant,
            subject=error.participant or header.participant,
            ts=error.ts,
            key=f"{where}:{error.raw}",
            evidence=(error.event_id,) if error.event_id else (),
            message=f"Invalid event at {where}: "
            + (f"field '{error.field}': " if error.field else "")
            + f"{error.reason}.",
        )


def _judging_order(entry: tuple[datetime, int, Event, Origin | None]) -> tuple[datetime, int]:
    return entry[0], entry[1]


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{value.total_seconds():g}s"


# How far back a trusted price still bounds the next one of its pair (reference_prices.max_step).
PRICE_BAND_SPAN = timedelta(hours=24)


def _within(price: Decimal, reference: Decimal, step: Decimal) -> bool:
    """Whether ``price`` is within the factor ``step`` of ``reference``; exact (valuation.EXACT): the default
    28-digit context rounds reference * step, letting a price just beyond the factor through or refusing one
    exactly at it."""
    return EXACT.multiply(price, step) >= reference and price <= EXACT.multiply(reference, step)
