"""The metrics a regulator's Prometheus scrapes from a stream worker.

Findings are counted when they are first stored, not when computed, so a replayed batch after a restart
never counts twice. Every label set a licence can produce is created at 0 up front: ``increase()`` only
sees a breach if the series existed before its first increment."""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sandboxwatch.rules_engine.builtin_findings import BUILTIN_KINDS
from sandboxwatch.rules_engine.events import EVENT_TYPES
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence

PREFIX = "sandboxwatch"
# The findings counter, and the series Prometheus stores it as (a counter is exposed with ``_total``).
FINDINGS_COUNTER = f"{PREFIX}_findings"
FINDINGS_TOTAL = f"{FINDINGS_COUNTER}_total"
DEAD_LETTER_REASONS = ("invalid_event", "unlicensed_participant", "unprocessable", "unstorable")
# Why a worker rebuilt a participant's engine from the store instead of restoring its snapshot. The first two
# mean the snapshot/commit contract broke (a commit outran the snapshot, or the changelog lost part of one);
# no_snapshot is a lost changelog or a worker ended before its first snapshot; licence_changed is a rollout.
SNAPSHOT_REBUILD_REASONS = ("behind_commit", "incomplete", "no_snapshot", "licence_changed")
SNAPSHOT_REBUILDS_TOTAL = f"{PREFIX}_snapshot_rebuilds_total"
# Holes in an events partition's offsets seen by a worker (streams.offset_gaps): ``recovered`` means messages had
# been skipped and were delivered again after a seek back; ``skipped_by_broker`` means there was nothing between.
OFFSET_GAPS_TOTAL = f"{PREFIX}_offset_gaps_total"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.findings = Counter(
            FINDINGS_COUNTER,
            "Findings first recorded, by participant, rule and severity.",
            ["participant", "licence", "rule", "kind", "severity"],
            registry=r,
        )
        self.utilisation = Gauge(
            f"{PREFIX}_limit_utilisation_ratio",
            "Share of a participant-level licence limit in use (1 = at the limit).",
            ["participant", "rule", "limit"],
            registry=r,
        )
        self.events = Counter(
            f"{PREFIX}_events",
            "Events monitored, by participant and type.",
            ["participant", "type"],
            registry=r,
        )
        self.duplicates = Counter(
            f"{PREFIX}_duplicate_events", "Re-delivered event ids ignored.", ["participant"], registry=r
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Messages that could not be monitored, by reason.",
            ["reason"],
            registry=r,
        )
        self.unattributed_invalid = Counter(
            f"{PREFIX}_unattributed_invalid_events",
            "Invalid messages with no invalid_event finding: no readable participant while several licences "
            "are loaded, or a participant no licence covers (each is a dead letter too).",
            ["reason"],
            registry=r,
        )
        self.last_event = Gauge(
            f"{PREFIX}_last_event_timestamp_seconds",
            "Event time of the latest event monitored for a participant, future-dated events left out.",
            ["participant"],
            registry=r,
        )
        self.last_processed = Gauge(
            f"{PREFIX}_last_processed_timestamp_seconds",
            "Processing (wall-clock) time when an event of the participant was last monitored.",
            ["participant"],
            registry=r,
        )
        self.lag = Gauge(
            f"{PREFIX}_consumer_lag_messages",
            "Messages on the partition not yet processed: the broker's end offset minus the processed position.",
            ["topic", "partition"],
            registry=r,
        )
        self.end_offset = Gauge(
            f"{PREFIX}_partition_end_offset",
            "The broker's end offset (high watermark) of the partition, as last read from the broker.",
            ["topic", "partition"],
            registry=r,
        )
        self.position = Gauge(
            f"{PREFIX}_partition_processed_offset",
            "Next offset the monitor will process on the partition (processed and stored up to here).",
            ["topic", "partition"],
            registry=r,
        )
        self.offsets_read = Gauge(
            f"{PREFIX}_broker_offsets_read_timestamp_seconds",
            "When the end offsets were last read from the broker (stale while the broker is unreachable).",
            registry=r,
        )
        self.uncommitted = Gauge(
            f"{PREFIX}_uncommitted_messages",
            "Consumed messages not yet committed: held until a broker-confirmed snapshot covers them (a snapshot "
            "in flight included).",
            registry=r,
        )
        self.last_commit = Gauge(
            f"{PREFIX}_last_commit_timestamp_seconds",
            "When the worker last committed offsets after a confirmed snapshot (its start until the first): with "
            "messages uncommitted, an old value means snapshots are stuck and a restart would replay them all.",
            registry=r,
        )
        self.last_commit.set_to_current_time()
        self.store_writable = Gauge(
            f"{PREFIX}_store_writable",
            "1 while the last store write succeeded (or, with nothing written for 10 s, the store answered its "
            "probe), 0 while writes fail and are being retried or the idle worker's probe gets no answer.",
            registry=r,
        )
        self.store_last_write = Gauge(
            f"{PREFIX}_store_last_write_timestamp_seconds",
            "When a store write last succeeded.",
            registry=r,
        )
        self.store_last_probe = Gauge(
            f"{PREFIX}_store_last_probe_timestamp_seconds",
            "When the store last answered the probe a worker sends after 10 s without a successful write "
            "(store/store_probe.py); a busy worker, whose writes tell, does not probe.",
            registry=r,
        )
        self.store_failures = Counter(
            f"{PREFIX}_store_write_failures",
            "Store writes that failed (each retry counts).",
            registry=r,
        )
        self.ready = Gauge(
            f"{PREFIX}_worker_ready",
            "1 while the stream agent runs and the store is writable; 0 otherwise (see /ready).",
            registry=r,
        )
        self.group_joined = Gauge(
            f"{PREFIX}_group_joined",
            "1 while the worker is in its consumer group (its last join completed with an assignment); 0 while "
            "it is joining (streams/group_membership.py).",
            registry=r,
        )
        self.worker_id_rivals = Gauge(
            f"{PREFIX}_worker_id_rivals",
            "Other live processes claiming this worker's --worker-id at its last lease beat (streams/worker_lease.py);"
            " an older one makes this worker stop, newer ones stop themselves.",
            registry=r,
        )
        self.worker_id_rivals_seen = Counter(
            f"{PREFIX}_worker_id_rivals_seen",
            "Other processes seen claiming this worker's --worker-id while it held it, each counted once: a rival"
            " stops itself within a beat, so the gauge can fall between scrapes; this cannot.",
            registry=r,
        )
        self.lease_renewed = Gauge(
            f"{PREFIX}_worker_lease_renewed_timestamp_seconds",
            "When this worker last renewed its --worker-id lease (only with --worker-id).",
            registry=r,
        )
        self.snapshot_child_failures = Counter(
            f"{PREFIX}_snapshot_child_failures",
            "Engine snapshots whose forked child failed (killed, crashed, timed out, or not forked): each was"
            " made in place instead, pausing the stream.",
            registry=r,
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_seconds",
            "Time to monitor and record one consumed batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.state_restores = Counter(
            f"{PREFIX}_state_restores",
            "Engine state taken over at start: from a snapshot, rebuilt from stored events, or fresh.",
            ["participant", "source"],
            registry=r,
        )
        self.snapshot_rebuilds = Counter(
            SNAPSHOT_REBUILDS_TOTAL.removesuffix("_total"),
            "Participants whose engine state was rebuilt from the stored events instead of restored from its "
            "snapshot, by reason (behind_commit, incomplete: the snapshot contract broke; see OPERATIONS.md).",
            ["reason"],
            registry=r,
        )
        # Label sets per owned partition are created at 0 by the worker when partitions are assigned.
        self.offset_gaps = Counter(
            OFFSET_GAPS_TOTAL.removesuffix("_total"),
            "Gaps in an owned events partition's offsets, by partition and reason (recovered: messages the stream "
            "had skipped, delivered again after a seek back; skipped_by_broker: nothing was in between).",
            ["partition", "reason"],
            registry=r,
        )
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for reason in SNAPSHOT_REBUILD_REASONS:
            self.snapshot_rebuilds.labels(reason)
        for reason in ("no_participant", "unlicensed"):
            self.unattributed_invalid.labels(reason)
        self.store_writable.set(1)
        # The same as store_writable, readable without reaching into the gauge: was the last write (or the
        # idle probe) good? And why not, for /ready.
        self.store_ok = True
        self.store_problem = ""

    # store health (store.write_retry.StoreHealth) -----------------------------------------------------
    def store_written(self) -> None:
        self.store_ok = True
        self.store_writable.set(1)
        self.store_last_write.set(time.time())

    def store_failed(self, error: Exception) -> None:
        self.store_ok = False
        self.store_problem = "writes are being retried"
        self.store_writable.set(0)
        self.store_failures.inc()

    # the idle worker's store probe (store.store_probe.StoreProbe) ------------------------------------
    def store_probed(self) -> None:
        self.store_ok = True
        self.store_writable.set(1)
        self.store_last_probe.set(time.time())

    def store_probe_failed(self, error: Exception) -> None:
        self.store_ok = False
        self.store_problem = f"the store does not answer its probe ({error})"
        self.store_writable.set(0)

    def prepare(self, licences: Iterable[Licence]) -> None:
        """Create each licence's label sets at 0 before the first event."""
        for licence in licences:
            header = licence.header
            participant = header.participant
            rules = [(rule.id, rule.kind, rule.severity) for rule in licence.rules]
            rules += [(kind.name, kind.name, kind.severity) for kind in BUILTIN_KINDS.values() if kind.prepared]
            for rule_id, kind, severity in rules:
                self.findings.labels(participant, header.id, rule_id, kind, severity)
            for event_type in EVENT_TYPES:
                self.events.labels(participant, event_type)
            self.duplicates.labels(participant)

    def count_findings(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            self.findings.labels(f.participant, f.licence, f.rule, f.kind, f.severity).inc()

    def set_utilisation(self, participant: str, used: Iterable[tuple[str, str, Decimal]]) -> None:
        for rule_id, limit, ratio in used:
            self.utilisation.labels(participant, rule_id, limit).set(float(ratio))
