"""The faust application: consume events, run the monitor, keep engine state in a changelogged table.

An offset may be committed only once a durable snapshot covers its message: each consumed message is held
(an extra reference, so faust's own ack does not make it committable), and released only after the engine
snapshot written after it is confirmed by the broker, together with every finding and dead letter sent
for it. faust's own commits (its timer, a rebalance, a stop) therefore only ever commit what a snapshot
covers, and ours follows each snapshot. ``ProducerBuffer.flush`` is not such a confirmation: it returns
once no message was sent for 0.1 s, with messages still queued (a snapshot lost to a kill -9 under load
while its commit went through: the restarted worker's engine missed the events in between). The engines
are pickled by a child forked between batches (streams.snapshot_fork): the dirty offsets and held messages
taken at the fork are what its snapshot covers, and the writes, the broker's confirmation and the commit
follow alongside the stream, which pauses only for the fork.

A restarted worker, or one taking partitions over, restores the snapshot from the changelog and resumes
at the committed offset, never past the snapshot: events it sees again are skipped by the engine's
event-id memory, and their effects were already stored once. An orderly stop (``stop``) snapshots what
it processed before leaving, so the next owner replays nothing. Should a snapshot ever be found behind
the committed offset (a changelog lost), the participant is rebuilt from the store, which holds every
event committed, instead of seeking the stream back; every rebuild is counted by reason
(``sandboxwatch_snapshot_rebuilds_total``) and the two that mean a broken contract raise an alert.
faust's own hand-over once made the stream skip messages (streams.inbound_buffer, ``clear``), which
looked like such a snapshot. A hole from any cause is caught before that check: a message past the next
offset expected on its partition is dropped and the partition sought back (streams.offset_gaps, counted).

The agent never dies quietly: bad content is contained by the monitor and store outages are waited out
there, so anything that still escapes a batch is a bug; it is recorded in ``failed`` and ``on_failure``
is called, and the process exits non-zero for its supervisor to restart it (a live process with a dead
agent would look healthy while monitoring nothing)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.store.records import finding_json
from sandboxwatch.streams.engine_snapshots import Manifest, licence_digest, manifest_key, plan, restore
from sandboxwatch.streams.fetch_wait import transport_with_fetch_wait
from sandboxwatch.streams.group_membership import GroupMembership
from sandboxwatch.streams.group_rejoin import keep_member_id_on_refused_commit
from sandboxwatch.streams.inbound import InboundMessage, key_participant
from sandboxwatch.streams.inbound_buffer import TakeBudget
from sandboxwatch.streams.inbound_buffer import install as install_byte_bound
from sandboxwatch.streams.kafka_security import KafkaSecurity
from sandboxwatch.streams.message_limits import MAX_EVENT_MESSAGE_BYTES, MAX_OUTPUT_MESSAGE_BYTES
from sandboxwatch.streams.monitor import BatchOutcome, Monitor
from sandboxwatch.streams.offset_gaps import OffsetGaps
from sandboxwatch.streams.partitioning import home_partition
from sandboxwatch.streams.snapshot_fork import ForkedDumps, SnapshotChildError, can_fork
from sandboxwatch.streams.static_membership import leave_group_on_stop_as_static_member
from sandboxwatch.streams.topics import STATE_TABLE
from sandboxwatch.streams.worker_lease import WorkerIdTaken
from sandboxwatch.streams.worker_settings import WorkerSettings

log = logging.getLogger(__name__)

_FAR = 10**9
# The lag reader asks every 2 s; this long without an answer is an outage, not a slow reply (as the
# SandboxwatchBrokerUnreachable alert's threshold).
BROKER_SILENCE_SECONDS = 60.0
# A snapshot costs the time to pickle the engine, which grows with its state (in a forked child while busy,
# a core of a small machine): while busy, wait at least this many times that long between snapshots.
SNAPSHOT_COST_FACTOR = 20
# How long a seek back over an offset gap may re-deliver nothing before it is sought again (streams.offset_gaps).
GAP_RESEEK_SECONDS = 5.0
# How long an orderly stop waits for the batch in hand to finish before its last snapshot.
STOP_SNAPSHOT_SECONDS = 15.0


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


@dataclass(frozen=True, slots=True)
class _ForkedSnapshot:
    """A snapshot begun under ``_busy`` (see ``_fork_snapshot``): what it covers, and the child pickling it."""

    rebalances: int
    dirty: dict[str, dict[int, int]]
    held: list[Any]
    # participant -> licence fingerprint of its engine, in the order of the child's blobs
    licences: dict[str, str]
    dumps: ForkedDumps | None  # None when no engine changed (only held messages to commit)
    fatal: bool  # see StreamWorker._begin_snapshot


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
        # Participants restored from a snapshot whose home partition has not delivered a message yet: its
        # first offset tells whether the snapshot covers everything committed before it (_verify_snapshots).
        self._unverified: dict[str, Manifest] = {}
        # Consumed messages (faust's) whose offsets become committable once a confirmed snapshot covers
        # them, and the sends (changelog, findings, dead letters) the next commit waits for.
        self._held: list[Any] = []
        self._unconfirmed: list[Awaitable[Any]] = []
        # Held across a take's processing and its snapshot, by the quiet-spell flush and by the last snapshot
        # of an orderly stop, so that none of them sees an engine half-way through a batch.
        self._busy = asyncio.Lock()
        self._stopping = False
        self._take_budget = TakeBudget(settings.buffer_bytes)
        self._last_snapshot = time.monotonic()
        self._last_take = time.monotonic()
        self._snapshot_cost = 0.0
        self._dirty: dict[str, dict[int, int]] = {}
        # The forked snapshot being finished alongside the stream (one at a time: each builds on the last
        # manifest), rebalances seen (one drops a snapshot begun before it), and whether the next snapshot
        # is made in place because a child failed.
        self._forked: asyncio.Task[None] | None = None
        self._forked_held = 0  # messages the forked snapshot in flight covers (sandboxwatch_uncommitted_messages)
        self._forked_dumps: ForkedDumps | None = None
        self._rebalances = 0
        self._in_place_next = not can_fork()
        self._home: dict[str, int] = {}
        self._processed: dict[int, int] = {}
        self._highwater: dict[int, int] = {}
        self._assigned: frozenset[int] = frozenset()
        # Next expected offset per owned events partition: a message past it is a hole (streams.offset_gaps).
        self._gaps = OffsetGaps(monitor.metrics.offset_gaps)
        # Events partitions owned before the last rebalance, and (new set, partitions held throughout) once
        # one happened: the next batch first hands over the participants whose partitions moved (_reassigned).
        self._owned: frozenset[int] = frozenset()
        self._reassignment: tuple[frozenset[int], frozenset[int]] | None = None
        # The store clients and chdb are blocking: one thread runs them, in order, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandboxwatch-monitor")
        self.membership = GroupMembership()
        # Seconds since the broker last answered (set by the runner to its lag reader's clock): a worker
        # that cannot reach Kafka is not monitoring even while its agent and group membership look fine.
        self.broker_silence: Callable[[], float] | None = None
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
            consumer_group_instance_id=s.worker_id,
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
            # A rebalance must not wait for every consumed message to be acked (held ones are acked only
            # after the next snapshot) nor commit on its own: what it would commit is only what was acked.
            stream_wait_empty=False,
            # Larger fetches and stream buffer: the monitor works in batches, so feed it whole ones.
            stream_buffer_maxsize=4 * s.batch_size,
            broker_max_poll_records=s.batch_size,
            # Messages and snapshots are bytes the monitor decodes itself: faust must not parse them, or a
            # malformed message would be dropped inside faust instead of dead-lettered here.
            key_serializer="raw",
            value_serializer="raw",
        )
        app.transport = transport_with_fetch_wait(app, s.fetch_max_wait)
        keep_member_id_on_refused_commit()
        leave_group_on_stop_as_static_member()
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
        self.membership.connect(app)
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

    def _fail(self, exc: BaseException) -> None:
        log.critical("the monitor agent stopped on an error it cannot contain; exiting for a restart", exc_info=exc)
        self._stop_failed(exc)

    def yield_worker_id(self, exc: WorkerIdTaken) -> None:
        """A live process ranked before this one holds its --worker-id, or took it over while this one's lease
        had lapsed (streams/worker_lease.py): stop, exit 2. Not a crash: the operator's configuration, said in
        one line. Call on the event loop's thread."""
        log.error("%s", exc)
        self._stop_failed(exc)

    def _stop_failed(self, exc: BaseException) -> None:
        self.failed = exc
        self.monitor.retry.stopping.set()
        self._report_readiness_now()
        if self.on_failure is not None:
            self.on_failure(exc)

    async def _consume(self, stream: Any) -> None:
        async for events in stream.take_events(self.settings.batch_size, within=self.settings.batch_wait):
            self._take_budget.taken()
            # Held from the start: faust acks the take when the next one is asked for, and that ack alone
            # must not make an offset committable (see the module docstring).
            for event in events:
                event.message.incref()
            async with self._busy:
                if self._stopping or self.failed is not None:
                    # Taken after the last snapshot of an orderly stop, or after a forked snapshot failed (the
                    # worker is exiting): left to the next owner.
                    continue
                await self._take(events)

    async def _take(self, events: list[Any]) -> None:
        if self._reassignment is not None:
            (owned, kept), self._reassignment = self._reassignment, None
            self._owned = owned  # here, on the loop, where _on_assigned reads it
            await asyncio.get_running_loop().run_in_executor(self._executor, self._reassigned, owned, kept)
            # A partition that moved away is the new owner's to commit (from its snapshot): never ack here what
            # this worker consumed of it before the rebalance.
            self._held = [m for m in self._held if m.partition in owned]
            self._gaps.owned(owned, kept)
        events = await self._without_gaps(events)
        self._held.extend(e.message for e in events)
        messages = [
            InboundMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
            for e in events
        ]
        for chunk in event_chunks(messages, self.settings.batch_size) if messages else []:
            await self._handle(chunk)
        # A snapshot every snapshot_seconds while busy, and soon after the stream goes quiet so that a
        # caught-up worker's committed offset is current; never more often than SNAPSHOT_COST_FACTOR times
        # their own cost, so a steady trickle of small batches does not snapshot every few seconds. The
        # stream pauses only to fork the child that pickles the engines (streams.snapshot_fork).
        idle = len(events) < self.settings.batch_size
        since = time.monotonic() - self._last_snapshot
        wanted = self.settings.idle_snapshot_seconds if idle else self.settings.snapshot_seconds
        due = (self._dirty or self._held) and since >= max(wanted, SNAPSHOT_COST_FACTOR * self._snapshot_cost)
        if due and not self._forking():
            await self._begin_snapshot(fatal=True)
        self._last_take = time.monotonic()

    async def _handle(self, messages: list[InboundMessage]) -> None:
        loop = asyncio.get_running_loop()
        firsts = self._first_offsets(messages)
        await loop.run_in_executor(self._executor, self._restore_participants, messages)
        if firsts:
            await loop.run_in_executor(self._executor, self._verify_snapshots, firsts)
        outcome = await loop.run_in_executor(self._executor, self.monitor.process_batch, messages)
        await self._publish(outcome)
        for partition, offset in outcome.last_offsets.items():
            self._processed[partition] = max(offset, self._processed.get(partition, -1))
        self._mark_dirty(messages)
        self.processed += outcome.lines  # event lines, not messages: a message may carry a batch
        if self.on_batch:
            self.on_batch(outcome)

    async def _without_gaps(self, events: list[Any]) -> list[Any]:
        """The taken events minus those past a hole in their partition's offsets, which is sought back so that
        the skipped messages come again (streams.offset_gaps). Dropped messages are never acked (their incref
        is kept): only their re-delivered copies, once processed and snapshotted, may make an offset
        committable."""
        kept: list[Any] = []
        seeks: dict[Any, int] = {}
        for event in events:
            message = event.message
            if not self._gaps.known(message.partition):
                self._gaps.resume(message.partition, self._committed(message.partition))
            verdict = self._gaps.check(message.partition, message.offset)
            if verdict.process:
                kept.append(event)
            if verdict.seek_to is not None:
                seeks[message.tp] = verdict.seek_to
        for tp, offset in seeks.items():
            await self.app.consumer.seek(tp, offset)
        return kept

    # rebalance ----------------------------------------------------------------------------------------
    def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned")
        self._rebalances += 1
        topic = self.settings.topics.events
        owned = frozenset(tp.partition for tp in assigned or () if tp.topic == topic)
        # Kept means held through every rebalance since the last batch: a partition that went away and came
        # back in between was another worker's meanwhile, and its participants' engines here are stale.
        kept = (self._owned if self._reassignment is None else self._reassignment[1]) & owned
        self._reassignment = (owned, kept)
        log.info("events partitions assigned: %s", sorted(owned))

    def _reassigned(self, owned: frozenset[int], kept: frozenset[int]) -> None:
        """After a rebalance, a participant whose partition was not already here is taken again as at a
        restart: from the snapshot in the table (recovered for the partitions now assigned) and the
        committed offset. An engine held here for a partition
        another worker owned only ever saw market-wide prices, and must never be snapshotted over that
        worker's (``_snapshot``). Participants of partitions kept across the rebalance keep their engines:
        their stream goes on where it was. Runs in the monitor's thread, after any batch still in it."""
        partitions = self.settings.topics.partitions
        for participant in self.monitor.licences:
            if home_partition(participant, partitions) in kept:
                continue
            self.monitor.engines.pop(participant, None)
            self._restored.discard(participant)
            self._manifests.pop(participant, None)
            self._dirty.pop(participant, None)
            self._home.pop(participant, None)
            self._unverified.pop(participant, None)
        for partition in owned - kept:
            self._checked_partitions.discard(partition)
            self.monitor.reassigned(self.settings.topics.events, partition)

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
                    self._rebuild(participant, "no_snapshot")
                else:
                    restores.labels(participant, "fresh").inc()
                continue
            engine = restore(manifest, self.table.data.get)
            if engine is None:
                log.error("snapshot of %s is incomplete; rebuilding its state from the store", participant)
                self._rebuild(participant, "incomplete")
            elif licence_digest(engine) != licence_digest(Engine(self.monitor.licences[participant])):
                log.warning("licence of %s changed since the snapshot; replaying its stored events", participant)
                self._rebuild(participant, "licence_changed")
            else:
                self.monitor.engines[participant] = engine
                self._unverified[participant] = manifest
                restores.labels(participant, "snapshot").inc()
                log.info(
                    "restored %s from snapshot generation %d (offsets %s)",
                    participant,
                    manifest.generation,
                    manifest.offsets,
                )
            self._manifests[participant] = manifest

    def _first_offsets(self, messages: list[InboundMessage]) -> dict[int, int]:
        """The offset each partition resumed at, for partitions delivering their first message since they
        were assigned: the committed offset (where faust seeked), which a snapshot restored for a participant
        of that partition must cover."""
        firsts: dict[int, int] = {}
        for message in messages:
            p = message.partition
            if p not in self._checked_partitions:
                self._checked_partitions.add(p)
                firsts[p] = message.offset
                log.info("partition %d resumes at offset %d (committed: %s)", p, message.offset, self._committed(p))
        return firsts

    def _committed(self, partition: int) -> int | None:
        """The committed offset faust sought the events partition to (None before the first commit)."""
        offsets: dict[Any, int | None] = getattr(self.app.consumer, "_committed_offset", {})
        topic = self.settings.topics.events
        return next((o for tp, o in offsets.items() if (tp.topic, tp.partition) == (topic, partition)), None)

    def _verify_snapshots(self, firsts: dict[int, int]) -> None:
        """A restored snapshot must have seen every message of its participant's partition before the one the
        stream resumed at; if it did not (its changelog was lost, or a commit outran it), the events in
        between would never reach the engine. The store holds every event whose offset was committed, so the
        participant is rebuilt from it instead (the stream is never sought back: a seek on a running faust
        consumer is not honoured reliably). Runs in the monitor's thread, before the batch."""
        partitions = self.settings.topics.partitions
        for participant, manifest in list(self._unverified.items()):
            p = home_partition(participant, partitions)
            if p not in firsts:
                continue
            del self._unverified[participant]
            covered = manifest.offsets.get(p, -1)
            if firsts[p] > covered + 1:
                log.error(
                    "snapshot of %s (generation %d) covers partition %d up to offset %d but the stream resumed at "
                    "%d; rebuilding its state from the store",
                    participant,
                    manifest.generation,
                    p,
                    covered,
                    firsts[p],
                )
                self._rebuild(participant, "behind_commit")

    def _rebuild(self, participant: str, reason: str) -> None:
        """The participant's engine from its stored events, counted: a rebuild for ``behind_commit`` or
        ``incomplete`` means the snapshot contract broke, and must page (SandboxwatchStateRebuilt), not only
        log."""
        self.monitor.rebuild(participant)
        self.monitor.metrics.state_restores.labels(participant, "rebuilt").inc()
        self.monitor.metrics.snapshot_rebuilds.labels(reason).inc()

    def _owned_partitions(self) -> set[int]:
        topic = self.settings.topics.events
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    # effects ------------------------------------------------------------------------------------------
    async def _publish(self, outcome: BatchOutcome) -> None:
        """All of a batch's findings go out, re-sent ones included: consumers dedupe on finding_id. Their
        delivery is confirmed before the offsets that produced them are committed (_snapshot)."""
        sent = self._unconfirmed
        for finding in outcome.findings:
            key, value = finding.participant.encode(), finding_json(finding).encode()
            sent.append(await self.findings_topic.send(key=key, value=value))
        for letter in outcome.dead_letters:
            key, value = letter.participant.encode(), json.dumps(letter.to_dict()).encode()
            sent.append(await self.dead_letter_topic.send(key=key, value=value))

    def _mark_dirty(self, messages: list[InboundMessage]) -> None:
        for message in messages:
            owner = key_participant(message)
            if owner in self.monitor.licences:
                self._home.setdefault(owner, message.partition)
            for participant in self.monitor.engines:
                seen = self._dirty.setdefault(participant, {})
                seen[message.partition] = max(message.offset, seen.get(message.partition, -1))

    async def _snapshot(self) -> None:
        """Write each changed participant's engine to the table, wait for the broker to confirm it, and only
        then make the messages it covers committable and commit them. Called with ``_busy`` held, between
        batches; pickles in place, the stream waiting (an orderly stop, a quiet spell, a child that failed),
        after any forked snapshot still in flight (each builds on the last manifest)."""
        await self._settle_forked()
        if self.failed is not None:
            return  # an engine may be half-way through the batch that failed: never snapshot or commit it
        started = time.monotonic()
        dirty, self._dirty = self._dirty, {}
        held, self._held = self._held, []
        try:
            await self._write_snapshot(dirty, held)
        except BaseException:
            # Nothing was acked: keep it all for the next try (a message never acked would leave a gap that
            # stops faust committing the partition at all).
            self._held[:0] = held
            for participant, offsets in dirty.items():
                seen = self._dirty.setdefault(participant, {})
                for partition, offset in offsets.items():
                    seen[partition] = max(offset, seen.get(partition, -1))
            raise
        self._last_snapshot = time.monotonic()
        self._snapshot_cost = self._last_snapshot - started
        self._in_place_next = not can_fork()
        log.debug("snapshot in place of %s took %.2f s", sorted(dirty), self._snapshot_cost)

    async def _write_snapshot(self, dirty: dict[str, dict[int, int]], held: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        owned = self._owned_partitions()
        for participant, offsets in dirty.items():
            engine = self.monitor.engines.get(participant)
            # Only the worker that owns a participant's own partition snapshots it (it is the one that saw
            # its events); the others hold an engine for it only to pass it market-wide prices.
            if engine is None or self._home.get(participant) not in owned:
                continue
            previous = self._manifests.get(participant)
            manifest, writes = await loop.run_in_executor(self._executor, plan, engine, participant, previous, offsets)
            self._send_snapshot(participant, manifest, writes)
        await self._commit_confirmed(dirty, held)

    def _send_snapshot(self, participant: str, manifest: Manifest, writes: list[tuple[bytes, bytes | None]]) -> None:
        # The snapshot lives on the partition of the participant's own events, so whichever worker is
        # assigned that partition recovers it.
        partition = self._home[participant]  # set: only a participant with a home partition gets here
        for key, value in writes:
            if value is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = value
            self._unconfirmed.append(self.table.send_changelog(partition, key, value))
        self._manifests[participant] = manifest

    async def _commit_confirmed(self, dirty: dict[str, dict[int, int]], held: list[Any]) -> None:
        sent, self._unconfirmed = self._unconfirmed, []
        # A failed send raises here, before anything is acked: the agent fails and the process exits for
        # its supervisor, and the next worker resumes from the last confirmed snapshot.
        await asyncio.gather(*sent)
        consumer = self.app.consumer
        assigned = consumer.assignment()
        for message in held:
            # Acked outright (faust's own ack of the take may still be to come): the snapshot covers it. A
            # partition revoked meanwhile is committed by its new owner, from its own snapshot.
            if message.tp in assigned:
                consumer.ack(message)
        await consumer.commit()
        self.monitor.metrics.last_commit.set_to_current_time()
        log.debug("snapshot of %s confirmed; %d messages made committable", sorted(dirty), len(held))

    # forked snapshots (streams.snapshot_fork) ---------------------------------------------------------
    def _forking(self) -> bool:
        return self._forked is not None and not self._forked.done()

    async def _settle_forked(self) -> None:
        """Wait for the forked snapshot in flight, if any; it never takes ``_busy``, so this may hold it."""
        if self._forked is not None and not self._forked.done():
            await asyncio.wait([self._forked])  # its failure is the agent's (_forked_done), not the caller's

    async def _begin_snapshot(self, *, fatal: bool) -> None:
        """With ``_busy`` held, between batches: a forked snapshot, or one in place after a child failed (or
        where ``fork`` does not exist). ``fatal``: a failure to write it fails the agent (a take's snapshot,
        as in place) rather than being logged for the next quiet tick to try again."""
        if self._in_place_next:
            await self._snapshot()
        else:
            await self._fork_snapshot(fatal)

    async def _fork_snapshot(self, fatal: bool) -> None:
        """Begin a snapshot: a child pickles the changed engines as they are now, and the dirty offsets and
        held messages taken with them are exactly what that state covers. ``_finish_forked`` writes it,
        waits for the broker's confirmation and commits, alongside the stream."""
        if self.failed is not None:
            return
        started = time.monotonic()
        owned = self._owned_partitions()
        # Only the worker that owns a participant's own partition snapshots it (see _write_snapshot).
        chosen = {
            participant: engine
            for participant in self._dirty
            if (engine := self.monitor.engines.get(participant)) is not None and self._home.get(participant) in owned
        }
        try:
            dumps = ForkedDumps(list(chosen.values())) if chosen else None
        except OSError:
            log.exception("no snapshot child could be forked; pickling in place, the stream waiting")
            self.monitor.metrics.snapshot_child_failures.inc()
            await self._snapshot()
            return
        dirty, self._dirty = self._dirty, {}
        held, self._held = self._held, []
        licences = {participant: licence_digest(engine) for participant, engine in chosen.items()}
        begun = _ForkedSnapshot(self._rebalances, dirty, held, licences, dumps, fatal)
        forked = time.monotonic()
        log.debug("snapshot of %s forked in %.1f ms", sorted(chosen), (forked - started) * 1000)
        self._last_snapshot = forked
        self._forked_dumps = dumps
        self._forked_held = len(held)
        self._forked = asyncio.ensure_future(self._finish_forked(begun, forked - started))
        self._forked.add_done_callback(partial(self._forked_done, fatal))

    async def _finish_forked(self, begun: _ForkedSnapshot, pause: float) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            blobs = await loop.run_in_executor(None, begun.dumps.result) if begun.dumps else []
            previous = {participant: self._manifests.get(participant) for participant in begun.licences}
            plans = await loop.run_in_executor(None, _plan_blobs, begun, previous, blobs)
            if self._rebalances != begun.rebalances:
                # The new owner of a partition that moved restores what the changelog held at the rebalance:
                # never written over, and this worker's engines for the partitions it kept go on dirty.
                log.info("a rebalance happened during the snapshot of %s; dropped", sorted(begun.licences))
                self._requeue(begun)
                return
            for participant, (manifest, writes) in plans.items():  # no await in between: no rebalance either
                self._send_snapshot(participant, manifest, writes)
            await self._commit_confirmed(begun.dirty, begun.held)
        except SnapshotChildError:
            log.error("snapshot of %s: the child failed; pickling in place", sorted(begun.licences), exc_info=True)
            self.monitor.metrics.snapshot_child_failures.inc()
            self._requeue(begun)
            self._in_place_next = True
            self._last_snapshot = 0.0  # due at the next take, or the next quiet tick
            return
        except BaseException:
            if begun.dumps is not None:
                begun.dumps.cancel()
            self._requeue(begun)
            raise
        # Its cost, for the spacing of snapshots: the stream's pause and the child's CPU time (on a small
        # machine the child's core is the monitor's), not the waits for the broker.
        self._snapshot_cost = pause + (begun.dumps.cpu_seconds if begun.dumps else 0.0)
        log.debug(
            "forked snapshot of %s confirmed and committed after %.2f s; cost %.2f s",
            sorted(begun.licences),
            time.monotonic() - started,
            self._snapshot_cost,
        )

    def _requeue(self, begun: _ForkedSnapshot) -> None:
        """A snapshot not committed: its messages are held again and its participants dirty again, for the
        next one (a message never acked would leave a gap that stops faust committing its partition)."""
        held = begun.held
        if self._rebalances != begun.rebalances and self._reassignment is None:
            # _take applied the rebalance already: what moved away is the new owner's to commit.
            held = [message for message in held if message.partition in self._owned]
        self._held[:0] = held
        for participant, offsets in begun.dirty.items():
            if participant in self.monitor.engines:
                seen = self._dirty.setdefault(participant, {})
                for partition, offset in offsets.items():
                    seen[partition] = max(offset, seen.get(partition, -1))

    def _forked_done(self, fatal: bool, task: asyncio.Future[None]) -> None:
        """A forked snapshot that failed (not its child: a send) is the agent failing, as in place, or for a
        quiet spell's the next tick's to try again (its messages are held and participants dirty again)."""
        if task.cancelled() or (exc := task.exception()) is None:
            return
        if fatal:
            self._fail(exc)
        else:
            log.error("a quiet spell's snapshot failed; the next tick tries again", exc_info=exc)

    def _cancel_forked(self) -> None:
        """Drop the forked snapshot in flight, if any: its child is killed, the last confirmed one stands."""
        if self._forked_dumps is not None:
            self._forked_dumps.cancel()  # also when the loop is gone: the task alone would leave the child
        if self._forked is not None and not self._forked.done() and not self._forked.get_loop().is_closed():
            self._forked.cancel()

    async def _flush_quiet(self) -> None:
        """Judge the buffered events of participants that have been quiet for idle_flush_seconds; once the
        stream itself has been quiet for idle_snapshot_seconds, snapshot and commit what was processed (no
        further take would: a caught-up worker's committed offset must be current)."""
        if self._stopping:
            return
        try:
            await self.flush(self.settings.idle_flush_seconds)
            quiet = self.settings.idle_snapshot_seconds
            now = time.monotonic()
            due = (self._dirty or self._held) and min(now - self._last_take, now - self._last_snapshot) >= quiet
            if due and not self._forking():
                async with self._busy:
                    if not self._stopping and not self._forking():
                        await self._begin_snapshot(fatal=False)
        except Exception:  # a timer tick must never stop the worker; the next tick tries again
            log.exception("flushing quiet participants failed")

    async def flush(self, quiet_seconds: float = 0.0) -> BatchOutcome:
        """Judge what the engines' reorder buffers hold (see Monitor.flush); 0 at the end of a finite input."""
        if not any(engine.buffered for engine in self.monitor.engines.values()):
            return BatchOutcome()
        async with self._busy:
            return await self._flush(quiet_seconds)

    async def _flush(self, quiet_seconds: float) -> BatchOutcome:
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
        if not self.membership.is_joined:
            return False, self.membership.reason()
        silence = self.broker_silence() if self.broker_silence is not None else 0.0
        if silence > BROKER_SILENCE_SECONDS:
            return False, f"broker unreachable: no end offsets read for {silence:.0f} s"
        if not self.monitor.metrics.store_ok:
            return False, f"store not writable: {self.monitor.metrics.store_problem}"
        return True, "ready"

    def highwaters(self) -> dict[int, int]:
        """Partition -> high watermark the fetcher last saw (read by the lag thread: a copy)."""
        return dict(self._highwater)

    def _report_readiness_now(self) -> None:
        self.monitor.metrics.ready.set(1 if self.readiness()[0] else 0)
        self.monitor.metrics.uncommitted.set(len(self._held) + (self._forked_held if self._forking() else 0))
        self.monitor.metrics.group_joined.set(1 if self.membership.is_joined else 0)

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
        await self._seek_overdue_gaps()

    async def _seek_overdue_gaps(self) -> None:
        """A seek back that has re-delivered nothing for a while is sought again (OffsetGaps.overdue)."""
        try:
            due = self._gaps.overdue(GAP_RESEEK_SECONDS)
            events = self.settings.topics.events
            for tp in self.app.consumer.assignment() if due else ():
                offset = due.get(tp.partition) if tp.topic == events else None
                if offset is not None:
                    log.warning("nothing re-delivered on events partition %d; seek to %d again", tp.partition, offset)
                    await self.app.consumer.seek(tp, offset)
        except Exception:  # a metrics tick must never stop the worker
            log.exception("an overdue seek back failed; the next tick tries again")

    async def stop(self, grace: float = STOP_SNAPSHOT_SECONDS) -> None:
        """An orderly stop: after the batch in hand, snapshot what was processed and commit it, then stop
        faust (leaving the group). The worker taking the partitions over resumes exactly after this one,
        from a snapshot that covers its committed offset. A failed agent skips the snapshot: its last batch
        may be half done, so the next worker resumes from the last confirmed snapshot instead. So does a
        batch still waiting out a store outage after ``grace`` seconds: nothing of it was committed."""
        self._stopping = True
        log.info("stopping: a last snapshot of what was processed, then leaving the group")
        try:
            await asyncio.wait_for(self._last_snapshot_before_stop(), grace)
        except TimeoutError:
            log.warning("no snapshot before stopping (a batch in hand after %.0f s); the next owner replays it", grace)
        except Exception:  # the broker gone at the stop: nothing was acked, the next owner replays from before
            log.exception("the last snapshot before stopping failed; the next owner replays from the previous one")
        self._cancel_forked()
        await self.app.stop()

    async def _last_snapshot_before_stop(self) -> None:
        async with self._busy:
            await self._settle_forked()
            if self.failed is None and (self._dirty or self._held):
                await self._snapshot()

    def close(self) -> None:
        self._cancel_forked()
        self.monitor.retry.stopping.set()
        self._executor.shutdown(wait=True)


def _plan_blobs(
    begun: _ForkedSnapshot, previous: dict[str, Manifest | None], blobs: list[bytes]
) -> dict[str, tuple[Manifest, list[tuple[bytes, bytes | None]]]]:
    """The writes of a forked snapshot (digests of megabytes: off the event loop)."""
    return {
        participant: plan(
            None, participant, previous[participant], begun.dirty[participant], blob=blob, licence=licence
        )
        for (participant, licence), blob in zip(begun.licences.items(), blobs, strict=True)
    }
