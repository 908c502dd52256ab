"""Prometheus alerting rules generated from a licence, the single source for alerts and runbooks.

Each licence rule gets one alert that fires on a new finding. ``increase()`` alone misses a series whose
first sample is already above 0 (a worker that restarted, a label set not pre-created), so the
expression also fires for a series that is above 0 now and did not exist one window ago."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from sandboxwatch.alerts.metrics import FINDINGS_TOTAL, OFFSET_GAPS_TOTAL, PREFIX, SNAPSHOT_REBUILDS_TOTAL
from sandboxwatch.alerts.runbooks import PIPELINE_RUNBOOKS
from sandboxwatch.rules_engine.builtin_findings import BUILTIN_KINDS
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules import RULE_KINDS

UTILISATION = f"{PREFIX}_limit_utilisation_ratio"
WINDOW = "10m"
# The clause the alerts on built-in findings cite (their findings cite the exact part of the contract).
BUILTIN_ALERT_CLAUSE = "canonical events contract"
UTILISATION_WARNING = 0.8


@dataclass(frozen=True, slots=True)
class PipelineThresholds:
    no_events_minutes: int = 15
    lag_messages: int = 10_000
    lag_minutes: int = 10
    # Stall, store and readiness alerts must fire within 2 minutes of the fault: 1m of evidence, 1m of "for".
    stall_window: str = "1m"
    fault_for: str = "1m"
    broker_stale_seconds: int = 60
    # A snapshot behind its committed offset is a broken contract, not a fault that persists: any in the window.
    rebuild_window: str = "15m"
    # Snapshots come every few seconds while events flow (worker_settings.snapshot_seconds, spaced by their
    # cost; a stuck snapshot child is given up after 600 s): messages uncommitted this long mean they are stuck.
    commit_stale_seconds: int = 300
    # A rival for a worker's id shows for a beat or two (it stops itself): any within this window.
    rival_window: str = "10m"


def alert_name(rule_id: str, suffix: str = "") -> str:
    """``tx-cap`` -> ``SandboxwatchTxCap``: alert names must be valid metric names."""
    words = re.split(r"[^A-Za-z0-9]+", rule_id)
    return "Sandboxwatch" + "".join(w[:1].upper() + w[1:] for w in words if w) + suffix


def runbook(kind: str) -> str:
    """What the desk on duty does when a finding of this kind (a rule kind or a built-in one) fires."""
    builtin = BUILTIN_KINDS.get(kind)
    if builtin is not None and builtin.runbook is not None:
        return builtin.runbook
    return RULE_KINDS[kind].runbook


def _selector(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def finding_alert(rule: RuleSpec, window: str = WINDOW) -> dict[str, Any]:
    labels = {"participant": rule.participant, "licence": rule.licence_id, "rule": rule.id}
    series = FINDINGS_TOTAL + _selector(labels)
    expr = f"(increase({series}[{window}]) > 0)\nor\n({series} > 0 unless {series} offset {window})"
    return {
        "alert": alert_name(rule.id),
        "expr": expr,
        "labels": {
            "severity": rule.severity,
            "participant": rule.participant,
            "licence": rule.licence_id,
            "rule": rule.id,
            "kind": rule.kind,
        },
        "annotations": {
            "summary": f"{rule.participant}: new {rule.kind.replace('_', ' ')} finding ({rule.id})",
            "clause": rule.clause,
            "description": f"{{{{ $value }}}} new finding(s) of licence {rule.licence_id} rule {rule.id} "
            f"({rule.clause}) in the last {window}.",
            "runbook": runbook(rule.kind),
        },
    }


def utilisation_alert(rule: RuleSpec, threshold: float = UTILISATION_WARNING) -> dict[str, Any]:
    labels = {"participant": rule.participant, "rule": rule.id}
    series = UTILISATION + _selector(labels)
    return {
        "alert": alert_name(rule.id, "NearLimit"),
        "expr": f"{series} >= {threshold} and {series} < 1",
        "for": "5m",
        "labels": {"severity": "warning", "participant": rule.participant, "licence": rule.licence_id},
        "annotations": {
            "summary": f"{rule.participant}: {{{{ $labels.limit }}}} of {rule.id} at "
            f"{{{{ $value | humanizePercentage }}}} of the licence limit",
            "clause": rule.clause,
            "description": f"Licence {rule.licence_id} rule {rule.id} is at or above {threshold:.0%} of its "
            "limit; a finding follows when it passes 100%.",
            "runbook": "Tell the participant it is close to a licence limit and ask how it will stay inside it.",
        },
    }


def licence_rules(licence: Licence) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for rule in licence.rules:
        rules.append(finding_alert(rule))
        if RULE_KINDS[rule.kind].utilisation is not None:
            rules.append(utilisation_alert(rule))
    for builtin in BUILTIN_KINDS.values():
        if builtin.runbook is None:
            continue
        kind = builtin.name
        pseudo = RuleSpec(
            kind, kind, builtin.severity, BUILTIN_ALERT_CLAUSE, None, licence.header.id, licence.header.participant
        )
        rules.append(finding_alert(pseudo))
    return {"groups": [{"name": f"sandboxwatch-{licence.header.id}", "rules": rules}]}


def _pipeline_alert(name: str, expr: str, severity: str, summary: str, for_: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "team": "operations"}
    rule["annotations"] = {"summary": summary, "runbook": PIPELINE_RUNBOOKS[name]}
    return rule


def pipeline_rules(t: PipelineThresholds = PipelineThresholds()) -> dict[str, Any]:
    """Health of the monitor itself: a silent monitor must page, or it reads as a compliant market.

    Lag is the broker's end offset minus the processed position, so it grows while a dead or stuck agent
    leaves events waiting; a partition whose position does not move while its lag is above 0 is stalled,
    whatever the cause (an agent error, a store outage being waited out, a broker that stopped serving)."""
    lag = f"{PREFIX}_consumer_lag_messages"
    position = f"{PREFIX}_partition_processed_offset"
    rules = [
        _pipeline_alert(
            "SandboxwatchWorkerDown",
            'up{job="sandboxwatch"} == 0',
            "critical",
            "A sandboxwatch stream worker is not being scraped",
            t.fault_for,
        ),
        _pipeline_alert(
            "SandboxwatchNoEvents",
            f"sum by (participant) (increase({PREFIX}_events_total[{t.no_events_minutes}m])) == 0",
            "warning",
            "No events from {{ $labels.participant }} for " + f"{t.no_events_minutes} minutes",
            f"{t.no_events_minutes}m",
        ),
        _pipeline_alert(
            "SandboxwatchConsumerLag",
            f"max by (topic, partition) ({lag}) > {t.lag_messages}",
            "warning",
            "Partition {{ $labels.partition }} is {{ $value }} messages behind",
            f"{t.lag_minutes}m",
        ),
        _pipeline_alert(
            "SandboxwatchDeadLettersRising",
            f"sum by (reason) (increase({PREFIX}_dead_letters_total[10m])) > 0",
            "warning",
            "{{ $value }} messages dead-lettered ({{ $labels.reason }}) in 10 minutes",
        ),
        _pipeline_alert(
            "SandboxwatchPartitionStalled",
            f"(max by (topic, partition) ({lag}) > 0)\nand on (topic, partition)\n"
            f"(max by (topic, partition) (changes({position}[{t.stall_window}])) == 0)",
            "critical",
            "Partition {{ $labels.partition }} of {{ $labels.topic }} is not moving while events wait",
            t.fault_for,
        ),
        _pipeline_alert(
            "SandboxwatchStoreUnwritable",
            f"{PREFIX}_store_writable == 0",
            "critical",
            "The worker {{ $labels.instance }} cannot write to ClickHouse (writes retried, or no answer to its "
            "idle probe)",
            t.fault_for,
        ),
        _pipeline_alert(
            "SandboxwatchWorkerNotReady",
            f"{PREFIX}_worker_ready == 0",
            "critical",
            "The worker {{ $labels.instance }} is running but not monitoring",
            t.fault_for,
        ),
        _pipeline_alert(
            "SandboxwatchGroupJoinStuck",
            f"{PREFIX}_group_joined == 0",
            "critical",
            "The worker {{ $labels.instance }} cannot complete its consumer-group join and monitors nothing",
            t.fault_for,
        ),
        _pipeline_alert(
            "SandboxwatchBrokerUnreachable",
            f"time() - {PREFIX}_broker_offsets_read_timestamp_seconds > {t.broker_stale_seconds}",
            "critical",
            "The worker {{ $labels.instance }} has not reached Kafka for over " + f"{t.broker_stale_seconds}s",
            t.fault_for,
        ),
        _pipeline_alert(
            "SandboxwatchStateRebuilt",
            f'sum by (instance, reason) (increase({SNAPSHOT_REBUILDS_TOTAL}{{reason=~"behind_commit|incomplete"}}'
            f"[{t.rebuild_window}])) > 0",
            "warning",
            "The worker {{ $labels.instance }} rebuilt engine state from the store: snapshot {{ $labels.reason }}",
        ),
        # Nothing lost yet, but nothing made durable either: a restart would replay everything since.
        _pipeline_alert(
            "SandboxwatchCommitsStalled",
            f"({PREFIX}_uncommitted_messages > 0)\nand on (instance)\n"
            f"(time() - {PREFIX}_last_commit_timestamp_seconds > {t.commit_stale_seconds})",
            "warning",
            "The worker {{ $labels.instance }} has committed no offset for over "
            + f"{t.commit_stale_seconds}s while messages wait for a snapshot",
            t.fault_for,
        ),
        # A hole the stream made and the worker refilled by seeking back: nothing was lost, but the stream
        # skipped messages it was given, which must never happen unnoticed (skipped_by_broker is Kafka's own).
        _pipeline_alert(
            "SandboxwatchOffsetGap",
            f'sum by (instance, partition) (increase({OFFSET_GAPS_TOTAL}{{reason="recovered"}}'
            f"[{t.rebuild_window}])) > 0",
            "warning",
            "The worker {{ $labels.instance }} found skipped offsets on events partition {{ $labels.partition }} "
            "and sought back to re-read them",
        ),
        # Two live processes under one --worker-id: the later stops itself (exit 2, streams/worker_lease.py)
        # within a beat, so the holder counts each one it saw; a window keeps a newcomer that keeps being
        # restarted in view.
        _pipeline_alert(
            "SandboxwatchWorkerIdShared",
            f"sum by (instance) (increase({PREFIX}_worker_id_rivals_seen_total[{t.rival_window}])) > 0",
            "warning",
            "Another live process claimed the --worker-id of the worker {{ $labels.instance }}",
        ),
    ]
    return {"groups": [{"name": "sandboxwatch-pipeline", "rules": rules}]}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(document: dict[str, Any]) -> str:
    header = "# Generated by `sandboxwatch alerts render`; do not edit (a test fails when this is stale).\n"
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def all_alert_names(document: dict[str, Any]) -> Iterator[str]:
    for group in document["groups"]:
        for rule in group["rules"]:
            yield str(rule["alert"])
