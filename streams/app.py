"""The faust application: consume events, run the monitor, keep engine state in a changelogged table.

Offsets are committed by this agent, right after it snapshots engine state (faust flushes the producer,
so the snapshot is durable, before it commits), and never by faust's timer. A restarted worker restores
the snapshot from the changelog and resumes after it: events it sees again are skipped by the engine's
event-id memory, and their effects were already stored once. If the committed offset is ever ahead of
the snapshot (a stop between commit and snapshot), the agent seeks back to the snapshot's offset.

The agent never dies quietly: bad content is contained by the monitor and store outages are waited out
there, so anything that still escapes a batch is a bug; it is recorded in ``failed`` and ``on_failure``
is called, and the process exits non-zero for its supervisor to restart it (a live process with a dead
agent would look healthy while monitoring nothing)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.store.records import finding_json
from sandboxwatch.streams.engine_snapshots import Manifest, licence_digest, manifest_key, plan, restore
from sandboxwatch.streams.fetch_wait import transport_with_fetch_wait
from sandboxwatch.streams.inbound import InboundMessage, key_participant
from sandboxwatch.streams.inbound_buffer import TakeBudget
from sandboxwatch.streams.inbound_buffer import install as install_byte_bound
from sandboxwatch.streams.kafka_security import KafkaSecurity
from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES, MAX_OUTPUT_MESSAGE_BYTES
from sandboxwatch.streams.monitor import BatchOutcome, Monitor
from sandboxwatch.streams.partitioning import home_partition
from sandboxwatch.streams.snapshot_fork import PendingDump, SnapshotChildError, start_dump
from sandboxwatch.streams.topics import STATE_TABLE
from sandboxwatch.streams.worker_settings import WorkerSettings

log = logging.getLogger(__name__)

_FAR = 10**9
# A snapshot pauses processing for as long as it takes to pickle the engine, which grows with its state:
# while busy, wait at least this many times that long between snapshots (at most ~5% of the time).
SNAPSHOT_COST_FACTOR = 20


@dataclass(frozen=True, slots=True)
class _BegunSnapshot:
    started: float
    rebalances: int
    # participant, offsets the snapshot covers, licence fingerprint, the child pickling its engine
    dumps: list[tuple[str, dict[int, int], str, PendingDump]]
    # partition -> last offset processed when the children were forked: what the commit covers
    covered: dict[int, int]


def event_chunks(messages: list[InboundMessage], events: int) -> list[list[InboundMessage]]:
    """The taken messages in runs of about ``events`` event lines: batch_size counts messages for faust, and
    a take of batch messages (up to 1,000 events each) must not become one monitor batch of millions."""
    chunks: list[list[InboundMessage]] = [[]]
    size = 0
    for message in messages:
        if size >= events:
            chunks.append([])
            size = 0
        chunks[-1].append(message)
        size += (message.value or b"").count(b"\n") + 1
    return chunks


class StreamWorker:
    """Owns the faust app and the monitor; ``on_batch`` lets the embedded runner show progress."""

    def __init__(self, settings: WorkerSettings, monitor: Monitor) -> None:
        self.settings = settings
        self.monitor = monitor
        self.on_batch: Callable[[BatchOutcome], None] | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.failed: BaseException | None = None
        self.running = False
        self.processed = 0
        self._manifests: dict[str, Manifest] = {}
        self._restored: set[str] = set()
        self._checked_partitions: set[int] = set()
        self._rewind: dict[int, int] = {}
        self._last_snapshot = time.monotonic()
        self._snapshot_cost = 0.0
        # The snapshot being finished off the agent's path (see _consume), and rebalances seen: a snapshot
        # begun before one is dropped, never written over what the new owner restores.
        self._snapshotting: asyncio.Future[None] | None = None
        self._rebalances = 0
        self._take_budget = TakeBudget(settings.buffer_bytes)
        self._dirty: dict[str, dict[int, int]] = {}
        self._home: dict[str, int] = {}
        self._processed: dict[int, int] = {}
        self._highwater: dict[int, int] = {}
        self._assigned: frozenset[int] = frozenset()
        # Events partitions owned before the last rebalance, and the new set once one happened: the next
        # batch first hands over the participants whose partitions moved (_reassigned).
        self._owned: frozenset[int] = frozenset()
        self._reassignment: frozenset[int] | None = None
        # The store clients and chdb are blocking: one thread runs them, in order, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandboxwatch-monitor")
        self.app = self._build_app()

    def _build_app(self) -> faust.App:
        s = self.settings
        topics = s.topics
        app = faust.App(
            topics.app_id,
            broker=f"kafka://{s.kafka}",
            broker_credentials=KafkaSecurity.from_env().faust_credentials(),
            store="memory://",
            datadir=str(s.data_dir),
            web_enabled=False,
            web_host="127.0.0.1",
            web_port=s.web_port,
            broker_session_timeout=6,
            broker_heartbeat_interval=2,
            broker_commit_every=_FAR,
            broker_commit_interval=float(_FAR),
            topic_partitions=topics.partitions,
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            # The largest event line the parser accepts, and a dead letter carrying it (streams.message_limits).
            producer_max_request_size=MAX_OUTPUT_MESSAGE_BYTES,
            consumer_max_fetch_size=MAX_EVENT_MESSAGE_BYTES,
            table_standby_replicas=0,
            # Larger fetches and stream buffer: the monitor works in batches, so feed it whole ones.
            stream_buffer_maxsize=4 * s.batch_size,
            broker_max_poll_records=s.batch_size,
            # Messages and snapshots are bytes the monitor decodes itself: faust must not parse them, or a
            # malformed message would be dropped inside faust instead of dead-lettered here.
            key_serializer="raw",
            value_serializer="raw",
        )
        app.transport = transport_with_fetch_wait(app, s.fetch_max_wait)
        install_byte_bound(app, s.buffer_bytes)
        self.events_topic = app.topic(
            topics.events, key_type=bytes, value_type=bytes, partitions=topics.partitions, internal=False
        )
        self.findings_topic = app.topic(topics.findings, key_type=bytes, value_type=bytes)
        self.dead_letter_topic = app.topic(topics.dead_letters, key_type=bytes, value_type=bytes)
        self.table = app.Table(
            STATE_TABLE, default=None, key_type=bytes, value_type=bytes, partitions=topics.partitions
        )
        app.agent(self.events_topic, name="monitor")(self._agent)
        app.on_partitions_assigned.connect(self._on_assigned)
        app.timer(1.0)(self._report_readiness)
        app.timer(1.0)(self._flush_quiet)
        return app

    async def _agent(self, stream: Any) -> None:
        self.running = True
        stream.add_processor(self._take_budget)  # ahead of take_events' own: see streams.inbound_buffer
        try:
            await self._consume(stream)
        except asyncio.CancelledError:
            raise  # a rebalance or a stop: faust restarts or ends the agent itself
        except Exception as exc:
            self._fail(exc)
            raise
        finally:
            self.running = False
            if self._snapshotting is not None:
                self._snapshotting.cancel()  # its child is killed; the last whole snapshot stands

    def _fail(self, exc: BaseException) -> None:
        log.critical("the monitor agent stopped on an error it cannot contain; exiting for a restart", exc_info=exc)
        self.failed = exc
        self.monitor.retry.stopping.set()
        self._report_readiness_now()
        if self.on_failure is not None:
            self.on_failure(exc)

    async def _consume(self, stream: Any) -> None:
        async for events in stream.take_events(self.settings.batch_size, within=self.settings.batch_wait):
            self._take_budget.taken()
            messages = [
                InboundMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                for e in events
            ]
            for chunk in event_chunks(messages, self.settings.batch_size):
                await self._handle(chunk)
            # A snapshot every snapshot_seconds while busy, and soon after the stream goes quiet so that a
            # caught-up worker's committed offset is current; never more often than SNAPSHOT_COST_FACTOR times
            # their own cost, so a steady trickle of small batches does not snapshot every few seconds. The
            # stream pauses only to fork (streams.snapshot_fork); the rest is finished alongside it.
            idle = len(events) < self.settings.batch_size
            since = time.monotonic() - self._last_snapshot
            wanted = self.settings.idle_snapshot_seconds if idle else self.settings.snapshot_seconds
            running = self._snapshotting is not None and not self._snapshotting.done()
            if self._dirty and not running and since >= max(wanted, SNAPSHOT_COST_FACTOR * self._snapshot_cost):
                begun = await self._begin_snapshot()
                self._snapshotting = asyncio.ensure_future(self._finish_snapshot(begun))
                self._snapshotting.add_done_callback(self._snapshot_done)

    async def _handle(self, messages: list[InboundMessage]) -> None:
        loop = asyncio.get_running_loop()
        if self._reassignment is not None:
            owned, self._reassignment = self._reassignment, None
            await loop.run_in_executor(self._executor, self._reassigned, owned)
        messages = await self._after_rewind(messages)
        if not messages:
            return
        await loop.run_in_executor(self._executor, self._restore_participants, messages)
        outcome = await loop.run_in_executor(self._executor, self.monitor.process_batch, messages)
        await self._publish(outcome)
        for partition, offset in outcome.last_offsets.items():
            self._processed[partition] = max(offset, self._processed.get(partition, -1))
        self._mark_dirty(messages)
        self.processed += outcome.lines  # event lines, not messages: a message may carry a batch
        if self.on_batch:
            self.on_batch(outcome)

    # rebalance ----------------------------------------------------------------------------------------
    def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned")
        self._rebalances += 1
        topic = self.settings.topics.events
        self._reassignment = frozenset(tp.partition for tp in assigned or () if tp.topic == topic)

    def _reassigned(self, owned: frozenset[int]) -> None:
        """After a rebalance, a participant whose partition was not already here is taken again as at a
        restart: from the snapshot in the table (recovered for the partitions now assigned) and the
        committed offset, seeking back to the snapshot where needed. An engine held here for a partition
        another worker owned only ever saw market-wide prices, and must never be snapshotted over that
        worker's (``_snapshot``). Participants of partitions kept across the rebalance keep their engines:
        their stream goes on where it was. Runs in the monitor's thread, after any batch still in it."""
        kept = self._owned & owned
        partitions = self.settings.topics.partitions
        for participant in self.monitor.licences:
            if home_partition(participant, partitions) in kept:
                continue
            self.monitor.engines.pop(participant, None)
            self._restored.discard(participant)
            self._manifests.pop(participant, None)
            self._dirty.pop(participant, None)
            self._home.pop(participant, None)
        for partition in owned - kept:
            self._checked_partitions.discard(partition)
            self._rewind.pop(partition, None)
        self._owned = owned

    # restart ------------------------------------------------------------------------------------------
    def _manifest(self, participant: str) -> Manifest | None:
        data = self.table.data.get(manifest_key(participant))
        return Manifest.from_bytes(participant, data) if data else None

    def _restore_participants(self, messages: list[InboundMessage]) -> None:
        """The first time a participant is seen, take its engine from the restored table, if any."""
        for participant in self.monitor.licences:
            if participant in self._restored:
                continue
            self._restored.add(participant)
            manifest = self._manifest(participant)
            restores = self.monitor.metrics.state_restores
            if manifest is None:
                # No snapshot (first start, or a lost changelog): the store still has every event seen.
                count = partial(self.monitor.store.count, "events", participant)
                if self.monitor.retry.run(count, "count events"):
                    self.monitor.rebuild(participant)
                    restores.labels(participant, "rebuilt").inc()
                else:
                    restores.labels(participant, "fresh").inc()
                continue
            engine = restore(manifest, self.table.data.get)
            if engine is None:
                log.error("snapshot of %s is incomplete; rebuilding its state from the store", participant)
                self.monitor.rebuild(participant)
                restores.labels(participant, "rebuilt").inc()
            elif licence_digest(engine) != licence_digest(Engine(self.monitor.licences[participant])):
                log.warning("licence of %s changed since the snapshot; replaying its stored events", participant)
                self.monitor.rebuild(participant)
                restores.labels(participant, "rebuilt").inc()
            else:
                self.monitor.engines[participant] = engine
                restores.labels(participant, "snapshot").inc()
                log.info("restored %s from snapshot generation %d", participant, manifest.generation)
            self._manifests[participant] = manifest

    async def _after_rewind(self, messages: list[InboundMessage]) -> list[InboundMessage]:
        """Drop messages past a gap after seeking back to the oldest snapshot covering their partition."""
        kept = []
        for message in messages:
            p = message.partition
            if p not in self._checked_partitions:
                self._checked_partitions.add(p)
                covered = [m.offsets[p] for m in self._all_manifests() if p in m.offsets]
                resume = min(covered) + 1 if covered else None
                if resume is not None and message.offset > resume:
                    log.warning(
                        "partition %d: resuming at %d, seeking back to snapshot offset %d",
                        p,
                        message.offset,
                        resume,
                    )
                    await self.app.consumer.seek(self._tp(p), resume)
                    self._rewind[p] = resume
            target = self._rewind.get(p)
            if target is not None:
                if message.offset > target:
                    continue
                del self._rewind[p]
            kept.append(message)
        return kept

    def _owned_partitions(self) -> set[int]:
        topic = self.settings.topics.events
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def _all_manifests(self) -> list[Manifest]:
        return [m for m in (self._manifest(p) for p in self.monitor.licences) if m is not None]

    def _tp(self, partition: int) -> Any:
        from faust.types import TP

        return TP(self.settings.topics.events, partition)

    # effects ------------------------------------------------------------------------------------------
    async def _publish(self, outcome: BatchOutcome) -> None:
        """All of a batch's findings go out, re-sent ones included: consumers dedupe on finding_id."""
        for finding in outcome.findings:
            await self.findings_topic.send(key=finding.participant.encode(), value=finding_json(finding).encode())
        for letter in outcome.dead_letters:
            await self.dead_letter_topic.send(
                key=letter.participant.encode(), value=json.dumps(letter.to_dict()).encode()
            )

    def _mark_dirty(self, messages: list[InboundMessage]) -> None:
        for message in messages:
            owner = key_participant(message)
            if owner in self.monitor.licences:
                self._home.setdefault(owner, message.partition)
            for participant in self.monitor.engines:
                seen = self._dirty.setdefault(participant, {})
                seen[message.partition] = max(message.offset, seen.get(message.partition, -1))

    async def _snapshot(self) -> None:
        """Write each changed participant's engine to the table, then commit what it covers."""
        if self._snapshotting is not None and not self._snapshotting.done():
            await asyncio.shield(self._snapshotting)  # one at a time: each builds on the last manifest
        await self._finish_snapshot(await self._begin_snapshot())

    async def _begin_snapshot(self) -> _BegunSnapshot:
        """Fork a child per changed participant to pickle its engine as it is now, between batches (the
        agent is not in one, so the dirty offsets are exactly what the state covers)."""
        started = self._last_snapshot = time.monotonic()
        dirty, self._dirty = self._dirty, {}
        owned = self._owned_partitions()
        # Only the worker that owns a participant's own partition snapshots it (it is the one that saw its
        # events); the others hold an engine for it only to pass it market-wide prices.
        chosen = [
            (participant, offsets, engine)
            for participant, offsets in dirty.items()
            if (engine := self.monitor.engines.get(participant)) is not None and self._home.get(participant) in owned
        ]

        def fork() -> list[tuple[str, dict[int, int], str, PendingDump]]:
            return [(p, offsets, licence_digest(e), start_dump(e)) for p, offsets, e in chosen]

        dumps = await asyncio.get_running_loop().run_in_executor(self._executor, fork)
        covered = {p: o for p, o in self._processed.items() if p in owned}
        return _BegunSnapshot(started, self._rebalances, dumps, covered)

    async def _finish_snapshot(self, begun: _BegunSnapshot) -> None:
        loop = asyncio.get_running_loop()
        try:
            for index, (participant, offsets, licence, pending) in enumerate(begun.dumps):
                try:
                    blob = await loop.run_in_executor(None, pending.result)
                except SnapshotChildError:
                    log.exception("snapshot of %s: the child failed; pickling in place", participant)
                    blob = await loop.run_in_executor(self._executor, pending.in_place)
                if self._rebalances != begun.rebalances:
                    log.info("a rebalance happened during the snapshot; it is dropped, the next one is taken anew")
                    for _, _, _, rest in begun.dumps[index + 1 :]:
                        rest.cancel()
                    for kept, seen in ((p, o) for p, o, _, _ in begun.dumps if p in self.monitor.engines):
                        marks = self._dirty.setdefault(kept, {})
                        for part, offset in seen.items():
                            marks[part] = max(offset, marks.get(part, -1))
                    return
                previous = self._manifests.get(participant)
                manifest, writes = plan(None, participant, previous, offsets, blob=blob, licence=licence)
                # The snapshot lives on the partition of the participant's own events, so whichever worker is
                # assigned that partition recovers it.
                partition = self._home.get(participant, min(offsets))
                for key, value in writes:
                    if value is None:
                        self.table.data.pop(key, None)
                    else:
                        self.table.data[key] = value
                    self.table.send_changelog(partition, key, value)
                self._manifests[participant] = manifest
        except BaseException:
            for _, _, _, pending in begun.dumps:
                pending.cancel()
            raise
        # Exactly what the snapshot covers, not what the agent processed since the fork (faust's commit()
        # would commit that too): the producer is flushed first, so the snapshot is durable when it commits.
        if begun.covered:
            offsets = {self._tp(p): o + 1 for p, o in begun.covered.items()}
            await self.app.consumer._commit_offsets(offsets)  # type: ignore[attr-defined]  # faust commit()'s own step
        self._snapshot_cost = time.monotonic() - begun.started

    def _snapshot_done(self, task: asyncio.Future[None]) -> None:
        """A snapshot that failed is the agent failing: the worker exits for a restart, as before."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        assert exc is not None
        self._fail(exc)

    async def _flush_quiet(self) -> None:
        """Judge the buffered events of participants that have been quiet for idle_flush_seconds."""
        try:
            await self.flush(self.settings.idle_flush_seconds)
        except Exception:  # a timer tick must never stop the worker; the next tick tries again
            log.exception("flushing quiet participants failed")

    async def flush(self, quiet_seconds: float = 0.0) -> BatchOutcome:
        """Judge what the engines' reorder buffers hold (see Monitor.flush); 0 at the end of a finite input."""
        if not any(engine.buffered for engine in self.monitor.engines.values()):
            return BatchOutcome()
        loop = asyncio.get_running_loop()
        outcome = await loop.run_in_executor(self._executor, self.monitor.flush, quiet_seconds)
        if outcome.findings or outcome.dead_letters:
            await self._publish(outcome)
        for participant in {f.participant for f in outcome.findings}:
            if participant in self._home:
                self._dirty.setdefault(participant, {})
        if self.on_batch and outcome.findings:
            self.on_batch(outcome)
        return outcome

    # health -----------------------------------------------------------------------------------------
    def processed_offsets(self) -> dict[int, int]:
        """Partition -> last offset processed and stored, for the partitions this worker owns now (read by
        the lag thread: a copy). A partition taken over by another worker is left out, so its lag comes from
        the group's committed offset instead of a position this worker no longer moves."""
        assigned = self._assigned
        return {p: offset for p, offset in list(self._processed.items()) if p in assigned}

    def liveness(self) -> tuple[bool, str]:
        if self.failed is not None:
            return False, f"agent failed: {type(self.failed).__name__}: {self.failed}"
        return True, "live"

    def readiness(self) -> tuple[bool, str]:
        live, reason = self.liveness()
        if not live:
            return False, reason
        if not self.running:
            return False, "agent not running (starting, rebalancing or stopped)"
        if not self.monitor.metrics.store_ok:
            return False, "store not writable: writes are being retried"
        return True, "ready"

    def highwaters(self) -> dict[int, int]:
        """Partition -> high watermark the fetcher last saw (read by the lag thread: a copy)."""
        return dict(self._highwater)

    def _report_readiness_now(self) -> None:
        self.monitor.metrics.ready.set(1 if self.readiness()[0] else 0)

    async def _report_readiness(self) -> None:
        """Each second: readiness, and the fetcher's high watermarks for the lag thread."""
        self._report_readiness_now()
        try:
            consumer = self.app.consumer
            assigned = [tp for tp in consumer.assignment() if tp.topic == self.settings.topics.events]
            self._assigned = frozenset(tp.partition for tp in assigned)
            for tp in assigned:
                high = consumer.highwater(tp)
                if high is not None:
                    self._highwater[tp.partition] = max(high, self._highwater.get(tp.partition, 0))
        except Exception:  # a metrics tick must never stop the worker
            log.exception("high watermarks could not be read")

    def close(self) -> None:
        self.monitor.retry.stopping.set()
        self._executor.shutdown(wait=True)
