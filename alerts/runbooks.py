"""Runbooks of the pipeline-health alerts: what operations does when the monitor itself is at fault.

A rule kind's runbook lives in its own module (``RuleKind.runbook``) and a built-in finding's in
rules_engine/builtin_findings.py; tests/test_alerts.py fails for a kind without one."""

from __future__ import annotations

# The monitor's own health: what operations does when the pipeline, not a participant, is at fault.
PIPELINE_RUNBOOKS: dict[str, str] = {
    "SandboxwatchWorkerDown": "Check the worker process and its logs; until it is back, breaches are not detected.",
    "SandboxwatchNoEvents": "Check the participant's ingest connector and the events topic; a silent feed hides "
    "breaches.",
    "SandboxwatchConsumerLag": "Add workers (up to the partition count) or look for a slow store.",
    "SandboxwatchDeadLettersRising": "Read the dead_letters table for the reasons and contact the feed's owner.",
    "SandboxwatchPartitionStalled": "Events wait on a partition the worker no longer moves: read the worker log "
    "(store retries, an agent error), check /ready on the worker and restart it if it does not recover; "
    "until then the partition's participants are unmonitored.",
    "SandboxwatchStoreUnwritable": "ClickHouse refuses or cannot be reached: a busy worker is holding its batch "
    "and retrying (nothing is committed, nothing lost); an idle one found it with its store probe (no answer "
    "within 5 s, or the database is gone) and will find the next events unstorable. Read /ready and the worker "
    "log for the reason, bring ClickHouse back; the worker resumes by itself.",
    "SandboxwatchWorkerNotReady": "The worker is up but not monitoring (agent stopped, store unwritable or "
    "rebalancing): read /ready on the worker for the reason and its log; restart it if the agent failed.",
    "SandboxwatchGroupJoinStuck": "The worker's consumer-group join does not complete, so it has no partitions "
    "and monitors nothing: read /ready and the worker log (JoinGroup/SyncGroup); check that every live worker "
    "has its own --worker-id and that a killed worker's partitions were released (deploy/OPERATIONS.md, "
    '"Worker ids"); restarting the worker under its previous --worker-id takes them back.',
    "SandboxwatchBrokerUnreachable": "The worker cannot read offsets from Kafka, so lag is unknown and no events "
    "arrive: check the brokers and the network; the worker reconnects by itself.",
    "SandboxwatchStateRebuilt": "A worker found a participant's snapshot behind the offset its stream resumed at "
    "(behind_commit) or missing a part (incomplete), and rebuilt the participant's state from the events in "
    "ClickHouse. Read the worker log: the ERROR line names the participant, partition and offsets, and the line "
    "'partition N resumes at offset M (committed: C)' before it tells the two causes apart. M = C: an offset was "
    "committed that no confirmed snapshot covered (check that no other client commits in the worker's consumer "
    "group and that the engine-state changelog topic is compacted, not deleted by retention); nothing is lost. "
    "M > C: the consumer skipped offsets C to M-1 after a rebalance and their events were not monitored; restart "
    "the worker, which resumes at the committed offset (faust does not commit past a hole of two or more "
    "messages), and check that the store then holds those events. Either way report it with the log.",
    "SandboxwatchWorkerIdShared": "A second worker process claimed the --worker-id of a live one (a copied "
    "command line, a supervisor starting a replacement before the old one stopped, or the holder paused or cut "
    "off from the store for longer than the lease's 15 s so that a newcomer took the id over). One of the two "
    "stopped with exit 2 and its log names the other's host and pid. A newcomer refused at its start consumed "
    "nothing; after a takeover both consumed for a moment, which the store's idempotent writes absorb. Find "
    "what started the second process and give every live worker its own id (deploy/OPERATIONS.md, "
    '"Worker ids"); if the holder was paused or lost the store, look at why.',
    "SandboxwatchCommitsStalled": "A worker holds consumed messages that no broker-confirmed snapshot has covered "
    "for minutes, so it commits nothing: a snapshot child stuck or slow (the worker gives one up after 600 s and "
    "pickles in place), or the broker not confirming the engine-state changelog writes. Nothing is lost while it "
    "runs, but a restart replays everything since the last commit. Read the worker log (snapshot child, changelog "
    "send errors) and sandboxwatch_snapshot_child_failures_total; check the brokers; restart the worker if it "
    "persists.",
    "SandboxwatchOffsetGap": "A worker's stream delivered a message past the next offset it expected on an events "
    "partition (messages skipped inside the consumer, e.g. around a rebalance) and the worker sought back to "
    "re-read them; the engine skips what it had already seen, so nothing should be lost. Read the worker log: the "
    "ERROR line 'offset gap on events partition N: expected E, got G' names the hole. Check the store holds the "
    "events of offsets E to G-1 of that partition, and report it with the log (a stream that skips messages is a "
    "bug in the consumer). If it repeats without end, the seek back is not honoured: restart the worker.",
}
