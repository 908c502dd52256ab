"""``promtool test rules`` cases for a licence's generated alerts.

Built from the licence, checked by Prometheus's own evaluator: a rule that breaches fires, including a
series whose very first sample is already 1; it resolves once no new finding arrives for a window; a
rule without findings stays quiet; a limit at 85% raises the utilisation warning, one at 50% does not."""

from __future__ import annotations

from typing import Any

from sandboxwatch.alerts.metrics import FINDINGS_TOTAL, OFFSET_GAPS_TOTAL, SNAPSHOT_REBUILDS_TOTAL
from sandboxwatch.alerts.rule_render import UTILISATION, alert_name, finding_alert, utilisation_alert
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules import RULE_KINDS


def _labels(rule: RuleSpec) -> dict[str, str]:
    return {
        "participant": rule.participant,
        "licence": rule.licence_id,
        "rule": rule.id,
        "kind": rule.kind,
        "severity": rule.severity,
    }


def _series(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _expanded(annotations: dict[str, str], value: str, percent: str, labels: dict[str, str]) -> dict[str, str]:
    """The annotations as Prometheus should render them, so the templates are tested too."""
    out = {}
    for key, text in annotations.items():
        text = text.replace("{{ $value | humanizePercentage }}", percent).replace("{{ $value }}", value)
        for name, label in labels.items():
            text = text.replace("{{ $labels.%s }}" % name, label)  # noqa: UP031 - braces are literal here
        out[key] = text
    return out


def _firing(rule: RuleSpec) -> dict[str, Any]:
    notes = _expanded(finding_alert(rule)["annotations"], "1", "", _labels(rule))
    return {"exp_labels": _labels(rule), "exp_annotations": notes}


def licence_tests(licence: Licence, rule_file: str) -> dict[str, Any]:
    rules = list(licence.rules)
    rising, born_high, quiet = rules[0], rules[1], rules[2]
    series = [
        {"series": _series(FINDINGS_TOTAL, _labels(rising)), "values": "0 0 0 1x30"},
        {"series": _series(FINDINGS_TOTAL, _labels(born_high)), "values": "_x3 1x30"},
        {"series": _series(FINDINGS_TOTAL, _labels(quiet)), "values": "0x33"},
    ]
    cases: list[dict[str, Any]] = [
        {"eval_time": "2m", "alertname": alert_name(rising.id), "exp_alerts": []},
        {"eval_time": "5m", "alertname": alert_name(rising.id), "exp_alerts": [_firing(rising)]},
        {"eval_time": "5m", "alertname": alert_name(born_high.id), "exp_alerts": [_firing(born_high)]},
        {"eval_time": "25m", "alertname": alert_name(rising.id), "exp_alerts": []},
        {"eval_time": "25m", "alertname": alert_name(born_high.id), "exp_alerts": []},
        {"eval_time": "5m", "alertname": alert_name(quiet.id), "exp_alerts": []},
    ]
    measured = [r for r in rules if RULE_KINDS[r.kind].utilisation is not None]
    if measured:
        near = measured[0]
        base = {"participant": near.participant, "rule": near.id}
        series.append({"series": _series(UTILISATION, {**base, "limit": "near"}), "values": "0.5 0.5 0.85x30"})
        series.append({"series": _series(UTILISATION, {**base, "limit": "far"}), "values": "0.5x33"})
        expected = {"severity": "warning", "participant": near.participant, "licence": near.licence_id,
                    "rule": near.id, "limit": "near"}  # fmt: skip
        cases.append({"eval_time": "4m", "alertname": alert_name(near.id, "NearLimit"), "exp_alerts": []})
        notes = _expanded(utilisation_alert(near)["annotations"], "0.85", "85%", expected)
        cases.append(
            {
                "eval_time": "10m",
                "alertname": alert_name(near.id, "NearLimit"),
                "exp_alerts": [{"exp_labels": expected, "exp_annotations": notes}],
            }
        )
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": cases}],
    }


