"""Generated alerting rules: current on disk, runbooks complete, and checked by promtool and amtool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sandboxwatch.alerts.alertmanager_config import alertmanager_config
from sandboxwatch.alerts.render_files import rendered
from sandboxwatch.alerts.rule_render import alert_name, licence_rules
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.rules_engine.rules import RULE_KINDS
from tests.helpers import DA_NANG, NATIONAL, ROOT

DEPLOY = ROOT / "deploy"
LICENCES = [load_licence(DA_NANG), load_licence(NATIONAL)]


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (Debian: prometheus / prometheus-alertmanager)")
        pytest.skip(f"{name} is not installed")
    return found


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_committed_files_match_a_fresh_render() -> None:
    stale = [path for path, text in rendered(LICENCES).items() if (DEPLOY / path).read_text() != text]
    assert not stale, f"re-run `sandboxwatch alerts render` for: {stale}"


def test_every_rule_kind_has_a_runbook_and_every_rule_an_alert() -> None:
    assert [name for name, kind in RULE_KINDS.items() if not kind.runbook.strip()] == []
    for licence in LICENCES:
        document = licence_rules(licence)
        names = [rule["alert"] for rule in document["groups"][0]["rules"]]
        assert len(names) == len(set(names)), "alert names must be unique"
        for rule in licence.rules:
            assert alert_name(rule.id) in names


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    promtool = tool("promtool")
    tests = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
    assert len(tests) == len(LICENCES) + 2  # + pipeline and ingest (hand-written)
    result = run(promtool, "test", "rules", *map(str, tests), cwd=DEPLOY / "prometheus" / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_catch_an_alert_that_misses_a_series_born_at_one(tmp_path: Path) -> None:
    """Without the 'new series' branch, increase() never sees a first sample of 1: promtool must object."""
    promtool = tool("promtool")
    name = f"{LICENCES[0].header.id}.rules.yml"
    document = yaml.safe_load((DEPLOY / "prometheus" / "rules" / name).read_text())
    for rule in document["groups"][0]["rules"]:
        rule["expr"] = rule["expr"].split("\nor\n")[0]
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / name).write_text(yaml.safe_dump(document))
    test = DEPLOY / "prometheus" / "tests" / f"{LICENCES[0].header.id}.test.yml"
    shutil.copy(test, tmp_path / "tests" / test.name)
    result = run(promtool, "test", "rules", test.name, cwd=tmp_path / "tests")
    assert result.returncode != 0
    assert alert_name(LICENCES[0].rules[1].id) in result.stdout + result.stderr


def test_shipped_prometheus_and_alertmanager_configs_are_accepted() -> None:
    promtool = tool("promtool")
    amtool = tool("amtool")
    prom = run(promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert prom.returncode == 0, prom.stdout + prom.stderr
    assert "SUCCESS" in prom.stdout + prom.stderr
    am = run(amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert am.returncode == 0, am.stdout + am.stderr


def test_routing_sends_breaches_to_the_regulator_and_warnings_to_the_participant() -> None:
    amtool = tool("amtool")
    config = str(DEPLOY / "alertmanager" / "alertmanager.yml")
    participant = LICENCES[0].header.participant

    def receiver(*labels: str) -> str:
        result = run(amtool, "config", "routes", "test", "--config.file", config, *labels)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert receiver("severity=critical", f"participant={participant}") == "regulator-desk"
    assert receiver("severity=breach", f"participant={participant}") == "regulator-desk"
    assert receiver("severity=warning", f"participant={participant}") == f"participant-{participant}"
    assert receiver("severity=critical", "team=operations") == "operations"
    routes = alertmanager_config(LICENCES)["route"]["routes"]
    assert {r["receiver"] for r in routes} >= {f"participant-{lic.header.participant}" for lic in LICENCES}


def test_the_dashboard_queries_only_metrics_the_monitor_exports() -> None:
    import json
    import re

    from sandboxwatch.alerts.metrics import Metrics

    exported = {m.name for m in Metrics().registry.collect()}
    exported |= {f"{name}_total" for name in exported}
    board = json.loads((DEPLOY / "grafana" / "sandboxwatch-dashboard.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"sandboxwatch_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    participants = board["templating"]["list"][1]["query"].split(",")
    assert sorted(participants) == sorted(lic.header.participant for lic in LICENCES)
