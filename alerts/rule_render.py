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

from alerts.metrics import PREFIX
from alerts.runbooks import RUNBOOKS
from rules_engine.licence import Licence
from rules_engine.rule_spec import RuleSpec
from rules_engine.rules import RULE_KINDS

FINDINGS = f"{PREFIX}_findings_total"
UTILISATION = f"{PREFIX}_limit_utilisation_ratio"
WINDOW = "10m"
UTILISATION_WARNING = 0.8


@dataclass(frozen=True, slots=True)
class PipelineThresholds:
    no_events_minutes: int = 15
    lag_messages: int = 10_000
    lag_minutes: int = 10


def alert_name(rule_id: str, suffix: str = "") -> str:
    """``tx-cap`` -> ``SandboxwatchTxCap``: alert names must be valid metric names."""
    words = re.split(r"[^A-Za-z0-9]+", rule_id)
    return "Sandboxwatch" + "".join(w[:1].upper() + w[1:] for w in words if w) + suffix


def _selector(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def finding_alert(rule: RuleSpec, window: str = WINDOW) -> dict[str, Any]:
    labels = {"participant": rule.participant, "licence": rule.licence_id, "rule": rule.id}
    series = FINDINGS + _selector(labels)
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
            "runbook": RUNBOOKS[rule.kind],
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
    for kind in ("invalid_event", "valuation_unavailable"):
        pseudo = RuleSpec(
            kind, kind, "warning", "canonical events contract", None, licence.header.id, licence.header.participant
        )
        rules.append(finding_alert(pseudo))
    return {"groups": [{"name": f"sandboxwatch-{licence.header.id}", "rules": rules}]}


def pipeline_rules(t: PipelineThresholds = PipelineThresholds()) -> dict[str, Any]:
    """Health of the monitor itself: a silent monitor must page, or it reads as a compliant market."""
    team = {"team": "operations"}
    return {
        "groups": [
            {
                "name": "sandboxwatch-pipeline",
                "rules": [
                    {
                        "alert": "SandboxwatchWorkerDown",
                        "expr": 'up{job="sandboxwatch"} == 0',
                        "for": "2m",
                        "labels": {"severity": "critical", **team},
                        "annotations": {
                            "summary": "A sandboxwatch stream worker is not being scraped",
                            "runbook": "Check the worker process and its logs; until it is back, "
                            "breaches are not detected.",
                        },
                    },
                    {
                        "alert": "SandboxwatchNoEvents",
                        "expr": f"sum by (participant) (increase({PREFIX}_events_total[{t.no_events_minutes}m])) == 0",
                        "for": f"{t.no_events_minutes}m",
                        "labels": {"severity": "warning", **team},
                        "annotations": {
                            "summary": "No events from {{ $labels.participant }} for "
                            f"{t.no_events_minutes} minutes",
                            "runbook": "Check the participant's ingest connector and the events topic; "
                            "a silent feed hides breaches.",
                        },
                    },
                    {
                        "alert": "SandboxwatchConsumerLag",
                        "expr": f"max by (topic, partition) ({PREFIX}_consumer_lag_messages) > {t.lag_messages}",
                        "for": f"{t.lag_minutes}m",
                        "labels": {"severity": "warning", **team},
                        "annotations": {
                            "summary": "Partition {{ $labels.partition }} is {{ $value }} messages behind",
                            "runbook": "Add workers (up to the partition count) or look for a slow store.",
                        },
                    },
                    {
                        "alert": "SandboxwatchDeadLettersRising",
                        "expr": f"sum by (reason) (increase({PREFIX}_dead_letters_total[10m])) > 0",
                        "labels": {"severity": "warning", **team},
                        "annotations": {
                            "summary": "{{ $value }} messages dead-lettered ({{ $labels.reason }}) in 10 minutes",
                            "runbook": "Read the dead_letters table for the reasons and contact the feed's owner.",
                        },
                    },
                ],
            }
        ]
    }


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
