"""The Grafana dashboard, generated from the same metric names and licences as the alert rules.

One dashboard with a participant variable: findings over time by rule and severity, limit utilisation
with the warning threshold the alerts use, and the pipeline's health."""

from __future__ import annotations

import json
from typing import Any

from sandboxwatch.alerts.metrics import FINDINGS_TOTAL, PREFIX
from sandboxwatch.alerts.rule_render import UTILISATION_WARNING, WINDOW
from sandboxwatch.rules_engine.licence import Licence

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panel(
    title: str, exprs: list[tuple[str, str]], x: int, y: int, unit: str = "short", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit, **extra.pop("defaults", {})}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for i, (expr, legend) in enumerate(exprs)
        ],
        **extra,
    }


def dashboard(licences: list[Licence]) -> dict[str, Any]:
    sel = 'participant=~"$participant"'
    participants = sorted({lic.header.participant for lic in licences})
    new_findings = f"sum by (rule, severity) (increase({FINDINGS_TOTAL}{{{sel}}}[{WINDOW}]))"
    thresholds = {
        "mode": "absolute",
        "steps": [
            {"color": "green", "value": None},
            {"color": "orange", "value": UTILISATION_WARNING},
            {"color": "red", "value": 1},
        ],
    }
    panels = [
        _panel(
            "New findings by rule and severity",
            [(new_findings, "{{rule}} ({{severity}})")],
            0, 0,
        ),
        _panel(
            "Limit utilisation (1 = at the licence limit)",
            [(f"{PREFIX}_limit_utilisation_ratio{{{sel}}}", "{{rule}} {{limit}}")],
            12, 0, "percentunit",
            defaults={"thresholds": thresholds, "custom": {"thresholdsStyle": {"mode": "line"}}},
        ),
        _panel(
            "Events monitored per second",
            [(f"sum by (type) (rate({PREFIX}_events_total{{{sel}}}[5m]))", "{{type}}")],
            0, 8, "ops",
        ),
        _panel(
            "Consumer lag (messages)",
            [(f"max by (partition) ({PREFIX}_consumer_lag_messages)", "partition {{partition}}")],
            12, 8,
        ),
        _panel(
            "Dead letters (10 min)",
            [(f"sum by (reason) (increase({PREFIX}_dead_letters_total[10m]))", "{{reason}}")],
            0, 16,
        ),
        _panel(
            "Event-time delay of the latest event (s)",
            [(f"time() - {PREFIX}_last_event_timestamp_seconds{{{sel}}}", "{{participant}}"),
             (f"time() - {PREFIX}_last_processed_timestamp_seconds{{{sel}}}", "{{participant}} processed")],
            12, 16, "s",
        ),
        _panel(
            "Worker health (1 = ok)",
            [(f"min({PREFIX}_store_writable)", "store writable"), (f"min({PREFIX}_worker_ready)", "ready")],
            0, 24,
        ),
        _panel(
            "Since the last store write or answered probe (s)",
            [(f"time() - max({PREFIX}_store_last_write_timestamp_seconds)", "store write"),
             (f"time() - max({PREFIX}_store_last_probe_timestamp_seconds)", "store probe (idle worker)")],
            12, 24, "s",
        ),
    ]  # fmt: skip
    for number, panel in enumerate(panels, 1):
        panel["id"] = number
    return {
        "title": "sandboxwatch: licence compliance",
        "uid": "sandboxwatch-compliance",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "30s",
        "tags": ["sandboxwatch"],
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
                {
                    "name": "participant",
                    "type": "custom",
                    "label": "Participant",
                    "query": ",".join(participants),
                    "current": {"text": participants[0], "value": participants[0]} if participants else {},
                    "options": [{"text": p, "value": p, "selected": i == 0} for i, p in enumerate(participants)],
                    "includeAll": True,
                    "multi": True,
                },
            ]
        },
        "panels": panels,
    }


def dashboard_json(licences: list[Licence]) -> str:
    return json.dumps(dashboard(licences), indent=2, sort_keys=False) + "\n"
