"""``promtool test rules`` cases for a licence's generated alerts.

Built from the licence, checked by Prometheus's own evaluator: a rule that breaches fires, including a
series whose very first sample is already 1; it resolves once no new finding arrives for a window; a
rule without findings stays quiet; a limit at 85% raises the utilisation warning, one at 50% does not."""

from __future__ import annotations

from typing import Any

from alerts.rule_render import FINDINGS, UTILISATION, alert_name, finding_alert, utilisation_alert
from rules_engine.licence import Licence
from rules_engine.rule_spec import RuleSpec
from rules_engine.rules import RULE_KINDS


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
        {"series": _series(FINDINGS, _labels(rising)), "values": "0 0 0 1x30"},
        {"series": _series(FINDINGS, _labels(born_high)), "values": "_x3 1x30"},
        {"series": _series(FINDINGS, _labels(quiet)), "values": "0x33"},
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
