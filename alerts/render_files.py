"""Writing the generated Prometheus files for licences: rules, promtool tests, pipeline-health rules.

The committed copies under ``deploy/prometheus/`` are compared against a fresh render by a test, so a
licence edit without a re-render cannot ship stale alerts."""

from __future__ import annotations

from pathlib import Path

from sandboxwatch.alerts.alertmanager_config import alertmanager_config
from sandboxwatch.alerts.dashboard import dashboard_json
from sandboxwatch.alerts.ingest_alerts import INGEST_RULES, ingest_rules
from sandboxwatch.alerts.promtool_tests import licence_tests, pipeline_tests
from sandboxwatch.alerts.rule_render import licence_rules, pipeline_rules, to_yaml
from sandboxwatch.rules_engine.licence import Licence

PIPELINE_RULES = "pipeline.rules.yml"


def rule_file_name(licence: Licence) -> str:
    return f"{licence.header.id}.rules.yml"


def rendered(licences: list[Licence]) -> dict[str, str]:
    """Relative path (under ``deploy/``) -> file text, for every generated file."""
    files = {
        f"prometheus/rules/{PIPELINE_RULES}": to_yaml(pipeline_rules()),
        f"prometheus/rules/{INGEST_RULES}": to_yaml(ingest_rules()),
        "prometheus/tests/pipeline.test.yml": to_yaml(pipeline_tests(f"../rules/{PIPELINE_RULES}")),
        "alertmanager/alertmanager.yml": to_yaml(alertmanager_config(licences)),
        "grafana/sandboxwatch-dashboard.json": dashboard_json(licences),
    }
    for licence in licences:
        name = rule_file_name(licence)
        files[f"prometheus/rules/{name}"] = to_yaml(licence_rules(licence))
        files[f"prometheus/tests/{licence.header.id}.test.yml"] = to_yaml(licence_tests(licence, f"../rules/{name}"))
    return files


def write(out_dir: Path, licences: list[Licence]) -> list[Path]:
    written = []
    for relative, text in rendered(licences).items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
