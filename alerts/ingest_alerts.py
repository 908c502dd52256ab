"""Alerts on the ingest connectors' own metrics (``ingest/lag_metrics.py``).

A connector whose source answers but whose cursor does not move publishes nothing and exits nothing: from
the monitor's side it looks exactly like a quiet, compliant market. That is a finding for the operator, so
it pages; an unreachable source is told apart by the last-answer time and has its own alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandboxwatch.ingest.lag_metrics import LAG, LAST_ANSWER

INGEST_RULES = "ingest.rules.yml"
SCRAPE_JOB = "sandboxwatch-ingest"


@dataclass(frozen=True, slots=True)
class IngestThresholds:
    # A healthy connector's lag is about one poll interval (15 s exchange, 6 s chain).
    stuck_minutes: int = 15
    # The source counts as answering if it answered within this many minutes.
    answering_minutes: int = 5


def ingest_rules(t: IngestThresholds = IngestThresholds()) -> dict[str, Any]:
    team = {"team": "operations"}
    answering = f"(time() - {LAST_ANSWER}) < {t.answering_minutes * 60}"
    return {
        "groups": [
            {
                "name": "sandboxwatch-ingest",
                "rules": [
                    {
                        "alert": "SandboxwatchIngestDown",
                        "expr": f'up{{job="{SCRAPE_JOB}"}} == 0',
                        "for": "2m",
                        "labels": {"severity": "critical", **team},
                        "annotations": {
                            "summary": "The ingest connector at {{ $labels.instance }} is not being scraped",
                            "runbook": "Check the connector process and its logs (exit 2 names the unusable "
                            "setting or peer); until it is back, its source's events do not reach the monitor.",
                        },
                    },
                    {
                        "alert": "SandboxwatchIngestCursorStuck",
                        "expr": f"({LAG} > {t.stuck_minutes * 60})\nand on (source)\n{answering}",
                        "for": "5m",
                        "labels": {"severity": "critical", **team},
                        "annotations": {
                            "summary": "{{ $labels.source }} {{ $labels.endpoint }}: the cursor has not advanced "
                            "for {{ $value | humanizeDuration }} although the source answers",
                            "runbook": "The connector reads but cannot move past a record: read its log for the "
                            "stream, check page_limit and the venue's window limits; until fixed, that stream's "
                            "breaches are not seen.",
                        },
                    },
                    {
                        "alert": "SandboxwatchIngestSourceSilent",
                        "expr": f"(time() - {LAST_ANSWER}) > {t.stuck_minutes * 60}",
                        "labels": {"severity": "warning", **team},
                        "annotations": {
                            "summary": "{{ $labels.source }} has not answered the connector for "
                            "{{ $value | humanizeDuration }}",
                            "runbook": "Check the venue's or node's status and the connector's credentials and "
                            "network; the connector retries by itself.",
                        },
                    },
                ],
            }
        ]
    }
