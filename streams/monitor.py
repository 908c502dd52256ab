"""One consumed batch through the rules engine, into the store and the metrics.

Kept free of Kafka and faust so the same code runs under the faust agent, in tests and in the pipeline
benchmark. The order inside a batch is event time (stable), like the self-check; across batches the
stream relies on producers publishing each participant's events roughly in order.

Effects are ordered for at-least-once delivery: events, findings and dead letters are stored (skipping
ids already stored) before the caller snapshots engine state and commits offsets, so a crash at any
point replays work whose effects are already deduplicated.

Nothing in one message's content can raise out of ``process_batch``: a message that cannot be decoded is an
invalid event, and an event whose checking raises (``rules_engine.isolation``) becomes an ``invalid_event``
finding and an ``unprocessable`` dead letter with the reason, while the rest of the batch flows. Store
outages are waited out (``store.write_retry``): ``process_batch`` returns only once its effects are stored."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from operator import attrgetter
from typing import TypeVar

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.rules_engine.arrival_order import judging_order
from sandboxwatch.rules_engine.engine import Engine, Origin
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.reference_lists import ReferenceError, refresh
from sandboxwatch.rules_engine.replay import feed_in_event_order
from sandboxwatch.store.backends import StoreError
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.records import DeadLetter, EventRecord, finding_json
from sandboxwatch.store.write_retry import WriteRetry
from sandboxwatch.streams.inbound import InboundMessage, LineError, decode_all, key_participant, line_dead_letter

log = logging.getLogger(__name__)

UNLICENSED = "unlicensed_participant"
UNPROCESSABLE = "unprocessable"
UNSTORABLE = "unstorable"
INSERTS_SETTLE_SECONDS = 30.0
T = TypeVar("T")
_EVENT_OF_RECORD = attrgetter("event")
_PARTICIPANT_OF = attrgetter("participant")
_TYPE_OF = attrgetter("type")
_TS_OF = attrgetter("ts")


@dataclass(slots=True)
class BatchOutcome:
    findings: list[Finding] = field(default_factory=list)
    new_findings: list[Finding] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: list[EventRecord] = field(default_factory=list)
    events: int = 0
    duplicates: int = 0
    # Event lines the batch's messages carried (a message holds one event or a batch of them).
    lines: int = 0
    last_offsets: dict[int, int] = field(default_factory=dict)


class Monitor:
    def __init__(
        self, licences: Iterable[Licence], store: Store, metrics: Metrics | None = None, retry: WriteRetry | None = None
    ) -> None:
        self.licences = {lic.header.participant: lic for lic in licences}
        self.store = store
        self.metrics = metrics or Metrics()
        self.metrics.prepare(self.licences.values())
        self.retry = retry or WriteRetry(self.metrics)
        self.engines: dict[str, Engine] = {}
        # Partitions (topic/partition) whose replayed region after a start is behind us.
        self._caught_up: set[str] = set()
        self._settled = False
        # When (monotonic seconds) each engine last accepted an event: how long its reorder buffer has waited.
        self._arrived: dict[str, float] = {}
        # Dead letters of this batch with no invalid_event finding (letter id -> why), counted once stored.
        self._unattributed: dict[str, str] = {}

    def engine(self, participant: str) -> Engine:
        engine = self.engines.get(participant)
        if engine is None:
            engine = self.engines[participant] = Engine(self.licences[participant])
            self._refresh(participant, engine)
        return engine

    def rebuild(self, participant: str) -> Engine:
        """A fresh engine for the current licence, fed the participant's stored events in event-time
        order: how state survives a licence upgrade or a lost snapshot. Findings it re-derives carry the
        same ids, so only what the new licence adds is new to the store. Not flushed: the newest events stay
        in the reorder buffer, as they would in the live engine, for events still arriving within lateness."""
        engine = self.engines[participant] = Engine(self.licences[participant])
        self._refresh(participant, engine)
        unreadable: list[EventError] = []
        records = self.retry.run(lambda: self.store.stored_events(participant, None, unreadable), "read stored events")
        # A stored event today's parser refuses (stored before a bound existed) is reported, never skipped.
        found: list[Finding] = [engine.invalid(error) for error in unreadable]
        found += feed_in_event_order(engine, ((r.event, (*_where(r.source), r.raw)) for r in records))
        engine.take_failures()  # each was dead-lettered when it first failed live
        self.metrics.count_findings(self.retry.run(lambda: self.store.write_findings(found), "findings"))
        return engine

    def refresh_reference_data(self) -> None:
        """New versions of file-backed reference lists (a re-imported sanctions list) take effect from the
        next batch on, without a restart; a file that became unreadable or empty keeps the last version."""
        for participant, engine in self.engines.items():
            self._refresh(participant, engine)

    def _refresh(self, participant: str, engine: Engine) -> None:
        try:
            for line in refresh(engine):
                log.warning("%s: reference data changed: %s", participant, line)
        except ReferenceError as exc:
            log.error("%s: %s", participant, exc)
        self.licences[participant] = engine.licence  # an engine built later starts from the newest version

    def flush(self, quiet_seconds: float = 0.0) -> BatchOutcome:
        """Judge what the engines' reorder buffers hold, for engines that accepted no event for
        ``quiet_seconds`` (0: all of them; a finite replay or a test at its end).

        The watermark moves only with event time, so a participant that goes quiet would keep its last
        minutes of events unjudged; after a quiet spell (wall time, an operational choice, never a rule's)
        the worker flushes them, and anything older that arrives afterwards is flagged late."""
        outcome = BatchOutcome()
        now = time.monotonic()
        for participant, engine in self.engines.items():
            # An engine restored or rebuilt at a start has no arrival yet: its quiet spell starts now.
            if engine.buffered and now - self._arrived.setdefault(participant, now) >= quiet_seconds:
                outcome.findings.extend(engine.flush())
                self._take_failures(participant, engine, outcome)
        if outcome.findings:
            letters = outcome.dead_letters
            outcome.new_findings = self._durable(self.store.write_findings, outcome.findings, "findings", letters)
            self.metrics.count_findings(outcome.new_findings)
            fresh_letters = self.retry.run(lambda: self.store.write_dead_letters(letters), "dead letters")
            for letter in fresh_letters:
                self.metrics.dead_letters.labels(letter.kind).inc()
        return outcome

    def _take_failures(self, participant: str, engine: Engine, outcome: BatchOutcome) -> None:
        """Events whose checking raised (contained by the engine as invalid_event findings) go to the
        dead letters too, under the source and line they arrived with."""
        for error in engine.take_failures():
            letter = DeadLetter(error.source, participant, error.field or "", error.reason, error.raw, UNPROCESSABLE)
            outcome.dead_letters.append(letter)

    def process_batch(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        with self.metrics.batch_seconds.time():
            return self._process_batch(messages)

    def _process_batch(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        self.refresh_reference_data()
        outcome = BatchOutcome()
        # Each record with its origin for the engine (``topic/partition``, the message's offset, the line),
        # taken from its message once rather than parsed back out of every record's source.
        records: list[tuple[EventRecord, Origin]] = []
        invalid: list[tuple[LineError, InboundMessage]] = []
        partitions: set[str] = set()
        last_offsets = outcome.last_offsets
        for message in messages:
            if message.offset > last_offsets.get(message.partition, -1):
                last_offsets[message.partition] = message.offset
            where = f"{message.topic}/{message.partition}"
            partitions.add(where)
            offset = message.offset
            for item in _decoded(message):
                if isinstance(item, LineError):
                    invalid.append((item, message))
                else:
                    records.append((item, (where, offset, item.raw)))
        outcome.lines = len(records) + len(invalid)
        records = judging_order(records, _event_of)  # a later copy of an id after its first
        accepted = outcome.accepted = self._run_engines(records, outcome)
        for error, message in invalid:
            self._invalid(error, message, outcome)
        # Store first, count after: only rows new to the store are counted, so replays never double.
        letters = outcome.dead_letters
        self._write_events(accepted, letters, partitions)
        outcome.new_findings = self._durable(self.store.write_findings, outcome.findings, "findings", letters)
        fresh_letters = self.retry.run(lambda: self.store.write_dead_letters(letters), "dead letters")
        self._observe(accepted, outcome, fresh_letters)
        return outcome

    def _durable(
        self, write: Callable[[list[T]], list[T]], items: list[T], what: str, letters: list[DeadLetter]
    ) -> list[T]:
        """``write(items)`` retried through outages. If ClickHouse refuses the rows themselves, each row is
        written alone and any it still refuses becomes an ``unstorable`` dead letter with the reason, so one
        value the store cannot hold neither stalls the partition nor takes the other rows with it."""
        try:
            return self.retry.run(lambda: write(items), what, raise_data_errors=True)
        except StoreError as exc:
            if not exc.data_error:
                raise
            log.warning("the store refused a batch of %s (%s); writing them one by one", what, exc)
        fresh: list[T] = []
        for item in items:
            try:
                fresh.extend(self.retry.run(partial(write, [item]), what, raise_data_errors=True))
            except StoreError as exc:
                if not exc.data_error:
                    raise
                letters.append(_unstorable(item, str(exc)))
        return fresh

    def _write_events(self, accepted: list[EventRecord], letters: list[DeadLetter], partitions: set[str]) -> None:
        """Events new to the engine are new to the store too, except those replayed after a restart.

        A partition's stored events are a prefix of its offsets (batches are stored in order), so once a
        partition's first batch after start holds no stored event, none of its later ones can: only until
        then is the store asked which events it has. ``partitions``: every ``topic/partition`` of the batch
        (once all are caught up, no record's partition needs to be looked at)."""
        if partitions <= self._caught_up:
            if accepted:
                self._durable(partial(self.store.write_events, check=False), accepted, "events", letters)
            return
        caught_up = set(self._caught_up)
        replaying = [r for r in accepted if self._partition(r) not in caught_up]
        rest = [r for r in accepted if self._partition(r) in caught_up]
        if replaying and not self._settled:
            # Once a start (and after a takeover): a killed predecessor's insert may still run on the server.
            self._settled = True
            if not self.store.wait_for_running_inserts(INSERTS_SETTLE_SECONDS):
                log.warning("inserts of another client still running after %.0f s", INSERTS_SETTLE_SECONDS)
        if replaying:
            fresh = self._durable(self.store.write_events, replaying, "events", letters)
            stored = {id(r) for r in fresh}
            for record in replaying:
                if id(record) in stored:
                    if self._partition(record) not in self._caught_up:
                        log.info(
                            "%s caught up at %s: %d of %d replayed events were stored already",
                            self._partition(record),
                            record.source,
                            len(replaying) - len(fresh),
                            len(replaying),
                        )
                    self._caught_up.add(self._partition(record))
        if rest:
            unchecked = partial(self.store.write_events, check=False)
            self._durable(unchecked, rest, "events", letters)

    def reassigned(self, topic: str, partition: int) -> None:
        """A partition new to this worker (again): another worker may have stored its events meanwhile, so
        its first batches are checked against the store again (_write_events)."""
        self._caught_up.discard(f"{topic}/{partition}")
        self._settled = False  # its previous owner may have been killed mid-insert

    @staticmethod
    def _partition(record: EventRecord) -> str:
        return record.source.rsplit("/", 1)[0]

    def _run_engines(self, records: list[tuple[EventRecord, Origin]], outcome: BatchOutcome) -> list[EventRecord]:
        accepted: list[EventRecord] = []
        # Per event only what must be: the engine lookup, the origin, the duplicate check. Arrival times are
        # taken once per batch (the quiet-spell flush works in seconds).
        arrived: set[str] = set()
        duplicates: dict[str, int] = {}
        licences = self.licences
        engines = self.engines
        for record, origin in records:
            event = record.event
            participant = event.participant
            engine = engines.get(participant)
            if engine is not None:  # the common case: the participant's own engine, already made
                targets = [engine]
            elif participant in licences:
                targets = [self.engine(participant)]
            elif event.type == "price":
                # A reference price published under a market feed's name is market-wide: every monitored
                # participant on this partition is offered it, and each engine uses it only if its licence
                # names the feed in reference_prices.publishers, as the self-check does.
                targets = [self.engine(p) for p in licences]
            else:
                reason = f"no licence loaded for participant {participant!r}"
                letter = DeadLetter(record.source, participant, "participant", reason, record.raw, UNLICENSED)
                outcome.dead_letters.append(letter)
                continue
            new = False
            for engine in targets:
                if self._offer(engine, event, origin, outcome):
                    new = True
                    arrived.add(engine.licence.participant)
            if new:
                accepted.append(record)
                outcome.events += 1
            else:
                outcome.duplicates += 1
                duplicates[participant] = duplicates.get(participant, 0) + 1
        for participant, count in duplicates.items():  # once a batch, as _observe counts events
            self.metrics.duplicates.labels(participant).inc(count)
        now = time.monotonic()
        for participant in arrived:
            self._arrived[participant] = now
        return accepted

    def _offer(self, engine: Engine, event: Event, origin: Origin, outcome: BatchOutcome) -> bool:
        """One engine judges the event; whether it was new to that engine (not a re-delivered duplicate)."""
        stats = engine.stats
        before = stats.duplicates
        found = engine.process(event, origin)
        if found:
            outcome.findings.extend(found)
        if engine.failures:
            # Contained by the engine when its reorder buffer released the event (maybe this one, maybe an
            # earlier arrival): dead-lettered whole with the reason, kind unprocessable.
            self._take_failures(engine.licence.participant, engine, outcome)
        return stats.duplicates == before

    def _invalid(self, item: LineError, message: InboundMessage, outcome: BatchOutcome) -> None:
        """A dead letter always; an invalid_event finding for the participant it names (or its key names).
        One whose participant cannot be read at all is the only licence's when one is loaded (as ``check``
        reports every bad line of a file); with several it cannot be attributed to any of them: it is counted
        in ``sandboxwatch_unattributed_invalid_events_total`` instead (docs/events.md)."""
        letter = line_dead_letter(item, message)
        outcome.dead_letters.append(letter)
        error = item.error
        participant = error.participant or key_participant(message)
        if participant is None and len(self.licences) == 1:
            participant = next(iter(self.licences))
        if participant in self.licences:
            outcome.findings.append(self.engine(participant).invalid(error))
        else:
            self._unattributed[letter.letter_id] = "unlicensed" if participant else "no_participant"

    def _observe(self, accepted: list[EventRecord], outcome: BatchOutcome, letters: list[DeadLetter]) -> None:
        metrics = self.metrics
        metrics.count_findings(outcome.new_findings)
        # Event time and processing time are separate metrics: a future-dated event (an out-of-term trade in
        # 2028) is monitored and counted, but must not pin the "latest event" years ahead of the feed.
        now = time.time()
        # Counted per (participant, type) and set per participant once a batch, not once an event: the
        # metrics' label lookups and locks were a tenth of the monitor's time. Counted and compared by C
        # loops (Counter, max over a filter), no Python frame per event.
        events = list(map(_EVENT_OF_RECORD, accepted))
        counts = Counter(zip(map(_PARTICIPANT_OF, events), map(_TYPE_OF, events), strict=True))
        # Event times compared as they are (a converted number per event was the loop's biggest cost).
        not_future = datetime.fromtimestamp(now, UTC).__ge__
        latest: dict[str, datetime] = {}
        participants = {participant for participant, _ in counts}
        if len(participants) == 1:
            newest = max(filter(not_future, map(_TS_OF, events)), default=None)
            if newest is not None:
                latest[next(iter(participants))] = newest
        else:
            for event in events:
                ts = event.ts
                if not_future(ts):
                    participant = event.participant
                    newest = latest.get(participant)
                    if newest is None or ts > newest:
                        latest[participant] = ts
        for (participant, event_type), count in counts.items():
            metrics.events.labels(participant, event_type).inc(count)
        for participant in participants:
            metrics.last_processed.labels(participant).set(now)
        for participant, newest in latest.items():
            metrics.last_event.labels(participant).set(newest.timestamp())
        unattributed, self._unattributed = self._unattributed, {}
        for letter in letters:
            metrics.dead_letters.labels(letter.kind).inc()
            why = unattributed.get(letter.letter_id)
            if why is not None:
                metrics.unattributed_invalid.labels(why).inc()
        for participant, engine in self.engines.items():
            try:
                metrics.set_utilisation(participant, engine.utilisation())
            except Exception:  # a gauge must never stop the partition: the findings are already stored
                log.warning("utilisation of %s could not be computed", participant, exc_info=True)


def _event_of(item: tuple[EventRecord, Origin]) -> Event:
    return item[0].event


def _where(source: str) -> tuple[str, int]:
    """``topic/partition/offset`` (or ``topic/partition/offset:line`` inside a batch) -> (``topic/partition``,
    offset): the message's offset stands in for a line number."""
    head, _, tail = source.rpartition("/")
    offset = tail.partition(":")[0]
    return (head, int(offset)) if offset.isdigit() else (source, 0)


def _decoded(message: InboundMessage) -> list[EventRecord | LineError]:
    """``decode_all`` already turns bad input into errors; this is the backstop for a decoder bug, so that
    one message can never stop the partition."""
    try:
        return decode_all(message)
    except Exception as exc:  # isolation is the point: contain whatever one message's bytes provoke
        log.warning("message %s could not be decoded", message.source, exc_info=True)
        raw = (message.value or b"").decode("utf-8", errors="replace")
        error = EventError(
            f"{message.topic}/{message.partition}",
            message.offset,
            None,
            f"could not be decoded ({type(exc).__name__}: {exc or 'no detail'})"[:500],
            raw[:500],
            partition=message.partition,
        )
        return [LineError(error, message.source, raw)]


def _unstorable(item: object, reason: str) -> DeadLetter:
    """A row ClickHouse refuses, kept whole as a dead letter (the events topic or the findings topic still has
    it): an event as the text it arrived as, a finding as its JSON."""
    why = f"the store refused the row: {reason}"[:500]
    if isinstance(item, EventRecord):
        return DeadLetter(item.source, item.event.participant, "", why, item.raw, UNSTORABLE)
    if isinstance(item, Finding):
        return DeadLetter(f"finding/{item.finding_id}", item.participant, "", why, finding_json(item), UNSTORABLE)
    return DeadLetter("store", "", "", why, repr(item)[:2000], UNSTORABLE)
