"""The simulated day's ground truth: every injected violation is found, and nothing else is."""

from __future__ import annotations

import pytest

from sandboxwatch.rules_engine.event_reader import read_jsonl
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence, load_licence
from sandboxwatch.rules_engine.rules import RULE_KINDS
from sandboxwatch.self_check import run_check
from sandboxwatch.simulate import SimulationConfig, Violation, build_scenario, scenario_lines
from tests.helpers import NATIONAL, da_nang


def _explains(violation: Violation, finding: Finding) -> bool:
    if finding.rule not in violation.rules:
        return False
    if violation.evidence:
        return bool(set(violation.evidence) & set(finding.evidence))
    return finding.subject == violation.subject


def _check(licence: Licence, config: SimulationConfig) -> tuple[list[Violation], list[Finding]]:
    scenario = build_scenario(licence, config)
    result = run_check(licence, read_jsonl(scenario_lines(scenario), "sim"))
    assert not result.errors
    assert result.stats.duplicates > 0 or config.duplicate_rate == 0
    return scenario.violations, result.findings


@pytest.mark.parametrize("load", [da_nang, lambda: load_licence(NATIONAL)], ids=["da-nang", "national"])
def test_every_injected_violation_is_found_and_nothing_else(load) -> None:
    licence = load()
    violations, findings = _check(licence, SimulationConfig(accounts=400, seed=7, duplicate_rate=0.01))
    kinds = {rule.kind for rule in licence.rules}
    covered = {licence.rule(rule_id).kind for v in violations for rule_id in v.rules}
    assert covered == kinds, f"kinds without an injected violation: {kinds - covered}"
    for violation in violations:
        for rule_id in violation.rules:
            assert any(f.rule == rule_id and _explains(violation, f) for f in findings), (
                f"{violation.what}: no {rule_id} finding"
            )
    unexplained = [f for f in findings if not any(_explains(v, f) for v in violations)]
    assert unexplained == []


def test_clean_day_has_no_findings() -> None:
    licence = da_nang()
    violations, findings = _check(licence, SimulationConfig(accounts=300, seed=3, violations=False))
    assert violations == []
    assert findings == []


def test_simulation_is_deterministic() -> None:
    licence = da_nang()
    config = SimulationConfig(accounts=50, seed=11)
    first = list(scenario_lines(build_scenario(licence, config)))
    assert first == list(scenario_lines(build_scenario(licence, config)))


def test_every_rule_kind_injects_its_violation() -> None:
    assert [name for name, kind in RULE_KINDS.items() if kind.inject is None] == []