def _pipeline_firing(name: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
    from sandboxwatch.alerts.runbooks import PIPELINE_RUNBOOKS

    return {
        "exp_labels": {"severity": labels.pop("severity", "critical"), "team": "operations", **labels},
        "exp_annotations": {"summary": summary, "runbook": PIPELINE_RUNBOOKS[name]},
    }


def pipeline_tests(rule_file: str) -> dict[str, Any]:
    """Cases for the pipeline-health rules: the older ones at a 1m interval, and the fault alerts at the 15s
    scrape interval, each shown to fire within 2 minutes of its fault and to stay quiet while healthy."""
    events = "sandboxwatch.events"
    slow = {
        "interval": "1m",
        "input_series": [
            {"series": 'up{job="sandboxwatch", instance="worker-1:9464"}', "values": "1 1 1 0 0 0 0 0"},
            {"series": 'sandboxwatch_events_total{participant="quiet", type="trade"}', "values": "5x40"},
            {"series": 'sandboxwatch_events_total{participant="busy", type="trade"}', "values": "0+10x40"},
            {"series": f'sandboxwatch_consumer_lag_messages{{topic="{events}", partition="0"}}', "values": "20000x30"},
            {"series": f'sandboxwatch_consumer_lag_messages{{topic="{events}", partition="1"}}', "values": "10x30"},
            {"series": 'sandboxwatch_dead_letters_total{reason="invalid_event"}', "values": "0 0 3 3 3 3 3 3 3 3 3 3"},
            {"series": 'sandboxwatch_dead_letters_total{reason="unprocessable"}', "values": "0x12"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "SandboxwatchWorkerDown", "exp_alerts": []},
            {
                "eval_time": "4m",
                "alertname": "SandboxwatchWorkerDown",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchWorkerDown",
                        {"job": "sandboxwatch", "instance": "worker-1:9464"},
                        "A sandboxwatch stream worker is not being scraped",
                    )
                ],
            },
            {
                "eval_time": "35m",
                "alertname": "SandboxwatchNoEvents",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchNoEvents",
                        {"severity": "warning", "participant": "quiet"},
                        "No events from quiet for 15 minutes",
                    )
                ],
            },
            {
                "eval_time": "12m",
                "alertname": "SandboxwatchConsumerLag",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchConsumerLag",
                        {"severity": "warning", "topic": events, "partition": "0"},
                        "Partition 0 is 20000 messages behind",
                    )
                ],
            },
            {
                "eval_time": "5m",
                "alertname": "SandboxwatchDeadLettersRising",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchDeadLettersRising",
                        {"severity": "warning", "reason": "invalid_event"},
                        "3 messages dead-lettered (invalid_event) in 10 minutes",
                    )
                ],
            },
            {"eval_time": "19m", "alertname": "SandboxwatchDeadLettersRising", "exp_alerts": []},
        ],
    }
    worker = {"job": "sandboxwatch", "instance": "worker-1:9464"}
    w = ",".join(f'{k}="{v}"' for k, v in worker.items())
    idle = 'job="sandboxwatch",instance="worker-2:9464"'
    # 15s samples; the fault starts at 2m (sample 8). Partition 0 stalls with 40 waiting, partition 1 keeps
    # moving with a lag above 0, partition 2 is idle (lag 0, position still): only partition 0 may fire.
    # The store fails from 2m to 5m; readiness drops with it; the broker's offsets stop being read at 2m.
    fault = {
        "interval": "15s",
        "input_series": [
            {
                "series": f'sandboxwatch_consumer_lag_messages{{{w},topic="{events}",partition="0"}}',
                "values": "0x7 40x24",
            },
            {
                "series": f'sandboxwatch_partition_processed_offset{{{w},topic="{events}",partition="0"}}',
                "values": "100+10x7 180x24",
            },
            {"series": f'sandboxwatch_consumer_lag_messages{{{w},topic="{events}",partition="1"}}', "values": "5x32"},
            {
                "series": f'sandboxwatch_partition_processed_offset{{{w},topic="{events}",partition="1"}}',
                "values": "0+10x32",
            },
            {"series": f'sandboxwatch_consumer_lag_messages{{{w},topic="{events}",partition="2"}}', "values": "0x32"},
            {
                "series": f'sandboxwatch_partition_processed_offset{{{w},topic="{events}",partition="2"}}',
                "values": "7x32",
            },
            {"series": f"sandboxwatch_store_writable{{{w}}}", "values": "1x7 0x11 1x13"},
            {"series": f"sandboxwatch_worker_ready{{{w}}}", "values": "1x7 0x11 1x13"},
            # In the group, out for one sample (a rebalance) at 1m, then joining from 2m on and never completing.
            {"series": f"sandboxwatch_group_joined{{{w}}}", "values": "1x3 0 1x3 0x24"},
            # time() in promtool starts at 0: read at 0..105s, then never again.
            {"series": f"sandboxwatch_broker_offsets_read_timestamp_seconds{{{w}}}", "values": "0+15x7 105x24"},
            # At 2m one participant is rebuilt for a snapshot behind its commit; a licence rollout rebuilds three
            # (expected, never an alert); nothing more until 22m, so the alert ends once its window has passed.
            {"series": f'{SNAPSHOT_REBUILDS_TOTAL}{{{w},reason="behind_commit"}}', "values": "0x7 1x80"},
            {"series": f'{SNAPSHOT_REBUILDS_TOTAL}{{{w},reason="licence_changed"}}', "values": "0x7 3x80"},
            {"series": f'{SNAPSHOT_REBUILDS_TOTAL}{{{w},reason="incomplete"}}', "values": "0x88"},
            # At 2m partition 1 had a hole refilled by a seek back (alerts); partition 0 skipped transaction
            # markers (Kafka's own, never an alert).
            {"series": f'{OFFSET_GAPS_TOTAL}{{{w},partition="1",reason="recovered"}}', "values": "0x7 1x80"},
            {"series": f'{OFFSET_GAPS_TOTAL}{{{w},partition="0",reason="skipped_by_broker"}}', "values": "0x7 2x80"},
            {"series": f'{OFFSET_GAPS_TOTAL}{{{w},partition="0",reason="recovered"}}', "values": "0x88"},
            # A second process claims the worker's id at 2m and stops itself within a beat (the gauge shows it
            # in no scrape); the holder counted it.
            {"series": f"sandboxwatch_worker_id_rivals{{{w}}}", "values": "0x88"},
            {"series": f"sandboxwatch_worker_id_rivals_seen_total{{{w}}}", "values": "0x7 1x80"},
            # Commits: worker-1 commits at 0..45s, then holds 50 messages with no commit until 10m15s; worker-2
            # is idle (nothing held) and has not committed since its start: only worker-1 may fire.
            {"series": f"sandboxwatch_uncommitted_messages{{{w}}}", "values": "0x3 50x84"},
            {"series": f"sandboxwatch_last_commit_timestamp_seconds{{{w}}}", "values": "0+15x3 45x37 615+15x40"},
            {"series": f"sandboxwatch_uncommitted_messages{{{idle}}}", "values": "0x88"},
            {"series": f"sandboxwatch_last_commit_timestamp_seconds{{{idle}}}", "values": "0x88"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m45s", "alertname": "SandboxwatchPartitionStalled", "exp_alerts": []},
            {
                "eval_time": "4m",
                "alertname": "SandboxwatchPartitionStalled",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchPartitionStalled",
                        {"topic": events, "partition": "0"},  # per partition, whichever worker owns it
                        f"Partition 0 of {events} is not moving while events wait",
                    )
                ],
            },
            {"eval_time": "1m45s", "alertname": "SandboxwatchStoreUnwritable", "exp_alerts": []},
            {
                "eval_time": "4m",
                "alertname": "SandboxwatchStoreUnwritable",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchStoreUnwritable",
                        dict(worker),
                        "The worker worker-1:9464 cannot write to ClickHouse (writes retried, or no answer to its idle "
                        "probe)",
                    )
                ],
            },
            {"eval_time": "7m", "alertname": "SandboxwatchStoreUnwritable", "exp_alerts": []},
            {
                "eval_time": "4m",
                "alertname": "SandboxwatchWorkerNotReady",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchWorkerNotReady",
                        dict(worker),
                        "The worker worker-1:9464 is running but not monitoring",
                    )
                ],
            },
            {"eval_time": "7m", "alertname": "SandboxwatchWorkerNotReady", "exp_alerts": []},
            {"eval_time": "1m45s", "alertname": "SandboxwatchGroupJoinStuck", "exp_alerts": []},
            {"eval_time": "2m45s", "alertname": "SandboxwatchGroupJoinStuck", "exp_alerts": []},
            {
                "eval_time": "4m",
                "alertname": "SandboxwatchGroupJoinStuck",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchGroupJoinStuck",
                        dict(worker),
                        "The worker worker-1:9464 cannot complete its consumer-group join and monitors nothing",
                    )
                ],
            },
            {"eval_time": "2m", "alertname": "SandboxwatchBrokerUnreachable", "exp_alerts": []},
            {
                "eval_time": "4m",
                "alertname": "SandboxwatchBrokerUnreachable",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchBrokerUnreachable",
                        dict(worker),
                        "The worker worker-1:9464 has not reached Kafka for over 60s",
                    )
                ],
            },
            {"eval_time": "1m45s", "alertname": "SandboxwatchStateRebuilt", "exp_alerts": []},
            {
                "eval_time": "2m15s",
                "alertname": "SandboxwatchStateRebuilt",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchStateRebuilt",
                        {"severity": "warning", "instance": worker["instance"], "reason": "behind_commit"},
                        "The worker worker-1:9464 rebuilt engine state from the store: snapshot behind_commit",
                    )
                ],
            },
            {"eval_time": "20m", "alertname": "SandboxwatchStateRebuilt", "exp_alerts": []},
            {"eval_time": "6m30s", "alertname": "SandboxwatchCommitsStalled", "exp_alerts": []},
            {
                "eval_time": "7m15s",
                "alertname": "SandboxwatchCommitsStalled",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchCommitsStalled",
                        {"severity": "warning", **worker},
                        "The worker worker-1:9464 has committed no offset for over 300s while messages wait for a "
                        "snapshot",
                    )
                ],
            },
            {"eval_time": "11m", "alertname": "SandboxwatchCommitsStalled", "exp_alerts": []},
            {"eval_time": "1m45s", "alertname": "SandboxwatchOffsetGap", "exp_alerts": []},
            {
                "eval_time": "2m15s",
                "alertname": "SandboxwatchOffsetGap",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchOffsetGap",
                        {"severity": "warning", "instance": worker["instance"], "partition": "1"},
                        "The worker worker-1:9464 found skipped offsets on events partition 1 and sought back to "
                        "re-read them",
                    )
                ],
            },
            {"eval_time": "20m", "alertname": "SandboxwatchOffsetGap", "exp_alerts": []},
            {"eval_time": "1m45s", "alertname": "SandboxwatchWorkerIdShared", "exp_alerts": []},
            *(
                {
                    "eval_time": at,
                    "alertname": "SandboxwatchWorkerIdShared",
                    "exp_alerts": [
                        _pipeline_firing(
                            "SandboxwatchWorkerIdShared",
                            {"severity": "warning", "instance": worker["instance"]},
                            "Another live process claimed the --worker-id of the worker worker-1:9464",
                        )
                    ],
                }
                for at in ("2m15s", "11m")
            ),
            {"eval_time": "13m", "alertname": "SandboxwatchWorkerIdShared", "exp_alerts": []},
        ],
    }
    return {"rule_files": [rule_file], "evaluation_interval": "15s", "tests": [slow, fault, _idle_store_test()]}


def _idle_store_test() -> dict[str, Any]:
    """An idle worker (no events, so no writes) whose ClickHouse stops at 2m30s: its store probe (every 10 s
    without a write; store/store_probe.py) turns store_writable 0 by the next scrape, and StoreUnwritable and
    WorkerNotReady fire within 2 minutes of the outage; they end once the probe is answered again at 5m45s.
    The last-write time stays where the last events left it throughout: only the probe's time moves."""
    worker = {"job": "sandboxwatch", "instance": "worker-2:9464"}
    w = ",".join(f'{k}="{v}"' for k, v in worker.items())
    return {
        "interval": "15s",
        "input_series": [
            {"series": f"sandboxwatch_store_last_write_timestamp_seconds{{{w}}}", "values": "30x40"},
            {
                "series": f"sandboxwatch_store_last_probe_timestamp_seconds{{{w}}}",
                "values": "0x2 45+15x7 150x12 345+15x17",
            },
            {"series": f"sandboxwatch_store_writable{{{w}}}", "values": "1x10 0x11 1x18"},
            {"series": f"sandboxwatch_worker_ready{{{w}}}", "values": "1x10 0x11 1x18"},
        ],
        "alert_rule_test": [
            {"eval_time": "2m30s", "alertname": "SandboxwatchStoreUnwritable", "exp_alerts": []},
            {"eval_time": "3m30s", "alertname": "SandboxwatchStoreUnwritable", "exp_alerts": []},  # pending
            {
                "eval_time": "4m15s",  # 1m45s after the outage began
                "alertname": "SandboxwatchStoreUnwritable",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchStoreUnwritable",
                        dict(worker),
                        "The worker worker-2:9464 cannot write to ClickHouse (writes retried, or no answer to its idle "
                        "probe)",
                    )
                ],
            },
            {
                "eval_time": "4m15s",
                "alertname": "SandboxwatchWorkerNotReady",
                "exp_alerts": [
                    _pipeline_firing(
                        "SandboxwatchWorkerNotReady",
                        dict(worker),
                        "The worker worker-2:9464 is running but not monitoring",
                    )
                ],
            },
            {"eval_time": "6m", "alertname": "SandboxwatchStoreUnwritable", "exp_alerts": []},
            {"eval_time": "6m", "alertname": "SandboxwatchWorkerNotReady", "exp_alerts": []},
        ],
    }
